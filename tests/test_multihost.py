"""The multi-host path, run: examples/multihost_train.py's ``--launch-local``
starts two processes on 127.0.0.1 (a free port, 2 CPU devices each, gloo
collectives) that train data-parallel across both; a fresh single process
with 4 devices then trains on the same global batches, and the losses and
final params must agree to float32 rounding.

This process never calls ``jax.distributed.initialize``: every JAX run here
is a subprocess of its own session, killed (with its children) on timeout.
The coordinator listens on 127.0.0.1 only; gloo's TCP transport listens at
the address this host's name resolves to (jax has no public setting for it),
which is loopback on most machines.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

SCRIPT = (
    pathlib.Path(__file__).resolve().parent.parent / "examples" / "multihost_train.py"
)
BUDGET_S = 120  # every subprocess of the test together
STEPS, BATCH, SEED = 4, 16, 3

# Failures that mean this platform cannot run JAX's distributed CPU runtime
# (no gloo in this jaxlib, or no usable local TCP), not that the code is wrong.
UNSUPPORTED = re.compile(
    r"has no attribute 'make_gloo_tcp_collectives'"
    r"|[Gg]loo[^\n]*(not (supported|available|implemented)|unsupported|unavailable)"
    r"|Address family not supported"
    r"|Cannot assign requested address"
    r"|socket[^\n]*Operation not permitted"
)
# The free port was taken between the bind that found it and the coordinator's.
PORT_TAKEN = re.compile(r"Address already in use|Failed to add port")


def _env():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("XLA_FLAGS", None)  # the script sets the device count itself
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _run(args, deadline):
    """Runs the script with ``args`` in a new session; returns (exit code,
    output). On timeout, kills the session (the script and its children)."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=SCRIPT.parent.parent,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"timed out: {' '.join(args)}\n{out[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out


def _load(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def test_two_processes_train_like_one(tmp_path):
    deadline = time.monotonic() + BUDGET_S
    common = ["--steps", str(STEPS), "--batch-size", str(BATCH), "--seed", str(SEED)]
    multi = tmp_path / "two_processes.npz"
    for attempt in range(2):
        code, out = _run(
            ["--launch-local", "2", "--local-devices", "2", "--timeout", "90"]
            + ["--init-timeout", "60", "--out", str(multi), *common],
            deadline,
        )
        if code == 0 or not PORT_TAKEN.search(out) or attempt:
            break
    if code and (reason := UNSUPPORTED.search(out)):
        pytest.skip(f"JAX's distributed CPU runtime cannot run here: {reason[0]!r}")
    assert code == 0, out[-4000:]
    assert "launching 2 processes, coordinator 127.0.0.1:" in out
    assert "[0] process 0/2: 2 of 4 devices, rows 0:8 of each global batch" in out
    assert "[1] process 1/2: 2 of 4 devices, rows 8:16 of each global batch" in out
    assert f"[0] step   {STEPS}/{STEPS}  loss" in out
    assert "[1] step" not in out  # only process 0 reports
    assert "params equal on every process" in out
    assert "exit codes: [0, 0]" in out

    single = tmp_path / "one_process.npz"
    code, out_single = _run(
        ["--local-devices", "4", "--out", str(single), *common], deadline
    )
    assert code == 0, out_single[-4000:]
    assert "process 0/1: 4 of 4 devices, rows 0:16" in out_single

    got, want = _load(multi), _load(single)
    assert sorted(got) == sorted(want)
    assert got["losses"].shape == (STEPS,)
    assert want["losses"][-1] < 0.9 * want["losses"][0]  # it trains
    np.testing.assert_allclose(got["losses"], want["losses"], rtol=1e-5)
    params = [name for name in want if name.startswith("params/")]
    assert len(params) == 8, params  # 4 convolutions' kernels and biases
    for name in params:
        assert got[name].dtype == want[name].dtype == np.float32
        np.testing.assert_allclose(
            got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name
        )
