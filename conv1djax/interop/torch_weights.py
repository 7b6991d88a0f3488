"""PyTorch weights: a convolution's params from and to the ``state_dict``
(``{"weight", "bias"}``) of ``torch.nn.Conv{1,2,3}d`` /
``ConvTranspose{1,2,3}d``; a depthwise layer is PyTorch's convolution with
``groups=in_channels``. Tensors are read through ``.detach().cpu().numpy()``:
torch is never imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from conv1djax._typing import LayerLike, Params
from conv1djax.interop._arrays import as_array, checked_params
from conv1djax.layers.params import torch_layout


def _torch_kind(layer: LayerLike) -> str:
    """Which PyTorch convolution the layer is, as its family declares it
    (``torch_module``): ``"conv"``, ``"transposed"`` (a ``Conv*D`` /
    ``Conv*DTranspose``, whose one ``kernel`` has ``filters`` and ``groups``),
    ``"depthwise"`` (``(*k, in, depth_multiplier)``, PyTorch's
    ``groups=in``) or ``"linear"`` (a ``Dense``, ``torch.nn.Linear``).

    Raises:
      TypeError: for a layer without weights, or with several kernels (a
        separable convolution is two PyTorch modules).
    """
    kind = getattr(layer, "torch_module", None)
    if kind is not None:
        return str(kind)
    name = type(layer).__name__
    names = (
        layer.weight_names() if callable(getattr(layer, "weight_names", None)) else ()
    )
    if names:
        raise TypeError(
            f"{name} has no single PyTorch module: convert its depthwise and "
            "pointwise convolutions separately (DepthwiseConv and a 1x1 Conv)."
        )
    raise TypeError(f"{name} has no weights to exchange with PyTorch.")


def from_torch(
    layer: LayerLike, state_dict: Mapping[str, Any]
) -> dict[str, Any]:  # state_dict values: torch tensors or arrays
    """The layer's params from a PyTorch convolution's ``state_dict()``
    (or, for ``WeightNormalization`` and ``TorchSpectralNormalization``, the
    parametrized module's: see their ``from_torch_state``).

    ``torch.nn.Conv{1,2,3}d``'s weight ``(out, in // groups, *k)`` becomes
    Keras's ``(*k, in // groups, out)``; ``ConvTranspose{1,2,3}d``'s ``(in,
    out // groups, *k)`` becomes ``(*k, out // groups, in)``; a depthwise
    layer's weight ``(in * depth_multiplier, 1, *k)`` (PyTorch's ``groups=in``)
    becomes ``(*k, in, depth_multiplier)``.

    Raises:
      ValueError: for missing or extra keys (a bias where ``use_bias`` is
        False, say), or shapes that do not fit the layer.
      TypeError: for a layer PyTorch has no module for.
    """
    own = getattr(layer, "from_torch_state", None)
    if callable(own):  # its own names: a wrapper, BatchNormalization, a Graph
        return dict(own(state_dict, from_torch))
    kind = _torch_kind(layer)
    want = {"weight", "bias"} if layer.use_bias else {"weight"}
    if not isinstance(state_dict, Mapping) or set(state_dict) != want:
        got = sorted(state_dict) if isinstance(state_dict, Mapping) else state_dict
        if isinstance(state_dict, Mapping) and "weight_g" in state_dict:
            raise ValueError(
                f"{type(layer).__name__} received the state dict of a module with "
                f"torch.nn.utils.weight_norm ({got!r}): wrap the layer in "
                "cj.WeightNormalization, which reads weight_g and weight_v, or "
                "remove the normalization first with "
                "torch.nn.utils.remove_weight_norm(module) (it folds the weight)."
            )
        raise ValueError(
            f"{type(layer).__name__}(use_bias={layer.use_bias}) takes a state dict "
            f"with the keys {sorted(want)}; received {got!r}."
        )
    w = as_array(state_dict["weight"], "state_dict['weight']")
    if kind == "linear":  # torch.nn.Linear's (out, in) -> Dense's (in, out)
        if w.ndim != 2:
            raise ValueError(
                "state_dict['weight'] of a Dense (torch.nn.Linear's) must have 2 "
                f"axes, (out, in); received shape {w.shape}."
            )
        params = {"kernel": np.transpose(w)}
        if layer.use_bias:
            params["bias"] = as_array(state_dict["bias"], "state_dict['bias']")
        return checked_params(layer, params)
    rank = layer.rank
    if w.ndim != rank + 2:
        raise ValueError(
            f"state_dict['weight'] of a {rank}-D convolution must have {rank + 2} "
            f"axes; received shape {w.shape}."
        )
    if kind == "depthwise":
        if w.shape[1] != 1 or w.shape[0] % layer.depth_multiplier:
            raise ValueError(
                f"A depthwise weight is (in * depth_multiplier, 1, *kernel_size) "
                f"with depth_multiplier={layer.depth_multiplier}; received shape "
                f"{w.shape}."
            )
        # (in * dm, 1, *k) -> (in, dm, *k) -> (*k, in, dm)
        w = w.reshape(w.shape[0] // layer.depth_multiplier, layer.depth_multiplier,
                      *w.shape[2:])  # fmt: skip
        kernel = np.transpose(w, (*range(2, rank + 2), 0, 1))
    else:
        kernel = np.transpose(w, (*range(2, rank + 2), 1, 0))
    params = {"kernel": kernel}
    if layer.use_bias:
        params["bias"] = as_array(state_dict["bias"], "state_dict['bias']")
    return checked_params(layer, params)


def to_torch(layer: LayerLike, params: Params) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` (NumPy arrays) for the layer's params:
    ``torch_module.load_state_dict({k: torch.from_numpy(v) ...})``."""
    own = getattr(layer, "to_torch_state", None)
    if callable(own):  # its own names: a wrapper, BatchNormalization, a Graph
        return dict(own(params, to_torch))
    kind = _torch_kind(layer)
    names = list(layer.weight_names())
    if not isinstance(params, Mapping) or sorted(params) != sorted(names):
        raise ValueError(
            f"params for {type(layer).__name__} must have the keys {names}."
        )
    w = torch_layout(np.asarray(params["kernel"]), kind)
    # Copies: writable arrays (a view of a JAX array is read-only, and
    # torch.from_numpy warns on those).
    state = {"weight": np.array(w, order="C")}
    if "bias" in params:
        state["bias"] = np.array(params["bias"])
    return state
