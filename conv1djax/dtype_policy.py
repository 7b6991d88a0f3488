"""Keras's dtype policy, every rule of it in one place: the forms a spec's
``dtype`` and ``param_dtype`` accept and their canonical names, the dtypes a
policy computes and creates params in, the cast of a layer's inputs, and the
policy's Keras config (read and written).

A canonical policy is None (no policy: params float32 unless ``init`` is
given a dtype; a convolution computes in its kernel's dtype, a
parameter-free layer in its input's), ``"mixed_bfloat16"`` /
``"mixed_float16"`` (float32 params, bfloat16 / float16 computation), or a
floating dtype's name (both).

>>> from conv1djax import dtype_policy
>>> dtype_policy.canonical_policy({"class_name": "DTypePolicy",
...                                "config": {"name": "mixed_bfloat16"}})
'mixed_bfloat16'
>>> dtype_policy.compute_dtype("mixed_bfloat16"), dtype_policy.variable_dtype(
...     "mixed_bfloat16", None)
('bfloat16', 'float32')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

_T = TypeVar("_T")

# Keras's mixed-precision policies: (compute dtype, variable dtype).
MIXED_POLICIES = {
    "mixed_bfloat16": ("bfloat16", "float32"),
    "mixed_float16": ("float16", "float32"),
}
# The class names of the Keras policies a spec can take (Keras's
# ``FloatDTypePolicy`` is an alias of ``DTypePolicy``).
_KERAS_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy")
# The policy of Keras's every layer config by default, read as None (no
# policy), and written as its plain name.
KERAS_DEFAULT_POLICY = "float32"
# The floating dtype names the error messages offer.
_FLOAT_NAMES = "a floating dtype name ('bfloat16', 'float16', 'float32', 'float64')"
_POLICY_FORMS = (
    f"None, {', '.join(map(repr, MIXED_POLICIES))}, {_FLOAT_NAMES}, a floating "
    "dtype, or Keras's DTypePolicy config {'class_name': 'DTypePolicy', "
    "'config': {'name': ...}}"
)
_PARAM_DTYPE_FORMS = f"None, {_FLOAT_NAMES} or a floating dtype"


def _float_dtype_name(value: Any, name: str, forms: str) -> str:
    """The canonical name of a floating dtype given by name (exactly as
    NumPy/JAX name it, any case) or as a dtype object."""
    if isinstance(value, str):
        try:
            dtype = jnp.dtype(value.lower())
        except TypeError:
            dtype = None
        if dtype is None or dtype.name != value.lower():
            raise ValueError(f"`{name}` must be {forms}; received {name}={value!r}.")
    elif isinstance(value, bool | int | float | complex | bytes) or value is None:
        raise TypeError(
            f"`{name}` must be {forms}; received {value!r} of type "
            f"{type(value).__name__}."
        )
    else:
        try:
            dtype = jnp.dtype(value)
        except TypeError:
            raise TypeError(
                f"`{name}` must be {forms}; received {value!r} of type "
                f"{type(value).__name__}."
            ) from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"`{name}` must name a floating dtype; received {name}={value!r} "
            f"({dtype.name})."
        )
    return dtype.name


def keras_policy_name(value: Any) -> str | None:
    """The policy name in a Keras ``DTypePolicy`` config dict or object, or
    None when ``value`` is neither.

    Raises:
      ValueError: for a Keras policy this library does not implement (a
        quantized policy, a ``DTypePolicyMap``) or a malformed dict.
    """
    if isinstance(value, Mapping):
        cls = value.get("class_name")
        config = value.get("config")
        name = config.get("name") if isinstance(config, Mapping) else None
        if cls in _KERAS_POLICY_CLASSES and isinstance(name, str):
            return name
        raise ValueError(
            f"`dtype` as a dict must be Keras's DTypePolicy config, "
            f"{{'class_name': 'DTypePolicy', 'config': {{'name': ...}}}} (quantized "
            f"policies and DTypePolicyMap are not supported); received dtype={value!r}."
        )
    cls = type(value).__name__
    if cls in _KERAS_POLICY_CLASSES and isinstance(getattr(value, "name", None), str):
        return value.name
    if cls.endswith("DTypePolicy") or cls == "DTypePolicyMap":
        raise ValueError(
            f"`dtype` must be a float or mixed-precision policy; Keras's {cls} "
            f"({value!r}) is not supported."
        )
    return None


def canonical_policy(value: Any) -> str | None:
    """Canonicalises a spec's ``dtype``, Keras's dtype policy, to its name:
    None (no policy), ``"mixed_bfloat16"``, ``"mixed_float16"`` or a floating
    dtype's name. A Keras ``DTypePolicy`` (object or config dict) gives its
    name, a dtype object its name, so equal policies make equal specs.

    Raises:
      ValueError: for an unknown name, a non-floating dtype or an
        unsupported Keras policy.
      TypeError: for a value of another type.
    """
    if value is None:
        return None
    policy = keras_policy_name(value)
    if policy is not None:
        value = policy
    if isinstance(value, str) and value.lower() in MIXED_POLICIES:
        return value.lower()
    return _float_dtype_name(value, "dtype", _POLICY_FORMS)


def canonical_param_dtype(value: Any) -> str | None:
    """Canonicalises a spec's ``param_dtype`` (None, or a floating dtype or
    its name) to the dtype's name.

    Raises:
      ValueError: for a policy name, an unknown name or a non-floating dtype.
      TypeError: for a value of another type.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in MIXED_POLICIES:
        raise ValueError(
            f"`param_dtype` is the params' dtype, not a policy; received "
            f"param_dtype={value!r}. Pass the policy as `dtype` (the params are "
            f"then {MIXED_POLICIES[value.lower()][1]})."
        )
    return _float_dtype_name(value, "param_dtype", _PARAM_DTYPE_FORMS)


def policy_dtypes(policy: str) -> tuple[str, str]:
    """``(compute dtype, variable dtype)`` of a canonical policy name."""
    return MIXED_POLICIES.get(policy, (policy, policy))


def compute_dtype(policy: str | None) -> str | None:
    """The dtype a layer computes in under ``policy`` (``"bfloat16"`` for
    ``"mixed_bfloat16"``), or None without a policy (a convolution's kernel
    dtype, a parameter-free layer's input dtype)."""
    if policy is None:
        return None
    return policy_dtypes(policy)[0]


def variable_dtype(policy: str | None, param_dtype: str | None) -> str:
    """The dtype ``init`` creates params in when it is given none:
    ``param_dtype`` if set, else the policy's variable dtype (float32 for the
    mixed policies), else float32."""
    if param_dtype is not None:
        return param_dtype
    if policy is None:
        return "float32"
    return policy_dtypes(policy)[1]


def cast_input(x: _T, policy: str | None) -> _T | jax.Array:
    """A floating ``x`` cast to the policy's compute dtype (Keras's autocast
    of a layer's inputs); anything else, or any ``x`` without a policy, as
    it is."""
    compute = compute_dtype(policy)
    if compute is None:
        return x
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        return x
    return jnp.asarray(x, compute)


def to_keras_config(policy: str) -> str | dict[str, Any]:
    """A canonical policy name as ``get_config`` writes it: Keras's
    ``DTypePolicy`` config dict (what ``keras.dtype_policies.serialize``
    writes), but ``"float32"`` as the plain name, since Keras's float32 dict
    is its default and is read back as ``dtype=None``."""
    if policy == KERAS_DEFAULT_POLICY:
        return policy
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": policy},
        "registered_name": None,
    }


def from_keras_config(value: Any) -> Any:
    """A config's ``"dtype"`` entry as the spec's ``dtype`` argument: the
    float32 ``DTypePolicy`` dict every Keras config holds by default is read
    as None (the library's default), so a default Keras layer's config gives
    the default spec; anything else as it is (the spec canonicalises it)."""
    if isinstance(value, Mapping) and keras_policy_name(value) == KERAS_DEFAULT_POLICY:
        return None
    return value


def at_least_float32(dtype: Any) -> jnp.dtype:
    """The dtype a reduction or a product is computed in for an input of
    ``dtype``: a floating dtype of 32 bits or more as it is, anything else
    (bfloat16, float16, integers, bool) float32. Written out, not
    ``jnp.promote_types(dtype, jnp.float32)``, which strict dtype promotion
    refuses.

    >>> at_least_float32("bfloat16"), at_least_float32("float64"), at_least_float32("int8")
    (dtype('float32'), dtype('float64'), dtype('float32'))
    """
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits >= 32:
        return dtype
    return jnp.dtype(jnp.float32)
