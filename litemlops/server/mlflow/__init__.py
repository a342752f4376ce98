"""MLflow's REST API on the litemlops server, so MLflow's client logs into litemlops.

Point a script at the server (`MLFLOW_TRACKING_URI=http://127.0.0.1:8000`,
`MLFLOW_TRACKING_TOKEN=<admin token>` for writes) and its experiments, runs,
params, metrics, tags, artifacts and models land in the same tracker and registry
as litemlops' own. Paths are MLflow's (`/api/2.0/mlflow/...` and the web pages'
`/ajax-api/2.0/mlflow/...`); every answer and error is in MLflow's shape. A path
under those prefixes that litemlops does not serve answers ENDPOINT_NOT_FOUND.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from litemlops.server.mlflow.base import PREFIXES, routes
from litemlops.server.mlflow.errors import mlflow_error

__all__ = ["MLFLOW_PREFIXES", "mlflow_routes"]

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
    from litemlops.server.mlflow import experiments, models, registry, runs
    from litemlops.server.mlflow.artifacts import artifact_routes

    table = [*experiments.ROUTES, *runs.ROUTES, *models.ROUTES, *registry.ROUTES]
    unknown: list[BaseRoute] = [
        Route(f"{prefix}/{{rest:path}}", _unknown, methods=_METHODS, include_in_schema=False)
        for prefix in MLFLOW_PREFIXES
    ]
    return [*routes(table), *artifact_routes(), *unknown]
