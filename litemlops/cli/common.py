"""What every command shares: the home option, opening the platform, error rendering.

Library errors (`LitemlopsError`) become one-line CLI errors here and only here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from litemlops.errors import HomeLockedError, LitemlopsError

if TYPE_CHECKING:
    from litemlops.config import Config
    from litemlops.platform import Platform

F = TypeVar("F", bound=Callable[..., Any])


def home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Home directory (default: $LITEMLOPS_HOME, then ./.litemlops).",
    )(func)


def load_config(
    ctx: click.Context, home: Path | None, overrides: dict[str, Any] | None = None
) -> Config:
    """The config of `--home` (given to the command or to `litemlops` itself) and flags."""
    from litemlops.config import Config

    root = ctx.find_root()
    chosen = home if home is not None else (root.params.get("home") if root else None)
    return Config.load(chosen, overrides=overrides)


@contextmanager
def open_platform(
    ctx: click.Context, home: Path | None, *, quiet: bool = True
) -> Iterator[Platform]:
    from litemlops.logsetup import configure_logging, shutdown_logging
    from litemlops.platform import Platform

    config = load_config(ctx, home)
    config.ensure_home()
    # Commands print their own results; the console gets only warnings and worse.
    configure_logging(config, console_level="warning" if quiet else None)
    try:
        with Platform(config) as platform:
            yield platform
    except HomeLockedError as exc:
        from litemlops.server.main import served_at

        url = served_at(config.home)
        if url is None:
            raise
        raise HomeLockedError(
            f"{exc}; it serves {url}: use its HTTP API meanwhile ({url}/api/..., "
            f"described at {url}/openapi.json)"
        ) from None
    finally:
        shutdown_logging()


def cli_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LitemlopsError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper  # type: ignore[return-value]


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_refs(refs: str) -> list[str]:
    return [r.strip() for r in refs.split(",") if r.strip()]


def entity_row(arg: str, keys: dict[str, str]) -> dict[str, Any]:
    """`k1=v1,k2=v2` typed by the join keys' dtypes (a string key "007" stays text)."""
    row: dict[str, Any] = {}
    for part in arg.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{arg!r}: expected key=value", param_hint="--entity")
        if keys.get(key, "string") == "string":
            row[key] = value
            continue
        try:
            row[key] = int(value)
        except ValueError:
            raise click.BadParameter(
                f"{key}={value!r}: {key} is an integer key", param_hint="--entity"
            ) from None
    return row


@contextmanager
def stages(names: list[str]) -> Iterator[Callable[[], None]]:
    from tqdm import tqdm

    # disable=None: bars only on a terminal, never in logs or pipes.
    with tqdm(total=len(names), unit="step", file=sys.stderr, leave=False, disable=None) as bar:
        bar.set_description(names[0])

        def step() -> None:
            bar.update()
            if bar.n < len(names):
                bar.set_description(names[bar.n])

        yield step
