"""Scores of the models litemlops trains, computed with numpy, verified at load.

scikit-learn checks its input on every `predict_proba` (types, shape, feature
names, fitted state): for the few rows of a request that costs a hundred times
the arithmetic. `fast_scorer` knows, by exact type, the linear estimators the
training pipeline builds, its trees and forests (`litemlops.serving.trees`), and
`StandardScaler` pipelines of them, and redoes their arithmetic from the fitted
attributes with the same numpy operations in the same order. `verified_scorer`
uses it only when it equals the model's own `modeling.scores` on rows of the
model's data, and otherwise the model's own method: an unknown estimator, a
subclass, a fitted state this code reads wrongly, all fall back.

Scorers take a float64 matrix of finite values, columns in the model's order.
`row_scorer` gives the simplest of them a plain Python twin for a request's few
rows (where numpy's cost per call dominates), checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

Scorer = Callable[["np.ndarray"], "np.ndarray"]

#: How close the numpy scores must be to the model's own (they are normally equal).
RTOL = 1e-12
ATOL = 1e-12


def model_scorer(model: Any) -> Scorer:
    """The model's own `modeling.scores`, without scikit-learn's finiteness scan."""
    from sklearn import config_context

    from litemlops.modeling import scores

    def score(X: np.ndarray) -> np.ndarray:
        with config_context(assume_finite=True):
            return scores(model, X)

    return score


def fast_scorer(model: Any) -> Scorer | None:
    """`modeling.scores` of `model` as numpy operations; None for a model it does not know.

    The scorer is a small object holding the fitted arrays: it pickles without
    scikit-learn, so a process that only serves can score with it unimported.
    """
    from sklearn.pipeline import Pipeline

    transforms: list[Scorer] = []
    final = model
    if type(model) is Pipeline:
        *head, (_, final) = model.steps
        for _, step in head:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            transform = _transform(step)
            if transform is None:
                return None
            transforms.append(transform)
    score = _final(final)
    if score is None or not transforms:
        return score
    return _Piped(tuple(transforms), score)


class _Piped:
    def __init__(self, transforms: tuple[Scorer, ...], score: Scorer):
        self.transforms = transforms
        self.score = score

    def __call__(self, X: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            X = transform(X)
        return self.score(X)


def verified_scorer(model: Any, rows: np.ndarray) -> tuple[Scorer, str]:
    """(scorer, "numpy") when the numpy scorer equals the model's own scores on `rows`,
    else (the model's own, "model"). `rows`: the model's inputs, its own data if known."""
    import numpy as np

    own = model_scorer(model)
    fast = fast_scorer(model)
    if fast is None:
        return own, "model"
    X = np.ascontiguousarray(rows, dtype="float64")
    try:
        expected = np.asarray(own(X))
        got = fast(X)
    except Exception:
        return own, "model"
    same = (
        got.shape == expected.shape
        and got.dtype == expected.dtype
        and bool(np.allclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True))
    )
    return (fast, "numpy") if same else (own, "model")


def verification_rows(
    n_features: int, own: Sequence[np.ndarray] = (), *, seed: int = 0
) -> np.ndarray:
    """Rows to compare scorers on: the model's own (`own`: row blocks from its data),
    then seeded rows at several scales around their centre, and zeros."""
    import numpy as np

    blocks = [np.asarray(b, dtype="float64").reshape(-1, n_features) for b in own]
    blocks = [b[np.isfinite(b).all(axis=1)] for b in blocks]
    known = np.concatenate(blocks) if blocks else np.zeros((0, n_features))
    centre = known.mean(axis=0) if len(known) else np.zeros(n_features)
    spread = known.std(axis=0) if len(known) > 1 else np.zeros(n_features)
    spread = np.where(spread > 0, spread, np.maximum(np.abs(centre), 1.0))
    rng = np.random.default_rng(seed)
    synthetic = [
        centre + spread * scale * rng.standard_normal((32, n_features))
        for scale in (0.1, 1.0, 10.0, 1e3)
    ]
    return np.concatenate([known, *synthetic, np.zeros((1, n_features))])


# -- the estimators it knows ------------------------------------------------------------------


def _transform(step: Any) -> Scorer | None:
    from sklearn.preprocessing import StandardScaler

    if type(step) is not StandardScaler:
        return None
    # StandardScaler.transform on a copy: subtract the mean, then divide by the scale.
    return _Standardise(
        step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None
    )


class _Standardise:
    def __init__(self, mean: Any, scale: Any):
        self.mean = mean
        self.scale = scale

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            X = X - self.mean
            if self.scale is not None:
                X /= self.scale
            return X
        return X / self.scale if self.scale is not None else X.copy()


def _final(estimator: Any) -> Scorer | None:
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
        SGDClassifier,
        SGDRegressor,
    )

    kind = type(estimator)
    if kind in (LinearRegression, Ridge, Lasso, ElasticNet, SGDRegressor):
        return _linear_regression(estimator)
    if kind is LogisticRegression:
        return _logistic(estimator, multinomial=True)
    if kind is SGDClassifier:
        if estimator.loss == "log_loss":
            return _logistic(estimator, multinomial=False)
        if estimator.loss == "modified_huber":
            return _modified_huber(estimator)
        return None
    from litemlops.serving.trees import tree_scorer

    return tree_scorer(estimator)


def _fitted(estimator: Any, *names: str) -> list[Any] | None:
    values = [getattr(estimator, name, None) for name in names]
    return None if any(v is None for v in values) else values


class _Affine:
    """X @ coef + intercept, then what the subclass makes of it."""

    def __init__(self, coef: Any, intercept: Any):
        self.coef = coef
        self.intercept = intercept

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef + self.intercept


def _linear_regression(estimator: Any) -> Scorer | None:
    fitted = _fitted(estimator, "coef_", "intercept_")
    if fitted is None or fitted[0].ndim != 1:
        return None  # unfitted, or several targets
    return _Affine(fitted[0], fitted[1])


def _decision(estimator: Any) -> tuple[Any, Any] | None:
    fitted = _fitted(estimator, "coef_", "intercept_", "classes_")
    if fitted is None or fitted[0].ndim != 2:
        return None
    return fitted[0].T, fitted[1]


def expit(d: np.ndarray) -> np.ndarray:
    """The logistic function in place, with numpy (scipy's expit gives the same values
    here; importing scipy.special would cost a serving process ~23 MB)."""
    import numpy as np

    np.negative(d, out=d)
    with np.errstate(over="ignore"):  # exp(710+) is inf, and 1 / (1 + inf) is the 0 wanted
        np.exp(d, out=d)
    d += 1.0
    np.reciprocal(d, out=d)
    return d


class _Binary(_Affine):
    def __call__(self, X: np.ndarray) -> np.ndarray:
        return expit((X @ self.coef + self.intercept).reshape(-1))


class _Softmax(_Affine):
    def __call__(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        d = X @ self.coef + self.intercept
        d -= d.max(axis=1).reshape((-1, 1))
        np.exp(d, out=d)
        d /= d.sum(axis=1).reshape((-1, 1))
        return d[:, -1]


class _OneVsRest(_Affine):
    def __call__(self, X: np.ndarray) -> np.ndarray:
        p = expit(X @ self.coef + self.intercept)
        total = p.sum(axis=1)
        none = total == 0
        if none.any():
            p[none, :] = 1
            total[none] = p.shape[1]
        p /= total.reshape((p.shape[0], -1))
        return p[:, -1]


class _Huber(_Affine):
    def __call__(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        d = (X @ self.coef + self.intercept).reshape(-1)
        np.clip(d, -1, 1, out=d)
        d += 1.0
        d /= 2.0
        return d


def _logistic(estimator: Any, *, multinomial: bool) -> Scorer | None:
    """The last class's probability: the logistic of the decision for two classes; for
    more, a softmax (LogisticRegression) or normalised one-vs-rest logistics (SGD)."""
    found = _decision(estimator)
    if found is None:
        return None
    coef_t, intercept = found
    if coef_t.shape[1] == 1:
        return _Binary(coef_t, intercept)
    return _Softmax(coef_t, intercept) if multinomial else _OneVsRest(coef_t, intercept)


def _modified_huber(estimator: Any) -> Scorer | None:
    found = _decision(estimator)
    if found is None or found[0].shape[1] != 1:
        return None  # several classes: left to the model
    return _Huber(*found)


# -- a request's few rows, in plain Python ----------------------------------------------------

RowScorer = Callable[[Sequence[Sequence[float]]], list[float]]

#: Rows x inputs up to which a request's rows are scored in plain Python: for a handful
#: of rows, numpy's fixed cost per call (a scorer makes several, plus the array and the
#: list back) is most of the time, and it is higher in a busy server than in a loop.
ROW_CELLS = 256


def row_scorer(scorer: Scorer) -> RowScorer | None:
    """A numpy scorer's arithmetic in plain Python, for rows given as sequences of
    numbers; for affine and binary logistic scorers, alone or after standardising
    steps, else None. The products are summed in another order than BLAS's, so a
    score may differ in its last bit: use it verified (`verified_row_scorer`)."""
    import numpy as np

    steps: list[tuple[tuple[float, ...] | None, tuple[float, ...] | None]] = []
    final: Any = scorer
    if type(scorer) is _Piped:
        for step in scorer.transforms:
            if type(step) is not _Standardise:
                return None
            steps.append((_floats(step.mean), _floats(step.scale)))
        final = scorer.score
    if type(final) is _Affine and np.ndim(final.coef) == 1:
        logistic = False
    elif type(final) is _Binary:
        logistic = True
    else:
        return None
    weights = _floats(np.ravel(final.coef))
    intercept = np.ravel(final.intercept)
    if weights is None or intercept.size != 1:
        return None
    return _Rows(tuple(steps), weights, float(intercept[0]), logistic)


def verified_row_scorer(model: Any, scorer: RowScorer | None, rows: np.ndarray) -> RowScorer | None:
    """`scorer` when it equals the model's own scores on `rows` (as `verified_scorer`
    checks the numpy scorer), else None."""
    import numpy as np

    if scorer is None:
        return None
    X = np.ascontiguousarray(rows, dtype="float64")
    try:
        expected = np.asarray(model_scorer(model)(X), dtype="float64")
        got = np.asarray(scorer(X.tolist()), dtype="float64")
    except Exception:
        return None
    same = got.shape == expected.shape and bool(
        np.allclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    )
    return scorer if same else None


def _floats(values: Any) -> tuple[float, ...] | None:
    import numpy as np

    return None if values is None else tuple(float(v) for v in np.ravel(values))


class _Rows:
    """Standardise (x - mean) / scale per step, then weights . x + intercept, then the
    logistic function when `logistic`: the numpy scorers' steps, one row at a time."""

    def __init__(
        self,
        steps: tuple[tuple[tuple[float, ...] | None, tuple[float, ...] | None], ...],
        weights: tuple[float, ...],
        intercept: float,
        logistic: bool,
    ):
        self.steps = steps
        self.weights = weights
        self.intercept = intercept
        self.logistic = logistic

    def __call__(self, rows: Sequence[Sequence[float]]) -> list[float]:
        from math import exp

        out: list[float] = []
        for row in rows:
            for mean, scale in self.steps:
                if mean is not None:
                    row = [x - m for x, m in zip(row, mean, strict=True)]
                if scale is not None:
                    row = [x / s for x, s in zip(row, scale, strict=True)]
            d = 0.0
            for x, w in zip(row, self.weights, strict=True):
                d += x * w
            d += self.intercept
            if self.logistic:
                try:
                    d = 1.0 / (1.0 + exp(-d))
                except OverflowError:  # exp(710+): numpy's inf, whose logistic is 0
                    d = 0.0
            out.append(d)
        return out
