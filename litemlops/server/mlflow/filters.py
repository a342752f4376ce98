"""MLflow's filter strings over experiments and registered models (names and tags).

Clauses `name <op> '<text>'` or `tags.<key> <op> '<text>'` (also `tag.`, keys with
dots in backticks), op one of =, !=, LIKE, ILIKE, joined by AND. A missing tag
matches only `!=`, as MLflow's client relies on (it adds
`tag.mlflow.prompt.is_prompt != 'true'` to leave prompts out).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litemlops.server.mlflow.errors import invalid

_CLAUSE = re.compile(
    r"\s*(?:(?:attributes?|attr)\.)?(?P<field>name|tags?\.(?:`[^`]+`|[\w.\-/]+))\s*"
    r"(?P<op>!=|=|(?i:i?like))\s*(?P<q>['\"])(?P<value>.*?)(?P=q)\s*(?:(?i:and)\s+|$)"
)

Test = Callable[[Any], bool]


def parse(filter_string: str, what: str) -> list[Test]:
    """Tests an object with `name` and `tags` must all pass."""
    tests: list[Test] = []
    pos, end = 0, len(filter_string.rstrip())
    while pos < end:
        match = _CLAUSE.match(filter_string, pos)
        if match is None:
            raise invalid(
                f"invalid {what} filter {filter_string!r} at position {pos}: use name or "
                "tags.<key> with =, !=, LIKE or ILIKE and a quoted string, joined by AND"
            )
        pos = match.end()
        field = match["field"]
        key = None if field == "name" else field.split(".", 1)[1].strip("`")
        tests.append(_test(key, match["op"].upper(), match["value"]))
    return tests


def _test(key: str | None, op: str, value: str) -> Test:
    def test(item: Any) -> bool:
        seen = item.name if key is None else item.tags.get(key)
        if seen is None:
            return op == "!="
        if op == "=":
            return bool(seen == value)
        if op == "!=":
            return bool(seen != value)
        return like(value, seen, fold=op == "ILIKE")

    return test


def like(pattern: str, value: str, fold: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None
