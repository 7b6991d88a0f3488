"""A spec's config in Keras's format: what ``get_config`` writes, what
``from_config`` reads, and which keys Keras has that the specs do not (and
the reverse), each rule once.

A spec's config is its dataclass fields, objects of a registry (activations,
initializers, regularizers, constraints: the class's ``_REGISTRIES``) by
name or as ``{"class_name", "config"}`` dicts, so that
``keras.layers.Conv1D.from_config`` reads a built-in spec's config, and the
spec's ``from_config`` reads a Keras layer's ``get_config()``:

- the arguments that are not Keras's (``EXTENSION_DEFAULTS``) are left
  out at their defaults, and so is no dtype policy;
- the keys Keras writes in every layer config that a spec has no field for
  (``KERAS_ONLY_KEYS``) are read and dropped, the dtype policy read as
  :mod:`conv1djax.dtype_policy` says;
- a config with LoRA (``LORA_KEYS``) is read by the layers that have it
  (Dense and the convolutions) and refused by the others unless its rank is
  0; a quantized one is refused.

>>> import conv1djax as cj
>>> from conv1djax import keras_config
>>> keras_config.get_config(cj.Conv1D(4, 3))["kernel_size"]
(3,)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from conv1djax import dtype_policy

# Keys Keras writes in every layer config that our configs leave out by
# default: "autocast" describes the Keras object and ``from_config`` drops it;
# "dtype" (Keras's dtype policy) is read, and written by ``get_config`` only
# when set. So a config exported by ``keras.layers.Conv1D.get_config()``
# loads directly. (``name`` and ``trainable`` are fields of every spec.)
KERAS_ONLY_KEYS = frozenset({"dtype", "autocast"})
# Keras's LoRA arguments (of its convolutions and Dense): fields of the
# layers with a kernel; in the config of any other layer, refused when the
# rank is set.
LORA_KEYS = frozenset({"lora_rank", "lora_alpha"})
# Keras's quantization (Dense's "quantization_config"): read when None,
# refused otherwise (conv1djax does not quantize).
QUANTIZATION_KEYS = frozenset({"quantization_config"})
# The spec arguments Keras's layers do not take, with their defaults:
# ``get_config`` leaves each out at its default, keeping the config loadable
# by Keras (``dtype`` is Keras's, but None, no policy, is not a Keras value;
# Keras writes ``lora_rank`` and ``lora_alpha`` only when LoRA is on;
# ``trainable`` is Keras's, written only when False: Keras's
# ``SpatialDropout1D/2D/3D`` do not take it).
EXTENSION_DEFAULTS: Mapping[str, Any] = {
    "trainable": True,
    "impl": "auto",
    "padding_mode": "zeros",
    "dtype": None,
    "param_dtype": None,
    "lora_rank": None,
    "lora_alpha": None,
}

_S = TypeVar("_S")


def get_config(spec: Any) -> dict[str, Any]:
    """The constructor arguments of a spec (a frozen dataclass whose class's
    ``_REGISTRIES`` names the fields to serialise by their registry), in
    Keras's format: the extensions at their defaults left out, the dtype
    policy as Keras writes it."""
    registries = getattr(type(spec), "_REGISTRIES", {})
    config = {}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.name in registries:
            value = registries[field.name].serialize(value)
        config[field.name] = value
    for name, default in EXTENSION_DEFAULTS.items():
        if name in config and config[name] == default:
            del config[name]
    if "dtype" in config:
        config["dtype"] = dtype_policy.to_keras_config(config["dtype"])
    return config


def from_config(cls: type[_S], config: Mapping[str, Any]) -> _S:
    """A spec of class ``cls`` from ``get_config()``'s dict, or from a Keras
    layer's: Keras's own keys dropped, its dtype entry read as the policy.

    Raises:
      ValueError: for keys that are not arguments of ``cls``, or LoRA.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(
        set(config) - names - KERAS_ONLY_KEYS - LORA_KEYS - QUANTIZATION_KEYS
    )
    if unknown:
        raise ValueError(
            f"Unknown keys in the config of {cls.__name__}: {unknown}. "
            f"Expected keys among {sorted(names)}."
        )
    if config.get("quantization_config") is not None:
        raise ValueError(
            f"{cls.__name__} is not quantized in conv1djax; received "
            f"quantization_config={config['quantization_config']!r} in the config."
        )
    if config.get("lora_rank") and "lora_rank" not in names:
        raise ValueError(
            f"{cls.__name__} has no LoRA; received lora_rank="
            f"{config['lora_rank']!r} in the config."
        )
    kwargs = {k: v for k, v in config.items() if k in names}
    if "dtype" in kwargs:
        kwargs["dtype"] = dtype_policy.from_keras_config(kwargs["dtype"])
    return cls(**kwargs)


def check_keras_readable(config: Mapping[str, Any], spec: Any, where: str) -> None:
    """Raises ``TypeError`` when Keras's layer cannot read the spec's
    ``config`` (``get_config()``'s): a PyTorch-style padding (explicit, or a
    ``padding_mode``), a ``param_dtype``, or LoRA on a layer whose Keras
    twin has none. ``where`` names the layer
    (``"Layer 2 (Conv1D)"``)."""
    if not isinstance(config.get("padding", ""), str) or "padding_mode" in config:
        raise TypeError(
            f"{where} has PyTorch-style padding (padding={spec.padding!r}, "
            f"padding_mode={spec.padding_mode!r}), which Keras's layers do not take."
        )
    if config.get("lora_rank") and not getattr(spec, "_KERAS_LORA", False):
        raise TypeError(
            f"{where} has LoRA (lora_rank={spec.lora_rank!r}), which Keras's "
            f"{type(spec).__name__} does not take; merge it first (cj.merge_lora)."
        )
    inner = config.get("layer")  # a wrapper's layer, as Keras nests it
    if inner is not None:
        if not (
            isinstance(inner, Mapping) and isinstance(inner.get("config"), Mapping)
        ):
            raise TypeError(
                f"{where} wraps {type(spec.layer).__name__}, which Keras does not have."
            )
        check_keras_readable(inner["config"], spec.layer, f"{where}'s layer")
    if config.get("param_dtype") is not None:
        raise TypeError(
            f"{where} sets param_dtype={spec.param_dtype!r}, which Keras's layers "
            "do not take; its dtype policy carries over."
        )
