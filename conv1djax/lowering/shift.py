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
  cotangent: per-position reductions for depthwise kernels and few kernel
  positions, else one dense XLA convolution per group (up to
  ``GROUP_CONV_GRAD_MAX_GROUPS`` groups).

The results equal ``lax.conv_general_dilated``'s up to float32 summation
order, in any number of spatial axes.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

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
# Steps added in the loop fusion before the kernel gradient's reduction
# (_sum_over_examples_and_steps); 16 was slower than 8 (2.8 ms against 2.4).
PARTIAL_STEPS = 8
# Steps added in the loop fusion before each reduction of the looped kernel
# gradient (one kernel position and channel per iteration): its reduction
# read the whole product from memory. The depthwise kernel gradient alone
# (2026-12-06, 2-core AMD EPYC, jax 0.10.2): 3x3 over (8, 56, 56, 64),
# 5.1 ms with a plain sum, 3.4 with 8 steps, 3.2 with 16, 3.1 with 28, 3.3
# with 56; 9 taps over (16, 1024, 64), 2.9, 2.7, 1.7, 1.5, 1.7 ms. Value and
# gradient of an MSE / mean(tanh(y)), 16 steps against the plain sum:
# DepthwiseConv2D(3) over (8, 56, 56, 64) 7.1 / 6.7 ms against 9.8 / 9.4;
# a depthwise Conv1D of 9 taps over (16, 1024, 64) 2.9 / 2.8 against 4.3 /
# 4.4; SeparableConv2D(64, 3) over (8, 56, 56, 64) 14.5 / 13.1 against 18.0
# / 19.5; a 3-D depthwise of strides 3 (143 groups of 27 channels after
# space-to-depth) over (2, 18, 18, 18, 143) 3.5 / 3.5 against 5.6 / 5.3;
# even at DepthwiseConv2D(3, strides=2) over (8, 56, 56, 64) (3.2 / 3.4
# against 3.3 / 3.5) and DepthwiseConv2D(5) over (8, 28, 28, 96) (5.1 / 4.6
# against 4.7 / 5.0). (Since measured, 2-D kernels of at most ROW_MAX_TERMS
# columns run by rows instead, below.)
LOOPED_PARTIAL_STEPS = 16
# A depthwise kernel of 2 or 3 spatial axes, of more than
# UNROLLED_MAX_POSITIONS positions, whose positions past the first axis are at
# most this many: the loop runs over the first axis's taps, each iteration
# the unrolled sums of a row's positions (reading the cotangent once per
# row). Value and gradient of an MSE / mean(tanh(y)), against one iteration
# per position (2026-12-06, 2-core AMD EPYC, jax 0.10.2, two runs):
# DepthwiseConv2D(5) over (8, 28, 28, 96) 2.8 / 2.9 ms against 4.0 / 3.8;
# DepthwiseConv2D(3) over (8, 56, 56, 64) 4.9 / 4.2 against 5.0 / 4.8;
# SeparableConv2D(64, 3) 11.7 / 10.4 against 12.2 / 11.4 (the kernel
# gradient alone: 3.6 against 3.9 ms). Nine positions unrolled made a
# program several times slower (UNROLLED_MAX_POSITIONS).
# At fewer output steps along the first axis than PARTIAL_STEPS (no whole
# block of steps to add) the rows lost: DepthwiseConv2D(3) over (16, 7, 7,
# 256), 1.9 / 2.1 ms against 1.0 / 0.8; they won from 14 steps on ((16, 14,
# 14, 128): 1.4 / 1.3 against 1.7 / 1.7; (16, 20, 20, 128): 2.4 / 2.6
# against 3.5 / 3.4; (8, 28, 28, 128): 2.0 / 2.0 against 3.0 / 2.9).
ROW_MAX_TERMS = 5
# With several input channels per group and more kernel positions times
# channels of a group than UNROLLED_MAX_POSITIONS, the kernel gradient is one
# dense XLA convolution per group, of its channel pairs (its batch the
# contraction, the spatial axes its window), up to this many groups; beyond,
# the looped reductions above. Value and gradient of an MSE and of
# mean(tanh(y)), impl="shift", 2-core AMD EPYC, jax 0.10.2 (2026-12-06),
# against one dense convolution of all channel pairs (the rule up to 8
# groups before) or the reductions: 8 groups of 8 channels, 3 taps, (16,
# 1024, 64): 5.5 / 5.6 ms against 6.9 / 7.0 (5 taps: 6.8 / 7.1 against 9.8 /
# 9.6); 8 groups of 4, 3x3, (8, 32, 32, 32): 3.2 / 3.1 against 3.6 / 3.3; 16
# groups of 4, 3x3, (8, 32, 32, 64): 5.7 / 5.9 against 10.9 / 11.3 for the
# reductions; 32 groups of 2, 3x3, same input: 6.1 / 6.4 against 13.0 /
# 12.4; 32 groups of 4, 2x2 (a strided depthwise (8, 56, 56, 32)): 1.8 / 1.8
# against 2.1 / 2.0. At 64 groups the reductions won (a strided depthwise
# (8, 56, 56, 64): 5.9 / 5.2 ms against 5.9 / 6.9), at 143 groups of 27 by
# 2.7x. Where the unrolled reductions run (at most UNROLLED_MAX_POSITIONS
# kernel positions times channels) they won at every group count measured:
# 8 groups of 2, 2 taps, (16, 1024, 16): 0.6 / 0.6 ms against 1.1 / 1.1; 32
# groups of 2, 2 taps, (16, 1024, 64): 2.8 / 2.6 against 4.4 / 5.0.
GROUP_CONV_GRAD_MAX_GROUPS = 32
# A depthwise forward of at most this many taps pads its windows inside the
# sum's loop fusion (see _shift_and_add).
IN_FUSION_MAX_TAPS = 3
# A depthwise forward of more taps, not differentiated, runs by regions
# (_by_regions) in up to this many spatial axes. In 3-D its 27 regions lost
# to the padded copy (forward, 2-core AMD EPYC, jax 0.10.2: 3x3x3 over (2,
# 8, 8, 8, 64), 0.4 against 0.2 ms; over (2, 16, 16, 16, 32), 0.7 against
# 0.5 ms); in 2-D down to 7 x 7 it did not ((16, 7, 7, 256): 0.2 against
# 0.3 ms).
REGIONS_MAX_RANK = 2


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


def _shifted(x: jax.Array, offsets: Sequence[int], lengths: Sequence[int]) -> jax.Array:
    """``x (N, *spatial, ...)`` shifted: ``out[n, u] = x[n, u + offset]`` per
    spatial axis where that index exists, else 0, of spatial shape
    ``lengths``. A slice of ``x``, padded where it overhangs an edge."""
    rank = len(lengths)
    tail = x.shape[1 + rank :]
    starts: list[int] = []
    limits: list[int] = []
    pads: list[tuple[int, int, int]] = []
    for first, o, n in zip(offsets, lengths, x.shape[1 : 1 + rank], strict=True):
        starts.append(min(max(first, 0), n))
        limits.append(max(min(first + o, n), starts[-1]))
        pads.append((starts[-1] - first, first + o - limits[-1], 0))
    window = lax.slice(
        x, (0, *starts, *(0 for _ in tail)), (x.shape[0], *limits, *tail)
    )
    if any(lo or hi for lo, hi, _ in pads):
        zero = jnp.zeros((), x.dtype)
        window = lax.pad(window, zero, [(0, 0, 0), *pads, *((0, 0, 0),) * len(tail)])
    return window


def _windows(
    x: jax.Array,
    taps: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
    padding: layout.Pads,
) -> Iterator[tuple[tuple[int, ...], jax.Array]]:
    """Yields ``(position, window)``: for every kernel position, the window of
    ``x (N, *spatial, ...)`` zero-padded by ``padding`` that it meets, of
    spatial shape ``out``.

    Each window is a slice of ``x``, padded where it overhangs an edge
    (inside the consumer's loop fusion: see :func:`_shift_and_add`).
    """
    for position in itertools.product(*map(range, taps)):
        offsets = [
            p * d - lo
            for p, d, (lo, _) in zip(position, dilation, padding, strict=True)
        ]
        yield position, _shifted(x, offsets, out)


def _shift_and_add(
    x: jax.Array,
    kernel: jax.Array,
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
    pad_first: bool,
) -> jax.Array:
    """The forward sum. ``x (N, *S, C)``, ``kernel (*taps, C // g, F)`` ->
    ``(N, *S', F)``.

    A depthwise kernel of at most :data:`IN_FUSION_MAX_TAPS` taps, not
    differentiated, pads each window inside the sum's loop fusion, which
    reads ``x`` once; one of more taps in 1-D or 2-D runs by regions
    (:func:`_by_regions`). Otherwise the windows are slices of one padded
    copy of ``x``: the bounds checks of padding in the fusion keep XLA:CPU
    from vectorising a longer loop (a depthwise forward, 2026-12-06, 2-core
    AMD EPYC: 3 taps over (16, 1024, 64), 0.2 ms in the fusion against 0.4
    ms; 9 taps, 2.8 against 0.7 ms; 3x3 over (8, 56, 56, 64), 3.8 against
    1.8 ms; 5x5 over (8, 56, 56, 96), 15 against 5.6 ms). Where each window
    feeds several terms padding first was faster still (1.8x at 8 groups of
    8 channels, 3 taps, 16 x 1024; 7x for the input gradient of 16 groups
    of 1 channel to 30, 2 taps). The derivatives take the padded copy,
    shared with the kernel gradient's windows (with unpadded windows XLA
    recomputed the forward inside a separable layer's 1x1 kernel gradient,
    1.8x slower).
    """
    n = x.shape[0]
    *taps, c_per_group, f = kernel.shape
    out = layout.output_steps(x.shape[1:-1], taps, padding, dilation)
    several_uses = c_per_group > 1 or f > groups
    many_taps = math.prod(taps) > IN_FUSION_MAX_TAPS
    padded = any(lo or hi for lo, hi in padding)
    by_regions = len(taps) <= REGIONS_MAX_RANK and padded and many_taps
    if by_regions and not (pad_first or several_uses):
        return _by_regions(x, kernel, padding, dilation, groups)
    if pad_first or several_uses or many_taps:
        x = layout.pad_spatial(x, padding)
        padding = ((0, 0),) * len(taps)
    x = x.reshape(*x.shape[:-1], groups, c_per_group)
    w = kernel.reshape(*taps, c_per_group, groups, f // groups)
    y: jax.Array | None = None
    for position, window in _windows(x, taps, dilation, out, padding):
        for c in range(c_per_group):
            term = window[..., c, None] * w[(*position, c)]
            y = term if y is None else y + term
    assert y is not None  # at least one tap and one channel
    return fusion_barrier(y.reshape(n, *out, f))


def _region_ranges(
    length: int, taps: int, dilation: int, padding: tuple[int, int]
) -> list[tuple[int, int]]:
    """The outputs along one axis that read its left padding, none, and its
    right padding: up to three ``(start, stop)`` ranges, the empty ones
    left out.

    >>> _region_ranges(56, 3, 1, (1, 1))
    [(0, 1), (1, 55), (55, 56)]
    >>> _region_ranges(4, 9, 1, (4, 4))
    [(0, 4)]
    """
    lo, hi = padding
    out = length + lo + hi - (taps - 1) * dilation
    first = min(lo, out)
    last = max(first, out - hi)
    return [(a, b) for a, b in ((0, first), (first, last), (last, out)) if b > a]


def _by_regions(
    x: jax.Array,
    kernel: jax.Array,
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """The forward sum of a depthwise kernel, not differentiated, as the
    outputs that read no padding (windows that are plain slices of ``x``)
    and the thin regions along the edges (of a small padded copy each),
    concatenated: neither a padded copy of ``x`` nor bounds checks in the
    main loop. Forward of a depthwise kernel (2026-12-06, 2-core AMD EPYC,
    jax 0.10.2, two runs): 3x3 over (8, 56, 56, 64), 1.0 / 0.6 ms against
    1.5 / 0.9 with the padded copy; 9 taps over (16, 1024, 64), 0.5 / 0.4
    against 0.7 / 0.6; 5x5 over (8, 28, 28, 96), 1.0 / 0.6 against 1.0 /
    0.7. Grouped kernels gained nothing (8 groups of 8 channels, 3 taps: 1.3
    against 1.5 ms, then the same)."""
    *taps, _, _ = kernel.shape
    rank = len(taps)

    def along(axis: int, x_: jax.Array, pads: list[tuple[int, int]]) -> jax.Array:
        if axis == rank:
            return _shift_and_add(x_, kernel, tuple(pads), dilation, groups, True)
        length, k, d = x.shape[1 + axis], taps[axis], dilation[axis]
        lo, _ = padding[axis]
        parts = []
        for a, b in _region_ranges(length, k, d, padding[axis]):
            # Inputs a - lo ... b - 1 - lo + (k - 1) d, those past the edges
            # as padding.
            first, last = a - lo, b - 1 - lo + (k - 1) * d
            start, stop = max(first, 0), min(last, length - 1) + 1
            part = lax.slice_in_dim(x_, start, stop, axis=1 + axis)
            pad = (start - first, last + 1 - stop)
            parts.append(along(axis + 1, part, [*pads, pad]))
        return jnp.concatenate(parts, axis=1 + axis) if len(parts) > 1 else parts[0]

    return along(0, x, [])


def _sum_over_examples_and_steps(
    terms: list[jax.Array], rank: int, partial_steps: int = PARTIAL_STEPS
) -> jax.Array:
    """The sums over ``(n, *t)`` of the ``(N, *spatial, ...)`` terms (``rank``
    spatial axes), stacked: ``(len(terms), ...)``.

    A reduction of each term (XLA:CPU's YNNPACK reduction) reads it from
    memory, so every term that is a shifted window of the input is first
    written out: for a depthwise kernel of 3 taps over (16, 1024, 64), 2
    copies and 3 reductions. Instead, one loop fusion adds each term's
    ``partial_steps`` consecutive steps (strided slices of the first spatial
    axis) for all terms at once, reading the input and the cotangent once;
    the reduction then reads ``1 / partial_steps`` of the data. Forward +
    backward of that depthwise convolution took 6.3x-7.4x one elementwise
    pass over its input this way (value and gradient of an MSE), 8.0x-9.3x
    with one reduction per tap (``benchmarks/sweep.py``'s memory floor).
    """
    parts: list[jax.Array] = []
    for term in terms:
        steps = term.shape[1]
        whole = steps - steps % partial_steps
        acc: jax.Array | None = None
        for r in range(partial_steps if whole else 0):
            part = lax.slice_in_dim(term, r, whole, stride=partial_steps, axis=1)
            acc = part if acc is None else acc + part
        if whole < steps:
            tail = lax.slice_in_dim(term, whole, steps, axis=1)
            acc = tail if acc is None else jnp.concatenate([acc, tail], axis=1)
        assert acc is not None  # at least one step
        parts.append(acc)
    stacked = fusion_barrier(jnp.stack(parts))
    return jnp.sum(stacked, axis=tuple(range(1, rank + 2)))


def _kernel_grad(
    x: jax.Array,
    gy: jax.Array,
    kernel_shape: Sequence[int],
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    """``sum_{n,t} x_pad[n, t + i * dilation, c] * gy[n, t, f]`` within each
    group, ``t`` and ``i`` running over every spatial axis: the cotangent of
    the kernel, ``(*taps, C // g, F)``."""
    *taps, c_per_group, f = kernel_shape
    rank = len(taps)
    out = gy.shape[1:-1]
    unrolled = math.prod(taps) * c_per_group <= UNROLLED_MAX_POSITIONS
    if c_per_group == 1 or unrolled or groups > GROUP_CONV_GRAD_MAX_GROUPS:
        # One sum over (n, *t) per kernel position and input channel of a
        # group, all groups at once.
        g = gy.reshape(*gy.shape[:-1], groups, f // groups)
        # Windows of the padded input, the copy the differentiated forward
        # makes (XLA computes it once for both), rather than the cotangent
        # shifted against the input: that was as fast under an MSE and 1.2x
        # slower under the sum of squares, where XLA recomputes the forward
        # per shift.
        x = layout.pad_spatial(x, padding)
        depthwise = f == groups == x.shape[-1]  # multiplier 1: no axis of 1
        if not depthwise:
            x = x.reshape(*x.shape[:-1], groups, c_per_group)
        if unrolled:
            windows = _windows(x, taps, dilation, out, ((0, 0),) * rank)
            if depthwise:
                terms = [window * gy for _, window in windows]
            else:
                terms = [
                    window[..., c, None] * g
                    for _, window in windows
                    for c in range(c_per_group)
                ]
            grads = _sum_over_examples_and_steps(terms, rank)
            return grads.reshape(*taps, c_per_group, f)
        rows = rank > 1 and out[0] >= PARTIAL_STEPS
        if depthwise and rows and math.prod(taps[1:]) <= ROW_MAX_TERMS:

            def one_row(i: jax.Array) -> jax.Array:
                """The kernel gradient of row ``i`` (the first spatial
                axis's tap), ``(prod(taps[1:]), C)``."""
                band = lax.dynamic_slice_in_dim(x, i * dilation[0], out[0], axis=1)
                terms = []
                for tap in itertools.product(*map(range, taps[1:])):
                    steps = zip(tap, dilation[1:], strict=True)
                    offsets = (0, *(t * d for t, d in steps))
                    terms.append(_shifted(band, offsets, out) * gy)
                return _sum_over_examples_and_steps(terms, rank)

            grads = lax.map(jax.checkpoint(one_row), jnp.arange(taps[0]))
            return grads.reshape(*taps, c_per_group, f)
        x = x.reshape(*x.shape[: 1 + rank], groups, c_per_group)
        pairs = np.array(
            [
                (*position, c)
                for position in itertools.product(*map(range, taps))
                for c in range(c_per_group)
            ]
        )

        def one_pair(pair: jax.Array) -> jax.Array:
            start = (0, *(pair[:rank] * np.array(dilation)), 0, pair[rank])
            window = lax.dynamic_slice(x, start, (x.shape[0], *out, groups, 1))
            # no trailing axis of 1 where f == groups: XLA vectorises over C
            term = window[..., 0] * gy if f == groups else window * g
            if out[0] < LOOPED_PARTIAL_STEPS:  # no whole block of steps
                return jnp.sum(term, axis=tuple(range(rank + 1)))
            return _sum_over_examples_and_steps([term], rank, LOOPED_PARTIAL_STEPS)[0]

        grads = lax.map(jax.checkpoint(one_pair), jnp.asarray(pairs))
        return grads.reshape(*taps, c_per_group, f)
    # One dense XLA convolution per group, of its channel pairs only: the
    # batch is its contraction, the spatial axes its window.
    s = layout.spatial_letters(rank)
    f_per_group = f // groups
    blocks: list[jax.Array] = []
    for i in range(groups):
        full = lax.conv_general_dilated(
            # C as the batch, N as the features
            x[..., i * c_per_group : (i + 1) * c_per_group],
            # the spatial axes as the window, N as its input features
            gy[..., i * f_per_group : (i + 1) * f_per_group],
            window_strides=dilation,
            padding=padding,
            dimension_numbers=(f"C{s}N", f"I{s}O", f"N{s}C"),
        )  # (C // g, *taps, F // g)
        blocks.append(jnp.moveaxis(full, 0, rank))
    return jnp.concatenate(blocks, axis=-1)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5))
def _conv(
    x: jax.Array,
    kernel: jax.Array,
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
    pad_first: bool = False,
) -> jax.Array:
    return _shift_and_add(x, kernel, padding, dilation, groups, pad_first)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
    pad_first: bool,
    primals: tuple[jax.Array, jax.Array],
    tangents: tuple[Any, Any],
) -> tuple[jax.Array, jax.Array]:
    del pad_first  # differentiated: the padded copy (see _shift_and_add)
    x, kernel = primals
    y = _conv(x, kernel, padding, dilation, groups, True)
    taps = kernel.shape[:-2]
    grad_padding = layout.input_grad_padding(taps, padding, dilation)

    def input_grad(gy: jax.Array) -> jax.Array:
        flipped = reference.transpose_kernel(kernel, groups)
        return _conv_any_padding(gy, flipped, grad_padding, dilation, groups)

    def kernel_grad(gy: jax.Array) -> jax.Array:
        return _kernel_grad(x, gy, kernel.shape, padding, dilation, groups)

    return y, adjoint.tangent(y, input_grad, kernel_grad, *tangents)


def _conv_any_padding(
    x: jax.Array,
    kernel: jax.Array,
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> jax.Array:
    x, padding = layout.crop_negative(x, padding)
    return _conv(x, kernel, padding, dilation, groups, True)


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
    padding = tuple((lo, hi) for lo, hi in padding)
    return _conv(x, kernel, padding, tuple(dilation), groups)
