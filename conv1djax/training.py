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
    """The sum of every weight regularizer's penalty, at every depth.

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
    for layer, own, path in protocol.walk(model_or_layer, params):
        for weight, reg in _objects(layer, own, "regularizer").items():
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


class _ActivityCollector:
    """Runs a model through ``call`` at every depth, collecting each
    layer's activity penalty with its output's shape; the number of batch
    axes is the input's rank less the first convolution's spatial rank and
    channel axis (batch axes are kept by every layer)."""

    def __init__(self, num_batch: int | None) -> None:
        self.num_batch = num_batch
        self.terms: list[tuple[jax.Array, tuple[int, ...]]] = []

    def run(self, layer: LayerLike, params: Params, x: ArrayLike) -> Any:
        subs = protocol.sublayers(layer)
        if subs and protocol.takes_call(layer):
            called: set[Any] = set()

            def call(sub: LayerLike, p: Params, v: ArrayLike) -> Any:
                called.update(k for k, s in subs.items() if s is sub)
                return self.run(sub, p, v)

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
            rank = getattr(layer, "rank", None)
            if self.num_batch is None and rank is not None and not subs:
                self.num_batch = max(jnp.ndim(x) - rank - 1, 1)
            y = layer.apply(params, x)
        reg = getattr(layer, "activity_regularizer", None)
        if reg is not None:
            name = f"activity_regularizer of {type(layer).__name__}"
            penalty = regularizers.validate_penalty(reg(_wide(y)), name)
            self.terms.append((jnp.asarray(penalty, jnp.float32), jnp.shape(y)))
        return y

    def total(self) -> jax.Array:
        # Keras 3 divides by the batch size; with several batch axes, by the
        # number of examples.
        num_batch = self.num_batch or 1
        total = jnp.zeros((), jnp.float32)
        for penalty, shape in self.terms:
            total = total + penalty / max(math.prod(shape[:num_batch]), 1)
        return total


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
    collector = _ActivityCollector(num_batch)
    y = collector.run(model_or_layer, params, x)
    return y, collector.total()


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
) -> tuple[jax.Array, dict[str, jax.Array]]:
    y_pred, activity = apply_with_activity(model, params, x)
    task = _check_scalar_loss(loss_fn(y_pred, y_true), loss_fn)
    reg = regularization_loss(model, params)
    total = task + reg + activity
    return total, {
        "task_loss": task,
        "regularization_loss": reg,
        "activity_loss": activity,
    }


def make_train_step(
    model: LayerLike,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[..., Any],
) -> Callable[..., tuple[Params, Any, jax.Array]]:
    """Builds a jit-compiled training step.

    The step computes ``loss = loss_fn(y_pred, y_true) + regularization losses
    + activity losses``, its gradient, the optax update, then projects the
    updated params with every constraint.

    Args:
      model: a layer or a composite (any depth; :mod:`conv1djax.protocol`).
      optimizer: any optax ``GradientTransformation`` (chains and schedules
        included).
      loss_fn: ``(y_pred, y_true) -> scalar``.

    Returns:
      ``step(params, opt_state, x, y_true) -> (params, opt_state, loss)``,
          compiled once per input shape; ``loss`` is the total objective before
          the update.

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
        params: Params, opt_state: Any, x: ArrayLike, y_true: Any
    ) -> tuple[Params, Any, jax.Array]:
        grad_fn = jax.value_and_grad(_objective, argnums=2, has_aux=True)
        (loss, _), grads = grad_fn(model, loss_fn, params, x, y_true)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return apply_constraints(model, params), opt_state, loss

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
        total, parts = _objective(model, loss_fn, params, x, y_true)
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
                fn, arg = (lambda v: model_or_layer.apply(params, v)), x
            else:

                def fn(v: jax.Array, index: int = index) -> jax.Array:
                    new = list(leaves)
                    new[index] = v
                    return model_or_layer.apply(jax.tree.unflatten(treedef, new), x)

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
