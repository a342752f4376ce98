"""A model MLflow's client logs, registers and aliases is one litemlops serves too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402

# Given where the test is not about them: MLflow infers a model's requirements in a Python
# process of its own (about 3 s of CPU), as the first test's script lets it do.
REQUIREMENTS = ["scikit-learn"]


@pytest.fixture
def trained():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=80, n_features=4, random_state=1)
    return LogisticRegression(max_iter=300).fit(x, y), x


@pytest.mark.slow
def test_a_training_script_logs_registers_aliases_and_loads_by_alias(
    mlflow_client, mlflow_server, trained, tmp_path
):
    model, x = trained
    _, _, platform = mlflow_server
    mlflow.set_experiment("mlflow-models")
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on synthetic data\n")
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_param("max_iter", 300)
        for step in range(3):
            mlflow.log_metric("loss", 0.5 - step / 10, step=step)
        mlflow.set_tag("purpose", "test")
        mlflow.log_artifact(str(notes), artifact_path="docs")
        mlflow.log_dict({"classes": [0, 1]}, "meta/classes.json")
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=x[:2], serialization_format="cloudpickle"
        )
    version = mlflow.register_model(info.model_uri, "mlflow_ranker")
    assert version.version == "1"
    mlflow_client.set_registered_model_alias("mlflow_ranker", "champion", version.version)
    by_alias = mlflow_client.get_model_version_by_alias("mlflow_ranker", "champion")
    assert by_alias.version == "1" and by_alias.run_id == run.info.run_id

    loaded = mlflow.pyfunc.load_model("models:/mlflow_ranker@champion")
    assert np.array_equal(loaded.predict(x), model.predict(x))

    # Artifacts read back through MLflow and through litemlops.
    names = {a.path for a in mlflow_client.list_artifacts(run.info.run_id)}
    assert {"docs", "meta"} <= names
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="docs/notes.txt"
    )
    assert Path(local).read_text() == "trained on synthetic data\n"
    tracker = platform.tracker
    assert tracker.read_artifact(run.info.run_id, "docs/notes.txt") == notes.read_bytes()
    assert json.loads(tracker.read_artifact(run.info.run_id, "meta/classes.json")) == {
        "classes": [0, 1]
    }
    # The same version in litemlops' registry: its sha256 recorded, its alias history
    # with the reason, and litemlops' loader serving it (sha256 checked first).
    registered = platform.registry.get_model_version("mlflow_ranker", 1)
    assert registered.run_id == run.info.run_id and len(registered.sha256) == 64
    history = platform.registry.alias_history("mlflow_ranker", "champion")
    assert [(h.to_version, h.reason) for h in history] == [(1, "set through MLflow's API")]
    served = platform.registry.load_model("mlflow_ranker@champion")
    assert np.array_equal(served.predict(x), model.predict(x))

    runs = mlflow_client.search_runs(
        [run.info.experiment_id], filter_string="params.max_iter = '300'", order_by=["metrics.loss"]
    )
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    assert runs[0].data.metrics["loss"] == pytest.approx(0.3)


@pytest.mark.slow
def test_registered_models_and_versions_are_found_updated_and_aliases_deleted(
    mlflow_client, mlflow_server, trained
):
    model, _ = trained
    _, _, platform = mlflow_server
    mlflow.set_experiment("mlflow-registry")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="clf",
            registered_model_name="mlflow_reg",
            serialization_format="cloudpickle",
            pip_requirements=REQUIREMENTS,
        )
    mlflow_client.update_registered_model("mlflow_reg", description="ranks drivers")
    mlflow_client.update_model_version("mlflow_reg", "1", description="first")
    got = mlflow_client.get_registered_model("mlflow_reg")
    assert got.description == "ranks drivers"
    assert mlflow_client.get_model_version("mlflow_reg", "1").description == "first"
    assert [m.name for m in mlflow_client.search_registered_models("name LIKE 'mlflow_re%'")] == [
        "mlflow_reg"
    ]
    found = mlflow_client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert [(v.name, v.version) for v in found] == [("mlflow_reg", "1")]
    mlflow_client.set_registered_model_alias("mlflow_reg", "staging", "1")
    mlflow_client.delete_registered_model_alias("mlflow_reg", "staging")
    with pytest.raises(MlflowException) as gone:
        mlflow_client.get_model_version_by_alias("mlflow_reg", "staging")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    history = platform.registry.alias_history("mlflow_reg", "staging")
    assert [h.reason for h in history] == [
        "set through MLflow's API",
        "deleted through MLflow's API",
    ]
    with pytest.raises(MlflowException) as refused:
        mlflow_client.delete_registered_model("mlflow_reg")
    assert refused.value.error_code == "NOT_IMPLEMENTED"
    with pytest.raises(MlflowException) as exists:
        mlflow_client.create_registered_model("mlflow_reg")
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.slow
def test_a_model_is_registered_from_its_runs_uri_as_mlflow_2_scripts_do(
    mlflow_client, mlflow_server, trained
):
    model, x = trained
    _, _, platform = mlflow_server
    mlflow.set_experiment("mlflow-runs-uri")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle", pip_requirements=REQUIREMENTS
        )
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "mlflow_from_run")
    assert version.run_id == run.info.run_id and version.source.startswith("models:/m-")
    served = platform.registry.load_model("mlflow_from_run/1")
    assert np.array_equal(served.predict(x), model.predict(x))
    with pytest.raises(MlflowException, match="logged_model with artifact_path nothing-here"):
        mlflow.register_model(f"runs:/{run.info.run_id}/nothing-here", "mlflow_from_run")
