import threading

import pytest
from structlog.testing import capture_logs

from litemlops import events
from litemlops.errors import ValidationError
from litemlops.scheduler.bus import EventBus


def test_subscribers_get_matching_topics_in_order():
    bus = EventBus()
    got = []
    bus.subscribe("alert:drift", lambda t, p: got.append(("exact", t, p["share"])))
    bus.subscribe("alert:*", lambda t, p: got.append(("pattern", t, p["share"])))
    bus.subscribe("pipeline:*", lambda t, p: got.append(("other", t)))
    assert bus.publish("alert:drift", {"share": 0.6}) == 2
    assert got == [("exact", "alert:drift", 0.6), ("pattern", "alert:drift", 0.6)]
    assert bus.publish("nothing:listens") == 0


def test_a_failing_subscriber_is_logged_and_the_others_still_run():
    bus = EventBus()
    got = []
    bus.subscribe("alert:*", lambda t, p: 1 / 0)
    bus.subscribe("alert:*", lambda t, p: got.append(t))
    with capture_logs() as logs:
        assert bus.publish("alert:drift") == 1
    assert got == ["alert:drift"]
    (failure,) = logs
    assert failure["event"] == events.BUS_HANDLER_FAILED and "ZeroDivisionError" in failure["error"]


def test_unsubscribe_and_bad_input():
    bus = EventBus()
    got = []
    sub = bus.subscribe("a", lambda t, p: got.append(t))
    bus.unsubscribe(sub)
    assert bus.publish("a") == 0 and got == []
    with pytest.raises(ValidationError, match="must be a mapping"):
        bus.publish("a", ["share", 0.6])
    with pytest.raises(ValidationError, match="plain name"):
        bus.publish("alert:*")
    with pytest.raises(ValidationError, match="not callable"):
        bus.subscribe("a", "handler")
    with pytest.raises(ValidationError, match="needs a topic"):
        bus.subscribe(" ", lambda t, p: None)


def test_publishing_from_many_threads_delivers_every_event():
    bus = EventBus()
    count = []
    lock = threading.Lock()

    def handler(topic, payload):
        with lock:
            count.append(payload["i"])

    bus.subscribe("tick", handler)
    threads = [
        threading.Thread(
            target=lambda n=n: [bus.publish("tick", {"i": n * 100 + i}) for i in range(100)]
        )
        for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(count) == list(range(800))
