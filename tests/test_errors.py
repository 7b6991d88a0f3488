"""Every bad argument gets a clear ValueError/TypeError naming it and echoing
the value: at spec construction where possible, else at init/apply time
(under jit too), never a raw XLA error. The 1-D convolutions first, then the
N-d specs and the per-axis length helpers, then the depthwise and separable
layers."""

import itertools
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras.src.backend.common.backend_utils import (
    compute_conv_transpose_output_shape,
)
from keras.src.ops.operation_utils import compute_conv_output_shape

import conv1djax as cj
from conftest import shaped
from conv1djax.lowering import choose

SPEC_ERRORS = [
    # (kwargs, exception, pattern the message must contain)
    (
        dict(filters=0),
        ValueError,
        "`filters` must be a positive int; received filters=0",
    ),
    (dict(filters=-3), ValueError, "filters=-3"),
    (dict(filters=2.0), TypeError, "`filters` must be an int; received 2.0"),
    (dict(filters="8"), TypeError, "`filters` must be an int; received '8'"),
    (dict(filters=True), TypeError, "`filters` must be an int; received the bool True"),
    (
        dict(kernel_size=0),
        ValueError,
        "`kernel_size` must be a positive int; received kernel_size=0",
    ),
    (dict(kernel_size=(3, 3)), ValueError, "kernel_size=(3, 3) of length 2"),
    (dict(kernel_size=2.5), TypeError, "`kernel_size` must be an int; received 2.5"),
    (dict(strides=0), ValueError, "strides=0"),
    (dict(strides=(1, 2)), ValueError, "strides=(1, 2)"),
    (dict(dilation_rate=-1), ValueError, "dilation_rate=-1"),
    (dict(dilation_rate=1.5), TypeError, "`dilation_rate` must be an int"),
    (dict(groups=0), ValueError, "`groups` must be a positive int; received groups=0"),
    (dict(groups=1.0), TypeError, "`groups` must be an int"),
    (
        dict(filters=6, groups=4),
        ValueError,
        "`filters` (=6) must be divisible by `groups` (=4)",
    ),
    (
        dict(strides=2, dilation_rate=2),
        ValueError,
        "received strides=2 and dilation_rate=2",
    ),
    (
        dict(padding="full"),
        ValueError,
        "`padding` must be one of 'valid', 'same', 'causal' (any case); received padding='full'",
    ),
    (dict(padding=3.0), TypeError, "received 3.0 of type float"),
    (dict(data_format="NWC"), ValueError, "received data_format='NWC'"),
    (dict(activation="relu7"), ValueError, "`activation`: 'relu7'"),
    (dict(activation=3), TypeError, "`activation` must be None"),
    (dict(activation="threshold"), ValueError, "threshold"),
    (dict(use_bias="yes"), TypeError, "`use_bias` must be a bool; received 'yes'"),
    (dict(kernel_initializer="glorot"), ValueError, "`kernel_initializer`: 'glorot'"),
    (dict(bias_initializer=1.5), TypeError, "`bias_initializer`"),
    (dict(kernel_regularizer="l3"), ValueError, "`kernel_regularizer`: 'l3'"),
    (dict(bias_regularizer="l0"), ValueError, "`bias_regularizer`: 'l0'"),
    (dict(activity_regularizer="big"), ValueError, "`activity_regularizer`: 'big'"),
    (dict(kernel_constraint="positive"), ValueError, "`kernel_constraint`: 'positive'"),
    (dict(bias_constraint="maxnorm"), ValueError, "`bias_constraint`: 'maxnorm'"),
]


@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
@pytest.mark.parametrize("kwargs,exc,pattern", SPEC_ERRORS)
def test_spec_errors(cls, kwargs, exc, pattern):
    if cls is cj.Conv1DTranspose and kwargs.get("padding") == "full":
        pattern = pattern.replace(", 'causal'", "")
    args = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match=re.escape(pattern)):
        cls(**args)


def test_transpose_refuses_causal():
    with pytest.raises(
        ValueError, match="Conv1DTranspose does not support padding='causal'"
    ):
        cj.Conv1DTranspose(4, 3, padding="causal")


@pytest.mark.parametrize("op,strides", [(2, 2), (3, 1), (-1, 2)])
def test_output_padding_must_be_below_strides(op, strides):
    with pytest.raises(ValueError, match=f"output_padding.*{op}"):
        cj.Conv1DTranspose(4, 3, strides=strides, output_padding=op)


def test_length_helpers_validate():
    with pytest.raises(ValueError, match="padding='causal'"):
        cj.conv_transpose_output_length(10, 3, padding="causal")
    with pytest.raises(ValueError, match="received strides=2 and dilation_rate=3"):
        cj.conv_output_length(10, 3, strides=2, dilation_rate=3)
    with pytest.raises(ValueError, match="too short"):
        cj.conv_output_length(4, 3, dilation_rate=2)
    with pytest.raises(TypeError, match="`length` must be an int"):
        cj.conv_output_length(4.0, 3)


@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_init_errors(cls, key):
    spec = cls(4, 3, groups=2)
    with pytest.raises(
        ValueError, match=r"channel count \(=3\) must be divisible by `groups` \(=2\)"
    ):
        spec.init(key, (2, 10, 3))
    with pytest.raises(ValueError, match="channel axis of the input .* must be known"):
        spec.init(key, (2, 10, None))
    with pytest.raises(ValueError, match=r"rank >= 3.*\(10, 4\) \(rank 2\)"):
        spec.init(key, (10, 4))
    with pytest.raises(TypeError, match="`input_shape` must be a tuple"):
        spec.init(key, "10x4")
    with pytest.raises(TypeError, match="`dtype` must be a floating dtype"):
        spec.init(key, (2, 10, 4), dtype=jnp.int32)


def test_init_rejects_short_valid_input(key):
    with pytest.raises(ValueError, match="input length 4 is too short"):
        cj.Conv1D(4, 3, dilation_rate=2).init(key, (1, 4, 2))


def test_init_rejects_bad_initializer_output(key):
    spec = cj.Conv1D(4, 3, kernel_initializer=lambda k, s, d: jnp.zeros((2, 2), d))
    with pytest.raises(
        ValueError,
        match=r"kernel initializer .* returned an array of shape \(2, 2\); expected \(3, 2, 4\)",
    ):
        spec.init(key, (1, 10, 2))


def test_wrong_layer_type(key):
    with pytest.raises(TypeError, match="conv1d_init expects a Conv1D spec"):
        cj.conv1d_init(cj.Conv1DTranspose(4, 3), key, (1, 10, 2))
    with pytest.raises(
        TypeError, match="conv1d_transpose_apply expects a Conv1DTranspose"
    ):
        cj.conv1d_transpose_apply(cj.Conv1D(4, 3), {}, jnp.ones((1, 10, 2)))


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("cls", [cj.Conv1D, cj.Conv1DTranspose])
def test_apply_errors(cls, jit, key):
    spec = cls(4, 3)
    params = spec.init(key, (2, 10, 6))
    apply = jax.jit(type(spec).apply, static_argnums=0) if jit else type(spec).apply
    with pytest.raises(
        ValueError, match=r"params\['kernel'\] of shape .* does not fit .* 5 channels"
    ):
        apply(spec, params, jnp.ones((2, 10, 5)))
    with pytest.raises(ValueError, match="rank >= 3"):
        apply(spec, params, jnp.ones((10, 6)))
    with pytest.raises(
        ValueError, match=r"keys \['bias', 'kernel'\]; received \['bias'\]"
    ):
        apply(spec, {"bias": params["bias"]}, jnp.ones((2, 10, 6)))
    with pytest.raises(
        ValueError,
        match=r"exactly the keys \['bias', 'kernel'\]; received \['kernel'\]",
    ):
        apply(spec, {"kernel": params["kernel"]}, jnp.ones((2, 10, 6)))
    with pytest.raises(
        ValueError, match=r"params\['bias'\] of shape \(3,\) does not fit"
    ):
        apply(spec, {**params, "bias": jnp.ones(3)}, jnp.ones((2, 10, 6)))
    with pytest.raises(TypeError, match="real inputs"):
        apply(spec, params, jnp.ones((2, 10, 6), jnp.complex64))


def test_apply_rejects_short_valid_input(key):
    spec = cj.Conv1D(4, 5)
    params = spec.init(key, (2, None, 3))
    for fn in (spec.apply, jax.jit(spec.apply)):
        with pytest.raises(ValueError, match="input length 3 is too short"):
            fn(params, jnp.ones((2, 3, 3)))


def test_apply_rejects_grouped_kernel_mismatch(key):
    spec = cj.Conv1D(4, 3, groups=2)
    params = spec.init(key, (1, 10, 4))
    with pytest.raises(
        ValueError, match=r"needs input channels divisible by groups; the input has 5"
    ):
        spec.apply(params, jnp.ones((1, 10, 5)))
    transposed = cj.Conv1DTranspose(4, 3, groups=2)
    params_t = transposed.init(key, (1, 10, 4))
    with pytest.raises(ValueError, match="needs input channels divisible by groups"):
        transposed.apply(params_t, jnp.ones((1, 10, 5)))
    with pytest.raises(ValueError, match=r"expected a kernel of shape \(3, 3, 4\)"):
        spec.apply(params, jnp.ones((1, 10, 6)))


def test_no_bias_params_must_not_have_bias(key):
    spec = cj.Conv1D(4, 3, use_bias=False)
    with pytest.raises(
        ValueError,
        match=r"use_bias=False\) params must have exactly the keys \['kernel'\]",
    ):
        spec.apply(
            {"kernel": jnp.ones((3, 2, 4)), "bias": jnp.ones(4)}, np.ones((1, 5, 2))
        )


def test_from_config_rejects_unknown_keys():
    with pytest.raises(
        ValueError, match=r"Unknown keys in the config of Conv1D: \['kernal_size'\]"
    ):
        cj.Conv1D.from_config({"filters": 2, "kernal_size": 3})


# ---- the N-d specs (Conv2D, Conv3D, Conv2DTranspose, Conv3DTranspose) ----------------

ND = [cj.Conv2D, cj.Conv3D, cj.Conv2DTranspose, cj.Conv3DTranspose]
TRANSPOSED = [cj.Conv2DTranspose, cj.Conv3DTranspose]


def _ids(classes):
    return [cls.__name__ for cls in classes]


def _raises(exc, *fragments):
    """``pytest.raises`` for a message containing the ``fragments`` verbatim,
    in order."""
    return pytest.raises(exc, match=".*".join(map(re.escape, fragments)))


# ---- at construction --------------------------------------------------------

# (kwargs for a 2-D spec, exception, fragment); the 3-D spec gets the same
# with one more axis where the value is per-axis (see _for_rank).
PER_AXIS_ERRORS = [
    (
        dict(kernel_size=(3, 3, 3)),
        ValueError,
        "`kernel_size` must be an int or a tuple of 2 ints for a 2-D convolution; "
        "received kernel_size=(3, 3, 3) of length 3.",
    ),
    (
        dict(kernel_size=(3,)),
        ValueError,
        "`kernel_size` must be an int or a tuple of 2 ints for a 2-D convolution; "
        "received kernel_size=(3,) of length 1.",
    ),
    (
        dict(strides=(1, 2, 1, 2)),
        ValueError,
        "`strides` must be an int or a tuple of 2 ints for a 2-D convolution; "
        "received strides=(1, 2, 1, 2) of length 4.",
    ),
    (
        dict(dilation_rate=(2,)),
        ValueError,
        "`dilation_rate` must be an int or a tuple of 2 ints for a 2-D "
        "convolution; received dilation_rate=(2,) of length 1.",
    ),
    (
        dict(kernel_size=(3, 0)),
        ValueError,
        "`kernel_size` must be a positive int on every axis; received "
        "kernel_size=(3, 0).",
    ),
    (
        dict(kernel_size=0),
        ValueError,
        "`kernel_size` must be a positive int on every axis; received kernel_size=0.",
    ),
    (
        dict(strides=(-1, 1)),
        ValueError,
        "`strides` must be a positive int on every axis; received strides=(-1, 1).",
    ),
    (
        dict(dilation_rate=(1, 0)),
        ValueError,
        "`dilation_rate` must be a positive int on every axis; received "
        "dilation_rate=(1, 0).",
    ),
    (
        dict(kernel_size=(3, 2.0)),
        TypeError,
        "`kernel_size` must be an int; received 2.0 of type float.",
    ),
    (
        dict(strides=(1, "2")),
        TypeError,
        "`strides` must be an int; received '2' of type str.",
    ),
    (
        dict(dilation_rate=(True, 1)),
        TypeError,
        "`dilation_rate` must be an int; received the bool True.",
    ),
    (
        dict(kernel_size=None),
        TypeError,
        "`kernel_size` must be an int; received None of type NoneType.",
    ),
    # Keras's rule: max(strides) > 1 and max(dilation_rate) > 1, on any axes
    (
        dict(strides=(2, 1), dilation_rate=(1, 2)),
        ValueError,
        "`strides > 1` is not supported together with `dilation_rate > 1`; "
        "received strides=(2, 1) and dilation_rate=(1, 2).",
    ),
    (
        dict(strides=(1, 3), dilation_rate=(1, 2)),
        ValueError,
        "received strides=(1, 3) and dilation_rate=(1, 2).",
    ),
    (
        dict(strides=2, dilation_rate=(2, 1)),
        ValueError,
        "received strides=(2, 2) and dilation_rate=(2, 1).",
    ),
]


def _for_rank(kwargs, fragment, rank):
    """Rewrites a 2-D case for ``rank`` axes: one more axis (of 1) for the
    per-axis values of the right length, one more entry for the one that is
    too long only in 2-D, and the message's counts."""
    if rank == 2:
        return kwargs, fragment
    out = {}
    for name, value in kwargs.items():
        if isinstance(value, tuple) and len(value) == 2:
            new = (*value, 1)
            fragment = fragment.replace(f"{name}={value}", f"{name}={new}")
            out[name] = new
        elif isinstance(value, int) and name == "strides":
            out[name] = value
            fragment = fragment.replace("strides=(2, 2)", "strides=(2, 2, 2)")
        else:
            out[name] = value
    fragment = fragment.replace("2 ints for a 2-D", "3 ints for a 3-D")
    if kwargs == {"kernel_size": (3, 3, 3)}:  # a triple is right in 3-D
        out = {"kernel_size": (3, 3, 3, 3)}
        fragment = fragment.replace("(3, 3, 3) of length 3", "(3, 3, 3, 3) of length 4")
    return out, fragment


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
@pytest.mark.parametrize("kwargs,exc,fragment", PER_AXIS_ERRORS)
def test_per_axis_arguments(cls, kwargs, exc, fragment):
    kwargs, fragment = _for_rank(kwargs, fragment, cls.rank)
    with _raises(exc, fragment):
        cls(4, **{"kernel_size": 3, **kwargs})


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_valid_per_axis_arguments_are_canonical_tuples(cls):
    rank = cls.rank
    spec = cls(4, [3] * rank, strides=np.int64(2), dilation_rate=1)
    assert spec.kernel_size == (3,) * rank
    assert spec.strides == (2,) * rank
    assert spec.dilation_rate == (1,) * rank
    assert all(type(v) is int for v in spec.strides)
    assert spec == cls(4, 3, strides=(2,) * rank)
    # dilation > 1 is fine with strides of 1 on every axis
    assert cls(4, 3, dilation_rate=(1,) * (rank - 1) + (3,)).strides == (1,) * rank


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_filters_and_groups(cls):
    with _raises(ValueError, "`filters` (=6) must be divisible by `groups` (=4)."):
        cls(6, 3, groups=4)
    with _raises(ValueError, "`filters` must be a positive int; received filters=0."):
        cls(0, 3)
    with _raises(ValueError, "`groups` must be a positive int; received groups=-2."):
        cls(4, 3, groups=-2)
    with _raises(TypeError, "`groups` must be an int; received 2.0 of type float."):
        cls(4, 3, groups=2.0)


@pytest.mark.parametrize(
    "cls", [cj.Conv2D, cj.Conv3D], ids=_ids([cj.Conv2D, cj.Conv3D])
)
@pytest.mark.parametrize("padding", ["causal", "CAUSAL", "Causal"])
def test_causal_is_1d_only(cls, padding):
    with _raises(
        ValueError,
        f"{cls.__name__} does not support padding='causal': causal padding is only "
        "defined for 1-D convolutions; use 'valid' or 'same'.",
    ):
        cls(4, 3, padding=padding)


@pytest.mark.parametrize("cls", TRANSPOSED, ids=_ids(TRANSPOSED))
def test_transposed_refuses_causal(cls):
    with _raises(
        ValueError,
        f"{cls.__name__} does not support padding='causal' (a transposed "
        "convolution has no causal form in Keras); use 'valid' or 'same'.",
    ):
        cls(4, 3, padding="causal")


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_other_paddings_and_data_formats(cls):
    with _raises(
        ValueError,
        "`padding` must be one of 'valid', 'same' (any case); received padding='full'.",
    ):
        cls(4, 3, padding="full")
    with _raises(
        TypeError,
        "`padding` must be one of 'valid', 'same', or an int, or a tuple with an "
        "int or a (left, right) pair per spatial axis; received 1.0 of type float.",
    ):
        cls(4, 3, padding=1.0)
    with _raises(
        ValueError,
        "`data_format` must be one of 'channels_last', 'channels_first' (any "
        "case); received data_format='NHWC'.",
    ):
        cls(4, 3, data_format="NHWC")
    assert cls(4, 3, padding="SAME").padding == "same"
    assert cls(4, 3, data_format=None).data_format == "channels_last"


# The impl names, from the registry they describe: every N-d error lists
# exactly the registry less the 1-D cores ("split" included).
ND_IMPLS = [i for i in choose.IMPLS if i not in choose.ONE_D_CORES]


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
@pytest.mark.parametrize("impl", [*choose.ONE_D_CORES, "FFT", "Ncw"])
def test_1d_cores_are_refused_in_nd(cls, impl):
    with _raises(
        ValueError,
        f"impl={impl.lower()!r} is a 1-D core; a {cls.rank}-D convolution takes one "
        f"of {', '.join(map(repr, ND_IMPLS))}.",
    ):
        cls(4, 3, impl=impl)


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_the_nd_impls_are_accepted(cls):
    assert "split" in ND_IMPLS
    for impl in (*ND_IMPLS, "SHIFT"):
        assert cls(4, 3, impl=impl).impl == impl.lower()
    with _raises(
        ValueError,
        f"`impl` must be one of {', '.join(map(repr, choose.IMPLS))}; received "
        "impl='fast'.",
    ):
        cls(4, 3, impl="fast")


@pytest.mark.parametrize("cls", TRANSPOSED, ids=_ids(TRANSPOSED))
def test_output_padding(cls):
    rank = cls.rank
    tail = (1,) * (rank - 2)

    def shown(values):
        return str(tuple(values))

    strides = (2, 3, *tail)
    # >= strides on one axis: the message names that axis
    for axis in range(2):
        op = [0] * rank
        op[axis] = strides[axis]
        op = tuple(op)
        with _raises(
            ValueError,
            f"`output_padding` must be smaller than `strides` on axis {axis}; "
            f"received output_padding={shown(op)} with strides={shown(strides)}.",
        ):
            cls(4, 3, strides=strides, output_padding=op)
    # on the last axis of a 3-D spec (stride 1 there: only 0 is allowed)
    if rank == 3:
        with _raises(ValueError, "smaller than `strides` on axis 2"):
            cls(4, 3, strides=strides, output_padding=(1, 1, 1))
    # an int is used on every axis
    with _raises(
        ValueError,
        f"on axis 0; received output_padding={shown((2,) * rank)} with "
        f"strides={shown(strides)}.",
    ):
        cls(4, 3, strides=strides, output_padding=2)
    with _raises(
        ValueError,
        f"`output_padding` must be an int or a tuple of {rank} ints for a {rank}-D "
        f"convolution; received output_padding={shown((1,) * (rank + 1))} of "
        f"length {rank + 1}.",
    ):
        cls(4, 3, strides=2, output_padding=(1,) * (rank + 1))
    negative = (0, -1, *(0,) * (rank - 2))
    with _raises(
        ValueError,
        "`output_padding` must be an int >= 0 on every axis; received "
        f"output_padding={shown(negative)}.",
    ):
        cls(4, 3, strides=2, output_padding=negative)
    with _raises(TypeError, "`output_padding` must be an int; received 0.5"):
        cls(4, 3, strides=2, output_padding=(0.5,) * rank)
    # valid values
    ok = cls(4, 3, strides=strides, output_padding=(1, 2, *(0,) * (rank - 2)))
    assert ok.output_padding == (1, 2, *(0,) * (rank - 2))
    assert cls(4, 3, strides=2, output_padding=1).output_padding == (1,) * rank
    assert cls(4, 3).output_padding is None


# ---- at init and apply --------------------------------------------------------

LAYOUTS = {
    (1, "channels_last"): "(steps, channels)",
    (1, "channels_first"): "(channels, steps)",
    (2, "channels_last"): "(rows, cols, channels)",
    (2, "channels_first"): "(channels, rows, cols)",
    (3, "channels_last"): "(dim1, dim2, dim3, channels)",
    (3, "channels_first"): "(channels, dim1, dim2, dim3)",
}


def _shape(cls, spatial, channels, data_format="channels_last", batch=(2,)):
    if data_format == "channels_last":
        return (*batch, *spatial, channels)
    return (*batch, channels, *spatial)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_input_rank_too_low_shows_the_layout(cls, data_format, key):
    spec = cls(4, 3, data_format=data_format)
    rank = cls.rank
    shape = _shape(cls, (6,) * rank, 2, data_format, batch=())
    fragment = (
        f"{cls.__name__} expects inputs of rank >= {rank + 2}, batch_shape + "
        f"{LAYOUTS[rank, data_format]}; received an input of shape {shape} "
        f"(rank {rank + 1})."
    )
    with _raises(ValueError, fragment):
        spec.init(key, shape)
    with _raises(ValueError, fragment):
        spec.compute_output_shape(shape)
    full = _shape(cls, (6,) * rank, 2, data_format)
    params = spec.init(key, full)
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, fragment):
            apply(params, jnp.ones(shape))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_channel_axis_must_be_known(cls, data_format, key):
    spec = cls(4, 3, data_format=data_format)
    shape = _shape(cls, (None,) * cls.rank, None, data_format)
    with _raises(
        ValueError,
        f"The channel axis of the input to {cls.__name__} must be known "
        f"(data_format={data_format!r}); received input_shape={shape}.",
    ):
        spec.init(key, shape)
    # every other axis may be unknown
    ok = _shape(cls, (None,) * cls.rank, 2, data_format, batch=(None,))
    assert spec.param_shapes(ok)["kernel"][-2:] in ((2, 4), (4, 2))


@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_channels_must_be_divisible_by_groups(cls, key):
    spec = cls(4, 2, groups=2)
    shape = _shape(cls, (5,) * cls.rank, 3)
    with _raises(
        ValueError,
        f"The input's channel count (=3) must be divisible by `groups` (=2); "
        f"received input_shape={shape}.",
    ):
        spec.init(key, shape)
    params = spec.init(key, _shape(cls, (5,) * cls.rank, 4))
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(
            ValueError,
            f"{cls.__name__}(groups=2) needs input channels divisible by groups; "
            "the input has 3 channels.",
        ):
            apply(params, jnp.ones(shape))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("cls", ND, ids=_ids(ND))
def test_params_must_fit(cls, jit, key):
    rank = cls.rank
    spec = cls(4, (3, 2, 1)[:rank], groups=2)
    shape = _shape(cls, (5,) * rank, 6)
    params = spec.init(key, shape)
    apply = jax.jit(spec.apply) if jit else spec.apply
    x = jnp.ones(shape)
    # the kernel of a 4-channel input on a 6-channel one
    other = spec.init(key, _shape(cls, (5,) * rank, 4))
    got, want = other["kernel"].shape, params["kernel"].shape
    with _raises(
        ValueError,
        f"params['kernel'] of shape {got} does not fit {cls.__name__}(filters=4, "
        f"kernel_size={spec.kernel_size}, groups=2) on an input with 6 channels: ",
        f" shape {want}.",
    ):
        apply(other, x)
    # a kernel of the wrong rank (a 1-D kernel)
    flat = jnp.ones((3, 3, 4))
    with _raises(
        ValueError, "params['kernel'] of shape (3, 3, 4) does not fit", f" {want}."
    ):
        apply({**params, "kernel": flat}, x)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys "
        "['bias', 'kernel']; received ['kernel'].",
    ):
        apply({"kernel": params["kernel"]}, x)
    with _raises(
        ValueError, "params['bias'] of shape (3,) does not fit", " shape (4,)."
    ):
        apply({**params, "bias": jnp.ones(3)}, x)
    no_bias = cls(4, (3, 2, 1)[:rank], groups=2, use_bias=False)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=False) params must have exactly the keys "
        "['kernel']; received ['bias', 'kernel'].",
    ):
        (jax.jit(no_bias.apply) if jit else no_bias.apply)(params, x)
    with _raises(
        ValueError,
        f"{cls.__name__} params must be a dict with the keys ['bias', 'kernel']; "
        "received list.",
    ):
        apply([params["kernel"], params["bias"]], x)
    with _raises(TypeError, f"{cls.__name__} takes real inputs; received dtype"):
        apply(params, x.astype(jnp.complex64))
    with _raises(TypeError, "params['kernel'] must be floating; received int32."):
        apply({**params, "kernel": params["kernel"].astype(jnp.int32)}, x)


# (class, kernel_size, strides, padding, output_padding, spatial, axis, length,
#  extent, out): the input is too short along spatial axis `axis` only.
TOO_SHORT = [
    (cj.Conv2D, (3, 5), 1, "valid", None, (8, 4), 1, 4, 5, 0),
    (cj.Conv2D, (4, 1), (1, 2), "valid", None, (3, 9), 0, 3, 4, 0),
    (cj.Conv3D, (2, 2, 3), 1, "valid", None, (4, 4, 2), 2, 2, 3, 0),
    (cj.Conv3D, (1, 3, 1), 1, "valid", None, (4, 1, 4), 1, 1, 3, -1),
    (cj.Conv2DTranspose, (2, 2), (1, 2), "same", (0, 0), (3, 1), 1, 1, 2, 0),
    (cj.Conv3DTranspose, (2, 3, 2), (2, 1, 1), "same", 0, (1, 3, 3), 0, 1, 2, 0),
]


@pytest.mark.parametrize(
    "cls,kernel_size,strides,padding,op,spatial,axis,length,extent,out", TOO_SHORT
)
def test_an_input_too_short_along_one_axis(
    cls, kernel_size, strides, padding, op, spatial, axis, length, extent, out, key
):
    kwargs = dict(strides=strides, padding=padding)
    if op is not None:
        kwargs["output_padding"] = op
    spec = cls(2, kernel_size, **kwargs)
    what = (
        f"a transposed convolution with padding={padding!r}"
        if spec.transposed
        else f"padding={padding!r}"
    )
    fragment = (
        f"The input length {length} along spatial axis {axis} is too short for "
        f"{what} and a dilated kernel extent of {extent}: the output would have "
        f"length {out}."
    )
    shape = (1, *spatial, 3)
    with _raises(ValueError, fragment):
        spec.init(key, shape)
    with _raises(ValueError, fragment):
        spec.compute_output_shape(shape)
    # params for an input long enough on every axis, then the short one
    params = spec.init(key, (1, *(6,) * cls.rank, 3))
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, fragment):
            apply(params, jnp.ones(shape))
    # unknown lengths are not checked
    unknown = list(shape)
    unknown[1 + axis] = None
    assert spec.compute_output_shape(tuple(unknown))[1 + axis] is None


def test_wrong_spec_type_for_the_pure_functions(key):
    with _raises(TypeError, "conv2d_init expects a Conv2D spec as `layer`; received"):
        cj.conv2d_init(cj.Conv3D(4, 3), key, (1, 5, 5, 5, 2))
    with _raises(TypeError, "of type Conv2DTranspose."):
        cj.conv2d_apply(cj.Conv2DTranspose(4, 3), {}, jnp.ones((1, 5, 5, 2)))
    with _raises(TypeError, "conv3d_apply expects a Conv3D spec"):
        cj.conv3d_apply(cj.Conv2D(4, 3), {}, jnp.ones((1, 5, 5, 2)))
    with _raises(TypeError, "conv2d_transpose_init expects a Conv2DTranspose spec"):
        cj.conv2d_transpose_init(cj.Conv2D(4, 3), key, (1, 5, 5, 2))
    with _raises(TypeError, "conv3d_transpose_apply expects a Conv3DTranspose spec"):
        cj.conv3d_transpose_apply(cj.Conv2DTranspose(4, 3), {}, jnp.ones((1, 5, 5, 2)))


# ---- the length helpers with per-axis tuples ---------------------------------


def _keras_conv_lengths(lengths, kernel_size, strides, padding, dilation_rate):
    shape = compute_conv_output_shape(
        (1, *lengths, 2), 3, kernel_size, strides, padding, "channels_last",
        dilation_rate,
    )  # fmt: skip
    return tuple(shape[1:-1])


def _conv_cases():
    r = np.random.default_rng(7)
    for _ in range(40):
        rank = int(r.integers(2, 4))
        kernel_size = tuple(int(k) for k in r.integers(1, 6, size=rank))
        if r.random() < 0.5:
            strides, dilation = tuple(int(s) for s in r.integers(1, 4, size=rank)), 1
        else:
            strides, dilation = 1, tuple(int(d) for d in r.integers(1, 4, size=rank))
        padding = str(r.choice(["valid", "same"]))
        lengths = tuple(int(n) for n in r.integers(13, 30, size=rank))
        yield lengths, kernel_size, strides, padding, dilation


def test_conv_output_length_per_axis_matches_keras():
    for lengths, kernel_size, strides, padding, dilation in _conv_cases():
        ours = cj.conv_output_length(lengths, kernel_size, strides, padding, dilation)
        theirs = _keras_conv_lengths(lengths, kernel_size, strides, padding, dilation)
        assert ours == theirs, (lengths, kernel_size, strides, padding, dilation)
        assert isinstance(ours, tuple) and all(type(n) is int for n in ours)


def test_conv_output_length_per_axis_by_hand():
    assert cj.conv_output_length((32, 20), (3, 5), strides=(2, 1)) == (15, 16)
    # same: ceil(L / s) per axis
    assert cj.conv_output_length((7, 8, 9), 3, strides=(2, 3, 4), padding="SAME") == (
        4,
        3,
        3,
    )
    # valid with dilation: L - (k - 1) * d per axis
    assert cj.conv_output_length((10, 10), (3, 2), dilation_rate=(1, 4)) == (8, 6)
    # an int is used for every axis; None stays None
    assert cj.conv_output_length((None, 10, 7), 3, dilation_rate=(1, 2, 3)) == (
        None,
        6,
        1,
    )
    assert cj.conv_output_length([9, 9], [2, 3]) == (8, 7)
    # a 1-tuple is per-axis too (a tuple back), an int is not
    assert cj.conv_output_length((8,), 3, padding="causal") == (8,)
    assert cj.conv_output_length(8, 3) == 6


def test_conv_output_length_agrees_with_the_specs():
    for lengths, kernel_size, strides, padding, dilation in _conv_cases():
        cls = cj.Conv2D if len(lengths) == 2 else cj.Conv3D
        spec = cls(2, kernel_size, strides, padding, dilation_rate=dilation)
        out = spec.compute_output_shape((1, *lengths, 2))[1:-1]
        assert out == cj.conv_output_length(
            lengths, kernel_size, strides, padding, dilation
        )


def _transpose_cases():
    r = np.random.default_rng(8)
    for _ in range(40):
        rank = int(r.integers(2, 4))
        kernel_size = tuple(int(k) for k in r.integers(1, 6, size=rank))
        if r.random() < 0.6:
            strides = tuple(int(s) for s in r.integers(1, 4, size=rank))
            dilation = 1
        else:
            strides, dilation = 1, tuple(int(d) for d in r.integers(1, 4, size=rank))
        output_padding = None
        if isinstance(strides, tuple) and r.random() < 0.6:
            output_padding = tuple(int(r.integers(0, s)) for s in strides)
        padding = str(r.choice(["valid", "same"]))
        lengths = tuple(int(n) for n in r.integers(2, 9, size=rank))
        yield lengths, kernel_size, strides, padding, output_padding, dilation


def test_conv_transpose_output_length_per_axis_matches_keras():
    for case in _transpose_cases():
        lengths, kernel_size, strides, padding, output_padding, dilation = case
        ours = cj.conv_transpose_output_length(*case)
        theirs = compute_conv_transpose_output_shape(
            (1, *lengths, 2), kernel_size, 3, strides, padding, output_padding,
            "channels_last", dilation,
        )  # fmt: skip
        assert ours == tuple(theirs[1:-1]), case
        cls = cj.Conv2DTranspose if len(lengths) == 2 else cj.Conv3DTranspose
        spec = cls(
            2, kernel_size, strides, padding, output_padding, dilation_rate=dilation
        )
        assert spec.compute_output_shape((1, *lengths, 2))[1:-1] == ours, case


def test_conv_transpose_output_length_per_axis_by_hand():
    # valid: (L - 1) * s + k_eff + output_padding, the default max(k, s) - k
    assert cj.conv_transpose_output_length(
        (8, 5), (3, 2), strides=(2, 3), output_padding=(1, 2)
    ) == (18, 16)
    assert cj.conv_transpose_output_length((8, 5), (3, 2), strides=(2, 3)) == (17, 15)
    # same: L * s, or (L - 1) * s + k_eff % 2 + output_padding
    assert cj.conv_transpose_output_length(
        (8, 8, 8), 4, strides=(2, 1, 3), padding="same"
    ) == (16, 8, 24)
    assert cj.conv_transpose_output_length(
        (4, 4), (3, 2), strides=(2, 2), padding="same", output_padding=(0, 1)
    ) == (7, 7)
    assert cj.conv_transpose_output_length((None, 4), 3, dilation_rate=(1, 2)) == (
        None,
        8,
    )


def test_length_helpers_errors_per_axis():
    with _raises(
        ValueError,
        "`kernel_size` must be an int or a tuple of 2 ints for a 2-D convolution; "
        "received kernel_size=(3, 5, 1) of length 3.",
    ):
        cj.conv_output_length((32, 20), (3, 5, 1))
    with _raises(
        ValueError,
        "`strides` must be an int or a tuple of 3 ints for a 3-D convolution; "
        "received strides=(2, 1) of length 2.",
    ):
        cj.conv_transpose_output_length((4, 4, 4), 3, strides=(2, 1))
    with _raises(
        ValueError,
        "`dilation_rate` must be a positive int on every axis; received "
        "dilation_rate=(1, 0).",
    ):
        cj.conv_output_length((9, 9), 3, dilation_rate=(1, 0))
    with _raises(
        ValueError,
        "`strides > 1` is not supported together with `dilation_rate > 1`; "
        "received strides=(1, 2) and dilation_rate=(3, 1).",
    ):
        cj.conv_output_length((9, 9), 3, strides=(1, 2), dilation_rate=(3, 1))
    with _raises(ValueError, "`length` must not be empty; received length=()."):
        cj.conv_output_length((), 3)
    with _raises(ValueError, "`length` must be an int >= 0; received length=-1."):
        cj.conv_output_length((10, -1), 3)
    with _raises(TypeError, "`length` must be an int; received 5.0 of type float."):
        cj.conv_transpose_output_length((8, 5.0), 3)
    with _raises(
        ValueError,
        "The input length 2 along spatial axis 1 is too short for padding='valid' "
        "and a dilated kernel extent of 3: the output would have length 0. Use a "
        "longer input, a smaller kernel_size or dilation_rate, or padding='same'.",
    ):
        cj.conv_output_length((10, 2), 3)
    with _raises(
        ValueError,
        "The input length 1 along spatial axis 0 is too short for a transposed "
        "convolution with padding='same' and a dilated kernel extent of 2",
    ):
        cj.conv_transpose_output_length((1, 4), 2, 2, "same", output_padding=0)
    # "causal" is 1-D only: refused for a tuple of two or three lengths
    for fn in (cj.conv_output_length, cj.conv_transpose_output_length):
        with _raises(
            ValueError,
            "`padding` must be one of 'valid', 'same' (any case); received "
            "padding='causal'.",
        ):
            fn((10, 10), 3, padding="causal")
    with _raises(
        ValueError,
        "`output_padding` must be smaller than `strides` on axis 0; received "
        "output_padding=(2, 1) with strides=(2, 3).",
    ):
        cj.conv_transpose_output_length(
            (8, 5), (3, 2), strides=(2, 3), output_padding=(2, 1)
        )
    with _raises(
        ValueError,
        "`output_padding` must be an int or a tuple of 2 ints for a 2-D "
        "convolution; received output_padding=(1, 1, 1) of length 3.",
    ):
        cj.conv_transpose_output_length((8, 5), 3, strides=2, output_padding=(1, 1, 1))


def test_every_bad_per_axis_combination_is_caught_before_xla():
    """A grid over (strides, dilation_rate) pairs on two axes: exactly the
    ones Keras refuses raise, at construction; the rest apply."""
    for strides, dilation in itertools.product(
        [(1, 1), (2, 1), (1, 2)], [(1, 1), (2, 1), (1, 3)]
    ):
        refused = max(strides) > 1 and max(dilation) > 1
        for cls in (cj.Conv2D, cj.Conv2DTranspose):
            if refused:
                with _raises(ValueError, "is not supported together with"):
                    cls(2, 2, strides=strides, dilation_rate=dilation)
            else:
                spec = cls(2, 2, strides=strides, dilation_rate=dilation)
                assert spec.compute_output_shape((1, 7, 7, 1))[-1] == 2


# ---- the depthwise and separable layers ---------------------------------------------

DEPTHWISE = [cj.DepthwiseConv1D, cj.DepthwiseConv2D]
SEPARABLE = [cj.SeparableConv1D, cj.SeparableConv2D]
DW_CLASSES = DEPTHWISE + SEPARABLE


def _args(cls, filters=4):
    """The positional arguments before ``kernel_size``."""
    return (filters,) if cls in SEPARABLE else ()


def _default(cls, **kwargs):
    return cls(*_args(cls), 3, **kwargs)


@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
def test_depth_multiplier_errors(cls):
    for value in (0, -1):
        with _raises(
            ValueError,
            f"`depth_multiplier` must be a positive int; received "
            f"depth_multiplier={value}.",
        ):
            _default(cls, depth_multiplier=value)
    with _raises(
        TypeError, "`depth_multiplier` must be an int; received 2.0 of type float."
    ):
        _default(cls, depth_multiplier=2.0)
    with _raises(
        TypeError, "`depth_multiplier` must be an int; received the bool True."
    ):
        _default(cls, depth_multiplier=True)
    with _raises(TypeError, "`depth_multiplier` must be an int; received '2' of type"):
        _default(cls, depth_multiplier="2")
    assert _default(cls, depth_multiplier=np.int64(3)).depth_multiplier == 3
    assert type(_default(cls, depth_multiplier=np.int64(3)).depth_multiplier) is int


@pytest.mark.parametrize("cls", SEPARABLE, ids=_ids(SEPARABLE))
def test_separable_filters_errors(cls):
    with _raises(ValueError, "`filters` must be a positive int; received filters=0."):
        cls(0, 3)
    with _raises(ValueError, "`filters` must be a positive int; received filters=-4."):
        cls(-4, 3)
    with _raises(TypeError, "`filters` must be an int; received 4.0 of type float."):
        cls(4.0, 3)
    with _raises(TypeError, "`filters` must be an int; received the bool True."):
        cls(True, 3)


@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
def test_per_axis_argument_errors(cls):
    rank = cls.rank
    ints = "1 int" if rank == 1 else f"{rank} ints"
    long = (3,) * (rank + 1)
    with _raises(
        ValueError,
        f"`kernel_size` must be an int or a tuple of {ints} for a {rank}-D "
        f"convolution; received kernel_size={long} of length {rank + 1}.",
    ):
        cls(*_args(cls), long)
    if rank == 2:
        with _raises(
            ValueError,
            "`kernel_size` must be an int or a tuple of 2 ints for a 2-D "
            "convolution; received kernel_size=(3,) of length 1.",
        ):
            cls(*_args(cls), (3,))
    with _raises(
        ValueError,
        f"`strides` must be an int or a tuple of {ints} for a {rank}-D "
        f"convolution; received strides={(2,) * (rank + 1)} of length {rank + 1}.",
    ):
        cls(*_args(cls), 3, strides=(2,) * (rank + 1))
    with _raises(ValueError, "`kernel_size` must be a positive int"):
        cls(*_args(cls), 0)
    with _raises(ValueError, "`dilation_rate` must be a positive int"):
        cls(*_args(cls), 3, dilation_rate=(0,) * rank)
    with _raises(TypeError, "`kernel_size` must be an int; received None"):
        cls(*_args(cls), None)
    paddings = "'valid', 'same', 'causal'" if rank == 1 else "'valid', 'same'"
    with _raises(
        ValueError,
        f"`padding` must be one of {paddings} (any case); received padding='full'.",
    ):
        cls(*_args(cls), 3, padding="full")
    with _raises(
        ValueError,
        "`data_format` must be one of 'channels_last', 'channels_first' (any "
        "case); received data_format='NHWC'.",
    ):
        cls(*_args(cls), 3, data_format="NHWC")


@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
def test_strides_with_dilation_are_allowed(cls):
    """Keras refuses strides > 1 with dilation > 1 for Conv*D, not for the
    depthwise and separable layers; neither do we."""
    rank = cls.rank
    spec = _default(cls, strides=2, dilation_rate=2)
    assert spec.strides == (2,) * rank and spec.dilation_rate == (2,) * rank
    shape = (1, *(9,) * rank, 2)
    kshape = getattr(keras.layers, cls.__name__)(
        *_args(cls), 3, strides=2, dilation_rate=2
    ).compute_output_shape(shape)
    assert spec.compute_output_shape(shape) == tuple(kshape)
    with _raises(ValueError, "is not supported together with `dilation_rate > 1`"):
        (cj.Conv1D if rank == 1 else cj.Conv2D)(4, 3, strides=2, dilation_rate=2)


@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
@pytest.mark.parametrize("impl", ["fft", "ncw", "auto", "Shift", "fast"])
def test_impl_names(cls, impl):
    # the listed names derive from the registry (lowering.choose.IMPLS)
    if impl == "fast":
        with _raises(
            ValueError,
            f"`impl` must be one of {', '.join(map(repr, choose.IMPLS))}; received "
            "impl='fast'.",
        ):
            _default(cls, impl=impl)
    elif impl in choose.ONE_D_CORES and cls.rank == 2:
        nd = [i for i in choose.IMPLS if i not in choose.ONE_D_CORES]
        assert "split" in nd
        with _raises(
            ValueError,
            f"impl={impl!r} is a 1-D core; a 2-D convolution takes one of "
            f"{', '.join(map(repr, nd))}.",
        ):
            _default(cls, impl=impl)
    else:
        assert _default(cls, impl=impl).impl == impl.lower()


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
def test_input_rank_too_low(cls, data_format, key):
    spec = _default(cls, data_format=data_format)
    rank = cls.rank
    shape = shaped((), (6,) * rank, 2, data_format)
    fragment = (
        f"{cls.__name__} expects inputs of rank >= {rank + 2}, batch_shape + "
        f"{LAYOUTS[rank, data_format]}; received an input of shape {shape} "
        f"(rank {rank + 1})."
    )
    with _raises(ValueError, fragment):
        spec.init(key, shape)
    with _raises(ValueError, fragment):
        spec.compute_output_shape(shape)
    params = spec.init(key, shaped((2,), (6,) * rank, 2, data_format))
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, fragment):
            apply(params, jnp.ones(shape))


@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
def test_channel_axis_must_be_known_and_input_long_enough(cls, key):
    rank = cls.rank
    spec = _default(cls)
    shape = (2, *(None,) * rank, None)
    with _raises(
        ValueError,
        f"The channel axis of the input to {cls.__name__} must be known "
        f"(data_format='channels_last'); received input_shape={shape}.",
    ):
        spec.init(key, shape)
    short = (2, *(2,) * rank, 3)
    where = "" if rank == 1 else " along spatial axis 0"
    fragment = (
        f"The input length 2{where} is too short for padding='valid' and a "
        "dilated kernel extent of 3: the output would have length 0."
    )
    with _raises(ValueError, fragment):
        spec.compute_output_shape(short)
    params = spec.init(key, (2, *(5,) * rank, 3))
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, fragment):
            apply(params, jnp.ones(short))
    # "same" takes any length
    same = _default(cls, padding="same")
    assert same.compute_output_shape(short)[-1] == (4 if cls in SEPARABLE else 3)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("cls", DEPTHWISE, ids=_ids(DEPTHWISE))
def test_depthwise_params_must_fit(cls, jit, key):
    rank = cls.rank
    kernel_size = (3, 2)[:rank]
    spec = cls(kernel_size, depth_multiplier=2)
    shape = (2, *(5,) * rank, 6)
    params = spec.init(key, shape)
    apply = jax.jit(spec.apply) if jit else spec.apply
    x = jnp.ones(shape)
    described = (
        f"{cls.__name__}(kernel_size={spec.kernel_size}, depth_multiplier=2) on an "
        "input with 6 channels"
    )
    other = spec.init(key, (2, *(5,) * rank, 4))
    with _raises(
        ValueError,
        f"params['kernel'] of shape {(*kernel_size, 4, 2)} does not fit {described}: "
        f"expected a kernel of shape {(*kernel_size, 6, 2)}.",
    ):
        apply(other, x)
    # a depth multiplier of 1 instead of 2
    with _raises(
        ValueError,
        f"params['kernel'] of shape {(*kernel_size, 6, 1)} does not fit {described}",
    ):
        apply({**params, "kernel": jnp.ones((*kernel_size, 6, 1))}, x)
    # the grouped-convolution layout (*k, 1, C * m) is not Keras's
    with _raises(
        ValueError, f"params['kernel'] of shape {(*kernel_size, 1, 12)} does not fit"
    ):
        apply({**params, "kernel": jnp.ones((*kernel_size, 1, 12))}, x)
    with _raises(
        ValueError,
        f"params['bias'] of shape (6,) does not fit {described}: expected a bias of "
        "shape (12,).",
    ):
        apply({**params, "bias": jnp.ones(6)}, x)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys ['bias', "
        "'kernel']; received ['bias', 'depthwise_kernel'].",
    ):
        apply({"depthwise_kernel": params["kernel"], "bias": params["bias"]}, x)
    no_bias = cls(kernel_size, depth_multiplier=2, use_bias=False)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=False) params must have exactly the keys "
        "['kernel']; received ['bias', 'kernel'].",
    ):
        (jax.jit(no_bias.apply) if jit else no_bias.apply)(params, x)
    with _raises(
        ValueError,
        f"{cls.__name__} params must be a dict with the keys ['bias', 'kernel']; "
        "received list.",
    ):
        apply([params["kernel"], params["bias"]], x)
    with _raises(TypeError, "params['kernel'] must be floating; received int32."):
        apply({**params, "kernel": params["kernel"].astype(jnp.int32)}, x)
    with _raises(TypeError, f"{cls.__name__} takes real inputs; received dtype"):
        apply(params, x.astype(jnp.complex64))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("cls", SEPARABLE, ids=_ids(SEPARABLE))
def test_separable_params_must_fit(cls, jit, key):
    rank = cls.rank
    kernel_size = (3, 2)[:rank]
    ones = (1,) * rank
    spec = cls(4, kernel_size, depth_multiplier=2)
    shape = (2, *(5,) * rank, 3)
    params = spec.init(key, shape)
    apply = jax.jit(spec.apply) if jit else spec.apply
    x = jnp.ones(shape)
    described = (
        f"{cls.__name__}(filters=4, kernel_size={spec.kernel_size}, "
        "depth_multiplier=2) on an input with 3 channels"
    )
    keys = "['bias', 'depthwise_kernel', 'pointwise_kernel']"
    # the depthwise layers' names are not the separable layers'
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys {keys}; "
        "received ['bias', 'kernel'].",
    ):
        apply({"kernel": params["depthwise_kernel"], "bias": params["bias"]}, x)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=True) params must have exactly the keys {keys}; "
        "received ['bias', 'depthwise_kernel'].",
    ):
        apply({k: v for k, v in params.items() if k != "pointwise_kernel"}, x)
    with _raises(
        ValueError,
        f"params['depthwise_kernel'] of shape {(*kernel_size, 2, 2)} does not fit "
        f"{described}: expected a depthwise_kernel of shape {(*kernel_size, 3, 2)}.",
    ):
        apply({**params, "depthwise_kernel": jnp.ones((*kernel_size, 2, 2))}, x)
    with _raises(
        ValueError,
        f"params['pointwise_kernel'] of shape {(*ones, 3, 4)} does not fit "
        f"{described}: expected a pointwise_kernel of shape {(*ones, 6, 4)}.",
    ):
        apply({**params, "pointwise_kernel": jnp.ones((*ones, 3, 4))}, x)
    # a pointwise kernel without its 1 x 1 window axes
    with _raises(ValueError, "params['pointwise_kernel'] of shape (6, 4) does not fit"):
        apply({**params, "pointwise_kernel": jnp.ones((6, 4))}, x)
    with _raises(
        ValueError,
        f"params['bias'] of shape (6,) does not fit {described}: expected a bias "
        "of shape (4,).",
    ):
        apply({**params, "bias": jnp.ones(6)}, x)
    no_bias = cls(4, kernel_size, depth_multiplier=2, use_bias=False)
    with _raises(
        ValueError,
        f"{cls.__name__}(use_bias=False) params must have exactly the keys "
        "['depthwise_kernel', 'pointwise_kernel']; received ['bias', "
        "'depthwise_kernel', 'pointwise_kernel'].",
    ):
        (jax.jit(no_bias.apply) if jit else no_bias.apply)(params, x)
    with _raises(
        TypeError, "params['depthwise_kernel'] must be floating; received int32."
    ):
        apply({**params, "depthwise_kernel": jnp.ones((*kernel_size, 3, 2), int)}, x)


@pytest.mark.parametrize("cls", DW_CLASSES, ids=_ids(DW_CLASSES))
def test_from_config_errors(cls):
    config = _default(cls).get_config()
    with _raises(
        ValueError, f"Unknown keys in the config of {cls.__name__}: ['groups']."
    ):
        cls.from_config({**config, "groups": 2})
    if cls in DEPTHWISE:
        # Conv*D's names are not the depthwise layers'
        with _raises(ValueError, "['kernel_regularizer']"):
            cls.from_config({**config, "kernel_regularizer": None})


DW_TWO_D = [cj.DepthwiseConv2D, cj.SeparableConv2D]


@pytest.mark.parametrize("cls", DW_TWO_D, ids=_ids(DW_TWO_D))
@pytest.mark.parametrize("padding", ["causal", "CAUSAL", "Causal"])
def test_causal_is_refused_in_2d(cls, padding):
    with _raises(
        ValueError,
        f"{cls.__name__} does not support padding='causal': causal padding is only "
        "defined for 1-D convolutions; use 'valid' or 'same'.",
    ):
        cls(*_args(cls), 3, padding=padding)
