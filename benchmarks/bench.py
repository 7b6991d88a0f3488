"""Times conv1djax against raw lax, Keras 3 (JAX), Flax nnx and PyTorch.

One process, one suite: dense convolutions (channels_last and
channels_first), grouped (8 groups), depthwise, a stride-2 transposed
convolution and a long kernel (511 taps), each forward and forward + backward
(the value and gradient of an MSE with respect to the input and the params),
and the whole train step of a 1-D denoising autoencoder (a strided Conv1D
encoder, a Conv1DTranspose decoder, an L2 kernel penalty, optax's Adam).

Method: each peer is compiled (JAX) or built (PyTorch) first; its compile
time is reported apart. After two warm-up calls per peer, the peers are
timed in interleaved rounds (A B C ... A B C ..., the order rotating every
round) and the medians reported, with each peer's ratio ``peer / ours``.
Peak memory is XLA's ``memory_analysis()`` of the compiled program
(arguments + outputs + temporaries - aliased), for ours and for the plain
``lax.conv_general_dilated`` path (``impl="reference"``). GFLOP/s count the
convolution's useful multiply-adds (2 FLOPs each); the dense rows compare
them with ``jnp.dot`` of the equivalent im2col matmul, timed in the same
rounds.

Layouts: each row has one data layout. Peers without it (Flax is
channels-last only, PyTorch channels-first only) transpose at the boundary,
inside the timed function, as their users would.

Writes ``results.md``, ``results.json`` and ``results.png`` to ``--out``.
Runs without network; about 2 minutes on 2 CPU cores (``--quick``: under 1).

Run:  python benchmarks/bench.py [--quick] [--out DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

import conv1djax as cj  # noqa: E402
from conv1djax.lowering import reference  # noqa: E402

PEERS = ("ours", "lax", "keras", "flax", "torch")


@dataclasses.dataclass(frozen=True)
class Case:
    """One suite entry: a layer and its input."""

    name: str
    transposed: bool
    filters: int
    kernel_size: int
    batch: int
    steps: int
    channels: int
    strides: int = 1
    padding: str = "same"
    groups: int = 1
    data_format: str = "channels_last"

    def spec(self, impl="auto"):
        cls = cj.Conv1DTranspose if self.transposed else cj.Conv1D
        return cls(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            groups=self.groups,
            data_format=self.data_format,
            impl=impl,
        )

    @property
    def input_shape(self):
        if self.data_format == "channels_last":
            return (self.batch, self.steps, self.channels)
        return (self.batch, self.channels, self.steps)

    def flops(self) -> float:
        """Useful FLOPs of the forward pass (2 per multiply-add)."""
        k, g = self.kernel_size, self.groups
        if self.transposed:  # every input step meets k taps of F / g filters
            return 2.0 * self.batch * self.steps * k * self.channels * self.filters / g
        out = self.spec().output_length(self.steps)
        return 2.0 * self.batch * out * k * (self.channels // g) * self.filters


SUITE = (
    Case("dense", False, 64, 3, 16, 1024, 64),
    Case("dense NCW", False, 64, 3, 16, 1024, 64, data_format="channels_first"),
    Case("grouped g=8", False, 64, 3, 16, 1024, 64, groups=8),
    Case("depthwise", False, 64, 3, 16, 1024, 64, groups=64),
    Case("transposed s=2", True, 64, 4, 16, 512, 64, strides=2),
    Case("long k=511", False, 16, 511, 4, 8192, 16),
)


def _normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ---- peers: each returns {"fwd": fn, "fwdbwd": fn} over numpy-made args --------


def _mse(y, target):
    return jnp.mean((y - target) ** 2)


def _jax_pair(apply, params, x, target):
    """Forward and value-and-grad (w.r.t. params and input) of ``apply``."""

    def fwd(params, x):
        return apply(params, x)

    def fwdbwd(params, x, target):
        return jax.value_and_grad(
            lambda p, x_: _mse(apply(p, x_), target), argnums=(0, 1)
        )(params, x)

    return {"fwd": (fwd, (params, x)), "fwdbwd": (fwdbwd, (params, x, target))}


def _ours(case, data, impl="auto"):
    spec = case.spec(impl)
    fn = cj.conv1d_transpose_apply if case.transposed else cj.conv1d_apply
    return _jax_pair(lambda p, x: fn(spec, p, x), data["params"], data["x"], data["t"])


def _lax(case, data):
    """``lax.conv_general_dilated`` written by hand, Keras's padding and
    layout."""
    spec = case.spec()
    layout = "NWC" if case.data_format == "channels_last" else "NCW"
    padding = spec.padding_pair(case.steps)

    def apply(p, x):
        kernel = p["kernel"]
        if case.transposed:
            kernel = reference.transpose_kernel(kernel, case.groups)
        y = lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(1,) if case.transposed else (case.strides,),
            padding=(padding,),
            lhs_dilation=(case.strides,) if case.transposed else (1,),
            dimension_numbers=(layout, "WIO", layout),
            feature_group_count=case.groups,
        )
        bias = p["bias"] if layout == "NWC" else p["bias"][:, None]
        return y + bias

    return _jax_pair(apply, data["params"], data["x"], data["t"])


def _keras(case, data):
    import keras

    cls = keras.layers.Conv1DTranspose if case.transposed else keras.layers.Conv1D
    kwargs = dict(
        strides=case.strides,
        padding=case.padding,
        data_format=case.data_format,
        kernel_initializer="zeros",
    )
    if case.groups > 1:
        kwargs["groups"] = case.groups
    layer = cls(case.filters, case.kernel_size, **kwargs)
    layer.build(case.input_shape)
    layer.set_weights([np.asarray(data["params"][n]) for n in ("kernel", "bias")])

    def apply(p, x):
        y, _ = layer.stateless_call([p["kernel"], p["bias"]], [], x)
        return y

    return _jax_pair(apply, data["params"], data["x"], data["t"])


def _flax(case, data):
    from flax import nnx

    zeros = nnx.initializers.zeros_init()
    common = dict(kernel_init=zeros, rngs=nnx.Rngs(0))
    if case.transposed:
        module = nnx.ConvTranspose(
            case.channels,
            case.filters,
            (case.kernel_size,),
            strides=(case.strides,),
            padding=case.padding.upper(),
            **common,
        )
        kernel = np.asarray(
            reference.transpose_kernel(data["params"]["kernel"], 1)
        )  # Flax: (k, C, F), applied unflipped to the dilated input
    else:
        module = nnx.Conv(
            case.channels,
            case.filters,
            (case.kernel_size,),
            strides=(case.strides,),
            padding=case.padding.upper(),
            feature_group_count=case.groups,
            **common,
        )
        kernel = np.asarray(data["params"]["kernel"])
    module.kernel.value = jnp.asarray(kernel)
    module.bias.value = jnp.asarray(data["params"]["bias"])
    graphdef, state = nnx.split(module)
    first = case.data_format == "channels_first"

    def apply(state, x):
        model = nnx.merge(graphdef, state)
        if first:  # Flax convolutions are channels-last only
            return model(x.transpose(0, 2, 1)).transpose(0, 2, 1)
        return model(x)

    return _jax_pair(apply, state, data["x"], data["t"])


def _torch(case, data):
    import torch

    torch.set_num_threads(2)
    c, f, k, s = case.channels, case.filters, case.kernel_size, case.strides
    if case.transposed:
        # PyTorch's padding p and output_padding give Keras's "same" length.
        total = s + k - 2
        left = min(total // 2 + total % 2, k - 1)
        module = torch.nn.ConvTranspose1d(
            c,
            f,
            k,
            stride=s,
            padding=k - 1 - left,
            output_padding=(k - 1 - left) * 2 + s - k,
            groups=case.groups,
        )
        weight = np.asarray(data["params"]["kernel"]).transpose(2, 1, 0)  # (C,F/g,k)
    else:
        module = torch.nn.Conv1d(
            c, f, k, stride=s, padding="same" if s == 1 else k // 2, groups=case.groups
        )
        weight = np.asarray(data["params"]["kernel"]).transpose(2, 1, 0)  # (F,C/g,k)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        module.bias.copy_(torch.from_numpy(np.asarray(data["params"]["bias"])))
    last = case.data_format == "channels_last"
    x = torch.from_numpy(np.asarray(data["x"])).requires_grad_(True)
    target = torch.from_numpy(np.asarray(data["t"]))

    def apply(x):
        if last:  # PyTorch convolutions are channels-first
            return module(x.transpose(1, 2)).transpose(1, 2)
        return module(x)

    def fwd():
        with torch.no_grad():
            return apply(x)

    def fwdbwd():
        module.zero_grad(set_to_none=True)
        x.grad = None
        loss = torch.mean((apply(x) - target) ** 2)
        loss.backward()
        return loss

    return {"fwd": fwd, "fwdbwd": fwdbwd}


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


def bench_case(case, rounds, peers):
    data = make_data(case)
    builders = {
        "ours": _ours,
        "lax": _lax,
        "keras": _keras,
        "flax": _flax,
        "torch": _torch,
    }
    built = {p: builders[p](case, data) for p in peers}
    result = {"case": dataclasses.asdict(case), "flops": case.flops()}
    for mode in ("fwd", "fwdbwd"):
        runs, compile_s, peak = {}, {}, {}
        for peer, fns in built.items():
            if peer == "torch":
                runs[peer] = fns[mode]
                continue
            fn, args = fns[mode]
            runs[peer], compile_s[peer], peak[peer] = compile_jax(fn, args)
        plain_fn, plain_args = _ours(case, data, impl="reference")[mode]
        _, _, peak["reference"] = compile_jax(plain_fn, plain_args)
        if mode == "fwd" and case.groups == 1 and not case.transposed:
            runs["jnp.dot"] = _dot_run(case)
        ms, ratio = interleaved(runs, rounds)
        result[mode] = {
            "ms": ms,
            "ratio": ratio,
            "compile_s": compile_s,
            "peak_bytes": peak,
        }
        print(
            f"  {case.name:16s} {mode:7s} "
            + "  ".join(f"{p} {t:8.2f}" for p, t in ms.items()),
            flush=True,
        )
    return result


def _dot_run(case):
    """``jnp.dot`` of the im2col matmul with the forward's FLOPs."""
    out = case.spec().output_length(case.steps)
    a = jnp.asarray(_normal(20, (case.batch * out, case.kernel_size * case.channels)))
    b = jnp.asarray(_normal(21, (case.kernel_size * case.channels, case.filters)))
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
        torch.from_numpy(np.asarray(a)).transpose(1, 2).contiguous()
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


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
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
        "input and params.",
        "",
        "| entry | pass | ours | " + " | ".join(peers) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in peers) + " |",
    ]
    for r in results["cases"]:
        for mode, label in (("fwd", "fwd"), ("fwdbwd", "fwd+bwd")):
            d = r[mode]
            lines.append(
                f"| {r['case']['name']} | {label} | {d['ms']['ours']:.2f} | "
                + " | ".join(_ratio_cell(d, p) for p in peers)
                + " |"
            )
    t = results["train"]
    lines.append(
        f"| train step | fwd+bwd+adam | {t['ms']['ours']:.2f} | "
        + " | ".join(_ratio_cell(t, p) for p in peers)
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
    rows = [
        (r["case"]["name"], lbl, r[mode])
        for r in results["cases"]
        for mode, lbl in (("fwd", "fwd"), ("fwdbwd", "fwd+bwd"))
    ]
    rows.append(("train step", "fwd+bwd+adam", results["train"]))
    for name, label, d in rows:
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


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, series = [], {p: [] for p in PEERS if p != "ours"}
    for r in results["cases"]:
        for mode, lbl in (("fwd", "fwd"), ("fwdbwd", "f+b")):
            labels.append(f"{r['case']['name']}\n{lbl}")
            for p in series:
                series[p].append(r[mode]["ratio"].get(p, np.nan))
    labels.append("train step")
    for p in series:
        series[p].append(results["train"]["ratio"].get(p, np.nan))
    fig, ax = plt.subplots(figsize=(14, 5))
    width = 0.8 / len(series)
    xs = np.arange(len(labels))
    for i, (p, vals) in enumerate(series.items()):
        ax.bar(xs + (i - (len(series) - 1) / 2) * width, vals, width, label=p)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("peer time / conv1djax time (log)")
    ax.set_xticks(xs, labels, fontsize=7)
    ax.legend()
    ax.set_title(
        f"conv1djax speed-up, {results['machine']['cpu']}, "
        f"{results['machine']['cores']} cores, {results['machine']['date']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, not 31")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", nargs="*", help="suite entries to run")
    parser.add_argument("--peers", nargs="*", default=list(PEERS))
    args = parser.parse_args()
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
    chart(results, args.out / "results.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
