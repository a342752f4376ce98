"""The `training` pipeline's tasks: labels (and labelled served predictions) x features
-> validate -> seeded split -> train -> evaluate -> gate -> register."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.demo.common import (
    LABEL,
    feature_columns,
    param_choice,
    param_number,
    param_refs,
    param_text,
    read_table,
    upstream_path,
    write_table,
)
from litemlops.errors import AliasNotFoundError, ModelNotFoundError, ValidationError
from litemlops.scheduler.pipeline import TaskContext, task

if TYPE_CHECKING:
    import pandas as pd


@task
def extract(ctx: TaskContext) -> dict[str, Any]:
    """The training set: each row of the labels file with the features known then (point
    in time), and, with `served_labels`, each served prediction a `/feedback` label came
    for, with the feature values it was served with (so a retrain learns from the traffic
    that drifted). A `source` column says which each row is."""
    import pandas as pd

    labels = read_table(Path(ctx.params["labels"]))
    missing = [c for c in ("driver_id", "event_timestamp", LABEL) if c not in labels.columns]
    if missing:
        raise ValidationError(f"labels file {ctx.params['labels']} lacks column(s) {missing}")
    refs = list(ctx.params["features"])
    frame = ctx.features.get_historical_features(labels, refs).assign(source="labels")
    views = sorted({ref.split(":", 1)[0] for ref in refs})
    versions = {v: ctx.features.describe(v)["version"] for v in views}
    served, skipped = _served_rows(ctx, feature_columns(refs), frame)
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
    # Only the requests labels came for: the history holds weeks of predictions.
    predictions = read_predictions(
        logs,
        model=ctx.params["model_name"],
        features=dict.fromkeys(columns, "numeric"),
        labelled=True,
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
    """Expected columns and dtypes, labels a classifier can learn (0/1) or a regressor
    can (numbers); rows whose features are unknown are dropped."""
    from litemlops.modeling import estimator_kind
    from litemlops.quality import DataValidationError, check_frame

    frame = read_table(upstream_path(ctx, "extract"))
    columns = feature_columns(ctx.params["features"])
    classifier = estimator_kind(ctx.params["estimator"]) == "classifier"
    schema = {c: "float64" for c in columns} | {LABEL: "int64" if classifier else "float64"}
    report = check_frame(
        frame,
        schema,
        required=[LABEL],
        ranges={LABEL: [0, 1]} if classifier else {},
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
    frame = read_table(upstream_path(ctx, "validate_data"))
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
    from litemlops.serving.lineage import log_feature_refs
    from litemlops.store.tracking.autolog import fit_and_log
    from litemlops.store.tracking.signature import infer_signature

    p = ctx.params
    columns = feature_columns(p["features"])
    data = read_table(Path(ctx.upstream["prepare"]["train"]))
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
        log_feature_refs(run, p["features"])  # what serving looks its inputs up by
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

    test = read_table(Path(ctx.upstream["prepare"]["test"]))
    columns = feature_columns(ctx.params["features"])
    model = ctx.registry.load_model(model_uri)
    return test[LABEL], scores(model, test[columns].astype("float64"))


@task(upstream=["prepare", "train"])
def evaluate(ctx: TaskContext) -> dict[str, Any]:
    """Test-set RMSE and MAE, AUC and log-loss for probabilities, R² for a regressor,
    logged to the run."""
    from litemlops.modeling import evaluate as test_metrics

    run_id = ctx.upstream["train"]["tracking_run_id"]
    with ctx.tracker.resume_run(run_id) as run:  # ended as failed if this raises
        y, s = _test_scores(ctx, f"runs:/{run_id}/model")
        metrics = test_metrics(y, s, ctx.upstream["train"]["kind"])
        run.log_metrics({f"test_{k}": v for k, v in metrics.items()})
    return {"metrics": metrics}


@task(upstream=["prepare", "train", "evaluate"])
def validate_model(ctx: TaskContext) -> dict[str, Any]:
    """Thresholds AND no worse than the champion on the same test set, on the metrics
    of the candidate's kind (a regressor is not asked for an AUC).

    A model that fails is not registered: the run fails with the reasons, and
    the tracking run (which keeps its metrics) is tagged `gate=failed`.
    """
    from litemlops.modeling import ModelGateError

    p = ctx.params
    run_id = ctx.upstream["train"]["tracking_run_id"]
    kind = ctx.upstream["train"]["kind"]
    with ctx.tracker.resume_run(run_id) as run:  # ended as failed if this raises
        result, champion = _judged(ctx, p["model_name"], ctx.upstream["evaluate"]["metrics"],
                                   kind)  # fmt: skip
        run.set_tags({"gate": "passed" if result.passed else "failed"})
        if not result.passed:
            run.set_tag("gate_reasons", "; ".join(result.reasons))
    if not result.passed:
        raise ModelGateError("model not promoted: " + "; ".join(result.reasons))
    return {**result.to_dict(), "champion": champion}


def _judged(
    ctx: TaskContext, name: str, metrics: dict[str, float], kind: str, candidate: int = 0
) -> tuple[Any, dict[str, Any] | None]:
    """The gate's verdict on `metrics` with this run's thresholds, against the champion
    of `name` on the same test set (none when there is none, or it is `candidate`); and
    the champion's version and metrics."""
    from litemlops.modeling import evaluate as test_metrics
    from litemlops.modeling import gate

    p = ctx.params
    champion: dict[str, Any] | None = None
    try:
        current = ctx.registry.get_alias(name, "champion")
    except (ModelNotFoundError, AliasNotFoundError):
        current = None
    if current is not None and current.version != candidate:
        y, s = _test_scores(ctx, f"{name}/{current.version}")
        champion = {"version": current.version, "metrics": test_metrics(y, s, kind)}
    result = gate(
        metrics,
        kind=kind,
        min_auc=p["min_auc"],
        max_rmse=p["max_rmse"],
        min_r2=p["min_r2"],
        champion=champion["metrics"] if champion else None,
        metric=p["gate_metric"],
        tolerance=p["tolerance"],
    )
    return result, champion


@task(upstream=["train", "evaluate", "validate_model"])
def register(ctx: TaskContext) -> dict[str, Any]:
    """A new version with its lineage; champion when there is none (or policy says so).

    A model byte for byte like a registered version is that version (unless
    `allow_duplicate`): no new version, and when it is the champion already no
    alias moves (`reused` in the output says which happened).
    """
    p = ctx.params
    run_id = ctx.upstream["train"]["tracking_run_id"]
    version = ctx.registry.register_model(
        f"runs:/{run_id}/model",
        p["model_name"],
        description=f"trained by pipeline run {ctx.run_id} ({p['estimator']})",
        allow_duplicate=p["allow_duplicate"],
    )
    # A version of another run: these bytes were registered before this run.
    reused = version.run_id != run_id
    if reused and "champion" in version.aliases:
        return {"name": version.name, "version": version.version, "alias": None,
                "reused": True}
    has_champion = ctx.upstream["validate_model"]["champion"] is not None
    alias = "champion" if (not has_champion or p["promote"] == "auto") else "challenger"
    ctx.registry.set_alias(
        p["model_name"], alias, version.version, reason=f"training run {ctx.run_id}"
    )
    return {"name": version.name, "version": version.version, "alias": alias, "reused": reused}


@task(upstream=["prepare"])
def check_model(ctx: TaskContext) -> dict[str, Any]:
    """This home's model checks on this home's data: the model of `model` (a version
    `name/N` or `name@alias`; default the champion) must reach the thresholds and be no
    worse than the champion on the same test set. What `litemlops check` runs on the
    champion and `litemlops promote` on a candidate before it gets an alias."""
    from litemlops.modeling import ModelGateError, estimator_kind
    from litemlops.modeling import evaluate as test_metrics

    p = ctx.params
    name, _, chosen = (p["model"] or f"{p['model_name']}@champion").partition("@")
    if chosen:
        candidate = ctx.registry.get_alias(name, chosen)
    else:
        name, _, number = name.partition("/")
        candidate = ctx.registry.get_model_version(name, int(number))
    kind = estimator_kind(str(candidate.lineage.get("params", {}).get("estimator",
                                                                      p["estimator"])))
    y, s = _test_scores(ctx, f"{name}/{candidate.version}")
    metrics = test_metrics(y, s, kind)
    result, champion = _judged(ctx, name, metrics, kind, candidate=candidate.version)
    if not result.passed:
        raise ModelGateError(
            f"{name}/{candidate.version} fails this home's model checks: "
            + "; ".join(result.reasons)
        )
    return {"model": name, "version": candidate.version, "metrics": metrics,
            "champion": champion, **result.to_dict()}  # fmt: skip


def check_model_params(p: dict[str, Any]) -> dict[str, Any]:
    """The training params' checks, and `model`: "" (the champion), `name/N` or `name@alias`."""
    import re

    model = p["model"]
    if not isinstance(model, str) or (
        model and not re.fullmatch(r"[^/@\s]+(/[1-9][0-9]*|@[^/@\s]+)", model)
    ):
        raise ValidationError(
            f"param model must be a version NAME/N or NAME@ALIAS (or empty: the champion), "
            f"got {model!r}"
        )
    return check_training_params(p)


def check_training_params(p: dict[str, Any]) -> dict[str, Any]:
    import math

    from litemlops.modeling import ESTIMATORS, GATE_METRICS, parse_hyperparams
    from litemlops.store.tracking.registry import check_model_name

    param_text(p, "labels")
    param_refs(p)
    check_model_name(p["model_name"])
    param_choice(p, "estimator", ESTIMATORS)
    parse_hyperparams(p["hyperparams"])
    p["test_size"] = param_number(p, "test_size", 0, 1, open_ends=True)
    seed = p["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError(f"param seed must be an integer in [0, 2**32), got {seed!r}")
    param_choice(p, "gate_metric", GATE_METRICS)
    p["min_auc"] = param_number(p, "min_auc", 0, 1, optional=True)
    p["max_rmse"] = param_number(p, "max_rmse", 0, math.inf, optional=True)
    p["min_r2"] = param_number(p, "min_r2", -math.inf, 1, optional=True)
    p["tolerance"] = param_number(p, "tolerance", 0, math.inf)
    param_choice(p, "promote", ("challenger", "auto"))
    for key in ("served_labels", "allow_duplicate"):
        if not isinstance(p[key], bool):
            raise ValidationError(f"param {key} must be true or false, got {p[key]!r}")
    return p
