"""registry.db's on-disk schema: what a fresh file holds once its three owners (tracking,
the pipeline history, the alerts) have opened it, and that a file left at any
version of the one schema it had before they split upgrades to exactly the same
thing, keeping every row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from legacy_registry import LEGACY_MIGRATIONS

from litemlops.errors import ConfigError
from litemlops.monitoring import alert_store
from litemlops.monitoring.alert_store import AlertStore
from litemlops.scheduler import history
from litemlops.scheduler.history import PipelineHistory
from litemlops.store.sqlite import LAYOUT, SQLiteDB, migrate, schema_version
from litemlops.store.tracking import tracking_db
from litemlops.store.tracking.tracker import Tracker

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = FIXTURES / "registry_schema.sql"
# What litemlops wrote before the tables got owners (schema 5, the last shared one).
BEFORE_THE_SPLIT = FIXTURES / "registry_schema_v5.sql"
RUN_ID = "0123456789abcdef0123456789abcdef"
OWNERS = {s.owner: s for s in (tracking_db.SCHEMA, history.SCHEMA, alert_store.SCHEMA)}


def schema_text(path: Path) -> str:
    """The schema as SQLite keeps it: user_version, the owners' versions, then every
    table, index and trigger with its stored CREATE text (automatic indexes by name)."""
    con = sqlite3.connect(path)
    try:
        lines = [f"PRAGMA user_version = {con.execute('PRAGMA user_version').fetchone()[0]};"]
        for owner, version in con.execute(
            "SELECT owner, version FROM schema_versions WHERE owner != 'legacy' ORDER BY owner"
        ):
            lines.append(f"-- owner {owner} at version {version}")
        for kind, name, table, sql in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ):
            lines.append(f"-- {kind} {name} on {table}")
            lines.append(f"{sql};" if sql is not None else "-- (made by SQLite)")
    finally:
        con.close()
    return "\n".join(lines) + "\n"


def at_version(path: Path, version: int) -> None:
    """A database as a litemlops whose newest shared migration was `version` left it."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for script in LEGACY_MIGRATIONS[:version]:
            con.executescript(script)
        con.execute(f"PRAGMA user_version = {version}")
    finally:
        con.close()


def open_all(path: Path, order: tuple[str, ...] = ("tracking", "pipeline_history", "alerts")):
    """Open the file as `litemlops run` does: each owner migrates its own tables."""
    db = SQLiteDB(path)
    try:
        for owner in order:
            migrate(db, OWNERS[owner])
    finally:
        db.close()


def rows_of(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] != "schema_versions"
        ]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def test_a_fresh_registry_db_has_exactly_the_committed_schema(tmp_path):
    path = tmp_path / "registry.db"
    open_all(path)
    assert schema_text(path) == EXPECTED.read_text()


@pytest.mark.parametrize("version", range(len(LEGACY_MIGRATIONS) + 1))
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
        PipelineHistory(tracker.db)
        AlertStore(tracker.db)
    assert schema_text(path) == EXPECTED.read_text()
    if version >= 1:
        assert [(r.run_id, r.name, r.status) for r in runs] == [(RUN_ID, "kept", "finished")]


@pytest.mark.parametrize("version", range(len(LEGACY_MIGRATIONS) + 1))
@pytest.mark.parametrize(
    "order",
    [("alerts", "pipeline_history", "tracking"), ("pipeline_history", "tracking", "alerts")],
)
def test_the_owners_upgrade_an_old_file_in_any_order_and_in_separate_openings(
    tmp_path, version, order
):
    path = tmp_path / "registry.db"
    at_version(path, version)
    for owner in order:  # each opening is a process of its own (a CLI command, the server)
        open_all(path, (owner,))
    assert schema_text(path) == EXPECTED.read_text()


def fill_every_table(con: sqlite3.Connection) -> None:
    """One row in every table of the schema before the split, by its columns' types."""
    special = {
        ("runs", "status"): "finished",
        ("pipeline_runs", "state"): "success",
        ("task_runs", "state"): "up_for_retry",
        ("alert_states", "state"): "firing",
    }
    tables = [
        r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]
    for table in tables:
        columns = con.execute(f"PRAGMA table_info({table})").fetchall()
        values = []
        for _, name, kind, *_rest in columns:
            if (table, name) in special:
                values.append(special[(table, name)])
            elif kind == "INTEGER":
                values.append(7)
            elif kind == "REAL":
                values.append(0.25)
            else:
                values.append(f"{table}.{name}")
        marks = ", ".join("?" * len(values))
        con.execute(f"INSERT INTO {table} VALUES ({marks})", values)


def test_a_home_made_before_the_split_opens_with_every_row_kept(tmp_path):
    path = tmp_path / "registry.db"
    con = sqlite3.connect(path, isolation_level=None)
    # The fixture lists indexes before their tables (by type, then name).
    statements = [
        "\n".join(line for line in chunk.splitlines() if not line.startswith("--")).strip()
        for chunk in BEFORE_THE_SPLIT.read_text().split(";\n")
    ]
    for statement in sorted(filter(None, statements), key=lambda s: "INDEX" in s.split("(")[0]):
        con.execute(statement)
    fill_every_table(con)
    con.close()
    before = rows_of(path)
    assert len(before) == 17 and all(len(rows) == 1 for rows in before.values())
    with Tracker(path) as tracker:
        assert tracker.get_run("runs.run_id").status == "finished"
        counts = PipelineHistory(tracker.db).counts()
        assert counts == [("pipeline_runs.pipeline", "success", 1)]
        stored = AlertStore(tracker.db).states(["alert_states.name"])
        assert stored["alert_states.name"].fired_at == 7
    after = rows_of(path)
    # Later migrations add columns (with defaults) at the end: every old value stays.
    kept = {t: [row[: len(before[t][0])] for row in after[t]] for t in before}
    assert kept == before
    assert set(after) - set(before) == {"mlflow_models"}  # a table added since
    assert after["runs"][0][-1] == after["experiments"][0][-2] == "active"
    assert schema_text(path) == EXPECTED.read_text()


def test_each_owner_keeps_its_own_version(tmp_path):
    path = tmp_path / "registry.db"
    open_all(path)
    db = SQLiteDB(path)
    try:
        assert {o: schema_version(db, o) for o in OWNERS} == {
            "tracking": 5,
            "pipeline_history": 2,
            "alerts": 1,
        }
        assert db.read("PRAGMA user_version")[0][0] == LAYOUT
    finally:
        db.close()


def test_an_owner_refuses_tables_newer_than_it_knows_and_the_others_still_open(tmp_path):
    path = tmp_path / "registry.db"
    open_all(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("UPDATE schema_versions SET version = 9 WHERE owner = 'alerts'")
    con.close()
    db = SQLiteDB(path)
    try:
        with pytest.raises(ConfigError, match="alerts schema 9, newer"):
            AlertStore(db)
        PipelineHistory(db).counts()
    finally:
        db.close()
    Tracker(path).close()


def test_a_file_of_a_newer_layout_is_refused(tmp_path):
    path = tmp_path / "registry.db"
    open_all(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"PRAGMA user_version = {LAYOUT + 1}")
    con.close()
    with pytest.raises(ConfigError, match="newer"):
        Tracker(path)
