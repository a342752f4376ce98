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
