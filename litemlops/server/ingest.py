"""POST /push/{view} (rows written to a feature view now) and /feedback (labels for
earlier predictions, joined to them later by request_id)."""

from __future__ import annotations

import json
from typing import Any, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from litemlops import events
from litemlops.errors import LitemlopsError, NotFoundError
from litemlops.logger import get_logger
from litemlops.scheduler.workers import WorkerDiedError, WorkerTimeoutError
from litemlops.server.http import JSON, ApiError, parse
from litemlops.server.schemas import FeedbackAnswer, FeedbackBody
from litemlops.server.state import ServerState, require_token, state_of
from litemlops.store.features.online_features import PushTarget

log = get_logger("litemlops.server")


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
    state.deployments.feedback(body.request_id, body.label)
    answer: FeedbackAnswer = {"accepted": True, "request_id": body.request_id}
    return JSON(answer, status_code=202)


def ingest_routes() -> list[BaseRoute]:
    return [
        Route("/push/{view}", push, methods=["POST"]),
        Route("/feedback", feedback, methods=["POST"]),
    ]
