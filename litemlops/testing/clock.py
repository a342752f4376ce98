"""A clock that moves only when a test says so, for every `clock=` litemlops takes."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta

from litemlops.errors import ValidationError

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


def _utc(value: object, what: str) -> datetime:
    # A naive time would be read as local time by some callers and UTC by others,
    # and an offset other than zero would leak into stored values and messages.
    if not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{what} must be timezone-aware UTC, got naive {value!r}; "
            "use datetime(..., tzinfo=datetime.UTC)"
        )
    if value.utcoffset() != timedelta(0):
        raise ValidationError(
            f"{what} must be in UTC, got {value.isoformat()}; "
            "convert it with .astimezone(datetime.UTC)"
        )
    return value.replace(tzinfo=UTC)


class FixedClock:
    """Returns the same aware UTC time until `advance` or `set` moves it.

    Pass it wherever litemlops takes `clock=` (Platform, FeatureStore, Tracker,
    PipelineRunner), so a test controls "now" instead of sleeping.
    start: the initial time, default 2026-01-01T00:00:00Z.
    """

    def __init__(self, start: datetime = DEFAULT_START):
        self._now = _utc(start, "the clock's start")
        # The runner calls the clock from task threads when a task has a timeout.
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    @property
    def now(self) -> datetime:
        return self()

    def advance(self, by: float | timedelta) -> datetime:
        """Move the clock on by `by` (seconds or a timedelta; negative goes back); return it."""
        if isinstance(by, bool) or not isinstance(by, int | float | timedelta):
            raise ValidationError(f"advance takes seconds or a timedelta, got {by!r}")
        if not isinstance(by, timedelta):
            if not math.isfinite(by):
                raise ValidationError(f"advance takes a finite number of seconds, got {by!r}")
            by = timedelta(seconds=by)
        with self._lock:
            self._now += by
            return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to `when` (aware, UTC), forward or back; return it."""
        value = _utc(when, "the clock's time")
        with self._lock:
            self._now = value
            return value

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"
