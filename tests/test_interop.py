"""cj.interop: weights in and out of Keras (get_weights lists, Sequential
configs, .keras files) and PyTorch (state dicts), each checked by equal
outputs of the two libraries on the same input."""

import jax
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import assert_close, normal

KERAS_LAYERS = [
    (cj.Conv1D(4, 3, strides=2, groups=2, activation="relu"), (2, 11, 4)),
    (cj.Conv2D(3, (3, 2), dilation_rate=(1, 2), use_bias=False), (2, 7, 8, 2)),
    (cj.Conv3D(2, 2, padding="same", data_format="channels_first"), (1, 3, 4, 4, 4)),
    (cj.Conv1DTranspose(3, 4, strides=2), (2, 5, 2)),
    (cj.Conv2DTranspose(2, 3, strides=(2, 1), padding="same"), (1, 4, 4, 3)),
    (cj.Conv3DTranspose(2, 2, strides=2, use_bias=False), (1, 2, 3, 3, 2)),
    (cj.DepthwiseConv1D(3, depth_multiplier=2), (2, 9, 3)),
    (cj.DepthwiseConv2D(3, padding="same"), (1, 5, 5, 2)),
    (cj.SeparableConv1D(4, 3, depth_multiplier=2), (2, 9, 3)),
    (cj.SeparableConv2D(4, 3, use_bias=False), (1, 6, 6, 2)),
    (cj.MaxPooling1D(2), (2, 6, 3)),
]  # fmt: skip


def _get_weights(klayer):
    """``_get_weights(klayer)``, read without Keras 3.15's NumPy 2
    DeprecationWarning (an error under this suite's filterwarnings)."""
    return [np.asarray(v.value) for v in klayer.weights]


def _keras_layer(layer, shape):
    klayer = getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())
    klayer.build(shape)
    return klayer


@pytest.mark.parametrize(
    "layer,shape", KERAS_LAYERS, ids=[type(x).__name__ for x, _ in KERAS_LAYERS]
)
def test_keras_weights_in_and_out(layer, shape):
    klayer = _keras_layer(layer, shape)
    x = normal(0, shape)
    weights = [normal(i + 1, w.shape) for i, w in enumerate(_get_weights(klayer))]
    klayer.set_weights([np.asarray(w) for w in weights])
    params = cj.interop.from_keras(layer, _get_weights(klayer))
    assert_close(layer.apply(params, x), klayer(x))
    back = cj.interop.to_keras(layer, params)
    assert [w.shape for w in back] == [w.shape for w in _get_weights(klayer)]
    for ours, theirs in zip(back, _get_weights(klayer), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_keras_weight_errors():
    layer = cj.Conv1D(2, 3)
    with pytest.raises(ValueError, match=r"Conv1D takes 2 weights \(\['kernel', "
                       r"'bias'\], Keras's get_weights\(\) order\); received 1"):  # fmt: skip
        cj.interop.from_keras(layer, [np.ones((3, 4, 2))])
    with pytest.raises(ValueError, match=r"params\['kernel'\] of shape \(4, 4, 2\)"):
        cj.interop.from_keras(layer, [np.ones((4, 4, 2)), np.ones(2)])
    with pytest.raises(ValueError, match=r"must have 3 axes; received shape \(3, 2\)"):
        cj.interop.from_keras(layer, [np.ones((3, 2)), np.ones(2)])
    with pytest.raises(TypeError, match=r"Sequential is a composite"):
        cj.interop.from_keras(cj.Sequential([layer]), [])


# ---- PyTorch ----------------------------------------------------------------------


def _torch_cases():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    return [
        (nn.Conv1d(4, 6, 3, stride=2, dilation=1, groups=2),
         cj.Conv1D(6, 3, strides=2, groups=2, data_format="channels_first"),
         (2, 4, 11)),
        (nn.Conv1d(3, 4, 5, dilation=2, bias=False),
         cj.Conv1D(4, 5, dilation_rate=2, use_bias=False,
                   data_format="channels_first"), (2, 3, 16)),
        (nn.Conv2d(2, 4, (3, 3), padding="same"),
         cj.Conv2D(4, (3, 3), padding="same", data_format="channels_first"),
         (1, 2, 6, 7)),
        (nn.Conv3d(2, 2, 2, stride=(1, 2, 1)),
         cj.Conv3D(2, 2, strides=(1, 2, 1), data_format="channels_first"),
         (1, 2, 4, 5, 4)),
        (nn.ConvTranspose1d(4, 6, 4, stride=2, groups=2, output_padding=1),
         cj.Conv1DTranspose(6, 4, strides=2, groups=2, output_padding=1,
                            data_format="channels_first"), (2, 4, 5)),
        (nn.ConvTranspose2d(3, 2, 3, dilation=(1, 2)),
         cj.Conv2DTranspose(2, 3, dilation_rate=(1, 2),
                            output_padding=0, data_format="channels_first"),
         (1, 3, 4, 4)),
        (nn.ConvTranspose3d(2, 2, 2, stride=2, bias=False),
         cj.Conv3DTranspose(2, 2, strides=2, use_bias=False, output_padding=0,
                            data_format="channels_first"), (1, 2, 2, 3, 2)),
        (nn.Conv1d(3, 6, 3, groups=3),
         cj.DepthwiseConv1D(3, depth_multiplier=2, data_format="channels_first"),
         (2, 3, 8)),
        (nn.Conv2d(2, 2, 3, groups=2, bias=False),
         cj.DepthwiseConv2D(3, use_bias=False, data_format="channels_first"),
         (1, 2, 5, 6)),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(9))
def test_torch_state_dicts_in_and_out(case):
    torch = pytest.importorskip("torch")
    module, layer, shape = _torch_cases()[case]
    torch.manual_seed(case)
    x = normal(case, shape)
    with torch.no_grad():
        expected = module(torch.from_numpy(np.array(x))).numpy()
    params = cj.interop.from_torch(layer, module.state_dict())
    assert_close(layer.apply(params, x), expected, rtol=1e-5)
    state = cj.interop.to_torch(layer, params)
    assert sorted(state) == sorted(module.state_dict())
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy())
    # ... and loadable into the module.
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})


def test_torch_errors():
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv1d(2, 4, 3)
    with pytest.raises(ValueError, match=r"use_bias=False\) takes a state dict with "
                       r"the keys \['weight'\]; received \['bias', 'weight'\]"):  # fmt: skip
        cj.interop.from_torch(cj.Conv1D(4, 3, use_bias=False), conv.state_dict())
    with pytest.raises(ValueError, match=r"params\['kernel'\] of shape \(3, 2, 4\) "
                       r"does not fit Conv1D\(filters=5"):  # fmt: skip
        cj.interop.from_torch(cj.Conv1D(5, 3), conv.state_dict())
    with pytest.raises(TypeError, match=r"SeparableConv1D has no single PyTorch"):
        cj.interop.from_torch(cj.SeparableConv1D(2, 3), conv.state_dict())
    with pytest.raises(ValueError, match=r"A depthwise weight is"):
        cj.interop.from_torch(cj.DepthwiseConv1D(3, depth_multiplier=3),
                              conv.state_dict())  # fmt: skip


# ---- Keras models -----------------------------------------------------------------


def _keras_model():
    return keras.Sequential(
        [
            keras.Input((16, 3)),
            keras.layers.Conv1D(4, 3, padding="causal", activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.SeparableConv1D(6, 3, depth_multiplier=2),
            keras.layers.Activation("tanh"),
            keras.layers.Conv1DTranspose(2, 3, strides=2),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )


def test_a_keras_sequential_in_and_back():
    kmodel = _keras_model()
    kmodel.set_weights([normal(i, w.shape) for i, w in enumerate(_get_weights(kmodel))])
    x = normal(9, (2, 16, 3))
    model, params = cj.interop.from_keras_config(
        kmodel.get_config(), _get_weights(kmodel)
    )
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv1D", "MaxPooling1D", "SeparableConv1D", "Activation",
        "Conv1DTranspose", "GlobalAveragePooling1D",
    ]  # fmt: skip
    assert_close(model.apply(params, x), kmodel(x))
    assert model.count_params((None, 16, 3)) == kmodel.count_params()
    config, weights = cj.interop.to_keras_config(
        model, params, input_shape=(None, 16, 3)
    )
    rebuilt = keras.Sequential.from_config(config)
    rebuilt.set_weights(weights)
    assert_close(rebuilt(x), kmodel(x))


# Keras 3.15's own saving reads its variables through a NumPy 2 deprecated path.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_keras_file_loads(tmp_path):
    kmodel = _keras_model()
    kmodel.set_weights([normal(i, w.shape) for i, w in enumerate(_get_weights(kmodel))])
    path = tmp_path / "model.keras"
    kmodel.save(path)
    model, params = cj.interop.load_keras_file(path)
    x = normal(3, (2, 16, 3))
    assert_close(model.apply(params, x), kmodel(x))
    # ... and saves in conv1djax's format.
    cj.save(tmp_path / "model.safetensors", model, params)
    again, again_params = cj.load(tmp_path / "model.safetensors")
    assert_close(again.apply(again_params, x), kmodel(x))


def test_keras_model_errors(tmp_path):
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"Layer 0 of the Keras model is a 'Dense', "
                       r"which conv1djax does not have"):  # fmt: skip
        cj.interop.from_keras_config(dense.get_config())
    kmodel = _keras_model()
    with pytest.raises(ValueError, match=r"take 7 weights; received 8"):
        cj.interop.from_keras_config(
            kmodel.get_config(), [*_get_weights(kmodel), np.ones(1)]
        )
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"is not a \.keras file Keras 3 saved"):
        cj.interop.load_keras_file(bad)
    model = cj.Sequential([cj.Residual(cj.Conv1D(3, 1))])
    params = model.init(jax.random.key(0), (None, 4, 3))
    with pytest.raises(TypeError, match=r"Layer 0 \(Residual\) has no Keras layer"):
        cj.interop.to_keras_config(model, params)
    torch_style = cj.Sequential([cj.Conv1D(2, 3, padding=1, padding_mode="reflect")])
    params = torch_style.init(jax.random.key(0), (None, 4, 3))
    with pytest.raises(
        TypeError, match=r"Layer 0 \(Conv1D\) has PyTorch-style padding"
    ):
        cj.interop.to_keras_config(torch_style, params)
