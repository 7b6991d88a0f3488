"""The N-d layers in models and training: a Sequential of Conv2D, Activation
and Conv2DTranspose with regularizers, constraints and activity penalties,
trained with the jit-compiled step; its loss terms by hand and against
Keras 3; gradient checks of Conv2D, Conv3D and Conv2DTranspose; summaries
and parameter counts against Keras; data parallelism over host devices."""

import dataclasses
import textwrap

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import assert_close, normal, run_on_host_devices

L2, L1 = cj.regularizers.L2, cj.regularizers.L1
MAX_NORM = 0.75


def _mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def _model():
    """A small 2-D denoising autoencoder with every kind of penalty and
    constraint: (N, 8, 8, 2) -> (N, 4, 4, 8) -> (N, 8, 8, 2)."""
    return cj.Sequential(
        [
            cj.Conv2D(
                8, 3, strides=2, padding="same", activation="relu",
                kernel_regularizer=L2(1e-3), bias_regularizer=L1(1e-3),
                activity_regularizer=L1(1e-4),
                kernel_constraint=cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1, 2)),
            ),
            cj.Activation("tanh", activity_regularizer=L2(1e-4)),
            cj.Conv2DTranspose(
                2, (3, 2), strides=2, padding="same", kernel_regularizer="l2",
                bias_constraint="non_neg",
            ),
        ]
    )  # fmt: skip


def _data(n=32, seed=0):
    """Noisy 2-D sinusoids (input) and the clean ones (target)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 8)
    fy, fx = rng.uniform(0.5, 1.5, (2, n, 1, 1, 2))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 2))
    clean = np.sin(t[None, :, None, None] * fy + t[None, None, :, None] * fx + phase)
    noisy = clean + 0.2 * rng.normal(size=clean.shape)
    return jnp.asarray(noisy, jnp.float32), jnp.asarray(clean, jnp.float32)


def _check_constraints(params):
    norms = jnp.sqrt(jnp.sum(params[0]["kernel"] ** 2, axis=(0, 1, 2)))
    assert float(norms.max()) <= MAX_NORM + 1e-6
    assert float(params[2]["bias"].min()) >= 0.0


def test_training_reduces_the_loss_and_keeps_the_constraints():
    model = _model()
    x, y = _data()
    params = model.init(jax.random.key(0), x.shape)
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    step = cj.make_train_step(model, opt, _mse)
    evaluate = cj.make_eval_step(model, _mse)
    before = evaluate(params, x, y)
    losses = []
    for _ in range(100):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
        _check_constraints(params)
    assert np.all(np.isfinite(losses))
    assert losses[0] == pytest.approx(float(before["loss"]), rel=1e-5)
    assert losses[-1] < 0.4 * losses[0], losses[::10]
    after = evaluate(params, x, y)
    assert float(after["task_loss"]) < 0.2 * float(before["task_loss"])
    # the max-norm bound was reached: the projection ran
    norms = jnp.sqrt(jnp.sum(params[0]["kernel"] ** 2, axis=(0, 1, 2)))
    assert float(norms.max()) > 0.99 * MAX_NORM


def _by_hand(params, x, y_true):
    """Every term of the objective, written out: Keras's regularizer
    formulas, activity penalties divided by the batch size (Keras 3)."""
    k0, b0 = params[0]["kernel"], params[0]["bias"]
    k2 = params[2]["kernel"]
    batch = x.shape[0]
    pre = jax.lax.conv_general_dilated(
        x, k0, (2, 2), ((0, 1), (0, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    h0 = jax.nn.relu(pre + b0)
    h1 = jnp.tanh(h0)
    y = _reference_apply(params, x)
    return {
        "task_loss": _mse(y, y_true),
        "regularization_loss": 1e-3 * jnp.sum(k0**2)
        + 1e-3 * jnp.sum(jnp.abs(b0))
        + 0.01 * jnp.sum(k2**2),  # "l2" is L2(0.01)
        "activity_loss": 1e-4 * jnp.sum(jnp.abs(h0)) / batch
        + 1e-4 * jnp.sum(h1**2) / batch,
    }


def _reference_apply(params, x):
    """The model on the reference lowering (one XLA convolution per layer)."""
    model = _model()
    layers = [
        dataclasses.replace(layer, impl="reference")
        if hasattr(layer, "impl")
        else layer
        for layer in model.layers
    ]
    return cj.Sequential(layers).apply(params, x)


def test_regularization_loss_by_hand():
    model = _model()
    x, y = _data(4, seed=1)
    params = model.init(jax.random.key(1), x.shape)
    params[0]["bias"] = normal(1, (8,))
    expected = _by_hand(params, x, y)["regularization_loss"]
    assert_close(cj.regularization_loss(model, params), expected, rtol=1e-6)
    # one layer on its own, and a layer without regularizers
    k0, b0 = params[0]["kernel"], params[0]["bias"]
    assert_close(
        cj.regularization_loss(model.layers[0], params[0]),
        1e-3 * jnp.sum(k0**2) + 1e-3 * jnp.sum(jnp.abs(b0)),
        rtol=1e-6,
    )
    assert float(cj.regularization_loss(cj.Conv2D(2, 3), params[0])) == 0.0


def test_apply_constraints_by_hand():
    model = _model()
    params = model.init(jax.random.key(2), (2, 8, 8, 2))
    params = jax.tree.map(lambda p: 3.0 * p - 0.1, params)
    params[2]["bias"] = jnp.array([-1.0, 2.0])
    projected = cj.apply_constraints(model, params)
    k0 = params[0]["kernel"]
    norms = jnp.sqrt(jnp.sum(k0**2, axis=(0, 1, 2), keepdims=True))
    assert_close(
        projected[0]["kernel"], k0 * jnp.clip(norms, 0, MAX_NORM) / (1e-7 + norms)
    )
    kept = jnp.sqrt(jnp.sum(projected[0]["kernel"] ** 2, axis=(0, 1, 2)))
    assert float(kept.max()) <= MAX_NORM + 1e-6
    assert_close(projected[0]["bias"], params[0]["bias"], rtol=0, atol=0)
    assert projected[1] == {}
    assert_close(projected[2]["kernel"], params[2]["kernel"], rtol=0, atol=0)
    assert projected[2]["bias"].tolist() == [0.0, 2.0]
    # Keras's own constraints agree
    keras_k0 = keras.constraints.MaxNorm(MAX_NORM, axis=(0, 1, 2))(k0)
    assert_close(projected[0]["kernel"], keras_k0, rtol=1e-6)


def test_eval_step_reports_the_terms_by_hand():
    """task loss + weight penalties + activity penalties (Keras 3 divides
    each layer's activity penalty by the batch size)."""
    model = _model()
    x, y = _data(4, seed=2)
    params = model.init(jax.random.key(3), x.shape)
    params[0]["bias"] = normal(2, (8,))
    terms = _by_hand(params, x, y)
    parts = cj.make_eval_step(model, _mse)(params, x, y)
    assert sorted(parts) == [
        "activity_loss",
        "loss",
        "regularization_loss",
        "task_loss",
    ]
    assert_close(parts["task_loss"], terms["task_loss"], rtol=1e-5)
    assert_close(parts["regularization_loss"], terms["regularization_loss"], rtol=1e-5)
    total = parts["task_loss"] + parts["regularization_loss"] + parts["activity_loss"]
    assert_close(parts["loss"], total, rtol=1e-6)
    _, activity = cj.apply_with_activity(model, params, x)
    assert_close(parts["activity_loss"], activity, rtol=1e-6)
    assert_close(parts["activity_loss"], terms["activity_loss"], rtol=1e-5)


def _keras_model(model, input_shape, params):
    """The same model in Keras, from our configs, with our weights."""
    klayers = [
        getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())
        for layer in model.layers
    ]
    kmodel = keras.Sequential([keras.Input(input_shape[1:]), *klayers])
    for klayer, p in zip(kmodel.layers, params, strict=True):
        if p:
            klayer.set_weights([np.asarray(p["kernel"]), np.asarray(p["bias"])])
    return kmodel


def test_outputs_and_objective_equal_keras():
    model = _model()
    x, y = _data(4, seed=3)
    params = model.init(jax.random.key(4), x.shape)
    params[0]["bias"] = normal(3, (8,))
    kmodel = _keras_model(model, x.shape, params)
    y_keras = kmodel(x)
    assert_close(model.apply(params, x), y_keras)
    assert len(kmodel.losses) == 5  # 3 weight penalties + 2 activity penalties
    keras_total = float(_mse(y_keras, y)) + float(sum(kmodel.losses))
    opt = optax.sgd(0.0)
    _, _, loss = cj.make_train_step(model, opt, _mse)(params, opt.init(params), x, y)
    assert_close(loss, keras_total, rtol=1e-5)


def test_summary_and_count_params_equal_keras():
    model = _model()
    input_shape = (None, 8, 8, 2)
    params = model.init(jax.random.key(5), input_shape)
    assert [sorted(p) for p in params] == [["bias", "kernel"], [], ["bias", "kernel"]]
    assert params[0]["kernel"].shape == (3, 3, 2, 8)
    assert params[2]["kernel"].shape == (3, 2, 2, 8)
    kmodel = _keras_model(model, input_shape, params)
    assert model.count_params(input_shape) == kmodel.count_params() == 144 + 8 + 96 + 2
    for layer, klayer, shape in zip(
        model.layers, kmodel.layers, model.layer_input_shapes(input_shape), strict=False
    ):
        if hasattr(layer, "count_params"):
            assert layer.count_params(shape) == klayer.count_params()
        assert tuple(layer.compute_output_shape(shape)) == tuple(klayer.output.shape)
    lines = []
    text = model.summary(input_shape, print_fn=lines.append)
    assert lines == [text]
    assert "conv2d (Conv2D)" in text
    assert "activation (Activation)" in text
    assert "conv2d_transpose (Conv2DTranspose)" in text
    assert "(None, 4, 4, 8)" in text and "(None, 8, 8, 2)" in text
    assert f"Total params: {kmodel.count_params():,}" in text
    # a 3-D model, several batch axes
    model3 = cj.Sequential(
        [cj.Conv3D(4, (3, 3, 1), groups=2), cj.Conv3DTranspose(2, 2)]
    )
    assert model3.count_params((None, 6, 6, 6, 2)) == (9 * 1 * 4 + 4) + (8 * 2 * 4 + 2)
    assert model3.compute_output_shape((3, 2, 6, 6, 6, 2)) == (3, 2, 5, 5, 7, 2)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (cj.Conv2D(2, (2, 3), strides=(2, 1), groups=2, activation="tanh"),
         (1, 4, 5, 2)),
        (cj.Conv3D(2, 2, padding="same", dilation_rate=(1, 2, 1),
                   activation="sigmoid"),
         (1, 3, 3, 3, 1)),
        (cj.Conv2DTranspose(2, (3, 2), dilation_rate=(1, 2), padding="same",
                            activation="tanh"),
         (1, 3, 3, 2)),
    ],
    ids=["Conv2D", "Conv3D", "Conv2DTranspose"],
)  # fmt: skip
def test_check_gradients_passes(layer, shape):
    params = layer.init(jax.random.key(6), shape)
    params["bias"] = normal(6, params["bias"].shape)
    report = cj.check_gradients(layer, params, normal(7, shape))
    assert report.ok and report.dtype == "float64" and report.order == 2
    assert [name for name, _, _ in report.rows] == ["x", "['bias']", "['kernel']"]


# ---- data parallelism ------------------------------------------------------

_SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    import conv1djax as cj
    assert jax.device_count() == 8, jax.devices()
    model = cj.Sequential([
        cj.Conv2D(8, 3, strides=2, padding="same", activation="relu", groups=2,
                  kernel_regularizer=cj.regularizers.L2(1e-3),
                  activity_regularizer=cj.regularizers.L1(1e-3),
                  kernel_constraint=cj.constraints.MaxNorm(1.0, axis=(0, 1, 2))),
        cj.Conv2DTranspose(2, (3, 2), strides=2, padding="same",
                           bias_constraint="non_neg"),
    ])
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 8, 6, 2)), jnp.float32)
    params = model.init(jax.random.key(0), x.shape)
    opt = optax.adam(1e-2)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))

    def run(params, x):
        opt_state = opt.init(params)
        losses = []
        for _ in range(3):
            params, opt_state, loss = step(params, opt_state, x, x)
            losses.append(loss)
        return params, losses

    ref_params, ref_losses = run(params, x)
    mesh = cj.parallel.data_mesh()
    sharded_x = cj.parallel.shard_batch(x, mesh)
    assert len(sharded_x.sharding.device_set) == 8
    assert sharded_x.addressable_shards[0].data.shape == (2, 8, 6, 2)
    sh_params, sh_losses = run(cj.parallel.replicate(params, mesh), sharded_x)
    assert len(sh_params[0]["kernel"].sharding.device_set) == 8
    assert sh_params[0]["kernel"].sharding.is_fully_replicated
    np.testing.assert_allclose(np.array(sh_losses), np.array(ref_losses), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(sh_params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    print("sharded == unsharded")
    """
)


def test_sharded_2d_step_equals_unsharded_on_8_host_devices():
    stdout = run_on_host_devices(_SHARDED_SCRIPT)
    assert "sharded == unsharded" in stdout
