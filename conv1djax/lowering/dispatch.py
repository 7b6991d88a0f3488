"""The entry points: a convolution of any rank, lowered as ``impl`` says.

:func:`conv` and :func:`conv_transpose` take canonical, already-validated
arguments: an input of rank ``2 + spatial axes``, ``(N, *spatial, C)`` or
``(N, C, *spatial)``, a kernel in Keras's layout, and explicit ``(left,
right)`` paddings per axis from :mod:`conv1djax.shapes`.

``impl="reference"`` runs :mod:`conv1djax.lowering.reference`. Otherwise
(``impl="auto"`` on CPU, or a core forced by name), the call is rewritten into
a channels-last convolution, of stride 1 where that pays, and a core
computes it:

- channels_first: transposed to channels-last and back (XLA folds a pair of
  transposes away where the "ncw" core transposes back).
- a strided convolution, for the cores other than XLA's own: space-to-depth
  (:mod:`~conv1djax.lowering.rewrites`). XLA's strided convolution and its
  gradient are as fast as that rewrite, so "direct", "im2col",
  "blockdiag" and "split" keep the stride.
- a strided transposed convolution: polyphase, no zero of the dilated input
  multiplied.

The cores:

- ``"direct"``: XLA's convolution (``feature_group_count`` for groups; an
  unpadded dense 2-D one padded by a row, :mod:`~conv1djax.lowering.xla_conv`).
- ``"im2col"``: XLA's forward and input gradient (a 1x1 kernel's as
  matrix products), the kernel gradient as blocked im2col GEMMs
  (:mod:`~conv1djax.lowering.im2col`), for dense convolutions.
- ``"blockdiag"``: a grouped convolution as a dense one whose kernel is
  block-diagonal (:mod:`~conv1djax.lowering.blockdiag`).
- ``"split"``: a grouped convolution as one dense convolution per group
  (:mod:`~conv1djax.lowering.split`).
- ``"shift"``: a sum of shifted, scaled copies of the input
  (:mod:`~conv1djax.lowering.shift`), for grouped and depthwise
  convolutions.
- ``"fft"`` (1-D): overlap-save FFT convolution
  (:mod:`~conv1djax.lowering.fft`), for long kernels. Under ``"auto"``, a
  1-D kernel of middling length that another core runs forward takes the
  FFT's derivatives (:func:`~conv1djax.lowering.adjoint.with_derivatives_of`,
  :func:`~conv1djax.lowering.choose.fft_derivatives`). A strided
  1-D transposed convolution takes XLA's input gradient, a strided
  convolution (:func:`~conv1djax.lowering.adjoint.with_input_grad_of`,
  :func:`~conv1djax.lowering.choose.xla_input_grad`).
- ``"ncw"`` (1-D): XLA's channels-first convolution forward, with a backward
  of batched matmuls (:mod:`~conv1djax.lowering.ncw`).

:func:`~conv1djax.lowering.choose.choose_impl` picks one from static shapes,
dtype and the platform. Every lowering equals the reference path to float32
rounding, values and gradients (``tests/test_lowerings.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

import conv1djax.lowering.adjoint as adjoint
import conv1djax.lowering.blockdiag as blockdiag
import conv1djax.lowering.choose as choose
import conv1djax.lowering.eigen as eigen
import conv1djax.lowering.fft as fft
import conv1djax.lowering.im2col as im2col
import conv1djax.lowering.layout as layout
import conv1djax.lowering.ncw as ncw
import conv1djax.lowering.reference as reference
import conv1djax.lowering.shift as shift
import conv1djax.lowering.split as split
import conv1djax.lowering.xla_conv as xla_conv
from conv1djax.lowering.rewrites import (
    depth_as_batch,
    depth_as_channels,
    polyphase_transpose,
    space_to_depth,
)

# The cores that run a strided convolution as such: XLA's strided
# convolution and its gradient are as fast as space-to-depth.
STRIDED_CORES = ("direct", "im2col", "blockdiag", "split")


def core_conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int,
    core: str,
    strides: tuple[int, ...] | None = None,
) -> jax.Array:
    """A channels-last cross-correlation computed by ``core``.

    Args:
      x: ``(N, *spatial, C)``.
      kernel: ``(*taps, C // groups, F)``.
      padding: ``(left, right)`` zeros per spatial axis; negative crops.
      dilation: the kernel's dilation per axis.
      groups: the group count.
      core: one of :data:`~conv1djax.lowering.choose.CORES`; "fft" and "ncw"
        for one spatial axis only.
      strides: the strides per axis (default 1); > 1 is rewritten by
        space-to-depth for the cores other than ``STRIDED_CORES``
        (with dilation > 1 too, which only the depthwise layers allow, the
        stride-1 output is subsampled).

    Returns:
      ``(N, *out, F)`` with ``out = (spatial + left + right - (taps - 1) *
        dilation - 1) // strides + 1`` per axis.
    """
    rank = kernel.ndim - 2
    strides = (1,) * rank if strides is None else tuple(strides)
    if core in choose.ONE_D_CORES and rank != 1:
        raise ValueError(f"The {core!r} core is 1-D only; received {rank} axes.")
    if core == "split" and groups > 1:

        def run_dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
            return core_conv(x, kernel, padding=padding, dilation=dilation,
                             groups=1, core="direct", strides=strides)  # fmt: skip

        return split.conv(x, kernel, groups, run_dense)
    if max(strides) > 1 and max(dilation) > 1 and core not in STRIDED_CORES:
        # Keras's depthwise and separable layers allow both; space-to-depth
        # needs dilation 1, so the stride-1 output is subsampled instead.
        y = core_conv(x, kernel, padding=padding, dilation=dilation,
                      groups=groups, core=core)  # fmt: skip
        return lax.slice(y, (0,) * y.ndim, y.shape, (1, *strides, 1))
    if max(strides) > 1 and core not in STRIDED_CORES:
        x, kernel = space_to_depth(
            x, kernel, strides=strides, padding=padding, groups=groups
        )
        padding, strides = ((0, 0),) * rank, (1,) * rank
    x, padding = layout.crop_negative(x, padding)
    if core in ("im2col", "eigen"):
        if groups > 1:
            kernel = blockdiag.block_diagonal(kernel, groups)
        dense = functools.partial(_dense, on_eigen=core == "eigen")
        if rank == 3 and max(kernel.shape[:-2]) > 1:
            # One 2-D convolution of the depth taps stacked along the
            # channels: a 3-D example's own im2col (taps * positions * C) is
            # too large to keep in cache.
            return depth_as_channels(
                x, kernel, strides=strides, padding=padding, dilation=dilation,
                run_conv2d=dense,
            )  # fmt: skip
        return dense(x, kernel, strides, padding, dilation)
    if core == "shift":
        return shift.conv(x, kernel, padding=padding, dilation=dilation, groups=groups)
    if core == "fft":
        return fft.conv(
            x, kernel, padding=padding[0], dilation=dilation[0], groups=groups
        )
    if core == "ncw":
        if groups > 1:
            kernel = blockdiag.block_diagonal(kernel, groups)
        y = ncw.conv(
            layout.to_channels_first(x),
            kernel,
            padding=padding[0],
            dilation=dilation[0],
        )
        return layout.to_channels_last(y)
    if core == "blockdiag" and groups > 1:
        kernel, groups = blockdiag.block_diagonal(kernel, groups), 1
    if rank == 3:

        def run_conv2d(
            x: jax.Array,
            kernel: jax.Array,
            strides: tuple[int, ...],
            padding: layout.Pads,
            dilation: tuple[int, ...],
        ) -> jax.Array:
            return core_conv(x, kernel, padding=padding, dilation=dilation,
                             groups=groups, core="direct", strides=strides)  # fmt: skip

        return depth_as_batch(
            x, kernel, strides=strides, padding=padding, dilation=dilation,
            run_conv2d=run_conv2d,
        )  # fmt: skip
    return xla_conv.conv(
        x, kernel, strides=strides, padding=padding, dilation=dilation, groups=groups
    )


def _dense(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, ...],
    padding: layout.Pads,
    dilation: tuple[int, ...],
    *,
    on_eigen: bool,
) -> jax.Array:
    """A dense channels-last convolution: the "im2col" core's, or with
    ``on_eigen`` the "eigen" core's where it applies (stride 1, 2-D, more
    than one tap: :func:`~conv1djax.lowering.eigen.applies`)."""
    geometry = (padding, dilation)
    if (
        on_eigen
        and max(strides) == 1
        and eigen.applies(x.shape, kernel.shape, geometry)
    ):
        return eigen.conv(x, kernel, padding=padding, dilation=dilation)
    return im2col.conv(x, kernel, strides=strides, padding=padding, dilation=dilation)


def _lower(
    x: jax.Array,
    kernel: jax.Array,
    *,
    transposed: bool,
    strides: tuple[int, ...],
    padding: layout.Pads,
    dilation_rate: tuple[int, ...],
    groups: int,
    channels_first: bool,
    impl: str,
    run_core: Callable[[jax.Array, jax.Array, str], jax.Array],
) -> jax.Array:
    """What both entry points share: resolve ``impl``, run the reference
    path, or run ``run_core(x, kernel, core)`` on the channels-last input
    (under ``"auto"``, with the FFT core's derivatives where
    :func:`~conv1djax.lowering.choose.fft_derivatives` says, and a
    transposed one with XLA's input gradient where
    :func:`~conv1djax.lowering.choose.xla_input_grad` says)."""
    fft_derivatives = xla_input_grad = False
    if impl == "auto":
        channels = x.shape[1] if channels_first else x.shape[-1]
        filters = kernel.shape[-2] * groups if transposed else kernel.shape[-1]
        spatial = x.shape[2:] if channels_first else x.shape[1:-1]
        impl = choose.choose_impl(
            transposed=transposed,
            kernel_size=kernel.shape[:-2],
            strides=strides,
            groups=groups,
            channels=channels,
            dtype=kernel.dtype,
            backend=jax.default_backend(),
            channels_first=channels_first,
            filters=filters,
            positions=x.shape[0] * math.prod(spatial),
        )
        fft_derivatives = choose.fft_derivatives(
            impl, kernel_size=kernel.shape[:-2], strides=strides, groups=groups,
            channels=channels, dtype=kernel.dtype, filters=filters,
        )  # fmt: skip
        xla_input_grad = not fft_derivatives and choose.xla_input_grad(
            impl, transposed=transposed, kernel_size=kernel.shape[:-2],
            strides=strides, dilation=dilation_rate, groups=groups,
            dtype=kernel.dtype,
        )  # fmt: skip

    def plain(x: jax.Array, kernel: jax.Array, channels_first: bool) -> jax.Array:
        run = reference.conv_transpose if transposed else reference.conv
        return run(x, kernel, strides=strides, padding=padding,
                   dilation_rate=dilation_rate, groups=groups,
                   channels_first=channels_first)  # fmt: skip

    if impl == "reference":
        return plain(x, kernel, channels_first)
    if channels_first:
        x = layout.to_channels_last(x)
    core = impl
    if fft_derivatives:
        y = adjoint.with_derivatives_of(
            lambda x, kernel: run_core(x, kernel, core),
            lambda x, kernel: run_core(x, kernel, "fft"),
        )(x, kernel)
    elif xla_input_grad:
        y = adjoint.with_input_grad_of(
            lambda x, kernel: run_core(x, kernel, core),
            lambda x, kernel: plain(x, kernel, False),
        )(x, kernel)
    else:
        y = run_core(x, kernel, impl)
    return layout.to_channels_first(y) if channels_first else y


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: tuple[int, ...],
    padding: layout.Pads,
    dilation_rate: tuple[int, ...],
    groups: int,
    channels_first: bool,
    impl: str = "auto",
) -> jax.Array:
    """Cross-correlation with a ``(*taps, C // groups, F)`` kernel (Keras's
    layout).

    Args:
      x: ``(N, *spatial, C)``, or ``(N, C, *spatial)`` when ``channels_first``.
      kernel: ``(*taps, C // groups, F)``.
      strides, dilation_rate: per spatial axis, as in the spec (strides > 1
        implies dilation 1).
      padding: ``(left, right)`` zeros per spatial axis.
      groups: the group count.
      channels_first: the layout of ``x`` and of the result.
      impl: ``"auto"``, ``"reference"`` or one of
        :data:`~conv1djax.lowering.choose.CORES`.

    Returns:
      ``(N, *out, F)`` (or ``(N, F, *out)``).
    """

    def run_core(x: jax.Array, kernel: jax.Array, core: str) -> jax.Array:
        return core_conv(
            x,
            kernel,
            padding=padding,
            dilation=dilation_rate,
            groups=groups,
            core=core,
            strides=strides,
        )

    return _lower(x, kernel, transposed=False, strides=strides, padding=padding,
                  dilation_rate=dilation_rate, groups=groups,
                  channels_first=channels_first, impl=impl, run_core=run_core)  # fmt: skip


def conv_transpose(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: tuple[int, ...],
    padding: layout.Pads,
    dilation_rate: tuple[int, ...],
    groups: int,
    channels_first: bool,
    impl: str = "auto",
) -> jax.Array:
    """Transposed convolution with a ``(*taps, F // groups, C)`` kernel.

    Args:
      x: ``(N, *spatial, C)``, or ``(N, C, *spatial)`` when ``channels_first``.
      kernel: ``(*taps, F // groups, C)``, Keras's transposed layout.
      strides, dilation_rate, groups: as in the spec.
      padding: ``(left, right)`` padding of the stride-dilated input per axis,
        from :func:`conv1djax.shapes.conv_transpose_paddings`.
      channels_first: the layout of ``x`` and of the result.
      impl: ``"auto"``, ``"reference"`` or one of
        :data:`~conv1djax.lowering.choose.CORES`.

    Returns:
      ``(N, *out, F)`` (or ``(N, F, *out)``), the adjoint of :func:`conv`.
    """
    rank = kernel.ndim - 2

    def run_core(x: jax.Array, kernel: jax.Array, core: str) -> jax.Array:
        if max(strides) > 1 and max(dilation_rate) > 1:
            # PyTorch's strided and dilated transpose: the stride-dilated
            # input (zeros between the steps) through the dilated kernel.
            zero = jnp.zeros((), x.dtype)
            pads = [(0, 0, 0), *((0, 0, s - 1) for s in strides), (0, 0, 0)]
            return core_conv(lax.pad(x, zero, pads),
                             reference.transpose_kernel(kernel, groups),
                             padding=padding, dilation=dilation_rate, groups=groups,
                             core=core)  # fmt: skip
        if max(strides) > 1:

            def run_conv(x: jax.Array, phased: jax.Array) -> jax.Array:
                zeros = ((0, 0),) * rank
                return core_conv(x, phased, padding=zeros, dilation=(1,) * rank,
                                 groups=groups, core=core)  # fmt: skip

            return polyphase_transpose(
                x, kernel, strides=strides, padding=padding, groups=groups,
                run_conv=run_conv,
            )  # fmt: skip
        return core_conv(
            x,
            reference.transpose_kernel(kernel, groups),
            padding=padding,
            dilation=dilation_rate,
            groups=groups,
            core=core,
        )

    return _lower(x, kernel, transposed=True, strides=strides, padding=padding,
                  dilation_rate=dilation_rate, groups=groups,
                  channels_first=channels_first, impl=impl, run_core=run_core)  # fmt: skip
