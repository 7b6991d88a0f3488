"""Layer specs: immutable, hashable descriptions of a Conv1D or Conv1DTranspose.

A spec holds only static configuration, canonicalised and validated once, when
it is built (``kernel_size=3`` and ``(3,)`` give equal specs; padding and
data_format are lower-cased; names of activations, initializers, regularizers
and constraints are resolved to objects). Being hashable, a spec can be a
static argument of ``jax.jit``. The numerics live in :mod:`conv1djax._conv`;
the methods here delegate to it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from conv1djax import (
    _lowering,
    _shapes,
    _validation,
    activations,
    constraints,
    initializers,
    regularizers,
)

# Keys of a Keras layer config that describe the Keras object rather than the
# convolution; ``from_config`` accepts and drops them, so a config exported
# by ``keras.layers.Conv1D.get_config()`` loads directly.
_KERAS_ONLY_KEYS = frozenset({"name", "trainable", "dtype", "autocast"})

_REGISTRIES = {
    "activation": activations,
    "kernel_initializer": initializers,
    "bias_initializer": initializers,
    "kernel_regularizer": regularizers,
    "bias_regularizer": regularizers,
    "activity_regularizer": regularizers,
    "kernel_constraint": constraints,
    "bias_constraint": constraints,
}


def split_input_shape(input_shape, data_format: str, layer_name: str):
    """Returns ``(batch_shape, steps, channels)`` of a full input shape.

    Raises:
      ValueError: for a rank below 3 or an unknown (None) channel count.
      TypeError: when ``input_shape`` is not a sequence of ints and Nones.
    """
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(
            f"`input_shape` must be a tuple of ints (or None for unknown "
            f"entries); received {input_shape!r}."
        )
    shape = tuple(input_shape)
    for dim in shape:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            try:
                int(dim.__index__())
            except (AttributeError, TypeError):
                raise TypeError(
                    f"`input_shape` entries must be ints or None; received "
                    f"{input_shape!r}."
                ) from None
    shape = tuple(None if d is None else int(d) for d in shape)
    if len(shape) < 3:
        raise ValueError(
            f"{layer_name} expects inputs of rank >= 3, batch_shape + "
            f"{'(steps, channels)' if data_format == 'channels_last' else '(channels, steps)'}"
            f"; received an input of shape {shape} (rank {len(shape)})."
        )
    if data_format == "channels_last":
        batch_shape, steps, channels = shape[:-2], shape[-2], shape[-1]
    else:
        batch_shape, channels, steps = shape[:-2], shape[-2], shape[-1]
    if channels is None:
        raise ValueError(
            f"The channel axis of the input to {layer_name} must be known "
            f"(data_format={data_format!r}); received input_shape={shape}."
        )
    return batch_shape, steps, channels


def _impl(value) -> str:
    """Canonicalises the ``impl`` option: a lowering name, any case."""
    if isinstance(value, str) and value.lower() in _lowering.IMPLS:
        return value.lower()
    raise ValueError(
        f"`impl` must be one of {', '.join(map(repr, _lowering.IMPLS))}; "
        f"received impl={value!r}."
    )


class _ConvSpec:
    """Methods shared by :class:`Conv1D` and :class:`Conv1DTranspose`."""

    transposed: ClassVar[bool]
    _paddings: ClassVar[tuple[str, ...]]

    def __post_init__(self):
        name = type(self).__name__
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        put("filters", _validation.positive_int(self.filters, "filters"))
        put(
            "kernel_size", _validation.single_int_tuple(self.kernel_size, "kernel_size")
        )
        put("strides", _validation.single_int_tuple(self.strides, "strides"))
        put(
            "dilation_rate",
            _validation.single_int_tuple(self.dilation_rate, "dilation_rate"),
        )
        put("groups", _validation.positive_int(self.groups, "groups"))
        if (
            self.transposed
            and isinstance(self.padding, str)
            and (self.padding.lower() == "causal")
        ):
            raise ValueError(
                f"{name} does not support padding='causal' (a transposed "
                "convolution has no causal form in Keras); use 'valid' or 'same'."
            )
        put("padding", _validation.padding_name(self.padding, self._paddings))
        put("data_format", _validation.data_format(self.data_format))
        put("use_bias", _validation.boolean(self.use_bias, "use_bias"))
        _validation.strides_and_dilation(self.strides[0], self.dilation_rate[0])
        if self.filters % self.groups:
            raise ValueError(
                f"`filters` (={self.filters}) must be divisible by `groups` "
                f"(={self.groups})."
            )
        if self.transposed and self.output_padding is not None:
            op = _validation.output_padding(self.output_padding, self.strides[0])
            put("output_padding", (op,))
        for field, registry in _REGISTRIES.items():
            put(field, registry.get(getattr(self, field), field))
        put("impl", _impl(self.impl))

    # ---- shapes ---------------------------------------------------------

    def _output_padding(self) -> int | None:
        return (
            self.output_padding[0] if self.transposed and self.output_padding else None
        )

    def padding_pair(self, length: int) -> tuple[int, int]:
        """The ``(left, right)`` padding applied for an input of ``length``."""
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        if self.transposed:
            return _shapes.conv_transpose_padding(
                k, s, self.padding, self._output_padding(), d
            )
        return _shapes.conv_padding(length, k, s, self.padding, d)

    def output_length(self, length: int | None) -> int | None:
        """The output steps for ``length`` input steps (None stays None)."""
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        if self.transposed:
            return _shapes._conv_transpose_length(
                length, k, s, self.padding, self._output_padding(), d
            )
        return _shapes._conv_length(length, k, s, self.padding, d)

    def param_shapes(self, input_shape) -> dict[str, tuple[int, ...]]:
        """The shapes of ``init``'s params for an input of ``input_shape``.

        Raises:
          ValueError: when the channel count is unknown or not divisible by
            ``groups``, or the input is too short for the kernel.
        """
        _, steps, channels = split_input_shape(
            input_shape, self.data_format, type(self).__name__
        )
        if channels % self.groups:
            raise ValueError(
                f"The input's channel count (={channels}) must be divisible by "
                f"`groups` (={self.groups}); received input_shape="
                f"{tuple(input_shape)}."
            )
        self.output_length(steps)  # raises early for a too-short input
        k = self.kernel_size[0]
        if self.transposed:
            kernel = (k, self.filters // self.groups, channels)
        else:
            kernel = (k, channels // self.groups, self.filters)
        shapes = {"kernel": kernel}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape) -> tuple[int | None, ...]:
        """The output shape for ``input_shape`` (None entries stay None).

        The activation's effect is included: ``"glu"`` halves the last axis.

        >>> import conv1djax as cj
        >>> cj.Conv1D(32, 3).compute_output_shape((4, 7, 10, 128))
        (4, 7, 8, 32)
        """
        batch_shape, steps, _ = split_input_shape(
            input_shape, self.data_format, type(self).__name__
        )
        self.param_shapes(input_shape)
        out_steps = self.output_length(steps)
        if self.data_format == "channels_last":
            shape = (*batch_shape, out_steps, self.filters)
        else:
            shape = (*batch_shape, self.filters, out_steps)
        if self.activation is None:
            return shape
        return _shapes.eval_output_shape(self.activation, shape)

    def count_params(self, input_shape) -> int:
        """The number of scalars in the params for ``input_shape``.

        >>> import conv1djax as cj
        >>> cj.Conv1D(32, 3).count_params((None, 10, 128))
        12320
        """
        return sum(math.prod(s) for s in self.param_shapes(input_shape).values())

    # ---- numerics (in conv1djax._conv) ----------------------------------

    def init(self, key, input_shape, *, dtype=jnp.float32) -> dict[str, jax.Array]:
        """Same as ``conv1d_init`` / ``conv1d_transpose_init`` for this spec."""
        from conv1djax import _conv

        return _conv.init(self, key, input_shape, dtype=dtype)

    def apply(self, params, x) -> jax.Array:
        """Same as ``conv1d_apply`` / ``conv1d_transpose_apply`` for this spec."""
        from conv1djax import _conv

        return _conv.apply(self, params, x)

    # ---- configs --------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable for built-in objects.

        Activations are given by name; initializers, regularizers and
        constraints as ``{"class_name": ..., "config": ...}`` dicts (Keras's
        format, so ``keras.layers.Conv1D.from_config`` reads them too). User
        callables are returned as they are, and then the config is only
        round-trippable in-process.
        """
        config = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _REGISTRIES:
                value = _REGISTRIES[field.name].serialize(value)
            config[field.name] = value
        if config["impl"] == "auto":
            del config["impl"]  # not a Keras argument: keep Keras configs loadable
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        """Builds a spec from ``get_config()``'s dict, or from a Keras layer's.

        Raises:
          ValueError: for keys that are not arguments of this spec.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(
            set(config) - names - _KERAS_ONLY_KEYS - {"lora_rank", "lora_alpha"}
        )
        if unknown:
            raise ValueError(
                f"Unknown keys in the config of {cls.__name__}: {unknown}. "
                f"Expected keys among {sorted(names)}."
            )
        if config.get("lora_rank"):
            raise ValueError(
                f"{cls.__name__} has no LoRA; received lora_rank="
                f"{config['lora_rank']!r} in the config."
            )
        return cls(**{k: v for k, v in config.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Conv1D(_ConvSpec):
    """Spec of a 1-D convolution layer, Keras 3's ``Conv1D``.

    Computes ``activation(conv1d(x, kernel) + bias)`` over inputs of shape
    ``batch_shape + (steps, channels)`` (or ``batch_shape + (channels,
    steps)`` with ``data_format="channels_first"``), one or more batch axes.
    The kernel has Keras's layout ``(kernel_size, channels // groups,
    filters)``.

    Args:
      filters: number of output channels.
      kernel_size: int or 1-tuple, the window length.
      strides: int or 1-tuple; > 1 is incompatible with ``dilation_rate`` > 1.
      padding: "valid", "same" (TensorFlow's: the odd extra element on the
        right) or "causal" (``output[t]`` never depends on ``input[t+1:]``);
        any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first".
      dilation_rate: int or 1-tuple.
      groups: input channels and filters are split into this many groups.
      activation: None, a Keras activation name, or a callable.
      use_bias: whether a bias vector is added.
      kernel_initializer, bias_initializer: Keras names, config dicts,
        :mod:`conv1djax.initializers` objects or callables
        ``(key, shape, dtype) -> array``.
      kernel_regularizer, bias_regularizer, activity_regularizer: Keras names,
        :mod:`conv1djax.regularizers` objects or callables
        ``weights -> scalar``; loss terms, used in training.
      kernel_constraint, bias_constraint: Keras names,
        :mod:`conv1djax.constraints` objects or callables
        ``weights -> weights``; projections applied after each update.
      impl: how the convolution is lowered, not a Keras argument: "auto"
        (default: chosen at trace time from static shapes and the platform),
        "reference" (one ``lax.conv_general_dilated``, as Keras calls it), or
        a core forced on CPU's rewrites: "direct", "blockdiag", "shift",
        "fft", "ncw". All give the same numbers up to float32 rounding.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv1D(32, 3, activation="relu")
    >>> params = layer.init(jax.random.key(0), (4, 10, 128))
    >>> params["kernel"].shape, params["bias"].shape
    ((3, 128, 32), (32,))
    >>> layer.apply(params, jnp.ones((4, 7, 10, 128))).shape
    (4, 7, 8, 32)
    """

    filters: int
    kernel_size: int | tuple[int]
    strides: int | tuple[int] = 1
    padding: str = "valid"
    data_format: str | None = "channels_last"
    dilation_rate: int | tuple[int] = 1
    groups: int = 1
    activation: Any = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None
    impl: str = "auto"

    transposed: ClassVar[bool] = False
    _paddings: ClassVar[tuple[str, ...]] = _validation.CONV_PADDINGS


@dataclasses.dataclass(frozen=True)
class Conv1DTranspose(_ConvSpec):
    """Spec of a 1-D transposed convolution layer, Keras 3's ``Conv1DTranspose``.

    The adjoint of a :class:`Conv1D`: it maps a convolution's output shape
    back to its input shape. The kernel has Keras's layout ``(kernel_size,
    filters // groups, channels)``. Output lengths follow Keras exactly: with
    ``padding="valid"``, ``(L - 1) * strides + max(k_eff, strides)`` by
    default; with ``"same"``, ``L * strides``; an explicit ``output_padding``
    changes both as documented in :func:`conv1djax.conv_transpose_output_length`.

    Args:
      filters, kernel_size, strides, data_format, dilation_rate, activation,
      use_bias, and the initializer, regularizer and constraint arguments:
        as for :class:`Conv1D`.
      padding: "valid" or "same" (any case); "causal" is refused.
      output_padding: None, or an int (or 1-tuple) smaller than ``strides``:
        extra steps added on the right of the output.
      groups: an extension over Keras, with PyTorch's meaning: channels and
        filters are split into this many independent groups.
      impl: as for :class:`Conv1D`.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv1DTranspose(8, 3, strides=2, padding="same")
    >>> params = layer.init(jax.random.key(0), (2, 10, 4))
    >>> params["kernel"].shape
    (3, 8, 4)
    >>> layer.apply(params, jnp.ones((2, 10, 4))).shape
    (2, 20, 8)
    """

    filters: int
    kernel_size: int | tuple[int]
    strides: int | tuple[int] = 1
    padding: str = "valid"
    output_padding: int | tuple[int] | None = None
    data_format: str | None = "channels_last"
    dilation_rate: int | tuple[int] = 1
    groups: int = 1
    activation: Any = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None
    impl: str = "auto"

    transposed: ClassVar[bool] = True
    _paddings: ClassVar[tuple[str, ...]] = _validation.TRANSPOSE_PADDINGS

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.groups == 1:
            # Keras's Conv1DTranspose has no `groups`; leaving the default out
            # keeps the config loadable by keras.layers.Conv1DTranspose.
            del config["groups"]
        return config
