"""Alert rules' states and transitions: their tables in `registry.db`, their migrations,
every query. `alerts` holds the rules' logic and calls this module; times are
milliseconds since the epoch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from litemlops.store.sqlite import Schema, SQLiteDB, migrate

# Each migration moves these tables from version i to i + 1 and never changes.
MIGRATIONS: tuple[str, ...] = (
    # 1: alert rules' states and transitions, so a restart keeps a pending alert's
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
)

# Where the migration sat in the one schema registry.db had before its tables got
# owners (5: the alerts).
SCHEMA = Schema("alerts", MIGRATIONS, legacy=(5,))


@dataclass
class StoredState:
    """A rule's persisted state."""

    state: str
    since: int
    value: float | None = None
    pending_since: int | None = None
    fired_at: int | None = None
    resolved_at: int | None = None
    last_notified_at: int | None = None
    episode_notified: bool = False
    evaluated_at: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class StoredTransition:
    """One recorded change of a rule's state."""

    name: str
    from_state: str
    to_state: str
    metric: str
    value: float | None
    at: int
    fired_at: int | None
    notified: tuple[str, ...]
    detail: str


class AlertStore:
    """The alerts' states and history in `db` (migrated on open)."""

    def __init__(self, db: SQLiteDB):
        self.db = db
        migrate(db, SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[AlertWrite]:
        """One write transaction: read states, save them and record transitions at once."""
        with self.db.write() as con:
            yield AlertWrite(con)

    def states(self, names: Sequence[str]) -> dict[str, StoredState]:
        """The stored states of the rules named, by name (a rule never saved is absent)."""
        return _states(self.db.read(_select_states(names), list(names)))

    def history(self, name: str | None, limit: int) -> list[StoredTransition]:
        """Transitions, newest first; of one rule when `name` is given."""
        where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
        rows = self.db.read(
            f"SELECT * FROM alert_history {where} ORDER BY id DESC LIMIT ?",
            [*params, max(0, int(limit))],
        )
        return [
            StoredTransition(
                name=r["name"],
                from_state=r["from_state"],
                to_state=r["to_state"],
                metric=r["metric"],
                value=r["value"],
                at=r["at"],
                fired_at=r["fired_at"],
                notified=tuple(json.loads(r["notified"])),
                detail=r["detail"],
            )
            for r in rows
        ]


class AlertWrite:
    """The alert tables inside one open write transaction (see `AlertStore.transaction`)."""

    def __init__(self, con: sqlite3.Connection):
        self._con = con

    def states(self, names: Sequence[str]) -> dict[str, StoredState]:
        return _states(self._con.execute(_select_states(names), list(names)).fetchall())

    def save(self, name: str, metric: str, s: StoredState) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO alert_states (name, state, metric, value, since, "
            "pending_since, fired_at, resolved_at, last_notified_at, episode_notified, "
            "evaluated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                s.state,
                metric,
                s.value,
                s.since,
                s.pending_since,
                s.fired_at,
                s.resolved_at,
                s.last_notified_at,
                int(s.episode_notified),
                s.evaluated_at,
                s.detail,
            ),
        )

    def record(self, t: StoredTransition) -> None:
        self._con.execute(
            "INSERT INTO alert_history (name, from_state, to_state, metric, value, at, "
            "fired_at, notified, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t.name,
                t.from_state,
                t.to_state,
                t.metric,
                t.value,
                t.at,
                t.fired_at,
                json.dumps(list(t.notified)),
                t.detail,
            ),
        )


def _select_states(names: Sequence[str]) -> str:
    return "SELECT * FROM alert_states WHERE name IN ({})".format(",".join("?" * len(names)))


def _states(rows: Sequence[sqlite3.Row]) -> dict[str, StoredState]:
    return {
        r["name"]: StoredState(
            state=r["state"],
            since=r["since"],
            value=r["value"],
            pending_since=r["pending_since"],
            fired_at=r["fired_at"],
            resolved_at=r["resolved_at"],
            last_notified_at=r["last_notified_at"],
            episode_notified=bool(r["episode_notified"]),
            evaluated_at=r["evaluated_at"],
            detail=r["detail"],
        )
        for r in rows
    }
