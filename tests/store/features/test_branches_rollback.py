"""A write that fails part way is undone whole, and the store takes the next write:
ingestion when the online store's batch counter is locked, and the online store's
upserts, mirrored definitions, batch numbers and spooled pushes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from shared_views import DRIVER, stat_row, stats_view

from litemlops.store import FeatureStore, FeatureView, Field
from litemlops.store.features.definitions import ResolvedView
from litemlops.store.features.online import OnlineStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)

VIEW = ResolvedView(
    FeatureView("rates", entities=[DRIVER], schema=[Field("conv_rate", "float64")]),
    keys=(Field("driver_id", "int64"),),
    features=(Field("conv_rate", "float64"),),
)


def now() -> datetime:
    return T0 + timedelta(hours=1)


@pytest.fixture
def con() -> Iterator[sqlite3.Connection]:
    """An online store's connection the test can watch and refuse writes on."""
    connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    yield connection
    connection.close()


def refuse_inserts_into(con: sqlite3.Connection, table: str) -> None:
    """Make SQLite refuse to prepare any INSERT into `table` on this connection."""

    def authorize(action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_INSERT and arg1 == table:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    con.set_authorizer(authorize)


def test_an_ingest_whose_batch_number_is_locked_out_writes_nothing(tmp_path):
    path = tmp_path / "online.db"
    online = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        with FeatureStore(":memory:", online=online, clock=now) as fs:
            fs.apply([DRIVER, stats_view(None)])
            fs.ingest("driver_stats", [stat_row(1, T0, 0.1)])
            other.execute("BEGIN IMMEDIATE")  # another process writing the online file
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                fs.ingest("driver_stats", [stat_row(2, T0, 0.2), stat_row(3, T0, 0.3)])
            other.execute("ROLLBACK")
            fs.ingest("driver_stats", [stat_row(4, T0, 0.4)])  # the history takes writes again
            described = fs.describe("driver_stats")
            assert (described["offline_rows"], described["batches"]) == (2, 2)
            fs.materialize()
            served = fs.get_online_features(
                ["driver_stats:conv_rate"], [{"driver_id": i} for i in (1, 2, 3, 4)]
            )
            assert served["conv_rate"] == [0.1, None, None, 0.4]
    finally:
        other.close()
        online.close()


def test_an_upsert_failing_on_one_row_applies_none_of_its_rows():
    store = OnlineStore(":memory:")
    store.create(VIEW)
    good, bad = (1, 0.5, 100, None, 1), (None, 0.7, 100, None, 2)
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL constraint failed"):
        store.upsert(VIEW, [good, bad], written_at=5)
    assert store.lookup(VIEW, [(1,)]) == {}
    assert store.upsert(VIEW, [good], written_at=6) == 1
    assert store.lookup(VIEW, [(1,)]) == {(1,): (0.5, 100)}
    store.close()


def test_definitions_that_cannot_be_mirrored_leave_the_mirrored_ones():
    store = OnlineStore(":memory:")
    kept = [("view", "rates", 1, 1, '{"a": 1}')]
    assert store.save_definitions(kept) is True
    stamp = store.definitions_stamp()
    twice = [("view", "rates", 1, 1, '{"a": 1}'), ("view", "rates", 2, 1, '{"a": 2}')]
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
        store.save_definitions(twice)
    assert store.load_definitions() == kept
    assert store.definitions_stamp() == stamp
    assert store.save_definitions(kept) is False  # and the store takes the next write
    store.close()


def test_a_batch_number_whose_write_is_refused_is_not_handed_out(con):
    store = OnlineStore(con)
    assert store.next_batch(0) == 1
    refuse_inserts_into(con, "_lm_meta")
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        store.next_batch(0)
    con.set_authorizer(None)
    assert store.next_batch(0) == 2
    assert store.next_batch(at_least=10) == 11


def test_a_push_that_cannot_be_spooled_gives_back_its_batch_number(con):
    store = OnlineStore(con)
    assert store.spool(VIEW, b"first", kind="push", source="a", pushed_us=1, at_least=0) == 1
    refuse_inserts_into(con, "_lm_spool")
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        store.spool(VIEW, b"second", kind="push", source="b", pushed_us=2, at_least=0)
    con.set_authorizer(None)
    assert store.spool(VIEW, b"third", kind="push", source="c", pushed_us=3, at_least=0) == 2
    spooled = [
        (seq, batch, source, rows)
        for seq, _, _, batch, _, source, _, rows in store.spooled(after=0, limit=10)
    ]
    assert spooled == [(1, 1, "a", b"first"), (2, 2, "c", b"third")]
