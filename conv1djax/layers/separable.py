"""SeparableConv1D, SeparableConv2D: a depthwise convolution, then a
pointwise (1 x 1) one, then the bias: Keras's ``separable_conv``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp

from conv1djax import (
    _validation,
    constraints,
    initializers,
    lowering,
    regularizers,
)
from conv1djax._typing import Pads
from conv1djax.layers.base import ConvBase
from conv1djax.layers.depthwise import _DepthwiseConv, depthwise_conv


@dataclasses.dataclass(frozen=True)
class _SeparableConv(ConvBase):
    """Keras's separable-convolution arguments, shared by every rank."""

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str | int | tuple = "valid"
    data_format: str | None = "channels_last"
    dilation_rate: int | tuple[int, ...] = 1
    depth_multiplier: int = 1
    activation: Any = None
    use_bias: bool = True
    depthwise_initializer: Any = "glorot_uniform"
    pointwise_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    depthwise_regularizer: Any = None
    pointwise_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    depthwise_constraint: Any = None
    pointwise_constraint: Any = None
    bias_constraint: Any = None
    impl: str = "auto"
    padding_mode: str = "zeros"

    # The depthwise layer's objects, and the pointwise kernel's.
    _REGISTRIES: ClassVar[Mapping[str, Any]] = {
        **_DepthwiseConv._REGISTRIES,
        "pointwise_initializer": initializers,
        "pointwise_regularizer": regularizers,
        "pointwise_constraint": constraints,
    }
    _COMPUTE_PARAM: ClassVar[str] = "depthwise_kernel"
    # Beyond Keras: LoRA adapts the pointwise kernel, which holds nearly all
    # the weights; the depthwise kernel (k * C * m values) stays trainable.
    _LORA_KERNEL: ClassVar[str] = "pointwise_kernel"

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)
        put("filters", _validation.positive_int(self.filters, "filters"))
        put(
            "depth_multiplier",
            _validation.positive_int(self.depth_multiplier, "depth_multiplier"),
        )

    def _param_shapes(self, channels: int) -> dict[str, tuple[int, ...]]:
        kernel_size = cast(tuple[int, ...], self.kernel_size)  # canonical
        shapes = {
            "depthwise_kernel": (*kernel_size, channels, self.depth_multiplier),
            "pointwise_kernel": (
                *(1,) * self.rank,
                channels * self.depth_multiplier,
                self.filters,
            ),
        }
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def _out_channels(self, channels: int) -> int:
        del channels
        return self.filters

    def _convolve(
        self, params: Mapping[str, jax.Array], x: jax.Array, pads: Pads
    ) -> jax.Array:
        y = depthwise_conv(self, params["depthwise_kernel"], x, pads)
        ones = (1,) * self.rank
        return lowering.conv(
            y,
            jnp.asarray(params["pointwise_kernel"], y.dtype),  # as Keras casts it
            strides=ones,
            padding=((0, 0),) * self.rank,
            dilation_rate=ones,
            groups=1,
            channels_first=self.data_format == "channels_first",
            # A forced core is for the depthwise step; the 1 x 1 step is dense.
            impl="reference" if self.impl == "reference" else "auto",
        )

    def _describe(self) -> str:
        return (
            f"{type(self).__name__}(filters={self.filters}, kernel_size="
            f"{self.kernel_size}, depth_multiplier={self.depth_multiplier})"
        )


@dataclasses.dataclass(frozen=True)
class SeparableConv1D(_SeparableConv):
    """Spec of a 1-D separable convolution layer, Keras 3's
    ``SeparableConv1D``.

    A depthwise convolution (each of the ``C`` input channels with its own
    ``depth_multiplier`` filters), then a pointwise convolution mixing the
    ``C * depth_multiplier`` channels into ``filters``, then the bias and the
    activation. Params are ``{"depthwise_kernel": (kernel_size, C,
    depth_multiplier), "pointwise_kernel": (1, C * depth_multiplier,
    filters), "bias": (filters,)}``, Keras's names and layouts.

    Args:
      filters: output channels of the pointwise step.
      kernel_size, strides, dilation_rate: ints or 1-tuples, of the depthwise
        step (Keras allows strides > 1 with dilation > 1 here).
      padding: "valid", "same" or "causal" (any case); "causal" is an
        extension over Keras 3, the left padding of a causal Conv1D. Or an
        explicit padding of the depthwise step, as for
        :class:`~conv1djax.Conv1D`.
      data_format: "channels_last" (default; None means it too) or
        "channels_first".
      depth_multiplier: depthwise filters per input channel, >= 1.
      activation, use_bias: as for :class:`~conv1djax.Conv1D`.
      bias_initializer, bias_regularizer, bias_constraint: as for
        :class:`~conv1djax.Conv1D`.
      activity_regularizer: as for :class:`~conv1djax.Conv1D`.
      depthwise_initializer, depthwise_regularizer, depthwise_constraint: the
        depthwise kernel's initializer, penalty and projection.
      pointwise_initializer, pointwise_regularizer, pointwise_constraint: the
        pointwise kernel's initializer, penalty and projection.
      impl: the depthwise step's lowering, as for :class:`~conv1djax.Conv1D`;
        the pointwise step is a dense 1 x 1 convolution.
      padding_mode: how the depthwise step's padding is filled, as for
        :class:`~conv1djax.Conv1D`.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.SeparableConv1D(8, 5, padding="same", depth_multiplier=2)
    >>> params = layer.init(jax.random.key(0), (None, 32, 4))
    >>> {k: v.shape for k, v in params.items()}
    {'depthwise_kernel': (5, 4, 2), 'pointwise_kernel': (1, 8, 8), 'bias': (8,)}
    >>> layer.apply(params, jnp.ones((2, 32, 4))).shape
    (2, 32, 8)
    """

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class SeparableConv2D(_SeparableConv):
    """Spec of a 2-D separable convolution layer, Keras 3's
    ``SeparableConv2D``.

    The arguments are :class:`SeparableConv1D`'s, with an int or a pair for
    the per-axis ones and "valid" or "same" padding; the kernels are
    ``(*kernel_size, C, depth_multiplier)`` and ``(1, 1, C *
    depth_multiplier, filters)``.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.SeparableConv2D(16, 3, padding="same")
    >>> params = layer.init(jax.random.key(0), (None, 28, 28, 8))
    >>> params["pointwise_kernel"].shape
    (1, 1, 8, 16)
    >>> layer.apply(params, jnp.ones((2, 28, 28, 8))).shape
    (2, 28, 28, 16)
    """

    rank: ClassVar[int] = 2
