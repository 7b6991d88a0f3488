"""get_config / from_config: JSON round trips, and configs exchanged with Keras."""

import json

import jax
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import assert_close

SPECS = [
    cj.Conv1D(8, 3),
    cj.Conv1D(
        8, 5, strides=2, padding="same", data_format="channels_first", groups=2,
        activation="swish", use_bias=False, kernel_initializer="he_normal",
        bias_initializer=cj.initializers.Constant(0.5),
        kernel_regularizer=cj.regularizers.L1L2(l1=0.01, l2=0.02),
        bias_regularizer="l2", activity_regularizer=cj.regularizers.L1(0.3),
        kernel_constraint=cj.constraints.MaxNorm(3.0, axis=(0, 1)),
        bias_constraint="non_neg",
    ),
    cj.Conv1D(4, 3, padding="causal", dilation_rate=4, activation="gelu",
              kernel_initializer=cj.initializers.VarianceScaling(2.0, "fan_avg", "uniform")),
    cj.Conv1DTranspose(6, 4, strides=3, padding="same", output_padding=2, groups=3,
                       kernel_constraint="unit_norm", activation="glu"),
    cj.Conv1DTranspose(6, 4, dilation_rate=2, kernel_initializer="orthogonal",
                       kernel_constraint=cj.constraints.MinMaxNorm(0.5, 2.0, 0.5)),
]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS)
def test_json_round_trip(spec):
    config = spec.get_config()
    restored = type(spec).from_config(json.loads(json.dumps(config)))
    assert restored == spec
    assert hash(restored) == hash(spec)


def test_user_callables_round_trip_in_process():
    def act(x):
        return x * 2

    spec = cj.Conv1D(4, 3, activation=act, kernel_constraint=lambda w: w)
    config = spec.get_config()
    assert config["activation"] is act
    assert cj.Conv1D.from_config(config) == spec


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.groups == 1 or isinstance(s, cj.Conv1D)]
)
def test_our_config_builds_the_same_keras_layer(spec):
    """Keras reads our configs, and the layer it builds computes what ours does."""
    kcls = getattr(keras.layers, type(spec).__name__)
    klayer = kcls.from_config(json.loads(json.dumps(spec.get_config())))
    for name in (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "use_bias",
    ):
        assert getattr(klayer, name) == getattr(spec, name), name
    shape = (2, 12, 4) if spec.data_format == "channels_last" else (2, 4, 12)
    params = spec.init(jax.random.key(0), shape)
    klayer.build(shape)
    klayer.set_weights(
        [np.asarray(params[k]) for k in ("kernel", "bias") if k in params]
    )
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    assert_close(spec.apply(params, x), klayer(x))


def test_keras_config_loads_into_our_spec():
    klayer = keras.layers.Conv1D(
        16, 5, strides=1, padding="causal", dilation_rate=2, groups=4,
        activation="hard_silu", kernel_initializer="lecun_uniform",
        kernel_regularizer=keras.regularizers.L2(0.05), bias_constraint="non_neg",
    )  # fmt: skip
    spec = cj.Conv1D.from_config(klayer.get_config())
    assert spec == cj.Conv1D(
        16, 5, padding="causal", dilation_rate=2, groups=4, activation="hard_silu",
        kernel_initializer="lecun_uniform",
        kernel_regularizer=cj.regularizers.L2(0.05), bias_constraint="non_neg",
    )  # fmt: skip
    kt = keras.layers.Conv1DTranspose(
        3, 4, strides=2, output_padding=1, activation="relu"
    )
    assert cj.Conv1DTranspose.from_config(kt.get_config()) == cj.Conv1DTranspose(
        3, 4, strides=2, output_padding=1, activation="relu"
    )


def test_keras_lora_config_is_refused():
    config = keras.layers.Conv1D(4, 3, lora_rank=2).get_config()
    with pytest.raises(ValueError, match="has no LoRA; received lora_rank=2"):
        cj.Conv1D.from_config(config)


# ---- repr: only the non-default arguments, and it builds the spec again ------------

REPRS = [
    (cj.Conv2D(16, 3, padding="same"), "Conv2D(16, 3, padding='same')"),
    (cj.Conv2D(16, (3, 5), strides=(2, 2), activation="relu", use_bias=False),
     "Conv2D(16, (3, 5), strides=2, activation='relu', use_bias=False)"),
    (cj.Conv1D(8, 3, kernel_initializer="he_normal", name="enc"),
     "Conv1D(8, 3, kernel_initializer='he_normal', name='enc')"),
    (cj.Conv1D(4, 3, padding=((2, 0),), padding_mode="reflect", impl="reference",
               dtype="mixed_bfloat16"),
     "Conv1D(4, 3, padding=((2, 0),), impl='reference', padding_mode='reflect', "
     "dtype='mixed_bfloat16')"),
    (cj.Conv3DTranspose(4, 2, strides=2, output_padding=1, groups=2),
     "Conv3DTranspose(4, 2, strides=2, output_padding=1, groups=2)"),
    (cj.DepthwiseConv1D(5, padding="causal", depth_multiplier=2),
     "DepthwiseConv1D(5, padding='causal', depth_multiplier=2)"),
    (cj.SeparableConv2D(32, 3, padding="same", depth_multiplier=2),
     "SeparableConv2D(32, 3, padding='same', depth_multiplier=2)"),
    (cj.ZeroPadding1D((1, 2)), "ZeroPadding1D(padding=(1, 2))"),
    (cj.ZeroPadding2D(((1, 2), 0)), "ZeroPadding2D(padding=((1, 2), (0, 0)))"),
    (cj.Cropping3D(2, data_format="channels_first"),
     "Cropping3D(cropping=2, data_format='channels_first')"),
    (cj.UpSampling2D(3, interpolation="bilinear"),
     "UpSampling2D(size=3, interpolation='bilinear')"),
    (cj.MaxPooling1D(3), "MaxPooling1D(pool_size=3)"),
    (cj.AveragePooling2D((2, 3), strides=1, padding="same"),
     "AveragePooling2D((2, 3), strides=1, padding='same')"),
    (cj.GlobalMaxPooling3D(keepdims=True), "GlobalMaxPooling3D(keepdims=True)"),
    (cj.Activation("relu", name="act"), "Activation('relu', name='act')"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "text"), REPRS, ids=[t for _, t in REPRS])
def test_repr_shows_only_non_default_arguments_and_rebuilds(spec, text):
    assert repr(spec) == text
    rebuilt = eval(text, vars(cj))
    assert rebuilt == spec and rebuilt.name == spec.name


@pytest.mark.parametrize("spec", SPECS)
def test_repr_with_keras_objects_rebuilds(spec):
    # Initializers, regularizers and constraints print as their names when
    # that is what they are, else as their classes with their arguments.
    text = repr(spec)
    assert "\n" not in text and "name=None" not in text and "<function" not in text
    names = {**vars(cj), **vars(cj.initializers), **vars(cj.regularizers),
             **vars(cj.constraints)}  # fmt: skip
    assert eval(text, names) == spec
