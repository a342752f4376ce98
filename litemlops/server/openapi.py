"""GET /openapi.json: an OpenAPI 3.1 description of every endpoint, made from the live app.

The document is built from the routes the app really has and the body models it
really validates with (`/inference`'s body depends on config), so it cannot
drift from the code: a route missing from `OPERATIONS` still appears, with its
methods and path parameters, marked `x-undocumented` (the tests refuse that).
Response shapes come from the library's dataclasses where the API returns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from litemlops.server.http import JSON
from litemlops.server.schemas import (
    AliasState,
    DeploymentBody,
    ErrorBody,
    FeatureViewInfo,
    FeedbackAnswer,
    FeedbackBody,
    HealthAnswer,
    InferenceAnswer,
    ModelDetail,
    PipelineInfo,
    PipelineRunDetail,
    PipelineRunSummary,
    PredictAnswer,
    PredictBody,
    PromoteBody,
    PushBody,
    ReadyAnswer,
    ResumeAnswer,
    ResumeBody,
    RollbackBody,
    RunDetail,
    SetAliasBody,
    TriggerAnswer,
    TriggerBody,
    VersionDetail,
    many,
)
from litemlops.server.state import ServerState, state_of
from litemlops.store.features.results import PushResult
from litemlops.store.tracking.registry import AliasChange, RegisteredModel
from litemlops.store.tracking.search import RunsPage

REF = "#/components/schemas/{model}"
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"tokenHeader": []}]
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: the work goes on after the answer",
    400: "Malformed JSON, an empty body, or a path param outside the allowed directories",
    401: "The admin token is missing or wrong",
    404: "Not found",
    409: "The request conflicts with the current state",
    413: "The body is larger than the server accepts",
    415: "The body is not sent as JSON (Content-Type: application/json)",
    422: "A value is of the wrong type, out of range, or otherwise refused",
    503: "Not available now",
}

CHALLENGE = {
    "WWW-Authenticate": {
        "description": 'Bearer realm="litemlops", with error="invalid_token" when a token was '
        "sent but is wrong (RFC 6750)",
        "schema": {"type": "string"},
    }
}

# -- what each endpoint takes and answers ------------------------------------------------------


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str
    repeatable: bool = False


@dataclass(frozen=True)
class Op:
    """One operation: `body` is a model, or the name of one the app makes from its config
    ("inference", "predict", "push"); `ok` is the answer."""

    summary: str
    ok: Any
    errors: tuple[int, ...] = ()
    status: int = 200
    body: Any = None
    body_optional: bool = False
    secured: bool = False
    query: tuple[Query, ...] = ()
    media_type: str = "application/json"
    params: tuple[tuple[str, dict[str, Any]], ...] = ()


BODY_ERRORS = (400, 413, 415, 422)
TEXT = {"type": "string"}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}
VERSION = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
#: The registry's rules (`check_model_name`, `check_alias`), as JSON Schema.
MODEL_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}
ALIAS = {
    "type": "string",
    "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$",
    "not": {"pattern": "^([Ll][Aa][Tt][Ee][Ss][Tt]|[Vv][0-9]+)$"},
    "description": "A letter, then letters, digits, '_' or '-'; not 'latest' nor v<number>",
}
ALIAS_PARAMS = (("name", MODEL_NAME), ("alias", ALIAS))
_NAME = "[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
#: A key a run logs a model under (`check_key`): word characters, '-', '.', ' ', '/', not
#: starting with '/', no '..' (a '.' is followed by another character or ends it).
_KEYCHAR = r"[\w\- /]"
_RUN_MODEL = rf"(?:[\w\- ]|\.(?:{_KEYCHAR}|$))(?:{_KEYCHAR}|\.(?:{_KEYCHAR}|$))*"
#: What `ModelURI.parse(..., default_alias="champion")` reads, as JSON Schema.
MODEL_URI = {
    "type": "string",
    "pattern": (
        f"^(?:(?:models:/)?{_NAME}(?:@[A-Za-z][A-Za-z0-9_-]{{0,63}}|/[0-9]{{1,18}})"
        f"|{_NAME}|runs:/[0-9a-f]{{32}}/{_RUN_MODEL})$"
    ),
    "maxLength": len("runs:/") + 32 + 1 + 250,  # a run's model name: at most 250
    # Reserved aliases and version 0; and a line break, before which a regex `$` may match.
    "not": {
        "pattern": f"^(?:models:/)?{_NAME}(?:@(?:[Ll][Aa][Tt][Ee][Ss][Tt]|[Vv][0-9]+)|/0+)$|\n"
    },
    "description": "name (its champion), name@alias, name/version, models:/name@alias, "
    "models:/name/version or runs:/<run id>/<model>",
}
REASON = {"type": "string", "maxLength": 1000}
PARAMS = {
    "model": "A model name (its champion), name@alias, or name/version",
    "view": "A feature view name",
    "name": "A registered model or pipeline name",
    "alias": "An alias such as champion or challenger",
    "version": "A version number of the model",
    "run_id": "A run id",
    "service": "A service the server answers (`[server]`: inference)",
}

OPERATIONS: dict[tuple[str, str], Op] = {
    ("POST", "/inference"): Op(
        "Score candidate entities and answer the best one",
        InferenceAnswer,
        errors=(*BODY_ERRORS, 404, 503),
        body="inference",
    ),
    ("POST", "/predict/{model}"): Op(
        "Scores for entity rows (features looked up online) or feature rows",
        PredictAnswer,
        errors=(*BODY_ERRORS, 404, 503),
        body="predict",
        params=(("model", MODEL_URI),),
    ),
    ("POST", "/push/{view}"): Op(
        "Write rows to a feature view now (streaming ingestion)",
        PushResult,
        errors=(*BODY_ERRORS, 401, 404),
        body="push",
        secured=True,
    ),
    ("POST", "/feedback"): Op(
        "A label for an earlier prediction, by its request_id",
        FeedbackAnswer,
        status=202,
        errors=(*BODY_ERRORS, 401),
        body=FeedbackBody,
        secured=True,
    ),
    ("GET", "/health"): Op("The process answers", HealthAnswer),
    ("GET", "/ready"): Op("Stores open and the service's model loaded", ReadyAnswer, errors=(503,)),
    ("GET", "/metrics"): Op("Prometheus metrics", str, media_type="text/plain"),
    ("GET", "/openapi.json"): Op("This document", dict[str, Any]),
    ("GET", "/api/models"): Op("Registered models", list[RegisteredModel]),
    ("GET", "/api/models/{name}"): Op("A model with its aliases and versions", ModelDetail, (404,)),
    ("GET", "/api/models/{name}/versions/{version}"): Op(
        "A model version with its lineage",
        VersionDetail,
        (404, 422),
        params=(("version", VERSION),),
    ),
    ("GET", "/api/models/{name}/aliases/{alias}"): Op(
        "The version an alias names and the one served",
        AliasState,
        (404,),
        params=ALIAS_PARAMS,
    ),
    ("PUT", "/api/models/{name}/aliases/{alias}"): Op(
        "Point an alias at a version; the server serves it before answering",
        AliasState,
        errors=(*BODY_ERRORS, 401, 404),
        body=SetAliasBody,
        secured=True,
        params=ALIAS_PARAMS,
    ),
    ("DELETE", "/api/models/{name}/aliases/{alias}"): Op(
        "Remove an alias",
        AliasState,
        errors=(401, 404, 422),
        secured=True,
        query=(Query("reason", REASON, "Why (kept in the alias history)"),),
        params=ALIAS_PARAMS,
    ),
    ("GET", "/api/models/{name}/aliases/{alias}/history"): Op(
        "Every move of an alias, oldest first",
        list[AliasChange],
        (404,),
        params=ALIAS_PARAMS,
    ),
    ("POST", "/api/models/{name}/aliases/{alias}/rollback"): Op(
        "Point an alias back at the version it held before",
        AliasState,
        errors=(*BODY_ERRORS, 401, 404, 409),
        body=RollbackBody,
        body_optional=True,
        secured=True,
        params=ALIAS_PARAMS,
    ),
    ("GET", "/api/runs"): Op(
        "Search tracking runs (MLflow filter and order_by syntax)",
        RunsPage,
        errors=(404, 422),
        query=(
            Query("experiment", TEXT, "Only runs of this experiment", repeatable=True),
            Query("filter", TEXT, "e.g. metrics.auc > 0.8 and params.model = 'lr'"),
            Query("order_by", TEXT, "e.g. metrics.auc DESC", repeatable=True),
            Query("limit", LIMIT, "At most this many runs (default 100)"),
            Query("page_token", TEXT, "next_page_token of the previous page"),
        ),
    ),
    ("GET", "/api/runs/{run_id}"): Op(
        "A tracking run with its artifacts, models and inputs", RunDetail, (404,)
    ),
    ("GET", "/api/pipelines"): Op("The pipelines this home knows", list[PipelineInfo]),
    ("GET", "/api/pipelines/runs"): Op(
        "Pipeline runs, newest first",
        many(PipelineRunSummary),
        errors=(422,),
        query=(
            Query("pipeline", TEXT, "Only runs of this pipeline"),
            Query(
                "state",
                {"enum": ["queued", "running", "success", "failed", "skipped"]},
                "Only runs in this state",
            ),
            Query("limit", LIMIT, "At most this many runs (default 50)"),
        ),
    ),
    ("GET", "/api/pipelines/runs/{run_id}"): Op(
        "A pipeline run with every task attempt", PipelineRunDetail, (404,)
    ),
    ("POST", "/api/pipelines/{name}/trigger"): Op(
        "Start a pipeline run now; answers before the run ends, or with `wait` once it ended",
        TriggerAnswer,
        status=202,
        errors=(*BODY_ERRORS, 401, 404, 503),
        body=TriggerBody,
        body_optional=True,
        secured=True,
    ),
    ("POST", "/api/pipelines/runs/{run_id}/resume"): Op(
        "Run a failed run again from its failed tasks; answers before it ends",
        ResumeAnswer,
        status=202,
        errors=(*BODY_ERRORS, 401, 404, 409, 503),
        body=ResumeBody,
        body_optional=True,
        secured=True,
    ),
    ("GET", "/api/features"): Op("Feature views", list[FeatureViewInfo]),
    ("GET", "/api/features/{view}"): Op("A feature view", FeatureViewInfo, (404,)),
    ("GET", "/api/services/{service}/deployment"): Op(
        "The service's active deployment (else its last one), its live report and history",
        dict[str, Any],
        (404,),
    ),
    ("PUT", "/api/services/{service}/deployment"): Op(
        "Start a deployment (canary, shadow, ab, bandit) beside the service's champion",
        dict[str, Any],
        status=201,
        errors=(*BODY_ERRORS, 401, 404, 409),
        body=DeploymentBody,
        secured=True,
    ),
    ("DELETE", "/api/services/{service}/deployment"): Op(
        "End the active deployment; the champion keeps serving",
        dict[str, Any],
        errors=(401, 404, 409, 422),
        secured=True,
        query=(Query("reason", REASON, "Why (kept in the deployment's history)"),),
    ),
    ("POST", "/api/services/{service}/deployment/promote"): Op(
        "Move the champion alias to a challenger's version and end the deployment",
        dict[str, Any],
        errors=(*BODY_ERRORS, 401, 404, 409),
        body=PromoteBody,
        body_optional=True,
        secured=True,
    ),
    ("GET", "/api/services/{service}/deployments"): Op(
        "The service's deployments, newest first",
        list[dict[str, Any]],
        (404, 422),
        query=(Query("limit", LIMIT, "At most this many"),),
    ),
    ("GET", "/api/services/{service}/deployments/{deployment}"): Op(
        "One of the service's deployments by id or name, its report and history",
        dict[str, Any],
        (404,),
    ),
    ("GET", "/api/monitoring"): Op(
        "The latest drift, data quality and performance check, and the alerts", dict[str, Any]
    ),
}


# -- the document -----------------------------------------------------------------------------


def _endpoints(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str, Route]]:
    """(method, OpenAPI path, route) for every HTTP route of the API, mounted ones
    included (the dashboard's pages say `include_in_schema=False`: HTML, not the API)."""
    found = []
    for route in routes:
        if isinstance(route, Mount):
            found += _endpoints(route.routes, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                if method != "HEAD":  # Starlette adds it to every GET
                    found.append((method, prefix + route.path_format, route))
    return found


def _path_params(route: Route, op: Op | None) -> list[dict[str, Any]]:
    given = dict(op.params) if op else {}
    params = []
    for name, convertor in route.param_convertors.items():
        schema: dict[str, Any] = {"type": "string"}
        if isinstance(convertor, IntegerConvertor):
            schema = {"type": "integer", "minimum": 0}
        elif isinstance(convertor, FloatConvertor):
            schema = {"type": "number", "minimum": 0}
        param = {"name": name, "in": "path", "required": True, "schema": given.get(name, schema)}
        if name in PARAMS:
            param["description"] = PARAMS[name]
        params.append(param)
    return params


def _json_content(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def build_document(
    routes: list[BaseRoute],
    inference_body: type[BaseModel],
    bodies: Mapping[str, type[BaseModel]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes`; `/inference` takes `inference_body`, and
    `bodies` names the other bodies the app made from its config (by `Op.body`)."""
    from litemlops import __version__

    made: dict[str, type[BaseModel]] = {
        "predict": PredictBody,
        "push": PushBody,
        **(bodies or {}),
        "inference": inference_body,
    }

    endpoints = _endpoints(routes)
    ops = {(method, path): OPERATIONS.get((method, path)) for method, path, _ in endpoints}
    inputs: list[tuple[Any, Literal["validation", "serialization"], TypeAdapter[Any]]] = [
        ("error", "serialization", TypeAdapter(ErrorBody))
    ]
    for key, op in ops.items():
        if op is None:
            continue
        inputs.append((("ok", *key), "serialization", TypeAdapter(op.ok)))
        if op.body is not None:
            body = made[op.body] if isinstance(op.body, str) else op.body
            inputs.append((("body", *key), "validation", TypeAdapter(body)))
    schemas, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    error = schemas[("error", "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for method, path, route in endpoints:
        op = ops[(method, path)]
        item: dict[str, Any] = {"operationId": f"{method.lower()}_{_slug(path)}"}
        params = _path_params(route, op)
        if op is None:
            item["x-undocumented"] = True
            item["responses"] = {"default": {"description": "Undocumented"}}
        else:
            item["summary"] = op.summary
            params += [_query(q) for q in op.query]
            if op.body is not None:
                item["requestBody"] = {
                    "required": not op.body_optional,
                    "content": _json_content(schemas[(("body", method, path), "validation")]),
                }
            ok = schemas[(("ok", method, path), "serialization")]
            item["responses"] = {
                str(op.status): {
                    "description": STATUS_TEXT[op.status],
                    "content": _json_content(ok, op.media_type),
                },
                **{
                    str(code): {"description": STATUS_TEXT[code], "content": _json_content(error)}
                    | ({"headers": CHALLENGE} if code == 401 else {})
                    for code in sorted(op.errors)
                },
            }
            if op.secured:
                item["security"] = SECURITY
        if params:
            item["parameters"] = params
        paths.setdefault(path, {})[method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "litemlops",
            "version": __version__,
            "description": "Online predictions, streaming ingestion and the admin API of one "
            'litemlops home. Errors are {"error": {"code", "message"}}.',
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token, from <home>/token or server.token",
                },
                "tokenHeader": {"type": "apiKey", "in": "header", "name": "X-Litemlops-Token"},
            },
        },
    }


def _query(q: Query) -> dict[str, Any]:
    schema = {"type": "array", "items": q.schema} if q.repeatable else q.schema
    param: dict[str, Any] = {
        "name": q.name,
        "in": "query",
        "required": False,
        "description": q.description,
        "schema": schema,
    }
    if q.repeatable:
        param.update(style="form", explode=True)
    return param


def _slug(path: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in path.replace("{", "by_"))
    return "_".join(part for part in cleaned.split("_") if part) or "root"


async def _openapi(request: Request) -> Response:
    return JSON(document_of(request))


def document_of(request: Request) -> dict[str, Any]:
    """The document of this app, made once per app state (routes and bodies are fixed)."""
    state = state_of(request)
    cached = getattr(request.app.state, "openapi_document", None)
    if cached is None or cached[0] is not state:
        document = build_document(request.app.routes, state.inference_body, app_bodies(state))
        root = request.scope.get("root_path") or ""
        if root:
            document["servers"] = [{"url": root}]
        cached = (state, document)
        request.app.state.openapi_document = cached
    made: dict[str, Any] = cached[1]
    return made


def app_bodies(state: ServerState) -> dict[str, type[BaseModel]]:
    """The bodies this app made from its config, by the names `Op.body` uses."""
    return {"predict": state.predict_body, "push": state.push_body}


def openapi_route() -> Route:
    return Route("/openapi.json", _openapi, methods=["GET"])
