"""Stores: the DuckDB feature store with its SQLite online store, tracking, the registry.

Names load on first use, so `from litemlops.store.tracking import Tracker` does
not pull in DuckDB and pyarrow. Importing this package never imports starlette
or apscheduler.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litemlops.store.definitions import Entity, FeatureView, Field
    from litemlops.store.feature_store import FeatureStore
    from litemlops.store.online_features import OnlineFeatureStore
    from litemlops.store.results import (
        ApplyResult,
        IngestResult,
        MaterializeResult,
        OnlineResponse,
        PushResult,
    )

_LAZY = {
    "Entity": "litemlops.store.definitions",
    "FeatureView": "litemlops.store.definitions",
    "Field": "litemlops.store.definitions",
    "FeatureStore": "litemlops.store.feature_store",
    "OnlineFeatureStore": "litemlops.store.online_features",
    "ApplyResult": "litemlops.store.results",
    "IngestResult": "litemlops.store.results",
    "MaterializeResult": "litemlops.store.results",
    "OnlineResponse": "litemlops.store.results",
    "PushResult": "litemlops.store.results",
}

__all__ = [
    "ApplyResult",
    "Entity",
    "FeatureStore",
    "FeatureView",
    "Field",
    "IngestResult",
    "MaterializeResult",
    "OnlineFeatureStore",
    "OnlineResponse",
    "PushResult",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litemlops.store' has no attribute {name!r}")
    return getattr(import_module(module), name)
