"""Length and padding arithmetic of convolutions: the one source of truth.

Every rule about how long an output is and where the padding goes lives here,
written once for one axis and mapped over the spatial axes of a convolution of
any rank; ``apply``, ``compute_output_shape`` and the public length helpers
all use it. ``k_eff = (kernel_size - 1) * dilation_rate + 1`` is the dilated
kernel's extent along an axis.

Convolution (Keras 3 / TensorFlow semantics), along each axis:

- ``"valid"``: no padding; ``out = (L - k_eff) // s + 1``.
- ``"same"``: ``out = ceil(L / s)``; the total padding
  ``max((out - 1) * s + k_eff - L, 0)`` is split with the odd element on the
  right (TensorFlow's rule, also XLA's ``"SAME"``).
- ``"causal"`` (1-D only): ``k_eff - 1`` zeros on the left only, so
  ``output[t]`` never sees ``input[t + 1:]``; ``out = ceil(L / s)``.
- explicit ``(left, right)`` (PyTorch's ``padding``): ``out = (L + left +
  right - k_eff) // s + 1``.

With a ``padding_mode`` other than ``"zeros"`` (PyTorch's) the same amounts
are taken from the input instead of zeros; PyTorch's limits hold along each
axis: ``"reflect"`` needs each side's padding below ``L``, ``"circular"`` at
most ``L``, and ``"replicate"`` a non-empty input.

Transposed convolution (Keras 3's JAX backend), along each axis: the input is
dilated by the stride, padded with ``(left, right)`` below, and convolved with
the flipped kernel, so ``out = (L - 1) * s + left + right - k_eff + 2``:

- ``"valid"``: ``(L - 1) * s + k_eff + output_padding``, with
  ``output_padding`` defaulting to ``max(k_eff, s) - k_eff``.
- ``"same"``: ``L * s`` when ``output_padding`` is None, else
  ``(L - 1) * s + k_eff % 2 + output_padding``.
- explicit ``(left, right)`` (PyTorch's ``ConvTranspose`` meaning: the full
  output cropped by ``left`` and ``right``): ``(k_eff - 1 - left, k_eff - 1
  - right + output_padding)``, so ``out = (L - 1) * s - left - right + k_eff
  + output_padding``, ``output_padding`` defaulting to 0; a negative amount
  crops.

A padding argument here is a name, or (explicit) one ``(left, right)`` pair
per axis, as :mod:`conv1djax._validation` makes them.

A layer's input, before any of this: :func:`check_input` refuses what is not
an array of numbers, :func:`split_input_shape` splits a full shape into
``(batch_shape, spatial, channels)`` by the data format and
:func:`join_shape` puts it back together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from conv1djax import _validation
from conv1djax._typing import Padding, Pads, Params, Shape, ShapeLike

# One axis's padding: a canonical name, or an explicit (left, right) pair.
AxisPadding: TypeAlias = str | tuple[int, int]


def _effective_kernel(kernel_size: int, dilation_rate: int) -> int:
    return (kernel_size - 1) * dilation_rate + 1


def _check_positive(
    out: int, length: int, k_eff: int, what: str, hint: str, axis: int | None
) -> int:
    if out < 1:
        where = "" if axis is None else f" along spatial axis {axis}"
        raise ValueError(
            f"The input length {length}{where} is too short for {what} and a "
            f"dilated kernel extent of {k_eff}: the output would have length "
            f"{out}. Use a longer input{hint}."
        )
    return out


# ---- one axis ------------------------------------------------------------------


def _explicit(padding: Any) -> bool:
    return not isinstance(padding, str)


def conv_padding(
    length: int,
    kernel_size: int,
    strides: int,
    padding: AxisPadding,
    dilation_rate: int,
) -> tuple[int, int]:
    """Returns the (left, right) padding a convolution applies along one
    axis of ``length`` steps (``padding`` a name, or this axis's explicit
    ``(left, right)``)."""
    k_eff = _effective_kernel(kernel_size, dilation_rate)
    if not isinstance(padding, str):
        left, right = padding
        return (left, right)
    if padding == "valid":
        return (0, 0)
    if padding == "causal":
        return (k_eff - 1, 0)
    if padding == "same":
        out = -(-length // strides)
        total = max((out - 1) * strides + k_eff - length, 0)
        return (total // 2, total - total // 2)
    raise AssertionError(f"unnormalised padding {padding!r}")


def conv_transpose_padding(
    kernel_size: int,
    strides: int,
    padding: AxisPadding,
    output_padding: int | None,
    dilation_rate: int,
) -> tuple[int, int]:
    """Returns the (left, right) padding of the stride-dilated input that a
    transposed convolution convolves along one axis (Keras 3's JAX-backend
    rule for a name; PyTorch's for an explicit ``(left, right)``, whose
    amounts may come out negative: crops)."""
    k_eff = _effective_kernel(kernel_size, dilation_rate)
    if not isinstance(padding, str):
        left, right = padding
        return (k_eff - 1 - left, k_eff - 1 - right + (output_padding or 0))
    if padding == "valid":
        if output_padding is None:
            output_padding = max(k_eff, strides) - k_eff
        return (k_eff - 1, k_eff - 1 + output_padding)
    if output_padding is None:
        total = strides + k_eff - 2
    else:
        total = k_eff + k_eff % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k_eff - 1)
    return (left, total - left)


def _described(padding: Padding | AxisPadding) -> str:
    if _explicit(padding):
        return f"a padding of {tuple(padding)}"
    return f"padding={padding!r}"


def _check_mode(
    length: int, pads: tuple[int, int], padding_mode: str, axis: int | None
) -> None:
    """PyTorch's limits on the padding a ``padding_mode`` takes from the
    input along one axis."""
    side = max(pads)
    if padding_mode == "zeros" or side == 0:
        return
    where = "" if axis is None else f" along spatial axis {axis}"
    if padding_mode == "replicate":
        if length == 0:
            raise ValueError(
                f"padding_mode='replicate' needs a non-empty input to replicate; "
                f"the input length{where} is 0."
            )
        return
    if side < length or (padding_mode == "circular" and side == length):
        return
    relation = "smaller than" if padding_mode == "reflect" else "at most"
    raise ValueError(
        f"padding_mode={padding_mode!r} needs a padding {relation} the input "
        f"length on each side (PyTorch's limit); the input length "
        f"{length}{where} is too short for a padding of {tuple(pads)}."
    )


def _conv_length(
    length: int | None, kernel_size: int, strides: int, padding: AxisPadding,
    dilation_rate: int, axis: int | None = None, padding_mode: str = "zeros",
) -> int | None:  # fmt: skip
    if length is None:
        return None
    left, right = conv_padding(length, kernel_size, strides, padding, dilation_rate)
    _check_mode(length, (left, right), padding_mode, axis)
    k_eff = _effective_kernel(kernel_size, dilation_rate)
    out = (length + left + right - k_eff) // strides + 1
    # "same" and "causal" outputs are as long as the input over the stride:
    # only an empty input is too short, whatever the kernel.
    if _explicit(padding):
        hint = ", a smaller kernel_size or dilation_rate, or more padding"
    elif padding in ("same", "causal"):
        hint = ""
    else:
        hint = ", a smaller kernel_size or dilation_rate, or padding='same'"
    return _check_positive(out, length, k_eff, _described(padding), hint, axis)


def _conv_transpose_length(
    length: int | None,
    kernel_size: int,
    strides: int,
    padding: AxisPadding,
    output_padding: int | None,
    dilation_rate: int,
    axis: int | None = None,
) -> int | None:
    if length is None:
        return None
    left, right = conv_transpose_padding(
        kernel_size, strides, padding, output_padding, dilation_rate
    )
    k_eff = _effective_kernel(kernel_size, dilation_rate)
    out = (length - 1) * strides + left + right - k_eff + 2
    what = f"a transposed convolution with {_described(padding)}"
    hint = (
        ", a smaller padding or a larger output_padding"
        if _explicit(padding)
        else ", or a larger output_padding"
    )
    return _check_positive(out, length, k_eff, what, hint, axis)


# ---- every spatial axis ------------------------------------------------------------


def _axis(index: int, rank: int) -> int | None:
    return None if rank == 1 else index


def _per_axis(padding: Padding, rank: int) -> tuple[AxisPadding, ...]:
    """A padding along each of ``rank`` axes: a name on every axis, or the
    explicit padding's pair of each."""
    return (padding,) * rank if isinstance(padding, str) else tuple(padding)


def conv_paddings(
    lengths: Sequence[int],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    padding: Padding,
    dilation_rate: Sequence[int],
) -> Pads:
    """``conv_padding`` along every spatial axis: one ``(left, right)`` each."""
    return tuple(
        conv_padding(n, k, s, p, d)
        for n, k, s, p, d in zip(
            lengths, kernel_size, strides, _per_axis(padding, len(kernel_size)),
            dilation_rate, strict=True,
        )
    )  # fmt: skip


def conv_transpose_paddings(
    kernel_size: Sequence[int],
    strides: Sequence[int],
    padding: Padding,
    output_padding: Sequence[int | None] | None,
    dilation: Sequence[int],
) -> Pads:
    """``conv_transpose_padding`` along every spatial axis."""
    rank = len(kernel_size)
    output_padding = output_padding or (None,) * rank
    return tuple(
        conv_transpose_padding(k, s, p, op, d)
        for k, s, p, op, d in zip(
            kernel_size, strides, _per_axis(padding, rank), output_padding,
            dilation, strict=True,
        )
    )  # fmt: skip


def conv_output_lengths(
    lengths: Sequence[int | None],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    padding: Padding,
    dilation_rate: Sequence[int],
    padding_mode: str = "zeros",
) -> Shape:
    """The output length along every spatial axis (None stays None).

    Raises:
      ValueError: when an axis would be empty, or is too short for the
        padding ``padding_mode`` takes from it.
    """
    rank = len(lengths)
    return tuple(
        _conv_length(n, k, s, p, d, _axis(i, rank), padding_mode)
        for i, (n, k, s, p, d) in enumerate(
            zip(
                lengths, kernel_size, strides, _per_axis(padding, rank),
                dilation_rate, strict=True,
            )
        )
    )  # fmt: skip


def conv_transpose_output_lengths(
    lengths: Sequence[int | None],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    padding: Padding,
    output_padding: Sequence[int | None] | None,
    dilation_rate: Sequence[int],
) -> Shape:
    """The output length of a transposed convolution along every axis."""
    rank = len(lengths)
    output_padding = output_padding or (None,) * rank
    return tuple(
        _conv_transpose_length(n, k, s, p, op, d, _axis(i, rank))
        for i, (n, k, s, p, op, d) in enumerate(
            zip(
                lengths, kernel_size, strides, _per_axis(padding, rank),
                output_padding, dilation_rate, strict=True,
            )
        )
    )  # fmt: skip


# ---- the public helpers -------------------------------------------------------------


def _normalise(
    length: int | None | Sequence[int | None],
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int],
    dilation_rate: int | Sequence[int],
) -> tuple[bool, Shape, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Canonical per-axis tuples; the rank is ``len(length)`` for a sequence of
    lengths, else 1."""
    per_axis = isinstance(length, Sequence) and not isinstance(length, str)
    given = tuple(length) if isinstance(length, Sequence) and per_axis else (length,)
    rank = len(given)
    if rank < 1:
        raise ValueError(f"`length` must not be empty; received length={length!r}.")
    lengths = tuple(
        None if n is None else _validation.int_tuple(n, "length", 1, minimum=0)[0]
        for n in given
    )

    kernel_size = _validation.int_tuple(kernel_size, "kernel_size", rank)
    strides = _validation.int_tuple(strides, "strides", rank)
    dilation_rate = _validation.int_tuple(dilation_rate, "dilation_rate", rank)
    _validation.strides_and_dilation(strides, dilation_rate)
    return per_axis, lengths, kernel_size, strides, dilation_rate


def conv_output_length(
    length: int | None | Sequence[int | None],
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str | int | Sequence[Any] = "valid",
    dilation_rate: int | Sequence[int] = 1,
) -> int | tuple[int | None, ...] | None:
    """Returns the output length of a convolution along its spatial axes.

    Args:
      length: the input length (an int, or None for an unknown length), or a
        tuple of them, one per spatial axis of a 2-D or 3-D convolution.
      kernel_size: int, or a tuple with one int per axis.
      strides: int, or a tuple with one int per axis.
      padding: "valid", "same" or (1-D only) "causal", any case; or an
        explicit padding (PyTorch's): an int, or a tuple with an int or a
        ``(left, right)`` pair per axis.
      dilation_rate: int, or a tuple with one int per axis.

    Returns:
      The output length, equal to what ``apply`` produces (None where the
          length is None); a tuple of them when ``length`` is a tuple.

    Raises:
      ValueError: for a bad argument, or when the output would be empty
        (an input shorter than the dilated kernel with ``padding="valid"``).

    >>> import conv1djax as cj
    >>> cj.conv_output_length(10, 3)
    8
    >>> cj.conv_output_length(10, 3, strides=2, padding="same")
    5
    >>> cj.conv_output_length((32, 20), (3, 5), strides=(2, 1))
    (15, 16)
    >>> cj.conv_output_length((32, 20), 3, padding=(1, (2, 0)))
    (32, 20)
    """
    per_axis, lengths, kernel_size, strides, dilation_rate = _normalise(
        length, kernel_size, strides, dilation_rate
    )
    padding = _validation.length_padding(padding, len(lengths), transposed=False)
    out = conv_output_lengths(lengths, kernel_size, strides, padding, dilation_rate)
    return out if per_axis else out[0]


def conv_transpose_output_length(
    length: int | None | Sequence[int | None],
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str | int | Sequence[Any] = "valid",
    output_padding: int | Sequence[int] | None = None,
    dilation_rate: int | Sequence[int] = 1,
) -> int | tuple[int | None, ...] | None:
    """Returns the output length of a transposed convolution along its axes.

    Args:
      length: the input length (an int, or None), or a tuple of them, one per
        spatial axis.
      kernel_size: int, or a tuple with one int per axis.
      strides: int, or a tuple with one int per axis.
      padding: "valid" or "same" (any case); or an explicit padding with
        PyTorch's ``ConvTranspose`` meaning (the output cropped by it): an
        int, or a tuple with an int or a ``(left, right)`` pair per axis.
      output_padding: None (Keras's default rule; 0 for an explicit
        padding), or an int (or a tuple, one per axis) in ``[0, strides)``
        (``[0, max(strides, dilation_rate))`` for an explicit padding, as
        PyTorch allows).
      dilation_rate: int, or a tuple with one int per axis.

    Returns:
      The output length, equal to what ``apply`` produces; a tuple of them
          when ``length`` is a tuple.

    Raises:
      ValueError: for a bad argument or an empty output.

    >>> import conv1djax as cj
    >>> cj.conv_transpose_output_length(10, 3, strides=2)
    21
    >>> cj.conv_transpose_output_length(10, 3, strides=2, padding="same")
    20
    >>> cj.conv_transpose_output_length((8, 8), 4, strides=2, padding="same")
    (16, 16)
    >>> cj.conv_transpose_output_length(10, 4, strides=2, padding=1)
    20
    """
    per_axis, lengths, kernel_size, strides, dilation_rate = _normalise(
        length, kernel_size, strides, dilation_rate
    )
    padding = _validation.length_padding(padding, len(lengths), transposed=True)
    output_padding = _validation.output_padding(
        output_padding, strides, None if isinstance(padding, str) else dilation_rate
    )
    out = conv_transpose_output_lengths(
        lengths, kernel_size, strides, padding, output_padding, dilation_rate
    )
    return out if per_axis else out[0]


def eval_output_shape(fn: Callable[..., Any], input_shape: ShapeLike) -> Shape:
    """The output shape of an elementwise-or-reshaping ``fn`` for a shape
    with unknown (None) entries, by abstract evaluation.

    Unknown entries are evaluated at two stand-in lengths (2 and 4: even,
    for ``glu``); an output entry that differs between the two depends on an
    unknown one and is unknown (None) too.
    """
    shape = tuple(input_shape)

    def probe(stand_in: int) -> tuple[int, ...]:
        s = tuple(stand_in if d is None else d for d in shape)
        return jax.eval_shape(fn, jax.ShapeDtypeStruct(s, jnp.float32)).shape

    low, high = probe(2), probe(4)
    if None not in shape:
        return tuple(low)
    return tuple(a if a == b else None for a, b in zip(low, high, strict=True))


# ---- a layer's inputs: the array, and its shape's parts ---------------------------


def check_input(
    x: Any, name: str, params: Params = None, *, call: str | None = None,
    arg: str = "x",
) -> jax.Array:  # fmt: skip
    """``x`` as an array, refusing what is not numeric data (a str, None, a
    dict: most often ``apply(x, params)`` swapped; an array or a list of
    strings or objects), before any shape is read from it.

    Args:
      x: the input.
      name: the layer's class name.
      params: the params passed with it, to spot a swapped call.
      call: what was called, for the message (default ``"{name}.apply"``).
      arg: the input's argument name (``"x"``; ``"x_chunk"`` when streaming).

    Raises:
      TypeError: naming the call, the argument, the type and (for arrays
        and lists) the dtype received and, when ``params`` looks like the
        input, the swap.
    """
    array: Any = None
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        array = x
    elif not (x is None or isinstance(x, str | bytes | Mapping)):
        try:
            array = np.asarray(x)
        except (TypeError, ValueError):
            array = None
    if array is not None and (
        array.dtype == bool or jnp.issubdtype(array.dtype, jnp.number)
    ):
        return jnp.asarray(array)
    swap = (
        " It looks like the arguments are swapped: the call is apply(params, x)."
        if isinstance(params, jax.Array | np.ndarray) or isinstance(x, Mapping)
        else ""
    )
    shown = (
        f"with the keys {list(x)}"
        if isinstance(x, Mapping)
        else f"({_validation.short_repr(x)})"
    )
    dtype = "" if array is None else f" of dtype {array.dtype}"
    raise TypeError(
        f"{call or name + '.apply'} takes an array `{arg}` of numbers; received "
        f"{type(x).__name__} {shown}{dtype}.{swap}"
    )


def as_input(x: ArrayLike, compute_dtype: DTypeLike, name: str) -> jax.Array:
    """The input as an array of the compute dtype (the kernel's, or the
    policy's), as Keras casts it (integers included); complex inputs are
    refused."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{name} takes real inputs; received dtype {x.dtype}.")
    return x.astype(compute_dtype)


def check_shape_entries(input_shape: Any) -> Shape:
    """``input_shape`` as a tuple of ints (>= 0) and Nones.

    Raises:
      TypeError: for anything else, echoing it.
      ValueError: for a negative entry.
    """
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(
            f"`input_shape` must be a tuple of ints (or None for unknown "
            f"entries); received {input_shape!r}."
        )
    for dim in input_shape:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            try:
                int(dim.__index__())
            except (AttributeError, TypeError):
                raise TypeError(
                    f"`input_shape` entries must be ints or None; received "
                    f"{tuple(input_shape)!r}."
                ) from None
    shape = tuple(None if d is None else int(d) for d in input_shape)
    if any(d is not None and d < 0 for d in shape):
        raise ValueError(
            f"`input_shape` entries must be >= 0 (or None for unknown entries); "
            f"received input_shape={shape}."
        )
    return shape


# The names of the spatial axes, by rank (Keras's), for the messages.
SPATIAL_AXES = {1: ("steps",), 2: ("rows", "cols"), 3: ("dim1", "dim2", "dim3")}


def split_input_shape(
    input_shape: Any, data_format: str, rank: int, layer_name: str
) -> tuple[Shape, Shape, int]:
    """Returns ``(batch_shape, spatial, channels)`` of a full input shape.

    Raises:
      ValueError: for a rank below ``rank + 2`` or an unknown (None) channel
        count.
      TypeError: when ``input_shape`` is not a sequence of ints and Nones.
    """
    shape = check_shape_entries(input_shape)
    if len(shape) < rank + 2:
        axes = ", ".join(SPATIAL_AXES[rank])
        layout = (
            f"({axes}, channels)"
            if data_format == "channels_last"
            else f"(channels, {axes})"
        )
        raise ValueError(
            f"{layer_name} expects inputs of rank >= {rank + 2}, batch_shape + "
            f"{layout}; received an input of shape {shape} (rank {len(shape)})."
        )
    if data_format == "channels_last":
        batch_shape, spatial, channels = (
            shape[: -rank - 1],
            shape[-rank - 1 : -1],
            shape[-1],
        )
    else:
        batch_shape, channels, spatial = (
            shape[: -rank - 1],
            shape[-rank - 1],
            shape[-rank:],
        )
    if channels is None:
        raise ValueError(
            f"The channel axis of the input to {layer_name} must be known "
            f"(data_format={data_format!r}); received input_shape={shape}."
        )
    return batch_shape, spatial, channels


def join_shape(
    batch_shape: Sequence[int | None],
    spatial: Sequence[int | None],
    channels: int | None,
    data_format: str,
) -> Shape:
    """Assembles a full shape from its parts, in ``data_format``'s order (the
    inverse of :func:`split_input_shape`)."""
    if data_format == "channels_last":
        return (*batch_shape, *spatial, channels)
    return (*batch_shape, channels, *spatial)
