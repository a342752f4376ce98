"""The monitoring check compacts the event log first, and reads weeks back through the history."""

from datetime import timedelta

import pytest
from history_logs import T0, label, served, write_log

from litemlops import events
from litemlops.monitoring import history
from litemlops.monitoring.pipeline import monitoring_pipeline


@pytest.fixture
def litemlops_config_overrides():
    return {"monitoring.window_seconds": 4 * 86_400}


def ranked(request_id, seconds, **more):
    return served(request_id, seconds, [{"conv_rate": 0.5}], entities=[1001], output=1001,
                  model="driver_ranker", **more)


def busy_days(days):
    """A rotated file of traffic for each day."""
    return [[ranked(f"d{d}-{i}", d * 86_400 + i) for i in range(20)] for d in range(1, days + 1)]


def test_the_check_compacts_rotated_files_then_reads_them(litemlops_config, litemlops_platform,
                                                          litemlops_clock, litemlops_run):
    logs = write_log(litemlops_config.logs_dir, [*busy_days(3), [ranked("live", 3 * 86_400)]])
    litemlops_clock.set(T0 + timedelta(days=3, hours=1))

    result = litemlops_run(monitoring_pipeline(litemlops_config))

    assert result.state == "success", result.run.error
    window = result.outputs["collect"]
    assert window["history"]["files"] == 3 and window["history"]["status"] == "ok"
    assert window["requests"] == 61
    assert history.event_files(logs) == [logs / history.EVENTS_FILE]
    assert result.events_named(events.HISTORY_COMPACTED)[0]["files"] == 3


def test_a_label_days_after_its_prediction_counts_in_the_check(
    litemlops_config, litemlops_platform, litemlops_clock, litemlops_run
):
    write_log(litemlops_config.logs_dir, [
        [ranked("early", 0)],
        *busy_days(3),
        [label("early", 3 * 86_400 + 60, 1.0)],
    ])
    litemlops_clock.set(T0 + timedelta(days=3, hours=1))

    result = litemlops_run(monitoring_pipeline(litemlops_config))

    performance = result.outputs["performance"]
    assert performance["labelled"] == 1 and performance["unknown_labels"] == 0
    assert performance["label_lag_p50_seconds"] == 3 * 86_400 + 60


def test_a_history_that_cannot_be_written_does_not_stop_the_check(
    litemlops_config, litemlops_platform, litemlops_clock, litemlops_run
):
    logs = write_log(litemlops_config.logs_dir, [*busy_days(2), []])
    (logs / history.HISTORY_DIR).write_text("a file where the folder goes")
    litemlops_clock.set(T0 + timedelta(days=2, hours=1))

    result = litemlops_run(monitoring_pipeline(litemlops_config))

    assert result.state == "success", result.run.error
    window = result.outputs["collect"]
    assert window["history"]["status"] == "failed"
    assert "cannot write the event history" in window["history"]["error"]
    assert window["requests"] == 40  # read from the files that wait
    [failed] = result.events_named(events.HISTORY_COMPACTION_FAILED)
    assert failed["level"] == "warning"
    assert len(history.event_files(logs)) == 3
