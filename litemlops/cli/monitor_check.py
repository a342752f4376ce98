"""`litemlops monitor check`: the monitoring pipeline now, here or in the running server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, open_platform
from litemlops.cli.monitor import monitor


@monitor.command("check")
@home_option
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON.")
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for a check the running server makes.")
@click.pass_context
@cli_errors
def check(ctx: click.Context, home: Path | None, as_json: bool, timeout: float) -> None:
    """Check drift, data quality and performance now and evaluate the alerts.

    With `litemlops run` serving the home, the server runs the check (its scheduler
    then starts what firing alerts trigger); otherwise it runs here.
    """
    from litemlops.cli.remote import owner

    served = owner(load_config(ctx, home))
    if served is not None:
        with served:
            give_up = time.monotonic() + timeout
            while True:
                started = served.call("POST", "/api/pipelines/monitoring/trigger", {})
                ended = served.follow_run(started, deadline=max(give_up - time.monotonic(), 1))
                if ended["state"] != "skipped" or time.monotonic() > give_up:
                    break
                # The scheduled check was running (checks skip, not queue): wait for it
                # to end, then ask for ours, which reads what came since.
                for busy in served.call(
                    "GET", "/api/pipelines/runs", pipeline="monitoring", state="running"
                ):
                    served.follow_run(busy, deadline=max(give_up - time.monotonic(), 1))
            if ended["state"] != "success":
                raise click.ClickException(
                    f"the check {ended['state']}: {ended.get('error')}; see "
                    f"`litemlops pipelines show {ended['run_id']}`"
                )
            report = served.call("GET", "/api/monitoring")
    else:
        from litemlops.monitoring.pipeline import latest_report

        with open_platform(ctx, home) as platform:
            platform.scheduler  # noqa: B018  alerts' triggers are subscribed on the bus
            run = platform.pipelines.run(platform.catalog.get("monitoring"))
            if run.state != "success":
                raise click.ClickException(
                    f"the check failed: {run.error}; see `litemlops pipelines show {run.run_id}`"
                )
            report = latest_report(platform)
    if as_json:
        echo_json(report)
    else:
        _show(report)


def _show(report: dict[str, Any]) -> None:
    window = report.get("window") or {}
    click.echo(
        f"window: {window.get('predictions', 0)} scored entities in "
        f"{window.get('requests', 0)} requests, {window.get('labels', 0)} labels"
    )
    drift = report.get("drift") or {}
    metrics = report.get("metrics") or {}
    if "drift.dataset" in metrics:
        verdict = "DRIFT" if metrics["drift.dataset"] else "no drift"
        drifted = [f for f, d in (drift.get("features") or {}).items() if d.get("drifted")]
        click.echo(
            f"drift: {verdict} ({metrics.get('drift.share', 0):.0%} of features drifted"
            f"{': ' + ', '.join(drifted) if drifted else ''})"
        )
    else:
        click.echo(f"drift: {drift.get('status', 'not checked')}")
    shown = {k.split('.', 1)[1]: v for k, v in metrics.items() if k.startswith("performance.")}
    if shown:
        click.echo("performance: " + ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        ))
    for alert in report.get("alerts") or []:
        click.echo(f"alert {alert['rule']}: {alert['state']} ({alert['metric']} "
                   f"{alert['condition']}, value {alert.get('value')})")


@monitor.command("report")
@home_option
@click.option("--html", "html_path", required=True,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the latest check here as one self-contained HTML file.")
@click.pass_context
@cli_errors
def report(ctx: click.Context, home: Path | None, html_path: Path) -> None:
    """The latest monitoring check (drift per feature with the reference's and the window's
    distributions and the trend over the last checks, performance, alerts) as one HTML
    file that opens offline. It reads the home beside a running `litemlops run`."""
    from datetime import UTC, datetime

    from litemlops.server.dashboard.pages import monitoring
    from litemlops.server.dashboard.report import html_report

    with open_platform(ctx, home) as platform:
        data = monitoring(platform)
    if data["run_id"] is None:
        raise click.ClickException(
            "no monitoring check yet: run `litemlops monitor check` (or wait for `run`'s)"
        )
    try:
        html_path.write_text(html_report(data, datetime.now(UTC)), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {html_path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {html_path} (the check of {data['checked_at']})")
