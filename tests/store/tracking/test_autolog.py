import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import ElasticNet, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from litemlops.errors import ValidationError
from litemlops.store.tracking.autolog import fit_and_log


def xy(classify=True):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.random(100), "b": rng.random(100)})
    y = (X["a"] > 0.5).astype(int) if classify else 3 * X["a"] + rng.normal(0, 0.1, 100)
    return X, y


def test_classifier_params_and_training_metrics_are_logged(tracker):
    X, y = xy()
    with tracker.start_run() as run:
        model = fit_and_log(run, LogisticRegression(C=0.3), X, y)
    info = tracker.get_run(run.id)
    assert info.params["C"] == "0.3" and info.params["max_iter"] == "100"
    assert info.metrics["training_roc_auc"] == pytest.approx(
        roc_auc_score(y, model.predict_proba(X)[:, 1]))
    assert {"training_accuracy_score", "training_f1_score", "training_log_loss"} <= set(
        info.metrics)
    assert info.tags["estimator_name"] == "LogisticRegression"


def test_the_courses_elasticnet_logs_regression_metrics(tracker):
    X, y = xy(classify=False)
    with tracker.start_run() as run:
        fit_and_log(run, ElasticNet(alpha=0.5, l1_ratio=0.1), X, y)
    metrics = tracker.get_run(run.id).metrics
    assert metrics["training_root_mean_squared_error"] == pytest.approx(
        metrics["training_mean_squared_error"] ** 0.5)
    assert "training_mean_absolute_error" in metrics and "training_roc_auc" not in metrics


def test_nested_pipeline_params_are_flattened(tracker):
    X, y = xy()
    with tracker.start_run() as run:
        fit_and_log(run, make_pipeline(StandardScaler(), LogisticRegression()), X, y)
    assert tracker.get_run(run.id).params["logisticregression__C"] == "1.0"


def test_something_that_is_not_an_estimator_is_refused(tracker):
    with tracker.start_run() as run, pytest.raises(ValidationError, match="not a scikit-learn"):
        fit_and_log(run, object(), [[1]], [1])


def test_string_labels_of_a_binary_classifier_are_scored(tracker):
    X, y = xy()
    labels = y.map({0: "no", 1: "yes"})
    with tracker.start_run() as run:
        model = fit_and_log(run, LogisticRegression(), X, labels)
    metrics = tracker.get_run(run.id).metrics
    assert metrics["training_roc_auc"] == pytest.approx(
        roc_auc_score(labels == "yes", model.predict_proba(X)[:, 1]))
    assert 0 < metrics["training_f1_score"] <= 1
