"""conv1djax.constraints against Keras 3's own constraints (JAX backend)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import dataclasses  # noqa: E402
import json  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from keras.src import constraints as keras_constraints_src  # noqa: E402

from conv1djax import constraints as C  # noqa: E402, N812

KC = keras.constraints
SWEEP = settings(max_examples=40, deadline=None, database=None, derandomize=True)

# Few shapes on purpose: each new shape (and axis) costs XLA compilations.
KERNEL = (3, 4, 8)  # Conv1D kernel (kernel_size, in_channels, filters)
BIAS = (8,)
INF = float("inf")

# (our class, Keras class, kwargs); the same kwargs go to both.
KERNEL_CASES = [
    (C.MaxNorm, KC.MaxNorm, {}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": 0.5, "axis": 1}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": 3, "axis": (0, 1)}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": 1.5, "axis": [0, 1]}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": 1.0, "axis": -1}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": 4.0, "axis": None}),
    (C.NonNeg, KC.NonNeg, {}),
    (C.UnitNorm, KC.UnitNorm, {}),
    (C.UnitNorm, KC.UnitNorm, {"axis": (0, 1)}),
    (C.UnitNorm, KC.UnitNorm, {"axis": 2}),
    (C.UnitNorm, KC.UnitNorm, {"axis": None}),
    (C.MinMaxNorm, KC.MinMaxNorm, {}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"min_value": 0.5, "max_value": 2.0}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"rate": 0.3, "axis": (0, 1)}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"min_value": 1, "max_value": 1, "axis": 2}),
    (
        C.MinMaxNorm,
        KC.MinMaxNorm,
        {"min_value": 0.2, "max_value": INF, "rate": 0.5, "axis": -1},
    ),
]
BIAS_CASES = [
    (C.MaxNorm, KC.MaxNorm, {}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": 0.5, "axis": (0,)}),
    (C.NonNeg, KC.NonNeg, {}),
    (C.UnitNorm, KC.UnitNorm, {}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"min_value": 2, "max_value": 3}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"rate": 0.5, "axis": None}),
]


def _case_id(case):
    ours, _, kwargs = case
    return f"{ours.__name__}-{kwargs}"


def random_weights(shape, seed, scale=1.0, zero_first=False, dtype="float32"):
    """Normal weights; optionally the first slice along axes 0 and -1 zeroed."""
    w = np.random.default_rng(seed).normal(size=shape) * scale
    if zero_first:
        w[0] = 0.0
        w[..., 0] = 0.0
    return jnp.asarray(w.astype("float32")).astype(dtype)


def assert_same(actual, expected, rtol=1e-6):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(
        actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=0
    )


def norms(w, axis):
    """Float64 norms along ``axis`` (None: all axes), keepdims."""
    w = np.asarray(w, np.float64)
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.sum(w**2, axis=axis, keepdims=True))


# --------------------------------------------------------------------- values

# Scale 1e-6 makes norms comparable to Keras's epsilon (1e-7), so a misplaced
# epsilon shows; zeroed slices check that all-zero vectors stay zero.
SCALES = [(1.0, False), (1e-6, True), (30.0, True)]


@pytest.mark.parametrize("case", KERNEL_CASES, ids=_case_id)
@pytest.mark.parametrize("scale,zero_first", SCALES)
def test_kernel_values_match_keras(case, scale, zero_first):
    ours_cls, keras_cls, kwargs = case
    w = random_weights(KERNEL, seed=1, scale=scale, zero_first=zero_first)
    got = ours_cls(**kwargs)(w)
    assert got.shape == w.shape and got.dtype == w.dtype
    assert_same(got, keras_cls(**kwargs)(w))


@pytest.mark.parametrize("case", BIAS_CASES, ids=_case_id)
@pytest.mark.parametrize("scale,zero_first", SCALES)
def test_bias_values_match_keras(case, scale, zero_first):
    ours_cls, keras_cls, kwargs = case
    w = random_weights(BIAS, seed=2, scale=scale, zero_first=zero_first)
    got = ours_cls(**kwargs)(w)
    assert got.shape == w.shape and got.dtype == w.dtype
    assert_same(got, keras_cls(**kwargs)(w))


def test_epsilon_placement_on_tiny_vectors():
    # A norm of 1e-7 (Keras's epsilon) is halved by UnitNorm: w / (eps + norm).
    w = jnp.array([[1e-7], [0.0]], jnp.float32)
    for ours, theirs in [
        (C.UnitNorm(), KC.UnitNorm()),
        (C.MaxNorm(1.0), KC.MaxNorm(1.0)),
        (C.MinMaxNorm(0.0, 1.0), KC.MinMaxNorm(0.0, 1.0)),
    ]:
        got = ours(w)
        assert_same(got, theirs(w))
        assert float(got[1, 0]) == 0.0
    assert float(C.UnitNorm()(w)[0, 0]) == pytest.approx(0.5, rel=1e-5)
    assert float(C.MaxNorm(1.0)(w)[0, 0]) == pytest.approx(0.5e-7, rel=1e-5)


_AXES = [0, 1, 2, -1, (0, 1), None]


@SWEEP
@given(
    kind=st.sampled_from(["MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm"]),
    axis=st.sampled_from(_AXES),
    low=st.one_of(st.just(0.0), st.floats(0.01, 3.0)),  # float32-representable
    width=st.one_of(st.just(0.0), st.floats(0.01, 3.0)),
    rate=st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
    log_scale=st.integers(-3, 2),
    seed=st.integers(0, 2**16),
)
def test_sweep_matches_keras_and_properties(
    kind, axis, low, width, rate, log_scale, seed
):
    kwargs = {
        "MaxNorm": {"max_value": low + width, "axis": axis},
        "NonNeg": {},
        "UnitNorm": {"axis": axis},
        "MinMaxNorm": {
            "min_value": low,
            "max_value": low + width,
            "rate": rate,
            "axis": axis,
        },
    }[kind]
    w = random_weights(KERNEL, seed, scale=10.0**log_scale)
    out = getattr(C, kind)(**kwargs)(w)
    assert_same(out, getattr(KC, kind)(**kwargs)(w), rtol=2e-6)

    # Properties, up to float32 rounding (1e-5) and the epsilon, which makes
    # each norm fall short of its target by a relative 1e-7 / norm.
    before, after = norms(w, axis), norms(out, axis)
    tol = 1e-5 + 1e-7 / before
    if kind == "MaxNorm":
        assert np.all(after <= kwargs["max_value"] * (1 + 1e-5) + 1e-30)
        inside = np.broadcast_to(before <= kwargs["max_value"], w.shape)
        ratio = np.asarray(out, np.float64)[inside] / np.asarray(w, np.float64)[inside]
        assert np.all(np.abs(ratio - 1) <= np.broadcast_to(tol, w.shape)[inside])
    elif kind == "NonNeg":
        assert np.all(np.asarray(out) >= 0)
        keep = np.asarray(w) >= 0
        np.testing.assert_array_equal(np.asarray(out)[keep], np.asarray(w)[keep])
    elif kind == "UnitNorm":
        assert np.all(np.abs(after - 1) <= tol)
    else:
        target = np.clip(before, kwargs["min_value"], kwargs["max_value"])
        expected = rate * target + (1 - rate) * before
        assert np.all(np.abs(after - expected) <= tol * expected + 1e-30)
        if rate == 1.0:
            assert np.all(after >= kwargs["min_value"] * (1 - tol))
            assert np.all(after <= kwargs["max_value"] * (1 + 1e-5))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", [KERNEL_CASES[i] for i in (0, 6, 13)], ids=_case_id)
def test_low_precision_keeps_dtype_like_keras(case, dtype):
    ours_cls, keras_cls, kwargs = case
    w = random_weights(KERNEL, seed=3, dtype=dtype)
    got = ours_cls(**kwargs)(w)
    assert got.dtype == jnp.dtype(dtype) and got.shape == w.shape
    assert_same(got, keras_cls(**kwargs)(w))


@pytest.mark.parametrize(
    "constraint",
    [C.MaxNorm(1.0, axis=(0, 1)), C.NonNeg(), C.UnitNorm(), C.MinMaxNorm(0.5, 2.0)],
    ids=repr,
)
def test_jit_and_static_argument(constraint):
    w = random_weights(KERNEL, seed=4)
    eager = constraint(w)
    np.testing.assert_allclose(jax.jit(constraint)(w), eager, rtol=1e-6, atol=1e-7)
    as_static = jax.jit(lambda c, w: c(w), static_argnums=0)
    same = type(constraint)(**constraint.get_config())
    assert same == constraint and hash(same) == hash(constraint)
    np.testing.assert_allclose(as_static(same, w), eager, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("axis", [3, -4, (0, 3)])
def test_axis_out_of_range_is_a_clear_error(axis):
    w = random_weights(KERNEL, seed=0)
    with pytest.raises(ValueError) as info:
        C.MaxNorm(axis=axis)(w)
    assert f"axis={axis!r}" in str(info.value) and str(KERNEL) in str(info.value)
    with pytest.raises(Exception):  # noqa: B017 - Keras raises some error too
        KC.MaxNorm(axis=axis)(w)


# ----------------------------------------------------------------- validation

INVALID = [
    (C.MaxNorm, "max_value", -1),
    (C.MaxNorm, "max_value", "2"),
    (C.MaxNorm, "max_value", float("nan")),
    (C.MaxNorm, "max_value", True),
    (C.MaxNorm, "max_value", None),
    (C.MaxNorm, "axis", 1.5),
    (C.MaxNorm, "axis", "0"),
    (C.MaxNorm, "axis", (0, 0)),
    (C.MaxNorm, "axis", [0, "a"]),
    (C.MaxNorm, "axis", True),
    (C.UnitNorm, "axis", 0.0),
    (C.UnitNorm, "axis", {0: 1}),
    (C.MinMaxNorm, "min_value", -0.1),
    (C.MinMaxNorm, "min_value", INF),
    (C.MinMaxNorm, "max_value", -1.0),
    (C.MinMaxNorm, "max_value", [1.0]),
    (C.MinMaxNorm, "rate", 1.5),
    (C.MinMaxNorm, "rate", -0.1),
    (C.MinMaxNorm, "rate", float("nan")),
    (C.MinMaxNorm, "rate", "1"),
]


@pytest.mark.parametrize(
    "cls,arg,value", INVALID, ids=lambda v: v.__name__ if isinstance(v, type) else None
)
def test_invalid_arguments_name_the_argument_and_echo_the_value(cls, arg, value):
    with pytest.raises(ValueError) as info:
        cls(**{arg: value})
    message = str(info.value)
    assert f"`{arg}`" in message and f"{arg}=" in message
    assert str(value) in message or repr(value) in message


def test_min_above_max_is_rejected():
    with pytest.raises(ValueError, match=r"`max_value`.*max_value=0\.5") as info:
        C.MinMaxNorm(min_value=1.0, max_value=0.5)
    assert "min_value=1.0" in str(info.value)


VALID = [
    (C.MaxNorm, KC.MaxNorm, {"max_value": 0}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": INF}),
    (C.MaxNorm, KC.MaxNorm, {"max_value": np.float32(1.5), "axis": np.int64(1)}),
    (C.MaxNorm, KC.MaxNorm, {"axis": [-1, 0]}),
    (C.UnitNorm, KC.UnitNorm, {"axis": (2,)}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"min_value": 0, "max_value": 0, "rate": 0}),
    (C.MinMaxNorm, KC.MinMaxNorm, {"min_value": 1, "max_value": 2, "rate": 1}),
]


@pytest.mark.parametrize("case", VALID, ids=_case_id)
def test_edge_values_keras_accepts_are_accepted(case):
    ours_cls, keras_cls, kwargs = case
    ours = ours_cls(**kwargs)
    json.dumps(C.serialize(ours))  # numpy scalars became Python numbers
    w = random_weights(KERNEL, seed=5)
    assert_same(ours(w), keras_cls(**kwargs)(w))


def test_objects_are_frozen_hashable_and_equal_by_value():
    assert C.MaxNorm(axis=[0, 1]) == C.MaxNorm(axis=(0, 1))
    assert C.MaxNorm(axis=[0, 1]).axis == (0, 1)
    assert hash(C.MaxNorm(axis=[0, 1])) == hash(C.MaxNorm(axis=(0, 1)))
    assert C.MaxNorm() == C.MaxNorm(2, 0) and C.MaxNorm() != C.MaxNorm(3)
    assert C.NonNeg() == C.NonNeg() and len({C.NonNeg(), C.NonNeg()}) == 1
    assert C.UnitNorm() != C.MaxNorm()
    with pytest.raises(dataclasses.FrozenInstanceError):
        C.UnitNorm().axis = 1


# ------------------------------------------------------------ names and get()

KERAS_NAMES = sorted(
    n for n in keras_constraints_src.ALL_OBJECTS_DICT if n.lower() != "constraint"
)


def test_every_keras_name_is_known():
    assert set(KERAS_NAMES) <= set(C._REGISTRY.names)


@pytest.mark.parametrize("name", sorted(C._REGISTRY.names))
def test_names_resolve_to_keras_defaults(name):
    ours, theirs = C.get(name), KC.get(name)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours == type(ours)()
    assert ours.get_config() == theirs.get_config()


@pytest.mark.parametrize("alias", ["max_norm", "non_neg", "unit_norm", "min_max_norm"])
def test_lowercase_aliases_mirror_keras(alias):
    assert getattr(C, alias).__name__ == getattr(KC, alias).__name__
    assert alias in C.__all__


@pytest.mark.parametrize("argname", ["kernel_constraint", "bias_constraint"])
def test_unknown_name_is_a_value_error(argname):
    with pytest.raises(ValueError) as info:
        C.get("maxnorm", argname=argname)
    assert argname in str(info.value) and "'maxnorm'" in str(info.value)


@pytest.mark.parametrize("bad", [3, 0.5, b"non_neg", [C.NonNeg()]])
def test_wrong_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="kernel_constraint"):
        C.get(bad)


def test_none_class_and_callables():
    assert C.get(None) is None
    assert C.get(C.UnitNorm) == C.UnitNorm()
    obj = C.MaxNorm(3.0)
    assert C.get(obj) is obj

    def clip(w):
        return jnp.clip(w, -1.0, 1.0)

    assert C.get(clip) is clip
    assert C.serialize(clip) is clip and C.serialize(None) is None


@pytest.mark.parametrize(
    "obj",
    [
        C.MaxNorm(3.5, axis=(0, 1)),
        C.NonNeg(),
        C.UnitNorm(axis=[0, 1]),
        C.UnitNorm(axis=None),
        C.MinMaxNorm(0.25, 2.0, 0.5, axis=2),
    ],
    ids=repr,
)
def test_serialize_round_trip_and_keras_interop(obj):
    blob = json.dumps(C.serialize(obj))
    back = C.get(json.loads(blob))
    assert back == obj and type(back) is type(obj)
    theirs = KC.get(json.loads(blob))  # Keras reads our form ...
    assert type(theirs).__name__ == type(obj).__name__
    assert theirs.get_config() == obj.get_config()
    ours_again = C.get(KC.serialize(theirs))  # ... and we read Keras's.
    assert ours_again == obj
    w = random_weights(KERNEL, seed=6)
    assert_same(ours_again(w), theirs(w))


# ------------------------------------------------ projections and validation


def test_as_projection_inside_jit_after_optax_update():
    shapes = {"conv1": {"kernel": KERNEL, "bias": BIAS}, "conv2": {"kernel": KERNEL}}
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda x: isinstance(x, tuple))
    params = jax.tree.unflatten(
        treedef, [random_weights(s, seed=i) for i, s in enumerate(leaves)]
    )
    targets = jax.tree.map(lambda p: 3.0 * jnp.sign(p) + p, params)
    optimizer = optax.sgd(0.5)
    # Keras's default axis=0 fits every leaf: kernels (k, cin, filters) and
    # biases (filters,); an axis=(0, 1) projection would suit kernels only.
    project = C.as_projection({"class_name": "MaxNorm", "config": {"max_value": 1}})

    def loss(p):
        return sum(
            jnp.sum((a - b) ** 2)
            for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(targets), strict=True)
        )

    def step(p, state):
        updates, state = optimizer.update(jax.grad(loss)(p), state, p)
        return project(optax.apply_updates(p, updates)), state

    new_params, _ = jax.jit(step)(params, optimizer.init(params))

    updates, _ = optimizer.update(jax.grad(loss)(params), optimizer.init(params))
    unconstrained = optax.apply_updates(params, updates)
    keras_constraint = KC.MaxNorm(1)
    expected = jax.tree.map(keras_constraint, unconstrained)
    assert jax.tree.structure(new_params) == jax.tree.structure(params)
    for got, want, raw in zip(
        jax.tree.leaves(new_params),
        jax.tree.leaves(expected),
        jax.tree.leaves(unconstrained),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert np.all(norms(got, 0) <= 1.0 + 1e-6)
        assert not np.allclose(raw, want)  # the projection did something


def test_as_projection_matches_optax_non_negative():
    tree = {"a": random_weights(KERNEL, seed=8), "b": [random_weights(BIAS, seed=9)]}
    ours = jax.jit(C.as_projection("non_neg"))(tree)
    theirs = optax.projections.projection_non_negative(tree)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(got, want)


def test_as_projection_none_and_user_callables():
    tree = {"w": random_weights(BIAS, seed=10)}
    assert C.as_projection(None)(tree) is tree
    halved = C.as_projection(lambda w: 0.5 * w)(tree)
    np.testing.assert_array_equal(halved["w"], 0.5 * tree["w"])
    with pytest.raises(ValueError, match="constraint"):
        C.as_projection("nope")
    with pytest.raises(TypeError):
        C.as_projection(3)


def test_as_projection_reports_shape_and_dtype_changes_under_jit():
    tree = {"kernel": random_weights((3, 4), seed=11)}

    def transpose(w):
        return w.T

    with pytest.raises(ValueError, match=r"transpose.*\(3, 4\).*\(4, 3\)"):
        jax.jit(C.as_projection(transpose))(tree)
    with pytest.raises(ValueError, match=r"float32.*float16"):
        jax.jit(C.as_projection(lambda w: w.astype(jnp.float16)))(tree)


def test_validate_projection():
    w = jnp.ones((2, 3))
    out = C.NonNeg()(w)
    assert C.validate_projection(w, out, "non_neg") is out
    with pytest.raises(ValueError) as info:
        C.validate_projection(w, jnp.ones((3, 2)), "MaxNorm(max_value=2, axis=0)")
    message = str(info.value)
    assert "MaxNorm(max_value=2, axis=0)" in message
    assert "(2, 3)" in message and "(3, 2)" in message
    with pytest.raises(ValueError) as info:
        C.validate_projection(w, w.astype(jnp.int32), "to_int")
    message = str(info.value)
    assert "to_int" in message and "float32" in message and "int32" in message
    assert "(2, 3)" in message
    with pytest.raises(ValueError, match="returned None"):
        C.validate_projection(w, None, "broken")


# --------------------------------------------------------------------- module


@pytest.mark.parametrize("name", C.__all__)
def test_public_names_are_documented(name):
    doc = getattr(C, name).__doc__
    assert doc and ">>>" in doc and "Returns" in doc
