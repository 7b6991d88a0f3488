"""The parameter-free function layers: ``Activation`` (a Keras activation)
and ``Lambda`` (any function of the input)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
from jax.typing import ArrayLike

from conv1djax import activations, regularizers, shapes, stream_contract
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.layers.base import ParameterFree
from conv1djax.layers.params import check_no_params
from conv1djax.shapes import check_input, check_shape_entries


@dataclasses.dataclass(frozen=True)
class Activation(ParameterFree):
    """A parameter-free layer applying an activation, Keras's ``Activation``.

    Args:
      activation: a Keras activation name or a callable.
      activity_regularizer: optional penalty on the output (a loss term).
      name: optional, used by summaries.
      dtype, param_dtype: the dtype policy, as for every spec
        (:class:`~conv1djax.layers.base.Configurable`): with ``dtype`` set, a
        floating input is cast to its compute dtype; else it keeps its dtype.

    Example usage:

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Activation("relu")
    >>> layer.init(None, (2, 5, 3)), layer.apply({}, jnp.array([-1.0, 2.0]))
    ({}, Array([0., 2.], dtype=float32))
    """

    activation: Any
    activity_regularizer: Any = None

    _REGISTRIES: ClassVar = {
        "activation": activations,
        "activity_regularizer": regularizers,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        fn = activations.get(self.activation, "activation")
        if fn is None:
            raise ValueError("`activation` of an Activation layer must not be None.")
        object.__setattr__(self, "activation", fn)
        object.__setattr__(
            self,
            "activity_regularizer",
            regularizers.get(self.activity_regularizer, "activity_regularizer"),
        )

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Returns ``activation(x)``, a floating ``x`` first cast to the
        policy's compute dtype when ``dtype`` is set."""
        check_no_params(self, params)
        return self.activation(self.cast_input(check_input(x, "Activation", params)))

    def stream_timing(self) -> stream_contract.Timing:
        """An activation streams step by step, on any chunk."""
        return stream_contract.Timing()

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The activation of the chunk."""
        return self.apply(params, z)

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The input shape, or what the activation makes of it (``glu``)."""
        return shapes.eval_output_shape(
            self.activation, check_shape_entries(input_shape)
        )


@dataclasses.dataclass(frozen=True)
class Lambda(ParameterFree):
    """A parameter-free layer applying any function of its input, Keras's
    ``Lambda``: for what the library does not provide (a reshape, a slice,
    a ``jnp`` expression).

    Args:
      function: ``x -> y``, traceable by JAX; it must be hashable (a
        function or a ``functools.partial`` of one is) so the layer can be a
        static argument of ``jax.jit``.
      output_shape: None (found by abstract evaluation, unknown entries
        kept unknown), a tuple (the output shape but the first axis, which
        is the input's, as in Keras), or a function ``input_shape ->
        output_shape``.
      name: optional, used by summaries.
      dtype, param_dtype: the dtype policy, as for :class:`Activation`.

    Its config holds the function object itself, so it round-trips in the
    same process only (Keras serialises the bytecode; conv1djax does not).

    Example usage:

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> last = cj.Lambda(lambda x: x[..., -1:, :])  # the last step
    >>> last.compute_output_shape((None, 16, 8))
    (None, 1, 8)
    >>> last.apply({}, jnp.ones((2, 16, 8))).shape
    (2, 1, 8)
    """

    function: Callable
    output_shape: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not callable(self.function):
            raise TypeError(
                f"`function` of a Lambda layer must be callable; received "
                f"{self.function!r} of type {type(self.function).__name__}."
            )
        try:
            hash(self.function)
        except TypeError:
            raise TypeError(
                f"`function` of a Lambda layer must be hashable; received "
                f"{self.function!r}."
            ) from None
        out = self.output_shape
        if out is not None and not callable(out):
            object.__setattr__(self, "output_shape", check_shape_entries(out))

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Returns ``function(x)``, a floating array ``x`` first cast to the
        policy's compute dtype when ``dtype`` is set."""
        check_no_params(self, params)
        return self.function(self.cast_input(x))

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The output shape for ``input_shape``, by ``output_shape`` or by
        abstract evaluation."""
        shape = check_shape_entries(input_shape)
        if self.output_shape is None:
            return shapes.eval_output_shape(self.function, shape)
        if callable(self.output_shape):
            return tuple(self.output_shape(shape))
        return (*shape[:1], *self.output_shape)
