"""Data parallelism on JAX's own engine: params replicated, the batch sharded
over a ``jax.sharding.Mesh``.

The train step from :func:`conv1djax.make_train_step` needs no change: given
inputs placed with these shardings, ``jax.jit`` partitions the computation
and inserts the gradient all-reduce itself.

On several hosts, call ``jax.distributed.initialize()`` first in every
process, build the mesh over ``jax.devices()`` (all hosts' devices), and
build each global batch from the per-host shards with
``jax.make_array_from_process_local_data(batch_sharding(mesh), local_batch)``
instead of :func:`shard_batch`; the step itself is unchanged.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def data_mesh(devices=None, axis_name: str = "data") -> Mesh:
    """A 1-D mesh over ``devices`` (default: all of them) for data parallelism."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (axis_name,))


def batch_sharding(mesh: Mesh, axis_name: str = "data") -> NamedSharding:
    """Splits an array's leading (batch) axis over ``axis_name``."""
    return NamedSharding(mesh, PartitionSpec(axis_name))


def replicate(tree, mesh: Mesh):
    """Places every leaf of ``tree`` (params, optimizer state) on every device."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(tree, mesh: Mesh, axis_name: str = "data"):
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
