"""Dropout and noise against Keras 3: the identity at inference (equal to
Keras's ``training=False``), and in training the same distribution as
Keras's ``training=True`` (Keras's random bits differ: the fraction kept,
the kept values' scale, the mask's structure over the axes, the noise's mean
and variance, each measured on both); configs both ways; argument errors as
Keras raises them; keys, seeds, the train step and streaming."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import normal

SHAPES = {1: (16, 40, 6), 2: (8, 12, 10, 6), 3: (4, 6, 5, 4, 6)}


def _keras_training(layer, x, seed=0):
    import keras

    config = layer.get_config()
    config.pop("seed", None)
    k_layer = getattr(keras.layers, type(layer).__name__).from_config(
        {**config, "seed": seed}
    )
    return np.asarray(k_layer(np.asarray(x), training=True)), k_layer


def _ours_training(layer, x, seed=0):
    y, _ = cj.apply_training(layer, {}, x, key=jax.random.key(seed))
    return np.asarray(y)


def _mask_is_constant_over(y, axes):
    """Whether the zero pattern of ``y`` is the same at every index of
    ``axes``."""
    zero = y == 0
    return bool(np.all(zero == np.take(zero, [0], axis=axes[0]).repeat(
        zero.shape[axes[0]], axis=axes[0]))) if len(axes) == 1 else all(
        _mask_is_constant_over(y, [a]) for a in axes)  # fmt: skip


@pytest.mark.parametrize(
    "layer",
    [cj.Dropout(0.3), cj.Dropout(0.6, noise_shape=(None, 1, None)),
     cj.SpatialDropout1D(0.4), cj.SpatialDropout2D(0.4),
     cj.SpatialDropout2D(0.4, data_format="channels_first"),
     cj.SpatialDropout3D(0.5), cj.GaussianNoise(0.3), cj.GaussianDropout(0.4)],
    ids=repr,
)  # fmt: skip
def test_training_draws_keras_distribution_and_inference_is_keras(layer):

    rank = getattr(layer, "rank", 1)
    x = jnp.abs(normal(0, SHAPES[rank])) + 0.5  # no zeros of its own
    ours = _ours_training(layer, x)
    theirs, k_layer = _keras_training(layer, x)
    np.testing.assert_array_equal(layer.apply({}, x), k_layer(np.asarray(x)))
    assert ours.shape == theirs.shape == x.shape
    if isinstance(layer, cj.GaussianNoise | cj.GaussianDropout):
        # additive noise of std stddev; multiplicative of mean 1, std
        # sqrt(rate / (1 - rate)): the same moments, measured on both
        for y in (ours, theirs):
            noise = y - x if isinstance(layer, cj.GaussianNoise) else y / x
            center = 0.0 if isinstance(layer, cj.GaussianNoise) else 1.0
            std = (
                layer.stddev
                if isinstance(layer, cj.GaussianNoise)
                else np.sqrt(layer.rate / (1 - layer.rate))
            )
            assert abs(noise.mean() - center) < 4 * std / np.sqrt(noise.size)
            assert abs(noise.std() / std - 1) < 0.05
        return
    keep = 1 - layer.rate
    for y in (ours, theirs):
        kept = y != 0
        # kept values scaled by 1 / keep
        np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / keep, rtol=1e-6)
        # the mask's structure: constant over the spatial axes for spatial
        # dropout and over the noise_shape's ones, free elsewhere
        if isinstance(layer, cj.Dropout) and layer.noise_shape is None:
            constant = []
        elif isinstance(layer, cj.Dropout):
            constant = [1]
        else:
            first = 2 if getattr(layer, "data_format", None) == "channels_first" else 1
            constant = list(range(first, first + rank))
        assert _mask_is_constant_over(y, constant) if constant else True
        free = [a for a in range(1, y.ndim) if a not in constant]
        assert not _mask_is_constant_over(y, free[-1:])
        # the fraction kept, per mask draw
        draws = kept[
            tuple(
                slice(0, 1) if a in constant else slice(None) for a in range(kept.ndim)
            )
        ]  # one entry per draw
        assert abs(draws.mean() - keep) < 4 * np.sqrt(keep * (1 - keep) / draws.size)


def test_rate_zero_and_one_as_keras():
    x = normal(0, (2, 10, 3))
    np.testing.assert_array_equal(_ours_training(cj.Dropout(0.0), x), x)
    np.testing.assert_array_equal(_ours_training(cj.Dropout(1.0), x), np.zeros_like(x))
    np.testing.assert_array_equal(_keras_training(cj.Dropout(1.0), x)[0], 0 * x)
    # a layer that draws nothing needs no key
    y, _ = cj.apply_training(cj.GaussianNoise(0.0), {}, x)
    np.testing.assert_array_equal(y, x)


def test_configs_both_ways():
    import keras

    for layer in (cj.Dropout(0.3, noise_shape=(None, 1, 4), seed=3, name="d"),
                  cj.SpatialDropout2D(0.2, data_format="channels_first", seed=1),
                  cj.SpatialDropout1D(0.1), cj.SpatialDropout3D(0.1),
                  cj.GaussianNoise(0.5, seed=2), cj.GaussianDropout(0.25)):  # fmt: skip
        k_layer = getattr(keras.layers, type(layer).__name__).from_config(
            layer.get_config()
        )
        assert type(layer).from_config(k_layer.get_config()) == layer
    assert cj.Dropout.from_config(keras.layers.Dropout(0.5).get_config()) == cj.Dropout(
        0.5
    )


@pytest.mark.parametrize(
    "make, error, match",
    [(lambda: cj.Dropout(1.5), ValueError, r"`rate` of Dropout must be a float "
      r"between 0 and 1; received rate=1.5"),
     (lambda: cj.Dropout("0.5"), TypeError, r"`rate` of Dropout must be a float"),
     (lambda: cj.GaussianNoise(-0.1), ValueError, r"`stddev` of GaussianNoise"),
     (lambda: cj.GaussianDropout(2), ValueError, r"`rate` of GaussianDropout"),
     (lambda: cj.SpatialDropout2D(0.1, data_format="nhwc"), ValueError,
      r"data_format"),
     (lambda: cj.Dropout(0.5, noise_shape="abc"), ValueError, r"`noise_shape`"),
     (lambda: cj.Dropout(0.5, noise_shape=(0, 1)), ValueError,
      r"positive ints and Nones; received noise_shape=\(0, 1\) \(entry 0 is 0\)"),
     (lambda: cj.Dropout(0.5, seed=1.5), TypeError, r"`seed` of Dropout")],
)  # fmt: skip
def test_bad_arguments_are_refused_as_keras_refuses_them(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_keras_refuses_the_same_arguments():
    import keras

    for make in (lambda: keras.layers.Dropout(1.5),
                 lambda: keras.layers.GaussianNoise(-0.1),
                 lambda: keras.layers.GaussianDropout(2),
                 lambda: keras.layers.Dropout(0.5, noise_shape=(0, 1))):  # fmt: skip
        with pytest.raises(ValueError):
            make()


def test_noise_shape_that_does_not_broadcast_and_a_missing_key():
    x = jnp.ones((2, 5, 3))
    with pytest.raises(ValueError, match=r"Dropout\(noise_shape=\(2, 2, 3\)\) does not "
                       r"broadcast to the input of shape \(2, 5, 3\)"):  # fmt: skip
        cj.apply_training(cj.Dropout(0.5, noise_shape=(2, 2, 3)), {}, x,
                          key=jax.random.key(0))  # fmt: skip
    with pytest.raises(ValueError, match=r"SpatialDropout1D draws random bits"):
        cj.apply_training(cj.SpatialDropout1D(0.5), {}, x)
    with pytest.raises(TypeError, match=r"Dropout draws floating noise"):
        cj.apply_training(cj.Dropout(0.5), {}, jnp.ones((2, 5, 3), jnp.int32),
                          key=jax.random.key(0))  # fmt: skip


def test_seeds_and_layers_draw_apart_and_reproducibly():
    x = jnp.ones((4, 50, 8))
    key = jax.random.key(7)
    a = _ours_training(cj.Dropout(0.5, seed=1), x, 7)
    np.testing.assert_array_equal(a, _ours_training(cj.Dropout(0.5, seed=1), x, 7))
    assert not np.array_equal(a, _ours_training(cj.Dropout(0.5, seed=2), x, 7))
    twin = cj.Sequential([cj.Dropout(0.5), cj.Dropout(0.5)])
    y, _ = cj.apply_training(twin, [{}, {}], jnp.ones((16, 100, 8)), key=key)
    # two independent masks: kept where both kept, a quarter (4 sigma: 0.015),
    # scaled by 4
    assert abs(float((y != 0).mean()) - 0.25) < 0.015
    np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 4.0])


def test_in_a_train_step_and_a_stream():
    model = cj.Sequential([cj.Conv1D(4, 3, padding="causal", activation="relu"),
                           cj.SpatialDropout1D(0.5), cj.GaussianNoise(0.1),
                           cj.Conv1D(1, 3, padding="causal")])  # fmt: skip
    params = model.init(0, (None, 32, 1))
    x = normal(1, (8, 32, 1))
    opt = optax.sgd(0.0)
    step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    key = jax.random.key(3)
    _, _, loss = step(params, opt.init(params), x, x, key)
    y, _ = cj.apply_training(model, params, x, key=key)
    np.testing.assert_allclose(loss, jnp.mean((y - x) ** 2), rtol=1e-6)
    _, _, loss2 = step(params, opt.init(params), x, x, jax.random.key(4))
    assert float(loss) != float(loss2)
    # inference streams as the identity
    cj.streaming.check_stream(model, params, x, chunkings=[[1, 7, 24], [32]])
    with pytest.raises(TypeError, match="SpatialDropout2D cannot stream: it is 2-D"):
        cj.stream_latency(cj.SpatialDropout2D(0.5))


def test_saved_loaded_and_read_from_a_keras_model(tmp_path):
    import keras

    model = cj.Sequential([cj.Conv1D(4, 3, padding="same"), cj.Dropout(0.25, seed=1),
                           cj.SpatialDropout1D(0.1), cj.GaussianNoise(0.2),
                           cj.GaussianDropout(0.3)])  # fmt: skip
    params = model.init(0, (None, 16, 2))
    cj.save(tmp_path / "m.safetensors", model, params)
    loaded, _ = cj.load(tmp_path / "m.safetensors")
    assert loaded == model
    k_model = keras.Sequential([keras.Input((16, 2)), keras.layers.Conv1D(4, 3, padding="same"),
                                keras.layers.Dropout(0.25, seed=1),
                                keras.layers.SpatialDropout1D(0.1),
                                keras.layers.GaussianNoise(0.2),
                                keras.layers.GaussianDropout(0.3)])  # fmt: skip
    assert cj.interop.from_keras_config(k_model.get_config()) == model
