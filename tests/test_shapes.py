"""Shape arithmetic: the length helpers, compute_output_shape and apply agree,
and agree with Keras's own shape functions; for every case of the N-d,
depthwise and separable oracle sweeps, ``compute_output_shape`` (with None in
batch and spatial entries too), ``param_shapes``, ``init`` and
``count_params`` agree with what ``apply`` returns and with Keras."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras.src.backend.common.backend_utils import compute_conv_transpose_output_shape
from keras.src.ops.operation_utils import compute_conv_output_shape

import conv1djax as cj
from conftest import (
    ND_AND_DEPTHWISE,
    keras_shape,
    keras_twin,
    shaped,
    sweep,
    sweep_case,
)

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


# ---- the sweeps' configs against Keras ------------------------------------------


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


SWEPT = ND_AND_DEPTHWISE


@pytest.mark.parametrize("case", sweep(SWEPT))
def test_output_and_param_shapes_match_keras(case):
    cls, seed = case
    config, batch, spatial, channels = sweep_case(cls, seed)
    spec = cls(**config)
    klayer = keras_twin(cls, config)
    shape = shaped(batch, spatial, channels, spec.data_format)

    # what apply returns, abstractly evaluated (the oracle sweep runs it)
    params = jax.eval_shape(lambda k: spec.init(k, shape), jax.random.key(0))
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert jax.eval_shape(spec.apply, params, x).shape == spec.compute_output_shape(
        shape
    )

    for b, sp in _unknown_variants(batch, spatial, np.random.default_rng(seed)):
        s = shaped(b, sp, channels, spec.data_format)
        ours = spec.compute_output_shape(s)
        theirs = tuple(klayer.compute_output_shape(keras_shape(b, s)))
        if config["activation"] == "glu":
            # Keras's compute_output_shape leaves the activation out; glu
            # halves the channel axis (the sweep checks the real output)
            theirs = (*theirs[:-1], theirs[-1] // 2)
        assert ours[: len(b)] == b, s
        assert ours[len(b) :] == theirs[1:], s

    klayer.build(keras_shape(batch, shape))
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
