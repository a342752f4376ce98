"""Scores of scikit-learn's decision trees and forests of them, computed with numpy.

A forest's `predict_proba` goes through joblib for each call, one task a tree: for
a request's few rows that costs milliseconds (7.7 ms for one row of the training
pipeline's 100 trees here), where walking the trees takes a fraction of one. Here
every tree's nodes are laid end to end in flat arrays, and all rows walk all
trees at once, one level a step, dropping each walk that has reached its leaf:
0.12 ms for that row, 1.1 ms for 100. The two are even at 1,000 rows (a request's
most by default, `server.max_items`); past that scikit-learn's compiled walk wins
(43 ms against 140 ms for 10,000 rows).

The arithmetic is scikit-learn's own: inputs read as float32, as its trees read
them; `value <= threshold` goes left; a leaf's stored value (a classifier's class
fractions, a regressor's mean); a forest adds its trees' values in their order,
then divides by their number. So the scores equal the model's bit for bit, and
`scoring.verified_scorer` still checks that before they are used. Inputs are
finite, as for every scorer here (a tree's route for a missing value is not
read).

A histogram gradient-boosting model (the training pipeline's `gradient_boosting`)
keeps its own method, compiled and on several threads, for many rows; for a
request's few rows (`scoring.ROW_CELLS`) its trees are walked the same way, reading
float64 as its predictor does, adding its baseline and then each tree's value in
order (`boosted_rows`, checked at load by `scoring.verified_row_scorer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: Rows walked at once: larger blocks spill the walk's arrays out of the CPU's caches.
BLOCK = 256

_TREES = (
    "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"
)
_FORESTS = (
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)
_BOOSTED = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")


def tree_scorer(estimator: Any) -> Forest | None:
    """`modeling.scores` of a fitted single-output tree or forest (scikit-learn's, of
    exactly these classes: a subclass may predict otherwise) as numpy operations;
    None for any other estimator."""
    if exactly(estimator, _TREES, "sklearn.tree"):
        trees = [estimator]
    elif exactly(estimator, _FORESTS, "sklearn.ensemble"):
        trees = list(getattr(estimator, "estimators_", None) or [])
        if not trees or not all(exactly(t, _TREES, "sklearn.tree") for t in trees):
            return None
    else:
        return None
    if getattr(estimator, "n_outputs_", None) != 1:
        return None  # unfitted, or several targets
    if type(estimator).__name__.endswith("Classifier"):
        # The last class's probability (`modeling.scores`), of as many as the model has.
        classes = int(estimator.n_classes_)  # one number: the model has one output
        return Forest.of([t.tree_ for t in trees], classes - 1, classes)
    return Forest.of([t.tree_ for t in trees], 0, 1)


def boosted_rows(estimator: Any) -> Boosted | None:
    """A request's few rows of a fitted binary `HistGradientBoostingClassifier`, or of
    a regressor whose predictions are its raw sums, on numeric inputs alone; else None.

    For few rows only: its own predictor is compiled and runs on several threads, so
    past about 100 rows it is the faster (4x at 1,000); below that it pays a fixed
    cost a call, about 1 ms against 0.2 ms for one row of the training pipeline's
    model, 1.2 ms against 1.1 ms for 85 rows (`ROW_CELLS` of its 3 inputs)."""
    return Boosted.of(estimator) if exactly(estimator, _BOOSTED, "sklearn.ensemble") else None


def exactly(model: Any, names: tuple[str, ...], module: str) -> bool:
    """`model` is of one of the classes `names` of scikit-learn's `module`, not of a
    subclass; `module` is imported only for a model whose class is defined in it (so a
    linear model leaves scikit-learn's trees unimported)."""
    import importlib

    kind = type(model)
    if kind.__name__ not in names or not kind.__module__.startswith(module + "."):
        return False
    return kind is getattr(importlib.import_module(module), kind.__name__)


class Forest:
    """Trees laid end to end: node i tests input `feature[i]` against `threshold[i]`
    and goes on to `child[2i]` (<=) or `child[2i + 1]`; a leaf is its own child.
    `value[i]` is the leaf's score; `roots[t]` is tree t's first node."""

    def __init__(
        self,
        feature: np.ndarray,
        threshold: np.ndarray,
        child: np.ndarray,
        value: np.ndarray,
        roots: np.ndarray,
    ):
        import numpy as np

        self.feature = feature
        self.threshold = threshold
        self.child = child
        self.value = value
        self.roots = roots
        self.inner = child[0::2] != np.arange(len(feature))

    @classmethod
    def of(cls, trees: list[Any], column: int, width: int) -> Forest | None:
        """From fitted `sklearn.tree._tree.Tree`s, scoring `value[:, 0, column]` of
        values `width` wide (None when a tree's are not)."""
        import numpy as np

        laid = []
        for tree in trees:
            value = np.asarray(tree.value)
            if value.ndim != 3 or value.shape[1:] != (1, width):
                return None
            left = np.asarray(tree.children_left)
            laid.append((left == -1, left, tree.children_right, tree.feature, tree.threshold,
                         value[:, 0, column]))  # fmt: skip
        return cls(*_end_to_end(laid))

    #: How scikit-learn reads the inputs of these trees.
    reads = "float32"

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        with np.errstate(over="ignore"):  # beyond float32's range: inf, as for the model
            X = np.asarray(X, dtype=self.reads)
        if len(X) <= BLOCK:
            return self._block(X)
        return np.concatenate([self._block(X[i : i + BLOCK]) for i in range(0, len(X), BLOCK)])

    def _block(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        # A running sum in the trees' order (a forest's own), then the mean.
        return np.cumsum(self._leaves(X), axis=0)[-1] / len(self.roots)

    def _leaves(self, X: np.ndarray) -> np.ndarray:
        """The value of the leaf each row reaches in each tree: trees x rows."""
        import numpy as np

        rows, width = X.shape
        cells = np.ascontiguousarray(X).ravel()
        trees = len(self.roots)
        node = np.repeat(self.roots, rows)  # tree by tree, each tree's rows in order
        start = np.tile(np.arange(rows, dtype=np.intp) * width, trees)
        walking = np.flatnonzero(self.inner[node])
        while walking.size:
            at = node[walking]
            right = cells[start[walking] + self.feature[at]] > self.threshold[at]
            at = self.child[2 * at + right]
            node[walking] = at
            walking = walking[self.inner[at]]
        return self.value[node].reshape(trees, rows)


class Boosted(Forest):
    """A histogram gradient-boosting model's trees: its baseline plus every tree's leaf
    value, added in the trees' order, then the logistic function for a classifier.
    Called with rows as sequences of numbers (`scoring.RowScorer`), a list back."""

    reads = "float64"

    def __init__(self, *laid: Any, baseline: float, logistic: bool):
        super().__init__(*laid)
        self.baseline = baseline
        self.logistic = logistic

    @classmethod
    def of(cls, model: Any) -> Boosted | None:  # type: ignore[override]
        import numpy as np

        link = type(getattr(getattr(model, "_loss", None), "link", None)).__name__
        predictors = getattr(model, "_predictors", None)
        baseline = np.ravel(getattr(model, "_baseline_prediction", []))
        if (
            not predictors  # not fitted
            or getattr(model, "_preprocessor", None) is not None  # categorical inputs
            # two classes (more have a softmax), or predictions that are the raw sums
            or link != ("LogitLink" if hasattr(model, "classes_") else "IdentityLink")
        ):
            return None
        laid = []
        for [predictor] in predictors:
            nodes = predictor.nodes
            laid.append((nodes["is_leaf"].astype(bool), nodes["left"], nodes["right"],
                         nodes["feature_idx"], nodes["num_threshold"], nodes["value"]))  # fmt: skip
        logistic = link == "LogitLink"
        return cls(*_end_to_end(laid), baseline=float(baseline[0]), logistic=logistic)

    def __call__(self, rows: Any) -> Any:
        return super().__call__(rows).tolist()

    def _block(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        from litemlops.serving.scoring import expit

        leaves = self._leaves(X)
        terms = np.vstack([np.full((1, leaves.shape[1]), self.baseline), leaves])
        raw = np.cumsum(terms, axis=0)[-1]  # raw_predictions += each tree's, in order
        return expit(raw) if self.logistic else raw


def _end_to_end(laid: list[tuple[Any, ...]]) -> tuple[np.ndarray, ...]:
    """`Forest`'s arrays from each tree's (leaf?, left, right, feature, threshold,
    value) per node, its children numbered within the tree."""
    import numpy as np

    features, thresholds, children, values, roots = [], [], [], [], []
    start = 0
    for leaf, left, right, feature, threshold, value in laid:
        here = np.arange(len(leaf)) + start
        roots.append(start)
        features.append(np.asarray(feature, dtype=np.intp))  # a leaf's is never read
        thresholds.append(np.asarray(threshold, dtype="float64"))
        pairs = [np.where(leaf, here, np.asarray(left, dtype=np.intp) + start),
                 np.where(leaf, here, np.asarray(right, dtype=np.intp) + start)]  # fmt: skip
        children.append(np.stack(pairs, axis=1).ravel())
        values.append(np.asarray(value, dtype="float64"))
        start += len(leaf)
    return (
        np.concatenate(features),
        np.concatenate(thresholds),
        np.concatenate(children),
        np.concatenate(values),
        np.asarray(roots, dtype=np.intp),
    )
