"""The `monitoring` pipeline: the event log read back, checked, and alerts evaluated.

collect (the rotated event files compacted into the history, then a window of
`prediction_served` events and the labels that came for them) -> drift (against
the serving model's reference profile, saved when it was trained) -> performance
(the delayed labels) -> alerts (rules evaluated on every metric; a firing
`dataset_drift` publishes `alert:dataset_drift`, which starts `training`). Each
task's output is JSON, so the latest report is simply the last run's outputs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from litemlops.errors import LitemlopsError
from litemlops.scheduler.pipeline import Pipeline, TaskContext, task
from litemlops.store.tracking.model_uri import DEFAULT_ALIAS, ModelURI

if TYPE_CHECKING:
    from litemlops.config import Config

PROFILE_ARTIFACT = "reference_profile.json"


@task
def collect(ctx: TaskContext) -> dict[str, Any]:
    """The window (the last N predictions, or the last period) with its labels so far,
    and the serving model's reference profile, fetched once for the checks after.

    First the rotated event files go into the history (`monitoring.history.compact`):
    here, because this check runs every minute wherever the server runs, outside
    the request path, and reads the log right after, so it reads typed Parquet
    rather than parsing files that just rotated. A history that cannot be written
    is logged and the check goes on: the files wait, and are read as JSON meanwhile.
    """
    from litemlops import events
    from litemlops.monitoring.events import read_feedback, read_predictions
    from litemlops.monitoring.history import compact

    config = ctx.config
    try:
        compacted: dict[str, Any] = compact(config, clock=ctx.clock).as_dict()
    except LitemlopsError as exc:
        ctx.log.warning(events.HISTORY_COMPACTION_FAILED, error=str(exc))
        compacted = {"status": "failed", "error": str(exc)}
    logs = config.logs_dir
    # A home whose applications serve no model has no model to narrow the window to.
    served = config.server.model
    model = ModelURI.parse(served, default_alias=DEFAULT_ALIAS).name if served else None
    found = reference_profile(ctx)
    # The profile names the features, which spares the reader a pass over the log.
    kinds = found[0].kinds if found is not None else None
    if config.monitoring.window_seconds > 0:
        since = ctx.clock() - timedelta(seconds=config.monitoring.window_seconds)
        predictions = read_predictions(logs, since=since, model=model, features=kinds)
    else:
        predictions = read_predictions(
            logs, last=config.monitoring.window_events, model=model, features=kinds
        )
    first = predictions["timestamp"].min() if len(predictions) else None
    feedback = read_feedback(logs, since=first.to_pydatetime() if first is not None else None)
    predictions_path = ctx.work_dir / "predictions.parquet"
    feedback_path = ctx.work_dir / "feedback.parquet"
    predictions.to_parquet(predictions_path, index=False)
    feedback.to_parquet(feedback_path, index=False)
    versions = sorted({int(v) for v in predictions["version"].dropna().unique()})
    return {
        "predictions": len(predictions),
        "requests": int(predictions["request_id"].nunique()) if len(predictions) else 0,
        "labels": len(feedback),
        "versions": versions,
        "from": first.isoformat() if first is not None else None,
        "predictions_path": str(predictions_path),
        "feedback_path": str(feedback_path),
        "profile_path": str(ctx.work_dir / PROFILE_ARTIFACT) if found is not None else None,
        "reference": found[1] if found is not None else None,
        "history": compacted,
    }


def reference_profile(ctx: TaskContext) -> tuple[Any, dict[str, Any]] | None:
    """The profile of what the served model was trained on (saved in the task's folder),
    and which version that is; None when there is no such model or profile."""
    from litemlops.monitoring.profile import Profile

    uri = ctx.config.server.model
    if not uri:
        return None
    try:
        _, _, meta = ctx.registry.resolve(uri)
    except LitemlopsError:
        return None
    run_id = meta.get("run_id")
    if not run_id:
        return None
    dest = ctx.work_dir / PROFILE_ARTIFACT
    try:
        ctx.tracker.download_artifact(run_id, PROFILE_ARTIFACT, dest)
    except LitemlopsError:
        return None
    return Profile.load(dest), {"model": meta.get("name"), "version": meta.get("version")}


@task(upstream="collect")
def drift(ctx: TaskContext) -> dict[str, Any]:
    """Drift and data quality of the window's features against the reference profile."""
    import pandas as pd

    from litemlops.monitoring.drift import DriftThresholds, drift_report
    from litemlops.monitoring.profile import Profile

    window = ctx.upstream["collect"]
    if window["profile_path"] is None:
        return {"status": f"no reference profile for {ctx.config.server.model}", "metrics": {}}
    m = ctx.config.monitoring
    thresholds = DriftThresholds(
        ks_pvalue=m.ks_pvalue,
        psi=m.psi,
        wasserstein=m.wasserstein,
        chi2_pvalue=m.chi2_pvalue,
        js=m.js,
        dataset_share=m.dataset_share,
    )
    report = drift_report(
        Profile.load(window["profile_path"]),
        pd.read_parquet(window["predictions_path"]),
        thresholds=thresholds,
        sample_cap=m.sample_cap,
    )
    return {"reference": window["reference"], **report.to_dict(), "metrics": report.metrics()}


@task(upstream="collect")
def performance(ctx: TaskContext) -> dict[str, Any]:
    """The served model on the predictions whose labels arrived."""
    import pandas as pd

    from litemlops.monitoring.performance import performance_report

    window = ctx.upstream["collect"]
    report = performance_report(
        pd.read_parquet(window["predictions_path"]),
        pd.read_parquet(window["feedback_path"]),
        now=ctx.clock(),
    )
    return {**report.as_dict(), "metrics": report.metrics()}


@task(upstream=["drift", "performance"])
def alerts(ctx: TaskContext) -> dict[str, Any]:
    """Every rule on every metric; firing ones notify (log, webhook, the bus)."""
    from litemlops.monitoring.alerts import AlertManager
    from litemlops.monitoring.notify import BusNotifier, LogNotifier, WebhookNotifier

    metrics = {**ctx.upstream["drift"]["metrics"], **ctx.upstream["performance"]["metrics"]}
    m = ctx.config.monitoring
    notifiers: dict[str, Any] = {"log": LogNotifier()}
    if m.webhook_url:
        notifiers["webhook"] = WebhookNotifier(
            m.webhook_url,
            m.webhook_timeout,
            generator_url=_monitoring_url(ctx.config),
            # Without a schedule a check runs when asked: Alertmanager's usual 5 minutes.
            check_interval=m.interval_seconds if 0 < m.interval_seconds < 1e9 else 75.0,
        )
    bus = ctx.resources.get("bus")
    if bus is not None:
        notifiers["bus"] = BusNotifier(bus)
    manager = AlertManager(
        ctx.tracker.db, ctx.config.alerts, clock=ctx.clock, notifiers=notifiers
    )
    moves = manager.evaluate(metrics)
    return {
        "metrics": metrics,
        "transitions": [t.as_dict() for t in moves],
        "states": [s.as_dict() for s in manager.states()],
    }


def _monitoring_url(config: Config) -> str:
    """Where a person sees the alert: the server's `/api/monitoring` (Alertmanager's
    "source" link); a server bound to every interface is reached on this machine."""
    host = config.server.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.server.port}/api/monitoring"


def monitoring_pipeline(config: Config) -> Pipeline:
    interval = config.monitoring.interval_seconds
    return Pipeline(
        "monitoring",
        [collect, drift, performance, alerts],
        description="Drift, data quality and delayed-label performance from the event log; "
        "alerts.",
        schedule=interval if interval > 0 else None,
        on_busy="skip",  # a check still running makes the next one pointless
    )


def latest_report(platform: Any) -> dict[str, Any]:
    """The last successful check's window, drift and performance, with the alerts' live
    states and recent history: what `GET /api/monitoring` and `/metrics` show."""
    from litemlops.monitoring.alerts import AlertManager

    manager = AlertManager(platform.tracker.db, platform.config.alerts, notifiers={})
    report: dict[str, Any] = {
        "run_id": None,
        "checked_at": None,
        "window": None,
        "drift": None,
        "performance": None,
        "metrics": {},
        "alerts": [s.as_dict() for s in manager.states()],
        "history": [t.as_dict() for t in manager.history(limit=50)],
    }
    runs = platform.pipelines.list_runs(pipeline="monitoring", state="success", limit=1)
    if not runs:
        return report
    run = runs[0]
    outputs = {t.task: t.output for t in platform.pipelines.task_runs(run.run_id)
               if t.state == "success"}
    report.update(
        run_id=run.run_id,
        checked_at=run.ended_at.isoformat() if run.ended_at else None,
        window=outputs.get("collect"),
        drift=outputs.get("drift"),
        performance=outputs.get("performance"),
        metrics=(outputs.get("alerts") or {}).get("metrics", {}),
    )
    return report
