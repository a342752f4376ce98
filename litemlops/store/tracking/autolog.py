"""scikit-learn autologging as an explicit helper: fit, then log what MLflow's autolog logs.

No monkey-patching: `fit_and_log(run, estimator, X, y)` fits the estimator and
logs its parameters (`get_params()`, nested ones as `step__param`), training
metrics named as MLflow names them, and the estimator's class as tags.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from litemlops.errors import ValidationError

if TYPE_CHECKING:
    from litemlops.store.tracking.tracker import Run

MAX_PARAM = 250  # longer values (nested estimators) are cut: they are descriptions, not inputs


def fit_and_log(run: Run, estimator: Any, X: Any, y: Any, *, sample_weight: Any = None) -> Any:
    """Fit `estimator` on (X, y), log params, training metrics and tags; return it fitted."""
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise ValidationError(f"{estimator!r} is not a scikit-learn estimator")
    params = {k: _param(v) for k, v in estimator.get_params(deep=True).items()}
    run.log_params(params)
    kwargs = {"sample_weight": sample_weight} if sample_weight is not None else {}
    estimator.fit(X, y, **kwargs)
    run.log_metrics(training_metrics(estimator, X, y, sample_weight))
    cls = type(estimator)
    run.set_tags(
        {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"}
    )
    return estimator


def training_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    """MLflow's training metrics for a fitted classifier or regressor."""
    import numpy as np
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    predicted = estimator.predict(X)
    weights = {"sample_weight": sample_weight}
    if is_classifier(estimator):
        labels = list(getattr(estimator, "classes_", []))
        # Binary: the positive class is the second label, whatever its type (strings too).
        scoring: dict[str, Any] = (
            {"average": "binary", "pos_label": labels[1]}
            if len(labels) == 2
            else {"average": "weighted"}
        )
        out["training_accuracy_score"] = metrics.accuracy_score(y, predicted, **weights)
        for name, fn in (
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
            ("f1", metrics.f1_score),
        ):
            out[f"training_{name}_score"] = fn(y, predicted, zero_division=0, **scoring, **weights)
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            out["training_log_loss"] = metrics.log_loss(y, proba, labels=labels, **weights)
            if len(labels) == 2:
                positive = np.asarray(y) == labels[1]
                out["training_roc_auc"] = metrics.roc_auc_score(positive, proba[:, 1], **weights)
            elif len(labels) > 2:
                out["training_roc_auc"] = metrics.roc_auc_score(
                    y, proba, multi_class="ovr", labels=labels, **weights
                )
    elif is_regressor(estimator):
        mse = metrics.mean_squared_error(y, predicted, **weights)
        out["training_mean_squared_error"] = mse
        out["training_root_mean_squared_error"] = math.sqrt(mse)
        out["training_mean_absolute_error"] = metrics.mean_absolute_error(y, predicted, **weights)
        out["training_r2_score"] = metrics.r2_score(y, predicted, **weights)
    out["training_score"] = float(estimator.score(X, y, **weights))
    # A metric that cannot be computed (one class only) is left out, not logged as NaN.
    return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_PARAM else text[: MAX_PARAM - 3] + "..."
