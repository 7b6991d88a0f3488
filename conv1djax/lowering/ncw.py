"""Dense channels-first convolution with a matmul backward.

XLA:CPU runs a channels-first (NCW) convolution as a channels-last one
between transposes, and its gradient the same way, with more transposes:
forward and backward take about twice the channels-last time. The forward
is kept (nothing measured beats it), and a custom JVP
(:mod:`conv1djax.lowering.adjoint`) makes reverse mode run batched matmuls over the
im2col of the channels-first input, whose rows are contiguous shifted
slices of the steps:

- input cotangent: ``dP[b] = W^T gy[b]`` for each batch element, then the
  ``k`` row blocks of ``dP`` shifted back and summed (col2im);
- kernel cotangent: ``sum_b gy[b] P[b]^T`` with ``P`` the im2col of the
  padded input, ``(k * C, steps)`` per batch element.

The im2col holds ``k`` copies of the input, so this is only chosen for short
kernels (``choose.NCW_MAX_TAPS``). Results equal the reference up to
float32 summation order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

import conv1djax.lowering.adjoint as adjoint


def _pad_steps(x: jax.Array, left: int, right: int) -> jax.Array:
    """Zero-pads (or crops) the last axis of ``(N, C, W)``."""
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, ((0, 0, 0), (0, 0, 0), (left, right, 0)))


def _im2col(
    x: jax.Array, taps: int, padding: tuple[int, int], dilation: int, steps: int
) -> jax.Array:
    """``(N, C, W)`` -> ``(N, taps * C, steps)``: row ``i * C + c`` holds
    the padded input's channel ``c`` from step ``i * dilation`` on."""
    x = _pad_steps(x, *padding)
    rows = [
        lax.slice_in_dim(x, i * dilation, i * dilation + steps, axis=2)
        for i in range(taps)
    ]
    return jnp.concatenate(rows, axis=1)


Geometry = tuple[tuple[int, int], int]  # padding, dilation


def _forward(x: jax.Array, kernel: jax.Array, geometry: Geometry) -> jax.Array:
    padding, dilation = geometry
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1,),
        padding=(padding,),
        rhs_dilation=(dilation,),
        dimension_numbers=("NCW", "WIO", "NCW"),
    )


def _input_grad(
    gy: jax.Array, x: jax.Array, kernel: jax.Array, geometry: Geometry
) -> jax.Array:
    padding, dilation = geometry
    k, c, f = kernel.shape
    n, _, length = x.shape
    steps = gy.shape[2]
    total = length + padding[0] + padding[1]
    w = jnp.broadcast_to(kernel.reshape(k * c, f), (n, k * c, f))
    blocks = jnp.einsum("njf,nft->njt", w, gy).reshape(n, k, c, steps)
    dx: jax.Array | None = None
    for i in range(k):
        lo = i * dilation
        term = _pad_steps(blocks[:, i], lo, total - steps - lo)
        dx = term if dx is None else dx + term
    assert dx is not None  # k >= 1 taps
    return _pad_steps(dx, -padding[0], -padding[1])


def _kernel_grad(
    gy: jax.Array, x: jax.Array, kernel: jax.Array, geometry: Geometry
) -> jax.Array:
    padding, dilation = geometry
    k, c, f = kernel.shape
    patches = _im2col(x, k, padding, dilation, gy.shape[2])
    per_example = jnp.einsum("nft,njt->njf", gy, patches)
    return per_example.sum(0).reshape(k, c, f)


_conv = adjoint.custom_conv(_forward, _input_grad, _kernel_grad)


def conv(
    x: jax.Array, kernel: jax.Array, *, padding: tuple[int, int], dilation: int
) -> jax.Array:
    """Stride-1, dense, channels-first cross-correlation.

    Args:
      x: ``(N, C, W)``.
      kernel: ``(k, C, F)``.
      padding: ``(left, right)`` zeros, both >= 0.
      dilation: the kernel's dilation.

    Returns:
      ``(N, F, W + left + right - (k - 1) * dilation)``.
    """
    return _conv(x, kernel, ((padding[0], padding[1]), dilation))
