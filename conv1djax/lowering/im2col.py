"""Dense convolution whose kernel gradient is a GEMM on a fast layout.

XLA:CPU differentiates a dense convolution into three convolutions: the
forward, the input gradient (a convolution of the output gradient with the
flipped kernel) and the kernel gradient, a convolution whose "batch" is the
input's channels and whose window is the whole image. The first two run at
XLA's convolution speed; the third at a fraction of it (a ``(32, 56, 56,
64)`` 3x3 layer: 59 ms forward, 56 ms input gradient, 290 ms kernel
gradient on a 2-core Xeon, jax 0.10.2).

This core keeps XLA's forward and input gradient (a 1x1 kernel's as matrix
products, which XLA:CPU runs on every core where its convolution runs on
one) and writes the kernel gradient as matrix products whose operands XLA's
GEMM reads contiguously:

- the input is moved to channels-first and padded once;
- for a block of ``B`` examples, the window each kernel tap meets (a
  strided slice of the block, ``(C, B, *out)``) is flattened to a
  ``(C, B * positions)`` matrix, and the taps' matrices stacked make the
  ``(taps * C, B * positions)`` transposed im2col of the block;
- the block's kernel gradient is that matrix times the block's output
  gradient, ``(B * positions, F)`` as it is laid out: a plain GEMM,
  contracting the last axis of one operand and the first of the other. A
  ``lax.scan`` over blocks keeps each block's im2col in cache.

The rule is a custom JVP (:mod:`conv1djax.lowering.adjoint`), so forward
mode, ``vmap`` and higher orders keep working. The products are the
reference path's, summed in another order (float32 rounding); bfloat16 and
float16 accumulate in float32.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

import conv1djax.lowering.adjoint as adjoint
import conv1djax.lowering.layout as layout

# A block's im2col matrix is kept at most this many bytes (when one
# example's is larger, blocks hold one example): about the second-level
# cache of the machines measured, so that the GEMM reads it back from cache.
BLOCK_BYTES = 4 << 20
# Past this many bytes of one example's im2col (a 512 x 512 image of 64
# channels and 3x3 taps: 600 MiB), the kernel gradient is XLA's own: the
# blocks would not fit in memory beside the model.
EXAMPLE_MAX_BYTES = 64 << 20

Window = tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...]]


def _forward(x: jax.Array, kernel: jax.Array, window: Window) -> jax.Array:
    """The forward product. A 1x1 kernel: the strided input times the kernel
    over the channel axis (XLA:CPU runs its convolution on one thread, its
    GEMM on all: 2.4x faster at ``(8, 56, 56, 256)`` to 64 channels, the
    input gradient alike). Otherwise XLA's dense convolution (a 3-D one is
    run by :mod:`~conv1djax.lowering.dispatch` as 2-D ones of this core, one
    per depth tap)."""
    strides, padding, dilation = window
    rank = kernel.ndim - 2
    if all(k == 1 for k in kernel.shape[:-2]):
        x = layout.pad_spatial(x, padding)
        x = lax.slice(x, (0,) * x.ndim, x.shape, (1, *strides, 1))
        return lax.dot_general(
            x, kernel.reshape(kernel.shape[-2:]), (((x.ndim - 1,), (0,)), ((), ()))
        )
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=padding,
        rhs_dilation=dilation,
        dimension_numbers=layout.dimension_numbers(rank, False),
    )


def block_size(examples: int, example_bytes: int) -> int:
    """The examples per block: the largest divisor of ``examples`` whose
    im2col stays within :data:`BLOCK_BYTES`, at least 1.

    >>> block_size(32, BLOCK_BYTES // 3)
    2
    >>> block_size(32, BLOCK_BYTES // 4), block_size(7, BLOCK_BYTES)
    (4, 1)
    """
    fits = max(1, BLOCK_BYTES // max(example_bytes, 1))
    return max(b for b in range(1, min(fits, examples) + 1) if examples % b == 0)


def kernel_grad(
    x: jax.Array, gy: jax.Array, taps: tuple[int, ...], window: Window
) -> jax.Array:
    """The kernel cotangent of a dense channels-last convolution.

    Args:
      x: ``(N, *spatial, C)``.
      gy: ``(N, *out, F)``, the output's cotangent.
      taps: the kernel's taps per spatial axis.
      window: ``(strides, padding, dilation)`` per spatial axis, the padding
        ``(left, right)`` zeros, all >= 0.

    Returns:
      ``(*taps, C, F)``, accumulated in float32 for 16-bit floats (else in
      ``x``'s dtype); the caller casts.
    """
    strides, padding, dilation = window
    n, *_, c = x.shape
    out = gy.shape[1:-1]
    f = gy.shape[-1]
    positions = math.prod(out)
    offsets = list(itertools.product(*(range(k) for k in taps)))
    example_bytes = len(offsets) * c * positions * x.dtype.itemsize
    if example_bytes > EXAMPLE_MAX_BYTES:
        forward = functools.partial(_forward, x, window=window)
        kernel = jax.ShapeDtypeStruct((*taps, c, f), x.dtype)
        return jax.linear_transpose(forward, kernel)(gy)[0]
    block = block_size(n, example_bytes)
    blocks = n // block
    # (blocks, C, block, *padded): channels-first, padded once.
    x = layout.pad_spatial(x, padding)
    xt = jnp.moveaxis(x.reshape(blocks, block, *x.shape[1:]), -1, 1)
    gy = gy.reshape(blocks, block * positions, f)
    wide = jnp.promote_types(x.dtype, jnp.float32)

    def window_of(xb: jax.Array, tap: tuple[int, ...]) -> jax.Array:
        """``(C, block * positions)``: the inputs tap ``tap`` meets."""
        start = (0, 0, *(i * d for i, d in zip(tap, dilation, strict=True)))
        limit = (c, block, *(s + (o - 1) * st + 1 for s, o, st in
                             zip(start[2:], out, strides, strict=True)))  # fmt: skip
        return lax.slice(xb, start, limit, (1, 1, *strides)).reshape(c, -1)

    # Rematerialised: linearising the custom JVP's tangent (reverse mode)
    # would otherwise save every block's im2col matrix for the transposed
    # loop, all of them at once.
    @functools.partial(jax.checkpoint, prevent_cse=False)
    def one_block(acc: jax.Array, xs: tuple[jax.Array, jax.Array]) -> Any:
        xb, gb = xs
        cols = jnp.concatenate([window_of(xb, tap) for tap in offsets], axis=0)
        return acc + jnp.matmul(cols, gb, preferred_element_type=wide), None

    init = jnp.zeros((len(offsets) * c, f), wide)
    if blocks == 1:
        total, _ = one_block(init, (xt[0], gy[0]))
    else:
        total, _ = lax.scan(one_block, init, (xt, gy))
    return total.reshape(*taps, c, f)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _conv(x: jax.Array, kernel: jax.Array, window: Window) -> jax.Array:
    return _forward(x, kernel, window)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(
    window: Window, primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
) -> tuple[jax.Array, jax.Array]:
    x, kernel = primals
    y = _conv(x, kernel, window)
    x_struct = jax.ShapeDtypeStruct(x.shape, x.dtype)

    def input_grad(gy: jax.Array) -> jax.Array:
        # XLA's own: a convolution of gy with the flipped kernel (a matrix
        # product for a 1x1 kernel).
        forward = functools.partial(_forward, kernel=kernel, window=window)
        return jax.linear_transpose(forward, x_struct)(gy)[0]

    def kernel_grad_(gy: jax.Array) -> jax.Array:
        grad = kernel_grad(x, gy, kernel.shape[:-2], window)
        return grad.astype(kernel.dtype)

    return y, adjoint.tangent(y, input_grad, kernel_grad_, *tangents)


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: tuple[int, ...],
    padding: layout.Pads,
    dilation: tuple[int, ...],
) -> jax.Array:
    """Dense, channels-last cross-correlation of any rank.

    Args:
      x: ``(N, *spatial, C)``.
      kernel: ``(*taps, C, F)``.
      strides: the strides per spatial axis.
      padding: ``(left, right)`` zeros per spatial axis, all >= 0.
      dilation: the kernel's dilation per axis.

    Returns:
      ``(N, *out, F)``, ``out = (spatial + left + right - (taps - 1) *
      dilation - 1) // strides + 1``: XLA's forward; reverse mode runs
      :func:`kernel_grad`.
    """
    window = (
        tuple(int(s) for s in strides),
        tuple((int(lo), int(hi)) for lo, hi in padding),
        tuple(int(d) for d in dilation),
    )
    return _conv(x, kernel, window)
