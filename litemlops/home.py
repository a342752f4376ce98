"""Where a home is, whether a directory is one, and who may make one.

Every command resolves the home one way: the `--home` flag, else `LITEMLOPS_HOME`,
else `./.litemlops`. Only `litemlops run` and `litemlops init` create a home; every
other command refuses a path that is not one, saying which path it looked at and
where that path came from, so a typo never becomes an empty home that answers
"nothing here".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from litemlops.errors import HomeNotFoundError

HOME_ENV = "LITEMLOPS_HOME"
DEFAULT_HOME = ".litemlops"
#: A directory holding any of these is a home: the registry every opened home has,
#: or the settings a user wrote before its first start.
HOME_FILES = ("registry.db", "features.duckdb", "config.toml")
#: What a home holds before its stores are first opened (a start stopped early).
_FIRST_ENTRIES = frozenset({"lock", "token", "logs", "artifacts", "runs", "data"})


@dataclass(frozen=True)
class HomeChoice:
    """The home's absolute path and where it came from: "flag" (`--home`), "env" (the
    environment variable), "default", or "environment": the `home` of a config
    environment, which `detail` names and `flags` choose."""

    path: Path
    source: str
    detail: str = ""
    flags: str = ""

    def describe(self) -> str:
        if self.source == "flag":
            return "from --home"
        if self.source == "env":
            return f"from {HOME_ENV}"
        if self.source == "environment":
            return self.detail
        return f"the default {DEFAULT_HOME} in the current directory; pass --home or set {HOME_ENV}"

    def flag(self) -> str:
        """The options that choose this home."""
        return self.flags or f"--home {_quote(self.path)}"


def resolve_home(home: str | Path | None, env: Mapping[str, str]) -> HomeChoice:
    """The `--home` flag when given, else `LITEMLOPS_HOME` (when not empty), else the default."""
    if home is not None and str(home) != "":
        return HomeChoice(Path(home).expanduser().absolute(), "flag")
    if env.get(HOME_ENV):
        return HomeChoice(Path(env[HOME_ENV]).expanduser().absolute(), "env")
    return HomeChoice(Path(DEFAULT_HOME).absolute(), "default")


def is_home(path: Path) -> bool:
    """Whether `path` is a directory holding a home's files."""
    return path.is_dir() and any((path / name).exists() for name in HOME_FILES)


def require_home(choice: HomeChoice) -> None:
    """Refuse a home that does not exist or is not a litemlops home."""
    path = choice.path
    make = (
        f"make one with `litemlops init {choice.flag()}`, or start `litemlops run "
        f"{choice.flag()}`, which also sets up the demo project in it"
    )
    if not path.exists():
        raise HomeNotFoundError(
            f"no litemlops home at {path} ({choice.describe()}): the directory does not "
            f"exist; check the path, or {make}"
        )
    if not path.is_dir():
        raise HomeNotFoundError(
            f"the home {path} ({choice.describe()}) is a file, not a directory; "
            "pass the home's directory"
        )
    if not is_home(path):
        empty = not any(path.iterdir())
        raise HomeNotFoundError(
            f"{path} ({choice.describe()}) is not a litemlops home: it holds none of "
            f"{', '.join(HOME_FILES)}; check the path, or "
            + (
                make
                if empty
                else "make a home in a new or empty directory with `litemlops init --home DIR`"
            )
        )


def check_new_home(choice: HomeChoice) -> bool:
    """Whether a home may be made at the path (False: it is one already).

    A home is made in a new or an empty directory only, so a mistyped path never
    fills someone's source folder with a registry.
    """
    path = choice.path
    if path.exists() and not path.is_dir():
        raise HomeNotFoundError(
            f"the home {path} ({choice.describe()}) is a file, not a directory; "
            "choose another --home"
        )
    if is_home(path):
        return False
    if path.is_dir() and any(p.name not in _FIRST_ENTRIES for p in path.iterdir()):
        raise HomeNotFoundError(
            f"{path} ({choice.describe()}) is not a litemlops home and is not empty; "
            "a home is made in a new or empty directory: choose another --home"
        )
    return True


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
