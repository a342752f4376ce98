"""The small served world of `tests/serving` (see its conftest.py for the fixture): its
constants and `World`, in a module of their own so test files import them by a name
no other test directory uses (`conftest` is one module name for every directory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from litemlops.serving.lineage import log_feature_refs
from litemlops.serving.service import Service
from litemlops.store import Entity, FeatureStore, FeatureView, Field
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.signature import infer_signature
from litemlops.store.tracking.tracker import Tracker

NOW = datetime(2026, 1, 2, tzinfo=UTC)
MODEL = "driver_ranker"
REFS = ["driver_stats:conv_rate", "driver_stats:acc_rate"]
#: Each driver's current features: conv_rate, acc_rate.
DRIVERS = {1001: (0.9, 0.8), 1002: (0.1, 0.2), 1003: (0.5, 0.5)}

DRIVER = Entity("driver", join_keys=["driver_id"])
VIEW = FeatureView(
    "driver_stats",
    entities=[DRIVER],
    schema=[Field("conv_rate", "float64"), Field("acc_rate", "float64")],
    ttl=timedelta(days=1),
    timestamp_field="datetime",
)


@dataclass
class World:
    store: FeatureStore
    tracker: Tracker
    registry: ModelRegistry
    service: Service
    captured: list[dict[str, Any]] = field(default_factory=list)

    def train(self, refs: list[str] = REFS, *, structured: bool = True) -> int:
        """Register a model trained on `refs`' columns as the next version, champion.

        structured: record the references as training does now; else only as the
        comma-joined `features` param older training runs logged.
        """
        rng = np.random.default_rng(len(self.registry.list_registered_models()))
        columns = [r.split(":", 1)[1] for r in refs]
        X = pd.DataFrame(rng.random((200, len(columns))), columns=columns)
        y = (X[columns[0]] > 0.5).astype(int)
        with self.tracker.start_run(MODEL) as run:
            run.log_params({"features": ",".join(refs)})
            if structured:
                log_feature_refs(run, refs)
            run.log_model(LogisticRegression().fit(X, y), "model", signature=infer_signature(X))
        version = self.registry.register_model(
            f"runs:/{run.id}/model", MODEL, allow_duplicate=True
        )
        self.registry.set_alias(MODEL, "champion", version.version)
        self.service.models.refresh()
        return version.version

    def register(self, model: Any, *, refs: list[str] = REFS) -> int:
        """Register `model` (fitted on `refs`' columns) as the next version, no alias."""
        columns = [r.split(":", 1)[1] for r in refs]
        X = pd.DataFrame(np.random.default_rng(7).random((20, len(columns))), columns=columns)
        with self.tracker.start_run(MODEL) as run:
            log_feature_refs(run, refs)
            run.log_model(model, "model", signature=infer_signature(X))
        version = self.registry.register_model(
            f"runs:/{run.id}/model", MODEL, allow_duplicate=True
        )
        return version.version

    def champion_model(self) -> Any:
        """The fitted estimator the champion serves."""
        return self.registry.load_model(f"{MODEL}@champion").model

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.captured if e["event"] == name]

    def served(self) -> list[dict[str, Any]]:
        """The `prediction_served` events logged so far."""
        return [e for e in self.captured if e["event"] == "prediction_served"]
