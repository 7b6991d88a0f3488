"""The rough edges a new user hits, each fixed (issue 10): ``name=``, specs
as static pytrees (plain ``jax.jit``), Keras configs read by every layer,
input shapes and inputs validated by type and sign, the too-short advice,
and a conv1djax layer inside an Equinox model."""

import json

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import assert_close, normal

# One of each family, for the checks every layer must pass.
LAYERS = [
    cj.Conv1D(4, 3),
    cj.Conv2D(4, 3, padding="same"),
    cj.Conv1DTranspose(2, 3, strides=2),
    cj.DepthwiseConv1D(3),
    cj.SeparableConv2D(4, 3),
    cj.ZeroPadding1D(1),
    cj.UpSampling2D(2),
    cj.MaxPooling1D(2),
    cj.GlobalAveragePooling2D(),
    cj.Activation("relu"),
    cj.Dense(4),
    cj.Flatten(),
]
SHAPES = [
    (2, 10, 3), (2, 8, 8, 3), (2, 10, 3), (2, 10, 3), (2, 8, 8, 3),
    (2, 10, 3), (2, 8, 8, 3), (2, 10, 3), (2, 8, 8, 3), (2, 10, 3),
    (2, 10, 3), (2, 10, 3),
]  # fmt: skip
IDS = [type(layer).__name__ for layer in LAYERS]


# ---- name= ------------------------------------------------------------------


def test_name_is_accepted_kept_out_of_equality_and_used_by_summary():
    named = cj.Conv1D(4, 3, name="encoder")
    assert named.name == "encoder"
    assert named == cj.Conv1D(4, 3) and hash(named) == hash(cj.Conv1D(4, 3))
    assert named.get_config()["name"] == "encoder"
    assert cj.Conv1D.from_config(named.get_config()).name == "encoder"
    model = cj.Sequential([named, cj.Activation("tanh", name="squash")], name="m")
    text = model.summary((None, 10, 2), print_fn=lambda _: None)
    assert "encoder (Conv1D)" in text and "squash (Activation)" in text
    # Keras's configs carry Keras's names; ours keep them.
    kconfig = keras.layers.Conv1D(4, 3, name="k").get_config()
    assert cj.Conv1D.from_config(kconfig).name == "k"
    with pytest.raises(TypeError, match=r"`name` must be a str or None; received 3"):
        cj.Conv1D(4, 3, name=3)
    with pytest.raises(ValueError, match=r"contain no '/'; received 'a/b'"):
        cj.MaxPooling1D(name="a/b")


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_every_layer_takes_a_name_and_reads_its_keras_config(layer):
    cls = type(layer)
    assert cls.from_config({**layer.get_config(), "name": "x"}).name == "x"
    klayer = getattr(keras.layers, cls.__name__).from_config(
        json.loads(json.dumps(layer.get_config()))
    )
    ours = cls.from_config(klayer.get_config())
    assert ours == layer and ours.name == klayer.name


def test_activation_reads_a_keras_config():
    config = keras.layers.Activation("tanh", name="act").get_config()
    layer = cj.Activation.from_config(config)
    assert layer == cj.Activation("tanh") and layer.name == "act"
    assert_close(layer.apply({}, jnp.ones(3)), np.tanh(np.ones(3)))


# ---- specs are static pytrees ---------------------------------------------------


def test_plain_jit_of_the_pure_functions():
    layer = cj.Conv1D(4, 3, padding="same")
    params = cj.conv1d_init(layer, jax.random.key(0), (2, 8, 3))
    x = normal(0, (2, 8, 3))
    y = jax.jit(cj.conv1d_apply)(layer, params, x)
    assert_close(y, cj.conv1d_apply(layer, params, x))
    assert jax.tree.leaves(layer) == []
    model = cj.Sequential([layer, cj.Residual(cj.Conv1D(4, 1))])
    mparams = model.init(jax.random.key(1), (2, 8, 3))
    apply = jax.jit(lambda m, p, v: m.apply(p, v))
    assert_close(apply(model, mparams, x), model.apply(mparams, x))
    # A renamed spec is an equal static argument: no recompilation.
    traces = []

    @jax.jit
    def traced(spec, p, v):
        traces.append(1)
        return spec.apply(p, v)

    traced(layer, params, x)
    traced(cj.Conv1D(4, 3, padding="same", name="other"), params, x)
    assert len(traces) == 1


# ---- input shapes ---------------------------------------------------------------


@pytest.mark.parametrize("layer,shape", list(zip(LAYERS, SHAPES, strict=True)), ids=IDS)
def test_negative_input_shape_entries_are_named(layer, shape):
    bad = (*shape[:-2], -shape[-2], shape[-1])
    message = r"`input_shape` entries must be >= 0 .*received input_shape=\(.*-"
    for call in (
        lambda: layer.compute_output_shape(bad),
        lambda: layer.count_params(bad),
        lambda: layer.init(jax.random.key(0), bad),
        lambda: cj.Sequential([layer]).summary(bad, print_fn=lambda _: None),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match=r"`input_shape` entries must be ints or None"):
        layer.compute_output_shape((*shape[:-1], 2.5))


def test_issue_examples_of_negative_shapes():
    layer = cj.Conv1D(4, 3)
    with pytest.raises(ValueError, match=r"input_shape=\(2, 10, -3\)"):
        layer.count_params((2, 10, -3))
    with pytest.raises(ValueError, match=r"input_shape=\(-2, 10, 3\)"):
        layer.compute_output_shape((-2, 10, 3))
    with pytest.raises(ValueError, match=r"input_shape=\(2, 10, -3\)"):
        cj.Sequential([layer]).summary((2, 10, -3))


# ---- inputs of the wrong type ---------------------------------------------------


@pytest.mark.parametrize("layer,shape", list(zip(LAYERS, SHAPES, strict=True)), ids=IDS)
def test_inputs_of_the_wrong_type_are_named(layer, shape):
    name = type(layer).__name__
    params = layer.init(jax.random.key(0), shape)
    for x, shown in (("hello", r"str \('hello'\)\.$"), (None, r"NoneType \(None\)\.$"),
                     ([["a"]], r"list \(\[\['a'\]\]\) of dtype <U1\.$"),
                     (np.full(shape, "a"), r"ndarray \(array\(.*\) of dtype <U1\.$"),
                     (np.array([[1.0, None]], dtype=object),
                      r"ndarray \(array\(.*\) of dtype object\.$"),
                     (np.str_("a"), r"str_ \(np.str_\('a'\)\) of dtype <U1\.$")):  # fmt: skip
        with pytest.raises(
            TypeError, match=rf"^{name}.apply takes an array `x` of numbers; "
            rf"received {shown}"
        ):  # fmt: skip
            layer.apply(params, x)
    x = normal(0, shape)
    if params:  # the swapped call: apply(x, params)
        with pytest.raises(
            TypeError,
            match=r"received dict with the keys \[.*\]\. It looks like the arguments are swapped",
        ):
            layer.apply(x, params)
    # Lists of numbers are arrays.
    assert (
        layer.apply(params, np.asarray(x).tolist()).shape
        == layer.apply(params, x).shape
    )


def test_a_composite_names_a_non_numeric_input():
    model = cj.Sequential([cj.Residual(cj.Conv1D(3, 1)), cj.Conv1D(2, 1)])
    params = model.init(0, (None, 5, 3))
    for x, call in ((np.full((1, 5, 3), "a"), "Residual"), ([[["a"] * 3]], "Residual")):
        with pytest.raises(TypeError, match=rf"^{call}.apply takes an array `x` of "
                           r"numbers; received .* of dtype <U1\.$"):  # fmt: skip
            model.apply(params, x)


# ---- init's key: a PRNG key or an int seed -----------------------------------------

COMPOSITES = [
    cj.Sequential([cj.Conv1D(4, 3), cj.Residual(cj.Conv1D(4, 1))]),
    cj.Parallel([cj.Conv1D(6, 1), cj.DepthwiseConv1D(1, depth_multiplier=2)]),
]


@pytest.mark.parametrize(
    "layer,shape",
    [*zip(LAYERS, SHAPES, strict=True), *((m, (2, 10, 3)) for m in COMPOSITES)],
    ids=[*IDS, "Sequential", "Parallel"],
)
def test_init_takes_an_int_seed_as_that_key(layer, shape):
    """``init(0, shape)`` is ``init(jax.random.key(0), shape)``; a
    NumPy or JAX integer scalar too, and the legacy uint32 key data; any
    other value is a TypeError naming ``key``."""
    expected = layer.init(jax.random.key(7), shape)
    for seed in (7, np.int64(7), jnp.int32(7), jax.random.PRNGKey(7)):
        chex.assert_trees_all_equal(layer.init(seed, shape), expected)
    for bad, shown in (("0", "'0' of type str"), (1.5, "1.5 of type float"),
                       (True, "True of type bool"), ([0, 1], r"\[0, 1\] of type list"),
                       (jnp.zeros(2), r"an array of dtype float32 and shape \(2,\)")):  # fmt: skip
        with pytest.raises(
            TypeError,
            match=r"^`key` must be a JAX PRNG key \(jax.random.key\(seed\)\) or an "
            rf"int seed; received {shown}\.$",
        ):
            layer.init(bad, shape)
    if jax.tree.leaves(expected):
        with pytest.raises(TypeError, match=r"^`key` must be a JAX PRNG key"):
            layer.init(None, shape)
    else:  # a parameter-free layer never uses its key: None is fine
        assert layer.init(None, shape) == {}


def test_an_int_seed_under_jit_and_in_the_functional_forms():
    layer = cj.Conv1D(4, 3)
    expected = layer.init(jax.random.key(3), (None, 8, 2))
    traced = jax.jit(layer.init, static_argnums=1)(3, (None, 8, 2))
    chex.assert_trees_all_equal(traced, expected)
    chex.assert_trees_all_equal(cj.conv1d_init(layer, 3, (None, 8, 2)), expected)
    up = cj.Conv2DTranspose(2, 3)
    chex.assert_trees_all_equal(
        cj.conv2d_transpose_init(up, 1, (None, 4, 4, 3)),
        up.init(jax.random.key(1), (None, 4, 4, 3)),
    )


# ---- the too-short advice fits the padding ----------------------------------------


def test_too_short_advice_fits_the_padding():
    with pytest.raises(ValueError, match=r"padding='valid'.*or padding='same'\."):
        cj.Conv1D(2, 5).compute_output_shape((None, 3, 1))
    for padding in ("same", "causal"):
        with pytest.raises(ValueError) as info:
            cj.Conv1D(2, 5, padding=padding).compute_output_shape((None, 0, 1))
        message = str(info.value)
        assert f"padding={padding!r}" in message
        assert "padding='same'" not in message.split("Use")[1], message
        assert message.endswith("Use a longer input.")


# ---- inside an Equinox model ------------------------------------------------------


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_a_conv1djax_layer_inside_an_equinox_model():
    eqx = pytest.importorskip("equinox")

    class Denoiser(eqx.Module):
        """An Equinox module holding conv1djax specs and their params."""

        encoder: cj.Conv1D
        decoder: cj.Conv1DTranspose
        params: dict

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.encoder = cj.Conv1D(8, 4, strides=2, padding="same",
                                     activation="relu", kernel_regularizer="l2")  # fmt: skip
            self.decoder = cj.Conv1DTranspose(1, 4, strides=2, padding="same")
            self.params = {
                "encoder": self.encoder.init(k1, (None, 32, 1)),
                "decoder": self.decoder.init(k2, (None, 16, 8)),
            }

        def __call__(self, x):
            h = self.encoder.apply(self.params["encoder"], x)
            return self.decoder.apply(self.params["decoder"], h)

        def penalty(self):
            return cj.regularization_loss(self.encoder, self.params["encoder"])

    model = Denoiser(jax.random.key(0))
    x = normal(0, (4, 32, 1))
    target = jnp.sin(x)

    def loss(m, v, t):
        return jnp.mean((m(v) - t) ** 2) + m.penalty()

    # The same numbers as the Sequential of the same specs and params.
    seq = cj.Sequential([model.encoder, model.decoder])
    seq_params = [model.params["encoder"], model.params["decoder"]]
    parts = cj.make_eval_step(seq, lambda p, t: jnp.mean((p - t) ** 2))(
        seq_params, x, target
    )
    assert_close(eqx.filter_jit(loss)(model, x, target), parts["loss"], rtol=1e-5)
    # Equinox's filtered transformations see only the params as leaves.
    assert len(jax.tree.leaves(eqx.filter(model, eqx.is_array))) == 4
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(m, s, v, t):
        value, grads = eqx.filter_value_and_grad(loss)(m, v, t)
        updates, s = opt.update(grads, s, eqx.filter(m, eqx.is_array))
        return eqx.apply_updates(m, updates), s, value

    first = None
    for _ in range(30):
        model, state, value = step(model, state, x, target)
        first = value if first is None else first
    assert float(value) < 0.8 * float(first)
