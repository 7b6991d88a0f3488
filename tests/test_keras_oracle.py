"""Keras 3 (JAX backend) as the oracle for every convolution family.

- One seeded sweep of random configs of every layer (``conftest.sweep``):
  ``Conv1D``, ``Conv2D``, ``Conv3D``, their transposes, ``DepthwiseConv1D/2D``
  and ``SeparableConv1D/2D`` (kernel sizes, strides and dilations as ints
  and per axis, every padding in any case, both data formats, groups,
  output_padding, depth multipliers, activations, with and without bias,
  several batch axes): outputs and the VJP w.r.t. the input and every param
  equal Keras's, each side one jitted program (``conftest.check_against_keras``;
  Keras's weights are set by their names). Keras's layers take one batch
  axis, so inputs with several are flattened for Keras and compared after
  reshaping back.
- Configs the random sweep seldom reaches, through the same harness.
- ``padding="causal"`` for the depthwise and separable 1-D layers (our
  extension; Keras refuses it) equals Keras's "valid" layer on the input
  left-padded with ``(kernel_size - 1) * dilation_rate`` zeros, and
  ``output[t]`` never depends on a later input step.
- Input dtypes and low-precision params, cast as Keras casts them.
- Grouped transposed convolutions, our extension over Keras, against
  PyTorch's ``conv_transpose2d/3d(..., groups=g)``: values and gradients.
"""

import dataclasses

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import (
    ACTIVATIONS_DW,
    ACTIVATIONS_ND,
    ALL_CONV,
    CONV,
    DEPTHWISE,
    FAST_COMPILE,
    SEPARABLE,
    TRANSPOSE,
    assert_close,
    check_against_keras,
    k_eff_of,
    keras_layer,
    keras_shape,
    keras_weight_names,
    normal,
    per_axis,
    random_params,
    shaped,
    sweep,
    sweep_case,
    values_and_vjps,
)

ND = [*CONV[1:], *TRANSPOSE[1:]]
ALL_CLASSES = ALL_CONV


def _ids(classes):
    return [cls.__name__ for cls in classes]


# ---- 1. the sweep: values and VJPs against Keras -----------------------------------


@pytest.mark.parametrize("case", sweep(ALL_CLASSES))
def test_values_and_vjps_match_keras(case):
    cls, seed = case
    check_against_keras(cls, *sweep_case(cls, seed), seed)


def test_nd_sweep_covers_the_options():
    """The random N-d sweep reaches every option it is meant to cover."""
    seen = {}
    for param in sweep(ND):
        cls, seed = param.values[0]
        config, batch, _, _ = sweep_case(cls, seed)
        spec = cls(**config)
        for key, value in [
            ("kernel_size is an int", isinstance(config["kernel_size"], int)),
            ("kernel sizes differ per axis", len(set(spec.kernel_size)) > 1),
            ("strides differ per axis", len(set(spec.strides)) > 1),
            ("dilations differ per axis", len(set(spec.dilation_rate)) > 1),
            ("upper-case padding", config["padding"] != spec.padding),
            ("padding", spec.padding),
            ("data_format", spec.data_format),
            ("activation", config["activation"]),
            ("use_bias", spec.use_bias),
            ("batch rank", len(batch)),
            (f"{cls.__name__} groups > 1", spec.groups > 1),
            (
                f"{cls.__name__} output_padding set",
                getattr(spec, "output_padding", None) is not None,
            ),
        ]:
            seen.setdefault(key, set()).add(value)
    for key in (
        "Conv2D groups > 1",
        "Conv3D groups > 1",
        "Conv2DTranspose output_padding set",
        "Conv3DTranspose output_padding set",
    ):
        assert seen[key] == {False, True}, key
    assert seen["padding"] == {"valid", "same"}
    assert seen["data_format"] == {"channels_last", "channels_first"}
    assert seen["activation"] == set(ACTIVATIONS_ND)
    assert seen["batch rank"] == {1, 2}
    for key in (
        "kernel_size is an int",
        "kernel sizes differ per axis",
        "strides differ per axis",
        "dilations differ per axis",
        "upper-case padding",
        "use_bias",
    ):
        assert seen[key] == {False, True}, key


def test_depthwise_sweep_covers_the_options():
    """The random depthwise and separable sweep reaches every option it is
    meant to cover, for every layer."""
    for cls in DEPTHWISE + SEPARABLE:
        seen = {}
        for param in sweep([cls]):
            _, seed = param.values[0]
            config, batch, _, _ = sweep_case(cls, seed)
            spec = cls(**config)
            for key, value in [
                ("kernel_size is an int", isinstance(config["kernel_size"], int)),
                ("strides > 1", max(spec.strides) > 1),
                ("dilation > 1", max(spec.dilation_rate) > 1),
                (
                    "strides > 1 with dilation > 1",
                    max(spec.strides) > 1 and max(spec.dilation_rate) > 1,
                ),
                ("upper-case padding", config["padding"] != spec.padding),
                ("padding", spec.padding),
                ("depth_multiplier", spec.depth_multiplier),
                ("data_format", spec.data_format),
                ("activation", config["activation"]),
                ("use_bias", spec.use_bias),
                ("batch rank", len(batch)),
            ]:
                seen.setdefault(key, set()).add(value)
            if cls.rank == 2:
                seen.setdefault("kernel sizes differ per axis", set()).add(
                    len(set(spec.kernel_size)) > 1
                )
        name = cls.__name__
        assert seen["padding"] == {"valid", "same"}, name
        assert seen["depth_multiplier"] == {1, 2, 3}, name
        assert seen["data_format"] == {"channels_last", "channels_first"}, name
        assert seen["batch rank"] == {1, 2}, name
        assert seen["activation"] == set(ACTIVATIONS_DW), name
        for key in (
            "kernel_size is an int",
            "strides > 1",
            "dilation > 1",
            "strides > 1 with dilation > 1",
            "upper-case padding",
            "use_bias",
            *(["kernel sizes differ per axis"] if cls.rank == 2 else []),
        ):
            assert seen[key] == {False, True}, (name, key)


# ---- 2. corners the sweep seldom reaches ---------------------------------------------

# (class, config, batch, spatial, channels, seed). Kernels shorter than the
# stride (Keras's transposed "same" padding is then clamped to k_eff - 1 on
# the left), inputs shorter than the kernel or the stride with "same",
# length-1 axes; for the depthwise and separable layers, configs where "auto"
# picks other cores: enough channels for the shift core (under strides with
# dilation too), a kernel long enough for the FFT core.
EDGE_CASES = [
    (cj.Conv2DTranspose, dict(filters=3, kernel_size=(1, 2), strides=(3, 4),
                              padding="same"), (2,), (3, 2), 2, 7),
    (cj.Conv2DTranspose, dict(filters=2, kernel_size=(2, 1), strides=3,
                              data_format="channels_first"), (2,), (2, 3), 3, 7),
    (cj.Conv3DTranspose, dict(filters=2, kernel_size=(1, 1, 2), strides=(2, 3, 3),
                              padding="same", output_padding=(1, 2, 0)),
     (1, 2), (2, 1, 2), 2, 7),
    (cj.Conv2D, dict(filters=4, kernel_size=(1, 4), strides=(3, 1), padding="same"),
     (2,), (1, 2), 3, 7),
    (cj.Conv3D, dict(filters=2, kernel_size=(3, 1, 2), strides=(2, 3, 1),
                     padding="same", groups=2, data_format="channels_first"),
     (2,), (1, 7, 2), 4, 7),
    (cj.DepthwiseConv2D, dict(kernel_size=3, strides=2, dilation_rate=2,
                              padding="same", depth_multiplier=2), (2,), (9, 8), 8,
     9),
    (cj.DepthwiseConv2D, dict(kernel_size=(3, 2), data_format="channels_first"),
     (1, 2), (4, 5), 12, 9),
    (cj.DepthwiseConv1D, dict(kernel_size=64, padding="same"), (2,), (70,), 2, 9),
    (cj.DepthwiseConv1D, dict(kernel_size=4, strides=5, padding="same",
                              depth_multiplier=3), (2,), (3,), 2, 9),
    (cj.SeparableConv1D, dict(filters=8, kernel_size=5, strides=3, dilation_rate=2,
                              padding="same"), (2,), (13,), 16, 9),
    (cj.SeparableConv2D, dict(filters=4, kernel_size=(1, 4), strides=(3, 1),
                              padding="same", depth_multiplier=2), (2,), (1, 2), 3,
     9),
    (cj.SeparableConv2D, dict(filters=3, kernel_size=2, dilation_rate=(2, 1),
                              data_format="channels_first"), (1,), (3, 2), 9, 9),
]  # fmt: skip


@pytest.mark.parametrize(
    "cls, config, batch, spatial, channels, seed",
    EDGE_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(EDGE_CASES)],
)
def test_edge_configs_values_and_vjps_match_keras(
    cls, config, batch, spatial, channels, seed
):
    check_against_keras(cls, config, batch, spatial, channels, seed)


def test_the_depthwise_edge_cases_reach_the_cores():
    picked = set()
    for cls, config, _, _, channels, _ in EDGE_CASES:
        if cls not in DEPTHWISE + SEPARABLE:
            continue
        spec = cls(**config)
        picked.add(
            cj.lowering.choose_impl(
                transposed=False,
                kernel_size=spec.kernel_size,
                strides=spec.strides,
                groups=channels,
                channels=channels,
                dtype=jnp.float32,
                backend="cpu",
                channels_first=spec.data_format == "channels_first",
            )
        )
    assert {"shift", "fft", "blockdiag"} <= picked, picked


def test_seed_000_example():
    # tf.keras's documented example: a (4, 7, 10, 128) input gives (4, 7, 8, 32).
    spec = cj.Conv1D(32, 3, activation="relu")
    x = normal(0, (4, 7, 10, 128))
    params = spec.init(jax.random.key(0), x.shape)
    y = spec.apply(params, x)
    assert y.shape == (4, 7, 8, 32)
    klayer = keras_layer(
        cj.Conv1D,
        dict(filters=32, kernel_size=3, activation="relu", use_bias=True),
        (28, 10, 128),
        params,
    )
    assert_close(y, np.asarray(klayer(x.reshape(28, 10, 128))).reshape(y.shape))


def test_output_channel_order_is_kerass():
    """Output channel ``c * depth_multiplier + m`` is input channel ``c``'s
    filter ``m``: with a one-tap kernel the output is the input scaled."""
    spec = cj.DepthwiseConv2D(1, depth_multiplier=3, use_bias=False)
    x = normal(0, (2, 3, 3, 2))
    kernel = jnp.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    y = spec.apply({"kernel": kernel}, x)
    for c in range(2):
        for m in range(3):
            assert_close(y[..., c * 3 + m], x[..., c] * kernel[0, 0, c, m])


# ---- 3. causal padding of the depthwise and separable 1-D layers -------------------

# (class, config, batch, steps, channels)
CAUSAL_CASES = [
    (cj.DepthwiseConv1D, dict(kernel_size=3), (2,), 9, 2),
    (cj.DepthwiseConv1D, dict(kernel_size=4, depth_multiplier=2, strides=2), (3,),
     11, 3),
    (cj.DepthwiseConv1D, dict(kernel_size=3, dilation_rate=3, depth_multiplier=3,
                              activation="tanh"), (2, 2), 10, 2),
    (cj.DepthwiseConv1D, dict(kernel_size=2, strides=3, dilation_rate=2,
                              data_format="channels_first", use_bias=False), (2,),
     13, 3),
    (cj.DepthwiseConv1D, dict(kernel_size=5, strides=2, dilation_rate=2,
                              depth_multiplier=2), (1,), 6, 2),
    (cj.SeparableConv1D, dict(filters=3, kernel_size=3), (2,), 8, 2),
    (cj.SeparableConv1D, dict(filters=4, kernel_size=4, strides=2, dilation_rate=2,
                              depth_multiplier=2, activation="relu"), (2,), 12, 3),
    (cj.SeparableConv1D, dict(filters=2, kernel_size=3, dilation_rate=2,
                              data_format="channels_first", depth_multiplier=3),
     (2, 2), 9, 2),
    (cj.SeparableConv1D, dict(filters=5, kernel_size=2, strides=3, use_bias=False),
     (3,), 10, 4),
    # inputs shorter than the kernel extent and the stride: one output step
    (cj.DepthwiseConv1D, dict(kernel_size=5, strides=3, dilation_rate=2), (2,), 2, 2),
    (cj.SeparableConv1D, dict(filters=2, kernel_size=4, depth_multiplier=2), (2,), 1,
     3),
]  # fmt: skip
CAUSAL_IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CAUSAL_CASES)]


def _left_pad(x, amount, data_format):
    axis = -2 if data_format == "channels_last" else -1
    pads = [(0, 0)] * x.ndim
    pads[axis] = (amount, 0)
    return jnp.pad(x, pads)


@pytest.mark.parametrize("cls, config, batch, steps, channels", CAUSAL_CASES,
                         ids=CAUSAL_IDS)  # fmt: skip
def test_causal_equals_keras_valid_on_the_left_padded_input(
    cls, config, batch, steps, channels
):
    spec = cls(**config, padding="causal")
    assert spec.padding == "causal"
    (k,), (d,) = spec.kernel_size, spec.dilation_rate
    amount = (k - 1) * d
    y = check_against_keras(
        cls,
        {**config, "padding": "causal"},
        batch,
        (steps,),
        channels,
        3,
        data_seed=4,
        keras_config={**config, "padding": "valid"},
        keras_spatial=(steps + amount,),
        keras_input=lambda x: _left_pad(x, amount, spec.data_format),
    )
    # every step has an output: ceil(steps / strides) of them
    (s,) = spec.strides
    time_axis = -2 if spec.data_format == "channels_last" else -1
    assert y.shape[time_axis] == -(-steps // s)


@pytest.mark.parametrize("cls, config, batch, steps, channels", CAUSAL_CASES,
                         ids=CAUSAL_IDS)  # fmt: skip
def test_causal_output_does_not_depend_on_later_steps(
    cls, config, batch, steps, channels
):
    """``d output[t] / d input[u]`` is zero for every ``u > t * strides``,
    and not for ``u = t * strides`` (the newest step each output sees)."""
    spec = cls(**config, padding="causal")
    spec = dataclasses.replace(spec, activation="tanh")  # keep it smooth
    channels_last = spec.data_format == "channels_last"
    shape = (1, steps, channels) if channels_last else (1, channels, steps)
    params = random_params(spec, shape, 5)
    x = normal(6, shape)
    jac = jax.jit(
        jax.jacobian(lambda x_: spec.apply(params, x_)), compiler_options=FAST_COMPILE
    )(x)
    jac = np.asarray(jac)[0]
    if channels_last:  # (T_out, F, T_in, C)
        jac = jac[:, :, 0, :, :]
    else:  # (F, T_out, C, T_in) -> (T_out, F, T_in, C)
        jac = jac[:, :, 0, :, :].transpose(1, 0, 3, 2)
    (s,) = spec.strides
    for t in range(jac.shape[0]):
        assert np.all(jac[t, :, t * s + 1 :, :] == 0.0), t
        assert np.any(jac[t, :, t * s, :] != 0.0), t


# ---- 4. dtypes, cast as Keras casts them ------------------------------------------


@pytest.mark.parametrize(
    "dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.bfloat16, jnp.float16, bool]
)
@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_input_dtypes_cast_as_keras(cls, dtype):
    """Keras casts float inputs to the layer's dtype and every input to the
    kernel's dtype; the output is float32 for float32 params."""
    spec = cls(4, 3, strides=2, padding="same")
    x = np.asarray(np.random.default_rng(0).integers(0, 4, (2, 9, 3)), dtype)
    params = spec.init(jax.random.key(0), x.shape)
    klayer = keras_layer(
        cls,
        dict(filters=4, kernel_size=3, strides=2, padding="same", use_bias=True),
        x.shape,
        params,
    )
    y = spec.apply(params, x)
    if cls is cj.Conv1DTranspose and not jnp.issubdtype(x.dtype, jnp.floating):
        # Keras 3.15's conv_transpose does not cast non-float inputs and fails
        # inside lax; we cast them as its Conv1D does.
        with pytest.raises(Exception, match="same dtypes"):
            klayer(x)
        x = x.astype(np.float32)
    y_k = klayer(x)
    assert y.dtype == jnp.float32 == y_k.dtype
    assert_close(y, y_k)


@pytest.mark.promotion  # bfloat16/float16 params on float32 inputs
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_low_precision_params_match_keras_dtype_policy(cls, dtype):
    """With params in a low-precision dtype, the whole layer computes in it,
    as a Keras layer built with that dtype does."""
    spec = cls(8, 5, padding="same", activation="gelu")
    x = normal(3, (2, 16, 6))
    params = spec.init(jax.random.key(0), x.shape, dtype=dtype)
    assert all(p.dtype == jnp.dtype(dtype) for p in params.values())
    keras_cls = getattr(keras.layers, cls.__name__)
    klayer = keras_cls(8, 5, padding="same", activation="gelu", dtype=dtype)
    klayer.build(x.shape)
    klayer.set_weights([np.asarray(params["kernel"]), np.asarray(params["bias"])])
    y = spec.apply(params, x)
    y_k = klayer(x)
    assert y.dtype == jnp.dtype(dtype) == y_k.dtype
    assert_close(y, y_k, rtol=2e-2, atol=2e-2)


@pytest.mark.promotion  # a bfloat16 pointwise kernel and bias, float32 else
@pytest.mark.parametrize("cls", SEPARABLE, ids=_ids(SEPARABLE))
def test_separable_kernels_of_other_dtypes_are_cast_as_keras_casts_them(cls):
    """The layer computes in the depthwise kernel's dtype and casts the bias
    to it; a pointwise kernel of another dtype is cast too, as Keras casts
    every weight to its compute dtype (it does not refuse mixed weights)."""
    rank = cls.rank
    config = dict(filters=4, kernel_size=3, depth_multiplier=2)
    spec = cls(**config)
    shape = (2, *(6,) * rank, 3)
    params = random_params(spec, shape, 40)
    x = normal(41, shape)
    mixed = {
        **params,
        "pointwise_kernel": jnp.asarray(params["pointwise_kernel"], jnp.bfloat16),
        "bias": jnp.asarray(params["bias"], jnp.bfloat16),
    }
    as_f32 = {k: jnp.asarray(v, jnp.float32) for k, v in mixed.items()}
    expected = spec.apply(as_f32, x)
    klayer = keras_layer(cls, config, shape, as_f32)
    keras_names = keras_weight_names(klayer)
    y_keras, _ = klayer.stateless_call([mixed[n] for n in keras_names], [], x)
    assert y_keras.dtype == jnp.float32
    assert_close(y_keras, expected)
    # (conv1djax 0.2.0 raises lax's "conv_general_dilated requires arguments
    # to have the same dtypes, got float32, bfloat16" here: the pointwise
    # kernel is not cast)
    y = spec.apply(mixed, x)
    assert y.dtype == jnp.float32
    assert_close(y, expected)


# ---- 5. grouped transposed convolutions against PyTorch ------------------------------


def _torch_case(seed):
    """A random grouped Conv2DTranspose/Conv3DTranspose config; rank, padding,
    data format and strides-or-dilation cycle with the seed."""
    r = np.random.default_rng(90_000 + seed)
    rank = 2 + seed % 2
    groups = int(r.choice([2, 3]))
    kernel = per_axis(r, rank, 1, 3)
    ones = (1,) * rank
    strides, dilation = ones, ones
    while max(strides) == 1 and max(dilation) == 1:
        if seed % 3:
            strides = per_axis(r, rank, 1, 3 if rank == 2 else 2)
        else:
            dilation = per_axis(r, rank, 1, 2)
    output_padding = None
    if r.random() < 0.5:
        output_padding = tuple(int(r.integers(0, s)) for s in strides)
    config = dict(
        filters=groups * int(r.integers(1, 3)),
        kernel_size=kernel,
        strides=strides,
        padding=("valid", "same")[seed // 2 % 2],
        output_padding=output_padding,
        data_format=("channels_last", "channels_first")[seed // 4 % 2],
        dilation_rate=dilation,
        groups=groups,
        activation=[None, "relu", "tanh"][int(r.integers(3))],
        use_bias=seed % 5 != 4,
    )
    channels = groups * int(r.integers(1, 3))
    spatial = per_axis(r, rank, 2, 5 if rank == 2 else 3)
    batch = [(2,), (1, 2)][int(r.integers(2))]
    return config, batch, spatial, channels


N_TORCH = 10


def test_torch_cases_cover_the_options():
    configs = [_torch_case(s)[0] for s in range(N_TORCH)]
    assert {c["groups"] for c in configs} == {2, 3}
    assert {c["padding"] for c in configs} == {"valid", "same"}
    assert {c["data_format"] for c in configs} == {"channels_last", "channels_first"}
    assert {c["output_padding"] is None for c in configs} == {False, True}
    assert {c["use_bias"] for c in configs} == {False, True}
    assert {max(c["strides"]) > 1 for c in configs} == {False, True}
    assert {max(c["dilation_rate"]) > 1 for c in configs} == {False, True}
    assert {(c["padding"], max(c["strides"]) > 1) for c in configs} == {
        ("valid", False),
        ("valid", True),
        ("same", False),
        ("same", True),
    }


@pytest.mark.parametrize("seed", range(N_TORCH))
def test_grouped_conv_transpose_matches_torch(seed):
    """PyTorch's ``conv_transpose{2,3}d`` with ``padding=0`` gives the full
    output, ``(L - 1) * s + k_eff`` per axis; Keras's padding rule keeps
    ``[k_eff - 1 - left, ...)`` of it (negative crops are zero padding, then
    the bias is added)."""
    torch = pytest.importorskip("torch")
    config, batch, spatial, channels = _torch_case(seed)
    cls = cj.Conv2DTranspose if len(spatial) == 2 else cj.Conv3DTranspose
    rank = cls.rank
    spec = cls(**config)
    shape = shaped(batch, spatial, channels, spec.data_format)
    params = random_params(spec, shape, seed)
    x = normal(seed, shape)
    channels_last = spec.data_format == "channels_last"

    # ours: value and VJP in one program
    names = sorted(params)

    def ours(x, *ws):
        return spec.apply(dict(zip(names, ws, strict=True)), x)

    out_shape = spec.compute_output_shape(shape)
    ct = normal(1, out_shape)
    ((y, grads),) = values_and_vjps((ours,), [x, *(params[n] for n in names)], ct)
    assert y.shape == out_shape
    # the length rule is Keras's (which has no groups, but the same lengths)
    kcls = getattr(keras.layers, cls.__name__)
    kconfig = {k: v for k, v in config.items() if k != "groups"}
    assert tuple(y.shape[len(batch) :]) == tuple(
        kcls(**kconfig).compute_output_shape(keras_shape(batch, shape))[1:]
    )

    # torch, in float64, channels first, one batch axis
    def to_torch(a):
        a = np.asarray(a, np.float64).reshape((-1, *np.shape(a)[len(batch) :]))
        if channels_last:
            a = np.moveaxis(a, -1, 1)
        return torch.tensor(a, requires_grad=True)

    def from_torch(t):
        a = t.detach().numpy()
        if channels_last:
            a = np.moveaxis(a, 1, -1)
        return a.reshape((*batch, *a.shape[1:]))

    x_t = to_torch(x)
    kernel = np.asarray(params["kernel"], np.float64)  # (*k, f // g, c)
    w_t = torch.tensor(
        np.transpose(kernel, (rank + 1, rank, *range(rank))), requires_grad=True
    )  # (c, f // g, *k)
    conv_t = {
        2: torch.nn.functional.conv_transpose2d,
        3: torch.nn.functional.conv_transpose3d,
    }
    y_t = conv_t[rank](
        x_t, w_t, stride=spec.strides, dilation=spec.dilation_rate, groups=spec.groups
    )
    pads = cj.shapes.conv_transpose_paddings(
        spec.kernel_size, spec.strides, spec.padding, spec.output_padding,
        spec.dilation_rate,
    )  # fmt: skip
    torch_pad = []
    for (left, right), k_eff in reversed(
        list(zip(pads, k_eff_of(spec.kernel_size, spec.dilation_rate), strict=True))
    ):
        torch_pad += [left - (k_eff - 1), right - (k_eff - 1)]
    y_t = torch.nn.functional.pad(y_t, torch_pad)
    if spec.use_bias:
        b_t = torch.tensor(np.asarray(params["bias"], np.float64), requires_grad=True)
        y_t = y_t + b_t.reshape(-1, *(1,) * rank)
    if config["activation"] is not None:
        y_t = getattr(torch, config["activation"])(y_t)
    (y_t * to_torch(ct).detach()).sum().backward()

    assert_close(y, from_torch(y_t))
    expected = {"kernel": np.transpose(w_t.grad.numpy(), (*range(2, rank + 2), 1, 0))}
    if spec.use_bias:
        expected["bias"] = b_t.grad.numpy()
    assert_close(grads[0], from_torch(x_t.grad), err_msg="VJP w.r.t. x")
    for name, g in zip(names, grads[1:], strict=True):
        assert_close(g, expected[name], err_msg=f"VJP w.r.t. {name}")
