"""Find the sensor channel that carries a chirp: depthwise-separable 1-D
convolutions against plain ones of the same size.

The 1-D family in one model. Each example is a 6-channel sensor recording,
256 steps, generated with NumPy: every channel has white noise, a steady
background tone and one Gaussian-windowed burst. In five channels the burst
is a tone of constant frequency; in one it is a chirp (its frequency sweeps
up or down). The label is that channel (6 classes, chance 1/6): the network
has to tell a sweep from a steady tone inside each channel, which is what a
depthwise convolution (one temporal filter bank per channel) does.

Two models of about the same parameter count are trained on the same
batches with optax's Adam through ``cj.make_train_step``:

- *separable*: a ``DepthwiseConv1D`` (depth multiplier 4), ``MaxPooling1D``,
  a ``SeparableConv1D``, ``MaxPooling1D``, a dilated ``SeparableConv1D`` in a
  ``cj.Residual``, a 1 x 1 ``Conv1D`` to class scores at every step and
  ``GlobalMaxPooling1D`` (the burst may be anywhere: the score is the
  largest over time);
- *plain*: the same stack with ``Conv1D`` layers, narrower so that it has as
  many parameters.

It prints both summaries, the held-out accuracy of each, and saves
``<out>/separable_classifier.png``: the held-out accuracy of both during
training, an example recording, and the separable model's confusion matrix.
About 80 s on 2 CPU cores (``--steps 200``: 30 s).

Needs matplotlib and tqdm (``pip install '.[examples]'``).

Run:  python examples/separable_classifier.py [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import conv1djax as cj

CHANNELS = 6  # sensor channels, and classes
LENGTH = 256  # steps per recording
NOISE = 0.3  # white-noise std in every channel
EVAL_CHUNK = 512  # recordings per evaluation call (one compiled shape)


def make_recordings(n, seed, length=LENGTH, channels=CHANNELS, noise=NOISE):
    """``n`` recordings ``(n, length, channels)`` (float32) and their labels
    ``(n,)``, the channel whose burst is a chirp.

    Every channel: a background tone (amplitude 0.3, 0.01 to 0.2 cycles per
    step), white noise of std ``noise``, and a burst with a Gaussian envelope
    (amplitude 1, std 15 to 25 steps, centred anywhere but the edges). The
    bursts are tones of a constant 0.03 to 0.35 cycles per step, except in
    the labelled channel, where the frequency sweeps linearly between 0.03
    and 0.35 (up or down, at random) across the burst.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None].astype(np.float64)
    shape = (n, 1, channels)
    labels = rng.integers(0, channels, size=n)
    tone_f = rng.uniform(0.01, 0.2, shape)
    x = 0.3 * np.sin(2 * np.pi * tone_f * t + rng.uniform(0, 2 * np.pi, shape))
    centre = rng.uniform(40, length - 40, shape)
    width = rng.uniform(15, 25, shape)
    envelope = np.exp(-0.5 * ((t - centre) / width) ** 2)
    # Instantaneous frequency f(t) = f0 + rate * (t - centre); its phase is
    # the integral. Tones have rate 0; the chirp sweeps 0.03 <-> 0.35 over
    # +-2 envelope widths.
    chirp = np.arange(channels)[None, None, :] == labels[:, None, None]
    up = rng.random((n, 1, 1)) < 0.5
    f_mid = np.where(chirp, 0.19, rng.uniform(0.03, 0.35, shape))
    rate = np.where(chirp, np.where(up, 0.32, -0.32) / (4 * width), 0.0)
    s = t - centre
    phase = 2 * np.pi * (f_mid * s + 0.5 * rate * s**2) + rng.uniform(0, 6.3, shape)
    x = x + envelope * np.sin(phase) + noise * rng.normal(size=(n, length, channels))
    return x.astype(np.float32), labels.astype(np.int32)


def build_separable(classes=CHANNELS):
    """The depthwise-separable model (about 2,800 params)."""
    same = dict(padding="same", activation="gelu")
    return cj.Sequential(
        [
            # One bank of 4 temporal filters per input channel: 6 -> 24.
            cj.DepthwiseConv1D(9, depth_multiplier=4, name="depthwise", **same),
            cj.MaxPooling1D(2, name="pool_1"),
            cj.SeparableConv1D(32, 9, name="separable", **same),
            cj.MaxPooling1D(2, name="pool_2"),
            cj.Residual(
                cj.SeparableConv1D(32, 9, dilation_rate=2, name="separable_d2", **same),
                name="residual",
            ),
            cj.Conv1D(classes, 1, name="scores"),
            cj.GlobalMaxPooling1D(name="max"),
        ],
        name="separable",
    )


def build_plain(classes=CHANNELS):
    """The same stack with plain ``Conv1D`` layers, as many params."""
    same = dict(padding="same", activation="gelu")
    return cj.Sequential(
        [
            cj.Conv1D(8, 9, name="conv", **same),
            cj.MaxPooling1D(2, name="pool_1"),
            cj.Conv1D(12, 9, name="conv_2", **same),
            cj.MaxPooling1D(2, name="pool_2"),
            cj.Residual(
                cj.Conv1D(12, 9, dilation_rate=2, name="conv_d2", **same),
                name="residual",
            ),
            cj.Conv1D(classes, 1, name="scores"),
            cj.GlobalMaxPooling1D(name="max"),
        ],
        name="plain",
    )


def cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def predict(model, params, x):
    """Predicted classes for the whole set, in equal chunks."""
    apply = jax.jit(model.apply)
    out = [
        np.asarray(jnp.argmax(apply(params, x[i : i + EVAL_CHUNK]), -1))
        for i in range(0, len(x), EVAL_CHUNK)
    ]
    return np.concatenate(out)


def train(models, train_set, heldout, *, steps, batch_size, lr, seed, progress):
    """Trains every model on the same batches (Adam, cosine decay); returns
    their params and histories (losses, held-out accuracy over steps)."""
    x, y = train_set
    hx, hy = heldout
    optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.05))
    state = {}
    for name, model in models.items():
        params = model.init(jax.random.key(seed), (None, LENGTH, CHANNELS))
        step = cj.make_train_step(model, optimizer, cross_entropy)
        state[name] = [params, optimizer.init(params), step]
    history = {name: {"loss": [], "accuracy": []} for name in models}
    rng = np.random.default_rng(seed + 1)
    eval_every = max(steps // 20, 1)
    start = time.perf_counter()
    with tqdm(total=steps, desc="training", disable=not progress, unit="step") as bar:
        for i in range(steps):
            idx = rng.integers(0, len(x), size=batch_size)
            for name, s in state.items():
                s[0], s[1], loss = s[2](s[0], s[1], x[idx], y[idx])
                history[name]["loss"].append(loss)
            if (i + 1) % eval_every == 0 or i == steps - 1:
                postfix = {}
                for name, model in models.items():
                    acc = float(np.mean(predict(model, state[name][0], hx) == hy))
                    history[name]["accuracy"].append((i + 1, acc))
                    postfix[name] = f"{acc:.3f}"
                bar.set_postfix(postfix)
            bar.update(1)
    for h in history.values():
        h["loss"] = np.asarray(jax.device_get(h["loss"]))
    seconds = time.perf_counter() - start
    return {name: s[0] for name, s in state.items()}, history, seconds


def confusion(labels, predicted, classes=CHANNELS):
    """``matrix[true, predicted]``: counts."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def ema(values, decay=0.95):
    """Exponential moving average, debiased like Adam's."""
    out, acc = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        acc = decay * acc + (1 - decay) * v
        out[i] = acc / (1 - decay ** (i + 1))
    return out


def plot(path, history, counts, example, matrix):
    """Accuracy curves, one recording, the separable model's confusion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15, 4.6),
                                        width_ratios=(1.1, 1.3, 0.9))  # fmt: skip
    colors = {"separable": "tab:red", "plain": "tab:blue"}
    twin = ax0.twinx()
    for name, h in history.items():
        at, acc = zip(*h["accuracy"], strict=True)
        label = f"{name} ({counts[name]:,} params): held-out accuracy"
        ax0.plot(at, acc, "o-", ms=3, color=colors[name], label=label)
        twin.plot(np.arange(1, len(h["loss"]) + 1), ema(h["loss"]),
                  color=colors[name], alpha=0.35, lw=1)  # fmt: skip
    ax0.axhline(1 / CHANNELS, color="gray", ls="--", lw=1, label="chance")
    ax0.set_ylim(0, 1.02)
    ax0.set_xlabel("step")
    ax0.set_ylabel("held-out accuracy")
    twin.set_ylabel("train cross-entropy (faint lines)")
    ax0.set_title("Two models of the same size, the same batches")
    ax0.legend(loc="lower right", fontsize=8)

    x, label, predicted = example
    for c in range(CHANNELS):
        is_chirp = c == label
        ax1.plot(x[:, c] - 3.0 * c, lw=0.8 if not is_chirp else 1.1,
                 color="tab:red" if is_chirp else "0.45")  # fmt: skip
    ax1.set_yticks(-3.0 * np.arange(CHANNELS))
    ax1.set_yticklabels([f"ch {c}" for c in range(CHANNELS)])
    ax1.set_xlabel("time step")
    ax1.set_title(f"A held-out recording: the chirp is in channel {label} (red); "
                  f"predicted {predicted}", fontsize=9)  # fmt: skip

    ax2.imshow(matrix, cmap="Reds")
    for (i, j), v in np.ndenumerate(matrix):
        color = "white" if v > matrix.max() / 2 else "black"
        ax2.text(j, i, str(v), ha="center", va="center", fontsize=8, color=color)
    ax2.set_xticks(range(CHANNELS))
    ax2.set_yticks(range(CHANNELS))
    ax2.set_xlabel("predicted channel")
    ax2.set_ylabel("true channel")
    ax2.set_title("Separable model, held-out confusion", fontsize=9)
    fig.suptitle("conv1djax: DepthwiseConv1D / SeparableConv1D / pooling / "
                 "Residual against plain Conv1D")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3, help="initial learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--heldout-size", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path("out"), help="PNG folder")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "train_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.heldout_size < EVAL_CHUNK or args.heldout_size % EVAL_CHUNK:
        parser.error(f"--heldout-size must be a positive multiple of {EVAL_CHUNK}")
    return args


def main(argv=None):
    """Runs the example; returns the final metrics as a dict."""
    args = parse_args(argv)
    start = time.perf_counter()
    train_set = make_recordings(args.train_size, seed=args.seed)
    heldout = make_recordings(args.heldout_size, seed=args.seed + 10_000)
    models = {"separable": build_separable(), "plain": build_plain()}
    input_shape = (None, LENGTH, CHANNELS)
    counts = {}
    for name, model in models.items():
        print(f"{name}:")
        cj.summary(model, input_shape)
        counts[name] = model.count_params(input_shape)

    params, history, seconds = train(
        models,
        train_set,
        heldout,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(f"trained both models {args.steps} steps (batch {args.batch_size}) "
          f"in {seconds:.1f} s")  # fmt: skip
    results = {}
    for name, model in models.items():
        train_acc = float(np.mean(predict(model, params[name], train_set[0][:1024])
                                  == train_set[1][:1024]))  # fmt: skip
        predicted = predict(model, params[name], heldout[0])
        results[name] = {
            "params": counts[name],
            "train_accuracy": train_acc,
            "heldout_accuracy": float(np.mean(predicted == heldout[1])),
            "predicted": predicted,
            "history": history[name],
        }
    print(f"which channel carries the chirp ({CHANNELS} classes, chance "
          f"{1 / CHANNELS:.3f}):")  # fmt: skip
    for name, r in results.items():
        print(f"  {name + ':':<11} {r['params']:>5,} params, accuracy train "
              f"{r['train_accuracy']:.3f}, held-out {r['heldout_accuracy']:.3f}")  # fmt: skip
    matrix = confusion(heldout[1], results["separable"]["predicted"])
    if not args.no_plot:
        i = 0
        example = (heldout[0][i], int(heldout[1][i]),
                   int(results["separable"]["predicted"][i]))  # fmt: skip
        path = args.out / "separable_classifier.png"
        plot(path, history, counts, example, matrix)
        print(f"plot saved to {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {"separable": results["separable"], "plain": results["plain"],
            "confusion": matrix}  # fmt: skip


if __name__ == "__main__":
    main()
