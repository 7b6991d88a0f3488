"""Keras 3 weight constraints as pure, hashable JAX projections.

A constraint maps a weight array to a projected array of the same shape and
dtype. Keras applies it to a variable after every optimizer step
(``variable.assign(constraint(variable))``); with optax, apply
:func:`as_projection` to the parameters after :func:`optax.apply_updates`.
Every class here is a frozen dataclass: equal by value, hashable (usable as a
static argument of :func:`jax.jit`), and callable inside :func:`jax.jit`.

The formulas follow ``keras/src/constraints/constraints.py`` (Keras 3.15),
including where Keras adds its epsilon (``keras.backend.epsilon()``, ``1e-7``
by default; here a constant, since we keep no global state): the projected
weights are ``w * desired / (1e-7 + norms)``, so a norm lands a hair *below*
its target (``target * norm / (norm + 1e-7)``) and all-zero slices stay zero.

``axis`` means what it means in Keras: the axis (or axes) *summed over* to form
each norm, i.e. the axes of one constrained vector. For a Conv1D kernel of
shape ``(kernel_size, in_channels, filters)`` the Keras default ``axis=0``
constrains each ``(in_channels, filters)`` pair's length-``kernel_size`` vector;
``axis=(0, 1)`` constrains each filter as a whole. For a bias ``(filters,)``,
``axis=0`` constrains the whole bias vector as one.

>>> import jax.numpy as jnp, conv1djax as cj
>>> cj.constraints.get("non_neg")(jnp.array([-1.0, 2.0])).tolist()
[0.0, 2.0]
>>> w = cj.constraints.UnitNorm(axis=0)(jnp.array([[3.0], [4.0]]))
>>> [round(float(v), 4) for v in w.ravel()]
[0.6, 0.8]
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from conv1djax._registry import Registry, Serializable
from conv1djax._typing import Params

__all__ = [
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "as_projection",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
    "validate_projection",
]

# Keras's `backend.epsilon()` default; Keras reads a global setting, we do not.
_EPSILON = 1e-7


def _check_number(
    value: Any, name: str, owner: str, *, allow_inf: bool = False
) -> int | float:
    """Returns ``value`` as a Python int or float, or raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"Invalid value for argument `{name}` of {owner}: expected a "
            f"number. Received: {name}={value!r}"
        )
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(
            f"Invalid value for argument `{name}` of {owner}: expected a finite "
            f"number. Received: {name}={value!r}"
        )
    return value


def _check_non_negative(
    value: Any, name: str, owner: str, **kwargs: Any
) -> int | float:
    value = _check_number(value, name, owner, **kwargs)
    if value < 0:
        raise ValueError(
            f"Invalid value for argument `{name}` of {owner}: expected a "
            f"non-negative number. Received: {name}={value!r}"
        )
    return value


def _check_axis(axis: Any, owner: str) -> int | tuple[int, ...] | None:
    """Returns ``axis`` as ``None``, an int or a tuple of ints (lists become
    tuples, so that the object stays hashable)."""

    def bad(why: str) -> ValueError:
        return ValueError(
            f"Invalid value for argument `axis` of {owner}: expected None, an "
            f"int or a sequence of distinct ints ({why}). Received: axis={axis!r}"
        )

    if axis is None:
        return None
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        return int(axis)
    if isinstance(axis, (list, tuple)):
        if not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis
        ):
            raise bad("an entry is not an int")
        axes = tuple(int(a) for a in axis)
        if len(set(axes)) != len(axes):
            raise bad("repeated entry")
        return axes
    raise bad(f"got {type(axis).__name__}")


def _norms(w: jax.Array, axis: int | tuple[int, ...] | None, owner: str) -> jax.Array:
    """`sqrt(sum(w ** 2, axis, keepdims=True))`, with a clear error for an axis
    that does not fit the weights' rank."""
    axes = (
        range(w.ndim)
        if axis is None
        else (axis if isinstance(axis, tuple) else (axis,))
    )
    for a in axes:
        if not -w.ndim <= a < w.ndim:
            raise ValueError(
                f"{owner}: axis={axis!r} is out of range for weights of shape "
                f"{w.shape} (rank {w.ndim})."
            )
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))


@dataclasses.dataclass(frozen=True)
class MaxNorm(Serializable):
    """Caps the L2 norm of each weight vector, Keras's ``keras.constraints.MaxNorm``.

    Formula: ``norms = sqrt(sum(w ** 2, axis, keepdims=True))``;
    ``w * clip(norms, 0, max_value) / (1e-7 + norms)``. Note that the epsilon
    also rescales vectors already inside the ball by ``norm / (norm + 1e-7)``.

    Args:
      max_value: the largest allowed norm, a non-negative number (``inf``
        allowed). Keras's default is the int ``2``, kept as given.
      axis: the axis or axes summed over for each norm (see the module
        docstring); an int, a tuple/list of ints, or ``None`` for the whole
        array. Keras's default ``0``.

    Returns:
      Calling the object on an array returns the projected array, of the same
          shape and (floating) dtype.

    Raises:
      ValueError: for a non-numeric, NaN or negative ``max_value``, a malformed
        ``axis``, or (when called) an axis out of range. Keras does not
        validate these; a negative ``max_value`` would flip signs there.

    Example:
      >>> import jax.numpy as jnp
      >>> out = MaxNorm(max_value=1.0)(jnp.array([[3.0, 0.3], [4.0, 0.4]]))
      >>> [round(float(v), 4) for v in out.ravel()]
      [0.6, 0.3, 0.8, 0.4]
    """

    max_value: float = 2
    axis: int | tuple[int, ...] | None = 0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "max_value",
            _check_non_negative(self.max_value, "max_value", "MaxNorm", allow_inf=True),
        )
        object.__setattr__(self, "axis", _check_axis(self.axis, "MaxNorm"))

    def __call__(self, w: ArrayLike) -> jax.Array:
        """Returns ``w`` with each norm along ``axis`` capped at ``max_value``."""
        w = jnp.asarray(w)
        norms = _norms(w, self.axis, "MaxNorm")
        desired = jnp.clip(norms, 0, self.max_value)
        return w.astype(norms.dtype) * (desired / (_EPSILON + norms))


@dataclasses.dataclass(frozen=True)
class NonNeg(Serializable):
    """Clips weights at zero from below, Keras's ``keras.constraints.NonNeg``.

    Formula: ``maximum(w, 0)`` (NaN stays NaN). It takes no arguments, and
    calling it raises nothing.

    Returns:
      Calling the object on an array returns an array of the same shape and
          dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> NonNeg()(jnp.array([-1.0, 2.0])).tolist()
      [0.0, 2.0]
    """

    def __call__(self, w: ArrayLike) -> jax.Array:
        """Returns ``maximum(w, 0)``."""
        return jnp.maximum(jnp.asarray(w), 0)


@dataclasses.dataclass(frozen=True)
class UnitNorm(Serializable):
    """Rescales each weight vector to unit norm, Keras's ``UnitNorm``.

    Formula: ``w / (1e-7 + sqrt(sum(w ** 2, axis, keepdims=True)))``, so the
    norms come out as ``norm / (norm + 1e-7)``, a hair below 1, and all-zero
    vectors stay zero.

    Args:
      axis: the axis or axes summed over for each norm (see the module
        docstring); an int, a tuple/list of ints, or ``None``. Keras's
        default ``0``.

    Returns:
      Calling the object on an array returns the projected array, of the same
          shape and (floating) dtype.

    Raises:
      ValueError: for a malformed ``axis`` or (when called) one out of range.

    Example:
      >>> import jax.numpy as jnp
      >>> out = UnitNorm()(jnp.array([3.0, 4.0]))
      >>> [round(float(v), 4) for v in out]
      [0.6, 0.8]
    """

    axis: int | tuple[int, ...] | None = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", _check_axis(self.axis, "UnitNorm"))

    def __call__(self, w: ArrayLike) -> jax.Array:
        """Returns ``w`` divided by ``1e-7`` plus its norms along ``axis``."""
        w = jnp.asarray(w)
        norms = _norms(w, self.axis, "UnitNorm")
        return w.astype(norms.dtype) / (_EPSILON + norms)


@dataclasses.dataclass(frozen=True)
class MinMaxNorm(Serializable):
    """Moves each weight vector's norm into a range, Keras's ``MinMaxNorm``.

    Formula: ``norms = sqrt(sum(w ** 2, axis, keepdims=True))``;
    ``desired = rate * clip(norms, min_value, max_value) + (1 - rate) * norms``;
    ``w * desired / (1e-7 + norms)``. With ``rate=1`` the norms land in
    ``[min_value, max_value]`` (up to the epsilon's relative ``1e-7 / norm``);
    all-zero vectors stay zero whatever ``min_value`` is.

    Args:
      min_value: the smallest norm, a finite non-negative number.
      max_value: the largest norm, a number ``>= min_value`` (``inf`` allowed).
      rate: in ``[0, 1]``; ``1`` enforces the range strictly, smaller values
        move the norms part of the way at each step.
      axis: the axis or axes summed over for each norm (see the module
        docstring); an int, a tuple/list of ints, or ``None``. Keras's
        default ``0``.

    Returns:
      Calling the object on an array returns the projected array, of the same
          shape and (floating) dtype.

    Raises:
      ValueError: for non-numeric or NaN values, a negative ``min_value``,
        ``max_value < min_value``, ``rate`` outside ``[0, 1]``, a malformed
        ``axis``, or (when called) an axis out of range. Keras does not
        validate these.

    Example:
      >>> import jax.numpy as jnp
      >>> out = MinMaxNorm(min_value=1.0, max_value=2.0)(jnp.array([0.3, 0.4]))
      >>> [round(float(v), 4) for v in out]
      [0.6, 0.8]
    """

    min_value: float = 0.0
    max_value: float = 1.0
    rate: float = 1.0
    axis: int | tuple[int, ...] | None = 0

    def __post_init__(self) -> None:
        owner = "MinMaxNorm"
        min_value = _check_non_negative(self.min_value, "min_value", owner)
        max_value = _check_number(self.max_value, "max_value", owner, allow_inf=True)
        if max_value < min_value:
            raise ValueError(
                f"Invalid value for argument `max_value` of {owner}: expected "
                f"max_value >= min_value={min_value!r}. "
                f"Received: max_value={max_value!r}"
            )
        rate = _check_number(self.rate, "rate", owner)
        if not 0 <= rate <= 1:
            raise ValueError(
                f"Invalid value for argument `rate` of {owner}: expected a "
                f"number in [0, 1]. Received: rate={rate!r}"
            )
        object.__setattr__(self, "min_value", min_value)
        object.__setattr__(self, "max_value", max_value)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "axis", _check_axis(self.axis, owner))

    def __call__(self, w: ArrayLike) -> jax.Array:
        """Returns ``w`` with each norm along ``axis`` moved into the range."""
        w = jnp.asarray(w)
        norms = _norms(w, self.axis, "MinMaxNorm")
        desired = (
            self.rate * jnp.clip(norms, self.min_value, self.max_value)
            + (1 - self.rate) * norms
        )
        return w.astype(norms.dtype) * (desired / (_EPSILON + norms))


# Keras's lowercase aliases (keras.constraints.max_norm is MaxNorm, etc.).
max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_REGISTRY = Registry(
    "constraint",
    {
        "MaxNorm": MaxNorm,
        "NonNeg": NonNeg,
        "UnitNorm": UnitNorm,
        "MinMaxNorm": MinMaxNorm,
        "max_norm": MaxNorm,
        "non_neg": NonNeg,
        "unit_norm": UnitNorm,
        "min_max_norm": MinMaxNorm,
    },
)


def get(
    identifier: Any, argname: str = "kernel_constraint"
) -> Callable[[jax.Array], jax.Array] | None:
    """Resolves a Keras-style constraint identifier to a constraint.

    Accepts ``None`` (returned as is), a name (``"max_norm"``, ``"non_neg"``,
    ``"unit_norm"``, ``"min_max_norm"`` or a class name), one of the classes, a
    config dict ``{"class_name": ..., "config": {...}}`` (also as written by
    ``keras.constraints.serialize``), or any callable ``w -> w``, which is
    returned unchanged. Names give the class's defaults, as in Keras.

    Args:
      identifier: the constraint spec.
      argname: the argument it was given to, for error messages.

    Returns:
      A constraint object, the user's callable, or ``None``.

    Raises:
      ValueError: for an unknown name or a malformed config dict.
      TypeError: for anything else that is not callable.

    Example:
      >>> get("max_norm")
      MaxNorm(max_value=2, axis=0)
      >>> get({"class_name": "UnitNorm", "config": {"axis": [0, 1]}})
      UnitNorm(axis=(0, 1))
    """
    return _REGISTRY.get(identifier, argname)


def serialize(obj: Any) -> Any:
    """Returns a JSON-friendly form of a constraint, the inverse of :func:`get`.

    Args:
      obj: a constraint from this module, a user callable, or ``None``.

    Returns:
      ``{"class_name": ..., "config": {...}}`` for the classes here (tuple axes
          become lists), ``None`` for ``None``, and a user callable unchanged;
          it never raises.

    Example:
      >>> serialize(MaxNorm(3.0, axis=(0, 1)))
      {'class_name': 'MaxNorm', 'config': {'max_value': 3.0, 'axis': [0, 1]}}
    """
    return _REGISTRY.serialize(obj)


def _shape_dtype(x: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(x, (int, float, complex)):  # a Python number
        return (), jnp.dtype(jnp.result_type(x))
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return tuple(x.shape), jnp.dtype(x.dtype)
    raise TypeError(type(x).__name__)


def validate_projection(before: Any, after: Any, name: Any) -> Any:
    """Checks that a constraint kept a weight's shape and dtype; returns ``after``.

    Only static shapes and dtypes are compared, so the check is free inside
    :func:`jax.jit`.

    Args:
      before: the weight given to the constraint.
      after: what the constraint returned.
      name: the constraint, or the argument it was given to, for the message.

    Returns:
      ``after`` unchanged.

    Raises:
      ValueError: if ``after``'s shape or dtype differs from ``before``'s.

    Example:
      >>> import jax.numpy as jnp
      >>> w = jnp.ones((2, 3))
      >>> validate_projection(w, NonNeg()(w), "non_neg").shape
      (2, 3)
      >>> validate_projection(w, w.T, "my_constraint")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: Constraint my_constraint changed a weight's shape ... (3, 2)...
    """
    try:
        shape_b, dtype_b = _shape_dtype(before)
        shape_a, dtype_a = _shape_dtype(after)
    except TypeError:
        raise ValueError(
            f"Constraint {name} must return an array; it returned {after!r} of "
            f"type {type(after).__name__}."
        ) from None
    if shape_a != shape_b:
        raise ValueError(
            f"Constraint {name} changed a weight's shape from {shape_b} to "
            f"{shape_a} (dtype {dtype_b} -> {dtype_a}); a constraint must return "
            "an array of the same shape and dtype as its input."
        )
    if dtype_a != dtype_b:
        raise ValueError(
            f"Constraint {name} changed a weight's dtype from {dtype_b} to "
            f"{dtype_a} (shape {shape_b} -> {shape_a}); a constraint must return "
            "an array of the same shape and dtype as its input."
        )
    return after


def as_projection(constraint: Any) -> Callable[[Any], Any]:
    """Turns a constraint into an optax-style projection ``params -> params``.

    Like ``optax.projections.projection_non_negative``, the result is a pure
    function from a pytree of parameters to a pytree of the same structure; it
    applies the constraint to every leaf and checks each result with
    :func:`validate_projection`. Use it after the optimizer step, which is
    where Keras applies constraints::

        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params = as_projection("non_neg")(params)

    To constrain only some leaves (a kernel but not its bias), apply the
    projection to that subtree.

    Args:
      constraint: anything :func:`get` accepts (a name, a config dict, a
        constraint, a user callable ``w -> w``); ``None`` gives the identity.

    Returns:
      A function ``params_tree -> params_tree``, usable inside :func:`jax.jit`.

    Raises:
      ValueError, TypeError: from :func:`get` for a bad identifier; the
        projection raises ValueError if the constraint changes a leaf's shape
        or dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> project = as_projection("non_neg")
      >>> out = project({"conv": {"kernel": jnp.array([-1.0, 2.0])}})
      >>> out["conv"]["kernel"].tolist()
      [0.0, 2.0]
    """
    resolved = get(constraint, argname="constraint")
    if resolved is None:
        return lambda params: params
    name = (
        repr(resolved)
        if isinstance(resolved, Serializable)
        else (getattr(resolved, "__name__", None) or repr(resolved))
    )

    def project_leaf(leaf: jax.Array) -> jax.Array:
        return validate_projection(leaf, resolved(leaf), name)

    def projection(params: Params) -> Params:
        return jax.tree.map(project_leaf, params)

    return projection
