"""Training: regularizers as loss terms, constraints as projections after each
optax update, and the jit-compiled train and eval steps that tie them together.

Which weight a layer's regularizer or constraint applies to follows Keras's
attribute names: the param ``"kernel"`` uses ``kernel_regularizer`` /
``kernel_constraint``, ``"bias"`` uses ``bias_*``, and ``"<name>_kernel"``
(such as ``"depthwise_kernel"``) uses ``<name>_regularizer`` /
``<name>_constraint``. A layer's ``activity_regularizer`` penalises its output,
divided by the number of examples (Keras 3 divides by the batch size).

Every function here walks a model to any depth through the composites'
``sublayers()`` (:mod:`conv1djax.protocol`), and first checks that nothing
it holds would be silently left out.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from conv1djax import constraints, protocol, regularizers
from conv1djax._typing import LayerLike, Params
from conv1djax.protocol import weight_attribute


def _objects(
    layer: LayerLike, own: Mapping[str, Any], kind: str
) -> dict[str, Callable[..., Any]]:
    """``{weight name: regularizer or constraint}`` for one layer's own
    weights."""
    found: dict[str, Callable[..., Any]] = {}
    for weight in own:
        obj = getattr(layer, weight_attribute(layer, weight, kind), None)
        if obj is not None:
            found[weight] = obj
    return found


def _wide(x: ArrayLike) -> jax.Array:
    """``x`` in at least float32, so a penalty on bfloat16 or float16 values
    (a mixed-precision layer's output) is computed and summed in float32."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.floating) and jnp.finfo(x.dtype).bits < 32:
        return x.astype(jnp.float32)
    return x


def _term_name(layer: LayerLike, weight: str, kind: str, path: str) -> str:
    """How errors name a weight's term: "kernel_regularizer of Conv1D", with
    the params path below the top."""
    name = f"{weight_attribute(layer, weight, kind)} of {type(layer).__name__}"
    return name if path == "params" else f"{name} at {path}"


def regularization_loss(model_or_layer: LayerLike, params: Params) -> jax.Array:
    """The sum of every weight regularizer's penalty, at every depth: on
    the trainable weights, as Keras 3 sums them (a frozen layer's or a
    state's regularizer counts for nothing).

    Args:
      model_or_layer: a layer or a composite (:class:`~conv1djax.Sequential`,
        :class:`~conv1djax.Residual`, a user's; see
        :mod:`conv1djax.protocol`).
      params: its params.

    Returns:
      A float32 scalar (0.0 when nothing is regularized); bfloat16 and
          float16 weights are penalised in float32.

    Raises:
      ValueError: when params do not match the model, a regularizer
        returns a non-scalar, or a layer holds regularized layers it does not
        declare.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(2, 3, kernel_regularizer=cj.regularizers.L2(0.5))
    >>> float(cj.regularization_loss(layer, {"kernel": jnp.ones((3, 1, 2)),
    ...                                      "bias": jnp.ones(2)}))
    3.0
    """
    protocol.check_model(model_or_layer)
    total = jnp.zeros((), jnp.float32)
    for layer, own, path, frozen in protocol.frozen_walk(model_or_layer, params):
        trainable = {k: v for k, v in own.items() if k not in frozen}
        for weight, reg in _objects(layer, trainable, "regularizer").items():
            name = _term_name(layer, weight, "regularizer", path)
            penalty = regularizers.validate_penalty(reg(_wide(own[weight])), name)
            total = total + jnp.asarray(penalty, jnp.float32)
    return total


def apply_constraints(model_or_layer: LayerLike, params: Params) -> Params:
    """Projects params with every weight constraint, at every depth.

    Args:
      model_or_layer: a layer or a composite.
      params: its params.

    Returns:
      params of the same structure, constrained weights projected.

    Raises:
      ValueError: when a constraint changes a weight's shape or dtype,
        params do not match the model, or a layer holds constrained layers it
        does not declare.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(1, 2, use_bias=False, kernel_constraint="non_neg")
    >>> cj.apply_constraints(layer, {"kernel": jnp.array([[[-1.0]], [[2.0]]])})
    {'kernel': Array([[[0.]],
    <BLANKLINE>
           [[2.]]], dtype=float32)}
    """
    protocol.check_model(model_or_layer)

    def project(layer: LayerLike, own: dict[str, Any], path: str) -> dict[str, Any]:
        projected = dict(own)
        for weight, constraint in _objects(layer, own, "constraint").items():
            name = _term_name(layer, weight, "constraint", path)
            projected[weight] = constraints.validate_projection(
                own[weight], constraint(own[weight]), name
            )
        return projected

    return protocol.map_own(project, model_or_layer, params)


class _Run:
    """Runs a model through ``call`` at every depth, collecting each
    layer's activity penalty with its output's shape, and, in training mode
    (``training``), running each layer's ``apply_training`` with its own key
    and collecting the state it returns updated. The number of batch axes is
    the input's rank less the first convolution's spatial rank and channel
    axis (batch axes are kept by every layer)."""

    def __init__(
        self, num_batch: int | None, *, training: bool = False,
        key: jax.Array | None = None,
    ) -> None:  # fmt: skip
        self.num_batch = num_batch
        self.training = training
        self.key = key
        self.terms: list[tuple[jax.Array, tuple[int, ...]]] = []
        self.updates: dict[str, dict[str, Any]] = {}

    def run(
        self, layer: LayerLike, params: Params, x: ArrayLike, path: str,
        frozen: bool = False,
    ) -> Any:  # fmt: skip
        subs = protocol.sublayers(layer)
        # Below a frozen composite every layer runs as frozen (Keras sets each
        # layer's `trainable`): a BatchNormalization then trains as inference.
        frozen = frozen or getattr(layer, "trainable", True) is False
        if (
            frozen and not subs and dataclasses.is_dataclass(layer)
            and getattr(layer, "trainable", None) is True
        ):  # fmt: skip
            layer = dataclasses.replace(layer, trainable=False)  # type: ignore[type-var]
        own_training = self.training and callable(
            getattr(layer, "apply_training", None)
        )
        # A layer whose apply_training takes `call` (a wrapper) runs its
        # sub-layers through it in training too.
        train_call = own_training and _takes_call(layer.apply_training)
        if subs and protocol.takes_call(layer) and (train_call or not own_training):
            called: list[Any] = []

            def call(sub: LayerLike, p: Params, v: ArrayLike) -> Any:
                keys = [k for k, s in subs.items() if s is sub]
                key = next(
                    (k for k in keys if k not in called), keys[0] if keys else None
                )
                called.extend(keys)
                return self.run(sub, p, v, f"{path}[{key!r}]", frozen)

            if own_training:
                y = self._train_call(layer, params, x, path, call=call)
            else:
                y = layer.apply(params, x, call=call)
            for key, sub in subs.items():
                if key not in called and protocol.has_terms(sub, activity_only=True):
                    raise ValueError(
                        f"{type(layer).__name__}.apply did not run its sub-layer "
                        f"{key!r} ({type(sub).__name__}) through `call`, so its "
                        "activity regularizer would be lost: run it as "
                        "`call(layer, params[key], x)`."
                    )
        else:
            if self.training and subs and not own_training:
                for key, sub in subs.items():
                    if protocol.has_training_behaviour(sub):
                        raise ValueError(
                            f"{type(layer).__name__}.apply takes no `call` keyword, "
                            f"so its sub-layer {key!r} ({type(sub).__name__}) cannot "
                            "run in training mode (dropout, batch statistics). "
                            "Define `apply(self, params, x, *, call=cj.call_layer)` "
                            "and run each sub-layer as `call(layer, params[key], x)`."
                        )
            rank = getattr(layer, "rank", None)
            if self.num_batch is None and rank is not None and not subs:
                self.num_batch = max(jnp.ndim(x) - rank - 1, 1)
            if own_training:
                y = self._train_call(layer, params, x, path)
            else:
                y = layer.apply(params, x)
        reg = getattr(layer, "activity_regularizer", None)
        if reg is not None:
            name = f"activity_regularizer of {type(layer).__name__}"
            penalty = regularizers.validate_penalty(reg(_wide(y)), name)
            self.terms.append((jnp.asarray(penalty, jnp.float32), jnp.shape(y)))
        return y

    def _train_call(
        self, layer: LayerLike, params: Params, x: ArrayLike, path: str,
        call: Any = None,
    ) -> Any:  # fmt: skip
        """``layer.apply_training`` with the layer's own key (and ``call``,
        when given); its updated state, checked, kept for :meth:`updated`."""
        key = protocol.layer_key(self.key, path)
        if call is None:
            result = layer.apply_training(params, x, key=key)
        else:
            result = layer.apply_training(params, x, key=key, call=call)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"{type(layer).__name__}.apply_training must return (y, updates), "
                f"updates a dict of its state's new values; received {result!r:.80}."
            )
        y, updates = result
        own, _ = protocol.split_params(layer, params, path)
        self.updates[path] = _checked_updates(layer, own, updates, path)
        return y

    def updated(self, model: LayerLike, params: Params) -> Params:
        """``params`` with the state each layer returned updated."""

        def put(layer: LayerLike, own: dict[str, Any], path: str) -> dict[str, Any]:
            return {**own, **self.updates.get(path, {})}

        return protocol.map_own(put, model, params)

    def total(self) -> jax.Array:
        # Keras 3 divides by the batch size; with several batch axes, by the
        # number of examples.
        num_batch = self.num_batch or 1
        total = jnp.zeros((), jnp.float32)
        for penalty, shape in self.terms:
            total = total + penalty / max(math.prod(shape[:num_batch]), 1)
        return total


def _takes_call(fn: Any) -> bool:
    """Whether ``fn`` (an ``apply_training``) accepts the ``call`` keyword."""
    try:
        return "call" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _checked_updates(
    layer: LayerLike, own: Mapping[str, Any], updates: Any, path: str
) -> dict[str, Any]:
    """A training-mode call's new state: only the layer's non-trainable
    weights, each of its old shape, cast to its old dtype (and out of the
    gradient: state is not trained)."""
    cls = type(layer).__name__
    if not isinstance(updates, Mapping):
        raise TypeError(
            f"{cls}.apply_training must return (y, updates) with updates a dict; "
            f"received updates of type {type(updates).__name__}."
        )
    state = protocol.non_trainable(layer, own)
    checked = {}
    for name, value in updates.items():
        if name not in state:
            raise ValueError(
                f"{cls}.apply_training at {path} updated {name!r}, which is not "
                f"one of its non-trainable weights {sorted(state)} (list state in "
                "`non_trainable_weights()`)."
            )
        old = own[name]
        if jnp.shape(value) != jnp.shape(old):
            raise ValueError(
                f"{cls}.apply_training at {path} returned {name!r} of shape "
                f"{jnp.shape(value)}; the weight has shape {jnp.shape(old)}."
            )
        checked[name] = jax.lax.stop_gradient(jnp.asarray(value).astype(old.dtype))
    return checked


def apply_with_activity(
    model_or_layer: LayerLike,
    params: Params,
    x: ArrayLike,
    *,
    rank: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Runs the model and sums every layer's activity penalty, at every
    depth (sub-layers run through the composites' ``call``).

    Each penalty is computed in at least float32 (on a mixed-precision
    layer's bfloat16 output too) and divided by the number of examples in its
    layer's output,
    as Keras 3 divides by the batch size: the product of the batch axes,
    which every layer keeps. Their count is the input's rank less the
    spatial ``rank`` and the channel axis; by default, the ``rank`` of the
    first layer that has one (the convolutions and pooling layers do), else
    one batch axis.

    Args:
      model_or_layer: a layer or a composite.
      params: its params.
      x: an input.
      rank: the input's spatial rank, when the default does not fit.

    Returns:
      ``(y, activity_loss)``.

    Raises:
      ValueError: when a composite does not pass a sub-layer with an
        activity regularizer through ``call`` (see :mod:`conv1djax.protocol`).

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(2, 1, use_bias=False,
    ...                   activity_regularizer=cj.regularizers.L1(0.1))
    >>> params = {"kernel": jnp.ones((1, 1, 2))}
    >>> y, activity_loss = cj.apply_with_activity(layer, params, jnp.ones((4, 3, 1)))
    >>> y.shape  # 0.1 * sum(|y|) = 2.4, over 4 examples
    (4, 3, 2)
    >>> round(float(activity_loss), 4)
    0.6
    """
    protocol.check_model(model_or_layer)
    num_batch = None if rank is None else max(jnp.ndim(x) - rank - 1, 1)
    run = _Run(num_batch)
    y = run.run(model_or_layer, params, x, "params")
    return y, run.total()


def apply_training(
    model_or_layer: LayerLike,
    params: Params,
    x: ArrayLike,
    *,
    key: jax.Array | None = None,
) -> tuple[Any, Params]:
    """Runs the model in training mode: ``(y, params)``, the params with the
    state that training updates (moving statistics, say) replaced.

    ``model.apply(params, x)`` is inference (Keras's ``training=False``): it
    reads the state and draws nothing. In training mode each layer that
    has an ``apply_training(params, x, *, key) -> (y, updates)`` runs it
    instead, with its own key (``key`` folded with the layer's params path,
    so every layer draws its own bits); the others run ``apply``. State is
    part of the params, under the layer's weight names, listed by its
    ``non_trainable_weights()``: ``init`` makes it, ``cj.save`` and interop
    carry it, and the train step never hands it to the optimizer.

    Args:
      model_or_layer: a layer or a composite (sub-layers run through the
        composites' ``call``).
      params: its params.
      x: an input.
      key: a PRNG key; needed when a layer draws random bits in training.

    Returns:
      ``(y, params)``: the training-mode output, and the params with every
          updated state in place (the same structure and dtypes).

    Raises:
      ValueError: for a layer that draws random bits and no ``key``, or a
        layer updating a weight that is not its state.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(2, 3, padding="same")])
    >>> params = model.init(jax.random.key(0), (None, 8, 1))
    >>> x = jnp.ones((4, 8, 1))
    >>> y, new_params = cj.apply_training(model, params, x, key=jax.random.key(1))
    >>> bool(jnp.array_equal(y, model.apply(params, x)))  # no training behaviour
    True
    """
    protocol.check_model(model_or_layer)
    run = _Run(None, training=True, key=key)
    y = run.run(model_or_layer, params, x, "params")
    return y, run.updated(model_or_layer, params)


def _check_scalar_loss(value: Any, loss_fn: Callable[..., Any]) -> jax.Array:
    shape = jnp.shape(value)
    if shape != ():
        raise ValueError(
            f"loss_fn must return a scalar; {getattr(loss_fn, '__name__', loss_fn)!r} "
            f"returned an array of shape {shape}. Reduce it, e.g. with jnp.mean."
        )
    return value


def _objective(
    model: LayerLike,
    loss_fn: Callable[..., Any],
    params: Params,
    x: ArrayLike,
    y_true: Any,
    *,
    training: bool = False,
    key: jax.Array | None = None,
) -> tuple[jax.Array, tuple[dict[str, jax.Array], Params]]:
    """The total objective and ``(its parts, the params with the state a
    training-mode run updated)``."""
    run = _Run(None, training=training, key=key)
    y_pred = run.run(model, params, x, "params")
    activity = run.total()
    task = _check_scalar_loss(loss_fn(y_pred, y_true), loss_fn)
    reg = regularization_loss(model, params)
    total = task + reg + activity
    parts = {"task_loss": task, "regularization_loss": reg, "activity_loss": activity}
    return total, (parts, run.updated(model, params) if training else params)


def _has_none(tree: Params) -> bool:
    return any(
        leaf is None for leaf in jax.tree.leaves(tree, is_leaf=lambda v: v is None)
    )


def _fill(partial: Params, full: Params) -> Params:
    """``partial`` with its None entries taken from ``full``."""
    return jax.tree.map(
        lambda p, f: f if p is None else p, partial, full, is_leaf=lambda v: v is None
    )


def _check_opt_state(
    optimizer: optax.GradientTransformation, opt_state: Any, train: Params
) -> None:
    """Raises ``ValueError`` when ``opt_state`` was made for the whole params
    of a model whose non-trainable weights the optimizer does not get."""
    expected = jax.eval_shape(optimizer.init, train)
    if str(jax.tree.structure(opt_state)) != str(jax.tree.structure(expected)):
        raise ValueError(
            "`opt_state` does not fit the trainable params: this model has "
            "non-trainable weights (state, or frozen layers), which the optimizer "
            "does not get. Make the optimizer state with "
            "`optimizer.init(cj.trainable_params(model, params))`."
        )


def make_train_step(
    model: LayerLike,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[..., Any],
) -> Callable[..., tuple[Params, Any, jax.Array]]:
    """Builds a jit-compiled training step.

    The step runs the model in training mode (:func:`apply_training`: dropout
    draws, batch statistics are used and the moving ones updated), computes
    ``loss = loss_fn(y_pred, y_true) + regularization losses + activity
    losses``, its gradient with respect to the trainable weights, the optax
    update, then projects the updated params with every constraint. The
    non-trainable weights (state, frozen layers; see
    :func:`conv1djax.protocol.non_trainable`) take the values the training
    run left in them, whatever the optimizer would do (weight decay
    included).

    Args:
      model: a layer or a composite (any depth; :mod:`conv1djax.protocol`).
      optimizer: any optax ``GradientTransformation`` (chains and schedules
        included).
      loss_fn: ``(y_pred, y_true) -> scalar``.

    Returns:
      ``step(params, opt_state, x, y_true, key=None) -> (params, opt_state,
          loss)``, compiled once per input shape; ``loss`` is the total
          objective before the update; ``key``, a PRNG key, is needed when a
          layer draws random bits in training (pass a new one every step).

    Raises:
      TypeError: for a model that is not a layer or an optimizer without
        init/update.
      ValueError: for a model holding regularized or constrained layers it
        does not declare (see :mod:`conv1djax.protocol`).
      ValueError (when the step is traced): for a non-scalar loss, params
        that do not match the model, or a constraint that changes a shape.

    >>> import jax, jax.numpy as jnp, optax, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(1, 3, padding="same")])
    >>> params = model.init(jax.random.key(0), (4, 16, 1))
    >>> opt = optax.sgd(0.1)
    >>> step = cj.make_train_step(model, opt, lambda p, t: jnp.mean((p - t) ** 2))
    >>> x = jnp.ones((4, 16, 1))
    >>> params, opt_state, loss = step(params, opt.init(params), x, x)
    >>> loss.shape
    ()
    """
    protocol.check_model(model)
    if not (
        callable(getattr(optimizer, "init", None))
        and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(
            f"`optimizer` must be an optax GradientTransformation; received {optimizer!r}."
        )
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable; received {loss_fn!r}.")

    def step(
        params: Params,
        opt_state: Any,
        x: ArrayLike,
        y_true: Any,
        key: jax.Array | None = None,
    ) -> tuple[Params, Any, jax.Array]:
        train = protocol.trainable_params(model, params)
        if _has_none(train):
            _check_opt_state(optimizer, opt_state, train)

        def objective(train: Params) -> tuple[jax.Array, tuple[Any, Params]]:
            return _objective(
                model, loss_fn, _fill(train, params), x, y_true, training=True,
                key=key,
            )  # fmt: skip

        (loss, (_, updated)), grads = jax.value_and_grad(objective, has_aux=True)(train)
        updates, opt_state = optimizer.update(grads, opt_state, train)
        trained = _fill(optax.apply_updates(train, updates), updated)
        # Constraints project the trainable weights only (Keras's optimizer
        # applies them to what it trains); the others keep what the
        # training-mode run left in them: updated state, or a frozen value.
        constrained = protocol.trainable_params(
            model, apply_constraints(model, trained)
        )
        return _fill(constrained, updated), opt_state, loss

    return jax.jit(step)


def make_eval_step(
    model: LayerLike, loss_fn: Callable[..., Any]
) -> Callable[..., dict[str, jax.Array]]:
    """Builds a jit-compiled evaluation step, the train step's objective
    without the update.

    Returns:
      ``evaluate(params, x, y_true) -> dict`` with ``"loss"`` (the total
          objective the train step reports), ``"task_loss"``,
          ``"regularization_loss"`` and ``"activity_loss"``.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(1, 3, padding="same",
    ...                                  kernel_regularizer=cj.regularizers.L2(0.01))])
    >>> params = model.init(jax.random.key(0), (4, 16, 1))
    >>> evaluate = cj.make_eval_step(model, lambda p, t: jnp.mean((p - t) ** 2))
    >>> x = jnp.ones((4, 16, 1))
    >>> metrics = evaluate(params, x, x)
    >>> sorted(metrics)
    ['activity_loss', 'loss', 'regularization_loss', 'task_loss']
    >>> bool(jnp.allclose(metrics["loss"],
    ...                   metrics["task_loss"] + metrics["regularization_loss"]))
    True
    """
    protocol.check_model(model)

    def evaluate(params: Params, x: ArrayLike, y_true: Any) -> dict[str, jax.Array]:
        total, (parts, _) = _objective(model, loss_fn, params, x, y_true)
        return {"loss": total, **parts}

    return jax.jit(evaluate)


def _leaf_paths(params: Params) -> list[str]:
    return [
        jax.tree_util.keystr(path)
        for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
    ]


class GradCheckReport:
    """The result of :func:`check_gradients`: one row per checked input.

    ``report.ok`` says whether every check passed; ``report.rows`` holds
    ``(input name, passed, message)``, and ``print(report)`` shows them as a
    table.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(2, 3)
    >>> params = layer.init(jax.random.key(0), (1, 6, 2))
    >>> report = cj.check_gradients(layer, params, jnp.ones((1, 6, 2)), order=1)
    >>> report.ok
    True
    >>> [name for name, passed, message in report.rows]
    ['x', "['bias']", "['kernel']"]
    """

    def __init__(
        self,
        rows: Sequence[tuple[str, bool, str]],
        dtype: str,
        order: int,
        modes: Sequence[str],
    ) -> None:
        self.rows = list(rows)
        self.dtype = dtype
        self.order = order
        self.modes = tuple(modes)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.rows)

    def __str__(self) -> str:
        width = max(len(name) for name, _, _ in self.rows)
        head = (
            f"gradient check ({self.dtype}, order {self.order}, modes "
            f"{', '.join(self.modes)}): {'all passed' if self.ok else 'FAILED'}"
        )
        lines = [head]
        for name, passed, message in self.rows:
            lines.append(f"  {name:<{width}}  {'ok' if passed else 'FAIL'}")
            if not passed:
                lines += ["      " + line for line in message.strip().splitlines()[:8]]
        return "\n".join(lines)

    __repr__ = __str__


def check_gradients(
    model_or_layer: LayerLike,
    params: Params,
    x: ArrayLike,
    *,
    order: int = 2,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    raise_on_failure: bool = True,
    training: bool = False,
    key: jax.Array | None = None,
) -> GradCheckReport:
    """Checks a layer's or model's derivatives against finite differences.

    Wraps ``jax.test_util.check_grads`` on ``apply``, one input at a time
    (``x`` and then every weight, the others held fixed), in float64 where
    the backend supports it (so tolerances can be tight), else in float32.

    Args:
      model_or_layer: a layer or a composite.
      params: its params.
      x: an input.
      order: highest derivative order to check.
      modes: ``"fwd"`` and/or ``"rev"``.
      atol, rtol, eps: passed to ``check_grads`` (its defaults by dtype).
      raise_on_failure: raise ``AssertionError`` with the report when any
        check fails; else return the report.
      training: check the training-mode output (:func:`apply_training`)
        instead of ``apply``'s; with a fixed ``key``, a layer's random draws
        are fixed, so its derivatives are those of one draw.
      key: the PRNG key of the training-mode run.

    Returns:
      A :class:`GradCheckReport`: ``report.ok`` and a printable table.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(2, 3, activation="tanh")
    >>> params = layer.init(jax.random.key(0), (1, 6, 2))
    >>> print(cj.check_gradients(layer, params, jnp.ones((1, 6, 2))))
    gradient check (float64, order 2, modes fwd, rev): all passed
      x           ok
      ['bias']    ok
      ['kernel']  ok
    """
    from jax.test_util import check_grads

    def run(params: Params, x: jax.Array) -> Any:
        if training:
            return apply_training(model_or_layer, params, x, key=key)[0]
        return model_or_layer.apply(params, x)

    use_x64 = jax.default_backend() != "tpu"
    dtype = jnp.float64 if use_x64 else jnp.float32
    rows: list[tuple[str, bool, str]] = []
    with jax.enable_x64(use_x64):
        params = jax.tree.map(lambda p: jnp.asarray(p, dtype), params)
        x = jnp.asarray(x, dtype)
        leaves, treedef = jax.tree.flatten(params)
        names = _leaf_paths(params)
        inputs = [("x", None)] + list(zip(names, range(len(leaves)), strict=True))
        for name, index in inputs:
            if index is None:
                fn, arg = (lambda v: run(params, v)), x
            else:

                def fn(v: jax.Array, index: int = index) -> jax.Array:
                    new = list(leaves)
                    new[index] = v
                    return run(jax.tree.unflatten(treedef, new), x)

                arg = leaves[index]
            try:
                check_grads(
                    fn, (arg,), order=order, modes=modes, atol=atol, rtol=rtol, eps=eps
                )
                rows.append((name, True, ""))
            except AssertionError as e:
                rows.append((name, False, str(e)))
    report = GradCheckReport(rows, jnp.dtype(dtype).name, order, modes)
    if raise_on_failure and not report.ok:
        raise AssertionError(str(report))
    return report
