"""Pipelines: the runner's cost per task, and what an idle scheduler burns.

1. A 7-task no-op pipeline run by the runner, with its state persisted in
   SQLite and its events written to the JSONL log, against calling the same
   seven functions directly; the difference per task is the overhead.
2. The CPU an idle scheduler (demo-like schedules and an event trigger, none
   due) uses over a wall-clock window, as a share of one core.

Run: `.venv/bin/python benchmarks/pipelines.py --size M`.
"""

from __future__ import annotations

import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import apscheduler
from _harness import paired, report, setup

from litemlops.config import Config
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.catalog import PipelineCatalog
from litemlops.scheduler.pipeline import Pipeline, task
from litemlops.scheduler.runner import PipelineRunner
from litemlops.scheduler.scheduler import EventTrigger, Schedule, Scheduler
from litemlops.store.tracking.tracking_db import TrackingDB

TASKS = 7


@dataclass(frozen=True)
class Size:
    repeat: int  # timed pipeline runs (best one counts)
    idle_seconds: float  # the window the idle scheduler is watched over


SIZES = {
    "XS": Size(repeat=5, idle_seconds=0.5),  # the test suite's: checks the script
    "S": Size(repeat=15, idle_seconds=3.0),
    "M": Size(repeat=50, idle_seconds=60.0),
}


def noop(ctx: object) -> None:
    return None


def chain() -> tuple[list, Pipeline]:
    """Seven no-op tasks in a line, the shape of the course's training DAG."""
    fns = []
    tasks = []
    for i in range(TASKS):

        def fn(ctx: object, _i: int = i) -> int:
            return _i

        fns.append(fn)
        tasks.append(task(fn, name=f"t{i}", upstream=[f"t{i - 1}"] if i else []))
    return fns, Pipeline("noop", tasks)


def overhead(home: Path, size: Size) -> None:
    config = Config.load(home, env={}, overrides={"logging.console": False})
    config.ensure_home()
    # Events go to the JSONL file at info level, as in production.
    configure_logging(config)
    db = TrackingDB(config.registry_path)
    runner = PipelineRunner(db, config.runs_dir)
    fns, pipeline = chain()

    def direct() -> None:
        for fn in fns:
            fn(None)

    def ours() -> None:
        result = runner.run(pipeline)
        assert result.state == "success", result.error

    ours_t, ref_t = paired(ours, direct, repeat=size.repeat, warmup=2)
    per_task = (min(ours_t) - min(ref_t)) / TASKS
    lines = config.events_log_path.read_text().count("\n")
    assert lines >= TASKS * 2 * size.repeat, f"only {lines} events were written"
    report(
        "pipeline_overhead_per_task",
        per_task * 1e3,
        "ms",
        target=2.0,
        reference=min(ref_t) / TASKS * 1e3,
    )
    db.close()
    shutdown_logging()


def idle_cpu(home: Path, size: Size) -> None:
    config = Config.load(home, env={}, overrides={"logging.console": False})
    config.ensure_home()
    configure_logging(config)
    db = TrackingDB(config.registry_path)
    runner = PipelineRunner(db, config.runs_dir)
    _, pipeline = chain()
    catalog = PipelineCatalog([pipeline])
    scheduler = Scheduler(
        runner, catalog.get, bus=EventBus(), lock_path=config.scheduler_lock_path
    )
    # The demo's shape: materialize every 10 minutes, hourly batch, daily training.
    scheduler.add_schedule(Schedule("every-10m", "noop", interval=600))
    scheduler.add_schedule(Schedule("hourly", "noop", cron="0 * * * *"))
    scheduler.add_schedule(Schedule("daily", "noop", cron="0 3 * * *"))
    scheduler.add_event_trigger(EventTrigger("alert:drift", "noop", cooldown=600))
    with scheduler:  # starts it
        time.sleep(0.5)  # let the scheduler thread settle before watching it
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        time.sleep(size.idle_seconds)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report(f"idle_scheduler_cpu_{size.idle_seconds:g}s", cpu / wall * 100, "%", target=1.0)
    db.close()
    shutdown_logging()


def main() -> None:
    _, size = setup(
        __doc__.splitlines()[0],
        SIZES,
        lambda label, s: (
            f"# size {label}: {TASKS} tasks x {s.repeat} runs, idle window {s.idle_seconds:g} s"
            f" | python {platform.python_version()}, apscheduler {apscheduler.__version__}"
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        overhead(Path(tmp) / "overhead", size)
        idle_cpu(Path(tmp) / "idle", size)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
