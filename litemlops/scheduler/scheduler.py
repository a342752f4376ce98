"""The scheduler: pipelines run on cron lines, intervals and bus events, once per home.

One engine decides when a schedule fires: `triggers.Plan`, reading the injected clock,
with APScheduler 3's triggers doing the calendar arithmetic. Until `start()` it is
synchronous: `run_pending(now)` runs what is due in the caller's thread and event
triggers run inside `bus.publish`, so tests drive it without sleeping. From `start()`
it takes an exclusive lock on `lock_path` (one scheduler per home) and a timer thread
sleeps until the next fire time, then hands each due schedule's wake-up to the worker
pool, which runs the same routine as `run_pending`. Event triggers, `trigger()` and
`resume()` use that pool too: a publisher never waits for a pipeline run.

Missed fire times (APScheduler's rules): every fire time from a schedule's next one up
to now is due; with `coalesce` (the default) only the latest runs, without it each in
turn. A fire time more than `misfire_grace_time` seconds late when its turn comes does
not run and is logged as `schedule_misfired`. A schedule has at most one wake-up
waiting for a worker. Schedules live in memory, counted from when they are added, so
nothing that fell due while the process was down is replayed. Overlapping runs of one
pipeline are the runner's call (`max_active_runs`, `on_busy`). Why the timer is ours
and not APScheduler's: see `timer`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from litemlops import events
from litemlops.clock import utc_now
from litemlops.errors import LitemlopsError, NotFoundError, ValidationError
from litemlops.home_lock import HomeLock
from litemlops.logger import get_logger
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.pipeline import Pipeline, PipelineDefinitionError
from litemlops.scheduler.runner import PipelineRun, PipelineRunner
from litemlops.scheduler.timer import MAX_SLEEP, Timer
from litemlops.scheduler.triggers import (
    EventTrigger,
    Listener,
    Plan,
    Schedule,
    earliest_first,
    late_by,
)

__all__ = [
    "EventTrigger",
    "Schedule",
    "ScheduleConflictError",
    "ScheduleNotFoundError",
    "Scheduler",
    "SchedulerStateError",
]

log = get_logger("litemlops.scheduler")
_THREADS = "litemlops-scheduler"  # the name of every thread the scheduler starts

_ALREADY_RUNS = (
    "a scheduler already runs for home {home} in {holder}; "
    "only one scheduler may run per home: stop that one first"
)


class SchedulerStateError(LitemlopsError, RuntimeError):
    """The scheduler is not in a state that allows this (started twice, used after shutdown)."""


class ScheduleNotFoundError(NotFoundError):
    """No schedule of that name."""


class ScheduleConflictError(LitemlopsError, ValueError):
    """A schedule or event trigger is already registered under that name or topic."""


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
        # Callers, bus publishers, pool threads and the timer share the plans
        # and listeners; nothing runs a pipeline while holding it.
        self._mutex = threading.Lock()
        self._idle = threading.Condition()
        self._active = 0  # runs in progress, so a shutdown can wait for them
        self._plans: dict[str, Plan] = {}
        self._listeners: list[Listener] = []
        self._state = "synchronous"  # -> "running" (start) -> "stopped" (shutdown)
        self._pool: ThreadPoolExecutor | None = None
        self._timer = Timer(self._queue_due, name=f"{_THREADS}-timer")

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
        plan = Plan.starting(schedule, self.clock())
        with self._mutex:
            self._require_open()
            if schedule.name in self._plans:
                raise ScheduleConflictError(
                    f"a schedule named {schedule.name!r} already exists; remove it first "
                    "or pick another name"
                )
            self._plans[schedule.name] = plan
        self._timer.wakeup()

    def remove_schedule(self, name: str) -> None:
        with self._mutex:
            if self._plans.pop(name, None) is None:
                raise ScheduleNotFoundError(
                    f"no schedule named {name!r}; schedules: {sorted(self._plans)}"
                )

    def add_event_trigger(self, trigger: EventTrigger) -> None:
        """Subscribe on the bus: a matching event starts a run of `trigger.pipeline`."""
        self._subscribe(trigger)

    def _subscribe(self, trigger: EventTrigger) -> Listener:
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
            listener = Listener(trigger)
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
        added: list[Listener] = []
        when = pipeline.schedule
        try:
            if when is not None:
                kind = {"cron": when} if isinstance(when, str) else {"interval": when}
                self.add_schedule(Schedule(pipeline.name, pipeline.name, **kind))
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
            return [(p.schedule, p.next_fire) for _, p in sorted(self._plans.items())]

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
        """Run a pipeline now: on the worker pool once started, at once before. The future
        holds the finished run, or the error that kept it from running."""
        self._require_pipeline(pipeline_name, "trigger")
        return self._submit(self._fire, pipeline_name, params, trigger, payload)

    def resume(self, pipeline_name: str, run_id: str) -> Future[PipelineRun]:
        """A failed run again from its failed tasks (`PipelineRunner.resume`), as `trigger`
        runs a pipeline; its errors (not failed, unknown run) are the future's."""
        self._require_pipeline(pipeline_name, "resume")
        return self._submit(self._resume, pipeline_name, run_id)

    def _submit(self, fn: Callable[..., PipelineRun], *args: Any) -> Future[PipelineRun]:
        """`fn(*args)` on the worker pool once started; before, now, in this thread."""
        with self._mutex:
            self._require_open()
            pool = self._pool
        if pool is not None:
            return pool.submit(fn, *args)
        future: Future[PipelineRun] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def _resume(self, pipeline_name: str, run_id: str) -> PipelineRun:
        with self._busy():
            return self.runner.resume(self.lookup(pipeline_name), run_id)

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Count a run in progress for `wait_idle` while the block runs."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

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
            names = [p.schedule.name for p in earliest_first(self._plans.values(), at)]
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
            # The pool starts threads on demand; the timer's first tick waits for the mutex.
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix=_THREADS)
            self._state = "running"
            try:
                self._timer.start()
            except BaseException:
                self._state, self._pool = "synchronous", None
                self._home_lock.release()
                raise
            log.info(
                events.SCHEDULER_STARTED,
                schedules=sorted(self._plans),
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
            pool, self._pool = self._pool, None
        self._remove_listeners(listeners)
        try:
            self._timer.join()  # its next tick sees the state and ends
            if pool is not None:
                pool.shutdown(wait=wait)
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
        return f"Scheduler(state={self._state!r}, schedules={sorted(self._plans)})"

    # -- internals ----------------------------------------------------------------------

    def _run_due(self, name: str, now: datetime | None) -> list[PipelineRun]:
        """Fire what schedule `name` has due: the one routine of both modes.

        now: fixed in synchronous mode; None reads the clock, once for what is
        due and again as each fire time's turn comes, as APScheduler does.
        """
        with self._mutex:
            plan = self._plans.get(name)
            if plan is None:  # removed after its wake-up was submitted
                return []
            plan.waking = False
            due, coalesced = plan.take_due(now if now is not None else self.clock())
        self._timer.wakeup()  # to sleep until this plan's new next fire time
        runs = []
        for fire in due:
            current = now if now is not None else self.clock()
            run = self._fire_scheduled(plan.schedule, fire, coalesced, current)
            if run is not None:
                runs.append(run)
        return runs

    def _fire_scheduled(
        self, schedule: Schedule, fire: datetime, coalesced: int, now: datetime
    ) -> PipelineRun | None:
        at = fire.astimezone(UTC).isoformat()
        late = late_by(fire, now)
        with structlog.contextvars.bound_contextvars(pipeline=schedule.pipeline):
            if schedule.too_late(late):
                log.warning(
                    events.SCHEDULE_MISFIRED,
                    schedule=schedule.name,
                    scheduled_at=at,
                    late_by=round(late, 3),
                    grace=schedule.misfire_grace_time,
                )
                return None
            log.info(
                events.SCHEDULE_FIRED, schedule=schedule.name, scheduled_at=at, coalesced=coalesced
            )
        payload = {"schedule": schedule.name, "scheduled_at": at}
        return self._fire_logged(schedule.pipeline, schedule.params, "schedule", payload)

    def _on_event(self, listener: Listener, topic: str, payload: Mapping[str, Any]) -> None:
        trigger = listener.trigger
        now = self.clock()
        with self._mutex:
            if self._state == "stopped":  # published while shutting down
                return
            runs, since = listener.admit(now)
            pool = self._pool
        with structlog.contextvars.bound_contextvars(pipeline=trigger.pipeline):
            if not runs:
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
        with self._busy():
            try:
                pipeline = self.lookup(pipeline_name)
                return self.runner.run(pipeline, params, trigger=trigger, payload=payload)
            except Exception as exc:
                with structlog.contextvars.bound_contextvars(pipeline=pipeline_name):
                    _failed(trigger, exc)
                raise

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no pipeline run started by this scheduler is in progress.

        Whoever closes the stores after `shutdown(wait=False)` must wait for
        this: a run still writing to a closed database can crash the process.
        Returns False when runs were still going at the timeout.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _fire_logged(self, pipeline_name: str, params: Mapping[str, Any], trigger: str,
                     payload: Mapping[str, Any]) -> PipelineRun | None:  # fmt: skip
        """`_fire` for callers nobody waits on: the error is logged, the scheduler goes on."""
        try:
            return self._fire(pipeline_name, params, trigger, payload)
        except Exception:
            return None

    def wakeup(self) -> None:
        """Look at the clock again now (it jumped); the timer also does so once a minute."""
        self._timer.wakeup()

    def _queue_due(self) -> float | None:
        """Queue one wake-up per due schedule; seconds to sleep, or None once stopped."""
        with self._mutex:
            if self._state != "running" or self._pool is None:
                return None
            now = self.clock()
            sleep = MAX_SLEEP
            for plan in earliest_first(self._plans.values(), now):
                if plan.next_fire is None or plan.waking:
                    continue  # exhausted, or its wake-up waits for a worker
                ahead = (plan.next_fire - now).total_seconds()
                if ahead > 0:
                    sleep = min(sleep, ahead)
                    continue
                plan.waking = True
                self._pool.submit(self._wake, plan.schedule.name)
            return sleep

    def _wake(self, name: str) -> None:
        """A schedule's wake-up on the worker pool: run what is due by the clock now."""
        try:
            self._run_due(name, None)
        except Exception as exc:  # a broken wake-up must not stop later ones
            _failed("schedule", exc)

    def _remove_listeners(self, listeners: list[Listener]) -> None:
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


def _failed(trigger: str, exc: Exception) -> None:
    log.error(events.PIPELINE_TRIGGER_FAILED, trigger=trigger,
              error=f"{type(exc).__name__}: {exc}", exc_info=True)  # fmt: skip
