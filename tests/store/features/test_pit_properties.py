"""Point-in-time joins: `get_historical_features` against a brute-force oracle.

The contract: for an entity row (key, ts) a view contributes its latest row with
ts - ttl <= event time <= ts; equal event times go to the latest created time,
then to the row ingested last; no such row gives a null.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_views import DRIVER, quality_view, stat_row, stats_view

from litemlops.errors import ValidationError
from litemlops.store import FeatureStore, FeatureView, Field

T0 = datetime(2024, 1, 1, 6, tzinfo=UTC)
STEP = timedelta(minutes=30)
GRID = 10  # feature event times are T0 + k * STEP for k in 0..GRID
KEYS = (1001, 1002, 1003, 1004)
NOW = datetime(2024, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Row:
    """One feature row as the oracle sees it (times aware UTC)."""

    key: int
    event: datetime
    created: datetime | None
    values: dict[str, Any]


@dataclass(frozen=True)
class ViewCase:
    view: FeatureView
    rows: tuple[Row, ...]  # in ingestion order
    batches: tuple[int, ...]  # sizes of the ingest() calls, summing to len(rows)


def oracle(rows: Sequence[Row], key: int, ts: datetime, ttl: timedelta | None) -> Row | None:
    """Brute force: the best row by (event, created, ingestion order) that ts may see."""
    best: tuple[tuple[Any, ...], Row] | None = None
    for order, row in enumerate(rows):
        if row.key != key or row.event > ts:
            continue
        if ttl is not None and row.event < ts - ttl:
            continue
        rank = (row.event, row.created or T0, order)
        if best is None or rank > best[0]:
            best = (rank, row)
    return best[1] if best else None


def as_tz(values: Sequence[datetime], tz: str | None) -> pd.Series:
    """Aware UTC datetimes -> a pandas column: naive (meaning UTC) or in zone `tz`."""
    if tz is None:
        return pd.Series(pd.to_datetime([v.astimezone(UTC).replace(tzinfo=None) for v in values]))
    return pd.Series(pd.to_datetime(values, utc=True).tz_convert(ZoneInfo(tz)))


def frame(case: ViewCase, rows: Sequence[Row], tz: str | None) -> pd.DataFrame:
    view = case.view
    data: dict[str, Any] = {
        "driver_id": pd.Series([r.key for r in rows], dtype="int64"),
        view.timestamp_field: as_tz([r.event for r in rows], tz),
    }
    if view.created_timestamp_field:
        data[view.created_timestamp_field] = as_tz([r.created or r.event for r in rows], tz)
    for item in view.schema:
        data[item.name] = pd.Series(
            [r.values[item.name] for r in rows],
            dtype="float64" if item.dtype == "float64" else "int64",
        )
    return pd.DataFrame(data)


def ingest(fs: FeatureStore, case: ViewCase, tz: str | None) -> None:
    start = 0
    for size in case.batches:
        fs.ingest(case.view.name, frame(case, case.rows[start : start + size], tz))
        start += size


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and np.isnan(value)
    )


def same(got: Any, want: Any) -> bool:
    if missing(want):
        return missing(got)
    return not missing(got) and got == want


# -- strategies -------------------------------------------------------------------------

TTLS = (None, timedelta(minutes=30), timedelta(hours=1), timedelta(minutes=90), timedelta(hours=3))


@st.composite
def view_cases(draw: st.DrawFn, view: FeatureView, uid_base: int) -> ViewCase:
    has_created = view.created_timestamp_field is not None
    size = draw(st.integers(0, 30))  # drawn apart so tables are often large, not mostly tiny
    specs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(KEYS),
                st.integers(0, GRID),
                st.integers(0, 3),  # created step: few values so ties on created happen too
                st.integers(0, 5).map(lambda x: x == 0),  # the float feature is null
                st.integers(0, 2).map(lambda x: x == 0),  # repeat the previous key and time
            ),
            min_size=size,
            max_size=size,
        )
    )
    floats, ints = (
        [f.name for f in view.schema if f.dtype == "float64"],
        [f.name for f in view.schema if f.dtype == "int64"],
    )
    rows: list[Row] = []
    for i, (key, step, created, null, repeat) in enumerate(specs):
        if repeat and rows:  # equal event times for one key, so created and order decide
            key, step = rows[-1].key, (rows[-1].event - T0) // STEP
        uid = uid_base + i  # values identify the row, so a mismatch says which row won
        values: dict[str, Any] = {name: None if null else uid + 0.5 for name in floats}
        values.update({name: uid for name in ints})
        rows.append(
            Row(key, T0 + step * STEP, T0 + created * STEP if has_created else None, values)
        )
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(rows) - 1, 1)), max_size=2))))
    bounds = [0, *(c for c in cuts if c < len(rows)), len(rows)]
    batches = tuple(b - a for a, b in itertools.pairwise(bounds) if b > a)
    return ViewCase(view, tuple(rows), batches)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    ttl_stats = draw(st.sampled_from(TTLS))
    ttl_quality = draw(st.sampled_from([t for t in TTLS if t != ttl_stats]))
    cases = (
        draw(view_cases(stats_view(ttl_stats), 0)),
        draw(view_cases(quality_view(ttl_quality), 1000)),
    )
    size = draw(st.integers(1, 16))
    entity_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from((*KEYS, 1005)),  # 1005 never has feature rows
                st.integers(-2, GRID + 4),  # some rows lie before any feature row
                # exactly on the grid, or just after/before it: hits both ttl edges
                st.sampled_from((timedelta(0), US, -US, STEP / 2)),
            ),
            min_size=size,
            max_size=size,
        )
    )
    return {
        "cases": cases,
        "entity_rows": [(k, T0 + s * STEP + off) for k, s, off in entity_rows],
        "feature_tz": draw(st.sampled_from((None, "UTC", "Asia/Kolkata"))),
        "entity_tz": draw(st.sampled_from((None, "UTC", "America/New_York"))),
        "string_index": draw(st.booleans()),
        "full_feature_names": draw(st.booleans()),
    }


@pytest.mark.slow
@settings(max_examples=examples(80), deadline=None)
@given(scenarios())
def test_historical_features_equal_brute_force_point_in_time_join(scenario: dict[str, Any]) -> None:
    cases: tuple[ViewCase, ...] = scenario["cases"]
    entity_rows: list[tuple[int, datetime]] = scenario["entity_rows"]
    n = len(entity_rows)
    entity_df = pd.DataFrame(
        {
            "driver_id": [k for k, _ in entity_rows],
            "event_timestamp": as_tz([ts for _, ts in entity_rows], scenario["entity_tz"]),
            "label": [i % 2 for i in range(n)],
        }
    )
    entity_df.index = pd.Index(
        [f"r{i}" for i in range(n)] if scenario["string_index"] else range(10 + n, 10, -1)
    )
    original = entity_df.copy()
    full = scenario["full_feature_names"]
    refs = [f"{c.view.name}:{f.name}" for c in cases for f in c.view.schema]
    outputs = [r.replace(":", "__") if full else r.split(":")[1] for r in refs]

    with FeatureStore(":memory:", clock=lambda: NOW) as fs:
        fs.apply([DRIVER, *(c.view for c in cases)])
        for case in cases:
            ingest(fs, case, scenario["feature_tz"])
        out = fs.get_historical_features(entity_df, refs, full_feature_names=full)

    assert list(out.columns) == [*original.columns, *outputs]
    pd.testing.assert_frame_equal(out[list(original.columns)], original)
    pd.testing.assert_frame_equal(entity_df, original)  # the input is not modified
    wrong = []
    for pos, (key, ts) in enumerate(entity_rows):
        for case in cases:
            match = oracle(case.rows, key, ts, case.view.ttl)
            for item in case.view.schema:
                column = f"{case.view.name}__{item.name}" if full else item.name
                want = None if match is None else match.values[item.name]
                got = out[column].iloc[pos]
                if not same(got, want):
                    wrong.append((pos, key, ts.isoformat(), column, got, want))
    assert not wrong, f"(row, key, ts, column, got, expected): {wrong}"


# -- examples ---------------------------------------------------------------------------


def entities(rows: Sequence[tuple[int, datetime]], **extra: Sequence[Any]) -> pd.DataFrame:
    data: dict[str, Any] = {
        "driver_id": [k for k, _ in rows],
        "event_timestamp": pd.to_datetime([ts for _, ts in rows], utc=True),
    }
    data.update(extra)
    return pd.DataFrame(data)


def apply_with_rows(fs: FeatureStore, view: FeatureView, rows: Sequence[dict[str, Any]]) -> None:
    fs.apply([DRIVER, view])
    fs.ingest(view.name, pd.DataFrame(rows))


@pytest.mark.parametrize("ttl", [None, timedelta(days=30)])
def test_course_shaped_labels_between_early_and_late_rows_all_get_the_early_row(
    store: FeatureStore, ttl: timedelta | None
) -> None:
    early = datetime(2021, 4, 12, 7, tzinfo=UTC)
    late_start = early + timedelta(days=20)
    drivers = [1001, 1002, 1003, 1004, 1005]
    rows = [stat_row(d, early, 0.1 * (i + 1)) for i, d in enumerate(drivers)]
    rows += [stat_row(d, late_start + timedelta(hours=h), 0.9) for h in range(48) for d in drivers]
    apply_with_rows(store, stats_view(ttl), rows)
    labels = [(drivers[i % 5], early + timedelta(days=1 + i, minutes=7 * i)) for i in range(10)]
    entity_df = entities(labels, label_driver_reported_satisfaction=list(range(10)))

    out = store.get_historical_features(
        entity_df, ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"]
    )

    expected_rate = [0.1 * (drivers.index(k) + 1) for k, _ in labels]
    assert out["conv_rate"].tolist() == pytest.approx(expected_rate)
    assert out["avg_daily_trips"].tolist() == [int(r * 100) for r in expected_rate]
    assert out["label_driver_reported_satisfaction"].tolist() == list(range(10))


def test_row_exactly_at_entity_timestamp_is_included(store: FeatureStore, t0: datetime) -> None:
    apply_with_rows(store, stats_view(timedelta(hours=1)), [stat_row(1001, t0, 0.5)])

    out = store.get_historical_features(
        entities([(1001, t0), (1001, t0 - US)]), ["driver_stats:conv_rate"]
    )

    assert out["conv_rate"].iloc[0] == 0.5
    assert np.isnan(out["conv_rate"].iloc[1])


@pytest.mark.parametrize("view_factory", [stats_view, quality_view], ids=["created", "no_created"])
def test_row_exactly_at_ttl_boundary_is_included_one_microsecond_older_is_not(
    store: FeatureStore, t0: datetime, view_factory: Any
) -> None:
    ttl = timedelta(hours=2)
    view = view_factory(ttl)
    row = {"driver_id": 1001, view.timestamp_field: t0}
    if view.created_timestamp_field:
        row[view.created_timestamp_field] = t0
    row.update({f.name: 7 if f.dtype == "int64" else 0.7 for f in view.schema})
    apply_with_rows(store, view, [row])
    feature = f"{view.name}:{view.schema[0].name}"

    out = store.get_historical_features(
        entities([(1001, t0 + ttl), (1001, t0 + ttl + US), (1001, t0 + ttl - US)]), [feature]
    )

    column = out[view.schema[0].name]
    assert column.iloc[0] == 0.7
    assert np.isnan(column.iloc[1])
    assert column.iloc[2] == 0.7


def test_ttl_boundary_is_exact_for_a_ttl_with_milliseconds(
    store: FeatureStore, t0: datetime
) -> None:
    ttl = timedelta(seconds=1, milliseconds=1)
    apply_with_rows(store, stats_view(ttl), [stat_row(1001, t0, 0.5)])

    out = store.get_historical_features(entities([(1001, t0 + ttl)]), ["driver_stats:conv_rate"])

    assert out["conv_rate"].iloc[0] == 0.5


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Europe/Berlin"])
def test_aware_non_utc_entity_timestamps_are_converted_to_utc(
    store: FeatureStore, t0: datetime, zone: str
) -> None:
    # Rows one hour apart: reading local wall time as UTC would pick another row or none.
    rows = [stat_row(1001, t0 + timedelta(hours=h), float(h)) for h in range(0, 24)]
    apply_with_rows(store, stats_view(None), rows)
    when = (t0 + timedelta(hours=12, minutes=30)).astimezone(ZoneInfo(zone))
    entity_df = pd.DataFrame(
        {"driver_id": [1001], "event_timestamp": pd.Series([when]).dt.tz_convert(ZoneInfo(zone))}
    )
    assert str(entity_df["event_timestamp"].dt.tz) == zone

    out = store.get_historical_features(entity_df, ["driver_stats:conv_rate"])

    assert out["conv_rate"].iloc[0] == 12.0
    assert out["event_timestamp"].iloc[0] == pd.Timestamp(when)  # the column is kept as given


def test_naive_timestamps_are_taken_as_utc(store: FeatureStore, t0: datetime) -> None:
    rows = [stat_row(1001, t0 + timedelta(hours=h), float(h)) for h in range(0, 24)]
    naive_rows = [
        {
            **r,
            "datetime": r["datetime"].replace(tzinfo=None),
            "created": r["created"].replace(tzinfo=None),
        }
        for r in rows
    ]
    store.apply([DRIVER, stats_view(None)])
    store.ingest("driver_stats", pd.DataFrame(naive_rows))
    at = (t0 + timedelta(hours=5, minutes=1)).replace(tzinfo=None)
    naive = pd.DataFrame({"driver_id": [1001], "event_timestamp": [at]})
    aware = pd.DataFrame(
        {"driver_id": [1001], "event_timestamp": pd.to_datetime([at]).tz_localize("UTC")}
    )

    out_naive = store.get_historical_features(naive, ["driver_stats:conv_rate"])
    out_aware = store.get_historical_features(aware, ["driver_stats:conv_rate"])

    assert out_naive["conv_rate"].iloc[0] == out_aware["conv_rate"].iloc[0] == 5.0


def test_full_feature_names_prefix_the_view_and_allow_equal_feature_names(
    store: FeatureStore, t0: datetime
) -> None:
    other = FeatureView(
        "driver_other", entities=[DRIVER], schema=[Field("conv_rate", "float64")], ttl=None
    )
    store.apply([DRIVER, stats_view(None), other])
    store.ingest("driver_stats", pd.DataFrame([stat_row(1001, t0, 0.25)]))
    store.ingest(
        "driver_other",
        pd.DataFrame([{"driver_id": 1001, "event_timestamp": t0, "conv_rate": 0.75}]),
    )
    entity_df = entities([(1001, t0 + timedelta(hours=1))], label=[1])

    out = store.get_historical_features(
        entity_df, ["driver_stats:conv_rate", "driver_other:conv_rate"], full_feature_names=True
    )

    assert list(out.columns) == [
        "driver_id",
        "event_timestamp",
        "label",
        "driver_stats__conv_rate",
        "driver_other__conv_rate",
    ]
    assert out["driver_stats__conv_rate"].iloc[0] == 0.25
    assert out["driver_other__conv_rate"].iloc[0] == 0.75


def test_equal_output_names_without_full_feature_names_are_an_error(
    store: FeatureStore, t0: datetime
) -> None:
    other = FeatureView(
        "driver_other", entities=[DRIVER], schema=[Field("conv_rate", "float64")], ttl=None
    )
    store.apply([DRIVER, stats_view(None), other])
    entity_df = entities([(1001, t0)])

    with pytest.raises(ValidationError, match="full_feature_names"):
        store.get_historical_features(
            entity_df, ["driver_stats:conv_rate", "driver_other:conv_rate"]
        )


def test_entity_column_named_like_a_feature_is_an_error(store: FeatureStore, t0: datetime) -> None:
    store.apply([DRIVER, stats_view(None)])
    entity_df = entities([(1001, t0)], conv_rate=[0.0])

    with pytest.raises(ValidationError, match="conv_rate"):
        store.get_historical_features(entity_df, ["driver_stats:conv_rate"])


def test_never_returns_a_value_from_after_the_entity_timestamp(
    store: FeatureStore, t0: datetime
) -> None:
    # The feature value is the row's event hour, so a future value shows as value > hour.
    hours = [0, 3, 4, 9, 10, 17]
    rows = [stat_row(k, t0 + timedelta(hours=h), float(h)) for h in hours for k in (1001, 1002)]
    apply_with_rows(store, stats_view(None), rows)
    probes = [
        (k, t0 + timedelta(hours=h, minutes=m))
        for h in range(-1, 20)
        for m in (0, 59)
        for k in (1001, 1002)
    ]

    out = store.get_historical_features(entities(probes), ["driver_stats:conv_rate"])

    for (_, ts), got in zip(probes, out["conv_rate"], strict=True):
        hour = (ts - t0) / timedelta(hours=1)
        seen = [h for h in hours if h <= hour]
        if seen:
            assert got == max(seen)
        else:
            assert np.isnan(got)


def test_equal_event_times_go_to_latest_created_then_to_last_ingested(
    store: FeatureStore, t0: datetime
) -> None:
    store.apply([DRIVER, stats_view(None), quality_view(None)])
    created_late = t0 + timedelta(hours=2)
    # 1001: the later created time wins although it was ingested first.
    store.ingest("driver_stats", pd.DataFrame([stat_row(1001, t0, 0.9, created_late)]))
    store.ingest("driver_stats", pd.DataFrame([stat_row(1001, t0, 0.1, t0)]))
    # 1002: equal event and created times: the later ingest() call wins.
    store.ingest("driver_stats", pd.DataFrame([stat_row(1002, t0, 0.1, t0)]))
    store.ingest("driver_stats", pd.DataFrame([stat_row(1002, t0, 0.2, t0)]))
    # 1003: equal in both within one call: the later position wins.
    store.ingest(
        "driver_stats", pd.DataFrame([stat_row(1003, t0, 0.3, t0), stat_row(1003, t0, 0.4, t0)])
    )
    # Without a created field, the last ingested row wins.
    store.ingest(
        "driver_quality",
        pd.DataFrame(
            [
                {"driver_id": 1001, "event_timestamp": t0, "acc_rate": 0.5, "trips_today": 5},
                {"driver_id": 1001, "event_timestamp": t0, "acc_rate": 0.6, "trips_today": 6},
            ]
        ),
    )
    store.ingest(
        "driver_quality",
        pd.DataFrame(
            [{"driver_id": 1001, "event_timestamp": t0, "acc_rate": 0.7, "trips_today": 7}]
        ),
    )
    later = t0 + timedelta(hours=1)

    out = store.get_historical_features(
        entities([(1001, later), (1002, later), (1003, later)]),
        ["driver_stats:conv_rate", "driver_quality:acc_rate"],
    )

    assert out["conv_rate"].tolist() == [0.9, 0.2, 0.4]
    assert out["acc_rate"].iloc[0] == 0.7


def test_several_views_keep_entity_order_index_and_labels(
    store: FeatureStore, t0: datetime
) -> None:
    store.apply([DRIVER, stats_view(timedelta(hours=1)), quality_view(None)])
    store.ingest("driver_stats", pd.DataFrame([stat_row(1002, t0, 0.2), stat_row(1001, t0, 0.1)]))
    store.ingest(
        "driver_quality",
        pd.DataFrame(
            [{"driver_id": 1001, "event_timestamp": t0, "acc_rate": 0.5, "trips_today": 5}]
        ),
    )
    later = t0 + timedelta(hours=3)  # outside driver_stats' ttl, inside driver_quality's
    entity_df = entities(
        [(1002, t0), (1001, later), (1001, t0), (1003, t0)], label=[True, False, True, False]
    )
    entity_df.index = pd.Index(["d", "c", "b", "a"], name="row")

    out = store.get_historical_features(
        entity_df, ["driver_quality:trips_today", "driver_stats:conv_rate"]
    )

    assert list(out.index) == ["d", "c", "b", "a"]
    assert out.index.name == "row"
    assert out["label"].tolist() == [True, False, True, False]
    assert out["driver_id"].tolist() == [1002, 1001, 1001, 1003]
    assert out["conv_rate"].tolist()[0] == 0.2
    assert np.isnan(out["conv_rate"].iloc[1])
    assert out["conv_rate"].iloc[2] == 0.1
    assert np.isnan(out["conv_rate"].iloc[3])
    trips = out["trips_today"].tolist()  # an int column with missing values stays Int64
    assert out["trips_today"].dtype == "Int64"
    assert trips[0] is pd.NA and trips[1:3] == [5, 5] and trips[3] is pd.NA


def test_empty_entity_df_gives_an_empty_frame_with_the_feature_columns(
    store: FeatureStore, t0: datetime
) -> None:
    apply_with_rows(store, stats_view(timedelta(hours=1)), [stat_row(1001, t0, 0.5)])

    out = store.get_historical_features(entities([]), ["driver_stats:conv_rate"])

    assert list(out.columns) == ["driver_id", "event_timestamp", "conv_rate"]
    assert len(out) == 0
