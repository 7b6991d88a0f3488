"""The examples run end to end at a few steps: examples/denoise_autoencoder.py,
examples/pattern_classifier.py, examples/wavenet_forecast.py and
examples/streaming_denoise.py."""

import importlib.util
import math
import pathlib
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")


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


def test_denoise_autoencoder_runs_and_plots(denoise, tmp_path, capsys):
    result = denoise.main(
        ["--steps", "30", "--out", str(tmp_path), "--no-progress"]
        + ["--train-size", "512", "--heldout-size", "512"]
    )
    out = capsys.readouterr().out
    png = tmp_path / "denoise.png"
    assert f"plot saved to {png}" in out
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    assert "Total params" in out and "held-out: denoised" in out
    assert math.isfinite(result["heldout"]["denoised"])
    assert result["constraint_holds"]
    assert len(result["history"]["loss"]) == 30


def test_denoise_autoencoder_training_helps(denoise, tmp_path, capsys):
    # The progress bar is on here (tqdm writes to the captured stderr).
    result = denoise.main(["--steps", "150", "--out", str(tmp_path), "--no-plot"])
    captured = capsys.readouterr()
    assert "training" in captured.err
    assert not (tmp_path / "denoise.png").exists()
    held = result["heldout"]
    assert held["denoised"] < 0.25 * held["noisy"], held
    assert result["train"]["denoised"] < 0.25 * result["train"]["noisy"]
    assert result["max_kernel_norm"] <= denoise.MAX_NORM * (1 + 1e-6)


@pytest.fixture(scope="module")
def classifier():
    yield from _example("pattern_classifier")


def test_pattern_classifier_learns_and_plots(classifier, tmp_path, capsys):
    result = classifier.main(
        ["--steps", "200", "--out", str(tmp_path), "--no-progress"]
        + ["--train-size", "1024", "--heldout-size", "512"]
    )
    out = capsys.readouterr().out
    assert "Total params: 1,956" in out and "separable_conv2d (SeparableConv2D)" in out
    png = tmp_path / "pattern_classifier.png"
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert result["heldout_accuracy"] > 0.9, result["heldout_accuracy"]
    assert result["max_depthwise_norm"] <= classifier.MAX_NORM * (1 + 1e-6)
    assert result["losses"][-1] < 0.25 * result["losses"][0]


@pytest.fixture(scope="module")
def wavenet():
    yield from _example("wavenet_forecast")


def test_wavenet_forecast_runs_and_plots(wavenet, tmp_path, capsys):
    result = wavenet.main(
        ["--steps", "20", "--out", str(tmp_path), "--no-progress"]
        + ["--channels", "8", "--blocks", "3", "--train-size", "64"]
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
    held = result["heldout"]
    for name in ("wavenet", "persistence", "linear_ar", "regularization", "activity"):
        assert math.isfinite(held[name]), (name, held)
    # Two MaxNorm kernels (res, skip) in each of the 3 blocks, all found.
    assert result["constrained_kernels"] == 6
    assert result["constraint_holds"]
    assert len(result["history"]["loss"]) == 20


def test_wavenet_forecast_beats_persistence(wavenet, tmp_path, capsys):
    result = wavenet.main(
        ["--steps", "250", "--out", str(tmp_path), "--no-plot", "--no-progress"]
        + ["--heldout-size", "512"]
    )
    capsys.readouterr()
    assert not (tmp_path / "wavenet_forecast.png").exists()
    held = result["heldout"]
    # 250 steps already beat persistence about 3.6x and the linear AR 1.6x.
    assert held["wavenet"] < 0.4 * held["persistence"], held
    assert held["wavenet"] < 0.85 * held["linear_ar"], held
    assert held["lower_bound"] < held["wavenet"]
    # The penalties inside the blocks and the head are counted.
    assert held["regularization"] > 0 and held["activity"] > 0
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
