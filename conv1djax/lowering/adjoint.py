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

import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

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


Static = TypeVar("Static", bound=Hashable)
Conv = Callable[[jax.Array, jax.Array, Static], jax.Array]
Backward = Callable[[jax.Array, jax.Array, jax.Array, Static], jax.Array]


def custom_conv(
    forward: Conv[Static], input_grad: Backward[Static], kernel_grad: Backward[Static]
) -> Conv[Static]:
    """The convolution ``forward(x, kernel, static)`` whose reverse mode
    runs ``input_grad(gy, x, kernel, static)`` and ``kernel_grad(gy, x,
    kernel, static)`` (cast to ``x``'s and ``kernel``'s dtypes): a custom JVP
    whose tangent is :func:`tangent` of the two, ``static`` its hashable,
    non-differentiable configuration (padding, dilation, ...)."""

    @functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
    def conv(x: jax.Array, kernel: jax.Array, static: Static) -> jax.Array:
        return forward(x, kernel, static)

    @functools.partial(conv.defjvp, symbolic_zeros=True)
    def conv_jvp(
        static: Static, primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
    ) -> tuple[jax.Array, jax.Array]:
        x, kernel = primals
        y = conv(x, kernel, static)

        def input_cotangent(gy: jax.Array) -> jax.Array:
            return input_grad(gy, x, kernel, static).astype(x.dtype)

        def kernel_cotangent(gy: jax.Array) -> jax.Array:
            return kernel_grad(gy, x, kernel, static).astype(kernel.dtype)

        return y, tangent(y, input_cotangent, kernel_cotangent, *tangents)

    return conv


def with_derivatives_of(
    forward: Callable[[jax.Array, jax.Array], jax.Array],
    derivative: Callable[[jax.Array, jax.Array], jax.Array],
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``forward``'s values with ``derivative``'s derivatives.

    Both compute the same bilinear map ``conv(x, kernel)`` by different
    formulations. The result runs ``forward``; its JVP is ``derivative``'s
    bilinear tangent ``derivative(dx, kernel) + derivative(x, dkernel)``, so
    reverse mode runs autodiff's transpose of ``derivative``, and forward
    mode, ``vmap`` and higher orders keep working.

    >>> import jax, jax.numpy as jnp
    >>> mul = with_derivatives_of(jnp.multiply, lambda a, b: 2 * a * b)
    >>> float(mul(3.0, 4.0)), float(jax.grad(mul)(3.0, 4.0))
    (12.0, 8.0)
    """

    @jax.custom_jvp
    def conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
        return forward(x, kernel)

    def conv_jvp(
        primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
    ) -> tuple[jax.Array, jax.Array]:
        x, kernel = primals
        dx, dkernel = tangents
        y = conv(x, kernel)
        dy = jnp.zeros_like(y)
        if type(dx) is not SymbolicZero:
            dy = dy + jnp.asarray(derivative(dx, kernel), y.dtype)
        if type(dkernel) is not SymbolicZero:
            dy = dy + jnp.asarray(derivative(x, dkernel), y.dtype)
        return y, dy

    conv.defjvp(conv_jvp, symbolic_zeros=True)
    return conv


def with_input_grad_of(
    forward: Callable[[jax.Array, jax.Array], jax.Array],
    input_source: Callable[[jax.Array, jax.Array], jax.Array],
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``forward``'s values and kernel gradient, ``input_source``'s input
    gradient.

    Both compute the same bilinear map ``conv(x, kernel)`` by different
    formulations. The result runs ``forward``; reverse mode runs autodiff's
    transpose of ``input_source`` in ``x`` (of lax's transposed
    convolution: a strided convolution) and ``forward``'s own reverse mode
    in the kernel (:func:`custom_conv`, so forward mode, ``vmap`` and
    higher orders keep working).

    >>> import jax, jax.numpy as jnp
    >>> mul = with_input_grad_of(jnp.multiply, lambda a, b: 2 * a * b)
    >>> a, b = jnp.array(3.0), jnp.array(4.0)
    >>> [float(g) for g in jax.grad(mul, argnums=(0, 1))(a, b)]
    [8.0, 3.0]
    """

    def input_grad(
        gy: jax.Array, x: jax.Array, kernel: jax.Array, _: None
    ) -> jax.Array:
        x_struct = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.linear_transpose(lambda v: input_source(v, kernel), x_struct)(gy)[0]

    def kernel_grad(
        gy: jax.Array, x: jax.Array, kernel: jax.Array, _: None
    ) -> jax.Array:
        return jax.vjp(lambda k: forward(x, k), kernel)[1](gy)[0]

    conv = custom_conv(lambda x, kernel, _: forward(x, kernel), input_grad, kernel_grad)

    def run(x: jax.Array, kernel: jax.Array) -> jax.Array:
        return conv(x, kernel, None)

    return run
