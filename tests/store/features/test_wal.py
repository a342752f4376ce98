"""The WAL file's stamp as a sign of commits, and online lookups that ask SQLite's
data_version only when it changed, yet see every other connection's writes."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from shared_views import DRIVER, stats_view

from litemlops.store import FeatureStore, OnlineFeatureStore
from litemlops.store.features.wal import SETTLED_NS, WalStamp
from litemlops.testing import FixedClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def wal_database(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.execute("CREATE TABLE t (x INTEGER)")
    return con


def age(path: Path, seconds: float = 10.0) -> None:
    """Set the `-wal` file of `path` as last written `seconds` ago."""
    wal = Path(f"{path}-wal")
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(wal, ns=(then, then))


def test_the_stamp_changes_with_each_commit_of_any_connection_and_only_then(tmp_path):
    path = tmp_path / "db.sqlite"
    with wal_database(path) as mine, sqlite3.connect(path, isolation_level=None) as other:
        wal = WalStamp(path)
        age(path)
        seen = wal.stamp()
        assert seen is not None
        mine.execute("SELECT count(*) FROM t").fetchall()  # reads change nothing
        assert wal.stamp() == seen
        for con in (other, mine, other):
            con.execute("INSERT INTO t VALUES (1)")
            age(path, 5.0)  # an older time than any before it could not tell
            now = wal.stamp()
            assert now is not None and now != seen
            seen = now
        size = seen[1]
        other.execute("PRAGMA wal_checkpoint(RESTART)")
        other.execute("INSERT INTO t VALUES (2)")  # the WAL starts over, at its beginning
        assert Path(f"{path}-wal").stat().st_size == size  # so only its time moved
        assert wal.stamp() is None  # written just now: not trusted yet
        age(path, 3.0)
        assert wal.stamp() not in (None, seen)


def test_a_wal_written_less_than_the_settling_time_ago_is_not_trusted(tmp_path):
    path = tmp_path / "db.sqlite"
    with wal_database(path) as con:
        con.execute("INSERT INTO t VALUES (1)")
        wal = WalStamp(path)
        assert wal.stamp() is None  # a commit in the same file-time tick would look alike
        age(path, SETTLED_NS / 1e9 + 0.5)
        assert wal.stamp() is not None
        age(path, SETTLED_NS / 1e9 - 0.5)
        assert wal.stamp() is None


def test_without_a_wal_file_it_cannot_tell(tmp_path):
    path = tmp_path / "journal.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        assert WalStamp(path).stamp() is None  # rollback journal: no -wal file


DMS_BYTE = 128  # SQLite's "dead man switch" lock in the -shm file (os_unix.c: UNIX_SHM_DMS)

TAKE_DMS = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, {dms})
except OSError:
    print("held")
else:
    print("free")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX advisory locks")
def test_an_open_online_store_keeps_sqlites_locks_so_no_other_process_resets_its_index(
    tmp_path,
):
    """While a store is open, its connection holds a shared lock on the -shm file's DMS
    byte; a process that could take it exclusively would think the index unused and
    truncate it under the store (a bus error). Closing a descriptor of that file in
    this process, as a mapping of it once did, drops the lock."""
    path = tmp_path / "features.online.db"
    with OnlineFeatureStore(path) as online:
        online.get_feature_view  # noqa: B018  (opened: the index exists and is locked)
        found = subprocess.run(
            [sys.executable, "-c", TAKE_DMS.format(dms=DMS_BYTE), f"{path}-shm"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
    assert found == "held"


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
        asked = data_versions_asked(online._online._con)
        assert online.get_online_features(refs, [{"driver_id": 1}])["conv_rate"] == [0.1]
        assert online.get_online_features(refs, [{"driver_id": 1}])["conv_rate"] == [0.1]
        assert len(asked) >= 2  # the WAL was written just now: asked each time
        age(path.with_suffix(".online.db"))
        assert online.get_online_features(refs, [{"driver_id": 1}])["conv_rate"] == [0.1]
        asked.clear()

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
            if rng.random() < 0.5:  # as if the write were long ago: stamps are trusted
                age(path.with_suffix(".online.db"))
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
