"""The digits classifier trained data-parallel, in one process or many, with checkpoints.

:func:`train_digits` runs the same code whatever processes its mesh spans: the train step of
:func:`purenn.training.make_train_step`, on a global batch that each process assembles from
its own rows (:func:`purenn.distributed.put_process_batch`). With a checkpoint folder, it
saves the parameters and optimizer state every few steps with Orbax (every process takes
part in each save), and a run given a folder that holds checkpoints continues from the
latest one. Run in one process on a mesh of the same shape, it gives the same parameters,
up to float32 rounding.

From the command line::

    python -m purenn.digits --processes 2 --devices-per-process 4 --checkpoints ckpt

launches the workers on this machine (:func:`purenn.launch.launch`), prints every worker's
log prefixed with its id, and the final parameter checksum that every worker reported. On a
cluster, the scheduler starts the processes instead: ``python -m purenn.digits --worker``
(for example under ``srun``) joins the others with ``jax.distributed.initialize()``, which
reads the coordinator address, the number of processes and this process's id from the
environment of SLURM, Open MPI or a Cloud TPU.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from purenn.data import IMAGE_SHAPE, NUM_CLASSES, Examples, batches, load_digits
from purenn.distributed import process_rows, put_process_batch
from purenn.launch import LaunchError, join, launch, report
from purenn.layers import mlp_apply, mlp_init
from purenn.parallel import batch_mesh, per_device, put_replicated
from purenn.training import classification_loss, make_train_step, stateless

__all__ = [
    "train_digits",
    "TrainResult",
    "params_checksum",
    "restore_params",
    "saved_steps",
    "main",
]

PyTree = Any


def _digits_loss(params: PyTree, batch: Examples) -> tuple[jax.Array, dict[str, jax.Array]]:
    return classification_loss(mlp_apply(params, batch.images), batch.labels)


def _initial_params(seed: int, hidden: int) -> PyTree:
    sizes = (math.prod(IMAGE_SHAPE), hidden, hidden, NUM_CLASSES)
    # Jitted, the initialization compiles once instead of op by op.
    return jax.jit(mlp_init, static_argnums=1)(jax.random.key(seed), sizes)


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


def _checkpoints(directory: str | os.PathLike[str]) -> ocp.CheckpointManager:
    # Saved in step, not in the background: a step's checkpoint is whole once save returns.
    options = ocp.CheckpointManagerOptions(max_to_keep=3, enable_async_checkpointing=False)
    return ocp.CheckpointManager(
        Path(directory).absolute(), options=options, item_names=("params", "opt_state")
    )


def _like(tree: PyTree) -> ocp.args.StandardRestore:
    """Restore arguments for a tree shaped and placed as ``tree`` (arrays or their shapes)."""
    return ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, tree))


class TrainResult(NamedTuple):
    """What :func:`train_digits` returns.

    Attributes:
        params: the trained parameters, replicated on every device of the mesh.
        losses: the training loss of every step this run took (each the mean over the
            global batch).
        first_step: the step the run continued from: 0, or the step of the checkpoint it
            resumed from.

    Example:
        >>> from purenn.digits import TrainResult
        >>> TrainResult._fields
        ('params', 'losses', 'first_step')
    """

    params: PyTree
    losses: list[float]
    first_step: int


def train_digits(
    mesh: Mesh,
    *,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    hidden: int = 128,
    checkpoints: str | os.PathLike[str] | None = None,
    save_every: int = 10,
    log: Callable[[str], Any] | None = print,
) -> TrainResult:
    """Train the digits MLP data-parallel over ``mesh``, whatever processes it spans.

    The same code runs in one process or in many: the model (an MLP with two hidden layers),
    Adam, and the train step of :func:`purenn.training.make_train_step` are the same, and
    every process draws the same shuffled batches (the order of :func:`purenn.data.batches`
    with ``jax.random.fold_in(key, epoch)``, as in :func:`purenn.training.fit`). Each process
    reads only its rows of each batch (:func:`purenn.distributed.process_rows`).

    Args:
        mesh: a one-axis device mesh, e.g. :func:`purenn.parallel.batch_mesh`; after
            ``jax.distributed.initialize`` it can span every process's devices.
        steps: the step to train up to.
        batch_size: examples per step, in all processes together; a multiple of the mesh
            size.
        seed: seeds the initial parameters (``key(seed)``) and the batch order
            (``key(seed + 1)``).
        learning_rate: Adam's learning rate.
        hidden: the width of each hidden layer.
        checkpoints: a folder for Orbax checkpoints of the parameters and optimizer state,
            saved every ``save_every`` steps and at the last; if it holds checkpoints
            already, training continues from the latest. None saves nothing.
        save_every: steps between checkpoints.
        log: called with progress lines (this process's rows, the loss every 5 steps and at
            the last); None prints nothing.

    Returns:
        A :class:`TrainResult`: the parameters (replicated over the mesh), the losses, and
        the step the run started from.

    Raises:
        ValueError: if ``steps`` or ``save_every`` is below 1, or as
            :func:`purenn.distributed.process_rows`.

    Example:
        >>> import tempfile
        >>> from purenn.digits import train_digits
        >>> from purenn.parallel import batch_mesh
        >>> folder = tempfile.mkdtemp()
        >>> first = train_digits(batch_mesh(), steps=3, checkpoints=folder, log=None)
        >>> len(first.losses), first.losses[-1] < first.losses[0]
        (3, True)
        >>> more = train_digits(batch_mesh(), steps=5, checkpoints=folder, log=None)
        >>> more.first_step, len(more.losses)
        (3, 2)
    """
    if steps < 1 or save_every < 1:
        raise ValueError(
            f"steps and save_every must be at least 1, got steps={steps}, save_every={save_every}."
        )
    say = log if log is not None else (lambda line: None)
    rows = process_rows(mesh, batch_size)
    say(f"reads rows {rows.start}-{rows.stop - 1} of every batch of {batch_size}")
    train = load_digits().train
    optimizer = optax.adam(learning_rate)
    params = put_replicated(_initial_params(seed, hidden), mesh)
    opt_state = put_replicated(optimizer.init(params), mesh)
    manager = None if checkpoints is None else _checkpoints(checkpoints)
    first = 0
    if manager is not None and manager.latest_step() is not None:
        first = manager.latest_step()
        restored = manager.restore(
            first, args=ocp.args.Composite(params=_like(params), opt_state=_like(opt_state))
        )
        params, opt_state = restored.params, restored.opt_state
        say(f"resumed from the checkpoint of step {first}")
    step = make_train_step(stateless(_digits_loss), optimizer)

    losses: list[float] = []
    order = _batch_positions(len(train.labels), batch_size, jax.random.key(seed + 1))
    positions = islice(order, first, None)  # a resumed run takes the batches it had not
    for number in range(first + 1, steps + 1):
        mine = next(positions)[rows]
        batch = put_process_batch(
            Examples(train.images[mine], train.labels[mine]), mesh, batch_size
        )
        params, _, opt_state, metrics = step(params, {}, opt_state, batch)
        losses.append(float(metrics["loss"]))
        if number == first + 1 or number % 5 == 0 or number == steps:
            say(f"step {number:>{len(str(steps))}}/{steps}  loss {losses[-1]:.4f}")
        if manager is not None and (number % save_every == 0 or number == steps):
            state = ocp.args.Composite(
                params=ocp.args.StandardSave(params), opt_state=ocp.args.StandardSave(opt_state)
            )
            manager.save(number, args=state, force=True)
    if manager is not None:
        manager.close()
    return TrainResult(params, losses, first)


def saved_steps(checkpoints: str | os.PathLike[str]) -> list[int]:
    """The steps of the finished checkpoints in a :func:`train_digits` folder, in order.

    A checkpoint still being written is not listed: Orbax writes it under a temporary name
    and renames it when every process has written its part.

    Args:
        checkpoints: the checkpoint folder given to :func:`train_digits`.

    Returns:
        The saved steps, oldest first; ``[]`` for a folder that is empty or absent.

    Example:
        >>> import tempfile
        >>> from purenn.digits import saved_steps, train_digits
        >>> from purenn.parallel import batch_mesh
        >>> folder = tempfile.mkdtemp()
        >>> saved_steps(folder)
        []
        >>> _ = train_digits(batch_mesh(), steps=4, save_every=2, checkpoints=folder, log=None)
        >>> saved_steps(folder)
        [2, 4]
    """
    return sorted(ocp.utils.checkpoint_steps(checkpoints)) if Path(checkpoints).is_dir() else []


def restore_params(
    checkpoints: str | os.PathLike[str],
    mesh: Mesh,
    *,
    hidden: int = 128,
    step: int | None = None,
) -> PyTree:
    """The parameters of a :func:`train_digits` checkpoint, placed replicated on ``mesh``.

    The mesh need not be the one that saved them: a checkpoint of two processes restores in
    one.

    Args:
        checkpoints: the checkpoint folder given to :func:`train_digits`.
        mesh: the devices to place the parameters on, e.g. :func:`purenn.parallel.batch_mesh`.
        hidden: the width of each hidden layer, as trained.
        step: which checkpoint; default: the latest.

    Returns:
        The parameters, as :func:`purenn.layers.mlp_init` makes them.

    Raises:
        FileNotFoundError: if the folder holds no checkpoint (of that step).

    Example:
        >>> import tempfile
        >>> from purenn.digits import params_checksum, restore_params, train_digits
        >>> from purenn.parallel import batch_mesh
        >>> folder = tempfile.mkdtemp()
        >>> result = train_digits(batch_mesh(), steps=2, checkpoints=folder, log=None)
        >>> params_checksum(restore_params(folder, batch_mesh())) == params_checksum(result.params)
        True
    """
    saved = saved_steps(checkpoints)
    step = (saved[-1] if saved else None) if step is None else step
    if step not in saved:
        raise FileNotFoundError(
            f"{checkpoints} holds no checkpoint{'' if step is None else f' of step {step}'}; "
            f"it has steps {saved}. Pass the folder train_digits saved to."
        )
    shapes = jax.eval_shape(lambda: _initial_params(0, hidden))
    replicated = NamedSharding(mesh, P())
    like = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes
    )
    with _checkpoints(checkpoints) as manager:
        return manager.restore(step, args=ocp.args.Composite(params=_like(like))).params


def _local_copy(tree: PyTree) -> PyTree:
    """This process's copy of every (replicated) leaf, as NumPy arrays."""

    def copy(leaf: Any) -> np.ndarray:
        if isinstance(leaf, jax.Array):
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(leaf)

    return jax.tree.map(copy, tree)


def params_checksum(params: PyTree) -> float:
    """A one-number fingerprint of some parameters: the sum of their absolute values.

    Two processes whose checksums agree almost surely hold the same parameters; compare the
    arrays themselves (:func:`restore_params`) to be sure.

    Args:
        params: a pytree of arrays; replicated global arrays are read from this process's
            copy.

    Returns:
        The sum of ``|p|`` over every number, accumulated in float64.

    Example:
        >>> import jax.numpy as jnp
        >>> from purenn.digits import params_checksum
        >>> params_checksum({"w": jnp.array([1.5, -2.0]), "b": jnp.array([0.25])})
        3.75
    """
    leaves = jax.tree.leaves(_local_copy(params))
    return float(sum(np.abs(leaf.astype(np.float64)).sum() for leaf in leaves))


# --- The command line ----------------------------------------------------------------------------


def _say(line: str) -> None:
    print(line, flush=True)


def _run_worker(args: argparse.Namespace) -> int:
    join()
    _say(
        f"joined as process {jax.process_index()} of {jax.process_count()}: "
        f"{jax.local_device_count()} local devices, {jax.device_count()} in the mesh"
    )
    mesh = batch_mesh()  # jax.devices(): the devices of every process
    result = train_digits(
        mesh,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        learning_rate=args.learning_rate,
        checkpoints=args.checkpoints,
        save_every=args.save_every,
        log=_say,
    )
    checksum = params_checksum(result.params)
    rows = process_rows(mesh, args.batch_size)
    report(
        {
            "process": jax.process_index(),
            "processes": jax.process_count(),
            "local_devices": jax.local_device_count(),
            "devices": jax.device_count(),
            "rows": [rows.start, rows.stop],
            "first_step": result.first_step,
            "losses": result.losses,
            "checksum": checksum,
        }
    )
    _say(f"final parameter checksum {checksum!r}")
    jax.distributed.shutdown()
    return 0


def _worker_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "purenn.digits", "--worker"]
    for name in ("steps", "batch_size", "seed", "learning_rate", "save_every"):
        command.append(f"--{name.replace('_', '-')}={getattr(args, name)}")
    if args.checkpoints is not None:
        command.append(f"--checkpoints={Path(args.checkpoints).absolute()}")
    return command


def _run_launcher(args: argparse.Namespace) -> int:
    for name in ("processes", "devices_per_process", "steps", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be a positive int, got {getattr(args, name)}.")
    over = f"{args.processes} processes × {args.devices_per_process} devices"
    per_device(args.batch_size, args.processes * args.devices_per_process, over=over)
    result = launch(
        _worker_command(args),
        args.processes,
        devices_per_process=args.devices_per_process,
        port=args.port,
        timeout=args.timeout,
        log=_say,
    )
    checksums = [worker["checksum"] for worker in result.results]
    if len(set(checksums)) != 1:
        raise LaunchError(
            f"The workers finished but report different final parameters: checksums "
            f"{checksums}. Their copies should be identical.",
            pids=result.pids,
        )
    where = "" if args.checkpoints is None else f"; checkpoints in {args.checkpoints}"
    _say(f"[launcher] final parameter checksum {checksums[0]!r} in every worker{where}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m purenn.digits",
        description=(
            "Train the digits classifier data-parallel as several processes joined by "
            "jax.distributed: by default, launch them on this machine."
        ),
    )
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--devices-per-process", type=int, default=4, help="CPU devices each")
    parser.add_argument("--steps", type=int, default=20, help="the step to train up to")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--checkpoints", help="checkpoint folder; resumes from its latest")
    parser.add_argument("--save-every", type=int, default=10, help="steps between checkpoints")
    parser.add_argument("--port", type=int, help="the coordinator's port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the run")
    parser.add_argument(
        "--worker",
        action="store_true",
        help=(
            "be one worker instead of launching them; started by a cluster scheduler "
            "(SLURM, Open MPI, Cloud TPU), jax.distributed.initialize() finds the others"
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: launch the workers (or, with ``--worker``, be one).

    Launcher errors (a failed worker, a taken port, a timeout) are printed to stderr.

    Args:
        argv: the arguments; default ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 if the run failed, 2 for invalid arguments, 130 if
        interrupted; a worker whose coordinator port is taken exits with 3.

    Example:
        >>> import contextlib, io
        >>> from purenn.digits import main
        >>> out = io.StringIO()
        >>> with contextlib.redirect_stdout(out):
        ...     status = main(["--processes", "1", "--devices-per-process", "1", "--steps", "1"])
        >>> status, "final parameter checksum" in out.getvalue()
        (0, True)
    """
    args = _parser().parse_args(argv)
    if args.worker:
        return _run_worker(args)

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop the workers as for Ctrl-C

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, terminated)
    try:
        return _run_launcher(args)
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


if __name__ == "__main__":
    sys.exit(main())
