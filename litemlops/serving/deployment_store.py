"""Deployments' tables in `registry.db`: their migrations and every query.

`deployments` holds one row per deployment (its spec, pinned versions, state and
live status); at most one is active per service, which the schema itself
enforces. `deployment_requests` records which arm served each request, so a
`/feedback` label joins to its arm however late it comes while the deployment
runs, once per request id (keyed by deployment and request id only: a second
index on the request id made every insert several times dearer as the table grew);
`deployment_log` is each deployment's history (steps, checks, rollback,
promotion). A deployment's outcomes per arm are saved with it when it ends (labels
join only while it runs), and its request rows are then deleted in steps (`purge`).
Times are milliseconds since the epoch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from litemlops.serving.errors import DeploymentConflictError, DeploymentNotFoundError
from litemlops.store.sqlite import Schema, SQLiteDB, migrate

STATES = ("active", "promoted", "rolled_back", "ended")

# Each migration moves these tables from version i to i + 1 and never changes.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        service TEXT NOT NULL,
        strategy TEXT NOT NULL CHECK (strategy IN ('canary', 'shadow', 'ab', 'bandit')),
        model TEXT NOT NULL,
        champion TEXT NOT NULL,
        champion_version INTEGER,
        versions TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'promoted', 'rolled_back', 'ended')),
        status TEXT NOT NULL DEFAULT '{}',
        salt TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE UNIQUE INDEX deployments_one_active ON deployments (service)
        WHERE state = 'active';
    CREATE TABLE deployment_requests (
        deployment TEXT NOT NULL,
        request_id TEXT NOT NULL,
        arm INTEGER NOT NULL,
        served_at INTEGER NOT NULL,
        label REAL,
        labelled_at INTEGER,
        PRIMARY KEY (deployment, request_id)
    ) WITHOUT ROWID;
    CREATE TABLE deployment_log (
        id INTEGER PRIMARY KEY,
        deployment TEXT NOT NULL,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX deployment_log_by_deployment ON deployment_log (deployment, id);
    """,
    # An ended deployment's outcomes per arm, saved as it ends: its request rows can go.
    "ALTER TABLE deployments ADD COLUMN outcomes TEXT;",
    # A request is recorded when the controller writes its batch (within a tick of its
    # answer), not timed one by one on the request path: the column says so.
    "ALTER TABLE deployment_requests RENAME COLUMN served_at TO recorded_at;",
)

#: Request rows of ended deployments deleted at most per `purge` call.
PURGE_ROWS = 50_000

SCHEMA = Schema("deployments", MIGRATIONS)


@dataclass(frozen=True)
class DeploymentRecord:
    """One stored deployment. versions: the challengers' pinned versions, in arm
    order after the champion (arm 0); spec and status: JSON objects."""

    id: str
    name: str
    service: str
    strategy: str
    model: str
    champion: str
    champion_version: int | None
    versions: tuple[int, ...]
    spec: dict[str, Any]
    state: str
    status: dict[str, Any]
    salt: str
    started_at: int
    ended_at: int | None
    reason: str


@dataclass(frozen=True)
class ArmOutcomes:
    """What the requests table says of one arm: requests it served, labels joined to
    them, and how many labels were successes (> 0) and their sum."""

    arm: int
    requests: int
    labelled: int
    successes: int
    label_sum: float


class DeploymentStore:
    """The deployments' tables in `db` (migrated on open)."""

    def __init__(self, db: SQLiteDB):
        self.db = db
        migrate(db, SCHEMA)

    def insert(self, record: DeploymentRecord) -> None:
        """Store a new active deployment; `DeploymentConflictError` when its service
        already has one or its name is taken."""
        try:
            with self.db.write() as con:
                con.execute(
                    "INSERT INTO deployments (id, name, service, strategy, model, champion, "
                    "champion_version, versions, spec, state, status, salt, started_at, "
                    "ended_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        record.id, record.name, record.service, record.strategy,
                        record.model, record.champion, record.champion_version,
                        json.dumps(list(record.versions)), json.dumps(record.spec),
                        record.state, json.dumps(record.status), record.salt,
                        record.started_at, record.ended_at, record.reason,
                    ],
                )  # fmt: skip
                _log(con, record.id, record.started_at, "started",
                     {"versions": list(record.versions), "champion": record.champion_version})
        except sqlite3.IntegrityError:
            busy = self.active(record.service)
            if busy is not None:
                raise DeploymentConflictError(
                    f"service {record.service!r} already has an active deployment "
                    f"({busy.name!r}, {busy.strategy}); end it first (abort or promote)"
                ) from None
            raise DeploymentConflictError(
                f"a deployment named {record.name!r} exists already; choose another name"
            ) from None

    def get(self, deployment: str, *, service: str | None = None) -> DeploymentRecord:
        """The deployment with this id or name (of `service`, when given)."""
        rows = self.db.read(
            "SELECT * FROM deployments WHERE id = ? OR name = ?", [deployment, deployment]
        )
        if not rows or (service is not None and rows[0]["service"] != service):
            whose = f"service {service!r} has" if service is not None else "there is"
            raise DeploymentNotFoundError(f"{whose} no deployment {deployment!r}")
        return _record(rows[0])

    def active(self, service: str) -> DeploymentRecord | None:
        rows = self.db.read(
            "SELECT * FROM deployments WHERE service = ? AND state = 'active'", [service]
        )
        return _record(rows[0]) if rows else None

    def recent(self, service: str | None = None, limit: int = 50) -> list[DeploymentRecord]:
        """Deployments, newest first."""
        where, args = ("WHERE service = ?", [service]) if service is not None else ("", [])
        rows = self.db.read(
            f"SELECT * FROM deployments {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
            [*args, max(limit, 0)],
        )
        return [_record(r) for r in rows]

    def save_status(self, deployment: str, status: dict[str, Any]) -> None:
        with self.db.write() as con:
            con.execute(
                "UPDATE deployments SET status = ? WHERE id = ?", [json.dumps(status), deployment]
            )

    def close(
        self, deployment: str, state: str, reason: str, status: dict[str, Any], *, now: int
    ) -> bool:
        """End an active deployment in `state`; False when it had ended already."""
        if state not in STATES or state == "active":
            raise ValueError(f"not an end state: {state!r}")
        with self.db.write() as con:
            cur = con.execute(
                "UPDATE deployments SET state = ?, reason = ?, status = ?, ended_at = ? "
                "WHERE id = ? AND state = 'active'",
                [state, reason, json.dumps(status), now, deployment],
            )
            ended = cur.rowcount == 1
            if ended:
                _log(con, deployment, now, state, {"reason": reason})
                # Labels join only while a deployment runs: its outcomes are final now,
                # and `purge` may delete the rows they were counted from.
                outcomes = [
                    list(row) for row in con.execute(_OUTCOMES, [deployment]).fetchall()
                ]
                con.execute(
                    "UPDATE deployments SET outcomes = ? WHERE id = ?",
                    [json.dumps(outcomes), deployment],
                )
        return ended

    def purge(self, limit: int = PURGE_ROWS) -> int:
        """Delete up to `limit` request rows of one ended deployment (its outcomes are
        saved); how many went. The controller calls it each tick, so a long test's
        rows go in steps that never hold the database for long."""
        found = self.db.read(
            "SELECT id FROM deployments d WHERE state != 'active' AND outcomes IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM deployment_requests r WHERE r.deployment = d.id) "
            "LIMIT 1"
        )
        if not found:
            return 0
        deployment = found[0]["id"]
        with self.db.write() as con:
            return con.execute(
                "DELETE FROM deployment_requests WHERE deployment = ? AND request_id IN "
                "(SELECT request_id FROM deployment_requests WHERE deployment = ? LIMIT ?)",
                [deployment, deployment, limit],
            ).rowcount

    def log(self, deployment: str, action: str, detail: dict[str, Any], *, now: int) -> None:
        with self.db.write() as con:
            _log(con, deployment, now, action, detail)

    def history(self, deployment: str, limit: int = 200) -> list[dict[str, Any]]:
        """The deployment's log, oldest first (the last `limit` entries)."""
        rows = self.db.read(
            "SELECT * FROM (SELECT * FROM deployment_log WHERE deployment = ? "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            [deployment, max(limit, 0)],
        )
        return [
            {"at": r["at"], "action": r["action"], "detail": json.loads(r["detail"])}
            for r in rows
        ]

    # -- requests and their labels ----------------------------------------------------

    def write(
        self,
        served: Mapping[str, Sequence[tuple[int, str]]],
        labels: Sequence[tuple[str, float, int]],
        deployments: Sequence[str] = (),
        *,
        now: int,
    ) -> list[tuple[str, int, float]]:
        """Record served requests ({deployment id: [(arm, request_id), ...]}, recorded at
        `now`) and then labels (request_id, label, at) for requests of `deployments`
        (ids), in one transaction; return (deployment, arm, label) of each label that
        joined a request not labelled before. A request id served twice in one
        deployment keeps its first arm; a second label for it counts for nothing."""
        joined: list[tuple[str, int, float]] = []
        with self.db.write() as con:
            for deployment, rows in served.items():
                if not rows:
                    continue
                # As one JSON array in one statement: SQLite inserts the batch in one
                # call that releases the interpreter, where a statement per row handed
                # it back and forth with the request path's thread at each row; and
                # SQLite sorts it into key order (so a batch touches fewer pages), with
                # a repeated id in arrival order (so it keeps its first arm).
                con.execute(
                    "INSERT OR IGNORE INTO deployment_requests "
                    "(deployment, request_id, arm, recorded_at) "
                    "SELECT ?, json_extract(value, '$[1]') AS r, json_extract(value, '$[0]'), ? "
                    "FROM json_each(?) ORDER BY r, key",
                    [deployment, now, orjson.dumps(rows).decode()],
                )
            for deployment in deployments:
                for request_id, label, at in labels:
                    joined.extend(
                        (d, int(a), float(v))
                        for d, a, v in con.execute(
                            "UPDATE deployment_requests SET label = ?, labelled_at = ? "
                            "WHERE deployment = ? AND request_id = ? AND label IS NULL "
                            "RETURNING deployment, arm, label",
                            [label, at, deployment, request_id],
                        ).fetchall()
                    )
        return joined

    def outcomes(self, deployment: str) -> list[ArmOutcomes]:
        """Per arm that served a request: requests, labels, successes, label sum (an
        ended deployment's as saved when it ended)."""
        saved = self.db.read("SELECT outcomes FROM deployments WHERE id = ?", [deployment])
        if saved and saved[0]["outcomes"] is not None:
            rows = json.loads(saved[0]["outcomes"])
        else:
            rows = [tuple(r) for r in self.db.read(_OUTCOMES, [deployment])]
        return [
            ArmOutcomes(int(arm), int(requests), int(labelled), int(successes), float(total))
            for arm, requests, labelled, successes, total in rows
        ]



_OUTCOMES = (
    "SELECT arm, count(*) AS requests, count(label) AS labelled, "
    "coalesce(sum(label > 0), 0) AS successes, coalesce(sum(label), 0.0) AS label_sum "
    "FROM deployment_requests WHERE deployment = ? GROUP BY arm ORDER BY arm"
)


def _log(con: sqlite3.Connection, deployment: str, now: int, action: str, detail: Any) -> None:
    con.execute(
        "INSERT INTO deployment_log (deployment, at, action, detail) VALUES (?, ?, ?, ?)",
        [deployment, now, action, json.dumps(detail, default=str)],
    )


def _record(r: sqlite3.Row) -> DeploymentRecord:
    return DeploymentRecord(
        id=r["id"],
        name=r["name"],
        service=r["service"],
        strategy=r["strategy"],
        model=r["model"],
        champion=r["champion"],
        champion_version=r["champion_version"],
        versions=tuple(json.loads(r["versions"])),
        spec=json.loads(r["spec"]),
        state=r["state"],
        status=json.loads(r["status"]),
        salt=r["salt"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        reason=r["reason"],
    )
