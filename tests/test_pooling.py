"""MaxPooling1D/2D/3D, AveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D and
GlobalAveragePooling1D/2D/3D against Keras 3 (JAX backend) as the oracle.

- A seeded sweep of random configs of each layer (pool sizes and strides as
  ints, tuples and lists, strides None; both paddings and data formats in any
  case, data_format None; odd lengths; keepdims; one or two batch axes,
  flattened for Keras): values and the VJP w.r.t. the input match the Keras
  layer's, one jitted program per layer class holding every config, both
  sides.
- Dtypes: floating inputs keep their dtype (= Keras's layer with that dtype
  policy); integer and bool inputs give what Keras gives, bit for bit
  (integer average pooling sums in the input's dtype, wrapping around).
- Shapes: compute_output_shape == apply's shape == Keras's, None entries
  included (the channel count too); init and count_params.
- Configs: JSON round trips; our configs read by Keras's from_config; Keras's
  configs read by ours, equal to the spec built from the same arguments.
- Canonical forms: equal layers are equal specs with equal hashes, one jit
  compilation.
- Every error message, at construction and at init/apply/compute_output_shape
  (under jit too).
"""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import conv1djax.layers.pooling as pooling
from conftest import (
    assert_close,
    keras_parameter_free,
    normal,
    pairs_values_and_input_vjps,
)
from conv1djax.keras_config import KERAS_ONLY_KEYS

WINDOWED = [
    pooling.MaxPooling1D, pooling.MaxPooling2D, pooling.MaxPooling3D,
    pooling.AveragePooling1D, pooling.AveragePooling2D, pooling.AveragePooling3D,
]  # fmt: skip
GLOBAL = [
    pooling.GlobalMaxPooling1D, pooling.GlobalMaxPooling2D,
    pooling.GlobalMaxPooling3D, pooling.GlobalAveragePooling1D,
    pooling.GlobalAveragePooling2D, pooling.GlobalAveragePooling3D,
]  # fmt: skip
CLASSES = WINDOWED + GLOBAL
N_PER_CLASS = 16
FORMATS = [None, "channels_last", "channels_first", "Channels_First"]
PADDINGS = ["valid", "same", "VALID", "Same"]


def _ids(classes):
    return [cls.__name__ for cls in classes]


def _kcls(cls):
    return getattr(keras.layers, cls.__name__)


# Keras's object keys, and the layer's name (Keras names each layer anew).
# ``trainable`` is written only when False (Keras: always).
_NOT_COMPARED = KERAS_ONLY_KEYS | {"name", "trainable"}


def _keras_view(cfg):
    """A config as JSON would carry it (tuples as lists), less Keras's
    object keys and the name."""
    cfg = {k: v for k, v in cfg.items() if k not in _NOT_COMPARED}
    return json.loads(json.dumps(cfg))


def _keras_kwargs(kwargs):
    """The arguments for Keras's layer with the padding lower-cased: Keras's
    ``compute_output_shape`` (and hence its configs' layers) refuses
    ``"SAME"``, though its call lower-cases it."""
    if "padding" in kwargs:
        return {**kwargs, "padding": kwargs["padding"].lower()}
    return kwargs


def _default_kwargs(cls):
    """Keras's average pooling layers have no default pool_size."""
    return {"pool_size": 2} if cls.pool_mode == "average" and cls in WINDOWED else {}


# ---- random configs ---------------------------------------------------------


def _per_axis_arg(r, values):
    """``values`` as an int (when all equal, sometimes), a tuple or a list."""
    if len(set(values)) == 1 and r.random() < 0.5:
        return values[0]
    return tuple(values) if r.random() < 0.5 else list(values)


def _case(cls, seed):
    """(kwargs, canonical attributes, batch shape, spatial, channels)."""
    r = np.random.default_rng(10_000 * CLASSES.index(cls) + seed)
    rank = cls.rank
    kwargs, canonical = {}, {}
    if cls in WINDOWED:
        high = 4 if rank < 3 else 3
        pool = tuple(int(v) for v in r.integers(1, high + 1, rank))
        kwargs["pool_size"], canonical["pool_size"] = _per_axis_arg(r, pool), pool
        if r.random() < 0.3:
            strides = pool
        else:
            strides = tuple(int(v) for v in r.integers(1, high + 1, rank))
            kwargs["strides"] = _per_axis_arg(r, strides)
        canonical["strides"] = strides
        kwargs["padding"] = str(r.choice(PADDINGS))
        canonical["padding"] = kwargs["padding"].lower()
        if canonical["padding"] == "valid":
            spatial = tuple(k + int(r.integers(0, 4)) for k in pool)
        else:
            spatial = tuple(int(v) for v in r.integers(1, 7 - (rank == 3), rank))
    else:
        kwargs["keepdims"] = bool(r.random() < 0.5)
        canonical["keepdims"] = kwargs["keepdims"]
        spatial = tuple(int(v) for v in r.integers(1, 6 - (rank == 3), rank))
    choice = r.choice(FORMATS)
    kwargs["data_format"] = None if choice is None else str(choice)
    canonical["data_format"] = (kwargs["data_format"] or "channels_last").lower()
    batch = [(2,), (1, 2)][int(r.integers(2))]
    channels = int(r.integers(1, 4))
    return kwargs, canonical, batch, spatial, channels


def _full_shape(spec, batch, spatial, channels):
    if spec.data_format == "channels_last":
        return (*batch, *spatial, channels)
    return (*batch, channels, *spatial)


def _cases(cls):
    out = []
    for seed in range(N_PER_CLASS):
        kwargs, canonical, batch, spatial, channels = _case(cls, seed)
        spec = cls(**kwargs)
        shape = _full_shape(spec, batch, spatial, channels)
        out.append((kwargs, canonical, spec, shape, len(batch)))
    return out


SWEEP = {cls: _cases(cls) for cls in CLASSES}


# ---- the oracle sweep -------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_sweep_matches_keras(cls):
    cases = SWEEP[cls]
    pairs, xs = [], []
    for i, (kwargs, _, spec, shape, nb) in enumerate(cases):
        klayer = _kcls(cls)(**kwargs)  # Keras's call lower-cases the padding
        pairs.append(
            (lambda x, s=spec: s.apply({}, x), keras_parameter_free(klayer, shape, nb))
        )
        xs.append(normal(100 + i, shape))
    for (kwargs, _, spec, shape, _), ((y, g), (y_k, g_k)) in zip(
        cases, pairs_values_and_input_vjps(pairs, xs), strict=True
    ):
        msg = f"{cls.__name__}(**{kwargs}) on {shape}"
        assert y.shape == y_k.shape == spec.compute_output_shape(shape), msg
        assert y.dtype == y_k.dtype, msg
        assert_close(y, y_k, err_msg=msg)
        assert_close(g, g_k, err_msg=f"VJP, {msg}")


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_sweep_canonical_forms(cls):
    for kwargs, canonical, spec, _, _ in SWEEP[cls]:
        for name, value in canonical.items():
            assert getattr(spec, name) == value, (kwargs, name)
            if name in ("pool_size", "strides"):
                assert all(type(v) is int for v in getattr(spec, name))


def test_same_average_divides_by_the_elements_in_the_window():
    """Keras's JAX backend: a padded window's mean is over its input
    elements only (TensorFlow's rule too), so a constant stays constant."""
    x = jnp.full((1, 5, 4, 1), 3.0)
    spec = pooling.AveragePooling2D(3, strides=2, padding="same")
    y = spec.apply({}, x)
    np.testing.assert_array_equal(np.asarray(y), np.full((1, 3, 2, 1), 3.0))
    np.testing.assert_array_equal(
        np.asarray(y), np.asarray(keras.layers.AveragePooling2D(3, 2, "same")(x))
    )


# ---- dtypes -----------------------------------------------------------------


def _dtype_spec_and_kwargs(cls):
    if cls in WINDOWED:
        kwargs = {"pool_size": 3, "strides": 2, "padding": "same"}
    else:
        kwargs = {}
    return cls(**kwargs), kwargs


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_floating_dtypes_are_kept_as_keras_with_that_policy(dtype):
    """No dtype policy: a float16 input gives a float16 output, what a Keras
    layer with ``dtype=float16`` computes (its default float32 policy would
    cast the input to float32 first)."""
    for i, cls in enumerate(CLASSES):
        spec, kwargs = _dtype_spec_and_kwargs(cls)
        x = normal(300 + i, (2, *(5,) * cls.rank, 3), dtype)
        ours = spec.apply({}, x)
        theirs = _kcls(cls)(**kwargs, dtype=dtype)(x)
        assert ours.dtype == theirs.dtype == jnp.dtype(dtype), cls.__name__
        np.testing.assert_array_equal(
            np.asarray(ours, np.float32), np.asarray(theirs, np.float32)
        )


@pytest.mark.parametrize("dtype", ["int32", "int8", "uint8", "bool"])
def test_integer_and_bool_inputs_as_keras(dtype):
    """Max pooling keeps the dtype; average pooling sums in it (int8 wraps
    around, as in Keras) and returns float32; global average pooling gives
    float32; Keras cannot average-pool bools, nor can we."""
    r = np.random.default_rng(5)
    x = jnp.asarray(r.integers(-128, 128, (2, 5, 5, 3)).astype(dtype))
    for cls in [c for c in CLASSES if c.rank == 2]:
        spec, kwargs = _dtype_spec_and_kwargs(cls)
        if dtype == "bool" and cls is pooling.AveragePooling2D:
            with pytest.raises(
                TypeError,
                match=re.escape(
                    "AveragePooling2D cannot average a bool input (Keras's JAX "
                    "backend cannot either); cast it to a number dtype first."
                ),
            ):
                spec.apply({}, x)
            with pytest.raises(TypeError):
                _kcls(cls)(**kwargs)(x)
            continue
        ours = spec.apply({}, x)
        theirs = _kcls(cls)(**kwargs)(x)
        assert ours.dtype == theirs.dtype, cls.__name__
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
        if cls.pool_mode == "max":
            assert ours.dtype == jnp.dtype(dtype)
        else:
            assert ours.dtype == jnp.float32


def test_complex_inputs_are_refused():
    with pytest.raises(
        TypeError,
        match=re.escape(
            "GlobalMaxPooling1D takes real inputs; received dtype complex64."
        ),
    ):
        pooling.GlobalMaxPooling1D().apply({}, jnp.ones((1, 3, 2), jnp.complex64))


# ---- shapes -----------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_shapes_with_unknown_entries_match_keras(cls):
    r = np.random.default_rng(7)
    for kwargs, _, spec, shape, nb in SWEEP[cls]:
        klayer = _kcls(cls)(**_keras_kwargs(kwargs))
        assert spec.init(None, shape) == {}
        assert spec.count_params(shape) == 0
        for _ in range(3):
            partial = tuple(None if r.random() < 0.4 else d for d in shape)
            ours = spec.compute_output_shape(partial)
            batch = partial[:nb]
            flat = None if None in batch else int(np.prod(batch))
            theirs = tuple(klayer.compute_output_shape((flat, *partial[nb:])))
            assert ours[:nb] == batch
            assert ours[nb:] == theirs[1:], (kwargs, partial)


def test_global_output_rank():
    for cls in GLOBAL:
        assert cls().output_rank == 0
        assert cls(keepdims=True).output_rank == cls.rank
        assert cls.rank == int(cls.__name__[-2])
    for cls in WINDOWED:
        assert cls.rank == int(cls.__name__[-2])
        assert not hasattr(cls(2), "output_rank")


def test_upper_case_padding_where_keras_refuses_it():
    """Keras's layers store the padding as given, and their
    compute_output_shape then refuses "SAME" (their call lower-cases it);
    ours is canonical, so both work."""
    spec = pooling.MaxPooling1D(padding="SAME")
    assert spec.padding == "same"
    assert spec.compute_output_shape((None, 5, 3)) == (None, 3, 3)
    with pytest.raises(ValueError, match="must be either 'valid' or 'same'"):
        keras.layers.MaxPooling1D(padding="SAME").compute_output_shape((None, 5, 3))


# ---- configs ----------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_json_round_trip(cls):
    for spec in [cls(**_default_kwargs(cls))] + [c[2] for c in SWEEP[cls]]:
        restored = cls.from_config(json.loads(json.dumps(spec.get_config())))
        assert restored == spec
        assert hash(restored) == hash(spec)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_configs_exchanged_with_keras(cls):
    default = (_default_kwargs(cls), None, cls(**_default_kwargs(cls)), None, None)
    for kwargs, _, spec, _, _ in [default, *SWEEP[cls]]:
        # Keras's config -> ours (upper-case padding included): the spec
        # built from the same arguments.
        assert cls.from_config(_kcls(cls)(**kwargs).get_config()) == spec, kwargs
        kconfig = _kcls(cls)(**_keras_kwargs(kwargs)).get_config()
        assert cls.from_config(kconfig) == spec, kwargs
        # Ours -> Keras, directly and through JSON: the same Keras layer.
        ours = spec.get_config()
        assert set(ours) - _NOT_COMPARED == set(kconfig) - _NOT_COMPARED
        for config in (ours, json.loads(json.dumps(ours))):
            rebuilt = _kcls(cls).from_config(config)
            assert _keras_view(rebuilt.get_config()) == _keras_view(kconfig), kwargs


def test_keras_one_d_configs_hold_tuples_of_one():
    kconfig = keras.layers.AveragePooling1D(3, strides=2).get_config()
    assert (kconfig["pool_size"], kconfig["strides"]) == ((3,), (2,))
    config = pooling.AveragePooling1D(3, strides=2).get_config()
    config.pop("name", None)
    assert config == {
        "pool_size": (3,),
        "strides": (2,),
        "padding": "valid",
        "data_format": "channels_last",
    }
    config = pooling.GlobalMaxPooling3D(keepdims=True).get_config()
    config.pop("name", None)
    assert config == {"data_format": "channels_last", "keepdims": True}


def test_unknown_config_keys():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Unknown keys in the config of GlobalMaxPooling2D: ['pool_size']"
        ),
    ):
        pooling.GlobalMaxPooling2D.from_config({"pool_size": 2})


# ---- canonical forms --------------------------------------------------------

EQUAL_FORMS = [
    (pooling.MaxPooling1D, [{}, {"pool_size": 2}, {"pool_size": (2,), "strides": 2},
                            {"pool_size": [np.int64(2)], "strides": [2]},
                            {"padding": "VALID", "data_format": "Channels_Last"},
                            {"data_format": None}]),
    (pooling.MaxPooling2D, [{}, {"pool_size": 2, "strides": None},
                            {"pool_size": (2, 2), "strides": (2, 2)},
                            {"pool_size": np.array([2, 2]), "strides": jnp.array([2, 2])},
                            {"pool_size": [2, 2], "padding": "Valid"}]),
    (pooling.MaxPooling3D, [{}, {"pool_size": 2}, {"strides": (2, 2, 2)}]),
    (pooling.AveragePooling2D, [{"pool_size": 3, "padding": "same"},
                                {"pool_size": (3, 3), "strides": 3, "padding": "SAME"}]),
    (pooling.AveragePooling3D, [{"pool_size": (1, 2, 3), "strides": (1, 2, 3)},
                                {"pool_size": [1, 2, 3]}]),
    (pooling.GlobalAveragePooling1D, [{}, {"data_format": "CHANNELS_LAST"},
                                      {"keepdims": False}, {"keepdims": np.bool_(False)}]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cls", "forms"),
    EQUAL_FORMS,
    ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(EQUAL_FORMS)],
)
def test_equal_forms_are_equal_specs(cls, forms):
    specs = [cls(**form) for form in forms]
    assert all(s == specs[0] and hash(s) == hash(specs[0]) for s in specs)
    assert dataclasses.replace(specs[0]) == specs[0]


def test_defaults_and_distinctions():
    assert pooling.MaxPooling1D().pool_size == (2,)
    assert pooling.MaxPooling2D().strides == (2, 2)
    assert pooling.MaxPooling3D().pool_size == (2, 2, 2)
    assert pooling.AveragePooling2D(3, strides=1).strides == (1, 1)
    assert pooling.MaxPooling2D().padding == "valid"
    assert pooling.MaxPooling2D().data_format == "channels_last"
    assert pooling.GlobalMaxPooling2D().keepdims is False
    assert type(pooling.GlobalMaxPooling2D(keepdims=np.bool_(True)).keepdims) is bool
    with pytest.raises(TypeError, match="pool_size"):
        pooling.AveragePooling1D()  # as in Keras: no default pool_size
    assert pooling.MaxPooling2D(2) != pooling.AveragePooling2D(2)
    assert pooling.MaxPooling2D(2) != pooling.MaxPooling2D(2, strides=1)
    assert pooling.GlobalMaxPooling2D() != pooling.GlobalAveragePooling2D()
    assert pooling.GlobalMaxPooling2D() != pooling.GlobalMaxPooling2D(keepdims=True)
    assert pooling.MaxPooling2D.pool_mode == "max"
    assert pooling.GlobalAveragePooling3D.pool_mode == "average"


def test_equal_specs_compile_once():
    traces = []

    def run(x, spec):
        traces.append(spec)
        return spec.apply({}, x)

    run = jax.jit(run, static_argnums=1)
    x = jnp.ones((1, 4, 4, 2))
    for form in (2, (2, 2), [2, 2]):
        run(x, pooling.MaxPooling2D(form, strides=form, padding="VALID"))
    assert len(traces) == 1


# ---- errors -----------------------------------------------------------------

_FORMATS_MSG = "'channels_last', 'channels_first'"

CONSTRUCTION_ERRORS = [
    (lambda: pooling.MaxPooling1D(0), ValueError,
     "`pool_size` must be a positive int; received pool_size=0."),
    (lambda: pooling.MaxPooling2D((2, 0)), ValueError,
     "`pool_size` must be a positive int on every axis; received pool_size=(2, 0)."),
    (lambda: pooling.AveragePooling3D(-1), ValueError,
     "`pool_size` must be a positive int on every axis; received pool_size=-1."),
    (lambda: pooling.MaxPooling1D(2, strides=0), ValueError,
     "`strides` must be a positive int; received strides=0."),
    (lambda: pooling.AveragePooling2D(2, strides=(1, -1)), ValueError,
     "`strides` must be a positive int on every axis; received strides=(1, -1)."),
    (lambda: pooling.MaxPooling2D((2, 2, 2)), ValueError,
     "`pool_size` must be an int or a tuple of 2 ints for a 2-D pooling; received pool_size=(2, 2, 2) of length 3."),
    (lambda: pooling.MaxPooling1D((2, 2)), ValueError,
     "`pool_size` must be an int or a tuple of 1 int for a 1-D pooling; received pool_size=(2, 2) of length 2."),
    (lambda: pooling.AveragePooling3D(2, strides=[1, 1]), ValueError,
     "`strides` must be an int or a tuple of 3 ints for a 3-D pooling; received strides=(1, 1) of length 2."),
    (lambda: pooling.MaxPooling1D(2.0), TypeError,
     "`pool_size` must be an int; received 2.0 of type float."),
    (lambda: pooling.MaxPooling2D((2, True)), TypeError,
     "`pool_size` must be an int; received the bool True."),
    (lambda: pooling.AveragePooling1D("2"), TypeError,
     "`pool_size` must be an int; received '2' of type str."),
    (lambda: pooling.MaxPooling2D(strides=1.5), TypeError,
     "`strides` must be an int; received 1.5 of type float."),
    (lambda: pooling.MaxPooling1D(padding="causal"), ValueError,
     "`padding` must be one of 'valid', 'same' (any case); received padding='causal'."),
    (lambda: pooling.AveragePooling2D(2, padding="full"), ValueError,
     "`padding` must be one of 'valid', 'same' (any case); received padding='full'."),
    (lambda: pooling.MaxPooling3D(padding=None), TypeError,
     "`padding` must be one of 'valid', 'same'; received None of type NoneType."),
    (lambda: pooling.MaxPooling1D(data_format="NWC"), ValueError,
     f"`data_format` must be one of {_FORMATS_MSG} (any case); received data_format='NWC'."),
    (lambda: pooling.GlobalAveragePooling2D(data_format="channels_middle"), ValueError,
     f"`data_format` must be one of {_FORMATS_MSG} (any case); received data_format='channels_middle'."),
    (lambda: pooling.GlobalMaxPooling3D(data_format=1), TypeError,
     f"`data_format` must be one of {_FORMATS_MSG}; received 1 of type int."),
    (lambda: pooling.GlobalMaxPooling1D(keepdims=1), TypeError,
     "`keepdims` must be a bool; received 1 of type int."),
    (lambda: pooling.GlobalAveragePooling3D(keepdims="yes"), TypeError,
     "`keepdims` must be a bool; received 'yes' of type str."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "exc", "message"),
    CONSTRUCTION_ERRORS,
    ids=[str(i) for i in range(len(CONSTRUCTION_ERRORS))],
)
def test_construction_errors(make, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        make()


SHAPE_ERRORS = [
    (pooling.MaxPooling1D(), (4, 3),
     "MaxPooling1D expects inputs of rank >= 3, batch_shape + (steps, channels); received an input of shape (4, 3) (rank 2)."),
    (pooling.AveragePooling2D(2, data_format="channels_first"), (3, 4, 4),
     "AveragePooling2D expects inputs of rank >= 4, batch_shape + (channels, rows, cols); received an input of shape (3, 4, 4) (rank 3)."),
    (pooling.GlobalMaxPooling3D(), (2, 3, 3, 3),
     "GlobalMaxPooling3D expects inputs of rank >= 5, batch_shape + (dim1, dim2, dim3, channels); received an input of shape (2, 3, 3, 3) (rank 4)."),
    (pooling.GlobalAveragePooling1D(data_format="channels_first"), (3, 4),
     "GlobalAveragePooling1D expects inputs of rank >= 3, batch_shape + (channels, steps); received an input of shape (3, 4) (rank 2)."),
    (pooling.MaxPooling1D(3), (2, 2, 1),
     "MaxPooling1D(pool_size=3, strides=3, padding='valid') would give an empty output for an input of length 2 along its steps axis (the pool spans 3); received input_shape=(2, 2, 1). Use a longer input, a smaller pool_size, or padding='same'."),
    (pooling.AveragePooling2D((1, 4), strides=1), (2, 3, 3, 1),
     "AveragePooling2D(pool_size=(1, 4), strides=(1, 1), padding='valid') would give an empty output for an input of length 3 along its cols axis (the pool spans 4); received input_shape=(2, 3, 3, 1)."),
    (pooling.MaxPooling3D((2, 3, 2), data_format="channels_first"), (1, 2, 4, 2, 2, 3),
     "MaxPooling3D(pool_size=(2, 3, 2), strides=(2, 3, 2), padding='valid') would give an empty output for an input of length 2 along its dim2 axis (the pool spans 3); received input_shape=(1, 2, 4, 2, 2, 3)."),
    (pooling.MaxPooling1D(padding="same"), (2, 0, 1),
     "MaxPooling1D(pool_size=2, strides=2, padding='same') would give an empty output for an input of length 0 along its steps axis (the pool spans 2); received input_shape=(2, 0, 1). Use a non-empty input."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    SHAPE_ERRORS,
    ids=[str(i) for i in range(len(SHAPE_ERRORS))],
)
def test_shape_errors(spec, shape, message):
    match = re.escape(message)
    with pytest.raises(ValueError, match=match):
        spec.compute_output_shape(shape)
    with pytest.raises(ValueError, match=match):
        spec.init(jax.random.key(0), shape)
    with pytest.raises(ValueError, match=match):
        spec.count_params(shape)
    x = jnp.zeros(shape)
    with pytest.raises(ValueError, match=match):
        spec.apply({}, x)
    with pytest.raises(ValueError, match=match):
        jax.jit(spec.apply)({}, x)


def test_too_short_error_matches_keras_condition():
    """Keras refuses a "valid" output of length <= 0; one window is fine, and
    an unknown length is not checked."""
    spec = pooling.MaxPooling1D(3, strides=5)
    assert spec.compute_output_shape((None, 3, 2)) == (None, 1, 2)
    assert spec.compute_output_shape((None, None, 2)) == (None, None, 2)
    with pytest.raises(ValueError, match="Computed output size would be zero"):
        keras.layers.MaxPooling1D(3, 5).compute_output_shape((None, 2, 2))


def test_params_must_be_empty():
    x = jnp.ones((1, 4, 4, 1))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "MaxPooling2D has no params: `params` must be {} (what init returns); received a dict with the keys ['kernel']."
        ),
    ):
        pooling.MaxPooling2D().apply({"kernel": 1}, x)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "GlobalAveragePooling2D has no params: `params` must be {} (what init returns); received None of type NoneType."
        ),
    ):
        pooling.GlobalAveragePooling2D().apply(None, x)


def test_bad_input_shape_type():
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`input_shape` entries must be ints or None; received (2, 3.5, 1)."
        ),
    ):
        pooling.AveragePooling1D(2).compute_output_shape((2, 3.5, 1))
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`input_shape` must be a tuple of ints (or None for unknown entries); received 'abc'."
        ),
    ):
        pooling.GlobalMaxPooling1D().init(None, "abc")
