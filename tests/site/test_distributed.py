"""Tests of purenn.distributed: several real processes joined by jax.distributed.

The multi-process runs start real worker processes (2 × 4 simulated CPU devices) through the
launcher, as the page does. Every test that starts processes checks afterwards that none is
left: the workers' pids are gone and this process has no children.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import optax
import psutil
import pytest

from purenn import distributed
from purenn.data import Examples, load_digits, steps_per_epoch
from purenn.distributed import (
    LaunchError,
    free_port,
    launch,
    load_params,
    main,
    params_checksum,
    process_rows,
    put_process_batch,
    save_params,
    train_digits,
)
from purenn.layers import mlp_apply, mlp_init
from purenn.parallel import batch_mesh
from purenn.training import classification_loss, fit, make_train_step, stateless

pytestmark = pytest.mark.processes

STEPS = 20
# The two runs may differ by float32 rounding: gloo adds the gradients in its own order.
TOLERANCE = 1e-6

REFERENCE = textwrap.dedent(
    """
    import json, sys

    import jax

    jax.config.update("jax_num_cpu_devices", 8)

    from purenn.distributed import params_checksum, save_params, train_digits
    from purenn.parallel import batch_mesh

    result = train_digits(batch_mesh(), steps=int(sys.argv[2]), log=None)
    save_params(sys.argv[1], result.params)
    print(json.dumps({"devices": jax.device_count(), "processes": jax.process_count(),
                      "losses": result.losses,
                      "checksum": params_checksum(result.params)}))
    """
)


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has exited)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def other_children() -> set[int]:
    """Children this process had before the test, such as a browser that other tests use."""
    return {child.pid for child in psutil.Process().children(recursive=True)}


def new_children(before: set[int]) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if child.pid not in before and running(child.pid)
    ]


def assert_no_process_left(pids, before: set[int], within: float = 5.0):
    """The workers are gone, and so is every child this test process started."""
    deadline = time.monotonic() + within
    while True:
        alive = [pid for pid in pids if running(pid)]
        children = new_children(before)
        if not alive and not children:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left behind: workers {alive}, children {children}")
        time.sleep(0.05)


def pids_from(output: str) -> list[int]:
    return [
        int(line.rsplit("pid ", 1)[1])
        for line in output.splitlines()
        if line.startswith("[launcher] worker ") and ": pid " in line
    ]


def says(text: str, *facts: object) -> bool:
    """Whether ``text`` has every fact as a whole token, in any order and wording: ``2`` is not
    found in ``128``, nor ``0`` in ``0.5``."""
    return all(
        re.search(rf"(?<![\w.-]){re.escape(str(fact))}(?![\w.-])", text) is not None
        for fact in facts
    )


def worker_lines(output: str, k: int) -> list[str]:
    """What worker ``k`` logged, without the launcher's ``[worker k]`` prefix."""
    prefix = f"[worker {k}] "
    return [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]


def reported_loss(lines: list[str], step: int, steps: int) -> float | None:
    """The loss a log line reports for step ``step`` of ``steps``, however it is spaced."""
    for line in lines:
        found = re.search(rf"(?<!\d){step}\s*/\s*{steps}\b.*\bloss\b\D*(\d+\.\d+)", line)
        if found:
            return float(found.group(1))
    return None


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "purenn.distributed", *args]


# --- No processes started ------------------------------------------------------------------------


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_process_rows_in_one_process_is_the_whole_batch():
    assert process_rows(batch_mesh(), 16) == slice(0, 16)
    with pytest.raises(ValueError, match="does not split evenly"):
        process_rows(batch_mesh(), 0)


def test_put_process_batch_checks_the_number_of_rows():
    mesh = batch_mesh()
    local = Examples(np.zeros((6, 64), np.float32), np.zeros(6, np.int32))
    batch = put_process_batch(local, mesh, 6)
    assert batch.images.shape == (6, 64) and batch.labels.shape == (6,)
    with pytest.raises(ValueError, match="must pass 8 rows"):
        put_process_batch({"x": np.zeros((6, 2))}, mesh, 8)


def test_train_digits_in_one_process_is_fit_on_the_same_batches():
    """One device, two epochs: the same batches, in the same order, as purenn.training.fit."""
    train = load_digits().train
    epochs, batch_size = 2, 128
    steps = epochs * steps_per_epoch(train, batch_size)
    seen = []
    result = train_digits(batch_mesh(), steps=steps, log=None, before_step=seen.append)
    assert seen == list(range(1, steps + 1))
    assert len(result.losses) == steps and result.losses[-1] < result.losses[0]

    def loss_fn(params, batch):
        return classification_loss(mlp_apply(params, batch.images), batch.labels)

    optimizer = optax.adam(1e-3)
    params = mlp_init(jax.random.key(0), [64, 128, 128, 10])
    step = make_train_step(stateless(loss_fn), optimizer)
    fitted = fit(step, params, optimizer.init(params), train, epochs=epochs,
                 batch_size=batch_size, key=jax.random.key(1), log=None)  # fmt: skip
    pairs = zip(jax.tree.leaves(result.params), jax.tree.leaves(fitted.params), strict=True)
    assert max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in pairs) < 1e-5
    with pytest.raises(ValueError, match="steps must be at least 1"):
        train_digits(batch_mesh(), steps=0)


def test_save_and_load_params(tmp_path):
    params = [{"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3)}, {"w": np.zeros((3, 1))}]
    path = save_params(tmp_path / "p", params)
    assert path.name == "p.npz"
    loaded = load_params(path, like=params)
    assert jax.tree.structure(loaded) == jax.tree.structure(params)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=True)
    )
    assert params_checksum(loaded) == 15.0 + 3.0
    with pytest.raises(ValueError, match="pass parameters of the model that was saved"):
        load_params(path, like=params[:1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(processes=0, devices_per_process=4, steps=1), "processes must be a positive"),
        (dict(processes=2, devices_per_process=4, steps=0), "steps must be a positive"),
        (dict(processes=2, devices_per_process=3, steps=1), "use a multiple of 6"),
        (dict(processes=2, devices_per_process=4, steps=1, crash_worker=2), "from 0 to 1"),
    ],
)
def test_launch_rejects_bad_arguments(kwargs, message, other_children):
    with pytest.raises(ValueError, match=message):
        launch(**kwargs)
    assert not new_children(other_children)


def test_cli_reports_bad_arguments(capsys):
    assert main(["--processes", "2", "--devices-per-process", "3", "--steps", "1"]) == 2
    assert "does not split evenly over 2 processes × 3 devices" in capsys.readouterr().err


# --- The coordinator cannot start ----------------------------------------------------------------


@pytest.fixture
def taken_port():
    """A port on 127.0.0.1 that another program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_launcher_refuses_a_taken_port(taken_port, capsys, other_children):
    start = time.monotonic()
    with pytest.raises(LaunchError, match=f"127.0.0.1:{taken_port} is already in use"):
        launch(2, 4, steps=1, port=taken_port, log=None)
    assert main(["--port", str(taken_port), "--steps", "1"]) == 1
    assert "The coordinator cannot start" in capsys.readouterr().err
    assert time.monotonic() - start < 5
    assert not new_children(other_children)


def test_worker_zero_reports_a_taken_port(taken_port):
    """The same, when the port is taken after the launcher's check: worker 0 says so."""
    done = subprocess.run(
        command("--worker", f"--coordinator=127.0.0.1:{taken_port}", "--processes=2",
                "--process-id=0", "--devices-per-process=4"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    assert f"could not start the coordinator: 127.0.0.1:{taken_port} is in use" in done.stdout


def test_launcher_names_the_coordinator_when_worker_zero_fails(
    taken_port, monkeypatch, other_children
):
    # Let the launcher's own check pass, as if the port were taken just after it.
    monkeypatch.setattr(distributed, "_port_is_free", lambda host, port: True)
    start = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        launch(2, 4, steps=1, port=taken_port, log=None, timeout=60)
    err = caught.value
    assert err.worker == 0 and err.returncode == 3
    assert f"Worker 0 runs the coordinator on 127.0.0.1:{taken_port}" in str(err)
    assert "is in use" in str(err) and "stopped the other workers (1)" in str(err)
    assert time.monotonic() - start < 20
    assert_no_process_left(err.pids, other_children)


# --- Two processes × four devices ----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The CLI run of 2 processes × 4 devices: its output, and the parameters it wrote."""
    output = tmp_path_factory.mktemp("run") / "params.npz"
    done = subprocess.run(
        command("--processes", "2", "--devices-per-process", "4", "--steps", str(STEPS),
                "--output", str(output), "--timeout", "120"),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, output


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same training in one process with 8 devices, without jax.distributed."""
    output = tmp_path_factory.mktemp("reference") / "params.npz"
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE, str(output), str(STEPS)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), output


def test_two_processes_form_one_mesh(two_processes, other_children):
    stdout, _ = two_processes
    for k, rows in [(0, "0-63"), (1, "64-127")]:
        lines = worker_lines(stdout, k)
        # Process k of 2, with 4 devices of its own and 8 in the mesh; its half of each batch.
        assert any(says(line, k, 2, 4, 8, "local", "mesh") for line in lines), lines
        assert any(says(line, rows, 128) for line in lines), lines
    checksums = {
        line.rsplit(" ", 1)[1]
        for line in stdout.splitlines()
        if "] final parameter checksum " in line
    }
    assert len(checksums) == 1  # both processes hold the same parameters
    assert "in every worker; parameters written to" in stdout
    assert_no_process_left(pids_from(stdout), other_children)


def test_two_processes_match_one_process(two_processes, one_process):
    stdout, multi_path = two_processes
    reference, single_path = one_process
    assert reference["devices"] == 8 and reference["processes"] == 1
    with np.load(multi_path) as multi, np.load(single_path) as single:
        assert (
            sorted(multi.files)
            == sorted(single.files)
            == ["0/b", "0/w", "1/b", "1/w", "2/b", "2/w"]
        )
        gap = max(float(np.max(np.abs(multi[name] - single[name]))) for name in multi.files)
        moved = max(float(np.max(np.abs(single[name]))) for name in single.files)
    assert gap < TOLERANCE, gap
    assert moved > 0.1
    # Each worker logs the last step's loss, the single process's to the printed precision.
    for k in (0, 1):
        logged = reported_loss(worker_lines(stdout, k), STEPS, STEPS)
        assert logged == pytest.approx(reference["losses"][-1], abs=5e-5), (k, logged)


# --- A worker dies, or the launcher is stopped ---------------------------------------------------


def test_killed_worker_fails_the_launch_fast(other_children):
    lines = []
    start = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        launch(2, 4, steps=STEPS, crash_worker=1, crash_at_step=2, log=lines.append, timeout=120)
    elapsed = time.monotonic() - start
    err = caught.value
    assert err.worker == 1 and err.returncode == -signal.SIGKILL
    # The first line names the worker, its pid and the signal, and that worker 0 was stopped.
    summary = str(err).splitlines()[0]
    assert re.search(r"(?i)\bworker 1\b", summary) and says(summary, err.pids[1], "SIGKILL"), (
        summary
    )
    assert "stopped" in summary and says(summary.split("stopped", 1)[1], 0), summary
    assert says(err.log_tail[-1], "--crash-worker", 2), err.log_tail  # its own last words
    assert reported_loss(worker_lines("\n".join(lines), 1), 1, STEPS) is not None  # it trained
    assert elapsed < 40
    assert_no_process_left(err.pids, other_children)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_stops_the_workers(how, other_children):
    """Ctrl-C, SIGTERM, and even SIGKILL of the launcher leave no worker behind."""
    launcher = subprocess.Popen(
        command("--steps", "10000", "--timeout", "120"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = []
    try:
        for line in launcher.stdout:
            seen.append(line)
            if sum("joined as process" in line for line in seen) == 2:
                break
        pids = pids_from("".join(seen))
        assert len(pids) == 2, seen
        launcher.send_signal(how)
        launcher.wait(timeout=30)
    finally:
        launcher.kill()
        launcher.wait()
    if how == signal.SIGKILL:
        assert launcher.returncode == -signal.SIGKILL
    else:
        assert launcher.returncode == 130
        assert "every worker was stopped" in launcher.stderr.read()
    launcher.stdout.close()
    launcher.stderr.close()
    assert_no_process_left(pids, other_children)


# --- The same worker on a cluster ----------------------------------------------------------------


def test_worker_finds_its_cluster_from_slurm_variables(tmp_path, other_children):
    """`--worker` without a coordinator: jax.distributed.initialize() reads SLURM's variables."""
    port = free_port()
    workers = []
    try:
        for k in range(2):
            env = dict(
                os.environ,
                JAX_PLATFORMS="cpu",
                SLURM_JOB_ID="4242",
                SLURM_STEP_NODELIST="localhost",
                SLURM_NTASKS="2",
                SLURM_PROCID=str(k),
                SLURM_LOCALID=str(k),
                JAX_COORDINATOR_PORT=str(port),
            )
            workers.append(subprocess.Popen(
                command("--worker", "--devices-per-process", "2", "--steps", "1",
                        "--output", str(tmp_path / "p.npz")),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            ))  # fmt: skip
        outputs = [worker.communicate(timeout=90)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    for k, out in enumerate(outputs):
        assert f"joined as process {k} of 2: 2 local devices, 4 in the mesh" in out
    assert Path(tmp_path / "p.npz").exists()
    assert_no_process_left([worker.pid for worker in workers], other_children)
