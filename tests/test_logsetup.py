import io
import json
import logging
import math
import re
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops import events
from litemlops.config import Config
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.monitoring.history import event_files


@pytest.fixture
def config(tmp_path):
    return Config.load(tmp_path / "home", env={})


@pytest.fixture(autouse=True)
def _logging_restored(restore_logging):
    """Every test here configures logging; each leaves it as it found it."""


def read_events(path: Path) -> list[dict]:
    # Lines end at "\n" only: JSON text may hold U+2028 and the like, which splitlines takes.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def test_events_land_in_the_file_as_one_json_object_per_line(config):
    configure_logging(config, console_stream=io.StringIO())
    log = structlog.get_logger("litemlops.store")

    log.info(events.FEATURES_INGESTED, view="driver_stats", rows=3, source=Path("a.csv"))
    log.warning("disk_low", free_bytes=10)
    shutdown_logging()

    first, second = read_events(config.events_log_path)
    assert first["event"] == "features_ingested"
    assert first["level"] == "info"
    assert first["logger"] == "litemlops.store"
    assert first["view"] == "driver_stats"
    assert first["rows"] == 3
    assert first["source"] == "a.csv"
    assert first["timestamp"].endswith("Z")
    assert second["event"] == "disk_low"
    assert second["level"] == "warning"


def test_contextvars_bound_keys_appear_in_every_event(config):
    configure_logging(config, console_stream=io.StringIO())
    log = structlog.get_logger("litemlops.scheduler")

    with structlog.contextvars.bound_contextvars(run_id="r-1", pipeline="training", task="fit"):
        log.info("task_started")
    log.info("after")
    shutdown_logging()

    inside, after = read_events(config.events_log_path)
    assert inside["run_id"] == "r-1"
    assert inside["pipeline"] == "training"
    assert inside["task"] == "fit"
    assert "run_id" not in after


def test_events_below_the_configured_level_are_dropped(tmp_path):
    config = Config.load(tmp_path, env={"LITEMLOPS_LOGGING_LEVEL": "warning"})
    configure_logging(config, console_stream=io.StringIO())
    log = structlog.get_logger("litemlops.store")

    log.info("quiet")
    log.error("loud")
    shutdown_logging()

    assert [e["event"] for e in read_events(config.events_log_path)] == ["loud"]


def test_stdlib_records_of_other_libraries_are_json_too(config):
    configure_logging(config, console_stream=io.StringIO())

    logging.getLogger("uvicorn.error").warning("port %d busy", 8000)
    shutdown_logging()

    (record,) = read_events(config.events_log_path)
    assert record["event"] == "port 8000 busy"
    assert record["logger"] == "uvicorn.error"
    assert record["level"] == "warning"
    assert "timestamp" in record


def test_exceptions_are_rendered_into_the_event(config):
    configure_logging(config, console_stream=io.StringIO())
    log = structlog.get_logger("litemlops.server")

    try:
        raise ValueError("bad input")
    except ValueError:
        log.exception("prediction_failed")
    shutdown_logging()

    (record,) = read_events(config.events_log_path)
    assert "ValueError: bad input" in record["exception"]


def test_console_output_is_readable_text(config):
    console = io.StringIO()
    configure_logging(config, console_stream=console)

    structlog.get_logger("litemlops.store").info(
        events.FEATURES_INGESTED, view="driver_stats", rows=3, source="a.csv"
    )

    line = console.getvalue()
    assert "features_ingested" in line
    assert "view=driver_stats" in line
    assert "rows=3" in line
    assert "\x1b[" not in line  # no colour codes
    assert not line.lstrip().startswith("{")


def test_console_can_be_turned_off(tmp_path):
    config = Config.load(tmp_path, env={}, overrides={"logging.console": False})
    console = io.StringIO()
    configure_logging(config, console_stream=console)

    structlog.get_logger("litemlops").info("hello")
    shutdown_logging()

    assert console.getvalue() == ""
    assert len(read_events(config.events_log_path)) == 1


def test_configuring_twice_does_not_duplicate_output(config):
    console = io.StringIO()
    configure_logging(config, console_stream=io.StringIO())
    configure_logging(config, console_stream=console)
    root_handlers = len(logging.getLogger().handlers)
    configure_logging(config, console_stream=console)

    structlog.get_logger("litemlops").info("once")
    shutdown_logging()

    assert len(logging.getLogger().handlers) == root_handlers - 1
    assert [e["event"] for e in read_events(config.events_log_path)] == ["once"]
    assert console.getvalue().count("once") == 1


def test_shutdown_leaves_other_handlers_alone(config):
    other = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(other)
    try:
        configure_logging(config, console_stream=io.StringIO())
        shutdown_logging()
        assert other in root.handlers
    finally:
        root.removeHandler(other)


def test_the_file_rotates_at_max_bytes_and_no_rotated_file_is_deleted(tmp_path):
    config = Config.load(
        tmp_path, env={}, overrides={"logging.max_bytes": 2000, "logging.backups": 2}
    )
    configure_logging(config, console_stream=io.StringIO())
    log = structlog.get_logger("litemlops")

    for i in range(100):
        log.info("tick", i=i, padding="x" * 50)
    shutdown_logging()

    files = event_files(config.logs_dir)
    assert len(files) > 3  # `backups` (2) no longer deletes: the history's compaction does
    assert files[-1] == config.events_log_path
    assert all(re.fullmatch(r"events-\d{8}T\d{12}Z-\d+\.jsonl", f.name) for f in files[:-1])
    assert all(f.stat().st_size < 2000 for f in files)
    ticks = [e["i"] for f in files for e in read_events(f)]
    assert ticks == list(range(100))


def test_non_finite_numbers_are_written_as_json_null(tmp_path):
    config = Config.load(tmp_path / "home", env={})
    configure_logging(config, console_stream=io.StringIO())
    try:
        structlog.get_logger("litemlops.test").info(
            "scores", score=math.nan, worst=[1.0, math.inf], nested={"x": -math.inf}
        )
    finally:
        shutdown_logging()
    line = (config.logs_dir / "events.jsonl").read_text().splitlines()[-1]
    event = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert event["score"] is None and event["worst"] == [1.0, None]
    assert event["nested"] == {"x": None}


def test_background_logging_writes_everything_by_shutdown(tmp_path):
    import json

    import structlog

    from litemlops.config import Config
    from litemlops.logsetup import configure_logging, shutdown_logging

    config = Config.load(tmp_path, env={}, overrides={"logging.console": False})
    configure_logging(config, background=True)
    log = structlog.get_logger("litemlops.test")
    with structlog.contextvars.bound_contextvars(run_id="r1"):
        for i in range(500):
            log.info("prediction_served", n=i, score=float("nan"))
    shutdown_logging()
    lines = [json.loads(line) for line in config.events_log_path.read_text().splitlines()]
    served = [e for e in lines if e["event"] == "prediction_served"]
    assert [e["n"] for e in served] == list(range(500))
    assert all(e["run_id"] == "r1" and e["score"] is None for e in served)


def test_answered_events_are_in_the_file_when_the_call_returns(tmp_path, monkeypatch):
    """A prediction or a label is written (with what was queued before it) before
    `log.info` returns, so the server answers only once it would survive a kill -9."""
    from litemlops import logsetup

    # The writer thread would write its queue within a tenth of a second; here it
    # never wakes, so only an answered event's own write can put lines in the file.
    monkeypatch.setattr(logsetup._Writer, "BATCH_SECONDS", 3600)
    config = Config.load(tmp_path, env={}, overrides={"logging.console": False})
    configure_logging(config, background=True)
    log = structlog.get_logger("litemlops.server")

    log.info(events.PIPELINE_RUN_STARTED, trigger="schedule")
    assert config.events_log_path.read_text() == ""  # queued only
    log.info(events.PREDICTION_SERVED, request_id="r1", scores=[0.5])
    assert [e["event"] for e in read_events(config.events_log_path)] == [
        events.PIPELINE_RUN_STARTED,
        events.PREDICTION_SERVED,
    ]
    log.info(events.TASK_STARTED, attempt=1)
    log.info(events.FEEDBACK_RECEIVED, request_id="r1", label=1.0)
    written = read_events(config.events_log_path)
    assert [e["event"] for e in written][2:] == [events.TASK_STARTED, events.FEEDBACK_RECEIVED]
    assert written[-1]["request_id"] == "r1" and written[-1]["label"] == 1.0


def _emit_each(log, numpy):
    """Events of every kind a litemlops logger writes: levels, bound context a field
    overrides, contextvars, values orjson turns into JSON, an exception."""
    import datetime as dt

    log.info(events.PREDICTION_SERVED, request_id="r-1", scores=[0.25, 0.5], output=1001)
    log.warning("disk_low", free_bytes=numpy.int64(10), at=dt.datetime(2026, 1, 2, 3, 4, 5))
    log.error("bad", where="here", service="overridden", ratio=numpy.float64(0.5))
    log.critical("worse", path=Path("a/b.csv"), nothing=None, nan=math.nan)
    log.debug("below_the_level", x=1)
    with structlog.contextvars.bound_contextvars(run_id="r-9", service="from-context"):
        log.info("in_a_run", step=3)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed_with_a_traceback", task="fit")
    log.info("with_exc_info", exc_info=(ValueError, ValueError("x"), None))


def _without_times(lines: list[str]) -> list[str]:
    stamp = r'(?<="timestamp":")[^"]*|^\d{4}-\d\d-\d\dT[\d:.]+Z'  # in a line; on the console
    return [re.sub(stamp, "T", line) for line in lines]


def test_a_litemlops_logger_writes_each_line_and_console_text_as_structlog_would(config):
    import numpy

    from litemlops import logger as litemlops_logger
    from litemlops.logger import get_logger

    written = {}
    for way in ("direct", "structlog"):
        console = io.StringIO()
        configure_logging(config, console_stream=console)
        if way == "structlog":
            litemlops_logger.direct = None
        _emit_each(get_logger("litemlops.serving", service="inference"), numpy)
        shutdown_logging()
        lines = config.events_log_path.read_text(encoding="utf-8").splitlines()
        config.events_log_path.unlink()
        written[way] = (_without_times(lines), _without_times(console.getvalue().splitlines()))

    assert written["direct"] == written["structlog"]
    lines = [json.loads(line) for line in written["direct"][0]]
    assert [e["event"] for e in lines] == [
        "prediction_served", "disk_low", "bad", "worse", "in_a_run",
        "failed_with_a_traceback", "with_exc_info",
    ]  # fmt: skip
    assert lines[2]["service"] == "overridden" and lines[4]["run_id"] == "r-9"
    assert "ValueError: boom" in lines[5]["exception"]


def test_events_go_the_direct_way_only_while_structlog_runs_litemlops_processors(config):
    from litemlops import logger as litemlops_logger
    from litemlops.logger import get_logger

    configure_logging(config, console_stream=io.StringIO())
    direct = litemlops_logger.direct
    assert direct is not None
    assert direct.emit("litemlops.x", "info", "taken", {}, {"a": 1}) is True
    assert direct.emit("litemlops.x", "exception", "not_taken", {}, {}) is False
    assert direct.emit("litemlops.x", "info", "not_taken", {}, {"exc_info": True}) is False

    # An application configures structlog after us: events follow its configuration.
    seen = []

    def keep(logger, method, event):
        seen.append(dict(event))
        raise structlog.DropEvent

    processors = structlog.get_config()["processors"]
    structlog.configure(processors=[keep])
    try:
        assert direct.emit("litemlops.x", "info", "not_taken", {}, {}) is False
        get_logger("litemlops.x").info("the_applications", b=2)
    finally:
        structlog.configure(processors=processors)
    shutdown_logging()

    assert [e["event"] for e in seen] == ["the_applications"]
    assert [e["event"] for e in read_events(config.events_log_path)] == ["taken"]
    assert litemlops_logger.direct is None  # shut down: nothing of ours left to take


# Keys a row of `Logger.many` may carry: its own, and ones that override the bound context
# or a contextvar; and keys the processors set (a row with one is logged one by one).
_KEYS = st.sampled_from(["request_id", "scores", "x y", "ünï", "service", "run_id"])
_PROCESSED = st.sampled_from(["level", "timestamp", "logger", "exc_info"])
_VALUES = (
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=6)
    | st.floats(allow_nan=False) | st.lists(st.floats(-1, 1), max_size=3)
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=4), max_size=4),
    odd=st.none() | st.tuples(st.integers(0, 4), _PROCESSED, _VALUES),
    fields=st.dictionaries(_KEYS | st.just("level"), _VALUES, max_size=3),
    method=st.sampled_from(["debug", "info", "warning", "error", "critical"]),
)
def test_many_writes_what_one_event_a_row_would(tmp_path_factory, rows, odd, fields, method):
    from litemlops import logger as litemlops_logger
    from litemlops.logger import get_logger

    if odd is not None:  # a row with a key the processors set: no shortcut for any row
        at, key, value = odd
        rows.insert(at, {key: value})
    config = Config.load(tmp_path_factory.mktemp("home"), env={})
    written, taken = {}, []
    for way in ("many", "each"):
        console = io.StringIO()
        configure_logging(config, console_stream=console, console_level="warning")
        direct = litemlops_logger.direct
        direct.emit_many = lambda *a, real=direct.emit_many: taken.append(real(*a)) or taken[-1]
        log = get_logger("litemlops.serving", service="inference")
        with structlog.contextvars.bound_contextvars(run_id="r-9"):
            if way == "many":
                log.many(method, "shadowed", rows, **fields)
            else:
                for row in rows:
                    getattr(log, method)("shadowed", **{**fields, **row})
        shutdown_logging()
        lines = read_events(config.events_log_path)
        config.events_log_path.unlink()
        for line in lines:  # stamped when logged, whatever a row said
            assert re.fullmatch(r"20\d\d-[\d-]+T[\d:.]+Z", line.pop("timestamp"))
        written[way] = (lines, _without_times(console.getvalue().splitlines()))

    assert written["many"] == written["each"]
    assert taken == [odd is None]  # the shortcut, whenever it gives the same lines
    expected = len(rows) if logging.getLevelName(method.upper()) >= logging.INFO else 0
    assert len(written["many"][0]) == expected


def test_many_also_writes_each_row_to_a_second_homes_attached_log(tmp_path):
    from litemlops.logger import get_logger
    from litemlops.logsetup import attach_event_log

    run, library = (Config.load(tmp_path / name, env={}) for name in ("run", "library"))
    configure_logging(run, console_stream=io.StringIO())
    detach = attach_event_log(library)  # library use of a second home beside the first
    rows = [{"request_id": f"r-{i}", "agrees": i % 2 == 0} for i in range(3)]
    get_logger("litemlops.serving").many("info", events.PREDICTION_SHADOWED, rows, arm="b")
    detach()
    shutdown_logging()

    for config in (run, library):
        written = read_events(config.events_log_path)
        assert [{k: e[k] for k in ("request_id", "agrees", "arm")} for e in written] == [
            {**row, "arm": "b"} for row in rows
        ]
