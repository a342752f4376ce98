"""Applications: what a home runs on the platform besides the platform's own parts.

An application brings config sections of its own (validated by it), pipelines, a
set-up for a fresh home, modules worth preloading in worker processes and CLI
commands. The platform never imports one by name: `Config.applications` names them
(`applications = ["demo"]` at the top of config.toml, `LITEMLOPS_APPLICATIONS`),
and a name is found in the `litemlops.applications` entry-point group (the
ride-hailing demo registers itself there in pyproject.toml) or written as
`module:attribute`. The default config names the demo, so `litemlops run` on a
fresh home sets it up; `applications = []` leaves only the platform's built-in
pipelines and the home's modules.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from litemlops.errors import ConfigError

if TYPE_CHECKING:
    from litemlops.bootstrap import BootstrapReport
    from litemlops.config import Config
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import Pipeline

#: The entry-point group applications register in.
GROUP = "litemlops.applications"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.]*)?")


class Application:
    """An application on the platform; subclass it and override what it brings.

    name: how config names it. sections: the config sections it owns, name -> a
    frozen dataclass of its keys (read from config.toml, `LITEMLOPS_<SECTION>_<KEY>`
    and overrides like the platform's). checks: `(section, key)` -> a check that
    returns what the value must be, or None when it is fine. defaults: its values
    for the platform's own sections (`{"server": {"model": ...}}`), below every
    source the user writes. preload: modules a worker process imports once.
    """

    name: str = ""
    sections: Mapping[str, type] = {}
    checks: Mapping[tuple[str, str], Callable[[Any], str | None]] = {}
    defaults: Mapping[str, Mapping[str, Any]] = {}
    preload: tuple[str, ...] = ()

    def pipelines(self, config: Config) -> list[Pipeline]:
        """Its pipelines, built from the home's config."""
        return []

    def bootstrap(self, platform: Platform, report: BootstrapReport) -> None:
        """Set itself up on a fresh home (or finish an interrupted set-up) before `run`
        serves; what it did goes on `report` (`report.fresh` when it set up)."""

    def describe(self, platform: Platform, report: BootstrapReport) -> None:
        """After the home caught up: what the report shows of the application's data."""

    def hints(self, config: Config, url: str) -> list[str]:
        """Lines `run` prints once it serves at `url` (a request to try, say)."""
        return []

    def commands(self) -> list[Any]:
        """Its click commands, added to the `litemlops` command."""
        return []


def check_names(raw: Any, *, source: str) -> tuple[str, ...]:
    """Application names from a TOML array, a comma-separated string or a sequence."""
    names = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            f"applications from {source} must be a list of application names, got {raw!r}"
        )
    cleaned = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    bad = [n for n in cleaned if not _NAME.fullmatch(n)]
    if bad:
        raise ConfigError(
            f"applications from {source}: {bad[0]!r} is not an application name "
            "(an entry point's name, or module:attribute)"
        )
    return cleaned


def load_applications(names: Iterable[str]) -> tuple[Application, ...]:
    """The applications `names` stand for, in order; an unknown name is a ConfigError."""
    return tuple(_load(name) for name in names)


@cache
def _load(name: str) -> Application:
    # Cached: every process builds its catalog from config, each worker task too.
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load application {name!r}: {exc}") from None
    else:
        points = _entry_points()
        if name not in points:
            raise ConfigError(
                f"unknown application {name!r} in config; known applications: "
                f"{sorted(points) or 'none'} (the {GROUP!r} entry points; reinstall the "
                "package after changing them), or name one as module:attribute"
            )
        found = points[name].load()
    application = found() if isinstance(found, type) else found
    if not isinstance(application, Application):
        raise ConfigError(
            f"application {name!r} is a {type(application).__name__}, not a "
            "litemlops.applications.Application"
        )
    return application


def installed() -> list[str]:
    """The names in the entry-point group: the applications this installation has."""
    return sorted(_entry_points())


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=GROUP)}
