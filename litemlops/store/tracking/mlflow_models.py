"""Models MLflow's client logs (MLflow 3's LoggedModel), and how one becomes a
litemlops model version.

MLflow's `log_model` makes a record (this module's table), uploads the model's
folder (MLmodel, the pickled model, its requirements) as artifacts of the run that
logs it, under `models/<model id>/`, then marks the record READY.

Registering such a model (`record_as_litemlops_model`) is where the two worlds
meet, and the design choice is to convert rather than to teach litemlops' loader
MLflow's flavours: for the sklearn flavour, the pickled model file named in MLmodel
is recorded as the run's litemlops model, bytes unchanged, so its sha256 is stored
at registration and checked before every load like any litemlops model, and
litemlops serves it with its own loader (the file is a pickle, which joblib reads).
The MLflow files stay where they are, so MLflow's `pyfunc.load_model` loads the
same version too. Other flavours are refused at registration: litemlops could not
serve them, and a registry entry it cannot load would be a lie.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litemlops.errors import ModelNotFoundError, ValidationError
from litemlops.store.tracking.tracking_types import ModelInfo, check_key

if TYPE_CHECKING:
    from litemlops.store.tracking.tracker import Tracker

STATUSES = ("PENDING", "READY", "FAILED")
_PICKLED = re.compile(r"^\s+pickled_model:\s*['\"]?([^'\"\s]+)", re.MULTILINE)
_FORMAT = re.compile(r"^\s+serialization_format:\s*['\"]?(\w+)", re.MULTILINE)
_PYTHON = re.compile(r"^\s+python_version:\s*['\"]?([\d.]+)", re.MULTILINE)
_SKLEARN = re.compile(r"^\s+sklearn_version:\s*['\"]?([\w.+]+)", re.MULTILINE)


@dataclass(frozen=True)
class MlflowModel:
    model_id: str
    experiment_id: int
    run_id: str | None
    name: str
    status: str
    model_type: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    lifecycle_stage: str = "active"

    @property
    def folder(self) -> str:
        """Where its files are among its run's artifacts."""
        return f"models/{self.model_id}"


class MlflowModels:
    """The MLflow logged models of a tracker's database."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self.db = tracker.db

    def create(
        self,
        experiment_id: int,
        name: str,
        run_id: str | None = None,
        model_type: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> MlflowModel:
        check_key(name, "model")
        if run_id is not None:
            self.tracker.get_run(run_id)
        model_id = f"m-{uuid.uuid4().hex}"
        now = self.tracker.now_ms()
        with self.db.write() as con:
            con.execute(
                "INSERT INTO mlflow_models (model_id, experiment_id, run_id, name, status, "
                "model_type, tags, params, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?, ?, ?)",
                [
                    model_id, experiment_id, run_id, name, model_type,
                    json.dumps(dict(tags or {})), json.dumps(dict(params or {})), now, now,
                ],
            )  # fmt: skip
        return self.get(model_id)

    def get(self, model_id: str) -> MlflowModel:
        rows = self.db.read("SELECT * FROM mlflow_models WHERE model_id = ?", [model_id])
        if not rows:
            raise ModelNotFoundError(f"no logged model with id {model_id!r}")
        r = rows[0]
        return MlflowModel(
            r["model_id"], r["experiment_id"], r["run_id"], r["name"], r["status"],
            r["model_type"], r["created_at"], r["updated_at"], json.loads(r["tags"]),
            json.loads(r["params"]), r["lifecycle_stage"],
        )  # fmt: skip

    def search(self, experiment_ids: list[int], limit: int = 1000) -> list[MlflowModel]:
        marks = ", ".join("?" * len(experiment_ids))
        rows = self.db.read(
            f"SELECT model_id FROM mlflow_models WHERE experiment_id IN ({marks}) "
            "AND lifecycle_stage = 'active' ORDER BY created_at DESC, model_id LIMIT ?",
            [*experiment_ids, limit],
        )
        return [self.get(r["model_id"]) for r in rows]

    def update(
        self,
        model_id: str,
        *,
        status: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        delete_tag: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> MlflowModel:
        found = self.get(model_id)
        if status is not None and status not in STATUSES:
            raise ValidationError(f"a logged model's status is one of {STATUSES}, not {status!r}")
        new_tags = {**found.tags, **(tags or {})}
        if delete_tag is not None:
            new_tags.pop(delete_tag, None)
        for key in new_tags:
            check_key(key, "tag")
        with self.db.write() as con:
            con.execute(
                "UPDATE mlflow_models SET status = ?, tags = ?, params = ?, lifecycle_stage = ?, "
                "updated_at = ? WHERE model_id = ?",
                [
                    status or found.status, json.dumps(new_tags),
                    json.dumps({**found.params, **(params or {})}),
                    lifecycle_stage or found.lifecycle_stage, self.tracker.now_ms(), model_id,
                ],
            )  # fmt: skip
        return self.get(model_id)

    def record_as_litemlops_model(self, model_id: str) -> ModelInfo:
        """The litemlops model of a READY sklearn-flavoured logged model, recorded on its
        run (once) from the pickled model file its MLmodel names."""
        from litemlops.store.tracking.run import Run

        model = self.get(model_id)
        if model.run_id is None:
            raise ValidationError(f"model {model_id} has no source run; log it inside a run")
        if model.status != "READY":
            raise ValidationError(f"model {model_id} is {model.status}; wait until it is READY")
        existing = self.tracker.logged_models(model.run_id)
        for info in existing:
            if info.name == model_id:
                return info
        mlmodel = self.tracker.read_artifact(model.run_id, f"{model.folder}/MLmodel").decode()
        pickled = _PICKLED.search(mlmodel)
        if "\n  sklearn:" not in mlmodel or pickled is None:
            raise ValidationError(
                f"model {model_id} has no sklearn flavour with a pickled model; litemlops "
                "registers and serves scikit-learn models (log it with mlflow.sklearn.log_model)"
            )
        form = _FORMAT.search(mlmodel)
        if form is not None and form.group(1) not in ("pickle", "cloudpickle"):
            raise ValidationError(
                f"model {model_id} is saved as {form.group(1)}; litemlops loads pickle and "
                "cloudpickle files: log it with serialization_format='cloudpickle'"
            )
        data = self.tracker.read_artifact(model.run_id, f"{model.folder}/{pickled.group(1)}")
        env = {"format": "mlflow-sklearn", "mlflow_model_id": model_id}
        for key, pattern in (("python", _PYTHON), ("scikit-learn", _SKLEARN)):
            found = pattern.search(mlmodel)
            if found is not None:
                env[key] = found.group(1)
        run = self.tracker.get_run(model.run_id)
        writer = Run(self.tracker, run.run_id, run.experiment_id, run.name)
        return writer.log_model_bytes(data, model_id, None, env)

