"""Every lowering equals the reference path, values and gradients.

``impl="reference"`` is one ``lax.conv_general_dilated`` (checked against
Keras in test_keras_oracle.py); the CPU lowerings (space-to-depth, polyphase,
channels-last layout, and the "direct", "blockdiag", "split", "shift" and "fft"
cores) are forced one by one on random configs and compared with it.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import conv1djax as cj
from conftest import assert_close, normal, random_params, specs_values_and_vjps
from conv1djax.lowering import choose, fft, rewrites, shift

CORES = choose.CORES

# The im2col core's GEMMs run on these small cases too (conftest).
pytestmark = pytest.mark.usefixtures("im2col_gemms_everywhere")

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
