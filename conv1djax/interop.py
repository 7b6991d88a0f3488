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

conv1djax never imports torch or keras: tensors are read through their
``.detach().cpu().numpy()`` (or ``numpy.asarray``), and nothing is
unpickled.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from conv1djax import models, protocol
from conv1djax import saving as _saving
from conv1djax.layers.base import check_params


def _array(value, what: str) -> np.ndarray:
    """A NumPy array from an array, a JAX array or a torch tensor."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" and array.dtype.name != "bfloat16":
        raise TypeError(f"{what} must be an array of numbers; received {array.dtype}.")
    return array


def weight_names(layer) -> list[str]:
    """The layer's param names in Keras's ``get_weights()`` order (``[]``
    for a parameter-free layer)."""
    protocol.check_layer(layer, "`layer`")
    if protocol.sublayers(layer):
        raise TypeError(
            f"{type(layer).__name__} is a composite; its weights are its "
            "sub-layers': convert those (or use from_keras_config for a Sequential)."
        )
    if not hasattr(layer, "_param_shapes"):
        return []
    return list(layer._param_shapes(getattr(layer, "groups", 1)))


def _checked(layer, params: dict[str, np.ndarray]) -> dict[str, jnp.ndarray]:
    """``params`` as JAX arrays, checked against the layer for the channel
    count its kernel implies."""
    if params:
        kernel = params[layer._COMPUTE_PARAM]
        if kernel.ndim != layer.rank + 2:
            raise ValueError(
                f"The {layer._COMPUTE_PARAM} of {type(layer).__name__} must have "
                f"{layer.rank + 2} axes; received shape {kernel.shape}."
            )
        channels = (
            kernel.shape[-1]
            if layer.transposed
            else kernel.shape[-2] * getattr(layer, "groups", 1)
        )
        spatial = (None,) * layer.rank
        shape = (
            (None, *spatial, channels)
            if layer.data_format == "channels_last"
            else (None, channels, *spatial)
        )
        expected = layer.param_shapes(shape)
        check_params(layer, params, expected, f"{layer._describe()}")
    return {name: jnp.asarray(value) for name, value in params.items()}


# ---- Keras ------------------------------------------------------------------------


def from_keras(layer, weights: Sequence) -> dict:
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


def to_keras(layer, params) -> list[np.ndarray]:
    """The list ``keras_layer.set_weights(...)`` takes."""
    names = weight_names(layer)
    if not isinstance(params, Mapping) or sorted(params) != sorted(names):
        raise ValueError(
            f"params for {type(layer).__name__} must have the keys {names}; "
            f"received {sorted(params) if isinstance(params, Mapping) else params!r}."
        )
    return [np.asarray(params[n]) for n in names]


# ---- PyTorch ----------------------------------------------------------------------


def _torch_kind(layer) -> str:
    name = type(layer).__name__
    if name.startswith("SeparableConv"):
        raise TypeError(
            f"{name} has no single PyTorch module: convert its depthwise and "
            "pointwise convolutions separately (DepthwiseConv and a 1x1 Conv)."
        )
    if not hasattr(layer, "_param_shapes"):
        raise TypeError(f"{name} has no weights to exchange with PyTorch.")
    if name.startswith("DepthwiseConv"):
        return "depthwise"
    return "transposed" if layer.transposed else "conv"


def from_torch(layer, state_dict: Mapping) -> dict:
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


def to_torch(layer, params) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` (NumPy arrays) for the layer's params:
    ``torch_module.load_state_dict({k: torch.from_numpy(v) ...})``."""
    kind = _torch_kind(layer)
    names = weight_names(layer)
    if not isinstance(params, Mapping) or sorted(params) != sorted(names):
        raise ValueError(
            f"params for {type(layer).__name__} must have the keys {names}."
        )
    kernel = np.asarray(params["kernel"])
    rank = layer.rank
    w = np.transpose(kernel, (rank + 1, rank, *range(rank)))
    if kind == "depthwise":  # (in, dm, *k) -> (in * dm, 1, *k)
        w = w.transpose(1, 0, *range(2, rank + 2)).reshape(-1, 1, *w.shape[2:])
    state = {"weight": np.ascontiguousarray(w)}
    if "bias" in params:
        state["bias"] = np.asarray(params["bias"])
    return state


# ---- Keras models -----------------------------------------------------------------


def _keras_layers(config: Mapping) -> tuple[list, tuple | None]:
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


def from_keras_config(config: Mapping, weights: Sequence | None = None):
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
        cls = _saving._BUILTIN_CLASSES.get(name)
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


def to_keras_config(model, params, input_shape=None) -> tuple[dict, list]:
    """A :class:`~conv1djax.Sequential` of layers Keras has, as ``(config,
    weights)``: ``keras.Sequential.from_config(config)``, then
    ``set_weights(weights)``. With ``input_shape`` the config starts with an
    ``InputLayer``, so Keras builds the model at once."""
    if not isinstance(model, models.Sequential):
        raise TypeError(f"`model` must be a cj.Sequential; received {model!r}.")
    protocol.check_params(model, params)
    entries, weights = [], []
    for i, (layer, p) in enumerate(zip(model.layers, params, strict=True)):
        if _saving._BUILTIN_CLASSES.get(type(layer).__name__) is not type(layer) or (
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


def load_keras_file(path):
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
    weights, seen = [], {}
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


__all__ = [
    "from_keras",
    "from_keras_config",
    "from_torch",
    "load_keras_file",
    "to_keras",
    "to_keras_config",
    "to_torch",
    "weight_names",
]
