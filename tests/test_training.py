"""Training: regularizers as loss terms, constraints as projections, the
Sequential model, the jit-compiled train and eval steps, the gradient-check
helper, and data parallelism. Keras 3 is the oracle for the objective."""

import textwrap

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import assert_close, normal, run_on_host_devices

L2, L1, L1L2 = cj.regularizers.L2, cj.regularizers.L1, cj.regularizers.L1L2


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
