"""Train a 1-D convolutional denoising autoencoder on signals it makes itself.

The flagship conv1djax example. Smooth random signals (sums of sinusoids,
chirps and rounded pulses, 256 steps, 1 channel) are generated with NumPy,
and Gaussian noise is added to them. A ``cj.Sequential`` autoencoder (a
strided ``Conv1D`` encoder, a bottleneck, a ``Conv1DTranspose`` decoder back
to 256 steps and 1 channel) learns to map the noisy signal to the clean one.
It uses an L2 kernel regularizer, an L1 activity regularizer on the
bottleneck, a MaxNorm kernel constraint, and optax's Adam with a warmup-cosine
learning-rate schedule, through ``cj.make_train_step`` and
``cj.make_eval_step``. It prints the model summary, shows a progress bar,
reports the train and held-out error of the denoised output against the
noisy-input baseline, checks the constraint, and saves a plot (the loss curve
and a held-out example) to ``<out>/denoise.png``. About a minute on 2 CPU
cores.

Needs matplotlib and tqdm (``pip install '.[examples]'``).

Run:  python examples/denoise_autoencoder.py [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import conv1djax as cj

LENGTH = 256  # steps per signal
NOISE = 0.4  # standard deviation of the added Gaussian noise
MAX_NORM = 1.0  # the MaxNorm kernel constraint's cap (see build_model)
EVAL_CHUNK = 512  # examples per evaluation call (one compiled shape)


def make_signals(n, seed, length=LENGTH, noise=NOISE):
    """``n`` clean signals and their noisy copies, each ``(n, length, 1)``.

    Every signal is a sum of 2 to 4 sinusoids of random frequency, amplitude
    and phase; about a third also get a linear chirp and a third a rounded
    rectangular pulse. The noise is i.i.d. Gaussian with std ``noise``.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length, endpoint=False)
    clean = np.zeros((n, length))
    n_waves = rng.integers(2, 5, size=n)
    for k in range(4):
        on = (k < n_waves)[:, None]
        freq = rng.uniform(1.0, 10.0, size=(n, 1))  # cycles per signal
        amp = rng.uniform(0.2, 0.8, size=(n, 1))
        phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        clean += on * amp * np.sin(2 * np.pi * freq * t + phase)
    # Chirps: the frequency sweeps linearly from f0 to f1 over the signal.
    chirp = rng.random((n, 1)) < 1 / 3
    f0, f1 = rng.uniform(1.0, 4.0, (n, 1)), rng.uniform(6.0, 16.0, (n, 1))
    amp = rng.uniform(0.3, 0.8, (n, 1))
    clean += chirp * amp * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) * t**2))
    # Pulses: a plateau with smooth (logistic) edges.
    pulse = rng.random((n, 1)) < 1 / 3
    start = rng.uniform(0.1, 0.6, (n, 1))
    width = rng.uniform(0.1, 0.3, (n, 1))
    height = rng.uniform(-1.0, 1.0, (n, 1))
    edge = 0.01
    rise = 1 / (1 + np.exp(-(t - start) / edge))
    fall = 1 / (1 + np.exp(-(t - start - width) / edge))
    clean += pulse * height * (rise - fall)
    noisy = clean + noise * rng.normal(size=clean.shape)
    return (
        clean[..., None].astype(np.float32),
        noisy[..., None].astype(np.float32),
    )


def build_model(kernel_size=11, l2=1e-5, activity_l1=1e-5):
    """The autoencoder: 256x1 -> 128x16 -> 64x32 -> 32x32 (bottleneck) -> 256x1.

    Every convolution has an L2 kernel regularizer and a MaxNorm kernel
    constraint; the bottleneck has an L1 activity regularizer.
    """
    reg = cj.regularizers.L2(l2)
    # axis=(0, 1): one norm per entry of the kernel's last axis, that is per
    # filter of a Conv1D (kernel_size, channels, filters) and per input
    # channel of a Conv1DTranspose (kernel_size, filters, channels).
    norm = cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1))
    conv = dict(
        kernel_size=kernel_size,
        strides=2,
        padding="same",
        kernel_regularizer=reg,
        kernel_constraint=norm,
    )
    return cj.Sequential(
        [
            # Encoder: strided convolutions halve the length three times.
            cj.Conv1D(16, activation="gelu", **conv),
            cj.Conv1D(32, activation="gelu", **conv),
            cj.Conv1D(32, **conv),
            # Bottleneck: its output is penalised (sparse codes).
            cj.Activation("gelu", activity_regularizer=cj.regularizers.L1(activity_l1)),
            # Decoder: transposed convolutions double it back to 256 steps.
            cj.Conv1DTranspose(32, activation="gelu", **conv),
            cj.Conv1DTranspose(16, activation="gelu", **conv),
            cj.Conv1DTranspose(1, **conv),
        ]
    )


def mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def evaluate(eval_step, params, noisy, clean):
    """Mean of ``eval_step``'s outputs over the set, in equal chunks."""
    totals = {}
    n_chunks = len(noisy) // EVAL_CHUNK
    for i in range(n_chunks):
        part = slice(i * EVAL_CHUNK, (i + 1) * EVAL_CHUNK)
        out = eval_step(params, noisy[part], clean[part])
        for name, value in out.items():
            totals[name] = totals.get(name, 0.0) + float(value) / n_chunks
    return totals


def train(model, params, train_set, heldout, *, steps, batch_size, lr, seed, progress):
    """Adam with a warmup-cosine schedule; returns params and the history."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=max(steps // 20, 1),
        decay_steps=steps,
        end_value=lr / 50,
    )
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    train_step = cj.make_train_step(model, optimizer, mse)
    eval_step = cj.make_eval_step(model, mse)
    clean, noisy = train_set
    h_clean, h_noisy = heldout
    rng = np.random.default_rng(seed + 1)
    eval_every = max(steps // 20, 1)
    losses = []
    start = time.perf_counter()
    evals = [(0, evaluate(eval_step, params, h_noisy, h_clean)["task_loss"])]
    with tqdm(total=steps, desc="training", disable=not progress, unit="step") as bar:
        for i in range(steps):
            idx = rng.integers(0, len(clean), size=batch_size)
            params, opt_state, loss = train_step(
                params, opt_state, noisy[idx], clean[idx]
            )
            losses.append(loss)
            if i == 0:
                loss.block_until_ready()
                compiled = time.perf_counter()
            if (i + 1) % eval_every == 0 or i == steps - 1:
                held = evaluate(eval_step, params, h_noisy, h_clean)["task_loss"]
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


def kernel_norms(model, params):
    """Every norm that a MaxNorm kernel constraint caps, over all layers."""
    norms = []
    for layer, p in zip(model.layers, params, strict=True):
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, cj.constraints.MaxNorm):
            k = np.asarray(p["kernel"], np.float64)
            norms.append(np.sqrt(np.sum(k**2, axis=constraint.axis)).ravel())
    return np.concatenate(norms)


def ema(values, decay=0.98):
    """Exponential moving average, debiased like Adam's (no lag at the start)."""
    out, acc = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        acc = decay * acc + (1 - decay) * v
        out[i] = acc / (1 - decay ** (i + 1))
    return out


def plot(history, example, path, noise=NOISE):
    """Saves the loss curve and one held-out (clean, noisy, denoised) signal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean, noisy, denoised = example
    mse_example = float(np.mean((denoised - clean) ** 2))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4.5))
    steps = np.arange(1, len(history["loss"]) + 1)
    ax0.plot(steps, history["loss"], color="tab:blue", alpha=0.35, lw=0.8)
    ax0.plot(
        steps,
        ema(history["loss"]),
        color="tab:blue",
        label="train objective (MSE + penalties)",
    )
    at, held = zip(*history["heldout"], strict=True)
    ax0.plot(at, held, "o-", color="tab:orange", ms=4, label="held-out MSE")
    ax0.axhline(noise**2, color="gray", ls="--", label=f"noisy input MSE ({noise}²)")
    ax0.set_yscale("log")
    ax0.set_xlabel("step")
    ax0.set_ylabel("MSE (log scale)")
    ax0.set_title("Training loss")
    ax0.legend()
    t = np.arange(len(clean))
    ax1.plot(t, noisy, color="gray", alpha=0.5, lw=0.8, label="noisy input")
    ax1.plot(t, clean, color="black", lw=1.6, label="clean")
    ax1.plot(t, denoised, color="tab:red", lw=1.4, label="denoised")
    ax1.set_xlabel("time step")
    ax1.set_title(f"A typical held-out signal (denoised MSE {mse_example:.4f})")
    low, high = ax1.get_ylim()
    ax1.set_ylim(low, high + 0.25 * (high - low))  # room for the legend
    ax1.legend(loc="upper center", ncol=3)
    fig.suptitle("conv1djax: 1-D convolutional denoising autoencoder")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--heldout-size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("out"), help="PNG folder")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("train_size", "heldout_size"):
        if getattr(args, name) < EVAL_CHUNK or getattr(args, name) % EVAL_CHUNK:
            parser.error(
                f"--{name.replace('_', '-')} must be a positive multiple of "
                f"{EVAL_CHUNK}"
            )
    return args


def main(argv=None):
    """Runs the example; returns the final metrics as a dict."""
    args = parse_args(argv)
    start = time.perf_counter()
    train_set = make_signals(args.train_size, seed=args.seed)
    heldout = make_signals(args.heldout_size, seed=args.seed + 10_000)

    model = build_model()
    input_shape = (None, LENGTH, 1)
    model.summary(input_shape)
    params = model.init(jax.random.key(args.seed), input_shape)

    params, history = train(
        model,
        params,
        train_set,
        heldout,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )

    eval_step = cj.make_eval_step(model, mse)
    results = {}
    for name, (clean, noisy) in (("train", train_set), ("held-out", heldout)):
        metrics = evaluate(eval_step, params, noisy, clean)
        results[name] = {
            "denoised": metrics["task_loss"],
            "noisy": float(np.mean((noisy - clean) ** 2)),
            "regularization": metrics["regularization_loss"],
            "activity": metrics["activity_loss"],
        }
    print(
        f"trained {args.steps} steps (batch {args.batch_size}) in "
        f"{history['time']:.1f} s ({history['compile']:.1f} s compiling); "
        f"{history['steps_per_s']:.0f} steps/s after compiling"
    )
    print("MSE against the clean signal:")
    for name, r in results.items():
        print(
            f"  {name + ':':<9} denoised {r['denoised']:.4f} vs noisy "
            f"{r['noisy']:.4f} ({r['noisy'] / r['denoised']:.1f}x lower)"
        )
    r = results["held-out"]
    print(
        f"penalties: L2 kernel {r['regularization']:.5f}, "
        f"L1 activity {r['activity']:.5f}"
    )
    norms = kernel_norms(model, params)
    worst = float(norms.max())
    holds = worst <= MAX_NORM * (1 + 1e-6)
    at_cap = int(np.sum(norms >= MAX_NORM * (1 - 1e-4)))
    print(
        f"MaxNorm({MAX_NORM}): largest kernel norm {worst:.4f} "
        f"({'holds' if holds else 'VIOLATED'}; {at_cap} of {norms.size} at the cap)"
    )
    if not args.no_plot:
        # Show the held-out signal with the median denoised error.
        h_clean, h_noisy = heldout
        denoised = np.asarray(jax.jit(model.apply)(params, h_noisy))
        errors = np.mean((denoised - h_clean) ** 2, axis=(1, 2))
        i = int(np.argsort(errors)[len(errors) // 2])
        path = args.out / "denoise.png"
        plot(history, (h_clean[i, :, 0], h_noisy[i, :, 0], denoised[i, :, 0]), path)
        print(f"plot saved to {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {
        "train": results["train"],
        "heldout": results["held-out"],
        "max_kernel_norm": worst,
        "constraint_holds": holds,
        "history": history,
    }


if __name__ == "__main__":
    main()
