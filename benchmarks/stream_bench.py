"""Streaming inference: one-sample latency of a dilated causal stack against
recomputing its receptive field, and the per-sample cost against chunk
length.

The model is a 10-layer stack of causal ``Conv1D(32, 2)`` with dilations 1,
2, 4, ... 512 (tanh between; a receptive field of 1024 steps). Two ways to
produce the newest output when one sample arrives:

- **stream**: ``cj.stream_apply`` on the one-sample chunk, the state (each
  layer's ring of its last ``dilation + 1`` inputs) carried over;
- **recompute**: ``model.apply`` over the last 1024 samples (the receptive
  field), keeping the last output: what a library without streaming state
  does.

Each is timed in two program contexts:

- **in a compiled loop**: one ``jax.jit`` program, no Python between
  samples: ``cj.stream_scan`` with chunks of one step over a signal of
  1023 + 2048 samples (an output per sample), and a ``lax.scan`` recomputing
  the window of each of its last 2048 samples; the time per output;
- **one call per sample**: a jitted call per new sample from Python (the
  stream's state donated), so each sample also pays JAX's dispatch and the
  XLA:CPU runtime's start-up of a program, the same for both.

Then the stream's cost per sample for chunks of 1, 4, 16, 64 and 256 steps,
in both contexts. Every program is compiled once (compile time reported
apart), warmed up twice, then timed in interleaved rounds
(``block_until_ready`` on each call) and the medians reported, with the
ratio recompute / stream measured in the same rounds. Both ways are checked
to give the same outputs first.

Run:  python benchmarks/stream_bench.py [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from bench import cpu_name
from jax import lax

import conv1djax as cj

CHANNELS = 32
DILATIONS = tuple(2**i for i in range(10))
CHUNKS = (1, 4, 16, 64, 256)


def build():
    layers = []
    for d in DILATIONS:
        layers.append(cj.Conv1D(CHANNELS, 2, dilation_rate=d, padding="causal",
                                activation="tanh"))  # fmt: skip
    model = cj.Sequential(layers)
    params = model.init(jax.random.key(0), (1, 16, CHANNELS))
    return model, params


def compiled(fn, *args):
    start = time.perf_counter()
    out = fn.lower(*args).compile()
    return out, time.perf_counter() - start


def timed_rounds(calls: dict, rounds: int, inner: int) -> dict[str, float]:
    """Median seconds per call of each function, interleaved rounds."""
    samples = {name: [] for name in calls}
    rng = np.random.default_rng(0)
    for fn in calls.values():  # warm-up
        for _ in range(2):
            jax.block_until_ready(fn())
    for _ in range(rounds):
        for name in rng.permutation(list(calls)):
            fn = calls[name]
            start = time.perf_counter()
            for _ in range(inner):
                jax.block_until_ready(fn())
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


class _Stepper:
    """One jitted ``stream_apply`` call per chunk, the state donated and
    carried from call to call."""

    def __init__(self, model, params, chunk):
        self.model, self.params, self.chunk = model, params, chunk
        step = jax.jit(cj.stream_apply, donate_argnums=2)
        self.state = cj.stream_init(model, params, (1,))  # lowering keeps it
        self.step, self.compile_s = compiled(step, model, params, self.state, chunk)

    def __call__(self):
        y, self.state = self.step(self.model, self.params, self.state, self.chunk)
        return y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2048,
                        help="samples per compiled loop")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)

    model, params = build()
    field = cj.receptive_field(model)
    assert field == 1024 and cj.stream_latency(model) == 0
    steps = args.steps
    rng = np.random.default_rng(0)
    signal = jnp.asarray(rng.normal(size=(1, field - 1 + steps, CHANNELS)), jnp.float32)

    def recompute_loop(p, signal):
        def body(carry, i):
            window = lax.dynamic_slice_in_dim(signal, i, field, axis=1)
            return carry, model.apply(p, window)[:, -1]

        return jnp.moveaxis(lax.scan(body, None, jnp.arange(steps))[1], 0, 1)

    def stream_loop(p, signal, chunk):
        return cj.stream_scan(model, p, signal, chunk)

    compile_s = {}
    recompute_c, compile_s["recompute, loop"] = compiled(
        jax.jit(recompute_loop), params, signal
    )
    stream_c, compile_s["stream, loop, chunk 1"] = compiled(
        jax.jit(stream_loop, static_argnums=2), params, signal, 1
    )
    # The same outputs: the stream's last `steps` against the recomputed ones.
    np.testing.assert_allclose(
        np.asarray(stream_c(params, signal)[:, field - 1 :]),
        np.asarray(recompute_c(params, signal)), rtol=2e-5, atol=2e-6,
    )  # fmt: skip
    loop = timed_rounds(
        {"stream": lambda: stream_c(params, signal),
         "recompute": lambda: recompute_c(params, signal)},
        max(args.rounds // 3, 3), inner=1,
    )  # fmt: skip
    # Per output: the stream emits one per sample of the signal, the
    # recomputing loop one per step after the first window.
    loop = {"stream": loop["stream"] / signal.shape[1],
            "recompute": loop["recompute"] / steps}  # fmt: skip
    # Recompute the same step each call (the window's values do not matter).
    window = signal[:, :field]
    recompute_one, compile_s["recompute, call"] = compiled(
        jax.jit(lambda p, w: model.apply(p, w)[:, -1:]), params, window
    )
    one = _Stepper(model, params, signal[:, :1])
    compile_s["stream, call, chunk 1"] = one.compile_s
    call = timed_rounds(
        {"stream": one, "recompute": lambda: recompute_one(params, window)},
        args.rounds, inner=50,
    )  # fmt: skip

    rows = []
    for n in CHUNKS:  # chunk 1: the programs above
        if n == 1:
            stepper, loop_n = one, stream_c
        else:
            chunk = jnp.asarray(rng.normal(size=(1, n, CHANNELS)), jnp.float32)
            stepper = _Stepper(model, params, chunk)
            compile_s[f"stream, call, chunk {n}"] = stepper.compile_s
            loop_n, compile_s[f"stream, loop, chunk {n}"] = compiled(
                jax.jit(stream_loop, static_argnums=2), params, signal, n
            )
        per_call = timed_rounds({"call": stepper}, args.rounds, inner=max(256 // n, 4))
        per_loop = timed_rounds({"loop": lambda f=loop_n: f(params, signal)},
                                max(args.rounds // 3, 3), inner=1)  # fmt: skip
        rows.append({"chunk": n, "call_us_per_sample": per_call["call"] / n * 1e6,
                     "loop_us_per_sample": per_loop["loop"] / signal.shape[1] * 1e6})  # fmt: skip

    def ratio(times):
        return times["recompute"] / times["stream"]

    lines = [
        "# Streaming benchmark",
        "",
        f"{datetime.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__}, {jax.default_backend()}; median of interleaved "
        f"rounds ({args.rounds} per call, {max(args.rounds // 3, 3)} of the "
        "compiled loops).",
        "",
        f"10 causal Conv1D(32, 2) with dilations 1 to 512 (receptive field {field}), "
        "one new sample:",
        "",
        "| context | stream (us) | recompute (us) | recompute / stream |",
        "| --- | ---: | ---: | ---: |",
        f"| in a compiled loop (per sample) | {loop['stream'] * 1e6:.1f} | "
        f"{loop['recompute'] * 1e6:.1f} | **{ratio(loop):.0f}x** |",
        f"| one jitted call per sample | {call['stream'] * 1e6:.1f} | "
        f"{call['recompute'] * 1e6:.1f} | {ratio(call):.1f}x |",
        "",
        "The stream's cost per sample against its chunk length:",
        "",
        "| chunk length | in a compiled loop (us/sample) | one call per chunk (us/sample) |",
        "| ---: | ---: | ---: |",
        *[
            f"| {r['chunk']} | {r['loop_us_per_sample']:.2f} | "
            f"{r['call_us_per_sample']:.2f} |"
            for r in rows
        ],
        "",
        "Compile times (s): " + ", ".join(f"{k} {v:.2f}" for k, v in compile_s.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stream.md").write_text(text)
    (args.out / "stream.json").write_text(json.dumps(
        {"one_sample_us": {"loop": {k: v * 1e6 for k, v in loop.items()},
                           "call": {k: v * 1e6 for k, v in call.items()}},
         "ratio": {"loop": ratio(loop), "call": ratio(call)},
         "chunks": rows, "compile_s": compile_s}, indent=2))  # fmt: skip
    return {"ratio": {"loop": ratio(loop), "call": ratio(call)}, "rows": rows}


if __name__ == "__main__":
    main()
