"""Shift-and-add convolution: grouped and depthwise convolutions on CPU.

A stride-1 grouped cross-correlation is a sum of ``k * (C // groups)``
shifted, scaled copies of the input: for tap ``i`` and input channel ``c`` of
each group, the input steps ``t + i * dilation`` times the kernel row
``w[i, c]``, broadcast over the group's filters. XLA fuses the sum into one
loop over the output, which runs near memory speed where its grouped
convolution (``feature_group_count``) walks a slow generic path: for a
depthwise convolution of 64 channels, 3 taps and 16 x 1024 steps on a 2-core
CPU, 0.5 ms against 25 ms forward, 1.8 ms against 49 ms forward + backward
(``benchmarks/results``).

The gradients are not left to autodiff of that sum, whose transpose reduces
over each term separately: a custom JVP (:mod:`conv1djax._adjoint`) makes
reverse mode run two ordinary convolutions instead,

- with respect to the input, the same shift-and-add convolution of the
  output cotangent with the flipped, regrouped kernel;
- with respect to the kernel, a correlation of the input with the
  cotangent: per-tap reductions for depthwise kernels, else one dense XLA
  convolution whose diagonal blocks are kept.

The results equal ``lax.conv_general_dilated``'s up to float32 summation
order.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from conv1djax import _adjoint


def _pad_steps(x: jax.Array, left: int, right: int) -> jax.Array:
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, ((0, 0, 0), (left, right, 0), (0, 0, 0)))


def fusion_barrier(y: jax.Array) -> jax.Array:
    """Returns ``y`` unchanged, bit for bit, as an op XLA:CPU cannot fuse into
    a YNNPACK subgraph.

    A ``reduce_precision`` to the dtype's own precision is the identity. When
    a reduction (a loss) consumes the sum of shifted copies, XLA:CPU pulls
    the terms into a YNNPACK fusion that evaluates them one op at a time;
    measured 6x slower than the loop fusion this op keeps.
    """
    info = jnp.finfo(y.dtype)
    return lax.reduce_precision(y, exponent_bits=info.nexp, mantissa_bits=info.nmant)


def _shift_and_add(x, kernel, padding, dilation, groups):
    """The forward sum. ``x (N, W, C)``, ``kernel (k, C // g, F)`` -> ``(N,
    W', F)``."""
    n = x.shape[0]
    k, c_per_group, f = kernel.shape
    x = _pad_steps(x, *padding)
    steps = x.shape[1] - (k - 1) * dilation
    x = x.reshape(n, x.shape[1], groups, c_per_group)
    w = kernel.reshape(k, c_per_group, groups, f // groups)
    y = None
    for i in range(k):
        window = lax.slice_in_dim(x, i * dilation, i * dilation + steps, axis=1)
        for c in range(c_per_group):
            term = window[:, :, :, c, None] * w[i, c]
            y = term if y is None else y + term
    return fusion_barrier(y.reshape(n, steps, f))


def _flip_kernel(kernel: jax.Array, groups: int) -> jax.Array:
    """``(k, C // g, F)`` -> ``(k, F // g, C)``: the kernel of the input
    gradient, flipped, with input and output channels swapped per group."""
    k, c_per_group, f = kernel.shape
    w = kernel.reshape(k, c_per_group, groups, f // groups)
    w = w.transpose(0, 3, 2, 1).reshape(k, f // groups, groups * c_per_group)
    return jnp.flip(w, axis=0)


def _kernel_grad(x, gy, kernel_shape, padding, dilation, groups):
    """``sum_{n,t} x_pad[n, t + i * dilation, c] * gy[n, t, f]`` within each
    group: the cotangent of the kernel, ``(k, C // g, F)``."""
    k, c_per_group, f = kernel_shape
    n, steps, _ = gy.shape
    if c_per_group == 1:  # depthwise: k reductions over (n, t)
        x = _pad_steps(x, *padding)
        g4 = gy.reshape(n, steps, groups, f // groups)
        taps = [
            jnp.sum(
                lax.slice_in_dim(x, i * dilation, i * dilation + steps, axis=1)[
                    ..., None
                ]
                * g4,
                axis=(0, 1),
            )
            for i in range(k)
        ]
        return jnp.stack(taps).reshape(k, 1, f)
    # All channel pairs in one dense XLA convolution: the batch is its
    # contraction, the steps its window; then the groups' diagonal blocks.
    full = lax.conv_general_dilated(
        x,  # C as the batch, N as the features
        gy,  # the steps as the window, N as its input features
        window_strides=(dilation,),
        padding=(padding,),
        dimension_numbers=("CWN", "IWO", "NWC"),
    )  # (C, k, F)
    full = full.transpose(1, 0, 2).reshape(k, groups, c_per_group, groups, f // groups)
    return jnp.einsum("kgcgf->kcgf", full).reshape(k, c_per_group, f)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _conv(x, kernel, padding, dilation, groups):
    return _shift_and_add(x, kernel, padding, dilation, groups)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(padding, dilation, groups, primals, tangents):
    x, kernel = primals
    y = _conv(x, kernel, padding, dilation, groups)
    extent = (kernel.shape[0] - 1) * dilation + 1
    grad_padding = (extent - 1 - padding[0], extent - 1 - padding[1])

    def input_grad(gy):
        return _conv_any_padding(
            gy, _flip_kernel(kernel, groups), grad_padding, dilation, groups
        )

    def kernel_grad(gy):
        return _kernel_grad(x, gy, kernel.shape, padding, dilation, groups)

    return y, _adjoint.tangent(y, input_grad, kernel_grad, *tangents)


def _conv_any_padding(x, kernel, padding, dilation, groups):
    left, right = padding
    if left < 0 or right < 0:
        x = _pad_steps(x, min(left, 0), min(right, 0))
        padding = (max(left, 0), max(right, 0))
    return _conv(x, kernel, padding, dilation, groups)


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: tuple[int, int],
    dilation: int,
    groups: int,
) -> jax.Array:
    """Stride-1, channels-last grouped cross-correlation by shift-and-add.

    Args:
      x: ``(N, W, C)``.
      kernel: ``(k, C // groups, F)``.
      padding: ``(left, right)`` zeros, both >= 0.
      dilation: the kernel's dilation.
      groups: the group count.

    Returns:
      ``(N, W + left + right - (k - 1) * dilation, F)``.
    """
    return _conv(x, kernel, tuple(padding), dilation, groups)
