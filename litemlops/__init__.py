"""litemlops: the whole MLOps loop in one process.

Heavy libraries (duckdb, pandas, pyarrow, scikit-learn) load when first used,
so `import litemlops` stays fast and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "Config",
    "Entity",
    "EventTrigger",
    "FeatureStore",
    "FeatureView",
    "Field",
    "LitemlopsError",
    "ModelRegistry",
    "ModelURI",
    "Pipeline",
    "Platform",
    "Schedule",
    "Signature",
    "TaskContext",
    "Tracker",
    "__version__",
    "fit_and_log",
    "infer_signature",
    "task",
]

from litemlops.errors import LitemlopsError
from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.config import Config
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import Pipeline, TaskContext, task
    from litemlops.scheduler.scheduler import EventTrigger, Schedule
    from litemlops.store import Entity, FeatureStore, FeatureView, Field
    from litemlops.store.tracking.autolog import fit_and_log
    from litemlops.store.tracking.model_uri import ModelURI
    from litemlops.store.tracking.registry import ModelRegistry
    from litemlops.store.tracking.signature import Signature, infer_signature
    from litemlops.store.tracking.tracker import Tracker

_LAZY = {
    "Config": "litemlops.config",
    "Platform": "litemlops.platform",
    "Entity": "litemlops.store",
    "FeatureStore": "litemlops.store",
    "FeatureView": "litemlops.store",
    "Field": "litemlops.store",
    "Tracker": "litemlops.store.tracking.tracker",
    "ModelRegistry": "litemlops.store.tracking.registry",
    "ModelURI": "litemlops.store.tracking.model_uri",
    "Signature": "litemlops.store.tracking.signature",
    "infer_signature": "litemlops.store.tracking.signature",
    "fit_and_log": "litemlops.store.tracking.autolog",
    "Pipeline": "litemlops.scheduler.pipeline",
    "TaskContext": "litemlops.scheduler.pipeline",
    "task": "litemlops.scheduler.pipeline",
    "Schedule": "litemlops.scheduler.scheduler",
    "EventTrigger": "litemlops.scheduler.scheduler",
}


__getattr__ = lazy_names(__name__, _LAZY)
