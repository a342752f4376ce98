"""A home keeps each pipeline's newest run folders and a bounded history, never more."""

from datetime import UTC, datetime, timedelta

import pytest

from litemlops.errors import NotFoundError, ValidationError
from litemlops.scheduler.pipeline import Pipeline, task
from litemlops.scheduler.runner import PipelineRunner, RunStateConflict
from litemlops.store.tracking.tracking_db import TrackingDB
from litemlops.testing import FixedClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@task
def write(ctx):
    (ctx.work_dir / "window.parquet").write_bytes(b"x" * 100)
    return {"path": str(ctx.work_dir / "window.parquet")}


@task(upstream="write")
def read(ctx):
    if ctx.params["fail"]:
        raise RuntimeError("boom")
    return {"size": len(open(ctx.upstream["write"]["path"], "rb").read())}


def pipeline(name):
    return Pipeline(name, [write, read], params={"fail": False})


@pytest.fixture
def make(tmp_path):
    dbs = []

    def build(**retention):
        db = TrackingDB(tmp_path / "registry.db")
        dbs.append(db)
        clock = FixedClock(T0)
        runner = PipelineRunner(db, tmp_path / "runs", clock=clock, sleep=lambda s: None,
                                **retention)
        return runner, clock

    yield build
    for db in dbs:
        db.close()


def folders(runner):
    return {p.name for p in runner.runs_dir.iterdir()}


def test_only_the_newest_run_folders_of_each_pipeline_are_kept(make):
    runner, clock = make(keep_folders=2)
    monitoring, training = pipeline("monitoring"), pipeline("training")
    first_training = runner.run(training)
    runs = []
    for _ in range(5):
        clock.advance(60)
        runs.append(runner.run(monitoring))

    assert folders(runner) == {first_training.run_id, *(r.run_id for r in runs[-2:])}
    # The history keeps them all, and the newest runs' files are whole.
    assert len(runner.list_runs(pipeline="monitoring")) == 5
    assert (runner.runs_dir / runs[-1].run_id / "write" / "window.parquet").stat().st_size == 100


def test_a_run_whose_folder_was_removed_cannot_be_resumed_or_stepped(make):
    runner, clock = make(keep_folders=1)
    monitoring = pipeline("monitoring")
    failed = runner.run(monitoring, {"fail": True})
    clock.advance(60)
    runner.run(monitoring)
    clock.advance(60)
    kept = runner.run(monitoring, {"fail": True})  # newest: its folder stays

    assert failed.run_id not in folders(runner)
    for action in (lambda: runner.resume(monitoring, failed.run_id),
                   lambda: runner.run_step(monitoring, "read", failed.run_id)):
        with pytest.raises(RunStateConflict, match="working folder was removed"):
            action()
    assert kept.run_id in folders(runner)


def test_history_older_than_keep_history_is_removed_with_its_tasks_and_folders(make):
    runner, clock = make(keep_history=timedelta(days=1))
    monitoring = pipeline("monitoring")
    old = runner.run(monitoring)
    clock.advance(timedelta(days=2))

    new = runner.run(monitoring)

    assert [r.run_id for r in runner.list_runs()] == [new.run_id]
    with pytest.raises(NotFoundError, match=f"no pipeline run with id '{old.run_id}'"):
        runner.task_runs(old.run_id)
    assert runner.db.read("SELECT count(*) AS n FROM task_runs WHERE run_id = ?",
                          [old.run_id])[0]["n"] == 0
    assert folders(runner) == {new.run_id}


def test_history_is_pruned_at_most_hourly(make):
    runner, clock = make(keep_history=timedelta(minutes=1))
    monitoring = pipeline("monitoring")
    runner.run(monitoring)  # prunes (nothing yet) and starts the hour
    clock.advance(120)
    second = runner.run(monitoring)
    clock.advance(120)
    third = runner.run(monitoring)  # within the hour: the first two stay

    assert len(runner.list_runs()) == 3
    clock.advance(timedelta(hours=1))
    fourth = runner.run(monitoring)
    assert [r.run_id for r in runner.list_runs()] == [fourth.run_id]
    assert {second.run_id, third.run_id}.isdisjoint(folders(runner))


def test_by_default_everything_is_kept(make):
    runner, clock = make()
    monitoring = pipeline("monitoring")
    for _ in range(3):
        clock.advance(timedelta(days=400))
        runner.run(monitoring)

    assert len(folders(runner)) == 3 and len(runner.list_runs()) == 3


@pytest.mark.parametrize(
    ("retention", "message"),
    [({"keep_folders": -1}, "keep_folders must be >= 0"),
     ({"keep_history": timedelta(0)}, "keep_history must be positive")],
)
def test_a_runner_refuses_bad_retention(make, retention, message):
    with pytest.raises(ValidationError, match=message):
        make(**retention)


@pytest.mark.parametrize(
    ("key", "value"), [("keep_run_folders", -1), ("keep_history_days", -2)]
)
def test_bad_retention_config_is_refused(tmp_path, key, value):
    from litemlops.config import Config
    from litemlops.errors import ConfigError

    with pytest.raises((ConfigError, ValidationError), match=f"pipelines.{key}"):
        Config.load(tmp_path, env={}, overrides={f"pipelines.{key}": value})
