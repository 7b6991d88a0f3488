"""MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and their global forms: Keras 3's
parameter-free pooling layers, as frozen, hashable specs.

Each spec pools the spatial axes of inputs of shape ``batch_shape +
(*spatial, channels)`` (or ``batch_shape + (channels, *spatial)`` with
``data_format="channels_first"``), one or more batch axes. Their arguments
are Keras's, canonicalised when the spec is built: ``pool_size`` and
``strides`` become one int per spatial axis (``strides=None`` becomes
``pool_size``, as Keras stores it), padding and data_format are lower-cased,
so ``MaxPooling2D(2)``, ``MaxPooling2D((2, 2), strides=2)`` and
``MaxPooling2D([2, 2], padding="VALID")`` are equal specs. ``init`` returns
``{}``, and ``apply`` computes what the Keras layer computes on the JAX
backend, with the same ops (``jax.lax.reduce_window`` for the windowed
layers, ``jnp.max`` and ``jnp.mean`` for the global ones).

The windowed layers share the convolutions' length rule
(:func:`conv1djax.shapes.conv_output_lengths` with a dilation of 1): with
``"valid"`` an axis of length ``L`` gives ``(L - pool_size) // strides + 1``
windows, with ``"same"`` ``ceil(L / strides)``, padded as a convolution is
(the odd element on the right). ``"same"`` max pooling pads with ``-inf``;
``"same"`` average pooling divides each window's sum by the number of input
elements in it, not by the pool's size.

Dtypes: without a policy (``dtype=None``, the default) a floating input keeps
its dtype (under Keras's default ``"float32"`` policy a Keras layer would cast
a bfloat16 or float16 input to float32 first); with one (``dtype="float32"``,
``"mixed_bfloat16"``, ...) it is cast to the policy's compute dtype first, as
Keras autocasts it. Integer and bool inputs follow Keras's JAX
backend: max pooling keeps the dtype; average pooling sums in the input's
integer dtype (wrapping around on overflow, as Keras does) and returns
float32; bool inputs to average pooling are refused. Global average pooling
computes in at least float32 and returns the input's floating dtype, or
float32 for integers and bools.

Keras's ``GlobalAveragePooling1D`` takes a mask at call time; these specs take
none (``apply(params, x)`` only).

>>> from conv1djax.layers.pooling import MaxPooling2D
>>> MaxPooling2D(3, padding="Same").pool_size, MaxPooling2D(3).strides
((3, 3), (3, 3))
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from conv1djax import _validation, shapes, stream_contract
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.dtype_policy import at_least_float32
from conv1djax.layers.base import SpatialParameterFree
from conv1djax.layers.params import check_no_params
from conv1djax.shapes import check_input

# Keras's pooling paddings (``ops.max_pool``/``ops.average_pool`` take these).
POOLING_PADDINGS = ("valid", "same")


# ---- the shared machinery ---------------------------------------------------------


class _PoolingBase(SpatialParameterFree):
    """Input shapes, ``init``, ``count_params`` and ``apply``'s checks shared by
    the twelve specs; subclasses are frozen dataclasses with Keras's fields,
    set ``rank`` and implement ``_spatial_out`` (the output's spatial shape,
    checked) and ``_pool``."""

    rank: ClassVar[int]
    pool_mode: ClassVar[str]  # "max" or "average", Keras's attribute

    def _spatial_out(self, spatial: Shape, input_shape: ShapeLike) -> Shape | None:
        """The output's spatial lengths, or None when the layer drops the
        spatial axes."""
        raise NotImplementedError

    def _pool(self, x: jax.Array, num_batch: int) -> jax.Array:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """The output shape for ``input_shape`` (None entries stay None; the
        channel count may be None).

        Raises:
          ValueError: for an input of too low a rank, or (windowed pooling)
            an axis too short for the pool.
          TypeError: when ``input_shape`` is not a sequence of ints and Nones.
        """
        batch_shape, spatial, channels = self._split(input_shape)
        lengths = self._spatial_out(spatial, input_shape)
        if lengths is None:
            return (*batch_shape, channels)
        return shapes.join_shape(batch_shape, lengths, channels, self._format)

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """The pooled input (dtypes as the module docstring says).

        Raises:
          ValueError: when ``params`` is not ``{}``, or for an input of too
            low a rank or too short for the pool (at trace time, under
            ``jax.jit`` too).
          TypeError: for an ``x`` that is not an array of real numbers, or a
            bool input to (windowed) average pooling.
        """
        name = type(self).__name__
        check_no_params(self, params)
        x = check_input(x, name, params)
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise TypeError(f"{name} takes real inputs; received dtype {x.dtype}.")
        x = self.cast_input(x)
        batch_shape, spatial, _ = self._split(x.shape)
        self._spatial_out(spatial, x.shape)
        return self._pool(x, len(batch_shape))


# ---- windowed pooling -------------------------------------------------------------


class _Pooling(_PoolingBase):
    """``pool_size``, ``strides``, ``padding``, ``data_format``; the window
    reduction of Keras's JAX backend (``_pool`` in ``keras/src/backend/jax/
    nn.py``)."""

    if TYPE_CHECKING:  # fields of the subclasses, canonical after __post_init__
        pool_size: Any
        strides: Any
        padding: str

    def __post_init__(self) -> None:
        super().__post_init__()
        put = object.__setattr__.__get__(self)  # the dataclass is frozen
        rank = self.rank
        pool_size = _validation.int_tuple(
            self.pool_size, "pool_size", rank, what="pooling"
        )
        put("pool_size", pool_size)
        strides = (
            pool_size
            if self.strides is None
            else _validation.int_tuple(self.strides, "strides", rank, what="pooling")
        )
        put("strides", strides)
        put("padding", _validation.padding_name(self.padding, POOLING_PADDINGS))
        self._canonical_format()

    def stream_timing(self) -> stream_contract.Timing:
        """1-D ``"valid"`` pooling streams as a window: a strided one emits
        each output as its window completes; with stride 1, each output
        ``pool_size - 1`` steps late.

        Raises:
          TypeError: for a layer that is not 1-D or pads (``"same"``: its
            padding depends on the whole length).
        """
        stream_contract.require_1d(self)
        if self.padding != "valid":
            raise stream_contract.cannot_stream(
                self, "pooling streams with padding='valid' only (its 'same' "
                "padding depends on the whole length)"
            )  # fmt: skip
        (stride,), (window,) = self.strides, self.pool_size
        if stride > 1:
            return stream_contract.Timing(stride=stride, window=window)
        return stream_contract.Timing(
            latency=window - 1, history=window - 1, span=window - 1
        )

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The pooled windows of the input stream."""
        return self.apply(params, z)

    def paddings(self, spatial: tuple[int, ...]) -> shapes.Pads:
        """The ``(left, right)`` padding per spatial axis for an input of
        ``spatial`` lengths: a convolution's, as XLA's ``"SAME"`` pads."""
        return shapes.conv_paddings(
            spatial, self.pool_size, self.strides, self.padding, (1,) * self.rank
        )

    def _spatial_out(self, spatial: Shape, input_shape: ShapeLike) -> Shape | None:
        lengths = []
        for axis, (n, k, s) in enumerate(
            zip(spatial, self.pool_size, self.strides, strict=True)
        ):
            try:
                (out,) = shapes.conv_output_lengths(
                    (n,), (k,), (s,), self.padding, (1,)
                )
            except ValueError as err:
                hint = (
                    "a longer input, a smaller pool_size, or padding='same'"
                    if self.padding == "valid"
                    else "a non-empty input"
                )
                raise ValueError(
                    f"{type(self).__name__}(pool_size={_validation.shown(self.pool_size)}, "
                    f"strides={_validation.shown(self.strides)}, padding={self.padding!r}) "
                    f"would give an empty output for an input of length {n} along "
                    f"its {shapes.SPATIAL_AXES[self.rank][axis]} axis (the pool spans {k}); "
                    f"received input_shape={tuple(input_shape)}. Use {hint}."
                ) from err
            lengths.append(out)
        return tuple(lengths)

    def _pool(self, x: jax.Array, num_batch: int) -> jax.Array:
        if self.pool_mode == "average" and x.dtype == jnp.bool_:
            raise TypeError(
                f"{type(self).__name__} cannot average a bool input (Keras's JAX "
                "backend cannot either); cast it to a number dtype first."
            )
        ndim = x.ndim
        axes = self._spatial_axes(num_batch)
        window, strides, pads = [1] * ndim, [1] * ndim, [(0, 0)] * ndim
        spatial = tuple(x.shape[a] for a in axes)
        for a, k, s, p in zip(
            axes, self.pool_size, self.strides, self.paddings(spatial), strict=True
        ):
            window[a], strides[a], pads[a] = k, s, p
        if self.pool_mode == "max":
            # Keras's initial value for every dtype; JAX reads it as max's
            # identity (the dtype's lowest value for integers, False for bools).
            return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pads)
        pooled = lax.reduce_window(x, 0.0, lax.add, window, strides, pads)
        if self.padding == "valid":
            return pooled / math.prod(self.pool_size)
        # Keras's count of the input elements in each window: the same
        # reduction over ones of the input's dtype, broadcast along the axes
        # that are not pooled.
        shape = [n if w != 1 else 1 for n, w in zip(x.shape, window, strict=True)]
        ones = jnp.ones(shape, x.dtype)
        counts = lax.reduce_window(ones, 0.0, lax.add, window, strides, pads)
        return pooled / counts


@dataclasses.dataclass(frozen=True)
class MaxPooling1D(_Pooling):
    """Spec of a max-pooling layer for 1-D inputs, Keras 3's ``MaxPooling1D``.

    The maximum over windows of ``pool_size`` steps, ``strides`` apart, of
    inputs of shape ``batch_shape + (steps, channels)`` (or ``batch_shape +
    (channels, steps)``); ``"same"`` pads with ``-inf``.

    Args:
      pool_size: a positive int, the window's length (default 2), or a 1-tuple;
        canonically ``(pool_size,)``.
      strides: None (the default: ``pool_size``), an int (every axis) or a
        tuple of 1 positive int; canonically the tuple.
      padding: "valid" (default) or "same", any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``pool_size`` or ``strides`` entry that is not an int,
        or a ``padding`` or ``data_format`` that is not a string.
      ValueError: for an entry < 1, a tuple of the wrong length, or an
        unknown ``padding`` or ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank or
        one too short for the pool along an axis (with ``"valid"``).

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import MaxPooling1D
    >>> layer = MaxPooling1D(2, strides=1, padding="same")
    >>> layer.pool_size, layer.compute_output_shape((None, 5, 3))
    ((2,), (None, 5, 3))
    >>> layer.apply({}, jnp.array([1.0, 3, 2, 5, 4]).reshape(1, 5, 1))[0, :, 0]
    Array([3., 3., 5., 5., 4.], dtype=float32)
    """

    pool_size: Any = 2
    strides: Any = None
    padding: str = "valid"
    data_format: str | None = None

    rank: ClassVar[int] = 1
    pool_mode: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class MaxPooling2D(_Pooling):
    """Spec of a max-pooling layer for 2-D inputs, Keras 3's ``MaxPooling2D``.

    The maximum over windows of ``pool_size`` rows and columns, ``strides``
    apart, of inputs of shape ``batch_shape + (rows, cols, channels)`` (or
    ``batch_shape + (channels, rows, cols)``); ``"same"`` pads with ``-inf``.

    Args:
      pool_size: an int (both axes; default ``(2, 2)``) or a tuple of 2 positive
        ints ``(rows, cols)``; canonically the tuple.
      strides: None (the default: ``pool_size``), an int (every axis) or a
        tuple of 2 positive ints; canonically the tuple.
      padding: "valid" (default) or "same", any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``pool_size`` or ``strides`` entry that is not an int,
        or a ``padding`` or ``data_format`` that is not a string.
      ValueError: for an entry < 1, a tuple of the wrong length, or an
        unknown ``padding`` or ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank or
        one too short for the pool along an axis (with ``"valid"``).

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import MaxPooling2D
    >>> layer = MaxPooling2D((2, 3), strides=(1, 2))
    >>> layer.compute_output_shape((None, 4, 7, 3))
    (None, 3, 3, 3)
    >>> layer.apply({}, jnp.ones((2, 4, 7, 3))).shape
    (2, 3, 3, 3)
    """

    pool_size: Any = (2, 2)
    strides: Any = None
    padding: str = "valid"
    data_format: str | None = None

    rank: ClassVar[int] = 2
    pool_mode: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class MaxPooling3D(_Pooling):
    """Spec of a max-pooling layer for 3-D inputs, Keras 3's ``MaxPooling3D``.

    The maximum over windows of ``pool_size`` entries of the three spatial
    axes, ``strides`` apart, of inputs of shape ``batch_shape + (dim1, dim2,
    dim3, channels)`` (or ``batch_shape + (channels, dim1, dim2, dim3)``);
    ``"same"`` pads with ``-inf``.

    Args:
      pool_size: an int (every axis; default ``(2, 2, 2)``) or a tuple of 3
        positive ints; canonically the tuple.
      strides: None (the default: ``pool_size``), an int (every axis) or a
        tuple of 3 positive ints; canonically the tuple.
      padding: "valid" (default) or "same", any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``pool_size`` or ``strides`` entry that is not an int,
        or a ``padding`` or ``data_format`` that is not a string.
      ValueError: for an entry < 1, a tuple of the wrong length, or an
        unknown ``padding`` or ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank or
        one too short for the pool along an axis (with ``"valid"``).

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import MaxPooling3D
    >>> layer = MaxPooling3D(padding="same", data_format="channels_first")
    >>> layer.compute_output_shape((None, 3, 5, 4, None))
    (None, 3, 3, 2, None)
    >>> layer.apply({}, jnp.ones((2, 3, 5, 4, 3))).shape
    (2, 3, 3, 2, 2)
    """

    pool_size: Any = (2, 2, 2)
    strides: Any = None
    padding: str = "valid"
    data_format: str | None = None

    rank: ClassVar[int] = 3
    pool_mode: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class AveragePooling1D(_Pooling):
    """Spec of an average-pooling layer for 1-D inputs, Keras 3's
    ``AveragePooling1D``.

    The mean over windows of ``pool_size`` steps, ``strides`` apart, of
    inputs of shape ``batch_shape + (steps, channels)`` (or ``batch_shape +
    (channels, steps)``); with ``"same"`` a window's sum is divided by the
    number of input steps in it.

    Args:
      pool_size: a positive int, the window's length, or a 1-tuple; canonically
        ``(pool_size,)``. Required: Keras's average pooling has no default.
      strides: None (the default: ``pool_size``), an int (every axis) or a
        tuple of 1 positive int; canonically the tuple.
      padding: "valid" (default) or "same", any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``pool_size`` or ``strides`` entry that is not an int,
        or a ``padding`` or ``data_format`` that is not a string.
      ValueError: for an entry < 1, a tuple of the wrong length, or an
        unknown ``padding`` or ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank or
        one too short for the pool along an axis (with ``"valid"``).

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import AveragePooling1D
    >>> layer = AveragePooling1D(2, padding="same")
    >>> layer.strides, layer.compute_output_shape((None, 5, 3))
    ((2,), (None, 3, 3))
    >>> layer.apply({}, jnp.array([1.0, 3, 2, 6, 4]).reshape(1, 5, 1))[0, :, 0]
    Array([2., 4., 4.], dtype=float32)
    """

    pool_size: Any
    strides: Any = None
    padding: str = "valid"
    data_format: str | None = None

    rank: ClassVar[int] = 1
    pool_mode: ClassVar[str] = "average"


@dataclasses.dataclass(frozen=True)
class AveragePooling2D(_Pooling):
    """Spec of an average-pooling layer for 2-D inputs, Keras 3's
    ``AveragePooling2D``.

    The mean over windows of ``pool_size`` rows and columns, ``strides``
    apart, of inputs of shape ``batch_shape + (rows, cols, channels)`` (or
    ``batch_shape + (channels, rows, cols)``); with ``"same"`` a window's sum
    is divided by the number of input elements in it.

    Args:
      pool_size: an int (both axes) or a tuple of 2 positive ints ``(rows,
        cols)``; canonically the tuple. Required: Keras's average pooling
        has no default.
      strides: None (the default: ``pool_size``), an int (every axis) or a
        tuple of 2 positive ints; canonically the tuple.
      padding: "valid" (default) or "same", any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``pool_size`` or ``strides`` entry that is not an int,
        or a ``padding`` or ``data_format`` that is not a string.
      ValueError: for an entry < 1, a tuple of the wrong length, or an
        unknown ``padding`` or ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank or
        one too short for the pool along an axis (with ``"valid"``).

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import AveragePooling2D
    >>> layer = AveragePooling2D(2, data_format="channels_first")
    >>> layer.compute_output_shape((None, 3, 4, 5))
    (None, 3, 2, 2)
    >>> layer.apply({}, jnp.ones((2, 3, 4, 5))).shape
    (2, 3, 2, 2)
    """

    pool_size: Any
    strides: Any = None
    padding: str = "valid"
    data_format: str | None = None

    rank: ClassVar[int] = 2
    pool_mode: ClassVar[str] = "average"


@dataclasses.dataclass(frozen=True)
class AveragePooling3D(_Pooling):
    """Spec of an average-pooling layer for 3-D inputs, Keras 3's
    ``AveragePooling3D``.

    The mean over windows of ``pool_size`` entries of the three spatial
    axes, ``strides`` apart, of inputs of shape ``batch_shape + (dim1, dim2,
    dim3, channels)`` (or ``batch_shape + (channels, dim1, dim2, dim3)``);
    with ``"same"`` a window's sum is divided by the number of input elements
    in it.

    Args:
      pool_size: an int (every axis) or a tuple of 3 positive ints; canonically
        the tuple. Required: Keras's average pooling has no default.
      strides: None (the default: ``pool_size``), an int (every axis) or a
        tuple of 3 positive ints; canonically the tuple.
      padding: "valid" (default) or "same", any case.
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.

    Raises:
      TypeError: for a ``pool_size`` or ``strides`` entry that is not an int,
        or a ``padding`` or ``data_format`` that is not a string.
      ValueError: for an entry < 1, a tuple of the wrong length, or an
        unknown ``padding`` or ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank or
        one too short for the pool along an axis (with ``"valid"``).

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import AveragePooling3D
    >>> layer = AveragePooling3D((2, 1, 3), strides=1)
    >>> layer.compute_output_shape((None, 4, 4, 4, 2))
    (None, 3, 4, 2, 2)
    >>> layer.apply({}, jnp.ones((2, 4, 4, 4, 2))).shape
    (2, 3, 4, 2, 2)
    """

    pool_size: Any
    strides: Any = None
    padding: str = "valid"
    data_format: str | None = None

    rank: ClassVar[int] = 3
    pool_mode: ClassVar[str] = "average"


# ---- global pooling ---------------------------------------------------------------


class _GlobalPooling(_PoolingBase):
    """``data_format`` and ``keepdims``; a reduction over every spatial axis
    (Keras's ``ops.max`` / ``ops.mean``)."""

    if TYPE_CHECKING:  # a field of the subclasses
        keepdims: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        self._canonical_format()
        object.__setattr__(
            self, "keepdims", _validation.boolean(self.keepdims, "keepdims")
        )

    @property
    def output_rank(self) -> int:
        """The number of spatial axes of the output: ``rank`` with
        ``keepdims=True`` (each of length 1), else 0."""
        return self.rank if self.keepdims else 0

    def _spatial_out(self, spatial: Shape, input_shape: ShapeLike) -> Shape | None:
        del spatial, input_shape
        return (1,) * self.rank if self.keepdims else None

    def _pool(self, x: jax.Array, num_batch: int) -> jax.Array:
        axes = self._spatial_axes(num_batch)
        if self.pool_mode == "max":
            return jnp.max(x, axis=axes, keepdims=self.keepdims)
        # Keras's ``ops.mean``: computed in at least float32, then cast back
        # to a floating input's dtype (integers and bools give float32).
        compute = at_least_float32(x.dtype)
        result = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else compute
        y = jnp.mean(x, axis=axes, keepdims=self.keepdims, dtype=compute)
        return y.astype(result)


@dataclasses.dataclass(frozen=True)
class GlobalMaxPooling1D(_GlobalPooling):
    """Spec of a global max-pooling layer for 1-D inputs, Keras 3's
    ``GlobalMaxPooling1D``.

    The maximum over the steps axis of inputs of shape ``batch_shape +
    (steps, channels)`` (or ``batch_shape + (channels, steps)``).

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      keepdims: whether to keep the spatial axes, with length 1 (default
        False: they are dropped and the output is ``batch_shape +
        (channels,)``).

    Raises:
      TypeError: for a ``keepdims`` that is not a bool, or a ``data_format``
        that is not a string.
      ValueError: for an unknown ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import GlobalMaxPooling1D
    >>> layer = GlobalMaxPooling1D()
    >>> layer.compute_output_shape((None, 5, 3)), layer.output_rank
    ((None, 3), 0)
    >>> layer.apply({}, jnp.array([1.0, 3, 2]).reshape(1, 3, 1))
    Array([[3.]], dtype=float32)
    """

    data_format: str | None = None
    keepdims: bool = False

    rank: ClassVar[int] = 1
    pool_mode: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class GlobalMaxPooling2D(_GlobalPooling):
    """Spec of a global max-pooling layer for 2-D inputs, Keras 3's
    ``GlobalMaxPooling2D``.

    The maximum over the rows and columns of inputs of shape ``batch_shape +
    (rows, cols, channels)`` (or ``batch_shape + (channels, rows, cols)``).

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      keepdims: whether to keep the spatial axes, with length 1 (default
        False: they are dropped and the output is ``batch_shape +
        (channels,)``).

    Raises:
      TypeError: for a ``keepdims`` that is not a bool, or a ``data_format``
        that is not a string.
      ValueError: for an unknown ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import GlobalMaxPooling2D
    >>> layer = GlobalMaxPooling2D(keepdims=True)
    >>> layer.compute_output_shape((None, 4, 5, 3)), layer.output_rank
    ((None, 1, 1, 3), 2)
    >>> layer.apply({}, jnp.ones((2, 4, 5, 3))).shape
    (2, 1, 1, 3)
    """

    data_format: str | None = None
    keepdims: bool = False

    rank: ClassVar[int] = 2
    pool_mode: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class GlobalMaxPooling3D(_GlobalPooling):
    """Spec of a global max-pooling layer for 3-D inputs, Keras 3's
    ``GlobalMaxPooling3D``.

    The maximum over the three spatial axes of inputs of shape ``batch_shape
    + (dim1, dim2, dim3, channels)`` (or ``batch_shape + (channels, dim1,
    dim2, dim3)``).

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      keepdims: whether to keep the spatial axes, with length 1 (default
        False: they are dropped and the output is ``batch_shape +
        (channels,)``).

    Raises:
      TypeError: for a ``keepdims`` that is not a bool, or a ``data_format``
        that is not a string.
      ValueError: for an unknown ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import GlobalMaxPooling3D
    >>> layer = GlobalMaxPooling3D(data_format="channels_first")
    >>> layer.compute_output_shape((None, 3, 4, 4, 4))
    (None, 3)
    >>> layer.apply({}, jnp.ones((2, 3, 4, 4, 4))).shape
    (2, 3)
    """

    data_format: str | None = None
    keepdims: bool = False

    rank: ClassVar[int] = 3
    pool_mode: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class GlobalAveragePooling1D(_GlobalPooling):
    """Spec of a global average-pooling layer for 1-D inputs, Keras 3's
    ``GlobalAveragePooling1D``.

    The mean over the steps axis of inputs of shape ``batch_shape + (steps,
    channels)`` (or ``batch_shape + (channels, steps)``).

    Keras's ``GlobalAveragePooling1D`` also takes a mask at call time
    (masked steps left out of the mean); this spec does not.

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      keepdims: whether to keep the spatial axes, with length 1 (default
        False: they are dropped and the output is ``batch_shape +
        (channels,)``).

    Raises:
      TypeError: for a ``keepdims`` that is not a bool, or a ``data_format``
        that is not a string.
      ValueError: for an unknown ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import GlobalAveragePooling1D
    >>> layer = GlobalAveragePooling1D(keepdims=True)
    >>> layer.compute_output_shape((None, 5, 3)), layer.output_rank
    ((None, 1, 3), 1)
    >>> layer.apply({}, jnp.array([1.0, 3, 2]).reshape(1, 3, 1))
    Array([[[2.]]], dtype=float32)
    """

    data_format: str | None = None
    keepdims: bool = False

    rank: ClassVar[int] = 1
    pool_mode: ClassVar[str] = "average"


@dataclasses.dataclass(frozen=True)
class GlobalAveragePooling2D(_GlobalPooling):
    """Spec of a global average-pooling layer for 2-D inputs, Keras 3's
    ``GlobalAveragePooling2D``.

    The mean over the rows and columns of inputs of shape ``batch_shape +
    (rows, cols, channels)`` (or ``batch_shape + (channels, rows, cols)``).

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      keepdims: whether to keep the spatial axes, with length 1 (default
        False: they are dropped and the output is ``batch_shape +
        (channels,)``).

    Raises:
      TypeError: for a ``keepdims`` that is not a bool, or a ``data_format``
        that is not a string.
      ValueError: for an unknown ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import GlobalAveragePooling2D
    >>> layer = GlobalAveragePooling2D()
    >>> layer.compute_output_shape((None, 4, 5, 3))
    (None, 3)
    >>> layer.apply({}, jnp.ones((2, 4, 5, 3))).shape
    (2, 3)
    """

    data_format: str | None = None
    keepdims: bool = False

    rank: ClassVar[int] = 2
    pool_mode: ClassVar[str] = "average"


@dataclasses.dataclass(frozen=True)
class GlobalAveragePooling3D(_GlobalPooling):
    """Spec of a global average-pooling layer for 3-D inputs, Keras 3's
    ``GlobalAveragePooling3D``.

    The mean over the three spatial axes of inputs of shape ``batch_shape +
    (dim1, dim2, dim3, channels)`` (or ``batch_shape + (channels, dim1,
    dim2, dim3)``).

    Args:
      data_format: "channels_last" (default; None means it too) or
        "channels_first", any case.
      keepdims: whether to keep the spatial axes, with length 1 (default
        False: they are dropped and the output is ``batch_shape +
        (channels,)``).

    Raises:
      TypeError: for a ``keepdims`` that is not a bool, or a ``data_format``
        that is not a string.
      ValueError: for an unknown ``data_format``; at
        init/apply/compute_output_shape, for an input of too low a rank.

    Example usage:

    >>> import jax.numpy as jnp
    >>> from conv1djax.layers.pooling import GlobalAveragePooling3D
    >>> layer = GlobalAveragePooling3D(keepdims=True, data_format="channels_first")
    >>> layer.compute_output_shape((None, 3, 4, 4, 4))
    (None, 3, 1, 1, 1)
    >>> layer.apply({}, jnp.ones((2, 3, 4, 4, 4))).shape
    (2, 3, 1, 1, 1)
    """

    data_format: str | None = None
    keepdims: bool = False

    rank: ClassVar[int] = 3
    pool_mode: ClassVar[str] = "average"
