"""A method a path does not take gets 405 with `Allow` naming exactly the methods it takes,
as the OpenAPI document lists them (HEAD with every GET), in the API's JSON error format."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from litemlops.server.errors import allowed_methods

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CONCRETE = {"model": "driver_ranker", "name": "driver_ranker", "alias": "champion",
            "version": "1", "view": "driver_stats", "run_id": "abc", "service": "inference",
            "deployment": "d1"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: CONCRETE[m.group(1)], path)


@pytest.fixture(scope="module")
def document(client) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def test_every_path_answers_other_methods_with_405_and_its_allow(client, document, error_of):
    checked = 0
    for path, item in document["paths"].items():
        takes = {m.upper() for m in item if m.upper() in METHODS}
        expected = takes | ({"HEAD"} if "GET" in takes else set())
        for method in sorted(set(METHODS) - takes):
            response = client.request(method, concrete(path))

            assert response.status_code == 405, (method, path, response.text)
            error = error_of(response)
            assert error["code"] == "method_not_allowed"
            assert method in error["message"]
            allow = {m.strip() for m in response.headers["allow"].split(",")}
            assert allow == expected, (method, path, response.headers["allow"])
            checked += 1
    assert checked > 60


def test_a_path_served_by_several_routes_allows_all_their_methods(client, error_of):
    response = client.post("/api/models/driver_ranker/aliases/champion")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT, DELETE"
    assert "GET, HEAD, PUT, DELETE" in error_of(response)["message"]


def test_allowed_methods_look_inside_mounts():
    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    routes = [
        Route("/x", endpoint, methods=["POST"]),
        Mount("/ml", routes=[Route("/x", endpoint, methods=["GET"]),
                             Route("/x", endpoint, methods=["DELETE"]),
                             Route("/y", endpoint, methods=["PUT"])]),
    ]
    scope = {"type": "http", "method": "PATCH", "path": "/ml/x", "root_path": ""}

    assert allowed_methods(routes, scope) == ["GET", "HEAD", "DELETE"]
    assert allowed_methods(routes, {**scope, "path": "/x"}) == ["POST"]
    assert allowed_methods(routes, {**scope, "path": "/nowhere"}) == []
