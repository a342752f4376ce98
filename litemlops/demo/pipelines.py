"""The course's three pipelines, doing the work its Airflow tasks only logged.

- `data`: files in `<home>/data/incoming/` -> clean -> validate -> offline store ->
  online store. Ingested files move to `incoming/done/`, so a rerun adds nothing twice;
  a file that fails its checks moves to `incoming/rejected/` with a report beside it,
  and the files around it go in without it.
- `training`: labels x driver_stats (point in time), plus the served predictions that
  got `/feedback` labels -> validate -> seeded split -> train -> evaluate -> gate
  (thresholds and the champion) -> register.
- `batch_predictions`: a request file -> point-in-time features -> the champion's
  scores -> a Parquet file joinable on (driver_id, event_timestamp).

Every task reads its inputs from the run folder or the stores and returns small
JSON, so each can run alone with `litemlops pipelines run-step`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.demo.common import (
    feature_columns,
    param_number,
    param_refs,
    param_text,
    read_table,
    upstream_path,
    write_table,
)
from litemlops.demo.training import (
    check_model,
    check_model_params,
    check_training_params,
    evaluate,
    extract,
    prepare,
    register,
    split_by_identity,
    train,
    validate_data,
    validate_model,
)
from litemlops.errors import ValidationError
from litemlops.scheduler.pipeline import Pipeline, TaskContext, task

if TYPE_CHECKING:
    import pandas as pd

    from litemlops.config import Config
    from litemlops.quality import QualityReport

__all__ = ["demo_pipelines", "split_by_identity", "write_table"]

# -- data ---------------------------------------------------------------------------------


def _incoming(source: Path) -> list[Path]:
    from litemlops.store.files import SUFFIXES

    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ValidationError(f"data source {source} is neither a file nor a folder")
    return sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def _identity(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _timestamps(frame: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    """Time columns as UTC datetimes, so Parquet and CSV files (text times) combine."""
    import pandas as pd

    for column in columns:
        if column in frame.columns and not isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            try:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
            except (ValueError, TypeError) as exc:
                raise ValidationError(
                    f"{path}: column {column!r} holds a value that is not a time: {exc}"
                ) from None
    return frame


def _read_incoming(path: Path, view: dict[str, Any], schema: dict[str, str]) -> pd.DataFrame:
    """One waiting file as a frame with UTC times; a pandas index saved with the rows is
    dropped unless the view has a column of its name (then it is that column)."""
    frame = read_table(path)
    index_only = [c for c in frame.attrs.get("pandas_index_columns", []) if c not in schema]
    times = [view["timestamp_field"], *filter(None, [view["created_timestamp_field"]])]
    return _timestamps(frame.drop(columns=index_only), times, path)


def _clean_rows(frame: pd.DataFrame, view: dict[str, Any]) -> tuple[pd.DataFrame, int, int]:
    """(rows with a key and event time, each (key, time) once; how many lacked a key or
    time; how many repeated one). Of repeated rows the one created last is kept."""
    keys = [*view["join_keys"], view["timestamp_field"]]
    present = [k for k in keys if k in frame.columns]
    before = len(frame)
    kept = frame.dropna(subset=present) if present else frame
    null_keys = before - len(kept)
    created = view["created_timestamp_field"]
    if created in kept.columns:
        # A row without a created time never wins over a dated correction.
        kept = kept.sort_values(created, kind="stable", na_position="first")
    deduped = kept.drop_duplicates(subset=present, keep="last") if present else kept
    return deduped.sort_index(), null_keys, len(kept) - len(deduped)


def _check(
    ctx: TaskContext,
    frame: pd.DataFrame,
    view: dict[str, Any],
    schema: dict[str, str],
    *,
    allow_empty: bool = False,
) -> QualityReport:
    from litemlops.quality import check_frame

    return check_frame(
        frame,
        schema,
        required=[
            *view["join_keys"],
            view["timestamp_field"],
            *filter(None, [view["created_timestamp_field"]]),
        ],
        ranges=ctx.params["ranges"],
        max_null_rate=float(ctx.params["max_null_rate"]),
        allow_empty=allow_empty,
    )


def _reject(
    ctx: TaskContext, file: Path, identity: list[int], problems: QualityReport
) -> dict[str, Any] | None:
    """Move a file that failed its checks to `rejected/` beside the report that says why;
    None (and the file stays) when it changed since it was read: a producer still writing
    it, whose finished file the next run reads."""
    import orjson

    from litemlops.store.files import move_aside, write_text_atomic

    if _identity(file) != identity:
        return None
    moved = move_aside(file, file.parent / "rejected", ctx.run_id[:8])
    report_path = moved.with_name(moved.name + ".report.json")
    report = {
        "file": str(file),
        "moved_to": str(moved),
        "rejected_at": ctx.clock().isoformat(),
        "pipeline": ctx.pipeline,
        "run_id": ctx.run_id,
        "view": ctx.params["view"],
        "rows_note": "rows count the file's data rows from 0 (a text file's line is row + 2)",
        **problems.to_dict(),
    }
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2, default=str).decode()
    write_text_atomic(report_path, text + "\n")
    ctx.log.warning(
        events.INGEST_FILE_REJECTED,
        file=str(file),
        moved_to=str(moved),
        report=str(report_path),
        problems=list(problems.problems),
    )
    return {"file": str(file), "moved_to": str(moved), "report": str(report_path),
            "problems": list(problems.problems)}


@task
def ingest(ctx: TaskContext) -> dict[str, Any]:
    """Read and check every waiting file; the good ones become one staged batch.

    Each file is checked on its own (schema, dtypes, null rate, ranges, after
    dropping rows without a key and repeated rows), so one bad file cannot keep
    the others out: it moves to `rejected/` with a report (what was wrong, in
    which columns and rows, when) and the run goes on without it. A single file
    given as the source is the user's own: a failure fails the run instead.
    Each read file's size and modification time are kept, so a file a producer
    rewrites meanwhile is not archived (or rejected) unread (see write_offline).
    """
    import pandas as pd

    from litemlops.quality import DataValidationError, QualityReport

    name = ctx.params["view"]
    view = ctx.features.describe(name)
    schema = ctx.features.columns(name)
    source = Path(ctx.params["source"])
    files = _incoming(source)
    seen = {str(p): _identity(p) for p in files}
    frames, rejected, read = [], [], {}
    for path in files:
        try:
            frame = _read_incoming(path, view, schema)
        except ValidationError as exc:
            report = QualityReport(rows=0, problems=[str(exc)])
        else:
            cleaned = _clean_rows(frame, view)[0]
            report = _check(ctx, cleaned, view, schema, allow_empty=True)
            report.rows = len(frame)
            if report.passed:
                try:  # what the store itself refuses (a whole number beyond 64 bits, ...)
                    ctx.features.validate(name, cleaned)
                except ValidationError as exc:
                    report.problems.append(str(exc))
        if report.passed:
            frames.append(frame)
            read[str(path)] = seen[str(path)]
            continue
        if not source.is_dir():
            raise DataValidationError(report)
        gone = _reject(ctx, path, seen[str(path)], report)
        if gone is not None:
            rejected.append(gone)
    times = [view["timestamp_field"], *filter(None, [view["created_timestamp_field"]])]
    columns = [*view["join_keys"], *times, *view["features"]]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return {
        "path": write_table(raw, ctx.work_dir / "raw.parquet"),
        "files": read,
        "rows": len(raw),
        "rejected": len(rejected),
        "rejected_files": rejected,
    }


@task(upstream="ingest")
def clean(ctx: TaskContext) -> dict[str, Any]:
    """Drop rows without a key or event time, and repeated (key, time) rows.

    Of repeated rows the one created last is kept: a correction replaces the
    row it corrects, as the store's point-in-time reads would decide anyway.
    """
    view = ctx.features.describe(ctx.params["view"])
    raw = read_table(upstream_path(ctx, "ingest"))
    deduped, null_keys, duplicates = _clean_rows(raw, view)
    path = write_table(deduped, ctx.work_dir / "clean.parquet")
    return {"path": path, "rows": len(deduped), "null_keys": null_keys, "duplicates": duplicates}


@task(upstream="clean")
def validate(ctx: TaskContext) -> dict[str, Any]:
    """Schema, dtypes, null rate and value ranges of the whole batch (each file passed
    them alone; rows of one file may still repeat another's); a failure stops the run."""
    from litemlops.quality import DataValidationError

    name = ctx.params["view"]
    frame = read_table(upstream_path(ctx, "clean"))
    report = _check(ctx, frame, ctx.features.describe(name), ctx.features.columns(name))
    if not report.passed and len(frame):
        raise DataValidationError(report)
    return {"path": str(upstream_path(ctx, "clean")), **report.to_dict()}


@task(upstream=["ingest", "validate"])
def write_offline(ctx: TaskContext) -> dict[str, Any]:
    """Append the batch to the offline store, then move its source files to `done/`.

    A retried or resumed attempt finds its batch already written (by its source
    path) and does not write it twice. A source file that changed since it was
    read stays where it is, for the next run.
    """
    from litemlops.store.files import move_aside

    view = ctx.params["view"]
    path = str(upstream_path(ctx, "validate"))
    rows = ctx.upstream["validate"]["rows"]
    batch = None
    if rows:
        written = ctx.features.batches(view, source=path)
        batch = written[0]["batch"] if written else ctx.features.ingest(view, path).batch
    moved, kept = [], []
    source = Path(ctx.params["source"])
    if source.is_dir():
        done = source / "done"
        for name, identity in ctx.upstream["ingest"]["files"].items():
            file = Path(name)
            if not file.exists():
                continue
            if _identity(file) != identity:
                kept.append(name)
                continue
            # Never over an earlier file of the same name.
            moved.append(str(move_aside(file, done, ctx.run_id[:8])))
    return {
        "rows": rows,
        "batch": batch,
        "archived": moved,
        "changed_since_read": kept,
        "rejected": ctx.upstream["ingest"].get("rejected", 0),
    }


@task(upstream="write_offline")
def materialize(ctx: TaskContext) -> dict[str, Any]:
    """Bring the online store up to date (incremental: only what changed)."""
    results = ctx.features.materialize(views=[ctx.params["view"]])
    return {
        r.view: {
            "entities_written": r.entities_written,
            "watermark": r.watermark.isoformat() if r.watermark else None,
        }
        for r in results
    }


# -- batch predictions -----------------------------------------------------------------------


@task
def extract_features(ctx: TaskContext) -> dict[str, Any]:
    """Point-in-time features for each request row (rows without a time are scored now)."""
    import pandas as pd

    requests = read_table(Path(ctx.params["requests"]))
    if "driver_id" not in requests.columns:
        raise ValidationError(f"request file {ctx.params['requests']} lacks column driver_id")
    now = pd.Timestamp(ctx.clock())
    if "event_timestamp" not in requests.columns:
        requests["event_timestamp"] = now
    else:
        requests = _timestamps(requests, ["event_timestamp"], Path(ctx.params["requests"]))
        requests["event_timestamp"] = requests["event_timestamp"].fillna(now)
    frame = ctx.features.get_historical_features(requests, list(ctx.params["features"]))
    path = write_table(frame, ctx.work_dir / "features.parquet")
    return {"path": path, "rows": len(frame)}


@task(upstream="extract_features")
def predict(ctx: TaskContext) -> dict[str, Any]:
    """Score rows with every feature known; the others get no prediction, and are counted."""
    from litemlops.serving.service import score_frame

    frame = read_table(upstream_path(ctx, "extract_features"))
    columns = feature_columns(ctx.params["features"])
    model = ctx.registry.load_model(ctx.params["model"])
    complete = frame[columns].notna().all(axis=1)
    frame["prediction"] = score_frame(model, frame, columns)
    frame["model"] = model.metadata.get("name")
    frame["model_version"] = model.metadata.get("version")
    path = write_table(frame, ctx.work_dir / "predictions.parquet")
    return {
        "path": path,
        "rows": len(frame),
        "scored": int(complete.sum()),
        "missing_features": int((~complete).sum()),
        "model": model.metadata.get("name"),
        "version": model.metadata.get("version"),
    }


@task(upstream="predict")
def write_predictions(ctx: TaskContext) -> dict[str, Any]:
    """Publish the predictions under `data/predictions/`, named by time and run."""
    frame = read_table(upstream_path(ctx, "predict"))
    stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
    out = Path(ctx.params["output_dir"]) / f"predictions_{stamp}_{ctx.run_id[:8]}.parquet"
    return {"path": write_table(frame, out), "rows": len(frame)}


def check_data_params(p: dict[str, Any]) -> dict[str, Any]:
    from litemlops.quality import check_range

    param_text(p, "view")
    param_text(p, "source")
    if not isinstance(p["ranges"], dict):
        raise ValidationError(f"param ranges must map columns to [min, max], got {p['ranges']!r}")
    for column, pair in p["ranges"].items():
        check_range(column, pair)
    p["max_null_rate"] = param_number(p, "max_null_rate", 0, 1)
    return p


def check_batch_params(p: dict[str, Any]) -> dict[str, Any]:
    for key in ("requests", "model", "output_dir"):
        param_text(p, key)
    param_refs(p)
    return p


# -- the pipelines ----------------------------------------------------------------------------


def demo_pipelines(config: Config) -> list[Pipeline]:
    """The three pipelines with their defaults from `config` (each a run param too)."""
    from litemlops.demo.definitions import FEATURES
    from litemlops.errors import ConfigError
    from litemlops.scheduler.pipeline import PipelineDefinitionError, cron_trigger

    t = config.section("training")
    when: dict[str, str | None] = {}
    for name in ("data", "training", "batch_predictions"):
        line = getattr(config.section("schedules"), name).strip()
        if line:
            try:
                cron_trigger(line, owner=f"schedule of {name!r}")
            except PipelineDefinitionError as exc:
                raise ConfigError(f"config key schedules.{name}: {exc}") from None
        when[name] = line or None
    data = Pipeline(
        "data",
        [ingest, clean, validate, write_offline, materialize],
        params={
            "source": str(config.incoming_dir),
            "view": "driver_stats",
            "ranges": {"conv_rate": [0, 1], "acc_rate": [0, 1], "avg_daily_trips": [0, None]},
            "max_null_rate": 0.05,
        },
        description="Ingest waiting files: clean, validate, write offline, materialize.",
        schedule=when["data"],
        check=check_data_params,
        path_params=("source",),
    )
    training = Pipeline(
        "training",
        [extract, validate_data, prepare, train, evaluate, validate_model, register],
        params={
            "labels": str(config.data_dir / "labels.parquet"),
            "features": list(FEATURES),
            "model_name": t.model_name,
            "estimator": t.estimator,
            "hyperparams": t.hyperparams,
            "test_size": t.test_size,
            "seed": t.seed,
            "gate_metric": t.gate_metric,
            "min_auc": t.min_auc,
            "max_rmse": t.max_rmse,
            "min_r2": t.min_r2,
            "tolerance": t.tolerance,
            "promote": t.promote,
            "served_labels": t.served_labels,
            "allow_duplicate": False,
        },
        description="Train on point-in-time data, gate against the champion, register.",
        schedule=when["training"],
        check=check_training_params,
        path_params=("labels",),
    )
    batch = Pipeline(
        "batch_predictions",
        [extract_features, predict, write_predictions],
        params={
            "requests": str(config.data_dir / "batch_requests.csv"),
            "features": list(FEATURES),
            "model": f"{t.model_name}@champion",
            "output_dir": str(config.data_dir / "predictions"),
        },
        description="Score a request file with the champion into joinable Parquet.",
        schedule=when["batch_predictions"],
        check=check_batch_params,
        path_params=("requests", "output_dir"),
    )
    model_check = Pipeline(
        "model_check",
        [extract, validate_data, prepare, check_model],
        params={**training.params, "model": ""},
        description="This home's data and model checks on its data (default: the champion).",
        check=check_model_params,
        path_params=("labels",),
    )
    return [data, training, batch, model_check]
