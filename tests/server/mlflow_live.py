"""A real server on 127.0.0.1 for MLflow's real client, and the client pointed at it
(fixtures that tests/server/conftest.py imports).

- `mlflow_server` (module): `(url, token, platform)` of the module's copy of the
  served home, served by uvicorn on a free port in a thread (scheduler off).
- `mlflow_client` (function): MLflow's client configured through its environment
  variables (tracking URI and token, no retries) and `set_tracking_uri`; yields
  an `MlflowClient` (delete MLFLOW_TRACKING_TOKEN with monkeypatch to read
  without the token).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.server import create_app


@pytest.fixture(scope="module")
def mlflow_server(
    served_platform: Platform, served_home: Config
) -> Iterator[tuple[str, str, Platform]]:
    import uvicorn

    app = create_app(served_platform, start_scheduler=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "the server did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        token = served_home.token_path.read_text().strip()
        yield f"http://127.0.0.1:{port}", token, served_platform
    finally:
        server.should_exit = True
        thread.join(30)


def _configure(monkeypatch: pytest.MonkeyPatch, url: str, token: str) -> Any:
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    return MlflowClient(url, url)


@pytest.fixture
def mlflow_client(
    mlflow_server: tuple[str, str, Platform], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    url, token, _ = mlflow_server
    client = _configure(monkeypatch, url, token)
    import mlflow

    try:
        yield client
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
