"""The composition root: everything one home holds, opened together and closed together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType

from litemlops.config import Config
from litemlops.home_lock import HomeLock
from litemlops.store import FeatureStore


def utc_now() -> datetime:
    return datetime.now(UTC)


class Platform:
    """Owns a home: takes its lock, then opens the feature store.

    A second Platform on the same home (in any process) fails with
    `HomeLockedError` before touching a file, so state cannot be corrupted.
    """

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utc_now):
        self.config = config
        self.clock = clock
        config.ensure_home()
        self._lock = HomeLock(config.lock_path).acquire()
        try:
            self.features = FeatureStore(
                config.features_path,
                online=config.online_path,
                clock=clock,
                push_lateness=timedelta(seconds=config.features.push_lateness_seconds),
            )
        except BaseException:
            self._lock.release()
            raise

    def close(self) -> None:
        try:
            self.features.close()
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
