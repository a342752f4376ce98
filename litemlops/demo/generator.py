"""Seeded demo data for the ride-hailing use case: driver statistics and trip labels.

The data looks like what a real feed delivers, so the feature store's handling of
it is exercised: irregular event times and missing hours, exact duplicate rows,
corrections (same driver and event time, later `created`, other values) and rows
that arrive hours late. Rows come in arrival order (`created`), not event order.
Everything is vectorised with numpy; one million rows take about a second.
"""

from __future__ import annotations

import math
import numbers
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from litemlops.errors import ValidationError

DEFAULT_END = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_DRIVER_ID = 1001
DRIVER_STATS_COLUMNS = (
    "driver_id",
    "datetime",
    "created",
    "conv_rate",
    "acc_rate",
    "avg_daily_trips",
)
LABEL_COLUMNS = ("driver_id", "event_timestamp", "trip_completed")

MISSING_RATE = 0.05
DUPLICATE_RATE = 0.01
CORRECTION_RATE = 0.01
LATE_RATE = 0.02

# logit P(trip_completed) = LABEL_INTERCEPT + sum(weight * (feature - centre)).
# Strong enough that the true score ranks completed trips well (AUC about 0.8),
# weak enough that a model has something left to be wrong about.
LABEL_INTERCEPT = 0.4
LABEL_WEIGHTS: dict[str, tuple[float, float]] = {
    "conv_rate": (8.0, 0.5),
    "acc_rate": (4.0, 0.65),
    "avg_daily_trips": (0.003, 400.0),
}

_SECOND = 1_000_000  # microseconds
_HOUR = 3600 * _SECOND
_MAX_LAG_S = 120  # an on-time row arrives within two minutes of its event time
_EPOCH = pd.Timestamp(0, tz="UTC")

RandomState = int | np.random.Generator


def generate_driver_stats(
    n_drivers: int = 20,
    hours: int = 24 * 14,
    end: datetime | None = None,
    random_state: RandomState = 0,
) -> pd.DataFrame:
    """Hourly-ish statistics of `n_drivers` drivers over the `hours` before `end`.

    Columns: driver_id (int64, from 1001), datetime and created (datetime64[us, UTC],
    created >= datetime), conv_rate and acc_rate (float64 in [0, 1]),
    avg_daily_trips (int64 >= 0). Event times lie in [end - hours, end) and nothing
    arrives after `end`: a late row or a correction not yet arrived is left out.
    end: timezone-aware; defaults to 2026-01-01T00:00Z so outputs are reproducible.
    random_state: a seed or a numpy Generator (which is advanced).
    """
    n_drivers = _count("n_drivers", n_drivers)
    hours = _count("hours", hours)
    end_us = _end_micros(end)
    rng = np.random.default_rng(random_state)

    driver = np.repeat(np.arange(n_drivers), hours)
    slot = np.tile(np.arange(hours), n_drivers)
    n = driver.size

    # Persistent traits make drivers differ; a slow random walk on conv_rate
    # gives drift monitoring something real to see over two weeks.
    conv_base = rng.beta(4.0, 4.0, n_drivers)
    acc_base = rng.beta(6.0, 3.0, n_drivers)
    trips_base = rng.gamma(4.0, 100.0, n_drivers)
    drift = rng.normal(0.0, 0.002, (n_drivers, hours)).cumsum(axis=1).ravel()
    conv = np.clip(conv_base[driver] + drift + rng.normal(0.0, 0.04, n), 0.0, 1.0)
    acc = np.clip(acc_base[driver] + rng.normal(0.0, 0.04, n), 0.0, 1.0)
    trips_mean = trips_base[driver]
    trips = np.maximum(0, np.rint(trips_mean + rng.normal(0.0, 0.05, n) * trips_mean))

    start_us = end_us - hours * _HOUR
    jitter_s = rng.integers(0, 3600 - _MAX_LAG_S, n)
    event = start_us + slot * _HOUR + jitter_s * _SECOND
    created = event + rng.integers(1, _MAX_LAG_S + 1, n) * _SECOND

    # Every driver keeps its first hour, so each one has data to join labels to.
    keep = (rng.random(n) >= MISSING_RATE) | (slot == 0)
    driver, slot, event, created = driver[keep], slot[keep], event[keep], created[keep]
    conv, acc, trips = conv[keep], acc[keep], trips[keep].astype(np.int64)
    m = driver.size

    late = _sample(rng, np.flatnonzero(slot > 0), math.ceil(LATE_RATE * m))
    late_created = event[late] + rng.integers(3600, 24 * 3600, late.size) * _SECOND
    arrived = late_created <= end_us
    created[late[arrived]] = late_created[arrived]

    dup = _sample(rng, np.arange(m), math.ceil(DUPLICATE_RATE * m))

    fix = _sample(rng, np.arange(m), math.ceil(CORRECTION_RATE * m))
    fix_created = created[fix] + rng.integers(600, 6 * 3600, fix.size) * _SECOND
    fix_conv = np.clip(conv[fix] + rng.normal(0.0, 0.05, fix.size), 0.0, 1.0)
    fix_acc = np.clip(acc[fix] + rng.normal(0.0, 0.05, fix.size), 0.0, 1.0)
    # A non-zero change of the trip count makes every correction really differ.
    delta = rng.integers(1, 30, fix.size) * rng.choice(np.array([-1, 1]), fix.size)
    fix_trips = trips[fix] + delta
    fix_trips = np.where(fix_trips < 0, trips[fix] + np.abs(delta), fix_trips)
    fix_arrived = fix_created <= end_us
    fix, fix_created = fix[fix_arrived], fix_created[fix_arrived]
    fix_conv, fix_acc, fix_trips = (
        fix_conv[fix_arrived],
        fix_acc[fix_arrived],
        fix_trips[fix_arrived],
    )

    driver = np.concatenate([driver, driver[dup], driver[fix]])
    event = np.concatenate([event, event[dup], event[fix]])
    created = np.concatenate([created, created[dup], fix_created])
    conv = np.concatenate([conv, conv[dup], fix_conv])
    acc = np.concatenate([acc, acc[dup], fix_acc])
    trips = np.concatenate([trips, trips[dup], fix_trips])

    order = np.lexsort((event, driver, created))
    return pd.DataFrame(
        {
            "driver_id": (FIRST_DRIVER_ID + driver[order]).astype(np.int64),
            "datetime": _utc(event[order]),
            "created": _utc(created[order]),
            "conv_rate": conv[order].astype(np.float64),
            "acc_rate": acc[order].astype(np.float64),
            "avg_daily_trips": trips[order].astype(np.int64),
        }
    )


def generate_labels(
    driver_stats: pd.DataFrame, n_rows: int = 1000, random_state: RandomState = 0
) -> pd.DataFrame:
    """`n_rows` trip outcomes whose odds depend on the drivers' features at trip time.

    Each label picks a driver of `driver_stats` and a time between that driver's
    first event time and the last event time of the data. `trip_completed` is drawn
    from `completion_probability` of the point-in-time features: the driver's
    latest row with datetime <= event_timestamp, ties broken by the latest created.
    Columns: driver_id (int64), event_timestamp (datetime64[us, UTC]),
    trip_completed (int64, 0 or 1), sorted by event_timestamp.
    """
    n_rows = _count("n_rows", n_rows)
    features = latest_per_event_time(driver_stats)
    if features.empty:
        raise ValidationError("driver_stats has no rows to draw labels from")
    rng = np.random.default_rng(random_state)

    first = features.groupby("driver_id", sort=True)["datetime"].min()
    first_us = _micros(first)
    last_us = int(_micros(features["datetime"]).max())
    pick = rng.integers(0, first.size, n_rows)
    span_s = (last_us - first_us[pick]) // _SECOND
    event = first_us[pick] + rng.integers(0, span_s + 1) * _SECOND

    labels = pd.DataFrame(
        {
            "driver_id": first.index.to_numpy(dtype=np.int64)[pick],
            "event_timestamp": _utc(event),
        }
    ).sort_values(["event_timestamp", "driver_id"], kind="stable", ignore_index=True)
    at_time = pd.merge_asof(
        labels,
        features,
        left_on="event_timestamp",
        right_on="datetime",
        by="driver_id",
        direction="backward",
    )
    p = completion_probability(at_time)
    labels["trip_completed"] = (rng.random(n_rows) < p).astype(np.int64)
    return labels


def completion_probability(features: pd.DataFrame) -> np.ndarray:
    """The true probability that a trip completes, given the driver's features then."""
    logit = np.full(len(features), LABEL_INTERCEPT)
    for column, (weight, centre) in LABEL_WEIGHTS.items():
        logit += weight * (features[column].to_numpy(dtype=np.float64) - centre)
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))


def latest_per_event_time(driver_stats: pd.DataFrame) -> pd.DataFrame:
    """One row per (driver_id, datetime), the latest `created`; sorted by datetime.

    This is what a point-in-time join sees: duplicates collapse, corrections win.
    """
    missing = [c for c in DRIVER_STATS_COLUMNS if c not in driver_stats.columns]
    if missing:
        raise ValidationError(f"driver_stats lacks column {missing[0]!r}", column=missing[0])
    for column in ("datetime", "created"):
        if not isinstance(driver_stats[column].dtype, pd.DatetimeTZDtype):
            raise ValidationError(
                f"driver_stats column {column!r} must be timezone-aware datetimes, "
                f"got {driver_stats[column].dtype}",
                column=column,
            )
    frame = driver_stats.loc[:, list(DRIVER_STATS_COLUMNS)].copy()
    for column in ("datetime", "created"):
        frame[column] = frame[column].dt.tz_convert("UTC").dt.as_unit("us")
    frame = frame.sort_values(["datetime", "created"], kind="stable")
    return frame.drop_duplicates(["driver_id", "datetime"], keep="last").reset_index(drop=True)


def write_sample(
    out_dir: str | os.PathLike[str],
    n_drivers: int = 5,
    hours: int = 48,
    n_labels: int = 40,
    random_state: RandomState = 42,
) -> dict[str, Path]:
    """Write `driver_stats.csv` and `labels.csv` into `out_dir`; return their paths by name.

    Timestamps are ISO-8601 with `+00:00`, floats have 6 decimals. Each file is
    written to a temporary name and renamed, so a reader never sees half a file.
    """
    rng = np.random.default_rng(random_state)
    stats = generate_driver_stats(n_drivers, hours, random_state=rng)
    labels = generate_labels(stats, n_labels, random_state=rng)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"driver_stats": out / "driver_stats.csv", "labels": out / "labels.csv"}
    _write_csv(stats, paths["driver_stats"])
    _write_csv(labels, paths["labels"])
    return paths


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.copy()
    for column in text.columns:
        if isinstance(text[column].dtype, pd.DatetimeTZDtype):
            text[column] = _iso(text[column])
    tmp = path.with_name(f".{path.name}.tmp")
    text.to_csv(tmp, index=False, float_format="%.6f", lineterminator="\n")
    os.replace(tmp, path)


def _iso(column: pd.Series) -> pd.Series:
    utc = column.dt.tz_convert("UTC")
    fraction = ".%f" if (utc.dt.microsecond != 0).any() else ""
    return utc.dt.strftime(f"%Y-%m-%dT%H:%M:%S{fraction}") + "+00:00"


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _end_micros(end: datetime | None) -> int:
    stamp = pd.Timestamp(DEFAULT_END if end is None else end)
    if stamp.tzinfo is None:
        raise ValidationError(f"end must be timezone-aware (e.g. UTC), got {end!r}")
    return int((stamp - _EPOCH) // pd.Timedelta(microseconds=1))


def _sample(rng: np.random.Generator, population: np.ndarray, k: int) -> np.ndarray:
    k = min(k, population.size)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    return np.sort(rng.choice(population, k, replace=False))


def _utc(micros: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(micros, dtype=np.int64).view("datetime64[us]")).dt.tz_localize(
        "UTC"
    )


def _micros(times: pd.Series) -> np.ndarray:
    naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return np.asarray(naive, dtype="datetime64[us]").view(np.int64)
