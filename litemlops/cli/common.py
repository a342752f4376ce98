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
    from litemlops.home import HomeChoice
    from litemlops.platform import Platform

F = TypeVar("F", bound=Callable[..., Any])


def home_option(func: F) -> F:
    """`--home`, and `--env`: the config environment (kept in the context for
    `load_config`, so commands need no parameter for it)."""
    func = click.option(
        "--env",
        "environment",
        default=None,
        expose_value=False,
        callback=_keep_environment,
        help="Config environment, an [env.<name>] of config.toml (default: $LITEMLOPS_ENV).",
    )(func)
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Home directory (default: $LITEMLOPS_HOME, then ./.litemlops).",
    )(func)


def _keep_environment(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_ENVIRONMENT] = value


_ENVIRONMENT = "litemlops.environment"


def home_choice(ctx: click.Context, home: Path | None) -> HomeChoice:
    """The home of `--home` (given to the command or to `litemlops` itself), else
    `LITEMLOPS_HOME`, else the default; with where it came from."""
    import os

    from litemlops.home import resolve_home

    root = ctx.find_root()
    chosen = home if home is not None else (root.params.get("home") if root else None)
    return resolve_home(chosen, os.environ)


def load_config(
    ctx: click.Context,
    home: Path | None,
    overrides: dict[str, Any] | None = None,
    *,
    existing: bool = True,
) -> Config:
    """The config of the command's home and flags.

    existing: refuse a home that does not exist or is not one (only `run` and `init`
    make homes).
    """
    from litemlops.config import Config
    from litemlops.home import check_new_home, require_home

    choice = home_choice(ctx, home)
    if existing:
        require_home(choice)
    config = Config.load(choice.path, overrides=overrides, environment=ctx.meta.get(_ENVIRONMENT))
    state = state_home(choice, config)
    if state is not choice:
        if existing:
            require_home(state)
        else:
            check_new_home(state)
    return config


def state_home(choice: HomeChoice, config: Config) -> HomeChoice:
    """Where the config's state lives: `choice`, or the home its environment names."""
    from litemlops.home import HomeChoice

    if config.home == choice.path:
        return choice
    return HomeChoice(
        config.home,
        "environment",
        f"the home of [env.{config.environment}] in {config.config_path}",
        f"{choice.flag()} --env {config.environment}",
    )


@contextmanager
def open_platform(
    ctx: click.Context, home: Path | None, *, quiet: bool = True
) -> Iterator[Platform]:
    """The home's platform: its owner's, or, while another process owns the home (a
    `litemlops run` serving it), a guest's beside it (`Platform.guest`)."""
    from litemlops.logsetup import configure_logging, shutdown_logging
    from litemlops.platform import Platform

    config = load_config(ctx, home)
    # Commands print their own results; the console gets only warnings and worse.
    configure_logging(config, console_level="warning" if quiet else None)
    try:
        try:
            platform = Platform(config)
        except HomeLockedError:
            platform = Platform.guest(config, waiting=_say_waiting)
        with platform:
            yield platform
    finally:
        shutdown_logging()


def _say_waiting(what: str) -> None:
    click.echo(f"waiting for {what}...", err=True)


def running_server(config: Config) -> str | None:
    """The URL of the `litemlops run` serving the home now, if one does.

    Its `server.json` names the URL; the home lock tells whether that process is alive
    (a server killed with -9 leaves the file behind).
    """
    from litemlops.home_lock import HomeLock
    from litemlops.server.main import served_at

    url = served_at(config.home)
    if url is None:
        return None
    probe = HomeLock(config.lock_path)
    try:
        probe.acquire()
    except HomeLockedError:
        return url
    probe.release()
    return None


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
