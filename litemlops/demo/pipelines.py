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

from litemlops import events
from litemlops.errors import AliasNotFoundError, ModelNotFoundError, ValidationError
from litemlops.scheduler.pipeline import Pipeline, TaskContext, task

if TYPE_CHECKING:
    import pandas as pd

    from litemlops.config import Config

LABEL = "trip_completed"
SUFFIXES = (".parquet", ".csv")


def _frame(path: Path) -> pd.DataFrame:
    from litemlops.store.files import read_frame

    return read_frame(path)


def write_table(frame: pd.DataFrame, path: Path) -> str:
    """Write atomically (a crash never leaves half a file), creating the folder; the path."""
    from litemlops.store.files import write_frame

    path.parent.mkdir(parents=True, exist_ok=True)
    write_frame(frame, path)
    return str(path)


def _upstream_path(ctx: TaskContext, name: str) -> Path:
    return Path(ctx.upstream[name]["path"])


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
    frames = [_timestamps(_frame(p), times, p) for p in files]
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
    raw = _frame(_upstream_path(ctx, "ingest"))
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
    frame = _frame(_upstream_path(ctx, "clean"))
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
    return {"path": str(_upstream_path(ctx, "clean")), **report.to_dict()}


@task(upstream=["ingest", "validate"])
def write_offline(ctx: TaskContext) -> dict[str, Any]:
    """Append the batch to the offline store, then move its source files to `done/`.

    A retried or resumed attempt finds its batch already written (by its source
    path) and does not write it twice. A source file that changed since it was
    read stays where it is, for the next run.
    """
    view = ctx.params["view"]
    path = str(_upstream_path(ctx, "validate"))
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


# -- training ------------------------------------------------------------------------------


def _feature_columns(refs: list[str]) -> list[str]:
    return [ref.split(":", 1)[1] for ref in refs]


@task
def extract(ctx: TaskContext) -> dict[str, Any]:
    """The training set: each row of the labels file with the features known then (point
    in time), and, with `served_labels`, each served prediction a `/feedback` label came
    for, with the feature values it was served with (so a retrain learns from the traffic
    that drifted). A `source` column says which each row is."""
    import pandas as pd

    labels = _frame(Path(ctx.params["labels"]))
    missing = [c for c in ("driver_id", "event_timestamp", LABEL) if c not in labels.columns]
    if missing:
        raise ValidationError(f"labels file {ctx.params['labels']} lacks column(s) {missing}")
    refs = list(ctx.params["features"])
    frame = ctx.features.get_historical_features(labels, refs).assign(source="labels")
    views = sorted({ref.split(":", 1)[0] for ref in refs})
    versions = {v: ctx.features.describe(v)["version"] for v in views}
    served, skipped = _served_rows(ctx, _feature_columns(refs), frame)
    if len(served):
        frame = pd.concat([frame, served], ignore_index=True)
    path = write_table(frame, ctx.work_dir / "training.parquet")
    ctx.log.info(
        events.TRAINING_SET_EXTRACTED,
        rows=len(frame),
        served_rows=len(served),
        served_skipped=skipped,
    )
    return {
        "path": path,
        "rows": len(frame),
        "served_rows": len(served),
        "served_skipped": skipped,
        "feature_views": versions,
    }


def _served_rows(
    ctx: TaskContext, columns: list[str], like: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """(training rows from the model's labelled predictions in the event log, shaped like
    `like`; how many labelled ones could not be used, having no driver id: `/predict`
    feature rows). Labels other than 0 and 1 are left out, as performance leaves them."""
    import pandas as pd

    from litemlops.monitoring.events import read_feedback, read_predictions
    from litemlops.monitoring.performance import labelled_rows

    empty = like.iloc[:0]
    if not ctx.params["served_labels"]:
        return empty, 0
    logs = ctx.config.logs_dir
    predictions = read_predictions(
        logs, model=ctx.params["model_name"], features=dict.fromkeys(columns, "numeric")
    )
    if predictions.empty:
        return empty, 0
    since = predictions["timestamp"].min().to_pydatetime()
    rows = labelled_rows(predictions, read_feedback(logs, since=since))
    driver = pd.to_numeric(rows["entity"], errors="coerce")
    usable = driver.notna() & (driver % 1 == 0)
    rows, driver = rows[usable], driver[usable]
    times = rows["timestamp"]
    stamp = like["event_timestamp"].dtype
    if getattr(stamp, "tz", None) is None:  # the labels' times are naive UTC
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    served = pd.DataFrame(
        {
            "driver_id": driver.astype("int64").to_numpy(),
            "event_timestamp": times.astype(stamp).to_numpy(),
            **{c: rows[c].astype("float64").to_numpy() for c in columns},
            LABEL: rows["label"].astype("int64").to_numpy(),
            "source": "served",
        }
    )
    return served, int((~usable).sum())


@task(upstream="extract")
def validate_data(ctx: TaskContext) -> dict[str, Any]:
    """Expected columns and dtypes, 0/1 labels; rows whose features are unknown are dropped."""
    from litemlops.quality import DataValidationError, check_frame

    frame = _frame(_upstream_path(ctx, "extract"))
    columns = _feature_columns(ctx.params["features"])
    schema = {c: "float64" for c in columns} | {LABEL: "int64"}
    report = check_frame(
        frame,
        schema,
        required=[LABEL],
        ranges={LABEL: [0, 1]},
        max_null_rate=1.0,
        allow_extra=True,
    )
    complete = frame.dropna(subset=[c for c in columns if c in frame.columns])
    dropped = len(frame) - len(complete)
    if report.passed and len(complete) < 10:
        report.problems.append(
            f"only {len(complete)} labelled rows have every feature; at least 10 are needed"
        )
    if report.passed and complete[LABEL].nunique() < 2:
        report.problems.append("every label has the same value; a model cannot learn from that")
    if not report.passed:
        raise DataValidationError(report)
    path = write_table(complete, ctx.work_dir / "training.parquet")
    return {"path": path, "rows": len(complete), "dropped_incomplete": dropped}


def split_by_identity(
    frame: pd.DataFrame, keys: list[str], test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split where each row's side depends only on its keys and the seed.

    A random split re-deals every row when labels are added, so the champion
    would be scored partly on rows it was trained on, and win the gate for that
    reason. Hashing (entity, time) keeps each row on its side as data grows.
    """
    import hashlib

    import numpy as np
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame[keys], index=False).to_numpy(dtype=np.uint64)
    # pandas hashes numbers without a key, so the seed is mixed in here (splitmix64's
    # finaliser: every input bit moves every output bit).
    salt = int.from_bytes(hashlib.sha256(f"litemlops-split-{seed}".encode()).digest()[:8])
    z = hashed ^ np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    in_test = z < np.uint64(int(test_size * 2**64))
    return frame[~in_test], frame[in_test]


@task(upstream="validate_data")
def prepare(ctx: TaskContext) -> dict[str, Any]:
    """A seeded train/test split that keeps each labelled row on its side as data grows."""
    frame = _frame(_upstream_path(ctx, "validate_data"))
    train, test = split_by_identity(
        frame,
        ["driver_id", "event_timestamp"],
        float(ctx.params["test_size"]),
        int(ctx.params["seed"]),
    )
    if test.empty or train[LABEL].nunique() < 2:
        raise ValidationError(
            f"the split of {len(frame)} rows left {len(test)} test rows and "
            f"{train[LABEL].nunique()} label value(s) to train on; more labels are needed"
        )
    return {
        "train": write_table(train, ctx.work_dir / "train.parquet"),
        "test": write_table(test, ctx.work_dir / "test.parquet"),
        "train_rows": len(train),
        "test_rows": len(test),
    }


@task(upstream=["extract", "prepare"])
def train(ctx: TaskContext) -> dict[str, Any]:
    """Fit the configured estimator in a tracking run and log the model with its signature."""
    from litemlops.modeling import estimator_kind, make_estimator, parse_hyperparams
    from litemlops.store.autolog import fit_and_log
    from litemlops.store.signature import infer_signature

    p = ctx.params
    columns = _feature_columns(p["features"])
    data = _frame(Path(ctx.upstream["prepare"]["train"]))
    estimator = make_estimator(p["estimator"], p["hyperparams"], seed=int(p["seed"]))
    run = ctx.tracker.start_run(
        p["model_name"],
        f"{ctx.pipeline}-{ctx.run_id[:8]}",
        tags={"pipeline": ctx.pipeline, "pipeline_run_id": ctx.run_id},
    )
    try:
        run.log_params(
            {
                "estimator": p["estimator"],
                "hyperparams": parse_hyperparams(p["hyperparams"]),
                "test_size": p["test_size"],
                "seed": p["seed"],
                "features": ",".join(p["features"]),
            }
        )
        run.log_input("training", data=data, feature_views=ctx.upstream["extract"]["feature_views"])
        X, y = data[columns].astype("float64"), data[LABEL]
        model = fit_and_log(run, estimator, X, y)
        run.log_model(model, "model", signature=infer_signature(X), input_example=X.head(3))
        # What the model saw, for drift checks against what it will be served.
        from litemlops.monitoring.pipeline import PROFILE_ARTIFACT
        from litemlops.monitoring.profile import build_profile

        run.log_dict(build_profile(X, seed=int(p["seed"])).to_dict(), PROFILE_ARTIFACT)
    except BaseException as exc:
        run.end("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run.end()  # evaluate and the gate reopen it: each task may run in another process
    return {"tracking_run_id": run.id, "kind": estimator_kind(p["estimator"])}


def _test_scores(ctx: TaskContext, model_uri: str) -> tuple[Any, Any]:
    from litemlops.modeling import scores

    test = _frame(Path(ctx.upstream["prepare"]["test"]))
    columns = _feature_columns(ctx.params["features"])
    model = ctx.registry.load_model(model_uri)
    return test[LABEL], scores(model, test[columns].astype("float64"))


@task(upstream=["prepare", "train"])
def evaluate(ctx: TaskContext) -> dict[str, Any]:
    """Test-set RMSE and MAE, AUC and log-loss for probabilities, logged to the run."""
    from litemlops.modeling import evaluate as test_metrics

    run_id = ctx.upstream["train"]["tracking_run_id"]
    with ctx.tracker.resume_run(run_id) as run:  # ended as failed if this raises
        y, s = _test_scores(ctx, f"runs:/{run_id}/model")
        metrics = test_metrics(y, s)
        run.log_metrics({f"test_{k}": v for k, v in metrics.items()})
    return {"metrics": metrics}


@task(upstream=["prepare", "train", "evaluate"])
def validate_model(ctx: TaskContext) -> dict[str, Any]:
    """Thresholds AND no worse than the champion on the same test set.

    A model that fails is not registered: the run fails with the reasons, and
    the tracking run (which keeps its metrics) is tagged `gate=failed`.
    """
    from litemlops.modeling import ModelGateError, gate
    from litemlops.modeling import evaluate as test_metrics

    p = ctx.params
    run_id = ctx.upstream["train"]["tracking_run_id"]
    with ctx.tracker.resume_run(run_id) as run:  # ended as failed if this raises
        champion: dict[str, Any] | None = None
        try:
            current = ctx.registry.get_alias(p["model_name"], "champion")
        except (ModelNotFoundError, AliasNotFoundError):
            current = None
        if current is not None:
            y, s = _test_scores(ctx, f"{p['model_name']}/{current.version}")
            champion = {"version": current.version, "metrics": test_metrics(y, s)}
        result = gate(
            ctx.upstream["evaluate"]["metrics"],
            min_auc=p["min_auc"],
            max_rmse=p["max_rmse"],
            champion=champion["metrics"] if champion else None,
            metric=p["gate_metric"],
            tolerance=p["tolerance"],
        )
        run.set_tags({"gate": "passed" if result.passed else "failed"})
        if not result.passed:
            run.set_tag("gate_reasons", "; ".join(result.reasons))
    if not result.passed:
        raise ModelGateError("model not promoted: " + "; ".join(result.reasons))
    return {**result.to_dict(), "champion": champion}


@task(upstream=["train", "evaluate", "validate_model"])
def register(ctx: TaskContext) -> dict[str, Any]:
    """A new version with its lineage; champion when there is none (or policy says so)."""
    p = ctx.params
    run_id = ctx.upstream["train"]["tracking_run_id"]
    version = ctx.registry.register_model(
        f"runs:/{run_id}/model",
        p["model_name"],
        description=f"trained by pipeline run {ctx.run_id} ({p['estimator']})",
    )
    has_champion = ctx.upstream["validate_model"]["champion"] is not None
    alias = "champion" if (not has_champion or p["promote"] == "auto") else "challenger"
    ctx.registry.set_alias(
        p["model_name"], alias, version.version, reason=f"training run {ctx.run_id}"
    )
    return {"name": version.name, "version": version.version, "alias": alias}


# -- batch predictions -----------------------------------------------------------------------


@task
def extract_features(ctx: TaskContext) -> dict[str, Any]:
    """Point-in-time features for each request row (rows without a time are scored now)."""
    import pandas as pd

    requests = _frame(Path(ctx.params["requests"]))
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

    frame = _frame(_upstream_path(ctx, "extract_features"))
    columns = _feature_columns(ctx.params["features"])
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
    frame = _frame(_upstream_path(ctx, "predict"))
    stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
    out = Path(ctx.params["output_dir"]) / f"predictions_{stamp}_{ctx.run_id[:8]}.parquet"
    return {"path": write_table(frame, out), "rows": len(frame)}


# -- params -----------------------------------------------------------------------------------


def _text(p: dict[str, Any], key: str) -> str:
    value = p[key]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"param {key} must be a non-empty string, got {value!r}")
    return value


def _number(
    p: dict[str, Any],
    key: str,
    low: float,
    high: float,
    *,
    optional: bool = False,
    open_ends: bool = False,
) -> float | None:
    import math

    value = p[key]
    if optional and (value is None or value == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"param {key} must be a finite number, got {value!r}")
    inside = low < value < high if open_ends else low <= value <= high
    if not inside:
        brackets = "()" if open_ends else "[]"
        raise ValidationError(
            f"param {key} must be in {brackets[0]}{low:g}, {high:g}{brackets[1]}, got {value!r}"
        )
    return float(value)


def _choice(p: dict[str, Any], key: str, choices: Any) -> str:
    if p[key] not in choices:
        raise ValidationError(f"param {key} must be one of {sorted(choices)}, got {p[key]!r}")
    return str(p[key])


def _refs(p: dict[str, Any]) -> list[str]:
    refs = p["features"]
    if (
        not isinstance(refs, list)
        or not refs
        or not all(isinstance(r, str) and r.count(":") == 1 for r in refs)
    ):
        raise ValidationError(
            f"param features must be a list of 'view:feature' references, got {refs!r}"
        )
    return refs


def check_data_params(p: dict[str, Any]) -> dict[str, Any]:
    from litemlops.quality import check_range

    _text(p, "view")
    _text(p, "source")
    if not isinstance(p["ranges"], dict):
        raise ValidationError(f"param ranges must map columns to [min, max], got {p['ranges']!r}")
    for column, pair in p["ranges"].items():
        check_range(column, pair)
    p["max_null_rate"] = _number(p, "max_null_rate", 0, 1)
    return p


def check_training_params(p: dict[str, Any]) -> dict[str, Any]:
    import math

    from litemlops.modeling import ESTIMATORS, HIGHER_IS_BETTER, parse_hyperparams
    from litemlops.store.registry import check_model_name

    _text(p, "labels")
    _refs(p)
    check_model_name(p["model_name"])
    _choice(p, "estimator", ESTIMATORS)
    parse_hyperparams(p["hyperparams"])
    p["test_size"] = _number(p, "test_size", 0, 1, open_ends=True)
    seed = p["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError(f"param seed must be an integer in [0, 2**32), got {seed!r}")
    _choice(p, "gate_metric", HIGHER_IS_BETTER)
    p["min_auc"] = _number(p, "min_auc", 0, 1, optional=True)
    p["max_rmse"] = _number(p, "max_rmse", 0, math.inf, optional=True)
    p["tolerance"] = _number(p, "tolerance", 0, math.inf)
    _choice(p, "promote", ("challenger", "auto"))
    if not isinstance(p["served_labels"], bool):
        raise ValidationError(
            f"param served_labels must be true or false, got {p['served_labels']!r}"
        )
    return p


def check_batch_params(p: dict[str, Any]) -> dict[str, Any]:
    for key in ("requests", "model", "output_dir"):
        _text(p, key)
    _refs(p)
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
    )
    return [data, training, batch]
