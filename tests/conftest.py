"""Shared fixtures: Keras on its JAX backend as the oracle, keys, tolerances."""

import functools
import os
import subprocess
import sys

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


@pytest.fixture
def im2col_gemms_everywhere(monkeypatch):
    """The "im2col" core's kernel gradient runs its blocked GEMMs on small
    test cases too (by default XLA's own below GEMM_MIN_ROWS positions)."""
    from conv1djax.lowering import im2col

    monkeypatch.setattr(im2col, "GEMM_MIN_ROWS", 0)


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


# ---- shared by the oracle and lowering tests --------------------------------------


def _fast_compile_options():
    """Compiling is most of a sweep case's time, and XLA:CPU's backend most of
    that: no LLVM optimisation, and its loop emitters in place of its fusion
    emitters (about 4x faster for small programs). Both sides of a
    comparison are one program with the same HLO, so a comparison is
    unchanged. (An XLA without the emitter option gets the first alone.)"""
    options = {
        "xla_backend_optimization_level": 0,
        "xla_cpu_use_fusion_emitters": False,
    }
    try:
        jax.jit(lambda v: v + 1, compiler_options=options)(np.zeros(1, np.float32))
    except jax.errors.JaxRuntimeError:
        return {"xla_backend_optimization_level": 0}
    return options


FAST_COMPILE = _fast_compile_options()


def random_params(spec, shape, seed):
    """Params of the right shapes from NumPy: the sweeps test the convolution,
    and init's samplers are tested in test_initializers.py."""
    shapes = spec.param_shapes(shape)
    return {
        name: normal(seed + i, s) for i, (name, s) in enumerate(sorted(shapes.items()))
    }


@functools.partial(jax.jit, static_argnums=(0, 1), compiler_options=FAST_COMPILE)
def pair_values_and_vjps(fn_a, fn_b, args, ct):
    """Both functions' outputs and VJPs, in one compiled program."""
    results = []
    for fn in (fn_a, fn_b):
        y, vjp = jax.vjp(fn, *args)
        results.append((y, vjp(ct.astype(y.dtype))))
    return results


def keras_weight_names(klayer):
    """Keras's weight names ("kernel", "depthwise_kernel", ...), in the order
    of the layer's trainable variables (``stateless_call``'s order)."""
    return [w.path.split("/")[-1] for w in klayer.trainable_variables]


def compare_with_keras(spec, klayer, params, x, batch, rtol=RTOL, keras_input=None):
    """Compares ``spec.apply`` with a built Keras layer holding the same
    weights (matched by Keras's weight names): forward values and the VJP
    w.r.t. the input and every param, in one compiled program. Keras takes
    one batch axis, so ``x``'s ``batch`` axes are flattened for it and its
    output reshaped back; ``keras_input`` maps our input to Keras's first.
    Returns our output."""
    names = sorted(params)
    knames = keras_weight_names(klayer)
    assert sorted(knames) == names, (knames, names)

    def ours(x, *ws):
        return spec.apply(dict(zip(names, ws, strict=True)), x)

    def theirs(x, *ws):
        weights = dict(zip(names, ws, strict=True))
        if keras_input is not None:
            x = keras_input(x)
        y, _ = klayer.stateless_call(
            [weights[n] for n in knames], [], x.reshape((-1, *x.shape[len(batch) :]))
        )
        return y.reshape((*batch, *y.shape[1:]))

    args = [x] + [params[n] for n in names]
    ct = normal(1, jax.eval_shape(ours, *args).shape)
    (y, grads), (y_k, grads_k) = pair_values_and_vjps(ours, theirs, args, ct)
    assert y.shape == y_k.shape
    assert y.dtype == y_k.dtype
    assert_close(y, y_k, rtol=rtol)
    for name, g, g_k in zip(["x", *names], grads, grads_k, strict=True):
        assert_close(g, g_k, rtol=rtol, err_msg=f"VJP w.r.t. {name}")
    return y


def keras_parameter_free(klayer, shape, num_batch):
    """A parameter-free Keras layer as a function of inputs of ``shape``
    with ``num_batch`` batch axes (flattened into Keras's one)."""
    klayer.build((None, *shape[num_batch:]))

    def fn(x):
        y, _ = klayer.stateless_call([], [], x.reshape((-1, *x.shape[num_batch:])))
        return y.reshape((*x.shape[:num_batch], *y.shape[1:]))

    return fn


def pairs_values_and_input_vjps(pairs, xs, seed=1):
    """Outputs and input VJPs of each ``(ours, theirs)`` function pair, all
    in one jitted program."""
    cts = [
        normal(seed + i, jax.eval_shape(f, x).shape)
        for i, ((f, _), x) in enumerate(zip(pairs, xs, strict=True))
    ]

    def run(xs, cts):
        results = []
        for (ours, theirs), x, ct in zip(pairs, xs, cts, strict=True):
            for fn in (ours, theirs):
                y, vjp = jax.vjp(fn, x)
                results.append((y, vjp(ct)[0]))
        return results

    results = jax.jit(run, compiler_options=FAST_COMPILE)(xs, cts)
    return list(zip(results[::2], results[1::2], strict=True))


@functools.partial(jax.jit, static_argnums=(0,), compiler_options=FAST_COMPILE)
def specs_values_and_vjps(specs, params, x, ct):
    """Each spec's output and VJP w.r.t. (x, params), one program."""
    results = []
    for spec in specs:
        y, vjp = jax.vjp(lambda x_, p, s=spec: s.apply(p, x_), x, params)
        results.append((y, vjp(ct)))
    return results


def run_on_host_devices(script: str, count: int = 8) -> str:
    """Runs ``script`` in a fresh Python with ``count`` CPU devices; returns
    its stdout, failing the test with its stderr when it fails."""
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
