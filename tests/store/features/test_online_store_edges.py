"""The SQLite online store on its own: the newer-wins order at its edges, lookups of
many entities, bool and timestamp features, the mirrored definitions, the spool,
batch numbers, per-view stats, and reading a file without waiting for its lookups."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from litemlops.clock import to_micros
from litemlops.store import Entity, FeatureView, Field
from litemlops.store.features.definitions import ResolvedView
from litemlops.store.features.offline import SEQ_BITS
from litemlops.store.features.online import OnlineStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = to_micros(T0)


def resolved(
    name: str, features: dict[str, str], keys: dict[str, str] | None = None
) -> ResolvedView:
    """A view as stored: typed key columns (one int64 `driver_id` unless given) and features."""
    keys = keys or {"driver_id": "int64"}
    entity = Entity("driver", join_keys=list(keys))
    fields = [Field(n, d) for n, d in features.items()]
    return ResolvedView(
        FeatureView(name, entities=[entity], schema=fields),
        keys=tuple(Field(n, d) for n, d in keys.items()),
        features=tuple(fields),
    )


RATES = resolved("rates", {"conv_rate": "float64"})


def seq(batch: int, row: int = 0) -> int:
    return (batch << SEQ_BITS) + row


@pytest.fixture
def store() -> Iterator[OnlineStore]:
    online = OnlineStore(":memory:")
    online.create(RATES)
    yield online
    online.close()


# -- newer wins: created times and equal rows ------------------------------------------


@pytest.mark.parametrize("created_first", [True, False])
def test_a_row_without_a_created_time_loses_to_one_created_before_1970(
    store: OnlineStore, created_first: bool
) -> None:
    """At equal event times a missing created time sorts below every real one, however
    old (1900 here), whichever row comes first and whatever its ingestion order."""
    created = to_micros(datetime(1900, 1, 1, tzinfo=UTC))
    dated = (1, 0.25, EVENT, created, seq(1))
    undated = (1, 0.75, EVENT, None, seq(2))
    first, second = (dated, undated) if created_first else (undated, dated)
    assert store.upsert(RATES, [first], written_at=1) == 1
    assert store.upsert(RATES, [second], written_at=2) == (0 if created_first else 1)
    assert store.lookup(RATES, [(1,)]) == {(1,): (0.25, EVENT)}


def test_a_missing_created_time_is_stored_as_the_least_64_bit_integer(store: OnlineStore) -> None:
    """The sentinel another process reading the file must agree on: an INTEGER, not a
    REAL that a larger magnitude would turn into, and not merely some negative number."""
    store.upsert(RATES, [(1, 0.25, EVENT, None, seq(1))], written_at=1)
    (created,) = store._con.execute("SELECT _lm_created_ts FROM online_rates").fetchone()
    assert type(created) is int
    assert created == -(2**63)


def test_a_row_exactly_as_new_as_the_stored_one_replaces_it(store: OnlineStore) -> None:
    """Written "if it is at least as new": the same event time, created time and
    ingestion order again takes the place of the stored row and counts as applied."""
    assert store.upsert(RATES, [(1, 0.25, EVENT, EVENT, seq(1))], written_at=1) == 1
    assert store.upsert(RATES, [(1, 0.5, EVENT, EVENT, seq(1))], written_at=2) == 1
    assert store.lookup(RATES, [(1,)]) == {(1,): (0.5, EVENT)}


# -- lookups ----------------------------------------------------------------------------


def test_a_lookup_of_5000_entities_keyed_by_8_columns_stays_within_sqlites_variable_limit() -> None:
    """A view keyed by 8 columns, on a connection with SQLite's default limit of 32766
    variables per statement: a lookup of 5000 entities (over 2048, so in several
    statements) answers every stored one exactly once, in the asked order, and leaves
    the unknown ones out."""
    names = [f"k{i}" for i in range(8)]
    view = resolved("trips", {"fare": "float64"}, dict.fromkeys(names, "int64"))
    con = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    online = OnlineStore(con)
    try:
        online.create(view)

        def key(i: int) -> tuple[int, ...]:
            return tuple(i * 10 + j for j in range(8))

        stored = [i for i in range(5000) if i % 3]
        rows = [(*key(i), i / 2, EVENT + i, None, seq(1, i)) for i in stored]
        assert online.upsert(view, rows, written_at=1) == len(stored)
        asked = list(range(5000))
        random.Random(7).shuffle(asked)
        found = online.lookup(view, [key(i) for i in [*asked, *asked[:10]]])
        expected = [key(i) for i in asked if i % 3]
        assert list(found) == expected
        assert all(found[key(i)] == (i / 2, EVENT + i) for i in stored)
    finally:
        con.close()


def statement_sizes(store: OnlineStore) -> set[int]:
    """The key counts of the lookup statements the store has prepared."""
    return {size for (_, _, _, size) in store._select_cache}


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(1, {1}), (2, {2}), (3, {4}), (4, {4}), (5, {8}), (8, {8}), (9, {16}),
     (2048, {2048}), (2049, {2048, 1}), (4099, {2048, 4})],
)
def test_a_lookup_pads_each_chunk_to_the_next_power_of_two_up_to_2048_keys(
    store: OnlineStore, n: int, sizes: set[int]
) -> None:
    """A handful of prepared statements serves any batch: a chunk of n keys uses the
    smallest power of two at least n, and a batch beyond 2,048 keys is split."""
    store.upsert(RATES, [(i, i / 8, EVENT, EVENT, seq(1, i)) for i in range(0, 40, 2)], 1)
    found = store.lookup(RATES, [(i,) for i in range(n)])
    assert statement_sizes(store) == sizes
    assert found == {(i,): (i / 8, EVENT) for i in range(0, min(n, 40), 2)}


def test_dropping_or_changing_a_view_forgets_only_its_own_statements_and_rows() -> None:
    """Views named to sort before and after the dropped one keep theirs."""
    online = OnlineStore(":memory:")
    views = [resolved(name, {"score": "float64"}) for name in ("alpha", "rates", "zones")]
    for view in views:
        online.create(view)
        online.upsert(view, [(1, 0.5, EVENT, EVENT, seq(1))], written_at=1)
        assert online.lookup(view, [(1,)]) == {(1,): (0.5, EVENT)}
    online.drop("rates")
    assert {name for (name, *_) in online._select_cache} == {"alpha", "zones"}
    assert set(online._rows) == {"alpha", "zones"}
    online.add_columns("zones", [Field("extra", "int64")])
    assert {name for (name, *_) in online._select_cache} == {"alpha"}
    assert set(online._rows) == {"alpha"}
    online.close()


def test_bool_and_timestamp_features_come_back_typed_wherever_they_stand_in_the_view() -> None:
    """Bools come back as bools (not 0 and 1) and timestamps as aware datetimes (not
    microseconds): in a view with only one of the two, in a view where they follow other
    features, and in a view read back from its JSON spec, as a reader of the file has it."""
    flags = resolved("flags", {"active": "bool"})
    seen = resolved("seen", {"last_trip": "timestamp"})
    mixed = resolved(
        "mixed",
        {
            "rate": "float64",
            "active": "bool",
            "trips": "int64",
            "last": "timestamp",
            "note": "string",
        },
    )
    spec = json.loads(json.dumps(mixed.spec()))
    from_spec = ResolvedView.from_spec(spec, 1, 1, [Entity("driver", join_keys=["driver_id"])])
    online = OnlineStore(":memory:")
    try:
        for view in (flags, seen, mixed):
            online.create(view)
        two = [(1, True, EVENT, None, seq(1)), (2, None, EVENT, None, seq(1, 1))]
        online.upsert(flags, two, written_at=1)
        online.upsert(seen, [(1, EVENT, EVENT, None, seq(2))], written_at=1)
        online.upsert(mixed, [(5, 0.5, True, 3, EVENT, "x", EVENT, None, seq(3))], written_at=1)
        active = online.lookup(flags, [(1,), (2,)])
        assert active == {(1,): (True, EVENT), (2,): (None, EVENT)}
        assert type(active[(1,)][0]) is bool
        assert online.lookup(seen, [(1,)]) == {(1,): (T0, EVENT)}
        row = online.lookup(from_spec, [(5,)])[(5,)]
        assert row == (0.5, True, 3, T0, "x", EVENT)
        assert [type(v) for v in row] == [float, bool, int, datetime, str, int]
    finally:
        online.close()


def test_a_view_dropped_and_created_again_is_read_with_its_new_columns(
    store: OnlineStore,
) -> None:
    """The statements and rows a view's lookups kept go with its table: after a drop, a
    view of that name created with other features reads its own columns."""
    store.upsert(RATES, [(1, 0.25, EVENT, None, seq(1))], written_at=1)
    assert store.lookup(RATES, [(1,)]) == {(1,): (0.25, EVENT)}
    assert store.create(RATES) is False  # already there: left as it is
    assert store.lookup(RATES, [(1,)]) == {(1,): (0.25, EVENT)}
    store.drop("rates")
    trips = resolved("rates", {"trips": "int64", "conv_rate": "float64"})
    assert store.create(trips) is True
    store.upsert(trips, [(1, 7, 0.5, EVENT, None, seq(2))], written_at=2)
    assert store.lookup(trips, [(1,)]) == {(1,): (7, 0.5, EVENT)}


def test_a_view_keyed_by_a_number_and_a_string_finds_each_pair_as_a_whole() -> None:
    view = resolved("rides", {"fare": "float64"}, {"driver_id": "int64", "city": "string"})
    online = OnlineStore(":memory:")
    try:
        online.create(view)
        online.upsert(view, [(1, "Oslo", 0.5, EVENT, None, seq(1))], written_at=1)
        online.upsert(view, [(1, "Rome", 0.75, EVENT, None, seq(1, 1))], written_at=1)
        found = online.lookup(view, [(1, "Rome"), (2, "Oslo"), (1, "Oslo")])
        assert found == {
            (1, "Rome"): (0.75, EVENT),
            (1, "Oslo"): (0.5, EVENT),
        }
    finally:
        online.close()


def test_the_online_table_declares_sqlites_own_column_types_also_for_added_columns() -> None:
    """Other readers of the file see SQLite's type names (INTEGER, REAL, TEXT), not the
    history's (BIGINT, DOUBLE, VARCHAR, BOOLEAN), for keys, features and added features."""
    view = resolved("rides", {"fare": "float64"}, {"driver_id": "int64", "city": "string"})
    con = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    online = OnlineStore(con)
    try:
        online.create(view)
        online.add_columns("rides", [Field("late", "bool"), Field("score", "float32")])
        declared = {r[1]: r[2] for r in con.execute("PRAGMA table_info(online_rides)")}
        assert {k: declared[k] for k in ("driver_id", "city", "fare", "late", "score")} == {
            "driver_id": "INTEGER",
            "city": "TEXT",
            "fare": "REAL",
            "late": "INTEGER",
            "score": "REAL",
        }
    finally:
        online.close()
        con.close()


# -- what a process holding only this file needs -----------------------------------------

ENTITY = ("entity", "driver", 1, 1, '{"keys": ["driver_id"]}')
VIEW_DEF = ("view", "rates", 2, 1, '{"features": ["conv_rate"]}')


def test_mirrored_definitions_of_several_kinds_saved_again_unchanged_keep_their_stamp(
    store: OnlineStore,
) -> None:
    assert store.save_definitions([VIEW_DEF, ENTITY]) is True
    stamp = store.definitions_stamp()
    assert store.save_definitions([ENTITY, VIEW_DEF]) is False
    assert store.definitions_stamp() == stamp
    assert store.load_definitions() == [ENTITY, VIEW_DEF]


def test_a_definition_removed_or_replaced_by_one_sorting_first_is_mirrored(
    store: OnlineStore,
) -> None:
    """Whichever way the new list sorts against the held one, a difference is saved."""
    assert store.save_definitions([ENTITY, VIEW_DEF]) is True
    stamp = store.definitions_stamp()
    assert store.save_definitions([ENTITY]) is True  # a prefix of the held list
    assert store.load_definitions() == [ENTITY]
    assert store.definitions_stamp() not in (None, stamp)
    earlier = ("entity", "car", 1, 1, "{}")
    assert store.save_definitions([earlier]) is True
    assert store.load_definitions() == [earlier]


def test_spooled_lists_the_entries_numbered_strictly_after_the_given_one(
    store: OnlineStore,
) -> None:
    for source in ("a", "b", "c"):
        store.spool(RATES, source.encode(), kind="push", source=source, pushed_us=1, at_least=0)
    assert [(e[0], e[5]) for e in store.spooled(after=1, limit=10)] == [(2, "b"), (3, "c")]
    assert [e[0] for e in store.spooled(after=1, limit=1)] == [2]
    assert store.spooled(after=3, limit=10) == []
    store.unspool(2)  # the history has the first two
    assert [e[0] for e in store.spooled(after=0, limit=10)] == [3]


def test_spool_takes_its_view_and_rows_first_and_the_rest_by_name_only(
    store: OnlineStore,
) -> None:
    """A bare kind, source or time in the wrong place is refused, not spooled."""
    with pytest.raises(TypeError, match="takes 3 positional arguments but 7 were given"):
        store.spool(RATES, b"rows", "push", "a", 1, 0)  # type: ignore[misc]
    assert store.spool(RATES, b"rows", kind="push", source="a", pushed_us=1, at_least=0) == 1


def test_the_highest_stored_batch_is_zero_without_rows_and_the_top_one_among_views() -> None:
    online = OnlineStore(":memory:")
    try:
        assert online.max_batch() == 0
        online.create(RATES)
        assert online.max_batch() == 0  # a table, no rows
        other = resolved("other", {"x": "float64"})
        online.create(other)
        online.upsert(RATES, [(1, 0.5, EVENT, None, seq(3, 5)), (2, 0.5, EVENT, None, seq(1))], 1)
        online.upsert(other, [(1, 0.5, EVENT, None, seq(2, 9))], written_at=1)
        assert online.max_batch() == 3
    finally:
        online.close()


def test_stats_count_the_rows_with_their_oldest_and_newest_event_times(
    store: OnlineStore,
) -> None:
    assert store.stats("rates") == (0, None, None)
    rows = [(k, 0.5, EVENT + at, None, seq(1, k)) for k, at in ((1, 20), (2, 50), (3, 10))]
    store.upsert(RATES, rows, written_at=1)
    assert store.stats("rates") == (3, EVENT + 10, EVENT + 50)


@pytest.fixture(params=["relative", "absolute"])
def file_path(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """An online file named relative to the working directory, or by its full path."""
    monkeypatch.chdir(tmp_path)
    return "online.db" if request.param == "relative" else str(tmp_path / "online.db")


def test_newest_times_of_a_store_on_a_file_do_not_wait_behind_its_lookups(file_path: str) -> None:
    """On a file the scan reads through a connection of its own: it ends while a lookup
    holds the store's connection."""
    online = OnlineStore(file_path)
    try:
        online.create(RATES)
        online.upsert(RATES, [(1, 0.5, EVENT + 7, None, seq(1))], written_at=1)
        held, release = threading.Event(), threading.Event()

        def lookup_in_progress() -> None:
            with online._lock:
                held.set()
                release.wait(10)

        holder = threading.Thread(target=lookup_in_progress)
        holder.start()
        assert held.wait(10)
        newest: dict[str, int | None] = {}
        reader = threading.Thread(
            target=lambda: newest.update(online.newest_event_times(["rates"]))
        )
        reader.start()
        reader.join(timeout=2)
        waited = reader.is_alive()
        release.set()
        holder.join()
        reader.join()
        assert not waited
        assert newest == {"rates": EVENT + 7}
    finally:
        online.close()


def test_a_store_on_a_file_is_in_wal_mode_and_a_settled_wal_answers_for_sqlite(
    file_path: str,
) -> None:
    """Once the `-wal` file was last written long enough ago, its stamp answers for SQLite
    (which is not asked): no commit since the version given is "unchanged" with that
    same version; a commit of another connection is "changed", with a new version, and
    the next lookup reads what it wrote."""

    def settle() -> None:  # as if the WAL were last written ten seconds ago
        then = time.time_ns() - 10_000_000_000
        os.utime(f"{file_path}-wal", ns=(then, then))

    online = OnlineStore(file_path)
    other = sqlite3.connect(file_path, isolation_level=None)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        online.create(RATES)
        online.upsert(RATES, [(1, 0.5, EVENT, None, seq(1))], written_at=1)
        settle()
        changed, version = online.changed_since(None)
        assert changed is True
        assert online.lookup(RATES, [(1,)]) == {(1,): (0.5, EVENT)}
        asked: list[str] = []
        online._con.set_trace_callback(lambda sql: asked.append(sql) if "data_ver" in sql else None)
        assert online.changed_since(version) == (False, version)
        assert online.changed_since(version) == (False, version)
        assert online.lookup(RATES, [(1,)]) == {(1,): (0.5, EVENT)}
        assert asked == []
        other.execute("UPDATE online_rates SET conv_rate = 0.75")
        settle()
        changed, newer = online.changed_since(version)
        assert (changed, newer != version) == (True, True)
        assert online.lookup(RATES, [(1,)]) == {(1,): (0.75, EVENT)}
        assert online.changed_since(newer) == (False, newer)
    finally:
        other.close()
        online.close()


def test_a_store_on_a_file_serves_threads_other_than_its_opener(file_path: str) -> None:
    online = OnlineStore(file_path)
    try:
        online.create(RATES)
        online.upsert(RATES, [(1, 0.5, EVENT, None, seq(1))], written_at=1)
        found: list[object] = []
        reader = threading.Thread(target=lambda: found.append(online.lookup(RATES, [(1,)])))
        reader.start()
        reader.join(timeout=10)
        assert found == [{(1,): (0.5, EVENT)}]
    finally:
        online.close()


def test_closing_a_store_closes_the_connection_it_opened_and_not_one_it_was_given() -> None:
    opened = OnlineStore(":memory:")
    opened.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        opened.definitions_stamp()
    con = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    given = OnlineStore(con)
    given.close()
    assert con.execute("SELECT value FROM _lm_meta WHERE key = 'store_id'").fetchone() == (
        given.store_id,
    )
    con.close()
