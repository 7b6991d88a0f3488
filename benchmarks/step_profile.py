"""Where each train step's time goes, in conv1djax and in PyTorch.

``torch_bench.py`` times its two train steps whole. Issue 19 asks, where a
target against PyTorch cannot be met, for the measured bound and what
limits it, from a profile. This splits each step three ways:

1. **Parts**, timed in alternating blocks (``torch_bench.Alternating``):
   the whole step; the loss's value and gradient alone; the optimizer
   alone (conv1djax: optax's Adam, jitted apart, given the gradients;
   PyTorch: ``optimizer.step()`` on the gradients of one backward).
2. **Convolutions**: each distinct convolution of the model (its layer and
   input shape), alone, forward + backward of an MSE as in
   ``torch_bench.py`` (checked equal to PyTorch's first), times how many
   times the model runs it. The rounds of these and of the parts are
   spread over one another (``torch_bench.spread``).
3. **Profiles** of the steps: XLA's trace of conv1djax's compiled step
   (``jax.profiler``, one event per executed HLO instruction; a loop
   counted whole), each instruction put in a kind by what it computes:
   convolutions and matrix products by product (forward; in the backward
   pass, the kernel gradient where the result has a kernel's size, else
   the input gradient), layout copies (transposes, pads, copies,
   concatenations, slices, with the unnamed copies XLA's layout
   assignment adds), elementwise and reductions, the optimizer (the rest:
   neither in the forward pass nor in its transpose). XLA:CPU runs
   independent instructions side by side, so their times add up to more
   than the step's; and an instruction whose work XLA:CPU hands to its
   thread pool and does not wait for (Eigen's convolutions) is counted
   for its hand-off only, so the busiest thread's instructions can fall
   far short of the step's wall time. PyTorch's profiler (``torch.profiler``, CPU) of its
   step: each operator's own time (without its children), convolutions
   forward and backward (``convolution_backward`` computes the input and
   kernel gradients together), the optimizer (anything under
   ``Optimizer.step``), the rest.

Writes ``steps.md`` and ``steps.json`` to ``--out``.

Run:  python benchmarks/step_profile.py [--rounds N] [--only MODEL ...]
          [--quick] [--out DIR]
"""

from __future__ import annotations

import os

os.sched_setaffinity(0, range(os.cpu_count() or 1))

import collections  # noqa: E402
import dataclasses  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (sets KERAS_BACKEND=jax before anything imports keras)
import jax  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch_bench  # noqa: E402
from bench import compile_jax  # noqa: E402

# The kinds of a profile's rows, in the order the report lists them.
JAX_KINDS = (
    "forward convolutions",
    "input-gradient convolutions",
    "kernel-gradient convolutions",
    "layout copies",
    "elementwise and reductions",
    "optimizer",
)
TORCH_KINDS = (
    "forward convolutions",
    "backward convolutions (input and kernel gradients)",
    "elementwise and other",
    "optimizer",
)
_LAYOUT = (
    "transpose", "copy", "pad", "concatenate", "slice", "reverse", "gather",
    "scatter", "dynamic-slice", "dynamic-update-slice", "reshape", "broadcast",
)  # fmt: skip
_PRODUCTS = ("convolution", "dot")


def _median_ms(run: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


# ---- conv1djax: the compiled step's instructions and XLA's trace ---------------


@dataclasses.dataclass(frozen=True)
class Instruction:
    opcode: str
    elements: int  # of its (first) result
    called: tuple[str, ...]  # the computations it runs
    op_name: str  # JAX's name scope


_INSTRUCTION = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+?) ([\w-]+)\((.*)$")


def parse_hlo(text: str) -> tuple[dict[str, dict[str, Instruction]], str]:
    """``({computation: {instruction: Instruction}}, entry computation)``
    of a compiled module's text."""
    computations: dict[str, dict[str, Instruction]] = {}
    current, entry = "", ""
    for line in text.splitlines():
        head = re.match(r"(ENTRY )?%([\w.\-]+) .*\{$", line)
        if head:
            current = head.group(2)
            computations[current] = {}
            entry = current if head.group(1) else entry
            continue
        m = _INSTRUCTION.match(line)
        if not (m and current):
            continue
        name, shape, opcode, rest = m.groups()
        dims = re.match(r"\(?\w+\[([\d,]*)\]", shape)
        sizes = dims.group(1).split(",") if dims and dims.group(1) else []
        called = re.findall(
            r"(?:calls|body|condition|to_apply|branch_computations)=\{?"
            r"((?:%[\w.\-]+(?:, )?)+)",
            rest,
        )
        names = tuple(
            c.strip().lstrip("%") for group in called for c in group.split(",")
        )
        scope = re.search(r'op_name="([^"]*)"', rest)
        computations[current][name] = Instruction(
            opcode,
            math.prod(int(s) for s in sizes),
            names,
            scope.group(1) if scope else "",
        )
    return computations, entry


def _opcodes(computations: dict, name: str, seen: set[str] | None = None) -> set[str]:
    """The opcodes of a computation and of those it calls."""
    seen = set() if seen is None else seen
    if name in seen or name not in computations:
        return set()
    seen.add(name)
    found = set()
    for ins in computations[name].values():
        found.add(ins.opcode)
        for callee in ins.called:
            found |= _opcodes(computations, callee, seen)
    return found


def _root_opcode(computations: dict, name: str) -> str:
    body = computations.get(name, {})
    return list(body.values())[-1].opcode if body else ""


def jax_kind(ins: Instruction, computations: dict, kernel_sizes: set[int]) -> str:
    """The kind (:data:`JAX_KINDS`) of one executed instruction."""
    inner = set()
    for callee in ins.called:
        inner |= _opcodes(computations, callee)
    backward = "transpose(" in ins.op_name
    forward = "jvp(" in ins.op_name and not backward
    if ins.opcode in _PRODUCTS or inner & set(_PRODUCTS):
        if not backward:
            return "forward convolutions"
        if ins.elements in kernel_sizes:
            return "kernel-gradient convolutions"
        return "input-gradient convolutions"
    root = (
        _root_opcode(computations, ins.called[0])
        if ins.opcode == "fusion" and ins.called
        else ins.opcode
    )
    if root in _LAYOUT:  # also the copies XLA's layout assignment adds, unnamed
        return "layout copies"
    return "elementwise and reductions" if forward or backward else "optimizer"


def jax_profile(compiled: Any, args: tuple, kernel_sizes: set[int], steps: int) -> dict:
    """Summed ms per step of the executed instructions of the ``compiled``
    step, by kind and by instruction (the ten longest), and the median wall
    ms of a step under the trace."""
    computations, entry = parse_hlo(compiled.as_text())
    top = computations[entry]
    for _ in range(2):
        jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as where:
        with jax.profiler.trace(where, create_perfetto_trace=True):
            wall_ms = _median_ms(lambda: jax.block_until_ready(compiled(*args)), steps)
        (trace,) = Path(where).rglob("perfetto_trace.json.gz")
        events = json.loads(gzip.decompress(trace.read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    by_kind: dict[str, float] = collections.defaultdict(float)
    by_op: dict[str, float] = collections.defaultdict(float)
    by_thread: dict[Any, float] = collections.defaultdict(float)
    for event in events:
        ins = top.get(event.get("name", ""))
        if event.get("ph") != "X" or ins is None or ins.opcode in bench.NOT_KERNELS:
            continue
        ms = event["dur"] / 1e3 / steps
        by_kind[jax_kind(ins, computations, kernel_sizes)] += ms
        by_op[event["name"]] += ms
        by_thread[event.get("tid")] += ms
    longest = sorted(by_op.items(), key=lambda kv: -kv[1])[:10]
    return {
        "wall_ms": wall_ms,
        "busiest_thread_ms": max(by_thread.values(), default=0.0),
        "kinds": {k: by_kind.get(k, 0.0) for k in JAX_KINDS},
        "longest": [
            {"name": n, "ms": ms, "kind": jax_kind(top[n], computations, kernel_sizes)}
            for n, ms in longest
        ],
    }


# ---- PyTorch: the profiler's operators ----------------------------------------


def torch_kind(event: Any) -> str:
    parent = event
    while parent is not None:
        if parent.name.startswith("Optimizer.step"):
            return "optimizer"
        parent = parent.cpu_parent
    name = event.name.lower()
    if "backward" in name and "convolution" in name:
        return "backward convolutions (input and kernel gradients)"
    if "conv" in name:
        return "forward convolutions"
    return "elementwise and other"


def torch_profile(step: Callable[[], Any], steps: int) -> dict:
    for _ in range(2):
        step()
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof:
        wall_ms = _median_ms(step, steps)
    by_kind: dict[str, float] = collections.defaultdict(float)
    by_op: dict[str, float] = collections.defaultdict(float)
    for event in prof.events():
        ms = event.self_cpu_time_total / 1e3 / steps
        by_kind[torch_kind(event)] += ms
        by_op[event.name] += ms
    longest = sorted(by_op.items(), key=lambda kv: -kv[1])[:10]
    return {
        "wall_ms": wall_ms,
        "kinds": {k: by_kind.get(k, 0.0) for k in TORCH_KINDS},
        "longest": [{"name": n, "ms": ms} for n, ms in longest],
    }


# ---- one model -----------------------------------------------------------------


def _distinct(cases: dict[str, bench.Case]) -> list[tuple[bench.Case, int]]:
    """Each distinct convolution (layer and input shape), with its count."""
    seen: dict[tuple[str, tuple[int, ...]], list[bench.Case]] = {}
    for case in cases.values():
        seen.setdefault((repr(case.layer), case.input_shape), []).append(case)
    return [(group[0], len(group)) for group in seen.values()]


def convolution_timers(
    data: torch_bench.TrainData, most: int
) -> list[tuple[dict, int, torch_bench.Alternating]]:
    """Each distinct convolution's forward + backward of an MSE, compiled and
    checked (``torch_bench.prepare_case``): ``(its result so far, its count,
    its timer)``."""
    rows = []
    for case, count in _distinct(data.cases):
        result, timers = torch_bench.prepare_case(case, most, "auto", ("fwdbwd",))
        rows.append((result, count, timers["fwdbwd"]))
    return rows


def parts_timer(
    data: torch_bench.TrainData,
    compiled_step: Any,
    args: tuple,
    loss_fn: Callable,
    most: int,
) -> torch_bench.Alternating:
    """The whole step (``compiled_step`` of ``args``), the loss's value and
    gradient, the optimizer alone."""
    params, opt_state, x, t = args

    def run_step() -> Any:
        return jax.block_until_ready(compiled_step(*args))

    run_grad, _, _ = compile_jax(jax.value_and_grad(loss_fn), (params, x, t))
    grads = run_grad()[1]

    def adam(params: Any, opt_state: Any, grads: Any) -> Any:
        updates, opt_state = torch_bench.OPTIMIZER.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    run_adam, _, _ = compile_jax(adam, (params, opt_state, grads))
    theirs = torch_bench.torch_train(data)
    theirs.loss()  # gradients for the optimizer alone
    runs = {
        "ours": run_step,
        "torch": theirs.step,
        "ours grad": run_grad,
        "torch grad": theirs.loss,
        "ours optimizer": run_adam,
        "torch optimizer": theirs.optimizer.step,
    }
    return torch_bench.Alternating(runs, most)


def bench_model(model: torch_bench.Model, rounds: int, most: int, steps: int) -> dict:
    """The parts and the convolutions, their rounds spread over one another
    (``torch_bench.spread``), then the two profiles."""
    print(f"  {model.name}", flush=True)
    data = torch_bench.train_data(model)
    step, args, _, loss_fn = torch_bench.jax_train_step(data, "auto")
    compiled_step = jax.jit(step).lower(*args).compile()
    parts = parts_timer(data, compiled_step, args, loss_fn, most)
    convolutions = convolution_timers(data, most)
    torch_bench.spread([parts, *(timer for *_, timer in convolutions)], rounds)
    timing = parts.result()
    rows = []
    for result, count, timer in convolutions:
        measured = timer.result()
        rows.append(
            {
                "name": result["case"]["name"],
                "case": result["case"],
                "count": count,
                "ms": measured["ms"],
                "ratio": measured["ratio"]["torch"],
            }
        )
    kernel_sizes = {w["kernel"].size for w in data.weights.values()}
    theirs = torch_bench.torch_train(data)
    return {
        "name": model.name,
        "input_shape": list(model.input_shape),
        "parts": {"ms": timing["ms"], "ratio": timing["ratio"]["torch"]},
        "convolutions": rows,
        "profile": {
            "ours": jax_profile(compiled_step, args, kernel_sizes, steps),
            "torch": torch_profile(theirs.step, steps),
        },
    }


# ---- report --------------------------------------------------------------------


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores (torch {results['torch_threads']} "
        f"threads); {m['date']}; jax {m['versions']['jax']}, torch "
        f"{m['versions']['torch']}; {results['rounds']} rounds of alternating "
        f"blocks, profiles over {results['steps']} steps"
        f"{' (--quick: batch scaled down)' if results['quick'] else ''}.",
        "",
    ]
    for r in results["models"]:
        ms = r["parts"]["ms"]
        lines += [
            f"## {r['name']}, input {tuple(r['input_shape'])}",
            "",
            "The step's parts, median ms (PyTorch's step over conv1djax's: "
            f"{r['parts']['ratio']:.2f}x):",
            "",
            "| part | conv1djax | PyTorch |",
            "| --- | ---: | ---: |",
        ]
        for part in ("", " grad", " optimizer"):
            label = {"": "whole step", " grad": "loss value and gradient",
                     " optimizer": "optimizer (Adam)"}[part]  # fmt: skip
            lines.append(
                f"| {label} | {ms['ours' + part]:.1f} | {ms['torch' + part]:.1f} |"
            )
        lines += [
            "",
            "Each distinct convolution alone, forward + backward of an MSE, "
            "median ms, times its count in the model:",
            "",
            "| convolution | input | count | conv1djax | PyTorch | PyTorch / "
            "conv1djax | conv1djax x count | PyTorch x count |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        total = {"ours": 0.0, "torch": 0.0}
        for c in r["convolutions"]:
            n = c["count"]
            for peer in total:
                total[peer] += n * c["ms"][peer]
            lines.append(
                f"| {c['name']} | {tuple(c['case']['input_shape'])} | {n} | "
                f"{c['ms']['ours']:.2f} | {c['ms']['torch']:.2f} | {c['ratio']:.2f}x | "
                f"{n * c['ms']['ours']:.1f} | {n * c['ms']['torch']:.1f} |"
            )
        lines += [
            f"| **sum** | | | | | **{total['torch'] / total['ours']:.2f}x** | "
            f"**{total['ours']:.1f}** | **{total['torch']:.1f}** |",
            "",
        ]
        for peer, label, kinds in (
            ("ours", "conv1djax: XLA's trace, instruction ms per step summed "
             "over threads (Eigen's convolutions count for their hand-off to "
             "the thread pool only)", JAX_KINDS),
            ("torch", "PyTorch: the profiler's own time per operator, ms per step",
             TORCH_KINDS),
        ):  # fmt: skip
            p = r["profile"][peer]
            summed = sum(p["kinds"].values())
            busiest = (
                f", its busiest thread's instructions {p['busiest_thread_ms']:.1f} ms"
                if "busiest_thread_ms" in p
                else ""
            )
            lines += [
                f"{label}; a profiled step's wall time {p['wall_ms']:.1f} ms{busiest}:",
                "",
                "| kind | ms | share |",
                "| --- | ---: | ---: |",
            ]
            for k in kinds:
                v = p["kinds"][k]
                lines.append(f"| {k} | {v:.1f} | {v / summed:.0%} |")
            lines += [
                f"| **sum** | **{summed:.1f}** | |",
                "",
                "Longest: "
                + ", ".join(f"`{o['name']}` {o['ms']:.1f}" for o in p["longest"][:6])
                + ".",
                "",
            ]
    return "\n".join(lines)


def main() -> None:
    parser = torch_bench.timing_parser(
        __doc__, "batch 2, 2 rounds of 2 calls, 2 steps", 7, "models"
    )
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per profile (default 5)")  # fmt: skip
    known = [model.name for model in torch_bench.MODELS]
    args, rounds, most = torch_bench.parse_timing_args(parser, known, 7)
    steps = args.steps or (2 if args.quick else 5)
    results: dict[str, Any] = {
        "machine": bench.machine(),
        "torch_threads": torch.get_num_threads(),
        "rounds": rounds,
        "steps": steps,
        "quick": args.quick,
        "models": [],
    }
    start = time.perf_counter()
    for model in torch_bench.MODELS:
        if args.only and model.name not in args.only:
            continue
        if args.quick:
            model = model.batch(2)
        results["models"].append(bench_model(model, rounds, most, steps))
    results["seconds"] = time.perf_counter() - start
    torch_bench.write_results(args.out, "steps", results, markdown(results))


if __name__ == "__main__":
    main()
