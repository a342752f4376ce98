import io
import json
import os

import pytest
import structlog
from click.testing import CliRunner

from litemlops import events
from litemlops.cli import cli
from litemlops.config import Config
from litemlops.home_lock import HomeLock
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.monitoring import history

# A few hundred bytes a file: the events below spread over the live log and backups.
SMALL = {"LITEMLOPS_LOGGING_MAX_BYTES": "400", "LITEMLOPS_LOGGING_BACKUPS": "50"}


def run_cli(home, *args):
    # The developer's LITEMLOPS_* variables must not change what a test sees.
    env = {k: None for k in os.environ if k.startswith("LITEMLOPS_")}
    return CliRunner().invoke(cli, ["logs", *args, "--home", str(home)], env=env)


def init(home):
    made = CliRunner().invoke(cli, ["init", "--home", str(home)])
    assert made.exit_code == 0, made.output


def write_events(home):
    """Events written the way the platform writes them, through a rotating log."""
    config = Config.load(home, env=SMALL)
    init(home)
    configure_logging(config, console_stream=io.StringIO())
    try:
        log = structlog.get_logger("litemlops.test")
        for run_id, pipeline in (("run-a", "training"), ("run-b", "data")):
            with structlog.contextvars.bound_contextvars(run_id=run_id, pipeline=pipeline):
                log.info(events.PIPELINE_RUN_STARTED, trigger="manual")
                with structlog.contextvars.bound_contextvars(task="fit"):
                    log.info(events.TASK_STARTED, attempt=1)
                    log.error(events.TASK_FAILED, attempt=1, duration=0.5, error="boom")
                log.info(events.PIPELINE_RUN_FINISHED, state="failed", duration=1.0)
        log.info(events.FEEDBACK_RECEIVED, request_id="r1", label=1)
        log.warning(events.ALERT_FIRED, rule="drift", metric="drift.dataset", value=1.0,
                    state="firing")
    finally:
        shutdown_logging()
    return config


@pytest.fixture(params=["log", "history"])
def home(request, tmp_path):
    """A home whose events are in JSON files only, or mostly in the history (the
    rotated files compacted), which `logs` must read alike."""
    home = tmp_path / "home"
    config = write_events(home)
    if request.param == "history":
        assert history.compact(config, settle_seconds=0).files >= 3
    return home


def names(output):
    return [json.loads(line)["event"] for line in output.splitlines()]


def test_logs_reads_the_live_log_and_its_history_oldest_first(home):
    out = run_cli(home, "--json")

    assert out.exit_code == 0, out.output
    assert names(out.stdout) == [
        *["pipeline_run_started", "task_started", "task_failed", "pipeline_run_finished"] * 2,
        "feedback_received",
        "alert_fired",
    ]
    stamps = [json.loads(line)["timestamp"] for line in out.stdout.splitlines()]
    assert stamps == sorted(stamps)


def test_filters_by_pipeline_run_event_and_level(home):
    by_pipeline = run_cli(home, "--pipeline", "data", "--json")
    by_run = run_cli(home, "--run", "run-a", "--event", "task_failed", "--json")
    several = run_cli(home, "--event", "task_started", "--event", "feedback_received", "--json")
    errors = run_cli(home, "--level", "error", "--json")
    warnings = run_cli(home, "--level", "WARNING", "--json")

    assert {json.loads(line)["run_id"] for line in by_pipeline.stdout.splitlines()} == {"run-b"}
    assert len(by_pipeline.stdout.splitlines()) == 4
    [failed] = [json.loads(line) for line in by_run.stdout.splitlines()]
    assert (failed["run_id"], failed["error"], failed["task"]) == ("run-a", "boom", "fit")
    assert names(several.stdout) == ["task_started", "task_started", "feedback_received"]
    assert names(errors.stdout) == ["task_failed", "task_failed"]
    assert names(warnings.stdout) == ["task_failed", "task_failed", "alert_fired"]


def test_limit_keeps_the_newest_events_and_says_how_many_matched(home):
    out = run_cli(home, "--limit", "2", "--json")

    assert names(out.stdout) == ["feedback_received", "alert_fired"]
    assert "showing the newest 2 of 10 matching events" in out.stderr


def test_readable_lines_show_time_level_event_context_and_fields(home):
    out = run_cli(home, "--run", "run-a", "--event", "task_failed")

    [line] = out.stdout.splitlines()
    parts = line.split()
    assert parts[1:3] == ["error", "task_failed"]
    assert "pipeline=training run_id=run-a task=fit attempt=1" in line
    assert "error=boom" in line and "duration=0.5" in line
    assert "logger=" not in line


def test_since_takes_durations_and_iso_times(home):
    logs = home / "logs"
    old = {"event": "ancient", "timestamp": "2020-01-01T00:00:00Z", "level": "info"}
    (logs / "events.jsonl.99").write_text(json.dumps(old) + "\n")

    everything = run_cli(home, "--json", "--limit", "100")
    recent = run_cli(home, "--since", "1h", "--json", "--limit", "100")
    from_2021 = run_cli(home, "--since", "2021-01-01T00:00Z", "--json", "--limit", "100")
    from_a_date = run_cli(home, "--since", "2019-12-31", "--json", "--event", "ancient")
    future = run_cli(home, "--since", "2999-01-01T00:00:00+00:00")

    assert names(everything.stdout)[0] == "ancient"  # the oldest backup comes first
    assert "ancient" not in names(recent.stdout) and len(names(recent.stdout)) == 10
    assert len(names(from_2021.stdout)) == 10
    assert names(from_a_date.stdout) == ["ancient"]
    assert future.exit_code == 0 and future.stdout == ""
    assert "no matching events in" in future.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday': a duration like 30m, 1h, 2d or an "
         "ISO-8601 time like 2026-01-01T00:00Z"),
        (["--since", "5y"], "--since '5y'"),
        (["--level", "loud"], "--level 'loud': one of debug, info, warning, error, critical"),
        (["--limit", "0"], "--limit 0"),
    ],
)
def test_bad_options_are_one_line_errors(home, args, message):
    out = run_cli(home, *args)

    assert out.exit_code == 1, out.output
    assert message in out.output
    assert len(out.output.strip().splitlines()) == 1, out.output
    assert "Traceback" not in out.output


def test_unreadable_lines_are_skipped_and_counted(home):
    live = home / "logs" / "events.jsonl"
    with live.open("a") as fh:
        fh.write('[1, 2]\n{"event": "half a li')

    out = run_cli(home, "--json", "--event", "alert_fired")

    assert out.exit_code == 0, out.output
    assert names(out.stdout) == ["alert_fired"]
    assert "skipped 2 unreadable line(s)" in out.stderr


def test_works_while_another_process_owns_the_home(home):
    # `litemlops run` holds this lock while it serves; logs must not need it.
    with HomeLock(Config.load(home, env={}).lock_path):
        out = run_cli(home, "--event", "alert_fired", "--json")

    assert out.exit_code == 0, out.output
    assert names(out.stdout) == ["alert_fired"]


def test_a_prediction_from_the_history_keeps_its_features_where_they_were(tmp_path):
    config = Config.load(tmp_path / "home", env=SMALL)
    init(config.home)
    configure_logging(config, console_stream=io.StringIO())
    try:
        structlog.get_logger("litemlops.server").info(
            events.PREDICTION_SERVED, request_id="r1", service="predict", entities=[],
            features=[{"conv_rate": 0.125, "trips": 7}, {"conv_rate": 1e-7, "trips": 8}],
            scores=[0.5, 0.25], output=[0.5, 0.25], latency_ms=1.5,
        )
        structlog.get_logger("litemlops.test").info("after", padding="x" * 400)
    finally:
        shutdown_logging()
    [rotated] = [f for f in history.event_files(config.logs_dir) if f != config.events_log_path]
    written = json.loads(rotated.read_text().splitlines()[0])
    history.compact(config, settle_seconds=0)

    out = run_cli(config.home, "--event", "prediction_served", "--json")

    [line] = out.stdout.splitlines()
    assert list(json.loads(line).items()) == list(written.items())


def test_a_home_without_a_log_has_no_events(tmp_path):
    init(tmp_path / "fresh")
    before = sorted(p.name for p in (tmp_path / "fresh" / "logs").iterdir())
    out = run_cli(tmp_path / "fresh")

    assert out.exit_code == 0, out.output
    assert out.stdout == ""
    assert "no matching events" in out.stderr
    assert sorted(p.name for p in (tmp_path / "fresh" / "logs").iterdir()) == before
