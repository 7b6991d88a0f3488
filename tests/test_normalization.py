"""BatchNormalization, LayerNormalization and GroupNormalization against
Keras 3 (its JAX backend, ``stateless_call``): a seeded sweep over axis,
center, scale, rms_scaling, groups, input ranks and the mixed_bfloat16 policy,
comparing inference and training-mode values, VJPs (w.r.t. the input and
every trainable weight) and the updated moving statistics, all in one
compiled program; then the train step (loss falls, the moving statistics
move), save/load with the state, Keras weights and configs both ways,
argument errors, streaming, and synchronized statistics on two devices."""

from __future__ import annotations

import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import (
    FAST_COMPILE,
    assert_close,
    keras_promotion,
    normal,
    run_on_host_devices,
)

# (class, arguments, input rank): every axis form, group count and rank
# once; center, scale, epsilon, momentum and the sizes drawn per seed; the
# last of each class under mixed_bfloat16
_CASES = [
    (cj.BatchNormalization, {"axis": -1}, 3),
    (cj.BatchNormalization, {"axis": 1}, 4),  # channels first
    (cj.BatchNormalization, {"axis": -3}, 5),
    (cj.BatchNormalization, {"axis": 1, "dtype": "mixed_bfloat16"}, 2),
    (cj.BatchNormalization, {"renorm": True, "renorm_momentum": 0.5}, 3),
    (cj.BatchNormalization, {"axis": 1, "renorm": True, "renorm_clipping": {
        "rmax": 1.2, "rmin": 0.9, "dmax": 0.1}}, 3),
    (cj.LayerNormalization, {"axis": -1}, 3),
    (cj.LayerNormalization, {"axis": (1, 2)}, 3),
    (cj.LayerNormalization, {"axis": (-3, -1), "rms_scaling": True}, 4),
    (cj.LayerNormalization, {"axis": 1, "rms_scaling": True,
                             "dtype": "mixed_bfloat16"}, 3),
    (cj.GroupNormalization, {"groups": 2, "axis": -1}, 3),
    (cj.GroupNormalization, {"groups": -1, "axis": 1}, 4),  # instance norm
    (cj.GroupNormalization, {"groups": 1, "axis": -2}, 5),
    (cj.GroupNormalization, {"groups": 3, "axis": 2, "dtype": "mixed_bfloat16"}, 4),
]  # fmt: skip


def _case(seed):
    """``(spec, input shape)`` of sweep case ``seed``."""
    cls, kwargs, rank = _CASES[seed]
    r = np.random.default_rng(100 + seed)
    kwargs = {"center": bool(r.integers(2)), "scale": bool(r.integers(2)),
              "epsilon": float(r.choice([1e-3, 1e-5, 0.1])), **kwargs}  # fmt: skip
    if cls is cj.BatchNormalization:
        kwargs["momentum"] = float(r.choice([0.99, 0.5, 0.9]))
    shape = [int(d) for d in r.integers(2, 5, rank)]
    if cls is cj.GroupNormalization:
        groups = kwargs["groups"]
        shape[kwargs["axis"]] = (groups if groups > 0 else 3) * int(r.integers(1, 3))
    return cls(**kwargs), tuple(shape)


def _params(spec, shape, seed):
    shapes = spec.param_shapes(shape)
    params = {n: normal(seed + i, s) for i, (n, s) in enumerate(shapes.items())}
    for n in ("moving_variance", "moving_stddev", "renorm_stddev"):
        if n in params:
            params[n] = jnp.abs(params[n]) + 0.5
    return params


def _keras(spec, shape):
    import keras

    with warnings.catch_warnings(), keras_promotion():
        warnings.filterwarnings("ignore", "You passed `rms_scaling=True`")
        layer = getattr(keras.layers, type(spec).__name__).from_config(
            spec.get_config()
        )
        layer.build(shape)
    return layer


def _names(variables):
    return [v.path.split("/")[-1] for v in variables]


def test_sweep_against_keras():
    cases = [_case(seed) for seed in range(len(_CASES))]
    pairs, args, cts = [], [], []
    for seed, (spec, shape) in enumerate(cases):
        klayer = _keras(spec, shape)
        params = _params(spec, shape, seed)
        trainable = _names(klayer.trainable_variables)
        state = _names(klayer.non_trainable_variables)
        assert sorted(trainable + state) == sorted(params)
        assert list(spec.weight_names()) == _names(klayer.weights)
        for training in (False, True) if state else (False,):

            def ours(x, ws, spec=spec, state=state, params=params, training=training):
                full = {**{n: params[n] for n in state}, **ws}
                if training:
                    return spec.apply_training(full, x, key=None)
                return spec.apply(full, x), {}

            def theirs(x, ws, klayer=klayer, trainable=trainable, state=state,
                       params=params, training=training, spec=spec):  # fmt: skip
                with keras_promotion(), warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "You passed `rms_scaling=True`")
                    flag = {"training": training} if state else {}
                    if spec.dtype is not None and type(spec) is cj.BatchNormalization:
                        x = spec.cast_input(x)  # Keras's __call__ autocasts it
                    y, new = klayer.stateless_call(
                        [ws[n] for n in trainable], [params[n] for n in state], x,
                        **flag,
                    )  # fmt: skip
                return y, dict(zip(state, new, strict=True)) if training else {}

            pairs.append((ours, theirs, spec))
            args.append((normal(50 + seed, shape) * 3 + 1,
                         {n: params[n] for n in trainable}))  # fmt: skip
            cts.append(normal(90 + seed, shape))

    def run(args, cts):
        results = []
        for (ours, theirs, _), (x, ws), ct in zip(pairs, args, cts, strict=True):
            for fn in (ours, theirs):
                y, vjp, new = jax.vjp(fn, x, ws, has_aux=True)
                results.append((y, vjp(ct.astype(y.dtype)), new))
        return results

    results = jax.jit(run, compiler_options=FAST_COMPILE)(args, cts)
    for i, (_, _, spec) in enumerate(pairs):
        (y, grads, new), (y_k, grads_k, new_k) = results[2 * i], results[2 * i + 1]
        bf16 = spec.dtype == "mixed_bfloat16"
        tol = {"rtol": 2e-2, "atol": 2e-2} if bf16 else {}
        where = f"case {i}: {spec!r}"
        assert y.dtype == y_k.dtype == (jnp.bfloat16 if bf16 else jnp.float32), where
        assert_close(y, y_k, err_msg=where, **tol)
        assert_close(grads[0], grads_k[0], err_msg=f"VJP x, {where}", **tol)
        for n in grads[1]:
            assert_close(grads[1][n], grads_k[1][n], err_msg=f"VJP {n}, {where}", **tol)
        assert sorted(new) == sorted(new_k), where
        for n in new:  # the updated moving statistics
            assert new[n].dtype == jnp.float32
            assert_close(new[n], new_k[n], err_msg=f"{n}, {where}")


def test_train_step_loss_falls_and_moving_statistics_move():
    model = cj.Sequential([
        cj.Conv1D(4, 3, padding="same"),
        cj.BatchNormalization(),
        cj.Activation("relu"),
        cj.Residual(cj.Sequential([cj.BatchNormalization(momentum=0.5)])),
        cj.Parallel([cj.LayerNormalization(), cj.GroupNormalization(2)],
                    merge="concat"),
        cj.Conv1D(1, 3, padding="same"),
    ])  # fmt: skip
    params = jax.jit(model.init, static_argnums=1)(jax.random.key(0), (None, 16, 2))
    x = normal(0, (8, 16, 2)) * 2 + 3
    target = jnp.sin(x[..., :1])
    opt = optax.sgd(0.05, momentum=0.9)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    opt_state = opt.init(cj.trainable_params(model, params))
    trained, losses = params, []
    for _ in range(8):
        trained, opt_state, loss = step(trained, opt_state, x, target)
        losses.append(float(loss))
        if len(losses) == 1:  # the first step wrote back the batch's statistics
            h = np.asarray(model.layers[0].apply(params[0], x), np.float64)
            np.testing.assert_allclose(
                trained[1]["moving_mean"], 0.01 * h.mean((0, 1)), rtol=1e-5
            )
            np.testing.assert_allclose(trained[1]["moving_variance"],
                                       0.99 + 0.01 * h.var((0, 1)), rtol=1e-5)  # fmt: skip
    assert losses[-1] < 0.5 * losses[0], losses
    inner, old = trained[3]["inner"][0], params[3]["inner"][0]
    for n in ("moving_mean", "moving_variance"):  # moved, not by the optimizer
        assert np.all(np.abs(inner[n] - old[n]) > 1e-4)
    assert cj.summary(model, (None, 16, 2), print_fn=lambda s: None).endswith(
        "Non-trainable params: 16"
    )


def test_save_load_keras_weights_and_configs_both_ways(tmp_path):
    import keras

    layers = [cj.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False,
                                    gamma_regularizer="l2", name="bn"),
              cj.BatchNormalization(renorm=True, renorm_clipping={"dmax": 2.0}),
              cj.LayerNormalization(axis=(1, 2), rms_scaling=False, scale=False,
                                    beta_constraint="non_neg"),
              cj.GroupNormalization(groups=2, axis=-1, epsilon=0.01)]  # fmt: skip
    for layer in layers:  # configs: ours -> Keras -> ours
        k_layer = getattr(keras.layers, type(layer).__name__).from_config(
            layer.get_config()
        )
        assert type(layer).from_config(k_layer.get_config()) == layer
    assert (
        cj.BatchNormalization.from_config(
            keras.layers.BatchNormalization().get_config()
        )
        == cj.BatchNormalization()
    )
    # a Keras model's config and weights (state included, get_weights order)
    k_model = keras.Sequential([keras.Input((6, 4)),
                                keras.layers.BatchNormalization(momentum=0.9),
                                keras.layers.LayerNormalization(axis=(1, 2)),
                                keras.layers.GroupNormalization(groups=2)])  # fmt: skip
    rng = np.random.default_rng(0)
    k_model.set_weights(
        [rng.uniform(0.5, 2, w.shape).astype("float32") for w in k_model.weights]
    )
    k_weights = [np.asarray(w.value) for w in k_model.weights]  # get_weights' order
    model, params = cj.interop.from_keras_config(k_model.get_config(), k_weights)
    assert model.layers[0] == cj.BatchNormalization(momentum=0.9)
    np.testing.assert_array_equal(params[0]["moving_variance"], k_weights[3])
    x = normal(3, (2, 6, 4))
    np.testing.assert_allclose(model.apply(params, x), k_model(x), rtol=1e-5,
                               atol=1e-5)  # fmt: skip
    config, weights = cj.interop.to_keras_config(model, params, (None, 6, 4))
    k_back = keras.Sequential.from_config(config)
    k_back.set_weights(weights)
    for a, b in zip(k_back.weights, k_weights, strict=True):
        np.testing.assert_array_equal(a.value, b)
    # cj.save / cj.load carry the state
    trained = [{**params[0], "moving_mean": params[0]["moving_mean"] + 1}, *params[1:]]
    for suffix in (".safetensors", ".npz"):
        cj.save(tmp_path / f"m{suffix}", model, trained)
        loaded, loaded_params = cj.load(tmp_path / f"m{suffix}")
        assert loaded == model
        for a, b in zip(jax.tree.leaves(loaded_params), jax.tree.leaves(trained),
                        strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)
    assert cj.summary(model, (None, 6, 4), print_fn=lambda s: None).endswith(
        "Trainable params: 64\nNon-trainable params: 8"
    )
    assert [layer.count_params((None, 6, 4)) for layer in model.layers] == [16, 48, 8]
    # gamma's regularizer counts, the state's nothing; beta's constraint projects
    bn, ln = layers[0], layers[2]
    own = {**bn.init(0, (None, 4)), "gamma": jnp.full(4, 2.0)}
    np.testing.assert_allclose(cj.regularization_loss(bn, own), 0.01 * 4 * 4.0)
    projected = cj.apply_constraints(ln, {"beta": -jnp.ones((6, 4))})
    np.testing.assert_array_equal(projected["beta"], 0.0)
    # trainable=False: training runs as inference and updates nothing (Keras's)
    frozen = cj.BatchNormalization(center=False, trainable=False)
    y, new = cj.apply_training(frozen, own, x)
    np.testing.assert_array_equal(y, frozen.apply(own, x))
    for n in own:
        np.testing.assert_array_equal(new[n], own[n])
    # ... and so below a frozen composite (Keras's `model.trainable = False`).
    inner = cj.BatchNormalization(center=False)
    model = cj.Sequential([cj.Residual(inner)], trainable=False)
    params = [{"inner": own}]
    y, new = cj.apply_training(model, params, x)
    np.testing.assert_array_equal(y, model.apply(params, x))
    jax.tree.map(np.testing.assert_array_equal, new, params)


@pytest.mark.parametrize(
    "make, error, match",
    [(lambda: cj.BatchNormalization(momentum="0.9"), TypeError,
      r"`momentum` of BatchNormalization must be a float; received momentum='0.9'"),
     (lambda: cj.BatchNormalization(axis=1.0), TypeError, r"`axis` of Batch"),
     (lambda: cj.BatchNormalization(epsilon=-1.0), ValueError,
      r"`epsilon` of BatchNormalization must be a finite float >= 0.0; "
      r"received epsilon=-1.0"),
     (lambda: cj.BatchNormalization(renorm=True, renorm_clipping={"max": 1}),
      ValueError, r"`renorm_clipping` of BatchNormalization takes the keys "
      r"\['rmax', 'rmin', 'dmax'\]; received renorm_clipping=\{'max': 1\}"),
     (lambda: cj.BatchNormalization(renorm_clipping={"rmax": 1, "rmin": 2}),
      ValueError, r"rmax >= rmin; received rmax=1.0, rmin=2.0"),
     (lambda: cj.BatchNormalization(center=1), TypeError, r"`center` must be a bool"),
     (lambda: cj.LayerNormalization(axis=(-1, 1)), ValueError,
      r"all non-negative or all negative"),
     (lambda: cj.LayerNormalization(axis=(1, 1)), ValueError, r"distinct axes"),
     (lambda: cj.LayerNormalization(axis="channels"), TypeError, r"`axis` of Layer"),
     (lambda: cj.GroupNormalization(groups=0), ValueError,
      r"`groups` of GroupNormalization must be a positive int, or -1"),
     (lambda: cj.BatchNormalization(axis=3).init(0, (None, 4, 2)), ValueError,
      r"`axis` of BatchNormalization \(=3\) is out of range for an input of 3 axes"),
     (lambda: cj.LayerNormalization(axis=1).init(0, (None, None, 2)), ValueError,
      r"needs the size of axes \(1,\)"),
     (lambda: cj.GroupNormalization(groups=4).init(0, (None, 6, 6)), ValueError,
      r"GroupNormalization\(groups=4\) needs a channel count divisible by groups; "
      r"received 6 channels"),
     (lambda: cj.GroupNormalization(2, axis=0).init(0, (4, 6, 6)), ValueError,
      r"is the batch axis"),
     (lambda: cj.BatchNormalization().apply(
         {"gamma": jnp.ones(3), "beta": jnp.ones(3), "moving_mean": jnp.ones(3),
          "moving_variance": jnp.ones(3)}, jnp.ones((2, 5, 4))), ValueError,
      r"params\['gamma'\] of shape \(3,\) does not fit BatchNormalization\(axis=-1\) "
      r"on an input of shape \(2, 5, 4\): expected a gamma of shape \(4,\)"),
     (lambda: cj.LayerNormalization(center=False).apply(
         {"gamma": jnp.ones(4), "beta": jnp.ones(4)}, jnp.ones((2, 4))), ValueError,
      r"params of LayerNormalization must be a dict with exactly the keys \['gamma'\]"),
     (lambda: cj.BatchNormalization().apply({}, "x"), TypeError, r"array `x`")],
)  # fmt: skip
def test_bad_arguments_are_refused_clearly(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_streams_where_the_statistics_are_per_step():
    model = cj.Sequential([cj.BatchNormalization(), cj.LayerNormalization()])
    params = model.init(0, (None, 16, 2))
    params[0]["moving_mean"] = params[0]["moving_mean"] + 0.5
    cj.streaming.check_stream(model, params, normal(4, (2, 16, 2)), chunkings=[[16]])
    first = cj.Sequential([cj.MaxPooling1D(1, data_format="channels_first"),
                           cj.BatchNormalization(axis=1)])  # fmt: skip
    cj.stream_init(first, first.init(0, (None, 4, 16)), (2,), channels=4)
    for layer, match in (
        (cj.BatchNormalization(axis=1), r"BatchNormalization cannot stream: axis=1 is "
         r"the stream's time axis \(axis -2 of 3\)"),
        (cj.LayerNormalization(axis=(-2, -1)), r"LayerNormalization cannot stream"),
        (cj.GroupNormalization(2), r"GroupNormalization cannot stream: its "
         r"statistics span every step"),
    ):  # fmt: skip
        bad = cj.Sequential([layer])
        with pytest.raises(TypeError, match=match):
            cj.stream_init(bad, bad.init(0, (None, 4, 4)), (2,), channels=4)


_SYNC_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import PartitionSpec as P
    import conv1djax as cj
    mesh = cj.parallel.data_mesh()
    x = np.random.default_rng(0).normal(size=(8, 5, 3)) + np.arange(8)[:, None, None]
    x = jnp.asarray(x, jnp.float32)
    params = cj.BatchNormalization().init(0, x.shape)

    def train(layer, x):
        return layer.apply_training(params, x, key=None)

    def per_device(layer):  # the step run on each device's shard
        return jax.shard_map(lambda x: train(layer, x), mesh=mesh, in_specs=P("data"),
                             out_specs=(P("data"), P("data")))

    @jax.jit
    def run(x):
        return (train(cj.BatchNormalization(), x),
                train(cj.BatchNormalization(), x[4:]),
                per_device(cj.BatchNormalization(synchronized=True))(x),
                per_device(cj.BatchNormalization())(x))

    (whole_y, whole), (_, half), (y, synced), (_, local) = run(
        cj.parallel.shard_batch(x, mesh))
    np.testing.assert_allclose(y, whole_y, rtol=1e-5, atol=1e-5)
    for k in whole:  # each device's update, stacked on the data axis
        synced_k, local_k = synced[k].reshape(2, -1), local[k].reshape(2, -1)
        for d in range(2):
            np.testing.assert_allclose(synced_k[d], whole[k], rtol=1e-5)
        np.testing.assert_allclose(local_k[1], half[k], rtol=1e-5)
        assert not np.allclose(local_k[1], whole[k], rtol=1e-3)
    print("synchronized ok")
    """
)


def test_synchronized_statistics_over_two_devices():
    assert "synchronized ok" in run_on_host_devices(_SYNC_SCRIPT, count=2)
