"""How deep the property tests search.

`examples(n)` is the number of examples a property test draws: n under mutation testing
(`HYPOTHESIS_PROFILE=mutation`, which measured mutation/results.md), half of n (at least
one) in a default run, CI's included, and `DEEP` times n under `HYPOTHESIS_PROFILE=deep`
(the README's Set up says so), where the examples are also drawn afresh on each run
instead of from a fixed seed. A test that names no count draws `FULL` examples, or half
of them by default. The default counts keep the whole suite within minutes on two cores;
the deep run is for a change to the store, the registry or the monitoring core.
"""

from __future__ import annotations

import os

DEEP = 10
FULL = 100  # Hypothesis's own default


def deep() -> bool:
    return os.environ.get("HYPOTHESIS_PROFILE") == "deep"


def mutation() -> bool:
    return os.environ.get("HYPOTHESIS_PROFILE") == "mutation"


def examples(n: int) -> int:
    if deep():
        return n * DEEP
    return n if mutation() else max(1, n // 2)
