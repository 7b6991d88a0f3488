"""Split core: a grouped convolution as one dense convolution per group.

XLA:CPU's grouped convolution (``feature_group_count``) runs its backward
pass on a generic path several times slower than its dense one. Cutting the
input's channels and the kernel's filters into the groups' blocks and
concatenating the dense convolutions' outputs does the useful products only
(the block-diagonal core does ``groups`` times as many), forward and
backward at dense speed; the slices and the concatenation cost a pass over
the input and the output, which pays for a few groups.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def conv(
    x: jax.Array,
    kernel: jax.Array,
    groups: int,
    run_dense: Callable[[jax.Array, jax.Array], jax.Array],
) -> jax.Array:
    """The grouped convolution of ``x (N, *spatial, C)`` with ``kernel (*taps,
    C // groups, F)`` as ``groups`` runs of ``run_dense(x_block,
    kernel_block)``, a dense channels-last convolution, concatenated along
    the channels."""
    c, f = x.shape[-1] // groups, kernel.shape[-1] // groups
    return jnp.concatenate(
        [
            run_dense(x[..., i * c : (i + 1) * c], kernel[..., i * f : (i + 1) * f])
            for i in range(groups)
        ],
        axis=-1,
    )
