"""The tracker's and the registry's tables: experiments, runs and what they log,
registered models, versions and aliases.

This module owns them: their schema and migrations are here and nothing outside
`store/tracking/` writes SQL against them. The connection plumbing is
`store.sqlite`, shared with the file's other owners (the pipeline history, the
alerts), which keep their tables and versions apart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from litemlops.store.sqlite import Schema, SQLiteDB, migrate

__all__ = ["MIGRATIONS", "SCHEMA", "TrackingDB"]

# Each migration moves these tables from version i to i + 1 and never changes:
# later issues append to this list so an existing home upgrades in place.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE experiments (
        experiment_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'killed')),
        start_time INTEGER NOT NULL,
        end_time INTEGER,
        parent_run_id TEXT REFERENCES runs (run_id),
        git_commit TEXT,
        error TEXT
    );
    CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, run_id);
    CREATE INDEX runs_by_parent ON runs (parent_run_id);
    CREATE TABLE run_tags (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE params (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        step INTEGER NOT NULL,
        timestamp INTEGER NOT NULL
    );
    CREATE INDEX metrics_by_run ON metrics (run_id, key, step);
    CREATE TABLE latest_metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        step INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        experiment_id INTEGER NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX latest_by_key ON latest_metrics (experiment_id, key, value, run_id);
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, path)
    ) WITHOUT ROWID;
    CREATE TABLE logged_models (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        python_version TEXT NOT NULL,
        libraries TEXT NOT NULL,
        signature TEXT,
        input_example TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE run_inputs (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        details TEXT NOT NULL,
        PRIMARY KEY (run_id, kind, name)
    ) WITHOUT ROWID;
    CREATE TABLE registered_models (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE model_versions (
        name TEXT NOT NULL REFERENCES registered_models (name),
        version INTEGER NOT NULL,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        model_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        lineage TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE aliases (
        name TEXT NOT NULL REFERENCES registered_models (name),
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (name, alias)
    );
    CREATE TABLE alias_history (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        from_version INTEGER,
        to_version INTEGER,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX alias_history_by_alias ON alias_history (name, alias, id);
    """,
    # 2: who runs a run (so only runs of dead processes are marked interrupted),
    # and what each alias move was (rollbacks pop the alias's stack of versions).
    """
    ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE alias_history ADD COLUMN action TEXT NOT NULL DEFAULT 'set';
    """,
    # 3: when the process started, so a pid the kernel gave to a new process (a
    # container's pid 1 after a restart) is not taken for the one that died.
    """
    ALTER TABLE runs ADD COLUMN proc_start INTEGER;
    """,
    # 4: deleted experiments and runs stay restorable (MLflow's lifecycle stages), and
    # an experiment records when it last changed.
    """
    ALTER TABLE experiments ADD COLUMN lifecycle_stage TEXT NOT NULL DEFAULT 'active';
    ALTER TABLE experiments ADD COLUMN updated_at INTEGER;
    ALTER TABLE runs ADD COLUMN lifecycle_stage TEXT NOT NULL DEFAULT 'active';
    """,
    # 5: models MLflow's client logs (its LoggedModel): their files are artifacts of the
    # run that logged them; registering one records its model file as the run's model.
    """
    CREATE TABLE mlflow_models (
        model_id TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
        run_id TEXT REFERENCES runs (run_id),
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        model_type TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        params TEXT NOT NULL DEFAULT '{}',
        lifecycle_stage TEXT NOT NULL DEFAULT 'active',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX mlflow_models_by_run ON mlflow_models (run_id);
    """,
)

# Where each migration sat in the one schema registry.db had before its tables got
# owners (1: the first, 2: run owners and alias actions, 4: process start times).
SCHEMA = Schema("tracking", MIGRATIONS, legacy=(1, 2, 4))


class TrackingDB(SQLiteDB):
    """The registry database with the tracker's and registry's tables migrated.

    target: a path, ":memory:" or an open `sqlite3.Connection` (see `SQLiteDB`).
    """

    def __init__(self, target: str | Path | sqlite3.Connection = ":memory:"):
        super().__init__(target)
        self.migrate()

    def migrate(self) -> int:
        """Bring the tracking tables to the newest version; return the version."""
        return migrate(self, SCHEMA)


Clock = Callable[[], float]
