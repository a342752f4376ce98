"""The numpy scorer of trees and forests, and the walk of a boosted model's trees for a
request's few rows, against scikit-learn's own methods (the oracle): equal on rows drawn
around the data and on rows that sit exactly on, and a float step beside, the thresholds
the trees test; other estimators are left alone."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from litemlops.modeling import make_estimator, scores
from litemlops.serving import trees
from litemlops.serving.scoring import (
    RTOL,
    fast_scorer,
    model_scorer,
    verification_rows,
    verified_row_scorer,
    verified_scorer,
)
from litemlops.serving.trees import boosted_rows, tree_scorer

ESTIMATORS = {
    "tree": DecisionTreeClassifier,
    "tree_regressor": DecisionTreeRegressor,
    "extra_tree": ExtraTreeClassifier,
    "extra_tree_regressor": ExtraTreeRegressor,
    "forest": lambda **kw: RandomForestClassifier(n_estimators=7, **kw),
    "forest_regressor": lambda **kw: RandomForestRegressor(n_estimators=7, **kw),
    "extra_trees": lambda **kw: ExtraTreesClassifier(n_estimators=7, **kw),
    "extra_trees_regressor": lambda **kw: ExtraTreesRegressor(n_estimators=7, **kw),
}


def data(seed: int, n_features: int, scale: float, classes: int, grid: bool) -> tuple[Any, Any]:
    """(X, y): features at `scale` around an offset, whole numbers when `grid` (so the
    trees' thresholds fall half-way between them, where float32 holds them exactly);
    labels from a noisy linear rule, in `classes` classes by quantile (0: a regression)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=scale, size=n_features) + scale * rng.standard_normal((150, n_features))
    if grid:
        X = np.round(X / scale * 3)
    rule = X @ rng.normal(size=n_features) + rng.normal(scale=X.std() + 1e-9, size=150)
    if not classes:
        return X, rule
    return X, np.searchsorted(np.quantile(rule, np.linspace(0, 1, classes + 1)[1:-1]), rule)


def rows_to_score(X: np.ndarray, splits: list[tuple[int, float]], seed: int, step: Any) -> Any:
    """The data's first rows; rows far outside it; rows of X with one input set to a
    threshold a tree tests it against (`splits`: (input, threshold)), to that threshold
    as a `step` (the float type the model reads inputs as) and to the `step` just below
    and above it, where `<=` and `<`, or float32 and float64, part; and zeros."""
    rng = np.random.default_rng(seed)
    far = X.mean(axis=0) + X.std(axis=0) * rng.standard_normal((30, X.shape[1])) * 100
    on = []
    for feature, threshold in splits:
        value = step(threshold)
        for x in (threshold, value, *np.nextafter(value, [-np.inf, np.inf])):
            row = X[rng.integers(len(X))].copy()
            row[feature] = x
            on.append(row)
    on_them = np.asarray(on).reshape(-1, X.shape[1])
    return np.vstack([X[:20], far, on_them, np.zeros((1, X.shape[1]))])


def tree_splits(model: Any, seed: int) -> list[tuple[int, float]]:
    """Up to 12 (input, threshold) of each tree's inner nodes, drawn."""
    rng = np.random.default_rng(seed)
    estimator = model[-1] if hasattr(model, "steps") else model
    splits = []
    for tree in getattr(estimator, "estimators_", [estimator]):
        inner = np.flatnonzero(tree.tree_.children_left != -1)
        for node in rng.choice(inner, size=min(len(inner), 12), replace=False):
            splits.append((int(tree.tree_.feature[node]), float(tree.tree_.threshold[node])))
    return splits


def over_data(models: dict[str, Any], count: int, most_features: int, **draws: Any) -> Any:
    """A property test for each of `models`, `count` examples a model, drawing what
    `data` takes (seed, n_features up to `most_features`, scale, grid) and `draws`."""

    def decorate(test: Any) -> Any:
        drawn = given(
            seed=st.integers(0, 2**32 - 1),
            n_features=st.integers(1, most_features),
            scale=st.sampled_from([1e-3, 1.0, 1e4]),
            grid=st.booleans(),
            **draws,
        )(test)
        checked = settings(
            max_examples=examples(count), deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )(drawn)  # fmt: skip
        return pytest.mark.parametrize("name", sorted(models))(checked)

    return decorate


@over_data(
    ESTIMATORS,
    12,
    5,
    classes=st.sampled_from([2, 3]),
    depth=st.sampled_from([None, 1, 4]),
    leaf=st.sampled_from([1, 5]),
    scaled=st.booleans(),
)
def test_the_tree_scorer_equals_the_models_own_scores_bit_for_bit(
    name, seed, n_features, scale, classes, grid, depth, leaf, scaled
):
    classes = 0 if name.endswith("regressor") else classes
    X, y = data(seed, n_features, scale, classes, grid)
    model = ESTIMATORS[name](max_depth=depth, min_samples_leaf=leaf, random_state=seed % 1000)
    if scaled:
        model = make_pipeline(StandardScaler(), model)
    model.fit(X, y)
    seen = model[0].transform(X) if scaled else X  # the inputs as the trees see them
    rows = rows_to_score(seen, tree_splits(model, seed), seed, np.float32)
    if scaled:
        rows = model[0].inverse_transform(rows)

    fast = fast_scorer(model)

    assert fast is not None
    got, expected = fast(rows), scores(model, rows)
    assert got.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_rows_past_one_block_and_past_float32s_range_score_as_the_model_scores():
    X, y = data(1, 3, 1.0, 2, grid=False)
    model = make_estimator("random_forest", seed=0).fit(X, y)
    rows = np.random.default_rng(2).normal(size=(2 * trees.BLOCK + 1, 3))
    rows[:6] = [[1e39, 0, 0], [-1e39, 0, 0], [0, 3.5e38, -3.5e38], [np.finfo("f8").max] * 3,
                [np.finfo("f8").min] * 3, [0, 0, 0]]

    fast = fast_scorer(model)

    assert fast is not None
    # As the server scores: scikit-learn's finiteness scan skipped (its inputs are finite).
    with np.errstate(over="ignore"):
        expected = model_scorer(model)(rows)
    np.testing.assert_array_equal(fast(rows), expected)
    np.testing.assert_array_equal(fast(rows[:0]), expected[:0])


def test_the_training_pipelines_forest_is_scored_with_numpy_once_verified():
    X, y = data(3, 3, 10.0, 2, grid=False)
    model = make_estimator("random_forest", seed=0).fit(X, y)

    scorer, kind = verified_scorer(model, verification_rows(3, [X]))

    assert kind == "numpy"
    assert isinstance(scorer, trees.Forest)
    np.testing.assert_array_equal(scorer(X), scores(model, X))
    for row in X[:40]:  # one at a time, as requests come: its 100 trees summed in order
        np.testing.assert_array_equal(scorer(row[None, :]), scores(model, row[None, :]))


def test_the_scorer_pickles_and_scores_the_same_after():
    X, y = data(4, 2, 1.0, 3, grid=True)
    model = ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X, y)
    fast = tree_scorer(model)
    assert fast is not None

    back = pickle.loads(pickle.dumps(fast))

    np.testing.assert_array_equal(back(X), fast(X))
    np.testing.assert_array_equal(back(X), scores(model, X))


class SofterForest(RandomForestClassifier):
    """A subclass whose probabilities differ from its parent's arithmetic."""

    def predict_proba(self, X: Any) -> Any:
        return np.clip(super().predict_proba(X), 0.1, 0.9)


class SofterTree(DecisionTreeClassifier):
    def predict_proba(self, X: Any, check_input: bool = True) -> Any:
        return np.clip(super().predict_proba(X, check_input), 0.1, 0.9)


def two_targets() -> Any:
    X, y = data(5, 2, 1.0, 2, grid=False)
    return DecisionTreeClassifier(random_state=0).fit(X, np.column_stack([y, 1 - y]))


def other_classes() -> Any:
    """A forest of two classes with a tree of three put in."""
    X, y = data(10, 2, 1.0, 2, grid=False)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    forest.estimators_[1] = DecisionTreeClassifier(random_state=0).fit(*data(10, 2, 1.0, 3, False))
    return forest


def foreign_tree() -> Any:
    X, y = data(6, 2, 1.0, 2, grid=False)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    forest.estimators_[1] = SofterTree(random_state=0).fit(X, y)
    return forest


@pytest.mark.parametrize(
    "make",
    [
        lambda: SofterForest(n_estimators=3, random_state=0).fit(*data(7, 2, 1.0, 2, False)),
        lambda: SofterTree(random_state=0).fit(*data(8, 2, 1.0, 2, False)),
        # named and placed as scikit-learn's, but another class
        lambda: type(
            "RandomForestClassifier", (SofterForest,), {"__module__": "sklearn.ensemble._forest"}
        )(n_estimators=3).fit(*data(11, 2, 1.0, 2, False)),
        RandomForestClassifier,  # not fitted
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        two_targets,
        other_classes,
        foreign_tree,
        lambda: make_estimator("gradient_boosting", seed=0).fit(*data(9, 2, 1.0, 2, False)),
    ],
    ids=["forest_subclass", "tree_subclass", "same_name", "unfitted", "unfitted_tree",
         "unfitted_tree_regressor", "two_targets", "other_classes", "foreign_tree",
         "gradient_boosting"],
)
def test_what_it_does_not_know_is_left_to_the_model(make):
    assert tree_scorer(make()) is None



# -- histogram gradient boosting: a request's few rows ----------------------------------------

BOOSTED = {
    "boosted": lambda **kw: HistGradientBoostingClassifier(**kw),
    "boosted_regressor": lambda **kw: HistGradientBoostingRegressor(**kw),
    "boosted_absolute_error": lambda **kw: HistGradientBoostingRegressor(
        loss="absolute_error", **kw
    ),
}


@over_data(
    BOOSTED, 8, 4, iterations=st.sampled_from([1, 7, 30]), leaves=st.sampled_from([2, 15])
)
def test_the_boosted_walk_equals_the_models_own_scores(
    name, seed, n_features, scale, grid, iterations, leaves
):
    X, y = data(seed, n_features, scale, 0 if "regressor" in name or "error" in name else 2, grid)
    model = BOOSTED[name](max_iter=iterations, max_leaf_nodes=leaves, random_state=seed % 1000)
    model.fit(X, y)
    splits = [
        (int(node["feature_idx"]), float(node["num_threshold"]))
        for [predictor] in model._predictors
        for node in predictor.nodes
        if not node["is_leaf"]
    ]
    rows = rows_to_score(X, splits[:40], seed, np.float64)

    walk = boosted_rows(model)

    assert walk is not None
    got, expected = np.asarray(walk(rows.tolist())), model_scorer(model)(rows)
    assert got.dtype == expected.dtype == np.float64
    if isinstance(model, HistGradientBoostingRegressor):  # the same sum in the same order
        np.testing.assert_array_equal(got, expected)
    else:  # then numpy's logistic function here, scipy's there: the last bit may differ
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: HistGradientBoostingClassifier(max_iter=3).fit(*data(12, 2, 1.0, 3, False)),
        lambda: HistGradientBoostingRegressor(loss="poisson", max_iter=3).fit(
            data(13, 2, 1.0, 0, False)[0], np.arange(150) % 4
        ),
        lambda: HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(
            np.column_stack([np.arange(150) % 5, np.arange(150) / 7.0]), np.arange(150) % 2
        ),
        lambda: type("HistGradientBoostingClassifier", (HistGradientBoostingClassifier,),
                     {"__module__": "sklearn.ensemble._hist_gradient_boosting"})(max_iter=3).fit(
            *data(14, 2, 1.0, 2, False)
        ),
        HistGradientBoostingClassifier,  # not fitted
        lambda: make_estimator("random_forest", seed=0).fit(*data(15, 2, 1.0, 2, False)),
    ],
    ids=["three_classes", "poisson", "categorical", "same_name", "unfitted", "forest"],
)
def test_what_the_boosted_walk_does_not_know_is_left_to_the_model(make):
    assert boosted_rows(make()) is None


def test_a_served_boosted_model_walks_few_rows_and_leaves_many_to_its_own_method():
    from litemlops.serving.models import ServingModel
    from litemlops.serving.scoring import ROW_CELLS

    X, y = data(16, 3, 1.0, 2, grid=False)
    model = make_estimator("gradient_boosting", seed=0).fit(X, y)
    walk = verified_row_scorer(model, boosted_rows(model), verification_rows(3, [X]))
    assert walk is not None
    used: list[int] = []

    def few(rows):
        used.append(len(rows))
        return walk(rows)

    served = ServingModel("m/1", "m", 1, None, ("a", "b", "c"), None, "model",
                          model_scorer(model), few)  # fmt: skip
    small, large = X[:5], X[: ROW_CELLS // 3 + 1]

    np.testing.assert_allclose(served.score_list(small.tolist()), scores(model, small), rtol=RTOL)
    np.testing.assert_array_equal(served.score_list(large.tolist()), scores(model, large))
    assert used == [5]  # the large batch went through the model's own method
