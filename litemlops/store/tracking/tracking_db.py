"""The SQLite database behind tracking and the registry: connections, schema, migrations.

WAL lets readers run beside the one writer; every write is a short
`BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two writers
queue on the busy timeout instead of deadlocking on a lock upgrade). Each
thread gets its own connection. `synchronous=FULL`: a registry change that was
acknowledged survives a power cut.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litemlops.errors import ConfigError

BUSY_TIMEOUT_S = 60.0

# Each migration moves the schema from version i to i + 1 and never changes:
# later issues append to this list so an existing home upgrades in place.
MIGRATIONS: list[str] = [
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
    # 3: pipeline run history.
    """
    CREATE TABLE pipeline_runs (
        run_id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed',
                                             'skipped')),
        trigger TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        params TEXT NOT NULL DEFAULT '{}',
        queued_at INTEGER NOT NULL,
        started_at INTEGER,
        ended_at INTEGER,
        error TEXT,
        host TEXT,
        pid INTEGER
    );
    CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, queued_at DESC);
    CREATE TABLE task_runs (
        run_id TEXT NOT NULL REFERENCES pipeline_runs (run_id),
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed',
                                             'skipped', 'up_for_retry')),
        started_at INTEGER,
        ended_at INTEGER,
        error TEXT,
        traceback TEXT,
        output TEXT,
        PRIMARY KEY (run_id, task, attempt)
    );
    """,
    # 4: when the process started, so a pid the kernel gave to a new process (a
    # container's pid 1 after a restart) is not taken for the one that died.
    """
    ALTER TABLE runs ADD COLUMN proc_start INTEGER;
    ALTER TABLE pipeline_runs ADD COLUMN proc_start INTEGER;
    """,
    # 5: alert rules' states and transitions, so a restart keeps a pending alert's
    # timer and a firing one's cooldown (times in ms since the epoch).
    """
    CREATE TABLE alert_states (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('normal', 'pending', 'firing', 'resolved')),
        metric TEXT NOT NULL,
        value REAL,
        since INTEGER NOT NULL,
        pending_since INTEGER,
        fired_at INTEGER,
        resolved_at INTEGER,
        last_notified_at INTEGER,
        episode_notified INTEGER NOT NULL DEFAULT 0,
        evaluated_at INTEGER,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL,
        at INTEGER NOT NULL,
        fired_at INTEGER,
        notified TEXT NOT NULL DEFAULT '[]',
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alert_history_by_name ON alert_history (name, id);
    """,
]


class TrackingDB:
    """Connections to the tracking database, one per thread, and its schema.

    target: a path, ":memory:" (one shared connection behind a lock, since every
    connection to ":memory:" would be a different database) or an open
    `sqlite3.Connection` (shared behind a lock, its row factory set to
    `sqlite3.Row`, not closed by us). `path` is the database file, or
    ":memory:" when there is none.
    """

    def __init__(self, target: str | Path | sqlite3.Connection = ":memory:"):
        self._reset_process_state()
        self._shared: sqlite3.Connection | None = None
        self._owned = True
        if isinstance(target, sqlite3.Connection):
            self._shared, self._owned = target, False
            target.row_factory = sqlite3.Row
            files = [r[2] for r in target.execute("PRAGMA database_list") if r[1] == "main"]
            self.path: str = files[0] if files and files[0] else ":memory:"
        else:
            self.path = str(target)
            if self.path == ":memory:":
                self._shared = self._connect()
            else:  # as sqlite makes the file, its folder is made (MLflow makes `mlruns/`)
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    def _reset_process_state(self) -> None:
        # Locks and connections belong to one process: after fork() the child
        # must not wait on a lock a parent thread held, nor use its connections.
        self._pid = os.getpid()
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._guard = threading.RLock()
        self._writer = threading.RLock()

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            self._reset_process_state()
            if self._shared is not None and self._owned:
                self._shared = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,  # each thread uses its own; close() may be elsewhere
            )
            _wal(con)
        except sqlite3.Error as exc:
            raise ConfigError(f"tracking database {self.path} cannot be opened: {exc}") from exc
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA foreign_keys=ON")
        con.row_factory = sqlite3.Row
        with self._guard:
            # Connections of threads that have ended are closed here, so
            # short-lived threads do not pile up open files.
            for _, old in [e for e in self._all if not e[0].is_alive()]:
                old.close()
            self._all = [e for e in self._all if e[0].is_alive()]
            self._all.append((threading.current_thread(), con))
        return con

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (the shared one for ":memory:")."""
        self._check_process()
        if self._shared is not None:
            return self._shared
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, committed on success and rolled back on error.

        Threads of this process queue on a lock before asking SQLite: its busy
        handler sleeps in growing steps, so a thread could otherwise wait half a
        second while others keep taking the write lock. Other processes still
        queue on the busy timeout. If COMMIT itself fails (disk full), the
        transaction is rolled back so the connection does not keep the lock.
        """
        con = self.connection()
        shared = self._guard if self._shared is not None else _nothing()
        with self._writer, shared:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        con = self.connection()
        with self._guard if self._shared is not None else _nothing():
            return con.execute(sql, params).fetchall()

    def migrate(self) -> int:
        """Bring the schema to the newest version; return the version."""
        with self.write() as con:
            current = con.execute("PRAGMA user_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise ConfigError(
                    f"tracking database {self.path} has schema {current}, newer than this "
                    f"litemlops knows ({len(MIGRATIONS)}); upgrade litemlops"
                )
            for version in range(current, len(MIGRATIONS)):
                for statement in _statements(MIGRATIONS[version]):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {version + 1}")
        return len(MIGRATIONS)

    def close(self) -> None:
        with self._guard:
            if self._owned:
                for _, con in self._all:
                    con.close()
                if self._shared is not None:
                    self._shared.close()
            self._all.clear()
        self._local = threading.local()


def _wal(con: sqlite3.Connection) -> None:
    """Switch to WAL. On a brand-new file several processes may race to do it, and
    SQLite answers "locked" at once, without the busy timeout: retry until it passes."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.001
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    return [s.strip() for s in script.split(";") if s.strip()]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


Clock = Callable[[], float]
