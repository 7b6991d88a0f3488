"""Dropout and noise, Keras 3's regularization layers: ``Dropout``,
``SpatialDropout1D/2D/3D``, ``GaussianNoise``, ``GaussianDropout``.

Each is the identity at inference (``apply``: Keras's ``training=False``)
and draws in training (``apply_training``, run by :func:`conv1djax.apply_training`
and the train step with the layer's own key), from the distribution Keras
draws from: Keras's random bits differ (its ``SeedGenerator``), so the tests
compare distributions, means, variances and the masks' structure. ``seed``,
as in Keras, makes a layer's draws reproducible: here the call's key does
that, and a layer's ``seed``, when set, is folded into its key (two layers
with different seeds draw differently from one key). A ``rate`` (or
``stddev``) of 0 draws nothing; Keras's ``rate=1`` drops everything.

They have no params and stream (as the identity: streaming is inference).

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> layer = cj.Dropout(0.5)
>>> x = jnp.ones((2, 1000, 4))
>>> bool(jnp.array_equal(layer.apply({}, x), x))  # inference: the identity
True
>>> y, _ = cj.apply_training(layer, {}, x, key=jax.random.key(0))
>>> round(float((y == 0).mean()), 1), float(y.max())  # half dropped, 1 / 0.5
(0.5, 2.0)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from conv1djax import _validation, protocol, stream_contract
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.layers.base import ParameterFree
from conv1djax.layers.params import check_no_params
from conv1djax.shapes import check_input, check_shape_entries, split_input_shape


def _fraction(value: Any, name: str, cls: str) -> float:
    """A float in [0, 1], as Keras checks ``rate`` and ``stddev``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` of {cls} must be a float between 0 and 1; received "
            f"{name}={value!r} of type {type(value).__name__}."
        )
    if not 0 <= float(value) <= 1:
        raise ValueError(
            f"`{name}` of {cls} must be a float between 0 and 1; received "
            f"{name}={value!r}."
        )
    return float(value)


def _seed(value: Any, cls: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`seed` of {cls} must be an int or None; received seed={value!r}."
        )
    return int(value)


class _Noise(ParameterFree):
    """The identity at inference; ``_draw(x, key)`` in training. Subclasses
    are frozen dataclasses with Keras's fields (``seed`` among them) and
    say how much they draw (``_active``)."""

    if TYPE_CHECKING:  # a field of every subclass
        seed: int | None

    # The field that says how much the layer draws (Keras's name), checked to
    # lie in [0, 1]; 0 draws nothing.
    _AMOUNT: ClassVar[str] = "rate"

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        cls = type(self).__name__
        put(self._AMOUNT, _fraction(getattr(self, self._AMOUNT), self._AMOUNT, cls))
        put("seed", _seed(self.seed, cls))

    def _active(self) -> bool:
        return bool(getattr(self, self._AMOUNT) > 0)

    def _draw(self, x: jax.Array, key: jax.Array) -> jax.Array:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The input shape: nothing changes shape."""
        return check_shape_entries(input_shape)

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Inference: ``x`` as it is (a floating ``x`` cast to the policy's
        compute dtype when ``dtype`` is set)."""
        check_no_params(self, params)
        return self.cast_input(check_input(x, type(self).__name__, params))

    def apply_training(
        self, params: Params, x: ArrayLike, *, key: jax.Array | None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Training: ``(the noisy x, {})``; ``key`` is the layer's own PRNG
        key (its ``seed``, when set, folded in).

        Raises:
          ValueError: when ``key`` is None and the layer draws.
        """
        x = self.apply(params, x)
        if not self._active():
            return x, {}
        key = protocol.require_key(self, key)
        if self.seed is not None:
            key = jax.random.fold_in(key, self.seed)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(
                f"{type(self).__name__} draws floating noise; received an input of "
                f"dtype {x.dtype} (cast it to a floating dtype first)."
            )
        return self._draw(x, key), {}

    def stream_timing(self) -> stream_contract.Timing:
        """Streams step by step, as the identity (streaming is inference).

        Raises:
          TypeError: for the 2-D and 3-D spatial dropouts.
        """
        stream_contract.require_1d(self)
        return stream_contract.Timing()

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The chunk, as ``apply`` returns it."""
        return self.apply(params, z)


def _dropped(
    x: jax.Array, rate: float, mask_shape: tuple[int, ...], key: jax.Array
) -> jax.Array:
    """Keras's ``backend.random.dropout``: a Bernoulli keep mask of
    ``mask_shape`` broadcast to ``x``, the kept entries scaled by
    ``1 / (1 - rate)``; ``rate=1`` drops everything."""
    if rate == 1.0:
        return jnp.zeros_like(x)
    keep = 1.0 - rate
    mask = jnp.broadcast_to(jax.random.bernoulli(key, keep, mask_shape), x.shape)
    return jnp.where(mask, x / jnp.asarray(keep, x.dtype), jnp.zeros((), x.dtype))


@dataclasses.dataclass(frozen=True)
class Dropout(_Noise):
    """Spec of a dropout layer, Keras 3's ``Dropout``: in training, each
    entry is zeroed with probability ``rate`` and the others scaled by
    ``1 / (1 - rate)``; at inference, the identity.

    Args:
      rate: the fraction dropped, in [0, 1].
      noise_shape: the shape of the keep mask, broadcast to the input's (one
        entry per input axis; None entries take the input's length), e.g.
        ``(None, 1, None)`` for one mask over every step of a sequence;
        None: one draw per entry.
      seed: an int folded into the layer's key, or None.
      name, dtype: as every spec.

    Raises:
      ValueError, TypeError: for a ``rate`` outside [0, 1] or not a number, a
        ``noise_shape`` that is not a tuple of positive ints and Nones, or a
        ``seed`` that is not an int; (in training) a ``noise_shape`` that
        does not broadcast to the input.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Dropout(0.5, noise_shape=(None, 1, None))  # one mask per sequence
    >>> y, _ = cj.apply_training(layer, {}, jnp.ones((2, 6, 3)), key=jax.random.key(0))
    >>> bool(jnp.all(y == y[:, :1]))  # the same for every step
    True
    """

    rate: float
    noise_shape: tuple[int | None, ...] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "noise_shape", _noise_shape(self.noise_shape))

    def _draw(self, x: jax.Array, key: jax.Array) -> jax.Array:
        return _dropped(x, self.rate, self._mask_shape(x.shape), key)

    def _mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.noise_shape is None:
            return shape
        fits = len(self.noise_shape) == len(shape) and all(
            n is None or n in (1, s)
            for n, s in zip(self.noise_shape, shape, strict=False)
        )
        if not fits:
            raise ValueError(
                f"Dropout(noise_shape={self.noise_shape}) does not broadcast to the "
                f"input of shape {shape}: give one entry per axis, each None, 1 or "
                "the input's length."
            )
        return tuple(
            s if n is None else n for n, s in zip(self.noise_shape, shape, strict=True)
        )


def _noise_shape(value: Any) -> tuple[int | None, ...] | None:
    """Keras's ``noise_shape`` check: a sequence of positive ints and Nones."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ValueError(
            "`noise_shape` of Dropout must be a tuple of ints and Nones; received "
            f"noise_shape={value!r}."
        )
    entries = tuple(value)
    for i, n in enumerate(entries):
        if n is None:
            continue
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(
                "`noise_shape` of Dropout must hold positive ints and Nones; "
                f"received noise_shape={value!r} (entry {i} is {n!r})."
            )
    return tuple(None if n is None else int(n) for n in entries)


class _SpatialDropout(_Noise):
    """Keras's spatial dropout: one draw per example and channel, over every
    spatial position (for inputs whose neighbouring positions are
    correlated, as after a convolution)."""

    rank: ClassVar[int]
    if TYPE_CHECKING:  # fields of the subclasses (data_format: 2-D and 3-D)
        rate: float
        data_format: str | None

    def __post_init__(self) -> None:
        super().__post_init__()
        if hasattr(self, "data_format"):
            fmt = _validation.data_format(self.data_format)
            object.__setattr__(self, "data_format", fmt)

    @property
    def _format(self) -> str:
        return getattr(self, "data_format", "channels_last")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """As every spec's; Keras's spatial dropouts write their policy by
        name, so its default, ``"float32"``, reads as ``dtype=None``."""
        if config.get("dtype") == "float32":
            config = {**config, "dtype": None}
        return super().from_config(config)

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The input shape, checked to have ``rank`` spatial axes, channels
        and batch axes."""
        shape = check_shape_entries(input_shape)
        if len(shape) < self.rank + 2:
            split_input_shape(shape, self._format, self.rank, type(self).__name__)
        return shape

    def _draw(self, x: jax.Array, key: jax.Array) -> jax.Array:
        self.compute_output_shape(x.shape)
        num_batch = x.ndim - self.rank - 1
        mask = list(x.shape)
        first = num_batch + (1 if self._format == "channels_first" else 0)
        for axis in range(first, first + self.rank):
            mask[axis] = 1
        return _dropped(x, self.rate, tuple(mask), key)


@dataclasses.dataclass(frozen=True)
class SpatialDropout1D(_SpatialDropout):
    """Spec of Keras 3's ``SpatialDropout1D``: drops whole channels of
    ``batch_shape + (steps, channels)`` inputs in training (one draw per
    example and channel), the identity at inference.

    Args:
      rate: the fraction of channels dropped, in [0, 1].
      seed: an int folded into the layer's key, or None.
      name, dtype: as every spec.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> y, _ = cj.apply_training(cj.SpatialDropout1D(0.5), {}, jnp.ones((2, 6, 3)),
    ...                          key=jax.random.key(0))
    >>> bool(jnp.all(y == y[:, :1]))  # whole channels dropped or kept
    True
    """

    rate: float
    seed: int | None = None

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class SpatialDropout2D(_SpatialDropout):
    """Spec of Keras 3's ``SpatialDropout2D``: drops whole feature maps of
    2-D inputs in training, the identity at inference.

    Args:
      rate: the fraction of channels dropped, in [0, 1].
      data_format: "channels_last" (default; None means it too) or
        "channels_first".
      seed: an int folded into the layer's key, or None.
      name, dtype: as every spec.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.SpatialDropout2D(0.5, data_format="channels_first")
    >>> y, _ = cj.apply_training(layer, {}, jnp.ones((2, 3, 4, 4)), key=jax.random.key(0))
    >>> bool(jnp.all(y == y[:, :, :1, :1]))  # whole feature maps
    True
    """

    rate: float
    data_format: str | None = None
    seed: int | None = None

    rank: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class SpatialDropout3D(_SpatialDropout):
    """Spec of Keras 3's ``SpatialDropout3D``: drops whole feature volumes
    of 3-D inputs in training, the identity at inference.

    Args:
      rate: the fraction of channels dropped, in [0, 1].
      data_format: "channels_last" (default; None means it too) or
        "channels_first".
      seed: an int folded into the layer's key, or None.
      name, dtype: as every spec.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> y, _ = cj.apply_training(cj.SpatialDropout3D(0.5), {}, jnp.ones((2, 3, 3, 3, 4)),
    ...                          key=jax.random.key(0))
    >>> bool(jnp.all(y == y[:, :1, :1, :1]))  # whole feature volumes
    True
    """

    rate: float
    data_format: str | None = None
    seed: int | None = None

    rank: ClassVar[int] = 3


@dataclasses.dataclass(frozen=True)
class GaussianNoise(_Noise):
    """Spec of Keras 3's ``GaussianNoise``: adds zero-mean Gaussian noise of
    standard deviation ``stddev`` in training, the identity at inference.

    Args:
      stddev: the noise's standard deviation, in [0, 1] (Keras's bound).
      seed: an int folded into the layer's key, or None.
      name, dtype: as every spec.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> y, _ = cj.apply_training(cj.GaussianNoise(0.1), {}, jnp.zeros((4, 1000, 2)),
    ...                          key=jax.random.key(0))
    >>> round(float(y.std()), 2)
    0.1
    """

    stddev: float
    seed: int | None = None

    _AMOUNT: ClassVar[str] = "stddev"

    def _draw(self, x: jax.Array, key: jax.Array) -> jax.Array:
        noise = jax.random.normal(key, x.shape, x.dtype)
        return x + jnp.asarray(self.stddev, x.dtype) * noise


@dataclasses.dataclass(frozen=True)
class GaussianDropout(_Noise):
    """Spec of Keras 3's ``GaussianDropout``: multiplies by Gaussian noise of
    mean 1 and standard deviation ``sqrt(rate / (1 - rate))`` in training,
    the identity at inference.

    Args:
      rate: the drop probability the noise stands for, in [0, 1].
      seed: an int folded into the layer's key, or None.
      name, dtype: as every spec.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> y, _ = cj.apply_training(cj.GaussianDropout(0.5), {}, jnp.ones((4, 1000, 2)),
    ...                          key=jax.random.key(0))
    >>> round(float(y.mean()), 1), round(float(y.std()), 1)  # sqrt(0.5 / 0.5)
    (1.0, 1.0)
    """

    rate: float
    seed: int | None = None

    def _draw(self, x: jax.Array, key: jax.Array) -> jax.Array:
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = jax.random.normal(key, x.shape, x.dtype)
        return x * (1 + jnp.asarray(stddev, x.dtype) * noise)
