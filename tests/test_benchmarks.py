"""The benchmark scripts still run: a quick size of each, checking they report every line.

Timings are not asserted here (the machines are shared and noisy); the scripts
print ratios for people to read. This only keeps them from rotting.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
LINE = re.compile(r"^\S+: .* target(<=|>=)\S+( \S+)? +(PASS|MISS)$", re.MULTILINE)


@pytest.mark.slow
@pytest.mark.parametrize(
    "script",
    ["pit.py", "online.py", "materialize.py", "tracking.py", "pipelines.py", "serving.py",
     "drift.py"],
)
def test_benchmark_runs_and_reports(script):
    if not BENCHMARKS.is_dir():
        pytest.skip("benchmarks/ is not part of this checkout")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--size", "S"],
        capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(LINE.findall(result.stdout)) >= 2, result.stdout
