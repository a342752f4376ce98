"""Deployments in the library: challengers beside the champion, routed by `Service.infer`,
judged by `Deployments.tick`, without HTTP."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_world import DRIVERS, MODEL, World

from litemlops.errors import ValidationError
from litemlops.serving.deployments import Deployments
from litemlops.serving.errors import (
    DeploymentConflictError,
    DeploymentNotFoundError,
    InvalidDeploymentError,
)
from litemlops.testing import FaultyModel, FixedClock

IDS = sorted(DRIVERS)


class Home:
    """A world's service under deployments, with a clock tests move."""

    def __init__(self, world: World, clock: FixedClock, alerts: list[dict[str, Any]]):
        self.world, self.clock, self.alerts = world, clock, alerts
        self.deployments = self.open()

    def open(self) -> Deployments:
        deployments = Deployments(
            self.world.tracker.db,
            self.world.registry,
            self.world.service.models,
            [self.world.service.spec],
            serving=True,
            clock=self.clock,
            rng=random.Random(3),
            on_rollback=self.alerts.append,
        )
        self.world.service.deployments = deployments
        return deployments

    def restart(self) -> Deployments:
        self.deployments.close()
        self.deployments = self.open()
        return self.deployments

    def serve(self, n: int, prefix: str = "r") -> list[Any]:
        """n requests over all three drivers; the arm of each from its event."""
        for i in range(n):
            self.world.service.infer(f"{prefix}{i}", IDS)
        return [e.get("arm") for e in self.world.served()[-n:]]

    def label(self, request_id: str, label: float) -> None:
        self.deployments.feedback(request_id, label)


@pytest.fixture
def home(world: World) -> Iterator[Home]:
    home = Home(world, FixedClock(), [])
    yield home
    home.deployments.close()


def same_model(world: World) -> int:
    """The champion's own estimator registered again: a challenger that scores alike."""
    return world.register(world.champion_model())


# -- starting: bad input changes nothing ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        ({"strategy": "canary", "challenger": 99}, InvalidDeploymentError, "99"),
        ({"strategy": "canary", "challenger": "other_model/1"}, InvalidDeploymentError,
         "not a version of 'driver_ranker'"),
        ({"strategy": "canary", "challenger": 1}, InvalidDeploymentError, "champion already"),
        ({"strategy": "ab", "challengers": [2], "shares": [60, 50]}, ValidationError,
         "sum to 100"),
        ({"strategy": "ab", "challengers": [2], "shares": [100]}, ValidationError,
         "one percentage per arm"),
        ({"strategy": "canary", "challenger": 2, "steps": [50, 25]}, ValidationError,
         "increase"),
        ({"strategy": "canary", "challenger": 2, "colour": "red"}, ValidationError,
         r"unknown key\(s\) \['colour'\]"),
        ({"strategy": "shadow", "challengers": [2, 3]}, ValidationError, "one challenger"),
        ({"strategy": "bandit", "challenger": 2, "min_share": 60}, ValidationError,
         "over 100%"),
        ({"strategy": "blue-green", "challenger": 2}, ValidationError, "strategy must be"),
    ],
)  # fmt: skip
def test_a_bad_deployment_is_refused_with_what_was_wrong_and_nothing_is_stored(
    home: Home, body: dict[str, Any], error: type[Exception], match: str
):
    same_model(home.world)
    same_model(home.world)

    with pytest.raises(error, match=match):
        home.deployments.start("inference", body)

    assert home.deployments.store.recent() == []
    assert home.deployments.routing("inference") is None


def test_a_challenger_whose_inputs_the_service_lacks_is_refused(home: Home):
    from sklearn.linear_model import LogisticRegression

    refs = ["driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:tips"]
    version = home.world.register(
        LogisticRegression().fit([[0, 0, 0], [1, 1, 1]], [0, 1]), refs=refs
    )

    with pytest.raises(InvalidDeploymentError, match=r"missing \['tips'\]"):
        home.deployments.start("inference", {"strategy": "shadow", "challenger": version})
    assert home.deployments.store.recent() == []


def test_a_second_deployment_on_a_busy_service_is_a_conflict(home: Home):
    v2 = same_model(home.world)
    home.deployments.start("inference", {"strategy": "shadow", "challenger": v2, "name": "one"})

    with pytest.raises(DeploymentConflictError, match="already has an active deployment"):
        home.deployments.start("inference", {"strategy": "canary", "challenger": v2})

    [only] = home.deployments.store.recent()
    assert (only.name, only.state) == ("one", "active")


def test_unknown_services_and_deployments_are_not_found(home: Home):
    with pytest.raises(DeploymentNotFoundError, match="no service 'nope'"):
        home.deployments.start("nope", {"strategy": "shadow", "challenger": 2})
    with pytest.raises(DeploymentNotFoundError, match="has had no deployment"):
        home.deployments.status("inference")
    with pytest.raises(DeploymentConflictError, match="no active deployment"):
        home.deployments.end("inference")


# -- A/B: sticky shares, labels joined once ----------------------------------------------


@settings(max_examples=examples(20), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(request_ids=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=20))
def test_ab_assignment_is_sticky_by_request_id(home: Home, request_ids: list[str]):
    if home.deployments.routing("inference") is None:
        home.deployments.start(
            "inference", {"strategy": "ab", "challenger": same_model(home.world)}
        )
    live = home.deployments.routing("inference")
    assert live is not None

    first = [live.choose(r, IDS) for r in request_ids]

    assert [live.choose(r, IDS) for r in request_ids] == first


def test_ab_events_name_the_deployment_and_arm_and_shares_hold(home: Home):
    v2 = same_model(home.world)
    home.deployments.start(
        "inference", {"strategy": "ab", "challenger": v2, "shares": [70, 30], "name": "ab1"}
    )

    arms = home.serve(1000)

    assert {e["deployment"] for e in home.world.served()} == {"ab1"}
    share = arms.count(f"v{v2}") / len(arms)
    # binomial(1000, 0.3): sd 0.0145; 5 sd either side
    assert 0.3 - 0.073 < share < 0.3 + 0.073
    versions = {(e["arm"], e["version"]) for e in home.world.served()}
    assert versions == {("champion", 1), (f"v{v2}", v2)}


def test_labels_join_their_arm_once_however_late_and_survive_a_restart(home: Home):
    v2 = same_model(home.world)
    home.deployments.start(
        "inference", {"strategy": "ab", "challenger": v2, "name": "late"}
    )
    arms = home.serve(200)
    home.deployments.tick()
    home.restart()  # the labels come after a restart
    for i, arm in enumerate(arms):
        home.label(f"r{i}", 1.0 if arm == "champion" else 0.0)
    home.label("r0", 1.0 if arms[0] != "champion" else 0.0)  # a second label: ignored
    home.label("never-served", 1.0)
    home.deployments.tick()

    rows = {r["arm"]: r for r in home.deployments.status("inference")["arms"]}
    champion = arms.count("champion")
    assert rows["champion"]["labelled"] == champion == rows["champion"]["successes"]
    assert rows[f"v{v2}"]["labelled"] == 200 - champion
    assert rows[f"v{v2}"]["successes"] == 0
    assert rows[f"v{v2}"]["vs_control"]["diff"] == pytest.approx(-1.0)


def test_an_ended_test_keeps_its_outcomes_with_its_last_requests_and_drops_its_rows(
    home: Home,
):
    v2 = same_model(home.world)
    home.deployments.start("inference", {"strategy": "ab", "challenger": v2, "name": "gone"})
    arms = home.serve(30)
    home.deployments.tick()
    home.label("r0", 1.0)
    arms += home.serve(12, "last")  # not written by a tick before the end
    home.deployments.end("inference", reason="enough")

    def arm_rows() -> dict[str, Any]:
        return {r["arm"]: r for r in home.deployments.status("gone")["arms"]}

    ended = arm_rows()
    assert sum(r["requests"] for r in ended.values()) == 42
    assert ended[arms[0]]["labelled"] == 1
    home.deployments.tick()  # deletes the ended test's request rows
    left = home.deployments.store.db.read("SELECT count(*) AS n FROM deployment_requests")
    assert left[0]["n"] == 0
    assert arm_rows() == ended
    home.restart()
    assert arm_rows() == ended


def test_ab_stopping_rule_ends_the_test_and_promotes_a_winner(home: Home):
    v2 = same_model(home.world)
    home.deployments.start(
        "inference",
        {"strategy": "ab", "challenger": v2, "min_samples": 100, "promote": True, "name": "ab"},
    )
    arms = home.serve(400)
    rng = random.Random(5)
    for i, arm in enumerate(arms):
        rate = 0.3 if arm == "champion" else 0.7
        home.label(f"r{i}", float(rng.random() < rate))
    home.clock.advance(60)
    home.deployments.tick()

    status = home.deployments.status("ab")
    assert status["state"] == "promoted"
    assert status["status"]["promoted_version"] == v2
    assert home.world.registry.get_alias(MODEL, "champion").version == v2
    [move] = home.world.registry.alias_history(MODEL, "champion")[-1:]
    assert "deployment ab (ab)" in move.reason and "beats the control" in move.reason
    assert home.deployments.routing("inference") is None


# -- canary -----------------------------------------------------------------------------


def canary(home: Home, version: int, **more: Any) -> dict[str, Any]:
    body = {
        "strategy": "canary",
        "challenger": version,
        "steps": [50, 100],
        "interval_seconds": 60,
        # A floor a loaded test machine's late requests stay under; the latency test
        # sets the default back.
        "checks": {"min_requests": 40, "latency_floor_ms": 50},
        "name": "can",
        **more,
    }
    return home.deployments.start("inference", body)


def test_a_canary_whose_challenger_fails_a_tenth_of_requests_rolls_back_at_once(home: Home):
    bad = home.world.register(FaultyModel(home.world.champion_model(), fail_every=10))
    canary(home, bad)

    home.serve(300)  # every request answered: the champion stands in for a failure
    home.deployments.tick()  # within the interval: the clock has not moved

    status = home.deployments.status("can")
    assert status["state"] == "rolled_back"
    assert status["status"]["failed_check"] == "error_rate"
    assert home.world.registry.get_alias(MODEL, "champion").version == 1
    assert home.deployments.routing("inference") is None
    [event] = home.world.events("deployment_rolled_back")
    assert event["failed_check"] == "error_rate"
    assert event["figures"]["challenger"]["errors"] > 0
    assert [a["check"] for a in home.alerts] == ["error_rate"]
    fallbacks = [e for e in home.world.served() if "fallback" in e]
    assert fallbacks and all(e["arm"] == "champion" for e in fallbacks)
    assert all(e["fallback"]["arm"] == f"v{bad}" for e in fallbacks)


def test_a_canary_far_slower_rolls_back_on_latency(home: Home):
    slow = home.world.register(FaultyModel(home.world.champion_model(), sleep=0.02))
    canary(home, slow, checks={"min_requests": 40})

    home.serve(200)
    home.deployments.tick()

    status = home.deployments.status("can")
    assert (status["state"], status["status"]["failed_check"]) == ("rolled_back", "latency_p99")


def test_a_good_canary_steps_up_then_promotes_with_the_reason_in_the_alias_history(home: Home):
    good = same_model(home.world)
    canary(home, good)

    home.serve(200, "a")
    home.deployments.tick()
    assert home.deployments.status("can")["status"]["step"] == 0  # the interval goes on
    home.clock.advance(61)
    home.deployments.tick()
    assert home.deployments.status("can")["status"]["step"] == 1
    assert set(home.serve(50, "b")) == {f"v{good}"}  # 100 %: the challenger alone
    home.clock.advance(61)
    home.deployments.tick()

    status = home.deployments.status("can")
    assert status["state"] == "promoted"
    assert home.world.registry.get_alias(MODEL, "champion").version == good
    assert "canary passed 2 steps" in home.world.registry.alias_history(MODEL)[-1].reason
    assert [h["action"] for h in home.deployments.history("can")] == [
        "started", "step_passed", "step_passed", "promoted"
    ]  # fmt: skip


def test_a_canary_keeps_its_step_across_a_restart(home: Home):
    canary(home, same_model(home.world))
    home.serve(200)
    home.clock.advance(61)
    home.deployments.tick()

    home.restart()

    live = home.deployments.routing("inference")
    assert live is not None and live.share == 1.0
    assert home.deployments.status("can")["status"]["step"] == 1


def test_a_failing_canary_started_before_a_restart_is_rolled_back_after_it(home: Home):
    bad = home.world.register(FaultyModel(home.world.champion_model(), fail_every=10))
    canary(home, bad)
    home.serve(30, "before")
    home.deployments.tick()
    assert home.deployments.status("can")["state"] == "active"  # too few to judge yet

    home.restart()
    home.serve(300, "after")
    home.deployments.tick()

    status = home.deployments.status("can")
    assert (status["state"], status["status"]["failed_check"]) == ("rolled_back", "error_rate")
    assert home.world.registry.get_alias(MODEL, "champion").version == 1


def test_a_canary_with_too_few_requests_waits_instead_of_passing(home: Home):
    canary(home, same_model(home.world))
    home.serve(10)
    home.clock.advance(600)
    home.deployments.tick()

    assert home.deployments.status("can")["status"]["step"] == 0


# -- shadow -----------------------------------------------------------------------------


def test_a_shadow_that_raises_or_sleeps_leaves_the_champions_answers_alone(home: Home):
    baseline = [home.world.service.infer(f"b{i}", IDS) for i in range(20)]
    slow = home.world.register(FaultyModel(home.world.champion_model(), sleep=0.05,
                                           fail_every=3))  # fmt: skip
    home.deployments.start(
        "inference", {"strategy": "shadow", "challenger": slow, "queue_size": 2}
    )

    start = time.perf_counter()
    answers = [home.world.service.infer(f"b{i}", IDS) for i in range(20)]
    elapsed = time.perf_counter() - start

    assert [(a.prediction, a.scores, a.version) for a in answers] == [
        (b.prediction, b.scores, b.version) for b in baseline
    ]
    assert elapsed < 20 * 0.05 / 2  # the shadow's sleep is never waited for
    shadow = home.deployments.shadow("inference")
    assert shadow is not None
    shadow.drain()
    report = home.deployments.status("inference")["shadow"]
    assert report["offered"] == 20
    assert report["dropped"] >= 10  # a queue of two: the rest were dropped, not waited on
    assert report["scored"] + report["errors"] + report["dropped"] == 20


def test_a_shadow_logs_what_it_would_have_answered_with_the_same_request_id(home: Home):
    same = same_model(home.world)
    home.deployments.start("inference", {"strategy": "shadow", "challenger": same})

    home.serve(30)
    shadow = home.deployments.shadow("inference")
    assert shadow is not None
    shadow.drain()

    shadowed = home.world.events("prediction_shadowed")
    assert sorted(e["request_id"] for e in shadowed) == sorted(f"r{i}" for i in range(30))
    assert all(e["agrees"] and e["arm"] == f"v{same}" for e in shadowed)
    assert {(e["model"], e["version"], e["service"]) for e in shadowed} == {
        (MODEL, same, "inference")
    }
    assert {e["arm"] for e in home.world.served()} == {"champion"}
    report = home.deployments.status("inference")["shadow"]
    assert report["agreement"] == 1.0 and report["mean_abs_score_diff"] == 0.0


# -- bandit -----------------------------------------------------------------------------


def test_a_bandit_learns_from_labels_and_keeps_its_posteriors_across_a_restart(home: Home):
    v2 = same_model(home.world)
    home.deployments.start(
        "inference", {"strategy": "bandit", "challenger": v2, "min_share": 5}
    )
    for round_ in range(6):
        arms = home.serve(100, f"x{round_}-")
        for i, arm in enumerate(arms):
            home.label(f"x{round_}-{i}", 1.0 if arm != "champion" else 0.0)
        home.deployments.tick()

    before = home.deployments.status("inference")["bandit"]
    home.restart()
    after = home.deployments.status("inference")["bandit"]

    assert after == before
    assert before["successes"][0] == 0 and before["successes"][1] > 0
    late = home.serve(400, "late")
    assert late.count(f"v{v2}") / 400 > 0.85


# -- by hand ----------------------------------------------------------------------------


def test_promote_by_hand_moves_the_alias_and_ending_keeps_the_champion(home: Home):
    v2, v3 = same_model(home.world), same_model(home.world)
    home.deployments.start("inference", {"strategy": "bandit", "challengers": [v2, v3]})
    with pytest.raises(InvalidDeploymentError, match="one of"):
        home.deployments.promote("inference", arm="v99")
    with pytest.raises(InvalidDeploymentError, match="no labels yet"):
        home.deployments.promote("inference")

    status = home.deployments.promote("inference", arm=f"v{v3}", reason="looks good")
    assert status["state"] == "promoted"
    assert home.world.registry.get_alias(MODEL, "champion").version == v3

    home.deployments.start("inference", {"strategy": "shadow", "challenger": v2})
    ended = home.deployments.end("inference", reason="enough")
    assert (ended["state"], ended["reason"]) == ("ended", "enough")
    assert home.world.registry.get_alias(MODEL, "champion").version == v3
    assert home.deployments.routing("inference") is None


# -- from config ------------------------------------------------------------------------


def test_config_deployments_start_once_and_a_finished_one_is_not_started_again(home: Home):
    import json

    v2 = same_model(home.world)
    tables = [("cfg-shadow", json.dumps({"strategy": "shadow", "challenger": v2}))]

    assert home.deployments.start_configured(tables) == ["cfg-shadow"]
    assert home.deployments.start_configured(tables) == []  # active: left alone
    home.deployments.end("inference")
    assert home.deployments.start_configured(tables) == []  # ended: not again
    assert [d["name"] for d in home.deployments.recent()] == ["cfg-shadow"]


def test_a_config_deployment_waits_while_its_service_is_busy(home: Home):
    import json

    v2 = same_model(home.world)
    home.deployments.start("inference", {"strategy": "bandit", "challenger": v2})
    tables = [("later", json.dumps({"strategy": "shadow", "challenger": v2}))]

    assert home.deployments.start_configured(tables) == []
    [event] = home.world.events("deployment_not_started")
    assert event["deployment"] == "later" and "already has an active" in event["reason"]


def test_a_bad_config_deployment_is_a_config_error_naming_its_table(home: Home):
    import json

    from litemlops.errors import ConfigError

    tables = [("broken", json.dumps({"strategy": "canary", "challenger": 99}))]

    with pytest.raises(ConfigError, match=r"config \[deployments.broken\]: .*99"):
        home.deployments.start_configured(tables)
    assert home.deployments.recent() == []


def test_a_few_late_requests_or_one_error_do_not_roll_a_sound_canary_back():
    from litemlops.serving.deployment_live import Window
    from litemlops.serving.deployment_report import canary_verdict
    from litemlops.serving.deployment_spec import CanaryChecks

    rng = random.Random(1)
    champion, challenger = Window(), Window()
    for window in (champion, challenger):
        for _ in range(100):
            window.requests += 1
            window.latency_ms.add(0.5 + rng.random() * 0.1, rng)
            window.scores.add(rng.random(), rng)
    challenger.latency_ms.values[:2] = [30.0, 45.0]  # a loaded machine's hiccups
    challenger.errors = 1

    assert canary_verdict(CanaryChecks(), champion, challenger, []).passed is True

    challenger.latency_ms.values[:10] = [30.0] * 10  # a tenth of requests slow: a real tail
    assert canary_verdict(CanaryChecks(), champion, challenger, []).failed == "latency_p99"
    challenger.latency_ms.values[:10] = [0.5] * 10
    challenger.errors = 10
    assert canary_verdict(CanaryChecks(), champion, challenger, []).failed == "error_rate"
