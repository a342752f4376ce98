"""`litemlops monitor ...`: drift and data quality from the command line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, split_refs

if TYPE_CHECKING:
    from litemlops.monitoring.drift import DriftReport


@click.group()
def monitor() -> None:
    """Monitoring: drift and data quality of served features."""


@monitor.command("compare")
@click.argument("reference", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("current", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--columns", default=None, help="Only these columns: a,b,c (default: all).")
@click.option(
    "--categorical", default=None, help="Treat these columns as categories: c,d (text always is)."
)
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON.")
@cli_errors
def monitor_compare(
    reference: Path, current: Path, columns: str | None, categorical: str | None, as_json: bool
) -> None:
    """Drift of CURRENT against REFERENCE (Parquet, CSV or TSV files), feature by feature.

    Exits 0 whether or not the data drifted: the verdict is the output.
    """
    from litemlops.monitoring.drift import compare
    from litemlops.store.files import read_frame

    chosen = split_refs(columns) if columns is not None else None
    if chosen is not None and not chosen:
        raise click.BadParameter("name at least one column", param_hint="--columns")
    categories = split_refs(categorical) if categorical else []
    # In a CSV, categorical columns stay text: "007" is a category, not the number 7.
    report = compare(
        read_frame(reference, text_columns=categories),
        read_frame(current, text_columns=categories),
        columns=chosen,
        categorical=categories,
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(render(report))


@monitor.command("compact")
@home_option
@click.option("--json", "as_json", is_flag=True, help="What was done, as JSON.")
@click.pass_context
@cli_errors
def monitor_compact(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """Move rotated event files into the event history now, and apply its retention.

    Each monitoring check does this first; this is safe while `litemlops run` serves
    the home (one process compacts at a time, another finds the history busy).
    """
    from litemlops.monitoring.history import compact

    config = load_config(ctx, home)
    if not config.logs_dir.is_dir():
        raise click.ClickException(f"no event log in {config.logs_dir}: nothing to compact")
    done = compact(config)
    if as_json:
        echo_json(done.as_dict())
        return
    if done.status == "busy":
        click.echo("another process is compacting the history now; nothing done")
        return
    click.echo(
        f"{done.files} event file(s), {done.lines} lines, into the history; "
        f"{done.waiting} still being written; {done.merged} merged, {done.expired} expired; "
        f"history: {done.parts} files, {done.bytes / 1e6:.1f} MB"
    )


def render(report: DriftReport) -> str:
    """The report as a table, one feature a line, then the dataset's verdict."""
    header = ("feature", "type", "test", "p-value", "statistic", "psi", "wasserstein", "js")
    rows = [(*header, "drifted")]
    for f in report.features.values():
        s = f.stats
        numeric = f.kind == "numeric"
        judged = ("yes" if f.drifted else "no") if f.status == "ok" else f.status
        rows.append(
            (
                f.name,
                f.kind,
                f.method,
                _num(s.get("ks_pvalue" if numeric else "chi2_pvalue")),
                _num(s.get("ks_stat" if numeric else "chi2_stat")),
                _num(s.get("psi")),
                _num(s.get("wasserstein")),
                _num(s.get("js")),
                judged,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if report.status != "ok":
        verdict = f"no verdict ({report.status})"
    else:
        verdict = "DRIFT" if report.dataset_drift else "no drift"
    lines += [
        "",
        f"dataset: {verdict} - {report.message}",
        f"rows: {report.n_reference} reference, {report.n_current} current",
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"
