"""/api/services/{service}/deployment: start, inspect, promote and end a deployment.

The work is `litemlops.serving.deployments.Deployments`; these handlers parse,
call it and render.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from litemlops.server.admin import _answer, _call, _limit, _one, _optional_json
from litemlops.server.http import ApiError, parse
from litemlops.server.schemas import DeploymentBody, PromoteBody
from litemlops.server.state import require_token, state_of


async def get_deployment(request: Request) -> Response:
    """The service's active deployment (or its last one) with its live report."""
    deployments = state_of(request).deployments
    service = request.path_params["service"]

    def read() -> dict[str, Any]:
        status = deployments.status(service)
        status["history"] = deployments.history(status["id"])
        return status

    return _answer(await _call(read))


async def get_named_deployment(request: Request) -> Response:
    """One of the service's deployments, by id or name (past ones too)."""
    deployments = state_of(request).deployments
    service = request.path_params["service"]
    name = request.path_params["deployment"]

    def read() -> dict[str, Any]:
        status = deployments.status(name, service=service)
        status["history"] = deployments.history(status["id"])
        return status

    return _answer(await _call(read))


async def list_deployments(request: Request) -> Response:
    deployments = state_of(request).deployments
    service = request.path_params["service"]
    limit = _limit(request.query_params, 50)
    if service not in deployments.services:
        raise ApiError(404, "not_found", f"no service {service!r}")
    return _answer(await _call(deployments.recent, service, limit))


async def put_deployment(request: Request) -> Response:
    require_token(request)
    state = state_of(request)
    raw = await state.read_body(request)
    parse(DeploymentBody, raw)  # the shape; the strategy's own rules come next
    service = request.path_params["service"]
    status = await _call(state.deployments.start, service, raw)
    return _answer(status, 201)


async def delete_deployment(request: Request) -> Response:
    """End the deployment; the champion keeps serving. `?reason=` is kept."""
    require_token(request)
    state = state_of(request)
    reason = _one(request.query_params, "reason") or ""
    if len(reason) > 1000:
        raise ApiError(422, "invalid_request", "reason: at most 1000 characters")
    service = request.path_params["service"]
    return _answer(await _call(state.deployments.end, service, reason=reason))


async def promote_deployment(request: Request) -> Response:
    require_token(request)
    state = state_of(request)
    body = parse(PromoteBody, await _optional_json(request, state))
    service = request.path_params["service"]
    return _answer(
        await _call(state.deployments.promote, service, arm=body.arm, reason=body.reason)
    )


def deployment_routes() -> list[BaseRoute]:
    path = "/api/services/{service}/deployment"
    return [
        Route(path, get_deployment, methods=["GET"]),
        Route(path, put_deployment, methods=["PUT"]),
        Route(path, delete_deployment, methods=["DELETE"]),
        Route(f"{path}/promote", promote_deployment, methods=["POST"]),
        Route(f"{path}s", list_deployments, methods=["GET"]),
        Route(f"{path}s/{{deployment}}", get_named_deployment, methods=["GET"]),
    ]
