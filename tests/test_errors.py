"""Every bad argument gets a clear ValueError/TypeError naming it and echoing
the value: at spec construction where possible, else at init/apply time
(under jit too), never a raw XLA error."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv1djax as cj

SPEC_ERRORS = [
    # (kwargs, exception, pattern the message must contain)
    (
        dict(filters=0),
        ValueError,
        "`filters` must be a positive int; received filters=0",
    ),
    (dict(filters=-3), ValueError, "filters=-3"),
    (dict(filters=2.0), TypeError, "`filters` must be an int; received 2.0"),
    (dict(filters="8"), TypeError, "`filters` must be an int; received '8'"),
    (dict(filters=True), TypeError, "`filters` must be an int; received the bool True"),
    (
        dict(kernel_size=0),
        ValueError,
        "`kernel_size` must be a positive int; received kernel_size=0",
    ),
    (dict(kernel_size=(3, 3)), ValueError, "kernel_size=(3, 3) of length 2"),
    (dict(kernel_size=2.5), TypeError, "`kernel_size` must be an int; received 2.5"),
    (dict(strides=0), ValueError, "strides=0"),
    (dict(strides=(1, 2)), ValueError, "strides=(1, 2)"),
    (dict(dilation_rate=-1), ValueError, "dilation_rate=-1"),
    (dict(dilation_rate=1.5), TypeError, "`dilation_rate` must be an int"),
    (dict(groups=0), ValueError, "`groups` must be a positive int; received groups=0"),
    (dict(groups=1.0), TypeError, "`groups` must be an int"),
    (
        dict(filters=6, groups=4),
        ValueError,
        "`filters` (=6) must be divisible by `groups` (=4)",
    ),
    (
        dict(strides=2, dilation_rate=2),
        ValueError,
        "received strides=2 and dilation_rate=2",
    ),
    (
        dict(padding="full"),
        ValueError,
        "`padding` must be one of 'valid', 'same', 'causal' (any case); received padding='full'",
    ),
    (dict(padding=3.0), TypeError, "received 3.0 of type float"),
    (dict(data_format="NWC"), ValueError, "received data_format='NWC'"),
    (dict(activation="relu7"), ValueError, "`activation`: 'relu7'"),
    (dict(activation=3), TypeError, "`activation` must be None"),
    (dict(activation="threshold"), ValueError, "threshold"),
    (dict(use_bias="yes"), TypeError, "`use_bias` must be a bool; received 'yes'"),
    (dict(kernel_initializer="glorot"), ValueError, "`kernel_initializer`: 'glorot'"),
    (dict(bias_initializer=1.5), TypeError, "`bias_initializer`"),
    (dict(kernel_regularizer="l3"), ValueError, "`kernel_regularizer`: 'l3'"),
    (dict(bias_regularizer="l0"), ValueError, "`bias_regularizer`: 'l0'"),
    (dict(activity_regularizer="big"), ValueError, "`activity_regularizer`: 'big'"),
    (dict(kernel_constraint="positive"), ValueError, "`kernel_constraint`: 'positive'"),
    (dict(bias_constraint="maxnorm"), ValueError, "`bias_constraint`: 'maxnorm'"),
]


@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
@pytest.mark.parametrize("kwargs,exc,pattern", SPEC_ERRORS)
def test_spec_errors(cls, kwargs, exc, pattern):
    if cls is cj.Conv1DTranspose and kwargs.get("padding") == "full":
        pattern = pattern.replace(", 'causal'", "")
    args = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match=re.escape(pattern)):
        cls(**args)


def test_transpose_refuses_causal():
    with pytest.raises(
        ValueError, match="Conv1DTranspose does not support padding='causal'"
    ):
        cj.Conv1DTranspose(4, 3, padding="causal")


@pytest.mark.parametrize("op,strides", [(2, 2), (3, 1), (-1, 2)])
def test_output_padding_must_be_below_strides(op, strides):
    with pytest.raises(ValueError, match=f"output_padding.*{op}"):
        cj.Conv1DTranspose(4, 3, strides=strides, output_padding=op)


def test_length_helpers_validate():
    with pytest.raises(ValueError, match="padding='causal'"):
        cj.conv_transpose_output_length(10, 3, padding="causal")
    with pytest.raises(ValueError, match="received strides=2 and dilation_rate=3"):
        cj.conv_output_length(10, 3, strides=2, dilation_rate=3)
    with pytest.raises(ValueError, match="too short"):
        cj.conv_output_length(4, 3, dilation_rate=2)
    with pytest.raises(TypeError, match="`length` must be an int"):
        cj.conv_output_length(4.0, 3)


@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_init_errors(cls, key):
    spec = cls(4, 3, groups=2)
    with pytest.raises(
        ValueError, match=r"channel count \(=3\) must be divisible by `groups` \(=2\)"
    ):
        spec.init(key, (2, 10, 3))
    with pytest.raises(ValueError, match="channel axis of the input .* must be known"):
        spec.init(key, (2, 10, None))
    with pytest.raises(ValueError, match=r"rank >= 3.*\(10, 4\) \(rank 2\)"):
        spec.init(key, (10, 4))
    with pytest.raises(TypeError, match="`input_shape` must be a tuple"):
        spec.init(key, "10x4")
    with pytest.raises(TypeError, match="`dtype` must be a floating dtype"):
        spec.init(key, (2, 10, 4), dtype=jnp.int32)


def test_init_rejects_short_valid_input(key):
    with pytest.raises(ValueError, match="input length 4 is too short"):
        cj.Conv1D(4, 3, dilation_rate=2).init(key, (1, 4, 2))


def test_init_rejects_bad_initializer_output(key):
    spec = cj.Conv1D(4, 3, kernel_initializer=lambda k, s, d: jnp.zeros((2, 2), d))
    with pytest.raises(
        ValueError,
        match=r"kernel initializer .* returned an array of shape \(2, 2\); expected \(3, 2, 4\)",
    ):
        spec.init(key, (1, 10, 2))


def test_wrong_layer_type(key):
    with pytest.raises(TypeError, match="conv1d_init expects a Conv1D spec"):
        cj.conv1d_init(cj.Conv1DTranspose(4, 3), key, (1, 10, 2))
    with pytest.raises(
        TypeError, match="conv1d_transpose_apply expects a Conv1DTranspose"
    ):
        cj.conv1d_transpose_apply(cj.Conv1D(4, 3), {}, jnp.ones((1, 10, 2)))


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_apply_errors(cls, jit, key):
    spec = cls(4, 3)
    params = spec.init(key, (2, 10, 6))
    apply = jax.jit(type(spec).apply, static_argnums=0) if jit else type(spec).apply
    with pytest.raises(
        ValueError, match=r"params\['kernel'\] of shape .* does not fit .* 5 channels"
    ):
        apply(spec, params, jnp.ones((2, 10, 5)))
    with pytest.raises(ValueError, match="rank >= 3"):
        apply(spec, params, jnp.ones((10, 6)))
    with pytest.raises(
        ValueError, match=r"keys \['bias', 'kernel'\]; received \['bias'\]"
    ):
        apply(spec, {"bias": params["bias"]}, jnp.ones((2, 10, 6)))
    with pytest.raises(
        ValueError,
        match=r"exactly the keys \['bias', 'kernel'\]; received \['kernel'\]",
    ):
        apply(spec, {"kernel": params["kernel"]}, jnp.ones((2, 10, 6)))
    with pytest.raises(
        ValueError, match=r"params\['bias'\] of shape \(3,\) does not fit"
    ):
        apply(spec, {**params, "bias": jnp.ones(3)}, jnp.ones((2, 10, 6)))
    with pytest.raises(TypeError, match="real inputs"):
        apply(spec, params, jnp.ones((2, 10, 6), jnp.complex64))


def test_apply_rejects_short_valid_input(key):
    spec = cj.Conv1D(4, 5)
    params = spec.init(key, (2, None, 3))
    for fn in (spec.apply, jax.jit(spec.apply)):
        with pytest.raises(ValueError, match="input length 3 is too short"):
            fn(params, jnp.ones((2, 3, 3)))


def test_apply_rejects_grouped_kernel_mismatch(key):
    spec = cj.Conv1D(4, 3, groups=2)
    params = spec.init(key, (1, 10, 4))
    with pytest.raises(
        ValueError, match=r"needs input channels divisible by groups; the input has 5"
    ):
        spec.apply(params, jnp.ones((1, 10, 5)))
    transposed = cj.Conv1DTranspose(4, 3, groups=2)
    params_t = transposed.init(key, (1, 10, 4))
    with pytest.raises(ValueError, match="needs input channels divisible by groups"):
        transposed.apply(params_t, jnp.ones((1, 10, 5)))
    with pytest.raises(ValueError, match=r"expected a kernel of shape \(3, 3, 4\)"):
        spec.apply(params, jnp.ones((1, 10, 6)))


def test_no_bias_params_must_not_have_bias(key):
    spec = cj.Conv1D(4, 3, use_bias=False)
    with pytest.raises(
        ValueError,
        match=r"use_bias=False\) params must have exactly the keys \['kernel'\]",
    ):
        spec.apply(
            {"kernel": jnp.ones((3, 2, 4)), "bias": jnp.ones(4)}, np.ones((1, 5, 2))
        )


def test_from_config_rejects_unknown_keys():
    with pytest.raises(
        ValueError, match=r"Unknown keys in the config of Conv1D: \['kernal_size'\]"
    ):
        cj.Conv1D.from_config({"filters": 2, "kernal_size": 3})
