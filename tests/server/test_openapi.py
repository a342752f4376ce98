"""GET /openapi.json: every route of the app, its bodies, answers, errors and security."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from litemlops.server.openapi import build_document

MODEL = "driver_ranker"
#: Endpoints anyone may call: reads and predictions. Every other one needs the token.
OPEN_WRITES = {("post", "/inference"), ("post", "/predict/{model}")}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(scope="module")
def served_overrides() -> dict[str, Any]:
    """A small item limit, so the document is seen to follow the home's config."""
    return {"server.max_items": 50}


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return dict(json.loads(response.text))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method, path, op


def app_endpoints(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= app_endpoints(route.routes, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:  # pages are not the API
            found |= {
                (m.lower(), prefix + route.path_format) for m in route.methods or () if m != "HEAD"
            }
    return found


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def conforms(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    """Asserts `value` matches `schema`, and has no property the schema does not name
    (unless it allows more): enough JSON Schema for what pydantic writes."""
    schema = resolve(document, schema)
    if "anyOf" in schema:
        failures = []
        for option in schema["anyOf"]:
            try:
                conforms(document, option, value, where)
                return
            except AssertionError as exc:
                failures.append(str(exc))
        raise AssertionError(f"{where}: {value!r} matches no option: {failures}")
    if "const" in schema:
        assert value == schema["const"], where
    if "enum" in schema:
        assert value in schema["enum"], where
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind is not None:
        assert checks[kind](value), f"{where}: {value!r} is not {kind}"
    if kind == "array":
        for i, item in enumerate(value):
            conforms(document, schema.get("items", {}), item, f"{where}[{i}]")
    if kind == "object":
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"{where}: lacks {key!r}"
        extra = schema.get("additionalProperties", not properties)
        for key, item in value.items():
            if key in properties:
                conforms(document, properties[key], item, f"{where}.{key}")
            elif isinstance(extra, dict):
                conforms(document, extra, item, f"{where}.{key}")
            else:
                assert extra is True, f"{where}: {key!r} is not in the document"


# -- the document itself ----------------------------------------------------------------------


def test_the_document_is_openapi_3_1_with_info_and_components(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "litemlops" and document["info"]["version"]
    assert {"ErrorBody", "InferenceRequest", "SetAliasBody", "TriggerBody"} <= set(
        document["components"]["schemas"]
    )


def test_every_route_of_the_app_is_in_the_document_and_described(client, document):
    endpoints = app_endpoints(client.app.routes)  # type: ignore[attr-defined]
    documented = {(method, path) for method, path, _ in operations(document)}

    assert endpoints <= documented, f"missing from the document: {endpoints - documented}"
    assert documented == endpoints
    undescribed = [(m, p) for m, p, op in operations(document) if "summary" not in op]
    assert not undescribed, "add these to litemlops.server.openapi.OPERATIONS"
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


def test_the_endpoints_the_issue_names_are_there(document):
    paths = document["paths"]

    for path, method in [
        ("/inference", "post"),
        ("/predict/{model}", "post"),
        ("/push/{view}", "post"),
        ("/feedback", "post"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/api/models", "get"),
        ("/api/models/{name}/aliases/{alias}", "put"),
        ("/api/models/{name}/aliases/{alias}/rollback", "post"),
        ("/api/runs", "get"),
        ("/api/pipelines/{name}/trigger", "post"),
        ("/api/features", "get"),
    ]:
        assert method in paths[path], (method, path)


def test_a_route_added_later_shows_up_marked_undocumented(client):
    async def extra(request: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    routes = [*client.app.routes, Route("/api/later/{thing:int}", extra, methods=["PATCH"])]  # type: ignore[attr-defined]
    state = client.app.state.litemlops  # type: ignore[attr-defined]

    document = build_document(routes, state.inference_body)

    op = document["paths"]["/api/later/{thing}"]["patch"]
    assert op["x-undocumented"] is True and "summary" not in op
    assert op["parameters"] == [
        {
            "name": "thing",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    ]


def test_every_ref_resolves_and_no_defs_are_left_inline(document):
    schemas = document["components"]["schemas"]
    text = json.dumps(document)

    assert "$defs" not in text
    refs = set(re.findall(r'"\$ref": "([^"]+)"', text))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_path_parameters_match_each_path_template(document):
    for method, path, op in operations(document):
        in_path = set(re.findall(r"{([^}]+)}", path))
        declared = [p for p in op.get("parameters", []) if p["in"] == "path"]
        assert {p["name"] for p in declared} == in_path, (method, path)
        assert all(p["required"] is True for p in declared)


def test_query_parameters_are_described(document):
    runs = document["paths"]["/api/runs"]["get"]["parameters"]
    by_name = {p["name"]: p for p in runs}

    assert set(by_name) == {"experiment", "filter", "order_by", "limit", "page_token"}
    assert by_name["limit"]["schema"]["type"] == "integer"
    assert by_name["experiment"]["schema"]["type"] == "array"
    states = document["paths"]["/api/pipelines/runs"]["get"]["parameters"]
    assert {p["name"] for p in states} == {"pipeline", "state", "limit"}


def test_mutating_endpoints_carry_the_bearer_scheme_and_401(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }

    for method, path, op in operations(document):
        secured = method != "get" and (method, path) not in OPEN_WRITES
        assert ("security" in op) == secured, (method, path)
        assert ("401" in op["responses"]) == secured, (method, path)
        if secured:
            assert {"bearerAuth": []} in op["security"]
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], (method, path)


def test_every_answer_is_described_with_its_statuses_and_the_error_body(document):
    statuses = {(method, path): set(op["responses"]) for method, path, op in operations(document)}
    error = {"$ref": "#/components/schemas/ErrorBody"}

    assert statuses[("post", "/inference")] == {"200", "400", "404", "413", "415", "422", "503"}
    assert statuses[("post", "/feedback")] == {"202", "400", "401", "413", "415", "422"}
    assert statuses[("post", "/api/pipelines/{name}/trigger")] >= {"202", "401", "404", "422"}
    assert statuses[("get", "/ready")] == {"200", "503"}
    assert statuses[("put", "/api/models/{name}/aliases/{alias}")] == {
        "200",
        "400",
        "401",
        "404",
        "413",
        "415",
        "422",
    }
    for _, _, op in operations(document):
        for status, response in op["responses"].items():
            assert response["description"]
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == error
    body = document["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["error"]
    assert set(resolve(document, body["properties"]["error"])["required"]) == {"code", "message"}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}


def test_request_bodies_are_the_models_the_app_validates_with(document):
    schemas = document["components"]["schemas"]

    inference = schemas["InferenceRequest"]
    assert set(inference["required"]) == {"request_id", "driver_ids"}
    assert inference["properties"]["driver_ids"]["maxItems"] == 50  # server.max_items
    assert inference["properties"]["driver_ids"]["items"]["type"] == "integer"
    assert inference["additionalProperties"] is False
    assert schemas["SetAliasBody"]["required"] == ["version"]
    trigger = document["paths"]["/api/pipelines/{name}/trigger"]["post"]["requestBody"]
    assert trigger["required"] is False
    put = document["paths"]["/api/models/{name}/aliases/{alias}"]["put"]["requestBody"]
    assert put["required"] is True
    assert put["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SetAliasBody"
    }
    assert "requestBody" not in document["paths"]["/api/models"]["get"]


def test_the_document_is_made_once_per_app(client, document):
    assert client.get("/openapi.json").json() == document


# -- the document against real answers --------------------------------------------------------


def answer_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    response = document["paths"][path][method]["responses"][str(status)]
    return dict(response["content"]["application/json"]["schema"])


def test_every_read_answers_as_documented(client, document, auth, served_platform):
    champion = served_platform.registry.get_alias(MODEL, "champion")
    challenger = served_platform.registry.register_model(
        f"runs:/{champion.run_id}/{champion.model_name}", MODEL, allow_duplicate=True
    )
    deployment = "/api/services/inference/deployment"
    body = {"strategy": "shadow", "challenger": challenger.version}
    started = client.put(deployment, json=body, headers=auth)
    assert started.status_code == 201
    run_id = client.get("/api/runs", params={"limit": 1}).json()["runs"][0]["run_id"]
    pipeline_run = client.get("/api/pipelines/runs", params={"limit": 1}).json()[0]["run_id"]
    concrete = {
        "/api/models/{name}": f"/api/models/{MODEL}",
        "/api/models/{name}/versions/{version}": f"/api/models/{MODEL}/versions/1",
        "/api/models/{name}/aliases/{alias}": f"/api/models/{MODEL}/aliases/champion",
        "/api/models/{name}/aliases/{alias}/history": (
            f"/api/models/{MODEL}/aliases/champion/history"
        ),
        "/api/runs/{run_id}": f"/api/runs/{run_id}",
        "/api/pipelines/runs/{run_id}": f"/api/pipelines/runs/{pipeline_run}",
        "/api/features/{view}": "/api/features/driver_stats",
        "/api/services/{service}/deployment": deployment,
        "/api/services/{service}/deployments": f"{deployment}s",
        "/api/services/{service}/deployments/{deployment}": (
            f"{deployment}s/{started.json()['name']}"
        ),
    }
    checked = 0
    for method, path, _ in operations(document):
        if method != "get" or path in ("/metrics", "/openapi.json"):
            continue
        url = concrete.get(path, path)
        assert "{" not in url, f"give {path} a concrete URL in this test"
        response = client.get(url)
        assert response.status_code == 200, (url, response.text)
        conforms(document, answer_schema(document, "get", path, 200), response.json(), url)
        checked += 1
    assert checked >= 16
    assert client.delete(deployment, headers=auth).status_code == 200


def test_changes_and_predictions_answer_as_documented(client, document, auth):
    alias = "/api/models/{name}/aliases/{alias}"
    cases = [
        ("post", "/inference", "/inference", {"request_id": "r", "driver_ids": [1001, 1002]}, 200),
        (
            "post",
            "/predict/{model}",
            f"/predict/{MODEL}",
            {"entities": [{"driver_id": 1001}]},
            200,
        ),
        ("put", alias, f"/api/models/{MODEL}/aliases/staging", {"version": 1}, 200),
        ("post", f"{alias}/rollback", f"/api/models/{MODEL}/aliases/staging/rollback", None, 409),
        ("delete", alias, f"/api/models/{MODEL}/aliases/staging", None, 200),
        ("post", "/api/pipelines/{name}/trigger", "/api/pipelines/training/trigger", None, 202),
        ("post", "/feedback", "/feedback", {"request_id": "r", "label": 1}, 202),
    ]
    for method, path, url, body, status in cases:
        response = client.request(method, url, json=body, headers=auth)
        assert response.status_code == status, (url, response.text)
        schema = answer_schema(document, method, path, status)
        conforms(document, schema, response.json(), url)


def test_errors_answer_as_documented(client, document):
    for method, path, url in [
        ("get", "/api/models/{name}", "/api/models/nope"),
        ("get", "/api/runs", "/api/runs?limit=0"),
        ("post", "/api/pipelines/{name}/trigger", "/api/pipelines/data/trigger"),
    ]:
        response = client.request(method, url)
        status = response.status_code
        assert str(status) in document["paths"][path][method]["responses"], (url, status)
        conforms(document, answer_schema(document, method, path, status), response.json(), url)


# -- what the document allows, the server takes (and says why not) ----------------------------


def test_an_integral_number_is_an_integer_as_the_document_says(client, auth):
    # JSON Schema's "integer" is any number without a fraction part.
    inference = client.post("/inference", json={"request_id": "f", "driver_ids": [1001.0, 1002]})
    alias = client.put(
        f"/api/models/{MODEL}/aliases/floaty", json={"version": 1.0}, headers=auth
    )

    assert inference.status_code == 200, inference.text
    assert inference.json()["prediction"] in (1001, 1002)
    assert isinstance(inference.json()["prediction"], int)
    assert alias.status_code == 200 and alias.json()["version"] == 1, alias.text
    for fractional in (1001.5, "1001", True):
        body = {"request_id": "f", "driver_ids": [fractional]}
        assert client.post("/inference", json=body).status_code == 422


def test_predict_without_rows_says_to_send_one_kind(client, error_of):
    response = client.post(f"/predict/{MODEL}", json={})

    assert response.status_code == 422
    message = error_of(response)["message"]
    assert "'entities'" in message and "'features'" in message and "not both" not in message


def test_the_document_states_the_bounds_the_server_checks(document):
    schemas = document["components"]["schemas"]
    alias_put = document["paths"]["/api/models/{name}/aliases/{alias}"]["put"]
    alias_param = next(p for p in alias_put["parameters"] if p["name"] == "alias")
    delete = document["paths"]["/api/models/{name}/aliases/{alias}"]["delete"]
    reason = next(p for p in delete["parameters"] if p["name"] == "reason")

    assert schemas["InferenceRequest"]["properties"]["driver_ids"]["uniqueItems"] is True
    assert schemas["SetAliasBody"]["properties"]["version"]["minimum"] == 1
    predict = schemas["PredictRequest"]
    assert [option["required"] for option in predict["oneOf"]] == [["entities"], ["features"]]
    rows = predict["properties"]["features"]["anyOf"][0]
    assert (rows["minItems"], rows["maxItems"]) == (1, 50)
    assert rows["items"]["required"] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    push = schemas["PushRequest"]["properties"]
    assert push["to"]["enum"] == ["online", "offline", "both"]
    assert push["rows"]["maxItems"] == 50
    assert alias_param["schema"]["pattern"].startswith("^[A-Za-z]")
    assert reason["schema"]["maxLength"] == 1000


@pytest.mark.parametrize(
    "query", ["state=running&state=", "state=", "state=RUNNING", "limit=5&limit=6"]
)
def test_a_query_the_document_refuses_is_refused(client, error_of, query):
    response = client.get(f"/api/pipelines/runs?{query}")

    assert response.status_code == 422, response.text
    error_of(response)


@settings(max_examples=examples(300), deadline=None)
@given(
    text=st.one_of(
        st.from_regex(
            r"\A(models:/|runs:/|Models:/)?[A-Za-z0-9_.@/\-]{0,12}(@|/)?[A-Za-z0-9]{0,4}\Z"
        ),
        st.builds(lambda h, m: f"runs:/{h}/{m}", st.from_regex(r"\A[0-9a-f]{30,33}\Z"),
                  st.text(min_size=0, max_size=5)),
        st.sampled_from(["m@latest", "m@V12", "m/0", "m/000", "m/" + "9" * 19, "m/" + "1" * 18,
                         "m\n", "m@a\n", "runs:/" + "a" * 32 + "/m\n", "runs:/" + "a" * 32
                         + "/" + "x" * 251, "runs:/" + "a" * 32 + "/" + "x" * 250]),
    )
)
def test_the_documented_model_path_is_exactly_what_the_server_reads(text):
    from litemlops.errors import ValidationError
    from litemlops.server.openapi import MODEL_URI
    from litemlops.store.tracking.model_uri import DEFAULT_ALIAS, ModelURI

    documented = (
        bool(re.search(MODEL_URI["pattern"], text))
        and not re.search(MODEL_URI["not"]["pattern"], text)
        and len(text) <= MODEL_URI["maxLength"]
    )
    try:
        ModelURI.parse(text, default_alias=DEFAULT_ALIAS)
        read = True
    except ValidationError:
        read = False
    assert documented == read, repr(text)
