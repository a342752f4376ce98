"""The demo's config sections: `[demo]` (its data), `[training]` (the `training`
pipeline's defaults) and `[schedules]` (when its pipelines run), with their checks.

They are read like the platform's own sections (config.toml, environment variables
such as `LITEMLOPS_DEMO_DRIVERS`, overrides such as `{"demo.drivers": 5}`) when the
home runs the demo application; `config.section("demo")` returns the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litemlops.config_parse import (
    Check,
    fraction,
    json_object,
    non_negative,
    one_of,
    positive,
    unit,
)
from litemlops.modeling import ESTIMATORS, GATE_METRICS

#: The model the demo trains and `/inference` serves.
MODEL_NAME = "driver_ranker"

#: The demo's defaults for the platform's `[server]`: the service `/inference` runs.
SERVER_DEFAULTS = {
    "model": f"{MODEL_NAME}@champion",
    "entity": "driver_id",
    "features": "driver_stats:conv_rate,driver_stats:acc_rate,driver_stats:avg_daily_trips",
}
PLATFORM_DEFAULTS = {"server": SERVER_DEFAULTS}


@dataclass(frozen=True)
class DemoConfig:
    """Size and seed of the demo data the ride-hailing demo generates."""

    drivers: int = 20
    hours: int = 24 * 14
    labels: int = 2000
    seed: int = 42


@dataclass(frozen=True)
class TrainingConfig:
    """The `training` pipeline's defaults (each is also a run param: `--param key=value`).

    estimator: one of `litemlops.modeling.ESTIMATORS` (a classifier by default;
    "elasticnet" is the course's ElasticNet(alpha=0.5, l1_ratio=0.1)).
    hyperparams: a JSON object of estimator parameters over the estimator's defaults.
    gate_metric: the test-set metric a new model must not be worse on than the
    champion, by more than `tolerance`; "auto" follows the estimator's kind: "auc" for
    a classifier, "rmse" for a regressor (or one of `litemlops.modeling.HIGHER_IS_BETTER`).
    Absolute thresholds, by kind: min_auc for a classifier, min_r2 for a regressor (0:
    no worse than always predicting the mean), max_rmse for both.
    promote: "challenger" (a new version waits for a person to promote it when a
    champion exists) or "auto" (a version that passes the gate becomes champion).
    served_labels: also train on the served predictions that `/feedback` labelled, with
    the feature values they were served with (the event log's), so a retrain started
    by drift learns from the drifted traffic.
    """

    model_name: str = MODEL_NAME
    estimator: str = "logistic_regression"
    hyperparams: str = "{}"
    test_size: float = 0.2
    seed: int = 42
    gate_metric: str = "auto"
    min_auc: float = 0.55
    max_rmse: float = 0.5
    min_r2: float = 0.0
    tolerance: float = 0.0
    promote: str = "challenger"
    served_labels: bool = True


@dataclass(frozen=True)
class SchedulesConfig:
    """When the demo pipelines run once the scheduler starts: a 5-field cron line (UTC),
    or "" for never (they still run on demand)."""

    data: str = "*/10 * * * *"
    training: str = "0 3 * * *"
    batch_predictions: str = "0 * * * *"


SECTIONS: dict[str, type] = {
    "demo": DemoConfig,
    "training": TrainingConfig,
    "schedules": SchedulesConfig,
}


def _at_most_one(value: Any) -> str | None:
    return None if value <= 1 else "a number <= 1"


CHECKS: dict[tuple[str, str], Check] = {
    ("demo", "drivers"): positive,
    ("demo", "hours"): positive,
    ("demo", "labels"): positive,
    ("demo", "seed"): non_negative,
    ("training", "test_size"): fraction,
    ("training", "seed"): non_negative,
    ("training", "tolerance"): non_negative,
    ("training", "promote"): one_of("challenger", "auto"),
    ("training", "gate_metric"): one_of(*GATE_METRICS),
    ("training", "estimator"): one_of(*ESTIMATORS),
    ("training", "max_rmse"): non_negative,
    ("training", "min_auc"): unit,
    ("training", "min_r2"): _at_most_one,
    ("training", "hyperparams"): json_object,
}
