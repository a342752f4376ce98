import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from structlog.testing import capture_logs

from litemlops import events
from litemlops.config import AlertRule
from litemlops.errors import ConfigError
from litemlops.monitoring.alerts import AlertManager, AlertTransition
from litemlops.monitoring.notify import BusNotifier, LogNotifier, WebhookNotifier
from litemlops.scheduler.bus import EventBus
from litemlops.store.tracking.tracking_db import TrackingDB
from litemlops.testing import FixedClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = AlertRule(
    "dataset_drift", "drift.dataset", "> 0", for_seconds=11, severity="critical",
    notify=("log", "webhook", "bus"), trigger="training",
)


def transition(to_state, *, value=1.0, at=T0, fired_at=T0):
    return AlertTransition(
        rule=RULE.name, from_state="pending", to_state=to_state, metric=RULE.metric,
        value=value, at=at, fired_at=fired_at, severity=RULE.severity,
        condition=RULE.condition, detail="drift.dataset = 1 > 0 for 20 s",
    )


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it was sent."""

    def __init__(self, status=200):
        self.bodies = []
        self.headers = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v2/alerts"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_webhook_posts_an_alertmanager_body_for_a_firing_alert():
    with Receiver() as receiver:
        notifier = WebhookNotifier(receiver.url, generator_url="http://127.0.0.1:8000/api/x")
        notifier(RULE, transition("firing", at=T0 + timedelta(seconds=20)))

    [body] = receiver.bodies
    assert receiver.headers[0]["Content-Type"] == "application/json"
    [alert] = body
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert alert["labels"] == {
        "alertname": "dataset_drift",
        "severity": "critical",
        "metric": "drift.dataset",
        "service": "litemlops",
    }
    assert alert["annotations"]["summary"] == (
        "dataset_drift firing: drift.dataset = 1 (> 0)"
    )
    assert alert["annotations"]["description"] == "drift.dataset = 1 > 0 for 20 s"
    assert alert["startsAt"] == "2026-01-01T00:00:00Z"
    # Four check intervals (60 s by default) after it was sent: sent again before then.
    assert alert["endsAt"] == "2026-01-01T00:04:20Z"
    assert alert["generatorURL"] == "http://127.0.0.1:8000/api/x"


def test_webhook_sends_the_end_time_of_a_resolved_alert():
    with Receiver() as receiver:
        end = T0 + timedelta(minutes=5)
        WebhookNotifier(receiver.url)(RULE, transition("resolved", value=0.0, at=end))

    [[alert]] = receiver.bodies
    assert alert["startsAt"] == "2026-01-01T00:00:00Z"
    assert alert["endsAt"] == "2026-01-01T00:05:00Z"
    assert alert["annotations"]["summary"] == "dataset_drift resolved: drift.dataset = 0 (not > 0)"


def test_webhook_ignores_transitions_that_are_no_news():
    with Receiver() as receiver:
        WebhookNotifier(receiver.url)(RULE, transition("pending"))

    assert receiver.bodies == []


def test_a_webhook_answering_an_error_is_logged_not_raised():
    with Receiver(status=500) as receiver, capture_logs() as captured:
        WebhookNotifier(receiver.url)(RULE, transition("firing"))

    [failed] = captured
    assert failed["event"] == events.ALERT_NOTIFY_FAILED
    assert failed["notifier"] == "webhook" and failed["rule"] == "dataset_drift"
    assert "500" in failed["error"]


def test_an_unreachable_webhook_is_logged_not_raised():
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with capture_logs() as captured:
        WebhookNotifier(f"http://127.0.0.1:{port}/hook")(RULE, transition("firing"))

    assert [e["event"] for e in captured] == [events.ALERT_NOTIFY_FAILED]


def test_a_webhook_that_never_answers_gives_up_after_its_timeout():
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        start = time.monotonic()
        with capture_logs() as captured:
            WebhookNotifier(url, timeout=0.2)(RULE, transition("firing"))
        elapsed = time.monotonic() - start

    assert elapsed < 5
    assert "Timeout" in captured[0]["error"]


def test_webhook_urls_must_be_http():
    with pytest.raises(ConfigError, match="http:// or https://"):
        WebhookNotifier("file:///etc/passwd")


def test_the_manager_sends_webhooks_for_firing_and_resolution(tmp_path):
    clock = FixedClock()
    rule = AlertRule("drift", "drift.dataset", "> 0", notify=("webhook",))
    db = TrackingDB(tmp_path / "registry.db")
    try:
        with Receiver() as receiver:
            alerts = AlertManager(
                db, [rule], clock=clock, notifiers={"webhook": WebhookNotifier(receiver.url)}
            )
            alerts.evaluate({"drift.dataset": 1})
            clock.advance(60)
            alerts.evaluate({"drift.dataset": 0})
    finally:
        db.close()

    assert [b[0]["endsAt"] for b in receiver.bodies] == [
        "2026-01-01T00:04:00Z",
        "2026-01-01T00:01:00Z",
    ]


def test_a_lasting_firing_is_sent_again_at_each_check_with_its_end_ahead(tmp_path):
    """Alertmanager expires an alert at its endsAt: while the rule fires, each check
    moves that end ahead; the resolution ends it at once. The log hears it once."""
    clock = FixedClock(T0)
    rule = AlertRule("drift", "drift.dataset", "> 0", notify=("webhook", "log"))
    db = TrackingDB(tmp_path / "registry.db")
    try:
        with Receiver() as receiver, capture_logs() as logged:
            webhook = WebhookNotifier(receiver.url, check_interval=30)
            alerts = AlertManager(
                db, [rule], clock=clock, notifiers={"webhook": webhook, "log": LogNotifier()}
            )
            alerts.evaluate({"drift.dataset": 1})  # fires
            for metrics in ({"drift.dataset": 1}, {}, {"drift.dataset": 2}):
                clock.advance(30)
                assert alerts.evaluate(metrics) == []  # no transition, but sent again
            clock.advance(30)
            alerts.evaluate({"drift.dataset": 0})  # resolves
            clock.advance(30)
            alerts.evaluate({"drift.dataset": 0})  # normal: nothing more to send
    finally:
        db.close()

    sent = [b[0] for b in receiver.bodies]
    assert [a["endsAt"] for a in sent] == [
        "2026-01-01T00:02:00Z",
        "2026-01-01T00:02:30Z",
        "2026-01-01T00:03:00Z",
        "2026-01-01T00:03:30Z",
        "2026-01-01T00:02:00Z",  # resolved at 00:02:00
    ]
    assert {a["startsAt"] for a in sent} == {"2026-01-01T00:00:00Z"}
    assert all(a["labels"]["alertname"] == "drift" for a in sent)
    assert [a["annotations"]["value"] for a in sent] == ["1", "1", "1", "2", "0"]
    fired = [e for e in logged if e["event"] == events.ALERT_FIRED]
    assert len(fired) == 1


def test_a_firing_within_its_cooldown_is_not_sent_again(tmp_path):
    clock = FixedClock(T0)
    rule = AlertRule("drift", "drift.dataset", "> 0", notify=("webhook",), cooldown_seconds=3600)
    db = TrackingDB(tmp_path / "registry.db")
    try:
        with Receiver() as receiver:
            alerts = AlertManager(
                db, [rule], clock=clock, notifiers={"webhook": WebhookNotifier(receiver.url)}
            )
            for value in (1, 0, 0, 1, 1):  # fires, resolves, normal, fires in the cooldown
                alerts.evaluate({"drift.dataset": value})
                clock.advance(60)
    finally:
        db.close()

    assert [b[0]["annotations"]["summary"].split(":")[0] for b in receiver.bodies] == [
        "drift firing",
        "drift resolved",
    ]


def test_a_webhook_needs_a_positive_check_interval():
    with pytest.raises(ConfigError, match="check_interval"):
        WebhookNotifier("http://127.0.0.1:9093/api/v2/alerts", check_interval=0)


def test_bus_notifier_publishes_the_rule_topic_on_firing_only():
    bus = EventBus()
    seen = []
    bus.subscribe("alert:*", lambda topic, payload: seen.append((topic, payload)))
    notifier = BusNotifier(bus)

    notifier(RULE, transition("firing", at=T0 + timedelta(seconds=20)))
    notifier(RULE, transition("resolved"))
    notifier(RULE, transition("pending"))

    assert seen == [
        (
            "alert:dataset_drift",
            {
                "rule": "dataset_drift",
                "metric": "drift.dataset",
                "value": 1.0,
                "state": "firing",
                "severity": "critical",
                "fired_at": "2026-01-01T00:00:00Z",
                "trigger": "training",
            },
        )
    ]


def test_log_notifier_writes_fired_and_resolved_events_with_their_keys():
    with capture_logs() as captured:
        LogNotifier()(RULE, transition("pending"))
        LogNotifier()(RULE, transition("firing"))
        LogNotifier()(RULE, transition("resolved", value=0.0))

    assert [(e["event"], e["log_level"]) for e in captured] == [
        (events.ALERT_FIRED, "warning"),
        (events.ALERT_RESOLVED, "info"),
    ]
    for event in captured:
        assert events.missing_keys(event["event"], event) == set()
        assert event["rule"] == "dataset_drift" and event["severity"] == "critical"


def test_the_monitoring_check_resends_to_its_webhook_with_the_servers_link(tmp_path):
    from litemlops.config import Config
    from litemlops.monitoring.pipeline import monitoring_pipeline
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import TaskContext

    clock = FixedClock(T0)
    with Receiver() as receiver:
        home = tmp_path / "home"
        home.mkdir()
        (home / "config.toml").write_text(
            f'[monitoring]\nwebhook_url = "{receiver.url}"\ninterval_seconds = 30\n'
            '[server]\nhost = "0.0.0.0"\nport = 8123\n'
            '[[alerts]]\nname = "drift"\nmetric = "drift.dataset"\ncondition = "> 0"\n'
            'notify = ["webhook"]\n'
        )
        config = Config.load(home, env={}, overrides={"demo.drivers": 3})
        alerts = monitoring_pipeline(config).task("alerts")
        with Platform(config, clock=clock) as platform:
            for _ in range(2):
                ctx = TaskContext(
                    run_id="r", pipeline="monitoring", task="alerts", attempt=1, params={},
                    upstream={"drift": {"metrics": {"drift.dataset": 1.0}},
                              "performance": {"metrics": {}}},
                    work_dir=tmp_path, log=None,
                    resources={"tracker": platform.tracker, "config": config, "clock": clock},
                )
                alerts.fn(ctx)
                clock.advance(30)

    sent = [b[0] for b in receiver.bodies if b[0]["labels"]["alertname"] == "drift"]
    assert [a["endsAt"] for a in sent] == ["2026-01-01T00:02:00Z", "2026-01-01T00:02:30Z"]
    assert {a["generatorURL"] for a in sent} == {"http://127.0.0.1:8123/api/monitoring"}
