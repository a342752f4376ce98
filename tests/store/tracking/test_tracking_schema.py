"""The tracking database's on-disk schema: what a fresh registry.db holds, and that
a database left at any older schema version upgrades to exactly the same thing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from litemlops.store.tracking.tracker import Tracker
from litemlops.store.tracking.tracking_db import MIGRATIONS

EXPECTED = Path(__file__).parent / "fixtures" / "registry_schema.sql"
RUN_ID = "0123456789abcdef0123456789abcdef"


def schema_text(path: Path) -> str:
    """The schema as SQLite keeps it: user_version, then every table, index and
    trigger with its stored CREATE text (automatic indexes by name only)."""
    con = sqlite3.connect(path)
    try:
        lines = [f"PRAGMA user_version = {con.execute('PRAGMA user_version').fetchone()[0]};"]
        for kind, name, table, sql in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ):
            lines.append(f"-- {kind} {name} on {table}")
            lines.append(f"{sql};" if sql is not None else "-- (made by SQLite)")
    finally:
        con.close()
    return "\n".join(lines) + "\n"


def at_version(path: Path, version: int) -> None:
    """A database as a litemlops whose newest migration was `version` left it."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for script in MIGRATIONS[:version]:
            con.executescript(script)
        con.execute(f"PRAGMA user_version = {version}")
    finally:
        con.close()


def test_a_fresh_registry_db_has_exactly_the_committed_schema(tmp_path):
    path = tmp_path / "registry.db"
    Tracker(path).close()
    assert schema_text(path) == EXPECTED.read_text()


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_a_database_at_an_older_version_upgrades_to_the_same_schema_keeping_its_rows(
    tmp_path, version
):
    path = tmp_path / "registry.db"
    at_version(path, version)
    if version >= 1:  # the first migration made runs; a run logged back then survives
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("INSERT INTO experiments VALUES (1, 'old', 0, '{}')")
        con.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time) "
            "VALUES (?, 1, 'kept', 'finished', 1000, 2000)",
            [RUN_ID],
        )
        con.close()
    with Tracker(path) as tracker:
        runs = tracker.list_runs("old") if version >= 1 else []
    assert schema_text(path) == EXPECTED.read_text()
    if version >= 1:
        assert [(r.run_id, r.name, r.status) for r in runs] == [(RUN_ID, "kept", "finished")]

