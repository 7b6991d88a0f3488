"""Canonicalisation of spec arguments, shared by the specs and the shape helpers.

Each function takes a user value and the argument's name, and returns the
canonical form or raises a ``ValueError``/``TypeError`` whose message names the
argument, echoes the value and says what is allowed.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

CONV_PADDINGS = ("valid", "same", "causal")
TRANSPOSE_PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")


def _as_int(value, name: str) -> int:
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


def positive_int(value, name: str) -> int:
    """Returns ``value`` as an int >= 1."""
    value = _as_int(value, name)
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int; received {name}={value}.")
    return value


def single_int_tuple(value, name: str, *, minimum: int = 1) -> tuple[int]:
    """Normalises an int or a 1-sequence of ints to a 1-tuple, as Keras does."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 1:
            raise ValueError(
                f"`{name}` must be an int or a tuple of 1 int for a 1-D "
                f"convolution; received {name}={tuple(value)!r} of length "
                f"{len(value)}."
            )
        (item,) = value
    else:
        item = value
    item = _as_int(item, name)
    if item < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"`{name}` must be {kind}; received {name}={value!r}.")
    return (item,)


def padding_name(value, allowed: Sequence[str], name: str = "padding") -> str:
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


def data_format(value) -> str:
    """``None`` means Keras's default, ``"channels_last"``; any case is fine."""
    if value is None:
        return "channels_last"
    return padding_name(value, DATA_FORMATS, "data_format")


def boolean(value, name: str) -> bool:
    """Accepts Python and NumPy bools only."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(
            f"`{name}` must be a bool; received {value!r} of type "
            f"{type(value).__name__}."
        )
    return bool(value)


def output_padding(value, strides: int) -> int | None:
    """``None``, or an int (or 1-tuple) in ``[0, strides)``, as Keras requires."""
    if value is None:
        return None
    (value,) = single_int_tuple(value, "output_padding", minimum=0)
    if value >= strides:
        raise ValueError(
            f"`output_padding` must be smaller than `strides`; received "
            f"output_padding={value} with strides={strides}."
        )
    return value


def strides_and_dilation(strides: int, dilation_rate: int) -> None:
    """Keras refuses strides > 1 together with dilation_rate > 1."""
    if strides > 1 and dilation_rate > 1:
        raise ValueError(
            "`strides > 1` is not supported together with `dilation_rate > 1`; "
            f"received strides={strides} and dilation_rate={dilation_rate}."
        )
