"""LoRA on a trained layer: :func:`enable_lora` adds the low-rank weights
to a layer and its params (the output unchanged, ``B`` starting at zeros),
:func:`merge_lora` folds them back into the kernel.

The rule (which kernel, the weights' shapes and initializers, the
effective kernel) is the layer's own (:class:`conv1djax.layers.base.KernelLayer`);
these two functions only move between a plain layer and its LoRA twin.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax

from conv1djax._typing import Params
from conv1djax.layers.base import KernelLayer

_L = TypeVar("_L", bound=KernelLayer)


def _check_layer(layer: Any, fn: str) -> None:
    if not isinstance(layer, KernelLayer):
        raise TypeError(
            f"{fn} takes a layer with a kernel (Dense or a convolution); received "
            f"{layer!r} of type {type(layer).__name__}."
        )


def enable_lora(
    layer: _L,
    params: Params,
    rank: int,
    key: jax.Array | int,
    alpha: float | None = None,
) -> tuple[_L, dict[str, jax.Array]]:
    """Enables LoRA on a trained layer, as Keras's ``layer.enable_lora``.

    Args:
      layer: a Dense or convolution spec without LoRA.
      params: its params (trained).
      rank: LoRA's rank, a positive int.
      key: a PRNG key or an int seed, for ``lora_kernel_a``'s He-uniform
        draw (``lora_kernel_b`` starts at zeros, so the output is unchanged).
      alpha: LoRA's ``lora_alpha``; None (default): the rank, as Keras.

    Returns:
      ``(layer with lora_rank=rank, params with lora_kernel_a and
      lora_kernel_b added)``. The train step then updates the LoRA weights
      and the bias, not the kernel. The same as ``init`` of the LoRA layer
      with ``key`` gives, for the base kernel ``init`` draws from ``key``.

    Raises:
      TypeError: for a layer without a kernel.
      ValueError: for a layer that already has LoRA, a bad rank or alpha, a
        kernel constraint (Keras's refusal), or params that do not fit.

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Dense(4)
    >>> params = layer.init(0, (None, 8))
    >>> lora, lora_params = cj.enable_lora(layer, params, rank=2, key=1)
    >>> lora, sorted(lora_params)
    (Dense(4, lora_rank=2), ['bias', 'kernel', 'lora_kernel_a', 'lora_kernel_b'])
    >>> x = jnp.ones((3, 8))
    >>> bool(jnp.allclose(lora.apply(lora_params, x), layer.apply(params, x)))
    True
    >>> lora.non_trainable_weights()  # the kernel is frozen
    ('kernel',)
    """
    _check_layer(layer, "enable_lora")
    if layer.lora_rank is not None:
        raise ValueError(
            f"LoRA is already enabled on {layer!r}; it can be enabled once (merge "
            "it first with cj.merge_lora)."
        )
    layer.check_own_params(params)
    new = dataclasses.replace(layer, lora_rank=rank, lora_alpha=alpha)  # checks
    kernel = params[new._LORA_KERNEL]
    return new, {**params, **new.init_lora(key, jax.numpy.shape(kernel))}


def merge_lora(layer: _L, params: Params) -> tuple[_L, dict[str, jax.Array]]:
    """Folds LoRA into the kernel: the plain layer and its params, which
    compute what the LoRA layer computes (``kernel + (alpha / rank) * A @
    B``, in the kernel's dtype, by the layer's :meth:`merged_params`), as
    Keras's saved weights of a LoRA layer hold the merged kernel.

    Returns:
      ``(layer without LoRA, params without lora_kernel_a / lora_kernel_b)``.

    Raises:
      TypeError: for a layer without a kernel.
      ValueError: for a layer without LoRA, or params that do not fit.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> layer = cj.Conv1D(2, 3, lora_rank=1)
    >>> params = layer.init(0, (None, 8, 4))
    >>> params["lora_kernel_b"] = jnp.ones((1, 2))  # as if trained
    >>> plain, merged = cj.merge_lora(layer, params)
    >>> plain, sorted(merged)
    (Conv1D(2, 3), ['bias', 'kernel'])
    >>> x = jnp.ones((1, 8, 4))
    >>> bool(jnp.allclose(plain.apply(merged, x), layer.apply(params, x), atol=1e-5))
    True
    """
    _check_layer(layer, "merge_lora")
    if layer.lora_rank is None:
        raise ValueError(f"merge_lora takes a layer with LoRA; {layer!r} has none.")
    layer.check_own_params(params)
    plain = dataclasses.replace(layer, lora_rank=None, lora_alpha=None)
    merged = layer.merged_params(params)
    return plain, merged
