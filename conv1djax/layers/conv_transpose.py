"""Conv1DTranspose, Conv2DTranspose, Conv3DTranspose: one N-d transposed
convolution spec and its thin ranks, with the pure
``conv{1,2,3}d_transpose_init`` / ``..._apply`` functions."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from conv1djax import stream_contract
from conv1djax._typing import Params, ShapeLike
from conv1djax.layers.base import FilteredConv
from conv1djax.layers.conv import Conv1D, check_spec
from conv1djax.lowering import reference


@dataclasses.dataclass(frozen=True)
class _ConvTranspose(FilteredConv):
    """Keras's transposed-convolution arguments, shared by every rank, plus
    ``groups`` (an extension, PyTorch's meaning)."""

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str | int | tuple = "valid"
    output_padding: int | tuple[int, ...] | None = None
    data_format: str | None = "channels_last"
    dilation_rate: int | tuple[int, ...] = 1
    groups: int = 1
    activation: Any = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None
    impl: str = "auto"
    padding_mode: str = "zeros"

    transposed: ClassVar[bool] = True
    # The PyTorch module of the same weights (conv1djax.interop).
    torch_module: ClassVar[str | None] = "transposed"

    # ---- streaming: as the stride-1 convolution of the zero-stuffed input --

    def stream_timing(self) -> stream_contract.Timing:
        """A transposed convolution streams as the equivalent stride-1
        convolution over its input zero-stuffed ``x[0], 0, ..., x[1], ...``
        (``strides`` steps per input step), padded by its ``(left, right)``,
        of which the stuffing's trailing ``strides - 1`` zeros are already
        part; a right padding smaller than those holds outputs back.

        Raises:
          TypeError: for a layer that is not 1-D.
        """
        stream_contract.require_1d(self)
        k_eff = self._stream_extent()
        (stride,) = cast(tuple[int], self.strides)  # canonical: one per axis
        (left, right), = self.paddings((4 * k_eff,))  # fmt: skip
        right -= stride - 1
        hold = max(-right, 0)
        return stream_contract.Timing(
            latency=k_eff - 1 - left + hold, tail=max(right, 0), rate=stride,
            history=k_eff - 1, span=k_eff - 1, stuff=True, hold=hold,
        )  # fmt: skip

    def _stream_conv(self, params: Params) -> tuple[Conv1D, Params]:
        """The stride-1 ``Conv1D`` over the zero-stuffed input, and its params
        (the kernel regrouped and flipped)."""
        params = self.merged_params(params)  # LoRA's effective kernel
        kernel = reference.transpose_kernel(jnp.asarray(params["kernel"]), self.groups)
        forward = {"kernel": kernel}
        if self.use_bias:
            forward["bias"] = params["bias"]
        return _forward_spec(self), forward

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.groups == 1:
            # Keras's transposed layers have no `groups`; leaving the default
            # out keeps the config loadable by keras.layers.Conv*DTranspose.
            del config["groups"]
        return config


@dataclasses.dataclass(frozen=True)
class Conv1DTranspose(_ConvTranspose):
    """Spec of a 1-D transposed convolution layer, Keras 3's ``Conv1DTranspose``.

    The adjoint of a :class:`~conv1djax.Conv1D`: it maps a convolution's
    output shape back to its input shape. The kernel has Keras's layout
    ``(kernel_size, filters // groups, channels)``. Output lengths follow
    Keras exactly: with ``padding="valid"``, ``(L - 1) * strides + max(k_eff,
    strides)`` by default; with ``"same"``, ``L * strides``; an explicit
    ``output_padding`` changes both as documented in
    :func:`conv1djax.conv_transpose_output_length`.

    Args:
      filters, kernel_size, strides, data_format: as for
        :class:`~conv1djax.Conv1D`.
      dilation_rate, activation, use_bias: as for :class:`~conv1djax.Conv1D`.
      kernel_initializer, bias_initializer: as for :class:`~conv1djax.Conv1D`.
      kernel_regularizer, bias_regularizer, activity_regularizer: as for
        :class:`~conv1djax.Conv1D`.
      kernel_constraint, bias_constraint: as for :class:`~conv1djax.Conv1D`.
      padding: "valid" or "same" (any case); "causal" is refused. Or an
        explicit padding with PyTorch's ``ConvTranspose1d`` meaning (not a
        Keras argument): the full output ``(L - 1) * strides + k_eff`` is
        cropped by an int on both sides, or by ``(left, right)`` given as
        ``((left, right),)``.
      output_padding: None, or an int (or 1-tuple) smaller than ``strides``:
        extra steps added on the right of the output. With an explicit
        padding, None means 0 and the bound is ``max(strides,
        dilation_rate)``, PyTorch's rule.
      groups: an extension over Keras, with PyTorch's meaning: channels and
        filters are split into this many independent groups.
      impl: as for :class:`~conv1djax.Conv1D`.
      padding_mode: "zeros" only, as PyTorch's transposed convolutions take.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv1DTranspose(8, 3, strides=2, padding="same")
    >>> params = layer.init(jax.random.key(0), (2, 10, 4))
    >>> params["kernel"].shape
    (3, 8, 4)
    >>> layer.apply(params, jnp.ones((2, 10, 4))).shape
    (2, 20, 8)
    """

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class Conv2DTranspose(_ConvTranspose):
    """Spec of a 2-D transposed convolution layer, Keras 3's
    ``Conv2DTranspose``.

    The kernel has Keras's layout ``(*kernel_size, filters // groups,
    channels)``; output lengths follow Keras's rule on each axis (see
    :func:`conv1djax.conv_transpose_output_length`).

    Args:
      filters: number of output channels.
      kernel_size, strides, dilation_rate: an int or a pair.
      padding: "valid" or "same", any case; or an explicit padding, as for
        :class:`Conv1DTranspose`, with an int or a ``(left, right)`` pair per
        axis.
      output_padding: None, or an int or a pair, each smaller than the
        stride on its axis (see :class:`Conv1DTranspose` for an explicit
        padding).
      data_format, activation, use_bias, impl: as for :class:`~conv1djax.Conv2D`.
      kernel_initializer, bias_initializer: as for :class:`~conv1djax.Conv2D`.
      kernel_regularizer, bias_regularizer, activity_regularizer: as for
        :class:`~conv1djax.Conv2D`.
      kernel_constraint, bias_constraint: as for :class:`~conv1djax.Conv2D`.
      padding_mode: "zeros" only, as for :class:`Conv1DTranspose`.
      groups: an extension over Keras, as for :class:`Conv1DTranspose`.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv2DTranspose(3, 4, strides=2, padding="same")
    >>> params = layer.init(jax.random.key(0), (None, 8, 8, 16))
    >>> params["kernel"].shape
    (4, 4, 3, 16)
    >>> layer.apply(params, jnp.ones((2, 8, 8, 16))).shape
    (2, 16, 16, 3)
    """

    rank: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class Conv3DTranspose(_ConvTranspose):
    """Spec of a 3-D transposed convolution layer, Keras 3's
    ``Conv3DTranspose``.

    The arguments are :class:`Conv2DTranspose`'s, with triples for the
    per-axis ones; the kernel is ``(*kernel_size, filters // groups,
    channels)``.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv3DTranspose(2, 3, strides=(2, 2, 1))
    >>> params = layer.init(jax.random.key(0), (None, 4, 4, 4, 3))
    >>> params["kernel"].shape
    (3, 3, 3, 2, 3)
    >>> layer.apply(params, jnp.ones((1, 4, 4, 4, 3))).shape
    (1, 9, 9, 6, 2)
    """

    rank: ClassVar[int] = 3


# ---- pure functions ------------------------------------------------------------


def conv1d_transpose_init(
    layer: Conv1DTranspose,
    key: jax.Array | int,
    input_shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
) -> dict[str, jax.Array]:
    """Creates the params of a :class:`Conv1DTranspose`.

    Args:
      layer: the spec.
      key: a JAX PRNG key, or an int seed (read as ``jax.random.key(seed)``).
      input_shape: the full input shape; entries other than the channel axis
        may be None.
      dtype: the params' floating dtype; None (default): the spec's
        ``variable_dtype`` (float32 unless its policy says otherwise).

    Returns:
      ``{"kernel": (kernel_size, filters // groups, channels), "bias":
          (filters,)}``, without ``"bias"`` when ``use_bias=False``.

    Raises:
      ValueError: for an unknown channel count, channels not divisible by
        ``groups`` or a rank below 3.
      TypeError: when ``layer`` is not a Conv1DTranspose.

    >>> import jax, conv1djax as cj
    >>> layer = cj.Conv1DTranspose(6, 4, strides=2)
    >>> params = cj.conv1d_transpose_init(layer, jax.random.key(0), (None, 10, 3))
    >>> {k: v.shape for k, v in params.items()}
    {'kernel': (4, 6, 3), 'bias': (6,)}
    """
    check_spec(layer, Conv1DTranspose, "conv1d_transpose_init")
    return layer.init(key, input_shape, dtype=dtype)


def conv1d_transpose_apply(
    layer: Conv1DTranspose, params: Params, x: ArrayLike
) -> jax.Array:
    """Applies a :class:`Conv1DTranspose`: ``activation(conv_transpose(x,
    kernel) + bias)``.

    Args:
      layer: the spec.
      params: ``{"kernel", "bias"}`` as made by :func:`conv1d_transpose_init`.
      x: ``batch_shape + (steps, channels)`` (or ``(channels, steps)``).

    Returns:
      ``batch_shape + (new_steps, filters)`` (or ``(filters, new_steps)``),
          with ``new_steps = conv_transpose_output_length(steps, ...)``.

    Raises:
      ValueError: when params do not fit the input, or the rank is below 3.
      TypeError: when ``layer`` is not a Conv1DTranspose.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1DTranspose(1, 2, strides=2, use_bias=False)
    >>> params = {"kernel": jnp.array([1.0, 10.0]).reshape(2, 1, 1)}
    >>> cj.conv1d_transpose_apply(layer, params, jnp.array([[[1.0], [2.0]]]))[0, :, 0]
    Array([ 1., 10.,  2., 20.], dtype=float32)
    """
    check_spec(layer, Conv1DTranspose, "conv1d_transpose_apply")
    return layer.apply(params, x)


def conv2d_transpose_init(
    layer: Conv2DTranspose,
    key: jax.Array | int,
    input_shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
) -> dict[str, jax.Array]:
    """Creates the params of a :class:`Conv2DTranspose`.

    Args:
      layer: the spec.
      key: a JAX PRNG key, or an int seed (read as ``jax.random.key(seed)``).
      input_shape: ``batch_shape + (rows, cols, channels)`` (or channels
        first); entries other than the channel axis may be None.
      dtype: the params' floating dtype; None (default): the spec's
        ``variable_dtype`` (float32 unless its policy says otherwise).

    Returns:
      ``{"kernel": (*kernel_size, filters // groups, channels), "bias":
          (filters,)}``, without ``"bias"`` when ``use_bias=False``.

    Raises:
      ValueError: as :func:`conv1d_transpose_init`, for rank-4 inputs.
      TypeError: when ``layer`` is not a Conv2DTranspose.

    >>> import jax, conv1djax as cj
    >>> layer = cj.Conv2DTranspose(6, (2, 3), strides=2)
    >>> params = cj.conv2d_transpose_init(layer, jax.random.key(0), (None, 5, 5, 3))
    >>> params["kernel"].shape
    (2, 3, 6, 3)
    """
    check_spec(layer, Conv2DTranspose, "conv2d_transpose_init")
    return layer.init(key, input_shape, dtype=dtype)


def conv2d_transpose_apply(
    layer: Conv2DTranspose, params: Params, x: ArrayLike
) -> jax.Array:
    """Applies a :class:`Conv2DTranspose`.

    Args:
      layer: the spec.
      params: ``{"kernel", "bias"}`` as made by :func:`conv2d_transpose_init`.
      x: ``batch_shape + (rows, cols, channels)`` (or channels first).

    Returns:
      ``batch_shape + (new_rows, new_cols, filters)`` (or channels first).

    Raises:
      ValueError: when params do not fit the input, or the rank is below 4.
      TypeError: when ``layer`` is not a Conv2DTranspose.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv2DTranspose(1, 2, strides=2, use_bias=False)
    >>> kernel = jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    >>> y = cj.conv2d_transpose_apply(layer, {"kernel": kernel}, jnp.ones((1, 1, 2, 1)))
    >>> y[0, :, :, 0]
    Array([[1., 2., 1., 2.],
           [3., 4., 3., 4.]], dtype=float32)
    """
    check_spec(layer, Conv2DTranspose, "conv2d_transpose_apply")
    return layer.apply(params, x)


def conv3d_transpose_init(
    layer: Conv3DTranspose,
    key: jax.Array | int,
    input_shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
) -> dict[str, jax.Array]:
    """Creates the params of a :class:`Conv3DTranspose`.

    Args:
      layer: the spec.
      key: a JAX PRNG key, or an int seed (read as ``jax.random.key(seed)``).
      input_shape: ``batch_shape + (dim1, dim2, dim3, channels)`` (or
        channels first); entries other than the channel axis may be None.
      dtype: the params' floating dtype; None (default): the spec's
        ``variable_dtype`` (float32 unless its policy says otherwise).

    Returns:
      ``{"kernel": (*kernel_size, filters // groups, channels), "bias":
          (filters,)}``, without ``"bias"`` when ``use_bias=False``.

    Raises:
      ValueError: as :func:`conv1d_transpose_init`, for rank-5 inputs.
      TypeError: when ``layer`` is not a Conv3DTranspose.

    >>> import jax, conv1djax as cj
    >>> layer = cj.Conv3DTranspose(2, 2, strides=2)
    >>> params = cj.conv3d_transpose_init(layer, jax.random.key(0), (None, 4, 4, 4, 8))
    >>> params["kernel"].shape
    (2, 2, 2, 2, 8)
    """
    check_spec(layer, Conv3DTranspose, "conv3d_transpose_init")
    return layer.init(key, input_shape, dtype=dtype)


def conv3d_transpose_apply(
    layer: Conv3DTranspose, params: Params, x: ArrayLike
) -> jax.Array:
    """Applies a :class:`Conv3DTranspose`.

    Args:
      layer: the spec.
      params: ``{"kernel", "bias"}`` as made by :func:`conv3d_transpose_init`.
      x: ``batch_shape + (dim1, dim2, dim3, channels)`` (or channels first).

    Returns:
      ``batch_shape + (*new_dims, filters)`` (or channels first).

    Raises:
      ValueError: when params do not fit the input, or the rank is below 5.
      TypeError: when ``layer`` is not a Conv3DTranspose.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv3DTranspose(2, 2, strides=2, padding="same")
    >>> params = layer.init(jax.random.key(0), (None, 3, 3, 3, 4))
    >>> cj.conv3d_transpose_apply(layer, params, jnp.ones((1, 3, 3, 3, 4))).shape
    (1, 6, 6, 6, 2)
    """
    check_spec(layer, Conv3DTranspose, "conv3d_transpose_apply")
    return layer.apply(params, x)


@functools.lru_cache(maxsize=256)
def _forward_spec(layer: _ConvTranspose) -> Conv1D:
    return Conv1D(
        layer.filters, layer.kernel_size, padding="valid",
        data_format=layer.data_format, dilation_rate=layer.dilation_rate,
        groups=layer.groups, activation=layer.activation, use_bias=layer.use_bias,
        dtype=layer.dtype, param_dtype=layer.param_dtype,
    )  # fmt: skip
