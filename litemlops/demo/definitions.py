"""The demo project's feature definitions: the course's driver and driver_stats.

This is a feature repo module like any user's: `litemlops features apply` on this
file applies the objects defined at module level.
"""

from datetime import timedelta

from litemlops.store import Entity, FeatureView, Field

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    value_type="int64",
    description="A driver who can be offered a booking.",
)

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    schema=[
        Field("conv_rate", "float64"),
        Field("acc_rate", "float64"),
        Field("avg_daily_trips", "int64"),
    ],
    ttl=timedelta(days=7),
    timestamp_field="datetime",
    created_timestamp_field="created",
    online=True,
    description="Hourly driver statistics: conversion rate, acceptance rate, daily trips.",
    tags={"team": "driver_performance"},
    owner="demo@litemlops",
)

#: Feature references the demo model uses, in order.
FEATURES = ["driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:avg_daily_trips"]
