"""Data parallelism on JAX's own engine: params replicated, the batch sharded
over a ``jax.sharding.Mesh``.

The train step from :func:`conv1djax.make_train_step` needs no change: given
inputs placed with these shardings, ``jax.jit`` partitions the computation
and inserts the gradient all-reduce itself.

On several hosts (one process each), call
``jax.distributed.initialize(coordinator_address, num_processes, process_id)``
in every process before any other JAX call (with no arguments only where JAX
detects the cluster: Slurm, Open MPI, Cloud TPU; CPU hosts use gloo
collectives). Build the mesh over ``jax.devices()`` (all hosts' devices,
ordered by process, so process ``i`` of ``N`` holds the ``i``-th of ``N``
equal blocks of each batch) and give each process's rows to
``jax.make_array_from_process_local_data(batch_sharding(mesh), local_batch)``.
:func:`shard_batch` works too, but only if every process passes the whole,
identical batch, which JAX gathers to check; :func:`replicate` needs the same
values on every process (JAX checks). The step itself is unchanged.
Replicated results (the loss, the params) can be read on any process
(``float(loss)``, ``leaf.addressable_data(0)``); batch-sharded ones need
``jax.experimental.multihost_utils.process_allgather``.
``examples/multihost_train.py`` runs all of this, on one machine with
``--launch-local 2``; ``tests/test_multihost.py`` checks that two processes
train exactly as one.

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> mesh = cj.parallel.data_mesh(jax.devices()[:1])  # here, one device
>>> params = cj.parallel.replicate({"kernel": jnp.ones((3, 2, 4))}, mesh)
>>> x = cj.parallel.shard_batch(jnp.ones((8, 16, 2)), mesh)
>>> x.shape, x.sharding == cj.parallel.batch_sharding(mesh)
((8, 16, 2), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

T = TypeVar("T")  # a pytree of arrays

# The mesh axis the batch is split over (the functions' default ``axis_name``),
# and the one a synchronized BatchNormalization averages its statistics over
# where the step runs per device (jax.shard_map, jax.pmap).
DATA_AXIS = "data"


def data_mesh(
    devices: Sequence[jax.Device] | None = None, axis_name: str = DATA_AXIS
) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all of them) for data parallelism."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (axis_name,))


def batch_sharding(mesh: Mesh, axis_name: str = DATA_AXIS) -> NamedSharding:
    """Splits an array's leading (batch) axis over ``axis_name``."""
    return NamedSharding(mesh, PartitionSpec(axis_name))


def replicate(tree: T, mesh: Mesh) -> T:
    """Places every leaf of ``tree`` (params, optimizer state) on every device."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(tree: T, mesh: Mesh, axis_name: str = DATA_AXIS) -> T:
    """Splits every leaf's leading axis over the mesh.

    Raises:
      ValueError: when a leading axis is not divisible by the mesh size.
    """
    size = mesh.shape[axis_name]
    for leaf in jax.tree.leaves(tree):
        if np.shape(leaf)[0] % size:
            raise ValueError(
                f"The batch axis (={np.shape(leaf)[0]}) must be divisible by the "
                f"number of devices on mesh axis {axis_name!r} (={size})."
            )
    return jax.device_put(tree, batch_sharding(mesh, axis_name))
