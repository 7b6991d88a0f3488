"""Canonicalisation of spec arguments, shared by the specs and the shape helpers.

Each function takes a user value and the argument's name, and returns the
canonical form or raises a ``ValueError``/``TypeError`` whose message names the
argument, echoes the value and says what is allowed. Per-axis arguments
(``kernel_size``, ``strides``, ...) become tuples of ``rank`` ints, as Keras's
``standardize_tuple`` makes them: an int is repeated over the axes.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from conv1djax._typing import Padding, Pads

CONV_PADDINGS = ("valid", "same", "causal")
TRANSPOSE_PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")


def _as_int(value: Any, name: str) -> int:
    """Returns ``value`` as a Python int; bools and floats are refused."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int; received the bool {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"`{name}` must be an int; received {value!r} of type "
            f"{type(value).__name__}."
        ) from None


def shown(values: tuple[int, ...]) -> int | tuple[int, ...]:
    """A per-axis tuple as the user most likely wrote it: an int in 1-D."""
    return values[0] if len(values) == 1 else values


def positive_int(value: Any, name: str) -> int:
    """Returns ``value`` as an int >= 1."""
    value = _as_int(value, name)
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int; received {name}={value}.")
    return value


def int_tuple(
    value: Any, name: str, rank: int, *, minimum: int = 1, what: str = "convolution"
) -> tuple[int, ...]:
    """Normalises an int or a ``rank``-sequence (or 1-D array) of ints to a
    ``rank``-tuple; ``what`` names the layer kind in errors.

    An int is used for every axis, as Keras does.
    """
    if hasattr(value, "__array__") and getattr(value, "ndim", 0) >= 1:
        value = tuple(value.tolist())
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != rank:
            ints = "1 int" if rank == 1 else f"{rank} ints"
            raise ValueError(
                f"`{name}` must be an int or a tuple of {ints} for a {rank}-D "
                f"{what}; received {name}={tuple(value)!r} of length "
                f"{len(value)}."
            )
        items = tuple(value)
    else:
        items = (value,) * rank
    items = tuple(_as_int(item, name) for item in items)
    if any(item < minimum for item in items):
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        what = kind if rank == 1 else f"{kind} on every axis"
        raise ValueError(f"`{name}` must be {what}; received {name}={value!r}.")
    return items


def padding_name(value: Any, allowed: Sequence[str], name: str = "padding") -> str:
    """Lower-cases a padding name and checks it is one of ``allowed``."""
    if not isinstance(value, str):
        raise TypeError(
            f"`{name}` must be one of {', '.join(map(repr, allowed))}; received "
            f"{value!r} of type {type(value).__name__}."
        )
    lowered = value.lower()
    if lowered not in allowed:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, allowed))} (any "
            f"case); received {name}={value!r}."
        )
    return lowered


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# What an explicit padding may be, for the error messages.
EXPLICIT_PADDING = (
    "an int, or a tuple with an int or a (left, right) pair per spatial axis"
)


def _string_paddings(rank: int, transposed: bool) -> tuple[str, ...]:
    return TRANSPOSE_PADDINGS if transposed or rank > 1 else CONV_PADDINGS


def _either(names: Sequence[str]) -> str:
    """``"'valid' or 'same'"``: the names quoted, the last after "or"."""
    quoted = [repr(name) for name in names]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if quoted[:-1] else quoted)


def _side(value: Any, whole: Any) -> int:
    """One side's explicit padding as an int (bools and floats refused)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(
            f"`padding` entries must be ints, or (left, right) pairs of ints; "
            f"received padding={whole!r}."
        )
    return operator.index(value)


def _listed(value: Any) -> Any:
    """A 1-D or 2-D array as nested lists; anything else as it is."""
    if hasattr(value, "__array__") and getattr(value, "ndim", 0) >= 1:
        return value.tolist()
    return value


def explicit_padding(
    value: Any, rank: int, allowed: Sequence[str] = CONV_PADDINGS
) -> Pads:
    """An explicit padding as ``rank`` ``(left, right)`` pairs of ints >= 0.

    An int pads every side of every axis by it (PyTorch's ``padding=p``); a
    ``rank``-sequence has an int (both sides) or a ``(left, right)`` pair per
    axis. ``allowed`` names the string paddings, for the error messages.
    """
    value = _listed(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != rank:
            entries = "1 entry" if rank == 1 else f"{rank} entries"
            hint = ""
            if rank == 1 and len(value) == 2:
                hint = (
                    f" For a left and a right padding write padding="
                    f"({tuple(value)!r},)."
                )
            raise ValueError(
                f"`padding` must be a string, {EXPLICIT_PADDING} ({entries} "
                f"for a {rank}-D convolution); received padding="
                f"{tuple(value)!r} of length {len(value)}.{hint}"
            )
        pairs: list[tuple[int, int]] = []
        for axis, item in enumerate(value):
            item = _listed(item)
            if isinstance(item, Sequence) and not isinstance(item, str):
                if len(item) != 2:
                    raise ValueError(
                        f"`padding` must have an int or a (left, right) pair on "
                        f"each axis; received padding={value!r}, whose entry on "
                        f"axis {axis} has {len(item)} values."
                    )
                pairs.append((_side(item[0], value), _side(item[1], value)))
            else:
                side = _side(item, value)
                pairs.append((side, side))
    else:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(
                f"`padding` must be one of {', '.join(map(repr, allowed))}, or "
                f"{EXPLICIT_PADDING}; received {value!r} of type "
                f"{type(value).__name__}."
            )
        side = operator.index(value)
        pairs = [(side, side)] * rank
    if any(side < 0 for pair in pairs for side in pair):
        raise ValueError(
            f"`padding` must be >= 0 on every side of every axis (an explicit "
            f"padding adds steps, it does not crop); received padding={value!r}."
        )
    return tuple(pairs)


def layer_padding(value: Any, rank: int, *, transposed: bool, layer: str) -> Padding:
    """The ``padding`` argument of a convolution layer of ``rank`` spatial
    axes, canonical: a lower-cased name, or an explicit padding as ``rank``
    ``(left, right)`` pairs (what :func:`conv1djax.shapes.conv_padding` then
    turns into one axis's amounts).

    "causal" is a 1-D, forward-only padding: a transposed convolution and a
    convolution over several axes get an error that says so.
    """
    allowed = _string_paddings(rank, transposed)
    if not isinstance(value, str):
        return explicit_padding(value, rank, allowed)
    if value.lower() == "causal":
        if transposed:
            raise ValueError(
                f"{layer} does not support padding='causal' (a transposed "
                f"convolution has no causal form in Keras); use {_either(allowed)}."
            )
        if rank > 1:
            raise ValueError(
                f"{layer} does not support padding='causal': causal padding is "
                f"only defined for 1-D convolutions; use {_either(allowed)}."
            )
    return padding_name(value, allowed)


def length_padding(value: Any, rank: int, *, transposed: bool) -> Padding:
    """The padding argument of the public length helpers: a name (any case;
    "causal" for a 1-D convolution only) or an explicit padding."""
    allowed = _string_paddings(rank, transposed)
    if not isinstance(value, str):
        return explicit_padding(value, rank, allowed)
    return padding_name(value, allowed)


def padding_mode(value: Any, *, transposed: bool, layer: str) -> str:
    """PyTorch's ``padding_mode``, lower-cased; a transposed convolution
    takes "zeros" only, as PyTorch's do."""
    mode = padding_name(value, PADDING_MODES, "padding_mode")
    if transposed and mode != "zeros":
        raise ValueError(
            f"{layer} supports only padding_mode='zeros' (as PyTorch's "
            f"transposed convolutions do): its output is cropped, not its "
            f"input padded; received padding_mode={value!r}."
        )
    return mode


def data_format(value: Any) -> str:
    """``None`` means Keras's default, ``"channels_last"``; any case is fine."""
    if value is None:
        return "channels_last"
    return padding_name(value, DATA_FORMATS, "data_format")


def prng_key(value: Any, name: str = "key") -> jax.Array:
    """A PRNG key for ``init``: a key as it is (``jax.random.key(seed)``, or
    the legacy uint32 data of ``jax.random.PRNGKey``), and an int seed (a
    Python or NumPy int, or an integer scalar array, traced ones included)
    as ``jax.random.key(seed)``, as Keras and Flax take int seeds.

    Raises:
      TypeError: for anything else (a str, a float, a bool, None), naming
        ``name`` and echoing the value.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return jax.random.key(value)
    if dtype is not None and hasattr(value, "shape"):
        if jnp.issubdtype(dtype, jnp.integer) and jnp.ndim(value) == 0:
            return jax.random.key(value)
        if dtype == jnp.uint32 and jnp.ndim(value) >= 1:  # jax.random.PRNGKey(seed)
            return value
    if dtype is not None and hasattr(value, "shape"):
        got = f"an array of dtype {dtype} and shape {tuple(jnp.shape(value))}"
    else:
        got = f"{value!r} of type {type(value).__name__}"
    raise TypeError(
        f"`{name}` must be a JAX PRNG key (jax.random.key(seed)) or an int seed; "
        f"received {got}."
    )


def boolean(value: Any, name: str) -> bool:
    """Accepts Python and NumPy bools only."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(
            f"`{name}` must be a bool; received {value!r} of type "
            f"{type(value).__name__}."
        )
    return bool(value)


def output_padding(
    value: Any, strides: tuple[int, ...], dilation_rate: tuple[int, ...] | None = None
) -> tuple[int, ...] | None:
    """``None``, or an int (or ``rank``-tuple) with every entry in ``[0,
    strides)``, as Keras requires; with ``dilation_rate`` (given for an
    explicit padding) in ``[0, max(strides, dilation_rate))``, PyTorch's
    rule."""
    if value is None:
        return None
    values = int_tuple(value, "output_padding", len(strides), minimum=0)
    limits = (
        strides if dilation_rate is None else tuple(map(max, strides, dilation_rate))
    )
    for axis, (op, limit) in enumerate(zip(values, limits, strict=True)):
        if op >= limit:
            where = "" if len(strides) == 1 else f" on axis {axis}"
            if dilation_rate is None:
                raise ValueError(
                    f"`output_padding` must be smaller than `strides`{where}; "
                    f"received output_padding={shown(values)} with "
                    f"strides={shown(strides)}."
                )
            raise ValueError(
                f"`output_padding` must be smaller than `strides` or "
                f"`dilation_rate`{where} (PyTorch's rule, for an explicit "
                f"padding); received output_padding={shown(values)} with "
                f"strides={shown(strides)} and "
                f"dilation_rate={shown(dilation_rate)}."
            )
    return values


def strides_and_dilation(
    strides: tuple[int, ...], dilation_rate: tuple[int, ...]
) -> None:
    """Keras refuses strides > 1 together with dilation_rate > 1 (on any
    axes: ``max(strides) > 1 and max(dilation_rate) > 1``)."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "`strides > 1` is not supported together with `dilation_rate > 1`; "
            f"received strides={shown(strides)} and "
            f"dilation_rate={shown(dilation_rate)}."
        )


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters, for echoing
    a value in an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
