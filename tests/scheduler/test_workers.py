"""Worker processes: pipeline tasks (and the server's hand-offs) out of the owner's process.

The functions the workers run are module-level here, so they pickle by reference.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from litemlops.config import Config
from litemlops.errors import ValidationError
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.platform import Platform
from litemlops.scheduler.workers import (
    WorkerDiedError,
    WorkerError,
    Workers,
    WorkerTimeoutError,
)

# -- what the workers run ---------------------------------------------------------------------


def add(a: int, b: int) -> tuple[int, int]:
    return a + b, os.getpid()


def refuse(value: str) -> None:
    raise ValidationError(f"{value} is wrong")


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no")


def refuse_unpicklably() -> None:
    raise Unpicklable("odd")


def sleep_writing_pid(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def die(code: int) -> None:
    os._exit(code)


def emit(n: int) -> int:
    log = structlog.get_logger("litemlops.test")
    for i in range(n):
        log.info("worker_said", i=i)
    return n


def emit_held(n: int, file: Any = None) -> tuple[list[tuple[int, str]], int]:
    """Events rendered in the worker but held, to be sent together (a shadow's way), the
    owner's event file given or not: what is left to send, and this process's id (the
    lines carry it)."""
    from litemlops.logsetup import hold_forwarded

    held = hold_forwarded(file)
    log = structlog.get_logger("litemlops.test")
    for i in range(n):
        (log.warning if i == 2 else log.info)("worker_said", i=i, pid=os.getpid())
    return held.take(), os.getpid()


def owner_logging(tmp_path: Path, console: bool) -> tuple[Config, io.StringIO]:
    """This process logging as `run` does (its console at warnings), to `tmp_path`'s
    event file: the config, and what the console showed."""
    config = Config.load(tmp_path, env={}, overrides={"logging.console": console})
    shown = io.StringIO()
    configure_logging(config, console_stream=shown, console_level="warning")
    return config, shown


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a child of this process stays a zombie until it is reaped
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def wait_for_file(path: Path, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


@pytest.fixture(scope="module")
def workers() -> Any:
    pool = Workers()
    yield pool
    pool.stop()


# -- Workers ----------------------------------------------------------------------------------


def test_a_call_runs_in_another_process_and_returns_its_result(workers: Workers) -> None:
    total, pid = workers.call(add, 2, 3)
    assert total == 5
    assert pid != os.getpid()
    assert workers.live == 0


def test_an_error_comes_back_as_itself_with_the_workers_traceback(workers: Workers) -> None:
    with pytest.raises(ValidationError, match="x is wrong") as caught:
        workers.call(refuse, "x")
    notes = "".join(getattr(caught.value, "__notes__", []))
    assert "raised in a worker process" in notes
    assert "in refuse" in notes


def test_an_error_that_cannot_travel_is_named_and_described(workers: Workers) -> None:
    with pytest.raises(WorkerError, match="Unpicklable: odd"):
        workers.call(refuse_unpicklably)


def test_a_call_past_its_timeout_is_killed(workers: Workers, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = time.monotonic()
    # Long enough for a worker to start on a loaded machine (it takes ~50 ms alone).
    with pytest.raises(WorkerTimeoutError, match=r"timeout of 3\.0 s"):
        workers.call(sleep_writing_pid, str(marker), 60, timeout=3.0)
    assert time.monotonic() - started < 30
    assert gone(int(marker.read_text()))


def test_a_worker_that_dies_is_reported_with_its_exit_code(workers: Workers) -> None:
    with pytest.raises(WorkerDiedError, match="exit code 3"):
        workers.call(die, 3)


def test_worker_events_are_written_by_the_owner_with_its_bound_context(
    workers: Workers, tmp_path: Path, restore_logging: None
) -> None:
    config = Config.load(tmp_path, env={}, overrides={"logging.console": False})
    configure_logging(config)
    with structlog.contextvars.bound_contextvars(run_id="r-7"):
        assert workers.call(emit, 3) == 3
    shutdown_logging()
    lines = [json.loads(x) for x in config.events_log_path.read_text().splitlines()]
    said = [e for e in lines if e["event"] == "worker_said"]
    assert [e["i"] for e in said] == [0, 1, 2]
    assert all(e["run_id"] == "r-7" and e["logger"] == "litemlops.test" for e in said)


@pytest.mark.parametrize("console", [False, True])
def test_held_worker_events_are_written_together_in_their_order(
    workers: Workers, tmp_path: Path, restore_logging: None, console: bool
) -> None:
    from litemlops.logsetup import forward_lines

    config, shown = owner_logging(tmp_path, console)
    held, _ = workers.call(emit_held, 5)
    assert [json.loads(line)["i"] for _, line in held] == [0, 1, 2, 3, 4]
    forward_lines(held)
    shutdown_logging()
    lines = [json.loads(x) for x in config.events_log_path.read_text().splitlines()]
    assert [e["i"] for e in lines if e["event"] == "worker_said"] == [0, 1, 2, 3, 4]
    # The console shows what it shows of any event: the warning, not the rest.
    assert ("worker_said" in shown.getvalue()) is console
    assert shown.getvalue().count("worker_said") == (1 if console else 0)


@pytest.mark.parametrize("console", [False, True])
def test_a_worker_given_the_event_file_appends_what_the_console_does_not_show(
    workers: Workers, tmp_path: Path, restore_logging: None, console: bool
) -> None:
    from litemlops.logsetup import event_file, forward_lines

    config, shown = owner_logging(tmp_path, console)
    owner = event_file()
    assert owner is not None and Path(owner.path) == config.events_log_path.resolve()
    sent, pid = workers.call(emit_held, 5, owner)
    # Written by the worker itself, before the owner forwarded anything: all but the
    # warning the console shows, which alone comes back to be written by the owner.
    written = [json.loads(x) for x in config.events_log_path.read_text().splitlines()]
    said = [e for e in written if e["event"] == "worker_said"]
    assert [e["i"] for e in said] == ([0, 1, 3, 4] if console else [0, 1, 2, 3, 4])
    assert all(e["pid"] == pid != os.getpid() for e in said)
    assert [json.loads(line)["i"] for _, line in sent] == ([2] if console else [])
    forward_lines(sent)
    shutdown_logging()
    written = [json.loads(x) for x in config.events_log_path.read_text().splitlines()]
    assert sorted(e["i"] for e in written if e["event"] == "worker_said") == [0, 1, 2, 3, 4]
    assert shown.getvalue().count("worker_said") == (1 if console else 0)


def test_without_an_event_file_a_worker_holds_every_line_for_the_owner(
    tmp_path: Path,
) -> None:
    from litemlops.logfile import HeldLines, SharedFile
    from litemlops.logsetup import event_file

    assert event_file() is None  # no configure_logging: library use
    held = HeldLines(None)
    held.hold(20, "a")
    assert held.take() == [(20, "a")] and held.take() == []
    # A file it cannot open (here a directory) leaves every line to the owner.
    blocked = HeldLines(SharedFile(str(tmp_path), 1 << 20, 40))
    blocked.hold(20, "b")
    assert blocked.take() == [(20, "b")]  # below the console's level: the file's, if open


def test_stop_kills_live_workers_and_refuses_new_ones(tmp_path: Path) -> None:
    import threading

    pool = Workers()
    marker = tmp_path / "pid"
    errors: list[BaseException] = []

    def call() -> None:
        try:
            pool.call(sleep_writing_pid, str(marker), 60)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    pid = int(wait_for_file(marker))
    pool.stop()
    thread.join(30)
    assert gone(pid)
    assert errors and isinstance(errors[0], WorkerDiedError)
    with pytest.raises(WorkerDiedError, match="stopped"):
        pool.call(add, 1, 1)


OWNER = """
import sys, time
sys.path.insert(0, {here!r})
from litemlops.scheduler.workers import Workers
import test_workers
Workers().call(test_workers.sleep_writing_pid, {marker!r}, 120)
"""


def preloaded(module: str) -> bool:
    return module in sys.modules


def interruptible() -> bool:
    return signal.getsignal(signal.SIGINT) is signal.default_int_handler


EARLY_OWNER = """
import json, os, sys, time
sys.path.insert(0, {here!r})
from litemlops.scheduler.workers import Workers, start_fork_server
import test_workers
start_fork_server(["poplib"])
for _ in range(1000):  # its command line is ours until it execs
    children = open(f"/proc/self/task/{{os.getpid()}}/children").read().split()
    servers = [int(c) for c in children
               if b"multiprocessing.forkserver" in open(f"/proc/{{c}}/cmdline", "rb").read()]
    if servers:
        break
    time.sleep(0.01)
ignored = [int(line.split()[1], 16) >> 1 & 1 == 1  # bit 1: signal 2, SIGINT
           for line in open(f"/proc/{{servers[0]}}/status") if line.startswith("SigIgn:")]
workers = Workers()
print(json.dumps({{"servers": servers, "parent": workers.call(os.getppid),
                  "preloaded": workers.call(test_workers.preloaded, "poplib"),
                  "server_ignores_sigint": ignored, "owner": test_workers.interruptible(),
                  "worker": workers.call(test_workers.interruptible)}}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_a_fork_server_started_early_preloads_its_modules_deaf_to_ctrl_c_and_serves_workers():
    done = subprocess.run(
        [sys.executable, "-c", EARLY_OWNER.format(here=str(Path(__file__).parent))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    # Running as soon as it was asked for, before any worker; workers then fork from it
    # (a second server would preload PRELOAD alone, without the module given first).
    assert len(found["servers"]) == 1, found
    assert found["parent"] == found["servers"][0]
    assert found["preloaded"] is True
    # A terminal's Ctrl-C reaches the server too: ignored from its start, during its
    # imports, not only once it serves; its owner and its workers still take it.
    assert found["server_ignores_sigint"] == [True]
    assert (found["owner"], found["worker"]) == (True, True)


def crash_in_native_code() -> None:
    import ctypes

    ctypes.string_at(0)  # reads address 0: a segmentation fault, as a broken extension


CRASHING_OWNER = """
import sys
sys.path.insert(0, {here!r})
from litemlops.scheduler.workers import Workers, WorkerDiedError
import test_workers
try:
    Workers().call(test_workers.crash_in_native_code)
except WorkerDiedError as exc:
    print("died:", exc)
"""


def test_a_worker_that_crashes_in_native_code_prints_its_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_OWNER.format(here=str(Path(__file__).parent))],
        capture_output=True, text=True, timeout=120,
    )

    assert "died:" in done.stdout, done.stdout + done.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr, done.stderr
    assert "in crash_in_native_code" in done.stderr, done.stderr


@pytest.mark.slow
def test_a_worker_exits_when_its_owner_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER.format(here=str(Path(__file__).parent), marker=str(marker))]
    )
    try:
        pid = int(wait_for_file(marker))
        owner.send_signal(signal.SIGKILL)
        owner.wait(30)
        assert gone(pid), "the worker outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()


# -- pipelines run by a platform with workers --------------------------------------------------

PIPELINES = '''
import os, time
from litemlops import Pipeline, task

@task
def where(ctx):
    return {"pid": os.getpid()}

@task(timeout=3.0)
def slow(ctx):
    (ctx.work_dir / "pid").write_text(str(os.getpid()))
    time.sleep(60)

@task
def announce(ctx):
    ctx.bus.publish("worker.done", {"run_id": ctx.run_id})
    return {"published": True}

@task
def views(ctx):
    return sorted(v.name for v in ctx.features.list_feature_views())

@task(timeout=30.0)
def runs(ctx):
    return {"runs": len(ctx.tracker.list_runs())}

@task
def broken(ctx):
    raise ValueError("the data is bad")

placed = Pipeline("placed", [where, announce, views])
timed = Pipeline("timed", [slow])
failing = Pipeline("failing", [broken])
tracked = Pipeline("tracked", [runs])
'''


@pytest.fixture
def served(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    home.mkdir()
    (home / "mine.py").write_text(textwrap.dedent(PIPELINES))
    config = Config.load(home, env={}, overrides={"pipelines.modules": "mine.py",
                                                  "logging.console": False})
    with Platform(config) as platform:  # the history exists, with one view
        from litemlops.demo import definitions

        platform.history.apply([definitions.driver, definitions.driver_stats])
    with Platform(config, workers=True) as platform:
        yield platform


def test_tasks_run_in_worker_processes_with_the_history_opened_there(served: Platform) -> None:
    heard: list[Any] = []
    served.bus.subscribe("worker.*", lambda topic, payload: heard.append((topic, payload)))
    run = served.pipelines.run(served.catalog.get("placed"))
    assert run.state == "success", run.error
    outputs = {t.task: t.output for t in served.pipelines.task_runs(run.run_id)}
    assert outputs["where"]["pid"] != os.getpid()
    assert outputs["views"] == ["driver_stats"]
    assert heard == [("worker.done", {"run_id": run.run_id})]
    with pytest.raises(Exception, match="online store only"):
        served.history  # noqa: B018  (the owner never opens the history)


def test_a_task_past_its_timeout_fails_and_its_process_is_stopped(served: Platform) -> None:
    run = served.pipelines.run(served.catalog.get("timed"))
    assert run.state == "failed"
    (attempt,) = served.pipelines.task_runs(run.run_id)
    assert attempt.error is not None and attempt.error.startswith("TaskTimeoutError")
    pid = int((served.config.runs_dir / run.run_id / "slow" / "pid").read_text())
    assert gone(pid)


def test_a_failing_task_records_the_workers_traceback(served: Platform) -> None:
    run = served.pipelines.run(served.catalog.get("failing"))
    (attempt,) = served.pipelines.task_runs(run.run_id)
    assert attempt.error == "ValueError: the data is bad"
    assert attempt.traceback is not None
    assert "raised in a worker process" in attempt.traceback
    assert 'raise ValueError("the data is bad")' in attempt.traceback


def test_offline_pushes_and_descriptions_go_through_a_worker(served: Platform) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    row = {"driver_id": 1001, "datetime": now, "created": now, "conv_rate": 0.5,
           "acc_rate": 0.5, "avg_daily_trips": 3}
    result = served.push_features("driver_stats", [row], to="both")
    assert (result.rows, result.online_written) == (1, 1)
    assert served.describe_features("driver_stats")["offline_rows"] == 1
    assert [d["name"] for d in served.describe_features()] == ["driver_stats"]
    got = served.features.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}])
    assert got["conv_rate"] == [0.5]


def niceness() -> int:
    return os.nice(0)


def test_workers_run_at_a_lower_cpu_priority_than_their_owner(workers: Workers) -> None:
    from litemlops.scheduler.workers import NICENESS

    assert workers.call(niceness) == min(os.nice(0) + NICENESS, 19)


def test_a_task_that_needs_no_feature_history_does_not_wait_for_its_turn(
    served: Platform,
) -> None:
    """Another worker holding the DuckDB history (here: this test) must not stall a task
    that only reads the tracker, as the monitoring check does during a training run."""
    from litemlops.home_lock import HomeLock

    with HomeLock(served.config.features_lock_path).acquire():
        run = served.pipelines.run(served.catalog.get("tracked"))
    assert run.state == "success", run.error
    (attempt,) = served.pipelines.task_runs(run.run_id)
    assert attempt.output == {"runs": 0}
