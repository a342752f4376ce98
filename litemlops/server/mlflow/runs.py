"""MLflow's run endpoints: create, get, update, delete, restore, log params, metrics,
tags and inputs one by one or in a batch, search, and a metric's history.

Metrics are finite numbers in litemlops (search orders by them): a NaN or an
infinity is refused with INVALID_PARAMETER_VALUE, where MLflow would store it.
Logging to a deleted run is refused (INVALID_STATE), as MLflow does; logging to an
ended run is allowed, as MLflow allows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litemlops.clock import from_ms
from litemlops.server.mlflow.base import (
    Args,
    Table,
    integer,
    items,
    key_values,
    next_offset_token,
    offset_token,
    optional_text,
    text,
)
from litemlops.server.mlflow.errors import MlflowError, invalid
from litemlops.server.mlflow.translate import (
    RUN_NAME_TAG,
    find_experiment,
    run_json,
    status_in,
)
from litemlops.store.tracking.run import Run

if TYPE_CHECKING:
    from litemlops.platform import Platform

MAX_BATCH = {"metrics": 1000, "params": 100, "tags": 100}  # MLflow's log_batch limits
MAX_HISTORY = 25_000
_VIEWS = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": None}


def _run_id(args: Args) -> str:
    # MLflow's older clients send run_uuid beside (or instead of) run_id.
    return text(args, "run_id") if args.get("run_id") else text(args, "run_uuid")


def _active_run(platform: Platform, args: Args) -> Run:
    run, stage = platform.tracker.run_to_log(_run_id(args))
    if stage != "active":
        raise MlflowError(
            "INVALID_STATE",
            f"run {run.id} is deleted; restore it before logging to it",
        )
    return run


def create_run(platform: Platform, args: Args) -> dict[str, Any]:
    tracker = platform.tracker
    exp = find_experiment(tracker, text(args, "experiment_id", required=False, default="0"))
    if exp.lifecycle_stage != "active":
        raise MlflowError(
            "INVALID_STATE", f"experiment {exp.name!r} is deleted; restore it or use another"
        )
    tags = dict(key_values(args, "tags"))
    name = optional_text(args, "run_name") or tags.get(RUN_NAME_TAG) or None
    user = optional_text(args, "user_id")
    if user and "mlflow.user" not in tags:
        tags["mlflow.user"] = user
    tags.pop(RUN_NAME_TAG, None)  # the run's name, answered as this tag
    parent = tags.get("mlflow.parentRunId")
    start = integer(args, "start_time")
    run = tracker.start_run(
        exp.name, name, tags=tags, parent_run_id=parent, local=False,
        start_time=from_ms(start) if start is not None else None,
        commit=tags.get("mlflow.source.git.commit") or None,  # the script's, if in git
    )  # fmt: skip
    return {"run": run_json(tracker.get_run(run.id))}


def get_run(platform: Platform, args: Args) -> dict[str, Any]:
    return {"run": run_json(platform.tracker.get_run(_run_id(args)))}


def update_run(platform: Platform, args: Args) -> dict[str, Any]:
    tracker = platform.tracker
    run_id = _run_id(args)
    status = optional_text(args, "status")
    end = integer(args, "end_time")
    info = tracker.update_run(
        run_id,
        status=status_in(status) if status else None,
        end_time=from_ms(end) if end is not None else None,
        name=optional_text(args, "run_name") or None,
    )
    return {"run_info": run_json(info)["info"]}


def delete_run(platform: Platform, args: Args) -> dict[str, Any]:
    platform.tracker.delete_run(_run_id(args))
    return {}


def restore_run(platform: Platform, args: Args) -> dict[str, Any]:
    platform.tracker.restore_run(_run_id(args))
    return {}


def _metric(item: Any) -> tuple[str, float, int | None, int | None]:
    if not isinstance(item, dict):
        raise invalid(f"a metric is an object with key, value, timestamp and step, got {item!r}")
    value = item.get("value")
    if isinstance(value, str):  # protobuf's JSON writes NaN and infinities as strings
        raise invalid(
            f"metric {item.get('key')!r} is {value}; litemlops keeps finite metrics only "
            "(log a NaN loss as a tag, or fail the run)"
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"metric {item.get('key')!r} must have a number value, got {value!r}")
    return text(item, "key"), float(value), integer(item, "step", 0), integer(item, "timestamp")


def log_metric(platform: Platform, args: Args) -> dict[str, Any]:
    _active_run(platform, args).log_metric_points([_metric(args)])
    return {}


def log_param(platform: Platform, args: Args) -> dict[str, Any]:
    _active_run(platform, args).log_params({text(args, "key"): text(args, "value", required=False)})
    return {}


def set_tag(platform: Platform, args: Args) -> dict[str, Any]:
    run = _active_run(platform, args)
    key, value = text(args, "key"), text(args, "value", required=False)
    _set_tags(platform, run, {key: value})
    return {}


def _set_tags(platform: Platform, run: Run, tags: dict[str, str]) -> None:
    name = tags.pop(RUN_NAME_TAG, None)
    if name:
        platform.tracker.update_run(run.id, name=name)
    if tags:
        run.set_tags(tags)


def delete_tag(platform: Platform, args: Args) -> dict[str, Any]:
    run = _active_run(platform, args)
    platform.tracker.delete_run_tag(run.id, text(args, "key"))
    return {}


def log_batch(platform: Platform, args: Args) -> dict[str, Any]:
    for field, most in MAX_BATCH.items():
        if len(items(args, field)) > most:
            raise invalid(f"a batch logs at most {most} {field}, got {len(items(args, field))}")
    run = _active_run(platform, args)
    points = [_metric(m) for m in items(args, "metrics")]
    params = dict(key_values(args, "params"))
    tags = dict(key_values(args, "tags"))
    if params:
        run.log_params(params)
    if tags:
        _set_tags(platform, run, tags)
    if points:
        run.log_metric_points(points)
    return {}


def log_inputs(platform: Platform, args: Args) -> dict[str, Any]:
    """Datasets become the run's inputs (name, digest, source); models are not recorded."""
    run = _active_run(platform, args)
    for item in items(args, "datasets"):
        dataset = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(dataset, dict):
            raise invalid(f"a dataset input is an object with a dataset, got {item!r}")
        details = {
            k: dataset[k]
            for k in ("digest", "source_type", "source", "schema", "profile")
            if isinstance(dataset.get(k), str)
        }
        details["tags"] = dict(key_values(item, "tags"))
        run.log_input_details(text(dataset, "name"), details)
    return {}


def log_outputs(platform: Platform, args: Args) -> dict[str, Any]:
    _active_run(platform, args)  # the logged models say which run made them
    return {}


def search_runs(platform: Platform, args: Args) -> dict[str, Any]:
    from litemlops.store.tracking.search import search_runs as search

    tracker = platform.tracker
    ids = [str(i) for i in items(args, "experiment_ids")]
    names = [find_experiment(tracker, i).name for i in ids]
    view = str(args.get("run_view_type") or "ACTIVE_ONLY").upper()
    if view not in _VIEWS:
        raise invalid(f"invalid run_view_type {view!r}; use one of {sorted(_VIEWS)}")
    filter_string = str(args.get("filter") or "")
    stage = _VIEWS[view]
    if stage is not None:
        clause = f"attributes.lifecycle_stage = '{stage}'"
        filter_string = f"{filter_string} and {clause}" if filter_string.strip() else clause
    limit = integer(args, "max_results", 1000)
    assert limit is not None
    page = search(
        tracker,
        names,
        filter_string,
        [str(o) for o in items(args, "order_by")] or None,
        limit,
        optional_text(args, "page_token") or None,
    )
    answer: dict[str, Any] = {"runs": [run_json(r) for r in page.runs]}
    if page.next_page_token:
        answer["next_page_token"] = page.next_page_token
    return answer


def metric_history(platform: Platform, args: Args) -> dict[str, Any]:
    from litemlops.clock import to_ms

    points = platform.tracker.metric_history(_run_id(args), text(args, "metric_key"))
    limit = integer(args, "max_results", MAX_HISTORY)
    assert limit is not None
    if not 1 <= limit <= MAX_HISTORY:
        raise invalid(f"max_results must be between 1 and {MAX_HISTORY}, got {limit}")
    start = offset_token(optional_text(args, "page_token"))
    answer: dict[str, Any] = {
        "metrics": [
            {"key": m.key, "value": m.value, "timestamp": to_ms(m.timestamp), "step": m.step}
            for m in points[start : start + limit]
        ]
    }
    if start + limit < len(points):
        answer["next_page_token"] = next_offset_token(start + limit)
    return answer


ROUTES: Table = [
    ("POST", "/runs/create", create_run, True),
    ("GET", "/runs/get", get_run, False),
    ("POST", "/runs/update", update_run, True),
    ("POST", "/runs/delete", delete_run, True),
    ("POST", "/runs/restore", restore_run, True),
    ("POST", "/runs/log-metric", log_metric, True),
    ("POST", "/runs/log-parameter", log_param, True),
    ("POST", "/runs/set-tag", set_tag, True),
    ("POST", "/runs/delete-tag", delete_tag, True),
    ("POST", "/runs/log-batch", log_batch, True),
    ("POST", "/runs/log-inputs", log_inputs, True),
    ("POST", "/runs/outputs", log_outputs, True),
    ("POST", "/runs/search", search_runs, False),
    ("GET", "/metrics/get-history", metric_history, False),
]
