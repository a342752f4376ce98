"""What every benchmark shares: the --size flag, paired timing, result lines, peak RSS.

Ours and the reference run in the same process, interleaved and in alternating
order, so load from other processes on a shared machine hits both alike; the
best of several repetitions is the least disturbed run of each.
"""

from __future__ import annotations

import argparse
import logging
import platform
import resource
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from _data import Size


def setup(
    description: str,
    sizes: Mapping[str, Any] | None = None,
    describe: Callable[[str, Any], str] | None = None,
) -> tuple[str, Any]:
    """Parse `--size`, silence info events (they would be timed too), print the header.

    sizes: the script's sizes by label (default: the feature store's, from `_data`);
    describe(label, size): the second header line (default: those sizes and versions).
    """
    if sizes is None:
        from _data import SIZES as sizes  # pandas and the store: only scripts that use them
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--size",
        choices=sorted(sizes),
        default="S",
        help="XS: the test suite's, only checks the script runs; S: a quick check; "
        "M: the size the targets are set for (default: S)",
    )
    args = parser.parse_args()
    # The benchmark is the application here, so it may configure logging.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    size = sizes[args.size]
    print(f"# {description}")
    print((describe or _feature_sizes)(args.size, size))
    sys.stdout.flush()
    return args.size, size


def _feature_sizes(label: str, size: Size) -> str:
    import sqlite3

    import duckdb

    return (
        f"# size {label}: {size.rows:,} feature rows, {size.drivers:,} drivers | "
        f"python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, sqlite {sqlite3.sqlite_version}"
    )


def paired(
    ours: Callable[[], Any],
    reference: Callable[[], Any],
    repeat: int,
    warmup: int = 1,
    before: Callable[[], Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Seconds per run of `ours` and `reference`, interleaved, order alternating.

    `before` runs untimed ahead of every run of either (to build fresh state).
    """
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(warmup + repeat):
        order = ((0, ours), (1, reference)) if i % 2 == 0 else ((1, reference), (0, ours))
        for which, fn in order:
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[which].append(elapsed)
    return times


def report(
    name: str,
    value: float,
    unit: str,
    target: float,
    reference: float | None = None,
    on_ratio: bool = False,
) -> None:
    """Print `name: value unit  (reference: ...)  ratio=R  target<=T  PASS|MISS`.

    The target bounds the ratio when `on_ratio`, else the value itself.
    """
    ratio = value / reference if reference else None
    checked = ratio if on_ratio else value
    verdict = "PASS" if checked is not None and checked <= target else "MISS"
    ref = f"{_num(reference)} {unit}" if reference is not None else "none"
    shown_ratio = f"{ratio:.2f}" if ratio is not None else "-"
    shown_target = f"{target:g}" if on_ratio else f"{_num(target)} {unit}"
    print(
        f"{name}: {_num(value)} {unit}  (reference: {ref})  ratio={shown_ratio}  "
        f"target<={shown_target}  {verdict}"
    )
    sys.stdout.flush()


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20
