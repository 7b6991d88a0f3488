"""DepthwiseConv1D, DepthwiseConv2D: each input channel convolved with its own
``depth_multiplier`` filters.

A depthwise convolution is the grouped convolution with one group per input
channel: Keras's ``(*kernel_size, channels, depth_multiplier)`` kernel is the
``(*kernel_size, 1, channels * depth_multiplier)`` kernel of
``groups=channels`` (output channel ``c * depth_multiplier + m`` is input
channel ``c``'s filter ``m``), so it runs through the same lowerings as
``Conv*D(groups=...)``: shift-and-add on CPU, cuDNN's grouped convolution on
GPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from conv1djax import (
    _validation,
    activations,
    constraints,
    initializers,
    lowering,
    regularizers,
)
from conv1djax._typing import Pads
from conv1djax.layers.base import ConvBase


def depthwise_as_grouped(kernel: jax.Array) -> jax.Array:
    """Keras's ``(*k, C, m)`` depthwise kernel as the ``(*k, 1, C * m)``
    kernel of a convolution with ``groups=C``."""
    *taps, c, m = kernel.shape
    return kernel.reshape(*taps, 1, c * m)


def depthwise_conv(
    layer: ConvBase, kernel: ArrayLike, x: jax.Array, pads: Pads
) -> jax.Array:
    """The depthwise convolution of ``layer``'s window arguments (strides,
    dilation, data format, impl) with Keras's ``(*k, C, m)`` ``kernel``,
    over ``(N, *spatial, C)`` (or channels-first) inputs zero-padded by
    ``pads``."""
    kernel = jnp.asarray(kernel)
    return lowering.conv(
        x,
        depthwise_as_grouped(kernel),
        strides=layer.strides,
        padding=pads,
        dilation_rate=layer.dilation_rate,
        groups=kernel.shape[-2],
        channels_first=layer.data_format == "channels_first",
        impl=layer.impl,
    )


@dataclasses.dataclass(frozen=True)
class _DepthwiseConv(ConvBase):
    """Keras's depthwise-convolution arguments, shared by every rank."""

    # The PyTorch module of the same weights (conv1djax.interop): a Conv with
    # groups=in.
    torch_module: ClassVar[str | None] = "depthwise"

    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str | int | tuple = "valid"
    depth_multiplier: int = 1
    data_format: str | None = "channels_last"
    dilation_rate: int | tuple[int, ...] = 1
    activation: Any = None
    use_bias: bool = True
    depthwise_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    depthwise_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    depthwise_constraint: Any = None
    bias_constraint: Any = None
    impl: str = "auto"
    padding_mode: str = "zeros"

    _REGISTRIES: ClassVar[Mapping[str, Any]] = {
        "depthwise_initializer": initializers,
        "bias_initializer": initializers,
        "depthwise_regularizer": regularizers,
        "bias_regularizer": regularizers,
        "activity_regularizer": regularizers,
        "depthwise_constraint": constraints,
        "bias_constraint": constraints,
        "activation": activations,
    }
    # Keras names the weight "kernel" and its objects "depthwise_*".
    _WEIGHT_PREFIXES: ClassVar[Mapping[str, str]] = {"kernel": "depthwise"}

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self,
            "depth_multiplier",
            _validation.positive_int(self.depth_multiplier, "depth_multiplier"),
        )

    def _param_shapes(self, channels: int) -> dict[str, tuple[int, ...]]:
        kernel_size = cast(tuple[int, ...], self.kernel_size)  # canonical
        shapes = {"kernel": (*kernel_size, channels, self.depth_multiplier)}
        if self.use_bias:
            shapes["bias"] = (channels * self.depth_multiplier,)
        return shapes

    def _out_channels(self, channels: int) -> int:
        return channels * self.depth_multiplier

    def _lora_split(self, kernel_shape: tuple[int, ...]) -> int:
        # Beyond Keras: the (*k, C, m) kernel as the (taps, channels) matrix,
        # A = (*k, r) and B = (r, C, m). Keras's rule (all axes but the last
        # in A) would leave B = (r, m): with m = 1 no low rank at all.
        del kernel_shape
        return self.rank

    def _convolve(
        self, params: Mapping[str, jax.Array], x: jax.Array, pads: Pads
    ) -> jax.Array:
        return depthwise_conv(self, params["kernel"], x, pads)

    def _describe(self) -> str:
        return (
            f"{type(self).__name__}(kernel_size={self.kernel_size}, "
            f"depth_multiplier={self.depth_multiplier})"
        )


@dataclasses.dataclass(frozen=True)
class DepthwiseConv1D(_DepthwiseConv):
    """Spec of a 1-D depthwise convolution layer, Keras 3's
    ``DepthwiseConv1D``.

    Each of the input's ``C`` channels is convolved with its own
    ``depth_multiplier`` filters: ``C * depth_multiplier`` output channels,
    output channel ``c * depth_multiplier + m`` from input channel ``c``. The
    kernel has Keras's layout ``(kernel_size, C, depth_multiplier)``; params
    are ``{"kernel", "bias"}``, as Keras names the weights.

    Args:
      kernel_size: int or 1-tuple, the window length.
      strides: int or 1-tuple.
      padding: "valid", "same" or "causal" (any case). "causal" is an
        extension over Keras 3 (which refuses it here): ``k_eff - 1`` zeros on
        the left, as a causal :class:`~conv1djax.Conv1D` pads. Or an explicit
        padding, as for :class:`~conv1djax.Conv1D`.
      depth_multiplier: filters per input channel, >= 1.
      data_format: "channels_last" (default; None means it too) or
        "channels_first".
      dilation_rate: int or 1-tuple. Unlike Conv1D, Keras allows strides > 1
        together with dilation > 1 here, and so does this layer.
      activation, use_bias: as for :class:`~conv1djax.Conv1D`.
      bias_initializer, bias_regularizer, bias_constraint: as for
        :class:`~conv1djax.Conv1D`.
      activity_regularizer: as for :class:`~conv1djax.Conv1D`.
      depthwise_initializer, depthwise_regularizer, depthwise_constraint: the
        kernel's initializer, penalty and projection.
      impl, padding_mode: as for :class:`~conv1djax.Conv1D`.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.DepthwiseConv1D(3, depth_multiplier=2, padding="causal")
    >>> params = layer.init(jax.random.key(0), (None, 16, 4))
    >>> params["kernel"].shape, params["bias"].shape
    ((3, 4, 2), (8,))
    >>> layer.apply(params, jnp.ones((2, 16, 4))).shape
    (2, 16, 8)
    """

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class DepthwiseConv2D(_DepthwiseConv):
    """Spec of a 2-D depthwise convolution layer, Keras 3's
    ``DepthwiseConv2D``.

    The arguments are :class:`DepthwiseConv1D`'s with an int or a pair for
    ``kernel_size``, ``strides`` and ``dilation_rate``, and "valid" or "same"
    padding. The kernel is ``(*kernel_size, C, depth_multiplier)``.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.DepthwiseConv2D(3, strides=2, padding="same")
    >>> params = layer.init(jax.random.key(0), (None, 32, 32, 16))
    >>> params["kernel"].shape
    (3, 3, 16, 1)
    >>> layer.apply(params, jnp.ones((2, 32, 32, 16))).shape
    (2, 16, 16, 16)
    """

    rank: ClassVar[int] = 2
