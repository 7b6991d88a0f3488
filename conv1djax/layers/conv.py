"""Conv1D, Conv2D, Conv3D: one N-d convolution spec and its thin ranks, with
the pure ``conv{1,2,3}d_init`` / ``conv{1,2,3}d_apply`` functions.

Everything numeric is in :class:`conv1djax.layers.base.FilteredConv` and the
lowering it calls; a rank only fixes how many spatial axes the spec has.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
from jax.typing import ArrayLike, DTypeLike

from conv1djax._typing import Params, ShapeLike
from conv1djax.layers.base import FilteredConv


@dataclasses.dataclass(frozen=True)
class _Conv(FilteredConv):
    """Keras's convolution arguments, shared by every rank."""

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str | int | tuple = "valid"
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

    transposed: ClassVar[bool] = False
    # The PyTorch module of the same weights (conv1djax.interop).
    torch_module: ClassVar[str | None] = "conv"
    _KERAS_LORA: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class Conv1D(_Conv):
    """Spec of a 1-D convolution layer, Keras 3's ``Conv1D``.

    Computes ``activation(conv1d(x, kernel) + bias)`` over inputs of shape
    ``batch_shape + (steps, channels)`` (or ``batch_shape + (channels,
    steps)`` with ``data_format="channels_first"``), one or more batch axes.
    The kernel has Keras's layout ``(kernel_size, channels // groups,
    filters)``.

    Args:
      filters: number of output channels.
      kernel_size: int or 1-tuple, the window length.
      strides: int or 1-tuple; > 1 is incompatible with ``dilation_rate`` > 1.
      padding: "valid", "same" (TensorFlow's: the odd extra element on the
        right) or "causal" (``output[t]`` never depends on ``input[t+1:]``);
        any case. Or an explicit padding, PyTorch's (not a Keras argument:
        Keras cannot read such a config): an int for both sides, or a
        1-tuple holding an int or a ``(left, right)`` pair; ``padding=1``,
        ``(1,)`` and ``((1, 1),)`` give equal specs.
      data_format: "channels_last" (default; None means it too) or
        "channels_first".
      dilation_rate: int or 1-tuple.
      groups: input channels and filters are split into this many groups.
      activation: None, a Keras activation name, or a callable.
      use_bias: whether a bias vector is added.
      kernel_initializer, bias_initializer: Keras names, config dicts,
        :mod:`conv1djax.initializers` objects or callables
        ``(key, shape, dtype) -> array``.
      kernel_regularizer, bias_regularizer, activity_regularizer: Keras names,
        :mod:`conv1djax.regularizers` objects or callables
        ``weights -> scalar``; loss terms, used in training.
      kernel_constraint, bias_constraint: Keras names,
        :mod:`conv1djax.constraints` objects or callables
        ``weights -> weights``; projections applied after each update.
      impl: how the convolution is lowered, not a Keras argument: "auto"
        (default: chosen at trace time from static shapes and the platform),
        "reference" (one ``lax.conv_general_dilated``, as Keras calls it), or
        a core forced on CPU's rewrites: "direct", "im2col", "eigen", "blockdiag",
        "split", "shift", "fft", "ncw". All give the same numbers up to float32 rounding.
      padding_mode: what the padding is filled with, PyTorch's argument, not
        Keras's: "zeros" (default, left out of ``get_config``), "reflect",
        "replicate" or "circular" (any case); for an explicit padding and the
        amounts "same" and "causal" compute alike. PyTorch's limits hold:
        "reflect" pads less than the input length on each side, "circular"
        at most that.
      dtype: Keras's dtype policy (keyword-only, every spec takes it): None
        (default: float32 params, computed in the kernel's dtype),
        "mixed_bfloat16" or "mixed_float16" (float32 params, the input and
        params cast to bfloat16 / float16 for the convolution, the output in
        it), or a floating dtype's name (params and computation in it); or
        Keras's ``DTypePolicy`` or its config dict.
      param_dtype: the params' dtype at ``init`` (keyword-only; not a Keras
        argument); None (default): the policy's variable dtype, float32
        without one.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> mixed = cj.Conv1D(8, 3, dtype="mixed_bfloat16")
    >>> params = mixed.init(jax.random.key(0), (None, 16, 4))
    >>> params["kernel"].dtype, mixed.apply(params, jnp.ones((2, 16, 4))).dtype
    (dtype('float32'), dtype(bfloat16))
    >>> layer = cj.Conv1D(32, 3, activation="relu")
    >>> params = layer.init(jax.random.key(0), (4, 10, 128))
    >>> params["kernel"].shape, params["bias"].shape
    ((3, 128, 32), (32,))
    >>> layer.apply(params, jnp.ones((4, 7, 10, 128))).shape
    (4, 7, 8, 32)
    >>> torch_style = cj.Conv1D(4, 3, padding=1, padding_mode="reflect")
    >>> torch_style.padding, torch_style.compute_output_shape((2, 10, 3))
    (((1, 1),), (2, 10, 4))
    """

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class Conv2D(_Conv):
    """Spec of a 2-D convolution layer, Keras 3's ``Conv2D``.

    Computes ``activation(conv2d(x, kernel) + bias)`` over inputs of shape
    ``batch_shape + (rows, cols, channels)`` (or ``batch_shape + (channels,
    rows, cols)`` with ``data_format="channels_first"``). The kernel has
    Keras's layout ``(*kernel_size, channels // groups, filters)``.

    Args:
      filters: number of output channels.
      kernel_size, strides, dilation_rate: an int (the same for both axes) or
        a pair; strides > 1 on any axis is incompatible with dilation > 1 on
        any axis, as in Keras.
      padding: "valid" or "same" (TensorFlow's rule on each axis), any case;
        "causal" is 1-D only. Or an explicit padding, PyTorch's: an int for
        every side, or a pair with an int or a ``(left, right)`` pair per
        axis.
      data_format, groups, activation, use_bias: as for :class:`Conv1D`.
      kernel_initializer, bias_initializer: as for :class:`Conv1D`.
      kernel_regularizer, bias_regularizer, activity_regularizer: as for
        :class:`Conv1D`.
      kernel_constraint, bias_constraint: as for :class:`Conv1D`.
      impl: as for :class:`Conv1D`, without the 1-D cores "fft" and "ncw".
      padding_mode: as for :class:`Conv1D`.

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv2D(16, 3, strides=2, padding="same", groups=4)
    >>> params = layer.init(jax.random.key(0), (None, 32, 32, 8))
    >>> params["kernel"].shape
    (3, 3, 2, 16)
    >>> layer.apply(params, jnp.ones((2, 32, 32, 8))).shape
    (2, 16, 16, 16)
    """

    rank: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class Conv3D(_Conv):
    """Spec of a 3-D convolution layer, Keras 3's ``Conv3D``.

    Inputs are ``batch_shape + (dim1, dim2, dim3, channels)`` (or
    ``(channels, dim1, dim2, dim3)`` with ``data_format="channels_first"``);
    the kernel is ``(*kernel_size, channels // groups, filters)``. The
    arguments are :class:`Conv2D`'s, with triples for the per-axis ones.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Conv3D(4, (3, 3, 1), data_format="channels_first")
    >>> params = layer.init(jax.random.key(0), (1, 2, 8, 8, 8))
    >>> params["kernel"].shape
    (3, 3, 1, 2, 4)
    >>> layer.apply(params, jnp.ones((1, 2, 8, 8, 8))).shape
    (1, 4, 6, 6, 8)
    """

    rank: ClassVar[int] = 3


# ---- pure functions ------------------------------------------------------------


def check_spec(layer: object, expected: type, fn: str) -> None:
    """Raises ``TypeError`` unless ``layer`` is an ``expected`` spec."""
    if not isinstance(layer, expected):
        raise TypeError(
            f"{fn} expects a {expected.__name__} spec as `layer`; received "
            f"{layer!r} of type {type(layer).__name__}."
        )


def conv1d_init(
    layer: Conv1D,
    key: jax.Array | int,
    input_shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
) -> dict[str, jax.Array]:
    """Creates the params of a :class:`Conv1D` for inputs of ``input_shape``.

    Args:
      layer: the spec.
      key: a JAX PRNG key, or an int seed (read as ``jax.random.key(seed)``).
      input_shape: the full input shape, ``batch_shape + (steps, channels)``
        (or ``(channels, steps)`` for channels_first); entries other than the
        channel axis may be None.
      dtype: the params' floating dtype; None (default): the spec's
        ``variable_dtype`` (float32 unless its policy says otherwise).

    Returns:
      ``{"kernel": (kernel_size, channels // groups, filters), "bias":
          (filters,)}``, without ``"bias"`` when ``use_bias=False``.

    Raises:
      ValueError: for an unknown channel count, channels not divisible by
        ``groups``, a rank below 3, or an input too short for the kernel.
      TypeError: when ``layer`` is not a Conv1D.

    >>> import jax, conv1djax as cj
    >>> params = cj.conv1d_init(cj.Conv1D(8, 5, groups=2), jax.random.key(0), (None, 100, 4))
    >>> {k: v.shape for k, v in params.items()}
    {'kernel': (5, 2, 8), 'bias': (8,)}
    """
    check_spec(layer, Conv1D, "conv1d_init")
    return layer.init(key, input_shape, dtype=dtype)


def conv1d_apply(layer: Conv1D, params: Params, x: ArrayLike) -> jax.Array:
    """Applies a :class:`Conv1D`: ``activation(conv1d(x, kernel) + bias)``.

    A pure function of its arguments: it works under ``jax.jit`` (with
    ``layer`` static), ``jax.grad`` and ``jax.vmap``. The input is cast to the
    compute dtype (the kernel's, or the policy's when ``layer.dtype`` is set),
    as Keras does.

    Args:
      layer: the spec.
      params: ``{"kernel", "bias"}`` as made by :func:`conv1d_init` (or taken
        from Keras's ``get_weights()``: the layouts are the same).
      x: ``batch_shape + (steps, channels)`` for channels_last, ``batch_shape
        + (channels, steps)`` for channels_first.

    Returns:
      ``batch_shape + (new_steps, filters)`` (or ``(filters, new_steps)``),
          with ``new_steps = conv_output_length(steps, ...)``.

    Raises:
      ValueError: when params do not fit the input's channels, lack a kernel,
        the input's rank is below 3, or the input is too short.
      TypeError: when ``layer`` is not a Conv1D or the input is complex.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(2, 3, padding="causal", use_bias=False)
    >>> params = {"kernel": jnp.ones((3, 1, 2))}
    >>> cj.conv1d_apply(layer, params, jnp.arange(4.0).reshape(1, 4, 1))[0, :, 0]
    Array([0., 1., 3., 6.], dtype=float32)
    """
    check_spec(layer, Conv1D, "conv1d_apply")
    return layer.apply(params, x)


def conv2d_init(
    layer: Conv2D,
    key: jax.Array | int,
    input_shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
) -> dict[str, jax.Array]:
    """Creates the params of a :class:`Conv2D` for inputs of ``input_shape``.

    Args:
      layer: the spec.
      key: a JAX PRNG key, or an int seed (read as ``jax.random.key(seed)``).
      input_shape: ``batch_shape + (rows, cols, channels)`` (or ``(channels,
        rows, cols)``); entries other than the channel axis may be None.
      dtype: the params' floating dtype; None (default): the spec's
        ``variable_dtype`` (float32 unless its policy says otherwise).

    Returns:
      ``{"kernel": (*kernel_size, channels // groups, filters), "bias":
          (filters,)}``, without ``"bias"`` when ``use_bias=False``.

    Raises:
      ValueError: as :func:`conv1d_init`, for rank-4 inputs.
      TypeError: when ``layer`` is not a Conv2D.

    >>> import jax, conv1djax as cj
    >>> params = cj.conv2d_init(cj.Conv2D(8, (3, 5)), jax.random.key(0), (None, 28, 28, 1))
    >>> {k: v.shape for k, v in params.items()}
    {'kernel': (3, 5, 1, 8), 'bias': (8,)}
    """
    check_spec(layer, Conv2D, "conv2d_init")
    return layer.init(key, input_shape, dtype=dtype)


def conv2d_apply(layer: Conv2D, params: Params, x: ArrayLike) -> jax.Array:
    """Applies a :class:`Conv2D`: ``activation(conv2d(x, kernel) + bias)``.

    Args:
      layer: the spec.
      params: ``{"kernel", "bias"}`` as made by :func:`conv2d_init` or taken
        from Keras's ``get_weights()``.
      x: ``batch_shape + (rows, cols, channels)`` (or ``(channels, rows,
        cols)``).

    Returns:
      ``batch_shape + (new_rows, new_cols, filters)`` (or channels first).

    Raises:
      ValueError: when params do not fit the input, the rank is below 4, or
        the input is too short.
      TypeError: when ``layer`` is not a Conv2D or the input is complex.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv2D(1, 2, use_bias=False)
    >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    >>> cj.conv2d_apply(layer, {"kernel": jnp.ones((2, 2, 1, 1))}, x)[0, :, :, 0]
    Array([[ 8., 12.],
           [20., 24.]], dtype=float32)
    """
    check_spec(layer, Conv2D, "conv2d_apply")
    return layer.apply(params, x)


def conv3d_init(
    layer: Conv3D,
    key: jax.Array | int,
    input_shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
) -> dict[str, jax.Array]:
    """Creates the params of a :class:`Conv3D` for inputs of ``input_shape``.

    Args:
      layer: the spec.
      key: a JAX PRNG key, or an int seed (read as ``jax.random.key(seed)``).
      input_shape: ``batch_shape + (dim1, dim2, dim3, channels)`` (or
        channels first); entries other than the channel axis may be None.
      dtype: the params' floating dtype; None (default): the spec's
        ``variable_dtype`` (float32 unless its policy says otherwise).

    Returns:
      ``{"kernel": (*kernel_size, channels // groups, filters), "bias":
          (filters,)}``, without ``"bias"`` when ``use_bias=False``.

    Raises:
      ValueError: as :func:`conv1d_init`, for rank-5 inputs.
      TypeError: when ``layer`` is not a Conv3D.

    >>> import jax, conv1djax as cj
    >>> params = cj.conv3d_init(cj.Conv3D(4, 3), jax.random.key(0), (None, 8, 8, 8, 2))
    >>> params["kernel"].shape
    (3, 3, 3, 2, 4)
    """
    check_spec(layer, Conv3D, "conv3d_init")
    return layer.init(key, input_shape, dtype=dtype)


def conv3d_apply(layer: Conv3D, params: Params, x: ArrayLike) -> jax.Array:
    """Applies a :class:`Conv3D`: ``activation(conv3d(x, kernel) + bias)``.

    Args:
      layer: the spec.
      params: ``{"kernel", "bias"}`` as made by :func:`conv3d_init`.
      x: ``batch_shape + (dim1, dim2, dim3, channels)`` (or channels first).

    Returns:
      ``batch_shape + (*new_dims, filters)`` (or channels first).

    Raises:
      ValueError: when params do not fit the input, the rank is below 5, or
        the input is too short.
      TypeError: when ``layer`` is not a Conv3D or the input is complex.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv3D(4, 3, padding="same")
    >>> params = layer.init(jax.random.key(0), (None, 6, 6, 6, 2))
    >>> cj.conv3d_apply(layer, params, jnp.ones((2, 6, 6, 6, 2))).shape
    (2, 6, 6, 6, 4)
    """
    check_spec(layer, Conv3D, "conv3d_apply")
    return layer.apply(params, x)
