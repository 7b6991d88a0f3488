""".keras files: a ``Sequential`` that Keras 3 saved, read with ``h5py``
(imported when a file is read), nothing executed or unpickled."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import IO, Any

import numpy as np

from conv1djax import models, protocol
from conv1djax._typing import Params
from conv1djax.interop.keras_weights import from_keras_config, weight_names
from conv1djax.layers.base import LORA_WEIGHTS


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
            names = weight_names(layer)
            # Keras saves a LoRA layer's kernel merged and its LoRA weights
            # not at all, and loads them as zeros: so do we.
            stored = [n for n in names if n not in LORA_WEIGHTS]
            arrays = _stored_arrays(h5, key, stored, path, type(layer).__name__)
            if len(stored) < len(names):
                kernel = arrays[layer._LORA_KERNEL]
                for name, shape in layer.lora_shapes(kernel.shape).items():
                    arrays[name] = np.zeros(shape, np.float32)
            weights += [arrays[n] for n in names]
    _, params = from_keras_config(config, weights)
    return model, params


def _stored_arrays(
    h5: Any, key: str, names: list[str], path: Any, cls: str
) -> dict[str, np.ndarray]:
    """The arrays of the weights ``names`` of the layer saved under
    ``layers/<key>``. A Keras wrapper's (``SpectralNormalization``) wrapped
    layer saves its variables under ``layers/<key>/layer`` (our names
    ``"layer/<name>"``, in its order), and the wrapper's own under
    ``layers/<key>``, after the aliases of the wrapped layer's it tracks."""
    inner = [n for n in names if n.startswith("layer/")]
    own = [n for n in names if not n.startswith("layer/")]
    groups = [(h5.get(f"layers/{key}/vars"), own)]
    if inner:
        groups.append((h5.get(f"layers/{key}/layer/vars"), inner))
    arrays = {}
    for group, wanted in groups:
        if not wanted:
            continue
        if (
            group is None
            or len(group) < len(wanted)
            or (not inner and len(group) != len(wanted))
        ):
            raise ValueError(
                f"{path}: the weights of {key} ({cls}) are missing or incomplete "
                "in model.weights.h5."
            )
        start = len(group) - len(wanted) if wanted is own else 0
        arrays.update(
            {n: np.asarray(group[str(start + j)]) for j, n in enumerate(wanted)}
        )
    return arrays
