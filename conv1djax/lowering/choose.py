"""The decision rule of ``impl="auto"``: which lowering runs, from static
facts only (shapes, dtype, platform), and the thresholds it was measured with.

Thresholds were measured with ``benchmarks/bench.py`` and
``benchmarks/thresholds.py`` on a 2-core AMD EPYC (Zen 5, AVX-512) with jax
0.10.2, on 1-D problems; ``benchmarks/README.md`` has the sweeps. A 2-D or
3-D problem is counted in the same units (taps of all axes, input channels
per group), which the 2-D and 3-D rows of the benchmark check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from jax.typing import DTypeLike

from conv1djax.lowering.im2col import SMALL_MIN_CHANNELS

CORES = ("direct", "im2col", "eigen", "blockdiag", "split", "shift", "fft", "ncw")
IMPLS = ("auto", "reference", *CORES)
# The cores written for one spatial axis only.
ONE_D_CORES = ("fft", "ncw")

# FFT from this many taps (of the stride-1 problem) on. At 16 and 64
# channels the forward passes break even between 32 and 48 taps and the FFT
# is 1.7x-2.2x faster at 96; forward + backward it is ahead from 24-48 taps
# (1.35x at 48, 2.4x-2.6x at 96).
FFT_MIN_TAPS = 64
# A dense convolution whose channels (times the stride: space-to-depth) and
# filters are both at least FFT_DENSE_MIN_CHANNELS takes it from
# FFT_DENSE_MIN_TAPS taps: an FFT's cost grows with channels plus filters,
# the direct one's with their product. Forward / value and gradient of sum(y^2) / of an MSE, ms, XLA's
# convolution ("direct") against "fft" (2026-12-07, 2-core AMD EPYC, jax
# 0.10.2, "same", (N, steps, C) to F): (16, 1024, 64) to 64, 12 taps 9.1 /
# 28.5 / 28.7 against 9.6 / 22.9 / 23.0; 16 taps 12.4-12.6 / 37-42 / 37
# against 10.3-11.3 / 24-33 / 24-25; 24 taps 17.5 / 53 / 54 against 10.2 /
# 26 / 27; 48 taps 35 / 104 / 106 against 14 / 35 / 35; the same over (128,
# 128, 64): 16 taps 12.6 / 44 / 44 against 16.4 / 37 / 39, 24 taps 17.7 /
# 54 / 54 against 12.3 / 33 / 29; (8, 1024, 128) to 128, 8 taps 10.5 / 34
# / 33 against 12.6 / 33 / 32, 12 taps 15.6 / 53 / 48 against 12.7 / 37 /
# 38; (4, 1024, 256) to 256, 12 taps 31 / 96 / 96 against 25 / 64 / 63.
# Fewer channels lost forward: (16, 1024, 32) to 32, 24 taps 4.5 against
# 5.4, 32 taps 6.2 against 9.6; (16, 1024, 32) to 128, 16 taps 10.7 against
# 12.1 (then won, 24 taps: 15.8 against 13.4); 16 to 16 won from 48 taps.
FFT_DENSE_MIN_TAPS = 24
FFT_DENSE_MIN_CHANNELS = 64
# Below those, from FFT_DERIVATIVES_MIN_TAPS taps on, a 1-D convolution of
# at least FFT_DERIVATIVES_MIN_PRODUCTS channel pairs per group (channels
# times filters) keeps its core's forward and takes the "fft" core's
# derivatives (fft_derivatives): at these lengths the FFT's gradients beat
# every other core's, its forward not always. Value and gradient of
# sum(y^2) / of an MSE, ms, the core's own against the FFT's derivatives
# (2026-12-07, 2-core AMD EPYC, jax 0.10.2; 32 taps unless said): Conv1D(16,
# groups=1) over (8, 2048, 16), "direct": 7.1 / 7.0 against 6.5 / 6.3;
# Conv1D(32) over (16, 1024, 32) 18.3 / 18.4 against 17.2 / 15.7; 32 to 128
# 69 / 67 against 51 / 52; Conv1D(64, groups=8) over (16, 1024, 64),
# "split": 29 / 31 against 24 / 26 (48 taps 44 / 45 against 31 / 36);
# Conv1D(160, groups=16) over (4, 3199, 16), "shift": 67 / 55 against 34 /
# 24; Conv1DTranspose(80, groups=8) over (10, 75, 8) 3.3 / 3.2 against 1.9
# / 1.5; DepthwiseConv1D(depth_multiplier=4) over (8, 1024, 32) 25 / 19
# against 16 / 9.7. At 24 taps the last lost (7.3 / 6.7 against 12.4 /
# 7.9) and the grouped one of 8 was mixed (23 / 24 against 22 / 26); a
# depthwise kernel of one filter per channel run by "shift" lost at 32 and
# 48 taps (7.5 / 7.4 and 11.4 / 9.8 against 11.9 / 12.1 and 14.1 / 15.7).
# In benchmarks/sweep.py's draws of 34 to 58 taps (2026-12-07) the gradient
# contexts went from 1.0x-18x the reference path to 2.0x-32x, the forward
# unchanged.
FFT_DERIVATIVES_MIN_TAPS = 32
FFT_DERIVATIVES_MIN_PRODUCTS = 4
# A 1-D problem for the block-diagonal core below, which multiplies by the
# zeros of its kernel too, runs the FFT from FFT_BLOCKDIAG_MIN_TAPS taps,
# from FFT_DEPTHWISE_MIN_TAPS with one channel per group. Forward / value and
# gradient of sum(y^2) / of an MSE, ms, block-diagonal (with the FFT's
# derivatives from 32 taps) against the FFT (2026-12-07, 2-core AMD EPYC,
# jax 0.10.2, "same"): a depthwise kernel over (16, 1024, 5), 16 taps 1.09 /
# 2.64 / 2.55 against 0.52 / 1.07 / 1.17, 48 taps 1.44 / 2.56 / 2.65 against
# 0.49 / 1.11 / 1.31; over (8, 256, 3), 16 taps 0.10 / 0.42 / 0.37 against
# 0.08 / 0.19 / 0.19; Conv1D(8, groups=4) over (16, 1024, 8), 48 taps 2.00 /
# 4.92 / 4.79 against 1.30 / 3.73 / 3.86 (32 taps: 1.26 / 3.81 / 3.57
# against 1.56 / 2.89 / 3.67); groups=2 over (8, 2048, 8), 48 taps 1.90 /
# 4.07 / 3.70 against 1.22 / 2.60 / 2.84 (32 taps: forward 1.22 against
# 1.38); Conv1DTranspose(8, groups=4) over (8, 512, 8), 48 taps 0.52 / 1.08
# / 1.10 against 0.38 / 0.92 / 0.88 (32 taps: forward 0.34 against 0.37).
FFT_BLOCKDIAG_MIN_TAPS = 48
FFT_DEPTHWISE_MIN_TAPS = 16
# Shift-and-add from this many groups, while taps * (input channels per
# group) stays at most SHIFT_MAX_TERMS: it does that many multiply-adds per
# output element in one fused loop, and the program grows with it. At 64
# channels, 3 taps: 8 groups (24 terms) 1.7x faster than block-diagonal
# forward, 1.2x forward + backward; 4 groups (48 terms) 1.4x slower forward +
# backward. At 256 channels, 16 groups (48 terms): 1.2x faster.
SHIFT_MIN_GROUPS = 8
SHIFT_MAX_TERMS = 64
# ... and while its multiply-adds per output position and group, terms times
# the filters per group (times the phases, for a polyphase transposed
# convolution), stay at most SHIFT_MAX_WORK: each term is broadcast over the
# group's filters, and the fused loop does not vectorise over them as XLA's
# convolution does (benchmarks/results/sweep.md, 2026-12-02). Up to 340 (16
# groups, 34 taps, 10 filters each) it won in every context; at 500 (a
# transposed convolution of 8 groups, 50 taps, 10 filters each) it was 3x
# faster forward but 0.73x the reference path in a train step; at 1026 (8
# groups of 1 channel to 19, 7 x 4 taps, strides 3) 4.2x slower forward.
SHIFT_MAX_WORK = 384
# ... unless a short problem (FFT_SHORT_MAX_OUTPUTS, below) has at least
# FFT_SHIFT_MIN_TAPS taps and FFT_SHIFT_MIN_FILTERS filters per group: then
# the FFT. Forward / value and gradient of an MSE / the kernel's gradient
# alone, shift (with the FFT's derivatives) over FFT (2026-12-07, 2-core AMD
# EPYC, jax 0.10.2, "same" unless said; 32 / 40 taps): Conv1D(160,
# groups=16) over (4, 300, 16) 1.11x / 1.14x / 2.59x and 1.26x / 1.08x /
# 1.40x, over (16, 64, 16) 1.53x / 1.19x / 2.63x and 2.89x / 2.04x / 2.26x;
# Conv1D(48, groups=8) over (8, 500, 8) 1.42x / 1.37x / 2.69x and 1.98x /
# 1.25x / 2.99x; Conv1DTranspose(80, groups=8), "valid", over (8, 100, 8)
# 1.36x / 1.28x / 1.89x and 3.30x / 1.97x / 1.97x, over (10, 75, 8)
# forward 1.4x and 1.9x. With 4 filters per group the shift core's forward
# won: Conv1D(64, groups=16) over (8, 400, 16) 0.69x / 0.89x / 2.36x and
# 1.07x / 1.00x / 3.10x; DepthwiseConv1D(depth_multiplier=4) over (8, 200,
# 32) 0.46x / 0.77x / 1.64x and 0.65x / 0.84x / 2.14x.
FFT_SHIFT_MIN_TAPS = 32
FFT_SHIFT_MIN_FILTERS = 6
# Otherwise a block-diagonal dense kernel, for at most this many groups of
# fewer than SPLIT_MIN_IN_PER_GROUP channels, while its multiply-adds per
# output position, taps times channels times filters per group (times the
# phases), stay at most BLOCKDIAG_MAX_WORK: it does ``groups`` times the
# useful products at dense speed, which pays where a group's channels are too
# few for a dense convolution of their own. In the sweep it beat the split
# below at 1 or 2 channels per group (forward up to 3.5x, forward + backward
# up to 2x) and lost at 10 or more; at 4000 and 4256 (8 groups, 28 and 50
# taps, 10 and 19 filters each) it was 0.90x the reference path forward, or
# its kernel gradient 4x slower.
BLOCKDIAG_MAX_GROUPS = 8
SPLIT_MIN_IN_PER_GROUP = 8
BLOCKDIAG_MAX_WORK = 2048
# Otherwise, up to this many groups, one dense convolution per group
# (lowering.split), while each has at least SPLIT_MIN_PRODUCTS channel pairs
# (channels times filters per group; fewer leave a dense convolution little
# to do): in the sweep 1.1x-170x faster than XLA's grouped convolution
# forward + backward at 2 to 16 groups, 0.96x-4.7x forward.
SPLIT_MAX_GROUPS = 16
SPLIT_MIN_PRODUCTS = 8
# ... except that a stride-1 1-D problem of at least FFT_SPLIT_MIN_TAPS taps
# and at most FFT_SHORT_MAX_OUTPUTS outputs (examples times input steps times
# filters) runs the FFT: at so few outputs XLA's per-group convolutions
# spend more on their set-up than the FFT does in all. Forward, split
# against FFT (2026-12-07, 2-core AMD EPYC, jax 0.10.2, "same" unless said;
# outputs; ms): Conv1DTranspose(80, 50, groups=8), "valid", over (10, 75,
# 8) (6e4) 2.6 against 0.60, the same over (4, 600, 8) (2e5) 1.43 against
# 0.87, (4, 1200, 8) (3.8e5) 1.9 against 0.93 (left to the split: other
# families stop winning below that), (4, 3199, 8) (1e6) 5.4 against 7.8;
# 48 / 56 taps: Conv1D(64, groups=8) over (4, 1024, 64) (2.6e5) 4.5 /
# 5.6 against 3.2 / 3.5, Conv1D(32, groups=4) over (8, 512, 32) 2.0 / 2.3
# against 1.5 / 1.6, Conv1D(128, groups=16) over (2, 1024, 128) 4.5 / 4.9
# against 3.1 / 3.2, Conv1D(64, groups=8) over (16, 128, 64) 3.8 / 2.6
# against 2.4 / 2.7, Conv1DTranspose(64, groups=8) over (8, 256, 32) 1.6 /
# 2.3 against 1.2 / 1.7. Past the line: Conv1D(48, groups=3) over (4, 2000,
# 24) (3.8e5) 3.6 / 3.8 against 3.6 / 3.2, Conv1D(160, groups=16) over (2,
# 1500, 32) (4.8e5) 2.5 / 3.2 against 5.0 / 4.0; at 32 taps Conv1D(64,
# groups=8) over (8, 512, 32) (2.6e5) 2.4 against 2.8. Value and gradient
# of an MSE, the split with the FFT's derivatives (above) against the FFT,
# 48 / 56 taps, same shapes and order: 1.7 / 2.3 against 0.8 / 1.0, 2.4 /
# 2.9 against 2.3 / 2.3, 9.7 / 11.4 against 6.5 / 7.0, 5.4 / 5.2 against
# 4.4 / 3.5, 18.0 / 15.4 against 6.5 / 6.7, 5.6 / 7.8 against 4.3 / 6.2,
# 3.9 / 5.6 against 3.2 / 4.1 (a second run of the forwards: 0.93x-4.9x).
# At 40 taps, forward / MSE / the kernel's gradient alone, split over FFT:
# Conv1D(64, groups=8) over (4, 1024, 64) 1.28x / 1.32x / 1.32x, Conv1D(32,
# groups=4) over (8, 512, 32) 1.28x / 1.24x / 1.29x, Conv1D(128, groups=16)
# over (2, 1024, 128) 1.20x / 2.40x / 1.40x, Conv1D(64, groups=8) over
# (16, 128, 64) 1.27x / 1.23x / 1.17x, Conv1DTranspose(64, groups=8) over
# (8, 256, 32) 1.03x / 1.06x / 1.15x, Conv1DTranspose(80, groups=8),
# "valid", over (8, 100, 8) 2.00x / 2.06x / 1.81x (sweep-style against the
# reference path its forward read 0.85x on the split) and over (10, 75, 8)
# forward 3.8x. At 32 taps the forward was mixed: 0.67x-1.11x (the
# transposed one 0.67x, (16, 128, 64) 0.93x).
FFT_SPLIT_MIN_TAPS = 40
FFT_SHORT_MAX_OUTPUTS = 2**18
# Measured against the split and rejected (2026-12-06, 2-core AMD EPYC, jax
# 0.10.2, forward alone unless said, ms, split / shift first): at 4 groups
# of 16 -> 16, 3x3, over (8, 32, 32, 64) the split's Eigen convolutions
# (XLA:CPU gives YNNPACK a 2-D one only past 16 channels) ran 2.1-2.6 on
# 1.6 cores. A group's filters padded to 17 for YNNPACK: 3.0-3.3 (one
# thread, also with 4 or 8 examples side by side along the width);
# lax's grouped convolution 7.6-8.4 (forward + backward 226 against 6.9);
# block-diagonal 6.5; the width taps stacked along the channels, per group
# 5.0 or grouped 8.8; per-group im2col GEMMs 6.6, channels-first 7.4, by
# blocks of 2 examples 3.6; one einsum over the groups 24. The split's
# kernel gradient (3.1) against per-group im2col GEMMs 4.9-6.2, a
# block-diagonal one 6.8, lowering.im2col's blocked GEMMs as the split's
# dense core 9.4 against 6.5 forward + backward (MSE). At 8 groups of
# 8 -> 8, 3 taps, over (16, 1024, 64), "shift" 1.1 against the 1-D
# problem as a 2-D one of height 1 for YNNPACK 6.4 (either axis), lax's
# 1-D grouped convolution 4.7, per-tap einsums over the groups 4.9, the
# shift-and-add in channels-first order 1.1 without its transposes (1.8
# with).
# A dense convolution of 2 or 3 spatial axes, or with a 1x1 kernel, runs
# the "im2col" core (lowering.im2col): XLA's forward and input gradient (a
# 1x1 kernel's as GEMMs, 2.4x faster than XLA's one-thread convolution;
# narrow 2-D ones of enough multiply-adds on examples laid side by side,
# and a strided 2-D forward of enough work per row: the 7x7 stride-2 stem
# over (8, 224, 224, 3) 25 -> 18 ms; measurements at
# lowering.im2col.FOLD_MIN_MACS and STRIDED_FOLD_MIN_WORK), the kernel
# gradient as blocked im2col GEMMs where lowering.im2col's own thresholds
# say they pay, 1.3x-2.1x faster than XLA's there (measured 2026-12-06,
# 2-core AMD EPYC, jax 0.10.2: (32, 56, 56, 64) 3x3, 105-130 ms against
# 160-210 ms). A 1-D one with more taps keeps "direct":
# XLA:CPU's 1-D convolution and its kernel gradient run on every core
# (kernel gradient 5.0 ms, the GEMMs 6.9 ms at (16, 1024, 64), k=3).
# A dense, stride-1, float32 2-D convolution (a 3-D one's depth taps
# stacked along the channels: its 2-D problem) of more than one tap runs the
# "eigen" core (lowering.eigen: XLA:CPU's Eigen convolution, shaped so that
# YNNPACK declines it) from EIGEN_MIN_CHANNELS channels, where its wider
# side, channels or filters, is within EIGEN_CHANNELS and it has at least EIGEN_MIN_POSITIONS input positions
# (examples times steps), or within EIGEN_CHANNELS_FEW_POSITIONS from
# EIGEN_MIN_POSITIONS_FEW. YNNPACK takes only more than 16 channels or
# filters; below, XLA's convolution is Eigen's already. "im2col" over
# "eigen", forward / value and gradient of an MSE / of mean(tanh(y)) / the
# kernel's gradient alone (input as data), 3x3 "same", C -> C unless said,
# (N, S, S, C) (2026-12-07, 2-core AMD EPYC, jax 0.10.2, one run each; the
# machine's spread is about 15%): 16384 positions and more: C = 32 (16, 32)
# 1.46x / 0.94x / 1.29x / 1.29x, (32, 32) 1.46x / 1.15x / 1.29x / 1.20x; C
# = 48 (16, 32) 1.70x / 1.35x / 1.41x / 1.66x, (32, 32) 1.83x / 1.82x /
# 1.60x / 1.48x; C = 64 (16, 32) 0.99x / 1.17x / 1.19x / 1.20x, (32, 32)
# 0.99x / 1.31x / 1.27x / 1.09x, (32, 56) 1.34x / 1.11x / 1.10x / 1.05x; C
# = 96 (16, 32) 1.35x / 1.32x / 1.39x / 1.46x, (32, 32) 1.35x / 1.30x /
# 1.28x / 1.27x; C = 128 (16, 32) 1.06x / 0.95x / 1.02x / 1.10x, (32, 32)
# 1.00x / 1.06x / 1.11x / 1.12x; 96 -> 32 (16, 32) 1.28x / 1.41x / 1.38x /
# 1.26x, (32, 32) 1.13x / 1.31x / 1.27x / 1.05x; 5x5, C = 64 (16, 32)
# 1.07x / 1.13x / 1.23x / 1.30x, C = 32 1.00x / 1.15x / 1.13x / 1.18x; the
# 3-D row's (64, 32, 32, 96) -> 32 1.46x / 1.20x / 1.20x / 1.12x. 8192
# positions: C = 64 (8, 32) 0.98x-1.03x / 1.13x-1.16x / 1.18x-1.23x /
# 1.19x-1.26x; C = 32 1.63x / 0.99x / 0.90x / 0.86x and C = 128 1.04x /
# 0.94x / 0.96x / 1.15x (left out); 4096: C = 64 (16, 16) 1.51x / 1.16x /
# 1.27x / 1.11x but (4, 32) 1.07x / 0.93x / 0.89x / 0.86x; 2048: (8, 16)
# lost at C = 32, 48, 64 and 128 (0.76x-0.96x in the gradients). Fewer
# positions and more channels lost too: (16, 16, 16, 128) 0.93x / 0.91x /
# 0.95x, (16, 8, 8, 256) 0.87x-0.98x, (16, 4, 4, 512) 0.71x-0.87x, where
# the small-image GEMMs run. A strided one (space-to-depth) was not
# measured to pay: the ResNet-style train step with its strided layers on
# this core too took 458 against 402 ms.
# Fewer input channels than EIGEN_MIN_CHANNELS lost, Eigen's input gradient
# worst: (8, 64, 64, C) to 64, C = 3 0.86x / 0.59x / 0.84x / 1.41x (sweep
# #103, against the reference path: 0.77x-0.81x), C = 8 1.19x / 0.84x /
# 1.17x / 1.59x; C = 16 1.25x / 1.28x / 1.39x / 1.46x, C = 32 1.60x / 1.58x
# / 1.54x / 1.42x; 64 -> 16 1.26x / 1.29x / 1.27x / 1.15x.
EIGEN_MIN_CHANNELS = 16
EIGEN_CHANNELS = (17, 128)
EIGEN_MIN_POSITIONS = 16384
EIGEN_CHANNELS_FEW_POSITIONS = (48, 96)
EIGEN_MIN_POSITIONS_FEW = 8192
# A 1-D 1x1 kernel over fewer channels than this keeps "direct": a matrix
# product of so few terms lost to XLA's convolution (sweep #75, 2026-12-06:
# 1 channel to 86, bfloat16, 0.87x-0.90x the reference path's gradients).
IM2COL_MIN_CHANNELS = 8
# A dense, forward 1-D convolution of at least IM2COL_1D_MIN_CHANNELS
# channels and filters (the core's own SMALL_MIN_CHANNELS: fewer, and its
# GEMMs would not run) whose kernel has at least IM2COL_1D_MIN_KERNEL_PER_ROW
# elements per output position (positions estimated as the input's over the
# stride) runs the "im2col" core too, whose input gradient is then a GEMM
# and col2im (lowering.im2col.SMALL_MIN_KERNEL_PER_ROW): XLA's own
# transposes the kernel for its flipped convolution. Forward / value and
# gradient of an MSE / of mean(tanh(y)) / the kernel's gradient alone
# (input as data), "direct" over "im2col" (2026-12-07, 2-core AMD EPYC, jax
# 0.10.2, "same", two runs where two are given): Conv1D(1024, 3) over (4,
# 16, 1024) (49152 elements per position) 1.04x / 2.73x / 3.05x / 2.30x;
# Conv1D(512, 3) over (8, 16, 512) (6144) 1.00x-1.03x / 1.37x-1.43x /
# 1.31x-1.55x / 0.99x-1.02x; strides=2 over (8, 32, 512) (6144) 1.05x /
# 1.65x / 1.53x / 1.06x. Below the line the kernel gradient alone lost:
# Conv1D(256, 5) over (16, 8, 256) (2560) 0.99x-1.00x / 1.23x-1.24x /
# 1.13x-1.20x / 0.92x-0.95x; Conv1D(256, 7) over (8, 32, 256) (1792) 1.01x
# / 1.11x / 1.11x / 0.94x. A transposed one, Conv1DTranspose(128, 16,
# strides=8) over (4, 32, 256) (its phases: 3970), tied: 0.97x / 1.07x /
# 1.02x / 0.95x.
IM2COL_1D_MIN_CHANNELS = SMALL_MIN_CHANNELS
IM2COL_1D_MIN_KERNEL_PER_ROW = 4096
# "auto" no longer picks the "ncw" core (impl="ncw" forces it): at 64
# channels under an MSE loss its forward + backward is 1.6x faster than
# XLA's channels-first path at 3 taps, 1.2x at 5, 2.3x slower at 9; under a
# loss XLA folds into its convolution's transposes (the sum of the output's
# squares) XLA's path was 1.2x faster at 3 taps and 1.5x at 5. A lowering
# must win under every loss (benchmarks/sweep.py).
NCW_MAX_TAPS = 3
# A stream's one-step chunk (conv1djax.streaming) runs a convolution once per
# example on a window of its kernel's taps: shift-and-add while the
# multiply-adds of the whole step (examples times kernel elements) stay at
# most STEP_SHIFT_MAX_WORK; XLA's convolution of so few outputs does not
# amortise its set-up. Measured 2026-12-02 (2-core Intel Xeon, jax 0.10.2)
# inside a lax.scan of 500 steps, per step: a dense Conv1D(32, 2) on 1
# example (2048) 0.32 us against 0.93 us, (32, 5) (5120) 0.75 against 1.5,
# 8 examples of (8, 5) (2560) 0.36 against 1.05; above it the shift core
# lost: 8 examples of (32, 2) (16384) 1.59 against 1.45, 1 of (128, 2)
# (32768) 34 against 4.4.
STEP_SHIFT_MAX_WORK = 8192
# The platforms where the rewrites and cores above run under "auto". GPU and
# TPU keep the reference path (cuDNN's) until a measurement says otherwise.
REWRITE_BACKENDS = ("cpu",)
# Dtypes the "shift", "fft" and "ncw" cores are chosen for: they accumulate
# in the input's dtype, where the reference path may accumulate in float32.
_WIDE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _per_axis(value: int | Sequence[int]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


def choose_impl(
    *,
    transposed: bool,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int],
    groups: int,
    channels: int,
    dtype: DTypeLike,
    backend: str,
    channels_first: bool = False,
    filters: int | None = None,
    positions: int | None = None,
) -> str:
    """The lowering ``impl="auto"`` uses, from static facts only.

    Args:
      transposed: whether it is a transposed convolution.
      kernel_size: the kernel's taps per spatial axis (an int in 1-D);
        dilation does not count: it adds no products.
      strides: the strides per spatial axis (an int in 1-D).
      groups: the group count.
      channels: the input's channel count.
      dtype: the kernel's dtype.
      backend: ``jax.default_backend()``.
      channels_first: the input's layout.
      filters: the output's channel count (None: not counted).
      positions: the input's examples times its steps along the spatial
        axes (None: not counted).

    Returns:
        ``"reference"`` off CPU and for a dense, forward, channels-first 1-D
        or 2-D convolution (XLA's own path), else one of :data:`CORES`: the
        core that runs the channels-last problem after the rewrites.

    >>> import jax.numpy as jnp
    >>> from conv1djax.lowering import choose_impl
    >>> choose_impl(transposed=False, kernel_size=(3, 3), strides=(1, 1),
    ...             groups=64, channels=64, dtype=jnp.float32, backend="cpu")
    'shift'
    """
    if backend not in REWRITE_BACKENDS:
        return "reference"
    kernel_size, strides = _per_axis(kernel_size), _per_axis(strides)
    one_d = len(kernel_size) == 1
    # Space-to-depth (for "shift" and "fft") and polyphase leave ceil(k / s)
    # taps per axis; space-to-depth also multiplies the input channels per
    # group by the product of the strides.
    taps = math.prod(-(-k // s) for k, s in zip(kernel_size, strides, strict=True))
    per_group_channels = channels // groups
    in_per_group = per_group_channels * (1 if transposed else math.prod(strides))
    wide = np.dtype(dtype) in _WIDE_FLOATS
    if wide and one_d and taps >= FFT_MIN_TAPS:
        return "fft"
    per_group_filters = filters // groups if filters else 1
    if (
        wide
        and one_d
        and groups == 1
        and taps >= FFT_DENSE_MIN_TAPS
        and min(in_per_group, filters or 0) >= FFT_DENSE_MIN_CHANNELS
    ):
        return "fft"
    if groups == 1:
        if channels_first and not transposed and len(kernel_size) < 3:
            # XLA's own channels-first path: neither the transposes around
            # its channels-last one nor the "ncw" core beats it under every
            # loss (the "ncw" core: 1.5x faster under an MSE, 0.92x under
            # the sum of the output's squares, k=3, 64 channels).
            return "reference"
        pointwise = math.prod(kernel_size) == 1 and channels >= IM2COL_MIN_CHANNELS
        if not one_d and _eigen_pays(
            transposed=transposed, kernel_size=kernel_size, strides=strides,
            channels=channels, filters=filters, positions=positions, dtype=dtype,
        ):  # fmt: skip
            return "eigen"
        if not one_d or pointwise:
            return "im2col"
        rows = -(-(positions or 0) // strides[0])  # about the output's
        kernel_elements = kernel_size[0] * channels * (filters or 0)
        few_rows = 0 < rows * IM2COL_1D_MIN_KERNEL_PER_ROW <= kernel_elements
        if (
            not transposed
            and min(channels, filters or 0) >= IM2COL_1D_MIN_CHANNELS
            and few_rows
        ):
            return "im2col"
        return "direct"
    terms = taps * in_per_group
    phases = math.prod(strides) if transposed else 1
    work = terms * per_group_filters * phases
    # A short stride-1 1-D problem (FFT_SHORT_MAX_OUTPUTS) of a long kernel
    # runs the FFT rather than the shift or split cores below.
    outputs = (positions or math.inf) * (filters or 1)
    short = wide and one_d and strides == (1,) and outputs <= FFT_SHORT_MAX_OUTPUTS
    if (
        wide
        and groups >= SHIFT_MIN_GROUPS
        and terms <= SHIFT_MAX_TERMS
        and work <= SHIFT_MAX_WORK
    ):
        if (
            short
            and taps >= FFT_SHIFT_MIN_TAPS
            and per_group_filters >= FFT_SHIFT_MIN_FILTERS
        ):
            return "fft"
        return "shift"
    # Block-diagonal and split keep a forward convolution's strides.
    dense_taps = taps if transposed else math.prod(kernel_size)
    dense_work = dense_taps * channels * per_group_filters * phases
    if (
        groups <= BLOCKDIAG_MAX_GROUPS
        and per_group_channels < SPLIT_MIN_IN_PER_GROUP
        and dense_work <= BLOCKDIAG_MAX_WORK
    ):
        long_kernel = taps >= FFT_BLOCKDIAG_MIN_TAPS or (
            in_per_group == 1 and taps >= FFT_DEPTHWISE_MIN_TAPS
        )
        return "fft" if wide and one_d and long_kernel else "blockdiag"
    products = per_group_channels * per_group_filters
    if groups <= SPLIT_MAX_GROUPS and products >= SPLIT_MIN_PRODUCTS:
        return "fft" if short and taps >= FFT_SPLIT_MIN_TAPS else "split"
    return "direct"


def _eigen_pays(
    *,
    transposed: bool,
    kernel_size: tuple[int, ...],
    strides: tuple[int, ...],
    channels: int,
    filters: int | None,
    positions: int | None,
    dtype: DTypeLike,
) -> bool:
    """Whether a dense, channels-last 2-D or 3-D convolution runs the
    "eigen" core (:data:`EIGEN_CHANNELS`, :data:`EIGEN_MIN_POSITIONS`)."""
    if transposed or max(strides) > 1 or math.prod(kernel_size) == 1:
        return False
    if np.dtype(dtype) != np.dtype(np.float32) or not filters or not positions:
        return False
    # A 3-D one runs as a 2-D one of its depth taps stacked along the channels.
    stacked = channels * (kernel_size[0] if len(kernel_size) == 3 else 1)
    widest = max(stacked, filters)
    if stacked < EIGEN_MIN_CHANNELS:
        return False
    lo, hi = EIGEN_CHANNELS
    if positions >= EIGEN_MIN_POSITIONS and lo <= widest <= hi:
        return True
    lo, hi = EIGEN_CHANNELS_FEW_POSITIONS
    return positions >= EIGEN_MIN_POSITIONS_FEW and lo <= widest <= hi


def fft_derivatives(
    core: str,
    *,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int],
    groups: int,
    channels: int,
    dtype: DTypeLike,
    filters: int | None = None,
) -> bool:
    """Whether ``impl="auto"``'s ``core`` runs with the ``"fft"`` core's
    derivatives (:func:`conv1djax.lowering.adjoint.with_derivatives_of`).

    That is a 1-D float32 or float64 convolution that another core runs
    forward, of at least :data:`FFT_DERIVATIVES_MIN_TAPS` taps (of the
    stride-1 problem, as in :func:`choose_impl`), unless ``"shift"`` runs it
    with fewer than :data:`FFT_DERIVATIVES_MIN_PRODUCTS` channel pairs per
    group: its own derivatives of a depthwise kernel run near memory speed.

    Args:
      core: what :func:`choose_impl` returned for the other arguments,
        which mean what they mean there.

    >>> import jax.numpy as jnp
    >>> facts = dict(strides=1, groups=16, channels=16, filters=160,
    ...              dtype=jnp.float32)
    >>> fft_derivatives("shift", kernel_size=34, **facts)
    True
    >>> fft_derivatives("shift", kernel_size=16, **facts)
    False
    """
    kernel_size, strides = _per_axis(kernel_size), _per_axis(strides)
    if core in ("fft", "reference") or len(kernel_size) != 1:
        return False
    taps = -(-kernel_size[0] // strides[0])
    products = (channels // groups) * ((filters or groups) // groups)
    if core == "shift" and products < FFT_DERIVATIVES_MIN_PRODUCTS:
        return False
    return np.dtype(dtype) in _WIDE_FLOATS and taps >= FFT_DERIVATIVES_MIN_TAPS


def choose_step_impl(*, work: int, dtype: DTypeLike, backend: str) -> str:
    """The lowering of a stream's one-step convolution: ``"shift"`` on CPU
    for a float32 or float64 step of at most :data:`STEP_SHIFT_MAX_WORK`
    multiply-adds, else ``"auto"`` (:func:`choose_impl`'s rule).

    Args:
      work: the step's multiply-adds: the examples times the kernels'
        elements.
      dtype: the compute dtype.
      backend: ``jax.default_backend()``.

    >>> import jax.numpy as jnp
    >>> from conv1djax.lowering.choose import choose_step_impl
    >>> choose_step_impl(work=2 * 32 * 32, dtype=jnp.float32, backend="cpu")
    'shift'
    >>> choose_step_impl(work=2 * 128 * 128, dtype=jnp.float32, backend="cpu")
    'auto'
    """
    if (
        backend in REWRITE_BACKENDS
        and np.dtype(dtype) in _WIDE_FLOATS
        and work <= STEP_SHIFT_MAX_WORK
    ):
        return "shift"
    return "auto"


# A strided 1-D transposed convolution (dilation 1, one group, float32)
# whose kernel is longer than its stride runs under "auto" with XLA's input
# gradient (xla_input_grad): the reference path's, lax's transpose of its
# stride-dilated convolution, a strided convolution of the output gradient
# with the kernel, where the polyphase form's own is the transpose of its
# interleave and of a stride-1 convolution of strides times the filters.
# Value and gradient of an MSE /
# of mean(tanh(y)), the polyphase core's own ms over these (2026-12-07,
# 2-core AMD EPYC, jax 0.10.2, 9 rounds interleaved, "same" unless said;
# identical programs read 0.96x-0.99x): Conv1DTranspose(64, 4, strides=2)
# over (16, 512, 64) 1.14x / 1.12x and 1.10x / 1.18x; the HiFi-GAN-style
# generator's upsamplings (benchmarks/torch_bench.py), (128, 16, strides=8)
# over (4, 32, 256) 1.14x / 1.12x, (64, 16, strides=8) over (4, 256, 128)
# 1.13x / 1.20x, (32, 4, strides=2) over (4, 2048, 64) 1.07x / 1.20x, (16,
# 4, strides=2) over (4, 4096, 32) 1.06x / 1.06x; 8 filters over (8, 2048,
# 32) 1.17x / 1.24x; 4 channels, (64, 4, strides=2) over (8, 2048, 4) 2.83x
# / 3.57x; (64, 5, strides=4) over (8, 512, 64) 1.41x / 1.30x; (32, 5,
# strides=3) "valid" over (8, 300, 48) 1.09x / 1.14x; (256, 4, strides=2)
# over (8, 256, 256) 1.03x / 1.07x; (32, 16, strides=8) over (8, 128, 32)
# 1.17x / 1.38x. The input gradient alone was faster in 2-D too (the
# suite's Conv2DTranspose(32, 4, strides=2) over (8, 32, 32, 32) 4.33
# against 3.21 ms), but there the polyphase kernel gradient needs the
# de-interleaved output gradient anyway, and whole programs lost: that
# layer 0.95x-1.16x / 0.81x-0.87x, over (8, 32, 32, 64) 1.01x / 0.84x,
# Conv2DTranspose(16, 4, strides=2) over (8, 32, 32, 32) 0.75x / 0.71x,
# (32, 4, strides=2) over (16, 64, 64, 32) 0.92x / 0.88x, channels-first
# 0.90x / 0.93x; it won at (64, 3, strides=2) over (8, 32, 32, 64) 1.22x-
# 1.37x / 1.11x-1.20x and (128, 4, strides=2) over (8, 16, 16, 256) 1.05x /
# 1.03x. Few filters won in 1-D: Conv1DTranspose(4, 4, strides=2) over (8,
# 2048, 32) 1.31x / 1.22x, 3 filters 1.43x / 1.30x, (1, 16, strides=8) over
# (4, 1024, 32) 1.34x / 1.28x. Grouped, XLA's input gradient is its slow
# grouped convolution (8 groups, the suite's 1-D grouped shape transposed,
# the input gradient alone 2.23 against 1.42 ms).
def xla_input_grad(
    core: str,
    *,
    transposed: bool,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
    dtype: DTypeLike,
) -> bool:
    """Whether ``impl="auto"``'s ``core`` runs a transposed convolution
    with XLA's input gradient, the reference path's
    (:func:`conv1djax.lowering.adjoint.with_input_grad_of`): a strided
    float32 1-D one of one group, dilation 1, whose kernel is longer than
    its stride. The measurements are in the comment above this function.

    Args:
      core: what :func:`choose_impl` returned.
      transposed, kernel_size, strides, groups, dtype: as for
        :func:`choose_impl`.
      dilation: the kernel's dilation per spatial axis.

    >>> import jax.numpy as jnp
    >>> facts = dict(transposed=True, dilation=1, groups=1, dtype=jnp.float32)
    >>> xla_input_grad("direct", kernel_size=4, strides=2, **facts)
    True
    >>> xla_input_grad("direct", kernel_size=2, strides=2, **facts)
    False
    >>> xla_input_grad("im2col", kernel_size=(4, 4), strides=(2, 2), **facts)
    False
    """
    kernel_size, strides = _per_axis(kernel_size), _per_axis(strides)
    return (
        transposed
        and core not in ("reference", "fft")
        and len(kernel_size) == 1
        and max(strides) > 1
        and max(_per_axis(dilation)) == 1
        and groups == 1
        and any(k > s for k, s in zip(kernel_size, strides, strict=True))
        and np.dtype(dtype) == np.dtype(np.float32)
    )
