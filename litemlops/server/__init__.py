"""The HTTP server: online predictions, push, feedback, metrics and the admin API.

Importing `litemlops.store` never imports this package (Starlette stays unloaded
for library users who only want the stores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litemlops.server.app import Service, create_app

__all__ = ["Service", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from litemlops.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'litemlops.server' has no attribute {name!r}")
