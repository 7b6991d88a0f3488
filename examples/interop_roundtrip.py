"""Weights in and out: a PyTorch model into conv1djax, fine-tuned in JAX, out
to Keras, back to PyTorch, and through ``cj.save`` / ``cj.load``.

A ``torch.nn.Sequential`` (``Conv1d`` / ``ReLU`` / a strided ``Conv1d`` /
``GELU`` / ``ConvTranspose1d`` / ``ReLU`` / ``Conv1d``, seeded random init)
is converted by ``cj.interop.from_torch_sequential`` into the equivalent
channels-first ``cj.Sequential`` and its params, and the two compute the
same outputs (checked). The model is then fine-tuned in JAX with
``cj.make_train_step`` and optax's Adam to denoise synthetic signals (sums
of sinusoids plus Gaussian noise, generated here), and the trained weights
go out three ways, each checked against conv1djax's own outputs on held-out
signals:

- to Keras: ``cj.interop.to_keras_config`` gives a config for
  ``keras.Sequential.from_config`` and the list for ``set_weights``;
- back to PyTorch: ``cj.interop.to_torch`` gives each convolution's
  ``state_dict``, loaded into a fresh copy of the torch model;
- to a file: ``cj.save`` then ``cj.load`` (safetensors, no pickle).

It prints the largest absolute difference of every pair and saves
``<out>/interop_roundtrip.png``: the outputs of torch and conv1djax before
fine-tuning, the fine-tuning loss, the outputs of conv1djax, Keras, torch and
the reloaded model after it (with those differences), and the differences
along the signal. About 10 s on 2 CPU cores.

Needs PyTorch and Keras 3 (``pip install torch==2.13.0 keras``; Keras runs on
its JAX backend here), matplotlib and tqdm (``pip install '.[examples]'``).

Run:  python examples/interop_roundtrip.py [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import conv1djax as cj

LENGTH = 64  # steps per signal
NOISE = 0.3  # standard deviation of the added Gaussian noise
TOLERANCE = 1e-5  # the largest absolute difference allowed between libraries


def import_peers():
    """``(torch, keras)``, or a clear exit when either is missing."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    missing = []
    try:
        import torch
    except ImportError:
        missing.append("torch")
    try:
        import keras
    except ImportError:
        missing.append("keras")
    if missing:
        raise SystemExit(
            f"examples/interop_roundtrip.py needs {' and '.join(missing)} "
            "(test dependencies, not conv1djax's): pip install torch==2.13.0 keras"
        )
    return torch, keras


def build_torch_net(torch, seed):
    """The PyTorch model, on ``(N, 1, 64)`` inputs: 64 -> 64 -> 31 -> 64 -> 64
    steps, in eval mode. Its paddings are ones Keras has ("same" and
    valid), so it can go on to Keras."""
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv1d(1, 16, 5, padding="same"),
        nn.ReLU(),
        nn.Conv1d(16, 32, 4, stride=2),  # valid: 64 -> 31
        nn.GELU(),  # exact (erf), Keras's "gelu"
        nn.ConvTranspose1d(32, 16, 4, stride=2),  # valid: 31 -> 64
        nn.ReLU(),
        nn.Conv1d(16, 1, 5, padding="same"),
    ).eval()


def make_signals(n, seed, length=LENGTH, noise=NOISE):
    """``(clean, noisy)``, each ``(n, 1, length)`` (channels first, as torch
    has them): sums of two sinusoids of random frequency (1 to 6 cycles),
    amplitude and phase, plus Gaussian noise of std ``noise``."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length, endpoint=False)
    clean = np.zeros((n, length))
    for _ in range(2):
        freq = rng.uniform(1.0, 6.0, (n, 1))
        amp = rng.uniform(0.3, 0.8, (n, 1))
        clean += amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    noisy = clean + noise * rng.normal(size=clean.shape)
    return clean[:, None].astype(np.float32), noisy[:, None].astype(np.float32)


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def torch_apply(torch, net, x):
    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(x))).numpy()


def mse(y_pred, y_true):
    return jnp.mean((y_pred - y_true) ** 2)


def fine_tune(model, params, train_set, *, steps, batch_size, lr, seed, progress):
    """Adam with cosine decay on the denoising task; returns params and the
    losses."""
    optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.05))
    opt_state = optimizer.init(params)
    step = cj.make_train_step(model, optimizer, mse)
    clean, noisy = train_set
    rng = np.random.default_rng(seed + 1)
    losses = []
    with tqdm(
        total=steps, desc="fine-tuning", disable=not progress, unit="step"
    ) as bar:
        for _ in range(steps):
            idx = rng.integers(0, len(clean), size=batch_size)
            params, opt_state, loss = step(params, opt_state, noisy[idx], clean[idx])
            losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.4f}")
    return params, np.asarray(jax.device_get(losses))


def export_to_torch(torch, model, params, seed):
    """A fresh copy of the torch model (other random weights) with the
    fine-tuned weights loaded through ``cj.interop.to_torch``."""
    net = build_torch_net(torch, seed + 1)
    layers = [m for m in net if hasattr(m, "weight")]
    convs = [(layer, p) for layer, p in zip(model.layers, params, strict=True) if p]
    for module, (layer, p) in zip(layers, convs, strict=True):
        state = cj.interop.to_torch(layer, p)
        # np.array copies: to_torch's arrays can be read-only views of JAX's.
        module.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
        )
    return net


def plot(path, before, losses, after, diffs, noise=NOISE):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    t = np.arange(LENGTH)
    box = dict(boxstyle="round", facecolor="white", alpha=0.85)

    ax = axes[0, 0]
    ax.plot(t, before["torch"], color="tab:orange", lw=4, alpha=0.5, label="PyTorch")
    ax.plot(t, before["cj"], "k--", lw=1.2, label="conv1djax (imported)")
    ax.text(0.02, 0.04, f"max |difference| {diffs['import']:.1e}",
            transform=ax.transAxes, bbox=box, fontsize=9)  # fmt: skip
    ax.set(title="1. Imported: the random-init torch model's output",
           xlabel="time step")  # fmt: skip
    ax.legend(loc="upper right", fontsize=8)

    ax = axes[0, 1]
    ax.plot(np.arange(1, len(losses) + 1), losses, color="tab:blue", lw=0.9)
    ax.axhline(noise**2, color="gray", ls="--", label=f"noisy input ({noise}²)")
    ax.set_yscale("log")
    ax.set(title="2. Fine-tuned in JAX (cj.make_train_step): denoising MSE",
           xlabel="step", ylabel="train MSE (log scale)")  # fmt: skip
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    ax.plot(t, after["noisy"], color="0.75", lw=0.8, label="noisy input")
    ax.plot(t, after["clean"], color="black", lw=1.0, label="clean")
    styles = {"cj": ("tab:red", 5, 0.35, "conv1djax"),
              "keras": ("tab:green", 3, 0.6, "Keras (to_keras_config)"),
              "torch": ("tab:orange", 1.5, 0.9, "PyTorch (to_torch)"),
              "loaded": ("tab:purple", 0.8, 1.0, "cj.load (safetensors)")}  # fmt: skip
    for name, (color, lw, alpha, label) in styles.items():
        ax.plot(t, after[name], color=color, lw=lw, alpha=alpha, label=label)
    text = "\n".join(
        f"max |{name} - conv1djax| {diffs[name]:.1e}"
        for name in ("keras", "torch", "loaded")
    )
    ax.text(0.02, 0.04, text, transform=ax.transAxes, bbox=box, fontsize=8,
            family="monospace")  # fmt: skip
    ax.set(title="3. Exported after fine-tuning: four outputs, one curve",
           xlabel="time step")  # fmt: skip
    low, high = ax.get_ylim()
    ax.set_ylim(low - 0.35 * (high - low), high + 0.2 * (high - low))
    ax.legend(loc="upper right", fontsize=7, ncol=3)

    ax = axes[1, 1]
    for name in ("keras", "torch", "loaded"):
        d = np.abs(after[name] - after["cj"])
        ax.plot(t, np.maximum(d, 1e-10), color=styles[name][0], marker="o", ms=2.5,
                lw=0.8, label=styles[name][3])  # fmt: skip
    ax.axhline(TOLERANCE, color="gray", ls="--", label=f"tolerance {TOLERANCE:g}")
    ax.set_yscale("log")
    ax.set_ylim(1e-10, 1e-3)
    ax.set(title="4. |exported - conv1djax| along the signal (0 drawn at 1e-10)",
           xlabel="time step")  # fmt: skip
    ax.legend(loc="upper right", fontsize=8, ncol=2)
    fig.suptitle("conv1djax: PyTorch -> conv1djax -> fine-tune -> Keras, "
                 "PyTorch and a file")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="fine-tuning steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--heldout-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("out"), help="PNG folder")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "train_size", "heldout_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None):
    """Runs the example; returns the differences and the losses as a dict."""
    args = parse_args(argv)
    torch, keras = import_peers()
    start = time.perf_counter()
    train_set = make_signals(args.train_size, args.seed)
    h_clean, h_noisy = make_signals(args.heldout_size, args.seed + 10_000)
    input_shape = (None, 1, LENGTH)

    # 1. PyTorch -> conv1djax.
    net = build_torch_net(torch, args.seed)
    model, params = cj.interop.from_torch_sequential(net)
    model.summary(input_shape)
    torch_count = sum(p.numel() for p in net.parameters())
    print(f"imported {len(net)} torch modules ({torch_count:,} params) as "
          f"{len(model.layers)} conv1djax layers "
          f"({model.count_params(input_shape):,} params)")  # fmt: skip
    apply = jax.jit(model.apply)
    diffs = {
        "import": max_diff(apply(params, h_noisy), torch_apply(torch, net, h_noisy))
    }
    before = {"torch": torch_apply(torch, net, h_noisy[:1])[0, 0],
              "cj": np.asarray(apply(params, h_noisy[:1]))[0, 0]}  # fmt: skip
    print(f"torch vs conv1djax, imported: max |difference| {diffs['import']:.1e}")

    # 2. Fine-tune in JAX.
    mse_before = float(mse(apply(params, h_noisy), h_clean))
    params, losses = fine_tune(
        model,
        params,
        train_set,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    out = np.asarray(apply(params, h_noisy))
    mse_noisy = float(np.mean((h_noisy - h_clean) ** 2))
    mse_after = float(np.mean((out - h_clean) ** 2))
    print(f"fine-tuned {args.steps} steps; held-out MSE against the clean signal: "
          f"noisy {mse_noisy:.4f}, model before {mse_before:.4f}, after "
          f"{mse_after:.4f} ({mse_noisy / mse_after:.1f}x below the noisy input)")  # fmt: skip

    # 3. conv1djax -> Keras, -> PyTorch, -> a file and back.
    config, weights = cj.interop.to_keras_config(model, params, input_shape=input_shape)
    kmodel = keras.Sequential.from_config(config)
    kmodel.set_weights(weights)
    exported = {"keras": np.asarray(kmodel(h_noisy))}
    tnet = export_to_torch(torch, model, params, args.seed)
    exported["torch"] = torch_apply(torch, tnet, h_noisy)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        cj.save(path, model, params)
        size = path.stat().st_size
        loaded, loaded_params = cj.load(path)
    same_model = loaded == model
    exported["loaded"] = np.asarray(jax.jit(loaded.apply)(loaded_params, h_noisy))
    print(f"Keras model: {len(kmodel.layers)} layers, {kmodel.count_params():,} "
          f"params; cj.save wrote {size:,} bytes; cj.load gave an equal model: "
          f"{same_model}")  # fmt: skip
    print("exported after fine-tuning, against conv1djax's outputs:")
    for name, y in exported.items():
        diffs[name] = max_diff(y, out)
        print(f"  {name + ':':<8} max |difference| {diffs[name]:.1e}")
    worst = max(diffs.values())
    print(
        f"largest difference {worst:.1e} "
        f"({'within' if worst <= TOLERANCE else 'ABOVE'} {TOLERANCE:g})"
    )
    if not args.no_plot:
        after = {"clean": h_clean[0, 0], "noisy": h_noisy[0, 0], "cj": out[0, 0]}
        after |= {name: y[0, 0] for name, y in exported.items()}
        path = args.out / "interop_roundtrip.png"
        plot(path, before, losses, after, diffs)
        print(f"plot saved to {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {
        "diffs": diffs,
        "mse_noisy": mse_noisy,
        "mse_before": mse_before,
        "mse_after": mse_after,
        "same_model": same_model,
        "losses": losses,
        "params": model.count_params(input_shape),
        "torch_params": torch_count,
        "keras_params": kmodel.count_params(),
    }


if __name__ == "__main__":
    main()
