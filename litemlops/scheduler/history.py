"""The pipeline run history: its tables in `registry.db`, their migrations, every query.

This module owns `pipeline_runs` and `task_runs`; the runner orchestrates and
calls it, retention prunes through it, the server and CLI read it through it.
Times are milliseconds since the epoch; params, payloads and outputs are JSON.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litemlops.clock import from_ms
from litemlops.errors import NotFoundError, ValidationError
from litemlops.store.sqlite import Schema, SQLiteDB, migrate
from litemlops.store.tracking.tracker import process_alive, process_start

#: States a pipeline run can be in.
RUN_STATES = ("queued", "running", "success", "failed", "skipped")

# Each migration moves these tables from version i to i + 1 and never changes.
MIGRATIONS: tuple[str, ...] = (
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
    # 2: when the process started, so a pid the kernel gave to a new process (a
    # container's pid 1 after a restart) is not taken for the one that died.
    """
    ALTER TABLE pipeline_runs ADD COLUMN proc_start INTEGER;
    """,
)

# Where each migration sat in the one schema registry.db had before its tables got
# owners (3: the history, 4: process start times).
SCHEMA = Schema("pipeline_history", MIGRATIONS, legacy=(3, 4))

_ENDED = "('success', 'failed', 'skipped')"
_UNFINISHED_TASKS = "('running', 'queued', 'up_for_retry')"
_CHUNK = 500  # SQL parameters per statement, well under SQLite's limit


class PipelineRunNotFoundError(NotFoundError):
    """No pipeline run with that id."""


@dataclass(frozen=True)
class TaskRun:
    task: str
    attempt: int
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    traceback: str | None
    output: Any


@dataclass(frozen=True)
class PipelineRun:
    run_id: str
    pipeline: str
    state: str
    trigger: str
    payload: dict[str, Any]
    params: dict[str, Any]
    queued_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None


class PipelineHistory:
    """Pipeline runs and their task attempts, in `db` (migrated on open)."""

    def __init__(self, db: SQLiteDB):
        self.db = db
        migrate(db, SCHEMA)

    # -- a run's life ---------------------------------------------------------------------

    def admit(
        self,
        run_id: str,
        pipeline: str,
        *,
        trigger: str,
        payload: str,
        params: str,
        clock: Callable[[], int],
        max_active_runs: int,
        on_busy: str,
    ) -> str:
        """Record a trigger as running, queued or skipped by the pipeline's limits; return
        the state. Counting and inserting are one transaction, so two triggers at once
        cannot both take the last slot. payload, params: JSON text. clock: epoch ms, read
        inside the transaction, so a run never starts before the run it waited for ended."""
        with self.db.write() as con:
            now = clock()
            active = con.execute(
                "SELECT count(*) FROM pipeline_runs WHERE pipeline = ? AND state = 'running'",
                [pipeline],
            ).fetchone()[0]
            waiting = con.execute(
                "SELECT count(*) FROM pipeline_runs WHERE pipeline = ? AND state = 'queued'",
                [pipeline],
            ).fetchone()[0]
            if active < max_active_runs and not waiting:
                state, error = "running", None
            elif on_busy == "skip":
                state = "skipped"
                error = f"{active} run(s) active, max_active_runs={max_active_runs}"
            else:
                state, error = "queued", None
            con.execute(
                "INSERT INTO pipeline_runs (run_id, pipeline, state, trigger, payload, params, "
                "queued_at, started_at, ended_at, error, host, pid, proc_start) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    pipeline,
                    state,
                    trigger,
                    payload,
                    params,
                    now,
                    now if state == "running" else None,
                    now if state == "skipped" else None,
                    error,
                    socket.gethostname(),
                    os.getpid(),
                    process_start(os.getpid()),
                ],
            )
        return state

    def admit_keyed(
        self, run_id: str, pipeline: str, *, trigger: str, payload: str, params: str, now: int
    ) -> bool:
        """Record a run driven from outside, running, unless `run_id` exists; True when
        this call made it. No host or pid: no process of ours holds it, so none is
        taken for dead. payload, params: JSON text."""
        with self.db.write() as con:
            made = con.execute(
                "INSERT INTO pipeline_runs (run_id, pipeline, state, trigger, payload, params, "
                "queued_at, started_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                [run_id, pipeline, trigger, payload, params, now, now],
            ).rowcount
        return bool(made)

    def promote(
        self, run_id: str, pipeline: str, *, max_active_runs: int, clock: Callable[[], int]
    ) -> bool:
        """Start a queued run when a slot is free and it is the oldest waiting. clock:
        epoch ms, read inside the transaction (see `admit`)."""
        with self.db.write() as con:
            now = clock()
            active = con.execute(
                "SELECT count(*) FROM pipeline_runs WHERE pipeline = ? AND state = 'running'",
                [pipeline],
            ).fetchone()[0]
            first = con.execute(
                "SELECT run_id FROM pipeline_runs WHERE pipeline = ? AND state = 'queued' "
                "ORDER BY queued_at, rowid LIMIT 1",
                [pipeline],
            ).fetchone()
            if active >= max_active_runs or first is None or first[0] != run_id:
                return False
            con.execute(
                "UPDATE pipeline_runs SET state = 'running', started_at = ? WHERE run_id = ?",
                [now, run_id],
            )
        return True

    def state(self, run_id: str) -> str | None:
        """The run's state, None if there is no such run."""
        rows = self.db.read("SELECT state FROM pipeline_runs WHERE run_id = ?", [run_id])
        return str(rows[0]["state"]) if rows else None

    def close(self, run_id: str, state: str, error: str | None, *, now: int) -> None:
        """End a running run; one interrupted meanwhile keeps saying so."""
        with self.db.write() as con:
            con.execute(
                "UPDATE pipeline_runs SET state = ?, ended_at = ?, error = ? "
                "WHERE run_id = ? AND state = 'running'",
                [state, now, error, run_id],
            )

    def reopen(self, run_id: str) -> None:
        """Set an ended run running again (a resume)."""
        with self.db.write() as con:
            con.execute(
                "UPDATE pipeline_runs SET state = 'running', ended_at = NULL, error = NULL "
                "WHERE run_id = ?",
                [run_id],
            )

    def complete(self, run_id: str, *, now: int) -> None:
        """Mark an ended run a success (its last missing task was stepped)."""
        with self.db.write() as con:
            con.execute(
                "UPDATE pipeline_runs SET state = 'success', ended_at = ?, error = NULL "
                "WHERE run_id = ?",
                [now, run_id],
            )

    def settle(
        self, run_id: str, tasks: Sequence[str], *, now: int, starting: str | None = None
    ) -> str:
        """Set a run driven from outside by its tasks' last attempts and return its state:
        success when every one of `tasks` succeeded, failed while one's last attempt
        failed, else running. starting: a task about to try again (not failed)."""
        with self.db.write() as con:
            last = {
                r["task"]: r["state"]
                for r in con.execute(
                    "SELECT task, state FROM task_runs WHERE run_id = ? ORDER BY attempt",
                    [run_id],
                )
            }
            done = {r[0] for r in con.execute(
                "SELECT DISTINCT task FROM task_runs WHERE run_id = ? AND state = 'success'",
                [run_id],
            )}  # fmt: skip
            failed = sorted(t for t in tasks if last.get(t) == "failed" and t != starting)
            if all(t in done for t in tasks):
                state, error, ended = "success", None, now
            elif failed:
                state, error, ended = "failed", f"task(s) failed: {failed}", now
            else:
                state, error, ended = "running", None, None
            con.execute(
                "UPDATE pipeline_runs SET state = ?, ended_at = ?, error = ? "
                "WHERE run_id = ? AND state != ?",
                [state, ended, error, run_id, state],
            )
        return state

    def fail_dead(self, *, now: int) -> list[str]:
        """Fail this host's running and queued runs whose process died; return their ids."""
        with self.db.write() as con:
            rows = con.execute(
                "SELECT run_id, pid, proc_start FROM pipeline_runs "
                "WHERE state IN ('running', 'queued') AND host = ?",
                [socket.gethostname()],
            ).fetchall()
            dead = [r["run_id"] for r in rows if not process_alive(r["pid"], r["proc_start"])]
            _fail(con, dead, "interrupted: the process running it stopped", now)
        return dead

    def fail_mine(self, reason: str, *, now: int) -> list[str]:
        """Fail this process's running and queued runs; return their ids."""
        me = os.getpid()
        with self.db.write() as con:
            rows = con.execute(
                "SELECT run_id FROM pipeline_runs WHERE state IN ('running', 'queued') "
                "AND host = ? AND pid = ? AND proc_start IS ?",
                [socket.gethostname(), me, process_start(me)],
            ).fetchall()
            ids = [r["run_id"] for r in rows]
            _fail(con, ids, reason, now)
        return ids

    # -- task attempts --------------------------------------------------------------------

    def last_attempt(self, run_id: str, task: str) -> int:
        """The highest attempt number the task has in the run (0: none yet)."""
        rows = self.db.read(
            "SELECT coalesce(max(attempt), 0) AS n FROM task_runs WHERE run_id = ? AND task = ?",
            [run_id, task],
        )
        return int(rows[0]["n"])

    def start_attempt(self, run_id: str, task: str, attempt: int, *, now: int) -> None:
        with self.db.write() as con:
            con.execute(
                "INSERT INTO task_runs (run_id, task, attempt, state, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                [run_id, task, attempt, now],
            )

    def fail_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        *,
        state: str,
        error: str,
        traceback: str,
        now: int,
    ) -> None:
        """End a running attempt as `state` (failed, or up_for_retry)."""
        with self.db.write() as con:
            con.execute(
                "UPDATE task_runs SET state = ?, ended_at = ?, error = ?, traceback = ? "
                "WHERE run_id = ? AND task = ? AND attempt = ? AND state = 'running'",
                [state, now, error, traceback, run_id, task, attempt],
            )

    def succeed_attempt(
        self, run_id: str, task: str, attempt: int, *, output: str, now: int
    ) -> None:
        """End a running attempt as a success with its output (JSON text)."""
        with self.db.write() as con:
            con.execute(
                "UPDATE task_runs SET state = 'success', ended_at = ?, output = ? "
                "WHERE run_id = ? AND task = ? AND attempt = ? AND state = 'running'",
                [now, output, run_id, task, attempt],
            )

    def skip_task(self, run_id: str, task: str, reason: str, *, now: int) -> None:
        """Record a task as skipped: attempt 0 (no try was made); a resumed run that
        skips it again updates that row."""
        with self.db.write() as con:
            con.execute(
                "INSERT INTO task_runs (run_id, task, attempt, state, started_at, ended_at, "
                "error) VALUES (?, ?, 0, 'skipped', ?, ?, ?) "
                "ON CONFLICT (run_id, task, attempt) DO UPDATE SET "
                "started_at = excluded.started_at, ended_at = excluded.ended_at, "
                "error = excluded.error",
                [run_id, task, now, now, reason],
            )

    def succeeded(self, run_id: str) -> dict[str, Any]:
        """The outputs of the run's tasks that succeeded, by task (the last success)."""
        rows = self.db.read(
            "SELECT task, output FROM task_runs WHERE run_id = ? AND state = 'success' "
            "ORDER BY attempt",
            [run_id],
        )
        return {r["task"]: json.loads(r["output"]) for r in rows}

    # -- reading --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> PipelineRun:
        rows = self.db.read("SELECT * FROM pipeline_runs WHERE run_id = ?", [run_id])
        if not rows:
            raise PipelineRunNotFoundError(f"no pipeline run with id {run_id!r}")
        r = rows[0]
        queued = from_ms(r["queued_at"])
        assert queued is not None
        return PipelineRun(
            run_id=r["run_id"],
            pipeline=r["pipeline"],
            state=r["state"],
            trigger=r["trigger"],
            payload=json.loads(r["payload"]),
            params=json.loads(r["params"]),
            queued_at=queued,
            started_at=from_ms(r["started_at"]),
            ended_at=from_ms(r["ended_at"]),
            error=r["error"],
        )

    def list_runs(
        self, pipeline: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        """Newest first, optionally of one pipeline and in one state."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be an integer >= 1, got {limit!r}")
        if state is not None and state not in RUN_STATES:
            raise ValidationError(f"state must be one of {RUN_STATES}, got {state!r}")
        where, args = [], []
        if pipeline is not None:
            where.append("pipeline = ?")
            args.append(pipeline)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        sql = "SELECT run_id FROM pipeline_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.read(sql + " ORDER BY queued_at DESC, rowid DESC LIMIT ?", [*args, limit])
        return [self.get_run(r["run_id"]) for r in rows]

    def task_runs(self, run_id: str) -> list[TaskRun]:
        """Every attempt of every task of the run, in the order they started."""
        self.get_run(run_id)
        rows = self.db.read(
            "SELECT * FROM task_runs WHERE run_id = ? ORDER BY started_at, rowid", [run_id]
        )
        return [
            TaskRun(
                task=r["task"],
                attempt=r["attempt"],
                state=r["state"],
                started_at=from_ms(r["started_at"]),
                ended_at=from_ms(r["ended_at"]),
                error=r["error"],
                traceback=r["traceback"],
                output=json.loads(r["output"]) if r["output"] is not None else None,
            )
            for r in rows
        ]

    def counts(self) -> list[tuple[str, str, int]]:
        """How many runs each pipeline has in each state: (pipeline, state, count)."""
        rows = self.db.read(
            "SELECT pipeline, state, count(*) AS n FROM pipeline_runs "
            "GROUP BY pipeline, state ORDER BY pipeline, state"
        )
        return [(r["pipeline"], r["state"], int(r["n"])) for r in rows]

    # -- retention ------------------------------------------------------------------------

    def newest_ended(self, pipeline: str, n: int) -> set[str]:
        """The ids of the pipeline's `n` newest ended runs."""
        rows = self.db.read(
            f"SELECT run_id FROM pipeline_runs WHERE pipeline = ? AND state IN {_ENDED} "
            "ORDER BY queued_at DESC, run_id DESC LIMIT ?",
            [pipeline, n],
        )
        return {r["run_id"] for r in rows}

    def ended_among(self, run_ids: Sequence[str], pipeline: str) -> list[str]:
        """Those of `run_ids` that are ended runs of `pipeline`."""
        found: list[str] = []
        for start in range(0, len(run_ids), _CHUNK):
            chunk = list(run_ids[start : start + _CHUNK])
            marks = ", ".join("?" * len(chunk))
            rows = self.db.read(
                f"SELECT run_id FROM pipeline_runs WHERE run_id IN ({marks}) AND pipeline = ? "
                f"AND state IN {_ENDED}",
                [*chunk, pipeline],
            )
            found += [r["run_id"] for r in rows]
        return found

    def ended_before(self, cutoff: int) -> list[str]:
        """The ids of runs that ended before `cutoff` (ms since the epoch)."""
        rows = self.db.read(
            f"SELECT run_id FROM pipeline_runs WHERE state IN {_ENDED} AND ended_at < ?",
            [cutoff],
        )
        return [r["run_id"] for r in rows]

    def delete(self, run_ids: Sequence[str]) -> None:
        """Remove runs and their task attempts from the history, in one transaction."""
        with self.db.write() as con:
            for start in range(0, len(run_ids), _CHUNK):
                chunk = list(run_ids[start : start + _CHUNK])
                marks = ", ".join("?" * len(chunk))
                con.execute(f"DELETE FROM task_runs WHERE run_id IN ({marks})", chunk)
                con.execute(f"DELETE FROM pipeline_runs WHERE run_id IN ({marks})", chunk)


def _fail(con: Any, run_ids: list[str], error: str, now: int) -> None:
    """Fail runs and their unfinished task attempts, inside the caller's transaction."""
    for run_id in run_ids:
        con.execute(
            "UPDATE task_runs SET state = 'failed', ended_at = ?, error = ? "
            f"WHERE run_id = ? AND state IN {_UNFINISHED_TASKS}",
            [now, error, run_id],
        )
        con.execute(
            "UPDATE pipeline_runs SET state = 'failed', ended_at = ?, error = ? "
            "WHERE run_id = ?",
            [now, error, run_id],
        )
