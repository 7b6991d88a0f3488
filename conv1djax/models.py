"""Composite layers: ``Sequential`` (a stack), ``Residual`` (a skip
connection) and ``Parallel`` (branches merged), and the Keras-like summary
table of a model of any depth.

Each composite follows :mod:`conv1djax.protocol`: it declares its sub-layers
in ``sublayers()`` and runs them through ``call``, so regularizers,
constraints and activity regularizers inside it, at any depth, reach
training. They nest in each other freely; ``model.summary(input_shape)``
lists them at every depth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from conv1djax import _validation, protocol, stream_contract
from conv1djax._typing import CallFn, Params, Shape, ShapeLike
from conv1djax.protocol import call_layer
from conv1djax.shapes import check_input
from conv1djax.stream_contract import Stream


def _layers_arg(layers: object, cls: str, arg: str) -> tuple[Any, ...]:
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise TypeError(
            f"`{arg}` of {cls} must be a list or tuple of layers; received "
            f"{layers!r} of type {type(layers).__name__}."
        )
    for i, layer in enumerate(layers):
        protocol.check_layer(layer, f"`{arg}[{i}]` of {cls}")
    return tuple(layers)


def _one_list(cls: str, arg: str, extra: tuple[Any, ...]) -> None:
    if extra:
        raise TypeError(
            f"{cls} takes one list of layers; received {len(extra) + 1} "
            f"positional arguments. Write cj.{cls}([layer_a, layer_b, ...])."
        )


class _Composite(protocol.Layer):
    """What the composites share: ``init`` of the sub-layers and
    ``count_params``; a subclass declares ``sublayers`` and
    ``sublayer_input_shapes``."""

    def sublayers(self) -> dict[Any, Any]:
        raise NotImplementedError

    def sublayer_input_shapes(self, input_shape: ShapeLike) -> dict[Any, Shape]:
        raise NotImplementedError

    def _init_sublayers(
        self, key: jax.Array | int, input_shape: ShapeLike, dtype: DTypeLike | None
    ) -> dict[Any, Params]:
        """``{key: params}`` of every sub-layer, each checked; ``key`` is a
        PRNG key or an int seed (``jax.random.key(seed)``)."""
        key = _validation.prng_key(key)
        subs = self.sublayers()
        shapes = self.sublayer_input_shapes(input_shape)
        keys = jax.random.split(key, max(len(subs), 1))
        return {
            k: protocol.init_checked(
                sub, rng, shapes[k], dtype, f"{type(self).__name__} sub-layer {k!r}"
            )
            for rng, (k, sub) in zip(keys, subs.items(), strict=False)
        }

    def count_params(self, input_shape: ShapeLike) -> int:
        """The number of scalars in the params for ``input_shape``."""
        shapes = self.sublayer_input_shapes(input_shape)
        return sum(
            protocol.count_params(sub, shapes[k]) for k, sub in self.sublayers().items()
        )


@dataclasses.dataclass(frozen=True, init=False)
class Sequential(_Composite):
    """A stack of layers, each feeding the next; immutable and hashable.

    ``params`` is a list: ``params[i]`` is layer ``i``'s (a dict, ``{}`` for a
    parameter-free layer, or a composite's own structure).

    Args:
      layers: a list or tuple of layers (conv specs, :class:`Activation`,
        composites, or any object following :mod:`conv1djax.protocol`).
      name: optional, used by summaries.
      trainable: False freezes the params of every layer in it in the train
        step (keyword-only; :func:`conv1djax.protocol.frozen_walk`).

    Raises:
      TypeError: for an entry that is not a layer or is not hashable, or for
        layers passed as separate arguments.

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

    layers: tuple[Any, ...]

    def __init__(
        self, layers: Sequence[Any], *extra: Any, name: str | None = None,
        trainable: bool = True,
    ) -> None:  # fmt: skip
        _one_list("Sequential", "layers", extra)
        object.__setattr__(self, "layers", _layers_arg(layers, "Sequential", "layers"))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "trainable", trainable)
        self.__post_init__()
        named = [layer.name for layer in self.layers if getattr(layer, "name", None)]
        duplicates = sorted({n for n in named if named.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"The layers of a Sequential must have unique names; {duplicates} "
                "is used more than once."
            )

    def sublayers(self) -> dict[int, Any]:
        """``{i: layers[i]}``: layer ``i``'s params are ``params[i]``."""
        return dict(enumerate(self.layers))

    def layer_input_shapes(self, input_shape: ShapeLike) -> list[Shape]:
        """The input shape each layer sees, then the model's output shape."""
        shapes: list[Shape] = [tuple(input_shape)]
        for layer in self.layers:
            shapes.append(tuple(layer.compute_output_shape(shapes[-1])))
        return shapes

    def sublayer_input_shapes(self, input_shape: ShapeLike) -> dict[int, Shape]:
        """The input shape each layer sees, keyed as :meth:`sublayers`.

        Args:
          input_shape: the model's input shape.

        Returns:
          ``{i: shape}``: layer ``i``'s input shape, the output shape of the
              layers before it (:meth:`layer_input_shapes` without the
              model's output shape).
        """
        return dict(enumerate(self.layer_input_shapes(input_shape)[:-1]))

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> list[Params]:
        """Creates every layer's params, inferring each layer's input shape,
        in ``dtype`` when given, else in each layer's own default (a spec's
        ``param_dtype`` or policy: float32 for ``"mixed_bfloat16"``).
        ``key``: a PRNG key, or an int seed (``jax.random.key(seed)``).

        Raises:
          ValueError: when a layer's ``init`` returns params training could
            not walk (a leaf's must be a dict), naming the layer.
          TypeError: for a ``key`` that is neither a key nor an int.
        """
        return list(self._init_sublayers(key, input_shape, dtype).values())

    def apply(self, params: Params, x: ArrayLike, *, call: CallFn = call_layer) -> Any:
        """Runs the layers in order (each through ``call``)."""
        protocol.split_params(self, params)
        for layer, p in zip(self.layers, params, strict=True):
            x = call(layer, p, x)
        return x

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The model's output shape for ``input_shape``."""
        return self.layer_input_shapes(input_shape)[-1]

    # ---- streaming: the layers in turn (conv1djax.stream_contract) ----------

    def stream_latency(self, latency_in: int) -> int:
        """The latencies of the layers, added in turn."""
        return stream_contract.chain_latency(self.layers, latency_in)

    def stream_field(self, outputs: int) -> int:
        """The input steps ``outputs`` output steps depend on."""
        return stream_contract.chain_field(self.layers, outputs)

    def stream_init(
        self, channels: int, batch_shape: tuple[int, ...], dtype: DTypeLike,
        stream: Stream,
    ) -> tuple[dict[str, Any], int]:  # fmt: skip
        """``({"layers": [each layer's state]}, output channels)``."""
        return stream_contract.chain_init(self.layers, channels, batch_shape, dtype,
                                          stream)  # fmt: skip

    def stream_step(
        self, params: Params, state: dict[str, Any], x: jax.Array, stream: Stream
    ) -> tuple[jax.Array, dict[str, Any]]:
        """The chunk through every layer in turn."""
        return stream_contract.chain_step(self.layers, params, state, x, stream)

    def stream_flush(
        self, params: Params, state: dict[str, Any], stream: Stream
    ) -> tuple[jax.Array | None, dict[str, Any]]:
        """Each layer's pending outputs, through the layers after it."""
        return stream_contract.chain_flush(self.layers, params, state, stream)


# ---- merging ----------------------------------------------------------------

MERGES = ("add", "subtract", "multiply", "average", "maximum", "minimum", "concat")


def _merged_shape(shapes: Sequence[tuple], merge: str, axis: int, who: str) -> tuple:
    """The shape ``merge`` makes of branch outputs of ``shapes`` (None
    entries unknown): equal shapes, or equal but along ``axis`` for
    ``"concat"``.

    Raises:
      ValueError: naming ``who`` and the shapes that do not fit.
    """
    shapes = [tuple(s) for s in shapes]
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ValueError(f"{who} needs outputs of one rank to {merge}; got {shapes}.")
    (rank,) = ranks
    along = None
    if merge == "concat":
        if not -rank <= axis < rank:
            raise ValueError(
                f"{who}: `axis`={axis} is out of range for outputs of rank {rank}."
            )
        along = axis % rank
    merged = []
    for i, dims in enumerate(zip(*shapes, strict=True)):
        if i == along:
            merged.append(None if None in dims else sum(dims))
            continue
        known = {d for d in dims if d is not None}
        if len(known) > 1:
            what = (
                f"along every axis but {axis} to concatenate"
                if merge == "concat"
                else f"to {merge}"
            )
            hint = (
                " Give the Residual a shortcut layer (a 1x1 convolution, say) "
                "that maps the input to the inner output's shape."
                if who.startswith("Residual")
                else ""
            )
            raise ValueError(f"{who} needs equal shapes {what}; got {shapes}.{hint}")
        merged.append(known.pop() if known else None)
    return tuple(merged)


def _merge(ys: Sequence[jax.Array], merge: str, axis: int) -> jax.Array:
    if merge == "concat":
        return jnp.concatenate(ys, axis=axis)
    if merge == "subtract":
        return ys[0] - ys[1]
    if merge == "average":
        return sum(ys[1:], ys[0]) / len(ys)
    op = {"add": jnp.add, "multiply": jnp.multiply, "maximum": jnp.maximum,
          "minimum": jnp.minimum}[merge]  # fmt: skip
    out = ys[0]
    for y in ys[1:]:
        out = op(out, y)
    return out


class _Branched(_Composite):
    """What ``Residual`` and ``Parallel`` share in a stream: branches on one
    input, each delayed to the slowest, merged. A subclass gives its
    ``_branches()`` (None: the identity), their params and ``_merge_all``."""

    _concat_channels = False

    def _branches(self) -> list[Any]:
        raise NotImplementedError

    def _branch_params(self, params: Params) -> list[Params]:
        raise NotImplementedError

    def _merge_all(self, ys: list[jax.Array]) -> jax.Array:
        raise NotImplementedError

    # ---- streaming: branches aligned, then merged (conv1djax.stream_contract) --

    def stream_latency(self, latency_in: int) -> int:
        """The slowest branch's latency (the others are delayed to it)."""
        return stream_contract.branches_latency(self._branches(), latency_in)

    def stream_field(self, outputs: int) -> int:
        """The widest branch's field."""
        return stream_contract.branches_field(self._branches(), outputs)

    def stream_init(
        self, channels: int, batch_shape: tuple[int, ...], dtype: DTypeLike,
        stream: Stream,
    ) -> tuple[dict[str, Any], int]:  # fmt: skip
        """Each branch's state and the delay line aligning it."""
        return stream_contract.branches_init(
            self._branches(),
            self._concat_channels,
            channels,
            batch_shape,
            dtype,
            stream,
        )

    def stream_step(
        self, params: Params, state: dict[str, Any], x: jax.Array, stream: Stream
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Every branch on the chunk, aligned, merged."""
        return stream_contract.branches_step(
            self._branches(), self._branch_params(params), self._merge_all, state, x,
            stream,
        )  # fmt: skip

    def stream_flush(
        self, params: Params, state: dict[str, Any], stream: Stream
    ) -> tuple[jax.Array | None, dict[str, Any]]:
        """Every branch's pending outputs, merged."""
        return stream_contract.branches_flush(
            self._branches(), self._branch_params(params), self._merge_all, state,
            stream,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Residual(_Branched):
    """A skip connection: ``inner(x) + x``, or ``inner(x) + shortcut(x)``.

    Args:
      inner: the layer (often a :class:`Sequential`) on the main path.
      shortcut: None (the identity), or a layer mapping the input to the
        inner output's shape, such as a 1x1 ``Conv1D`` when the channel
        counts differ.
      name: optional, used by summaries.
      trainable: False freezes the params of every layer in it in the train
        step (keyword-only; :func:`conv1djax.protocol.frozen_walk`).

    Params are ``{"inner": ..., "shortcut": ...}`` (no ``"shortcut"`` for
    the identity).

    Raises:
      TypeError: when ``inner`` or ``shortcut`` is not a layer.
      ValueError (at ``init``, ``apply``, ``compute_output_shape``): when
        the two paths' shapes differ.

    Example usage:

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> block = cj.Residual(cj.Conv1D(8, 3, padding="causal"),
    ...                     shortcut=cj.Conv1D(8, 1))
    >>> params = block.init(jax.random.key(0), (None, 16, 2))
    >>> sorted(params), block.apply(params, jnp.ones((4, 16, 2))).shape
    (['inner', 'shortcut'], (4, 16, 8))
    """

    inner: Any
    shortcut: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        protocol.check_layer(self.inner, "`inner` of Residual")
        if self.shortcut is not None:
            protocol.check_layer(self.shortcut, "`shortcut` of Residual")

    def sublayers(self) -> dict[str, Any]:
        """``{"inner": inner, "shortcut": shortcut}`` (the latter if set)."""
        subs = {"inner": self.inner}
        if self.shortcut is not None:
            subs["shortcut"] = self.shortcut
        return subs

    def sublayer_input_shapes(self, input_shape: ShapeLike) -> dict[str, Shape]:
        """The input shape each sub-layer sees, keyed as :meth:`sublayers`.

        Args:
          input_shape: the block's input shape.

        Returns:
          ``{"inner": shape, "shortcut": shape}`` (the latter if set): both
              see the block's input, ``input_shape`` as a tuple.
        """
        return {key: tuple(input_shape) for key in self.sublayers()}

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The inner output's shape, checked against the shortcut's."""
        inner = self.inner.compute_output_shape(input_shape)
        skip = (
            tuple(input_shape)
            if self.shortcut is None
            else self.shortcut.compute_output_shape(input_shape)
        )
        return _merged_shape([inner, skip], "add", -1, "Residual")

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, Params]:
        """``{"inner": ..., "shortcut": ...}``, the shapes checked first;
        ``key``: a PRNG key, or an int seed (``jax.random.key(seed)``)."""
        self.compute_output_shape(input_shape)
        return self._init_sublayers(key, input_shape, dtype)

    def apply(self, params: Params, x: ArrayLike, *, call: CallFn = call_layer) -> Any:
        """``inner(x) + shortcut(x)`` (each through ``call``)."""
        protocol.split_params(self, params)
        x = check_input(x, "Residual", params)
        y = call(self.inner, params["inner"], x)
        skip = (
            x if self.shortcut is None else call(self.shortcut, params["shortcut"], x)
        )
        _merged_shape([jnp.shape(y), jnp.shape(skip)], "add", -1, "Residual")
        return y + skip

    def _branches(self) -> list[Any]:
        return [self.inner, self.shortcut]  # None: the identity

    def _branch_params(self, params: Params) -> list[Params]:
        return [params["inner"], params.get("shortcut")]

    def _merge_all(self, ys: list[jax.Array]) -> jax.Array:
        return ys[0] + ys[1]


@dataclasses.dataclass(frozen=True, init=False)
class Parallel(_Branched):
    """Branches that see the same input, their outputs merged: WaveNet's
    gated units (``merge="multiply"`` of a tanh and a sigmoid branch),
    Inception-style blocks (``merge="concat"``).

    Args:
      branches: a list or tuple of two or more layers.
      merge: "add", "subtract" (two branches), "multiply", "average",
        "maximum", "minimum" (Keras's merging layers; equal shapes) or
        "concat" (along ``axis``).
      axis: the axis "concat" joins along (-1, the channels of
        channels-last outputs; 1 for channels-first).
      name: optional, used by summaries.
      trainable: False freezes the params of every layer in it in the train
        step (keyword-only; :func:`conv1djax.protocol.frozen_walk`).

    Params are a list, one entry per branch.

    Example usage:

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> gated = cj.Parallel([cj.Conv1D(4, 2, padding="causal", activation="tanh"),
    ...                      cj.Conv1D(4, 2, padding="causal", activation="sigmoid")],
    ...                     merge="multiply")
    >>> params = gated.init(jax.random.key(0), (None, 16, 3))
    >>> gated.apply(params, jnp.ones((2, 16, 3))).shape
    (2, 16, 4)
    >>> cj.Parallel([cj.Conv1D(4, 1), cj.Conv1D(6, 3, padding="same")],
    ...             merge="concat").compute_output_shape((None, 16, 3))
    (None, 16, 10)
    """

    branches: tuple[Any, ...]
    merge: str = "add"
    axis: int = -1

    def __init__(
        self, branches: Sequence[Any], *extra: Any, merge: str = "add",
        axis: int = -1, name: str | None = None, trainable: bool = True,
    ) -> None:  # fmt: skip
        _one_list("Parallel", "branches", extra)
        branches = _layers_arg(branches, "Parallel", "branches")
        if len(branches) < 2:
            raise ValueError(
                f"Parallel needs two or more branches; received {len(branches)}."
            )
        if not (isinstance(merge, str) and merge.lower() in MERGES):
            raise ValueError(
                f"`merge` must be one of {', '.join(map(repr, MERGES))}; received "
                f"merge={merge!r}."
            )
        merge = merge.lower()
        if merge == "subtract" and len(branches) != 2:
            raise ValueError(
                f'merge="subtract" needs exactly two branches; received {len(branches)}.'
            )
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"`axis` must be an int; received axis={axis!r}.")
        for field, value in (("branches", branches), ("merge", merge), ("axis", axis),
                             ("name", name), ("trainable", trainable)):  # fmt: skip
            object.__setattr__(self, field, value)
        self.__post_init__()

    def sublayers(self) -> dict[int, Any]:
        """``{i: branches[i]}``: branch ``i``'s params are ``params[i]``."""
        return dict(enumerate(self.branches))

    def sublayer_input_shapes(self, input_shape: ShapeLike) -> dict[int, Shape]:
        """The input shape each branch sees, keyed as :meth:`sublayers`.

        Args:
          input_shape: the block's input shape.

        Returns:
          ``{i: shape}`` for every branch ``i``: each sees the block's input,
              ``input_shape`` as a tuple.
        """
        return {i: tuple(input_shape) for i in range(len(self.branches))}

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The merged shape of the branch outputs, checked."""
        outs = [b.compute_output_shape(input_shape) for b in self.branches]
        return _merged_shape(outs, self.merge, self.axis, "Parallel")

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> list[Params]:
        """One params entry per branch, the shapes checked first; ``key``: a
        PRNG key, or an int seed (``jax.random.key(seed)``)."""
        self.compute_output_shape(input_shape)
        return list(self._init_sublayers(key, input_shape, dtype).values())

    def apply(self, params: Params, x: ArrayLike, *, call: CallFn = call_layer) -> Any:
        """Every branch on ``x`` (each through ``call``), merged."""
        protocol.split_params(self, params)
        ys = [call(b, p, x) for b, p in zip(self.branches, params, strict=True)]
        _merged_shape([jnp.shape(y) for y in ys], self.merge, self.axis, "Parallel")
        return _merge(ys, self.merge, self.axis)

    def _branches(self) -> list[Any]:
        return list(self.branches)

    def _branch_params(self, params: Params) -> list[Params]:
        return list(params)

    def _merge_all(self, ys: list[jax.Array]) -> jax.Array:
        return _merge(ys, self.merge, self.axis)

    @property
    def _concat_channels(self) -> bool:  # type: ignore[override]
        return self.merge == "concat"
