"""State and randomness in the layer protocol, proven end to end on two test
layers before any library layer uses them: ``Counter`` owns a non-trainable
weight that every training-mode call increments and a moving mean of its
inputs (batch-normalization-like state), and ``Drop`` zeroes inputs at
random in training (dropout-like). The oracle is arithmetic written here:
what the state must be after n steps, which draws a key must give, what the
optimizer may not touch."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import normal

MOMENTUM = 0.9


@cj.saving.register(name="tests.test_state.Counter")
@dataclasses.dataclass(frozen=True)
class Counter(cj.Layer):
    """``y = scale * x + count``; training counts its calls and keeps a
    moving mean of its inputs (Keras's BatchNormalization update rule)."""

    def init(self, key, input_shape, *, dtype=jnp.float32):
        del key
        channels = input_shape[-1]
        return {
            "scale": jnp.full((channels,), 2.0, dtype),
            "count": jnp.zeros((), jnp.int32),
            "moving_mean": jnp.zeros((channels,), dtype),
        }

    def non_trainable_weights(self):
        return ("count", "moving_mean")

    def apply(self, params, x):
        return params["scale"] * x + params["count"].astype(x.dtype)

    def apply_training(self, params, x, *, key):
        del key
        mean = jnp.mean(x, axis=tuple(range(x.ndim - 1)))
        moving = MOMENTUM * params["moving_mean"] + (1 - MOMENTUM) * mean
        return self.apply(params, x), {
            "count": params["count"] + 1,
            "moving_mean": moving,
        }

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@dataclasses.dataclass(frozen=True)
class Drop(cj.Layer):
    """Dropout: identity at inference; in training, each entry zeroed with
    probability ``rate`` and the others scaled by ``1 / (1 - rate)``."""

    rate: float = 0.5

    def init(self, key, input_shape, *, dtype=jnp.float32):
        return {}

    def apply(self, params, x):
        return x

    def apply_training(self, params, x, *, key):
        key = cj.protocol.require_key(self, key)
        keep = jax.random.bernoulli(key, 1 - self.rate, jnp.shape(x))
        return jnp.where(keep, x / (1 - self.rate), 0.0), {}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@dataclasses.dataclass(frozen=True)
class Frozen(cj.Layer):
    """A layer with a trainable weight and the ``trainable`` switch."""

    trainable: bool = True

    def init(self, key, input_shape, *, dtype=jnp.float32):
        return {"w": jnp.ones((input_shape[-1],), dtype)}

    def apply(self, params, x):
        return params["w"] * x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def _model():
    return cj.Sequential(
        [
            cj.Conv1D(3, 3, padding="same"),
            Counter(),
            Drop(0.5),
            cj.Residual(cj.Sequential([Drop(0.25), cj.Conv1D(3, 1)])),
        ]
    )


def _data(seed=0, shape=(4, 16, 2)):
    x = jax.random.normal(jax.random.key(seed), shape)
    return x, jnp.roll(x[..., :1], 1, axis=1) * jnp.ones((1, 1, 3))


def test_inference_is_apply_and_needs_no_key():
    model = _model()
    params = model.init(0, (None, 16, 2))
    x, _ = _data()
    y = model.apply(params, x)
    manual = params[0]
    h = model.layers[0].apply(manual, x)
    h = 2.0 * h  # Counter: scale 2, count 0; Drop: identity
    conv = model.layers[3].inner.layers[1]
    h = h + conv.apply(params[3]["inner"][1], h)
    np.testing.assert_allclose(y, h, rtol=1e-6, atol=1e-6)


def test_training_call_updates_state_and_draws_per_layer():
    model = _model()
    params = model.init(0, (None, 16, 2))
    x, _ = _data()
    y1, new = cj.apply_training(model, params, x, key=jax.random.key(1))
    y2, _ = cj.apply_training(model, params, x, key=jax.random.key(1))
    y3, _ = cj.apply_training(model, params, x, key=jax.random.key(2))
    np.testing.assert_array_equal(y1, y2)  # same key, same draws
    assert not np.array_equal(y1, y3)
    # The state, and only the state, is updated; the structure is kept.
    assert jax.tree.structure(new) == jax.tree.structure(params)
    assert int(new[1]["count"]) == 1
    h = model.layers[0].apply(params[0], x)
    np.testing.assert_allclose(
        new[1]["moving_mean"], (1 - MOMENTUM) * h.mean(axis=(0, 1)), rtol=1e-5
    )
    for a, b in zip(jax.tree.leaves(new[0]), jax.tree.leaves(params[0]), strict=True):
        np.testing.assert_array_equal(a, b)
    # The two Drop layers draw different masks from the one key: per-layer
    # keys, folded from the params path.
    ones = jnp.ones((64, 16, 3))
    twin = cj.Parallel([Drop(0.5), Drop(0.5)], merge="concat")
    y, _ = cj.apply_training(twin, [{}, {}], ones, key=jax.random.key(3))
    assert not np.array_equal(y[..., :3] == 0, y[..., 3:] == 0)


def test_dropout_like_layer_has_dropouts_distribution():
    x = jnp.ones((200, 50, 4))
    y, _ = cj.apply_training(Drop(0.3), {}, x, key=jax.random.key(0))
    kept = np.asarray(y != 0)
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.7, rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 0.02  # the mean is preserved


def test_a_random_layer_without_a_key_is_refused_clearly():
    with pytest.raises(ValueError, match=r"Drop draws random bits .* no key"):
        cj.apply_training(_model(), _model().init(0, (None, 16, 2)), _data()[0])


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_train_step_updates_state_not_through_the_optimizer():
    model = _model()
    params = model.init(0, (None, 16, 2))
    # AdamW decays every weight it is given; state must not see it, although
    # the count and moving mean have nonzero gradients (count shifts y).
    opt = optax.adamw(1e-2, weight_decay=0.5)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    opt_state = opt.init(cj.trainable_params(model, params))
    x, t = _data()
    expected_mean = jnp.zeros(3)
    for i in range(3):
        h = model.layers[0].apply(params[0], x)
        expected_mean = MOMENTUM * expected_mean + (1 - MOMENTUM) * h.mean(axis=(0, 1))
        before = params
        params, opt_state, loss = step(params, opt_state, x, t, jax.random.key(i))
        assert int(params[1]["count"]) == i + 1
        np.testing.assert_allclose(params[1]["moving_mean"], expected_mean, rtol=1e-5)
        assert params[1]["count"].dtype == jnp.int32
        # trainable weights moved
        assert not np.allclose(params[0]["kernel"], before[0]["kernel"])
        assert not np.allclose(params[1]["scale"], before[1]["scale"])
    # A step without a key refuses: Drop needs one.
    with pytest.raises(ValueError, match="no key"):
        step(params, opt_state, x, t)


def test_an_optimizer_state_of_the_whole_params_is_refused_clearly():
    model = cj.Sequential([cj.Conv1D(3, 3), Counter()])
    params = model.init(0, (None, 16, 2))
    opt = optax.adam(1e-3)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    x = jnp.ones((2, 16, 2))
    with pytest.raises(ValueError, match=r"optimizer.init\(cj.trainable_params"):
        step(params, opt.init(params), x, jnp.ones((2, 14, 3)))


def test_train_step_objective_is_the_training_mode_loss():
    model = _model()
    params = model.init(0, (None, 16, 2))
    x, t = _data()
    opt = optax.sgd(0.0)
    step = cj.make_train_step(model, opt, lambda p, q: jnp.mean((p - q) ** 2))
    key = jax.random.key(5)
    _, _, loss = step(params, opt.init(cj.trainable_params(model, params)), x, t, key)
    y, _ = cj.apply_training(model, params, x, key=key)
    np.testing.assert_allclose(loss, jnp.mean((y - t) ** 2), rtol=1e-6)
    # The eval step is inference: apply's output, the state read.
    evaluate = cj.make_eval_step(model, lambda p, q: jnp.mean((p - q) ** 2))
    metrics = evaluate(params, x, t)
    np.testing.assert_allclose(
        metrics["loss"], jnp.mean((model.apply(params, x) - t) ** 2), rtol=1e-6
    )


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_frozen_layer_keeps_its_weights_and_its_regularizer_counts_nothing():
    model = cj.Sequential([Frozen(trainable=False), cj.Conv1D(1, 1), Frozen()])
    params = model.init(0, (None, 8, 1))
    mask = cj.protocol.trainable_mask(model, params)
    assert mask == [{"w": False}, {"bias": True, "kernel": True}, {"w": True}]
    opt = optax.adamw(0.1, weight_decay=1.0)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    x = jnp.linspace(-1, 1, 16).reshape(2, 8, 1)
    new, _, _ = step(params, opt.init(cj.trainable_params(model, params)), x, 3 * x)
    np.testing.assert_array_equal(new[0]["w"], params[0]["w"])
    assert not np.array_equal(new[2]["w"], params[2]["w"])


def test_check_gradients_in_training_mode_with_a_fixed_key():
    model = cj.Sequential([cj.Conv1D(2, 3, padding="same", activation="tanh"),
                           Drop(0.5)])  # fmt: skip
    params = model.init(0, (None, 6, 1))
    x = jax.random.normal(jax.random.key(0), (2, 6, 1))
    report = cj.check_gradients(
        model, params, x, training=True, key=jax.random.key(1), order=1
    )
    assert report.ok
    # The training-mode derivative is that of one draw: zeroed outputs have
    # zero gradient, which the inference derivative has not.
    y, _ = cj.apply_training(model, params, x, key=jax.random.key(1))
    assert (np.asarray(y) == 0).any()


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_state_survives_save_and_load(tmp_path, suffix):
    model = cj.Sequential([cj.Conv1D(3, 3), Counter()])
    params = model.init(0, (None, 16, 2))
    _, params = cj.apply_training(model, params, _data()[0])
    path = tmp_path / f"m{suffix}"
    cj.save(path, model, params)
    loaded_model, loaded = cj.load(path)
    assert loaded_model == model
    assert int(loaded[1]["count"]) == 1
    assert loaded[1]["count"].dtype == jnp.int32
    np.testing.assert_array_equal(loaded[1]["moving_mean"], params[1]["moving_mean"])


def test_summary_counts_non_trainable_params():
    text = cj.summary(
        cj.Sequential([cj.Conv1D(3, 3), Counter()]),
        (None, 16, 2),
        print_fn=lambda _: None,
    )
    # Conv1D: 3*2*3 + 3 = 21; Counter: scale 3 trainable, count 1 + mean 3 not.
    assert "Total params: 28" in text
    assert "Trainable params: 24" in text
    assert "Non-trainable params: 4" in text


def test_updates_of_trainable_weights_are_refused():
    @dataclasses.dataclass(frozen=True)
    class Cheat(Counter):
        def apply_training(self, params, x, *, key):
            return x, {"scale": params["scale"]}

    with pytest.raises(ValueError, match=r"updated 'scale', which is not one of"):
        cj.apply_training(Cheat(), Cheat().init(0, (None, 4, 2)), jnp.ones((1, 4, 2)))


def test_a_composite_without_call_cannot_hide_training_behaviour():
    @dataclasses.dataclass(frozen=True)
    class Opaque(cj.Layer):
        inner: object

        def sublayers(self):
            return {"inner": self.inner}

        def init(self, key, input_shape, *, dtype=jnp.float32):
            return {"inner": self.inner.init(key, input_shape)}

        def apply(self, params, x):
            return self.inner.apply(params["inner"], x)

        def compute_output_shape(self, input_shape):
            return tuple(input_shape)

    layer = Opaque(Drop())
    with pytest.raises(ValueError, match="takes no `call` keyword"):
        cj.apply_training(
            layer, {"inner": {}}, jnp.ones((1, 4, 2)), key=jax.random.key(0)
        )


def test_stateful_model_runs_sharded_over_a_mesh():
    model = cj.Sequential([cj.Conv1D(3, 3, padding="same"), Counter()])
    params = model.init(0, (None, 16, 2))
    mesh = cj.parallel.data_mesh()
    opt = optax.sgd(0.1)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    x, t = _data(shape=(len(jax.devices()) * 2, 16, 2))
    opt_state = opt.init(cj.trainable_params(model, params))
    replicated = cj.parallel.replicate(params, mesh)
    new, _, _ = step(replicated, cj.parallel.replicate(opt_state, mesh),
                     cj.parallel.shard_batch(x, mesh), cj.parallel.shard_batch(t, mesh))  # fmt: skip
    plain, _, _ = step(params, opt_state, x, t)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert int(new[1]["count"]) == 1


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_a_model_of_every_new_layer_trains_and_its_state_updates(tmp_path):
    # Issue 21's layers in one model: normalization, dropout and noise, LoRA,
    # the kernel wrappers, Reshape, Flatten, Dense; the loss falls, every
    # piece of state moves, frozen weights stay, and it all saves and loads.
    model = cj.Sequential([
        cj.Conv1D(8, 3, padding="same", lora_rank=2),
        cj.BatchNormalization(),
        cj.Activation("relu"),
        cj.SpectralNormalization(cj.Conv1D(8, 3, padding="same")),
        cj.LayerNormalization(rms_scaling=True),
        cj.SpatialDropout1D(0.1),
        cj.WeightNormalization(cj.Conv1D(8, 3, strides=2, padding="same")),
        cj.GroupNormalization(groups=4),
        cj.GaussianNoise(0.05),
        cj.Reshape((8, 4, 2)),
        cj.Flatten(),
        cj.Dropout(0.2),
        cj.Dense(3),
        cj.GaussianDropout(0.1),
    ])  # fmt: skip
    params = model.init(jax.random.key(0), (None, 16, 2))
    x, t = normal(0, (16, 16, 2)), normal(1, (16, 3))
    opt = optax.adam(1e-2)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    opt_state = opt.init(cj.trainable_params(model, params))
    new, losses = params, []
    for i in range(8):
        new, opt_state, loss = step(new, opt_state, x, t, jax.random.key(i))
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0], losses
    assert not np.array_equal(new[1]["moving_mean"], params[1]["moving_mean"])
    assert not np.array_equal(new[1]["moving_variance"], params[1]["moving_variance"])
    assert not np.array_equal(new[3]["vector_u"], params[3]["vector_u"])
    assert not np.array_equal(new[0]["lora_kernel_b"], params[0]["lora_kernel_b"])
    np.testing.assert_array_equal(new[0]["kernel"], params[0]["kernel"])  # LoRA's base
    path = tmp_path / "model.safetensors"
    cj.save(path, model, new)
    model2, params2 = cj.load(path)
    assert model2 == model
    np.testing.assert_array_equal(model2.apply(params2, x), model.apply(new, x))
