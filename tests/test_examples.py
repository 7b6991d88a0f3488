"""The examples run end to end at a few steps: examples/denoise_autoencoder.py,
examples/pattern_classifier.py, examples/wavenet_forecast.py,
examples/streaming_denoise.py, examples/image_denoise_2d.py,
examples/separable_classifier.py and examples/interop_roundtrip.py."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

# The examples train with optax's Adam, which promotes a float and its int32
# step count: standard promotion for them.
pytestmark = pytest.mark.loose_promotion


def _example(name: str):
    """Yields ``examples/<name>.py`` as a module (examples/ is not a
    package), registered in sys.modules while in use: dataclasses (the
    WaveNet example's SkipSum layer) look their module up there."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture(scope="module")
def denoise():
    yield from _example("denoise_autoencoder")


def test_denoise_autoencoder_trains_and_plots(denoise, tmp_path, capsys):
    # The progress bar is on here (tqdm writes to the captured stderr).
    result = denoise.main(["--steps", "150", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    out = captured.out
    assert "training" in captured.err
    png = tmp_path / "denoise.png"
    assert f"plot saved to {png}" in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    assert "Total params" in out and "held-out: denoised" in out
    assert len(result["history"]["loss"]) == 150
    held = result["heldout"]
    assert held["denoised"] < 0.25 * held["noisy"], held
    assert result["train"]["denoised"] < 0.25 * result["train"]["noisy"]
    assert result["constraint_holds"]
    assert result["max_kernel_norm"] <= denoise.MAX_NORM * (1 + 1e-6)


@pytest.fixture(scope="module")
def classifier():
    yield from _example("pattern_classifier")


def test_pattern_classifier_learns_and_plots(classifier, tmp_path, capsys):
    result = classifier.main(
        ["--steps", "150", "--out", str(tmp_path), "--no-progress"]
        + ["--train-size", "1024", "--heldout-size", "512"]
    )
    out = capsys.readouterr().out
    assert "Total params: 2,004" in out and "separable_conv2d (SeparableConv2D)" in out
    assert "Non-trainable params: 32" in out  # the moving statistics
    assert "batch_normalization (BatchNormalization)" in out and "dense (Dense)" in out
    png = tmp_path / "pattern_classifier.png"
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert result["heldout_accuracy"] > 0.9, result["heldout_accuracy"]
    assert result["max_depthwise_norm"] <= classifier.MAX_NORM * (1 + 1e-6)
    assert result["losses"][-1] < 0.25 * result["losses"][0]


@pytest.fixture(scope="module")
def wavenet():
    yield from _example("wavenet_forecast")


def test_wavenet_forecast_beats_persistence_and_plots(wavenet, tmp_path, capsys):
    result = wavenet.main(
        ["--steps", "250", "--out", str(tmp_path), "--no-progress"]
        + ["--heldout-size", "512"]
    )
    out = capsys.readouterr().out
    png = tmp_path / "wavenet_forecast.png"
    assert f"plot saved to {png}" in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    assert "Total params" in out and "skip_sum (SkipSum)" in out
    assert "filter_d4 (Conv1D)" in out and "held-out: WaveNet" in out
    assert len(result["history"]["loss"]) == 250
    held = result["heldout"]
    # 250 steps already beat persistence about 3.6x and the linear AR 1.6x.
    assert held["wavenet"] < 0.4 * held["persistence"], held
    assert held["wavenet"] < 0.85 * held["linear_ar"], held
    assert held["lower_bound"] < held["wavenet"]
    # The penalties inside the blocks and the head are counted.
    assert held["regularization"] > 0 and held["activity"] > 0
    # Two MaxNorm kernels (res, skip) in each of the 6 blocks, all found.
    assert result["constrained_kernels"] == 2 * 6  # the default 6 blocks
    assert result["constraint_holds"]
    assert result["max_kernel_norm"] <= wavenet.MAX_NORM * (1 + 1e-6)


@pytest.fixture(scope="module")
def streaming():
    yield from _example("streaming_denoise")


def test_streaming_denoise_streams_exactly_and_plots(streaming, tmp_path, capsys):
    result = streaming.main(
        ["--steps", "150", "--length", "600", "--out", str(tmp_path), "--no-progress"]
    )
    out = capsys.readouterr().out
    png = tmp_path / "streaming_denoise.png"
    assert f"plot saved to {png}" in out and "latency 0 (causal)" in out
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    # Random-length chunks, one step included, equal apply on the whole.
    assert 1 in result["chunks"] and sum(result["chunks"]) == 600
    assert result["max_diff"] < 1e-4
    assert result["mse_denoised"] < 0.8 * result["mse_noisy"]


@pytest.fixture(scope="module")
def image_denoise():
    yield from _example("image_denoise_2d")


def test_image_denoise_2d_beats_the_noise_and_plots(image_denoise, tmp_path, capsys):
    result = image_denoise.main(
        ["--steps", "150", "--out", str(tmp_path), "--no-progress"]
        + ["--train-size", "512", "--heldout-size", "256"]
    )
    out = capsys.readouterr().out
    png = tmp_path / "image_denoise_2d.png"
    assert f"plot saved to {png}" in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    assert "conv2d_transpose (Conv2DTranspose)" in out and "Total params: 38,817" in out
    held = result["heldout"]
    # 150 steps already take the held-out MSE about 5x below the noise's.
    assert held["denoised"] < 0.35 * held["noisy"], held
    assert result["train"]["denoised"] < 0.35 * result["train"]["noisy"]
    assert held["blur"] < held["noisy"] and result["blur_sigma"] > 0
    assert len(result["history"]["loss"]) == 150


@pytest.fixture(scope="module")
def separable():
    yield from _example("separable_classifier")


def test_separable_classifier_finds_the_chirp_and_plots(separable, tmp_path, capsys):
    result = separable.main(
        ["--steps", "200", "--out", str(tmp_path), "--no-progress"]
        + ["--train-size", "2048", "--heldout-size", "512"]
    )
    out = capsys.readouterr().out
    png = tmp_path / "separable_classifier.png"
    assert f"plot saved to {png}" in out
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert (
        "depthwise (DepthwiseConv1D)" in out and "separable_d2 (SeparableConv1D)" in out
    )
    assert "Total params: 2,798" in out and "Total params: 2,702" in out
    sep, plain = result["separable"], result["plain"]
    # The same size, within 5%.
    assert abs(sep["params"] - plain["params"]) < 0.05 * plain["params"]
    # 200 steps: about 0.64 (separable) and 0.32 (plain) held-out, chance 1/6.
    chance = 1 / separable.CHANNELS
    assert sep["heldout_accuracy"] > chance + 0.3, sep["heldout_accuracy"]
    assert plain["heldout_accuracy"] > chance + 0.07, plain["heldout_accuracy"]
    assert sep["heldout_accuracy"] > plain["heldout_accuracy"] + 0.1
    assert result["confusion"].sum() == 512
    assert np.trace(result["confusion"]) == round(512 * sep["heldout_accuracy"])
    for r in (sep, plain):
        assert r["history"]["loss"][-1] < r["history"]["loss"][0]


@pytest.fixture(scope="module")
def interop():
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    yield from _example("interop_roundtrip")


def test_interop_roundtrip_outputs_agree_and_plots(interop, tmp_path, capsys):
    result = interop.main(
        ["--steps", "60", "--out", str(tmp_path), "--no-progress"]
        + ["--train-size", "256", "--heldout-size", "64"]
    )
    out = capsys.readouterr().out
    png = tmp_path / "interop_roundtrip.png"
    assert f"plot saved to {png}" in out
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert "conv1d_transpose (Conv1DTranspose)" in out
    diffs = result["diffs"]
    assert set(diffs) == {"import", "keras", "torch", "loaded"}
    for name, diff in diffs.items():
        assert diff < 1e-5, (name, diffs)
    assert diffs["loaded"] == 0.0  # the same weights, the same program
    assert result["same_model"]
    assert result["params"] == result["torch_params"] == result["keras_params"]
    # The fine-tuning did something: below the noise, and far below the
    # random init.
    assert result["mse_after"] < 0.7 * result["mse_noisy"], result
    assert result["mse_after"] < 0.5 * result["mse_before"], result


@pytest.fixture(scope="module")
def fir():
    yield from _example("fir_identification")


def test_fir_identification_recovers_the_filter_and_plots(fir, tmp_path, capsys):
    result = fir.main(["--steps", "150", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    png = tmp_path / "fir_identification.png"
    assert f"saved {png}" in out
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    # The fitted kernel is the hidden filter, and the loss fell to the noise.
    assert result["error"] < 0.02
    assert result["losses"][-1] < 1e-3 * result["losses"][0]
