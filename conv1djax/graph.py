"""The graph composite: named sub-layers wired by a list of nodes, for
models that are not a stack, a skip or branches (what
:func:`conv1djax.interop.from_torch_module` makes of a traced PyTorch
``forward``).

A :class:`Graph` holds

- ``layers``: ``(key, layer)`` pairs; layer ``key``'s params are
  ``params[key]`` (a PyTorch model's module path, ``"layer1.0.conv1"``);
- ``weights``: the names of the graph's own arrays (a ``torch.nn.Parameter``
  a ``forward`` reads directly), ``params[name]``;
- ``nodes``: :class:`Node` s in order, each a call of a sub-layer
  (``op="layer"``), a read of an own weight (``op="weight"``) or an
  operation of ``OPS`` on the values of earlier nodes (:class:`Ref`);
- ``inputs``: the names of the input nodes, and ``output``, what ``apply``
  returns (a :class:`Ref`, or a tuple of them).

The operations follow PyTorch's semantics (its padding, pooling with
``ceil_mode``, adaptive pooling, ``interpolate`` with ``align_corners``),
channels first. With ``data_format="channels_last"`` the arrays of rank 3
and more run channels-last (the sub-layers are channels-last specs, the
inputs and outputs channels-last): an operation that reads a channel-first
order (``view``, ``flatten``, indexing) gets its input transposed back
first, so the numbers are the channels-first model's.

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> g = cj.Graph(
...     layers=[("conv", cj.Conv1D(2, 3, padding="same", data_format="channels_first"))],
...     nodes=[cj.Node("y", "layer", (cj.Ref("x"),), (("layer", "conv"),)),
...            cj.Node("z", "add", (cj.Ref("y"), cj.Ref("x")))],
...     inputs=["x"], output=cj.Ref("z"))
>>> params = g.init(jax.random.key(0), (None, 2, 8))
>>> sorted(params), g.apply(params, jnp.ones((1, 2, 8))).shape
(['conv'], (1, 2, 8))
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from conv1djax import activations, protocol
from conv1djax._typing import CallFn, Params, Shape, ShapeLike
from conv1djax.layers.params import as_array
from conv1djax.models import _Composite
from conv1djax.protocol import call_layer

# ---- node arguments ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ref:
    """The value of the node (or input) ``name``, as a node's argument.

    >>> import conv1djax as cj
    >>> cj.Node("y", "add", (cj.Ref("x"), 1.0)).args
    (Ref(name='x'), 1.0)
    """

    name: str


@dataclasses.dataclass(frozen=True)
class Slice:
    """A ``slice(start, stop, step)`` (hashable, which ``slice`` is not)."""

    start: int | None = None
    stop: int | None = None
    step: int | None = None


@dataclasses.dataclass(frozen=True)
class Node:
    """One step of a :class:`Graph`: ``name = op(*args, **dict(kwargs))``.

    ``op`` is ``"layer"`` (``kwargs`` has ``("layer", key)``: the sub-layer
    to call on ``args[0]``), ``"weight"`` (``("weight", name)``: an own
    weight) or a name of ``OPS``. ``args`` and ``kwargs`` hold
    :class:`Ref` s, ``Slice`` s, numbers, strings, None and tuples of
    them. ``source`` is where the node came from (a PyTorch source line),
    for error messages.

    >>> import conv1djax as cj
    >>> node = cj.Node("h", "pad", (cj.Ref("x"), (2, 0)), (("mode", "reflect"),))
    >>> node.op, dict(node.kwargs)
    ('pad', {'mode': 'reflect'})
    """

    name: str
    op: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    source: str = dataclasses.field(default="", compare=False)


def _resolve(value: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, Slice):
        return slice(value.start, value.stop, value.step)
    if isinstance(value, tuple):
        return tuple(_resolve(v, env) for v in value)
    return value


def _refs(value: Any) -> list[str]:
    if isinstance(value, Ref):
        return [value.name]
    if isinstance(value, tuple):
        return [n for v in value for n in _refs(v)]
    return []


# ---- operations (PyTorch's semantics, channels first unless `cl`) -----------------


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | jax.ShapeDtypeStruct)


def _cf_axis(axis: int, ndim: int) -> int:
    """Where channels-first axis ``axis`` is in the channels-last order."""
    axis %= ndim
    if axis == 0:
        return 0
    return ndim - 1 if axis == 1 else axis - 1


def to_channels_last(x: Any) -> Any:
    """``(N, C, *spatial)`` -> ``(N, *spatial, C)``."""
    return jnp.moveaxis(x, 1, -1)


def to_channels_first(x: Any) -> Any:
    """``(N, *spatial, C)`` -> ``(N, C, *spatial)``."""
    return jnp.moveaxis(x, -1, 1)


def _spatial_axes(ndim: int, rank: int, cl: bool) -> list[int]:
    first = ndim - rank - (1 if cl else 0)
    return list(range(first, first + rank))


def _pad(x: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0,
         *, cl: bool = False) -> Any:  # fmt: skip
    """``torch.nn.functional.pad``: ``pad`` is ``(left, right)`` of the
    last axis first; negative entries crop."""
    pad = [int(p) for p in pad]
    value = 0.0 if value is None else value
    ndim = x.ndim
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        axis = ndim - 1 - i
        if cl:
            axis = _cf_axis(axis, ndim)
        widths[axis] = (pad[2 * i], pad[2 * i + 1])
    crop = [(max(-a, 0), max(-b, 0)) for a, b in widths]
    widths = [(max(a, 0), max(b, 0)) for a, b in widths]
    if any(a or b for a, b in crop):
        x = x[tuple(slice(a, x.shape[i] - b) for i, (a, b) in enumerate(crop))]
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
             "circular": "wrap"}  # fmt: skip
    if mode not in modes:
        raise ValueError(f"pad: mode={mode!r} is not one of {sorted(modes)}.")
    if mode == "constant":
        return jnp.pad(x, widths, constant_values=value)
    return jnp.pad(x, widths, mode=modes[mode])


def _pool_sizes(
    length: int, k: int, s: int, p: int, d: int, ceil: bool
) -> tuple[int, int]:
    """PyTorch's pooling output length and the extra right padding
    ``ceil_mode`` reads."""
    span = d * (k - 1) + 1
    num = length + 2 * p - span
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= length + p:
        out -= 1
    extra = max((out - 1) * s + span - (length + 2 * p), 0)
    return out, extra


def _pool(x: Any, kind: str, kernel_size: Sequence[int], stride: Sequence[int],
          padding: Sequence[int], dilation: Sequence[int] = (), ceil_mode: bool = False,
          count_include_pad: bool = True, divisor_override: int | None = None,
          *, cl: bool = False) -> Any:  # fmt: skip
    """``max_pool{n}d`` / ``avg_pool{n}d`` as PyTorch computes them."""
    rank = len(kernel_size)
    dilation = tuple(dilation) or (1,) * rank
    axes = _spatial_axes(x.ndim, rank, cl)
    window = [1] * x.ndim
    strides = [1] * x.ndim
    dil = [1] * x.ndim
    pads = [(0, 0)] * x.ndim
    divisors = []
    for axis, k, s, p, d in zip(axes, kernel_size, stride, padding, dilation,
                                strict=True):  # fmt: skip
        length = x.shape[axis]
        out, extra = _pool_sizes(length, k, s, p, d, ceil_mode)
        window[axis], strides[axis], dil[axis] = k, s, d
        pads[axis] = (p, p + extra)
        start = np.arange(out) * s - p
        end = np.minimum(start + k, length + p)
        size = end - start
        inside = np.minimum(end, length) - np.maximum(start, 0)
        divisors.append(size if count_include_pad else inside)
    if kind == "max":
        low = (
            -jnp.inf
            if jnp.issubdtype(x.dtype, jnp.floating)
            else jnp.iinfo(x.dtype).min
        )
        padded = jnp.pad(x, pads, constant_values=low)
        if max(dil) == 1:  # JAX differentiates the plain max window
            return lax.reduce_window(padded, low, lax.max, window, strides, "VALID")
        # dilated: the maximum of the window's strided slices
        out_shape = [
            (padded.shape[a] - (window[a] - 1) * dil[a] - 1) // strides[a] + 1
            for a in range(x.ndim)
        ]
        result = None
        for offset in np.ndindex(*window):
            first = [int(o) * d for o, d in zip(offset, dil, strict=True)]
            last = [f + (n - 1) * s + 1 for f, n, s in zip(first, out_shape, strides,
                                                           strict=True)]  # fmt: skip
            part = lax.slice(padded, first, last, strides)
            result = part if result is None else jnp.maximum(result, part)
        return result
    total = lax.reduce_window(x, 0.0, lax.add, window, strides, pads)
    if divisor_override:
        return total / divisor_override
    div = np.ones([1] * x.ndim)
    for axis, d in zip(axes, divisors, strict=True):
        shape = [1] * x.ndim
        shape[axis] = len(d)
        div = div * d.reshape(shape)
    return total / jnp.asarray(div, x.dtype)


def _adaptive_bounds(length: int, out: int) -> list[tuple[int, int]]:
    return [((i * length) // out, -(-((i + 1) * length) // out)) for i in range(out)]


def _adaptive_pool(x: Any, kind: str, output_size: Sequence[int | None],
                   *, cl: bool = False) -> Any:  # fmt: skip
    """``adaptive_{avg,max}_pool{n}d``: window ``i`` of ``o`` over ``L`` is
    ``[floor(i L / o), ceil((i + 1) L / o))``."""
    axes = _spatial_axes(x.ndim, len(output_size), cl)
    for axis, out in zip(axes, output_size, strict=True):
        length = x.shape[axis]
        out = length if out is None else int(out)
        bounds = _adaptive_bounds(length, out)
        if kind == "avg":
            m = np.zeros((out, length), np.float64)
            for i, (a, b) in enumerate(bounds):
                m[i, a:b] = 1.0 / (b - a)
            y = jnp.tensordot(x, jnp.asarray(m, x.dtype), axes=[[axis], [1]])
            x = jnp.moveaxis(y, -1, axis)
        else:
            parts = [
                jnp.max(lax.slice_in_dim(x, a, b, axis=axis), axis=axis, keepdims=True)
                for a, b in bounds
            ]
            x = jnp.concatenate(parts, axis=axis)
    return x


def _source_index(
    out: int, length: int, scale: float | None, align: bool
) -> np.ndarray:
    """PyTorch's source coordinates, computed in float32 as it does."""
    f32 = np.float32
    dst = np.arange(out, dtype=f32)
    if align:
        return dst * f32((length - 1) / (out - 1)) if out > 1 else dst * f32(0)
    ratio = f32(1.0 / scale) if scale else f32(length / out)
    return np.maximum(ratio * (dst + f32(0.5)) - f32(0.5), f32(0))


def _interpolate(x: Any, size: Sequence[int] | None = None,
                 scale_factor: Sequence[float] | None = None, mode: str = "nearest",
                 align_corners: bool | None = None, *, cl: bool = False) -> Any:  # fmt: skip
    """``torch.nn.functional.interpolate`` (``recompute_scale_factor``
    unset): "nearest", "nearest-exact", "linear", "bilinear", "trilinear"."""
    rank = x.ndim - 2
    if size is not None and not isinstance(size, tuple | list):
        size = (size,) * rank
    if scale_factor is not None and not isinstance(scale_factor, tuple | list):
        scale_factor = (scale_factor,) * rank
    axes = _spatial_axes(x.ndim, rank, cl)
    for i, axis in enumerate(axes):
        length = x.shape[axis]
        scale = None if scale_factor is None else float(scale_factor[i])
        out = int(size[i]) if size is not None else int(math.floor(length * scale))
        if mode in ("nearest", "nearest-exact"):
            ratio = (1.0 / scale) if scale else length / out
            dst = np.arange(out, dtype=np.float64)
            src = dst * ratio if mode == "nearest" else (dst + 0.5) * ratio
            index = np.minimum(np.floor(src).astype(np.int64), length - 1)
            x = jnp.take(x, jnp.asarray(index), axis=axis)
            continue
        if mode not in ("linear", "bilinear", "trilinear"):
            raise ValueError(f"interpolate: mode={mode!r} does not convert.")
        src = _source_index(out, length, scale, bool(align_corners))
        lo = np.minimum(np.floor(src).astype(np.int64), length - 1)
        hi = np.minimum(lo + 1, length - 1)
        lam = (src - lo).astype(np.float32)
        shape = [1] * x.ndim
        shape[axis] = out
        w1 = jnp.asarray(lam.reshape(shape), x.dtype)
        a = jnp.take(x, jnp.asarray(lo), axis=axis)
        b = jnp.take(x, jnp.asarray(hi), axis=axis)
        x = (1 - w1) * a + w1 * b
    return x


def _flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    start, end = start_dim % max(x.ndim, 1), end_dim % max(x.ndim, 1)
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])


def _reshape(x: Any, *shape: Any) -> Any:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return jnp.reshape(x, tuple(int(s) for s in shape))


def _size(x: Any, dim: int | None = None) -> Any:
    return tuple(x.shape) if dim is None else x.shape[dim]


def _chunk(x: Any, chunks: int, dim: int = 0) -> tuple[Any, ...]:
    length = x.shape[dim]
    step = -(-length // chunks)
    return tuple(
        lax.slice_in_dim(x, i, min(i + step, length), axis=dim % x.ndim)
        for i in range(0, length, step)
    )


def _split(x: Any, split_size: Any, dim: int = 0) -> tuple[Any, ...]:
    length = x.shape[dim]
    if isinstance(split_size, int):
        sizes = [min(split_size, length - i) for i in range(0, length, split_size)]
    else:
        sizes = list(split_size)
    bounds = np.cumsum([0, *sizes])
    return tuple(
        lax.slice_in_dim(x, int(a), int(b), axis=dim % x.ndim)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    )


def _transpose(x: Any, dim0: int, dim1: int) -> Any:
    return jnp.swapaxes(x, dim0, dim1)


def _permute(x: Any, *dims: Any) -> Any:
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        dims = tuple(dims[0])
    return jnp.transpose(x, dims)


def _squeeze(x: Any, dim: int | None = None) -> Any:
    if dim is None:
        return jnp.squeeze(x)
    return jnp.squeeze(x, dim) if x.shape[dim] == 1 else x


def _reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    def reduce(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        axis = tuple(dim) if isinstance(dim, tuple | list) else dim
        return fn(x, axis=axis, keepdims=keepdim)

    return reduce


def _activation(x: Any, name: str, kwargs: tuple[tuple[str, Any], ...] = ()) -> Any:
    return getattr(activations, name)(x, **dict(kwargs))


def _cat(tensors: Sequence[Any], dim: int = 0) -> Any:
    return jnp.concatenate(tensors, axis=dim)


def _stack(tensors: Sequence[Any], dim: int = 0) -> Any:
    return jnp.stack(tensors, axis=dim)


def _getitem(x: Any, index: Any) -> Any:
    return x[index]


def _leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    return jnp.where(x >= 0, x, negative_slope * x)


def _clamp(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002 (torch's names)
    """``torch.clamp(x, min, max)``."""
    if min is not None:
        x = jnp.maximum(x, min)
    if max is not None:
        x = jnp.minimum(x, max)
    return x


def _identity(x: Any) -> Any:
    return x


# name -> (function, how it treats a channels-last input):
#  "pointwise": any layout (elementwise, broadcasting checked);
#  "axis": its ``dim`` argument is mapped to the channels-last axis;
#  "spatial": takes ``cl=True`` (pad, pooling, interpolation);
#  "python": Python values (ints of shapes, tuples);
#  "first": runs channels first (view, flatten, permute, indexing, ...).
OPS: dict[str, tuple[Callable[..., Any], str]] = {
    "add": (operator.add, "pointwise"),
    "sub": (operator.sub, "pointwise"),
    "mul": (operator.mul, "pointwise"),
    "truediv": (operator.truediv, "pointwise"),
    "floordiv": (operator.floordiv, "pointwise"),
    "mod": (operator.mod, "pointwise"),
    "pow": (operator.pow, "pointwise"),
    "neg": (operator.neg, "pointwise"),
    "abs": (abs, "pointwise"),
    "maximum": (jnp.maximum, "pointwise"),
    "minimum": (jnp.minimum, "pointwise"),
    "exp": (jnp.exp, "pointwise"),
    "sqrt": (jnp.sqrt, "pointwise"),
    "clamp": (_clamp, "pointwise"),
    "identity": (_identity, "pointwise"),
    "activation": (_activation, "pointwise"),
    "leaky_relu": (_leaky_relu, "pointwise"),
    "cat": (_cat, "axis"),
    "stack": (_stack, "first"),
    "chunk": (_chunk, "axis"),
    "split": (_split, "axis"),
    "pad": (_pad, "spatial"),
    "pool": (_pool, "spatial"),
    "adaptive_pool": (_adaptive_pool, "spatial"),
    "interpolate": (_interpolate, "spatial"),
    "flatten": (_flatten, "first"),
    "reshape": (_reshape, "first"),
    "transpose": (_transpose, "first"),
    "permute": (_permute, "first"),
    "squeeze": (_squeeze, "first"),
    "unsqueeze": (jnp.expand_dims, "first"),
    "mean": (_reduce(jnp.mean), "first"),
    "sum": (_reduce(jnp.sum), "first"),
    "amax": (_reduce(jnp.max), "first"),
    "getitem": (_getitem, "first"),
    "size": (_size, "shape"),
    "tuple": (lambda *xs: tuple(xs), "python"),
}


def _cf_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[-1], *shape[1:-1])


def _cl_ok(x: Any) -> bool:
    return _is_array(x) and len(x.shape) >= 3


def _run_op(
    node: Node, env: dict[str, Any], cl_of: dict[str, bool], cl_mode: bool
) -> Any:
    """``(value, channels_last)`` of an op node: its inputs put in the
    layout the op's kind reads (see ``OPS``), its axes mapped."""
    fn, kind = OPS[node.op]
    args = _resolve(node.args, env)
    kwargs = dict(_resolve(node.kwargs, env))
    if node.op == "getitem" and not _is_array(args[0]):  # a tuple's entry
        src = node.args[0]
        return operator.getitem(*args), isinstance(src, Ref) and cl_of.get(
            src.name, False
        )
    if not cl_mode:
        return fn(*args, **kwargs), False
    refs = [n for n in _refs(node.args) + _refs(node.kwargs) if _is_array(env[n])]
    layouts = {cl_of.get(n, False) for n in refs}
    if kind == "python" or not refs:
        return fn(*args, **kwargs), False
    if kind == "shape":  # the channels-first shape
        x = args[0]
        if cl_of.get(refs[0], False):
            x = jax.ShapeDtypeStruct(_cf_shape(tuple(x.shape)), x.dtype)
        return fn(x, *args[1:], **kwargs), False

    def as_layout(want_cl: bool) -> tuple[Any, Any]:
        def one(arg: Any, ref: Any) -> Any:
            if (
                isinstance(ref, Ref)
                and _is_array(arg)
                and cl_of.get(ref.name, False) != want_cl
            ):
                return to_channels_last(arg) if want_cl else to_channels_first(arg)
            if isinstance(ref, tuple) and isinstance(arg, tuple | list):
                return type(arg)(one(a, r) for a, r in zip(arg, ref, strict=True))
            return arg

        new_args = tuple(one(a, r) for a, r in zip(args, node.args, strict=True))
        new_kwargs = {k: one(kwargs[k], r) for k, r in node.kwargs}
        return new_args, new_kwargs

    if kind in ("pointwise", "axis"):
        arrays = [env[n] for n in refs]
        ndims = {len(a.shape) for a in arrays}
        want_cl = layouts == {True} and len(ndims) == 1 and ndims.pop() >= 3
        if kind == "pointwise" and True in layouts:
            # broadcasting against a lower-rank array reads channels first
            full = all(len(a.shape) == len(arrays[0].shape) for a in arrays)
            want_cl = full and len(arrays[0].shape) >= 3
        a, k = as_layout(want_cl)
        if kind == "axis" and want_cl:
            ndim = len(arrays[0].shape)
            if "dim" in k:
                k["dim"] = _cf_axis(k["dim"], ndim)
            elif len(a) >= (3 if node.op in ("chunk", "split") else 2):
                a = (*a[:-1], _cf_axis(a[-1], ndim))
            else:
                k["dim"] = _cf_axis(0, ndim)
        return fn(*a, **k), want_cl
    if kind == "spatial":
        want_cl = _cl_ok(env[refs[0]])
        a, k = as_layout(want_cl)
        return fn(*a, cl=want_cl, **k), want_cl
    a, k = as_layout(False)
    return fn(*a, **k), False


def _output_cl(value: Any, cl: bool) -> Any:
    """An output of the channels-last graph: channels-last at rank >= 3."""
    if _cl_ok(value) and not cl:
        return to_channels_last(value)
    return value


# ---- the composite --------------------------------------------------------------

_DATA_FORMATS = ("channels_first", "channels_last")


def _has_torch_weights(layer: Any) -> bool:
    """Whether a sub-layer has weights to exchange with PyTorch: a family
    with a PyTorch module, or a layer with its own state-dict hooks."""
    return bool(getattr(layer, "torch_module", None)) or callable(
        getattr(layer, "from_torch_state", None)
    )


@dataclasses.dataclass(frozen=True, init=False)
class Graph(_Composite):
    """Named sub-layers and own weights wired by a list of :class:`Node` s.

    Args:
      layers: ``(key, layer)`` pairs (or a dict); ``params[key]`` is the
        layer's params.
      nodes: the :class:`Node` s, each reading only the inputs and nodes
        before it.
      inputs: the input node names (``apply(params, x)`` for one, ``apply(
        params, (x, y))`` for several).
      output: a :class:`Ref`, or a tuple of them.
      weights: ``(name, shape)`` pairs of the graph's own arrays,
        ``params[name]`` (initialised to zeros).
      data_format: "channels_first" (PyTorch's order) or "channels_last"
        (arrays of rank >= 3 run and come in and out channels-last).
      name: optional, used by summaries.

    Raises:
      ValueError: for a node reading a name not defined before it, an
        unknown op or layer key, or duplicate names.

    A gated unit with a skip, channels first (PyTorch's ``x + tanh(conv(x)) *
    sigmoid(conv(x))`` with one shared convolution):

    >>> import jax, jax.numpy as jnp, conv1djax as cj
    >>> conv = cj.Conv1D(3, 2, padding="causal", data_format="channels_first")
    >>> g = cj.Graph(
    ...     [("conv", conv)],
    ...     [cj.Node("h", "layer", (cj.Ref("x"),), (("layer", "conv"),)),
    ...      cj.Node("a", "activation", (cj.Ref("h"), "tanh")),
    ...      cj.Node("b", "activation", (cj.Ref("h"), "sigmoid")),
    ...      cj.Node("z", "mul", (cj.Ref("a"), cj.Ref("b"))),
    ...      cj.Node("y", "add", (cj.Ref("x"), cj.Ref("z")))],
    ...     inputs=["x"], output=cj.Ref("y"))
    >>> params = g.init(jax.random.key(0), (None, 3, 16))
    >>> list(params), g.apply(params, jnp.ones((2, 3, 16))).shape
    (['conv'], (2, 3, 16))
    """

    layers: tuple[tuple[str, Any], ...]
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    output: Any
    weights: tuple[tuple[str, tuple[int, ...]], ...] = ()
    data_format: str = "channels_first"

    def __init__(
        self,
        layers: Sequence[tuple[str, Any]] | Mapping[str, Any],
        nodes: Sequence[Node],
        inputs: Sequence[str],
        output: Any,
        *,
        weights: Sequence[tuple[str, Sequence[int]]] = (),
        data_format: str = "channels_first",
        name: str | None = None,
    ) -> None:
        pairs = tuple(layers.items() if isinstance(layers, Mapping) else layers)
        for key, layer in pairs:
            if not isinstance(key, str):
                raise TypeError(f"Graph layer keys must be str; received {key!r}.")
            protocol.check_layer(layer, f"Graph layer {key!r}")
        weights = tuple((str(n), tuple(int(d) for d in s)) for n, s in weights)
        if data_format not in _DATA_FORMATS:
            raise ValueError(
                f"`data_format` must be one of {_DATA_FORMATS}; received "
                f"data_format={data_format!r}."
            )
        keys = [k for k, _ in pairs]
        own = [n for n, _ in weights]
        if len(set(keys + own)) != len(keys) + len(own):
            raise ValueError(f"Graph: duplicate layer or weight names in {keys + own}.")
        output = tuple(output) if isinstance(output, list) else output
        defined = set(inputs)
        for node in nodes:
            if not isinstance(node, Node):
                raise TypeError(f"Graph nodes must be Node; received {node!r}.")
            missing = [
                n for n in _refs(node.args) + _refs(node.kwargs) if n not in defined
            ]
            if missing:
                raise ValueError(
                    f"Graph node {node.name!r} reads {missing}, not defined before it."
                )
            if node.name in defined:
                raise ValueError(f"Graph node name {node.name!r} is used twice.")
            kw = dict(node.kwargs)
            if node.op == "layer" and kw.get("layer") not in keys:
                raise ValueError(
                    f"Graph node {node.name!r} calls layer {kw.get('layer')!r}, which "
                    f"is not one of {keys}."
                )
            if node.op == "weight" and kw.get("weight") not in own:
                raise ValueError(
                    f"Graph node {node.name!r} reads weight {kw.get('weight')!r}, "
                    f"which is not one of {own}."
                )
            if node.op not in ("layer", "weight") and node.op not in OPS:
                raise ValueError(
                    f"Graph node {node.name!r}: op {node.op!r} is not one of "
                    f"'layer', 'weight', {sorted(OPS)}."
                )
            defined.add(node.name)
        missing = [n for n in _refs(output) if n not in defined]
        if missing:
            raise ValueError(f"Graph output reads {missing}, which no node defines.")
        for field, value in (("layers", pairs), ("nodes", tuple(nodes)),
                             ("inputs", tuple(inputs)), ("output", output),
                             ("weights", weights), ("data_format", data_format),
                             ("name", name)):  # fmt: skip
            object.__setattr__(self, field, value)
        self.__post_init__()

    # ---- config ------------------------------------------------------------------

    def from_torch_state(
        self, state_dict: Mapping[str, Any], convert: Callable[[Any, Any], Params]
    ) -> dict[str, Params]:
        """The params from the traced module's whole ``state_dict()`` (keys
        ``"<module path>.<name>"``, every key used): each sub-layer's from
        its keys by ``convert`` (``interop.from_torch``), a parameter-free
        one's from none, the graph's own weights by name.

        Raises:
          ValueError: naming the keys no sub-layer takes, or a sub-layer's
            keys that do not fit it.
        """
        params: dict[str, Params] = {}
        used: set[str] = set()
        for key, layer in self.layers:
            prefix = f"{key}."
            state = {
                k[len(prefix) :]: v
                for k, v in state_dict.items()
                if k.startswith(prefix)
            }
            # a nested module's keys belong to it, not to its parent
            state = {k: v for k, v in state.items()
                     if not any(k.startswith(f"{o[len(prefix):]}.") for o, _ in self.layers
                                if o.startswith(prefix))}  # fmt: skip
            try:
                if _has_torch_weights(layer):
                    params[key] = convert(layer, state)
                elif state:
                    raise ValueError(
                        f"{type(layer).__name__} takes a state dict with the keys "
                        f"[]; received {sorted(state)}."
                    )
                else:
                    params[key] = {}
            except (TypeError, ValueError) as err:
                raise type(err)(f"module {key!r}: {err}") from None
            used |= {prefix + k for k in state}
        for name, _ in self.weights:
            if name not in state_dict:
                raise ValueError(f"the state dict has no {name!r} (a graph weight).")
            params[name] = jnp.asarray(as_array(state_dict[name], name))
            used.add(name)
        extra = sorted(set(state_dict) - used)
        if extra:
            raise ValueError(f"state dict keys no layer of the graph takes: {extra}.")
        return params

    def to_torch_state(
        self, params: Params, convert: Callable[[Any, Any], Any]
    ) -> dict[str, np.ndarray]:
        """The traced module's whole ``state_dict`` (NumPy arrays): each
        sub-layer's by ``convert`` (``interop.to_torch``) under its path."""
        state: dict[str, np.ndarray] = {}
        for key, layer in self.layers:
            if _has_torch_weights(layer):
                for k, v in convert(layer, params[key]).items():
                    state[f"{key}.{k}"] = v
        for name, _ in self.weights:
            state[name] = np.array(params[name])
        return state

    def get_config(self) -> dict[str, Any]:
        """JSON data for :func:`conv1djax.save`: the layers, the nodes (a
        :class:`Ref` as ``{"ref": name}``, a ``Slice`` as ``{"slice":
        [start, stop, step]}``), inputs, output, weights, data_format."""
        return {
            "layers": [[k, layer] for k, layer in self.layers],
            "nodes": [
                {
                    "name": n.name,
                    "op": n.op,
                    "args": _encode_arg(n.args),
                    "kwargs": [[k, _encode_arg(v)] for k, v in n.kwargs],
                    "source": n.source,
                }  # fmt: skip
                for n in self.nodes
            ],
            "inputs": list(self.inputs),
            "output": _encode_arg(self.output),
            "weights": [[n, list(s)] for n, s in self.weights],
            "data_format": self.data_format,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Graph:
        """The graph :meth:`get_config` describes."""
        nodes = [
            Node(n["name"], n["op"], _decode_arg(n["args"]),
                 tuple((k, _decode_arg(v)) for k, v in n["kwargs"]), n.get("source", ""))
            for n in config["nodes"]
        ]  # fmt: skip
        return cls(
            [(k, layer) for k, layer in config["layers"]], nodes, config["inputs"],
            _decode_arg(config["output"]), weights=config.get("weights", ()),
            data_format=config.get("data_format", "channels_first"),
            name=config.get("name"),
        )  # fmt: skip

    # ---- protocol ----------------------------------------------------------------

    def sublayers(self) -> dict[str, Any]:
        """``{key: layer}``: layer ``key``'s params are ``params[key]``."""
        return dict(self.layers)

    def _run(self, params: Any, x: Any, call: Callable[[Any, str, Any, Any], Any],
             op: Callable[[Node, dict[str, Any], dict[str, bool]], Any]) -> Any:  # fmt: skip
        xs = x if len(self.inputs) > 1 else (x,)
        if len(xs) != len(self.inputs):
            raise ValueError(
                f"Graph takes {len(self.inputs)} inputs {list(self.inputs)}; "
                f"received {len(xs)}."
            )
        cl_mode = self.data_format == "channels_last"
        env: dict[str, Any] = dict(zip(self.inputs, xs, strict=True))
        cl_of = {n: cl_mode and _cl_ok(v) for n, v in env.items()}
        layers = dict(self.layers)
        for node in self.nodes:
            try:
                if node.op == "layer":
                    key = dict(node.kwargs)["layer"]
                    layer = layers[key]
                    (value,) = _resolve(node.args, env)
                    src = node.args[0]
                    want = _wants_cl(layer) if cl_mode else False
                    have = cl_of.get(src.name, False) if isinstance(src, Ref) else False
                    if want is not None and _cl_ok(value) and have != want:
                        value = (
                            to_channels_last(value)
                            if want
                            else to_channels_first(value)
                        )
                        have = want
                    env[node.name] = call(layer, key, params, value)
                    cl_of[node.name] = have and _cl_ok(env[node.name])
                elif node.op == "weight":
                    name = dict(node.kwargs)["weight"]
                    env[node.name] = (
                        params[name]
                        if params is not None
                        else (
                            jax.ShapeDtypeStruct(dict(self.weights)[name], jnp.float32)
                        )
                    )
                    cl_of[node.name] = False
                else:
                    env[node.name], cl_of[node.name] = op(node, env, cl_of)
            except (TypeError, ValueError) as err:
                where = f"Graph node {node.name!r}" + (
                    f" ({node.source})" if node.source else ""
                )
                if type(err) in (TypeError, ValueError):
                    raise type(err)(f"{where}: {err}") from err
                err.add_note(f"in {where}")  # an error class of its own: kept
                raise
        out = _resolve(self.output, env)
        if cl_mode:
            refs = self.output if isinstance(self.output, tuple) else (self.output,)
            outs = out if isinstance(self.output, tuple) else (out,)
            outs = tuple(
                _output_cl(v, cl_of.get(r.name, False)) if isinstance(r, Ref) else v
                for v, r in zip(outs, refs, strict=True)
            )
            out = outs if isinstance(self.output, tuple) else outs[0]
        return out

    def apply(self, params: Params, x: ArrayLike, *, call: CallFn = call_layer) -> Any:
        """Runs the nodes in order (each sub-layer through ``call``)."""
        protocol.split_params(self, params)
        cl_mode = self.data_format == "channels_last"
        return self._run(
            params,
            x,
            lambda layer, key, p, v: call(layer, p[key], v),
            lambda node, env, cl_of: _run_op(node, env, cl_of, cl_mode),
        )

    def _shapes(self, input_shape: Any) -> tuple[dict[str, Shape], Any]:
        """Every sub-layer's input shape and the output shape, by running
        the graph on shapes (unknown entries as 1)."""
        single = len(self.inputs) == 1
        shapes = [input_shape] if single else list(input_shape)
        structs = tuple(
            jax.ShapeDtypeStruct(tuple(1 if d is None else d for d in s), jnp.float32)
            for s in shapes
        )
        seen: dict[str, Shape] = {}
        cl_mode = self.data_format == "channels_last"

        def call(layer: Any, key: str, p: Any, v: Any) -> Any:
            shape = tuple(v.shape)
            if single and input_shape[0] is None and shape:
                shape = (None, *shape[1:])
            seen.setdefault(key, shape)
            out = layer.compute_output_shape(shape)
            return jax.ShapeDtypeStruct(
                tuple(1 if d is None else d for d in out), v.dtype
            )

        def op(node: Node, env: dict[str, Any], cl_of: dict[str, bool]) -> Any:
            if OPS[node.op][1] in ("python", "shape"):
                return _run_op(node, env, cl_of, cl_mode)
            used = _refs(node.args) + _refs(node.kwargs)
            leaves, tree = jax.tree.flatten({n: env[n] for n in used})
            abstract = [isinstance(v, jax.ShapeDtypeStruct) for v in leaves]
            if not any(abstract):
                return _run_op(node, env, cl_of, cl_mode)
            flags: list[bool] = []

            def run(arrays: list[Any]) -> Any:
                it = iter(arrays)
                values = [
                    next(it) if a else v for a, v in zip(abstract, leaves, strict=True)
                ]
                value, cl = _run_op(
                    node, jax.tree.unflatten(tree, values), cl_of, cl_mode
                )
                flags.append(cl)
                return value

            out = jax.eval_shape(
                run, [v for a, v in zip(abstract, leaves, strict=True) if a]
            )
            return out, flags[-1]

        out = self._run(None, structs[0] if single else structs, call, op)
        return seen, out

    def sublayer_input_shapes(self, input_shape: ShapeLike) -> dict[str, Shape]:
        """The input shape each sub-layer sees (its first call's)."""
        return self._shapes(input_shape)[0]

    def compute_output_shape(self, input_shape: ShapeLike) -> Any:
        """The output's shape (a tuple of shapes for several outputs); the
        batch entry is None when the input's is."""
        out = self._shapes(input_shape)[1]
        none = len(self.inputs) == 1 and input_shape[0] is None

        def shape(v: Any) -> Any:
            s = tuple(v.shape)
            return (None, *s[1:]) if none and s else s

        return tuple(map(shape, out)) if isinstance(out, tuple) else shape(out)

    def init(
        self,
        key: jax.Array | int,
        input_shape: ShapeLike,
        *,
        dtype: DTypeLike | None = None,
    ) -> dict[str, Params]:
        """``{key: params}`` of every sub-layer and the own weights (zeros);
        ``key``: a PRNG key, or an int seed."""
        params = self._init_sublayers(key, input_shape, dtype)
        for name, shape in self.weights:
            params[name] = jnp.zeros(shape, dtype or jnp.float32)
        return params

    def count_params(self, input_shape: ShapeLike) -> int:
        """The number of scalars in the params for ``input_shape``."""
        own = sum(math.prod(s) for _, s in self.weights)
        return super().count_params(input_shape) + own


def _encode_arg(value: Any) -> Any:
    if isinstance(value, Ref):
        return {"ref": value.name}
    if isinstance(value, Slice):
        return {"slice": [value.start, value.stop, value.step]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, tuple | list):
        return [_encode_arg(v) for v in value]
    return value


def _decode_arg(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "ref" in value:
            return Ref(value["ref"])
        if "slice" in value:
            return Slice(*value["slice"])
        if "ellipsis" in value:
            return Ellipsis
    if isinstance(value, tuple | list):
        return tuple(_decode_arg(v) for v in value)
    return value


def _wants_cl(layer: Any) -> bool | None:
    """Which layout a sub-layer of a channels-last graph reads: its
    ``data_format``'s (a normalization's by its ``axis``), none for a
    pointwise ``Activation``, else PyTorch's (channels first: ``Dense``
    acts on the last axis of PyTorch's order)."""
    fmt = getattr(layer, "data_format", None)
    if fmt in _DATA_FORMATS:
        return bool(fmt == "channels_last")
    if type(layer).__name__ == "Activation":
        return None
    axis = getattr(layer, "axis", None)
    if isinstance(axis, int):
        return axis == -1
    return False
