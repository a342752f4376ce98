import pytest

from litemlops import events
from litemlops.errors import LitemlopsError, NotFoundError

EXPECTED = {
    "features_applied": {"objects", "changed"},
    "features_ingested": {"view", "rows", "source"},
    "features_materialized": {"view", "rows_read", "entities_written", "watermark"},
    "features_pushed": {"view", "rows", "to", "late_rows", "stale_rows"},
    "offline_pushes_taken": frozenset({"pushes", "rows"}),
    "offline_push_dropped": frozenset({"view", "rows", "why"}),
    "run_bootstrapped": {"home", "steps"},
    "run_already_ended": {"tracking_run", "wanted"},
    "artifact_skipped": {"path", "why"},
    "pipeline_run_started": {"trigger"},
    "pipeline_run_finished": {"state", "duration"},
    "pipeline_run_queued": {"trigger"},
    "pipeline_run_skipped": {"trigger"},
    "task_started": {"attempt"},
    "task_succeeded": {"attempt", "duration"},
    "task_failed": {"attempt", "duration", "error"},
    "task_retrying": {"attempt", "delay"},
    "task_skipped": {"reason"},
    "bus_handler_failed": {"topic", "pattern", "error"},
    "schedule_fired": {"schedule", "scheduled_at", "coalesced"},
    "schedule_misfired": {"schedule", "scheduled_at", "late_by", "grace"},
    "trigger_fired": {"topic", "pattern"},
    "trigger_suppressed": {"topic", "pattern", "cooldown", "since_last"},
    "pipeline_trigger_failed": {"trigger", "error"},
    "scheduler_started": {"schedules", "event_triggers", "max_workers"},
    "scheduler_stopped": {"wait"},
    "prediction_served": {
        "request_id", "service", "entities", "features", "scores", "output", "latency_ms",
    },
    "feedback_received": {"request_id", "label"},
    "model_loaded": {"uri", "load_ms"},
    "model_swapped": {"uri", "from_version", "to_version"},
    "server_started": {"url", "host", "port"},
    "server_stopped": {"interrupted_runs"},
    "request_failed": {"path", "error"},
    "stores_left_open": {"reason"},
    "alert_fired": {"rule", "metric", "value", "state"},
    "alert_resolved": {"rule", "metric", "value", "state"},
    "alert_notify_failed": {"rule", "notifier", "error"},
    "ingest_file_rejected": {"file", "moved_to", "report", "problems"},
    "model_version_reused": {
        "registered_model", "existing_version", "sha256", "tracking_run", "registered_by",
    },
    "training_set_extracted": {"rows", "served_rows", "served_skipped"},
    "pipeline_history_pruned": {"runs", "before"},
    "history_compacted": {"files", "lines", "merged", "expired", "bytes"},
    "history_compaction_failed": {"error"},
    "deployment_started": {"deployment", "service", "strategy", "champion", "challengers"},
    "deployment_stepped": {"deployment", "service", "step", "share"},
    "deployment_rolled_back": {"deployment", "service", "reason", "failed_check", "figures"},
    "deployment_promoted": {"deployment", "service", "reason", "promoted_version"},
    "deployment_ended": {"deployment", "service", "reason"},
    "deployment_not_started": {"deployment", "service", "reason"},
    "deployment_tick_failed": {"error"},
    "prediction_shadowed": {
        "request_id", "service", "deployment", "arm", "scores", "output", "agrees", "latency_ms",
    },
    "prediction_shadow_failed": {"request_id", "service", "deployment", "arm", "error"},
}


def test_event_names_and_required_keys_are_the_published_schema():
    assert events.REQUIRED_KEYS == EXPECTED
    assert all(isinstance(keys, frozenset) for keys in events.REQUIRED_KEYS.values())


def test_constants_name_the_events():
    assert events.FEATURES_APPLIED == "features_applied"
    assert events.FEATURES_INGESTED == "features_ingested"
    assert events.FEATURES_MATERIALIZED == "features_materialized"
    assert events.FEATURES_PUSHED == "features_pushed"
    assert events.RUN_BOOTSTRAPPED == "run_bootstrapped"


def test_context_keys_are_not_required_per_event():
    assert {"run_id", "pipeline", "task", "model", "version"} == events.CONTEXT_KEYS
    assert all(not (keys & events.CONTEXT_KEYS) for keys in events.REQUIRED_KEYS.values())


def test_complete_event_misses_nothing_and_extra_keys_are_allowed():
    fields = {"view": "driver_stats", "rows": 10, "source": "x.csv", "run_id": "r1"}

    assert events.missing_keys(events.FEATURES_INGESTED, fields) == set()


def test_missing_keys_are_reported():
    assert events.missing_keys(events.FEATURES_PUSHED, {"view": "v", "rows": 1}) == {
        "to",
        "late_rows",
        "stale_rows",
    }


def test_unknown_event_raises_not_found_naming_it():
    with pytest.raises(NotFoundError, match="unknown event 'features_exploded'") as info:
        events.missing_keys("features_exploded", {})

    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, LitemlopsError)
    assert "features_ingested" in str(info.value)


def test_the_feature_store_emits_its_events_with_every_required_key():
    from datetime import UTC, datetime

    from structlog.testing import capture_logs

    from litemlops.store import Entity, FeatureStore, FeatureView, Field

    now = datetime(2026, 1, 1, tzinfo=UTC)
    driver = Entity("driver")
    view = FeatureView("stats", entities=[driver], schema=[Field("a", "float64")])
    row = [{"driver": 1, "event_timestamp": now, "a": 1.0}]
    with capture_logs() as captured, FeatureStore(":memory:", clock=lambda: now) as fs:
        fs.apply([driver, view])
        fs.ingest("stats", row)
        fs.materialize()
        fs.push("stats", row, to="both")
    names = [e["event"] for e in captured]
    assert names == [
        events.FEATURES_APPLIED,
        events.FEATURES_INGESTED,
        events.FEATURES_MATERIALIZED,
        events.FEATURES_PUSHED,
    ]
    for event in captured:
        assert events.missing_keys(event["event"], event) == set(), event


def test_every_declared_event_is_emitted_by_some_module():
    """An event kept in the catalogue after the code that logged it went (as a scheduler
    wake-up event did) documents something that never happens."""
    import re
    from pathlib import Path

    package = Path(events.__file__).parent
    source = "\n".join(
        p.read_text() for p in package.rglob("*.py") if p != Path(events.__file__)
    )
    names = [k for k, v in vars(events).items() if isinstance(v, str) and v in EXPECTED]
    assert len(names) == len(EXPECTED)
    unused = [k for k in names if not re.search(rf"\b{k}\b", source)]
    assert not unused, f"declared but never logged: {unused}"
