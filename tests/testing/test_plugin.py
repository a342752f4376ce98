"""The pytest fixtures, used as a user would: they are active through the entry point."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import structlog

from litemlops import events
from litemlops.config import Config
from litemlops.errors import NotFoundError, ValidationError
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.platform import Platform
from litemlops.scheduler.pipeline import Pipeline, task
from litemlops.store import Entity, FeatureView, Field
from litemlops.testing import FixedClock

# Each pytest run of a user's project gets a process of its own: an in-process run
# leaves the plugins' global state (hypothesis' settings among them) to the tests that
# come after it in this process, where schemathesis then runs no case.
pytest_plugins = ["pytester"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
shop = Entity("shop", join_keys=["shop_id"], value_type="string")
sales = FeatureView("sales", entities=[shop], schema=[Field("total", "float64")])


@task
def extract(ctx):
    ctx.features.apply([shop, sales])
    rows = [{"shop_id": s, "event_timestamp": T0, "total": 10.0 * n}
            for n, s in enumerate(ctx.params["shops"], 1)]
    ctx.features.ingest("sales", rows)
    return {"rows": len(rows)}


@task(upstream="extract")
def transform(ctx):
    (ctx.work_dir / "note.txt").write_text("doubled")
    return {"rows": ctx.upstream["extract"]["rows"] * 2}


@task(upstream=["transform"])
def load(ctx):
    return {"loaded": ctx.upstream["transform"]["rows"], "at": ctx.config.demo.drivers}


three_tasks = Pipeline("shop_sales", [extract, transform, load], params={"shops": ["a"]})


def test_a_pipeline_run_gives_states_outputs_and_task_folders(litemlops_run, litemlops_clock):
    result = litemlops_run(three_tasks, {"shops": ["a", "b"]})
    assert result.state == "success" and result.run.params == {"shops": ["a", "b"]}
    assert [(t.task, t.state) for t in result.task_runs] == [
        ("extract", "success"), ("transform", "success"), ("load", "success")
    ]
    assert result.outputs == {"extract": {"rows": 2}, "transform": {"rows": 4},
                              "load": {"loaded": 4, "at": 3}}
    assert result.task("load").attempt == 1
    assert (result.work_dir("transform") / "note.txt").read_text() == "doubled"
    assert json.loads((result.work_dir("load") / "output.json").read_text())["loaded"] == 4
    assert result.run.started_at == result.run.ended_at == litemlops_clock()


def test_events_carry_the_run_pipeline_and_task_they_belong_to(litemlops_run):
    result = litemlops_run(three_tasks, trigger="event", payload={"why": "test"})
    run_id = result.run.run_id
    (started,) = result.events_named(events.PIPELINE_RUN_STARTED)
    assert started["trigger"] == "event" and started["level"] == "info"
    assert (started["run_id"], started["pipeline"]) == (run_id, "shop_sales")
    assert "task" not in started
    done = result.events_named(events.TASK_SUCCEEDED)
    assert [(e["run_id"], e["pipeline"], e["task"]) for e in done] == [
        (run_id, "shop_sales", name) for name in ("extract", "transform", "load")
    ]
    # What a task's own code emits through the stores is bound to that task too.
    (ingested,) = result.events_named(events.FEATURES_INGESTED)
    assert (ingested["run_id"], ingested["task"], ingested["rows"]) == (run_id, "extract", 1)
    assert not events.missing_keys(events.TASK_SUCCEEDED, done[0])


def test_retries_wait_on_the_clock_and_a_failure_skips_downstream(litemlops_run, litemlops_clock):
    @task(retries=2, retry_delay=5, retry_backoff=2)
    def flaky(ctx):
        if ctx.attempt < 3:
            raise ConnectionError("source unreachable")
        return "ok"

    @task(upstream="flaky")
    def broken(ctx):
        raise ValueError("bad rows")

    @task(upstream="broken")
    def report(ctx):
        raise AssertionError("must not run")

    result = litemlops_run(Pipeline("fragile", [flaky, broken, report]))
    assert litemlops_clock() == T0 + timedelta(seconds=5 + 10)
    assert result.state == "failed"
    assert [t.state for t in result.task_runs if t.task == "flaky"] == [
        "up_for_retry", "up_for_retry", "success"
    ]
    assert result.outputs == {"flaky": "ok"}
    assert result.task("report").state == "skipped"
    assert "ValueError: bad rows" in (result.task("broken").error or "")
    failed = result.events_named(events.TASK_FAILED)
    assert [(e["task"], e["will_retry"]) for e in failed] == [
        ("flaky", True), ("flaky", True), ("broken", False)
    ]
    assert [e["delay"] for e in result.events_named(events.TASK_RETRYING)] == [5.0, 10.0]


def test_asking_for_a_task_the_pipeline_lacks_names_its_tasks(litemlops_run):
    result = litemlops_run(three_tasks)
    with pytest.raises(KeyError, match=r"no task 'loda'.*'extract', 'transform', 'load'"):
        result.task("loda")
    with pytest.raises(NotFoundError, match="no task 'x'"):
        result.work_dir("x")


def test_capturing_events_leaves_the_logging_set_up_as_it_was(litemlops_run, litemlops_config):
    was_configured = structlog.is_configured()
    before = structlog.get_config()
    litemlops_run(three_tasks)
    assert structlog.is_configured() == was_configured
    assert structlog.get_config() == before

    # With the application's event log configured, events still land in its file.
    configure_logging(litemlops_config, console_stream=io.StringIO())
    try:
        configured = structlog.get_config()
        result = litemlops_run(three_tasks)
        assert structlog.get_config() == configured
    finally:
        shutdown_logging()
    lines = litemlops_config.events_log_path.read_text().splitlines()
    written = [json.loads(line) for line in lines]
    assert any(
        e["event"] == events.TASK_SUCCEEDED and e.get("run_id") == result.run.run_id
        for e in written
    )


def test_the_clock_stands_still_until_moved(litemlops_clock):
    assert litemlops_clock() == litemlops_clock.now == T0
    assert litemlops_clock().tzinfo is UTC
    assert litemlops_clock.advance(90) == T0 + timedelta(seconds=90)
    assert litemlops_clock.advance(timedelta(hours=-1)) == T0 - timedelta(minutes=58, seconds=30)
    later = datetime(2027, 5, 1, 8, tzinfo=UTC)
    assert litemlops_clock.set(later) == later == litemlops_clock()


@pytest.mark.parametrize(
    "when, message",
    [
        (datetime(2026, 1, 1), "naive"),
        (datetime(2026, 1, 1, 7, tzinfo=timezone(timedelta(hours=7))), "must be in UTC"),
        ("2026-01-01", "must be a datetime"),
    ],
)
def test_the_clock_refuses_times_that_are_not_aware_utc(when, message):
    with pytest.raises(ValidationError, match=message):
        FixedClock(when)
    with pytest.raises(ValidationError, match=message):
        FixedClock().set(when)


@pytest.mark.parametrize("by", [True, "5", float("nan"), float("inf")])
def test_the_clock_refuses_to_advance_by_what_is_not_a_duration(by):
    clock = FixedClock()
    with pytest.raises(ValidationError, match="advance"):
        clock.advance(by)
    assert clock() == T0


def test_a_zero_offset_zone_counts_as_utc():
    clock = FixedClock(datetime(2026, 6, 1, tzinfo=timezone(timedelta(0), "Z")))
    assert clock().tzinfo is UTC


@pytest.mark.parametrize("litemlops_clock", [datetime(2030, 2, 3, tzinfo=UTC)], indirect=True)
def test_the_clock_can_start_elsewhere(litemlops_clock, litemlops_platform):
    assert litemlops_platform.clock() == datetime(2030, 2, 3, tzinfo=UTC)


def test_the_config_is_a_fresh_small_home_the_environment_cannot_change(
    tmp_path, monkeypatch, request
):
    monkeypatch.setenv("LITEMLOPS_DEMO_DRIVERS", "500")
    monkeypatch.setenv("LITEMLOPS_HOME", str(tmp_path / "elsewhere"))
    config = request.getfixturevalue("litemlops_config")
    assert config.home == tmp_path / "litemlops-home"
    assert not config.home.exists()
    assert (config.demo.drivers, config.demo.hours, config.demo.labels) == (3, 12, 20)


@pytest.mark.parametrize("litemlops_config", [{"demo.drivers": 7}], indirect=True)
def test_a_test_can_parametrize_the_config(litemlops_config):
    assert litemlops_config.demo.drivers == 7 and litemlops_config.demo.hours == 12


class TestOverridingTheOverrides:
    @pytest.fixture
    def litemlops_config_overrides(self):
        return {"demo.seed": 7, "features.push_lateness_seconds": 1}

    def test_the_config_follows_them(self, litemlops_config):
        assert litemlops_config.demo.seed == 7
        assert litemlops_config.features.push_lateness_seconds == 1.0

    @pytest.mark.parametrize("litemlops_config", [{"demo.seed": 8}], indirect=True)
    def test_a_parameter_wins_over_them(self, litemlops_config):
        assert litemlops_config.demo.seed == 8
        assert litemlops_config.features.push_lateness_seconds == 1.0


def test_the_platform_is_open_on_the_fixture_home(litemlops_platform, litemlops_config):
    assert litemlops_platform.config is litemlops_config
    assert litemlops_config.lock_path.exists()
    assert litemlops_platform.features.list_feature_views() == []


def test_from_a_users_project_overrides_apply_and_the_platform_closes_even_on_failure(pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def litemlops_config_overrides():
            return {"demo.drivers": 9}
        """
    )
    pytester.makepyfile(
        test_user="""
        from pathlib import Path
        from litemlops.scheduler.pipeline import Pipeline, task

        @task
        def count(ctx):
            return ctx.config.demo.drivers

        def test_runs(litemlops_run, litemlops_config):
            Path("home1").write_text(str(litemlops_config.home))
            assert litemlops_run(Pipeline("count", [count])).outputs == {"count": 9}

        def test_fails_with_the_platform_open(litemlops_platform):
            Path("home2").write_text(str(litemlops_platform.config.home))
            assert False, "on purpose"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    for name in ("home1", "home2"):
        home = Path((pytester.path / name).read_text())
        # Taking the home's lock again works only if the test's platform let go of it.
        with Platform(Config.load(home, env={})):
            pass


def test_pytest_lists_the_fixtures_with_their_docs(pytester):
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    for line in [
        "litemlops_clock -- *",
        "*A `FixedClock` at 2026-01-01T00:00:00Z*",
        "litemlops_config -- *",
        "litemlops_config_overrides -- *",
        "litemlops_platform -- *",
        "litemlops_run -- *",
    ]:
        result.stdout.fnmatch_lines([line])


def test_loading_the_plugin_imports_nothing_heavy():
    heavy = ["duckdb", "pandas", "pyarrow", "numpy", "hypothesis", "structlog", "sqlite_utils"]
    code = (
        "import sys, litemlops.testing.plugin, litemlops.testing\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_the_plugin_imports_no_module_coverage_measures():
    # pytest loads the plugin before pytest-cov starts measuring: a module it imported
    # would show its definitions as never run (the core modules' branch coverage in CI).
    code = (
        "import sys, litemlops.testing.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith('litemlops')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == repr(
        ["litemlops", "litemlops.errors", "litemlops.lazy", "litemlops.testing",
         "litemlops.testing.clock", "litemlops.testing.plugin"]
    )  # fmt: skip
