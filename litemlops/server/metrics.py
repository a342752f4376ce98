"""Prometheus metrics of one app, in a registry of its own (two apps in one process,
or tests, never share counters): requests and latency per endpoint, model, version
and status; requests in flight; pipeline runs by pipeline and state, read from
the run history when scraped, so runs of any process and of before a restart count;
the last monitoring check; how fresh each feature view's online values are; each
live deployment's arms (requests, errors, labels, rewards, share, latency); the
process (CPU, memory, file descriptors) and the build.

Names follow Prometheus's conventions: one unit per metric, named in its suffix
(`_seconds`, `_ratio`, `_pvalue`), `_total` for counters, and no `_created` series.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from litemlops.server.traffic import Traffic

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

#: A drift statistic per feature -> its metric: one statistic, so one unit, each.
DRIFT_METRICS = {
    "ks_pvalue": ("litemlops_drift_ks_pvalue", "p-value of the two-sample KS test per feature"),
    "ks_stat": ("litemlops_drift_ks_statistic", "KS statistic D per feature (0 to 1)"),
    "psi": ("litemlops_drift_psi", "Population stability index per feature"),
    "wasserstein": (
        "litemlops_drift_wasserstein_distance",
        "Wasserstein distance per feature, in the feature's units",
    ),
    "chi2_pvalue": ("litemlops_drift_chi2_pvalue", "p-value of the chi-square test per feature"),
    "js": ("litemlops_drift_js_distance", "Jensen-Shannon distance per feature (0 to 1)"),
    "drifted": ("litemlops_feature_drift_detected", "1 when the feature drifted, else 0"),
}
#: A data quality check per feature -> its metric.
QUALITY_METRICS = {
    "null_rate": ("litemlops_data_quality_null_ratio", "Share of null values per feature"),
    "out_of_range": (
        "litemlops_data_quality_out_of_range_ratio",
        "Share of values outside the reference range per feature",
    ),
    "unseen": (
        "litemlops_data_quality_unseen_ratio",
        "Share of categories the reference never saw per feature",
    ),
}
#: A delayed-label performance number -> its metric.
PERFORMANCE_METRICS = {
    "accuracy": ("litemlops_model_accuracy_ratio", "Accuracy on the labelled window"),
    "precision": ("litemlops_model_precision_ratio", "Precision on the labelled window"),
    "recall": ("litemlops_model_recall_ratio", "Recall on the labelled window"),
    "f1": ("litemlops_model_f1_score", "F1 score on the labelled window"),
    "auc": ("litemlops_model_roc_auc", "ROC AUC on the labelled window"),
    "rmse": ("litemlops_model_rmse", "Root mean squared error, in the label's units"),
    "mae": ("litemlops_model_mae", "Mean absolute error, in the label's units"),
    "label_coverage": (
        "litemlops_label_coverage_ratio",
        "Share of the window's predictions that have a label",
    ),
    "labels": ("litemlops_window_labels", "Labels joined to the window's predictions"),
    "predictions": ("litemlops_window_predictions", "Predictions in the monitoring window"),
    "unlabeled": (
        "litemlops_window_unlabeled_predictions",
        "Predictions in the window without a label yet",
    ),
    "unknown_labels": (
        "litemlops_window_unknown_labels",
        "Labels for request ids the window does not hold",
    ),
    "duplicate_labels": (
        "litemlops_window_duplicate_labels",
        "Labels repeated for one request id",
    ),
    "invalid_labels": ("litemlops_window_invalid_labels", "Labels that are not valid values"),
}
#: Label lag percentiles: one metric in seconds, by quantile.
LAG_QUANTILES = {"label_lag_p50_seconds": "0.5", "label_lag_p95_seconds": "0.95"}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class CreatedFreeRegistry(CollectorRegistry):
    """A registry whose exposition has no `_created` series.

    prometheus_client adds to each counter and histogram a `_created` gauge (a Unix
    time) that Prometheus stores as one more series per child and no query needs.
    Its switch (`disable_created_metrics`) is process-wide and would change the
    embedding application's metrics too, so this registry drops them itself.
    """

    def collect(self) -> Iterable[Any]:
        for family in super().collect():
            created = family.name + "_created"
            family.samples = [s for s in family.samples if s.name != created]
            yield family


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
    """The last monitoring check as gauges, read when scraped: one metric per drift
    statistic, quality check and performance number (each of one unit), the dataset
    drift flag and share, and each alert's state (0 normal, 1 pending, 2 firing,
    3 resolved)."""

    def __init__(self, latest: Callable[[], dict[str, Any] | None]):
        self._latest = latest

    def collect(self) -> Iterable[Any]:
        from litemlops.monitoring.alerts import STATE_VALUES

        report = self._latest() or {}
        metrics: dict[str, Any] = report.get("metrics") or {}
        families: dict[str, GaugeMetricFamily] = {}

        def family(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
            if name not in families:
                families[name] = GaugeMetricFamily(name, text, labels=labels)
            return families[name]

        for key, value in metrics.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            parts = key.split(".")
            if key == "drift.dataset":
                name = "litemlops_dataset_drift_detected"
                family(name, "1 when the dataset drifted, else 0", []).add_metric([], value)
            elif key == "drift.share":
                name = "litemlops_drifted_features_ratio"
                family(name, "Share of the features that drifted", []).add_metric([], value)
            elif parts[0] in ("drift", "quality") and len(parts) >= 3:
                table = DRIFT_METRICS if parts[0] == "drift" else QUALITY_METRICS
                stat, feature = parts[-1], ".".join(parts[1:-1])
                if _NAME.fullmatch(stat):  # a statistic added later gets a metric of its own
                    fallback = (f"litemlops_{parts[0]}_{stat}", f"{stat} per feature")
                    name, text = table.get(stat, fallback)
                    family(name, text, ["feature"]).add_metric([feature], value)
            elif parts[0] == "performance" and len(parts) == 2:
                stat = parts[1]
                if stat in LAG_QUANTILES:
                    name = "litemlops_label_lag_seconds"
                    text = "Time from a prediction to its label, by quantile"
                    family(name, text, ["quantile"]).add_metric([LAG_QUANTILES[stat]], value)
                elif _NAME.fullmatch(stat):
                    name, text = PERFORMANCE_METRICS.get(stat, (f"litemlops_model_{stat}", stat))
                    family(name, text, []).add_metric([], value)
        alerts = GaugeMetricFamily(
            "litemlops_alert_state",
            "Alert state: 0 normal, 1 pending, 2 firing, 3 resolved",
            labels=["alert"],
        )
        for status in report.get("alerts") or []:
            alerts.add_metric([status["rule"]], float(STATE_VALUES.get(status["state"], 0)))
        yield from families.values()
        yield alerts


class FreshnessCollector(Collector):
    """Seconds since the newest event time in the online store, per feature view."""

    def __init__(self, freshness: Callable[[], Iterable[tuple[str, float]]]):
        self._freshness = freshness

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(
            "litemlops_feature_view_freshness_seconds",
            "Seconds since the newest event time in the online store, per feature view",
            labels=["view"],
        )
        for view, seconds in self._freshness():
            family.add_metric([view], seconds)
        yield family


class DeploymentCollector(Collector):
    """Each live deployment's arms, read when scraped (nothing on the request path):
    requests answered and errors, labels joined and rewards (labels > 0), the traffic
    share, and latency p50/p99 over the arm's current window."""

    def __init__(self, arms: Callable[[], Iterable[tuple[str, str, dict[str, Any]]]]):
        self._arms = arms

    def collect(self) -> Iterable[Any]:
        labels = ["deployment", "arm"]
        counters = {
            "requests": CounterMetricFamily(
                "litemlops_deployment_requests", "Requests an arm answered", labels=labels
            ),
            "errors": CounterMetricFamily(
                "litemlops_deployment_errors",
                "Requests an arm failed (the champion answered them)",
                labels=labels,
            ),
            "labels": CounterMetricFamily(
                "litemlops_deployment_labels", "Labels joined to an arm's requests", labels=labels
            ),
            "rewards": CounterMetricFamily(
                "litemlops_deployment_rewards",
                "Labels above 0 joined to an arm's requests",
                labels=labels,
            ),
        }
        share = GaugeMetricFamily(
            "litemlops_deployment_share_ratio", "An arm's share of traffic now", labels=labels
        )
        latency = GaugeMetricFamily(
            "litemlops_deployment_latency_seconds",
            "An arm's answer latency over its current window, by quantile",
            labels=[*labels, "quantile"],
        )
        for deployment, arm, figures in self._arms():
            for key, family in counters.items():
                family.add_metric([deployment, arm], figures[key])
            if figures["share"] is not None:
                share.add_metric([deployment, arm], figures["share"])
            for q, key in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
                if figures[key] is not None:
                    latency.add_metric([deployment, arm, q], figures[key] / 1e3)
        yield from counters.values()
        yield share
        yield latency


class BuildInfoCollector(Collector):
    """`litemlops_build_info{version, python} 1`: what is running, for joins in queries."""

    def collect(self) -> Iterable[Any]:
        from litemlops import __version__

        family = GaugeMetricFamily(
            "litemlops_build_info",
            "The litemlops version and Python version running; always 1",
            labels=["version", "python"],
        )
        family.add_metric([__version__, platform.python_version()], 1.0)
        yield family


class ServerMetrics:
    def __init__(
        self,
        pipeline_counts: Callable[[], Iterable[tuple[str, str, int]]],
        monitoring: Callable[[], dict[str, Any] | None] | None = None,
        freshness: Callable[[], Iterable[tuple[str, float]]] | None = None,
        deployments: Callable[[], Iterable[tuple[str, str, dict[str, Any]]]] | None = None,
    ):
        self.registry = CreatedFreeRegistry(auto_describe=True)
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
        #: `/inference`'s last hour, from snapshots of `latency` (the dashboard's overview).
        self.traffic = Traffic(self.latency, "/inference")
        self.in_flight = Gauge(
            "litemlops_requests_in_flight", "HTTP requests being answered", registry=self.registry
        )
        self.registry.register(PipelineRunCollector(pipeline_counts))
        if monitoring is not None:
            self.registry.register(MonitoringCollector(monitoring))
        if freshness is not None:
            self.registry.register(FreshnessCollector(freshness))
        if deployments is not None:
            self.registry.register(DeploymentCollector(deployments))
        self.registry.register(BuildInfoCollector())
        # The process's CPU, memory and file descriptors, the interpreter, and its
        # garbage collections, as every Prometheus client exports them.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)


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
