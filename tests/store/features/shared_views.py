"""Feature views the property tests share: one with a created timestamp, one without."""

from __future__ import annotations

from datetime import datetime, timedelta

from litemlops.store import Entity, FeatureView, Field

DRIVER = Entity("driver", join_keys=["driver_id"])


def stats_view(ttl: timedelta | None) -> FeatureView:
    """A view with a created timestamp: ties on event time go to the latest created."""
    return FeatureView(
        "driver_stats",
        entities=[DRIVER],
        schema=[Field("conv_rate", "float64"), Field("avg_daily_trips", "int64")],
        ttl=ttl,
        timestamp_field="datetime",
        created_timestamp_field="created",
    )


def quality_view(ttl: timedelta | None) -> FeatureView:
    """A view without a created timestamp: ties on event time go to the last ingested."""
    return FeatureView(
        "driver_quality",
        entities=[DRIVER],
        schema=[Field("acc_rate", "float64"), Field("trips_today", "int64")],
        ttl=ttl,
    )


def stat_row(key: int, event: datetime, rate: float, created: datetime | None = None) -> dict:
    """A driver_stats row whose trips follow from its rate."""
    return {
        "driver_id": key,
        "datetime": event,
        "created": created or event,
        "conv_rate": rate,
        "avg_daily_trips": int(rate * 100),
    }
