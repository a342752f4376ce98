"""An endpoint's last hour from snapshots of the latency histogram: requests, rate, p99."""

from __future__ import annotations

from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from litemlops.server.metrics import LATENCY_BUCKETS
from litemlops.server.traffic import EVERY, KEEP, Traffic


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def histogram() -> Histogram:
    return Histogram("t_latency_seconds", "latency", ["endpoint"], buckets=LATENCY_BUCKETS,
                     registry=CollectorRegistry())  # fmt: skip


def test_no_snapshot_yet_is_no_figure():
    traffic = Traffic(histogram(), "/inference", Clock())

    assert traffic.last_hour()["per_second"] is None


@settings(max_examples=examples(50), deadline=None)
@given(minutes=st.lists(st.lists(st.floats(0.0001, 20.0), max_size=30), min_size=1,
                        max_size=KEEP + 5))  # fmt: skip
def test_the_last_hour_counts_only_its_requests_and_their_p99_lies_in_its_bucket(minutes):
    h, clock = histogram(), Clock()
    traffic = Traffic(h, "/inference", clock)
    h.labels("/other").observe(0.3)  # another endpoint's requests never count
    traffic.snapshot()
    for latencies in minutes:  # a minute of requests, then the minute's snapshot
        for seconds in latencies:
            h.labels("/inference").observe(seconds)
        clock.now += EVERY
        traffic.snapshot()

    hour = traffic.last_hour()

    kept = [x for m in minutes[-60:] for x in m]  # the snapshot an hour back is the base
    assert hour["requests"] == len(kept)
    # each minute's requests, oldest first, then the minute in progress (none yet)
    assert hour["minutes"] == [len(m) for m in minutes[-60:]] + [0]
    if kept:
        assert hour["per_second"] == len(kept) / hour["seconds"]
        true = sorted(kept)[max(0, -(-99 * len(kept) // 100) - 1)] * 1e3
        bounds = [0.0, *(b * 1e3 for b in LATENCY_BUCKETS)]
        low = max(b for b in bounds if b < true) if true > bounds[0] else 0.0
        high = min((b for b in bounds if b >= true), default=bounds[-1])
        assert low <= hour["p99_ms"] <= high, (true, hour["p99_ms"])
    else:
        assert hour["p99_ms"] is None
