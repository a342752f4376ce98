"""The app mounted in another application: a Starlette host and a FastAPI host, each
with a lifespan of its own that Starlette runs instead of the mounted app's."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from litemlops.cli import cli
from litemlops.config import Config
from litemlops.errors import HomeLockedError
from litemlops.monitoring.events import read_predictions
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.testing import FixedClock

MODEL = "driver_ranker"


def starlette_host(ml: Any, lifespan_log: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        lifespan_log.append("host started")
        yield {"greeting": "hello"}
        lifespan_log.append("host stopped")

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"host": request.state.greeting})

    return Starlette(routes=[Route("/hello", hello), Mount("/ml", app=ml)], lifespan=lifespan)


def fastapi_host(ml: Any, lifespan_log: list[str]) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lifespan_log.append("host started")
        yield {"greeting": "hello"}
        lifespan_log.append("host stopped")

    host = FastAPI(lifespan=lifespan)

    @host.get("/hello")
    async def hello(request: Request) -> dict[str, str]:
        return {"host": request.state.greeting}

    host.mount("/ml", ml)
    return host


HOSTS: dict[str, Callable[[Any, list[str]], Any]] = {
    "starlette": starlette_host,
    "fastapi": fastapi_host,
}


def fresh_row(driver_id: int, conv_rate: float) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "driver_id": driver_id,
        "datetime": now,
        "created": now,
        "conv_rate": conv_rate,
        "acc_rate": 0.9,
        "avg_daily_trips": 100,
    }


@pytest.mark.parametrize("host_kind", sorted(HOSTS))
def test_a_mounted_app_serves_under_its_prefix_and_closes_the_home_with_its_host(
    host_kind: str, home_factory: Callable[..., Config]
):
    config = home_factory()
    lifespan_log: list[str] = []
    host = HOSTS[host_kind](create_app(config=config, start_scheduler=False), lifespan_log)

    with TestClient(host) as client:
        hello = client.get("/hello")
        health = client.get("/ml/health")
        ready = client.get("/ml/ready")
        token = config.token_path.read_text().strip()
        pushed = client.post(
            "/ml/push/driver_stats",
            json={"rows": [fresh_row(1001, 0.1), fresh_row(1002, 0.9)]},
            headers={"Authorization": f"Bearer {token}"},
        )
        inference = client.post(
            "/ml/inference", json={"request_id": "embedded-1", "driver_ids": [1001, 1002]}
        )
        predict = client.post(
            f"/ml/predict/{MODEL}@champion",
            json={"features": [{"conv_rate": 0.5, "acc_rate": 0.5, "avg_daily_trips": 10}]},
        )
        document = client.get("/ml/openapi.json")
        redirect = client.get("/ml/health/", follow_redirects=False)
        metrics = client.get("/ml/metrics")
        root = client.get("/ml/", follow_redirects=False)
        page = client.get("/ml/ui")
        assets = [client.get(u) for u in re.findall(r'(?:src|href)="(/ml/ui/static/[^"]+)"',
                                                     page.text)]
        # the app holds the home while it serves
        with pytest.raises(HomeLockedError, match=r"is in use by process \d+"):
            Platform(config, clock=FixedClock())

    assert hello.status_code == 200 and hello.json() == {"host": "hello"}
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["model"] == MODEL
    assert pushed.status_code == 200, pushed.text
    assert inference.status_code == 200, inference.text
    assert inference.json()["prediction"] in (1001, 1002)
    assert set(inference.json()["scores"]) == {"1001", "1002"}
    assert predict.status_code == 200, predict.text
    assert len(predict.json()["predictions"]) == 1
    assert document.status_code == 200
    assert document.json()["servers"] == [{"url": "/ml"}]
    assert "/inference" in document.json()["paths"]
    assert redirect.status_code in (307, 308)
    assert redirect.headers["location"].endswith("/ml/health")
    assert 'endpoint="/inference"' in metrics.text
    # The dashboard's links and API calls start with the mount's prefix.
    assert root.status_code == 307 and root.headers["location"] == "/ml/ui"
    assert page.status_code == 200 and 'href="/ui' not in page.text
    assert len(assets) == 3 and all(a.status_code == 200 for a in assets)
    assert lifespan_log == ["host started", "host stopped"]
    with Platform(config, clock=FixedClock()):  # closed with its host: the lock is free
        pass
    # What the embedded app served is in the home's log, for monitoring and `logs`.
    served = read_predictions(config.logs_dir)
    assert set(served["request_id"]) >= {"embedded-1"}
    assert sorted(served.loc[served["request_id"] == "embedded-1", "entity"]) == ["1001", "1002"]
    env = {k: None for k in os.environ if k.startswith("LITEMLOPS_")}
    shown = CliRunner().invoke(
        cli,
        ["logs", "--json", "--event", "prediction_served", "--home", str(config.home)],
        env=env,
    )
    assert shown.exit_code == 0, shown.output
    request_ids = [json.loads(line)["request_id"] for line in shown.output.splitlines()]
    assert "embedded-1" in request_ids


def test_a_mounted_app_that_cannot_open_its_home_answers_503_and_tries_again(
    home_factory: Callable[..., Config], error_of: Callable[[Any], dict[str, str]]
):
    config = home_factory()
    host = starlette_host(create_app(config=config, start_scheduler=False), [])

    with TestClient(host) as client:
        with Platform(config, clock=FixedClock()):  # someone else holds the home
            refused = client.get("/ml/ready")
        after = client.get("/ml/ready")

    assert refused.status_code == 503
    error = error_of(refused)
    assert error["code"] == "not_ready" and "HomeLockedError" in error["message"]
    assert after.status_code == 200, after.text


def test_a_host_may_run_the_mounted_apps_lifespan_itself(home_factory: Callable[..., Config]):
    config = home_factory()
    ml = create_app(config=config, start_scheduler=False)
    opened_in_lifespan: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with ml.router.lifespan_context(ml):
            opened_in_lifespan.append(ml.serving)
            yield

    host = Starlette(routes=[Mount("/ml", app=ml)], lifespan=lifespan)
    with TestClient(host) as client:
        ready = client.get("/ml/ready")

    assert opened_in_lifespan == [True]
    assert ready.status_code == 200, ready.text
    assert not ml.serving
    with Platform(config, clock=FixedClock()):
        pass


def test_a_mounted_apps_predictions_go_to_its_own_homes_log_only(
    home_factory: Callable[..., Config],
):
    served, other = home_factory(), home_factory()
    host = starlette_host(create_app(config=served, start_scheduler=False), [])
    body = {"features": [{"conv_rate": 0.5, "acc_rate": 0.5, "avg_daily_trips": 10}]}

    with Platform(other, clock=FixedClock()), TestClient(host) as client:
        answer = client.post(f"/ml/predict/{MODEL}@champion", json={"request_id": "mine", **body})

    assert answer.status_code == 200, answer.text
    assert list(read_predictions(served.logs_dir)["request_id"]) == ["mine"]
    assert read_predictions(other.logs_dir).empty


def test_under_uvicorn_a_mounted_app_closes_its_home_when_the_server_stops(
    home_factory: Callable[..., Config],
):
    import threading
    import time

    import httpx
    import uvicorn

    config = home_factory()
    lifespan_log: list[str] = []
    host = starlette_host(create_app(config=config, start_scheduler=False), lifespan_log)
    server = uvicorn.Server(
        uvicorn.Config(host, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        ready = httpx.get(f"http://127.0.0.1:{port}/ml/ready", timeout=30)
        with pytest.raises(HomeLockedError, match=r"is in use by process \d+"):
            Platform(config, clock=FixedClock())
    finally:
        server.should_exit = True
        thread.join(30)

    assert ready.status_code == 200, ready.text
    assert lifespan_log == ["host started", "host stopped"]
    with Platform(config, clock=FixedClock()):  # closed when the server stopped
        pass
