"""Block-diagonal core: a grouped convolution as one dense convolution.

XLA:CPU's grouped convolution (``feature_group_count``) and its gradients
walk a generic path several times slower than its dense convolution; a dense
kernel that is zero outside the groups' diagonal blocks does ``groups`` times
the products at dense speed, which pays for few groups of a few channels
each (thresholds in :mod:`conv1djax.lowering.choose`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def block_diagonal(kernel: jax.Array, groups: int) -> jax.Array:
    """The dense ``(*taps, C, F)`` kernel equal to a grouped ``(*taps, C //
    groups, F)`` one: zero outside the groups' diagonal blocks."""
    *taps, c_per_group, f = kernel.shape
    blocks = kernel.reshape(*taps, 1, c_per_group, groups, f // groups)
    eye = jnp.eye(groups, dtype=kernel.dtype)[:, None, :, None]
    return (blocks * eye).reshape(*taps, groups * c_per_group, f)
