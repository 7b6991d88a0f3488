"""Train a 2-D convolutional denoising autoencoder on images it draws itself.

The 2-D counterpart of ``denoise_autoencoder.py``. Synthetic 32 x 32
grayscale images (a shaded background, one to three filled discs, rectangles
and rings, and on a third of them a sinusoidal grating) are drawn with
NumPy, and Gaussian noise of std 0.3 is added. A ``cj.Sequential``
autoencoder, two strided ``Conv2D`` layers down to 8 x 8 x 32, a bottleneck
``Conv2D``, two strided ``Conv2DTranspose`` layers back up to 32 x 32 and a
last ``Conv2D`` to one channel, learns to map the noisy image to the clean
one, trained with optax's Adam (a warmup-cosine schedule) through
``cj.make_train_step``. It reports the held-out MSE of the denoised images
against the noisy input's, and against the best Gaussian blur (a fixed
``Conv2D`` kernel with reflect padding, its width chosen on the training
set), and saves ``<out>/image_denoise_2d.png``: the loss curve, and rows of
noisy, denoised and clean held-out images. About a minute on 2 CPU cores.

Needs matplotlib and tqdm (``pip install '.[examples]'``).

Run:  python examples/image_denoise_2d.py [--steps N] [--out DIR]
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

SIZE = 32  # pixels per side
NOISE = 0.3  # standard deviation of the added Gaussian noise
EVAL_CHUNK = 256  # images per evaluation call (one compiled shape)
BLUR_SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # the baseline's candidates


def make_images(n, seed, size=SIZE, noise=NOISE):
    """``n`` clean images and their noisy copies, each ``(n, size, size, 1)``.

    Each image has a linear background shade (0 to 0.3), then one to three
    shapes painted over it in order (a disc, an axis-aligned rectangle or a
    ring, of intensity 0.4 to 1); a third of the images also get a
    low-contrast sinusoidal grating of random orientation added. The noise
    is i.i.d. Gaussian with std ``noise``, not clipped.
    """
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    y, x = y[None], x[None]
    gx, gy = rng.uniform(-0.15, 0.15, (2, n, 1, 1))
    clean = 0.15 + gx * (x - 0.5) + gy * (y - 0.5)
    n_shapes = rng.integers(1, 4, size=n)
    for k in range(3):
        on = (k < n_shapes)[:, None, None]
        kind = rng.integers(0, 3, size=(n, 1, 1))
        cy, cx = rng.uniform(0.2, 0.8, (2, n, 1, 1))
        r = rng.uniform(0.1, 0.25, (n, 1, 1))
        hy, hx = rng.uniform(0.08, 0.25, (2, n, 1, 1))
        level = rng.uniform(0.4, 1.0, (n, 1, 1))
        dist = np.hypot(y - cy, x - cx)
        disc = dist < r
        rect = (np.abs(y - cy) < hy) & (np.abs(x - cx) < hx)
        ring = (dist < r) & (dist > 0.6 * r)
        mask = np.where(kind == 0, disc, np.where(kind == 1, rect, ring))
        clean = np.where(on & mask, level, clean)
    grating = (rng.random((n, 1, 1)) < 1 / 3) * 0.15
    angle = rng.uniform(0, np.pi, (n, 1, 1))
    freq = rng.uniform(2.0, 5.0, (n, 1, 1))  # cycles per image
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    along = np.cos(angle) * x + np.sin(angle) * y
    clean = clean + grating * np.sin(2 * np.pi * freq * along + phase)
    noisy = clean + noise * rng.normal(size=clean.shape)
    return (
        clean[..., None].astype(np.float32),
        noisy[..., None].astype(np.float32),
    )


def build_model(width=32):
    """The autoencoder: 32x32x1 -> 16x16x16 -> 8x8x32 (bottleneck) -> 32x32x1."""
    down = dict(kernel_size=3, strides=2, padding="same", activation="relu")
    up = dict(kernel_size=4, strides=2, padding="same", activation="relu")
    return cj.Sequential(
        [
            # Encoder: strided convolutions halve each side twice.
            cj.Conv2D(width // 2, **down),
            cj.Conv2D(width, **down),
            # Bottleneck, at 8 x 8.
            cj.Conv2D(width, 3, padding="same", activation="relu"),
            # Decoder: transposed convolutions double each side back.
            cj.Conv2DTranspose(width, **up),
            cj.Conv2DTranspose(width // 2, **up),
            cj.Conv2D(1, 3, padding="same"),
        ]
    )


def gaussian_blur(sigma):
    """A depth-1 ``Conv2D`` and its fixed params: a normalised Gaussian
    kernel, reflect padding (so the borders are not darkened)."""
    radius = max(1, math.ceil(2.5 * sigma))
    t = np.arange(-radius, radius + 1)
    g = np.exp(-(t**2) / (2 * sigma**2))
    kernel = np.outer(g, g) / np.sum(g) ** 2
    layer = cj.Conv2D(1, 2 * radius + 1, padding="same", padding_mode="reflect",
                      use_bias=False)  # fmt: skip
    return layer, {"kernel": jnp.asarray(kernel[:, :, None, None], jnp.float32)}


def best_blur(train_set, heldout):
    """The Gaussian blur (of ``BLUR_SIGMAS``) with the lowest MSE on the
    training set, and its held-out MSE."""
    clean, noisy = train_set
    scores = {}
    for sigma in BLUR_SIGMAS:
        layer, params = gaussian_blur(sigma)
        blurred = jax.jit(layer.apply)(params, noisy[:EVAL_CHUNK])
        scores[sigma] = float(jnp.mean((blurred - clean[:EVAL_CHUNK]) ** 2))
    sigma = min(scores, key=scores.get)
    layer, params = gaussian_blur(sigma)
    h_clean, h_noisy = heldout
    blurred = np.asarray(jax.jit(layer.apply)(params, h_noisy))
    return sigma, float(np.mean((blurred - h_clean) ** 2)), blurred


def mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def evaluate(eval_step, params, noisy, clean):
    """Mean task loss over the set, in equal chunks."""
    n_chunks = len(noisy) // EVAL_CHUNK
    total = 0.0
    for i in range(n_chunks):
        part = slice(i * EVAL_CHUNK, (i + 1) * EVAL_CHUNK)
        total += float(eval_step(params, noisy[part], clean[part])["task_loss"])
    return total / n_chunks


def train(model, params, train_set, heldout, *, steps, batch_size, lr, seed, progress):
    """Adam with a warmup-cosine schedule; returns params and the history."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=max(steps // 20, 1),
        decay_steps=steps,
        end_value=lr / 30,
    )
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    train_step = cj.make_train_step(model, optimizer, mse)
    eval_step = cj.make_eval_step(model, mse)
    clean, noisy = train_set
    h_clean, h_noisy = heldout
    rng = np.random.default_rng(seed + 1)
    eval_every = max(steps // 10, 1)
    losses = []
    start = time.perf_counter()
    evals = [(0, evaluate(eval_step, params, h_noisy, h_clean))]
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
                held = evaluate(eval_step, params, h_noisy, h_clean)
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


def plot(history, images, path, blur_mse, noise=NOISE, n_show=6):
    """Saves the loss curve and rows of noisy / blurred / denoised / clean
    held-out images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean, noisy, blurred, denoised = images
    rows = (
        ("noisy input", noisy),
        ("Gaussian blur", blurred),
        ("denoised", denoised),
        ("clean", clean),
    )
    fig = plt.figure(figsize=(15, 7))
    grid = fig.add_gridspec(len(rows), n_show + 1, width_ratios=(5.5, *[1.6] * n_show))
    ax = fig.add_subplot(grid[:, 0])
    steps = np.arange(1, len(history["loss"]) + 1)
    ax.plot(steps, history["loss"], color="tab:blue", alpha=0.5, lw=0.8,
            label="train MSE (batch)")  # fmt: skip
    at, held = zip(*history["heldout"], strict=True)
    ax.plot(at, held, "o-", color="tab:orange", ms=4, label="held-out MSE")
    ax.axhline(noise**2, color="gray", ls="--", label=f"noisy input ({noise}²)")
    ax.axhline(blur_mse, color="tab:green", ls=":", lw=2,
               label="best Gaussian blur (held-out)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE against the clean image (log scale)")
    ax.set_title("Training")
    ax.legend(fontsize=9)
    for r, (label, batch) in enumerate(rows):
        for c in range(n_show):
            ax = fig.add_subplot(grid[r, 1 + c])
            ax.imshow(batch[c, :, :, 0], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=10)
            if label in ("Gaussian blur", "denoised"):
                err = float(np.mean((batch[c] - clean[c]) ** 2))
                ax.text(0.5, -1.0, f"MSE {err:.4f}", color="yellow", fontsize=7,
                        va="top", bbox=dict(facecolor="black", alpha=0.6, lw=0))  # fmt: skip
    fig.suptitle("conv1djax: 2-D convolutional denoising autoencoder "
                 "(Conv2D down, Conv2DTranspose up)")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
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
    train_set = make_images(args.train_size, seed=args.seed)
    heldout = make_images(args.heldout_size, seed=args.seed + 10_000)

    model = build_model()
    input_shape = (None, SIZE, SIZE, 1)
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
    for name, (clean, noisy) in (("train", train_set), ("heldout", heldout)):
        results[name] = {
            "denoised": evaluate(eval_step, params, noisy, clean),
            "noisy": float(np.mean((noisy - clean) ** 2)),
        }
    sigma, blur_mse, blurred = best_blur(train_set, heldout)
    results["heldout"]["blur"] = blur_mse
    print(
        f"trained {args.steps} steps (batch {args.batch_size}) in "
        f"{history['time']:.1f} s ({history['compile']:.1f} s compiling); "
        f"{history['steps_per_s']:.0f} steps/s after compiling"
    )
    print("MSE against the clean image:")
    for name, r in results.items():
        print(
            f"  {name + ':':<9} denoised {r['denoised']:.4f} vs noisy "
            f"{r['noisy']:.4f} ({r['noisy'] / r['denoised']:.1f}x lower)"
        )
    r = results["heldout"]
    print(
        f"  best Gaussian blur (sigma {sigma} px): held-out {blur_mse:.4f} "
        f"({blur_mse / r['denoised']:.1f}x the autoencoder's)"
    )
    psnr = {k: 10 * math.log10(1 / r[k]) for k in ("noisy", "blur", "denoised")}
    print(
        f"held-out PSNR (peak 1): noisy {psnr['noisy']:.1f} dB, blur "
        f"{psnr['blur']:.1f} dB, denoised {psnr['denoised']:.1f} dB"
    )
    if not args.no_plot:
        h_clean, h_noisy = heldout
        n_show = 6
        denoised = np.asarray(jax.jit(model.apply)(params, h_noisy[:n_show]))
        path = args.out / "image_denoise_2d.png"
        images = (h_clean[:n_show], h_noisy[:n_show], blurred[:n_show], denoised)
        plot(history, images, path, blur_mse, n_show=n_show)
        print(f"plot saved to {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {
        "train": results["train"],
        "heldout": results["heldout"],
        "blur_sigma": sigma,
        "history": history,
    }


if __name__ == "__main__":
    main()
