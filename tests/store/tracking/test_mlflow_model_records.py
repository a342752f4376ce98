"""Models logged by MLflow's client: records, and their conversion into litemlops models."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from litemlops.errors import ModelNotFoundError, TamperedArtifactError, ValidationError
from litemlops.store.tracking.mlflow_models import MlflowModels
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.tracker import Tracker

MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.9
  sklearn:
    pickled_model: model.pkl
    serialization_format: {form}
    sklearn_version: 1.5.0
"""


@pytest.fixture
def tracker():
    with Tracker() as t:
        yield t


def logged(tracker: Tracker, tmp_path: Path, form: str = "cloudpickle", flavour: bool = True):
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    model = LogisticRegression().fit(x, [0, 1, 0, 1])
    models = MlflowModels(tracker)
    with tracker.start_run("e") as run:
        record = models.create(run.experiment_id, "model", run.id, tags={"k": "v"})
        folder = tmp_path / record.model_id
        folder.mkdir()
        text = MLMODEL.format(form=form)
        (folder / "MLmodel").write_text(text if flavour else text.split("  sklearn:")[0])
        (folder / "model.pkl").write_bytes(pickle.dumps(model))
        run.log_artifact(folder, record.folder)
    models.update(record.model_id, status="READY")
    return record.model_id, model, x


def test_a_logged_model_is_created_updated_and_found(tracker):
    models = MlflowModels(tracker)
    exp = tracker.create_experiment("e")
    made = models.create(exp.experiment_id, "clf", params={"C": "1"})
    assert made.status == "PENDING" and made.model_id.startswith("m-")
    models.update(made.model_id, status="READY", tags={"a": "1"}, params={"D": "2"})
    models.update(made.model_id, delete_tag="a")
    found = models.get(made.model_id)
    assert (found.status, found.tags, found.params) == ("READY", {}, {"C": "1", "D": "2"})
    assert [m.model_id for m in models.search([exp.experiment_id])] == [made.model_id]
    with pytest.raises(ValidationError, match=r"status is one of .* not 'DONE'"):
        models.update(made.model_id, status="DONE")
    with pytest.raises(ModelNotFoundError, match="no logged model with id 'm-nope'"):
        models.get("m-nope")


def test_a_sklearn_model_becomes_a_litemlops_model_served_with_its_sha256_checked(
    tracker, tmp_path
):
    model_id, model, x = logged(tracker, tmp_path)
    info = MlflowModels(tracker).record_as_litemlops_model(model_id)
    assert MlflowModels(tracker).record_as_litemlops_model(model_id) == info  # once
    assert info.environment["format"] == "mlflow-sklearn"
    registry = ModelRegistry(tracker)
    version = registry.register_model(info.uri, "m", allow_duplicate=True)
    assert version.sha256 == info.sha256
    assert np.array_equal(registry.load_model("m/1").predict(x), model.predict(x))
    tracker.artifacts.path(info.sha256).write_bytes(b"swapped")
    with pytest.raises(TamperedArtifactError, match="changed since it was stored"):
        registry.load_model("m/1")


@pytest.mark.parametrize(
    ("form", "flavour", "why"),
    [("skops", True, "saved as skops"), ("cloudpickle", False, "no sklearn flavour")],
)
def test_a_model_litemlops_cannot_serve_is_refused(tracker, tmp_path, form, flavour, why):
    model_id, _, _ = logged(tracker, tmp_path, form, flavour)
    with pytest.raises(ValidationError, match=why):
        MlflowModels(tracker).record_as_litemlops_model(model_id)


def test_a_model_not_ready_is_refused(tracker):
    with tracker.start_run("e") as run:
        made = MlflowModels(tracker).create(run.experiment_id, "model", run.id)
    with pytest.raises(ValidationError, match="PENDING"):
        MlflowModels(tracker).record_as_litemlops_model(made.model_id)


def test_descriptions_of_models_and_versions_are_set(tracker, tmp_path):
    model_id, _, _ = logged(tracker, tmp_path)
    info = MlflowModels(tracker).record_as_litemlops_model(model_id)
    registry = ModelRegistry(tracker)
    registry.register_model(info.uri, "m")
    registry.set_description("m", "ranks")
    registry.set_description("m", "first", version=1)
    assert registry.get_registered_model("m").description == "ranks"
    assert registry.get_model_version("m", 1).description == "first"
    with pytest.raises(ValidationError, match="at most 5000 characters"):
        registry.set_description("m", "x" * 5001)
