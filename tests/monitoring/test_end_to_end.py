"""The loop closed: drifted traffic -> the drift alert fires -> training runs -> a version."""

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from litemlops.bootstrap import bootstrap
from litemlops.demo.generator import generate_driver_stats
from litemlops.demo.simulate import simulate
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.server import create_app


@pytest.fixture
def litemlops_config_overrides():
    # The gate is open: the served rows a retrain learns from carry their log's wall-clock
    # times, which decide their side of the keyed split, so whether the retrain beats the
    # champion varies from run to run. This test is about the loop; the gate has its own.
    return {"demo.drivers": 6, "demo.hours": 48, "demo.labels": 400,
            "training.tolerance": 1.0, "training.min_auc": 0.0, "training.max_rmse": 1.0}


@pytest.fixture
def served(litemlops_platform, litemlops_config):
    configure_logging(litemlops_config)  # written at once: the checks read the file
    try:
        report = bootstrap(litemlops_platform)
        assert report.no_champion is None, report.no_champion
        app = create_app(litemlops_platform, start_scheduler=False)
        with TestClient(app) as client:
            yield client
    finally:
        shutdown_logging()


@pytest.mark.slow
def test_drifted_traffic_fires_the_alert_which_retrains(served, litemlops_platform,
                                                       litemlops_clock, litemlops_config):
    platform = litemlops_platform
    token = litemlops_config.token_path.read_text().strip()
    drivers = list(range(1001, 1007))
    monitoring = platform.catalog.get("monitoring")
    scheduler = platform.scheduler  # synchronous: a bus event runs its pipeline at once

    # Normal traffic: the drivers' own history, as the CLI draws it.
    pool = generate_driver_stats(6, 48, random_state=litemlops_config.demo.seed)
    simulate(served, token, drivers, n=20, labels=True, seed=3, clock=litemlops_clock, pool=pool)
    calm = platform.pipelines.run(monitoring)
    assert calm.state == "success", calm.error
    outputs = {t.task: t.output for t in platform.pipelines.task_runs(calm.run_id)}
    assert outputs["collect"]["predictions"] == 100 and outputs["collect"]["labels"] == 20
    assert outputs["drift"]["metrics"]["drift.dataset"] == 0
    assert outputs["performance"]["metrics"]["performance.label_coverage"] == 1.0

    simulate(served, token, drivers, n=60, drift=True, labels=True, seed=4, clock=litemlops_clock,
             pool=pool)
    first = platform.pipelines.run(monitoring)
    states = {s["rule"]: s["state"] for s in _output(platform, first, "alerts")["states"]}
    assert _output(platform, first, "drift")["metrics"]["drift.dataset"] == 1
    assert states["dataset_drift"] == "pending"  # true, but not yet for 11 s
    assert len(platform.registry.list_versions("driver_ranker")) == 1

    litemlops_clock.advance(timedelta(seconds=12))
    second = platform.pipelines.run(monitoring)
    transitions = _output(platform, second, "alerts")["transitions"]
    assert [(t["rule"], t["to_state"]) for t in transitions] == [("dataset_drift", "firing")]
    (retrain,) = platform.pipelines.list_runs(pipeline="training", state="success")[:1]
    assert retrain.trigger == "event"
    assert retrain.payload["topic"] == "alert:dataset_drift"
    assert sorted(v.version for v in platform.registry.list_versions("driver_ranker")) == [1, 2]
    # The retrain learnt from the labelled traffic, drifted included, as it was served.
    extract = _output(platform, retrain, "extract")
    assert (extract["served_rows"], extract["served_skipped"]) == (80, 0)
    assert scheduler.event_triggers()  # the rule's trigger was registered from config

    # What the server shows of it.
    report = served.get("/api/monitoring").json()
    assert report["run_id"] == second.run_id
    assert report["drift"]["metrics"]["drift.dataset"] == 1
    assert {a["rule"]: a["state"] for a in report["alerts"]}["dataset_drift"] == "firing"
    assert report["history"][0]["to_state"] == "firing"
    metrics = served.get("/metrics").text
    assert "litemlops_dataset_drift_detected 1.0" in metrics
    assert 'litemlops_alert_state{alert="dataset_drift"} 2.0' in metrics
    assert 'litemlops_drift_ks_pvalue{feature="conv_rate"}' in metrics
    assert "litemlops_label_coverage_ratio 1.0" in metrics


def _output(platform, run, task):
    return next(t.output for t in platform.pipelines.task_runs(run.run_id) if t.task == task)
