"""`litemlops.server` by concept: no import cycle among its modules, none too long, and
error answers made by one handler keyed by the error's class."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from litemlops.errors import (
    AliasNotFoundError,
    LitemlopsError,
    ParamConflictError,
    RegistryStateError,
    TamperedArtifactError,
    ValidationError,
)
from litemlops.scheduler.scheduler import SchedulerStateError
from litemlops.scheduler.workers import WorkerDiedError
from litemlops.server.errors import HANDLED, handle_error
from litemlops.server.http import ApiError
from litemlops.serving.errors import (
    FeaturesMismatchError,
    InvalidModelError,
    InvalidRequestError,
    ModelUnavailableError,
    ServedModelUnavailableError,
    ServiceNotReadyError,
    UnknownEntitiesError,
)

SERVER = Path(__file__).resolve().parents[2] / "litemlops" / "server"


def server_imports(path: Path) -> set[str]:
    """The litemlops.server modules a module imports, anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("litemlops.server."):
            found.add(node.module.rsplit(".", 1)[1])
    return found


def test_server_modules_import_each_other_without_a_cycle():
    graph = {p.stem: server_imports(p) for p in SERVER.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_every_server_module_stays_under_500_lines():
    lengths = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in SERVER.glob("*.py")}

    assert {name: n for name, n in lengths.items() if n >= 500} == {}


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ApiError(418, "teapot", "short and stout"), 418, "teapot"),
        (ServiceNotReadyError("features missing"), 503, "not_ready"),
        (ServedModelUnavailableError("no champion"), 503, "model_unavailable"),
        (ModelUnavailableError("no such model"), 404, "model_unavailable"),
        (InvalidModelError("no signature"), 422, "invalid_model"),
        (UnknownEntitiesError("no features for [7]", [7]), 404, "unknown_entities"),
        (FeaturesMismatchError("needs acc_rate"), 500, "model_features_mismatch"),
        (InvalidRequestError("repeats [1]"), 422, "invalid_request"),
        (AliasNotFoundError("no alias"), 404, "not_found"),
        (SchedulerStateError("not running"), 503, "unavailable"),
        (RegistryStateError("nothing earlier"), 409, "conflict"),
        (ValidationError("bad value"), 422, "invalid_request"),
        (ParamConflictError("logged before"), 422, "invalid_request"),
        (WorkerDiedError("worker died"), 500, "internal_error"),
        (TamperedArtifactError("sha256 differs"), 500, "internal_error"),
        (RuntimeError("a bug"), 500, "internal_error"),
    ],
)
def test_one_handler_answers_each_error_by_its_class(error, status, code):
    async def fail(request: Request):
        raise error

    app = Starlette(
        routes=[Route("/", fail)], exception_handlers=dict.fromkeys(HANDLED, handle_error)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/")

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    if code != "internal_error":
        assert answer.json()["error"]["message"] == str(error)
    else:  # the server's own failure: details go to its log, not to the client
        assert str(error) not in answer.text


def test_a_library_error_of_a_refused_state_is_a_conflict():
    class Busy(LitemlopsError, RuntimeError):
        pass

    async def fail(request: Request):
        raise Busy("a run is in progress")

    app = Starlette(
        routes=[Route("/", fail)], exception_handlers=dict.fromkeys(HANDLED, handle_error)
    )
    with TestClient(app) as client:
        answer = client.get("/")

    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "conflict")
