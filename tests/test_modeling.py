import numpy as np
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from litemlops.errors import ValidationError
from litemlops.modeling import ESTIMATORS, evaluate, gate, make_estimator, scores


def test_every_estimator_builds_fits_and_scores():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    for name, spec in ESTIMATORS.items():
        model = make_estimator(name, seed=1).fit(X, y)
        s = scores(model, X)
        assert s.shape == (200,), name
        if spec.kind == "classifier":
            assert ((s >= 0) & (s <= 1)).all(), name


def test_hyperparams_override_defaults_and_the_seed_is_applied():
    model = make_estimator("elasticnet")
    assert (model.alpha, model.l1_ratio) == (0.5, 0.1)  # the course's model
    assert make_estimator("elasticnet", '{"alpha": 0.1}').alpha == 0.1
    assert make_estimator("random_forest", {}, seed=7).random_state == 7
    assert make_estimator("random_forest", {"random_state": 3}, seed=7).random_state == 3


@pytest.mark.parametrize(
    ("name", "hyper", "message"),
    [
        ("svm", None, "unknown estimator 'svm'; choose one of"),
        ("elasticnet", "[1]", "hyperparams must be a JSON object"),
        ("elasticnet", "{nope", "hyperparams must be a JSON object"),
        ("elasticnet", {"nope": 1}, "estimator 'elasticnet': Invalid parameter 'nope'"),
    ],
)
def test_bad_estimators_and_hyperparams_are_clear_errors(name, hyper, message):
    with pytest.raises(ValidationError, match=message):
        make_estimator(name, hyper)


def test_metrics_match_scikit_learn():
    y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.8, 0.6, 0.4, 0.9, 0.3, 0.2, 0.7])
    out = evaluate(y, s)
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, s))
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((y - s) ** 2)))
    assert out["mae"] == pytest.approx(np.mean(np.abs(y - s)))
    assert out["accuracy"] == pytest.approx(np.mean((s >= 0.5) == y))
    # A regressor's scores leave [0, 1]: no log-loss or accuracy, the rest still holds.
    assert set(evaluate(y, s * 3 - 1)) == {"rmse", "mae", "auc"}
    # One class only: no AUC, not a crash.
    assert "auc" not in evaluate([1, 1], [0.2, 0.9])
    with pytest.raises(ValidationError, match="empty test set"):
        evaluate([], [])
    with pytest.raises(ValidationError, match="NaN or infinite"):
        evaluate([0, 1], [0.5, float("nan")])


def test_the_gate_checks_thresholds_and_the_champion():
    good = {"auc": 0.8, "rmse": 0.4}
    assert gate(good, min_auc=0.7, max_rmse=0.5).passed
    result = gate({"auc": 0.6, "rmse": 0.6}, min_auc=0.7, max_rmse=0.5)
    assert result.reasons == [
        "auc 0.6000 is below min_auc 0.7",
        "rmse 0.6000 is above max_rmse 0.5",
    ]
    assert gate(good, champion={"auc": 0.8}).passed  # as good is not worse
    lost = gate(good, champion={"auc": 0.85})
    assert lost.reasons == [
        "auc 0.8000 is worse than the champion's 0.8500 on the same test set (tolerance 0.0)"
    ]
    assert gate(good, champion={"auc": 0.85}, tolerance=0.06).passed
    # Lower is better for errors.
    assert not gate(good, champion={"rmse": 0.3}, metric="rmse").passed
    assert gate(good, champion={"rmse": 0.5}, metric="rmse").passed
    assert gate({"rmse": 0.4}, min_auc=0.5).reasons == ["auc not computable is below min_auc 0.5"]
    with pytest.raises(ValidationError, match="gate metric"):
        gate(good, metric="f1")


def test_a_regressor_is_gated_on_r2_and_rmse_never_on_auc():
    from litemlops.modeling import KIND_METRIC

    fit = {"rmse": 0.3, "mae": 0.2, "r2": 0.4}
    assert KIND_METRIC == {"classifier": "auc", "regressor": "rmse"}
    assert gate(fit, kind="regressor", min_auc=0.55, max_rmse=0.5, min_r2=0.0).passed
    assert gate(fit, kind="regressor", min_r2=0.5).reasons == ["r2 0.4000 is below min_r2 0.5"]
    assert gate({"rmse": 0.3}, kind="regressor", min_r2=0.0).reasons == [
        "r2 not computable is below min_r2 0.0"
    ]
    # "auto" compares a regressor on RMSE, where lower wins.
    assert gate(fit, kind="regressor", champion={"rmse": 0.35, "auc": 0.9}).passed
    assert gate(fit, kind="regressor", champion={"rmse": 0.25}).reasons == [
        "rmse 0.3000 is worse than the champion's 0.2500 on the same test set (tolerance 0.0)"
    ]
    assert not gate(fit, kind="regressor", champion={"r2": 0.5}, metric="r2").passed
    # A classifier is still held to AUC, not R².
    assert gate({"auc": 0.7, "rmse": 0.4}, min_r2=0.9).passed
    with pytest.raises(ValidationError, match="estimator kind must be one of"):
        gate(fit, kind="ranker")


def test_regressor_metrics_add_r2_and_skip_what_needs_0_1_labels():
    y = np.array([0.1, 0.4, 0.35, 0.8, 0.55])
    s = np.array([0.15, 0.3, 0.4, 0.7, 0.5])
    out = evaluate(y, s, "regressor")
    assert set(out) == {"rmse", "mae", "r2"}
    assert out["r2"] == pytest.approx(skm.r2_score(y, s))
    assert "r2" not in evaluate([0.5, 0.5], [0.4, 0.6], "regressor")  # labels do not vary
    binary = evaluate([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.1], "regressor")
    assert {"auc", "r2"} <= set(binary)
    assert "r2" not in evaluate([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.1])


@settings(max_examples=examples(200), deadline=None)
@given(
    metric=st.sampled_from(["auc", "accuracy", "log_loss", "rmse", "mae", "r2"]),
    mine=st.floats(-5, 5),
    theirs=st.floats(-5, 5),
    tolerance=st.floats(0, 2),
    kind=st.sampled_from(["classifier", "regressor"]),
)
def test_the_champion_comparison_follows_each_metrics_direction(
    metric, mine, theirs, tolerance, kind
):
    from litemlops.modeling import HIGHER_IS_BETTER

    result = gate({metric: mine}, kind=kind, champion={metric: theirs}, metric=metric,
                  tolerance=tolerance)
    # Brute force: the candidate passes when its value, moved in the metric's good
    # direction by the tolerance, reaches the champion's.
    better = mine + tolerance >= theirs if HIGHER_IS_BETTER[metric] else (
        mine - tolerance <= theirs
    )
    assert result.passed == better or abs((mine - theirs) ** 2 - tolerance**2) < 1e-9
