"""/api/services/{service}/deployment over HTTP: start, watch, promote, end; /inference
routed by it, /feedback joined to its arms, /metrics per arm."""

from __future__ import annotations

import time
from typing import Any

import pytest

from litemlops.demo.settings import MODEL_NAME as MODEL

URL = "/api/services/inference/deployment"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def versions(served_platform) -> tuple[int, int]:
    """Two more versions of the champion's own model: challengers that score alike."""
    registry = served_platform.registry
    champion = registry.get_alias(MODEL, "champion")
    made = [
        registry.register_model(
            f"runs:/{champion.run_id}/{champion.model_name}", MODEL, allow_duplicate=True
        ).version
        for _ in range(2)
    ]
    return made[0], made[1]


def register_challenger(platform, model: Any, signature: Any) -> int:
    """`model` logged in a run with the served features' lineage and registered as the
    next version of the champion's name: a challenger built for one test. Its version."""
    from litemlops.serving.lineage import log_feature_refs

    with platform.tracker.start_run(MODEL) as run:
        log_feature_refs(run, platform.config.server.feature_refs())
        run.log_model(model, "model", signature=signature)
    return platform.registry.register_model(f"runs:/{run.id}/model", MODEL).version


def drivers(client) -> list[int]:
    return [1001, 1002, 1003]  # three of the served demo's five drivers


def infer(client, request_id: str, ids: list[int]) -> dict[str, Any]:
    return ok(client.post("/inference", json={"request_id": request_id, "driver_ids": ids}))


def wait_for(check, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "status", "match"),
    [
        ({"strategy": "canary"}, 422, "name the challenger"),
        ({"strategy": "ab", "challenger": 2, "shares": [50, 40]}, 422, "sum to 100"),
        ({"strategy": "canary", "challenger": 999}, 422, "999"),
        ({"strategy": "canary", "challenger": 2, "extra": 1}, 422, "extra"),
        ({"strategy": "rainbow", "challenger": 2}, 422, "strategy"),
    ],
)
def test_bad_deployments_are_4xx_and_change_nothing(client, auth, versions, body, status, match):
    response = client.put(URL, json=body, headers=auth)

    assert response.status_code == status, response.text
    assert match in response.json()["error"]["message"]
    assert client.get(URL).status_code == 404  # still none


def test_an_unknown_service_is_404(client, auth, versions):
    response = client.put(
        "/api/services/nope/deployment", json={"strategy": "shadow", "challenger": versions[0]},
        headers=auth,
    )  # fmt: skip

    assert response.status_code == 404
    assert "no service 'nope'" in response.json()["error"]["message"]


def test_an_ab_test_routes_answers_joins_labels_and_shows_per_arm_metrics(
    client, auth, versions, read_events
):
    v2, _ = versions
    started = ok(
        client.put(URL, json={"strategy": "ab", "challenger": v2, "name": "api-ab"}, headers=auth),
        201,
    )
    assert started["state"] == "active" and started["challengers"] == [v2]
    busy = client.put(URL, json={"strategy": "shadow", "challenger": v2}, headers=auth)
    assert busy.status_code == 409 and "api-ab" in busy.json()["error"]["message"]

    ids = drivers(client)
    answers = [infer(client, f"ab-{i}", ids) for i in range(60)]
    for i, answer in enumerate(answers):
        label = 1 if answer["version"] == v2 else 0
        ok(client.post("/feedback", json={"request_id": f"ab-{i}", "label": label},
                       headers=auth), 202)  # fmt: skip

    def labelled() -> dict[str, Any] | None:
        arms = {r["arm"]: r for r in ok(client.get(URL))["arms"]}
        done = sum(r["labelled"] for r in arms.values()) == 60
        return arms if done else None

    arms = wait_for(labelled)
    assert arms, ok(client.get(URL))
    on_v2 = sum(a["version"] == v2 for a in answers)
    assert 0 < on_v2 < 60
    assert arms[f"v{v2}"]["successes"] == arms[f"v{v2}"]["labelled"] == on_v2
    assert arms["champion"]["successes"] == 0
    served = [e for e in read_events("prediction_served") if e["request_id"].startswith("ab-")]
    assert {(e["deployment"], e["arm"]) for e in served} == {
        ("api-ab", "champion"), ("api-ab", f"v{v2}")
    }  # fmt: skip
    metrics = client.get("/metrics").text
    assert f'litemlops_deployment_rewards_total{{arm="v{v2}",deployment="api-ab"}} {on_v2}.0' in (
        metrics
    )
    assert 'litemlops_deployment_share_ratio{arm="champion",deployment="api-ab"} 0.5' in metrics

    ended = ok(client.delete(URL, params={"reason": "enough data"}, headers=auth))
    assert (ended["state"], ended["reason"]) == ("ended", "enough data")
    assert infer(client, "after", ids)["version"] == 1
    listed = ok(client.get("/api/services/inference/deployments"))
    assert [d["name"] for d in listed][:1] == ["api-ab"]
    named = ok(client.get("/api/services/inference/deployments/api-ab"))
    assert named == {**ended, "history": named["history"]}
    assert named["history"][-1]["action"] == "ended"
    assert client.get("/api/services/inference/deployments/nope").status_code == 404
    assert client.get("/api/services/nope/deployments/api-ab").status_code == 404


def test_promote_moves_the_champion_and_the_server_serves_it(
    client, auth, versions, served_platform
):
    _, v3 = versions
    ok(client.put(URL, json={"strategy": "shadow", "challenger": v3}, headers=auth), 201)
    try:
        promoted = ok(
            client.post(f"{URL}/promote", json={"reason": "shadow agreed"}, headers=auth)
        )
        assert (promoted["state"], promoted["status"]["promoted_version"]) == ("promoted", v3)
        ids = drivers(client)
        assert wait_for(lambda: infer(client, "p", ids)["version"] == v3)
        history = ok(client.get(f"/api/models/{MODEL}/aliases/champion/history"))
        assert "shadow agreed" in history[-1]["reason"]
        status = ok(client.get(URL))
        assert [h["action"] for h in status["history"]] == ["started", "promoted"]
    finally:
        served_platform.registry.set_alias(MODEL, "champion", 1, reason="test reset")
        wait_for(lambda: infer(client, "back", drivers(client))["version"] == 1)


def test_a_failing_canary_rolls_back_and_fires_the_rollback_alert(
    client, auth, served_platform, read_events
):
    from litemlops.testing import FaultyModel

    registry = served_platform.registry
    champion = registry.load_model(f"{MODEL}@champion")
    faulty = FaultyModel(champion.model, fail_every=5)
    bad = register_challenger(served_platform, faulty, champion.signature)
    body = {"strategy": "canary", "challenger": bad, "steps": [50, 100], "name": "bad-canary",
            "checks": {"min_requests": 20}}  # fmt: skip
    ok(client.put(URL, json=body, headers=auth), 201)

    # Enough that the error check fails whichever requests the deployment's random salt
    # sends to the challenger: with 110-190 of 300 there (4.6 sd either way), a fifth
    # failing against none of the champion's, p < 0.001. With 120 it could end at 0.05.
    answers = [infer(client, f"can-{i}", drivers(client)) for i in range(300)]

    assert all(a["version"] in (1, bad) for a in answers)  # failures answered by the champion
    status = wait_for(lambda: (s := ok(client.get(URL)))["state"] == "rolled_back" and s)
    # Only error_rate fails on these figures: the challenger's answers score as the
    # champion's (the same model, wrapped).
    assert status and status["status"]["failed_check"] == "error_rate", ok(client.get(URL))
    fired = wait_for(lambda: [e for e in read_events("alert_fired")
                              if e["rule"] == "deployment_rolled_back"])  # fmt: skip
    assert fired and fired[0]["severity"] == "critical"
    assert any(e["rule"] == "deployment_rolled_back" for e in read_events("alert_resolved"))
    assert registry.get_alias(MODEL, "champion").version == 1


def test_a_canary_scoring_as_the_champion_but_for_the_last_bits_is_not_rolled_back(
    client, auth, served_platform
):
    """A challenger whose scores are the champion's but for their last bits (its
    intercept moved by 1e-12, as another arithmetic or summation order would move it).
    The requests name the same drivers each time, so each arm's scores take one value
    per driver: a score check that told such values apart would roll back a sound
    challenger (the two arms a whole Kolmogorov-Smirnov distance apart)."""
    import copy

    champion = served_platform.registry.load_model(f"{MODEL}@champion")
    model = copy.deepcopy(champion.model)
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    estimator.intercept_ = estimator.intercept_ + 1e-12
    nudged = register_challenger(served_platform, model, champion.signature)
    # The latency check is not what this test is about: a loaded machine's pauses
    # land on either arm, and 20 requests judged would be few to tell them apart.
    checks = {"min_requests": 20, "latency_floor_ms": 1000}
    body = {"strategy": "canary", "challenger": nudged, "steps": [50, 100],
            "interval_seconds": 3600, "name": "same-canary", "checks": checks}  # fmt: skip
    ok(client.put(URL, json=body, headers=auth), 201)
    try:
        answers = [infer(client, f"same-{i}", drivers(client)) for i in range(300)]
        by_version = {a["version"]: a["scores"] for a in answers}
        assert set(by_version) == {1, nudged}
        # What the test is about: the arms' scores differ, in their last bits only.
        ours, theirs = by_version[1], by_version[nudged]
        assert all(ours[d] != theirs[d] for d in ours), (ours, theirs)
        assert all(abs(ours[d] - theirs[d]) < 1e-9 for d in ours), (ours, theirs)
        time.sleep(2.5)  # the controller judges every second

        status = ok(client.get(URL))
        assert status["state"] == "active", status["status"]
    finally:
        client.delete(URL, headers=auth)
