"""Dense, Flatten, Reshape, ``trainable`` and LoRA, against Keras 3 on its
JAX backend: values and VJPs in the shared harness (``compare_with_keras``,
``values_and_vjps``), configs both ways, weights both ways, the train step
(a frozen layer, LoRA's frozen kernel), ``enable_lora`` / ``merge_lora``,
and the errors.

Cases read from Keras's own tests: ``core/dense_test.py`` (``test_enable_lora``,
``test_enable_lora_with_alpha``, ``test_lora_rank_argument``,
``test_enable_lora_with_kernel_constraint``, ``..._when_already_enabled``),
``convolutional/conv_test.py`` (``test_enable_lora``),
``reshaping/flatten_test.py`` and ``reshaping/reshape_test.py``.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import (
    assert_close,
    compare_with_keras,
    keras_layer,
    keras_promotion,
    normal,
    values_and_vjps,
)


def _params(spec, shape, seed):
    """Params of ``spec`` from NumPy (a nonzero ``lora_kernel_b`` too, as if
    trained): no random program compiled."""
    return {
        name: normal(seed + i, s)
        for i, (name, s) in enumerate(spec.param_shapes(shape).items())
    }


# ---- Dense against Keras -----------------------------------------------------------

DENSE_ACTIVATIONS = [None, "relu", "tanh", "softmax", "gelu", "sigmoid", "glu"]


def _dense_case(seed):
    """A seeded Dense config and its input: rank 2 to 4, one or two batch
    axes (Keras takes one: the harness flattens them for it)."""
    r = np.random.default_rng(seed)
    config = {
        "units": int(r.integers(1, 5)) * 2,  # even, so "glu" halves it
        "activation": DENSE_ACTIVATIONS[seed % len(DENSE_ACTIVATIONS)],
        "use_bias": bool(r.integers(2)),
    }
    batch = (2,) if seed % 3 else (2, 3)
    inner = tuple(int(n) for n in r.integers(1, 4, size=int(r.integers(0, 3))))
    return config, batch, (*batch, *inner, int(r.integers(1, 6)))


def test_dense_against_keras():
    for seed in range(8):
        config, batch, shape = _dense_case(seed)
        spec = cj.Dense(**config)
        params = _params(spec, shape, seed)
        kshape = (None, *shape[len(batch) :])
        klayer = keras_layer(cj.Dense, config, kshape, params)
        y = compare_with_keras(spec, klayer, params, normal(seed, shape), batch)
        assert y.shape == spec.compute_output_shape(shape), config
        assert spec.count_params(shape) == klayer.count_params(), config


def test_dense_mixed_precision_as_keras():
    spec = cj.Dense(4, activation="relu", dtype="mixed_bfloat16")
    params = _params(spec, (None, 3), 0)
    klayer = keras_layer(cj.Dense, {"units": 4, "activation": "relu",
                                    "dtype": "mixed_bfloat16"}, (None, 3), params)  # fmt: skip
    x = normal(0, (2, 3))
    y = spec.apply(params, x)
    with keras_promotion():
        y_k = klayer(np.asarray(x))
    assert y.dtype == jnp.bfloat16 and str(y_k.dtype) == "bfloat16"
    assert_close(y.astype(jnp.float32), np.asarray(y_k, np.float32))


def test_dense_config_both_ways():
    configs = [
        {"units": 3},
        {"units": 5, "activation": "relu", "use_bias": False, "trainable": False},
        {"units": 2, "kernel_regularizer": "l2", "bias_constraint": "non_neg",
         "kernel_initializer": "he_normal"},
        {"units": 4, "lora_rank": 2},
        {"units": 4, "lora_rank": 2, "lora_alpha": 2},
    ]  # fmt: skip
    for kwargs in configs:
        spec = cj.Dense(**kwargs)
        kconfig = keras.layers.Dense(**kwargs).get_config()
        assert cj.Dense.from_config(kconfig) == spec, kwargs
        ours = json.loads(json.dumps(spec.get_config()))
        # Keras's Dense writes activity_regularizer only when set
        # ... and ours writes trainable only when False
        assert set(ours) - {"activity_regularizer", "trainable"} == (
            set(kconfig)
            - {"dtype", "quantization_config", "activity_regularizer", "trainable"}
        ), kwargs
        assert ours.get("trainable", True) is kwargs.get("trainable", True)
        rebuilt = keras.layers.Dense.from_config(ours)
        assert rebuilt.get_config() == {**kconfig, "name": rebuilt.name}, kwargs
    with pytest.raises(ValueError, match="not quantized"):
        cj.Dense.from_config({"units": 2, "quantization_config": {"mode": "int8"}})


# ---- Flatten, Reshape ---------------------------------------------------------------


def test_flatten_against_keras():
    for shape, data_format in [
        ((2, 3, 4), "channels_last"), ((2, 3, 4), "channels_first"),
        ((2, 3, 4, 5), "channels_first"), ((2, 3, 4, 2, 2), "channels_first"),
        ((3,), "channels_last"), ((2, 5), "channels_first"),
    ]:  # fmt: skip
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        spec = cj.Flatten(data_format=data_format)
        klayer = keras.layers.Flatten(data_format=data_format)
        y = spec.apply({}, x)
        np.testing.assert_array_equal(y, np.asarray(klayer(x)))
        assert spec.compute_output_shape(shape) == y.shape
        none_shape = (None, *shape[1:2], None, *shape[3:])
        assert spec.compute_output_shape(none_shape[: len(shape)]) == (
            klayer.compute_output_shape(none_shape[: len(shape)])
        )
        assert cj.Flatten.from_config(klayer.get_config()) == spec
        assert keras.layers.Flatten.from_config(spec.get_config()).data_format == (
            data_format
        )


def test_reshape_against_keras():
    for shape, target in [
        ((2, 12), (3, 4)), ((2, 12), (-1, 2, 2)), ((2, 3, 4), (-1,)),
        ((2, 3, 4), (2, -1, 3)), ((2, 1), ()), ((2, 6, 2), (4, 3)),
    ]:  # fmt: skip
        x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        spec = cj.Reshape(target)
        klayer = keras.layers.Reshape(target)
        np.testing.assert_array_equal(spec.apply({}, x), np.asarray(klayer(x)))
        for probe in (shape, (None, *shape[1:]), (None, None, *shape[2:])):
            assert spec.compute_output_shape(probe) == klayer.compute_output_shape(
                probe
            ), (probe, target)
        assert cj.Reshape.from_config(klayer.get_config()) == spec
        kconfig = json.loads(json.dumps(spec.get_config()))
        assert keras.layers.Reshape.from_config(kconfig).target_shape == target
    assert cj.Reshape([3, 4]) == cj.Reshape((3, 4))


def test_flatten_and_reshape_errors_and_streaming():
    for target, err, match in [
        ((2, -1, -1), ValueError, "one -1 only"),
        ((2, -2), ValueError, "non-negative int, or -1"),
        ((2.0, 3), TypeError, "tuple of ints"),
        ("23", TypeError, "tuple of ints"),
        (3, TypeError, "tuple of ints"),
    ]:
        with pytest.raises(err, match=match):
            cj.Reshape(target)
    with pytest.raises(ValueError, match="total size of the tensor must be unchanged"):
        cj.Reshape((5,)).compute_output_shape((None, 2, 3))
    with pytest.raises(ValueError, match="cannot be divided"):
        cj.Reshape((-1, 4)).apply({}, jnp.ones((2, 6)))
    with pytest.raises(ValueError, match=r"rank >= 1.*input_shape=\(\)"):
        cj.Flatten().compute_output_shape(())
    with pytest.raises(ValueError, match="data_format"):
        cj.Flatten(data_format="channels_middle")
    model = cj.Sequential([cj.Conv1D(2, 3), cj.Flatten()])
    with pytest.raises(TypeError, match="Flatten.*declares no streaming rule"):
        cj.stream_latency(model)


# ---- trainable ------------------------------------------------------------------------


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_trainable_false_freezes_a_layer_in_the_train_step():
    model = cj.Sequential([
        cj.Flatten(), cj.Dense(3, trainable=False, kernel_regularizer="l2"),
        cj.Dense(1),
    ])  # fmt: skip
    params = [{}, _params(model.layers[1], (None, 16), 0),
              _params(model.layers[2], (None, 3), 2)]  # fmt: skip
    assert cj.protocol.trainable_mask(model, params)[1] == {
        "kernel": False, "bias": False}  # fmt: skip
    # a frozen layer's regularizer counts for nothing, as in Keras
    assert float(cj.regularization_loss(model, params)) == 0.0
    opt = optax.adam(0.1)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    x, t = normal(0, (4, 8, 2)), normal(1, (4, 1))
    new, _, _ = step(params, opt.init(cj.trainable_params(model, params)), x, t)
    for name in params[1]:
        np.testing.assert_array_equal(new[1][name], params[1][name])
    assert not np.array_equal(new[2]["kernel"], params[2]["kernel"])
    # Keras's config carries it both ways
    config = cj.Conv1D(3, 3, trainable=False).get_config()
    assert keras.layers.Conv1D.from_config(config).trainable is False
    kconfig = keras.layers.MaxPooling1D(trainable=False).get_config()
    assert cj.MaxPooling1D.from_config(kconfig) == cj.MaxPooling1D(trainable=False)
    with pytest.raises(TypeError, match="`trainable` of Dense must be a bool"):
        cj.Dense(2, trainable="no")


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_a_frozen_composite_freezes_every_layer_in_it():
    # A frozen backbone (Keras's `model.trainable = False`): every layer below
    # it, nested composites included, is left alone, whatever its own flag.
    backbone = cj.Sequential(
        [cj.Conv1D(3, 3, kernel_regularizer="l2"),
         cj.Residual(cj.Conv1D(3, 3, padding="same"))],
        trainable=False,
    )  # fmt: skip
    model = cj.Sequential([backbone, cj.Flatten(), cj.Dense(1)])
    params = model.init(jax.random.key(0), (None, 8, 2))
    mask = cj.protocol.trainable_mask(model, params)
    assert jax.tree.leaves(mask[0]) == [False] * 4 and all(jax.tree.leaves(mask[2]))
    assert float(cj.regularization_loss(model, params)) == 0.0
    opt = optax.adam(0.1)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    x, t = normal(0, (4, 8, 2)), normal(1, (4, 1))
    new, _, _ = step(params, opt.init(cj.trainable_params(model, params)), x, t)
    jax.tree.map(np.testing.assert_array_equal, new[0], params[0])
    assert not np.array_equal(new[2]["kernel"], params[2]["kernel"])
    restored = cj.saving.deserialize(cj.saving.serialize(model))
    assert restored == model and restored.layers[0].trainable is False
    assert backbone != dataclasses.replace(backbone, trainable=True)


# ---- LoRA against Keras -----------------------------------------------------------------


def _lora_against_keras(spec, kcls, kwargs, shape, seed, keras_alpha=None):
    """Our LoRA layer and Keras's, the same weights (through
    ``cj.interop.to_keras``, Keras's get_weights order) with a nonzero
    ``B``: values and the VJPs w.r.t. the input and every weight."""
    params = _params(spec, shape, seed)
    klayer = kcls(**kwargs)
    klayer.build((None, *shape[1:]))
    if keras_alpha is not None:
        klayer.lora_alpha = keras_alpha
    klayer.set_weights(cj.interop.to_keras(spec, params))
    assert [w.path.split("/")[-1] for w in klayer.weights] == list(spec.weight_names())
    trained = [w.path.split("/")[-1] for w in klayer.trainable_variables]
    frozen = [w.path.split("/")[-1] for w in klayer.non_trainable_variables]
    assert frozen == list(spec.non_trainable_weights())
    names = list(spec.weight_names())

    def ours(x, *ws):
        return spec.apply(dict(zip(names, ws, strict=True)), x)

    def theirs(x, *ws):
        w = dict(zip(names, ws, strict=True))
        with keras_promotion():
            y, _ = klayer.stateless_call(
                [w[n] for n in trained], [w[n] for n in frozen], x
            )
        return y

    x = normal(seed, shape)
    args = [x, *(params[n] for n in names)]
    ct = normal(1, jax.eval_shape(ours, *args).shape)
    (y, grads), (y_k, grads_k) = values_and_vjps((ours, theirs), args, ct)
    assert_close(y, y_k)
    for name, g, g_k in zip(["x", *names], grads, grads_k, strict=True):
        assert_close(g, g_k, err_msg=f"VJP w.r.t. {name}")
    return params


def test_lora_against_keras():
    cases = [
        (cj.Dense, {"units": 6}, (2, 3, 5)),
        (cj.Conv1D, {"filters": 4, "kernel_size": 3, "groups": 2}, (2, 7, 4)),
        (cj.Conv2D, {"filters": 3, "kernel_size": 2, "activation": "relu"}, (2, 5, 4, 2)),
    ]  # fmt: skip
    for seed, (cls, kwargs, shape) in enumerate(cases):
        kwargs = {**kwargs, "lora_rank": 2, "lora_alpha": 3.0}
        # Keras 3.15.1's Dense builds with lora_alpha = lora_rank whatever it
        # is given; ours uses the given alpha, as Keras documents (and its
        # convolutions do): set Keras's after the build.
        _lora_against_keras(cls(**kwargs), getattr(keras.layers, cls.__name__),
                            kwargs, shape, seed, keras_alpha=3.0)  # fmt: skip
    # the Keras quirk pinned: tells when Keras changes it
    klayer = keras.layers.Dense(3, lora_rank=2, lora_alpha=8)
    klayer.build((None, 4))
    assert klayer.lora_alpha == 2
    conv = keras.layers.Conv1D(3, 2, lora_rank=2, lora_alpha=8)
    conv.build((None, 5, 4))
    assert conv.lora_alpha == 8


def test_lora_regularizer_penalises_the_lora_weights_as_keras():
    # Keras's test_lora_rank_argument: 2 losses with kernel_regularizer
    spec = cj.Dense(5, kernel_regularizer="l2", lora_rank=2)
    params = _params(spec, (None, 4), 0)
    klayer = keras.layers.Dense(5, kernel_regularizer="l2", lora_rank=2)
    klayer.build((None, 4))
    klayer.set_weights(cj.interop.to_keras(spec, params))
    with keras_promotion():
        klayer(np.ones((1, 4), np.float32))
    assert len(klayer.losses) == 2
    expected = sum(float(loss) for loss in klayer.losses)
    np.testing.assert_allclose(cj.regularization_loss(spec, params), expected, 1e-6)


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_enable_lora_train_and_merge():
    # every kernel family, Keras's and beyond, in one model (one compile)
    model = cj.Sequential([
        cj.Dense(4), cj.Conv1DTranspose(4, 3, strides=2),
        cj.DepthwiseConv1D(3, depth_multiplier=2), cj.SeparableConv1D(4, 3),
    ])  # fmt: skip
    x = normal(0, (2, 6, 3))
    params = model.init(0, x.shape)
    pairs = [cj.enable_lora(layer, p, rank=2, key=i, alpha=4)
             for i, (layer, p) in enumerate(zip(model.layers, params, strict=True))]  # fmt: skip
    lora = cj.Sequential([layer for layer, _ in pairs])
    lora_params = [p for _, p in pairs]
    assert all(p["lora_kernel_a"].dtype == jnp.float32 for p in lora_params)
    # the same draws as init of the LoRA layer with the same key
    fresh = lora.layers[1].init(1, (None, 6, 4))  # Conv1DTranspose's
    for name in ("lora_kernel_a", "lora_kernel_b"):
        np.testing.assert_array_equal(fresh[name], lora_params[1][name])
    run = jax.jit(lambda m, p, x: m.apply(p, x), static_argnums=0)
    # B starts at zeros: the output is unchanged
    assert_close(run(lora, lora_params, x), run(model, params, x))
    # as if trained a little: B nonzero, so one step moves A too
    lora_params = [{**p, "lora_kernel_b": normal(i, p["lora_kernel_b"].shape)}
                   for i, p in enumerate(lora_params)]  # fmt: skip
    opt = optax.adam(0.05)
    step = cj.make_train_step(lora, opt, lambda p, t: jnp.mean((p - t) ** 2))
    t = normal(5, lora.compute_output_shape(x.shape))
    state = opt.init(cj.trainable_params(lora, lora_params))
    new, _, _ = step(lora_params, state, x, t)
    for layer, before, after in zip(lora.layers, lora_params, new, strict=True):
        for name in before:
            same = np.array_equal(after[name], before[name])
            assert same == (name == layer._LORA_KERNEL), (layer, name)
    merged = [
        cj.merge_lora(layer, p) for layer, p in zip(lora.layers, new, strict=True)
    ]
    plain = cj.Sequential([layer for layer, _ in merged])
    assert plain == model
    assert [sorted(p) for _, p in merged] == [sorted(p) for p in params]
    assert_close(run(plain, [p for _, p in merged], x), run(lora, new, x))


def test_lora_shapes_beyond_keras():
    shapes = {
        cj.Conv1DTranspose(6, 3, groups=2, lora_rank=2): ((3, 3, 2), (2, 4)),
        cj.DepthwiseConv2D(3, depth_multiplier=2, lora_rank=2): ((3, 3, 2), (2, 4, 2)),
        cj.SeparableConv1D(5, 3, depth_multiplier=2, lora_rank=2): ((1, 8, 2), (2, 5)),
    }  # fmt: skip
    for layer, (a, b) in shapes.items():
        shape = (None, 6, 4) if layer.rank == 1 else (None, 6, 6, 4)
        params = jax.eval_shape(lambda layer=layer, shape=shape: layer.init(0, shape))
        assert (params["lora_kernel_a"].shape, params["lora_kernel_b"].shape) == (a, b)


def test_lora_streams_saves_and_converts():
    # Dense streams as a pointwise leaf; the transposed layer streams through
    # its forward twin, with LoRA's effective kernel
    model = cj.Sequential([cj.Conv1DTranspose(3, 4, strides=2, lora_rank=1),
                           cj.Dense(2, lora_rank=1)])  # fmt: skip
    params = [_params(model.layers[0], (None, 8, 2), 0),
              _params(model.layers[1], (None, 18, 3), 5)]  # fmt: skip
    x = normal(2, (1, 8, 2))
    y = cj.stream_scan(model, params, x, chunk=3)
    assert_close(y, model.apply(params, x), rtol=1e-5)
    # In a channels-first stream Dense's last axis is time: refused.
    first = cj.Sequential([cj.Conv1D(3, 2, data_format="channels_first"), cj.Dense(2)])
    with pytest.raises(TypeError, match="Dense cannot stream: it maps the last axis"):
        cj.stream_init(first, first.init(0, (None, 2, 8)), (1,), channels=2)
    # cj.save / cj.load
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        cj.save(path, model, params)
        model2, params2 = cj.load(path)
    assert model2 == model
    np.testing.assert_array_equal(
        params2[1]["lora_kernel_b"], params[1]["lora_kernel_b"]
    )
    # a Keras Sequential of the Keras layers with LoRA, both ways
    keras_model = cj.Sequential([cj.Conv1D(4, 3, lora_rank=2, lora_alpha=4),
                                 cj.Flatten(), cj.Dense(2, lora_rank=1)])  # fmt: skip
    kparams = [_params(keras_model.layers[0], (None, 8, 2), 0), {},
               _params(keras_model.layers[2], (None, 24), 3)]  # fmt: skip
    config, weights = cj.interop.to_keras_config(keras_model, kparams, (None, 8, 2))
    kmodel = keras.Sequential.from_config(config)
    kmodel.set_weights(weights)
    assert kmodel.layers[0].lora_enabled and kmodel.layers[0].lora_alpha == 4
    kweights = [np.asarray(v.value) for v in kmodel.weights]  # no NumPy 2 warning
    back, back_params = cj.interop.from_keras_config(kmodel.get_config(), kweights)
    assert back == keras_model
    x = normal(3, (2, 8, 2))
    with keras_promotion():
        assert_close(
            keras_model.apply(back_params, x), np.asarray(kmodel(np.asarray(x)))
        )
    with pytest.raises(TypeError, match="LoRA.*merge it first"):
        cj.interop.to_keras_config(model, params)


def test_lora_errors():
    with pytest.raises(ValueError, match="incompatible with kernel constraints"):
        cj.Dense(2, kernel_constraint="max_norm", lora_rank=2)
    with pytest.raises(ValueError, match="incompatible with kernel constraints"):
        cj.SeparableConv1D(2, 3, pointwise_constraint="non_neg", lora_rank=1)
    with pytest.raises(ValueError, match=r"`lora_rank` must be a positive int.*-1"):
        cj.Conv1D(2, 3, lora_rank=-1)
    with pytest.raises(TypeError, match="`lora_alpha` must be a number"):
        cj.Dense(2, lora_rank=2, lora_alpha="big")
    with pytest.raises(ValueError, match="`lora_alpha` must be a positive"):
        cj.Dense(2, lora_rank=2, lora_alpha=0)
    assert cj.Dense(2, lora_rank=0, lora_alpha=3) == cj.Dense(2)
    layer = cj.Dense(2)
    params = layer.init(0, (None, 3))
    lora, lora_params = cj.enable_lora(layer, params, 2, 0)
    with pytest.raises(ValueError, match="already enabled"):
        cj.enable_lora(lora, lora_params, 2, 0)
    with pytest.raises(ValueError, match="has none"):
        cj.merge_lora(layer, params)
    with pytest.raises(TypeError, match="enable_lora takes a layer with a kernel"):
        cj.enable_lora(cj.Flatten(), {}, 2, 0)
    with pytest.raises(ValueError, match=r"keys \['bias', 'kernel', 'lora_kernel_a'"):
        lora.apply(params, jnp.ones((1, 3)))


def test_dense_errors():
    with pytest.raises(ValueError, match=r"`units` must be a positive int.*units=0"):
        cj.Dense(0)
    with pytest.raises(ValueError, match=r"rank >= 2.*input_shape=\(5,\)"):
        cj.Dense(2).init(0, (5,))
    with pytest.raises(
        ValueError, match="last axis of a Dense layer's input must be known"
    ):
        cj.Dense(2).compute_output_shape((None, None))
    params = cj.Dense(2).init(0, (None, 3))
    with pytest.raises(
        ValueError, match=r"params\['kernel'\] of shape \(3, 2\) does not fit"
    ):
        cj.Dense(2).apply(params, jnp.ones((1, 4)))
