"""Length and padding arithmetic of 1-D convolutions: the one source of truth.

Every rule about how long an output is and where the padding goes lives here,
and ``apply``, ``compute_output_shape`` and the public length helpers all use
it. Lengths are along the steps axis; ``k_eff = (kernel_size - 1) *
dilation_rate + 1`` is the dilated kernel's extent.

Conv1D (Keras 3 / TensorFlow semantics):

- ``"valid"``: no padding; ``out = (L - k_eff) // s + 1``.
- ``"same"``: ``out = ceil(L / s)``; the total padding
  ``max((out - 1) * s + k_eff - L, 0)`` is split with the odd element on the
  right (TensorFlow's rule, also XLA's ``"SAME"``).
- ``"causal"``: ``k_eff - 1`` zeros on the left only, so ``output[t]`` never
  sees ``input[t + 1:]``; ``out = ceil(L / s)``.

Conv1DTranspose (Keras 3's JAX backend): the input is dilated by the stride,
padded with ``(left, right)`` below, and convolved with the flipped kernel, so
``out = (L - 1) * s + left + right - k_eff + 2``:

- ``"valid"``: ``(L - 1) * s + k_eff + output_padding``, with
  ``output_padding`` defaulting to ``max(k_eff, s) - k_eff``.
- ``"same"``: ``L * s`` when ``output_padding`` is None, else
  ``(L - 1) * s + k_eff % 2 + output_padding``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from conv1djax import _validation


def _effective_kernel(kernel_size: int, dilation_rate: int) -> int:
    return (kernel_size - 1) * dilation_rate + 1


def _check_positive(out: int, length: int, k_eff: int, what: str, hint: str) -> int:
    if out < 1:
        raise ValueError(
            f"The input length {length} is too short for {what} and a dilated "
            f"kernel extent of {k_eff}: the output would have length {out}. "
            f"Use a longer input, or {hint}."
        )
    return out


def conv_padding(
    length: int, kernel_size: int, strides: int, padding, dilation_rate: int
) -> tuple[int, int]:
    """Returns the (left, right) zero padding a Conv1D applies to its input."""
    k_eff = _effective_kernel(kernel_size, dilation_rate)
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
    padding: str,
    output_padding: int | None,
    dilation_rate: int,
) -> tuple[int, int]:
    """Returns the (left, right) padding of the stride-dilated input that a
    Conv1DTranspose convolves (Keras 3's JAX-backend rule)."""
    k_eff = _effective_kernel(kernel_size, dilation_rate)
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


def _conv_length(length, kernel_size, strides, padding, dilation_rate):
    if length is None:
        return None
    left, right = conv_padding(length, kernel_size, strides, padding, dilation_rate)
    k_eff = _effective_kernel(kernel_size, dilation_rate)
    out = (length + left + right - k_eff) // strides + 1
    return _check_positive(
        out,
        length,
        k_eff,
        f"padding={padding!r}",
        "a smaller kernel_size or dilation_rate, or padding='same'",
    )


def _conv_transpose_length(
    length, kernel_size, strides, padding, output_padding, dilation_rate
):
    if length is None:
        return None
    left, right = conv_transpose_padding(
        kernel_size, strides, padding, output_padding, dilation_rate
    )
    k_eff = _effective_kernel(kernel_size, dilation_rate)
    out = (length - 1) * strides + left + right - k_eff + 2
    return _check_positive(
        out,
        length,
        k_eff,
        f"a transposed convolution with padding={padding!r}",
        "a larger output_padding",
    )


def _normalise(length, kernel_size, strides, dilation_rate):
    if length is not None:
        length = _validation.single_int_tuple(length, "length", minimum=0)[0]
    (kernel_size,) = _validation.single_int_tuple(kernel_size, "kernel_size")
    (strides,) = _validation.single_int_tuple(strides, "strides")
    (dilation_rate,) = _validation.single_int_tuple(dilation_rate, "dilation_rate")
    _validation.strides_and_dilation(strides, dilation_rate)
    return length, kernel_size, strides, dilation_rate


def conv_output_length(
    length, kernel_size, strides=1, padding="valid", dilation_rate=1
) -> int | None:
    """Returns the output length of a Conv1D along the steps axis.

    Args:
      length: input length (steps), or None for an unknown length.
      kernel_size: int or 1-tuple.
      strides: int or 1-tuple.
      padding: "valid", "same" or "causal" (any case).
      dilation_rate: int or 1-tuple.

    Returns:
      The output length, equal to what ``conv1d_apply`` produces; None when
      ``length`` is None.

    Raises:
      ValueError: for a bad argument, or when the output would be empty
        (an input shorter than the dilated kernel with ``padding="valid"``).

    >>> import conv1djax as cj
    >>> cj.conv_output_length(10, 3)
    8
    >>> cj.conv_output_length(10, 3, strides=2, padding="same")
    5
    """
    length, kernel_size, strides, dilation_rate = _normalise(
        length, kernel_size, strides, dilation_rate
    )
    padding = _validation.padding_name(padding, _validation.CONV_PADDINGS)
    return _conv_length(length, kernel_size, strides, padding, dilation_rate)


def conv_transpose_output_length(
    length,
    kernel_size,
    strides=1,
    padding="valid",
    output_padding=None,
    dilation_rate=1,
) -> int | None:
    """Returns the output length of a Conv1DTranspose along the steps axis.

    Args:
      length: input length (steps), or None for an unknown length.
      kernel_size: int or 1-tuple.
      strides: int or 1-tuple.
      padding: "valid" or "same" (any case).
      output_padding: None (Keras's default rule) or an int in
        ``[0, strides)``.
      dilation_rate: int or 1-tuple.

    Returns:
      The output length, equal to what ``conv1d_transpose_apply`` produces;
      None when ``length`` is None.

    Raises:
      ValueError: for a bad argument or an empty output.

    >>> import conv1djax as cj
    >>> cj.conv_transpose_output_length(10, 3, strides=2)
    21
    >>> cj.conv_transpose_output_length(10, 3, strides=2, padding="same")
    20
    """
    length, kernel_size, strides, dilation_rate = _normalise(
        length, kernel_size, strides, dilation_rate
    )
    padding = _validation.padding_name(padding, _validation.TRANSPOSE_PADDINGS)
    output_padding = _validation.output_padding(output_padding, strides)
    return _conv_transpose_length(
        length, kernel_size, strides, padding, output_padding, dilation_rate
    )


def eval_output_shape(fn: Callable, input_shape) -> tuple[int | None, ...]:
    """The output shape of an elementwise-or-reshaping ``fn`` for a shape
    with unknown (None) entries, by abstract evaluation.

    Unknown entries get a stand-in length of 2 (even, for ``glu``) and are
    unknown again in the result when the rank is kept.
    """
    shape = tuple(input_shape)
    probe = jax.ShapeDtypeStruct(
        tuple(2 if d is None else d for d in shape), jnp.float32
    )
    out = jax.eval_shape(fn, probe).shape
    if len(out) == len(shape):
        out = tuple(None if d is None else o for d, o in zip(shape, out, strict=True))
    return tuple(out)
