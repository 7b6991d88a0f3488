"""Shift-and-add convolution: grouped and depthwise convolutions on CPU.

A stride-1 grouped cross-correlation is a sum of ``prod(taps) * (C //
groups)`` shifted, scaled copies of the input: for each kernel position
``i`` (one tap per spatial axis) and input channel ``c`` of each group, the
input window starting at ``i * dilation`` times the kernel row ``w[i, c]``,
broadcast over the group's filters. XLA fuses the sum into one loop over the
output, which runs near memory speed where its grouped convolution
(``feature_group_count``) walks a slow generic path: for a depthwise
convolution of 64 channels, 3 taps and 16 x 1024 steps on a 2-core CPU,
0.5 ms against 25 ms forward, 1.8 ms against 49 ms forward + backward
(``benchmarks/results``).

The gradients are not left to autodiff of that sum, whose transpose reduces
over each term separately: a custom JVP (:mod:`conv1djax.lowering.adjoint`)
makes reverse mode run two ordinary convolutions instead,

- with respect to the input, the same shift-and-add convolution of the
  output cotangent with the flipped, regrouped kernel;
- with respect to the kernel, a correlation of the input with the
  cotangent: per-position reductions for depthwise kernels, else one dense
  XLA convolution whose diagonal blocks are kept.

The results equal ``lax.conv_general_dilated``'s up to float32 summation
order, in any number of spatial axes.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import conv1djax.lowering.adjoint as adjoint
import conv1djax.lowering.layout as layout
import conv1djax.lowering.reference as reference

# The depthwise kernel gradient is one reduction over (batch, *spatial) per
# kernel position. Up to this many positions they are unrolled; beyond,
# XLA:CPU fuses the unrolled reductions into a program several times slower
# than a loop over the positions (lax.map), which costs about 1 ms more at
# few positions. Measured at 64 channels: 16 x 1024 steps, 3 taps: 0.9 ms
# unrolled, 2.0 ms looped; 9 taps: 21 ms against 2.9 ms; 8 x 56 x 56, 3 x 3:
# 28 ms against 5.0 ms.
UNROLLED_MAX_POSITIONS = 4


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


def _windows(x, taps, dilation, out):
    """Yields ``(position, window)``: for every kernel position, the slice of
    the padded ``x (N, *spatial, ...)`` that it meets, of spatial shape
    ``out``."""
    for position in itertools.product(*map(range, taps)):
        start = [p * d for p, d in zip(position, dilation, strict=True)]
        limit = [s + o for s, o in zip(start, out, strict=True)]
        tail = x.shape[1 + len(out) :]
        window = lax.slice(
            x, (0, *start, *(0 for _ in tail)), (x.shape[0], *limit, *tail)
        )
        yield position, window


def _out_shape(x_shape, taps, dilation):
    return tuple(
        n - (k - 1) * d for n, k, d in zip(x_shape[1:-1], taps, dilation, strict=True)
    )


def _shift_and_add(x, kernel, padding, dilation, groups):
    """The forward sum. ``x (N, *S, C)``, ``kernel (*taps, C // g, F)`` ->
    ``(N, *S', F)``."""
    n = x.shape[0]
    *taps, c_per_group, f = kernel.shape
    x = layout.pad_spatial(x, padding)
    out = _out_shape(x.shape, taps, dilation)
    x = x.reshape(*x.shape[:-1], groups, c_per_group)
    w = kernel.reshape(*taps, c_per_group, groups, f // groups)
    y = None
    for position, window in _windows(x, taps, dilation, out):
        for c in range(c_per_group):
            term = window[..., c, None] * w[(*position, c)]
            y = term if y is None else y + term
    return fusion_barrier(y.reshape(n, *out, f))


def _kernel_grad(x, gy, kernel_shape, padding, dilation, groups):
    """``sum_{n,t} x_pad[n, t + i * dilation, c] * gy[n, t, f]`` within each
    group, ``t`` and ``i`` running over every spatial axis: the cotangent of
    the kernel, ``(*taps, C // g, F)``."""
    *taps, c_per_group, f = kernel_shape
    rank = len(taps)
    out = gy.shape[1:-1]
    if c_per_group == 1:  # depthwise: one reduction over (n, *t) per position
        x = layout.pad_spatial(x, padding)
        g = gy.reshape(*gy.shape[:-1], groups, f // groups)
        axes = tuple(range(rank + 1))
        if math.prod(taps) <= UNROLLED_MAX_POSITIONS:
            grads = [
                jnp.sum(window[..., None] * g, axis=axes)
                for _, window in _windows(x, taps, dilation, out)
            ]
            return jnp.stack(grads).reshape(*taps, 1, f)
        positions = np.array(list(itertools.product(*map(range, taps))))

        def one_position(position):
            start = (0, *(position * np.array(dilation)), 0)
            window = lax.dynamic_slice(x, start, (x.shape[0], *out, x.shape[-1]))
            if f == groups:  # no trailing axis of 1: XLA vectorises over C
                return jnp.sum(window * gy, axis=axes)
            return jnp.sum(window[..., None] * g, axis=axes)

        grads = lax.map(jax.checkpoint(one_position), jnp.asarray(positions))
        return grads.reshape(*taps, 1, f)
    # All channel pairs in one dense XLA convolution: the batch is its
    # contraction, the spatial axes its window; then the groups' diagonal
    # blocks.
    s = layout.spatial_letters(rank)
    full = lax.conv_general_dilated(
        x,  # C as the batch, N as the features
        gy,  # the spatial axes as the window, N as its input features
        window_strides=dilation,
        padding=padding,
        dimension_numbers=(f"C{s}N", f"I{s}O", f"N{s}C"),
    )  # (C, *taps, F)
    full = jnp.moveaxis(full, 0, rank)
    full = full.reshape(*taps, groups, c_per_group, groups, f // groups)
    return jnp.einsum("...gcgf->...cgf", full).reshape(*taps, c_per_group, f)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _conv(x, kernel, padding, dilation, groups):
    return _shift_and_add(x, kernel, padding, dilation, groups)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(padding, dilation, groups, primals, tangents):
    x, kernel = primals
    y = _conv(x, kernel, padding, dilation, groups)
    taps = kernel.shape[:-2]
    grad_padding = tuple(
        ((k - 1) * d - lo, (k - 1) * d - hi)
        for k, d, (lo, hi) in zip(taps, dilation, padding, strict=True)
    )

    def input_grad(gy):
        flipped = reference.transpose_kernel(kernel, groups)
        return _conv_any_padding(gy, flipped, grad_padding, dilation, groups)

    def kernel_grad(gy):
        return _kernel_grad(x, gy, kernel.shape, padding, dilation, groups)

    return y, adjoint.tangent(y, input_grad, kernel_grad, *tangents)


def _conv_any_padding(x, kernel, padding, dilation, groups):
    x, padding = layout.crop_negative(x, padding)
    return _conv(x, kernel, padding, dilation, groups)


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """Stride-1, channels-last grouped cross-correlation by shift-and-add.

    Args:
      x: ``(N, *spatial, C)``.
      kernel: ``(*taps, C // groups, F)``.
      padding: ``(left, right)`` zeros per spatial axis, all >= 0.
      dilation: the kernel's dilation per spatial axis.
      groups: the group count.

    Returns:
      ``(N, *spatial', F)``, ``spatial' = spatial + left + right - (taps - 1)
      * dilation`` per axis.
    """
    padding = tuple(tuple(p) for p in padding)
    return _conv(x, kernel, padding, tuple(dilation), groups)
