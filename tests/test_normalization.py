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
from conftest import FAST_COMPILE, assert_close, keras_promotion, normal, run_on_host_devices

SWEEP_SEEDS = 12


def _axis(r, rank):
    return int(r.integers(-rank, rank))


def _case(seed):
    """``(spec, input shape)`` of sweep case ``seed``: every third a
    BatchNormalization, a LayerNormalization, a GroupNormalization; the last
    three under mixed_bfloat16."""
    r = np.random.default_rng(100 + seed)
    kind = seed % 3
    flags = {"center": bool(r.integers(2)), "scale": bool(r.integers(2)),
             "epsilon": float(r.choice([1e-3, 1e-5, 0.1]))}  # fmt: skip
    if seed >= SWEEP_SEEDS - 3:
        flags["dtype"] = "mixed_bfloat16"
    rank = int(r.integers(2, 5))
    shape = tuple(int(d) for d in r.integers(2, 5, rank))
    if kind == 0:
        spec = cj.BatchNormalization(axis=_axis(r, rank),
                                     momentum=float(r.choice([0.99, 0.5, 0.9])),
                                     **flags)  # fmt: skip
    elif kind == 1:
        if r.integers(2):
            axis = _axis(r, rank)
        else:  # several axes, of one sign
            axes = r.choice(rank, size=int(r.integers(1, rank + 1)), replace=False)
            axis = tuple(int(a) - (rank if r.integers(2) else 0) for a in axes)
            if min(axis) < 0 <= max(axis):
                axis = tuple(a % rank for a in axis)
        spec = cj.LayerNormalization(axis=axis, rms_scaling=bool(r.integers(3) == 0),
                                     **flags)  # fmt: skip
    else:
        rank = max(rank, 3)
        groups = int(r.choice([1, 2, 3, -1]))
        per_group = int(r.integers(1, 3))
        channels = (groups if groups > 0 else 3) * per_group
        axis = int(r.choice([-1, 1, 2, -2]))
        shape = [int(d) for d in r.integers(2, 5, rank)]
        shape[axis] = channels
        spec = cj.GroupNormalization(groups=groups, axis=axis, **flags)
        shape = tuple(shape)
    return spec, shape


def _params(spec, shape, seed):
    shapes = spec.param_shapes(shape)
    params = {n: normal(seed + i, s) for i, (n, s) in enumerate(shapes.items())}
    if "moving_variance" in params:
        params["moving_variance"] = jnp.abs(params["moving_variance"]) + 0.5
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
    cases = [_case(seed) for seed in range(SWEEP_SEEDS)]
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
