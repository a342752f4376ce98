"""Which features prediction events name, and the SQL types their values take.

Events carry features as JSON objects, and the reader needs their names and types
before DuckDB can parse them into typed columns. A model's features are its inputs,
so a few sampled events of each (model, version, service) name them all; the
history's manifest keeps what each of its files' samples showed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

Group = tuple[Any, ...]
"""(model, version, service) of prediction events."""
Kinds = dict[str, set[str]]
"""Feature name -> the JSON types seen of its values ("null", "DOUBLE", "BOOLEAN", "VARCHAR")."""


def sampled(con: Any, window: str, params: list[Any]) -> list[tuple[Group, Kinds]]:
    """Per (model, version, service), the features its first and last events name, with the
    JSON types of their values. `window` is SQL with columns ts, model, version, service
    and `features` (JSON text); only the samples are parsed (the window is still read
    once for them)."""
    rows = con.execute(
        f"""
        SELECT model, version, service, arg_min(features, ts), arg_max(features, ts)
        FROM ({window})
        GROUP BY model, version, service
        """,
        params,
    ).fetchall()
    found = []
    for model, version, service, *samples in sorted(rows, key=lambda row: group_order(row[:3])):
        seen: dict[str, set[str]] = {}
        for sample in samples:
            parsed = json.loads(sample) if sample is not None else None
            for obj in parsed if isinstance(parsed, list) else ():
                if isinstance(obj, dict):
                    for name, value in obj.items():
                        seen.setdefault(name, set()).add(json_kind(value))
        found.append(((model, version, service), seen))
    return found


def group_order(group: Sequence[Any]) -> tuple[tuple[bool, str], ...]:
    """A sort key of groups, whose parts may be None."""
    return tuple((part is None, str(part)) for part in group)


def merged(found: Iterable[Kinds]) -> Kinds:
    """Feature -> JSON types, over several groups' findings, in the order first seen. DuckDB's
    struct fields and columns ignore case: of names differing only in case the first wins."""
    seen: dict[str, set[str]] = {}
    lowered: set[str] = set()
    for kinds in found:
        for name, kind in kinds.items():
            if name not in seen and name.lower() in lowered:
                continue
            lowered.add(name.lower())
            seen.setdefault(name, set()).update(kind)
    return seen


def json_kind(value: Any) -> str:
    """A parsed JSON value's type, as `Kinds` name them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "DOUBLE"
    return "VARCHAR"


def sql_type(kinds: set[str]) -> str:
    """The SQL type values of these JSON types are read as: text when they disagree."""
    kinds = kinds - {"null"}
    return kinds.pop() if len(kinds) == 1 else "DOUBLE" if not kinds else "VARCHAR"
