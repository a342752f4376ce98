"""Values MLflow's client writes read back equal, through MLflow and through litemlops."""

from __future__ import annotations

import math

import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402

# Keys as both MLflow and litemlops take them: letters and digits of any script, _-. /
KEY_CHARS = st.characters(categories=["L", "Nd"]) | st.sampled_from("_-. /")
keys = st.text(KEY_CHARS, min_size=1, max_size=40).filter(
    lambda k: k.strip() and ".." not in k and not k.startswith("/") and k == k.strip()
)
# Values: any text MLflow keeps (no NUL), quotes, long ones within MLflow's limits.
values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=300)
long_values = st.text(st.sampled_from("'\"é✓ab"), min_size=5000, max_size=6000)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)

SETTINGS = settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(
    params=st.dictionaries(keys, values | long_values, max_size=5),
    tags=st.dictionaries(keys, values, max_size=5),
    metrics=st.lists(st.tuples(keys, finite, st.integers(-(2**40), 2**40)), max_size=8),
)
def test_params_tags_and_metrics_round_trip(mlflow_client, mlflow_server, params, tags, metrics):
    from mlflow.entities import Metric, Param, RunTag

    _, _, platform = mlflow_server
    tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    run = mlflow_client.create_run("0")
    run_id = run.info.run_id
    points = [Metric(k, v, 1_700_000_000_000 + i, s) for i, (k, v, s) in enumerate(metrics)]
    mlflow_client.log_batch(
        run_id,
        metrics=points,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    got = mlflow_client.get_run(run_id)
    assert got.data.params == params
    assert {k: got.data.tags[k] for k in tags} == tags
    for key in {k for k, _, _ in metrics}:
        sent = sorted((p.step, p.timestamp, p.value) for p in points if p.key == key)
        history = mlflow_client.get_metric_history(run_id, key)
        assert sorted((m.step, m.timestamp, m.value) for m in history) == sent
        assert got.data.metrics[key] == max(sent)[2]  # the latest step, then time
    stored = platform.tracker.get_run(run_id)
    assert stored.params == params and stored.metrics == got.data.metrics


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_metric_is_refused_and_nothing_is_stored(
    mlflow_client, mlflow_server, value
):
    _, _, platform = mlflow_server
    run = mlflow_client.create_run("0")
    with pytest.raises(MlflowException) as refused:
        mlflow_client.log_metric(run.info.run_id, "loss", value)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert platform.tracker.metric_history(run.info.run_id, "loss") == []


@pytest.mark.slow
def test_sklearn_autolog_logs_params_metrics_and_tags(mlflow_client, mlflow_server):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    _, _, platform = mlflow_server
    mlflow.set_experiment("mlflow-autolog")
    mlflow.sklearn.autolog()  # defaults: datasets too, and the model where it can
    try:
        x, y = make_classification(n_samples=60, n_features=4, random_state=0)
        with mlflow.start_run() as run:
            model = LogisticRegression(C=0.5, max_iter=200).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = mlflow_client.get_run(run.info.run_id)
    assert got.data.params["C"] == "0.5" and got.data.params["max_iter"] == "200"
    assert 0.5 <= got.data.metrics["training_accuracy_score"] <= 1.0
    assert got.data.tags["estimator_name"] == "LogisticRegression"
    stored = platform.tracker.get_run(run.info.run_id)
    assert stored.experiment == "mlflow-autolog" and stored.params["C"] == "0.5"
    # The model autolog logged registers, and litemlops serves it.
    (logged,) = mlflow_client.search_logged_models([run.info.experiment_id])
    assert logged.source_run_id == run.info.run_id
    mlflow.register_model(f"models:/{logged.model_id}", "mlflow_autologged")
    served = platform.registry.load_model("mlflow_autologged/1")
    assert (served.predict(x) == model.predict(x)).all()
