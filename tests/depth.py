"""How deep the property tests search.

`examples(n)` is the number of examples a property test draws: n in an ordinary run,
`DEEP` times n under `HYPOTHESIS_PROFILE=deep` (the README's Set up says so), where
the examples are also drawn afresh on each run instead of from a fixed seed. The
default counts keep the whole suite within minutes on two cores; the deep run is for a
change to the store, the registry or the monitoring core, and for mutation testing.
"""

from __future__ import annotations

import os

DEEP = 10


def deep() -> bool:
    return os.environ.get("HYPOTHESIS_PROFILE") == "deep"


def examples(n: int) -> int:
    return n * DEEP if deep() else n
