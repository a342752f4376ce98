"""The composition root: everything one home holds, opened together and closed together."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from litemlops.applications import load_applications
from litemlops.clock import utc_now
from litemlops.config import Config
from litemlops.errors import HomeLockedError
from litemlops.home_lock import HomeLock
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.catalog import PipelineCatalog
from litemlops.scheduler.paths import PathRoots
from litemlops.scheduler.runner import PipelineRunner
from litemlops.store import FeatureStore
from litemlops.store.features.online_features import OnlineFeatures, PushTarget
from litemlops.store.features.results import PushResult
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.tracker import Tracker

if TYPE_CHECKING:
    from litemlops.scheduler.pipeline import Task, TaskContext
    from litemlops.scheduler.scheduler import Scheduler
    from litemlops.scheduler.workers import Workers


#: Seconds a request's hand-off to a worker (an offline push, a describe) may take,
#: waiting for its turn with the feature history included.
WORKER_CALL_TIMEOUT = 120.0


class Platform:
    """Owns a home: takes its lock, then opens the feature store, tracker and registry.

    A second Platform on the same home (in any process) fails with
    `HomeLockedError` before touching a file, so state cannot be corrupted.

    While it is open, litemlops's events are written to the home's
    `logs/events.jsonl` (`litemlops.logsetup.attach_event_log`) as well as to the
    application's own logging, which it leaves as it was.

    workers: run pipeline tasks in worker processes (`litemlops run` does), and hold
    only the online half of the feature store (`OnlineFeatureStore`): the DuckDB
    history is opened by the workers, one at a time, so this process stays small and
    its requests never wait on a training run's interpreter. Without it (the default,
    for commands, notebooks and tests) everything runs and opens in this process.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], datetime] = utc_now,
        workers: bool = False,
        _owner: bool = True,
        _guest: bool = False,
        _waiting: Callable[[str], None] | None = None,
    ):
        self.config = config
        self.clock = clock
        #: What the home runs on the platform (`litemlops.applications`).
        self.applications = load_applications(config.applications)
        config.ensure_home()
        self._lock = HomeLock(config.lock_path)
        if _owner:
            self._lock.acquire()
        self._closers: list[Callable[[], None]] = []
        self._scheduler: Scheduler | None = None
        self._history: FeatureStore | None = None
        self._guest = _guest
        self._waiting = _waiting
        self.workers: Workers | None = None
        self.features: OnlineFeatures
        try:
            if _owner:
                # Library use (a notebook, an application serving the app) writes its
                # events to the home's log like `run` does, or monitoring would not see
                # them; closed last, after the events of closing.
                from litemlops.logsetup import attach_event_log

                self._closers.append(attach_event_log(config))
            if workers or _guest:
                from litemlops.store.features.online_features import OnlineFeatureStore

                self.features = OnlineFeatureStore(
                    config.online_path, **_feature_options(config, clock)
                )
                self._closers.append(self.features.close)
                if workers:
                    from litemlops.scheduler.workers import Workers

                    self.workers = Workers(
                        config.logging.level,
                        preload=[m for a in self.applications for m in a.preload],
                    )
                    self._closers.append(self.workers.stop)
            else:
                # A worker waits for its turn: the owner's other workers may hold the file.
                self.features = _open_history(config, clock, self._closers, turn=not _owner)
            self.tracker = Tracker(
                config.registry_path, artifacts=config.artifacts_dir, clock=clock
            )
            self._closers.append(self.tracker.close)
            self.registry = ModelRegistry(self.tracker)
            self.bus = EventBus()
            # We own the home now, so a run still "running" belongs to a process
            # that died: say so instead of leaving it running forever.
            self.interrupted_runs = self.tracker.mark_interrupted() if _owner else []
            self.pipelines = PipelineRunner(
                self.tracker.db,
                config.runs_dir,
                resources={
                    "features": self.features,
                    "tracker": self.tracker,
                    "registry": self.registry,
                    "config": config,
                    "clock": clock,
                    "bus": self.bus,
                },
                clock=clock,
                keep_folders=config.pipelines.keep_run_folders,
                keep_history=(
                    timedelta(days=config.pipelines.keep_history_days)
                    if 0 < config.pipelines.keep_history_days < math.inf
                    else None
                ),
                execute=self._in_worker if workers else self._here if _guest else None,
                event_log=config.events_log_path,
                paths=PathRoots.of(config.home, config.pipelines.allowed_paths(config.home)),
            )
            self.interrupted_pipeline_runs = self.pipelines.mark_interrupted() if _owner else []
            self.catalog = pipeline_catalog(config)
        except BaseException:
            self.close()
            raise

    @classmethod
    def worker(cls, config: Config) -> Platform:
        """The home as a worker process of its owner sees it: no home lock (the owner
        holds it), the whole feature store once no other worker has it, tasks in this
        process, nothing marked interrupted (the owner's runs are alive)."""
        return cls(config, _owner=False)

    @classmethod
    def guest(cls, config: Config, *, waiting: Callable[[str], None] | None = None) -> Platform:
        """The home beside the process that owns it (a `litemlops run` serving it).

        No home lock; the online store, the tracker and the registry open here (SQLite
        takes readers and short writes from several processes); the feature history is
        opened on first use, in the turn the owner's workers take with it
        (`features.lock`), and held until `close()`; pipeline tasks run in this process
        the way a worker runs them. Nothing is marked interrupted: the owner's runs are
        alive. waiting: told what it waits for when the history's turn is not free.
        """
        return cls(config, _owner=False, _guest=True, _waiting=waiting)

    @property
    def history(self) -> FeatureStore:
        """The whole feature store; in a platform with workers it is not open here."""
        if self._guest:
            if self._history is None:
                self._history = _open_history(
                    self.config, self.clock, self._closers, turn=True, waiting=self._waiting
                )
            return self._history
        if not isinstance(self.features, FeatureStore):
            raise HomeLockedError(
                "this process serves the online store only; the feature history is "
                "opened by its worker processes (Platform.in_worker)"
            )
        return self.features

    def in_worker(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """`fn(Platform.worker(config), *args)` in a worker process (or here, without
        workers): for work on the feature history, which a worker opens in its turn."""
        if self.workers is None:
            return fn(self, *args)
        from litemlops.scheduler.workers import WorkerDiedError, WorkerTimeoutError

        try:
            return self.workers.call(
                _with_worker_platform, fn, self.config, *args, timeout=timeout, name=fn.__name__
            )
        except (WorkerDiedError, WorkerTimeoutError, KeyboardInterrupt):
            # Runs the worker recorded as its own (the set-up's) died with it.
            self.pipelines.mark_interrupted()
            raise

    def describe_features(self, view: str | None = None) -> Any:
        """`FeatureStore.describe` of one view, or of every view (a list): in a worker
        when this process holds only the online store, since it counts the history."""
        return self.in_worker(_describe, view, timeout=WORKER_CALL_TIMEOUT)

    def push_features(self, view: str, rows: Any, to: PushTarget = "online") -> PushResult:
        """`FeatureStore.push`. With workers, offline rows are spooled in the online file
        (one SQLite write) and reach the history when a worker next opens it."""
        return self.features.push(view, rows, to=to)

    def _here(self, task: Task, ctx: TaskContext) -> Any:
        """A guest's way to execute a task attempt: in this process, as a worker would
        (the feature history opened in its turn, only if the task uses it)."""
        answer = run_task(self.config, _spec(ctx, task))
        for topic, payload in answer["published"]:
            self.bus.publish(topic, payload)
        return answer["output"]

    def _in_worker(self, task: Task, ctx: TaskContext) -> Any:
        """The runner's way to execute a task attempt: in a worker process of its own."""
        from litemlops.scheduler.runner import TaskTimeoutError
        from litemlops.scheduler.workers import WorkerTimeoutError

        assert self.workers is not None
        spec = _spec(ctx, task)
        try:
            answer = self.workers.call(
                run_task,
                self.config,
                spec,
                timeout=task.timeout,
                name=f"{ctx.pipeline}.{task.name}",
            )
        except WorkerTimeoutError:
            raise TaskTimeoutError(
                f"task {task.name!r} ran longer than its timeout of {task.timeout} s; "
                "its worker process was stopped"
            ) from None
        for topic, payload in answer["published"]:
            self.bus.publish(topic, payload)
        return answer["output"]

    @property
    def scheduler(self) -> Scheduler:
        """This home's scheduler with every catalog pipeline's schedule and event topics.

        Built on first use, in synchronous mode; `start()` it to run on wall time
        (it then holds `scheduler.lock`: one scheduler per home). Closed with the platform.
        """
        if self._scheduler is None:
            from litemlops.scheduler.scheduler import Scheduler

            scheduler = Scheduler(
                self.pipelines,
                self.catalog.get,
                bus=self.bus,
                lock_path=self.config.scheduler_lock_path,
                clock=self.clock,
            )
            try:
                for pipeline in self.catalog:
                    scheduler.add_pipeline(pipeline)
                # An alert that names a pipeline starts it through the bus.
                from litemlops.scheduler.scheduler import EventTrigger

                for rule in self.config.alerts:
                    if rule.trigger and rule.trigger in self.catalog:
                        scheduler.add_event_trigger(
                            EventTrigger(rule.topic, rule.trigger, cooldown=rule.cooldown_seconds)
                        )
            except BaseException:
                scheduler.shutdown()  # drops the bus subscriptions made so far
                raise
            self._scheduler = scheduler
            # Closed first (closers run in reverse), before the stores its runs use.
            self._closers.append(scheduler.shutdown)
        return self._scheduler

    def close(self) -> None:
        """Close everything, even when one part fails; the first error is raised after."""
        errors: list[BaseException] = []
        for close in reversed(self._closers):
            try:
                close()
            except BaseException as exc:
                errors.append(exc)
        self._closers.clear()
        self._lock.release()
        if errors:
            raise errors[0]

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def pipeline_catalog(config: Config) -> PipelineCatalog:
    """The platform's built-in pipelines (`monitoring`), those of the home's
    applications (`config.applications`: the demo's `data`, `training`,
    `batch_predictions` by default) and those of the home's own modules.

    A user's pipeline may replace a built-in or an application's one by name (their
    own `training`), but two of the user's modules, or two applications, defining one
    name is a mistake, refused.
    """
    from litemlops.applications import load_applications
    from litemlops.monitoring.pipeline import monitoring_pipeline

    own = PipelineCatalog()
    for path in config.pipelines.module_paths(config.home):
        own.load(path)
    catalog = PipelineCatalog([monitoring_pipeline(config)])
    for application in load_applications(config.applications):
        for pipeline in application.pipelines(config):
            catalog.add(pipeline)
    for pipeline in own:
        catalog.add(pipeline, replace=True)
    return catalog


@dataclass(frozen=True)
class TaskSpec:
    """What a worker needs to run one task attempt of a run."""

    pipeline: str
    task: str
    run_id: str
    attempt: int
    params: dict[str, Any]
    upstream: dict[str, Any]
    work_dir: Path


def _spec(ctx: TaskContext, task: Task) -> TaskSpec:
    return TaskSpec(
        ctx.pipeline, task.name, ctx.run_id, ctx.attempt, ctx.params, ctx.upstream, ctx.work_dir
    )


class _RecordingBus:
    """A worker's bus: what tasks publish is published by the owner after the task."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, payload: Mapping[str, Any] | None = None) -> int:
        self.published.append((topic, dict(payload or {})))
        return 0


class _WorkerResources(Mapping[str, Any]):
    """A task's resources in a worker: the stores open on first use, so a task that
    never touches the feature history never waits for its turn with it."""

    KEYS = ("features", "tracker", "registry", "config", "clock", "bus")

    def __init__(self, config: Config):
        self.config = config
        self.bus = _RecordingBus()
        self._opened: dict[str, Any] = {"config": config, "clock": utc_now, "bus": self.bus}
        self._closers: list[Callable[[], None]] = []

    def __getitem__(self, key: str) -> Any:
        if key not in self.KEYS:
            raise KeyError(key)
        if key not in self._opened:
            if key == "features":
                self._opened[key] = _open_history(self.config, utc_now, self._closers, turn=True)
            else:
                tracker = Tracker(self.config.registry_path, artifacts=self.config.artifacts_dir)
                self._closers.append(tracker.close)
                self._opened.update(tracker=tracker, registry=ModelRegistry(tracker))
        return self._opened[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def _feature_options(config: Config, clock: Callable[[], datetime]) -> dict[str, Any]:
    """The feature store's settings from config, for either half of it."""
    return {
        "clock": clock,
        "push_lateness": timedelta(seconds=config.features.push_lateness_seconds),
        "max_future": (
            timedelta(seconds=config.features.max_future_seconds)
            if math.isfinite(config.features.max_future_seconds)
            else None
        ),
    }


def _open_history(
    config: Config,
    clock: Callable[[], datetime],
    closers: list[Callable[[], None]],
    *,
    turn: bool,
    waiting: Callable[[str], None] | None = None,
) -> FeatureStore:
    """The whole feature store; with `turn`, once no other process of the home's owner
    holds it (`features.lock`). Its closers (the store, then the turn) go on `closers`.
    waiting: told when the turn is not free at once."""
    if turn:
        turn_lock = HomeLock(config.features_lock_path)
        try:
            held = turn_lock.acquire()
        except HomeLockedError:
            if waiting is not None:
                waiting("the feature history (a pipeline task of the home's owner has it)")
            held = turn_lock.acquire(wait=True)
        closers.append(held.release)
    store = FeatureStore(
        config.features_path, online=config.online_path, **_feature_options(config, clock)
    )
    closers.append(store.close)
    return store


def run_task(config: Config, spec: TaskSpec) -> dict[str, Any]:
    """One task attempt, in a worker process: its JSON output and what it published."""
    from litemlops.logger import get_logger
    from litemlops.scheduler.pipeline import TaskContext
    from litemlops.scheduler.runner import _output_json

    task = pipeline_catalog(config).get(spec.pipeline).task(spec.task)
    resources = _WorkerResources(config)
    try:
        ctx = TaskContext(
            run_id=spec.run_id,
            pipeline=spec.pipeline,
            task=spec.task,
            attempt=spec.attempt,
            params=dict(spec.params),
            upstream=dict(spec.upstream),
            work_dir=spec.work_dir,
            resources=resources,
            log=get_logger("litemlops.pipelines").bind(attempt=spec.attempt),
        )
        output = task.fn(ctx)
        text = _output_json(task, output)
    finally:
        resources.close()
    return {"output": json.loads(text), "published": resources.bus.published}


def _describe(platform: Platform, view: str | None) -> Any:
    store = platform.history
    if view is not None:
        return store.describe(view)
    return [store.describe(v.name) for v in store.list_feature_views()]


def _with_worker_platform(fn: Callable[..., Any], config: Config, *args: Any) -> Any:
    with Platform.worker(config) as platform:
        return fn(platform, *args)
