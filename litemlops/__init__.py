"""litemlops: the whole MLOps loop in one process.

Heavy libraries (duckdb, pandas, pyarrow, scikit-learn) load when first used,
so `import litemlops` stays fast and has no side effects.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from litemlops.config import Config
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import Pipeline, TaskContext, task
    from litemlops.scheduler.scheduler import EventTrigger, Schedule
    from litemlops.store import Entity, FeatureStore, FeatureView, Field
    from litemlops.store.autolog import fit_and_log
    from litemlops.store.model_uri import ModelURI
    from litemlops.store.registry import ModelRegistry
    from litemlops.store.signature import Signature, infer_signature
    from litemlops.store.tracking import Tracker

_LAZY = {
    "Config": "litemlops.config",
    "Platform": "litemlops.platform",
    "Entity": "litemlops.store",
    "FeatureStore": "litemlops.store",
    "FeatureView": "litemlops.store",
    "Field": "litemlops.store",
    "Tracker": "litemlops.store.tracking",
    "ModelRegistry": "litemlops.store.registry",
    "ModelURI": "litemlops.store.model_uri",
    "Signature": "litemlops.store.signature",
    "infer_signature": "litemlops.store.signature",
    "fit_and_log": "litemlops.store.autolog",
    "Pipeline": "litemlops.scheduler.pipeline",
    "TaskContext": "litemlops.scheduler.pipeline",
    "task": "litemlops.scheduler.pipeline",
    "Schedule": "litemlops.scheduler.scheduler",
    "EventTrigger": "litemlops.scheduler.scheduler",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litemlops' has no attribute {name!r}")
    return getattr(import_module(module), name)
