"""Independent references where Keras lacks the feature: grouped transposed
convolution (an extension over Keras) against direct NumPy loops and, when it
is installed, ``torch.nn.functional.conv_transpose1d``.

The NumPy references are written from the definitions (a sliding window for
the convolution, a scatter of every input step for the transposed one), not
from conv1djax's code; Keras's own padding rule for the transposed case comes
from ``keras.src.backend.common.backend_utils``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from keras.src.backend.common.backend_utils import (
    compute_conv_transpose_padding_args_for_jax,
)

import conv1djax as cj
from conftest import assert_close, normal


def np_conv1d(x, w, stride, pad, dilation, groups):
    """Cross-correlation of x (B, L, C) with w (k, C/g, F), zero-padded."""
    x = np.pad(x, ((0, 0), pad, (0, 0)))
    b, length, c = x.shape
    k, cg, f = w.shape
    fg = f // groups
    out_len = (length - (k - 1) * dilation - 1) // stride + 1
    y = np.zeros((b, out_len, f))
    for g in range(groups):
        for t in range(out_len):
            for j in range(k):
                xs = x[:, t * stride + j * dilation, g * cg : (g + 1) * cg]
                y[:, t, g * fg : (g + 1) * fg] += xs @ w[j, :, g * fg : (g + 1) * fg]
    return y


def np_conv1d_transpose_full(x, w, stride, dilation, groups):
    """Every input step scattered through the kernel: w is (k, F/g, C)."""
    b, length, c = x.shape
    k, fg, _ = w.shape
    cg = c // groups
    full = np.zeros((b, (length - 1) * stride + (k - 1) * dilation + 1, fg * groups))
    for g in range(groups):
        for t in range(length):
            for j in range(k):
                xs = x[:, t, g * cg : (g + 1) * cg]
                ws = w[j, :, g * cg : (g + 1) * cg]  # (F/g, C/g)
                full[:, t * stride + j * dilation, g * fg : (g + 1) * fg] += xs @ ws.T
    return full


def _crop(full, start, out_len):
    """out[o] = full[o + start], zero outside ``full``."""
    out = np.zeros((full.shape[0], out_len, full.shape[2]))
    for o in range(out_len):
        if 0 <= o + start < full.shape[1]:
            out[:, o] = full[:, o + start]
    return out


def _transpose_cases():
    r = np.random.default_rng(7)
    for _ in range(60):
        groups = int(r.choice([1, 2, 3, 4]))
        k = int(r.integers(1, 6))
        strides, dilation = (
            (int(r.integers(1, 4)), 1)
            if r.random() < 0.6
            else (1, int(r.integers(1, 4)))
        )
        op = int(r.integers(0, strides)) if r.random() < 0.4 else None
        yield (
            dict(
                filters=groups * int(r.integers(1, 4)),
                kernel_size=k,
                strides=strides,
                padding=str(r.choice(["valid", "same"])),
                output_padding=op,
                dilation_rate=dilation,
                groups=groups,
                data_format=str(r.choice(["channels_last", "channels_first"])),
            ),
            groups * int(r.integers(1, 3)),
            int(r.integers(1, 9)),
        )


TRANSPOSE_CASES = list(_transpose_cases())


def _reference_transpose(config, x_nlc, kernel):
    k_eff = (config["kernel_size"] - 1) * config["dilation_rate"] + 1
    ((left, right),) = compute_conv_transpose_padding_args_for_jax(
        input_shape=x_nlc.shape,
        kernel_shape=kernel.shape,
        strides=config["strides"],
        padding=config["padding"],
        output_padding=config["output_padding"],
        dilation_rate=config["dilation_rate"],
    )
    full = np_conv1d_transpose_full(
        x_nlc, kernel, config["strides"], config["dilation_rate"], config["groups"]
    )
    out_len = (x_nlc.shape[1] - 1) * config["strides"] + left + right - k_eff + 2
    return full, _crop(full, k_eff - 1 - left, out_len)


@pytest.mark.parametrize("i", range(len(TRANSPOSE_CASES)))
def test_grouped_transpose_matches_numpy(i):
    config, channels, steps = TRANSPOSE_CASES[i]
    spec = cj.Conv1DTranspose(**config, use_bias=False)
    x = np.random.default_rng(i).normal(size=(2, steps, channels))
    cf = spec.data_format == "channels_first"
    params = spec.init(jax.random.key(i), x.transpose(0, 2, 1).shape if cf else x.shape)
    kernel = np.asarray(params["kernel"], np.float64)
    _, expected = _reference_transpose(config, x, kernel)
    x_in = x.transpose(0, 2, 1) if cf else x
    y = np.asarray(spec.apply(params, jnp.asarray(x_in, jnp.float32)))
    assert_close(y.transpose(0, 2, 1) if cf else y, expected)


@pytest.mark.parametrize("i", range(0, len(TRANSPOSE_CASES), 3))
def test_grouped_transpose_is_adjoint_of_grouped_conv(i):
    """<conv_transpose(x), y> == <x, conv(y)> for the same kernel: the
    transposed layer is the adjoint of a grouped Conv1D with strides and
    dilation, checked with jax.vjp of the forward convolution."""
    config, channels, steps = TRANSPOSE_CASES[i]
    config = {
        **config,
        "padding": "valid",
        "output_padding": None,
        "data_format": "channels_last",
    }
    spec = cj.Conv1DTranspose(**config, use_bias=False)
    x = normal(i, (2, steps, channels))
    params = spec.init(jax.random.key(i + 1), x.shape)
    y = spec.apply(params, x)
    fwd = cj.Conv1D(
        channels,
        config["kernel_size"],
        strides=config["strides"],
        dilation_rate=config["dilation_rate"],
        groups=config["groups"],
        use_bias=False,
    )
    # The forward conv maps y's shape back onto x's shape (valid padding, the
    # output_padding default only adds steps that the window never reaches).
    _, vjp = jax.vjp(lambda x_: fwd.apply(params, x_), y)
    (adjoint_of_x,) = vjp(x)
    assert_close(adjoint_of_x, y, atol=1e-5)


@pytest.mark.parametrize("seed", range(30))
def test_grouped_conv_matches_numpy(seed):
    r = np.random.default_rng(100 + seed)
    groups = int(r.choice([1, 2, 4]))
    k = int(r.integers(1, 6))
    strides, dilation = (
        (int(r.integers(1, 4)), 1) if seed % 2 else (1, int(r.integers(1, 4)))
    )
    padding = str(r.choice(["valid", "same", "causal"]))
    spec = cj.Conv1D(
        groups * 2,
        k,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        groups=groups,
        use_bias=False,
    )
    k_eff = (k - 1) * dilation + 1
    steps = int(r.integers(k_eff, k_eff + 10))
    x = r.normal(size=(2, steps, groups * 3))
    params = spec.init(jax.random.key(seed), x.shape)
    if padding == "valid":
        pad = (0, 0)
    elif padding == "causal":
        pad = (k_eff - 1, 0)
    else:  # TensorFlow's SAME: output ceil(L/s), the odd pad on the right
        out = -(-steps // strides)
        total = max((out - 1) * strides + k_eff - steps, 0)
        pad = (total // 2, total - total // 2)
    expected = np_conv1d(
        x, np.asarray(params["kernel"], np.float64), strides, pad, dilation, groups
    )
    assert_close(spec.apply(params, jnp.asarray(x, jnp.float32)), expected)


@pytest.mark.parametrize("i", range(0, len(TRANSPOSE_CASES), 2))
def test_grouped_transpose_matches_torch(i):
    torch = pytest.importorskip("torch")

    config, channels, steps = TRANSPOSE_CASES[i]
    spec = cj.Conv1DTranspose(**{**config, "data_format": "channels_last"})
    x = np.random.default_rng(i).normal(size=(2, steps, channels)).astype(np.float32)
    params = spec.init(jax.random.key(i), x.shape)
    kernel = np.asarray(params["kernel"])
    # torch's weight is (C, F/g, k); its padding=0 output is the full scatter.
    full = (
        torch.nn.functional.conv_transpose1d(
            torch.from_numpy(np.array(x.transpose(0, 2, 1))),
            torch.from_numpy(np.array(kernel.transpose(2, 1, 0))),
            stride=config["strides"],
            dilation=config["dilation_rate"],
            groups=config["groups"],
        )
        .numpy()
        .transpose(0, 2, 1)
    )
    full_np, expected_nobias = _reference_transpose(
        config, x.astype(np.float64), kernel
    )
    assert_close(full, full_np)  # torch and the NumPy scatter agree
    k_eff = (config["kernel_size"] - 1) * config["dilation_rate"] + 1
    ((left, _),) = compute_conv_transpose_padding_args_for_jax(
        input_shape=x.shape,
        kernel_shape=kernel.shape,
        strides=config["strides"],
        padding=config["padding"],
        output_padding=config["output_padding"],
        dilation_rate=config["dilation_rate"],
    )
    expected = _crop(full, k_eff - 1 - left, expected_nobias.shape[1])
    expected = expected + np.asarray(params["bias"])
    assert_close(spec.apply(params, x), expected)
