"""Models: ``Sequential``, a stack of layers.

A layer is any hashable object with

- ``init(key, input_shape, *, dtype) -> dict`` of params (``{}`` for none),
- ``apply(params, x) -> y``,
- ``compute_output_shape(input_shape) -> tuple``,

and optionally ``count_params(input_shape)``, an ``activity_regularizer``, and
per-weight ``<name>_regularizer`` / ``<name>_constraint`` attributes (see
:mod:`conv1djax.training`). The conv specs are layers; so are
:class:`~conv1djax.Activation` and :class:`Sequential` itself, so models nest.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

_LAYER_METHODS = ("init", "apply", "compute_output_shape")


def _check_layer(layer, index: int) -> None:
    missing = [m for m in _LAYER_METHODS if not callable(getattr(layer, m, None))]
    if missing:
        raise TypeError(
            f"Sequential layer {index} ({layer!r}) is not a layer: it lacks "
            f"{', '.join(missing)}. A layer needs init, apply and "
            "compute_output_shape, as cj.Conv1D and cj.Activation have."
        )
    try:
        hash(layer)
    except TypeError:
        raise TypeError(
            f"Sequential layer {index} ({layer!r}) must be hashable, so that the "
            "model can be a static argument of jax.jit."
        ) from None


def _snake(name: str) -> str:
    """Keras's layer-name rule: Conv1DTranspose -> conv1d_transpose."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclasses.dataclass(frozen=True, init=False)
class Sequential:
    """A stack of layers, each feeding the next; immutable and hashable.

    ``params`` is a list: ``params[i]`` is layer ``i``'s dict (``{}`` for a
    parameter-free layer).

    Args:
      layers: a sequence of layers (conv specs, :class:`Activation`, nested
        :class:`Sequential`, or any object with ``init``, ``apply`` and
        ``compute_output_shape``).

    Raises:
      TypeError: for an entry that is not a layer or is not hashable.

    Example usage:

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([
    ...     cj.Conv1D(8, 4, strides=2, padding="same"),
    ...     cj.Activation("relu"),
    ...     cj.Conv1DTranspose(1, 4, strides=2, padding="same"),
    ... ])
    >>> params = model.init(jax.random.key(0), (None, 32, 1))
    >>> [sorted(p) for p in params]
    [['bias', 'kernel'], [], ['bias', 'kernel']]
    >>> model.apply(params, jnp.ones((2, 32, 1))).shape
    (2, 32, 1)
    """

    layers: tuple

    def __init__(self, layers: Sequence):
        if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
            raise TypeError(
                f"`layers` must be a list or tuple of layers; received {layers!r}."
            )
        for i, layer in enumerate(layers):
            _check_layer(layer, i)
        object.__setattr__(self, "layers", tuple(layers))

    def _check_params(self, params) -> None:
        if not isinstance(params, Sequence) or len(params) != len(self.layers):
            got = len(params) if isinstance(params, Sequence) else type(params).__name__
            raise ValueError(
                f"Sequential params must be a list with one entry per layer "
                f"({len(self.layers)}); received {got}."
            )
        for i, p in enumerate(params):
            if not isinstance(p, Mapping | list | tuple):
                raise ValueError(
                    f"params[{i}] for layer {i} ({type(self.layers[i]).__name__}) "
                    f"must be a dict; received {type(p).__name__}."
                )

    def layer_input_shapes(self, input_shape) -> list[tuple]:
        """The input shape each layer sees, then the model's output shape."""
        shapes = [tuple(input_shape)]
        for layer in self.layers:
            shapes.append(tuple(layer.compute_output_shape(shapes[-1])))
        return shapes

    def init(self, key, input_shape, *, dtype=jnp.float32) -> list:
        """Creates every layer's params, inferring each layer's input shape."""
        keys = jax.random.split(key, max(len(self.layers), 1))
        shapes = self.layer_input_shapes(input_shape)
        return [
            layer.init(k, shape, dtype=dtype)
            for layer, k, shape in zip(self.layers, keys, shapes, strict=False)
        ]

    def apply(self, params, x):
        """Runs the layers in order."""
        self._check_params(params)
        for layer, p in zip(self.layers, params, strict=True):
            x = layer.apply(p, x)
        return x

    def compute_output_shape(self, input_shape):
        """The model's output shape for ``input_shape``."""
        return self.layer_input_shapes(input_shape)[-1]

    def count_params(self, input_shape) -> int:
        """The number of scalars in the params for ``input_shape``."""
        shapes = self.layer_input_shapes(input_shape)
        return sum(
            _count(layer, shape)
            for layer, shape in zip(self.layers, shapes, strict=False)
        )

    def summary(self, input_shape, print_fn: Callable[[str], Any] = print) -> str:
        """Prints (with ``print_fn``) and returns a Keras-like table of the
        layers, their output shapes and parameter counts.

        >>> import conv1djax as cj
        >>> _ = cj.Sequential([cj.Conv1D(4, 3), cj.Activation("relu")]).summary(
        ...     (None, 10, 2))
        Layer (type)              Output Shape   Param #
        ================================================
        conv1d (Conv1D)           (None, 8, 4)        28
        activation (Activation)   (None, 8, 4)         0
        ================================================
        Total params: 28
        """
        shapes = self.layer_input_shapes(input_shape)
        rows, seen = [], {}
        for layer, shape, out in zip(self.layers, shapes, shapes[1:], strict=False):
            base = _snake(type(layer).__name__)
            n = seen.get(base, 0)
            seen[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            rows.append(
                (
                    f"{name} ({type(layer).__name__})",
                    str(out),
                    f"{_count(layer, shape):,}",
                )
            )
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 3
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 3
        w2 = max([len("Param #")] + [len(r[2]) for r in rows])
        rule = "=" * (w0 + w1 + w2)
        lines = [f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>{w2}}", rule]
        lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in rows]
        lines += [rule, f"Total params: {self.count_params(input_shape):,}"]
        text = "\n".join(lines)
        print_fn(text)
        return text


def _count(layer, input_shape) -> int:
    if hasattr(layer, "count_params"):
        return int(layer.count_params(input_shape))
    params = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_shape))
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))
