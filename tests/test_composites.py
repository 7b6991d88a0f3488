"""The layer protocol and the composites: Sequential, Residual, Parallel,
Lambda and a user's own composite.

- Oracle: every composite model here is rebuilt as a Keras functional model
  from our configs with our weights (Add, Subtract, Multiply, Average,
  Maximum, Minimum and Concatenate for the merges); the outputs, the whole
  training objective (task loss + every weight and activity penalty Keras
  collects, at any depth) and its gradient w.r.t. every param match.
- Constraints at any depth: one SGD step, then every constrained kernel is
  the projection of the hand-computed update.
- The model of issue 10 (a user's Residual around a regularized, constrained
  conv): undeclared, it is refused when a step is built; declared, its
  objective equals the one computed by hand and its constraint holds.
- Shapes, ``count_params`` and nested ``summary`` rows; errors.
"""

import dataclasses

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import conv1djax as cj
from conftest import assert_close, keras_weight_names, normal


def _mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


# ---- our models as Keras functional graphs ------------------------------------

_KERAS_MERGES = {
    "add": keras.layers.Add,
    "subtract": keras.layers.Subtract,
    "multiply": keras.layers.Multiply,
    "average": keras.layers.Average,
    "maximum": keras.layers.Maximum,
    "minimum": keras.layers.Minimum,
}


def _to_keras(layer, x, params, path, weights):
    """Builds ``layer`` on the Keras tensor ``x``; records in ``weights``
    ``{keras variable path: (our params path, value)}``."""
    if isinstance(layer, cj.Sequential):
        for i, sub in enumerate(layer.layers):
            x = _to_keras(sub, x, params[i], (*path, i), weights)
        return x
    if isinstance(layer, cj.Residual):
        y = _to_keras(layer.inner, x, params["inner"], (*path, "inner"), weights)
        if layer.shortcut is not None:
            x = _to_keras(
                layer.shortcut, x, params["shortcut"], (*path, "shortcut"), weights
            )
        return keras.layers.Add()([y, x])
    if isinstance(layer, cj.Parallel):
        ys = [
            _to_keras(b, x, params[i], (*path, i), weights)
            for i, b in enumerate(layer.branches)
        ]
        if layer.merge == "concat":
            return keras.layers.Concatenate(axis=layer.axis)(ys)
        return _KERAS_MERGES[layer.merge]()(ys)
    if isinstance(layer, cj.Lambda):
        return keras.layers.Lambda(layer.function)(x)
    config = {k: v for k, v in layer.get_config().items() if k != "name"}
    klayer = getattr(keras.layers, type(layer).__name__).from_config(config)
    y = klayer(x)
    for name in keras_weight_names(klayer):
        weights[f"{klayer.name}/{name}"] = ((*path, name), params[name])
    klayer.set_weights(
        [np.asarray(params[name]) for name in keras_weight_names(klayer)]
    )
    return y


def _keras_model(model, input_shape, params):
    inp = keras.Input(input_shape[1:])
    weights = {}
    out = _to_keras(model, inp, params, (), weights)
    return keras.Model(inp, out), weights


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _check_against_keras(model, input_shape, seed=0, rtol=2e-5):
    x = normal(seed, input_shape)
    params = model.init(jax.random.key(seed), input_shape)
    params = jax.tree.map(lambda p: p + 0.1 * normal(seed + 1, p.shape), params)
    y_true = normal(seed + 2, model.compute_output_shape(input_shape))
    kmodel, weights = _keras_model(model, input_shape, params)
    variables = kmodel.trainable_variables
    assert sorted(v.path for v in variables) == sorted(weights)

    def keras_objective(values):
        y_pred, _, losses = kmodel.stateless_call(values, [], x, return_losses=True)
        return _mse(y_pred, y_true) + sum(losses), y_pred

    values = [jnp.asarray(weights[v.path][1]) for v in variables]
    (k_loss, k_y), k_grads = jax.value_and_grad(keras_objective, has_aux=True)(values)

    evaluate = cj.make_eval_step(model, _mse)

    def ours(p):
        parts = evaluate(p, x, y_true)
        return parts["loss"], parts

    (loss, parts), grads = jax.value_and_grad(ours, has_aux=True)(params)
    assert_close(model.apply(params, x), k_y, rtol=rtol)
    assert_close(loss, k_loss, rtol=rtol)
    for v, g in zip(variables, k_grads, strict=True):
        assert_close(_get(grads, weights[v.path][0]), g, rtol=rtol, err_msg=v.path)
    assert model.count_params(input_shape) == kmodel.count_params()
    assert tuple(model.compute_output_shape(input_shape)) == (
        input_shape[0],
        *kmodel.output.shape[1:],
    )
    return parts


def _conv(filters, kernel, **kwargs):
    return cj.Conv1D(filters, kernel, **kwargs)


L2 = cj.regularizers.L2(0.05)
L1 = cj.regularizers.L1(0.02)


def test_residual_identity_and_shortcut_equal_keras():
    inner = cj.Sequential(
        [
            _conv(4, 3, padding="causal", kernel_regularizer=L2,
                  activity_regularizer=L1, activation="relu"),
            _conv(4, 1, bias_regularizer=L2),
        ]
    )  # fmt: skip
    parts = _check_against_keras(cj.Residual(inner), (3, 12, 4), seed=1)
    assert float(parts["regularization_loss"]) > 0
    assert float(parts["activity_loss"]) > 0
    block = cj.Residual(
        _conv(6, 3, padding="same", kernel_regularizer=L2),
        shortcut=_conv(6, 1, kernel_regularizer=L1, activity_regularizer=L2),
    )
    _check_against_keras(block, (2, 10, 3), seed=2)


@pytest.mark.parametrize(
    "merge", ["add", "subtract", "multiply", "average", "maximum", "minimum", "concat"]
)
def test_parallel_merges_equal_keras(merge):
    branches = [
        _conv(4, 2, padding="causal", activation="tanh", kernel_regularizer=L2),
        _conv(4, 3, padding="same", activation="sigmoid", activity_regularizer=L1),
    ]
    if merge not in ("subtract",):
        branches.append(cj.Sequential([_conv(4, 1), cj.Activation("relu")]))
    _check_against_keras(cj.Parallel(branches, merge=merge), (2, 9, 3), seed=3)


def test_parallel_concat_channels_first_equals_keras():
    branches = [
        _conv(2, 3, padding="same", data_format="channels_first"),
        _conv(5, 1, data_format="channels_first", kernel_regularizer=L2),
    ]
    model = cj.Parallel(branches, merge="concat", axis=1)
    assert model.compute_output_shape((None, 3, 8)) == (None, 7, 8)
    _check_against_keras(model, (2, 3, 8), seed=4)


def test_nested_composites_equal_keras():
    """WaveNet-like: gated units in residual blocks, in a Sequential, with
    pooling and a Lambda; penalties at depth 4."""

    def block(d):
        gate = cj.Parallel(
            [
                _conv(4, 2, dilation_rate=d, padding="causal", activation="tanh",
                      kernel_regularizer=L2),
                _conv(4, 2, dilation_rate=d, padding="causal", activation="sigmoid",
                      activity_regularizer=L1),
            ],
            merge="multiply",
        )  # fmt: skip
        return cj.Residual(cj.Sequential([gate, _conv(4, 1, kernel_regularizer=L1)]))

    model = cj.Sequential(
        [
            _conv(4, 1),
            block(1),
            block(2),
            cj.MaxPooling1D(2),
            cj.Residual(block(1), shortcut=cj.Lambda(lambda v: 2.0 * v)),
            cj.GlobalAveragePooling1D(),
        ]
    )
    parts = _check_against_keras(model, (3, 16, 2), seed=5)
    assert float(parts["activity_loss"]) > 0


def test_constraints_hold_at_every_depth_after_a_step():
    nonneg = cj.constraints.NonNeg()
    maxnorm = cj.constraints.MaxNorm(0.5, axis=(0, 1))
    model = cj.Sequential(
        [
            cj.Residual(
                cj.Parallel(
                    [_conv(3, 2, padding="causal", kernel_constraint=nonneg),
                     _conv(3, 3, padding="same", kernel_constraint=maxnorm)],
                    merge="add",
                ),
                shortcut=_conv(3, 1, bias_constraint=nonneg),
            ),
        ]
    )  # fmt: skip
    x = normal(0, (4, 10, 2))
    y = normal(1, (4, 10, 3))
    params = model.init(jax.random.key(0), x.shape)
    lr = 0.5
    grads = jax.grad(lambda p: _mse(model.apply(p, x), y))(params)
    step = cj.make_train_step(model, optax.sgd(lr), _mse)
    new, _, _ = step(params, optax.sgd(lr).init(params), x, y)
    updated = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    block, new_block = updated[0], new[0]
    branch0, branch1 = block["inner"]
    assert_close(new_block["inner"][0]["kernel"], np.maximum(branch0["kernel"], 0))
    assert np.min(new_block["inner"][0]["kernel"]) >= 0
    w = np.asarray(branch1["kernel"])
    norms = np.sqrt(np.sum(w**2, axis=(0, 1), keepdims=True))
    expected = w * np.clip(norms, 0, 0.5) / (1e-7 + norms)
    assert_close(new_block["inner"][1]["kernel"], expected)
    assert_close(
        new_block["shortcut"]["bias"], np.maximum(block["shortcut"]["bias"], 0)
    )
    for unconstrained in (("inner", 0, "bias"), ("shortcut", "kernel")):
        assert_close(_get(new_block, unconstrained), _get(block, unconstrained))


# ---- a user's own composite: the model of issue 10 ------------------------------


def _issue_conv():
    return cj.Conv1D(
        4, 3, padding="causal",
        kernel_regularizer=cj.regularizers.L2(1.0),
        kernel_constraint=cj.constraints.NonNeg(),
        activity_regularizer="l2",
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class UndeclaredResidual:
    """Issue 10's residual block, as the user first wrote it."""

    inner: cj.Sequential

    def init(self, key, s, *, dtype=jnp.float32):
        return {"inner": self.inner.init(key, s, dtype=dtype)}

    def apply(self, p, x):
        return x + self.inner.apply(p["inner"], x)

    def compute_output_shape(self, s):
        return s


@dataclasses.dataclass(frozen=True)
class UserResidual(cj.Layer):
    """The same block following the protocol."""

    inner: cj.Sequential

    def sublayers(self):
        return {"inner": self.inner}

    def init(self, key, s, *, dtype=jnp.float32):
        return {"inner": self.inner.init(key, s, dtype=dtype)}

    def apply(self, p, x, *, call=cj.call_layer):
        return x + call(self.inner, p["inner"], x)

    def compute_output_shape(self, s):
        return s


def test_undeclared_sublayers_with_terms_are_refused_when_the_step_is_built():
    model = cj.Sequential([UndeclaredResidual(cj.Sequential([_issue_conv()]))])
    message = (
        r"UndeclaredResidual holds a layer with regularizers or constraints "
        r"\(Sequential at `inner`\) that it does not declare.*sublayers\(\)"
    )
    for build in (
        lambda: cj.make_eval_step(model, _mse),
        lambda: cj.make_train_step(model, optax.sgd(0.1), _mse),
    ):
        with pytest.raises(ValueError, match=message):
            build()
    params = model.init(jax.random.key(0), (2, 10, 4))
    for walk in (cj.regularization_loss, cj.apply_constraints):
        with pytest.raises(ValueError, match=message):
            walk(model, params)
    with pytest.raises(ValueError, match=message):
        cj.apply_with_activity(model, params, jnp.ones((2, 10, 4)))
    # Holding plain layers without declaring them is allowed: nothing is lost.
    plain = cj.Sequential([UndeclaredResidual(cj.Sequential([cj.Conv1D(4, 1)]))])
    cj.make_eval_step(plain, _mse)


@pytest.mark.loose_promotion  # optax's Adam promotes a float and its int32 step
def test_issue_model_trains_the_hand_computed_objective():
    conv = _issue_conv()
    model = cj.Sequential([UserResidual(cj.Sequential([conv]))])
    x, y = normal(0, (2, 10, 4)), normal(1, (2, 10, 4))
    params = model.init(jax.random.key(0), x.shape)
    p = params[0]["inner"][0]
    # By hand: the conv's output, Keras's L2 formulas, the activity penalty
    # divided by the batch size.
    h = conv.apply(p, x)
    task = np.mean((np.asarray(x + h) - np.asarray(y)) ** 2)
    reg = 1.0 * np.sum(np.asarray(p["kernel"]) ** 2)
    activity = 0.01 * np.sum(np.asarray(h) ** 2) / 2
    parts = cj.make_eval_step(model, _mse)(params, x, y)
    assert_close(parts["task_loss"], task, rtol=1e-5)
    assert_close(parts["regularization_loss"], reg, rtol=1e-5)
    assert_close(parts["activity_loss"], activity, rtol=1e-5)
    assert float(parts["regularization_loss"]) > 0.1
    # The same block through cj.Residual gives the same objective.
    builtin = cj.Sequential([cj.Residual(cj.Sequential([conv]))])
    parts_builtin = cj.make_eval_step(builtin, _mse)(params, x, y)
    for key in parts:
        assert_close(parts_builtin[key], parts[key], rtol=1e-6)
    # Training keeps the constraint: no negative kernel entry after a step.
    assert np.min(p["kernel"]) < 0
    opt = optax.adam(0.05)
    step = cj.make_train_step(model, opt, _mse)
    state = opt.init(params)
    for _ in range(3):
        params, state, loss = step(params, state, x, y)
        assert np.min(params[0]["inner"][0]["kernel"]) >= 0
    assert np.isfinite(float(loss))


def test_a_composite_must_pass_activity_through_call():
    @dataclasses.dataclass(frozen=True)
    class NoCall(cj.Layer):
        inner: object

        def sublayers(self):
            return {"inner": self.inner}

        def init(self, key, s, *, dtype=jnp.float32):
            return {"inner": self.inner.init(key, s, dtype=dtype)}

        def apply(self, p, x):
            return self.inner.apply(p["inner"], x)

        def compute_output_shape(self, s):
            return self.inner.compute_output_shape(s)

    with pytest.raises(ValueError, match=r"NoCall.apply takes no `call` keyword"):
        cj.make_eval_step(NoCall(_issue_conv()), _mse)
    # Without an activity regularizer below it, a composite needs no `call`.
    quiet = NoCall(cj.Conv1D(2, 3, kernel_regularizer="l2"))
    params = quiet.init(jax.random.key(0), (1, 6, 1))
    assert float(cj.regularization_loss(quiet, params)) > 0

    @dataclasses.dataclass(frozen=True)
    class Bypass(NoCall):
        def apply(self, p, x, *, call=cj.call_layer):
            return self.inner.apply(p["inner"], x)  # not through `call`

    model = Bypass(_issue_conv())
    params = model.init(jax.random.key(0), (1, 6, 4))
    with pytest.raises(ValueError, match=r"did not run its sub-layer 'inner'"):
        cj.apply_with_activity(model, params, jnp.ones((1, 6, 4)))


def test_params_are_checked_at_init():
    @dataclasses.dataclass(frozen=True)
    class ListParams(cj.Layer):
        def init(self, key, s, *, dtype=jnp.float32):
            return [jnp.ones(3)]

        def apply(self, p, x):
            return x * p[0]

        def compute_output_shape(self, s):
            return s

    model = cj.Sequential([cj.Conv1D(3, 1), ListParams()])
    with pytest.raises(
        ValueError,
        match=r"the params Sequential sub-layer 1 \(ListParams\) returned for "
        r"ListParams must be a dict of arrays \(\{\} for none\); received a list",
    ):
        model.init(jax.random.key(0), (2, 5, 3))
    with pytest.raises(ValueError, match=r"must be a dict of arrays"):
        cj.Residual(ListParams()).init(jax.random.key(0), (2, 5, 3))
    residual = cj.Residual(cj.Conv1D(3, 1))
    with pytest.raises(ValueError, match=r"under the keys \['inner'\]"):
        residual.apply({"outer": {}}, jnp.ones((1, 4, 3)))


# ---- shapes, counts, summaries --------------------------------------------------


def test_shapes_counts_and_nested_summary():
    gate = cj.Parallel(
        [cj.Conv1D(4, 2, padding="causal", activation="tanh", name="filter"),
         cj.Conv1D(4, 2, padding="causal", activation="sigmoid", name="gate")],
        merge="multiply", name="gated",
    )  # fmt: skip
    model = cj.Sequential(
        [cj.Conv1D(4, 1), cj.Residual(gate, shortcut=cj.Conv1D(4, 1)),
         cj.Lambda(lambda v: v[..., -1:, :]), cj.GlobalMaxPooling1D()]
    )  # fmt: skip
    shape = (None, 16, 2)
    params = model.init(jax.random.key(0), shape)
    leaves = sum(p.size for p in jax.tree.leaves(params))
    assert model.count_params(shape) == leaves == 12 + (36 + 36) + 20
    assert model.compute_output_shape(shape) == (None, 4)
    assert model.apply(params, jnp.ones((3, 16, 2))).shape == (3, 4)
    text = model.summary(shape, print_fn=lambda _: None)
    rows = text.splitlines()[2:-2]
    names = [row.split(")")[0] + ")" for row in rows]
    assert [n.strip() for n in names] == [
        "conv1d (Conv1D)",
        "residual (Residual)",
        "gated (Parallel)",
        "filter (Conv1D)",
        "gate (Conv1D)",
        "conv1d_1 (Conv1D)",
        "lambda (Lambda)",
        "global_max_pooling1d (GlobalMaxPooling1D)",
    ]
    indents = [len(n) - len(n.lstrip()) for n in names]
    assert indents == [0, 0, 2, 4, 4, 2, 0, 0]
    assert "(None, 16, 4)" in rows[1] and f"{36 + 36 + 20:,}" in rows[1]
    assert "(None, 1, 4)" in rows[6] and "(None, 4)" in rows[7]
    assert f"Total params: {leaves:,}" in text


def test_user_composite_summary_found_by_tracing():
    model = cj.Sequential(
        [UserResidual(cj.Sequential([cj.Conv1D(3, 3, padding="same")]))]
    )
    text = model.summary((None, 8, 3), print_fn=lambda _: None)
    rows = [row.split() for row in text.splitlines()[2:-2]]
    assert rows == [
        ["user_residual", "(UserResidual)", "(None,", "8,", "3)", "30"],
        ["sequential", "(Sequential)", "(None,", "8,", "3)", "30"],
        ["conv1d", "(Conv1D)", "(None,", "8,", "3)", "30"],
    ]
    assert "\n    conv1d (Conv1D)" in text  # indented under its parents
    # As the model itself: its sub-layers are the rows, as for a Sequential.
    top = UserResidual(cj.Sequential([cj.Conv1D(3, 3, padding="same")]))
    text = cj.summary(top, (None, 8, 3), print_fn=lambda _: None)
    assert text == top.summary((None, 8, 3), print_fn=lambda _: None)
    assert [row.split()[:2] for row in text.splitlines()[2:-2]] == [
        ["sequential", "(Sequential)"],
        ["conv1d", "(Conv1D)"],
    ]
    assert "Total params: 30" in text


def test_shape_errors():
    with pytest.raises(
        ValueError,
        match=r"Residual needs equal shapes to add; got \[\(None, 8, 6\), "
        r"\(None, 8, 3\)\]\. Give the Residual a shortcut layer",
    ):
        cj.Residual(cj.Conv1D(6, 1)).init(jax.random.key(0), (None, 8, 3))
    with pytest.raises(ValueError, match=r"Residual needs equal shapes"):
        cj.Residual(cj.Conv1D(3, 3)).compute_output_shape((None, 8, 3))
    concat = cj.Parallel([cj.Conv1D(2, 3), cj.Conv1D(2, 1)], merge="concat")
    with pytest.raises(
        ValueError, match=r"Parallel needs equal shapes along every axis but -1"
    ):
        concat.compute_output_shape((None, 8, 3))
    with pytest.raises(ValueError, match=r"`axis`=3 is out of range"):
        cj.Parallel([cj.Conv1D(2, 1), cj.Conv1D(2, 1)], merge="concat",
                    axis=3).compute_output_shape((None, 8, 3))  # fmt: skip


def test_construction_errors():
    conv = cj.Conv1D(2, 1)
    with pytest.raises(TypeError, match=r"Sequential takes one list of layers; "
                       r"received 2 positional arguments"):  # fmt: skip
        cj.Sequential(conv, conv)
    with pytest.raises(TypeError, match=r"`layers` of Sequential must be a list"):
        cj.Sequential(conv)
    with pytest.raises(TypeError, match=r"Parallel takes one list of layers"):
        cj.Parallel(conv, conv)
    with pytest.raises(ValueError, match=r"Parallel needs two or more branches"):
        cj.Parallel([conv])
    with pytest.raises(ValueError, match=r"`merge` must be one of .*merge='sum'"):
        cj.Parallel([conv, conv], merge="sum")
    with pytest.raises(ValueError, match=r'merge="subtract" needs exactly two'):
        cj.Parallel([conv, conv, conv], merge="subtract")
    with pytest.raises(TypeError, match=r"`inner` of Residual \('relu', of type str\) "
                       r"is not a layer"):  # fmt: skip
        cj.Residual("relu")
    with pytest.raises(TypeError, match=r"`shortcut` of Residual .* is not a layer"):
        cj.Residual(conv, shortcut=jnp.ones(3))
    with pytest.raises(TypeError, match=r"is not a layer: it lacks nothing but is a "
                       r"class; pass an instance"):  # fmt: skip
        cj.Sequential([cj.Conv1D])
    with pytest.raises(TypeError, match=r"must be hashable"):
        cj.Sequential([_Unhashable()])
    with pytest.raises(TypeError, match=r"`function` of a Lambda layer must be "
                       r"callable"):  # fmt: skip
        cj.Lambda(3)
    with pytest.raises(ValueError, match=r"unique names; \['a'\]"):
        cj.Sequential([cj.Conv1D(2, 1, name="a"), cj.Conv1D(2, 1, name="a")])


class _Unhashable:
    __hash__ = None

    def init(self, key, s, *, dtype=jnp.float32):
        return {}

    def apply(self, p, x):
        return x

    def compute_output_shape(self, s):
        return s


def test_lambda_output_shapes_and_jit():
    flat = cj.Lambda(lambda v: v.reshape(v.shape[0], -1))
    assert flat.compute_output_shape((None, 4, 3)) == (None, 12)
    assert cj.Lambda(lambda v: v, output_shape=(7,)).compute_output_shape(
        (5, 4, 3)
    ) == (5, 7)
    assert cj.Lambda(jnp.tanh, output_shape=lambda s: s).compute_output_shape(
        (2, 3)
    ) == (2, 3)
    model = cj.Sequential([cj.Conv1D(2, 3), flat])
    params = model.init(jax.random.key(0), (None, 5, 1))
    x = normal(0, (2, 5, 1))
    assert_close(
        jax.jit(lambda m, p, v: m.apply(p, v))(model, params, x),
        model.apply(params, x),
    )
    with pytest.raises(ValueError, match="Lambda has no params"):
        flat.apply({"w": 1}, x)


def test_a_models_repr_is_indented_and_builds_it_again():
    def gated(d):
        return cj.Parallel(
            [cj.Conv1D(16, 2, dilation_rate=d, padding="causal", activation="tanh"),
             cj.Conv1D(16, 2, dilation_rate=d, padding="causal", activation="sigmoid")],
            merge="multiply", name=f"gated_{d}",
        )  # fmt: skip

    model = cj.Sequential([
        cj.Conv1D(16, 1),
        *(cj.Residual(cj.Sequential([gated(d), cj.Conv1D(16, 1)])) for d in (1, 2)),
        cj.Residual(cj.Conv1D(8, 3, padding="same"), shortcut=cj.Conv1D(8, 1)),
        cj.Parallel([cj.Conv1D(4, 1), cj.MaxPooling1D(1)], merge="concat", axis=-1),
        cj.GlobalAveragePooling1D(name="mean"),
    ], name="net")  # fmt: skip
    expected = """\
Sequential([
    Conv1D(16, 1),
    Residual(Sequential([
        Parallel([
            Conv1D(16, 2, padding='causal', activation='tanh'),
            Conv1D(16, 2, padding='causal', activation='sigmoid'),
        ], merge='multiply', name='gated_1'),
        Conv1D(16, 1),
    ])),
    Residual(Sequential([
        Parallel([
            Conv1D(16, 2, padding='causal', dilation_rate=2, activation='tanh'),
            Conv1D(16, 2, padding='causal', dilation_rate=2, activation='sigmoid'),
        ], merge='multiply', name='gated_2'),
        Conv1D(16, 1),
    ])),
    Residual(Conv1D(8, 3, padding='same'), shortcut=Conv1D(8, 1)),
    Parallel([Conv1D(4, 1), MaxPooling1D(pool_size=1)], merge='concat'),
    GlobalAveragePooling1D(name='mean'),
], name='net')"""
    assert repr(model) == str(model) == expected
    rebuilt = eval(expected, vars(cj))
    assert rebuilt == model and rebuilt.name == "net"
    assert rebuilt.layers[1].inner.layers[0].name == "gated_1"
    # A deep model stays readable: one layer a line, none of them long.
    deep = cj.Sequential([cj.Residual(cj.Sequential([gated(2**i), cj.Conv1D(16, 1)]))
                          for i in range(10)])  # fmt: skip
    lines = repr(deep).splitlines()
    assert len(lines) == 1 + 10 * 7 + 1 and max(map(len, lines)) <= 88
    assert eval(repr(deep), vars(cj)) == deep
