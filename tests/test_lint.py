"""Lint and types are part of the tests (settings in pyproject.toml)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ruff_finds_nothing():
    # git keeps no empty directories: benchmarks/ may not exist in a fresh clone,
    # and ruff fails on a missing path.
    paths = [
        p for p in ("litemlops", "tests", "benchmarks", "mutation") if (REPO_ROOT / p).is_dir()
    ]

    result = run_tool("ruff", "check", *paths)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_finds_nothing():
    result = run_tool("mypy")

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_sees_the_types_of_a_tasks_resources():
    # This test module asserts types with `assert_type`, which only mypy checks.
    result = run_tool("mypy", "tests/scheduler/test_task_context.py")

    assert result.returncode == 0, result.stdout + result.stderr


def raises_without_a_check(source: str) -> list[int]:
    """Lines of `pytest.raises` that neither give `match=` nor bind the error (`as e`) and
    assert on it in the same function: such a test passes on any error of that type."""
    import ast

    found = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        asserted = {
            n.id
            for a in ast.walk(func)
            if isinstance(a, ast.Assert)
            for n in ast.walk(a)
            if isinstance(n, ast.Name)
        }
        for node in ast.walk(func):
            if not isinstance(node, ast.Call) or not (
                isinstance(node.func, ast.Attribute) and node.func.attr == "raises"
            ):
                continue
            if any(k.arg == "match" for k in node.keywords):
                continue
            bound = [
                item.optional_vars.id
                for w in ast.walk(func)
                if isinstance(w, ast.With | ast.AsyncWith)
                for item in w.items
                if item.context_expr is node and isinstance(item.optional_vars, ast.Name)
            ]
            if not (bound and bound[0] in asserted):
                found.append(node.lineno)
    return sorted(set(found))


def test_every_pytest_raises_says_which_error_it_expects():
    unchecked = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in sorted((REPO_ROOT / "tests").rglob("*.py"))
        if (lines := raises_without_a_check(path.read_text()))
    }
    assert unchecked == {}, "give match= (or bind the error and assert on it)"


def test_the_raises_check_flags_bare_and_unasserted_uses_only():
    source = (
        "def test_a():\n"
        "    with pytest.raises(E):\n        f()\n"  # 2: bare
        "    with pytest.raises(E, match='x'):\n        f()\n"
        "    with pytest.raises(E) as caught:\n        f()\n"  # 6: bound, never asserted
        "    with pytest.raises(E) as seen:\n        f()\n"
        "    assert seen.value.code == 3\n"
    )
    assert raises_without_a_check(source) == [2, 6]
