"""An endpoint's traffic over the last hour, for the dashboard: requests per second and the
p99 latency, from the latency histogram `/metrics` exports.

Nothing is added to the request path: once a minute a thread copies the histogram's
cumulative counts (a snapshot); the last hour is the difference between now and the
snapshot an hour back, with the quantile read off the buckets as Prometheus'
`histogram_quantile` does (linear within the bucket that holds it). Until an hour has
passed, "the last hour" is since the first snapshot.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Seconds between snapshots, and how many are kept (an hour and one).
EVERY = 60.0
KEEP = 61


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.time()
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), +Inf last


class Traffic:
    """Snapshots of `histogram` (a prometheus_client Histogram with labels) summed over
    the series whose `endpoint` label is `endpoint`."""

    def __init__(self, histogram: Any, endpoint: str, clock: Callable[[], float] = time.time):
        self.histogram = histogram
        self.endpoint = endpoint
        self.clock = clock
        self.snapshots: deque[Snapshot] = deque(maxlen=KEEP)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> Snapshot:
        """The histogram's counts now, summed over the endpoint's series."""
        counts: dict[float, float] = {}
        for metric in self.histogram.collect():
            for sample in metric.samples:
                if sample.name.endswith("_bucket") and sample.labels.get("endpoint") == (
                    self.endpoint
                ):
                    bound = float(sample.labels["le"])
                    counts[bound] = counts.get(bound, 0.0) + sample.value
        return Snapshot(self.clock(), tuple(sorted(counts.items())))

    def snapshot(self) -> None:
        self.snapshots.append(self.read())

    def last_hour(self) -> dict[str, Any]:
        """Requests, requests per second and p99 latency (ms) since the snapshot an hour
        back (or the first), and the requests of each minute since, oldest first."""
        now = self.read()
        if not self.snapshots:
            return {"requests": 0, "per_second": None, "p99_ms": None, "minutes": [],
                    "seconds": 0.0}  # fmt: skip
        base = next(
            (s for s in self.snapshots if now.at - s.at <= 3600 + EVERY / 2), self.snapshots[-1]
        )
        delta = _minus(now.buckets, base.buckets)
        requests = delta[-1][1] if delta else 0.0
        seconds = now.at - base.at
        marks = [s for s in self.snapshots if s.at >= base.at] + [now]
        minutes = [_total(b.buckets) - _total(a.buckets) for a, b in itertools.pairwise(marks)]
        return {
            "requests": int(requests),
            "per_second": requests / seconds if seconds > 0 else None,
            "p99_ms": _quantile(0.99, delta) * 1e3 if requests else None,
            "minutes": [int(m) for m in minutes],
            "seconds": seconds,
        }

    def start(self) -> None:
        """Snapshot now and then every `EVERY` seconds on a thread, until `close()`."""
        self.snapshot()

        def loop() -> None:
            while not self._stop.wait(EVERY):
                self.snapshot()

        self._thread = threading.Thread(target=loop, name="litemlops-traffic", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()


def _total(buckets: tuple[tuple[float, float], ...]) -> float:
    return buckets[-1][1] if buckets else 0.0


def _minus(
    now: tuple[tuple[float, float], ...], then: tuple[tuple[float, float], ...]
) -> list[tuple[float, float]]:
    before = dict(then)
    return [(bound, count - before.get(bound, 0.0)) for bound, count in now]


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """`histogram_quantile(q, ...)` of cumulative (upper bound, count) buckets: linear
    within the bucket that holds rank q * total (from 0 for the first); the highest
    finite bound when the rank falls in +Inf."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
