"""The admin API under /api/: the registry, tracking runs, pipelines and feature views.

Reads answer in the shapes of the CLI's `--json` output, so a CLI command can
forward to a running server and print what it gets. Changes need the admin
token. The work runs on a worker thread: loading a model after an alias moves,
or a pipeline run in the scheduler's synchronous mode, must not stall the event
loop that answers `/inference`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import fields, is_dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from litemlops.errors import NotFoundError
from litemlops.server.http import JSON, ApiError, parse
from litemlops.server.schemas import (
    INT64_MAX,
    AliasState,
    ResumeAnswer,
    ResumeBody,
    RollbackBody,
    SetAliasBody,
    TriggerAnswer,
    TriggerBody,
)
from litemlops.server.state import ServerState, require_token, state_of
from litemlops.store.tracking.model_uri import ModelURI

if TYPE_CHECKING:
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import Pipeline
    from litemlops.scheduler.runner import PipelineRun, TaskRun

P = ParamSpec("P")
T = TypeVar("T")

#: Most items one listing returns; bounded like request lists are.
MAX_LIMIT = 1000
#: How long a trigger waits for its run to be recorded (never for it to finish),
#: so the answer can name the run; past that it answers without the id.
ADMIT_WAIT_SECONDS = 1.0
_RECENT_RUNS = 20  # a just-admitted run is among its pipeline's newest
SWAP_TRIES = 3  # refreshes an alias change makes before it reports what serves

# -- helpers ----------------------------------------------------------------------------------


def asdict(value: Any) -> dict[str, Any]:  # no deep copy (dataclasses.asdict): jsonable copies
    return {field.name: getattr(value, field.name) for field in fields(value)}


def jsonable(value: Any) -> Any:
    """`value` with dataclasses as dicts, times as ISO text and no NaN (JSON has none)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _answer(value: Any, status_code: int = 200) -> Response:
    return JSON(jsonable(value), status_code=status_code)


async def _call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn` on a worker thread (its library errors are answered by `server.errors`)."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def _optional_json(request: Request, state: ServerState) -> Any:
    """The body, or `{}` when the request has none (no Content-Length, no chunks)."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return {}
    return await state.read_body(request)


def _one(query: QueryParams, name: str) -> str | None:
    """The value of a query param that is given at most once (None: not given)."""
    values = query.getlist(name)
    if len(values) > 1:
        raise ApiError(
            422, "invalid_request", f"{name} is given {len(values)} times; give it once"
        )
    return values[0] if values else None


def _limit(query: QueryParams, default: int) -> int:
    text = _one(query, "limit")
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(
            422, "invalid_request", f"limit must be an integer from 1 to {MAX_LIMIT}, got {text!r}"
        )
    return int(text)


def _version(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", text) or not 1 <= int(text) <= INT64_MAX:
        raise ApiError(422, "invalid_request", f"version must be a positive integer, got {text!r}")
    return int(text)


def _duration(item: PipelineRun | TaskRun) -> float | None:
    if item.started_at is None or item.ended_at is None:
        return None
    return (item.ended_at - item.started_at).total_seconds()


# -- models -----------------------------------------------------------------------------------


async def list_models(request: Request) -> Response:
    return _answer(await _call(state_of(request).platform.registry.list_registered_models))


async def get_model(request: Request) -> Response:
    """The model with its aliases and versions (each version's lineage is on its own page)."""
    registry = state_of(request).platform.registry
    name = request.path_params["name"]

    def read() -> dict[str, Any]:
        model = registry.get_registered_model(name)
        versions = [
            {**{k: v for k, v in asdict(mv).items() if k != "lineage"}, "uri": mv.uri}
            for mv in registry.list_versions(name)
        ]
        return {**asdict(model), "versions": versions}

    return _answer(await _call(read))


async def get_version(request: Request) -> Response:
    registry = state_of(request).platform.registry
    version = _version(request.path_params["version"])
    found = await _call(registry.get_model_version, request.path_params["name"], version)
    return _answer({**asdict(found), "uri": found.uri})


def _alias_state(
    state: ServerState, name: str, alias: str, version: int | None, *, moved: bool = True
) -> AliasState:
    """What the alias names and what the server answers `name@alias` with now.

    `served_version` is None while the server has not loaded `name@alias` (it loads
    the alias's version on first use). A version that failed to load leaves the
    previous one serving: the answer says so rather than pretend.
    """
    followed = ModelURI(name, alias=alias)
    uri = str(followed)

    def served() -> int | None:
        return next((m.version for m in state.models.loaded() if m.uri == uri), None)

    # A few tries: a refresh returns at once while a background swap (begun by a
    # request before the move) is still loading the version the alias named then.
    for attempt in range(SWAP_TRIES if moved else 0):
        if attempt:
            time.sleep(0.1)
        state.models.refresh(followed)  # loads and warms the new version, then swaps it in
        if version is None or served() in (None, version):
            break
    now = served()
    answer: AliasState = {
        "name": name,
        "alias": alias,
        "version": version,
        "served_version": now,
    }
    if moved and now is not None and now != version:
        answer["warning"] = f"the server still answers {uri} with version {now}" + (
            f"; version {version} failed to load or is still loading (see the server's log)"
            if version is not None
            else " until the alias is set again"
        )
    return answer


async def get_alias(request: Request) -> Response:
    state = state_of(request)
    name, alias = request.path_params["name"], request.path_params["alias"]

    def read() -> AliasState:
        version = state.platform.registry.get_alias(name, alias).version
        return _alias_state(state, name, alias, version, moved=False)

    return _answer(await _call(read))


async def set_alias(request: Request) -> Response:
    require_token(request)
    state = state_of(request)
    body = parse(SetAliasBody, await state.read_body(request))
    name, alias = request.path_params["name"], request.path_params["alias"]

    def move() -> AliasState:
        moved = state.platform.registry.set_alias(name, alias, body.version, reason=body.reason)
        return _alias_state(state, name, alias, moved.version)

    return _answer(await _call(move))


async def delete_alias(request: Request) -> Response:
    """Remove the alias; `?reason=` is kept in the alias history."""
    require_token(request)
    state = state_of(request)
    name, alias = request.path_params["name"], request.path_params["alias"]
    reason = _one(request.query_params, "reason") or ""
    if len(reason) > 1000:
        raise ApiError(422, "invalid_request", "reason: at most 1000 characters")

    def remove() -> AliasState:
        state.platform.registry.delete_alias(name, alias, reason=reason)
        return _alias_state(state, name, alias, None)

    return _answer(await _call(remove))


async def rollback(request: Request) -> Response:
    require_token(request)
    state = state_of(request)
    body = parse(RollbackBody, await _optional_json(request, state))
    name, alias = request.path_params["name"], request.path_params["alias"]

    def back() -> AliasState:
        moved = state.platform.registry.rollback(name, alias, reason=body.reason)
        return _alias_state(state, name, alias, moved.version)

    return _answer(await _call(back))


async def alias_history(request: Request) -> Response:
    registry = state_of(request).platform.registry
    name, alias = request.path_params["name"], request.path_params["alias"]
    return _answer(await _call(registry.alias_history, name, alias))


# -- tracking runs ----------------------------------------------------------------------------


async def list_runs(request: Request) -> Response:
    """Runs by MLflow's filter and order_by syntax; `page_token` continues a listing."""
    from litemlops.store.tracking.search import search_runs

    query = request.query_params
    experiments = [e for e in query.getlist("experiment") if e] or None
    order_by = [o for o in query.getlist("order_by") if o] or None
    page = await _call(
        search_runs,
        state_of(request).platform.tracker,
        experiments,
        _one(query, "filter") or "",
        order_by,
        _limit(query, 100),
        _one(query, "page_token") or None,
    )
    return _answer(page)


async def get_run(request: Request) -> Response:
    """A run with its artifacts, logged models and inputs."""
    tracker = state_of(request).platform.tracker
    run_id = request.path_params["run_id"]

    def read() -> dict[str, Any]:
        info = tracker.get_run(run_id)
        logged = [asdict(m) for m in tracker.logged_models(run_id)]
        return {
            **asdict(info),
            "artifacts": tracker.artifact_list(run_id),
            "models": [
                {
                    "name": m["name"],
                    "sha256": m["sha256"],
                    "uri": str(ModelURI(m["name"], run_id=run_id)),
                }
                for m in logged
            ],
            "inputs": tracker.run_inputs(run_id),
        }

    return _answer(await _call(read))


# -- pipelines --------------------------------------------------------------------------------


async def list_pipelines(request: Request) -> Response:
    return _answer([p.describe() for p in state_of(request).platform.catalog])


async def list_pipeline_runs(request: Request) -> Response:
    query = request.query_params
    runner = state_of(request).platform.pipelines
    from litemlops.scheduler.runner import RUN_STATES

    run_state = _one(query, "state")
    if run_state is not None and run_state not in RUN_STATES:
        raise ApiError(
            422, "invalid_request", f"state must be one of {list(RUN_STATES)}, got {run_state!r}"
        )
    found = await _call(
        runner.list_runs,
        pipeline=_one(query, "pipeline") or None,
        state=run_state,
        limit=_limit(query, 50),
    )
    return _answer([{**asdict(r), "duration": _duration(r)} for r in found])


async def get_pipeline_run(request: Request) -> Response:
    """The run with every task attempt (tracebacks stay in `litemlops pipelines show`)."""
    runner = state_of(request).platform.pipelines
    run_id = request.path_params["run_id"]

    def read() -> dict[str, Any]:
        run = runner.get_run(run_id)
        tasks = [
            {**{k: v for k, v in asdict(a).items() if k != "traceback"}, "duration": _duration(a)}
            for a in runner.task_runs(run_id)
        ]
        return {**asdict(run), "duration": _duration(run), "tasks": tasks}

    return _answer(await _call(read))


def _check_params(platform: Platform, pipeline: Pipeline, params: dict[str, Any]) -> None:
    """Refuse bad params now, rather than in a run nobody waits for: a path outside the
    home and the allowed directories is a 400, any other wrong value a 422."""
    from litemlops.scheduler.paths import PathNotAllowedError

    try:
        platform.pipelines.run_params(pipeline, params)
    except PathNotAllowedError as exc:
        raise ApiError(400, "path_not_allowed", str(exc)) from None
    except (ValueError, TypeError) as exc:  # ValidationError is a ValueError
        raise ApiError(422, "invalid_params", str(exc)) from None


async def trigger_pipeline(request: Request) -> Response:
    """Start a run and answer once it is admitted, with the run's id when it is recorded
    in time, or, with `wait`, once it ended or that many seconds passed."""
    require_token(request)
    state = state_of(request)
    body = parse(TriggerBody, await _optional_json(request, state))
    name = request.path_params["name"]
    platform = state.platform
    try:
        pipeline = platform.catalog.get(name)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    _check_params(platform, pipeline, body.params)
    # The runner makes the run id when it admits the run, on the scheduler's thread;
    # this marker in the payload finds that run without waiting for it to end.
    marker = uuid.uuid4().hex

    def start() -> Future[PipelineRun]:
        return platform.scheduler.trigger(
            name, body.params, trigger="manual", payload={"via": "api", "request_id": marker}
        )

    future = await _call(start)
    run_id, run_state = await _admitted(platform, name, marker, future)
    if body.wait > 0 and not future.done():
        ended = asyncio.wrap_future(future)
        try:  # shielded: a wait that runs out (or a client gone) leaves the run going
            run = await asyncio.wait_for(asyncio.shield(ended), timeout=body.wait)
            run_id, run_state = run.run_id, run.state
        except TimeoutError:
            if run_id is not None:
                run_state = (await _call(platform.pipelines.get_run, run_id)).state
    answer: TriggerAnswer = {
        "accepted": True,
        "pipeline": name,
        "run_id": run_id,
        "state": run_state,
        "request_id": marker,
    }
    return _answer(answer, status_code=202)


async def resume_pipeline_run(request: Request) -> Response:
    """Run a failed run again from its failed tasks (its params as they were), and answer
    once it is running again (or ended, when that was quicker)."""
    require_token(request)
    state = state_of(request)
    parse(ResumeBody, await _optional_json(request, state))
    platform = state.platform
    run_id = request.path_params["run_id"]
    run = await _call(platform.pipelines.get_run, run_id)
    if run.state != "failed":
        raise ApiError(409, "conflict", f"run {run_id} is {run.state}; only a failed run resumes")
    future = await _call(platform.scheduler.resume, run.pipeline, run_id)
    deadline = time.monotonic() + ADMIT_WAIT_SECONDS
    while not future.done() and time.monotonic() < deadline:
        if (await _call(platform.pipelines.get_run, run_id)).state != "failed":
            break
        await asyncio.sleep(0.01)
    if future.done() and future.exception() is not None:
        raise future.exception()  # type: ignore[misc]  # answered by `server.errors`
    now = await _call(platform.pipelines.get_run, run_id)
    answer: ResumeAnswer = {
        "accepted": True, "pipeline": run.pipeline, "run_id": run_id, "state": now.state
    }
    return _answer(answer, status_code=202)


async def _admitted(
    platform: Platform, name: str, marker: str, future: Future[PipelineRun]
) -> tuple[str | None, str | None]:
    """(run id, state) of the triggered run once recorded; (None, None) if not in time."""
    runner = platform.pipelines
    deadline = time.monotonic() + ADMIT_WAIT_SECONDS
    while True:
        if future.done():
            exc = future.exception()
            if exc is not None:
                raise exc  # a library error is answered by `server.errors`
            run = future.result()
            return run.run_id, run.state
        recent = await _call(runner.list_runs, pipeline=name, limit=_RECENT_RUNS)
        mine = [r for r in recent if r.payload.get("request_id") == marker]
        if mine:
            return mine[0].run_id, mine[0].state
        if time.monotonic() >= deadline:
            return None, None
        await asyncio.sleep(0.01)


# -- feature views ----------------------------------------------------------------------------


async def list_features(request: Request) -> Response:
    return _answer(await _call(state_of(request).platform.describe_features))


async def get_feature_view(request: Request) -> Response:
    platform = state_of(request).platform
    return _answer(await _call(platform.describe_features, request.path_params["view"]))


# -- monitoring -------------------------------------------------------------------------------


async def monitoring(request: Request) -> Response:
    """The latest drift, performance and data quality, and the alerts with their history."""
    from litemlops.monitoring.pipeline import latest_report

    return _answer(await _call(latest_report, state_of(request).platform))


def admin_routes() -> list[BaseRoute]:
    alias = "/api/models/{name}/aliases/{alias}"
    return [
        Route("/api/models", list_models, methods=["GET"]),
        Route("/api/models/{name}", get_model, methods=["GET"]),
        Route("/api/models/{name}/versions/{version}", get_version, methods=["GET"]),
        Route(alias, get_alias, methods=["GET"]),
        Route(alias, set_alias, methods=["PUT"]),
        Route(alias, delete_alias, methods=["DELETE"]),
        Route(f"{alias}/history", alias_history, methods=["GET"]),
        Route(f"{alias}/rollback", rollback, methods=["POST"]),
        Route("/api/runs", list_runs, methods=["GET"]),
        Route("/api/runs/{run_id}", get_run, methods=["GET"]),
        Route("/api/pipelines", list_pipelines, methods=["GET"]),
        Route("/api/pipelines/runs", list_pipeline_runs, methods=["GET"]),
        Route("/api/pipelines/runs/{run_id}", get_pipeline_run, methods=["GET"]),
        Route("/api/pipelines/{name}/trigger", trigger_pipeline, methods=["POST"]),
        Route("/api/pipelines/runs/{run_id}/resume", resume_pipeline_run, methods=["POST"]),
        Route("/api/features", list_features, methods=["GET"]),
        Route("/api/features/{view}", get_feature_view, methods=["GET"]),
        Route("/api/monitoring", monitoring, methods=["GET"]),
    ]
