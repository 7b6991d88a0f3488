"""Times conv1djax against raw lax, Keras 3 (JAX), Flax nnx and PyTorch.

One process, one suite. 1-D: dense convolutions (channels_last and
channels_first), grouped (8 groups), depthwise, a stride-2 transposed
convolution and a long kernel (511 taps); 2-D: depthwise 3x3, grouped
(4 groups), a stride-2 transposed convolution and a dense one; 3-D: a dense
one; then the depthwise layers (DepthwiseConv1D, DepthwiseConv2D 3x3) and the
separable ones (SeparableConv1D, SeparableConv2D 3x3). Each entry runs in
three passes: forward; forward + backward, the value
and gradient of an MSE against a target with respect to the input and the
params; and forward + backward in a second program context, the gradient of
``mean(tanh(y))`` with respect to the params and the input. Then the whole
train step of a 1-D denoising autoencoder (a strided Conv1D encoder, a
Conv1DTranspose decoder, an L2 kernel penalty, optax's Adam).

Method: each peer is compiled (JAX) or built (PyTorch) first; its compile
time is reported apart. Every peer's forward output is compared with ours
once (``max_rel_diff`` in the JSON). After two warm-up calls per peer, the
peers are timed in interleaved rounds (once per round each, in a fresh random
order every round) and the medians reported, with each peer's ratio
``peer / ours``. Peak memory is XLA's ``memory_analysis()`` of the compiled
program (arguments + outputs + temporaries - aliased), for ours and for the
plain ``lax.conv_general_dilated`` path (``impl="reference"``). GFLOP/s count
the convolution's useful multiply-adds (2 FLOPs each); the dense rows compare
them with ``jnp.dot`` of the equivalent im2col matmul, timed in the same
rounds.

Layouts: each row has one data layout. Peers without it (Flax is
channels-last only, PyTorch channels-first only) transpose at the boundary,
inside the timed function, as their users would.

Writes ``results.md``, ``results.json`` and the charts ``results_1d.png`` and
``results_2d3d.png`` (drawn by ``charts.py``) to ``--out``.
Runs without network.

Run:  python benchmarks/bench.py [--quick] [--out DIR] [--rounds N]
          [--only ENTRY ...] [--peers PEER ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import charts  # noqa: E402  (benchmarks/, the script's directory)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

import conv1djax as cj  # noqa: E402
from conv1djax.lowering import reference  # noqa: E402
from conv1djax.shapes import split_input_shape  # noqa: E402

PEERS = ("ours", "lax", "keras", "flax", "torch")

# The timed passes of every suite entry: JSON key -> label in the tables.
PASSES = {
    "fwd": "fwd",
    "fwdbwd": "fwd+bwd",
    "fwdbwd_tanh": "fwd+bwd tanh",
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One suite entry: a conv1djax layer spec of any rank (no activation)
    and its input shape ``(batch, *spatial, channels)`` or channels first."""

    name: str
    layer: Any  # cj.Conv1D ... cj.Conv3DTranspose, depthwise, separable
    input_shape: tuple[int, ...]

    def spec(self, impl="auto"):
        return dataclasses.replace(self.layer, impl=impl)

    @property
    def rank(self) -> int:
        return self.layer.rank

    @property
    def transposed(self) -> bool:
        return self.layer.transposed

    @property
    def family(self) -> str:
        """The layer's class name without its rank: "Conv", "ConvTranspose",
        "DepthwiseConv", "SeparableConv"."""
        return re.sub(r"\dD", "", type(self.layer).__name__)

    @property
    def dense(self) -> bool:
        """A plain convolution of one group (the rows timed against jnp.dot)."""
        return self.family == "Conv" and self.layer.groups == 1

    @property
    def channels_first(self) -> bool:
        return self.layer.data_format == "channels_first"

    @property
    def spatial(self) -> tuple[int, ...]:
        return self._split()[1]

    @property
    def channels(self) -> int:
        return self._split()[2]

    def _split(self):
        return split_input_shape(
            self.input_shape, self.layer.data_format, self.rank, self.name
        )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "layer": type(self.layer).__name__,
            "config": self.layer.get_config(),
            "input_shape": list(self.input_shape),
        }

    def flops(self) -> float:
        """Useful FLOPs of the forward pass (2 per multiply-add): every output
        position (transposed: every input position) meets every entry of
        every kernel once (``taps * C * F / groups``; depthwise ``taps * C *
        depth_multiplier``; separable that plus ``C * depth_multiplier * F``)."""
        spec = self.layer
        positions = math.prod(
            self.spatial if self.transposed else spec.output_lengths(self.spatial)
        )
        products = sum(
            math.prod(shape)
            for name, shape in spec.param_shapes(self.input_shape).items()
            if name.endswith("kernel")
        )
        return 2.0 * self.input_shape[0] * positions * products


SUITE = (
    Case("dense", cj.Conv1D(64, 3, padding="same"), (16, 1024, 64)),
    Case(
        "dense NCW",
        cj.Conv1D(64, 3, padding="same", data_format="channels_first"),
        (16, 64, 1024),
    ),
    Case("grouped g=8", cj.Conv1D(64, 3, padding="same", groups=8), (16, 1024, 64)),
    Case("depthwise", cj.Conv1D(64, 3, padding="same", groups=64), (16, 1024, 64)),
    Case(
        "transposed s=2",
        cj.Conv1DTranspose(64, 4, strides=2, padding="same"),
        (16, 512, 64),
    ),
    Case("long k=511", cj.Conv1D(16, 511, padding="same"), (4, 8192, 16)),
    Case(
        "2-D depthwise 3x3",
        cj.Conv2D(64, 3, padding="same", groups=64),
        (8, 56, 56, 64),
    ),
    Case(
        "2-D grouped g=4", cj.Conv2D(64, 3, padding="same", groups=4), (8, 32, 32, 64)
    ),
    Case(
        "2-D transposed s=2",
        cj.Conv2DTranspose(32, 4, strides=2, padding="same"),
        (8, 32, 32, 32),
    ),
    Case("2-D dense", cj.Conv2D(64, 3, padding="same"), (8, 32, 32, 64)),
    Case("3-D dense", cj.Conv3D(32, 3, padding="same"), (4, 16, 16, 16, 32)),
    Case(
        "2-D depthwise layer 3x3",
        cj.DepthwiseConv2D(3, padding="same"),
        (8, 56, 56, 64),
    ),
    Case("1-D depthwise layer", cj.DepthwiseConv1D(3, padding="same"), (16, 1024, 64)),
    Case("1-D separable", cj.SeparableConv1D(64, 3, padding="same"), (16, 1024, 64)),
    Case(
        "2-D separable 3x3",
        cj.SeparableConv2D(64, 3, padding="same"),
        (8, 56, 56, 64),
    ),
)


@dataclasses.dataclass(frozen=True)
class Step:
    """One forward convolution of a layer, as the peers write it: the kernel
    ``params[param]`` in the grouped layout ``(*k, C / groups, F)`` (a
    depthwise kernel ``(*k, C, m)`` is reshaped to ``(*k, 1, C * m)``), its
    window arguments and explicit ``(left, right)`` padding."""

    param: str
    groups: int
    strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    depthwise: bool = False

    def kernel(self, params):
        kernel = params[self.param]
        if self.depthwise:
            return kernel.reshape(*kernel.shape[:-2], 1, -1)
        return kernel


def _window(case, param, groups, depthwise=False):
    """The step of the layer's own window (strides, padding, dilation)."""
    spec = case.layer
    return Step(
        param,
        groups,
        spec.strides,
        tuple(spec.paddings(case.spatial)),
        spec.dilation_rate,
        depthwise,
    )


def _pointwise(case, param):
    """A dense 1 x 1 step."""
    ones = (1,) * case.rank
    return Step(param, 1, ones, ((0, 0),) * case.rank, ones)


# Each forward layer family as its convolutions, in order, before the bias
# (transposed layers are the peers' own branch).
STEPS = {
    "Conv": lambda case: (_window(case, "kernel", case.layer.groups),),
    "DepthwiseConv": lambda case: (
        _window(case, "kernel", case.channels, depthwise=True),
    ),
    "SeparableConv": lambda case: (
        _window(case, "depthwise_kernel", case.channels, depthwise=True),
        _pointwise(case, "pointwise_kernel"),
    ),
}


def _normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _to_channels_last(rank):
    """The axis permutation from ``(N, C, *spatial)`` to ``(N, *spatial, C)``."""
    return (0, *range(2, rank + 2), 1)


def _to_channels_first(rank):
    """The axis permutation from ``(N, *spatial, C)`` to ``(N, C, *spatial)``."""
    return (0, rank + 1, *range(1, rank + 1))


# ---- peers: each returns {pass: fn} over numpy-made args, or None where it ------
# ---- cannot compute the entry's function ----------------------------------------


def _mse(y, target):
    return jnp.mean((y - target) ** 2)


def _jax_passes(apply, params, x, target):
    """``{pass: (fn, args)}``: the forward of ``apply``, the value and
    gradient of the MSE, and the gradient of ``mean(tanh(y))`` (both w.r.t.
    params and input)."""

    def fwd(params, x):
        return apply(params, x)

    def fwdbwd(params, x, target):
        return jax.value_and_grad(
            lambda p, x_: _mse(apply(p, x_), target), argnums=(0, 1)
        )(params, x)

    def fwdbwd_tanh(params, x):
        return jax.grad(lambda p, x_: jnp.mean(jnp.tanh(apply(p, x_))), argnums=(0, 1))(
            params, x
        )

    return {
        "fwd": (fwd, (params, x)),
        "fwdbwd": (fwdbwd, (params, x, target)),
        "fwdbwd_tanh": (fwdbwd_tanh, (params, x)),
    }


def _ours(case, data, impl="auto"):
    spec = case.spec(impl)
    return _jax_passes(spec.apply, data["params"], data["x"], data["t"])


def _lax(case, data):
    """One ``lax.conv_general_dilated`` per step (``STEPS``: the kernel
    reshaped to ``(*k, 1, C * m)`` with ``feature_group_count=C`` for a
    depthwise step), written by hand with Keras's padding and layout, plus
    the bias; transposed: the stride-dilated input against the flipped,
    regrouped kernel."""
    spec, rank = case.layer, case.rank
    ones = (1,) * rank
    axes = "DHW"[3 - rank :]
    layout = f"NC{axes}" if case.channels_first else f"N{axes}C"
    bias_shape = (-1, *ones) if case.channels_first else (-1,)
    dimension_numbers = (layout, f"{axes}IO", layout)

    def apply(p, x):
        if case.transposed:
            y = lax.conv_general_dilated(
                x,
                reference.transpose_kernel(p["kernel"], spec.groups),
                window_strides=ones,
                padding=spec.paddings(case.spatial),
                lhs_dilation=spec.strides,
                rhs_dilation=spec.dilation_rate,
                dimension_numbers=dimension_numbers,
                feature_group_count=spec.groups,
            )
        else:
            y = x
            for step in STEPS[case.family](case):
                y = lax.conv_general_dilated(
                    y,
                    step.kernel(p),
                    window_strides=step.strides,
                    padding=step.padding,
                    rhs_dilation=step.dilation,
                    dimension_numbers=dimension_numbers,
                    feature_group_count=step.groups,
                )
        return y + p["bias"].reshape(bias_shape)

    return _jax_passes(apply, data["params"], data["x"], data["t"])


def _keras(case, data):
    import keras

    if case.transposed and case.layer.groups > 1:
        return None  # Keras's transposed layers have no groups
    cls = getattr(keras.layers, type(case.layer).__name__)
    layer = cls.from_config(case.layer.get_config())  # our configs are Keras's
    layer.build(case.input_shape)
    names = [w.name for w in layer.trainable_weights]  # Keras's weight order
    layer.set_weights([np.asarray(data["params"][n]) for n in names])

    def apply(p, x):
        y, _ = layer.stateless_call([p[n] for n in names], [], x)
        return y

    return _jax_passes(apply, data["params"], data["x"], data["t"])


def _flax(case, data):
    from flax import nnx

    spec, rank, params = case.layer, case.rank, data["params"]
    zeros = nnx.initializers.zeros_init()
    if case.transposed:
        if spec.groups > 1:
            return None  # nnx.ConvTranspose has no groups
        module = nnx.ConvTranspose(
            case.channels,
            spec.filters,
            spec.kernel_size,
            strides=spec.strides,
            padding=spec.padding.upper(),
            kernel_dilation=spec.dilation_rate,
            kernel_init=zeros,
            rngs=nnx.Rngs(0),
        )
        # Flax: (*k, C, F), applied unflipped to the dilated input
        module.kernel.value = reference.transpose_kernel(params["kernel"], 1)
        module.bias.value = jnp.asarray(params["bias"])
    else:  # one nnx.Conv per step, the bias on the last
        modules, channels = [], case.channels
        steps = STEPS[case.family](case)
        for i, step in enumerate(steps):
            kernel = step.kernel(params)
            conv = nnx.Conv(
                channels,
                kernel.shape[-1],
                kernel.shape[:-2],
                strides=step.strides,
                padding=step.padding,
                kernel_dilation=step.dilation,
                feature_group_count=step.groups,
                use_bias=i == len(steps) - 1,
                kernel_init=zeros,
                rngs=nnx.Rngs(0),
            )
            conv.kernel.value = jnp.asarray(kernel)
            modules.append(conv)
            channels = kernel.shape[-1]
        conv.bias.value = jnp.asarray(params["bias"])
        module = modules[0] if len(modules) == 1 else nnx.Sequential(*modules)
    graphdef, state = nnx.split(module)
    first = case.channels_first

    def apply(state, x):
        model = nnx.merge(graphdef, state)
        if first:  # Flax convolutions are channels-last only
            y = model(x.transpose(_to_channels_last(rank)))
            return y.transpose(_to_channels_first(rank))
        return model(x)

    return _jax_passes(apply, state, data["x"], data["t"])


def _torch_padding(pads):
    """``(module kwargs, explicit pad)`` of a forward convolution:
    PyTorch's ``padding`` giving the ``(left, right)`` pads, and the
    ``F.pad`` argument to apply first where the module cannot (asymmetric
    padding)."""
    if all(left == right for left, right in pads):
        return {"padding": tuple(left for left, _ in pads)}, None
    return {"padding": 0}, [p for pair in reversed(pads) for p in pair]


def _torch_transpose_padding(case):
    """PyTorch's ``padding`` and ``output_padding`` giving Keras's padding
    of a transposed convolution; None where PyTorch cannot express it."""
    spec, pads = case.layer, case.layer.paddings(case.spatial)
    # padding p and output_padding q pad the stride-dilated input by
    # d * (k - 1) - p on the left and q more on the right.
    padding, extra = [], []
    for k, s, d, (left, right) in zip(
        spec.kernel_size, spec.strides, spec.dilation_rate, pads, strict=True
    ):
        p, q = d * (k - 1) - left, right - left
        if p < 0 or not 0 <= q < max(s, d):
            return None
        padding.append(p)
        extra.append(q)
    return {"padding": tuple(padding), "output_padding": tuple(extra)}


def _torch(case, data):
    import torch

    torch.set_num_threads(2)
    spec, rank, params = case.layer, case.rank, data["params"]

    def weight(kernel):
        # Keras (*k, C / g, F) -> (F, C / g, *k); transposed (*k, F / g, C)
        # -> (C, F / g, *k): the same permutation.
        w = np.asarray(kernel).transpose(rank + 1, rank, *range(rank))
        return torch.from_numpy(np.ascontiguousarray(w))

    layers = []  # (F.pad argument or None, module, weight)
    if case.transposed:
        kwargs = _torch_transpose_padding(case)
        if kwargs is None:
            return None
        module = getattr(torch.nn, f"ConvTranspose{rank}d")(
            case.channels,
            spec.filters,
            spec.kernel_size,
            stride=spec.strides,
            dilation=spec.dilation_rate,
            groups=spec.groups,
            **kwargs,
        )
        layers.append((None, module, weight(params["kernel"])))
    else:  # one Conv per step, the bias on the last
        channels, steps = case.channels, STEPS[case.family](case)
        for i, step in enumerate(steps):
            kernel = step.kernel(params)
            kwargs, pre_pad = _torch_padding(step.padding)
            module = getattr(torch.nn, f"Conv{rank}d")(
                channels,
                kernel.shape[-1],
                kernel.shape[:-2],
                stride=step.strides,
                dilation=step.dilation,
                groups=step.groups,
                bias=i == len(steps) - 1,
                **kwargs,
            )
            layers.append((pre_pad, module, weight(kernel)))
            channels = kernel.shape[-1]
    with torch.no_grad():
        for _, module, w in layers:
            module.weight.copy_(w)
        layers[-1][1].bias.copy_(torch.from_numpy(np.array(params["bias"])))
    modules = torch.nn.ModuleList(m for _, m, _ in layers)
    last = not case.channels_first
    x = torch.from_numpy(np.array(data["x"])).requires_grad_(True)  # writable
    target = torch.from_numpy(np.array(data["t"]))

    def apply(x):
        if last:  # PyTorch convolutions are channels-first
            x = x.permute(_to_channels_first(rank))
        for pre_pad, module, _ in layers:
            if pre_pad is not None:
                x = torch.nn.functional.pad(x, pre_pad)
            x = module(x)
        return x.permute(_to_channels_last(rank)) if last else x

    def fwd():
        with torch.no_grad():
            return apply(x)

    def backward(loss):
        def run():
            modules.zero_grad(set_to_none=True)
            x.grad = None
            value = loss(apply(x))
            value.backward()
            return value

        return run

    return {
        "fwd": fwd,
        "fwdbwd": backward(lambda y: torch.mean((y - target) ** 2)),
        "fwdbwd_tanh": backward(lambda y: torch.mean(torch.tanh(y))),
    }


BUILDERS = {"ours": _ours, "lax": _lax, "keras": _keras, "flax": _flax, "torch": _torch}


def make_data(case):
    spec = case.spec()
    shapes = spec.param_shapes(case.input_shape)
    params = {
        n: jnp.asarray(_normal(i, s) * 0.1) for i, (n, s) in enumerate(shapes.items())
    }
    x = jnp.asarray(_normal(10, case.input_shape))
    out_shape = spec.compute_output_shape(case.input_shape)
    return {"params": params, "x": x, "t": jnp.asarray(_normal(11, out_shape))}


# ---- timing ----------------------------------------------------------------


def compile_jax(fn, args):
    """(compiled callable, compile seconds, peak bytes)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    mem = compiled.memory_analysis()
    peak = (
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        + mem.temp_size_in_bytes
        - mem.alias_size_in_bytes
    )

    def run():
        return jax.block_until_ready(compiled(*args))

    return run, seconds, peak


# Instructions of a compiled program's entry computation that are no work of
# their own (XLA:CPU launches nothing for them): bounds.py counts the others
# as kernels, step_profile.py leaves them out of XLA's trace.
NOT_KERNELS = ("parameter", "constant", "bitcast", "tuple", "get-tuple-element")


def interleaved(runs: dict[str, Callable], rounds: int, warmup: int = 2):
    """Times each callable once per round, in a fresh random order each round
    (so that no peer always follows the same one).

    Returns:
      ``(ms, ratio)``: each callable's median milliseconds, and the median
      over rounds of its time over ``ours``'s in the same round.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    names = list(runs)
    samples = {n: [] for n in names}
    shuffle = np.random.default_rng(0)
    for _ in range(rounds):
        for i in shuffle.permutation(len(names)):
            start = time.perf_counter()
            runs[names[i]]()
            samples[names[i]].append((time.perf_counter() - start) * 1e3)
    ms = {n: statistics.median(v) for n, v in samples.items()}
    ratio = {
        n: statistics.median(a / b for a, b in zip(v, samples["ours"], strict=True))
        for n, v in samples.items()
    }
    return ms, ratio


def max_rel_diff(runs: dict[str, Callable]) -> dict[str, float]:
    """Each forward's largest deviation from ours, over ours's largest
    magnitude (float32 sums in another order: about 1e-6)."""
    outs = {p: np.asarray(run()) for p, run in runs.items()}
    scale = np.abs(outs["ours"]).max()
    return {p: float(np.abs(y - outs["ours"]).max() / scale) for p, y in outs.items()}


def bench_case(case, rounds, peers):
    data = make_data(case)
    built = {p: fns for p in peers if (fns := BUILDERS[p](case, data)) is not None}
    plain = _ours(case, data, impl="reference")
    result = {"case": case.describe(), "flops": case.flops()}
    for mode, label in PASSES.items():
        runs, compile_s, peak = {}, {}, {}
        for peer, fns in built.items():
            if peer == "torch":
                runs[peer] = fns[mode]
                continue
            fn, args = fns[mode]
            runs[peer], compile_s[peer], peak[peer] = compile_jax(fn, args)
        _, _, peak["reference"] = compile_jax(*plain[mode])
        if mode == "fwd":
            result["max_rel_diff"] = diff = max_rel_diff(runs)
            if max(diff.values()) > 1e-4:
                print(f"  WARNING {case.name}: peers disagree with ours: {diff}")
            if case.dense:
                runs["jnp.dot"] = _dot_run(case)
        ms, ratio = interleaved(runs, rounds)
        result[mode] = {
            "ms": ms,
            "ratio": ratio,
            "compile_s": compile_s,
            "peak_bytes": peak,
        }
        print(
            f"  {case.name:18s} {label:12s} "
            + "  ".join(f"{p} {t:8.2f}" for p, t in ms.items()),
            flush=True,
        )
    return result


def _dot_run(case):
    """``jnp.dot`` of the im2col matmul with the forward's FLOPs:
    ``(N * output positions, taps * C) @ (taps * C, F)``."""
    spec = case.layer
    rows = case.input_shape[0] * math.prod(spec.output_lengths(case.spatial))
    depth = math.prod(spec.kernel_size) * case.channels
    a = jnp.asarray(_normal(20, (rows, depth)))
    b = jnp.asarray(_normal(21, (depth, spec.filters)))
    run, _, _ = compile_jax(jnp.dot, (a, b))
    return run


# ---- the example's train step --------------------------------------------------

# Mirrors build_model() of examples/denoise_autoencoder.py (without its
# activity penalty and MaxNorm projection, which no peer's step shares); it
# should import the example's model once the example's API settles.
AUTOENCODER = (
    (False, 16, 9),
    (False, 32, 7),
    (False, 32, 5),
    (True, 32, 5),
    (True, 16, 7),
    (True, 1, 9),
)  # (transposed, filters, kernel_size); all strides 2, padding "same"
L2 = 1e-4
TRAIN_BATCH, TRAIN_STEPS = 32, 256


def _ae_specs(impl):
    specs = []
    for i, (transposed, filters, k) in enumerate(AUTOENCODER):
        cls = cj.Conv1DTranspose if transposed else cj.Conv1D
        act = "gelu" if i not in (2, 5) else None
        specs.append(
            cls(filters, k, strides=2, padding="same", activation=act, impl=impl)
        )
    return specs


def _ae_params():
    params, channels = [], 1
    for i, (transposed, filters, k) in enumerate(AUTOENCODER):
        shape = (k, filters, channels) if transposed else (k, channels, filters)
        scale = 1.0 / np.sqrt(k * channels)
        params.append(
            {
                "kernel": jnp.asarray(_normal(30 + i, shape) * scale),
                "bias": jnp.zeros((filters,), jnp.float32),
            }
        )
        channels = filters
    return params


def _train_data():
    x = _normal(40, (TRAIN_BATCH, TRAIN_STEPS, 1))
    return jnp.asarray(x), jnp.asarray(x + 0.4 * _normal(41, x.shape))


def _jax_train_step(forward, params):
    optimizer = optax.adam(1e-3)

    def loss_fn(params, noisy, clean):
        penalty = sum(
            jnp.sum(p["kernel"] ** 2)
            for p in jax.tree.leaves(
                params, is_leaf=lambda v: isinstance(v, dict) and "kernel" in v
            )
        )
        return _mse(forward(params, noisy), clean) + L2 * penalty

    def step(params, opt_state, noisy, clean):
        loss, grads = jax.value_and_grad(loss_fn)(params, noisy, clean)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    clean, noisy = _train_data()
    return step, (params, optimizer.init(params), noisy, clean)


def _train_ours(impl):
    specs = _ae_specs(impl)

    def forward(params, x):
        for spec, p in zip(specs, params, strict=True):
            x = spec.apply(p, x)
        return x

    return _jax_train_step(forward, _ae_params())


def _train_keras():
    import keras

    layers, channels = [], 1
    for i, (transposed, filters, k) in enumerate(AUTOENCODER):
        cls = keras.layers.Conv1DTranspose if transposed else keras.layers.Conv1D
        act = "gelu" if i not in (2, 5) else None
        layer = cls(
            filters,
            k,
            strides=2,
            padding="same",
            activation=act,
            kernel_initializer="zeros",
        )
        layer.build((None, None, channels))
        layers.append(layer)
        channels = filters

    def forward(params, x):
        for layer, p in zip(layers, params, strict=True):
            x, _ = layer.stateless_call([p["kernel"], p["bias"]], [], x)
        return x

    return _jax_train_step(forward, _ae_params())


def _train_flax():
    from flax import nnx

    modules, channels = [], 1
    zeros = nnx.initializers.zeros_init()
    for transposed, filters, k in AUTOENCODER:
        cls = nnx.ConvTranspose if transposed else nnx.Conv
        modules.append(
            cls(
                channels,
                filters,
                (k,),
                strides=(2,),
                padding="SAME",
                kernel_init=zeros,
                rngs=nnx.Rngs(0),
            )
        )
        channels = filters
    params = _ae_params()
    for i, (module, p) in enumerate(zip(modules, params, strict=True)):
        kernel = p["kernel"]
        if AUTOENCODER[i][0]:
            kernel = reference.transpose_kernel(kernel, 1)
        module.kernel.value = kernel
    graphdefs, states = zip(*(nnx.split(m) for m in modules), strict=True)

    def forward(states, x):
        for i, (graphdef, state) in enumerate(zip(graphdefs, states, strict=True)):
            x = nnx.merge(graphdef, state)(x)
            if i not in (2, 5):
                x = jax.nn.gelu(x, approximate=False)
        return x

    optimizer = optax.adam(1e-3)

    def loss_fn(states, noisy, clean):
        penalty = sum(jnp.sum(s["kernel"][...] ** 2) for s in states)
        return _mse(forward(states, noisy), clean) + L2 * penalty

    def step(states, opt_state, noisy, clean):
        loss, grads = jax.value_and_grad(loss_fn)(states, noisy, clean)
        updates, opt_state = optimizer.update(grads, opt_state, states)
        return optax.apply_updates(states, updates), opt_state, loss

    states = list(states)
    clean, noisy = _train_data()
    return step, (states, optimizer.init(states), noisy, clean)


def _train_torch():
    import torch

    torch.set_num_threads(2)
    layers, channels = [], 1
    for transposed, filters, k in AUTOENCODER:
        if transposed:  # length doubles, as Keras's "same"
            layers.append(
                torch.nn.ConvTranspose1d(
                    channels,
                    filters,
                    k,
                    stride=2,
                    padding=(k - 1) // 2,
                    output_padding=1,
                )
            )
        else:
            layers.append(
                torch.nn.Conv1d(channels, filters, k, stride=2, padding=(k - 1) // 2)
            )
        channels = filters
    params = _ae_params()
    with torch.no_grad():
        for layer, p in zip(layers, params, strict=True):
            w = np.asarray(p["kernel"]).transpose(2, 1, 0)
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            layer.bias.zero_()
    model = torch.nn.ModuleList(layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    clean, noisy = (
        torch.from_numpy(np.array(a)).transpose(1, 2).contiguous()
        for a in _train_data()
    )
    gelu = torch.nn.GELU()

    def step():
        optimizer.zero_grad(set_to_none=True)
        x = noisy
        for i, layer in enumerate(model):
            x = layer(x)
            if i not in (2, 5):
                x = gelu(x)
        penalty = sum(torch.sum(layer.weight**2) for layer in model)
        loss = torch.mean((x - clean) ** 2) + L2 * penalty
        loss.backward()
        optimizer.step()
        return loss

    return step


def bench_train(rounds, peers):
    runs, compile_s, peak = {}, {}, {}
    makers = {
        "ours": lambda: _train_ours("auto"),
        "lax": lambda: _train_ours("reference"),
        "keras": _train_keras,
        "flax": _train_flax,
    }
    for peer in peers:
        if peer == "torch":
            runs[peer] = _train_torch()
            continue
        step, args = makers[peer]()
        runs[peer], compile_s[peer], peak[peer] = compile_jax(step, args)
    if "lax" in peak:
        peak["reference"] = peak["lax"]
    else:
        step, args = makers["lax"]()
        _, _, peak["reference"] = compile_jax(step, args)
    ms, ratio = interleaved(runs, rounds)
    print("  train step       " + "  ".join(f"{p} {t:8.2f}" for p, t in ms.items()))
    return {"ms": ms, "ratio": ratio, "compile_s": compile_s, "peak_bytes": peak}


# ---- report --------------------------------------------------------------------


def cpu_name() -> str:
    """The processor's model name (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    cpu = cpu_name()
    import flax
    import keras

    versions = {
        "jax": jax.__version__,
        "keras": keras.__version__,
        "flax": flax.__version__,
    }
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "date": datetime.date.today().isoformat(),
        "versions": versions,
    }


def _ratio_cell(d, peer):
    if peer not in d["ms"]:
        return "-"
    return f"{d['ms'][peer]:.2f} ({d['ratio'][peer]:.2f}x)"


def _rows(results):
    """``(entry, pass label, pass result)`` for every table row, the train
    step last."""
    rows = [
        (r["case"]["name"], label, r[mode])
        for r in results["cases"]
        for mode, label in PASSES.items()
    ]
    return [*rows, ("train step", "fwd+bwd+adam", results["train"])]


def markdown(results) -> str:
    m = results["machine"]
    peers = [p for p in PEERS if p != "ours"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, backend {m['backend']}; "
        f"{m['date']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f"; {results['rounds']} interleaved rounds, medians.",
        "",
        "Median milliseconds per call, and in parentheses the median over "
        "rounds of the peer's time over ours in the same round (above 1x: "
        "ours is faster). fwd+bwd is the value and gradient of an MSE w.r.t. "
        "input and params; fwd+bwd tanh the gradient of mean(tanh(y)) w.r.t. "
        "params and input.",
        "",
        "| entry | pass | ours | " + " | ".join(peers) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in peers) + " |",
    ]
    for name, label, d in _rows(results):
        lines.append(
            f"| {name} | {label} | {d['ms']['ours']:.2f} | "
            + " | ".join(_ratio_cell(d, p) for p in peers)
            + " |"
        )
    lines += [
        "",
        "Compile seconds (JAX peers) and peak memory of the compiled program "
        "(MB; `reference` is conv1djax's plain `lax.conv_general_dilated` "
        'path, `impl="reference"`):',
        "",
        "| entry | pass | compile ours | compile lax | compile keras | compile "
        "flax | peak ours | peak reference | ours / reference |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label, d in _rows(results):
        c, p = d["compile_s"], d["peak_bytes"]
        lines.append(
            f"| {name} | {label} | "
            + " | ".join(
                f"{c[q]:.2f}" if q in c else "-"
                for q in ("ours", "lax", "keras", "flax")
            )
            + f" | {p['ours'] / 1e6:.1f} | {p['reference'] / 1e6:.1f} | "
            f"{p['ours'] / p['reference']:.2f} |"
        )
    lines += [
        "",
        "Forward GFLOP/s (useful FLOPs; `jnp.dot` runs the dense rows' im2col "
        "matmul of the same FLOPs in the same rounds):",
        "",
        "| entry | ours GFLOP/s | lax GFLOP/s | jnp.dot GFLOP/s | ours / jnp.dot |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results["cases"]:
        ms = r["fwd"]["ms"]
        gf = {p: r["flops"] / (ms[p] * 1e6) for p in ms}
        dot = gf.get("jnp.dot")
        lines.append(
            f"| {r['case']['name']} | {gf['ours']:.1f} | "
            + (f"{gf['lax']:.1f} | " if "lax" in gf else "- | ")
            + (f"{dot:.1f} | {gf['ours'] / dot:.2f}" if dot else "- | -")
            + " |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, not 31")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", nargs="*", help="suite entries to run")
    parser.add_argument("--peers", nargs="*", default=list(PEERS))
    args = parser.parse_args()
    unknown = sorted(set(args.only or ()) - {case.name for case in SUITE})
    if unknown:
        parser.error(
            f"unknown --only entries {unknown}; the suite has "
            + ", ".join(repr(case.name) for case in SUITE)
        )
    rounds = args.rounds or (5 if args.quick else 31)
    peers = [p for p in PEERS if p in args.peers]
    try:
        import torch  # noqa: F401
    except ImportError:
        peers.remove("torch")
    results = {"machine": machine(), "rounds": rounds, "cases": []}
    for case in SUITE:
        if args.only and case.name not in args.only:
            continue
        results["cases"].append(bench_case(case, rounds, peers))
    results["train"] = bench_train(rounds * 4, peers)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(markdown(results))
    charts.bench_charts(results, args.out)
    print(markdown(results))


if __name__ == "__main__":
    main()
