"""cj.save / cj.load: exact round trips of every layer and composite, in both
formats and every float dtype; custom callables registered by name or
refused at save time; corrupted, truncated and foreign files refused at
load; atomic saves."""

import json
import os
import re
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv1djax as cj
from conftest import normal
from conv1djax import saving

FORMATS = [".safetensors", ".npz"]


def _tail(v):
    return v[..., -2:, :]


saving.register(_tail, name="tests.tail")

# Every layer class, with arguments off their defaults.
LEAVES = [
    (cj.Conv1D(4, 3, strides=2, padding="same", activation="gelu",
               kernel_regularizer=cj.regularizers.L1L2(0.01, 0.02),
               kernel_constraint=cj.constraints.MaxNorm(2.0, axis=(0, 1)),
               kernel_initializer=cj.initializers.HeNormal(seed=3), name="c1"),
     (2, 12, 3)),
    (cj.Conv2D(4, (3, 2), dilation_rate=(2, 1), groups=2, use_bias=False,
               data_format="channels_first"), (2, 4, 9, 8)),
    (cj.Conv3D(2, 2, activity_regularizer="l2", bias_constraint="non_neg"),
     (1, 4, 4, 4, 2)),
    (cj.Conv1DTranspose(3, 4, strides=2, output_padding=1, impl="reference"),
     (2, 6, 2)),
    (cj.Conv2DTranspose(2, 3, strides=(2, 1), padding="same"), (1, 5, 5, 3)),
    (cj.Conv3DTranspose(2, 2, strides=2), (1, 3, 3, 3, 1)),
    (cj.DepthwiseConv1D(3, depth_multiplier=2, padding="causal",
                        depthwise_regularizer="l2"), (2, 10, 3)),
    (cj.DepthwiseConv2D(3, padding="same"), (1, 6, 6, 2)),
    (cj.SeparableConv1D(4, 3, pointwise_constraint="unit_norm"), (2, 10, 3)),
    (cj.SeparableConv2D(4, 3, depth_multiplier=2), (1, 7, 7, 2)),
    (cj.ZeroPadding1D((1, 2)), (2, 5, 3)),
    (cj.ZeroPadding2D(((1, 0), 2)), (2, 5, 5, 3)),
    (cj.ZeroPadding3D(1, data_format="channels_first"), (1, 2, 3, 3, 3)),
    (cj.Cropping1D((1, 2)), (2, 8, 3)),
    (cj.Cropping2D(((1, 0), 1)), (2, 5, 5, 3)),
    (cj.Cropping3D(1), (1, 4, 4, 4, 2)),
    (cj.UpSampling1D(3), (2, 4, 3)),
    (cj.UpSampling2D(2, interpolation="bilinear"), (1, 3, 3, 2)),
    (cj.UpSampling3D((1, 2, 1)), (1, 2, 2, 2, 1)),
    (cj.MaxPooling1D(3, strides=2, padding="same"), (2, 9, 3)),
    (cj.MaxPooling2D(2), (1, 6, 6, 2)),
    (cj.MaxPooling3D(2, data_format="channels_first"), (1, 2, 4, 4, 4)),
    (cj.AveragePooling1D(2, padding="same"), (2, 7, 3)),
    (cj.AveragePooling2D(3, strides=1), (1, 6, 6, 2)),
    (cj.AveragePooling3D(2), (1, 4, 4, 4, 1)),
    (cj.GlobalMaxPooling1D(keepdims=True), (2, 7, 3)),
    (cj.GlobalMaxPooling2D(), (1, 4, 4, 2)),
    (cj.GlobalMaxPooling3D(), (1, 2, 2, 2, 3)),
    (cj.GlobalAveragePooling1D(), (2, 7, 3)),
    (cj.GlobalAveragePooling2D(data_format="channels_first"), (1, 3, 4, 4)),
    (cj.GlobalAveragePooling3D(keepdims=True), (1, 2, 2, 2, 3)),
    (cj.Activation("softplus", activity_regularizer="l1", name="act"), (2, 5, 3)),
    (cj.Lambda(_tail), (2, 5, 3)),
    (cj.Dense(3, activation="relu", kernel_regularizer="l2", trainable=False),
     (2, 5, 4)),
    (cj.Conv1D(4, 3, lora_rank=2, lora_alpha=3.0), (2, 8, 3)),
    (cj.Flatten(data_format="channels_first"), (2, 3, 4)),
    (cj.Reshape((-1, 2)), (2, 3, 4)),
]  # fmt: skip


def _composite():
    gated = cj.Parallel(
        [cj.Conv1D(4, 2, padding="causal", activation="tanh", kernel_regularizer="l2"),
         cj.Conv1D(4, 2, padding="causal", activation="sigmoid")],
        merge="multiply", name="gated",
    )  # fmt: skip
    return cj.Sequential(
        [
            cj.Conv1D(4, 1),
            cj.Residual(cj.Sequential([gated, cj.Conv1D(4, 1)]), name="block"),
            cj.Residual(cj.Conv1D(6, 3, padding="same"), shortcut=cj.Conv1D(6, 1)),
            cj.Parallel([cj.Conv1D(2, 1), cj.MaxPooling1D(1, padding="same")],
                        merge="concat"),
            cj.Lambda(_tail),
        ],
        name="net",
    )  # fmt: skip


def _assert_identical(params, loaded):
    assert jax.tree.structure(params) == jax.tree.structure(loaded)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _round_trip(tmp_path, model, params, fmt, **kwargs):
    path = tmp_path / f"model{fmt}"
    cj.save(path, model, params)
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary left
    return cj.load(path, **kwargs)


def _params(model, shape, dtype="float32", seed=0):
    """Params of ``init``'s structure from NumPy (no compiled init)."""
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), shape, dtype=dtype))
    leaves, treedef = jax.tree.flatten(abstract)
    return jax.tree.unflatten(
        treedef, [normal(seed + i, a.shape, a.dtype) for i, a in enumerate(leaves)]
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_layer_round_trips_exactly(tmp_path, fmt):
    # An equal spec with bit-identical params computes the same function.
    for layer, shape in LEAVES:
        params = _params(layer, shape)
        loaded, loaded_params = _round_trip(tmp_path, layer, params, fmt)
        assert loaded == layer and type(loaded) is type(layer), layer
        assert loaded.name == layer.name
        assert loaded.get_config().keys() == layer.get_config().keys()
        _assert_identical(params, loaded_params)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_composites_round_trip_in_every_dtype(tmp_path, fmt, dtype):
    model = _composite()
    with jax.enable_x64(dtype == "float64"):
        params = _params(model, (None, 12, 3), dtype)
        loaded, loaded_params = _round_trip(tmp_path, model, params, fmt)
        assert loaded == model and loaded.name == "net"
        assert loaded.layers[1].name == "block"
        _assert_identical(params, loaded_params)
        assert loaded_params[0]["kernel"].dtype == jnp.dtype(dtype)
    text = model.summary((None, 12, 3), print_fn=lambda _: None)
    assert loaded.summary((None, 12, 3), print_fn=lambda _: None) == text
    if dtype == "float32":
        x = normal(2, (2, 12, 3))
        np.testing.assert_array_equal(
            np.asarray(loaded.apply(loaded_params, x)),
            np.asarray(model.apply(params, x)),
        )


def test_a_registered_user_layer_round_trips(tmp_path):
    import dataclasses

    @saving.register(name="tests.Scale")
    @dataclasses.dataclass(frozen=True)
    class Scale(cj.Layer):
        factor: float
        axes: tuple = (1,)

        def init(self, key, s, *, dtype=jnp.float32):
            return {"gain": jnp.full((s[-1],), self.factor, dtype)}

        def apply(self, p, x):
            return x * p["gain"]

        def compute_output_shape(self, s):
            return s

    model = cj.Sequential([cj.Conv1D(3, 1), Scale(0.5, axes=(1, 2), name="s")])
    params = model.init(jax.random.key(0), (None, 4, 2))
    loaded, loaded_params = _round_trip(tmp_path, model, params, ".safetensors")
    assert loaded == model and loaded.layers[1].axes == (1, 2)
    _assert_identical(params, loaded_params)


def test_unregistered_callables_fail_at_save_naming_where(tmp_path):
    path = tmp_path / "m.safetensors"

    def my_act(x):
        return x

    model = cj.Sequential([cj.Conv1D(2, 1), cj.Conv1D(2, 1, activation=my_act)])
    params = model.init(jax.random.key(0), (None, 4, 2))
    with pytest.raises(
        TypeError,
        match=r"model\.Sequential\['layers'\]\[1\].*\['activation'\] is <function "
        r".*my_act.*register it by name with cj\.saving\.register",
    ):
        cj.save(path, model, params)
    lam = cj.Lambda(lambda v: v)
    with pytest.raises(TypeError, match=r"\['function'\] is <function .*<lambda>"):
        cj.save(path, lam, {})
    assert not os.listdir(tmp_path)

    class Plain:
        def init(self, key, s, *, dtype=jnp.float32):
            return {}

        def apply(self, p, x):
            return x

        def compute_output_shape(self, s):
            return s

    with pytest.raises(TypeError, match=r"The layer class .*Plain is not registered"):
        cj.save(path, cj.Sequential([Plain()]), [{}])


def test_names_must_be_registered_when_loading(tmp_path, monkeypatch):
    def shifted(x):
        return x + 1.0

    saving.register(shifted, name="tests.shifted")
    model = cj.Conv1D(2, 1, activation=shifted)
    params = model.init(jax.random.key(0), (None, 4, 2))
    path = tmp_path / "m.npz"
    cj.save(path, model, params)
    monkeypatch.delitem(saving._registered, "tests.shifted")
    with pytest.raises(ValueError, match=r"names 'tests\.shifted', which is not "
                       r"registered in this process"):  # fmt: skip
        cj.load(path)
    loaded, _ = cj.load(path, custom_objects={"tests.shifted": shifted})
    assert loaded == model
    with pytest.raises(ValueError, match=r"already registered"):
        saving.register(lambda x: x, name="tests.tail")
    with pytest.raises(ValueError, match=r"built-in layer's name"):
        saving.register(shifted, name="Conv1D")


# ---- bad files ----------------------------------------------------------------------


def _saved(tmp_path, fmt):
    model = _composite()
    params = _params(model, (None, 12, 3))
    path = tmp_path / f"m{fmt}"
    cj.save(path, model, params)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_and_corrupted_files_are_refused(tmp_path, fmt):
    path = _saved(tmp_path, fmt)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 3, 10):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"truncated|corrupted|not"):
            cj.load(path)
    if fmt == ".safetensors":
        # One flipped bit in the last tensor's data: the digest catches it.
        data = bytearray(raw)
        data[-2] ^= 0x10
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError, match=r"is corrupted \(its shape or SHA-256"):
            cj.load(path)


def test_a_changed_npz_tensor_is_refused(tmp_path):
    path = _saved(tmp_path, ".npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["0/kernel"] = arrays["0/kernel"] + 1.0
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"'0/kernel' is corrupted"):
        cj.load(path)


def test_foreign_files_are_refused(tmp_path):
    import safetensors.numpy

    plain = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3, np.float32)}, plain)
    with pytest.raises(ValueError, match=r"a safetensors file, but not one conv1djax"):
        cj.load(plain)
    npz = tmp_path / "plain.npz"
    np.savez(npz, w=np.ones(3))
    with pytest.raises(ValueError, match=r"an \.npz file, but not one conv1djax"):
        cj.load(npz)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match=r"not a readable safetensors file"):
        cj.load(garbage)
    with pytest.raises(ValueError, match=r"must end with \.safetensors or \.npz"):
        cj.load(tmp_path / "model.pkl")


def test_a_newer_version_is_refused(tmp_path):
    path = _saved(tmp_path, ".safetensors")
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    inner = json.loads(header["__metadata__"]["conv1djax"])
    inner["version"] = 99
    header["__metadata__"]["conv1djax"] = json.dumps(inner)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    # The data offsets are relative to the end of the header, so they hold.
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])
    with pytest.raises(ValueError, match=r"format version 99; this conv1djax reads"):
        cj.load(path)


def test_params_that_do_not_fit_are_refused_at_save(tmp_path):
    model = _composite()
    params = _params(model, (None, 12, 3))
    with pytest.raises(ValueError, match=r"one entry per sub-layer \(5\)"):
        cj.save(tmp_path / "m.npz", model, params[:3])
    with pytest.raises(TypeError, match=r"saved params must be arrays"):
        cj.save(tmp_path / "m.npz", cj.Conv1D(2, 1), {"kernel": [1.0], "bias": 0.0})


def _conv2d_model():
    return cj.Sequential([cj.Conv2D(16, 3, name="first"), cj.Activation("relu"),
                          cj.Residual(cj.DepthwiseConv2D(3, padding="same"))])  # fmt: skip


def _replace(params, index, key, value):
    params = jax.tree.map(lambda a: a, params)  # a copy of the containers
    own = params[2]["inner"] if index == 2 else params[index]
    if value is None:
        del own[key]
    else:
        own[key] = value
    return params


# (layer index, param, new value or None to drop it, message fragments)
MISFITS = [
    (0, "kernel", np.zeros((3, 3, 3, 8), "float32"),
     ["params[0]['kernel'] of shape (3, 3, 3, 8) does not fit Conv2D(filters=16, "
      "kernel_size=(3, 3), groups=1) on an input with 3 channels: expected a kernel "
      "of shape (3, 3, 3, 16)."]),
    (0, "bias", np.zeros(5, "float32"),
     ["params[0]['bias'] of shape (5,) does not fit Conv2D(filters=16", "expected a "
      "bias of shape (16,)."]),
    (0, "bias", None,
     ["params[0]: Conv2D(use_bias=True) params must have exactly the keys ['bias', "
      "'kernel']; received ['kernel']."]),
    (0, "scale", np.ones(16, "float32"),
     ["params[0]: Conv2D(use_bias=True) params must have exactly the keys ['bias', "
      "'kernel']; received ['bias', 'kernel', 'scale']."]),
    (0, "kernel", np.zeros((3, 16), "float32"),
     ["params[0]['kernel'] of Conv2D must have 4 axes; received shape (3, 16)."]),
    (1, "kernel", np.zeros(3, "float32"),
     ["Activation has no params: `params[1]` must be {} (what init returns); "
      "received a dict with the keys ['kernel']."]),
    (2, "kernel", np.zeros((3, 3, 16, 2), "float32"),
     ["params[2]['inner']['kernel'] of shape (3, 3, 16, 2) does not fit "
      "DepthwiseConv2D(", "expected a kernel of shape (3, 3, 16, 1)."]),
    (2, "bias", np.zeros(15, "float32"),
     ["params[2]['inner']['bias'] of shape (15,) does not fit DepthwiseConv2D(",
      "expected a bias of shape (16,)."]),
]  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("index", "key", "value", "fragments"),
    MISFITS,
    ids=[f"{i}-{k}-{'drop' if v is None else v.shape}" for i, k, v, _ in MISFITS],
)
def test_params_that_do_not_fit_are_refused_before_writing(
    tmp_path, fmt, index, key, value, fragments
):
    model = _conv2d_model()
    params = _params(model, (None, 8, 8, 3))
    params = _replace(params, index, key, value)
    fresh = tmp_path / f"new{fmt}"
    with pytest.raises(ValueError, match=".*".join(re.escape(f) for f in fragments)):
        cj.save(fresh, model, params)
    assert os.listdir(tmp_path) == []  # nothing written, no temporary left
    old = tmp_path / f"old{fmt}"
    cj.save(old, model, _params(model, (None, 8, 8, 3)))
    before = old.read_bytes()
    with pytest.raises(ValueError, match=re.escape(fragments[0])):
        cj.save(old, model, params)
    assert old.read_bytes() == before and os.listdir(tmp_path) == [old.name]


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_rechecks_the_params_against_the_model(tmp_path, fmt, monkeypatch):
    model = _conv2d_model()
    params = _replace(_params(model, (None, 8, 8, 3)), 0, "bias", np.zeros(5, "f4"))
    path = tmp_path / f"m{fmt}"
    # A file whose params do not fit its model, as another writer could make.
    monkeypatch.setattr(saving.protocol, "check_params", lambda *args: None)
    cj.save(path, model, params)
    monkeypatch.undo()
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{path}: the saved params do not fit the saved model: params[0]['bias'] "
            "of shape (5,) does not fit Conv2D(filters=16"
        ),
    ):
        cj.load(path)


def test_an_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = _saved(tmp_path, ".safetensors")
    before = path.read_bytes()

    def broken(f, header, tensors):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(saving, "_write_safetensors", broken)
    model = cj.Conv1D(2, 1)
    with pytest.raises(KeyboardInterrupt):
        cj.save(path, model, model.init(jax.random.key(0), (None, 3, 1)))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
