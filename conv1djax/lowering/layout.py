"""Array layouts of the lowerings: dimension numbers, spatial padding, and
moves between channels-first and channels-last.

Inside :mod:`conv1djax.lowering` an input is ``(N, *spatial, C)``
(channels-last) unless a name says otherwise, a kernel ``(*taps, I, O)``
(Keras's layout), and a padding one ``(left, right)`` pair per spatial axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from conv1djax.shapes import Pads

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def spatial_letters(rank: int) -> str:
    """The spatial letters of ``lax`` dimension-number strings for ``rank``."""
    if rank not in _SPATIAL:
        raise ValueError(f"Convolutions have 1 to 3 spatial axes; received {rank}.")
    return _SPATIAL[rank]


def dimension_numbers(rank: int, channels_first: bool) -> tuple[str, str, str]:
    """``lax`` dimension numbers for Keras's layouts: ``NWC``/``NCW`` (or
    ``NHWC``, ...) inputs and outputs, a ``WIO`` (``HWIO``, ...) kernel."""
    s = spatial_letters(rank)
    layout = f"NC{s}" if channels_first else f"N{s}C"
    return (layout, f"{s}IO", layout)


def pad_spatial(x: jax.Array, pads: Pads) -> jax.Array:
    """Zero-pads the spatial axes of a channels-last ``(N, *spatial, C)``
    array; negative amounts crop."""
    zero = jnp.zeros((), x.dtype)
    config = ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0))
    return lax.pad(x, zero, config)


def output_steps(
    spatial: Sequence[int],
    taps: Sequence[int],
    padding: Pads,
    dilation: Sequence[int],
    strides: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """A convolution's output steps per spatial axis, of an input of
    ``spatial`` steps: ``(size + left + right - (taps - 1) * dilation - 1) //
    stride + 1`` (stride 1 where ``strides`` is None).

    >>> output_steps((8, 7), (3, 3), ((1, 1), (0, 0)), (1, 2), (2, 1))
    (4, 3)
    """
    strides = (1,) * len(taps) if strides is None else strides
    return tuple(
        (size + lo + hi - (k - 1) * d - 1) // s + 1
        for size, k, (lo, hi), d, s in zip(
            spatial, taps, padding, dilation, strides, strict=True
        )
    )


def input_grad_padding(
    taps: Sequence[int], padding: Pads, dilation: Sequence[int]
) -> Pads:
    """The padding of a stride-1 convolution's input gradient, the output
    gradient convolved with the flipped kernel: ``(taps - 1) * dilation``
    less the forward's padding on each side (negative: cropped).

    >>> input_grad_padding((3, 5), ((1, 1), (0, 4)), (1, 1))
    ((1, 1), (4, 0))
    """
    return tuple(
        ((k - 1) * d - lo, (k - 1) * d - hi)
        for k, d, (lo, hi) in zip(taps, dilation, padding, strict=True)
    )


# PyTorch's padding modes as ``jnp.pad``'s.
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_with_mode(
    x: jax.Array, pads: Pads, padding_mode: str, channels_first: bool
) -> jax.Array:
    """Pads the spatial axes of ``(N, *spatial, C)`` (or ``(N, C,
    *spatial)``) by ``pads`` (all >= 0) with PyTorch's ``padding_mode``
    "reflect", "replicate" or "circular" (``jnp.pad``'s "reflect", "edge",
    "wrap"); the caller checks PyTorch's limits on the amounts."""
    spatial = list(pads)
    config = (
        [(0, 0), (0, 0), *spatial] if channels_first else [(0, 0), *spatial, (0, 0)]
    )
    return jnp.pad(x, config, mode=_PAD_MODES[padding_mode])


def crop_negative(x: jax.Array, pads: Pads) -> tuple[jax.Array, Pads]:
    """Applies the negative parts of ``pads`` (crops) to ``x`` and returns
    it with the padding left to apply, all >= 0: the cores pad only."""
    if all(lo >= 0 and hi >= 0 for lo, hi in pads):
        return x, pads
    x = pad_spatial(x, tuple((min(lo, 0), min(hi, 0)) for lo, hi in pads))
    return x, tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)


def to_channels_last(x: jax.Array) -> jax.Array:
    """``(N, C, *spatial)`` -> ``(N, *spatial, C)``."""
    return jnp.moveaxis(x, 1, -1)


def to_channels_first(x: jax.Array) -> jax.Array:
    """``(N, *spatial, C)`` -> ``(N, C, *spatial)``."""
    return jnp.moveaxis(x, -1, 1)
