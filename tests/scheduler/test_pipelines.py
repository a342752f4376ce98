import json
import threading
from datetime import UTC, datetime

import pytest
import structlog
from structlog.testing import capture_logs

from litemlops import events
from litemlops.errors import NotFoundError, ValidationError
from litemlops.scheduler.pipeline import Pipeline, PipelineDefinitionError, task
from litemlops.scheduler.runner import PipelineRunner
from litemlops.store.tracking.tracking_db import TrackingDB

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def runner(tmp_path):
    db = TrackingDB(tmp_path / "registry.db")
    slept: list[float] = []
    runner = PipelineRunner(
        db, tmp_path / "runs", resources={"answer": 42}, clock=lambda: T0, sleep=slept.append
    )
    runner.slept = slept
    yield runner
    db.close()


def states(runner, run):
    return [(t.task, t.attempt, t.state) for t in runner.task_runs(run.run_id)]


def test_tasks_run_in_dependency_order_and_pass_outputs(runner):
    seen = []

    @task
    def extract(ctx):
        seen.append("extract")
        return {"rows": ctx.params["rows"]}

    @task(upstream="extract")
    def clean(ctx):
        seen.append("clean")
        return ctx.upstream["extract"]["rows"] - 1

    @task(upstream=["clean", "extract"])
    def report(ctx):
        seen.append("report")
        (ctx.work_dir / "report.txt").write_text("ok")
        return {"clean": ctx.upstream["clean"], "answer": ctx.answer}

    pipeline = Pipeline("data", [report, clean, extract], params={"rows": 10})
    assert pipeline.order == ("extract", "clean", "report")
    run = runner.run(pipeline, {"rows": 5})
    assert run.state == "success" and run.params == {"rows": 5}
    assert seen == ["extract", "clean", "report"]
    outputs = {t.task: t.output for t in runner.task_runs(run.run_id)}
    assert outputs["report"] == {"clean": 4, "answer": 42}
    folder = runner.runs_dir / run.run_id / "report"
    assert json.loads((folder / "output.json").read_text()) == outputs["report"]
    assert (folder / "report.txt").read_text() == "ok"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda a, b: Pipeline("p", [a, b]), "cycle"),
        (lambda a, b: Pipeline("p", [a]), "unknown"),
        (lambda a, b: Pipeline("p", [a, a]), "repeats"),
        (lambda a, b: Pipeline("p", []), "no tasks"),
        (lambda a, b: Pipeline("bad name", [a]), "invalid pipeline name"),
    ],
)
def test_bad_definitions_are_refused_when_defined(build, message):
    a = task(lambda ctx: 1, name="a", upstream="b")
    b = task(lambda ctx: 1, name="b", upstream="a")
    with pytest.raises(PipelineDefinitionError, match=message):
        build(a, b)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"retries": -1}, "retries"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"retry_backoff": 0.5}, "retry_backoff"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_task_options_are_refused(options, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        task(lambda ctx: 1, name="t", **options)


def test_failures_are_retried_with_backoff_then_succeed(runner):
    calls = []

    @task(retries=3, retry_delay=2, retry_backoff=3)
    def flaky(ctx):
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("feature source unreachable")
        return "ok"

    run = runner.run(Pipeline("p", [flaky]))
    assert run.state == "success" and calls == [1, 2, 3]
    assert runner.slept == [2.0, 6.0]
    assert states(runner, run) == [
        ("flaky", 1, "up_for_retry"),
        ("flaky", 2, "up_for_retry"),
        ("flaky", 3, "success"),
    ]


def test_a_failed_task_skips_everything_downstream_and_keeps_its_traceback(runner):
    @task
    def ok(ctx):
        return 1

    @task(upstream="ok", retries=1)
    def broken(ctx):
        raise ValueError("bad rows")

    @task(upstream="broken")
    def train(ctx):
        raise AssertionError("must not run")

    @task(upstream="train")
    def register(ctx):
        raise AssertionError("must not run")

    @task(upstream="ok")
    def side(ctx):
        return 2

    run = runner.run(Pipeline("p", [ok, broken, train, register, side]))
    assert run.state == "failed" and "broken" in run.error
    got = states(runner, run)
    assert ("broken", 2, "failed") in got and ("side", 1, "success") in got
    assert ("train", 0, "skipped") in got and ("register", 0, "skipped") in got
    failed = next(t for t in runner.task_runs(run.run_id) if t.state == "failed")
    assert "ValueError: bad rows" in failed.error and "Traceback" in failed.traceback


def test_a_task_past_its_timeout_fails(runner):
    release = threading.Event()

    @task(timeout=0.05)
    def slow(ctx):
        release.wait(5)

    run = runner.run(Pipeline("p", [slow]))
    release.set()
    (attempt,) = runner.task_runs(run.run_id)
    assert run.state == "failed" and "timeout of 0.05 s" in attempt.error


def test_non_json_outputs_and_unknown_params_are_clear_errors(runner):
    @task
    def leaks(ctx):
        return object()

    run = runner.run(Pipeline("p", [leaks]))
    assert "not JSON" in runner.task_runs(run.run_id)[0].error
    with pytest.raises(ValidationError, match="params must be a mapping"):
        runner.run(Pipeline("q", [leaks], params={"a": 1}), ["a"])
    with pytest.raises(ValidationError, match="no params"):
        runner.run(Pipeline("q", [leaks], params={"a": 1}), {"b": 2})
    with pytest.raises(NotFoundError, match="nope"):
        runner.get_run("nope")
    run = runner.run(Pipeline("r", [task(lambda ctx: ctx.missing, name="t")]))
    assert "resources given to the runner: ['answer']" in runner.task_runs(run.run_id)[0].error


def test_every_step_emits_its_event_bound_to_run_and_task(runner):
    @task
    def one(ctx):
        return 1

    @task(upstream="one")
    def two(ctx):
        raise RuntimeError("x")

    @task(upstream="two")
    def three(ctx):
        return 3

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        run = runner.run(Pipeline("p", [one, two, three]))
    names = [(e["event"], e.get("task")) for e in captured]
    assert names == [
        (events.PIPELINE_RUN_STARTED, None),
        (events.TASK_STARTED, "one"),
        (events.TASK_SUCCEEDED, "one"),
        (events.TASK_STARTED, "two"),
        (events.TASK_FAILED, "two"),
        (events.TASK_SKIPPED, "three"),
        (events.PIPELINE_RUN_FINISHED, None),
    ]
    for event in captured:
        assert event["run_id"] == run.run_id and event["pipeline"] == "p"
        assert events.missing_keys(event["event"], event) == set()


def test_history_survives_reopening(tmp_path):
    db = TrackingDB(tmp_path / "registry.db")
    run = PipelineRunner(db, tmp_path / "runs").run(
        Pipeline("p", [task(lambda ctx: 7, name="t")]), trigger="event", payload={"alert": "x"}
    )
    db.close()
    db = TrackingDB(tmp_path / "registry.db")
    again = PipelineRunner(db, tmp_path / "runs").get_run(run.run_id)
    assert (again.state, again.trigger, again.payload) == ("success", "event", {"alert": "x"})
    db.close()


def test_resume_reruns_failed_and_skipped_tasks_and_keeps_successes(runner):
    calls = []
    fail = {"train": True}

    @task
    def extract(ctx):
        calls.append("extract")
        return 10

    @task(upstream="extract")
    def train(ctx):
        calls.append("train")
        if fail["train"]:
            raise RuntimeError("out of memory")
        return ctx.upstream["extract"] * 2

    @task(upstream="train")
    def register(ctx):
        calls.append("register")
        return ctx.upstream["train"] + 1

    pipeline = Pipeline("training", [extract, train, register])
    run = runner.run(pipeline)
    assert run.state == "failed"
    fail["train"] = False
    resumed = runner.resume(pipeline, run.run_id)
    assert resumed.state == "success" and resumed.run_id == run.run_id
    assert calls == ["extract", "train", "train", "register"]
    assert runner.task_runs(run.run_id)[-1].output == 21
    from litemlops.scheduler.runner import RunStateConflict

    with pytest.raises(RunStateConflict, match="only a failed run resumes"):
        runner.resume(pipeline, run.run_id)


def test_run_step_runs_one_task_from_stored_upstream_outputs(runner):
    @task
    def extract(ctx):
        return {"n": 3}

    @task(upstream="extract")
    def train(ctx):
        return ctx.upstream["extract"]["n"] * 2

    pipeline = Pipeline("p", [extract, train])
    run = runner.run(pipeline)
    again = runner.run_step(pipeline, "train", run.run_id)
    assert (again.task, again.attempt, again.output) == ("train", 2, 6)
    from litemlops.scheduler.runner import RunStateConflict

    broken = Pipeline("q", [task(lambda ctx: 1 / 0, name="extract"), train])
    failed = runner.run(broken)
    with pytest.raises(RunStateConflict, match=r"needs upstream task\(s\) \['extract'\]"):
        runner.run_step(broken, "train", failed.run_id)
    with pytest.raises(ValidationError, match="has no task 'nope'"):
        runner.run_step(pipeline, "nope", run.run_id)


def test_stepping_the_failed_tasks_completes_the_run_and_running_runs_are_refused(runner):
    from litemlops.scheduler.runner import RunStateConflict

    flaky = {"fail": True}

    @task
    def extract(ctx):
        return 1

    @task(upstream="extract")
    def load(ctx):
        if flaky["fail"]:
            raise OSError("disk full")
        return 2

    pipeline = Pipeline("steps", [extract, load])
    run = runner.run(pipeline)
    assert run.state == "failed"
    flaky["fail"] = False
    step = runner.run_step(pipeline, "load", run.run_id)
    assert (step.task, step.state, step.output) == ("load", "success", 2)
    assert runner.get_run(run.run_id).state == "success"
    with runner.db.write() as con:
        con.execute("UPDATE pipeline_runs SET state = 'running' WHERE run_id = ?", [run.run_id])
    with pytest.raises(RunStateConflict, match="is running; step a task only in a run that"):
        runner.run_step(pipeline, "load", run.run_id)


def test_an_output_that_cannot_be_written_fails_the_attempt_not_the_runner(runner, tmp_path):
    @task
    def fine(ctx):
        (ctx.work_dir / "output.json").mkdir()  # the output path is now a folder
        return 1

    run = runner.run(Pipeline("unwritable", [fine]))
    assert run.state == "failed"
    (attempt,) = runner.task_runs(run.run_id)
    assert attempt.state == "failed" and "output.json" in attempt.error


KILLED_MID_TASK = """
import sys, time
from pathlib import Path
from litemlops.scheduler.pipeline import Pipeline, task
from litemlops.scheduler.runner import PipelineRunner
from litemlops.store.tracking.tracking_db import TrackingDB

@task
def first(ctx):
    return 1

@task(upstream="first")
def long(ctx):
    Path(sys.argv[2]).write_text(ctx.run_id)
    time.sleep(60)

PipelineRunner(TrackingDB(sys.argv[1]), sys.argv[3]).run(Pipeline("nightly", [first, long]))
"""


def test_a_run_killed_mid_task_is_marked_interrupted_and_can_resume(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_MID_TASK,
            str(tmp_path / "registry.db"),
            str(marker),
            str(tmp_path / "runs"),
        ]
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    run_id = marker.read_text()
    db = TrackingDB(tmp_path / "registry.db")
    runner = PipelineRunner(db, tmp_path / "runs")
    assert runner.get_run(run_id).state == "running"  # what the dead process left
    assert runner.mark_interrupted() == [run_id]
    run = runner.get_run(run_id)
    long_attempt = runner.task_runs(run_id)[-1]
    assert run.state == "failed" and "interrupted" in run.error
    assert (long_attempt.task, long_attempt.state) == ("long", "failed")

    quick = Pipeline(
        "nightly",
        [task(lambda ctx: 1, name="first"), task(lambda ctx: 2, name="long", upstream="first")],
    )
    assert runner.resume(quick, run_id).state == "success"
    db.close()


def _busy_pipeline(on_busy, started, release):
    @task
    def hold(ctx):
        started.set()
        assert release.wait(30)
        return ctx.params["n"]

    return Pipeline("busy", [hold], params={"n": 0}, on_busy=on_busy)


@pytest.mark.parametrize("on_busy", ["skip", "queue"])
def test_max_active_runs_skips_or_queues_a_second_trigger(tmp_path, on_busy):
    import time

    db = TrackingDB(tmp_path / "registry.db")
    runner = PipelineRunner(db, tmp_path / "runs", sleep=time.sleep)
    runner.poll_seconds = 0.01
    started, release = threading.Event(), threading.Event()
    pipeline = _busy_pipeline(on_busy, started, release)
    results = {}
    first = threading.Thread(
        target=lambda: results.setdefault("first", runner.run(pipeline, {"n": 1}))
    )
    first.start()
    assert started.wait(30)
    if on_busy == "skip":
        second = runner.run(pipeline, {"n": 2}, trigger="schedule")
        assert second.state == "skipped" and "max_active_runs=1" in second.error
        assert runner.task_runs(second.run_id) == []
        release.set()
    else:
        second_thread = threading.Thread(
            target=lambda: results.setdefault("second", runner.run(pipeline, {"n": 2}))
        )
        second_thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not db.read(
            "SELECT 1 FROM pipeline_runs WHERE state = 'queued'"
        ):
            time.sleep(0.01)
        assert (
            db.read("SELECT count(*) AS n FROM pipeline_runs WHERE state = 'running'")[0]["n"] == 1
        )
        release.set()
        second_thread.join(30)
        first.join(30)
        second = results["second"]
        assert second.state == "success"
        # queued, so it started only once the first run had ended
        assert second.started_at >= results["first"].ended_at
    first.join(30)
    assert results["first"].state == "success"
    db.close()


def test_bad_concurrency_options_are_refused():
    one = task(lambda ctx: 1, name="t")
    with pytest.raises(PipelineDefinitionError, match="max_active_runs"):
        Pipeline("p", [one], max_active_runs=0)
    with pytest.raises(PipelineDefinitionError, match="on_busy"):
        Pipeline("p", [one], on_busy="drop")


def test_a_resume_that_fails_again_closes_the_run_and_frees_the_pipeline(runner):
    @task
    def a(ctx):
        raise ValueError("still broken")

    @task(upstream="a")
    def b(ctx):
        return 1

    pipeline = Pipeline("again", [a, b])
    run = runner.run(pipeline)
    for _ in range(2):
        resumed = runner.resume(pipeline, run.run_id)
        assert resumed.state == "failed"
    assert [(t.task, t.attempt, t.state) for t in runner.task_runs(run.run_id)] == [
        ("a", 1, "failed"), ("b", 0, "skipped"), ("a", 2, "failed"), ("a", 3, "failed"),
    ]
    assert runner.run(pipeline).state == "failed"  # not queued behind a stuck run


def test_a_task_calling_sys_exit_fails_and_an_interrupt_closes_the_run(runner):
    import sys

    @task
    def exits(ctx):
        sys.exit(3)

    run = runner.run(Pipeline("exits", [exits]))
    assert run.state == "failed"
    assert runner.task_runs(run.run_id)[0].error == "SystemExit: 3"

    @task
    def interrupted(ctx):
        raise KeyboardInterrupt("stopped by hand")

    with pytest.raises(KeyboardInterrupt, match="stopped by hand"):
        runner.run(Pipeline("stopped", [interrupted]))
    (stopped,) = runner.list_runs(pipeline="stopped")
    assert stopped.state == "failed" and stopped.error.startswith("interrupted: KeyboardInterrupt")


def test_a_task_whose_downstream_used_its_output_cannot_be_stepped(runner):
    from litemlops.scheduler.runner import RunStateConflict

    @task
    def train(ctx):
        return 1

    @task(upstream="train")
    def evaluate(ctx):
        return 2

    @task(upstream="evaluate")
    def register(ctx):
        raise OSError("registry down")

    pipeline = Pipeline("gated", [train, evaluate, register])
    run = runner.run(pipeline)
    with pytest.raises(RunStateConflict, match=r"downstream task\(s\) \['evaluate'\] already"):
        runner.run_step(pipeline, "train", run.run_id)


def test_runs_of_dead_or_reborn_processes_are_failed_at_start_even_queued(runner):
    import os
    import socket
    import subprocess
    import sys

    from litemlops.store.tracking.tracker import process_start

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    me, born = os.getpid(), process_start(os.getpid())
    assert born is not None
    rows = [
        ("dead-running", "running", dead_pid, None),
        ("dead-queued", "queued", dead_pid, None),
        # Our pid, written by an earlier process that had it (a container's pid 1).
        ("reborn", "running", me, born - 1),
        ("alive", "running", me, born),
    ]
    with runner.db.write() as con:
        for run_id, state, pid, start in rows:
            con.execute(
                "INSERT INTO pipeline_runs (run_id, pipeline, state, trigger, queued_at, host, "
                "pid, proc_start) VALUES (?, 'p', ?, 'manual', 0, ?, ?, ?)",
                [run_id, state, socket.gethostname(), pid, start],
            )
    assert sorted(runner.mark_interrupted()) == ["dead-queued", "dead-running", "reborn"]
    assert runner.get_run("alive").state == "running"


def test_interrupting_this_process_runs_stops_them_at_the_next_task(runner):
    started, release = threading.Event(), threading.Event()

    @task
    def hold(ctx):
        started.set()
        release.wait(5)
        return 1

    @task(upstream="hold")
    def after(ctx):
        return 2

    pipeline = Pipeline("held", [hold, after])
    results = []
    worker = threading.Thread(target=lambda: results.append(runner.run(pipeline)))
    worker.start()
    assert started.wait(5)
    (run_id,) = runner.interrupt_running("interrupted: the server stopped while it ran")
    release.set()
    worker.join(5)
    run = runner.get_run(run_id)
    assert (run.state, run.error) == ("failed", "interrupted: the server stopped while it ran")
    assert [(t.task, t.state) for t in runner.task_runs(run_id)] == [("hold", "failed")]
