"""Forecast time series with a WaveNet-style network of dilated causal convolutions.

The second flagship conv1djax example. Synthetic series (each a sum of two
or three sinusoids of random period, amplitude and phase, plus an AR(1)
process and observation noise) are generated with NumPy. From a window of
past values the model forecasts the next ``HORIZON`` values at once. The
model is WaveNet's residual stack: a causal ``Conv1D`` stem; gated units
(``cj.Parallel`` of a tanh and a sigmoid dilated causal convolution,
multiplied) with dilations 1, 2, 4, ..., each block a ``cj.Residual``; skip
connections summed over the blocks by ``SkipSum``, a composite layer defined
here, in the example, on conv1djax's layer protocol; a relu / 1x1 / relu /
1x1 head; and a ``cj.Lambda`` keeping the last time step, the forecast.

An L2 kernel regularizer on every gated convolution, a MaxNorm kernel
constraint on every 1x1 convolution of the blocks and an L1 activity
regularizer on the summed skips sit inside the composites. It trains with
optax's Adam on a warmup-cosine schedule through ``cj.make_train_step``, on
every step of longer windows at once, as WaveNet does. It prints the model
summary, shows a progress bar, prints the penalties from
``cj.make_eval_step``, checks the constraint on every constrained kernel at
every depth, compares the held-out error with two baselines (persistence of
the last value; a linear autoregression fitted by least squares) and saves a
plot (the loss curve and held-out forecasts) to
``<out>/wavenet_forecast.png``. About a minute on 2 CPU cores.

Needs matplotlib and tqdm (``pip install '.[examples]'``).

Run:  python examples/wavenet_forecast.py [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import conv1djax as cj

HORIZON = 8  # values forecast at once
SERIES_LENGTH = 512  # steps per generated series
NOISE = 0.1  # standard deviation of the observation noise
MAX_NORM = 1.0  # the MaxNorm kernel constraint's cap (see build_model)
TRAIN_POSITIONS = 32  # forecast origins per training window (see train)
EVAL_CHUNK = 512  # windows per evaluation call (one compiled shape)


# ---- data ------------------------------------------------------------------


def make_series(n, seed, length=SERIES_LENGTH, noise=NOISE):
    """``n`` series ``(n, length)`` and what no forecaster can know of them.

    A series is a sum of 2 or 3 sinusoids (periods 6 to 48 steps,
    log-uniform; amplitudes 0.3 to 1; random phases), an AR(1) process
    ``a[t] = phi a[t-1] + e[t]`` (``phi`` 0.8 to 0.98, stationary std 0.3)
    and i.i.d. Gaussian noise of std ``noise``.

    Returns ``(series, floor)``; ``floor`` ``(n, HORIZON)`` is the variance,
    ``h`` steps ahead, of the future noise and AR shocks: a lower bound on
    any forecaster's MSE (one that knew the sinusoids and the AR state).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    series = np.zeros((n, length))
    n_waves = rng.integers(2, 4, size=n)
    for k in range(3):
        on = (k < n_waves)[:, None]
        period = np.exp(rng.uniform(np.log(6.0), np.log(48.0), size=(n, 1)))
        amp = rng.uniform(0.3, 1.0, size=(n, 1))
        phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        series += on * amp * np.sin(2 * np.pi * t / period + phase)
    phi = rng.uniform(0.8, 0.98, size=(n, 1))
    shock = 0.3 * np.sqrt(1 - phi**2)  # the innovation std for a std of 0.3
    ar = np.zeros((n, length))
    ar[:, 0] = 0.3 * rng.normal(size=n)
    shocks = shock * rng.normal(size=(n, length))
    for i in range(1, length):
        ar[:, i] = phi[:, 0] * ar[:, i - 1] + shocks[:, i]
    series += ar + noise * rng.normal(size=(n, length))
    h = np.arange(1, HORIZON + 1)
    floor = noise**2 + shock**2 * (1 - phi ** (2 * h)) / (1 - phi**2)
    return series.astype(np.float32), floor


def windows(series, rows, starts, length, positions=1):
    """Inputs and targets from ``series[rows]`` at ``starts``.

    Returns ``x`` ``(m, length, 1)``, the ``length`` values from ``starts``,
    and ``y`` ``(m, positions, HORIZON)``: for each of the last ``positions``
    steps of ``x``, the ``HORIZON`` values that follow it.
    """
    chunk = series[rows[:, None], starts[:, None] + np.arange(length + HORIZON)]
    origins = np.arange(length - positions, length)
    ahead = origins[:, None] + 1 + np.arange(HORIZON)
    return chunk[:, :length, None], chunk[:, ahead]


def sample_windows(series, m, length, rng, positions=1):
    """``windows`` at ``m`` random series and random positions."""
    rows = rng.integers(0, len(series), size=m)
    starts = rng.integers(0, series.shape[1] - length - HORIZON + 1, size=m)
    return windows(series, rows, starts, length, positions)


# ---- the model -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SkipSum(cj.Layer):
    """WaveNet's skip connections: runs ``blocks`` in turn and returns the
    sum of their skip outputs. A composite layer on conv1djax's protocol.

    Each block maps the residual stream ``x`` (``channels`` channels) to
    ``[next x | skip]``, concatenated on the channel axis: the first
    ``channels`` channels go on to the next block, the rest are the block's
    skip output.

    What the protocol asks of a composite (``conv1djax/protocol.py``):

    - ``sublayers()`` declares each sub-layer under the key where its params
      live (here ``params["block_0"]``, ...). Training walks it, at any
      depth, for the regularizers and constraints inside the blocks (a
      layer that held regularized layers without declaring them would be
      refused, not silently trained without them).
    - ``apply(params, x, *, call=cj.call_layer)`` runs each sub-layer as
      ``call(sub, params[key], x)``. Training passes its own ``call``, which
      collects the sub-layers' activity penalties; anything else gets
      ``cj.call_layer``, a plain ``sub.apply(params, x)``.
    - ``init`` and ``compute_output_shape``, as any layer has. Subclassing
      ``cj.Layer`` adds a ``name``, ``count_params`` and registration as a
      static pytree; a summary finds the blocks' input shapes by abstract
      evaluation through ``call``.
    """

    blocks: tuple
    channels: int

    def sublayers(self):
        return {f"block_{i}": block for i, block in enumerate(self.blocks)}

    def init(self, key, input_shape, *, dtype=jnp.float32):
        # Every block sees the residual stream: the input's shape.
        keys = jax.random.split(key, len(self.blocks))
        return {
            name: block.init(k, input_shape, dtype=dtype)
            for k, (name, block) in zip(keys, self.sublayers().items(), strict=True)
        }

    def apply(self, params, x, *, call=cj.call_layer):
        skips = 0.0
        for name, block in self.sublayers().items():
            y = call(block, params[name], x)
            x, skip = y[..., : self.channels], y[..., self.channels :]
            skips = skips + skip
        return skips

    def compute_output_shape(self, input_shape):
        *batch_and_steps, both = self.blocks[0].compute_output_shape(input_shape)
        return (*batch_and_steps, both - self.channels)


def zero_channels(x, extra):
    """``x`` with ``extra`` zero channels appended."""
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, extra)])


def last_steps(x, n=1):
    """``(..., steps, features)`` -> ``(..., n, features)``: the last ``n``."""
    return x[..., -n:, :]


def build_model(channels=32, skip_channels=32, num_blocks=6, l2=1e-4, activity_l1=1e-5):
    """The forecaster: a causal stem, ``num_blocks`` gated residual blocks
    with dilations 1, 2, 4, ..., their skips summed, a 1x1 head and the
    last step. ``(batch, steps, 1)`` -> ``(batch, 1, HORIZON)``.

    Block ``i`` (dilation ``d = 2**i``) on the residual stream ``x``::

        z = tanh(filter_d(x)) * sigmoid(gate_d(x))   # the gated unit
        out = [x + res(z) | skip(z)]                  # res, skip: 1x1 convs

    is one ``cj.Residual``: its inner path is the gated unit, then both 1x1
    convolutions side by side (``cj.Parallel``, concatenated); its shortcut
    appends zero channels to ``x`` (ResNet's zero-padding identity
    shortcut), so the sum is ``x + res(z)`` in the first ``channels``
    channels and ``skip(z)`` in the rest, which ``SkipSum`` splits.

    The gated convolutions have an L2 kernel regularizer, the 1x1
    convolutions of the blocks a MaxNorm kernel constraint, and the relu of
    the summed skips an L1 activity regularizer.
    """
    l2_penalty = cj.regularizers.L2(l2)
    # axis=(0, 1): one norm per output filter of a (1, in, out) kernel.
    norm = cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1))
    blocks = []
    for i in range(num_blocks):
        d = 2**i
        causal = dict(
            kernel_size=2,
            dilation_rate=d,
            padding="causal",
            kernel_regularizer=l2_penalty,
        )
        gated = cj.Parallel(
            [
                cj.Conv1D(channels, activation="tanh", name=f"filter_d{d}", **causal),
                cj.Conv1D(channels, activation="sigmoid", name=f"gate_d{d}", **causal),
            ],
            merge="multiply",
            name=f"gated_d{d}",
        )
        res_and_skip = cj.Parallel(
            [
                cj.Conv1D(channels, 1, kernel_constraint=norm, name=f"res_d{d}"),
                cj.Conv1D(skip_channels, 1, kernel_constraint=norm, name=f"skip_d{d}"),
            ],
            merge="concat",
            name=f"res_skip_d{d}",
        )
        pad = functools.partial(zero_channels, extra=skip_channels)
        blocks.append(
            cj.Residual(
                cj.Sequential([gated, res_and_skip], name=f"inner_d{d}"),
                shortcut=cj.Lambda(pad, name=f"zero_pad_d{d}"),
                name=f"block_d{d}",
            )
        )
    return cj.Sequential(
        [
            cj.Conv1D(channels, 2, padding="causal", name="stem"),
            SkipSum(tuple(blocks), channels, name="skip_sum"),
            cj.Activation(
                "relu",
                activity_regularizer=cj.regularizers.L1(activity_l1),
                name="skip_relu",
            ),
            cj.Conv1D(skip_channels, 1, activation="relu", name="head"),
            cj.Conv1D(HORIZON, 1, name="forecast"),
            # Causal padding keeps every step's output from seeing the
            # future, so every step holds a forecast; keep the last one.
            cj.Lambda(last_steps, name="last_step"),
        ]
    )


def for_training(model, positions):
    """The same network keeping the last ``positions`` steps' forecasts, so
    one training window teaches ``positions`` forecasts (WaveNet's parallel
    training). It takes the same params: only the parameter-free last layer
    changes."""
    keep = cj.Lambda(functools.partial(last_steps, n=positions), name="last_steps")
    return cj.Sequential([*model.layers[:-1], keep])


def receptive_field(num_blocks):
    """Steps of the past the last output sees: 2 (the stem) + 1 + 2 + 4 ..."""
    return 2 + sum(2**i for i in range(num_blocks))


# ---- baselines -------------------------------------------------------------


def persistence(x):
    """The last value, forecast for every horizon: ``(m, 1, HORIZON)``."""
    return np.repeat(x[:, -1:, :], HORIZON, axis=2)


def fit_linear_ar(x, y):
    """A linear autoregression on the whole window (and a constant), fitted
    by least squares, one coefficient vector per horizon (one model for all
    series); returns its forecast function."""

    def design(x):
        return np.concatenate([x[..., 0], np.ones((len(x), 1))], axis=1)

    coef, *_ = np.linalg.lstsq(design(x).astype(np.float64), y[:, 0], rcond=None)
    return lambda x: (design(x) @ coef).astype(np.float32)[:, None, :]


# ---- training --------------------------------------------------------------


def mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def evaluate(eval_step, params, x, y):
    """Mean of ``eval_step``'s outputs over the set, in equal chunks."""
    totals = {}
    n_chunks = len(x) // EVAL_CHUNK
    for i in range(n_chunks):
        part = slice(i * EVAL_CHUNK, (i + 1) * EVAL_CHUNK)
        out = eval_step(params, x[part], y[part])
        for name, value in out.items():
            totals[name] = totals.get(name, 0.0) + float(value) / n_chunks
    return totals


def train(model, params, series, heldout, *, steps, batch_size, lr, seed, progress):
    """Adam with a warmup-cosine schedule; returns params and the history.

    Each step draws ``batch_size`` windows of ``TRAIN_POSITIONS - 1`` more
    steps than the receptive field and fits the forecasts of their last
    ``TRAIN_POSITIONS`` steps (each with a full receptive field of past).
    """
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=max(steps // 20, 1),
        decay_steps=steps,
        end_value=lr / 50,
    )
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    train_step = cj.make_train_step(
        for_training(model, TRAIN_POSITIONS), optimizer, mse
    )
    eval_step = cj.make_eval_step(model, mse)
    h_x, h_y = heldout
    length = h_x.shape[1] + TRAIN_POSITIONS - 1
    rng = np.random.default_rng(seed + 1)
    eval_every = max(steps // 20, 1)
    losses = []
    start = time.perf_counter()
    evals = [(0, evaluate(eval_step, params, h_x, h_y)["task_loss"])]
    with tqdm(total=steps, desc="training", disable=not progress, unit="step") as bar:
        for i in range(steps):
            x, y = sample_windows(series, batch_size, length, rng, TRAIN_POSITIONS)
            params, opt_state, loss = train_step(params, opt_state, x, y)
            losses.append(loss)
            if i == 0:
                loss.block_until_ready()
                compiled = time.perf_counter()
            if (i + 1) % eval_every == 0 or i == steps - 1:
                held = evaluate(eval_step, params, h_x, h_y)["task_loss"]
                evals.append((i + 1, held))
                bar.set_postfix(
                    {"loss": f"{float(loss):.4f}", "held-out": f"{held:.4f}"}
                )
            bar.update(1)
    jax.block_until_ready(params)
    end = time.perf_counter()
    history = {
        "loss": np.asarray(jax.device_get(losses)),
        "heldout": evals,
        "time": end - start,
        "compile": compiled - start,
        "steps_per_s": (steps - 1) / (end - compiled) if steps > 1 else math.nan,
    }
    return params, history


def constrained_norms(model, params):
    """``{params path: norms}`` of every kernel under a MaxNorm constraint,
    at every depth (``cj.protocol.walk`` visits every layer with its own
    weights and their path in ``params``)."""
    found = {}
    for layer, own, path in cj.protocol.walk(model, params):
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, cj.constraints.MaxNorm):
            k = np.asarray(own["kernel"], np.float64)
            found[path] = np.sqrt(np.sum(k**2, axis=constraint.axis)).ravel()
    return found


# ---- plotting --------------------------------------------------------------


def ema(values, decay=0.98):
    """Exponential moving average, debiased like Adam's (no lag at the start)."""
    out, acc = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        acc = decay * acc + (1 - decay) * v
        out[i] = acc / (1 - decay ** (i + 1))
    return out


FORECASTERS = (  # name, color, line style, width
    ("persistence", "gray", "--", 1.0),
    ("linear AR", "tab:green", "-", 1.0),
    ("WaveNet", "tab:red", "-", 1.8),
)


def plot(history, levels, stretch, path):
    """Saves the loss curve (with the baselines' held-out MSE) and a
    held-out stretch forecast ``HORIZON`` steps at a time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(
        1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1, 1.6]}
    )
    steps = np.arange(1, len(history["loss"]) + 1)
    ax0.plot(steps, history["loss"], color="tab:blue", alpha=0.35, lw=0.8)
    ax0.plot(
        steps,
        ema(history["loss"]),
        color="tab:blue",
        label="train objective (MSE + penalties)",
    )
    at, held = zip(*history["heldout"], strict=True)
    ax0.plot(at, held, "o-", color="tab:red", ms=4, label="held-out MSE")
    styles = {
        "persistence": dict(color="gray", ls="--"),
        "linear AR": dict(color="tab:green", ls="--"),
        "lower bound": dict(color="black", ls=":"),
    }
    for name, value in levels.items():
        ax0.axhline(value, label=f"{name}, held-out ({value:.3f})", **styles[name])
    ax0.set_yscale("log")
    ax0.set_xlabel("step")
    ax0.set_ylabel(f"MSE, 1 to {HORIZON} steps ahead (log scale)")
    ax0.set_title("Training loss")
    ax0.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 0.06))

    t, truth, origins, forecasts = stretch
    ax1.plot(t, truth, color="black", lw=1.4, label="series")
    for origin in origins:
        ax1.axvline(origin, color="0.85", lw=0.6, zorder=0)
    for name, color, ls, lw in FORECASTERS:
        for j, origin in enumerate(origins):
            ax1.plot(
                origin + np.arange(1, HORIZON + 1),
                forecasts[name][j, 0],
                color=color,
                ls=ls,
                lw=lw,
                label=f"{name} forecast" if j == 0 else None,
            )
    ax1.set_xlabel("time step")
    ax1.set_title(
        f"A held-out series, forecast {HORIZON} steps at a time from the past "
        "only (grid: forecast origins)"
    )
    low, high = ax1.get_ylim()
    ax1.set_ylim(low, high + 0.25 * (high - low))  # room for the legend
    ax1.legend(loc="upper center", ncol=4, fontsize=8)
    fig.suptitle(
        "conv1djax: WaveNet-style forecaster (gated dilated causal convolutions)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main ------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1400, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, default=32, help="residual channels")
    parser.add_argument(
        "--blocks", type=int, default=6, help="gated blocks (dilations 1, 2, 4, ...)"
    )
    parser.add_argument("--train-size", type=int, default=1024, help="training series")
    parser.add_argument(
        "--heldout-size",
        type=int,
        default=1024,
        help="held-out series (one forecast each)",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="PNG folder")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "channels", "blocks", "train_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    longest = receptive_field(args.blocks) + TRAIN_POSITIONS - 1 + HORIZON
    if longest > SERIES_LENGTH:
        parser.error(
            f"--blocks {args.blocks} needs windows longer than the "
            f"{SERIES_LENGTH}-step series"
        )
    if args.heldout_size < EVAL_CHUNK or args.heldout_size % EVAL_CHUNK:
        parser.error(f"--heldout-size must be a positive multiple of {EVAL_CHUNK}")
    return args


def main(argv=None):
    """Runs the example; returns the final metrics as a dict."""
    args = parse_args(argv)
    start = time.perf_counter()
    window = receptive_field(args.blocks)
    series, _ = make_series(args.train_size, seed=args.seed)
    h_series, h_floor = make_series(args.heldout_size, seed=args.seed + 10_000)
    rng = np.random.default_rng(args.seed + 2)
    # One held-out forecast per held-out series, at a random position; as
    # many training windows for the train-set error, more for the AR fit.
    h_starts = rng.integers(0, SERIES_LENGTH - window - HORIZON + 1, args.heldout_size)
    heldout = windows(h_series, np.arange(args.heldout_size), h_starts, window)
    train_eval = sample_windows(series, args.heldout_size, window, rng)
    linear_ar = fit_linear_ar(*sample_windows(series, 8192, window, rng))

    model = build_model(channels=args.channels, num_blocks=args.blocks)
    input_shape = (None, window, 1)
    model.summary(input_shape)
    print(
        f"receptive field {window} steps: the model sees the last {window} "
        f"values and forecasts the next {HORIZON}"
    )
    params = model.init(jax.random.key(args.seed), input_shape)

    params, history = train(
        model,
        params,
        series,
        heldout,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )

    forecast = jax.jit(model.apply)
    eval_step = cj.make_eval_step(model, mse)
    results = {}
    for name, (x, y) in (("train", train_eval), ("held-out", heldout)):
        metrics = evaluate(eval_step, params, x, y)
        results[name] = {
            "wavenet": metrics["task_loss"],
            "persistence": float(np.mean((persistence(x) - y) ** 2)),
            "linear_ar": float(np.mean((linear_ar(x) - y) ** 2)),
            "regularization": metrics["regularization_loss"],
            "activity": metrics["activity_loss"],
        }
    h_x, h_y = heldout
    predicted = {
        "WaveNet": np.concatenate(
            [
                np.asarray(forecast(params, h_x[i : i + EVAL_CHUNK]))
                for i in range(0, len(h_x), EVAL_CHUNK)
            ]
        ),
        "persistence": persistence(h_x),
        "linear AR": linear_ar(h_x),
    }
    by_horizon = {
        name: np.mean((p - h_y) ** 2, axis=(0, 1)) for name, p in predicted.items()
    }
    r = results["held-out"]
    r["lower_bound"] = float(np.mean(h_floor))
    print(
        f"trained {args.steps} steps (batch {args.batch_size} windows x "
        f"{TRAIN_POSITIONS} forecasts) in {history['time']:.1f} s "
        f"({history['compile']:.1f} s compiling); "
        f"{history['steps_per_s']:.0f} steps/s after compiling"
    )
    print(f"MSE of the forecasts 1 to {HORIZON} steps ahead:")
    for name, m in results.items():
        print(
            f"  {name + ':':<9} WaveNet {m['wavenet']:.4f}; persistence "
            f"{m['persistence']:.4f} ({m['persistence'] / m['wavenet']:.1f}x the "
            f"WaveNet's), linear AR {m['linear_ar']:.4f} "
            f"({m['linear_ar'] / m['wavenet']:.1f}x)"
        )
    print(
        f"  held-out lower bound (future noise and AR shocks): {r['lower_bound']:.4f}"
    )
    for h in (0, HORIZON - 1):
        print(
            f"  held-out, {h + 1} step{'s' if h else ''} ahead: "
            + ", ".join(f"{name} {e[h]:.4f}" for name, e in by_horizon.items())
        )
    print(
        f"penalties (held-out): L2 kernel {r['regularization']:.5f}, "
        f"L1 activity {r['activity']:.5f}"
    )
    norms = constrained_norms(model, params)
    every = np.concatenate(list(norms.values()))
    worst = float(every.max())
    holds = all(float(n.max()) <= MAX_NORM * (1 + 1e-6) for n in norms.values())
    at_cap = int(np.sum(every >= MAX_NORM * (1 - 1e-4)))
    print(
        f"MaxNorm({MAX_NORM}) on {len(norms)} kernels in {args.blocks} blocks: "
        f"largest norm {worst:.4f} ({'holds' if holds else 'VIOLATED'}; "
        f"{at_cap} of {every.size} filters at the cap)"
    )
    if not args.no_plot:
        # Forecast held-out series 0 HORIZON steps at a time over a stretch.
        origins = np.arange(window - 1, window - 1 + 20 * HORIZON, HORIZON)
        rows = np.zeros(len(origins), int)
        x, _ = windows(h_series, rows, origins - window + 1, window)
        forecasts = {
            "WaveNet": np.asarray(forecast(params, x)),
            "persistence": persistence(x),
            "linear AR": linear_ar(x),
        }
        t = np.arange(origins[0] - 2 * HORIZON, origins[-1] + HORIZON + 1)
        levels = {
            "persistence": r["persistence"],
            "linear AR": r["linear_ar"],
            "lower bound": r["lower_bound"],
        }
        path = args.out / "wavenet_forecast.png"
        plot(history, levels, (t, h_series[0, t], origins, forecasts), path)
        print(f"plot saved to {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {
        "train": results["train"],
        "heldout": r,
        "heldout_by_horizon": {k: v.tolist() for k, v in by_horizon.items()},
        "max_kernel_norm": worst,
        "constrained_kernels": len(norms),
        "constraint_holds": holds,
        "history": history,
    }


if __name__ == "__main__":
    main()
