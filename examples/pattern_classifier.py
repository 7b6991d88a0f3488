"""Classify stripe patterns with a small 2-D separable-convolution network.

The second example, showing seed 001's family in 2-D and a whole
classifier: low-resolution 8 x 8 images of stripes (horizontal, vertical, or
either diagonal), with random frequency, phase and noise, are upsampled
(``UpSampling2D``, bilinear), zero-padded (``ZeroPadding2D``), and classified
by a ``Conv2D`` stem with ``BatchNormalization``, a ``DepthwiseConv2D`` under
a max-norm constraint, a ``SeparableConv2D`` with a pointwise L2 penalty, a
``Cropping2D``, global average pooling, ``Dropout`` and a ``Dense`` head. It
trains with ``cj.make_train_step`` and optax (in training mode: batch
statistics, dropout drawn from the step's key, the moving statistics
written back), reports held-out accuracy in inference mode, checks the
constraint, and plots examples with their predicted classes and the loss
curve.

Run:  python examples/pattern_classifier.py [--steps 400] [--out out]
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import conv1djax as cj

CLASSES = ("horizontal", "vertical", "diagonal /", "diagonal \\")
SIZE = 8
MAX_NORM = 0.8


def make_data(rng: np.random.Generator, n: int):
    """``n`` noisy stripe images ``(n, SIZE, SIZE, 1)`` and their labels."""
    labels = rng.integers(0, len(CLASSES), n)
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    directions = np.array([[1, 0], [0, 1], [1, 1], [1, -1]], np.float64)
    direction = directions[labels] / np.linalg.norm(directions[labels], axis=1)[:, None]
    frequency = rng.uniform(0.9, 1.6, n)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    along = direction[:, 0, None, None] * rows + direction[:, 1, None, None] * cols
    images = np.sin(frequency * along + phase)
    images += 0.8 * rng.normal(size=images.shape)
    return jnp.asarray(images[..., None], jnp.float32), jnp.asarray(labels)


def build_model() -> cj.Sequential:
    return cj.Sequential(
        [
            cj.UpSampling2D(2, interpolation="bilinear"),  # 8 -> 16
            cj.ZeroPadding2D(1),  # 16 -> 18
            cj.Conv2D(16, 3, strides=2, use_bias=False),  # 18 -> 8
            cj.BatchNormalization(),  # its beta is the stem's bias
            cj.Activation("relu"),
            cj.DepthwiseConv2D(
                3,
                padding="same",
                depth_multiplier=2,
                activation="relu",
                depthwise_constraint=cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1)),
                name="depthwise",
            ),
            cj.SeparableConv2D(
                32,
                3,
                padding="same",
                activation="relu",
                pointwise_regularizer=cj.regularizers.L2(1e-4),
            ),
            cj.Cropping2D(1),  # 8 -> 6
            cj.GlobalAveragePooling2D(),
            cj.Dropout(0.2),
            cj.Dense(len(CLASSES)),
        ]
    )


def cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(model, params, x, labels) -> float:
    return float(jnp.mean(jnp.argmax(model.apply(params, x), -1) == labels))


def plot(path, x, labels, predicted, losses):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 4.2))
    grid = fig.add_gridspec(2, 7)
    for i in range(10):
        ax = fig.add_subplot(grid[i // 5, i % 5])
        ax.imshow(np.asarray(x[i, ..., 0]), cmap="gray")
        ok = int(predicted[i]) == int(labels[i])
        ax.set_title(CLASSES[int(predicted[i])], fontsize=8,
                     color="black" if ok else "red")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[:, 5:])
    ax.plot(losses)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("training objective", fontsize=9)
    fig.suptitle("held-out images, titled with the predicted class (red: wrong)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--heldout-size", type=int, default=1024)
    parser.add_argument("--out", default="out", help="folder for the PNG")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_data(rng, args.train_size)
    x_held, y_held = make_data(rng, args.heldout_size)
    model = build_model()
    input_shape = (None, SIZE, SIZE, 1)
    model.summary(input_shape)
    key, init_key = jax.random.split(jax.random.key(args.seed))
    params = model.init(init_key, input_shape)
    optimizer = optax.adam(args.lr)
    # The optimizer sees the trainable params only (the moving statistics
    # are state, written back by the step).
    opt_state = optimizer.init(cj.trainable_params(model, params))
    step = cj.make_train_step(model, optimizer, cross_entropy)

    steps = range(args.steps)
    if not args.no_progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="training", unit="step")
    losses = []
    for i in steps:
        batch = rng.integers(0, args.train_size, args.batch_size)
        params, opt_state, loss = step(
            params,
            opt_state,
            x_train[batch],
            y_train[batch],
            jax.random.fold_in(key, i),
        )
        losses.append(float(loss))
        if i % 50 == 0 and not args.no_progress:
            steps.set_postfix(loss=f"{losses[-1]:.3f}")
    result = {
        "losses": losses,
        "train_accuracy": accuracy(model, params, x_train, y_train),
        "heldout_accuracy": accuracy(model, params, x_held, y_held),
    }
    depthwise = params[[layer.name for layer in model.layers].index("depthwise")]
    depthwise = depthwise["kernel"]
    norms = jnp.sqrt(jnp.sum(depthwise**2, axis=(0, 1)))
    result["max_depthwise_norm"] = float(norms.max())
    print(f"trained {args.steps} steps (batch {args.batch_size})")
    print(f"accuracy: train {result['train_accuracy']:.3f}, "
          f"held-out {result['heldout_accuracy']:.3f} "
          f"(chance {1 / len(CLASSES):.2f})")  # fmt: skip
    print(f"MaxNorm({MAX_NORM}) on the depthwise kernel: largest norm "
          f"{result['max_depthwise_norm']:.4f}")  # fmt: skip
    if not args.no_plot:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "pattern_classifier.png"
        predicted = jnp.argmax(model.apply(params, x_held[:10]), -1)
        plot(path, x_held, y_held, predicted, losses)
        print(f"plot saved to {path}")
        result["plot"] = str(path)
    print(f"done in {time.perf_counter() - start:.1f} s")
    return result


if __name__ == "__main__":
    main()
