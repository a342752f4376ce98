"""The `litemlops` command: the main job and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

import litemlops
from litemlops.cli.check import check
from litemlops.cli.common import (
    cli_errors,
    home_choice,
    home_option,
    load_config,
    state_home,
)
from litemlops.cli.config_cmd import config_group
from litemlops.cli.deploy import deploy
from litemlops.cli.features import features
from litemlops.cli.logs import logs
from litemlops.cli.monitor import monitor
from litemlops.cli.pipelines import pipelines
from litemlops.cli.predict import predict
from litemlops.cli.promote import promote
from litemlops.cli.tracking import models, runs


class _WithApplications(click.Group):
    """The core commands, and those of the installed applications (`litemlops simulate`
    is the demo's): looked up only when a name is not a core command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_application_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        return found if found is not None else _application_commands().get(cmd_name)


def _application_commands() -> dict[str, click.Command]:
    from litemlops.applications import installed, load_applications

    commands: dict[str, click.Command] = {}
    for application in load_applications(installed()):
        for command in application.commands():
            commands.setdefault(command.name or "", command)
    return commands


@click.group(
    cls=_WithApplications, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(litemlops.__version__, prog_name="litemlops")
@home_option
def cli(home: Path | None) -> None:
    """litemlops: feature store, pipelines, tracking, serving and monitoring in one process."""


@cli.command()
@home_option
@click.option("--host", default=None, help="Interface to listen on (default: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: 8000; 0: any free one).")
@click.option("--once", is_flag=True, help="Bootstrap, report, and exit (for scripts and tests).")
@click.option(
    "-v", "--verbose", is_flag=True, help="Also show events on the console (they are in the log)."
)
@click.pass_context
@cli_errors
def run(
    ctx: click.Context,
    home: Path | None,
    host: str | None,
    port: int | None,
    once: bool,
    verbose: bool,
) -> None:
    """The main job: prepare the home (the demo project on a fresh one), then serve it.

    Serving means the scheduler (the pipelines' schedules) and the HTTP server,
    until Ctrl-C or SIGTERM. The console gets a summary and warnings; every event
    goes to the home's log (`--verbose` shows them here too).
    """
    import contextlib
    import faulthandler
    import importlib
    import signal
    import sys

    from litemlops.applications import load_applications
    from litemlops.home import check_new_home
    from litemlops.scheduler.workers import start_fork_server

    check_new_home(home_choice(ctx, home))  # a new or empty directory, or a home
    config = load_config(ctx, home, {"server.host": host, "server.port": port}, existing=False)
    config.ensure_home()
    if not once:  # refuse an unsafe interface before any work, not after the set-up
        from litemlops.server.security import admin_token, check_bind

        check_bind(config.server.host, admin_token(config)[1])
    # The set-up runs in a worker, and the fork server's imports take seconds: they
    # start now, beside this process's own, serving's included, which are done by then.
    start_fork_server(m for a in load_applications(config.applications) for m in a.preload)
    from litemlops.bootstrap import bootstrap
    from litemlops.logsetup import configure_logging, shutdown_logging
    from litemlops.platform import Platform

    for module in () if once else ("uvicorn", "litemlops.server.main", "litemlops.server.app"):
        importlib.import_module(module)
    # Events go to the log; the console gets warnings and worse unless asked for more.
    console_level = None if verbose else "warning"
    configure_logging(config, background=True, console_level=console_level)
    # A fault in a native library (SQLite, DuckDB, numpy) kills the process with no
    # Python traceback and no event: print every thread's stack to stderr instead
    # (the process's own stderr: sys.stderr may be a test runner's capture).
    if sys.__stderr__ is not None:
        with contextlib.suppress(ValueError, OSError):  # no descriptor (a closed stderr)
            faulthandler.enable(file=sys.__stderr__)
    # SIGTERM unwinds like Ctrl-C: a run in progress during the set-up is closed
    # as interrupted instead of being left "running", and after serving, uvicorn
    # raises the signal again once it has shut down, which ends up here too.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        # Pipeline tasks (the set-up's too) run in worker processes: this process
        # serves from SQLite and never holds the DuckDB history.
        with Platform(config, workers=True) as platform:
            click.echo(f"litemlops {litemlops.__version__} - home {config.home}")
            click.echo(f"preparing the home (events: {config.events_log_path})...", err=True)
            report = platform.in_worker(bootstrap)
            _show_bootstrap(report, config, tables=verbose)
            if once:
                click.echo(f"\nevents: {config.events_log_path}")
                return
            _serve(platform)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutdown_logging()  # every queued event is written before we exit
    if not once:
        from litemlops.server.main import exit_now_if_threads_remain

        exit_now_if_threads_remain()


@cli.command()
@home_option
@click.pass_context
@cli_errors
def init(ctx: click.Context, home: Path | None) -> None:
    """Make a new, empty home in a new or empty directory (default: ./.litemlops).

    `litemlops run` on it sets up the demo project, unless feature views of your own
    were applied first.
    """
    from litemlops.home import check_new_home
    from litemlops.platform import Platform
    from litemlops.server.security import admin_token

    choice = home_choice(ctx, home)
    if check_new_home(choice):
        config = load_config(ctx, home, existing=False)
    else:  # a home, or the folder of a config whose environment names another home
        config = load_config(ctx, home, existing=False)
        choice = state_home(choice, config)
        if not check_new_home(choice):
            click.echo(f"{choice.path} is a litemlops home already; nothing changed")
            return
    with Platform(config):  # creates the stores' files
        pass
    admin_token(config)
    flags = choice.flag()
    click.echo(f"made an empty litemlops home at {config.home}")
    click.echo(f"  serve it:       litemlops run {flags}")
    click.echo(f"  or add views:   litemlops features apply FILE {flags}")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _show_bootstrap(report: Any, config: Any, *, tables: bool) -> None:
    """What the set-up did; with `tables`, also a few training rows and an online lookup."""
    click.echo("fresh home: set up the demo project" if report.fresh else "existing home")
    for step in report.steps:
        click.echo(f"  - {step}")
    if report.no_champion:
        click.echo(f"no champion model yet: {report.no_champion}", err=True)
    if not tables:
        return
    if report.training_rows is not None:
        click.echo("\npoint-in-time training rows (labels x driver_stats):")
        click.echo(report.training_rows.to_string(index=False))
    if report.online is not None:
        import pandas as pd

        click.echo("\nonline lookup:")
        click.echo(pd.DataFrame(report.online).to_string(index=False))


def _every(interval: Any) -> str:
    seconds = interval.total_seconds() if hasattr(interval, "total_seconds") else interval
    return f"every {float(seconds):g} s"


def _serve(platform: Any) -> None:
    from litemlops.server.main import serve

    config = platform.config

    def announce(url: str) -> None:
        click.echo(f"\nserving {url}   (Ctrl-C to stop)")
        for application in platform.applications:
            for line in application.hints(config, url):
                click.echo(f"  {line}")
        click.echo(f"  dashboard: {url}/ui")
        click.echo(f"  also:   {url}/ready  {url}/metrics  {url}/openapi.json  {url}/api/models")
        click.echo(
            f"  admin:  mutating calls need 'Authorization: Bearer <token>', token in "
            f"{config.token_path}"
        )
        for schedule, next_fire in platform.scheduler.schedules():
            when = next_fire.strftime("%Y-%m-%d %H:%M UTC") if next_fire else "never"
            click.echo(
                f"  schedule {schedule.name}: {schedule.cron or _every(schedule.interval)}, "
                f"next {when}"
            )
        click.echo(f"  events: {config.events_log_path}")

    serve(platform, config.server.host, config.server.port, announce=announce)


cli.add_command(check)
cli.add_command(config_group)
cli.add_command(features)
cli.add_command(runs)
cli.add_command(models)
cli.add_command(pipelines)
cli.add_command(logs)
cli.add_command(monitor)
cli.add_command(predict)
cli.add_command(deploy)
cli.add_command(promote)


import litemlops.cli.monitor_check  # noqa: E402  (adds `monitor check`)
import litemlops.cli.pipelines_outside  # noqa: E402  (adds `pipelines run-step`, `export`)


def main() -> None:
    cli(prog_name="litemlops")
