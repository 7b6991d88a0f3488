"""Streaming inference (cj.stream_init / stream_apply / stream_flush): the
concatenated chunk outputs, less the latency, plus the flush equal ``apply``
on the whole sequence, for random models of every streamable layer and
random chunkings (one step included); one compilation per chunk length;
fixed-shape state; per-example resets; the lax.scan driver; errors."""

import dataclasses
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv1djax as cj
from conftest import assert_close, normal

# ---- random streamable models --------------------------------------------------


def _padding(r, k_eff, keep=False):
    """A random padding; with ``keep``, one that keeps the length."""
    if keep:
        left = int(r.integers(0, k_eff))
        return ["causal", "same", ((left, k_eff - 1 - left),)][int(r.integers(3))]
    kind = r.integers(4)
    if kind == 0:
        return "causal"
    if kind == 1:
        return "same"
    if kind == 2:
        return "valid"
    left = int(r.integers(0, k_eff))  # at most k_eff - 1: no negative latency
    return ((left, int(r.integers(0, 4))),)


def _conv(r, channels, fmt, keep=False):
    k, d = int(r.integers(1, 5)), int(r.integers(1, 4))
    padding = _padding(r, (k - 1) * d + 1, keep)
    kind = r.integers(3)
    act = [None, "tanh", "relu"][int(r.integers(3))]
    if kind == 0:
        groups = 2 if channels % 2 == 0 and r.integers(2) else 1
        return cj.Conv1D(int(r.integers(1, 4)) * groups, k, padding=padding,
                         dilation_rate=d, groups=groups, activation=act,
                         data_format=fmt)  # fmt: skip
    if kind == 1:
        return cj.DepthwiseConv1D(k, padding=padding, dilation_rate=d,
                                  depth_multiplier=int(r.integers(1, 3)),
                                  activation=act, data_format=fmt)  # fmt: skip
    return cj.SeparableConv1D(int(r.integers(1, 4)), k, padding=padding,
                              dilation_rate=d, activation=act, data_format=fmt)  # fmt: skip


def _layer(r, channels, fmt, depth, keep=False):
    """A random streamable layer on ``channels`` channels, and its output
    channels; with ``keep``, one that keeps the length."""
    kind = int(r.integers(7 if depth < 2 else 4))
    if kind <= 1 or (keep and kind == 2):
        layer = _conv(r, channels, fmt, keep)
    elif kind == 2:
        layer = [cj.Activation("sigmoid"),
                 cj.ZeroPadding1D((int(r.integers(3)), int(r.integers(3))),
                                  data_format=fmt),
                 cj.Cropping1D((int(r.integers(3)), int(r.integers(3))))
                 if fmt == "channels_last" else cj.Activation("tanh"),
                 cj.UpSampling1D(2) if fmt == "channels_last"
                 else cj.Activation("relu")][int(r.integers(4))]  # fmt: skip
    elif kind == 3 and not keep:  # a strided window: exact outputs, a phase
        s = int(r.integers(2, 4))
        if r.integers(3) == 0:
            cls = [cj.MaxPooling1D, cj.AveragePooling1D][int(r.integers(2))]
            layer = cls(int(r.integers(1, 4)), strides=s, data_format=fmt)
        elif r.integers(3) == 0:  # transposed: s outputs per step, held back
            k = int(r.integers(1, 6))
            padding = ["valid", "same", int(r.integers(0, 2))][int(r.integers(3))]
            layer = cj.Conv1DTranspose(int(r.integers(1, 4)), k, strides=s,
                                       padding=padding, activation="tanh",
                                       data_format=fmt)  # fmt: skip
        else:
            k = int(r.integers(1, 5))
            padding = ["causal", "valid", ((int(r.integers(0, k)), int(r.integers(3))),)][
                int(r.integers(3))]  # fmt: skip
            layer = cj.Conv1D(int(r.integers(1, 4)), k, strides=s, padding=padding,
                              activation="tanh", data_format=fmt)  # fmt: skip
    elif kind == 3:
        layer = _conv(r, channels, fmt, keep)
    elif kind == 4:
        inner, out = _sequence(r, channels, fmt, depth + 1, keep=True)
        shortcut = None if out == channels else cj.Conv1D(out, 1, data_format=fmt)
        return cj.Residual(inner, shortcut=shortcut), out
    elif kind == 5:
        merge = ["add", "multiply", "concat", "maximum"][int(r.integers(4))]
        out = int(r.integers(1, 4))
        k = int(r.integers(1, 4))
        branches = [
            cj.Conv1D(out, k, padding="causal", data_format=fmt, activation="tanh"),
            cj.Conv1D(out, k + 1, padding="same", data_format=fmt),
            cj.Conv1D(out, 3, padding=((2, 2),), data_format=fmt, dilation_rate=2,
                      activation="sigmoid"),
        ][: int(r.integers(2, 4))]  # fmt: skip
        axis = -1 if fmt == "channels_last" else -2
        layer = cj.Parallel(branches, merge=merge, axis=axis)
        return layer, out * len(branches) if merge == "concat" else out
    else:
        layer, out = _sequence(r, channels, fmt, depth + 1, keep)
        return layer, out
    shape = (1, 64, channels) if fmt == "channels_last" else (1, channels, 64)
    out_shape = layer.compute_output_shape(shape)
    return layer, out_shape[-1] if fmt == "channels_last" else out_shape[-2]


def _sequence(r, channels, fmt, depth, keep=False):
    layers = []
    for _ in range(int(r.integers(1, 4))):
        layer, channels = _layer(r, channels, fmt, depth, keep)
        layers.append(layer)
    return cj.Sequential(layers), channels


def _model(seed):
    r = np.random.default_rng(seed)
    fmt = "channels_first" if r.integers(3) == 0 else "channels_last"
    channels = int(r.integers(1, 4)) * 2
    model, _ = _sequence(r, channels, fmt, 0)
    return model, channels, fmt


def _chunking(r, length):
    sizes = []
    while sum(sizes) < length:
        sizes.append(int(min(r.choice([1, 1, 2, 3, 5, 8, 13]), length - sum(sizes))))
    return sizes


def _time_axis(fmt):
    return 1 if fmt == "channels_last" else 2


def _stream(model, params, x, sizes, fmt, batch=1, step=None):
    step = step or cj.stream_apply
    axis = _time_axis(fmt) + batch - 1
    channels = x.shape[-1] if fmt == "channels_last" else x.shape[batch]
    state = cj.stream_init(model, params, x.shape[:batch], channels=channels)
    outputs, at = [], 0
    for n in sizes:
        chunk = jax.lax.slice_in_dim(x, at, at + n, axis=axis)
        y, state = step(model, params, state, chunk)
        outputs.append(y)
        at += n
    outputs.append(cj.stream_flush(model, params, state))
    y = jnp.concatenate(outputs, axis=axis)
    return jax.lax.slice_in_dim(y, cj.stream_latency(model), y.shape[axis], axis=axis)


def _params(model, shape, seed):
    params = model.init(jax.random.key(seed), shape)
    return jax.tree.map(lambda p: p + 0.3 * normal(seed, p.shape), params)


# Every layer kind is also checked on its own by the contract test below;
# these random models check their compositions.
@pytest.mark.parametrize("seed", range(6))
def test_random_models_and_chunkings_equal_apply(seed):
    model, channels, fmt = _model(seed)
    length = 40
    shape = (2, length, channels) if fmt == "channels_last" else (2, channels, length)
    params = _params(model, shape, seed)
    x = normal(seed + 100, shape)
    expected = model.apply(params, x)
    r = np.random.default_rng(seed)
    for sizes in (_chunking(r, length), [length]):
        assert_close(_stream(model, params, x, sizes, fmt), expected, rtol=1e-5,
                     err_msg=f"{model} {sizes}")  # fmt: skip


def test_several_batch_axes_and_the_scan_driver():
    model = cj.Sequential(
        [cj.Conv1D(4, 3, padding="same", activation="relu"),
         cj.Residual(cj.Conv1D(4, 2, padding="causal", dilation_rate=2)),
         cj.SeparableConv1D(3, 3, padding="valid")]
    )  # fmt: skip
    shape = (2, 3, 30, 2)
    params = _params(model, shape, 1)
    x = normal(2, shape)
    expected = model.apply(params, x)
    assert_close(_stream(model, params, x, [4, 1, 7, 18], "channels_last", batch=2),
                 expected, rtol=1e-5)  # fmt: skip
    for chunk in (1, 4, 7, 30):
        assert_close(cj.stream_scan(model, params, x, chunk), expected, rtol=1e-5)
    assert_close(jax.jit(cj.stream_scan, static_argnums=3)(model, params, x, 4),
                 expected, rtol=1e-5)  # fmt: skip


def test_the_scan_driver_refuses_a_chunk_that_moves_a_strided_phase():
    model = cj.Conv1D(2, 3, strides=2, padding="causal")
    params = _params(model, (1, 12, 1), 0)
    x = normal(3, (1, 12, 1))
    assert_close(cj.stream_scan(model, params, x, 4), model.apply(params, x),
                 rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match=r"`chunk`=3 .* multiple of their strides"):
        cj.stream_scan(model, params, x, 3)
    with pytest.raises(ValueError, match=r"positive int; received chunk=0"):
        cj.stream_scan(model, params, x, 0)


def test_one_compilation_per_chunk_length_and_fixed_state():
    model = cj.Sequential(
        [cj.Conv1D(8, 2, padding="causal", dilation_rate=d, activation="tanh")
         for d in (1, 2, 4, 8)]
    )  # fmt: skip
    params = _params(model, (1, 16, 1), 0)

    @jax.jit
    @chex.assert_max_traces(n=2)
    def step(model, params, state, x):
        return cj.stream_apply(model, params, state, x)

    state = cj.stream_init(model, params, (1,))
    shapes = jax.tree.map(jnp.shape, state)
    x = normal(0, (1, 200, 1))
    ys = []
    for t in range(100):  # 100 one-step chunks, then 25 chunks of 4: 2 traces
        y, state = step(model, params, state, x[:, t : t + 1])
        ys.append(y)
        assert jax.tree.map(jnp.shape, state) == shapes
    for t in range(100, 200, 4):
        y, state = step(model, params, state, x[:, t : t + 4])
        ys.append(y)
    assert_close(jnp.concatenate(ys, axis=1), model.apply(params, x), rtol=1e-5)


def test_per_example_reset():
    model = cj.Sequential([cj.Conv1D(3, 3, padding="same"), cj.Activation("sigmoid"),
                           cj.Conv1D(2, 4, padding="causal", dilation_rate=2)])  # fmt: skip
    params = _params(model, (2, 20, 2), 3)
    x = normal(4, (2, 20, 2))
    fresh = normal(5, (1, 12, 2))
    state = cj.stream_init(model, params, (2,))
    _, state = cj.stream_apply(model, params, state, x[:, :8])
    state = cj.stream_reset(state, jnp.array([False, True]))
    # Example 0 goes on; example 1 starts a new stream on `fresh`.
    both = jnp.concatenate([x[:1, 8:20], fresh], axis=0)
    y, state = cj.stream_apply(model, params, state, both)
    tail = cj.stream_flush(model, params, state)
    latency = cj.stream_latency(model)
    out = jnp.concatenate([y, tail], axis=1)
    assert_close(out[1, latency:], model.apply(params, fresh)[0], rtol=1e-5)
    whole = _stream(model, params, x[:1], [8, 12], "channels_last")
    assert_close(jnp.concatenate([y[:1], tail[:1]], axis=1)[0, -12:],
                 whole[0, -12:], rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match=r"`mask` must have the batch shape \(2,\)"):
        cj.stream_reset(state, jnp.array([True]))
    strided = cj.Conv1D(2, 3, strides=2, padding="causal")
    strided_state = cj.stream_init(strided, _params(strided, (2, 8, 2), 0), (2,))
    with pytest.raises(ValueError, match=r"cannot restart some examples of a model "
                       r"with strided layers"):  # fmt: skip
        cj.stream_reset(strided_state, jnp.array([False, True]))


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_one_step_rings_under_donation_and_reset(impl):
    """One-step chunks write each layer's ring in place: jitted with the
    state donated, reset at a ring position other than 0, after chunks of
    other lengths (which leave the rings in order), every layer kind with
    history (causal, "same", "valid", depthwise, separable, a stride-1
    transposed convolution, the delay lines) still equals ``apply``."""
    model = cj.Sequential([
        cj.Conv1D(4, 3, padding="causal", dilation_rate=3, activation="tanh", impl=impl),
        cj.DepthwiseConv1D(2, padding="same", depth_multiplier=2, impl=impl),
        cj.ZeroPadding1D((2, 1)),
        cj.SeparableConv1D(3, 3, padding="valid", dilation_rate=2, impl=impl),
        cj.Cropping1D((1, 2)),
        cj.Conv1DTranspose(2, 3, padding="same", impl=impl),
    ])  # fmt: skip
    params = _params(model, (2, 40, 2), 7)
    x = normal(8, (2, 40, 2))
    fresh = normal(9, (1, 40, 2))
    step = jax.jit(cj.stream_apply, donate_argnums=2)
    latency = cj.stream_latency(model)

    def run(state, signal, sizes):
        ys, at = [], 0
        for n in sizes:
            y, state = step(model, params, state, signal[:, at : at + n])
            ys.append(y)
            at += n
        return ys, state

    sizes = [1] * 7 + [5] + [1] * 11 + [3] + [1] * 14  # 7 + 5 + 11 + 3 + 14 = 40
    state = cj.stream_init(model, params, (2,))
    ys, state = run(state, x, sizes[:7])
    state = cj.stream_reset(state, jnp.array([False, True]))  # rings at head 7 % len
    both = jnp.concatenate([x[:1], fresh], axis=0)[:, 7:]
    more, state = run(state, both, sizes[7:])
    tail = cj.stream_flush(model, params, state)
    out = jnp.concatenate(ys + more + [tail], axis=1)
    assert_close(out[0, latency:], model.apply(params, x[:1])[0], rtol=1e-5)
    restarted = jnp.concatenate([y[1:] for y in more] + [tail[1:]], axis=1)
    assert_close(restarted[0, latency:], model.apply(params, fresh[:, 7:])[0],
                 rtol=1e-5)  # fmt: skip


def test_one_step_chunks_under_mixed_precision():
    model = cj.Sequential([
        cj.Conv1D(4, 3, padding="causal", dilation_rate=2, dtype="mixed_bfloat16"),
        cj.SeparableConv1D(2, 2, padding="causal", dtype="mixed_bfloat16"),
    ])  # fmt: skip
    params = _params(model, (1, 24, 3), 2)
    x = normal(3, (1, 24, 3))
    expected = model.apply(params, x)
    streamed = _stream(model, params, x, [1] * 24, "channels_last")
    assert streamed.dtype == expected.dtype == jnp.bfloat16
    assert_close(streamed, expected, rtol=2e-2, atol=2e-2)


def test_the_one_step_lowering_rule():
    from conv1djax.lowering.choose import STEP_SHIFT_MAX_WORK, choose_step_impl

    small = STEP_SHIFT_MAX_WORK
    assert choose_step_impl(work=small, dtype=jnp.float32, backend="cpu") == "shift"
    assert choose_step_impl(work=small + 1, dtype=jnp.float32, backend="cpu") == "auto"
    assert choose_step_impl(work=8, dtype=jnp.bfloat16, backend="cpu") == "auto"
    assert choose_step_impl(work=8, dtype=jnp.float32, backend="gpu") == "auto"


def test_latency_and_receptive_field():
    def conv(k, padding, d=1):
        return cj.Conv1D(2, k, padding=padding, dilation_rate=d)

    assert cj.stream_latency(conv(5, "causal", 3)) == 0
    assert cj.stream_latency(conv(4, "same")) == 2  # TF's same: (1, 2)
    assert cj.stream_latency(conv(5, "valid", 2)) == 8
    assert cj.stream_latency(conv(3, ((1, 5),))) == 1
    stack = cj.Sequential([conv(2, "causal", 2**i) for i in range(10)])
    assert cj.stream_latency(stack) == 0 and cj.receptive_field(stack) == 1024
    model = cj.Sequential([conv(3, "same"), cj.UpSampling1D(2), conv(3, "same")])
    assert cj.stream_latency(model) == 1 * 2 + 1
    both = cj.Parallel([conv(3, "causal"), conv(5, "same")])
    assert cj.stream_latency(both) == 2 and cj.receptive_field(both) == 5


def test_strided_layers_emit_what_a_chunk_completes():
    model = cj.Sequential([cj.Conv1D(4, 3, strides=2, padding="causal"),
                           cj.Conv1D(4, 3, padding="same"),
                           cj.MaxPooling1D(3, strides=3)])  # fmt: skip
    params = _params(model, (1, 60, 2), 7)
    x = normal(8, (1, 60, 2))
    # The same conv's latency is absorbed by the pooling after it: exact
    # outputs, each emitted by the chunk that completes it.
    assert cj.stream_latency(model) == 0
    state = cj.stream_init(model, params, (1,))
    counts = []
    for t in range(0, 60, 6):
        y, state = cj.stream_apply(model, params, state, x[:, t : t + 6])
        counts.append(y.shape[1])
    assert counts[:2] == [0, 1] and sum(counts) <= 10
    assert sum(counts) + cj.stream_flush(model, params, state).shape[1] == 10
    assert_close(_stream(model, params, x, [1] * 60, "channels_last"),
                 model.apply(params, x), rtol=1e-5)  # fmt: skip
    # A stride-2 layer fed one step at a time has two phases: two traces.
    traces = []

    @jax.jit
    def step(model, params, state, chunk):
        traces.append(1)
        return cj.stream_apply(model, params, state, chunk)

    state = cj.stream_init(model, params, (1,))
    for t in range(12):
        _, state = step(model, params, state, x[:, t : t + 1])
    warm = len(traces)  # the phases of the stride-2 conv x the pool's 3, and
    assert warm <= 8  # the pool's first skip
    for t in range(12, 48):
        _, state = step(model, params, state, x[:, t % 60 : t % 60 + 1])
    assert len(traces) == warm  # bounded: no new shapes on an endless stream


def test_transposed_convolutions_hold_back_what_later_inputs_change():
    for kwargs in (dict(kernel_size=4, strides=2), dict(kernel_size=2, strides=3),
                   dict(kernel_size=5, strides=2, output_padding=1, padding="same"),
                   dict(kernel_size=3, strides=2, padding=1, output_padding=1),
                   dict(kernel_size=4, strides=2, groups=2, dilation_rate=1)):  # fmt: skip
        layer = cj.Conv1DTranspose(4, activation="tanh", **kwargs)
        params = _params(layer, (2, 11, 4), 9)
        x = normal(10, (2, 11, 4))
        for sizes in ([1] * 11, [3, 8]):
            assert_close(_stream(layer, params, x, sizes, "channels_last"),
                         layer.apply(params, x), rtol=1e-5, err_msg=str(kwargs))  # fmt: skip
    # A valid transposed convolution is causal (output t sums inputs up to
    # t // s); "same" crops one step of k=4, s=2 on the left: one step late.
    assert cj.stream_latency(cj.Conv1DTranspose(1, 4, strides=2)) == 0
    assert cj.stream_latency(cj.Conv1DTranspose(1, 4, strides=2, padding="same")) == 1


def test_input_channels_are_read_from_the_first_kernel():
    # A transposed kernel is (k, out // groups, in): its last axis, not its
    # second last, is the input's channel count.
    for first in (cj.Conv1DTranspose(3, 4, strides=2, groups=1),
                  cj.Conv1DTranspose(4, 3, strides=2, groups=2),
                  cj.Conv1D(4, 3, padding="causal", groups=2),
                  cj.SeparableConv1D(3, 3, padding="causal", depth_multiplier=2)):  # fmt: skip
        model = cj.Sequential([cj.Activation("tanh"), first])
        params = _params(model, (1, 8, 6), 11)
        x = normal(12, (1, 8, 6))
        state = cj.stream_init(model, params, (1,))  # no `channels`
        y, state = cj.stream_apply(model, params, state, x)
        y = jnp.concatenate([y, cj.stream_flush(model, params, state)], axis=1)
        latency = cj.stream_latency(model)
        assert_close(y[:, latency:], model.apply(params, x), rtol=1e-5)


def test_what_cannot_stream_says_so():
    params2 = {"kernel": jnp.ones((3, 2, 2)), "bias": jnp.ones(2)}
    for layer, match in (
        (cj.Conv1D(2, 3, strides=2, padding="same"), r"strides=2 with padding='same'"),
        (cj.Conv1D(2, 3, padding=1, padding_mode="reflect"), r"padding_mode='reflect'"),
        (cj.Conv1D(2, 3, padding=((3, 0),)),
         r"its left padding exceeds .* so outputs would precede their inputs"),
    ):  # fmt: skip
        with pytest.raises(
            TypeError, match=rf"{type(layer).__name__} cannot stream: {match}"
        ):
            cj.stream_init(layer, params2, (1,))
    with pytest.raises(TypeError, match=r"MaxPooling1D cannot stream: pooling streams "
                       r"with padding='valid' only"):  # fmt: skip
        cj.stream_latency(cj.Sequential([cj.MaxPooling1D(2, padding="same")]))
    with pytest.raises(TypeError, match=r"Conv2D cannot stream: it is 2-D"):
        cj.stream_latency(cj.Conv2D(2, 3))
    with pytest.raises(ValueError, match=r"Give `channels`"):
        cj.stream_init(cj.Activation("relu"), {}, (1,))


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_chunks_are_checked_as_apply_checks_its_input(fmt):
    """A chunk of another rank, batch shape or channel count is a ValueError
    naming ``x_chunk`` and both shapes (under jit too), a non-numeric or
    complex one a TypeError naming its dtype, before any JAX error; integer
    chunks are cast to the stream's dtype, as apply casts integer inputs."""
    model = cj.Sequential([cj.Conv1D(3, 3, padding="same", data_format=fmt),
                           cj.Conv1D(2, 2, padding="causal", data_format=fmt)])  # fmt: skip
    first = fmt == "channels_first"
    shape = (2, 2, 9) if first else (2, 9, 2)
    params = _params(model, shape, 0)
    state = cj.stream_init(model, params, (2,))
    layout, expected = (
        ("(channels, steps)", "(2, 2, steps)") if first
        else ("(steps, channels)", "(2, steps, 2)")
    )  # fmt: skip
    for bad in ((2, 3, 4) if first else (2, 4, 3), (3, 2, 4) if first else (3, 4, 2),
                (1, 2, 2, 4) if first else (1, 2, 4, 2), (2, 4)):  # fmt: skip
        message = re.escape(
            f"`x_chunk` must have the shape batch_shape + {layout} = {expected} of "
            "this stream (batch_shape=(2,) as given to stream_init, 2 input "
            f"channels); received shape {bad}."
        )
        with pytest.raises(ValueError, match=f"^{message}$"):
            cj.stream_apply(model, params, state, jnp.ones(bad))
        with pytest.raises(ValueError, match=f"^{message}"):  # JAX adds a note
            jax.jit(cj.stream_apply)(model, params, state, jnp.ones(bad))
    for bad, dtype in ((np.full(shape, "a"), "<U1"), ([["a"]], "<U1"),
                       (np.full(shape, None), "object")):  # fmt: skip
        with pytest.raises(TypeError, match=r"^stream_apply takes an array `x_chunk` "
                           rf"of numbers; received .* of dtype {dtype}\.$"):  # fmt: skip
            cj.stream_apply(model, params, state, bad)
    with pytest.raises(TypeError, match=r"^stream_apply takes real chunks; received "
                       r"`x_chunk` of dtype complex64\.$"):  # fmt: skip
        cj.stream_apply(model, params, state, jnp.ones(shape, jnp.complex64))
    with pytest.raises(TypeError, match=r"^stream_scan takes an array `x` of numbers"):
        cj.stream_scan(model, params, np.full(shape, "a"), 3)
    # a float chunk, then an integer one: the history stays float32 (cast to
    # the chunk's int dtype, it would lose its fractions)
    axis = -1 if first else -2
    x = jnp.concatenate([jax.lax.slice_in_dim(normal(1, shape), 0, 4, axis=axis),
                         jax.lax.slice_in_dim(jnp.round(3 * normal(2, shape)), 4, 9,
                                              axis=axis)], axis=axis)  # fmt: skip
    y1, state = cj.stream_apply(model, params, state,
                                jax.lax.slice_in_dim(x, 0, 4, axis=axis))  # fmt: skip
    ints = jax.lax.slice_in_dim(x, 4, 9, axis=axis).astype(jnp.int32)
    y2, state = cj.stream_apply(model, params, state, ints)
    assert y1.dtype == y2.dtype == jnp.float32
    tail = cj.stream_flush(model, params, state)
    streamed = jax.lax.slice_in_dim(jnp.concatenate([y1, y2, tail], axis=axis), 1, 10,
                                    axis=axis)  # latency 1  # fmt: skip
    assert_close(streamed, model.apply(params, x), rtol=1e-5)
    reset = cj.stream_reset(state, jnp.array([True, False]))
    assert jax.tree.map(jnp.shape, reset) == jax.tree.map(jnp.shape, state)
    with pytest.raises(ValueError, match=r"^`x_chunk` must have the shape"):
        cj.stream_apply(model, params, reset, jnp.ones((2, 2)))


# ---- the contract, on every streamable layer and on a user's -------------------

CL, CF = "channels_last", "channels_first"
STREAMABLE = {
    "conv causal": (cj.Conv1D(3, 3, padding="causal", dilation_rate=2), CL),
    "conv same": (cj.Conv1D(3, 4, padding="same", activation="tanh"), CL),
    "conv valid NCW": (cj.Conv1D(3, 3, padding="valid", data_format=CF), CF),
    "conv explicit grouped": (cj.Conv1D(4, 3, padding=((1, 3),), groups=2), CL),
    "conv strided": (cj.Conv1D(3, 3, strides=2, padding="causal"), CL),
    "depthwise": (cj.DepthwiseConv1D(3, padding="same", depth_multiplier=2), CL),
    "separable NCW": (cj.SeparableConv1D(3, 3, padding="causal", data_format=CF), CF),
    "transposed": (cj.Conv1DTranspose(3, 4, strides=2, padding="same"), CL),
    "transposed stride 1": (cj.Conv1DTranspose(3, 3, padding="valid"), CL),
    "max pooling": (cj.MaxPooling1D(3, strides=2), CL),
    "average pooling stride 1": (cj.AveragePooling1D(3, strides=1), CL),
    "zero padding": (cj.ZeroPadding1D((2, 1)), CL),
    "cropping": (cj.Cropping1D((1, 2)), CL),
    "upsampling": (cj.UpSampling1D(2), CL),
    "activation NCW": (cj.Sequential([cj.Conv1D(3, 2, padding="same", data_format=CF),
                                      cj.Activation("sigmoid")]), CF),
    "sequential": (cj.Sequential([cj.Conv1D(3, 3, padding="same"),
                                  cj.Activation("relu"), cj.Cropping1D((1, 0))]), CL),
    "residual": (cj.Residual(cj.Conv1D(2, 5, padding="same")), CL),
    "parallel": (cj.Parallel([cj.Conv1D(2, 3, padding="causal"),
                              cj.Conv1D(2, 4, padding="same")], merge="concat"), CL),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STREAMABLE))
def test_every_streamable_layer_keeps_the_contract(name):
    layer, fmt = STREAMABLE[name]
    shape = (2, 21, 2) if fmt == CL else (2, 2, 21)
    params = _params(layer, shape, 0)
    chunkings = [[1, 2, 1, 3, 5, 1, 8], [21]]
    cj.streaming.check_stream(layer, params, normal(1, shape), chunkings=chunkings)


@dataclasses.dataclass(frozen=True)
class Recentre(cj.Layer):
    """A user's leaf with state: subtracts a moving mean (its state, updated
    in training), then scales; it streams step by step."""

    def init(self, key, input_shape, *, dtype=jnp.float32):
        c = input_shape[-1]
        return {"scale": jnp.full((c,), 1.5, dtype), "moving_mean": jnp.zeros(c, dtype)}

    def non_trainable_weights(self):
        return ("moving_mean",)

    def apply(self, params, x):
        return params["scale"] * (x - params["moving_mean"])

    def apply_training(self, params, x, *, key):
        mean = 0.5 * params["moving_mean"] + 0.5 * x.mean(axis=(0, 1))
        return self.apply(params, x), {"moving_mean": mean}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def stream_timing(self):
        return cj.stream_contract.Timing()

    def stream_run(self, params, z):
        return self.apply(params, z)


@dataclasses.dataclass(frozen=True)
class ChainSum(cj.Layer):
    """A user's composite, streamed through ``call``: runs ``blocks`` in turn
    on a residual stream and sums their outputs (WaveNet's skip sum)."""

    blocks: tuple
    total: bool = True  # False: the last block's output

    def sublayers(self):
        return {f"block_{i}": b for i, b in enumerate(self.blocks)}

    def init(self, key, input_shape, *, dtype=jnp.float32):
        keys = jax.random.split(key, len(self.blocks))
        return {n: b.init(k, input_shape, dtype=dtype)
                for k, (n, b) in zip(keys, self.sublayers().items(), strict=True)}  # fmt: skip

    def apply(self, params, x, *, call=cj.call_layer):
        total = 0.0
        for name, block in self.sublayers().items():
            x = call(block, params[name], x)
            total = total + x if self.total else x
        return total

    def compute_output_shape(self, input_shape):
        for block in self.blocks:
            input_shape = block.compute_output_shape(input_shape)
        return tuple(input_shape)


def test_a_user_leaf_with_state_and_a_user_composite_keep_the_contract():
    causal = [cj.Residual(cj.Conv1D(3, 2, padding="causal", dilation_rate=d,
                                    activation="tanh")) for d in (1, 2, 4)]  # fmt: skip
    model = cj.Sequential([
        cj.Conv1D(3, 3, padding="same"),  # latency 1: the composite sees it
        Recentre(),
        ChainSum(tuple(causal) + (Recentre(),)),
        cj.Conv1D(2, 3, padding="valid"),
    ])  # fmt: skip
    params = _params(model, (2, 24, 2), 0)
    _, params = cj.apply_training(model, params, normal(3, (2, 24, 2)))
    assert float(jnp.abs(params[1]["moving_mean"]).sum()) > 0  # state in use
    cj.streaming.check_stream(model, params, normal(1, (2, 24, 2)),
                              chunkings=[[1, 2, 3, 5, 13], [24]])  # fmt: skip
    assert cj.stream_latency(model) == 3


def test_a_user_composite_refuses_what_it_cannot_align():
    for block, match in (
        (cj.Conv1D(3, 3, padding="same"),
         r"ChainSum cannot stream: its sub-layer 'block_1' \(Conv1D\) changes the "
         r"stream's latency \(from 0 to 1 steps\)"),
        (cj.ZeroPadding1D((0, 1)),
         r"ChainSum cannot stream: its sub-layer 'block_1' \(ZeroPadding1D\) leaves "
         r"outputs to flush"),
    ):  # fmt: skip
        model = ChainSum((cj.Conv1D(3, 1), block), total=False)
        params = _params(model, (1, 8, 3), 0)
        with pytest.raises(TypeError, match=match):
            cj.stream_init(model, params, (1,))


def test_the_contract_check_catches_a_wrong_timing():
    """A leaf that declares no latency but looks one step ahead (a centred
    moving average): check_stream must fail it."""

    @dataclasses.dataclass(frozen=True)
    class Centred(cj.Layer):
        def init(self, key, input_shape, *, dtype=jnp.float32):
            return {}

        def apply(self, params, x):
            padded = jnp.pad(x, ((0, 0), (1, 1), (0, 0)))
            return (padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3

        def compute_output_shape(self, input_shape):
            return tuple(input_shape)

        def stream_timing(self):
            return cj.stream_contract.Timing()  # wrong: it needs 1 step ahead

        def stream_run(self, params, z):
            return self.apply(params, z)

    with pytest.raises(AssertionError, match="streamed != apply"):
        cj.streaming.check_stream(Centred(), {}, normal(0, (1, 10, 2)))
