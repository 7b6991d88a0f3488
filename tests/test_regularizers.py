"""conv1djax.regularizers against Keras 3's own regularizers (JAX backend)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from keras.src import regularizers as keras_regularizers_src  # noqa: E402

from conv1djax import regularizers as R  # noqa: E402, N812

KR = keras.regularizers
SWEEP = settings(max_examples=25, deadline=None, database=None, derandomize=True)

# Few shapes on purpose: each new shape costs XLA compilations of every op.
KERNEL_SHAPES = [(3, 4, 8), (1, 2, 1)]
BIAS_SHAPES = [(8,)]
MATRIX_SHAPES = [(6, 4), (7, 1)]

# (our class, Keras class, kwargs); the same kwargs go to both.
ELEMENTWISE_CASES = [
    (R.L1, KR.L1, {}),
    (R.L1, KR.L1, {"l1": 0.0}),
    (R.L1, KR.L1, {"l1": 0.3}),
    (R.L1, KR.L1, {"l1": 2}),
    (R.L2, KR.L2, {}),
    (R.L2, KR.L2, {"l2": 0.0}),
    (R.L2, KR.L2, {"l2": 0.7}),
    (R.L1L2, KR.L1L2, {}),
    (R.L1L2, KR.L1L2, {"l1": 0.1}),
    (R.L1L2, KR.L1L2, {"l2": 0.2}),
    (R.L1L2, KR.L1L2, {"l1": 0.05, "l2": 1.5}),
    (R.L1L2, KR.L1L2, {"l1": None, "l2": 3}),
]
ORTHOGONAL_CASES = [
    {},
    {"factor": 0.5},
    {"factor": 0.0},
    {"mode": "columns"},
    {"factor": 1, "mode": "columns"},
]


def _case_id(case):
    ours, _, kwargs = case
    return f"{ours.__name__}-{kwargs}"


def random_weights(shape, seed, scale=1.0, zero_first=False, dtype="float32"):
    """Normal weights; optionally the first slice along axis 0 set to zero."""
    w = np.random.default_rng(seed).normal(size=shape) * scale
    if zero_first:
        w[0] = 0.0
    return jnp.asarray(w.astype("float32")).astype(dtype)


def assert_same(actual, expected, rtol=1e-6):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(
        actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=0
    )


def assert_configs_match(ours, theirs):
    """Same keys and values; Keras rounds L1's and OrthogonalRegularizer's
    factor to float32 in get_config, hence the relative 1e-7."""
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if isinstance(value, float):
            assert ours[key] == pytest.approx(value, rel=1e-7)
        else:
            assert ours[key] == value


# --------------------------------------------------------------------- values


@pytest.mark.parametrize("case", ELEMENTWISE_CASES, ids=_case_id)
@pytest.mark.parametrize("shape", KERNEL_SHAPES + BIAS_SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1e-4])
def test_elementwise_values_and_grads_match_keras(case, shape, scale):
    ours_cls, keras_cls, kwargs = case
    ours, theirs = ours_cls(**kwargs), keras_cls(**kwargs)
    w = random_weights(shape, seed=sum(shape), scale=scale)
    got, want = ours(w), theirs(w)
    assert got.shape == () and got.dtype == jnp.float32
    assert_same(got, want)
    assert_same(jax.grad(ours)(w), jax.grad(theirs)(w))


@pytest.mark.parametrize("kwargs", ORTHOGONAL_CASES, ids=str)
@pytest.mark.parametrize(
    "scale,zero_first", [(1.0, False), (1.0, True), (1e-9, False), (3e-8, True)]
)
def test_orthogonal_values_and_grads_match_keras(kwargs, scale, zero_first):
    # Tiny rows/columns (norm < 1e-7) hit Keras's `min(rsqrt(.), 1 / epsilon)`
    # cap in its normalize, and zero ones stay zero.
    ours, theirs = R.OrthogonalRegularizer(**kwargs), KR.OrthogonalRegularizer(**kwargs)
    w = random_weights(MATRIX_SHAPES[0], seed=7, scale=scale, zero_first=zero_first)
    if zero_first:  # a zero row and a zero column
        w = w.at[:, 0].set(0.0)
    got, want = ours(w), theirs(w)
    assert got.shape == () and got.dtype == jnp.float32
    assert_same(got, want)
    assert_same(jax.grad(ours)(w), jax.grad(theirs)(w))


@pytest.mark.parametrize("kwargs", [{}, {"l1": 0.5}, {"l2": 0.5}], ids=str)
def test_l1l2_skips_zero_factors_like_keras(kwargs):
    # Keras adds a term only when its factor is non-zero: with an inf weight,
    # a skipped term cannot turn into 0 * inf = nan.
    w = jnp.array([1.0, -jnp.inf, 2.0], jnp.float32)
    got, want = R.L1L2(**kwargs)(w), KR.L1L2(**kwargs)(w)
    assert not math.isnan(float(got))
    np.testing.assert_array_equal(got, want)


def test_orthogonal_degenerate_single_vector_is_nan_like_keras():
    w = random_weights(MATRIX_SHAPES[1], seed=0)  # (7, 1)
    assert math.isnan(float(R.OrthogonalRegularizer(mode="columns")(w)))
    assert math.isnan(float(KR.OrthogonalRegularizer(mode="columns")(w)))
    got = R.OrthogonalRegularizer(0.5, mode="rows")(w)
    assert_same(got, KR.OrthogonalRegularizer(0.5, mode="rows")(w))


@pytest.mark.parametrize("shape", KERNEL_SHAPES + BIAS_SHAPES + [()])
@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_rejects_non_matrices_like_keras(shape, mode):
    w = random_weights(shape, seed=1)
    with pytest.raises(ValueError, match="rank 2") as ours:
        R.OrthogonalRegularizer(mode=mode)(w)
    assert str(tuple(shape)) in str(ours.value)
    with pytest.raises(ValueError):
        KR.OrthogonalRegularizer(mode=mode)(w)


_FACTOR = st.one_of(
    st.just(0.0),
    st.floats(0.0, 10.0, allow_nan=False),
    st.integers(0, 5),
)
_SHAPE = st.sampled_from(KERNEL_SHAPES + BIAS_SHAPES)


@SWEEP
@given(
    kind=st.sampled_from(["L1", "L2", "L1L2"]),
    f1=_FACTOR,
    f2=_FACTOR,
    shape=_SHAPE,
    log_scale=st.integers(-8, 2),
    seed=st.integers(0, 2**16),
)
def test_elementwise_sweep_matches_keras(kind, f1, f2, shape, log_scale, seed):
    kwargs = {"L1": {"l1": f1}, "L2": {"l2": f1}, "L1L2": {"l1": f1, "l2": f2}}[kind]
    ours, theirs = getattr(R, kind)(**kwargs), getattr(KR, kind)(**kwargs)
    w = random_weights(shape, seed, scale=10.0**log_scale)
    assert_same(ours(w), theirs(w), rtol=2e-6)
    assert_same(jax.grad(ours)(w), jax.grad(theirs)(w), rtol=2e-6)


@SWEEP
@given(
    factor=_FACTOR,
    mode=st.sampled_from(["rows", "columns"]),
    shape=st.just(MATRIX_SHAPES[0]),
    seed=st.integers(0, 2**16),
)
def test_orthogonal_sweep_matches_keras(factor, mode, shape, seed):
    ours = R.OrthogonalRegularizer(factor, mode)
    theirs = KR.OrthogonalRegularizer(factor, mode)
    w = random_weights(shape, seed)
    assert_same(ours(w), theirs(w), rtol=2e-6)
    np.testing.assert_allclose(
        jax.grad(ours)(w), jax.grad(theirs)(w), rtol=2e-5, atol=1e-7
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", ELEMENTWISE_CASES[2::3], ids=_case_id)
def test_low_precision_follows_weights_dtype_like_keras(case, dtype):
    ours_cls, keras_cls, kwargs = case
    w = random_weights((3, 4, 8), seed=3, dtype=dtype)
    got, want = ours_cls(**kwargs)(w), keras_cls(**kwargs)(w)
    assert got.dtype == want.dtype == jnp.dtype(dtype)
    assert_same(got, want)


def test_orthogonal_low_precision_follows_weights_dtype():
    # Keras keeps `factor` as a float32 tensor, so its result is float32 for
    # bfloat16 weights; we follow the weights' dtype. Values agree to bf16.
    w = random_weights((6, 4), seed=3, dtype="bfloat16")
    got = R.OrthogonalRegularizer(0.3)(w)
    want = KR.OrthogonalRegularizer(0.3)(w)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(got), float(want), rtol=2e-2)


@pytest.mark.parametrize(
    "reg",
    [R.L1(0.2), R.L2(0.3), R.L1L2(0.1, 0.4), R.OrthogonalRegularizer(0.5, "columns")],
    ids=repr,
)
def test_jit_and_static_argument(reg):
    w = random_weights((6, 4), seed=5)
    eager = reg(w)
    np.testing.assert_allclose(jax.jit(reg)(w), eager, rtol=1e-6)

    @jax.jit
    def loss(w):
        return jnp.sum(w) + reg(w)

    np.testing.assert_allclose(
        jax.grad(loss)(w), 1 + jax.grad(reg)(w), rtol=1e-6, atol=1e-6
    )
    as_static = jax.jit(lambda r, w: r(w), static_argnums=0)
    np.testing.assert_allclose(as_static(type(reg)(**reg.get_config()), w), eager)


# ----------------------------------------------------------------- validation

INVALID_OR_ODD = [
    0,
    0.0,
    1,
    2.5,
    1e30,
    True,
    np.float64(0.3),
    np.float32(0.3),
    -1,
    -0.1,
    float("nan"),
    float("inf"),
    float("-inf"),
    "0.1",
    [0.1],
    jnp.float32(0.1),
]
FACTOR_ARGS = [
    (R.L1, KR.L1, "l1"),
    (R.L2, KR.L2, "l2"),
    (R.L1L2, KR.L1L2, "l1"),
    (R.L1L2, KR.L1L2, "l2"),
    (R.OrthogonalRegularizer, KR.OrthogonalRegularizer, "factor"),
]


def _raises(fn):
    try:
        fn()
    except (ValueError, TypeError) as e:
        return e
    return None


@pytest.mark.parametrize("value", INVALID_OR_ODD + [None], ids=repr)
@pytest.mark.parametrize("args", FACTOR_ARGS, ids=lambda a: f"{a[0].__name__}.{a[2]}")
def test_factor_validation_matches_keras(args, value):
    ours_cls, keras_cls, arg = args
    theirs = _raises(lambda: keras_cls(**{arg: value}))
    ours = _raises(lambda: ours_cls(**{arg: value}))
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is None:
        keras_config = keras_cls(**{arg: value}).get_config()
        assert ours_cls(**{arg: value}).get_config()[arg] == pytest.approx(
            keras_config[arg], rel=1e-7
        )
    else:
        assert isinstance(ours, ValueError)
        message = str(ours)
        assert f"`{arg}`" in message and f"{arg}=" in message
        assert str(value) in message


@pytest.mark.parametrize("mode", ["rows", "columns", "input", "ROWS", "", None, 1])
def test_mode_validation_matches_keras(mode):
    theirs = _raises(lambda: KR.OrthogonalRegularizer(mode=mode))
    ours = _raises(lambda: R.OrthogonalRegularizer(mode=mode))
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert isinstance(ours, ValueError)
        assert "`mode`" in str(ours) and f"mode={mode!r}" in str(ours)


def test_objects_are_frozen_hashable_and_equal_by_value():
    assert R.L1(0.1) == R.L1(0.1) and hash(R.L1(0.1)) == hash(R.L1(0.1))
    assert R.L1(1) == R.L1(1.0) and isinstance(R.L1(1).l1, float)
    assert R.L1(None) == R.L1() and R.L1L2(None, None) == R.L1L2()
    assert R.L1(0.1) != R.L2(0.1) and R.L1(0.1) != R.L1(0.2)
    assert len({R.OrthogonalRegularizer(), R.OrthogonalRegularizer(0.01, "rows")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        R.L2().l2 = 1.0


# ------------------------------------------------------------ names and get()

KERAS_NAMES = sorted(
    n for n in keras_regularizers_src.ALL_OBJECTS_DICT if n.lower() != "regularizer"
)


def test_every_keras_name_is_known():
    assert set(KERAS_NAMES) <= set(R._REGISTRY.names)


@pytest.mark.parametrize("name", sorted(R._REGISTRY.names))
def test_names_resolve_to_keras_defaults(name):
    ours = R.get(name)
    if name in keras_regularizers_src.ALL_OBJECTS_DICT:
        theirs = KR.get(name)
    else:  # "l1_l2": only Keras's public alias keras.regularizers.l1_l2 (= L1L2)
        theirs = getattr(KR, name)()
    assert type(ours).__name__ == type(theirs).__name__
    assert ours == type(ours)()
    assert_configs_match(ours.get_config(), theirs.get_config())


@pytest.mark.parametrize("alias", ["l1", "l2", "l1_l2", "orthogonal_regularizer"])
def test_lowercase_aliases_mirror_keras(alias):
    theirs = getattr(KR, alias)
    assert getattr(R, alias).__name__ == theirs.__name__
    assert alias in R.__all__


@pytest.mark.parametrize("argname", ["kernel_regularizer", "bias_regularizer"])
def test_unknown_name_is_a_value_error(argname):
    with pytest.raises(ValueError) as info:
        R.get("l3", argname=argname)
    assert argname in str(info.value) and "'l3'" in str(info.value)
    with pytest.raises(ValueError, match="kernel_regularizer"):
        R.get("L1_L2")


@pytest.mark.parametrize("bad", [3, 0.5, b"l1", [R.L1()]])
def test_wrong_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="kernel_regularizer"):
        R.get(bad)


def test_none_class_and_callables():
    assert R.get(None) is None
    assert R.get(R.L2) == R.L2()
    obj = R.L1L2(0.1, 0.2)
    assert R.get(obj) is obj

    def user(w):
        return 0.5 * jnp.sum(w**4)

    assert R.get(user) is user
    keras_obj = KR.L2(0.2)
    assert R.get(keras_obj) is keras_obj
    assert R.serialize(user) is user
    assert R.serialize(None) is None


@pytest.mark.parametrize(
    "obj",
    [
        R.L1(0.25),
        R.L2(1.5),
        R.L1L2(0.125, 3.0),
        R.L1L2(l2=0.5),
        R.OrthogonalRegularizer(0.75, "columns"),
    ],
    ids=repr,
)
def test_serialize_round_trip_and_keras_interop(obj):
    blob = json.dumps(R.serialize(obj))
    back = R.get(json.loads(blob))
    assert back == obj and type(back) is type(obj)
    # Keras reads our form, and we read Keras's.
    theirs = KR.get(json.loads(blob))
    assert type(theirs).__name__ == type(obj).__name__
    assert_configs_match(theirs.get_config(), obj.get_config())
    ours_again = R.get(KR.serialize(theirs))
    assert type(ours_again) is type(obj)
    assert_configs_match(ours_again.get_config(), obj.get_config())
    w = random_weights((5, 3), seed=11)
    assert_same(ours_again(w), theirs(w))


# ----------------------------------------------------------- validate_penalty


def test_validate_penalty_accepts_scalars():
    value = R.L2()(jnp.ones(3))
    assert R.validate_penalty(value, "l2") is value
    assert R.validate_penalty(0.0, "zero") == 0.0
    checked = jax.jit(lambda w: R.validate_penalty(R.L1()(w), "L1"))(jnp.ones(4))
    np.testing.assert_allclose(checked, 0.04, rtol=1e-6)


@pytest.mark.parametrize(
    "value,shape", [(jnp.ones(3), "(3,)"), (np.zeros((2, 1)), "(2, 1)")]
)
def test_validate_penalty_rejects_non_scalars(value, shape):
    with pytest.raises(ValueError) as info:
        R.validate_penalty(value, "my_regularizer")
    message = str(info.value)
    assert "my_regularizer" in message and shape in message and "scalar" in message


def test_validate_penalty_rejects_non_scalars_under_jit():
    def per_element(w):
        return 0.1 * jnp.abs(w)

    @jax.jit
    def loss(w):
        return R.validate_penalty(per_element(w), "per_element")

    with pytest.raises(ValueError, match=r"per_element.*\(3, 4\)"):
        loss(jnp.ones((3, 4)))


@pytest.mark.parametrize("value", [None, "0.1", [1.0, 2.0]], ids=repr)
def test_validate_penalty_rejects_non_numbers(value):
    with pytest.raises(ValueError, match="reg"):
        R.validate_penalty(value, "reg")


# --------------------------------------------------------------------- module


@pytest.mark.parametrize("name", R.__all__)
def test_public_names_are_documented(name):
    doc = getattr(R, name).__doc__
    assert doc and ">>>" in doc and "Returns" in doc
