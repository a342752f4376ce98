"""POST /inference and /predict/{model}: parse, one call to the serving layer, render.

The work (look features up, score, choose, log `prediction_served`) is the
library's `litemlops.serving.Service`; its errors become answers in
`litemlops.server.errors`.
"""

from __future__ import annotations

import time

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from litemlops.server.http import JSON, ApiError, parse
from litemlops.server.schemas import InferenceAnswer, PredictAnswer
from litemlops.server.state import resolve_service, state_of


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
    answer: InferenceAnswer = {
        "request_id": choice.request_id,
        "prediction": choice.prediction,
        "scores": choice.scores,
        "model": choice.model,
        "version": choice.version,
    }
    return JSON(answer)


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
    answer: PredictAnswer = {
        "model": result.model,
        "version": result.version,
        "predictions": result.predictions,
    }
    return JSON(answer)


def prediction_routes() -> list[BaseRoute]:
    return [
        Route("/inference", inference, methods=["POST"]),
        Route("/predict/{model:path}", predict, methods=["POST"]),
    ]
