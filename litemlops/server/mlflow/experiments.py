"""MLflow's experiment endpoints: create, get (by id or name), search, update, delete,
restore and tags, on litemlops' tracker."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from litemlops.errors import ExperimentNotFoundError
from litemlops.server.mlflow import filters
from litemlops.server.mlflow.base import (
    Args,
    Table,
    integer,
    items,
    key_values,
    next_offset_token,
    not_found,
    offset_token,
    text,
)
from litemlops.server.mlflow.errors import MlflowError, invalid
from litemlops.server.mlflow.translate import experiment_json, find_experiment
from litemlops.store.tracking.lifecycle import check_experiment_name

if TYPE_CHECKING:
    from litemlops.platform import Platform
    from litemlops.store.tracking.tracker import Experiment

MAX_EXPERIMENTS = 50_000
_VIEWS = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": ("active", "deleted")}
_ORDER = re.compile(
    r"\s*(?:(?:attributes?|attr)\.)?(?P<field>name|experiment_id|creation_time|last_update_time)"
    r"(?:\s+(?P<dir>(?i:asc|desc)))?\s*"
)


def create_experiment(platform: Platform, args: Args) -> dict[str, Any]:
    name = check_experiment_name(text(args, "name"))
    tracker = platform.tracker
    try:
        tracker.get_experiment(name)
    except ExperimentNotFoundError:
        pass
    else:
        raise MlflowError(
            "RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists; use another name"
        )
    exp = tracker.create_experiment(name, tags=dict(key_values(args, "tags")))
    return {"experiment_id": str(exp.experiment_id)}


def get_experiment(platform: Platform, args: Args) -> dict[str, Any]:
    exp = find_experiment(platform.tracker, text(args, "experiment_id"))
    return {"experiment": experiment_json(exp)}


def get_experiment_by_name(platform: Platform, args: Args) -> dict[str, Any]:
    name = text(args, "experiment_name")
    try:
        exp = platform.tracker.get_experiment(name)
    except ExperimentNotFoundError:
        raise not_found("experiment with name", name) from None
    return {"experiment": experiment_json(exp)}


def update_experiment(platform: Platform, args: Args) -> dict[str, Any]:
    exp = find_experiment(platform.tracker, text(args, "experiment_id"))
    new_name = args.get("new_name")
    if new_name:
        platform.tracker.rename_experiment(exp.experiment_id, text(args, "new_name"))
    return {}


def delete_experiment(platform: Platform, args: Args) -> dict[str, Any]:
    exp = find_experiment(platform.tracker, text(args, "experiment_id"))
    platform.tracker.delete_experiment(exp.experiment_id)
    return {}


def restore_experiment(platform: Platform, args: Args) -> dict[str, Any]:
    exp = find_experiment(platform.tracker, text(args, "experiment_id"))
    platform.tracker.restore_experiment(exp.experiment_id)
    return {}


def set_experiment_tag(platform: Platform, args: Args) -> dict[str, Any]:
    exp = find_experiment(platform.tracker, text(args, "experiment_id"))
    platform.tracker.set_experiment_tag(
        exp.experiment_id, text(args, "key"), text(args, "value", required=False)
    )
    return {}


def search_experiments(platform: Platform, args: Args) -> dict[str, Any]:
    """Filter on name and tags (=, !=, LIKE, ILIKE joined by AND), order, offset pages."""
    view = str(args.get("view_type") or "ACTIVE_ONLY").upper()
    if view not in _VIEWS:
        raise invalid(f"invalid view_type {view!r}; use one of {sorted(_VIEWS)}")
    limit = integer(args, "max_results", 1000)
    assert limit is not None
    if not 1 <= limit <= MAX_EXPERIMENTS:
        raise invalid(f"max_results must be between 1 and {MAX_EXPERIMENTS}, got {limit}")
    tests = filters.parse(str(args.get("filter") or ""), "experiment")
    found = [
        e
        for e in platform.tracker.list_experiments()
        if e.lifecycle_stage in _VIEWS[view] and all(test(e) for test in tests)
    ]
    for field, descending in reversed(_order(items(args, "order_by"))):
        found.sort(key=functools.partial(_sort_value, field=field), reverse=descending)
    start = offset_token(args.get("page_token"))
    page = found[start : start + limit]
    answer: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if start + limit < len(found):
        answer["next_page_token"] = next_offset_token(start + limit)
    return answer


def _order(order_by: list[Any]) -> list[tuple[str, bool]]:
    if not order_by:
        return [("creation_time", True), ("experiment_id", True)]
    terms = []
    for item in order_by:
        match = _ORDER.fullmatch(item) if isinstance(item, str) else None
        if match is None:
            raise invalid(
                f"invalid order_by {item!r}: use name, experiment_id, creation_time or "
                "last_update_time, then ASC or DESC"
            )
        terms.append((match["field"], (match["dir"] or "asc").lower() == "desc"))
    if all(field != "experiment_id" for field, _ in terms):
        terms.append(("experiment_id", False))
    return terms


def _sort_value(exp: Experiment, *, field: str) -> Any:
    if field == "name":
        return exp.name
    if field == "experiment_id":
        return exp.experiment_id
    if field == "creation_time":
        return exp.created_at
    return exp.updated_at or exp.created_at


ROUTES: Table = [
    ("POST", "/experiments/create", create_experiment, True),
    ("GET", "/experiments/get", get_experiment, False),
    ("GET", "/experiments/get-by-name", get_experiment_by_name, False),
    ("POST", "/experiments/search", search_experiments, False),
    ("GET", "/experiments/search", search_experiments, False),
    ("POST", "/experiments/update", update_experiment, True),
    ("POST", "/experiments/delete", delete_experiment, True),
    ("POST", "/experiments/restore", restore_experiment, True),
    ("POST", "/experiments/set-experiment-tag", set_experiment_tag, True),
]
