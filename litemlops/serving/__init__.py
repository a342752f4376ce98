"""The library's serving layer: scoring, and the model URIs it serves by.

`ModelURI` lives with the registry that resolves it (`litemlops.store.tracking`)
and is re-exported here.

HTTP (`litemlops.server`), the CLI and batch pipelines call it; nothing here
imports starlette.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.store.tracking.model_uri import ModelURI

_LAZY = {
    "ModelURI": "litemlops.store.tracking.model_uri",
}

__all__ = [
    "ModelURI",
]

__getattr__ = lazy_names(__name__, _LAZY)
