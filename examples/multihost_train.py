"""Data-parallel training across several hosts: one process per host.

Every process runs this script. It joins the others through
``jax.distributed.initialize``, builds one mesh over all the processes'
devices (``jax.devices()``), and trains a small 1-D convolutional denoising
autoencoder (a strided ``Conv1D`` encoder and a ``Conv1DTranspose`` decoder,
with an L2 kernel regularizer, an L1 activity regularizer and a MaxNorm kernel
constraint) with ``cj.make_train_step``: params and optimizer state are
replicated on every device, and each global batch is assembled from the rows
that this process holds with ``jax.make_array_from_process_local_data``. The
step is the single-device one; ``jax.jit`` inserts the gradient all-reduce
(over gloo's TCP collectives on CPUs, over NCCL on GPUs).

The data are generated from ``--seed`` alone, so every process knows every
global batch and keeps only the rows its devices hold: with the mesh over
``jax.devices()`` (ordered by process), process ``i`` of ``N`` holds the
``i``-th of ``N`` equal blocks of each batch. A real pipeline would load only
those rows. Because the data do not depend on the number of processes, one
process with as many devices reproduces a run (same losses, same params, up to
float32 rounding):  ``--local-devices 4`` alone redoes a 2-process run with 2
devices each.

Process 0 prints each step's loss (the whole objective: MSE plus penalties),
and with ``--out FILE.npz`` saves the losses and the final params there
(``np.load(FILE, allow_pickle=False)`` reads it; params are keyed like
``params/0/kernel``). At the end every process checks that its params equal
process 0's.

Try it on one machine (N processes on 127.0.0.1 at a free port, K CPU
devices each, default 1; their output relayed, prefixed ``[i]``)::

    python examples/multihost_train.py --launch-local 2 --local-devices 2

On real hosts, run one copy per host, each with its own ``--process-id``
(0 to N-1) and the same other arguments; ``HOST`` is process 0's address,
reachable from every host, and ``PORT`` a free port there. They may start in
any order: each waits up to ``--init-timeout`` seconds for the others::

    # on host 0 (the coordinator)
    python examples/multihost_train.py --coordinator HOST:PORT \\
        --num-processes N --process-id 0
    # on host i
    python examples/multihost_train.py --coordinator HOST:PORT \\
        --num-processes N --process-id i

Each host then uses all its local accelerators (or ``--local-devices K`` CPU
devices); ``--batch-size``, the global batch, must be divisible by the total
number of devices. Process 0's coordinator listens on every interface unless
``--coordinator-bind ADDR:PORT`` says otherwise. On CPUs, the gloo
collectives connect the hosts directly, at the address each host's name
resolves to, so hostnames must resolve to addresses the other hosts can reach.
Under Slurm, Open MPI or on Cloud TPU, ``jax.distributed.initialize()``
finds all this itself; this script always passes it explicitly.

Run:  python examples/multihost_train.py [--launch-local N] [--steps S] ...
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np

LENGTH = 64  # steps per signal
NOISE = 0.4  # standard deviation of the added Gaussian noise
MAX_NORM = 1.0  # the MaxNorm kernel constraint's cap


# ---- data: a function of the seed alone -------------------------------------


def make_batches(seed, steps, batch_size, length=LENGTH, noise=NOISE):
    """Every global batch of the run: ``(noisy, clean)``, each
    ``(steps, batch_size, length, 1)`` float32, from ``seed`` alone (never
    from the process or the number of processes)."""
    rng = np.random.default_rng(seed)
    n = steps * batch_size
    t = np.linspace(0.0, 1.0, length, endpoint=False)
    clean = np.zeros((n, length))
    for _ in range(3):
        freq = rng.uniform(1.0, 6.0, size=(n, 1))  # cycles per signal
        amp = rng.uniform(0.2, 0.8, size=(n, 1))
        phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        clean += amp * np.sin(2 * np.pi * freq * t + phase)
    noisy = clean + noise * rng.normal(size=clean.shape)
    shape = (steps, batch_size, length, 1)
    return (
        noisy.reshape(shape).astype(np.float32),
        clean.reshape(shape).astype(np.float32),
    )


def process_rows(sharding, batch_size):
    """The rows of a ``(batch_size, ...)`` global batch that this process's
    devices hold under ``sharding``, in the order that
    ``jax.make_array_from_process_local_data`` expects them."""
    spans = set()
    for index in sharding.addressable_devices_indices_map((batch_size,)).values():
        rows = index[0]
        spans.add((rows.start or 0, batch_size if rows.stop is None else rows.stop))
    return np.concatenate([np.arange(a, b) for a, b in sorted(spans)])


# ---- the model ------------------------------------------------------------------


def build_model(cj, kernel_size=5, l2=1e-4, activity_l1=1e-4):
    """A small denoising autoencoder: 64x1 -> 32x8 -> 16x16 (bottleneck) ->
    64x1, every convolution with an L2 kernel regularizer and a MaxNorm
    kernel constraint, the bottleneck with an L1 activity regularizer."""
    conv = dict(
        kernel_size=kernel_size,
        strides=2,
        padding="same",
        kernel_regularizer=cj.regularizers.L2(l2),
        kernel_constraint=cj.constraints.MaxNorm(MAX_NORM, axis=(0, 1)),
    )
    return cj.Sequential(
        [
            cj.Conv1D(8, activation="gelu", **conv),
            cj.Conv1D(16, **conv),
            cj.Activation("gelu", activity_regularizer=cj.regularizers.L1(activity_l1)),
            cj.Conv1DTranspose(8, activation="gelu", **conv),
            cj.Conv1DTranspose(1, **conv),
        ]
    )


def flat_params(params):
    """``{"params/0/kernel": array, ...}``: the params as host arrays, named
    by their path (for ``np.savez``)."""
    import jax

    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(getattr(k, "idx", getattr(k, "key", k))) for k in path]
        # A replicated array is whole on each of this process's devices.
        flat["/".join(["params", *keys])] = np.asarray(leaf.addressable_data(0))
    return flat


# ---- one process's part ---------------------------------------------------------


def configure_jax(args):
    """Everything that must happen before JAX starts its backends."""
    import jax

    if args.local_devices is not None:
        jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_num_cpu_devices", args.local_devices)
    if args.num_processes > 1:
        # Cross-process collectives on CPU devices: gloo is this jax's default,
        # older ones had none (no effect on GPUs and TPUs).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            coordinator_bind_address=args.coordinator_bind,
            initialization_timeout=args.init_timeout,
        )
    return jax


def train(args):
    """Trains ``args.steps`` steps on this process's part of every batch;
    returns ``(losses, flat params)`` (the same on every process)."""
    jax = configure_jax(args)
    import jax.numpy as jnp
    import optax

    import conv1djax as cj

    pid, n_proc = jax.process_index(), jax.process_count()
    mesh = cj.parallel.data_mesh()  # over jax.devices(): every process's devices
    if args.batch_size % mesh.size:
        raise SystemExit(
            f"--batch-size (={args.batch_size}) must be divisible by the number "
            f"of devices on the mesh (={mesh.size})."
        )
    sharding = cj.parallel.batch_sharding(mesh)
    rows = process_rows(sharding, args.batch_size)
    span = (
        f"{rows[0]}:{rows[-1] + 1}"
        if np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))
        else str(rows.tolist())
    )
    print(
        f"process {pid}/{n_proc}: {jax.local_device_count()} of "
        f"{jax.device_count()} devices, rows {span} of each global batch of "
        f"{args.batch_size}",
        flush=True,
    )

    model = build_model(cj)
    optimizer = optax.adam(args.lr)
    # The same key on every process: the same initial params everywhere.
    params = model.init(jax.random.key(args.seed), (None, LENGTH, 1))
    opt_state = optimizer.init(params)
    params = cj.parallel.replicate(params, mesh)
    opt_state = cj.parallel.replicate(opt_state, mesh)
    step = cj.make_train_step(model, optimizer, lambda p, t: jnp.mean((p - t) ** 2))

    noisy, clean = make_batches(args.seed, args.steps, args.batch_size)
    losses = []
    start = time.perf_counter()
    for i in range(args.steps):
        # This process's rows only; the result is the global (batch_size, ...)
        # array, sharded over every process's devices.
        x = jax.make_array_from_process_local_data(sharding, noisy[i][rows])
        y = jax.make_array_from_process_local_data(sharding, clean[i][rows])
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(float(loss))  # replicated: readable on every process
        if pid == 0:
            print(f"step {i + 1:>3}/{args.steps}  loss {losses[-1]:.6f}", flush=True)
    flat = flat_params(params)
    checked = ""
    if n_proc > 1:
        from jax.experimental import multihost_utils

        multihost_utils.assert_equal(flat, "params differ between processes")
        checked = "; params equal on every process"
    if pid == 0:
        print(
            f"{args.steps} steps on {jax.device_count()} devices in {n_proc} "
            f"process(es): {time.perf_counter() - start:.1f} s{checked}",
            flush=True,
        )
    if args.out is not None and pid == 0:
        np.savez(args.out, losses=np.asarray(losses, np.float32), **flat)
        print(f"saved losses and params to {args.out}", flush=True)
    if n_proc > 1:
        jax.distributed.shutdown()
    return np.asarray(losses, np.float32), flat


# ---- trying it on one machine ---------------------------------------------------


def free_port(host="127.0.0.1"):
    """A TCP port that is free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def child_argv(args, process_id, coordinator):
    """This script's command line for process ``process_id`` of a local run."""
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--coordinator", coordinator,
        "--coordinator-bind", coordinator,
        "--num-processes", str(args.launch_local),
        "--process-id", str(process_id),
        "--steps", str(args.steps),
        "--seed", str(args.seed),
        "--batch-size", str(args.batch_size),
        "--lr", repr(args.lr),
        "--init-timeout", str(args.init_timeout),
    ]  # fmt: skip
    # CPU devices: local processes would otherwise share the accelerators.
    argv += ["--local-devices", str(args.local_devices or 1)]
    if args.out is not None:
        argv += ["--out", args.out]
    return argv


def launch_local(args, out=None):
    """Runs ``args.launch_local`` processes of this script on 127.0.0.1 and
    relays their output (each line prefixed by its process id) to ``out``
    (default: stdout). Kills them all when one fails or ``args.timeout``
    seconds pass. Returns 0 when every process succeeded, else 1."""
    out = sys.stdout if out is None else out
    coordinator = f"127.0.0.1:{free_port()}"
    procs, relays, lock = [], [], threading.Lock()

    def say(line):
        with lock:
            out.write(line)
            out.flush()

    def relay(pid, stream):
        for line in stream:
            say(f"[{pid}] {line}")

    say(f"launching {args.launch_local} processes, coordinator {coordinator}\n")

    try:
        for pid in range(args.launch_local):
            proc = subprocess.Popen(
                child_argv(args, pid, coordinator),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            procs.append(proc)
            thread = threading.Thread(target=relay, args=(pid, proc.stdout))
            thread.start()
            relays.append(thread)
        deadline = time.monotonic() + args.timeout
        while None in (codes := [p.poll() for p in procs]):
            if any(codes):
                say("a process failed: stopping the others\n")
                break
            if time.monotonic() > deadline:
                say(f"timed out after {args.timeout} s: stopping the processes\n")
                break
            time.sleep(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()
        for thread in relays:
            thread.join(timeout=5)
    codes = [p.returncode for p in procs]
    say(f"exit codes: {codes}\n")
    return 0 if codes and not any(codes) else 1


# ---- command line ---------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--coordinator", help="HOST:PORT of process 0's coordinator service"
    )
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument(
        "--coordinator-bind",
        help="ADDR:PORT that process 0's coordinator listens on "
        "(default: every interface, at the --coordinator port)",
    )
    parser.add_argument(
        "--init-timeout",
        type=int,
        default=300,
        help="seconds to wait for every process to join",
    )
    parser.add_argument(
        "--local-devices",
        type=int,
        help="use K CPU devices in each process, not the accelerators (for "
        "testing; --launch-local's default: 1)",
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="global batch (all processes together)",
    )
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--out", help="FILE.npz for process 0's losses and params")
    parser.add_argument(
        "--launch-local",
        type=int,
        metavar="N",
        help="start N processes of this script on 127.0.0.1 and relay their output",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="with --launch-local: seconds before every process is killed",
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "num_processes", "init_timeout"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.local_devices is not None and args.local_devices < 1:
        parser.error("--local-devices must be at least 1")
    if args.launch_local is not None:
        if args.launch_local < 1:
            parser.error("--launch-local must be at least 1")
        if args.coordinator or args.num_processes != 1:
            parser.error("--launch-local picks the coordinator and process ids")
    elif args.num_processes > 1 and not args.coordinator:
        parser.error("--num-processes > 1 needs --coordinator HOST:PORT")
    if not 0 <= args.process_id < args.num_processes:
        parser.error("--process-id must be in [0, --num-processes)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.launch_local is not None:
        return launch_local(args)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
