"""MLflow 3's logged-model endpoints: what `mlflow.<flavour>.log_model` calls.

The client creates the model, uploads its folder through the artifact proxy to the
model's artifact location, then marks it READY; `litemlops.store.tracking.mlflow_models`
keeps the records and says how a registered one becomes a litemlops model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litemlops.server.mlflow import filters
from litemlops.server.mlflow.base import Args, Table, integer, items, key_values, text
from litemlops.server.mlflow.errors import invalid
from litemlops.server.mlflow.translate import artifact_root, find_experiment, pairs
from litemlops.store.tracking.mlflow_models import MlflowModel, MlflowModels

if TYPE_CHECKING:
    from litemlops.platform import Platform

MAX_MODELS = 10_000
_STATUS_OUT = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
_STATUS_IN = {v: k for k, v in _STATUS_OUT.items()} | {"1": "PENDING", "2": "READY", "3": "FAILED"}


def model_json(model: MlflowModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "artifact_uri": f"{artifact_root(model.experiment_id)}/models/{model.model_id}/artifacts",
        "status": _STATUS_OUT[model.status],
        "tags": pairs(model.tags),
    }
    if model.model_type:
        info["model_type"] = model.model_type
    if model.run_id:
        info["source_run_id"] = model.run_id
    return {"info": info, "data": {"params": pairs(model.params), "metrics": []}}


def create_logged_model(platform: Platform, args: Args) -> dict[str, Any]:
    exp = find_experiment(platform.tracker, text(args, "experiment_id"))
    model = MlflowModels(platform.tracker).create(
        exp.experiment_id,
        text(args, "name", required=False) or "model",
        args.get("source_run_id") or None,
        args.get("model_type") or None,
        dict(key_values(args, "tags")),
        dict(key_values(args, "params")),
    )
    return {"model": model_json(model)}


def get_logged_model(platform: Platform, args: Args) -> dict[str, Any]:
    return {"model": model_json(MlflowModels(platform.tracker).get(text(args, "model_id")))}


def finalize_logged_model(platform: Platform, args: Args) -> dict[str, Any]:
    status = str(args.get("status", ""))
    if status not in _STATUS_IN:
        raise invalid(
            f"invalid logged model status {status!r}; use one of {sorted(_STATUS_OUT.values())}"
        )
    model = MlflowModels(platform.tracker).update(text(args, "model_id"), status=_STATUS_IN[status])
    return {"model": model_json(model)}


def delete_logged_model(platform: Platform, args: Args) -> dict[str, Any]:
    MlflowModels(platform.tracker).update(text(args, "model_id"), lifecycle_stage="deleted")
    return {}


def set_logged_model_tags(platform: Platform, args: Args) -> dict[str, Any]:
    MlflowModels(platform.tracker).update(
        text(args, "model_id"), tags=dict(key_values(args, "tags"))
    )
    return {}


def delete_logged_model_tag(platform: Platform, args: Args) -> dict[str, Any]:
    MlflowModels(platform.tracker).update(text(args, "model_id"), delete_tag=text(args, "tag_key"))
    return {}


def log_logged_model_params(platform: Platform, args: Args) -> dict[str, Any]:
    MlflowModels(platform.tracker).update(
        text(args, "model_id"), params=dict(key_values(args, "params"))
    )
    return {}


def search_logged_models(platform: Platform, args: Args) -> dict[str, Any]:
    """The experiments' models, newest first, filtered on name and tags (see `filters`)."""
    tracker = platform.tracker
    ids = [find_experiment(tracker, str(i)).experiment_id for i in items(args, "experiment_ids")]
    tests = filters.parse(str(args.get("filter") or ""), "logged model")
    limit = integer(args, "max_results", 100) or 100
    if not 1 <= limit <= MAX_MODELS:
        raise invalid(f"max_results must be between 1 and {MAX_MODELS}, got {limit}")
    found = [m for m in MlflowModels(tracker).search(ids, MAX_MODELS) if all(t(m) for t in tests)]
    return {"models": [model_json(m) for m in found[:limit]]}


def record_logged_model(platform: Platform, args: Args) -> dict[str, Any]:
    """MLflow's older run-level model record: the logged model holds it all already."""
    platform.tracker.get_run(text(args, "run_id"))
    return {}


ROUTES: Table = [
    ("POST", "/logged-models", create_logged_model, True),
    ("POST", "/logged-models/search", search_logged_models, False),
    ("GET", "/logged-models/{model_id}", get_logged_model, False),
    ("PATCH", "/logged-models/{model_id}", finalize_logged_model, True),
    ("DELETE", "/logged-models/{model_id}", delete_logged_model, True),
    ("PATCH", "/logged-models/{model_id}/tags", set_logged_model_tags, True),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}", delete_logged_model_tag, True),
    ("POST", "/logged-models/{model_id}/params", log_logged_model_params, True),
    ("POST", "/runs/log-model", record_logged_model, True),
]
