"""litemlops' experiments and runs in MLflow's JSON shapes, and MLflow's ids back.

Experiment ids are litemlops' integer ids as strings; MLflow's default experiment
"0" is litemlops' experiment "default" (made when first asked for). Statuses are
MLflow's upper-case names (SCHEDULED is taken as running: litemlops has no queue
of runs). Artifact locations use the proxied `mlflow-artifacts:` scheme, so the
client sends files to this server, which keeps them in the content-addressed store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litemlops.clock import to_ms
from litemlops.server.mlflow.base import not_found
from litemlops.server.mlflow.errors import invalid

if TYPE_CHECKING:
    from litemlops.store.tracking.tracker import Experiment, RunInfo, Tracker

DEFAULT_ID = "0"
DEFAULT_NAME = "default"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"

STATUS_OUT = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
STATUS_IN = {v: k for k, v in STATUS_OUT.items()} | {"SCHEDULED": "running"}


def status_in(value: str) -> str:
    try:
        return STATUS_IN[value.upper()]
    except KeyError:
        raise invalid(f"invalid run status {value!r}; use one of {sorted(STATUS_IN)}") from None


def find_experiment(tracker: Tracker, experiment_id: str) -> Experiment:
    """The experiment an MLflow id names ("0": the default one)."""
    from litemlops.errors import ExperimentNotFoundError

    if experiment_id == DEFAULT_ID:
        return tracker.create_experiment(DEFAULT_NAME)
    if not experiment_id.isascii() or not experiment_id.isdigit() or len(experiment_id) > 18:
        raise not_found("experiment with id", experiment_id)
    try:
        return tracker.get_experiment(int(experiment_id))
    except ExperimentNotFoundError:
        raise not_found("experiment with id", experiment_id) from None


def pairs(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def artifact_root(experiment_id: int) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def experiment_json(exp: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(exp.experiment_id),
        "name": exp.name,
        "artifact_location": artifact_root(exp.experiment_id),
        "lifecycle_stage": exp.lifecycle_stage,
        "creation_time": to_ms(exp.created_at),
        "last_update_time": to_ms(exp.updated_at or exp.created_at),
        "tags": pairs(exp.tags),
    }


def run_json(run: RunInfo) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.tags.get(USER_TAG, ""),
        "status": STATUS_OUT[run.status],
        "start_time": to_ms(run.start_time),
        "artifact_uri": f"{artifact_root(run.experiment_id)}/{run.run_id}/artifacts",
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = to_ms(run.end_time)
    tags = {**run.tags, RUN_NAME_TAG: run.name}
    return {
        "info": info,
        "data": {
            "metrics": [{"key": k, "value": v} for k, v in run.metrics.items()],
            "params": pairs(run.params),
            "tags": pairs(tags),
        },
        "inputs": {},
    }
