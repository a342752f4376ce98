"""Running a pipeline in a test and seeing what it did: states, outputs, events, folders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.errors import NotFoundError

if TYPE_CHECKING:
    from litemlops.scheduler.pipeline import Pipeline
    from litemlops.scheduler.runner import PipelineRun, PipelineRunner, TaskRun


@contextmanager
def capture_events() -> Iterator[list[dict[str, Any]]]:
    """Collect every structlog event emitted inside the block, with its bound context.

    `structlog.testing.capture_logs` drops contextvars (run_id, pipeline, task), which
    are what a pipeline test wants to check; so the contextvars are merged first. The
    events still go on through the configured chain, so a test that set up the event
    log (`configure_logging`) sees them written there too. The previous structlog
    configuration is restored afterwards. Loggers cached by
    `cache_logger_on_first_use=True` before the block are not seen.
    """
    import structlog

    captured: list[dict[str, Any]] = []
    was_configured = structlog.is_configured()
    previous = structlog.get_config()

    def collect(logger: Any, method_name: str, event_dict: Any) -> Any:
        # A copy: later processors of the chain add keys or render the dict in place.
        entry = dict(event_dict)
        structlog.processors.add_log_level(logger, method_name, entry)
        captured.append(entry)
        return event_dict

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, collect, *previous["processors"]]
    )
    try:
        yield captured
    finally:
        if was_configured:
            structlog.configure(**previous)
        else:
            structlog.reset_defaults()


@dataclass(frozen=True)
class PipelineResult:
    """A finished pipeline run as a test sees it.

    run: the recorded run; task_runs: every attempt, in order; events: the structlog
    events emitted during the run, each with its `event` name, `level` and the
    bound `run_id`, `pipeline` and `task`; tasks: the pipeline's task names in order.
    """

    run: PipelineRun
    task_runs: list[TaskRun]
    events: list[dict[str, Any]]
    tasks: tuple[str, ...]
    runs_dir: Path = field(repr=False)

    @property
    def state(self) -> str:
        return self.run.state

    @property
    def outputs(self) -> dict[str, Any]:
        """Task name -> what its successful attempt returned (failed and skipped tasks absent)."""
        return {t.task: t.output for t in self.task_runs if t.state == "success"}

    def task(self, name: str) -> TaskRun:
        """The last attempt of task `name`."""
        self._check(name)
        attempts = [t for t in self.task_runs if t.task == name]
        if not attempts:
            raise NotFoundError(
                f"task {name!r} did not run in run {self.run.run_id} (the run is {self.state})"
            )
        return attempts[-1]

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def work_dir(self, task: str) -> Path:
        """The task's folder in the run: its output.json and whatever it wrote there."""
        self._check(task)
        return self.runs_dir / self.run.run_id / task

    def _check(self, name: str) -> None:
        if name not in self.tasks:
            raise NotFoundError(
                f"pipeline {self.run.pipeline!r} has no task {name!r} (tasks: {list(self.tasks)})"
            )


def run_pipeline(
    runner: PipelineRunner,
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    trigger: str = "manual",
    payload: Mapping[str, Any] | None = None,
) -> PipelineResult:
    """Run `pipeline` now on `runner`, capturing its events; what `litemlops_run` calls."""
    with capture_events() as captured:
        run = runner.run(pipeline, params, trigger=trigger, payload=payload)
    return PipelineResult(
        run=run,
        task_runs=runner.task_runs(run.run_id),
        events=captured,
        tasks=pipeline.order,
        runs_dir=runner.runs_dir,
    )
