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
  ``(taps * C, B * positions)`` transposed im2col of the block (built
  one spatial axis at a time: ``sum(taps)`` slices, not ``prod(taps)``);
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
import conv1djax.lowering.xla_conv as xla_conv
from conv1djax.dtype_policy import at_least_float32
from conv1djax.lowering.rewrites import space_to_depth

# A block's im2col matrix is kept at most this many bytes (when one
# example's is larger, blocks hold one example): about the second-level
# cache of the machines measured, so that the GEMM reads it back from cache.
BLOCK_BYTES = 4 << 20
# A 1x1 kernel's gradient is one matrix product. Otherwise, the blocked
# GEMMs run the kernel gradient while it has at most GEMM_MAX_CHANNELS input
# channels and at least GEMM_MIN_ROWS output positions (examples times positions per example);
# elsewhere XLA's own kernel gradient was as fast or faster. 3x3, C -> C
# channels, (N, S, S, C), XLA's time over the GEMMs', two runs
# (2026-12-06, 2-core AMD EPYC, jax 0.10.2): C = 64: (32, 56) 2.0x, 2.1x;
# (64, 32) 1.39x, 1.31x; (32, 32) 1.23x, 1.04x; (8, 56) 0.99x, 0.78x;
# (64, 16) 0.65x, 0.60x. C = 32: (64, 32) 0.76x, 0.64x. C >= 128, where
# XLA's runs on both cores: 0.72x-1.23x. Measured again on 2026-12-07
# (same machine, peers interleaved in one process), fwd+bwd MSE / tanh /
# the kernel gradient alone, the layer by itself: at C = 64 the GEMMs won
# from 2048 rows, (64, 16) 1.11 / 1.12 / 1.17, (16, 32) 1.06-1.08 /
# 1.08-1.09 / 1.06-1.08, (8, 32) 1.09-1.10 / 1.04-1.10 / 1.07-1.16, (8,
# 16) 1.05 / 1.10 / 1.13, and lost at 512 ((2, 16) 0.84 / 0.96 / 0.90).
# But in benchmarks/torch_bench.py's ResNet train step, whose four (16, 32,
# 32, 64) layers it would reach, two runs read 412 against 415 ms and 408
# against 413 (XLA's against the GEMMs'), and the step compiled 0.3-1.2 s
# slower: there XLA:CPU runs its one-thread kernel gradient beside the
# input gradient. The line was left here.
GEMM_MAX_CHANNELS = 64
GEMM_MIN_ROWS = 32768
# ... and, for a stride-1 convolution, at least GEMM_MIN_CHANNELS input
# channels: below 64 the GEMMs tied or lost inside whole programs, fwd+bwd
# MSE / tanh, XLA's time over the GEMMs' (2026-12-06, 2-core AMD EPYC, jax
# 0.10.2, 3x3 "same" unless said, (N, S, S, C) to F): (8, 64, 64, 32) to
# 32 0.93 / 0.94; 48 to 64 0.77 / 1.05; 5x5 32 to 32 1.01 / 1.02; 7x7 32
# to 32 0.94 / 0.91; 5x5 32 to 48 0.86 / 1.13; 3 to 32 and (8, 224, 224, 3)
# to 64 0.93-0.98 / 1.16-1.18; (64, 32, 32, 32) to 32 auto 0.76x-0.96x
# the reference path. At 64: (8, 64, 64, 64) 1.08 / 1.10, (32, 56, 56, 64)
# 1.29 / 1.34. A strided one (the stem's 3 channels) keeps the GEMMs.
GEMM_MIN_CHANNELS = 64
# A kernel of at most FEW_TAPS_MAX_POSITIONS positions with at least
# FEW_TAPS_MIN_FILTERS filters (the phases of a strided transposed
# convolution, stacked along the filters: a 4x4 stride-2 one is a 2x2 kernel
# of 4 * F filters) takes the GEMMs from any number of rows: XLA's kernel
# gradient of such a kernel ran 1.1x-1.4x slower (2026-12-06, 2-core AMD
# EPYC, jax 0.10.2, the kernel gradient alone, two runs): 2x2, 32 -> 128,
# (8, 34, 34) valid: 3.5 / 4.9 ms against 2.8 / 3.5; 64 -> 256, (8, 32, 32):
# 10.9 / 16.7 against 9.7 / 14.2; 64 -> 256, (16, 16, 16): 4.8 against 3.4;
# 64 -> 128, (8, 16, 16): 1.6 / 2.6 against 1.3 / 1.6; a tie at 128 -> 512,
# (32, 9, 9) (8.7 against 9.3) and at 16 -> 64 (1.2 / 1.6 against 1.3 /
# 1.5); a 3x3 kernel of 32 -> 128 channels lost (4.6 against 5.8 ms).
FEW_TAPS_MAX_POSITIONS = 4
FEW_TAPS_MIN_FILTERS = 128
# Past this many bytes of one example's im2col (a 512 x 512 image of 64
# channels and 3x3 taps: 600 MiB), the kernel gradient is XLA's own: the
# blocks would not fit in memory beside the model.
EXAMPLE_MAX_BYTES = 64 << 20
# A convolution whose kernel outweighs its output positions in all (the
# im2col's rows: examples times positions), as a network's last stages have,
# runs its input gradient as a GEMM of the output gradient and the kernel as
# stored, then col2im (XLA's transposes the kernel for a convolution with
# the flipped one: 4.4 ms of a (3, 3, 512, 512) kernel), and its kernel
# gradient as the GEMMs above: from SMALL_MIN_KERNEL_PER_ROW kernel elements
# per row, with at least SMALL_MIN_CHANNELS channels and filters; its
# forward as one GEMM of the im2col from SMALL_FORWARD_MIN_KERNEL_PER_ROW.
# 3x3, "same", C -> F, ms, forward / MSE / tanh value and gradient, XLA's
# against the GEMMs, kernel elements per row (2026-12-07, 2-core AMD EPYC,
# jax 0.10.2): all three GEMMs: (8, 4, 4, 1024) to 1024, 73728: 33.7 / 128
# / 130 against 13.9 / 53 / 58; (4, 7, 7, 512) to 512, 12037: 6.1 / 31 / 29
# against 5.2 / 17 / 16; (16, 4, 4, 512) to 512, 9216: 7.4 / 28.5 / 29.6
# against 7.7 / 20.7 / 21.5; 256 to 512 and 512 to 256, 4608: 3.1-3.3 /
# 12.7-14.1 / 13.2-14.2 against 3.4-3.5 / 9.2-10.8 / 9.2-10.7. XLA's forward
# and the GEMM gradients: 2304 (16, 4, 4, 256) to 256: 8.0 / 8.2 against 6.0
# / 5.9; 6019 (8, 7, 7, 512): 37.3 / 36.6 against 32.6 / 32.7; 4608 (32, 4,
# 4, 512): 44.2 / 43.8 against 41.2 / 41.5; stride 2, (16, 8, 8, 256) to
# 512, 4608: 14.0 / 13.5 against 11.2 / 10.9; (8, 14, 14, 256) to 512,
# 3009: 19.0 / 19.4 against 17.3 / 16.9; all three, (16, 7, 7, 512), 3009:
# 69 / 66 against 59 / 58. Below, the GEMMs lost or tied: 752 (16, 7, 7,
# 256) to 256, 17.8 / 16.6 against 20.6 / 16.1; 576 (16, 8, 8, 256), 19.3
# / 19.2 against 20.5 / 20.4, and (64, 4, 4, 256) 20.2 against 20.4 (MSE);
# 753 (64, 7, 7, 512) and (16, 14, 14, 512), 285 / 277 and 258 / 257
# against 267 / 265 and 275 / 274 (forward 95 and 81 against 109 and 104).
SMALL_MIN_KERNEL_PER_ROW = 1500
SMALL_MIN_CHANNELS = 256
SMALL_FORWARD_MIN_KERNEL_PER_ROW = 10_000
# A 1-D kernel's gradient takes the GEMM only from this many elements per
# position: below it XLA's 1-D kernel gradient (Eigen's, on both cores) tied
# or won (2026-12-07, 2-core AMD EPYC, jax 0.10.2, the gradient of an MSE
# with respect to the kernel alone, and benchmarks/sweep.py's train step,
# XLA's time over the GEMM's): Conv1D(512, 3) over (8, 16, 512) (6144)
# 0.99x-1.02x, strides=2 over (8, 32, 512) (6144) 0.96x-1.06x, "valid" over
# (16, 8, 512) (8192) 0.86x-0.97x; Conv1D(1024, 3) over (4, 16, 1024)
# (49152) 1.05x-2.30x. Its input gradient takes it from
# SMALL_MIN_KERNEL_PER_ROW as in 2-D.
SMALL_1D_KERNEL_GRAD_MIN_PER_ROW = 16_384

# XLA:CPU's 2-D convolution (YNNPACK) runs on one thread when its output
# is narrower than about FOLD_MIN_WIDTH columns and has at most
# FOLD_MAX_FILTERS channels (2026-12-06, 2-core AMD EPYC, jax 0.10.2, 3x3,
# 64 -> 64 channels, the same work: width 56 or 64, 1.00 cores busy; 96,
# 1.48; 112, 1.68; 128 filters at width 56, 1.90). Such a convolution runs
# on examples laid side by side along the width (transposes in and out):
# (32, 56, 56, 64) in 56 ms against 78 ms, its input gradient 60-73 against
# 82 ms.
FOLD_MIN_WIDTH = 112
FOLD_MAX_FILTERS = 64
# A stride-1 fold also needs FOLD_MIN_MACS multiply-adds per output
# position (k_h * k_w * C * F): below them the transposes in and out cost
# what the second thread gains. Forward / MSE / tanh, the reference path's
# time over the folded core's, then unfolded (2026-12-06, 2-core AMD EPYC,
# jax 0.10.2, 3x3 "same" unless said, (N, S, S, C) to F, per-position
# multiply-adds): (8, 64, 64, 32) to 32, 9216: 0.91 / 0.81 / 0.92 folded
# against 1.03 / 0.90 / 0.96; (16, 64, 64, 32) to 32: 0.89 / 0.76 / 0.88
# against 1.01 / 0.83 / 0.92; (8, 32, 32, 16) to 16, 2304: 0.95 / 0.90 /
# 0.91 against 1.05 / 1.05 / 1.01; 7x7 16 to 16, 12544: 0.91 / 0.88 / 0.90
# against 1.00 / 0.94 / 0.93; 5x5 16 to 32, 12800: 0.91 / 0.97 / 0.99
# against 1.01 / 0.97 / 1.00; 32 to 64 and 64 to 32, 18432: 0.90-0.97 /
# 0.94-1.33 / 0.93-1.08 against 0.97-1.02 / 0.99-1.40 / 0.98-1.05; 48 to
# 48, 20736: 0.94 / 1.03 / 1.07 against 0.98 / 1.05 / 1.08. Folded faster:
# 5x5 32 to 32, 25600: 1.32-1.46 / 0.92-1.36 / 0.86-1.38 against 1.10 /
# 0.74 / 0.75; 7x7 16 to 32, 25088: 1.56 / 1.22 / 1.48; (2, 32, 32, 32,
# 32) 3x3x3 to 32 (a 2-D problem of 96 channels), 27648: forward 36 ms
# against 54, MSE 95 against 146, tanh 136 against 109; 64 to 64, 36864:
# 1.21-1.69 / 1.24-1.55 / 1.40-1.80 against 0.79-1.02 / 0.95-1.10 / 0.99-
# 1.36; 96 and 128 to 64, 55296-73728: 1.06-1.79 / 1.47-1.80 / 1.23-1.41.
# The closest below the line: 48 to 64 and 64 to 48, 27648, folded: 0.97-
# 0.98 / 0.66-1.06 / 0.88-1.05, unfolded 0.95-1.01 / 0.74-1.06 / 0.98-1.06.
FOLD_MIN_MACS = 24_000
# A strided width runs on one thread up to wider outputs still (a 7x7
# stride-2 kernel of 3 -> 64 channels over one (224, W) image: W = 896, 1.0
# cores busy; 1344, 1.32; 1792, 1.46). Its forward is folded towards an
# output STRIDED_FOLD_MIN_WIDTH wide while the folded row's multiply-adds
# (output columns times the kernel's elements) reach STRIDED_FOLD_MIN_WORK;
# its input gradient keeps XLA's unfolded transpose (folded, (8, 112, 112,
# 64) 3x3 stride 2 under an MSE: 122 against 92 ms; (16, 56, 56, 32): 20
# against 16). Forward / MSE / tanh value and gradient, ms, unfolded against
# folded (2026-12-06, 2-core AMD EPYC, jax 0.10.2; the machine shared, the
# noise about 10%), 3x3 stride 2 "same" unless said, folded row work in
# millions: (8, 224, 224, 3) 7x7 stem, 8.4: 25.3 / 108.6 / 104.5 against
# 18.2 / 99.5 / 96.9 (a second run 23.3 / 120.0 / 116.6 against 18.0 /
# 111.9 / 107.0); (16, 224, 224, 3) stem, 8.4: 72.4 / 211 / 198 against
# 56.7 / 194 / 188; (8, 112, 112, 64) to 64, 16.5: 27.8 / 112.7 / 122.2
# against 21.0-22.8 / 116.6-116.9 / 111.9-121.0, and 31.2 / 123.3 / 128.0
# against 19.9 / 92.2 / 122.5; (32, 112, 112, 64), 16.5: 158 / 576 / 553
# against 104 / 486 / 465; (8, 56, 56, 128) to 64, 16.5: 11.8 / 37.2 / 39.5
# against 7.8 / 28.7 / 31.8; (16, 56, 56, 32) to 64, 8.3: 6.3 / 22.2 / 21.4
# against 4.6 / 16.0 / 19.0; (8, 64, 64, 64), 9.4: 7.6 / 23.4 / 23.7
# against 4.5 / 17.0 / 22.4; (32, 32, 32, 64), 18.9: 7.3 / 27.2 / 25.9
# against 4.9 / 17.3 / 22.0; (16, 112, 112, 32) to 64, 16.5: 31.8 / 144.8 /
# 124.6 against 30.6 / 122.9 / 112.9; (8, 96, 96, 24) 7x7 to 32, 14.5:
# 14.2 / 42.9 / 42.7 against 8.5 / 36.8 / 36.2; (8, 64, 64, 32) 5x5 valid
# to 48, 9.2: 8.5 / 25.9 / 24.3 against 4.8 / 18.4 / 19.2; (8, 40, 40, 48)
# 5x5 valid to 48, 8.3: 4.2 / 10.5 / 11.0 against 2.4 / 9.6 / 10.2; (8, 96,
# 96, 16) 5x5 stride 3 to 64, 6.5: 5.1 / 18.1 / 19.4 against 3.5 / 15.0 /
# 15.4; 3-D, where the depth taps stacked along the channels make a 2-D
# convolution of this core: Conv3D(32, 3, strides=2) over (2, 32, 64, 64,
# 16): 32.9 / 118.3 / 109.4 against 23.6 / 118.3 / 94.2; Conv3D(64, 3,
# strides=2) over (4, 16, 32, 32, 32): 12.4 / 40.3 / 33.9 against 6.9 /
# 32.7 / 26.3. Below the work threshold folding lost: the stem over (16, 64, 64,
# 3), 4.8: 3.9 / 15.5 / 15.3 against 4.2 / 20.1 / 14.7; over (8, 224,
# 224, 3) folded by 4, 4.2: 23.3 / 120 / 117 against 25.1 / 129 / 120;
# (16, 28, 28, 32) to 32, 2.1: 1.13 forward against 1.41; (4, 16, 16, 128)
# to 64, 2.4: 0.52 against 0.90; (2, 32, 32, 64), 1.2: 0.52 against 0.65;
# sweep draws #52 and #78 (seed 0; 0.5 and 0.3): 0.88x and 0.62x the
# reference path forward.
STRIDED_FOLD_MIN_WIDTH = 896
STRIDED_FOLD_MIN_WORK = 6_000_000

Window = tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...]]


def _forward(
    x: jax.Array, kernel: jax.Array, window: Window, *, fold_strided: bool = True
) -> jax.Array:
    """The forward product. A 1x1 kernel: the strided input times the kernel
    over the channel axis (XLA:CPU runs its convolution on one thread, its
    GEMM on all: 2.4x faster at ``(8, 56, 56, 256)`` to 64 channels, the
    input gradient alike). Otherwise XLA's dense convolution, on examples
    laid side by side where it would run on one core (:func:`fold_count`;
    a strided width only where ``fold_strided``);
    :mod:`~conv1djax.lowering.dispatch` runs a 3-D one as a 2-D one of this
    core, its depth taps stacked along the channels."""
    if all(k == 1 for k in kernel.shape[:-2]):
        x = _pointwise_input(x, window)
        return lax.dot_general(
            x, kernel.reshape(kernel.shape[-2:]), (((x.ndim - 1,), (0,)), ((), ()))
        )
    if _small(x.shape, kernel.shape, window, SMALL_FORWARD_MIN_KERNEL_PER_ROW):
        out = _output_shape(x.shape, kernel.shape[:-2], window)
        matrix = kernel.reshape(-1, kernel.shape[-1])
        return (_patches(x, kernel.shape[:-2], window) @ matrix).reshape(*out, -1)
    fold = fold_count(x.shape[0], x.shape[-2], kernel, window)
    if fold > 1 and (fold_strided or window[0][-1] == 1):
        return _folded(x, kernel, window, fold)
    return _xla_conv(x, kernel, window)


def _pointwise_input(x: jax.Array, window: Window) -> jax.Array:
    """The inputs a 1x1 kernel meets: ``x`` padded, then strided."""
    strides, padding, _ = window
    x = layout.pad_spatial(x, padding)
    return lax.slice(x, (0,) * x.ndim, x.shape, (1, *strides, 1))


def _xla_conv(x: jax.Array, kernel: jax.Array, window: Window) -> jax.Array:
    """XLA's dense channels-last convolution (:mod:`~conv1djax.lowering.xla_conv`)."""
    strides, padding, dilation = window
    return xla_conv.conv(x, kernel, strides=strides, padding=padding, dilation=dilation)


# The space-to-depth input gradient is taken while the taps it pads the
# kernel to (a multiple of the stride per axis) add at most this factor of
# products: a 7x7 kernel of stride 2, (8 / 7)^2 = 1.31, ran 2x faster than
# XLA's transpose; a 3x3 one, (4 / 3)^2 = 1.78, 0.93x at (16, 32, 32, 64).
SPACE_TO_DEPTH_MAX_WASTE = 1.35


def _space_to_depth_pays(kernel: jax.Array, window: Window) -> bool:
    strides = window[0]
    taps = kernel.shape[:-2]
    if max(strides) == 1 or max(taps) == 1:
        return False
    padded = math.prod(-(-k // s) * s for k, s in zip(taps, strides, strict=True))
    return padded <= SPACE_TO_DEPTH_MAX_WASTE * math.prod(taps)


def _strided_forward(x: jax.Array, kernel: jax.Array, window: Window) -> jax.Array:
    """A strided convolution (dilation 1) as the stride-1 convolution of its
    space-to-depth rewrite (:func:`~conv1djax.lowering.rewrites.space_to_depth`),
    whose transpose is the faster input gradient: XLA's transpose of a
    strided convolution dilates the cotangent and runs a slow path (a 7x7
    stride-2 stem over (8, 224, 224, 3): 79 ms against 39 ms)."""
    strides, padding, _ = window
    rank = kernel.ndim - 2
    x, kernel = space_to_depth(x, kernel, strides=strides, padding=padding, groups=1)
    return _forward(x, kernel, ((1,) * rank, ((0, 0),) * rank, (1,) * rank))


def fold_count(examples: int, width: int, kernel: jax.Array, window: Window) -> int:
    """How many examples :func:`_folded` lays side by side: enough for an
    output :data:`FOLD_MIN_WIDTH` wide (:data:`STRIDED_FOLD_MIN_WIDTH` for a
    strided width), a divisor of ``examples``; 1 (no folding) off 2-D, for
    more than :data:`FOLD_MAX_FILTERS` filters, and at stride 1 below
    :data:`FOLD_MIN_MACS` multiply-adds per output position.

    >>> import jax.numpy as jnp
    >>> same = ((1, 1), ((1, 1), (1, 1)), (1, 1))
    >>> kernel = jnp.zeros((3, 3, 64, 64))
    >>> fold_count(32, 56, kernel, same), fold_count(8, 32, kernel, same)
    (2, 4)
    >>> fold_count(8, 32, jnp.zeros((3, 3, 32, 32)), same)
    1
    """
    strides = window[0]
    if kernel.ndim != 4 or kernel.shape[-1] > FOLD_MAX_FILTERS:
        return 1
    if strides[-1] == 1 and math.prod(kernel.shape) < FOLD_MIN_MACS:
        return 1
    least = FOLD_MIN_WIDTH if strides[-1] == 1 else STRIDED_FOLD_MIN_WIDTH
    out = _output_width(width, kernel, window)
    want = -(-least // max(out, 1))
    fold = max(g for g in range(1, min(want, examples) + 1) if examples % g == 0)
    row_work = fold * out * math.prod(kernel.shape)
    if strides[-1] > 1 and row_work < STRIDED_FOLD_MIN_WORK:
        return 1
    return fold


def _output_width(width: int, kernel: jax.Array, window: Window) -> int:
    """The output's width, of an input ``width`` wide (a 2-D kernel)."""
    strides, padding, dilation = window
    last_axis = (strides[-1:], padding[-1:], dilation[-1:])
    return _output_shape((1, width, 1), kernel.shape[1:2], last_axis)[1]


def _folded(x: jax.Array, kernel: jax.Array, window: Window, fold: int) -> jax.Array:
    """A 2-D convolution of groups of ``fold`` examples laid side by side
    along the width, each with its own padding (rounded up to a multiple of
    the width's stride): one convolution of ``fold`` times the width, whose
    outputs that straddle two examples are dropped."""
    strides, padding, dilation = window
    n, height, width, c = x.shape
    f = kernel.shape[-1]
    stride = strides[1]
    extent = (kernel.shape[1] - 1) * dilation[1] + 1
    lo, hi = padding[1]
    hi += -(width + lo + hi) % stride
    x = layout.pad_spatial(x, ((0, 0), (lo, hi)))
    padded = x.shape[2]
    x = jnp.swapaxes(x.reshape(n // fold, fold, height, padded, c), 1, 2)
    y = _xla_conv(
        x.reshape(n // fold, height, fold * padded, c),
        kernel,
        (strides, (padding[0], (0, extent - 1)), dilation),
    )
    rows, columns = y.shape[1], padded // stride
    out = _output_width(width, kernel, window)
    y = y.reshape(n // fold, rows, fold, columns, f)[:, :, :, :out]
    return jnp.swapaxes(y, 1, 2).reshape(n, rows, out, f)


def _output_shape(
    shape: tuple[int, ...], taps: tuple[int, ...], window: Window
) -> tuple[int, ...]:
    """``(N, *out)``, the output's shape without its filters."""
    strides, padding, dilation = window
    return (
        shape[0],
        *layout.output_steps(shape[1:-1], taps, padding, dilation, strides),
    )


def _small(
    shape: tuple[int, ...], kernel: tuple[int, ...], window: Window, per_row: int
) -> bool:
    """Whether the im2col GEMMs run a convolution of input ``shape`` whose
    kernel, of shape ``(*taps, C, F)``, has at least ``per_row`` elements per
    output position in all, and at least :data:`SMALL_MIN_CHANNELS` channels
    and filters."""
    rows = math.prod(_output_shape(shape, kernel[:-2], window))
    wide = min(kernel[-2:]) >= SMALL_MIN_CHANNELS
    return wide and math.prod(kernel) >= per_row * rows


def _patches(x: jax.Array, taps: tuple[int, ...], window: Window) -> jax.Array:
    """The im2col of channels-last ``x``: ``(N * positions, prod(taps) *
    C)``, a row per output position, its columns ordered as the kernel's
    ``(*taps, C)`` elements."""
    strides, padding, dilation = window
    x = layout.pad_spatial(x, padding)
    n, *_, c = x.shape
    out = _output_shape(x.shape, taps, (strides, ((0, 0),) * len(taps), dilation))
    windows = [
        lax.slice(
            x,
            (0, *(i * d for i, d in zip(offset, dilation, strict=True)), 0),
            (
                n,
                *(
                    i * d + (o - 1) * s + 1
                    for i, d, o, s in zip(
                        offset, dilation, out[1:], strides, strict=True
                    )
                ),
                c,
            ),
            (1, *strides, 1),
        )  # fmt: skip
        for offset in itertools.product(*(range(k) for k in taps))
    ]
    return jnp.concatenate(windows, axis=-1).reshape(-1, len(windows) * c)


def _col2im(
    columns: jax.Array, shape: tuple[int, ...], taps: tuple[int, ...], window: Window
) -> jax.Array:
    """The transpose of :func:`_patches`: each column block added back where
    its window read the input ``shape``."""
    strides, padding, dilation = window
    n, *spatial, c = shape
    padded = [size + lo + hi for size, (lo, hi) in zip(spatial, padding, strict=True)]
    out = _output_shape(shape, taps, window)
    offsets = list(itertools.product(*(range(k) for k in taps)))
    columns = columns.reshape(*out, len(offsets), c)
    zero = jnp.zeros((), columns.dtype)
    total: jax.Array | None = None
    for t, offset in enumerate(offsets):
        config = [(0, 0, 0)]
        for i, d, o, s, size in zip(offset, dilation, out[1:], strides, padded,
                                    strict=True):  # fmt: skip
            config.append((i * d, size - i * d - (o - 1) * s - 1, s - 1))
        term = lax.pad(columns[..., t, :], zero, (*config, (0, 0, 0)))
        total = term if total is None else total + term
    assert total is not None  # at least one kernel position
    return layout.pad_spatial(total, tuple((-lo, -hi) for lo, hi in padding))


def _small_input_grad(
    gy: jax.Array, kernel: jax.Array, shape: tuple[int, ...], window: Window
) -> jax.Array:
    """The input cotangent as the output's times the kernel as stored, then
    :func:`_col2im`."""
    f = kernel.shape[-1]
    columns = lax.dot_general(
        gy.reshape(-1, f), kernel.reshape(-1, f), (((1,), (1,)), ((), ()))
    )
    return _col2im(columns, shape, kernel.shape[:-2], window)


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


def _xla_kernel_grad(
    x: jax.Array, gy: jax.Array, taps: tuple[int, ...], window: Window
) -> jax.Array:
    """XLA's kernel gradient: the transpose of its (unfolded) convolution."""
    forward = functools.partial(_xla_conv, x, window=window)
    kernel = jax.ShapeDtypeStruct((*taps, x.shape[-1], gy.shape[-1]), x.dtype)
    return jax.linear_transpose(forward, kernel)(gy)[0]


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
      ``x``'s dtype); the caller casts. XLA's own where the GEMMs do not
      pay (:data:`GEMM_MAX_CHANNELS`, :data:`GEMM_MIN_ROWS`,
      :data:`GEMM_MIN_CHANNELS`, :data:`EXAMPLE_MAX_BYTES`).
    """
    strides, padding, dilation = window
    n, *_, c = x.shape
    out = gy.shape[1:-1]
    f = gy.shape[-1]
    positions = math.prod(out)
    offsets = list(itertools.product(*(range(k) for k in taps)))
    wide = at_least_float32(x.dtype)
    if len(offsets) == 1:
        # A 1x1 kernel: one product contracting the examples and positions,
        # which XLA runs as it is laid out (the blocked transposes below
        # took 33 ms against 14 ms at (8, 56, 56, 256) to 64 channels).
        x = _pointwise_input(x, window)
        batch_and_positions = tuple(range(x.ndim - 1))
        grad = lax.dot_general(
            x,
            gy,
            ((batch_and_positions, batch_and_positions), ((), ())),
            preferred_element_type=wide,
        )
        return grad.reshape(*taps, c, f)
    example_bytes = len(offsets) * c * positions * x.dtype.itemsize
    few_taps = len(offsets) <= FEW_TAPS_MAX_POSITIONS and f >= FEW_TAPS_MIN_FILTERS
    strided = max(strides) > 1
    per_row = (
        SMALL_MIN_KERNEL_PER_ROW if len(taps) > 1 else SMALL_1D_KERNEL_GRAD_MIN_PER_ROW
    )
    small = _small(x.shape, (*taps, c, f), window, per_row)
    if not small and (
        example_bytes > EXAMPLE_MAX_BYTES
        or c > GEMM_MAX_CHANNELS
        or (n * positions < GEMM_MIN_ROWS and not few_taps)
        or (c < GEMM_MIN_CHANNELS and not strided and not few_taps)
    ):
        return _xla_kernel_grad(x, gy, taps, window)
    block = block_size(n, example_bytes)
    blocks = n // block
    # (blocks, C, block, *padded): channels-first, padded once.
    x = layout.pad_spatial(x, padding)
    xt = jnp.moveaxis(x.reshape(blocks, block, *x.shape[1:]), -1, 1)
    gy = gy.reshape(blocks, block * positions, f)

    def columns(xb: jax.Array) -> jax.Array:
        """The block's transposed im2col, ``(taps * C, block * positions)``,
        its rows in reversed tap order (the last axis's tap outermost).

        Built one spatial axis at a time, the windows of all the taps so far
        stacked along a leading axis: ``sum(taps)`` strided slices rather
        than one per kernel position, which XLA:CPU compiled into one
        fusion each. 2026-12-06, 2-core AMD EPYC, jax 0.10.2, value and
        gradient of an MSE, compile s (trace + XLA) and fusions, then ms
        fwd+bwd MSE / tanh, one slice per position against by axis: the 7x7
        stride-2 stem over (8, 224, 224, 3) 1.07 s, 61 fusions against
        0.61 s, 15; 96-98 / 93-95 ms against 90-93 / 85-87; Conv2D(48, 5)
        over (16, 64, 64, 32) 0.65 s, 38 against 0.54 s, 16; 142 / 139
        against 115 / 112 ms; Conv2D(32, 3, dilation_rate=2) over (16, 48,
        48, 32) 0.55 against 0.52 s; 31.9 / 31.7 against 28.4 / 28.0 ms;
        the (32, 56, 56, 64) 3x3 ResNet stage 0.70 against 0.67 s; 200 /
        197 against 180 / 181 ms.
        """
        cols = xb[None]
        spec = zip(taps, dilation, out, strides, strict=True)
        for axis, (k, d, o, st) in enumerate(spec):
            cols = jnp.concatenate(
                [
                    lax.slice_in_dim(
                        cols, i * d, i * d + (o - 1) * st + 1, st, axis=3 + axis
                    )  # fmt: skip
                    for i in range(k)
                ],
                axis=0,
            )
        return cols.reshape(len(offsets) * c, -1)

    # Rematerialised: linearising the custom JVP's tangent (reverse mode)
    # would otherwise save every block's im2col matrix for the transposed
    # loop, all of them at once.
    @functools.partial(jax.checkpoint, prevent_cse=False)
    def one_block(acc: jax.Array, xs: tuple[jax.Array, jax.Array]) -> Any:
        xb, gb = xs
        return acc + jnp.matmul(columns(xb), gb, preferred_element_type=wide), None

    # The loop over blocks costs compile time (a Conv2DTranspose(32, 4,
    # strides=2) over (8, 32, 32, 32), 2 blocks: 0.86 s against 0.54 s in
    # one block), but every alternative measured lost run time (2026-12-06,
    # 2-core AMD EPYC, jax 0.10.2, fwd+bwd MSE / tanh ms): the blocks
    # unrolled, 7.8 / 8.1 against 8.1 / 8.6 there, the stem's 8 blocks 0.95
    # s to compile against 0.64; each block moved to channels-first inside
    # the loop (compiles in 0.63 s against 0.91 s there), the ResNet stage
    # 190 / 188 against 198 / 197, the stem 99 / 102 against 106 / 105; a
    # fori_loop over a channels-first copy, no faster to compile, the ResNet
    # stage 203 / 198 against 212 / 225.
    init = jnp.zeros((len(offsets) * c, f), wide)
    if blocks == 1:
        total, _ = one_block(init, (xt[0], gy[0]))
    else:
        total, _ = lax.scan(one_block, init, (xt, gy))
    rank = len(taps)
    reversed_taps = total.reshape(*taps[::-1], c, f)
    return jnp.transpose(reversed_taps, (*reversed(range(rank)), rank, rank + 1))


def _input_grad(
    gy: jax.Array, x: jax.Array, kernel: jax.Array, window: Window
) -> jax.Array:
    """The input's cotangent. XLA's own: a convolution of gy with the flipped
    kernel (a matrix product for a 1x1 kernel); of a strided convolution,
    the transpose of its space-to-depth form (_strided_forward); GEMMs where
    the kernel outweighs the positions (SMALL_MIN_KERNEL_PER_ROW). A strided
    width is not folded here (STRIDED_FOLD_MIN_WIDTH)."""
    pointwise = all(k == 1 for k in kernel.shape[:-2])
    if not pointwise and _small(
        x.shape, kernel.shape, window, SMALL_MIN_KERNEL_PER_ROW
    ):
        return _small_input_grad(gy, kernel, x.shape, window)
    if _space_to_depth_pays(kernel, window):
        forward = functools.partial(_strided_forward, kernel=kernel, window=window)
    else:
        forward = functools.partial(_forward, kernel=kernel, window=window,
                                    fold_strided=False)  # fmt: skip
    x_struct = jax.ShapeDtypeStruct(x.shape, x.dtype)
    return jax.linear_transpose(forward, x_struct)(gy)[0]


_conv = adjoint.custom_conv(
    _forward,
    _input_grad,
    lambda gy, x, kernel, window: kernel_grad(x, gy, kernel.shape[:-2], window),
)


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
