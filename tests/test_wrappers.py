"""The kernel wrappers: SpectralNormalization against Keras 3 (training
values, VJPs and the updated ``vector_u`` through ``stateless_call(...,
training=True)``; inference), WeightNormalization and
TorchSpectralNormalization against PyTorch 2.13's parametrizations (values,
gradients w.r.t. the input and the parametrization's tensors, the updated
``u`` / ``v``, per family, transposed included); weights and configs both
ways, save / load with state, the train step, streaming and errors."""

# The sweeps' closures run within their loop iteration:
# ruff: noqa: B023

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import (
    assert_close,
    keras_layer,
    keras_promotion,
    normal,
    random_params,
    shaped,
    sweep_case,
    values_and_vjps,
)

# One seeded case of each family: the sweeps' configs (Keras's arguments).
KERAS_CASES = [(cj.Conv1D, 3), (cj.Conv2DTranspose, 2), (cj.DepthwiseConv1D, 4)]


def _case(cls, seed):
    config, batch, spatial, channels = sweep_case(cls, seed)
    config = {**config, "activation": None}  # the wrapper is under test
    spec = cls(**config)
    shape = shaped(batch, spatial, channels, spec.data_format)
    return config, spec, batch, shape


def test_spectral_normalization_equals_keras_in_training_and_inference():
    import keras

    for n, (cls, seed) in enumerate(KERAS_CASES):
        config, spec, batch, shape = _case(cls, seed)
        wrapper = cj.SpectralNormalization(spec, power_iterations=1 + n % 3)
        inner = random_params(spec, shape, seed)
        u = normal(seed + 9, (1, inner["kernel"].shape[-1]))
        params = {"layer": inner, "vector_u": u}
        kshape = (int(np.prod(batch)), *shape[len(batch) :])
        k_inner = keras_layer(cls, config, kshape, inner)
        k_wrapper = keras.layers.SpectralNormalization(
            k_inner, power_iterations=wrapper.power_iterations
        )
        k_wrapper.build(kshape)
        names = [w.path.split("/")[-1] for w in k_wrapper.trainable_variables]
        assert [w.path.split("/")[-1] for w in k_wrapper.weights] == [
            n.split("/")[-1] for n in wrapper.weight_names()
        ]

        def ours(x, u, *ws):
            p = {"layer": dict(zip(names, ws, strict=True)), "vector_u": u}
            y, new = cj.apply_training(wrapper, p, x)
            return jnp.concatenate(
                [y.ravel(), new["vector_u"].ravel(), wrapper.apply(p, x).ravel()]
            )

        def theirs(x, u, *ws):
            with keras_promotion():
                flat = x.reshape((-1, *x.shape[len(batch) :]))
                y, (new_u,) = k_wrapper.stateless_call(
                    list(ws), [u], flat, training=True
                )
                y_inf, _ = k_wrapper.stateless_call(list(ws), [u], flat, training=False)
            return jnp.concatenate([y.ravel(), new_u.ravel(), y_inf.ravel()])

        x = normal(seed, shape)
        args = [x, u, *(inner[k] for k in names)]
        ct = normal(1, jax.eval_shape(ours, *args).shape)
        (y, grads), (y_k, grads_k) = values_and_vjps((ours, theirs), args, ct)
        assert_close(y, y_k, rtol=1e-4, atol=1e-5, err_msg=repr(wrapper))
        for name, g, g_k in zip(["x", "u", *names], grads, grads_k, strict=True):
            if name != "u":  # u is a constant of the gradient in both
                assert_close(g, g_k, rtol=1e-4, atol=1e-5, err_msg=f"{wrapper} {name}")
        assert (
            wrapper.compute_output_shape(shape)
            == jax.eval_shape(wrapper.apply, params, x).shape
        )


def test_spectral_normalization_keras_weights_and_configs_both_ways():
    import keras

    wrapper = cj.SpectralNormalization(cj.Conv1D(3, 2, name="conv"), power_iterations=2)
    params = wrapper.init(0, (None, 6, 2))
    weights = cj.interop.to_keras(wrapper, params)
    assert [w.shape for w in weights] == [(2, 2, 3), (1, 3), (3,)]
    back = cj.interop.from_keras(wrapper, weights)
    jax.tree.map(np.testing.assert_array_equal, back, params)

    k_wrapper = keras.layers.SpectralNormalization.from_config(
        copy.deepcopy(wrapper.get_config())
    )
    k_wrapper.build((1, 6, 2))
    k_wrapper.set_weights(weights)
    x = normal(0, (1, 6, 2))
    assert_close(wrapper.apply(params, x), k_wrapper(np.asarray(x)))
    assert cj.SpectralNormalization.from_config(k_wrapper.get_config()) == wrapper

    model = cj.Sequential([wrapper, cj.Activation("relu")])
    config, all_weights = cj.interop.to_keras_config(model, [params, {}], (None, 6, 2))
    k_model = keras.Sequential.from_config(copy.deepcopy(config))  # Keras pops
    k_model.set_weights(all_weights)
    assert_close(model.apply([params, {}], x), k_model(np.asarray(x)))
    k_weights = [np.asarray(w.value) for w in k_model.weights]
    again, again_params = cj.interop.from_keras_config(config, k_weights)
    assert again == model
    jax.tree.map(np.testing.assert_array_equal, again_params, [params, {}])


def _torch_module(spec, channels, parametrize):
    """The PyTorch twin of ``spec`` ("valid" padding), parametrized."""
    import torch

    rank, kind = spec.rank, spec.torch_module
    common = dict(kernel_size=spec.kernel_size, stride=spec.strides,
                  dilation=spec.dilation_rate, bias=spec.use_bias)  # fmt: skip
    if kind == "transposed":
        module = getattr(torch.nn, f"ConvTranspose{rank}d")(
            channels, spec.filters, groups=spec.groups, **common
        )
    elif kind == "depthwise":
        module = getattr(torch.nn, f"Conv{rank}d")(
            channels, channels * spec.depth_multiplier, groups=channels, **common
        )
    else:
        module = getattr(torch.nn, f"Conv{rank}d")(
            channels, spec.filters, groups=spec.groups, **common
        )
    return parametrize(module)


# PyTorch's dim 0 (and spectral_norm's dim 1 of a transposed weight) in each
# family's layout, between the two parametrizations.
TORCH_CASES = {
    "weight_norm": [cj.Conv1D(6, 3, strides=2, groups=2),
                    cj.Conv1DTranspose(6, 3, strides=2, groups=3),
                    cj.DepthwiseConv1D(3, depth_multiplier=2)],
    "spectral_norm": [cj.Conv2D(4, (2, 3), dilation_rate=2),
                      cj.Conv1DTranspose(4, 3, groups=2, use_bias=False),
                      cj.DepthwiseConv1D(2, depth_multiplier=2)],
}  # fmt: skip


def _channels_first(x, rank):
    return np.array(np.moveaxis(np.asarray(x), -1, 1))  # a writable copy for torch


@pytest.mark.parametrize("style", ["weight_norm", "spectral_norm"])
def test_torch_parametrizations_equal_pytorch_per_family(style):
    torch = pytest.importorskip("torch")

    parametrizations = torch.nn.utils.parametrizations
    for n, spec in enumerate(TORCH_CASES[style]):
        channels = 6
        shape = (2, *(7,) * spec.rank, channels)
        if style == "weight_norm":
            wrapper = cj.WeightNormalization(spec)
            module = _torch_module(spec, channels, parametrizations.weight_norm)
        else:
            wrapper = cj.TorchSpectralNormalization(spec, n_power_iterations=1 + n % 2)
            module = _torch_module(
                spec, channels,
                lambda m: parametrizations.spectral_norm(
                    m, n_power_iterations=wrapper.n_power_iterations),
            )  # fmt: skip
        params = wrapper.init(n, shape)
        if style == "weight_norm":  # g away from ||v||, so that it counts
            params["g"] = params["g"] * (1.5 + normal(n, params["g"].shape) ** 2)
        state = cj.interop.to_torch(wrapper, params)
        module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        back = cj.interop.from_torch(wrapper, dict(module.state_dict()))
        jax.tree.map(np.testing.assert_array_equal, back, params)

        x = normal(n + 1, shape)
        xt = torch.tensor(_channels_first(x, spec.rank), requires_grad=True)
        module.train()
        yt = module(xt)
        ct = normal(
            n + 2, (*shape[:1], *np.moveaxis(np.zeros(yt.shape), 1, -1).shape[1:])
        )
        yt.backward(torch.from_numpy(_channels_first(ct, spec.rank)))

        @jax.jit
        def ours(x, p, ct):  # one compiled program per case
            def run(x, p):
                y, updated = cj.apply_training(wrapper, p, x)
                return y, {k: updated[k] for k in wrapper.non_trainable_weights()}

            (y, new), vjp = jax.vjp(run, x, p)
            return y, new, *vjp((ct, jax.tree.map(jnp.zeros_like, new)))

        y, new, gx, gp = ours(x, params, ct)
        assert_close(y, np.moveaxis(yt.detach().numpy(), 1, -1), rtol=1e-4, atol=1e-5,
                     err_msg=repr(wrapper))  # fmt: skip
        assert_close(gx, np.moveaxis(xt.grad.numpy(), 1, -1), rtol=1e-4, atol=1e-5)
        grads_t = {
            k: v.grad.numpy()
            for k, v in module.named_parameters()
            if v.grad is not None
        }
        grads = cj.interop.to_torch(wrapper, {**gp, **{k: params[k] for k in new}})
        for name, g_t in grads_t.items():
            assert_close(
                grads[name], g_t, rtol=1e-4, atol=1e-5, err_msg=f"{wrapper} {name}"
            )
        if style == "spectral_norm":  # the updated state, then inference
            for ours_name, theirs in (("u", "_u"), ("v", "_v")):
                got = getattr(module.parametrizations.weight[0], theirs).numpy()
                assert_close(new[ours_name], got, rtol=1e-4, atol=1e-6)
            module.eval()
            params = {**params, **new}
            yt = module(torch.from_numpy(_channels_first(x, spec.rank)))
            assert_close(wrapper.apply(params, x), np.moveaxis(yt.detach().numpy(), 1, -1),
                         rtol=1e-4, atol=1e-5)  # fmt: skip
        else:
            assert_close(wrapper.apply(params, x), y)


@pytest.mark.filterwarnings("ignore:.*weight_norm. is deprecated:FutureWarning")
def test_weight_norm_reads_the_old_weight_g_and_weight_v():
    torch = pytest.importorskip("torch")

    module = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(4, 6, 3))
    wrapper = cj.WeightNormalization(cj.Conv1DTranspose(6, 3))
    params = cj.interop.from_torch(wrapper, dict(module.state_dict()))
    assert params["g"].shape == (1, 1, 4)
    x = normal(0, (2, 5, 4))
    yt = module(torch.from_numpy(_channels_first(x, 1))).detach().numpy()
    assert_close(wrapper.apply(params, x), np.moveaxis(yt, 1, -1))


def test_save_load_train_step_and_stream_with_state(tmp_path):
    model = cj.Sequential([
        cj.SpectralNormalization(cj.Conv1D(4, 3, padding="causal",
                                           kernel_constraint="non_neg")),
        cj.WeightNormalization(cj.Conv1D(4, 3, padding="causal",
                                         kernel_regularizer=cj.regularizers.L2(0.01))),
        cj.TorchSpectralNormalization(cj.Conv1D(2, 2, padding="causal")),
    ])  # fmt: skip
    params = model.init(0, (None, 24, 2))
    assert sorted(jax.tree.leaves(cj.protocol.trainable_mask(model, params))) == (
        [False] * 3 + [True] * 7
    )
    x = normal(0, (8, 24, 2))
    target = jnp.roll(x, 1, axis=1)
    opt = optax.sgd(0.05, momentum=0.9)
    opt_state = opt.init(cj.trainable_params(model, params))
    step = cj.make_train_step(model, opt, lambda y, t: jnp.mean((y - t) ** 2))
    losses, first = [], params
    for _ in range(12):
        params, opt_state, loss = step(params, opt_state, x, target)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    assert not np.allclose(params[0]["vector_u"], first[0]["vector_u"])
    assert not np.allclose(params[2]["u"], first[2]["u"])
    assert float(params[0]["layer"]["kernel"].min()) >= 0  # the inner constraint
    assert float(cj.regularization_loss(model, params)) > 0

    for suffix in (".npz", ".safetensors"):
        cj.save(tmp_path / f"m{suffix}", model, params)
        loaded, loaded_params = cj.load(tmp_path / f"m{suffix}")
        assert loaded == model
        jax.tree.map(np.testing.assert_array_equal, loaded_params, params)
    cj.streaming.check_stream(model, params, x[:2])


def test_errors():
    with pytest.raises(ValueError, match="should be greater than zero"):
        cj.SpectralNormalization(cj.Conv1D(2, 3), power_iterations=0)
    with pytest.raises(TypeError, match="power_iterations"):
        cj.SpectralNormalization(cj.Conv1D(2, 3), power_iterations=1.5)
    with pytest.raises(ValueError, match="n_power_iterations"):
        cj.TorchSpectralNormalization(cj.Conv1D(2, 3), n_power_iterations=-1)
    for wrapper in (cj.SpectralNormalization, cj.WeightNormalization,
                    cj.TorchSpectralNormalization):  # fmt: skip
        with pytest.raises(ValueError, match="has no weights"):
            wrapper(cj.Activation("relu"))
        with pytest.raises(ValueError, match="wrap a DepthwiseConv and a 1x1 Conv"):
            wrapper(cj.SeparableConv1D(4, 3))
        with pytest.raises(ValueError, match="composite"):
            wrapper(cj.Sequential([cj.Conv1D(2, 3)]))
        with pytest.raises(TypeError, match="is not a layer"):
            wrapper("conv")
    layer = cj.WeightNormalization(cj.Conv1D(4, 3))
    params = layer.init(0, (None, 8, 2))
    with pytest.raises(ValueError, match=r"\['g'\].*needs \(1, 1, 4\)"):
        layer.apply({**params, "g": jnp.ones(4)}, jnp.ones((1, 8, 2)))
    with pytest.raises(ValueError, match="state dict with the keys"):
        cj.interop.from_torch(layer, {"weight": np.ones((4, 2, 3)), "bias": np.ones(4)})
    with pytest.raises(TypeError, match="which Keras does not have|no Keras layer"):
        cj.interop.to_keras_config(cj.Sequential([layer]), [params])


def test_the_wrappers_around_dense_equal_keras_and_pytorch():
    import keras

    dense = cj.Dense(5)
    x = normal(0, (3, 4))
    # Keras's SpectralNormalization around its Dense, in training.
    wrapper = cj.SpectralNormalization(dense, power_iterations=2)
    params = wrapper.init(1, x.shape)
    params["layer"] = random_params(dense, x.shape, 2)
    k_wrapper = keras.layers.SpectralNormalization(keras.layers.Dense(5),
                                                   power_iterations=2)  # fmt: skip
    k_wrapper.build(x.shape)
    k_wrapper.set_weights(cj.interop.to_keras(wrapper, params))
    y, new = cj.apply_training(wrapper, params, x)
    with keras_promotion():
        y_k, (new_u,) = k_wrapper.stateless_call(
            [v.value for v in k_wrapper.trainable_variables],
            [params["vector_u"]], x, training=True)  # fmt: skip
    assert_close(y, y_k, rtol=1e-5, atol=1e-6)
    assert_close(new["vector_u"], new_u, rtol=1e-5, atol=1e-6)
    # PyTorch's parametrizations around nn.Linear (the Keras half runs without
    # PyTorch).
    torch = pytest.importorskip("torch")
    parametrizations = torch.nn.utils.parametrizations
    for ours, wrap in ((cj.WeightNormalization(dense), parametrizations.weight_norm),
                       (cj.TorchSpectralNormalization(dense),
                        parametrizations.spectral_norm)):  # fmt: skip
        module = wrap(torch.nn.Linear(4, 5))
        params = ours.init(3, x.shape)
        if "g" in params:
            params["g"] = params["g"] * 1.7
        module.load_state_dict(
            {
                k: torch.from_numpy(v)
                for k, v in cj.interop.to_torch(ours, params).items()
            }
        )
        module.train()
        y_t = module(torch.from_numpy(np.array(x))).detach().numpy()
        assert_close(cj.apply_training(ours, params, x)[0], y_t, rtol=1e-5, atol=1e-6,
                     err_msg=repr(ours))  # fmt: skip
