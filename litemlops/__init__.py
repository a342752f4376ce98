"""litemlops: the whole MLOps loop in one process.

Heavy libraries (duckdb, pandas, pyarrow) load when first used, so
`import litemlops` stays fast and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Entity",
    "FeatureStore",
    "FeatureView",
    "Field",
    "LitemlopsError",
    "__version__",
]

from litemlops.errors import LitemlopsError

if TYPE_CHECKING:
    from litemlops.store import Entity, FeatureStore, FeatureView, Field

_LAZY = {"Entity", "FeatureStore", "FeatureView", "Field"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import litemlops.store as store

        return getattr(store, name)
    raise AttributeError(f"module 'litemlops' has no attribute {name!r}")
