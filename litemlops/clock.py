"""Time in one place: the default clock and the integers stores keep for instants.

Every store takes a `clock=` (a callable returning an aware datetime) so tests
never wait; this is the one they default to. Naive datetimes given to
`to_micros` are taken as UTC; `to_ms` refuses them (they come from users).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litemlops.errors import ValidationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding); naive means UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    delta = aware - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else EPOCH + timedelta(microseconds=micros)


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (tracking's resolution)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"times must be timezone-aware datetimes, got {value!r}")
    return int(value.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
