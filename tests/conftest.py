"""Shared fixtures: Keras on its JAX backend as the oracle, keys, tolerances."""

import functools
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")


def _fast_xla_flags() -> str:
    """XLA flags that compile faster: compiling is most of the suite's time,
    XLA:CPU's backend most of that. No LLVM optimisation, and XLA:CPU's loop
    emitters in place of its fusion emitters (the latter flag only where
    this XLA knows it: an unknown flag aborts the process, so a subprocess
    tries it first). The programs and their numbers are the same HLO's; on 2
    cores the suite took 25% less time on its slowest files
    (2026-12-07)."""
    both = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
    probe = subprocess.run(
        [sys.executable, "-c", "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"],
        env={**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {both}"},
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return both if probe.returncode == 0 else "--xla_backend_optimization_level=0"


# Set by the controlling process before any XLA backend starts; the xdist
# workers inherit it. Programs that measure speed do not run in the suite.
if (
    "PYTEST_XDIST_WORKER" not in os.environ
    and "CONV1DJAX_TEST_XLA_FLAGS" not in os.environ
):
    os.environ["CONV1DJAX_TEST_XLA_FLAGS"] = _fast_xla_flags()
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} {os.environ['CONV1DJAX_TEST_XLA_FLAGS']}"
    ).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import conv1djax as cj  # noqa: E402

# One persistent XLA compilation cache per test run, shared by the xdist
# workers: many tests compile the same program (the Keras oracle's, a
# sweep's), which XLA then compiles once (about 13% of the suite's time on 2
# cores). Made by the controlling process (workers inherit the variable) and
# removed when the run ends; a user's own JAX_COMPILATION_CACHE_DIR wins.
_CACHE_VARIABLE = "CONV1DJAX_TEST_XLA_CACHE"
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    if _CACHE_VARIABLE not in os.environ and "PYTEST_XDIST_WORKER" not in os.environ:
        _OWN_CACHE = os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(
            prefix="conv1djax-xla-cache-"
        )
    if _CACHE_VARIABLE in os.environ:
        jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_VARIABLE])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# the convolution families, by class
CONV = [cj.Conv1D, cj.Conv2D, cj.Conv3D]
TRANSPOSE = [cj.Conv1DTranspose, cj.Conv2DTranspose, cj.Conv3DTranspose]
DEPTHWISE = [cj.DepthwiseConv1D, cj.DepthwiseConv2D]
SEPARABLE = [cj.SeparableConv1D, cj.SeparableConv2D]
ALL_CONV = CONV + TRANSPOSE + DEPTHWISE + SEPARABLE
# the classes whose sweeps the shape and config tests reuse
ND_AND_DEPTHWISE = [*CONV[1:], *TRANSPOSE[1:], *DEPTHWISE, *SEPARABLE]

# float32 results that go through different but equivalent XLA programs agree
# to a few ulps of the output's scale; these bound that.
RTOL = 2e-5
ATOL = 2e-5


def normal(seed, shape, dtype=np.float32):
    """Standard-normal test data from NumPy (jax.random programs of small
    multi-axis shapes take seconds to compile on XLA:CPU)."""
    # device_put of a NumPy array compiles nothing (jnp.asarray with a dtype
    # compiles a conversion per shape)
    return jax.device_put(np.random.default_rng(seed).normal(size=shape).astype(dtype))


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "promotion: the test is about dtype promotion (mixed dtypes on purpose); "
        "it runs under JAX's standard promotion rather than the strict one",
    )
    config.addinivalue_line(
        "markers",
        "loose_promotion: library code this test runs promotes dtypes implicitly "
        "(a finding, named where the mark is set); standard promotion",
    )


# The optional oracles: the tests that need one skip without it (through
# pytest.importorskip, whose reason reads "could not import 'torch': ..."),
# and the run's summary says which was missing and how to install it.
# PyTorch is not in the test extra: the registry's default build for Linux
# pulls gigabytes of CUDA packages; its CPU build is enough.
ORACLES = {
    "torch": (
        "PyTorch, the second oracle (the PyTorch interop: state dicts, torch.fx "
        "conversion, padding modes, weight and spectral normalization; grouped "
        "transposed convolutions), is not installed",
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu\n"
        "(PyTorch's CPU build: a plain `pip install torch` pulls gigabytes of "
        "CUDA packages on Linux)",
    ),
}
_MISSING_MODULE = re.compile(r"could not import '([\w.]+)'|No module named '([\w.]+)'")


def _missing_module(report) -> str | None:
    """The top-level module whose absence skipped ``report``, if that was why."""
    longrepr = report.longrepr
    # a skip's longrepr is (path, line, reason); a list once it has crossed
    # from an xdist worker
    reason = longrepr[2] if isinstance(longrepr, tuple | list) else str(longrepr)
    match = _MISSING_MODULE.search(reason)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).split(".")[0]


def pytest_terminal_summary(terminalreporter):
    """After the tests: which optional module (an oracle) was missing, what
    skipped for it, and the command that installs it."""
    missing: dict[str, list] = {}
    for report in terminalreporter.stats.get("skipped", []):
        module = _missing_module(report)
        if module is not None:
            missing.setdefault(module, []).append(report)
    if not missing:
        return
    terminalreporter.write_sep("=", "skipped for a missing module", yellow=True)
    for module, reports in sorted(missing.items()):
        # a test file skipped as it is imported is reported once by its test
        # collector and once by its doctest collector: counted by node id
        files = sorted(
            {r.nodeid for r in reports if isinstance(r, pytest.CollectReport)}
        )
        tests = {r.nodeid for r in reports if not isinstance(r, pytest.CollectReport)}
        skipped = [f"{len(tests)} test{'s' * (len(tests) != 1)}"] * bool(tests)
        if files:
            whole = f"{len(files)} whole test file{'s' * (len(files) != 1)}"
            skipped.append(f"{whole} ({', '.join(files)})")
        what, install = ORACLES.get(
            module, (f"{module!r} is not installed", "pip install -e '.[test]'")
        )
        terminalreporter.write_line(f"{' and '.join(skipped)} skipped: {what}.")
        terminalreporter.write_line(f"To run them: {install}")


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request):
    """Every test runs under ``jax.numpy_dtype_promotion("strict")``: an
    implicit promotion is an error, so none hides in the library; the tests
    about promotion opt out (``@pytest.mark.promotion``)."""
    node = request.node
    if node.get_closest_marker("promotion") or node.get_closest_marker(
        "loose_promotion"
    ):
        yield
        return
    with jax.numpy_dtype_promotion("strict"):
        yield


def keras_promotion():
    """JAX's standard promotion, for Keras's own code (the oracle is not under
    test; some of its ops, e.g. sparsemax, promote int32 to float32)."""
    return jax.numpy_dtype_promotion("standard")


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def im2col_forms_everywhere(monkeypatch):
    """The "im2col" core's own forms run on small test cases too: its
    kernel gradient's blocked GEMMs (by default XLA's own below
    GEMM_MIN_ROWS positions or, at stride 1, GEMM_MIN_CHANNELS channels)
    and the stride-1 forward on folded examples (by default only from
    FOLD_MIN_MACS multiply-adds per output position)."""
    from conv1djax.lowering import im2col

    monkeypatch.setattr(im2col, "GEMM_MIN_ROWS", 0)
    monkeypatch.setattr(im2col, "GEMM_MIN_CHANNELS", 0)
    monkeypatch.setattr(im2col, "FOLD_MIN_MACS", 0)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, err_msg=""):
    """Asserts closeness relative to the expected array's scale."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, err_msg)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=atol * scale, err_msg=err_msg
    )


@functools.cache
def keras_sparsemax_is_fixed() -> bool:
    """Keras <= 3.15.1 computes sparsemax's threshold wrongly
    (keras-team/keras#23425): its output then does not sum to 1."""
    import keras

    with keras_promotion():
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


@functools.partial(jax.jit, static_argnums=(0,), compiler_options=FAST_COMPILE)
def values_and_vjps(fns, args, ct):
    """Each function's output and VJP w.r.t. every argument, in one compiled
    program (the cotangent cast to each output's dtype)."""
    results = []
    for fn in fns:
        y, vjp = jax.vjp(fn, *args)
        results.append((y, vjp(ct.astype(y.dtype))))
    return results


def keras_weight_names(klayer):
    """Keras's weight names ("kernel", "depthwise_kernel", ...), in the order
    of the layer's trainable variables (``stateless_call``'s order)."""
    return [w.path.split("/")[-1] for w in klayer.trainable_variables]


# ---- the Keras oracle: one harness for every layer family ---------------------------


def shaped(batch, spatial, channels, data_format):
    """The input shape of ``batch`` axes, ``spatial`` lengths and
    ``channels`` in ``data_format``."""
    if data_format == "channels_last":
        return (*batch, *spatial, channels)
    return (*batch, channels, *spatial)


def keras_shape(batch, shape):
    """The shape for Keras, the batch axes flattened into one (None when any
    of them is None)."""
    n = None if None in batch else math.prod(batch)
    return (n, *shape[len(batch) :])


def keras_initializer_attribute(klayer, weight):
    """The attribute of a Keras layer holding its weight's initializer: a
    depthwise layer's "kernel" has ``depthwise_initializer``, Conv2D's
    ``kernel_initializer``."""
    if weight == "kernel" and hasattr(klayer, "depth_multiplier"):
        return "depthwise_initializer"
    return {
        "kernel": "kernel_initializer",
        "depthwise_kernel": "depthwise_initializer",
        "pointwise_kernel": "pointwise_initializer",
        "bias": "bias_initializer",
    }[weight]


def np_zeros(shape, dtype=None):
    """A Keras initializer that compiles nothing."""
    return np.zeros(shape, dtype or "float32")


def keras_twin(cls, config, weights=("kernel", "pointwise_kernel", "bias")):
    """The unbuilt Keras layer of ``cls``'s name and ``config``, its
    ``weights``' initializers zeros that compile nothing (Keras's random ones
    would cost a compilation per shape)."""
    import keras

    klayer = getattr(keras.layers, cls.__name__)(**config)
    for weight in weights:
        attr = keras_initializer_attribute(klayer, weight)
        if hasattr(klayer, attr):
            setattr(klayer, attr, np_zeros)
    return klayer


def keras_initialize_with(klayer, params):
    """Makes an unbuilt Keras layer's initializers give ``params`` (array
    initializers: no compilation of a Keras initializer per shape)."""
    import keras

    for name, value in params.items():
        attr = keras_initializer_attribute(klayer, name)
        assert hasattr(klayer, attr), (klayer, attr)
        setattr(klayer, attr, keras.initializers.get(np.asarray(value)))


def check_keras_weights(klayer, params):
    """Keras's weights have our params' names, shapes and values."""
    weights = {w.path.split("/")[-1]: np.asarray(w) for w in klayer.weights}
    assert sorted(weights) == sorted(params)
    for name, value in weights.items():
        np.testing.assert_array_equal(value, params[name], err_msg=name)


def keras_layer(cls, config, input_shape, params):
    """The Keras layer of ``cls``'s name and ``config``, built for
    ``input_shape``, its weights ``params`` (set by their names)."""
    import keras

    klayer = getattr(keras.layers, cls.__name__)(**config)
    keras_initialize_with(klayer, params)
    klayer.build(input_shape)
    check_keras_weights(klayer, params)
    return klayer


def check_against_keras(
    cls, config, batch, spatial, channels, seed, *, keras_config=None,
    keras_spatial=None, keras_input=None, data_seed=None, rtol=RTOL,
):  # fmt: skip
    """The oracle: ``cls(**config)`` on a ``batch`` + ``spatial`` +
    ``channels`` input against the Keras layer of the same name (of
    ``keras_config``, on ``keras_input(x)`` of ``keras_spatial`` lengths
    when given), with the same random params: values and the VJP w.r.t.
    the input and every param, one compiled program (compare_with_keras).
    Returns our output."""
    spec = cls(**config)
    shape = shaped(batch, spatial, channels, spec.data_format)
    params = random_params(spec, shape, seed)
    kshape = shaped(batch, keras_spatial or spatial, channels, spec.data_format)
    klayer = keras_layer(
        cls, config if keras_config is None else keras_config,
        keras_shape(batch, kshape), params,
    )  # fmt: skip
    x = normal(seed if data_seed is None else data_seed, shape)
    y = compare_with_keras(
        spec, klayer, params, x, batch, rtol=rtol, keras_input=keras_input
    )
    assert y.shape == spec.compute_output_shape(shape)
    return y


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
        with keras_promotion():
            y, _ = klayer.stateless_call(
                [weights[n] for n in knames],
                [],
                x.reshape((-1, *x.shape[len(batch) :])),
            )
        return y.reshape((*batch, *y.shape[1:]))

    args = [x] + [params[n] for n in names]
    ct = normal(1, jax.eval_shape(ours, *args).shape)
    (y, grads), (y_k, grads_k) = values_and_vjps((ours, theirs), args, ct)
    assert y.shape == y_k.shape
    assert y.dtype == y_k.dtype
    assert_close(y, y_k, rtol=rtol)
    for name, g, g_k in zip(["x", *names], grads, grads_k, strict=True):
        assert_close(g, g_k, rtol=rtol, err_msg=f"VJP w.r.t. {name}")
    return y


# ---- the oracle sweeps: seeded random configs of every convolution family ---------
#
# ``sweep_case(cls, seed)`` is ``(config, batch, spatial, channels)``: a
# config of ``cls``, its input's batch axes, spatial lengths and channel
# count. The test_keras_oracle.py sweep runs every case against Keras; the
# shape and config tests reuse the N-d and depthwise ones.

# All Keras activation names but "threshold", which has no defaults.
ACTIVATIONS_1D = [
    None, "relu", "tanh", "sigmoid", "gelu", "elu", "selu", "softmax", "silu",
    "swish", "softplus", "softsign", "leaky_relu", "relu6", "celu", "mish",
    "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "linear",
    "exponential", "log_sigmoid", "log_softmax", "sparse_plus", "squareplus",
    "soft_shrink", "hard_shrink", "tanh_shrink", "sparse_sigmoid", "sparsemax",
    "glu",
]  # fmt: skip
ACTIVATIONS_ND = [
    None, "linear", "relu", "gelu", "tanh", "softmax", "sigmoid", "silu", "elu",
    "log_softmax", "glu", "hard_sigmoid",
]  # fmt: skip
ACTIVATIONS_DW = [
    None, "linear", "relu", "gelu", "softmax", "tanh", "sigmoid", "elu",
    "log_softmax",
]  # fmt: skip
# They act along the last axis: the sweeps keep it the channel axis.
LAST_AXIS_ACTIVATIONS_ND = ("softmax", "log_softmax", "glu")
LAST_AXIS_ACTIVATIONS_DW = ("softmax", "log_softmax")

_DW_SEED_BASE = {
    "DepthwiseConv1D": 10_000,
    "DepthwiseConv2D": 20_000,
    "SeparableConv1D": 30_000,
    "SeparableConv2D": 40_000,
}


def _separable(cls):
    return cls.__name__.startswith("Separable")


def _activations_1d():
    """ACTIVATIONS_1D less sparsemax where Keras's is wrong (keras#23425),
    decided lazily (it imports Keras)."""
    if "sparsemax" in ACTIVATIONS_1D and not keras_sparsemax_is_fixed():
        ACTIVATIONS_1D.remove("sparsemax")
    return ACTIVATIONS_1D


def _conv1d_case(seed):
    r = np.random.default_rng(seed)
    k = int(r.integers(1, 8))
    if r.random() < 0.5:
        strides, dilation = int(r.integers(1, 5)), 1
    else:
        strides, dilation = 1, int(r.integers(1, 5))
    groups = int(r.choice([1, 1, 2, 3, 4]))
    config = dict(
        filters=groups * int(r.integers(1, 4)) * 2,  # even, for glu
        kernel_size=k if r.random() < 0.5 else (k,),
        strides=strides,
        padding=str(r.choice(["valid", "same", "causal", "SAME", "Causal"])),
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=dilation,
        groups=groups,
        activation=_activations_1d()[int(r.integers(len(_activations_1d())))],
        use_bias=bool(r.random() < 0.8),
    )
    if config["activation"] in ("glu", "softmax", "log_softmax", "sparsemax"):
        # they act along the last axis: keep it the (even, >= 2) channel axis
        config["data_format"] = "channels_last"
    channels = groups * int(r.integers(1, 4))
    k_eff = (k - 1) * dilation + 1
    low = k_eff if config["padding"] == "valid" else 1
    steps = int(r.integers(low, low + 14))
    batch = [(2,), (3,), (2, 3), (1, 2, 2)][int(r.integers(4))]
    return config, batch, steps, channels


def _conv1d_transpose_case(seed):
    r = np.random.default_rng(10_000 + seed)
    k = int(r.integers(1, 8))
    if r.random() < 0.6:
        strides, dilation = int(r.integers(1, 5)), 1
    else:
        strides, dilation = 1, int(r.integers(1, 4))
    output_padding = None
    if r.random() < 0.4:
        output_padding = int(r.integers(0, strides))
        if output_padding == 0 and ((k - 1) * dilation + 1) % 2 == 0:
            output_padding = None  # with padding="same" a 1-step input gives 0 steps
    config = dict(
        filters=int(r.integers(1, 4)) * 2,
        kernel_size=k,
        strides=strides,
        padding=str(r.choice(["valid", "same", "Valid"])),
        output_padding=output_padding,
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=dilation,
        activation=_activations_1d()[int(r.integers(len(_activations_1d())))],
        use_bias=bool(r.random() < 0.8),
    )
    if config["activation"] in ("glu", "softmax", "log_softmax", "sparsemax"):
        config["data_format"] = "channels_last"
    channels = int(r.integers(1, 6))
    steps = int(r.integers(1, 12))
    batch = [(2,), (3,), (2, 3)][int(r.integers(3))]
    return config, batch, steps, channels


def per_axis(r, rank, low, high):
    return tuple(int(v) for v in r.integers(low, high + 1, rank))


def _int_or_tuple(r, values):
    """An int when every axis has the same value (half of the time)."""
    if len(set(values)) == 1 and r.random() < 0.5:
        return values[0]
    return values


def _strides_and_dilation(r, rank, max_stride, max_dilation):
    """Keras refuses max(strides) > 1 together with max(dilation_rate) > 1."""
    mode = r.random()
    ones = (1,) * rank
    if mode < 0.45:
        return per_axis(r, rank, 1, max_stride), ones
    if mode < 0.85:
        return ones, per_axis(r, rank, 1, max_dilation)
    return ones, ones


def k_eff_of(kernel, dilation):
    return tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))


def _conv_nd_case(rank, seed):
    """A random Conv2D/Conv3D config, its batch shape, spatial lengths and
    channel count."""
    r = np.random.default_rng(1000 * rank + seed)
    kernel = per_axis(r, rank, 1, 4 if rank == 2 else 3)
    if r.random() < 0.3:
        kernel = (kernel[0],) * rank
    strides, dilation = _strides_and_dilation(r, rank, 3, 3 if rank == 2 else 2)
    groups = int(r.choice([1, 1, 2, 3]))
    activation = ACTIVATIONS_ND[int(r.integers(len(ACTIVATIONS_ND)))]
    filters = groups * int(r.integers(1, 6 // groups + 1))
    if activation in LAST_AXIS_ACTIVATIONS_ND and filters % 2:
        filters *= 2  # glu halves the channel axis; softmax warns on 1 channel
    config = dict(
        filters=filters,
        kernel_size=_int_or_tuple(r, kernel),
        strides=_int_or_tuple(r, strides),
        padding=str(r.choice(["valid", "same", "SAME", "Valid"])),
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=_int_or_tuple(r, dilation),
        groups=groups,
        activation=activation,
        use_bias=bool(r.random() < 0.75),
    )
    if activation in LAST_AXIS_ACTIVATIONS_ND:
        config["data_format"] = "channels_last"
    channels = groups * int(r.integers(1, 6 // groups + 1))
    high = 9 if rank == 2 else 5
    spatial = []
    for k_eff in k_eff_of(kernel, dilation):
        low = k_eff if config["padding"].lower() == "valid" else 1
        spatial.append(int(r.integers(low, max(low, high) + 1)))
    batch = (
        [(2,), (3,), (2, 2)][int(r.integers(3))]
        if rank == 2
        else [(2,), (1, 2)][int(r.integers(2))]
    )
    return config, batch, tuple(spatial), channels


def _conv_nd_transpose_case(rank, seed):
    """A random Conv2DTranspose/Conv3DTranspose config (no groups: Keras has
    none), its batch shape, spatial lengths and channel count."""
    r = np.random.default_rng(50_000 + 1000 * rank + seed)
    kernel = per_axis(r, rank, 1, 4 if rank == 2 else 3)
    if r.random() < 0.3:
        kernel = (kernel[0],) * rank
    strides, dilation = _strides_and_dilation(r, rank, 3 if rank == 2 else 2, 2)
    output_padding = None
    if r.random() < 0.5:
        output_padding = tuple(int(r.integers(0, s)) for s in strides)
        if len(set(strides)) == 1:
            output_padding = _int_or_tuple(r, (output_padding[0],) * rank)
    activation = ACTIVATIONS_ND[int(r.integers(len(ACTIVATIONS_ND)))]
    filters = int(r.integers(1, 6))
    if activation in LAST_AXIS_ACTIVATIONS_ND and filters % 2:
        filters += 1
    config = dict(
        filters=filters,
        kernel_size=_int_or_tuple(r, kernel),
        strides=_int_or_tuple(r, strides),
        padding=str(r.choice(["valid", "same", "Same", "VALID"])),
        output_padding=output_padding,
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=_int_or_tuple(r, dilation),
        activation=activation,
        use_bias=bool(r.random() < 0.75),
    )
    if activation in LAST_AXIS_ACTIVATIONS_ND:
        config["data_format"] = "channels_last"
    channels = int(r.integers(1, 7))
    spatial = list(per_axis(r, rank, 1, 6 if rank == 2 else 4))
    if output_padding is not None and config["padding"].lower() == "same":
        # Keras's length is then (L - 1) * s + k_eff % 2 + output_padding:
        # empty for L = 1, an even k_eff and output_padding 0.
        ops = (
            (output_padding,) * rank
            if isinstance(output_padding, int)
            else output_padding
        )
        for i, (k_eff, op) in enumerate(
            zip(k_eff_of(kernel, dilation), ops, strict=True)
        ):
            if spatial[i] == 1 and k_eff % 2 == 0 and op == 0:
                spatial[i] = 2
    batch = (
        [(2,), (3,), (2, 2)][int(r.integers(3))]
        if rank == 2
        else [(2,), (1, 2)][int(r.integers(2))]
    )
    return config, batch, tuple(spatial), channels


def _at_least_one_above_one(r, values):
    if max(values) > 1:
        return values
    values = list(values)
    values[int(r.integers(len(values)))] = 2
    return tuple(values)


def _strides_and_dilation_dw(r, rank):
    """Strides only, dilation only, both > 1 (Keras allows it for the
    depthwise and separable layers), or neither."""
    mode = r.random()
    ones = (1,) * rank
    if mode < 0.3:
        return per_axis(r, rank, 1, 3), ones
    if mode < 0.6:
        return ones, per_axis(r, rank, 1, 3)
    if mode < 0.88:
        strides = _at_least_one_above_one(r, per_axis(r, rank, 1, 3))
        return strides, _at_least_one_above_one(r, per_axis(r, rank, 1, 3))
    return ones, ones


def _depthwise_case(cls, seed):
    """A random config of ``cls``, its batch shape, spatial lengths and
    channel count."""
    rank = cls.rank
    r = np.random.default_rng(_DW_SEED_BASE[cls.__name__] + seed)
    kernel = per_axis(r, rank, 1, 4 if rank == 2 else 5)
    if rank > 1 and r.random() < 0.3:
        kernel = (kernel[0],) * rank
    strides, dilation = _strides_and_dilation_dw(r, rank)
    activation = ACTIVATIONS_DW[seed % len(ACTIVATIONS_DW)]  # each one, every layer
    config = dict(
        kernel_size=_int_or_tuple(r, kernel),
        strides=_int_or_tuple(r, strides),
        padding=str(r.choice(["valid", "same", "SAME", "Valid"])),
        depth_multiplier=int(r.integers(1, 4)),
        data_format=str(r.choice(["channels_last", "channels_first"])),
        dilation_rate=_int_or_tuple(r, dilation),
        activation=activation,
        use_bias=bool(r.random() < 0.75),
    )
    channels = int(r.integers(1, 5))
    if _separable(cls):
        config["filters"] = int(r.integers(1, 6))
    if activation in LAST_AXIS_ACTIVATIONS_DW:
        config["data_format"] = "channels_last"
        # softmax over one channel is constant (and Keras warns)
        if _separable(cls):
            config["filters"] = max(config["filters"], 2)
        elif channels * config["depth_multiplier"] < 2:
            channels = 2
    high = 9 if rank == 2 else 14
    spatial = []
    for k_eff in k_eff_of(kernel, dilation):
        low = k_eff if config["padding"].lower() == "valid" else 1
        spatial.append(int(r.integers(low, max(low, high) + 1)))
    batch = [(2,), (3,), (2, 2)][int(r.integers(3))]
    return config, batch, tuple(spatial), channels


def sweep_case(cls, seed):
    """The sweep's case ``seed`` of ``cls``: ``(config, batch, spatial,
    channels)``."""
    name = cls.__name__
    if name == "Conv1D":
        config, batch, steps, channels = _conv1d_case(seed)
        return config, batch, (steps,), channels
    if name == "Conv1DTranspose":
        config, batch, steps, channels = _conv1d_transpose_case(seed)
        return config, batch, (steps,), channels
    if name in _DW_SEED_BASE:
        return _depthwise_case(cls, seed)
    make = _conv_nd_transpose_case if cls.transposed else _conv_nd_case
    return make(cls.rank, seed)


# cases per class
SWEEP_SIZES = {
    "Conv1D": 240,
    "Conv1DTranspose": 160,
    "Conv2D": 60,
    "Conv3D": 24,
    "Conv2DTranspose": 48,
    "Conv3DTranspose": 20,
    "DepthwiseConv1D": 30,
    "DepthwiseConv2D": 40,
    "SeparableConv1D": 30,
    "SeparableConv2D": 30,
}


def sweep(classes):
    """``pytest.param((cls, seed), id="Cls-seed")`` for every case of each
    class."""
    return [
        pytest.param((cls, seed), id=f"{cls.__name__}-{seed}")
        for cls in classes
        for seed in range(SWEEP_SIZES[cls.__name__])
    ]


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
