"""Times conv1djax against PyTorch on CPU: layers, and two train steps.

Layer by layer and in two whole training steps, with the same weights in
both.

The suite (issue 19): 1-D dense (channels_last and channels_first),
depthwise (k=9), grouped (8 groups) and stride-2 transposed convolutions;
2-D dense (a small one and a ResNet stage), 1x1, a 7x7 stride-2 stem,
depthwise, grouped (4 groups), stride-2 transposed and separable ones; a 3-D
dense one. Each entry runs in three passes: forward; forward + backward, the
value and gradient of an MSE against a fixed target; and forward + backward
of ``mean(tanh(y))``; gradients w.r.t. the params and the input in both
frameworks. Then two whole train steps (value and gradient of an MSE plus an
Adam update, lr 1e-3): a ResNet-style 2-D CNN (a 7x7 stride-2 stem, four
stages of two residual basic blocks, 64 to 512 channels, global average
pooling and a 1x1 head, no normalization) on 16 64x64x3 images, and a
HiFi-GAN-style 1-D generator (a Conv1D, four Conv1DTranspose upsamplings by
8, 8, 2, 2, each followed by a residual block of three dilated convolutions,
leaky ReLUs, a tanh) from 4 x 32 frames of 80 channels to 4 x 8192 samples.

Weights: made once with numpy and loaded into both frameworks (Keras's
kernel layout in conv1djax, PyTorch's own in torch). Before anything is timed
the forward outputs, and the gradients of every backward pass, are compared
(``max_rel_diff``: the largest deviation over ours's largest magnitude, per
tensor, the largest over tensors; a warning above 1e-4); the train steps
compare the loss of one step and the forward outputs (the same), and the
gradients (the largest deviation over the model's largest gradient, a
warning above 1e-3: float32 sums over a whole model deviate from the float64
gradient by about 1e-4 of it, in both frameworks).

Layouts: conv1djax gets channels-last input (the ``NCW`` entry:
channels-first), PyTorch the same data in its native ``NC(D)HW`` layout,
contiguous, converted once outside the timed function; its outputs and
gradients are converted back to be compared.

Method: the process is pinned to every core of the machine
(``os.sched_setaffinity``), PyTorch runs ``torch.set_num_threads(cores)``
and XLA uses all cores by default. Each JAX function is compiled first
(``jax.jit(fn).lower(*args).compile()``); its compile time is reported apart,
for ours (``--impl``, default ``"auto"``) and for conv1djax's plain
``lax.conv_general_dilated`` path (``impl="reference"``), as is the peak
memory of the compiled program from ``memory_analysis()`` (arguments +
outputs + temporaries - aliased). PyTorch runs eagerly. After two warm-up
calls each, the peers are timed in blocks that alternate: each round runs
ours ``B`` times, sleeps 50 ms, runs torch ``B`` times, sleeps 50 ms (which
goes first alternates from round to round), each call timed with
``time.perf_counter()`` around ``jax.block_until_ready`` (PyTorch is
synchronous). ``B`` is what makes a block last about 0.25 s, 3 to ``--block``
calls. Every entry's passes and both train steps are compiled and checked
first; then the rounds run across all of them, one round of each in turn
(``spread``), so that each one's rounds spread over the whole run: this
shared machine's load comes in bursts of seconds that slow a round 1.5x-3x,
and a burst then reaches one round of a few entries rather than every round
of one. The ratio is the median over rounds of (median torch time / median
ours time in that round): above 1x, conv1djax is faster. GFLOP/s count a
forward's useful multiply-adds (2 FLOPs each), next to the rate of
``jnp.dot`` of two float32 2048 x 2048 matrices timed the same way at the
start and at the end of the run.

Writes ``torch.md``, ``torch.json`` (everything, per-round samples included)
and the charts ``torch_1d.png`` and ``torch_2d3d.png`` (drawn by
``charts.py``) to ``--out``. Runs without network. Reuses ``bench.py``'s
``Case``, ``STEPS``, ``make_data``, ``compile_jax``, the PyTorch padding
helpers and the machine description.

Run:  python benchmarks/torch_bench.py [--quick] [--rounds N] [--block B]
          [--only NAME ...] [--no-train] [--impl IMPL] [--out DIR]
"""

from __future__ import annotations

import os

# Pin to every core before the runtimes start their thread pools: both see
# the same cores (2 on the machine the docs' numbers come from).
os.sched_setaffinity(0, range(os.cpu_count() or 1))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (sets KERAS_BACKEND=jax before anything imports keras)
import charts  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
from bench import STEPS, Case, compile_jax, make_data  # noqa: E402

import conv1djax as cj  # noqa: E402

CORES = len(os.sched_getaffinity(0))
torch.set_num_threads(CORES)

TOLERANCE = 1e-4  # max_rel_diff above which the frameworks are said to disagree
GRAD_TOLERANCE = 1e-3  # the same for a whole model's gradients (global_rel_diff)
PAUSE_S = 0.05  # sleep after each block
BLOCK_S = 0.25  # what a block should last
GEMM_N = 2048

# The timed passes of every suite entry: JSON key -> label in the tables.
PASSES = {"fwd": "fwd", "fwdbwd": "fwd+bwd MSE", "fwdbwd_tanh": "fwd+bwd tanh"}

SUITE = (
    Case("1-D dense", cj.Conv1D(64, 3, padding="same"), (16, 1024, 64)),
    Case(
        "1-D dense NCW",
        cj.Conv1D(64, 3, padding="same", data_format="channels_first"),
        (16, 64, 1024),
    ),
    Case("1-D depthwise", cj.Conv1D(64, 9, padding="same", groups=64), (16, 1024, 64)),
    Case("1-D grouped", cj.Conv1D(64, 3, padding="same", groups=8), (16, 1024, 64)),
    Case(
        "1-D transposed",
        cj.Conv1DTranspose(64, 4, strides=2, padding="same"),
        (16, 512, 64),
    ),
    Case("2-D dense small", cj.Conv2D(64, 3, padding="same"), (8, 32, 32, 64)),
    Case("2-D dense ResNet stage", cj.Conv2D(64, 3, padding="same"), (32, 56, 56, 64)),
    Case("2-D 1x1", cj.Conv2D(64, 1), (8, 56, 56, 256)),
    Case("2-D stem", cj.Conv2D(64, 7, strides=2, padding="same"), (8, 224, 224, 3)),
    Case("2-D depthwise", cj.DepthwiseConv2D(3, padding="same"), (8, 56, 56, 64)),
    Case("2-D grouped", cj.Conv2D(64, 3, padding="same", groups=4), (8, 32, 32, 64)),
    Case(
        "2-D transposed",
        cj.Conv2DTranspose(32, 4, strides=2, padding="same"),
        (8, 32, 32, 32),
    ),
    Case("2-D separable", cj.SeparableConv2D(64, 3, padding="same"), (8, 56, 56, 64)),
    Case("3-D dense", cj.Conv3D(32, 3, padding="same"), (2, 32, 32, 32, 32)),
)


# ---- layouts and comparison ------------------------------------------------------


def to_torch(a: Any, channels_first: bool = False) -> torch.Tensor:
    """A conv1djax-layout array (``(N, *spatial, C)``, or already channels
    first) as a contiguous channels-first tensor."""
    a = np.asarray(a)
    if not channels_first:
        a = a.transpose(bench._to_channels_first(a.ndim - 2))
    return torch.from_numpy(np.ascontiguousarray(a))


def from_torch(t: torch.Tensor, channels_first: bool = False) -> np.ndarray:
    """A channels-first tensor back in conv1djax's layout."""
    a = t.detach().numpy()
    if not channels_first:
        a = a.transpose(bench._to_channels_last(a.ndim - 2))
    return a


def max_rel_diff(ours: Any, theirs: Any) -> float:
    """The largest ``max|theirs - ours| / max|ours|`` over the leaves of two
    pytrees of the same structure."""
    diffs = jax.tree.map(
        lambda a, b: float(
            np.abs(np.asarray(b) - np.asarray(a)).max()
            / max(np.abs(np.asarray(a)).max(), 1e-30)
        ),
        ours,
        theirs,
    )
    return max(jax.tree.leaves(diffs))


def global_rel_diff(ours: Any, theirs: Any) -> float:
    """``max|theirs - ours|`` over all the leaves of two pytrees, over the
    largest ``|ours|`` of all: for a whole model's gradients, whose early
    layers' small gradients are float32 sums of many terms of both signs
    (HiFi-GAN's first layers: about 1e-3 relative from the float64 gradient
    in either framework, per tensor)."""
    pairs = zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True)
    pairs = [(np.asarray(a), np.asarray(b)) for a, b in pairs]
    scale = max(np.abs(a).max() for a, _ in pairs)
    return float(max(np.abs(b - a).max() for a, b in pairs) / scale)


def _check(what: str, diff: float, tolerance: float = TOLERANCE) -> None:
    flag = "  WARNING: the frameworks disagree" if diff > tolerance else ""
    print(f"  check {what:34s} max_rel_diff {diff:.1e}{flag}", flush=True)


# ---- one conv1djax layer as PyTorch modules --------------------------------------


class TorchConv(torch.nn.Module):
    """A conv1djax layer spec (a ``Case``: the spec and its input shape,
    no activation) as PyTorch convolutions on channels-first input, loaded
    with ``params`` (conv1djax's params, Keras's kernel layout).

    Forward layers run one ``Conv{rank}d`` per ``bench.STEPS`` step (an
    ``F.pad`` first where the padding is asymmetric), the bias on the last;
    transposed ones one ``ConvTranspose{rank}d`` with
    ``bench._torch_transpose_padding``. The same as ``bench._torch``'s modules,
    without its layout permutes, and with the gradients readable in
    conv1djax's layout (``keras_grads``).
    """

    def __init__(self, case: Case, params: Mapping[str, Any]) -> None:
        super().__init__()
        spec, rank = case.layer, case.rank
        # Keras (*k, C / g, F) -> (F, C / g, *k); transposed (*k, F / g, C)
        # -> (C, F / g, *k): the same permutation, and its inverse.
        self._to_torch = (rank + 1, rank, *range(rank))
        self._from_torch = (*range(2, rank + 2), 1, 0)
        self._keras_shapes = {n: np.shape(p) for n, p in params.items()}
        self._pads: list[list[int] | None] = []
        self._param_names: list[str] = []
        kernels, convs = [], []
        if case.transposed:
            kwargs = bench._torch_transpose_padding(case)
            if kwargs is None:
                raise ValueError(f"{case.name}: PyTorch cannot pad it as Keras")
            convs.append(
                getattr(torch.nn, f"ConvTranspose{rank}d")(
                    case.channels,
                    spec.filters,
                    spec.kernel_size,
                    stride=spec.strides,
                    dilation=spec.dilation_rate,
                    groups=spec.groups,
                    bias=spec.use_bias,
                    **kwargs,
                )
            )
            kernels.append(np.asarray(params["kernel"]))
            self._pads.append(None)
            self._param_names.append("kernel")
        else:
            channels, steps = case.channels, STEPS[case.family](case)
            for i, step in enumerate(steps):
                kernel = np.asarray(step.kernel(params))
                kwargs, pre_pad = bench._torch_padding(step.padding)
                convs.append(
                    getattr(torch.nn, f"Conv{rank}d")(
                        channels,
                        kernel.shape[-1],
                        kernel.shape[:-2],
                        stride=step.strides,
                        dilation=step.dilation,
                        groups=step.groups,
                        bias=spec.use_bias and i == len(steps) - 1,
                        **kwargs,
                    )
                )
                kernels.append(kernel)
                self._pads.append(pre_pad)
                self._param_names.append(step.param)
                channels = kernel.shape[-1]
        self.convs = torch.nn.ModuleList(convs)
        with torch.no_grad():
            for conv, kernel in zip(self.convs, kernels, strict=True):
                w = np.ascontiguousarray(kernel.transpose(self._to_torch))
                conv.weight.copy_(torch.from_numpy(w))
            if spec.use_bias:
                bias = np.asarray(params["bias"])
                self.convs[-1].bias.copy_(torch.from_numpy(bias.copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for pre_pad, conv in zip(self._pads, self.convs, strict=True):
            if pre_pad is not None:
                x = torch.nn.functional.pad(x, pre_pad)
            x = conv(x)
        return x

    def keras_grads(self) -> dict[str, np.ndarray]:
        """The params' gradients after a backward, in conv1djax's layout."""
        grads = {}
        for name, conv in zip(self._param_names, self.convs, strict=True):
            g = conv.weight.grad.numpy().transpose(self._from_torch)
            grads[name] = g.reshape(self._keras_shapes[name])  # depthwise: (*k, C, m)
        if self.convs[-1].bias is not None:
            grads["bias"] = self.convs[-1].bias.grad.numpy()
        return grads


# ---- timing --------------------------------------------------------------------


def _block_size(runs: Mapping[str, Callable[[], Any]], most: int) -> int:
    """Calls per block: what makes the slowest peer's block last about
    ``BLOCK_S`` (from one more warm call), 3 to ``most`` (``most`` if below
    3)."""
    slowest = 0.0
    for run in runs.values():
        start = time.perf_counter()
        run()
        slowest = max(slowest, time.perf_counter() - start)
    if most < 3:
        return most
    return max(3, min(most, round(BLOCK_S / max(slowest, 1e-6))))


class Alternating:
    """Peers timed in blocks that alternate, one round at a time: a round
    runs each peer ``B`` times with a ``PAUSE_S`` sleep after each block,
    the first peer rotating from round to round.

    ``B`` is fixed when prepared (two warm-up calls each, then
    ``_block_size``); :meth:`result` summarises the rounds run so far."""

    def __init__(self, runs: Mapping[str, Callable[[], Any]], most: int) -> None:
        for run in runs.values():
            for _ in range(2):
                run()
        self.runs = dict(runs)
        self.block = _block_size(runs, most)
        self.samples: dict[str, list[list[float]]] = {n: [] for n in runs}

    def round(self) -> None:
        names = list(self.runs)
        turn = len(self.samples[names[0]]) % len(names)
        for name in names[turn:] + names[:turn]:
            calls = []
            for _ in range(self.block):
                start = time.perf_counter()
                self.runs[name]()
                calls.append((time.perf_counter() - start) * 1e3)
            self.samples[name].append(calls)
            time.sleep(PAUSE_S)

    def result(self) -> dict:
        """``{"ms": median ms per call, "ratio": the median over rounds of
        each peer's median over ours's median in that round (with an "ours"
        peer), "block": B, "samples": every call's ms, by round}``."""
        samples = self.samples
        result: dict[str, Any] = {
            "ms": {n: statistics.median(sum(v, [])) for n, v in samples.items()},
            "block": self.block,
            "samples": samples,
        }
        if "ours" in samples:
            ours = [statistics.median(calls) for calls in samples["ours"]]
            result["ratio"] = {
                n: statistics.median(
                    statistics.median(calls) / o
                    for calls, o in zip(v, ours, strict=True)
                )
                for n, v in samples.items()
                if n != "ours"
            }
        return result


def alternating(runs: Mapping[str, Callable[[], Any]], rounds: int, most: int) -> dict:
    """``rounds`` rounds of :class:`Alternating` in a row; its result."""
    timer = Alternating(runs, most)
    for _ in range(rounds):
        timer.round()
    return timer.result()


def spread(timers: Sequence[Alternating], rounds: int) -> None:
    """``rounds`` rounds of every timer, a round of each in turn (the first
    rotating), so that each one's rounds spread over the whole run: this
    machine's load comes in bursts of seconds that slow some rounds 1.5x-3x,
    and a burst then reaches one round of a few timers, not all the rounds
    of one."""
    for r in range(rounds):
        turn = r % max(len(timers), 1)
        for timer in [*timers[turn:], *timers[:turn]]:
            timer.round()


def bench_gemm(rounds: int, most: int, n: int = GEMM_N) -> dict:
    """The GFLOP/s of ``jnp.dot`` of two float32 ``n x n`` matrices, timed
    as the peers are."""
    a = jnp.asarray(bench._normal(50, (n, n)))
    b = jnp.asarray(bench._normal(51, (n, n)))
    run, _, _ = compile_jax(jnp.dot, (a, b))
    timing = alternating({"jnp.dot": run}, rounds, most)
    ms = timing["ms"]["jnp.dot"]
    print(f"  jnp.dot {n}x{n}: {ms:.2f} ms, {2 * n**3 / ms / 1e6:.1f} GFLOP/s")
    return {"n": n, "ms": ms, "gflops": 2 * n**3 / ms / 1e6, "samples": timing}


# ---- the suite -----------------------------------------------------------------


def _torch_passes(case: Case, data: dict) -> tuple[TorchConv, dict, torch.Tensor]:
    """``(module, {pass: fn}, input tensor)``: the PyTorch twins of
    ``bench._jax_passes`` on channels-first input."""
    module = TorchConv(case, data["params"])
    x = to_torch(data["x"], case.channels_first).requires_grad_(True)
    target = to_torch(data["t"], case.channels_first)

    def fwd() -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    def backward(loss: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
        def run() -> torch.Tensor:
            module.zero_grad(set_to_none=True)
            x.grad = None
            value = loss(module(x))
            value.backward()
            return value

        return run

    passes = {
        "fwd": fwd,
        "fwdbwd": backward(lambda y: torch.mean((y - target) ** 2)),
        "fwdbwd_tanh": backward(lambda y: torch.mean(torch.tanh(y))),
    }
    return module, passes, x


def _compare(
    case: Case, mode: str, ours: Any, theirs: Any, module: TorchConv, x: torch.Tensor
) -> float:
    """max_rel_diff of torch's result of a pass (just run) with ours's."""
    if mode == "fwd":
        return max_rel_diff(ours, from_torch(theirs, case.channels_first))
    grads = (module.keras_grads(), from_torch(x.grad, case.channels_first))
    if mode == "fwdbwd":  # ours: (loss, (param grads, input grad))
        return max_rel_diff(ours, (theirs.detach().numpy(), grads))
    return max_rel_diff(ours, grads)


def prepare_case(
    case: Case, most: int, impl: str, passes: Sequence[str] = tuple(PASSES)
) -> tuple[dict, dict[str, Alternating]]:
    """Compiles and checks a suite entry's ``passes`` (of :data:`PASSES`):
    ``(result so far, {pass: its timer})``."""
    data = make_data(case)
    ours = bench._ours(case, data, impl)
    plain = bench._ours(case, data, "reference")
    module, theirs, x = _torch_passes(case, data)
    result: dict[str, Any] = {"case": case.describe(), "flops": case.flops()}
    timers = {}
    for mode in passes:
        label = PASSES[mode]
        run, compile_s, peak = compile_jax(*ours[mode])
        _, ref_compile_s, ref_peak = compile_jax(*plain[mode])
        diff = _compare(case, mode, run(), theirs[mode](), module, x)
        _check(f"{case.name} {label}", diff)
        timers[mode] = Alternating({"ours": run, "torch": theirs[mode]}, most)
        result[mode] = {
            "max_rel_diff": diff,
            "compile_s": {"ours": compile_s, "reference": ref_compile_s},
            "peak_bytes": {"ours": peak, "reference": ref_peak},
        }
    return result, timers


def finish_case(result: dict, timers: dict[str, Alternating]) -> dict:
    for mode, timer in timers.items():
        label = PASSES[mode]
        timing = timer.result()
        result[mode].update(timing)
        ms, compile_s = timing["ms"], result[mode]["compile_s"]
        print(
            f"  {result['case']['name']:24s} {label:13s} ours {ms['ours']:9.2f} ms  "
            f"torch {ms['torch']:9.2f} ms  {timing['ratio']['torch']:5.2f}x  "
            f"(B={timing['block']}; compile {compile_s['ours']:.2f} s, reference "
            f"{compile_s['reference']:.2f} s)",
            flush=True,
        )
    return result


# ---- two whole models ------------------------------------------------------------


class JaxOps:
    """The model functions' operations on conv1djax's channels-last arrays."""

    def __init__(self, layers: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        self.layers, self.params = layers, params

    def conv(self, name: str, x: jax.Array) -> jax.Array:
        return self.layers[name].apply(self.params[name], x)

    relu = staticmethod(jax.nn.relu)
    tanh = staticmethod(jnp.tanh)

    @staticmethod
    def leaky_relu(x: jax.Array) -> jax.Array:
        return jax.nn.leaky_relu(x, 0.1)

    @staticmethod
    def global_mean(x: jax.Array) -> jax.Array:
        return x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=True)

    @staticmethod
    def flatten(x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0], -1)


class ShapeOps(JaxOps):
    """``JaxOps`` that records each convolution's ``Case`` (its input
    shape) on a first, shape-only run (``jax.eval_shape``)."""

    def __init__(self, layers: Mapping[str, Any]) -> None:
        super().__init__(layers, {})
        self.cases: dict[str, Case] = {}

    def conv(self, name: str, x: jax.Array) -> jax.Array:
        layer = self.layers[name]
        self.cases[name] = Case(name, layer, tuple(x.shape))
        shapes = layer.param_shapes(x.shape)
        return layer.apply({n: jnp.zeros(s) for n, s in shapes.items()}, x)


class TorchOps:
    """The same operations on PyTorch's channels-first tensors."""

    def __init__(self, modules: torch.nn.ModuleDict) -> None:
        self.modules = modules

    def conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.modules[name](x)

    relu = staticmethod(torch.relu)
    tanh = staticmethod(torch.tanh)

    @staticmethod
    def leaky_relu(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.leaky_relu(x, 0.1)

    @staticmethod
    def global_mean(x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)

    @staticmethod
    def flatten(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


RESNET_CHANNELS = (64, 128, 256, 512)


def resnet_layers() -> dict[str, Any]:
    layers: dict[str, Any] = {"stem": cj.Conv2D(64, 7, strides=2, padding="same")}
    for s, filters in enumerate(RESNET_CHANNELS):
        for b in range(2):
            stride = 2 if s > 0 and b == 0 else 1
            layers[f"s{s}b{b}_conv1"] = cj.Conv2D(
                filters, 3, strides=stride, padding="same"
            )
            layers[f"s{s}b{b}_conv2"] = cj.Conv2D(filters, 3, padding="same")
            if stride > 1:
                layers[f"s{s}b{b}_proj"] = cj.Conv2D(filters, 1, strides=stride)
    layers["head"] = cj.Conv2D(10, 1)
    return layers


def resnet(ops: Any, x: Any) -> Any:
    """A ResNet-18-like CNN without normalization: stem, four stages of two
    basic blocks (the first of stages 2-4 strided, with a 1x1 projection on
    its skip), global average pooling, a 1x1 head to 10 outputs."""
    x = ops.relu(ops.conv("stem", x))
    for s in range(len(RESNET_CHANNELS)):
        for b in range(2):
            y = ops.relu(ops.conv(f"s{s}b{b}_conv1", x))
            y = ops.conv(f"s{s}b{b}_conv2", y)
            if s > 0 and b == 0:
                x = ops.conv(f"s{s}b{b}_proj", x)
            x = ops.relu(y + x)
    return ops.flatten(ops.conv("head", ops.global_mean(x)))


HIFIGAN_UPSAMPLES = ((8, 16, 128), (8, 16, 64), (2, 4, 32), (2, 4, 16))  # s, k, c
HIFIGAN_DILATIONS = (1, 3, 5)


def hifigan_layers() -> dict[str, Any]:
    layers: dict[str, Any] = {"pre": cj.Conv1D(256, 7, padding="same")}
    for i, (stride, k, channels) in enumerate(HIFIGAN_UPSAMPLES):
        layers[f"up{i}"] = cj.Conv1DTranspose(
            channels, k, strides=stride, padding="same"
        )
        for d in HIFIGAN_DILATIONS:
            layers[f"up{i}_res_d{d}"] = cj.Conv1D(
                channels, 3, padding="same", dilation_rate=d
            )
    layers["post"] = cj.Conv1D(1, 7, padding="same")
    return layers


def hifigan(ops: Any, x: Any) -> Any:
    """A HiFi-GAN-like generator: a Conv1D, four leaky-ReLU + transposed
    upsamplings, each followed by one residual block of three dilated
    convolutions (``x + conv(leaky_relu(x))``), a leaky ReLU, a Conv1D to one
    channel and a tanh."""
    x = ops.conv("pre", x)
    for i in range(len(HIFIGAN_UPSAMPLES)):
        x = ops.conv(f"up{i}", ops.leaky_relu(x))
        for d in HIFIGAN_DILATIONS:
            x = x + ops.conv(f"up{i}_res_d{d}", ops.leaky_relu(x))
    return ops.tanh(ops.conv("post", ops.leaky_relu(x)))


@dataclasses.dataclass(frozen=True)
class Model:
    """A whole model: conv1djax layer specs by name, and a function of an
    ops object (``JaxOps`` or ``TorchOps``) and the input running them."""

    name: str
    layers: Callable[[], dict[str, Any]]
    forward: Callable[[Any, Any], Any]
    input_shape: tuple[int, ...]  # channels-last

    def batch(self, n: int) -> Model:
        return dataclasses.replace(self, input_shape=(n, *self.input_shape[1:]))


MODELS = (
    Model("ResNet-style 2-D CNN", resnet_layers, resnet, (16, 64, 64, 3)),
    Model("HiFi-GAN-style 1-D generator", hifigan_layers, hifigan, (4, 32, 80)),
)


def _model_weights(cases: Mapping[str, Case]) -> dict[str, dict[str, np.ndarray]]:
    """LeCun-normal kernels, of standard deviation ``1 / sqrt(fan-in)`` (the
    products summed into one output: ``taps * C / groups``, over the strides
    for a transposed layer; the activations of both models then stay near 1
    without normalization), and biases of 0.1, with numpy."""
    params: dict[str, dict[str, np.ndarray]] = {}
    seed = 100
    for name, case in cases.items():
        layer = case.layer
        fan_in = math.prod(layer.kernel_size) * case.channels / layer.groups
        if layer.transposed:
            fan_in /= math.prod(layer.strides)
        params[name] = {}
        for p, shape in layer.param_shapes(case.input_shape).items():
            scale = 0.1 if p == "bias" else 1 / math.sqrt(fan_in)
            params[name][p] = bench._normal(seed, shape) * np.float32(scale)
            seed += 1
    return params


@dataclasses.dataclass(frozen=True)
class TrainData:
    """A model's layers, their ``Case`` (input shape) by name, the initial
    weights, the input and the MSE target (numpy, channels-last)."""

    model: Model
    layers: dict[str, Any]
    cases: dict[str, Case]
    weights: dict[str, dict[str, np.ndarray]]
    x: np.ndarray
    target: np.ndarray


def train_data(model: Model) -> TrainData:
    layers = model.layers()
    shapes = ShapeOps(layers)
    x_spec = jax.ShapeDtypeStruct(model.input_shape, jnp.float32)
    out_shape = jax.eval_shape(lambda x: model.forward(shapes, x), x_spec).shape
    cases = shapes.cases
    return TrainData(
        model,
        layers,
        cases,
        _model_weights(cases),
        bench._normal(110, model.input_shape),
        bench._normal(111, out_shape),
    )


OPTIMIZER = optax.adam(1e-3)


def jax_train_step(
    data: TrainData, impl: str
) -> tuple[Callable, tuple, Callable, Callable]:
    """conv1djax: ``(step, args, forward, loss_fn)``, one step a
    ``value_and_grad`` of the MSE and optax's Adam, to be jitted."""
    model = data.model
    specs = {
        n: dataclasses.replace(layer, impl=impl) for n, layer in data.layers.items()
    }

    def forward(params: Any, x: jax.Array) -> jax.Array:
        return model.forward(JaxOps(specs, params), x)

    def loss_fn(params: Any, x: jax.Array, t: jax.Array) -> jax.Array:
        return bench._mse(forward(params, x), t)

    def step(params: Any, opt_state: Any, x: jax.Array, t: jax.Array) -> tuple:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, t)
        updates, opt_state = OPTIMIZER.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params = jax.tree.map(jnp.asarray, data.weights)
    args = (
        params,
        OPTIMIZER.init(params),
        jnp.asarray(data.x),
        jnp.asarray(data.target),
    )
    return step, args, forward, loss_fn


@dataclasses.dataclass(frozen=True)
class TorchTrain:
    """PyTorch's twin: the modules, the optimizer, the channels-first input
    and target, and ``step()``: eager, ``loss.backward()`` + Adam."""

    modules: torch.nn.ModuleDict
    optimizer: torch.optim.Optimizer
    ops: TorchOps
    x: torch.Tensor
    target: torch.Tensor
    model: Model

    def loss(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((self.model.forward(self.ops, self.x) - self.target) ** 2)
        loss.backward()
        return loss

    def step(self) -> torch.Tensor:
        loss = self.loss()
        self.optimizer.step()
        return loss


def torch_train(data: TrainData) -> TorchTrain:
    modules = torch.nn.ModuleDict(
        {n: TorchConv(case, data.weights[n]) for n, case in data.cases.items()}
    )
    return TorchTrain(
        modules,
        torch.optim.Adam(modules.parameters(), lr=1e-3),
        TorchOps(modules),
        to_torch(data.x),
        to_torch(data.target),
        data.model,
    )


def prepare_model(model: Model, most: int, impl: str) -> tuple[dict, Alternating]:
    """Compiles and checks a train step: ``(result so far, its timer)``."""
    data = train_data(model)
    cases = data.cases
    step, args, forward, loss_fn = jax_train_step(data, impl)
    run, compile_s, peak = compile_jax(step, args)
    ref_step, ref_args, _, _ = jax_train_step(data, "reference")
    _, ref_compile_s, ref_peak = compile_jax(ref_step, ref_args)

    # PyTorch: eager, loss.backward() + torch.optim.Adam
    theirs = torch_train(data)
    modules, ops, torch_x = theirs.modules, theirs.ops, theirs.x
    torch_step = theirs.step

    # checks, on the initial weights: outputs, gradients, one step's loss
    with torch.no_grad():
        torch_y = from_torch(model.forward(ops, torch_x))
    params, _, jax_x, jax_t = args
    y = jax.jit(forward)(params, jax_x)
    grads = jax.jit(jax.grad(loss_fn))(params, jax_x, jax_t)
    _, _, loss = run()
    torch_loss = torch_step()  # the first step: gradients at the initial weights
    torch_grads = {n: modules[n].keras_grads() for n in cases}
    check = {
        "output": max_rel_diff(y, torch_y),
        "loss": max_rel_diff(loss, torch_loss.detach().numpy()),
        "grads": global_rel_diff(grads, torch_grads),
    }
    for what, diff in check.items():
        _check(
            f"{model.name} {what}",
            diff,
            GRAD_TOLERANCE if what == "grads" else TOLERANCE,
        )

    result = {
        "name": model.name,
        "input_shape": list(model.input_shape),
        "output_shape": list(data.target.shape),
        "convolutions": {n: c.describe() for n, c in cases.items()},
        "params": sum(w.size for p in data.weights.values() for w in p.values()),
        "flops": sum(c.flops() for c in cases.values()),
        "max_rel_diff": check,
        "compile_s": {"ours": compile_s, "reference": ref_compile_s},
        "peak_bytes": {"ours": peak, "reference": ref_peak},
    }
    return result, Alternating({"ours": run, "torch": torch_step}, most)


def finish_model(result: dict, timer: Alternating) -> dict:
    timing = timer.result()
    result.update(timing)
    ms, compile_s = timing["ms"], result["compile_s"]
    print(
        f"  {result['name']:30s} train step  ours {ms['ours']:9.2f} ms  torch "
        f"{ms['torch']:9.2f} ms  {timing['ratio']['torch']:5.2f}x  "
        f"(B={timing['block']}; compile {compile_s['ours']:.2f} s, reference "
        f"{compile_s['reference']:.2f} s)",
        flush=True,
    )
    return result


# ---- report --------------------------------------------------------------------


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def markdown(results: dict) -> str:
    m, gemm = results["machine"], results["gemm"]
    mib = 2.0**20
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores (torch {results['torch_threads']} "
        f"threads), backend {m['backend']}; {m['date']}; jax "
        f"{m['versions']['jax']}, torch {m['versions']['torch']}; "
        f"conv1djax impl={results['impl']!r}; {results['rounds']} rounds of "
        f"alternating blocks, "
        f"{'spread over the run' if results.get('spread') else 'each entry in a row'}"
        f"{' (--quick: batch scaled down)' if results['quick'] else ''}.",
        "",
        f"GEMM: `jnp.dot` of two float32 {gemm[0]['n']}x{gemm[0]['n']} matrices, "
        + ", ".join(f"{g['gflops']:.1f}" for g in gemm)
        + " GFLOP/s (start, end of the run).",
        "",
        "Cells: torch time / conv1djax time, the median over rounds of the "
        "per-round ratio of medians (above 1x: conv1djax is faster), and the "
        "median ms of conv1djax / torch. GFLOP/s: the forward's useful FLOPs. "
        "Compile seconds and peak memory (MiB, XLA's `memory_analysis()`) are "
        'of the fwd+bwd MSE program, conv1djax\'s impl vs `impl="reference"`.',
        "",
        "| entry | fwd | fwd+bwd MSE | fwd+bwd tanh | GFLOP/s ours | GFLOP/s "
        "torch | compile s ours / ref | peak MiB ours / ref |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["cases"]:
        cells = [
            f"{r[mode]['ratio']['torch']:.2f}x ({r[mode]['ms']['ours']:.2f} / "
            f"{r[mode]['ms']['torch']:.2f})"
            for mode in PASSES
        ]
        gf = {p: r["flops"] / (t * 1e6) for p, t in r["fwd"]["ms"].items()}
        c, p = r["fwdbwd"]["compile_s"], r["fwdbwd"]["peak_bytes"]
        lines.append(
            f"| {r['case']['name']} | "
            + " | ".join(cells)
            + f" | {gf['ours']:.1f} | {gf['torch']:.1f} | {c['ours']:.2f} / "
            f"{c['reference']:.2f} | {p['ours'] / mib:.1f} / "
            f"{p['reference'] / mib:.1f} |"
        )
    if results["cases"]:
        means = [
            _geomean([r[mode]["ratio"]["torch"] for r in results["cases"]])
            for mode in PASSES
        ]
        lines.append(
            "| **geometric mean** | "
            + " | ".join(f"**{v:.2f}x**" for v in means)
            + " | | | | |"
        )
    if results["models"]:
        lines += [
            "",
            "Whole train steps (MSE + Adam, lr 1e-3; conv1djax one jitted step, "
            "PyTorch eager), same initial weights: max_rel_diff of the forward "
            "output and the loss, and of the gradients over the model's "
            "largest gradient, before timing.",
            "",
            "| model | input | ratio (torch / ours) | ours ms | torch ms | "
            "fwd GFLOP | compile s ours / ref | peak MiB ours / ref | "
            "max_rel_diff out / loss / grads |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in results["models"]:
            c, p, d = r["compile_s"], r["peak_bytes"], r["max_rel_diff"]
            lines.append(
                f"| {r['name']} | {tuple(r['input_shape'])} | "
                f"{r['ratio']['torch']:.2f}x | {r['ms']['ours']:.1f} | "
                f"{r['ms']['torch']:.1f} | {r['flops'] / 1e9:.2f} | "
                f"{c['ours']:.2f} / {c['reference']:.2f} | "
                f"{p['ours'] / mib:.1f} / {p['reference'] / mib:.1f} | "
                f"{d['output']:.1e} / {d['loss']:.1e} / {d['grads']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def timing_parser(
    doc: str, quick: str, rounds: int, only: str
) -> argparse.ArgumentParser:
    """The options the timing scripts share: ``--quick`` (what it does:
    ``quick``), ``--rounds`` (default ``rounds``), ``--block``, ``--out``,
    ``--only`` (of ``only``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {quick}")
    parser.add_argument("--rounds", type=int, default=None, help=f"default {rounds}")
    parser.add_argument(
        "--block", type=int, default=None, help="most calls per block (default 10)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results"
    )
    parser.add_argument("--only", nargs="*", help=f"{only} to run")
    return parser


def parse_timing_args(
    parser: argparse.ArgumentParser, known: list[str], rounds: int
) -> tuple[argparse.Namespace, int, int]:
    """``(args, rounds, most calls per block)``; ``--only`` checked against
    ``known``; ``--quick``: 2 rounds of 2 calls."""
    args = parser.parse_args()
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        parser.error(f"unknown --only names {unknown}; known: {known}")
    quick_or = 2 if args.quick else None
    return args, args.rounds or quick_or or rounds, args.block or quick_or or 10


def write_results(out: Path, stem: str, results: dict, text: str) -> None:
    """``<stem>.json`` (``results``) and ``<stem>.md`` (``text``) in ``out``;
    the text and the run's ``seconds`` printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    (out / f"{stem}.md").write_text(text)
    print(text)
    print(f"{results['seconds']:.0f} s; wrote {out}/{stem}.*")


def main() -> None:
    parser = timing_parser(
        __doc__,
        "batch 1 (models 2), a 512 GEMM, 2 rounds of 2 calls",
        9,
        "suite entries or models",
    )
    parser.add_argument("--no-train", action="store_true", help="skip the models")
    parser.add_argument(
        "--no-spread",
        action="store_true",
        help="time each entry's rounds in a row (the method before spread)",
    )
    parser.add_argument(
        "--impl", default="auto", help="conv1djax's impl for ours (default auto)"
    )
    known = [case.name for case in SUITE] + [model.name for model in MODELS]
    args, rounds, most = parse_timing_args(parser, known, 9)

    def wanted(name: str) -> bool:
        return not args.only or name in args.only

    results: dict[str, Any] = {
        "machine": bench.machine(),
        "torch_threads": torch.get_num_threads(),
        "impl": args.impl,
        "quick": args.quick,
        "rounds": rounds,
        "spread": not args.no_spread,
        "block_max": most,
        "gemm": [bench_gemm(rounds, most, 512 if args.quick else GEMM_N)],
        "cases": [],
        "models": [],
    }
    start = time.perf_counter()
    cases, models = [], []
    for case in SUITE:
        if wanted(case.name):
            if args.quick:
                case = dataclasses.replace(case, input_shape=(1, *case.input_shape[1:]))
            cases.append(prepare_case(case, most, args.impl))
    for model in MODELS:
        if wanted(model.name) and not args.no_train:
            if args.quick:
                model = model.batch(2)
            models.append(prepare_model(model, most, args.impl))
    timers = [t for _, ts in cases for t in ts.values()] + [t for _, t in models]
    if args.no_spread:  # the method before spread: each timer's rounds in a row
        for timer in timers:
            spread([timer], rounds)
    else:
        print(f"  timing: {rounds} rounds of {len(timers)} timers, spread", flush=True)
        spread(timers, rounds)
    results["cases"] = [finish_case(r, ts) for r, ts in cases]
    results["models"] = [finish_model(r, t) for r, t in models]
    results["gemm"].append(bench_gemm(rounds, most, results["gemm"][0]["n"]))
    results["seconds"] = time.perf_counter() - start
    write_results(args.out, "torch", results, markdown(results))
    charts.torch_charts(results, args.out)


if __name__ == "__main__":
    main()
