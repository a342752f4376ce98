"""The strategies' promises, checked against the real store and `enforce`."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import event, given, settings
from hypothesis import strategies as st

from litemlops.demo import definitions as demo
from litemlops.errors import SignatureError, ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field
from litemlops.store.tracking.signature import ColSpec, Signature, enforce
from litemlops.testing import (
    FixedClock,
    feature_frames,
    feature_rows,
    invalid_feature_rows,
    invalid_model_inputs,
    model_inputs,
)

EXAMPLES = settings(max_examples=examples(20), deadline=None)

shop = Entity("shop", join_keys=["shop_id"], value_type="string")
shop_daily = FeatureView(
    "shop_daily",
    entities=[shop],
    schema=[
        Field("open", "bool"),
        Field("city", "string"),
        Field("rating", "float32"),
        Field("orders", "int32"),
        Field("last_order", "timestamp"),
    ],
)
# Composite key from two entities, one named only by name (so entity= is needed),
# with int32 keys declared in the schema.
zone = Entity("zone", join_keys=["zone_code"], value_type="string")
rider = Entity("rider", join_keys=["city_id", "rider_id"], value_type="int64")
trips = FeatureView(
    "rider_zone_trips",
    entities=["rider", zone],
    schema=[Field("city_id", "int32"), Field("fare", "float64"), Field("trips", "int64")],
    ttl=timedelta(days=1),
    timestamp_field="ts",
    created_timestamp_field="loaded_at",
)
VIEWS = {
    "demo": (demo.driver_stats, [demo.driver]),
    "string_key": (shop_daily, [shop]),
    "composite_key": (trips, [rider, zone]),
}
ALL_VIEWS = pytest.mark.parametrize("name", sorted(VIEWS))


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[FeatureStore, FixedClock]]:
    """One store for the module: opening one per example would dominate the run time."""
    clock = FixedClock()
    with FeatureStore(":memory:", clock=clock) as store:
        store.apply([demo.driver, shop, rider, zone])
        yield store, clock


_fresh = itertools.count()


def fresh_view(store: FeatureStore, name: str) -> FeatureView:
    """The view under a name of its own, so each example starts from an empty table."""
    view = dataclasses.replace(VIEWS[name][0], name=f"{VIEWS[name][0].name}_{next(_fresh)}")
    store.apply(view)
    return view


def rows_strategy(name: str, **options: Any) -> st.SearchStrategy[list[dict[str, Any]]]:
    view, entities = VIEWS[name]
    return feature_rows(view, entity=entities, **options)


def same(expected: Any, actual: Any) -> bool:
    if expected is None:
        return actual is None or bool(pd.isna(actual))
    if actual is None or (not isinstance(actual, str) and pd.isna(actual)):
        return False
    if isinstance(expected, bool):
        return bool(actual) == expected
    if isinstance(expected, datetime):
        return pd.Timestamp(actual) == expected
    if isinstance(expected, float):
        return float(actual) == expected
    return bool(actual == expected)


def winners(
    view: FeatureView, keys: list[str], rows: list[dict[str, Any]], *, by_time: bool
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Oracle: per key (and event time when `by_time`), the row a read must return.

    The latest event time wins, then the latest created time, then the last ingested.
    """
    best: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        group = tuple(row[k] for k in keys)
        if by_time:
            group += (row[view.timestamp_field],)
        created = row[view.created_timestamp_field] if view.created_timestamp_field else 0
        rank = (row[view.timestamp_field], created, i)
        if group not in best or rank > best[group][0]:
            best[group] = (rank, row)
    return {group: row for group, (_, row) in best.items()}


def check_reads_back(
    shared: tuple[FeatureStore, FixedClock], name: str, rows: list[dict[str, Any]], batch: Any
) -> None:
    store, clock = shared
    view = fresh_view(store, name)
    assert store.ingest(view.name, batch).rows == len(rows)
    if not rows:
        return
    keys = [k for entity in VIEWS[name][1] for k in entity.keys]
    features = [f.name for f in view.schema if f.name not in keys]
    refs = [f"{view.name}:{f}" for f in features]

    # At each row's own event time a read gives that row, or the one winning its tie.
    at_own_time = winners(view, keys, rows, by_time=True)
    entity_df = pd.DataFrame(
        {
            **{k: pd.Series([g[i] for g in at_own_time], dtype=object) for i, k in enumerate(keys)},
            "event_timestamp": [g[-1] for g in at_own_time],
        }
    )
    out = store.get_historical_features(entity_df, refs)
    for i, row in enumerate(at_own_time.values()):
        for f in features:
            assert same(row[f], out[f].iloc[i]), (f, row, out.iloc[i].to_dict())

    end = max(r[view.timestamp_field] for r in rows)
    clock.set(end)  # its time has come: an end ahead of the clock is refused
    store.materialize(end=end, views=[view.name])
    for group, row in winners(view, keys, rows, by_time=False).items():
        clock.set(row[view.timestamp_field])  # age 0: within any ttl
        got = store.get_online_features(refs, [dict(zip(keys, group, strict=True))])
        for f in features:
            assert same(row[f], got[f][0]), (f, row, got)


@ALL_VIEWS
@EXAMPLES
@given(data=st.data())
def test_feature_rows_ingest_and_read_back_offline_and_online(shared, name, data):
    rows = data.draw(rows_strategy(name))
    check_reads_back(shared, name, rows, rows)


@ALL_VIEWS
@settings(max_examples=examples(10), deadline=None)
@given(data=st.data())
def test_feature_frames_ingest_and_read_back_like_the_rows(shared, name, data):
    view, entities = VIEWS[name]
    frame = data.draw(feature_frames(view, entity=entities, min_size=0, max_size=20))
    check_reads_back(shared, name, rows_of(frame), frame)


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as plain Python values, None for any kind of missing value."""

    def plain(value: Any) -> Any:
        if value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
            return None
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    records = frame.astype(object).to_dict("records")
    return [{column: plain(value) for column, value in r.items()} for r in records]


#: Each declared type's dtype in a frame the store returns, with or without nulls.
READ_DTYPES = {
    "int32": pd.Int32Dtype(),
    "int64": pd.Int64Dtype(),
    "float32": np.dtype("float32"),
    "float64": np.dtype("float64"),
    "bool": pd.BooleanDtype(),
    "string": pd.StringDtype(),
    "timestamp": pd.DatetimeTZDtype("us", "UTC"),
}
every_dtype = FeatureView(
    "every_dtype", entities=[demo.driver], schema=[Field(f"f_{d}", d) for d in READ_DTYPES]
)
EXACT_VALUES = {
    "int32": st.integers(-(2**31), 2**31 - 1),
    # Beyond 2**53 a float64 cannot hold every integer: each would round.
    "int64": st.one_of(
        st.integers(2**53 + 1, 2**63 - 1),
        st.integers(-(2**63), -(2**53) - 1),
        st.integers(-(2**63), 2**63 - 1),
    ),
    "float32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "float64": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "string": st.text(max_size=10),
    "timestamp": st.datetimes(
        datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
}


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data())
def test_frames_out_of_the_store_keep_every_declared_type_and_its_exact_values(shared, data):
    store, clock = shared
    view = dataclasses.replace(every_dtype, name=f"every_dtype_{next(_fresh)}")
    store.apply(view)
    nulls, absent = data.draw(st.booleans(), "nulls"), data.draw(st.booleans(), "absent")
    event(f"nulls={nulls}, an entity without rows={absent}")
    value = {
        d: st.one_of(EXACT_VALUES[d], st.none()) if nulls else EXACT_VALUES[d]
        for d in READ_DTYPES
    }
    drawn = data.draw(st.lists(st.fixed_dictionaries(value), max_size=5), "rows")
    t = datetime(2025, 6, 1, tzinfo=UTC)
    rows = [
        {"driver_id": i, "event_timestamp": t, **{f"f_{d}": v for d, v in row.items()}}
        for i, row in enumerate(drawn)
    ]
    if rows:
        store.ingest(view.name, rows)
    expected = [*drawn, *([dict.fromkeys(READ_DTYPES)] if absent else [])]
    entity_df = pd.DataFrame(
        {
            "driver_id": pd.Series(range(len(expected)), dtype="int64"),
            "event_timestamp": pd.Series([t] * len(expected), dtype="datetime64[us, UTC]"),
        }
    )
    refs = [f"{view.name}:f_{d}" for d in READ_DTYPES]
    check_typed(store.get_historical_features(entity_df, refs), expected)
    clock.set(t)  # the module's clock is where the last test left it: maybe before t
    store.materialize(end=t, views=[view.name])
    entity_rows = [{"driver_id": i} for i in range(len(expected))]
    check_typed(store.get_online_features(refs, entity_rows).to_df(), expected)


def check_typed(out: pd.DataFrame, expected: list[dict[str, Any]]) -> None:
    """Each `f_<dtype>` column has its declared type's dtype and exactly the values."""
    for d, dtype in READ_DTYPES.items():
        column = out[f"f_{d}"]
        # The declared type decides the dtype, not whether this answer holds a null.
        assert column.dtype == dtype, (d, column.dtype)
        for i, row in enumerate(expected):
            want, got = row[d], column.iloc[i]
            if want is None and d.startswith("float"):
                assert np.isnan(got), (d, i, got)
            elif want is None:
                assert got is (pd.NaT if d == "timestamp" else pd.NA), (d, i, got)
            elif d == "timestamp":
                assert got == pd.Timestamp(want) and got.tzinfo is not None, (d, i, got)
            else:
                assert got == want, (d, i, want, got)


@ALL_VIEWS
@settings(max_examples=examples(15), deadline=None)
@given(data=st.data())
def test_feature_rows_stay_in_the_window_and_keep_keys_and_times_non_null(name, data):
    start = datetime(2024, 5, 1, tzinfo=UTC)
    end = start + timedelta(hours=1)
    view, entities = VIEWS[name]
    rows = data.draw(rows_strategy(name, start=start, end=end, min_size=3, max_size=5))
    assert 3 <= len(rows) <= 5
    times = [view.timestamp_field, *filter(None, [view.created_timestamp_field])]
    keys = [k for entity in entities for k in entity.keys]
    for row in rows:
        assert all(row[k] is not None for k in keys)
        for field in times:
            assert row[field].tzinfo is UTC and start <= row[field] <= end
        for value in row.values():
            assert not (isinstance(value, float) and not math.isfinite(value))


def refusal(reason: str) -> str:
    """The message ingest gives for the defect `invalid_feature_rows` drew, as a pattern."""
    kind = reason.split(":")[0].split(" '")[0]
    if kind == "not a mapping":
        (row,) = re.findall(r"row (\d+)", reason)
        return f"row {row} is not a mapping"
    name = re.escape(re.search(r"'[^']*'", reason).group())
    beyond = rf"column {name} row \d+ has -?\d+, beyond 64-bit integers"
    return {
        "missing column": rf"missing column\(s\) \[{name}\]",
        "extra column": rf"unexpected column\(s\) \[{name}\]|{beyond}",
        "null key": rf"column {name} is a key or timestamp and has a null",
        "null timestamp": rf"column {name} is a key or timestamp and has a null",
        "wrong type": rf"column {name} (expects|mixes types)|rows mix incompatible|{beyond}",
        "not finite": rf"column {name} expects float\d+; row \d+ has -?inf \(not finite\)",
        "out of range": rf"column {name} expects \w+; row \d+ has .*\(out of range|{beyond}",
    }[kind]


@ALL_VIEWS
@EXAMPLES
@given(data=st.data())
def test_every_invalid_batch_is_refused_and_nothing_is_written(shared, name, data):
    store, _ = shared
    view = fresh_view(store, name)
    good = data.draw(rows_strategy(name, max_size=5))
    bad, reason = data.draw(invalid_feature_rows(view, entity=VIEWS[name][1], max_size=8))
    event(reason.split(":")[0].split(" '")[0])
    store.ingest(view.name, good)
    before = store.describe(view.name)
    with pytest.raises(ValidationError, match=refusal(reason)):
        store.ingest(view.name, bad)
    after = store.describe(view.name)
    assert (after["offline_rows"], after["batches"]) == (before["offline_rows"], before["batches"])


def test_a_view_naming_an_entity_it_does_not_carry_needs_entity():
    with pytest.raises(ValueError, match="entity=") as info:
        feature_rows(trips)
    assert "rider" in str(info.value)


def test_an_empty_list_of_rows_is_never_generated_since_ingest_refuses_it():
    with pytest.raises(ValueError, match="min_size >= 1"):
        feature_rows(demo.driver_stats, min_size=0)


def test_naive_or_inverted_windows_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        feature_rows(demo.driver_stats, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="after end"):
        feature_rows(demo.driver_stats, start=datetime(2027, 1, 1, tzinfo=UTC))


SIGNATURES = {
    "numbers": Signature(
        (ColSpec("conv_rate", "float64"), ColSpec("acc_rate", "float32"),
         ColSpec("avg_daily_trips", "int64"))
    ),
    "small_types": Signature(
        (ColSpec("a", "int8"), ColSpec("b", "uint16"), ColSpec("c", "float16"),
         ColSpec("d", "uint64"), ColSpec("e", "int32"))
    ),
    "mixed": Signature(
        (ColSpec("flag", "bool"), ColSpec("city", "string"), ColSpec("seen", "datetime"),
         ColSpec("tier", "category"), ColSpec("score", "float64"),
         ColSpec("wait", "timedelta64[ns]"))
    ),
}
ALL_SIGNATURES = pytest.mark.parametrize("sig", sorted(SIGNATURES))


@ALL_SIGNATURES
@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_model_inputs_pass_enforce_unchanged(sig, data):
    signature = SIGNATURES[sig]
    frame = data.draw(model_inputs(signature, min_rows=1, max_rows=8))
    assert 1 <= len(frame) <= 8
    out = enforce(signature, frame)
    assert list(out.columns) == list(signature.input_names)
    pd.testing.assert_frame_equal(out, frame)


def enforce_refusal(reason: str) -> str:
    """The message `enforce` gives for the defect `invalid_model_inputs` drew, as a pattern."""
    name = re.escape(re.search(r"'[^']*'", reason).group())
    if reason.startswith("missing column"):
        return rf"model input is missing column\(s\) \[{name}\]"
    if reason.startswith("repeated column"):
        return rf"model input repeats column {name}$"
    dtype = re.escape(reason.rsplit("(", 1)[1].rstrip(")"))
    return rf"column {name} (is .+|has missing values) and the model expects {dtype}(;|$)"


@ALL_SIGNATURES
@settings(max_examples=examples(50), deadline=None)
@given(data=st.data())
def test_invalid_model_inputs_are_refused(sig, data):
    frame, reason = data.draw(invalid_model_inputs(SIGNATURES[sig]))
    event(reason.split(":")[0].split(" '")[0])
    with pytest.raises(SignatureError, match=enforce_refusal(reason)):
        enforce(SIGNATURES[sig], frame)


def test_a_dtype_without_a_strategy_is_refused_when_asked():
    with pytest.raises(ValueError, match="'blob'"):
        model_inputs(Signature((ColSpec("x", "blob"),)))
