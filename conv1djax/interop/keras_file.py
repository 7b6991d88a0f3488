""".keras files: a ``Sequential`` that Keras 3 saved, read with ``h5py``
(imported when a file is read), nothing executed or unpickled."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import IO

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
            group = h5.get(f"layers/{key}/vars")
            if stored and (group is None or len(group) != len(stored)):
                raise ValueError(
                    f"{path}: the weights of {key} ({type(layer).__name__}) are "
                    f"missing or incomplete in model.weights.h5."
                )
            arrays = {n: np.asarray(group[str(j)]) for j, n in enumerate(stored)}
            if len(stored) < len(names):
                kernel = arrays[layer._LORA_KERNEL]
                for name, shape in layer.lora_shapes(kernel.shape).items():
                    arrays[name] = np.zeros(shape, np.float32)
            weights += [arrays[n] for n in names]
    _, params = from_keras_config(config, weights)
    return model, params
