"""Tests of purenn.distributed, purenn.launch and purenn.digits: real processes joined by
jax.distributed.

The multi-process runs start real worker processes (2 × 4 simulated CPU devices) through the
launcher, as the page does. They check what the workers report (their result files, exit
statuses and checkpoints), not the wording of their logs. Every test that starts processes
checks afterwards that none is left: the workers' pids are gone and this process has no
children.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import optax
import psutil
import pytest

from purenn import launch as launch_module
from purenn.data import Examples, load_digits, steps_per_epoch
from purenn.digits import main, params_checksum, restore_params, saved_steps, train_digits
from purenn.distributed import free_port, process_rows, put_process_batch
from purenn.launch import LaunchError, launch, start
from purenn.layers import mlp_apply, mlp_init
from purenn.parallel import batch_mesh
from purenn.training import classification_loss, fit, make_train_step, stateless

# One test worker runs the whole module (pytest -n, --dist loadgroup):
# its module fixtures run the two-process trainings once.
pytestmark = [pytest.mark.processes, pytest.mark.xdist_group("distributed")]

STEPS = 20
SAVE_EVERY = 5
# The two runs may differ by float32 rounding: gloo adds the gradients in its own order.
TOLERANCE = 1e-6

REFERENCE = textwrap.dedent(
    """
    import sys

    import jax

    jax.config.update("jax_num_cpu_devices", 8)

    from purenn.digits import train_digits
    from purenn.parallel import batch_mesh

    train_digits(batch_mesh(), steps=int(sys.argv[2]), checkpoints=sys.argv[1], log=None)
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


def says(text: str, *facts: object) -> bool:
    """Whether ``text`` has every fact as a whole token, in any order and wording: ``2`` is not
    found in ``128``, nor ``0`` in ``0.5``."""
    return all(
        re.search(rf"(?<![\w.-]){re.escape(str(fact))}(?![\w.-])", text) is not None
        for fact in facts
    )


def largest_gap(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def digits_worker(checkpoints, steps: int = STEPS, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "purenn.digits", "--worker", f"--steps={steps}",
        f"--save-every={SAVE_EVERY}", f"--checkpoints={checkpoints}", *extra,
    ]  # fmt: skip


def wait_for_a_checkpoint(folder, within: float = 120.0) -> list[int]:
    deadline = time.monotonic() + within
    while not (saved := saved_steps(folder)):
        assert time.monotonic() < deadline, f"no checkpoint in {folder} after {within} s"
        time.sleep(0.02)
    return saved


# --- No processes started ------------------------------------------------------------------------


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_process_rows_in_one_process_is_the_whole_batch():
    mesh = batch_mesh()
    assert process_rows(mesh, 16 * mesh.size) == slice(0, 16 * mesh.size)
    with pytest.raises(ValueError, match="at least"):
        process_rows(mesh, 0)
    if mesh.size > 1:
        with pytest.raises(ValueError, match="does not split evenly"):
            process_rows(mesh, mesh.size + 1)


def test_put_process_batch_checks_the_number_of_rows():
    mesh = batch_mesh()
    rows = 6 * mesh.size
    local = Examples(np.zeros((rows, 64), np.float32), np.zeros(rows, np.int32))
    batch = put_process_batch(local, mesh, rows)
    assert batch.images.shape == (rows, 64) and batch.labels.shape == (rows,)
    with pytest.raises(ValueError, match=f"must pass {rows + mesh.size} rows"):
        put_process_batch({"x": np.zeros((rows, 2))}, mesh, rows + mesh.size)


def test_train_digits_in_one_process_is_fit_on_the_same_batches():
    """Two epochs: the same batches, in the same order, as purenn.training.fit."""
    train = load_digits().train
    epochs, batch_size = 2, 128
    steps = epochs * steps_per_epoch(train, batch_size)
    result = train_digits(batch_mesh(), steps=steps, log=None)
    assert result.first_step == 0
    assert len(result.losses) == steps and result.losses[-1] < result.losses[0]

    def loss_fn(params, batch):
        return classification_loss(mlp_apply(params, batch.images), batch.labels)

    optimizer = optax.adam(1e-3)
    params = mlp_init(jax.random.key(0), [64, 128, 128, 10])
    step = make_train_step(stateless(loss_fn), optimizer)
    fitted = fit(step, params, optimizer.init(params), train, epochs=epochs,
                 batch_size=batch_size, key=jax.random.key(1), log=None)  # fmt: skip
    assert largest_gap(result.params, fitted.params) < 1e-5


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(steps=3, save_every=0)])
def test_train_digits_rejects_steps_below_one(kwargs):
    with pytest.raises(ValueError, match="must be at least 1"):
        train_digits(batch_mesh(), log=None, **kwargs)


def test_a_resumed_run_reaches_the_parameters_of_an_uninterrupted_one(tmp_path):
    """In one process, where nothing changes the order of any sum: equal to the last bit."""
    mesh = batch_mesh()
    straight = train_digits(mesh, steps=6, log=None)
    first = train_digits(mesh, steps=4, save_every=2, checkpoints=tmp_path, log=None)
    assert saved_steps(tmp_path) == [2, 4] and first.first_step == 0
    restored = restore_params(tmp_path, mesh)
    for saved, kept in zip(jax.tree.leaves(restored), jax.tree.leaves(first.params), strict=True):
        np.testing.assert_array_equal(saved, kept)
    assert params_checksum(restored) == params_checksum(first.params)
    resumed = train_digits(mesh, steps=6, save_every=2, checkpoints=tmp_path, log=None)
    assert resumed.first_step == 4 and len(resumed.losses) == 2
    assert resumed.losses == straight.losses[4:]
    for ours, theirs in zip(
        jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)
    # Orbax keeps the latest three; an older step is gone, and asking for it says so.
    assert saved_steps(tmp_path) == [2, 4, 6]
    with pytest.raises(
        FileNotFoundError, match=r"no checkpoint of step 1; it has steps \[2, 4, 6\]"
    ):
        restore_params(tmp_path, mesh, step=1)


def test_restore_params_of_a_folder_without_checkpoints_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no checkpoint.*Pass the folder"):
        restore_params(tmp_path / "never-written", batch_mesh())


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0,), {}, "processes must be a positive int, got 0"),
        ((2,), dict(devices_per_process=0), "devices_per_process must be a positive int"),
        ((2.5,), {}, "processes must be a positive int, got 2.5"),
        ((2,), dict(grace=-1.0), "grace must not be negative"),
    ],
)
def test_start_rejects_bad_arguments(args, kwargs, message, other_children):
    with pytest.raises(ValueError, match=message):
        start([sys.executable, "-c", "pass"], *args, log=None, **kwargs)
    assert not new_children(other_children)


def test_start_rejects_a_log_that_is_not_a_function(other_children):
    with pytest.raises(TypeError, match=r"log must be a function .* got 'run.log'.*print\(line"):
        start([sys.executable, "-c", "pass"], 1, log="run.log")
    assert not new_children(other_children)


def test_cli_reports_bad_arguments(capsys, other_children):
    assert main(["--processes", "2", "--devices-per-process", "3", "--steps", "1"]) == 2
    assert "does not split evenly over 2 processes × 3 devices" in capsys.readouterr().err
    assert main(["--processes", "0"]) == 2
    assert "processes must be a positive int, got 0" in capsys.readouterr().err
    assert not new_children(other_children)


# --- Workers that fail on their own --------------------------------------------------------------


def test_a_worker_that_fails_is_named_with_its_status_and_last_words(other_children):
    worker = "print('reading the data'); print('out of memory'); raise SystemExit(4)"
    with start([sys.executable, "-c", worker], 1, log=None) as run:
        with pytest.raises(LaunchError) as caught:
            run.wait(timeout=60)
    err = caught.value
    assert err.worker == 0 and err.returncode == 4 and err.pids == run.pids
    assert says(str(err).splitlines()[0].rstrip("."), 0, 4)
    # The pid, which differs in every run, is given with the log lines, after the first line.
    assert says(str(err).splitlines()[1], 0, run.pids[0]), str(err)
    assert err.log_tail == ("reading the data", "out of memory")
    assert_no_process_left(err.pids, other_children)


def test_a_worker_that_exits_without_reporting_fails_the_launch(other_children):
    with pytest.raises(LaunchError, match="left no result.*purenn.launch.report"):
        launch([sys.executable, "-c", "pass"], 1, log=None)
    assert not new_children(other_children)


def test_workers_past_the_timeout_are_stopped(other_children):
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    start_time = time.monotonic()
    with pytest.raises(LaunchError, match="did not finish within 1 s") as caught:
        launch(sleeper, 2, timeout=1.0, log=None)
    assert time.monotonic() - start_time < 30
    assert caught.value.worker is None and len(caught.value.pids) == 2
    assert_no_process_left(caught.value.pids, other_children)


def test_every_worker_is_told_who_it_is(other_children):
    worker = "import os; from purenn.launch import report; report(dict(os.environ))"
    result = launch([sys.executable, "-c", worker], 3, devices_per_process=2, log=None)
    assert [r["PURENN_PROCESS_ID"] for r in result.results] == ["0", "1", "2"]
    assert {r["PURENN_NUM_PROCESSES"] for r in result.results} == {"3"}
    assert {r["JAX_NUM_CPU_DEVICES"] for r in result.results} == {"2"}
    assert len({r["PURENN_RESULT_FILE"] for r in result.results}) == 3
    assert_no_process_left(result.pids, other_children)


# --- The coordinator cannot start ----------------------------------------------------------------


@pytest.fixture
def taken_port():
    """A port on 127.0.0.1 that another program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_launcher_refuses_a_taken_port(taken_port, capsys, other_children):
    start_time = time.monotonic()
    with pytest.raises(LaunchError, match=f"127.0.0.1:{taken_port} is already in use"):
        start([sys.executable, "-c", "pass"], 2, port=taken_port, log=None)
    assert main(["--port", str(taken_port), "--steps", "1"]) == 1
    assert "The coordinator cannot start" in capsys.readouterr().err
    assert time.monotonic() - start_time < 5
    assert not new_children(other_children)


def test_launcher_names_the_coordinator_when_worker_zero_fails(
    taken_port, tmp_path, monkeypatch, other_children
):
    # Let the launcher's own check pass, as if the port were taken just after it; worker 0,
    # in its own process, finds it taken and exits with its own status.
    monkeypatch.setattr(launch_module, "_port_is_free", lambda host, port: True)
    start_time = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        launch(digits_worker(tmp_path, 1), 2, devices_per_process=4, port=taken_port,
               timeout=60, log=None)  # fmt: skip
    err = caught.value
    assert err.worker == 0 and err.returncode == launch_module.PORT_IN_USE_EXIT == 3
    assert f"worker 0 runs the coordinator on 127.0.0.1:{taken_port}" in str(err)
    assert "which is in use" in str(err) and "stopped the other workers (1)" in str(err)
    assert says(err.log_tail[-1], f"127.0.0.1:{taken_port}", "in", "use"), err.log_tail
    assert time.monotonic() - start_time < 30
    assert_no_process_left(err.pids, other_children)


# --- Two processes × four devices ----------------------------------------------------------------


# Session-scoped, though only this module uses it: under pytest -n, tests of other modules
# can run between this module's, and pytest would tear a module fixture down each time.
@pytest.fixture(scope="session")
def two_processes(tmp_path_factory):
    """The run of 2 processes × 4 devices: the launch's result and its checkpoint folder."""
    folder = tmp_path_factory.mktemp("two-processes")
    result = launch(digits_worker(folder), 2, devices_per_process=4, timeout=180, log=None)
    return result, folder


@pytest.fixture(scope="session")
def one_process(tmp_path_factory):
    """The same training in one process with 8 devices, without jax.distributed."""
    folder = tmp_path_factory.mktemp("one-process")
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE, str(folder), str(STEPS)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder


def test_two_processes_form_one_mesh(two_processes, other_children):
    result, folder = two_processes
    reports = result.results
    assert [r["process"] for r in reports] == [0, 1]
    assert all(r["processes"] == 2 and r["local_devices"] == 4 for r in reports)
    assert all(r["devices"] == 8 for r in reports)
    assert [r["rows"] for r in reports] == [[0, 64], [64, 128]]
    # Each holds half of every batch, yet both see the loss of the whole batch.
    assert reports[0]["losses"] == reports[1]["losses"] and len(reports[0]["losses"]) == STEPS
    assert reports[0]["checksum"] == reports[1]["checksum"]
    assert saved_steps(folder) == [10, 15, 20]
    assert_no_process_left(result.pids, other_children)


def test_two_processes_match_one_process(two_processes, one_process):
    result, folder = two_processes
    mesh = batch_mesh()
    multi = restore_params(folder, mesh)
    single = restore_params(one_process, mesh)
    assert largest_gap(multi, single) < TOLERANCE
    assert largest_gap(single, jax.tree.map(np.zeros_like, single)) > 0.1
    assert params_checksum(multi) == pytest.approx(result.results[0]["checksum"], rel=1e-12)


def test_a_killed_worker_stops_the_run_and_a_relaunch_resumes_it(
    two_processes, tmp_path, other_children
):
    """Kill worker 1 once a checkpoint is saved; the run stops at once, and the same command
    started again continues from that checkpoint to the parameters of an uninterrupted run."""
    uninterrupted, uninterrupted_folder = two_processes
    with start(digits_worker(tmp_path), 2, devices_per_process=4, log=None) as run:
        wait_for_a_checkpoint(tmp_path)
        killed_at = time.monotonic()
        os.kill(run.pids[1], signal.SIGKILL)
        with pytest.raises(LaunchError) as caught:
            run.wait(timeout=120)
    stopped_after = time.monotonic() - killed_at
    err = caught.value
    assert err.worker == 1 and err.returncode == -signal.SIGKILL
    summary = str(err).splitlines()[0]
    assert says(summary, 1, "SIGKILL"), summary
    assert says(str(err).splitlines()[1], 1, run.pids[1]), str(err)
    assert "stopped" in summary and says(summary.split("stopped", 1)[1], 0), summary
    assert stopped_after < 20  # not the heartbeat's minutes
    assert_no_process_left(err.pids, other_children)
    left = saved_steps(tmp_path)
    assert left and left[-1] < STEPS, left

    resumed = launch(digits_worker(tmp_path), 2, devices_per_process=4, timeout=180, log=None)
    assert [r["first_step"] for r in resumed.results] == [left[-1]] * 2
    assert resumed.results[0]["losses"] == pytest.approx(
        uninterrupted.results[0]["losses"][left[-1] :], rel=1e-6
    )
    mesh = batch_mesh()
    gap = largest_gap(restore_params(tmp_path, mesh), restore_params(uninterrupted_folder, mesh))
    assert gap <= TOLERANCE
    assert_no_process_left(resumed.pids, other_children)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_stops_the_workers(how, tmp_path, other_children):
    """Ctrl-C, SIGTERM, and even SIGKILL of the launcher leave no worker behind."""
    launcher = subprocess.Popen(
        [sys.executable, "-m", "purenn.digits", "--steps", "10000", "--save-every", "1",
         "--checkpoints", str(tmp_path), "--timeout", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_a_checkpoint(tmp_path)  # both workers have joined and are training
        pids = [child.pid for child in psutil.Process(launcher.pid).children()]
        assert len(pids) == 2, pids
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
    launcher.stderr.close()
    assert_no_process_left(pids, other_children)


# --- The same worker on a cluster ----------------------------------------------------------------


def test_worker_finds_its_cluster_from_slurm_variables(tmp_path, other_children):
    """`--worker` without a launcher: jax.distributed.initialize() reads SLURM's variables."""
    port = free_port()
    workers = []
    try:
        for k in range(2):
            env = dict(
                os.environ,
                JAX_PLATFORMS="cpu",
                JAX_NUM_CPU_DEVICES="2",
                SLURM_JOB_ID="4242",
                SLURM_STEP_NODELIST="localhost",
                SLURM_NTASKS="2",
                SLURM_PROCID=str(k),
                SLURM_LOCALID=str(k),
                JAX_COORDINATOR_PORT=str(port),
            )
            workers.append(subprocess.Popen(
                digits_worker(tmp_path, 1),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            ))  # fmt: skip
        outputs = [worker.communicate(timeout=90)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    for k, out in enumerate(outputs):
        # Process k of 2, with 2 devices of its own and 4 in the mesh.
        assert any(says(line, k, 2, 4) for line in out.splitlines()), out
    assert saved_steps(tmp_path) == [1]
    assert_no_process_left([worker.pid for worker in workers], other_children)
