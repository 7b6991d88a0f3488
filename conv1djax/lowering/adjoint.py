"""Custom JVPs whose reverse mode runs chosen backward convolutions.

Autodiff of a fast forward formulation can be slow: the transpose of a sum
of shifted copies reduces over every term separately, and the transpose of
XLA's grouped or channels-first convolution takes XLA's slow paths. A
``jax.custom_vjp`` would fix reverse mode but forbid ``jax.jvp``. Instead,
:func:`tangent` states the JVP's tangent map as the *transpose* of two
linear backward passes, ``input_grad`` and ``kernel_grad``; reverse mode
transposes it back and runs exactly those passes, while forward mode,
``vmap`` and higher orders keep working (the rule is itself differentiable
when the passes are).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero


def tangent(
    y: jax.Array,
    input_grad: Callable[[jax.Array], jax.Array],
    kernel_grad: Callable[[jax.Array], jax.Array],
    dx: jax.Array | SymbolicZero,
    dkernel: jax.Array | SymbolicZero,
) -> jax.Array:
    """The tangent of ``y = conv(x, kernel)`` for tangents ``(dx, dkernel)``.

    Args:
      y: the primal output.
      input_grad: the linear map from an output cotangent to the input's.
      kernel_grad: the linear map from an output cotangent to the kernel's.
      dx, dkernel: the tangents; ``SymbolicZero`` where zero (the rule is
        registered with ``symbolic_zeros=True``).

    Returns:
      ``input_grad^T(dx) + kernel_grad^T(dkernel)``, of ``y``'s shape.
    """
    out = jax.ShapeDtypeStruct(y.shape, y.dtype)
    dy = jnp.zeros_like(y)
    if type(dx) is not SymbolicZero:
        dy = dy + jax.linear_transpose(input_grad, out)(dx)[0]
    if type(dkernel) is not SymbolicZero:
        dy = dy + jax.linear_transpose(kernel_grad, out)(dkernel)[0]
    return dy
