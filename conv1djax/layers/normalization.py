"""Normalization, Keras 3's layers: ``BatchNormalization``,
``LayerNormalization``, ``GroupNormalization``.

Each normalizes its input by a mean and a variance, then scales by
``gamma`` and shifts by ``beta`` (both optional: ``scale``, ``center``), by
Keras's formula ``x * inv + (beta - mean * inv)``, ``inv = gamma /
sqrt(variance + epsilon)``. The statistics are computed in at least float32
(a bfloat16 or float16 input is widened first, as Keras does); the output is
in the policy's compute dtype when ``dtype`` is set, else in the input's
(float32 for an integer input).

``axis`` counts the input's axes as Keras does, the batch axis included
(``-1``: channels last; ``1``: channels first).

- ``BatchNormalization`` normalizes each index of ``axis`` over every other
  axis. Its ``moving_mean`` and ``moving_variance`` are state (listed by
  ``non_trainable_weights()``): inference (``apply``) uses them; a
  training-mode call (``apply_training``, which the train step runs) uses the
  batch's statistics and returns the moving ones updated with ``momentum``.
- ``LayerNormalization`` normalizes each example over ``axis`` (one or
  several axes).
- ``GroupNormalization`` normalizes each example over the channels of each
  of ``groups`` groups and every axis but the first (the batch) and
  ``axis``.

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> layer = cj.BatchNormalization()
>>> params = layer.init(0, (None, 16, 4))
>>> sorted(params), layer.non_trainable_weights()
(['beta', 'gamma', 'moving_mean', 'moving_variance'], ('moving_mean', 'moving_variance'))
>>> x = 3.0 + 2.0 * jax.random.normal(jax.random.key(1), (8, 16, 4))
>>> y, updates = layer.apply_training(params, x, key=None)
>>> round(float(y.mean()), 3), round(float(y.std()), 2)  # the batch's statistics
(0.0, 1.0)
>>> [round(float(v), 2) for v in updates["moving_mean"]]  # 0.99 * 0 + 0.01 * ~3
[0.03, 0.03, 0.03, 0.03]
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from conv1djax import (
    _validation,
    constraints,
    dtype_policy,
    initializers,
    parallel,
    regularizers,
    stream_contract,
)
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.layers.base import Configurable
from conv1djax.layers.params import as_array, init_params
from conv1djax.shapes import as_input, check_input, check_shape_entries

_GAMMA_BETA_REGISTRIES: Mapping[str, Any] = {
    "beta_initializer": initializers,
    "gamma_initializer": initializers,
    "beta_regularizer": regularizers,
    "gamma_regularizer": regularizers,
    "activity_regularizer": regularizers,
    "beta_constraint": constraints,
    "gamma_constraint": constraints,
}


def _real(value: Any, name: str, cls: str, *, minimum: float | None = None) -> float:
    """A finite real number (not a bool), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` of {cls} must be a float; received {name}={value!r} of type "
            f"{type(value).__name__}."
        )
    if not math.isfinite(float(value)) or (
        minimum is not None and float(value) < minimum
    ):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(
            f"`{name}` of {cls} must be a finite float{bound}; received "
            f"{name}={value!r}."
        )
    return float(value)


def _int_axis(value: Any, name: str, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` of {cls} must be an int; received {name}={value!r} of type "
            f"{type(value).__name__}."
        )
    return int(value)


def _axes_value(value: Any, cls: str) -> int | tuple[int, ...]:
    """LayerNormalization's ``axis``: an int, or a sequence of distinct ints
    of one sign, sorted (Keras sorts them; one axis is kept as an int)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"`axis` of {cls} must be an int or a tuple of ints; received "
            f"axis={value!r} of type {type(value).__name__}."
        )
    entries = tuple(_int_axis(a, "axis", cls) for a in value)
    if not entries or len(set(entries)) != len(entries):
        raise ValueError(
            f"`axis` of {cls} must be one or more distinct axes; received "
            f"axis={value!r}."
        )
    if min(entries) < 0 <= max(entries):
        # Keras orders gamma's axes by the values as given, which for mixed
        # signs is not their order in the input.
        raise ValueError(
            f"`axis` of {cls} must give the axes all non-negative or all negative "
            f"(e.g. (1, 2) or (-2, -1)); received axis={value!r}."
        )
    entries = tuple(sorted(entries))
    return entries[0] if len(entries) == 1 else entries


def _resolve(axis: int, ndim: int, layer: Any, shape: Any) -> int:
    """``axis`` as a non-negative index into an input of ``ndim`` axes."""
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`axis` of {type(layer).__name__} (={layer.axis}) is out of range for "
            f"an input of {ndim} axes; received input shape {tuple(shape)}."
        )
    return axis % ndim


# Batch renormalization's state, after the moving statistics (Keras's order).
_RENORM_STATE = ("moving_stddev", "renorm_mean", "renorm_stddev")
_RENORM_CLIPS = ("rmax", "rmin", "dmax")


def _renorm_clipping(
    value: Any, renorm: bool
) -> tuple[tuple[str, float | None], ...] | None:
    """``renorm_clipping`` as sorted ``(key, bound)`` pairs (hashable; Keras's
    dict in configs): keys among rmax, rmin, dmax, rmax >= rmin, dmax >= 0.
    With ``renorm``, None means ``{}`` (no clipping), as Keras reads it."""
    if value is None:
        return () if renorm else None
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple | list) and all(
        isinstance(i, tuple | list) and len(i) == 2 for i in value
    ):
        items = [tuple(i) for i in value]
    else:
        raise TypeError(
            "`renorm_clipping` of BatchNormalization must be a dict with keys among "
            f"{list(_RENORM_CLIPS)}, or None; received renorm_clipping={value!r}."
        )
    clips: dict[str, float | None] = {}
    for key, bound in items:
        if key not in _RENORM_CLIPS:
            raise ValueError(
                "`renorm_clipping` of BatchNormalization takes the keys "
                f"{list(_RENORM_CLIPS)}; received renorm_clipping={value!r}."
            )
        clips[key] = None if bound is None else _real(bound, key, "renorm_clipping")
    rmax, rmin, dmax = (clips.get(k) for k in _RENORM_CLIPS)
    if rmax is not None and rmin is not None and rmax < rmin:
        raise ValueError(
            f"`renorm_clipping` needs rmax >= rmin; received rmax={rmax}, rmin={rmin}."
        )
    if dmax is not None and dmax < 0:
        raise ValueError(f"`renorm_clipping` needs dmax >= 0; received dmax={dmax}.")
    return tuple(sorted(clips.items()))


# The name of the mesh axis a synchronized BatchNormalization averages its
# statistics over, where it is bound (inside jax.shard_map or jax.pmap).
SYNC_AXIS = parallel.DATA_AXIS


def _axis_bound(name: str) -> bool:
    """Whether ``name`` is a mapped axis here (inside ``jax.shard_map`` or
    ``jax.pmap`` over it)."""
    try:
        lax.axis_size(name)
    except NameError:
        return False
    return True


def _moments(
    x: jax.Array, axes: tuple[int, ...], *, synchronized: bool = False
) -> tuple[jax.Array, jax.Array]:
    """The mean and (biased) variance of ``x`` over ``axes``, kept as axes of
    length 1; with ``synchronized``, over the devices of the bound
    ``SYNC_AXIS`` too (equal shards: the whole batch's)."""
    mean = jnp.mean(x, axes, keepdims=True)
    if not (synchronized and _axis_bound(SYNC_AXIS)):
        return mean, jnp.var(x, axes, keepdims=True)
    mean = lax.pmean(mean, SYNC_AXIS)
    variance = jnp.mean(jnp.square(x - mean), axes, keepdims=True)
    return mean, lax.pmean(variance, SYNC_AXIS)


def _normalized(
    x: jax.Array,
    mean: jax.Array,
    variance: jax.Array,
    epsilon: float,
    gamma: jax.Array | None,
    beta: jax.Array | None,
) -> jax.Array:
    """Keras's ``x * inv + (beta - mean * inv)``, ``inv = gamma * rsqrt(
    variance + epsilon)``; every argument broadcast to ``x``."""
    inv = lax.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    res = -mean * inv
    if beta is not None:
        res = res + beta
    return x * inv + res


class _Normalization(Configurable):
    """What the three share: ``center`` / ``scale`` and the initializers,
    regularizers and constraints of ``gamma`` and ``beta``, ``epsilon``,
    the params, the dtype rule, the checks and streaming. Subclasses are
    frozen dataclasses with Keras's fields; they say which axes their params
    span (``_param_axes``) and compute ``_normalize``."""

    _REGISTRIES: ClassVar[Mapping[str, Any]] = _GAMMA_BETA_REGISTRIES
    # Keras's ``autocast``: whether a floating input is first cast to the
    # policy's compute dtype (BatchNormalization) or read as it comes
    # (LayerNormalization, GroupNormalization: ``autocast=False``).
    _AUTOCAST: ClassVar[bool] = False

    if TYPE_CHECKING:  # fields of every subclass
        axis: Any
        epsilon: float
        center: bool
        scale: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        cls = type(self).__name__
        put("epsilon", _real(self.epsilon, "epsilon", cls, minimum=0.0))
        put("center", _validation.boolean(self.center, "center"))
        put("scale", _validation.boolean(self.scale, "scale"))
        for field, registry in self._REGISTRIES.items():
            put(field, registry.get(getattr(self, field), field))

    # ---- what a subclass says ----------------------------------------------

    def weight_names(self) -> tuple[str, ...]:
        """The params' names in Keras's ``get_weights()`` order: ``gamma``
        (when ``scale``), ``beta`` (when ``center``), then any state."""
        return tuple(n for n, kept in (("gamma", self.scale), ("beta", self.center))
                     if kept)  # fmt: skip

    def _param_axes(self, ndim: int, shape: Any) -> tuple[int, ...]:
        """The (non-negative, sorted) input axes the params span."""
        raise NotImplementedError

    def _check_sizes(self, sizes: tuple[int, ...], where: str) -> None:
        """Raises ``ValueError`` for sizes of the param axes the layer cannot
        take (GroupNormalization's groups); ``where`` says what they came
        from."""
        del sizes, where

    def _normalize(self, params: Mapping[str, jax.Array], x: jax.Array) -> jax.Array:
        """The inference output on ``x`` in the working dtype, params cast
        to it."""
        raise NotImplementedError

    # ---- shapes and params -------------------------------------------------

    def _param_shape(self, input_shape: ShapeLike) -> tuple[int, ...]:
        shape = check_shape_entries(input_shape)
        axes = self._param_axes(len(shape), shape)
        sizes = tuple(shape[a] for a in axes)
        if None in sizes:
            raise ValueError(
                f"{type(self).__name__}(axis={self.axis!r}) needs the size of axes "
                f"{axes} of the input; received input_shape={shape}."
            )
        self._check_sizes(sizes, f"input shape {shape}")  # type: ignore[arg-type]
        return sizes  # type: ignore[return-value]

    def param_shapes(self, input_shape: ShapeLike) -> dict[str, tuple[int, ...]]:
        """The shapes of ``init``'s params for an input of ``input_shape``,
        in Keras's ``get_weights()`` order.

        Raises:
          ValueError: for an ``axis`` out of range for the input or an axis of
            unknown size.
        """
        shape = self._param_shape(input_shape)
        return dict.fromkeys(self.weight_names(), shape)

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The input shape (checked: ``axis`` in range).

        Raises:
          ValueError: for an ``axis`` out of range for the input.
        """
        shape = check_shape_entries(input_shape)
        self._param_axes(len(shape), shape)
        return shape

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, jax.Array]:
        """Creates the params for inputs of ``input_shape`` with their
        initializers, in ``dtype`` if given, else in the spec's
        :attr:`variable_dtype` (float32 unless ``param_dtype`` or a non-mixed
        policy says otherwise). ``key`` is a PRNG key or an int seed.

        Raises:
          ValueError: for an ``axis`` out of range for the input, of unknown
            size, or (GroupNormalization) channels that ``groups`` does not
            divide.
        """
        key = _validation.prng_key(key)
        if dtype is None:
            dtype = self.variable_dtype
        return init_params(self, key, self.param_shapes(input_shape), dtype)

    def check_own_params(self, params: Params, path: str = "params") -> None:
        """Checks that ``params`` have exactly the layer's keys, all of one
        shape (of one axis, but for a LayerNormalization over several).

        Raises:
          ValueError: naming ``path``, what was expected and what came.
        """
        cls = type(self).__name__
        names = self.weight_names()
        if not isinstance(params, Mapping) or set(params) != set(names):
            got = (
                sorted(params) if isinstance(params, Mapping) else type(params).__name__
            )
            raise ValueError(
                f"{path} of {cls} must be a dict with exactly the keys "
                f"{sorted(names)}; received {got}."
            )
        shapes = {n: tuple(jnp.shape(params[n])) for n in names}
        first = next(iter(shapes.values()), None)
        for n, s in shapes.items():
            if s != first or len(s) != self._param_rank():
                raise ValueError(
                    f"{path}[{n!r}] of {cls} has shape {s}; the layer's params "
                    f"are all of one shape of {self._param_rank()} axes "
                    f"({', '.join(f'{k}: {v}' for k, v in shapes.items())})."
                )
            if not jnp.issubdtype(jnp.result_type(params[n]), jnp.floating):
                raise TypeError(
                    f"{path}[{n!r}] of {cls} must be floating; received dtype "
                    f"{jnp.result_type(params[n])}."
                )
        if first is not None:
            self._check_sizes(first, f"params of shape {first}")

    def _param_rank(self) -> int:
        return 1

    # ---- numerics -------------------------------------------------------

    def _prepared(
        self, params: Params, x: ArrayLike
    ) -> tuple[dict[str, jax.Array], jax.Array, jnp.dtype]:
        """``(params, x, output dtype)``, checked against each other: ``x``
        (cast to the policy's compute dtype first where Keras autocasts) and
        the params in the working dtype, at least float32."""
        name = type(self).__name__
        x = check_input(x, name, params)
        if self._AUTOCAST:
            x = self.cast_input(x)
        expected = self.param_shapes(jnp.shape(x))
        if not isinstance(params, Mapping) or set(params) != set(expected):
            self.check_own_params(params)  # raises, naming the keys
        for n, want in expected.items():
            got = tuple(jnp.shape(params[n]))
            if got != want:
                raise ValueError(
                    f"params[{n!r}] of shape {got} does not fit {name}(axis="
                    f"{self.axis!r}) on an input of shape {tuple(jnp.shape(x))}: "
                    f"expected a {n} of shape {want}."
                )
        floating = jnp.issubdtype(x.dtype, jnp.floating)
        out = jnp.dtype(self.compute_dtype or (x.dtype if floating else jnp.float32))
        work = dtype_policy.at_least_float32(x.dtype)
        x = as_input(x, work, name)
        return {n: jnp.asarray(params[n], work) for n in expected}, x, out

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Normalizes ``x`` (inference; BatchNormalization by its moving
        statistics), in at least float32; the output in the policy's compute
        dtype, else ``x``'s (float32 for integers).

        Raises:
          ValueError: for an ``axis`` out of range for ``x``, or params that
            do not fit it.
          TypeError: for an input that is not an array of real numbers.
        """
        params, x, out = self._prepared(params, x)
        return self._normalize(params, x).astype(out)

    def _shaped(self, v: jax.Array, x: jax.Array) -> jax.Array:
        """An array of the param axes' sizes shaped to broadcast to ``x``."""
        shape = [1] * x.ndim
        for a in self._param_axes(x.ndim, x.shape):
            shape[a] = x.shape[a]
        return v.reshape(shape)

    def _broadcast(self, v: jax.Array | None, x: jax.Array) -> jax.Array | None:
        """:meth:`_shaped`, None kept."""
        return None if v is None else self._shaped(v, x)

    # ---- streaming (conv1djax.stream_contract) ---------------------------

    def stream_timing(self) -> stream_contract.Timing:
        """Streams step by step where its statistics are per step (see
        :meth:`stream_check`)."""
        return stream_contract.Timing()

    def stream_check(self, ndim: int, time_axis: int) -> None:
        """Refuses a stream of ``ndim``-axis chunks whose time axis
        (``time_axis``, negative) the layer normalizes or holds params along.

        Raises:
          TypeError: when ``axis`` is the time axis.
        """
        shape = (None,) * ndim
        if time_axis % ndim in self._param_axes(ndim, shape):
            raise stream_contract.cannot_stream(
                self,
                f"axis={self.axis!r} is the stream's time axis (axis {time_axis} of "
                f"{ndim}); normalize over the channel axis to stream",
            )

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The chunk, as ``apply`` normalizes it."""
        return self.apply(params, z)


@dataclasses.dataclass(frozen=True)
class BatchNormalization(_Normalization):
    """Spec of Keras 3's ``BatchNormalization``: each index of ``axis`` (a
    channel) normalized by the mean and variance over every other axis.

    In training (``apply_training``, the train step) by the batch's
    statistics, the moving ones updated as ``moving * momentum + batch * (1 -
    momentum)`` (the variance biased, as Keras computes it); at inference
    (``apply``) by the moving ones, a per-channel affine map. A float16 or
    bfloat16 input is normalized in float32 and the output cast back, as
    Keras does.

    Args:
      axis: the axis of the features, an int (-1: channels last; 1:
        channels first).
      momentum: of the moving statistics' update.
      epsilon: added to the variance.
      center, scale: whether there is ``beta`` / ``gamma``.
      beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer: the
        weights' initializers.
      beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint, activity_regularizer: as
        Keras's.
      synchronized: average the batch statistics over the data-parallel
        devices. Under :mod:`conv1djax.parallel` (``jax.jit`` over a sharded
        batch) the statistics are the whole batch's either way; where the
        step runs per device (inside ``jax.shard_map`` or ``jax.pmap`` over
        the mesh axis ``"data"``, ``SYNC_AXIS``), True averages them
        over that axis (``lax.pmean``) and False keeps each device's own.
        Keras takes it on the TensorFlow backend only.
      renorm, renorm_clipping, renorm_momentum: Keras's batch
        renormalization: in training, the batch-normalized output corrected
        by ``r = stddev / renorm_stddev`` and ``d = (mean - renorm_mean) /
        renorm_stddev`` (clipped by ``renorm_clipping``'s ``rmin``, ``rmax``,
        ``dmax``; out of the gradient), with the state ``moving_stddev``,
        ``renorm_mean``, ``renorm_stddev`` (``renorm_momentum``) and the
        moving variance kept as ``moving_stddev ** 2 - epsilon``.
      name, dtype, param_dtype: as every spec.

    Raises:
      TypeError, ValueError: for an ``axis`` that is not an int, a
        ``momentum`` or ``epsilon`` that is not a finite number, a bad
        ``renorm_clipping``; (at ``init``, ``apply``) an ``axis`` out of range
        for the input.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.BatchNormalization(axis=1)  # channels first
    >>> params = layer.init(0, (None, 3, 10))
    >>> {k: v.shape for k, v in params.items()}
    {'gamma': (3,), 'beta': (3,), 'moving_mean': (3,), 'moving_variance': (3,)}
    >>> y = layer.apply(params, jnp.ones((2, 3, 10)))  # moving: mean 0, variance 1
    >>> [round(float(v), 4) for v in y[0, :, 0]]  # 1 / sqrt(1 + epsilon)
    [0.9995, 0.9995, 0.9995]
    """

    axis: int = -1
    momentum: float = 0.99
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    moving_mean_initializer: Any = "zeros"
    moving_variance_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None
    beta_constraint: Any = None
    gamma_constraint: Any = None
    renorm: bool = False
    renorm_clipping: Any = None
    renorm_momentum: float = 0.99
    synchronized: bool = False
    activity_regularizer: Any = None

    _REGISTRIES: ClassVar[Mapping[str, Any]] = {
        **_GAMMA_BETA_REGISTRIES,
        "moving_mean_initializer": initializers,
        "moving_variance_initializer": initializers,
    }
    _AUTOCAST: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)
        cls = type(self).__name__
        put("axis", _int_axis(self.axis, "axis", cls))
        put("momentum", _real(self.momentum, "momentum", cls))
        put("renorm_momentum", _real(self.renorm_momentum, "renorm_momentum", cls))
        put("synchronized", _validation.boolean(self.synchronized, "synchronized"))
        put("renorm", _validation.boolean(self.renorm, "renorm"))
        put("renorm_clipping", _renorm_clipping(self.renorm_clipping, self.renorm))

    def get_config(self) -> dict[str, Any]:
        """As every spec's; ``renorm_clipping`` as Keras's dict."""
        config = super().get_config()
        if config["renorm_clipping"] is not None:
            config["renorm_clipping"] = dict(config["renorm_clipping"])
        return config

    def weight_names(self) -> tuple[str, ...]:
        """``gamma`` (when ``scale``), ``beta`` (when ``center``),
        ``moving_mean``, ``moving_variance``: Keras's ``get_weights()``
        order.

        >>> import conv1djax as cj
        >>> cj.BatchNormalization(center=False).weight_names()
        ('gamma', 'moving_mean', 'moving_variance')
        """
        return (*super().weight_names(), *self.non_trainable_weights())

    def _torch_names(self) -> dict[str, str]:
        """PyTorch's ``BatchNorm{1,2,3}d`` names of the weights -> ours."""
        names = {"running_mean": "moving_mean", "running_var": "moving_variance"}
        if self.scale:
            names["weight"] = "gamma"
        if self.center:
            names["bias"] = "beta"
        return names

    def from_torch_state(
        self, state_dict: Mapping[str, Any], convert: Any = None
    ) -> Params:
        """The params from PyTorch's ``BatchNorm{1,2,3}d`` ``state_dict()``:
        ``weight`` (``gamma``), ``bias`` (``beta``), ``running_mean``,
        ``running_var``; ``num_batches_tracked`` is dropped (``convert``,
        the hook's reader of wrapped layers, is unused)."""
        names = self._torch_names()
        state = {k: v for k, v in state_dict.items() if k != "num_batches_tracked"}
        if set(state) != set(names):
            raise ValueError(
                f"BatchNormalization takes a state dict with the keys "
                f"{sorted(names)}; received {sorted(state)}."
            )
        return {names[k]: jnp.asarray(as_array(v, k)) for k, v in state.items()}

    def to_torch_state(self, params: Params, convert: Any = None) -> dict[str, Any]:
        """PyTorch's ``BatchNorm{1,2,3}d`` ``state_dict()`` (NumPy arrays)
        from the params, ``num_batches_tracked`` 0."""
        back = {ours: theirs for theirs, ours in self._torch_names().items()}
        state = {back[k]: np.array(v) for k, v in params.items()}
        state["num_batches_tracked"] = np.array(0, np.int64)
        return state

    def non_trainable_weights(self) -> tuple[str, ...]:
        """The state: ``("moving_mean", "moving_variance")``, and with
        ``renorm`` Keras's ``("moving_stddev", "renorm_mean",
        "renorm_stddev")`` after them."""
        return ("moving_mean", "moving_variance") + (
            _RENORM_STATE if self.renorm else ()
        )

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, jax.Array]:
        """As every normalization's; with ``renorm``, Keras's renorm state
        too: ``moving_stddev`` and ``renorm_stddev`` the square roots of
        ``moving_variance_initializer``'s draws, ``renorm_mean`` a draw of
        ``moving_mean_initializer``."""
        if not self.renorm:
            return super().init(key, input_shape, dtype=dtype)
        key = _validation.prng_key(key)
        main, extra = jax.random.split(key)
        plain = dataclasses.replace(self, renorm=False, renorm_clipping=None)
        params = plain.init(main, input_shape, dtype=dtype)
        shape = params["moving_mean"].shape
        dtype = params["moving_mean"].dtype
        k1, k2, k3 = jax.random.split(extra, 3)
        params["moving_stddev"] = jnp.sqrt(
            self.moving_variance_initializer(k1, shape, dtype)
        )
        params["renorm_mean"] = jnp.asarray(
            self.moving_mean_initializer(k2, shape, dtype), dtype
        )
        params["renorm_stddev"] = jnp.sqrt(
            self.moving_variance_initializer(k3, shape, dtype)
        )
        return params

    def _param_axes(self, ndim: int, shape: Any) -> tuple[int, ...]:
        return (_resolve(self.axis, ndim, self, shape),)

    def _reduction_axes(self, x: jax.Array) -> tuple[int, ...]:
        (axis,) = self._param_axes(x.ndim, x.shape)
        return tuple(a for a in range(x.ndim) if a != axis)

    def _by_stats(
        self,
        x: jax.Array,
        mean: jax.Array,
        variance: jax.Array,
        gamma: jax.Array | None,
        beta: jax.Array | None,
    ) -> jax.Array:
        """Keras's formula with per-channel statistics and params."""
        return _normalized(
            x, self._shaped(mean, x), self._shaped(variance, x), self.epsilon,
            self._broadcast(gamma, x), self._broadcast(beta, x),
        )  # fmt: skip

    def _normalize(self, params: Mapping[str, jax.Array], x: jax.Array) -> jax.Array:
        return self._by_stats(
            x, params["moving_mean"], params["moving_variance"],
            params.get("gamma"), params.get("beta"),
        )  # fmt: skip

    def _renormalized(
        self, own: Mapping[str, jax.Array], mean: jax.Array, variance: jax.Array
    ) -> tuple[jax.Array | None, jax.Array | None, dict[str, jax.Array]]:
        """Batch renormalization (Keras's ``renorm``): the effective gamma
        and beta (the correction ``r``, ``d`` folded in, out of the
        gradient) and the renorm state's and moving statistics' updates."""
        eps = self.epsilon
        stddev = jnp.sqrt(variance + eps)
        floor = jnp.sqrt(jnp.asarray(eps, stddev.dtype))
        renorm_stddev = jnp.maximum(own["renorm_stddev"], floor)
        r = stddev / renorm_stddev
        d = (mean - own["renorm_mean"]) / renorm_stddev
        clipping = dict(self.renorm_clipping or ())
        if clipping.get("rmin") is not None:
            r = jnp.maximum(r, clipping["rmin"])
        if clipping.get("rmax") is not None:
            r = jnp.minimum(r, clipping["rmax"])
        if clipping.get("dmax") is not None:
            d = jnp.clip(d, -clipping["dmax"], clipping["dmax"])
        r, d = lax.stop_gradient(r), lax.stop_gradient(d)
        gamma, beta = own.get("gamma"), own.get("beta")
        gamma, shift = (r, d) if gamma is None else (r * gamma, d * gamma)
        beta = shift if beta is None else shift + beta
        rm, m = self.renorm_momentum, self.momentum
        moving_stddev = own["moving_stddev"] * m + stddev * (1.0 - m)
        updates = {
            "renorm_mean": own["renorm_mean"] * rm + mean * (1.0 - rm),
            "renorm_stddev": own["renorm_stddev"] * rm + stddev * (1.0 - rm),
            "moving_mean": own["moving_mean"] * m + mean * (1.0 - m),
            "moving_stddev": moving_stddev,
            "moving_variance": jax.nn.relu(moving_stddev * moving_stddev - eps),
        }
        return gamma, beta, updates

    def apply_training(
        self, params: Params, x: ArrayLike, *, key: jax.Array | None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Training: ``(x normalized by the batch's statistics, {"moving_mean":
        ..., "moving_variance": ...})``, the moving statistics updated as
        Keras's ``stateless_call(..., training=True)`` returns them. ``key``
        is unused. A layer whose ``trainable`` is False runs as at
        inference, updating nothing (Keras's rule).

        Raises:
          ValueError, TypeError: as :meth:`apply`.
        """
        del key
        if getattr(self, "trainable", True) is False:
            return self.apply(params, x), {}
        own, x, out = self._prepared(params, x)
        axes = self._reduction_axes(x)
        mean, variance = _moments(x, axes, synchronized=self.synchronized)
        mean, variance = jnp.squeeze(mean, axes), jnp.squeeze(variance, axes)
        if self.renorm:
            gamma, beta, updates = self._renormalized(own, mean, variance)
        else:
            gamma, beta = own.get("gamma"), own.get("beta")
            m = self.momentum
            updates = {
                "moving_mean": own["moving_mean"] * m + mean * (1.0 - m),
                "moving_variance": own["moving_variance"] * m + variance * (1.0 - m),
            }
        y = self._by_stats(x, mean, variance, gamma, beta).astype(out)
        return y, updates


@dataclasses.dataclass(frozen=True)
class LayerNormalization(_Normalization):
    """Spec of Keras 3's ``LayerNormalization``: each example normalized
    over ``axis`` (one axis or several), by its own mean and variance.

    ``rms_scaling=True`` is Keras's (deprecated) variant: ``x / sqrt(
    variance + epsilon) * gamma``, no centering and no ``beta`` (the
    variance, not the mean square, as Keras computes it).

    Args:
      axis: an int or a tuple of ints (all non-negative or all negative),
        the axes normalized over and that ``gamma`` / ``beta`` span.
      epsilon: added to the variance.
      center, scale: whether there is ``beta`` / ``gamma``.
      rms_scaling: Keras's variant above (``gamma`` kept, ``beta`` dropped).
      beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint, activity_regularizer: as
        Keras's.
      name, dtype, param_dtype: as every spec (no autocast of the input, as
        Keras: a float32 input is normalized in float32 under
        ``"mixed_bfloat16"``, the output then bfloat16).

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.LayerNormalization(axis=(-2, -1))  # over steps and channels
    >>> params = layer.init(0, (None, 5, 3))
    >>> params["gamma"].shape
    (5, 3)
    >>> y = layer.apply(params, jnp.arange(30.0).reshape(2, 5, 3))
    >>> [round(float(v), 3) for v in (abs(y[0].mean()), y[0].std())]
    [0.0, 1.0]
    """

    axis: Any = -1
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True
    rms_scaling: bool = False
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None
    beta_constraint: Any = None
    gamma_constraint: Any = None
    activity_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)
        put("axis", _axes_value(self.axis, type(self).__name__))
        put("rms_scaling", _validation.boolean(self.rms_scaling, "rms_scaling"))

    def weight_names(self) -> tuple[str, ...]:
        """``gamma`` (when ``scale`` or ``rms_scaling``), ``beta`` (when
        ``center`` and not ``rms_scaling``)."""
        gamma = self.scale or self.rms_scaling
        beta = self.center and not self.rms_scaling
        return tuple(n for n, kept in (("gamma", gamma), ("beta", beta)) if kept)

    def _param_axes(self, ndim: int, shape: Any) -> tuple[int, ...]:
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        return tuple(sorted(_resolve(a, ndim, self, shape) for a in axes))

    def _param_rank(self) -> int:
        return len(self.axis) if isinstance(self.axis, tuple) else 1

    def _normalize(self, params: Mapping[str, jax.Array], x: jax.Array) -> jax.Array:
        axes = self._param_axes(x.ndim, x.shape)
        gamma = self._broadcast(params.get("gamma"), x)
        if self.rms_scaling:
            y = x * lax.rsqrt(jnp.var(x, axes, keepdims=True) + self.epsilon)
            return y if gamma is None else y * gamma
        mean, variance = _moments(x, axes)
        beta = self._broadcast(params.get("beta"), x)
        return _normalized(x, mean, variance, self.epsilon, gamma, beta)


@dataclasses.dataclass(frozen=True)
class GroupNormalization(_Normalization):
    """Spec of Keras 3's ``GroupNormalization``: the channels (``axis``)
    split into ``groups`` groups of consecutive channels, each example
    normalized per group over the group's channels and every other axis but
    the first (the batch); ``gamma`` and ``beta`` per channel.

    ``groups=1`` normalizes each example over everything (as
    LayerNormalization over all its axes, with per-channel params);
    ``groups=-1`` (one group per channel) is instance normalization.

    Args:
      groups: a positive int dividing the channel count, or -1.
      axis: the channels' axis, an int, not the batch axis.
      epsilon: added to the variance.
      center, scale: whether there is ``beta`` / ``gamma``.
      beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint, activity_regularizer: as
        Keras's.
      name, dtype, param_dtype: as every spec (no autocast of the input, as
        Keras).

    Raises:
      ValueError: for ``groups`` not a positive int or -1; at ``init`` and
        ``apply``, channels that ``groups`` does not divide, or an ``axis``
        out of range or on the batch.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.GroupNormalization(groups=2)
    >>> params = layer.init(0, (None, 8, 4))
    >>> x = jnp.concatenate([jnp.ones((1, 8, 2)), 5 * jnp.arange(16.0).reshape(1, 8, 2)], -1)
    >>> y = layer.apply(params, x)
    >>> [round(float(v), 3) for v in (y[..., :2].mean(), y[..., 2:].std())]
    [0.0, 1.0]
    """

    groups: int = 32
    axis: int = -1
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None
    beta_constraint: Any = None
    gamma_constraint: Any = None
    activity_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)
        cls = type(self).__name__
        groups = self.groups
        if (
            isinstance(groups, bool)
            or not isinstance(groups, numbers.Integral)
            or (groups <= 0 and groups != -1)
        ):
            raise ValueError(
                f"`groups` of {cls} must be a positive int, or -1 for instance "
                f"normalization; received groups={groups!r}."
            )
        put("groups", int(groups))
        put("axis", _int_axis(self.axis, "axis", cls))

    def _param_axes(self, ndim: int, shape: Any) -> tuple[int, ...]:
        axis = _resolve(self.axis, ndim, self, shape)
        if axis == 0:
            raise ValueError(
                f"`axis` of {type(self).__name__} (={self.axis}) is the batch axis "
                f"of the input of shape {tuple(shape)}; give the channels' axis."
            )
        return (axis,)

    def _groups(self, channels: int) -> int:
        return channels if self.groups == -1 else self.groups

    def _check_sizes(self, sizes: tuple[int, ...], where: str) -> None:
        (channels,) = sizes
        if channels % self._groups(channels) or channels < self._groups(channels):
            raise ValueError(
                f"{type(self).__name__}(groups={self.groups}) needs a channel count "
                f"divisible by groups; received {channels} channels ({where})."
            )

    def _normalize(self, params: Mapping[str, jax.Array], x: jax.Array) -> jax.Array:
        (axis,) = self._param_axes(x.ndim, x.shape)
        channels = x.shape[axis]
        groups = self._groups(channels)
        grouped = (*x.shape[:axis], groups, channels // groups, *x.shape[axis + 1 :])
        xg = x.reshape(grouped)
        axes = tuple(a for a in range(1, xg.ndim) if a != axis)
        mean, variance = _moments(xg, axes)
        per_channel = [1] * xg.ndim
        per_channel[axis : axis + 2] = [groups, channels // groups]
        gamma, beta = (
            None if params.get(n) is None else params[n].reshape(per_channel)
            for n in ("gamma", "beta")
        )
        return _normalized(xg, mean, variance, self.epsilon, gamma, beta).reshape(
            x.shape
        )

    def stream_timing(self) -> stream_contract.Timing:
        """Refused: its statistics span every step of the sequence.

        Raises:
          TypeError: always.
        """
        raise stream_contract.cannot_stream(
            self,
            "its statistics span every step of the sequence (use "
            "LayerNormalization or BatchNormalization over the channels to stream)",
        )
