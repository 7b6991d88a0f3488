"""apply is a pure function: jit, grad, vmap and check_grads; specs are
hashable static arguments."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import pytest
from jax.test_util import check_grads

import conv1djax as cj
from conftest import assert_close, normal

CONFIGS = [
    (cj.Conv1D, dict(filters=6, kernel_size=3)),
    (cj.Conv1D, dict(filters=6, kernel_size=4, strides=2, padding="same", activation="tanh")),
    (cj.Conv1D, dict(filters=6, kernel_size=3, dilation_rate=2, padding="causal", groups=3)),
    (cj.Conv1D, dict(filters=4, kernel_size=5, data_format="channels_first", activation="gelu")),
    (cj.Conv1D, dict(filters=6, kernel_size=3, groups=6, padding="same")),  # depthwise
    (cj.Conv1DTranspose, dict(filters=4, kernel_size=3, strides=2)),
    (cj.Conv1DTranspose, dict(filters=6, kernel_size=4, strides=3, padding="same", groups=3, output_padding=1)),
    (cj.Conv1DTranspose, dict(filters=4, kernel_size=3, dilation_rate=2, data_format="channels_first", activation="softplus")),
]  # fmt: skip


def _setup(cls, config, batch=(2,)):
    spec = cls(**config)
    shape = (*batch, 9, 6) if spec.data_format == "channels_last" else (*batch, 6, 9)
    params = spec.init(jax.random.key(0), shape)
    x = normal(1, shape)
    return spec, params, x


@pytest.mark.parametrize("cls,config", CONFIGS)
def test_jit_matches_eager(cls, config):
    spec, params, x = _setup(cls, config)
    eager = spec.apply(params, x)
    jitted = jax.jit(cls.apply, static_argnums=0)(spec, params, x)
    assert_close(jitted, eager, rtol=1e-6, atol=1e-6)
    fn = cj.conv1d_apply if cls is cj.Conv1D else cj.conv1d_transpose_apply
    assert_close(
        jax.jit(fn, static_argnums=0)(spec, params, x), eager, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("cls,config", CONFIGS)
def test_check_grads(cls, config):
    """Finite differences in float64 against forward and reverse mode, to
    second order."""
    with jax.enable_x64(True):
        spec, params, x = _setup(cls, config)
        args = [a.astype(jnp.float64) for a in (x, params["kernel"], params["bias"])]

        # jitted: check_grads's JVPs and VJPs compile as one program each,
        # not op by op (test_jit_matches_eager checks jit against eager)
        @jax.jit
        def f(x, kernel, bias):
            return spec.apply({"kernel": kernel, "bias": bias}, x)

        check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("cls,config", CONFIGS)
def test_vmap_over_batch_axis_and_params(cls, config):
    spec, params, x = _setup(cls, config)
    # over a leading axis of the input: same as the multi-batch-axis apply
    xs = jnp.stack([x, 2 * x, -x])
    assert_close(
        jax.vmap(lambda x_: spec.apply(params, x_))(xs),
        spec.apply(params, xs),
        rtol=1e-6,
        atol=1e-6,
    )
    # over an ensemble of params
    keys = jax.random.split(jax.random.key(3), 4)
    ensemble = jax.vmap(lambda k: spec.init(k, x.shape))(keys)
    ys = jax.vmap(lambda p: spec.apply(p, x))(ensemble)
    for i in range(4):
        member = jax.tree.map(lambda p, i=i: p[i], ensemble)
        assert_close(ys[i], spec.apply(member, x), rtol=1e-5, atol=1e-5)


def test_specs_are_hashable_static_arguments():
    a = cj.Conv1D(8, 3, padding="SAME", data_format="Channels_Last")
    b = cj.Conv1D(8, (3,), padding="same", data_format="channels_last")
    assert a == b and hash(a) == hash(b)
    assert cj.Conv1D(8, 3, kernel_regularizer="l2") == cj.Conv1D(
        8, 3, kernel_regularizer=cj.regularizers.L2()
    )
    assert cj.Conv1D(8, 3) != cj.Conv1D(8, 3, strides=2)
    assert a.kernel_size == (3,) and a.strides == (1,) and a.padding == "same"
    assert cj.Conv1D(8, 3, data_format=None).data_format == "channels_last"
    assert cj.Conv1DTranspose(8, 3, strides=2, output_padding=1).output_padding == (1,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.filters = 4


def test_jit_traces_once_per_spec():
    spec = cj.Conv1D(4, 3, activation="relu")
    params = spec.init(jax.random.key(0), (2, 10, 3))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, x):
        return jnp.sum(cj.conv1d_apply(spec, params, x) ** 2)

    for i in range(5):
        step(params, jnp.full((2, 10, 3), float(i)))


def test_equal_specs_share_one_compilation():
    @functools.partial(jax.jit, static_argnums=0)
    @chex.assert_max_traces(n=1)
    def apply(spec, params, x):
        return cj.conv1d_apply(spec, params, x)

    spec = cj.Conv1D(4, 3, activation="relu")
    params = spec.init(jax.random.key(0), (2, 10, 3))
    apply(spec, params, jnp.ones((2, 10, 3)))
    apply(cj.Conv1D(4, (3,), activation="relu"), params, jnp.ones((2, 10, 3)))


def test_gradients_flow_to_all_params():
    spec = cj.Conv1D(4, 3, padding="causal")
    params = spec.init(jax.random.key(0), (2, 10, 3))
    x = normal(1, (2, 10, 3))
    grads = jax.grad(lambda p: jnp.sum(spec.apply(p, x) ** 2))(params)
    chex.assert_trees_all_equal_shapes(grads, params)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


def test_causal_output_never_depends_on_the_future():
    spec = cj.Conv1D(3, 4, padding="causal", dilation_rate=2)
    params = spec.init(jax.random.key(0), (1, 16, 2))
    x = normal(1, (1, 16, 2))
    jac = jax.jacrev(lambda x_: spec.apply(params, x_))(x)  # (1,16,3,1,16,2)
    for t in range(16):
        assert float(jnp.abs(jac[0, t, :, 0, t + 1 :]).sum()) == 0.0
        assert float(jnp.abs(jac[0, t, :, 0, t]).sum()) > 0.0


def test_transpose_jacobian_is_conv_jacobian_transposed():
    """Equinox's check: ConvTranspose's Jacobian is Conv's, transposed."""
    conv = cj.Conv1D(4, 3, strides=2, use_bias=False, groups=2)
    tconv = cj.Conv1DTranspose(6, 3, strides=2, use_bias=False, groups=2)
    params = conv.init(jax.random.key(0), (1, 9, 6))  # kernel (3, 3, 4)
    x = jnp.zeros((1, 9, 6))
    y = conv.apply(params, x)  # (1, 4, 4)
    j_conv = jax.jacobian(lambda x_: conv.apply(params, x_))(x).reshape(y.size, x.size)
    j_t = jax.jacobian(lambda y_: tconv.apply(params, y_))(y)  # kernel (3, 6/2, 4)
    assert j_t.shape[1] == 9  # (4 - 1) * 2 + max(3, 2)
    assert_close(j_t.reshape(x.size, y.size), j_conv.T, rtol=1e-6, atol=1e-6)
