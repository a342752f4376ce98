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


class MonitoringCollector(Collector):
    """The last monitoring check as gauges, read when scraped: drift statistics per
    feature, the dataset drift flag and share, data quality, performance (with label
    coverage) and each alert's state (0 normal, 1 pending, 2 firing, 3 resolved)."""

    def __init__(self, latest: Callable[[], dict[str, Any] | None]):
        self._latest = latest

    def collect(self) -> Iterable[Any]:
        from litemlops.monitoring.alerts import STATE_VALUES

        report = self._latest() or {}
        metrics: dict[str, Any] = report.get("metrics") or {}
        dataset = GaugeMetricFamily("litemlops_drift_dataset", "1 when the dataset drifted")
        share = GaugeMetricFamily("litemlops_drift_share", "Share of features that drifted")
        drift = GaugeMetricFamily(
            "litemlops_drift", "Drift statistics per feature", labels=["feature", "statistic"]
        )
        quality = GaugeMetricFamily(
            "litemlops_data_quality", "Data quality per feature", labels=["feature", "check"]
        )
        performance = GaugeMetricFamily(
            "litemlops_performance", "Delayed-label performance", labels=["metric"]
        )
        for name, value in metrics.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            parts = name.split(".")
            if name == "drift.dataset":
                dataset.add_metric([], float(value))
            elif name == "drift.share":
                share.add_metric([], float(value))
            elif parts[0] == "drift" and len(parts) >= 3:
                drift.add_metric([".".join(parts[1:-1]), parts[-1]], float(value))
            elif parts[0] == "quality" and len(parts) >= 3:
                quality.add_metric([".".join(parts[1:-1]), parts[-1]], float(value))
            elif parts[0] == "performance" and len(parts) == 2:
                performance.add_metric([parts[1]], float(value))
        alerts = GaugeMetricFamily(
            "litemlops_alert_state",
            "Alert state: 0 normal, 1 pending, 2 firing, 3 resolved",
            labels=["alert"],
        )
        for status in report.get("alerts") or []:
            alerts.add_metric([status["rule"]], float(STATE_VALUES.get(status["state"], 0)))
        yield from (dataset, share, drift, quality, performance, alerts)


class ServerMetrics:
    def __init__(
        self,
        pipeline_counts: Callable[[], Iterable[tuple[str, str, int]]],
        monitoring: Callable[[], dict[str, Any] | None] | None = None,
    ):
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
        if monitoring is not None:
            self.registry.register(MonitoringCollector(monitoring))


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
