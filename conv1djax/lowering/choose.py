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

import numpy as np

CORES = ("direct", "blockdiag", "shift", "fft", "ncw")
IMPLS = ("auto", "reference", *CORES)
# The cores written for one spatial axis only.
ONE_D_CORES = ("fft", "ncw")

# FFT from this many taps (of the stride-1 problem) on. At 16 and 64
# channels the forward passes break even between 32 and 48 taps and the FFT
# is 1.7x-2.2x faster at 96; forward + backward it is ahead from 24-48 taps
# (1.35x at 48, 2.4x-2.6x at 96).
FFT_MIN_TAPS = 64
# Shift-and-add from this many groups, while taps * (input channels per
# group) stays at most SHIFT_MAX_TERMS: it does that many multiply-adds per
# output element in one fused loop, and the program grows with it. At 64
# channels, 3 taps: 8 groups (24 terms) 1.7x faster than block-diagonal
# forward, 1.2x forward + backward; 4 groups (48 terms) 1.4x slower forward +
# backward. At 256 channels, 16 groups (48 terms): 1.2x faster.
SHIFT_MIN_GROUPS = 8
SHIFT_MAX_TERMS = 64
# Otherwise a block-diagonal dense kernel, up to this many groups and input
# channels per group (it does ``groups`` times the products at dense
# speed): at 64 channels 1.4x-2.3x faster than XLA's grouped convolution
# forward + backward (2 and 4 groups); at 256 channels a tie with 8 groups
# (32 per group) and 1.1x slower with 4 (64 per group).
BLOCKDIAG_MAX_GROUPS = 8
BLOCKDIAG_MAX_IN_PER_GROUP = 32
# The "ncw" core up to this many taps: its backward holds the im2col of the
# input (taps copies of it). At 64 channels under an MSE loss, forward +
# backward is 1.6x faster than XLA's channels-first path at 3 taps, 1.2x at
# 5, 2.3x slower at 9; under a loss XLA folds into its convolution's
# transposes (the sum of the output's squares) XLA's path was 1.2x faster at
# 3 taps and 1.5x at 5.
NCW_MAX_TAPS = 3
# The platforms where the rewrites and cores above run under "auto". GPU and
# TPU keep the reference path (cuDNN's) until a measurement says otherwise.
REWRITE_BACKENDS = ("cpu",)
# Dtypes the "shift", "fft" and "ncw" cores are chosen for: they accumulate
# in the input's dtype, where the reference path may accumulate in float32.
_WIDE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _per_axis(value) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


def choose_impl(
    *,
    transposed: bool,
    kernel_size,
    strides,
    groups: int,
    channels: int,
    dtype,
    backend: str,
    channels_first: bool = False,
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

    Returns:
      ``"reference"`` off CPU, else one of :data:`CORES`: the core that runs
      the channels-last problem after the rewrites.

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
    in_per_group = channels // groups * (1 if transposed else math.prod(strides))
    wide = np.dtype(dtype) in _WIDE_FLOATS
    if wide and one_d and taps >= FFT_MIN_TAPS:
        return "fft"
    if groups == 1:
        ncw = channels_first and strides == (1,) and kernel_size[0] <= NCW_MAX_TAPS
        return "ncw" if wide and one_d and ncw else "direct"
    terms = taps * in_per_group
    if wide and groups >= SHIFT_MIN_GROUPS and terms <= SHIFT_MAX_TERMS:
        return "shift"
    if groups <= BLOCKDIAG_MAX_GROUPS and channels // groups <= (
        BLOCKDIAG_MAX_IN_PER_GROUP
    ):
        return "blockdiag"
    return "direct"
