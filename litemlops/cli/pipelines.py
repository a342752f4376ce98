"""`litemlops pipelines ...`: run pipelines here and now, and read their history and events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, open_platform
from litemlops.cli.remote import owner, path_part
from litemlops.cli.tracking import _cell, _table

if TYPE_CHECKING:
    from litemlops.scheduler.pipeline import Pipeline
    from litemlops.scheduler.runner import PipelineRun, PipelineRunner, TaskRun

_RUN_COLUMNS = ["run_id", "pipeline", "state", "trigger", "queued", "started", "ended"]
# Keys a readable event line shows in its fixed places (or leaves out as the same
# for every line of one run); all others follow as key=value.
_EVENT_HEAD = ("timestamp", "level", "event", "task", "attempt", "run_id", "pipeline", "logger")


@click.group()
def pipelines() -> None:
    """Pipelines: list, run, resume, inspect runs and their events."""


@pipelines.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def pipelines_list(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """The pipelines this home knows: tasks, params with defaults, triggers."""
    with open_platform(ctx, home) as platform:
        described = [p.describe() for p in platform.catalog]
    if as_json:
        echo_json(described)
        return
    if not described:
        click.echo("no pipelines")
    for d in described:
        click.echo(f"{d['name']}" + (f" - {d['description']}" if d["description"] else ""))
        if d["schedule"] is not None:
            every = d["schedule"]
            click.echo(
                f"  schedule: cron '{every}' (UTC)"
                if isinstance(every, str)
                else f"  schedule: every {every:g} s"
            )
        if d["on"]:
            click.echo(f"  on: {', '.join(d['on'])}")
        click.echo("  tasks:")
        for t in d["tasks"]:
            policy = [f"retries {t['retries']}"] if t["retries"] else []
            policy += [f"timeout {t['timeout']:g} s"] if t["timeout"] is not None else []
            click.echo(
                f"    {t['name']}"
                + (f" <- {', '.join(t['upstream'])}" if t["upstream"] else "")
                + (f"  ({', '.join(policy)})" if policy else "")
            )
        if d["params"]:
            click.echo("  params:")
            for key, value in d["params"].items():
                click.echo(f"    {key} = {_param_text(value)}")


def _param_text(value: Any) -> str:
    """A value as it would be typed after `--param key=` to get it back.

    Text that would be read as JSON (like "{}" or "3") keeps its quotes.
    """
    if isinstance(value, str) and _json_or_text(value) == value:
        return value
    return json.dumps(value, default=str)


@pipelines.command("run")
@home_option
@click.argument("name")
@click.option(
    "--param",
    "param_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a param (repeatable). VALUE is JSON when it parses (3, true, [1,2], "
    '{"C":1}, "\\"007\\""), else text.',
)
@click.option("--from-failed", is_flag=True, help="Resume a failed run from its failed tasks.")
@click.option("--run-id", default=None, help="The run to resume (default: newest failed one).")
@click.option("--json", "as_json", is_flag=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
@cli_errors
def pipelines_run(
    ctx: click.Context,
    home: Path | None,
    name: str,
    param_args: tuple[str, ...],
    from_failed: bool,
    run_id: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Run pipeline NAME now; exit status 1 unless it succeeded.

    While `litemlops run` serves the home, the server runs it (with its workers) and
    this command follows it; otherwise it runs in this process.
    """
    if run_id is not None and not from_failed:
        raise click.ClickException("--run-id names the run to resume: add --from-failed")
    if from_failed and param_args:
        raise click.ClickException(
            "a resumed run keeps the params it started with; drop --param or start a new run"
        )
    config = load_config(ctx, home)
    served = owner(config)
    if served is not None:
        from litemlops.platform import pipeline_catalog

        pipeline = pipeline_catalog(config).get(name)
        params = _parse_params(param_args, pipeline)
        with served, _task_bar(pipeline, quiet) as bar:
            if from_failed:  # the server runs it again from its failed tasks
                chosen = run_id or _newest_failed([r["run_id"] for r in served.call(
                    "GET", "/api/pipelines/runs", pipeline=name, state="failed", limit=1
                )], name)  # fmt: skip
                started = served.call("POST", f"/api/pipelines/runs/{path_part(chosen)}/resume")
            else:
                started = served.call(
                    "POST", f"/api/pipelines/{path_part(name)}/trigger", {"params": params}
                )
            run = served.follow_run(started, progress=lambda r: bar.show(r["tasks"]))
        attempts = run.pop("tasks")
    else:
        with open_platform(ctx, home) as platform:
            pipeline = platform.catalog.get(name)
            runner = platform.pipelines
            with _task_bar(pipeline, quiet) as bar, bar.counting(runner):
                if from_failed:
                    failed = runner.list_runs(pipeline=name, state="failed", limit=1)
                    chosen = run_id or _newest_failed([r.run_id for r in failed], name)
                    done = runner.resume(pipeline, chosen)
                else:
                    params = _parse_params(param_args, pipeline)
                    done = runner.run(pipeline, params, trigger="manual")
            run = {**asdict(done), "duration": _duration(done)}
            attempts = [
                {**asdict(a), "duration": _duration(a)} for a in runner.task_runs(done.run_id)
            ]
    summary = _task_summary(pipeline, attempts)
    if as_json:
        echo_json({**run, "tasks": summary})
    else:
        click.echo(
            f"run {run['run_id']} of {run['pipeline']}: {run['state']} "
            f"({_seconds(run['duration'])})"
        )
        _table(
            [{**s, "duration": _seconds(s["duration"])} for s in summary],
            ["task", "state", "attempts", "duration", "error"],
        )
    if run["state"] != "success":
        _report_failure(ctx, home, run, summary)


class _TaskBar:
    """Tasks done out of the pipeline's tasks, on stderr (a terminal only)."""

    def __init__(self, bar: Any, order: list[str]):
        self.bar = bar
        self.order = order

    def show(self, attempts: list[dict[str, Any]]) -> None:
        last = {a["task"]: a["state"] for a in attempts}
        done = sum(1 for state in last.values() if state in ("success", "failed", "skipped"))
        running = [t for t, state in last.items() if state == "running"]
        if running:
            self.bar.set_description(running[-1])
        self.bar.update(done - self.bar.n)

    @contextmanager
    def counting(self, runner: PipelineRunner) -> Iterator[None]:
        """Advance as the runner ends each task attempt (in this process)."""
        inner = runner.execute

        def execute(task: Any, ctx: Any) -> Any:
            self.bar.set_description(task.name)
            try:
                return inner(task, ctx)
            finally:
                self.bar.update()

        runner.execute = execute
        try:
            yield
        finally:
            runner.execute = inner


@contextmanager
def _task_bar(pipeline: Pipeline, quiet: bool) -> Iterator[_TaskBar]:
    import sys

    from tqdm import tqdm

    # disable=None: a bar only on a terminal, never in logs or pipes.
    with tqdm(
        total=len(pipeline.order),
        desc=pipeline.name,
        unit="task",
        file=sys.stderr,
        leave=False,
        disable=True if quiet else None,
    ) as bar:
        yield _TaskBar(bar, list(pipeline.order))


def _newest_failed(failed: list[str], name: str) -> str:
    """The first of `failed` (run ids, newest first): the run to resume."""
    if not failed:
        raise click.ClickException(
            f"pipeline {name!r} has no failed run to resume "
            f"(see `litemlops pipelines runs --pipeline {name}`)"
        )
    return failed[0]


def _parse_params(args: tuple[str, ...], pipeline: Pipeline) -> dict[str, Any]:
    """`key=value` pairs; values are JSON when they parse (so `3` is a number), else text.

    Unknown keys are left for the runner to refuse, with the same message as
    any other caller of the library gets.
    """
    params: dict[str, Any] = {}
    for arg in args:
        key, sep, text = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            takes = ", ".join(f"{k}={_param_text(v)}" for k, v in pipeline.params.items())
            raise click.ClickException(
                f"--param {arg!r}: expected KEY=VALUE; pipeline {pipeline.name!r} takes: "
                f"{takes or 'no params'}"
            )
        params[key] = _json_or_text(text)
    return params


def _json_or_text(text: str) -> Any:
    def refuse(constant: str) -> Any:
        # NaN and Infinity are Python's extension of JSON; runs refuse them as params.
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        return text


def _task_summary(pipeline: Pipeline, attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per task in run order: its last attempt, and how many it took."""
    last: dict[str, dict[str, Any]] = {}
    tries: dict[str, int] = {}
    for a in attempts:
        last[a["task"]] = a
        # A skipped task is recorded as attempt 0: it never ran.
        tries[a["task"]] = tries.get(a["task"], 0) + (a["attempt"] > 0)
    names = [n for n in pipeline.order if n in last]
    names += [n for n in last if n not in names]  # tasks the definition no longer has
    return [
        {
            "task": n,
            "state": last[n]["state"],
            "attempts": tries[n],
            "duration": last[n]["duration"],
            "error": last[n]["error"],
            "output": last[n]["output"],
        }
        for n in names
    ]


def _report_failure(
    ctx: click.Context, home: Path | None, run: dict[str, Any], summary: list[dict[str, Any]]
) -> None:
    failed = next((s for s in summary if s["state"] == "failed"), None)
    why = f"task {failed['task']!r} failed: {failed['error']}" if failed else run["error"]
    click.echo(f"pipeline {run['pipeline']!r} run {run['run_id']} {run['state']}: {why}", err=True)
    if run["state"] == "failed":
        from litemlops.cli.common import home_flags

        where = home_flags(ctx, home)
        click.echo(
            f"resume it with: litemlops pipelines run {run['pipeline']} --from-failed "
            f"--run-id {run['run_id']}{where}",
            err=True,
        )
    ctx.exit(1)


@pipelines.command("runs")
@home_option
@click.option("--pipeline", default=None, help="Only runs of this pipeline.")
@click.option(
    "--state", default=None, help="Only runs in this state: queued, running, success, failed..."
)
@click.option("--limit", default=50, show_default=True, help="At most this many runs.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def pipelines_runs(
    ctx: click.Context,
    home: Path | None,
    pipeline: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Pipeline runs, newest first."""
    with open_platform(ctx, home) as platform:
        found = platform.pipelines.list_runs(pipeline=pipeline, state=state, limit=limit)
    rows = [{**asdict(r), "duration": _duration(r)} for r in found]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no pipeline runs match")
    _table(
        [
            {
                **r,
                "queued": r["queued_at"],
                "started": r["started_at"],
                "ended": r["ended_at"],
                "duration": _seconds(r["duration"]),
            }
            for r in rows
        ],
        [*_RUN_COLUMNS, "duration", "error"],
    )


@pipelines.command("show")
@home_option
@click.argument("run_id")
@click.option(
    "--traceback", "tracebacks", is_flag=True, help="Also the failed attempts' tracebacks."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def pipelines_show(
    ctx: click.Context, home: Path | None, run_id: str, tracebacks: bool, as_json: bool
) -> None:
    """A pipeline run with every task attempt and the outputs of those that succeeded."""
    with open_platform(ctx, home) as platform:
        run = platform.pipelines.get_run(run_id)
        attempts = platform.pipelines.task_runs(run_id)
    tasks = [_attempt_dict(a, tracebacks) for a in attempts]
    if as_json:
        echo_json({**asdict(run), "duration": _duration(run), "tasks": tasks})
        return
    for key in ("run_id", "pipeline", "state", "trigger", "queued_at", "started_at", "ended_at"):
        click.echo(f"{key}: {_cell(getattr(run, key))}")
    click.echo(f"duration: {_seconds(_duration(run))}")
    if run.error:
        click.echo(f"error: {run.error}")
    for section in ("params", "payload"):
        values = getattr(run, section)
        if values:
            click.echo(f"{section}:")
            for k, v in values.items():
                click.echo(f"  {k} = {_param_text(v)}")
    if not tasks:
        click.echo("no task has run yet")
        return
    click.echo("tasks:")
    _table(
        [
            {
                **t,
                "started": t["started_at"],
                "ended": t["ended_at"],
                "duration": _seconds(t["duration"]),
            }
            for t in tasks
        ],
        ["task", "attempt", "state", "started", "ended", "duration", "error"],
    )
    outputs = [t for t in tasks if t["state"] == "success"]
    if outputs:
        click.echo("outputs:")
        for t in outputs:
            click.echo(f"  {t['task']} (attempt {t['attempt']}): {json.dumps(t['output'])}")
    for t in tasks:
        if t.get("traceback"):
            click.echo(f"traceback of {t['task']} (attempt {t['attempt']}):")
            click.echo(t["traceback"].rstrip())


def _attempt_dict(a: TaskRun, with_traceback: bool) -> dict[str, Any]:
    shown = {**asdict(a), "duration": _duration(a)}
    if not with_traceback:
        del shown["traceback"]
    return shown


@pipelines.command("logs")
@home_option
@click.argument("run_id")
@click.option("--task", "task_name", default=None, help="Only this task's events.")
@click.option("--json", "as_json", is_flag=True, help="The raw JSON lines of the event log.")
@click.pass_context
@cli_errors
def pipelines_logs(
    ctx: click.Context, home: Path | None, run_id: str, task_name: str | None, as_json: bool
) -> None:
    """The events of a pipeline run, oldest first, from the event log and its history."""
    with open_platform(ctx, home) as platform:
        run = platform.pipelines.get_run(run_id)
        if task_name is not None and run.pipeline in platform.catalog:
            platform.catalog.get(run.pipeline).task(task_name)
        log_path = platform.config.events_log_path
    shown = 0
    unreadable = 0
    from litemlops.monitoring.event_log import run_events

    for line, event in run_events(log_path.parent, run_id):
        if event is None:
            unreadable += 1
            continue
        if task_name is not None and event.get("task") != task_name:
            continue
        click.echo(line.rstrip("\n") if as_json else _event_text(event))
        shown += 1
    if unreadable:
        click.echo(f"skipped {unreadable} unreadable line(s) mentioning the run", err=True)
    if not shown:
        which = f" of task {task_name!r}" if task_name is not None else ""
        click.echo(f"no events{which} for run {run_id} yet in {log_path}", err=as_json)


def _event_text(event: dict[str, Any]) -> str:
    parts = [str(event.get("timestamp", "-")), f"{event.get('level', '-')!s:<7}"]
    parts.append(f"{event.get('event', '-')!s:<21}")  # as wide as the pipeline events
    for key in ("task", "attempt"):
        if event.get(key) is not None:
            parts.append(f"{key}={event[key]}")
    parts += [f"{k}={_value_text(v)}" for k, v in event.items() if k not in _EVENT_HEAD]
    return " ".join(parts)


def _value_text(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return json.dumps(value, default=str)


def _duration(item: PipelineRun | TaskRun) -> float | None:
    if item.started_at is None or item.ended_at is None:
        return None
    return (item.ended_at - item.started_at).total_seconds()


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"
