"""The reference path: one ``lax.conv_general_dilated``, as Keras calls it.

It is what ``impl="reference"`` runs everywhere and what ``impl="auto"`` runs
on GPU and TPU, where XLA hands it to cuDNN or the TPU's convolution unit.
Every other lowering is tested against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

import conv1djax.lowering.layout as layout
from conv1djax.lowering.layout import Pads


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: Sequence[int],
    padding: Pads,
    dilation_rate: Sequence[int],
    groups: int,
    channels_first: bool,
) -> jax.Array:
    """Cross-correlation with a ``(*taps, C // groups, F)`` kernel (Keras's
    layout) over ``(N, *spatial, C)`` (or ``(N, C, *spatial)``) inputs."""
    rank = kernel.ndim - 2
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=padding,
        rhs_dilation=dilation_rate,
        dimension_numbers=layout.dimension_numbers(rank, channels_first),
        feature_group_count=groups,
    )


def transpose_kernel(kernel: jax.Array, groups: int) -> jax.Array:
    """Swaps a grouped kernel's channel roles and flips its taps:
    ``(*taps, A, groups * B)`` -> ``(*taps, B, groups * A)``.

    For a transposed convolution's ``(*taps, F // g, C)`` kernel, this is the
    ``(*taps, C // g, F)`` kernel of the equivalent forward convolution; for
    a forward kernel, the kernel of its input gradient. Channel ``j * B + b``
    of group ``j`` pairs with ``j * A + a``, so the channel axes are split by
    group, swapped within each group, and merged back.
    """
    *taps, a, ab = kernel.shape
    rank = len(taps)
    b = ab // groups
    kernel = kernel.reshape(*taps, a, groups, b)
    kernel = kernel.transpose(*range(rank), rank + 2, rank + 1, rank)
    kernel = kernel.reshape(*taps, b, groups * a)
    return jnp.flip(kernel, axis=tuple(range(rank)))


def conv_transpose(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: Sequence[int],
    padding: Pads,
    dilation_rate: Sequence[int],
    groups: int,
    channels_first: bool,
) -> jax.Array:
    """Transposed convolution with a ``(*taps, F // groups, C)`` kernel.

    The input is dilated by ``strides`` (``lhs_dilation``), padded by
    ``padding`` and cross-correlated with the flipped, regrouped kernel: the
    adjoint of :func:`conv` with that kernel, which is what Keras's
    ``lax.conv_transpose(..., transpose_kernel=True)`` computes.
    """
    rank = kernel.ndim - 2
    return lax.conv_general_dilated(
        x,
        transpose_kernel(kernel, groups),
        window_strides=(1,) * rank,
        padding=padding,
        lhs_dilation=strides,
        rhs_dilation=dilation_rate,
        dimension_numbers=layout.dimension_numbers(rank, channels_first),
        feature_group_count=groups,
    )
