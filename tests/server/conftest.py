"""Fixtures for the server tests: a home with a champion, the app serving it, its token.

Bootstrapping the demo (data, then training) takes seconds, so it runs once per
session into a template home; each test module serves a copy of it, so one
module's pushes, new versions and alias moves never leak into another's.

- `served_overrides` (module): config values ("section.key" -> value) for the
  module's home; redefine it in a test module to change them.
- `served_home` (module): the `Config` of that module's copy of the template.
- `served_clock`, `served_platform`, `served_app` (module): its clock, the open
  platform and the app (scheduler off).
- `client` (module): a `TestClient` with the lifespan running, events logged to
  `<home>/logs/events.jsonl` on a background thread as in production.
- `token`, `auth` (module): the admin token and headers that carry it.
- `read_events` (function): `read_events(name=None)` flushes the event log and
  returns its events (of one name when given).
- `home_factory` (function): `home_factory(overrides, champion=True)` makes one
  more copy of the template for a test that needs its own home.
- `serve` (session): `with serve(config) as (platform, client):` opens a home and
  serves it for one test (scheduler off, fixed clock).
- `error_of` (session): checks an error answer's shape and returns its `error`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mlflow_live import mlflow_client, mlflow_server  # noqa: F401  (fixtures, for MLflow's tests)
from starlette.applications import Starlette
from starlette.testclient import TestClient

from litemlops.config import Config
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.testing import FixedClock

#: Small enough to bootstrap in about a second, with labels enough for the gate.
SERVED_DEMO: dict[str, Any] = {
    "demo.drivers": 5,
    "demo.hours": 48,
    "demo.labels": 400,
    "logging.console": False,
}
MODEL = "driver_ranker"


def load_config(home: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The config of `home`, deaf to the developer's `LITEMLOPS_*` variables."""
    return Config.load(home, env={}, overrides={**SERVED_DEMO, **(overrides or {})})


def copy_home(template: Path, home: Path, overrides: dict[str, Any] | None = None) -> Config:
    shutil.copytree(template, home)
    return load_config(home, overrides)


@pytest.fixture(scope="session")
def served_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed home where `driver_ranker@champion` (version 1) exists."""
    from litemlops.bootstrap import bootstrap

    home = tmp_path_factory.mktemp("served-template") / "home"
    with Platform(load_config(home), clock=FixedClock()) as platform:
        report = bootstrap(platform)
        assert report.no_champion is None, report.no_champion
        assert platform.registry.get_alias(MODEL, "champion").version == 1
    return home


@pytest.fixture(scope="module")
def served_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def served_home(
    served_template: Path,
    served_overrides: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Config:
    return copy_home(served_template, tmp_path_factory.mktemp("served") / "home", served_overrides)


@pytest.fixture(scope="module")
def served_clock() -> FixedClock:
    """Where the template's data ends, so every driver's features are current."""
    return FixedClock()


@pytest.fixture(scope="module")
def served_platform(served_home: Config, served_clock: FixedClock) -> Iterator[Platform]:
    with Platform(served_home, clock=served_clock) as platform:
        yield platform


@pytest.fixture(scope="module")
def served_app(served_platform: Platform) -> Starlette:
    return create_app(served_platform, start_scheduler=False)


@pytest.fixture(scope="module")
def client(served_app: Starlette, served_home: Config) -> Iterator[TestClient]:
    configure_logging(served_home, background=True)
    try:
        with TestClient(served_app) as test_client:
            yield test_client
    finally:
        shutdown_logging()


@pytest.fixture(scope="module")
def token(client: TestClient, served_home: Config) -> str:
    """The token the app made in `<home>/token` at start."""
    return served_home.token_path.read_text().strip()


@pytest.fixture(scope="module")
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def read_events(
    client: TestClient, served_home: Config
) -> Callable[[str | None], list[dict[str, Any]]]:
    """Stops the logging thread (which writes all it holds), reads the file, starts again."""

    def read(name: str | None = None) -> list[dict[str, Any]]:
        shutdown_logging()
        try:
            lines = served_home.events_log_path.read_text().splitlines()
        finally:
            configure_logging(served_home, background=True)
        found = [json.loads(line) for line in lines if line.strip()]
        return [e for e in found if name is None or e.get("event") == name]

    return read


@pytest.fixture
def home_factory(served_template: Path, tmp_path: Path) -> Callable[..., Config]:
    """`make(overrides=None, champion=True)`: one more copy; without its champion alias
    when `champion` is false (the state of a home whose training has not passed yet)."""
    made = 0

    def make(overrides: dict[str, Any] | None = None, *, champion: bool = True) -> Config:
        nonlocal made
        made += 1
        config = copy_home(served_template, tmp_path / f"home-{made}", overrides)
        if not champion:
            with Platform(config, clock=FixedClock()) as platform:
                platform.registry.delete_alias(MODEL, "champion", reason="test")
        return config

    return make


@pytest.fixture(scope="session")
def serve() -> Callable[..., AbstractContextManager[tuple[Platform, TestClient]]]:
    @contextmanager
    def open_and_serve(
        config: Config, **client_options: Any
    ) -> Iterator[tuple[Platform, TestClient]]:
        with (
            Platform(config, clock=FixedClock()) as platform,
            TestClient(create_app(platform, start_scheduler=False), **client_options) as client,
        ):
            yield platform, client

    return open_and_serve


@pytest.fixture(scope="session")
def error_of() -> Callable[[Any], dict[str, str]]:
    """`error_of(response)`: the `{"code", "message"}` of an error answer, once its shape
    (JSON, nothing but `error`, no traceback) is checked."""

    def check(response: Any) -> dict[str, str]:
        assert response.headers["content-type"].startswith("application/json"), response.text
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["code"], str) and body["error"]["code"]
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert "Traceback" not in response.text
        return dict(body["error"])

    return check
