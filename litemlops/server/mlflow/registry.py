"""MLflow's model registry endpoints on litemlops' registry.

A version is registered from a model MLflow's client logged (`models:/<model id>`
or `runs:/<run id>/<name>`): its sklearn model file becomes the run's litemlops
model (see `litemlops.store.tracking.mlflow_models`), so litemlops serves it and
checks its sha256 before each load. Alias moves go through `set_alias` and
`delete_alias`, so each lands in the alias history with its reason. Deleting or
renaming registered models and versions is refused: a version's lineage, alias
history and served predictions refer to it by name and number.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from litemlops.clock import to_ms
from litemlops.errors import ModelNotFoundError
from litemlops.server.mlflow import filters
from litemlops.server.mlflow.base import (
    Args,
    Table,
    integer,
    key_values,
    next_offset_token,
    offset_token,
    text,
)
from litemlops.server.mlflow.errors import MlflowError, invalid
from litemlops.server.mlflow.translate import artifact_root
from litemlops.store.tracking.mlflow_models import MlflowModels

if TYPE_CHECKING:
    from litemlops.platform import Platform
    from litemlops.store.tracking.registry import ModelVersion, RegisteredModel

REASON = "through MLflow's API"
_VERSION_FILTER = re.compile(r"\s*(name|run_id)\s*=\s*(['\"])(.*?)\2\s*")


def version_json(platform: Platform, v: ModelVersion) -> dict[str, Any]:
    mlflow_model = v.model_name if v.model_name.startswith("m-") else None
    return {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": to_ms(v.created_at),
        "last_updated_timestamp": to_ms(v.created_at),
        "current_stage": "None",
        "description": v.description,
        "source": f"models:/{mlflow_model}" if mlflow_model else f"runs:/{v.run_id}/{v.model_name}",
        "run_id": v.run_id,
        "status": "READY",
        "tags": [],
        "aliases": list(v.aliases),
        **({"model_id": mlflow_model} if mlflow_model else {}),
    }


def model_json(platform: Platform, m: RegisteredModel) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": to_ms(m.created_at),
        "last_updated_timestamp": to_ms(m.updated_at),
        "description": m.description,
        "tags": [{"key": k, "value": v} for k, v in m.tags.items()],
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
    }
    if m.latest_version is not None:
        latest = platform.registry.get_model_version(m.name, m.latest_version)
        answer["latest_versions"] = [version_json(platform, latest)]
    return answer


def _version_number(args: Args) -> int:
    number = integer(args, "version")
    if number is None or number < 1:
        raise invalid(f"version must be a positive integer, got {args.get('version')!r}")
    return number


def create_registered_model(platform: Platform, args: Args) -> dict[str, Any]:
    name = text(args, "name")
    try:
        platform.registry.get_registered_model(name)
    except ModelNotFoundError:
        pass
    else:
        raise MlflowError(
            "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists"
        )
    model = platform.registry.create_registered_model(
        name, text(args, "description", required=False), dict(key_values(args, "tags"))
    )
    return {"registered_model": model_json(platform, model)}


def get_registered_model(platform: Platform, args: Args) -> dict[str, Any]:
    model = platform.registry.get_registered_model(text(args, "name"))
    return {"registered_model": model_json(platform, model)}


def update_registered_model(platform: Platform, args: Args) -> dict[str, Any]:
    name = text(args, "name")
    if "description" in args:
        platform.registry.set_description(name, text(args, "description", required=False))
    return get_registered_model(platform, {"name": name})


def search_registered_models(platform: Platform, args: Args) -> dict[str, Any]:
    filter_string = str(args.get("filter") or "")
    found = platform.registry.list_registered_models()
    tests = filters.parse(filter_string, "registered model")
    found = [m for m in found if all(test(m) for test in tests)]
    return _page(args, [model_json(platform, m) for m in found], "registered_models")


def _page(args: Args, found: list[dict[str, Any]], field: str) -> dict[str, Any]:
    limit = integer(args, "max_results", 100) or 100
    if not 1 <= limit <= 10_000:
        raise invalid(f"max_results must be between 1 and 10000, got {limit}")
    start = offset_token(args.get("page_token"))
    answer: dict[str, Any] = {field: found[start : start + limit]}
    if start + limit < len(found):
        answer["next_page_token"] = next_offset_token(start + limit)
    return answer


def create_model_version(platform: Platform, args: Args) -> dict[str, Any]:
    name = text(args, "name")
    source = text(args, "source", required=False)
    model_id = str(args.get("model_id") or "")
    models = MlflowModels(platform.tracker)
    if not model_id and source.startswith("models:/m-"):
        model_id = source[len("models:/") :].split("/", 1)[0]
    if not model_id:
        model_id = _model_of_run_source(platform, source)
    logged = models.record_as_litemlops_model(model_id)
    version = platform.registry.register_model(
        logged.uri,
        name,
        text(args, "description", required=False),
        allow_unfinished=True,
        allow_duplicate=True,  # as MLflow: each registration is a new version
    )
    return {"model_version": version_json(platform, version)}


def _model_of_run_source(platform: Platform, source: str) -> str:
    """The logged model a `runs:/<run id>/<name>` source names (MLflow 2's form)."""
    match = re.fullmatch(r"runs:/([0-9a-f]{32})/(.+)", source)
    if match is None:
        raise invalid(
            f"source {source!r} is not a model MLflow's client logged here: give "
            "models:/<model id> or runs:/<run id>/<name>"
        )
    run = platform.tracker.get_run(match.group(1))
    for found in MlflowModels(platform.tracker).search([run.experiment_id], 10_000):
        if found.run_id == run.run_id and found.name == match.group(2).strip("/"):
            return found.model_id
    raise MlflowError(
        "RESOURCE_DOES_NOT_EXIST", f"run {run.run_id} logged no model {match.group(2)!r}"
    )


def get_model_version(platform: Platform, args: Args) -> dict[str, Any]:
    version = platform.registry.get_model_version(text(args, "name"), _version_number(args))
    return {"model_version": version_json(platform, version)}


def update_model_version(platform: Platform, args: Args) -> dict[str, Any]:
    name, number = text(args, "name"), _version_number(args)
    if "description" in args:
        platform.registry.set_description(name, text(args, "description", required=False), number)
    return get_model_version(platform, {"name": name, "version": number})


def search_model_versions(platform: Platform, args: Args) -> dict[str, Any]:
    filter_string = str(args.get("filter") or "")
    match = _VERSION_FILTER.fullmatch(filter_string)
    if match is None:
        raise invalid(
            f"invalid model version filter {filter_string!r}: litemlops takes "
            "name = '<name>' or run_id = '<run id>'"
        )
    field, value = match.group(1), match.group(3)
    registry = platform.registry
    if field == "name":
        versions = registry.list_versions(value)
    else:
        versions = [
            v for m in registry.list_registered_models() for v in registry.list_versions(m.name)
            if v.run_id == value
        ]  # fmt: skip
    return _page(args, [version_json(platform, v) for v in versions], "model_versions")


def download_uri(platform: Platform, args: Args) -> dict[str, Any]:
    version = platform.registry.get_model_version(text(args, "name"), _version_number(args))
    if not version.model_name.startswith("m-"):
        raise MlflowError(
            "INVALID_STATE",
            f"{version.uri} was logged by litemlops, not by MLflow's client; write it as an "
            "MLflow model with `litemlops models export NAME/VERSION --format mlflow DIR`",
        )
    model = MlflowModels(platform.tracker).get(version.model_name)
    root = artifact_root(model.experiment_id)
    return {"artifact_uri": f"{root}/models/{model.model_id}/artifacts"}


def set_alias(platform: Platform, args: Args) -> dict[str, Any]:
    name, alias = text(args, "name"), text(args, "alias")
    platform.registry.set_alias(name, alias, _version_number(args), reason=f"set {REASON}")
    return {}


def delete_alias(platform: Platform, args: Args) -> dict[str, Any]:
    name, alias = text(args, "name"), text(args, "alias")
    platform.registry.delete_alias(name, alias, reason=f"deleted {REASON}")
    return {}


def get_by_alias(platform: Platform, args: Args) -> dict[str, Any]:
    version = platform.registry.get_alias(text(args, "name"), text(args, "alias"))
    return {"model_version": version_json(platform, version)}


def get_latest_versions(platform: Platform, args: Args) -> dict[str, Any]:
    model = platform.registry.get_registered_model(text(args, "name"))
    if model.latest_version is None:
        return {"model_versions": []}
    latest = platform.registry.get_model_version(model.name, model.latest_version)
    return {"model_versions": [version_json(platform, latest)]}


def refused(platform: Platform, args: Args) -> dict[str, Any]:
    raise MlflowError(
        "NOT_IMPLEMENTED",
        "litemlops keeps registered models and versions under their names and numbers "
        "(lineage, alias history and served predictions refer to them); move an alias instead",
    )


ROUTES: Table = [
    ("POST", "/registered-models/create", create_registered_model, True),
    ("GET", "/registered-models/get", get_registered_model, False),
    ("PATCH", "/registered-models/update", update_registered_model, True),
    ("GET", "/registered-models/search", search_registered_models, False),
    ("POST", "/registered-models/get-latest-versions", get_latest_versions, False),
    ("GET", "/registered-models/get-latest-versions", get_latest_versions, False),
    ("POST", "/registered-models/alias", set_alias, True),
    ("DELETE", "/registered-models/alias", delete_alias, True),
    ("GET", "/registered-models/alias", get_by_alias, False),
    ("POST", "/registered-models/rename", refused, True),
    ("DELETE", "/registered-models/delete", refused, True),
    ("POST", "/model-versions/create", create_model_version, True),
    ("GET", "/model-versions/get", get_model_version, False),
    ("PATCH", "/model-versions/update", update_model_version, True),
    ("GET", "/model-versions/search", search_model_versions, False),
    ("GET", "/model-versions/get-download-uri", download_uri, False),
    ("DELETE", "/model-versions/delete", refused, True),
    ("POST", "/model-versions/transition-stage", refused, True),
]
