"""Wrappers that reparametrize the kernel of the layer they wrap:
``SpectralNormalization`` (Keras 3's), ``WeightNormalization`` (PyTorch's
``torch.nn.utils.parametrizations.weight_norm``) and
``TorchSpectralNormalization`` (PyTorch's ``parametrizations.spectral_norm``).

Each wraps one layer whose params hold a ``kernel`` (any convolution but the
separable ones, whose two kernels neither Keras nor PyTorch normalize as one;
``Dense``), and runs that layer's own ``apply`` with the kernel it computes.
The params nest the wrapped layer's under ``"layer"`` (its regularizers and
constraints apply to them there, in training too), beside the wrapper's own
weights::

    SpectralNormalization       {"layer": {"kernel", "bias"}, "vector_u"}
    WeightNormalization         {"layer": {"kernel" (v), "bias"}, "g"}
    TorchSpectralNormalization  {"layer": {"kernel", "bias"}, "u", "v"}

The power-iteration vectors are state (``non_trainable_weights()``),
updated by a training-mode call (:func:`conv1djax.apply_training`, the
train step). All three stream as the wrapped layer does, with the kernel
``apply`` uses.

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> layer = cj.WeightNormalization(cj.Conv1D(4, 3))
>>> params = layer.init(0, (None, 16, 2))
>>> {k: v.shape for k, v in params["layer"].items()}, params["g"].shape
({'kernel': (3, 2, 4), 'bias': (4,)}, (1, 1, 4))
>>> layer.apply(params, jnp.ones((1, 16, 2))).shape
(1, 14, 4)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from conv1djax import _validation, initializers, keras_config, protocol, stream_contract
from conv1djax._typing import CallFn, Params, Shape, ShapeLike
from conv1djax.layers.params import as_array, torch_layout
from conv1djax.protocol import Layer, call_layer

_SUB = "layer"  # where the wrapped layer's params live


def _weight_names(layer: Any) -> tuple[str, ...] | None:
    names = getattr(layer, "weight_names", None)
    return tuple(names()) if callable(names) else None


def _builtin_layer_class(name: str) -> type | None:
    """The library's layer class called ``name`` (a public class of
    ``conv1djax.layers``, found among the specs' subclasses, so that this
    module need not import the package it is part of; ``layers.base``
    holds the shared bases, not layers of their own), or None."""
    found = [protocol.Layer]
    while found:
        cls = found.pop()
        module = cls.__module__
        if (
            cls.__name__ == name
            and not name.startswith("_")
            and module.startswith("conv1djax.layers.")
            and module != "conv1djax.layers.base"
        ):
            return cls
        found.extend(cls.__subclasses__())
    return None


def _layer_config(layer: Any) -> Any:
    """A built-in layer as Keras's nested layer entry (what Keras's
    ``Wrapper.get_config`` writes); any other layer as itself (``cj.save``
    writes it by its registered class)."""
    cls = type(layer)
    if _builtin_layer_class(cls.__name__) is cls and hasattr(layer, "get_config"):
        return {"module": "keras.layers", "class_name": cls.__name__,
                "config": layer.get_config(), "registered_name": None}  # fmt: skip
    return layer


def _layer_from_config(value: Any, cls: str) -> Any:
    """The wrapped layer from a config's ``"layer"`` entry: a layer, or
    Keras's nested ``{"class_name", "config"}`` of a built-in layer."""
    if protocol.is_layer(value):
        return value
    name = value.get("class_name") if isinstance(value, Mapping) else None
    layer_cls = _builtin_layer_class(name) if isinstance(name, str) else None
    if not (isinstance(layer_cls, type) and hasattr(layer_cls, "from_config")):
        raise ValueError(
            f"The 'layer' entry of a {cls} config must be a layer or Keras's "
            f"{{'class_name': ..., 'config': ...}} of a conv1djax layer; received "
            f"{_validation.short_repr(value)}."
        )
    return layer_cls.from_config(value.get("config", {}))


def _positive_int(value: Any, name: str, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` of {cls} must be an int; received {name}={value!r} of type "
            f"{type(value).__name__}."
        )
    if value <= 0:
        raise ValueError(
            f"`{name}` of {cls} should be greater than zero. Received: `{name}={value}`"
        )
    return int(value)


@dataclasses.dataclass(frozen=True)
class _KernelWrapper(Layer):
    """What the wrappers share: the wrapped layer as the sub-layer
    ``"layer"``, shapes, ``init``, ``apply`` through ``call`` with the kernel
    :meth:`_inference_params` computes, streaming as the wrapped layer, and
    configs in Keras's wrapper format. A subclass says its own weights
    (``_own_shapes``, ``_init_own``) and the kernel it runs."""

    layer: Any

    # The param names a wrapped layer's kernel may have, in that preference.
    _KERNELS: ClassVar[tuple[str, ...]] = ("kernel",)

    def __post_init__(self) -> None:
        super().__post_init__()
        cls = type(self).__name__
        protocol.check_layer(self.layer, f"`layer` of {cls}")
        if protocol.sublayers(self.layer):
            raise ValueError(
                f"{cls} wraps one layer with a kernel; received the composite "
                f"{type(self.layer).__name__}. Wrap each of its layers instead."
            )
        self._kernel_name()  # raises for a layer without a kernel

    # ---- the kernel -------------------------------------------------------

    def _kernel_name(self) -> str:
        """The wrapped layer's kernel param (its ``weight_names()`` say which;
        a layer without that method is checked at ``init``).

        Raises:
          ValueError: for a layer without a kernel (a separable convolution
            has two: wrap a depthwise one and a 1x1 one instead).
        """
        names = _weight_names(self.layer)
        if names is None:
            return self._KERNELS[0]
        for name in self._KERNELS:
            if name in names:
                return name
        hint = (
            " A separable convolution has two kernels: wrap a DepthwiseConv and a "
            "1x1 Conv instead, each in its own wrapper."
            if "depthwise_kernel" in names
            else ""
        )
        raise ValueError(
            f"{type(self).__name__} normalizes a layer's "
            f"{' or '.join(map(repr, self._KERNELS))} weight; `layer` "
            f"({type(self.layer).__name__}) has {list(names) or 'no weights'}.{hint}"
        )

    def _kernel(self, inner: Params, path: str = "params") -> jax.Array:
        name = self._kernel_name()
        if not isinstance(inner, Mapping) or name not in inner:
            got = sorted(inner) if isinstance(inner, Mapping) else type(inner).__name__
            raise ValueError(
                f"{path}[{_SUB!r}] of {type(self).__name__} must hold the wrapped "
                f"layer's {name!r}; received {got}."
            )
        kernel = inner[name]
        if jnp.ndim(kernel) < 2:
            raise ValueError(
                f"{path}[{_SUB!r}][{name!r}] of {type(self).__name__} must have at "
                f"least 2 axes; received shape {jnp.shape(kernel)}."
            )
        return jnp.asarray(kernel)

    # ---- what a subclass says -----------------------------------------------

    def _own_shapes(self, kernel: jax.Array) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _init_own(self, key: jax.Array, kernel: jax.Array) -> dict[str, jax.Array]:
        raise NotImplementedError

    def _inference_params(self, params: Params) -> Params:
        """The wrapped layer's params, with the kernel inference runs."""
        raise NotImplementedError

    def _finish(self, y: Any, x: ArrayLike) -> Any:
        return y

    # ---- the protocol -------------------------------------------------------

    def sublayers(self) -> dict[str, Any]:
        """``{"layer": layer}``: the wrapped layer's params are
        ``params["layer"]``."""
        return {_SUB: self.layer}

    def sublayer_input_shapes(self, input_shape: ShapeLike) -> dict[str, Shape]:
        """``{"layer": input_shape}``: the wrapped layer sees the input."""
        return {_SUB: tuple(input_shape)}

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The wrapped layer's output shape."""
        return tuple(self.layer.compute_output_shape(input_shape))

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, Any]:
        """The wrapped layer's params under ``"layer"``, and the wrapper's
        own weights (in the kernel's dtype); ``key``: a PRNG key or an int
        seed.

        Raises:
          ValueError, TypeError: as the wrapped layer's ``init``; a
            ``ValueError`` when its params hold no kernel.
        """
        key = _validation.prng_key(key)
        inner_key, own_key = jax.random.split(key)
        inner = protocol.init_checked(
            self.layer, inner_key, input_shape, dtype,
            f"by the layer {type(self).__name__} wraps",
        )  # fmt: skip
        return {_SUB: inner, **self._init_own(own_key, self._kernel(inner))}

    def check_own_params(self, params: Params, path: str = "params") -> None:
        """Checks the wrapper's own weights' names (their shapes, which
        depend on the kernel, are checked by ``apply``).

        Raises:
          ValueError: naming ``path``, the keys expected and received.
        """
        want = sorted(self.non_trainable_weights() + self._trainable_own())
        if not isinstance(params, Mapping) or sorted(params) != want:
            got = sorted(params) if isinstance(params, Mapping) else params
            raise ValueError(
                f"{path} of {type(self).__name__} must hold {want} besides "
                f"{_SUB!r}; received {got!r}."
            )

    def non_trainable_weights(self) -> tuple[str, ...]:
        """The wrapper's state: its power-iteration vectors (none for
        weight normalization)."""
        return ()

    def _trainable_own(self) -> tuple[str, ...]:
        return ()

    def _split(self, params: Params, path: str = "params") -> tuple[Params, Params]:
        """``(own weights, the wrapped layer's params)``, checked against the
        kernel."""
        own, subs = protocol.split_params(self, params, path)
        self.check_own_params(own, path)
        inner = subs[_SUB]
        kernel = self._kernel(inner, path)
        for name, shape in self._own_shapes(kernel).items():
            if tuple(jnp.shape(own[name])) != shape:
                raise ValueError(
                    f"{path}[{name!r}] of {type(self).__name__} has shape "
                    f"{jnp.shape(own[name])}; the wrapped kernel of shape "
                    f"{kernel.shape} needs {shape}."
                )
        return own, inner

    def apply(self, params: Params, x: ArrayLike, *, call: CallFn = call_layer) -> Any:
        """Inference: the wrapped layer (through ``call``) with the kernel
        :meth:`_inference_params` gives."""
        return self._finish(call(self.layer, self._inference_params(params), x), x)

    # ---- streaming (conv1djax.stream_contract): as the wrapped layer ----------

    def stream_timing(self) -> stream_contract.Timing:
        """The wrapped layer's timing.

        Raises:
          TypeError: when the wrapped layer cannot stream.
        """
        return stream_contract.timing(self.layer)

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The wrapped layer's outputs on a window, with the inference
        kernel."""
        y = self.layer.stream_run(self._inference_params(params), z)
        return self._finish(y, z)

    def stream_taps(
        self, params: Params
    ) -> tuple[range, Callable[[jax.Array], jax.Array]]:
        """The wrapped layer's taps, with the inference kernel."""
        inner = self._inference_params(params)
        declared = getattr(self.layer, "stream_taps", None)
        if callable(declared):
            offsets, run = declared(inner)
        else:
            offsets = range(self.stream_timing().history)

            def run(window: jax.Array) -> jax.Array:
                return self.layer.stream_run(inner, window)

        return offsets, lambda window: self._finish(run(window), window)

    # ---- configs ------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """``{"name", "layer", ...}``: the wrapped layer as Keras nests it
        (``{"module", "class_name", "config", "registered_name"}``, for a
        built-in layer), then the wrapper's arguments."""
        config: dict[str, Any] = {"name": self.name, "layer": _layer_config(self.layer)}
        for field in dataclasses.fields(self):
            if field.name not in ("name", "layer"):
                config[field.name] = getattr(self, field.name)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """The wrapper from ``get_config()``'s dict or Keras's (Keras's own
        keys, ``trainable`` and ``dtype``, dropped).

        Raises:
          ValueError: for unknown keys or a ``"layer"`` entry that is not a
            conv1djax layer.
        """
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(config) - names - keras_config.KERAS_ONLY_KEYS)
        if unknown or "layer" not in config:
            raise ValueError(
                f"Unknown keys in the config of {cls.__name__}: {unknown}. Expected "
                f"'layer' and keys among {sorted(names - {'layer'})}."
            )
        kwargs = {k: v for k, v in config.items() if k in names and k != "layer"}
        return cls(_layer_from_config(config["layer"], cls.__name__), **kwargs)


# ---- Keras 3's SpectralNormalization ----------------------------------------------


def _keras_normalize(x: jax.Array) -> jax.Array:
    """Keras's ``ops.normalize(x, axis=None)``: ``x * min(rsqrt(sum x^2),
    1 / 1e-7)``."""
    return x * jnp.minimum(lax.rsqrt(jnp.sum(jnp.square(x))), 1.0 / 1e-7)


@dataclasses.dataclass(frozen=True)
class SpectralNormalization(_KernelWrapper):
    """Spec of Keras 3's ``SpectralNormalization``: the wrapped layer's
    kernel divided by its largest singular value, estimated by power
    iteration, in training.

    The kernel ``W`` is seen as the matrix ``(-1, W.shape[-1])``; the state
    ``vector_u`` (``(1, W.shape[-1])``, Keras's ``TruncatedNormal(stddev=
    0.02)``) is iterated ``power_iterations`` times (``v = normalize(u W^T)``,
    ``u = normalize(v W)``), and ``sigma = v W u^T`` with ``u`` and ``v``
    constants for the gradient. As Keras 3 on JAX (``stateless_call``,
    ``fit``):

    - in training (:func:`conv1djax.apply_training`, the train step), the
      layer runs with ``W / sigma`` (the gradient flows through ``sigma``)
      and ``vector_u`` is updated; an all-zero kernel is left as it is;
    - ``apply`` (inference, Keras's ``training=False``) runs the stored
      kernel as it is, without normalizing: Keras's eager training call also
      writes ``W / sigma`` into the kernel, which its stateless (JAX)
      training drops. :meth:`normalized_weights` gives ``(u, W / sigma)``
      to do that write where wanted; :class:`TorchSpectralNormalization`
      normalizes at inference too;
    - the output is cast to the input's (floating) dtype.

    Args:
      layer: a layer whose params hold a ``kernel`` (a convolution, but not
        a separable one; ``Dense``) or ``embeddings``.
      power_iterations: the iterations per training call, >= 1.
      name: as every spec.

    Params: ``{"layer": the wrapped layer's, "vector_u": (1, out)}``;
    Keras's ``get_weights()`` order is ``kernel, vector_u`` and the wrapped
    layer's others (:meth:`weight_names`).

    Raises:
      ValueError: for ``power_iterations`` < 1, or a layer without a kernel.
      TypeError: for a ``layer`` that is not a layer, a non-int
        ``power_iterations``.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> sn = cj.SpectralNormalization(
    ...     cj.Conv2D(1, 2, kernel_initializer="ones"), power_iterations=8)
    >>> params = sn.init(0, (None, 2, 2, 1))
    >>> x = jnp.ones((1, 2, 2, 1))
    >>> float(sn.apply(params, x).squeeze())  # inference: the stored kernel
    4.0
    >>> y, params = cj.apply_training(sn, params, x)  # divided by sigma = 2
    >>> round(float(y.squeeze()), 4)
    2.0
    """

    power_iterations: int = 1

    _KERNELS: ClassVar[tuple[str, ...]] = ("kernel", "embeddings")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self,
            "power_iterations",
            _positive_int(
                self.power_iterations, "power_iterations", "SpectralNormalization"
            ),
        )

    def non_trainable_weights(self) -> tuple[str, ...]:
        """``("vector_u",)``: the power iteration's state."""
        return ("vector_u",)

    def weight_names(self) -> tuple[str, ...]:
        """Keras's ``get_weights()`` order, the wrapped layer's params as
        ``"layer/<name>"``: ``("layer/kernel", "vector_u", "layer/bias")``
        for a convolution with a bias (the wrapper tracks the kernel first,
        as Keras does).

        >>> import conv1djax as cj
        >>> cj.SpectralNormalization(cj.Conv1D(4, 3)).weight_names()
        ('layer/kernel', 'vector_u', 'layer/bias')
        """
        kernel = self._kernel_name()
        others = [n for n in _weight_names(self.layer) or (kernel,) if n != kernel]
        return (f"{_SUB}/{kernel}", "vector_u", *(f"{_SUB}/{n}" for n in others))

    def _own_shapes(self, kernel: jax.Array) -> dict[str, tuple[int, ...]]:
        return {"vector_u": (1, kernel.shape[-1])}

    def _init_own(self, key: jax.Array, kernel: jax.Array) -> dict[str, jax.Array]:
        u = initializers.TruncatedNormal(stddev=0.02)(key, (1, kernel.shape[-1]),
                                                      kernel.dtype)  # fmt: skip
        return {"vector_u": jnp.asarray(u, kernel.dtype)}

    def normalized_weights(self, params: Params) -> tuple[jax.Array, jax.Array]:
        """``(vector_u, kernel / sigma)`` after ``power_iterations`` steps
        from the stored ``vector_u``: Keras's method of that name, in the
        state's and the kernel's dtypes."""
        own, inner = self._split(params)
        kernel = self._kernel(inner)
        return self._normalized(kernel, jnp.asarray(own["vector_u"]))

    def _normalized(
        self, kernel: jax.Array, u: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        w = kernel.reshape(-1, kernel.shape[-1])
        v = u
        for _ in range(self.power_iterations):
            v = _keras_normalize(u @ w.T)
            u = _keras_normalize(v @ w)
        u, v = lax.stop_gradient(u), lax.stop_gradient(v)
        sigma = (v @ w) @ u.T
        return u.astype(kernel.dtype), (kernel / sigma).astype(kernel.dtype)

    def _inference_params(self, params: Params) -> Params:
        _, inner = self._split(params)
        return inner

    def _finish(self, y: Any, x: ArrayLike) -> Any:
        dtype = jnp.result_type(x)
        return y.astype(dtype) if jnp.issubdtype(dtype, jnp.floating) else y

    def apply_training(
        self,
        params: Params,
        x: ArrayLike,
        *,
        key: jax.Array | None = None,
        call: CallFn = call_layer,
    ) -> tuple[Any, dict[str, jax.Array]]:
        """Training: ``(the wrapped layer's output with W / sigma,
        {"vector_u": the iterated u})``; ``key`` is unused (nothing is
        drawn)."""
        del key
        own, inner = self._split(params)
        name = self._kernel_name()
        kernel = self._kernel(inner)
        u = jnp.asarray(own["vector_u"], kernel.dtype)
        u, normalized = lax.cond(
            jnp.all(kernel == 0),
            lambda: (u, kernel),
            lambda: self._normalized(kernel, u),
        )
        y = call(self.layer, {**inner, name: normalized}, x)
        return self._finish(y, x), {"vector_u": u}


# ---- PyTorch's weight_norm and spectral_norm --------------------------------------


def _torch_kind(layer: Any) -> str | None:
    """The wrapped layer's PyTorch module (``torch_module``: ``"conv"``,
    ``"transposed"``, ``"depthwise"``, ``"linear"`` for ``Dense``)."""
    return getattr(layer, "torch_module", None)


def _torch_dim0_axes(layer: Any) -> int:
    """How many trailing axes of the kernel make PyTorch's weight's dim 0:
    the output channels of a convolution and of ``Dense`` (the last axis),
    the input channels of a transposed one (its last axis too), ``in *
    depth_multiplier`` of a depthwise one (the last two)."""
    return 2 if _torch_kind(layer) == "depthwise" else 1


def _torch_prefixed(
    state_dict: Any, cls: str, names: Mapping[str, str], use_bias: bool
) -> dict[str, Any]:
    """``{our name: tensor}`` from a PyTorch state dict with exactly the
    keys ``names`` maps (and ``"bias"`` when the wrapped layer has one)."""
    want = set(names) | ({"bias"} if use_bias else set())
    if not isinstance(state_dict, Mapping) or set(state_dict) != want:
        got = sorted(state_dict) if isinstance(state_dict, Mapping) else state_dict
        raise ValueError(
            f"{cls} takes a state dict with the keys {sorted(want)}; received {got!r}."
        )
    return {ours: state_dict[theirs] for theirs, ours in names.items()}


@dataclasses.dataclass(frozen=True)
class WeightNormalization(_KernelWrapper):
    """Spec of PyTorch's weight normalization
    (``torch.nn.utils.parametrizations.weight_norm(module, dim=0)``) around
    a layer: the kernel is ``g * v / ||v||``, the norm over every axis but
    PyTorch's weight's dim 0.

    PyTorch's dim 0 is the output channels of a convolution and a ``Linear``
    (``Dense``), the *input* channels of a transposed convolution (its
    weight is ``(in, out // groups, *k)``) and ``in * depth_multiplier`` of a
    depthwise one; in the kernel's layout here these are its last axis (the
    last two, ``(in, depth_multiplier)``, for a depthwise one), so ``g`` has
    the kernel's rank with 1 on every other axis. ``init`` makes ``v`` the
    wrapped layer's initial kernel and ``g`` its norm (PyTorch's
    registration), so a fresh wrapper computes as the layer does. Training
    and inference are the same.

    Args:
      layer: a layer whose params hold a ``kernel`` (a convolution, but not
        a separable one; ``Dense``).
      name: as every spec.

    Params: ``{"layer": {"kernel": v, ...}, "g": g}``; PyTorch's
    ``parametrizations.weight.original0`` is ``g``, ``original1`` is ``v``
    (:func:`conv1djax.interop.from_torch` reads those and the older
    ``weight_g`` / ``weight_v``; :func:`~conv1djax.interop.to_torch` writes
    the former).

    Raises:
      ValueError: for a layer without a kernel.
      TypeError: for a ``layer`` that is not a layer.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> wn = cj.WeightNormalization(cj.Conv1DTranspose(4, 3, strides=2))
    >>> params = wn.init(0, (None, 8, 6))
    >>> params["g"].shape  # one magnitude per input channel, as PyTorch's dim 0
    (1, 1, 6)
    >>> plain = cj.Conv1DTranspose(4, 3, strides=2)
    >>> x = jnp.ones((2, 8, 6))
    >>> bool(jnp.allclose(wn.apply(params, x), plain.apply(params["layer"], x),
    ...                   atol=1e-6))
    True
    """

    def _axes(self, kernel: jax.Array) -> tuple[int, ...]:
        return tuple(range(kernel.ndim - _torch_dim0_axes(self.layer)))

    def _norm(self, kernel: jax.Array) -> jax.Array:
        return jnp.sqrt(jnp.sum(jnp.square(kernel), self._axes(kernel), keepdims=True))

    def _trainable_own(self) -> tuple[str, ...]:
        return ("g",)

    def _own_shapes(self, kernel: jax.Array) -> dict[str, tuple[int, ...]]:
        axes = self._axes(kernel)
        return {"g": tuple(1 if i in axes else n for i, n in enumerate(kernel.shape))}

    def _init_own(self, key: jax.Array, kernel: jax.Array) -> dict[str, jax.Array]:
        del key
        return {"g": self._norm(kernel)}

    def _inference_params(self, params: Params) -> Params:
        own, inner = self._split(params)
        name = self._kernel_name()
        v = self._kernel(inner)
        g = jnp.asarray(own["g"], v.dtype)
        return {**inner, name: v * (g / self._norm(v))}

    # ---- PyTorch state dicts (conv1djax.interop.from_torch / to_torch) --------

    def from_torch_state(
        self, state_dict: Mapping[str, Any], convert: Callable[[Any, Any], Params]
    ) -> Params:
        """The params from a weight-normalized PyTorch module's
        ``state_dict()``: ``parametrizations.weight.original0`` / ``original1``
        (or the older ``weight_g`` / ``weight_v``) and ``bias``; ``convert``
        reads the wrapped layer's (``interop.from_torch``)."""
        use_bias = bool(getattr(self.layer, "use_bias", False))
        new = {"parametrizations.weight.original0": "g",
               "parametrizations.weight.original1": "v"}  # fmt: skip
        old = {"weight_g": "g", "weight_v": "v"}
        names = (
            old if isinstance(state_dict, Mapping) and "weight_g" in state_dict else new
        )
        got = _torch_prefixed(state_dict, "WeightNormalization", names, use_bias)
        inner_sd = {"weight": got["v"]}
        if use_bias:
            inner_sd["bias"] = state_dict["bias"]
        inner = convert(self.layer, inner_sd)
        kernel = self._kernel(inner)
        g = as_array(got["g"], "g")
        shape = self._own_shapes(kernel)["g"]
        if g.size != math.prod(shape):
            raise ValueError(
                f"The PyTorch g of shape {g.shape} does not fit the weight of shape "
                f"{np.shape(as_array(got['v'], 'v'))}: expected {math.prod(shape)} entries."
            )
        params = {_SUB: inner, "g": jnp.asarray(g.reshape(shape))}
        self._split(params)
        return params

    def to_torch_state(
        self, params: Params, convert: Callable[[Any, Any], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """A ``state_dict`` for the PyTorch module with
        ``parametrizations.weight_norm`` (``original0``: g, ``original1``: v);
        ``convert`` writes the wrapped layer's (``interop.to_torch``)."""
        own, inner = self._split(params)
        state = convert(self.layer, inner)
        v = state.pop("weight")
        g = np.asarray(own["g"]).reshape(v.shape[0], *(1,) * (v.ndim - 1)).copy()
        return {**state, "parametrizations.weight.original0": g,
                "parametrizations.weight.original1": v}  # fmt: skip


def _torch_normalize(x: jax.Array, eps: float) -> jax.Array:
    """PyTorch's ``F.normalize(x, dim=0, eps)``: ``x / max(||x||, eps)``."""
    return x / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(x))), eps)


@dataclasses.dataclass(frozen=True)
class TorchSpectralNormalization(_KernelWrapper):
    """Spec of PyTorch's spectral normalization
    (``torch.nn.utils.parametrizations.spectral_norm(module)``) around a
    layer: the kernel divided by ``sigma = u . (W v)``, ``W`` PyTorch's
    weight as a matrix.

    ``W`` is PyTorch's weight (its layout, :func:`torch_layout`) with its
    dim 0 first (dim 1 for a transposed convolution, PyTorch's default),
    flattened after it: ``(out, in // groups * prod(k))`` for a convolution,
    ``(out // groups, in * prod(k))`` for a transposed one, ``(in *
    depth_multiplier, prod(k))`` for a depthwise one, ``(out, in)`` for
    ``Dense``. The state is PyTorch's ``u`` and ``v`` (in its order, so they
    carry over as they are). In training, ``n_power_iterations`` steps
    ``u = normalize(W v)``, ``v = normalize(W^T u)`` update them; inference
    uses the stored ones (PyTorch's ``eval()``); both divide by ``sigma``.
    ``init`` draws ``u``, ``v`` from a normal and runs 15 steps, as PyTorch
    does when registering (its random numbers differ).

    Where it differs from Keras's :class:`SpectralNormalization`: PyTorch
    keeps ``v`` too and starts each step from it, takes ``sigma`` from the
    new ``u`` and ``v`` (Keras's from the previous ``v``), normalizes at
    inference, and for a transposed or depthwise convolution iterates on
    another matrix (Keras's is always ``(-1, kernel.shape[-1])``), whose
    largest singular value is another number.

    Args:
      layer: a layer whose params hold a ``kernel`` (a convolution, but not
        a separable one; ``Dense``).
      n_power_iterations: the steps per training call, >= 1.
      eps: PyTorch's ``eps`` of the normalization.
      name: as every spec.

    Params: ``{"layer": the wrapped layer's, "u": (rows,), "v": (columns,)}``;
    PyTorch's ``parametrizations.weight.original``,
    ``parametrizations.weight.0._u`` and ``._v`` in
    :func:`conv1djax.interop.from_torch` / ``to_torch``.

    Raises:
      ValueError: for ``n_power_iterations`` < 1, a negative ``eps``, or a
        layer without a kernel.
      TypeError: for a ``layer`` that is not a layer.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> sn = cj.TorchSpectralNormalization(cj.Conv1D(4, 3))
    >>> params = sn.init(0, (None, 16, 2))
    >>> params["u"].shape, params["v"].shape  # (out,), (in * k,)
    ((4,), (6,))
    >>> w = params["layer"]["kernel"]
    >>> sigma = jnp.linalg.norm(w.reshape(-1, 4), 2)  # converged after 15 steps
    >>> y = sn.apply(params, jnp.ones((1, 16, 2)))
    >>> plain = cj.Conv1D(4, 3).apply({**params["layer"], "kernel": w / sigma},
    ...                               jnp.ones((1, 16, 2)))
    >>> bool(jnp.allclose(y, plain, atol=1e-4))
    True
    """

    n_power_iterations: int = 1
    eps: float = 1e-12

    def __post_init__(self) -> None:
        super().__post_init__()
        cls = "TorchSpectralNormalization"
        put = object.__setattr__.__get__(self)
        put("n_power_iterations",
            _positive_int(self.n_power_iterations, "n_power_iterations", cls))  # fmt: skip
        if isinstance(self.eps, bool) or not isinstance(self.eps, numbers.Real):
            raise TypeError(
                f"`eps` of {cls} must be a float; received eps={self.eps!r}."
            )
        if not self.eps >= 0:
            raise ValueError(f"`eps` of {cls} must be >= 0; received eps={self.eps!r}.")
        put("eps", float(self.eps))

    def non_trainable_weights(self) -> tuple[str, ...]:
        """``("u", "v")``: the power iteration's state."""
        return ("u", "v")

    def _matrix(self, kernel: jax.Array) -> jax.Array:
        w = torch_layout(kernel, _torch_kind(self.layer))
        if _torch_kind(self.layer) == "transposed":  # PyTorch's dim=1 first
            w = jnp.swapaxes(w, 0, 1)
        return w.reshape(w.shape[0], -1)

    def _own_shapes(self, kernel: jax.Array) -> dict[str, tuple[int, ...]]:
        rows, columns = self._matrix(kernel).shape
        return {"u": (rows,), "v": (columns,)}

    def _power(
        self, w: jax.Array, u: jax.Array, v: jax.Array, steps: int
    ) -> tuple[jax.Array, jax.Array]:
        for _ in range(steps):
            u = _torch_normalize(w @ v, self.eps)
            v = _torch_normalize(w.T @ u, self.eps)
        return lax.stop_gradient(u), lax.stop_gradient(v)

    def _init_own(self, key: jax.Array, kernel: jax.Array) -> dict[str, jax.Array]:
        w = self._matrix(kernel)
        ku, kv = jax.random.split(key)
        u = _torch_normalize(jax.random.normal(ku, (w.shape[0],), w.dtype), self.eps)
        v = _torch_normalize(jax.random.normal(kv, (w.shape[1],), w.dtype), self.eps)
        u, v = self._power(w, u, v, 15)
        return {"u": u, "v": v}

    def _divided(
        self, inner: Params, kernel: jax.Array, u: jax.Array, v: jax.Array
    ) -> Params:
        sigma = jnp.dot(u, self._matrix(kernel) @ v)
        return {**inner, self._kernel_name(): kernel / sigma}

    def _inference_params(self, params: Params) -> Params:
        own, inner = self._split(params)
        kernel = self._kernel(inner)
        u, v = (jnp.asarray(own[n], kernel.dtype) for n in ("u", "v"))
        return self._divided(inner, kernel, u, v)

    def apply_training(
        self,
        params: Params,
        x: ArrayLike,
        *,
        key: jax.Array | None = None,
        call: CallFn = call_layer,
    ) -> tuple[Any, dict[str, jax.Array]]:
        """Training: ``(the wrapped layer's output with W / sigma, {"u", "v"}
        after n_power_iterations steps)``; ``key`` is unused."""
        del key
        own, inner = self._split(params)
        kernel = self._kernel(inner)
        u, v = (jnp.asarray(own[n], kernel.dtype) for n in ("u", "v"))
        u, v = self._power(self._matrix(kernel), u, v, self.n_power_iterations)
        y = call(self.layer, self._divided(inner, kernel, u, v), x)
        return y, {"u": u, "v": v}

    # ---- PyTorch state dicts ---------------------------------------------------

    _TORCH_NAMES: ClassVar[Mapping[str, str]] = {
        "parametrizations.weight.original": "weight",
        "parametrizations.weight.0._u": "u",
        "parametrizations.weight.0._v": "v",
    }

    def from_torch_state(
        self, state_dict: Mapping[str, Any], convert: Callable[[Any, Any], Params]
    ) -> Params:
        """The params from a spectral-normalized PyTorch module's
        ``state_dict()`` (``parametrizations.weight.original``, ``.0._u``,
        ``.0._v``, ``bias``); ``convert`` reads the wrapped layer's."""
        use_bias = bool(getattr(self.layer, "use_bias", False))
        got = _torch_prefixed(
            state_dict, "TorchSpectralNormalization", self._TORCH_NAMES, use_bias
        )
        inner_sd = {"weight": got["weight"]}
        if use_bias:
            inner_sd["bias"] = state_dict["bias"]
        params = {_SUB: convert(self.layer, inner_sd),
                  "u": jnp.asarray(as_array(got["u"], "u")),
                  "v": jnp.asarray(as_array(got["v"], "v"))}  # fmt: skip
        self._split(params)
        return params

    def to_torch_state(
        self, params: Params, convert: Callable[[Any, Any], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """A ``state_dict`` for the PyTorch module with
        ``parametrizations.spectral_norm``."""
        own, inner = self._split(params)
        state = convert(self.layer, inner)
        weight = state.pop("weight")
        return {**state,
                "parametrizations.weight.original": weight,
                "parametrizations.weight.0._u": np.asarray(own["u"]).copy(),
                "parametrizations.weight.0._v": np.asarray(own["v"]).copy()}  # fmt: skip
