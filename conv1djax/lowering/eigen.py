"""Dense 2-D convolution on XLA:CPU's Eigen kernels.

XLA:CPU (jaxlib 0.10.2) has two kernels for a dense float32 2-D
convolution: YNNPACK's, which it picks whenever YNNPACK accepts the
convolution (``IsConvolutionOpSupportedByYnn`` in openxla/xla's
``xla/backends/cpu/ynn_support.cc``), and Eigen's spatial convolution,
which runs the rest. On the machine measured, Eigen's ran the 3x3
convolutions of a ResNet stage, ``(32, 56, 56, 64)`` to 64 channels, at
180 GFLOP/s forward and input gradient against YNNPACK's 101, and the
kernel gradient at 98 against 73; from 128 channels the two tie (2026-12-07,
2-core AMD EPYC, jax 0.10.2; measurements at
:data:`conv1djax.lowering.choose.EIGEN_CHANNELS`).

YNNPACK's support check declines a convolution whose output, or window,
is larger than its input along a spatial axis. This core shapes each of the
three products of a layer that way, with no compiler flag:

- the forward is padded on the right of the width by the columns that make
  its output one wider than its input, and those columns are dropped;
- the input gradient, the output gradient's convolution with the flipped
  kernel, likewise;
- the kernel gradient is XLA's convolution whose batch is the channels and
  whose window is the output gradient, widened by zero columns to one past
  the padded input, along the axis where XLA will not swap the operands
  (it swaps where the window's area exceeds the input's, into a reversed
  convolution that neither kernel takes). Derived by autodiff from the
  widened forward instead, XLA folded the zeros back into the window's
  padding and swapped it. Both operands are materialised in the layout
  Eigen reads, behind optimisation barriers (measured as free).

The extra columns add ``1 / width`` or so to the forward and input
gradient's products; they are zeros and change no value. The rule is a
custom JVP (:mod:`conv1djax.lowering.adjoint`), so forward mode, ``vmap``
and higher orders keep working.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

import conv1djax.lowering.adjoint as adjoint
import conv1djax.lowering.layout as layout
import conv1djax.lowering.reference as reference

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")

Geometry = tuple[tuple[tuple[int, int], ...], tuple[int, ...]]  # padding, dilation


def _past(size: int, out: int) -> int:
    """How many columns to add to an output of ``out`` columns so that it
    is wider than an input of ``size``."""
    return max(size - out + 1, 0)


def _window_axis(
    size: tuple[int, int], padding: tuple[tuple[int, int], ...], window: tuple[int, int]
) -> int | None:
    """The spatial axis (0 or 1) along which the kernel gradient's window,
    the output gradient of ``window`` positions, is widened one past the
    input of ``size`` positions, the other axis's padding materialised;
    None where neither works. XLA swaps the operands where the window's
    area exceeds the input's, over the axes that are not whole-axis
    contractions (openxla/xla ``conv_operand_swapper.cc``)."""
    for axis in (1, 0):
        other = 1 - axis
        padded_other = size[other] + sum(padding[other])
        if window[other] == padded_other:
            continue  # a whole-axis contraction, not counted: it would swap
        widened = window[axis] + _past(size[axis], window[axis])
        if window[other] * widened <= padded_other * size[axis]:
            return axis
    return None


def applies(
    x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], geometry: Geometry
) -> bool:
    """Whether this core can run a stride-1 2-D convolution of ``x_shape``
    with ``kernel_shape`` (both channels-last) on Eigen's kernels: padding
    at most the dilated kernel's reach on each side (so that the input
    gradient is a convolution with no cropping) and a kernel gradient whose
    window can be widened (:func:`_window_axis`)."""
    padding, dilation = geometry
    if len(kernel_shape) != 4:
        return False
    taps = kernel_shape[:2]
    grad_padding = layout.input_grad_padding(taps, padding, dilation)
    if min(min(pads) for pads in padding + grad_padding) < 0:
        return False
    size = (x_shape[1], x_shape[2])
    h, w = layout.output_steps(size, taps, padding, dilation)
    return min(h, w) >= 1 and _window_axis(size, padding, (h, w)) is not None


def forward(x: jax.Array, kernel: jax.Array, geometry: Geometry) -> jax.Array:
    """``x (N, H, W, C)`` cross-correlated with ``kernel (kh, kw, C, F)``
    at stride 1: XLA's convolution, its output widened past the input and
    cut back."""
    padding, dilation = geometry
    lo, hi = padding[1]
    width = layout.output_steps(x.shape[1:3], kernel.shape[:2], padding, dilation)[1]
    extra = _past(x.shape[2], width)
    y = lax.conv_general_dilated(
        x, kernel, (1, 1), (padding[0], (lo, hi + extra)),
        rhs_dilation=dilation, dimension_numbers=_DIMENSIONS,
    )  # fmt: skip
    return y[:, :, :width]


def input_grad(
    gy: jax.Array, kernel: jax.Array, x_shape: tuple[int, ...], geometry: Geometry
) -> jax.Array:
    """The input's cotangent: ``gy`` convolved with the flipped kernel,
    widened past ``gy`` and cut back to ``x_shape``."""
    padding, dilation = geometry
    flipped = reference.transpose_kernel(kernel, 1)
    pads = list(layout.input_grad_padding(kernel.shape[:2], padding, dilation))
    width = x_shape[2]
    extra = _past(gy.shape[2], width)
    pads[1] = (pads[1][0], pads[1][1] + extra)
    g = lax.conv_general_dilated(
        gy, flipped, (1, 1), pads, rhs_dilation=dilation, dimension_numbers=_DIMENSIONS
    )
    return g[:, :, :width]


def kernel_grad(
    x: jax.Array, gy: jax.Array, taps: tuple[int, ...], geometry: Geometry
) -> jax.Array:
    """The kernel's cotangent, ``(kh, kw, C, F)``: the padded input as a
    batch of ``C`` images of ``N`` channels, convolved with the output
    gradient as a ``(H', W', N, F)`` window widened one past the input."""
    padding, dilation = geometry
    size, window = (x.shape[1], x.shape[2]), (gy.shape[1], gy.shape[2])
    axis = _window_axis(size, padding, window)
    if axis is None:
        raise ValueError(f"No widenable axis for the window {window} over {size}.")
    extra = _past(size[axis], window[axis])
    other_pads = [(0, 0), (0, 0)]
    other_pads[1 - axis] = padding[1 - axis]
    x = layout.pad_spatial(x, tuple(other_pads))
    zeros = [(0, 0)] * 4
    zeros[1 + axis] = (0, extra)
    gy = jnp.pad(gy, zeros)
    images = jnp.transpose(x, (3, 1, 2, 0))  # (C, H, W, N)
    window_kernel = jnp.transpose(gy, (1, 2, 0, 3))  # (H', W', N, F)
    # Materialised as laid out, so that no simplification folds the zeros
    # into the window's padding or moves the transposes (none did, measured
    # without: the same time). Apart: the images are a constant of this
    # linear map, the window its argument; one barrier over both would not
    # transpose.
    images = lax.optimization_barrier(images)
    window_kernel = lax.optimization_barrier(window_kernel)
    pads = [(0, 0), (0, 0)]
    pads[axis] = (padding[axis][0], padding[axis][1] + extra)
    grad = lax.conv_general_dilated(
        images, window_kernel, dilation, pads, dimension_numbers=_DIMENSIONS
    )  # (C, kh, kw, F)
    assert grad.shape[1:3] == tuple(taps), (grad.shape, taps)
    return jnp.transpose(grad, (1, 2, 0, 3))


_conv = adjoint.custom_conv(
    forward,
    lambda gy, x, kernel, geometry: input_grad(gy, kernel, x.shape, geometry),
    lambda gy, x, kernel, geometry: kernel_grad(x, gy, kernel.shape[:2], geometry),
)


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: layout.Pads,
    dilation: tuple[int, ...],
) -> jax.Array:
    """Dense, channels-last, stride-1 2-D cross-correlation on Eigen's
    kernels, where :func:`applies` says it can run.

    Args:
      x: ``(N, H, W, C)``.
      kernel: ``(kh, kw, C, F)``.
      padding: ``(left, right)`` zeros per spatial axis, each at most the
        dilated kernel's reach.
      dilation: the kernel's dilation per axis.

    Returns:
      ``(N, H', W', F)``, the reference path's result (the same products).
    """
    geometry = (
        tuple((int(lo), int(hi)) for lo, hi in padding),
        tuple(int(d) for d in dilation),
    )
    if not applies(x.shape, kernel.shape, geometry):
        raise ValueError(
            f"The Eigen core cannot run a kernel of {kernel.shape} over "
            f"{x.shape} with padding {padding} and dilation {dilation}."
        )
    return _conv(x, kernel, geometry)
