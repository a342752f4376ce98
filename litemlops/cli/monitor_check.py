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
    from litemlops.server.main import served_at

    config = load_config(ctx, home)
    url = served_at(config.home)
    if url is not None:
        report = _remote(url, config.token_path, timeout)
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


def _remote(url: str, token_path: Path, timeout: float) -> dict[str, Any]:
    import httpx

    try:
        token = token_path.read_text().strip()
    except OSError:
        raise click.ClickException(f"no admin token at {token_path}") from None
    with httpx.Client(base_url=url, timeout=30) as client:
        started = client.post(
            "/api/pipelines/monitoring/trigger", json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        if started.status_code >= 400:
            raise click.ClickException(f"the server refused the check: {started.text[:300]}")
        run_id = started.json().get("run_id")
        deadline = time.monotonic() + timeout
        while run_id is not None:
            run = client.get(f"/api/pipelines/runs/{run_id}").json()
            if run.get("state") in ("success", "failed", "skipped"):
                if run["state"] != "success":
                    raise click.ClickException(f"the check {run['state']}: {run.get('error')}")
                break
            if time.monotonic() > deadline:
                raise click.ClickException(f"the check {run_id} did not finish in {timeout} s")
            time.sleep(0.2)
        return client.get("/api/monitoring").json()


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
