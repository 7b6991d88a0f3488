"""The type aliases the package's annotations share (a leaf module: it
imports nothing from the package, so every module may import it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

# A layer's params: a dict of arrays for a leaf layer, a nested list / dict
# of those for a composite (any pytree a layer's ``init`` returns).
Params: TypeAlias = Any
# A layer: anything with ``init``, ``apply`` and ``compute_output_shape``
# (the protocol of :mod:`conv1djax.protocol`, duck-typed).
LayerLike: TypeAlias = Any
# An input shape as the user gives it: ints, None for unknown entries.
ShapeLike: TypeAlias = Sequence[int | None]
# A shape the library returns: a tuple of ints and Nones.
Shape: TypeAlias = tuple[int | None, ...]
# One ``(left, right)`` padding per spatial axis.
Pads: TypeAlias = tuple[tuple[int, int], ...]
# A canonical convolution padding: a lower-cased name or explicit pairs.
Padding: TypeAlias = str | Pads
# How a composite runs a sub-layer: ``call(layer, params, x) -> y``
# (:func:`conv1djax.protocol.call_layer` by default).
CallFn: TypeAlias = Callable[[Any, Any, Any], Any]
