"""Cosmic Ray operators that mutate the SQL litemlops keeps in string literals.

Cosmic Ray's own operators see Python only: `"... WHERE a >= ? AND b = ?"` is one string
to them, so a test suite that never notices `>=` turned into `>` would pass unseen. Each
operator here swaps one SQL keyword or comparison inside a literal that reads as SQL, one
occurrence per mutant. A literal reads as SQL when it, or a literal it is concatenated
with (implicitly or as the parts of an f-string), holds an upper-case keyword such as
`SELECT`, `WHERE` or `AND`, or when it sits in the braces of such an f-string; docstrings
never do. Keywords match on word boundaries and in upper case (the code's style);
`max(`/`min(` match in either case, keeping it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cosmic_ray.operators.operator import Example, Operator
from parso.tree import BaseNode, Leaf, NodeOrLeaf

SQL_MARKER = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|JOIN|ORDER BY|GROUP BY|HAVING|AND|OR)\b"
)
# The clause an `=` is in: after `SET` it assigns, after the others it compares.
CLAUSE = re.compile(r"\b(SET|WHERE|ON|AND|OR|WHEN|HAVING|JOIN|SELECT|CASE)\b")
LITERALS = ("string", "fstring_string")


def _group(leaf: Leaf) -> NodeOrLeaf:
    """The whole literal `leaf` is part of: an implicit concatenation, an f-string, itself."""
    node: NodeOrLeaf = leaf
    while node.parent is not None and node.parent.type in ("fstring", "strings"):
        node = node.parent
    return node


def _parts(group: NodeOrLeaf) -> list[Leaf]:
    """The literal text leaves of a group, in order (an f-string's `{...}` left out)."""
    if isinstance(group, Leaf):
        return [group] if group.type in LITERALS else []
    assert isinstance(group, BaseNode)
    return [
        part
        for child in group.children
        if child.type != "fstring_expr"
        for part in _parts(child)
    ]


def _is_sql(leaf: Leaf) -> bool:
    return _is_sql_group(_group(leaf))


def _is_sql_group(group: NodeOrLeaf) -> bool:
    """Whether a literal reads as SQL, or sits in a `{...}` of an f-string that does
    (`f"ON {' AND '.join(f'e.{k} = f.{k}' for k in keys)}"`); a docstring never does."""
    parent = group.parent
    if parent is not None and parent.type == "simple_stmt" and parent.children[0] is group:
        return False
    if any(SQL_MARKER.search(p.value) for p in _parts(group)):
        return True
    outer = group.search_ancestor("fstring")
    return outer is not None and _is_sql_group(_group(outer))


def _text_before(leaf: Leaf) -> str:
    """The group's literal text up to `leaf`, for the clause an `=` is in."""
    parts = _parts(_group(leaf))
    return "".join(p.value for p in parts[: parts.index(leaf)])


class SqlReplacement(Operator):
    """Replaces each match of `pattern` in a SQL literal with `replacement` (a `re.sub`
    template), one match per mutant."""

    pattern: re.Pattern[str]
    replacement: str

    def _matches(self, node: NodeOrLeaf) -> list[re.Match[str]]:
        if not isinstance(node, Leaf) or node.type not in LITERALS or not _is_sql(node):
            return []
        return [m for m in self.pattern.finditer(node.value) if self._applies(node, m)]

    def _applies(self, leaf: Leaf, match: re.Match[str]) -> bool:
        return True

    def mutation_positions(self, node: NodeOrLeaf) -> Iterator[tuple[tuple[int, int], ...]]:
        for match in self._matches(node):
            yield _position(node, match.start()), _position(node, match.end())

    def mutate(self, node: NodeOrLeaf, index: int) -> NodeOrLeaf:
        assert isinstance(node, Leaf)
        match = self._matches(node)[index]
        new = match.expand(self.replacement)
        if match.group(0).islower():  # `max(` becomes `min(`, not `MIN(`
            new = new.lower()
        node.value = node.value[: match.start()] + new + node.value[match.end():]
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return tuple(Example(before, after) for before, after in EXAMPLES[cls.__name__])


def _position(leaf: Leaf, offset: int) -> tuple[int, int]:
    """The (line, column) in the file of `offset` in the leaf's text."""
    line, column = leaf.start_pos
    before = leaf.value[:offset]
    newlines = before.count("\n")
    if newlines:
        return line + newlines, len(before) - before.rindex("\n") - 1
    return line, column + offset


class SqlEqualsToNotEquals(SqlReplacement):
    """`=` where it compares becomes `!=`: not after `SET`, nor a named argument's
    (`read_json(?, records=false)`, written without spaces)."""

    pattern = re.compile(r"(?<![<>!=:\w])=(?!=)")
    replacement = "!="

    def _applies(self, leaf: Leaf, match: re.Match[str]) -> bool:
        clauses = CLAUSE.findall(_text_before(leaf) + leaf.value[: match.start()])
        return not clauses or clauses[-1] != "SET"


def _swap(name: str, pattern: str, replacement: str, *, ignore_case: bool = False) -> type:
    """An operator class replacing what `pattern` matches with `replacement`."""
    return type(name, (SqlReplacement,), {
        "pattern": re.compile(pattern, re.IGNORECASE if ignore_case else 0),
        "replacement": replacement,
        "__doc__": f"`{pattern}` -> `{replacement}`.",
    })


SqlAndToOr = _swap("SqlAndToOr", r"\bAND\b", "OR")
# `INSERT OR REPLACE`, `CREATE OR REPLACE` are no boolean `OR`.
SqlOrToAnd = _swap("SqlOrToAnd", r"(?<!INSERT )(?<!CREATE )\bOR\b", "AND")
SqlGreaterEqualToGreater = _swap("SqlGreaterEqualToGreater", ">=", ">")
# Not `->`/`->>` (JSON paths), `<>`, `>>` or a `>=`.
SqlGreaterToGreaterEqual = _swap("SqlGreaterToGreaterEqual", r"(?<![-<>=])>(?![=>])", ">=")
SqlLessEqualToLess = _swap("SqlLessEqualToLess", "<=", "<")
SqlLessToLessEqual = _swap("SqlLessToLessEqual", r"(?<!<)<(?![=<>])", "<=")
SqlAscToDesc = _swap("SqlAscToDesc", r"\bASC\b", "DESC")
SqlDescToAsc = _swap("SqlDescToAsc", r"\bDESC\b", "ASC")
SqlNullsLastToFirst = _swap("SqlNullsLastToFirst", r"\bNULLS LAST\b", "NULLS FIRST")
SqlNullsFirstToLast = _swap("SqlNullsFirstToLast", r"\bNULLS FIRST\b", "NULLS LAST")
SqlLeftJoinToInner = _swap("SqlLeftJoinToInner", r"\bLEFT JOIN\b", "JOIN")
# A plain (or `ASOF`) join keeps rows without a match once it is a left one.
SqlInnerJoinToLeft = _swap(
    "SqlInnerJoinToLeft",
    r"(?<!LEFT )(?<!RIGHT )(?<!FULL )(?<!OUTER )(?<!CROSS )\bJOIN\b",
    "LEFT JOIN",
)
SqlMaxToMin = _swap("SqlMaxToMin", r"\bmax(?=\s*\()", "MIN", ignore_case=True)
SqlMinToMax = _swap("SqlMinToMax", r"\bmin(?=\s*\()", "MAX", ignore_case=True)
# `IS [NOT] DISTINCT FROM` is a comparison, not a `SELECT DISTINCT`.
SqlDropDistinct = _swap("SqlDropDistinct", r"(?<!IS )(?<!NOT )\bDISTINCT\s+", "")
# An implicitly ascending `ORDER BY first_key` is made descending.
SqlOrderByDescending = _swap(
    "SqlOrderByDescending", r"\bORDER BY\s+[\w.]+(?![\w.(]|\s*(?:ASC|DESC)\b)", r"\g<0> DESC"
)

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "SqlEqualsToNotEquals": [
        ('q = "SELECT a FROM t WHERE b = ?"', 'q = "SELECT a FROM t WHERE b != ?"'),
        ('q = "UPDATE t SET a = ? WHERE b = ?"', 'q = "UPDATE t SET a = ? WHERE b != ?"'),
    ],
    "SqlAndToOr": [('q = "WHERE a = ? AND b = ?"', 'q = "WHERE a = ? OR b = ?"')],
    "SqlOrToAnd": [('q = "WHERE a OR b"', 'q = "WHERE a AND b"')],
    "SqlGreaterEqualToGreater": [('q = "WHERE a >= ?"', 'q = "WHERE a > ?"')],
    "SqlGreaterToGreaterEqual": [('q = "WHERE a > ?"', 'q = "WHERE a >= ?"')],
    "SqlLessEqualToLess": [('q = "DELETE FROM t WHERE a <= ?"', 'q = "DELETE FROM t WHERE a < ?"')],
    "SqlLessToLessEqual": [('q = "WHERE a < ?"', 'q = "WHERE a <= ?"')],
    "SqlAscToDesc": [('q = "ORDER BY a ASC"', 'q = "ORDER BY a DESC"')],
    "SqlDescToAsc": [('q = "ORDER BY a DESC"', 'q = "ORDER BY a ASC"')],
    "SqlNullsLastToFirst": [('q = "ORDER BY a NULLS LAST"', 'q = "ORDER BY a NULLS FIRST"')],
    "SqlNullsFirstToLast": [('q = "ORDER BY a NULLS FIRST"', 'q = "ORDER BY a NULLS LAST"')],
    "SqlLeftJoinToInner": [('q = f"FROM e LEFT JOIN {m} ON x"', 'q = f"FROM e JOIN {m} ON x"')],
    "SqlInnerJoinToLeft": [('q = "FROM e ASOF JOIN f ON x"', 'q = "FROM e ASOF LEFT JOIN f ON x"')],
    "SqlMaxToMin": [('q = "SELECT max(a) FROM t"', 'q = "SELECT min(a) FROM t"')],
    "SqlMinToMax": [('q = "SELECT MIN (a) FROM t"', 'q = "SELECT MAX (a) FROM t"')],
    "SqlDropDistinct": [('q = "SELECT DISTINCT a FROM t"', 'q = "SELECT a FROM t"')],
    "SqlOrderByDescending": [
        ('q = "SELECT a FROM t ORDER BY a, b"', 'q = "SELECT a FROM t ORDER BY a DESC, b"'),
    ],
}

OPERATORS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        SqlEqualsToNotEquals, SqlAndToOr, SqlOrToAnd, SqlGreaterEqualToGreater,
        SqlGreaterToGreaterEqual, SqlLessEqualToLess, SqlLessToLessEqual, SqlAscToDesc,
        SqlDescToAsc, SqlNullsLastToFirst, SqlNullsFirstToLast, SqlLeftJoinToInner,
        SqlInnerJoinToLeft, SqlMaxToMin, SqlMinToMax, SqlDropDistinct, SqlOrderByDescending,
    )
}


class SqlOperatorProvider:
    """The `sql` provider Cosmic Ray finds through its `cosmic_ray.operator_providers`
    entry point: operator names `sql/SqlAndToOr` and so on."""

    def __iter__(self) -> Iterator[str]:
        return iter(OPERATORS)

    def __getitem__(self, name: str) -> type:
        return OPERATORS[name]
