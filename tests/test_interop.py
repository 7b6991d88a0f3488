"""cj.interop: weights in and out of Keras (get_weights lists, Sequential
configs, .keras files) and PyTorch (state dicts), each checked by equal
outputs of the two libraries on the same input."""

import functools

import jax
import keras
import numpy as np
import pytest

import conv1djax as cj
from conftest import FAST_COMPILE, assert_close, normal

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
    # ... and loadable into the module as the docstring says (writable
    # arrays: torch warns on read-only ones, and warnings are errors here).
    assert all(v.flags.writeable for v in state.values())
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})


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


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_keras_file_of_lora_normalization_and_wrapper_layers_loads(tmp_path):
    # Keras saves a LoRA layer's kernel merged and no LoRA weights; loading
    # fills them with zeros (as Keras's load_own_variables), the output kept.
    # A wrapper's layer saves its variables under the wrapper's "layer".
    kmodel = keras.Sequential([
        keras.Input((8, 3)), keras.layers.Conv1D(4, 3, lora_rank=2),
        keras.layers.BatchNormalization(),
        keras.layers.SpectralNormalization(keras.layers.Conv1D(4, 2)),
        keras.layers.GroupNormalization(groups=2), keras.layers.Flatten(),
        keras.layers.Dense(2, lora_rank=1),
    ])  # fmt: skip
    kmodel.set_weights([normal(i, w.shape) + (1.5 if "variance" in w.path else 0)
                        for i, w in enumerate(kmodel.weights)])  # fmt: skip
    path = tmp_path / "lora.keras"
    kmodel.save(path)
    model, params = cj.interop.load_keras_file(path)
    assert model.layers[0].lora_rank == 2 and not params[0]["lora_kernel_b"].any()
    # the wrapper's own state (Keras's inference does not read it)
    np.testing.assert_array_equal(params[2]["vector_u"], kmodel.layers[2].vector_u)
    x = normal(9, (2, 8, 3))
    assert_close(model.apply(params, x), kmodel(x), rtol=1e-5, atol=1e-5)


def test_keras_model_errors(tmp_path):
    embed = keras.Sequential([keras.Input((4,)), keras.layers.Embedding(10, 2)])
    with pytest.raises(ValueError, match=r"Layer 0 of the Keras model is a 'Embedding'"
                       r", which conv1djax does not have"):  # fmt: skip
        cj.interop.from_keras_config(embed.get_config())
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


# ---- PyTorch modules and Sequentials ------------------------------------------------


# Eager dispatch compiles every op of a model apart: one program is faster.
@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
def _apply(model, params, x):
    return model.apply(params, x)


def _torch_out(net, x):
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        return net(torch.from_numpy(np.array(x))).numpy()


# (PyTorch warns of its own copy of the input for "same" with an even kernel.)
def _torch_net_1d():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(4, 6, 3, stride=2, groups=2, padding=2, padding_mode="reflect"),
        nn.ReLU(),
        nn.Conv1d(6, 6, 3, dilation=2, groups=6, padding=(1,), padding_mode="circular"),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1, output_padding=1),
        nn.Tanh(),
        nn.ReflectionPad1d((2, 1)),  # fused into the next convolution
        torch.nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 5, 3, bias=False)),
        nn.MaxPool1d(3, stride=2),
        nn.Sequential(nn.GELU(approximate="tanh"), nn.AvgPool1d(2), nn.ZeroPad1d((1, 2)),
                      nn.Conv1d(5, 3, 2, padding="same"), nn.Dropout(0.5)),
        nn.ConvTranspose1d(3, 3, 3, stride=2),  # padding 0: Keras's "valid"
        nn.AdaptiveAvgPool1d(1),
    ).eval()  # fmt: skip


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_a_torch_sequential_1d(tmp_path):
    net = _torch_net_1d()
    model, params = cj.interop.from_torch_sequential(net)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv1D", "Activation", "Conv1D", "Activation", "Conv1DTranspose",
        "Activation", "Conv1D", "MaxPooling1D", "Sequential", "Conv1DTranspose",
        "GlobalAveragePooling1D",
    ]  # fmt: skip
    assert model.layers[6].padding == ((2, 1),)
    assert model.layers[6].padding_mode == "reflect"
    assert model.layers[9].padding == "valid"
    assert [sorted(p) for p in params[8]] == [[], [], [], ["bias", "kernel"], []]
    # weight_norm's 5 magnitudes are folded into the kernel
    torch_count = sum(p.numel() for p in net.parameters()) - 5
    assert model.count_params((None, 4, 40)) == torch_count
    x = normal(1, (2, 4, 40))
    expected = _torch_out(net, x)
    assert_close(_apply(model, params, x), expected, rtol=1e-5)
    # Saved and loaded (the bound LeakyReLU and GELU activations are registered).
    cj.save(tmp_path / "net.safetensors", model, params)
    again, again_params = cj.load(tmp_path / "net.safetensors")
    assert again == model
    assert_close(_apply(again, again_params, x), expected, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_a_torch_sequential_2d():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="replicate"),
        nn.ReLU6(),
        nn.Conv2d(4, 4, (2, 4), padding="same", groups=4),  # depthwise, even kernel
        nn.SiLU(),
        nn.ConvTranspose2d(4, 4, 3, stride=2, padding=(1, 0), output_padding=(1, 0),
                           groups=2),
        nn.MaxPool2d((2, 1)),
        nn.ZeroPad2d((1, 2, 0, 3)),  # (left, right, top, bottom)
        nn.Upsample(scale_factor=2),  # its rank from the modules around it
        nn.AvgPool2d(3, stride=(2, 1)),
        nn.ELU(),
        nn.Dropout2d(),
        nn.CircularPad2d((1, 0, 2, 1)),
        nn.Conv2d(4, 2, 2, stride=(1, 2)),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
    ).eval()  # fmt: skip
    model, params = cj.interop.from_torch_sequential(net)
    assert type(model.layers[7]).__name__ == "UpSampling2D"
    assert cj.activations.serialize(model.layers[10].activation) == "linear"
    assert model.layers[6].padding == ((0, 3), (1, 2))
    assert model.layers[-1].keepdims is False
    x = normal(2, (2, 3, 6, 5))
    expected = _torch_out(net, x)
    assert expected.shape == (2, 2)
    assert_close(_apply(model, params, x), expected, rtol=1e-5)


def test_a_torch_sequential_3d():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv3d(2, 3, 3, padding=1, padding_mode="circular"),
        nn.Hardswish(),
        nn.ConvTranspose3d(3, 2, 3, stride=2, padding=1, dilation=1),
        nn.MaxPool3d(2),
        nn.Upsample(scale_factor=(1, 2, 1), mode="nearest-exact"),
        nn.ReplicationPad3d(1),
        nn.Conv3d(2, 2, (2, 3, 2), dilation=(1, 2, 1), bias=False),
        nn.Softplus(),
        nn.AdaptiveAvgPool3d((1, 1, 1)),
    ).eval()
    model, params = cj.interop.from_torch_sequential(net)
    assert len(model.layers) == 8
    x = normal(3, (1, 2, 4, 5, 4))
    assert_close(_apply(model, params, x), _torch_out(net, x), rtol=1e-5)


def _torch_activation_cases():
    nn = pytest.importorskip("torch").nn
    return [
        (nn.ReLU(), "relu"), (nn.ReLU6(), "relu6"), (nn.Sigmoid(), "sigmoid"),
        (nn.Tanh(), "tanh"), (nn.SiLU(), "silu"), (nn.SELU(), "selu"),
        (nn.Mish(), "mish"), (nn.Softsign(), "softsign"),
        (nn.Hardswish(), "hard_silu"), (nn.Hardsigmoid(), "hard_sigmoid"),
        (nn.LogSigmoid(), "log_sigmoid"), (nn.Tanhshrink(), "tanh_shrink"),
        (nn.Identity(), "linear"), (nn.GELU(), "gelu"),
        (nn.GELU(approximate="tanh"), None), (nn.ELU(), "elu"), (nn.CELU(), "celu"),
        (nn.Softplus(), "softplus"), (nn.Hardtanh(), "hard_tanh"),
        (nn.Softshrink(), "soft_shrink"), (nn.Hardshrink(), "hard_shrink"),
        (nn.LeakyReLU(), None), (nn.LeakyReLU(0.2), "leaky_relu"),
        (nn.Dropout(0.3).eval(), "linear"),
    ]  # fmt: skip


def test_torch_activations_map_exactly():
    # Both sides of Softplus's threshold (20), the shrinks' 0.5, the hard ones'.
    x = np.concatenate(
        [normal(4, (64,)) * 4, np.array([-40, -21, -20, -3, -0.5, 0, 0.5, 3, 19.9,
                                          20, 20.1, 25, 40], np.float32)]
    )  # fmt: skip
    cases = _torch_activation_cases()
    layers = []
    for module, keras_name in cases:
        layer, params = cj.interop.from_torch_module(module)
        assert type(layer).__name__ == "Activation" and params == {}
        if keras_name is not None:
            assert cj.activations.serialize(layer.activation) == keras_name
        layers.append(layer)
    outputs = jax.jit(
        lambda x: [layer.apply({}, x) for layer in layers],
        compiler_options=FAST_COMPILE,
    )(x)
    for (module, _), ours in zip(cases, outputs, strict=True):
        assert_close(ours, _torch_out(module, x), rtol=1e-5, err_msg=repr(module))
    leaky, _ = cj.interop.from_torch_module(pytest.importorskip("torch").nn.LeakyReLU())
    assert leaky.activation.keywords == {"negative_slope": 0.01}
    again, _ = cj.interop.from_torch_module(pytest.importorskip("torch").nn.LeakyReLU())
    assert again == leaky and hash(again) == hash(leaky)


def test_torch_single_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    layer, params = cj.interop.from_torch_module(nn.Upsample(scale_factor=3), rank=3)
    assert layer == cj.UpSampling3D(3, data_format="channels_first") and params == {}
    layer, _ = cj.interop.from_torch_module(nn.UpsamplingNearest2d(scale_factor=2))
    assert layer == cj.UpSampling2D(2, data_format="channels_first")
    layer, _ = cj.interop.from_torch_module(nn.ConstantPad3d((1, 2, 3, 4, 5, 6), 0.0))
    assert layer.padding == ((5, 6), (3, 4), (1, 2))
    layer, _ = cj.interop.from_torch_module(nn.MaxPool2d(3, stride=(1, 2)))
    assert (layer.pool_size, layer.strides) == ((3, 3), (1, 2))
    conv = nn.Conv2d(2, 3, 3, padding=0, padding_mode="reflect")
    layer, params = cj.interop.from_torch_module(conv)
    assert (layer.padding, layer.padding_mode) == ("valid", "zeros")
    x = normal(5, (1, 2, 5, 5))
    assert_close(layer.apply(params, x), _torch_out(conv, x), rtol=1e-5)
    model, params = cj.interop.from_torch_module(nn.Sequential(nn.ReLU()))
    assert isinstance(model, cj.Sequential) and params == [{}]


def test_torch_module_errors():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    convert = cj.interop.from_torch_sequential
    with pytest.raises(TypeError, match=r"^module 3 \(BatchNorm1d\) has no conv1djax "
                       r"equivalent; see cj.interop.from_torch_module"):  # fmt: skip
        convert(nn.Sequential(nn.Conv1d(2, 2, 3), nn.ReLU(), nn.Identity(),
                              nn.BatchNorm1d(2)))  # fmt: skip
    with pytest.raises(TypeError, match=r"^module 1\.0 \(LSTM\) has no conv1djax"):
        convert(nn.Sequential(nn.ReLU(), nn.Sequential(nn.LSTM(2, 2))))
    named = nn.Sequential(
        __import__("collections").OrderedDict(
            [("conv", nn.Conv1d(2, 2, 3)), ("pool", nn.MaxPool1d(2, padding=1))]
        )
    )
    with pytest.raises(ValueError, match=r"^module 1 'pool' \(MaxPool1d\): padding=1 "
                       r"has no exact Keras pooling equivalent"):  # fmt: skip
        convert(named)
    # Refused still (the pooling, padding, upsampling and strided-dilated
    # modules Keras's arguments cannot express convert as graph operations:
    # test_torch_fx).
    cases = [
        (nn.ELU(alpha=0.5), ValueError, r"ELU: alpha=0\.5: only alpha=1\.0"),
        (nn.Softplus(beta=2), ValueError, r"beta=2\.0, threshold=20\.0: only"),
        (nn.Dropout(), ValueError, r"Dropout: a dropout converts only in eval"),
        (nn.LSTM(2, 2), TypeError, r"^LSTM has no conv1djax equivalent"),
    ]  # fmt: skip
    for module, error, message in cases:
        with pytest.raises(error, match=message):
            cj.interop.from_torch_module(module)
    with pytest.raises(ValueError, match=r"^module 1 \(Upsample\): a 1-D upsampling"):
        convert(nn.Sequential(nn.Conv1d(2, 2, 3), nn.Upsample(scale_factor=2)))
    with pytest.raises(TypeError, match=r"module 0 \(ReflectionPad1d\) has no"):
        convert(nn.Sequential(nn.ReflectionPad1d(1), nn.Conv1d(2, 2, 3, padding=1)))
    with pytest.raises(TypeError, match=r"must be a torch.nn.Sequential; received "
                       r"Conv1d"):  # fmt: skip
        convert(nn.Conv1d(2, 2, 3))
    with pytest.raises(TypeError, match=r"must be a torch.nn.Module; received list"):
        cj.interop.from_torch_module([nn.ReLU()])
