"""PyTorch models with a ``forward`` of their own: traced by ``torch.fx``
into a :class:`~conv1djax.Graph` whose sub-layers are keyed by the modules'
paths (``"layer1.0.conv1"``), so a whole ``state_dict`` maps to the params
and back (:func:`graph_from_torch`, :func:`graph_to_torch`). torch is
imported here, inside the functions, only when a model is converted."""

from __future__ import annotations

import dataclasses
import linecache
import operator
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

import conv1djax.interop.torch_modules as _tm
from conv1djax import graph as _graph
from conv1djax import layers as _layers
from conv1djax._typing import LayerLike, Params
from conv1djax.graph import Graph, Node, Ref, Slice
from conv1djax.interop._arrays import as_array
from conv1djax.interop.torch_weights import from_torch, to_torch

# ---- where a node comes from ------------------------------------------------------


def _source(node: Any) -> str:
    """The user's source line a traced node comes from
    (``File "net.py", line 12, in forward: x + y``), as :func:`trace`
    recorded it."""
    return str(node.meta.get("conv1djax_source", ""))


def _user_frame(skip: tuple[str, ...]) -> str:
    """The innermost calling frame outside the folders ``skip`` (torch's
    and conv1djax's), as ``File "path", line n, in function: code``."""
    frame = sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(skip):
            code = linecache.getline(path, frame.f_lineno).strip()
            where = f'File "{path}", line {frame.f_lineno}, in {frame.f_code.co_name}'
            return f"{where}: {code}" if code else where
        frame = frame.f_back  # type: ignore[assignment]
    return ""


class ConversionError(ValueError):
    """A traced node conv1djax cannot convert."""


def _refuse(node: Any, why: str, todo: str) -> ConversionError:
    where = _source(node)
    at = f" at {where}" if where else ""
    target = (
        node.target
        if isinstance(node.target, str)
        else getattr(node.target, "__name__", repr(node.target))
    )
    return ConversionError(
        f"node {node.name!r} ({node.op} {target}){at}: {why}. {todo}"
    )


# ---- modules -----------------------------------------------------------------------


def _module_op(
    module: Any, name: str
) -> tuple[str, tuple[tuple[str, Any], ...]] | None:
    """A module the specs have no equivalent of but an op of the graph
    computes exactly: ``(op, kwargs)``."""
    if match := re.fullmatch(r"(Max|Avg)Pool([123])d", name):
        rank = int(match[2])
        k = _tm._ints(module.kernel_size, rank, "kernel_size")
        stride = module.stride if module.stride not in (None, []) else k
        if getattr(module, "return_indices", False):
            return None
        kw: dict[str, Any] = {
            "kind": match[1].lower(),
            "kernel_size": k,
            "stride": _tm._ints(stride, rank, "stride"),
            "padding": _tm._ints(module.padding, rank, "padding"),
            "dilation": _tm._ints(getattr(module, "dilation", 1), rank, "dilation"),
            "ceil_mode": bool(module.ceil_mode),
        }
        if match[1] == "Avg":
            kw["count_include_pad"] = bool(module.count_include_pad)
            kw["divisor_override"] = module.divisor_override
        return "pool", tuple(kw.items())
    if match := re.fullmatch(r"Adaptive(Max|Avg)Pool([123])d", name):
        if getattr(module, "return_indices", False):
            return None
        rank = int(match[2])
        size = module.output_size
        sizes = tuple(size) if isinstance(size, tuple | list) else (size,) * rank
        return "adaptive_pool", (("kind", match[1].lower()), ("output_size", sizes))
    if match := re.fullmatch(r"(Reflection|Replication|Circular|Zero|Constant)Pad([123])d",
                             name):  # fmt: skip
        mode = {"Reflection": "reflect", "Replication": "replicate",
                "Circular": "circular"}.get(match[1], "constant")  # fmt: skip
        rank = int(match[2])
        pad = _tm._ints(module.padding, 2 * rank, "padding")
        value = float(getattr(module, "value", 0.0))
        return "pad", (("pad", pad), ("mode", mode), ("value", value))
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        align = module.align_corners
        if name == "UpsamplingBilinear2d":
            align = True
        size = module.size
        factor = module.scale_factor
        return "interpolate", (
            ("size", None if size is None else _tuple(size)),
            ("scale_factor", None if factor is None else _tuple(factor)),
            ("mode", str(module.mode)),
            ("align_corners", align),
        )
    if name == "Flatten":
        return "flatten", (("start_dim", int(module.start_dim)),
                           ("end_dim", int(module.end_dim)))  # fmt: skip
    return None


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, tuple | list) else value


def _state(module: Any) -> dict[str, Any]:
    return dict(module.state_dict())


def _module_layer(module: Any, name: str) -> tuple[LayerLike, Params] | None:
    """A module as ``(spec, params)``: the layers :func:`from_torch_module`
    converts, and those the other layer families add (Linear, BatchNorm,
    the weight-normalized convolutions)."""
    layer: Any
    if name == "Linear":
        layer = _layers.Dense(
            int(module.out_features), use_bias=module.bias is not None
        )
        return _wrapped(module, layer)
    if re.fullmatch(r"BatchNorm[123]d", name):
        if module.training:
            raise ValueError("a BatchNorm converts in eval() mode: call module.eval()")
        if not module.track_running_stats:
            raise ValueError("a BatchNorm without running statistics does not convert")
        layer = _layers.BatchNormalization(
            axis=1,
            epsilon=float(module.eps),
            momentum=1.0 - float(module.momentum or 0.1),
            center=module.affine,
            scale=module.affine,
        )
        return layer, from_torch(layer, _state(module))
    if re.fullmatch(r"Conv(?:Transpose)?[123]d", name):
        rank = int(name[-2])
        layer = _tm._torch_conv(module, rank)
        return _wrapped(module, layer)
    return _tm._torch_layer(module, None)


def _weight_normed(module: Any) -> str | None:
    """``"parametrize"`` / ``"hook"`` for a module with PyTorch's weight
    normalization (``parametrizations.weight_norm`` / the older
    ``weight_norm``), ``"spectral"`` for spectral norm, else None."""
    plist = getattr(module, "parametrizations", None)
    if plist is not None and "weight" in plist:
        kinds = {type(p).__name__ for p in plist["weight"]}
        if "_WeightNorm" in kinds:
            return "parametrize"
        if "_SpectralNorm" in kinds:
            return "spectral"
    if hasattr(module, "weight_g") and hasattr(module, "weight_v"):
        return "hook"
    return None


def _wrapped(module: Any, layer: LayerLike) -> tuple[LayerLike, Params]:
    """The layer, inside ``WeightNormalization`` /
    ``TorchSpectralNormalization`` when the module is weight- or
    spectral-normalized, and its params from the module's state dict."""
    kind = _weight_normed(module)
    if kind in ("parametrize", "hook"):
        layer = _layers.WeightNormalization(layer)
    elif kind == "spectral":
        layer = _layers.TorchSpectralNormalization(layer)
    return layer, from_torch(layer, _state(module))


def from_torch_module(
    module: Any,
    *,
    rank: int | None = None,
    data_format: str = "channels_first",
    fold_batchnorm: bool = False,
) -> tuple[LayerLike, Params]:  # module: a torch.nn.Module
    """A PyTorch module as ``(spec, params)``: the conv1djax spec computing
    what it computes, on the same channels-first (``(N, C, *spatial)``)
    inputs, and its params (``{}`` for a parameter-free one). A
    ``torch.nn.Sequential`` of the modules below goes to
    :func:`~conv1djax.interop.from_torch_sequential`.

    Any other module whose ``forward`` ``torch.fx`` can trace (torch is
    imported then, inside this function) becomes a
    :class:`~conv1djax.Graph`: its sub-modules (keyed by their paths,
    ``"layer1.0.conv1"``, so :func:`~conv1djax.interop.to_torch` and
    :func:`~conv1djax.interop.from_torch` map its whole ``state_dict``),
    ``nn.Linear`` (``Dense``), ``BatchNorm{1,2,3}d`` in eval mode
    (``BatchNormalization(axis=1)``), weight- and spectral-normalized
    convolutions (the wrappers), and the functions, tensor methods and
    modules the graph's operations compute with PyTorch's semantics
    (arithmetic, ``torch.cat``, ``chunk``, ``split``, ``F.pad`` and the
    padding modules, pooling with any padding and ``ceil_mode``, adaptive
    pooling of any size, ``interpolate`` / ``Upsample`` with
    ``align_corners``, ``flatten``, ``view``, ``reshape``, ``permute``,
    indexing, shapes; the page "Porting from PyTorch" lists them). A node it
    cannot convert is a ``ValueError`` naming the node, its source line and
    what to do.

    Args:
      module: a ``torch.nn.Module``, in eval mode when it has dropout or
        BatchNorm.
      rank: the spatial rank of an ``Upsample`` in a Sequential when no
        module around it says.
      data_format: "channels_first" (PyTorch's order) or "channels_last":
        the same numbers on ``(N, *spatial, C)`` inputs and outputs.
      fold_batchnorm: fold each BatchNorm after a convolution into it.

    The modules that convert into a spec of their own, read by their class
    names:

    - ``Conv{1,2,3}d``: ``Conv{1,2,3}D`` with ``data_format=
      "channels_first"``, its kernel_size, stride, dilation, groups (a
      depthwise ``groups=in_channels`` stays a grouped convolution), bias,
      padding (an int or tuple: PyTorch's explicit padding; "same", "valid";
      0 becomes "valid") and padding_mode. A stride > 1 together with a
      dilation > 1 (which Keras refuses) converts with an explicit padding
      (0 stays ``((0, 0),)`` then): conv1djax allows it with explicit
      paddings, PyTorch's meaning. A parametrized
      one (``torch.nn.utils.parametrizations.weight_norm``) gives the weight
      its parametrizations compute.
    - ``ConvTranspose{1,2,3}d``: ``Conv{1,2,3}DTranspose`` with its padding
      as an explicit crop and its output_padding (padding 0 with
      output_padding < stride becomes Keras's "valid", which is the same).
    - Activations (``Activation``): ReLU, ReLU6, Sigmoid, Tanh, SiLU, SELU,
      Mish, Softsign, Hardswish (``hard_silu``), Hardsigmoid, LogSigmoid,
      Tanhshrink, Identity (``linear``); GELU (``approximate="none"``:
      ``gelu``, exact; ``"tanh"``: ``gelu`` with ``approximate=True``);
      LeakyReLU (``leaky_relu`` with its negative_slope); ELU and CELU with
      alpha=1, Softplus with beta=1 and threshold=20, Hardtanh with -1 and 1,
      Softshrink and Hardshrink with lambd=0.5 (other arguments are refused:
      the Keras activation is not them). Dropout modules in ``eval()`` mode
      are the identity (``linear``).
    - ``MaxPool{1,2,3}d`` / ``AvgPool{1,2,3}d`` with padding=0, dilation=1,
      ceil_mode=False (Keras's "valid"; anything else is refused):
      ``MaxPooling{1,2,3}D`` / ``AveragePooling{1,2,3}D``.
    - ``AdaptiveMaxPool{1,2,3}d`` / ``AdaptiveAvgPool{1,2,3}d`` of output
      size 1: ``GlobalMaxPooling{1,2,3}D`` / ``GlobalAveragePooling{1,2,3}D``
      with ``keepdims=True``.
    - ``Upsample`` (and ``UpsamplingNearest2d``) with an integer
      scale_factor and mode "nearest" (or "nearest-exact"):
      ``UpSampling{2,3}D``; ``rank`` says how many axes when the factor is
      one number (a Sequential finds it from the modules around). A 1-D
      one is refused: ``UpSampling1D`` is channels-last only.
    - ``ZeroPad{1,2,3}d`` (and ``ConstantPad{1,2,3}d`` with value 0, padding
      >= 0): ``ZeroPadding{1,2,3}D``.

    Returns:
      ``(spec, params)``.

    Raises:
      TypeError: for a module conv1djax has no equivalent of, naming it.
      ValueError: for arguments of a module that have no exact equivalent.

    A ``LeakyReLU`` with a slope other than 0.2 and a GELU with ``"tanh"``
    are ``functools.partial`` s of :mod:`conv1djax.activations`' functions,
    registered for :func:`conv1djax.save` as
    ``"conv1djax.interop:leaky_relu(negative_slope=0.1)"`` and so on; a
    process that loads such a file without converting one first passes
    ``custom_objects={name: functools.partial(...)}`` to
    :func:`conv1djax.load`.
    """
    name = _tm._check_module(module)
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "`data_format` must be 'channels_first' or 'channels_last'; received "
            f"data_format={data_format!r}."
        )
    plain = data_format == "channels_first" and not fold_batchnorm
    if name == "Sequential" and plain:
        try:
            return _tm.from_torch_sequential(module, rank=rank)
        except (TypeError, ValueError) as err:
            try:  # a module only the graph's operations compute
                return from_torch_graph(module)
            except (TypeError, ValueError):
                raise err from None
    if plain and name != "Sequential":
        try:
            converted = _tm._torch_layer(module, rank)
        except (TypeError, ValueError) as err:
            try:  # a module only the graph's operations compute
                return from_torch_graph(module)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: {err}") from None
        if converted is not None:
            return converted
    return from_torch_graph(
        module, data_format=data_format, fold_batchnorm=fold_batchnorm
    )


# ---- state dicts, per layer and whole ----------------------------------------------


def graph_from_torch(model: Graph, state_dict: Mapping[str, Any]) -> dict[str, Params]:
    """A :class:`~conv1djax.Graph`'s params from the traced module's whole
    ``state_dict()`` (keys ``"<module path>.<name>"``; every key used):
    ``model.from_torch_state`` with :func:`~conv1djax.interop.from_torch`.

    Raises:
      ValueError: naming the keys no sub-layer takes, or a sub-layer's
        keys that do not fit it.
    """
    return model.from_torch_state(state_dict, from_torch)


def graph_to_torch(model: Graph, params: Params) -> dict[str, np.ndarray]:
    """The traced module's whole ``state_dict`` (NumPy arrays) from a
    :class:`~conv1djax.Graph`'s params:
    ``module.load_state_dict({k: torch.from_numpy(v) ...})``."""
    return model.to_torch_state(params, to_torch)


# ---- tracing --------------------------------------------------------------------


def _tables(torch: Any) -> tuple[dict[Any, str], dict[str, str]]:
    """(call_function target -> op, call_method name -> op)."""
    fn = torch.nn.functional
    functions = {
        operator.add: "add", operator.sub: "sub", operator.mul: "mul",
        operator.truediv: "truediv", operator.floordiv: "floordiv",
        operator.mod: "mod", operator.pow: "pow", operator.neg: "neg",
        operator.getitem: "getitem",
        torch.add: "add", torch.sub: "sub", torch.mul: "mul", torch.div: "truediv",
        torch.cat: "cat", torch.concat: "cat", torch.stack: "stack",
        torch.flatten: "flatten", torch.reshape: "reshape",
        torch.transpose: "transpose", torch.permute: "permute",
        torch.squeeze: "squeeze", torch.unsqueeze: "unsqueeze",
        torch.mean: "mean", torch.sum: "sum", torch.amax: "amax",
        torch.chunk: "chunk", torch.split: "split",
        torch.maximum: "maximum", torch.minimum: "minimum", torch.exp: "exp",
        torch.sqrt: "sqrt", torch.abs: "abs", torch.clamp: "clamp",
        fn.pad: "pad", fn.interpolate: "interpolate",
    }  # fmt: skip
    methods = {
        "add": "add", "sub": "sub", "mul": "mul", "div": "truediv",
        "view": "reshape", "reshape": "reshape", "flatten": "flatten",
        "transpose": "transpose", "permute": "permute", "squeeze": "squeeze",
        "unsqueeze": "unsqueeze", "mean": "mean", "sum": "sum", "amax": "amax",
        "chunk": "chunk", "split": "split", "size": "size", "contiguous": "identity",
        "clone": "identity", "exp": "exp", "sqrt": "sqrt", "abs": "abs",
        "clamp": "clamp", "neg": "neg",
    }  # fmt: skip
    return functions, methods


_ACTIVATION_FUNCS = {
    "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
    "silu": "silu", "selu": "selu", "mish": "mish", "softsign": "softsign",
    "hardswish": "hard_silu", "hardsigmoid": "hard_sigmoid", "logsigmoid": "log_sigmoid",
    "elu": "elu", "gelu": "gelu", "softplus": "softplus",
}  # fmt: skip


def _activation_call(target: Any, torch: Any, args: tuple, kwargs: dict) -> Any:
    """``(op, args, kwargs)`` for a functional activation, else None."""
    fn = torch.nn.functional
    name = getattr(target, "__name__", "")
    if target in (fn.leaky_relu,):
        slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
        return "leaky_relu", args[:1], {"negative_slope": float(slope)}
    if target is fn.gelu:
        approx = kwargs.get("approximate", "none")
        extra = (("approximate", True),) if approx == "tanh" else ()
        return "activation", args[:1], {"name": "gelu", "kwargs": extra}
    if target is fn.hardtanh:
        lo = float(kwargs.get("min_val", args[1] if len(args) > 1 else -1.0))
        hi = float(kwargs.get("max_val", args[2] if len(args) > 2 else 1.0))
        return "clamp", args[:1], {"min": lo, "max": hi}
    if target in (fn.dropout, fn.dropout1d, fn.dropout2d, fn.dropout3d):
        if kwargs.get("training", args[2] if len(args) > 2 else True):
            raise ValueError("a dropout in training mode: call module.eval() first")
        return "identity", args[:1], {}
    owners = (torch, fn, torch.Tensor)
    if name in _ACTIVATION_FUNCS and any(
        getattr(o, name, None) is target for o in owners
    ):
        defaults = _KERAS_DEFAULTS.get(name, ())
        given = dict(zip([d for d, _ in defaults], args[1:], strict=False))
        given |= {k: v for k, v in kwargs.items() if k != "inplace"}
        if any(given.get(k, v) != v for k, v in defaults) or set(given) - {
            d for d, _ in defaults
        }:
            return None  # Keras's activation is not these arguments
        return "activation", args[:1], {"name": _ACTIVATION_FUNCS[name]}
    return None


# The functional activations that are Keras's only with these arguments.
_KERAS_DEFAULTS = {
    "elu": (("alpha", 1.0),),
    "softplus": (("beta", 1.0), ("threshold", 20.0)),
}

_POOL_FUNC = re.compile(r"(max|avg)_pool([123])d")
_ADAPTIVE_FUNC = re.compile(r"adaptive_(max|avg)_pool([123])d")


def _functional_pool(name: str, args: tuple, kwargs: dict) -> Any:
    if match := _POOL_FUNC.fullmatch(name):
        rank = int(match[2])
        names = ["kernel_size", "stride", "padding"]
        names += (["dilation", "ceil_mode", "return_indices"] if match[1] == "max"
                  else ["ceil_mode", "count_include_pad", "divisor_override"])  # fmt: skip
        given = dict(zip(names, args[1:], strict=False)) | kwargs
        if given.get("return_indices"):
            return None
        k = _tm._ints(given["kernel_size"], rank, "kernel_size")
        stride = given.get("stride") or k
        kw: dict[str, Any] = {
            "kind": match[1], "kernel_size": k,
            "stride": _tm._ints(stride, rank, "stride"),
            "padding": _tm._ints(given.get("padding", 0), rank, "padding"),
            "ceil_mode": bool(given.get("ceil_mode", False)),
        }  # fmt: skip
        if match[1] == "max":
            kw["dilation"] = _tm._ints(given.get("dilation", 1), rank, "dilation")
        else:
            kw["count_include_pad"] = bool(given.get("count_include_pad", True))
            kw["divisor_override"] = given.get("divisor_override")
        return "pool", args[:1], kw
    if match := _ADAPTIVE_FUNC.fullmatch(name):
        rank = int(match[2])
        size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
        sizes = tuple(size) if isinstance(size, tuple | list) else (size,) * rank
        return "adaptive_pool", args[:1], {"kind": match[1], "output_size": sizes}
    return None


def _arg(value: Any, node: Any) -> Any:
    """A traced argument as a node argument."""
    if hasattr(value, "op") and hasattr(value, "target") and hasattr(value, "name"):
        return Ref(value.name)
    if isinstance(value, slice):
        return Slice(
            _arg(value.start, node), _arg(value.stop, node), _arg(value.step, node)
        )
    if isinstance(value, tuple | list):
        return tuple(_arg(v, node) for v in value)
    if (
        value is None
        or value is Ellipsis
        or isinstance(value, bool | int | float | str)
    ):
        return value
    raise _refuse(
        node,
        f"an argument {value!r} of type {type(value).__name__} does not convert",
        "Pass numbers, tuples and tensors only (make constants Python numbers).",
    )


def trace(module: Any) -> Any:
    """``torch.fx`` 's graph of ``module``, with the source lines recorded;
    every module conv1djax converts is a leaf."""
    import torch  # noqa: PLC0415
    from torch import fx  # noqa: PLC0415

    skip = tuple(
        os.path.dirname(os.path.abspath(str(m.__file__))) + os.sep
        for m in (torch, _graph)
    )

    class _Tracer(fx.Tracer):
        def create_proxy(self, *args: Any, **kwargs: Any) -> Any:
            proxy = super().create_proxy(*args, **kwargs)
            proxy.node.meta["conv1djax_source"] = _user_frame(skip)
            return proxy

        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            if _weight_normed(m) is not None:
                return True
            return super().is_leaf_module(m, qualified_name)

    try:
        return _Tracer().trace(module)
    except torch.fx.proxy.TraceError as err:
        raise ValueError(
            f"torch.fx cannot trace {type(module).__name__}.forward: {err}. Control "
            "flow on tensor values (an `if` on a tensor or its shape) does not "
            "trace: compute shapes with tensor ops, or convert the parts separately."
        ) from None


_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def from_torch_graph(
    module: Any, *, data_format: str = "channels_first", fold_batchnorm: bool = False
) -> tuple[LayerLike, Params]:
    """Any module ``torch.fx`` can trace as ``(Graph, params)`` (a
    ``torch.nn`` module of its own as its spec, or a one-op graph); see
    :func:`conv1djax.interop.from_torch_module`."""
    import torch  # noqa: PLC0415

    name = _tm._torch_name(module)
    torch_nn = type(module).__module__.startswith("torch.nn") or _weight_normed(module)
    if torch_nn and name not in _CONTAINERS:
        # a module of its own: one node (the root of a trace is never a leaf)
        converted = _convert_module(module, name, data_format == "channels_last")
        if converted is not None:
            node = Node("y", converted[1], (Ref("x"),), converted[2])
            if converted[0] == "layer":  # the spec itself, channels-last if asked
                return converted[1], converted[2]
            return Graph([], [node], ["x"], Ref("y"), data_format=data_format), {}
        raise TypeError(
            f"{name} has no conv1djax equivalent; see cj.interop.from_torch_module "
            "for the modules that convert."
        )
    g = trace(module)
    functions, methods = _tables(torch)
    modules = dict(module.named_modules())
    layers: dict[str, LayerLike] = {}
    params: dict[str, Params] = {}
    weights: list[tuple[str, tuple[int, ...]]] = []
    nodes: list[Node] = []
    inputs: list[str] = []
    output: Any = None
    cl = data_format == "channels_last"
    for node in g.nodes:
        src = _source(node)
        args = tuple(node.args)
        kwargs = dict(node.kwargs)
        if node.op == "placeholder":
            inputs.append(node.name)
            continue
        if node.op == "output":
            output = _arg(args[0], node)
            continue
        if node.op == "get_attr":
            value = _get_attr(module, node.target)
            if value.dim() == 0 or not value.is_floating_point():
                raise _refuse(
                    node,
                    "a non-float or scalar attribute read in forward",
                    "Make it a Python number or a buffer of floats.",
                )
            weights.append((node.target, tuple(value.shape)))
            params[node.target] = jnp.asarray(as_array(value, node.target))
            nodes.append(Node(node.name, "weight", (), (("weight", node.target),), src))
            continue
        if node.op == "call_module":
            sub = modules[node.target]
            name = _tm._torch_name(sub)
            if len(args) != 1 or kwargs:
                raise _refuse(
                    node,
                    f"{name} called with {len(args)} arguments",
                    "Only modules of one tensor input convert.",
                )
            try:
                converted = _convert_module(sub, name, cl)
            except (TypeError, ValueError) as err:
                raise _refuse(
                    node,
                    f"{name}: {err}",
                    "See cj.interop.from_torch_module for what converts.",
                ) from None
            if converted is None:
                raise _refuse(
                    node,
                    f"{name} has no conv1djax equivalent",
                    "Convert it by hand into a cj.Layer and put it in the graph, or "
                    "replace it in the PyTorch model before converting.",
                )
            if converted[0] == "op":
                _, op, kw = converted
                nodes.append(Node(node.name, op, (_arg(args[0], node),), kw, src))
                continue
            layer, p = converted[1], converted[2]
            if node.target not in layers:
                layers[node.target] = _named(layer, node.target)
                params[node.target] = p
            nodes.append(Node(node.name, "layer", (_arg(args[0], node),),
                              (("layer", node.target),), src))  # fmt: skip
            continue
        if node.op == "call_function":
            got = _activation_call(node.target, torch, args, kwargs)
            if got is None:
                got = _functional_pool(
                    getattr(node.target, "__name__", ""), args, kwargs
                )
            if got is None and node.target is getattr:
                if args[1] == "shape":
                    got = ("size", args[:1], {})
                else:
                    raise _refuse(node, f"reading .{args[1]}", "Only .shape converts.")
            if got is None and node.target in functions:
                got = (functions[node.target], args, kwargs)
            if got is None:
                raise _refuse(
                    node,
                    "this function has no conv1djax equivalent",
                    "Write it with the operations listed in "
                    "cj.interop.from_torch_module's documentation, or wrap it in a "
                    "module of its own and convert that by hand.",
                )
        elif node.op == "call_method":
            method = str(node.target)
            got = _activation_call(getattr(torch.Tensor, method, None), torch, args,
                                   kwargs)  # fmt: skip
            if got is None and method in methods:
                got = (methods[method], args, kwargs)
            if got is None:
                raise _refuse(
                    node,
                    f"the tensor method .{method}() has no conv1djax equivalent",
                    "Rewrite it with the operations cj.interop.from_torch_module lists.",
                )
        else:  # pragma: no cover - fx has no other ops
            raise _refuse(node, "an unknown fx op", "Report it to conv1djax.")
        op, a, kw = got
        kw = _normalise(op, dict(kw), node)
        nodes.append(Node(node.name, op, _arg(tuple(a), node),
                          tuple((k, _arg(v, node)) for k, v in kw.items()), src))  # fmt: skip
    model = Graph(list(layers.items()), nodes, inputs, output, weights=weights,
                  data_format=data_format)  # fmt: skip
    model = fuse_zero_pads(model)
    if fold_batchnorm:
        model, params = fold_batchnorms(model, params)
    return model, params


def _normalise(op: str, kw: dict[str, Any], node: Any) -> dict[str, Any]:
    """PyTorch's keyword names as the ops' (``input`` -> positional, ...)."""
    renames = {"axis": "dim", "keepdims": "keepdim"}
    kw = {renames.get(k, k): v for k, v in kw.items()}
    if "alpha" in kw and op in ("add", "sub"):
        raise _refuse(node, "add/sub with alpha", "Write the multiplication out.")
    if op == "pad" and kw.get("mode") is None:
        kw.pop("mode", None)
    if op == "interpolate":
        if kw.get("recompute_scale_factor"):
            raise _refuse(node, "recompute_scale_factor=True", "Pass size= instead.")
        kw.pop("recompute_scale_factor", None)
        kw.pop("antialias", None)
    return kw


def _get_attr(module: Any, target: str) -> Any:
    value = module
    for part in target.split("."):
        value = getattr(value, part)
    return value.detach()


def _convert_module(sub: Any, name: str, cl: bool) -> Any:
    """``("layer", spec, params)``, ``("op", op, kwargs)`` or None."""
    layer_error: Exception | None = None
    try:
        converted = _module_layer(sub, name)
    except (TypeError, ValueError) as err:
        converted, layer_error = None, err
    if converted is not None:
        layer, p = converted
        if cl:
            layer = _channels_last(layer)
        return "layer", layer, p
    op = _module_op(sub, name)
    if op is not None:
        return ("op", *op)
    if layer_error is not None:
        raise layer_error
    return None


def _named(layer: LayerLike, name: str) -> LayerLike:
    """The layer named after its module's path (summaries show it)."""
    try:
        return dataclasses.replace(layer, name=name)
    except (TypeError, ValueError):
        return layer


def _channels_last(layer: LayerLike) -> LayerLike:
    """The channels-last spec of a converted channels-first one."""
    if getattr(layer, "data_format", None) == "channels_first":
        return dataclasses.replace(layer, data_format="channels_last")
    inner = getattr(layer, "layer", None)
    if inner is not None and getattr(inner, "data_format", None) == "channels_first":
        return dataclasses.replace(layer, layer=_channels_last(inner))
    if type(layer).__name__ == "BatchNormalization":
        return dataclasses.replace(layer, axis=-1)
    return layer


# ---- graph rewrites --------------------------------------------------------------


def _readers(model: Graph) -> dict[str, int]:
    readers: dict[str, int] = {}
    for node in model.nodes:
        for n in _graph._refs(node.args) + _graph._refs(node.kwargs):
            readers[n] = readers.get(n, 0) + 1
    for n in _graph._refs(model.output):
        readers[n] = readers.get(n, 0) + 1
    return readers


def _zero_pad_pairs(node: Node, rank: int) -> tuple[tuple[int, int], ...] | None:
    """A constant-zero ``pad`` node's per-spatial-axis pairs (first axis
    first), when it pads only the last ``rank`` axes by amounts >= 0."""
    kw = dict(node.kwargs)
    pad = kw.get("pad", node.args[1] if len(node.args) > 1 else None)
    mode = kw.get("mode", node.args[2] if len(node.args) > 2 else "constant")
    value = kw.get("value", node.args[3] if len(node.args) > 3 else 0.0)
    if not isinstance(pad, tuple) or not all(isinstance(p, int) for p in pad):
        return None
    if mode != "constant" or value not in (0, 0.0, None) or len(pad) > 2 * rank:
        return None
    if any(p < 0 for p in pad) or len(pad) % 2:
        return None
    sides = list(pad) + [0] * (2 * rank - len(pad))
    return tuple((sides[2 * i], sides[2 * i + 1]) for i in range(rank))[::-1]


def fuse_zero_pads(model: Graph) -> Graph:
    """Each zero ``F.pad`` read only by a convolution (called once, zero
    ``padding_mode``) becomes that convolution's explicit padding: the
    same numbers, and a causal left pad then streams."""
    layers = dict(model.layers)
    readers = _readers(model)
    calls: dict[str, int] = {}
    for node in model.nodes:
        if node.op == "layer":
            key = dict(node.kwargs)["layer"]
            calls[key] = calls.get(key, 0) + 1
    by_name = {node.name: node for node in model.nodes}
    dropped: set[str] = set()
    nodes = list(model.nodes)
    for i, node in enumerate(nodes):
        if node.op != "layer" or not isinstance(node.args[0], Ref):
            continue
        key = dict(node.kwargs)["layer"]
        conv = layers[key]
        pad_node = by_name.get(node.args[0].name)
        if (
            pad_node is None
            or pad_node.op != "pad"
            or readers.get(pad_node.name) != 1
            or calls[key] != 1
            or getattr(conv, "torch_module", None) != "conv"
            or getattr(conv, "padding_mode", None) != "zeros"
            or getattr(conv, "transposed", False)
        ):
            continue
        pairs = _zero_pad_pairs(pad_node, conv.rank)
        if pairs is None or not isinstance(pad_node.args[0], Ref):
            continue
        if conv.padding == "valid":
            own = ((0, 0),) * conv.rank
        elif isinstance(conv.padding, tuple):
            own = conv.padding
        else:
            continue
        total = tuple((a + c, b + d) for (a, b), (c, d) in zip(pairs, own, strict=True))
        layers[key] = dataclasses.replace(conv, padding=total)
        nodes[i] = dataclasses.replace(node, args=(pad_node.args[0], *node.args[1:]))
        dropped.add(pad_node.name)
    if not dropped:
        return model
    return Graph(
        list(layers.items()),
        [n for n in nodes if n.name not in dropped],
        model.inputs,
        model.output,
        weights=model.weights,
        data_format=model.data_format,
        name=model.name,
    )


# ---- BatchNorm folded into the convolution before it ------------------------------


def fold_batchnorms(
    model: Graph, params: dict[str, Params]
) -> tuple[Graph, dict[str, Params]]:
    """Every BatchNormalization whose input is a convolution's output (read
    by nothing else) folded into that convolution's kernel and bias."""
    layers = dict(model.layers)
    readers = _readers(model)
    by_name = {node.name: node for node in model.nodes}
    nodes = list(model.nodes)
    params = dict(params)
    drop: set[str] = set()
    renamed: dict[str, str] = {}
    for i, node in enumerate(nodes):
        if node.op != "layer":
            continue
        bn_key = dict(node.kwargs)["layer"]
        bn = layers[bn_key]
        if type(bn).__name__ != "BatchNormalization":
            continue
        src = node.args[0]
        conv_node = by_name.get(src.name) if isinstance(src, Ref) else None
        if conv_node is None or conv_node.op != "layer" or readers.get(src.name) != 1:
            continue
        conv_key = dict(conv_node.kwargs)["layer"]
        conv = layers[conv_key]
        if (
            getattr(conv, "torch_module", None) != "conv"
            or sum(
                1
                for m in model.nodes
                if m.op == "layer" and dict(m.kwargs)["layer"] == conv_key
            )
            != 1
        ):
            continue
        p, b = params[conv_key], params[bn_key]
        var = np.asarray(b["moving_variance"], np.float64)
        scale = np.asarray(b.get("gamma", 1.0), np.float64) / np.sqrt(var + bn.epsilon)
        kernel = np.asarray(p["kernel"], np.float64) * scale
        bias = np.asarray(p.get("bias", 0.0), np.float64)
        bias = (bias - np.asarray(b["moving_mean"], np.float64)) * scale + np.asarray(
            b.get("beta", 0.0), np.float64
        )
        dtype = np.asarray(p["kernel"]).dtype
        layers[conv_key] = dataclasses.replace(conv, use_bias=True)
        params[conv_key] = {
            "kernel": jnp.asarray(kernel.astype(dtype)),
            "bias": jnp.asarray(bias.astype(dtype)),
        }
        del params[bn_key]
        drop.add(bn_key)
        renamed[node.name] = src.name
        nodes[i] = None  # type: ignore[call-overload]
    kept_nodes = [_rename(n, renamed) for n in nodes if n is not None]
    out = _rename_arg(model.output, renamed)
    kept = [(k, v) for k, v in layers.items() if k not in drop]
    folded = Graph(kept, kept_nodes, model.inputs, out, weights=model.weights,
                   data_format=model.data_format)  # fmt: skip
    return folded, params


def _rename_arg(value: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(value, Ref):
        while value.name in renamed:
            value = Ref(renamed[value.name])
        return value
    if isinstance(value, tuple):
        return tuple(_rename_arg(v, renamed) for v in value)
    return value


def _rename(node: Node, renamed: Mapping[str, str]) -> Node:
    return dataclasses.replace(
        node,
        args=_rename_arg(node.args, renamed),
        kwargs=tuple((k, _rename_arg(v, renamed)) for k, v in node.kwargs),
    )
