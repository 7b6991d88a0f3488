"""Streaming inference: run a 1-D model chunk by chunk, any chunk length.

``cj.stream_init(model, params, batch_shape)`` makes the state,
``cj.stream_apply(model, params, state, x_chunk) -> (y_chunk, state)`` runs a
chunk and ``cj.stream_flush(model, params, state)`` emits what is still
pending at the end. The state is a pytree of fixed-shape arrays (each
layer's ring of the last inputs it needs with the position the next one
goes to, and a per-example step counter), so ``stream_apply`` compiles once
per chunk length and runs in constant memory on an endless stream. A
one-step chunk writes each ring in place and runs each convolution once on
a window of its kernel's taps; jit ``stream_apply`` with the state donated
(``donate_argnums=2``) so the rings are not copied per call.

A stride-1 layer emits as many steps as it receives (upsampling: ``size``
times as many), whatever the chunk's length, one included. Its outputs may
come late: a layer that needs ``d`` future steps for an output
(``padding="same"`` needs its right padding; ``"valid"`` its kernel's extent
less one) emits it ``d`` steps late, and the model's **latency** adds up its
layers' (:func:`stream_latency`; causal layers have none). The first
``latency`` outputs of a stream are zeros standing in; after them the outputs
are ``apply``'s, in order, and ``stream_flush`` emits the last ones, so ::

    concatenate(chunks' outputs)[latency:] ++ stream_flush(...) == apply(x)

to float32 rounding (tested for random models and chunkings). A **strided**
layer (a convolution with ``padding`` causal, valid or explicit, or pooling
with ``"valid"``) emits exactly the outputs a chunk completes, keeping the
leftover input: its outputs are exact (it absorbs its input's latency), and
their count varies with the phase. The phase is in the state's shapes, so a
strided model compiles once per chunk length and phase (at most the product
of its strides); chunks that are multiples of it compile once. Composites
align their branches: a ``Residual``'s skip path and a ``Parallel``'s faster
branches are delayed to the slowest branch.

Streamable: the 1-D convolutions ``Conv1D``, ``DepthwiseConv1D`` and
``SeparableConv1D`` (zeros padding mode; any dilation, groups, depth
multiplier, data format), ``Conv1DTranspose`` (``strides`` outputs per input
step; the overlapping ones held back until no later input can change them:
it streams as the stride-1 convolution of its zero-stuffed input),
``MaxPooling1D`` and ``AveragePooling1D`` with ``"valid"``, ``Activation``,
``ZeroPadding1D``, ``Cropping1D``, ``UpSampling1D``, and ``Sequential``,
``Residual`` and ``Parallel`` of them. Strided ``"same"`` (its padding
depends on the whole length) raises a ``TypeError`` saying so. :func:`stream_reset` restarts chosen examples of stride-1 models (a strided
layer's phase is shared by the batch, so there it refuses, clearly).

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> model = cj.Conv1D(1, 3, padding="causal")
>>> params = model.init(jax.random.key(0), (None, 8, 2))
>>> x = jnp.ones((1, 8, 2))
>>> state = cj.stream_init(model, params, (1,))
>>> y1, state = cj.stream_apply(model, params, state, x[:, :5])
>>> y2, state = cj.stream_apply(model, params, state, x[:, 5:])
>>> bool(jnp.allclose(jnp.concatenate([y1, y2], axis=1), model.apply(params, x)))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from conv1djax import protocol, stream_contract
from conv1djax._typing import LayerLike, Params
from conv1djax.shapes import check_input
from conv1djax.stream_contract import Stream, take


def stream_latency(model: LayerLike) -> int:
    """How many steps late the model's streamed outputs come (0 for causal
    models): the first ``stream_latency`` outputs of a stream are zeros
    standing in.

    >>> import conv1djax as cj
    >>> cj.stream_latency(cj.Conv1D(1, 5, padding="causal"))
    0
    >>> cj.stream_latency(cj.Conv1D(1, 5, padding="same"))
    2
    >>> cj.stream_latency(cj.Sequential([cj.Conv1D(4, 5, padding="same"),
    ...                                  cj.Conv1D(1, 3, padding="valid")]))
    4
    """
    return stream_contract.latency(model, 0)


def receptive_field(model: LayerLike) -> int:
    """How many input steps one output depends on: ``1 + sum(k_eff - 1)``
    over a stack of stride-1 convolutions; strides and upsampling counted.

    >>> import conv1djax as cj
    >>> cj.receptive_field(cj.Sequential([cj.Conv1D(4, 3),
    ...                                   cj.Conv1D(1, 3, dilation_rate=2)]))
    7
    >>> cj.receptive_field(cj.Sequential([cj.Conv1D(4, 3, strides=2),
    ...                                   cj.Conv1D(1, 3)]))
    7
    """
    return stream_contract.field(model, 1)


# ---- state -------------------------------------------------------------------------


def _infer_channels(model: LayerLike, params: Params) -> int | None:
    """The input's channel count: from the first leaf that reads it from its
    params (``input_channels``: a convolution's kernel), when only
    channel-keeping leaves come before it."""
    for layer, own, _ in protocol.walk(model, params):
        if protocol.sublayers(layer):
            continue
        read = getattr(layer, "input_channels", None)
        if callable(read):
            return int(read(own))
        if not _keeps_channels(layer):
            return None
    return None


def _keeps_channels(layer: LayerLike) -> bool:
    """Whether ``layer``'s output has its input's channel count (probed)."""
    try:
        return all(
            stream_contract.out_channels(layer, c, stream_contract.data_format(layer))
            == c
            for c in (3, 5)
        )
    except Exception:  # a layer the probe does not fit: not known to keep them
        return False


def stream_init(
    model: LayerLike,
    params: Params,
    batch_shape: Sequence[int],
    *,
    channels: int | None = None,
    dtype: DTypeLike | None = None,
) -> dict[str, Any]:
    """The state of a new stream through ``model``.

    Args:
      model: a streamable layer or composite (see the module docstring).
      params: its params.
      batch_shape: the batch axes of the chunks, e.g. ``(B,)``.
      channels: the input's channel count; by default read from the first
        convolution's kernel.
      dtype: the buffers' dtype (default: the first layer's compute dtype
        under a mixed-precision policy, else the first kernel's, else
        float32).

    Raises:
      TypeError: for a layer that cannot stream.
      ValueError: when ``channels`` cannot be inferred.

    >>> import jax, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(4, 3, padding="same"),
    ...                        cj.Conv1D(1, 3, padding="causal")])
    >>> params = model.init(jax.random.key(0), (None, 16, 2))
    >>> state = cj.stream_init(model, params, batch_shape=(3,))
    >>> [s["buffer"].shape for s in state["model"]["layers"]]  # rings: 2 past, 1 new
    [(3, 3, 2), (3, 3, 4)]
    """
    protocol.check_model(model)
    protocol.check_params(model, params)
    stream_latency(model)  # every layer streams, or a TypeError now
    if channels is None:
        channels = _infer_channels(model, params)
        if channels is None:
            raise ValueError(
                "Give `channels`: the input's channel count cannot be read from "
                "the params of this model's first layer."
            )
    if dtype is None:  # the first layer's compute dtype, else its kernel's
        first = next(stream_contract.leaves(model), None)
        leaves = jax.tree.leaves(params)
        dtype = getattr(first, "compute_dtype", None) or (
            leaves[0].dtype if leaves else jnp.float32
        )
    batch_shape = tuple(int(b) for b in batch_shape)
    fmt = stream_contract.data_format(model)
    state, out = stream_contract.init(
        model, channels, batch_shape, dtype, Stream(0, fmt)
    )
    axis = stream_contract.time_axis(model, fmt)
    return {
        "model": state,
        # The output with no steps: what a flush with nothing pending returns.
        "empty": stream_contract.buffer(batch_shape, 0, out, axis, dtype),
        # The input with no steps: what stream_apply checks a chunk against.
        "input": stream_contract.buffer(batch_shape, 0, channels,
                         -1 if fmt == "channels_first" else -2, dtype),
    }  # fmt: skip


# ---- steps ---------------------------------------------------------------------------


def stream_apply(
    model: LayerLike, params: Params, state: dict[str, Any], x_chunk: ArrayLike
) -> tuple[jax.Array, dict[str, Any]]:
    """Runs one chunk (any length, one step included): ``(y_chunk,
    state)``.

    ``y_chunk`` has as many steps as the chunk (times the upsampling); the
    first :func:`stream_latency` steps of a stream are zeros standing in.
    Jit it (``jax.jit(cj.stream_apply, donate_argnums=2)``: specs are
    static pytrees, and the donated state's buffers are updated in place):
    it compiles once per chunk length. Per sample, a loop compiled around it
    (:func:`stream_scan`, or a ``lax.scan`` of one-step chunks) is far
    cheaper than a Python call per sample: ``benchmarks/stream_bench.py``.

    The chunk is checked as ``apply`` checks its input, against the batch
    shape, channel count and layout the state was made for; an integer
    chunk is cast to the stream's dtype, as ``apply`` casts integer inputs.

    Raises:
      ValueError: for a chunk of another rank, batch shape or channel
        count, naming ``x_chunk``, its shape and the stream's.
      TypeError: for a chunk that is not numbers (a str, an array of
        strings or objects) or is complex, naming its dtype.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Conv1D(1, 3, padding="same")  # 1 step late
    >>> params = model.init(jax.random.key(0), (None, 8, 2))
    >>> x = jax.random.normal(jax.random.key(1), (1, 8, 2))
    >>> state = cj.stream_init(model, params, (1,))
    >>> outputs = []
    >>> for start, stop in [(0, 1), (1, 3), (3, 8)]:  # any chunk lengths
    ...     y, state = cj.stream_apply(model, params, state, x[:, start:stop])
    ...     outputs.append(y)
    >>> [y.shape[1] for y in outputs]
    [1, 2, 5]
    >>> outputs.append(cj.stream_flush(model, params, state))
    >>> streamed = jnp.concatenate(outputs, axis=1)[:, cj.stream_latency(model):]
    >>> bool(jnp.allclose(streamed, model.apply(params, x), atol=1e-5))
    True
    """
    x = _check_chunk(state, x_chunk)
    y, inner = stream_contract.step(model, params, state["model"], x, _stream(model))
    return y, {**state, "model": inner}


def _stream(model: LayerLike) -> Stream:
    """The stream a model receives: no latency, its data format."""
    return Stream(0, stream_contract.data_format(model))


def _check_chunk(state: dict[str, Any], x_chunk: ArrayLike) -> jax.Array:
    """``x_chunk`` as an array of the stream's batch shape, channel count and
    layout (the state's ``"input"``, which has no steps), checked as
    ``apply`` checks its input; an integer or bool chunk is cast to the
    stream's dtype, as ``apply`` casts integer inputs.

    Raises:
      TypeError: for a chunk that is not numbers (a str, an array of
        strings) or is complex, naming ``x_chunk`` and its dtype.
      ValueError: for a chunk of another rank, batch shape or channel
        count, naming both shapes.
    """
    x = check_input(x_chunk, "stream_apply", call="stream_apply", arg="x_chunk")
    like = state.get("input")
    if like is None:  # a state of another origin: nothing to check against
        return x
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(
            f"stream_apply takes real chunks; received `x_chunk` of dtype {x.dtype}."
        )
    *batch, a, b = like.shape
    channels_first = a != 0
    channels = a if channels_first else b
    fits = (
        x.ndim == like.ndim
        and tuple(x.shape[:-2]) == tuple(batch)
        and (x.shape[-2] if channels_first else x.shape[-1]) == channels
    )
    if not fits:
        inner = f"{channels}, steps" if channels_first else f"steps, {channels}"
        expected = f"({', '.join(map(str, batch))}{', ' if batch else ''}{inner})"
        raise ValueError(
            f"`x_chunk` must have the shape batch_shape + "
            f"{'(channels, steps)' if channels_first else '(steps, channels)'} = "
            f"{expected} of this stream (batch_shape={tuple(batch)} as given to "
            f"stream_init, {channels} input channels); received shape "
            f"{tuple(x.shape)}."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):  # integers, bools
        x = x.astype(like.dtype)
    return x


def _has_strided(state: Any) -> bool:
    if isinstance(state, dict):
        return "skip" in state or any(_has_strided(v) for v in state.values())
    if isinstance(state, list | tuple):
        return any(_has_strided(v) for v in state)
    return False


def stream_reset(state: dict[str, Any], mask: ArrayLike) -> dict[str, Any]:
    """Restarts the streams of the examples where ``mask`` (a boolean array
    of the batch shape) is True: their buffers and counters back to a new
    stream's; the others go on.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Conv1D(1, 3, padding="causal")
    >>> params = model.init(jax.random.key(0), (None, 8, 1))
    >>> state = cj.stream_init(model, params, (2,))
    >>> _, state = cj.stream_apply(model, params, state, jnp.ones((2, 5, 1)))
    >>> state = cj.stream_reset(state, jnp.array([True, False]))  # restart 0
    >>> y, state = cj.stream_apply(model, params, state, jnp.ones((2, 3, 1)))
    >>> bool(jnp.allclose(y[0], model.apply(params, jnp.ones((1, 3, 1)))[0]))
    True
    >>> bool(jnp.allclose(y[1], model.apply(params, jnp.ones((1, 8, 1)))[0, 5:]))
    True
    """
    mask = jnp.asarray(mask, bool)
    batch_shape = state["empty"].shape[: mask.ndim]
    if mask.shape != batch_shape:
        raise ValueError(
            f"`mask` must have the batch shape {batch_shape}; received {mask.shape}."
        )

    if _has_strided(state["model"]):
        raise ValueError(
            "stream_reset cannot restart some examples of a model with strided "
            "layers: their phase (how much input is buffered) is shared by the "
            "batch. Start a new stream with stream_init instead."
        )

    def reset(node: Any) -> Any:
        # A ring's head is shared by the batch: zeroed rings are a new
        # stream's wherever it points.
        if isinstance(node, dict):
            return {k: v if k == "head" else reset(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return type(node)(reset(v) for v in node)
        m = mask.reshape(mask.shape + (1,) * (node.ndim - mask.ndim))
        return jnp.where(m, jnp.zeros((), node.dtype), node)

    return {**state, "model": reset(state["model"])}


def stream_flush(model: LayerLike, params: Params, state: dict[str, Any]) -> jax.Array:
    """The outputs still pending at the end of the stream: those that need
    right padding (``"same"``, ``ZeroPadding1D``'s right side), as many as
    the model's tail (possibly none: a time axis of length 0).

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Conv1D(1, 5, padding="same")  # 2 steps late
    >>> params = model.init(jax.random.key(0), (None, 8, 1))
    >>> x = jax.random.normal(jax.random.key(1), (1, 8, 1))
    >>> state = cj.stream_init(model, params, (1,))
    >>> y, state = cj.stream_apply(model, params, state, x)
    >>> tail = cj.stream_flush(model, params, state)
    >>> tail.shape
    (1, 2, 1)
    >>> bool(jnp.allclose(tail, model.apply(params, x)[:, -2:], atol=1e-6))
    True
    """
    tail, _ = stream_contract.flush(model, params, state["model"], _stream(model))
    return state["empty"] if tail is None else tail


def _chunks(x: jax.Array, chunk: int, axis: int) -> jax.Array:
    """``x``'s time axis cut into chunks, stacked on a new leading axis."""
    whole = x.shape[axis] // chunk
    axis %= x.ndim
    x = x.reshape(*x.shape[:axis], whole, chunk, *x.shape[axis + 1 :])
    return jnp.moveaxis(x, axis, 0)


def _unchunk(ys: jax.Array, axis: int) -> jax.Array:
    """The inverse of :func:`_chunks` on the outputs: ``(chunks, *batch, ...)``
    back to one time axis."""
    at = ys.ndim + axis - 1  # where the chunk axis goes, before the time axis
    ys = jnp.moveaxis(ys, 0, at)
    return ys.reshape(
        *ys.shape[:at], ys.shape[at] * ys.shape[at + 1], *ys.shape[at + 2 :]
    )


def stream_scan(
    model: LayerLike, params: Params, x: ArrayLike, chunk: int
) -> jax.Array:
    """Streams all of ``x`` through the model in chunks of ``chunk`` steps
    with ``lax.scan`` (the remainder as a last, shorter chunk), then drops
    the latency and appends the flush: the result equals
    ``model.apply(params, x)``.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Conv1D(1, 5, padding="same")
    >>> params = model.init(jax.random.key(0), (None, 200, 2))
    >>> x = jnp.sin(jnp.arange(800.0)).reshape(2, 200, 2)
    >>> y = cj.stream_scan(model, params, x, chunk=32)  # 6 chunks, then 8 steps
    >>> y.shape
    (2, 200, 1)
    >>> bool(jnp.allclose(y, model.apply(params, x), atol=1e-5))
    True
    """
    x = check_input(x, "stream_scan", call="stream_scan")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(
            f"`chunk` of stream_scan must be a positive int; received chunk={chunk!r}."
        )
    axis = stream_contract.time_axis(model, stream_contract.data_format(model))
    length = x.shape[axis]
    channels = x.shape[-1] if axis == -2 else x.shape[-2]
    state = stream_init(model, params, x.shape[: x.ndim - 2], channels=channels,
                        dtype=x.dtype)  # fmt: skip
    whole = (length // chunk) * chunk
    outputs = []
    if whole:

        def body(s: dict[str, Any], c: jax.Array) -> tuple[dict[str, Any], jax.Array]:
            y, s = stream_apply(model, params, s, c)
            return s, y

        chunks = _chunks(take(x, 0, whole, axis), chunk, axis)
        after = jax.eval_shape(body, state, chunks[0])[0]
        if jax.tree.map(jnp.shape, after) != jax.tree.map(jnp.shape, state):
            raise ValueError(
                f"`chunk`={chunk} of stream_scan does not keep the phase of the "
                "model's strided layers (a strided window's phase is in its "
                "state's shapes, which a scan must keep from chunk to chunk): use "
                "a chunk that is a multiple of their strides, or stream_apply in "
                "a Python loop."
            )
        state, ys = lax.scan(body, state, chunks)
        outputs.append(_unchunk(ys, axis))
    if length > whole:
        y, state = stream_apply(model, params, state, take(x, whole, length, axis))
        outputs.append(y)
    outputs.append(stream_flush(model, params, state))
    y = jnp.concatenate(outputs, axis=axis)
    return take(y, stream_latency(model), y.shape[axis], axis)


# ---- the contract, checked --------------------------------------------------------


def _chunk_sizes(rng: Any, length: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < length:
        sizes.append(int(min(rng.choice([1, 1, 2, 3, 5, 8, 13]), length - sum(sizes))))
    return sizes


def check_stream(
    model: LayerLike,
    params: Params,
    x: ArrayLike,
    *,
    chunkings: Sequence[Sequence[int]] | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> None:
    """Checks the streaming contract of ``model`` on the input ``x`` (a
    library layer's or a user's: the test of a layer that streams).

    - For every chunking (by default a random one mixing lengths 1 to 13,
      and the whole sequence as one chunk), the streamed outputs less
      :func:`stream_latency` plus :func:`stream_flush` equal
      ``model.apply(params, x)``, and the first ``stream_latency`` outputs
      are zeros.
    - ``stream_apply`` jitted compiles once per chunk length and phase (the
      state's shapes), and the state keeps its structure and dtypes.
    - :func:`stream_reset` of every example, then the whole input again,
      gives ``apply``'s outputs again (models without a strided layer: a
      strided layer's phase is shared by the batch).

    Raises:
      AssertionError: naming the check, the chunking and the difference.

    >>> import jax, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(4, 3, padding="same"),
    ...                        cj.MaxPooling1D(2)])
    >>> params = model.init(0, (None, 20, 2))
    >>> cj.streaming.check_stream(model, params, jax.random.normal(
    ...     jax.random.key(0), (2, 20, 2)))
    """
    x = check_input(x, "check_stream", call="check_stream")
    fmt = stream_contract.data_format(model)
    axis = x.ndim - 1 if fmt == "channels_first" else x.ndim - 2
    length = x.shape[axis]
    channels = x.shape[axis - 1] if fmt == "channels_first" else x.shape[-1]
    expected = np.asarray(model.apply(params, x))
    if chunkings is None:
        chunkings = [_chunk_sizes(np.random.default_rng(seed), length), [length]]
    traces: list[Any] = []

    def traced(params: Params, state: dict[str, Any], chunk: jax.Array) -> Any:
        traces.append((chunk.shape, jax.tree.map(jnp.shape, state)))
        return stream_apply(model, params, state, chunk)

    step = jax.jit(traced)
    latency = stream_latency(model)

    def run(state: dict[str, Any], sizes: Sequence[int], what: str) -> Any:
        structure = jax.tree.map(lambda a: a.dtype, state)
        outputs, at = [], 0
        for n in sizes:
            y, state = step(params, state, lax.slice_in_dim(x, at, at + n, axis=axis))
            if jax.tree.map(lambda a: a.dtype, state) != structure:
                raise AssertionError(
                    f"stream_apply changed the state's structure or dtypes ({what})."
                )
            outputs.append(y)
            at += n
        outputs.append(stream_flush(model, params, state))
        y = np.asarray(jnp.concatenate(outputs, axis=axis))
        standing_in = np.take(y, np.arange(min(latency, y.shape[axis])), axis=axis)
        if np.any(standing_in != 0):
            raise AssertionError(
                f"the first {latency} outputs of a stream through {model!r} (its "
                f"latency) must be zeros standing in; in chunks of {list(sizes)} "
                f"({what}) they are not."
            )
        y = np.take(y, np.arange(latency, y.shape[axis]), axis=axis)
        np.testing.assert_allclose(
            y, expected, rtol=rtol, atol=atol,
            err_msg=f"streamed != apply for {model!r} in chunks of {list(sizes)} "
            f"({what})",
        )  # fmt: skip
        return state

    batch_shape = x.shape[: axis - 1] if fmt == "channels_first" else x.shape[:axis]
    state = None
    for sizes in chunkings:
        if sum(sizes) != length:
            raise ValueError(
                f"`chunkings` entry {list(sizes)} sums to {sum(sizes)}; the input "
                f"has {length} steps."
            )
        state = stream_init(model, params, batch_shape, channels=channels,
                            dtype=x.dtype)  # fmt: skip
        state = run(state, sizes, "a new stream")
    distinct = {(shape, str(shapes)) for shape, shapes in traces}
    if len(traces) != len(distinct):
        raise AssertionError(
            f"stream_apply traced {len(traces)} times for {len(distinct)} distinct "
            "chunk shapes and phases: the state's shapes must not change with the "
            "stream's contents."
        )
    if state is not None and not _has_strided(state["model"]):
        state = stream_reset(state, jnp.ones(batch_shape, bool))
        run(state, chunkings[0], "after stream_reset of every example")
