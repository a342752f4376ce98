"""The filter and order_by syntax of `search_runs` (MLflow's), parsed into clauses.

See `litemlops.store.tracking.search` for the grammar; this module only reads text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from litemlops.errors import ValidationError
from litemlops.store.tracking.tracking_types import STATUSES

MAX_CLAUSES = 100  # far below SQLite's expression depth limit
MAX_ORDER_TERMS = 10
MAX_PATTERN = 50_000  # SQLite refuses longer LIKE/GLOB patterns

PREFIXES = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameters": "param", "parameter": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attr", "attribute": "attr", "attr": "attr", "run": "attr",
}  # fmt: skip
# attribute -> (runs column, takes a number, may be NULL)
ATTRS = {
    "run_id": ("run_id", False, False),
    "run_name": ("name", False, False),
    "status": ("status", False, False),
    "start_time": ("start_time", True, False),
    "end_time": ("end_time", True, True),
    "lifecycle_stage": ("lifecycle_stage", False, False),
}
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-/:]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])")
_OP = re.compile(r"!=|<=|>=|=|<|>|(?:i?like)\b", re.IGNORECASE)
_AND = re.compile(r"and\b", re.IGNORECASE)
_DIRECTION = re.compile(r"(?:asc|desc)\b", re.IGNORECASE)
_QUOTED = {q: re.compile(f"{q}((?:[^{q}]|{q}{q})*){q}") for q in ("'", '"', "`")}


@dataclass(frozen=True)
class Clause:
    kind: str  # "metric", "param", "tag" or "attr"
    key: str  # the metric, param or tag key, or the attribute name
    op: str  # one of COMPARISONS, "LIKE" or "ILIKE"
    value: float | str


@dataclass(frozen=True)
class OrderTerm:
    kind: str
    key: str
    descending: bool

    @property
    def nullable(self) -> bool:
        return self.kind != "attr" or ATTRS[self.key][2]


class _Cursor:
    """A position in the text being parsed; errors say what was expected where."""

    def __init__(self, text: str, what: str):
        self.text, self.what, self.pos = text, what, 0

    def skip(self) -> int:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos

    def at_end(self) -> bool:
        return self.skip() == len(self.text)

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        match = pattern.match(self.text, self.skip())
        if match:
            self.pos = match.end()
        return match

    def quoted(self, quote: str, what: str) -> str:
        start = self.pos
        match = _QUOTED[quote].match(self.text, start)
        if match is None:
            self.fail(f"a closing {quote} for the {what} opened", start)
        self.pos = match.end()
        return match.group(1).replace(quote * 2, quote)

    def fail(self, expected: str, at: int | None = None) -> NoReturn:
        pos = self.pos if at is None else at
        rest = self.text[pos : pos + 20]
        found = repr(rest) if rest else "the end"
        text = self.text if len(self.text) <= 200 else self.text[:200] + "…"
        raise ValidationError(
            f"invalid {self.what} {text!r}: expected {expected} at position {pos}, found {found}"
        )


def parse_filter(text: str) -> list[Clause]:
    """The clauses of a filter string (empty: no filter)."""
    if not isinstance(text, str):
        raise ValidationError(f"filter_string must be a string, got {text!r}")
    cur = _Cursor(text, "filter")
    clauses: list[Clause] = []
    if cur.at_end():
        return clauses
    while True:
        clauses.append(_clause(cur))
        if cur.at_end():
            break
        if cur.take(_AND) is None:
            hint = " (OR is not supported)" if text[cur.pos :].lower().startswith("or") else ""
            cur.fail(f"'and' or the end of the filter{hint}")
    if len(clauses) > MAX_CLAUSES:
        raise ValidationError(f"filter has {len(clauses)} clauses; at most {MAX_CLAUSES}")
    return clauses


def parse_order_by(items: Sequence[str] | None) -> list[OrderTerm]:
    """Order terms; None or empty gives the default, newest start first."""
    if isinstance(items, str):
        raise ValidationError(f"order_by is a list of strings, got the string {items!r}")
    if not items:
        return [OrderTerm("attr", "start_time", True)]
    if len(items) > MAX_ORDER_TERMS:
        raise ValidationError(f"order_by has {len(items)} terms; at most {MAX_ORDER_TERMS}")
    terms = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ValidationError(f"order_by[{i}] must be a string, got {item!r}")
        cur = _Cursor(item, f"order_by[{i}]")
        kind, key = _field(cur)
        direction = cur.take(_DIRECTION)
        if not cur.at_end():
            cur.fail("ASC, DESC or the end")
        descending = direction is not None and direction.group().lower() == "desc"
        terms.append(OrderTerm(kind, key, descending))
    return terms


def _field(cur: _Cursor) -> tuple[str, str]:
    """(kind, key) of `metrics.<key>`, `attributes.<name>`, `status`, ..."""
    start = cur.skip()
    fields = "a field: metrics.<key>, params.<key>, tags.<key> or attributes.<name>"
    word = cur.take(_WORD)
    if word is None:
        cur.fail(fields)
    name = word.group().lower()
    if cur.text.startswith(".", cur.pos):
        kind = PREFIXES.get(name)
        if kind is None:
            cur.fail("metrics, params, tags or attributes before '.'", start)
        cur.pos += 1
        key_at = cur.pos
        char = cur.text[cur.pos : cur.pos + 1]
        if char in ("`", '"'):
            key = cur.quoted(char, "key")
        else:
            bare = _BARE_KEY.match(cur.text, cur.pos)
            if bare is None:
                cur.fail("a key (put keys with spaces in backticks: metrics.`val loss`)")
            key = bare.group()
            cur.pos = bare.end()
            if cur.text.startswith(".", cur.pos):
                cur.fail(f"no '.': a key with dots goes in backticks: `{key}.…`", key_at)
        if not key:
            cur.fail("a key inside the quotes", key_at)
        if kind == "attr":
            if key.lower() not in ATTRS:
                cur.fail(f"an attribute ({', '.join(ATTRS)})", key_at)
            key = key.lower()
        return kind, key
    if name in ATTRS:
        return "attr", name
    if name in PREFIXES:
        cur.fail(f"'.' and a key after {word.group()!r}")
    cur.fail(fields, start)


def _clause(cur: _Cursor) -> Clause:
    kind, key = _field(cur)
    op_at = cur.skip()
    op_match = cur.take(_OP)
    if op_match is None:
        cur.fail("an operator (=, !=, <, <=, >, >=, LIKE, ILIKE)")
    op = op_match.group().upper()
    numeric = kind == "metric" or (kind == "attr" and ATTRS[key][1])
    if numeric and op not in COMPARISONS:
        cur.fail(f"a comparison (=, !=, <, <=, >, >=): {op} applies to strings only", op_at)
    value_at = cur.skip()
    value: float | str
    if numeric:
        number = cur.take(_NUMBER)
        if number is None:
            cur.fail(f"a number to compare {show(kind, key)} with")
        value = float(number.group())
    else:
        quote = cur.text[value_at : value_at + 1]
        if quote not in ("'", '"'):
            cur.fail(f"a quoted string to compare {show(kind, key)} with (e.g. '0.01')")
        value = cur.quoted(quote, "string")
        if kind == "attr" and key == "status":
            value = value.lower()
            if op in ("=", "!=") and value not in STATUSES:
                cur.fail(f"a status ({', '.join(STATUSES)})", value_at)
        if op in ("LIKE", "ILIKE") and len(value) > MAX_PATTERN:
            cur.fail(f"a pattern of at most {MAX_PATTERN} characters", value_at)
    return Clause(kind, key, op, value)


def show(kind: str, key: str) -> str:
    return key if kind == "attr" else f"{kind}s.`{key}`"
