"""Data-parallel training: every device holds the model and trains on its share of the batch.

Each device computes the gradient of the loss on its own examples; the gradients are averaged
across devices, and every device applies the same update, so the copies of the parameters stay
identical. With equal shares and a loss that is a mean over examples, the averaged gradient is
the gradient on the whole batch, and training matches single-device training step for step.

Two ways to write it, both built from the same loss function as
:func:`purenn.training.make_train_step`:

- with ``jax.pmap`` (:func:`make_pmap_train_step`): the step runs once per device on a batch
  with an explicit leading device axis (:func:`shard_batch`), on parameters with one copy per
  device (:func:`replicate`), and averages the gradients with ``jax.lax.pmean``;
- with ``jax.jit`` over sharded arrays (:func:`make_sharded_train_step`): the ordinary
  single-device step, compiled for a batch split over a device mesh (:func:`batch_mesh`,
  :func:`put_batch`) and parameters replicated on it; the compiler inserts the averaging.

Both use the devices of this process. The helpers that place data say which devices they use,
so a multi-process launcher can build on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from purenn.training import LossFn, TrainStep, _step_function

__all__ = [
    "make_pmap_train_step",
    "replicate",
    "shard_batch",
    "unreplicate",
    "make_sharded_train_step",
    "batch_mesh",
    "put_replicated",
    "put_batch",
    "batch_sharding",
    "per_device",
]

PyTree = Any


def _leading_size(batch: PyTree) -> int:
    sizes = {int(np.shape(leaf)[0]) for leaf in jax.tree.leaves(batch) if np.ndim(leaf) > 0}
    if len(sizes) != 1:
        raise ValueError(
            "Every array in the batch must have the same leading (example) axis, but their "
            f"leading sizes are {sorted(sizes) or 'missing (the batch has no arrays)'}."
        )
    return sizes.pop()


def per_device(size: int, num_devices: int, over: str | None = None) -> int:
    """How many of ``size`` examples each of ``num_devices`` devices gets, if they split evenly.

    Every helper that splits a batch over devices or processes checks the split here, so the
    error reads the same everywhere.

    Args:
        size: the number of examples in the batch.
        num_devices: the number of devices to split them over.
        over: how the message names the devices, e.g. ``"2 processes × 4 devices"``;
            defaults to ``"{num_devices} devices"``.

    Returns:
        ``size // num_devices``.

    Raises:
        ValueError: if ``size`` is not a multiple of ``num_devices``; the message suggests
            the nearest sizes that are.

    Example:
        >>> from purenn.parallel import per_device
        >>> per_device(12, 4)
        3
        >>> try:
        ...     per_device(10, 4)
        ... except ValueError as err:
        ...     print(str(err).split(". ")[0])
        A batch of 10 examples does not split evenly over 4 devices
    """
    if size % num_devices:
        lower = size - size % num_devices
        below = f"{lower} or " if lower else ""
        where = f"{num_devices} devices" if over is None else f"{over} = {num_devices} devices"
        raise ValueError(
            f"A batch of {size} examples does not split evenly over {where}. Use a batch "
            f"size that is a multiple of {num_devices} (e.g. {below}{lower + num_devices}); "
            "purenn.data.batches with drop_remainder=True (its default) gives every batch "
            "the same size."
        )
    return size // num_devices


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding that splits arrays by their leading (example) axis over all of ``mesh``.

    Args:
        mesh: a device mesh, e.g. from :func:`batch_mesh`.

    Returns:
        ``NamedSharding(mesh, PartitionSpec(mesh.axis_names))``: axis 0 is split over every
        mesh axis together, so device ``i`` holds the ``i``-th block of examples.

    Example:
        >>> from purenn.parallel import batch_mesh, batch_sharding
        >>> batch_sharding(batch_mesh()).spec
        P('batch',)
    """
    return NamedSharding(mesh, P(mesh.axis_names))


# --- pmap: one copy of the step per device -------------------------------------------------


def replicate(tree: PyTree, devices: Sequence[jax.Device] | None = None) -> PyTree:
    """Give every leaf a leading device axis holding one copy per device, placed there.

    This is the form ``jax.pmap`` expects for values every device needs, such as parameters
    and optimizer state.

    Args:
        tree: a pytree of arrays, e.g. parameters.
        devices: the devices to copy to; defaults to ``jax.local_devices()``.

    Returns:
        The pytree with each leaf of shape ``(len(devices), *leaf.shape)``, copy ``i`` on
        ``devices[i]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from purenn.parallel import replicate
        >>> copies = replicate({"w": jnp.ones((3, 2))})
        >>> copies["w"].shape == (jax.local_device_count(), 3, 2)
        True
    """
    devices = list(jax.local_devices() if devices is None else devices)
    # The same placement pmap gives its own outputs, so the first step moves no data.
    mesh = Mesh(np.array(devices), ("devices",), axis_types=(AxisType.Auto,))
    sharding = NamedSharding(mesh, P("devices"))

    def copies(x: Any) -> jax.Array:
        shape = (len(devices), *jnp.shape(x))
        if jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):
            return jax.device_put(jnp.broadcast_to(x, shape), sharding)
        # Broadcast on the host: each device receives its copy, and nothing is compiled.
        return jax.device_put(np.broadcast_to(np.asarray(x), shape), sharding)

    return jax.tree.map(copies, tree)


def unreplicate(tree: PyTree) -> PyTree:
    """Take the first copy of every leaf of a replicated pytree (the inverse of replicate).

    Args:
        tree: a pytree whose leaves have a leading device axis.

    Returns:
        The pytree with that axis removed, each leaf the copy of the first device.

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.parallel import replicate, unreplicate
        >>> unreplicate(replicate({"w": jnp.arange(3.0)}))["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    return jax.tree.map(lambda x: x[0], tree)


def shard_batch(batch: PyTree, num_devices: int | None = None) -> PyTree:
    """Reshape a batch so its leading axis is the device axis: ``(n, ...)`` to ``(d, n/d, ...)``.

    Device ``i`` gets consecutive examples ``i * n/d`` to ``(i + 1) * n/d - 1``.

    Args:
        batch: a pytree of arrays sharing a leading example axis, e.g.
            :class:`purenn.data.Examples`.
        num_devices: the number of devices; defaults to ``jax.local_device_count()``.

    Returns:
        The batch with every leaf reshaped to ``(num_devices, n // num_devices, ...)``.

    Raises:
        ValueError: if the batch does not split evenly over the devices; the message suggests
            batch sizes that do.

    Example:
        >>> import numpy as np
        >>> from purenn.parallel import shard_batch
        >>> shard_batch({"x": np.zeros((8, 3))}, num_devices=4)["x"].shape
        (4, 2, 3)
        >>> try:
        ...     shard_batch({"x": np.zeros((10, 3))}, num_devices=4)
        ... except ValueError as err:
        ...     print(str(err).split(". ")[0])
        A batch of 10 examples does not split evenly over 4 devices
    """
    num_devices = jax.local_device_count() if num_devices is None else num_devices
    per_device_count = per_device(_leading_size(batch), num_devices)
    return jax.tree.map(lambda x: x.reshape(num_devices, per_device_count, *x.shape[1:]), batch)


def make_pmap_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    axis_name: str = "devices",
) -> TrainStep:
    """Build a data-parallel train step with ``jax.pmap``, averaging gradients with pmean.

    Every device runs the step of :func:`purenn.training.make_train_step` on its share of
    the batch; before the update, the gradients, the metrics and the new model state are
    averaged over the devices with ``jax.lax.pmean`` (floating-point leaves only), so all
    the copies take the same step. Each device's new state (e.g. BatchNorm statistics of its
    own share) is averaged the same way.

    Args:
        loss_fn: as for :func:`purenn.training.make_train_step`, written for one device's
            share of the batch; it needs no collectives of its own.
        optimizer: an ``optax.GradientTransformation``.
        axis_name: the name of the device axis, for collectives in ``loss_fn`` if wanted.

    Returns:
        A pmapped step with the signature of the single-device one. ``params``,
        ``state`` and ``opt_state`` must be :func:`replicate`-d, the batch
        :func:`shard_batch`-ed; the results, metrics included, have a leading device axis.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np, optax
        >>> from purenn.parallel import make_pmap_train_step, replicate, shard_batch
        >>> from purenn.training import stateless
        >>> def loss_fn(params, batch):
        ...     x, y = batch
        ...     return jnp.mean((x * params["w"] - y) ** 2), {}
        >>> optimizer = optax.sgd(0.1)
        >>> step = make_pmap_train_step(stateless(loss_fn), optimizer)
        >>> params, state = replicate({"w": jnp.array(0.0)}), replicate({})
        >>> opt_state = replicate(optimizer.init({"w": jnp.array(0.0)}))
        >>> n = 2 * jax.local_device_count()
        >>> batch = shard_batch((np.ones(n, np.float32), np.full(n, 2.0, np.float32)))
        >>> for _ in range(50):
        ...     params, state, opt_state, metrics = step(params, state, opt_state, batch)
        >>> np.round(np.asarray(params["w"]), 3).tolist() == [2.0] * jax.local_device_count()
        True
    """
    return jax.pmap(_step_function(loss_fn, optimizer, axis_name=axis_name), axis_name=axis_name)


# --- jit over sharded arrays: one program for the whole mesh --------------------------------


def batch_mesh(devices: Sequence[jax.Device] | None = None, axis_name: str = "batch") -> Mesh:
    """Make a one-axis device mesh to split batches over.

    The axis is of type ``AxisType.Auto``: the compiler decides how to place intermediate
    values, so an ordinary jitted step runs unchanged on sharded inputs.

    Args:
        devices: the devices of the mesh; defaults to ``jax.devices()``.
        axis_name: the name of the mesh axis.

    Returns:
        A ``jax.sharding.Mesh`` of shape ``(len(devices),)``.

    Example:
        >>> import jax
        >>> from purenn.parallel import batch_mesh
        >>> mesh = batch_mesh()
        >>> mesh.axis_names, mesh.size == jax.device_count()
        (('batch',), True)
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh(
        (len(devices),), (axis_name,), axis_types=(AxisType.Auto,), devices=devices
    )


def put_replicated(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place a full copy of every leaf on every device of ``mesh``.

    Args:
        tree: a pytree of arrays, e.g. parameters or optimizer state.
        mesh: the device mesh, e.g. from :func:`batch_mesh`.

    Returns:
        The pytree as arrays with a replicated ``NamedSharding`` (same shapes as before).

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.parallel import batch_mesh, put_replicated
        >>> params = put_replicated({"w": jnp.ones(3)}, batch_mesh())
        >>> params["w"].shape, params["w"].sharding.is_fully_replicated
        ((3,), True)
    """
    return jax.device_put(tree, NamedSharding(mesh, P()))


def put_batch(batch: PyTree, mesh: Mesh) -> PyTree:
    """Split a batch over ``mesh`` by its leading (example) axis.

    Device ``i`` of the mesh holds the ``i``-th block of consecutive examples. The array
    keeps its shape: only its placement changes.

    Args:
        batch: a pytree of arrays sharing a leading example axis, e.g.
            :class:`purenn.data.Examples`.
        mesh: a one-axis device mesh, e.g. from :func:`batch_mesh`.

    Returns:
        The batch as arrays with a ``NamedSharding`` that splits axis 0 over the mesh.

    Raises:
        ValueError: if the batch does not split evenly over the mesh's devices.

    Example:
        >>> import numpy as np
        >>> from purenn.parallel import batch_mesh, put_batch
        >>> batch = put_batch({"x": np.zeros((6, 2), np.float32)}, batch_mesh())
        >>> batch["x"].shape, len(batch["x"].addressable_shards) == batch_mesh().size
        ((6, 2), True)
    """
    per_device(_leading_size(batch), mesh.size)
    return jax.device_put(batch, batch_sharding(mesh))


def make_sharded_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    mesh: Mesh,
) -> TrainStep:
    """Build the single-device train step, jitted for a batch split over ``mesh``.

    The step is exactly the one of :func:`purenn.training.make_train_step`; only its
    shardings differ: the batch is split by examples over the mesh, and the parameters,
    optimizer state, model state and metrics are replicated. The compiler gives each device
    its block of the batch and adds the cross-device sums the mean over the batch needs. A
    model with state sees the statistics of the whole batch, as on one device.

    Args:
        loss_fn: as for :func:`purenn.training.make_train_step`.
        optimizer: an ``optax.GradientTransformation``.
        mesh: a one-axis device mesh, e.g. from :func:`batch_mesh`.

    Returns:
        A jitted step with the signature of the single-device one. Host arrays passed to it
        are placed by its shardings; arrays already placed (:func:`put_replicated`,
        :func:`put_batch`) must be placed that way. The batch size must be a multiple of the
        number of devices. It is a drop-in for :func:`purenn.training.fit`.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np, optax
        >>> from purenn.parallel import batch_mesh, make_sharded_train_step, put_replicated
        >>> from purenn.training import stateless
        >>> def loss_fn(params, batch):
        ...     x, y = batch
        ...     return jnp.mean((x * params["w"] - y) ** 2), {}
        >>> optimizer = optax.sgd(0.1)
        >>> mesh = batch_mesh()
        >>> step = make_sharded_train_step(stateless(loss_fn), optimizer, mesh)
        >>> params, state = put_replicated({"w": jnp.array(0.0)}, mesh), {}
        >>> opt_state = put_replicated(optimizer.init({"w": jnp.array(0.0)}), mesh)
        >>> n = 2 * mesh.size
        >>> batch = (np.ones(n, np.float32), np.full(n, 2.0, np.float32))
        >>> for _ in range(50):
        ...     params, state, opt_state, metrics = step(params, state, opt_state, batch)
        >>> round(float(params["w"]), 3), params["w"].sharding.is_fully_replicated
        (2.0, True)
    """
    replicated = NamedSharding(mesh, P())
    return jax.jit(
        _step_function(loss_fn, optimizer),
        in_shardings=(replicated, replicated, replicated, batch_sharding(mesh)),
        out_shardings=replicated,
    )
