"""``init`` and ``apply`` of Conv1D and Conv1DTranspose: the pure functions.

``apply`` checks everything it can from static shapes (so errors come as clear
``ValueError``s at trace time, under ``jax.jit`` too), flattens the batch axes,
calls the lowering in :mod:`conv1djax._lowering`, then adds the bias and
applies the activation: ``activation(conv(x, kernel) + bias)``, Keras's formula.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from conv1djax import _lowering
from conv1djax._specs import Conv1D, Conv1DTranspose, _ConvSpec, split_input_shape


def _check_layer(layer, expected: type, fn: str) -> None:
    if not isinstance(layer, expected):
        raise TypeError(
            f"{fn} expects a {expected.__name__} spec as `layer`; received "
            f"{layer!r} of type {type(layer).__name__}."
        )


def init(layer: _ConvSpec, key, input_shape, *, dtype=jnp.float32) -> dict:
    """Shared body of ``conv1d_init`` and ``conv1d_transpose_init``."""
    name = type(layer).__name__
    shapes = layer.param_shapes(input_shape)
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype; received dtype={dtype}.")
    kernel_key, bias_key = jax.random.split(key)
    params = {"kernel": layer.kernel_initializer(kernel_key, shapes["kernel"], dtype)}
    if layer.use_bias:
        params["bias"] = layer.bias_initializer(bias_key, shapes["bias"], dtype)
    for pname, shape in shapes.items():
        got = getattr(params[pname], "shape", None)
        if got != shape:
            initializer = (
                layer.kernel_initializer
                if pname == "kernel"
                else (layer.bias_initializer)
            )
            raise ValueError(
                f"The {pname} initializer of {name} ({initializer!r}) returned "
                f"an array of shape {got}; expected {shape}."
            )
        params[pname] = jnp.asarray(params[pname], dtype)
    return params


def _check_params(layer: _ConvSpec, params, channels: int) -> None:
    name = type(layer).__name__
    if not isinstance(params, Mapping) or "kernel" not in params:
        keys = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"{name} params must be a dict with a 'kernel' entry"
            f"{' and a bias' if layer.use_bias else ''}; received {keys}."
        )
    expected = {"kernel", "bias"} if layer.use_bias else {"kernel"}
    if set(params) != expected:
        raise ValueError(
            f"{name}(use_bias={layer.use_bias}) params must have exactly the "
            f"keys {sorted(expected)}; received {sorted(params)}."
        )
    k = layer.kernel_size[0]
    g = layer.groups
    if channels % g:
        raise ValueError(
            f"{name}(groups={g}) needs input channels divisible by groups; the "
            f"input has {channels} channels."
        )
    if layer.transposed:
        want = (k, layer.filters // g, channels)
    else:
        want = (k, channels // g, layer.filters)
    kernel_shape = tuple(jnp.shape(params["kernel"]))
    if kernel_shape != want:
        raise ValueError(
            f"params['kernel'] of shape {kernel_shape} does not fit {name}("
            f"filters={layer.filters}, kernel_size={k}, groups={g}) on an input "
            f"with {channels} channels: expected a kernel of shape {want}."
        )
    if layer.use_bias and tuple(jnp.shape(params["bias"])) != (layer.filters,):
        raise ValueError(
            f"params['bias'] has shape {tuple(jnp.shape(params['bias']))}; "
            f"{name}(filters={layer.filters}) expects ({layer.filters},)."
        )


def _as_input(x, kernel_dtype, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{name} takes real inputs; received dtype {x.dtype}.")
    # Keras casts the input to the kernel's dtype (integers included).
    return x.astype(kernel_dtype)


def apply(layer: _ConvSpec, params, x) -> jax.Array:
    """Shared body of ``conv1d_apply`` and ``conv1d_transpose_apply``."""
    name = type(layer).__name__
    x_shape = tuple(jnp.shape(x))
    batch_shape, steps, channels = split_input_shape(x_shape, layer.data_format, name)
    _check_params(layer, params, channels)
    kernel = jnp.asarray(params["kernel"])
    if not jnp.issubdtype(kernel.dtype, jnp.floating):
        raise TypeError(f"params['kernel'] must be floating; received {kernel.dtype}.")
    x = _as_input(x, kernel.dtype, name)
    layer.output_length(steps)  # a clear error for an input that is too short
    x = x.reshape((-1, *x_shape[-2:]))
    lowering = _lowering.conv1d_transpose if layer.transposed else _lowering.conv1d
    y = lowering(
        x,
        kernel,
        strides=layer.strides[0],
        padding=layer.padding_pair(steps),
        dilation_rate=layer.dilation_rate[0],
        groups=layer.groups,
        channels_first=layer.data_format == "channels_first",
        impl=layer.impl,
    )
    y = y.reshape((*batch_shape, *y.shape[1:]))
    if layer.use_bias:
        bias = jnp.asarray(params["bias"], y.dtype)
        y = y + (bias if layer.data_format == "channels_last" else bias[:, None])
    if layer.activation is not None:
        y = layer.activation(y)
    return y


def conv1d_init(layer: Conv1D, key, input_shape, *, dtype=jnp.float32) -> dict:
    """Creates the params of a :class:`Conv1D` for inputs of ``input_shape``.

    Args:
      layer: the spec.
      key: a JAX PRNG key.
      input_shape: the full input shape, ``batch_shape + (steps, channels)``
        (or ``(channels, steps)`` for channels_first); entries other than the
        channel axis may be None.
      dtype: the params' floating dtype.

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
    _check_layer(layer, Conv1D, "conv1d_init")
    return init(layer, key, input_shape, dtype=dtype)


def conv1d_apply(layer: Conv1D, params, x) -> jax.Array:
    """Applies a :class:`Conv1D`: ``activation(conv1d(x, kernel) + bias)``.

    A pure function of its arguments: it works under ``jax.jit`` (with
    ``layer`` static), ``jax.grad`` and ``jax.vmap``. The input is cast to the
    kernel's dtype, as Keras does.

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
    _check_layer(layer, Conv1D, "conv1d_apply")
    return apply(layer, params, x)


def conv1d_transpose_init(
    layer: Conv1DTranspose, key, input_shape, *, dtype=jnp.float32
) -> dict:
    """Creates the params of a :class:`Conv1DTranspose`.

    Args:
      layer: the spec.
      key: a JAX PRNG key.
      input_shape: the full input shape; entries other than the channel axis
        may be None.
      dtype: the params' floating dtype.

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
    _check_layer(layer, Conv1DTranspose, "conv1d_transpose_init")
    return init(layer, key, input_shape, dtype=dtype)


def conv1d_transpose_apply(layer: Conv1DTranspose, params, x) -> jax.Array:
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
    _check_layer(layer, Conv1DTranspose, "conv1d_transpose_apply")
    return apply(layer, params, x)
