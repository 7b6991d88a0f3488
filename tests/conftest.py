"""Shared fixtures: Keras on its JAX backend as the oracle, keys, tolerances."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# float32 results that go through different but equivalent XLA programs agree
# to a few ulps of the output's scale; these bound that.
RTOL = 2e-5
ATOL = 2e-5


def normal(seed, shape, dtype=np.float32):
    """Standard-normal test data from NumPy (jax.random programs of small
    multi-axis shapes take seconds to compile on XLA:CPU)."""
    return jax.numpy.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, err_msg=""):
    """Asserts closeness relative to the expected array's scale."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, err_msg)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=atol * scale, err_msg=err_msg
    )


def keras_sparsemax_is_fixed() -> bool:
    """Keras <= 3.15.1 computes sparsemax's threshold wrongly
    (keras-team/keras#23425): its output then does not sum to 1."""
    import keras

    out = keras.activations.sparsemax(np.array([0.0, 1.0, 1.5], np.float32))
    return abs(float(np.sum(np.asarray(out))) - 1.0) < 1e-5
