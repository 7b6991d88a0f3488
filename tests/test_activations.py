"""conv1djax.activations against Keras 3 (JAX backend) as the oracle."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from conftest import keras_promotion, keras_sparsemax_is_fixed  # noqa: E402
from conv1djax import activations  # noqa: E402

# Every name keras.activations.get accepts (Keras 3), written out here rather
# than read from the module under test.
ALL_NAMES = (
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "swish",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "tanh",
    "tanh_shrink",
    "threshold",
)
NAMES = tuple(n for n in ALL_NAMES if n != "threshold")
# Keras <= 3.15.1 has a wrong sparsemax (keras-team/keras#23425); compare
# with Keras only once it is fixed, and with the paper's formula always.
KERAS_NAMES = tuple(n for n in NAMES if n != "sparsemax" or keras_sparsemax_is_fixed())

# Points where some activation has a kink (or a threshold), plus large values.
KINKS = (0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0)
SPECIAL = (*KINKS, 30.0, -30.0, 100.0, -100.0, 1e-3, -1e-3)

TOL = {"rtol": 1e-6, "atol": 1e-6}


def _inputs(shape=(4, 6, 8), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape)
    # Put the special values in every row, at shuffled positions.
    flat = x.reshape(-1)
    idx = rng.permutation(flat.size)[: 3 * len(SPECIAL)]
    flat[idx] = np.tile(SPECIAL, 3)
    return jnp.asarray(x.astype(dtype))


X = _inputs()


def _ours(name, **kwargs):
    fn = activations.threshold if name == "threshold" else activations.get(name)
    return functools.partial(fn, **kwargs) if kwargs else fn


def _keras(name, **kwargs):
    fn = keras.activations.get(name)
    return functools.partial(fn, **kwargs) if kwargs else fn


def _vjp(fn, x, seed=1):
    y, pullback = jax.vjp(fn, x)
    w = jnp.asarray(np.random.default_rng(seed).normal(size=y.shape), y.dtype)
    return pullback(w)[0]


def test_names_are_keras_names():
    from keras.src.activations import ALL_OBJECTS_DICT

    assert set(ALL_NAMES) == set(ALL_OBJECTS_DICT)
    assert len(ALL_NAMES) == 32
    for name in ALL_NAMES:
        assert callable(getattr(activations, name))
        assert name in activations.__all__
    assert {"get", "serialize"} <= set(activations.__all__)


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_values_match_keras(name):
    ours = activations.get(name)(X)
    theirs = keras.activations.get(name)(X)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype == X.dtype
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), **TOL)


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_gradients_match_keras(name):
    ours = _vjp(activations.get(name), X)
    theirs = _vjp(keras.activations.get(name), X)
    # Subgradients at kinks are a convention; compare everywhere else.
    away = ~np.isin(np.asarray(X), KINKS)
    assert away.sum() > 0.7 * away.size
    np.testing.assert_allclose(np.asarray(ours)[away], np.asarray(theirs)[away], **TOL)
    assert np.isfinite(np.asarray(ours)[away]).mean() > 0.9


X2 = _inputs(seed=2)

KWARGS_CASES = [
    ("relu", {"negative_slope": 0.1}),
    ("relu", {"max_value": 6}),
    ("relu", {"max_value": 6.0, "negative_slope": 0.1}),
    ("relu", {"max_value": 4.5}),
    ("relu", {"threshold": 0.5}),
    ("relu", {"threshold": -1.0}),
    ("relu", {"threshold": 1.0, "negative_slope": 0.3}),
    ("relu", {"threshold": 1.0, "negative_slope": 0.3, "max_value": 2.0}),
    ("relu", {"threshold": 0.5, "max_value": 6}),
    ("relu", {"threshold": -2.0, "max_value": 1.0}),
    ("leaky_relu", {"negative_slope": 0.01}),
    ("elu", {"alpha": 0.5}),
    ("celu", {"alpha": 2.0}),
    ("gelu", {"approximate": True}),
    ("squareplus", {"b": 1.0}),
    ("soft_shrink", {"threshold": 1.0}),
    ("hard_shrink", {"threshold": 3.0}),
    ("softmax", {"axis": (1, 2)}),
    ("log_softmax", {"axis": 1}),
    ("sparsemax", {"axis": 1}),
    ("glu", {"axis": 0}),
    ("glu", {"axis": 1}),
    ("threshold", {"threshold": 0.5, "default_value": 0.0}),
    ("threshold", {"threshold": -1.0, "default_value": 2.5}),
    ("threshold", {"threshold": 0.0, "default_value": -1.0}),
]
KWARGS_CASES = [(n, k) for n, k in KWARGS_CASES if n in KERAS_NAMES or n == "threshold"]


@pytest.mark.parametrize(
    ("name", "kwargs"), KWARGS_CASES, ids=[f"{n}-{k}" for n, k in KWARGS_CASES]
)
def test_parameters_match_keras(name, kwargs):
    ours_fn, theirs_fn = _ours(name, **kwargs), _keras(name, **kwargs)
    ours, theirs = ours_fn(X2), theirs_fn(X2)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), **TOL)
    if "axis" in kwargs:
        return  # gradients along other axes: same ops, only permuted
    params = [v for v in kwargs.values() if v is not None]
    away = ~np.isin(np.asarray(X2), (*KINKS, *params))
    np.testing.assert_allclose(
        np.asarray(_vjp(ours_fn, X2))[away],
        np.asarray(_vjp(theirs_fn, X2))[away],
        **TOL,
    )


def test_negative_axes_tuple_softmax():
    # Keras only handles non-negative axes in a tuple; ours takes both.
    for name in ("softmax", "log_softmax"):
        ours = activations.get(name)(X, axis=(-2, -1))
        theirs = keras.activations.get(name)(X, axis=(1, 2))
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), **TOL)


def _np_sparsemax(z, keras_threshold):
    """NumPy sparsemax along the last axis, with Keras's or the paper's tau."""
    z = np.asarray(z, np.float64)
    zs = -np.sort(-z, axis=-1)
    c = np.cumsum(zs, axis=-1)
    j = np.arange(1, z.shape[-1] + 1)
    support = zs - (c - 1) / j > 0
    k = support.sum(-1, keepdims=True)
    if keras_threshold:
        tau = (np.where(support, c, 0.0).sum(-1, keepdims=True) - 1) / k
    else:
        tau = (np.take_along_axis(c, k - 1, axis=-1) - 1) / k
    return np.maximum(z - tau, 0.0)


def test_sparsemax_is_the_simplex_projection():
    x = X / 4  # small logits: supports of several elements
    ours = np.asarray(activations.sparsemax(x))
    paper = _np_sparsemax(x, False)
    np.testing.assert_allclose(ours, paper, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.sum(-1), 1.0, rtol=1e-5)
    assert np.any((ours > 0).sum(-1) > 1)  # the case Keras 3.15 gets wrong
    with keras_promotion():  # Keras's sparsemax promotes int32 to float32
        theirs = np.asarray(keras.activations.sparsemax(x))
        fixed = keras_sparsemax_is_fixed()
    if not fixed:
        # Pin down the known Keras bug, so that we notice when it changes.
        np.testing.assert_allclose(theirs, _np_sparsemax(x, True), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_glu_odd_axis_raises():
    with pytest.raises(ValueError, match="even"):
        activations.glu(jnp.ones((2, 3)))


def test_softmax_warns_on_size_one_axis_like_keras():
    x = jnp.ones((2, 4, 1))
    with pytest.warns(UserWarning, match="size 1"):
        theirs = keras.activations.softmax(x)
    with pytest.warns(UserWarning, match="size 1"):
        ours = activations.softmax(x)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_low_precision_dtype_preserved(name, dtype):
    # Abstract evaluation traces the real functions (dtypes are fixed at trace
    # time) without compiling them, which keeps this fast.
    kwargs = {"threshold": 0.5, "default_value": 0.0} if name == "threshold" else {}
    x = jax.ShapeDtypeStruct(X.shape, dtype)
    ours = jax.eval_shape(_ours(name, **kwargs), x)
    with keras_promotion():
        theirs = jax.eval_shape(_keras(name, **kwargs), x)
    assert ours.dtype == theirs.dtype == dtype
    assert ours.shape == theirs.shape
    grad = jax.eval_shape(lambda v: _vjp(_ours(name, **kwargs), v), x)
    assert grad.dtype == dtype


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", ["gelu", "selu", "softmax", "squareplus"])
def test_low_precision_values_match_keras(name, dtype):
    x = X.astype(dtype)
    ours, theirs = activations.get(name)(x), keras.activations.get(name)(x)
    assert ours.dtype == theirs.dtype == dtype
    tol = float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(
        np.asarray(ours, np.float32),
        np.asarray(theirs, np.float32),
        rtol=tol,
        atol=tol,
    )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_relu_threshold_cast_like_keras(dtype):
    # Keras casts `threshold` to the input dtype before comparing.
    x = jnp.linspace(-1.0, 1.0, 257).astype(dtype)
    ours = activations.relu(x, threshold=0.1, max_value=0.7)
    theirs = keras.activations.relu(x, threshold=0.1, max_value=0.7)
    assert ours.dtype == theirs.dtype == dtype
    np.testing.assert_array_equal(
        np.asarray(ours, np.float32), np.asarray(theirs, np.float32)
    )


def test_float64_dtype_preserved_and_traceable():
    # Abstract evaluation (no compilation) also shows that every activation
    # traces under jit: no Python control flow on array values.
    with jax.enable_x64(True):
        x = jax.ShapeDtypeStruct(X.shape, jnp.float64)
        for name in ALL_NAMES:
            kwargs = (
                {"threshold": 0.5, "default_value": 0.0} if name == "threshold" else {}
            )
            out = jax.eval_shape(jax.jit(_ours(name, **kwargs)), x)
            assert out.dtype == jnp.float64, name


# ---------------------------------------------------------------------------
# get / serialize.


def test_threshold_function_has_no_defaults_and_name_is_refused():
    with pytest.raises(ValueError, match="threshold") as info:
        activations.get("threshold")
    assert "functools.partial" in str(info.value)
    # Keras accepts the name, then fails at call time: why we refuse it.
    with pytest.raises(TypeError):
        keras.activations.get("threshold")(X)
    with pytest.raises(TypeError):
        activations.threshold(X)
    bound = functools.partial(activations.threshold, threshold=0.5, default_value=0.0)
    assert activations.get(bound) is bound


def test_aliases():
    assert activations.get("swish") is activations.get("silu")
    assert activations.get("hard_swish") is activations.get("hard_silu")
    assert activations.serialize(activations.get("swish")) == "silu"
    assert activations.serialize(activations.get("hard_swish")) == "hard_silu"
    assert activations.swish is activations.silu
    assert activations.hard_swish is activations.hard_silu


@pytest.mark.parametrize("name", ALL_NAMES)
def test_serialize_like_keras_and_round_trip(name):
    fn = getattr(activations, name)
    name_out = activations.serialize(fn)
    assert name_out == keras.activations.serialize(keras.activations.get(name))
    if name != "threshold":
        assert activations.get(name) is fn
        assert activations.get(name_out) is fn


def test_unknown_name():
    with pytest.raises(ValueError, match="activation") as info:
        activations.get("relux")
    assert "'relux'" in str(info.value)
    assert "sparse_plus" in str(info.value)  # lists the allowed names
    with pytest.raises(ValueError, match="gate_activation"):
        activations.get("relux", argname="gate_activation")


@pytest.mark.parametrize("bad", [3, 1.5, ["relu"], {"class_name": "relu"}])
def test_wrong_type(bad):
    with pytest.raises(TypeError, match="activation"):
        activations.get(bad)


def test_user_callables_and_none_pass_through():
    def custom(x):
        return x * 2

    fn = lambda x: x + 1  # noqa: E731
    assert activations.get(fn) is fn
    assert activations.get(custom) is custom
    assert activations.serialize(fn) is fn
    assert activations.get(None) is None
    assert activations.serialize(None) is None
