"""The benchmark charts, drawn from the results' JSON: no timing here.

``bench.py``, ``torch_bench.py`` and ``sweep.py`` call this module after a
run; ``python benchmarks/charts.py`` redraws every chart from the JSON files
stored in ``benchmarks/results/`` (``--dir`` for another folder). Only
matplotlib is needed (the ``bench`` extra has it).

The charts are laid out to be read at the documentation site's content
width (about 690 px in a 1280 px window): 6.9 inches at 100 px per inch, drawn at 200 dpi for
sharp text on dense screens, fonts of 10 to 12 points, at most a dozen bar
groups per chart. Each suite is split by rank:

- ``results_1d.png``, ``results_2d3d.png`` (``bench.py``): for each entry
  and pass, Keras 3's time over conv1djax's (bars), with Flax nnx and raw
  ``lax.conv_general_dilated`` as marks on each bar (the three JAX peers run
  nearly the same XLA program); the 1-D chart ends with the train step.
- ``torch_1d.png``, ``torch_2d3d.png`` (``torch_bench.py``): PyTorch's time
  over conv1djax's per entry and pass, and each rank's whole train step.
- ``sweep.png`` (``sweep.py``): ``impl="auto"`` against ``impl="reference"``,
  every ratio of the sweep as a point, one row per layer family and rank,
  coloured by program context.

Run:  python benchmarks/charts.py [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

WIDTH_IN = 6.9  # the site's content column at 1280 px, at 100 px per inch
DPI = 200
PASS_COLORS = {"fwd": "tab:blue", "fwdbwd": "tab:orange", "fwdbwd_tanh": "tab:green"}
PASS_LABELS = {
    "fwd": "forward",
    "fwdbwd": "fwd + bwd, MSE",
    "fwdbwd_tanh": "fwd + bwd, mean(tanh)",
}
TRAIN_COLOR = "tab:gray"
FINE_TICKS = (0.3, 0.4, 0.5, 0.7, 1, 1.5, 2, 3, 5)
COARSE_TICKS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
WIDE_TICKS = (0.3, 1, 3, 10, 30, 100, 300)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "legend.fontsize": 10.5,
        }
    )
    return plt


def _machine_text(machine: dict) -> str:
    cpu = re.sub(r"\s*\((?:R|TM)\)", "", machine["cpu"])
    cpu = re.sub(r"\s+Processor$", "", cpu)
    return f"{cpu}, {machine['cores']} cores, {machine['date']}"


def _rank(layer: str) -> int:
    return int(re.search(r"(\d)D", layer).group(1))


def _layer_text(case: dict) -> str:
    """``Conv1D(64, 3, groups=8)`` from a case's layer name and config."""
    config = case["config"]
    args = []
    if "filters" in config:
        args.append(str(config["filters"]))
    kernel = config["kernel_size"]
    args.append("x".join(map(str, kernel)))
    if max(config.get("strides", [1])) > 1:
        args.append(f"strides={config['strides'][0]}")
    if config.get("groups", 1) > 1:
        args.append(f"groups={config['groups']}")
    if config.get("data_format") == "channels_first":
        args.append("NCW")
    return f"{case['layer']}({', '.join(args)})"


def _ratio_axis(ax: Any, plt: Any, xlabel: str, lows: Iterable[float]) -> None:
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    values = list(lows)
    low, high = min(0.8, min(values) / 1.3), max(values)
    span = high / low
    ticks = FINE_TICKS if span < 12 else COARSE_TICKS if span < 120 else WIDE_TICKS
    ticks = [t for t in ticks if low <= t <= high * 1.2]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", which="major", alpha=0.35)
    ax.set_xlim(left=low)


def _finish(fig: Any, title: str, handles: list, ncol: int, fig_h: float) -> None:
    """The title at the figure's top left, the legend along its bottom."""
    fig.suptitle(title, x=0.015, ha="left", fontsize=12)
    legend_rows = math.ceil(len(handles) / ncol)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False)
    bottom = (0.12 + 0.25 * legend_rows) / fig_h
    fig.tight_layout(rect=(0, bottom, 1, 1))  # it leaves room for the title


def _grouped_bars(
    groups: Sequence[dict],
    title: str,
    xlabel: str,
    path: Path,
    marks: Sequence[tuple[str, str, str]] = (),
) -> Path:
    """One horizontal chart: a group of rows per entry, top to bottom.

    ``groups``: ``{"label": str, "bars": {pass key: ratio}, "marks":
    {mark key: {pass key: ratio}}}``; a group with the one pass key
    ``"train"`` is a whole train step (one gray bar). ``marks``: ``(key,
    legend label, marker style)`` drawn on each bar."""
    plt = _pyplot()
    passes = [p for p in PASS_COLORS if any(p in g["bars"] for g in groups)]
    height = 0.8 / max(len(passes), 1)  # train steps alone: no passes
    rows = len(groups)
    fig_h = 1.5 + 0.62 * rows * max(1.0, len(passes) / 3) + 0.35
    fig, ax = plt.subplots(figsize=(WIDTH_IN, fig_h))
    ys = list(range(rows))[::-1]
    values = []
    right = 1.0
    for y, g in zip(ys, groups, strict=True):
        if "train" in g["bars"]:
            slots = [("train", y, 0.8)]
        else:
            slots = [
                (p, y + (len(passes) - 1) / 2 * height - i * height, height)
                for i, p in enumerate(passes)
                if p in g["bars"]
            ]
        for key, yy, hh in slots:
            v = g["bars"][key]
            values.append(v)
            color = TRAIN_COLOR if key == "train" else PASS_COLORS[key]
            ax.barh(yy, v, hh * 0.92, color=color)
            end = v
            for mkey, _, style in marks:
                mv = g.get("marks", {}).get(mkey, {}).get(key)
                if mv is not None and not math.isnan(mv):
                    ax.plot(mv, yy, style, color="k", ms=6)
                    end = max(end, mv)
                    values.append(mv)
            ax.annotate(
                f"{v:.1f}x" if v >= 10 else f"{v:.2f}x",
                (end, yy),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=10,
                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none"},
            )
            right = max(right, end)
    ax.set_yticks(ys, [g["label"] for g in groups])
    ax.set_ylim(-0.6, rows - 0.4)
    _ratio_axis(ax, plt, xlabel, values)
    ax.set_xlim(right=right * (1.45 if right < 10 else 1.7))
    handles = [
        plt.matplotlib.patches.Patch(color=PASS_COLORS[p], label=PASS_LABELS[p])
        for p in passes
    ]
    if any("train" in g["bars"] for g in groups):
        handles.append(
            plt.matplotlib.patches.Patch(color=TRAIN_COLOR, label="train step")
        )
    for _, label, style in marks:
        handles.append(
            plt.matplotlib.lines.Line2D(
                [], [], linestyle="", marker=style[0], color="k", label=label
            )
        )
    _finish(fig, title, handles, 3, fig_h)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _by_rank_charts(
    by_rank: dict[str, list[dict]],
    title: str,
    where: str,
    xlabel: str,
    out: Path,
    stem: str,
    marks: Sequence[tuple[str, str, str]] = (),
) -> list[Path]:
    """One chart per rank group that has entries: ``<stem>_1d.png`` and
    ``<stem>_2d3d.png``."""
    paths = []
    for key, what in (("1d", "1-D layers"), ("2d3d", "2-D and 3-D layers")):
        if by_rank[key]:
            chart_title = f"{title}: {what}\n{where}"
            path = out / f"{stem}_{key}.png"
            paths.append(_grouped_bars(by_rank[key], chart_title, xlabel, path, marks))
    return paths


def bench_charts(results: dict, out: Path) -> list[Path]:
    """``bench.py``'s suite against Keras 3, Flax nnx and lax, by rank:
    ``results_1d.png`` (with the train step) and ``results_2d3d.png``."""
    out.mkdir(parents=True, exist_ok=True)
    by_rank: dict[str, list[dict]] = {"1d": [], "2d3d": []}
    for r in results["cases"]:
        case = r["case"]
        name = case["name"]
        rank = _rank(case["layer"])
        if rank == 1 and not name.startswith("1-D"):
            name = f"1-D {name}"
        group = {
            "label": f"{name}\n{_layer_text(case)}",
            "bars": {p: r[p]["ratio"]["keras"] for p in PASS_COLORS if p in r},
            "marks": {
                peer: {p: r[p]["ratio"].get(peer, math.nan) for p in PASS_COLORS}
                for peer in ("flax", "lax")
            },
        }
        by_rank["1d" if rank == 1 else "2d3d"].append(group)
    train = results.get("train")
    if train and "keras" in train["ratio"]:
        by_rank["1d"].append(
            {
                "label": "train step\n1-D autoencoder + Adam",
                "bars": {"train": train["ratio"]["keras"]},
                "marks": {
                    peer: {"train": train["ratio"].get(peer, math.nan)}
                    for peer in ("flax", "lax")
                },
            }
        )
    where = _machine_text(results["machine"])
    xlabel = "Keras time / conv1djax time (log scale)\nright of 1x: conv1djax faster"
    marks = [("flax", "Flax nnx", "D"), ("lax", "raw lax", "o")]
    return _by_rank_charts(
        by_rank,
        "conv1djax against Keras 3 on JAX",
        where,
        xlabel,
        out,
        "results",
        marks,
    )


def torch_charts(results: dict, out: Path) -> list[Path]:
    """``torch_bench.py``'s suite and train steps against PyTorch, by rank:
    ``torch_1d.png`` and ``torch_2d3d.png``."""
    out.mkdir(parents=True, exist_ok=True)
    by_rank: dict[str, list[dict]] = {"1d": [], "2d3d": []}
    for r in results["cases"]:
        case = r["case"]
        group = {
            "label": f"{case['name']}\n{_layer_text(case)}",
            "bars": {p: r[p]["ratio"]["torch"] for p in PASS_COLORS if p in r},
        }
        by_rank["1d" if _rank(case["layer"]) == 1 else "2d3d"].append(group)
    for m in results.get("models", []):
        rank = len(m["input_shape"]) - 2
        by_rank["1d" if rank == 1 else "2d3d"].append(
            {
                "label": f"{m['name']}\ntrain step (MSE + Adam)",
                "bars": {"train": m["ratio"]["torch"]},
            }
        )
    machine = results["machine"]
    torch_version = machine["versions"].get("torch", "").split("+")[0]
    where = _machine_text(machine)
    xlabel = "PyTorch time / conv1djax time (log scale)\nright of 1x: conv1djax faster"
    title = f"conv1djax against PyTorch {torch_version} (CPU)"
    return _by_rank_charts(by_rank, title, where, xlabel, out, "torch")


SWEEP_CONTEXTS = {
    "fwd": ("forward", "tab:blue", "o"),
    "sumsq": ("grad of sum(y**2)", "tab:orange", "s"),
    "mse": ("value and grad of MSE", "tab:green", "^"),
    "model": ("train step (+ gelu, 1x1, Adam)", "tab:purple", "D"),
}
SWEEP_FAMILIES = {
    "conv": "Conv{r}D, grouped or long",
    "depthwise": "Depthwise{r}D",
    "separable": "Separable{r}D",
    "transpose": "Conv{r}DTranspose",
}


def _sweep_rank(label: str) -> int:
    m = re.match(r"[A-Za-z]+(\d)D", label) or re.search(r"(\d)-D ", label)
    return int(m.group(1)) if m else 1  # the suite's 1-D rows have no prefix


def sweep_chart(data: dict, out: Path, target: float = 0.95) -> Path:
    """``sweep.py``'s ratios (reference time / auto time), one row per layer
    family and rank: ``sweep.png``."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple, list[dict]] = {}
    for r in data["rows"]:
        if r["family"] == "conv" and r["dense"]:
            key = (0, 0, "Conv1D/2D/3D, dense")
        else:
            rank = _sweep_rank(r["label"])
            family = list(SWEEP_FAMILIES).index(r["family"]) + 1
            key = (family, rank, SWEEP_FAMILIES[r["family"]].format(r=rank))
        rows.setdefault(key, []).append(r)
    keys = sorted(rows)
    fig_h = 1.9 + 0.5 * len(keys)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, fig_h))
    ys = list(range(len(keys)))[::-1]
    lane = 0.8 / len(SWEEP_CONTEXTS)
    values = []
    labels = []
    for y, key in zip(ys, keys, strict=True):
        configs = rows[key]
        labels.append(f"{key[2]} ({len(configs)})")
        ratios = []
        for i, (context, (_, color, marker)) in enumerate(SWEEP_CONTEXTS.items()):
            yy = y + 0.3 - i * lane
            timed = [
                r["contexts"][context]["ratio"]
                for r in configs
                if context in r["contexts"]
                and not r["contexts"][context]["same_program"]
            ]
            same = sum(
                1
                for r in configs
                if context in r["contexts"] and r["contexts"][context]["same_program"]
            )
            ratios += timed + [1.0] * same
            values += timed
            ax.scatter(
                timed, [yy] * len(timed), s=22, color=color, marker=marker, alpha=0.75
            )
            if same:
                ax.scatter([1.0], [yy], s=40, facecolors="none", edgecolors="0.4")
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        ax.text(1.02, y, f"{gm:.1f}x", transform=ax.get_yaxis_transform(), va="center")
    ax.text(
        1.02,
        -0.7,
        "geo.\nmean",
        transform=ax.get_yaxis_transform(),
        va="top",
        fontsize=10,
    )
    ax.axvline(target, color="tab:red", lw=1, ls="--")
    ax.set_yticks(ys, labels)
    ax.set_ylim(-0.6, len(keys) - 0.4)
    for y in ys[:-1]:
        ax.axhline(y - 0.5, color="0.85", lw=0.6)
    _ratio_axis(
        ax,
        plt,
        'reference time / auto time (log scale)\nright of 1x: impl="auto" faster',
        values,
    )
    handles = [
        plt.matplotlib.lines.Line2D(
            [], [], linestyle="", marker=m, color=c, label=label
        )
        for label, c, m in SWEEP_CONTEXTS.values()
    ]
    handles.append(
        plt.matplotlib.lines.Line2D(
            [],
            [],
            linestyle="",
            marker="o",
            markerfacecolor="none",
            markeredgecolor="0.4",
            label="same program (1x, not timed)",
        )
    )
    handles.append(
        plt.matplotlib.lines.Line2D(
            [], [], color="tab:red", ls="--", label=f"{target}x threshold"
        )
    )
    header = data.get("header", "")
    when = re.sub(r"; seed.*", "", header).replace(", cpu", "")
    s = data.get("summary", {})
    _finish(
        fig,
        'impl="auto" against the plain path, impl="reference"\n'
        f"{s.get('measurements', '?')} ratios of {s.get('configurations', '?')}"
        f" layers (per row in parentheses)\n{when}",
        handles,
        2,
        fig_h,
    )
    path = out / "sweep.png"
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    paths = []
    drawers = (
        ("results.json", bench_charts),
        ("torch.json", torch_charts),
        ("sweep.json", sweep_chart),
    )
    for name, draw in drawers:
        source = args.dir / name
        if source.exists():
            written = draw(json.loads(source.read_text()), args.dir)
            paths += written if isinstance(written, list) else [written]
    for path in paths:
        print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    main()
