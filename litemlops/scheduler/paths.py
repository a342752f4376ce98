"""Where the files a pipeline's params name may be: the home, or directories config names.

A pipeline declares which of its params are file paths (`Pipeline(path_params=...)`).
Before a run is recorded, each such value is resolved (symlinks and `..` followed,
a relative path taken from the home) and refused unless it lies inside the home or
a directory of `[pipelines] allowed_dirs`; the run then gets the resolved path, so
a task reads and writes exactly what was checked. Anyone holding the admin token
can trigger a run over HTTP: without this, `labels=/etc/...` or
`output_dir=/tmp/...` would read or write anything the server's user can.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litemlops.errors import ValidationError


class PathNotAllowedError(ValidationError):
    """A path param points outside the home and the directories config allows."""

    def __init__(self, message: str, *, param: str, path: str):
        super().__init__(message)
        self.param = param
        self.path = path


@dataclass(frozen=True)
class PathRoots:
    """The directories path params may point into; relative paths start at `home`."""

    home: Path
    extra: tuple[Path, ...] = ()

    @classmethod
    def of(cls, home: Path, extra: Iterable[Path] = ()) -> PathRoots:
        return cls(Path(home).resolve(), tuple(Path(p).resolve() for p in extra))

    @property
    def roots(self) -> tuple[Path, ...]:
        return (self.home, *self.extra)

    def confine(self, param: str, value: object) -> str:
        """`value` resolved, if it lies inside a root; else PathNotAllowedError."""
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise PathNotAllowedError(
                f"param {param!r} must be a file path (text), got {value!r}",
                param=param,
                path=str(value),
            )
        resolved = (self.home / value).resolve()  # an absolute `value` replaces the home
        if not any(resolved.is_relative_to(root) for root in self.roots):
            shown = ", ".join(str(r) for r in self.roots)
            via = "" if str(resolved) == value else f" (resolves to {resolved})"
            raise PathNotAllowedError(
                f"param {param!r}: path {value!r}{via} is outside the allowed directories "
                f"[{shown}]; use a path inside them, or add its directory to "
                "[pipelines] allowed_dirs in config.toml",
                param=param,
                path=value,
            )
        return str(resolved)

    def confine_params(
        self, path_params: Iterable[str], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`params` with each of `path_params` (those present) confined and resolved."""
        confined = dict(params)
        for name in path_params:
            if confined.get(name) is not None:  # None names no file
                confined[name] = self.confine(name, confined[name])
        return confined
