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

import dataclasses
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from conv1djax import models, protocol
from conv1djax._typing import LayerLike, Params, Shape
from conv1djax.layers.activation import Activation
from conv1djax.layers.base import ConvBase, FilteredConv, check_input
from conv1djax.layers.conv import Conv1D
from conv1djax.layers.pooling import AveragePooling1D, MaxPooling1D
from conv1djax.layers.reshaping import Cropping1D, UpSampling1D, ZeroPadding1D
from conv1djax.lowering import choose, reference

# ---- what each layer does to time -------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Timing:
    """How a layer maps its input stream to its output stream, all static:
    outputs come ``latency`` steps late, ``tail`` are emitted by the flush,
    ``rate`` output steps per input step, and ``history`` past input steps
    are kept in a buffer."""

    latency: int = 0
    tail: int = 0
    rate: int = 1
    history: int = 0
    # A strided window (a convolution or pooling with stride > 1): its
    # stride, extent and zero padding; it emits exact outputs (no latency).
    stride: int = 1
    window: int = 0
    left: int = 0
    right: int = 0
    # A transposed convolution's outputs held back: those its zero-stuffed
    # input stream computes past the end of apply's output.
    hold: int = 0


def _time_axis(layer: LayerLike) -> int:
    return (
        -1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -2
    )


def _conv_timing(layer: ConvBase) -> _Timing:
    k_eff = (layer.kernel_size[0] - 1) * layer.dilation_rate[0] + 1
    stride = layer.strides[0]
    if stride > 1:
        if layer.padding == "same":
            raise _unsupported(
                layer,
                f"strides={stride} with padding='same' pads by an amount that depends "
                "on the whole length; use 'causal', 'valid' or an explicit padding",
            )
        (left, right), = layer.paddings((4 * k_eff,))  # fmt: skip
        return _Timing(stride=stride, window=k_eff, left=left, right=right)
    (left, right), = layer.paddings((4 * k_eff,))  # fmt: skip
    return _Timing(latency=k_eff - 1 - left, tail=right, history=k_eff - 1)


def _transpose_timing(layer: ConvBase) -> _Timing:
    """A transposed convolution streams as the equivalent stride-1
    convolution over its input zero-stuffed ``x[0], 0, ..., x[1], ...``
    (``strides`` steps per input step): padded by its ``(left, right)``, of
    which the stuffing's trailing ``strides - 1`` zeros are already part; a
    right padding smaller than those holds outputs back."""
    k_eff = (layer.kernel_size[0] - 1) * layer.dilation_rate[0] + 1
    stride = layer.strides[0]
    (left, right), = layer.paddings((4 * k_eff,))  # fmt: skip
    right -= stride - 1
    hold = max(-right, 0)
    return _Timing(latency=k_eff - 1 - left + hold, tail=max(right, 0),
                   rate=stride, history=k_eff - 1, hold=hold)  # fmt: skip


def _unsupported(layer: LayerLike, why: str) -> TypeError:
    return TypeError(f"{type(layer).__name__} cannot stream: {why}.")


def _timing(layer: LayerLike) -> _Timing:
    """The layer's :class:`_Timing`, or a ``TypeError`` for a layer that
    cannot stream."""
    if isinstance(layer, ConvBase):
        if layer.rank != 1:
            raise _unsupported(
                layer, f"it is {layer.rank}-D; streaming is over time, 1-D"
            )
        if layer.transposed:
            return _transpose_timing(layer)
        if layer.padding_mode != "zeros":
            raise _unsupported(
                layer, f"padding_mode={layer.padding_mode!r} pads with future samples"
            )
        timing = _conv_timing(layer)
        if timing.latency < 0:
            raise _unsupported(
                layer,
                f"its left padding exceeds its kernel's extent less one (padding="
                f"{layer.padding!r}), so outputs would precede their inputs",
            )
        return timing
    if isinstance(layer, Activation):
        return _Timing()
    if isinstance(layer, MaxPooling1D | AveragePooling1D):
        if layer.padding != "valid":
            raise _unsupported(
                layer, "pooling streams with padding='valid' only (its 'same' "
                "padding depends on the whole length)"
            )  # fmt: skip
        return _Timing(stride=layer.strides[0], window=layer.pool_size[0])
    if isinstance(layer, ZeroPadding1D):
        (left, right), = layer.padding  # fmt: skip
        return _Timing(tail=left + right, history=left)
    if isinstance(layer, Cropping1D):
        (left, right), = layer.cropping  # fmt: skip
        return _Timing(latency=left + right, history=right)
    if isinstance(layer, UpSampling1D):
        return _Timing(rate=layer.size[0])
    raise _unsupported(
        layer,
        "streaming covers the 1-D convolutions, transposed ones too, valid pooling, "
        "Activation, ZeroPadding1D, Cropping1D, UpSampling1D and Sequential, "
        "Residual and Parallel of them",
    )


def _branches(layer: LayerLike) -> list[LayerLike | None]:
    if isinstance(layer, models.Residual):
        return [layer.inner, layer.shortcut]  # None: the identity
    if isinstance(layer, models.Parallel):
        return list(layer.branches)
    return []


def _latency_after(layer: LayerLike | None, latency_in: int) -> int:
    """The latency of ``layer``'s output stream when its input's is
    ``latency_in``: a strided window absorbs its input's (its outputs are
    exact), the others add theirs (upsampling scales it)."""
    if layer is None:  # a Residual's identity
        return latency_in
    if isinstance(layer, models.Sequential):
        for sub in layer.layers:
            latency_in = _latency_after(sub, latency_in)
        return latency_in
    if isinstance(layer, models.Residual | models.Parallel):
        return max(_latency_after(b, latency_in) for b in _branches(layer))
    timing = _timing(layer)
    if timing.stride > 1:
        return 0
    return latency_in * timing.rate + timing.latency


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
    return _latency_after(model, 0)


def _field_in(layer: LayerLike | None, field: int) -> int:
    """The input steps that ``field`` consecutive output steps depend on."""
    if layer is None:
        return field
    if isinstance(layer, models.Sequential):
        for sub in reversed(layer.layers):
            field = _field_in(sub, field)
        return field
    if isinstance(layer, models.Residual | models.Parallel):
        return max(_field_in(b, field) for b in _branches(layer))
    timing = _timing(layer)
    if timing.stride > 1:
        return (field - 1) * timing.stride + timing.window
    if isinstance(layer, ConvBase):
        return field + timing.history
    return -(-field // timing.rate)


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
    return _field_in(model, 1)


# ---- state -------------------------------------------------------------------------


def _out_channels(layer: LayerLike | None, channels: int) -> int:
    if layer is None:
        return channels
    probe = _probe_shape(layer, channels)
    shape = layer.compute_output_shape(probe)
    return shape[-1] if _time_axis(layer) == -2 else shape[-2]


def _probe_shape(layer: LayerLike, channels: int) -> Shape:
    steps = 64 + 4 * receptive_field(layer)
    return (1, channels, steps) if _time_axis(layer) == -1 else (1, steps, channels)


def _format_of(model: LayerLike | None) -> str:
    """The data format of the model's first layer with one."""
    if model is None:
        return "channels_last"
    for sub in _walk_leaves(model):
        if hasattr(sub, "data_format"):
            return sub.data_format
    return "channels_last"


def _walk_leaves(model: LayerLike | None) -> Iterator[LayerLike]:
    if model is None:
        return
    if isinstance(model, models.Sequential):
        for sub in model.layers:
            yield from _walk_leaves(sub)
    elif isinstance(model, models.Residual | models.Parallel):
        for b in _branches(model):
            yield from _walk_leaves(b)
    else:
        yield model


def _buffer(
    batch_shape: tuple[int, ...],
    steps: int,
    channels: int,
    time_axis: int,
    dtype: DTypeLike,
) -> jax.Array:
    shape = (*batch_shape, steps, channels) if time_axis == -2 else (
        *batch_shape, channels, steps)  # fmt: skip
    return jnp.zeros(shape, dtype)


def _init(
    layer: LayerLike | None,
    channels: int,
    batch_shape: tuple[int, ...],
    dtype: DTypeLike,
    fmt: str,
    latency_in: int,
) -> tuple[dict[str, Any], int]:
    """``(state, output channels)`` for ``layer`` on a stream of
    ``channels`` channels whose latency is ``latency_in``."""
    if layer is None:
        return {}, channels
    if isinstance(layer, models.Sequential):
        states = []
        for sub in layer.layers:
            state, channels = _init(sub, channels, batch_shape, dtype, fmt, latency_in)
            latency_in = _latency_after(sub, latency_in)
            states.append(state)
        return {"layers": states}, channels
    if isinstance(layer, models.Residual | models.Parallel):
        latency = _latency_after(layer, latency_in)
        states, delays, outs = [], [], []
        for b in _branches(layer):
            state, out = _init(b, channels, batch_shape, dtype, fmt, latency_in)
            states.append(state)
            outs.append(out)
            axis = _time_axis_of(b, fmt)
            delay = latency - _latency_after(b, latency_in)
            delays.append(_buffer(batch_shape, delay, out, axis, dtype))
        out = sum(outs) if getattr(layer, "merge", "add") == "concat" else outs[0]
        return {"branches": states, "delays": delays}, out
    timing = _timing(layer)
    axis = _time_axis(layer)
    out = _out_channels(layer, channels)
    if timing.stride > 1:
        # The left padding's zeros, less the placeholders that stand for them;
        # placeholders beyond them are skipped. Both counts are static (the
        # arrays' lengths): a strided window's phase is in its state's shapes.
        return {
            "buffer": _buffer(batch_shape, max(timing.left - latency_in, 0), channels,
                              axis, dtype),
            "skip": jnp.zeros((max(latency_in - timing.left, 0),), jnp.int8),
            "empty": _buffer(batch_shape, 0, out, axis, dtype),
        }, out  # fmt: skip
    state = {
        "steps": jnp.zeros(batch_shape, jnp.int32),
        "buffer": _buffer(batch_shape, _ring_length(timing), channels, axis, dtype),
    }
    if timing.history:
        state["head"] = jnp.zeros((), jnp.int32)
    if timing.hold:
        state["hold"] = _buffer(batch_shape, timing.hold, out, axis, dtype)
    return state, out


def _time_axis_of(model: LayerLike | None, fmt: str) -> int:
    leaves = list(_walk_leaves(model))
    if not leaves:
        return -1 if fmt == "channels_first" else -2
    return _time_axis(leaves[-1])


def _infer_channels(model: LayerLike, params: Params) -> int | None:
    """The input's channel count, from the first convolution's kernel when
    only channel-keeping layers come before it."""
    for layer, own, _ in protocol.walk(model, params):
        if protocol.sublayers(layer):
            continue
        if isinstance(layer, ConvBase):
            return layer.input_channels(own)
        if isinstance(layer, UpSampling1D | ZeroPadding1D | Cropping1D | Activation):
            continue
        return None
    return None


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
        first = next(iter(_walk_leaves(model)), None)
        leaves = jax.tree.leaves(params)
        dtype = getattr(first, "compute_dtype", None) or (
            leaves[0].dtype if leaves else jnp.float32
        )
    batch_shape = tuple(int(b) for b in batch_shape)
    fmt = _format_of(model)
    state, out = _init(model, channels, batch_shape, dtype, fmt, 0)
    axis = _time_axis_of(model, fmt)
    return {
        "model": state,
        # The output with no steps: what a flush with nothing pending returns.
        "empty": _buffer(batch_shape, 0, out, axis, dtype),
        # The input with no steps: what stream_apply checks a chunk against.
        "input": _buffer(batch_shape, 0, channels,
                         -1 if fmt == "channels_first" else -2, dtype),
    }  # fmt: skip


# ---- steps ---------------------------------------------------------------------------


def _concat(a: jax.Array, b: jax.Array, axis: int) -> jax.Array:
    return jnp.concatenate([a.astype(b.dtype), b], axis=axis)


def _take(x: jax.Array, start: int, stop: int, axis: int) -> jax.Array:
    return lax.slice_in_dim(x, start, stop, axis=axis % x.ndim)


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


def _strided_step(
    layer: LayerLike, params: Params, state: dict[str, Any], x: jax.Array
) -> tuple[jax.Array, dict[str, Any]]:
    """Emits the outputs ``x`` completes; keeps the rest (and the phase)."""
    timing = _timing(layer)
    axis = _time_axis(layer)
    skip = state["skip"].shape[0]
    drop = min(skip, x.shape[axis])
    x = _take(x, drop, x.shape[axis], axis)
    z = _concat(state["buffer"], x, axis)
    length, k, s = z.shape[axis], timing.window, timing.stride
    count = (length - k) // s + 1 if length >= k else 0
    if count:
        y = _valid(layer).apply(params, _take(z, 0, (count - 1) * s + k, axis))
    else:
        y = state["empty"]
    start = count * s
    buffer = _take(z, min(start, length), length, axis)
    skip = skip - drop + max(start - length, 0)
    return y, {"buffer": buffer.astype(state["buffer"].dtype),
               "skip": jnp.zeros((skip,), jnp.int8), "empty": state["empty"]}  # fmt: skip


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


def _ring_length(timing: _Timing) -> int:
    """The rows of a stride-1 layer's input ring: its history and the step
    that arrives (0 without history)."""
    return timing.history + 1 if timing.history else 0


def _ring_rows(ring: jax.Array, head: jax.Array, offsets: jax.Array,
               axis: int) -> jax.Array:  # fmt: skip
    """The ring's rows ``offsets`` steps after the oldest input it keeps.
    The ring's slot ``head`` takes the next input; the slots after it,
    cyclically, hold the last ``len - 1`` inputs, oldest first."""
    return jnp.take(ring, (head + 1 + offsets) % ring.shape[axis], axis=axis)


def _history(state: dict[str, Any], axis: int) -> jax.Array:
    """The ring's past inputs in time order (oldest first)."""
    ring = state["buffer"]
    if "head" not in state:
        return ring
    return _ring_rows(ring, state["head"], jnp.arange(ring.shape[axis] - 1), axis)


def _one_step_window(
    state: dict[str, Any], x: jax.Array, offsets: Sequence[int], axis: int
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


def _conv_spec(layer: LayerLike, params: Params) -> tuple[LayerLike, Params]:
    """The stride-1 "valid" convolution a convolutional leaf runs on its
    input stream, and its params (a transposed one's forward equivalent)."""
    if getattr(layer, "transposed", False):
        return _forward_equivalent(layer, params)
    return _valid(layer), params


def _leaf_step(
    layer: LayerLike,
    params: Params,
    state: dict[str, Any],
    x: jax.Array,
    threshold: int,
    *,
    stuffed: bool = False,
) -> tuple[jax.Array, dict[str, Any]]:
    """One chunk through a stride-1 layer; ``threshold``: how many outputs
    of the stream are placeholders. A transposed convolution's chunk is
    zero-stuffed first (unless ``stuffed``: the flush's zeros).

    A one-step chunk into a layer with history writes the step into the
    ring in place and reads the taps it needs (a convolution's kernel taps,
    a delay line's oldest step): a convolution then runs once on a window of
    its kernel's taps, with no copy of the history. Longer chunks run on the
    history and the chunk concatenated, and leave the ring in order."""
    timing = _timing(layer)
    axis = _time_axis(layer)
    batch_ndim = state["steps"].ndim
    if getattr(layer, "transposed", False) and not stuffed:
        x = _stuff(x, timing.rate, axis)
    n = x.shape[axis]
    new: dict[str, Any] = {}
    if timing.history and n == 1:
        if isinstance(layer, ConvBase):
            spec, spec_params = _conv_spec(layer, params)
            step = spec.dilation_rate[0]
            offsets = list(range(0, timing.history, step))
            window, new["buffer"], new["head"] = _one_step_window(state, x, offsets,
                                                                  axis)  # fmt: skip
            y = _window_spec(spec, spec_params, x.shape[:batch_ndim]).apply(
                spec_params, window
            )
        else:  # a delay line: the oldest step kept
            window, new["buffer"], new["head"] = _one_step_window(state, x, [0], axis)
            y = _take(window, 0, 1, axis)
    else:
        z = _concat(_history(state, axis), x, axis)
        if isinstance(layer, ConvBase):
            spec, spec_params = _conv_spec(layer, params)
            y = spec.apply(spec_params, z)
        elif isinstance(layer, ZeroPadding1D | Cropping1D):  # a delay line
            y = _take(z, 0, n, axis)
        else:  # Activation, UpSampling1D
            y = layer.apply(params, x)
        ring = _ring_length(timing)
        new["buffer"] = _take(z, z.shape[axis] - ring, z.shape[axis], axis).astype(
            state["buffer"].dtype
        )
        if timing.history:  # in order: the oldest at slot 1, the next at 0
            new["head"] = jnp.zeros((), jnp.int32)
    out_n = y.shape[axis]
    held = max(threshold - timing.hold, 0)
    y = _mask(y, state["steps"], held, axis, batch_ndim)
    new["steps"] = (
        jnp.minimum(state["steps"] + out_n, held).astype(jnp.int32)
        if held
        else state["steps"]
    )
    if timing.hold:
        z = _concat(state["hold"], y, axis)
        y = _take(z, 0, out_n, axis)
        new["hold"] = _take(z, out_n, z.shape[axis], axis).astype(state["hold"].dtype)
    return y, new


@functools.lru_cache(maxsize=256)
def _window_layer(layer: LayerLike, impl: str) -> LayerLike:
    return dataclasses.replace(layer, dilation_rate=(1,), impl=impl)


def _window_spec(
    spec: LayerLike, params: Params, batch_shape: tuple[int, ...]
) -> LayerLike:
    """``spec`` (stride 1, "valid") without dilation, to run on a window of
    its taps, with the lowering ``impl="auto"`` takes for one output per
    example (:func:`~conv1djax.lowering.choose.choose_step_impl`)."""
    impl = spec.impl
    if impl == "auto":
        kernels = [p for name, p in params.items() if name.endswith("kernel")]
        impl = choose.choose_step_impl(
            work=math.prod(batch_shape) * sum(int(k.size) for k in kernels),
            dtype=spec.compute_dtype or kernels[0].dtype,
            backend=jax.default_backend(),
        )
    return _window_layer(spec, impl)


def _forward_equivalent(
    layer: FilteredConv, params: Params
) -> tuple[Conv1D, dict[str, jax.Array]]:
    """A Conv1DTranspose as the stride-1 ``Conv1D`` over its zero-stuffed
    input, and that convolution's params (the kernel regrouped and
    flipped)."""
    kernel = reference.transpose_kernel(jnp.asarray(params["kernel"]), layer.groups)
    forward_params = {"kernel": kernel}
    if layer.use_bias:
        forward_params["bias"] = params["bias"]
    return _forward_spec(layer), forward_params


@functools.lru_cache(maxsize=256)
def _forward_spec(layer: FilteredConv) -> Conv1D:
    return Conv1D(
        layer.filters, layer.kernel_size, padding="valid",
        data_format=layer.data_format, dilation_rate=layer.dilation_rate,
        groups=layer.groups, activation=layer.activation, use_bias=layer.use_bias,
        dtype=layer.dtype, param_dtype=layer.param_dtype,
    )  # fmt: skip


@functools.lru_cache(maxsize=256)
def _valid(layer: LayerLike) -> LayerLike:
    """The same convolution without padding (the stream supplies it)."""
    return dataclasses.replace(layer, padding="valid")


def _step(
    layer: LayerLike | None,
    params: Params,
    state: dict[str, Any],
    x: jax.Array,
    latency_in: int,
) -> tuple[jax.Array, dict[str, Any]]:
    """``(y, state)``; ``latency_in`` is the input stream's latency."""
    if layer is None:
        return x, state
    if isinstance(layer, models.Sequential):
        states, latency = [], latency_in
        for sub, p, s in zip(layer.layers, params, state["layers"], strict=True):
            x, s = _step(sub, p, s, x, latency)
            states.append(s)
            latency = _latency_after(sub, latency)
        return x, {"layers": states}
    if isinstance(layer, models.Residual | models.Parallel):
        ys, states, delays = _branch_steps(layer, params, state, x, latency_in)
        return _merge(layer, ys), {"branches": states, "delays": delays}
    timing = _timing(layer)
    if timing.stride > 1:
        return _strided_step(layer, params, state, x)
    axis = _time_axis(layer)
    if x.shape[axis] == 0:  # nothing came (a strided layer before completed none)
        channel_axis = -1 if axis == -2 else -2
        shape = list(x.shape)
        shape[channel_axis] = _out_channels(layer, x.shape[channel_axis])
        return jnp.zeros(shape, x.dtype), state
    threshold = latency_in * timing.rate + timing.latency
    return _leaf_step(layer, params, state, x, threshold)


def _branch_params(layer: LayerLike, params: Params) -> list[Params]:
    if isinstance(layer, models.Residual):
        return [params["inner"], params.get("shortcut")]
    return list(params)


def _branch_steps(
    layer: LayerLike,
    params: Params,
    state: dict[str, Any],
    x: jax.Array,
    latency_in: int,
) -> tuple[list[jax.Array], list[dict[str, Any]], list[jax.Array]]:
    ys, states, delays = [], [], []
    for b, p, s, d in zip(_branches(layer), _branch_params(layer, params),
                          state["branches"], state["delays"], strict=True):  # fmt: skip
        y, s = _step(b, p, s, x, latency_in)
        axis = _time_axis_of(b, _format_of(layer))
        n = y.shape[axis]
        z = _concat(d, y, axis)
        ys.append(_take(z, 0, n, axis))
        delays.append(_take(z, n, z.shape[axis], axis).astype(d.dtype))
        states.append(s)
    return ys, states, delays


def _merge(layer: LayerLike, ys: list[jax.Array]) -> jax.Array:
    if isinstance(layer, models.Residual):
        return ys[0] + ys[1]
    return models._merge(ys, layer.merge, layer.axis)


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
    y, inner = _step(model, params, state["model"], x, 0)
    return y, {**state, "model": inner}


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
    fits = x.ndim == like.ndim and tuple(x.shape[:-2]) == tuple(batch) and (
        x.shape[-2] if channels_first else x.shape[-1]
    ) == channels
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


def _flush(
    layer: LayerLike | None, params: Params, state: dict[str, Any], latency_in: int
) -> tuple[jax.Array | None, dict[str, Any]]:
    """The outputs still pending at the end of the stream (a Python list of
    chunks, possibly empty), and the state after them."""
    if layer is None:
        return None, state
    if isinstance(layer, models.Sequential):
        pending, states, latency = None, [], latency_in
        for sub, p, s in zip(layer.layers, params, state["layers"], strict=True):
            if pending is not None:
                pending, s = _step(sub, p, s, pending, latency)
            tail, s = _flush(sub, p, s, latency)
            pending = _join(pending, tail, _time_axis_of(sub, _format_of(layer)))
            states.append(s)
            latency = _latency_after(sub, latency)
        return pending, {"layers": states}
    if isinstance(layer, models.Residual | models.Parallel):
        # Each branch's pending outputs: its delay line, then its own flush;
        # aligned branches have as many (apply's shapes agree).
        ys = []
        for b, p, s, d in zip(_branches(layer), _branch_params(layer, params),
                              state["branches"], state["delays"], strict=True):  # fmt: skip
            tail, _ = _flush(b, p, s, latency_in)
            axis = _time_axis_of(b, _format_of(layer))
            ys.append(d if tail is None else _concat(d, tail, axis))
        if ys[0].shape[axis] == 0:
            return None, state
        return _merge(layer, ys), state
    timing = _timing(layer)
    if timing.stride > 1:  # its right padding, as zeros: what they complete
        if not timing.right:
            return None, state
        zeros = _zeros_steps(state["buffer"], timing.right, _time_axis(layer))
        y, state = _strided_step(layer, params, state, zeros)
        return (y if y.shape[_time_axis(layer)] else None), state
    if timing.tail == 0:
        return None, state
    axis = _time_axis(layer)
    buffer = _history(state, axis)
    if isinstance(layer, ZeroPadding1D):  # the held samples, then the right zeros
        (_, right), = layer.padding  # fmt: skip
        return _concat(buffer, _zeros_steps(buffer, right, axis), axis), state
    # a convolution: its right padding, as zeros (after a transposed one's
    # stuffing: its input stream's own)
    zeros = _zeros_steps(buffer, timing.tail, axis)
    threshold = latency_in * timing.rate + timing.latency
    return _leaf_step(layer, params, state, zeros, threshold, stuffed=True)


def _zeros_steps(like: jax.Array, steps: int, axis: int) -> jax.Array:
    shape = list(like.shape)
    shape[axis % like.ndim] = steps
    return jnp.zeros(shape, like.dtype)


def _join(a: jax.Array | None, b: jax.Array | None, axis: int) -> jax.Array | None:
    if a is None:
        return b
    if b is None:
        return a
    return jnp.concatenate([a, b], axis=axis)


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
    tail, _ = _flush(model, params, state["model"], 0)
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
    axis = _time_axis_of(model, _format_of(model))
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

        state, ys = lax.scan(
            body, state, _chunks(_take(x, 0, whole, axis), chunk, axis)
        )
        outputs.append(_unchunk(ys, axis))
    if length > whole:
        y, state = stream_apply(model, params, state, _take(x, whole, length, axis))
        outputs.append(y)
    outputs.append(stream_flush(model, params, state))
    y = jnp.concatenate(outputs, axis=axis)
    return _take(y, stream_latency(model), y.shape[axis], axis)
