"""The admin API under /api/: registry, runs, pipelines, feature views, and its refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from litemlops.bootstrap import bootstrap
from litemlops.config import Config
from litemlops.demo import definitions as demo
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.server.mlflow import MLFLOW_PREFIXES
from litemlops.testing import FixedClock

MODEL = "driver_ranker"
DEMO = {"demo.drivers": 5, "demo.hours": 48, "demo.labels": 400, "logging.console": False}
#: No demo schedules: once a scheduler starts, a fire time behind the test's fixed clock
#: would run a pipeline at once, still running when the test closes the home.
NO_SCHEDULES = {"schedules.data": "", "schedules.training": "", "schedules.batch_predictions": ""}
ECHO = """
import time
from pathlib import Path

from litemlops import Pipeline, task
from litemlops.errors import ValidationError


@task
def first(ctx):
    return {"n": ctx.params["n"]}


@task(upstream="first")
def second(ctx):
    return ctx.upstream["first"]["n"] * 2


def check(params):
    n = params["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError(f"param n must be an integer >= 0, got {n!r}")
    return params


echo = Pipeline(
    "echo", [first, second], params={"n": 1}, check=check, description="Doubles n.",
    schedule="0 0 1 1 *", on=("alert:echo",),
)


@task
def wait_for_gate(ctx):
    gate = Path(ctx.config.home, "gate")
    for _ in range(2000):
        if gate.exists():
            return "opened"
        time.sleep(0.01)
    raise TimeoutError("nobody opened the gate")


gated = Pipeline("gated", [wait_for_gate])


@task
def steady(ctx):
    return 1


@task(upstream="steady")
def once_the_flag_is_up(ctx):
    if not Path(ctx.config.home, "flag").exists():
        raise RuntimeError("the flag is down")
    return ctx.upstream["steady"] + 1


flaky = Pipeline("flaky", [steady, once_the_flag_is_up])
"""
#: Every endpoint of the admin API that changes state: its route, a URL, a body it accepts.
MUTATING = [
    (
        "PUT",
        "/api/models/{name}/aliases/{alias}",
        f"/api/models/{MODEL}/aliases/champion",
        {"version": 2},
    ),
    (
        "DELETE",
        "/api/models/{name}/aliases/{alias}",
        f"/api/models/{MODEL}/aliases/challenger",
        None,
    ),
    (
        "POST",
        "/api/models/{name}/aliases/{alias}/rollback",
        f"/api/models/{MODEL}/aliases/champion/rollback",
        {},
    ),
    ("POST", "/api/pipelines/{name}/trigger", "/api/pipelines/echo/trigger", {"params": {"n": 2}}),
    ("POST", "/api/pipelines/runs/{run_id}/resume", "/api/pipelines/runs/some-run/resume", None),
    (
        "PUT",
        "/api/services/{service}/deployment",
        "/api/services/inference/deployment",
        {"strategy": "shadow", "challenger": 2},
    ),
    ("DELETE", "/api/services/{service}/deployment", "/api/services/inference/deployment", None),
    (
        "POST",
        "/api/services/{service}/deployment/promote",
        "/api/services/inference/deployment/promote",
        {},
    ),
]


def make_config(home: Path) -> Config:
    home.mkdir(parents=True, exist_ok=True)
    (home / "echo.py").write_text(ECHO)
    overrides = {**DEMO, **NO_SCHEDULES, "pipelines.modules": "echo.py"}
    return Config.load(home, env={}, overrides=overrides)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return make_config(tmp_path_factory.mktemp("admin") / "home")


@pytest.fixture(scope="module")
def platform(config: Config) -> Iterator[Platform]:
    """The demo home with version 1 as champion and version 2 as challenger.

    A fixed clock: the demo data is generated up to "now", so on the wall clock the
    trained model (and whether it passes the gate) would change from run to run.
    """
    with Platform(config, clock=FixedClock()) as opened:
        assert bootstrap(opened).no_champion is None
        # The same data and seed give the same model: asked for, it is version 2 anyway.
        training = opened.catalog.get("training")
        assert opened.pipelines.run(training, {"allow_duplicate": True}).state == "success"
        assert opened.registry.get_alias(MODEL, "challenger").version == 2
        yield opened


@pytest.fixture(scope="module")
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform, start_scheduler=False)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def auth(client: TestClient, config: Config) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.token_path.read_text().strip()}"}


def ok(response: Any, status: int = 200) -> Any:
    """The answer's JSON, checked to be strict JSON (no NaN) with the expected status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in {response.text[:200]}")

    return json.loads(response.text, parse_constant=refuse)


def error(response: Any, status: int) -> dict[str, str]:
    body = ok(response, status)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in response.text
    return dict(body["error"])


def served_version(client: TestClient) -> int:
    answer = ok(client.post("/inference", json={"request_id": "r", "driver_ids": [1001, 1002]}))
    return int(answer["version"])


def set_champion(client: TestClient, auth: dict[str, str], version: int) -> dict[str, Any]:
    url = f"/api/models/{MODEL}/aliases/champion"
    return dict(ok(client.put(url, json={"version": version}, headers=auth)))


# -- models -----------------------------------------------------------------------------------


def test_models_lists_each_model_with_its_latest_version_and_aliases(client):
    models = ok(client.get("/api/models"))

    assert [m["name"] for m in models] == [MODEL]
    assert models[0]["latest_version"] == 2
    assert models[0]["aliases"]["challenger"] == 2
    assert models[0]["created_at"].endswith("+00:00")


def test_a_model_shows_its_aliases_and_versions_newest_first(client):
    model = ok(client.get(f"/api/models/{MODEL}"))

    assert model["name"] == MODEL and "champion" in model["aliases"]
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["versions"][0]["uri"] == f"models:/{MODEL}/2"
    assert "challenger" in model["versions"][0]["aliases"]
    assert all("lineage" not in v for v in model["versions"])


def test_a_version_shows_its_lineage(client):
    version = ok(client.get(f"/api/models/{MODEL}/versions/1"))

    assert version["version"] == 1 and version["uri"] == f"models:/{MODEL}/1"
    lineage = version["lineage"]
    assert lineage["run_id"] == version["run_id"]
    assert lineage["metrics"] and lineage["params"]["features"]
    assert lineage["inputs"], "the feature views the model was trained on"


@pytest.mark.parametrize(
    "url",
    [
        "/api/models/nope",
        "/api/models/nope/versions/1",
        f"/api/models/{MODEL}/versions/99",
        f"/api/models/{MODEL}/aliases/nope",
        f"/api/models/{MODEL}/aliases/nope/history",
        "/api/models/nope/aliases/champion/history",
    ],
)
def test_unknown_models_versions_and_aliases_are_404(client, url):
    assert error(client.get(url), 404)["code"] == "not_found"


@pytest.mark.parametrize("version", ["abc", "0", "-1", "1.5", "99999999999999999999"])
def test_a_version_that_is_not_a_positive_integer_is_422(client, version):
    answer = error(client.get(f"/api/models/{MODEL}/versions/{version}"), 422)

    assert "version" in answer["message"]


def test_an_alias_answers_the_version_it_names_and_the_one_served(client):
    answer = ok(client.get(f"/api/models/{MODEL}/aliases/challenger"))

    assert answer["version"] == 2
    assert answer["served_version"] is None  # nobody asked for driver_ranker@challenger yet


def test_setting_the_champion_serves_the_new_version_with_the_next_request(client, auth):
    before = served_version(client)
    target = 2 if before == 1 else 1

    answer = set_champion(client, auth, target)

    assert answer == {
        "name": MODEL,
        "alias": "champion",
        "version": target,
        "served_version": target,
    }
    assert served_version(client) == target
    history = ok(client.get(f"/api/models/{MODEL}/aliases/champion/history"))
    assert (history[-1]["from_version"], history[-1]["to_version"]) == (before, target)
    assert history[-1]["action"] == "set"


def test_a_reason_is_kept_in_the_alias_history(client, auth):
    url = f"/api/models/{MODEL}/aliases/champion"
    current = served_version(client)

    ok(client.put(url, json={"version": 3 - current, "reason": "better auc"}, headers=auth))

    assert ok(client.get(f"{url}/history"))[-1]["reason"] == "better auc"


def test_rollback_puts_back_the_version_the_alias_held_before(client, auth):
    set_champion(client, auth, 1)
    set_champion(client, auth, 2)
    assert served_version(client) == 2

    answer = ok(
        client.post(
            f"/api/models/{MODEL}/aliases/champion/rollback",
            json={"reason": "v2 misbehaves"},
            headers=auth,
        )
    )

    assert (answer["version"], answer["served_version"]) == (1, 1)
    assert served_version(client) == 1
    last = ok(client.get(f"/api/models/{MODEL}/aliases/champion/history"))[-1]
    assert (last["action"], last["to_version"], last["reason"]) == ("rollback", 1, "v2 misbehaves")


def test_rollback_takes_no_body_at_all(client, auth):
    set_champion(client, auth, 2)

    answer = ok(client.post(f"/api/models/{MODEL}/aliases/champion/rollback", headers=auth))

    assert answer["version"] == 1
    assert served_version(client) == 1


def test_rollback_with_nothing_earlier_is_409(client, auth):
    url = f"/api/models/{MODEL}/aliases/fresh"
    ok(client.put(url, json={"version": 1}, headers=auth))

    assert error(client.post(f"{url}/rollback", headers=auth), 409)["code"] == "conflict"
    assert error(client.post(f"/api/models/{MODEL}/aliases/nope/rollback", headers=auth), 404)


def test_deleting_an_alias_removes_it_and_records_the_deletion(client, auth):
    url = f"/api/models/{MODEL}/aliases/staging"
    ok(client.put(url, json={"version": 1}, headers=auth))

    answer = ok(client.delete(url, params={"reason": "retired"}, headers=auth))

    assert (answer["alias"], answer["version"]) == ("staging", None)
    error(client.get(url), 404)
    last = ok(client.get(f"{url}/history"))[-1]
    assert (last["action"], last["from_version"], last["reason"]) == ("delete", 1, "retired")
    error(client.delete(url, headers=auth), 404)


def test_deleting_the_served_alias_says_the_server_keeps_its_version(client, auth):
    set_champion(client, auth, 1)
    url = f"/api/models/{MODEL}/aliases/champion"

    answer = ok(client.delete(url, headers=auth))

    assert (answer["version"], answer["served_version"]) == (None, 1)
    assert "still answers" in answer["warning"]
    assert served_version(client) == 1
    assert set_champion(client, auth, 1)["served_version"] == 1


def test_a_deleted_alias_can_be_rolled_back_into_place(client, auth):
    url = f"/api/models/{MODEL}/aliases/canary"
    ok(client.put(url, json={"version": 2}, headers=auth))
    ok(client.delete(url, headers=auth))

    assert ok(client.post(f"{url}/rollback", headers=auth))["version"] == 2
    assert ok(client.get(url))["version"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b'{"version": NaN}', 400),
        (b"[]", 422),
        (b"{}", 422),
        (b'{"version": "2"}', 422),
        (b'{"version": 2.5}', 422),
        (b'{"version": 0}', 422),
        (b'{"version": true}', 422),
        (b'{"version": 2, "reason": 7}', 422),
        (b'{"version": 2, "extra": 1}', 422),
        (b'{"version": 99}', 404),
    ],
)
def test_setting_an_alias_refuses_bad_bodies(client, auth, body, status):
    headers = {**auth, "content-type": "application/json"}
    before = ok(client.get(f"/api/models/{MODEL}"))["aliases"]

    error(
        client.put(f"/api/models/{MODEL}/aliases/champion", content=body, headers=headers), status
    )

    assert ok(client.get(f"/api/models/{MODEL}"))["aliases"] == before


@pytest.mark.parametrize("alias", ["latest", "v2", "1st", "a" * 65])
def test_reserved_or_malformed_alias_names_are_422(client, auth, alias):
    url = f"/api/models/{MODEL}/aliases/{alias}"

    assert "alias" in error(client.put(url, json={"version": 1}, headers=auth), 422)["message"]


def test_setting_an_alias_of_an_unknown_model_is_404(client, auth):
    error(client.put("/api/models/nope/aliases/champion", json={"version": 1}, headers=auth), 404)


def test_bodies_over_the_limit_are_413(client, auth):
    big = json.dumps({"version": 1, "reason": "x" * 1_100_000})

    headers = {**auth, "content-type": "application/json"}
    response = client.put(f"/api/models/{MODEL}/aliases/champion", content=big, headers=headers)

    assert error(response, 413)["code"] == "body_too_large"


def test_rollback_refuses_malformed_and_unknown_bodies(client, auth):
    url = f"/api/models/{MODEL}/aliases/champion/rollback"
    headers = {**auth, "content-type": "application/json"}

    error(client.post(url, content=b"{", headers=headers), 400)
    error(client.post(url, json={"why": "x"}, headers=auth), 422)


# -- the token --------------------------------------------------------------------------------


def mutating_routes(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, path) of the app that is not a read or a prediction."""
    found = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            for method in route.methods or ():
                if (
                    method not in ("GET", "HEAD")
                    and route.path_format not in ("/inference", "/predict/{model}")
                    # MLflow's API answers in MLflow's shapes: tests/server/test_mlflow_*.py
                    and not route.path_format.startswith(MLFLOW_PREFIXES)
                ):
                    found.add((method, route.path_format))
    return found


def test_the_mutating_endpoints_tested_here_are_all_the_apps(client):
    listed = {(method, route) for method, route, _, _ in MUTATING}

    assert mutating_routes(client) == listed | {("POST", "/push/{view}"), ("POST", "/feedback")}


@pytest.mark.parametrize(("method", "route", "url", "body"), MUTATING)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token-at-all"},
        {"Authorization": "not-the-token-at-all"},
        {"X-Litemlops-Token": "not-the-token-at-all"},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong-bearer", "wrong-bare", "wrong-header", "empty"],
)
def test_every_mutating_endpoint_refuses_a_missing_or_wrong_token(
    client, platform, method, route, url, body, headers
):
    runs = len(platform.pipelines.list_runs(limit=1000))
    aliases = ok(client.get(f"/api/models/{MODEL}"))["aliases"]

    response = client.request(method, url, json=body, headers=headers)

    assert error(response, 401)["code"] == "unauthorized"
    sent = any(v for k, v in headers.items() if k.lower() in ("authorization", "x-litemlops-token"))
    assert response.headers["www-authenticate"] == 'Bearer realm="litemlops"' + (
        ', error="invalid_token"' if sent else ""
    )
    assert len(platform.pipelines.list_runs(limit=1000)) == runs
    assert ok(client.get(f"/api/models/{MODEL}"))["aliases"] == aliases


@pytest.mark.parametrize(("method", "url"), [("POST", "/push/driver_stats"), ("POST", "/feedback")])
def test_push_and_feedback_refuse_without_the_token_too(client, method, url):
    error(client.request(method, url, json={}), 401)


def test_the_token_also_works_in_its_own_header(client, config):
    token = config.token_path.read_text().strip()
    url = f"/api/models/{MODEL}/aliases/header"

    answer = ok(client.put(url, json={"version": 1}, headers={"X-Litemlops-Token": token}))

    assert answer["version"] == 1


# -- tracking runs ----------------------------------------------------------------------------


def test_runs_are_searched_filtered_ordered_and_paged(client):
    everything = ok(client.get("/api/runs"))["runs"]
    assert len(everything) >= 2

    first = ok(client.get("/api/runs", params={"experiment": MODEL, "limit": 1}))
    assert len(first["runs"]) == 1 and first["next_page_token"]
    second = ok(
        client.get(
            "/api/runs",
            params={"experiment": MODEL, "limit": 1, "page_token": first["next_page_token"]},
        )
    )
    assert second["runs"][0]["run_id"] != first["runs"][0]["run_id"]

    ordered = ok(client.get("/api/runs", params={"order_by": "metrics.auc ASC"}))["runs"]
    aucs = [r["metrics"]["auc"] for r in ordered if "auc" in r["metrics"]]
    assert aucs == sorted(aucs)
    none = ok(client.get("/api/runs", params={"filter": "metrics.auc > 2"}))
    assert none == {"runs": [], "next_page_token": None}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": "0"}, 422),
        ({"limit": "many"}, 422),
        ({"limit": "1001"}, 422),
        ({"filter": "metrics.auc >>> 1"}, 422),
        ({"order_by": "nonsense DESC DESC"}, 422),
        ({"page_token": "garbage"}, 422),
        ({"experiment": "no-such-experiment"}, 404),
    ],
)
def test_bad_run_searches_are_refused(client, params, status):
    error(client.get("/api/runs", params=params), status)


def test_a_run_shows_params_metrics_artifacts_models_and_inputs(client):
    run_id = ok(client.get(f"/api/models/{MODEL}/versions/1"))["run_id"]

    run = ok(client.get(f"/api/runs/{run_id}"))

    assert run["run_id"] == run_id and run["status"] == "finished"
    assert run["params"] and run["metrics"]
    assert run["models"] == [
        {"name": "model", "sha256": run["models"][0]["sha256"], "uri": f"runs:/{run_id}/model"}
    ]
    assert isinstance(run["artifacts"], list) and run["inputs"]


def test_an_unknown_run_is_404(client):
    error(client.get("/api/runs/" + "0" * 32), 404)
    error(client.get("/api/runs/not-a-run"), 404)


# -- pipelines --------------------------------------------------------------------------------


def test_pipelines_are_described_with_tasks_params_and_triggers(client):
    pipelines = {p["name"]: p for p in ok(client.get("/api/pipelines"))}

    assert {"data", "training", "batch_predictions", "echo", "gated"} <= set(pipelines)
    echo = pipelines["echo"]
    assert echo["description"] == "Doubles n."
    assert echo["tasks"] == [
        {"name": "first", "upstream": [], "retries": 0, "timeout": None},
        {"name": "second", "upstream": ["first"], "retries": 0, "timeout": None},
    ]
    assert echo["params"] == {"n": 1}
    assert (echo["schedule"], echo["on"]) == ("0 0 1 1 *", ["alert:echo"])
    assert pipelines["data"]["schedule"] is None  # switched off in this home's config


def test_pipeline_runs_are_listed_newest_first_and_filtered(client):
    runs = ok(client.get("/api/pipelines/runs"))
    assert runs and all(r["duration"] is None or r["duration"] >= 0 for r in runs)

    training = ok(client.get("/api/pipelines/runs", params={"pipeline": "training"}))
    assert len(training) >= 2 and {r["pipeline"] for r in training} == {"training"}
    assert [r["queued_at"] for r in training] == sorted(
        (r["queued_at"] for r in training), reverse=True
    )
    one = ok(client.get("/api/pipelines/runs", params={"state": "success", "limit": 1}))
    assert len(one) == 1 and one[0]["state"] == "success"
    assert ok(client.get("/api/pipelines/runs", params={"pipeline": "nothing"})) == []


@pytest.mark.parametrize("params", [{"state": "sleeping"}, {"limit": "0"}, {"limit": "x"}])
def test_bad_pipeline_run_filters_are_422(client, params):
    error(client.get("/api/pipelines/runs", params=params), 422)


def test_a_pipeline_run_shows_its_task_attempts_without_tracebacks(client):
    run_id = ok(client.get("/api/pipelines/runs", params={"pipeline": "training"}))[0]["run_id"]

    run = ok(client.get(f"/api/pipelines/runs/{run_id}"))

    assert run["run_id"] == run_id and run["state"] == "success" and run["duration"] >= 0
    assert run["tasks"] and all(t["state"] == "success" for t in run["tasks"])
    assert all("traceback" not in t and t["attempt"] == 1 for t in run["tasks"])
    error(client.get("/api/pipelines/runs/" + "f" * 32), 404)


def test_a_trigger_runs_the_pipeline_with_its_params_and_answers_202(client, auth):
    answer = ok(
        client.post("/api/pipelines/echo/trigger", json={"params": {"n": 3}}, headers=auth), 202
    )

    assert answer["accepted"] is True and answer["pipeline"] == "echo"
    # The test app's scheduler is not started, so the run is done by the answer.
    assert answer["state"] == "success"
    run = ok(client.get(f"/api/pipelines/runs/{answer['run_id']}"))
    assert (run["trigger"], run["payload"]["via"], run["params"]) == ("manual", "api", {"n": 3})
    assert [t["output"] for t in run["tasks"]] == [{"n": 3}, 6]


def test_a_trigger_without_a_body_runs_with_the_defaults(client, auth):
    answer = ok(client.post("/api/pipelines/echo/trigger", headers=auth), 202)

    assert ok(client.get(f"/api/pipelines/runs/{answer['run_id']}"))["params"] == {"n": 1}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"params": {"n": -1}}, 422, "n must be"),
        ({"params": {"n": "3"}}, 422, "n must be"),
        ({"params": {"m": 1}}, 422, "no params ['m']"),
        ({"params": [1]}, 422, "params"),
        ({"params": {}, "extra": 1}, 422, "extra"),
        ({"wait": -1}, 422, "wait"),
        ({"wait": 601}, 422, "wait"),
        ({"wait": "soon"}, 422, "wait"),
        ({"wait": True}, 422, "wait"),
        (b"{oops", 400, "JSON"),
    ],
)
def test_a_trigger_refuses_bad_params_before_any_run(client, platform, auth, body, status, says):
    before = len(platform.pipelines.list_runs(pipeline="echo", limit=1000))
    if isinstance(body, bytes):
        headers = {**auth, "content-type": "application/json"}
        response = client.post("/api/pipelines/echo/trigger", content=body, headers=headers)
    else:
        response = client.post("/api/pipelines/echo/trigger", json=body, headers=auth)

    assert says in error(response, status)["message"]
    assert len(platform.pipelines.list_runs(pipeline="echo", limit=1000)) == before


def test_a_trigger_checks_params_with_the_pipelines_own_check(client, auth):
    response = client.post(
        "/api/pipelines/training/trigger", json={"params": {"test_size": 7}}, headers=auth
    )

    assert "test_size" in error(response, 422)["message"]


def test_triggering_an_unknown_pipeline_is_404(client, auth):
    error(client.post("/api/pipelines/nope/trigger", headers=auth), 404)


def test_a_failed_run_resumes_from_its_failed_task_and_only_a_failed_one(client, auth, config):
    failed = ok(client.post("/api/pipelines/flaky/trigger", headers=auth), 202)
    assert failed["state"] == "failed"
    url = f"/api/pipelines/runs/{failed['run_id']}"
    (config.home / "flag").touch()

    answer = ok(client.post(f"{url}/resume", headers=auth), 202)
    again = client.post(f"{url}/resume", headers=auth)

    assert answer == {
        "accepted": True, "pipeline": "flaky", "run_id": failed["run_id"], "state": "success"
    }
    tasks = [(t["task"], t["attempt"], t["state"]) for t in ok(client.get(url))["tasks"]]
    assert tasks == [
        ("steady", 1, "success"),
        ("once_the_flag_is_up", 1, "failed"),
        ("once_the_flag_is_up", 2, "success"),
    ]
    assert "only a failed run resumes" in error(again, 409)["message"]
    assert "nope" in error(client.post("/api/pipelines/runs/nope/resume", headers=auth), 404)[
        "message"
    ]


def test_a_trigger_answers_before_the_run_ends_once_the_scheduler_runs(tmp_path):
    config = make_config(tmp_path / "home")
    # The wall clock: echo's yearly schedule must not be due (it would be on a fixed clock).
    with Platform(config) as platform:
        platform.features.apply([demo.driver, demo.driver_stats])  # what the service needs
        app = create_app(platform, start_scheduler=True)
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {config.token_path.read_text().strip()}"}

            answer = ok(client.post("/api/pipelines/gated/trigger", headers=headers), 202)

            assert answer["state"] == "running" and answer["run_id"]
            url = f"/api/pipelines/runs/{answer['run_id']}"
            assert ok(client.get(url))["state"] == "running"
            (config.home / "gate").touch()
            deadline = time.monotonic() + 20
            while ok(client.get(url))["state"] == "running" and time.monotonic() < deadline:
                time.sleep(0.02)
            run = ok(client.get(url))
            assert run["state"] == "success"
            assert run["tasks"][0]["output"] == "opened"


def test_a_trigger_with_wait_answers_once_its_run_ended_or_the_wait_ran_out(tmp_path):
    config = make_config(tmp_path / "home")
    with Platform(config) as platform:
        platform.features.apply([demo.driver, demo.driver_stats])
        app = create_app(platform, start_scheduler=True)
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {config.token_path.read_text().strip()}"}
            started = time.monotonic()

            short = ok(client.post("/api/pipelines/gated/trigger", json={"wait": 0.5},
                                   headers=headers), 202)

            assert time.monotonic() - started >= 0.5
            assert short["state"] == "running"  # the wait ran out; the run goes on
            url = f"/api/pipelines/runs/{short['run_id']}"
            assert ok(client.get(url))["state"] == "running"
            opener = threading.Timer(0.5, (config.home / "gate").touch)
            opener.start()
            try:
                long = ok(client.post("/api/pipelines/gated/trigger", json={"wait": 60},
                                      headers=headers), 202)
            finally:
                opener.join()

            assert long["state"] == "success" and long["run_id"] != short["run_id"]
            ended = ok(client.get(f"/api/pipelines/runs/{long['run_id']}"))
            assert ended["state"] == "success" and ended["tasks"][0]["output"] == "opened"
            deadline = time.monotonic() + 20
            while ok(client.get(url))["state"] == "running" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert ok(client.get(url))["state"] == "success"  # the first one was not stopped


# -- feature views ----------------------------------------------------------------------------


def test_feature_views_are_described(client):
    views = ok(client.get("/api/features"))

    assert [v["name"] for v in views] == ["driver_stats"]
    view = ok(client.get("/api/features/driver_stats"))
    assert view["join_keys"] == {"driver_id": "int64"}
    assert set(view["features"]) == {"conv_rate", "acc_rate", "avg_daily_trips"}
    assert view["offline_rows"] > 0 and view["online_entities"] == 5
    assert view["event_time_max"].endswith("+00:00")


def test_an_unknown_feature_view_is_404(client):
    assert "driver_stats" in error(client.get("/api/features/nope"), 404)["message"]


def test_a_wrong_method_is_a_json_405(client):
    assert error(client.post("/api/models"), 405)["code"] == "method_not_allowed"


def test_an_answer_built_from_a_dataclass_s_fields_equals_one_from_a_deep_copy() -> None:
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from hypothesis import given
    from hypothesis import strategies as st

    from litemlops.server.admin import asdict, jsonable

    @dataclasses.dataclass
    class Attempt:
        task: str
        started: datetime
        took: timedelta

    @dataclasses.dataclass
    class Run:
        run_id: str
        params: dict[str, Any]
        attempts: list[Attempt]
        last: Attempt | None
        score: float

    values = st.none() | st.integers() | st.floats() | st.text(max_size=5)
    attempts = st.builds(
        Attempt, st.text(max_size=5),
        st.datetimes(timezones=st.just(UTC)), st.timedeltas(max_value=timedelta(days=9)),
    )  # fmt: skip
    runs = st.builds(
        Run, st.text(max_size=5),
        st.dictionaries(st.text(max_size=3), values | st.lists(values, max_size=3), max_size=3),
        st.lists(attempts, max_size=3), st.none() | attempts, st.floats(),
    )  # fmt: skip

    @given(runs)
    def check(run: Run) -> None:
        before = dataclasses.asdict(run)
        assert jsonable(asdict(run)) == jsonable(before)
        assert dataclasses.asdict(run) == before  # the run itself is left as it was

    check()
