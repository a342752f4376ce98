"""Running a pipeline now, in this process, with its history in `registry.db`.

Each task runs after its upstream tasks succeeded; a failure is retried as the
task says, then marks every downstream task skipped. Task and run states,
attempts, times, errors with tracebacks and outputs are written as they
happen, so a crash leaves an accurate record. Every step emits an event
bound to run_id, pipeline and task.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from litemlops import events
from litemlops.clock import from_ms, to_ms, utc_now
from litemlops.errors import LitemlopsError, NotFoundError, ValidationError
from litemlops.logger import get_logger, logging_to
from litemlops.scheduler.paths import PathRoots
from litemlops.scheduler.pipeline import Pipeline, Task, TaskContext
from litemlops.scheduler.retention import Retention
from litemlops.store.files import write_text_atomic
from litemlops.store.tracking.tracker import process_alive, process_start
from litemlops.store.tracking.tracking_db import TrackingDB

log = get_logger("litemlops.pipelines")


#: States a pipeline run can be in.
RUN_STATES = ("queued", "running", "success", "failed", "skipped")


class PipelineRunNotFoundError(NotFoundError):
    """No pipeline run with that id."""


class RunStateConflict(LitemlopsError, RuntimeError):
    """The run is not in a state that allows this (resume a success, step without inputs)."""


class TaskTimeoutError(TimeoutError):
    """A task attempt ran longer than its timeout."""


@dataclass(frozen=True)
class TaskRun:
    task: str
    attempt: int
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    traceback: str | None
    output: Any


@dataclass(frozen=True)
class PipelineRun:
    run_id: str
    pipeline: str
    state: str
    trigger: str
    payload: dict[str, Any]
    params: dict[str, Any]
    queued_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None


class PipelineRunner:
    """Runs pipelines synchronously and records them.

    runs_dir: where each run gets `<run_id>/<task>/` (outputs, working files).
    resources: handed to every task's context (`ctx.features`, `ctx.tracker`...).
    clock and sleep are injected so tests never wait for real. keep_folders,
    keep_history: how much of the past is kept (see `retention`; by default all).
    execute: how a task attempt runs, `execute(task, ctx) -> output`; by default in
    this process (on a thread of its own when the task has a timeout). `litemlops
    run` passes one that runs it in a worker process (`Platform(workers=True)`).
    event_log: the home's event file, which the runs' events belong to when one
    process has several homes open.
    paths: where path params may point (see `scheduler.paths`); None: anywhere.
    """

    def __init__(
        self,
        db: TrackingDB,
        runs_dir: str | Path,
        *,
        resources: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        keep_folders: int = 0,
        keep_history: timedelta | None = None,
        execute: Callable[[Task, TaskContext], Any] | None = None,
        event_log: str | Path | None = None,
        paths: PathRoots | None = None,
    ):
        self.db = db
        #: The home's event file: a run's events belong to it (`logger.logging_to`).
        self.event_log = event_log
        self.paths = paths
        self.execute = execute if execute is not None else _call
        self.runs_dir = Path(runs_dir)
        self.resources = dict(resources or {})
        self.clock = clock
        self.sleep = sleep
        self.retention = Retention(
            db, self.runs_dir, keep_folders=keep_folders, keep_history=keep_history, clock=clock
        )
        self.poll_seconds = 0.05  # how often a queued run checks for a free slot

    def _now(self) -> int:
        return to_ms(self.clock())

    @contextlib.contextmanager
    def _bound(self, run_id: str, pipeline: str) -> Iterator[None]:
        """A run's context for its events: its id and pipeline, and its home's log."""
        with structlog.contextvars.bound_contextvars(run_id=run_id, pipeline=pipeline):
            if self.event_log is None:
                yield
            else:
                with logging_to(self.event_log):
                    yield

    # -- running ------------------------------------------------------------------------

    def run(
        self,
        pipeline: Pipeline,
        params: Mapping[str, Any] | None = None,
        *,
        trigger: str = "manual",
        payload: Mapping[str, Any] | None = None,
    ) -> PipelineRun:
        """Run every task in dependency order; return the finished run."""
        if payload is not None and not isinstance(payload, Mapping):
            raise ValidationError(f"payload must be a mapping, got {payload!r}")
        merged = self.run_params(pipeline, params)
        run_id = uuid.uuid4().hex
        state = self._admit(pipeline, run_id, trigger, payload or {}, merged)
        while state == "queued":
            self.sleep(self.poll_seconds)
            state = self._promote(pipeline, run_id)
        if state == "running":
            self._execute(run_id, pipeline, merged, {}, trigger)
        return self.get_run(run_id)

    def run_params(
        self, pipeline: Pipeline, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The params a run of `pipeline` would get: its defaults with `params` over
        them, path params confined and resolved, then the pipeline's own check.

        Raises ValidationError (PathNotAllowedError for a path outside the allowed
        directories) before anything is recorded.
        """
        if params is not None and not isinstance(params, Mapping):
            raise ValidationError(f"params must be a mapping of name to value, got {params!r}")
        unknown = sorted(set(params or {}) - set(pipeline.params))
        if unknown:
            raise ValidationError(
                f"pipeline {pipeline.name!r} has no params {unknown} "
                f"(it takes {sorted(pipeline.params)})"
            )
        merged = self._confined(pipeline, {**pipeline.params, **dict(params or {})})
        if pipeline.check is not None:
            merged = pipeline.check(merged)
        return merged

    def _confined(self, pipeline: Pipeline, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.paths is None:
            return dict(params)
        return self.paths.confine_params(pipeline.path_params, params)

    def _admit(
        self,
        pipeline: Pipeline,
        run_id: str,
        trigger: str,
        payload: Mapping[str, Any],
        params: dict[str, Any],
    ) -> str:
        """Record the trigger as running, queued or skipped, by the pipeline's limits.

        Counting and inserting happen in one write transaction, so two triggers
        at once cannot both take the last slot.
        """
        now = self._now()
        with self.db.write() as con:
            active = con.execute(
                "SELECT count(*) FROM pipeline_runs WHERE pipeline = ? AND state = 'running'",
                [pipeline.name],
            ).fetchone()[0]
            waiting = con.execute(
                "SELECT count(*) FROM pipeline_runs WHERE pipeline = ? AND state = 'queued'",
                [pipeline.name],
            ).fetchone()[0]
            if active < pipeline.max_active_runs and not waiting:
                state, error = "running", None
            elif pipeline.on_busy == "skip":
                state = "skipped"
                error = f"{active} run(s) active, max_active_runs={pipeline.max_active_runs}"
            else:
                state, error = "queued", None
            con.execute(
                "INSERT INTO pipeline_runs (run_id, pipeline, state, trigger, payload, params, "
                "queued_at, started_at, ended_at, error, host, pid, proc_start) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    pipeline.name,
                    state,
                    trigger,
                    _json(payload),
                    _json(params),
                    now,
                    now if state == "running" else None,
                    now if state == "skipped" else None,
                    error,
                    socket.gethostname(),
                    os.getpid(),
                    process_start(os.getpid()),
                ],
            )
        if state != "running":
            with self._bound(run_id, pipeline.name):
                log.info(
                    events.PIPELINE_RUN_QUEUED
                    if state == "queued"
                    else events.PIPELINE_RUN_SKIPPED,
                    trigger=trigger,
                )
        return state

    def _promote(self, pipeline: Pipeline, run_id: str) -> str:
        """Start a queued run when a slot is free and it is the oldest waiting."""
        with self.db.write() as con:
            active = con.execute(
                "SELECT count(*) FROM pipeline_runs WHERE pipeline = ? AND state = 'running'",
                [pipeline.name],
            ).fetchone()[0]
            first = con.execute(
                "SELECT run_id FROM pipeline_runs WHERE pipeline = ? AND state = 'queued' "
                "ORDER BY queued_at, rowid LIMIT 1",
                [pipeline.name],
            ).fetchone()
            if active >= pipeline.max_active_runs or first is None or first[0] != run_id:
                return "queued"
            con.execute(
                "UPDATE pipeline_runs SET state = 'running', started_at = ? WHERE run_id = ?",
                [self._now(), run_id],
            )
        return "running"

    def _execute(
        self,
        run_id: str,
        pipeline: Pipeline,
        params: dict[str, Any],
        outputs: dict[str, Any],
        trigger: str,
    ) -> None:
        """Run the tasks not in `outputs` (those already succeeded), then close the run."""
        with self._bound(run_id, pipeline.name):
            log.info(events.PIPELINE_RUN_STARTED, trigger=trigger)
            start = time.perf_counter()
            failed: set[str] = set()
            try:
                for name in pipeline.order:
                    if name in outputs:
                        continue
                    if not self._still_running(run_id):
                        break  # interrupted from outside (the server stopping)
                    t = pipeline.task(name)
                    blocked = [u for u in t.upstream if u in failed]
                    if blocked:
                        self._skip(run_id, t, f"upstream task(s) {blocked} did not succeed")
                        failed.add(name)
                        continue
                    ok, output = self._run_task(run_id, pipeline, t, params, outputs)
                    if ok:
                        outputs[name] = output
                    else:
                        failed.add(name)
            except BaseException as exc:
                # Never leave the run "running" (it would hold the pipeline's slot):
                # close it as failed, then let the interruption go on.
                self._close(run_id, "failed", f"interrupted: {type(exc).__name__}: {exc}")
                raise
            state = "failed" if failed else "success"
            error = f"task(s) failed or skipped: {sorted(failed)}" if failed else None
            self._close(run_id, state, error)
            log.info(
                events.PIPELINE_RUN_FINISHED,
                state=state,
                duration=round(time.perf_counter() - start, 6),
            )
        self.retention.after_run(pipeline.name)

    def _still_running(self, run_id: str) -> bool:
        rows = self.db.read("SELECT state FROM pipeline_runs WHERE run_id = ?", [run_id])
        return bool(rows) and rows[0]["state"] == "running"

    def _close(self, run_id: str, state: str, error: str | None) -> None:
        with self.db.write() as con:
            con.execute(
                # Only a running run: one interrupted meanwhile keeps saying so.
                "UPDATE pipeline_runs SET state = ?, ended_at = ?, error = ? "
                "WHERE run_id = ? AND state = 'running'",
                [state, self._now(), error, run_id],
            )

    def resume(self, pipeline: Pipeline, run_id: str) -> PipelineRun:
        """Run a failed run again from its failed tasks (`--from-failed`).

        Tasks that succeeded keep their outputs; failed and skipped ones run
        again as new attempts of the same run.
        """
        run = self.get_run(run_id)
        if run.pipeline != pipeline.name:
            raise ValidationError(f"run {run_id} belongs to pipeline {run.pipeline!r}")
        if run.state != "failed":
            raise RunStateConflict(f"run {run_id} is {run.state}; only a failed run resumes")
        outputs = self._succeeded(run_id)
        self._require_folder(run_id, outputs)
        with self.db.write() as con:
            con.execute(
                "UPDATE pipeline_runs SET state = 'running', ended_at = NULL, error = NULL "
                "WHERE run_id = ?",
                [run_id],
            )
        params = self._confined(pipeline, run.params)  # config may allow less than then
        self._execute(run_id, pipeline, params, outputs, "resume")
        return self.get_run(run_id)

    def run_step(self, pipeline: Pipeline, task_name: str, run_id: str) -> TaskRun:
        """Run one task alone in an existing run, from its upstream tasks' stored outputs.

        This is how a task can run in another process or machine (the scale-out
        path): everything it needs is in the home.
        """
        t = pipeline.task(task_name)
        run = self.get_run(run_id)
        if run.pipeline != pipeline.name:
            raise ValidationError(f"run {run_id} belongs to pipeline {run.pipeline!r}")
        if run.state in ("running", "queued"):
            raise RunStateConflict(
                f"run {run_id} is {run.state}; step a task only in a run that has ended"
            )
        params = self._confined(pipeline, run.params)
        outputs = self._succeeded(run_id)
        self._require_folder(run_id, {u: outputs[u] for u in t.upstream if u in outputs})
        missing = [u for u in t.upstream if u not in outputs]
        if missing:
            raise RunStateConflict(
                f"task {task_name!r} needs upstream task(s) {missing} to have succeeded in "
                f"run {run_id}"
            )
        # Their outputs were made from this task's old output: a new one would leave
        # them stale (a model registered that was never evaluated).
        stale = sorted(d for d in pipeline.downstream(task_name) if d in outputs)
        if stale:
            raise RunStateConflict(
                f"task {task_name!r} cannot run again in run {run_id}: its downstream task(s) "
                f"{stale} already used its output; start a new run instead"
            )
        with self._bound(run_id, pipeline.name):
            self._run_task(run_id, pipeline, t, params, outputs)
            # Stepping the last missing task completes a failed run.
            done = self._succeeded(run_id)
            if run.state == "failed" and all(name in done for name in pipeline.order):
                with self.db.write() as con:
                    con.execute(
                        "UPDATE pipeline_runs SET state = 'success', ended_at = ?, error = NULL "
                        "WHERE run_id = ?",
                        [self._now(), run_id],
                    )
                log.info(events.PIPELINE_RUN_FINISHED, state="success", duration=None)
        attempts = [r for r in self.task_runs(run_id) if r.task == task_name]
        return attempts[-1]

    def _require_folder(self, run_id: str, outputs: Mapping[str, Any]) -> None:
        """Refuse to go on from outputs whose files retention has removed."""
        if outputs and not (self.runs_dir / run_id).is_dir():
            raise RunStateConflict(
                f"run {run_id}'s working folder was removed (pipelines.keep_run_folders keeps "
                "only each pipeline's newest runs' files); start a new run instead"
            )

    def _succeeded(self, run_id: str) -> dict[str, Any]:
        rows = self.db.read(
            "SELECT task, output FROM task_runs WHERE run_id = ? AND state = 'success' "
            "ORDER BY attempt",
            [run_id],
        )
        return {r["task"]: json.loads(r["output"]) for r in rows}

    def mark_interrupted(self) -> list[str]:
        """Fail runs (and their running tasks) whose process died; return their ids.

        Queued runs of a dead process too: left queued, they would hold the
        pipeline's queue forever.
        """
        host = socket.gethostname()
        with self.db.write() as con:
            rows = con.execute(
                "SELECT run_id, pid, proc_start FROM pipeline_runs "
                "WHERE state IN ('running', 'queued') AND host = ?",
                [host],
            ).fetchall()
            dead = [r["run_id"] for r in rows if not process_alive(r["pid"], r["proc_start"])]
            now = self._now()
            for run_id in dead:
                con.execute(
                    "UPDATE task_runs SET state = 'failed', ended_at = ?, "
                    "error = 'interrupted: the process running it stopped' "
                    "WHERE run_id = ? AND state IN ('running', 'queued', 'up_for_retry')",
                    [now, run_id],
                )
                con.execute(
                    "UPDATE pipeline_runs SET state = 'failed', ended_at = ?, "
                    "error = 'interrupted: the process running it stopped' WHERE run_id = ?",
                    [now, run_id],
                )
        return dead

    def interrupt_running(self, reason: str) -> list[str]:
        """Fail this process's running and queued runs (it is stopping); return their ids.

        Their threads may still be inside a task; whatever they write after this
        does not reopen the run.
        """
        me, born = os.getpid(), process_start(os.getpid())
        now = self._now()
        with self.db.write() as con:
            rows = con.execute(
                "SELECT run_id FROM pipeline_runs WHERE state IN ('running', 'queued') "
                "AND host = ? AND pid = ? AND proc_start IS ?",
                [socket.gethostname(), me, born],
            ).fetchall()
            ids = [r["run_id"] for r in rows]
            for run_id in ids:
                con.execute(
                    "UPDATE task_runs SET state = 'failed', ended_at = ?, error = ? "
                    "WHERE run_id = ? AND state IN ('running', 'queued', 'up_for_retry')",
                    [now, reason, run_id],
                )
                con.execute(
                    "UPDATE pipeline_runs SET state = 'failed', ended_at = ?, error = ? "
                    "WHERE run_id = ?",
                    [now, reason, run_id],
                )
        return ids

    def _run_task(
        self,
        run_id: str,
        pipeline: Pipeline,
        t: Task,
        params: dict[str, Any],
        outputs: dict[str, Any],
    ) -> tuple[bool, Any]:
        work_dir = self.runs_dir / run_id / t.name
        attempts = t.retries + 1
        # A resumed or stepped task continues the run's numbering of its attempts.
        rows = self.db.read(
            "SELECT coalesce(max(attempt), 0) AS n FROM task_runs WHERE run_id = ? AND task = ?",
            [run_id, t.name],
        )
        base = int(rows[0]["n"])
        for n in range(1, attempts + 1):
            attempt = base + n
            if n > 1:
                delay = t.delay_before(n)
                log.info(events.TASK_RETRYING, task=t.name, attempt=attempt, delay=delay)
                self.sleep(delay)
            with structlog.contextvars.bound_contextvars(task=t.name):
                ok, output = self._attempt(
                    run_id,
                    pipeline,
                    t,
                    attempt,
                    params,
                    outputs,
                    work_dir,
                    last=n == attempts,
                )
            if ok:
                return True, output
        return False, None

    def _attempt(
        self,
        run_id: str,
        pipeline: Pipeline,
        t: Task,
        attempt: int,
        params: dict[str, Any],
        outputs: dict[str, Any],
        work_dir: Path,
        *,
        last: bool,
    ) -> tuple[bool, Any]:
        with self.db.write() as con:
            con.execute(
                "INSERT INTO task_runs (run_id, task, attempt, state, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                [run_id, t.name, attempt, self._now()],
            )
        log.info(events.TASK_STARTED, attempt=attempt)
        start = time.perf_counter()
        # Everything that can fail is inside: a full disk while writing the output
        # fails the attempt like any error, instead of leaving it "running".
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
            ctx = TaskContext(
                run_id=run_id,
                pipeline=pipeline.name,
                task=t.name,
                attempt=attempt,
                params=dict(params),
                upstream={u: outputs[u] for u in t.upstream},
                work_dir=work_dir,
                resources=self.resources,
                log=log.bind(attempt=attempt),
            )
            output = self.execute(t, ctx)
            text = _output_json(t, output)
            write_text_atomic(work_dir / "output.json", text)
        except BaseException as exc:  # SystemExit from a task fails the task, not the process
            duration = round(time.perf_counter() - start, 6)
            state = "failed" if last else "up_for_retry"
            error = f"{type(exc).__name__}: {exc}"
            tb = "".join(traceback.format_exception(exc))
            with self.db.write() as con:
                con.execute(
                    "UPDATE task_runs SET state = ?, ended_at = ?, error = ?, traceback = ? "
                    "WHERE run_id = ? AND task = ? AND attempt = ? AND state = 'running'",
                    [state, self._now(), error, tb, run_id, t.name, attempt],
                )
            log.warning(
                events.TASK_FAILED,
                attempt=attempt,
                duration=duration,
                error=error,
                will_retry=not last,
            )
            if isinstance(exc, KeyboardInterrupt | GeneratorExit):
                raise  # recorded; the run is closed by _execute
            return False, None
        duration = round(time.perf_counter() - start, 6)
        with self.db.write() as con:
            con.execute(
                "UPDATE task_runs SET state = 'success', ended_at = ?, output = ? "
                "WHERE run_id = ? AND task = ? AND attempt = ? AND state = 'running'",
                [self._now(), text, run_id, t.name, attempt],
            )
        log.info(events.TASK_SUCCEEDED, attempt=attempt, duration=duration)
        return True, output

    def _skip(self, run_id: str, t: Task, reason: str) -> None:
        now = self._now()
        with self.db.write() as con:
            # A skip is attempt 0 (no try was made); a resumed run that skips the
            # task again updates that row.
            con.execute(
                "INSERT INTO task_runs (run_id, task, attempt, state, started_at, ended_at, "
                "error) VALUES (?, ?, 0, 'skipped', ?, ?, ?) "
                "ON CONFLICT (run_id, task, attempt) DO UPDATE SET "
                "started_at = excluded.started_at, ended_at = excluded.ended_at, "
                "error = excluded.error",
                [run_id, t.name, now, now, reason],
            )
        with structlog.contextvars.bound_contextvars(task=t.name):
            log.info(events.TASK_SKIPPED, reason=reason)

    # -- history ------------------------------------------------------------------------

    def get_run(self, run_id: str) -> PipelineRun:
        rows = self.db.read("SELECT * FROM pipeline_runs WHERE run_id = ?", [run_id])
        if not rows:
            raise PipelineRunNotFoundError(f"no pipeline run with id {run_id!r}")
        r = rows[0]
        queued = from_ms(r["queued_at"])
        assert queued is not None
        return PipelineRun(
            run_id=r["run_id"],
            pipeline=r["pipeline"],
            state=r["state"],
            trigger=r["trigger"],
            payload=json.loads(r["payload"]),
            params=json.loads(r["params"]),
            queued_at=queued,
            started_at=from_ms(r["started_at"]),
            ended_at=from_ms(r["ended_at"]),
            error=r["error"],
        )

    def list_runs(
        self, pipeline: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        """Newest first, optionally of one pipeline and in one state."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be an integer >= 1, got {limit!r}")
        if state is not None and state not in RUN_STATES:
            raise ValidationError(f"state must be one of {RUN_STATES}, got {state!r}")
        where, args = [], []
        if pipeline is not None:
            where.append("pipeline = ?")
            args.append(pipeline)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        sql = "SELECT run_id FROM pipeline_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.read(sql + " ORDER BY queued_at DESC, rowid DESC LIMIT ?", [*args, limit])
        return [self.get_run(r["run_id"]) for r in rows]

    def task_runs(self, run_id: str) -> list[TaskRun]:
        """Every attempt of every task of the run, in the order they started."""
        self.get_run(run_id)
        rows = self.db.read(
            "SELECT * FROM task_runs WHERE run_id = ? ORDER BY started_at, rowid", [run_id]
        )
        return [
            TaskRun(
                task=r["task"],
                attempt=r["attempt"],
                state=r["state"],
                started_at=from_ms(r["started_at"]),
                ended_at=from_ms(r["ended_at"]),
                error=r["error"],
                traceback=r["traceback"],
                output=json.loads(r["output"]) if r["output"] is not None else None,
            )
            for r in rows
        ]


def _call(t: Task, ctx: TaskContext) -> Any:
    """Call the task, in a worker thread when it has a timeout.

    Python cannot stop a thread: a task past its timeout is recorded as failed
    and its thread is left to finish in the background (daemon, so it never
    holds the process open). A runner whose tasks must really be stopped runs
    them in worker processes (`execute=`, as `litemlops run` does).
    """
    if t.timeout is None:
        return t.fn(ctx)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = t.fn(ctx)
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    # In the caller's context, so the task's events keep their run, task and home.
    context = contextvars.copy_context()
    worker = threading.Thread(
        target=context.run, args=(target,), name=f"task-{t.name}", daemon=True
    )
    worker.start()
    worker.join(t.timeout)
    if worker.is_alive():
        raise TaskTimeoutError(f"task {t.name!r} ran longer than its timeout of {t.timeout} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _output_json(t: Task, output: Any) -> str:
    try:
        return json.dumps(output, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"task {t.name!r} returned {type(output).__name__}, which is not JSON ({exc}); "
            "return small JSON values and write data into ctx.work_dir"
        ) from None


def _json(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, sort_keys=True, default=str)
    except ValueError as exc:
        raise ValidationError(f"params and payload must be JSON: {exc}") from None

