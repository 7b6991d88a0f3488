"""DepthwiseConv1D/2D and SeparableConv1D/2D, with Keras 3 (JAX backend) as
the oracle.

- A seeded sweep of random configs of each layer (int and per-axis kernel
  sizes, strides, dilations, strides > 1 together with dilation > 1 as Keras
  allows for these layers, both paddings in any case, depth multipliers 1-3,
  both data formats, activations, with and without bias, one or two batch
  axes): outputs and the VJP w.r.t. the input and every param equal Keras's,
  each side one jitted program (Keras's weights are set by their names).
- ``padding="causal"`` for the 1-D layers (our extension; Keras refuses it)
  equals Keras's "valid" layer on the input left-padded with
  ``(kernel_size - 1) * dilation_rate`` zeros, and ``output[t]`` never
  depends on a later input step; the 2-D layers refuse it.
- Every CPU lowering (``impl``) agrees with the reference path, values and
  VJPs; second-order gradient checks in float64.
- Shapes (``compute_output_shape`` with None entries, ``param_shapes``,
  ``count_params``) against ``apply`` and Keras.
- Configs: JSON round trips, ours loaded by Keras and Keras's by us,
  computing the same numbers; the canonical form of the defaults.
- Errors: exact messages for bad arguments, params and inputs.
- Training: a 2-D Sequential of Conv2D, DepthwiseConv2D, Activation and
  SeparableConv2D with depthwise/pointwise regularizers and constraints, and
  a causal 1-D one, trained with ``make_train_step``; the penalties by hand
  and against Keras; ``check_gradients`` of each layer.
"""

import dataclasses
import functools
import json
import math
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import conv1djax as cj
from conv1djax.lowering import choose
from conftest import (
    FAST_COMPILE,
    assert_close,
    compare_with_keras,
    keras_weight_names,
    specs_values_and_vjps,
)

DEPTHWISE = [cj.DepthwiseConv1D, cj.DepthwiseConv2D]
SEPARABLE = [cj.SeparableConv1D, cj.SeparableConv2D]
ALL_CLASSES = DEPTHWISE + SEPARABLE
ONE_D = [cj.DepthwiseConv1D, cj.SeparableConv1D]
TWO_D = [cj.DepthwiseConv2D, cj.SeparableConv2D]

ACTIVATIONS = [
    None, "linear", "relu", "gelu", "softmax", "tanh", "sigmoid", "elu",
    "log_softmax",
]  # fmt: skip
# They act along the last axis: the sweep keeps it the channel axis.
LAST_AXIS_ACTIVATIONS = ("softmax", "log_softmax")

N_CASES = {
    cj.DepthwiseConv2D: 40,
    cj.DepthwiseConv1D: 30,
    cj.SeparableConv2D: 30,
    cj.SeparableConv1D: 30,
}
_SEED_BASE = {
    cj.DepthwiseConv1D: 10_000,
    cj.DepthwiseConv2D: 20_000,
    cj.SeparableConv1D: 30_000,
    cj.SeparableConv2D: 40_000,
}


def _ids(classes):
    return [cls.__name__ for cls in classes]


def _args(cls, filters=4):
    """The positional arguments before ``kernel_size``."""
    return (filters,) if cls in SEPARABLE else ()


# ---- random configs ---------------------------------------------------------


def _per_axis(r, rank, low, high):
    return tuple(int(v) for v in r.integers(low, high + 1, rank))


def _int_or_tuple(r, values):
    """An int when every axis has the same value (half of the time)."""
    if len(set(values)) == 1 and r.random() < 0.5:
        return values[0]
    return values


def _at_least_one_above_one(r, values):
    if max(values) > 1:
        return values
    values = list(values)
    values[int(r.integers(len(values)))] = 2
    return tuple(values)


def _strides_and_dilation(r, rank):
    """Strides only, dilation only, both > 1 (Keras allows it for the
    depthwise and separable layers), or neither."""
    mode = r.random()
    ones = (1,) * rank
    if mode < 0.3:
        return _per_axis(r, rank, 1, 3), ones
    if mode < 0.6:
        return ones, _per_axis(r, rank, 1, 3)
    if mode < 0.88:
        strides = _at_least_one_above_one(r, _per_axis(r, rank, 1, 3))
        return strides, _at_least_one_above_one(r, _per_axis(r, rank, 1, 3))
    return ones, ones


def _k_eff(kernel, dilation):
    return tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))


def _case(cls, seed):
    """A random config of ``cls``, its batch shape, spatial lengths and
    channel count."""
    rank = cls.rank
    r = np.random.default_rng(_SEED_BASE[cls] + seed)
    kernel = _per_axis(r, rank, 1, 4 if rank == 2 else 5)
    if rank > 1 and r.random() < 0.3:
        kernel = (kernel[0],) * rank
    strides, dilation = _strides_and_dilation(r, rank)
    activation = ACTIVATIONS[seed % len(ACTIVATIONS)]  # each one, every layer
    config = dict(
        kernel_size=_int_or_tuple(r, kernel),
        strides=_int_or_tuple(r, strides),
        padding=str(r.choice(["valid", "same", "SAME", "Valid"])),
        depth_multiplier=int(r.integers(1, 4)),
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=_int_or_tuple(r, dilation),
        activation=activation,
        use_bias=bool(r.random() < 0.75),
    )
    channels = int(r.integers(1, 5))
    if cls in SEPARABLE:
        config["filters"] = int(r.integers(1, 6))
    if activation in LAST_AXIS_ACTIVATIONS:
        config["data_format"] = "channels_last"
        # softmax over one channel is constant (and Keras warns)
        if cls in SEPARABLE:
            config["filters"] = max(config["filters"], 2)
        elif channels * config["depth_multiplier"] < 2:
            channels = 2
    high = 9 if rank == 2 else 14
    spatial = []
    for k_eff in _k_eff(kernel, dilation):
        low = k_eff if config["padding"].lower() == "valid" else 1
        spatial.append(int(r.integers(low, max(low, high) + 1)))
    batch = [(2,), (3,), (2, 2)][int(r.integers(3))]
    return config, batch, tuple(spatial), channels


SWEEP = [(cls, s) for cls in ALL_CLASSES for s in range(N_CASES[cls])]


def _sweep_id(case):
    cls, seed = case
    return f"{cls.__name__}-{seed}"


def _sweep_cases(cls):
    return [c for c in SWEEP if c[0] is cls]


def test_sweep_covers_the_options():
    """The random sweep reaches every option it is meant to cover, for every
    layer."""
    for cls in ALL_CLASSES:
        seen = {}
        for _, seed in _sweep_cases(cls):
            config, batch, _, _ = _case(cls, seed)
            spec = cls(**config)
            for key, value in [
                ("kernel_size is an int", isinstance(config["kernel_size"], int)),
                ("strides > 1", max(spec.strides) > 1),
                ("dilation > 1", max(spec.dilation_rate) > 1),
                (
                    "strides > 1 with dilation > 1",
                    max(spec.strides) > 1 and max(spec.dilation_rate) > 1,
                ),
                ("upper-case padding", config["padding"] != spec.padding),
                ("padding", spec.padding),
                ("depth_multiplier", spec.depth_multiplier),
                ("data_format", spec.data_format),
                ("activation", config["activation"]),
                ("use_bias", spec.use_bias),
                ("batch rank", len(batch)),
            ]:
                seen.setdefault(key, set()).add(value)
            if cls.rank == 2:
                seen.setdefault("kernel sizes differ per axis", set()).add(
                    len(set(spec.kernel_size)) > 1
                )
        name = cls.__name__
        assert seen["padding"] == {"valid", "same"}, name
        assert seen["depth_multiplier"] == {1, 2, 3}, name
        assert seen["data_format"] == {"channels_last", "channels_first"}, name
        assert seen["batch rank"] == {1, 2}, name
        assert seen["activation"] == set(ACTIVATIONS), name
        for key in (
            "kernel_size is an int",
            "strides > 1",
            "dilation > 1",
            "strides > 1 with dilation > 1",
            "upper-case padding",
            "use_bias",
            *(["kernel sizes differ per axis"] if cls.rank == 2 else []),
        ):
            assert seen[key] == {False, True}, (name, key)


# ---- helpers ----------------------------------------------------------------


def _shape(batch, spatial, channels, data_format):
    if data_format == "channels_last":
        return (*batch, *spatial, channels)
    return (*batch, channels, *spatial)


def _keras_shape(batch, shape):
    """The shape for Keras, the batch axes flattened into one (None when any
    of them is None)."""
    n = None if None in batch else math.prod(batch)
    return (n, *shape[len(batch) :])


def _zeros_initialized(config):
    """Keras's random initializers would cost a compilation per shape, and the
    weights are overwritten."""
    zeros = {"depthwise_initializer": "zeros", "bias_initializer": "zeros"}
    if "filters" in config:
        zeros["pointwise_initializer"] = "zeros"
    return {**config, **zeros}


def _keras_initializer(klayer, weight):
    """The attribute of a Keras layer holding its weight's initializer: a
    depthwise layer's "kernel" has ``depthwise_initializer``, Conv2D's
    ``kernel_initializer``."""
    if weight == "kernel" and hasattr(klayer, "depth_multiplier"):
        return "depthwise_initializer"
    return {
        "kernel": "kernel_initializer",
        "depthwise_kernel": "depthwise_initializer",
        "pointwise_kernel": "pointwise_initializer",
        "bias": "bias_initializer",
    }[weight]


def _check_keras_weights(klayer, params):
    """Keras's weights have our params' names, shapes and values."""
    weights = {w.path.split("/")[-1]: np.asarray(w) for w in klayer.weights}
    assert sorted(weights) == sorted(params)
    for name, value in weights.items():
        np.testing.assert_array_equal(value, params[name], err_msg=name)


def _keras_layer(cls, config, input_shape, params):
    """The Keras layer of ``config``, built, its weights initialised to
    ``params`` (array initializers: no compilation of a Keras initializer
    per shape)."""
    klayer = getattr(keras.layers, cls.__name__)(**config)
    _initialize_with(klayer, params)
    klayer.build(input_shape)
    _check_keras_weights(klayer, params)
    return klayer


def _initialize_with(klayer, params):
    """Makes an unbuilt Keras layer's initializers give ``params``."""
    for name, value in params.items():
        attr = _keras_initializer(klayer, name)
        assert hasattr(klayer, attr), (klayer, attr)
        setattr(klayer, attr, keras.initializers.get(np.asarray(value)))


def _np_zeros(shape, dtype=None):
    """A Keras initializer that compiles nothing."""
    return np.zeros(shape, dtype or "float32")


def _data(seed, shape, dtype=np.float32):
    """Standard-normal float32 data, made by NumPy: a float64 array converted
    by JAX would compile a conversion per shape, most of a small case's
    time."""
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _params(spec, shape, seed):
    """Params of the right shapes, as ``conftest.random_params`` draws them
    (one seed per sorted name), in NumPy float32."""
    shapes = spec.param_shapes(shape)
    return {
        name: _data(seed + i, s) for i, (name, s) in enumerate(sorted(shapes.items()))
    }


def _raises(exc, *fragments):
    """``pytest.raises`` for a message containing the ``fragments`` verbatim,
    in order."""
    return pytest.raises(exc, match=".*".join(map(re.escape, fragments)))


# ---- 1. values and VJPs against Keras ----------------------------------------------


def _check_sweep_case(cls, seed):
    config, batch, spatial, channels = _case(cls, seed)
    spec = cls(**config)
    shape = _shape(batch, spatial, channels, spec.data_format)
    params = _params(spec, shape, seed)
    klayer = _keras_layer(cls, config, _keras_shape(batch, shape), params)
    y = compare_with_keras(spec, klayer, params, _data(seed, shape), batch)
    assert y.shape == spec.compute_output_shape(shape)


@pytest.mark.parametrize("case", _sweep_cases(cj.DepthwiseConv2D), ids=_sweep_id)
def test_depthwise_conv2d_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


@pytest.mark.parametrize("case", _sweep_cases(cj.DepthwiseConv1D), ids=_sweep_id)
def test_depthwise_conv1d_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


@pytest.mark.parametrize("case", _sweep_cases(cj.SeparableConv2D), ids=_sweep_id)
def test_separable_conv2d_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


@pytest.mark.parametrize("case", _sweep_cases(cj.SeparableConv1D), ids=_sweep_id)
def test_separable_conv1d_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


# Configs the small random sweep does not reach, where "auto" picks other
# cores: enough channels for the shift core (under strides with dilation
# too), a kernel long enough for the FFT core, inputs shorter than the kernel
# or the stride with "same", length-1 axes.
EDGE_CASES = [
    (cj.DepthwiseConv2D, dict(kernel_size=3, strides=2, dilation_rate=2,
                              padding="same", depth_multiplier=2), (2,), (9, 8), 8),
    (cj.DepthwiseConv2D, dict(kernel_size=(3, 2), data_format="channels_first"),
     (1, 2), (4, 5), 12),
    (cj.DepthwiseConv1D, dict(kernel_size=64, padding="same"), (2,), (70,), 2),
    (cj.DepthwiseConv1D, dict(kernel_size=4, strides=5, padding="same",
                              depth_multiplier=3), (2,), (3,), 2),
    (cj.SeparableConv1D, dict(filters=8, kernel_size=5, strides=3, dilation_rate=2,
                              padding="same"), (2,), (13,), 16),
    (cj.SeparableConv2D, dict(filters=4, kernel_size=(1, 4), strides=(3, 1),
                              padding="same", depth_multiplier=2), (2,), (1, 2), 3),
    (cj.SeparableConv2D, dict(filters=3, kernel_size=2, dilation_rate=(2, 1),
                              data_format="channels_first"), (1,), (3, 2), 9),
]  # fmt: skip


@pytest.mark.parametrize(
    "cls, config, batch, spatial, channels",
    EDGE_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(EDGE_CASES)],
)
def test_edge_configs_values_and_vjps_match_keras(
    cls, config, batch, spatial, channels
):
    spec = cls(**config)
    shape = _shape(batch, spatial, channels, spec.data_format)
    params = _params(spec, shape, 9)
    klayer = _keras_layer(cls, config, _keras_shape(batch, shape), params)
    y = compare_with_keras(spec, klayer, params, _data(9, shape), batch)
    assert y.shape == spec.compute_output_shape(shape)


def test_the_edge_cases_reach_the_cores():
    picked = set()
    for cls, config, _, _, channels in EDGE_CASES:
        spec = cls(**config)
        picked.add(
            cj.lowering.choose_impl(
                transposed=False,
                kernel_size=spec.kernel_size,
                strides=spec.strides,
                groups=channels,
                channels=channels,
                dtype=jnp.float32,
                backend="cpu",
                channels_first=spec.data_format == "channels_first",
            )
        )
    assert {"shift", "fft", "blockdiag"} <= picked, picked


@pytest.mark.parametrize("cls", SEPARABLE, ids=_ids(SEPARABLE))
def test_separable_kernels_of_other_dtypes_are_cast_as_keras_casts_them(cls):
    """The layer computes in the depthwise kernel's dtype and casts the bias
    to it; a pointwise kernel of another dtype is cast too, as Keras casts
    every weight to its compute dtype (it does not refuse mixed weights)."""
    rank = cls.rank
    config = dict(filters=4, kernel_size=3, depth_multiplier=2)
    spec = cls(**config)
    shape = (2, *(6,) * rank, 3)
    params = _params(spec, shape, 40)
    x = _data(41, shape)
    mixed = {
        **params,
        "pointwise_kernel": jnp.asarray(params["pointwise_kernel"], jnp.bfloat16),
        "bias": jnp.asarray(params["bias"], jnp.bfloat16),
    }
    as_f32 = {k: jnp.asarray(v, jnp.float32) for k, v in mixed.items()}
    expected = spec.apply(as_f32, x)
    klayer = _keras_layer(cls, config, shape, as_f32)
    keras_names = keras_weight_names(klayer)
    y_keras, _ = klayer.stateless_call([mixed[n] for n in keras_names], [], x)
    assert y_keras.dtype == jnp.float32
    assert_close(y_keras, expected)
    # (conv1djax 0.2.0 raises lax's "conv_general_dilated requires arguments
    # to have the same dtypes, got float32, bfloat16" here: the pointwise
    # kernel is not cast)
    y = spec.apply(mixed, x)
    assert y.dtype == jnp.float32
    assert_close(y, expected)


def test_output_channel_order_is_kerass():
    """Output channel ``c * depth_multiplier + m`` is input channel ``c``'s
    filter ``m``: with a one-tap kernel the output is the input scaled."""
    spec = cj.DepthwiseConv2D(1, depth_multiplier=3, use_bias=False)
    x = _data(0, (2, 3, 3, 2))
    kernel = jnp.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    y = spec.apply({"kernel": kernel}, x)
    for c in range(2):
        for m in range(3):
            assert_close(y[..., c * 3 + m], x[..., c] * kernel[0, 0, c, m])


# ---- 2. causal padding (1-D only) ---------------------------------------------------

# (class, config, batch, steps, channels)
CAUSAL_CASES = [
    (cj.DepthwiseConv1D, dict(kernel_size=3), (2,), 9, 2),
    (cj.DepthwiseConv1D, dict(kernel_size=4, depth_multiplier=2, strides=2), (3,),
     11, 3),
    (cj.DepthwiseConv1D, dict(kernel_size=3, dilation_rate=3, depth_multiplier=3,
                              activation="tanh"), (2, 2), 10, 2),
    (cj.DepthwiseConv1D, dict(kernel_size=2, strides=3, dilation_rate=2,
                              data_format="channels_first", use_bias=False), (2,),
     13, 3),
    (cj.DepthwiseConv1D, dict(kernel_size=5, strides=2, dilation_rate=2,
                              depth_multiplier=2), (1,), 6, 2),
    (cj.SeparableConv1D, dict(filters=3, kernel_size=3), (2,), 8, 2),
    (cj.SeparableConv1D, dict(filters=4, kernel_size=4, strides=2, dilation_rate=2,
                              depth_multiplier=2, activation="relu"), (2,), 12, 3),
    (cj.SeparableConv1D, dict(filters=2, kernel_size=3, dilation_rate=2,
                              data_format="channels_first", depth_multiplier=3),
     (2, 2), 9, 2),
    (cj.SeparableConv1D, dict(filters=5, kernel_size=2, strides=3, use_bias=False),
     (3,), 10, 4),
    # inputs shorter than the kernel extent and the stride: one output step
    (cj.DepthwiseConv1D, dict(kernel_size=5, strides=3, dilation_rate=2), (2,), 2, 2),
    (cj.SeparableConv1D, dict(filters=2, kernel_size=4, depth_multiplier=2), (2,), 1,
     3),
]  # fmt: skip
CAUSAL_IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CAUSAL_CASES)]


def _left_pad(x, amount, data_format):
    axis = -2 if data_format == "channels_last" else -1
    pads = [(0, 0)] * x.ndim
    pads[axis] = (amount, 0)
    return jnp.pad(x, pads)


@pytest.mark.parametrize("cls, config, batch, steps, channels", CAUSAL_CASES,
                         ids=CAUSAL_IDS)  # fmt: skip
def test_causal_equals_keras_valid_on_the_left_padded_input(
    cls, config, batch, steps, channels
):
    spec = cls(**config, padding="causal")
    assert spec.padding == "causal"
    shape = _shape(batch, (steps,), channels, spec.data_format)
    params = _params(spec, shape, 3)
    valid = {**config, "padding": "valid"}
    (k,), (d,) = spec.kernel_size, spec.dilation_rate
    amount = (k - 1) * d
    padded = _shape(batch, (steps + amount,), channels, spec.data_format)
    klayer = _keras_layer(cls, valid, _keras_shape(batch, padded), params)
    y = compare_with_keras(
        spec,
        klayer,
        params,
        _data(4, shape),
        batch,
        keras_input=lambda x: _left_pad(x, amount, spec.data_format),
    )
    # every step has an output: ceil(steps / strides) of them
    (s,) = spec.strides
    time_axis = -2 if spec.data_format == "channels_last" else -1
    assert y.shape[time_axis] == -(-steps // s)
    assert y.shape == spec.compute_output_shape(shape)


@pytest.mark.parametrize("cls, config, batch, steps, channels", CAUSAL_CASES,
                         ids=CAUSAL_IDS)  # fmt: skip
def test_causal_output_does_not_depend_on_later_steps(
    cls, config, batch, steps, channels
):
    """``d output[t] / d input[u]`` is zero for every ``u > t * strides``,
    and not for ``u = t * strides`` (the newest step each output sees)."""
    spec = cls(**config, padding="causal")
    spec = dataclasses.replace(spec, activation="tanh")  # keep it smooth
    channels_last = spec.data_format == "channels_last"
    shape = (1, steps, channels) if channels_last else (1, channels, steps)
    params = _params(spec, shape, 5)
    x = _data(6, shape)
    jac = jax.jit(
        jax.jacobian(lambda x_: spec.apply(params, x_)), compiler_options=FAST_COMPILE
    )(x)
    jac = np.asarray(jac)[0]
    if channels_last:  # (T_out, F, T_in, C)
        jac = jac[:, :, 0, :, :]
    else:  # (F, T_out, C, T_in) -> (T_out, F, T_in, C)
        jac = jac[:, :, 0, :, :].transpose(1, 0, 3, 2)
    (s,) = spec.strides
    for t in range(jac.shape[0]):
        assert np.all(jac[t, :, t * s + 1 :, :] == 0.0), t
        assert np.any(jac[t, :, t * s, :] != 0.0), t


@pytest.mark.parametrize("cls", TWO_D, ids=_ids(TWO_D))
@pytest.mark.parametrize("padding", ["causal", "CAUSAL", "Causal"])
def test_causal_is_refused_in_2d(cls, padding):
    with _raises(
        ValueError,
        f"{cls.__name__} does not support padding='causal': causal padding is only "
        "defined for 1-D convolutions; use 'valid' or 'same'.",
    ):
        cls(*_args(cls), 3, padding=padding)


@pytest.mark.parametrize("cls", ONE_D, ids=_ids(ONE_D))
def test_causal_in_any_case_is_one_spec(cls):
    a = cls(*_args(cls), 3, padding="causal")
    for padding in ("CAUSAL", "Causal"):
        b = cls(*_args(cls), 3, padding=padding)
        assert b == a
        assert hash(b) == hash(a)
    restored = cls.from_config(json.loads(json.dumps(a.get_config())))
    assert restored == a
    assert restored.get_config()["padding"] == "causal"


# ---- 3. every CPU lowering against the reference ------------------------------------

ND_IMPLS = ("auto", "direct", "blockdiag", "shift")
# (spec, input shape)
LOWERING_CASES = [
    (cj.DepthwiseConv2D((3, 2), strides=(2, 1), dilation_rate=(1, 2),
                        padding="same", depth_multiplier=2), (2, 7, 6, 3)),
    (cj.DepthwiseConv2D(3, dilation_rate=2, data_format="channels_first"),
     (1, 4, 7, 7)),
    (cj.DepthwiseConv2D((2, 3), strides=2, depth_multiplier=3, padding="same",
                        use_bias=False), (2, 1, 5, 6, 2)),
    (cj.DepthwiseConv1D(5, strides=2, dilation_rate=2, padding="causal",
                        depth_multiplier=2), (2, 11, 3)),
    (cj.DepthwiseConv1D(3, strides=3, padding="same",
                        data_format="channels_first"), (2, 4, 10)),
    (cj.DepthwiseConv1D(4, dilation_rate=3, depth_multiplier=3), (2, 1, 12, 2)),
    (cj.SeparableConv2D(4, (3, 2), strides=(1, 2), dilation_rate=(2, 1),
                        padding="same", depth_multiplier=2), (2, 6, 7, 3)),
    (cj.SeparableConv2D(3, 2, strides=2, data_format="channels_first",
                        use_bias=False), (2, 2, 5, 5)),
    (cj.SeparableConv1D(5, 3, strides=2, dilation_rate=2, padding="causal",
                        depth_multiplier=2), (2, 12, 3)),
    (cj.SeparableConv1D(2, 4, dilation_rate=3, padding="same",
                        data_format="channels_first", depth_multiplier=3),
     (1, 2, 2, 11)),
]  # fmt: skip
LOWERING_IDS = [f"{type(s).__name__}-{i}" for i, (s, _) in enumerate(LOWERING_CASES)]


@pytest.mark.parametrize("spec, shape", LOWERING_CASES, ids=LOWERING_IDS)
def test_every_lowering_matches_the_reference(spec, shape):
    impls = ("reference", *ND_IMPLS)
    if spec.rank == 1:
        impls += ("fft", "ncw")
    specs = tuple(dataclasses.replace(spec, impl=impl) for impl in impls)
    params = _params(spec, shape, 11)
    x = _data(12, shape)
    y_shape = spec.compute_output_shape(shape)
    ct = _data(13, y_shape)
    (y_ref, g_ref), *others = specs_values_and_vjps(specs, params, x, ct)
    assert y_ref.shape == y_shape
    for impl, (y, g) in zip(impls[1:], others, strict=True):
        assert_close(y, y_ref, err_msg=f"{impl} values, {spec}, {shape}")
        (gx, gp), (gx_ref, gp_ref) = g, g_ref
        assert_close(gx, gx_ref, err_msg=f"{impl} VJP w.r.t. x, {spec}")
        assert sorted(gp) == sorted(gp_ref) == sorted(params)
        for name in gp:
            assert_close(gp[name], gp_ref[name], err_msg=f"{impl} VJP w.r.t. {name}")


def test_the_lowering_cases_cover_the_options():
    specs = [s for s, _ in LOWERING_CASES]
    assert {type(s) for s in specs} == set(ALL_CLASSES)
    for cls in ALL_CLASSES:
        mine = [s for s in specs if type(s) is cls]
        assert any(max(s.strides) > 1 and max(s.dilation_rate) > 1 for s in mine)
        assert {s.data_format for s in mine} == {"channels_last", "channels_first"}
    assert {s.padding for s in specs} == {"valid", "same", "causal"}
    assert {s.depth_multiplier for s in specs} == {1, 2, 3}


@pytest.mark.parametrize(
    "spec, shape",
    [
        # the shift core's custom JVP, under the strides-with-dilation path
        (cj.DepthwiseConv2D(2, strides=(2, 1), dilation_rate=(1, 2),
                            depth_multiplier=2, padding="same", activation="tanh",
                            impl="shift"), (1, 4, 5, 2)),
        (cj.SeparableConv1D(3, 3, strides=2, dilation_rate=2, padding="causal",
                            depth_multiplier=2, activation="tanh"), (2, 7, 2)),
    ],
    ids=["DepthwiseConv2D-shift", "SeparableConv1D-causal"],
)  # fmt: skip
def test_check_grads_second_order(spec, shape):
    """Forward and reverse mode, to second order, against finite differences
    in float64, w.r.t. the input and every param."""
    with jax.enable_x64(True):
        params = {
            n: _data(i, s, np.float64)
            for i, (n, s) in enumerate(sorted(spec.param_shapes(shape).items()))
        }
        names = sorted(params)
        x = _data(20, shape, np.float64)

        @jax.jit
        def f(x_, *ws):
            return spec.apply(dict(zip(names, ws, strict=True)), x_)

        args = (x, *(params[n] for n in names))
        y = f(*args)
        assert y.dtype == jnp.float64
        ref = dataclasses.replace(spec, impl="reference")
        np.testing.assert_allclose(y, ref.apply(params, x), rtol=1e-12, atol=1e-12)
        check_grads(f, args, order=2, modes=("fwd", "rev"))


# ---- 4. shapes ----------------------------------------------------------------------


def _unknown_variants(batch, spatial, r):
    """``(batch, spatial)``: the known shape, then with None in the batch
    axes, in some spatial axes, and everywhere but the channel axis."""
    some = tuple(None if r.random() < 0.5 else n for n in spatial)
    if some == spatial:
        some = (None, *spatial[1:])
    return [
        (batch, spatial),
        ((None,) * len(batch), spatial),
        ((*batch[:-1], None), some),
        ((None,) * len(batch), (None,) * len(spatial)),
    ]


@pytest.mark.parametrize("case", SWEEP, ids=_sweep_id)
def test_output_and_param_shapes_match_keras(case):
    cls, seed = case
    config, batch, spatial, channels = _case(cls, seed)
    spec = cls(**config)
    klayer = getattr(keras.layers, cls.__name__)(**config)
    for weight in ("kernel", "pointwise_kernel", "bias"):
        if hasattr(klayer, _keras_initializer(klayer, weight)):
            setattr(klayer, _keras_initializer(klayer, weight), _np_zeros)
    shape = _shape(batch, spatial, channels, spec.data_format)

    # what apply returns, abstractly evaluated (the sweep runs it)
    params = jax.eval_shape(lambda k: spec.init(k, shape), jax.random.key(0))
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert jax.eval_shape(spec.apply, params, x).shape == spec.compute_output_shape(
        shape
    )

    for b, sp in _unknown_variants(batch, spatial, np.random.default_rng(seed)):
        s = _shape(b, sp, channels, spec.data_format)
        ours = spec.compute_output_shape(s)
        theirs = tuple(klayer.compute_output_shape(_keras_shape(b, s)))
        assert ours[: len(b)] == b, s
        assert ours[len(b) :] == theirs[1:], s

    klayer.build(_keras_shape(batch, shape))
    expected = {
        w.path.split("/")[-1]: tuple(w.shape) for w in klayer.weights
    }  # Keras's names and layouts
    assert spec.param_shapes(shape) == expected
    assert {k: v.shape for k, v in params.items()} == expected
    assert all(v.dtype == jnp.float32 for v in params.values())
    assert spec.count_params(shape) == klayer.count_params()


def test_param_shapes_by_hand():
    dw = cj.DepthwiseConv2D((3, 2), depth_multiplier=3)
    assert dw.param_shapes((None, 8, 8, 4)) == {"kernel": (3, 2, 4, 3), "bias": (12,)}
    assert dw.count_params((None, 8, 8, 4)) == 3 * 2 * 4 * 3 + 12
    sep = cj.SeparableConv1D(5, 3, depth_multiplier=2, use_bias=False)
    assert sep.param_shapes((None, 10, 4)) == {
        "depthwise_kernel": (3, 4, 2),
        "pointwise_kernel": (1, 8, 5),
    }
    sep2 = cj.SeparableConv2D(6, 3, data_format="channels_first")
    assert sep2.param_shapes((1, 2, 5, 5)) == {
        "depthwise_kernel": (3, 3, 2, 1),
        "pointwise_kernel": (1, 1, 2, 6),
        "bias": (6,),
    }
    assert sep2.compute_output_shape((None, 2, None, 5)) == (None, 6, None, 3)
    # init follows param_shapes, in Keras's layouts
    params = sep2.init(jax.random.key(0), (1, 2, 5, 5))
    assert {k: v.shape for k, v in params.items()} == sep2.param_shapes((1, 2, 5, 5))
    assert float(jnp.abs(params["bias"]).max()) == 0.0


# ---- 5. configs ---------------------------------------------------------------------


def _without_name(config):
    return {k: v for k, v in config.items() if k != "name"}


@pytest.mark.parametrize("case", SWEEP, ids=_sweep_id)
def test_sweep_config_round_trips_and_loads_both_ways(case):
    """JSON round trip; Keras builds from our config the layer it builds from
    the same arguments; Keras's config gives back our spec."""
    cls, seed = case
    config = _zeros_initialized(_case(cls, seed)[0])
    spec = cls(**config)
    ours = json.loads(json.dumps(spec.get_config()))
    restored = cls.from_config(ours)
    assert restored == spec
    assert hash(restored) == hash(spec)

    kcls = getattr(keras.layers, cls.__name__)
    oracle = kcls(**config)
    assert _without_name(kcls.from_config(ours).get_config()) == _without_name(
        oracle.get_config()
    )
    from_keras = cls.from_config(oracle.get_config())
    assert from_keras == spec
    assert hash(from_keras) == hash(spec)


L1, L2 = cj.regularizers.L1, cj.regularizers.L2

RICH_SPECS = [
    (
        cj.DepthwiseConv2D(
            (3, 2), strides=(2, 1), dilation_rate=(1, 2), padding="same",
            depth_multiplier=2, data_format="channels_first", activation="swish",
            depthwise_initializer="he_normal",
            depthwise_regularizer=cj.regularizers.L1L2(l1=0.25, l2=0.125),
            bias_regularizer=L2(0.5), activity_regularizer=L1(0.25),
            depthwise_constraint=cj.constraints.MaxNorm(2.0, axis=(0, 1)),
            bias_constraint="non_neg",
        ),
        (2, 3, 7, 6),
    ),
    (
        cj.DepthwiseConv1D(
            4, strides=2, dilation_rate=2, depth_multiplier=3, activation="gelu",
            use_bias=False, depthwise_constraint="non_neg",
            depthwise_initializer=cj.initializers.VarianceScaling(
                2.0, "fan_avg", "uniform"
            ),
        ),
        (2, 12, 2),
    ),
    (
        cj.SeparableConv2D(
            5, 3, strides=2, padding="same", depth_multiplier=2, activation="relu",
            depthwise_initializer="lecun_uniform", pointwise_initializer="he_uniform",
            bias_initializer=cj.initializers.Constant(0.5),
            depthwise_regularizer=L2(0.25), pointwise_regularizer=L1(0.125),
            depthwise_constraint=cj.constraints.UnitNorm(axis=(0, 1)),
            pointwise_constraint=cj.constraints.MaxNorm(1.5, axis=(0, 1, 2)),
        ),
        (2, 7, 6, 3),
    ),
    (
        cj.SeparableConv1D(
            3, (3,), dilation_rate=(3,), data_format="channels_first",
            activation="tanh", pointwise_regularizer="l2", bias_regularizer=L1(0.25),
            pointwise_constraint="non_neg", bias_constraint="unit_norm",
        ),
        (2, 4, 11),
    ),
]  # fmt: skip
RICH_IDS = [f"{type(spec).__name__}-{i}" for i, (spec, _) in enumerate(RICH_SPECS)]


@pytest.mark.parametrize("spec, shape", RICH_SPECS, ids=RICH_IDS)
def test_json_round_trip(spec, shape):
    config = spec.get_config()
    restored = type(spec).from_config(json.loads(json.dumps(config)))
    assert restored == spec
    assert hash(restored) == hash(spec)
    assert "impl" not in config  # "auto" is left out: Keras's configs stay loadable
    forced = dataclasses.replace(spec, impl="shift")
    config = json.loads(json.dumps(forced.get_config()))
    assert config["impl"] == "shift"
    assert type(spec).from_config(config) == forced


@functools.partial(jax.jit, static_argnums=0)
def _jit_apply(spec, params, x):
    return spec.apply(params, x)


@pytest.mark.parametrize("spec, shape", RICH_SPECS, ids=RICH_IDS)
def test_configs_exchanged_with_keras_give_equal_layers_computing_the_same(spec, shape):
    """Keras builds a layer from our config with our arguments; its config
    gives back an equal spec; all three compute the same numbers."""
    kcls = getattr(keras.layers, type(spec).__name__)
    klayer = kcls.from_config(json.loads(json.dumps(spec.get_config())))
    for name in ("filters", "kernel_size", "strides", "padding", "data_format",
                 "dilation_rate", "depth_multiplier", "use_bias"):  # fmt: skip
        if hasattr(spec, name):
            assert tuple(np.atleast_1d(getattr(klayer, name))) == tuple(
                np.atleast_1d(getattr(spec, name))
            ), name
    loaded = type(spec).from_config(json.loads(json.dumps(klayer.get_config())))
    assert loaded == spec
    assert hash(loaded) == hash(spec)

    # Our params as Keras's initial weights (Keras's random initializers
    # would cost a compilation per shape; their configs were compared above).
    params = _params(spec, shape, 0)
    _initialize_with(klayer, params)
    klayer.build(shape)
    _check_keras_weights(klayer, params)
    x = _data(0, shape)
    y_keras = klayer(x)
    assert_close(_jit_apply(spec, params, x), y_keras)
    assert_close(_jit_apply(loaded, params, x), y_keras)
    # the constraints Keras loaded project as ours do
    for weight in params:
        attr = cj.layers.base.weight_attribute(spec, weight, "constraint")
        ours, theirs = getattr(spec, attr), getattr(klayer, attr)
        assert (ours is None) == (theirs is None), attr
        if ours is not None:
            w = _data(7, params[weight].shape)
            assert_close(ours(w), theirs(w), rtol=1e-6, err_msg=attr)
    # and the regularizers penalise as ours do
    for weight in params:
        attr = cj.layers.base.weight_attribute(spec, weight, "regularizer")
        ours, theirs = getattr(spec, attr), getattr(klayer, attr)
        assert (ours is None) == (theirs is None), attr
        if ours is not None:
            w = _data(8, params[weight].shape)
            assert_close(ours(w), theirs(w), rtol=1e-6, err_msg=attr)


def _default(cls, **kwargs):
    return cls(*_args(cls), 3, **kwargs)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_linear_activation_is_the_default_spec(cls):
    assert _default(cls, activation="linear") == _default(cls)
    assert _default(cls, activation=cj.activations.get("linear")) == _default(cls)
    assert hash(_default(cls, activation="linear")) == hash(_default(cls))
    assert _default(cls, activation="linear").activation is None
    assert _default(cls, activation=None) == _default(cls)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_keras_default_config_gives_the_default_spec(cls):
    config = getattr(keras.layers, cls.__name__)(*_args(cls), 3).get_config()
    spec = cls.from_config(config)
    assert spec == _default(cls)
    assert hash(spec) == hash(_default(cls))
    assert cls.from_config(json.loads(json.dumps(config))) == _default(cls)
    # and the defaults are Keras's
    assert spec.depth_multiplier == 1
    assert spec.padding == "valid"
    assert spec.data_format == "channels_last"
    assert spec.use_bias is True


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_equal_arguments_are_equal_specs(cls):
    rank = cls.rank
    a = _default(cls, padding="same", data_format="channels_first")
    for b in (
        cls(*_args(cls), (3,) * rank, padding="SAME", data_format="Channels_First"),
        cls(*_args(cls), [3] * rank, strides=1, dilation_rate=(1,) * rank,
            padding="Same", data_format="CHANNELS_FIRST", depth_multiplier=1),
    ):  # fmt: skip
        assert b == a
        assert hash(b) == hash(a)
    assert a.kernel_size == (3,) * rank
    assert _default(cls, data_format=None) == _default(cls)
    assert _default(cls, depth_multiplier=2) != _default(cls)
    if cls.rank == 2:
        assert _default(cls, strides=2).strides == (2, 2)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_equal_specs_compile_once_as_static_jit_arguments(cls):
    rank = cls.rank
    traces = []

    @functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
    def apply(spec, params, x):
        traces.append(spec)
        return spec.apply(params, x)

    kcls = getattr(keras.layers, cls.__name__)
    equal_specs = [
        _default(cls),
        cls(*_args(cls), (3,) * rank, activation="linear", padding="VALID"),
        _default(cls, data_format="Channels_Last", strides=1, depth_multiplier=1),
        cls.from_config(kcls(*_args(cls), 3).get_config()),
        cls.from_config(json.loads(json.dumps(_default(cls).get_config()))),
        dataclasses.replace(_default(cls), kernel_size=(3,) * rank),
    ]
    shape = (2, *(5,) * rank, 2)
    x = _data(0, shape)
    params = _params(_default(cls), shape, 1)
    y = [apply(s, params, x) for s in equal_specs]
    assert len(traces) == 1
    for yi in y[1:]:
        np.testing.assert_array_equal(yi, y[0])
    apply(_default(cls, activation="relu"), params, x)  # a different spec retraces
    assert len(traces) == 2


def test_the_depthwise_kernel_uses_kerass_attribute_names():
    """The depthwise layers' param "kernel" is governed by ``depthwise_*``
    (there is no ``kernel_*`` field); the separable layers' params by their
    own names."""
    weight_attribute = cj.layers.base.weight_attribute
    for cls in DEPTHWISE:
        spec = _default(cls)
        assert weight_attribute(spec, "kernel", "regularizer") == (
            "depthwise_regularizer"
        )
        assert weight_attribute(spec, "bias", "constraint") == "bias_constraint"
        assert not hasattr(spec, "kernel_regularizer")
        assert not hasattr(spec, "kernel_initializer")
    for cls in SEPARABLE:
        spec = _default(cls)
        for weight, prefix in (("depthwise_kernel", "depthwise"),
                               ("pointwise_kernel", "pointwise")):  # fmt: skip
            assert weight_attribute(spec, weight, "initializer") == (
                f"{prefix}_initializer"
            )


# ---- 6. errors ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_depth_multiplier_errors(cls):
    for value in (0, -1):
        with _raises(
            ValueError,
            f"`depth_multiplier` must be a positive int; received "
            f"depth_multiplier={value}.",
        ):
            _default(cls, depth_multiplier=value)
    with _raises(
        TypeError, "`depth_multiplier` must be an int; received 2.0 of type float."
    ):
        _default(cls, depth_multiplier=2.0)
    with _raises(
        TypeError, "`depth_multiplier` must be an int; received the bool True."
    ):
        _default(cls, depth_multiplier=True)
    with _raises(TypeError, "`depth_multiplier` must be an int; received '2' of type"):
        _default(cls, depth_multiplier="2")
    assert _default(cls, depth_multiplier=np.int64(3)).depth_multiplier == 3
    assert type(_default(cls, depth_multiplier=np.int64(3)).depth_multiplier) is int


@pytest.mark.parametrize("cls", SEPARABLE, ids=_ids(SEPARABLE))
def test_separable_filters_errors(cls):
    with _raises(ValueError, "`filters` must be a positive int; received filters=0."):
        cls(0, 3)
    with _raises(ValueError, "`filters` must be a positive int; received filters=-4."):
        cls(-4, 3)
    with _raises(TypeError, "`filters` must be an int; received 4.0 of type float."):
        cls(4.0, 3)
    with _raises(TypeError, "`filters` must be an int; received the bool True."):
        cls(True, 3)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_per_axis_argument_errors(cls):
    rank = cls.rank
    ints = "1 int" if rank == 1 else f"{rank} ints"
    long = (3,) * (rank + 1)
    with _raises(
        ValueError,
        f"`kernel_size` must be an int or a tuple of {ints} for a {rank}-D "
        f"convolution; received kernel_size={long} of length {rank + 1}.",
    ):
        cls(*_args(cls), long)
    if rank == 2:
        with _raises(
            ValueError,
            "`kernel_size` must be an int or a tuple of 2 ints for a 2-D "
            "convolution; received kernel_size=(3,) of length 1.",
        ):
            cls(*_args(cls), (3,))
    with _raises(
        ValueError,
        f"`strides` must be an int or a tuple of {ints} for a {rank}-D "
        f"convolution; received strides={(2,) * (rank + 1)} of length {rank + 1}.",
    ):
        cls(*_args(cls), 3, strides=(2,) * (rank + 1))
    with _raises(ValueError, "`kernel_size` must be a positive int"):
        cls(*_args(cls), 0)
    with _raises(ValueError, "`dilation_rate` must be a positive int"):
        cls(*_args(cls), 3, dilation_rate=(0,) * rank)
    with _raises(TypeError, "`kernel_size` must be an int; received None"):
        cls(*_args(cls), None)
    paddings = "'valid', 'same', 'causal'" if rank == 1 else "'valid', 'same'"
    with _raises(
        ValueError,
        f"`padding` must be one of {paddings} (any case); received padding='full'.",
    ):
        cls(*_args(cls), 3, padding="full")
    with _raises(
        ValueError,
        "`data_format` must be one of 'channels_last', 'channels_first' (any "
        "case); received data_format='NHWC'.",
    ):
        cls(*_args(cls), 3, data_format="NHWC")


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_strides_with_dilation_are_allowed(cls):
    """Keras refuses strides > 1 with dilation > 1 for Conv*D, not for the
    depthwise and separable layers; neither do we."""
    rank = cls.rank
    spec = _default(cls, strides=2, dilation_rate=2)
    assert spec.strides == (2,) * rank and spec.dilation_rate == (2,) * rank
    shape = (1, *(9,) * rank, 2)
    kshape = getattr(keras.layers, cls.__name__)(
        *_args(cls), 3, strides=2, dilation_rate=2
    ).compute_output_shape(shape)
    assert spec.compute_output_shape(shape) == tuple(kshape)
    with _raises(ValueError, "is not supported together with `dilation_rate > 1`"):
        (cj.Conv1D if rank == 1 else cj.Conv2D)(4, 3, strides=2, dilation_rate=2)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
@pytest.mark.parametrize("impl", ["fft", "ncw", "auto", "Shift", "fast"])
def test_impl_names(cls, impl):
    # the listed names derive from the registry (lowering.choose.IMPLS)
    if impl == "fast":
        with _raises(
            ValueError,
            f"`impl` must be one of {', '.join(map(repr, choose.IMPLS))}; received "
            "impl='fast'.",
        ):
            _default(cls, impl=impl)
    elif impl in choose.ONE_D_CORES and cls.rank == 2:
        nd = [i for i in choose.IMPLS if i not in choose.ONE_D_CORES]
        assert "split" in nd
        with _raises(
            ValueError,
            f"impl={impl!r} is a 1-D core; a 2-D convolution takes one of "
            f"{', '.join(map(repr, nd))}.",
        ):
            _default(cls, impl=impl)
    else:
        assert _default(cls, impl=impl).impl == impl.lower()


LAYOUTS = {
    (1, "channels_last"): "(steps, channels)",
    (1, "channels_first"): "(channels, steps)",
    (2, "channels_last"): "(rows, cols, channels)",
    (2, "channels_first"): "(channels, rows, cols)",
}


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_input_rank_too_low(cls, data_format, key):
    spec = _default(cls, data_format=data_format)
    rank = cls.rank
    shape = _shape((), (6,) * rank, 2, data_format)
    fragment = (
        f"{cls.__name__} expects inputs of rank >= {rank + 2}, batch_shape + "
        f"{LAYOUTS[rank, data_format]}; received an input of shape {shape} "
        f"(rank {rank + 1})."
    )
    with _raises(ValueError, fragment):
        spec.init(key, shape)
    with _raises(ValueError, fragment):
        spec.compute_output_shape(shape)
    params = spec.init(key, _shape((2,), (6,) * rank, 2, data_format))
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, fragment):
            apply(params, jnp.ones(shape))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_channel_axis_must_be_known_and_input_long_enough(cls, key):
    rank = cls.rank
    spec = _default(cls)
    shape = (2, *(None,) * rank, None)
    with _raises(
        ValueError,
        f"The channel axis of the input to {cls.__name__} must be known "
        f"(data_format='channels_last'); received input_shape={shape}.",
    ):
        spec.init(key, shape)
    short = (2, *(2,) * rank, 3)
    where = "" if rank == 1 else " along spatial axis 0"
    fragment = (
        f"The input length 2{where} is too short for padding='valid' and a "
        "dilated kernel extent of 3: the output would have length 0."
    )
    with _raises(ValueError, fragment):
        spec.compute_output_shape(short)
    params = spec.init(key, (2, *(5,) * rank, 3))
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, fragment):
            apply(params, jnp.ones(short))
    # "same" takes any length
    same = _default(cls, padding="same")
    assert same.compute_output_shape(short)[-1] == (4 if cls in SEPARABLE else 3)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("cls", DEPTHWISE, ids=_ids(DEPTHWISE))
def test_depthwise_params_must_fit(cls, jit, key):
    rank = cls.rank
    kernel_size = (3, 2)[:rank]
    spec = cls(kernel_size, depth_multiplier=2)
    shape = (2, *(5,) * rank, 6)
    params = spec.init(key, shape)
    apply = jax.jit(spec.apply) if jit else spec.apply
    x = jnp.ones(shape)
    described = (
        f"{cls.__name__}(kernel_size={spec.kernel_size}, depth_multiplier=2) on an "
        "input with 6 channels"
    )
    other = spec.init(key, (2, *(5,) * rank, 4))
    with _raises(
        ValueError,
        f"params['kernel'] of shape {(*kernel_size, 4, 2)} does not fit {described}: "
        f"expected a kernel of shape {(*kernel_size, 6, 2)}.",
    ):
        apply(other, x)
    # a depth multiplier of 1 instead of 2
    with _raises(
        ValueError,
        f"params['kernel'] of shape {(*kernel_size, 6, 1)} does not fit {described}",
    ):
        apply({**params, "kernel": jnp.ones((*kernel_size, 6, 1))}, x)
    # the grouped-convolution layout (*k, 1, C * m) is not Keras's
    with _raises(
        ValueError, f"params['kernel'] of shape {(*kernel_size, 1, 12)} does not fit"
    ):
        apply({**params, "kernel": jnp.ones((*kernel_size, 1, 12))}, x)
    with _raises(
        ValueError,
        f"params['bias'] of shape (6,) does not fit {described}: expected a bias of "
        "shape (12,).",
    ):
        apply({**params, "bias": jnp.ones(6)}, x)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys ['bias', "
        "'kernel']; received ['bias', 'depthwise_kernel'].",
    ):
        apply({"depthwise_kernel": params["kernel"], "bias": params["bias"]}, x)
    no_bias = cls(kernel_size, depth_multiplier=2, use_bias=False)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=False) params must have exactly the keys "
        "['kernel']; received ['bias', 'kernel'].",
    ):
        (jax.jit(no_bias.apply) if jit else no_bias.apply)(params, x)
    with _raises(
        ValueError,
        f"{cls.__name__} params must be a dict with the keys ['bias', 'kernel']; "
        "received list.",
    ):
        apply([params["kernel"], params["bias"]], x)
    with _raises(TypeError, "params['kernel'] must be floating; received int32."):
        apply({**params, "kernel": params["kernel"].astype(jnp.int32)}, x)
    with _raises(TypeError, f"{cls.__name__} takes real inputs; received dtype"):
        apply(params, x.astype(jnp.complex64))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("cls", SEPARABLE, ids=_ids(SEPARABLE))
def test_separable_params_must_fit(cls, jit, key):
    rank = cls.rank
    kernel_size = (3, 2)[:rank]
    ones = (1,) * rank
    spec = cls(4, kernel_size, depth_multiplier=2)
    shape = (2, *(5,) * rank, 3)
    params = spec.init(key, shape)
    apply = jax.jit(spec.apply) if jit else spec.apply
    x = jnp.ones(shape)
    described = (
        f"{cls.__name__}(filters=4, kernel_size={spec.kernel_size}, "
        "depth_multiplier=2) on an input with 3 channels"
    )
    keys = "['bias', 'depthwise_kernel', 'pointwise_kernel']"
    # the depthwise layers' names are not the separable layers'
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys {keys}; "
        "received ['bias', 'kernel'].",
    ):
        apply({"kernel": params["depthwise_kernel"], "bias": params["bias"]}, x)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys {keys}; "
        "received ['bias', 'depthwise_kernel'].",
    ):
        apply({k: v for k, v in params.items() if k != "pointwise_kernel"}, x)
    with _raises(
        ValueError,
        f"params['depthwise_kernel'] of shape {(*kernel_size, 2, 2)} does not fit "
        f"{described}: expected a depthwise_kernel of shape {(*kernel_size, 3, 2)}.",
    ):
        apply({**params, "depthwise_kernel": jnp.ones((*kernel_size, 2, 2))}, x)
    with _raises(
        ValueError,
        f"params['pointwise_kernel'] of shape {(*ones, 3, 4)} does not fit "
        f"{described}: expected a pointwise_kernel of shape {(*ones, 6, 4)}.",
    ):
        apply({**params, "pointwise_kernel": jnp.ones((*ones, 3, 4))}, x)
    # a pointwise kernel without its 1 x 1 window axes
    with _raises(ValueError, "params['pointwise_kernel'] of shape (6, 4) does not fit"):
        apply({**params, "pointwise_kernel": jnp.ones((6, 4))}, x)
    with _raises(
        ValueError,
        f"params['bias'] of shape (6,) does not fit {described}: expected a bias "
        "of shape (4,).",
    ):
        apply({**params, "bias": jnp.ones(6)}, x)
    no_bias = cls(4, kernel_size, depth_multiplier=2, use_bias=False)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=False) params must have exactly the keys "
        "['depthwise_kernel', 'pointwise_kernel']; received ['bias', "
        "'depthwise_kernel', 'pointwise_kernel'].",
    ):
        (jax.jit(no_bias.apply) if jit else no_bias.apply)(params, x)
    with _raises(
        TypeError, "params['depthwise_kernel'] must be floating; received int32."
    ):
        apply({**params, "depthwise_kernel": jnp.ones((*kernel_size, 3, 2), int)}, x)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=_ids(ALL_CLASSES))
def test_from_config_errors(cls):
    config = _default(cls).get_config()
    with _raises(
        ValueError, f"Unknown keys in the config of {cls.__name__}: ['groups']."
    ):
        cls.from_config({**config, "groups": 2})
    if cls in DEPTHWISE:
        # Conv*D's names are not the depthwise layers'
        with _raises(ValueError, "['kernel_regularizer']"):
            cls.from_config({**config, "kernel_regularizer": None})


# ---- 7. training --------------------------------------------------------------------

MAX_NORM = 0.75


def _mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def _model_2d():
    """A small 2-D denoiser on an 8 x 8 grid, every weight penalised and two
    constrained: Conv2D to 4 channels, a depthwise convolution to 8, tanh, a
    separable convolution back to 2."""
    return cj.Sequential(
        [
            cj.Conv2D(
                4, 3, padding="same", activation="relu",
                kernel_regularizer=L2(1e-3), bias_regularizer=L1(2e-3),
            ),
            cj.DepthwiseConv2D(
                3, padding="same", depth_multiplier=2,
                depthwise_regularizer=L2(3e-3), bias_regularizer=L2(4e-3),
                depthwise_constraint=cj.constraints.NonNeg(),
            ),
            cj.Activation("tanh"),
            cj.SeparableConv2D(
                2, 3, padding="same",
                depthwise_regularizer=L1(5e-3), pointwise_regularizer=L2(6e-3),
                bias_regularizer=L1(7e-3),
                pointwise_constraint=cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1, 2)),
            ),
        ]
    )  # fmt: skip


def _data_2d(n=32, seed=0):
    """Noisy 2-D sinusoids (input) and the clean ones (target)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 8)
    fy, fx = rng.uniform(0.5, 1.5, (2, n, 1, 1, 2))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 2))
    clean = np.sin(t[None, :, None, None] * fy + t[None, None, :, None] * fx + phase)
    noisy = clean + 0.2 * rng.normal(size=clean.shape)
    return jnp.asarray(noisy, jnp.float32), jnp.asarray(clean, jnp.float32)


def _check_constraints_2d(params):
    assert float(params[1]["kernel"].min()) >= 0.0
    norms = jnp.sqrt(jnp.sum(params[3]["pointwise_kernel"] ** 2, axis=(0, 1, 2)))
    assert float(norms.max()) <= MAX_NORM + 1e-6


def test_2d_training_reduces_the_loss_and_keeps_the_constraints():
    model = _model_2d()
    x, y = _data_2d()
    params = model.init(jax.random.key(0), x.shape)
    assert float(params[1]["kernel"].min()) < 0.0  # the constraint has work to do
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    step = cj.make_train_step(model, opt, _mse)
    evaluate = cj.make_eval_step(model, _mse)
    before = evaluate(params, x, y)
    losses = []
    for _ in range(80):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
        _check_constraints_2d(params)
    assert np.all(np.isfinite(losses))
    assert losses[0] == pytest.approx(float(before["loss"]), rel=1e-5)
    assert losses[-1] < 0.4 * losses[0], losses[::10]
    after = evaluate(params, x, y)
    assert float(after["task_loss"]) < 0.3 * float(before["task_loss"])
    assert float(after["regularization_loss"]) > 0.0
    # the non-negativity projection ran: some depthwise weights sit at zero
    assert float(jnp.mean(params[1]["kernel"] == 0.0)) > 0.0


def test_2d_regularization_loss_by_hand_and_against_keras():
    model = _model_2d()
    shape = (2, 8, 8, 2)
    params = model.init(jax.random.key(1), shape)
    for i, name in ((0, "bias"), (1, "bias"), (3, "bias")):
        params[i][name] = _data(i, params[i][name].shape)
    p0, p1, p3 = params[0], params[1], params[3]
    by_layer = [
        1e-3 * jnp.sum(p0["kernel"] ** 2) + 2e-3 * jnp.sum(jnp.abs(p0["bias"])),
        3e-3 * jnp.sum(p1["kernel"] ** 2) + 4e-3 * jnp.sum(p1["bias"] ** 2),
        0.0,
        5e-3 * jnp.sum(jnp.abs(p3["depthwise_kernel"]))
        + 6e-3 * jnp.sum(p3["pointwise_kernel"] ** 2)
        + 7e-3 * jnp.sum(jnp.abs(p3["bias"])),
    ]
    assert_close(cj.regularization_loss(model, params), sum(by_layer), rtol=1e-6)
    for layer, p, expected in zip(model.layers, params, by_layer, strict=True):
        assert_close(cj.regularization_loss(layer, p), expected, rtol=1e-6)
    # a penalty on one weight only: the depthwise layer's kernel, then bias
    only_kernel = cj.DepthwiseConv2D(3, depthwise_regularizer=L1(0.5))
    assert_close(
        cj.regularization_loss(only_kernel, p1), 0.5 * jnp.sum(jnp.abs(p1["kernel"]))
    )
    only_bias = cj.DepthwiseConv2D(3, bias_regularizer=L1(0.5))
    assert_close(
        cj.regularization_loss(only_bias, p1), 0.5 * jnp.sum(jnp.abs(p1["bias"]))
    )
    only_pointwise = cj.SeparableConv2D(2, 3, pointwise_regularizer=L1(0.5))
    assert_close(
        cj.regularization_loss(only_pointwise, p3),
        0.5 * jnp.sum(jnp.abs(p3["pointwise_kernel"])),
    )
    # Keras's layers, from our configs, with our weights
    klayers = [
        getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())
        for layer in model.layers
    ]
    for klayer, p in zip(klayers, params, strict=True):
        _initialize_with(klayer, p)
    kmodel = keras.Sequential([keras.Input(shape[1:]), *klayers])
    for klayer, p in zip(kmodel.layers, params, strict=True):
        _check_keras_weights(klayer, p)
    keras_total = sum(float(loss) for loss in kmodel.losses)
    assert_close(cj.regularization_loss(model, params), keras_total, rtol=1e-5)
    x = _data(3, shape)
    assert_close(_reference(model).apply(params, x), kmodel(x), rtol=1e-5)
    # parameter counts and the summary, against Keras's
    input_shape = (None, *shape[1:])
    assert model.count_params(input_shape) == kmodel.count_params()
    for layer, klayer, s in zip(
        model.layers, kmodel.layers, model.layer_input_shapes(input_shape), strict=False
    ):
        if hasattr(layer, "count_params"):
            assert layer.count_params(s) == klayer.count_params()
        assert tuple(layer.compute_output_shape(s)) == tuple(klayer.output.shape)
    text = model.summary(input_shape, print_fn=lambda _: None)
    assert "depthwise_conv2d (DepthwiseConv2D)" in text
    assert "separable_conv2d (SeparableConv2D)" in text
    assert f"Total params: {kmodel.count_params():,}" in text


def _reference(model):
    return cj.Sequential(
        [
            dataclasses.replace(layer, impl="reference")
            if hasattr(layer, "impl")
            else layer
            for layer in model.layers
        ]
    )


def test_2d_apply_constraints_by_hand():
    model = _model_2d()
    params = model.init(jax.random.key(2), (2, 8, 8, 2))
    params = jax.tree.map(lambda p: 3.0 * p - 0.1, params)
    projected = cj.apply_constraints(model, params)
    assert_close(projected[0]["kernel"], params[0]["kernel"], rtol=0, atol=0)
    assert_close(
        projected[1]["kernel"], jnp.maximum(params[1]["kernel"], 0.0), rtol=0, atol=0
    )
    assert_close(projected[1]["bias"], params[1]["bias"], rtol=0, atol=0)
    assert projected[2] == {}
    pk = params[3]["pointwise_kernel"]
    norms = jnp.sqrt(jnp.sum(pk**2, axis=(0, 1, 2), keepdims=True))
    assert_close(
        projected[3]["pointwise_kernel"],
        pk * jnp.clip(norms, 0, MAX_NORM) / (1e-7 + norms),
    )
    keras_pk = keras.constraints.MaxNorm(MAX_NORM, axis=(0, 1, 2))(pk)
    assert_close(projected[3]["pointwise_kernel"], keras_pk, rtol=1e-6)
    for name in ("depthwise_kernel", "bias"):
        assert_close(projected[3][name], params[3][name], rtol=0, atol=0)


# (layer, input shape): small, smooth activations so second order is not trivial
# (layer, input shape, order): small, smooth activations so that second order
# is not trivial. check_gradients runs op by op, and each op's derivatives
# compile on their own: the default order 2 for one layer, order 1 for the
# others (test_check_grads_second_order checks order 2, jitted).
GRAD_CHECKS = [
    (cj.DepthwiseConv2D((2, 3), strides=(2, 1), depth_multiplier=2, padding="same",
                        activation="tanh"), (1, 4, 4, 2), 1),
    (cj.DepthwiseConv1D(3, strides=2, dilation_rate=2, padding="causal",
                        depth_multiplier=2, activation="sigmoid"), (2, 7, 2), 2),
    (cj.SeparableConv2D(3, 2, dilation_rate=(1, 2), depth_multiplier=2,
                        data_format="channels_first", activation="tanh"),
     (1, 2, 4, 5), 1),
    (cj.SeparableConv1D(2, 3, padding="causal", depth_multiplier=3,
                        activation="gelu"), (1, 2, 6, 2), 1),
]  # fmt: skip


@pytest.mark.parametrize(
    "layer, shape, order",
    GRAD_CHECKS,
    ids=[type(s).__name__ for s, _, _ in GRAD_CHECKS],
)
def test_check_gradients(layer, shape, order):
    params = _params(layer, shape, 30)
    x = _data(31, shape)
    kwargs = {} if order == 2 else {"order": order}
    report = cj.check_gradients(layer, params, x, **kwargs)
    assert report.ok, report
    assert report.order == order and report.dtype == "float64"
    assert report.modes == ("fwd", "rev")
    assert [name for name, _, _ in report.rows] == ["x"] + [
        f"['{n}']" for n in sorted(params)
    ]


def _model_1d():
    """A causal 1-D model: a depthwise convolution (lags 0, 2, 4) and a
    separable one (lags 0..2) see lags 0..6."""
    return cj.Sequential(
        [
            cj.DepthwiseConv1D(
                3, padding="causal", dilation_rate=2, depth_multiplier=2,
                depthwise_regularizer=L2(1e-4),
                depthwise_constraint=cj.constraints.MaxNorm(1.5, axis=0),
            ),
            cj.SeparableConv1D(
                1, 3, padding="causal", depth_multiplier=2,
                pointwise_regularizer=L2(1e-4),
                pointwise_constraint=cj.constraints.MaxNorm(2.0, axis=(0, 1)),
            ),
        ]
    )  # fmt: skip


def _data_1d(n=32, steps=24, seed=0):
    """White noise and a causal filter of it: y[t] = 0.6 x[t-1] - 0.4 x[t-5]."""
    x = np.random.default_rng(seed).normal(size=(n, steps, 1))
    y = np.zeros_like(x)
    y[:, 1:] += 0.6 * x[:, :-1]
    y[:, 5:] -= 0.4 * x[:, :-5]
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def test_1d_causal_model_trains_and_stays_causal():
    model = _model_1d()
    x, y = _data_1d()
    params = model.init(jax.random.key(3), x.shape)
    opt = optax.adam(2e-2)
    opt_state = opt.init(params)
    step = cj.make_train_step(model, opt, _mse)
    losses = []
    for _ in range(150):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
        dk = params[0]["kernel"]
        assert float(jnp.sqrt(jnp.sum(dk**2, axis=0)).max()) <= 1.5 + 1e-6
        pk = params[1]["pointwise_kernel"]
        assert float(jnp.sqrt(jnp.sum(pk**2, axis=(0, 1))).max()) <= 2.0 + 1e-6
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.1 * losses[0], losses[::15]
    # the regularizers are part of the objective
    reg = cj.regularization_loss(model, params)
    assert_close(
        reg,
        1e-4 * jnp.sum(params[0]["kernel"] ** 2)
        + 1e-4 * jnp.sum(params[1]["pointwise_kernel"] ** 2),
        rtol=1e-6,
    )
    # the trained model is causal: output[t] sees input[:t + 1] only
    jac = jax.jacobian(lambda v: model.apply(params, v))(x[:1])[0, :, 0, 0, :, 0]
    jac = np.asarray(jac)
    assert np.all(np.triu(jac, k=1) == 0.0)
    assert np.any(np.diag(jac, k=-6) != 0.0)
    assert np.all(np.tril(jac, k=-7) == 0.0)
