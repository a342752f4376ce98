"""The numpy scorers against scikit-learn's own methods (the oracle), and the fallback
to the model's own method for estimators they do not know or do not match."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import (
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from litemlops.modeling import make_estimator, scores
from litemlops.serving.scoring import (
    ATOL,
    ROW_CELLS,
    RTOL,
    fast_scorer,
    model_scorer,
    row_scorer,
    verification_rows,
    verified_row_scorer,
    verified_scorer,
)

REGRESSORS = {
    "linear": LinearRegression,
    "ridge": lambda: Ridge(alpha=0.3),
    "lasso": lambda: Lasso(alpha=0.01),
    "elasticnet": lambda: make_estimator("elasticnet"),  # the course's model
    "sgd": lambda: SGDRegressor(random_state=0),
}
CLASSIFIERS = {
    "logistic": lambda: make_estimator("logistic_regression"),
    "logistic_no_intercept": lambda: LogisticRegression(fit_intercept=False),
    "sgd_log_loss": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "sgd_modified_huber": lambda: SGDClassifier(loss="modified_huber", random_state=0),
}
SCALERS = {
    "none": None,
    "standard": StandardScaler,
    "centre_only": lambda: StandardScaler(with_std=False),
    "scale_only": lambda: StandardScaler(with_mean=False),
}


def data(seed: int, n_features: int, scale: float, classes: int = 0) -> tuple[Any, Any, Any]:
    """(X to fit, y, X to score): features at `scale` around an offset; labels from a
    noisy linear rule, split into `classes` classes by quantile (0: a regression)."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(scale=scale, size=n_features)
    X = offset + scale * rng.standard_normal((120, n_features))
    rule = X @ rng.normal(size=n_features) + rng.normal(scale=scale, size=120)
    if classes:
        y = np.searchsorted(np.quantile(rule, np.linspace(0, 1, classes + 1)[1:-1]), rule)
    else:
        y = rule
    # Rows to score: like the training data, far outside it, and exact zeros.
    fresh = offset + scale * rng.standard_normal((40, n_features)) * rng.choice([0.1, 1, 100], 40)[
        :, None
    ]
    return X, y, np.vstack([fresh, np.zeros((1, n_features))])


def assert_same(model: Any, X: np.ndarray) -> None:
    fast = fast_scorer(model)
    assert fast is not None
    got, expected = fast(X), scores(model, X)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


fitting = settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
shapes = {
    "seed": st.integers(0, 2**32 - 1),
    "n_features": st.integers(1, 6),
    "scale": st.sampled_from([1e-3, 1.0, 50.0, 1e4]),
    "scaler": st.sampled_from(sorted(SCALERS)),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
@fitting
@given(**shapes)
def test_the_numpy_scorer_equals_each_regressors_predict(name, seed, n_features, scale, scaler):
    X, y, fresh = data(seed, n_features, scale)
    model = with_scaler(REGRESSORS[name](), scaler).fit(X, y)
    assert_same(model, fresh)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
@fitting
@given(**shapes, classes=st.sampled_from([2, 3, 4]))
def test_the_numpy_scorer_equals_each_classifiers_predict_proba(
    name, seed, n_features, scale, scaler, classes
):
    X, y, fresh = data(seed, n_features, scale, classes)
    model = with_scaler(CLASSIFIERS[name](), scaler).fit(X, y)
    if name == "sgd_modified_huber" and classes > 2:
        assert fast_scorer(model) is None  # left to the model
        return
    assert_same(model, fresh)


def with_scaler(estimator: Any, scaler: str) -> Any:
    make = SCALERS[scaler]
    return estimator if make is None else make_pipeline(make(), estimator)


@pytest.mark.parametrize("name", sorted(REGRESSORS) + sorted(CLASSIFIERS))
def test_a_known_estimator_is_scored_with_numpy_once_verified(name):
    make = REGRESSORS.get(name) or CLASSIFIERS[name]
    X, y, fresh = data(1, 3, 10.0, 0 if name in REGRESSORS else 2)
    model = make().fit(X, y)

    scorer, kind = verified_scorer(model, verification_rows(3, [X]))

    assert kind == "numpy"
    np.testing.assert_allclose(scorer(fresh), scores(model, fresh), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_estimator("gradient_boosting", seed=0),
        lambda: make_estimator("dummy"),
        lambda: make_pipeline(MinMaxScaler(), LogisticRegression()),
        lambda: SGDClassifier(loss="hinge", random_state=0),
    ],
    ids=["gradient_boosting", "dummy", "unknown_transform", "no_proba"],
)
def test_an_estimator_it_does_not_know_is_scored_by_its_own_method(make):
    X, y, fresh = data(2, 3, 1.0, 2)
    model = make().fit(X, y)

    scorer, kind = verified_scorer(model, verification_rows(3, [X]))

    assert fast_scorer(model) is None
    assert kind == "model"
    np.testing.assert_array_equal(scorer(fresh), scores(model, fresh))


class ClippedLogistic(LogisticRegression):
    """A subclass whose probabilities differ from its parent's arithmetic."""

    def predict_proba(self, X: Any) -> Any:
        return np.clip(super().predict_proba(X), 0.1, 0.9)


def test_a_subclass_of_a_known_estimator_is_scored_by_its_own_method():
    X, y, fresh = data(3, 2, 1.0, 2)
    model = ClippedLogistic().fit(X, y)

    scorer, kind = verified_scorer(model, verification_rows(2, [X]))

    assert kind == "model"
    assert scores(model, fresh).max() <= 0.9
    np.testing.assert_array_equal(scorer(fresh), scores(model, fresh))


def test_a_model_whose_numpy_scores_disagree_with_its_own_falls_back():
    X, y, fresh = data(4, 2, 1.0, 2)
    model = LogisticRegression().fit(X, y)
    own = model.predict_proba
    # The known type, but its method says something else (patched on the instance).
    model.predict_proba = lambda rows: np.clip(own(rows), 0.1, 0.9)

    scorer, kind = verified_scorer(model, verification_rows(2, [X]))

    assert fast_scorer(model) is not None  # the type is known ...
    assert kind == "model"  # ... but its scores are not what the numpy path computes
    np.testing.assert_array_equal(scorer(fresh), scores(model, fresh))


def test_a_disagreement_on_the_models_own_rows_alone_is_enough_to_fall_back():
    X, y, _ = data(5, 2, 1.0, 2)
    model = LogisticRegression().fit(X, y)
    own = model.predict_proba
    odd = X[7].copy()

    def predict_proba(rows: Any) -> Any:
        out = own(rows)
        out[(np.asarray(rows) == odd).all(axis=1)] = [0.5, 0.5]
        return out

    model.predict_proba = predict_proba

    assert verified_scorer(model, verification_rows(2))[1] == "numpy"  # synthetic rows miss it
    assert verified_scorer(model, verification_rows(2, [X]))[1] == "model"


def test_a_model_that_fails_on_the_verification_rows_falls_back():
    X, y, _ = data(6, 2, 1.0, 2)
    model = LogisticRegression().fit(X, y)

    # Rows of the wrong width: scikit-learn refuses them, so the numpy path is not trusted.
    _, kind = verified_scorer(model, np.zeros((3, 5)))

    assert kind == "model"


def test_verification_rows_hold_the_models_rows_then_rows_around_them():
    own = np.array([[1.0, 100.0], [3.0, 300.0], [np.nan, 1.0]])

    rows = verification_rows(2, [own])

    np.testing.assert_array_equal(rows[:2], own[:2])  # the row with NaN is left out
    assert np.isfinite(rows).all()
    assert (rows[-1] == 0).all()
    assert abs(np.median(rows[2:34, 1]) - 200.0) < 50  # the first synthetic block is close
    np.testing.assert_array_equal(rows, verification_rows(2, [own]))  # seeded


def test_the_models_own_scorer_equals_modeling_scores():
    X, y, fresh = data(7, 3, 1.0, 2)
    model = make_estimator("random_forest", seed=0).fit(X, y)

    np.testing.assert_array_equal(model_scorer(model)(fresh), scores(model, fresh))


# -- a request's few rows, in plain Python ----------------------------------------------------


@pytest.mark.parametrize("name", [*sorted(REGRESSORS), "logistic", "sgd_log_loss"])
@fitting
@given(**shapes)
def test_the_plain_python_scorer_equals_the_models_own_scores(
    name, seed, n_features, scale, scaler
):
    classes = 0 if name in REGRESSORS else 2
    X, y, fresh = data(seed, n_features, scale, classes)
    model = with_scaler((REGRESSORS.get(name) or CLASSIFIERS[name])(), scaler).fit(X, y)
    fast = fast_scorer(model)
    assert fast is not None
    rows = row_scorer(fast)
    assert rows is not None

    got = rows(fresh.tolist())

    assert all(type(s) is float for s in got)
    expected = scores(model, fresh)
    # The same sum added up in another order: rounding relative to its terms' size.
    allowed = ATOL + RTOL * (np.abs(expected) + rounding_scale(model, fresh))
    off = np.abs(np.asarray(got) - expected)
    assert (off <= allowed).all(), f"rows {np.flatnonzero(off > allowed)}: {off} > {allowed}"


def rounding_scale(model: Any, X: Any) -> Any:
    """Per row, the size of the terms a linear model's score adds up, before or after its
    scaler is folded into the weights: the sum's rounding is relative to them, not to the
    sum, which cancellation can make far smaller (1.8e8 from terms near 1e14)."""
    if hasattr(model, "steps"):
        scaler, estimator = model[0], model[-1]
        mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(X.shape[1])
        std = scaler.scale_ if scaler.scale_ is not None else np.ones(X.shape[1])
    else:
        estimator, mean, std = model, np.zeros(X.shape[1]), np.ones(X.shape[1])
    weights = np.abs(np.ravel(estimator.coef_))
    terms = (np.abs(X) + np.abs(mean) + np.abs(X - mean)) / std
    return terms @ weights + np.abs(np.ravel(estimator.intercept_)).sum()


@pytest.mark.parametrize(
    ("make", "classes"),
    [
        (lambda: make_estimator("logistic_regression"), 3),  # a softmax
        (lambda: SGDClassifier(loss="log_loss", random_state=0), 3),  # one-vs-rest
        (lambda: SGDClassifier(loss="modified_huber", random_state=0), 2),
    ],
    ids=["softmax", "one_vs_rest", "modified_huber"],
)
def test_other_numpy_scorers_have_no_plain_python_twin(make, classes):
    X, y, _ = data(8, 3, 1.0, classes)
    fast = fast_scorer(make().fit(X, y))

    assert fast is not None and row_scorer(fast) is None


def test_the_logistic_of_a_far_negative_decision_is_0_as_with_numpy():
    X, y, _ = data(9, 1, 1.0, 2)
    model = LogisticRegression().fit(X, y)
    far = np.array([[-1e6], [1e6], [0.0]]) * np.sign(model.coef_[0, 0])
    fast = fast_scorer(model)
    assert fast is not None
    rows = row_scorer(fast)
    assert rows is not None

    assert rows(far.tolist()) == fast(far).tolist() == [0.0, 1.0, pytest.approx(fast(far)[2])]


def test_a_plain_python_scorer_that_disagrees_is_not_used():
    X, y, _ = data(10, 2, 1.0, 2)
    model = LogisticRegression().fit(X, y)
    fast = fast_scorer(model)
    assert fast is not None
    rows = row_scorer(fast)
    checked = verification_rows(2, [X])

    assert verified_row_scorer(model, rows, checked) is rows
    assert verified_row_scorer(model, lambda r: [0.5] * len(r), checked) is None
    assert verified_row_scorer(model, None, checked) is None


def test_a_serving_model_scores_few_rows_in_python_and_many_with_numpy():
    from litemlops.serving.models import ServingModel

    X, y, _ = data(11, 4, 1.0, 2)
    model = LogisticRegression().fit(X, y)
    fast = fast_scorer(model)
    assert fast is not None
    rows = row_scorer(fast)
    used: list[int] = []

    def few(batch):
        used.append(len(batch))
        return rows(batch)

    served = ServingModel(
        "m/1", "m", 1, None, ("a", "b", "c", "d"), None, "numpy", fast, few
    )
    small = X[:5].tolist()
    large = np.vstack([X] * 3)[: ROW_CELLS // 4 + 1].tolist()

    np.testing.assert_allclose(served.score_list(small), scores(model, X[:5]), rtol=RTOL)
    np.testing.assert_allclose(
        served.score_list(large), scores(model, np.asarray(large)), rtol=RTOL
    )
    assert used == [5]  # the large batch went through numpy


def test_the_plain_python_scorer_pickles_for_the_serving_process():
    import pickle

    X, y, fresh = data(12, 3, 1.0, 2)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    fast = fast_scorer(model)
    assert fast is not None
    rows = row_scorer(fast)
    assert rows is not None

    assert pickle.loads(pickle.dumps(rows))(fresh.tolist()) == rows(fresh.tolist())
