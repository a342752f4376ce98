"""Bodies must be sent as JSON: a web page open in the user's browser can post a form
or `text/plain` to a local server without a CORS preflight, never `application/json`.
And no answer lets another origin read it or send more."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Mount, Route

from litemlops import events
from litemlops.server.http import json_media_problem, require_json_body
from litemlops.server.mlflow import MLFLOW_PREFIXES

WITH_BODY = {"POST", "PUT", "PATCH"}
#: Path parameters filled with things that exist, so the request reaches its handler.
REAL = {"view": "driver_stats", "model": "driver_ranker", "name": "driver_ranker",
        "alias": "champion", "version": "1"}
#: What a page can send cross-origin without a preflight, and what a careless client sends.
NOT_JSON = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/json",
    "application/jsonp",
    "application/+json",
    "application/json; charset=iso-8859-1",
    "application/xml",
]
JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON;charset=\"UTF-8\"",
    "application/json ; charset=utf8",
    "application/vnd.api+json",
    "application/merge-patch+json; charset=utf-8",
]


def body_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for route in routes:
        if isinstance(route, Mount):
            found += body_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            if (prefix + route.path).startswith(MLFLOW_PREFIXES):
                continue  # MLflow's shapes: tests/server/test_mlflow_tracking.py checks them
            methods = sorted(route.methods or ())
            found += [(m, prefix + route.path) for m in methods if m in WITH_BODY]
    return found


def fill(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: REAL.get(m.group(1), "training"), path)


@pytest.fixture(scope="module")
def routes(client) -> list[tuple[str, str]]:
    found = body_routes(client.app.routes)
    assert ("POST", "/inference") in found
    assert ("PUT", "/api/models/{name}/aliases/{alias}") in found
    return found


# -- 415 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [*NOT_JSON, None])
def test_every_endpoint_with_a_body_refuses_a_body_not_sent_as_json(
    client, auth, error_of, routes, content_type
):
    headers = {**auth} if content_type is None else {**auth, "content-type": content_type}
    for method, path in routes:
        response = client.request(method, fill(path), content=b"{}", headers=headers)

        assert response.status_code == 415, (method, path, response.text)
        error = error_of(response)
        assert error["code"] == "unsupported_media_type"
        assert "application/json" in error["message"]
        if content_type is None:
            assert "no Content-Type" in error["message"]
        else:
            assert repr(content_type) in error["message"], error["message"]


def test_a_text_plain_inference_is_not_served_nor_logged(client, error_of, read_events):
    body = b'{"request_id": "from-a-web-page", "driver_ids": [1001, 1002]}'

    response = client.post("/inference", content=body, headers={"content-type": "text/plain"})

    assert response.status_code == 415
    served = read_events(events.PREDICTION_SERVED)
    assert not [e for e in served if e.get("request_id") == "from-a-web-page"]


def test_a_form_posted_feedback_is_not_logged(client, auth, read_events):
    body = b'{"request_id": "form-feedback", "label": 1}'
    headers = {**auth, "content-type": "application/x-www-form-urlencoded"}

    assert client.post("/feedback", content=body, headers=headers).status_code == 415
    logged = read_events(events.FEEDBACK_RECEIVED)
    assert not [e for e in logged if e.get("request_id") == "form-feedback"]


@pytest.mark.parametrize("content_type", JSON_TYPES)
def test_json_and_json_suffixed_types_are_served(client, content_type):
    body = b'{"request_id": "typed", "driver_ids": [1001, 1002]}'

    response = client.post("/inference", content=body, headers={"content-type": content_type})

    assert response.status_code == 200, response.text


def test_a_chunked_body_must_be_json_too(client, error_of):
    def chunks():
        yield b'{"request_id": "c", '
        yield b'"driver_ids": [1001]}'

    response = client.post("/inference", content=chunks(), headers={"content-type": "text/plain"})

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 415


def test_a_request_without_a_body_needs_no_content_type(client, auth, error_of):
    # An optional body may be left out; a required one is missing, which is what is said.
    rollback = client.post("/api/models/driver_ranker/aliases/nothing/rollback", headers=auth)
    empty = client.post("/inference")

    assert rollback.status_code == 404, rollback.text
    assert empty.status_code == 400 and error_of(empty)["code"] == "invalid_json"


def test_the_token_is_checked_before_the_content_type(client, error_of):
    response = client.post("/feedback", content=b"{}", headers={"content-type": "text/plain"})

    assert response.status_code == 401


def test_the_document_lists_415_for_every_body(client):
    document = client.get("/openapi.json").json()
    for item in document["paths"].values():
        for op in item.values():
            if "requestBody" in op:
                assert "415" in op["responses"], op["operationId"]


# -- the check itself -------------------------------------------------------------------------

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=12)
SPACE = st.sampled_from(["", " ", "  "])


def randomly_cased(text: str, flips: list[bool]) -> str:
    flips = (flips + [False] * len(text))[: len(text)]
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


@given(
    subtype=st.one_of(st.just("json"), TOKEN.map(lambda t: f"{t}+json")),
    flips=st.lists(st.booleans(), max_size=40),
    space=SPACE,
    params=st.lists(st.tuples(TOKEN.filter(lambda t: t != "charset"), TOKEN), max_size=2),
    charset=st.sampled_from([None, "utf-8", "UTF-8", '"utf-8"', "utf8"]),
)
def test_any_json_media_type_is_taken(subtype, flips, space, params, charset):
    pairs = [*params, *([("charset", charset)] if charset else [])]
    text = randomly_cased(f"application/{subtype}", flips)
    text += "".join(f"{space};{space}{name}={value}" for name, value in pairs)

    assert json_media_problem(text) is None
    require_json_body(text)


@given(
    kind=st.sampled_from(["text", "multipart", "application", "image", "x-json"]),
    subtype=TOKEN,
    params=st.text(max_size=20),
)
def test_what_is_not_json_is_refused(kind, subtype, params):
    text = f"{kind}/{subtype}{params}"
    is_json = kind == "application" and (subtype == "json" or subtype.endswith("+json"))
    if is_json:
        return

    assert json_media_problem(text) is not None


@given(charset=TOKEN.filter(lambda t: t.lower() not in ("utf-8", "utf8")))
def test_json_in_another_charset_is_refused(charset):
    problem = json_media_problem(f"application/json; charset={charset}")

    assert problem is not None and "UTF-8" in problem


# -- CORS -------------------------------------------------------------------------------------


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", ["/inference", "/feedback", "/push/driver_stats", "/health"])
def test_a_preflight_from_another_origin_is_not_granted(client, path):
    response = client.options(
        path,
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )

    assert response.status_code >= 400
    assert cors_headers(response) == {}


def test_no_answer_lets_another_origin_read_it(client, auth):
    origin = {"Origin": "https://evil.example"}
    answers = [
        client.post("/inference", json={"request_id": "o", "driver_ids": [1001]}, headers=origin),
        client.post("/inference", content=b"{}", headers={**origin, "content-type": "text/plain"}),
        client.get("/api/models", headers=origin),
        client.get("/metrics", headers=origin),
        client.post("/feedback", json={"request_id": "o", "label": 1}, headers={**origin, **auth}),
    ]

    for response in answers:
        assert cors_headers(response) == {}, (response.request.url, response.headers)
