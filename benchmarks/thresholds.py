"""Measures the crossovers behind the constants of conv1djax.lowering.choose.

Sweeps, on this machine, with conv1djax's own lowerings forced by ``impl``:

- taps: "direct" against "fft" (FFT_MIN_TAPS), at 16 and 64 channels;
- groups: "direct" (XLA's grouped convolution), "blockdiag" and "shift" at
  64 and 256 channels, kernel 3 (SHIFT_MAX_TERMS, BLOCKDIAG_MAX_GROUPS);
- the rewrites: space-to-depth for strided Conv1D, the channels_first
  paths (XLA's, transposes, the "ncw" core), and the polyphase transposed
  convolution, against the reference path.

Each row times forward and forward + backward (value and gradient of an MSE
against a fixed target w.r.t. input and kernel; no bias), interleaved,
medians in milliseconds.
Writes ``thresholds.md`` to ``--out``. About 2 minutes on 2 CPU cores.

Run:  python benchmarks/thresholds.py [--out DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import conv1djax as cj
from conv1djax.lowering import dispatch, rewrites


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


class _SpaceToDepth:
    """A Conv1D spec stand-in: space-to-depth, then XLA's stride-1
    convolution (what "auto" would do for strided dense convolutions if it
    rewrote them)."""

    def __init__(self, spec):
        self.spec = spec

    def param_shapes(self, shape):
        return self.spec.param_shapes(shape)

    def apply(self, params, x):
        s = self.spec
        x, kernel = rewrites.space_to_depth(
            x,
            params["kernel"],
            strides=s.strides,
            padding=s.paddings(x.shape[1:-1]),
            groups=s.groups,
        )
        return dispatch.core_conv(
            x, kernel, padding=((0, 0),), dilation=(1,), groups=s.groups, core="direct"
        )


def _programs(spec, shape):
    """Compiled forward and forward + backward of ``spec`` on ``shape``."""
    params = {"kernel": _normal(0, spec.param_shapes(shape)["kernel"])}
    x = _normal(1, shape)
    target = _normal(2, jax.eval_shape(spec.apply, params, x).shape)

    def fwd(p, x_, t):
        return spec.apply(p, x_)

    def fwdbwd(p, x_, t):
        return jax.value_and_grad(
            lambda p_, x__: jnp.mean((spec.apply(p_, x__) - t) ** 2), argnums=(0, 1)
        )(p, x_)

    out = {}
    for name, fn in (("fwd", fwd), ("fwd+bwd", fwdbwd)):
        compiled = jax.jit(fn).lower(params, x, target).compile()
        out[name] = lambda c=compiled: jax.block_until_ready(c(params, x, target))
    return out


def _time(runs, rounds):
    for run in runs.values():
        run()
        run()
    samples = {n: [] for n in runs}
    order = np.random.default_rng(0)
    names = list(runs)
    for _ in range(rounds):
        for i in order.permutation(len(names)):
            start = time.perf_counter()
            runs[names[i]]()
            samples[names[i]].append((time.perf_counter() - start) * 1e3)
    return {n: statistics.median(v) for n, v in samples.items()}


def sweep(title, rows, impls, rounds):
    """``rows``: (label, spec factory taking impl, input shape)."""
    lines = [
        f"### {title}",
        "",
        "| case | pass | " + " | ".join(impls) + " | fastest |",
        "| --- | --- | " + " | ".join("---:" for _ in impls) + " | --- |",
    ]
    for label, make, shape in rows:
        runs = {}
        for impl in impls:
            for mode, run in _programs(make(impl), shape).items():
                runs[(impl, mode)] = run
        ms = _time(runs, rounds)
        for mode in ("fwd", "fwd+bwd"):
            row = {impl: ms[(impl, mode)] for impl in impls}
            best = min(row, key=row.get)
            lines.append(
                f"| {label} | {mode} | "
                + " | ".join(f"{row[i]:.2f}" for i in impls)
                + f" | {best} |"
            )
        print("\n".join(lines[-2:]), flush=True)
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    parts = []

    def conv(*args, **kwargs):
        return cj.Conv1D(*args, use_bias=False, **kwargs)

    taps = [
        (
            f"C=F={c}, k={k}",
            lambda impl, c=c, k=k: conv(c, k, padding="same", impl=impl),
            (4, 4096, c),
        )
        for c in (16, 64)
        for k in (16, 32, 48, 64, 96)
    ]
    parts.append(
        sweep("Taps: direct vs FFT (B=4, L=4096)", taps, ["direct", "fft"], args.rounds)
    )
    groups = [
        (
            f"C={c}, g={g} (terms {3 * c // g})",
            lambda impl, c=c, g=g: conv(c, 3, padding="same", groups=g, impl=impl),
            (16, 1024 * 64 // c, c),
        )
        for c, gs in ((64, (2, 4, 8, 64)), (256, (4, 8, 16, 64)))
        for g in gs
    ]
    parts.append(
        sweep(
            "Groups: XLA grouped vs block-diagonal vs shift-and-add (k=3)",
            groups,
            ["direct", "blockdiag", "shift"],
            args.rounds,
        )
    )

    def strided(c, k, s):
        def make(impl):
            spec = conv(c, k, strides=s, padding="same", impl="direct")
            return _SpaceToDepth(spec) if impl == "space-to-depth" else spec

        return make

    parts.append(
        sweep(
            "Strided Conv1D: XLA's strided convolution vs space-to-depth",
            [
                ("C=F=64, k=4, stride 2", strided(64, 4, 2), (16, 2048, 64)),
                ("C=F=32, k=8, stride 4", strided(32, 8, 4), (16, 4096, 32)),
            ],
            ["direct", "space-to-depth"],
            args.rounds,
        )
    )
    first = [
        (
            f"C=F=64, k={k}",
            lambda impl, k=k: conv(
                64, k, padding="same", data_format="channels_first", impl=impl
            ),
            (16, 64, 1024),
        )
        for k in (3, 5, 9)
    ]
    parts.append(
        sweep(
            "channels_first: XLA's NCW path vs transposes vs the ncw core",
            first,
            ["reference", "direct", "ncw"],
            args.rounds,
        )
    )
    transposed = [
        (
            f"C=F=64, k={k}, stride {s}",
            lambda impl, k=k, s=s: cj.Conv1DTranspose(
                64, k, strides=s, padding="same", use_bias=False, impl=impl
            ),
            (16, 512, 64),
        )
        for k, s in ((4, 2), (3, 2), (8, 4))
    ]
    parts.append(
        sweep(
            "Conv1DTranspose: XLA's lhs_dilation vs polyphase",
            transposed,
            ["reference", "direct"],
            args.rounds,
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(parts)
    (args.out / "thresholds.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
