"""The online store: materialize, push and serve against a "latest per entity" oracle.

The contract: online, each entity holds the row with the greatest (event time,
created time, ingestion order) among the rows materialized (event time <= end)
or pushed; ttl is checked at read time against the store's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_views import DRIVER, quality_view, stat_row, stats_view

from litemlops.errors import ValidationError
from litemlops.store import FeatureStore, FeatureView

T0 = datetime(2024, 1, 1, 6, tzinfo=UTC)
STEP = timedelta(minutes=30)
GRID = 12
KEYS = (1001, 1002, 1003, 1004)
LOOKUP = [{"driver_id": k} for k in (*KEYS, 1005, 1001)]  # 1005 is never written
LATENESS = timedelta(hours=1)
MAX_FUTURE = timedelta(minutes=5)  # the store's default
NO_CREATED = datetime.min.replace(tzinfo=UTC)
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)


FEATURES = {
    "driver_stats": ("conv_rate", "avg_daily_trips"),
    "driver_quality": ("acc_rate", "trips_today"),
}
REFS = [f"{view}:{feature}" for view, names in FEATURES.items() for feature in names]


@dataclass(frozen=True)
class Row:
    key: int
    event: datetime
    created: datetime | None
    values: dict[str, Any]


def to_dict(view: FeatureView, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"driver_id": row.key, view.timestamp_field: row.event}
    if view.created_timestamp_field:
        out[view.created_timestamp_field] = row.created
    out.update(row.values)
    return out


class Oracle:
    """The contract in plain Python: sets of applied rows, the greatest one wins."""

    def __init__(self, views: Sequence[FeatureView]):
        self.views = {v.name: v for v in views}
        self.offline: dict[str, list[tuple[tuple[Any, ...], Row]]] = {v: [] for v in self.views}
        self.online: dict[str, dict[int, tuple[tuple[Any, ...], Row]]] = {v: {} for v in self.views}
        self.order = 0

    def _rank(self, row: Row) -> tuple[Any, ...]:
        self.order += 1
        return (row.event, row.created or NO_CREATED, self.order)

    def _apply(self, view: str, rank: tuple[Any, ...], row: Row) -> bool:
        current = self.online[view].get(row.key)
        if current is not None and current[0] > rank:
            return False
        self.online[view][row.key] = (rank, row)
        return True

    def ingest(self, view: str, rows: Sequence[Row]) -> None:
        self.offline[view].extend((self._rank(r), r) for r in rows)

    def materialize(self, end: datetime) -> None:
        for view, rows in self.offline.items():
            for rank, row in rows:
                if row.event <= end:
                    self._apply(view, rank, row)

    def push(
        self, view: str, rows: Sequence[Row], to: str, now: datetime
    ) -> dict[str, int] | None:
        """What a push reports, or None when it is refused (a row from the future, online)."""
        if to != "offline" and any(r.event > now + MAX_FUTURE for r in rows):
            return None
        written = stale = 0
        for row in rows:
            rank = self._rank(row)
            if to != "online":
                self.offline[view].append((rank, row))
            if to != "offline":
                if self._apply(view, rank, row):
                    written += 1
                else:
                    stale += 1
        late = sum(r.event < now - LATENESS for r in rows)
        return {"online_written": written, "stale_rows": stale, "late_rows": late}

    def expected(self, now: datetime) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"driver_id": [r["driver_id"] for r in LOOKUP]}
        for name, view in self.views.items():
            features = FEATURES[name]
            for feature in (*features, f"{name}__event_timestamp"):
                out[feature] = []
            for request in LOOKUP:
                found = self.online[name].get(request["driver_id"])
                row = found[1] if found else None
                if row is not None and view.ttl is not None and row.event < now - view.ttl:
                    row = None
                for feature in features:
                    out[feature].append(None if row is None else row.values[feature])
                out[f"{name}__event_timestamp"].append(None if row is None else row.event)
        return out


def materialized(fs: FeatureStore, oracle: Oracle, end: datetime, now: datetime) -> bool:
    """Materialize the store and the oracle up to `end`; an end further ahead of the clock
    than the default max_future is refused instead, and nothing moves (False)."""
    if end > now + timedelta(minutes=5):
        with pytest.raises(ValidationError, match=r"materialize end .* ahead of the clock"):
            fs.materialize(end=end)
        return False
    fs.materialize(end=end)
    oracle.materialize(end)
    return True


def served(fs: FeatureStore) -> dict[str, list[Any]]:
    return fs.get_online_features(REFS, LOOKUP, include_event_timestamps=True).to_dict()


# -- strategies -------------------------------------------------------------------------

row_specs = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.integers(0, GRID),  # event step
        st.integers(0, 3),  # created step
        st.integers(0, 5).map(lambda x: x == 0),  # the float feature is null
        st.integers(0, 2).map(lambda x: x == 0),  # repeat the previous row's key and time
    ),
    min_size=1,
    max_size=8,
)
views = st.sampled_from(sorted(FEATURES))
ingest_ops = st.tuples(st.just("ingest"), views, row_specs)
# Mostly later ends; 0 repeats the last end, negative ones go back (a backfill).
materialize_ops = st.tuples(st.just("materialize"), st.integers(-3, 4))
push_ops = st.tuples(
    st.just("push"), views, row_specs, st.sampled_from(("online", "online", "both", "offline"))
)
tick_ops = st.tuples(st.just("tick"), st.integers(1, 4))


class Rows:
    """Turns row specs into rows whose values identify them (so a mismatch says which)."""

    def __init__(self) -> None:
        self.uid = 0

    def __call__(self, view: FeatureView, specs: Sequence[tuple[Any, ...]]) -> list[Row]:
        rows: list[Row] = []
        for key, step, created, null, repeat in specs:
            self.uid += 1
            event = T0 + step * STEP
            if repeat and rows:
                key, event = rows[-1].key, rows[-1].event
            values: dict[str, Any] = {}
            for item in view.schema:
                if item.dtype == "float64":
                    values[item.name] = None if null else self.uid + 0.5
                else:
                    values[item.name] = self.uid
            has_created = view.created_timestamp_field is not None
            rows.append(Row(key, event, T0 + created * STEP if has_created else None, values))
        return rows


@pytest.mark.slow
@settings(max_examples=examples(50), deadline=None)
@given(
    ttl_stats=st.sampled_from((None, timedelta(hours=1), timedelta(hours=3))),
    ttl_quality=st.sampled_from((None, timedelta(hours=2))),
    ops=st.lists(st.one_of(ingest_ops, materialize_ops, push_ops, tick_ops), max_size=14),
    as_frames=st.booleans(),
)
def test_online_state_equals_latest_per_entity_oracle_after_every_operation(
    manual_clock: Callable[[datetime], Any],
    ttl_stats: timedelta | None,
    ttl_quality: timedelta | None,
    ops: list[tuple[Any, ...]],
    as_frames: bool,
) -> None:
    view_list = [stats_view(ttl_stats), quality_view(ttl_quality)]
    by_name = {v.name: v for v in view_list}
    oracle = Oracle(view_list)
    make_rows = Rows()
    clock = manual_clock(T0 + timedelta(hours=3))
    end = T0
    with FeatureStore(":memory:", clock=clock, push_lateness=LATENESS) as fs:
        fs.apply([DRIVER, *view_list])
        for i, op in enumerate(ops):
            if op[0] == "ingest":
                view = by_name[op[1]]
                rows = make_rows(view, op[2])
                data = [to_dict(view, r) for r in rows]
                fs.ingest(view.name, pd.DataFrame(data) if as_frames else data)
                oracle.ingest(view.name, rows)
            elif op[0] == "materialize":
                wanted = max(T0, end + op[1] * STEP)
                if materialized(fs, oracle, wanted, clock()):
                    end = wanted
            elif op[0] == "push":
                view = by_name[op[1]]
                rows = make_rows(view, op[2])
                data = [to_dict(view, r) for r in rows]
                want = oracle.push(view.name, rows, op[3], clock())
                if want is None:
                    with pytest.raises(ValidationError, match="ahead of the clock"):
                        fs.push(view.name, pd.DataFrame(data) if as_frames else data, to=op[3])
                    continue
                result = fs.push(view.name, pd.DataFrame(data) if as_frames else data, to=op[3])
                got = {k: getattr(result, k) for k in want}
                assert (result.rows, got) == (len(rows), want), f"push result after op {i}"
            else:
                clock.advance(op[1] * STEP)
            assert served(fs) == oracle.expected(clock()), f"online state after op {i}: {op}"


@pytest.mark.slow
@settings(max_examples=examples(25), deadline=None)
@given(
    ops=st.lists(st.one_of(ingest_ops, materialize_ops), max_size=12),
    final=st.integers(0, 4),
)
def test_incremental_materialize_equals_one_full_materialize_and_repeating_it_changes_nothing(
    manual_clock: Callable[[datetime], Any], ops: list[tuple[Any, ...]], final: int
) -> None:
    view_list = [stats_view(None), quality_view(None)]
    by_name = {v.name: v for v in view_list}
    clock = manual_clock(T0 + timedelta(days=1))
    make_rows = Rows()
    end = latest = T0
    with (
        FeatureStore(":memory:", clock=clock) as incremental,
        FeatureStore(":memory:", clock=clock) as full,
    ):
        for fs in (incremental, full):
            fs.apply([DRIVER, *view_list])
        for op in ops:
            if op[0] == "ingest":
                view = by_name[op[1]]
                data = [to_dict(view, r) for r in make_rows(view, op[2])]
                incremental.ingest(view.name, data)
                full.ingest(view.name, data)
            else:
                end = max(T0, end + op[1] * STEP)
                latest = max(latest, end)
                incremental.materialize(end=end)
        end = latest + final * STEP  # at or after every earlier end
        incremental.materialize(end=end)
        full.materialize(end=end)
        once = served(incremental)
        assert once == served(full)
        incremental.materialize(end=end)
        assert served(incremental) == once


# -- examples ---------------------------------------------------------------------------


def rate_of(fs: FeatureStore, key: int = 1001) -> Any:
    return fs.get_online_features(["driver_stats:conv_rate"], [{"driver_id": key}])["conv_rate"][0]


def stats_served(fs: FeatureStore) -> dict[str, list[Any]]:
    refs = ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"]
    return fs.get_online_features(refs, LOOKUP, include_event_timestamps=True).to_dict()


@pytest.fixture
def stats(store: FeatureStore) -> FeatureStore:
    store.apply([DRIVER, stats_view(None)])
    return store


def test_out_of_order_pushes_keep_the_newest_value_and_count_stale_rows(
    stats: FeatureStore, clock: Any
) -> None:
    now = clock()
    first = stats.push("driver_stats", [stat_row(1001, now - timedelta(minutes=1), 0.5)])
    older = stats.push(
        "driver_stats",
        [
            stat_row(1001, now - timedelta(minutes=5), 0.1),
            stat_row(1001, now - timedelta(minutes=3), 0.2),
        ],
    )
    mixed = stats.push(
        "driver_stats", [stat_row(1001, now, 0.9), stat_row(1001, now - timedelta(minutes=2), 0.3)]
    )

    assert (first.online_written, first.stale_rows) == (1, 0)
    assert (older.rows, older.online_written, older.stale_rows) == (2, 0, 2)
    assert (mixed.rows, mixed.online_written, mixed.stale_rows) == (2, 1, 1)
    assert rate_of(stats) == 0.9


def test_push_with_equal_event_and_created_time_wins_as_the_later_write(
    stats: FeatureStore, clock: Any
) -> None:
    at = clock() - timedelta(minutes=1)
    stats.ingest("driver_stats", [stat_row(1001, at, 0.1)])
    stats.materialize(end=clock())

    result = stats.push("driver_stats", [stat_row(1001, at, 0.2)])

    assert (result.online_written, result.stale_rows) == (1, 0)
    assert rate_of(stats) == 0.2


def test_a_later_created_time_wins_over_a_newer_push_with_the_same_event_time(
    stats: FeatureStore, clock: Any
) -> None:
    at = clock() - timedelta(minutes=1)
    stats.push("driver_stats", [stat_row(1001, at, 0.7, created=at + timedelta(seconds=30))])

    result = stats.push("driver_stats", [stat_row(1001, at, 0.2, created=at)])

    assert result.stale_rows == 1
    assert rate_of(stats) == 0.7


def test_push_counts_rows_older_than_push_lateness_as_late_but_still_writes_them(
    clock: Any,
) -> None:
    with FeatureStore(":memory:", clock=clock, push_lateness=timedelta(minutes=10)) as fs:
        fs.apply([DRIVER, stats_view(None)])
        now = clock()
        cutoff = now - timedelta(minutes=10)
        result = fs.push(
            "driver_stats",
            [
                stat_row(1001, cutoff - US, 0.1),  # late by a microsecond
                stat_row(1002, cutoff, 0.2),  # exactly at the limit: not late
                stat_row(1003, now, 0.3),
                stat_row(1004, now - timedelta(days=3), 0.4),
            ],
        )

        assert (result.rows, result.late_rows, result.online_written) == (4, 2, 4)
        assert [rate_of(fs, k) for k in (1001, 1002, 1003, 1004)] == [0.1, 0.2, 0.3, 0.4]


def test_ttl_is_applied_at_read_time_against_the_clock(store: FeatureStore, clock: Any) -> None:
    ttl = timedelta(hours=2)
    store.apply([DRIVER, stats_view(ttl)])
    event = clock() - timedelta(minutes=30)
    store.push("driver_stats", [stat_row(1001, event, 0.5)])
    assert rate_of(store) == 0.5

    clock.now = event + ttl  # exactly ttl old: still served
    assert rate_of(store) == 0.5

    clock.advance(US)
    assert rate_of(store) is None

    clock.now = event  # the value is kept, only hidden: earlier clocks see it again
    assert rate_of(store) == 0.5


def test_ttl_at_read_time_is_exact_for_a_ttl_with_milliseconds(
    store: FeatureStore, clock: Any
) -> None:
    ttl = timedelta(seconds=1, milliseconds=1)
    store.apply([DRIVER, stats_view(ttl)])
    event = clock() - timedelta(minutes=1)
    store.push("driver_stats", [stat_row(1001, event, 0.5)])

    clock.now = event + ttl

    assert rate_of(store) == 0.5


def test_unknown_entities_come_back_as_none(stats: FeatureStore, clock: Any) -> None:
    stats.push("driver_stats", [stat_row(1001, clock(), 0.5)])

    out = stats.get_online_features(
        ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"],
        [{"driver_id": 9999}, {"driver_id": 1001}, {"driver_id": 1002}],
    ).to_dict()

    assert out == {
        "driver_id": [9999, 1001, 1002],
        "conv_rate": [None, 0.5, None],
        "avg_daily_trips": [None, 50, None],
    }


def test_include_event_timestamps_returns_aware_utc_datetimes(
    stats: FeatureStore, clock: Any
) -> None:
    berlin = (clock() - timedelta(minutes=3, microseconds=7)).astimezone(ZoneInfo("Europe/Berlin"))
    stats.push("driver_stats", [stat_row(1001, berlin, 0.5)])

    out = stats.get_online_features(
        ["driver_stats:conv_rate"],
        [{"driver_id": 1001}, {"driver_id": 1002}],
        include_event_timestamps=True,
    ).to_dict()

    stamp = out["driver_stats__event_timestamp"][0]
    assert isinstance(stamp, datetime)
    assert stamp.utcoffset() == timedelta(0)
    assert stamp == berlin
    assert out["driver_stats__event_timestamp"][1] is None


def test_full_feature_names_prefix_online_outputs(stats: FeatureStore, clock: Any) -> None:
    stats.push("driver_stats", [stat_row(1001, clock(), 0.5)])

    out = stats.get_online_features(
        ["driver_stats:conv_rate"], [{"driver_id": 1001}], full_feature_names=True
    ).to_dict()

    assert out == {"driver_id": [1001], "driver_stats__conv_rate": [0.5]}


def test_to_df_gives_one_row_per_entity_row_in_request_order(
    stats: FeatureStore, clock: Any
) -> None:
    stats.push("driver_stats", [stat_row(1001, clock(), 0.5), stat_row(1002, clock(), 0.25)])

    df = stats.get_online_features(
        ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"],
        [{"driver_id": 1002}, {"driver_id": 1003}, {"driver_id": 1001}],
    ).to_df()

    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["driver_id", "conv_rate", "avg_daily_trips"]
    assert df["driver_id"].tolist() == [1002, 1003, 1001]
    assert df["conv_rate"].iloc[0] == 0.25 and df["conv_rate"].iloc[2] == 0.5
    assert pd.isna(df["conv_rate"].iloc[1])


def test_materialize_copies_only_rows_up_to_end(stats: FeatureStore, t0: datetime) -> None:
    stats.ingest(
        "driver_stats", [stat_row(1001, t0, 0.1), stat_row(1001, t0 + timedelta(hours=2), 0.2)]
    )

    stats.materialize(end=t0 + timedelta(hours=2) - US)
    assert rate_of(stats) == 0.1

    stats.materialize(end=t0 + timedelta(hours=2))
    assert rate_of(stats) == 0.2


def test_materializing_twice_equals_materializing_once(stats: FeatureStore, t0: datetime) -> None:
    stats.ingest("driver_stats", [stat_row(k, t0 + timedelta(hours=k - 1000), 0.1) for k in KEYS])
    end = t0 + timedelta(hours=3)
    stats.materialize(end=end)
    once = stats_served(stats)

    again = stats.materialize(end=end)

    assert [r.entities_written for r in again] == [0]
    assert stats_served(stats) == once


def test_rows_ingested_late_are_materialized_by_the_next_incremental_run(
    stats: FeatureStore, t0: datetime
) -> None:
    stats.ingest("driver_stats", [stat_row(1001, t0, 0.1), stat_row(1002, t0, 0.1)])
    stats.materialize(end=t0 + timedelta(hours=4))
    # Event times before the watermark, written after it.
    stats.ingest(
        "driver_stats",
        [
            stat_row(1001, t0 + timedelta(hours=1), 0.2),
            stat_row(1002, t0 - timedelta(hours=1), 0.3),
        ],
    )

    stats.materialize(end=t0 + timedelta(hours=5))

    assert rate_of(stats, 1001) == 0.2
    assert rate_of(stats, 1002) == 0.1  # the late row is older than the served one


def test_offline_push_is_served_only_after_materialize(stats: FeatureStore, clock: Any) -> None:
    result = stats.push("driver_stats", [stat_row(1001, clock(), 0.5)], to="offline")
    assert (result.online_written, result.stale_rows) == (0, 0)
    assert rate_of(stats) is None

    stats.materialize(end=clock())

    assert rate_of(stats) == 0.5


def test_materialize_with_an_earlier_end_does_not_lose_rows_ingested_late(
    stats: FeatureStore, t0: datetime
) -> None:
    stats.ingest("driver_stats", [stat_row(1001, t0 + timedelta(hours=1), 0.1)])
    stats.materialize(end=t0 + timedelta(hours=4))
    stats.ingest("driver_stats", [stat_row(1001, t0 + timedelta(hours=3), 0.3)])  # late row
    stats.materialize(end=t0 + timedelta(hours=2))  # an earlier end, e.g. a backfill

    stats.materialize(end=t0 + timedelta(hours=6))

    assert rate_of(stats) == 0.3  # what one full materialize(end=t0 + 6h) serves


def test_lookups_see_writes_from_this_store_and_from_another_connection(tmp_path):
    """Rows read before are served from memory; any write, here or elsewhere, shows."""
    import sqlite3
    from datetime import UTC, datetime

    from litemlops.store import Entity, FeatureStore, FeatureView, Field

    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        fs.apply(view)
        fs.push("v", [{"e": 1, "event_timestamp": t, "x": 1.0}])
        assert fs.get_online_features(["v:x"], [{"e": 1}, {"e": 2}])["x"] == [1.0, None]
        fs.push("v", [{"e": 2, "event_timestamp": t, "x": 2.0}])  # this store's own write
        assert fs.get_online_features(["v:x"], [{"e": 1}, {"e": 2}])["x"] == [1.0, 2.0]
        other = sqlite3.connect(tmp_path / "f.online.db", isolation_level=None)
        other.execute('UPDATE "online_v" SET "x" = 9.0 WHERE "e" = 1')  # another writer
        other.close()
        assert fs.get_online_features(["v:x"], [{"e": 1}])["x"] == [9.0]


def test_rows_from_the_future_are_refused_and_nothing_is_written(clock: Any) -> None:
    with FeatureStore(":memory:", clock=clock, max_future=timedelta(minutes=5)) as fs:
        fs.apply([DRIVER, stats_view(None)])
        now = clock()
        fs.push("driver_stats", [stat_row(1001, now, 0.1)])
        limit = now + timedelta(minutes=5)
        future = [
            stat_row(1001, limit, 0.2),  # exactly at the limit: taken
            stat_row(1002, now, 0.3),
            stat_row(1001, limit + US, 0.9),  # a microsecond past it
            stat_row(1003, now + timedelta(days=3650), 0.9),
        ]

        for to in ("online", "both"):
            with pytest.raises(ValidationError, match=r"2 row\(s\) have datetime more than "
                               r"300 s ahead of the clock .* first row 2: "
                               r"2024-01-02T00:05:00.000001\+00:00"):
                fs.push("driver_stats", future, to=to)

        # Nothing of the refused pushes is kept, and the entity still takes updates.
        assert fs.describe("driver_stats")["offline_rows"] == 0
        assert rate_of(fs, 1001) == 0.1
        assert fs.push("driver_stats", future[:2]).online_written == 2
        assert rate_of(fs, 1001) == 0.2
        # Offline, a row waits for its time: materialize takes it once that has come.
        assert fs.push("driver_stats", future[3:], to="offline").rows == 1
        assert fs.ingest("driver_stats", future[2:3]).rows == 1


def test_a_materialize_end_beyond_max_future_is_refused_and_moves_nothing(clock: Any) -> None:
    # A naive local time taken for UTC is how such an end usually comes: the rows up to it
    # would be served before their time, as a push of them would be refused.
    with FeatureStore(":memory:", clock=clock, max_future=timedelta(minutes=5)) as fs:
        fs.apply([DRIVER, stats_view(None)])
        now = clock()
        fs.ingest("driver_stats", [stat_row(1001, now, 0.1), stat_row(1001, now + HOUR, 0.9)])
        with pytest.raises(
            ValidationError,
            match=r"materialize end 2024-01-02T00:05:00.000001 is more than 300 s ahead of the "
            r"clock \(2024-01-02T00:00:00\+00:00\).*leave out the end",
        ):
            fs.materialize(end=now + timedelta(minutes=5) + US)
        assert rate_of(fs, 1001) is None  # nothing went online
        assert fs.describe("driver_stats")["materialized_until"] is None
        fs.materialize(end=now + timedelta(minutes=5))  # at the limit: taken
        assert rate_of(fs, 1001) == 0.1  # the row of an hour ahead still waits
        clock.advance(2 * HOUR)
        fs.materialize()
        assert rate_of(fs, 1001) == 0.9
    with FeatureStore(":memory:", clock=clock, max_future=None) as fs:  # any time, if asked
        fs.apply([DRIVER, stats_view(None)])
        fs.ingest("driver_stats", [stat_row(1001, clock() + HOUR, 0.9)])
        fs.materialize(end=clock() + 2 * HOUR)
        assert rate_of(fs, 1001) == 0.9


def test_a_negative_max_future_is_refused(clock: Any) -> None:
    with pytest.raises(ValidationError, match="max_future must be >= 0"):
        FeatureStore(":memory:", clock=clock, max_future=timedelta(seconds=-1))


def test_max_future_none_takes_any_time_online(clock: Any) -> None:
    with FeatureStore(":memory:", clock=clock, max_future=None) as fs:
        fs.apply([DRIVER, stats_view(None)])
        far = clock() + timedelta(days=3650)
        assert fs.push("driver_stats", [stat_row(1001, far, 0.5)]).online_written == 1
