"""The course's three pipelines, doing the work its Airflow tasks only logged.

- `data`: files in `<home>/data/incoming/` -> clean -> validate -> offline store ->
  online store. Ingested files move to `incoming/done/`, so a rerun adds nothing twice.
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

__all__ = ["demo_pipelines", "split_by_identity", "write_table"]

SUFFIXES = (".parquet", ".csv")


# -- data ---------------------------------------------------------------------------------


def _incoming(source: Path) -> list[Path]:
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


@task
def ingest(ctx: TaskContext) -> dict[str, Any]:
    """Read every waiting file into one staged batch, remembering which file was read.

    Each file's size and modification time are kept, so a file a producer
    rewrites meanwhile is not archived unread (see write_offline).
    """
    import pandas as pd

    view = ctx.features.describe(ctx.params["view"])
    files = _incoming(Path(ctx.params["source"]))
    times = [view["timestamp_field"], *filter(None, [view["created_timestamp_field"]])]
    columns = [*view["join_keys"], *times, *view["features"]]
    seen = {str(p): _identity(p) for p in files}
    frames = [_timestamps(read_table(p), times, p) for p in files]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    path = write_table(raw, ctx.work_dir / "raw.parquet")
    return {"path": path, "files": seen, "rows": len(raw)}


@task(upstream="ingest")
def clean(ctx: TaskContext) -> dict[str, Any]:
    """Drop rows without a key or event time, and repeated (key, time) rows.

    Of repeated rows the one created last is kept: a correction replaces the
    row it corrects, as the store's point-in-time reads would decide anyway.
    """
    view = ctx.features.describe(ctx.params["view"])
    raw = read_table(upstream_path(ctx, "ingest"))
    keys = [*view["join_keys"], view["timestamp_field"]]
    present = [k for k in keys if k in raw.columns]
    before = len(raw)
    frame = raw.dropna(subset=present) if present else raw
    null_keys = before - len(frame)
    created = view["created_timestamp_field"]
    if created in frame.columns:
        # A row without a created time never wins over a dated correction.
        frame = frame.sort_values(created, kind="stable", na_position="first")
    deduped = frame.drop_duplicates(subset=present, keep="last") if present else frame
    duplicates = len(frame) - len(deduped)
    path = write_table(deduped.sort_index(), ctx.work_dir / "clean.parquet")
    return {"path": path, "rows": len(deduped), "null_keys": null_keys, "duplicates": duplicates}


@task(upstream="clean")
def validate(ctx: TaskContext) -> dict[str, Any]:
    """Schema, dtypes, null rate and value ranges; a failure stops the run with the report."""
    from litemlops.quality import DataValidationError, check_frame

    view = ctx.features.describe(ctx.params["view"])
    frame = read_table(upstream_path(ctx, "clean"))
    report = check_frame(
        frame,
        ctx.features.columns(ctx.params["view"]),
        required=[
            *view["join_keys"],
            view["timestamp_field"],
            *filter(None, [view["created_timestamp_field"]]),
        ],
        ranges=ctx.params["ranges"],
        max_null_rate=float(ctx.params["max_null_rate"]),
    )
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
        done.mkdir(exist_ok=True)
        for name, identity in ctx.upstream["ingest"]["files"].items():
            file = Path(name)
            if not file.exists():
                continue
            if _identity(file) != identity:
                kept.append(name)
                continue
            target = done / file.name
            if target.exists():  # never overwrite an earlier file of the same name
                target = done / f"{file.stem}.{ctx.run_id[:8]}{file.suffix}"
            file.replace(target)
            moved.append(str(target))
    return {"rows": rows, "batch": batch, "archived": moved, "changed_since_read": kept}


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
    from litemlops.modeling import scores

    frame = read_table(upstream_path(ctx, "extract_features"))
    columns = feature_columns(ctx.params["features"])
    model = ctx.registry.load_model(ctx.params["model"])
    complete = frame[columns].notna().all(axis=1)
    frame["prediction"] = None
    if complete.any():
        frame.loc[complete, "prediction"] = scores(
            model, frame.loc[complete, columns].astype("float64")
        )
    frame["prediction"] = frame["prediction"].astype("float64")
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

    t = config.training
    when: dict[str, str | None] = {}
    for name in ("data", "training", "batch_predictions"):
        line = getattr(config.schedules, name).strip()
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
            "tolerance": t.tolerance,
            "promote": t.promote,
            "served_labels": t.served_labels,
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
    return [data, training, batch]
