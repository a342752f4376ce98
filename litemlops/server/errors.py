"""Errors as answers: one handler, keyed by the error's class.

Every error answer is `{"error": {"code", "message"}}`. An `ApiError` carries its
own status and code; a library error is looked up in `ANSWERS` (the nearest class
in the error's MRO wins): unknown names 404, states the request conflicts with
409, refused values 422, and the serving layer's own; Starlette's (404, 405) keep
their status; anything else, and a library error that means the server failed
(`FAILURES`), is a 500 whose details go to the log only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from litemlops import events
from litemlops.errors import (
    LitemlopsError,
    NotFoundError,
    RegistryStateError,
    RunStateError,
    TamperedArtifactError,
)
from litemlops.logger import get_logger
from litemlops.scheduler.workers import WorkerDiedError, WorkerError
from litemlops.server.http import ApiError, error_response
from litemlops.serving.errors import (
    DeploymentConflictError,
    DeploymentNotFoundError,
    FeaturesMismatchError,
    InvalidDeploymentError,
    InvalidModelError,
    InvalidRequestError,
    ModelUnavailableError,
    ServedModelUnavailableError,
    ServiceNotReadyError,
    ServingError,
    UnknownEntitiesError,
)

log = get_logger("litemlops.server")

#: (status, code) of each library error an answer is made of (and `answers()` adds the
#: scheduler's, whose module loads APScheduler: not at import).
ANSWERS: dict[type[Exception], tuple[int, str]] = {
    ServiceNotReadyError: (503, "not_ready"),
    DeploymentNotFoundError: (404, "not_found"),
    DeploymentConflictError: (409, "conflict"),
    InvalidDeploymentError: (422, "invalid_deployment"),
    # The service's own model: the server cannot do its job, the request is fine.
    ServedModelUnavailableError: (503, "model_unavailable"),
    ModelUnavailableError: (404, "model_unavailable"),
    InvalidModelError: (422, "invalid_model"),
    UnknownEntitiesError: (404, "unknown_entities"),
    FeaturesMismatchError: (500, "model_features_mismatch"),
    InvalidRequestError: (422, "invalid_request"),
    NotFoundError: (404, "not_found"),
    RegistryStateError: (409, "conflict"),
    RunStateError: (409, "conflict"),
    LitemlopsError: (422, "invalid_request"),
}
#: Library errors that say the server failed, not the request: a 500, logged.
FAILURES: tuple[type[Exception], ...] = (WorkerDiedError, WorkerError, TamperedArtifactError)

#: The classes `handle_error` is registered for (Starlette picks a handler by MRO).
HANDLED: tuple[type[Exception], ...] = (ApiError, HTTPException, LitemlopsError, Exception)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The answer for `exc`."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    if isinstance(exc, HTTPException):
        return _http_error(request, exc)
    answer = _answer_for(exc)
    if answer is None:
        return _unexpected(request, exc)
    if isinstance(exc, ServingError) and exc.model is not None:
        # The metrics say which version failed, as they say which one answered.
        info = request.scope.get("litemlops")
        if info is not None:
            info.update(model=exc.model, version=exc.version)
    return error_response(answer[0], answer[1], str(exc))


@functools.cache
def answers() -> dict[type[Exception], tuple[int, str]]:
    """`ANSWERS` with the scheduler's: not running, so it cannot take the request now."""
    from litemlops.scheduler.scheduler import SchedulerStateError

    return {**ANSWERS, SchedulerStateError: (503, "unavailable")}


def _answer_for(exc: Exception) -> tuple[int, str] | None:
    """(status, code) of a library error; None for one that is the server's failure."""
    if not isinstance(exc, LitemlopsError) or isinstance(exc, FAILURES):
        return None
    table = answers()
    cls = next(c for c in type(exc).__mro__ if c in table)
    if cls is LitemlopsError and isinstance(exc, RuntimeError):
        return 409, "conflict"  # a state that refuses the request (a run not running...)
    return table[cls]


def _http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    detail = str(exc.detail or "error")
    headers = dict(exc.headers or {})
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    if status == 405:
        # Starlette names the methods of the one route it tried; a path served by
        # several routes (an alias: GET, PUT, DELETE) takes all of theirs.
        allowed = ", ".join(allowed_methods(request.app.routes, request.scope))
        headers["Allow"] = allowed
        detail = f"{request.method} is not allowed on {request.url.path}; it takes {allowed}"
    response = error_response(status, code, detail)
    response.headers.update(headers)
    return response


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route of `routes` takes at the scope's path, mounts included."""
    found: set[str] = set()
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            found.update(allowed_methods(route.routes, {**scope, **child}))
        elif isinstance(route, Route):
            found.update(route.methods or ())
    rank = {m: i for i, m in enumerate(_METHOD_ORDER)}
    return sorted(found, key=lambda m: (rank.get(m, len(rank)), m))


def _unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        events.REQUEST_FAILED,
        path=request.url.path,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=exc,
    )
    return error_response(500, "internal_error", "the server failed to answer; see its log")
