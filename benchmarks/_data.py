"""Seeded, vectorised driver statistics shaped like a real feed, and the view they fill.

The rows look like what a feed delivers, so the store does the work it does in
production: irregular hourly-ish event times with missing hours, rows that
arrive hours late, exact re-deliveries, and corrections (same driver and event
time, a later `created`, other values). `created >= datetime` always, and rows
come in arrival order. A re-delivery repeats `created` as well as the values, so
the created-time tie-break alone decides every (driver, event time) value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from litemlops.store import Entity, FeatureView, Field

END = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_DRIVER_ID = 1001
TTL = timedelta(days=2)
VIEW = "driver_stats"
FEATURES = ("conv_rate", "acc_rate", "avg_daily_trips")
REFS = [f"{VIEW}:{f}" for f in FEATURES]

_SECOND = 1_000_000  # microseconds
_HOUR = 3600 * _SECOND
_END_US = int(END.timestamp()) * _SECOND

CORRECTION_RATE = 0.015
REDELIVERY_RATE = 0.005
LATE_RATE = 0.02
NULL_RATE = 0.001  # conv_rate sometimes missing: nulls must come back as NaN


@dataclass(frozen=True)
class Size:
    """How big a run is: feature rows, distinct drivers, entity (label) rows."""

    rows: int
    drivers: int
    entity_rows: int


SIZES = {
    "XS": Size(rows=10_000, drivers=200, entity_rows=1_000),  # the test suite's: checks the script
    "S": Size(rows=100_000, drivers=1_000, entity_rows=10_000),
    "M": Size(rows=1_000_000, drivers=10_000, entity_rows=100_000),
}


def definitions() -> tuple[Entity, FeatureView]:
    driver = Entity("driver", join_keys=["driver_id"])
    view = FeatureView(
        VIEW,
        entities=[driver],
        schema=[
            Field("conv_rate", "float64"),
            Field("acc_rate", "float64"),
            Field("avg_daily_trips", "int64"),
        ],
        ttl=TTL,
        timestamp_field="datetime",
        created_timestamp_field="created",
    )
    return driver, view


def _utc(micros: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(micros.astype("datetime64[us]")).tz_localize("UTC")


def driver_stats(rows: int, drivers: int, random_state: int = 0) -> pd.DataFrame:
    """`rows` statistics rows of `drivers` drivers, every event time before `END`.

    Columns: driver_id (int64 from 1001), datetime, created (datetime64[us, UTC]),
    conv_rate, acc_rate (float64 in [0, 1], conv_rate rarely NaN), avg_daily_trips.
    """
    rng = np.random.default_rng(random_state)
    extra = int(rows * (CORRECTION_RATE + REDELIVERY_RATE))
    per = (rows - extra) // drivers
    if per < 1:
        raise ValueError(f"{rows} rows are too few for {drivers} drivers")
    n = per * drivers
    extra = rows - n

    driver = np.repeat(np.arange(drivers), per)
    # Mostly one hour apart, sometimes an hour or two missing.
    gaps = rng.geometric(0.9, (drivers, per))
    slot = gaps.cumsum(axis=1)
    slot = (slot - slot[:, -1:]).ravel()  # each driver's last slot is the last hour
    event = _END_US - _HOUR + slot * _HOUR + rng.integers(0, 3000 * _SECOND, n)
    created = event + rng.integers(0, 120 * _SECOND, n)
    late = rng.random(n) < LATE_RATE
    created[late] += rng.integers(_HOUR, 6 * _HOUR, int(late.sum()))

    conv_base = rng.beta(4.0, 4.0, drivers)[driver]
    acc_base = rng.beta(6.0, 3.0, drivers)[driver]
    trips_base = rng.gamma(4.0, 100.0, drivers)[driver]
    conv = np.clip(conv_base + rng.normal(0.0, 0.04, n), 0.0, 1.0)
    acc = np.clip(acc_base + rng.normal(0.0, 0.04, n), 0.0, 1.0)
    trips = np.maximum(0, np.rint(trips_base * (1 + rng.normal(0.0, 0.05, n)))).astype(np.int64)
    conv[rng.random(n) < NULL_RATE] = np.nan  # before copying, so a re-delivery is exact

    n_fix = int(extra * CORRECTION_RATE / (CORRECTION_RATE + REDELIVERY_RATE))
    picked = rng.choice(n, extra, replace=False)
    fix, again = picked[:n_fix], picked[n_fix:]
    # A correction is strictly later than what it corrects, so no tie is left.
    fix_created = created[fix] + rng.integers(_SECOND, 6 * _HOUR, n_fix)
    fix_conv = np.clip(conv[fix] + rng.normal(0.0, 0.05, n_fix), 0.0, 1.0)
    fix_acc = np.clip(acc[fix] + rng.normal(0.0, 0.05, n_fix), 0.0, 1.0)
    fix_trips = trips[fix] + rng.integers(1, 30, n_fix)

    driver = np.concatenate([driver, driver[fix], driver[again]])
    event = np.concatenate([event, event[fix], event[again]])
    created = np.concatenate([created, fix_created, created[again]])
    conv = np.concatenate([conv, fix_conv, conv[again]])
    acc = np.concatenate([acc, fix_acc, acc[again]])
    trips = np.concatenate([trips, fix_trips, trips[again]])

    order = np.argsort(created, kind="stable")  # arrival order
    return pd.DataFrame(
        {
            "driver_id": (FIRST_DRIVER_ID + driver[order]).astype(np.int64),
            "datetime": _utc(event[order]),
            "created": _utc(created[order]),
            "conv_rate": conv[order],
            "acc_rate": acc[order],
            "avg_daily_trips": trips[order],
        }
    )


def entity_rows(stats: pd.DataFrame, rows: int, random_state: int = 1) -> pd.DataFrame:
    """`rows` (driver_id, event_timestamp) pairs to join `stats` to, in no particular order.

    About 1% of drivers are unknown; times run from before the first event (no
    match) to past `END + TTL` (every value too old), so nulls come from both.
    """
    rng = np.random.default_rng(random_state)
    drivers = int(stats["driver_id"].max()) - FIRST_DRIVER_ID + 1
    first = int(stats["datetime"].min().value // 1000)
    last = _END_US + int(TTL.total_seconds() * 1.25) * _SECOND
    return pd.DataFrame(
        {
            "driver_id": FIRST_DRIVER_ID + rng.integers(0, int(drivers * 1.01) + 1, rows),
            "event_timestamp": _utc(rng.integers(first - 6 * _HOUR, last, rows)),
        }
    )


def latest_per_driver(stats: pd.DataFrame) -> pd.DataFrame:
    """The latest row of each driver (event time, then created): what serving returns."""
    ordered = stats.sort_values(["driver_id", "datetime", "created"], kind="stable")
    return ordered.drop_duplicates("driver_id", keep="last").reset_index(drop=True)
