"""Estimators the training pipeline can build, test-set metrics, and the promotion gate.

The gate compares a candidate with absolute thresholds AND with the current
champion scored on the same test set, so a retrain on worse data cannot
replace a better model just because it clears a fixed bar. What it measures
follows the estimator's kind: a classifier is held to AUC, a regressor to
RMSE and R² (its scores need not be probabilities, its labels not 0/1).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from litemlops.errors import LitemlopsError, ValidationError


class ModelGateError(LitemlopsError, RuntimeError):
    """A trained model was not promoted: it failed a threshold or lost to the champion."""


@dataclass(frozen=True)
class EstimatorSpec:
    path: str  # "module.Class"
    defaults: Mapping[str, Any]
    kind: str  # "classifier" or "regressor"


#: Estimators by the name config and `--param estimator=...` use.
ESTIMATORS: dict[str, EstimatorSpec] = {
    "logistic_regression": EstimatorSpec(
        "sklearn.linear_model.LogisticRegression", {"max_iter": 1000}, "classifier"
    ),
    "random_forest": EstimatorSpec(
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 100, "min_samples_leaf": 5, "n_jobs": 1},
        "classifier",
    ),
    "gradient_boosting": EstimatorSpec(
        "sklearn.ensemble.HistGradientBoostingClassifier", {}, "classifier"
    ),
    # The course's model: a regressor fitted on the 0/1 label.
    "elasticnet": EstimatorSpec(
        "sklearn.linear_model.ElasticNet", {"alpha": 0.5, "l1_ratio": 0.1}, "regressor"
    ),
    # A baseline that predicts the base rate: what any real model must beat.
    "dummy": EstimatorSpec("sklearn.dummy.DummyClassifier", {"strategy": "prior"}, "classifier"),
}

#: Whether a larger value of each metric is better.
HIGHER_IS_BETTER = {
    "auc": True,
    "accuracy": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}

#: The metric a candidate is compared with the champion on, by estimator kind, when
#: the gate metric is "auto".
KIND_METRIC = {"classifier": "auc", "regressor": "rmse"}
GATE_METRICS = ("auto", *HIGHER_IS_BETTER)


def parse_hyperparams(value: Any) -> dict[str, Any]:
    """Hyper-parameters from a dict or its JSON text (config and `--param` give text)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError as exc:
            raise ValidationError(f"hyperparams must be a JSON object: {exc}") from None
    if not isinstance(value, Mapping):
        raise ValidationError(f"hyperparams must be a JSON object, got {value!r}")
    return dict(value)


def make_estimator(name: str, hyperparams: Any = None, seed: int | None = None) -> Any:
    """A fresh estimator: its defaults, then `hyperparams`, seeded when it takes a seed."""
    spec = ESTIMATORS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValidationError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    module, _, cls_name = spec.path.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    estimator = cls(**spec.defaults)
    params = parse_hyperparams(hyperparams)
    if seed is not None and "random_state" in estimator.get_params():
        params.setdefault("random_state", seed)
    try:
        estimator.set_params(**params)
    except ValueError as exc:
        raise ValidationError(f"estimator {name!r}: {exc}") from None
    return estimator


def estimator_kind(name: str) -> str:
    spec = ESTIMATORS.get(name)
    if spec is None:
        raise ValidationError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    return spec.kind


def scores(model: Any, X: Any) -> Any:
    """One score per row: the positive class's probability, or a regressor's prediction."""
    import numpy as np

    if hasattr(model, "predict_proba") and callable(getattr(_raw(model), "predict_proba", None)):
        proba = np.asarray(model.predict_proba(X))
        return proba[:, -1] if proba.ndim == 2 else proba
    return np.asarray(model.predict(X), dtype="float64")


def _raw(model: Any) -> Any:
    # A LoadedModel exposes predict_proba whatever it wraps; ask the wrapped model.
    return getattr(model, "model", model)


def evaluate(y_true: Any, y_score: Any, kind: str = "classifier") -> dict[str, float]:
    """Test metrics of scores against labels: RMSE and MAE always; for 0/1 labels, AUC
    when both classes occur, log-loss and accuracy when the scores are probabilities;
    for a regressor (`kind`), R² when the labels vary."""
    import numpy as np
    from sklearn import metrics

    check_kind(kind)
    y = np.asarray(y_true, dtype="float64")
    s = np.asarray(y_score, dtype="float64")
    if len(y) == 0:
        raise ValidationError("cannot evaluate on an empty test set")
    if not np.isfinite(s).all():
        raise ValidationError("the model produced NaN or infinite scores")
    out = {
        "rmse": math.sqrt(metrics.mean_squared_error(y, s)),
        "mae": metrics.mean_absolute_error(y, s),
    }
    binary = bool(np.isin(y, (0, 1)).all())
    if binary and len(np.unique(y)) == 2:
        out["auc"] = metrics.roc_auc_score(y, s)
    if binary and ((s >= 0) & (s <= 1)).all():
        out["log_loss"] = metrics.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1])
        out["accuracy"] = metrics.accuracy_score(y, s >= 0.5)
    if kind == "regressor" and len(y) > 1 and np.ptp(y) > 0:
        out["r2"] = metrics.r2_score(y, s)
    return {k: float(v) for k, v in out.items()}


def check_kind(kind: str) -> str:
    if kind not in KIND_METRIC:
        raise ValidationError(f"estimator kind must be one of {sorted(KIND_METRIC)}, got {kind!r}")
    return kind


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons)}


def gate(
    metrics: Mapping[str, float],
    *,
    kind: str = "classifier",
    min_auc: float | None = None,
    max_rmse: float | None = None,
    min_r2: float | None = None,
    champion: Mapping[str, float] | None = None,
    metric: str = "auto",
    tolerance: float = 0.0,
) -> GateResult:
    """Whether a candidate may be promoted; every failed check is a reason in the result.

    kind: the candidate's estimator kind. A classifier must reach `min_auc`, a
    regressor `min_r2`; either must stay within `max_rmse`. A threshold of None
    is not checked.
    champion: the champion's metrics on the same test set (None: no champion).
    The candidate may be worse than it on `metric` ("auto": AUC for a classifier,
    RMSE for a regressor) by at most `tolerance`, in the direction that metric
    improves.
    """
    check_kind(kind)
    if metric not in GATE_METRICS:
        raise ValidationError(f"gate metric must be one of {list(GATE_METRICS)}, got {metric!r}")
    if metric == "auto":
        metric = KIND_METRIC[kind]
    limits = (("min_auc", min_auc), ("max_rmse", max_rmse), ("min_r2", min_r2))
    for name, value in (*limits, ("tolerance", tolerance)):
        if value is not None and not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number, got {value!r}")
    if tolerance < 0:
        raise ValidationError(f"tolerance must be >= 0, got {tolerance!r}")
    reasons: list[str] = []
    floors = {"classifier": ("auc", "min_auc", min_auc), "regressor": ("r2", "min_r2", min_r2)}
    name, key, floor = floors[kind]
    value = metrics.get(name)
    if floor is not None and (value is None or value < floor):
        shown = "not computable" if value is None else f"{value:.4f}"
        reasons.append(f"{name} {shown} is below {key} {floor}")
    rmse = metrics.get("rmse")
    if max_rmse is not None and (rmse is None or rmse > max_rmse):
        shown = "not computable" if rmse is None else f"{rmse:.4f}"
        reasons.append(f"rmse {shown} is above max_rmse {max_rmse}")
    if champion is not None:
        mine, theirs = metrics.get(metric), champion.get(metric)
        if mine is None:
            reasons.append(f"{metric} could not be computed for the candidate")
        elif theirs is not None:
            higher = HIGHER_IS_BETTER[metric]
            worse_by = (theirs - mine) if higher else (mine - theirs)
            if worse_by > tolerance:
                reasons.append(
                    f"{metric} {mine:.4f} is worse than the champion's {theirs:.4f} "
                    f"on the same test set (tolerance {tolerance})"
                )
    return GateResult(passed=not reasons, reasons=reasons)
