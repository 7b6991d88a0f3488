"""What every peer's conversion shares: arrays read from any library's
tensors, and params checked against the layer they are for."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from conv1djax._typing import LayerLike


def as_array(value: Any, what: str) -> np.ndarray:  # any array, or a torch tensor
    """A NumPy array from an array, a JAX array or a torch tensor."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" and array.dtype.name != "bfloat16":
        raise TypeError(f"{what} must be an array of numbers; received {array.dtype}.")
    return array


def checked_params(
    layer: LayerLike, params: dict[str, np.ndarray]
) -> dict[str, jax.Array]:
    """``params`` as JAX arrays, checked against the layer for the channel
    count its kernel implies (the layer's own ``check_own_params``)."""
    if params:
        layer.check_own_params(params)
    return {name: jnp.asarray(value) for name, value in params.items()}
