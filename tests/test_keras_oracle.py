"""Keras 3 (JAX backend) as the oracle: values and VJPs over a config sweep.

Each case builds a random spec, copies its params into the matching Keras
layer, and compares the output and the VJP with respect to the input, the
kernel and the bias. Keras's layers take rank-3 inputs, so inputs with several
batch axes are flattened for Keras and compared after reshaping back.
"""

import math

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import (
    assert_close,
    compare_with_keras,
    keras_sparsemax_is_fixed,
    normal,
    random_params,
)

# All Keras activation names but "threshold", which has no defaults.
ACTIVATIONS = [
    None, "relu", "tanh", "sigmoid", "gelu", "elu", "selu", "softmax", "silu",
    "swish", "softplus", "softsign", "leaky_relu", "relu6", "celu", "mish",
    "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "linear",
    "exponential", "log_sigmoid", "log_softmax", "sparse_plus", "squareplus",
    "soft_shrink", "hard_shrink", "tanh_shrink", "sparse_sigmoid", "sparsemax",
    "glu",
]  # fmt: skip
if not keras_sparsemax_is_fixed():  # keras-team/keras#23425
    ACTIVATIONS.remove("sparsemax")

N_CONV = 240
N_TRANSPOSE = 160


def _conv_case(seed):
    r = np.random.default_rng(seed)
    k = int(r.integers(1, 8))
    if r.random() < 0.5:
        strides, dilation = int(r.integers(1, 5)), 1
    else:
        strides, dilation = 1, int(r.integers(1, 5))
    groups = int(r.choice([1, 1, 2, 3, 4]))
    config = dict(
        filters=groups * int(r.integers(1, 4)) * 2,  # even, for glu
        kernel_size=k if r.random() < 0.5 else (k,),
        strides=strides,
        padding=str(r.choice(["valid", "same", "causal", "SAME", "Causal"])),
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=dilation,
        groups=groups,
        activation=ACTIVATIONS[int(r.integers(len(ACTIVATIONS)))],
        use_bias=bool(r.random() < 0.8),
    )
    if config["activation"] in ("glu", "softmax", "log_softmax", "sparsemax"):
        # they act along the last axis: keep it the (even, >= 2) channel axis
        config["data_format"] = "channels_last"
    channels = groups * int(r.integers(1, 4))
    k_eff = (k - 1) * dilation + 1
    low = k_eff if config["padding"] == "valid" else 1
    steps = int(r.integers(low, low + 14))
    batch = [(2,), (3,), (2, 3), (1, 2, 2)][int(r.integers(4))]
    return config, batch, steps, channels


def _transpose_case(seed):
    r = np.random.default_rng(10_000 + seed)
    k = int(r.integers(1, 8))
    if r.random() < 0.6:
        strides, dilation = int(r.integers(1, 5)), 1
    else:
        strides, dilation = 1, int(r.integers(1, 4))
    output_padding = None
    if r.random() < 0.4:
        output_padding = int(r.integers(0, strides))
        if output_padding == 0 and ((k - 1) * dilation + 1) % 2 == 0:
            output_padding = None  # with padding="same" a 1-step input gives 0 steps
    config = dict(
        filters=int(r.integers(1, 4)) * 2,
        kernel_size=k,
        strides=strides,
        padding=str(r.choice(["valid", "same", "Valid"])),
        output_padding=output_padding,
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=dilation,
        activation=ACTIVATIONS[int(r.integers(len(ACTIVATIONS)))],
        use_bias=bool(r.random() < 0.8),
    )
    if config["activation"] in ("glu", "softmax", "log_softmax", "sparsemax"):
        config["data_format"] = "channels_last"
    channels = int(r.integers(1, 6))
    steps = int(r.integers(1, 12))
    batch = [(2,), (3,), (2, 3)][int(r.integers(3))]
    return config, batch, steps, channels


def _keras_layer(cls, config, input_shape, params):
    # Zeros initializers: the weights are overwritten, and Keras's random ones
    # would cost a compilation per shape.
    klayer = cls(
        **{**config, "kernel_initializer": "zeros", "bias_initializer": "zeros"}
    )
    klayer.build(input_shape)
    weights = [params["kernel"]] + ([params["bias"]] if config["use_bias"] else [])
    klayer.set_weights([np.asarray(w) for w in weights])
    return klayer


def _input(seed, shape):
    return normal(seed, shape)


def _shape(batch, steps, channels, data_format):
    if data_format == "channels_last":
        return (*batch, steps, channels)
    return (*batch, channels, steps)


@pytest.mark.parametrize("seed", range(N_CONV))
def test_conv1d_matches_keras(seed):
    config, batch, steps, channels = _conv_case(seed)
    spec = cj.Conv1D(**config)
    shape = _shape(batch, steps, channels, spec.data_format)
    params = random_params(spec, shape, seed)
    keras_shape = (math.prod(batch), *shape[len(batch) :])
    klayer = _keras_layer(keras.layers.Conv1D, config, keras_shape, params)
    compare_with_keras(spec, klayer, params, _input(seed, shape), batch)


@pytest.mark.parametrize("seed", range(N_TRANSPOSE))
def test_conv1d_transpose_matches_keras(seed):
    config, batch, steps, channels = _transpose_case(seed)
    spec = cj.Conv1DTranspose(**config)
    shape = _shape(batch, steps, channels, spec.data_format)
    params = random_params(spec, shape, seed)
    keras_shape = (math.prod(batch), *shape[len(batch) :])
    klayer = _keras_layer(keras.layers.Conv1DTranspose, config, keras_shape, params)
    compare_with_keras(spec, klayer, params, _input(seed, shape), batch)


def test_seed_000_example():
    # tf.keras's documented example: a (4, 7, 10, 128) input gives (4, 7, 8, 32).
    spec = cj.Conv1D(32, 3, activation="relu")
    x = _input(0, (4, 7, 10, 128))
    params = spec.init(jax.random.key(0), x.shape)
    y = spec.apply(params, x)
    assert y.shape == (4, 7, 8, 32)
    klayer = _keras_layer(
        keras.layers.Conv1D,
        dict(filters=32, kernel_size=3, activation="relu", use_bias=True),
        (28, 10, 128),
        params,
    )
    assert_close(y, np.asarray(klayer(x.reshape(28, 10, 128))).reshape(y.shape))


@pytest.mark.parametrize(
    "dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.bfloat16, jnp.float16, bool]
)
@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_input_dtypes_cast_as_keras(cls, dtype):
    """Keras casts float inputs to the layer's dtype and every input to the
    kernel's dtype; the output is float32 for float32 params."""
    spec = cls(4, 3, strides=2, padding="same")
    x = np.asarray(np.random.default_rng(0).integers(0, 4, (2, 9, 3)), dtype)
    params = spec.init(jax.random.key(0), x.shape)
    keras_cls = getattr(keras.layers, cls.__name__)
    klayer = _keras_layer(
        keras_cls,
        dict(filters=4, kernel_size=3, strides=2, padding="same", use_bias=True),
        x.shape,
        params,
    )
    y = spec.apply(params, x)
    if cls is cj.Conv1DTranspose and not jnp.issubdtype(x.dtype, jnp.floating):
        # Keras 3.15's conv_transpose does not cast non-float inputs and fails
        # inside lax; we cast them as its Conv1D does.
        with pytest.raises(Exception, match="same dtypes"):
            klayer(x)
        x = x.astype(np.float32)
    y_k = klayer(x)
    assert y.dtype == jnp.float32 == y_k.dtype
    assert_close(y, y_k)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_low_precision_params_match_keras_dtype_policy(cls, dtype):
    """With params in a low-precision dtype, the whole layer computes in it,
    as a Keras layer built with that dtype does."""
    spec = cls(8, 5, padding="same", activation="gelu")
    x = _input(3, (2, 16, 6))
    params = spec.init(jax.random.key(0), x.shape, dtype=dtype)
    assert all(p.dtype == jnp.dtype(dtype) for p in params.values())
    keras_cls = getattr(keras.layers, cls.__name__)
    klayer = keras_cls(8, 5, padding="same", activation="gelu", dtype=dtype)
    klayer.build(x.shape)
    klayer.set_weights([np.asarray(params["kernel"]), np.asarray(params["bias"])])
    y = spec.apply(params, x)
    y_k = klayer(x)
    assert y.dtype == jnp.dtype(dtype) == y_k.dtype
    assert_close(y, y_k, rtol=2e-2, atol=2e-2)
