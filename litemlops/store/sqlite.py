"""One SQLite file shared by several owners: connections, transactions, per-owner schemas.

WAL lets readers run beside the one writer; every write is a short
`BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two writers
queue on the busy timeout instead of deadlocking on a lock upgrade). Each
thread gets its own connection. `synchronous=FULL`: a change that was
acknowledged survives a power cut.

`registry.db` holds the tracker's and registry's tables, the pipeline history
and the alerts' states. Each group has one owning module, which declares its
`Schema` (its own migrations, numbered on their own) and calls `migrate` when it
opens; this module knows none of their tables. SQLite's `user_version` is one
number per file, so the owners' versions are rows of `schema_versions`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litemlops.errors import ConfigError

BUSY_TIMEOUT_S = 60.0

LAYOUT = 6
"""`PRAGMA user_version` of a file whose owners keep their versions in `schema_versions`.

Versions 1-5 were the one schema all tables shared before each got an owner; a
litemlops of that time refuses a file at 6 as newer, instead of migrating it again.
"""


@dataclass(frozen=True)
class Schema:
    """One owner's tables: its migrations and where they sat in the shared schema.

    owner: the key of its row in `schema_versions`. migrations: each moves the
    owner's tables from version i to i + 1 and never changes; later issues append.
    legacy: for each migration, the shared schema's version (1-5) that already
    held it, so a file from before the split starts from what it has.
    """

    owner: str
    migrations: tuple[str, ...]
    legacy: tuple[int, ...] = ()


class SQLiteDB:
    """Connections to one SQLite file, one per thread; owners migrate their tables.

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
            raise ConfigError(f"database {self.path} cannot be opened: {exc}") from exc
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

    def close(self) -> None:
        with self._guard:
            if self._owned:
                for _, con in self._all:
                    con.close()
                if self._shared is not None:
                    self._shared.close()
            self._all.clear()
        self._local = threading.local()


def migrate(db: SQLiteDB, schema: Schema) -> int:
    """Bring `schema`'s tables in `db` to its newest version; return the version.

    An up-to-date file costs two reads and no write lock, so an owner made for
    one request (the server's pipeline counts) is cheap.
    """
    target = len(schema.migrations)
    if _recorded(db, schema) == target:
        return target
    with db.write() as con:
        current = _current(con, db.path, schema)
        if current > target:
            raise ConfigError(
                f"database {db.path} has {schema.owner} schema {current}, newer than this "
                f"litemlops knows ({target}); upgrade litemlops"
            )
        for version in range(current, target):
            for statement in _statements(schema.migrations[version]):
                con.execute(statement)
        con.execute(
            "INSERT INTO schema_versions (owner, version) VALUES (?, ?) "
            "ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
            [schema.owner, target],
        )
    return target


def schema_version(db: SQLiteDB, owner: str) -> int | None:
    """The version `owner`'s tables are at in `db`, None if it never migrated them."""
    try:
        rows = db.read("SELECT version FROM schema_versions WHERE owner = ?", [owner])
    except sqlite3.OperationalError:  # no schema_versions yet: nothing was migrated
        return None
    return int(rows[0]["version"]) if rows else None


def _recorded(db: SQLiteDB, schema: Schema) -> int | None:
    layout = db.read("PRAGMA user_version")[0][0]
    if layout != LAYOUT:
        return None
    return schema_version(db, schema.owner)


def _current(con: sqlite3.Connection, path: str, schema: Schema) -> int:
    """The owner's version, inside the write transaction; a file from before the split
    (or a new one) gets `schema_versions` first, remembering the shared version."""
    layout = con.execute("PRAGMA user_version").fetchone()[0]
    if layout > LAYOUT:
        raise ConfigError(
            f"database {path} has schema layout {layout}, newer than this litemlops knows "
            f"({LAYOUT}); upgrade litemlops"
        )
    if layout < LAYOUT:
        con.execute(_VERSIONS_TABLE)
        if layout:
            con.execute(
                "INSERT INTO schema_versions (owner, version) VALUES ('legacy', ?)", [layout]
            )
        con.execute(f"PRAGMA user_version = {LAYOUT}")
    row = con.execute(
        "SELECT version FROM schema_versions WHERE owner = ?", [schema.owner]
    ).fetchone()
    if row is not None:
        return int(row[0])
    legacy = con.execute("SELECT version FROM schema_versions WHERE owner = 'legacy'").fetchone()
    if legacy is None:
        return 0
    return sum(1 for v in schema.legacy if v <= legacy[0])


# 'legacy' is the shared schema's version the file had when it was split: owners
# that have not migrated since start from what it held.
_VERSIONS_TABLE = """CREATE TABLE schema_versions (
        owner TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    )"""


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

