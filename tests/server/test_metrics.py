"""/metrics follows Prometheus's conventions: one unit per metric, named in its suffix,
`_total` counters, no `_created` series; process metrics, build info, freshness."""

from __future__ import annotations

import platform
import re
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import litemlops
from litemlops.monitoring.drift import METRIC_STATS
from litemlops.server.metrics import ServerMetrics
from litemlops.testing import FixedClock

NAME = re.compile(r"[a-z_][a-z0-9_]*")
#: Labels that say where or what a value is about, never which quantity it is: a label
#: like `statistic` or `metric` would put several units in one metric.
DIMENSIONS = {
    "endpoint", "model", "version", "status", "pipeline", "state", "feature", "alert",
    "view", "quantile", "le", "python", "implementation", "major", "minor", "patchlevel",
    "generation",
}
#: Suffix -> the values a metric of that unit may take.
UNITS: dict[str, Any] = {
    "_seconds": lambda v: v >= 0,
    "_ratio": lambda v: 0 <= v <= 1,
    "_pvalue": lambda v: 0 <= v <= 1,
    "_detected": lambda v: v in (0, 1),
    "_info": lambda v: v == 1,
    "_bytes": lambda v: v >= 0,
}


def families(text: str) -> list[Any]:
    return list(text_string_to_metric_families(text))


def check_conventions(text: str) -> dict[str, Any]:
    """Every family of an exposition keeps the conventions; returns them by name."""
    found = {}
    for family in families(text):
        found[family.name] = family
        assert NAME.fullmatch(family.name), family.name
        assert family.name.startswith(("litemlops_", "process_", "python_")), family.name
        for sample in family.samples:
            assert not sample.name.endswith("_created"), sample.name
            assert set(sample.labels) <= DIMENSIONS, (sample.name, sample.labels)
            if family.type == "counter":
                assert sample.name == family.name + "_total", sample.name
            for suffix, allowed in UNITS.items():
                if family.name.endswith(suffix) and sample.name == family.name:
                    assert allowed(sample.value), (sample.name, sample.labels, sample.value)
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
    return found


def every_monitoring_metric() -> dict[str, float]:
    """A check's metrics with every statistic, quality check and performance number."""
    metrics = {"drift.dataset": 1.0, "drift.share": 0.5}
    for kind, feature in (("numeric", "conv_rate"), ("categorical", "city")):
        for stat in METRIC_STATS[kind]:
            metrics[f"drift.{feature}.{stat}"] = 0.03 if stat.endswith("pvalue") else 2.5
        metrics[f"drift.{feature}.drifted"] = 1.0
        metrics[f"quality.{feature}.null_rate"] = 0.1
    metrics["quality.conv_rate.out_of_range"] = 0.2
    metrics["quality.city.unseen"] = 0.05
    performance = {
        "accuracy": 0.8, "precision": 0.7, "recall": 0.6, "f1": 0.65, "auc": 0.9,
        "rmse": 12.0, "mae": 9.0, "label_coverage": 0.4, "label_lag_p50_seconds": 30.0,
        "label_lag_p95_seconds": 90.0, "labels": 40.0, "predictions": 100.0,
        "unlabeled": 60.0, "unknown_labels": 1.0, "duplicate_labels": 2.0,
        "invalid_labels": 0.0,
    }
    metrics.update({f"performance.{k}": v for k, v in performance.items()})
    return metrics


def test_every_monitoring_number_has_a_metric_of_one_unit():
    report = {
        "metrics": every_monitoring_metric(),
        "alerts": [{"rule": "dataset_drift", "state": "firing"}],
    }
    metrics = ServerMetrics(lambda: [("training", "success", 2)], lambda: report)
    metrics.requests.labels("/inference", "m", "1", "200").inc()
    metrics.latency.labels("/inference", "m", "1", "200").observe(0.01)

    found = check_conventions(generate_latest(metrics.registry).decode())

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in found.values()
        for s in family.samples
    }
    assert samples[("litemlops_drift_ks_pvalue", (("feature", "conv_rate"),))] == 0.03
    assert samples[("litemlops_drift_psi", (("feature", "conv_rate"),))] == 2.5
    assert samples[("litemlops_drift_chi2_pvalue", (("feature", "city"),))] == 0.03
    assert samples[("litemlops_feature_drift_detected", (("feature", "city"),))] == 1
    assert samples[("litemlops_dataset_drift_detected", ())] == 1
    assert samples[("litemlops_drifted_features_ratio", ())] == 0.5
    assert samples[("litemlops_data_quality_unseen_ratio", (("feature", "city"),))] == 0.05
    assert samples[("litemlops_model_roc_auc", ())] == 0.9
    assert samples[("litemlops_model_rmse", ())] == 12.0
    assert samples[("litemlops_label_lag_seconds", (("quantile", "0.95"),))] == 90.0
    assert samples[("litemlops_window_predictions", ())] == 100
    assert samples[("litemlops_alert_state", (("alert", "dataset_drift"),))] == 2
    assert samples[("litemlops_requests_total", (("endpoint", "/inference"), ("model", "m"),
                                                 ("status", "200"), ("version", "1")))] == 1
    # Each number of the report is in exactly one sample, so none was dropped or doubled.
    monitoring = [
        name for name, _ in samples
        if name.startswith(("litemlops_drift", "litemlops_feature_drift", "litemlops_dataset",
                            "litemlops_data_quality", "litemlops_model", "litemlops_label",
                            "litemlops_window"))
    ]
    assert len(monitoring) == len(report["metrics"])


def test_metrics_export_the_process_the_build_and_no_created_series(client):
    text = client.get("/metrics").text

    found = check_conventions(text)

    assert "_created" not in text
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= set(found)
    [build] = found["litemlops_build_info"].samples
    assert build.labels == {"version": litemlops.__version__, "python": platform.python_version()}
    assert build.value == 1


def test_freshness_is_the_age_of_the_newest_online_event_per_view(
    client, auth, served_platform, served_clock: FixedClock
):
    def freshness() -> float:
        [sample] = [
            s
            for family in families(client.get("/metrics").text)
            if family.name == "litemlops_feature_view_freshness_seconds"
            for s in family.samples
        ]
        assert sample.labels == {"view": "driver_stats"}
        return sample.value

    newest = served_platform.features.online_event_times()["driver_stats"]
    assert freshness() == pytest.approx((served_clock() - newest).total_seconds())

    served_clock.advance(90)
    assert freshness() == pytest.approx((served_clock() - newest).total_seconds())

    pushed_at = served_clock() - timedelta(seconds=5)
    stamp = pushed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    row = {"driver_id": 1001, "datetime": stamp, "created": stamp, "conv_rate": 0.5,
           "acc_rate": 0.5, "avg_daily_trips": 10}
    pushed = client.post("/push/driver_stats", json={"rows": [row]}, headers=auth)
    assert pushed.status_code == 200, pushed.text
    assert freshness() == pytest.approx(5.0)
