"""What every peer's conversion shares: arrays read from any library's
tensors, and params checked against the layer they are for."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from conv1djax import protocol
from conv1djax._typing import LayerLike
from conv1djax.layers.params import as_array as as_array


def checked_params(layer: LayerLike, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` (NumPy arrays, nested for a wrapper's sub-layer) as JAX
    arrays, checked against the layer for the channel count its kernel
    implies (:func:`conv1djax.protocol.check_params`: each layer's own
    ``check_own_params``)."""

    def convert(node: Any) -> Any:  # jax.tree.map would sort the keys
        if isinstance(node, dict):
            return {k: convert(v) for k, v in node.items()}
        return jnp.asarray(node)

    converted = convert(params)
    if converted:
        protocol.check_params(layer, converted)
    return converted
