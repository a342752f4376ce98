"""Opening a feature store: on connections the caller owns (left open when the store
closes or fails to open), on files that are no store of ours, and on a history a newer
litemlops wrote."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from shared_views import DRIVER, stat_row, stats_view

from litemlops.errors import ConfigError
from litemlops.store import FeatureStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def now() -> datetime:
    return T0 + timedelta(hours=1)


def test_a_store_on_a_given_duckdb_connection_writes_there_and_leaves_it_open(tmp_path):
    con = duckdb.connect()
    try:
        with FeatureStore(con, clock=now) as fs:
            fs.apply([DRIVER, stats_view(None)])
            fs.ingest("driver_stats", [stat_row(1, T0, 0.5), stat_row(2, T0, 0.7)])
            fs.materialize()
            served = fs.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 2}])
            assert served["conv_rate"] == [0.7]
        # Closing the store closed its (in-memory) online store, not the caller's connection.
        assert con.execute('SELECT count(*) FROM "fv_driver_stats"').fetchall() == [(2,)]
        assert list(tmp_path.iterdir()) == []
        with FeatureStore(con, clock=now) as again:  # the history is still there
            assert again.describe("driver_stats")["offline_rows"] == 2
            assert again.describe("driver_stats")["online_entities"] == 0  # a new online store
    finally:
        con.close()


def test_an_online_store_that_cannot_open_leaves_the_given_connection_open(tmp_path):
    con = duckdb.connect()
    try:
        with pytest.raises(ConfigError, match=r"online store .*missing.* cannot be opened"):
            FeatureStore(con, online=tmp_path / "missing" / "online.db", clock=now)
        assert con.execute("SELECT 42").fetchall() == [(42,)]
    finally:
        con.close()


def test_a_store_on_a_given_sqlite_connection_serves_from_it_and_leaves_it_open(tmp_path):
    online = sqlite3.connect(tmp_path / "online.db", check_same_thread=False, isolation_level=None)
    try:
        with FeatureStore(":memory:", online=online, clock=now) as fs:
            fs.apply([DRIVER, stats_view(None)])
            assert fs.push("driver_stats", [stat_row(1, T0, 0.25)]).online_written == 1
        # The store is closed; the connection it was handed still reads what was pushed.
        rows = online.execute('SELECT driver_id, conv_rate FROM "online_driver_stats"')
        assert rows.fetchall() == [(1, 0.25)]
    finally:
        online.close()


def test_a_file_that_is_no_duckdb_database_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "features.duckdb"
    content = b"not a database, " * 512
    path.write_bytes(content)
    with pytest.raises(duckdb.IOException, match="not a valid DuckDB database file") as caught:
        FeatureStore(path, clock=now)
    # Another process's lock would be a HomeLockedError; this is the file itself.
    assert "lock" not in str(caught.value).lower()
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.duckdb"]


def set_schema_version(path: Path, version: int) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE _lm_meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    finally:
        con.close()


def test_a_history_a_newer_litemlops_wrote_is_refused_and_kept(tmp_path):
    path = tmp_path / "features.duckdb"
    with FeatureStore(path, clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.ingest("driver_stats", [stat_row(1, T0, 0.5)])
    set_schema_version(path, 2)
    with pytest.raises(
        ConfigError, match=r"newer litemlops \(schema 2, this one knows 1\); upgrade litemlops"
    ):
        FeatureStore(path, clock=now)
    set_schema_version(path, 1)  # as the current version wrote it: opens, rows intact
    with FeatureStore(path, clock=now) as fs:
        assert fs.describe("driver_stats")["offline_rows"] == 1
