"""Online serving: `get_online_features` latency against a raw sqlite3 point query.

Both read file-backed SQLite databases in a temporary directory, as in
production: ours the store's online file after `materialize`, the reference a
table keyed by `driver_id` (INTEGER PRIMARY KEY) holding the same latest rows.
Run: `.venv/bin/python benchmarks/online.py --size M`.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _data import (
    END,
    FEATURES,
    FIRST_DRIVER_ID,
    REFS,
    VIEW,
    definitions,
    driver_stats,
    latest_per_driver,
)
from _harness import report, setup

from litemlops.store import FeatureStore

TARGET_P50_US = 150
TARGET_P99_US = 1000
CALLS = {"XS": 500, "S": 2_000, "M": 10_000}
WARMUP = 500
BLOCK = 500  # calls per turn; turns alternate between ours and the reference

EPOCH = pd.Timestamp(0, tz="UTC")
REFERENCE_SQL = "SELECT driver_id, {cols} FROM driver_stats WHERE driver_id IN ({marks})"


def reference_db(path: Path, stats: pd.DataFrame) -> sqlite3.Connection:
    """The hand-written serving table: one row per driver, keyed by driver_id."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE driver_stats (driver_id INTEGER PRIMARY KEY, conv_rate REAL, "
        "acc_rate REAL, avg_daily_trips INTEGER, event_us INTEGER NOT NULL)"
    )
    latest = latest_per_driver(stats)
    rows = zip(
        latest["driver_id"].tolist(),
        *(latest[c].astype(object).where(latest[c].notna(), None).tolist() for c in FEATURES),
        ((latest["datetime"] - EPOCH) // pd.Timedelta(microseconds=1)).tolist(),
        strict=True,
    )
    con.execute("BEGIN")
    con.executemany("INSERT INTO driver_stats VALUES (?, ?, ?, ?, ?)", rows)
    con.execute("COMMIT")
    return con


def latencies(
    ours: Callable[[Any], Any],
    reference: Callable[[Any], Any],
    requests: Sequence[tuple[Any, Any]],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-call seconds of `ours(a)` and `reference(b)` over `requests` of (a, b) pairs."""
    timed: tuple[list[float], list[float]] = ([], [])
    clock = time.perf_counter
    for fn, which in ((ours, 0), (reference, 1)):
        for arg in requests[:WARMUP]:
            fn(arg[which])
    for start in range(0, len(requests), BLOCK):
        block = requests[start : start + BLOCK]
        turns = ((ours, 0), (reference, 1))
        for fn, which in turns if start // BLOCK % 2 == 0 else reversed(turns):
            out = timed[which]
            for arg in block:
                t0 = clock()
                fn(arg[which])
                out.append(clock() - t0)
    return np.array(timed[0]), np.array(timed[1])


def check_same(fs: FeatureStore, ref: sqlite3.Connection, ids: list[int]) -> None:
    """Raise unless the store serves, for `ids`, exactly what the reference table holds."""
    got = fs.get_online_features(REFS, [{"driver_id": i} for i in ids])
    marks = ", ".join("?" * len(ids))
    sql = REFERENCE_SQL.format(cols=", ".join(FEATURES), marks=marks)
    want = {row[0]: row[1:] for row in ref.execute(sql, ids).fetchall()}
    for n, driver in enumerate(ids):
        mine = tuple(got[c][n] for c in FEATURES)
        theirs = want.get(driver, (None,) * len(FEATURES))
        if mine != theirs:
            raise AssertionError(f"driver {driver}: ours {mine}, reference {theirs}")


def main() -> None:
    label, size = setup("online serving: get_online_features / raw sqlite3 point query")
    calls = CALLS[label]
    stats = driver_stats(size.rows, size.drivers, random_state=0)
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "features.duckdb"
        with FeatureStore(store_path, clock=lambda: END) as fs:
            fs.apply(list(definitions()))
            fs.ingest(VIEW, stats)
            fs.materialize(end=END)
            ref = reference_db(Path(tmp) / "reference.db", stats)
            # A few ids (about 1%) are unknown, as in real traffic.
            every = list(range(FIRST_DRIVER_ID, FIRST_DRIVER_ID + int(size.drivers * 1.01)))
            check_same(fs, ref, every)
            print(
                f"# online values equal for {len(every):,} drivers; online file "
                f"{store_path.with_suffix('.online.db').name} (WAL), reference "
                "INTEGER PRIMARY KEY table in its own file"
            )
            sql_by_n: dict[int, str] = {}

            def reference(ids: tuple[int, ...]) -> list[Any]:
                sql = sql_by_n.get(len(ids))
                if sql is None:
                    marks = ", ".join("?" * len(ids))
                    sql = sql_by_n[len(ids)] = REFERENCE_SQL.format(
                        cols=", ".join(FEATURES), marks=marks
                    )
                return ref.execute(sql, ids).fetchall()

            def ours(rows: list[dict[str, int]]) -> Any:
                return fs.get_online_features(REFS, rows)

            results = {}
            for n in (1, 5):
                picks = rng.choice(every, (calls, n), replace=True).tolist()
                requests = [([{"driver_id": i} for i in p], tuple(p)) for p in picks]
                results[n] = latencies(ours, reference, requests)
            ref.close()
    print(
        f"# {calls:,} timed calls each after {WARMUP} warm-up calls, in alternating blocks "
        f"of {BLOCK}; 1-entity lines are held to the 5-entity targets"
    )
    for n, (t_ours, t_ref) in results.items():
        name = f"get_online_features_{n}_entit{'y' if n == 1 else 'ies'}"
        for pct, target in ((50, TARGET_P50_US), (99, TARGET_P99_US)):
            report(
                f"{name}_p{pct}",
                float(np.percentile(t_ours, pct) * 1e6),
                "us",
                target,
                reference=float(np.percentile(t_ref, pct) * 1e6),
            )


if __name__ == "__main__":
    main()
