"""Shared fixtures for feature store tests: a settable clock and an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from litemlops.store import Entity, FeatureStore
from litemlops.store.tracking.tracker import Tracker


class ManualClock:
    """A clock tests move by hand; `FeatureStore(clock=...)` calls it for "now"."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="session")
def t0() -> datetime:
    """A fixed aware start time the tests build their timelines from."""
    return datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def manual_clock() -> type[ManualClock]:
    """The clock class itself, for hypothesis tests that need a fresh clock per example."""
    return ManualClock


@pytest.fixture
def clock(t0: datetime) -> ManualClock:
    return ManualClock(t0 + timedelta(days=1))


@pytest.fixture(scope="session")
def driver() -> Entity:
    return Entity("driver", join_keys=["driver_id"])


@pytest.fixture
def store(clock: ManualClock) -> Iterator[FeatureStore]:
    """A real in-memory DuckDB feature store with an in-memory SQLite online store."""
    with FeatureStore(":memory:", clock=clock) as fs:
        yield fs


class TickingClock:
    """A clock one second further on at every reading: run times are distinct and ordered."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def tracker(tmp_path, t0: datetime) -> Iterator[Tracker]:
    """A tracker on a real SQLite file, with a ticking clock and no git checkout around it."""
    with Tracker(tmp_path / "registry.db", clock=TickingClock(t0), code_dir=tmp_path) as t:
        yield t
