"""Lowerings of the 1-D convolutions onto XLA, chosen at trace time.

The entry points :func:`conv1d` and :func:`conv1d_transpose` take canonical,
already-validated arguments: a rank-3 input (batch, steps, channels) or
(batch, channels, steps), a kernel in Keras's layout, and explicit ``(left,
right)`` paddings from :mod:`conv1djax._shapes`.

The reference path (``impl="reference"``) is a single
``lax.conv_general_dilated``, as Keras and Flax call it. It is what runs on
GPU and TPU, where XLA hands it to cuDNN or the TPU's convolution unit.

XLA's CPU convolution is fast only for dense, stride-1, channels-last
problems (as fast as its matmul); grouped and depthwise convolutions, the
``lhs_dilation`` of a transposed convolution, their gradients and long
kernels are 5x to 100x slower than they need to be (jax-ml/jax#13800,
#23783). So on CPU (``impl="auto"``), each call is rewritten into a
channels-last convolution, of stride 1 where that pays:

- channels_first: transposed to channels-last and back (XLA folds a pair of
  transposes away where the "ncw" core transposes back).
- ``Conv1D`` with ``strides > 1``, for the cores other than XLA's own
  convolution: space-to-depth. The padded input is reshaped from ``(steps,
  C)`` to ``(steps / s, s * C)`` and the kernel from ``(k, C, F)`` to
  ``(ceil(k / s), s * C, F)``: a stride-1 convolution with the same
  products. (XLA's strided convolution and its gradient are as fast as that
  rewrite, so the "direct" and "blockdiag" cores keep the stride.)
- ``Conv1DTranspose`` with ``strides > 1``: polyphase. Output phase ``p``
  (steps ``s * q + p``) is a stride-1 correlation of the undilated input with
  the kernel taps ``i = p0, p0 + s, ...``; the ``s`` phases are one
  convolution with ``s * F`` filters, interleaved afterwards. No zero of the
  dilated input is multiplied, forward or backward.

and one of five cores computes it:

- ``"direct"``: ``lax.conv_general_dilated`` (``feature_group_count`` for
  groups).
- ``"blockdiag"``: a grouped convolution as a dense one whose kernel is
  block-diagonal: ``groups`` times the products, at dense speed.
- ``"shift"``: a sum of shifted, scaled copies of the input
  (:mod:`conv1djax._shift`), for grouped and depthwise convolutions.
- ``"fft"``: overlap-save FFT convolution (:mod:`conv1djax._fft`), for long
  kernels.
- ``"ncw"``: XLA's channels-first convolution forward, with a backward of
  batched matmuls over the input's im2col (:mod:`conv1djax._ncw`), for dense
  channels_first inputs.

:func:`choose_impl` picks one from static shapes, dtype and the platform.
Every lowering equals the reference path to float32 rounding, values and
gradients (``tests/test_lowerings.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from conv1djax import _fft, _ncw, _shift

CORES = ("direct", "blockdiag", "shift", "fft", "ncw")
IMPLS = ("auto", "reference", *CORES)

# Thresholds of the CPU decision rule, measured with benchmarks/bench.py and
# benchmarks/thresholds.py on a 2-core AMD EPYC (Zen 5, AVX-512) with jax
# 0.10.2; see benchmarks/README.md.
#
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


def choose_impl(
    *,
    transposed: bool,
    kernel_size: int,
    strides: int,
    groups: int,
    channels: int,
    dtype,
    backend: str,
    channels_first: bool = False,
) -> str:
    """The lowering ``impl="auto"`` uses, from static facts only.

    Args:
      transposed: whether it is a ``Conv1DTranspose``.
      kernel_size: the number of kernel taps (dilation does not count: it
        adds no products).
      strides: the stride.
      groups: the group count.
      channels: the input's channel count.
      dtype: the kernel's dtype.
      backend: ``jax.default_backend()``.
      channels_first: the input's layout.

    Returns:
      ``"reference"`` off CPU, else one of :data:`CORES`: the core that runs
      the channels-last problem after the rewrites.
    """
    if backend not in REWRITE_BACKENDS:
        return "reference"
    # Space-to-depth (for "shift" and "fft") and polyphase leave ceil(k / s)
    # taps; space-to-depth also multiplies the input channels per group by s.
    taps = -(-kernel_size // strides)
    in_per_group = channels // groups * (1 if transposed else strides)
    wide = np.dtype(dtype) in _WIDE_FLOATS
    if wide and taps >= FFT_MIN_TAPS:
        return "fft"
    if groups == 1:
        ncw = channels_first and strides == 1 and kernel_size <= NCW_MAX_TAPS
        return "ncw" if wide and ncw else "direct"
    terms = taps * in_per_group
    if wide and groups >= SHIFT_MIN_GROUPS and terms <= SHIFT_MAX_TERMS:
        return "shift"
    if groups <= BLOCKDIAG_MAX_GROUPS and channels // groups <= (
        BLOCKDIAG_MAX_IN_PER_GROUP
    ):
        return "blockdiag"
    return "direct"


# ---- the reference path ----------------------------------------------------


def _dimension_numbers(channels_first: bool) -> tuple[str, str, str]:
    layout = "NCW" if channels_first else "NWC"
    return (layout, "WIO", layout)


def reference_conv1d(
    x, kernel, *, strides, padding, dilation_rate, groups, channels_first
) -> jax.Array:
    """Cross-correlation with a ``(k, C // groups, F)`` kernel (Keras layout):
    one ``lax.conv_general_dilated``."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(strides,),
        padding=(padding,),
        rhs_dilation=(dilation_rate,),
        dimension_numbers=_dimension_numbers(channels_first),
        feature_group_count=groups,
    )


def transpose_kernel(kernel: jax.Array, groups: int) -> jax.Array:
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


def reference_conv1d_transpose(
    x, kernel, *, strides, padding, dilation_rate, groups, channels_first
) -> jax.Array:
    """Transposed convolution with a ``(k, F // groups, C)`` kernel.

    The input is dilated by ``strides`` (``lhs_dilation``), padded by
    ``padding`` and cross-correlated with the flipped, regrouped kernel: the
    adjoint of :func:`reference_conv1d` with that kernel, which is what
    Keras's ``lax.conv_transpose(..., transpose_kernel=True)`` computes.
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


# ---- channels-last cores -----------------------------------------


def _pad_steps(x: jax.Array, left: int, right: int) -> jax.Array:
    """Zero-pads (or, for negative amounts, crops) axis 1 of ``(N, W, C)``."""
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, ((0, 0, 0), (left, right, 0), (0, 0, 0)))


def block_diagonal(kernel: jax.Array, groups: int) -> jax.Array:
    """The dense ``(k, C, F)`` kernel equal to a grouped ``(k, C // g, F)``
    one: zero outside the groups' diagonal blocks."""
    k, c_per_group, f = kernel.shape
    blocks = kernel.reshape(k, c_per_group, groups, f // groups)
    eye = jnp.eye(groups, dtype=kernel.dtype)
    dense = blocks[:, None, :, :, :] * eye[None, :, None, :, None]
    return dense.reshape(k, groups * c_per_group, f)


def core_conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: tuple[int, int],
    dilation: int,
    groups: int,
    core: str,
    strides: int = 1,
) -> jax.Array:
    """A channels-last cross-correlation computed by ``core``.

    Args:
      x: ``(N, W, C)``.
      kernel: ``(k, C // groups, F)``.
      padding: ``(left, right)`` zeros around the steps; negative crops.
      dilation: the kernel's dilation.
      groups: the group count.
      core: one of :data:`CORES`.
      strides: the stride; > 1 (with dilation 1) is rewritten by
        space-to-depth for the cores other than "direct" and "blockdiag".

    Returns:
      ``(N, (W + left + right - (k - 1) * dilation - 1) // strides + 1, F)``.
    """
    if strides > 1 and core not in ("direct", "blockdiag"):
        x, kernel = space_to_depth(
            x, kernel, strides=strides, padding=padding, groups=groups
        )
        padding, strides = (0, 0), 1
    left, right = padding
    if left < 0 or right < 0:  # crop first: the cores take paddings >= 0
        x = _pad_steps(x, min(left, 0), min(right, 0))
        left, right = max(left, 0), max(right, 0)
    padding = (left, right)
    if core == "shift":
        return _shift.conv(x, kernel, padding=padding, dilation=dilation, groups=groups)
    if core == "fft":
        return _fft.conv(x, kernel, padding=padding, dilation=dilation, groups=groups)
    if core == "ncw":
        if groups > 1:
            kernel = block_diagonal(kernel, groups)
        y = _ncw.conv(x.transpose(0, 2, 1), kernel, padding=padding, dilation=dilation)
        return y.transpose(0, 2, 1)
    if core == "blockdiag" and groups > 1:
        kernel, groups = block_diagonal(kernel, groups), 1
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(strides,),
        padding=(padding,),
        rhs_dilation=(dilation,),
        dimension_numbers=_dimension_numbers(False),
        feature_group_count=groups,
    )


# ---- rewrites to stride 1 ----------------------------------------------------


def space_to_depth(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int,
    padding: tuple[int, int],
    groups: int,
) -> tuple[jax.Array, jax.Array]:
    """Rewrites a strided (dilation 1) convolution as a stride-1, unpadded one.

    Output step ``t`` reads padded input steps ``s * t + i``; with ``i = s * a
    + r`` that is row ``t + a``, column ``r`` of the padded input reshaped to
    rows of ``s`` steps. Taps are zero-padded to a multiple of ``s``; within
    each group the new channel index is ``r * (C // g) + c``.

    Args:
      x: ``(N, W, C)``.
      kernel: ``(k, C // groups, F)``.
      strides: ``s``.
      padding: the ``(left, right)`` padding of the strided convolution.
      groups: the group count.

    Returns:
      ``(x', kernel')`` of shapes ``(N, out + A - 1, s * C)`` and ``(A, s * C
      // groups, F)``, ``A = ceil(k / s)``, whose valid stride-1
      cross-correlation is the strided convolution's output.
    """
    s = strides
    n, length, c = x.shape
    k, c_per_group, f = kernel.shape
    taps = -(-k // s)
    out = (length + padding[0] + padding[1] - k) // s + 1
    rows = out + taps - 1
    x = _pad_steps(x, padding[0], s * rows - length - padding[0])
    x = x.reshape(n, rows, s, groups, c // groups).transpose(0, 1, 3, 2, 4)
    x = x.reshape(n, rows, s * c)
    kernel = jnp.pad(kernel, ((0, taps * s - k), (0, 0), (0, 0)))
    return x, kernel.reshape(taps, s * c_per_group, f)


def polyphase_plan(
    kernel_size: int, strides: int, padding: tuple[int, int], length: int
) -> tuple[np.ndarray, tuple[int, ...], tuple[int, int], int]:
    """The static plan of the polyphase transposed convolution.

    The reference computes ``y[t] = sum_i z[t + i] w[i]`` with ``z`` the input
    dilated by ``s`` and padded by ``(left, right)``, ``w`` the flipped
    kernel. For ``t = s * q + p`` only taps ``i = e_p + s * a`` (``e_p = (left
    - p) mod s``) meet input steps, ``x[q + a + d_p]`` with ``d_p = (p + e_p -
    left) / s``. All phases start reading at the smallest ``d_p``; phase
    ``p``'s output then starts ``lag_p = d_p - min d`` steps later, so that no
    tap is padded with zeros to align the phases.

    Returns:
      ``(index, lags, padding, out)``: ``index[a, p]`` is the tap of the
      flipped kernel at tap ``a`` of phase ``p`` (``kernel_size`` where none:
      a zero), ``lags[p]`` phase ``p``'s first output step in the stride-1
      convolution, ``padding`` that convolution's ``(left, right)``, and
      ``out`` the output length.
    """
    s, k = strides, kernel_size
    left, right = padding
    out = (length - 1) * s + left + right - k + 2
    phases = -(-out // s)
    first = [(left - p) % s for p in range(s)]
    counts = [len(range(first[p], k, s)) for p in range(s)]
    offsets = [(p + first[p] - left) // s for p in range(s)]
    low = min(offsets[p] for p in range(s) if counts[p])
    lags = tuple(offsets[p] - low if counts[p] else 0 for p in range(s))
    taps = max(counts)
    index = np.full((taps, s), k)
    for p in range(s):
        for a in range(counts[p]):
            index[a, p] = first[p] + s * a
    steps = phases + max(lags)  # outputs of the stride-1 convolution
    conv_padding = (-low, steps + taps - 1 - length + low)
    return index, lags, conv_padding, out


def _polyphase_transpose(
    x: jax.Array, kernel: jax.Array, *, strides: int, padding, groups: int, core: str
) -> jax.Array:
    """A strided (dilation 1) transposed convolution, channels-last, as one
    stride-1 convolution with ``strides * F`` filters and an interleave.

    Args:
      x: ``(N, W, C)``.
      kernel: ``(k, F // groups, C)``, Keras's transposed layout.
      strides, padding, groups: as for :func:`reference_conv1d_transpose`.
      core: the core of the stride-1 convolution.

    Returns:
      ``(N, out, F)``, equal to the reference.
    """
    s = strides
    n, length, _ = x.shape
    flipped = transpose_kernel(kernel, groups)  # (k, C // g, F)
    k, c_per_group, f = flipped.shape
    f_per_group = f // groups
    index, lags, conv_padding, out = polyphase_plan(k, s, padding, length)
    taps = index.shape[0]
    zero_tap = jnp.zeros((1, c_per_group, f), flipped.dtype)
    phased = jnp.concatenate([flipped, zero_tap])[index]  # (A, s, C // g, F)
    phased = phased.reshape(taps, s, c_per_group, groups, f_per_group)
    phased = phased.transpose(0, 2, 3, 1, 4).reshape(taps, c_per_group, s * f)
    # Padded here, not by the convolution: with the padding inside, XLA:CPU
    # lowers this kernel gradient to a reversed-window convolution 30x
    # slower (measured at 64 channels, stride 2, 4 taps).
    x = _pad_steps(x, *conv_padding)
    y = core_conv(x, phased, padding=(0, 0), dilation=1, groups=groups, core=core)
    y = y.reshape(n, y.shape[1], groups, s, f_per_group)
    phases = -(-out // s)
    if any(lags):
        y = jnp.stack(
            [
                lax.slice_in_dim(y[:, :, :, p], lags[p], lags[p] + phases, axis=1)
                for p in range(s)
            ],
            axis=2,
        )  # (N, phases, s, g, F // g)
    else:
        y = y.transpose(0, 1, 3, 2, 4)
    return y.reshape(n, phases * s, f)[:, :out]


# ---- entry points --------------------------------------------------------------


def _lower(
    x,
    kernel,
    *,
    transposed,
    strides,
    padding,
    dilation_rate,
    groups,
    channels_first,
    impl,
    run_core,
):
    """What both entry points share: resolve ``impl``, run the reference
    path, or run ``run_core(x, core)`` on the channels-last input."""
    if impl == "auto":
        impl = choose_impl(
            transposed=transposed,
            kernel_size=kernel.shape[0],
            strides=strides,
            groups=groups,
            channels=x.shape[1] if channels_first else x.shape[2],
            dtype=kernel.dtype,
            backend=jax.default_backend(),
            channels_first=channels_first,
        )
    if impl == "reference":
        reference = reference_conv1d_transpose if transposed else reference_conv1d
        return reference(
            x,
            kernel,
            strides=strides,
            padding=padding,
            dilation_rate=dilation_rate,
            groups=groups,
            channels_first=channels_first,
        )
    if channels_first:
        x = x.transpose(0, 2, 1)
    y = run_core(x, impl)
    return y.transpose(0, 2, 1) if channels_first else y


def conv1d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int,
    padding: tuple[int, int],
    dilation_rate: int,
    groups: int,
    channels_first: bool,
    impl: str = "auto",
) -> jax.Array:
    """Cross-correlation with a ``(k, C // groups, F)`` kernel (Keras layout).

    Args:
      x: ``(N, W, C)``, or ``(N, C, W)`` when ``channels_first``.
      kernel: ``(k, C // groups, F)``.
      strides, dilation_rate, groups: as in the spec (strides > 1 implies
        dilation 1).
      padding: ``(left, right)`` zeros around the steps.
      channels_first: the layout of ``x`` and of the result.
      impl: ``"auto"``, ``"reference"`` or one of :data:`CORES`.

    Returns:
      ``(N, out, F)`` (or ``(N, F, out)``).
    """

    def run_core(x, core):
        return core_conv(
            x,
            kernel,
            padding=padding,
            dilation=dilation_rate,
            groups=groups,
            core=core,
            strides=strides,
        )

    return _lower(
        x,
        kernel,
        transposed=False,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        groups=groups,
        channels_first=channels_first,
        impl=impl,
        run_core=run_core,
    )


def conv1d_transpose(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: int,
    padding: tuple[int, int],
    dilation_rate: int,
    groups: int,
    channels_first: bool,
    impl: str = "auto",
) -> jax.Array:
    """Transposed convolution with a ``(k, F // groups, C)`` kernel.

    Args:
      x: ``(N, W, C)``, or ``(N, C, W)`` when ``channels_first``.
      kernel: ``(k, F // groups, C)``, Keras's transposed layout.
      strides, dilation_rate, groups: as in the spec.
      padding: ``(left, right)`` padding of the stride-dilated input, from
        :func:`conv1djax._shapes.conv_transpose_padding`.
      channels_first: the layout of ``x`` and of the result.
      impl: ``"auto"``, ``"reference"`` or one of :data:`CORES`.

    Returns:
      ``(N, out, F)`` (or ``(N, F, out)``), the adjoint of :func:`conv1d`.
    """

    def run_core(x, core):
        if strides > 1:
            return _polyphase_transpose(
                x, kernel, strides=strides, padding=padding, groups=groups, core=core
            )
        return core_conv(
            x,
            transpose_kernel(kernel, groups),
            padding=padding,
            dilation=dilation_rate,
            groups=groups,
            core=core,
        )

    return _lower(
        x,
        kernel,
        transposed=True,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        groups=groups,
        channels_first=channels_first,
        impl=impl,
        run_core=run_core,
    )
