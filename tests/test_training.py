"""Training: regularizers as loss terms, constraints as projections, the
Sequential model, the jit-compiled train and eval steps, the gradient-check
helper, and data parallelism. Keras 3 is the oracle for the objective.

The 1-D models first; then a Sequential of Conv2D, Activation and
Conv2DTranspose with regularizers, constraints and activity penalties (its
loss terms by hand and against Keras, gradient checks of Conv2D, Conv3D and
Conv2DTranspose, summaries and parameter counts, data parallelism over host
devices); then a 2-D Sequential of Conv2D, DepthwiseConv2D, Activation and
SeparableConv2D with depthwise/pointwise regularizers and constraints, and a
causal 1-D one of the depthwise and separable layers.
"""

import dataclasses
import textwrap

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import (
    assert_close,
    check_keras_weights,
    keras_initialize_with,
    normal,
    random_params,
    run_on_host_devices,
)

L2, L1, L1L2 = cj.regularizers.L2, cj.regularizers.L1, cj.regularizers.L1L2

# Strict promotion, opted out: optax.adam's bias correction raises a Python
# float to an int32 step count (optax/tree_utils/_tree_math.py,
# tree_bias_correction), which strict promotion refuses; optax's code, not
# ours, inside make_train_step's jitted step.
OPTAX_PROMOTES = pytest.mark.loose_promotion


def _mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def _model():
    """A small autoencoder with every kind of penalty and constraint."""
    return cj.Sequential(
        [
            cj.Conv1D(
                6, 5, strides=2, padding="same", activation="relu",
                kernel_regularizer=L2(0.01), bias_regularizer=L1(0.02),
                activity_regularizer=L1(0.003),
                kernel_constraint=cj.constraints.MaxNorm(0.5, axis=(0, 1)),
            ),
            cj.Conv1D(4, 3, padding="causal", activation="tanh",
                      kernel_regularizer=L1L2(0.001, 0.002),
                      activity_regularizer=L2(0.004), bias_constraint="non_neg"),
            cj.Activation("gelu", activity_regularizer=L1(0.001)),
            cj.Conv1DTranspose(2, 5, strides=2, padding="same",
                               kernel_regularizer="l2",
                               kernel_constraint=cj.constraints.UnitNorm(axis=0)),
        ]
    )  # fmt: skip


def _keras_model(model, input_shape, params):
    """The same model in Keras, with our weights."""
    klayers = []
    for layer in model.layers:
        kcls = getattr(keras.layers, type(layer).__name__)
        klayers.append(kcls.from_config(layer.get_config()))
    kmodel = keras.Sequential([keras.Input(input_shape[1:]), *klayers])
    for klayer, p in zip(kmodel.layers, params, strict=True):
        if p:
            klayer.set_weights([np.asarray(p["kernel"]), np.asarray(p["bias"])])
    return kmodel


def test_first_loss_equals_keras_objective():
    """task loss + every weight penalty + every activity penalty (Keras 3
    divides those by the batch size), intermediate layers included."""
    model = _model()
    x, y_true = normal(0, (5, 16, 3)), normal(1, (5, 16, 2))
    params = model.init(jax.random.key(0), x.shape)
    opt = optax.sgd(0.01)
    step = cj.make_train_step(model, opt, _mse)
    _, _, loss = step(params, opt.init(params), x, y_true)

    kmodel = _keras_model(model, x.shape, params)
    y_k = kmodel(x)
    keras_total = float(_mse(y_k, y_true)) + float(sum(kmodel.losses))
    assert len(kmodel.losses) == 7  # 4 weight penalties + 3 activity penalties
    assert_close(loss, keras_total, rtol=1e-5)

    parts = cj.make_eval_step(model, _mse)(params, x, y_true)
    assert_close(parts["loss"], loss, rtol=1e-6)
    assert_close(
        parts["task_loss"] + parts["regularization_loss"] + parts["activity_loss"],
        loss,
        rtol=1e-6,
    )


def test_regularization_loss_matches_keras_per_layer():
    model = _model()
    params = model.init(jax.random.key(1), (2, 16, 3))
    kmodel = _keras_model(model, (2, 16, 3), params)
    expected = 0.0
    for klayer in kmodel.layers:
        for attr, weight in (
            ("kernel_regularizer", "kernel"),
            ("bias_regularizer", "bias"),
        ):
            reg = getattr(klayer, attr, None)
            if reg is not None:
                expected += float(reg(getattr(klayer, weight)))
    assert_close(cj.regularization_loss(model, params), expected, rtol=1e-6)
    # a single layer works too
    layer = model.layers[0]
    expected0 = float(
        keras.regularizers.L2(0.01)(params[0]["kernel"])
        + keras.regularizers.L1(0.02)(params[0]["bias"])
    )
    assert_close(cj.regularization_loss(layer, params[0]), expected0, rtol=1e-6)


def test_apply_constraints_matches_keras_constraints():
    model = _model()
    params = model.init(jax.random.key(2), (2, 16, 3))
    params = jax.tree.map(lambda p: 3.0 * p - 0.1, params)
    projected = cj.apply_constraints(model, params)
    k0 = keras.constraints.MaxNorm(0.5, axis=(0, 1))(params[0]["kernel"])
    assert_close(projected[0]["kernel"], k0, rtol=1e-6)
    assert_close(projected[0]["bias"], params[0]["bias"], rtol=0, atol=0)
    assert_close(projected[1]["bias"], keras.constraints.NonNeg()(params[1]["bias"]))
    assert_close(
        projected[3]["kernel"], keras.constraints.UnitNorm(0)(params[3]["kernel"])
    )
    assert projected[2] == {}


@OPTAX_PROMOTES
def test_constraints_hold_after_every_step_and_loss_falls():
    model = _model()
    rng = np.random.default_rng(0)
    t = np.linspace(0, 8 * np.pi, 16)
    clean = np.sin(t[None, :, None] * rng.uniform(0.5, 1.5, (32, 1, 3)))
    x = jnp.asarray(clean + 0.1 * rng.normal(size=clean.shape), jnp.float32)
    y = jnp.asarray(clean[..., :2], jnp.float32)
    params = model.init(jax.random.key(3), x.shape)
    opt = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adam(optax.cosine_decay_schedule(0.03, 60)),
    )
    opt_state = opt.init(params)
    step = cj.make_train_step(model, opt, _mse)
    evaluate = cj.make_eval_step(model, _mse)
    task_before = float(evaluate(params, x, y)["task_loss"])
    losses = []
    for _ in range(60):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
        norms = jnp.sqrt(jnp.sum(params[0]["kernel"] ** 2, axis=(0, 1)))
        assert float(norms.max()) <= 0.5 + 1e-6
        assert float(params[1]["bias"].min()) >= 0.0
        unit = jnp.sqrt(jnp.sum(params[3]["kernel"] ** 2, axis=0))
        assert_close(unit, jnp.ones_like(unit), rtol=1e-5, atol=1e-5)
    assert losses[-1] < 0.6 * losses[0]
    # the fixed-size penalties of unit-norm kernels stay; the task loss falls
    assert float(evaluate(params, x, y)["task_loss"]) < 0.5 * task_before


@OPTAX_PROMOTES
def test_one_trace_for_many_steps():
    model = _model()
    traced_loss = chex.assert_max_traces(_mse, n=1)  # counts traces of the step
    opt = optax.adam(1e-3)
    step = cj.make_train_step(model, opt, traced_loss)
    x, y = normal(4, (4, 16, 3)), normal(5, (4, 16, 2))
    params = model.init(jax.random.key(4), x.shape)
    opt_state = opt.init(params)
    for i in range(5):
        params, opt_state, _ = step(params, opt_state, x + i, y)


def test_sequential_shapes_counts_and_summary():
    model = _model()
    params = model.init(jax.random.key(5), (None, 16, 3))
    assert [sorted(p) for p in params] == [["bias", "kernel"]] * 2 + [[]] + [
        ["bias", "kernel"]
    ]
    assert params[0]["kernel"].shape == (5, 3, 6)
    assert params[3]["kernel"].shape == (5, 2, 4)
    x = normal(6, (2, 3, 16, 3))  # two batch axes
    y = model.apply(params, x)
    assert y.shape == model.compute_output_shape(x.shape) == (2, 3, 16, 2)
    kmodel = _keras_model(model, (7, 16, 3), params)
    assert model.count_params((None, 16, 3)) == kmodel.count_params()
    assert_close(model.apply(params, x[0]), kmodel(x[0]))
    lines = []
    text = model.summary((None, 16, 3), print_fn=lines.append)
    assert lines == [text]
    assert "conv1d (Conv1D)" in text and "conv1d_1 (Conv1D)" in text
    assert "conv1d_transpose (Conv1DTranspose)" in text
    assert "(None, 8, 6)" in text and "(None, 16, 2)" in text
    assert f"Total params: {kmodel.count_params():,}" in text


def test_nested_sequential_and_activity_losses_reach_the_objective():
    inner = cj.Sequential(
        [cj.Conv1D(3, 3, padding="same", activity_regularizer=L2(0.5))]
    )
    model = cj.Sequential([inner, cj.Activation("relu", activity_regularizer=L1(0.25))])
    x = normal(7, (4, 8, 2))
    params = model.init(jax.random.key(6), x.shape)
    y, activity = cj.apply_with_activity(model, params, x)
    hidden = inner.apply(params[0], x)
    expected = (
        0.5 * jnp.sum(hidden**2) / 4 + 0.25 * jnp.sum(jnp.abs(jax.nn.relu(hidden))) / 4
    )
    assert_close(activity, expected, rtol=1e-6)
    assert_close(y, jax.nn.relu(hidden))


@OPTAX_PROMOTES
def test_jitted_and_eager_steps_agree():
    model = _model()
    x, y = normal(8, (4, 16, 3)), normal(9, (4, 16, 2))
    params = model.init(jax.random.key(7), x.shape)
    opt = optax.adam(1e-2)
    step = cj.make_train_step(model, opt, _mse)
    with jax.disable_jit():
        eager = step(params, opt.init(params), x, y)
    jitted = step(params, opt.init(params), x, y)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-5, atol=1e-6)


# ---- bad input -------------------------------------------------------------


def test_non_scalar_loss_is_refused():
    model = cj.Sequential([cj.Conv1D(2, 3)])
    params = model.init(jax.random.key(0), (2, 8, 1))
    opt = optax.sgd(0.1)
    step = cj.make_train_step(model, opt, lambda p, t: (p - t) ** 2)
    with pytest.raises(
        ValueError, match=r"loss_fn must return a scalar; .* shape \(2, 6, 2\)"
    ):
        step(params, opt.init(params), jnp.ones((2, 8, 1)), jnp.ones((2, 6, 2)))


def test_params_that_do_not_match_the_model():
    model = cj.Sequential([cj.Conv1D(2, 3), cj.Activation("relu")])
    params = model.init(jax.random.key(0), (2, 8, 1))
    opt = optax.sgd(0.1)
    step = cj.make_train_step(model, opt, _mse)
    x, y = jnp.ones((2, 8, 1)), jnp.ones((2, 6, 2))
    with pytest.raises(
        ValueError, match=r"one entry per sub-layer \(2\); received a list of length 1"
    ):
        step(params[:1], opt.init(params[:1]), x, y)
    bad = [{"kernel": jnp.ones((3, 4, 2)), "bias": jnp.ones(2)}, {}]
    with pytest.raises(
        ValueError, match=r"params\['kernel'\] of shape \(3, 4, 2\) does not fit"
    ):
        step(bad, opt.init(bad), x, y)
    with pytest.raises(ValueError, match="has no params"):
        model.apply([params[0], {"w": jnp.ones(1)}], x)


def test_constraint_that_changes_a_shape():
    layer = cj.Conv1D(2, 3, kernel_constraint=lambda w: w[0])
    params = layer.init(jax.random.key(0), (2, 8, 1))
    with pytest.raises(
        ValueError, match=r"kernel_constraint of Conv1D.*\(3, 1, 2\).*\(1, 2\)"
    ):
        cj.apply_constraints(layer, params)


def test_regularizer_returning_a_non_scalar():
    layer = cj.Conv1D(2, 3, kernel_regularizer=lambda w: w**2)
    params = layer.init(jax.random.key(0), (2, 8, 1))
    with pytest.raises(
        ValueError, match=r"kernel_regularizer of Conv1D must return a scalar"
    ):
        cj.regularization_loss(layer, params)
    act = cj.Sequential([cj.Activation("relu", activity_regularizer=lambda y: y)])
    with pytest.raises(
        ValueError, match="activity_regularizer of Activation must return a scalar"
    ):
        cj.apply_with_activity(act, [{}], jnp.ones((2, 4, 1)))


def test_unknown_names_and_bad_arguments():
    with pytest.raises(ValueError, match="`kernel_regularizer`: 'l5'"):
        cj.Conv1D(2, 3, kernel_regularizer="l5")
    with pytest.raises(ValueError, match="`kernel_constraint`: 'max'"):
        cj.Conv1DTranspose(2, 3, kernel_constraint="max")
    with pytest.raises(
        TypeError, match=r"`layers\[1\]` of Sequential .* is not a layer"
    ):
        cj.Sequential([cj.Conv1D(2, 3), "relu"])
    with pytest.raises(
        TypeError, match="`optimizer` must be an optax GradientTransformation"
    ):
        cj.make_train_step(cj.Sequential([]), object(), _mse)
    with pytest.raises(ValueError, match="must not be None"):
        cj.Activation(None)


# ---- gradient checks -------------------------------------------------------


def test_check_gradients_passes_on_a_model():
    model = _model()
    x = normal(10, (2, 16, 3))
    params = model.init(jax.random.key(8), x.shape)
    report = cj.check_gradients(model, params, x)
    assert report.ok and report.dtype == "float64"
    assert [name for name, _, _ in report.rows][:3] == [
        "x",
        "[0]['bias']",
        "[0]['kernel']",
    ]
    assert "all passed" in str(report)


def test_check_gradients_reports_a_wrong_derivative():
    @jax.custom_vjp
    def bad_square(x):
        return x**2

    bad_square.defvjp(lambda x: (x**2, x), lambda x, g: (3.0 * x * g,))  # should be 2x
    layer = cj.Sequential([cj.Conv1D(2, 3), cj.Activation(bad_square)])
    params = layer.init(jax.random.key(0), (1, 6, 1))
    report = cj.check_gradients(
        layer,
        params,
        normal(0, (1, 6, 1)),
        modes=("rev",),
        order=1,
        raise_on_failure=False,
    )
    assert not report.ok
    assert "FAIL" in str(report) and "x" in str(report)
    with pytest.raises(AssertionError, match="FAILED"):
        cj.check_gradients(layer, params, normal(0, (1, 6, 1)), modes=("rev",), order=1)


# ---- data parallelism ------------------------------------------------------

_SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    import conv1djax as cj
    assert jax.device_count() == 8, jax.devices()
    model = cj.Sequential([
        cj.Conv1D(8, 5, strides=2, padding="same", activation="relu",
                  kernel_regularizer=cj.regularizers.L2(1e-3),
                  activity_regularizer=cj.regularizers.L1(1e-3),
                  kernel_constraint=cj.constraints.MaxNorm(1.0)),
        cj.Conv1DTranspose(2, 5, strides=2, padding="same"),
    ])
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 32, 2)), jnp.float32)
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
    sh_params, sh_losses = run(cj.parallel.replicate(params, mesh),
                               cj.parallel.shard_batch(x, mesh))
    assert len(sh_params[0]["kernel"].sharding.device_set) == 8
    np.testing.assert_allclose(np.array(sh_losses), np.array(ref_losses), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(sh_params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    print("sharded == unsharded")
    """
)


def test_sharded_step_equals_unsharded_on_8_host_devices():
    stdout = run_on_host_devices(_SHARDED_SCRIPT)
    assert "sharded == unsharded" in stdout


def test_shard_batch_checks_divisibility():
    class TwoDeviceMesh:
        shape = {"data": 2}

    with pytest.raises(
        ValueError, match=r"batch axis \(=3\) must be divisible .* \(=2\)"
    ):
        cj.parallel.shard_batch(jnp.ones((3, 4, 1)), TwoDeviceMesh())
    mesh = cj.parallel.data_mesh(jax.devices()[:1])
    assert cj.parallel.shard_batch(jnp.ones((3, 4, 1)), mesh).shape == (3, 4, 1)


# ---- 2-D and 3-D layers in models ------------------------------------------------

MAX_NORM = 0.75


def _model_nd():
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


def _data_nd(n=32, seed=0):
    """Noisy 2-D sinusoids (input) and the clean ones (target)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 8)
    fy, fx = rng.uniform(0.5, 1.5, (2, n, 1, 1, 2))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 2))
    clean = np.sin(t[None, :, None, None] * fy + t[None, None, :, None] * fx + phase)
    noisy = clean + 0.2 * rng.normal(size=clean.shape)
    return jnp.asarray(noisy, jnp.float32), jnp.asarray(clean, jnp.float32)


def _check_constraints_nd(params):
    norms = jnp.sqrt(jnp.sum(params[0]["kernel"] ** 2, axis=(0, 1, 2)))
    assert float(norms.max()) <= MAX_NORM + 1e-6
    assert float(params[2]["bias"].min()) >= 0.0


@OPTAX_PROMOTES
def test_training_reduces_the_loss_and_keeps_the_constraints():
    model = _model_nd()
    x, y = _data_nd()
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
        _check_constraints_nd(params)
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
    model = _model_nd()
    layers = [
        dataclasses.replace(layer, impl="reference")
        if hasattr(layer, "impl")
        else layer
        for layer in model.layers
    ]
    return cj.Sequential(layers).apply(params, x)


def test_regularization_loss_by_hand():
    model = _model_nd()
    x, y = _data_nd(4, seed=1)
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
    model = _model_nd()
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
    model = _model_nd()
    x, y = _data_nd(4, seed=2)
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


def _keras_model_nd(model, input_shape, params):
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
    model = _model_nd()
    x, y = _data_nd(4, seed=3)
    params = model.init(jax.random.key(4), x.shape)
    params[0]["bias"] = normal(3, (8,))
    kmodel = _keras_model_nd(model, x.shape, params)
    y_keras = kmodel(x)
    assert_close(model.apply(params, x), y_keras)
    assert len(kmodel.losses) == 5  # 3 weight penalties + 2 activity penalties
    keras_total = float(_mse(y_keras, y)) + float(sum(kmodel.losses))
    opt = optax.sgd(0.0)
    _, _, loss = cj.make_train_step(model, opt, _mse)(params, opt.init(params), x, y)
    assert_close(loss, keras_total, rtol=1e-5)


def test_summary_and_count_params_equal_keras():
    model = _model_nd()
    input_shape = (None, 8, 8, 2)
    params = model.init(jax.random.key(5), input_shape)
    assert [sorted(p) for p in params] == [["bias", "kernel"], [], ["bias", "kernel"]]
    assert params[0]["kernel"].shape == (3, 3, 2, 8)
    assert params[2]["kernel"].shape == (3, 2, 2, 8)
    kmodel = _keras_model_nd(model, input_shape, params)
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
        pytest.param(cj.Conv3D(2, 2, padding="same", dilation_rate=(1, 2, 1),
                               activation="sigmoid"),
                     (1, 3, 3, 3, 1)),
        pytest.param(cj.Conv2DTranspose(2, (3, 2), dilation_rate=(1, 2),
                                        padding="same", activation="tanh"),
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

_SHARDED_ND_SCRIPT = textwrap.dedent(
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
    stdout = run_on_host_devices(_SHARDED_ND_SCRIPT)
    assert "sharded == unsharded" in stdout


# ---- the depthwise and separable layers in models -------------------------------------


def _model_2d():
    """A small 2-D denoiser on an 8 x 8 grid, every weight penalised and two
    constrained: Conv2D to 4 channels, a depthwise convolution to 8, tanh, a
    separable convolution back to 2."""
    return cj.Sequential(
        [
            cj.Conv2D(
                4, 3, padding="same", activation="relu",
                kernel_regularizer=L2(1e-3), bias_regularizer=L1(2e-3),
            ),
            cj.DepthwiseConv2D(
                3, padding="same", depth_multiplier=2,
                depthwise_regularizer=L2(3e-3), bias_regularizer=L2(4e-3),
                depthwise_constraint=cj.constraints.NonNeg(),
            ),
            cj.Activation("tanh"),
            cj.SeparableConv2D(
                2, 3, padding="same",
                depthwise_regularizer=L1(5e-3), pointwise_regularizer=L2(6e-3),
                bias_regularizer=L1(7e-3),
                pointwise_constraint=cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1, 2)),
            ),
        ]
    )  # fmt: skip


def _data_2d(n=32, seed=0):
    """Noisy 2-D sinusoids (input) and the clean ones (target)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 8)
    fy, fx = rng.uniform(0.5, 1.5, (2, n, 1, 1, 2))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 2))
    clean = np.sin(t[None, :, None, None] * fy + t[None, None, :, None] * fx + phase)
    noisy = clean + 0.2 * rng.normal(size=clean.shape)
    return jnp.asarray(noisy, jnp.float32), jnp.asarray(clean, jnp.float32)


def _check_constraints_2d(params):
    assert float(params[1]["kernel"].min()) >= 0.0
    norms = jnp.sqrt(jnp.sum(params[3]["pointwise_kernel"] ** 2, axis=(0, 1, 2)))
    assert float(norms.max()) <= MAX_NORM + 1e-6


@OPTAX_PROMOTES
def test_2d_training_reduces_the_loss_and_keeps_the_constraints():
    model = _model_2d()
    x, y = _data_2d()
    params = model.init(jax.random.key(0), x.shape)
    assert float(params[1]["kernel"].min()) < 0.0  # the constraint has work to do
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    step = cj.make_train_step(model, opt, _mse)
    evaluate = cj.make_eval_step(model, _mse)
    before = evaluate(params, x, y)
    losses = []
    for _ in range(80):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
        _check_constraints_2d(params)
    assert np.all(np.isfinite(losses))
    assert losses[0] == pytest.approx(float(before["loss"]), rel=1e-5)
    assert losses[-1] < 0.4 * losses[0], losses[::10]
    after = evaluate(params, x, y)
    assert float(after["task_loss"]) < 0.3 * float(before["task_loss"])
    assert float(after["regularization_loss"]) > 0.0
    # the non-negativity projection ran: some depthwise weights sit at zero
    assert float(jnp.mean(params[1]["kernel"] == 0.0)) > 0.0


def test_2d_regularization_loss_by_hand_and_against_keras():
    model = _model_2d()
    shape = (2, 8, 8, 2)
    params = model.init(jax.random.key(1), shape)
    for i, name in ((0, "bias"), (1, "bias"), (3, "bias")):
        params[i][name] = normal(i, params[i][name].shape)
    p0, p1, p3 = params[0], params[1], params[3]
    by_layer = [
        1e-3 * jnp.sum(p0["kernel"] ** 2) + 2e-3 * jnp.sum(jnp.abs(p0["bias"])),
        3e-3 * jnp.sum(p1["kernel"] ** 2) + 4e-3 * jnp.sum(p1["bias"] ** 2),
        0.0,
        5e-3 * jnp.sum(jnp.abs(p3["depthwise_kernel"]))
        + 6e-3 * jnp.sum(p3["pointwise_kernel"] ** 2)
        + 7e-3 * jnp.sum(jnp.abs(p3["bias"])),
    ]
    assert_close(cj.regularization_loss(model, params), sum(by_layer), rtol=1e-6)
    for layer, p, expected in zip(model.layers, params, by_layer, strict=True):
        assert_close(cj.regularization_loss(layer, p), expected, rtol=1e-6)
    # a penalty on one weight only: the depthwise layer's kernel, then bias
    only_kernel = cj.DepthwiseConv2D(3, depthwise_regularizer=L1(0.5))
    assert_close(
        cj.regularization_loss(only_kernel, p1), 0.5 * jnp.sum(jnp.abs(p1["kernel"]))
    )
    only_bias = cj.DepthwiseConv2D(3, bias_regularizer=L1(0.5))
    assert_close(
        cj.regularization_loss(only_bias, p1), 0.5 * jnp.sum(jnp.abs(p1["bias"]))
    )
    only_pointwise = cj.SeparableConv2D(2, 3, pointwise_regularizer=L1(0.5))
    assert_close(
        cj.regularization_loss(only_pointwise, p3),
        0.5 * jnp.sum(jnp.abs(p3["pointwise_kernel"])),
    )
    # Keras's layers, from our configs, with our weights
    klayers = [
        getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())
        for layer in model.layers
    ]
    for klayer, p in zip(klayers, params, strict=True):
        keras_initialize_with(klayer, p)
    kmodel = keras.Sequential([keras.Input(shape[1:]), *klayers])
    for klayer, p in zip(kmodel.layers, params, strict=True):
        check_keras_weights(klayer, p)
    keras_total = sum(float(loss) for loss in kmodel.losses)
    assert_close(cj.regularization_loss(model, params), keras_total, rtol=1e-5)
    x = normal(3, shape)
    assert_close(_reference(model).apply(params, x), kmodel(x), rtol=1e-5)
    # parameter counts and the summary, against Keras's
    input_shape = (None, *shape[1:])
    assert model.count_params(input_shape) == kmodel.count_params()
    for layer, klayer, s in zip(
        model.layers, kmodel.layers, model.layer_input_shapes(input_shape), strict=False
    ):
        if hasattr(layer, "count_params"):
            assert layer.count_params(s) == klayer.count_params()
        assert tuple(layer.compute_output_shape(s)) == tuple(klayer.output.shape)
    text = model.summary(input_shape, print_fn=lambda _: None)
    assert "depthwise_conv2d (DepthwiseConv2D)" in text
    assert "separable_conv2d (SeparableConv2D)" in text
    assert f"Total params: {kmodel.count_params():,}" in text


def _reference(model):
    return cj.Sequential(
        [
            dataclasses.replace(layer, impl="reference")
            if hasattr(layer, "impl")
            else layer
            for layer in model.layers
        ]
    )


def test_2d_apply_constraints_by_hand():
    model = _model_2d()
    params = model.init(jax.random.key(2), (2, 8, 8, 2))
    params = jax.tree.map(lambda p: 3.0 * p - 0.1, params)
    projected = cj.apply_constraints(model, params)
    assert_close(projected[0]["kernel"], params[0]["kernel"], rtol=0, atol=0)
    assert_close(
        projected[1]["kernel"], jnp.maximum(params[1]["kernel"], 0.0), rtol=0, atol=0
    )
    assert_close(projected[1]["bias"], params[1]["bias"], rtol=0, atol=0)
    assert projected[2] == {}
    pk = params[3]["pointwise_kernel"]
    norms = jnp.sqrt(jnp.sum(pk**2, axis=(0, 1, 2), keepdims=True))
    assert_close(
        projected[3]["pointwise_kernel"],
        pk * jnp.clip(norms, 0, MAX_NORM) / (1e-7 + norms),
    )
    keras_pk = keras.constraints.MaxNorm(MAX_NORM, axis=(0, 1, 2))(pk)
    assert_close(projected[3]["pointwise_kernel"], keras_pk, rtol=1e-6)
    for name in ("depthwise_kernel", "bias"):
        assert_close(projected[3][name], params[3][name], rtol=0, atol=0)


# (layer, input shape): small, smooth activations so second order is not trivial
# (layer, input shape, order): small, smooth activations so that second order
# is not trivial. check_gradients runs op by op, and each op's derivatives
# compile on their own: the default order 2 for one layer, order 1 for the
# others (test_check_grads_second_order checks order 2, jitted).
GRAD_CHECKS = [
    (cj.DepthwiseConv2D((2, 3), strides=(2, 1), depth_multiplier=2, padding="same",
                        activation="tanh"), (1, 4, 4, 2), 1),
    (cj.DepthwiseConv1D(3, strides=2, dilation_rate=2, padding="causal",
                        depth_multiplier=2, activation="sigmoid"), (2, 7, 2), 2),
    (cj.SeparableConv2D(3, 2, dilation_rate=(1, 2), depth_multiplier=2,
                        data_format="channels_first", activation="tanh"),
     (1, 2, 4, 5), 1),
    (cj.SeparableConv1D(2, 3, padding="causal", depth_multiplier=3,
                        activation="gelu"), (1, 2, 6, 2), 1),
]  # fmt: skip


@pytest.mark.parametrize(
    "layer, shape, order",
    GRAD_CHECKS,
    ids=[type(s).__name__ for s, _, _ in GRAD_CHECKS],
)
def test_check_gradients(layer, shape, order):
    params = random_params(layer, shape, 30)
    x = normal(31, shape)
    kwargs = {} if order == 2 else {"order": order}
    report = cj.check_gradients(layer, params, x, **kwargs)
    assert report.ok, report
    assert report.order == order and report.dtype == "float64"
    assert report.modes == ("fwd", "rev")
    assert [name for name, _, _ in report.rows] == ["x"] + [
        f"['{n}']" for n in sorted(params)
    ]


def _model_1d():
    """A causal 1-D model: a depthwise convolution (lags 0, 2, 4) and a
    separable one (lags 0..2) see lags 0..6."""
    return cj.Sequential(
        [
            cj.DepthwiseConv1D(
                3, padding="causal", dilation_rate=2, depth_multiplier=2,
                depthwise_regularizer=L2(1e-4),
                depthwise_constraint=cj.constraints.MaxNorm(1.5, axis=0),
            ),
            cj.SeparableConv1D(
                1, 3, padding="causal", depth_multiplier=2,
                pointwise_regularizer=L2(1e-4),
                pointwise_constraint=cj.constraints.MaxNorm(2.0, axis=(0, 1)),
            ),
        ]
    )  # fmt: skip


def _data_1d(n=32, steps=24, seed=0):
    """White noise and a causal filter of it: y[t] = 0.6 x[t-1] - 0.4 x[t-5]."""
    x = np.random.default_rng(seed).normal(size=(n, steps, 1))
    y = np.zeros_like(x)
    y[:, 1:] += 0.6 * x[:, :-1]
    y[:, 5:] -= 0.4 * x[:, :-5]
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


@OPTAX_PROMOTES
def test_1d_causal_model_trains_and_stays_causal():
    model = _model_1d()
    x, y = _data_1d()
    params = model.init(jax.random.key(3), x.shape)
    opt = optax.adam(2e-2)
    opt_state = opt.init(params)
    step = cj.make_train_step(model, opt, _mse)
    losses = []
    for _ in range(150):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))
        dk = params[0]["kernel"]
        assert float(jnp.sqrt(jnp.sum(dk**2, axis=0)).max()) <= 1.5 + 1e-6
        pk = params[1]["pointwise_kernel"]
        assert float(jnp.sqrt(jnp.sum(pk**2, axis=(0, 1))).max()) <= 2.0 + 1e-6
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.1 * losses[0], losses[::15]
    # the regularizers are part of the objective
    reg = cj.regularization_loss(model, params)
    assert_close(
        reg,
        1e-4 * jnp.sum(params[0]["kernel"] ** 2)
        + 1e-4 * jnp.sum(params[1]["pointwise_kernel"] ** 2),
        rtol=1e-6,
    )
    # the trained model is causal: output[t] sees input[:t + 1] only
    jac = jax.jacobian(lambda v: model.apply(params, v))(x[:1])[0, :, 0, 0, :, 0]
    jac = np.asarray(jac)
    assert np.all(np.triu(jac, k=1) == 0.0)
    assert np.any(np.diag(jac, k=-6) != 0.0)
    assert np.all(np.tril(jac, k=-7) == 0.0)
