"""Prometheus metrics of one app, in a registry of its own (two apps in one process,
or tests, never share counters): requests and latency per endpoint, model, version
and status; requests in flight; pipeline runs by pipeline and state, read from
the run history when scraped, so runs of any process and of before a restart count."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# From 0.5 ms: an answer from the in-process stores takes about a millisecond.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class PipelineRunCollector(Collector):
    def __init__(self, counts: Callable[[], Iterable[tuple[str, str, int]]]):
        self._counts = counts

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(
            "litemlops_pipeline_runs", "Pipeline runs in the history", labels=["pipeline", "state"]
        )
        for pipeline, state, n in self._counts():
            family.add_metric([pipeline, state], n)
        yield family


class ServerMetrics:
    def __init__(self, pipeline_counts: Callable[[], Iterable[tuple[str, str, int]]]):
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["endpoint", "model", "version", "status"]
        self.requests = Counter(
            "litemlops_requests", "HTTP requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "litemlops_request_latency_seconds",
            "Time to answer an HTTP request",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "litemlops_requests_in_flight", "HTTP requests being answered", registry=self.registry
        )
        self.registry.register(PipelineRunCollector(pipeline_counts))


class MetricsMiddleware:
    """Counts and times every request, whatever answered it (a route, a 404, a 413).

    Endpoints put the model and version they used in `scope["litemlops"]`, so the
    series say which version served.
    """

    def __init__(self, app: Any, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics
        # Each series' children, found once: `labels()` takes a lock and builds keys.
        self._series: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        info: dict[str, Any] = {}
        scope["litemlops"] = info

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            labels = (
                endpoint,
                str(info.get("model", "")),
                str(info.get("version", "")),
                str(status[0]),
            )
            series = self._series.get(labels)
            if series is None:
                series = (
                    self.metrics.requests.labels(*labels),
                    self.metrics.latency.labels(*labels),
                )
                self._series[labels] = series
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
