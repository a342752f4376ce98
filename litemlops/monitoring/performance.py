"""Model performance from delayed labels: served predictions joined to `/feedback` by request id.

Labels come late, twice, out of order, or for requests this log never saw
(a client's typo, a prediction in a rotated-away log): each of those is counted
and none stops the report. A request is one prediction: for `/inference` the
label is the outcome of the entity the service chose (the row whose `entity` is
the request's `output`), for `/predict` the request's single row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from litemlops.clock import utc_now
from litemlops.errors import ValidationError

PREDICTION_COLUMNS = ("request_id", "timestamp", "model", "version", "entity", "score", "output")
FEEDBACK_COLUMNS = ("request_id", "timestamp", "label")
KINDS = ("classifier", "regressor")


@dataclass(frozen=True)
class PerformanceReport:
    """How well the served model did on the predictions that have labels.

    predictions: requests (in the window) that can take a label; labelled, unlabeled:
    how many of them have one and not. duplicate_labels: labels replaced by a later
    one for the same request. unknown_labels: labels for no known request.
    invalid_labels: labels that are not numbers (or not 0/1 for a classifier).
    ambiguous_requests: requests scoring several rows with none chosen (a label
    cannot say which row it is about). Metrics are None where they do not apply or
    cannot be computed (AUC needs both classes among the labels).
    """

    kind: str
    status: str
    predictions: int = 0
    labelled: int = 0
    unlabeled: int = 0
    duplicate_labels: int = 0
    unknown_labels: int = 0
    invalid_labels: int = 0
    ambiguous_requests: int = 0
    label_coverage: float | None = None
    label_lag_p50_seconds: float | None = None
    label_lag_p95_seconds: float | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    auc: float | None = None
    rmse: float | None = None
    mae: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None

    def metrics(self) -> dict[str, float]:
        """Flat `performance.<name>` -> number, only for values that exist (alert rules and
        `/metrics` read these; a missing metric keeps an alert's state)."""
        names = (
            "accuracy",
            "precision",
            "recall",
            "f1",
            "auc",
            "rmse",
            "mae",
            "label_coverage",
            "label_lag_p50_seconds",
            "label_lag_p95_seconds",
        )
        flat = {f"performance.{n}": getattr(self, n) for n in names}
        flat["performance.labels"] = self.labelled
        for n in (
            "predictions",
            "unlabeled",
            "unknown_labels",
            "duplicate_labels",
            "invalid_labels",
        ):
            flat[f"performance.{n}"] = getattr(self, n)
        return {k: float(v) for k, v in flat.items() if v is not None}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 text."""
        return {
            k: v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v
            for k, v in asdict(self).items()
        }


def performance_report(
    predictions: pd.DataFrame,
    feedback: pd.DataFrame,
    *,
    kind: str = "classifier",
    threshold: float = 0.5,
    window: float | timedelta | None = None,
    now: datetime | None = None,
) -> PerformanceReport:
    """Join labels to predictions and measure the model on the joined ones.

    predictions: `PREDICTION_COLUMNS`, one row per scored entity; feedback:
    `FEEDBACK_COLUMNS`. Either may be empty. kind: "classifier" (score is the
    probability of label 1, a hit when `score >= threshold`) or "regressor" (score
    is the prediction). window: only predictions made in the last `window` (seconds
    or a timedelta) before `now` (default: the current time) count; labels for
    older ones are neither measured nor unknown.
    """
    _check_kind(kind)
    units, ambiguous, known = _requests(predictions)
    start = end = None
    if window is not None:
        seconds = window.total_seconds() if isinstance(window, timedelta) else float(window)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValidationError(f"window must be a positive duration, got {window!r}")
        end = now if now is not None else utc_now()
        start = end - timedelta(seconds=seconds)
        in_window = (units["ts"] >= pd.Timestamp(start)) & (units["ts"] <= pd.Timestamp(end))
        units = units[in_window]
    labels, counts = _labels(feedback, known, kind)

    joined = units.merge(labels, on="request_id", how="left")
    has_label = joined["label"].notna()
    labelled = joined[has_label]
    n = len(joined)
    report = PerformanceReport(
        kind=kind,
        status="ok",
        predictions=n,
        labelled=len(labelled),
        unlabeled=n - len(labelled),
        duplicate_labels=counts["duplicate_labels"],
        unknown_labels=counts["unknown_labels"],
        invalid_labels=counts["invalid_labels"],
        ambiguous_requests=ambiguous,
        label_coverage=len(labelled) / n if n else None,
        window_start=start,
        window_end=end,
    )
    if not n:
        return replace(report, status="no predictions")
    if labelled.empty:
        return replace(report, status="no labels yet")
    # A label written before its prediction (clocks of two processes, a batch of
    # labels replayed) still belongs to it; it just came with no delay.
    lag = (labelled["label_ts"] - labelled["ts"]).dt.total_seconds().clip(lower=0).dropna()
    if not lag.empty:
        report = replace(
            report,
            label_lag_p50_seconds=float(np.percentile(lag, 50)),
            label_lag_p95_seconds=float(np.percentile(lag, 95)),
        )
    scored = labelled[np.isfinite(labelled["score"].to_numpy(dtype=float))]
    y = scored["label"].to_numpy(dtype=float)
    score = scored["score"].to_numpy(dtype=float)
    if not len(y):
        return report
    if kind == "regressor":
        error = score - y
        return replace(
            report,
            rmse=float(np.sqrt(np.mean(error**2))),
            mae=float(np.mean(np.abs(error))),
        )
    return _classifier(report, y, score, threshold)


def labelled_rows(
    predictions: pd.DataFrame, feedback: pd.DataFrame, *, kind: str = "classifier"
) -> pd.DataFrame:
    """The prediction rows labels were given for, with `label` and `label_ts` added.

    One row per labelled request, chosen as `performance_report` chooses it (the
    entity `/inference` returned, the single row of `/predict`), with every column
    of `predictions` (the feature values served, for one) and its latest valid
    label. Ambiguous and unlabeled requests, and unknown or invalid labels, are
    left out. Oldest prediction first.
    """
    _check_kind(kind)
    units, _, known = _requests(predictions)
    labels, _ = _labels(feedback, known, kind)
    joined = units.merge(labels, on="request_id").sort_values("ts", kind="stable")
    rows = predictions.iloc[joined["row"].to_numpy(dtype=int)].reset_index(drop=True)
    return rows.assign(label=joined["label"].to_numpy(), label_ts=joined["label_ts"].to_numpy())


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _requests(predictions: pd.DataFrame) -> tuple[pd.DataFrame, int, set[Any]]:
    """(one row per request: request_id, ts, score and its row's position in `predictions`;
    ambiguous requests; all request ids)."""
    empty = pd.DataFrame(
        {
            "request_id": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[ns, UTC]"),
            "score": pd.Series(dtype=float),
            "row": pd.Series(dtype=int),
        }
    )
    if predictions.empty:
        return empty, 0, set()
    _require(predictions, PREDICTION_COLUMNS, "predictions")
    rows = pd.DataFrame(
        {
            "request_id": predictions["request_id"],
            "ts": _utc(predictions["timestamp"]),
            "score": pd.to_numeric(predictions["score"], errors="coerce"),
            "entity": predictions["entity"].map(_key),
            "output": predictions["output"].map(_key),
            "row": np.arange(len(predictions)),
        },
        index=predictions.index,
    ).dropna(subset=["request_id"])
    known = set(rows["request_id"])
    # A request sent twice under one id: its latest answer (the rows of its latest time) is
    # the one labelled, whatever an earlier answer scored or chose.
    latest = rows.groupby("request_id", sort=False)["ts"].transform("max")
    rows = rows[(rows["ts"] == latest) | latest.isna()]
    rows = rows.sort_values("ts", kind="stable").drop_duplicates(
        ["request_id", "entity"], keep="last"
    )
    chosen = rows[rows["entity"].notna() & (rows["entity"] == rows["output"])]
    chosen = chosen.drop_duplicates("request_id", keep="last")
    rest = rows[~rows["request_id"].isin(set(chosen["request_id"]))]
    sizes = rest.groupby("request_id", sort=False)["request_id"].transform("size")
    single = rest[sizes == 1]
    units = pd.concat([chosen, single], ignore_index=True)[["request_id", "ts", "score", "row"]]
    ambiguous = rest.loc[sizes > 1, "request_id"].nunique()
    return (units if not units.empty else empty), int(ambiguous), known


def _labels(
    feedback: pd.DataFrame, known: set[Any], kind: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """(the latest valid label per known request: request_id, label, label_ts; counts)."""
    counts = {"duplicate_labels": 0, "unknown_labels": 0, "invalid_labels": 0}
    empty = pd.DataFrame(
        {
            "request_id": pd.Series(dtype=object),
            "label": pd.Series(dtype=float),
            "label_ts": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
    if feedback.empty:
        return empty, counts
    _require(feedback, FEEDBACK_COLUMNS, "feedback")
    raw = feedback["label"]
    label = pd.to_numeric(raw.astype(float) if raw.dtype == bool else raw, errors="coerce")
    labels = pd.DataFrame(
        {
            "request_id": feedback["request_id"],
            "label": label,
            "label_ts": _utc(feedback["timestamp"]),
        }
    )
    # `known` holds no missing id, so a label without one is unknown too.
    is_known = labels["request_id"].isin(known)
    counts["unknown_labels"] = int((~is_known).sum())
    labels = labels[is_known]
    values = labels["label"].to_numpy(dtype=float)
    valid = np.isfinite(values) if kind == "regressor" else np.isin(values, [0.0, 1.0])
    counts["invalid_labels"] = int((~valid).sum())
    labels = labels[valid]
    # The latest label wins (a correction); labels without a time sort first.
    labels = labels.sort_values("label_ts", kind="stable", na_position="first")
    latest = labels.drop_duplicates("request_id", keep="last")
    counts["duplicate_labels"] = len(labels) - len(latest)
    return (latest if not latest.empty else empty), counts


def _classifier(
    report: PerformanceReport, y: np.ndarray, score: np.ndarray, threshold: float
) -> PerformanceReport:
    hit = score >= threshold
    positive = y == 1
    tp = int(np.sum(hit & positive))
    fp = int(np.sum(hit & ~positive))
    fn = int(np.sum(~hit & positive))
    # No predicted (or no actual) positives: 0, as scikit-learn's zero_division default.
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return replace(
        report,
        accuracy=float(np.mean(hit == positive)),
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        auc=_auc(positive, score),
    )


def _auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney U statistic over average ranks (ties count half)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what} lacks columns {missing}; it needs {', '.join(columns)}",
            column=missing[0],
        )


def _utc(values: pd.Series) -> pd.Series:
    """Aware UTC times; text in any ISO-8601 shape (with or without fractions), else NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def _key(value: Any) -> str | None:
    """An entity or output as comparable text: 1001 from the log and "1001" are one driver,
    and a /predict output (a list) matches no entity."""
    if value is None or isinstance(value, list | tuple | dict | np.ndarray):
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)
