"""An active run: what a training script logs to (params, metrics, tags, artifacts, models)."""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.clock import to_ms
from litemlops.errors import ParamConflictError, RunStateError, ValidationError
from litemlops.logger import get_logger
from litemlops.store.tracking.tracking_types import (
    INT64,
    MAX_PARAM_LENGTH,
    MAX_TAG_LENGTH,
    ModelInfo,
    check_key,
    check_metric,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from litemlops.store.tracking.signature import Signature
    from litemlops.store.tracking.tracker import Tracker

log = get_logger("litemlops.tracking")


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
        at = to_ms(timestamp) if timestamp is not None else self.tracker.now_ms()
        self.log_metric_points([(k, v, step, at) for k, v in metrics.items()])

    def log_metric_points(
        self, points: Sequence[tuple[str, float, int | None, int | None]]
    ) -> None:
        """Log (key, value, step, timestamp in ms) points in one transaction, each with its
        own step and time (None: step 0, now), as MLflow's log_batch sends them."""
        self._active()
        now = self.tracker.now_ms()
        rows = [
            (self.id, check_key(k, "metric"), check_metric(k, v), _step(step), _ms(at, now))
            for k, v, step, at in points
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
        from litemlops.store.tracking.artifacts import check_artifact_path

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
                    log.warning(
                        events.ARTIFACT_SKIPPED,
                        path=str(file),
                        why="symbolic link out of the folder",
                    )
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
        from litemlops.store.tracking.artifacts import check_artifact_path

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
        from litemlops.store.tracking.model_io import dump_model, environment

        self._active()
        check_key(name, "model")
        sig = signature.to_dict() if signature is not None else None
        return self.log_model_bytes(
            dump_model(model), name, sig, environment(), _example_json(input_example)
        )

    def log_model_bytes(
        self,
        data: bytes,
        name: str,
        signature: dict[str, Any] | None,
        env: dict[str, str],
        example: str | None = None,
    ) -> ModelInfo:
        """Log a model's joblib bytes as they are (a model moved from another home keeps
        its sha256), with the signature, environment and example JSON it was logged with."""
        self._active()
        check_key(name, "model")
        digest, size = self.tracker.artifacts.put_bytes(data)
        sig = signature
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
        data: pd.DataFrame | pd.Series | np.ndarray | None = None,
        feature_views: Mapping[str, int] | None = None,
    ) -> None:
        """Record what trained this run: feature views with their definition versions and
        a fingerprint (rows, content hash) of the training data (a DataFrame, a Series or
        a 1-D/2-D array, whose columns are then numbered from 0)."""
        self._active()
        check_key(name, "input")
        details: dict[str, Any] = {"feature_views": dict(feature_views or {})}
        if data is not None:
            frame = _as_frame(data)
            details["rows"], details["sha256"] = fingerprint(frame)
            details["columns"] = [str(c) for c in frame.columns]
        self.log_input_details(name, details)

    def log_input_details(self, name: str, details: Mapping[str, Any]) -> None:
        """Record an input as `log_input` describes it (feature_views, rows, sha256,
        columns), given as such: what another home's run recorded."""
        self._active()
        check_key(name, "input")
        with self.tracker.db.write() as con:
            con.execute(
                "INSERT OR REPLACE INTO run_inputs (run_id, kind, name, details) "
                "VALUES (?, 'dataset', ?, ?)",
                [self.id, name, json.dumps(dict(details), sort_keys=True)],
            )


def _step(step: object) -> int:
    if step is None:
        return 0
    try:
        if isinstance(step, bool):
            raise TypeError
        value = operator.index(step)  # type: ignore[arg-type]  # numpy integers too
        if not -INT64 <= value < INT64:
            raise TypeError
    except TypeError:
        raise ValidationError(f"metric step must be a 64-bit integer, got {step!r}") from None
    return value


def _ms(at: object, now: int) -> int:
    if at is None:
        return now
    if isinstance(at, bool) or not isinstance(at, int) or not -INT64 <= at < INT64:
        raise ValidationError(f"metric timestamp must be milliseconds since the epoch, got {at!r}")
    return at


def _as_frame(data: Any) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, np.ndarray) and data.ndim in (1, 2):
        return pd.DataFrame(data)
    shape = f" of shape {data.shape}" if isinstance(data, np.ndarray) else ""
    raise ValidationError(
        f"log_input data must be a pandas DataFrame or Series or a 1-D or 2-D numpy array, "
        f"not {type(data).__name__}{shape}"
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
