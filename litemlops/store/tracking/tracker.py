"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts and models.

Names follow MLflow where the concept is the same. Storage is `TrackingDB`
(SQLite) plus a content-addressed `ArtifactStore`.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.clock import from_ms, to_ms, utc_now
from litemlops.errors import (
    ExperimentNotFoundError,
    RunNotFoundError,
    RunStateError,
    ValidationError,
)
from litemlops.store.tracking.lifecycle import Lifecycle
from litemlops.store.tracking.run import Run, fingerprint
from litemlops.store.tracking.tracking_db import TrackingDB
from litemlops.store.tracking.tracking_types import (
    STATUSES,
    Clock,
    Experiment,
    Metric,
    ModelInfo,
    RunInfo,
    check_key,
    check_metric,
)

__all__ = [
    "STATUSES",
    "Experiment",
    "Metric",
    "ModelInfo",
    "Run",
    "RunInfo",
    "Tracker",
    "check_key",
    "check_metric",
    "fingerprint",
    "from_ms",
    "git_commit",
    "to_ms",
    "utc_now",
]

if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime

    from litemlops.store.tracking.artifacts import ArtifactStore


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, Linux), None when unknown.

    With the pid it identifies a process: pids are reused, start times are not.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def process_alive(pid: int | None, started: int | None = None) -> bool:
    """Whether the process that wrote (`pid`, `started`) still runs.

    started: its `process_start` when recorded; a live process with that pid but
    another start time is a newer process that was given the same pid.
    """
    if pid is None:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if started is not None:
        now = process_start(pid)
        if now is not None and now != started:
            return False
    return True


def git_commit(start: Path) -> str | None:
    """The commit checked out in the git work tree containing `start`, read from .git."""
    for folder in (start, *start.parents):
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head or None
            ref = head.split(":", 1)[1].strip()
            loose = git / ref
            if loose.is_file():
                return loose.read_text().strip() or None
            packed = git / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split(" ", 1)[0]
        except OSError:
            return None
        return None
    return None


class Tracker(Lifecycle):
    """Experiments and runs in a SQLite database, artifacts in a content-addressed folder.

    db: a path, ":memory:", an open sqlite3 connection or a `TrackingDB`.
    artifacts: the artifact folder; by default `artifacts/` beside a database
    file, or a temporary folder (removed on close) for an in-memory database.
    code_dir: where to look for the git commit of the code (default: cwd).
    """

    def __init__(
        self,
        db: str | Path | sqlite3.Connection | TrackingDB = ":memory:",
        *,
        artifacts: str | Path | None = None,
        clock: Clock = utc_now,
        code_dir: str | Path | None = None,
    ):
        from litemlops.store.tracking.artifacts import ArtifactStore

        self.db = db if isinstance(db, TrackingDB) else TrackingDB(db)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if artifacts is None:
            if self.db.path == ":memory:":
                self._tmp = tempfile.TemporaryDirectory(prefix="litemlops-artifacts-")
                artifacts = self._tmp.name
            else:
                artifacts = Path(self.db.path).parent / "artifacts"
        self.artifacts: ArtifactStore = ArtifactStore(artifacts)
        self.clock = clock
        self.code_dir = Path(code_dir) if code_dir is not None else Path.cwd()

    def close(self) -> None:
        self.db.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now_ms(self) -> int:
        return to_ms(self.clock())

    # -- experiments -------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        """Create an experiment, or return the existing one of that name."""
        if not isinstance(name, str) or not name.strip() or len(name) > 250:
            raise ValidationError(f"invalid experiment name {name!r}")
        with self.db.write() as con:
            con.execute(
                "INSERT OR IGNORE INTO experiments (name, created_at, tags) VALUES (?, ?, ?)",
                [name, self.now_ms(), json.dumps(dict(tags or {}))],
            )
        return self.get_experiment(name)

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        column = "experiment_id" if isinstance(name_or_id, int) else "name"
        rows = self.db.read(f"SELECT * FROM experiments WHERE {column} = ?", [name_or_id])
        if not rows:
            raise ExperimentNotFoundError(f"no experiment {name_or_id!r}")
        return _experiment(rows[0])

    def list_experiments(self) -> list[Experiment]:
        return [_experiment(r) for r in self.db.read("SELECT * FROM experiments ORDER BY name")]

    # -- runs ------------------------------------------------------------------------

    def start_run(
        self,
        experiment: str = "default",
        run_name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        start_time: datetime | None = None,
        local: bool = True,
        commit: str | None = None,
    ) -> Run:
        """Start a run; use it as a context manager to end it (failed on an exception).

        start_time: when it started (default: now). local: this process runs it, so its
        host and pid are kept (a run whose process died is marked interrupted at the
        owner's next start), with the commit checked out in `code_dir`. A run that a
        client elsewhere logs to (MLflow's API) is not local: it has neither, and a
        restart of the server leaves it running. commit: the commit of the run's code,
        instead (a client's, which only it knows).
        """
        # Refused before anything is written, the experiment included.
        if commit is not None and (not isinstance(commit, str) or not commit.strip()):
            raise ValidationError(f"a run's commit is a non-empty string, got {commit!r}")
        started = to_ms(start_time) if start_time is not None else self.now_ms()
        if parent_run_id is not None:
            self.get_run(parent_run_id)
        exp = self.create_experiment(experiment)
        run_id = uuid.uuid4().hex
        name = run_name or f"run-{run_id[:8]}"
        pid = os.getpid()
        here = (socket.gethostname(), pid, process_start(pid)) if local else (None, None, None)
        if commit is None and local:
            commit = git_commit(self.code_dir)
        with self.db.write() as con:
            con.execute(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, "
                "parent_run_id, git_commit, host, pid, proc_start) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    exp.experiment_id,
                    name,
                    started,
                    parent_run_id,
                    commit,
                    *here,
                ],
            )
        run = Run(self, run_id, exp.experiment_id, name)
        if tags:
            run.set_tags(tags)
        return run

    def resume_run(self, run_id: str) -> Run:
        """Reopen a run to log more to it, as MLflow's `start_run(run_id=...)` does.

        A pipeline's tasks may run in different processes and at different times
        (`run-step`, a resume after a crash), so the task that evaluates a model
        logs into the run the training task ended. An ended run becomes running
        again, owned by this process; end it again (a `with` block does).
        """
        info = self.get_run(run_id)
        if info.status != "running":
            with self.db.write() as con:
                con.execute(
                    "UPDATE runs SET status = 'running', end_time = NULL, error = NULL, "
                    "host = ?, pid = ?, proc_start = ? WHERE run_id = ?",
                    [socket.gethostname(), os.getpid(), process_start(os.getpid()), run_id],
                )
        return Run(self, run_id, info.experiment_id, info.name)

    def get_run(self, run_id: str) -> RunInfo:
        from litemlops.store.tracking.search import fetch_runs

        found = fetch_runs(self.db, [run_id]) if isinstance(run_id, str) else []
        if not found:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return found[0]

    def run_to_log(self, run_id: str) -> tuple[Run, str]:
        """A run to log to and its lifecycle stage ("active" or "deleted"), read from
        its row alone: a logging call needs no params, metrics or tags (`get_run` reads
        them all, more as the run grows)."""
        rows = self.db.read(
            "SELECT experiment_id, name, lifecycle_stage FROM runs WHERE run_id = ?", [run_id]
        ) if isinstance(run_id, str) else []  # fmt: skip
        if not rows:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        [row] = rows
        return Run(self, run_id, row["experiment_id"], row["name"]), row["lifecycle_stage"]

    def list_runs(self, experiment: str | None = None, limit: int = 100) -> list[RunInfo]:
        """Newest runs first, optionally of one experiment."""
        where, params = "", []
        if experiment is not None:
            where, params = (
                "WHERE r.experiment_id = ?",
                [self.get_experiment(experiment).experiment_id],
            )
        from litemlops.store.tracking.search import fetch_runs

        rows = self.db.read(
            f"SELECT r.run_id FROM runs r {where} ORDER BY r.start_time DESC, r.run_id LIMIT ?",
            [*params, int(limit)],
        )
        return fetch_runs(self.db, [r["run_id"] for r in rows])

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.get_run(run_id)
        rows = self.db.read(
            "SELECT key, value, step, timestamp FROM metrics WHERE run_id = ? AND key = ? "
            "ORDER BY step, timestamp, rowid",
            [run_id, key],
        )
        return [
            Metric(r["key"], r["value"], r["step"], from_ms(r["timestamp"]))  # type: ignore[arg-type]
            for r in rows
        ]

    def end_run(self, run_id: str, status: str = "finished", error: str | None = None) -> None:
        if status not in STATUSES[1:]:
            raise ValidationError(f"a run ends as one of {STATUSES[1:]}, not {status!r}")
        with self.db.write() as con:
            changed = con.execute(
                "UPDATE runs SET status = ?, end_time = ?, error = ? "
                "WHERE run_id = ? AND status = 'running'",
                [status, self.now_ms(), error, run_id],
            ).rowcount
        if not changed:
            info = self.get_run(run_id)  # raises for an unknown run
            raise RunStateError(f"run {run_id} already ended as {info.status}")

    def mark_interrupted(self) -> list[str]:
        """End runs whose process died while they ran; return their ids.

        Only runs started on this host by a process that no longer exists are
        touched: a training script logging from another process right now keeps
        its run. Runs from other hosts (a shared file system) are left alone.
        """
        host = socket.gethostname()
        with self.db.write() as con:
            rows = con.execute(
                "SELECT run_id, pid, proc_start FROM runs WHERE status = 'running' AND host = ?",
                [host],
            ).fetchall()
            dead = [r["run_id"] for r in rows if not process_alive(r["pid"], r["proc_start"])]
            con.executemany(
                "UPDATE runs SET status = 'killed', end_time = ?, "
                "error = 'interrupted: the process that ran it stopped' "
                "WHERE run_id = ? AND status = 'running'",
                [(self.now_ms(), run_id) for run_id in dead],
            )
        return dead

    def artifact_list(self, run_id: str) -> list[dict[str, Any]]:
        self.get_run(run_id)
        return [
            dict(r)
            for r in self.db.read(
                "SELECT path, sha256, size FROM artifacts WHERE run_id = ? ORDER BY path", [run_id]
            )
        ]

    def download_artifact(self, run_id: str, path: str, dest: str | Path) -> Path:
        """Copy one artifact out (verified against its sha256) to `dest`."""
        clean, sha256 = self._artifact(run_id, path)
        target = Path(dest)
        if target.is_dir():
            target = target / clean.rsplit("/", 1)[-1]
        self.artifacts.copy_verified(sha256, target)
        return target

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """One artifact's bytes, verified against its sha256 (for small files)."""
        return self.artifacts.read_verified(self._artifact(run_id, path)[1])

    def _artifact(self, run_id: str, path: str) -> tuple[str, str]:
        """(clean path, sha256) of a run's artifact."""
        from litemlops.errors import ArtifactNotFoundError
        from litemlops.store.tracking.artifacts import check_artifact_path

        clean = check_artifact_path(path)
        self.get_run(run_id)
        rows = self.db.read(
            "SELECT sha256 FROM artifacts WHERE run_id = ? AND path = ?", [run_id, clean]
        )
        if not rows:
            raise ArtifactNotFoundError(f"run {run_id} has no artifact {clean!r}")
        return clean, rows[0]["sha256"]

    def logged_model(self, run_id: str, name: str) -> ModelInfo:
        from litemlops.errors import ModelNotFoundError

        rows = self.db.read(
            "SELECT * FROM logged_models WHERE run_id = ? AND name = ?", [run_id, name]
        )
        if not rows:
            self.get_run(run_id)
            raise ModelNotFoundError(f"run {run_id} logged no model named {name!r}")
        return _model_info(rows[0])

    def logged_models(self, run_id: str) -> list[ModelInfo]:
        """The models a run logged, by name (none for a run that logged none)."""
        rows = self.db.read(
            "SELECT * FROM logged_models WHERE run_id = ? ORDER BY name", [run_id]
        )
        return [_model_info(r) for r in rows]

    def run_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Up to `limit` run ids that start with `prefix`, in order."""
        # A range on the primary key, not LIKE: '_' and '%' in a prefix mean nothing.
        rows = self.db.read(
            "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT ?",
            [prefix, prefix + "\U0010ffff", limit],
        )
        return [str(r["run_id"]) for r in rows]

    def resolve_run_id(self, id_or_prefix: str) -> str:
        """A full run id from an id or a unique prefix of at least 6 hex characters.

        Raises ValidationError for a malformed or ambiguous prefix, RunNotFoundError
        when no run id starts with it.
        """
        if len(id_or_prefix) == 32:
            return id_or_prefix
        if len(id_or_prefix) < 6 or not all(c in "0123456789abcdef" for c in id_or_prefix):
            raise ValidationError(
                f"{id_or_prefix!r} is not a run id or a prefix of 6+ hex characters"
            )
        found = self.run_ids_with_prefix(id_or_prefix)
        if not found:
            raise RunNotFoundError(f"no run id starts with {id_or_prefix!r}")
        if len(found) > 1:
            raise ValidationError(
                f"run id prefix {id_or_prefix!r} is ambiguous; give more characters"
            )
        return found[0]

    def run_inputs(self, run_id: str) -> list[dict[str, Any]]:
        return [
            {"kind": r["kind"], "name": r["name"], **json.loads(r["details"])}
            for r in self.db.read(
                "SELECT kind, name, details FROM run_inputs WHERE run_id = ? ORDER BY kind, name",
                [run_id],
            )
        ]


def _experiment(row: sqlite3.Row) -> Experiment:
    created = from_ms(row["created_at"])
    assert created is not None
    return Experiment(
        row["experiment_id"],
        row["name"],
        created,
        json.loads(row["tags"]),
        row["lifecycle_stage"],
        from_ms(row["updated_at"]),
    )


def _model_info(row: sqlite3.Row) -> ModelInfo:
    return ModelInfo(
        run_id=row["run_id"],
        name=row["name"],
        sha256=row["sha256"],
        size=row["size"],
        signature=json.loads(row["signature"]) if row["signature"] else None,
        environment=json.loads(row["libraries"]),
        input_example=json.loads(row["input_example"]) if row["input_example"] else None,
    )
