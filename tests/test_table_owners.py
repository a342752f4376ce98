"""Each table of registry.db has one owner, and the edges hold no SQL (DESIGN.md).

Read with `ast` from every module's source: string literals (f-strings with their
holes as `{}`) that look like SQL, the tables they name, and calls that run SQL.
The tables are those of the committed schema fixture, so this test needs no import
of the code it checks.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "litemlops"
FIXTURE = Path(__file__).parent / "store" / "tracking" / "fixtures" / "registry_schema.sql"
EDGES = ("litemlops.server", "litemlops.cli")

SQL = re.compile(
    r"\b(SELECT\s+[\w*(]|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
    r"|CREATE\s+(TEMP\s+|UNIQUE\s+)?(TABLE|INDEX|VIEW)\s|ALTER\s+TABLE\s|DROP\s+TABLE\s"
    r"|PRAGMA\s+\w)"
)
NAMED = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|EXISTS)\s+(\w+)|\bON\s+(\w+)\s*\(")
CREATED = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)")
RUNS_SQL = {"execute", "executemany", "executescript"}

# The tracking package's modules split one store (runs, search, registry): its
# tables are the package's; every other owner is one module.
OWNER_SCOPE = {"litemlops.store.tracking.tracking_db": "litemlops.store.tracking"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules(package: Path = PACKAGE) -> dict[str, ast.Module]:
    return {
        module_name(p): ast.parse(p.read_text(encoding="utf-8"))
        for p in sorted(package.rglob("*.py"))
    }


def strings(tree: ast.Module) -> list[str]:
    """Every string literal, an f-string as its text with `{}` for each hole."""
    found = []
    inside_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstrings.add(id(value))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                else:
                    parts.append("{}")
            found.append("".join(parts))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in inside_fstrings
        ):
            found.append(node.value)
    return found


def sql_of(tree: ast.Module) -> list[str]:
    return [s for s in strings(tree) if SQL.search(s)]


def sql_calls(tree: ast.Module) -> list[str]:
    """Calls that run SQL or reach a store's database: `.execute(...)`, `x.db.read(...)`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func
            if attr.attr in RUNS_SQL:
                found.append(f"line {node.lineno}: .{attr.attr}(...)")
            elif isinstance(attr.value, ast.Attribute) and attr.value.attr == "db":
                found.append(f"line {node.lineno}: .db.{attr.attr}(...)")
    return found


def registry_tables() -> set[str]:
    return set(re.findall(r"^-- table (\w+) on ", FIXTURE.read_text(), re.MULTILINE))


def within(module: str, scope: str) -> bool:
    return module == scope or module.startswith(scope + ".")


def edges_sql(trees: dict[str, ast.Module]) -> dict[str, list[str]]:
    return {
        name: [*sql_calls(tree), *(f"SQL {s.strip()[:60]!r}" for s in sql_of(tree))]
        for name, tree in trees.items()
        if any(within(name, edge) for edge in EDGES)
    }


def creators(trees: dict[str, ast.Module], tables: set[str]) -> dict[str, set[str]]:
    made: dict[str, set[str]] = {t: set() for t in tables}
    for name, tree in trees.items():
        for text in sql_of(tree):
            for table in CREATED.findall(text):
                if table in made:
                    made[table].add(name)
    return made


def trespassers(trees: dict[str, ast.Module], tables: set[str]) -> dict[str, set[str]]:
    """For each table, the modules outside its owner's scope whose SQL names it."""
    made = creators(trees, tables)
    found: dict[str, set[str]] = {}
    for name, tree in trees.items():
        for text in sql_of(tree):
            for a, b in NAMED.findall(text):
                table = a or b
                if table not in made or len(made[table]) != 1:
                    continue
                (owner,) = made[table]
                if not within(name, OWNER_SCOPE.get(owner, owner)):
                    found.setdefault(table, set()).add(name)
    return found


def test_no_server_or_cli_module_holds_sql_or_reaches_a_database():
    assert {name: hits for name, hits in edges_sql(modules()).items() if hits} == {}


def test_each_registry_table_is_created_by_exactly_one_module():
    tables = registry_tables()
    assert {"runs", "pipeline_runs", "alert_states", "schema_versions"} <= tables
    made = creators(modules(), tables)
    assert {t: sorted(m) for t, m in made.items() if len(m) != 1} == {}


@pytest.mark.slow
def test_only_a_tables_owner_names_it_in_sql():
    assert trespassers(modules(), registry_tables()) == {}


def test_the_scans_find_what_they_look_for():
    """The scans see SQL hidden in an f-string, a call through `.db`, and a trespass."""
    tree = ast.parse(
        "def f(tracker, con, table):\n"
        "    tracker.db.read(f'SELECT pipeline, count(*) FROM pipeline_runs WHERE x = {table}')\n"
        "    con.execute('UPDATE task_runs SET state = ? WHERE run_id = ?')\n"
        "    return 'Select a run to see it'\n"
    )
    assert len(sql_calls(tree)) == 2 and len(sql_of(tree)) == 2
    owner = ast.parse("S = 'CREATE TABLE pipeline_runs (x); CREATE TABLE task_runs (y)'")
    trees = {"litemlops.scheduler.history": owner, "litemlops.server.app": tree}
    assert edges_sql(trees)["litemlops.server.app"]
    assert trespassers(trees, {"pipeline_runs", "task_runs"}) == {
        "pipeline_runs": {"litemlops.server.app"},
        "task_runs": {"litemlops.server.app"},
    }
