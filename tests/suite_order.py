"""What the suite runs and in which order (tests/conftest.py's collection hook).

Tests marked `deep` run under `HYPOTHESIS_PROFILE=deep`; otherwise each is skipped,
saying how to run it. The files with the most tests marked `slow` (and run) come first,
each file's tests in their order: the workers (`--dist loadfile --no-loadscope-reorder`)
take files in this order, so the longest start first instead of ending the run on one
worker while the other idles.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

SKIP_DEEP = pytest.mark.skip(reason="a deep test: runs under HYPOTHESIS_PROFILE=deep")


def arrange(items: list[pytest.Item], *, run_deep: bool) -> None:
    slow: Counter[Path] = Counter()
    for item in items:
        if item.get_closest_marker("deep") is not None and not run_deep:
            item.add_marker(SKIP_DEEP)
        elif item.get_closest_marker("slow") is not None:
            slow[item.path] += 1
    items.sort(key=lambda item: -slow[item.path])
