"""Pipelines as plain Python: tasks with explicit dependencies, retries and timeouts.

A task is a function taking a `TaskContext`; what it returns (JSON-serialisable)
is its output, handed to downstream tasks and kept in the run's folder, so any
task can later run alone. A pipeline is a DAG: cycles, unknown upstream names
and duplicate names are refused when it is defined. A pipeline may also say
when it runs (`schedule`: a cron line or an interval; `on`: event topics), which
the scheduler reads; a bad cron line is refused here, not at the first fire.
"""

from __future__ import annotations

import graphlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.errors import LitemlopsError, ValidationError

if TYPE_CHECKING:
    # Types only: defining a pipeline must not load the stores.
    from litemlops.config import Config
    from litemlops.scheduler.bus import Publisher
    from litemlops.store import FeatureStore
    from litemlops.store.tracking.registry import ModelRegistry
    from litemlops.store.tracking.tracker import Tracker

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


class PipelineDefinitionError(LitemlopsError, ValueError):
    """A pipeline or task definition is invalid (cycle, unknown upstream, bad option)."""


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PipelineDefinitionError(
            f"invalid {what} name {name!r}: a letter, then letters, digits, '_' or '-' (at most 64)"
        )
    return name


@dataclass(frozen=True)
class Task:
    """One step: `fn(ctx)` with its upstream task names and failure policy.

    retries: extra attempts after a failure; the n-th retry waits
    `retry_delay * retry_backoff ** (n - 1)`. timeout: seconds an attempt may
    take before it counts as failed (None: no limit).
    """

    name: str
    fn: Callable[[TaskContext], Any]
    upstream: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: timedelta = timedelta(0)
    retry_backoff: float = 2.0
    timeout: float | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "task")
        if not callable(self.fn):
            raise PipelineDefinitionError(f"task {self.name!r}: fn must be callable")
        upstream = (self.upstream,) if isinstance(self.upstream, str) else tuple(self.upstream)
        for item in upstream:
            _check_name(item, "upstream task")
        object.__setattr__(self, "upstream", upstream)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise PipelineDefinitionError(f"task {self.name!r}: retries must be an int >= 0")
        delay = self.retry_delay
        if isinstance(delay, int | float) and not isinstance(delay, bool):
            delay = timedelta(seconds=delay)
        if not isinstance(delay, timedelta) or delay < timedelta(0):
            raise PipelineDefinitionError(
                f"task {self.name!r}: retry_delay must be seconds or a timedelta >= 0"
            )
        object.__setattr__(self, "retry_delay", delay)
        if not isinstance(self.retry_backoff, int | float) or self.retry_backoff < 1:
            raise PipelineDefinitionError(f"task {self.name!r}: retry_backoff must be >= 1")
        if self.timeout is not None and (
            not isinstance(self.timeout, int | float) or self.timeout <= 0
        ):
            raise PipelineDefinitionError(f"task {self.name!r}: timeout must be > 0 seconds")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before `attempt` (1 is the first try: no wait)."""
        if attempt <= 1:
            return 0.0
        return self.retry_delay.total_seconds() * self.retry_backoff ** (attempt - 2)


def task(
    fn: Callable[[TaskContext], Any] | None = None,
    *,
    name: str | None = None,
    upstream: str | Sequence[str] = (),
    retries: int = 0,
    retry_delay: float | timedelta = 0,
    retry_backoff: float = 2.0,
    timeout: float | None = None,
) -> Any:
    """Make a `Task` from a function: `@task` or `@task(upstream=["ingest"], retries=2)`."""

    def make(func: Callable[[TaskContext], Any]) -> Task:
        return Task(
            name=name or func.__name__,
            fn=func,
            upstream=(upstream,) if isinstance(upstream, str) else tuple(upstream),
            retries=retries,
            retry_delay=retry_delay,  # type: ignore[arg-type]  # normalised in __post_init__
            retry_backoff=retry_backoff,
            timeout=timeout,
        )

    return make(fn) if fn is not None else make


@dataclass(frozen=True)
class Pipeline:
    """A named DAG of tasks with default params (overridable per run)."""

    name: str
    tasks: Sequence[Task]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    max_active_runs: int = 1
    on_busy: str = "queue"  # a trigger while max_active_runs run: "queue" or "skip"
    #: When the scheduler runs it: a 5-field cron line (UTC) or an interval
    #: (seconds or a timedelta, kept as a timedelta); None: only when triggered.
    schedule: str | float | timedelta | None = None
    #: Event topics (fnmatch patterns, e.g. "alert:drift") that start a run.
    on: tuple[str, ...] = ()
    #: Checks a run's params (defaults merged with the run's) before the run is
    #: recorded, and returns them normalised; raising ValidationError refuses the
    #: run with that message, before any task did work with a bad value.
    check: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Params that name files or folders: a run may only point them inside the home
    #: or the directories of `[pipelines] allowed_dirs` (see `scheduler.paths`).
    path_params: tuple[str, ...] = ()
    #: Task names in an order where every task follows its upstream tasks.
    order: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        _check_name(self.name, "pipeline")
        if (
            isinstance(self.max_active_runs, bool)
            or not isinstance(self.max_active_runs, int)
            or self.max_active_runs < 1
        ):
            raise PipelineDefinitionError(f"pipeline {self.name!r}: max_active_runs must be >= 1")
        if self.on_busy not in ("queue", "skip"):
            raise PipelineDefinitionError(
                f"pipeline {self.name!r}: on_busy must be 'queue' or 'skip', not {self.on_busy!r}"
            )
        owner = f"pipeline {self.name!r}"
        if isinstance(self.schedule, str):
            cron_trigger(self.schedule, owner=owner)
        elif self.schedule is not None:
            object.__setattr__(self, "schedule", interval_of(self.schedule, owner=owner))
        topics = (self.on,) if isinstance(self.on, str) else tuple(self.on)
        for topic in topics:
            if not isinstance(topic, str) or not topic.strip():
                raise PipelineDefinitionError(
                    f"{owner}: 'on' takes event topics like 'alert:drift', got {topic!r}"
                )
        object.__setattr__(self, "on", tuple(dict.fromkeys(topics)))  # each topic once
        if self.check is not None and not callable(self.check):
            raise PipelineDefinitionError(f"{owner}: check must be callable")
        paths = (self.path_params,) if isinstance(self.path_params, str) else self.path_params
        paths = tuple(dict.fromkeys(paths))
        unknown = [p for p in paths if p not in self.params]
        if unknown:
            raise PipelineDefinitionError(
                f"{owner}: path_params {unknown} are not among its params {sorted(self.params)}"
            )
        object.__setattr__(self, "path_params", paths)
        tasks = tuple(self.tasks)
        if not tasks:
            raise PipelineDefinitionError(f"pipeline {self.name!r} has no tasks")
        names = [t.name for t in tasks if isinstance(t, Task)]
        if len(names) != len(tasks):
            raise PipelineDefinitionError(
                f"pipeline {self.name!r}: tasks must be Task objects (use @task)"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise PipelineDefinitionError(f"pipeline {self.name!r} repeats tasks {repeated}")
        for t in tasks:
            missing = [u for u in t.upstream if u not in names]
            if missing:
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: task {t.name!r} depends on unknown {missing}"
                )
        sorter = graphlib.TopologicalSorter({t.name: t.upstream for t in tasks})
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise PipelineDefinitionError(f"pipeline {self.name!r} has a cycle: {cycle}") from None
        object.__setattr__(self, "tasks", tasks)
        object.__setattr__(self, "params", dict(self.params))
        # Definition order breaks ties, so runs are reproducible and readable.
        position = {n: i for i, n in enumerate(names)}
        object.__setattr__(self, "order", _stable_order(tasks, position))

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ValidationError(
            f"pipeline {self.name!r} has no task {name!r} (tasks: {list(self.order)})"
        )

    def describe(self) -> dict[str, Any]:
        """The definition as JSON: what `pipelines list --json` and `/api/pipelines` show."""
        schedule = self.schedule
        return {
            "name": self.name,
            "description": self.description,
            "tasks": [
                {
                    "name": t.name,
                    "upstream": list(t.upstream),
                    "retries": t.retries,
                    "timeout": t.timeout,
                }
                for t in (self.task(n) for n in self.order)
            ],
            "params": dict(self.params),
            "path_params": list(self.path_params),
            "schedule": schedule.total_seconds() if isinstance(schedule, timedelta) else schedule,
            "on": list(self.on),
            "max_active_runs": self.max_active_runs,
            "on_busy": self.on_busy,
        }

    def downstream(self, name: str) -> set[str]:
        """Every task that depends on `name`, directly or not."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {t.name for t in self.tasks if set(t.upstream) & frontier} - found
            found |= frontier
        return found


def interval_of(value: object, *, owner: str) -> timedelta:
    """Seconds or a timedelta as a positive timedelta; owner names the definition in errors."""
    interval = value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        interval = timedelta(seconds=value)
    if not isinstance(interval, timedelta) or interval <= timedelta(0):
        raise PipelineDefinitionError(
            f"{owner}: interval must be seconds or a timedelta > 0, got {value!r}"
        )
    return interval


def cron_trigger(expr: object, timezone: Any = "UTC", *, owner: str) -> Any:
    """An APScheduler `CronTrigger` for a 5-field crontab line, read the way cron reads it.

    APScheduler 3 numbers weekdays from Monday (0) where cron numbers them from
    Sunday (0 or 7), so the day-of-week field is translated to day names, which
    mean the same in both. Cron runs a line that restricts both day of month
    and day of week on either day; APScheduler only on days matching both, so
    such a line is refused rather than run on other days than meant.
    """
    # Imported here: defining pipelines must not need the scheduler's library loaded.
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(expr, str):
        raise PipelineDefinitionError(
            f"{owner}: cron must be a string like '*/10 * * * *', got {expr!r}"
        )
    fields = expr.split()
    if len(fields) != 5:
        raise PipelineDefinitionError(
            f"{owner}: cron {expr!r} has {len(fields)} field(s); it needs 5: "
            "minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"
        )
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        raise PipelineDefinitionError(
            f"{owner}: cron {expr!r} restricts both day of month and day of week; "
            "cron and APScheduler disagree on what that means, so use two schedules"
        )
    try:
        fields[4] = _crontab_weekdays(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    except ValueError as exc:
        raise PipelineDefinitionError(f"{owner}: invalid cron {expr!r}: {exc}") from None


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays(field: str) -> str:
    """Crontab's day-of-week field (`1-5`, `*/2`, `0,6`, `sat-sun`...) as day names."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        span, slash, step_text = part.partition("/")
        step = int(step_text) if slash else 1
        if step < 1:
            raise ValueError(f"day-of-week step in {part!r} must be >= 1")
        if span == "*":
            first, last = 0, 6
        else:
            low, dash, high = span.partition("-")
            if slash and not dash:
                raise ValueError(f"day-of-week {part!r}: a step needs '*' or a range")
            first = _weekday(low)
            last = _weekday(high) if dash else first
            if last < first:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    raise ValueError(f"{text!r} is not a day of week (0-7 with 0 and 7 Sunday, or sun-sat)")


def _stable_order(tasks: Sequence[Task], position: Mapping[str, int]) -> tuple[str, ...]:
    """Topological order, earliest-defined first among ready tasks (the DAG is acyclic)."""
    done: list[str] = []
    remaining = sorted(tasks, key=lambda t: position[t.name])
    while remaining:
        for t in remaining:
            if all(u in done for u in t.upstream):
                done.append(t.name)
                remaining.remove(t)
                break
    return tuple(done)


@dataclass
class TaskContext:
    """What a task gets: its run, its params, its upstream outputs, a folder, resources.

    resources: what the runner was given. The ones `Platform` gives are typed
    attributes, read from the mapping only when a task touches them (a
    worker opens the feature history then): `ctx.features`, `ctx.tracker`,
    `ctx.registry`, `ctx.config`, `ctx.clock`, `ctx.bus`. Any other resource a
    runner was given is `ctx.resources["name"]`.
    """

    run_id: str
    pipeline: str
    task: str
    attempt: int
    params: dict[str, Any]
    upstream: dict[str, Any]
    work_dir: Path
    resources: Mapping[str, Any]
    log: Any

    @property
    def features(self) -> FeatureStore:
        """The whole feature store (history, online store, push)."""
        return self._resource("features")

    @property
    def tracker(self) -> Tracker:
        return self._resource("tracker")

    @property
    def registry(self) -> ModelRegistry:
        return self._resource("registry")

    @property
    def config(self) -> Config:
        return self._resource("config")

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._resource("clock")

    @property
    def bus(self) -> Publisher:
        """Where a task publishes events; in a worker they reach the owner's bus after it."""
        return self._resource("bus")

    def _resource(self, name: str) -> Any:
        resources = self.__dict__.get("resources", {})
        # By its keys: `name in resources` would read the value, and opening a store
        # twice is what a mapping that opens on read (a worker's) should not be asked.
        given = list(resources)
        if name not in given:
            raise AttributeError(
                f"task context has no {name!r}; resources given to the runner: {sorted(given)}"
            )
        return resources[name]

    if not TYPE_CHECKING:
        # Other resources as attributes, as before `ctx.resources["name"]` was the
        # way: hidden from type checkers, so a misspelt `ctx.featurs` is an error.
        def __getattr__(self, name: str) -> Any:
            return self._resource(name)
