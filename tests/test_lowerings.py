"""Every lowering equals the reference path, values and gradients.

``impl="reference"`` is one ``lax.conv_general_dilated`` (checked against
Keras in test_keras_oracle.py); the CPU lowerings (space-to-depth, polyphase,
channels-last layout, and the "direct", "blockdiag", "split", "shift" and "fft"
cores) are forced one by one on random configs and compared with it: the 1-D
convolutions first, then the 2-D and 3-D ones (which share the 1-D core:
the rewrites, the layout and the "direct", "blockdiag" and "shift" cores),
then the depthwise and separable layers.
"""

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import conv1djax as cj
from conftest import assert_close, normal, random_params, specs_values_and_vjps
from conv1djax.lowering import (
    adjoint,
    choose,
    dispatch,
    eigen,
    fft,
    im2col,
    layout,
    reference,
    rewrites,
    shift,
    xla_conv,
)

CORES = choose.CORES

# The im2col core's GEMMs and folds run on these small cases too (conftest).
pytestmark = pytest.mark.usefixtures("im2col_forms_everywhere")

N_CASES = 24


def _case(seed):
    """A random spec and input shape, both layers, every argument."""
    r = np.random.default_rng(1000 + seed)
    transposed = seed % 2 == 1
    groups = int(r.choice([1, 2, 3, 4]))
    per_group = int(r.integers(1, 4))
    channels = groups * per_group
    depthwise = r.random() < 0.25
    if depthwise:
        per_group, channels = 1, groups
    filters = groups * int(r.integers(1, 4))
    long_kernel = r.random() < 0.2
    k = int(r.integers(30, 70)) if long_kernel else int(r.integers(1, 8))
    if r.random() < 0.5:
        strides, dilation = int(r.integers(1, 5)), 1
    else:
        strides, dilation = 1, int(r.integers(1, 4))
    data_format = str(r.choice(["channels_last", "channels_first"]))
    batch = [(2,), (3,), (2, 2)][int(r.integers(3))]
    extent = (k - 1) * dilation + 1
    if transposed:
        output_padding = None
        if strides > 1 and r.random() < 0.5:
            output_padding = int(r.integers(0, strides))
            if output_padding == 0 and extent % 2 == 0:
                output_padding = None  # a 1-step input could give 0 steps
        spec = cj.Conv1DTranspose(
            filters,
            k,
            strides=strides,
            padding=str(r.choice(["valid", "same"])),
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation,
            groups=groups,
        )
        steps = int(r.integers(1, 12))
    else:
        spec = cj.Conv1D(
            filters,
            k,
            strides=strides,
            padding=str(r.choice(["valid", "same", "causal"])),
            data_format=data_format,
            dilation_rate=dilation,
            groups=groups,
        )
        low = extent if spec.padding == "valid" else 1
        steps = int(r.integers(low, low + 20))
    if data_format == "channels_last":
        shape = (*batch, steps, channels)
    else:
        shape = (*batch, channels, steps)
    return spec, shape


@pytest.mark.parametrize("seed", range(N_CASES))
def test_every_lowering_matches_the_reference(seed):
    spec, shape = _case(seed)
    shapes = spec.param_shapes(shape)
    params = {n: normal(seed + i, s) for i, (n, s) in enumerate(sorted(shapes.items()))}
    x = normal(100 + seed, shape)
    impls = ("reference", "auto", *CORES)
    specs = tuple(dataclasses.replace(spec, impl=impl) for impl in impls)
    ct = normal(200 + seed, jax.eval_shape(spec.apply, params, x).shape)
    (y_ref, g_ref), *others = specs_values_and_vjps(specs, params, x, ct)
    for impl, (y, g) in zip(impls[1:], others, strict=True):
        assert_close(y, y_ref, err_msg=f"{impl} values, {spec}")
        for name, a, b in zip(("x", "params"), g, g_ref, strict=True):
            for leaf, leaf_ref in zip(
                jax.tree.leaves(a), jax.tree.leaves(b), strict=True
            ):
                assert_close(leaf, leaf_ref, err_msg=f"{impl} VJP w.r.t. {name}")


@pytest.mark.parametrize(
    "spec, shape",
    [
        # groups of several channels, at most UNROLLED_MAX_POSITIONS kernel
        # positions times channels: the kernel gradient's sums per
        # (position, channel), unrolled ...
        (cj.Conv1D(32, 2, groups=16, padding="same"), (2, 11, 32)),
        (cj.Conv1D(16, 2, groups=16, padding="same"), (2, 11, 32)),
        (cj.Conv1D(8, 2, groups=4, padding="same"), (2, 11, 8)),
        # ... more, past GROUP_CONV_GRAD_MAX_GROUPS groups: looped ...
        (cj.Conv1D(40, 3, groups=40, padding="causal", dilation_rate=2), (2, 13, 80)),
        # ... and up to it: one dense convolution per group (dilated,
        # several filters per group, 2-D, 3-D)
        (cj.Conv1D(16, 3, groups=16, padding="causal", dilation_rate=2), (2, 13, 32)),
        (cj.Conv1D(24, 3, groups=8, padding="same"), (2, 12, 16)),
        (
            cj.Conv2D(8, (2, 3), groups=4, padding="same", dilation_rate=(2, 1)),
            (2, 7, 6, 12),
        ),
        (cj.Conv3D(4, 2, groups=2, padding="same"), (1, 4, 5, 3, 6)),
        # strided depthwise: space-to-depth makes 9 groups of 9 channels
        (cj.Conv2D(9, (1, 2), strides=3, groups=9), (2, 7, 8, 9)),
        # depthwise, steps fewer than and not a multiple of PARTIAL_STEPS
        (cj.Conv1D(4, 3, groups=4, padding="same"), (3, 5, 4)),
        (cj.Conv1D(4, 3, groups=4, padding="same"), (3, 21, 4)),
        # ... looped, steps fewer than and not a multiple of
        # LOOPED_PARTIAL_STEPS, and a multiple of it
        (cj.Conv1D(4, 5, groups=4, padding="same"), (2, 9, 4)),
        (cj.Conv1D(4, 5, groups=4, padding="same"), (2, 37, 4)),
        (cj.Conv1D(4, 5, groups=4, padding="valid"), (2, 36, 4)),
        (cj.Conv2D(3, 3, groups=3, padding="same"), (2, 18, 5, 3)),
        # ... by rows of the kernel (dilated, steps off a multiple of
        # PARTIAL_STEPS, 3-D)
        (
            cj.DepthwiseConv2D((2, 5), padding="same", dilation_rate=(2, 1)),
            (2, 9, 11, 3),
        ),
        (cj.Conv2D(2, (3, 3), groups=2, padding="valid"), (1, 12, 7, 2)),
        (cj.Conv3D(2, (2, 1, 3), groups=2, padding="same"), (1, 9, 4, 5, 2)),
        # ... by positions again, fewer steps along the first axis than
        # PARTIAL_STEPS
        (cj.Conv2D(3, 3, groups=3, padding="same"), (2, 5, 6, 3)),
        (cj.DepthwiseConv1D(3, depth_multiplier=2), (2, 19, 3)),
        (cj.Conv2D(6, (2, 2), groups=6, padding="same"), (2, 9, 5, 6)),
    ],
)
def test_shift_kernel_gradient_paths_match_the_reference(spec, shape):
    seed = sum(shape)
    shapes = spec.param_shapes(shape)
    params = {n: normal(seed + i, s) for i, (n, s) in enumerate(sorted(shapes.items()))}
    x = normal(seed, shape)
    specs = tuple(dataclasses.replace(spec, impl=i) for i in ("reference", "shift"))
    ct = normal(seed + 1, jax.eval_shape(spec.apply, params, x).shape)
    (y_ref, g_ref), (y, g) = specs_values_and_vjps(specs, params, x, ct)
    assert_close(y, y_ref)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        assert_close(a, b)


@pytest.mark.parametrize(
    "spec, shape, regions",
    [
        (cj.DepthwiseConv1D(9, padding="same"), (2, 20, 3), 3),
        (cj.Conv1D(4, 5, groups=4, padding="causal", dilation_rate=2), (2, 13, 4), 2),
        # every output reads padding on both sides: one region
        (cj.DepthwiseConv1D(9, padding="same"), (1, 3, 2), 1),
        (
            cj.DepthwiseConv2D((3, 5), padding="same", dilation_rate=(2, 1)),
            (2, 9, 7, 3),
            9,
        ),
        (cj.DepthwiseConv2D(2, padding="same"), (2, 5, 6, 3), 4),
        # 3-D: the padded copy (REGIONS_MAX_RANK)
        (cj.Conv3D(2, 3, groups=2, padding="same"), (1, 4, 5, 3, 2), 0),
        (cj.SeparableConv2D(4, 3, padding="same"), (2, 6, 5, 3), 9),
    ],
)
def test_the_shift_forward_by_regions_matches_the_reference(
    spec, shape, regions, monkeypatch
):
    """A depthwise forward of more than IN_FUSION_MAX_TAPS taps, not
    differentiated (the other tests take values from a VJP, whose forward
    pads first), in 1-D or 2-D, runs by regions: the outputs that read no
    padding and the edges', concatenated."""
    params = random_params(spec, shape, sum(shape))
    x = normal(1, shape)
    ours = dataclasses.replace(spec, impl="shift")
    seen = []
    real = shift._shift_and_add

    def counted(x_, *args):
        seen.append(x_.shape)
        return real(x_, *args)

    monkeypatch.setattr(shift, "_shift_and_add", counted)
    jax.make_jaxpr(ours.apply)(params, x)
    assert len(seen) == 1 + regions  # the call that splits, then each region
    reference = dataclasses.replace(spec, impl="reference")
    assert_close(ours.apply(params, x), reference.apply(params, x))


@pytest.mark.parametrize(
    "spec",
    [
        cj.Conv1D(4, 3, groups=2, dilation_rate=2, padding="causal", impl="shift"),
        cj.Conv1DTranspose(4, 3, strides=2, groups=4, impl="shift"),
        cj.Conv1DTranspose(2, 5, strides=2, padding="same", impl="fft"),
        cj.Conv1D(3, 3, dilation_rate=2, data_format="channels_first", impl="ncw"),
    ],
    ids=["shift", "shift-transposed", "fft-transposed", "ncw"],
)
def test_check_grads_second_order(spec):
    """The custom JVPs of "shift" and "ncw" and autodiff of "fft", against
    finite differences in float64, forward and reverse mode, to second
    order."""
    with jax.enable_x64(True):
        shape = (1, 7, 4) if spec.data_format == "channels_last" else (1, 4, 7)
        params = spec.param_shapes(shape)
        kernel = normal(1, params["kernel"], np.float64)
        x = normal(2, shape, np.float64)

        @jax.jit
        def f(x_, kernel_):
            return spec.apply({"kernel": kernel_, "bias": jnp.zeros(spec.filters)}, x_)

        check_grads(f, (x, kernel), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("impl", ["shift", "fft", "ncw"])
def test_jvp_and_vmap_over_params_match_the_reference(impl):
    spec = cj.Conv1D(6, 4, groups=3, padding="same", impl=impl)
    ref = dataclasses.replace(spec, impl="reference")
    x = normal(0, (2, 10, 6))
    kernels = normal(1, (3, 4, 2, 6))
    tangent = (normal(2, x.shape), normal(3, kernels.shape[1:]))

    def f(s, x_, k_):
        return s.apply({"kernel": k_, "bias": jnp.zeros(6)}, x_)

    ours = jax.jvp(functools.partial(f, spec), (x, kernels[0]), tangent)
    theirs = jax.jvp(functools.partial(f, ref), (x, kernels[0]), tangent)
    for a, b in zip(ours, theirs, strict=True):
        assert_close(a, b)
    batched = jax.vmap(functools.partial(f, spec, x))(kernels)
    assert_close(batched, jax.vmap(functools.partial(f, ref, x))(kernels))
    grads = jax.vmap(jax.grad(lambda k_: jnp.sum(f(spec, x, k_) ** 2)))(kernels)
    grads_ref = jax.vmap(jax.grad(lambda k_: jnp.sum(f(ref, x, k_) ** 2)))(kernels)
    assert_close(grads, grads_ref)


def test_fft_error_stays_at_float32_rounding():
    """511 taps over 2048 steps: the FFT's error against a float64 reference
    is no larger than the direct float32 convolution's, give or take 2x."""
    x = normal(0, (2, 2048, 4))
    kernel = normal(1, (511, 4, 4)) / np.sqrt(511 * 4)
    spec = cj.Conv1D(4, 511, padding="same", use_bias=False)
    with jax.enable_x64(True):
        exact = dataclasses.replace(spec, impl="reference").apply(
            {"kernel": kernel.astype(jnp.float64)}, x.astype(jnp.float64)
        )
        exact = np.asarray(exact)
    errors = {}
    for impl in ("fft", "reference"):
        y = dataclasses.replace(spec, impl=impl).apply({"kernel": kernel}, x)
        errors[impl] = np.max(np.abs(np.asarray(y, np.float64) - exact))
    scale = np.max(np.abs(exact))
    assert errors["fft"] < 2e-5 * scale
    assert errors["fft"] < 2 * errors["reference"] + 1e-7 * scale, errors


def assert_matches_reference(spec, shape, seed):
    """Values and VJPs of ``spec`` (params, input) against the reference
    path's at random params, input and cotangent; returns them."""
    params = random_params(spec, shape, seed)
    x = normal(seed + 1, shape)
    ct = normal(seed + 2, jax.eval_shape(spec.apply, params, x).shape)
    reference_spec = dataclasses.replace(spec, impl="reference")
    (y, g), (y_ref, g_ref) = specs_values_and_vjps(
        (spec, reference_spec), params, x, ct
    )
    assert_close(y, y_ref)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        assert_close(a, b)
    return params, x, ct


# Convolutions that impl="auto" runs forward with one core and differentiates
# with the "fft" core's derivatives (choose.fft_derivatives).
FFT_DERIVATIVES = [
    (cj.Conv1D(20, 34, groups=4, padding="same"), (2, 40, 8)),
    (cj.Conv1DTranspose(32, 33, groups=8, data_format="channels_first"), (2, 8, 11)),
    (cj.Conv1D(8, 66, strides=2, groups=2, padding="causal"), (2, 80, 4)),
    (cj.DepthwiseConv1D(32, depth_multiplier=4, dilation_rate=2), (2, 75, 8)),
    (cj.Conv1D(8, 40, padding="same"), (2, 50, 8)),
]
FFT_DERIVATIVES_IDS = ["blockdiag", "shift-transposed-ncw", "strided", "depthwise",
                       "direct"]  # fmt: skip


def _auto_core(spec, shape):
    """``(core, facts)``: the core impl="auto" picks for ``spec`` on a
    float32 CPU input of ``shape``, and the facts it was picked from."""
    channels = shape[1] if spec.data_format == "channels_first" else shape[-1]
    depthwise = "Depthwise" in type(spec).__name__
    groups = channels if depthwise else spec.groups
    filters = channels * spec.depth_multiplier if depthwise else spec.filters
    facts = dict(kernel_size=spec.kernel_size, strides=spec.strides, groups=groups,
                 channels=channels, filters=filters, dtype=jnp.float32)  # fmt: skip
    core = choose.choose_impl(transposed=spec.transposed, backend="cpu",
                              channels_first=spec.data_format == "channels_first",
                              **facts)  # fmt: skip
    return core, facts


def _fft_derivatives_chosen(spec, shape):
    """Whether impl="auto" runs ``spec`` with the FFT core's derivatives."""
    core, facts = _auto_core(spec, shape)
    return core, choose.fft_derivatives(core, **facts)


@pytest.mark.parametrize("spec, shape", FFT_DERIVATIVES, ids=FFT_DERIVATIVES_IDS)
def test_fft_derivatives_match_the_reference(spec, shape):
    """Values and VJPs against the reference path; the forward program has no
    FFT, its gradient's has."""
    core, chosen = _fft_derivatives_chosen(spec, shape)
    assert chosen and core not in ("fft", "reference"), core
    params, x, _ = assert_matches_reference(spec, shape, 10)
    forward = str(jax.make_jaxpr(spec.apply)(params, x))
    grad = str(
        jax.make_jaxpr(jax.grad(lambda p: jnp.sum(spec.apply(p, x) ** 2)))(params)
    )
    assert "fft" not in forward and "fft" in grad


@pytest.mark.parametrize(
    "spec, shape", FFT_DERIVATIVES[:3], ids=FFT_DERIVATIVES_IDS[:3]
)
def test_fft_derivatives_check_grads_second_order(spec, shape):
    """Forward and reverse mode to second order against finite differences,
    float64 (the derivatives' own derivatives are the FFT core's)."""
    with jax.enable_x64(True):
        params = jax.tree.map(
            lambda a: a.astype(jnp.float64), random_params(spec, shape, 20)
        )
        x = normal(3, shape, np.float64)
        check_grads(jax.jit(spec.apply), (params, x), order=2, modes=("fwd", "rev"))


def test_fft_derivatives_rule():
    facts = dict(strides=1, groups=8, channels=64, filters=64, dtype=jnp.float32)
    taps = choose.FFT_DERIVATIVES_MIN_TAPS
    assert choose.fft_derivatives("split", kernel_size=taps, **facts)
    assert not choose.fft_derivatives("split", kernel_size=taps - 1, **facts)
    assert not choose.fft_derivatives("fft", kernel_size=taps, **facts)
    assert not choose.fft_derivatives("reference", kernel_size=taps, **facts)
    assert not choose.fft_derivatives("split", kernel_size=(taps, 1), **facts)
    bf16 = {**facts, "dtype": jnp.bfloat16}
    assert not choose.fft_derivatives("split", kernel_size=taps, **bf16)
    # the taps of the stride-1 problem count
    assert not choose.fft_derivatives("split", kernel_size=2 * taps - 2,
                                      **{**facts, "strides": 2})  # fmt: skip
    assert choose.fft_derivatives("split", kernel_size=2 * taps - 1,
                                  **{**facts, "strides": 2})  # fmt: skip
    # a depthwise kernel of one filter per channel keeps "shift"'s own
    depthwise = {**facts, "groups": 64, "filters": 64}
    assert not choose.fft_derivatives("shift", kernel_size=48, **depthwise)
    assert choose.fft_derivatives("blockdiag", kernel_size=48, **depthwise)
    multiplier = {**depthwise, "filters": 64 * choose.FFT_DERIVATIVES_MIN_PRODUCTS}
    assert choose.fft_derivatives("shift", kernel_size=48, **multiplier)


# Strided 1-D transposed convolutions that impl="auto" runs with XLA's input
# gradient (choose.xla_input_grad): the polyphase forward and kernel
# gradient, the reference path's input gradient.
_NCW_TRANSPOSE = cj.Conv1DTranspose(
    4, 7, strides=4, padding="same", output_padding=1, data_format="channels_first"
)
XLA_INPUT_GRAD = [
    (cj.Conv1DTranspose(6, 4, strides=2, padding="same"), (2, 9, 5)),
    (cj.Conv1DTranspose(3, 5, strides=3), (3, 7, 4)),
    (_NCW_TRANSPOSE, (2, 3, 6)),
    (cj.Conv1DTranspose(5, 16, strides=8, padding="same", use_bias=False), (1, 5, 7)),
]
XLA_INPUT_GRAD_IDS = ["same", "valid-odd", "ncw-output-padding", "s8-no-bias"]


def _xla_input_grad_chosen(spec, shape):
    core, _ = _auto_core(spec, shape)
    return choose.xla_input_grad(
        core, transposed=True, kernel_size=spec.kernel_size, strides=spec.strides,
        dilation=spec.dilation_rate, groups=spec.groups, dtype=jnp.float32,
    )  # fmt: skip


@pytest.mark.parametrize("spec, shape", XLA_INPUT_GRAD, ids=XLA_INPUT_GRAD_IDS)
def test_xla_input_grad_matches_the_reference(spec, shape):
    """Values and VJPs against the reference path; the input's VJP runs the
    reference path's own strided convolution."""
    assert _xla_input_grad_chosen(spec, shape)
    params, x, ct = assert_matches_reference(spec, shape, 30)
    reference_spec = dataclasses.replace(spec, impl="reference")

    def windows(s):
        def input_vjp(p, v, c):
            return jax.vjp(lambda u: s.apply(p, u), v)[1](c)

        text = jax.jit(input_vjp).lower(params, x, ct).compile().as_text()
        return re.findall(r" convolution\(.*?(window=\{[^}]*\})", text)

    ours = windows(spec)
    assert ours == windows(reference_spec), ours
    assert len(ours) == 1 and f"stride={spec.strides[0]}" in ours[0], ours


@pytest.mark.parametrize("spec, shape", XLA_INPUT_GRAD[:2], ids=XLA_INPUT_GRAD_IDS[:2])
def test_xla_input_grad_check_grads_second_order(spec, shape):
    """Forward and reverse mode to second order against finite differences,
    float64 (where the rule does not run: forced, as a float32 one would)."""
    with jax.enable_x64(True):
        params = jax.tree.map(
            lambda a: a.astype(jnp.float64), random_params(spec, shape, 31)
        )
        x = normal(6, shape, np.float64)

        conv = functools.partial(
            dispatch.conv_transpose, strides=spec.strides,
            padding=spec.paddings(shape[1:-1]), dilation_rate=spec.dilation_rate,
            groups=1, channels_first=False,
        )  # fmt: skip
        mixed = adjoint.with_input_grad_of(
            functools.partial(conv, impl="direct"),
            functools.partial(conv, impl="reference"),
        )

        def apply(p, v):
            return mixed(v, p["kernel"])

        check_grads(jax.jit(apply), (params, x), order=2, modes=("fwd", "rev"))


def test_the_xla_input_grad_rule():
    facts = dict(transposed=True, kernel_size=4, strides=2, dilation=1, groups=1,
                 dtype=jnp.float32)  # fmt: skip
    assert choose.xla_input_grad("direct", **facts)
    assert choose.xla_input_grad("im2col", **facts)
    for core in ("reference", "fft"):
        assert not choose.xla_input_grad(core, **facts)
    assert not choose.xla_input_grad("direct", **{**facts, "transposed": False})
    assert not choose.xla_input_grad("direct", **{**facts, "strides": 1})
    # a kernel no longer than the stride: the polyphase kernel is pointwise
    assert not choose.xla_input_grad("direct", **{**facts, "kernel_size": 2})
    assert choose.xla_input_grad("direct", **{**facts, "kernel_size": 3})
    assert not choose.xla_input_grad("direct", **{**facts, "dilation": 2})
    assert not choose.xla_input_grad("split", **{**facts, "groups": 2})
    for dtype in (jnp.bfloat16, jnp.float64):
        assert not choose.xla_input_grad("direct", **{**facts, "dtype": dtype})
    two_d = {**facts, "kernel_size": (4, 4), "strides": (2, 2), "dilation": (1, 1)}
    assert not choose.xla_input_grad("im2col", **two_d)


def test_the_block_diagonal_fft_rule():
    cpu = functools.partial(choose.choose_impl, transposed=False, strides=1,
                            dtype=jnp.float32, backend="cpu")  # fmt: skip
    depthwise = functools.partial(cpu, groups=5, channels=5, filters=5)
    taps = choose.FFT_DEPTHWISE_MIN_TAPS
    assert depthwise(kernel_size=taps - 1) == "blockdiag"
    assert depthwise(kernel_size=taps) == "fft"
    assert depthwise(kernel_size=taps, transposed=True) == "fft"
    assert depthwise(kernel_size=taps, dtype=jnp.bfloat16) == "blockdiag"
    assert cpu(kernel_size=(taps, 2), strides=(1, 1), groups=5, channels=5) == (
        "blockdiag"
    )
    # space-to-depth gives each group 2 channels
    assert depthwise(kernel_size=2 * taps, strides=2) == "blockdiag"
    grouped = functools.partial(cpu, groups=4, channels=8, filters=8)
    taps = choose.FFT_BLOCKDIAG_MIN_TAPS
    assert grouped(kernel_size=taps - 1) == "blockdiag"
    assert grouped(kernel_size=taps) == "fft"


def test_the_dense_fft_rule():
    cpu = functools.partial(choose.choose_impl, transposed=False, strides=1,
                            groups=1, dtype=jnp.float32, backend="cpu")  # fmt: skip
    wide = choose.FFT_DENSE_MIN_CHANNELS
    taps = choose.FFT_DENSE_MIN_TAPS
    assert cpu(kernel_size=taps, channels=wide, filters=wide) == "fft"
    assert cpu(kernel_size=taps, channels=wide, filters=wide,
               channels_first=True) == "fft"  # fmt: skip
    assert cpu(kernel_size=taps - 1, channels=wide, filters=wide) == "direct"
    assert cpu(kernel_size=taps, channels=wide // 2, filters=wide) == "direct"
    assert cpu(kernel_size=taps, channels=wide, filters=wide // 2) == "direct"
    assert cpu(kernel_size=taps, channels=wide) == "direct"  # filters unknown
    # space-to-depth: the stride multiplies the channels, divides the taps
    assert cpu(kernel_size=2 * taps, channels=wide // 2, filters=wide,
               strides=2) == "fft"  # fmt: skip
    assert cpu(kernel_size=taps, channels=wide, filters=wide,
               dtype=jnp.bfloat16) == "direct"  # fmt: skip


def test_the_split_fft_rule():
    """A short stride-1 1-D problem for the split core runs the FFT."""
    taps, most = choose.FFT_SPLIT_MIN_TAPS, choose.FFT_SHORT_MAX_OUTPUTS
    split = functools.partial(choose.choose_impl, transposed=False, strides=1,
                              groups=8, channels=64, filters=64,
                              dtype=jnp.float32, backend="cpu")  # fmt: skip
    assert split(kernel_size=taps, positions=most // 64) == "fft"
    assert split(kernel_size=taps, positions=most // 64, transposed=True) == "fft"
    assert split(kernel_size=taps, positions=most // 64 + 1) == "split"
    assert split(kernel_size=taps - 1, positions=most // 64) == "split"
    assert split(kernel_size=taps) == "split"  # positions unknown
    assert split(kernel_size=taps, positions=16, dtype=jnp.bfloat16) == "split"
    assert split(kernel_size=(taps, 1), strides=(1, 1), positions=16) == "split"
    assert split(kernel_size=2 * taps, strides=2, positions=16) == "split"


def test_the_shift_fft_rule():
    """A short stride-1 1-D problem for the shift core, of enough taps and
    filters per group, runs the FFT."""
    taps, most = choose.FFT_SHIFT_MIN_TAPS, choose.FFT_SHORT_MAX_OUTPUTS
    per_group = choose.FFT_SHIFT_MIN_FILTERS
    shift = functools.partial(choose.choose_impl, transposed=False, strides=1,
                              groups=16, channels=16, filters=16 * per_group,
                              dtype=jnp.float32, backend="cpu")  # fmt: skip
    outputs = most // (16 * per_group)
    assert shift(kernel_size=taps, positions=outputs) == "fft"
    assert shift(kernel_size=taps, positions=outputs, transposed=True) == "fft"
    assert shift(kernel_size=taps, positions=outputs + 1) == "shift"
    assert shift(kernel_size=taps - 1, positions=outputs) == "shift"
    assert shift(kernel_size=taps) == "shift"  # positions unknown
    fewer = 16 * (per_group - 1)
    assert shift(kernel_size=taps, positions=1, filters=fewer) == "shift"


@pytest.mark.parametrize(
    "spec,shape",
    [
        (
            cj.Conv1DTranspose(80, 50, groups=8, data_format="channels_first"),
            (3, 8, 21),
        ),
        (cj.Conv1D(96, 32, groups=16, padding="same"), (2, 20, 16)),
    ],
    ids=["split-transposed-ncw", "shift"],
)
def test_a_short_grouped_convolution_runs_the_fft_forward(spec, shape):
    """Sweep #27's shape (for the split core) and one for the shift core:
    values and VJPs equal the reference path's, and the forward program is
    an FFT."""
    params, x, _ = assert_matches_reference(spec, shape, 3)
    hlo = jax.jit(spec.apply).lower(params, x).as_text()
    assert "stablehlo.fft" in hlo and "convolution" not in hlo


def test_the_decision_rule():
    rule = functools.partial(
        choose.choose_impl, transposed=False, strides=1, dtype=jnp.float32
    )
    cpu = functools.partial(rule, backend="cpu")
    assert rule(kernel_size=3, groups=8, channels=64, backend="gpu") == "reference"
    assert rule(kernel_size=3, groups=8, channels=64, backend="tpu") == "reference"
    assert cpu(kernel_size=3, groups=1, channels=64) == "direct"
    # a 1x1 kernel is a matrix product, from IM2COL_MIN_CHANNELS channels on
    assert cpu(kernel_size=1, groups=1, channels=64) == "im2col"
    assert cpu(kernel_size=1, groups=1, channels=choose.IM2COL_MIN_CHANNELS) == (
        "im2col"
    )
    assert cpu(kernel_size=1, groups=1, channels=1) == "direct"
    assert cpu(kernel_size=3, groups=8, channels=64) == "shift"
    assert cpu(kernel_size=3, groups=64, channels=64) == "shift"
    assert cpu(kernel_size=3, groups=4, channels=4) == "blockdiag"
    # a few wide groups: one dense convolution each; too many: XLA's own
    assert cpu(kernel_size=3, groups=2, channels=64) == "split"
    assert cpu(kernel_size=3, groups=8, channels=256) == "split"
    assert cpu(kernel_size=3, groups=4, channels=256) == "split"
    assert cpu(kernel_size=3, groups=16, channels=1024) == "split"
    assert cpu(kernel_size=3, groups=32, channels=1024) == "direct"
    # block-diagonal only while its dense kernel stays small
    assert cpu(kernel_size=3, groups=4, channels=16, filters=16) == "blockdiag"
    assert cpu(kernel_size=50, groups=4, channels=16, filters=160) == "split"
    assert cpu(kernel_size=511, groups=1, channels=16) == "fft"
    assert cpu(kernel_size=511, groups=16, channels=16) == "fft"
    # space-to-depth and polyphase divide the taps by the stride
    taps = 2 * (choose.FFT_MIN_TAPS - 1)
    assert cpu(kernel_size=taps, groups=1, channels=4, strides=2) == "direct"
    assert cpu(kernel_size=taps + 2, groups=1, channels=4, strides=2) == "fft"
    # dense channels_first: XLA's own path (the "ncw" core lost under one loss)
    first = functools.partial(cpu, groups=1, channels=64, channels_first=True)
    assert first(kernel_size=3) == "reference"
    assert first(kernel_size=3, strides=2) == "reference"
    assert first(kernel_size=4, strides=2, transposed=True) == "direct"
    # shift-and-add only while terms x filters per group stay small
    assert cpu(kernel_size=3, groups=8, channels=64, filters=64) == "shift"
    assert cpu(kernel_size=(7, 4), strides=(3, 3), groups=8, channels=8,
               filters=152) == "split"  # fmt: skip
    # low-precision types keep exact-product cores
    low = functools.partial(cpu, dtype=jnp.bfloat16)
    assert low(kernel_size=511, groups=1, channels=16) == "direct"
    assert low(kernel_size=3, groups=64, channels=64) == "direct"


def test_auto_is_the_reference_path_off_cpu(monkeypatch):
    """Off CPU, "auto" emits the single convolution of the reference path
    (cuDNN's on GPU)."""
    spec = cj.Conv1D(8, 3, groups=8, strides=2, data_format="channels_first")
    params = {"kernel": normal(1, (3, 1, 8)), "bias": normal(2, (8,))}
    x = normal(0, (2, 8, 16))

    def ops(backend):
        monkeypatch.setattr(jax, "default_backend", lambda: backend)
        jaxpr = jax.make_jaxpr(spec.apply)(params, x)
        return [e.primitive.name for e in jaxpr.eqns]

    assert ops("gpu").count("conv_general_dilated") == 1
    assert "transpose" not in ops("gpu")
    assert "conv_general_dilated" not in ops("cpu")  # shift-and-add


def test_impl_option_is_validated_hashable_and_kept_out_of_keras_configs():
    with pytest.raises(ValueError, match=r"`impl` must be one of .*impl='fast'"):
        cj.Conv1D(4, 3, impl="fast")
    with pytest.raises(ValueError, match=r"`impl`.*impl=3"):
        cj.Conv1DTranspose(4, 3, impl=3)
    assert cj.Conv1D(4, 3, impl="FFT").impl == "fft"
    a, b = cj.Conv1D(4, 3, impl="shift"), cj.Conv1D(4, 3, impl="shift")
    assert a == b and hash(a) == hash(b) and a != cj.Conv1D(4, 3)
    assert "impl" not in cj.Conv1D(4, 3).get_config()
    assert "impl" not in cj.Conv1DTranspose(4, 3).get_config()
    config = cj.Conv1DTranspose(4, 3, impl="reference").get_config()
    assert config["impl"] == "reference"
    assert cj.Conv1DTranspose.from_config(config).impl == "reference"
    assert cj.Conv1D.from_config(cj.Conv1D(4, 3).get_config()).impl == "auto"


def test_fusion_barrier_is_the_identity_bit_for_bit():
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        x = jnp.array([0.1, -3e-38, 1e-45, 6e4, jnp.inf, jnp.nan], jnp.float32)
        x = x.astype(dtype)
        y = shift.fusion_barrier(x)
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(
            np.asarray(y).view(np.uint8), np.asarray(x).view(np.uint8)
        )


def test_polyphase_plan_covers_every_tap_once():
    for k in range(1, 9):
        for s in range(2, 5):
            for left in range(k):
                index, _, _, out = rewrites.polyphase_plan(k, s, (left, 2), 7)
                taps = sorted(index[index < k].tolist())
                assert taps == list(range(k)), (k, s, left)
                assert index.shape[0] == -(-k // s)  # no tap is only zeros
                assert out == 6 * s + left + 2 - k + 2


def test_fft_block_lengths_are_5_smooth_and_hold_the_kernel():
    assert [fft.good_size(n) for n in (1, 7, 11, 17, 97, 1000)] == [
        1,
        8,
        12,
        18,
        100,
        1000,
    ]
    for extent in (1, 30, 511, 1024):
        for steps in (1, 100, 8192):
            block = fft.block_length(extent, steps)
            assert block >= 2 * extent - 1
            assert fft.good_size(block) == block


# ---- 2-D and 3-D ------------------------------------------------------------------

# The cores of a convolution over more than one axis ("fft" and "ncw" are 1-D).
ND_IMPLS = ("auto", *(c for c in choose.CORES if c not in choose.ONE_D_CORES))
N_ND_CASES = 24

_CLASSES = {
    (2, False): cj.Conv2D,
    (3, False): cj.Conv3D,
    (2, True): cj.Conv2DTranspose,
    (3, True): cj.Conv3DTranspose,
}


def _nd_case(seed):
    """A random N-d spec and input shape: both layers, ranks 2 and 3, every
    per-axis argument drawn per axis."""
    r = np.random.default_rng(2000 + seed)
    transposed = seed % 2 == 1
    rank = 3 if seed % 3 == 2 else 2
    groups = int(r.choice([1, 2, 3, 4, 8]))
    per_group = int(r.integers(1, 3))
    if groups == 8 or r.random() < 0.3:  # depthwise: one channel per group
        per_group = 1
    channels = groups * per_group
    filters = groups * int(r.integers(1, 3))
    max_k = 4 if rank == 2 else 3
    kernel_size = tuple(int(k) for k in r.integers(1, max_k + 1, size=rank))
    if r.random() < 0.6:
        strides = tuple(int(s) for s in r.integers(1, 4, size=rank))
        dilation = (1,) * rank
    else:
        strides = (1,) * rank
        dilation = tuple(int(d) for d in r.integers(1, 3, size=rank))
    padding = str(r.choice(["valid", "same"]))
    data_format = str(r.choice(["channels_last", "channels_first"]))
    batch = [(2,), (1,), (2, 1)][int(r.integers(3))]
    kwargs = dict(
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilation_rate=dilation,
        groups=groups,
    )
    if transposed:
        if max(strides) > 1 and r.random() < 0.6:
            kwargs["output_padding"] = tuple(int(r.integers(0, s)) for s in strides)
        # >= 2 steps: "same" with an output_padding of 0 and an even kernel
        # extent gives (steps - 1) * strides steps.
        spatial = tuple(int(n) for n in r.integers(2, 5, size=rank))
    else:
        extents = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation, strict=True)]
        spatial = tuple(
            int(r.integers(e if padding == "valid" else 1, e + 4)) for e in extents
        )
    spec = _CLASSES[rank, transposed](filters, kernel_size, **kwargs)
    if data_format == "channels_last":
        shape = (*batch, *spatial, channels)
    else:
        shape = (*batch, channels, *spatial)
    return spec, shape


def test_the_random_cases_cover_every_argument():
    """The seeds below draw every kind of config at least once."""
    cases = [_nd_case(seed) for seed in range(N_ND_CASES)]
    specs = [spec for spec, _ in cases]

    def some(predicate):
        return any(predicate(spec, shape) for spec, shape in cases)

    for cls in _CLASSES.values():
        assert some(lambda s, _, cls=cls: type(s) is cls), cls
    assert some(lambda s, _: s.groups > 1 and not s.transposed)
    assert some(lambda s, _: s.groups > 1 and s.transposed)
    # depthwise: as many groups as input channels, more than one
    assert some(lambda s, x: s.groups > 1 and s._split(x)[2] == s.groups)
    assert some(lambda s, _: len(set(s.kernel_size)) > 1)
    assert some(lambda s, _: len(set(s.strides)) > 1 and not s.transposed)
    assert some(lambda s, _: len(set(s.strides)) > 1 and s.transposed)
    assert some(lambda s, _: len(set(s.dilation_rate)) > 1 and not s.transposed)
    assert some(lambda s, _: len(set(s.dilation_rate)) > 1 and s.transposed)
    assert some(lambda s, _: s.transposed and s.output_padding is not None)
    assert some(lambda s, _: s.rank == 3 and max(s.strides) > 1)
    assert {s.padding for s in specs} == {"valid", "same"}
    assert {s.data_format for s in specs} == {"channels_last", "channels_first"}
    assert some(lambda s, x: len(x) == s.rank + 3)  # two batch axes
    assert some(lambda s, x: len(x) == s.rank + 2)
    # "auto" picks each N-d core somewhere
    picked = {
        choose.choose_impl(
            transposed=s.transposed,
            kernel_size=s.kernel_size,
            strides=s.strides,
            groups=s.groups,
            channels=s._split(x)[2],
            dtype=jnp.float32,
            backend="cpu",
            channels_first=s.data_format == "channels_first",
            filters=s.filters,
        )
        for s, x in cases
    }
    # (the random channel counts are too small for "split": its own cases
    # are in the decision rule's test; forced, it runs on every case above)
    assert picked == {"im2col", "blockdiag", "shift"}, picked


@pytest.mark.parametrize("seed", range(N_ND_CASES))
def test_every_lowering_matches_the_reference_nd(seed):
    spec, shape = _nd_case(seed)
    shapes = spec.param_shapes(shape)
    params = {n: normal(seed + i, s) for i, (n, s) in enumerate(sorted(shapes.items()))}
    x = normal(100 + seed, shape)
    impls = ("reference", *ND_IMPLS)
    specs = tuple(dataclasses.replace(spec, impl=impl) for impl in impls)
    y_shape = spec.compute_output_shape(shape)
    ct = normal(200 + seed, y_shape)
    (y_ref, g_ref), *others = specs_values_and_vjps(specs, params, x, ct)
    assert y_ref.shape == y_shape
    for impl, (y, g) in zip(impls[1:], others, strict=True):
        assert_close(y, y_ref, err_msg=f"{impl} values, {spec}, {shape}")
        (gx, gp), (gx_ref, gp_ref) = g, g_ref
        assert_close(gx, gx_ref, err_msg=f"{impl} VJP w.r.t. x, {spec}")
        assert sorted(gp) == sorted(gp_ref) == ["bias", "kernel"]
        for name in gp:
            assert_close(gp[name], gp_ref[name], err_msg=f"{impl} VJP w.r.t. {name}")


@pytest.mark.parametrize(
    "spec,shape",
    [
        (
            cj.Conv2D(4, (2, 2), groups=2, dilation_rate=(2, 1), padding="same",
                      impl="shift"),
            (1, 4, 3, 4),
        ),
        (
            cj.Conv2D(3, (3, 2), groups=3, dilation_rate=(1, 2),
                      data_format="channels_first", impl="shift"),
            (1, 3, 4, 5),
        ),
        (
            cj.Conv2DTranspose(2, (2, 3), strides=(2, 3), padding="same",
                               output_padding=(1, 0), groups=2, impl="shift"),
            (1, 2, 2, 2),
        ),
        (
            cj.Conv3D(4, (2, 1, 2), strides=(1, 2, 1), groups=2, padding="same",
                      impl="shift"),
            (1, 3, 3, 3, 2),
        ),
        pytest.param(
            cj.Conv2D(3, (3, 2), strides=(2, 1), padding="same", impl="im2col"),
            (1, 5, 4, 2),
        ),
        pytest.param(cj.Conv2D(3, 1, strides=(2, 3), impl="im2col"), (2, 5, 4, 2)),
        pytest.param(
            cj.Conv3D(2, (2, 2, 1), dilation_rate=(1, 2, 1), padding="same",
                      impl="im2col"),
            (1, 3, 4, 2, 2),
        ),
        pytest.param(
            cj.Conv2DTranspose(2, 3, strides=2, padding="same", impl="im2col"),
            (1, 3, 2, 2),
        ),
    ],
    ids=["shift-grouped", "shift-depthwise", "polyphase-shift", "shift-3d",
         "im2col-strided", "im2col-1x1-strided", "im2col-3d-dilated",
         "polyphase-im2col"],
)  # fmt: skip
def test_check_grads_second_order_nd(spec, shape):
    """The custom JVPs of the N-d "shift" core (grouped, depthwise, under the
    2-D polyphase rewrite and space-to-depth) and of the "im2col" core
    (strided, 1x1, dilated 3-D, polyphase) and autodiff of the polyphase
    path, against finite differences in float64, forward and reverse mode, to
    second order."""
    with jax.enable_x64(True):
        params = spec.param_shapes(shape)
        kernel = normal(1, params["kernel"], np.float64)
        x = normal(2, shape, np.float64)

        @jax.jit
        def f(x_, kernel_):
            return spec.apply({"kernel": kernel_, "bias": jnp.zeros(spec.filters)}, x_)

        y = f(x, kernel)
        assert y.dtype == jnp.float64
        ref = dataclasses.replace(spec, impl="reference")
        y_ref = ref.apply({"kernel": kernel, "bias": jnp.zeros(spec.filters)}, x)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        check_grads(f, (x, kernel), order=2, modes=("fwd", "rev"))


def test_jvp_and_vmap_over_params_of_the_2d_shift_core_match_the_reference():
    groups = 3
    spec = cj.Conv2D(6, (3, 2), groups=groups, padding="same", impl="shift")
    ref = dataclasses.replace(spec, impl="reference")
    x = normal(0, (2, 5, 4, 6))
    kernels = normal(1, (3, 3, 2, 6 // groups, 6))
    tangent = (normal(2, x.shape), normal(3, kernels.shape[1:]))

    def f(s, x_, k_):
        return s.apply({"kernel": k_, "bias": jnp.zeros(6)}, x_)

    ours = jax.jvp(functools.partial(f, spec), (x, kernels[0]), tangent)
    theirs = jax.jvp(functools.partial(f, ref), (x, kernels[0]), tangent)
    for a, b in zip(ours, theirs, strict=True):
        assert_close(a, b)
    batched = jax.vmap(functools.partial(f, spec, x))(kernels)
    assert_close(batched, jax.vmap(functools.partial(f, ref, x))(kernels))
    grads = jax.vmap(jax.grad(lambda k_: jnp.sum(f(spec, x, k_) ** 2)))(kernels)
    grads_ref = jax.vmap(jax.grad(lambda k_: jnp.sum(f(ref, x, k_) ** 2)))(kernels)
    assert_close(grads, grads_ref)
    # vmap over inputs, with the batch axis in the middle
    xs = jnp.stack([x, 2 * x], axis=1)
    y = jax.vmap(functools.partial(f, spec, k_=kernels[0]), in_axes=1)(xs)
    assert_close(y, jax.vmap(functools.partial(f, ref, k_=kernels[0]), in_axes=1)(xs))


def test_the_decision_rule_in_2d_and_3d():
    rule = functools.partial(
        choose.choose_impl, transposed=False, strides=(1, 1), dtype=jnp.float32
    )
    cpu = functools.partial(rule, backend="cpu")
    depthwise = functools.partial(cpu, kernel_size=(3, 3), groups=64, channels=64)
    assert depthwise() == "shift"
    assert depthwise(transposed=True) == "shift"
    assert depthwise(channels_first=True) == "shift"
    assert cpu(kernel_size=(3, 3), groups=4, channels=64) == "split"
    assert cpu(kernel_size=(3, 3), groups=4, channels=16, filters=16) == "blockdiag"
    # 9 taps * 4 channels per group = 36 terms; 9 * 8 = 72 is past SHIFT_MAX_TERMS
    assert cpu(kernel_size=(3, 3), groups=16, channels=64) == "shift"
    assert cpu(kernel_size=(3, 3), groups=8, channels=64) == "split"
    assert cpu(kernel_size=(3, 3), groups=1, channels=64) == "im2col"
    assert cpu(kernel_size=(3, 3), groups=2, channels=256) == "split"
    assert cpu(kernel_size=(3, 3), groups=32, channels=256) == "direct"
    # space-to-depth multiplies the channels per group by prod(strides):
    # 4 taps * 4 * 8 channels = 128 terms, past SHIFT_MAX_TERMS; 8 channels
    # per group are enough for a dense convolution each
    assert cpu(kernel_size=(3, 3), strides=(2, 2), groups=8, channels=64) == ("split")
    assert cpu(kernel_size=(3, 3), strides=(2, 2), groups=64, channels=64) == "shift"
    # polyphase keeps the channels: ceil(3 / 2) * ceil(3 / 1) taps * 1
    assert cpu(
        kernel_size=(3, 3), strides=(2, 1), groups=64, channels=64, transposed=True
    ) == ("shift")
    in_3d = functools.partial(cpu, strides=(1, 1, 1), groups=16, channels=16)
    assert in_3d(kernel_size=(3, 3, 3)) == "shift"  # 27 terms
    assert in_3d(kernel_size=(5, 5, 5)) == "direct"  # 125 terms, 16 groups
    # the 1-D cores never run over several axes, whatever the kernel or layout
    for kernel_size in ((64, 64), (511, 1), (1, 511), (9, 9, 9)):
        for groups, channels in ((1, 16), (16, 16), (4, 64)):
            for channels_first in (False, True):
                for transposed in (False, True):
                    got = cpu(
                        kernel_size=kernel_size,
                        strides=(1,) * len(kernel_size),
                        groups=groups,
                        channels=channels,
                        channels_first=channels_first,
                        transposed=transposed,
                    )
                    assert got in (
                        "reference",
                        "direct",
                        "im2col",
                        "blockdiag",
                        "split",
                        "shift",
                    ), got
    assert cpu(kernel_size=(511, 511), groups=1, channels=4) == "im2col"
    # dense channels_first forward: XLA's own path; 3-D: the depth-as-channels rewrite
    assert cpu(kernel_size=(3, 3), groups=1, channels=64, channels_first=True) == (
        "reference"
    )
    assert cpu(kernel_size=(1, 1), groups=1, channels=64, channels_first=True) == (
        "reference"
    )
    assert cpu(
        kernel_size=(3, 3, 3), strides=(1, 1, 1), groups=1, channels=8,
        channels_first=True,
    ) == "im2col"  # fmt: skip
    for backend in ("gpu", "tpu"):
        assert depthwise(backend=backend) == "reference"
        dense_3d = rule(
            kernel_size=(3, 3, 3), strides=(2, 1, 1), groups=1, channels=8,
            backend=backend,
        )  # fmt: skip
        assert dense_3d == "reference"
    # low-precision types keep exact-product cores
    assert depthwise(dtype=jnp.bfloat16) == "direct"


def _core_matches_the_reference(spec, shape, dtype, impl="im2col"):
    """The ``impl`` core's values and VJPs against the reference path's, in
    ``dtype`` (bfloat16 to 2e-2 of each array's scale, float32 to 2e-6,
    float64 to 1e-12)."""
    params = {
        n: normal(i, s).astype(dtype)
        for i, (n, s) in enumerate(sorted(spec.param_shapes(shape).items()))
    }
    x = normal(10, shape).astype(dtype)
    ct = normal(11, spec.compute_output_shape(shape)).astype(dtype)
    specs = tuple(dataclasses.replace(spec, impl=i) for i in ("reference", impl))
    (y_ref, (gx_ref, gp_ref)), (y, (gx, gp)) = specs_values_and_vjps(
        specs, params, x, ct
    )
    assert y.dtype == gx.dtype == gp["kernel"].dtype == dtype
    tol = {jnp.bfloat16: 2e-2, jnp.float32: 2e-6, jnp.float64: 1e-12}[dtype]
    for a, b, what in ((y, y_ref, "values"), (gx, gx_ref, "VJP w.r.t. x"),
                       (gp["kernel"], gp_ref["kernel"], "VJP w.r.t. the kernel")):  # fmt: skip
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max(),
                                   err_msg=what)  # fmt: skip
    return params, x, specs[1]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize(
    "spec,shape",
    [
        (cj.Conv2D(5, (3, 2), padding="same", dilation_rate=(1, 2)), (2, 7, 6, 3)),
        (cj.Conv2D(4, 3, strides=2, data_format="channels_first"), (3, 3, 9, 7)),
        (cj.Conv2D(6, 1, strides=(1, 2)), (2, 5, 5, 7)),
        (cj.Conv3D(3, (2, 3, 1), padding="same"), (2, 3, 5, 4, 2)),
        (cj.Conv2DTranspose(3, 3, strides=(2, 1), padding="same"), (2, 4, 3, 5)),
    ],
    ids=["dilated", "strided-ncw", "1x1-strided", "3d", "transposed"],
)
def test_the_im2col_core_in_other_dtypes(spec, shape, dtype):
    """The "im2col" core's values and gradients (its own kernel gradient,
    accumulated in float32 for bfloat16) against the reference path in the
    same dtype."""
    with jax.enable_x64(dtype == jnp.float64):
        _core_matches_the_reference(spec, shape, dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize(
    "spec,shape",
    [
        (cj.Conv2D(6, 3, padding="same"), (2, 4, 4, 5)),
        (cj.Conv2D(6, (3, 2), strides=2, padding="same"), (3, 7, 6, 5)),
        (cj.Conv2D(4, 3, dilation_rate=(2, 1)), (1, 7, 5, 6)),
        (
            cj.Conv2D(4, (2, 3), strides=(1, 3), data_format="channels_first"),
            (2, 5, 6, 8),
        ),  # fmt: skip
        (cj.Conv3D(5, (2, 3, 2), padding="same"), (2, 3, 4, 3, 5)),
        (cj.Conv2DTranspose(5, 3, strides=2, padding="same"), (2, 3, 3, 6)),
        (cj.Conv1D(6, 3, padding="same"), (2, 5, 5)),
        (cj.Conv1D(4, 4, strides=3, dilation_rate=1), (3, 11, 6)),
    ],
    ids=[
        "same",
        "strided",
        "dilated-valid",
        "ncw-strided-width",
        "3d",
        "transposed",
        "1d",
        "1d-strided",
    ],  # fmt: skip
)
def test_the_im2col_small_image_gemms(spec, shape, dtype, monkeypatch):
    """A kernel outweighing the positions (here any): the forward, the input
    gradient (col2im) and the kernel gradient as GEMMs of the whole im2col,
    against the reference path in the same dtype; the programs hold no
    convolution."""
    monkeypatch.setattr(im2col, "SMALL_MIN_CHANNELS", 1)
    monkeypatch.setattr(im2col, "SMALL_MIN_KERNEL_PER_ROW", 0)
    monkeypatch.setattr(im2col, "SMALL_FORWARD_MIN_KERNEL_PER_ROW", 0)
    monkeypatch.setattr(im2col, "SMALL_1D_KERNEL_GRAD_MIN_PER_ROW", 0)
    with jax.enable_x64(dtype == jnp.float64):
        params, x, ours = _core_matches_the_reference(spec, shape, dtype)
        jaxpr = jax.make_jaxpr(
            jax.value_and_grad(lambda p, x_: jnp.sum(ours.apply(p, x_)), (0, 1))
        )(params, x)
        names = {e.primitive.name for e in _all_eqns(jaxpr.jaxpr)}
        assert "conv_general_dilated" not in names and "dot_general" in names


def test_the_im2col_small_image_rule():
    """The gradients run as GEMMs from SMALL_MIN_KERNEL_PER_ROW kernel
    elements per output position in all (the forward from
    SMALL_FORWARD_MIN_KERNEL_PER_ROW), with SMALL_MIN_CHANNELS channels and
    filters; XLA's convolutions elsewhere."""

    def convolutions(spec, shape):
        x = jax.ShapeDtypeStruct(shape, jnp.float32)
        params = jax.eval_shape(lambda k: spec.init(k, shape), jax.random.key(0))

        def f(p, x_):
            return jnp.sum(dataclasses.replace(spec, impl="im2col").apply(p, x_))

        jaxpr = jax.make_jaxpr(jax.grad(f, (0, 1)))(params, x)
        names = [e.primitive.name for e in _all_eqns(jaxpr.jaxpr)]
        return names.count("conv_general_dilated")

    wide = im2col.SMALL_MIN_CHANNELS
    assert (wide, im2col.SMALL_MIN_KERNEL_PER_ROW) == (256, 1500)
    assert im2col.SMALL_FORWARD_MIN_KERNEL_PER_ROW == 10_000
    layer = cj.Conv2D(wide, 3, padding="same")  # 589,824 kernel elements
    # at most 58 rows: all three as GEMMs; at most 393, the gradients
    assert convolutions(layer, (29, 2, 1, wide)) == 0
    assert convolutions(layer, (30, 2, 1, wide)) == 1
    assert convolutions(layer, (131, 3, 1, wide)) == 1
    assert convolutions(layer, (132, 3, 1, wide)) == 3
    # fewer channels or filters
    assert convolutions(layer, (29, 2, 1, wide - 1)) == 3
    narrow = cj.Conv2D(wide - 1, 3, padding="same")
    assert convolutions(narrow, (29, 2, 1, wide)) == 3
    # 1-D: the kernel gradient from SMALL_1D_KERNEL_GRAD_MIN_PER_ROW only
    assert im2col.SMALL_1D_KERNEL_GRAD_MIN_PER_ROW == 16_384
    layer = cj.Conv1D(wide, 3, padding="same")  # 196,608 kernel elements
    assert convolutions(layer, (12, 1, wide)) == 0
    assert convolutions(layer, (13, 1, wide)) == 1  # the kernel gradient
    assert convolutions(layer, (20, 1, wide)) == 2  # and the forward
    assert convolutions(layer, (131, 1, wide)) == 2
    assert convolutions(layer, (132, 1, wide)) == 3


def test_the_1d_im2col_rule():
    """A dense forward 1-D convolution of many channels over few positions
    runs the "im2col" core (its GEMMs), otherwise XLA's own."""
    cpu = functools.partial(choose.choose_impl, transposed=False, strides=1,
                            groups=1, dtype=jnp.float32, backend="cpu")  # fmt: skip
    wide = choose.IM2COL_1D_MIN_CHANNELS
    assert (wide, choose.IM2COL_1D_MIN_KERNEL_PER_ROW) == (256, 4096)
    dense = functools.partial(cpu, kernel_size=3, channels=wide, filters=wide)
    # 196,608 kernel elements: at most 48 output positions
    assert dense(positions=48) == "im2col"
    assert dense(positions=49) == "direct"
    assert dense() == "direct"  # positions unknown
    assert dense(strides=2, positions=96) == "im2col"
    assert dense(strides=2, positions=97) == "direct"
    assert dense(positions=48, transposed=True) == "direct"
    assert dense(positions=48, channels_first=True) == "reference"
    assert cpu(kernel_size=3, channels=wide - 1, filters=wide, positions=1) == "direct"
    assert cpu(kernel_size=3, channels=wide, filters=wide - 1, positions=1) == "direct"


@pytest.mark.parametrize("block_bytes", [1, 400, 0])
def test_the_im2col_kernel_gradient_over_several_blocks(block_bytes, monkeypatch):
    """Blocks of one and of two examples (a scan over blocks) sum to the
    reference path's kernel gradient; an example too large for a block
    (EXAMPLE_MAX_BYTES, here 0) gets XLA's."""
    monkeypatch.setattr(im2col, "BLOCK_BYTES", block_bytes or 400)
    if not block_bytes:
        monkeypatch.setattr(im2col, "EXAMPLE_MAX_BYTES", 0)
    spec = cj.Conv2D(3, 2, strides=(1, 2), padding="same")
    shape = (4, 3, 4, 2)  # an example's im2col: 4 taps, 2 channels, 6 outputs
    assert im2col.block_size(4, 4 * 2 * 6 * 4) == (1 if block_bytes == 1 else 2)
    params = random_params(spec, shape, 0)
    x, ct = normal(1, shape), normal(2, spec.compute_output_shape(shape))
    specs = tuple(dataclasses.replace(spec, impl=i) for i in ("reference", "im2col"))
    (y_ref, (gx_ref, gp_ref)), (y, (gx, gp)) = specs_values_and_vjps(
        specs, params, x, ct
    )
    jaxpr = jax.make_jaxpr(jax.grad(lambda p: jnp.sum(specs[1].apply(p, x))))(params)
    loops = [e for e in _all_eqns(jaxpr.jaxpr) if e.primitive.name == "scan"]
    assert bool(loops) == (block_bytes != 0)
    assert_close(gp["kernel"], gp_ref["kernel"])
    assert_close(gx, gx_ref)


def test_the_im2col_kernel_gradient_rule(monkeypatch):
    """By default the GEMMs run where they were measured faster: a kernel
    larger than 1x1 over at least GEMM_MIN_ROWS output positions of at most
    GEMM_MAX_CHANNELS channels (at least GEMM_MIN_CHANNELS at stride 1),
    and any 1x1 kernel; XLA's own elsewhere."""
    monkeypatch.undo()

    def primitives(spec, shape):
        x = jax.ShapeDtypeStruct(shape, jnp.float32)
        params = jax.eval_shape(lambda k: spec.init(k, shape), jax.random.key(0))

        def loss(p, x_):
            return jnp.sum(dataclasses.replace(spec, impl="im2col").apply(p, x_))

        jaxpr = jax.make_jaxpr(jax.grad(loss))(params, x)
        return {e.primitive.name for e in _all_eqns(jaxpr.jaxpr)}

    dense = cj.Conv2D(64, 3, padding="same")
    assert im2col.GEMM_MIN_ROWS == 32 * 32 * 32
    assert "dot_general" in primitives(dense, (32, 32, 32, 64))
    assert "dot_general" not in primitives(dense, (31, 32, 32, 64))
    assert "dot_general" not in primitives(dense, (32, 32, 32, 128))
    # fewer channels: XLA's own at stride 1, the GEMMs at stride 2 (the stem)
    assert im2col.GEMM_MIN_CHANNELS == 64
    assert "dot_general" not in primitives(dense, (32, 32, 32, 63))
    stem = cj.Conv2D(64, 7, strides=2, padding="same")
    assert "dot_general" in primitives(stem, (8, 128, 128, 3))
    # at most FEW_TAPS_MAX_POSITIONS kernel positions and at least
    # FEW_TAPS_MIN_FILTERS filters: the GEMMs from any number of rows
    assert im2col.FEW_TAPS_MIN_FILTERS == 128
    assert "dot_general" in primitives(cj.Conv2D(128, 2), (1, 5, 5, 32))
    assert "dot_general" not in primitives(cj.Conv2D(127, 2), (1, 5, 5, 32))
    assert "dot_general" not in primitives(cj.Conv2D(128, (2, 3)), (1, 5, 5, 32))
    # a 4x4 stride-2 transposed convolution: a 2x2 kernel of 4 * 32 phases
    transposed = cj.Conv2DTranspose(32, 4, strides=2, padding="same")
    assert "dot_general" in primitives(transposed, (1, 5, 5, 32))
    # a 1x1 kernel: forward, input and kernel gradients all matrix products
    assert "conv_general_dilated" not in primitives(cj.Conv2D(8, 1), (1, 4, 4, 128))


def _all_eqns(jaxpr):
    """The equations of ``jaxpr`` and of every jaxpr nested in them (custom
    derivative rules' primal functions, scans, calls)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                yield from _all_eqns(inner)


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", [cj.Conv2D, cj.Conv3D])
def test_the_1d_cores_are_never_picked_by_auto_in_nd(cls, fmt, monkeypatch):
    """A long dense kernel in 2-D/3-D runs XLA's convolution on CPU (in 3-D,
    one 2-D convolution of the depth taps stacked along the channels: the
    depth-as-channels rewrite), inside the "im2col" core's custom
    derivative."""
    spec = cls(2, 9 if cls is cj.Conv2D else 5, data_format=fmt, use_bias=False)
    rank = spec.rank
    shape = (1, 2, *(10,) * rank) if fmt == "channels_first" else (1, *(10,) * rank, 2)
    params = spec.init(jax.random.key(0), shape)
    eqns = list(_all_eqns(jax.make_jaxpr(spec.apply)(params, jnp.ones(shape)).jaxpr))
    names = [e.primitive.name for e in eqns]
    convs = [e for e in eqns if e.primitive.name == "conv_general_dilated"]
    assert len(convs) == 1
    assert all(c.invars[0].aval.ndim == 4 for c in convs)  # 2-D convolutions
    assert "fft" not in names and "dot_general" not in names


def _valid_conv(x, kernel, groups, strides=(1, 1), padding="VALID"):
    return lax.conv_general_dilated(
        x,
        kernel,
        strides,
        padding,
        dimension_numbers=layout.dimension_numbers(2, False),
        feature_group_count=groups,
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _space_to_depth_and_strided(x, kernel, strides, padding, groups):
    x2, kernel2 = rewrites.space_to_depth(
        x, kernel, strides=strides, padding=padding, groups=groups
    )
    rewritten = _valid_conv(x2, kernel2, groups)
    return rewritten, kernel2.shape, _valid_conv(x, kernel, groups, strides, padding)


@pytest.mark.parametrize(
    "strides,taps,padding,groups",
    [
        ((2, 3), (3, 2), ((1, 2), (0, 1)), 2),
        ((3, 1), (4, 3), ((0, 0), (1, 1)), 1),
        ((1, 2), (1, 5), ((2, 0), (2, 2)), 3),
        ((2, 2), (2, 2), ((0, 1), (1, 0)), 6),
    ],
)
def test_space_to_depth_in_2d_with_strides_per_axis(strides, taps, padding, groups):
    """The rewrite's stride-1 valid convolution equals the strided one, for
    strides that differ per axis, taps not a multiple of them, and groups."""
    x = normal(0, (2, 9, 8, 6))
    kernel = normal(1, (*taps, 6 // groups, 6))
    got, kernel_shape, expected = _space_to_depth_and_strided(
        x, kernel, strides, padding, groups
    )
    blocks = tuple(-(-k // s) for k, s in zip(taps, strides, strict=True))
    assert kernel_shape == (*blocks, strides[0] * strides[1] * 6 // groups, 6)
    assert_close(got, expected)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _polyphase_and_reference(x, kernel, strides, padding, groups):
    shapes = []

    def run_conv(x_, phased):
        shapes.append(phased.shape)
        return _valid_conv(x_, phased, groups)

    got = rewrites.polyphase_transpose(
        x, kernel, strides=strides, padding=padding, groups=groups, run_conv=run_conv
    )
    expected = reference.conv_transpose(
        x, kernel, strides=strides, padding=padding, dilation_rate=(1, 1),
        groups=groups, channels_first=False,
    )  # fmt: skip
    return got, shapes, expected


@pytest.mark.parametrize(
    "strides,taps,output_padding,padding",
    [
        ((2, 3), (3, 2), (1, 0), "same"),
        ((3, 1), (4, 3), None, "valid"),
        ((1, 2), (2, 5), (0, 1), "valid"),
        ((3, 2), (2, 4), None, "same"),
    ],
)
def test_polyphase_in_2d_with_strides_per_axis(strides, taps, output_padding, padding):
    """Polyphase equals the reference's stride-dilated convolution; its one
    stride-1 convolution has ceil(taps / strides) taps per axis and
    prod(strides) * filters output channels."""
    groups = 2
    x = normal(0, (2, 3, 4, 4))
    kernel = normal(1, (*taps, 6 // groups, 4))
    spec = cj.Conv2DTranspose(
        6, taps, strides=strides, padding=padding, output_padding=output_padding
    )
    pads = spec.paddings(None)
    got, shapes, expected = _polyphase_and_reference(x, kernel, strides, pads, groups)
    assert got.shape == spec.compute_output_shape(x.shape)
    blocks = tuple(-(-k // s) for k, s in zip(taps, strides, strict=True))
    assert shapes == [(*blocks, 4 // groups, strides[0] * strides[1] * 6)]
    assert_close(got, expected)


@pytest.mark.parametrize("transposed", [False, True])
def test_auto_is_the_reference_path_off_cpu_nd(monkeypatch, transposed):
    """Off CPU, "auto" emits the single convolution of the reference path
    (cuDNN's on GPU) for a 2-D grouped strided channels-first spec: no
    rewrite, and no move of the input or output to channels-last."""
    cls = cj.Conv2DTranspose if transposed else cj.Conv2D
    spec = cls(8, (3, 2), groups=8, strides=(2, 3), data_format="channels_first")
    x = normal(0, (2, 8, 7, 9))
    params = spec.init(jax.random.key(0), x.shape)

    def eqns(backend):
        monkeypatch.setattr(jax, "default_backend", lambda: backend)
        return jax.make_jaxpr(spec.apply)(params, x).eqns

    gpu = eqns("gpu")
    names = [e.primitive.name for e in gpu]
    assert names.count("conv_general_dilated") == 1
    if transposed:  # only the kernel is regrouped (reference.transpose_kernel)
        kernel_size = params["kernel"].size
        for e in gpu:
            if e.primitive.name == "transpose":
                assert e.invars[0].aval.size == kernel_size
    else:
        assert "transpose" not in names
    cpu = [e.primitive.name for e in eqns("cpu")]  # shift, channels-last
    assert "transpose" in cpu
    assert "conv_general_dilated" not in cpu


# ---- the depthwise and separable layers ---------------------------------------------

DW_CLASSES = [
    cj.DepthwiseConv1D, cj.DepthwiseConv2D, cj.SeparableConv1D, cj.SeparableConv2D,
]  # fmt: skip

ND_IMPLS = ("auto", "direct", "blockdiag", "shift")
# (spec, input shape)
LOWERING_CASES = [
    (cj.DepthwiseConv2D((3, 2), strides=(2, 1), dilation_rate=(1, 2),
                        padding="same", depth_multiplier=2), (2, 7, 6, 3)),
    (cj.DepthwiseConv2D(3, dilation_rate=2, data_format="channels_first"),
     (1, 4, 7, 7)),
    (cj.DepthwiseConv2D((2, 3), strides=2, depth_multiplier=3, padding="same",
                        use_bias=False), (2, 1, 5, 6, 2)),
    (cj.DepthwiseConv1D(5, strides=2, dilation_rate=2, padding="causal",
                        depth_multiplier=2), (2, 11, 3)),
    (cj.DepthwiseConv1D(3, strides=3, padding="same",
                        data_format="channels_first"), (2, 4, 10)),
    (cj.DepthwiseConv1D(4, dilation_rate=3, depth_multiplier=3), (2, 1, 12, 2)),
    (cj.SeparableConv2D(4, (3, 2), strides=(1, 2), dilation_rate=(2, 1),
                        padding="same", depth_multiplier=2), (2, 6, 7, 3)),
    (cj.SeparableConv2D(3, 2, strides=2, data_format="channels_first",
                        use_bias=False), (2, 2, 5, 5)),
    (cj.SeparableConv1D(5, 3, strides=2, dilation_rate=2, padding="causal",
                        depth_multiplier=2), (2, 12, 3)),
    (cj.SeparableConv1D(2, 4, dilation_rate=3, padding="same",
                        data_format="channels_first", depth_multiplier=3),
     (1, 2, 2, 11)),
]  # fmt: skip
LOWERING_IDS = [f"{type(s).__name__}-{i}" for i, (s, _) in enumerate(LOWERING_CASES)]


@pytest.mark.parametrize("spec, shape", LOWERING_CASES, ids=LOWERING_IDS)
def test_every_lowering_matches_the_reference_depthwise(spec, shape):
    impls = ("reference", *ND_IMPLS)
    if spec.rank == 1:
        impls += ("fft", "ncw")
    specs = tuple(dataclasses.replace(spec, impl=impl) for impl in impls)
    params = random_params(spec, shape, 11)
    x = normal(12, shape)
    y_shape = spec.compute_output_shape(shape)
    ct = normal(13, y_shape)
    (y_ref, g_ref), *others = specs_values_and_vjps(specs, params, x, ct)
    assert y_ref.shape == y_shape
    for impl, (y, g) in zip(impls[1:], others, strict=True):
        assert_close(y, y_ref, err_msg=f"{impl} values, {spec}, {shape}")
        (gx, gp), (gx_ref, gp_ref) = g, g_ref
        assert_close(gx, gx_ref, err_msg=f"{impl} VJP w.r.t. x, {spec}")
        assert sorted(gp) == sorted(gp_ref) == sorted(params)
        for name in gp:
            assert_close(gp[name], gp_ref[name], err_msg=f"{impl} VJP w.r.t. {name}")


def test_the_lowering_cases_cover_the_options():
    specs = [s for s, _ in LOWERING_CASES]
    assert {type(s) for s in specs} == set(DW_CLASSES)
    for cls in DW_CLASSES:
        mine = [s for s in specs if type(s) is cls]
        assert any(max(s.strides) > 1 and max(s.dilation_rate) > 1 for s in mine)
        assert {s.data_format for s in mine} == {"channels_last", "channels_first"}
    assert {s.padding for s in specs} == {"valid", "same", "causal"}
    assert {s.depth_multiplier for s in specs} == {1, 2, 3}


@pytest.mark.parametrize(
    "spec, shape",
    [
        # the shift core's custom JVP, under the strides-with-dilation path
        (cj.DepthwiseConv2D(2, strides=(2, 1), dilation_rate=(1, 2),
                            depth_multiplier=2, padding="same", activation="tanh",
                            impl="shift"), (1, 4, 5, 2)),
        (cj.SeparableConv1D(3, 3, strides=2, dilation_rate=2, padding="causal",
                            depth_multiplier=2, activation="tanh"), (2, 7, 2)),
    ],
    ids=["DepthwiseConv2D-shift", "SeparableConv1D-causal"],
)  # fmt: skip
def test_check_grads_second_order_depthwise(spec, shape):
    """Forward and reverse mode, to second order, against finite differences
    in float64, w.r.t. the input and every param."""
    with jax.enable_x64(True):
        params = {
            n: normal(i, s, np.float64)
            for i, (n, s) in enumerate(sorted(spec.param_shapes(shape).items()))
        }
        names = sorted(params)
        x = normal(20, shape, np.float64)

        @jax.jit
        def f(x_, *ws):
            return spec.apply(dict(zip(names, ws, strict=True)), x_)

        args = (x, *(params[n] for n in names))
        y = f(*args)
        assert y.dtype == jnp.float64
        ref = dataclasses.replace(spec, impl="reference")
        np.testing.assert_allclose(y, ref.apply(params, x), rtol=1e-12, atol=1e-12)
        check_grads(f, args, order=2, modes=("fwd", "rev"))


# (spec, input shape, STRIDED_FOLD_MIN_WIDTH, dtype, examples folded): a
# strided width folded with every example (or, at a minimum width of 8,
# two of four; in 3-D, the 2-D problem's examples and output depths).
STRIDED_FOLD_CASES = [
    (cj.Conv2D(4, 3, strides=2, padding="same"), (3, 7, 9, 2), 896, jnp.float32, 3),
    (cj.Conv2D(5, (2, 3), strides=(1, 3)), (2, 5, 10, 3), 896, jnp.bfloat16, 2),
    (
        cj.Conv2D(
            3, (3, 4), strides=(3, 2), padding="same", data_format="channels_first"
        ),
        (4, 2, 8, 7),
        8,
        jnp.float32,
        2,
    ),
    (
        cj.Conv2D(6, 5, strides=2, padding="same", use_bias=False),
        (2, 6, 11, 3),
        896,
        jnp.float64,
        2,
    ),
    (cj.Conv3D(3, (2, 2, 3), strides=(2, 1, 2)), (2, 4, 5, 7, 2), 896, jnp.float32, 4),
]


def test_the_im2col_forward_of_a_strided_width_on_folded_examples(monkeypatch):
    """A strided convolution run on examples laid side by side along the
    width (each padded to a multiple of the stride) equals the reference
    path, values and gradients, in float32, bfloat16 and float64, 2-D and
    3-D, and to second order against finite differences."""
    folds = []
    folded = im2col._folded

    def spy(x, kernel, window, fold):
        if window[0][-1] > 1:
            folds.append(fold)
        return folded(x, kernel, window, fold)

    monkeypatch.setattr(im2col, "_folded", spy)
    monkeypatch.setattr(im2col, "STRIDED_FOLD_MIN_WORK", 0)
    for i, (spec, shape, width, dtype, fold) in enumerate(STRIDED_FOLD_CASES):
        monkeypatch.setattr(im2col, "STRIDED_FOLD_MIN_WIDTH", width)
        with jax.enable_x64(dtype == jnp.float64):
            params = {
                k: v.astype(dtype) for k, v in random_params(spec, shape, i).items()
            }
            x = normal(10 + i, shape).astype(dtype)
            ct = normal(20 + i, spec.compute_output_shape(shape)).astype(dtype)
            specs = tuple(
                dataclasses.replace(spec, impl=m) for m in ("reference", "im2col")
            )
            folds.clear()
            results = specs_values_and_vjps(specs, params, x, ct)
            assert folds == [fold], (i, folds)
            (y_ref, (gx_ref, gp_ref)), (y, (gx, gp)) = results
            tol = 2e-2 if dtype == jnp.bfloat16 else 1e-5
            for a, b in ((y, y_ref), (gx, gx_ref), (gp["kernel"], gp_ref["kernel"])):
                assert a.dtype == dtype
                assert_close(a, b, rtol=tol, atol=tol)
    with jax.enable_x64(True):
        spec = dataclasses.replace(STRIDED_FOLD_CASES[0][0], impl="im2col")
        kernel = normal(1, (3, 3, 2, 4), np.float64)
        bias = jnp.zeros(4, jnp.float64)
        folds.clear()
        check_grads(
            jax.jit(lambda x_, k: spec.apply({"kernel": k, "bias": bias}, x_)),
            (normal(2, (2, 5, 7, 2), np.float64), kernel),
            order=2,
            modes=("fwd", "rev"),
        )
        assert folds and set(folds) == {2}


def test_the_stride_one_fold_rule(monkeypatch):
    """At stride 1, examples are folded along the width where each output
    position's multiply-adds (k_h * k_w * C * F) reach FOLD_MIN_MACS: a 3x3
    kernel of 64 -> 64 channels, a 5x5 one of 32 -> 32, the 3x3x3 one of
    32 -> 32 (a 2-D problem of 96 channels); not a 3x3 one of 32 -> 32 or
    48 -> 48."""
    monkeypatch.undo()

    def fold(shape, taps, f):
        kernel = jax.ShapeDtypeStruct((*taps, shape[-1], f), jnp.float32)
        pads = tuple((k // 2, k // 2) for k in taps)
        return im2col.fold_count(shape[0], shape[2], kernel, ((1, 1), pads, (1, 1)))

    assert im2col.FOLD_MIN_MACS == 24_000
    assert fold((8, 32, 32, 64), (3, 3), 64) == 4
    assert fold((32, 56, 56, 64), (3, 3), 64) == 2
    assert fold((8, 64, 64, 32), (5, 5), 32) == 2
    assert fold((64, 32, 32, 96), (3, 3), 32) == 4
    assert fold((8, 64, 64, 32), (3, 3), 32) == 1
    assert fold((8, 64, 64, 48), (3, 3), 48) == 1
    # and never past FOLD_MAX_FILTERS filters
    assert fold((8, 32, 32, 128), (3, 3), 65) == 1


def test_the_strided_fold_rule():
    """Examples are folded along a strided width where the folded row's
    multiply-adds reach STRIDED_FOLD_MIN_WORK: the 7x7 stride-2 stem over
    (8, 224, 224, 3), not over (16, 64, 64, 3) nor a 1x4 stride-4 kernel of
    19 filters over (30, 38, 38, 15)."""

    def fold(shape, taps, f, strides, pads):
        kernel = jax.ShapeDtypeStruct((*taps, shape[-1], f), jnp.float32)
        return im2col.fold_count(shape[0], shape[2], kernel, (strides, pads, (1, 1)))

    stem = ((7, 7), 64, (2, 2), ((2, 3), (2, 3)))
    assert fold((8, 224, 224, 3), *stem) == 8
    assert fold((16, 64, 64, 3), *stem) == 1
    assert fold((30, 38, 38, 15), (1, 4), 19, (4, 4), ((0, 0), (0, 0))) == 1
    assert fold((8, 112, 112, 64), (3, 3), 64, (2, 2), ((0, 1), (0, 1))) == 8
    assert fold((8, 112, 112, 64), (3, 3), 65, (2, 2), ((0, 1), (0, 1))) == 1


@pytest.mark.parametrize(
    "strides, dilation", [((1, 1), (1, 1)), ((2, 3), (1, 1)), ((1, 1), (2, 3))]
)
def test_xla_conv_runs_an_unpadded_dense_2d_convolution_padded_by_a_row(
    strides, dilation
):
    """XLA's convolution as the cores call it (lowering.xla_conv): an
    unpadded dense stride-1 2-D one runs padded above by one row, that
    row's output dropped (XLA:CPU's fast path); every one equals lax's own,
    values and gradients to second order; a strided, padded, grouped, 1-D
    or 3-D one runs as given."""
    dn = layout.dimension_numbers(2, False)
    unpadded = ((0, 0), (0, 0))
    x, kernel = normal(1, (2, 11, 10, 4)), normal(2, (3, 2, 4, 6))

    def ours(x_, k):
        return xla_conv.conv(
            x_, k, strides=strides, padding=unpadded, dilation=dilation
        )

    def lax_own(x_, k):
        return lax.conv_general_dilated(x_, k, strides, unpadded, rhs_dilation=dilation,
                                        dimension_numbers=dn)  # fmt: skip

    assert_close(ours(x, kernel), lax_own(x, kernel), rtol=1e-6, atol=1e-6)
    ct = normal(3, lax_own(x, kernel).shape)
    _, vjp = jax.vjp(ours, x, kernel)
    _, vjp_ref = jax.vjp(lax_own, x, kernel)
    for got, want in zip(vjp(ct), vjp_ref(ct), strict=True):
        assert_close(got, want, rtol=1e-5, atol=1e-5)
    with jax.enable_x64(True):
        args = (
            normal(4, (1, 7, 6, 2), np.float64),
            normal(5, (2, 3, 2, 3), np.float64),
        )
        check_grads(ours, args, order=2, modes=("fwd", "rev"))

    def paddings(fn, *args):
        jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
        return [e.params["padding"] for e in _all_eqns(jaxpr)
                if e.primitive.name == "conv_general_dilated"]  # fmt: skip

    rewritten = ((1, 0), (0, 0)) if strides == (1, 1) else unpadded
    assert paddings(ours, x, kernel) == [rewritten]
    grouped = normal(6, (3, 2, 2, 6))
    assert paddings(
        lambda x_, k: xla_conv.conv(x_, k, strides=strides, padding=unpadded,
                                    dilation=dilation, groups=2),
        x, grouped,
    ) == [unpadded]  # fmt: skip
    padded = ((0, 1), (0, 0))
    assert paddings(
        lambda x_, k: xla_conv.conv(x_, k, strides=strides, padding=padded,
                                    dilation=dilation),
        x, kernel,
    ) == [padded]  # fmt: skip
    for rank in (1, 3):
        x_r, k_r = normal(7, (2, *(6,) * rank, 3)), normal(8, (*(2,) * rank, 3, 4))
        pads = ((0, 0),) * rank
        assert paddings(
            lambda x_, k, pads=pads, rank=rank: xla_conv.conv(
                x_, k, strides=(1,) * rank, padding=pads, dilation=(1,) * rank
            ),
            x_r, k_r,
        ) == [pads]  # fmt: skip


# ---- the "eigen" core: XLA:CPU's Eigen convolution, not YNNPACK's ------------------

EIGEN_CASES = [
    (cj.Conv2D(5, (3, 2), padding="same", dilation_rate=(1, 2)), (2, 7, 6, 3)),
    (cj.Conv2D(4, 3), (2, 6, 5, 3)),
    (cj.Conv2D(4, 3, strides=2, padding="same", data_format="channels_first"),
     (2, 3, 9, 7)),
    (cj.Conv2D(6, 5, padding="same"), (1, 20, 4, 3)),
    (cj.Conv3D(3, (2, 3, 3), padding="same"), (2, 3, 5, 4, 2)),
    (cj.Conv2DTranspose(3, 3, strides=2, padding="same"), (2, 4, 3, 5)),
]  # fmt: skip
EIGEN_IDS = ["dilated", "valid", "strided-ncw", "tall", "3d", "transposed"]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("spec,shape", EIGEN_CASES, ids=EIGEN_IDS)
def test_the_eigen_core_matches_the_reference(spec, shape, dtype):
    """The "eigen" core's values and VJPs (its widened forward, input
    gradient and kernel gradient) against the reference path in the same
    dtype: "same" and "valid" padding, dilation, space-to-depth, a tall
    image (its kernel gradient's window widened along the height), a 3-D
    convolution's depth taps as channels, the polyphase rewrite."""
    with jax.enable_x64(dtype == jnp.float64):
        _core_matches_the_reference(spec, shape, dtype, impl="eigen")


@pytest.mark.parametrize("spec,shape", EIGEN_CASES[:2] + EIGEN_CASES[3:5],
                         ids=EIGEN_IDS[:2] + EIGEN_IDS[3:5])  # fmt: skip
def test_check_grads_second_order_eigen(spec, shape):
    """The "eigen" core's custom JVP against finite differences in float64,
    forward and reverse mode, to second order."""
    spec = dataclasses.replace(spec, impl="eigen")
    with jax.enable_x64(True):
        kernel = normal(1, spec.param_shapes(shape)["kernel"], np.float64)
        x = normal(2, shape, np.float64)

        def f(x_, kernel_):
            return spec.apply({"kernel": kernel_, "bias": jnp.zeros(spec.filters)}, x_)

        check_grads(f, (x, kernel), order=2, modes=("fwd", "rev"))


def test_the_eigen_core_programs_hold_no_ynnpack_convolution():
    """Compiled, the forward, input gradient and kernel gradient of a layer
    that XLA:CPU gives YNNPACK on the reference path (32 channels) are three
    plain convolutions, none reversed: Eigen's. This fails if XLA stops
    declining the widened shapes, or swaps the kernel gradient's operands."""
    x, kernel = normal(0, (2, 8, 8, 32)), normal(1, (3, 3, 32, 32))

    def hlo(conv):
        loss = lambda x_, k: jnp.sum(jnp.tanh(conv(x_, k)))  # noqa: E731
        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return grad.lower(x, kernel).compile().as_text()

    ours = hlo(lambda x_, k: eigen.conv(x_, k, padding=((1, 1), (1, 1)),
                                        dilation=(1, 1)))  # fmt: skip
    plain = hlo(
        lambda x_, k: lax.conv_general_dilated(
            x_, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    )
    convolutions = [line for line in ours.splitlines() if " convolution(" in line]
    assert len(convolutions) == 3, convolutions
    assert "ynn_fusion" not in ours and "reversal" not in ours
    assert "ynn_fusion" in plain  # the shapes this core avoids do go to YNNPACK


def test_the_eigen_core_applies():
    """Padding past the dilated kernel's reach (the input gradient would
    crop) and a 1x1 kernel (no window to widen) are refused, with a
    ValueError from ``eigen.conv``; the kernel gradient's window is widened
    along the width, or along the height where widening the width would make
    XLA swap the operands."""
    same = ((1, 1), (1, 1))
    assert eigen.applies((2, 8, 8, 4), (3, 3, 4, 4), (same, (1, 1)))
    assert not eigen.applies((2, 8, 8, 4), (3, 3, 4, 4), (((3, 1), (1, 1)), (1, 1)))
    assert eigen.applies((2, 8, 8, 4), (3, 3, 4, 4), (((3, 1), (1, 1)), (2, 1)))
    assert not eigen.applies((2, 8, 8, 4), (1, 1, 4, 4), (((0, 0), (0, 0)), (1, 1)))
    with pytest.raises(ValueError, match="Eigen core cannot run"):
        eigen.conv(jnp.ones((2, 8, 8, 4)), jnp.ones((1, 1, 4, 4)),
                   padding=((0, 0), (0, 0)), dilation=(1, 1))  # fmt: skip
    pads = ((2, 2), (2, 2))
    assert eigen._window_axis((12, 4), pads, (12, 4)) == 1
    assert eigen._window_axis((20, 4), pads, (20, 4)) == 0


def test_the_eigen_rule():
    """``impl="auto"`` takes the "eigen" core for a dense, forward, stride-1
    float32 2-D or 3-D convolution of at least EIGEN_MIN_CHANNELS channels
    (a 3-D one's stacked depth taps counted) whose wider side is within
    EIGEN_CHANNELS from EIGEN_MIN_POSITIONS positions, or within
    EIGEN_CHANNELS_FEW_POSITIONS from EIGEN_MIN_POSITIONS_FEW."""
    rule = functools.partial(
        choose.choose_impl, transposed=False, kernel_size=(3, 3), strides=(1, 1),
        groups=1, dtype=jnp.float32, backend="cpu",
    )  # fmt: skip
    many, few = choose.EIGEN_MIN_POSITIONS, choose.EIGEN_MIN_POSITIONS_FEW
    assert rule(channels=32, filters=32, positions=many) == "eigen"
    assert rule(channels=32, filters=32, positions=many - 1) == "im2col"
    assert rule(channels=64, filters=64, positions=few) == "eigen"
    assert rule(channels=64, filters=64, positions=few - 1) == "im2col"
    assert rule(channels=32, filters=32, positions=few) == "im2col"
    assert rule(channels=128, filters=128, positions=many) == "eigen"
    assert rule(channels=128, filters=129, positions=many) == "im2col"
    assert rule(channels=16, filters=64, positions=many) == "eigen"
    assert rule(channels=15, filters=64, positions=many) == "im2col"
    assert rule(channels=16, filters=16, positions=many) == "im2col"  # Eigen's already
    for kwargs in (dict(strides=(2, 2)), dict(transposed=True), dict(kernel_size=(1, 1)),
                   dict(dtype=jnp.bfloat16), dict(dtype=jnp.float64),
                   dict(channels_first=True), dict(positions=None), dict(filters=None)):  # fmt: skip
        settings = dict(channels=64, filters=64, positions=many) | kwargs
        assert rule(**settings) != "eigen", kwargs
    cube = functools.partial(rule, kernel_size=(3, 3, 3), strides=(1, 1, 1))
    assert cube(channels=32, filters=32, positions=2 * 32**3) == "eigen"  # 96 stacked
    assert cube(channels=48, filters=32, positions=2 * 32**3) == "im2col"  # 144
    assert rule(channels=64, filters=64, positions=many, backend="gpu") == "reference"
