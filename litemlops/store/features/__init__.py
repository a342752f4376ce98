"""The DuckDB feature store: definitions, offline store and point-in-time joins,
the SQLite online store, materialization and push.

Names load on first use, so importing this package pulls in neither DuckDB nor
pyarrow. It never imports the tracking half, starlette or apscheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.store.features.definitions import Entity, FeatureView, Field
    from litemlops.store.features.feature_store import FeatureStore
    from litemlops.store.features.online_features import OnlineFeatureStore
    from litemlops.store.features.results import (
        ApplyResult,
        IngestResult,
        MaterializeResult,
        OnlineResponse,
        PushResult,
    )

_LAZY = {
    "Entity": "litemlops.store.features.definitions",
    "FeatureView": "litemlops.store.features.definitions",
    "Field": "litemlops.store.features.definitions",
    "FeatureStore": "litemlops.store.features.feature_store",
    "OnlineFeatureStore": "litemlops.store.features.online_features",
    "ApplyResult": "litemlops.store.features.results",
    "IngestResult": "litemlops.store.features.results",
    "MaterializeResult": "litemlops.store.features.results",
    "OnlineResponse": "litemlops.store.features.results",
    "PushResult": "litemlops.store.features.results",
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

__getattr__ = lazy_names(__name__, _LAZY)
