"""Keras 3 (JAX backend) as the oracle for the 2-D and 3-D layers.

- A seeded sweep of random ``Conv2D``, ``Conv3D``, ``Conv2DTranspose`` and
  ``Conv3DTranspose`` configs (per-axis kernel sizes, strides and dilations,
  both paddings in any case, both data formats, groups, output_padding,
  activations, with and without bias, one or two batch axes): outputs and the
  VJP with respect to the input, kernel and bias match Keras's, each side one
  jitted program. Keras's layers take one batch axis, so inputs with two are
  flattened for Keras and compared after reshaping back.
- Grouped transposed convolutions, our extension over Keras, against
  PyTorch's ``conv_transpose2d/3d(..., groups=g)``: values and gradients.
- Shapes of every sweep config: ``compute_output_shape`` (with None in batch
  and spatial entries too), ``param_shapes``, ``init`` and ``count_params``
  agree with what ``apply`` returns and with Keras.
- Configs both ways: JSON round trips, our configs loaded by Keras, Keras's
  configs loaded by us, computing the same numbers.
- The canonical form of all six convolution specs: equal layers are equal
  specs with equal hashes, and compile once as static arguments of
  ``jax.jit``.
"""

import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import assert_close, compare_with_keras, normal, random_params

ACTIVATIONS = [
    None, "linear", "relu", "gelu", "tanh", "softmax", "sigmoid", "silu", "elu",
    "log_softmax", "glu", "hard_sigmoid",
]  # fmt: skip
# They act along the last axis: the sweep keeps it the channel axis.
LAST_AXIS_ACTIVATIONS = ("softmax", "log_softmax", "glu")

N_CONV2D = 60
N_CONV3D = 24
N_CONV2D_TRANSPOSE = 48
N_CONV3D_TRANSPOSE = 20

ALL_CLASSES = [
    cj.Conv1D, cj.Conv2D, cj.Conv3D,
    cj.Conv1DTranspose, cj.Conv2DTranspose, cj.Conv3DTranspose,
]  # fmt: skip

# ---- random configs ---------------------------------------------------------


def _per_axis(r, rank, low, high):
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
        return _per_axis(r, rank, 1, max_stride), ones
    if mode < 0.85:
        return ones, _per_axis(r, rank, 1, max_dilation)
    return ones, ones


def _k_eff(kernel, dilation):
    return tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))


def _conv_case(rank, seed):
    """A random Conv2D/Conv3D config, its batch shape, spatial lengths and
    channel count."""
    r = np.random.default_rng(1000 * rank + seed)
    kernel = _per_axis(r, rank, 1, 4 if rank == 2 else 3)
    if r.random() < 0.3:
        kernel = (kernel[0],) * rank
    strides, dilation = _strides_and_dilation(r, rank, 3, 3 if rank == 2 else 2)
    groups = int(r.choice([1, 1, 2, 3]))
    activation = ACTIVATIONS[int(r.integers(len(ACTIVATIONS)))]
    filters = groups * int(r.integers(1, 6 // groups + 1))
    if activation in LAST_AXIS_ACTIVATIONS and filters % 2:
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
    if activation in LAST_AXIS_ACTIVATIONS:
        config["data_format"] = "channels_last"
    channels = groups * int(r.integers(1, 6 // groups + 1))
    high = 9 if rank == 2 else 5
    spatial = []
    for k_eff in _k_eff(kernel, dilation):
        low = k_eff if config["padding"].lower() == "valid" else 1
        spatial.append(int(r.integers(low, max(low, high) + 1)))
    batch = (
        [(2,), (3,), (2, 2)][int(r.integers(3))]
        if rank == 2
        else [(2,), (1, 2)][int(r.integers(2))]
    )
    return config, batch, tuple(spatial), channels


def _transpose_case(rank, seed):
    """A random Conv2DTranspose/Conv3DTranspose config (no groups: Keras has
    none), its batch shape, spatial lengths and channel count."""
    r = np.random.default_rng(50_000 + 1000 * rank + seed)
    kernel = _per_axis(r, rank, 1, 4 if rank == 2 else 3)
    if r.random() < 0.3:
        kernel = (kernel[0],) * rank
    strides, dilation = _strides_and_dilation(r, rank, 3 if rank == 2 else 2, 2)
    output_padding = None
    if r.random() < 0.5:
        output_padding = tuple(int(r.integers(0, s)) for s in strides)
        if len(set(strides)) == 1:
            output_padding = _int_or_tuple(r, (output_padding[0],) * rank)
    activation = ACTIVATIONS[int(r.integers(len(ACTIVATIONS)))]
    filters = int(r.integers(1, 6))
    if activation in LAST_AXIS_ACTIVATIONS and filters % 2:
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
    if activation in LAST_AXIS_ACTIVATIONS:
        config["data_format"] = "channels_last"
    channels = int(r.integers(1, 7))
    spatial = list(_per_axis(r, rank, 1, 6 if rank == 2 else 4))
    if output_padding is not None and config["padding"].lower() == "same":
        # Keras's length is then (L - 1) * s + k_eff % 2 + output_padding:
        # empty for L = 1, an even k_eff and output_padding 0.
        ops = (
            (output_padding,) * rank
            if isinstance(output_padding, int)
            else output_padding
        )
        for i, (k_eff, op) in enumerate(
            zip(_k_eff(kernel, dilation), ops, strict=True)
        ):
            if spatial[i] == 1 and k_eff % 2 == 0 and op == 0:
                spatial[i] = 2
    batch = (
        [(2,), (3,), (2, 2)][int(r.integers(3))]
        if rank == 2
        else [(2,), (1, 2)][int(r.integers(2))]
    )
    return config, batch, tuple(spatial), channels


SWEEP = (
    [(cj.Conv2D, s) for s in range(N_CONV2D)]
    + [(cj.Conv3D, s) for s in range(N_CONV3D)]
    + [(cj.Conv2DTranspose, s) for s in range(N_CONV2D_TRANSPOSE)]
    + [(cj.Conv3DTranspose, s) for s in range(N_CONV3D_TRANSPOSE)]
)


def _case(cls, seed):
    make = _transpose_case if cls.transposed else _conv_case
    return make(cls.rank, seed)


def _sweep_id(case):
    cls, seed = case
    return f"{cls.__name__}-{seed}"


def _sweep_cases(cls):
    return [c for c in SWEEP if c[0] is cls]


# ---- helpers, as in test_keras_oracle.py ------------------------------------------


def _shape(batch, spatial, channels, data_format):
    if data_format == "channels_last":
        return (*batch, *spatial, channels)
    return (*batch, channels, *spatial)


def _keras_shape(batch, shape):
    """The shape for Keras, the batch axes flattened into one (None when any
    of them is None)."""
    n = None if None in batch else math.prod(batch)
    return (n, *shape[len(batch) :])


def _zeros_initialized(config):
    # The weights are overwritten, and Keras's random initializers would cost a
    # compilation per shape.
    return {**config, "kernel_initializer": "zeros", "bias_initializer": "zeros"}


def _keras_layer(kcls, config, input_shape, params):
    klayer = kcls(**_zeros_initialized(config))
    klayer.build(input_shape)
    _set_weights(klayer, params)
    return klayer


def _set_weights(klayer, params):
    klayer.set_weights(
        [np.asarray(params[k]) for k in ("kernel", "bias") if k in params]
    )


# ---- 1. values and VJPs against Keras ----------------------------------------------


def _check_sweep_case(cls, seed):
    _check_against_keras(cls, *_case(cls, seed), seed)


def _check_against_keras(cls, config, batch, spatial, channels, seed):
    spec = cls(**config)
    shape = _shape(batch, spatial, channels, spec.data_format)
    params = random_params(spec, shape, seed)
    kcls = getattr(keras.layers, cls.__name__)
    klayer = _keras_layer(kcls, config, _keras_shape(batch, shape), params)
    y = compare_with_keras(spec, klayer, params, normal(seed, shape), batch)
    assert y.shape == spec.compute_output_shape(shape)


@pytest.mark.parametrize("case", _sweep_cases(cj.Conv2D), ids=_sweep_id)
def test_conv2d_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


@pytest.mark.parametrize("case", _sweep_cases(cj.Conv3D), ids=_sweep_id)
def test_conv3d_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


@pytest.mark.parametrize("case", _sweep_cases(cj.Conv2DTranspose), ids=_sweep_id)
def test_conv2d_transpose_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


@pytest.mark.parametrize("case", _sweep_cases(cj.Conv3DTranspose), ids=_sweep_id)
def test_conv3d_transpose_values_and_vjps_match_keras(case):
    _check_sweep_case(*case)


# Corners the random sweep seldom reaches: kernels shorter than the stride
# (Keras's transposed "same" padding is then clamped to k_eff - 1 on the left),
# inputs shorter than the kernel with "same", length-1 axes.
EDGE_CASES = [
    (cj.Conv2DTranspose, dict(filters=3, kernel_size=(1, 2), strides=(3, 4),
                              padding="same"), (2,), (3, 2), 2),
    (cj.Conv2DTranspose, dict(filters=2, kernel_size=(2, 1), strides=3,
                              data_format="channels_first"), (2,), (2, 3), 3),
    (cj.Conv3DTranspose, dict(filters=2, kernel_size=(1, 1, 2), strides=(2, 3, 3),
                              padding="same", output_padding=(1, 2, 0)),
     (1, 2), (2, 1, 2), 2),
    (cj.Conv2D, dict(filters=4, kernel_size=(1, 4), strides=(3, 1), padding="same"),
     (2,), (1, 2), 3),
    (cj.Conv3D, dict(filters=2, kernel_size=(3, 1, 2), strides=(2, 3, 1),
                     padding="same", groups=2, data_format="channels_first"),
     (2,), (1, 7, 2), 4),
]  # fmt: skip


@pytest.mark.parametrize(
    "cls, config, batch, spatial, channels",
    EDGE_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(EDGE_CASES)],
)
def test_edge_configs_values_and_vjps_match_keras(
    cls, config, batch, spatial, channels
):
    config = {"activation": None, "use_bias": True, **config}
    _check_against_keras(cls, config, batch, spatial, channels, 7)


def test_sweep_covers_the_options():
    """The random sweep reaches every option it is meant to cover."""
    seen = {}
    for cls, seed in SWEEP:
        config, batch, _, _ = _case(cls, seed)
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
    assert seen["activation"] == set(ACTIVATIONS)
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


# ---- 2. grouped transposed convolutions against PyTorch ------------------------------


def _torch_case(seed):
    """A random grouped Conv2DTranspose/Conv3DTranspose config; rank, padding,
    data format and strides-or-dilation cycle with the seed."""
    r = np.random.default_rng(90_000 + seed)
    rank = 2 + seed % 2
    groups = int(r.choice([2, 3]))
    kernel = _per_axis(r, rank, 1, 3)
    ones = (1,) * rank
    strides, dilation = ones, ones
    while max(strides) == 1 and max(dilation) == 1:
        if seed % 3:
            strides = _per_axis(r, rank, 1, 3 if rank == 2 else 2)
        else:
            dilation = _per_axis(r, rank, 1, 2)
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
    spatial = _per_axis(r, rank, 2, 5 if rank == 2 else 3)
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
    shape = _shape(batch, spatial, channels, spec.data_format)
    params = random_params(spec, shape, seed)
    x = normal(seed, shape)
    channels_last = spec.data_format == "channels_last"

    # ours: value and VJP in one program
    names = sorted(params)

    @jax.jit
    def ours(x, ws, ct):
        def f(x, *ws):
            return spec.apply(dict(zip(names, ws, strict=True)), x)

        y, vjp = jax.vjp(f, x, *ws)
        return y, vjp(ct)

    out_shape = spec.compute_output_shape(shape)
    ct = normal(1, out_shape)
    y, grads = ours(x, [params[n] for n in names], ct)
    assert y.shape == out_shape
    # the length rule is Keras's (which has no groups, but the same lengths)
    kcls = getattr(keras.layers, cls.__name__)
    kconfig = {k: v for k, v in config.items() if k != "groups"}
    assert tuple(y.shape[len(batch) :]) == tuple(
        kcls(**kconfig).compute_output_shape(_keras_shape(batch, shape))[1:]
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
        list(zip(pads, _k_eff(spec.kernel_size, spec.dilation_rate), strict=True))
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


# ---- 3. shapes ----------------------------------------------------------------------


def _unknown_variants(batch, spatial, r):
    """``(batch, spatial)``: the known shape, then with None in the batch
    axes, in some spatial axes, and everywhere but the channel axis."""
    some = tuple(None if r.random() < 0.5 else n for n in spatial)
    if some == spatial:
        some = (None, *spatial[1:])
    return [
        (batch, spatial),
        ((None,) * len(batch), spatial),
        ((*batch[:-1], None), some),
        ((None,) * len(batch), (None,) * len(spatial)),
    ]


@pytest.mark.parametrize("case", SWEEP, ids=_sweep_id)
def test_output_and_param_shapes_match_keras(case):
    cls, seed = case
    config, batch, spatial, channels = _case(cls, seed)
    spec = cls(**config)
    kcls = getattr(keras.layers, cls.__name__)
    klayer = kcls(**_zeros_initialized(config))
    shape = _shape(batch, spatial, channels, spec.data_format)

    # what apply returns, abstractly evaluated (the sweep runs it)
    params = jax.eval_shape(lambda k: spec.init(k, shape), jax.random.key(0))
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    assert jax.eval_shape(spec.apply, params, x).shape == spec.compute_output_shape(
        shape
    )

    for b, sp in _unknown_variants(batch, spatial, np.random.default_rng(seed)):
        s = _shape(b, sp, channels, spec.data_format)
        ours = spec.compute_output_shape(s)
        theirs = tuple(klayer.compute_output_shape(_keras_shape(b, s)))
        if config["activation"] == "glu":
            # Keras's compute_output_shape leaves the activation out; glu
            # halves the channel axis (the sweep checks the real output)
            theirs = (*theirs[:-1], theirs[-1] // 2)
        assert ours[: len(b)] == b, s
        assert ours[len(b) :] == theirs[1:], s

    klayer.build(_keras_shape(batch, shape))
    expected = {"kernel": tuple(klayer.kernel.shape)}
    if spec.use_bias:
        expected["bias"] = tuple(klayer.bias.shape)
    assert spec.param_shapes(shape) == expected
    assert {k: v.shape for k, v in params.items()} == expected
    assert all(v.dtype == jnp.float32 for v in params.values())
    assert spec.count_params(shape) == klayer.count_params()


# ---- 4. configs both ways -----------------------------------------------------------


def _without_name(config):
    return {k: v for k, v in config.items() if k != "name"}


@pytest.mark.parametrize("case", SWEEP, ids=_sweep_id)
def test_sweep_config_round_trips_and_loads_both_ways(case):
    """JSON round trip; Keras builds from our config the layer it builds from
    the same arguments; Keras's config gives back our spec."""
    cls, seed = case
    config = _zeros_initialized(_case(cls, seed)[0])
    spec = cls(**config)
    ours = json.loads(json.dumps(spec.get_config()))
    restored = cls.from_config(ours)
    assert restored == spec
    assert hash(restored) == hash(spec)

    kcls = getattr(keras.layers, cls.__name__)
    oracle = kcls(**config)
    assert _without_name(kcls.from_config(ours).get_config()) == _without_name(
        oracle.get_config()
    )
    from_keras = cls.from_config(oracle.get_config())
    assert from_keras == spec
    assert hash(from_keras) == hash(spec)


RICH_SPECS = [
    (
        cj.Conv2D(
            6, (3, 2), strides=(2, 1), padding="same", data_format="channels_first",
            groups=3, activation="swish", use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=cj.regularizers.L1L2(l1=0.01, l2=0.02),
            # Keras rounds L1's factor to float32 in its config: 0.25 is exact
            activity_regularizer=cj.regularizers.L1(0.25),
            kernel_constraint=cj.constraints.MaxNorm(3.0, axis=(0, 1, 2)),
        ),
        (2, 6, 7, 5),
    ),
    (
        cj.Conv2D(
            4, 3, dilation_rate=(1, 2), activation="gelu",
            bias_initializer=cj.initializers.Constant(0.5), bias_regularizer="l2",
            bias_constraint="non_neg",
        ),
        (2, 6, 8, 3),
    ),
    (
        cj.Conv3D(
            4, (1, 2, 3), strides=(1, 2, 1), padding="same", groups=2,
            activation="relu",
            kernel_initializer=cj.initializers.VarianceScaling(
                2.0, "fan_avg", "uniform"
            ),
        ),
        (2, 3, 4, 5, 4),
    ),
    (
        cj.Conv2DTranspose(
            4, (3, 4), strides=(2, 3), padding="same", output_padding=(1, 0),
            activation="tanh", kernel_constraint="unit_norm",
        ),
        (2, 3, 4, 5),
    ),
    (
        cj.Conv3DTranspose(
            2, 2, strides=(1, 2, 2), output_padding=(0, 1, 0),
            data_format="channels_first", kernel_initializer="lecun_uniform",
            kernel_regularizer=cj.regularizers.L2(0.05),
        ),
        (1, 3, 2, 3, 2),
    ),
    (
        cj.Conv3DTranspose(
            2, (2, 1, 3), dilation_rate=(2, 1, 1), padding="same",
            activation="sigmoid", bias_initializer="ones",
        ),
        (1, 3, 2, 3, 2),
    ),
]  # fmt: skip
RICH_IDS = [f"{type(spec).__name__}-{i}" for i, (spec, _) in enumerate(RICH_SPECS)]


@pytest.mark.parametrize("spec, shape", RICH_SPECS, ids=RICH_IDS)
def test_json_round_trip_nd(spec, shape):
    restored = type(spec).from_config(json.loads(json.dumps(spec.get_config())))
    assert restored == spec
    assert hash(restored) == hash(spec)


def test_grouped_transpose_config_round_trips():
    spec = cj.Conv2DTranspose(6, (2, 3), strides=2, groups=3, padding="same")
    config = json.loads(json.dumps(spec.get_config()))
    assert config["groups"] == 3
    assert cj.Conv2DTranspose.from_config(config) == spec
    assert "groups" not in cj.Conv3DTranspose(6, 2).get_config()


@functools.partial(jax.jit, static_argnums=0)
def _jit_apply(spec, params, x):
    return spec.apply(params, x)


@pytest.mark.parametrize("spec, shape", RICH_SPECS, ids=RICH_IDS)
def test_configs_exchanged_with_keras_give_equal_layers_computing_the_same(spec, shape):
    """Keras builds a layer from our config with our arguments; its config
    gives back an equal spec; all three compute the same numbers."""
    kcls = getattr(keras.layers, type(spec).__name__)
    klayer = kcls.from_config(json.loads(json.dumps(spec.get_config())))
    for name in ("filters", "kernel_size", "strides", "padding", "data_format",
                 "dilation_rate", "groups", "use_bias", "output_padding"):  # fmt: skip
        if hasattr(klayer, name):
            assert getattr(klayer, name) == getattr(spec, name), name
    loaded = type(spec).from_config(json.loads(json.dumps(klayer.get_config())))
    assert loaded == spec
    assert hash(loaded) == hash(spec)

    # The weights are overwritten: skip Keras's random initializers, which
    # cost a compilation per shape (their configs were compared above).
    klayer.kernel_initializer = klayer.bias_initializer = keras.initializers.Zeros()
    klayer.build(shape)
    params = random_params(spec, shape, 0)
    _set_weights(klayer, params)
    x = normal(0, shape)
    y_keras = klayer(x)
    assert_close(_jit_apply(spec, params, x), y_keras)
    assert_close(_jit_apply(loaded, params, x), y_keras)


# ---- 5. the canonical form ----------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_linear_activation_is_the_default_spec(cls):
    assert cls(4, 3, activation="linear") == cls(4, 3)
    assert cls(4, 3, activation=cj.activations.get("linear")) == cls(4, 3)
    assert hash(cls(4, 3, activation="linear")) == hash(cls(4, 3))
    assert cls(4, 3, activation="linear").activation is None
    assert cls(4, 3, activation=None) == cls(4, 3)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_keras_default_config_gives_the_default_spec(cls):
    config = getattr(keras.layers, cls.__name__)(4, 3).get_config()
    spec = cls.from_config(config)
    assert spec == cls(4, 3)
    assert hash(spec) == hash(cls(4, 3))
    assert cls.from_config(json.loads(json.dumps(config))) == cls(4, 3)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_int_arguments_equal_per_axis_tuples(cls):
    rank = cls.rank
    assert cls(4, 3) == cls(4, (3,) * rank)
    assert hash(cls(4, 3)) == hash(cls(4, (3,) * rank))
    assert cls(4, (3,) * rank).kernel_size == (3,) * rank
    assert cls(4, 3, strides=2) == cls(4, 3, strides=[2] * rank)
    assert cls(4, 3, dilation_rate=2) == cls(4, 3, dilation_rate=(2,) * rank)
    if cls.transposed:
        a = cls(4, 3, strides=2, output_padding=1)
        assert a == cls(4, 3, strides=(2,) * rank, output_padding=(1,) * rank)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_padding_and_data_format_in_any_case_are_equal_specs(cls):
    a = cls(4, 3, padding="same", data_format="channels_first")
    for padding, data_format in [
        ("SAME", "CHANNELS_FIRST"),
        ("Same", "Channels_First"),
        ("sAmE", "channels_FIRST"),
    ]:
        b = cls(4, 3, padding=padding, data_format=data_format)
        assert b == a
        assert hash(b) == hash(a)
        assert (b.padding, b.data_format) == ("same", "channels_first")
    assert cls(4, 3, data_format=None) == cls(4, 3, data_format="Channels_Last")


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_equal_specs_compile_once_as_static_jit_arguments(cls):
    rank = cls.rank
    traces = []

    @functools.partial(jax.jit, static_argnums=0)
    def apply(spec, params, x):
        traces.append(spec)
        return spec.apply(params, x)

    equal_specs = [
        cls(4, 3),
        cls(4, (3,) * rank, activation="linear", padding="VALID"),
        cls(4, 3, data_format="Channels_Last", strides=1, dilation_rate=(1,) * rank),
        cls.from_config(getattr(keras.layers, cls.__name__)(4, 3).get_config()),
        cls.from_config(json.loads(json.dumps(cls(4, 3).get_config()))),
        dataclasses.replace(cls(4, 3), kernel_size=(3,) * rank),
    ]
    shape = (2, *(5,) * rank, 2)
    x = normal(0, shape)
    params = {
        k: normal(i, s)
        for i, (k, s) in enumerate(cls(4, 3).param_shapes(shape).items())
    }
    y = [apply(s, params, x) for s in equal_specs]
    assert len(traces) == 1
    for yi in y[1:]:
        np.testing.assert_array_equal(yi, y[0])
    apply(cls(4, 3, activation="relu"), params, x)  # a different spec retraces
    assert len(traces) == 2
