"""What a layer declares to stream, and the walks that compose it: the
layer side of :mod:`conv1djax.streaming` (which is the driver users call).

A layer streams in one of three ways, looked up in this order (by the
methods it has, never by its type):

1. **It streams itself**: it has ``stream_latency(latency_in)``,
   ``stream_field(field)``, ``stream_init(channels, batch_shape, dtype,
   data_format, latency_in)``, ``stream_step(params, state, x, latency_in)``
   and ``stream_flush(params, state, latency_in)``. The composites
   :class:`~conv1djax.Sequential`, :class:`~conv1djax.Residual` and
   :class:`~conv1djax.Parallel` do, with :func:`chain_init` ... and
   :func:`branches_init` ... below.
2. **A leaf with a timing**: it has ``stream_timing() -> Timing`` (how it maps
   its input stream to its output stream, all static) and
   ``stream_run(params, z) -> y``, its outputs on a window ``z`` of its
   input stream (the ``Timing.history`` past steps, then the chunk; a strided
   layer's buffered windows), as its ``"valid"`` form would compute them.
   Optionally ``stream_taps(params) -> (offsets, run)``: for a one-step chunk,
   the past steps it reads (offsets after the oldest kept) and how it maps
   them, then the new step, to its output (a dilated convolution reads
   every ``dilation``-th step). Optionally ``stream_check(ndim, time_axis)``,
   called when a stream starts: raises :func:`cannot_stream` for chunks of
   ``ndim`` axes whose time axis (``time_axis``, -2 or -1) it cannot stream
   along (a normalization over that axis). Every library layer that
   streams is one of these: the 1-D convolutions, pooling, padding,
   cropping, upsampling, ``Activation`` and the normalizations.
3. **A composite through** ``call``: a layer with ``sublayers()`` whose
   ``apply`` takes ``call`` (the WaveNet example's ``SkipSum``) streams by running its
   own ``apply`` with a ``call`` that steps each sub-layer on its state. Its
   own arithmetic must be pointwise in time (adds, products, channel
   slices and concatenations), and every sub-layer it calls must keep its
   input's latency and leave nothing to flush (causal convolutions do), so
   that whatever it combines is aligned; a sub-layer that does not is
   refused at ``stream_init``, naming it. Give such a layer the methods of
   (1) to stream it otherwise.

A layer with none of these cannot stream: ``TypeError`` naming it.

A user's leaf, pointwise in time, streams with two methods:

>>> import dataclasses, jax, jax.numpy as jnp, conv1djax as cj
>>> @dataclasses.dataclass(frozen=True)
... class Square(cj.Layer):
...     def init(self, key, input_shape, *, dtype=jnp.float32):
...         return {}
...     def apply(self, params, x):
...         return x * x
...     def compute_output_shape(self, input_shape):
...         return tuple(input_shape)
...     def stream_timing(self):
...         return cj.stream_contract.Timing()  # no latency, no history
...     def stream_run(self, params, z):
...         return self.apply(params, z)
>>> model = cj.Sequential([cj.Conv1D(2, 3, padding="same"), Square()])
>>> params = model.init(0, (None, 12, 1))
>>> cj.streaming.check_stream(model, params, jnp.ones((1, 12, 1)))
>>> cj.stream_latency(model)
1
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from conv1djax import protocol
from conv1djax._typing import LayerLike, Params

State = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a leaf layer maps its input stream to its output stream, all
    static.

    Attributes:
      latency: outputs come this many steps late (a ``"same"`` convolution's
        right padding; a ``"valid"`` one's kernel extent less one).
      tail: outputs the flush emits (what needs right padding), computed
        from that many zero steps.
      rate: output steps per input step (upsampling's ``size``, a transposed
        convolution's stride).
      history: past input steps kept in the layer's ring.
      span: input steps beyond the first that one output reads (a
        convolution's kernel extent less one; 0 for a delay line).
      stuff: the chunk is zero-stuffed by ``rate`` before the window (a
        transposed convolution streams as the stride-1 convolution of its
        zero-stuffed input).
      hold: outputs held back (a transposed convolution's, those its
        zero-stuffed stream computes past the end of ``apply``'s output).
      stride, window, left, right: a strided window's stride, extent and
        zero padding; such a layer emits exact outputs (no latency) as its
        input completes them, keeping the rest.
    """

    latency: int = 0
    tail: int = 0
    rate: int = 1
    history: int = 0
    span: int = 0
    stuff: bool = False
    hold: int = 0
    stride: int = 1
    window: int = 0
    left: int = 0
    right: int = 0


@dataclasses.dataclass(frozen=True)
class Stream:
    """The stream a layer receives: how many steps late it is (``latency``)
    and the model's ``data_format`` (the time axis of a layer that has no
    data format of its own, such as ``Activation``)."""

    latency: int = 0
    data_format: str = "channels_last"

    def after(self, layer: LayerLike | None) -> Stream:
        """The stream ``layer`` emits when it receives this one."""
        return dataclasses.replace(self, latency=latency(layer, self.latency))


def cannot_stream(layer: LayerLike, why: str) -> TypeError:
    """The error for a layer that cannot stream, saying why."""
    return TypeError(f"{type(layer).__name__} cannot stream: {why}.")


def require_1d(layer: LayerLike) -> None:
    """Raises the ``TypeError`` of a layer that is not 1-D: streaming is over
    time, one axis."""
    rank = getattr(layer, "rank", 1)
    if rank != 1:
        raise cannot_stream(layer, f"it is {rank}-D; streaming is over time, 1-D")


def _streams_itself(layer: LayerLike) -> bool:
    return callable(getattr(layer, "stream_step", None))


def _is_timed(layer: LayerLike) -> bool:
    return callable(getattr(layer, "stream_timing", None))


def _through_call(layer: LayerLike) -> bool:
    return bool(protocol.sublayers(layer)) and protocol.takes_call(layer)


def timing(layer: LayerLike) -> Timing:
    """A leaf's :class:`Timing`, or a ``TypeError`` for a layer with no way
    to stream."""
    if _is_timed(layer):
        return layer.stream_timing()
    raise cannot_stream(
        layer,
        "it declares no streaming rule (a leaf needs stream_timing and "
        "stream_run; a composite, sublayers() and an apply taking `call`; "
        "see conv1djax.stream_contract). The library's 1-D convolutions, "
        "transposed ones too, valid pooling, Activation, ZeroPadding1D, "
        "Cropping1D, UpSampling1D and Sequential, Residual and Parallel of them "
        "stream",
    )


# ---- static walks -----------------------------------------------------------------


def latency(layer: LayerLike | None, latency_in: int) -> int:
    """The latency of ``layer``'s output stream when its input's is
    ``latency_in`` (None: the identity). A strided window absorbs its
    input's (its outputs are exact), the others add theirs (upsampling
    scales it)."""
    if layer is None:
        return latency_in
    if _streams_itself(layer):
        return int(layer.stream_latency(latency_in))
    if not _is_timed(layer) and _through_call(layer):
        return _call_latency(layer, latency_in)
    t = timing(layer)
    if t.stride > 1:
        return 0
    return latency_in * t.rate + t.latency


def field(layer: LayerLike | None, outputs: int) -> int:
    """The input steps that ``outputs`` consecutive output steps depend on."""
    if layer is None:
        return outputs
    if _streams_itself(layer):
        return int(layer.stream_field(outputs))
    if not _is_timed(layer) and _through_call(layer):
        return max(field(sub, outputs) for sub in protocol.sublayers(layer).values())
    t = timing(layer)
    if t.stride > 1:
        return (outputs - 1) * t.stride + t.window
    if t.span:
        return outputs + t.span
    return -(-outputs // t.rate)


def leaves(layer: LayerLike | None) -> Iterator[LayerLike]:
    """The leaf layers below ``layer``, in declared order."""
    if layer is None:
        return
    subs = protocol.sublayers(layer)
    if not subs:
        yield layer
    for sub in subs.values():
        yield from leaves(sub)


def _own_format(layer: LayerLike | None, last: bool = False) -> str | None:
    """The data format of ``layer``'s first (or last) leaf that has one."""
    found = [getattr(leaf, "data_format", None) for leaf in leaves(layer)]
    found = [f for f in found if f is not None]
    return (found[-1] if last else found[0]) if found else None


def time_axis(layer: LayerLike | None, data_format: str = "channels_last") -> int:
    """The time axis of ``layer``'s output (-1 for channels-first, else -2):
    by its last leaf with a data format, else by ``data_format``, the
    stream's."""
    fmt = _own_format(layer, last=True) or data_format
    return -1 if fmt == "channels_first" else -2


def data_format(model: LayerLike | None) -> str:
    """The data format of the model's first leaf that has one."""
    return _own_format(model) or "channels_last"


def out_channels(
    layer: LayerLike | None, channels: int, fmt: str = "channels_last"
) -> int:
    """The channels of ``layer``'s output for an input of ``channels`` in a
    stream of data format ``fmt``."""
    if layer is None:
        return channels
    steps = 64 + 4 * field(layer, 1)
    first = (_own_format(layer) or fmt) == "channels_first"
    probe = (1, channels, steps) if first else (1, steps, channels)
    shape = layer.compute_output_shape(probe)
    return int(shape[-2] if time_axis(layer, fmt) == -1 else shape[-1])


# ---- arrays ---------------------------------------------------------------------


def buffer(
    batch_shape: tuple[int, ...], steps: int, channels: int, axis: int,
    dtype: DTypeLike,
) -> jax.Array:  # fmt: skip
    """Zeros of ``steps`` steps and ``channels`` channels, time on ``axis``."""
    shape = (*batch_shape, steps, channels) if axis == -2 else (
        *batch_shape, channels, steps)  # fmt: skip
    return jnp.zeros(shape, dtype)


def concat(a: jax.Array, b: jax.Array, axis: int) -> jax.Array:
    """``a`` then ``b`` along ``axis``, in ``b``'s dtype."""
    return jnp.concatenate([a.astype(b.dtype), b], axis=axis)


def take(x: jax.Array, start: int, stop: int, axis: int) -> jax.Array:
    """Steps ``start`` to ``stop`` of ``x`` along ``axis``."""
    return lax.slice_in_dim(x, start, stop, axis=axis % x.ndim)


def zeros_steps(like: jax.Array, steps: int, axis: int) -> jax.Array:
    """Zeros like ``like``, with ``steps`` steps along ``axis``."""
    shape = list(like.shape)
    shape[axis % like.ndim] = steps
    return jnp.zeros(shape, like.dtype)


def join(a: jax.Array | None, b: jax.Array | None, axis: int) -> jax.Array | None:
    """``a`` then ``b`` along ``axis``; None stands for no steps."""
    if a is None:
        return b
    if b is None:
        return a
    return jnp.concatenate([a, b], axis=axis)


def _mask(
    y: jax.Array, steps: jax.Array, threshold: int, axis: int, batch_ndim: int
) -> jax.Array:
    """Zeros at the outputs before ``threshold`` (per example: ``steps`` of
    shape batch_shape counts the outputs emitted so far)."""
    if threshold == 0:
        return y
    n = y.shape[axis]
    position = steps[..., None] + jnp.arange(n)  # batch_shape + (n,)
    keep = position >= threshold
    shape = list(y.shape[:batch_ndim]) + [1] * (y.ndim - batch_ndim)
    shape[axis % y.ndim] = n
    return jnp.where(keep.reshape(shape), y, jnp.zeros((), y.dtype))


def _stuff(x: jax.Array, stride: int, axis: int) -> jax.Array:
    """``x[0], 0, ..., 0, x[1], ...``: ``stride - 1`` zeros after each step."""
    if stride == 1:
        return x
    axis %= x.ndim
    zeros = jnp.zeros_like(x)
    stacked = jnp.stack([x] + [zeros] * (stride - 1), axis=axis + 1)
    return stacked.reshape(
        *x.shape[:axis], x.shape[axis] * stride, *x.shape[axis + 1 :]
    )


def _ring_length(t: Timing) -> int:
    """The rows of a stride-1 layer's input ring: its history and the step
    that arrives (0 without history)."""
    return t.history + 1 if t.history else 0


def _ring_rows(ring: jax.Array, head: jax.Array, offsets: jax.Array,
               axis: int) -> jax.Array:  # fmt: skip
    """The ring's rows ``offsets`` steps after the oldest input it keeps.
    The ring's slot ``head`` takes the next input; the slots after it,
    cyclically, hold the last ``len - 1`` inputs, oldest first."""
    return jnp.take(ring, (head + 1 + offsets) % ring.shape[axis], axis=axis)


def _history(state: State, axis: int) -> jax.Array:
    """The ring's past inputs in time order (oldest first)."""
    ring = state["buffer"]
    if "head" not in state:
        return ring
    return _ring_rows(ring, state["head"], jnp.arange(ring.shape[axis] - 1), axis)


def _one_step_window(
    state: State, x: jax.Array, offsets: Sequence[int], axis: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A one-step chunk written into the ring in place: ``(window, ring,
    head)``, the window holding the ring's inputs ``offsets`` steps after the
    oldest it keeps (in order), then ``x`` itself."""
    ring, head = state["buffer"], state["head"]
    ring = lax.dynamic_update_slice_in_dim(ring, x.astype(ring.dtype), head,
                                           axis % ring.ndim)  # fmt: skip
    taps = _ring_rows(ring, head, jnp.asarray(offsets, jnp.int32), axis)
    window = jnp.concatenate([taps.astype(x.dtype), x], axis=axis)
    return window, ring, (head + 1) % ring.shape[axis]


# ---- a leaf with a timing ------------------------------------------------------


def _leaf_axis(layer: LayerLike, stream: Stream) -> int:
    """A leaf's time axis: by its own data format, else the stream's."""
    return time_axis(layer, stream.data_format)


def _leaf_init(
    layer: LayerLike, channels: int, batch_shape: tuple[int, ...],
    dtype: DTypeLike, stream: Stream,
) -> tuple[State, int]:  # fmt: skip
    t = timing(layer)
    axis = _leaf_axis(layer, stream)
    check = getattr(layer, "stream_check", None)
    if callable(check):
        check(len(batch_shape) + 2, axis)
    out = out_channels(layer, channels, stream.data_format)
    if t.stride > 1:
        # The left padding's zeros, less the placeholders that stand for them;
        # placeholders beyond them are skipped. Both counts are static (the
        # arrays' lengths): a strided window's phase is in its state's shapes.
        return {
            "buffer": buffer(batch_shape, max(t.left - stream.latency, 0), channels,
                             axis, dtype),
            "skip": jnp.zeros((max(stream.latency - t.left, 0),), jnp.int8),
            "empty": buffer(batch_shape, 0, out, axis, dtype),
        }, out  # fmt: skip
    state = {
        "steps": jnp.zeros(batch_shape, jnp.int32),
        "buffer": buffer(batch_shape, _ring_length(t), channels, axis, dtype),
    }
    if t.history:
        state["head"] = jnp.zeros((), jnp.int32)
    if t.hold:
        state["hold"] = buffer(batch_shape, t.hold, out, axis, dtype)
    return state, out


def _strided_step(
    layer: LayerLike, params: Params, state: State, x: jax.Array, stream: Stream
) -> tuple[jax.Array, State]:
    """Emits the outputs ``x`` completes; keeps the rest (and the phase)."""
    t = timing(layer)
    axis = _leaf_axis(layer, stream)
    skip = state["skip"].shape[0]
    drop = min(skip, x.shape[axis])
    x = take(x, drop, x.shape[axis], axis)
    z = concat(state["buffer"], x, axis)
    length, k, s = z.shape[axis], t.window, t.stride
    count = (length - k) // s + 1 if length >= k else 0
    if count:
        y = layer.stream_run(params, take(z, 0, (count - 1) * s + k, axis))
    else:
        y = state["empty"]
    start = count * s
    rest = take(z, min(start, length), length, axis)
    skip = skip - drop + max(start - length, 0)
    return y, {"buffer": rest.astype(state["buffer"].dtype),
               "skip": jnp.zeros((skip,), jnp.int8), "empty": state["empty"]}  # fmt: skip


def _taps(
    layer: LayerLike, params: Params, t: Timing
) -> tuple[Sequence[int], Callable[[jax.Array], jax.Array]]:
    """A one-step chunk's taps: the layer's ``stream_taps``, else every past
    step and ``stream_run``."""
    declared = getattr(layer, "stream_taps", None)
    if callable(declared):
        offsets, run = declared(params)
        return offsets, run
    return range(t.history), lambda window: layer.stream_run(params, window)


def _leaf_step(
    layer: LayerLike, params: Params, state: State, x: jax.Array, stream: Stream,
    *, stuffed: bool = False,
) -> tuple[jax.Array, State]:  # fmt: skip
    """One chunk through a stride-1 layer. A zero-stuffing layer's chunk is
    stuffed first (unless ``stuffed``: the flush's zeros). The first
    ``stream.latency * rate + latency`` outputs of the stream are
    placeholders, zeros.

    A one-step chunk into a layer with history writes the step into the
    ring in place and reads the taps it needs (a convolution's kernel taps,
    a delay line's oldest step): a convolution then runs once on a window of
    its kernel's taps, with no copy of the history. Longer chunks run on the
    history and the chunk concatenated, and leave the ring in order."""
    t = timing(layer)
    axis = _leaf_axis(layer, stream)
    batch_ndim = state["steps"].ndim
    if t.stuff and not stuffed:
        x = _stuff(x, t.rate, axis)
    n = x.shape[axis]
    new: State = {}
    if t.history and n == 1:
        offsets, run = _taps(layer, params, t)
        window, new["buffer"], new["head"] = _one_step_window(state, x, offsets, axis)
        y = run(window)
    elif t.history:
        z = concat(_history(state, axis), x, axis)
        y = layer.stream_run(params, z)
        ring = _ring_length(t)
        new["buffer"] = take(z, z.shape[axis] - ring, z.shape[axis], axis).astype(
            state["buffer"].dtype
        )
        new["head"] = jnp.zeros((), jnp.int32)  # in order: the oldest at slot 1
    else:
        y = layer.stream_run(params, x)
        new["buffer"] = state["buffer"]
    out_n = y.shape[axis]
    held = max(stream.latency * t.rate + t.latency - t.hold, 0)
    y = _mask(y, state["steps"], held, axis, batch_ndim)
    new["steps"] = (
        jnp.minimum(state["steps"] + out_n, held).astype(jnp.int32)
        if held
        else state["steps"]
    )
    if t.hold:
        z = concat(state["hold"], y, axis)
        y = take(z, 0, out_n, axis)
        new["hold"] = take(z, out_n, z.shape[axis], axis).astype(state["hold"].dtype)
    return y, new


def _leaf_flush(
    layer: LayerLike, params: Params, state: State, stream: Stream
) -> tuple[jax.Array | None, State]:
    t = timing(layer)
    axis = _leaf_axis(layer, stream)
    if t.stride > 1:  # its right padding, as zeros: what they complete
        if not t.right:
            return None, state
        zeros = zeros_steps(state["buffer"], t.right, axis)
        y, state = _strided_step(layer, params, state, zeros, stream)
        return (y if y.shape[axis] else None), state
    if t.tail == 0:
        return None, state
    # its right padding, as zeros (after a zero-stuffing layer's stuffing:
    # its input stream's own)
    zeros = zeros_steps(_history(state, axis), t.tail, axis)
    return _leaf_step(layer, params, state, zeros, stream, stuffed=True)


# ---- dispatch ----------------------------------------------------------------------


def init(
    layer: LayerLike | None, channels: int, batch_shape: tuple[int, ...],
    dtype: DTypeLike, stream: Stream,
) -> tuple[State, int]:  # fmt: skip
    """``(state, output channels)`` of a new stream through ``layer`` (None:
    the identity) on an input of ``channels`` channels."""
    if layer is None:
        return {}, channels
    if _streams_itself(layer):
        state, out = layer.stream_init(channels, batch_shape, dtype, stream)
        return state, int(out)
    if not _is_timed(layer) and _through_call(layer):
        return _call_init(layer, channels, batch_shape, dtype, stream)
    return _leaf_init(layer, channels, batch_shape, dtype, stream)


def step(
    layer: LayerLike | None, params: Params, state: State, x: jax.Array,
    stream: Stream,
) -> tuple[jax.Array, State]:  # fmt: skip
    """``(y, state)`` for one chunk ``x``."""
    if layer is None:
        return x, state
    if _streams_itself(layer):
        return layer.stream_step(params, state, x, stream)
    if not _is_timed(layer) and _through_call(layer):
        return _call_step(layer, params, state, x, stream)
    t = timing(layer)
    if t.stride > 1:
        return _strided_step(layer, params, state, x, stream)
    axis = _leaf_axis(layer, stream)
    if x.shape[axis] == 0:  # nothing came (a strided layer before completed none)
        channel_axis = -1 if axis == -2 else -2
        shape = list(x.shape)
        shape[channel_axis] = out_channels(layer, x.shape[channel_axis],
                                           stream.data_format)  # fmt: skip
        return jnp.zeros(shape, x.dtype), state
    return _leaf_step(layer, params, state, x, stream)


def flush(
    layer: LayerLike | None, params: Params, state: State, stream: Stream
) -> tuple[jax.Array | None, State]:
    """The outputs still pending at the end of the stream (None for none),
    and the state after them."""
    if layer is None:
        return None, state
    if _streams_itself(layer):
        return layer.stream_flush(params, state, stream)
    if not _is_timed(layer) and _through_call(layer):
        return None, state  # nothing pending: checked at init
    return _leaf_flush(layer, params, state, stream)


# ---- a chain (Sequential) ---------------------------------------------------------


def chain_latency(layers: Sequence[LayerLike], latency_in: int) -> int:
    """The latency after ``layers`` run in turn: each adds its own."""
    for sub in layers:
        latency_in = latency(sub, latency_in)
    return latency_in


def chain_field(layers: Sequence[LayerLike], outputs: int) -> int:
    """The input steps ``outputs`` steps after ``layers`` depend on."""
    for sub in reversed(layers):
        outputs = field(sub, outputs)
    return outputs


def chain_init(
    layers: Sequence[LayerLike], channels: int, batch_shape: tuple[int, ...],
    dtype: DTypeLike, stream: Stream,
) -> tuple[State, int]:  # fmt: skip
    """The state of layers run one after the other: ``{"layers": [...]}``."""
    states = []
    for sub in layers:
        state, channels = init(sub, channels, batch_shape, dtype, stream)
        stream = stream.after(sub)
        states.append(state)
    return {"layers": states}, channels


def chain_step(
    layers: Sequence[LayerLike], params: Sequence[Params], state: State,
    x: jax.Array, stream: Stream,
) -> tuple[jax.Array, State]:  # fmt: skip
    """One chunk through ``layers`` in turn, each on its own state."""
    states = []
    for sub, p, s in zip(layers, params, state["layers"], strict=True):
        x, s = step(sub, p, s, x, stream)
        states.append(s)
        stream = stream.after(sub)
    return x, {"layers": states}


def chain_flush(
    layers: Sequence[LayerLike], params: Sequence[Params], state: State,
    stream: Stream,
) -> tuple[jax.Array | None, State]:  # fmt: skip
    """Each layer's pending outputs, run through the layers after it."""
    pending, states = None, []
    for sub, p, s in zip(layers, params, state["layers"], strict=True):
        if pending is not None:
            pending, s = step(sub, p, s, pending, stream)
        tail, s = flush(sub, p, s, stream)
        pending = join(pending, tail, time_axis(sub, stream.data_format))
        states.append(s)
        stream = stream.after(sub)
    return pending, {"layers": states}


# ---- branches on one input, merged (Residual, Parallel) ------------------------------

Merge = Callable[[list[jax.Array]], jax.Array]


def branches_latency(branches: Sequence[LayerLike | None], latency_in: int) -> int:
    """The slowest branch's latency: the others are delayed to it."""
    return max(latency(b, latency_in) for b in branches)


def branches_field(branches: Sequence[LayerLike | None], outputs: int) -> int:
    """The widest branch's field."""
    return max(field(b, outputs) for b in branches)


def branches_init(
    branches: Sequence[LayerLike | None], concat_channels: bool, channels: int,
    batch_shape: tuple[int, ...], dtype: DTypeLike, stream: Stream,
) -> tuple[State, int]:  # fmt: skip
    """Each branch's state and a delay line that aligns its outputs with the
    slowest branch's: ``{"branches": [...], "delays": [...]}``; the output
    channels are the branches' sum with ``concat_channels``, else the
    first's (None in ``branches``: the identity)."""
    slowest = branches_latency(branches, stream.latency)
    states, delays, outs = [], [], []
    for b in branches:
        state, out = init(b, channels, batch_shape, dtype, stream)
        states.append(state)
        outs.append(out)
        delay = slowest - latency(b, stream.latency)
        axis = time_axis(b, stream.data_format)
        delays.append(buffer(batch_shape, delay, out, axis, dtype))
    return {"branches": states, "delays": delays}, (
        sum(outs) if concat_channels else outs[0]
    )


def branches_step(
    branches: Sequence[LayerLike | None], params: Sequence[Params], merge: Merge,
    state: State, x: jax.Array, stream: Stream,
) -> tuple[jax.Array, State]:  # fmt: skip
    """One chunk through every branch, each output delayed to the slowest
    branch's, merged with ``merge``."""
    ys, states, delays = [], [], []
    for b, p, s, d in zip(branches, params, state["branches"], state["delays"],
                          strict=True):  # fmt: skip
        y, s = step(b, p, s, x, stream)
        axis = time_axis(b, stream.data_format)
        n = y.shape[axis]
        z = concat(d, y, axis)
        ys.append(take(z, 0, n, axis))
        delays.append(take(z, n, z.shape[axis], axis).astype(d.dtype))
        states.append(s)
    return merge(ys), {"branches": states, "delays": delays}


def branches_flush(
    branches: Sequence[LayerLike | None], params: Sequence[Params], merge: Merge,
    state: State, stream: Stream,
) -> tuple[jax.Array | None, State]:  # fmt: skip
    """Each branch's pending outputs: its delay line, then its own flush;
    aligned branches have as many (apply's shapes agree)."""
    ys = []
    for b, p, s, d in zip(branches, params, state["branches"], state["delays"],
                          strict=True):  # fmt: skip
        tail, _ = flush(b, p, s, stream)
        axis = time_axis(b, stream.data_format)
        ys.append(d if tail is None else concat(d, tail, axis))
    if ys[0].shape[time_axis(branches[0], stream.data_format)] == 0:
        return None, state
    return merge(ys), state


# ---- a composite through `call` ------------------------------------------------------


def _call_latency(layer: LayerLike, latency_in: int) -> int:
    for key, sub in protocol.sublayers(layer).items():
        if latency(sub, latency_in) != latency_in:
            raise cannot_stream(
                layer,
                f"its sub-layer {key!r} ({type(sub).__name__}) changes the stream's "
                f"latency (from {latency_in} to {latency(sub, latency_in)} steps), "
                f"and {type(layer).__name__} streams through `call`, which can only "
                "align sub-layers that keep it (causal ones). Give it stream_* "
                "methods (see conv1djax.stream_contract) or make the sub-layer "
                "causal",
            )
    return latency_in


class _Caller:
    """Matches the sub-layers a composite's ``apply`` runs through ``call``
    to their keys: the first declared key of that layer not yet called."""

    def __init__(self, layer: LayerLike) -> None:
        self.layer = layer
        self.subs = protocol.sublayers(layer)
        self.called: list[Any] = []

    def key(self, sub: LayerLike) -> Any:
        key = protocol.called_key(self.subs, sub, self.called)
        if key is not None:
            self.called.append(key)
            return key
        raise cannot_stream(
            self.layer,
            f"its apply ran {type(sub).__name__} through `call` more often than "
            "its sublayers() declares it (each declared sub-layer streams on its "
            "own state, once per chunk)",
        )


def _call_init(
    layer: LayerLike, channels: int, batch_shape: tuple[int, ...],
    dtype: DTypeLike, stream: Stream,
) -> tuple[State, int]:  # fmt: skip
    _call_latency(layer, stream.latency)
    steps = 64 + 4 * field(layer, 1)
    first = stream.data_format == "channels_first"
    probe = (1, channels, steps) if first else (1, steps, channels)
    shapes = protocol.sublayer_input_shapes(layer, probe, strict=True)
    states: dict[Any, State] = {}
    for key, sub in protocol.sublayers(layer).items():
        if key not in shapes:
            raise cannot_stream(
                layer, f"its apply does not run its sub-layer {key!r} through `call`"
            )
        shape = shapes[key]
        sub_channels = int(shape[-2] if first else shape[-1])  # type: ignore[arg-type]
        states[key], _ = init(sub, sub_channels, batch_shape, dtype, stream)
        abstract = jax.eval_shape(lambda sub=sub, shape=shape: sub.init(
            jax.random.key(0), shape))  # fmt: skip
        tail = jax.eval_shape(
            lambda p, s, sub=sub: flush(sub, p, s, stream)[0], abstract, states[key]
        )
        if tail is not None and math.prod(tail.shape) > 0:
            raise cannot_stream(
                layer,
                f"its sub-layer {key!r} ({type(sub).__name__}) leaves outputs to "
                "flush at the end of a stream (right padding), which a composite "
                "streamed through `call` cannot align. Give it stream_* methods "
                "(see conv1djax.stream_contract) or make the sub-layer causal",
            )
    return {"sublayers": states}, out_channels(layer, channels, stream.data_format)


def _call_step(
    layer: LayerLike, params: Params, state: State, x: jax.Array, stream: Stream
) -> tuple[jax.Array, State]:
    caller = _Caller(layer)
    new = dict(state["sublayers"])

    def call(sub: LayerLike, p: Params, v: jax.Array) -> jax.Array:
        key = caller.key(sub)
        y, new[key] = step(sub, p, state["sublayers"][key], v, stream)
        return y

    y = layer.apply(params, x, call=call)
    return y, {"sublayers": new}
