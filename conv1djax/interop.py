"""Weights in and out of Keras and PyTorch, layer by layer and for whole
models.

- :func:`from_keras` / :func:`to_keras`: a layer's params from and to the
  list ``keras_layer.get_weights()`` gives (Keras's kernel layouts are ours,
  so only the order matters).
- :func:`from_torch` / :func:`to_torch`: a convolution's params from and to
  a ``torch.nn.Conv{1,2,3}d`` / ``ConvTranspose{1,2,3}d`` state dict
  (``{"weight", "bias"}``); a depthwise layer is PyTorch's convolution with
  ``groups=in_channels``.
- :func:`from_keras_config` / :func:`to_keras_config`: a Keras
  ``Sequential``'s ``get_config()`` and ``get_weights()`` into a
  :class:`~conv1djax.Sequential` and its params, and back;
  :func:`load_keras_file` reads a ``.keras`` file Keras 3 saved (needs
  ``h5py``).
- :func:`from_torch_module` / :func:`from_torch_sequential`: a PyTorch
  module (a convolution, a pooling, a padding, an upsampling, an
  activation), or a ``torch.nn.Sequential`` of them, as the equivalent
  channels-first spec (or :class:`~conv1djax.Sequential`) and its params.

conv1djax never imports torch or keras: tensors are read through their
``.detach().cpu().numpy()`` (or ``numpy.asarray``), and nothing is
unpickled.

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> layer = cj.Conv1D(4, 3)
>>> params = layer.init(jax.random.key(0), (None, 16, 2))
>>> state_dict = cj.interop.to_torch(layer, params)  # torch.nn.Conv1d(2, 4, 3)'s
>>> {name: w.shape for name, w in state_dict.items()}
{'weight': (4, 2, 3), 'bias': (4,)}
>>> back = cj.interop.from_torch(layer, state_dict)
>>> bool(jnp.array_equal(back["kernel"], params["kernel"]))
True
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, overload

import jax
import jax.numpy as jnp
import numpy as np

from conv1djax import activations, models, protocol
from conv1djax import layers as _layers
from conv1djax import saving as _saving
from conv1djax._typing import LayerLike, Pads, Params, ShapeLike
from conv1djax.layers.base import ConvBase, FilteredConv

# PyTorch modules and tensors are typed Any: conv1djax never imports torch,
# it reads their attributes by name (and tensors through ``.detach()``).


def _array(value: Any, what: str) -> np.ndarray:  # any array, or a torch tensor
    """A NumPy array from an array, a JAX array or a torch tensor."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" and array.dtype.name != "bfloat16":
        raise TypeError(f"{what} must be an array of numbers; received {array.dtype}.")
    return array


def weight_names(layer: LayerLike) -> list[str]:
    """The layer's param names in Keras's ``get_weights()`` order: its
    ``weight_names()`` (``[]`` for a parameter-free layer, or a layer
    without that method).

    Raises:
      TypeError: for something that is not a layer, or a composite.
    """
    protocol.check_layer(layer, "`layer`")
    if protocol.sublayers(layer):
        raise TypeError(
            f"{type(layer).__name__} is a composite; its weights are its "
            "sub-layers': convert those (or use from_keras_config for a Sequential)."
        )
    names = getattr(layer, "weight_names", None)
    return list(names()) if callable(names) else []


def _checked(layer: LayerLike, params: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """``params`` as JAX arrays, checked against the layer for the channel
    count its kernel implies (the layer's own ``check_own_params``)."""
    if params:
        layer.check_own_params(params)
    return {name: jnp.asarray(value) for name, value in params.items()}


# ---- Keras ------------------------------------------------------------------------


def from_keras(layer: LayerLike, weights: Sequence[Any]) -> dict[str, jax.Array]:
    """The layer's params from ``keras_layer.get_weights()``.

    Raises:
      ValueError: for the wrong number of weights or shapes that do not fit
        the layer.

    >>> import numpy as np, conv1djax as cj
    >>> layer = cj.Conv1D(2, 3)
    >>> params = cj.interop.from_keras(layer, [np.ones((3, 4, 2)), np.zeros(2)])
    >>> {k: v.shape for k, v in params.items()}
    {'kernel': (3, 4, 2), 'bias': (2,)}
    """
    names = weight_names(layer)
    if isinstance(weights, Mapping) or len(weights) != len(names):
        got = "a dict" if isinstance(weights, Mapping) else f"{len(weights)} arrays"
        raise ValueError(
            f"{type(layer).__name__} takes {len(names)} weights ({names}, Keras's "
            f"get_weights() order); received {got}."
        )
    return _checked(
        layer,
        {n: _array(w, f"weight {n!r}") for n, w in zip(names, weights, strict=True)},
    )


def to_keras(layer: LayerLike, params: Params) -> list[np.ndarray]:
    """The list ``keras_layer.set_weights(...)`` takes."""
    names = weight_names(layer)
    if not isinstance(params, Mapping) or sorted(params) != sorted(names):
        raise ValueError(
            f"params for {type(layer).__name__} must have the keys {names}; "
            f"received {sorted(params) if isinstance(params, Mapping) else params!r}."
        )
    return [np.asarray(params[n]) for n in names]


# ---- PyTorch ----------------------------------------------------------------------


def _torch_kind(layer: LayerLike) -> str:
    """Which PyTorch convolution the layer is: ``"conv"``, ``"transposed"``
    (a ``Conv*D`` / ``Conv*DTranspose``, whose one ``kernel`` has
    ``filters`` and ``groups``) or ``"depthwise"`` (the other convolutions
    with one ``kernel``: ``(*k, in, depth_multiplier)``, PyTorch's
    ``groups=in``).

    Raises:
      TypeError: for a layer without a kernel, or with several (a separable
        convolution is two PyTorch modules).
    """
    name = type(layer).__name__
    if not isinstance(layer, ConvBase):
        raise TypeError(f"{name} has no weights to exchange with PyTorch.")
    if "kernel" not in layer.weight_names():
        raise TypeError(
            f"{name} has no single PyTorch module: convert its depthwise and "
            "pointwise convolutions separately (DepthwiseConv and a 1x1 Conv)."
        )
    if isinstance(layer, FilteredConv):
        return "transposed" if layer.transposed else "conv"
    return "depthwise"


def from_torch(
    layer: LayerLike, state_dict: Mapping[str, Any]
) -> dict[str, jax.Array]:  # state_dict values: torch tensors or arrays
    """The layer's params from a PyTorch convolution's ``state_dict()``.

    ``torch.nn.Conv{1,2,3}d``'s weight ``(out, in // groups, *k)`` becomes
    Keras's ``(*k, in // groups, out)``; ``ConvTranspose{1,2,3}d``'s ``(in,
    out // groups, *k)`` becomes ``(*k, out // groups, in)``; a depthwise
    layer's weight ``(in * depth_multiplier, 1, *k)`` (PyTorch's ``groups=in``)
    becomes ``(*k, in, depth_multiplier)``.

    Raises:
      ValueError: for missing or extra keys (a bias where ``use_bias`` is
        False, say), or shapes that do not fit the layer.
      TypeError: for a layer PyTorch has no module for.
    """
    kind = _torch_kind(layer)
    want = {"weight", "bias"} if layer.use_bias else {"weight"}
    if not isinstance(state_dict, Mapping) or set(state_dict) != want:
        got = sorted(state_dict) if isinstance(state_dict, Mapping) else state_dict
        raise ValueError(
            f"{type(layer).__name__}(use_bias={layer.use_bias}) takes a state dict "
            f"with the keys {sorted(want)}; received {got!r}."
        )
    w = _array(state_dict["weight"], "state_dict['weight']")
    rank = layer.rank
    if w.ndim != rank + 2:
        raise ValueError(
            f"state_dict['weight'] of a {rank}-D convolution must have {rank + 2} "
            f"axes; received shape {w.shape}."
        )
    if kind == "depthwise":
        if w.shape[1] != 1 or w.shape[0] % layer.depth_multiplier:
            raise ValueError(
                f"A depthwise weight is (in * depth_multiplier, 1, *kernel_size) "
                f"with depth_multiplier={layer.depth_multiplier}; received shape "
                f"{w.shape}."
            )
        # (in * dm, 1, *k) -> (in, dm, *k) -> (*k, in, dm)
        w = w.reshape(w.shape[0] // layer.depth_multiplier, layer.depth_multiplier,
                      *w.shape[2:])  # fmt: skip
        kernel = np.transpose(w, (*range(2, rank + 2), 0, 1))
    else:
        kernel = np.transpose(w, (*range(2, rank + 2), 1, 0))
    params = {"kernel": kernel}
    if layer.use_bias:
        params["bias"] = _array(state_dict["bias"], "state_dict['bias']")
    return _checked(layer, params)


def to_torch(layer: LayerLike, params: Params) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` (NumPy arrays) for the layer's params:
    ``torch_module.load_state_dict({k: torch.from_numpy(v) ...})``."""
    kind = _torch_kind(layer)
    names = list(layer.weight_names())
    if not isinstance(params, Mapping) or sorted(params) != sorted(names):
        raise ValueError(
            f"params for {type(layer).__name__} must have the keys {names}."
        )
    kernel = np.asarray(params["kernel"])
    rank = layer.rank
    w = np.transpose(kernel, (rank + 1, rank, *range(rank)))
    if kind == "depthwise":  # (in, dm, *k) -> (in * dm, 1, *k)
        w = w.transpose(1, 0, *range(2, rank + 2)).reshape(-1, 1, *w.shape[2:])
    # Copies: writable arrays (a view of a JAX array is read-only, and
    # torch.from_numpy warns on those).
    state = {"weight": np.array(w, order="C")}
    if "bias" in params:
        state["bias"] = np.array(params["bias"])
    return state


# ---- Keras models -----------------------------------------------------------------


def _keras_layers(
    config: Mapping[str, Any],
) -> tuple[list[Any], tuple[int | None, ...] | None]:
    """The layer entries of a Keras ``Sequential`` config and its input's
    batch shape (None when it has no ``InputLayer``)."""
    if config.get("class_name") == "Sequential":
        config = config.get("config", {})
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ValueError(
            "A Keras Sequential config has a 'layers' list (what "
            "keras.Sequential.get_config() returns); received keys "
            f"{sorted(config)}."
        )
    batch_shape = None
    if entries and entries[0].get("class_name") == "InputLayer":
        inner = entries[0].get("config", {})
        shape = inner.get("batch_shape") or inner.get("batch_input_shape")
        batch_shape = None if shape is None else tuple(shape)
        entries = entries[1:]
    return entries, batch_shape


@overload
def from_keras_config(
    config: Mapping[str, Any], weights: None = None
) -> models.Sequential: ...
@overload
def from_keras_config(
    config: Mapping[str, Any], weights: Sequence[Any]
) -> tuple[models.Sequential, list[Params]]: ...
def from_keras_config(
    config: Mapping[str, Any], weights: Sequence[Any] | None = None
) -> models.Sequential | tuple[models.Sequential, list[Params]]:
    """A Keras ``Sequential``'s config (``model.get_config()``, or the
    ``config.json`` of a ``.keras`` file) as a :class:`~conv1djax.Sequential`,
    with params from ``weights`` (``model.get_weights()``, all layers in
    order).

    Returns:
      ``model`` when ``weights`` is None, else ``(model, params)``.

    Raises:
      ValueError: for a layer class conv1djax does not have, or weights that
        do not fit.
    """
    entries, _ = _keras_layers(config)
    layers = []
    for i, entry in enumerate(entries):
        name = entry.get("class_name") if isinstance(entry, Mapping) else None
        cls = _saving._BUILTIN_CLASSES.get(name) if isinstance(name, str) else None
        if cls is None or not hasattr(cls, "from_config"):
            raise ValueError(
                f"Layer {i} of the Keras model is a {name!r}, which conv1djax does "
                "not have."
            )
        layers.append(cls.from_config(entry.get("config", {})))
    model = models.Sequential(layers, name=config.get("config", config).get("name"))
    if weights is None:
        return model
    weights = list(weights)
    params, at = [], 0
    for layer in layers:
        n = len(weight_names(layer))
        params.append(from_keras(layer, weights[at : at + n]) if n else {})
        at += n
    if at != len(weights):
        raise ValueError(
            f"The model's layers take {at} weights; received {len(weights)}."
        )
    return model, params


def to_keras_config(
    model: models.Sequential, params: Params, input_shape: ShapeLike | None = None
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """A :class:`~conv1djax.Sequential` of layers Keras has, as ``(config,
    weights)``: ``keras.Sequential.from_config(config)``, then
    ``set_weights(weights)``. With ``input_shape`` the config starts with an
    ``InputLayer``, so Keras builds the model at once."""
    if not isinstance(model, models.Sequential):
        raise TypeError(f"`model` must be a cj.Sequential; received {model!r}.")
    protocol.check_params(model, params)
    entries, weights = [], []
    for i, (layer, p) in enumerate(zip(model.layers, params, strict=True)):
        cls = type(layer)
        if _saving._BUILTIN_CLASSES.get(cls.__name__) is not cls or (
            protocol.sublayers(layer)
        ):
            raise TypeError(
                f"Layer {i} ({type(layer).__name__}) has no Keras layer of its own."
            )
        config = layer.get_config()
        if not isinstance(config.get("padding", ""), str) or "padding_mode" in config:
            raise TypeError(
                f"Layer {i} ({type(layer).__name__}) has PyTorch-style padding "
                f"(padding={layer.padding!r}, padding_mode={layer.padding_mode!r}), "
                "which Keras's layers do not take."
            )
        if config.get("param_dtype") is not None:
            raise TypeError(
                f"Layer {i} ({type(layer).__name__}) sets param_dtype="
                f"{layer.param_dtype!r}, which Keras's layers do not take; its "
                "dtype policy carries over."
            )
        if config.get("name") is None:
            config.pop("name")
        entries.append({"module": "keras.layers", "class_name": type(layer).__name__,
                        "config": config, "registered_name": None})  # fmt: skip
        weights += to_keras(layer, p)
    if input_shape is not None:
        entries.insert(
            0,
            {"module": "keras.layers", "class_name": "InputLayer",
             "config": {"batch_shape": list(input_shape), "dtype": "float32"},
             "registered_name": None},
        )  # fmt: skip
    config = {"name": model.name or "sequential", "layers": entries}
    return json.loads(json.dumps(config)), weights


def load_keras_file(
    path: str | os.PathLike[str] | IO[bytes],
) -> tuple[models.Sequential, list[Params]]:
    """A ``Sequential`` saved by Keras 3 (``model.save("m.keras")``: a zip of
    ``config.json`` and ``model.weights.h5``) as ``(model, params)``.

    Needs ``h5py`` (``pip install h5py``); nothing in the file is executed or
    unpickled.

    Raises:
      ValueError: for a file that is not a ``.keras`` zip, a model that is
        not a Sequential of layers conv1djax has, or missing weights.
    """
    try:
        import h5py
    except ImportError:
        raise ImportError("load_keras_file needs h5py: pip install h5py") from None

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights_file = io.BytesIO(archive.read("model.weights.h5"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a .keras file Keras 3 saved: {err}") from None
    if config.get("class_name") != "Sequential":
        raise ValueError(
            f"{path} holds a Keras {config.get('class_name')!r}; only Sequential "
            "models load into a cj.Sequential."
        )
    model = from_keras_config(config)
    weights: list[np.ndarray] = []
    seen: dict[str, int] = {}
    with h5py.File(weights_file, "r") as h5:
        for layer in model.layers:
            base = protocol.snake_case(type(layer).__name__)
            n = seen.get(base, 0)
            seen[base] = n + 1
            key = base if n == 0 else f"{base}_{n}"
            count = len(weight_names(layer))
            group = h5.get(f"layers/{key}/vars")
            if count and (group is None or len(group) != count):
                raise ValueError(
                    f"{path}: the weights of {key} ({type(layer).__name__}) are "
                    f"missing or incomplete in model.weights.h5."
                )
            weights += [np.asarray(group[str(j)]) for j in range(count)]
    _, params = from_keras_config(config, weights)
    return model, params


# ---- PyTorch modules and Sequentials ----------------------------------------------

# PyTorch activation modules that are a Keras activation exactly, by class name.
_TORCH_ACTIVATIONS = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "SiLU": "silu",
    "SELU": "selu",
    "Mish": "mish",
    "Softsign": "softsign",
    "Hardswish": "hard_silu",
    "Hardsigmoid": "hard_sigmoid",
    "LogSigmoid": "log_sigmoid",
    "Tanhshrink": "tanh_shrink",
    "Identity": "linear",
}
# ... and those that are one only with these arguments (PyTorch's defaults).
_TORCH_DEFAULT_ONLY = {
    "ELU": ("elu", {"alpha": 1.0}),
    "CELU": ("celu", {"alpha": 1.0}),
    # x > threshold is linearised: exact in float32 for threshold=20, where
    # log1p(exp(-x)) is below half an ulp of x.
    "Softplus": ("softplus", {"beta": 1.0, "threshold": 20.0}),
    "Hardtanh": ("hard_tanh", {"min_val": -1.0, "max_val": 1.0}),
    "Softshrink": ("soft_shrink", {"lambd": 0.5}),
    "Hardshrink": ("hard_shrink", {"lambd": 0.5}),
}
_TORCH_DROPOUTS = frozenset(
    {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
     "FeatureAlphaDropout"}
)  # fmt: skip
# Paddings that convert into the padding_mode of the convolution after them.
_TORCH_PAD_MODES = {"ReflectionPad": "reflect", "ReplicationPad": "replicate",
                    "CircularPad": "circular"}  # fmt: skip


@functools.cache
def _bound_activation(name: str, **kwargs: Any) -> functools.partial[jax.Array]:
    """``functools.partial(activations.<name>, **kwargs)``, one object per
    arguments (so specs built twice are equal) and registered for
    :func:`conv1djax.save` under ``"conv1djax.interop:<name>(<kwargs>)"``."""
    fn = functools.partial(getattr(activations, name), **kwargs)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    _saving.register(fn, name=f"conv1djax.interop:{name}({args})")
    return fn


def _torch_name(module: Any) -> str:
    """The module's class name; a module with parametrizations (a
    ``weight_norm``) is of a class ``Parametrized<Name>``, named ``<Name>``."""
    name = type(module).__name__
    if name.startswith("Parametrized") and hasattr(module, "parametrizations"):
        return name[len("Parametrized") :]
    return name


def _torch_rank(module: Any) -> int | None:
    """The spatial rank a module's class name says (``Conv2d``: 2), or a
    Sequential's first such; None for the rank-agnostic ones."""
    name = _torch_name(module)
    if name == "Sequential":
        for child in module.children():
            rank = _torch_rank(child)
            if rank is not None:
                return rank
        return None
    if name == "Upsample" and isinstance(module.scale_factor, tuple | list):
        return len(module.scale_factor)
    match = re.search(r"([123])d$", name)
    return int(match[1]) if match else None


def _ints(value: Any, rank: int, what: str) -> tuple[int, ...]:
    """A PyTorch int-or-tuple argument as ``rank`` ints."""
    values = tuple(value) if isinstance(value, tuple | list) else (value,) * rank
    if len(values) == 1:
        values *= rank
    if len(values) != rank:
        raise ValueError(f"{what}={value!r} does not have {rank} entries.")
    return tuple(int(v) for v in values)


def _torch_pairs(padding: Any, rank: int) -> Pads:
    """A padding module's ``(left, right, top, bottom, ...)`` (the last axis
    first, as ``F.pad`` takes it) as per-axis ``(left, right)`` pairs, the
    first spatial axis first."""
    sides = _ints(padding, 2 * rank, "padding")
    return tuple((sides[2 * i], sides[2 * i + 1]) for i in range(rank))[::-1]


def _all_zero(padding: Any) -> bool:
    """A padding of 0 everywhere (or "valid")."""
    if isinstance(padding, str):
        return padding.lower() == "valid"
    return not any(np.ravel(padding))


def _torch_state(module: Any) -> dict[str, Any]:
    """The weight and bias of a convolution: its ``state_dict()``, or, for a
    parametrized module (``torch.nn.utils.parametrizations.weight_norm``),
    the tensors its parametrizations compute."""
    if hasattr(module, "parametrizations"):
        state = {"weight": module.weight}
        if module.bias is not None:
            state["bias"] = module.bias
        return state
    return dict(module.state_dict())


def _torch_conv(
    module: Any, rank: int, pads: Pads | None = None, mode: str | None = None
) -> ConvBase:
    """The spec of a ``Conv{rank}d`` / ``ConvTranspose{rank}d``; ``pads`` and
    ``mode`` are those of a padding module before it, when fused."""
    transposed = bool(module.transposed)
    strides = _ints(module.stride, rank, "stride")
    kwargs = {
        "filters": int(module.out_channels),
        "kernel_size": _ints(module.kernel_size, rank, "kernel_size"),
        "strides": strides,
        "dilation_rate": _ints(module.dilation, rank, "dilation"),
        "groups": int(module.groups),
        "use_bias": module.bias is not None,
        "data_format": "channels_first",
    }
    padding = module.padding if pads is None else pads
    if isinstance(padding, str):  # "same" / "valid"
        padding = padding.lower()
    elif pads is None:
        padding = _ints(padding, rank, "padding")
    if transposed:  # an explicit padding crops the output, PyTorch's meaning
        output_padding = _ints(module.output_padding, rank, "output_padding")
        fits_keras = all(map(int.__lt__, output_padding, strides))
        if _all_zero(padding) and fits_keras:  # Keras's formula is PyTorch's then
            padding = "valid"
        cls = getattr(_layers, f"Conv{rank}DTranspose")
        return cls(padding=padding, output_padding=output_padding, **kwargs)
    mode = str(module.padding_mode) if mode is None else mode
    if _all_zero(padding):
        padding, mode = "valid", "zeros"
    cls = getattr(_layers, f"Conv{rank}D")
    return cls(padding=padding, padding_mode=mode, **kwargs)


def _torch_pooling(module: Any, name: str, rank: int) -> LayerLike:
    kind = "Max" if name.startswith("Max") else "Average"
    pool_size = _ints(module.kernel_size, rank, "kernel_size")
    stride = module.stride
    strides = pool_size if stride is None or stride == [] else stride
    problems = []
    if any(_ints(module.padding, rank, "padding")):
        problems.append(f"padding={module.padding!r}")
    if any(d != 1 for d in _ints(getattr(module, "dilation", 1), rank, "dilation")):
        problems.append(f"dilation={module.dilation!r}")
    if module.ceil_mode:
        problems.append("ceil_mode=True")
    if getattr(module, "return_indices", False):
        problems.append("return_indices=True")
    if getattr(module, "divisor_override", None) is not None:
        problems.append(f"divisor_override={module.divisor_override!r}")
    if problems:
        raise ValueError(
            f"{', '.join(problems)} has no exact Keras pooling equivalent; only "
            "padding=0, dilation=1, ceil_mode=False (Keras's padding='valid') "
            "convert."
        )
    cls = getattr(_layers, f"{kind}Pooling{rank}D")
    return cls(
        pool_size=pool_size,
        strides=_ints(strides, rank, "stride"),
        padding="valid",
        data_format="channels_first",
    )


def _torch_global_pooling(module: Any, name: str, rank: int) -> LayerLike:
    size = module.output_size
    sizes = tuple(size) if isinstance(size, tuple | list) else (size,) * rank
    if any(s != 1 for s in sizes) or getattr(module, "return_indices", False):
        raise ValueError(
            f"output_size={size!r} (return_indices="
            f"{getattr(module, 'return_indices', False)}): only an output size "
            "of 1 on every axis (a global pooling) converts, without indices."
        )
    kind = "Max" if name.startswith("AdaptiveMax") else "Average"
    cls = getattr(_layers, f"Global{kind}Pooling{rank}D")
    return cls(data_format="channels_first", keepdims=True)


def _torch_upsample(module: Any, name: str, rank: int | None) -> LayerLike:
    if module.size is not None:
        raise ValueError(
            f"size={module.size!r}: only a scale_factor converts (an output size "
            "is not a repeat factor)."
        )
    if module.mode not in ("nearest", "nearest-exact"):
        raise ValueError(
            f"mode={module.mode!r}: only 'nearest' (and 'nearest-exact', the same "
            "for integer factors) converts, into UpSampling's repeat."
        )
    factors = module.scale_factor
    if name == "UpsamplingNearest2d":
        rank = 2
    elif isinstance(factors, tuple | list):
        rank = len(factors)
    if rank is None:
        raise ValueError(
            "its rank is not known (scale_factor is one number and no module "
            "around it says): pass rank=2 or rank=3."
        )
    sizes = tuple(factors) if isinstance(factors, tuple | list) else (factors,) * rank
    if not all(float(f).is_integer() and f >= 1 for f in sizes):
        raise ValueError(
            f"scale_factor={factors!r}: only integer factors >= 1 convert."
        )
    if rank == 1:
        raise ValueError(
            "a 1-D upsampling has no channels-first equivalent: UpSampling1D "
            "(as Keras 3's) has no data_format, its channels are last."
        )
    cls = getattr(_layers, f"UpSampling{rank}D")
    return cls(size=tuple(int(f) for f in sizes), data_format="channels_first")


def _torch_zero_padding(module: Any, rank: int) -> LayerLike:
    if float(module.value) != 0.0:
        raise ValueError(
            f"value={module.value!r}: only a zero padding (ZeroPadding) converts."
        )
    pairs = _torch_pairs(module.padding, rank)
    if any(side < 0 for pair in pairs for side in pair):
        raise ValueError(
            f"padding={module.padding!r}: a negative padding (PyTorch crops there) "
            "does not convert."
        )
    cls = getattr(_layers, f"ZeroPadding{rank}D")
    return cls(padding=pairs, data_format="channels_first")


def _torch_activation(module: Any, name: str) -> str | Callable[..., jax.Array] | None:
    if name in _TORCH_ACTIVATIONS:
        return _TORCH_ACTIVATIONS[name]
    if name in _TORCH_DEFAULT_ONLY:
        activation, defaults = _TORCH_DEFAULT_ONLY[name]
        given = {k: float(getattr(module, k)) for k in defaults}
        if given != defaults:
            shown_ = ", ".join(f"{k}={v!r}" for k, v in given.items())
            wanted = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
            raise ValueError(
                f"{shown_}: only {wanted} is Keras's {activation!r} exactly."
            )
        return activation
    if name == "LeakyReLU":
        slope = float(module.negative_slope)
        if slope == 0.2:  # Keras's default
            return "leaky_relu"
        return _bound_activation("leaky_relu", negative_slope=slope)
    if name == "GELU":
        if module.approximate == "none":
            return "gelu"  # exact (erf), Keras's default
        if module.approximate == "tanh":
            return _bound_activation("gelu", approximate=True)
        raise ValueError(f"approximate={module.approximate!r} is not known.")
    if name in _TORCH_DROPOUTS:
        if module.training:
            raise ValueError(
                "a dropout converts only in eval() mode (as the identity, "
                "Activation('linear')): call module.eval() first."
            )
        return "linear"
    return None


def _torch_layer(module: Any, rank: int | None) -> tuple[LayerLike, Params] | None:
    """``(spec, params)`` for one module that is not a Sequential, or None
    for a module conv1djax has no equivalent of."""
    name = _torch_name(module)
    activation = _torch_activation(module, name)
    if activation is not None:
        return _layers.Activation(activation), {}
    if match := re.fullmatch(r"Conv(?:Transpose)?([123])d", name):
        layer = _torch_conv(module, int(match[1]))
        return layer, from_torch(layer, _torch_state(module))
    if match := re.fullmatch(r"(?:Max|Avg)Pool([123])d", name):
        return _torch_pooling(module, name, int(match[1])), {}
    if match := re.fullmatch(r"Adaptive(?:Max|Avg)Pool([123])d", name):
        return _torch_global_pooling(module, name, int(match[1])), {}
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        return _torch_upsample(module, name, rank), {}
    if match := re.fullmatch(r"(?:Zero|Constant)Pad([123])d", name):
        return _torch_zero_padding(module, int(match[1])), {}
    return None


def _unsupported_hint(name: str) -> str:
    if name == "Flatten":
        return (
            " of its own (there is no flatten layer): in a Sequential, a "
            "Flatten() right after an AdaptiveAvgPool/AdaptiveMaxPool of output "
            "size 1 converts, into a global pooling with keepdims=False"
        )
    if re.fullmatch(r"(?:Reflection|Replication|Circular)Pad[123]d", name):
        return (
            " of its own: in a Sequential, right before a Conv of its rank with "
            "padding=0 it converts, into that convolution's padding and "
            "padding_mode"
        )
    return (
        "; see cj.interop.from_torch_module for the modules that convert (fold a "
        "BatchNorm into the convolution before it first, say)"
    )


def _converted(module: Any, rank: int | None, label: str) -> tuple[LayerLike, Params]:
    """:func:`_torch_layer`, its errors prefixed with ``label``."""
    try:
        converted = _torch_layer(module, rank)
    except (TypeError, ValueError) as err:
        cls = ValueError if isinstance(err, ValueError) else TypeError
        raise cls(f"{label}: {err}") from None
    if converted is None:
        name = _torch_name(module)
        raise TypeError(
            f"{label} has no conv1djax equivalent{_unsupported_hint(name)}."
        )
    return converted


def _check_module(module: Any) -> str:
    if not (hasattr(module, "named_children") and hasattr(module, "state_dict")):
        raise TypeError(
            f"`module` must be a torch.nn.Module; received {type(module).__name__}."
        )
    return _torch_name(module)


def from_torch_module(
    module: Any, *, rank: int | None = None
) -> tuple[LayerLike, Params]:  # module: a torch.nn.Module
    """A PyTorch module as ``(spec, params)``: the conv1djax spec computing
    what it computes, on the same channels-first (``(N, C, *spatial)``)
    inputs, and its params (``{}`` for a parameter-free one). A
    ``torch.nn.Sequential`` goes to :func:`from_torch_sequential`.

    The module's attributes are read by its class name (conv1djax never
    imports torch):

    - ``Conv{1,2,3}d``: ``Conv{1,2,3}D`` with ``data_format=
      "channels_first"``, its kernel_size, stride, dilation, groups (a
      depthwise ``groups=in_channels`` stays a grouped convolution), bias,
      padding (an int or tuple: PyTorch's explicit padding; "same", "valid";
      0 becomes "valid") and padding_mode. Keras refuses a stride > 1
      together with a dilation > 1, and so does conv1djax. A parametrized
      one (``torch.nn.utils.parametrizations.weight_norm``) gives the weight
      its parametrizations compute.
    - ``ConvTranspose{1,2,3}d``: ``Conv{1,2,3}DTranspose`` with its padding
      as an explicit crop and its output_padding (padding 0 with
      output_padding < stride becomes Keras's "valid", which is the same).
    - Activations (``Activation``): ReLU, ReLU6, Sigmoid, Tanh, SiLU, SELU,
      Mish, Softsign, Hardswish (``hard_silu``), Hardsigmoid, LogSigmoid,
      Tanhshrink, Identity (``linear``); GELU (``approximate="none"``:
      ``gelu``, exact; ``"tanh"``: ``gelu`` with ``approximate=True``);
      LeakyReLU (``leaky_relu`` with its negative_slope); ELU and CELU with
      alpha=1, Softplus with beta=1 and threshold=20, Hardtanh with -1 and 1,
      Softshrink and Hardshrink with lambd=0.5 (other arguments are refused:
      the Keras activation is not them). Dropout modules in ``eval()`` mode
      are the identity (``linear``).
    - ``MaxPool{1,2,3}d`` / ``AvgPool{1,2,3}d`` with padding=0, dilation=1,
      ceil_mode=False (Keras's "valid"; anything else is refused):
      ``MaxPooling{1,2,3}D`` / ``AveragePooling{1,2,3}D``.
    - ``AdaptiveMaxPool{1,2,3}d`` / ``AdaptiveAvgPool{1,2,3}d`` of output
      size 1: ``GlobalMaxPooling{1,2,3}D`` / ``GlobalAveragePooling{1,2,3}D``
      with ``keepdims=True``.
    - ``Upsample`` (and ``UpsamplingNearest2d``) with an integer
      scale_factor and mode "nearest" (or "nearest-exact"):
      ``UpSampling{2,3}D``; ``rank`` says how many axes when the factor is
      one number (a Sequential finds it from the modules around). A 1-D
      one is refused: ``UpSampling1D`` is channels-last only.
    - ``ZeroPad{1,2,3}d`` (and ``ConstantPad{1,2,3}d`` with value 0, padding
      >= 0): ``ZeroPadding{1,2,3}D``.

    Returns:
      ``(spec, params)``.

    Raises:
      TypeError: for a module conv1djax has no equivalent of, naming it.
      ValueError: for arguments of a module that have no exact equivalent.

    A ``LeakyReLU`` with a slope other than 0.2 and a GELU with ``"tanh"``
    are ``functools.partial`` s of :mod:`conv1djax.activations`' functions,
    registered for :func:`conv1djax.save` as
    ``"conv1djax.interop:leaky_relu(negative_slope=0.1)"`` and so on; a
    process that loads such a file without converting one first passes
    ``custom_objects={name: functools.partial(...)}`` to
    :func:`conv1djax.load`.
    """
    name = _check_module(module)
    if name == "Sequential":
        return from_torch_sequential(module, rank=rank)
    return _converted(module, rank, name)


def _nearest_rank(ranks: list[int | None], i: int, default: int | None) -> int | None:
    for j in [*range(i - 1, -1, -1), *range(i + 1, len(ranks))]:
        if ranks[j] is not None:
            return ranks[j]
    return default


def from_torch_sequential(
    module: Any, *, rank: int | None = None
) -> tuple[models.Sequential, list[Params]]:  # module: a torch.nn.Sequential
    """A ``torch.nn.Sequential`` as ``(model, params)``: a
    :class:`~conv1djax.Sequential` of its modules converted in order by
    :func:`from_torch_module` (a nested Sequential becomes a nested
    ``Sequential``), and its params list. Two pairs of modules become one
    layer:

    - a ``ReflectionPad``, ``ReplicationPad`` or ``CircularPad`` right
      before a ``Conv`` of its rank with ``padding=0``: that convolution,
      with the pad's explicit padding and ``padding_mode`` "reflect",
      "replicate" or "circular";
    - ``Flatten()`` right after an adaptive pooling of output size 1: the
      global pooling with ``keepdims=False``.

    ``rank`` is used only for an ``Upsample`` no module in the Sequential
    gives the rank of.

    Raises:
      TypeError: for a module that is not a Sequential, or one of its
        modules that has no conv1djax equivalent, naming it and its position
        (``"module 3 (BatchNorm1d) has no conv1djax equivalent ..."``; in a
        nested Sequential ``"module 2.1 ..."``).
      ValueError: for a module's arguments that have no exact equivalent,
        naming it and its position.

    For example, with ``x`` of shape ``(N, 2, L)``::

        net = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1),
                                  torch.nn.ReLU()).eval()
        model, params = cj.interop.from_torch_sequential(net)
        model.apply(params, x)  # net(x)
    """
    name = _check_module(module)
    if name != "Sequential":
        raise TypeError(
            f"`module` must be a torch.nn.Sequential; received {name} (convert a "
            "single module with from_torch_module)."
        )
    return _torch_sequential(module, "", rank)


def _torch_sequential(
    module: Any, where: str, rank: int | None
) -> tuple[models.Sequential, list[Params]]:
    children = list(module.named_children())
    ranks = [_torch_rank(child) for _, child in children]
    layers: list[Any] = []
    params: list[Any] = []
    layer: LayerLike
    p: Params

    def label(i: int) -> str:
        key, child = children[i]
        named = "" if key == str(i) else f" {key!r}"
        return f"module {where}{i}{named} ({_torch_name(child)})"

    i = 0
    while i < len(children):
        child = children[i][1]
        name = _torch_name(child)
        after = children[i + 1][1] if i + 1 < len(children) else None
        pad = re.fullmatch(r"(Reflection|Replication|Circular)Pad([123])d", name)
        if name == "Sequential":
            layer, p = _torch_sequential(
                child, f"{where}{i}.", _nearest_rank(ranks, i, rank)
            )
        elif (
            pad
            and after is not None
            and _torch_name(after) == f"Conv{pad[2]}d"
            and _all_zero(after.padding)
        ):
            conv_rank = int(pad[2])
            try:
                layer = _torch_conv(
                    after,
                    conv_rank,
                    pads=_torch_pairs(child.padding, conv_rank),
                    mode=_TORCH_PAD_MODES[f"{pad[1]}Pad"],
                )
                p = from_torch(layer, _torch_state(after))
            except (TypeError, ValueError) as err:
                cls = ValueError if isinstance(err, ValueError) else TypeError
                raise cls(f"{label(i + 1)} after {label(i)}: {err}") from None
            i += 1  # the pad and the convolution are one layer
        elif (
            name == "Flatten"
            and layers
            and getattr(layers[-1], "keepdims", False)
            and (child.start_dim, child.end_dim) == (1, -1)
        ):
            layers[-1] = dataclasses.replace(layers[-1], keepdims=False)
            i += 1
            continue
        else:
            layer, p = _converted(child, _nearest_rank(ranks, i, rank), label(i))
        layers.append(layer)
        params.append(p)
        i += 1
    return models.Sequential(layers), params


__all__ = [
    "from_keras",
    "from_keras_config",
    "from_torch",
    "from_torch_module",
    "from_torch_sequential",
    "load_keras_file",
    "to_keras",
    "to_keras_config",
    "to_torch",
    "weight_names",
]
