"""The Starlette app: online predictions from the in-process stores, push, feedback,
health, readiness, metrics, and the admin API.

`create_app(platform)` serves an already open platform (the main job, tests);
`create_app(config=...)` opens the home in the app's lifespan and closes it after,
so an embedding application can mount the app and let it manage its own state.
Starlette runs the lifespan of the top application only, so a mounted app runs its
own from its first request (see `LitemlopsApp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from litemlops import events
from litemlops.config import Config
from litemlops.errors import LitemlopsError, NotFoundError
from litemlops.logger import get_logger, home_log
from litemlops.scheduler.workers import WorkerDiedError, WorkerTimeoutError
from litemlops.server.errors import HANDLED, handle_error
from litemlops.server.http import JSON, ApiError, error_response, parse, read_json
from litemlops.server.metrics import MetricsMiddleware, ServerMetrics
from litemlops.server.security import ALT_HEADER, HEADER, admin_token, token_matches
from litemlops.serving.errors import ServiceNotReadyError
from litemlops.serving.models import ModelCache, prepare_model
from litemlops.serving.service import Service as LibraryService
from litemlops.serving.service import ServiceSpec
from litemlops.store.features.online_features import PushTarget

if TYPE_CHECKING:
    from litemlops.platform import Platform

log = get_logger("litemlops.server")

INT64 = (-(2**63), 2**63 - 1)
#: How long a stopping app waits for pipeline tasks in progress before leaving them.
SHUTDOWN_GRACE_SECONDS = 10.0
#: How long loading a model version in a worker process may take.
MODEL_LOAD_TIMEOUT = 300.0


#: What `/inference` runs (kept under its old name: `create_app(service=Service(...))`).
Service = ServiceSpec


@dataclass
class ServerState:
    platform: Platform
    token: str
    service: LibraryService
    models: ModelCache
    metrics: ServerMetrics
    max_body_bytes: int
    max_items: int
    #: Seconds a client may take to send a request body (408 after).
    body_timeout: float
    inference_body: type[BaseModel] = field(init=False)
    #: The inference body's field of candidate ids (`<entity>s`).
    ids_field: str = field(init=False)
    predict_body: type[PredictBody] = field(init=False)
    push_body: type[PushBody] = field(init=False)
    #: Why the service cannot answer (its features are missing), None when it can.
    service_error: str | None = field(init=False, default=None)

    @property
    def config(self) -> Config:
        return self.platform.config

    async def read_body(self, request: Request) -> Any:
        """The request's JSON body, within this server's size and time limits."""
        return await read_json(request, self.max_body_bytes, self.body_timeout)


# -- bodies -----------------------------------------------------------------------------------

# Strict: "0.5" and true are not numbers (an int still is).
FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _integral(value: Any) -> Any:
    """1001.0 as 1001: JSON Schema's "integer" is any number without a fraction, and
    the OpenAPI document promises that; "1001" and true stay refused (strict)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def integer(ge: int, le: int) -> Any:
    """An integer in [ge, le] as JSON Schema means one: 1001 or 1001.0, not "1001" nor
    true."""
    return Annotated[
        int,
        BeforeValidator(_integral),
        Field(strict=True, ge=ge, le=le),
        # pydantic would write the bounds as "ge"/"le" past the validator: say it plainly.
        WithJsonSchema({"type": "integer", "minimum": ge, "maximum": le}),
    ]


Int64: Any = integer(*INT64)
RequestId = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


def _integral_items(values: Any) -> Any:
    """`_integral` for a list, in one call: the hot path's ids are checked in Rust, and
    a Python call per id would cost more than the rest of their validation."""
    if isinstance(values, list) and float in map(type, values):
        return [_integral(v) for v in values]
    return values


def _inference_body(entity: str, key_type: type, max_items: int) -> type[BaseModel]:
    item: Any = (
        Annotated[int, Field(strict=True, ge=INT64[0], le=INT64[1])]
        if key_type is int
        else RequestId  # a key's text: 1 to 200 characters
    )
    ids = Field(min_length=1, max_length=max_items, json_schema_extra={"uniqueItems": True})
    fields: dict[str, Any] = {
        "request_id": (RequestId, ...),
        f"{entity}s": (Annotated[list[item], BeforeValidator(_integral_items), ids], ...),
    }
    return create_model("InferenceRequest", __config__=ConfigDict(extra="forbid"), **fields)


class PredictBody(BaseModel):
    """Entity rows (features looked up online) or feature rows: one of them, not both."""

    model_config = ConfigDict(
        extra="forbid",
        # What `predict` checks, so the document says it: exactly one of the two is sent.
        json_schema_extra={
            "oneOf": [
                {"required": ["entities"], "properties": {"entities": {"type": "array"}}},
                {"required": ["features"], "properties": {"features": {"type": "array"}}},
            ]
        },
    )
    request_id: RequestId | None = None
    entities: list[dict[str, Int64 | str]] | None = None
    features: list[dict[str, FiniteNumber]] | None = None


def _predict_body(
    max_items: int, keys: dict[str, str] | None = None, inputs: Sequence[str] = ()
) -> type[PredictBody]:
    """`PredictBody` with this server's bound on rows, so the document shows it.

    keys: the join keys (name -> dtype) every feature view of the home shares; an
    entity row then has exactly those, typed. None (views keyed differently, or none
    yet): a row maps key names to integers or text, and the model's views decide.
    inputs: the service's feature names, which the document says a feature row has
    (the served model's inputs; another model checks its own when asked).
    """
    rows = Field(min_length=1, max_length=max_items)
    feature_row: Any = dict[str, FiniteNumber]
    if inputs:
        shown = {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "required": list(inputs),
            "description": "Feature name -> value; the served model needs these; another "
            "model named in the path needs its own inputs",
        }
        feature_row = Annotated[dict[str, FiniteNumber], WithJsonSchema(shown)]
    row: Any = dict[str, Int64 | str]
    if keys:
        typed: dict[str, Any] = {
            k: (Int64 if d in ("int32", "int64") else RequestId, ...) for k, d in keys.items()
        }
        row = create_model("EntityRow", __config__=ConfigDict(extra="forbid"), **typed)
    return create_model(
        "PredictRequest",
        __base__=PredictBody,
        entities=(Annotated[list[row], rows] | None, None),
        features=(Annotated[list[feature_row], rows] | None, None),
    )


def _shared_keys(platform: Platform) -> dict[str, str] | None:
    """The join keys every feature view of the home has, if they all have the same."""
    store = platform.features
    found: set[tuple[tuple[str, str], ...]] = set()
    try:
        for view in store.list_feature_views():
            times = (view.timestamp_field, view.created_timestamp_field)
            feature = next((f.name for f in view.schema if f.name not in times), None)
            if feature is not None:
                found.add(tuple(sorted(store.join_keys([f"{view.name}:{feature}"]).items())))
    except LitemlopsError:
        return None
    return dict(found.pop()) if len(found) == 1 else None


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(strict=True, min_length=1, max_length=200)]
    label: FiniteNumber


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]] = Field(min_length=1)
    to: Literal["online", "offline", "both"] = "online"


def _push_body(max_items: int) -> type[PushBody]:
    """`PushBody` with this server's bound on rows, so the document shows it."""
    rows = Field(min_length=1, max_length=max_items)
    return create_model(
        "PushRequest", __base__=PushBody, rows=(Annotated[list[dict[str, Any]], rows], ...)
    )


# -- helpers ----------------------------------------------------------------------------------


def state_of(request: Request) -> ServerState:
    return request.app.state.litemlops


def require_token(request: Request) -> None:
    state = state_of(request)
    presented = request.headers.get(HEADER) or request.headers.get(ALT_HEADER)
    if not token_matches(presented, state.token):
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint changes state: send the admin token as 'Authorization: Bearer "
            "<token>' (it is in <home>/token)",
        )


# -- endpoints --------------------------------------------------------------------------------


async def inference(request: Request) -> Response:
    """The course's contract: the best of the candidate entities, with every score."""
    start = time.perf_counter()
    state = state_of(request)
    service = state.service
    if state.service_error is not None:
        resolve_service(state)
        if state.service_error is not None:
            raise ApiError(503, "not_ready", state.service_error)
    body = parse(state.inference_body, await state.read_body(request))
    choice = service.infer(
        body.request_id,  # type: ignore[attr-defined]
        getattr(body, state.ids_field),
        started=start,
    )
    request.scope["litemlops"].update(model=choice.model, version=choice.version)
    return JSON(
        {
            "request_id": choice.request_id,
            "prediction": choice.prediction,
            "scores": choice.scores,
            "model": choice.model,
            "version": choice.version,
        }
    )


async def predict(request: Request) -> Response:
    """Scores for entity rows (features looked up online) or for feature rows."""
    start = time.perf_counter()
    state = state_of(request)
    body = parse(state.predict_body, await state.read_body(request))
    entities = (
        None
        if body.entities is None
        else [r.model_dump() if isinstance(r, BaseModel) else r for r in body.entities]
    )
    result = state.service.predict(
        request.path_params["model"],
        entities=entities,
        features=body.features,
        request_id=body.request_id,
        started=start,
    )
    request.scope["litemlops"].update(model=result.model, version=result.version)
    return JSON(
        {"model": result.model, "version": result.version, "predictions": result.predictions}
    )


async def push(request: Request) -> Response:
    """Streaming ingestion: rows written now to the online store (or offline, or both)."""
    require_token(request)
    state = state_of(request)
    body = parse(state.push_body, await state.read_body(request))
    _check_json_types(state, request.path_params["view"], body.rows)
    push = state.platform.push_features
    view, rows, to = request.path_params["view"], body.rows, cast(PushTarget, body.to)
    try:
        if to == "online":
            result = push(view, rows)  # SQLite: fast enough for the event loop
        else:
            result = await run_in_threadpool(push, view, rows, to)  # a worker's turn
    except (WorkerDiedError, WorkerTimeoutError) as exc:
        raise ApiError(503, "busy", f"the offline write did not finish: {exc}") from None
    except NotFoundError as exc:
        raise ApiError(404, "not_found", exc.args[0]) from None
    except LitemlopsError as exc:
        raise ApiError(422, "invalid_rows", str(exc)) from None
    return JSON(
        {
            "view": result.view,
            "rows": result.rows,
            "to": result.to,
            "online_written": result.online_written,
            "stale_rows": result.stale_rows,
            "late_rows": result.late_rows,
        }
    )


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int32": (int,),
    "int64": (int,),
    "float32": (int, float),
    "float64": (int, float),
    "bool": (bool,),
    "string": (str,),
    "timestamp": (str,),
}


def _check_json_types(state: ServerState, view: str, rows: list[dict[str, Any]]) -> None:
    """JSON values of the view's types: the store would also read "0.5" as a number
    (it types CSV text that way), but in JSON a quoted number is a wrong type."""
    try:
        dtypes = state.platform.features.columns(view)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", exc.args[0]) from None
    for i, row in enumerate(rows):
        for name, value in row.items():
            dtype = dtypes.get(name)
            if dtype is None or value is None:
                continue  # unknown columns and nulls: the store says what is wrong
            allowed = _JSON_TYPES[dtype]
            if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
                raise ApiError(
                    422,
                    "invalid_rows",
                    f"row {i}: {name} must be a JSON {_JSON_NAMES[dtype]} ({dtype}), "
                    f"got {json.dumps(value)[:50]}",
                )


_JSON_NAMES = {
    "int32": "integer",
    "int64": "integer",
    "float32": "number",
    "float64": "number",
    "bool": "true or false",
    "string": "string",
    "timestamp": "ISO-8601 time string",
}


async def feedback(request: Request) -> Response:
    """A label for an earlier prediction, joined to it later by request_id."""
    require_token(request)
    state = state_of(request)
    body = parse(FeedbackBody, await state.read_body(request))
    log.info(events.FEEDBACK_RECEIVED, request_id=body.request_id, label=body.label)
    return JSON({"accepted": True, "request_id": body.request_id}, status_code=202)


async def health(request: Request) -> Response:
    return JSON({"status": "ok"})


async def ready(request: Request) -> Response:
    """200 once the stores are open and the service's model is loaded and warmed."""
    state = getattr(request.app.state, "litemlops", None)
    if state is None:
        return error_response(503, "not_ready", "starting: the stores are not open yet")
    if state.service_error is not None:
        resolve_service(state)
        if state.service_error is not None:
            return error_response(503, "not_ready", state.service_error)
    try:
        model = state.models.get(state.service.spec.model)
    except LitemlopsError as exc:
        reason = f"no model to serve for {state.service.spec.model!r}: {exc.args[0]}"
        return error_response(503, "not_ready", reason)
    return JSON({"ready": True, "model": model.name, "version": model.version})


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    # Off the event loop: collectors read the run history and scan the online store.
    text = await run_in_threadpool(generate_latest, state_of(request).metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


# -- the app ----------------------------------------------------------------------------------


def _pipeline_counts(holder: dict[str, Platform]) -> Callable[[], Iterable[tuple[str, str, int]]]:
    def counts() -> list[tuple[str, str, int]]:
        platform = holder.get("platform")
        if platform is None:
            return []
        rows = platform.tracker.db.read(
            "SELECT pipeline, state, count(*) AS n FROM pipeline_runs GROUP BY pipeline, state"
        )
        return [(r["pipeline"], r["state"], int(r["n"])) for r in rows]

    return counts


def create_app(
    platform: Platform | None = None,
    *,
    config: Config | None = None,
    start_scheduler: bool = True,
    service: Service | None = None,
    freeze_gc: bool = False,
) -> LitemlopsApp:
    """The app serving `platform`, or a platform it opens on `config` in its lifespan.

    start_scheduler: start the home's scheduler with the app (one per home).
    service: what `/inference` runs (default: `[server]` in config).
    freeze_gc: once started, move every object alive to the collector's permanent
    generation (`gc.freeze`); for a process that only serves (`litemlops run` does),
    not for an application that embeds the app, whose objects it would freeze too.
    """
    if (platform is None) == (config is None):
        raise ValueError("create_app takes a platform or a config, not both")
    holder: dict[str, Platform] = {}
    # Made now: the middleware needs them before the lifespan opens the platform.
    server_metrics = ServerMetrics(
        _pipeline_counts(holder), _monitoring(holder), _freshness(holder)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(app, LitemlopsApp):
            if app.serving:
                raise RuntimeError("this litemlops app is already running its lifespan")
            app.serving = True
        try:
            async with _serve(app):
                yield
        finally:
            if isinstance(app, LitemlopsApp):
                app.serving = False

    @contextlib.asynccontextmanager
    async def _serve(app: Starlette) -> AsyncIterator[None]:
        owned = platform is None
        opened = platform
        if opened is None:
            from litemlops.platform import Platform

            assert config is not None
            opened = Platform(config)
        try:
            holder["platform"] = opened
            if isinstance(app, LitemlopsApp):
                app.event_log = os.path.abspath(opened.config.events_log_path)
            state = _state(opened, service, server_metrics)
            app.state.litemlops = state
            if start_scheduler:
                opened.scheduler.start()
            with contextlib.suppress(LitemlopsError):  # /ready says why, until it loads
                state.models.get(state.service.spec.model)  # loaded and warmed before traffic
            if freeze_gc:
                # What exists now (libraries, stores, the model) lives as long as the
                # process: out of the collector's sight, full collections no longer
                # walk it all, which cut the tail latency under load.
                gc.collect()
                gc.freeze()
            yield
        finally:
            idle = True
            app.state.interrupted_runs = []
            if start_scheduler and opened._scheduler is not None:
                # Stop firing, stop runs at their next task, give the current task a
                # grace period: a run writing to closed stores could crash the process.
                opened.scheduler.shutdown(wait=False)
                app.state.interrupted_runs = opened.pipelines.interrupt_running(
                    "interrupted: the server stopped while it ran"
                )
                if opened.workers is not None:
                    opened.workers.stop()  # their runs are closed: stop the work now
                idle = opened.scheduler.wait_idle(SHUTDOWN_GRACE_SECONDS)
            holder.pop("platform", None)
            state_obj = getattr(app.state, "litemlops", None)
            if state_obj is not None:
                state_obj.models.close()
            if owned and idle:
                opened.close()
            elif owned:
                log.warning(
                    events.STORES_LEFT_OPEN,
                    reason=f"pipeline runs still inside a task after {SHUTDOWN_GRACE_SECONDS} s",
                )

    from litemlops.server.admin import admin_routes
    from litemlops.server.openapi import openapi_route

    routes = [
        Route("/inference", inference, methods=["POST"]),
        Route("/predict/{model:path}", predict, methods=["POST"]),
        Route("/push/{view}", push, methods=["POST"]),
        Route("/feedback", feedback, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *admin_routes(),
        openapi_route(),
    ]
    middleware = [Middleware(MetricsMiddleware, metrics=server_metrics)]
    return LitemlopsApp(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(HANDLED, handle_error),
    )


class LitemlopsApp(Starlette):
    """The litemlops app: a Starlette app that also works mounted in another one.

    Starlette (and FastAPI) run the lifespan of the top application only, so under a
    `Mount` this app's would never open the home. When a request arrives while its
    lifespan is not running, the app runs the lifespan itself, in a task of the
    event loop serving it: the first request waits for the home to open (a failure
    answers 503 and the next request tries again), and the home is closed when that
    loop ends, right after the host's own lifespan (servers cancel what is left on
    their loop when they stop). A host that wants the order in its own hands enters
    `app.router.lifespan_context(app)` in its lifespan instead.
    """

    #: True while the lifespan runs, whoever entered it.
    serving = False
    #: The served home's event file: a request's events belong to it.
    event_log: str | None = None
    #: The self-started lifespan: its event loop, its "started" future, its task.
    _started: tuple[asyncio.AbstractEventLoop, asyncio.Future[None], asyncio.Task[None]] | None = (
        None
    )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and not self.serving:
            try:
                await self._start_itself()
            except Exception as exc:
                log.error(events.REQUEST_FAILED, path=scope.get("path"), error=repr(exc))
                answer = error_response(
                    503, "not_ready", f"litemlops could not start: {type(exc).__name__}: {exc}"
                )
                await answer(scope, receive, send)
                return
        if self.event_log is None:
            await super().__call__(scope, receive, send)
            return
        token = home_log.set(self.event_log)  # another home open in this process
        try:
            await super().__call__(scope, receive, send)
        finally:
            home_log.reset(token)

    async def _start_itself(self) -> None:
        loop = asyncio.get_running_loop()
        started = self._started
        failed = started is not None and started[1].done() and (
            started[1].cancelled() or started[1].exception() is not None
        )
        if started is None or started[0] is not loop or started[2].done() or failed:
            ready: asyncio.Future[None] = loop.create_future()
            task = loop.create_task(self._run_lifespan(ready), name="litemlops-lifespan")
            started = self._started = (loop, ready, task)
        await asyncio.shield(started[1])

    async def _run_lifespan(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self.router.lifespan_context(self):
                ready.set_result(None)
                await asyncio.Event().wait()  # until the loop ends and cancels this
        except BaseException as exc:
            if not ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    ready.cancel()
                else:
                    ready.set_exception(exc)  # the waiting requests answer 503 with it
            elif isinstance(exc, Exception):  # no request to tell: closing failed
                log.error(
                    events.STORES_LEFT_OPEN,
                    reason=f"closing the home failed: {type(exc).__name__}: {exc}",
                    exc_info=exc,
                )
            if not isinstance(exc, Exception):
                raise


def _freshness(holder: dict[str, Platform]) -> Callable[[], Iterable[tuple[str, float]]]:
    def seconds() -> list[tuple[str, float]]:
        platform = holder.get("platform")
        if platform is None:
            return []
        now = platform.clock()
        newest = platform.features.online_event_times()
        return [(view, (now - at).total_seconds()) for view, at in newest.items() if at]

    return seconds


def _monitoring(holder: dict[str, Platform]) -> Callable[[], dict[str, Any] | None]:
    def latest() -> dict[str, Any] | None:
        platform = holder.get("platform")
        if platform is None:
            return None
        from litemlops.monitoring.pipeline import latest_report

        return latest_report(platform)

    return latest


def _state(platform: Platform, spec: ServiceSpec | None, metrics: ServerMetrics) -> ServerState:
    config = platform.config
    server = config.server
    token, _ = admin_token(config)
    if spec is None:
        spec = ServiceSpec("inference", server.model, server.entity, server.feature_refs())
    models = ModelCache(
            platform.registry,
            refresh_seconds=server.alias_refresh_seconds,
            # Loaded in a worker, so this process needs no scikit-learn for a model
            # that scores with numpy (most of a serving process's memory otherwise).
            prepare=(
                functools.partial(
                    platform.workers.call, prepare_model, config, name="model-load",
                    timeout=MODEL_LOAD_TIMEOUT,
                )
                if platform.workers is not None
                else None
            ),
        )
    state = ServerState(
        platform=platform,
        token=token,
        service=LibraryService(spec, platform.features, models),
        models=models,
        metrics=metrics,
        max_body_bytes=server.max_body_bytes,
        body_timeout=server.body_timeout_seconds,
        max_items=server.max_items,
    )
    inputs = [ref.split(":", 1)[1] for ref in spec.features]
    state.predict_body = _predict_body(state.max_items, _shared_keys(platform), inputs)
    state.push_body = _push_body(state.max_items)
    resolve_service(state)
    return state


def resolve_service(state: ServerState) -> None:
    """Type the service's request body by its entity key; on a home that lacks its
    features yet, remember why, so /ready and /inference answer 503 saying so."""
    key_type: type = int
    try:
        key_type = state.service.key_type()
        state.service_error = None
    except ServiceNotReadyError as exc:
        state.service_error = str(exc)
    entity = state.service.spec.entity
    state.inference_body = _inference_body(entity, key_type, state.max_items)
    state.ids_field = f"{entity}s"
