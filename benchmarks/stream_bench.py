"""Streaming inference: one-sample latency of a dilated causal stack, and the
per-step cost against chunk length.

The model is a 10-layer stack of causal ``Conv1D(32, 2)`` with dilations 1,
2, 4, ... 512 (tanh between; a receptive field of 1024 steps). Two ways to
produce the newest output when one sample arrives:

- **stream**: ``cj.stream_apply`` on the one-sample chunk, the state (each
  layer's last ``dilation`` inputs) carried over;
- **recompute**: ``model.apply`` over the last 1024 samples (the receptive
  field), keeping the last output: what a library without streaming state
  does.

Then the stream's cost per sample for chunks of 1, 4, 16, 64 and 256 steps.
Both are ``jax.jit``-compiled once (compile time reported apart), warmed up
twice, then timed in interleaved rounds (``block_until_ready`` on each call)
and the medians reported, with the ratio recompute / stream measured in the
same rounds.

Run:  python benchmarks/stream_bench.py [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)

    model, params = build()
    field = cj.receptive_field(model)
    assert field == 1024 and cj.stream_latency(model) == 0
    step = jax.jit(cj.stream_apply)
    recompute = jax.jit(lambda p, window: model.apply(p, window)[:, -1:])

    rng = np.random.default_rng(0)
    window = jnp.asarray(rng.normal(size=(1, field, CHANNELS)), jnp.float32)
    state = cj.stream_init(model, params, (1,))
    # The stream equals recomputing, on the same history.
    y_stream, _ = step(model, params, state, window)
    np.testing.assert_allclose(
        np.asarray(y_stream[:, -1:]), np.asarray(recompute(params, window)), rtol=2e-5,
        atol=2e-6,
    )  # fmt: skip

    rows, compile_s = [], {}
    one = window[:, -1:]
    step_1, compile_s["stream, chunk 1"] = compiled(step, model, params, state, one)
    recompute_c, compile_s["recompute"] = compiled(recompute, params, window)
    times = timed_rounds(
        {
            "stream": lambda: step_1(model, params, state, one),
            "recompute": lambda: recompute_c(params, window),
        },
        args.rounds,
        inner=50,
    )
    ratio = times["recompute"] / times["stream"]
    for n in CHUNKS:
        chunk = jnp.asarray(rng.normal(size=(1, n, CHANNELS)), jnp.float32)
        fn, compile_s[f"stream, chunk {n}"] = compiled(
            step, model, params, state, chunk
        )
        t = timed_rounds({"s": lambda fn=fn, chunk=chunk: fn(model, params, state, chunk)},
                         args.rounds, inner=20)["s"]  # fmt: skip
        rows.append({"chunk": n, "ms_per_call": t * 1e3, "us_per_sample": t / n * 1e6})

    lines = [
        "# Streaming benchmark",
        "",
        f"{datetime.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, jax {jax.__version__}, {jax.default_backend()}; "
        f"median of {args.rounds} interleaved rounds.",
        "",
        f"10 causal Conv1D(32, 2) with dilations 1 to 512 (receptive field {field}):",
        "",
        "| one new sample | ms per output | vs stream |",
        "| --- | ---: | ---: |",
        f"| stream (`cj.stream_apply`, chunk 1) | {times['stream'] * 1e3:.3f} | 1.0x |",
        f"| recompute over the receptive field | {times['recompute'] * 1e3:.3f} | "
        f"{ratio:.1f}x slower |",
        "",
        "| chunk length | ms per call | us per sample |",
        "| ---: | ---: | ---: |",
        *[
            f"| {r['chunk']} | {r['ms_per_call']:.3f} | {r['us_per_sample']:.1f} |"
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
        {"one_sample_ms": {k: v * 1e3 for k, v in times.items()}, "ratio": ratio,
         "chunks": rows, "compile_s": compile_s}, indent=2))  # fmt: skip
    return {"ratio": ratio, "rows": rows}


if __name__ == "__main__":
    main()
