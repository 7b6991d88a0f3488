"""Lowerings of the 1-D convolutions onto XLA.

The functions here take canonical, already-validated arguments: a rank-3 input
(batch, steps, channels) or (batch, channels, steps), a kernel in Keras's
layout, and explicit ``(left, right)`` paddings from :mod:`conv1djax._shapes`.
This is the reference path, a single ``lax.conv_general_dilated``; faster
lowerings chosen from static shapes and the platform plug in here, and must
equal it.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def _dimension_numbers(channels_first: bool) -> tuple[str, str, str]:
    layout = "NCW" if channels_first else "NWC"
    return (layout, "WIO", layout)


def conv1d(
    x: jnp.ndarray,
    kernel: jnp.ndarray,
    *,
    strides: int,
    padding: tuple[int, int],
    dilation_rate: int,
    groups: int,
    channels_first: bool,
) -> jnp.ndarray:
    """Cross-correlation with a ``(k, C // groups, F)`` kernel (Keras layout)."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(strides,),
        padding=(padding,),
        rhs_dilation=(dilation_rate,),
        dimension_numbers=_dimension_numbers(channels_first),
        feature_group_count=groups,
    )


def transpose_kernel(kernel: jnp.ndarray, groups: int) -> jnp.ndarray:
    """Turns a ``(k, F // g, C)`` transposed-conv kernel into the ``(k, C // g,
    F)`` flipped kernel of the equivalent forward convolution.

    Input channel ``c = j * (C // g) + i`` of group ``j`` feeds output
    ``f' = j * (F // g) + f``, so the channel axes are split by group, swapped
    within each group, and merged back.
    """
    k, f_per_group, c = kernel.shape
    c_per_group = c // groups
    kernel = kernel.reshape(k, f_per_group, groups, c_per_group)
    kernel = kernel.transpose(0, 3, 2, 1).reshape(k, c_per_group, groups * f_per_group)
    return jnp.flip(kernel, axis=0)


def conv1d_transpose(
    x: jnp.ndarray,
    kernel: jnp.ndarray,
    *,
    strides: int,
    padding: tuple[int, int],
    dilation_rate: int,
    groups: int,
    channels_first: bool,
) -> jnp.ndarray:
    """Transposed convolution with a ``(k, F // groups, C)`` kernel.

    The input is dilated by ``strides`` (``lhs_dilation``), padded by
    ``padding`` and cross-correlated with the flipped, regrouped kernel: the
    adjoint of :func:`conv1d` with that kernel, which is what Keras's
    ``lax.conv_transpose(..., transpose_kernel=True)`` computes.
    """
    return lax.conv_general_dilated(
        x,
        transpose_kernel(kernel, groups),
        window_strides=(1,),
        padding=(padding,),
        lhs_dilation=(strides,),
        rhs_dilation=(dilation_rate,),
        dimension_numbers=_dimension_numbers(channels_first),
        feature_group_count=groups,
    )
