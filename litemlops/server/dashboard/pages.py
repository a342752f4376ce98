"""What each dashboard page shows, as plain data read through the same library calls as
the admin API, so a page and `/api/...` can never disagree. Templates only lay it out.

Each function runs on a worker thread (it reads SQLite) and returns dicts and lists of
plain values; times stay `datetime` for the templates to format.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litemlops.errors import LitemlopsError, NotFoundError

if TYPE_CHECKING:
    from litemlops.platform import Platform
    from litemlops.server.state import ServerState

#: Pipeline runs the overview lists.
RECENT_RUNS = 10
#: Alias moves a model page draws on its timeline, newest kept.
TIMELINE_MOVES = 200
#: Runs the pipelines page lists; events a run's page shows (the newest).
RUNS_SHOWN = 50
RUN_EVENTS = 500
#: Newest requests of a model a model page links to the lineage of.
RECENT_REQUESTS = 20
#: Monitoring checks whose drift the trend charts draw, the newest.
TREND = 60


def overview(state: ServerState) -> dict[str, Any]:
    """Readiness, the service's champion and deployment, alerts, the latest runs and the
    latest drift verdict."""
    from litemlops.monitoring.pipeline import latest_report

    platform = state.platform
    spec = state.service.spec
    ready, why = _readiness(state)
    deployment = state.deployments.routing(spec.name)
    report = latest_report(platform)
    drift = report.get("drift") or {}
    return {
        "ready": ready,
        "not_ready": why,
        "service": {
            "name": spec.name,
            "model": spec.model,
            "version": _served_version(state),
            "deployment": None
            if deployment is None
            else {
                "name": deployment.name,
                "strategy": deployment.strategy,
                "arms": [arm.name for arm in deployment.arms],
            },
        },
        "traffic": state.metrics.traffic.last_hour(),
        "alerts": [a for a in report["alerts"] if a.get("state") in ("firing", "pending")],
        "runs": [_run(r) for r in platform.pipelines.list_runs(limit=RECENT_RUNS)],
        "drift": {
            "checked_at": report.get("checked_at"),
            "detected": drift.get("dataset_drift"),
            "message": drift.get("message"),
            "drifted": drift.get("drifted_features") or [],
        }
        if drift
        else None,
    }


def models(state: ServerState) -> list[dict[str, Any]]:
    """Every registered model with its aliases and latest version."""
    return [asdict(m) for m in state.platform.registry.list_registered_models()]


def model(state: ServerState, name: str) -> dict[str, Any]:
    """One model: its versions (newest first), aliases, and every alias move for the
    timeline (oldest first). `NotFoundError` for an unknown name."""
    from litemlops.monitoring.events import read_predictions

    registry = state.platform.registry
    found = registry.get_registered_model(name)
    versions = sorted(registry.list_versions(name), key=lambda v: v.version, reverse=True)
    moves = registry.alias_history(name)[-TIMELINE_MOVES:]
    served = read_predictions(state.platform.config.logs_dir, last=RECENT_REQUESTS, model=name)
    latest: dict[int, list[str]] = {}  # version -> its newest request ids, newest first
    for request_id, version in zip(served["request_id"][::-1], served["version"][::-1],
                                   strict=True):  # fmt: skip
        ids = latest.setdefault(int(version), [])
        if request_id not in ids:
            ids.append(str(request_id))
    shown = [{**_version(v), "uri": v.uri, "requests": latest.get(v.version, [])}
             for v in versions]  # fmt: skip
    return {
        **asdict(found),
        "versions": shown,
        "moves": [asdict(m) for m in sorted(moves, key=lambda m: m.at)],
    }


def compare(state: ServerState, name: str, left: int, right: int) -> dict[str, Any]:
    """Two versions of a model side by side: each one's lineage (run, params, metrics,
    data fingerprint, feature views, commit, sha256), with the keys that differ."""
    registry = state.platform.registry
    sides = [registry.get_model_version(name, v) for v in (left, right)]
    rows = [_version(v)["lineage"] for v in sides]
    keys = sorted(set(rows[0]) | set(rows[1]))
    return {
        "name": name,
        "versions": [_version(v) for v in sides],
        "rows": [
            {"key": k, "left": rows[0].get(k), "right": rows[1].get(k),
             "differs": rows[0].get(k) != rows[1].get(k)}
            for k in keys
        ],
    }  # fmt: skip


def _lineage_rows(lineage: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested lineage flattened to dotted keys (lists kept whole, as text)."""
    flat: dict[str, Any] = {}
    for key, value in lineage.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_lineage_rows(value, path + "."))
        else:
            flat[path] = value
    return flat


def experiments(
    state: ServerState, filter_string: str, order_by: str, page_token: str | None
) -> dict[str, Any]:
    """Runs by the API's search syntax (MLflow's filter and order_by), a page at a time,
    with the metric keys the page's runs have. `ValidationError` for a bad
    filter, order or token."""
    from litemlops.store.tracking.search import search_runs

    found = search_runs(
        state.platform.tracker, None, filter_string, [order_by] if order_by else None,
        RUNS_SHOWN, page_token,
    )  # fmt: skip
    runs = [asdict(r) for r in found.runs]
    return {
        "runs": runs,
        "next_page_token": found.next_page_token,
        "metric_keys": sorted({k for r in runs for k in r["metrics"]}),
    }


def metric_histories(
    state: ServerState, run_ids: list[str], keys: list[str] | None
) -> dict[str, Any]:
    """Runs with every logged value of their metrics by step: `keys` (None: all the runs
    logged), each as {run name: [(step, value), ...]} for one chart per metric. Unknown
    run ids are `RunNotFoundError`."""
    tracker = state.platform.tracker
    runs = [tracker.get_run(r) for r in run_ids]
    wanted = keys if keys else sorted({k for r in runs for k in r.metrics})
    charts = {
        key: {
            f"{r.name} ({r.run_id[:8]})": [
                (float(m.step), float(m.value)) for m in tracker.metric_history(r.run_id, key)
            ]
            for r in runs
            if key in r.metrics
        }
        for key in wanted
    }
    return {"runs": [asdict(r) for r in runs], "charts": charts}


def monitoring(platform: Platform) -> dict[str, Any]:
    """The latest check (drift per feature with its distributions, performance, data
    quality), each feature's deciding statistic over the last checks, and the alerts
    with their history: `/api/monitoring` plus the trend."""
    from litemlops.monitoring.drift import deciding_statistic
    from litemlops.monitoring.pipeline import latest_report

    report = latest_report(platform)
    runs = platform.pipelines.list_runs(pipeline="monitoring", state="success", limit=TREND)
    trend: dict[str, list[tuple[datetime, float]]] = {}
    for run in reversed(runs):
        drift = next(
            (t.output for t in platform.pipelines.task_runs(run.run_id)
             if t.task == "drift" and t.state == "success"), None,
        )  # fmt: skip
        for name, feature in ((drift or {}).get("features") or {}).items():
            method = deciding_statistic(feature.get("method", ""))
            value = (feature.get("stats") or {}).get(method)
            if value is not None and run.ended_at is not None:
                trend.setdefault(name, []).append((run.ended_at, float(value)))
    return {**report, "trend": trend}


def lineage(state: ServerState, request_id: str) -> dict[str, Any]:
    """Everything behind one served request, and what followed it: its answers (model
    version, entities, features, scores, output) and labels from the event log; the
    version's training run, data and feature views; the alias move that made it serve;
    the first monitoring check after it, the alert transitions and the runs alerts
    started since. `NotFoundError` when no answer has that id."""
    from litemlops.monitoring.alerts import AlertManager
    from litemlops.monitoring.events import read_feedback, read_predictions

    platform = state.platform
    logs = platform.config.logs_dir
    rows = read_predictions(logs, request_id=request_id)
    if rows.empty:
        raise NotFoundError(f"no prediction was served with request id {request_id!r}")
    answered = rows["timestamp"].max().to_pydatetime()
    model, version = str(rows["model"].iloc[-1]), int(rows["version"].iloc[-1])
    fixed = {"request_id", "timestamp", "model", "version", "service", "entity", "score",
             "output"}  # fmt: skip
    found = platform.registry.get_model_version(model, version)
    service = str(rows["service"].iloc[-1])
    # The alias the service answers through, when the request was the service's.
    spec = state.service.spec
    served_by = spec.model.partition("@")[2] if service == spec.name else ""
    moves = [m for m in platform.registry.alias_history(model)
             if m.to_version == version and m.at <= answered
             and (not served_by or m.alias == served_by)]  # fmt: skip
    checks = platform.pipelines.list_runs(pipeline="monitoring", state="success", limit=200)
    after = [r for r in checks if r.started_at is not None and r.started_at >= answered]
    alerts = AlertManager(platform.tracker.db, platform.config.alerts, notifiers={})
    transitions = [  # what followed, oldest first
        t.as_dict() for t in sorted(alerts.history(limit=200), key=lambda t: t.at)
        if t.at >= answered
    ]  # fmt: skip
    started = platform.pipelines.list_runs(limit=200)
    retrained = [
        _run(r) for r in started
        if r.trigger == "event" and r.started_at and r.started_at >= answered
    ]  # fmt: skip
    answers = [
        {"entity": r["entity"], "score": r["score"],
         "features": {k: v for k, v in r.items() if k not in fixed}}
        for r in rows.to_dict("records")
    ]  # fmt: skip
    return {
        "request_id": request_id,
        "answered_at": answered,
        "model": model,
        "version": version,
        "service": service,
        "output": rows["output"].iloc[-1],
        "rows": answers,
        "labels": read_feedback(logs, request_id=request_id).to_dict("records"),
        "registered": _version(found),
        "made_serving": asdict(moves[-1]) if moves else None,
        "check": _run(after[-1]) if after else None,
        "transitions": transitions[:20],
        "retrained": retrained,
    }


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAPI document's operations as the docs page lists them, by path: summary,
    whether it needs the token, parameters, the body's schema (its reference resolved)
    with an example skeleton, and the answers."""
    import json

    schemas = document.get("components", {}).get("schemas", {})

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref", "")
        return dict(schemas.get(ref.rsplit("/", 1)[-1], schema)) if ref else schema

    found = []
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            schema = resolve(body["schema"]) if body else None
            found.append({
                "method": method.upper(),
                "path": path,
                "id": op.get("operationId", f"{method}-{path}"),
                "summary": op.get("summary", ""),
                "secured": "security" in op,
                "params": [
                    {"name": p["name"], "in": p["in"], "required": p.get("required", False),
                     "type": resolve(p.get("schema", {})).get("type", "string"),
                     "description": p.get("description", "")}
                    for p in op.get("parameters", [])
                ],
                "body": json.dumps(schema, indent=2) if schema else None,
                "body_required": bool((op.get("requestBody") or {}).get("required")),
                "responses": {k: v.get("description", "") for k, v in op["responses"].items()},
            })  # fmt: skip
    return found


def deployments(state: ServerState, which: str | None) -> dict[str, Any]:
    """The service's deployments, newest first, and one in detail with its live report
    and history: `which` (an id or name), else the active one, else the last. None in
    detail when the service never had one; `NotFoundError` for an unknown `which`."""
    found = state.deployments
    service = state.service.spec.name
    recent = found.recent(service, RUNS_SHOWN)
    detail = None
    if which is not None:
        detail = found.status(which, service=service)
    elif recent:
        detail = found.status(service)
    if detail is not None:
        detail["history"] = found.history(detail["id"])
    return {"service": service, "recent": recent, "detail": detail}


def features(state: ServerState) -> list[dict[str, Any]]:
    """Every feature view as `/api/features` describes it: definition, sizes, freshness
    and each feature's share of missing values."""
    return list(state.platform.describe_features())


def pipelines(state: ServerState, pipeline: str | None) -> dict[str, Any]:
    """The pipelines (tasks, schedule, triggers) and their latest runs (of one when
    named; `NotFoundError` for an unknown name)."""
    platform = state.platform
    if pipeline is not None:
        platform.catalog.get(pipeline)
    return {
        "pipelines": [p.describe() for p in platform.catalog],
        "selected": pipeline,
        "runs": [_run(r) for r in platform.pipelines.list_runs(pipeline, limit=RUNS_SHOWN)],
    }


def pipeline_run(state: ServerState, run_id: str) -> dict[str, Any]:
    """One run: its params and every task attempt in order, with the run's events
    (`RunNotFoundError` for an unknown id)."""
    from litemlops.monitoring.event_log import run_events

    platform = state.platform
    run = platform.pipelines.get_run(run_id)
    attempts = [
        {**{k: v for k, v in asdict(a).items() if k != "output"},
         "duration": _span(a.started_at, a.ended_at)}
        for a in platform.pipelines.task_runs(run_id)
    ]  # fmt: skip
    found = [e for _, e in run_events(platform.config.logs_dir, run_id) if e is not None]
    return {
        **_run(run),
        "params": run.params,
        "attempts": attempts,
        "events": found[-RUN_EVENTS:],
        "events_left_out": max(len(found) - RUN_EVENTS, 0),
    }


def _span(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _version(v: Any) -> dict[str, Any]:
    """A version with its lineage flattened to dotted keys, as the pages list it."""
    return {**asdict(v), "lineage": _lineage_rows(v.lineage)}


def _readiness(state: ServerState) -> tuple[bool, str | None]:
    if state.service_error is not None:
        return False, state.service_error
    try:
        state.models.get(state.service.spec.model)
    except LitemlopsError as exc:
        return False, f"no model to serve for {state.service.spec.model!r}: {exc.args[0]}"
    return True, None


def _served_version(state: ServerState) -> int | None:
    try:
        return state.models.get(state.service.spec.model).version
    except LitemlopsError:
        return None


def _run(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "state": run.state,
        "trigger": run.trigger,
        "started_at": run.started_at,
        "duration": _span(run.started_at, run.ended_at),
        "error": run.error,
    }
