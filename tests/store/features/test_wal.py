"""The WAL index header as a sign of commits, and online lookups that ask SQLite's
data_version only when it changed, yet see every other connection's writes."""

from __future__ import annotations

import mmap
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from shared_views import DRIVER, stats_view

from litemlops.store import FeatureStore, OnlineFeatureStore
from litemlops.store.features.wal import HEADER, IS_INIT, WalIndex
from litemlops.testing import FixedClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def wal_database(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.execute("CREATE TABLE t (x INTEGER)")
    return con


needs_mmap = pytest.mark.skipif(
    not hasattr(mmap, "PROT_READ"), reason="no read-only shared mmap on this platform"
)


@needs_mmap
def test_the_header_changes_with_each_commit_of_any_connection_and_only_then(tmp_path):
    path = tmp_path / "db.sqlite"
    with wal_database(path) as mine, sqlite3.connect(path, isolation_level=None) as other:
        index = WalIndex(path)
        try:
            seen = index.header()
            assert seen is not None
            mine.execute("SELECT count(*) FROM t").fetchall()  # reads change nothing
            assert index.header() == seen
            for con in (other, mine, other):
                con.execute("INSERT INTO t VALUES (1)")
                now = index.header()
                assert now is not None and now != seen
                seen = now
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            other.execute("INSERT INTO t VALUES (2)")  # the WAL starts over: salts change
            assert index.header() not in (None, seen)
        finally:
            index.close()
        assert index.header() is None


def test_without_a_wal_index_it_cannot_tell(tmp_path):
    path = tmp_path / "journal.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        index = WalIndex(path)  # rollback journal: no -shm file
        assert index.header() is None
        index.close()


@needs_mmap
def test_a_header_being_written_or_not_initialised_is_not_trusted(tmp_path, monkeypatch):
    path = tmp_path / "db.sqlite"
    with wal_database(path):
        index = WalIndex(path)
        header = index.header()
        assert header is not None
        torn = bytearray(header * 2)
        torn[20] ^= 1  # the copies differ while a writer is between them
        uninitialised = bytearray(header * 2)
        uninitialised[IS_INIT] = uninitialised[HEADER + IS_INIT] = 0
        for mapped in (torn, uninitialised):
            monkeypatch.setattr(index, "_map", bytes(mapped))
            assert index.header() is None
        monkeypatch.undo()
        index.close()


# -- online lookups ---------------------------------------------------------------------------


def data_versions_asked(con: sqlite3.Connection) -> list[str]:
    asked: list[str] = []
    con.set_trace_callback(lambda sql: asked.append(sql) if "data_version" in sql else None)
    return asked


def test_lookups_ask_data_version_only_after_a_commit_and_see_it(tmp_path):
    clock = FixedClock(T0 + timedelta(hours=1))
    path = tmp_path / "features.duckdb"
    view = stats_view(None)
    with (
        FeatureStore(path, clock=clock) as fs,
        OnlineFeatureStore(path.with_suffix(".online.db"), clock=clock) as online,
    ):
        fs.apply([DRIVER, view])
        fs.push(view.name, [row(1, 0.1, T0)])
        refs = ["driver_stats:conv_rate"]
        assert online.get_online_features(refs, [{"driver_id": 1}])["conv_rate"] == [0.1]
        asked = data_versions_asked(online._online._con)

        for _ in range(5):
            assert online.get_online_features(refs, [{"driver_id": 1}])["conv_rate"] == [0.1]
        assert asked == []  # nothing was committed: SQLite is not asked

        fs.push(view.name, [row(1, 0.2, T0 + timedelta(minutes=1))])
        assert online.get_online_features(refs, [{"driver_id": 1}])["conv_rate"] == [0.2]
        assert asked  # a commit elsewhere: asked, and the cached row was dropped


def test_every_write_of_another_connection_is_seen_at_the_next_lookup(tmp_path):
    clock = FixedClock(T0 + timedelta(days=1))
    path = tmp_path / "features.duckdb"
    view = stats_view(None)
    rng = random.Random(7)
    with (
        FeatureStore(path, clock=clock) as fs,
        OnlineFeatureStore(path.with_suffix(".online.db"), clock=clock) as online,
    ):
        fs.apply([DRIVER, view])
        latest: dict[int, float] = {}
        for step in range(200):
            writer = fs if rng.random() < 0.5 else online
            driver = rng.randint(1, 4)
            value = round(rng.random(), 6)
            writer.push(view.name, [row(driver, value, T0 + timedelta(seconds=step))])
            latest[driver] = value
            ids = sorted(latest)
            for reader in (fs, online):
                got = reader.get_online_features(
                    ["driver_stats:conv_rate"], [{"driver_id": i} for i in ids]
                )["conv_rate"]
                assert got == [latest[i] for i in ids], f"step {step}"


def row(driver: int, value: float, at: datetime) -> dict[str, object]:
    stamp = at.replace(tzinfo=None)
    return {
        "driver_id": driver,
        "conv_rate": value,
        "avg_daily_trips": 1,
        "datetime": stamp,
        "created": stamp,
    }
