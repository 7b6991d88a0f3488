"""Stream a long signal through a trained causal denoiser, chunk by chunk.

A small temporal convolutional network (causal, dilated ``Conv1D`` layers in
``cj.Residual`` blocks, so every output depends on the past only) is trained
to denoise synthetic signals (chirps and sums of sinusoids plus Gaussian
noise, generated here). Then one long noisy signal arrives in chunks of
random lengths (one sample included) and goes through
``cj.stream_apply``, compiled once per chunk length, the state carried
from chunk to chunk. The streamed output equals ``model.apply`` on the whole
signal (checked), the model's latency is zero (it is causal), and the script
reports the time per chunk and the denoising gain, and plots a stretch.

Needs matplotlib and tqdm (``pip install '.[examples]'``).

Run:  python examples/streaming_denoise.py [--steps N] [--length T] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import conv1djax as cj

NOISE = 0.3
CHUNK_LENGTHS = (1, 1, 2, 3, 5, 8, 16, 32, 64)


def make_signals(n, length, seed):
    """``(clean, noisy)``, each ``(n, length, 1)``: chirps and sums of two
    sinusoids, plus Gaussian noise of std ``NOISE``."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :]
    f0 = rng.uniform(0.005, 0.03, size=(n, 1))
    f1 = rng.uniform(0.005, 0.05, size=(n, 1))
    chirp = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * length)))
    tones = 0.5 * np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6.3, size=(n, 1)))
    kind = rng.integers(0, 2, size=(n, 1))
    clean = np.where(kind == 0, chirp, tones + 0.5 * np.sin(2 * np.pi * f0 * t))
    noisy = clean + NOISE * rng.normal(size=clean.shape)
    return clean[..., None].astype(np.float32), noisy[..., None].astype(np.float32)


def build_model(channels=16, dilations=(1, 2, 4, 8, 16)):
    """A causal TCN: a 1x1 stem, residual blocks of dilated causal
    convolutions, a 1x1 head."""
    blocks = [
        cj.Residual(
            cj.Sequential([
                cj.Conv1D(channels, 3, dilation_rate=d, padding="causal",
                          activation="relu", name=f"dilated_{d}"),
                cj.Conv1D(channels, 1, name=f"mix_{d}"),
            ]),
            name=f"block_{d}",
        )
        for d in dilations
    ]  # fmt: skip
    return cj.Sequential(
        [cj.Conv1D(channels, 1, name="stem"), *blocks, cj.Conv1D(1, 1, name="head")]
    )


def train(model, steps, batch, lr, seed, progress):
    clean, noisy = make_signals(512, 256, seed)
    params = model.init(jax.random.key(seed), (None, 256, 1))
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    step = cj.make_train_step(model, opt, lambda y, t: jnp.mean((y - t) ** 2))
    state = opt.init(params)
    rng = np.random.default_rng(seed)
    losses = []
    with tqdm(total=steps, desc="training", disable=not progress, unit="step") as bar:
        for _ in range(steps):
            rows = rng.integers(0, len(clean), batch)
            params, state, loss = step(params, state, noisy[rows], clean[rows])
            losses.append(float(loss))
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return params, losses


def stream(model, params, noisy, seed):
    """Streams ``noisy`` (1, T, 1) in random-length chunks; returns the
    output, the chunk lengths and the seconds each chunk took."""
    # The state donated: each call updates its buffers in place.
    step = jax.jit(cj.stream_apply, donate_argnums=2)
    rng = np.random.default_rng(seed)
    outputs, lengths, seconds, at = [], [], [], 0
    total = noisy.shape[1]
    for n in CHUNK_LENGTHS:  # compile each length once, before timing
        warm = cj.stream_init(model, params, (1,))
        jax.block_until_ready(step(model, params, warm, noisy[:, :n]))
    state = cj.stream_init(model, params, (1,))
    while at < total:
        n = int(min(rng.choice(CHUNK_LENGTHS), total - at))
        start = time.perf_counter()
        y, state = step(model, params, state, noisy[:, at : at + n])
        jax.block_until_ready(y)
        seconds.append(time.perf_counter() - start)
        outputs.append(y)
        lengths.append(n)
        at += n
    outputs.append(cj.stream_flush(model, params, state))
    return jnp.concatenate(outputs, axis=1), lengths, seconds


def plot(path, clean, noisy, streamed, losses):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4), width_ratios=(1, 2.4))
    ax0.semilogy(losses)
    ax0.set(title="Training loss", xlabel="step", ylabel="MSE")
    window = slice(0, 600)
    t = np.arange(clean.shape[1])[window]
    ax1.plot(t, noisy[0, window, 0], color="0.75", lw=0.8, label="noisy (streamed in)")
    ax1.plot(t, clean[0, window, 0], color="k", lw=1.2, label="clean")
    ax1.plot(t, streamed[0, window, 0], color="tab:red", lw=1.2,
             label="denoised, streamed out")  # fmt: skip
    ax1.set(title="A long signal, streamed in random-length chunks (first 600 steps)",
            xlabel="time step")  # fmt: skip
    ax1.legend(loc="upper right", fontsize=8, ncol=3)
    fig.suptitle("conv1djax: streaming a causal TCN (cj.stream_apply)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--length", type=int, default=20_000, help="streamed steps")
    parser.add_argument("--out", type=Path, default=Path("out"), help="PNG folder")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    model = build_model()
    model.summary((None, 256, 1))
    print(f"receptive field {cj.receptive_field(model)} steps, latency "
          f"{cj.stream_latency(model)} (causal)")  # fmt: skip
    params, losses = train(model, args.steps, args.batch_size, args.lr, args.seed,
                           not args.no_progress)  # fmt: skip
    clean, noisy = make_signals(1, args.length, args.seed + 1)
    streamed, lengths, seconds = stream(model, params, jnp.asarray(noisy), args.seed)
    whole = model.apply(params, jnp.asarray(noisy))
    max_diff = float(jnp.max(jnp.abs(streamed - whole)))
    mse_noisy = float(np.mean((noisy - clean) ** 2))
    mse_out = float(np.mean((np.asarray(streamed) - clean) ** 2))
    per_chunk = statistics.median(seconds) * 1e3
    one_step = [s for s, n in zip(seconds, lengths, strict=True) if n == 1]
    print(f"streamed {args.length} steps in {len(lengths)} chunks of 1 to "
          f"{max(lengths)} steps: {sum(seconds):.2f} s, median {per_chunk:.3f} ms a "
          f"chunk, {statistics.median(one_step) * 1e3:.3f} ms for one new sample")  # fmt: skip
    print(f"streamed == apply on the whole signal: max |difference| {max_diff:.1e}")
    print(f"MSE against the clean signal: noisy {mse_noisy:.4f}, denoised "
          f"{mse_out:.4f} ({mse_noisy / mse_out:.1f}x lower)")  # fmt: skip
    if not args.no_plot:
        path = args.out / "streaming_denoise.png"
        plot(path, clean, noisy, np.asarray(streamed), losses)
        print(f"plot saved to {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {"max_diff": max_diff, "mse_noisy": mse_noisy, "mse_denoised": mse_out,
            "chunks": lengths, "losses": losses}  # fmt: skip


if __name__ == "__main__":
    main()
