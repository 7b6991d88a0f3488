"""Keras 3's activation functions, as pure JAX functions.

Every name that ``keras.activations.get`` accepts has a function here with the
same name, the same keyword parameters and defaults, and the same formula as
Keras 3 computes on its JAX backend (which mostly delegates to ``jax.nn``), so
values and gradients agree with Keras's.

Output dtype equals input dtype for floating inputs (float16, bfloat16,
float32 and float64 when x64 is enabled): nothing is upcast, as in Keras.

Use :func:`get` to resolve a layer's ``activation`` argument (``None``, a name
or a callable) and :func:`serialize` to turn it back into a name for configs.

>>> import jax.numpy as jnp, conv1djax as cj
>>> cj.activations.get("relu")(jnp.array([-1.0, 0.5])).tolist()
[0.0, 0.5]
>>> cj.activations.serialize(cj.activations.get("swish"))
'silu'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jax import nn as jnn
from jax.typing import ArrayLike

from conv1djax._registry import Registry

_T = TypeVar("_T")

__all__ = [
    "celu",
    "elu",
    "exponential",
    "gelu",
    "get",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
]


# --------------------------------------------------------------------------
# Rectifiers.


def relu(
    x: ArrayLike,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> jax.Array:
    """Rectified linear unit, with Keras's optional slope, cap and threshold.

    With the defaults, ``relu(x) = max(x, 0)``. In general (as in Keras)::

        y = x if x > threshold else 0      (plain max(x, 0) when threshold == 0)
        y = clip(y, 0, max_value)          (when max_value is not None)
        y = y - negative_slope * max(threshold - x, 0)

    Args:
      x: Input array.
      negative_slope: Slope for values below ``threshold``.
      max_value: Largest value the function returns, or ``None`` for no cap.
      threshold: Values at or below it are damped (or set to zero).

    Returns:
      An array with the shape and dtype of ``x``.

    >>> x = jnp.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    >>> print(relu(x))
    [ 0.  0.  0.  5. 10.]
    >>> print(relu(x, negative_slope=0.5, max_value=5.0))
    [-5.  -2.5  0.   5.   5. ]
    """
    x = jnp.asarray(x)
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return jnn.leaky_relu(x, negative_slope=negative_slope)
        negative_part: jax.Array | int = (
            jnn.relu(-x + threshold) if threshold != 0 else jnn.relu(-x)
        )
    else:
        negative_part = 1

    clip_max = max_value is not None
    if threshold != 0:
        # x where x > threshold, else 0.
        x = jnp.where(jnp.greater(x, jnp.asarray(threshold, dtype=x.dtype)), x, 0)
    elif max_value == 6:
        # Keras uses the fused relu6 (and its gradient) here.
        x = jnn.relu6(x)
        clip_max = False
    else:
        x = jnn.relu(x)

    if clip_max:
        min_value = jnp.asarray(0.0, dtype=x.dtype)
        x = jnp.clip(x, min_value, jnp.asarray(max_value, dtype=x.dtype))

    if negative_slope != 0.0:
        x = x - negative_slope * negative_part
    return x


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> jax.Array:
    """Leaky rectified linear unit.

    ``leaky_relu(x) = x if x >= 0 else negative_slope * x``.

    Args:
      x: Input array.
      negative_slope: Slope for negative inputs. Keras's default is 0.2
        (``jax.nn.leaky_relu``'s is 0.01).

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in leaky_relu(jnp.array([-2.0, 3.0])).tolist()]
    [-0.4, 3.0]
    """
    x = jnp.asarray(x)
    return jnn.leaky_relu(x, negative_slope=negative_slope)


def relu6(x: ArrayLike) -> jax.Array:
    """ReLU capped at 6.

    ``relu6(x) = min(max(x, 0), 6)``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(relu6(jnp.array([-1.0, 3.0, 9.0])))
    [0. 3. 6.]
    """
    x = jnp.asarray(x)
    return jnn.relu6(x)


def elu(x: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit.

    ``elu(x) = x if x > 0 else alpha * (exp(x) - 1)``.

    Args:
      x: Input array.
      alpha: Scale of the negative section.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in elu(jnp.array([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    x = jnp.asarray(x)
    return jnn.elu(x, alpha=alpha)


def selu(x: ArrayLike) -> jax.Array:
    """Scaled exponential linear unit.

    ``selu(x) = scale * elu(x, alpha)`` with ``alpha = 1.6732632423543772`` and
    ``scale = 1.0507009873554805``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in selu(jnp.array([-1.0, 2.0])).tolist()]
    [-1.1113, 2.1014]
    """
    x = jnp.asarray(x)
    return jnn.selu(x)


def celu(x: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """Continuously differentiable exponential linear unit.

    ``celu(x) = max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``.

    Args:
      x: Input array.
      alpha: Scale of the negative section.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in celu(jnp.array([-1.0, 2.0]), alpha=2.0).tolist()]
    [-0.7869, 2.0]
    """
    x = jnp.asarray(x)
    return jnn.celu(x, alpha=alpha)


def gelu(x: ArrayLike, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit.

    Exact (the Keras activation's default):
    ``gelu(x) = 0.5 * x * erfc(-x / sqrt(2))``. With ``approximate=True``:
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.

    Args:
      x: Input array.
      approximate: Whether to use the tanh approximation.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in gelu(jnp.array([-1.0, 1.0])).tolist()]
    [-0.1587, 0.8413]
    """
    x = jnp.asarray(x)
    return jnn.gelu(x, approximate)


# --------------------------------------------------------------------------
# Smooth and sigmoid-like functions.


def sigmoid(x: ArrayLike) -> jax.Array:
    """Logistic sigmoid.

    ``sigmoid(x) = 1 / (1 + exp(-x))``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in sigmoid(jnp.array([0.0, 2.0])).tolist()]
    [0.5, 0.8808]
    """
    x = jnp.asarray(x)
    return jnn.sigmoid(x)


def hard_sigmoid(x: ArrayLike) -> jax.Array:
    """Piecewise-linear approximation of the sigmoid.

    ``hard_sigmoid(x) = relu6(x + 3) / 6``: 0 for ``x <= -3``, 1 for
    ``x >= 3``, ``x / 6 + 0.5`` in between.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in hard_sigmoid(jnp.array([-4.0, 0.0, 1.5, 4.0])).tolist()]
    [0.0, 0.5, 0.75, 1.0]
    """
    x = jnp.asarray(x)
    return jnn.hard_sigmoid(x)


def sparse_sigmoid(x: ArrayLike) -> jax.Array:
    """Sparse sigmoid.

    ``sparse_sigmoid(x) = 0.5 * clip(x + 1, 0, 2)``: 0 for ``x <= -1``, 1 for
    ``x >= 1``, ``0.5 * (x + 1)`` in between.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(sparse_sigmoid(jnp.array([-2.0, 0.5, 2.0])))
    [0.   0.75 1.  ]
    """
    x = jnp.asarray(x)
    return jnn.sparse_sigmoid(x)


def log_sigmoid(x: ArrayLike) -> jax.Array:
    """Logarithm of the sigmoid.

    ``log_sigmoid(x) = -softplus(-x) = log(1 / (1 + exp(-x)))``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in log_sigmoid(jnp.array([-1.0, 1.0])).tolist()]
    [-1.3133, -0.3133]
    """
    x = jnp.asarray(x)
    return jnn.log_sigmoid(x)


def silu(x: ArrayLike) -> jax.Array:
    """Sigmoid linear unit, also known as swish.

    ``silu(x) = x * sigmoid(x)``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in silu(jnp.array([-1.0, 1.0])).tolist()]
    [-0.2689, 0.7311]
    """
    x = jnp.asarray(x)
    return jnn.silu(x)


def hard_silu(x: ArrayLike) -> jax.Array:
    """Hard SiLU, also known as hard swish.

    ``hard_silu(x) = x * hard_sigmoid(x) = x * relu6(x + 3) / 6``: 0 for
    ``x <= -3``, ``x`` for ``x >= 3``, ``x * (x + 3) / 6`` in between.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in hard_silu(jnp.array([-1.5, 1.5, 4.0])).tolist()]
    [-0.375, 1.125, 4.0]
    """
    x = jnp.asarray(x)
    return jnn.hard_silu(x)


def softplus(x: ArrayLike) -> jax.Array:
    """Softplus.

    ``softplus(x) = log(exp(x) + 1)``, computed as ``logaddexp(x, 0)``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in softplus(jnp.array([0.0, 1.0])).tolist()]
    [0.6931, 1.3133]
    """
    x = jnp.asarray(x)
    return jnn.softplus(x)


def softsign(x: ArrayLike) -> jax.Array:
    """Softsign.

    ``softsign(x) = x / (abs(x) + 1)``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(softsign(jnp.array([-3.0, 1.0])))
    [-0.75  0.5 ]
    """
    x = jnp.asarray(x)
    return jnn.soft_sign(x)


def squareplus(x: ArrayLike, b: float = 4) -> jax.Array:
    """Squareplus, a smooth rectifier.

    ``squareplus(x) = (x + sqrt(x**2 + b)) / 2``.

    Args:
      x: Input array.
      b: Smoothness parameter.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(squareplus(jnp.array([0.0, 1.5])))
    [1. 2.]
    """
    x = jnp.asarray(x)
    return jnn.squareplus(x, b=b)


def sparse_plus(x: ArrayLike) -> jax.Array:
    """SparsePlus.

    ``sparse_plus(x)`` is 0 for ``x <= -1``, ``x`` for ``x >= 1`` and
    ``(x + 1)**2 / 4`` in between.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(sparse_plus(jnp.array([-2.0, 0.0, 2.0])))
    [0.   0.25 2.  ]
    """
    x = jnp.asarray(x)
    return jnn.sparse_plus(x)


def mish(x: ArrayLike) -> jax.Array:
    """Mish.

    ``mish(x) = x * tanh(softplus(x))``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in mish(jnp.array([-1.0, 1.0])).tolist()]
    [-0.3034, 0.8651]
    """
    x = jnp.asarray(x)
    return x * jnp.tanh(jnn.softplus(x))


def tanh(x: ArrayLike) -> jax.Array:
    """Hyperbolic tangent.

    ``tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in tanh(jnp.array([-1.0, 0.5])).tolist()]
    [-0.7616, 0.4621]
    """
    x = jnp.asarray(x)
    return jnp.tanh(x)


def tanh_shrink(x: ArrayLike) -> jax.Array:
    """Tanh shrink.

    ``tanh_shrink(x) = x - tanh(x)``.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in tanh_shrink(jnp.array([-1.0, 2.0])).tolist()]
    [-0.2384, 1.036]
    """
    x = jnp.asarray(x)
    return x - jnp.tanh(x)


def hard_tanh(x: ArrayLike) -> jax.Array:
    """Hard tanh.

    ``hard_tanh(x)`` is -1 for ``x < -1``, 1 for ``x > 1`` and ``x`` in
    between.

    Args:
      x: Input array.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(hard_tanh(jnp.array([-2.0, 0.5, 2.0])))
    [-1.   0.5  1. ]
    """
    x = jnp.asarray(x)
    return jnn.hard_tanh(x)


def exponential(x: ArrayLike) -> jax.Array:
    """Exponential.

    ``exponential(x) = exp(x)``. Integer and boolean inputs are cast to
    float32 first, as Keras does (Keras's default float type).

    Args:
      x: Input array.

    Returns:
      An array with the shape of ``x`` and its dtype (float32 for integer or
          boolean inputs).

    >>> [round(v, 4) for v in exponential(jnp.array([0.0, 1.0])).tolist()]
    [1.0, 2.7183]
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        x = x.astype(jnp.float32)
    return jnp.exp(x)


def linear(x: _T) -> _T:
    """Identity (pass-through).

    ``linear(x) = x``; the input is returned unmodified, as in Keras.

    Args:
      x: Input array.

    Returns:
      ``x`` itself.

    >>> print(linear(jnp.array([-1.5, 2.0])))
    [-1.5  2. ]
    """
    return x


# --------------------------------------------------------------------------
# Shrinkage and thresholding.


def soft_shrink(x: ArrayLike, threshold: float = 0.5) -> jax.Array:
    """Soft shrinkage.

    ``soft_shrink(x)`` is ``x - threshold`` for ``x > threshold``,
    ``x + threshold`` for ``x < -threshold`` and 0 otherwise.

    Args:
      x: Input array.
      threshold: Half-width of the zero band.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(soft_shrink(jnp.array([-2.0, 0.25, 2.0])))
    [-1.5  0.   1.5]
    """
    x = jnp.asarray(x)
    return jnp.where(
        x > threshold,
        x - threshold,
        jnp.where(x < -threshold, x + threshold, 0.0),
    )


def hard_shrink(x: ArrayLike, threshold: float = 0.5) -> jax.Array:
    """Hard shrinkage.

    ``hard_shrink(x) = x if abs(x) > threshold else 0``.

    Args:
      x: Input array.
      threshold: Half-width of the zero band.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(hard_shrink(jnp.array([-2.0, 0.25, 2.0])))
    [-2.  0.  2.]
    """
    x = jnp.asarray(x)
    return jnp.where(jnp.abs(x) > threshold, x, 0.0)


def threshold(x: ArrayLike, threshold: float, default_value: float) -> jax.Array:
    """Threshold: keeps values above ``threshold``, replaces the others.

    ``threshold(x) = x if x > threshold else default_value``.

    Keras 3 gives this function no defaults, so the name ``"threshold"`` alone
    is refused by :func:`get`; pass e.g.
    ``functools.partial(threshold, threshold=0.5, default_value=0.0)``.

    Args:
      x: Input array.
      threshold: Values at or below it are replaced.
      default_value: The value that replaces them.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> print(threshold(jnp.array([-1.0, 0.5, 2.0]), 0.5, -3.0))
    [-3. -3.  2.]
    """
    x = jnp.asarray(x)
    return jnp.where(x > threshold, x, default_value)


# --------------------------------------------------------------------------
# Functions along an axis.


def _warn_if_size_one(x: jax.Array, axis: int | tuple[int, ...]) -> None:
    # Keras's ops.softmax warning, kept so that the same models warn.
    if isinstance(axis, int) and -x.ndim <= axis < x.ndim and x.shape[axis] == 1:
        warnings.warn(
            f"You are using a softmax over axis {axis} of a tensor of shape "
            f"{x.shape}. This axis has size 1. The softmax operation will "
            "always return the value 1, which is likely not what you "
            "intended. Did you mean to use a sigmoid instead?",
            stacklevel=3,
        )


def _over_axes(
    fn: Callable[..., jax.Array], x: jax.Array, axis: tuple[int, ...]
) -> jax.Array:
    """Applies ``fn(., axis=-1)`` over several axes at once, as Keras does:
    moves them last, flattens them, applies, and undoes both."""
    axis = tuple(a % x.ndim for a in axis)
    keep = [v for v in range(x.ndim) if v not in axis]
    transposed = jnp.transpose(x, (*keep, *axis))
    y = fn(jnp.reshape(transposed, (*[x.shape[v] for v in keep], -1)), axis=-1)
    y = jnp.reshape(y, transposed.shape)
    combined = [*keep, *axis]
    return jnp.transpose(y, sorted(range(len(combined)), key=combined.__getitem__))


def softmax(x: ArrayLike, axis: int | tuple[int, ...] = -1) -> jax.Array:
    """Softmax: turns each vector along ``axis`` into a probability vector.

    ``softmax(x) = exp(x - max(x)) / sum(exp(x - max(x)))`` along ``axis``.
    Like Keras, warns when ``axis`` has size 1 (the result is then all ones).

    Args:
      x: Input array.
      axis: Integer axis, or tuple of axes, along which to normalize.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in softmax(jnp.array([0.0, 1.0, 2.0])).tolist()]
    [0.09, 0.2447, 0.6652]
    """
    x = jnp.asarray(x)
    _warn_if_size_one(x, axis)
    if isinstance(axis, tuple):
        return _over_axes(jnn.softmax, x, axis)
    return jnn.softmax(x, axis=axis)


def log_softmax(x: ArrayLike, axis: int | tuple[int, ...] = -1) -> jax.Array:
    """Logarithm of the softmax along ``axis``.

    ``log_softmax(x) = x - max(x) - log(sum(exp(x - max(x))))`` along ``axis``.

    Args:
      x: Input array.
      axis: Integer axis, or tuple of axes, along which to normalize.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in log_softmax(jnp.array([0.0, 1.0, 2.0])).tolist()]
    [-2.4076, -1.4076, -0.4076]
    """
    x = jnp.asarray(x)
    if isinstance(axis, tuple):
        return _over_axes(jnn.log_softmax, x, axis)
    return jnn.log_softmax(x, axis=axis)


def sparsemax(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Sparsemax (Martins & Astudillo, 2016): the Euclidean projection of ``x``
    onto the probability simplex along ``axis``.

    ``sparsemax(x) = max(x - tau, 0)``. With ``z`` the logits sorted in
    descending order, ``c = cumsum(z)``, the support
    ``S = {j : z[j] > (c[j] - 1) / j}`` (1-based ``j``) and ``k = |S|``,
    ``tau = (c[k] - 1) / k``, so every slice sums to 1.

    Keras 3.15.1 and earlier compute ``tau`` from the sum of all ``c[j]`` in
    the support instead (keras-team/keras#23425, fixed upstream by
    keras-team/keras#23469); the two agree when the support has one element.
    This function follows the paper and the fixed Keras.

    Args:
      x: Input array.
      axis: Axis along which to project.

    Returns:
      An array with the shape and dtype of ``x``.

    >>> [round(v, 4) for v in sparsemax(jnp.array([0.0, 1.0, 1.5])).tolist()]
    [0.0, 0.25, 0.75]
    """
    logits = jnp.asarray(x)
    logits_sorted = -jnp.sort(-logits, axis=axis)
    logits_cumsum = jnp.cumsum(logits_sorted, axis=axis)
    r_shape = [1] * logits.ndim
    r_shape[axis] = -1
    r = jnp.arange(1, logits.shape[axis] + 1, dtype=logits.dtype).reshape(r_shape)
    support = logits_sorted - (logits_cumsum - 1) / r > 0
    k = jnp.sum(support, axis=axis, keepdims=True)
    # c[k]: the largest cumulative sum inside the support (c is increasing
    # along the support, which is a prefix of the sorted logits).
    c_k = jnp.take_along_axis(logits_cumsum, k - 1, axis=axis)
    tau = (c_k - 1) / k.astype(logits.dtype)
    return jnp.maximum(logits - tau, 0).astype(logits.dtype)


def glu(x: ArrayLike, axis: int = -1) -> jax.Array:
    """Gated linear unit.

    Splits ``x`` into halves ``a`` and ``b`` along ``axis`` and returns
    ``a * sigmoid(b)``; the output's ``axis`` is half as long.

    Args:
      x: Input array; its size along ``axis`` must be even.
      axis: Axis along which to split.

    Returns:
      An array with the dtype of ``x``, halved along ``axis``.

    Raises:
      ValueError: if the size of ``axis`` is odd.

    >>> [round(v, 4) for v in glu(jnp.array([1.0, 2.0, 0.0, 2.0])).tolist()]
    [0.5, 1.7616]
    """
    x = jnp.asarray(x)
    if x.shape[axis] % 2:
        raise ValueError(
            f"glu splits `axis` {axis} into two halves, so its size must be "
            f"even; got an input of shape {x.shape}."
        )
    return jnn.glu(x, axis=axis)


# Keras's aliases.
swish = silu
hard_swish = hard_silu


# --------------------------------------------------------------------------
# Lookup by name.

# Canonical names come before their aliases, so that serialize() gives them.
_REGISTRY = Registry(
    "activation",
    {
        "celu": celu,
        "elu": elu,
        "exponential": exponential,
        "gelu": gelu,
        "glu": glu,
        "hard_shrink": hard_shrink,
        "hard_sigmoid": hard_sigmoid,
        "hard_silu": hard_silu,
        "hard_swish": hard_silu,
        "hard_tanh": hard_tanh,
        "leaky_relu": leaky_relu,
        "linear": linear,
        "log_sigmoid": log_sigmoid,
        "log_softmax": log_softmax,
        "mish": mish,
        "relu": relu,
        "relu6": relu6,
        "selu": selu,
        "sigmoid": sigmoid,
        "silu": silu,
        "swish": silu,
        "soft_shrink": soft_shrink,
        "softmax": softmax,
        "softplus": softplus,
        "softsign": softsign,
        "sparse_plus": sparse_plus,
        "sparse_sigmoid": sparse_sigmoid,
        "sparsemax": sparsemax,
        "squareplus": squareplus,
        "tanh": tanh,
        "tanh_shrink": tanh_shrink,
        "threshold": threshold,
    },
)


def get(identifier: Any, argname: str = "activation") -> Callable | None:
    """Resolves an activation identifier.

    Args:
      identifier: ``None``, the Keras name of an activation (``"relu"``,
        ``"swish"``, ...), or any callable.
      argname: the argument's name, for error messages.

    Returns:
      ``None`` for ``None``, the function for a name (aliases give the same
          function: ``get("swish") is get("silu")``), or the callable itself.

    Raises:
      ValueError: for an unknown name, and for ``"threshold"``, which has no
        defaults in Keras 3 and so cannot be named alone.
      TypeError: for anything that is neither ``None``, a string nor a
        callable.

    >>> get("swish") is silu
    True
    >>> print(get(None))
    None
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        if identifier == "threshold":
            raise ValueError(
                f"`{argname}='threshold'` cannot be used: Keras 3's threshold "
                "activation, threshold(x, threshold, default_value), has no "
                "default parameters (Keras accepts the name but fails when the "
                "layer is called). Pass a callable with the parameters bound "
                "instead, e.g. `functools.partial(conv1djax.activations."
                "threshold, threshold=0.5, default_value=0.0)`."
            )
        return _REGISTRY.get(identifier, argname)
    if callable(identifier):
        return _REGISTRY.get(identifier, argname)
    raise TypeError(
        f"`{argname}` must be None, an activation name or a callable; received "
        f"{identifier!r} of type {type(identifier).__name__}."
    )


def serialize(fn: Callable | None) -> str | Callable | None:
    """Returns the canonical name of a built-in activation, else ``fn`` itself.

    Args:
      fn: an activation function, or ``None``.

    Returns:
      The canonical Keras name (``"silu"`` for :func:`swish`, ``"hard_silu"``
          for :func:`hard_swish`), ``None`` for ``None``, or ``fn`` unchanged for
          a user callable.

    >>> serialize(swish)
    'silu'
    """
    return _REGISTRY.serialize(fn)
