import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from litemlops import events
from litemlops.clock import utc_now
from litemlops.errors import HomeLockedError, NotFoundError, ValidationError
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.pipeline import Pipeline, PipelineDefinitionError, task
from litemlops.scheduler.runner import PipelineRunner
from litemlops.scheduler.scheduler import (
    EventTrigger,
    Schedule,
    ScheduleConflictError,
    ScheduleNotFoundError,
    Scheduler,
    SchedulerStateError,
)
from litemlops.store.tracking.tracking_db import TrackingDB

REPO_ROOT = Path(__file__).resolve().parents[2]
MONDAY = datetime(2026, 1, 5, 10, 1, tzinfo=UTC)  # a Monday, one minute past a 10-minute mark
WAIT = 3  # seconds a real-time test may wait for something that takes milliseconds


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Catalog:
    """The scheduler's `lookup`: pipelines by name, NotFoundError for the rest."""

    def __init__(self):
        self.pipelines: dict[str, Pipeline] = {}
        self.calls: list[tuple[str, dict]] = []

    def add(self, pipeline: Pipeline) -> Pipeline:
        self.pipelines[pipeline.name] = pipeline
        return pipeline

    def recording(self, name: str, **options) -> Pipeline:
        """A one-task pipeline that records its params in `calls`."""

        @task
        def work(ctx):
            self.calls.append((name, dict(ctx.params)))
            return len(self.calls)

        return self.add(Pipeline(name, [work], **options))

    def __call__(self, name: str) -> Pipeline:
        try:
            return self.pipelines[name]
        except KeyError:
            raise NotFoundError(f"no pipeline named {name!r}") from None


@pytest.fixture
def clock():
    return FakeClock(MONDAY)


@pytest.fixture
def db(tmp_path):
    db = TrackingDB(tmp_path / "registry.db")
    yield db
    db.close()


@pytest.fixture
def catalog():
    return Catalog()


@pytest.fixture
def bus():
    return EventBus()


@pytest.fixture
def make_scheduler(tmp_path, db, catalog, bus, clock):
    """Schedulers over one home; every one is shut down after the test."""
    made: list[Scheduler] = []

    def make(*, real_time: bool = False, **options) -> Scheduler:
        now = utc_now if real_time else clock
        runner = PipelineRunner(db, tmp_path / "runs", clock=now)
        runner.poll_seconds = 0.01
        options.setdefault("lock_path", tmp_path / "scheduler.lock")
        scheduler = Scheduler(runner, catalog, bus=bus, clock=now, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.shutdown()


@pytest.fixture
def scheduler(make_scheduler):
    return make_scheduler()


def history(db, runner):
    rows = db.read("SELECT run_id FROM pipeline_runs ORDER BY queued_at, rowid")
    return [runner.get_run(r["run_id"]) for r in rows]


def named(captured, name):
    return [e for e in captured if e["event"] == name]


def complete(captured):
    """Every captured event carries its required keys."""
    return all(events.missing_keys(e["event"], e) == set() for e in captured)


def scheduler_threads():
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("litemlops-scheduler")
    ]


# -- schedules in synchronous mode, driven by the fake clock -----------------------------


def test_a_cron_schedule_fires_at_its_time_with_the_scheduled_time_in_the_payload(
    scheduler, catalog, clock, db
):
    catalog.recording("train", params={"n": 0})
    scheduler.add_schedule(Schedule("every-ten", "train", cron="*/10 * * * *", params={"n": 3}))
    assert scheduler.schedules()[0][1] == datetime(2026, 1, 5, 10, 10, tzinfo=UTC)

    clock.advance(minutes=4)  # 10:05
    assert scheduler.run_pending() == []
    clock.advance(minutes=5)  # 10:10
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        (run,) = scheduler.run_pending()

    assert (run.state, run.trigger, run.params) == ("success", "schedule", {"n": 3})
    assert run.payload == {"schedule": "every-ten", "scheduled_at": "2026-01-05T10:10:00+00:00"}
    (fired,) = named(captured, events.SCHEDULE_FIRED)
    assert (fired["schedule"], fired["coalesced"], fired["pipeline"]) == ("every-ten", 0, "train")
    assert complete(captured)
    assert scheduler.run_pending() == []  # a fire time runs once
    assert scheduler.schedules()[0][1] == datetime(2026, 1, 5, 10, 20, tzinfo=UTC)
    assert [r.run_id for r in history(db, scheduler.runner)] == [run.run_id]


def test_run_pending_takes_an_explicit_now(scheduler, catalog):
    catalog.recording("train")
    scheduler.add_schedule(Schedule("hourly", "train", cron="0 * * * *"))

    assert scheduler.run_pending(MONDAY + timedelta(minutes=30)) == []
    (run,) = scheduler.run_pending(MONDAY + timedelta(minutes=59))
    assert run.payload["scheduled_at"] == "2026-01-05T11:00:00+00:00"
    with pytest.raises(ValidationError, match="timezone-aware"):
        scheduler.run_pending(datetime(2026, 1, 5, 12))


def test_an_interval_schedule_counts_from_when_it_was_added_or_from_its_start(
    scheduler, catalog, clock
):
    catalog.recording("score")
    scheduler.add_schedule(Schedule("five-min", "score", interval=timedelta(minutes=5)))
    anchor = MONDAY - timedelta(seconds=30)
    scheduler.add_schedule(Schedule("anchored", "score", interval=60, start=anchor))
    assert dict((s.name, at) for s, at in scheduler.schedules()) == {
        "anchored": MONDAY + timedelta(seconds=30),
        "five-min": MONDAY + timedelta(minutes=5),
    }

    clock.advance(minutes=4, seconds=59)  # 10:05:59
    (run,) = scheduler.run_pending()
    assert run.payload == {"schedule": "anchored", "scheduled_at": "2026-01-05T10:05:30+00:00"}
    clock.advance(seconds=1)
    (run,) = scheduler.run_pending()
    assert run.payload == {"schedule": "five-min", "scheduled_at": "2026-01-05T10:06:00+00:00"}
    clock.advance(seconds=30)
    (run,) = scheduler.run_pending()
    assert run.payload["schedule"] == "anchored"
    assert {s.name: at.strftime("%H:%M:%S") for s, at in scheduler.schedules()} == {
        "anchored": "10:07:30",
        "five-min": "10:11:00",
    }


def test_coalesce_folds_missed_fire_times_into_one_run(scheduler, catalog, clock):
    catalog.recording("train")
    scheduler.add_schedule(Schedule("every-ten", "train", cron="*/10 * * * *"))

    clock.advance(minutes=30)  # 10:31: 10:10, 10:20 and 10:30 are due
    with capture_logs() as captured:
        (run,) = scheduler.run_pending()

    assert run.payload["scheduled_at"] == "2026-01-05T10:30:00+00:00"
    (fired,) = named(captured, events.SCHEDULE_FIRED)
    assert fired["coalesced"] == 2
    assert scheduler.schedules()[0][1] == datetime(2026, 1, 5, 10, 40, tzinfo=UTC)


def test_without_coalesce_every_missed_fire_time_runs_in_order(scheduler, catalog, clock):
    catalog.recording("train")
    scheduler.add_schedule(
        Schedule("every-ten", "train", cron="*/10 * * * *", coalesce=False, misfire_grace_time=3600)
    )

    clock.advance(minutes=30)
    runs = scheduler.run_pending()

    assert [r.payload["scheduled_at"][11:16] for r in runs] == ["10:10", "10:20", "10:30"]
    assert len(catalog.calls) == 3


def test_fire_times_later_than_the_misfire_grace_are_dropped_and_logged(scheduler, catalog, clock):
    catalog.recording("train")
    scheduler.add_schedule(
        Schedule("all", "train", cron="*/10 * * * *", coalesce=False, misfire_grace_time=600)
    )
    scheduler.add_schedule(Schedule("latest", "train", cron="*/10 * * * *", misfire_grace_time=30))

    clock.advance(minutes=30)  # 10:31
    with capture_logs() as captured:
        runs = scheduler.run_pending()

    # "all": 10:10 and 10:20 are 21 and 11 minutes late, beyond 10; 10:30 runs.
    # "latest": coalesced to 10:30, which is 60 s late, beyond its 30 s.
    assert [(r.payload["schedule"], r.payload["scheduled_at"][11:16]) for r in runs] == [
        ("all", "10:30")
    ]
    missed = [
        (e["schedule"], e["scheduled_at"][11:16], e["late_by"], e["grace"])
        for e in named(captured, events.SCHEDULE_MISFIRED)
    ]
    assert missed == [
        ("all", "10:10", 1260.0, 600),
        ("all", "10:20", 660.0, 600),
        ("latest", "10:30", 60.0, 30),
    ]
    assert complete(captured)
    assert dict((s.name, at.minute) for s, at in scheduler.schedules()) == {
        "all": 40,
        "latest": 40,
    }


def test_cron_day_of_week_means_what_it_means_in_crontab(scheduler, catalog, clock):
    catalog.recording("train")
    saturday = datetime(2026, 1, 3, 12, tzinfo=UTC)
    clock.now = saturday
    scheduler.add_schedule(Schedule("weekdays", "train", cron="0 3 * * 1-5"))
    scheduler.add_schedule(Schedule("sundays", "train", cron="0 3 * * 0"))
    scheduler.add_schedule(Schedule("sundays-too", "train", cron="0 3 * * 7"))

    next_fire = {s.name: at for s, at in scheduler.schedules()}
    assert next_fire["weekdays"] == datetime(2026, 1, 5, 3, tzinfo=UTC)  # Monday
    assert next_fire["sundays"] == next_fire["sundays-too"] == datetime(2026, 1, 4, 3, tzinfo=UTC)


def test_a_cron_line_is_read_in_its_timezone(scheduler, catalog, clock):
    catalog.recording("train")
    scheduler.add_schedule(Schedule("paris", "train", cron="0 3 * * *", timezone="Europe/Paris"))

    (_, at) = scheduler.schedules()[0]
    assert at == datetime(2026, 1, 6, 2, tzinfo=UTC)  # 03:00 in Paris in winter
    clock.now = at
    (run,) = scheduler.run_pending()
    assert run.payload["scheduled_at"] == "2026-01-06T02:00:00+00:00"


def test_remove_schedule_stops_it_and_unknown_names_are_refused(scheduler, catalog, clock):
    catalog.recording("train")
    scheduler.add_schedule(Schedule("every-ten", "train", cron="*/10 * * * *"))
    scheduler.remove_schedule("every-ten")

    clock.advance(hours=1)
    assert scheduler.run_pending() == []
    with pytest.raises(ScheduleNotFoundError, match="no schedule named 'every-ten'"):
        scheduler.remove_schedule("every-ten")


# -- definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"cron": "*/10 * * *"},
            "schedule 'nightly': cron '*/10 * * *' has 4 field(s); it needs 5",
        ),
        ({"cron": "61 * * * *"}, "schedule 'nightly': invalid cron '61 * * * *': Error validating"),
        ({"cron": "0 3 * * 8"}, "'8' is not a day of week (0-7 with 0 and 7 Sunday, or sun-sat)"),
        ({"cron": "0 3 1 * 1"}, "restricts both day of month and day of week"),
        ({"cron": "0 3 * * *", "interval": 60}, "needs exactly one of cron (e.g. '0 3 * * *')"),
        ({}, "schedule 'nightly' needs exactly one of cron"),
        ({"interval": -5}, "schedule 'nightly': interval must be seconds or a timedelta > 0"),
        ({"interval": timedelta(0)}, "interval must be"),
        ({"interval": True}, "interval must be"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"interval": 60, "misfire_grace_time": 0}, "misfire_grace_time must be seconds > 0"),
        ({"interval": 60, "start": datetime(2026, 1, 1)}, "start must be a timezone-aware"),
        ({"interval": 60, "params": [1]}, "params must be a mapping"),
        ({"interval": 60, "coalesce": "yes"}, "coalesce must be True or False"),
    ],
)
def test_bad_schedules_are_refused_naming_the_schedule_and_the_problem(options, message):
    with pytest.raises(PipelineDefinitionError, match=re.escape(message)) as info:
        Schedule("nightly", "train", **options)

    assert message in str(info.value)


def test_bad_names_and_event_triggers_are_refused():
    with pytest.raises(PipelineDefinitionError, match="invalid schedule name 'no spaces'"):
        Schedule("no spaces", "train", interval=60)
    with pytest.raises(PipelineDefinitionError, match="schedule 'ok': invalid pipeline name"):
        Schedule("ok", "", interval=60)
    with pytest.raises(PipelineDefinitionError, match="needs a topic"):
        EventTrigger("", "train")
    with pytest.raises(PipelineDefinitionError, match="cooldown must be seconds >= 0"):
        EventTrigger("alert:drift", "train", cooldown=-1)


def test_the_scheduler_refuses_unknown_pipelines_and_duplicate_names(scheduler, catalog):
    catalog.recording("train")
    with pytest.raises(NotFoundError, match="schedule 'nightly': no pipeline named 'ghost'"):
        scheduler.add_schedule(Schedule("nightly", "ghost", interval=60))
    with pytest.raises(NotFoundError, match="event trigger 'alert:drift': no pipeline named"):
        scheduler.add_event_trigger(EventTrigger("alert:drift", "ghost"))
    with pytest.raises(NotFoundError, match="no pipeline named 'ghost'"):
        scheduler.trigger("ghost")

    scheduler.add_schedule(Schedule("nightly", "train", interval=60))
    with pytest.raises(ScheduleConflictError, match="schedule named 'nightly' already exists"):
        scheduler.add_schedule(Schedule("nightly", "train", cron="0 3 * * *"))
    scheduler.add_event_trigger(EventTrigger("alert:drift", "train"))
    with pytest.raises(ScheduleConflictError, match="already runs on 'alert:drift'"):
        scheduler.add_event_trigger(EventTrigger("alert:drift", "train", cooldown=60))


def test_a_pipeline_declares_its_own_schedule_and_topics(scheduler, catalog, clock, bus):
    nightly = catalog.recording("nightly", schedule="0 3 * * *", on=("alert:drift", "data:new"))
    hourly = catalog.recording("hourly", schedule=3600)
    manual = catalog.recording("manual")
    assert hourly.schedule == timedelta(hours=1) and nightly.on == ("alert:drift", "data:new")

    for pipeline in (nightly, hourly, manual):
        scheduler.add_pipeline(pipeline)

    by_name = {s.name: (s, at) for s, at in scheduler.schedules()}
    assert set(by_name) == {"nightly", "hourly"}
    assert by_name["nightly"][0].cron == "0 3 * * *"
    assert by_name["nightly"][1] == datetime(2026, 1, 6, 3, tzinfo=UTC)
    assert by_name["hourly"][0].interval == timedelta(hours=1)
    assert [(t.topic, t.pipeline) for t in scheduler.event_triggers()] == [
        ("alert:drift", "nightly"),
        ("data:new", "nightly"),
    ]
    bus.publish("data:new", {"rows": 10})
    assert catalog.calls == [("nightly", {})]
    clock.now = datetime(2026, 1, 6, 3, 1, tzinfo=UTC)  # hourly fires at minute 1
    assert sorted(r.pipeline for r in scheduler.run_pending()) == ["hourly", "nightly"]


def test_add_pipeline_is_all_or_nothing(scheduler, catalog):
    pipeline = catalog.recording("nightly", schedule=60, on="alert:drift")
    scheduler.add_event_trigger(EventTrigger("alert:drift", "nightly"))

    with pytest.raises(
        ScheduleConflictError, match="pipeline 'nightly' already runs on 'alert:drift'"
    ):
        scheduler.add_pipeline(pipeline)
    assert scheduler.schedules() == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({"schedule": "0 25 * * *"}, "pipeline 'p': invalid cron '0 25 * * *'"),
        ({"schedule": "daily"}, "pipeline 'p': cron 'daily' has 1 field"),
        ({"schedule": -1}, "pipeline 'p': interval must be"),
        ({"on": ("alert:drift", "")}, "pipeline 'p': 'on' takes event topics"),
    ],
)
def test_a_pipelines_bad_schedule_is_refused_when_it_is_defined(options, message):
    with pytest.raises(PipelineDefinitionError, match=re.escape(message)) as info:
        Pipeline("p", [task(lambda ctx: 1, name="t")], **options)

    assert message in str(info.value)


# -- event triggers -----------------------------------------------------------------------


def test_an_event_on_the_bus_starts_a_run_with_the_event_as_payload(scheduler, catalog, bus, db):
    catalog.recording("retrain", params={"reason": "none"})
    scheduler.add_event_trigger(EventTrigger("alert:*", "retrain", params={"reason": "drift"}))

    with capture_logs() as captured:
        assert bus.publish("alert:drift", {"share": 0.6}) == 1
        assert bus.publish("pipeline:done") == 0

    (run,) = history(db, scheduler.runner)
    assert (run.state, run.trigger, run.params) == ("success", "event", {"reason": "drift"})
    assert run.payload == {"topic": "alert:drift", "share": 0.6}
    (fired,) = named(captured, events.TRIGGER_FIRED)
    assert (fired["topic"], fired["pattern"]) == ("alert:drift", "alert:*")
    assert complete(captured)


def test_cooldown_suppresses_events_that_come_too_soon_after_a_started_run(
    scheduler, catalog, bus, clock, db
):
    catalog.recording("retrain")
    scheduler.add_event_trigger(EventTrigger("alert:drift", "retrain", cooldown=600))

    bus.publish("alert:drift")
    clock.advance(minutes=5)
    with capture_logs() as captured:
        bus.publish("alert:drift")
    clock.advance(minutes=5)  # ten minutes after the run it started
    bus.publish("alert:drift")

    assert len(history(db, scheduler.runner)) == 2
    (suppressed,) = named(captured, events.TRIGGER_SUPPRESSED)
    assert (suppressed["since_last"], suppressed["cooldown"]) == (300.0, 600)
    assert complete(captured)


def test_a_run_that_cannot_start_is_logged_and_the_next_event_still_runs(scheduler, catalog, bus):
    catalog.recording("retrain", params={"n": 1})
    scheduler.add_event_trigger(EventTrigger("alert:drift", "retrain", params={"oops": 1}))
    scheduler.add_event_trigger(EventTrigger("alert:*", "retrain"))

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        assert bus.publish("alert:drift") == 2  # the failure is the scheduler's to log

    (failed,) = named(captured, events.PIPELINE_TRIGGER_FAILED)
    assert failed["trigger"] == "event" and failed["pipeline"] == "retrain"
    assert "has no params ['oops']" in failed["error"]
    assert catalog.calls == [("retrain", {"n": 1})]


# -- trigger() -----------------------------------------------------------------------------


def test_trigger_before_start_runs_at_once_and_returns_a_done_future(scheduler, catalog):
    catalog.recording("train", params={"n": 1})

    future = scheduler.trigger("train", {"n": 2}, payload={"by": "cli"})
    assert future.done()
    run = future.result()
    assert (run.trigger, run.params, run.payload) == ("manual", {"n": 2}, {"by": "cli"})

    with capture_logs() as captured:
        bad = scheduler.trigger("train", {"nope": 1})
    assert isinstance(bad.exception(), ValidationError)
    assert named(captured, events.PIPELINE_TRIGGER_FAILED)


# -- one scheduler per home ----------------------------------------------------------------

HOLDER = """
import sys
from pathlib import Path
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.runner import PipelineRunner
from litemlops.scheduler.scheduler import Scheduler
from litemlops.store.tracking.tracking_db import TrackingDB

home = Path(sys.argv[1])
runner = PipelineRunner(TrackingDB(home / "other.db"), home / "other-runs")
with Scheduler(runner, {}.__getitem__, bus=EventBus(), lock_path=home / "scheduler.lock"):
    print("started", file=sys.stderr, flush=True)
    sys.stdin.read()
"""


def test_a_second_scheduler_on_the_same_home_is_refused_in_the_same_process(
    make_scheduler, tmp_path
):
    first = make_scheduler(real_time=True).start()
    second = make_scheduler(real_time=True)

    with pytest.raises(HomeLockedError, match="a scheduler already runs for home") as info:
        second.start()

    assert str(info.value).startswith(
        f"a scheduler already runs for home {tmp_path} in process {os.getpid()}; "
    )
    assert second.state == "synchronous"
    first.shutdown()
    second.start()
    assert second.state == "running"


def test_a_scheduler_running_in_another_process_is_refused_until_it_stops(make_scheduler, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # structlog's default output
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stderr is not None
        assert holder.stderr.readline().strip() == "started"
        with pytest.raises(HomeLockedError, match=rf"already runs for .* in process {holder.pid};"):
            make_scheduler(real_time=True).start()
    finally:
        holder.communicate(timeout=30)

    assert holder.returncode == 0
    assert make_scheduler(real_time=True).start().state == "running"


# -- real time -----------------------------------------------------------------------------


def test_real_time_schedules_events_and_triggers_run_on_the_pool(make_scheduler, catalog, bus, db):
    fired = threading.Event()
    release = threading.Event()
    runs_seen: list[str] = []

    @task
    def tick(ctx):
        runs_seen.append(ctx.params["who"])
        if runs_seen.count("schedule") >= 2:
            fired.set()

    @task
    def slow(ctx):
        assert release.wait(WAIT)

    catalog.add(Pipeline("tick", [tick], params={"who": "?"}))
    catalog.add(Pipeline("slow", [slow]))
    scheduler = make_scheduler(real_time=True)
    scheduler.add_event_trigger(EventTrigger("alert:drift", "slow"))

    with capture_logs() as captured:
        scheduler.start()
        # Added live, after start; fires every 0.1 s.
        scheduler.add_schedule(Schedule("fast", "tick", interval=0.1, params={"who": "schedule"}))
        scheduler.add_event_trigger(EventTrigger("data:new", "tick", params={"who": "event"}))
        assert fired.wait(WAIT)
        # The publisher returns while the run it started waits on the pool.
        assert bus.publish("alert:drift", {"share": 0.9}) == 1
        bus.publish("data:new")
        future = scheduler.trigger("tick", {"who": "manual"})
        manual = future.result(timeout=WAIT)
        release.set()
        scheduler.shutdown()

    assert (manual.state, manual.trigger) == ("success", "manual")
    assert scheduler_threads() == []
    runs = history(db, scheduler.runner)
    assert {r.payload["schedule"] for r in runs if r.trigger == "schedule"} == {"fast"}
    slow = next(r for r in runs if r.pipeline == "slow")
    assert (slow.trigger, slow.payload, slow.state) == (
        "event",
        {"topic": "alert:drift", "share": 0.9},
        "success",
    )
    assert "event" in runs_seen  # the trigger added after start ran too
    started = named(captured, events.SCHEDULER_STARTED)
    assert started[0]["event_triggers"] == ["alert:drift -> slow"]
    assert named(captured, events.SCHEDULER_STOPPED) == [
        {"event": events.SCHEDULER_STOPPED, "wait": True, "log_level": "info"}
    ]
    assert complete(captured)


def test_overlapping_fires_are_left_to_the_runners_policy_and_recorded(make_scheduler, catalog, db):
    skipped = threading.Event()
    release = threading.Event()

    def see_skips(logger, method, event_dict):
        if event_dict["event"] == events.PIPELINE_RUN_SKIPPED:
            skipped.set()
        return event_dict

    @task
    def hold(ctx):
        assert release.wait(WAIT)

    catalog.add(Pipeline("busy", [hold], max_active_runs=1, on_busy="skip"))
    scheduler = make_scheduler(real_time=True)
    scheduler.add_schedule(Schedule("fast", "busy", interval=0.05))

    with capture_logs(processors=[see_skips]):
        scheduler.start()
        assert skipped.wait(WAIT)
        release.set()
        scheduler.shutdown()

    states = {r.state for r in history(db, scheduler.runner)}
    assert states == {"success", "skipped"}


def test_a_failing_pipeline_or_lookup_in_a_job_does_not_stop_later_fires(
    make_scheduler, catalog, db
):
    done = threading.Event()
    attempts: list[int] = []

    @task
    def flaky(ctx):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first run breaks")
        done.set()

    catalog.add(Pipeline("flaky", [flaky]))
    scheduler = make_scheduler(real_time=True)
    scheduler.add_schedule(Schedule("fast", "flaky", interval=0.05))
    real_lookup = scheduler.lookup
    broken = {"left": 1}

    def lookup(name):
        if broken["left"]:
            broken["left"] -= 1
            raise OSError("catalog unreadable")
        return real_lookup(name)

    scheduler.lookup = lookup
    with capture_logs() as captured:
        scheduler.start()
        assert done.wait(WAIT)
        scheduler.shutdown()

    (failed, *_) = named(captured, events.PIPELINE_TRIGGER_FAILED)
    assert failed["trigger"] == "schedule" and "catalog unreadable" in failed["error"]
    states = [r.state for r in history(db, scheduler.runner)]
    assert states[:2] == ["failed", "success"]


def test_shutdown_stops_every_thread_and_the_scheduler_cannot_be_reused(
    make_scheduler, catalog, bus
):
    catalog.recording("train")
    scheduler = make_scheduler(real_time=True)
    scheduler.add_event_trigger(EventTrigger("alert:drift", "train"))

    with scheduler:
        assert scheduler.state == "running"
        assert "litemlops-scheduler-timer" in scheduler_threads()
        with pytest.raises(SchedulerStateError, match="not started; this one is running"):
            scheduler.run_pending()
        with pytest.raises(SchedulerStateError, match="starts once"):
            scheduler.start()

    assert scheduler.state == "stopped" and scheduler_threads() == []
    assert bus.publish("alert:drift") == 0  # unsubscribed
    scheduler.shutdown()  # idempotent
    with pytest.raises(SchedulerStateError, match="shut down"):
        scheduler.add_schedule(Schedule("late", "train", interval=60))
    with pytest.raises(SchedulerStateError, match="shut down"):
        scheduler.trigger("train")


def test_real_time_reads_the_injected_clock_and_coalesces_what_fell_due_while_workers_were_busy(
    make_scheduler, catalog, clock, db
):
    release = threading.Event()

    @task
    def hold(ctx):
        assert release.wait(WAIT)

    catalog.add(Pipeline("slow", [hold]))
    catalog.recording("train")
    scheduler = make_scheduler(max_workers=1)  # real time, by the fake clock
    scheduler.add_schedule(Schedule("every-ten", "train", cron="*/10 * * * *"))

    with capture_logs() as captured:
        scheduler.start()
        busy = scheduler.trigger("slow")  # the one worker is taken
        clock.advance(minutes=30)  # 10:31: 10:10, 10:20 and 10:30 fall due
        scheduler.wakeup()
        clock.advance(minutes=10)  # 10:41: 10:40 too, while the wake-up still waits
        scheduler.wakeup()
        release.set()
        assert busy.result(timeout=WAIT).state == "success"
        scheduler.shutdown()

    (run,) = [r for r in history(db, scheduler.runner) if r.pipeline == "train"]
    assert run.payload["scheduled_at"] == "2026-01-05T10:40:00+00:00"
    (fired,) = named(captured, events.SCHEDULE_FIRED)
    assert fired["coalesced"] == 3
    assert scheduler.schedules()[0][1] == datetime(2026, 1, 5, 10, 50, tzinfo=UTC)
