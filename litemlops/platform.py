"""The composition root: everything one home holds, opened together and closed together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from litemlops.clock import utc_now
from litemlops.config import Config
from litemlops.home_lock import HomeLock
from litemlops.scheduler.bus import EventBus
from litemlops.scheduler.catalog import PipelineCatalog
from litemlops.scheduler.runner import PipelineRunner
from litemlops.store import FeatureStore
from litemlops.store.registry import ModelRegistry
from litemlops.store.tracking import Tracker


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
        try:
            self.features = FeatureStore(
                config.features_path,
                online=config.online_path,
                clock=clock,
                push_lateness=timedelta(seconds=config.features.push_lateness_seconds),
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
            )
            self.interrupted_pipeline_runs = self.pipelines.mark_interrupted()
            self.catalog = _catalog(config)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            for close in reversed(self._closers):
                close()
            self._closers.clear()
        finally:
            self._lock.release()

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
    """The demo's pipelines, then the home's own modules (which may replace them by name)."""
    from litemlops.demo.pipelines import demo_pipelines

    catalog = PipelineCatalog(demo_pipelines(config))
    for path in config.pipelines.module_paths(config.home):
        catalog.load(path, replace=True)
    return catalog
