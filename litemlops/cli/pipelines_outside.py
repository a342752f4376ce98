"""`litemlops pipelines run-step` and `export`: pipeline tasks run by another process
or another scheduler (Airflow), one task at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, open_platform
from litemlops.cli.pipelines import _attempt_dict, _duration, _seconds, pipelines


@pipelines.command("run-step")
@home_option
@click.argument("pipeline_name", metavar="PIPELINE")
@click.argument("task_name", metavar="TASK")
@click.option("--run-id", default=None, help="The run whose upstream outputs the task reads.")
@click.option(
    "--run-key",
    default=None,
    help="Instead of --run-id: the key an outside scheduler names its run by (Airflow's "
    "run id). The first step of a key makes the run, the others find it.",
)
@click.option(
    "--trigger",
    default="external",
    show_default=True,
    help="With --run-key: the trigger recorded for the run it makes.",
)
@click.option(
    "--params",
    "params_json",
    default=None,
    metavar="JSON",
    help="With --run-key: the params of the run it makes, as a JSON object (the "
    "pipeline's defaults fill in the rest).",
)
@click.option(
    "--no-retry", is_flag=True, help="One attempt, for a caller that retries (Airflow does)."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def pipelines_run_step(
    ctx: click.Context,
    home: Path | None,
    pipeline_name: str,
    task_name: str,
    run_id: str | None,
    run_key: str | None,
    trigger: str,
    params_json: str | None,
    no_retry: bool,
    as_json: bool,
) -> None:
    """Run one TASK of a run from its upstream outputs (a new attempt).

    The run is an existing one (--run-id), or the one an outside scheduler keys
    (--run-key), which ends a success once all its tasks succeeded and is failed
    while one's last attempt failed (`pipelines run --from-failed` resumes it).
    """
    if (run_id is None) == (run_key is None):
        raise click.ClickException("give the run: --run-id RUN_ID or --run-key KEY (one of them)")
    if run_key is None and params_json is not None:
        raise click.ClickException(
            "--params sets the params of a run --run-key makes; a run of --run-id keeps its own"
        )
    params = _params_object(params_json)
    with open_platform(ctx, home) as platform:
        pipeline = platform.catalog.get(pipeline_name)
        runner = platform.pipelines
        if run_key is not None:
            pipeline.task(task_name)  # an unknown task makes no run
            run_id = runner.keyed_run(pipeline, run_key, params, trigger=trigger).run_id
        assert run_id is not None
        attempt = runner.run_step(pipeline, task_name, run_id, retry=not no_retry)
    if as_json:
        echo_json({"run_id": run_id, **_attempt_dict(attempt, with_traceback=True)})
    else:
        click.echo(
            f"task {attempt.task} of run {run_id}, attempt {attempt.attempt}: {attempt.state} "
            f"({_seconds(_duration(attempt))})"
        )
        if attempt.state == "success":
            click.echo(f"output: {json.dumps(attempt.output)}")
    if attempt.state != "success":
        click.echo(
            f"task {attempt.task!r} attempt {attempt.attempt} {attempt.state}: {attempt.error}; "
            f"see `litemlops pipelines show {run_id} --traceback`",
            err=True,
        )
        ctx.exit(1)


def _params_object(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise click.ClickException(
            f"--params must be a JSON object of param names to values, like "
            f'\'{{"seed": 7}}\', got {text!r}'
        )
    return value


@pipelines.group("export")
def export() -> None:
    """Write the pipelines as another scheduler's workflows."""


@export.command("airflow")
@home_option
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the DAG files (made if missing); Airflow's dags folder, say.",
)
@click.option(
    "--pipeline",
    "names",
    multiple=True,
    help="Only this pipeline (repeatable; default: every pipeline of the home).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def export_airflow(
    ctx: click.Context, home: Path | None, out: Path, names: tuple[str, ...], as_json: bool
) -> None:
    """One Airflow DAG file per pipeline, whose tasks run `pipelines run-step`.

    Schedules, dependencies, retries and timeouts become the DAG's; each Airflow
    run is one litemlops run (keyed by Airflow's run id, trigger "airflow"), so
    `pipelines runs` and `show` list it and `run --from-failed` resumes it.
    """
    from litemlops.platform import pipeline_catalog
    from litemlops.scheduler.airflow import export_airflow as write_dags

    config = load_config(ctx, home)
    catalog = pipeline_catalog(config)
    chosen = [catalog.get(n) for n in dict.fromkeys(names)] if names else list(catalog)
    # The folder of config.toml and the environment, not the environment's own home:
    # a step must read the settings this export read.
    written = write_dags(
        chosen, out, home=config.config_path.parent, environment=config.environment
    )
    if as_json:
        echo_json([{"dag_id": p.stem, "path": str(p)} for p in written])
        return
    for path in written:
        click.echo(f"wrote {path} (DAG {path.stem})")
