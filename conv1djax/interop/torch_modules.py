"""PyTorch modules: a module (a convolution, a pooling, a padding, an
upsampling, an activation), or a ``torch.nn.Sequential`` of them, as the
equivalent channels-first spec (or :class:`~conv1djax.Sequential`) and its
params. Modules are read by their class names and attributes: torch is never
imported."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from conv1djax import activations, models, saving
from conv1djax import layers as _layers
from conv1djax._typing import LayerLike, Pads, Params
from conv1djax.interop.torch_weights import from_torch
from conv1djax.layers.base import ConvBase

_TORCH_ACTIVATIONS = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "SiLU": "silu",
    "SELU": "selu",
    "Mish": "mish",
    "Softsign": "softsign",
    "Hardswish": "hard_silu",
    "Hardsigmoid": "hard_sigmoid",
    "LogSigmoid": "log_sigmoid",
    "Tanhshrink": "tanh_shrink",
    "Identity": "linear",
}
# ... and those that are one only with these arguments (PyTorch's defaults).
_TORCH_DEFAULT_ONLY = {
    "ELU": ("elu", {"alpha": 1.0}),
    "CELU": ("celu", {"alpha": 1.0}),
    # x > threshold is linearised: exact in float32 for threshold=20, where
    # log1p(exp(-x)) is below half an ulp of x.
    "Softplus": ("softplus", {"beta": 1.0, "threshold": 20.0}),
    "Hardtanh": ("hard_tanh", {"min_val": -1.0, "max_val": 1.0}),
    "Softshrink": ("soft_shrink", {"lambd": 0.5}),
    "Hardshrink": ("hard_shrink", {"lambd": 0.5}),
}
_TORCH_DROPOUTS = frozenset(
    {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
     "FeatureAlphaDropout"}
)  # fmt: skip
# Paddings that convert into the padding_mode of the convolution after them:
# ``<Name>Pad{1,2,3}d`` -> ``padding_mode``.
_TORCH_PAD_MODES = {"Reflection": "reflect", "Replication": "replicate",
                    "Circular": "circular"}  # fmt: skip
_TORCH_PAD = re.compile(rf"({'|'.join(_TORCH_PAD_MODES)})Pad([123])d")
# The upsampling modes that are UpSampling's repeat (for integer factors).
_TORCH_NEAREST = ("nearest", "nearest-exact")


@functools.cache
def _bound_activation(name: str, **kwargs: Any) -> functools.partial[jax.Array]:
    """``functools.partial(activations.<name>, **kwargs)``, one object per
    arguments (so specs built twice are equal) and registered for
    :func:`conv1djax.save` under ``"conv1djax.interop:<name>(<kwargs>)"``."""
    fn = functools.partial(getattr(activations, name), **kwargs)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    saving.register(fn, name=f"conv1djax.interop:{name}({args})")
    return fn


def _torch_name(module: Any) -> str:
    """The module's class name; a module with parametrizations (a
    ``weight_norm``) is of a class ``Parametrized<Name>``, named ``<Name>``."""
    name = type(module).__name__
    if name.startswith("Parametrized") and hasattr(module, "parametrizations"):
        return name[len("Parametrized") :]
    return name


def _torch_rank(module: Any) -> int | None:
    """The spatial rank a module's class name says (``Conv2d``: 2), or a
    Sequential's first such; None for the rank-agnostic ones."""
    name = _torch_name(module)
    if name == "Sequential":
        for child in module.children():
            rank = _torch_rank(child)
            if rank is not None:
                return rank
        return None
    if name == "Upsample" and isinstance(module.scale_factor, tuple | list):
        return len(module.scale_factor)
    match = re.search(r"([123])d$", name)
    return int(match[1]) if match else None


def _ints(value: Any, rank: int, what: str) -> tuple[int, ...]:
    """A PyTorch int-or-tuple argument as ``rank`` ints."""
    values = tuple(value) if isinstance(value, tuple | list) else (value,) * rank
    if len(values) == 1:
        values *= rank
    if len(values) != rank:
        raise ValueError(f"{what}={value!r} does not have {rank} entries.")
    return tuple(int(v) for v in values)


def _torch_pairs(padding: Any, rank: int) -> Pads:
    """A padding module's ``(left, right, top, bottom, ...)`` (the last axis
    first, as ``F.pad`` takes it) as per-axis ``(left, right)`` pairs, the
    first spatial axis first."""
    sides = _ints(padding, 2 * rank, "padding")
    return tuple((sides[2 * i], sides[2 * i + 1]) for i in range(rank))[::-1]


def _all_zero(padding: Any) -> bool:
    """A padding of 0 everywhere (or "valid")."""
    if isinstance(padding, str):
        return padding.lower() == "valid"
    return not any(np.ravel(padding))


def _torch_state(module: Any) -> dict[str, Any]:
    """The weight and bias of a convolution: its ``state_dict()``, or, for a
    parametrized module (``torch.nn.utils.parametrizations.weight_norm``),
    the tensors its parametrizations compute."""
    if hasattr(module, "parametrizations"):
        state = {"weight": module.weight}
        if module.bias is not None:
            state["bias"] = module.bias
        return state
    return dict(module.state_dict())


def _torch_conv(
    module: Any, rank: int, pads: Pads | None = None, mode: str | None = None
) -> ConvBase:
    """The spec of a ``Conv{rank}d`` / ``ConvTranspose{rank}d``; ``pads`` and
    ``mode`` are those of a padding module before it, when fused."""
    transposed = bool(module.transposed)
    strides = _ints(module.stride, rank, "stride")
    dilations = _ints(module.dilation, rank, "dilation")
    # Keras refuses strides > 1 with dilation > 1; an explicit padding (PyTorch's
    # meaning) allows them, so such a convolution keeps its zero padding explicit.
    strided_dilated = max(strides) > 1 and max(dilations) > 1
    kwargs = {
        "filters": int(module.out_channels),
        "kernel_size": _ints(module.kernel_size, rank, "kernel_size"),
        "strides": strides,
        "dilation_rate": dilations,
        "groups": int(module.groups),
        "use_bias": module.bias is not None,
        "data_format": "channels_first",
    }
    padding = module.padding if pads is None else pads
    if isinstance(padding, str):  # "same" / "valid"
        padding = padding.lower()
    elif pads is None:
        padding = _ints(padding, rank, "padding")
    if transposed:  # an explicit padding crops the output, PyTorch's meaning
        output_padding = _ints(module.output_padding, rank, "output_padding")
        fits_keras = all(map(int.__lt__, output_padding, strides))
        if _all_zero(padding) and fits_keras and not strided_dilated:
            padding = "valid"
        cls = getattr(_layers, f"Conv{rank}DTranspose")
        return cls(padding=padding, output_padding=output_padding, **kwargs)
    mode = str(module.padding_mode) if mode is None else mode
    if _all_zero(padding) and not strided_dilated:
        padding, mode = "valid", "zeros"
    cls = getattr(_layers, f"Conv{rank}D")
    return cls(padding=padding, padding_mode=mode, **kwargs)


def _torch_pooling(module: Any, name: str, rank: int) -> LayerLike:
    kind = "Max" if name.startswith("Max") else "Average"
    pool_size = _ints(module.kernel_size, rank, "kernel_size")
    stride = module.stride
    strides = pool_size if stride is None or stride == [] else stride
    problems = []
    if any(_ints(module.padding, rank, "padding")):
        problems.append(f"padding={module.padding!r}")
    if any(d != 1 for d in _ints(getattr(module, "dilation", 1), rank, "dilation")):
        problems.append(f"dilation={module.dilation!r}")
    if module.ceil_mode:
        problems.append("ceil_mode=True")
    if getattr(module, "return_indices", False):
        problems.append("return_indices=True")
    if getattr(module, "divisor_override", None) is not None:
        problems.append(f"divisor_override={module.divisor_override!r}")
    if problems:
        raise ValueError(
            f"{', '.join(problems)} has no exact Keras pooling equivalent; only "
            "padding=0, dilation=1, ceil_mode=False (Keras's padding='valid') "
            "convert."
        )
    cls = getattr(_layers, f"{kind}Pooling{rank}D")
    return cls(
        pool_size=pool_size,
        strides=_ints(strides, rank, "stride"),
        padding="valid",
        data_format="channels_first",
    )


def _torch_global_pooling(module: Any, name: str, rank: int) -> LayerLike:
    size = module.output_size
    sizes = tuple(size) if isinstance(size, tuple | list) else (size,) * rank
    if any(s != 1 for s in sizes) or getattr(module, "return_indices", False):
        raise ValueError(
            f"output_size={size!r} (return_indices="
            f"{getattr(module, 'return_indices', False)}): only an output size "
            "of 1 on every axis (a global pooling) converts, without indices."
        )
    kind = "Max" if name.startswith("AdaptiveMax") else "Average"
    cls = getattr(_layers, f"Global{kind}Pooling{rank}D")
    return cls(data_format="channels_first", keepdims=True)


def _torch_upsample(module: Any, name: str, rank: int | None) -> LayerLike:
    if module.size is not None:
        raise ValueError(
            f"size={module.size!r}: only a scale_factor converts (an output size "
            "is not a repeat factor)."
        )
    if module.mode not in _TORCH_NEAREST:
        raise ValueError(
            f"mode={module.mode!r}: only {_TORCH_NEAREST[0]!r} (and "
            f"{_TORCH_NEAREST[1]!r}, the same for integer factors) converts, into "
            "UpSampling's repeat."
        )
    factors = module.scale_factor
    if name == "UpsamplingNearest2d":
        rank = 2
    elif isinstance(factors, tuple | list):
        rank = len(factors)
    if rank is None:
        raise ValueError(
            "its rank is not known (scale_factor is one number and no module "
            "around it says): pass rank=2 or rank=3."
        )
    sizes = tuple(factors) if isinstance(factors, tuple | list) else (factors,) * rank
    if not all(float(f).is_integer() and f >= 1 for f in sizes):
        raise ValueError(
            f"scale_factor={factors!r}: only integer factors >= 1 convert."
        )
    if rank == 1:
        raise ValueError(
            "a 1-D upsampling has no channels-first equivalent: UpSampling1D "
            "(as Keras 3's) has no data_format, its channels are last."
        )
    cls = getattr(_layers, f"UpSampling{rank}D")
    return cls(size=tuple(int(f) for f in sizes), data_format="channels_first")


def _torch_zero_padding(module: Any, rank: int) -> LayerLike:
    if float(module.value) != 0.0:
        raise ValueError(
            f"value={module.value!r}: only a zero padding (ZeroPadding) converts."
        )
    pairs = _torch_pairs(module.padding, rank)
    if any(side < 0 for pair in pairs for side in pair):
        raise ValueError(
            f"padding={module.padding!r}: a negative padding (PyTorch crops there) "
            "does not convert."
        )
    cls = getattr(_layers, f"ZeroPadding{rank}D")
    return cls(padding=pairs, data_format="channels_first")


def _torch_activation(module: Any, name: str) -> str | Callable[..., jax.Array] | None:
    if name in _TORCH_ACTIVATIONS:
        return _TORCH_ACTIVATIONS[name]
    if name in _TORCH_DEFAULT_ONLY:
        activation, defaults = _TORCH_DEFAULT_ONLY[name]
        given = {k: float(getattr(module, k)) for k in defaults}
        if given != defaults:
            shown_ = ", ".join(f"{k}={v!r}" for k, v in given.items())
            wanted = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
            raise ValueError(
                f"{shown_}: only {wanted} is Keras's {activation!r} exactly."
            )
        return activation
    if name == "LeakyReLU":
        slope = float(module.negative_slope)
        if slope == 0.2:  # Keras's default
            return "leaky_relu"
        return _bound_activation("leaky_relu", negative_slope=slope)
    if name == "GELU":
        if module.approximate == "none":
            return "gelu"  # exact (erf), Keras's default
        if module.approximate == "tanh":
            return _bound_activation("gelu", approximate=True)
        raise ValueError(f"approximate={module.approximate!r} is not known.")
    if name in _TORCH_DROPOUTS:
        if module.training:
            raise ValueError(
                "a dropout converts only in eval() mode (as the identity, "
                "Activation('linear')): call module.eval() first."
            )
        return "linear"
    return None


def _torch_layer(module: Any, rank: int | None) -> tuple[LayerLike, Params] | None:
    """``(spec, params)`` for one module that is not a Sequential, or None
    for a module conv1djax has no equivalent of."""
    name = _torch_name(module)
    activation = _torch_activation(module, name)
    if activation is not None:
        return _layers.Activation(activation), {}
    if match := re.fullmatch(r"Conv(?:Transpose)?([123])d", name):
        layer = _torch_conv(module, int(match[1]))
        return layer, from_torch(layer, _torch_state(module))
    if match := re.fullmatch(r"(?:Max|Avg)Pool([123])d", name):
        return _torch_pooling(module, name, int(match[1])), {}
    if match := re.fullmatch(r"Adaptive(?:Max|Avg)Pool([123])d", name):
        return _torch_global_pooling(module, name, int(match[1])), {}
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        return _torch_upsample(module, name, rank), {}
    if match := re.fullmatch(r"(?:Zero|Constant)Pad([123])d", name):
        return _torch_zero_padding(module, int(match[1])), {}
    return None


def _unsupported_hint(name: str) -> str:
    if name == "Flatten":
        return (
            " of its own (there is no flatten layer): in a Sequential, a "
            "Flatten() right after an AdaptiveAvgPool/AdaptiveMaxPool of output "
            "size 1 converts, into a global pooling with keepdims=False"
        )
    if _TORCH_PAD.fullmatch(name):
        return (
            " of its own: in a Sequential, right before a Conv of its rank with "
            "padding=0 it converts, into that convolution's padding and "
            "padding_mode"
        )
    return (
        "; see cj.interop.from_torch_module for the modules that convert (fold a "
        "BatchNorm into the convolution before it first, say)"
    )


def _converted(module: Any, rank: int | None, label: str) -> tuple[LayerLike, Params]:
    """:func:`_torch_layer`, its errors prefixed with ``label``."""
    try:
        converted = _torch_layer(module, rank)
    except (TypeError, ValueError) as err:
        cls = ValueError if isinstance(err, ValueError) else TypeError
        raise cls(f"{label}: {err}") from None
    if converted is None:
        name = _torch_name(module)
        raise TypeError(
            f"{label} has no conv1djax equivalent{_unsupported_hint(name)}."
        )
    return converted


def _check_module(module: Any) -> str:
    if not (hasattr(module, "named_children") and hasattr(module, "state_dict")):
        raise TypeError(
            f"`module` must be a torch.nn.Module; received {type(module).__name__}."
        )
    return _torch_name(module)


def _nearest_rank(ranks: list[int | None], i: int, default: int | None) -> int | None:
    for j in [*range(i - 1, -1, -1), *range(i + 1, len(ranks))]:
        if ranks[j] is not None:
            return ranks[j]
    return default


def from_torch_sequential(
    module: Any, *, rank: int | None = None
) -> tuple[models.Sequential, list[Params]]:  # module: a torch.nn.Sequential
    """A ``torch.nn.Sequential`` as ``(model, params)``: a
    :class:`~conv1djax.Sequential` of its modules converted in order by
    :func:`~conv1djax.interop.from_torch_module` (a nested Sequential becomes a nested
    ``Sequential``), and its params list. Two pairs of modules become one
    layer:

    - a ``ReflectionPad``, ``ReplicationPad`` or ``CircularPad`` right
      before a ``Conv`` of its rank with ``padding=0``: that convolution,
      with the pad's explicit padding and ``padding_mode`` "reflect",
      "replicate" or "circular";
    - ``Flatten()`` right after an adaptive pooling of output size 1: the
      global pooling with ``keepdims=False``.

    ``rank`` is used only for an ``Upsample`` no module in the Sequential
    gives the rank of.

    Raises:
      TypeError: for a module that is not a Sequential, or one of its
        modules that has no conv1djax equivalent, naming it and its position
        (``"module 3 (BatchNorm1d) has no conv1djax equivalent ..."``; in a
        nested Sequential ``"module 2.1 ..."``).
      ValueError: for a module's arguments that have no exact equivalent,
        naming it and its position.

    For example, with ``x`` of shape ``(N, 2, L)``::

        net = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1),
                                  torch.nn.ReLU()).eval()
        model, params = cj.interop.from_torch_sequential(net)
        model.apply(params, x)  # net(x)
    """
    name = _check_module(module)
    if name != "Sequential":
        raise TypeError(
            f"`module` must be a torch.nn.Sequential; received {name} (convert a "
            "single module with from_torch_module)."
        )
    return _torch_sequential(module, "", rank)


def _torch_sequential(
    module: Any, where: str, rank: int | None
) -> tuple[models.Sequential, list[Params]]:
    children = list(module.named_children())
    ranks = [_torch_rank(child) for _, child in children]
    layers: list[Any] = []
    params: list[Any] = []
    layer: LayerLike
    p: Params

    def label(i: int) -> str:
        key, child = children[i]
        named = "" if key == str(i) else f" {key!r}"
        return f"module {where}{i}{named} ({_torch_name(child)})"

    i = 0
    while i < len(children):
        child = children[i][1]
        name = _torch_name(child)
        after = children[i + 1][1] if i + 1 < len(children) else None
        pad = _TORCH_PAD.fullmatch(name)
        if name == "Sequential":
            layer, p = _torch_sequential(
                child, f"{where}{i}.", _nearest_rank(ranks, i, rank)
            )
        elif (
            pad
            and after is not None
            and _torch_name(after) == f"Conv{pad[2]}d"
            and _all_zero(after.padding)
        ):
            conv_rank = int(pad[2])
            try:
                layer = _torch_conv(
                    after,
                    conv_rank,
                    pads=_torch_pairs(child.padding, conv_rank),
                    mode=_TORCH_PAD_MODES[pad[1]],
                )
                p = from_torch(layer, _torch_state(after))
            except (TypeError, ValueError) as err:
                cls = ValueError if isinstance(err, ValueError) else TypeError
                raise cls(f"{label(i + 1)} after {label(i)}: {err}") from None
            i += 1  # the pad and the convolution are one layer
        elif (
            name == "Flatten"
            and layers
            and getattr(layers[-1], "keepdims", False)
            and (child.start_dim, child.end_dim) == (1, -1)
        ):
            layers[-1] = dataclasses.replace(layers[-1], keepdims=False)
            i += 1
            continue
        else:
            layer, p = _converted(child, _nearest_rank(ranks, i, rank), label(i))
        layers.append(layer)
        params.append(p)
        i += 1
    return models.Sequential(layers), params
