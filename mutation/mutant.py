"""Cosmic Ray's test command: run the tests that run a mutant's line, through the fork server.

    python mutation/mutant.py PLAN

PLAN (written by run.py) names the module, a copy of its unmutated source, the map of
which tests ran each of its lines (coverage contexts of the unmutated run), the fork
server's socket and the pytest arguments. The mutated lines are found by comparing the
module as Cosmic Ray left it with the copy. The tests run are those whose run executed
the statement holding a mutated line (all of its lines, or a compound statement's
header): a mutant there can only change what those tests see. All of the module's tests
run instead when one of those lines ran at import (code every test depends on) or under
no test (a thread or a subprocess the map cannot attribute), and for a mutant no line
of which differs. Choosing fewer tests can only let a mutant survive that more tests
would kill, never the reverse: a survivor is still a survivor.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import forkserver  # noqa: E402


def changed_lines(original: str, mutated: str) -> list[int]:
    """The original's line numbers (from 1) that the mutated text replaces or removes."""
    before, after = original.splitlines(), mutated.splitlines()
    lines: list[int] = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, before, after).get_opcodes():
        if tag != "equal":
            lines += range(i1 + 1, i2 + 1) if i2 > i1 else [i1, i1 + 1]
    return [n for n in lines if 1 <= n <= len(before)]


def statement_lines(tree: ast.Module, line: int) -> range:
    """The lines of the innermost statement holding `line`: a simple statement whole, a
    compound one's header (up to its body); the line alone outside any statement."""
    holding = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or 0)
    ]  # fmt: skip
    # Statements holding a line nest: the innermost starts last (and ends first on a tie).
    found = max(holding, key=lambda n: (n.lineno, -(n.end_lineno or 0)), default=None)
    if found is None:
        return range(line, line + 1)
    body = getattr(found, "body", None)
    if isinstance(body, list) and body:
        end = max(body[0].lineno - 1, found.lineno)
        if line > end:  # an `else:`, `except ...:` or `finally:` line of a compound statement
            return range(line, line + 1)
        return range(found.lineno, end + 1)
    return range(found.lineno, (found.end_lineno or found.lineno) + 1)


def tests_for(original: str, mutated: str, by_line: dict[int, list[str]]) -> list[str] | None:
    """The test ids to run for this mutant, or None for all of the module's tests."""
    changed = changed_lines(original, mutated)
    if not changed:
        return None
    tree = ast.parse(original)
    chosen: dict[str, None] = {}
    for line in changed:
        lines = set(statement_lines(tree, line)) | {line}
        ran = [context for n in sorted(lines) for context in by_line.get(n, [])]
        if not ran or "" in ran:
            return None
        chosen.update(dict.fromkeys(ran))
    return list(chosen)


def test_id(context: str) -> str:
    """A coverage context ("tests/x.py::test_y[3]|run") as the test it names, parameters
    off ("tests/x.py::test_y" runs each); "" (import time) stays ""."""
    node = context.rsplit("|", 1)[0]
    head, sep, tail = node.partition("::")
    return head + sep + tail.split("[", 1)[0]


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    original = Path(plan["original"]).read_text(encoding="utf-8")
    mutated = Path(plan["module"]).read_text(encoding="utf-8")
    by_line = {int(n): tests for n, tests in json.loads(Path(plan["map"]).read_text()).items()}
    chosen = tests_for(original, mutated, by_line)
    # The quickest first: the first failure ends the run. All the tests are those the
    # unmutated run timed (by id), or without those times the files.
    seconds = plan.get("seconds") or {}
    tests = (chosen if chosen is not None else list(seconds)) or plan["tests"]
    tests.sort(key=lambda test: seconds.get(test, math.inf))
    print(f"running {'all' if chosen is None else len(chosen)} of the module's tests", flush=True)
    return forkserver.run(plan["socket"], [*plan["pytest"], *tests], budget(plan, chosen))


def budget(plan: dict, chosen: list[str] | None) -> float | None:
    """Seconds the chosen tests may take: a few times what they took unmutated (all of
    them, for all the tests); None without those times."""
    seconds = plan.get("seconds")
    if not seconds:
        return None
    spent = sum(seconds.values()) if chosen is None else sum(seconds.get(t, 0.0) for t in chosen)
    return SLACK * spent + 30


SLACK = 4  # times the unmutated run: a loaded machine, and a mutant that does more work


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
