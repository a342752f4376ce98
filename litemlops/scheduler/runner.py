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
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from litemlops import events
from litemlops.clock import to_ms, utc_now
from litemlops.errors import LitemlopsError, ValidationError
from litemlops.logger import get_logger, logging_to
from litemlops.scheduler.history import (
    RUN_STATES,
    PipelineHistory,
    PipelineRun,
    PipelineRunNotFoundError,
    TaskRun,
)
from litemlops.scheduler.paths import PathRoots
from litemlops.scheduler.pipeline import Pipeline, Task, TaskContext
from litemlops.scheduler.retention import Retention
from litemlops.store.files import write_text_atomic
from litemlops.store.sqlite import SQLiteDB

log = get_logger("litemlops.pipelines")

__all__ = [  # the history's values are re-exported: callers know runs through the runner
    "RUN_STATES", "PipelineRun", "PipelineRunNotFoundError", "PipelineRunner",
    "RunStateConflict", "TaskRun", "TaskTimeoutError",
]


class RunStateConflict(LitemlopsError, RuntimeError):
    """The run is not in a state that allows this (resume a success, step without inputs)."""


class TaskTimeoutError(TimeoutError):
    """A task attempt ran longer than its timeout."""


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
        db: SQLiteDB,
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
        #: The pipeline history (its tables' one owner).
        self.history = PipelineHistory(db)
        #: The home's event file: a run's events belong to it (`logger.logging_to`).
        self.event_log = event_log
        self.paths = paths
        self.execute = execute if execute is not None else _call
        self.runs_dir = Path(runs_dir)
        self.resources = dict(resources or {})
        self.clock = clock
        self.sleep = sleep
        self.retention = Retention(
            self.history,
            self.runs_dir,
            keep_folders=keep_folders,
            keep_history=keep_history,
            clock=clock,
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
        """Record the trigger as running, queued or skipped, by the pipeline's limits."""
        state = self.history.admit(
            run_id,
            pipeline.name,
            trigger=trigger,
            payload=_json(payload),
            params=_json(params),
            clock=self._now,
            max_active_runs=pipeline.max_active_runs,
            on_busy=pipeline.on_busy,
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
        started = self.history.promote(
            run_id, pipeline.name, max_active_runs=pipeline.max_active_runs, clock=self._now
        )
        return "running" if started else "queued"

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
        return self.history.state(run_id) == "running"

    def _close(self, run_id: str, state: str, error: str | None) -> None:
        # Only a running run: one interrupted meanwhile keeps saying so.
        self.history.close(run_id, state, error, now=self._now())

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
        outputs = self.history.succeeded(run_id)
        self._require_folder(run_id, outputs)
        self.history.reopen(run_id)
        params = self._confined(pipeline, run.params)  # config may allow less than then
        self._execute(run_id, pipeline, params, outputs, "resume")
        return self.get_run(run_id)

    def run_step(
        self, pipeline: Pipeline, task_name: str, run_id: str, *, retry: bool = True
    ) -> TaskRun:
        """Run one task alone in a run, from its upstream tasks' stored outputs.

        This is how a task can run in another process or machine (the scale-out
        path): everything it needs is in the home. See `stepping.run_step`.
        """
        from litemlops.scheduler.stepping import run_step

        return run_step(self, pipeline, task_name, run_id, retry=retry)

    def keyed_run(
        self,
        pipeline: Pipeline,
        key: str,
        params: Mapping[str, Any] | None = None,
        *,
        trigger: str = "external",
    ) -> PipelineRun:
        """The run an outside orchestrator names `key` (Airflow's run id): made,
        running, by the first caller, found by the others. See `stepping.keyed_run`."""
        from litemlops.scheduler.stepping import keyed_run

        return keyed_run(self, pipeline, key, params, trigger=trigger)

    def _require_folder(self, run_id: str, outputs: Mapping[str, Any]) -> None:
        """Refuse to go on from outputs whose files retention has removed."""
        if outputs and not (self.runs_dir / run_id).is_dir():
            raise RunStateConflict(
                f"run {run_id}'s working folder was removed (pipelines.keep_run_folders keeps "
                "only each pipeline's newest runs' files); start a new run instead"
            )

    def mark_interrupted(self) -> list[str]:
        """Fail runs (and their running tasks) whose process died; return their ids.

        Queued runs of a dead process too: left queued, they would hold the
        pipeline's queue forever.
        """
        return self.history.fail_dead(now=self._now())

    def interrupt_running(self, reason: str) -> list[str]:
        """Fail this process's running and queued runs (it is stopping); return their ids.

        Their threads may still be inside a task; whatever they write after this
        does not reopen the run.
        """
        return self.history.fail_mine(reason, now=self._now())

    def _run_task(
        self,
        run_id: str,
        pipeline: Pipeline,
        t: Task,
        params: dict[str, Any],
        outputs: dict[str, Any],
        *,
        retry: bool = True,
    ) -> tuple[bool, Any]:
        work_dir = self.runs_dir / run_id / t.name
        attempts = t.retries + 1 if retry else 1
        # A resumed or stepped task continues the run's numbering of its attempts.
        base = self.history.last_attempt(run_id, t.name)
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
        self.history.start_attempt(run_id, t.name, attempt, now=self._now())
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
            self.history.fail_attempt(
                run_id, t.name, attempt, state=state, error=error, traceback=tb, now=self._now()
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
        self.history.succeed_attempt(run_id, t.name, attempt, output=text, now=self._now())
        log.info(events.TASK_SUCCEEDED, attempt=attempt, duration=duration)
        return True, output

    def _skip(self, run_id: str, t: Task, reason: str) -> None:
        self.history.skip_task(run_id, t.name, reason, now=self._now())
        with structlog.contextvars.bound_contextvars(task=t.name):
            log.info(events.TASK_SKIPPED, reason=reason)

    # -- history ------------------------------------------------------------------------

    def get_run(self, run_id: str) -> PipelineRun:
        return self.history.get_run(run_id)

    def list_runs(
        self, pipeline: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        """Newest first, optionally of one pipeline and in one state."""
        return self.history.list_runs(pipeline, state, limit)

    def task_runs(self, run_id: str) -> list[TaskRun]:
        """Every attempt of every task of the run, in the order they started."""
        return self.history.task_runs(run_id)


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

