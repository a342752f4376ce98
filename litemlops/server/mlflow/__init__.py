"""MLflow's REST API on the litemlops server, so MLflow's client logs into litemlops.

Point a script at the server (`MLFLOW_TRACKING_URI=http://127.0.0.1:8000`,
`MLFLOW_TRACKING_TOKEN=<admin token>` for writes) and its experiments, runs,
params, metrics, tags, artifacts and models land in the same tracker and registry
as litemlops' own. Paths are MLflow's (`/api/2.0/mlflow/...` and the web pages'
`/ajax-api/2.0/mlflow/...`); every answer and error is in MLflow's shape. A path
under those prefixes that litemlops does not serve answers ENDPOINT_NOT_FOUND.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send

from litemlops.server.mlflow.base import PREFIXES, routes
from litemlops.server.mlflow.errors import mlflow_error

__all__ = ["MLFLOW_PREFIXES", "MlflowApi", "mlflow_routes"]

#: Every path MLflow's API is served under: its answers and errors are MLflow's shapes.
MLFLOW_PREFIXES = (*PREFIXES, "/api/2.0/mlflow-artifacts", "/api/3.0/mlflow")

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def _unknown(request: Request) -> Response:
    return mlflow_error(
        "ENDPOINT_NOT_FOUND",
        f"litemlops does not serve {request.method} {request.url.path} of MLflow's API "
        "(see the README's section on MLflow for what it serves)",
    )


def mlflow_routes() -> list[BaseRoute]:
    """MLflow's API as one route of the app (`MlflowApi`), holding its routes."""
    from litemlops.server.mlflow import experiments, models, registry, runs
    from litemlops.server.mlflow.artifacts import artifact_routes

    table = [*experiments.ROUTES, *runs.ROUTES, *models.ROUTES, *registry.ROUTES]
    unknown = [
        Route(f"{prefix}/{{rest:path}}", _unknown, methods=_METHODS, include_in_schema=False)
        for prefix in MLFLOW_PREFIXES
    ]
    return [MlflowApi([*routes(table), *artifact_routes(), *unknown])]


#: Where `MlflowApi.matches` leaves the route it found, for `handle`.
_FOUND = "litemlops.mlflow_route"


class MlflowApi(Mount):
    """MLflow's routes, looked up by path: a Mount at the root (walkers of the app's
    routes see every one) that answers only under `MLFLOW_PREFIXES`.

    One regular expression after another, its 130 routes cost a request 1 µs each
    (an MLflow call matched 60 to 90 routes). Here a path without parameters is found
    in a table; the routes with parameters (artifacts, logged models, the unknown
    paths) are tried after it, and every route is tried in its order in `routes`.
    """

    def __init__(self, routes: list[Route]):
        super().__init__("", routes=routes)
        order = {id(route): i for i, route in enumerate(routes)}
        self._patterned = [route for route in routes if route.param_convertors]
        by_path: dict[str, list[Route]] = {}
        for route in routes:
            if not route.param_convertors:
                by_path.setdefault(route.path, []).append(route)
        self._candidates = {
            path: sorted([*exact, *self._patterned], key=lambda route: order[id(route)])
            for path, exact in by_path.items()
        }

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not get_route_path(scope).startswith(MLFLOW_PREFIXES):
            return Match.NONE, {}
        partial: tuple[Route, Scope] | None = None
        for route in self._candidates.get(get_route_path(scope), self._patterned):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child, _FOUND: route}
            if match is Match.PARTIAL and partial is None:
                partial = route, child
        if partial is None:
            return Match.NONE, {}
        return Match.PARTIAL, {**partial[1], _FOUND: partial[0]}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[_FOUND].handle(scope, receive, send)
