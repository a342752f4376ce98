"""The layers a config is merged from, environments among them, and where each value came from.

Lowest precedence first: the platform's defaults, the applications' defaults, the
file's tables, the tables of the chosen environment (`[env.<name>]`), environment
variables `LITEMLOPS_<SECTION>_<KEY>`, explicit overrides (CLI flags). An
environment is chosen by `--env` or `LITEMLOPS_ENV`; its table holds the same
sections as the file (`[env.prod.server]`, `[[env.prod.alerts]]`,
`[env.prod.deployments.<name>]`) and may name the environment's own `home` (a path,
relative to the file's folder), where its state lives: one file can then describe
dev, staging and prod, each with its own stores, ports, schedules and thresholds.

Every environment of the file is checked on every load, chosen or not, so a typo in
`[env.prod]` fails in dev before it reaches prod. `Layered.origins` says which layer
set each value (`litemlops config show`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.alert_rules import AlertRule, alert_rules
from litemlops.config_parse import (
    ENV_PREFIX,
    Schema,
    check_key,
    coerce,
    deployment_tables,
    merge_env,
    merge_overrides,
    merge_table,
)
from litemlops.errors import ConfigError

if TYPE_CHECKING:
    from litemlops.applications import Application
    from litemlops.config import Config

ENV_VAR = f"{ENV_PREFIX}ENV"
DEFAULT = "default"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


@dataclass
class Layered:
    """What the layers gave: values by section, alert rules and the defaults turned off
    (None when no layer has `[[alerts]]`), deployments by name, the environment's home
    (None: the file's folder), and "section.key" -> the layer that set it."""

    values: dict[str, dict[str, Any]]
    alerts: tuple[tuple[AlertRule, ...], frozenset[str]] | None = None
    deployments: dict[str, str] = field(default_factory=dict)
    home: Path | None = None
    origins: dict[str, str] = field(default_factory=dict)


def chosen_environment(given: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The environment asked for (the argument, else `LITEMLOPS_ENV` when not empty),
    and where the choice came from."""
    if given:
        return given, "--env"
    if env.get(ENV_VAR):
        return env[ENV_VAR], ENV_VAR
    return None, ""


def layered(
    schema: Schema,
    applications: tuple[Application, ...],
    document: dict[str, Any],
    path: Path,
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
    environment: tuple[str | None, str],
    sections: Mapping[str, type],
) -> Layered:
    """Merge every layer; `document` is the file without `applications`, `sections` the
    platform's own (which applications may give defaults for)."""
    out = Layered(values=schema.blank())
    for application in applications:
        source = f"application {application.name!r}"
        for section, defaults in application.defaults.items():
            if section not in sections:
                raise ConfigError(
                    f"application {application.name!r} has defaults for [{section}], "
                    "which is not a section of the platform"
                )
            for key, raw in defaults.items():
                check_key(schema, section, key, source=source)
                out.values[section][key] = coerce(
                    schema, section, key, raw, source=source, parse=False
                )
                out.origins[f"{section}.{key}"] = source
    overlays = _environments(document.pop("env", None), path)
    _merge_tables(schema, out, document, str(path))
    for each, overlay in overlays.items():  # each checked, chosen or not
        _merge_tables(schema, Layered(values=schema.blank()), dict(overlay), f"{path} [env.{each}]")
    name, chosen_by = environment
    if name is not None:
        if name not in overlays:
            known = ", ".join(overlays) or f"none: {path} has no [env.<name>] table"
            raise ConfigError(
                f"unknown environment {name!r} (from {chosen_by}); environments: {known}"
            )
        overlay = dict(overlays[name])
        raw_home = overlay.pop("home", None)
        if raw_home is not None:
            out.home = (path.parent / Path(raw_home).expanduser()).absolute()
        _merge_tables(schema, out, overlay, f"{path} [env.{name}]")
    merge_env(schema, out.values, env)
    for section, kind in schema.sections.items():
        for f in fields(kind):
            variable = f"{ENV_PREFIX}{section}_{f.name}".upper()
            if variable in env:
                out.origins[f"{section}.{f.name}"] = variable
    merge_overrides(schema, out.values, overrides)
    for dotted, raw in overrides.items():
        if raw is not None:
            out.origins[dotted] = "a flag"
    return out


def _environments(raw: Any, path: Path) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(t, dict) for t in raw.values()):
        raise ConfigError(
            f"env in {path} holds one table per environment: [env.dev], [env.prod], ..."
        )
    for name, table in raw.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"environment name {name!r} in {path}: a letter, then letters, digits, "
                "'_' or '-' (at most 32)"
            )
        if "applications" in table or "env" in table:
            key = "applications" if "applications" in table else "env"
            raise ConfigError(
                f"[env.{name}] in {path} cannot set {key!r}: every environment runs the "
                "applications of the file's top level"
            )
        home = table.get("home")
        if home is not None and (not isinstance(home, str) or not home.strip()):
            raise ConfigError(
                f"home of [env.{name}] in {path} must be a path (text), got {home!r}"
            )
    return raw


def _merge_tables(schema: Schema, out: Layered, tables: dict[str, Any], source: str) -> None:
    for section, table in tables.items():
        if section == "home":
            continue
        if section == "alerts":
            rules, off = alert_rules(table, source=source)
            out.alerts = _alerts_over(out.alerts, rules, off)
        elif section == "deployments":
            out.deployments.update(deployment_tables(table, source=source))
        else:
            merge_table(schema, out.values, section, table, source=source)
            for key in table:
                out.origins[f"{section}.{key}"] = source


def _alerts_over(
    below: tuple[tuple[AlertRule, ...], frozenset[str]] | None,
    rules: tuple[AlertRule, ...],
    off: frozenset[str],
) -> tuple[tuple[AlertRule, ...], frozenset[str]]:
    """A layer's rules over the layers' below: a rule of a name already there replaces
    it in its place, others come after; a rule given again is on again."""
    if below is None:
        return rules, off
    mine = {rule.name: rule for rule in rules}
    kept = tuple(mine.pop(rule.name, rule) for rule in below[0])
    return kept + tuple(mine.values()), (below[1] - {r.name for r in rules}) | off



def explained(config: Config) -> dict[str, Any]:
    """The merged settings of `config`, each with the layer that set it ("default" when
    none did): what `litemlops config show` prints."""
    import dataclasses

    from litemlops.config import _SECTIONS

    origins = dict(config.origins)
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    named = [(n, getattr(config, n)) for n in _SECTIONS] + list(config.sections)
    for name, value in named:
        sections[name] = {
            f.name: {"value": getattr(value, f.name),
                     "from": origins.get(f"{name}.{f.name}", DEFAULT)}
            for f in dataclasses.fields(value)
        }  # fmt: skip
    return {
        "home": str(config.home),
        "environment": config.environment,
        "config_file": str(config.config_path),
        "applications": list(config.applications),
        "sections": sections,
        "alerts": [rule.name for rule in config.alerts],
        "deployments": [name for name, _ in config.deployments],
    }

