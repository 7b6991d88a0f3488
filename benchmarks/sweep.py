"""Is ``impl="auto"`` ever slower than the plain path? A random sweep.

Draws configurations from a seed: the convolution layers of every family
(``Conv*D``, ``Conv*DTranspose``, ``DepthwiseConv*D``, ``SeparableConv*D``)
in 1, 2 and 3 dimensions, channels 1-256, kernel sizes 1-63 plus a few long
ones, strides, dilation, groups (depthwise included), both layouts, batch
1-64, lengths 16-16384, float32 and bfloat16, each shrunk (batch first,
then the spatial sizes) until it costs at most :data:`MAX_MACS`
multiply-adds and :data:`MAX_ELEMENTS` elements, so that the sweep fits a
2-core machine.

After them come the fixed entries of ``bench.py``'s suite and
:data:`COMMON`, the dense stride-1 layers of everyday CNNs (3x3 kernels of
16-128 channels, unpadded or "same", a first layer of 3, 5x5 and 7x7 ones,
a 3x3x3 one). Each
configuration's layer is timed with ``impl="auto"`` against the same
layer with ``impl="reference"`` (one ``lax.conv_general_dilated``, Keras's
lowering) in four program contexts:

- ``fwd``: the layer's output;
- ``sumsq``: the gradient of ``sum(y ** 2)`` with respect to the params and
  the input;
- ``mse``: the value and gradient of the mean squared error against a
  target passed as an argument, with respect to the params and the input;
- ``model``: the layer, a gelu, and a 1 x 1 convolution (``impl=
  "reference"`` in both programs), under one ``cj.make_train_step`` with
  optax's Adam.

XLA fuses and schedules a convolution's derivatives with what surrounds
them, so a lowering is only kept where it wins in every context.

Where the two programs are the same (``impl="auto"`` chose the reference
path, or a core that lowers to the same HLO), the ratio is 1 by
construction and is not timed. Otherwise both are compiled (compile time
reported apart), warmed up, then timed in paired, interleaved rounds
(``block_until_ready`` on every call, the order alternating), and the
ratio is the median over rounds of reference time / auto time. A ratio
below :data:`TARGET` is measured again with twice the rounds, and the
second reading counts.

The second part is the memory floor: one elementwise pass over the
depthwise benchmark's (16, 1024, 64) float32 array against the depthwise
``k=3`` convolution's forward and forward + backward on it.

Writes ``sweep.md``, ``sweep.json`` and the chart ``sweep.png`` (drawn by
``charts.py``) to ``--out``.

Run:  python benchmarks/sweep.py [--count 80] [--seed 0] [--rounds 7]
      python benchmarks/sweep.py --only 3 17   # some configurations again
      python benchmarks/sweep.py --floor-only
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import statistics
import time
from pathlib import Path

import charts  # benchmarks/, the script's directory
import jax
import jax.numpy as jnp
import numpy as np
import optax
from bench import SUITE, Case, cpu_name  # benchmarks/, the script's directory

import conv1djax as cj
from conv1djax.lowering import choose

CONTEXTS = ("fwd", "sumsq", "mse", "model")
TARGET = 0.95
# The largest configuration: multiply-adds of the convolution, and elements
# of its largest activation.
MAX_MACS = 4e8
MAX_ELEMENTS = 2**22
# bfloat16 convolutions on CPU run far below float32 speed.
BF16_SHRINK = 4
# Seconds each timed sample lasts at least (calls are repeated to fill it).
SAMPLE_S = 0.02


@dataclasses.dataclass(frozen=True)
class Config:
    """One configuration: a layer spec, its input shape, a label."""

    index: int
    spec: object
    shape: tuple[int, ...]
    label: str
    family: str
    dense: bool

    @property
    def dtype(self):
        return jnp.dtype(self.spec.dtype or "float32")


def _log_uniform(rng, low, high) -> int:
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _kernel(rng, rank):
    if rank == 1:
        if rng.random() < 0.08:
            return int(rng.choice([127, 255, 511, 1023]))
        return _log_uniform(rng, 1, 63)
    if rank == 2:
        return tuple(int(rng.choice([1, 2, 3, 3, 3, 4, 5, 7])) for _ in range(2))
    return tuple(int(rng.choice([1, 2, 3, 3])) for _ in range(3))


def _draw_one(rng, index):
    """A random layer and input shape, or None where the draw is invalid."""
    rank = int(rng.choice([1, 2, 3], p=[0.55, 0.35, 0.10]))
    families = ["conv", "transpose", "depthwise", "separable"]
    probs = [0.5, 0.2, 0.15, 0.15] if rank < 3 else [0.7, 0.3, 0, 0]
    family = str(rng.choice(families, p=probs))
    channels = _log_uniform(rng, 1, 256)
    kernel = _kernel(rng, rank)
    taps = (kernel,) * rank if isinstance(kernel, int) else kernel
    stride = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
    dilation = 1
    if rng.random() < 0.3 and (stride == 1 or family in ("depthwise", "separable")):
        dilation = int(rng.choice([2, 3, 4, 8]))
    if max(taps) > 16:
        dilation = 1  # the long kernels are long already
    data_format = "channels_first" if rng.random() < 0.3 else "channels_last"
    dtype = "bfloat16" if rng.random() < 0.15 else "float32"
    padding = str(rng.choice(["valid", "same"]))
    if rank == 1 and family == "conv" and stride == 1 and rng.random() < 0.3:
        padding = "causal"
    common = dict(strides=stride, padding=padding, data_format=data_format,
                  dilation_rate=dilation, dtype=dtype)  # fmt: skip
    name = {"conv": "Conv", "transpose": "Conv", "depthwise": "DepthwiseConv",
            "separable": "SeparableConv"}[family] + f"{rank}D"  # fmt: skip
    if family == "transpose":
        name += "Transpose"
    groups = 1
    if family in ("conv", "transpose"):
        groups = int(rng.choice([1, 1, 2, 4, 8, 16, 0]))  # 0: depthwise
        groups = channels if groups == 0 else groups
        channels = max(channels // groups, 1) * groups
        filters = groups * max(_log_uniform(rng, 1, 256) // groups, 1)
        spec = getattr(cj, name)(filters, kernel, groups=groups, **common)
    elif family == "depthwise":
        multiplier = int(rng.choice([1, 1, 1, 2, 4]))
        spec = getattr(cj, name)(kernel, depth_multiplier=multiplier, **common)
        filters = channels * multiplier
    else:
        multiplier = int(rng.choice([1, 1, 2]))
        filters = _log_uniform(rng, 1, 256)
        spec = getattr(cj, name)(filters, kernel, depth_multiplier=multiplier,
                                 **common)  # fmt: skip
    batch = _log_uniform(rng, 1, 64)
    if rank == 1:
        spatial = [_log_uniform(rng, 16, 16384)]
    elif rank == 2:
        spatial = [_log_uniform(rng, 8, 128)] * 2
    else:
        spatial = [_log_uniform(rng, 4, 32)] * 3
    extent = [(k - 1) * dilation + 1 for k in taps]
    spatial = [max(n, e + stride) for n, e in zip(spatial, extent, strict=True)]
    per_group = channels // groups if family in ("conv", "transpose") else 1

    def cost(batch, spatial):
        out = math.prod(spatial) * (stride**rank if family == "transpose" else 1)
        out = out if family == "transpose" else out // stride**rank
        macs = batch * out * filters * math.prod(taps) * per_group
        if family == "separable":
            macs = batch * out * channels * (multiplier * math.prod(taps) + filters)
        biggest = max(channels * math.prod(spatial), filters * out)
        return macs, batch * biggest

    budget = 1 / BF16_SHRINK if dtype == "bfloat16" else 1
    while any(c > limit * budget for c, limit in
              zip(cost(batch, spatial), (MAX_MACS, MAX_ELEMENTS), strict=True)):  # fmt: skip
        if batch > 1:
            batch = max(batch // 2, 1)
        elif any(n > e + stride for n, e in zip(spatial, extent, strict=True)):
            spatial = [max(n // 2, e + stride) for n, e in zip(spatial, extent,
                                                                strict=True)]  # fmt: skip
        else:
            return None
    if data_format == "channels_first":
        shape = (batch, channels, *spatial)
    else:
        shape = (batch, *spatial, channels)
    try:
        spec.param_shapes(shape)
        out = spec.compute_output_shape(shape)
    except ValueError:
        return None
    if min(out) < 1:
        return None
    label = (
        f"{name}(C={channels}, F={filters}, k={kernel}, s={stride}, d={dilation}, "
        f"g={groups}, {padding}, {'NC..' if data_format == 'channels_first' else 'N..C'},"
        f" {dtype}) {shape}"
    )
    dense = family in ("conv",) and groups == 1 and max(taps) < choose.FFT_MIN_TAPS
    return Config(index, spec, shape, label, family, dense)


def draw(count: int, seed: int) -> list[Config]:
    """``count`` valid configurations from ``seed`` (invalid draws are
    redrawn)."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        config = _draw_one(rng, len(configs))
        if config is not None:
            configs.append(config)
    return configs


def _fixed(cases, start: int, source: str) -> list[Config]:
    """``bench.Case`` entries as configurations numbered from ``start``,
    labelled ``"<source>: <name>, <shape>"``."""
    configs = []
    for i, case in enumerate(cases):
        shape = tuple(case.input_shape)
        family = {"Conv": "conv", "ConvTranspose": "transpose",
                  "DepthwiseConv": "depthwise", "SeparableConv": "separable"}[case.family]  # fmt: skip
        dense = family == "conv" and case.layer.groups == 1 and max(
            case.layer.kernel_size) < choose.FFT_MIN_TAPS  # fmt: skip
        configs.append(Config(start + i, case.layer, shape,
                              f"{source}: {case.name}, {shape}", family, dense))  # fmt: skip
    return configs


def suite(start: int) -> list[Config]:
    """The fixed entries of ``bench.py``'s suite, numbered from ``start``:
    the shapes the benchmark table quotes, measured in every context too."""
    return _fixed(SUITE, start, "suite")


# Dense stride-1 layers as CNNs use them, each within MAX_MACS: the random
# draws rarely land on them, and the "im2col" core's folds and GEMMs decide
# by channel counts (lowering.im2col.FOLD_MIN_MACS, GEMM_MIN_CHANNELS); then
# 1-D layers of 24 to 33 taps, where the FFT's rules decide
# (lowering.choose.FFT_DENSE_MIN_TAPS, FFT_DERIVATIVES_MIN_TAPS).
COMMON = tuple(
    Case(
        f"{type(layer).__name__}({layer.filters}, "
        f"{'x'.join(map(str, layer.kernel_size))}, {layer.padding})",
        layer,
        shape,
    )
    for layer, shape in (
        (cj.Conv2D(32, 3), (8, 66, 66, 32)),  # Keras's default padding, "valid"
        (cj.Conv2D(64, 3), (8, 34, 34, 64)),
        (cj.Conv2D(16, 3, padding="same"), (8, 64, 64, 16)),
        (cj.Conv2D(32, 3, padding="same"), (8, 64, 64, 32)),
        (cj.Conv2D(64, 3, padding="same"), (8, 32, 32, 32)),
        (cj.Conv2D(32, 3, padding="same"), (16, 32, 32, 64)),
        (cj.Conv2D(64, 3, padding="same"), (8, 32, 32, 48)),
        (cj.Conv2D(128, 3, padding="same"), (8, 16, 16, 128)),
        (cj.Conv2D(64, 3, padding="same"), (8, 64, 64, 3)),
        (cj.Conv2D(32, 5, padding="same"), (8, 32, 32, 32)),
        (cj.Conv2D(32, 7, padding="same"), (8, 32, 32, 16)),
        (cj.Conv3D(32, 3, padding="same"), (1, 8, 32, 32, 32)),
        (cj.Conv1D(64, 24, padding="same"), (4, 1024, 64)),
        (
            cj.Conv1D(64, 32, padding="same", data_format="channels_first"),
            (4, 64, 512),
        ),  # fmt: skip
        (cj.Conv1D(32, 32, padding="same"), (8, 1024, 32)),
        (cj.Conv1D(64, 33, padding="same", groups=8), (8, 1024, 64)),
    )
)


def common(start: int) -> list[Config]:
    """:data:`COMMON`, numbered from ``start``."""
    return _fixed(COMMON, start, "common")


def _chosen(config) -> str:
    """The core ``impl="auto"`` picks for the configuration's convolution
    (the depthwise step's, for a separable layer), "+fft'" where it takes the
    "fft" core's derivatives, "+xla dx" where it takes XLA's input gradient
    (``choose.xla_input_grad``)."""
    spec, shape = config.spec, config.shape
    rank = len(shape) - 2
    first = spec.data_format == "channels_first"
    channels = shape[1] if first else shape[-1]
    taps = spec.kernel_size
    groups = getattr(spec, "groups", 1)
    filters = getattr(spec, "filters", None)
    if config.family in ("depthwise", "separable"):
        groups = channels
        filters = channels * spec.depth_multiplier
    kernel_size = taps if len(taps) == rank else taps * rank
    core = choose.choose_impl(
        transposed=config.family == "transpose",
        kernel_size=kernel_size,
        strides=spec.strides,
        groups=groups,
        channels=channels,
        dtype=config.dtype,
        backend=jax.default_backend(),
        channels_first=first,
        filters=filters,
        positions=math.prod(shape) // channels,
    )
    derivatives = choose.fft_derivatives(
        core, kernel_size=kernel_size, strides=spec.strides, groups=groups,
        channels=channels, dtype=config.dtype, filters=filters,
    )  # fmt: skip
    if derivatives:
        return f"{core}+fft'"
    xla_dx = choose.xla_input_grad(
        core, transposed=spec.transposed, kernel_size=kernel_size,
        strides=spec.strides, dilation=spec.dilation_rate, groups=groups,
        dtype=config.dtype,
    )  # fmt: skip
    return f"{core}+xla dx" if xla_dx else core


def programs(config, impl):
    """The four contexts' jitted functions and arguments for one impl."""
    spec = dataclasses.replace(config.spec, impl=impl)
    dtype = config.dtype
    rng = np.random.default_rng(config.index)
    x = jnp.asarray(rng.normal(size=config.shape), dtype)
    params = spec.init(jax.random.key(config.index), config.shape)
    target = jnp.asarray(
        rng.normal(size=spec.compute_output_shape(config.shape)), dtype
    )

    def sumsq(p, x):
        return jnp.sum(jnp.square(spec.apply(p, x).astype(jnp.float32)))

    def mse(p, x, t):
        y = spec.apply(p, x).astype(jnp.float32)
        return jnp.mean(jnp.square(y - t.astype(jnp.float32)))

    rank = len(config.shape) - 2
    head = getattr(cj, f"Conv{rank}D")(4, 1, data_format=spec.data_format,
                                       dtype=spec.dtype, impl="reference")  # fmt: skip
    model = cj.Sequential([spec, cj.Activation("gelu"), head])
    model_params = model.init(jax.random.key(config.index), config.shape)
    model_target = jnp.asarray(
        rng.normal(size=model.compute_output_shape(config.shape)), dtype
    )
    optimizer = optax.adam(1e-3)
    step = cj.make_train_step(
        model,
        optimizer,
        lambda y, t: jnp.mean(
            jnp.square(y.astype(jnp.float32) - t.astype(jnp.float32))
        ),
    )
    return {
        "fwd": (jax.jit(spec.apply), (params, x)),
        "sumsq": (jax.jit(jax.grad(sumsq, argnums=(0, 1))), (params, x)),
        "mse": (jax.jit(jax.value_and_grad(mse, argnums=(0, 1))), (params, x, target)),
        "model": (step, (model_params, optimizer.init(model_params), x, model_target)),
    }


def _compile(fn, args):
    start = time.perf_counter()
    lowered = fn.lower(*args)
    compiled = lowered.compile()
    return compiled, lowered.as_text(), time.perf_counter() - start


def _sample(fn, args, calls):
    start = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / calls


def paired(auto, reference, args, rounds):
    """Median seconds per call of both, and the median of the per-round
    ratios reference / auto, from interleaved rounds after warm-up."""
    for fn in (auto, reference):
        for _ in range(2):
            jax.block_until_ready(fn(*args))
    once = min(_sample(auto, args, 1), _sample(reference, args, 1))
    calls = max(1, min(50, int(SAMPLE_S / max(once, 1e-6))))
    times = {"auto": [], "reference": []}
    ratios = []
    for r in range(rounds):
        order = ("auto", "reference") if r % 2 == 0 else ("reference", "auto")
        this = {}
        for name in order:
            fn = auto if name == "auto" else reference
            this[name] = _sample(fn, args, calls)
            times[name].append(this[name])
        ratios.append(this["reference"] / this["auto"])
    return {
        "auto_ms": statistics.median(times["auto"]) * 1e3,
        "reference_ms": statistics.median(times["reference"]) * 1e3,
        "ratio": statistics.median(ratios),
    }


def measure(config, rounds, contexts=CONTEXTS):
    """The configuration's row: the chosen core and, per context, the
    paired times and ratio (re-measured when below target)."""
    auto, reference = programs(config, "auto"), programs(config, "reference")
    row = {"index": config.index, "label": config.label, "family": config.family,
           "dense": config.dense, "core": _chosen(config), "contexts": {}}  # fmt: skip
    for context in contexts:
        fa, args = auto[context]
        fr, args_r = reference[context]
        ca, text_a, compile_a = _compile(fa, args)
        cr, text_r, compile_r = _compile(fr, args_r)
        entry = {"compile_auto_s": compile_a, "compile_reference_s": compile_r}
        if text_a == text_r:
            entry.update(same_program=True, ratio=1.0)
        else:
            entry.update(same_program=False, **paired(ca, cr, args, rounds))
            if entry["ratio"] < TARGET:
                first = entry["ratio"]
                entry.update(paired(ca, cr, args, 2 * rounds))
                entry["first_reading"] = first
        row["contexts"][context] = entry
    return row


def floor(rounds):
    """The depthwise convolution against one elementwise pass over its
    input, all timed in the same interleaved rounds."""
    shape = (16, 1024, 64)
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    target = jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)
    results = {}
    for name, spec in {
        "Conv1D(64, 3, same, groups=64)": cj.Conv1D(64, 3, padding="same", groups=64),
        "DepthwiseConv1D(3, same)": cj.DepthwiseConv1D(3, padding="same"),
    }.items():
        params = spec.init(jax.random.key(0), shape)

        def mse(p, x, t, spec=spec):
            return jnp.mean(jnp.square(spec.apply(p, x) - t))

        calls = {
            "elementwise pass": (jax.jit(lambda x: x * 1.5 + 0.25), (x,)),
            "forward": (jax.jit(spec.apply), (params, x)),
            "forward + backward (MSE)": (
                jax.jit(jax.value_and_grad(mse, argnums=(0, 1))),
                (params, x, target),
            ),
        }
        compiled = {k: fn.lower(*a).compile() for k, (fn, a) in calls.items()}
        for k, (_, a) in calls.items():
            for _ in range(3):
                jax.block_until_ready(compiled[k](*a))
        samples = {k: [] for k in calls}
        for r in range(rounds):
            names = list(calls) if r % 2 == 0 else list(reversed(calls))
            for k in names:
                samples[k].append(_sample(compiled[k], calls[k][1], 20))
        ms = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
        results[name] = {
            "ms": ms,
            "forward_ratio": ms["forward"] / ms["elementwise pass"],
            "backward_ratio": ms["forward + backward (MSE)"] / ms["elementwise pass"],
        }
    return results


def _geomean(values):
    values = list(values)
    return (
        math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")
    )


def summarize(rows):
    ratios = [e["ratio"] for r in rows for e in r["contexts"].values()]
    worst = min(
        ((e["ratio"], r["index"], c) for r in rows for c, e in r["contexts"].items()),
        default=(float("nan"), None, None),
    )
    non_dense = [
        e["ratio"] for r in rows if not r["dense"] for e in r["contexts"].values()
    ]
    timed = [e for r in rows for e in r["contexts"].values() if not e["same_program"]]
    return {
        "configurations": len(rows),
        "measurements": len(ratios),
        "timed": len(timed),
        "below_target": sum(x < TARGET for x in ratios),
        "worst": {"ratio": worst[0], "index": worst[1], "context": worst[2]},
        "geomean_all": _geomean(ratios),
        "geomean_non_dense": _geomean(non_dense),
        "geomean_by_context": {
            c: _geomean(r["contexts"][c]["ratio"] for r in rows if c in r["contexts"])
            for c in CONTEXTS
        },
    }


def write(rows, floors, summary, args):
    header = (
        f"{datetime.date.today().isoformat()}, {cpu_name()},"
        f" {os.cpu_count()} cores, jax {jax.__version__}, {jax.default_backend()};"
        f" seed {args.seed}, {args.rounds} paired rounds"
        f" (below {TARGET}: {2 * args.rounds} more, which count)."
    )
    lines = ['# impl="auto" against impl="reference": the sweep', "", header, ""]
    if rows:
        s = summary
        lines += [
            f"{s['configurations']} configurations x {len(CONTEXTS)} contexts = "
            f"{s['measurements']} ratios (reference time / auto time; above 1: auto"
            f" faster), {s['timed']} of them timed (the others run the same program)."
            f" Below {TARGET}: {s['below_target']}. Worst: {s['worst']['ratio']:.2f}x"
            f" (#{s['worst']['index']}, {s['worst']['context']}). Geometric mean:"
            f" {s['geomean_all']:.2f}x over all, {s['geomean_non_dense']:.2f}x over"
            " the non-dense configurations (grouped, depthwise, separable,"
            " transposed, long kernels); by context: "
            + ", ".join(f"{c} {v:.2f}x" for c, v in s["geomean_by_context"].items())
            + ".",
            "",
            "| # | configuration | auto core | " + " | ".join(CONTEXTS) + " |",
            "| ---: | --- | --- | " + " | ".join("---:" for _ in CONTEXTS) + " |",
        ]
        for r in rows:
            cells = []
            for c in CONTEXTS:
                e = r["contexts"].get(c)
                if e is None:
                    cells.append("")
                elif e["same_program"]:
                    cells.append("= ref")
                else:
                    cells.append(f"{e['ratio']:.2f}x ({e['auto_ms']:.2f} ms)")
            lines.append(f"| {r['index']} | `{r['label']}` | {r['core']} | "
                         + " | ".join(cells) + " |")  # fmt: skip
        lines += ["", "Cells: reference / auto (auto's median ms per call); `= ref`:"
                  " the same program (XLA's HLO text equal), not timed.", ""]  # fmt: skip
    if floors:
        lines += [
            "## Depthwise against the memory floor", "",
            "(16, 1024, 64) float32, kernel 3, \"same\"; the elementwise pass is"
            " `x * 1.5 + 0.25` (reads and writes the 4 MB array once). Targets:"
            " forward within 2x, forward + backward within 8x.", "",
            "| layer | elementwise ms | forward ms | fwd+bwd ms | forward / pass |"
            " fwd+bwd / pass |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]  # fmt: skip
        for name, f in floors.items():
            ms = f["ms"]
            lines.append(
                f"| `{name}` | {ms['elementwise pass']:.3f} | {ms['forward']:.3f} | "
                f"{ms['forward + backward (MSE)']:.3f} | {f['forward_ratio']:.2f}x | "
                f"{f['backward_ratio']:.2f}x |"
            )
        lines.append("")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "sweep" if not args.only else "sweep_only"
    (args.out / f"{stem}.md").write_text(text)
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"header": header, "summary": summary, "rows": rows, "floor": floors},
        indent=1))  # fmt: skip
    if rows and not args.only:
        charts.sweep_chart({"header": header, "summary": summary, "rows": rows},
                           args.out, TARGET)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", type=int, nargs="*", help="configuration numbers")
    parser.add_argument("--contexts", nargs="*", default=list(CONTEXTS))
    parser.add_argument("--list", action="store_true", help="list and stop")
    parser.add_argument("--floor-only", action="store_true")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--no-suite", action="store_true",
                        help="only the random configurations, not bench.py's "
                             "suite nor COMMON")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    configs = draw(args.count, args.seed)
    if not args.no_suite:
        configs += suite(len(configs))
        configs += common(len(configs))
    if args.only:
        configs = [configs[i] for i in args.only]
    if args.list:
        for c in configs:
            print(c.index, _chosen(c), c.label)
        return None
    rows = []
    if not args.floor_only:
        for config in configs:
            start = time.perf_counter()
            row = measure(config, args.rounds, args.contexts)
            rows.append(row)
            cells = " ".join(
                f"{c}={e['ratio']:.2f}" for c, e in row["contexts"].items()
            )
            print(f"#{config.index} [{row['core']}] {cells} "
                  f"({time.perf_counter() - start:.0f} s) {config.label}", flush=True)  # fmt: skip
    floors = None if args.no_floor or args.only else floor(max(args.rounds, 11))
    summary = summarize(rows) if rows else {}
    write(rows, floors, summary, args)
    return {"summary": summary, "floor": floors, "rows": rows}


if __name__ == "__main__":
    main()
