"""Data-parallel training as several processes, joined into one mesh by ``jax.distributed``.

On a cluster, every host runs its own Python process. ``jax.distributed.initialize`` connects
them through a *coordinator* (a small service in process 0); after it, ``jax.devices()``
lists the devices of every process, a mesh can span all of them, and a jitted step over that
mesh runs its collectives across processes. Each process feeds only the rows of the batch
that its own devices hold.

This module runs that on one machine: :func:`launch` starts ``processes`` workers on
127.0.0.1, each with ``devices_per_process`` simulated CPU devices that talk to the other
processes through the gloo library, and a coordinator on a free loopback port. Every worker
trains the digits classifier with :func:`train_digits`: the single-device train step of
:func:`purenn.training.make_train_step`, compiled for the global mesh by
:func:`purenn.parallel.make_sharded_train_step`, on batches assembled from every process's
rows by :func:`put_process_batch`. Run in one process on a mesh of the same shape, the same
function gives the same parameters, up to float32 rounding.

The launcher watches its workers: if one dies, or the coordinator cannot start, it stops the
others (each worker is its own process group: SIGTERM, then SIGKILL after a grace period),
and raises :class:`LaunchError` naming the worker, how it ended and the last lines of its
log. It does the same on a timeout and on KeyboardInterrupt, so no worker outlives it.

From the command line::

    python -m purenn.distributed --processes 2 --devices-per-process 4 --output params.npz

prints every worker's log prefixed with its id, and the final parameter checksum; process 0
writes the final parameters to ``--output``. On a cluster, the scheduler starts the processes
instead: ``python -m purenn.distributed --worker --steps 20`` (for example under ``srun``)
calls ``jax.distributed.initialize()`` without arguments, which reads the coordinator
address, the number of processes and this process's id from the environment of SLURM, Open
MPI or a Cloud TPU.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from purenn.data import NUM_CLASSES, Examples, batches, load_digits
from purenn.layers import mlp_apply, mlp_init
from purenn.parallel import batch_mesh, make_sharded_train_step, put_replicated
from purenn.training import classification_loss, stateless

__all__ = [
    "free_port",
    "process_rows",
    "put_process_batch",
    "train_digits",
    "TrainResult",
    "params_checksum",
    "save_params",
    "load_params",
    "launch",
    "LaunchResult",
    "LaunchError",
    "main",
]

PyTree = Any

LOOPBACK = "127.0.0.1"
"""The address the local launcher's coordinator listens on: this machine only."""

TAIL_LINES = 15
"""How many of a failed worker's last log lines :class:`LaunchError` quotes."""

_PORT_IN_USE_EXIT = 3  # a worker's exit code when its coordinator port is taken
_CHECKSUM_PREFIX = "final parameter checksum "
_JOINED_PREFIX = "joined as process "


# --- What every process runs ---------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """Ask the operating system for a TCP port that is free on ``host`` right now.

    The port is released again before this returns, so another program could take it before
    the coordinator binds it; :func:`launch` checks again and says so if that happened.

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


def _port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` (as the coordinator's gRPC server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # gRPC sets SO_REUSEADDR too: a port left in TIME_WAIT is usable, a listening one not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _split_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding that splits axis 0 over the mesh, as :mod:`purenn.parallel` uses."""
    return NamedSharding(mesh, P(mesh.axis_names))


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
    if batch_size < 1 or batch_size % mesh.size:
        raise ValueError(
            f"A batch of {batch_size} examples does not split evenly over the mesh's "
            f"{mesh.size} devices; use a multiple of {mesh.size}, e.g. "
            f"{max(1, round(batch_size / mesh.size)) * mesh.size}."
        )
    index_map = _split_sharding(mesh).addressable_devices_indices_map((batch_size,))
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
    sharding = _split_sharding(mesh)

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


def _digits_loss(params: PyTree, batch: Examples) -> tuple[jax.Array, dict[str, jax.Array]]:
    return classification_loss(mlp_apply(params, batch.images), batch.labels)


def _batch_positions(count: int, batch_size: int, key: jax.Array) -> Iterator[np.ndarray]:
    """Positions of the examples in each batch, epoch after epoch, as training sees them.

    :func:`purenn.data.batches` of the positions ``0 .. count-1`` draws exactly the batches
    it draws of the examples themselves (the order depends only on the key and the count),
    so a process can read just its own rows of every batch.
    """
    positions = np.arange(count)
    epoch = 0
    while True:
        epoch_key = jax.random.fold_in(key, epoch)
        for batch in batches(Examples(positions, positions), batch_size, epoch_key):
            yield batch.labels
        epoch += 1


class TrainResult(NamedTuple):
    """What :func:`train_digits` returns.

    Attributes:
        params: the trained parameters, replicated on every device of the mesh.
        losses: the training loss of every step (each the mean over the global batch).

    Example:
        >>> from purenn.distributed import TrainResult
        >>> TrainResult._fields
        ('params', 'losses')
    """

    params: PyTree
    losses: list[float]


def train_digits(
    mesh: Mesh,
    *,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    hidden: int = 128,
    log: Callable[[str], Any] | None = print,
    log_every: int = 5,
    before_step: Callable[[int], Any] | None = None,
) -> TrainResult:
    """Train the digits MLP data-parallel over ``mesh``, whatever processes it spans.

    The same code runs in one process or in many: the model (an MLP with two hidden layers),
    Adam, and the train step of :func:`purenn.parallel.make_sharded_train_step` are the same,
    and every process draws the same shuffled batches (the order of
    :func:`purenn.data.batches` with ``jax.random.fold_in(key, epoch)``, as in
    :func:`purenn.training.fit`). Each process reads only its rows of each batch
    (:func:`process_rows`) and assembles the global batch with :func:`put_process_batch`.

    Args:
        mesh: a one-axis device mesh, e.g. :func:`purenn.parallel.batch_mesh`; after
            ``jax.distributed.initialize`` it can span every process's devices.
        steps: the number of train steps.
        batch_size: examples per step, in all processes together; a multiple of the mesh
            size.
        seed: seeds the initial parameters (``key(seed)``) and the batch order
            (``key(seed + 1)``).
        learning_rate: Adam's learning rate.
        hidden: the width of each hidden layer.
        log: called with progress lines (this process's rows, the loss every ``log_every``
            steps and at the last); None prints nothing.
        log_every: how often to log the loss.
        before_step: called with the step number (from 1) before each step, e.g. to stop a
            run early in a test.

    Returns:
        A :class:`TrainResult`: the parameters (replicated over the mesh) and the losses.

    Raises:
        ValueError: if ``steps`` is below 1, or as :func:`process_rows`.

    Example:
        >>> from purenn.distributed import train_digits
        >>> from purenn.parallel import batch_mesh
        >>> result = train_digits(batch_mesh(), steps=3, log=None)
        >>> len(result.losses), result.losses[-1] < result.losses[0]
        (3, True)
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    rows = process_rows(mesh, batch_size)
    if log is not None:
        log(f"reads rows {rows.start}-{rows.stop - 1} of every batch of {batch_size}")
    train = load_digits().train
    optimizer = optax.adam(learning_rate)
    sizes = (train.images.shape[1], hidden, hidden, NUM_CLASSES)
    # Jitted, the initialization compiles once instead of op by op.
    params = jax.jit(mlp_init, static_argnums=1)(jax.random.key(seed), sizes)
    opt_state = optimizer.init(params)
    params, opt_state = put_replicated(params, mesh), put_replicated(opt_state, mesh)
    step = make_sharded_train_step(stateless(_digits_loss), optimizer, mesh)

    losses: list[float] = []
    positions = _batch_positions(len(train.labels), batch_size, jax.random.key(seed + 1))
    for number in range(1, steps + 1):
        if before_step is not None:
            before_step(number)
        mine = next(positions)[rows]
        local = Examples(train.images[mine], train.labels[mine])
        batch = put_process_batch(local, mesh, batch_size)
        params, _, opt_state, metrics = step(params, {}, opt_state, batch)
        losses.append(float(metrics["loss"]))
        if log is not None and (number == 1 or number % log_every == 0 or number == steps):
            log(f"step {number:>{len(str(steps))}}/{steps}  loss {losses[-1]:.4f}")
    return TrainResult(params, losses)


def _local_copy(tree: PyTree) -> PyTree:
    """This process's copy of every (replicated) leaf, as NumPy arrays."""

    def copy(leaf: Any) -> np.ndarray:
        if isinstance(leaf, jax.Array):
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(leaf)

    return jax.tree.map(copy, tree)


def params_checksum(params: PyTree) -> float:
    """A one-number fingerprint of some parameters: the sum of their absolute values.

    Two processes whose checksums print the same almost surely hold the same parameters;
    compare the arrays themselves (:func:`load_params`) to be sure.

    Args:
        params: a pytree of arrays; replicated global arrays are read from this process's
            copy.

    Returns:
        The sum of ``|p|`` over every number, accumulated in float64.

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.distributed import params_checksum
        >>> params_checksum({"w": jnp.array([1.5, -2.0]), "b": jnp.array([0.25])})
        3.75
    """
    leaves = jax.tree.leaves(_local_copy(params))
    return float(sum(np.abs(leaf.astype(np.float64)).sum() for leaf in leaves))


def _names(tree: PyTree) -> list[str]:
    return [
        jax.tree_util.keystr(path, simple=True, separator="/")
        for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def save_params(path: str | os.PathLike[str], params: PyTree) -> Path:
    """Write parameters to a ``.npz`` file, one array per leaf, named by its place in the tree.

    Args:
        path: the file to write (NumPy adds ``.npz`` if the name lacks it).
        params: a pytree of arrays; replicated global arrays are written from this process's
            copy, so in a multi-process run one process (e.g. process 0) writes them.

    Returns:
        The path of the file written.

    Example:
        >>> import tempfile, numpy as np
        >>> from purenn.distributed import save_params
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_params(f"{folder}/p.npz", [{"w": np.ones(2), "b": np.zeros(1)}])
        ...     sorted(np.load(path))
        ['0/b', '0/w']
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    leaves = jax.tree.leaves(_local_copy(params))
    np.savez(path, **dict(zip(_names(params), leaves, strict=True)))
    return path


def load_params(path: str | os.PathLike[str], like: PyTree) -> PyTree:
    """Read parameters written by :func:`save_params` into the structure of ``like``.

    Args:
        path: the ``.npz`` file.
        like: a pytree with the structure of the saved one (e.g. freshly initialized
            parameters); only its structure is used.

    Returns:
        A pytree like ``like`` with NumPy arrays from the file.

    Raises:
        ValueError: if the file's arrays do not match the leaves of ``like``.

    Example:
        >>> import tempfile, numpy as np
        >>> from purenn.distributed import load_params, save_params
        >>> params = [{"w": np.ones(2), "b": np.zeros(1)}]
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     loaded = load_params(save_params(f"{folder}/p.npz", params), like=params)
        >>> loaded[0]["w"].tolist()
        [1.0, 1.0]
    """
    names = _names(like)
    with np.load(path) as stored:
        if sorted(stored.files) != sorted(names):
            raise ValueError(
                f"{path} holds arrays {sorted(stored.files)}, but `like` has leaves "
                f"{sorted(names)}; pass parameters of the model that was saved."
            )
        leaves = [stored[name] for name in names]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


# --- The launcher --------------------------------------------------------------------------------


class LaunchError(RuntimeError):
    """A multi-process run that failed, and whose workers have all been stopped.

    It is raised when a worker dies, the coordinator cannot start, or the run takes too long.

    Attributes:
        worker: the id of the worker that failed first (None for a timeout, or when no
            worker had started).
        returncode: its exit status as ``subprocess`` reports it (``-9`` for SIGKILL).
        pids: the process ids of all workers started.
        log_tail: the last lines of the failed worker's log.

    Example:
        >>> from purenn.distributed import LaunchError
        >>> err = LaunchError("worker 1 exited with code 1", worker=1, returncode=1)
        >>> err.worker, str(err)
        (1, 'worker 1 exited with code 1')
    """

    def __init__(
        self,
        message: str,
        *,
        worker: int | None = None,
        returncode: int | None = None,
        pids: Sequence[int] = (),
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.worker = worker
        self.returncode = returncode
        self.pids = tuple(pids)
        self.log_tail = tuple(log_tail)


@dataclass(frozen=True)
class LaunchResult:
    """What a successful :func:`launch` returns.

    Attributes:
        pids: each worker's process id, by worker id (all of them have exited).
        logs: each worker's output lines, by worker id.
        checksum: the :func:`params_checksum` of the final parameters, which every worker
            reported identically.
        seconds: the wall-clock time from starting the workers to the last one exiting.
        output: the ``.npz`` file process 0 wrote, if an output path was given.

    Example:
        >>> from purenn.distributed import LaunchResult
        >>> result = LaunchResult(pids=(11, 12), logs=((), ()), checksum=1.5, seconds=2.0)
        >>> len(result.pids), result.output is None
        (2, True)
    """

    pids: tuple[int, ...]
    logs: tuple[tuple[str, ...], ...]
    checksum: float
    seconds: float
    output: Path | None = None


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (exit status {returncode})"
    return f"exited with code {returncode}"


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[str]
    lines: list[str]
    threads: list[threading.Thread]


def _start_worker(index: int, command: list[str], events: queue.Queue[tuple]) -> _Worker:
    env = dict(os.environ, PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,  # its own process group, stopped as a whole
    )

    # Python's prints arrive whole on stdout; native libraries and tracebacks on stderr.
    def read(stream: Any) -> None:
        for line in stream:
            events.put(("line", index, line.rstrip("\n")))
        stream.close()

    def wait() -> None:
        events.put(("exit", index, process.wait()))

    threads = [
        threading.Thread(target=read, args=(process.stdout,), daemon=True),
        threading.Thread(target=read, args=(process.stderr,), daemon=True),
        threading.Thread(target=wait, daemon=True),
    ]
    for thread in threads:
        thread.start()
    return _Worker(index, process, [], threads)


def _stop(workers: Sequence[_Worker], grace: float) -> None:
    """SIGTERM every running worker's process group, then SIGKILL it if ``grace`` passes."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        # Only workers not yet reaped: their process group ids are still theirs.
        running = [worker for worker in workers if worker.process.poll() is None]
        if not running:
            return
        for worker in running:
            try:
                os.killpg(worker.process.pid, sig)
            except ProcessLookupError:
                pass  # it exited just now
        deadline = time.monotonic() + wait
        for worker in running:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass


def _worker_command(
    index: int, processes: int, address: str, options: dict[str, Any]
) -> list[str]:
    # ``-c`` rather than ``-m``: the workers import this module, never run it as __main__.
    command = [
        sys.executable,
        "-c",
        "import sys; from purenn.distributed import main; sys.exit(main())",
        "--worker",
        f"--coordinator={address}",
        f"--processes={processes}",
        f"--process-id={index}",
        f"--exit-with-parent={os.getpid()}",
    ]
    for name, value in options.items():
        if value is not None:
            command.append(f"--{name.replace('_', '-')}={value}")
    return command


def launch(
    processes: int,
    devices_per_process: int,
    *,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    output: str | os.PathLike[str] | None = None,
    port: int | None = None,
    timeout: float = 300.0,
    grace: float = 5.0,
    log: Callable[[str], Any] | None = print,
    crash_worker: int | None = None,
    crash_at_step: int = 1,
) -> LaunchResult:
    """Run :func:`train_digits` as ``processes`` processes on this machine, one mesh in all.

    Worker ``k`` starts as its own process (and process group) on 127.0.0.1 with
    ``devices_per_process`` CPU devices, calls ``jax.distributed.initialize`` with the
    coordinator address, ``processes`` and ``process_id=k`` (worker 0 runs the coordinator),
    and trains over a mesh of all ``processes * devices_per_process`` devices. The launcher
    passes each line the workers print to ``log``, prefixed with ``[worker k]``.

    If a worker exits with a non-zero status, the launcher stops the others at once: SIGTERM
    to each worker's process group, SIGKILL after ``grace`` seconds. It does the same when
    ``timeout`` passes, on KeyboardInterrupt, and on any other exception, so it leaves no
    process behind.

    Args:
        processes: the number of worker processes.
        devices_per_process: the CPU devices each worker simulates.
        steps: the number of train steps.
        batch_size: the global batch, a multiple of ``processes * devices_per_process``.
        seed: as for :func:`train_digits`.
        learning_rate: as for :func:`train_digits`.
        output: where process 0 writes the final parameters (:func:`save_params`).
        port: the coordinator's port on 127.0.0.1; default: a free one (:func:`free_port`).
        timeout: the seconds the whole run may take before it is stopped.
        grace: the seconds between SIGTERM and SIGKILL when stopping workers.
        log: called with every output line; None prints nothing.
        crash_worker: for testing the failure path: this worker kills itself with SIGKILL
            just before step ``crash_at_step``.
        crash_at_step: see ``crash_worker``.

    Returns:
        A :class:`LaunchResult` with the pids, logs, checksum and time of the run.

    Raises:
        ValueError: for an argument out of range, e.g. a batch that does not split over the
            devices.
        LaunchError: if the coordinator's port is taken, a worker fails, or the run times
            out; the message names the worker, how it ended and the end of its log.

    Example:
        >>> from purenn.distributed import launch
        >>> launch(processes=2, devices_per_process=3, steps=10, batch_size=128)
        Traceback (most recent call last):
        ...
        ValueError: A batch of 128 examples does not split evenly over 2 processes × 3 devices = 6 devices; use a multiple of 6, e.g. 126 or 132.
    """  # noqa: E501
    for name, value in [
        ("processes", processes),
        ("devices_per_process", devices_per_process),
        ("steps", steps),
        ("batch_size", batch_size),
        ("crash_at_step", crash_at_step),
    ]:
        _check_positive(name, value)
    total = processes * devices_per_process
    if batch_size % total:
        lower = batch_size - batch_size % total
        raise ValueError(
            f"A batch of {batch_size} examples does not split evenly over {processes} "
            f"processes × {devices_per_process} devices = {total} devices; use a multiple "
            f"of {total}, e.g. {f'{lower} or ' if lower else ''}{lower + total}."
        )
    if crash_worker is not None and not 0 <= crash_worker < processes:
        raise ValueError(f"crash_worker must be a worker id from 0 to {processes - 1}.")
    if timeout <= 0 or grace < 0:
        raise ValueError("timeout must be positive and grace not negative.")

    port = free_port() if port is None else port
    address = f"{LOOPBACK}:{port}"
    if not _port_is_free(LOOPBACK, port):
        raise LaunchError(
            f"The coordinator cannot start: {address} is already in use by another program. "
            "Pass another port, or none to let the launcher pick a free one. No worker was "
            "started."
        )
    emit = log if log is not None else (lambda line: None)
    options = {
        "devices_per_process": devices_per_process,
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "learning_rate": learning_rate,
        "output": None if output is None else os.fspath(Path(output).absolute()),
        "init_timeout": max(1, int(min(timeout, 120))),
        "crash_worker": crash_worker,
        "crash_at_step": crash_at_step if crash_worker is not None else None,
    }
    events: queue.Queue[tuple] = queue.Queue()
    workers: list[_Worker] = []
    start = time.monotonic()
    failed: int | None = None  # the first worker to fail, if one did
    returncode: int | None = None
    running: set[int] = set()
    try:
        for index in range(processes):
            command = _worker_command(index, processes, address, options)
            workers.append(_start_worker(index, command, events))
            emit(f"[launcher] worker {index}: pid {workers[-1].process.pid}")
        running = set(range(processes))
        deadline = start + timeout
        while running:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                kind, index, value = events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if kind == "line":
                _record(workers[index], value, emit)
            elif value == 0:
                running.discard(index)
            else:
                running.discard(index)
                failed, returncode = index, value
                break
    finally:
        _stop(workers, grace)
        for worker in workers:
            for thread in worker.threads:
                thread.join(timeout=2.0)
        # Lines the workers printed before they stopped.
        while True:
            try:
                kind, index, value = events.get_nowait()
            except queue.Empty:
                break
            if kind == "line":
                _record(workers[index], value, emit)
    pids = tuple(w.process.pid for w in workers)
    # Only now is every line the workers printed read: the messages quote their logs.
    if failed is not None:
        raise _worker_failure(workers, failed, returncode, address)
    if running:
        raise _timeout_failure(workers, sorted(running), timeout)
    seconds = time.monotonic() - start
    checksums = [_reported_checksum(w.lines) for w in workers]
    if None in checksums or len(set(checksums)) != 1:
        raise LaunchError(
            f"The workers finished but report different final parameters: checksums "
            f"{checksums} (None: not reported). Their copies should be identical.",
            pids=pids,
        )
    written = None if output is None else Path(options["output"])
    if written is not None and written.suffix != ".npz":
        written = written.with_name(written.name + ".npz")
    emit(
        f"[launcher] {processes} processes × {devices_per_process} devices finished {steps} "
        f"steps in {seconds:.1f} s; final parameter checksum {checksums[0]:.6f} in every "
        "worker" + (f"; parameters written to {written}" if written else "")
    )
    return LaunchResult(
        pids=pids,
        logs=tuple(tuple(w.lines) for w in workers),
        checksum=float(checksums[0]),
        seconds=seconds,
        output=written,
    )


def _record(worker: _Worker, line: str, emit: Callable[[str], Any]) -> None:
    worker.lines.append(line)
    if _shown(line):
        emit(f"[worker {worker.index}] {line}")


def _shown(line: str) -> bool:
    # gloo notes every connection it opens, and its lines can interleave into blank ones:
    # kept in the log, not printed.
    return bool(line.strip()) and "connected peer ranks" not in line


def _timeout_failure(
    workers: Sequence[_Worker], running: list[int], timeout: float
) -> LaunchError:
    message = (
        f"The run did not finish within {timeout:g} s, so the launcher stopped every worker; "
        f"still running then: {', '.join(f'worker {i}' for i in running)}."
    )
    for index in running:
        tail = [line for line in workers[index].lines if _shown(line)][-5:]
        tail = tail or ["(it printed nothing)"]
        message += f"\nLast lines of worker {index}'s log:\n" + "\n".join(
            f"    {line}" for line in tail
        )
    return LaunchError(message, pids=[w.process.pid for w in workers])


def _reported_checksum(lines: Sequence[str]) -> float | None:
    for line in reversed(lines):
        if line.startswith(_CHECKSUM_PREFIX):
            return float(line[len(_CHECKSUM_PREFIX) :].split()[0])
    return None


def _worker_failure(
    workers: Sequence[_Worker], index: int, returncode: int | None, address: str
) -> LaunchError:
    worker = workers[index]
    tail = [line for line in worker.lines if _shown(line)][-TAIL_LINES:]
    message = f"worker {index} (pid {worker.process.pid}) {_describe_exit(returncode or 0)}"
    joined = any(line.startswith(_JOINED_PREFIX) for line in worker.lines)
    if index == 0 and not joined:
        message += (
            f" before the processes joined. Worker 0 runs the coordinator on {address}; "
            "if its log shows it could not bind there, the port is taken: pick another."
        )
    else:
        message += "."
    others = [w.index for w in workers if w.index != index]
    if others:
        message += f" The launcher stopped the other workers ({', '.join(map(str, others))})."
    message += f"\nLast lines of worker {index}'s log:\n" + (
        "\n".join(f"    {line}" for line in tail) if tail else "    (it printed nothing)"
    )
    return LaunchError(
        message,
        worker=index,
        returncode=returncode,
        pids=[w.process.pid for w in workers],
        log_tail=tail,
    )


# --- The worker and the command line -------------------------------------------------------------


def _exit_with_parent(parent: int) -> None:
    """End this process if the launcher that started it dies without stopping it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _say(line: str) -> None:
    print(line, flush=True)


def _run_worker(args: argparse.Namespace) -> int:
    if args.exit_with_parent:
        _exit_with_parent(args.exit_with_parent)
    if args.devices_per_process is not None:
        jax.config.update("jax_num_cpu_devices", args.devices_per_process)
    # Collectives between CPU devices of different processes (GPUs and TPUs have their own).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.coordinator is None:
        # On SLURM, Open MPI or Cloud TPU, JAX reads all of it from the environment.
        jax.distributed.initialize(initialization_timeout=args.init_timeout)
    else:
        if args.process_id == 0:
            host, port = args.coordinator.rsplit(":", 1)
            if not _port_is_free(host, int(port)):
                _say(f"could not start the coordinator: {args.coordinator} is in use")
                return _PORT_IN_USE_EXIT
        # JAX's preemption service would catch SIGTERM as a notice to checkpoint; here it
        # is the launcher stopping this worker, which should end it at once.
        jax.config.update("jax_enable_preemption_service", False)
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.processes,
            process_id=args.process_id,
            coordinator_bind_address=args.coordinator,  # this address only, not all of them
            cluster_detection_method="deactivate",
            initialization_timeout=args.init_timeout,
        )
    _say(
        f"{_JOINED_PREFIX}{jax.process_index()} of {jax.process_count()}: "
        f"{jax.local_device_count()} local devices, {jax.device_count()} in the mesh"
    )

    def crash(number: int) -> None:
        if args.crash_worker == jax.process_index() and number == args.crash_at_step:
            _say(f"killing myself before step {number} (--crash-worker)")
            os.kill(os.getpid(), signal.SIGKILL)

    result = train_digits(
        batch_mesh(),  # jax.devices(): the devices of every process
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        learning_rate=args.learning_rate,
        log=_say,
        before_step=crash,
    )
    _say(f"{_CHECKSUM_PREFIX}{params_checksum(result.params)!r}")
    if args.output and jax.process_index() == 0:
        _say(f"wrote {save_params(args.output, result.params)}")
    jax.distributed.shutdown()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m purenn.distributed",
        description=(
            "Train the digits classifier data-parallel as several processes joined by "
            "jax.distributed: by default, launch them on this machine."
        ),
    )
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--devices-per-process", type=int, default=None, help="CPU devices per worker (4)"
    )
    parser.add_argument("--steps", type=int, default=20, help="train steps")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--output", help="the .npz file process 0 writes the parameters to")
    parser.add_argument("--port", type=int, help="the coordinator's port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the run")
    parser.add_argument(
        "--crash-worker", type=int, help="testing: this worker kills itself with SIGKILL"
    )
    parser.add_argument("--crash-at-step", type=int, default=1, help="testing: before this step")
    parser.add_argument(
        "--worker",
        action="store_true",
        help=(
            "run one worker instead of launching them; without --coordinator, "
            "jax.distributed.initialize() detects the cluster (SLURM, Open MPI, Cloud TPU)"
        ),
    )
    parser.add_argument("--coordinator", help="worker: the coordinator's host:port")
    parser.add_argument("--process-id", type=int, help="worker: this process's id")
    parser.add_argument("--init-timeout", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--exit-with-parent", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: launch the workers (or, with ``--worker``, be one).

    Launcher errors (a failed worker, a taken port, a timeout) are printed to stderr.

    Args:
        argv: the arguments; default ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 if the run failed, 2 for invalid arguments (which
        argparse reports by exiting with 2), 130 if interrupted; a worker whose coordinator
        port is taken returns 3.

    Example:
        >>> import contextlib, io
        >>> from purenn.distributed import main
        >>> out = io.StringIO()
        >>> with contextlib.redirect_stdout(out):
        ...     status = main(["--processes", "1", "--devices-per-process", "1", "--steps", "1"])
        >>> status, "final parameter checksum" in out.getvalue()
        (0, True)
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker:
        if args.coordinator is not None and args.process_id is None:
            parser.error("--worker with --coordinator also needs --process-id")
        return _run_worker(args)
    devices = 4 if args.devices_per_process is None else args.devices_per_process

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop the workers as for Ctrl-C

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, terminated)
    try:
        launch(
            args.processes,
            devices,
            steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
            learning_rate=args.learning_rate,
            output=args.output,
            port=args.port,
            timeout=args.timeout,
            log=lambda line: print(line, flush=True),
            crash_worker=args.crash_worker,
            crash_at_step=args.crash_at_step,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: every worker was stopped", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
