"""Mixed precision: Keras's dtype policies on every spec (``dtype=`` and
``param_dtype=``).

With ``dtype="mixed_bfloat16"`` the params stay float32 while the layer
computes in bfloat16: values within bfloat16 rounding of the float32 layer,
the same numbers (and VJPs) as the Keras layer of that policy holding our
weights, float32 gradients, and a train step that keeps float32 params.
Configs carry the policy in Keras's form, both ways.
"""

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import normal, values_and_vjps

BF16, F16 = "mixed_bfloat16", "mixed_float16"

# One spec per family, with Keras's arguments: (class, kwargs, input shape).
FAMILIES = [
    (cj.Conv1D, dict(filters=6, kernel_size=3, padding="same", activation="relu"),
     (2, 16, 4)),
    (cj.Conv2D, dict(filters=5, kernel_size=3, strides=2), (2, 9, 9, 3)),
    (cj.Conv3D, dict(filters=4, kernel_size=2), (1, 5, 5, 5, 2)),
    (cj.Conv1DTranspose, dict(filters=5, kernel_size=4, strides=2), (2, 8, 3)),
    (cj.Conv2DTranspose, dict(filters=4, kernel_size=3, strides=2, padding="same"),
     (2, 6, 6, 3)),
    (cj.DepthwiseConv1D, dict(kernel_size=3, depth_multiplier=2), (2, 16, 4)),
    (cj.DepthwiseConv2D, dict(kernel_size=3), (2, 8, 8, 3)),
    (cj.SeparableConv1D, dict(filters=6, kernel_size=3, activation="tanh"),
     (2, 16, 4)),
    (cj.SeparableConv2D, dict(filters=5, kernel_size=3, padding="same"),
     (2, 8, 8, 3)),
    (cj.AveragePooling1D, dict(pool_size=3, strides=2, padding="same"), (2, 15, 4)),
    (cj.UpSampling2D, dict(size=2, interpolation="bilinear"), (2, 5, 5, 3)),
    (cj.Activation, dict(activation="gelu"), (2, 7, 3)),
]  # fmt: skip
F16_SUBSET = (cj.Conv1D, cj.Conv2DTranspose, cj.DepthwiseConv2D, cj.AveragePooling1D)
CASES = [(f, BF16) for f in FAMILIES] + [
    (f, F16) for f in FAMILIES if f[0] in F16_SUBSET
]


def _case_id(case):
    (cls, _, _), policy = case
    return f"{cls.__name__}-{policy}"


def _eps(policy) -> float:
    return float(jnp.finfo(cj.Conv1D(1, 1, dtype=policy).compute_dtype).eps)


def assert_within(actual, expected, tol, what=""):
    """``max |actual - expected| <= tol * max(1, max |expected|)``."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, what
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected)))
    assert err <= tol * scale, f"{what}: error {err:.3g} > {tol:.3g} * {scale:.3g}"


def _keras_model(cls, kwargs, shape, policy):
    """The Keras layer of ``policy``, inside a ``keras.Sequential`` so that
    ``stateless_call`` goes through the layer's ``__call__`` (where Keras
    autocasts), as Keras's own trainer calls it; zeros initializers (we set
    the weights), which build without compiling a sampler."""
    zeros = {
        f.name: "zeros"
        for f in dataclasses.fields(cls)
        if f.name.endswith("_initializer")
    }
    klayer = getattr(keras.layers, cls.__name__)(**kwargs, **zeros, dtype=policy)
    return keras.Sequential([keras.Input(shape[1:]), klayer])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_family_computes_in_the_policy_dtype_like_keras(case):
    """float32 params; output in the compute dtype, within its rounding of
    the float32 layer's and equal (to an ulp) to Keras's under the same
    policy; float32 gradients, close to the float32 layer's and Keras's."""
    (cls, kwargs, shape), policy = case
    spec = cls(**kwargs, dtype=policy)
    ref = dataclasses.replace(spec, dtype=None)
    compute = jnp.dtype(spec.compute_dtype)
    eps = _eps(policy)
    assert spec.variable_dtype == "float32"
    # The params' dtypes, from init's own code (abstractly: no sampler compiled).
    abstract = jax.eval_shape(lambda: spec.init(jax.random.key(0), shape))
    assert {a.dtype for a in jax.tree.leaves(abstract)} <= {jnp.dtype("float32")}
    names = sorted(abstract)
    params = [0.5 * normal(i, abstract[n].shape) for i, n in enumerate(names)]

    kmodel = _keras_model(cls, kwargs, shape, policy)
    knames = [w.path.split("/")[-1] for w in kmodel.trainable_variables]
    assert sorted(knames) == names
    assert all(w.dtype == "float32" for w in kmodel.trainable_variables)

    def ours(x, *ws, layer=spec):
        return layer.apply(dict(zip(names, ws, strict=True)), x)

    def theirs(x, *ws):
        weights = dict(zip(names, ws, strict=True))
        return kmodel.stateless_call([weights[n] for n in knames], [], x)[0]

    x = normal(99, shape)
    ct = normal(7, spec.compute_output_shape(shape))
    fns = (ours, functools.partial(ours, layer=ref), theirs)
    (y, g), (y32, g32), (yk, gk) = values_and_vjps(fns, [x, *params], ct)

    assert y.dtype == compute and yk.dtype == compute and y32.dtype == jnp.float32
    assert_within(y, y32, 2 * eps, "output vs float32")
    assert_within(y, yk, eps, "output vs Keras")

    for name, a, a32, ak in zip(["x", *names], g, g32, gk, strict=True):
        assert a.dtype == jnp.float32, name  # float32 in, float32 gradient out
        assert_within(a, a32, 4 * eps, f"VJP w.r.t. {name} vs float32")
        assert_within(a, ak, eps, f"VJP w.r.t. {name} vs Keras")


def test_real_init_gives_float32_params_and_bf16_outputs(key):
    spec = cj.Conv1D(4, 3, dtype=BF16)
    params = spec.init(key, (None, 12, 3))
    assert {str(v.dtype) for v in params.values()} == {"float32"}
    assert spec.apply(params, jnp.ones((2, 12, 3))).dtype == jnp.bfloat16
    # An explicit init dtype wins over the spec's.
    explicit = jax.eval_shape(lambda: spec.init(key, (None, 12, 3), dtype="bfloat16"))
    assert {str(v.dtype) for v in explicit.values()} == {"bfloat16"}


def test_param_dtype_and_plain_dtype_policies(key):
    shape, x = (None, 10, 2), jnp.ones((2, 10, 2))
    ones = {"kernel_initializer": "ones"}  # init's dtype is tested, not a sampler
    bf16_params = cj.Conv1D(3, 3, param_dtype="bfloat16", **ones)
    p = bf16_params.init(key, shape)
    assert p["kernel"].dtype == jnp.bfloat16 and bf16_params.compute_dtype is None
    assert bf16_params.apply(p, x).dtype == jnp.bfloat16  # the kernel's dtype
    # bfloat16 params computed in float32 (a float32 policy casts them up).
    up = cj.Conv1D(3, 3, dtype="float32", param_dtype=jnp.bfloat16, **ones)
    assert up.param_dtype == "bfloat16" and up.init(key, shape)["bias"].dtype == (
        jnp.bfloat16
    )
    assert up.apply(p, x).dtype == jnp.float32
    # A plain dtype policy: params and computation in it.
    plain = cj.Conv1D(3, 3, dtype="bfloat16", **ones)
    assert plain.variable_dtype == plain.compute_dtype == "bfloat16"
    assert plain.init(key, shape)["kernel"].dtype == jnp.bfloat16
    assert plain.apply(plain.init(key, shape), x).dtype == jnp.bfloat16
    # Mixed: the policy's variable dtype, unless param_dtype says otherwise.
    assert cj.Conv1D(3, 3, dtype=F16).variable_dtype == "float32"
    assert cj.Conv1D(3, 3, dtype=F16, param_dtype="float16").variable_dtype == (
        "float16"
    )
    assert cj.Conv1D(3, 3).variable_dtype == "float32"


def test_parameter_free_layers_cast_floats_only_with_a_policy():
    x16 = jnp.ones((2, 8, 3), jnp.bfloat16)
    # No policy: the input's dtype is kept (today's behaviour).
    assert cj.MaxPooling1D().apply({}, x16).dtype == jnp.bfloat16
    assert cj.ZeroPadding1D(1).apply({}, x16).dtype == jnp.bfloat16
    # dtype="float32" casts up, as Keras's default policy does.
    kout = keras.layers.MaxPooling1D()(np.asarray(x16))
    assert cj.MaxPooling1D(dtype="float32").apply({}, x16).dtype == kout.dtype
    for layer in (
        cj.ZeroPadding1D(1, dtype=BF16),
        cj.Cropping1D(1, dtype=BF16),
        cj.GlobalAveragePooling1D(dtype=BF16),
        cj.Lambda(jnp.tanh, dtype=BF16),
        cj.Activation("relu", dtype=BF16),
    ):
        assert layer.apply({}, jnp.ones((2, 8, 3))).dtype == jnp.bfloat16, layer
        assert layer.init(None, (2, 8, 3)) == {}
    # Integers are not autocast (Keras leaves them too).
    ints = jnp.ones((2, 8, 3), jnp.int32)
    assert cj.MaxPooling1D(dtype=BF16).apply({}, ints).dtype == jnp.int32


def _regression_model(policy):
    return cj.Sequential([
        cj.Conv1D(8, 3, padding="same", activation="relu", dtype=policy,
                  kernel_regularizer=cj.regularizers.L2(1e-3),
                  activity_regularizer=cj.regularizers.L2(1e-4)),
        cj.Conv1D(1, 3, padding="same", dtype=policy),
    ])  # fmt: skip


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_jitted_train_step_keeps_float32_params_and_learns():
    model, shape = _regression_model(BF16), (8, 24, 1)
    x = normal(0, shape)
    y_true = 0.5 * (x + jnp.roll(x, 1, axis=1))  # a smoothing to learn
    params = model.init(jax.random.key(0), shape)  # each layer's default dtype
    dtypes = {str(a.dtype) for a in jax.tree.leaves(params)}
    assert dtypes == {"float32"}
    assert model.apply(params, x).dtype == jnp.bfloat16

    def mse(p, t):
        return jnp.mean((p - t) ** 2)

    opt = optax.adam(1e-2)
    step = cj.make_train_step(model, opt, mse)
    evaluate = cj.make_eval_step(model, mse)
    parts = evaluate(params, x, y_true)
    assert {str(v.dtype) for v in parts.values()} == {"float32"}
    assert float(parts["activity_loss"]) > 0 and float(parts["regularization_loss"]) > 0
    # The objective is the float32 model's within bfloat16 rounding.
    f32 = cj.make_eval_step(_regression_model(None), mse)
    np.testing.assert_allclose(
        float(parts["loss"]), float(f32(params, x, y_true)["loss"]), rtol=3e-2
    )
    opt_state, losses = opt.init(params), []
    for _ in range(8):
        params, opt_state, loss = step(params, opt_state, x, y_true)
        assert loss.dtype == jnp.float32 and np.isfinite(float(loss))
        assert {str(a.dtype) for a in jax.tree.leaves(params)} == {"float32"}
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0], losses


def test_penalties_are_computed_in_float32():
    layer = cj.Conv1D(2, 3, param_dtype="bfloat16", activity_regularizer="l2",
                      kernel_regularizer=cj.regularizers.L2(1.0))  # fmt: skip
    params = {"kernel": jnp.full((3, 1, 2), 1 + 2**-7, jnp.bfloat16),
              "bias": jnp.zeros(2, jnp.bfloat16)}  # fmt: skip
    reg = cj.regularization_loss(layer, params)
    assert reg.dtype == jnp.float32
    # Summed in float32: bfloat16 would round 6 * (1 + 2**-7)**2 to 6.09375.
    np.testing.assert_allclose(float(reg), 6 * (1 + 2**-7) ** 2, rtol=1e-6)
    y, activity = cj.apply_with_activity(layer, params, jnp.ones((1, 5, 1)))
    assert y.dtype == jnp.bfloat16 and activity.dtype == jnp.float32
    wide = np.asarray(y, np.float64)
    np.testing.assert_allclose(float(activity), 0.01 * np.sum(wide**2), rtol=1e-6)


# ---- configs ------------------------------------------------------------------------

POLICY_DICT = {"module": "keras", "class_name": "DTypePolicy",
               "config": {"name": BF16}, "registered_name": None}  # fmt: skip
CONFIG_SPECS = [
    cj.Conv1D(4, 3, dtype=BF16),
    cj.Conv2DTranspose(4, 3, dtype=F16, param_dtype="float16"),
    cj.DepthwiseConv1D(3, dtype="bfloat16"),
    cj.SeparableConv2D(4, 3, dtype="float32"),
    cj.MaxPooling2D(dtype=BF16),
    cj.UpSampling1D(3, dtype=BF16),
    cj.ZeroPadding1D(2, dtype=F16),
    cj.Activation("relu", dtype=BF16, param_dtype="bfloat16"),
]


@pytest.mark.parametrize("spec", CONFIG_SPECS, ids=lambda s: type(s).__name__)
def test_policy_configs_round_trip_and_keras_reads_them(spec):
    config = spec.get_config()
    restored = type(spec).from_config(json.loads(json.dumps(config)))
    assert restored == spec and hash(restored) == hash(spec)
    assert ("param_dtype" in config) == (spec.param_dtype is not None)
    if spec.param_dtype is not None:
        return  # not a Keras argument: Keras cannot read the config
    klayer = getattr(keras.layers, type(spec).__name__).from_config(
        json.loads(json.dumps(config))
    )
    assert klayer.dtype_policy.name == spec.dtype
    # And Keras's config gives the spec back.
    assert type(spec).from_config(klayer.get_config()) == spec or spec.dtype == (
        "float32"  # Keras's float32 dict is its default, read as None
    )


def test_keras_policies_are_read():
    klayer = keras.layers.Conv1D(4, 3, dtype=BF16)
    assert klayer.get_config()["dtype"] == POLICY_DICT
    assert cj.Conv1D.from_config(klayer.get_config()) == cj.Conv1D(4, 3, dtype=BF16)
    # A default Keras config (its float32 policy) gives the default spec.
    default = cj.Conv1D.from_config(keras.layers.Conv1D(4, 3).get_config())
    assert default == cj.Conv1D(4, 3) and default.dtype is None
    assert "dtype" not in cj.Conv1D(4, 3).get_config()
    plain = keras.layers.MaxPooling1D(dtype="bfloat16").get_config()
    assert cj.MaxPooling1D.from_config(plain).dtype == "bfloat16"
    # Every form of a policy gives the same canonical spec.
    forms = [BF16, "Mixed_BFloat16", POLICY_DICT, keras.DTypePolicy(BF16),
             {"class_name": "FloatDTypePolicy", "config": {"name": BF16}}]  # fmt: skip
    assert {cj.Conv1D(4, 3, dtype=f) for f in forms} == {cj.Conv1D(4, 3, dtype=BF16)}
    dtypes = [
        "bfloat16",
        jnp.bfloat16,
        np.dtype(jnp.bfloat16),
        keras.DTypePolicy("bfloat16"),
    ]
    assert {cj.Conv1D(4, 3, dtype=d).dtype for d in dtypes} == {"bfloat16"}
    assert cj.Conv1D(4, 3, dtype=np.float16) != cj.Conv1D(4, 3, dtype=F16)
    replaced = dataclasses.replace(cj.Conv1D(4, 3), dtype=BF16, param_dtype="float32")
    assert replaced == cj.Conv1D(4, 3, dtype=BF16, param_dtype=np.float32)


def test_a_mixed_model_saves_and_loads(tmp_path):
    model = cj.Sequential([cj.Conv1D(4, 3, dtype=BF16), cj.MaxPooling1D(dtype=BF16),
                           cj.Conv1D(2, 1, param_dtype="bfloat16")])  # fmt: skip
    params = model.init(jax.random.key(0), (None, 12, 2))
    path = tmp_path / "mixed.safetensors"
    cj.save(path, model, params)
    loaded, loaded_params = cj.load(path)
    assert loaded == model
    assert jax.tree.map(lambda a: a.dtype, loaded_params) == jax.tree.map(
        lambda a: a.dtype, params
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(dtype="mixed_bf16"), ValueError, r"`dtype` must be None, 'mixed_bfloat16'"),
        (dict(dtype="float"), ValueError, r"received dtype='float'"),
        (dict(dtype="int32"), ValueError, r"`dtype` must name a floating dtype"),
        (dict(dtype=jnp.int8), ValueError, r"`dtype` must name a floating dtype"),
        (dict(dtype=3), TypeError, r"`dtype` must be .* received 3 of type int"),
        (dict(dtype=["bfloat16"]), TypeError, r"`dtype` must be"),
        (dict(dtype={"class_name": "QuantizedDTypePolicy",
                     "config": {"mode": "int8", "source_name": "float32"}}),
         ValueError, r"quantized policies and DTypePolicyMap are not supported"),
        (dict(dtype={"name": "float32"}), ValueError, r"Keras's DTypePolicy config"),
        (dict(param_dtype=BF16), ValueError, r"`param_dtype` is the params' dtype"),
        (dict(param_dtype="int8"), ValueError, r"`param_dtype` must name a floating"),
        (dict(param_dtype=1.5), TypeError, r"`param_dtype` must be None"),
    ],
)  # fmt: skip
def test_bad_policies_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        cj.Conv1D(4, 3, **kwargs)
    with pytest.raises(error, match=match):
        cj.MaxPooling1D(**kwargs)
    with pytest.raises(error, match=match):
        cj.Conv1D.from_config({**cj.Conv1D(4, 3).get_config(), **kwargs})
    if isinstance(kwargs.get("dtype"), str):  # in a Keras policy dict too
        keras_config = keras.layers.Conv1D(4, 3).get_config()
        keras_config["dtype"]["config"]["name"] = kwargs["dtype"]
        with pytest.raises(error, match=match):
            cj.Conv1D.from_config(keras_config)


def test_user_layers_keep_their_own_init_default():
    """A composite's ``init`` with no dtype calls a sub-layer's init without
    one, so a user's layer keeps its own default (or has none)."""

    @dataclasses.dataclass(frozen=True)
    class NoDtype(cj.Layer):
        def init(self, key, input_shape):
            return {"w": jnp.ones((), jnp.float16)}

        def apply(self, params, x):
            return x * params["w"]

        def compute_output_shape(self, input_shape):
            return tuple(input_shape)

    model = cj.Sequential([cj.Conv1D(2, 1, dtype=BF16), NoDtype()])
    params = model.init(jax.random.key(0), (None, 4, 1))
    assert params[0]["kernel"].dtype == jnp.float32
    assert params[1]["w"].dtype == jnp.float16
    # An explicit dtype still goes to every layer.
    explicit = cj.Sequential([cj.Conv1D(2, 1, param_dtype="bfloat16")])
    assert explicit.init(jax.random.key(0), (None, 4, 1), dtype=jnp.float32)[0][
        "kernel"
    ].dtype == (jnp.float32)
