"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts and models.

Names follow MLflow where the concept is the same. Storage is `TrackingDB`
(SQLite) plus a content-addressed `ArtifactStore`.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
import socket
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

from litemlops import events
from litemlops.errors import (
    ExperimentNotFoundError,
    ParamConflictError,
    RunNotFoundError,
    RunStateError,
    ValidationError,
)
from litemlops.store.tracking_db import TrackingDB

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd

    from litemlops.store.artifacts import ArtifactStore
    from litemlops.store.signature import Signature

log = structlog.get_logger("litemlops.tracking")

Clock = Callable[[], datetime]
STATUSES = ("running", "finished", "failed", "killed")
MAX_PARAM_LENGTH = 6000
_KEY = re.compile(r"^[\w\-. /]{1,250}$")  # \w: letters and digits of any script
MAX_TAG_LENGTH = 8000  # MLflow's limit; longer text belongs in an artifact
INT64 = 2**63


def utc_now() -> datetime:
    return datetime.now(UTC)


def _ms(value: datetime) -> int:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"times must be timezone-aware datetimes, got {value!r}")
    return int(value.timestamp() * 1000)


def check_key(key: object, what: str) -> str:
    """Param, metric and tag keys: letters and digits (any script), `_-. /`, at most 250."""
    if not isinstance(key, str) or not _KEY.match(key) or ".." in key or key.startswith("/"):
        raise ValidationError(
            f"invalid {what} key {key!r}: use letters, digits, '_', '-', '.', ' ' or '/' "
            "(at most 250 characters, no '..', not starting with '/')"
        )
    return key


def check_metric(key: str, value: object) -> float:
    """Metrics are finite numbers: NaN and infinity are refused so ordering is well defined."""
    if isinstance(value, bool) or (
        not isinstance(value, int | float) and not hasattr(value, "__float__")
    ):
        raise ValidationError(f"metric {key!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"metric {key!r} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValidationError(
            f"metric {key!r} is {number}; metrics must be finite (log a NaN loss as a tag "
            "or fail the run instead)"
        )
    return number


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
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


@dataclass(frozen=True)
class Experiment:
    experiment_id: int
    name: str
    created_at: datetime
    tags: dict[str, str]


@dataclass(frozen=True)
class RunInfo:
    """A run as stored: its attributes and its data (latest metric values)."""

    run_id: str
    experiment_id: int
    experiment: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    parent_run_id: str | None
    git_commit: str | None
    error: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class ModelInfo:
    """A model logged in a run; `uri` loads it (`runs:/<run_id>/<name>`)."""

    run_id: str
    name: str
    sha256: str
    size: int
    signature: dict[str, Any] | None
    environment: dict[str, str]
    input_example: Any = None

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.name}"


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class Tracker:
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
        from litemlops.store.artifacts import ArtifactStore

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
        return _ms(self.clock())

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
    ) -> Run:
        """Start a run; use it as a context manager to end it (failed on an exception)."""
        exp = self.create_experiment(experiment)
        if parent_run_id is not None:
            self.get_run(parent_run_id)
        run_id = uuid.uuid4().hex
        name = run_name or f"run-{run_id[:8]}"
        with self.db.write() as con:
            con.execute(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, "
                "parent_run_id, git_commit, host, pid) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                [
                    run_id,
                    exp.experiment_id,
                    name,
                    self.now_ms(),
                    parent_run_id,
                    git_commit(self.code_dir),
                    socket.gethostname(),
                    os.getpid(),
                ],
            )
        run = Run(self, run_id, exp.experiment_id, name)
        if tags:
            run.set_tags(tags)
        return run

    def get_run(self, run_id: str) -> RunInfo:
        rows = self.db.read(
            "SELECT r.*, e.name AS experiment FROM runs r JOIN experiments e "
            "USING (experiment_id) WHERE r.run_id = ?",
            [run_id],
        )
        if not rows:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return self._run_info(rows[0])

    def _run_info(self, row: sqlite3.Row) -> RunInfo:
        run_id = row["run_id"]
        params = {
            r["key"]: r["value"]
            for r in self.db.read(
                "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [run_id]
            )
        }
        metrics = {
            r["key"]: r["value"]
            for r in self.db.read(
                "SELECT key, value FROM latest_metrics WHERE run_id = ? ORDER BY key", [run_id]
            )
        }
        tags = {
            r["key"]: r["value"]
            for r in self.db.read(
                "SELECT key, value FROM run_tags WHERE run_id = ? ORDER BY key", [run_id]
            )
        }
        start = _dt(row["start_time"])
        assert start is not None
        return RunInfo(
            run_id=run_id,
            experiment_id=row["experiment_id"],
            experiment=row["experiment"],
            name=row["name"],
            status=row["status"],
            start_time=start,
            end_time=_dt(row["end_time"]),
            parent_run_id=row["parent_run_id"],
            git_commit=row["git_commit"],
            error=row["error"],
            params=params,
            metrics=metrics,
            tags=tags,
        )

    def list_runs(self, experiment: str | None = None, limit: int = 100) -> list[RunInfo]:
        """Newest runs first, optionally of one experiment."""
        where, params = "", []
        if experiment is not None:
            where, params = (
                "WHERE r.experiment_id = ?",
                [self.get_experiment(experiment).experiment_id],
            )
        from litemlops.store.search import fetch_runs

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
            Metric(r["key"], r["value"], r["step"], _dt(r["timestamp"]))  # type: ignore[arg-type]
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
                "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
            ).fetchall()
            dead = [r["run_id"] for r in rows if not _alive(r["pid"])]
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
        from litemlops.errors import ArtifactNotFoundError
        from litemlops.store.artifacts import check_artifact_path

        clean = check_artifact_path(path)
        self.get_run(run_id)
        rows = self.db.read(
            "SELECT sha256 FROM artifacts WHERE run_id = ? AND path = ?", [run_id, clean]
        )
        if not rows:
            raise ArtifactNotFoundError(f"run {run_id} has no artifact {clean!r}")
        target = Path(dest)
        if target.is_dir():
            target = target / clean.rsplit("/", 1)[-1]
        self.artifacts.copy_verified(rows[0]["sha256"], target)
        return target

    def logged_model(self, run_id: str, name: str) -> ModelInfo:
        from litemlops.errors import ModelNotFoundError

        rows = self.db.read(
            "SELECT * FROM logged_models WHERE run_id = ? AND name = ?", [run_id, name]
        )
        if not rows:
            self.get_run(run_id)
            raise ModelNotFoundError(f"run {run_id} logged no model named {name!r}")
        return _model_info(rows[0])

    def run_inputs(self, run_id: str) -> list[dict[str, Any]]:
        return [
            {"kind": r["kind"], "name": r["name"], **json.loads(r["details"])}
            for r in self.db.read(
                "SELECT kind, name, details FROM run_inputs WHERE run_id = ? ORDER BY kind, name",
                [run_id],
            )
        ]


def _experiment(row: sqlite3.Row) -> Experiment:
    created = _dt(row["created_at"])
    assert created is not None
    return Experiment(row["experiment_id"], row["name"], created, json.loads(row["tags"]))


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


class Run:
    """An active run: log to it, then end it (a `with` block ends it for you)."""

    def __init__(self, tracker: Tracker, run_id: str, experiment_id: int, name: str):
        self.tracker = tracker
        self.id = run_id
        self.experiment_id = experiment_id
        self.name = name
        self._ended = False

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r})"

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ended:
            return
        if exc is None:
            status, error = "finished", None
        elif isinstance(exc, KeyboardInterrupt):
            status, error = "killed", "KeyboardInterrupt"
        else:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        try:
            self.end(status, error=error)
        except RunStateError:
            # Ended elsewhere meanwhile (e.g. killed by an operator): say so, don't crash.
            self._ended = True
            log.warning(events.RUN_ALREADY_ENDED, tracking_run=self.id, wanted=status)

    def end(self, status: str = "finished", error: str | None = None) -> None:
        self.tracker.end_run(self.id, status, error)
        self._ended = True

    def _active(self) -> None:
        if self._ended:
            raise RunStateError(f"run {self.id} has ended; start a new run to log more")

    # -- params, tags ---------------------------------------------------------------------

    def log_param(self, key: str, value: object) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log parameters; logging a key again with another value is an error."""
        self._active()
        items = {check_key(k, "param"): _param_value(k, v) for k, v in params.items()}
        with self.tracker.db.write() as con:
            existing = (
                dict(
                    con.execute(
                        f"SELECT key, value FROM params WHERE run_id = ? AND key IN "
                        f"({', '.join('?' * len(items))})",
                        [self.id, *items],
                    ).fetchall()
                )
                if items
                else {}
            )
            clashes = {
                k: (existing[k], v) for k, v in items.items() if k in existing and existing[k] != v
            }
            if clashes:
                detail = "; ".join(
                    f"{k}: {old!r} then {new!r}" for k, (old, new) in clashes.items()
                )
                raise ParamConflictError(
                    f"run {self.id} already has different values for params ({detail}); "
                    "params are fixed per run: start a new run to change them"
                )
            con.executemany(
                "INSERT OR IGNORE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(self.id, k, v) for k, v in items.items()],
            )

    def set_tag(self, key: str, value: object) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        self._active()
        items = [(self.id, check_key(k, "tag"), str(v)) for k, v in tags.items()]
        for _, key, value in items:
            if len(value) > MAX_TAG_LENGTH:
                raise ValidationError(
                    f"tag {key!r} is {len(value)} characters; at most {MAX_TAG_LENGTH} (log long "
                    "text as an artifact)"
                )
        with self.tracker.db.write() as con:
            con.executemany(
                "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                items,
            )

    # -- metrics -------------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: datetime | None = None
    ) -> None:
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """Log several values in one transaction; the latest (step, time) per key is kept apart."""
        self._active()
        step_ = 0
        if step is not None:
            try:
                if isinstance(step, bool):
                    raise TypeError
                step_ = operator.index(step)  # numpy integers too
                if not -INT64 <= step_ < INT64:
                    raise TypeError
            except TypeError:
                raise ValidationError(
                    f"metric step must be a 64-bit integer, got {step!r}"
                ) from None
        at = _ms(timestamp) if timestamp is not None else self.tracker.now_ms()
        rows = [
            (self.id, check_key(k, "metric"), check_metric(k, v), step_, at)
            for k, v in metrics.items()
        ]
        with self.tracker.db.write() as con:
            con.executemany(
                "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            con.executemany(
                "INSERT INTO latest_metrics (run_id, key, value, step, timestamp, experiment_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
                "value = excluded.value, step = excluded.step, timestamp = excluded.timestamp "
                "WHERE (excluded.step, excluded.timestamp) >= "
                "(latest_metrics.step, latest_metrics.timestamp)",
                [(*row, self.experiment_id) for row in rows],
            )

    # -- artifacts and models ------------------------------------------------------------------

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> list[str]:
        """Store a file, or every file under a folder, content-addressed; return their paths.

        As in MLflow, `artifact_path` is a folder inside the run: a file lands at
        `<artifact_path>/<file name>`, a folder's files under `<artifact_path>/`
        (default: the folder's own name). Logging a path again replaces it.
        Symbolic links inside a folder that point outside it are skipped, so a
        link cannot smuggle a file from elsewhere into the run.
        """
        from litemlops.store.artifacts import check_artifact_path

        self._active()
        source = Path(local_path)
        if not source.exists():
            raise ValidationError(f"{source}: no such file or folder")
        if source.is_dir():
            root = source.resolve()
            base = artifact_path if artifact_path is not None else root.name
            pairs = []
            for file in sorted(source.rglob("*")):
                if not file.is_file():
                    continue
                if file.is_symlink() and not file.resolve().is_relative_to(root):
                    log.warning(events.ARTIFACT_SKIPPED, path=str(file),
                                why="symbolic link out of the folder")
                    continue
                relative = file.relative_to(source).as_posix()
                pairs.append((file, f"{base}/{relative}" if base else relative))
        else:
            name = source.name
            pairs = [(source, f"{artifact_path}/{name}" if artifact_path else name)]
        paths = [(file, check_artifact_path(path)) for file, path in pairs]
        stored = []
        for file, path in paths:
            digest, size = self.tracker.artifacts.put_file(file)
            stored.append((self.id, path, digest, size, self.tracker.now_ms()))
        with self.tracker.db.write() as con:
            con.executemany(
                "INSERT OR REPLACE INTO artifacts (run_id, path, sha256, size, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                stored,
            )
        return [row[1] for row in stored]

    def log_dict(self, data: Any, artifact_file: str) -> str:
        """Store a JSON-serialisable object as an artifact."""
        from litemlops.store.artifacts import check_artifact_path

        self._active()
        path = check_artifact_path(artifact_file)
        digest, size = self.tracker.artifacts.put_bytes(
            json.dumps(data, indent=2, sort_keys=True, default=str).encode()
        )
        with self.tracker.db.write() as con:
            con.execute(
                "INSERT OR REPLACE INTO artifacts (run_id, path, sha256, size, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [self.id, path, digest, size, self.tracker.now_ms()],
            )
        return path

    def log_model(
        self,
        model: Any,
        name: str = "model",
        signature: Signature | None = None,
        input_example: Any = None,
    ) -> ModelInfo:
        """Pickle `model` with joblib into the artifact store, with its sha256 and environment.

        signature: input names and dtypes in order (see `infer_signature`); loading
        enforces it. input_example: a few rows, kept as JSON for documentation.
        """
        from litemlops.store.model_io import dump_model, environment

        self._active()
        check_key(name, "model")
        data = dump_model(model)
        digest, size = self.tracker.artifacts.put_bytes(data)
        env = environment()
        example = _example_json(input_example)
        sig = signature.to_dict() if signature is not None else None
        with self.tracker.db.write() as con:
            if con.execute(
                "SELECT 1 FROM logged_models WHERE run_id = ? AND name = ?", [self.id, name]
            ).fetchone():
                raise ValidationError(
                    f"run {self.id} already logged a model named {name!r}; a logged model "
                    "never changes (versions registered from it rely on that): use another name"
                )
            con.execute(
                "INSERT INTO logged_models (run_id, name, sha256, size, format, "
                "python_version, libraries, signature, input_example, created_at) "
                "VALUES (?, ?, ?, ?, 'joblib', ?, ?, ?, ?, ?)",
                [
                    self.id,
                    name,
                    digest,
                    size,
                    env.get("python", ""),
                    json.dumps(env),
                    json.dumps(sig) if sig else None,
                    example,
                    self.tracker.now_ms(),
                ],
            )
        return ModelInfo(
            self.id, name, digest, size, sig, env, json.loads(example) if example else None
        )

    def log_input(
        self,
        name: str = "training",
        *,
        data: pd.DataFrame | None = None,
        feature_views: Mapping[str, int] | None = None,
    ) -> None:
        """Record what trained this run: feature views with their definition versions and
        a fingerprint (rows, content hash) of the training data."""
        self._active()
        check_key(name, "input")
        details: dict[str, Any] = {"feature_views": dict(feature_views or {})}
        if data is not None:
            details["rows"], details["sha256"] = fingerprint(data)
            details["columns"] = [str(c) for c in data.columns]
        with self.tracker.db.write() as con:
            con.execute(
                "INSERT OR REPLACE INTO run_inputs (run_id, kind, name, details) "
                "VALUES (?, 'dataset', ?, ?)",
                [self.id, name, json.dumps(details, sort_keys=True)],
            )


def fingerprint(data: pd.DataFrame) -> tuple[int, str]:
    """(rows, sha256 over column names and every value): equal frames, equal hashes."""
    import hashlib

    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in data.columns]).encode())
    hashed = pd.util.hash_pandas_object(data, index=False)
    digest.update(hashed.to_numpy().tobytes())
    return len(data), digest.hexdigest()


def _param_value(key: str, value: object) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, default=str)
        if isinstance(value, list | dict | tuple)
        else str(value)
    )
    if len(text) > MAX_PARAM_LENGTH:
        raise ValidationError(
            f"param {key!r} is {len(text)} characters; at most {MAX_PARAM_LENGTH} (log large "
            "values as an artifact)"
        )
    return text


def _example_json(example: Any) -> str | None:
    if example is None:
        return None
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        example = example.head(5).to_dict(orient="records")
    elif hasattr(example, "tolist"):
        example = example[:5].tolist()
    try:
        return json.dumps(example, default=str)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"input_example cannot be stored as JSON: {exc}") from exc
