"""Keras 3 weight regularizers as pure, hashable JAX functions.

A regularizer maps a weight array to a scalar penalty that is added to the
training loss, exactly as Keras 3 adds ``layer.losses``. Every class here is a
frozen dataclass: equal by value, hashable (usable as a static argument of
:func:`jax.jit`), and callable inside :func:`jax.jit` and :func:`jax.grad`.

The formulas, defaults and argument validation follow
``keras/src/regularizers/regularizers.py`` (Keras 3.15). The names accepted by
:func:`get` are Keras's (``"l1"``, ``"l2"``, ``"l1l2"``,
``"orthogonal_regularizer"`` and the class names) plus ``"l1_l2"``, the name of
Keras's public alias ``keras.regularizers.l1_l2``.

>>> import jax.numpy as jnp, conv1djax as cj
>>> cj.regularizers.get("l2")
L2(l2=0.01)
>>> round(float(cj.regularizers.get("l2")(jnp.ones(10))), 6)  # 0.01 * 10
0.1
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from conv1djax._registry import Registry, Serializable

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
    "validate_penalty",
]

# Keras's `backend.epsilon()` default; Keras reads a global setting, we do not.
_EPSILON = 1e-7


def _validate_factor(value: Any, name: str, owner: str) -> float:
    """Keras's `validate_float_arg`: a finite, non-negative int or float."""
    if (
        not isinstance(value, (float, int))
        or math.isinf(value)
        or math.isnan(value)
        or value < 0
    ):
        raise ValueError(
            f"Invalid value for argument `{name}` of {owner}: expected a "
            f"non-negative float. Received: {name}={value!r}"
        )
    return float(value)


@dataclasses.dataclass(frozen=True)
class L1(Serializable):
    """L1 weight penalty, Keras's ``keras.regularizers.L1``.

    Formula: ``l1 * sum(abs(weights))``, with ``l1`` cast to the weights'
    dtype.

    Args:
      l1: non-negative float (an ``int`` is accepted and stored as ``float``);
        ``None`` means the default ``0.01``, as in Keras.

    Returns:
      Calling the object on an array returns a scalar of the array's dtype.

    Raises:
      ValueError: if ``l1`` is not a finite, non-negative int or float.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(L1(0.1)(jnp.array([1.0, -2.0]))), 6)
      0.3
    """

    l1: float = 0.01

    def __post_init__(self) -> None:
        value = 0.01 if self.l1 is None else self.l1
        object.__setattr__(self, "l1", _validate_factor(value, "l1", "L1"))

    def __call__(self, weights: ArrayLike) -> jax.Array:
        """Returns ``l1 * sum(abs(weights))`` as a scalar of the weights' dtype."""
        x = jnp.asarray(weights)
        return jnp.asarray(self.l1, dtype=x.dtype) * jnp.sum(jnp.abs(x))


@dataclasses.dataclass(frozen=True)
class L2(Serializable):
    """L2 weight penalty, Keras's ``keras.regularizers.L2``.

    Formula: ``l2 * sum(weights ** 2)``, with ``l2`` cast to the weights'
    dtype. There is no factor 1/2.

    Args:
      l2: non-negative float (an ``int`` is accepted and stored as ``float``);
        ``None`` means the default ``0.01``, as in Keras.

    Returns:
      Calling the object on an array returns a scalar of the array's dtype.

    Raises:
      ValueError: if ``l2`` is not a finite, non-negative int or float.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(L2(0.1)(jnp.ones(3))), 6)
      0.3
    """

    l2: float = 0.01

    def __post_init__(self) -> None:
        value = 0.01 if self.l2 is None else self.l2
        object.__setattr__(self, "l2", _validate_factor(value, "l2", "L2"))

    def __call__(self, weights: ArrayLike) -> jax.Array:
        """Returns ``l2 * sum(weights ** 2)`` as a scalar of the weights' dtype."""
        x = jnp.asarray(weights)
        return jnp.asarray(self.l2, dtype=x.dtype) * jnp.sum(jnp.square(x))


@dataclasses.dataclass(frozen=True)
class L1L2(Serializable):
    """Sum of an L1 and an L2 penalty, Keras's ``keras.regularizers.L1L2``.

    Formula: ``l1 * sum(abs(weights)) + l2 * sum(weights ** 2)``. As in Keras, a
    term whose factor is exactly ``0.0`` is skipped rather than multiplied by
    zero (so ``inf`` weights give ``inf``, not ``nan``, when ``l1 == 0``), and
    both defaults are ``0.0``: the name ``"l1_l2"`` gives a zero penalty.

    Args:
      l1: non-negative float, the L1 factor; ``None`` means ``0.0``.
      l2: non-negative float, the L2 factor; ``None`` means ``0.0``.

    Returns:
      Calling the object on an array returns a scalar of the array's dtype.

    Raises:
      ValueError: if a factor is not a finite, non-negative int or float.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(L1L2(l1=0.1, l2=0.2)(jnp.array([1.0, -2.0]))), 6)
      1.3
    """

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        for name in ("l1", "l2"):
            value = getattr(self, name)
            value = 0.0 if value is None else value
            object.__setattr__(self, name, _validate_factor(value, name, "L1L2"))

    def __call__(self, weights: ArrayLike) -> jax.Array:
        """Returns the L1 plus L2 penalty as a scalar of the weights' dtype."""
        x = jnp.asarray(weights)
        penalty = jnp.asarray(0.0, dtype=x.dtype)
        if self.l1 != 0.0:
            penalty += jnp.asarray(self.l1, dtype=x.dtype) * jnp.sum(jnp.abs(x))
        if self.l2 != 0.0:
            penalty += jnp.asarray(self.l2, dtype=x.dtype) * jnp.sum(jnp.square(x))
        return penalty


# OrthogonalRegularizer's modes: which vectors it pushes apart (Keras's).
_ORTHOGONAL_MODES = ("rows", "columns")


@dataclasses.dataclass(frozen=True)
class OrthogonalRegularizer(Serializable):
    """Penalty on non-orthogonal rows or columns, Keras's OrthogonalRegularizer.

    Formula (``mode="rows"``; ``"columns"`` uses the transpose): with ``W`` of
    shape ``(n, m)``, each row is L2-normalised as Keras's
    ``ops.normalize`` does, ``u_i = w_i * min(rsqrt(sum(w_i ** 2)), 1 / 1e-7)``
    (an all-zero row stays zero), ``P = U @ U.T``, and the penalty is::

        factor * 0.5 * sum(|P_ij| for i != j) / (n * (n - 1) / 2)

    that is ``factor`` times the mean of ``|cos|`` over the ``n * (n - 1)``
    ordered pairs. As in Keras, only rank-2 weights are accepted (a Conv1D
    kernel ``(k, cin, filters)`` is rejected; reshape it yourself, e.g. to
    ``(k * cin, filters)`` with ``mode="columns"``), and with a single row
    (``n == 1``) the mean is ``0 / 0 = nan``.

    Args:
      factor: non-negative float, the regularization factor.
      mode: ``"rows"`` (default) or ``"columns"``: which vectors to push
        towards mutual orthogonality.

    Returns:
      Calling the object on a rank-2 array returns a scalar of its dtype.

    Raises:
      ValueError: if ``factor`` is not a finite, non-negative int or float, if
        ``mode`` is not ``"rows"`` or ``"columns"``, or (when called) if the
        weights do not have rank 2.

    Example:
      >>> import jax.numpy as jnp
      >>> reg = OrthogonalRegularizer(factor=0.1)
      >>> round(float(reg(jnp.eye(3))), 6)
      0.0
      >>> round(float(reg(jnp.array([[1.0, 0.0], [2.0, 0.0]]))), 6)
      0.1
    """

    factor: float = 0.01
    mode: str = "rows"

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "factor",
            _validate_factor(self.factor, "factor", "OrthogonalRegularizer"),
        )
        if not isinstance(self.mode, str) or self.mode not in _ORTHOGONAL_MODES:
            modes = ", ".join(f'"{m}"' for m in _ORTHOGONAL_MODES)
            raise ValueError(
                "Invalid value for argument `mode` of OrthogonalRegularizer. "
                f"Expected one of {{{modes}}}. "
                f"Received: mode={self.mode!r}"
            )

    def __call__(self, weights: ArrayLike) -> jax.Array:
        """Returns the orthogonality penalty as a scalar of the weights' dtype."""
        x = jnp.asarray(weights)
        if x.ndim != 2:
            raise ValueError(
                "Inputs to OrthogonalRegularizer must have rank 2 (as in Keras). "
                f"Received: inputs.shape={x.shape}"
            )
        if self.mode == "rows":
            x = _normalize(x, axis=1)
            product = jnp.matmul(x, x.T)
            size = x.shape[0]
        else:
            x = _normalize(x, axis=0)
            product = jnp.matmul(x.T, x)
            size = x.shape[1]
        product_no_diagonal = product * (1.0 - jnp.eye(size, dtype=x.dtype))
        num_pairs = size * (size - 1.0) / 2.0
        factor = jnp.asarray(self.factor, dtype=x.dtype)
        return factor * 0.5 * jnp.sum(jnp.abs(product_no_diagonal)) / num_pairs


def _normalize(x: jax.Array, axis: int) -> jax.Array:
    """Keras's `ops.normalize(x, axis, order=2)`: `x * min(rsqrt(ss), 1/eps)`."""
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    inv_norm = jnp.minimum(jax.lax.rsqrt(square_sum), 1.0 / _EPSILON)
    return x * inv_norm


# Keras's lowercase aliases (keras.regularizers.l1 is keras.regularizers.L1).
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_REGISTRY = Registry(
    "regularizer",
    {
        "L1": L1,
        "L2": L2,
        "L1L2": L1L2,
        "OrthogonalRegularizer": OrthogonalRegularizer,
        "l1": L1,
        "l2": L2,
        "l1_l2": L1L2,
        "l1l2": L1L2,
        "orthogonal_regularizer": OrthogonalRegularizer,
    },
)


def get(
    identifier: Any, argname: str = "kernel_regularizer"
) -> Callable[[jax.Array], jax.Array] | None:
    """Resolves a Keras-style regularizer identifier to a regularizer.

    Accepts ``None`` (returned as is), a name (``"l1"``, ``"l2"``,
    ``"l1_l2"``/``"l1l2"``, ``"orthogonal_regularizer"`` or a class name), one
    of the classes, a config dict ``{"class_name": ..., "config": {...}}`` (also
    as written by ``keras.regularizers.serialize``), or any callable
    ``weights -> scalar``, which is returned unchanged. Names give the class's
    defaults, as in Keras.

    Args:
      identifier: the regularizer spec.
      argname: the argument it was given to, for error messages.

    Returns:
      A regularizer object, the user's callable, or ``None``.

    Raises:
      ValueError: for an unknown name or a malformed config dict.
      TypeError: for anything else that is not callable.

    Example:
      >>> get("l2")
      L2(l2=0.01)
      >>> get({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}})
      L1L2(l1=0.1, l2=0.2)
    """
    return _REGISTRY.get(identifier, argname)


def serialize(obj: Any) -> Any:
    """Returns a JSON-friendly form of a regularizer, the inverse of :func:`get`.

    Args:
      obj: a regularizer from this module, a user callable, or ``None``.

    Returns:
      ``{"class_name": ..., "config": {...}}`` for the classes here, ``None``
          for ``None``, and a user callable unchanged; it never raises.

    Example:
      >>> serialize(L1(0.5))
      {'class_name': 'L1', 'config': {'l1': 0.5}}
    """
    return _REGISTRY.serialize(obj)


def validate_penalty(value: Any, name: Any) -> Any:
    """Checks that a regularizer returned a scalar, and returns it.

    Works on concrete arrays and on tracers (the check uses the static shape
    only, so it is free inside :func:`jax.jit`).

    Args:
      value: what the regularizer returned.
      name: the regularizer, or the argument it was given to, for the message.

    Returns:
      ``value`` unchanged.

    Raises:
      ValueError: if ``value`` is ``None``, not numeric, or not of shape ``()``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(validate_penalty(jnp.float32(0.25), "my_reg")), 6)
      0.25
      >>> validate_penalty(jnp.ones(3), "my_reg")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: Regularizer my_reg must return a scalar (shape ()), ... (3,).
    """
    if isinstance(value, (int, float, complex)):  # a Python number
        shape, dtype = (), jnp.result_type(value)
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        shape, dtype = tuple(value.shape), value.dtype
    else:
        raise ValueError(
            f"Regularizer {name} must return a scalar (shape ()), but it "
            f"returned {value!r} of type {type(value).__name__}."
        )
    if not jnp.issubdtype(dtype, jnp.number):
        raise ValueError(
            f"Regularizer {name} must return a numeric scalar, but it returned "
            f"a value of dtype {dtype}."
        )
    if shape != ():
        raise ValueError(
            f"Regularizer {name} must return a scalar (shape ()), but it "
            f"returned an array of shape {shape}."
        )
    return value
