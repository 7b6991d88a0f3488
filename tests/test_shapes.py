"""Shape arithmetic: the length helpers, compute_output_shape and apply agree,
and agree with Keras's own shape functions."""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras.src.backend.common.backend_utils import compute_conv_transpose_output_shape
from keras.src.ops.operation_utils import compute_conv_output_shape

import conv1djax as cj

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@st.composite
def conv_args(draw, paddings=("valid", "same", "causal")):
    k = draw(st.integers(1, 9))
    strides = draw(st.integers(1, 5))
    dilation = 1 if strides > 1 else draw(st.integers(1, 5))
    padding = draw(st.sampled_from(paddings))
    k_eff = (k - 1) * dilation + 1
    low = k_eff if padding == "valid" else 1
    length = draw(st.integers(low, low + 40))
    return length, k, strides, padding, dilation


@SETTINGS
@given(conv_args())
def test_conv_output_length_matches_keras_and_apply(args):
    length, k, strides, padding, dilation = args
    n = cj.conv_output_length(length, k, strides, padding, dilation)
    keras_padding = "same" if padding == "causal" else padding
    keras_shape = compute_conv_output_shape(
        (2, length, 3), 4, (k,), strides, keras_padding, dilation_rate=dilation
    )
    assert n == keras_shape[1]
    spec = cj.Conv1D(4, k, strides, padding, dilation_rate=dilation)
    x = jax.ShapeDtypeStruct((2, length, 3), jnp.float32)
    params = jax.eval_shape(lambda: spec.init(jax.random.key(0), x.shape))
    out = jax.eval_shape(spec.apply, params, x).shape
    assert out == spec.compute_output_shape(x.shape) == (2, n, 4)


@st.composite
def transpose_args(draw):
    length, k, strides, padding, dilation = draw(conv_args(("valid", "same")))
    length = draw(st.integers(1, 30))
    op = draw(st.one_of(st.none(), st.integers(0, strides - 1)))
    return length, k, strides, padding, op, dilation


@SETTINGS
@given(transpose_args())
def test_conv_transpose_output_length_matches_keras_and_apply(args):
    length, k, strides, padding, op, dilation = args
    keras_shape = compute_conv_transpose_output_shape(
        (2, length, 3), (k,), 4, strides, padding, op, dilation_rate=dilation
    )
    if keras_shape[1] < 1:  # Keras would make an empty output; we refuse it
        with pytest.raises(ValueError, match="too short"):
            cj.conv_transpose_output_length(length, k, strides, padding, op, dilation)
        return
    n = cj.conv_transpose_output_length(length, k, strides, padding, op, dilation)
    assert n == keras_shape[1]
    spec = cj.Conv1DTranspose(4, k, strides, padding, op, dilation_rate=dilation)
    x = jax.ShapeDtypeStruct((2, length, 3), jnp.float32)
    params = jax.eval_shape(lambda: spec.init(jax.random.key(0), x.shape))
    out = jax.eval_shape(spec.apply, params, x).shape
    assert out == spec.compute_output_shape(x.shape) == (2, n, 4)


@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("batch", [(5,), (2, 3), (1, 2, 3)])
def test_compute_output_shape_equals_apply_shape(cls, data_format, batch):
    spec = cls(6, 3, strides=2, padding="same", data_format=data_format)
    shape = (*batch, 11, 4) if data_format == "channels_last" else (*batch, 4, 11)
    params = spec.init(jax.random.key(0), shape)
    y = spec.apply(params, jnp.ones(shape))
    assert spec.compute_output_shape(shape) == y.shape


@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_unknown_dims_stay_unknown(cls):
    spec = cls(6, 3, data_format="channels_first")
    assert spec.compute_output_shape((None, None, 4, None)) == (None, None, 6, None)
    spec = cls(6, 3)
    out = spec.compute_output_shape((None, 10, 4))
    assert out[0] is None and out[2] == 6


def test_glu_activation_halves_the_channel_axis():
    spec = cj.Conv1D(8, 3, activation="glu")
    shape = (2, 10, 3)
    y = spec.apply(spec.init(jax.random.key(0), shape), jnp.ones(shape))
    assert spec.compute_output_shape(shape) == y.shape == (2, 8, 4)


def test_count_params_matches_keras():
    import keras

    for cls, kcls, kwargs in [
        (cj.Conv1D, keras.layers.Conv1D, dict(groups=4)),
        (cj.Conv1D, keras.layers.Conv1D, dict(use_bias=False)),
        (cj.Conv1DTranspose, keras.layers.Conv1DTranspose, {}),
    ]:
        spec = cls(16, 5, **kwargs)
        klayer = kcls(16, 5, **kwargs)
        klayer.build((None, 20, 8))
        assert spec.count_params((None, 20, 8)) == klayer.count_params()
        params = spec.init(jax.random.key(0), (None, 20, 8))
        assert sum(p.size for p in params.values()) == klayer.count_params()
