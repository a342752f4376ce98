"""How config values are read and checked: a `Schema` of sections (frozen dataclasses
whose fields are the keys) and value checks, merged from config.toml, the environment
and overrides into one dict per section.

The platform's sections and each application's share this machinery, so a typo in a
section or key, a value of the wrong type or out of range, is the same clear
`ConfigError` (naming key, source and value) wherever the section comes from. The
checks below are public for applications' own `checks`.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from litemlops.errors import ConfigError

ENV_PREFIX = "LITEMLOPS_"

#: A value check: None when the value is fine, else what it must be ("a number >= 0").
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Schema:
    """The sections config knows (name -> dataclass) and the checks beyond each type."""

    sections: Mapping[str, type]
    checks: Mapping[tuple[str, str], Check]
    #: Said after the known sections when a section is unknown.
    unknown_hint: str = ""

    def blank(self) -> dict[str, dict[str, Any]]:
        return {name: {} for name in self.sections}


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or {} when there is none."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def merge_table(
    schema: Schema, values: dict[str, dict[str, Any]], section: str, table: Any, *, source: str
) -> None:
    """Merge one `[section]` table of a file into `values`."""
    if section not in schema.sections:
        raise ConfigError(
            f"unknown section [{section}] in {source}; known sections: "
            f"{', '.join(schema.sections)}{schema.unknown_hint}"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{section} in {source} must be a table [{section}], got {table!r}")
    for key, raw in table.items():
        check_key(schema, section, key, source=source)
        values[section][key] = coerce(schema, section, key, raw, source=source, parse=False)


def merge_env(
    schema: Schema, values: dict[str, dict[str, Any]], env: Mapping[str, str]
) -> None:
    # Only the known names are looked up: other LITEMLOPS_* variables (HOME,
    # ones a newer version reads) must not make an older one refuse to start.
    for section, kind in schema.sections.items():
        for f in fields(kind):
            name = f"{ENV_PREFIX}{section}_{f.name}".upper()
            if name in env:
                values[section][f.name] = coerce(
                    schema, section, f.name, env[name], source=name, parse=True
                )


def merge_overrides(
    schema: Schema, values: dict[str, dict[str, Any]], overrides: Mapping[str, Any]
) -> None:
    for dotted, raw in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in schema.sections or not key:
            raise ConfigError(
                f"unknown config key {dotted!r} in overrides; keys look like "
                f"'section.key' with section one of {', '.join(schema.sections)}"
                f"{schema.unknown_hint}"
            )
        check_key(schema, section, key, source="overrides")
        if raw is None:
            continue
        values[section][key] = coerce(
            schema, section, key, raw, source="overrides", parse=isinstance(raw, str)
        )


def check_key(schema: Schema, section: str, key: str, *, source: str) -> None:
    known = [f.name for f in fields(schema.sections[section])]
    if key not in known:
        raise ConfigError(
            f"unknown config key {section}.{key} in {source}; "
            f"known keys of [{section}]: {', '.join(known)}"
        )


def _field_type(schema: Schema, section: str, key: str) -> str:
    # Annotations are strings under `from __future__ import annotations`, types without.
    kind = next(f.type for f in fields(schema.sections[section]) if f.name == key)
    name = kind.__name__ if isinstance(kind, type) else str(kind)
    if name not in _EXPECTED:
        raise ConfigError(
            f"config key {section}.{key} is declared as {name}; a config key is a "
            "bool, int, float or str"
        )
    return name


_EXPECTED = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}


def coerce(schema: Schema, section: str, key: str, raw: Any, *, source: str, parse: bool) -> Any:
    """Turn `raw` into the field's type, or raise a ConfigError naming key, source and value."""
    kind = _field_type(schema, section, key)
    value: Any = None
    if parse:
        value = _parse(kind, str(raw))
    elif _accepts(kind, raw):
        value = float(raw) if kind == "float" else raw
    if (section, key) == ("logging", "level") and value is not None:
        value = value.strip().lower()
    problem = _EXPECTED[kind] if value is None else None
    if problem is None and kind == "float" and not math.isfinite(value):
        problem = "a finite number"
    if problem is None and (section, key) in schema.checks:
        problem = schema.checks[(section, key)](value)
    if problem is not None:
        raise ConfigError(
            f"config key {section}.{key} from {source} must be {problem}, got {raw!r}"
        )
    return value


def _accepts(kind: str, raw: Any) -> bool:
    # bool is an int subclass, and `drivers = true` is surely a mistake.
    if isinstance(raw, bool):
        return kind == "bool"
    if kind == "int":
        return isinstance(raw, int)
    if kind == "float":
        return isinstance(raw, int | float)
    return kind == "str" and isinstance(raw, str)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(kind: str, text: str) -> Any:
    """Parse an environment string; None when it does not parse."""
    text = text.strip()
    if kind == "str":
        return text
    if kind == "bool":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return None


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "a number >= 0"


def positive(value: Any) -> str | None:
    return None if value >= 1 else "an integer >= 1"


def fraction(value: Any) -> str | None:
    return None if 0 < value < 1 else "a number between 0 and 1 (exclusive)"


def unit(value: Any) -> str | None:
    return None if 0 <= value <= 1 else "a number between 0 and 1"


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"one of {', '.join(choices)}"

    return check


def positive_number(value: Any) -> str | None:
    return None if value > 0 else "a number > 0"


def share(value: Any) -> str | None:
    return None if 0 < value <= 1 else "a number > 0 and <= 1"


def web_url(value: Any) -> str | None:
    # Anything else (file://, ftp://) would let urllib read or write where no
    # alert should go.
    ok = value == "" or value.startswith(("http://", "https://"))
    return None if ok else "empty or an http:// or https:// URL"


def json_object(value: Any) -> str | None:
    try:
        return None if isinstance(json.loads(value), dict) else "a JSON object"
    except ValueError:
        return "a JSON object, like '{\"C\": 0.5}'"


def deployment_tables(raw: Any, *, source: str) -> tuple[tuple[str, str], ...]:
    """`[deployments.<name>]` tables as (name, JSON text) pairs: hashable, and checked
    key by key when `run` starts them (`litemlops.serving.deployment_spec`)."""
    import re

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: [deployments] holds one table per deployment, by name")
    found = []
    for name, table in raw.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", name):
            raise ConfigError(
                f"{source}: deployment name {name!r}: letters, digits, '_', '.', '-' "
                "(at most 64)"
            )
        if not isinstance(table, Mapping) or "strategy" not in table:
            raise ConfigError(
                f"{source}: [deployments.{name}] needs a table with a strategy "
                "(canary, shadow, ab or bandit) and its challenger(s)"
            )
        if "name" in table:
            raise ConfigError(f"{source}: [deployments.{name}] is named by its table; drop 'name'")
        found.append((name, json.dumps(dict(table), default=str)))
    return tuple(found)
