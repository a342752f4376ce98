"""The composition root: everything one home holds, opened together and closed together."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from litemlops.clock import utc_now
from litemlops.config import Config
from litemlops.home_lock import HomeLock
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.catalog import PipelineCatalog
from litemlops.scheduler.runner import PipelineRunner
from litemlops.store import FeatureStore
from litemlops.store.registry import ModelRegistry
from litemlops.store.tracking import Tracker

if TYPE_CHECKING:
    from litemlops.scheduler.scheduler import Scheduler


class Platform:
    """Owns a home: takes its lock, then opens the feature store, tracker and registry.

    A second Platform on the same home (in any process) fails with
    `HomeLockedError` before touching a file, so state cannot be corrupted.
    """

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utc_now):
        self.config = config
        self.clock = clock
        config.ensure_home()
        self._lock = HomeLock(config.lock_path).acquire()
        self._closers: list[Callable[[], None]] = []
        self._scheduler: Scheduler | None = None
        try:
            self.features = FeatureStore(
                config.features_path,
                online=config.online_path,
                clock=clock,
                push_lateness=timedelta(seconds=config.features.push_lateness_seconds),
                max_future=(
                    timedelta(seconds=config.features.max_future_seconds)
                    if math.isfinite(config.features.max_future_seconds)
                    else None
                ),
            )
            self._closers.append(self.features.close)
            self.tracker = Tracker(
                config.registry_path, artifacts=config.artifacts_dir, clock=clock
            )
            self._closers.append(self.tracker.close)
            self.registry = ModelRegistry(self.tracker)
            self.bus = EventBus()
            # We own the home now, so a run still "running" belongs to a process
            # that died: say so instead of leaving it running forever.
            self.interrupted_runs = self.tracker.mark_interrupted()
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
            )
            self.interrupted_pipeline_runs = self.pipelines.mark_interrupted()
            self.catalog = _catalog(config)
        except BaseException:
            self.close()
            raise

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


def _catalog(config: Config) -> PipelineCatalog:
    """The demo's pipelines and the home's own modules.

    A user's pipeline may replace a built-in one by name (their own `training`),
    but two of the user's modules defining one name is a mistake, refused.
    """
    from litemlops.demo.pipelines import demo_pipelines

    own = PipelineCatalog()
    for path in config.pipelines.module_paths(config.home):
        own.load(path)
    from litemlops.monitoring.pipeline import monitoring_pipeline

    catalog = PipelineCatalog([*demo_pipelines(config), monitoring_pipeline(config)])
    for pipeline in own:
        catalog.add(pipeline, replace=True)
    return catalog
