"""ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D: Keras 3's
parameter-free reshaping layers, as frozen, hashable specs.

Each spec pads, crops or repeats the spatial axes of inputs of shape
``batch_shape + (*spatial, channels)`` (or ``batch_shape + (channels,
*spatial)`` with ``data_format="channels_first"``), one or more batch axes.
Their arguments are Keras's, canonicalised when the spec is built: a padding
or cropping becomes one ``(left, right)`` pair per spatial axis and a size one
int per spatial axis, so ``ZeroPadding2D(1)``, ``ZeroPadding2D((1, 1))`` and
``ZeroPadding2D(((1, 1), (1, 1)))`` are equal specs. ``init`` returns ``{}``,
and ``apply`` computes what the Keras layer computes on the JAX backend, with
the same ops (``jnp.pad``, slicing, ``jnp.repeat``, ``jax.image.resize``).

>>> from conv1djax.layers.reshaping import ZeroPadding2D
>>> ZeroPadding2D((1, 2)).padding
((1, 1), (2, 2))
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from conv1djax import _validation, shapes, stream_contract
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.layers.base import Configurable, ParameterFree, SpatialParameterFree
from conv1djax.layers.params import check_no_params
from conv1djax.shapes import check_input

# What ``ops.image.resize`` offers on Keras's JAX backend, in Keras's order;
# "nearest" is a repeat in UpSampling2D, as Keras computes it.
INTERPOLATIONS = ("bicubic", "bilinear", "lanczos3", "lanczos5", "nearest")


# ---- argument canonicalisation ----------------------------------------------------


def _as_sequence(value: Any) -> tuple[Any, ...] | None:
    """``value`` as a tuple when it is a list, a tuple or an array of rank
    >= 1 (NumPy's or JAX's), else None."""
    if isinstance(value, str | bytes):
        return None
    if isinstance(value, Sequence) or (
        hasattr(value, "__array__") and np.ndim(value) >= 1
    ):
        return tuple(value)
    return None


def _int_or_none(value: Any) -> int | None:
    """``value`` as a Python int, or None when it is not an int (bools are
    not ints here)."""
    if type(value).__name__ in ("bool", "bool_"):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _pair_forms(rank: int) -> str:
    if rank == 1:
        return "an int, a (left, right) pair of ints, or ((left, right),)"
    return (
        f"an int, or a tuple of {rank} entries, one per spatial axis, each an int "
        "(the same on both sides) or a (left, right) pair of ints"
    )


def side_pairs(value: Any, name: str, rank: int) -> tuple[tuple[int, int], ...]:
    """Canonicalises a padding or cropping to one ``(left, right)`` pair of
    non-negative ints per spatial axis.

    Accepted, as Keras accepts them: an int (every side); a tuple of ``rank``
    entries, each an int (both sides of that axis) or a ``(left, right)``
    pair; in 1-D a ``(left, right)`` pair of ints, or the canonical
    ``((left, right),)``, but not ``(n,)``, which Keras 3 refuses ("must be
    a tuple of 2 integers").

    Raises:
      TypeError: for a value or an entry that is not an int (bools and
        floats included).
      ValueError: for a tuple of the wrong length or nesting, or a negative
        entry.
    """
    forms = _pair_forms(rank)
    seq = _as_sequence(value)

    def entry_int(item: Any) -> int:
        n = _int_or_none(item)
        if n is None:
            raise TypeError(
                f"`{name}` must hold ints; received {item!r} of type "
                f"{type(item).__name__} in {name}={value!r}."
            )
        return n

    if seq is None:
        n = _int_or_none(value)
        if n is None:
            raise TypeError(
                f"`{name}` must be {forms}; received {value!r} of type "
                f"{type(value).__name__}."
            )
        pairs = ((n, n),) * rank
    elif rank == 1 and len(seq) == 2 and all(_as_sequence(v) is None for v in seq):
        pairs = ((entry_int(seq[0]), entry_int(seq[1])),)
    elif len(seq) != rank or (rank == 1 and _as_sequence(seq[0]) is None):
        raise ValueError(
            f"`{name}` must be {forms}; received {name}={value!r} of length {len(seq)}."
        )
    else:
        listed: list[tuple[int, int]] = []
        for axis, entry in enumerate(seq):
            sides = _as_sequence(entry)
            if sides is None:
                n = entry_int(entry)
                listed.append((n, n))
            elif len(sides) != 2 or any(_as_sequence(s) is not None for s in sides):
                raise ValueError(
                    f"`{name}[{axis}]` (the {shapes.SPATIAL_AXES[rank][axis]} axis) must be an "
                    f"int or a (left, right) pair of ints; received {entry!r} in "
                    f"{name}={value!r}."
                )
            else:
                listed.append((entry_int(sides[0]), entry_int(sides[1])))
        pairs = tuple(listed)
    if any(side < 0 for pair in pairs for side in pair):
        raise ValueError(
            f"`{name}` must be >= 0 on every side; received {name}={value!r}."
        )
    return pairs


def upsampling_sizes(value: Any, rank: int) -> tuple[int, ...]:
    """Canonicalises an upsampling ``size``: an int (every axis) or a tuple of
    ``rank`` positive ints.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for a tuple of the wrong length or a factor < 1.
    """
    seq = _as_sequence(value)
    if seq is not None and len(seq) != rank:
        ints = "1 int" if rank == 1 else f"{rank} ints"
        raise ValueError(
            f"`size` must be an int or a tuple of {ints} (one factor per spatial "
            f"axis); received size={value!r} of length {len(seq)}."
        )
    return _validation.int_tuple(value if seq is None else seq, "size", rank)


# ---- the shared machinery ---------------------------------------------------------


class _Reshaping(SpatialParameterFree):
    """Shapes, ``apply`` and configs shared by the nine specs; subclasses are
    frozen dataclasses with Keras's fields, set ``rank`` and implement
    ``_lengths`` (output lengths, checked) and ``_call``."""

    def _lengths(self, spatial: Shape, input_shape: ShapeLike) -> Shape:
        raise NotImplementedError

    def _call(self, x: jax.Array, num_batch: int, spatial: Shape) -> jax.Array:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The output shape for ``input_shape`` (None entries stay None).

        Raises:
          ValueError: for an input of too low a rank, or (cropping) an axis
            that the cropping leaves nothing of.
          TypeError: when ``input_shape`` is not a sequence of ints and Nones.
        """
        batch_shape, spatial, channels = self._split(input_shape)
        lengths = self._lengths(spatial, input_shape)
        return shapes.join_shape(batch_shape, lengths, channels, self._format)

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """The padded, cropped or upsampled input, in the input's dtype (a
        floating input is first cast to the policy's compute dtype when
        ``dtype`` is set).

        Raises:
          ValueError: when ``params`` is not ``{}``, or for an input of too
            low a rank or one the cropping leaves nothing of (at trace time,
            under ``jax.jit`` too).
        """
        check_no_params(self, params)
        x = self.cast_input(check_input(x, type(self).__name__, params))
        batch_shape, spatial, _ = self._split(x.shape)
        self._lengths(spatial, x.shape)
        return self._call(x, len(batch_shape), spatial)


class _DelayLine(_Reshaping):
    """What 1-D padding and cropping share in a stream: each is a delay line,
    its output step ``t`` the input step ``t - history`` (zeros before the
    stream and, at the flush, after it: the padding)."""

    def _delay_timing(self) -> stream_contract.Timing:
        raise NotImplementedError

    def stream_timing(self) -> stream_contract.Timing:
        """The delay and the flushed steps (see the subclasses).

        Raises:
          TypeError: for a layer that is not 1-D.
        """
        stream_contract.require_1d(self)
        return self._delay_timing()

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The window's steps less the history: the oldest first."""
        axis = stream_contract.time_axis(self) % z.ndim
        kept = z.shape[axis] - self.stream_timing().history
        return jax.lax.slice_in_dim(z, 0, kept, axis=axis)

    def stream_taps(
        self, params: Params
    ) -> tuple[list[int], Callable[[jax.Array], jax.Array]]:
        """A one-step chunk reads only the oldest step kept."""
        axis = stream_contract.time_axis(self)
        return [0], lambda w: jax.lax.slice_in_dim(w, 0, 1, axis=axis % w.ndim)


def _pad_or_crop_config(spec: Any, name: str) -> dict[str, Any]:
    config = Configurable.get_config(spec)
    if spec.rank == 1:  # Keras's 1-D layers take (and write) one pair
        config[name] = config[name][0]
    return config


# ---- ZeroPadding ------------------------------------------------------------------


class _ZeroPadding(_DelayLine):
    if TYPE_CHECKING:  # a field of the subclasses, canonical after __post_init__
        padding: Any

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        put("padding", side_pairs(self.padding, "padding", self.rank))
        self._canonical_format()

    def _lengths(self, spatial: Shape, input_shape: ShapeLike) -> Shape:
        del input_shape
        return tuple(
            None if n is None else n + left + right
            for n, (left, right) in zip(spatial, self.padding, strict=True)
        )

    def _call(self, x: jax.Array, num_batch: int, spatial: Shape) -> jax.Array:
        pads = [(0, 0)] * x.ndim
        for axis, pair in zip(self._spatial_axes(num_batch), self.padding, strict=True):
            pads[axis] = pair
        return jnp.pad(x, pads)

    def _delay_timing(self) -> stream_contract.Timing:
        # Its left zeros come first: each input step comes `left` steps
        # late; the flush emits the last `left` inputs and the right zeros.
        (left, right), = self.padding  # fmt: skip
        return stream_contract.Timing(tail=left + right, history=left)

    def get_config(self) -> dict[str, Any]:
        """``{"padding", "data_format"}`` in Keras's format (one pair in 1-D),
        which Keras's ``from_config`` reads."""
        return _pad_or_crop_config(self, "padding")


@dataclasses.dataclass(frozen=True)
class ZeroPadding1D(_ZeroPadding):
    """Spec of a zero-padding layer for 1-D inputs, Keras 3's ``ZeroPadding1D``.

    Adds zeros at the start and the end of the steps axis of inputs of shape
    ``batch_shape + (steps, channels)`` (or ``batch_shape + (channels,
    steps)``).

    Args:
      padding: an int (zeros on both sides), a ``(left, right)`` pair, or
        ``((left, right),)``; canonically ``((left, right),)``. ``(n,)`` is
        refused, as Keras 3 refuses it.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for negative entries, a tuple of the wrong length or
        nesting, or an unknown ``data_format``.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import ZeroPadding1D
    >>> layer = ZeroPadding1D((1, 2))
    >>> layer.padding, layer.compute_output_shape((None, 5, 3))
    (((1, 2),), (None, 8, 3))
    >>> layer.apply({}, jnp.ones((2, 5, 3))).shape
    (2, 8, 3)
    """

    padding: Any = 1
    data_format: str | None = None

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class ZeroPadding2D(_ZeroPadding):
    """Spec of a zero-padding layer for 2-D inputs, Keras 3's ``ZeroPadding2D``.

    Adds rows and columns of zeros around inputs of shape ``batch_shape +
    (rows, cols, channels)`` (or ``batch_shape + (channels, rows, cols)``).

    Args:
      padding: an int (every side), a tuple of 2 ints (symmetric per axis:
        ``(rows_pad, cols_pad)``), or 2 ``(left, right)`` pairs
        ``((top, bottom), (left, right))``; an int and a pair may be mixed.
        Canonically the 2 pairs.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for negative entries, a tuple of the wrong length or
        nesting, or an unknown ``data_format``.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import ZeroPadding2D
    >>> layer = ZeroPadding2D(((1, 0), 2))
    >>> layer.padding, layer.compute_output_shape((None, 4, 4, 3))
    (((1, 0), (2, 2)), (None, 5, 8, 3))
    >>> layer.apply({}, jnp.ones((2, 4, 4, 3))).shape
    (2, 5, 8, 3)
    """

    padding: Any = (1, 1)
    data_format: str | None = None

    rank: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class ZeroPadding3D(_ZeroPadding):
    """Spec of a zero-padding layer for 3-D inputs, Keras 3's ``ZeroPadding3D``.

    Adds zeros around the three spatial axes of inputs of shape ``batch_shape
    + (dim1, dim2, dim3, channels)`` (or ``batch_shape + (channels, dim1,
    dim2, dim3)``).

    Args:
      padding: an int (every side), a tuple of 3 ints (symmetric per axis), or
        3 ``(left, right)`` pairs; ints and pairs may be mixed. Canonically
        the 3 pairs.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for negative entries, a tuple of the wrong length or
        nesting, or an unknown ``data_format``.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import ZeroPadding3D
    >>> layer = ZeroPadding3D((1, 0, 2), data_format="channels_first")
    >>> layer.compute_output_shape((None, 3, 2, 2, 2))
    (None, 3, 4, 2, 6)
    >>> layer.apply({}, jnp.ones((1, 3, 2, 2, 2))).shape
    (1, 3, 4, 2, 6)
    """

    padding: Any = ((1, 1), (1, 1), (1, 1))
    data_format: str | None = None

    rank: ClassVar[int] = 3


# ---- Cropping ---------------------------------------------------------------------


class _Cropping(_DelayLine):
    if TYPE_CHECKING:  # a field of the subclasses, canonical after __post_init__
        cropping: Any

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        put("cropping", side_pairs(self.cropping, "cropping", self.rank))
        if hasattr(self, "data_format"):
            self._canonical_format()

    def _lengths(self, spatial: Shape, input_shape: ShapeLike) -> Shape:
        lengths = []
        for axis, (n, (left, right)) in enumerate(
            zip(spatial, self.cropping, strict=True)
        ):
            if n is not None and n - left - right <= 0:
                shown = self.cropping[0] if self.rank == 1 else self.cropping
                raise ValueError(
                    f"{type(self).__name__}(cropping={shown}) leaves nothing of "
                    f"the input's {shapes.SPATIAL_AXES[self.rank][axis]} axis: it has length {n} "
                    f"and the cropping removes {left} + {right} = {left + right}; "
                    f"received input_shape={tuple(input_shape)}."
                )
            lengths.append(None if n is None else n - left - right)
        return tuple(lengths)

    def _call(self, x: jax.Array, num_batch: int, spatial: Shape) -> jax.Array:
        index = [slice(None)] * x.ndim
        for axis, n, (left, right) in zip(
            self._spatial_axes(num_batch), spatial, self.cropping, strict=True
        ):
            index[axis] = slice(left, n - right)
        return x[tuple(index)]

    def _delay_timing(self) -> stream_contract.Timing:
        # Each output is the input `right` steps before the newest: the
        # first `left + right` outputs are placeholders for the cropped ones.
        (left, right), = self.cropping  # fmt: skip
        return stream_contract.Timing(latency=left + right, history=right)

    def get_config(self) -> dict[str, Any]:
        """``{"cropping"}`` (and ``"data_format"`` in 2-D and 3-D) in Keras's
        format (one pair in 1-D), which Keras's ``from_config`` reads."""
        return _pad_or_crop_config(self, "cropping")


@dataclasses.dataclass(frozen=True)
class Cropping1D(_Cropping):
    """Spec of a cropping layer for 1-D inputs, Keras 3's ``Cropping1D``.

    Trims steps off the start and the end of inputs of shape ``batch_shape +
    (steps, channels)``. As in Keras 3.15, there is no ``data_format``: the
    channel axis is last.

    Args:
      cropping: an int (both ends), a ``(left, right)`` pair, or
        ``((left, right),)``; canonically ``((left, right),)``. ``(n,)`` is
        refused, as Keras 3 refuses it.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for negative entries or a tuple of the wrong length or
        nesting; at init/apply/compute_output_shape, for a cropping that
        leaves no step.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import Cropping1D
    >>> layer = Cropping1D((1, 2))
    >>> layer.cropping, layer.compute_output_shape((None, 5, 3))
    (((1, 2),), (None, 2, 3))
    >>> layer.apply({}, jnp.arange(5.0).reshape(1, 5, 1))[0, :, 0]
    Array([1., 2.], dtype=float32)
    """

    cropping: Any = (1, 1)

    rank: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class Cropping2D(_Cropping):
    """Spec of a cropping layer for 2-D inputs, Keras 3's ``Cropping2D``.

    Trims rows and columns off the borders of inputs of shape ``batch_shape +
    (rows, cols, channels)`` (or ``batch_shape + (channels, rows, cols)``).

    Args:
      cropping: an int (every side), a tuple of 2 ints (symmetric per axis),
        or 2 ``(left, right)`` pairs ``((top, bottom), (left, right))``; ints
        and pairs may be mixed. Canonically the 2 pairs.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for negative entries, a tuple of the wrong length or
        nesting, or an unknown ``data_format``; at
        init/apply/compute_output_shape, for a cropping that leaves nothing of
        an axis.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import Cropping2D
    >>> layer = Cropping2D(((2, 2), (4, 4)))
    >>> layer.compute_output_shape((None, 28, 28, 3))
    (None, 24, 20, 3)
    >>> layer.apply({}, jnp.ones((2, 28, 28, 3))).shape
    (2, 24, 20, 3)
    """

    cropping: Any = ((0, 0), (0, 0))
    data_format: str | None = None

    rank: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class Cropping3D(_Cropping):
    """Spec of a cropping layer for 3-D inputs, Keras 3's ``Cropping3D``.

    Trims the borders of the three spatial axes of inputs of shape
    ``batch_shape + (dim1, dim2, dim3, channels)`` (or ``batch_shape +
    (channels, dim1, dim2, dim3)``).

    Args:
      cropping: an int (every side), a tuple of 3 ints (symmetric per axis),
        or 3 ``(left, right)`` pairs; ints and pairs may be mixed.
        Canonically the 3 pairs.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for entries that are not ints.
      ValueError: for negative entries, a tuple of the wrong length or
        nesting, or an unknown ``data_format``; at
        init/apply/compute_output_shape, for a cropping that leaves nothing of
        an axis.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import Cropping3D
    >>> layer = Cropping3D((2, 4, 2))
    >>> layer.compute_output_shape((None, 28, 28, 10, 3))
    (None, 24, 20, 6, 3)
    >>> layer.apply({}, jnp.ones((2, 28, 28, 10, 3))).shape
    (2, 24, 20, 6, 3)
    """

    cropping: Any = ((1, 1), (1, 1), (1, 1))
    data_format: str | None = None

    rank: ClassVar[int] = 3


# ---- UpSampling -------------------------------------------------------------------


class _UpSampling(_Reshaping):
    if TYPE_CHECKING:  # fields of the subclasses (interpolation: 2-D only)
        size: Any
        interpolation: str

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        put("size", upsampling_sizes(self.size, self.rank))
        if hasattr(self, "data_format"):
            self._canonical_format()
        if hasattr(self, "interpolation"):
            put(
                "interpolation",
                _validation.padding_name(
                    self.interpolation, INTERPOLATIONS, "interpolation"
                ),
            )

    def _lengths(self, spatial: Shape, input_shape: ShapeLike) -> Shape:
        del input_shape
        return tuple(
            None if n is None else n * s
            for n, s in zip(spatial, self.size, strict=True)
        )

    def _call(self, x: jax.Array, num_batch: int, spatial: Shape) -> jax.Array:
        if getattr(self, "interpolation", "nearest") != "nearest":
            return self._resize(x, num_batch, spatial)
        # Keras's nearest upsampling: a repeat along each axis in turn.
        for axis, s in zip(self._spatial_axes(num_batch), self.size, strict=True):
            x = jnp.repeat(x, s, axis=axis)
        return x

    def stream_timing(self) -> stream_contract.Timing:
        """1-D upsampling streams step by step, ``size`` outputs per input.

        Raises:
          TypeError: for a layer that is not 1-D.
        """
        stream_contract.require_1d(self)
        return stream_contract.Timing(rate=self.size[0])

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """Each step of the chunk repeated."""
        return self.apply(params, z)

    def _resize(self, x: jax.Array, num_batch: int, spatial: Shape) -> jax.Array:
        """Keras's ``ops.image.resize`` path, op for op: channels last, one
        batch axis, ``jax.image.resize`` (no antialiasing: it only acts when
        downsampling), then back."""
        batch_shape, dtype = x.shape[:num_batch], x.dtype
        if self._format == "channels_first":
            x = jnp.moveaxis(x, num_batch, -1)
        x = x.reshape((math.prod(batch_shape), *x.shape[num_batch:]))
        new = tuple(n * s for n, s in zip(spatial, self.size, strict=True))
        x = jax.image.resize(
            x,
            (x.shape[0], *new, x.shape[-1]),
            method=self.interpolation,
            antialias=False,
        )
        x = _back_to(x.reshape((*batch_shape, *x.shape[1:])), dtype)
        if self._format == "channels_first":
            x = jnp.moveaxis(x, -1, num_batch)
        return x


def _back_to(y: jax.Array, dtype: DTypeLike) -> jax.Array:
    """Keras's cast of a resized image back to the input's dtype (resizing
    an integer image computes in floats): rounded for integers, then clipped
    into the dtype's range (``ops.saturate_cast``) and cast."""
    if y.dtype == dtype:
        return y
    if jnp.issubdtype(dtype, jnp.integer):
        y = jnp.round(y)

    def bounds(dt: DTypeLike) -> tuple[Any, Any]:
        if dt == np.bool_:
            return 0, 1
        info = np.iinfo(dt) if jnp.issubdtype(dt, jnp.integer) else jnp.finfo(dt)
        return info.min, info.max

    (in_min, in_max), (out_min, out_max) = bounds(y.dtype), bounds(dtype)
    low = np.asarray(np.maximum(in_min, out_min)).astype(y.dtype)
    if low < out_min:
        low = np.nextafter(low, 0, dtype=y.dtype)
    high = np.asarray(np.minimum(in_max, out_max)).astype(y.dtype)
    if high > out_max:
        high = np.nextafter(high, 0, dtype=y.dtype)
    return jnp.clip(y, low, high).astype(dtype)


@dataclasses.dataclass(frozen=True)
class UpSampling1D(_UpSampling):
    """Spec of an upsampling layer for 1-D inputs, Keras 3's ``UpSampling1D``.

    Repeats each step ``size`` times along the steps axis of inputs of shape
    ``batch_shape + (steps, channels)``. As in Keras 3.15, there is no
    ``data_format``: the channel axis is last.

    Args:
      size: a positive int, the upsampling factor (or a 1-tuple, the
        canonical form ``(size,)``).

    Raises:
      TypeError: for a ``size`` that is not an int.
      ValueError: for ``size`` < 1 or a tuple of the wrong length.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import UpSampling1D
    >>> layer = UpSampling1D(3)
    >>> layer.size, layer.compute_output_shape((None, 5, 2))
    ((3,), (None, 15, 2))
    >>> layer.apply({}, jnp.array([[[1.0], [2.0]]]))[0, :, 0]
    Array([1., 1., 1., 2., 2., 2.], dtype=float32)
    """

    size: Any = 2

    rank: ClassVar[int] = 1

    def get_config(self) -> dict[str, Any]:
        """``{"size": int}`` (and the name, and the policy when set),
        Keras's format (its ``UpSampling1D`` takes an int only)."""
        config = Configurable.get_config(self)
        config["size"] = self.size[0]
        return config


@dataclasses.dataclass(frozen=True)
class UpSampling2D(_UpSampling):
    """Spec of an upsampling layer for 2-D inputs, Keras 3's ``UpSampling2D``.

    Upsamples the rows and columns of inputs of shape ``batch_shape + (rows,
    cols, channels)`` (or ``batch_shape + (channels, rows, cols)``) by
    integer factors: ``"nearest"`` repeats them (as Keras does, with
    ``repeat``); the other interpolations resize the image with
    ``jax.image.resize`` (what Keras's ``ops.image.resize`` calls on the JAX
    backend), to ``(rows * size[0], cols * size[1])``.

    Args:
      size: an int (both axes) or a tuple of 2 positive ints
        ``(rows_factor, cols_factor)``.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      interpolation: one of "bicubic", "bilinear", "lanczos3", "lanczos5",
        "nearest" (default), any case.

    Raises:
      TypeError: for a ``size`` entry that is not an int, or an
        ``interpolation`` that is not a string.
      ValueError: for a factor < 1, a tuple of the wrong length, or an unknown
        ``data_format`` or ``interpolation``.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import UpSampling2D
    >>> layer = UpSampling2D((1, 2), interpolation="Bilinear")
    >>> layer.interpolation, layer.compute_output_shape((None, 4, 4, 3))
    ('bilinear', (None, 4, 8, 3))
    >>> layer.apply({}, jnp.ones((2, 4, 4, 3))).shape
    (2, 4, 8, 3)
    """

    size: Any = (2, 2)
    data_format: str | None = None
    interpolation: str = "nearest"

    rank: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class UpSampling3D(_UpSampling):
    """Spec of an upsampling layer for 3-D inputs, Keras 3's ``UpSampling3D``.

    Repeats the entries of the three spatial axes of inputs of shape
    ``batch_shape + (dim1, dim2, dim3, channels)`` (or ``batch_shape +
    (channels, dim1, dim2, dim3)``) ``size[0]``, ``size[1]`` and ``size[2]``
    times.

    Args:
      size: an int (every axis) or a tuple of 3 positive ints.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``size`` entry that is not an int.
      ValueError: for a factor < 1, a tuple of the wrong length, or an unknown
        ``data_format``.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.reshaping import UpSampling3D
    >>> layer = UpSampling3D((2, 1, 3))
    >>> layer.compute_output_shape((None, 1, 2, None, 3))
    (None, 2, 2, None, 3)
    >>> layer.apply({}, jnp.ones((2, 1, 2, 1, 3))).shape
    (2, 2, 2, 3, 3)
    """

    size: Any = (2, 2, 2)
    data_format: str | None = None

    rank: ClassVar[int] = 3


# ---- Flatten, Reshape: one batch axis, the rest reshaped ----------------------------


def _one_batch_axis(
    layer: ParameterFree, input_shape: ShapeLike, minimum: int
) -> Shape:
    """``input_shape`` checked to have at least ``minimum`` axes, the first
    the batch axis (Keras's ``Flatten`` and ``Reshape`` keep it alone)."""
    shape = shapes.check_shape_entries(input_shape)
    if len(shape) < minimum:
        raise ValueError(
            f"{type(layer).__name__} takes inputs of rank >= {minimum}, the first "
            f"axis the batch; received input_shape={shape}."
        )
    return shape


@dataclasses.dataclass(frozen=True)
class Flatten(ParameterFree):
    """Spec of a flattening layer, Keras 3's ``Flatten``: ``(batch, *rest)``
    to ``(batch, prod(rest))`` (``(batch,)`` to ``(batch, 1)``), the first
    axis the batch.

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first": a channels-first input is first transposed to
        channels last, ``(batch, C, *spatial)`` to ``(batch, *spatial, C)``,
        so the flattened order is the channels-last one, as Keras does.
      trainable, dtype, param_dtype, name: as every spec.

    It does not stream (its output mixes every step).

    Example usage:

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> cj.Flatten().compute_output_shape((None, 10, 64))
    (None, 640)
    >>> x = jnp.arange(6.0).reshape(1, 2, 3)  # channels first: 2 channels, 3 steps
    >>> cj.Flatten(data_format="channels_first").apply({}, x)
    Array([[0., 3., 1., 4., 2., 5.]], dtype=float32)
    """

    data_format: str | None = "channels_last"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "data_format", _validation.data_format(self.data_format)
        )

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """``(batch, prod(rest))``, None when an entry of ``rest`` is.

        Raises:
          ValueError: for a rank-0 shape.
        """
        shape = _one_batch_axis(self, input_shape, 1)
        rest = shape[1:]
        if None in rest:
            return (shape[0], None)
        return (shape[0], math.prod(cast(tuple[int, ...], rest)))

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """``x`` flattened after its batch axis (channels-first inputs in
        channels-last order); a floating ``x`` cast to the policy's compute
        dtype when ``dtype`` is set."""
        check_no_params(self, params)
        x = self.cast_input(check_input(x, "Flatten", params))
        shape = _one_batch_axis(self, jnp.shape(x), 1)
        if self.data_format == "channels_first" and len(shape) > 2:
            x = jnp.transpose(x, (0, *range(2, len(shape)), 1))
        return x.reshape(shape[0], math.prod(shape[1:]))


def _target_shape(value: Any) -> tuple[int, ...]:
    """A ``target_shape`` as a tuple of ints, each >= 0 or one -1 (Keras's
    ``validate_reshape_shape``)."""
    seq = _as_sequence(value)
    entries = None if seq is None else [_int_or_none(v) for v in seq]
    if entries is None or None in entries:
        raise TypeError(
            f"`target_shape` must be a tuple of ints (one may be -1); received "
            f"target_shape={value!r}."
        )
    target = tuple(int(v) for v in entries if v is not None)
    if any(v < -1 for v in target):
        raise ValueError(
            "Each entry of `target_shape` must be a non-negative int, or -1 for a "
            f"single unknown entry; received target_shape={target}."
        )
    if target.count(-1) > 1:
        raise ValueError(
            f"`target_shape` may hold one -1 only; received target_shape={target}."
        )
    return target


@dataclasses.dataclass(frozen=True)
class Reshape(ParameterFree):
    """Spec of a reshaping layer, Keras 3's ``Reshape``: ``(batch, *rest)``
    to ``(batch, *target_shape)``, the first axis the batch.

    Args:
      target_shape: the output shape without the batch axis, a tuple of ints;
        one entry may be -1, found from the input's size.
      trainable, dtype, param_dtype, name: as every spec.

    Raises:
      TypeError: for a ``target_shape`` that is not a tuple of ints.
      ValueError: for an entry below -1 or more than one -1; (at
        ``compute_output_shape``, ``init`` and ``apply``) for an input whose
        size does not fit, with Keras's message.

    It does not stream (its output may mix steps).

    Example usage:

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Reshape((-1, 2, 2))
    >>> layer.compute_output_shape((None, 12)), layer.compute_output_shape((None, None))
    ((None, 3, 2, 2), (None, None, 2, 2))
    >>> layer.apply({}, jnp.ones((5, 12))).shape
    (5, 3, 2, 2)
    """

    target_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "target_shape", _target_shape(self.target_shape))

    def _resolve(self, rest: Shape) -> Shape:
        """``target_shape`` for an input of ``rest`` (its shape after the
        batch axis): the -1 found, or None when an entry of ``rest`` is."""
        target = self.target_shape
        if None in rest:
            return tuple(None if v == -1 else v for v in target)
        size = math.prod(cast(tuple[int, ...], rest))
        if -1 not in target:
            if size != math.prod(target):
                raise ValueError(
                    "The total size of the tensor must be unchanged. Received: "
                    f"input_shape={rest}, target_shape={target}"
                )
            return target
        known = math.prod(v for v in target if v != -1)
        if known == 0 or size % known:
            raise ValueError(
                "The total size of the tensor must be unchanged, however, the input "
                "size cannot be divided by the specified dimensions in target_shape. "
                f"Received: input_shape={rest}, target_shape={target}"
            )
        return tuple(size // known if v == -1 else v for v in target)

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """``(batch, *target_shape)``, the -1 found (None where unknown).

        Raises:
          ValueError: for a rank-0 shape or a size that does not fit.
        """
        shape = _one_batch_axis(self, input_shape, 1)
        return (shape[0], *self._resolve(shape[1:]))

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """``x`` reshaped to ``(batch, *target_shape)``; a floating ``x``
        cast to the policy's compute dtype when ``dtype`` is set."""
        check_no_params(self, params)
        x = self.cast_input(check_input(x, "Reshape", params))
        shape = _one_batch_axis(self, jnp.shape(x), 1)
        return x.reshape(shape[0], *self._resolve(shape[1:]))
