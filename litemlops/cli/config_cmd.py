"""`litemlops config`: the settings a command would run with, and where each came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_choice, home_option, load_config


@click.group("config")
def config_group() -> None:
    """The home's settings."""


@config_group.command("show")
@home_option
@click.option("--json", "as_json", is_flag=True, help="The settings as JSON.")
@click.pass_context
@cli_errors
def config_show(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """Print the merged settings (defaults, config.toml, its --env environment,
    LITEMLOPS_* variables), each with the layer that set it."""
    from litemlops.config_layers import explained
    from litemlops.home import require_home

    # The folder of config.toml must be a home (a typo is an error, not the defaults);
    # an environment's own home may not be made yet: its settings show all the same.
    require_home(home_choice(ctx, home))
    shown = explained(load_config(ctx, home, existing=False))
    if as_json:
        echo_json(shown)
        return
    click.echo(f"# home: {shown['home']}")
    click.echo(f"# config file: {shown['config_file']}")
    click.echo(f"# environment: {shown['environment'] or '(none)'}")
    click.echo(f"applications = {json.dumps(shown['applications'])}")
    for section, keys in shown["sections"].items():
        click.echo(f"\n[{section}]")
        lines = {k: f"{k} = {_toml(_shown(k, v['value']))}" for k, v in keys.items()}
        width = min(max(map(len, lines.values()), default=0), 48)
        for key, item in keys.items():
            click.echo(f"{lines[key]:<{width}}  # {item['from']}")
    click.echo(f"\n# alert rules: {', '.join(shown['alerts']) or '(none)'}")
    click.echo(f"# deployments started by run: {', '.join(shown['deployments']) or '(none)'}")


def _shown(key: str, value: Any) -> Any:
    """A secret as whether it is set; a URL without what may hold credentials (user,
    password, path, query)."""
    if not value:
        return value
    if key in _SECRETS:
        return "(set, hidden)"
    if key.endswith("_url"):
        from urllib.parse import urlsplit

        parts = urlsplit(str(value))
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}/..."
    return value


_SECRETS = frozenset({"token", "password", "secret"})


def _toml(value: Any) -> str:
    """A value as TOML writes it (paths as text, tuples as arrays, no value as "")."""
    if value is None:
        return "(unset)"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, default=str)
