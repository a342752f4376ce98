"""The admin token guards every endpoint that changes state, and the server will not
listen beyond loopback unless someone set that token on purpose."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route

from litemlops import events
from litemlops.config import Config
from litemlops.errors import ConfigError
from litemlops.server import create_app
from litemlops.server.mlflow import MLFLOW_PREFIXES
from litemlops.server.security import admin_token, check_bind, token_matches

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

#: POST endpoints that only read: anyone who can reach the server may call them.
PUBLIC_POSTS = {"/inference", "/predict/{model:path}"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
#: Path parameters filled with things that exist, so a missing check shows as a change.
REAL = {
    "view": "driver_stats",
    "model": "driver_ranker",
    "name": "driver_ranker",
    "alias": "champion",
    "version": "1",
    "pipeline": "data",
}
EXPLICIT = "an-explicit-token-of-enough-length"


def _walk(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for route in routes:
        if isinstance(route, Mount):
            found += _walk(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            path = prefix + route.path
            if path.startswith(MLFLOW_PREFIXES):
                continue  # MLflow's shapes: tests/server/test_mlflow_tracking.py checks them
            found += [(m, path) for m in sorted(route.methods or ()) if m in MUTATING]
    return found


def mutating_routes() -> list[tuple[str, str]]:
    """Every state-changing route the app has now, admin API included as it grows."""
    app = create_app(config=Config.load(Path("/nonexistent-litemlops-home"), env={}))
    return [(m, p) for m, p in _walk(list(app.routes)) if p not in PUBLIC_POSTS]


ROUTES = mutating_routes()


def fill(path: str, values: dict[str, str], default: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), default), path)


def valid_body(path: str, clock_now: str) -> dict[str, Any]:
    if path == "/push/{view}":
        row = {"driver_id": 1005, "datetime": clock_now, "created": clock_now}
        return {"rows": [{**row, "conv_rate": 0.4, "acc_rate": 0.6, "avg_daily_trips": 20}]}
    if path == "/feedback":
        return {"request_id": "sec", "label": 0}
    return {}


@pytest.fixture
def now(served_clock) -> str:
    return served_clock.advance(1).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_push_and_feedback_are_among_the_guarded_routes():
    assert ("POST", "/push/{view}") in ROUTES
    assert ("POST", "/feedback") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token-at-all"},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"X-Litemlops-Token": "not-the-token-at-all"},
    ],
    ids=["no token", "wrong bearer", "empty header", "bearer alone", "wrong x-token"],
)
def test_a_mutating_endpoint_refuses_without_the_right_token(
    client, error_of, now, method, path, headers
):
    response = client.request(
        method, fill(path, REAL, "x"), json=valid_body(path, now), headers=headers
    )

    assert response.status_code == 401, response.text
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize("wrong", ["prefix", "suffix", "basic"])
def test_a_token_that_is_nearly_right_is_refused(client, token, now, wrong):
    presented = {
        "prefix": f"Bearer {token[:-1]}",
        "suffix": f"Bearer {token}x",
        "basic": f"Basic {token}",
    }[wrong]

    response = client.post(
        "/feedback", json={"request_id": "x", "label": 1}, headers={"Authorization": presented}
    )

    assert response.status_code == 401


def test_the_refusal_does_not_reveal_the_token(client, token):
    response = client.post("/feedback", json={"request_id": "x", "label": 1})

    assert token not in response.text


@pytest.mark.parametrize("style", ["bearer", "lowercase bearer", "x-litemlops-token"])
@pytest.mark.parametrize("path", ["/push/{view}", "/feedback"])
def test_push_and_feedback_accept_the_token_in_either_header(client, token, now, path, style):
    headers = {
        "bearer": {"Authorization": f"Bearer {token}"},
        "lowercase bearer": {"authorization": f"bearer {token}"},
        "x-litemlops-token": {"X-Litemlops-Token": token},
    }[style]

    response = client.post(fill(path, REAL, "x"), json=valid_body(path, now), headers=headers)

    assert response.status_code in (200, 202), response.text


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize("header", ["Authorization", "X-Litemlops-Token"])
def test_with_the_token_a_mutating_endpoint_gets_past_the_check(
    client, token, method, path, header
):
    # Targets that do not exist: the answer is about them, not about the token,
    # and nothing changes.
    nowhere = fill(path, {"version": "999"}, "no_such_thing")
    value = f"Bearer {token}" if header == "Authorization" else token

    response = client.request(method, nowhere, json={}, headers={header: value})

    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 500, response.text


def test_the_token_is_checked_before_the_body_is_read(client, error_of):
    too_big = client.post("/feedback", content=b" " * 1_100_000)
    not_json = client.post("/push/driver_stats", content=b"{nope")

    assert too_big.status_code == 401 and error_of(too_big)["code"] == "unauthorized"
    assert not_json.status_code == 401


def test_a_refused_push_changes_nothing_online(client, served_platform, now):
    ref = ["driver_stats:conv_rate"]
    before = served_platform.features.get_online_features(ref, [{"driver_id": 1004}]).to_dict()
    row = {
        "driver_id": 1004,
        "datetime": now,
        "created": now,
        "conv_rate": 0.01,
        "acc_rate": 0.01,
        "avg_daily_trips": 1,
    }

    response = client.post(
        "/push/driver_stats",
        json={"rows": [row]},
        headers={"Authorization": "Bearer wrong-token-wrong-token"},
    )

    assert response.status_code == 401
    after = served_platform.features.get_online_features(ref, [{"driver_id": 1004}]).to_dict()
    assert after == before


def test_a_refused_feedback_is_not_logged(client, read_events):
    client.post("/feedback", json={"request_id": "sneaky", "label": 1})

    logged = read_events(events.FEEDBACK_RECEIVED)

    assert not [e for e in logged if e["request_id"] == "sneaky"]


# -- the token file -------------------------------------------------------------------------


def test_the_token_file_is_made_at_start_readable_by_its_owner_only(client, served_home, token):
    mode = stat.S_IMODE(served_home.token_path.stat().st_mode)

    assert mode == 0o600
    assert len(token) >= 32


def test_the_token_survives_a_restart(home_factory, serve):
    config = home_factory()
    with serve(config):
        first = config.token_path.read_text()
    with serve(config):
        second = config.token_path.read_text()

    assert first == second


def test_an_explicit_token_is_the_one_accepted_and_no_file_is_made(home_factory, serve):
    config = home_factory({"server.token": EXPLICIT})
    with serve(config) as (_, client):
        accepted = client.post(
            "/feedback",
            json={"request_id": "e", "label": 1},
            headers={"X-Litemlops-Token": EXPLICIT},
        )
        refused = client.post("/feedback", json={"request_id": "e", "label": 1})

    assert accepted.status_code == 202
    assert refused.status_code == 401
    assert not config.token_path.exists()


def test_the_app_does_not_start_on_a_token_file_others_can_read(home_factory, serve):
    config = home_factory()
    config.token_path.write_text("a-token-that-others-could-read-easily\n")
    config.token_path.chmod(0o644)

    with pytest.raises(ConfigError, match="chmod 600"), serve(config):
        pass


@pytest.fixture
def bare_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def test_admin_token_makes_a_file_once_then_reads_it(bare_home):
    config = Config.load(bare_home, env={})

    made, explicit = admin_token(config)
    again, _ = admin_token(config)

    assert not explicit and made == again
    assert stat.S_IMODE(config.token_path.stat().st_mode) == 0o600


def test_admin_token_from_config_or_environment_is_explicit(bare_home):
    from_env = Config.load(bare_home, env={"LITEMLOPS_SERVER_TOKEN": EXPLICIT})
    from_config = Config.load(bare_home, env={}, overrides={"server.token": EXPLICIT})

    assert admin_token(from_env) == (EXPLICIT, True)
    assert admin_token(from_config) == (EXPLICIT, True)
    assert not from_env.token_path.exists()


def test_admin_token_refuses_a_short_explicit_token(bare_home):
    config = Config.load(bare_home, env={}, overrides={"server.token": "short"})

    with pytest.raises(ConfigError, match="16 characters"):
        admin_token(config)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_admin_token_refuses_a_file_group_or_world_can_read(bare_home, mode):
    config = Config.load(bare_home, env={})
    config.token_path.write_text("a-token-long-enough-to-be-used\n")
    config.token_path.chmod(mode)

    with pytest.raises(ConfigError, match="readable by other users"):
        admin_token(config)


def test_admin_token_refuses_a_file_without_a_usable_token(bare_home):
    config = Config.load(bare_home, env={})
    config.token_path.write_text("short\n")
    config.token_path.chmod(0o600)

    with pytest.raises(ConfigError, match="no usable token"):
        admin_token(config)


# -- where the server may listen ------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_needs_no_explicit_token(host):
    check_bind(host, explicit_token=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com"])
def test_another_interface_is_refused_without_an_explicit_token(host):
    with pytest.raises(ConfigError, match="explicit admin token"):
        check_bind(host, explicit_token=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_another_interface_is_allowed_with_an_explicit_token(host):
    check_bind(host, explicit_token=True)


@pytest.mark.parametrize("presented", [None, "", "Bearer ", "bearer x", "x" * 43])
def test_token_matches_only_the_token(presented):
    assert not token_matches(presented, "t" * 43)
    assert token_matches("Bearer " + "t" * 43, "t" * 43)
