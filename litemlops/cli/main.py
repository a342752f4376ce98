"""The `litemlops` command: the main job and the command groups."""

from __future__ import annotations

from pathlib import Path

import click

import litemlops
from litemlops.cli.common import cli_errors, home_option, open_platform
from litemlops.cli.features import features
from litemlops.cli.pipelines import pipelines
from litemlops.cli.tracking import models, runs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(litemlops.__version__, prog_name="litemlops")
@home_option
def cli(home: Path | None) -> None:
    """litemlops: feature store, pipelines, tracking, serving and monitoring in one process."""


@cli.command()
@home_option
@click.option("--once", is_flag=True, help="Bootstrap, report, and exit (for scripts and tests).")
@click.pass_context
@cli_errors
def run(ctx: click.Context, home: Path | None, once: bool) -> None:
    """The main job: prepare the home (demo project on a fresh one) and run the platform."""
    from litemlops.bootstrap import bootstrap

    with open_platform(ctx, home) as platform:
        click.echo(f"litemlops {litemlops.__version__} - home {platform.config.home}")
        report = bootstrap(platform)
        click.echo("fresh home: set up the demo project" if report.fresh else "existing home")
        for step in report.steps:
            click.echo(f"  - {step}")
        if report.no_champion:
            click.echo(f"no champion model yet: {report.no_champion}", err=True)
        if report.training_rows is not None:
            click.echo("\npoint-in-time training rows (labels x driver_stats):")
            click.echo(report.training_rows.to_string(index=False))
        if report.online is not None:
            import pandas as pd

            click.echo("\nonline lookup:")
            click.echo(pd.DataFrame(report.online).to_string(index=False))
        click.echo(f"\nevents: {platform.config.logs_dir / 'events.jsonl'}")
    if not once:
        click.echo("nothing runs in the background yet (scheduler and server come later); done.")


@cli.group()
def demo() -> None:
    """The demo project's data."""


@demo.command("generate")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--drivers", default=5, show_default=True)
@click.option("--hours", default=48, show_default=True)
@click.option("--labels", default=40, show_default=True)
@click.option("--seed", default=42, show_default=True)
@cli_errors
def demo_generate(out: Path, drivers: int, hours: int, labels: int, seed: int) -> None:
    """Write seeded demo CSVs (driver_stats.csv, labels.csv)."""
    from litemlops.demo.generator import write_sample

    paths = write_sample(out, n_drivers=drivers, hours=hours, n_labels=labels, random_state=seed)
    for path in paths.values():
        click.echo(str(path))


cli.add_command(features)
cli.add_command(runs)
cli.add_command(models)
cli.add_command(pipelines)


def main() -> None:
    cli(prog_name="litemlops")
