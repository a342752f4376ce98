"""The library's serving layer: a `Service` that looks features up, scores, chooses and
logs `prediction_served`; the models it serves, kept loaded; their feature lineage;
deployments that route between versions (canary, shadow, A/B, bandit).

`ModelURI` lives with the registry that resolves it (`litemlops.store.tracking`)
and is re-exported here.

HTTP (`litemlops.server`), the CLI and batch pipelines call it; nothing here
imports starlette.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.serving.deployment_spec import DeploymentSpec
    from litemlops.serving.deployments import Deployments
    from litemlops.serving.lineage import feature_refs, log_feature_refs
    from litemlops.serving.models import ModelCache, ServingModel
    from litemlops.serving.service import (
        Choice,
        Predictions,
        Service,
        ServiceSpec,
        score_frame,
    )
    from litemlops.store.tracking.model_uri import ModelURI

_LAZY = {
    "Deployments": "litemlops.serving.deployments",
    "DeploymentSpec": "litemlops.serving.deployment_spec",
    "ModelURI": "litemlops.store.tracking.model_uri",
    "Service": "litemlops.serving.service",
    "ServiceSpec": "litemlops.serving.service",
    "Choice": "litemlops.serving.service",
    "Predictions": "litemlops.serving.service",
    "score_frame": "litemlops.serving.service",
    "ModelCache": "litemlops.serving.models",
    "ServingModel": "litemlops.serving.models",
    "feature_refs": "litemlops.serving.lineage",
    "log_feature_refs": "litemlops.serving.lineage",
}

__all__ = [
    "Choice",
    "DeploymentSpec",
    "Deployments",
    "ModelCache",
    "ModelURI",
    "Predictions",
    "Service",
    "ServiceSpec",
    "ServingModel",
    "feature_refs",
    "log_feature_refs",
    "score_frame",
]

__getattr__ = lazy_names(__name__, _LAZY)
