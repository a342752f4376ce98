from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from litemlops import events
from litemlops.config import DEFAULT_ALERTS, AlertRule
from litemlops.errors import ConfigError, NotFoundError
from litemlops.monitoring.alerts import AlertManager
from litemlops.monitoring.notify import BusNotifier, LogNotifier
from litemlops.scheduler.bus import EventBus
from litemlops.store.tracking.tracking_db import TrackingDB
from litemlops.testing import FixedClock

DRIFT = AlertRule(
    "drift",
    metric="drift.dataset",
    condition="> 0",
    every=10,
    for_seconds=30,
    notify=("log", "bus"),
    trigger="training",
    cooldown_seconds=3600,
)


class Recorder:
    """A notifier that remembers what it was told."""

    def __init__(self):
        self.calls = []

    def __call__(self, rule, transition):
        self.calls.append((rule.name, transition.to_state))


@pytest.fixture
def clock():
    return FixedClock()


@pytest.fixture
def db(tmp_path):
    database = TrackingDB(tmp_path / "registry.db")
    yield database
    database.close()


def manager(db, clock, *rules, **notifiers):
    chosen = notifiers or {"log": Recorder(), "bus": Recorder()}
    return AlertManager(db, rules or (DRIFT,), clock=clock, notifiers=chosen)


def moves(transitions):
    return [(t.from_state, t.to_state) for t in transitions]


def state(alerts, name="drift"):
    return alerts.state(name).state


def test_an_alert_goes_pending_firing_resolved_and_back_to_normal(db, clock):
    log, bus = Recorder(), Recorder()
    alerts = manager(db, clock, log=log, bus=bus)

    assert moves(alerts.evaluate({"drift.dataset": 1})) == [("normal", "pending")]
    clock.advance(29)
    assert alerts.evaluate({"drift.dataset": 1}) == []
    assert state(alerts) == "pending"
    clock.advance(1)
    fired = alerts.evaluate({"drift.dataset": 1})
    assert moves(fired) == [("pending", "firing")]
    assert fired[0].notified == ("log", "bus")
    assert fired[0].fired_at == clock.now
    clock.advance(10)
    assert alerts.evaluate({"drift.dataset": 1}) == []  # still firing: no news
    clock.advance(10)
    resolved = alerts.evaluate({"drift.dataset": 0})
    assert moves(resolved) == [("firing", "resolved")]
    assert resolved[0].fired_at == clock.now - timedelta(seconds=20)
    clock.advance(10)
    assert moves(alerts.evaluate({"drift.dataset": 0})) == [("resolved", "normal")]

    assert log.calls == [("drift", "firing"), ("drift", "resolved")]
    assert bus.calls == log.calls  # the bus notifier itself ignores resolutions


def test_pending_clears_when_the_condition_stops_before_for(db, clock):
    log = Recorder()
    alerts = manager(db, clock, log=log)

    alerts.evaluate({"drift.dataset": 1})
    clock.advance(20)
    assert moves(alerts.evaluate({"drift.dataset": 0})) == [("pending", "normal")]
    clock.advance(20)
    alerts.evaluate({"drift.dataset": 1})  # the timer starts again from here
    clock.advance(20)
    assert alerts.evaluate({"drift.dataset": 1}) == []

    assert state(alerts) == "pending"
    assert log.calls == []


def test_the_course_rule_fires_on_the_third_evaluation_ten_seconds_apart(db, clock):
    (course,) = [r for r in DEFAULT_ALERTS if r.name == "dataset_drift"]
    assert (course.condition, course.every, course.for_seconds) == ("> 0", 10, 11)
    bus = EventBus()
    published = []
    bus.subscribe("alert:*", lambda topic, payload: published.append((topic, payload)))
    alerts = AlertManager(
        db, [course], clock=clock, notifiers={"log": LogNotifier(), "bus": BusNotifier(bus)}
    )

    states = []
    with capture_logs() as captured:
        for _ in range(3):
            alerts.evaluate({"drift.dataset": 1.0, "drift.share": 1.0})
            states.append(state(alerts, "dataset_drift"))
            clock.advance(course.every)

    assert states == ["pending", "pending", "firing"]  # held 0 s, 10 s, then 20 s >= 11 s
    [(topic, payload)] = published
    assert topic == "alert:dataset_drift"
    assert payload["rule"] == "dataset_drift" and payload["trigger"] == "training"
    assert payload["state"] == "firing" and payload["value"] == 1.0
    assert payload["fired_at"] == "2026-01-01T00:00:20Z"
    [fired] = [e for e in captured if e["event"] == events.ALERT_FIRED]
    assert events.missing_keys(events.ALERT_FIRED, fired) == set()
    assert fired["log_level"] == "warning" and fired["metric"] == "drift.dataset"


def test_a_missing_metric_keeps_the_state_and_its_timer_and_says_so(db, clock):
    alerts = manager(db, clock)
    alerts.evaluate({"drift.dataset": 1})
    clock.advance(20)

    assert alerts.evaluate({"performance.auc": 0.9}) == []
    assert alerts.evaluate({"drift.dataset": None}) == []
    assert alerts.evaluate({"drift.dataset": float("nan")}) == []

    status = alerts.state("drift")
    assert status.state == "pending"
    assert "metric drift.dataset missing" in status.detail
    clock.advance(10)
    assert moves(alerts.evaluate({"drift.dataset": 1})) == [("pending", "firing")]


def test_states_and_timers_survive_a_restart(tmp_path, clock):
    path = tmp_path / "registry.db"
    first = TrackingDB(path)
    manager(first, clock).evaluate({"drift.dataset": 1})
    first.close()

    clock.advance(30)
    again = TrackingDB(path)
    try:
        alerts = manager(again, clock)
        assert state(alerts) == "pending"
        assert moves(alerts.evaluate({"drift.dataset": 1})) == [("pending", "firing")]
        assert [t.to_state for t in alerts.history("drift")] == ["firing", "pending"]
    finally:
        again.close()


def test_cooldown_suppresses_a_second_firing_even_after_a_restart(tmp_path, clock):
    path = tmp_path / "registry.db"
    quick = AlertRule(
        "drift", "drift.dataset", "> 0", for_seconds=0, notify=("bus",), trigger="training",
        cooldown_seconds=600,
    )
    bus = Recorder()
    db = TrackingDB(path)
    alerts = AlertManager(db, [quick], clock=clock, notifiers={"bus": bus})
    alerts.evaluate({"drift.dataset": 1})
    clock.advance(60)
    alerts.evaluate({"drift.dataset": 0})
    db.close()

    db = TrackingDB(path)  # a restart must not reset the cooldown
    alerts = AlertManager(db, [quick], clock=clock, notifiers={"bus": bus})
    clock.advance(60)
    again = alerts.evaluate({"drift.dataset": 1})
    assert moves(again) == [("resolved", "pending"), ("pending", "firing")]
    assert again[-1].notified == ()
    assert "within the 600 s cooldown" in again[-1].detail
    clock.advance(60)
    assert alerts.evaluate({"drift.dataset": 0})[-1].notified == ()  # its end is no news either
    clock.advance(600)
    alerts.evaluate({"drift.dataset": 0})
    alerts.evaluate({"drift.dataset": 1})
    db.close()

    # At 0 s and its end at 60 s; the firing at 120 s and its end told no one; then 780 s.
    assert bus.calls == [("drift", "firing"), ("drift", "resolved"), ("drift", "firing")]
    assert alerts.state("drift").last_notified_at == clock.now


def test_a_flapping_alert_triggers_retraining_once_per_cooldown(db, clock):
    flappy = AlertRule(
        "drift", "drift.dataset", "> 0", every=10, for_seconds=0, notify=("log", "bus"),
        trigger="training", cooldown_seconds=3600,
    )
    bus = EventBus()
    runs = []
    bus.subscribe("alert:drift", lambda topic, payload: runs.append(payload["fired_at"]))
    alerts = AlertManager(
        db, [flappy], clock=clock, notifiers={"log": Recorder(), "bus": BusNotifier(bus)}
    )

    fired = 0
    for i in range(200):  # 2000 s of drift flipping on and off every evaluation
        fired += sum(t.to_state == "firing" for t in alerts.evaluate({"drift.dataset": i % 2}))
        clock.advance(10)
    for _ in range(200):  # another 2000 s: past the cooldown
        fired += sum(t.to_state == "firing" for t in alerts.evaluate({"drift.dataset": 1}))
        alerts.evaluate({"drift.dataset": 0})
        clock.advance(10)

    assert fired == 299  # every rise fires (the first of the second loop was firing already)
    assert runs == ["2026-01-01T00:00:10Z", "2026-01-01T01:00:10Z"]


def test_conditions_compare_with_each_operator(db, clock):
    rules = [
        AlertRule(f"r{i}", "m", condition, for_seconds=0)
        for i, condition in enumerate(["> 1", ">= 1", "< 1", "<= 1", "== 1", "!= 1"])
    ]
    alerts = AlertManager(db, rules, clock=clock, notifiers={})

    alerts.evaluate({"m": 1})

    assert [s.state for s in alerts.states()] == [
        "normal", "firing", "normal", "firing", "firing", "normal"
    ]


def test_a_failing_notifier_is_logged_and_the_others_still_hear(db, clock):
    def broken(rule, transition):
        raise RuntimeError("smtp is down")

    bus = Recorder()
    rule = AlertRule("drift", "drift.dataset", "> 0", notify=("log", "bus"))
    alerts = AlertManager(db, [rule], clock=clock, notifiers={"log": broken, "bus": bus})

    with capture_logs() as captured:
        alerts.evaluate({"drift.dataset": 1})

    assert bus.calls == [("drift", "firing")]
    assert state(alerts) == "firing"
    [failed] = [e for e in captured if e["event"] == events.ALERT_NOTIFY_FAILED]
    assert failed["notifier"] == "log" and "smtp is down" in failed["error"]
    assert events.missing_keys(events.ALERT_NOTIFY_FAILED, failed) == set()


def test_notifiers_that_are_not_configured_are_skipped(db, clock):
    log = Recorder()
    rule = AlertRule("drift", "drift.dataset", "> 0", notify=("log", "webhook", "bus"))
    alerts = AlertManager(db, [rule], clock=clock, notifiers={"log": log})

    [_, fired] = alerts.evaluate({"drift.dataset": 1})

    assert fired.notified == ("log",)
    assert log.calls == [("drift", "firing")]


def test_history_is_newest_first_per_rule_and_limited(db, clock):
    rules = [
        AlertRule("a", "x", "> 0", for_seconds=0),
        AlertRule("b", "y", "> 0", for_seconds=5),
    ]
    alerts = AlertManager(db, rules, clock=clock, notifiers={})
    alerts.evaluate({"x": 1, "y": 1})
    clock.advance(5)
    alerts.evaluate({"x": 0, "y": 1})

    assert [(t.rule, t.to_state) for t in alerts.history()] == [
        ("b", "firing"), ("a", "resolved"), ("b", "pending"), ("a", "firing"), ("a", "pending"),
    ]
    assert [t.to_state for t in alerts.history("a", limit=2)] == ["resolved", "firing"]
    assert alerts.history("nobody") == []
    assert alerts.history(limit=0) == alerts.history(limit=-3) == []
    newest = alerts.history(limit=1)[0]
    assert newest.as_dict()["at"] == "2026-01-01T00:00:05Z"
    assert newest.as_dict()["notified"] == []


def test_states_start_normal_and_name_the_rule(db, clock):
    alerts = manager(db, clock)

    [status] = alerts.states()

    assert (status.rule, status.state, status.detail) == ("drift", "normal", "not evaluated yet")
    assert status.as_dict()["condition"] == "> 0"
    with pytest.raises(NotFoundError, match="no alert rule 'nope'; rules: drift"):
        alerts.state("nope")


def test_rule_names_must_be_unique(db, clock):
    with pytest.raises(ConfigError, match="repeated: \\['drift'\\]"):
        AlertManager(db, [DRIFT, DRIFT], clock=clock)


def test_the_default_notifier_is_the_log(db, clock):
    rule = AlertRule("drift", "drift.dataset", "> 0")
    alerts = AlertManager(db, [rule], clock=clock)

    with capture_logs() as captured:
        alerts.evaluate({"drift.dataset": 2})
        clock.advance(1)
        alerts.evaluate({"drift.dataset": 0})

    assert [(e["event"], e["state"], e["value"]) for e in captured] == [
        (events.ALERT_FIRED, "firing", 2.0),
        (events.ALERT_RESOLVED, "resolved", 0.0),
    ]


def test_booleans_and_integers_are_metric_values(db, clock):
    rule = AlertRule("drift", "drift.dataset", "> 0", for_seconds=0)
    alerts = AlertManager(db, [rule], clock=clock, notifiers={})

    alerts.evaluate({"drift.dataset": True})

    assert alerts.state("drift").value == 1.0
    assert alerts.state("drift").state == "firing"
    alerts.evaluate({"drift.dataset": "yes"})  # not a number: as if missing
    assert "missing" in alerts.state("drift").detail
