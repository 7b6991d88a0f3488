"""Where each suite entry's time goes: its forward, input gradient and kernel
gradient, each alone, in every form conv1djax can run it in, and in PyTorch.

Issue 19 asks, where a target against PyTorch cannot be met, for the
measured bound and what limits it. ``torch_bench.py`` times whole passes
(forward; forward + backward); this splits them into the three products a
convolution layer's training needs and times each one alone:

- conv1djax: for ``impl="auto"``, ``impl="reference"`` (Keras's one
  ``lax.conv_general_dilated``) and every core of
  :data:`conv1djax.lowering.choose.CORES` that accepts the layer, three
  jitted programs: the forward; the VJP with respect to the input alone
  (the kernel held as an argument); the VJP with respect to the params
  alone. XLA drops the forward from the last two (neither needs its
  output), so each is one product.
- PyTorch: the forward under ``no_grad``; then, on one forward graph
  built outside the timed region, ``torch.autograd.grad`` of the output
  with respect to the input alone, and to the parameters alone
  (``retain_graph=True``). Autograd asks ``convolution_backward`` only for
  the outputs wanted, so each is one product too.

A composite layer (separable) counts as one layer: its kernel gradient
includes the input gradient of its inner steps, in both frameworks.

Each product's peers (every form and PyTorch) are compiled, checked equal
(``max_rel_diff`` against ``impl="reference"`` and PyTorch's), then timed
in alternating blocks as in ``torch_bench.py`` (``torch_bench.Alternating``:
``B`` calls per peer per round, a 50 ms pause after each block, medians),
every entry's products prepared first and their rounds spread over the
whole run (``torch_bench.spread``).
GFLOP/s count the forward's useful FLOPs for every product (each has the
same multiply-adds), next to the rate of ``jnp.dot`` of two 2048 x 2048
float32 matrices timed the same way.

Writes ``bounds.md`` and ``bounds.json`` to ``--out``.

Run:  python benchmarks/bounds.py [--rounds N] [--only NAME ...] [--quick]
          [--out DIR]
"""

from __future__ import annotations

import os

os.sched_setaffinity(0, range(os.cpu_count() or 1))

import dataclasses  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (sets KERAS_BACKEND=jax before anything imports keras)
import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_bench  # noqa: E402
from bench import Case, make_data  # noqa: E402

from conv1djax.lowering import choose  # noqa: E402

PRODUCTS = {"fwd": "forward", "dx": "input gradient", "dk": "kernel gradient"}
# A form more than PRUNE times slower than the fastest in a first call is
# listed with that call's time, not timed in rounds.
PRUNE = 4.0


def _jax_products(spec: Any, params: Any, x: Any, gy: Any) -> dict[str, tuple]:
    """``{product: (fn, args)}`` for one conv1djax spec."""

    def fwd(p, x_):
        return spec.apply(p, x_)

    def dx(p, x_, g):
        return jax.vjp(lambda v: spec.apply(p, v), x_)[1](g)[0]

    def dk(p, x_, g):
        return jax.vjp(lambda q: spec.apply(q, x_), p)[1](g)[0]

    return {"fwd": (fwd, (params, x)), "dx": (dx, (params, x, gy)),
            "dk": (dk, (params, x, gy))}  # fmt: skip


def _torch_products(case: Case, data: dict, gy: np.ndarray) -> tuple[dict, dict]:
    """``({product: fn}, {product: its result in conv1djax's layout})``."""
    cf = case.channels_first
    module = torch_bench.TorchConv(case, data["params"])
    x = torch_bench.to_torch(data["x"], cf).requires_grad_(True)
    g = torch_bench.to_torch(gy, cf)
    params = list(module.parameters())
    y = module(x)  # one graph, outside the timed region

    def fwd() -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    def dx() -> tuple:
        return torch.autograd.grad(y, [x], g, retain_graph=True)

    def dk() -> tuple:
        return torch.autograd.grad(y, params, g, retain_graph=True)

    def kernel_grads() -> dict:
        for p, grad in zip(params, dk(), strict=True):
            p.grad = grad
        return module.keras_grads()

    results = {
        "fwd": torch_bench.from_torch(fwd(), cf),
        "dx": torch_bench.from_torch(dx()[0], cf),
        "dk": kernel_grads(),
    }
    return {"fwd": fwd, "dx": dx, "dk": dk}, results


def _program_text(compiled: Any) -> str:
    """A compiled program's HLO without its metadata (source lines, names of
    the Python functions), to tell forms that compile alike."""
    return re.sub(r", metadata=\{[^}]*\}", "", compiled.as_text())


def _kernels(text: str) -> int:
    """The instructions of a compiled program's entry computation that run
    (fusions, convolutions, library calls, loops, copies): what XLA:CPU
    compiles and launches one by one."""
    entry = text[text.index("\nENTRY ") :]
    entry = entry[: entry.index("\n}")]
    ops = re.findall(r"^\s*(?:ROOT )?%\S+ = \S+ ([\w-]+)\(", entry, re.MULTILINE)
    return sum(op not in bench.NOT_KERNELS for op in ops)


def _compile(fn: Callable, args: tuple) -> tuple[Callable, Any, float]:
    """``(run, result, compile seconds)``, the program run once."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start

    def run() -> Any:
        return jax.block_until_ready(compiled(*args))

    return run, compiled, seconds


def forms(case: Case, data: dict, gy: np.ndarray) -> dict[str, dict]:
    """``{form: {"aliases": [...], "runs": {product: run}, "compile_s":
    {product: s}}}`` for ``"auto"``, ``"reference"`` and every core that
    accepts the layer; a core whose three programs compile to the same HLO
    as an earlier form's (it fell back to that form) is listed as that
    form's alias."""
    found: dict[str, dict] = {}
    seen: dict[tuple[str, ...], str] = {}
    for form in ("auto", "reference", *choose.CORES):
        try:
            spec = case.spec(form)
            products = _jax_products(spec, data["params"], data["x"], gy)
            compiled = {p: _compile(*fn_args) for p, fn_args in products.items()}
        except (ValueError, TypeError, NotImplementedError):
            continue
        texts = {p: _program_text(c) for p, (_, c, _) in compiled.items()}
        key = tuple(texts.values())
        if key in seen:
            found[seen[key]]["aliases"].append(form)
            continue
        seen[key] = form
        found[form] = {
            "aliases": [],
            "runs": {p: run for p, (run, _, _) in compiled.items()},
            "compile_s": {p: s for p, (_, _, s) in compiled.items()},
            "kernels": {p: _kernels(t) for p, t in texts.items()},
        }
    return found


def _one_call_ms(run: Callable) -> float:
    run()
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1e3


def prepare_case(
    case: Case, most: int
) -> tuple[dict, dict[str, torch_bench.Alternating]]:
    """Compiles every form of an entry and checks each product against
    PyTorch's: ``(result so far, {product: its timer})``."""
    data = make_data(case)
    y = jax.eval_shape(case.spec("reference").apply, data["params"], data["x"])
    gy = bench._normal(12, y.shape)
    theirs, their_results = _torch_products(case, data, gy)
    found = forms(case, data, gy)
    result: dict[str, Any] = {
        "case": case.describe(),
        "flops": case.flops(),
        "forms": {form: f["aliases"] for form, f in found.items()},
        "products": {},
    }
    timers = {}
    for product, label in PRODUCTS.items():
        diffs = {
            form: torch_bench.max_rel_diff(f["runs"][product](), their_results[product])
            for form, f in found.items()
        }
        for form, d in diffs.items():
            torch_bench._check(f"{case.name} {label} {form} vs torch", d)
        # Forms far slower than the fastest in one call each are not timed
        # further (the shift core's dense 2-D forward: seconds).
        probe = {form: _one_call_ms(f["runs"][product]) for form, f in found.items()}
        fastest = min(probe.values())
        timed = [f for f in found if f == "auto" or probe[f] <= PRUNE * fastest]
        # torch_bench.Alternating names conv1djax's peer "ours"; here it is
        # the "auto" form.
        runs = {
            ("ours" if f == "auto" else f): found[f]["runs"][product] for f in timed
        }
        runs["torch"] = theirs[product]
        timers[product] = torch_bench.Alternating(runs, most)
        result["products"][product] = {
            "one_call_ms": {f: probe[f] for f in found if f not in timed},
            "compile_s": {f: found[f]["compile_s"][product] for f in found},
            "kernels": {f: found[f]["kernels"][product] for f in found},
            "max_rel_diff_vs_torch": diffs,
        }
    return result, timers


def finish_case(result: dict, timers: dict[str, torch_bench.Alternating]) -> dict:
    for product, label in PRODUCTS.items():
        timing = timers[product].result()
        for key in ("ms", "ratio"):
            timing[key] = {
                ("auto" if k == "ours" else k): v for k, v in timing[key].items()
            }
        ms = timing["ms"]
        best = min((f for f in ms if f != "torch"), key=ms.__getitem__)
        result["products"][product].update(
            ms=ms,
            ratio=timing["ratio"],
            best=best,
            block=timing["block"],
            samples=timing["samples"],
        )
        cells = "  ".join(f"{f} {t:7.2f}" for f, t in ms.items())
        name = result["case"]["name"]
        print(f"  {name:24s} {label:16s} {cells}  (best: {best})", flush=True)
    return result


def markdown(results: dict) -> str:
    m, gemm = results["machine"], results["gemm"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores (torch "
        f"{results['torch_threads']} threads); {m['date']}; jax "
        f"{m['versions']['jax']}, torch {m['versions']['torch']}; "
        f"{results['rounds']} rounds of alternating blocks"
        f"{', spread over the run' if results.get('spread') else ''}.",
        "",
        f"GEMM: `jnp.dot` of two float32 {gemm[0]['n']}x{gemm[0]['n']} matrices, "
        + ", ".join(f"{g['gflops']:.1f}" for g in gemm)
        + " GFLOP/s (start, end of the run).",
        "",
        "Each product alone (the forward, the input gradient, the kernel "
        "gradient), median ms. `auto` is conv1djax's choice; `best` the "
        "fastest of every form conv1djax can run the layer in (`auto`, "
        "`reference` and each core that accepts it: all of them in the last "
        "column, where `a=b` are forms that compile to the same program); "
        "the ratio is PyTorch's time over that best form's (above "
        "1x: conv1djax's best is faster). GFLOP/s: the forward's useful "
        "FLOPs over the time.",
        "",
        "| entry | product | torch ms | auto ms | best form | best ms | "
        "torch / best | GFLOP/s best / torch | every form, ms |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for r in results["cases"]:
        totals = {"torch": 0.0, "auto": 0.0, "best": 0.0}
        for product, p in r["products"].items():
            ms, best = p["ms"], p["best"]
            totals["torch"] += ms["torch"]
            totals["auto"] += ms["auto"]
            totals["best"] += ms[best]
            every = ", ".join(
                [f"{'='.join([f, *r['forms'][f]])} {t:.2f}"
                 for f, t in ms.items() if f != "torch"]
                + [f"{'='.join([f, *r['forms'][f]])} ~{t:.0f} (one call)"
                   for f, t in p["one_call_ms"].items()]
            )  # fmt: skip
            lines.append(
                f"| {r['case']['name']} | {PRODUCTS[product]} | {ms['torch']:.2f} | "
                f"{ms['auto']:.2f} | {best} | {ms[best]:.2f} | "
                f"{ms['torch'] / ms[best]:.2f}x | "
                f"{r['flops'] / ms[best] / 1e6:.0f} / "
                f"{r['flops'] / ms['torch'] / 1e6:.0f} | {every} |"
            )
        lines.append(
            f"| {r['case']['name']} | **all three** | {totals['torch']:.2f} | "
            f"{totals['auto']:.2f} | | {totals['best']:.2f} | "
            f"**{totals['torch'] / totals['best']:.2f}x** | "
            f"{3 * r['flops'] / totals['best'] / 1e6:.0f} / "
            f"{3 * r['flops'] / totals['torch'] / 1e6:.0f} | |"
        )
    lines += [
        "",
        "Compile seconds (trace, lowering and XLA) of each product's program, "
        "and in brackets the kernels it launches (the entry computation's "
        "fusions, convolutions, library calls, loops and copies), "
        '`impl="auto"` against `impl="reference"`:',
        "",
        "| entry | forward | input gradient | kernel gradient |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results["cases"]:
        cells = []
        for p in r["products"].values():
            c, k = p["compile_s"], p["kernels"]
            ref = "reference" if "reference" in c else "auto"
            cells.append(f"{c['auto']:.2f} ({k['auto']}) / {c[ref]:.2f} ({k[ref]})")
        lines.append(f"| {r['case']['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = torch_bench.timing_parser(
        __doc__, "batch 1, a 512 GEMM, 2 rounds of 2 calls", 7, "suite entries"
    )
    known = [case.name for case in torch_bench.SUITE]
    args, rounds, most = torch_bench.parse_timing_args(parser, known, 7)
    gemm_n = 512 if args.quick else torch_bench.GEMM_N
    results: dict[str, Any] = {
        "machine": bench.machine(),
        "torch_threads": torch.get_num_threads(),
        "rounds": rounds,
        "spread": True,
        "quick": args.quick,
        "gemm": [torch_bench.bench_gemm(rounds, most, gemm_n)],
        "cases": [],
    }
    start = time.perf_counter()
    prepared = []
    for case in torch_bench.SUITE:
        if args.only and case.name not in args.only:
            continue
        if args.quick:
            case = dataclasses.replace(case, input_shape=(1, *case.input_shape[1:]))
        prepared.append(prepare_case(case, most))
    # Each product's rounds spread over the whole run (torch_bench.spread).
    torch_bench.spread([t for _, ts in prepared for t in ts.values()], rounds)
    results["cases"] = [finish_case(r, ts) for r, ts in prepared]
    results["gemm"].append(torch_bench.bench_gemm(rounds, most, gemm_n))
    results["seconds"] = time.perf_counter() - start
    torch_bench.write_results(args.out, "bounds", results, markdown(results))


if __name__ == "__main__":
    main()
