"""Explicit materialize windows never make a later incremental run skip rows."""

from datetime import UTC, datetime, timedelta

import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops.store import Entity, FeatureStore, FeatureView, Field
from litemlops.store.features.materialize import next_watermark

T = datetime(2025, 1, 1)  # naive UTC, as the watermark stores it
driver = Entity("driver", join_keys=["driver_id"])
view = FeatureView("ds", entities=[driver], schema=[Field("a", "float64")],
                   created_timestamp_field="created")


def hours(n: int) -> datetime:
    return T + timedelta(hours=n)


def test_incremental_mark_moves_to_the_new_end_and_newest_row():
    assert next_watermark((None, 0), None, hours(5), 7) == (hours(5), 7)
    assert next_watermark((hours(5), 7), None, hours(9), 12) == (hours(9), 12)


def test_incremental_with_an_earlier_end_keeps_the_mark():
    assert next_watermark((hours(5), 7), None, hours(2), 12) == (hours(5), 7)


def test_window_never_vouches_for_rows_before_its_start():
    # first ever run is a window: the end moves, the sequence does not
    assert next_watermark((None, 0), hours(1), hours(5), 7) == (hours(5), 0)
    # a window starting at or before the mark extends it without a gap
    assert next_watermark((hours(5), 7), hours(3), hours(9), 12) == (hours(9), 7)
    assert next_watermark((hours(5), 7), hours(5), hours(4), 12) == (hours(5), 7)
    # a window after the mark would leave a gap: the mark stays
    assert next_watermark((hours(5), 7), hours(6), hours(9), 12) == (hours(5), 7)


row = st.fixed_dictionaries({
    "driver_id": st.integers(1, 3),
    "event_timestamp": st.integers(0, 48).map(lambda h: hours(h).replace(tzinfo=UTC)),
    "created": st.integers(0, 3).map(lambda h: hours(h).replace(tzinfo=UTC)),
    "a": st.integers(0, 999).map(float),
})
window = st.tuples(st.integers(0, 48), st.integers(0, 48)).map(sorted)
op = st.one_of(
    st.tuples(st.just("ingest"), st.lists(row, min_size=1, max_size=4)),
    st.tuples(st.just("incremental"), st.integers(0, 48)),
    st.tuples(st.just("window"), window),
)


@pytest.mark.slow
@settings(max_examples=examples(60), deadline=None)
@given(st.lists(op, max_size=10))
def test_after_any_mix_of_windows_an_incremental_run_serves_the_latest_rows(ops):
    now = hours(60).replace(tzinfo=UTC)
    ingested: list[dict] = []
    with FeatureStore(":memory:", clock=lambda: now) as fs:
        fs.apply([driver, view])
        for kind, arg in ops:
            if kind == "ingest":
                fs.ingest("ds", arg)
                ingested.extend(arg)
            elif kind == "incremental":
                fs.materialize(end=hours(arg).replace(tzinfo=UTC))
            else:
                start, end = arg
                fs.materialize(start=hours(start).replace(tzinfo=UTC),
                               end=hours(end).replace(tzinfo=UTC))
        fs.materialize()
        got = fs.get_online_features(["ds:a"], [{"driver_id": k} for k in (1, 2, 3)])["a"]
    expected = []
    for key in (1, 2, 3):
        mine = [(r["event_timestamp"], r["created"], i, r["a"])
                for i, r in enumerate(ingested) if r["driver_id"] == key]
        expected.append(max(mine)[3] if mine else None)
    assert got == expected
