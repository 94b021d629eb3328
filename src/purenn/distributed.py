"""Which rows of a batch each process feeds, and the global batch assembled from them.

On a cluster, every host runs its own Python process. ``jax.distributed.initialize`` connects
them through a *coordinator* (a small service in process 0); after it, ``jax.devices()``
lists the devices of every process, a mesh can span all of them, and a jitted step over that
mesh runs its collectives across processes. Each process feeds only the rows of the batch
that its own devices hold: :func:`process_rows` says which, and :func:`put_process_batch`
makes the global batch from them.

The same functions run in a single process, where the process holds every row.
:mod:`purenn.launch` starts and supervises local worker processes, and :mod:`purenn.digits`
trains the digits classifier with these functions, whatever processes its mesh spans.
"""

from __future__ import annotations

import socket
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from purenn.parallel import batch_sharding, per_device

__all__ = ["free_port", "process_rows", "put_process_batch"]

PyTree = Any

LOOPBACK = "127.0.0.1"
"""The address local workers' coordinator listens on: this machine only."""


def free_port(host: str = LOOPBACK) -> int:
    """Ask the operating system for a TCP port that is free on ``host`` right now.

    The port is released again before this returns, so another program could take it before
    the coordinator binds it; :func:`purenn.launch.start` checks again and says so if that
    happened.

    Args:
        host: the address to find a port on.

    Returns:
        A port number between 1024 and 65535.

    Example:
        >>> from purenn.distributed import free_port
        >>> 1024 <= free_port() <= 65535
        True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def process_rows(mesh: Mesh, batch_size: int) -> slice:
    """The rows of a batch split over ``mesh`` that this process's devices hold.

    A batch split by its leading axis gives each device of the mesh a block of consecutive
    rows. The devices of one process are next to each other in a mesh made from
    ``jax.devices()``, so the process holds one contiguous range of rows: the only rows it
    has to read.

    Args:
        mesh: the device mesh the batch is split over, e.g. from
            :func:`purenn.parallel.batch_mesh`.
        batch_size: the number of examples in the whole (global) batch.

    Returns:
        A ``slice`` of the global batch; all of it in a single-process run.

    Raises:
        ValueError: if ``batch_size`` does not divide over the mesh's devices, or this
            process's devices are not next to each other in the mesh.

    Example:
        >>> from purenn.distributed import process_rows
        >>> from purenn.parallel import batch_mesh
        >>> process_rows(batch_mesh(), 128)  # one process holds every row
        slice(0, 128, None)
    """
    if batch_size < 1:
        raise ValueError(
            f"A batch must hold at least {mesh.size} examples (one per device), not {batch_size}."
        )
    per_device(batch_size, mesh.size)
    index_map = batch_sharding(mesh).addressable_devices_indices_map((batch_size,))
    blocks = sorted(
        (index[0].start or 0, index[0].stop or batch_size) for index in index_map.values()
    )
    start, stop = blocks[0][0], blocks[-1][1]
    if stop - start != sum(b - a for a, b in blocks):
        raise ValueError(
            f"This process's devices hold rows {blocks} of the batch, which are not one "
            "contiguous range. Build the mesh from jax.devices() in their own order (as "
            "purenn.parallel.batch_mesh does), so each process's devices are adjacent."
        )
    return slice(start, stop)


def put_process_batch(local: PyTree, mesh: Mesh, batch_size: int) -> PyTree:
    """Assemble a global batch, split over ``mesh``, from this process's rows of it.

    Each process passes only the rows :func:`process_rows` names; JAX places them on the
    process's own devices, and the result is one array of ``batch_size`` rows spanning every
    process (``jax.make_array_from_process_local_data``). No process ever holds the whole
    batch.

    Args:
        local: this process's rows, a pytree of arrays with a leading example axis, e.g.
            :class:`purenn.data.Examples`.
        mesh: the device mesh, as given to :func:`process_rows`.
        batch_size: the number of examples in the global batch.

    Returns:
        The global batch: every leaf of shape ``(batch_size, *local_leaf.shape[1:])``, split
        over the mesh by rows.

    Raises:
        ValueError: if ``local`` does not have exactly this process's number of rows.

    Example:
        >>> import numpy as np
        >>> from purenn.distributed import put_process_batch
        >>> from purenn.parallel import batch_mesh
        >>> batch = put_process_batch({"x": np.zeros((8, 3), np.float32)}, batch_mesh(), 8)
        >>> batch["x"].shape, batch["x"].sharding.mesh.axis_names
        ((8, 3), ('batch',))
    """
    rows = process_rows(mesh, batch_size)
    expected = rows.stop - rows.start
    sharding = batch_sharding(mesh)

    def place(leaf: Any) -> jax.Array:
        leaf = np.asarray(leaf)
        if leaf.ndim == 0 or leaf.shape[0] != expected:
            raise ValueError(
                f"This process holds rows {rows.start} to {rows.stop - 1} of each batch of "
                f"{batch_size}, so it must pass {expected} rows, but an array has shape "
                f"{leaf.shape}. Slice the batch with process_rows(mesh, batch_size)."
            )
        global_shape = (batch_size, *leaf.shape[1:])
        return jax.make_array_from_process_local_data(sharding, leaf, global_shape)

    return jax.tree.map(place, local)
