"""Recover an unknown causal FIR filter from its input and output.

A first end-to-end use of conv1djax: a hidden 16-tap filter is applied to
random signals; a ``Conv1D(padding="causal")`` is fitted to the (input,
output) pairs with optax and a jit-compiled step, and its kernel is compared
with the hidden filter. Also shows a strided encoder / transposed decoder
round trip and the Keras-exact output shapes, and saves
``<out>/fir_identification.png``: the loss curve and the hidden filter's
taps against the recovered ones (matplotlib, ``pip install '.[examples]'``).

Run:  python examples/fir_identification.py [--steps 400] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import conv1djax as cj


def make_data(key, n_signals, length, taps):
    """Random signals and the hidden filter's (noisy) response to them."""
    k_filter, k_x, k_noise = jax.random.split(key, 3)
    hidden = jax.random.normal(k_filter, (taps, 1, 1)) / jnp.sqrt(taps)
    x = jax.random.normal(k_x, (n_signals, length, 1))
    truth = cj.Conv1D(1, taps, padding="causal", use_bias=False)
    y = truth.apply({"kernel": hidden}, x)
    return hidden, x, y + 0.01 * jax.random.normal(k_noise, y.shape)


def plot(losses, hidden, recovered, error, path):
    """The loss curve, and the hidden filter's taps against the recovered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax0.semilogy(losses)
    ax0.set_xlabel("step")
    ax0.set_ylabel("training MSE")
    ax0.set_title("Fitting a causal Conv1D(1, 16)")
    taps = range(len(hidden))
    ax1.stem(taps, hidden, linefmt="C0-", markerfmt="C0o", basefmt="k-",
             label="hidden filter")  # fmt: skip
    ax1.plot(taps, recovered, "C3x", markersize=9, label="recovered kernel")
    ax1.set_xlabel("tap")
    ax1.set_title(f"relative error {error:.4f}")
    ax1.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out"), help="PNG folder")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)

    key = jax.random.key(args.seed)
    taps = 16
    hidden, x, y = make_data(key, n_signals=64, length=256, taps=taps)

    layer = cj.Conv1D(1, taps, padding="causal", kernel_initializer="zeros")
    params = layer.init(jax.random.key(1), x.shape)
    optimizer = optax.adam(3e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            return jnp.mean((layer.apply(p, x) - y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    start = time.perf_counter()
    losses = []
    for i in range(args.steps):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
        if i % max(args.steps // 4, 1) == 0 or i == args.steps - 1:
            print(f"step {i:4d}  mse {float(loss):.6f}")
    elapsed = time.perf_counter() - start
    error = jnp.linalg.norm(params["kernel"] - hidden) / jnp.linalg.norm(hidden)
    print(f"trained {args.steps} steps in {elapsed:.2f} s (compile included)")
    print(f"relative error of the recovered filter: {float(error):.4f}")

    # Keras-exact shapes: a strided encoder and the transposed decoder.
    enc = cj.Conv1D(8, 4, strides=2, padding="same", activation="relu")
    dec = cj.Conv1DTranspose(1, 4, strides=2, padding="same")
    pe = enc.init(jax.random.key(2), x.shape)
    h = enc.apply(pe, x)
    pd = dec.init(jax.random.key(3), h.shape)
    print(f"encoder {x.shape} -> {h.shape}, decoder -> {dec.apply(pd, h).shape}")
    if not args.no_plot:
        path = args.out / "fir_identification.png"
        plot(losses, hidden.ravel(), params["kernel"].ravel(), float(error), path)
        print(f"saved {path}")
    return {"losses": losses, "error": float(error)}


if __name__ == "__main__":
    main()
