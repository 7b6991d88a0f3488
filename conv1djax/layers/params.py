"""A leaf layer's own params: created by its initializers, and checked
against the keys and shapes it expects (or against ``{}`` for a layer
without params).

The names are Keras's weight names, each family's ``weight_names()`` in
Keras's ``get_weights()`` order; a weight's initializer, regularizer and
constraint are the layer's attributes that
:func:`conv1djax.protocol.weight_attribute` names (``"kernel"`` ->
``kernel_initializer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from conv1djax import _validation
from conv1djax._typing import Params
from conv1djax.protocol import weight_attribute


def init_params(
    layer: Any,
    key: jax.Array,
    param_shapes: Mapping[str, tuple[int, ...]],
    dtype: DTypeLike,
) -> dict[str, jax.Array]:
    """Creates each param with its initializer (``<name>_initializer`` of the
    layer, Keras's attribute names), in ``dtype``, checking the shapes.

    Raises:
      TypeError: for a non-floating ``dtype``.
      ValueError: when an initializer returns an array of the wrong shape.
    """
    name = type(layer).__name__
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype; received dtype={dtype}.")
    keys = jax.random.split(key, max(len(param_shapes), 1))
    params = {}
    for k, (pname, shape) in zip(keys, param_shapes.items(), strict=False):
        initializer = getattr(layer, weight_attribute(layer, pname, "initializer"))
        value = initializer(k, shape, dtype)
        got = getattr(value, "shape", None)
        if got != shape:
            raise ValueError(
                f"The {pname} initializer of {name} ({initializer!r}) returned "
                f"an array of shape {got}; expected {shape}."
            )
        params[pname] = jnp.asarray(value, dtype)
    return params


def check_param_shapes(
    layer: Any,
    params: Params,
    expected: Mapping[str, tuple[int, ...]],
    context: str,
    path: str = "params",
) -> None:
    """Checks that one leaf's ``params`` have exactly the keys and shapes
    ``expected`` (a whole model's params are checked by
    :func:`conv1djax.protocol.check_params`, which calls each layer's
    ``check_own_params``).

    ``path`` says where the params are (``"params[2]['inner']"`` in a model).

    Raises:
      ValueError: naming the missing or extra keys, or the param whose shape
        does not fit (``context`` says what it should fit).
    """
    name = type(layer).__name__
    where = "" if path == "params" else f"{path}: "
    if not isinstance(params, Mapping):
        raise ValueError(
            f"{where}{name} params must be a dict with the keys {sorted(expected)}; "
            f"received {type(params).__name__}."
        )
    if set(params) != set(expected):
        raise ValueError(
            f"{where}{name}(use_bias={layer.use_bias}) params must have exactly the "
            f"keys {sorted(expected)}; received {sorted(params)}."
        )
    for pname, want in expected.items():
        got = tuple(jnp.shape(params[pname]))
        if got != want:
            raise ValueError(
                f"{path}[{pname!r}] of shape {got} does not fit {context}: "
                f"expected a {pname} of shape {want}."
            )


def check_no_params(layer: Any, params: Params, path: str = "params") -> None:
    """Raises ``ValueError`` unless ``params`` (at ``path``) is ``{}`` (what
    a parameter-free layer's ``init`` returns)."""
    if isinstance(params, Mapping) and not params:
        return
    got = (
        f"a dict with the keys {list(params)}"
        if isinstance(params, Mapping)
        else f"{_validation.short_repr(params)} of type {type(params).__name__}"
    )
    raise ValueError(
        f"{type(layer).__name__} has no params: `{path}` must be {{}} (what init "
        f"returns); received {got}."
    )


def as_array(value: Any, what: str) -> np.ndarray:  # any array, or a torch tensor
    """A NumPy array from an array, a JAX array or a torch tensor."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" and array.dtype.name != "bfloat16":
        raise TypeError(f"{what} must be an array of numbers; received {array.dtype}.")
    return array


def torch_layout(kernel: Any, torch_module: str | None) -> Any:
    """A kernel in PyTorch's weight layout, for a family whose
    ``torch_module`` is ``"conv"`` (``(*k, in // g, out)`` -> ``(out, in //
    g, *k)``), ``"transposed"`` (``(*k, out // g, in)`` -> ``(in, out // g,
    *k)``), ``"depthwise"`` (``(*k, in, m)`` -> ``(in * m, 1, *k)``) or None,
    a ``Dense`` (``(in, out)`` -> ``(out, in)``, ``torch.nn.Linear``'s).
    Works on NumPy and JAX arrays alike (their ``transpose`` and
    ``reshape``)."""
    rank = kernel.ndim - 2
    w = kernel.transpose(rank + 1, rank, *range(rank))
    if torch_module == "depthwise":  # (m, in, *k) -> (in, m, *k) -> (in * m, 1, *k)
        w = w.transpose(1, 0, *range(2, rank + 2)).reshape(-1, 1, *w.shape[2:])
    return w
