"""Running one task of a run at a time, from another process or an outside orchestrator.

`run_step` runs one task of a run from its upstream tasks' stored outputs: the
home holds everything a task needs, so any process (or machine sharing the home)
can run it. `keyed_run` lets an orchestrator that starts runs on its own
(Airflow) drive a run without litemlops having started it: every task process
names the run by the orchestrator's key, the first one records it and the
others find it, and after each step the run's state follows its tasks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.errors import ValidationError
from litemlops.logger import get_logger

if TYPE_CHECKING:
    from litemlops.scheduler.history import PipelineRun, TaskRun
    from litemlops.scheduler.pipeline import Pipeline
    from litemlops.scheduler.runner import PipelineRunner

log = get_logger("litemlops.pipelines")

#: The payload key a keyed run keeps its key under: it marks a run driven from outside.
RUN_KEY = "run_key"
_MAX_KEY = 250


def keyed_run_id(pipeline: str, key: str) -> str:
    """The run id `key` names in `pipeline`: the same in every process, so the first
    task to arrive and all the others agree on one run without asking each other."""
    return hashlib.sha256(f"{pipeline}\n{key}".encode()).hexdigest()[:32]


def keyed_run(
    runner: PipelineRunner,
    pipeline: Pipeline,
    key: str,
    params: Mapping[str, Any] | None = None,
    *,
    trigger: str = "external",
) -> PipelineRun:
    """The run of `pipeline` that the outside orchestrator calls `key`: recorded as
    running by the first call, found by every later one (whose params are ignored).

    Creating it is one insert under SQLite's write lock on a primary key made from
    the key, so callers racing each other still get one run.
    """
    if not isinstance(key, str) or not key.strip() or len(key) > _MAX_KEY:
        raise ValidationError(f"run key must be non-empty text of at most {_MAX_KEY} characters")
    if not isinstance(trigger, str) or not trigger.strip():
        raise ValidationError("trigger must be a non-empty name, like 'airflow'")
    run_id = keyed_run_id(pipeline.name, key)
    if runner.history.state(run_id) is None:
        merged = runner.run_params(pipeline, params)
        made = runner.history.admit_keyed(
            run_id,
            pipeline.name,
            trigger=trigger,
            payload=json.dumps({RUN_KEY: key}),
            params=json.dumps(merged, allow_nan=False, sort_keys=True, default=str),
            now=runner._now(),
        )
        if made:
            with runner._bound(run_id, pipeline.name):
                log.info(events.PIPELINE_RUN_STARTED, trigger=trigger)
    run = runner.get_run(run_id)
    if run.pipeline != pipeline.name or run.payload.get(RUN_KEY) != key:
        # Only a forged run id could get here: never step someone else's run.
        raise ValidationError(f"run {run_id} is not the run of key {key!r}")
    return run


def run_step(
    runner: PipelineRunner,
    pipeline: Pipeline,
    task_name: str,
    run_id: str,
    *,
    retry: bool = True,
) -> TaskRun:
    """Run one task alone in a run, from its upstream tasks' stored outputs.

    A run litemlops runs itself must have ended (a failed run's missing tasks can be
    stepped one by one; the last one makes it a success). A keyed run (driven from
    outside) may be running; after the step it is a success when every task has
    succeeded, failed while a task's last attempt failed, else still running.
    retry: make the task's own retries here; False makes one attempt, for a caller
    that retries itself (Airflow's `retries`).
    """
    from litemlops.scheduler.runner import RunStateConflict

    t = pipeline.task(task_name)
    run = runner.get_run(run_id)
    if run.pipeline != pipeline.name:
        raise ValidationError(f"run {run_id} belongs to pipeline {run.pipeline!r}")
    keyed = RUN_KEY in run.payload
    if run.state == "queued" or (run.state == "running" and not keyed):
        raise RunStateConflict(
            f"run {run_id} is {run.state}; step a task only in a run that has ended"
        )
    params = runner._confined(pipeline, run.params)
    outputs = runner.history.succeeded(run_id)
    runner._require_folder(run_id, {u: outputs[u] for u in t.upstream if u in outputs})
    missing = [u for u in t.upstream if u not in outputs]
    if missing:
        raise RunStateConflict(
            f"task {task_name!r} needs upstream task(s) {missing} to have succeeded in run {run_id}"
        )
    # Their outputs were made from this task's old output: a new one would leave
    # them stale (a model registered that was never evaluated).
    stale = sorted(d for d in pipeline.downstream(task_name) if d in outputs)
    if stale:
        raise RunStateConflict(
            f"task {task_name!r} cannot run again in run {run_id}: its downstream task(s) "
            f"{stale} already used its output; start a new run instead"
        )
    with runner._bound(run_id, pipeline.name):
        if keyed:  # a failed run whose failed task tries again is running again
            _end_abandoned(runner, run_id, t.name)
            runner.history.settle(run_id, pipeline.order, now=runner._now(), starting=t.name)
        runner._run_task(run_id, pipeline, t, params, outputs, retry=retry)
        if keyed:
            state = runner.history.settle(run_id, pipeline.order, now=runner._now())
            ended = state != "running"
        else:  # stepping the last missing task completes a failed run
            done = runner.history.succeeded(run_id)
            ended = run.state == "failed" and all(name in done for name in pipeline.order)
            if ended:
                runner.history.complete(run_id, now=runner._now())
            state = "success"
        if ended:
            log.info(
                events.PIPELINE_RUN_FINISHED,
                state=state,
                duration=_since(runner, run) if keyed else None,
            )
    if keyed and ended:
        runner.retention.after_run(pipeline.name)
    attempts = [r for r in runner.task_runs(run_id) if r.task == task_name]
    return attempts[-1]


def _since(runner: PipelineRunner, run: PipelineRun) -> float | None:
    """Seconds from the run's start to now: a keyed run's duration when it ends."""
    if run.started_at is None:
        return None
    return round((runner.clock() - run.started_at).total_seconds(), 6)


def _end_abandoned(runner: PipelineRunner, run_id: str, task: str) -> None:
    """Fail the task's attempts still marked running: the orchestrator tries again only
    after it gave up on them (killed at its timeout, say), so nothing will end them."""
    for attempt in runner.task_runs(run_id):
        if attempt.task == task and attempt.state == "running":
            runner.history.fail_attempt(
                run_id,
                task,
                attempt.attempt,
                state="failed",
                error="abandoned: the orchestrator started another attempt",
                traceback="",
                now=runner._now(),
            )
