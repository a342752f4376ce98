"""Stores: the DuckDB feature store with its SQLite online store.

Importing this package must not import starlette or apscheduler.
"""

from litemlops.store.definitions import Entity, FeatureView, Field
from litemlops.store.feature_store import FeatureStore
from litemlops.store.results import (
    ApplyResult,
    IngestResult,
    MaterializeResult,
    OnlineResponse,
    PushResult,
)

__all__ = [
    "ApplyResult",
    "Entity",
    "FeatureStore",
    "FeatureView",
    "Field",
    "IngestResult",
    "MaterializeResult",
    "OnlineResponse",
    "PushResult",
]
