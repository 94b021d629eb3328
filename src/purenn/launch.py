"""Start worker processes on this machine, joined by ``jax.distributed``, and watch them.

:func:`start` runs one command as ``processes`` workers on 127.0.0.1, each with its own
simulated CPU devices, and tells each, through its environment, who it is and where the
coordinator listens. A worker calls :func:`join` to connect to the others, and
:func:`report` to leave its result (a JSON object) for the launcher. :meth:`Launch.wait`
decides the outcome from what the workers leave behind, never from what they print: every
exit status must be 0 and every worker must have reported.

If a worker dies, the launcher stops the others at once (each worker is its own process
group: SIGTERM, then SIGKILL after a grace period) and raises :class:`LaunchError` naming
the worker, how it ended and the last lines of its log. It does the same on a timeout, on
KeyboardInterrupt and on any other exception, and a worker whose launcher dies ends itself,
so no worker outlives its launcher.

Under a cluster scheduler (SLURM, Open MPI, Cloud TPU) there is no launcher: :func:`join`
then calls ``jax.distributed.initialize()`` without arguments, which reads the coordinator
address, the number of processes and this process's id from the scheduler's environment,
and :func:`report` writes nothing.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax

from purenn.distributed import LOOPBACK, free_port

__all__ = ["start", "launch", "Launch", "LaunchResult", "LaunchError", "join", "report"]

TAIL_LINES = 15
"""How many of a failed worker's last log lines :class:`LaunchError` quotes."""

PORT_IN_USE_EXIT = 3
"""The exit status of worker 0 when its coordinator's port is taken."""

# What the launcher tells each worker, in its environment.
_ADDRESS = "PURENN_COORDINATOR"
_PROCESSES = "PURENN_NUM_PROCESSES"
_PROCESS_ID = "PURENN_PROCESS_ID"
_RESULT_FILE = "PURENN_RESULT_FILE"
_PARENT = "PURENN_PARENT_PID"


class LaunchError(RuntimeError):
    """A launch that failed, and whose workers have all been stopped.

    It is raised when a worker dies, the coordinator cannot start, the run takes too long,
    or a worker exits without reporting.

    Attributes:
        worker: the id of the worker that failed first (None for a timeout, or when no
            worker had started).
        returncode: its exit status as ``subprocess`` reports it (``-9`` for SIGKILL).
        pids: the process ids of all workers started.
        log_tail: the last lines of the failed worker's log.

    Example:
        >>> from purenn.launch import LaunchError
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
    """What a successful launch returns.

    Attributes:
        pids: each worker's process id, by worker id (all of them have exited).
        results: what each worker passed to :func:`report`, by worker id.
        logs: each worker's output lines, by worker id.
        seconds: the wall-clock time from starting the workers to the last one exiting.

    Example:
        >>> from purenn.launch import LaunchResult
        >>> result = LaunchResult(pids=(11, 12), results=({}, {}), logs=((), ()), seconds=2.0)
        >>> len(result.pids)
        2
    """

    pids: tuple[int, ...]
    results: tuple[dict[str, Any], ...]
    logs: tuple[tuple[str, ...], ...]
    seconds: float


# --- The worker's side ---------------------------------------------------------------------------


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


def _exit_with_parent(parent: int) -> None:
    """End this process if the launcher that started it dies without stopping it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def join(initialization_timeout: int = 120) -> None:
    """Join the other processes with ``jax.distributed.initialize``; call it before any JAX.

    Started by :func:`start`, the worker reads who it is and where the coordinator listens
    from its environment, and worker 0 starts the coordinator there (or exits with status
    :data:`PORT_IN_USE_EXIT`, saying so, if the port is taken). Started any other way, it
    calls ``jax.distributed.initialize()`` with no arguments, which detects SLURM, Open MPI
    or Cloud TPU.

    Args:
        initialization_timeout: the seconds to wait for every process to join.

    Example:
        >>> from purenn.launch import join
        >>> import inspect
        >>> list(inspect.signature(join).parameters)
        ['initialization_timeout']
    """
    # Collectives between CPU devices of different processes (GPUs and TPUs have their own).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if _PROCESS_ID not in os.environ:
        jax.distributed.initialize(initialization_timeout=initialization_timeout)
        return
    _exit_with_parent(int(os.environ[_PARENT]))
    address, process_id = os.environ[_ADDRESS], int(os.environ[_PROCESS_ID])
    host, port = address.rsplit(":", 1)
    if process_id == 0 and not _port_is_free(host, int(port)):
        print(f"could not start the coordinator: {address} is in use", flush=True)
        raise SystemExit(PORT_IN_USE_EXIT)
    # JAX's preemption service would catch SIGTERM as a notice to checkpoint; here it is the
    # launcher stopping this worker, which should end it at once.
    jax.config.update("jax_enable_preemption_service", False)
    jax.distributed.initialize(
        coordinator_address=address,
        num_processes=int(os.environ[_PROCESSES]),
        process_id=process_id,
        coordinator_bind_address=address,  # this address only, not all of them
        cluster_detection_method="deactivate",
        initialization_timeout=initialization_timeout,
    )


def report(result: Mapping[str, Any]) -> Path | None:
    """Leave this worker's result for the launcher: a JSON file, written whole or not at all.

    Args:
        result: a JSON-serializable mapping, e.g. the final loss and parameter checksum.

    Returns:
        The file written, or None when this process was not started by :func:`start`.

    Example:
        >>> from purenn.launch import report
        >>> report({"loss": 0.1}) is None  # this process was not started by a launcher
        True
    """
    target = os.environ.get(_RESULT_FILE)
    if target is None:
        return None
    path = Path(target)
    # Written beside the target, then renamed over it: the launcher never reads half a file.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as file:
        json.dump(dict(result), file)
    os.replace(file.name, path)
    return path


# --- The launcher's side -------------------------------------------------------------------------


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


def _shown(line: str) -> bool:
    # gloo notes every connection it opens, and its lines can interleave into blank ones:
    # kept in the log, not printed.
    return bool(line.strip()) and "connected peer ranks" not in line


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[str]
    result_file: Path
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def tail(self, count: int) -> list[str]:
        return [line for line in self.lines if _shown(line)][-count:]


class Launch:
    """Workers that :func:`start` started, until :meth:`wait` or :meth:`stop` ends them.

    Use it as a context manager, so that the workers are stopped however the block ends.

    Attributes:
        pids: each worker's process id, by worker id; a test can signal one of them.
        address: the coordinator's ``host:port``.

    Example:
        >>> import sys
        >>> from purenn.launch import start
        >>> with start([sys.executable, "-c", "pass"], 2, log=None) as run:
        ...     len(run.pids)
        2
    """

    def __init__(self, address: str, grace: float, log: Callable[[str], Any] | None) -> None:
        self.address = address
        self._grace = grace
        self._emit = log if log is not None else (lambda line: None)
        self._lock = threading.Lock()
        self._exits: queue.Queue[tuple[int, int]] = queue.Queue()
        self._folder = tempfile.TemporaryDirectory(prefix="purenn-launch-")
        self._workers: list[_Worker] = []
        self._start = time.monotonic()

    @property
    def pids(self) -> tuple[int, ...]:
        """Each worker's process id, by worker id."""
        return tuple(worker.process.pid for worker in self._workers)

    def _spawn(self, command: Sequence[str], processes: int, devices_per_process: int) -> None:
        for index in range(processes):
            result_file = Path(self._folder.name) / f"worker-{index}.json"
            env = dict(
                os.environ,
                PYTHONUNBUFFERED="1",
                JAX_PLATFORMS="cpu",
                JAX_NUM_CPU_DEVICES=str(devices_per_process),
                **{
                    _ADDRESS: self.address,
                    _PROCESSES: str(processes),
                    _PROCESS_ID: str(index),
                    _RESULT_FILE: str(result_file),
                    _PARENT: str(os.getpid()),
                },
            )
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=env,
                start_new_session=True,  # its own process group, stopped as a whole
            )
            worker = _Worker(index, process, result_file)
            worker.reader = threading.Thread(target=self._read, args=(worker,), daemon=True)
            worker.reader.start()
            threading.Thread(target=self._wait, args=(worker,), daemon=True).start()
            self._workers.append(worker)
            self._say(f"[launcher] worker {index}: pid {process.pid}")

    def _say(self, line: str) -> None:
        with self._lock:
            self._emit(line)

    def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        for line in worker.process.stdout:
            line = line.rstrip("\n")
            worker.lines.append(line)
            if _shown(line):
                self._say(f"[worker {worker.index}] {line}")
        worker.process.stdout.close()

    def _wait(self, worker: _Worker) -> None:
        # One waiter per worker: the queue holds the exits in the order they happened.
        self._exits.put((worker.index, worker.process.wait()))

    def wait(self, timeout: float = 300.0) -> LaunchResult:
        """Wait for every worker to exit and report; stop them all at the first failure.

        Args:
            timeout: the seconds the workers may still take before they are stopped.

        Returns:
            A :class:`LaunchResult` with each worker's pid, report, log and the time taken.

        Raises:
            LaunchError: if a worker exits with a non-zero status or without reporting, or
                the timeout passes; the message names the worker, how it ended and the end
                of its log.

        Example:
            >>> import sys
            >>> from purenn.launch import start
            >>> with start([sys.executable, "-c", "raise SystemExit(4)"], 1, log=None) as run:
            ...     run.wait()
            Traceback (most recent call last):
            ...
            purenn.launch.LaunchError: worker 0 exited with code 4.
            ...
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}.")
        running = set(range(len(self._workers)))
        failed: tuple[int, int] | None = None
        deadline = time.monotonic() + timeout
        try:
            while running and failed is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    index, returncode = self._exits.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    continue
                running.discard(index)
                if returncode != 0:
                    failed = (index, returncode)
        finally:
            self.stop()
        # Only now is every line the workers printed read: the messages quote their logs.
        if failed is not None:
            raise self._failure(*failed)
        if running:
            raise self._timeout(sorted(running), timeout)
        seconds = time.monotonic() - self._start
        try:
            results = tuple(self._result(worker) for worker in self._workers)
        finally:
            self._folder.cleanup()
        self._say(
            f"[launcher] {len(self._workers)} workers finished in {seconds:.1f} s, "
            "each with exit status 0 and a report"
        )
        return LaunchResult(
            pids=self.pids,
            results=results,
            logs=tuple(tuple(worker.lines) for worker in self._workers),
            seconds=seconds,
        )

    def stop(self) -> None:
        """SIGTERM every running worker's process group, and SIGKILL it after the grace.

        Calling it again, or after the workers exited, does nothing more.

        Example:
            >>> import sys
            >>> from purenn.launch import start
            >>> run = start([sys.executable, "-c", "import time; time.sleep(60)"], 1, log=None)
            >>> run.stop()
            >>> run.wait()
            Traceback (most recent call last):
            ...
            purenn.launch.LaunchError: worker 0 was killed by SIGTERM (exit status -15).
            ...
        """
        for sig, wait in ((signal.SIGTERM, self._grace), (signal.SIGKILL, 5.0)):
            # Only workers not yet reaped: their process group ids are still theirs.
            running = [w.process for w in self._workers if w.process.poll() is None]
            for process in running:
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass  # it exited just now
            deadline = time.monotonic() + wait
            for process in running:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for worker in self._workers:
            if worker.reader is not None:
                worker.reader.join(timeout=2.0)

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._folder.cleanup()

    def _result(self, worker: _Worker) -> dict[str, Any]:
        try:
            return json.loads(worker.result_file.read_text())
        except FileNotFoundError:
            raise LaunchError(
                f"worker {worker.index} exited with code 0 but left no result. A worker "
                "reports with purenn.launch.report(result) before it exits. "
                f"(It ran as pid {worker.process.pid}.)",
                worker=worker.index,
                returncode=0,
                pids=self.pids,
                log_tail=worker.tail(TAIL_LINES),
            ) from None

    def _failure(self, index: int, returncode: int) -> LaunchError:
        worker = self._workers[index]
        tail = worker.tail(TAIL_LINES)
        # The first line says what happened; the pid, which differs in every run, comes after.
        message = f"worker {index} {_describe_exit(returncode)}"
        if index == 0 and returncode == PORT_IN_USE_EXIT:
            message += (
                f": worker 0 runs the coordinator on {self.address}, which is in use. "
                "Pick another port, or none to let the launcher pick a free one."
            )
        else:
            message += "."
        others = [w.index for w in self._workers if w.index != index]
        if others:
            message += f" The launcher stopped the other workers ({', '.join(map(str, others))})."
        message += f"\nLast lines of worker {index}'s log (pid {worker.process.pid}):\n" + (
            "\n".join(f"    {line}" for line in tail) if tail else "    (it printed nothing)"
        )
        return LaunchError(
            message, worker=index, returncode=returncode, pids=self.pids, log_tail=tail
        )

    def _timeout(self, running: list[int], timeout: float) -> LaunchError:
        message = (
            f"The workers did not finish within {timeout:g} s, so the launcher stopped them; "
            f"still running then: {', '.join(f'worker {i}' for i in running)}."
        )
        for index in running:
            tail = self._workers[index].tail(5) or ["(it printed nothing)"]
            message += f"\nLast lines of worker {index}'s log:\n" + "\n".join(
                f"    {line}" for line in tail
            )
        return LaunchError(message, pids=self.pids)


def start(
    command: Sequence[str],
    processes: int,
    *,
    devices_per_process: int = 1,
    port: int | None = None,
    grace: float = 5.0,
    log: Callable[[str], Any] | None = print,
) -> Launch:
    """Start ``command`` as ``processes`` workers on this machine, joined into one mesh.

    Worker ``k`` runs as its own process (and process group) with ``devices_per_process``
    CPU devices; its environment tells :func:`join` the coordinator address on 127.0.0.1,
    the number of processes and ``k``, and tells :func:`report` where to write. Every line a
    worker prints goes to ``log``, prefixed with ``[worker k]``.

    Args:
        command: the worker's command line, e.g. ``[sys.executable, "-m", "purenn.digits",
            "--worker"]``.
        processes: the number of workers.
        devices_per_process: the CPU devices each worker simulates.
        port: the coordinator's port on 127.0.0.1; default: a free one
            (:func:`purenn.distributed.free_port`).
        grace: the seconds between SIGTERM and SIGKILL when stopping workers.
        log: called with every output line; None prints nothing.

    Returns:
        The running :class:`Launch`; call its :meth:`~Launch.wait`.

    Raises:
        ValueError: if ``processes`` or ``devices_per_process`` is not a positive int.
        TypeError: if ``log`` is neither callable nor None.
        LaunchError: if the coordinator's port is taken; no worker is started then.

    Example:
        >>> import sys
        >>> from purenn.launch import start
        >>> worker = "from purenn.launch import report; report({'ok': True})"
        >>> with start([sys.executable, "-c", worker], 2, log=None) as run:
        ...     run.wait().results
        ({'ok': True}, {'ok': True})
    """
    _check_positive("processes", processes)
    _check_positive("devices_per_process", devices_per_process)
    if grace < 0:
        raise ValueError(f"grace must not be negative, got {grace!r}.")
    if log is not None and not callable(log):
        raise TypeError(
            f"log must be a function called with each output line, or None, got {log!r}. To "
            "keep the lines in a file, pass one that writes them, e.g. "
            "`lambda line: print(line, file=handle)`; the result's logs hold them too. "
            "No worker was started."
        )
    port = free_port() if port is None else port
    address = f"{LOOPBACK}:{port}"
    if not _port_is_free(LOOPBACK, port):
        raise LaunchError(
            f"The coordinator cannot start: {address} is already in use by another program. "
            "Pass another port, or none to let the launcher pick a free one. No worker was "
            "started."
        )
    run = Launch(address, grace, log)
    try:
        run._spawn(command, processes, devices_per_process)
    except BaseException:
        run.__exit__()
        raise
    return run


def launch(
    command: Sequence[str],
    processes: int,
    *,
    devices_per_process: int = 1,
    port: int | None = None,
    timeout: float = 300.0,
    log: Callable[[str], Any] | None = print,
) -> LaunchResult:
    """:func:`start` the workers and :meth:`~Launch.wait` for them: one call, one outcome.

    Args:
        command: the worker's command line, as for :func:`start`.
        processes: the number of workers.
        devices_per_process: the CPU devices each worker simulates.
        port: the coordinator's port; default: a free one.
        timeout: the seconds the whole run may take before it is stopped.
        log: called with every output line; None prints nothing.

    Returns:
        A :class:`LaunchResult`.

    Raises:
        ValueError: for an argument out of range.
        TypeError: if ``log`` is neither callable nor None.
        LaunchError: as :func:`start` and :meth:`Launch.wait`.

    Example:
        >>> import sys
        >>> from purenn.launch import launch
        >>> worker = "import os; from purenn.launch import report; report(dict(os.environ))"
        >>> result = launch([sys.executable, "-c", worker], 2, devices_per_process=4, log=None)
        >>> [r["JAX_NUM_CPU_DEVICES"] for r in result.results]
        ['4', '4']
    """
    with start(
        command, processes, devices_per_process=devices_per_process, port=port, log=log
    ) as run:
        return run.wait(timeout)
