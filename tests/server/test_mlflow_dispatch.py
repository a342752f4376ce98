"""MLflow's routes found by path (`MlflowApi`) answer as Starlette's router would,
trying them one after another: the same route, the same match, the same path
parameters, for MLflow's paths, paths near them and paths elsewhere."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Match, Route

from litemlops.server.mlflow import MLFLOW_PREFIXES, MlflowApi, mlflow_routes

[API] = mlflow_routes()
assert isinstance(API, MlflowApi)
ROUTES: list[Route] = list(API.routes)  # type: ignore[arg-type]
PATHS = sorted({route.path for route in ROUTES})
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SEGMENT = st.text("abcXYZ019-_.%~", min_size=1, max_size=8)


def one_by_one(scope: dict[str, Any]) -> tuple[Match, Route | None, dict[str, Any]]:
    """What Starlette's router does with these routes: the first full match, else the
    first partial one (the path matches, not the method)."""
    partial = None
    for route in ROUTES:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return match, route, child
        if match is Match.PARTIAL and partial is None:
            partial = route, child
    return (Match.PARTIAL, *partial) if partial else (Match.NONE, None, {})


@st.composite
def paths(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["route", "near", "prefix", "elsewhere"]))
    if kind == "elsewhere":
        return "/" + "/".join(draw(st.lists(SEGMENT, min_size=0, max_size=4)))
    if kind == "prefix":
        rest = draw(st.lists(SEGMENT, max_size=4))
        return draw(st.sampled_from(MLFLOW_PREFIXES)) + "".join("/" + s for s in rest)
    path = draw(st.sampled_from(PATHS))  # parameters filled, a path one may hold a slash
    path = re.sub(r"\{\w+:path\}", lambda _: "/".join(draw(st.lists(SEGMENT, min_size=1,
                                                                      max_size=3))), path)
    path = re.sub(r"\{\w+\}", lambda _: draw(SEGMENT), path)
    if kind == "near":
        path = draw(st.sampled_from([path + "/", path + "/" + draw(SEGMENT), path[:-1],
                                     path.upper(), path.replace("mlflow", "mlflow2")]))
    return path


@given(path=paths(), method=st.sampled_from(METHODS))
def test_a_path_finds_the_route_starlette_would_try_first(path: str, method: str) -> None:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    match, route, child = one_by_one(scope)
    found, found_child = API.matches(scope)
    assert found is match
    if route is None:
        assert found_child == {}
        return
    assert found_child.pop("litemlops.mlflow_route") is route
    assert found_child == child  # the endpoint and the path's parameters


def test_paths_elsewhere_and_other_scopes_are_not_mlflows() -> None:
    for path in ("/inference", "/api/models", "/api/2.0/mlflowx/runs/get", "/ajax-api/2.0"):
        for scope_type in ("http", "websocket"):
            scope = {"type": scope_type, "method": "GET", "path": path, "root_path": ""}
            assert API.matches(scope) == (Match.NONE, {})
    lifespan = {"type": "lifespan"}
    assert API.matches(lifespan) == (Match.NONE, {})


def test_every_route_path_with_every_method_finds_what_starlette_would() -> None:
    for path in PATHS:
        for filler in ("search", "x/y"):
            filled = re.sub(r"\{\w+(:\w+)?\}", filler, path)
            for method in METHODS:
                scope = {"type": "http", "method": method, "path": filled, "root_path": ""}
                match, route, _ = one_by_one(scope)
                found, child = API.matches(scope)
                assert (found, child.get("litemlops.mlflow_route")) == (match, route), scope


def test_a_route_with_parameters_listed_first_comes_first_as_in_starlette() -> None:
    async def endpoint(request: Any) -> Any:
        raise AssertionError("not called")

    first = Route("/api/2.0/mlflow/{thing}", endpoint, methods=["GET"])
    later = Route("/api/2.0/mlflow/runs", endpoint, methods=["GET", "POST"])
    api = MlflowApi([first, later])
    for method, found in (("GET", first), ("POST", later)):
        scope = {"type": "http", "method": method, "path": "/api/2.0/mlflow/runs", "root_path": ""}
        match, child = api.matches(scope)
        assert (match, child["litemlops.mlflow_route"]) == (Match.FULL, found)
