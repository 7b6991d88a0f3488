"""What every layer spec shares: the spec base (:class:`Configurable`: its
Keras config and dtype policy), the parameter-free layers' base, and the N-d
convolution base that ``Conv*D``, ``Conv*DTranspose`` and the depthwise and
separable layers build on.

A spec holds only static configuration, canonicalised and validated once, when
it is built (``kernel_size=3`` and ``(3,)`` give equal specs; padding and
data_format are lower-cased; names of activations, initializers, regularizers
and constraints are resolved to objects, and the identity activation is
``None``), so equal layers are equal specs. Being hashable, a spec can be a
static argument of ``jax.jit``.

The rules a spec follows live in their own modules: the Keras config in
:mod:`conv1djax.keras_config`, the dtype policy in
:mod:`conv1djax.dtype_policy`, input shapes and arrays in
:mod:`conv1djax.shapes`, the params' creation and checks in
:mod:`conv1djax.layers.params`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from conv1djax import (
    _validation,
    activations,
    constraints,
    dtype_policy,
    initializers,
    keras_config,
    lowering,
    regularizers,
    shapes,
    stream_contract,
)
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.layers.params import check_no_params, check_param_shapes, init_params
from conv1djax.lowering import choose, layout
from conv1djax.protocol import Layer, weight_attribute

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class Configurable(Layer):
    """``get_config`` / ``from_config`` over a frozen dataclass's fields,
    in Keras's format, for the fields listed in ``_REGISTRIES`` serialised by
    their registry; and the dtype policy every leaf spec takes.

    Three keyword-only fields, shared by every spec built on it:

    - ``trainable``: Keras's switch (default True). False freezes the
      layer: the train step leaves all of its params as they are, and their
      regularizers count for nothing (:func:`conv1djax.protocol.non_trainable`).
      Written in the Keras config, as Keras writes it.

    - ``dtype``: Keras's dtype policy. None (the default): params are
      float32 unless ``init`` is given a ``dtype``, a convolution computes in
      its kernel's dtype and a parameter-free layer in its input's. Else
      ``"mixed_bfloat16"`` / ``"mixed_float16"`` (float32 params, bfloat16 /
      float16 computation) or a floating dtype's name (both): ``apply``
      casts floating inputs and the params to the compute dtype, as Keras
      autocasts, and the output is in it. Also accepted: a dtype object,
      Keras's ``DTypePolicy`` or its config dict; all kept as the name.
    - ``param_dtype``: the dtype ``init`` creates the params in; None (the
      default) takes the policy's variable dtype (float32 with no policy).
      Not a Keras argument.

    The rules are in :attr:`compute_dtype` and :attr:`variable_dtype`.
    """

    dtype: Any = dataclasses.field(default=None, kw_only=True)
    param_dtype: Any = dataclasses.field(default=None, kw_only=True)

    _REGISTRIES: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        put("dtype", dtype_policy.canonical_policy(self.dtype))
        put("param_dtype", dtype_policy.canonical_param_dtype(self.param_dtype))

    @property
    def compute_dtype(self) -> str | None:
        """The dtype ``apply`` computes in: the policy's compute dtype (
        ``"bfloat16"`` for ``"mixed_bfloat16"``), or None without a policy
        (a convolution's kernel dtype, a parameter-free layer's input
        dtype)."""
        return dtype_policy.compute_dtype(self.dtype)

    @property
    def variable_dtype(self) -> str:
        """The dtype ``init`` creates params in when it is given none:
        ``param_dtype`` if set, else the policy's variable dtype (float32 for
        the mixed policies), else float32."""
        return dtype_policy.variable_dtype(self.dtype, self.param_dtype)

    def cast_input(self, x: _T) -> _T | jax.Array:
        """A floating ``x`` cast to the policy's compute dtype (Keras's
        autocast of a layer's inputs); anything else, or any ``x`` without a
        policy, as it is."""
        return dtype_policy.cast_input(x, self.dtype)

    def count_params(self, input_shape: ShapeLike) -> int:
        """The number of scalars in the params for ``input_shape``, state
        included (as Keras counts it): the sizes of the spec's
        ``param_shapes`` where it has them, else counted from an abstract
        ``init``.

        >>> import conv1djax as cj
        >>> cj.Conv1D(32, 3).count_params((None, 10, 128))
        12320
        >>> cj.Dense(10).count_params((None, 64))
        650
        >>> cj.BatchNormalization().count_params((None, 8))
        32
        """
        shapes = getattr(self, "param_shapes", None)
        if callable(shapes):
            return sum(math.prod(s) for s in shapes(input_shape).values())
        return super().count_params(input_shape)

    def weight_names(self) -> tuple[str, ...]:
        """The names of the layer's params, in Keras's ``get_weights()``
        order (``()`` for a layer without params): the keys of ``init``'s
        dict, and the order :func:`conv1djax.interop.from_keras` reads
        Keras's weights in."""
        return ()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable for built-in objects.

        Activations are given by name; initializers, regularizers and
        constraints as ``{"class_name": ..., "config": ...}`` dicts (Keras's
        format, so Keras's ``from_config`` reads them too). User callables
        are returned as they are, and then the config is only
        round-trippable in-process. The arguments Keras's layers do not take
        are left out at their defaults (:mod:`conv1djax.keras_config`).
        """
        return keras_config.get_config(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Builds a spec from ``get_config()``'s dict, or from a Keras layer's.

        Keras's ``"dtype"`` entry is read as the spec's policy, except the
        float32 ``DTypePolicy`` dict that every Keras config holds by
        default, which is read as ``dtype=None`` (the library's default), so a
        default Keras layer's config gives the default spec.

        Raises:
          ValueError: for keys that are not arguments of this spec.
        """
        return keras_config.from_config(cls, config)


class ParameterFree(Configurable):
    """A layer without params: ``init`` returns ``{}`` and ``count_params``
    0, each after checking ``input_shape`` (so a bad one fails there, as for
    the convolutions)."""

    if TYPE_CHECKING:  # every concrete subclass defines it

        def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
            """The layer's output shape for ``input_shape`` (each concrete
            layer defines it).

            Args:
              input_shape: the input's shape, ``None`` for unknown entries.

            Returns:
              The output's shape, ``None`` where it cannot be known.

            Raises:
              ValueError: for an input shape the layer does not accept (too
                low a rank, say).
              TypeError: when ``input_shape`` is not a sequence of ints and
                Nones.
            """
            ...

    def init(
        self,
        key: jax.Array | int | None,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, jax.Array]:
        """Returns ``{}``: the layer has no params (``input_shape`` is
        checked). ``key`` is unused: a PRNG key, an int seed or None.

        Raises:
          ValueError, TypeError: as ``compute_output_shape``.
          TypeError: for a ``key`` that is none of those.
        """
        if key is not None:
            _validation.prng_key(key)
        del key, dtype
        self.compute_output_shape(input_shape)
        return {}

    def count_params(self, input_shape: ShapeLike) -> int:
        """0: the layer has no params (``input_shape`` is checked)."""
        self.compute_output_shape(input_shape)
        return 0

    def check_own_params(self, params: Params, path: str = "params") -> None:
        """Checks that ``params`` is ``{}``, as ``apply`` does.

        Raises:
          ValueError: naming ``path`` and what it holds instead.
        """
        check_no_params(self, params, path)


class SpatialParameterFree(ParameterFree):
    """A parameter-free layer over ``batch_shape + spatial + channels`` (or
    channels first) inputs of ``rank`` spatial axes, whose channel count may
    be unknown: the reshaping and pooling layers."""

    rank: ClassVar[int]
    if TYPE_CHECKING:  # a field of the subclasses that take it
        data_format: str | None

    @property
    def _format(self) -> str:
        # Cropping1D and UpSampling1D take no data_format in Keras 3.15.
        return getattr(self, "data_format", "channels_last")

    def _canonical_format(self) -> None:
        object.__setattr__(
            self, "data_format", _validation.data_format(self.data_format)
        )

    def _split(self, input_shape: ShapeLike) -> tuple[Shape, Shape, int | None]:
        """``(batch_shape, spatial, channels)``; the channel count may be
        unknown (None), unlike a convolution's."""
        shape = shapes.check_shape_entries(input_shape)
        rank = self.rank
        if len(shape) < rank + 2:  # the shared, layout-naming error
            shapes.split_input_shape(shape, self._format, rank, type(self).__name__)
        nb = len(shape) - rank - 1
        if self._format == "channels_last":
            return shape[:nb], shape[nb:-1], shape[-1]
        return shape[:nb], shape[nb + 1 :], shape[nb]

    def _spatial_axes(self, num_batch: int) -> tuple[int, ...]:
        first = num_batch if self._format == "channels_last" else num_batch + 1
        return tuple(range(first, first + self.rank))


def canonical_activation(value: Any) -> Callable[..., Any] | None:
    """The activation's canonical object: ``None`` for the identity, so that
    ``activation="linear"`` (what Keras writes in its configs) and the
    default give equal specs."""
    fn = activations.get(value, "activation")
    return None if fn is activations.linear else fn


def canonical_impl(value: Any, rank: int) -> str:
    """Canonicalises the ``impl`` option: a name of ``lowering.IMPLS``, any
    case; the 1-D cores (``lowering.ONE_D_CORES``) are refused for more axes.
    Both messages list the registry, so they cannot drift from it."""
    if not (isinstance(value, str) and value.lower() in lowering.IMPLS):
        raise ValueError(
            f"`impl` must be one of {', '.join(map(repr, lowering.IMPLS))}; "
            f"received impl={value!r}."
        )
    value = value.lower()
    if rank > 1 and value in lowering.ONE_D_CORES:
        nd = [i for i in lowering.IMPLS if i not in lowering.ONE_D_CORES]
        raise ValueError(
            f"impl={value!r} is a 1-D core; a {rank}-D convolution takes one of "
            f"{', '.join(map(repr, nd))}."
        )
    return value


# The LoRA weights' names, Keras's, in its get_weights() order.
LORA_WEIGHTS = ("lora_kernel_a", "lora_kernel_b")


def lora_arguments(rank: Any, alpha: Any) -> tuple[int | None, float | None]:
    """Canonical ``(lora_rank, lora_alpha)``: a rank of None or 0 is no
    LoRA (as Keras reads a falsy rank), and then ``lora_alpha`` is dropped
    (Keras ignores it until LoRA is enabled); else ``lora_alpha`` defaults to
    the rank, Keras's rule, so ``lora_rank=4`` and ``lora_rank=4,
    lora_alpha=4`` give equal specs."""
    if rank is None or (not isinstance(rank, bool) and rank == 0):
        return None, None
    rank = _validation.positive_int(rank, "lora_rank")
    if alpha is None:
        return rank, rank
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise TypeError(
            f"`lora_alpha` must be a number or None; received lora_alpha={alpha!r} "
            f"of type {type(alpha).__name__}."
        )
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(
            f"`lora_alpha` must be a positive number; received lora_alpha={alpha!r}."
        )
    return rank, alpha


@dataclasses.dataclass(frozen=True)
class _LoraFields(Configurable):
    """Keras's LoRA arguments, keyword-only fields of every
    :class:`KernelLayer` (a dataclass of its own, so that the fields
    :class:`KernelLayer` reads from its subclasses are not fields here)."""

    lora_rank: int | None = dataclasses.field(default=None, kw_only=True)
    lora_alpha: float | None = dataclasses.field(default=None, kw_only=True)


class KernelLayer(_LoraFields):
    """What ``Dense`` and the convolutions share: ``activation`` and
    ``use_bias``, the initializers, regularizers and constraints of their
    weights (the class's ``_REGISTRIES``), and LoRA.

    LoRA (Keras 3's, two keyword-only fields): with ``lora_rank=r`` the
    layer computes with ``kernel + (lora_alpha / r) * A @ B`` in place of
    its kernel (:meth:`merged_params`), ``A = lora_kernel_a`` and ``B =
    lora_kernel_b`` two more params; the base kernel is frozen (listed by
    :meth:`non_trainable_weights`, so the train step updates only ``A``,
    ``B`` and the other weights). ``A`` is the kernel's leading axes and the
    rank, ``B`` the rank and its trailing axes (:meth:`lora_shapes`);
    ``A`` starts He-uniform, ``B`` at zeros, both float32 whatever the
    params' dtype, and both are penalised by the kernel's regularizer,
    as Keras does. ``lora_alpha`` defaults to the rank.

    Subclasses are frozen dataclasses with Keras's fields; the kernel LoRA
    adapts is ``_LORA_KERNEL`` (``"kernel"``; a separable layer's
    ``"pointwise_kernel"``), and ``_KERAS_LORA`` says whether Keras's
    layer of the same name takes ``lora_rank`` (Conv1D/2D/3D and Dense).
    """

    _REGISTRIES: ClassVar[Mapping[str, Any]] = {
        "kernel_initializer": initializers,
        "bias_initializer": initializers,
        "kernel_regularizer": regularizers,
        "bias_regularizer": regularizers,
        "activity_regularizer": regularizers,
        "kernel_constraint": constraints,
        "bias_constraint": constraints,
        "activation": activations,
    }
    # The param whose dtype the layer computes in (Keras casts the input to it).
    _COMPUTE_PARAM: ClassVar[str] = "kernel"
    # The kernel LoRA adapts, and whether Keras's layer has LoRA at all.
    _LORA_KERNEL: ClassVar[str] = "kernel"
    _KERAS_LORA: ClassVar[bool] = False

    if TYPE_CHECKING:  # fields every subclass declares
        activation: Any
        use_bias: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        put("use_bias", _validation.boolean(self.use_bias, "use_bias"))
        for field, registry in self._REGISTRIES.items():
            if field != "activation":
                put(field, registry.get(getattr(self, field), field))
        put("activation", canonical_activation(self.activation))
        rank, alpha = lora_arguments(self.lora_rank, self.lora_alpha)
        put("lora_rank", rank)
        put("lora_alpha", alpha)
        constraint = weight_attribute(self, self._LORA_KERNEL, "constraint")
        if rank is not None and getattr(self, constraint) is not None:
            raise ValueError(
                f"LoRA is incompatible with kernel constraints (as in Keras): "
                f"received lora_rank={rank} with {constraint}="
                f"{getattr(self, constraint)!r}; remove the constraint."
            )

    if TYPE_CHECKING:  # every concrete subclass defines it

        def check_own_params(self, params: Params, path: str = "params") -> None:
            """Raises ``ValueError`` for params that do not fit the layer."""
            ...

    # ---- LoRA ---------------------------------------------------------------

    def _lora_split(self, kernel_shape: tuple[int, ...]) -> int:
        """How many leading axes of the adapted kernel ``A`` takes: all but
        the last (the output channels), as Keras's Dense and convolutions."""
        return len(kernel_shape) - 1

    def lora_shapes(self, kernel_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """The LoRA weights' shapes for a kernel of ``kernel_shape``
        (``{}`` without LoRA): ``A`` the kernel's leading axes and the
        rank, ``B`` the rank and the rest.

        >>> import conv1djax as cj
        >>> cj.Conv2D(8, 3, lora_rank=2).lora_shapes((3, 3, 4, 8))
        {'lora_kernel_a': (3, 3, 4, 2), 'lora_kernel_b': (2, 8)}
        """
        if self.lora_rank is None:
            return {}
        shape = tuple(kernel_shape)
        split, rank = self._lora_split(shape), self.lora_rank
        return {
            "lora_kernel_a": (*shape[:split], rank),
            "lora_kernel_b": (rank, *shape[split:]),
        }

    def _with_lora(
        self, param_shapes: Mapping[str, tuple[int, ...]]
    ) -> dict[str, tuple[int, ...]]:
        """The base params' shapes followed by the LoRA weights' (Keras's
        weight order)."""
        return {**param_shapes, **self.lora_shapes(param_shapes[self._LORA_KERNEL])}

    def non_trainable_weights(self) -> tuple[str, ...]:
        """``(the adapted kernel's name,)`` with LoRA (frozen, as Keras
        freezes it), else ``()``."""
        return (self._LORA_KERNEL,) if self.lora_rank is not None else ()

    def init_lora(
        self, key: jax.Array | int, kernel_shape: Sequence[int]
    ) -> dict[str, jax.Array]:
        """The LoRA weights for a kernel of ``kernel_shape``, float32 as
        Keras makes them: ``A`` He-uniform, ``B`` zeros (so the layer's
        output starts as the base kernel's). ``init`` and
        :func:`~conv1djax.enable_lora` draw them from the same ``key``, one
        folded with 1, so the base kernel's draw is the plain layer's."""
        key = jax.random.fold_in(_validation.prng_key(key), 1)
        return init_params(self, key, self.lora_shapes(kernel_shape), jnp.float32)

    @property
    def lora_kernel_a_initializer(self) -> Any:
        """``A``'s initializer, Keras's: He-uniform."""
        return initializers.get("he_uniform", "lora_kernel_a")

    @property
    def lora_kernel_b_initializer(self) -> Any:
        """``B``'s initializer, Keras's: zeros."""
        return initializers.get("zeros", "lora_kernel_b")

    @property
    def lora_kernel_a_regularizer(self) -> Any:
        """The adapted kernel's regularizer, as Keras gives the LoRA weights."""
        return getattr(self, weight_attribute(self, self._LORA_KERNEL, "regularizer"))

    lora_kernel_b_regularizer = lora_kernel_a_regularizer
    lora_kernel_a_constraint = lora_kernel_b_constraint = None

    def merged_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The params the layer computes with: without LoRA, ``params``
        as they are; with it, the adapted kernel replaced by ``kernel +
        (lora_alpha / lora_rank) * A @ B`` (Keras's effective kernel, in the
        kernel's dtype) and the LoRA weights left out. The one place the
        effective kernel is computed: ``apply``, :func:`~conv1djax.merge_lora`
        and a wrapper that reparametrises the kernel use it.

        >>> import jax.numpy as jnp, conv1djax as cj
        >>> layer = cj.Dense(2, use_bias=False, lora_rank=1, lora_alpha=2)
        >>> merged = layer.merged_params({"kernel": jnp.zeros((1, 2)),
        ...     "lora_kernel_a": jnp.ones((1, 1)), "lora_kernel_b": jnp.ones((1, 2))})
        >>> merged
        {'kernel': Array([[2., 2.]], dtype=float32)}
        """
        if self.lora_rank is None or self.lora_alpha is None:  # canonical: both
            return dict(params)
        name = self._LORA_KERNEL
        kernel = jnp.asarray(params[name])
        a, b = (jnp.asarray(params[w]) for w in LORA_WEIGHTS)
        dtype = jnp.promote_types(jnp.promote_types(kernel.dtype, a.dtype), b.dtype)
        delta = jnp.tensordot(a.astype(dtype), b.astype(dtype), axes=1)
        merged = kernel.astype(dtype) + (self.lora_alpha / self.lora_rank) * delta
        out = {k: v for k, v in params.items() if k not in LORA_WEIGHTS}
        out[name] = merged.astype(kernel.dtype)
        return out

    def _init_weights(
        self, key: jax.Array, param_shapes: Mapping[str, tuple[int, ...]], dtype: Any
    ) -> dict[str, jax.Array]:
        """The params of ``param_shapes`` (the base weights' and the LoRA
        weights'): the base ones in ``dtype`` from ``key``, the LoRA ones
        by :meth:`init_lora`."""
        base = {k: v for k, v in param_shapes.items() if k not in LORA_WEIGHTS}
        params = init_params(self, key, base, dtype)
        if self.lora_rank is not None:
            params.update(self.init_lora(key, base[self._LORA_KERNEL]))
        return params

    def _finish(self, y: jax.Array, params: Mapping[str, Any]) -> jax.Array:
        """The bias added (``bias_shape``: how it broadcasts) and the
        activation applied, Keras's order."""
        if self.use_bias:
            bias = jnp.asarray(params["bias"], y.dtype)
            y = y + bias.reshape(self._bias_shape())
        if self.activation is not None:
            y = self.activation(y)
        return y

    def _bias_shape(self) -> tuple[int, ...]:
        return (-1,)


class ConvBase(KernelLayer):
    """Validation, shapes, ``init`` and ``apply`` shared by the N-d
    sliding-window specs (convolutions, transposed, depthwise, separable):
    ``kernel_size``, ``strides``, ``dilation_rate``, ``padding``,
    ``data_format``, ``activation``, ``use_bias``, their initializers,
    regularizers and constraints, ``impl`` and ``padding_mode``. Subclasses
    are frozen dataclasses with Keras's fields; they set ``rank`` and
    ``transposed`` and say which params they have (``_param_shapes``), how
    many channels come out (``_out_channels``) and how the window is
    computed (``_convolve``)."""

    rank: ClassVar[int]
    transposed: ClassVar[bool] = False
    # The PyTorch module of the same weights, for conv1djax.interop: "conv",
    # "transposed", "depthwise", or None (none: a separable layer is two).
    torch_module: ClassVar[str | None] = None

    if TYPE_CHECKING:
        # Fields every subclass declares, typed there as its constructor takes
        # them; __post_init__ canonicalises them (the per-axis ones to int
        # tuples, padding to a name or (left, right) pairs, data_format to a
        # name, activation to a callable or None), hence Any here.
        kernel_size: Any
        strides: Any
        dilation_rate: Any
        padding: Any
        output_padding: Any
        data_format: Any
        impl: str
        padding_mode: str

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        rank = self.rank
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        for field in ("kernel_size", "strides", "dilation_rate"):
            put(field, _validation.int_tuple(getattr(self, field), field, rank))
        put(
            "padding",
            _validation.layer_padding(
                self.padding, rank, transposed=self.transposed, layer=name
            ),
        )
        put(
            "padding_mode",
            _validation.padding_mode(
                self.padding_mode, transposed=self.transposed, layer=name
            ),
        )
        put("data_format", _validation.data_format(self.data_format))
        put("impl", canonical_impl(self.impl, rank))

    # ---- what a subclass says ----------------------------------------------

    def _param_shapes(self, channels: int) -> dict[str, tuple[int, ...]]:
        """The params' shapes for an input of ``channels`` channels."""
        raise NotImplementedError

    def weight_names(self) -> tuple[str, ...]:
        """The names of the layer's params, in Keras's ``get_weights()``
        order: ``("kernel", "bias")`` for a convolution (no ``"bias"`` when
        ``use_bias=False``); ``("depthwise_kernel", "pointwise_kernel",
        "bias")`` for a separable one. The keys of ``init``'s dict, in its
        order (each family's ``_param_shapes`` says them; they do not depend
        on the input's channel count).

        >>> import conv1djax as cj
        >>> cj.SeparableConv1D(8, 3).weight_names()
        ('depthwise_kernel', 'pointwise_kernel', 'bias')
        >>> cj.Conv1D(4, 3, use_bias=False).weight_names(), cj.MaxPooling1D().weight_names()
        (('kernel',), ())
        """
        return tuple(self._with_lora(self._param_shapes(getattr(self, "groups", 1))))

    def _out_channels(self, channels: int) -> int:
        raise NotImplementedError

    def _convolve(
        self, params: Mapping[str, jax.Array], x: jax.Array, pads: shapes.Pads
    ) -> jax.Array:
        """The window computation on ``(N, *spatial, C)`` (or channels-first)
        inputs with one batch axis, zero-padded by ``pads`` (one ``(left,
        right)`` per axis, as :meth:`paddings` gives them), before the
        bias."""
        raise NotImplementedError

    def _check_channels(
        self, channels: int, input_shape: ShapeLike, *, at_apply: bool
    ) -> None:
        """Raises ``ValueError`` for a channel count the layer cannot take."""
        del channels, input_shape, at_apply

    # ---- shapes ---------------------------------------------------------

    def paddings(self, spatial: Sequence[int]) -> shapes.Pads:
        """The ``(left, right)`` padding per spatial axis for an input of
        ``spatial`` lengths (of the stride-dilated input, when transposed),
        whatever ``padding_mode`` fills it with."""
        if self.transposed:
            return shapes.conv_transpose_paddings(
                self.kernel_size, self.strides, self.padding,
                self.output_padding, self.dilation_rate,
            )  # fmt: skip
        return shapes.conv_paddings(
            spatial, self.kernel_size, self.strides, self.padding, self.dilation_rate
        )

    def output_lengths(self, spatial: Sequence[int | None]) -> Shape:
        """The output lengths for ``spatial`` input lengths (None stays None).

        Raises:
          ValueError: when the input is too short for the kernel, or for
            the padding ``padding_mode`` takes from it.
        """
        if self.transposed:
            return shapes.conv_transpose_output_lengths(
                spatial, self.kernel_size, self.strides, self.padding,
                self.output_padding, self.dilation_rate,
            )  # fmt: skip
        return shapes.conv_output_lengths(
            spatial, self.kernel_size, self.strides, self.padding,
            self.dilation_rate, self.padding_mode,
        )  # fmt: skip

    def _split(self, input_shape: ShapeLike) -> tuple[Shape, Shape, int]:
        return shapes.split_input_shape(
            input_shape, self.data_format, self.rank, type(self).__name__
        )

    def param_shapes(self, input_shape: ShapeLike) -> dict[str, tuple[int, ...]]:
        """The shapes of ``init``'s params for an input of ``input_shape``.

        Raises:
          ValueError: when the channel count is unknown or does not fit the
            layer, or the input is too short for the kernel.
        """
        _, spatial, channels = self._split(input_shape)
        self._check_channels(channels, input_shape, at_apply=False)
        self.output_lengths(spatial)  # raises early for a too-short input
        return self._with_lora(self._param_shapes(channels))

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The output shape for ``input_shape`` (None entries stay None).

        The activation's effect is included: ``"glu"`` halves the last axis.

        >>> import conv1djax as cj
        >>> cj.Conv1D(32, 3).compute_output_shape((4, 7, 10, 128))
        (4, 7, 8, 32)
        >>> cj.Conv2D(8, (3, 5), strides=2).compute_output_shape((None, 32, 32, 3))
        (None, 15, 14, 8)
        """
        batch_shape, spatial, channels = self._split(input_shape)
        self.param_shapes(input_shape)
        shape = shapes.join_shape(
            batch_shape,
            self.output_lengths(spatial),
            self._out_channels(channels),
            self.data_format,
        )
        if self.activation is None:
            return shape
        return shapes.eval_output_shape(self.activation, shape)

    # ---- numerics -------------------------------------------------------

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, jax.Array]:
        """Creates the params for inputs of ``input_shape``, in Keras's
        layouts (no ``"bias"`` when ``use_bias=False``), in ``dtype`` if
        given, else in the spec's :attr:`variable_dtype` (float32 unless
        ``param_dtype`` or a non-mixed policy says otherwise).

        ``key`` is a JAX PRNG key, or an int seed, read as
        ``jax.random.key(seed)`` (so ``init(0, shape)`` equals
        ``init(jax.random.key(0), shape)``).

        Raises:
          ValueError: for an unknown channel count, one the layer cannot
            take, a rank too low, or an input too short for the kernel.
          TypeError: for a ``key`` that is neither a key nor an int, a bad
            ``input_shape`` or a non-floating ``dtype``.
        """
        key = _validation.prng_key(key)
        if dtype is None:
            dtype = self.variable_dtype
        return self._init_weights(key, self.param_shapes(input_shape), dtype)

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Computes ``activation(window(x) + bias)``, Keras's formula, in the
        compute dtype: the policy's (``dtype="mixed_bfloat16"``: bfloat16),
        else the kernel's. The input (integers included) and the params are
        cast to it, as Keras autocasts them, and the output is in it; the
        gradients with respect to the params come in the params' dtype.

        Everything that can be checked from static shapes is checked first
        (so errors come as clear ``ValueError``s at trace time, under
        ``jax.jit`` too); the batch axes are flattened around the lowering.

        Raises:
          ValueError: when params do not fit the input's channels, the
            input's rank is too low, or the input is too short.
          TypeError: for complex inputs or a non-floating kernel.
        """
        name = type(self).__name__
        x = shapes.check_input(x, name, params)
        x_shape = tuple(jnp.shape(x))
        batch_shape, spatial, channels = self._split(x_shape)
        self._check_channels(channels, x_shape, at_apply=True)
        context = f"{self._describe()} on an input with {channels} channels"
        expected = self._with_lora(self._param_shapes(channels))
        check_param_shapes(self, params, expected, context)
        dtype = jnp.result_type(params[self._COMPUTE_PARAM])
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"params[{self._COMPUTE_PARAM!r}] must be floating; received {dtype}."
            )
        compute: DTypeLike = self.compute_dtype or dtype
        x = shapes.as_input(x, compute, name)
        params = {k: jnp.asarray(v, compute) for k, v in params.items()}
        params = self.merged_params(params)  # LoRA's effective kernel, once
        self.output_lengths(spatial)  # a clear error for an input that is too short
        x = x.reshape((-1, *x_shape[len(batch_shape) :]))
        # a concrete input's shape: every length is known
        pads = self.paddings(cast(tuple[int, ...], spatial))
        if self.padding_mode != "zeros":
            channels_first = self.data_format == "channels_first"
            x = layout.pad_with_mode(x, pads, self.padding_mode, channels_first)
            pads = ((0, 0),) * self.rank
        y = self._convolve(params, x, pads)
        y = y.reshape((*batch_shape, *y.shape[1:]))
        return self._finish(y, params)

    def _bias_shape(self) -> tuple[int, ...]:
        if self.data_format == "channels_first":
            return (-1, *(1,) * self.rank)
        return (-1,)

    def check_own_params(self, params: Params, path: str = "params") -> None:
        """Checks that ``params`` fit this spec without an input: exactly its
        keys, and the shapes ``init`` gives for the input channel count the
        compute kernel implies (:meth:`input_channels`). The rule is
        ``apply``'s (``_param_shapes``, then
        :func:`~conv1djax.layers.params.check_param_shapes`), which
        takes the channel count from the input instead; ``cj.save``,
        ``cj.load``, ``stream_init`` and ``cj.interop`` check a model's
        params with it (through :func:`conv1djax.protocol.check_params`).

        Args:
          params: the layer's params.
          path: where they are, for the message (``"params[0]"``).

        Raises:
          ValueError: naming the param at ``path``, the shape received and
            the shape expected, or the missing or extra keys.

        >>> import jax.numpy as jnp, conv1djax as cj
        >>> cj.Conv2D(16, 3).check_own_params(  # doctest: +ELLIPSIS
        ...     {"kernel": jnp.zeros((3, 3, 2, 16)), "bias": jnp.zeros(5)})
        Traceback (most recent call last):
        ValueError: params['bias'] of shape (5,) does not fit Conv2D(...) on an input with 2 channels: expected a bias of shape (16,).
        """
        names = self.weight_names()
        if not isinstance(params, Mapping) or set(params) != set(names):
            # raises, naming the keys
            check_param_shapes(self, params, dict.fromkeys(names, ()), "", path)
        shape = tuple(jnp.shape(params[self._COMPUTE_PARAM]))
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"{path}[{self._COMPUTE_PARAM!r}] of {type(self).__name__} must have "
                f"{self.rank + 2} axes; received shape {shape}."
            )
        channels = self.input_channels(params)
        context = f"{self._describe()} on an input with {channels} channels"
        expected = self._with_lora(self._param_shapes(channels))
        check_param_shapes(self, params, expected, context, path)

    def input_channels(self, params: Params) -> int:
        """The input channel count ``params`` were made for, read from the
        compute kernel: ``(*k, in // groups, out)``, or transposed ``(*k,
        out // groups, in)`` (depthwise and separable kernels have no
        groups: ``(*k, in, multiplier)``)."""
        shape = jnp.shape(params[self._COMPUTE_PARAM])
        if self.transposed:
            return shape[-1]
        return shape[-2] * getattr(self, "groups", 1)

    # ---- streaming (conv1djax.stream_contract) ---------------------------

    def _stream_extent(self) -> int:
        return (self.kernel_size[0] - 1) * self.dilation_rate[0] + 1

    def stream_timing(self) -> stream_contract.Timing:
        """How the 1-D convolution streams: a stride-1 one keeps its kernel
        extent less one past steps and emits each output as late as its
        right padding needs; a strided one emits exact outputs as windows
        complete (``padding="same"`` refused: it depends on the whole
        length).

        Raises:
          TypeError: for a layer that is not 1-D, pads with
            ``padding_mode`` other than zeros (future samples), or whose left
            padding exceeds its kernel extent less one.
        """
        stream_contract.require_1d(self)
        if self.padding_mode != "zeros":
            raise stream_contract.cannot_stream(
                self, f"padding_mode={self.padding_mode!r} pads with future samples"
            )
        k_eff = self._stream_extent()
        (left, right), = self.paddings((4 * k_eff,))  # fmt: skip
        if self.strides[0] > 1:
            if self.padding == "same":
                raise stream_contract.cannot_stream(
                    self,
                    f"strides={self.strides[0]} with padding='same' pads by an amount "
                    "that depends on the whole length; use 'causal', 'valid' or an "
                    "explicit padding",
                )
            return stream_contract.Timing(
                stride=self.strides[0], window=k_eff, left=left, right=right
            )
        if left > k_eff - 1:
            raise stream_contract.cannot_stream(
                self,
                f"its left padding exceeds its kernel's extent less one (padding="
                f"{self.padding!r}), so outputs would precede their inputs",
            )
        return stream_contract.Timing(
            latency=k_eff - 1 - left, tail=right, history=k_eff - 1, span=k_eff - 1
        )

    def _stream_conv(self, params: Params) -> tuple[ConvBase, Params]:
        """The ``"valid"`` convolution the stream runs, and its params."""
        return _valid_spec(self), params

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The convolution's outputs on a window of its input stream."""
        spec, spec_params = self._stream_conv(params)
        return spec.apply(spec_params, z)

    def stream_taps(
        self, params: Params
    ) -> tuple[range, Callable[[jax.Array], jax.Array]]:
        """A one-step chunk reads every ``dilation``-th past step and runs the
        undilated kernel once on them, with the lowering ``impl="auto"``
        takes for one output per example
        (:func:`~conv1djax.lowering.choose.choose_step_impl`)."""
        spec, spec_params = self._stream_conv(params)
        offsets = range(0, self._stream_extent() - 1, spec.dilation_rate[0])

        def run(window: jax.Array) -> jax.Array:
            impl = spec.impl
            if impl == "auto":
                kernels = [p for n, p in spec_params.items() if n.endswith("kernel")]
                impl = choose.choose_step_impl(
                    work=math.prod(window.shape[:-2]) * sum(k.size for k in kernels),
                    dtype=spec.compute_dtype or kernels[0].dtype,
                    backend=jax.default_backend(),
                )
            return _undilated_spec(spec, impl).apply(spec_params, window)

        return offsets, run

    def _describe(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size})"


class FilteredConv(ConvBase):
    """A convolution with ``filters`` and ``groups`` and one ``kernel``:
    the base of ``Conv*D`` and ``Conv*DTranspose``."""

    if TYPE_CHECKING:  # fields of every subclass
        filters: int
        groups: int

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)
        if isinstance(self.padding, str):  # PyTorch's explicit padding allows it
            _validation.strides_and_dilation(self.strides, self.dilation_rate)
        put("filters", _validation.positive_int(self.filters, "filters"))
        put("groups", _validation.positive_int(self.groups, "groups"))
        if self.filters % self.groups:
            raise ValueError(
                f"`filters` (={self.filters}) must be divisible by `groups` "
                f"(={self.groups})."
            )
        if self.transposed:
            # An explicit padding takes PyTorch's output_padding rule.
            explicit = not isinstance(self.padding, str)
            put(
                "output_padding",
                _validation.output_padding(
                    self.output_padding,
                    self.strides,
                    self.dilation_rate if explicit else None,
                ),
            )

    def _check_channels(
        self, channels: int, input_shape: ShapeLike, *, at_apply: bool
    ) -> None:
        if not channels % self.groups:
            return
        if at_apply:
            raise ValueError(
                f"{type(self).__name__}(groups={self.groups}) needs input channels "
                f"divisible by groups; the input has {channels} channels."
            )
        raise ValueError(
            f"The input's channel count (={channels}) must be divisible by "
            f"`groups` (={self.groups}); received input_shape="
            f"{tuple(input_shape)}."
        )

    def _param_shapes(self, channels: int) -> dict[str, tuple[int, ...]]:
        g = self.groups
        if self.transposed:
            kernel = (*self.kernel_size, self.filters // g, channels)
        else:
            kernel = (*self.kernel_size, channels // g, self.filters)
        shapes_ = {"kernel": kernel}
        if self.use_bias:
            shapes_["bias"] = (self.filters,)
        return shapes_

    def _out_channels(self, channels: int) -> int:
        del channels
        return self.filters

    def _describe(self) -> str:
        return (
            f"{type(self).__name__}(filters={self.filters}, kernel_size="
            f"{self.kernel_size}, groups={self.groups})"
        )

    def _convolve(
        self, params: Mapping[str, jax.Array], x: jax.Array, pads: shapes.Pads
    ) -> jax.Array:
        lower = lowering.conv_transpose if self.transposed else lowering.conv
        return lower(
            x,
            jnp.asarray(params["kernel"]),
            strides=self.strides,
            padding=pads,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            channels_first=self.data_format == "channels_first",
            impl=self.impl,
        )


@functools.lru_cache(maxsize=256)
def _valid_spec(layer: ConvBase) -> ConvBase:
    """The same convolution without padding (the stream supplies it)."""
    return dataclasses.replace(cast(Any, layer), padding="valid")


@functools.lru_cache(maxsize=256)
def _undilated_spec(layer: ConvBase, impl: str) -> ConvBase:
    """A stride-1 ``"valid"`` convolution without dilation, to run on a
    window of its taps."""
    return dataclasses.replace(cast(Any, layer), dilation_rate=(1,), impl=impl)
