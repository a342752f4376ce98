"""Experiment tracking and the model registry on SQLite: runs, search, the
content-addressed artifact store, model I/O and signatures.

Names load on first use. This package never imports the feature-store half,
starlette or apscheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.store.tracking.artifacts import ArtifactStore
    from litemlops.store.tracking.autolog import fit_and_log
    from litemlops.store.tracking.model_uri import ModelURI
    from litemlops.store.tracking.registry import ModelRegistry, ModelVersion, RegisteredModel
    from litemlops.store.tracking.run import Run
    from litemlops.store.tracking.signature import Signature, infer_signature
    from litemlops.store.tracking.tracker import Tracker

_LAZY = {
    "ArtifactStore": "litemlops.store.tracking.artifacts",
    "fit_and_log": "litemlops.store.tracking.autolog",
    "ModelRegistry": "litemlops.store.tracking.registry",
    "ModelURI": "litemlops.store.tracking.model_uri",
    "ModelVersion": "litemlops.store.tracking.registry",
    "RegisteredModel": "litemlops.store.tracking.registry",
    "Run": "litemlops.store.tracking.run",
    "Signature": "litemlops.store.tracking.signature",
    "infer_signature": "litemlops.store.tracking.signature",
    "Tracker": "litemlops.store.tracking.tracker",
}

__all__ = [
    "ArtifactStore",
    "ModelRegistry",
    "ModelURI",
    "ModelVersion",
    "RegisteredModel",
    "Run",
    "Signature",
    "Tracker",
    "fit_and_log",
    "infer_signature",
]

__getattr__ = lazy_names(__name__, _LAZY)
