"""The scheduler: pipelines run on cron lines, intervals and bus events, once per home.

Two modes share one path from a due fire time or an event to a pipeline run:

- Synchronous, until `start()`: `run_pending(now)` runs whatever is due at
  `now` in the caller's thread and event triggers run inside `bus.publish`, so
  tests and injected clocks drive it without sleeping.
- Real time, from `start()`: it takes an exclusive lock on `lock_path`, so one
  scheduler runs per home, then an APScheduler 3 `BackgroundScheduler` sleeps
  until a schedule's next fire time and wakes that schedule on the worker pool,
  where the same due-time routine as `run_pending` runs against the clock.
  Event triggers and `trigger()` use that pool too: a publisher never waits for
  a pipeline run.

Missed fire times (APScheduler's rules, applied by our code in both modes):
each schedule keeps its next fire time. When the schedule is processed, every
fire time from that one up to now is due. With `coalesce` (the default) only
the latest of them runs, so three missed fire times give one run; without it
each runs in turn. A due fire time more than `misfire_grace_time` seconds
behind the clock when its turn comes does not run and is logged as
`schedule_misfired`. Fire times fall behind while every worker is busy or the
process is suspended. Nothing is replayed after a restart: schedules live in
memory (APScheduler's memory job store) and a schedule's first fire time is
computed from the clock when it is added, so fire times that passed while the
process was down are gone. Overlapping runs of one pipeline are the runner's
call (its `max_active_runs` and `on_busy` queue or skip them, and record it), so
APScheduler is told never to refuse a wake-up itself; if it drops one anyway,
that is logged and the fire times stay due for the next wake-up.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from litemlops import events
from litemlops.clock import utc_now
from litemlops.errors import LitemlopsError, NotFoundError, ValidationError
from litemlops.home_lock import HomeLock
from litemlops.logger import get_logger
from litemlops.scheduler.bus import EventBus, Subscription
from litemlops.scheduler.pipeline import (
    Pipeline,
    PipelineDefinitionError,
    _check_name,
    cron_trigger,
    interval_of,
)
from litemlops.scheduler.runner import PipelineRun, PipelineRunner

log = get_logger("litemlops.scheduler")

_ALREADY_RUNS = (
    "a scheduler already runs for home {home} in {holder}; "
    "only one scheduler may run per home: stop that one first"
)
# APScheduler refuses a wake-up while this many of the same job still run; the
# runner's max_active_runs/on_busy must decide instead, and record the outcome.
_NEVER_REFUSE = 2**31 - 1


class SchedulerStateError(LitemlopsError, RuntimeError):
    """The scheduler is not in a state that allows this (started twice, used after shutdown)."""


class ScheduleNotFoundError(NotFoundError):
    """No schedule of that name."""


class ScheduleConflictError(LitemlopsError, ValueError):
    """A schedule or event trigger is already registered under that name or topic."""


@dataclass(frozen=True)
class Schedule:
    """When to run a pipeline: a 5-field cron line or an interval, and its params.

    misfire_grace_time: seconds a fire time may be late and still run (None: no
    limit). start: no fire time before it; an interval counts its fire times
    from it (default: one interval after the schedule is added). timezone: the
    IANA zone a cron line is read in.
    """

    name: str
    pipeline: str
    cron: str | None = None
    interval: float | timedelta | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    coalesce: bool = True
    misfire_grace_time: float | None = 300
    start: datetime | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _check_name(self.name, "schedule")
        owner = f"schedule {self.name!r}"
        _check_pipeline_name(self.pipeline, owner)
        if (self.cron is None) == (self.interval is None):
            raise PipelineDefinitionError(
                f"{owner} needs exactly one of cron (e.g. '0 3 * * *') or interval (seconds)"
            )
        zone = _zone(self.timezone, owner)
        if self.cron is not None:
            cron_trigger(self.cron, zone, owner=owner)
        else:
            object.__setattr__(self, "interval", interval_of(self.interval, owner=owner))
        object.__setattr__(self, "params", _params(self.params, owner))
        if not isinstance(self.coalesce, bool):
            raise PipelineDefinitionError(f"{owner}: coalesce must be True or False")
        grace = self.misfire_grace_time
        if grace is not None and not _is_seconds(grace):
            raise PipelineDefinitionError(
                f"{owner}: misfire_grace_time must be seconds > 0 or None, got {grace!r}"
            )
        if self.start is not None and (
            not isinstance(self.start, datetime) or self.start.tzinfo is None
        ):
            raise PipelineDefinitionError(
                f"{owner}: start must be a timezone-aware datetime, got {self.start!r}"
            )

    def trigger(self, now: datetime) -> Any:
        """The APScheduler trigger; `now` anchors an interval that has no `start`."""
        owner = f"schedule {self.name!r}"
        zone = _zone(self.timezone, owner)
        if self.cron is not None:
            return cron_trigger(self.cron, zone, owner=owner)
        assert isinstance(self.interval, timedelta)
        # APScheduler would anchor at its own wall clock: ours is injected.
        anchor = self.start if self.start is not None else now + self.interval
        return IntervalTrigger(
            seconds=self.interval.total_seconds(), start_date=anchor, timezone=zone
        )

    def first_fire(self, trigger: Any, now: datetime) -> datetime | None:
        """The first fire time at or after `now` (and `start`) of this schedule's trigger."""
        since = max(now, self.start) if self.start is not None else now
        result: datetime | None = trigger.get_next_fire_time(None, since)
        return result


@dataclass(frozen=True)
class EventTrigger:
    """Run a pipeline when a topic matching `topic` (fnmatch) is published on the bus.

    cooldown: seconds after a run it started during which further matching
    events are logged and dropped, so a flapping alert cannot retrain in a loop.
    """

    topic: str
    pipeline: str
    params: Mapping[str, Any] = field(default_factory=dict)
    cooldown: float = 0

    def __post_init__(self) -> None:
        owner = f"event trigger {self.topic!r}"
        if not isinstance(self.topic, str) or not self.topic.strip():
            raise PipelineDefinitionError(
                f"an event trigger needs a topic or pattern like 'alert:drift', got {self.topic!r}"
            )
        _check_pipeline_name(self.pipeline, owner)
        object.__setattr__(self, "params", _params(self.params, owner))
        if not _is_seconds(self.cooldown, zero=True):
            raise PipelineDefinitionError(
                f"{owner}: cooldown must be seconds >= 0, got {self.cooldown!r}"
            )


@dataclass
class _Planned:
    schedule: Schedule
    trigger: Any
    next_fire: datetime | None


@dataclass
class _Listener:
    trigger: EventTrigger
    subscription: Subscription | None = None
    last_started: datetime | None = None


class Scheduler:
    """Runs pipelines by schedule and by event; one per home once started.

    lookup: pipeline name to `Pipeline`, raising a NotFound error for unknown
    names; it is asked again at every fire, so a redefined pipeline is picked up.
    lock_path: the file whose lock makes this the home's one running scheduler
    (e.g. `Config.scheduler_lock_path`). max_workers: threads that run pipelines.
    """

    def __init__(
        self,
        runner: PipelineRunner,
        lookup: Callable[[str], Pipeline],
        *,
        bus: EventBus,
        lock_path: str | Path,
        clock: Callable[[], datetime] = utc_now,
        max_workers: int = 4,
    ):
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError(f"max_workers must be an int >= 1, got {max_workers!r}")
        self.runner = runner
        self.lookup = lookup
        self.bus = bus
        self.clock = clock
        self.max_workers = max_workers
        self._home_lock = HomeLock(lock_path, message=_ALREADY_RUNS)
        # Callers, bus publishers, pool threads and APScheduler's thread share
        # the schedules and listeners; nothing runs a pipeline while holding it.
        self._mutex = threading.Lock()
        self._idle = threading.Condition()
        self._active = 0  # runs in progress, so a shutdown can wait for them
        self._planned: dict[str, _Planned] = {}
        self._listeners: list[_Listener] = []
        self._state = "synchronous"  # -> "running" (start) -> "stopped" (shutdown)
        self._pool: ThreadPoolExecutor | None = None
        self._aps: Any = None

    @property
    def state(self) -> str:
        """One of: synchronous (not started yet), running, stopped (after shutdown)."""
        return self._state

    # -- registering --------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule) -> None:
        """Register a schedule; its first fire time counts from `clock()` now."""
        if not isinstance(schedule, Schedule):
            raise PipelineDefinitionError(f"expected a Schedule, got {type(schedule).__name__}")
        self._require_pipeline(schedule.pipeline, f"schedule {schedule.name!r}")
        now = self.clock()
        trigger = schedule.trigger(now)
        planned = _Planned(schedule, trigger, schedule.first_fire(trigger, now))
        with self._mutex:
            self._require_open()
            if schedule.name in self._planned:
                raise ScheduleConflictError(
                    f"a schedule named {schedule.name!r} already exists; remove it first "
                    "or pick another name"
                )
            self._planned[schedule.name] = planned
            if self._state == "running":
                self._add_job(planned)

    def remove_schedule(self, name: str) -> None:
        with self._mutex:
            planned = self._planned.pop(name, None)
            if planned is None:
                raise ScheduleNotFoundError(
                    f"no schedule named {name!r}; schedules: {sorted(self._planned)}"
                )
            if self._aps is not None and self._state == "running":
                # An exhausted trigger never got a job.
                with contextlib.suppress(JobLookupError):
                    self._aps.remove_job(name)

    def add_event_trigger(self, trigger: EventTrigger) -> None:
        """Subscribe on the bus: a matching event starts a run of `trigger.pipeline`."""
        self._subscribe(trigger)

    def _subscribe(self, trigger: EventTrigger) -> _Listener:
        if not isinstance(trigger, EventTrigger):
            raise PipelineDefinitionError(f"expected an EventTrigger, got {type(trigger).__name__}")
        self._require_pipeline(trigger.pipeline, f"event trigger {trigger.topic!r}")
        with self._mutex:
            self._require_open()
            for other in self._listeners:
                if (other.trigger.topic, other.trigger.pipeline) == (
                    trigger.topic,
                    trigger.pipeline,
                ):
                    raise ScheduleConflictError(
                        f"pipeline {trigger.pipeline!r} already runs on {trigger.topic!r}"
                    )
            listener = _Listener(trigger)
            listener.subscription = self.bus.subscribe(
                trigger.topic, partial(self._on_event, listener)
            )
            self._listeners.append(listener)
        return listener

    def add_pipeline(self, pipeline: Pipeline) -> None:
        """Register what the pipeline declares: its `schedule` (named after it) and `on` topics.

        All or nothing: when one part is refused, the parts added before it are removed.
        """
        if not isinstance(pipeline, Pipeline):
            raise PipelineDefinitionError(f"expected a Pipeline, got {type(pipeline).__name__}")
        added_schedule = False
        added: list[_Listener] = []
        try:
            if isinstance(pipeline.schedule, str):
                self.add_schedule(Schedule(pipeline.name, pipeline.name, cron=pipeline.schedule))
                added_schedule = True
            elif pipeline.schedule is not None:
                self.add_schedule(
                    Schedule(pipeline.name, pipeline.name, interval=pipeline.schedule)
                )
                added_schedule = True
            for topic in pipeline.on:
                added.append(self._subscribe(EventTrigger(topic, pipeline.name)))
        except BaseException:
            if added_schedule:
                self.remove_schedule(pipeline.name)
            self._remove_listeners(added)
            raise

    def schedules(self) -> list[tuple[Schedule, datetime | None]]:
        """Every schedule with its next fire time (None when its trigger has no more)."""
        with self._mutex:
            return [(p.schedule, p.next_fire) for _, p in sorted(self._planned.items())]

    def event_triggers(self) -> list[EventTrigger]:
        with self._mutex:
            return [listener.trigger for listener in self._listeners]

    # -- running ------------------------------------------------------------------------

    def trigger(
        self,
        pipeline_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        trigger: str = "manual",
        payload: Mapping[str, Any] | None = None,
    ) -> Future[PipelineRun]:
        """Run a pipeline now: on the worker pool once started, at once before.

        The future holds the finished run, or the error that kept it from running.
        """
        self._require_pipeline(pipeline_name, "trigger")
        with self._mutex:
            self._require_open()
            pool = self._pool
        if pool is not None:
            return pool.submit(self._fire, pipeline_name, params, trigger, payload)
        future: Future[PipelineRun] = Future()
        try:
            future.set_result(self._fire(pipeline_name, params, trigger, payload))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def run_pending(self, now: datetime | None = None) -> list[PipelineRun]:
        """Run, in this thread, every schedule due at `now` (default `clock()`); return the runs.

        Only before `start()`: once started, schedules fire in real time.
        """
        if now is not None and (not isinstance(now, datetime) or now.tzinfo is None):
            raise ValidationError(f"now must be a timezone-aware datetime, got {now!r}")
        with self._mutex:
            if self._state != "synchronous":
                raise SchedulerStateError(
                    f"run_pending is for a scheduler that is not started; this one is {self._state}"
                )
            at = now if now is not None else self.clock()
            # Earliest due first, as APScheduler hands due jobs to its executor.
            order = sorted(
                self._planned.values(),
                key=lambda p: (p.next_fire is None, p.next_fire or at, p.schedule.name),
            )
            names = [p.schedule.name for p in order]
        runs: list[PipelineRun] = []
        for name in names:
            runs.extend(self._run_due(name, at))
        return runs

    def start(self) -> Scheduler:
        """Take the home's scheduler lock and fire schedules in real time from now on.

        Raises HomeLockedError naming the process when another scheduler runs
        for the same home, in this process or another.
        """
        with self._mutex:
            if self._state != "synchronous":
                raise SchedulerStateError(
                    f"the scheduler is {self._state}; a scheduler starts once "
                    "(make a new one after shutdown)"
                )
            self._home_lock.acquire()
            pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="litemlops-scheduler")
            try:
                aps = BackgroundScheduler(timezone=UTC, executors={"default": _SharedPool(pool)})
                aps.add_listener(
                    self._on_apscheduler_event,
                    EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR,
                )
                self._aps = aps
                for planned in self._planned.values():
                    self._add_job(planned)
                aps.start()
            except BaseException:
                self._aps = None
                pool.shutdown(wait=False)
                self._home_lock.release()
                raise
            self._pool = pool
            self._state = "running"
            log.info(
                events.SCHEDULER_STARTED,
                schedules=sorted(self._planned),
                event_triggers=[
                    f"{li.trigger.topic} -> {li.trigger.pipeline}" for li in self._listeners
                ],
                max_workers=self.max_workers,
            )
        return self

    def shutdown(self, wait: bool = True) -> None:
        """Stop firing, unsubscribe from the bus and give the lock up; idempotent.

        wait: let runs in progress and already submitted finish first. Without
        it they finish in the background after the lock is given up, where only
        the runner's max_active_runs still guards against overlap.
        """
        with self._mutex:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
            listeners, self._listeners = self._listeners, []
            aps, self._aps, self._pool = self._aps, None, None
        self._remove_listeners(listeners)
        try:
            if aps is not None:
                aps.shutdown(wait=wait)  # it shuts our shared pool down too
        finally:
            self._home_lock.release()
        if was_running:
            log.info(events.SCHEDULER_STOPPED, wait=wait)

    def close(self) -> None:
        self.shutdown()

    def __enter__(self) -> Scheduler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"Scheduler(state={self._state!r}, schedules={sorted(self._planned)})"

    # -- internals ----------------------------------------------------------------------

    def _run_due(self, name: str, now: datetime | None) -> list[PipelineRun]:
        """Fire what schedule `name` has due: the one routine of both modes.

        now: fixed in synchronous mode; None reads the clock, once for what is
        due and again as each fire time's turn comes, as APScheduler does.
        """
        with self._mutex:
            planned = self._planned.get(name)
            if planned is None:  # removed after its wake-up was submitted
                return []
            due, coalesced = _take_due(planned, now if now is not None else self.clock())
        runs = []
        for fire in due:
            current = now if now is not None else self.clock()
            run = self._fire_scheduled(planned.schedule, fire, coalesced, current)
            if run is not None:
                runs.append(run)
        return runs

    def _fire_scheduled(
        self, schedule: Schedule, fire: datetime, coalesced: int, now: datetime
    ) -> PipelineRun | None:
        at = fire.astimezone(UTC).isoformat()
        late = (now - fire).total_seconds()
        grace = schedule.misfire_grace_time
        with structlog.contextvars.bound_contextvars(pipeline=schedule.pipeline):
            if grace is not None and late > grace:
                log.warning(
                    events.SCHEDULE_MISFIRED,
                    schedule=schedule.name,
                    scheduled_at=at,
                    late_by=round(late, 3),
                    grace=grace,
                )
                return None
            log.info(
                events.SCHEDULE_FIRED, schedule=schedule.name, scheduled_at=at, coalesced=coalesced
            )
        payload = {"schedule": schedule.name, "scheduled_at": at}
        return self._fire_logged(schedule.pipeline, schedule.params, "schedule", payload)

    def _on_event(self, listener: _Listener, topic: str, payload: Mapping[str, Any]) -> None:
        trigger = listener.trigger
        now = self.clock()
        with self._mutex:
            if self._state == "stopped":  # published while shutting down
                return
            last = listener.last_started
            since = None if last is None else (now - last).total_seconds()
            suppressed = since is not None and since < trigger.cooldown
            if not suppressed:
                listener.last_started = now
            pool = self._pool
        with structlog.contextvars.bound_contextvars(pipeline=trigger.pipeline):
            if suppressed:
                log.info(
                    events.TRIGGER_SUPPRESSED,
                    topic=topic,
                    pattern=trigger.topic,
                    cooldown=trigger.cooldown,
                    since_last=since,
                )
                return
            log.info(events.TRIGGER_FIRED, topic=topic, pattern=trigger.topic)
        run_payload = {"topic": topic, **payload}
        if pool is not None:
            pool.submit(self._fire_logged, trigger.pipeline, trigger.params, "event", run_payload)
        else:
            self._fire_logged(trigger.pipeline, trigger.params, "event", run_payload)

    def _fire(
        self,
        pipeline_name: str,
        params: Mapping[str, Any] | None,
        trigger: str,
        payload: Mapping[str, Any] | None,
    ) -> PipelineRun:
        """Look the pipeline up and run it: where every schedule, event and trigger() ends."""
        with self._idle:
            self._active += 1
        try:
            pipeline = self.lookup(pipeline_name)
            return self.runner.run(pipeline, params, trigger=trigger, payload=payload)
        except Exception as exc:
            with structlog.contextvars.bound_contextvars(pipeline=pipeline_name):
                log.error(
                    events.PIPELINE_TRIGGER_FAILED,
                    trigger=trigger,
                    error=f"{type(exc).__name__}: {exc}",
                    exc_info=True,
                )
            raise
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no pipeline run started by this scheduler is in progress.

        Whoever closes the stores after `shutdown(wait=False)` must wait for
        this: a run still writing to a closed database can crash the process.
        Returns False when runs were still going at the timeout.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _fire_logged(
        self,
        pipeline_name: str,
        params: Mapping[str, Any],
        trigger: str,
        payload: Mapping[str, Any],
    ) -> PipelineRun | None:
        """`_fire` for callers nobody waits on: the error is logged, the scheduler goes on."""
        try:
            return self._fire(pipeline_name, params, trigger, payload)
        except Exception:
            return None

    def _wake(self, name: str) -> None:
        """What APScheduler calls at a schedule's fire time, on the worker pool."""
        try:
            self._run_due(name, None)
        except Exception as exc:  # a broken wake-up must not stop later ones
            log.error(
                events.PIPELINE_TRIGGER_FAILED,
                trigger="schedule",
                error=f"{type(exc).__name__}: {exc}",
                exc_info=True,
            )

    def _add_job(self, planned: _Planned) -> None:
        if planned.next_fire is None:
            return
        # APScheduler's job only wakes the schedule up: coalescing and misfires
        # are decided by `_run_due` from our own next fire time, so it never
        # drops a wake-up as late and wakes up once however many are due.
        self._aps.add_job(
            self._wake,
            trigger=planned.trigger,
            args=[planned.schedule.name],
            id=planned.schedule.name,
            name=f"schedule {planned.schedule.name}",
            next_run_time=planned.next_fire,
            coalesce=True,
            misfire_grace_time=None,
            max_instances=_NEVER_REFUSE,
            replace_existing=True,
        )

    def _on_apscheduler_event(self, event: Any) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            times, reason = list(event.scheduled_run_times), "max_instances"
        elif event.code == EVENT_JOB_MISSED:
            times, reason = [event.scheduled_run_time], "missed"
        else:
            exc = event.exception
            times, reason = [event.scheduled_run_time], f"error: {type(exc).__name__}: {exc}"
        for fire in times:
            log.warning(
                events.SCHEDULE_WAKEUP_DROPPED,
                schedule=event.job_id,
                scheduled_at=fire.astimezone(UTC).isoformat(),
                reason=reason,
            )

    def _remove_listeners(self, listeners: list[_Listener]) -> None:
        for listener in listeners:
            if listener.subscription is not None:
                self.bus.unsubscribe(listener.subscription)
        with self._mutex:
            self._listeners = [li for li in self._listeners if li not in listeners]

    def _require_pipeline(self, name: str, owner: str) -> None:
        try:
            self.lookup(name)
        except LookupError as exc:  # NotFoundError is a KeyError
            detail = exc.args[0] if exc.args else f"no pipeline named {name!r}"
            raise NotFoundError(f"{owner}: {detail}") from None

    def _require_open(self) -> None:
        if self._state == "stopped":
            raise SchedulerStateError("the scheduler was shut down; make a new one")


def _take_due(planned: _Planned, now: datetime) -> tuple[list[datetime], int]:
    """Take the fire times due at `now` and advance past them, as APScheduler's Job does.

    Returns the fire times to run and how many earlier ones coalescing folded
    into the one left.
    """
    due: list[datetime] = []
    fire = planned.next_fire
    while fire is not None and fire <= now:
        due.append(fire)
        fire = planned.trigger.get_next_fire_time(fire, now)
    if not due:
        return [], 0
    planned.next_fire = fire
    if planned.schedule.coalesce:
        return due[-1:], len(due) - 1
    return due, 0


class _SharedPool(BasePoolExecutor):
    """APScheduler's executor over our own pool, so events and trigger() share its workers."""

    def __init__(self, pool: ThreadPoolExecutor):
        super().__init__(pool)


def _check_pipeline_name(name: object, owner: str) -> None:
    try:
        _check_name(name, "pipeline")
    except PipelineDefinitionError as exc:
        raise PipelineDefinitionError(f"{owner}: {exc}") from None


def _zone(name: object, owner: str) -> Any:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)  # type: ignore[arg-type]
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise PipelineDefinitionError(
            f"{owner}: unknown timezone {name!r}; use an IANA name like 'UTC' or 'Europe/Paris'"
        ) from None


def _params(params: object, owner: str) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise PipelineDefinitionError(f"{owner}: params must be a mapping, got {params!r}")
    return dict(params)


def _is_seconds(value: object, *, zero: bool = False) -> bool:
    """A finite number of seconds > 0 (>= 0 with `zero`); True and False are not seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value >= 0 if zero else value > 0
