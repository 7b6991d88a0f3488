"""``Activation``: a parameter-free layer applying an activation function."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from conv1djax import activations, regularizers, shapes


@dataclasses.dataclass(frozen=True)
class Activation:
    """A parameter-free layer applying an activation, Keras's ``Activation``.

    Args:
      activation: a Keras activation name or a callable.
      activity_regularizer: optional penalty on the output (a loss term).

    Example usage:

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Activation("relu")
    >>> layer.init(None, (2, 5, 3)), layer.apply({}, jnp.array([-1.0, 2.0]))
    ({}, Array([0., 2.], dtype=float32))
    """

    activation: Any
    activity_regularizer: Any = None

    def __post_init__(self):
        fn = activations.get(self.activation, "activation")
        if fn is None:
            raise ValueError("`activation` of an Activation layer must not be None.")
        object.__setattr__(self, "activation", fn)
        object.__setattr__(
            self,
            "activity_regularizer",
            regularizers.get(self.activity_regularizer, "activity_regularizer"),
        )

    def init(self, key, input_shape, *, dtype=jnp.float32) -> dict:
        """Returns ``{}``: the layer has no params."""
        del key, input_shape, dtype
        return {}

    def apply(self, params, x):
        """Returns ``activation(x)``."""
        if params:
            raise ValueError(
                f"An Activation layer has no params; received keys {sorted(params)}."
            )
        return self.activation(jnp.asarray(x))

    def compute_output_shape(self, input_shape):
        """The input shape, or what the activation makes of it (``glu``)."""
        return shapes.eval_output_shape(self.activation, input_shape)

    def count_params(self, input_shape) -> int:
        del input_shape
        return 0

    def get_config(self) -> dict:
        return {
            "activation": activations.serialize(self.activation),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        return cls(**config)
