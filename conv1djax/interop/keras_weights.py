"""Keras: a layer's weights (:func:`from_keras`, :func:`to_keras`, in the
order :func:`weight_names` gives), and a ``Sequential``'s config with all
its weights (:func:`from_keras_config`, :func:`to_keras_config`).

A layer's config is its ``get_config()`` (Keras's format, by the rules of
:mod:`conv1djax.keras_config`); the layer classes are found by their Keras
class names (:func:`conv1djax.saving.builtin_class`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, overload

import jax
import numpy as np

from conv1djax import keras_config, models, protocol, saving
from conv1djax._typing import LayerLike, Params, ShapeLike
from conv1djax.interop._arrays import as_array, checked_params


def weight_names(layer: LayerLike) -> list[str]:
    """The layer's param names in Keras's ``get_weights()`` order: its
    ``weight_names()`` (``[]`` for a parameter-free layer, or a layer
    without that method).

    Raises:
      TypeError: for something that is not a layer, or a composite.
    """
    protocol.check_layer(layer, "`layer`")
    names = getattr(layer, "weight_names", None)
    if protocol.sublayers(layer) and not callable(names):
        raise TypeError(
            f"{type(layer).__name__} is a composite; its weights are its "
            "sub-layers': convert those (or use from_keras_config for a Sequential)."
        )
    return list(names()) if callable(names) else []


def _get(params: Any, name: str) -> Any:
    """The param ``name`` names: a sub-layer's as ``"layer/kernel"`` (a
    wrapper's, whose Keras weights mix its own and its layer's)."""
    for part in name.split("/"):
        params = params[part]
    return params


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"layer/kernel": a, "vector_u": b}`` -> ``{"layer": {"kernel": a},
    "vector_u": b}``."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *outer, last = name.split("/")
        node = nested
        for part in outer:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


def _flat_names(params: Any, prefix: str = "") -> list[str]:
    if not isinstance(params, Mapping):
        return [prefix[:-1]]
    return [n for k, v in params.items() for n in _flat_names(v, f"{prefix}{k}/")]


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
    return checked_params(
        layer,
        _nest({n: as_array(w, f"weight {n!r}")
               for n, w in zip(names, weights, strict=True)}),
    )  # fmt: skip


def to_keras(layer: LayerLike, params: Params) -> list[np.ndarray]:
    """The list ``keras_layer.set_weights(...)`` takes."""
    names = weight_names(layer)
    if not isinstance(params, Mapping) or sorted(_flat_names(params)) != sorted(names):
        got = sorted(_flat_names(params)) if isinstance(params, Mapping) else params
        raise ValueError(
            f"params for {type(layer).__name__} must have the keys {names}; "
            f"received {got!r}."
        )
    return [np.asarray(_get(params, n)) for n in names]


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
        cls = saving.builtin_class(name) if isinstance(name, str) else None
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
        keras_weights = callable(getattr(layer, "weight_names", None))
        if saving.builtin_class(cls.__name__) is not cls or (
            protocol.sublayers(layer) and not keras_weights
        ):
            raise TypeError(
                f"Layer {i} ({type(layer).__name__}) has no Keras layer of its own."
            )
        config = layer.get_config()
        keras_config.check_keras_readable(
            config, layer, f"Layer {i} ({type(layer).__name__})"
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
