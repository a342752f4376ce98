"""Stores: `store.features` (the DuckDB feature store with its SQLite online store) and
`store.tracking` (tracking, the registry, artifacts), with the table files and the
SQLite plumbing they share.

This package's own names are the feature store's face (`from litemlops.store import
FeatureStore`), as before the two halves had packages of their own. Names load on
first use, so `from litemlops.store.tracking import Tracker` does not pull in DuckDB
and pyarrow. Importing this package never imports starlette or apscheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.store.features import (
        ApplyResult,
        Entity,
        FeatureStore,
        FeatureView,
        Field,
        IngestResult,
        MaterializeResult,
        OnlineFeatureStore,
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
    "OnlineFeatureStore",
    "OnlineResponse",
    "PushResult",
]

__getattr__ = lazy_names(__name__, dict.fromkeys(__all__, "litemlops.store.features"))
