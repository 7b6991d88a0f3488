"""ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D against Keras 3
(JAX backend) as the oracle.

- A seeded sweep of random configs of each layer (every argument form Keras
  takes: an int, a pair, a pair per axis, mixed, lists; data_format None or
  either format in any case; one or two batch axes, flattened for Keras):
  values and the VJP w.r.t. the input match the Keras layer's, one jitted
  program per layer class holding every config, both sides.
- Every UpSampling2D interpolation on both data formats, floats (values and
  VJPs) and integers (Keras rounds and saturates back to the input's dtype).
- Shapes: compute_output_shape == apply's shape == Keras's, None entries
  included; init and count_params.
- Configs: JSON round trips; our configs read by Keras's from_config; Keras's
  configs read by ours, equal to the spec built from the same arguments.
- Canonical forms: equal layers are equal specs, one jit compilation.
- Every error message, at construction and at init/apply/compute_output_shape
  (under jit too).
- Layers of a ``cj.Sequential`` with ``cj.Conv2D``: shapes, summary, and the
  numbers of the same Keras model.
"""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import (
    assert_close,
    keras_parameter_free,
    normal,
    pairs_values_and_input_vjps,
)
from conv1djax.keras_config import KERAS_ONLY_KEYS
from conv1djax.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)

CLASSES = [
    ZeroPadding1D, ZeroPadding2D, ZeroPadding3D,
    Cropping1D, Cropping2D, Cropping3D,
    UpSampling1D, UpSampling2D, UpSampling3D,
]  # fmt: skip
INTERPOLATIONS = ["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5"]
N_PER_CLASS = 10


def _ids(classes):
    return [cls.__name__ for cls in classes]


def _has_format(cls):
    return "data_format" in {f.name for f in dataclasses.fields(cls)}


def _kcls(cls):
    return getattr(keras.layers, cls.__name__)


def _keras_view(cfg):
    """A config as JSON would carry it (tuples as lists), less Keras's
    object keys and the name (Keras numbers the layers it makes)."""
    cfg = {k: v for k, v in cfg.items() if k not in KERAS_ONLY_KEYS | {"name"}}
    return json.loads(json.dumps(cfg))


# ---- random configs ---------------------------------------------------------


def _side_arg(r, rank, high):
    """A padding/cropping in one of the forms Keras takes, and its canonical
    pairs."""
    pairs = tuple(tuple(int(v) for v in p) for p in r.integers(0, high + 1, (rank, 2)))
    form = int(r.integers(4))
    if form == 0:  # an int
        n = int(r.integers(0, high + 1))
        return n, ((n, n),) * rank
    if rank == 1:  # Keras's 1-D layers take one (left, right) pair
        return (pairs[0] if form < 3 else list(pairs[0])), pairs
    if form == 1:  # one symmetric int per axis
        ints = tuple(int(v) for v in r.integers(0, high + 1, rank))
        return ints, tuple((n, n) for n in ints)
    if form == 2:  # a pair per axis, as tuples or lists
        return (pairs if r.random() < 0.5 else [list(p) for p in pairs]), pairs
    mixed = tuple(p[0] if p[0] == p[1] or r.random() < 0.5 else p for p in pairs)
    sym = tuple((p, p) if isinstance(p, int) else p for p in mixed)
    return mixed, sym


def _size_arg(r, rank):
    sizes = tuple(int(v) for v in r.integers(1, 4 if rank < 3 else 3, rank))
    if rank == 1:
        return sizes[0], sizes
    if len(set(sizes)) == 1 and r.random() < 0.5:
        return sizes[0], sizes
    return (sizes if r.random() < 0.5 else list(sizes)), sizes


def _case(cls, seed):
    """(kwargs, canonical attributes, batch shape, spatial, channels)."""
    r = np.random.default_rng(10_000 * CLASSES.index(cls) + seed)
    rank = cls.rank
    kwargs, canonical = {}, {}
    high = 3 if rank < 3 else 2
    if cls.__name__.startswith("ZeroPadding"):
        kwargs["padding"], canonical["padding"] = _side_arg(r, rank, high)
        spatial = tuple(int(v) for v in r.integers(1, 5 - (rank == 3), rank))
    elif cls.__name__.startswith("Cropping"):
        kwargs["cropping"], canonical["cropping"] = _side_arg(r, rank, high)
        spatial = tuple(
            left + right + int(r.integers(1, 4 - (rank == 3)))
            for left, right in canonical["cropping"]
        )
    else:
        kwargs["size"], canonical["size"] = _size_arg(r, rank)
        spatial = tuple(int(v) for v in r.integers(1, 5 - (rank == 3), rank))
    if cls is UpSampling2D and r.random() < 0.6:
        kwargs["interpolation"] = str(
            r.choice(INTERPOLATIONS + ["Bilinear", "BICUBIC"])
        )
    if _has_format(cls):
        choice = r.choice([None, "channels_last", "channels_first", "Channels_First"])
        kwargs["data_format"] = None if choice is None else str(choice)
    batch = [(2,), (1, 2)][int(r.integers(2))]
    channels = int(r.integers(1, 4))
    return kwargs, canonical, batch, spatial, channels


def _full_shape(spec, batch, spatial, channels):
    fmt = getattr(spec, "data_format", "channels_last")
    if fmt == "channels_last":
        return (*batch, *spatial, channels)
    return (*batch, channels, *spatial)


def _cases(cls):
    out = []
    for seed in range(N_PER_CLASS):
        kwargs, canonical, batch, spatial, channels = _case(cls, seed)
        spec = cls(**kwargs)
        out.append(
            (
                kwargs,
                canonical,
                spec,
                _full_shape(spec, batch, spatial, channels),
                len(batch),
            )
        )
    return out


SWEEP = {cls: _cases(cls) for cls in CLASSES}


# ---- the oracle sweep -------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_sweep_matches_keras(cls):
    cases = SWEEP[cls]
    pairs, xs = [], []
    for i, (kwargs, _, spec, shape, nb) in enumerate(cases):
        klayer = _kcls(cls)(**kwargs)
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
        if _has_format(cls):
            assert (
                spec.data_format == (kwargs["data_format"] or "channels_last").lower()
            )
        if cls is UpSampling2D:
            assert spec.interpolation == kwargs.get("interpolation", "nearest").lower()


@pytest.mark.parametrize("batch", [(2,), (1, 2)], ids=["one_batch_axis", "two"])
def test_every_interpolation_both_formats(batch):
    pairs, xs, specs = [], [], []
    for i, interp in enumerate(INTERPOLATIONS):
        for fmt in ("channels_last", "channels_first"):
            spec = UpSampling2D((2, 3), data_format=fmt, interpolation=interp)
            klayer = keras.layers.UpSampling2D(
                (2, 3), data_format=fmt, interpolation=interp
            )
            shape = _full_shape(spec, batch, (3, 4), 2)
            pairs.append(
                (
                    lambda x, s=spec: s.apply({}, x),
                    keras_parameter_free(klayer, shape, len(batch)),
                )
            )
            xs.append(normal(200 + i, shape))
            specs.append(spec)
    for spec, x, ((y, g), (y_k, g_k)) in zip(
        specs, xs, pairs_values_and_input_vjps(pairs, xs), strict=True
    ):
        assert y.shape == y_k.shape == spec.compute_output_shape(x.shape), spec
        assert_close(y, y_k, err_msg=repr(spec))
        assert_close(g, g_k, err_msg=f"VJP, {spec!r}")


@pytest.mark.parametrize("interp", INTERPOLATIONS[1:])
def test_integer_images_round_and_saturate_as_keras(interp):
    """Resizing computes in floats; Keras rounds back to the input's integer
    dtype and saturates (uint8 overshoots of bicubic/lanczos clip at 0, 255)."""
    r = np.random.default_rng(3)
    for dtype in (np.uint8, np.int32):
        x = r.integers(0, 256, (2, 3, 4, 2)).astype(dtype)
        for fmt in ("channels_last", "channels_first"):
            ours = UpSampling2D((3, 2), fmt, interp).apply({}, x)
            theirs = keras.layers.UpSampling2D((3, 2), fmt, interp)(x)
            assert ours.dtype == theirs.dtype == dtype
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_dtypes_are_kept():
    """No dtype policy: the output has the input's dtype (Keras's float32
    policy would cast a bfloat16 input to float32; integers it keeps)."""
    for cls in CLASSES:
        spec = cls()
        shape = (1, *(4,) * cls.rank, 2)
        for dtype in (jnp.bfloat16, jnp.int32):
            assert spec.apply({}, jnp.ones(shape, dtype)).dtype == dtype
    x = jnp.arange(12, dtype=jnp.int32).reshape(1, 3, 2, 2)
    assert (
        UpSampling2D(interpolation="bilinear").apply({}, x.astype(jnp.bfloat16)).dtype
        == jnp.bfloat16
    )
    np.testing.assert_array_equal(
        np.asarray(ZeroPadding2D(1).apply({}, x)),
        np.asarray(keras.layers.ZeroPadding2D(1)(x)),
    )


# ---- shapes -----------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_shapes_with_unknown_entries_match_keras(cls):
    r = np.random.default_rng(7)
    for kwargs, _, spec, shape, nb in SWEEP[cls]:
        klayer = _kcls(cls)(**kwargs)
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


# ---- configs ----------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_json_round_trip(cls):
    for spec in [cls()] + [c[2] for c in SWEEP[cls]]:
        restored = cls.from_config(json.loads(json.dumps(spec.get_config())))
        assert restored == spec
        assert hash(restored) == hash(spec)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids(CLASSES))
def test_configs_exchanged_with_keras(cls):
    for kwargs, _, spec, _, _ in [({}, None, cls(), None, None), *SWEEP[cls]]:
        klayer = _kcls(cls)(**kwargs)
        kconfig = klayer.get_config()
        # Keras's config -> ours: the spec built from the same arguments.
        assert cls.from_config(kconfig) == spec, kwargs
        # Ours -> Keras, directly and through JSON: the same Keras layer.
        ours = spec.get_config()
        # ``trainable`` is written only when False (Keras: always)
        assert set(ours) == set(kconfig) - KERAS_ONLY_KEYS - {"trainable"}
        for config in (ours, json.loads(json.dumps(ours))):
            rebuilt = _kcls(cls).from_config(config)
            assert _keras_view(rebuilt.get_config()) == _keras_view(kconfig), kwargs


def test_unknown_config_keys():
    with pytest.raises(
        ValueError,
        match=re.escape("Unknown keys in the config of Cropping1D: ['data_format']"),
    ):
        Cropping1D.from_config({"cropping": (1, 1), "data_format": "channels_last"})


# ---- canonical forms --------------------------------------------------------

EQUAL_FORMS = [
    (
        ZeroPadding1D,
        "padding",
        [1, (1, 1), [1, 1], ((1, 1),), [np.int64(1), 1], np.array([1, 1])],
    ),
    (ZeroPadding1D, "padding", [(2, 3), ((2, 3),), [[2, 3]]]),
    (
        ZeroPadding2D,
        "padding",
        [1, (1, 1), ((1, 1), (1, 1)), [[1, 1], 1], (np.int32(1), (1, 1))],
    ),
    (ZeroPadding3D, "padding", [(1, 2, 0), ((1, 1), (2, 2), (0, 0)), [1, (2, 2), 0]]),
    (Cropping1D, "cropping", [(0, 2), ((0, 2),), [0, 2]]),
    (Cropping2D, "cropping", [0, (0, 0), ((0, 0), (0, 0))]),
    (Cropping3D, "cropping", [1, (1, 1, 1), ((1, 1),) * 3]),
    (UpSampling1D, "size", [2, (2,), [2], np.int64(2)]),
    (UpSampling2D, "size", [2, (2, 2), [2, 2], np.array([2, 2]), jnp.array([2, 2])]),
    (UpSampling3D, "size", [2, (2, 2, 2), [2, 2, 2]]),
]


@pytest.mark.parametrize(
    ("cls", "name", "forms"),
    EQUAL_FORMS,
    ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(EQUAL_FORMS)],
)
def test_equal_forms_are_equal_specs(cls, name, forms):
    specs = [cls(**{name: form}) for form in forms]
    assert all(s == specs[0] and hash(s) == hash(specs[0]) for s in specs)
    assert all(type(v) is int for v in jax.tree.leaves(getattr(specs[0], name)))
    assert dataclasses.replace(specs[0]) == specs[0]


def test_defaults_and_format_spellings():
    assert ZeroPadding1D().padding == ((1, 1),)
    assert ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert ZeroPadding3D().padding == ((1, 1),) * 3
    assert Cropping1D().cropping == ((1, 1),)
    assert Cropping2D().cropping == ((0, 0), (0, 0))
    assert Cropping3D().cropping == ((1, 1),) * 3
    assert (UpSampling1D().size, UpSampling2D().size, UpSampling3D().size) == (
        (2,),
        (2, 2),
        (2, 2, 2),
    )
    assert UpSampling2D().interpolation == "nearest"
    assert UpSampling2D(data_format=None) == UpSampling2D(data_format="CHANNELS_LAST")
    assert UpSampling2D(interpolation="LancZos3").interpolation == "lanczos3"
    assert ZeroPadding2D(data_format="Channels_First").data_format == "channels_first"
    assert ZeroPadding2D(2) != ZeroPadding2D(2, "channels_first")
    assert ZeroPadding2D(1) != Cropping2D(1)


def test_equal_specs_compile_once():
    traces = []

    def run(x, spec):
        traces.append(spec)
        return spec.apply({}, x)

    run = jax.jit(run, static_argnums=1)
    x = jnp.ones((1, 4, 4, 2))
    for form in (1, (1, 1), ((1, 1), (1, 1)), [1, [1, 1]]):
        run(x, ZeroPadding2D(form))
    assert len(traces) == 1


# ---- errors -----------------------------------------------------------------

_FORMS_1D = "an int, a (left, right) pair of ints, or ((left, right),)"
_FORMS_2D = "an int, or a tuple of 2 entries, one per spatial axis, each an int (the same on both sides) or a (left, right) pair of ints"
_FORMS_3D = _FORMS_2D.replace("tuple of 2", "tuple of 3")

CONSTRUCTION_ERRORS = [
    (
        lambda: ZeroPadding2D((1, 2, 3)),
        ValueError,
        f"`padding` must be {_FORMS_2D}; received padding=(1, 2, 3) of length 3.",
    ),
    (
        lambda: ZeroPadding3D(((1, 1), (1, 1))),
        ValueError,
        f"`padding` must be {_FORMS_3D}; received padding=((1, 1), (1, 1)) of length 2.",
    ),
    (
        lambda: ZeroPadding1D((1, 2, 3)),
        ValueError,
        f"`padding` must be {_FORMS_1D}; received padding=(1, 2, 3) of length 3.",
    ),
    (
        lambda: Cropping1D((1, (1, 2))),
        ValueError,
        f"`cropping` must be {_FORMS_1D}; received cropping=(1, (1, 2)) of length 2.",
    ),
    (
        lambda: ZeroPadding2D(((1, 2, 3), 1)),
        ValueError,
        "`padding[0]` (the rows axis) must be an int or a (left, right) pair of ints; received (1, 2, 3) in padding=((1, 2, 3), 1).",
    ),
    (
        lambda: Cropping2D((0, ((1, 1), 1))),
        ValueError,
        "`cropping[1]` (the cols axis) must be an int or a (left, right) pair of ints; received ((1, 1), 1) in cropping=(0, ((1, 1), 1)).",
    ),
    (
        lambda: Cropping3D((1, 1, (1,))),
        ValueError,
        "`cropping[2]` (the dim3 axis) must be an int or a (left, right) pair of ints; received (1,) in cropping=(1, 1, (1,)).",
    ),
    (
        lambda: ZeroPadding1D(((1, 2, 3),)),
        ValueError,
        "`padding[0]` (the steps axis) must be an int or a (left, right) pair of ints; received (1, 2, 3) in padding=((1, 2, 3),).",
    ),
    (
        lambda: ZeroPadding2D(-1),
        ValueError,
        "`padding` must be >= 0 on every side; received padding=-1.",
    ),
    (
        lambda: ZeroPadding1D((2, -1)),
        ValueError,
        "`padding` must be >= 0 on every side; received padding=(2, -1).",
    ),
    (
        lambda: Cropping3D((1, (0, -2), 1)),
        ValueError,
        "`cropping` must be >= 0 on every side; received cropping=(1, (0, -2), 1).",
    ),
    (
        lambda: ZeroPadding2D(1.0),
        TypeError,
        f"`padding` must be {_FORMS_2D}; received 1.0 of type float.",
    ),
    (
        lambda: ZeroPadding1D("same"),
        TypeError,
        f"`padding` must be {_FORMS_1D}; received 'same' of type str.",
    ),
    (
        lambda: Cropping2D(True),
        TypeError,
        f"`cropping` must be {_FORMS_2D}; received True of type bool.",
    ),
    (
        lambda: Cropping2D(None),
        TypeError,
        f"`cropping` must be {_FORMS_2D}; received None of type NoneType.",
    ),
    (
        lambda: ZeroPadding2D((1, 1.5)),
        TypeError,
        "`padding` must hold ints; received 1.5 of type float in padding=(1, 1.5).",
    ),
    (
        lambda: Cropping1D(("1", 1)),
        TypeError,
        "`cropping` must hold ints; received '1' of type str in cropping=('1', 1).",
    ),
    (
        lambda: ZeroPadding3D((1, 1, (0, False))),
        TypeError,
        "`padding` must hold ints; received False of type bool in padding=(1, 1, (0, False)).",
    ),
    (
        lambda: UpSampling1D(0),
        ValueError,
        "`size` must be a positive int; received size=0.",
    ),
    (
        lambda: UpSampling2D((2, 0)),
        ValueError,
        "`size` must be a positive int on every axis; received size=(2, 0).",
    ),
    (
        lambda: UpSampling3D(-1),
        ValueError,
        "`size` must be a positive int on every axis; received size=-1.",
    ),
    (
        lambda: UpSampling1D((2, 2)),
        ValueError,
        "`size` must be an int or a tuple of 1 int (one factor per spatial axis); received size=(2, 2) of length 2.",
    ),
    (
        lambda: UpSampling2D((2, 2, 2)),
        ValueError,
        "`size` must be an int or a tuple of 2 ints (one factor per spatial axis); received size=(2, 2, 2) of length 3.",
    ),
    (
        lambda: UpSampling1D(2.0),
        TypeError,
        "`size` must be an int; received 2.0 of type float.",
    ),
    (
        lambda: UpSampling3D((2, True, 2)),
        TypeError,
        "`size` must be an int; received the bool True.",
    ),
    (
        lambda: UpSampling2D(interpolation="area"),
        ValueError,
        "`interpolation` must be one of 'bicubic', 'bilinear', 'lanczos3', 'lanczos5', 'nearest' (any case); received interpolation='area'.",
    ),
    (
        lambda: UpSampling2D(interpolation=1),
        TypeError,
        "`interpolation` must be one of 'bicubic', 'bilinear', 'lanczos3', 'lanczos5', 'nearest'; received 1 of type int.",
    ),
    (
        lambda: ZeroPadding1D(data_format="NWC"),
        ValueError,
        "`data_format` must be one of 'channels_last', 'channels_first' (any case); received data_format='NWC'.",
    ),
    (
        lambda: Cropping3D(data_format="channels_middle"),
        ValueError,
        "`data_format` must be one of 'channels_last', 'channels_first' (any case); received data_format='channels_middle'.",
    ),
    (
        lambda: UpSampling2D(data_format=3),
        TypeError,
        "`data_format` must be one of 'channels_last', 'channels_first'; received 3 of type int.",
    ),
]


@pytest.mark.parametrize(
    ("make", "exc", "message"),
    CONSTRUCTION_ERRORS,
    ids=[str(i) for i in range(len(CONSTRUCTION_ERRORS))],
)
def test_construction_errors(make, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        make()


SHAPE_ERRORS = [
    (ZeroPadding1D(), (4, 3), "ZeroPadding1D expects inputs of rank >= 3, batch_shape + (steps, channels); received an input of shape (4, 3) (rank 2)."),
    (Cropping2D(data_format="channels_first"), (3, 4, 4), "Cropping2D expects inputs of rank >= 4, batch_shape + (channels, rows, cols); received an input of shape (3, 4, 4) (rank 3)."),
    (UpSampling3D(), (2, 3, 3, 3), "UpSampling3D expects inputs of rank >= 5, batch_shape + (dim1, dim2, dim3, channels); received an input of shape (2, 3, 3, 3) (rank 4)."),
    (Cropping1D(3), (2, 6, 1), "Cropping1D(cropping=(3, 3)) leaves nothing of the input's steps axis: it has length 6 and the cropping removes 3 + 3 = 6; received input_shape=(2, 6, 1)."),
    (Cropping2D(((0, 0), (4, 2))), (2, 3, 5, 1), "Cropping2D(cropping=((0, 0), (4, 2))) leaves nothing of the input's cols axis: it has length 5 and the cropping removes 4 + 2 = 6; received input_shape=(2, 3, 5, 1)."),
    (Cropping3D((0, 1, 0), "channels_first"), (1, 2, 4, 3, 2, 3), "Cropping3D(cropping=((0, 0), (1, 1), (0, 0))) leaves nothing of the input's dim2 axis: it has length 2 and the cropping removes 1 + 1 = 2; received input_shape=(1, 2, 4, 3, 2, 3)."),
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


ONE_ENTRY = [
    (ZeroPadding1D, "padding", (1,)),
    (ZeroPadding1D, "padding", [np.int64(2)]),
    (Cropping1D, "cropping", (1,)),
    (Cropping1D, "cropping", [0]),
    (ZeroPadding2D, "padding", (1,)),
    (Cropping2D, "cropping", ((1,), (1,))),
    (ZeroPadding3D, "padding", (1,)),
    (Cropping3D, "cropping", (1, 1)),
]


@pytest.mark.parametrize(
    ("cls", "name", "value"), ONE_ENTRY, ids=[str(i) for i in range(len(ONE_ENTRY))]
)
def test_keras_refusals_are_refused(cls, name, value):
    """What Keras 3 refuses when built (``Cropping1D(cropping=(1,))``: "must
    be a tuple of 2 integers"; too few entries in 2-D and 3-D), we refuse
    too, with a ValueError naming the argument and echoing the value."""
    with pytest.raises(ValueError, match=rf"`(\d\w+ entry of )?{name}"):
        getattr(keras.layers, cls.__name__)(**{name: value})
    with pytest.raises(ValueError, match=rf"^`{name}(\[\d\])?` .*must be .*received "):
        cls(**{name: value})
    if cls.rank == 1:
        with pytest.raises(ValueError, match=re.escape(
            f"`{name}` must be {_FORMS_1D}; received {name}={value!r} of length 1."
        )):  # fmt: skip
            cls(**{name: value})
        assert cls(**{name: (value[0],) * 2}) == cls(**{name: value[0]})


def test_cropping_error_matches_keras_condition():
    """Keras refuses a cropping that leaves a length <= 0; one left is fine."""
    assert Cropping1D((2, 3)).compute_output_shape((None, 6, 2)) == (None, 1, 2)
    with pytest.raises(ValueError):
        keras.layers.Cropping1D((3, 3)).compute_output_shape((None, 6, 2))
    assert Cropping2D(2).compute_output_shape((None, None, 5, 1)) == (None, None, 1, 1)


def test_params_must_be_empty():
    x = jnp.ones((1, 3, 3, 1))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ZeroPadding2D has no params: `params` must be {} (what init returns); received a dict with the keys ['kernel', 'bias']."
        ),
    ):
        ZeroPadding2D().apply({"kernel": 1, "bias": 2}, x)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "UpSampling2D has no params: `params` must be {} (what init returns); received None of type NoneType."
        ),
    ):
        UpSampling2D().apply(None, x)


def test_bad_input_shape_type():
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`input_shape` entries must be ints or None; received (2, 3.5, 1)."
        ),
    ):
        ZeroPadding1D().compute_output_shape((2, 3.5, 1))


# ---- in a Sequential --------------------------------------------------------


def test_in_sequential_with_conv2d():
    layers = [
        ZeroPadding2D(((1, 0), 2)),
        cj.Conv2D(3, 3, activation="relu"),
        UpSampling2D((2, 1), interpolation="bilinear"),
        Cropping2D(((1, 2), (0, 1))),
        UpSampling2D(),
    ]
    model = cj.Sequential(layers)
    hash(model)
    assert model.layer_input_shapes((None, 5, 6, 2)) == [
        (None, 5, 6, 2), (None, 6, 10, 2), (None, 4, 8, 3), (None, 8, 8, 3),
        (None, 5, 7, 3), (None, 10, 14, 3),
    ]  # fmt: skip
    lines = []
    text = model.summary((None, 5, 6, 2), print_fn=lines.append)
    assert lines == [text]
    assert text == "\n".join([
        "Layer (type)                     Output Shape        Param #",
        "============================================================",
        "zero_padding2d (ZeroPadding2D)   (None, 6, 10, 2)          0",
        "conv2d (Conv2D)                  (None, 4, 8, 3)          57",
        "up_sampling2d (UpSampling2D)     (None, 8, 8, 3)           0",
        "cropping2d (Cropping2D)          (None, 5, 7, 3)           0",
        "up_sampling2d_1 (UpSampling2D)   (None, 10, 14, 3)         0",
        "============================================================",
        "Total params: 57",
    ])  # fmt: skip
    params = model.init(jax.random.key(0), (None, 5, 6, 2))
    assert [sorted(p) for p in params] == [[], ["bias", "kernel"], [], [], []]
    x = normal(5, (2, 5, 6, 2))
    y = jax.jit(model.apply)(params, x)
    kmodel = keras.Sequential([keras.Input((5, 6, 2))] + [
        _kcls(type(layer)).from_config(layer.get_config()) for layer in layers
    ])  # fmt: skip
    kmodel.layers[1].set_weights(
        [np.asarray(params[1]["kernel"]), np.asarray(params[1]["bias"])]
    )
    assert kmodel.count_params() == model.count_params((None, 5, 6, 2))
    assert_close(y, kmodel(x))
