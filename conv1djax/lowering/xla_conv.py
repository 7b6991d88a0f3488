"""XLA's own channels-last convolution, as the cores call it.

XLA:CPU (jaxlib 0.10.2) runs a dense stride-1 2-D convolution with no
padding at all on a path several times slower than the same convolution
with any. ``Conv2D(32, 3)`` over ``(8, 66, 66, 32)``, unpadded against
padded by one row and that row's output dropped: forward 29 against 6.6
ms; forward + backward 63 against 18 ms; at 64 channels 151 against 67; a
5x5 kernel 163 against 43; 128 channels, where both run on two cores, 90
against 43; dilated by 2, forward 28 against 6.6 ms (2026-12-06, 2-core AMD
EPYC, jax 0.10.2; the gradient of ``mean(tanh(y))``). The results are the
same bits. 1-D, 3-D and grouped convolutions do not take that path (within
6%), so only a dense 2-D one is padded. A strided one, padded by one
stride, was mixed (forward + backward, unpadded against padded): 3x3
stride 2 over (8, 130, 130, 32) 70 against 50 ms, over (16, 34, 34, 64)
10.8 against 11.3; a 1x4 kernel of stride 4 over (8, 128, 128, 32) 6.8
against 9.7 (a sweep configuration of that kind read 0.78x forward): it
runs as given.

Keras's default padding is ``"valid"``, and the space-to-depth, polyphase
and depth-as-channels rewrites leave unpadded convolutions too. The
reference path (``impl="reference"``) stays Keras's one
``lax.conv_general_dilated``.
"""

from __future__ import annotations

import jax

import conv1djax.lowering.layout as layout
import conv1djax.lowering.reference as reference


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    strides: tuple[int, ...],
    padding: layout.Pads,
    dilation: tuple[int, ...],
    groups: int = 1,
) -> jax.Array:
    """The reference path's convolution (:func:`~conv1djax.lowering.reference.conv`)
    of channels-last ``x (N, *spatial, C)`` with ``kernel (*taps, C //
    groups, F)``; a dense stride-1 2-D one with no padding runs padded above
    by one row, that row's output dropped.

    >>> import jax.numpy as jnp
    >>> x, kernel = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
    >>> y = conv(x, kernel, strides=(1, 1), padding=((0, 0), (0, 0)),
    ...          dilation=(1, 1))
    >>> y.shape, float(y[0, 0, 0, 0])
    ((1, 3, 3, 4), 18.0)
    """
    rank = kernel.ndim - 2
    unpadded = all(lo == 0 and hi == 0 for lo, hi in padding)
    stride_one = all(s == 1 for s in strides)
    extra_row = rank == 2 and groups == 1 and unpadded and stride_one
    if extra_row:
        padding = ((1, 0), *padding[1:])
    y = reference.conv(x, kernel, strides=strides, padding=padding,
                       dilation_rate=dilation, groups=groups, channels_first=False)  # fmt: skip
    return y[:, 1:] if extra_row else y
