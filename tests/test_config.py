"""get_config / from_config: JSON round trips, and configs exchanged with Keras;
the canonical form of every convolution spec (equal layers are equal specs
with equal hashes, and compile once as static arguments of ``jax.jit``)."""

import dataclasses
import functools
import json

import jax
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import (
    ALL_CONV,
    CONV,
    DEPTHWISE,
    FAST_COMPILE,
    ND_AND_DEPTHWISE,
    SEPARABLE,
    TRANSPOSE,
    assert_close,
    check_keras_weights,
    keras_initialize_with,
    normal,
    random_params,
    sweep,
    sweep_case,
)

ALL_CLASSES = ALL_CONV
SWEPT = ND_AND_DEPTHWISE


def _ids(classes):
    return [cls.__name__ for cls in classes]


def _args(cls, filters=4):
    """The positional arguments before ``kernel_size``."""
    return () if cls in DEPTHWISE else (filters,)


def _default(cls, **kwargs):
    return cls(*_args(cls), 3, **kwargs)


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


def test_keras_lora_config_is_read_where_the_layer_has_lora():
    config = keras.layers.Conv1D(4, 3, lora_rank=2).get_config()
    assert cj.Conv1D.from_config(config) == cj.Conv1D(4, 3, lora_rank=2)
    with pytest.raises(ValueError, match="has no LoRA; received lora_rank=2"):
        cj.MaxPooling1D.from_config({**keras.layers.MaxPooling1D().get_config(),
                                     "lora_rank": 2})  # fmt: skip


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


# ---- the oracle sweeps' configs, both ways -------------------------------------------


def _without_name(config):
    return {k: v for k, v in config.items() if k != "name"}


def _zeros_initialized(cls, config):
    """Keras's random initializers would cost a compilation per shape."""
    zeros = {
        f.name: "zeros"
        for f in dataclasses.fields(cls)
        if f.name.endswith("_initializer")
    }
    return {**config, **zeros}


@pytest.mark.parametrize("case", sweep(SWEPT))
def test_sweep_config_round_trips_and_loads_both_ways(case):
    """JSON round trip; Keras builds from our config the layer it builds from
    the same arguments; Keras's config gives back our spec."""
    cls, seed = case
    config = _zeros_initialized(cls, sweep_case(cls, seed)[0])
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
        cj.Conv2D(
            6, (3, 2), strides=(2, 1), padding="same", data_format="channels_first",
            groups=3, activation="swish", use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=cj.regularizers.L1L2(l1=0.01, l2=0.02),
            # Keras rounds L1's factor to float32 in its config: 0.25 is exact
            activity_regularizer=cj.regularizers.L1(0.25),
            kernel_constraint=cj.constraints.MaxNorm(3.0, axis=(0, 1, 2)),
        ),
        (2, 6, 7, 5),
    ),
    (
        cj.Conv2D(
            4, 3, dilation_rate=(1, 2), activation="gelu",
            bias_initializer=cj.initializers.Constant(0.5), bias_regularizer="l2",
            bias_constraint="non_neg",
        ),
        (2, 6, 8, 3),
    ),
    (
        cj.Conv3D(
            4, (1, 2, 3), strides=(1, 2, 1), padding="same", groups=2,
            activation="relu",
            kernel_initializer=cj.initializers.VarianceScaling(
                2.0, "fan_avg", "uniform"
            ),
        ),
        (2, 3, 4, 5, 4),
    ),
    (
        cj.Conv2DTranspose(
            4, (3, 4), strides=(2, 3), padding="same", output_padding=(1, 0),
            activation="tanh", kernel_constraint="unit_norm",
        ),
        (2, 3, 4, 5),
    ),
    (
        cj.Conv3DTranspose(
            2, 2, strides=(1, 2, 2), output_padding=(0, 1, 0),
            data_format="channels_first", kernel_initializer="lecun_uniform",
            kernel_regularizer=cj.regularizers.L2(0.05),
        ),
        (1, 3, 2, 3, 2),
    ),
    (
        cj.Conv3DTranspose(
            2, (2, 1, 3), dilation_rate=(2, 1, 1), padding="same",
            activation="sigmoid", bias_initializer="ones",
        ),
        (1, 3, 2, 3, 2),
    ),
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
def test_rich_specs_json_round_trip(spec, shape):
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
                 "dilation_rate", "groups", "depth_multiplier", "use_bias",
                 "output_padding"):  # fmt: skip
        if hasattr(spec, name) and hasattr(klayer, name):
            assert tuple(np.atleast_1d(getattr(klayer, name))) == tuple(
                np.atleast_1d(getattr(spec, name))
            ), name
    loaded = type(spec).from_config(json.loads(json.dumps(klayer.get_config())))
    assert loaded == spec
    assert hash(loaded) == hash(spec)

    # Our params as Keras's initial weights (Keras's random initializers
    # would cost a compilation per shape; their configs were compared above).
    params = random_params(spec, shape, 0)
    keras_initialize_with(klayer, params)
    klayer.build(shape)
    check_keras_weights(klayer, params)
    x = normal(0, shape)
    y_keras = klayer(x)
    assert_close(_jit_apply(spec, params, x), y_keras)
    assert_close(_jit_apply(loaded, params, x), y_keras)
    # the constraints Keras loaded project as ours do
    for weight in params:
        attr = cj.protocol.weight_attribute(spec, weight, "constraint")
        ours, theirs = getattr(spec, attr), getattr(klayer, attr)
        assert (ours is None) == (theirs is None), attr
        if ours is not None:
            w = normal(7, params[weight].shape)
            assert_close(ours(w), theirs(w), rtol=1e-6, err_msg=attr)
    # and the regularizers penalise as ours do
    for weight in params:
        attr = cj.protocol.weight_attribute(spec, weight, "regularizer")
        ours, theirs = getattr(spec, attr), getattr(klayer, attr)
        assert (ours is None) == (theirs is None), attr
        if ours is not None:
            w = normal(8, params[weight].shape)
            assert_close(ours(w), theirs(w), rtol=1e-6, err_msg=attr)


def test_grouped_transpose_config_round_trips():
    spec = cj.Conv2DTranspose(6, (2, 3), strides=2, groups=3, padding="same")
    config = json.loads(json.dumps(spec.get_config()))
    assert config["groups"] == 3
    assert cj.Conv2DTranspose.from_config(config) == spec
    assert "groups" not in cj.Conv3DTranspose(6, 2).get_config()


# ---- the canonical form of the convolution specs -------------------------------------


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
    assert getattr(spec, "depth_multiplier", 1) == 1
    assert spec.padding == "valid"
    assert spec.data_format == "channels_last"
    assert spec.use_bias is True


@pytest.mark.parametrize("cls", CONV + TRANSPOSE, ids=_ids(CONV + TRANSPOSE))
def test_int_arguments_equal_per_axis_tuples(cls):
    rank = cls.rank
    assert cls(4, 3) == cls(4, (3,) * rank)
    assert hash(cls(4, 3)) == hash(cls(4, (3,) * rank))
    assert cls(4, (3,) * rank).kernel_size == (3,) * rank
    assert cls(4, 3, strides=2) == cls(4, 3, strides=[2] * rank)
    assert cls(4, 3, dilation_rate=2) == cls(4, 3, dilation_rate=(2,) * rank)
    if cls.transposed:
        a = cls(4, 3, strides=2, output_padding=1)
        assert a == cls(4, 3, strides=(2,) * rank, output_padding=(1,) * rank)


@pytest.mark.parametrize("cls", CONV + TRANSPOSE, ids=_ids(CONV + TRANSPOSE))
def test_padding_and_data_format_in_any_case_are_equal_specs(cls):
    a = cls(4, 3, padding="same", data_format="channels_first")
    for padding, data_format in [
        ("SAME", "CHANNELS_FIRST"),
        ("Same", "Channels_First"),
        ("sAmE", "channels_FIRST"),
    ]:
        b = cls(4, 3, padding=padding, data_format=data_format)
        assert b == a
        assert hash(b) == hash(a)
        assert (b.padding, b.data_format) == ("same", "channels_first")
    assert cls(4, 3, data_format=None) == cls(4, 3, data_format="Channels_Last")


@pytest.mark.parametrize("cls", DEPTHWISE + SEPARABLE, ids=_ids(DEPTHWISE + SEPARABLE))
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
        _default(
            cls,
            data_format="Channels_Last",
            strides=1,
            dilation_rate=(1,) * rank,
            **({} if cls in CONV + TRANSPOSE else {"depth_multiplier": 1}),
        ),
        cls.from_config(kcls(*_args(cls), 3).get_config()),
        cls.from_config(json.loads(json.dumps(_default(cls).get_config()))),
        dataclasses.replace(_default(cls), kernel_size=(3,) * rank),
    ]
    shape = (2, *(5,) * rank, 2)
    x = normal(0, shape)
    params = random_params(_default(cls), shape, 1)
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
    weight_attribute = cj.protocol.weight_attribute
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


ONE_D = [cj.DepthwiseConv1D, cj.SeparableConv1D]


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
