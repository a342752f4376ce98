"""GET /health (the process answers), /ready (stores open, the service's model loaded)
and /metrics (Prometheus text)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from litemlops.errors import LitemlopsError
from litemlops.server.http import JSON, error_response
from litemlops.server.schemas import HealthAnswer, ReadyAnswer
from litemlops.server.state import resolve_service, state_of


async def health(request: Request) -> Response:
    answer: HealthAnswer = {"status": "ok"}
    return JSON(answer)


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
    answer: ReadyAnswer = {"ready": True, "model": model.name, "version": model.version}
    return JSON(answer)


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    # Off the event loop: collectors read the run history and scan the online store.
    text = await run_in_threadpool(generate_latest, state_of(request).metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def probe_routes() -> list[BaseRoute]:
    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
