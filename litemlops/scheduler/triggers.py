"""When pipelines run: `Schedule` and `EventTrigger`, and the planning that applies them.

APScheduler 3's triggers do the calendar arithmetic (crontab fields, timezones,
daylight saving); `Plan` keeps a schedule's next fire time and decides, for a
given `now`, which fire times are due, how coalescing folds them and whether
one is too late to run. The scheduler's timer and `run_pending` both use it,
reading the injected clock, so a test drives the same rules the running
scheduler follows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.interval import IntervalTrigger

from litemlops.scheduler.bus import Subscription
from litemlops.scheduler.pipeline import (
    PipelineDefinitionError,
    _check_name,
    cron_trigger,
    interval_of,
)


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

    def too_late(self, late: float) -> bool:
        """Whether a fire time `late` seconds behind the clock is a misfire, not a run."""
        grace = self.misfire_grace_time
        return grace is not None and late > grace


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
class Listener:
    """An event trigger subscribed on the bus, and when it last started a run."""

    trigger: EventTrigger
    subscription: Subscription | None = None
    last_started: datetime | None = None

    def admit(self, now: datetime) -> tuple[bool, float | None]:
        """Whether an event at `now` starts a run (noted if so); seconds since the last one."""
        since = None if self.last_started is None else late_by(self.last_started, now)
        if since is not None and since < self.trigger.cooldown:
            return False, since
        self.last_started = now
        return True, since


@dataclass
class Plan:
    """A schedule's place in time: its trigger and next fire time (None: it has no more).

    waking: a wake-up for it waits on the worker pool, so the timer queues no other.
    """

    schedule: Schedule
    trigger: Any
    next_fire: datetime | None
    waking: bool = False

    @classmethod
    def starting(cls, schedule: Schedule, now: datetime) -> Plan:
        """The plan of a schedule added at `now`: nothing before `now` is ever due."""
        trigger = schedule.trigger(now)
        return cls(schedule, trigger, schedule.first_fire(trigger, now))

    def take_due(self, now: datetime) -> tuple[list[datetime], int]:
        """Take the fire times due at `now` and advance past them, as APScheduler's Job does.

        Returns the fire times to run (only the latest with `coalesce`) and how
        many earlier ones coalescing folded into it.
        """
        due: list[datetime] = []
        fire = self.next_fire
        while fire is not None and fire <= now:
            due.append(fire)
            fire = self.trigger.get_next_fire_time(fire, now)
        if not due:
            return [], 0
        self.next_fire = fire
        if self.schedule.coalesce:
            return due[-1:], len(due) - 1
        return due, 0


def earliest_first(plans: Iterable[Plan], now: datetime) -> list[Plan]:
    """Plans by next fire time (exhausted ones last), then name: the order due ones run in."""
    return sorted(plans, key=lambda p: (p.next_fire is None, p.next_fire or now, p.schedule.name))


def late_by(fire: datetime, now: datetime) -> float:
    """Seconds `now` is past `fire`."""
    return (now - fire).total_seconds()


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
