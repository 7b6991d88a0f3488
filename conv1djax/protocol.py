"""The layer protocol: what a layer is, how a composite declares its
sub-layers and where their params live, and the walks that training,
summaries and checks make over a model of any depth.

A **layer** is any hashable object with

- ``init(key, input_shape, *, dtype=jnp.float32) -> params`` (``dtype`` is
  the params' dtype; the library's specs default to ``dtype=None``, "the
  layer's own": its ``param_dtype`` or policy, else float32; composites pass a
  ``dtype`` on to their sub-layers only when one is given, so a user's layer
  never receives None from them),
- ``apply(params, x) -> y``,
- ``compute_output_shape(input_shape) -> tuple``,

and optionally ``count_params(input_shape)``, ``check_own_params(params,
path)`` (raises ``ValueError`` for own params that do not fit the layer;
:func:`check_params` calls it, so ``cj.save`` and ``cj.load`` check them), a
``name``, a spatial ``rank`` and its **training terms**: an ``activity_regularizer`` (a penalty on its
output) and, per weight, a regularizer and a constraint by Keras's attribute
names (:func:`weight_attribute`: the param ``"kernel"`` uses
``kernel_regularizer`` / ``kernel_constraint``). A leaf layer's params are a
dict of arrays (``{}`` for none).

A **composite** layer holds other layers. It also has

- ``sublayers() -> Mapping[key, layer]``: each sub-layer, keyed by where its
  params live: ``params[key]`` (int keys into a list, as
  :class:`~conv1djax.Sequential`'s; str keys into a dict, as
  :class:`~conv1djax.Residual`'s). Entries of a dict not named there are the
  composite's own weights, with training terms of their own;
- ``apply(params, x, *, call=call_layer)``, which runs every sub-layer as
  ``call(sub, params[key], x)``. Training passes its own ``call`` to collect
  the sub-layers' activity penalties; anything else calls
  :func:`call_layer`, which is ``sub.apply(params, x)``.

**State and randomness** (optional; :func:`conv1djax.apply_training`):
a layer's state is part of its params, the names listed by
``non_trainable_weights()`` (a layer whose ``trainable`` attribute is False
has all of its weights frozen: :func:`non_trainable`); ``apply`` is
inference, and ``apply_training(params, x, *, key) -> (y, updates)`` the
training-mode call, ``updates`` the state's new values, ``key`` the layer's
own (:func:`layer_key`; :func:`require_key` refuses None clearly).
**Streaming** (optional): the methods of :mod:`conv1djax.stream_contract`.

Nothing is silently lost: a layer whose attributes hold layers with training
terms that ``sublayers()`` does not declare, or a composite whose ``apply``
takes no ``call`` while a sub-layer has an activity regularizer, is a
``ValueError`` as soon as a train step, an eval step or a penalty is built
from it (:func:`check_model`). Subclassing :class:`Layer` (optional) gives a
frozen dataclass a Keras-style ``name``, registration as a static pytree (so
a spec can be an argument of ``jax.jit`` without ``static_argnums``),
``count_params`` and ``summary``.

>>> import jax, conv1djax as cj
>>> model = cj.Sequential([cj.Conv1D(4, 3, padding="same"),
...                        cj.Residual(cj.Conv1D(4, 3, padding="same"))])
>>> params = model.init(jax.random.key(0), (None, 16, 4))
>>> list(cj.protocol.sublayers(model))
[0, 1]
>>> [path for layer, own, path in cj.protocol.walk(model, params)]
['params', 'params[0]', 'params[1]', "params[1]['inner']"]
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from conv1djax._typing import LayerLike, Params, Shape, ShapeLike

_LAYER_METHODS = ("init", "apply", "compute_output_shape")


def weight_attribute(layer: LayerLike, weight: str, kind: str) -> str:
    """The attribute of ``layer`` holding the ``kind`` ("initializer",
    "regularizer", "constraint") of its param ``weight``, by Keras's names:
    ``"kernel"`` -> ``kernel_<kind>``, ``"depthwise_kernel"`` ->
    ``depthwise_<kind>``; a layer's ``_WEIGHT_PREFIXES`` overrides the rule
    (a depthwise layer's ``"kernel"`` uses ``depthwise_<kind>``, as in
    Keras)."""
    prefixes = getattr(layer, "_WEIGHT_PREFIXES", {})
    if weight in prefixes:
        return f"{prefixes[weight]}_{kind}"
    base = weight[: -len("_kernel")] if weight.endswith("_kernel") else weight
    return f"{base}_{kind}"


def call_layer(layer: LayerLike, params: Params, x: ArrayLike) -> jax.Array:
    """Runs ``layer.apply(params, x)``: the default ``call`` of a
    composite's ``apply``.

    A ``call`` of one's own sees every sub-layer a composite runs:

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(4, 3, activation="relu"),
    ...                        cj.MaxPooling1D(2)])
    >>> params = model.init(jax.random.key(0), (None, 16, 2))
    >>> x = jnp.ones((1, 16, 2))
    >>> seen = []
    >>> def call(layer, params, x):
    ...     seen.append(type(layer).__name__)
    ...     return cj.call_layer(layer, params, x)
    >>> y = model.apply(params, x, call=call)
    >>> seen
    ['Conv1D', 'MaxPooling1D']
    >>> bool(jnp.array_equal(y, model.apply(params, x)))
    True
    """
    return layer.apply(params, x)


def is_layer(obj: object) -> bool:
    """Whether ``obj`` has a layer's three methods (a class does not count)."""
    return not isinstance(obj, type) and all(
        callable(getattr(obj, m, None)) for m in _LAYER_METHODS
    )


def check_layer(layer: object, where: str) -> None:
    """Raises ``TypeError`` for an object that is not a hashable layer;
    ``where`` says which argument it is ("`layers[2]` of Sequential")."""
    if not is_layer(layer):
        missing = [m for m in _LAYER_METHODS if not callable(getattr(layer, m, None))]
        raise TypeError(
            f"{where} ({layer!r}, of type {type(layer).__name__}) is not a layer: "
            f"it lacks {', '.join(missing) or 'nothing but is a class; pass an instance'}"
            ". A layer needs init, apply and compute_output_shape, as "
            "cj.Conv1D and cj.Activation have."
        )
    try:
        hash(layer)
    except TypeError:
        raise TypeError(
            f"{where} ({layer!r}) must be hashable (a frozen dataclass, say), so "
            "that a model can be a static argument of jax.jit."
        ) from None


def check_name(name: object) -> str | None:
    """A layer ``name``: None (named by its class in summaries) or a
    non-empty str without "/", as Keras requires."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(
            f"`name` must be a str or None; received {name!r} of type "
            f"{type(name).__name__}."
        )
    if not name or "/" in name:
        raise ValueError(
            f"`name` must be non-empty and contain no '/'; received {name!r}."
        )
    return name


def sublayers(layer: LayerLike) -> dict[Any, Any]:
    """``{key: sub-layer}`` that ``layer`` declares (``{}`` for a leaf).

    Raises:
      TypeError: when ``sublayers()`` returns anything but a mapping of
        layers.
    """
    declare = getattr(layer, "sublayers", None)
    if not callable(declare):
        return {}
    subs = declare()
    if not isinstance(subs, Mapping):
        raise TypeError(
            f"{type(layer).__name__}.sublayers() must return a dict of "
            f"{{params key: layer}}; received {type(subs).__name__}."
        )
    for key, sub in subs.items():
        check_layer(sub, f"sub-layer {key!r} of {type(layer).__name__}")
    return dict(subs)


def takes_call(layer: LayerLike) -> bool:
    """Whether ``layer.apply`` accepts the ``call`` keyword."""
    try:
        parameters = inspect.signature(layer.apply).parameters
    except (TypeError, ValueError):
        return False
    return "call" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _attributes(layer: LayerLike) -> dict[str, Any]:
    if dataclasses.is_dataclass(layer):
        return {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
    return dict(getattr(layer, "__dict__", {}))


def own_terms(layer: LayerLike) -> dict[str, Any]:
    """``{attribute: object}`` for the layer's own activity regularizer and
    weight regularizers and constraints that are set."""
    return {
        name: value
        for name, value in _attributes(layer).items()
        if value is not None
        and (name.endswith("_regularizer") or name.endswith("_constraint"))
    }


def _held_layers(layer: LayerLike) -> Iterator[tuple[str, Any]]:
    """Layers held in ``layer``'s attributes, directly or in a list, tuple
    or dict: ``(where, layer)``."""
    for name, value in _attributes(layer).items():
        if is_layer(value):
            yield name, value
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for i, item in enumerate(value):
                if is_layer(item):
                    yield f"{name}[{i}]", item
        elif isinstance(value, Mapping):
            for k, item in value.items():
                if is_layer(item):
                    yield f"{name}[{k!r}]", item


def has_terms(layer: LayerLike, *, activity_only: bool = False) -> bool:
    """Whether ``layer`` or any layer it holds, at any depth, has training
    terms (only activity regularizers with ``activity_only``)."""
    terms = own_terms(layer)
    if activity_only:
        terms = {k: v for k, v in terms.items() if k == "activity_regularizer"}
    if terms:
        return True
    held = list(sublayers(layer).values()) + [sub for _, sub in _held_layers(layer)]
    return any(has_terms(sub, activity_only=activity_only) for sub in held)


def check_model(model: LayerLike, where: str = "`model`") -> None:
    """Checks that every training term of ``model``, at any depth, is
    reachable.

    Raises:
      TypeError: for something that is not a layer.
      ValueError: for a layer holding layers with training terms that it
        does not declare in ``sublayers()``, or a composite whose ``apply``
        cannot pass the activity regularizers of its sub-layers on (no
        ``call`` keyword).
    """
    check_layer(model, where)
    declared = sublayers(model)
    ids = {id(sub) for sub in declared.values()}
    cls = type(model).__name__
    for attr, held in _held_layers(model):
        if id(held) not in ids and has_terms(held):
            raise ValueError(
                f"{cls} holds a layer with regularizers or constraints "
                f"({type(held).__name__} at `{attr}`) that it does not declare, so "
                f"training would silently drop them. Give {cls} a `sublayers()` "
                f"method returning {{params key: layer}} (e.g. {{'{attr}': "
                f"self.{attr}}} if its params are under that key), and run each "
                "sub-layer as `call(layer, params[key], x)` in "
                "`apply(self, params, x, *, call=cj.call_layer)`."
            )
    if declared and not takes_call(model):
        for key, sub in declared.items():
            if has_terms(sub, activity_only=True):
                raise ValueError(
                    f"{cls}.apply takes no `call` keyword, so the activity "
                    f"regularizer of its sub-layer {key!r} ({type(sub).__name__}) "
                    f"cannot reach the objective. Define `apply(self, params, x, *, "
                    f"call=cj.call_layer)` and run each sub-layer as "
                    f"`call(layer, params[key], x)`."
                )
    for key, sub in declared.items():
        check_model(sub, f"sub-layer {key!r} of {cls}")


def _describe(params: Params) -> str:
    if isinstance(params, Mapping):
        return f"a dict with the keys {list(params)}"
    if isinstance(params, list | tuple):
        return f"a {type(params).__name__} of length {len(params)}"
    return f"a {type(params).__name__}"


def split_params(
    layer: LayerLike, params: Params, path: str = "params"
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """``(own weights, {key: sub-layer params})`` of a layer's params.

    Raises:
      ValueError: naming ``path`` when params are not a dict (a leaf), or
        lack a declared sub-layer's key (a composite).
    """
    subs = sublayers(layer)
    cls = type(layer).__name__
    if not subs:
        if not isinstance(params, Mapping):
            raise ValueError(
                f"{path} for {cls} must be a dict of arrays ({{}} for none); "
                f"received {_describe(params)}."
            )
        return dict(params), {}
    keys = list(subs)
    if isinstance(params, Mapping):
        missing = [k for k in keys if k not in params]
        own = {k: v for k, v in params.items() if k not in subs}
    elif isinstance(params, list | tuple):
        missing = [k for k in keys if not (isinstance(k, int) and 0 <= k < len(params))]
        if not missing and len(params) != len(keys):
            missing = [f"exactly {len(keys)} entries"]
        own = {}
    else:
        missing, own = keys, {}
    if missing and keys == list(range(len(keys))):
        raise ValueError(
            f"{path} for {cls} must be a list with one entry per sub-layer "
            f"({len(keys)}); received {_describe(params)}."
        )
    if missing:
        raise ValueError(
            f"{path} for {cls} must hold its sub-layers' params under the keys "
            f"{keys}; received {_describe(params)} (missing {missing})."
        )
    return own, {k: params[k] for k in keys}


def check_params(layer: LayerLike, params: Params, path: str = "params") -> None:
    """Checks ``params`` against ``layer`` at every depth: their structure
    (what :func:`split_params` checks, recursively), and each layer's own
    weights with its ``check_own_params(own, path)`` where it has one (the
    library's specs do: their keys and shapes, by the rule ``apply`` checks).

    Raises:
      ValueError: naming the path of the params that do not fit, what was
        expected and what came.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(4, 3), cj.Conv1D(2, 1)])
    >>> params = model.init(jax.random.key(0), (None, 8, 3))
    >>> params[1]["bias"] = jnp.zeros(5)
    >>> cj.protocol.check_params(model, params)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: params[1]['bias'] of shape (5,) does not fit Conv1D(...) on an input with 4 channels: expected a bias of shape (2,).
    """
    own, subs = split_params(layer, params, path)
    check_own = getattr(layer, "check_own_params", None)
    if callable(check_own):
        check_own(own, path)
    for key, sub in sublayers(layer).items():
        check_params(sub, subs[key], f"{path}[{key!r}]")


def init_checked(
    layer: LayerLike,
    key: jax.Array,
    input_shape: ShapeLike,
    dtype: DTypeLike | None,
    where: str,
) -> Params:
    """``layer.init(...)``, its params' structure checked, so that a layer
    returning something training cannot walk fails here, not in a trace;
    ``dtype=None`` calls ``init`` without a ``dtype``, so the layer's own
    default applies."""
    if dtype is None:  # each layer's own default (a spec's policy)
        params = layer.init(key, input_shape)
    else:
        params = layer.init(key, input_shape, dtype=dtype)
    check_params(layer, params, f"the params {where} ({type(layer).__name__}) returned")
    return params


def walk(
    layer: LayerLike, params: Params, path: str = "params"
) -> Iterator[tuple[Any, dict[Any, Any], str]]:
    """Yields ``(layer, own weights, path)`` for ``layer`` and every layer
    below it, depth first."""
    own, subs = split_params(layer, params, path)
    yield layer, own, path
    for key, sub in sublayers(layer).items():
        yield from walk(sub, subs[key], f"{path}[{key!r}]")


def map_own(
    fn: Callable[[Any, dict[Any, Any], str], Any],
    layer: LayerLike,
    params: Params,
    path: str = "params",
) -> Params:
    """Rebuilds ``params`` with every layer's own weights replaced by
    ``fn(layer, own weights, path)``, the structure kept."""
    own, subs = split_params(layer, params, path)
    new_own = fn(layer, own, path)
    new_subs = {
        key: map_own(fn, sub, subs[key], f"{path}[{key!r}]")
        for key, sub in sublayers(layer).items()
    }
    if isinstance(params, list | tuple):
        return type(params)(new_subs[i] for i in range(len(params)))
    return {**params, **new_own, **new_subs}


# ---- state and randomness -------------------------------------------------------


def non_trainable(layer: LayerLike, own: Mapping[str, Any]) -> frozenset[str]:
    """The names of ``layer``'s own weights that training leaves to the
    layer: those its ``non_trainable_weights()`` lists (state, such as
    moving statistics, which a training-mode call returns updated), and all
    of them when its ``trainable`` attribute is False (frozen)."""
    if getattr(layer, "trainable", True) is False:
        return frozenset(own)
    declare = getattr(layer, "non_trainable_weights", None)
    names = frozenset(declare()) if callable(declare) else frozenset()
    return names & frozenset(own)


def frozen_walk(
    model: LayerLike, params: Params, path: str = "params", frozen: bool = False
) -> Iterator[tuple[Any, dict[Any, Any], str, frozenset[str]]]:
    """:func:`walk` with the names of each layer's own weights that training
    leaves alone: :func:`non_trainable`'s, or all of them below a layer whose
    ``trainable`` is False (a frozen composite freezes every layer in it, as
    setting a Keras model's ``trainable`` does).

    >>> import jax, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(2, 3),
    ...                        cj.Sequential([cj.Conv1D(2, 3)], trainable=False)])
    >>> params = model.init(jax.random.key(0), (None, 8, 1))
    >>> [(path, sorted(names)) for _, _, path, names in
    ...  cj.protocol.frozen_walk(model, params)]
    [('params', []), ('params[0]', []), ('params[1]', []), ('params[1][0]', ['bias', 'kernel'])]
    """
    own, subs = split_params(model, params, path)
    frozen = frozen or getattr(model, "trainable", True) is False
    yield model, own, path, frozenset(own) if frozen else non_trainable(model, own)
    for key, sub in sublayers(model).items():
        yield from frozen_walk(sub, subs[key], f"{path}[{key!r}]", frozen)


def trainable_mask(model: LayerLike, params: Params) -> Params:
    """``params``' structure with a Python bool at every leaf: True where the
    optimizer trains it (see :func:`non_trainable`).

    >>> import dataclasses, jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(2, 3)])
    >>> params = model.init(jax.random.key(0), (None, 8, 1))
    >>> cj.protocol.trainable_mask(model, params)
    [{'kernel': True, 'bias': True}]
    """

    frozen_at = {path: names for _, _, path, names in frozen_walk(model, params)}

    def mask(layer: LayerLike, own: dict[str, Any], path: str) -> dict[str, Any]:
        frozen = frozen_at[path]
        return {
            k: jax.tree.map(lambda _, k=k: k not in frozen, v) for k, v in own.items()
        }

    return map_own(mask, model, params)


def trainable_params(model: LayerLike, params: Params) -> Params:
    """``params`` with None in place of every non-trainable weight (state,
    frozen layers): what the train step hands the optimizer, so make the
    optimizer's state from it, ``opt.init(cj.trainable_params(model,
    params))``. For a model without state or frozen layers it is ``params``'
    structure unchanged, so ``opt.init(params)`` does as well.

    >>> import jax, conv1djax as cj
    >>> model = cj.Conv1D(2, 3)
    >>> params = model.init(0, (None, 8, 1))
    >>> sorted(cj.trainable_params(model, params))
    ['bias', 'kernel']
    """
    mask = trainable_mask(model, params)
    return jax.tree.map(lambda p, trained: p if trained else None, params, mask)


def has_training_behaviour(layer: LayerLike) -> bool:
    """Whether ``layer`` or a layer below it computes differently in training
    (has ``apply_training``: dropout, batch statistics)."""
    if callable(getattr(layer, "apply_training", None)):
        return True
    return any(has_training_behaviour(sub) for sub in sublayers(layer).values())


def layer_key(key: jax.Array | None, path: str) -> jax.Array | None:
    """The PRNG key of the layer at ``path`` (``"params[1]['inner']"``) in a
    call given ``key``: ``key`` folded with the path's CRC-32, so that every
    layer draws its own bits, whatever order a composite runs them in."""
    if key is None:
        return None
    return jax.random.fold_in(key, zlib.crc32(path.encode()))


def require_key(layer: LayerLike, key: jax.Array | None) -> jax.Array:
    """``key``, or a ``ValueError`` naming ``layer``, which draws random
    bits in training and received none."""
    if key is None:
        raise ValueError(
            f"{type(layer).__name__} draws random bits in training and received no "
            "key: pass `key=` (a jax.random.key) to cj.apply_training, to the train "
            "step (step(params, opt_state, x, y, key)) or to check_gradients."
        )
    return key


def count_params(layer: LayerLike, input_shape: ShapeLike) -> int:
    """The number of scalars in ``layer``'s params for ``input_shape``: its
    own ``count_params``, else counted from an abstract ``init``."""
    if callable(getattr(layer, "count_params", None)):
        return int(layer.count_params(input_shape))
    return _count_from_init(layer, input_shape)


def _count_from_init(layer: LayerLike, input_shape: ShapeLike) -> int:
    params = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_shape))
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))


def called_key(subs: Mapping[Any, Any], sub: LayerLike, taken: Collection[Any]) -> Any:
    """The key of ``sub`` as a composite's ``apply`` runs it through ``call``:
    the first key of ``subs`` holding that very layer and not in ``taken``
    (None when there is none)."""
    return next((k for k, s in subs.items() if s is sub and k not in taken), None)


def sublayer_input_shapes(
    layer: LayerLike, input_shape: ShapeLike, *, strict: bool = False
) -> dict[Any, Shape]:
    """``{key: input shape}`` of each declared sub-layer for the composite's
    ``input_shape``: its own ``sublayer_input_shapes`` method, else found by
    abstract evaluation through ``call`` (unknown entries evaluated at two
    stand-in lengths, as :func:`conv1djax.shapes.eval_output_shape` does);
    sub-layers it cannot see are left out, and a composite it cannot trace
    gives ``{}``, unless ``strict``: then its error propagates."""
    if callable(getattr(layer, "sublayer_input_shapes", None)):
        return dict(layer.sublayer_input_shapes(input_shape))
    subs = sublayers(layer)
    if not subs or not takes_call(layer):
        return {}

    def record(stand_in: int) -> dict[Any, tuple[int, ...]]:
        shape = tuple(stand_in if d is None else d for d in input_shape)
        seen: dict[Any, tuple[int, ...]] = {}

        def call(sub: LayerLike, params: Params, x: jax.Array) -> jax.Array:
            key = called_key(subs, sub, seen)
            if key is not None:
                seen[key] = tuple(jax.numpy.shape(x))
            return sub.apply(params, x)

        def run() -> jax.Array:
            params = layer.init(jax.random.key(0), shape)
            return layer.apply(params, jax.numpy.zeros(shape), call=call)

        jax.eval_shape(run)
        return seen

    try:
        low, high = record(2), record(4)
    except Exception:  # a summary must not fail on a layer it cannot trace
        if strict:
            raise
        return {}
    return {
        key: tuple(
            a if a == b else None for a, b in zip(low[key], high[key], strict=True)
        )
        for key in low
        if key in high
    }


def snake_case(name: str) -> str:
    """Keras's layer-name rule: Conv1DTranspose -> conv1d_transpose."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def summary(
    layer: LayerLike, input_shape: ShapeLike, print_fn: Callable[[str], Any] = print
) -> str:
    """Prints (with ``print_fn``) and returns a Keras-like table of a
    model's layers at every depth (sub-layers indented under their
    composite), their output shapes and parameter counts; a leaf layer is
    one row.

    >>> import conv1djax as cj
    >>> _ = cj.summary(cj.Sequential([cj.Conv1D(4, 3), cj.Activation("relu")]),
    ...                (None, 10, 2))
    Layer (type)              Output Shape   Param #
    ================================================
    conv1d (Conv1D)           (None, 8, 4)        28
    activation (Activation)   (None, 8, 4)         0
    ================================================
    Total params: 28
    """
    rows: list[tuple[str, str, str]] = []
    _summary_rows(layer, input_shape, -1 if sublayers(layer) else 0, {}, rows)
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 3
    w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 3
    w2 = max([len("Param #")] + [len(r[2]) for r in rows])
    rule = "=" * (w0 + w1 + w2)
    lines = [f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>{w2}}", rule]
    lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in rows]
    lines += [rule, f"Total params: {count_params(layer, input_shape):,}"]
    frozen = _count_non_trainable(layer, input_shape)
    if frozen:  # Keras's two lines, where there is state or a frozen layer
        total = count_params(layer, input_shape)
        lines += [f"Trainable params: {total - frozen:,}",
                  f"Non-trainable params: {frozen:,}"]  # fmt: skip
    text = "\n".join(lines)
    print_fn(text)
    return text


def _count_non_trainable(layer: LayerLike, input_shape: ShapeLike) -> int:
    """The scalars of the non-trainable weights, from an abstract ``init``
    (0 when the layer cannot be initialised abstractly)."""
    try:
        params = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_shape))
    except Exception:  # a summary must not fail on a layer it cannot trace
        return 0
    mask = trainable_mask(layer, params)
    return sum(
        math.prod(p.shape)
        for p, trained in zip(jax.tree.leaves(params), jax.tree.leaves(mask),
                              strict=True)
        if not trained
    )  # fmt: skip


def _summary_rows(
    layer: LayerLike,
    input_shape: ShapeLike | None,
    depth: int,
    seen: dict[str, int],
    rows: list[tuple[str, str, str]],
) -> None:
    """Appends ``layer``'s row (unless ``depth`` < 0, the model itself) and
    its sub-layers' rows, indented by depth; unnamed layers get Keras's
    names (``conv1d``, ``conv1d_1``, ...), counted over the whole table."""
    if depth >= 0:
        name = getattr(layer, "name", None)
        if name is None:
            base = snake_case(type(layer).__name__)
            n = seen.get(base, 0)
            seen[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
        if input_shape is None:
            out, count = "?", "?"
        else:
            out = str(tuple(layer.compute_output_shape(input_shape)))
            count = f"{count_params(layer, input_shape):,}"
        rows.append((f"{'  ' * depth}{name} ({type(layer).__name__})", out, count))
    subs = sublayers(layer)
    if not subs:
        return
    shapes = {} if input_shape is None else sublayer_input_shapes(layer, input_shape)
    for key, sub in subs.items():
        _summary_rows(sub, shapes.get(key), depth + 1, seen, rows)


# ---- a readable repr ------------------------------------------------------------

_REPR_WIDTH = 88


def _rebuilds(layer: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether ``type(layer)(*args, **kwargs)`` builds a spec equal to it."""
    try:
        return bool(type(layer)(*args, **kwargs) == layer)
    except Exception:  # a form the constructor refuses: not that one
        return False


def _short_forms(value: Any, registry: Any) -> list[Any]:
    """Shorter spellings of a canonical field value, to try in order: a
    registered object by its name (``GlorotUniform()`` -> ``'glorot_uniform'``),
    a per-axis tuple of equal entries as one (``(3, 3)`` -> ``3``), equal
    symmetric ``(left, right)`` pairs as one int, one pair unnested."""
    forms: list[Any] = []
    if registry is not None and value is not None:
        try:
            config = registry.serialize(value)
        except Exception:
            config = None
        if isinstance(config, str):
            forms.append(config)
        elif isinstance(config, Mapping) and isinstance(config.get("class_name"), str):
            forms.append(snake_case(config["class_name"]))
    if isinstance(value, tuple) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if len(set(value)) == 1:
                forms.append(value[0])
        elif all(isinstance(v, tuple) and len(v) == 2 for v in value):
            if len(set(value)) == 1 and value[0][0] == value[0][1]:
                forms.append(value[0][0])
            if len(value) == 1:
                forms.append(value[0])
    return forms


def repr_arguments(layer: Any) -> tuple[list[Any], dict[str, Any]]:
    """``(args, kwargs)`` that build ``layer`` again, short: its required
    fields positionally, then only the keyword arguments whose value is not
    the default (keyword-only ones, such as ``dtype``, after the others),
    each in its shortest accepted spelling (checked by building the spec
    again), ``name`` last when set."""
    fields = [f for f in dataclasses.fields(layer) if f.init and f.name != "name"]
    fields.sort(key=lambda f: f.kw_only is True)  # Keras's base kwargs (dtype) last
    required = [
        f for f in fields
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING and not f.kw_only
    ]  # fmt: skip
    args = [getattr(layer, f.name) for f in required]
    kwargs = {
        f.name: getattr(layer, f.name)
        for f in fields
        if f not in required and not _equal(getattr(layer, f.name), f.default)
    }
    if _rebuilds(layer, args, kwargs):
        for key in list(kwargs):  # drop what the spec would default to anyway
            trial = {k: v for k, v in kwargs.items() if k != key}
            if _rebuilds(layer, args, trial):
                kwargs = trial
        registries = getattr(type(layer), "_REGISTRIES", {})
        for i, f in enumerate(required):
            for form in _short_forms(args[i], registries.get(f.name)):
                trial_args = [*args[:i], form, *args[i + 1 :]]
                if _rebuilds(layer, trial_args, kwargs):
                    args = trial_args
                    break
        for key in list(kwargs):
            for form in _short_forms(kwargs[key], registries.get(key)):
                if _rebuilds(layer, args, {**kwargs, key: form}):
                    kwargs[key] = form
                    break
    if getattr(layer, "name", None) is not None:
        kwargs["name"] = layer.name
    return args, kwargs


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and the like
        return False


def _show(value: Any, indent: int) -> str:
    """``value`` as Python source, layers and lists of layers laid out over
    several lines, indented by ``indent``, when one line would be too
    long."""
    if is_layer(value):
        return layer_repr(value, indent)
    if isinstance(value, list | tuple) and value and all(is_layer(v) for v in value):
        items = [_show(v, indent + 4) for v in value]
        one = f"[{', '.join(items)}]"
        if "\n" not in one and indent + len(one) <= _REPR_WIDTH:
            return one
        pad = " " * (indent + 4)
        return "[\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + "]"
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        name = value.__qualname__
        return name if name.isidentifier() else f"<function {name}>"
    return repr(value)


def layer_repr(layer: Any, indent: int = 0) -> str:
    """A layer as it would be written: ``Conv2D(16, 3, padding='same')``,
    the positional arguments Keras takes positionally (the required ones)
    and only the non-default keyword arguments; a model over several
    indented lines when one would be longer than 88 characters. Where every
    value is simple (names, numbers, tuples, built-in layers), ``eval`` of
    it, with the class names in scope, builds an equal spec.

    >>> import conv1djax as cj
    >>> cj.Conv2D(16, (3, 3), padding="same", activation="relu")
    Conv2D(16, 3, padding='same', activation='relu')
    >>> print(repr(cj.Sequential([cj.Conv1D(8, 3, padding="causal", dilation_rate=2),
    ...                           cj.Residual(cj.Conv1D(8, 3, padding="same")),
    ...                           cj.GlobalMaxPooling1D(name="pool")])))
    Sequential([
        Conv1D(8, 3, padding='causal', dilation_rate=2),
        Residual(Conv1D(8, 3, padding='same')),
        GlobalMaxPooling1D(name='pool'),
    ])
    """
    args, kwargs = repr_arguments(layer)
    cls = type(layer).__name__
    parts = [_show(v, indent + 4) for v in args]
    parts += [f"{k}={_show(v, indent + 4)}" for k, v in kwargs.items()]
    one = f"{cls}({', '.join(parts)})"
    holds_layers = any(
        is_layer(v)
        or (isinstance(v, list | tuple) and v and all(is_layer(i) for i in v))
        for v in [*args, *kwargs.values()]
    )
    if not holds_layers or ("\n" not in one and indent + len(one) <= _REPR_WIDTH):
        return one  # a leaf layer stays on one line
    if args:  # the first argument hugged: Sequential([ ... ], name='m')
        first = _show(args[0], indent)
        rest = ", ".join(parts[1:])
        last = first.rsplit("\n", 1)[-1] + ", " + rest + ")"
        if "\n" in first and "\n" not in rest and len(last) <= _REPR_WIDTH:
            return f"{cls}({first}{', ' + rest if rest else ''})"
    pad = " " * (indent + 4)
    return f"{cls}(\n" + "".join(f"{pad}{p},\n" for p in parts) + " " * indent + ")"


@dataclasses.dataclass(frozen=True)
class Layer:
    """An optional base for layers written as frozen dataclasses.

    It adds a keyword-only ``name`` (used by summaries, kept out of equality
    and hashing, so equal layers are equal specs whatever their names) and a
    keyword-only ``trainable`` (Keras's switch, default True: False freezes
    the layer's params and those of every layer below it in the train step,
    :func:`frozen_walk`),
    registers the class as a static pytree (a spec can then be passed to a
    ``jax.jit``-compiled function as a plain argument) and gives
    ``count_params``.

    Example usage, a user's parameter-free layer:

    >>> import dataclasses, jax, jax.numpy as jnp, conv1djax as cj
    >>> @dataclasses.dataclass(frozen=True)
    ... class Scale(cj.Layer):
    ...     factor: float
    ...     def init(self, key, input_shape, *, dtype=jnp.float32):
    ...         return {}
    ...     def apply(self, params, x):
    ...         return self.factor * x
    ...     def compute_output_shape(self, input_shape):
    ...         return tuple(input_shape)
    >>> layer = Scale(2.0, name="double")
    >>> layer == Scale(2.0), layer.count_params((None, 3))
    (True, 0)
    >>> jax.jit(lambda s, x: s.apply({}, x))(layer, jnp.ones(2))
    Array([2., 2.], dtype=float32)
    """

    name: str | None = dataclasses.field(default=None, kw_only=True, compare=False)
    trainable: bool = dataclasses.field(default=True, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_static(cls)
        # The library's specs print as they are written (layer_repr); set
        # before @dataclass runs, which then keeps it. A user's layer keeps
        # the dataclass repr it asks for.
        if cls.__module__.startswith("conv1djax.") and "__repr__" not in vars(cls):
            cls.__repr__ = layer_repr  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        if not isinstance(self.trainable, bool | np.bool_):
            raise TypeError(
                f"`trainable` of {type(self).__name__} must be a bool; received "
                f"trainable={self.trainable!r} of type {type(self.trainable).__name__}."
            )
        object.__setattr__(self, "trainable", bool(self.trainable))

    def count_params(self, input_shape: ShapeLike) -> int:
        """The number of scalars in the params for ``input_shape``."""
        return _count_from_init(self, input_shape)

    def summary(
        self, input_shape: ShapeLike, print_fn: Callable[[str], Any] = print
    ) -> str:
        """The layer's :func:`summary` table, printed with ``print_fn`` and
        returned."""
        return summary(self, input_shape, print_fn)


jax.tree_util.register_static(Layer)
