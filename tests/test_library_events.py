"""Library use (a notebook, a host application) writes its events to the home's log,
and leaves the application's own logging configuration as it found it."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from litemlops import Pipeline, events, logger, task
from litemlops.cli import cli
from litemlops.config import Config
from litemlops.errors import HistoryError
from litemlops.logfile import JsonLinesFile
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.monitoring import history
from litemlops.monitoring.history import event_files
from litemlops.platform import Platform
from litemlops.testing import FixedClock


@pytest.fixture(autouse=True)
def _logging_restored(restore_logging):
    """Tests here configure structlog or stdlib logging as a host would."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config.load(tmp_path / "home", env={}, overrides={"demo.drivers": 3})


@task
def count(ctx):
    ctx.log.info("counted", n=ctx.params["n"])
    return ctx.params["n"] + 1


NIGHTLY = Pipeline("nightly", [count], params={"n": 1})


def logged(config: Config) -> list[dict[str, Any]]:
    lines = config.events_log_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def logs_cli(config: Config, *args: str) -> list[dict[str, Any]]:
    env = {k: None for k in os.environ if k.startswith("LITEMLOPS_")}
    result = CliRunner().invoke(
        cli, ["logs", "--json", *args, "--home", str(config.home)], env=env
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_a_pipeline_run_from_python_is_in_the_homes_log_and_litemlops_logs(config):
    with Platform(config, clock=FixedClock()) as platform:
        run = platform.pipelines.run(NIGHTLY, {"n": 2})

    assert run.state == "success"
    written = [e for e in logged(config) if e.get("run_id") == run.run_id]
    names = [e["event"] for e in written]
    assert events.PIPELINE_RUN_STARTED in names and events.PIPELINE_RUN_FINISHED in names
    counted = next(e for e in written if e["event"] == "counted")
    assert counted["n"] == 2 and counted["pipeline"] == "nightly" and counted["task"] == "count"
    assert counted["level"] == "info" and counted["timestamp"].endswith("Z")
    shown = logs_cli(config, "--run", run.run_id)
    assert {e["event"] for e in shown} >= {events.PIPELINE_RUN_STARTED, "counted"}


def test_a_host_that_configured_structlog_keeps_its_output_and_its_configuration(config):
    seen: list[dict[str, Any]] = []

    def collect(logger: Any, method: str, event: Any) -> Any:
        seen.append(dict(event))
        raise structlog.DropEvent

    structlog.configure(processors=[structlog.contextvars.merge_contextvars, collect])
    before = structlog.get_config()
    with Platform(config, clock=FixedClock()) as platform:
        run = platform.pipelines.run(NIGHTLY, {"n": 3})

    assert structlog.get_config() == before
    assert any(e["event"] == "counted" and e["n"] == 3 for e in seen)  # the host saw it
    assert any(e["event"] == "counted" and e["run_id"] == run.run_id for e in logged(config))


def test_a_host_with_stdlib_logging_keeps_its_handlers_and_records(config):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Keep(level=logging.INFO)
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        handlers = list(root.handlers)
        with Platform(config, clock=FixedClock()) as platform:
            platform.pipelines.run(NIGHTLY, {"n": 4})
        assert root.handlers == handlers and root.level == logging.INFO
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    assert any("counted" in r.getMessage() for r in records)
    assert any(e["event"] == "counted" and e["n"] == 4 for e in logged(config))


def test_an_event_log_already_configured_is_not_written_twice(config):
    configure_logging(config, console_stream=None)
    try:
        with Platform(config, clock=FixedClock()) as platform:
            assert logger.tap is None  # as under `run`: events pay nothing for library use
            run = platform.pipelines.run(NIGHTLY, {"n": 5})
    finally:
        shutdown_logging()

    counted = [e for e in logged(config) if e["event"] == "counted" and e["run_id"] == run.run_id]
    assert len(counted) == 1


def test_library_use_rotates_the_log_like_run_does(tmp_path):
    config = Config.load(
        tmp_path / "home", env={}, overrides={"logging.max_bytes": 2_000, "demo.drivers": 3}
    )

    with Platform(config, clock=FixedClock()) as platform:
        runs = [platform.pipelines.run(NIGHTLY, {"n": n}) for n in range(10)]

    files = event_files(config.logs_dir)
    assert len(files) > 2, "the log was never rotated"
    counted = [
        json.loads(line)
        for path in files
        for line in Path(path).read_text().splitlines()
        if '"counted"' in line
    ]
    assert sorted(e["n"] for e in counted) == list(range(10))
    assert {e["run_id"] for e in counted} == {r.run_id for r in runs}
    assert history.compact(config, settle_seconds=0).files >= 2
    shown = logs_cli(config, "--event", "counted", "--limit", "100")
    assert sorted(e["n"] for e in shown) == list(range(10))


def _append(path: str, tag: str, lines: int, start: Any) -> None:
    start.wait()
    file = JsonLinesFile(path, maxBytes=0, encoding="utf-8")
    try:
        for n in range(lines):
            file.write_line(json.dumps({"tag": tag, "n": n, "pad": tag * (3_000 + 97 * (n % 50))}))
            if n % 7 == 6:
                file.flush()
        file.flush()
    finally:
        file.close()


def test_two_processes_appending_to_one_log_never_tear_a_line(tmp_path):
    path = str(tmp_path / "events.jsonl")
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_append, args=(path, tag, 400, start)) for tag in ("a", "b")
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0

    lines = Path(path).read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # a torn line would not parse
    for tag in ("a", "b"):
        assert [e["n"] for e in parsed if e["tag"] == tag] == list(range(400))


@task(timeout=30)
def timed(ctx):
    ctx.log.info("timed", home=str(ctx.config.home))
    return 1


def test_with_two_homes_open_each_runs_events_go_to_its_own_log(tmp_path):
    first, second = (
        Config.load(tmp_path / name, env={}, overrides={"demo.drivers": 3})
        for name in ("first", "second")
    )
    pipeline = Pipeline("timed", [timed])  # a task with a timeout runs on a thread

    with (
        Platform(first, clock=FixedClock()) as one,
        Platform(second, clock=FixedClock()) as two,
    ):
        run_one = one.pipelines.run(pipeline)
        run_two = two.pipelines.run(pipeline)

    for config, run, other in ((first, run_one, run_two), (second, run_two, run_one)):
        written = logged(config)
        assert {e.get("run_id") for e in written} >= {run.run_id}
        assert other.run_id not in {e.get("run_id") for e in written}
        [event] = [e for e in written if e["event"] == "timed"]
        assert event["home"] == str(config.home) and event["task"] == "timed"


def test_events_of_tasks_run_in_worker_processes_reach_the_homes_log(tmp_path):
    overrides = {"demo.drivers": 3, "pipelines.modules": "pipelines/mine.py"}
    config = Config.load(tmp_path / "home", env={}, overrides=overrides)
    (config.home / "pipelines").mkdir(parents=True)
    (config.home / "pipelines" / "mine.py").write_text(
        "from litemlops import Pipeline, task\n\n"
        "@task\n"
        "def hello(ctx):\n"
        "    ctx.log.info('hello_from_worker', n=ctx.params['n'])\n"
        "    return 1\n\n"
        "mine = Pipeline('mine', [hello], params={'n': 7})\n"
    )

    with Platform(config, clock=FixedClock(), workers=True) as platform:
        run = platform.pipelines.run(platform.catalog.get("mine"))

    assert run.state == "success", run.error
    [event] = [e for e in logged(config) if e["event"] == "hello_from_worker"]
    assert event["n"] == 7 and event["run_id"] == run.run_id and event["task"] == "hello"


def test_an_event_log_that_cannot_be_written_is_refused_and_the_home_stays_free(config):
    config.events_log_path.mkdir(parents=True)  # a folder where the file should be

    with pytest.raises(HistoryError, match=r"event log .* cannot be written"):
        Platform(config, clock=FixedClock())

    config.events_log_path.rmdir()
    with Platform(config, clock=FixedClock()) as platform:  # the lock was released
        platform.pipelines.run(NIGHTLY, {"n": 1})
    assert any(e["event"] == "counted" for e in logged(config))
