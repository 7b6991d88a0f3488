"""Dense: Keras 3's densely connected layer, on the last axis of inputs of
any rank >= 2.

Everything it shares with the convolutions (activation and bias, the
weights' initializers, regularizers and constraints, LoRA) is
:class:`conv1djax.layers.base.KernelLayer`'s; this module says only what a
matrix product on the last axis is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from conv1djax import _validation, shapes, stream_contract
from conv1djax._typing import Params, Shape, ShapeLike
from conv1djax.layers.base import KernelLayer
from conv1djax.layers.params import check_param_shapes


@dataclasses.dataclass(frozen=True)
class Dense(KernelLayer):
    """Spec of a densely connected layer, Keras 3's ``Dense``.

    Computes ``activation(x @ kernel + bias)`` on the last axis of inputs of
    shape ``(..., input_dim)``, any rank >= 2; the output is ``(...,
    units)``. Params are ``{"kernel": (input_dim, units), "bias":
    (units,)}``, Keras's names and layouts.

    Args:
      units: the output's last axis, a positive int.
      activation: None, a Keras activation name, or a callable.
      use_bias: whether a bias vector is added.
      kernel_initializer, bias_initializer: as for :class:`~conv1djax.Conv1D`.
      kernel_regularizer, bias_regularizer, activity_regularizer: as for
        :class:`~conv1djax.Conv1D`.
      kernel_constraint, bias_constraint: as for :class:`~conv1djax.Conv1D`.
      lora_rank, lora_alpha: LoRA (keyword-only), as Keras's: with
        ``lora_rank=r`` the layer computes with ``kernel + (lora_alpha / r) *
        lora_kernel_a @ lora_kernel_b`` (``(input_dim, r)`` and ``(r,
        units)``), the kernel frozen; ``lora_alpha`` defaults to ``r``.
        Keras 3.15.1's ``Dense`` builds with ``lora_alpha = r`` whatever
        it is given; this layer uses the ``lora_alpha`` given, as Keras's
        documentation and its convolutions do.
      trainable, dtype, param_dtype, name: as every spec (keyword-only).

    Raises:
      ValueError: for a bad value, naming the argument and echoing it.
      TypeError: for a value of the wrong type.

    Example usage:

    >>> import jax, jax.numpy as jnp
    >>> import conv1djax as cj
    >>> layer = cj.Dense(8, activation="relu")
    >>> params = layer.init(jax.random.key(0), (None, 10, 16))
    >>> params["kernel"].shape, params["bias"].shape
    ((16, 8), (8,))
    >>> layer.apply(params, jnp.ones((4, 10, 16))).shape
    (4, 10, 8)
    """

    units: int
    activation: Any = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None

    _KERAS_LORA: ClassVar[bool] = True
    # The PyTorch module of the same weights, for conv1djax.interop.
    torch_module: ClassVar[str | None] = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "units", _validation.positive_int(self.units, "units"))

    # ---- shapes ---------------------------------------------------------------

    def _input_dim(self, input_shape: ShapeLike) -> int:
        """The last axis of ``input_shape``, which must be known, of rank
        >= 2 (Keras's ``min_ndim=2``)."""
        shape = shapes.check_shape_entries(input_shape)
        if len(shape) < 2:
            raise ValueError(
                f"Dense takes inputs of rank >= 2, (batch, ..., input_dim); "
                f"received input_shape={shape}."
            )
        if shape[-1] is None:
            raise ValueError(
                "The last axis of a Dense layer's input must be known; received "
                f"input_shape={shape}."
            )
        return shape[-1]

    def _param_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        shapes_: dict[str, tuple[int, ...]] = {"kernel": (input_dim, self.units)}
        if self.use_bias:
            shapes_["bias"] = (self.units,)
        return self._with_lora(shapes_)

    def param_shapes(self, input_shape: ShapeLike) -> dict[str, tuple[int, ...]]:
        """The shapes of ``init``'s params for inputs of ``input_shape``.

        Raises:
          ValueError: for a rank below 2 or an unknown last axis.
        """
        return self._param_shapes(self._input_dim(input_shape))

    def weight_names(self) -> tuple[str, ...]:
        """``("kernel", "bias")`` (no ``"bias"`` when ``use_bias=False``),
        then ``("lora_kernel_a", "lora_kernel_b")`` with LoRA: Keras's
        ``get_weights()`` order."""
        return tuple(self._param_shapes(1))

    def compute_output_shape(self, input_shape: ShapeLike) -> Shape:
        """``input_shape`` with its last axis ``units`` (what the activation
        makes of it: ``"glu"`` halves it).

        >>> import conv1djax as cj
        >>> cj.Dense(32).compute_output_shape((None, 7, 128))
        (None, 7, 32)
        """
        self._input_dim(input_shape)
        shape = (*tuple(input_shape)[:-1], self.units)
        if self.activation is None:
            return shape
        return shapes.eval_output_shape(self.activation, shape)

    # ---- numerics -------------------------------------------------------------

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, jax.Array]:
        """Creates the params for inputs of ``input_shape``, in ``dtype`` if
        given, else in the spec's :attr:`variable_dtype` (the LoRA weights in
        float32, as Keras makes them). ``key`` is a PRNG key or an int seed.

        Raises:
          ValueError: for a rank below 2 or an unknown last axis.
          TypeError: for a bad ``key`` or a non-floating ``dtype``.
        """
        key = _validation.prng_key(key)
        if dtype is None:
            dtype = self.variable_dtype
        return self._init_weights(key, self.param_shapes(input_shape), dtype)

    def apply(self, params: Params, x: ArrayLike) -> jax.Array:
        """Computes ``activation(x @ kernel + bias)`` in the compute dtype
        (the policy's, else the kernel's; the input and the params cast to
        it, as Keras autocasts), with LoRA's effective kernel when
        ``lora_rank`` is set (:meth:`merged_params`).

        Raises:
          ValueError: when the params do not fit the input's last axis, or
            the input's rank is below 2.
          TypeError: for complex inputs or a non-floating kernel.
        """
        x = shapes.check_input(x, "Dense", params)
        input_dim = self._input_dim(jnp.shape(x))
        context = f"Dense(units={self.units}) on an input with last axis {input_dim}"
        check_param_shapes(self, params, self._param_shapes(input_dim), context)
        dtype = jnp.result_type(params["kernel"])
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"params['kernel'] must be floating; received {dtype}.")
        compute: DTypeLike = self.compute_dtype or dtype
        x = shapes.as_input(x, compute, "Dense")
        params = {k: jnp.asarray(v, compute) for k, v in params.items()}
        params = self.merged_params(params)
        return self._finish(jnp.matmul(x, params["kernel"]), params)

    def check_own_params(self, params: Params, path: str = "params") -> None:
        """Checks that ``params`` fit this spec for the input size its kernel
        implies (``kernel.shape[0]``), by the rule ``apply`` checks.

        Raises:
          ValueError: naming the param at ``path`` that does not fit.
        """
        names = self.weight_names()
        if not isinstance(params, Mapping) or set(params) != set(names):
            check_param_shapes(self, params, dict.fromkeys(names, ()), "", path)
        shape = tuple(jnp.shape(params["kernel"]))
        if len(shape) != 2:
            raise ValueError(
                f"{path}['kernel'] of Dense must have 2 axes; received shape {shape}."
            )
        context = f"Dense(units={self.units}) on an input with last axis {shape[0]}"
        check_param_shapes(self, params, self._param_shapes(shape[0]), context, path)

    # ---- streaming: pointwise in time -----------------------------------------

    def stream_timing(self) -> stream_contract.Timing:
        """Dense streams step by step, on any chunk, in a channels-last
        stream (its last axis is the channels)."""
        return stream_contract.Timing()

    def stream_check(self, ndim: int, time_axis: int) -> None:
        """Refuses a channels-first stream, whose last axis (the one Dense
        maps) is time.

        Raises:
          TypeError: when ``time_axis`` is the last axis.
        """
        if time_axis % ndim == ndim - 1:
            raise stream_contract.cannot_stream(
                self,
                "it maps the last axis, which is time in a channels-first stream; "
                "stream it channels-last",
            )

    def stream_run(self, params: Params, z: jax.Array) -> jax.Array:
        """The layer on the chunk."""
        return self.apply(params, z)
