"""Tracking and registry: logging, models, search and import time against plain references.

Everything is file-backed in a temporary directory, as in production; the
tracking database has the store's pragmas (WAL, synchronous=FULL) and so does
every raw sqlite3 reference. Run: `.venv/bin/python benchmarks/tracking.py --size M`.
"""

from __future__ import annotations

import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from _harness import paired, report, setup

from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.search import search_runs
from litemlops.store.tracking.signature import infer_signature
from litemlops.store.tracking.tracker import Tracker

EXPERIMENT = "bench"
T0_MS = 1_767_225_600_000  # 2026-01-01


@dataclass(frozen=True)
class Size:
    """How much each measurement does."""

    calls: int  # log_metric calls per timed block
    repeat: int  # timed blocks (best one counts)
    runs: int  # runs in the searched experiment


SIZES = {
    "XS": Size(calls=50, repeat=2, runs=2_000),  # the test suite's: checks the script
    "S": Size(calls=200, repeat=5, runs=10_000),
    "M": Size(calls=500, repeat=9, runs=100_000),
}

METRICS_DDL = """
CREATE TABLE metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL NOT NULL,
                      step INTEGER NOT NULL, timestamp INTEGER NOT NULL);
CREATE INDEX metrics_by_run ON metrics (run_id, key, step)
"""
# What most people write (and what MLflow's SQL store does): join the filtered and
# the ordered metric to the runs, sort everything, take the top.
SEARCH_SQL = """
SELECT r.run_id FROM runs r
JOIN latest_metrics f ON f.run_id = r.run_id AND f.key = 'accuracy'
LEFT JOIN latest_metrics o ON o.run_id = r.run_id AND o.key = 'loss'
WHERE r.experiment_id = ? AND f.value > ?
ORDER BY o.value IS NULL, o.value {direction}, r.run_id
LIMIT ?
"""


def describe(label: str, size: Size) -> str:
    return (
        f"# size {label}: {size.calls} calls x {size.repeat} blocks, {size.runs:,} runs "
        f"searched | python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"scikit-learn {sklearn.__version__}, joblib {joblib.__version__}"
    )


def raw_connection(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the tracking database's pragmas."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    return con


def bench_logging(tmp: Path, size: Size, tracker: Tracker) -> None:
    ref = raw_connection(tmp / "reference.db")
    ref.executescript(METRICS_DDL)
    run = tracker.start_run("logging", "bench")
    run_id = run.id
    step = iter(range(10**9))

    def ours() -> None:
        for _ in range(size.calls):
            run.log_metric("loss", 0.5, step=next(step))

    def reference() -> None:
        for _ in range(size.calls):
            ref.execute(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
                (run_id, "loss", 0.5, next(step), int(time.time() * 1000)),
            )
            ref.commit()

    t_ours, t_ref = paired(ours, reference, size.repeat)
    print(
        f"# log_metric: best of {size.repeat} blocks of {size.calls} calls; reference: "
        "INSERT into a table of the same shape + commit, WAL, synchronous=FULL"
    )
    report(
        "log_metric",
        min(t_ours) / size.calls * 1e6,
        "us",
        2,
        reference=min(t_ref) / size.calls * 1e6,
        on_ratio=True,
    )

    batch = {f"metric_{i}": i / 1000 for i in range(1000)}
    now = int(time.time() * 1000)

    def ours_batch() -> None:
        run.log_metrics(batch, step=next(step))

    def reference_batch() -> None:
        s = next(step)
        ref.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
            [(run_id, k, v, s, now) for k, v in batch.items()],
        )
        ref.commit()

    t_ours, t_ref = paired(ours_batch, reference_batch, size.repeat * 2)
    print(
        f"# log_metrics: {len(batch)} values per call, {len(batch) / min(t_ours):,.0f} metrics/s "
        "(target >= 50,000/s, i.e. <= 20 ms a call); reference: executemany + commit"
    )
    report("log_metrics_1000", min(t_ours) * 1e3, "ms", 20, reference=min(t_ref) * 1e3)
    run.end()
    ref.close()


def bench_models(tmp: Path, size: Size, tracker: Tracker) -> None:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=500, n_features=8, random_state=0)
    model = LogisticRegression(max_iter=200).fit(X, y)
    signature = infer_signature(X, y)
    run = tracker.start_run("models", "bench")
    models = iter(range(10**9))
    fresh = {"model": model}

    def new_model() -> None:
        # Each run of either side saves a model it has not saved before: stored
        # objects are content-addressed, and a repeat would skip the write.
        clone = LogisticRegression(max_iter=200).fit(X, y)
        clone.coef_ = clone.coef_ + next(models) * 1e-9
        fresh["model"] = clone

    names = iter(range(10**9))

    def ours() -> None:
        # A logged model never changes, so each call logs under a new name.
        run.log_model(fresh["model"], f"model{next(names)}", signature=signature)

    def reference() -> None:
        joblib.dump(fresh["model"], tmp / "reference.joblib")

    t_ours, t_ref = paired(ours, reference, size.repeat * 2, before=new_model)
    print(
        "# log_model: a fitted LogisticRegression (8 features) with its signature, written "
        "atomically and fsynced, sha256 and environment recorded; reference: joblib.dump to a file"
    )
    report("log_model", min(t_ours) * 1e3, "ms", 20, reference=min(t_ref) * 1e3)

    registry = ModelRegistry(tracker)
    run.end()
    version = registry.register_model(f"runs:/{run.id}/model0", "bench-model")
    registry.set_alias("bench-model", "champion", version.version)
    stored = tracker.artifacts.path(version.sha256)
    calls = 50

    def ours_load() -> None:
        for _ in range(calls):
            registry.load_model("bench-model@champion")

    def reference_load() -> None:
        for _ in range(calls):
            joblib.load(stored)

    loaded = registry.load_model("bench-model@champion")
    plain = joblib.load(stored)
    if not np.array_equal(loaded.predict(X), plain.predict(X)):
        raise AssertionError("the registry's model predicts differently from the file's")
    t_ours, t_ref = paired(ours_load, reference_load, size.repeat)
    print(
        f"# load_model by alias, warm: best of {size.repeat} blocks of {calls}; resolves the "
        "alias, reads and hashes the file, unpickles; reference: joblib.load of the same file"
    )
    report(
        "load_model_alias_warm",
        min(t_ours) / calls * 1e3,
        "ms",
        2,
        reference=min(t_ref) / calls * 1e3,
    )


def populate(path: Path, runs: int, random_state: int = 0) -> int:
    """Write `runs` finished runs straight into the tables; return the experiment id.

    Loss is uniform; accuracy falls as loss rises (plus noise) and is missing
    from 5% of runs; each run has three params and two tags. A tenth as many
    runs again go to a second experiment, which searches must leave out.
    """
    rng = random.Random(random_state)
    with Tracker(path) as tracker:
        experiment = tracker.create_experiment(EXPERIMENT).experiment_id
        other = tracker.create_experiment("other").experiment_id
    rows: dict[str, list[tuple[Any, ...]]] = {k: [] for k in ("runs", "p", "t", "lm", "m")}
    for i in range(runs + runs // 10):
        run_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        exp = experiment if i < runs else other
        start = T0_MS + i * 1000
        status = "finished" if rng.random() < 0.9 else "failed"
        rows["runs"].append((run_id, exp, f"run-{i}", status, start, start + 600_000))
        rows["p"] += [
            (run_id, "lr", str(rng.choice((0.1, 0.03, 0.01, 0.003)))),
            (run_id, "depth", str(rng.randint(2, 12))),
            (run_id, "model", rng.choice(("gbm", "linear", "mlp"))),
        ]
        rows["t"] += [(run_id, "team", rng.choice(("ads", "search"))), (run_id, "git", "abc")]
        loss = rng.random()
        values = {"loss": loss, "f1": rng.random()}
        if rng.random() >= 0.05:
            values["accuracy"] = min(1.0, max(0.0, 1 - loss + rng.gauss(0, 0.05)))
        for key, value in values.items():
            rows["lm"].append((run_id, key, value, 99, start, exp))
            rows["m"].append((run_id, key, value, 99, start))
    con = raw_connection(path)
    with con:
        con.executemany(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows["runs"],
        )
        con.executemany("INSERT INTO params VALUES (?, ?, ?)", rows["p"])
        con.executemany("INSERT INTO run_tags VALUES (?, ?, ?)", rows["t"])
        con.executemany("INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?)", rows["lm"])
        con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows["m"])
    con.close()
    return experiment


def bench_search(tmp: Path, size: Size) -> None:
    path = tmp / "search.db"
    started = time.perf_counter()
    experiment = populate(path, size.runs)
    print(
        f"# search: {size.runs:,} runs (+{size.runs // 10:,} in another experiment) written "
        f"in {time.perf_counter() - started:.1f} s, outside the timing"
    )
    ref = raw_connection(path)
    with Tracker(path) as tracker:
        cases = [
            # (name, filter threshold, loss direction): accuracy falls as loss rises,
            # so DESC finds the runs that pass the filter only at the end of the order.
            ("search_runs_filter_order", 0.5, "ASC"),
            ("search_runs_filter_order_anticorrelated", 0.5, "DESC"),
            ("search_runs_selective_filter_order", 0.98, "DESC"),
        ]
        for name, threshold, direction in cases:
            query: dict[str, Any] = {
                "experiments": EXPERIMENT,
                "filter_string": f"metrics.accuracy > {threshold}",
                "order_by": [f"metrics.loss {direction}"],
                "max_results": 100,
            }
            sql = SEARCH_SQL.format(direction=direction)
            args = (experiment, threshold, 100)
            page = search_runs(tracker, **query)
            want = [r[0] for r in ref.execute(sql, args)]
            if [r.run_id for r in page.runs] != want:
                raise AssertionError(f"{name}: search_runs and the reference SQL disagree")

            def ours(query: dict[str, Any] = query) -> None:
                search_runs(tracker, **query)

            def reference(sql: str = sql, args: tuple[Any, ...] = args) -> None:
                ref.execute(sql, args).fetchall()

            t_ours, t_ref = paired(ours, reference, size.repeat)
            print(
                f"# {name}: accuracy > {threshold}, loss {direction}, first page of 100 with "
                "params, metrics and tags; reference: join + sort + LIMIT, run ids only"
            )
            report(name, min(t_ours) * 1e3, "ms", 100, reference=min(t_ref) * 1e3)
        token: str | None = None
        skipped = 0
        while skipped < size.runs - 100:
            step = min(50_000, size.runs - 100 - skipped)
            page = search_runs(tracker, EXPERIMENT, max_results=step, page_token=token)
            token, skipped = page.next_page_token, skipped + step
        last = search_runs(tracker, EXPERIMENT, max_results=100, page_token=token)
        if last.next_page_token is not None or len(last.runs) != 100:
            raise AssertionError("the last page is not the last 100 runs")
        times = []
        for _ in range(size.repeat):
            start = time.perf_counter()
            search_runs(tracker, EXPERIMENT, max_results=100, page_token=token)
            times.append(time.perf_counter() - start)
        print(
            f"# search_runs_last_page: default order (newest first), the page after "
            f"{skipped:,} runs, by token (keyset: no OFFSET to skip)"
        )
        report("search_runs_last_page", min(times) * 1e3, "ms", 100)
    ref.close()


def bench_import(size: Size) -> None:
    def best(code: str) -> float:
        times = []
        for _ in range(size.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    baseline = best("pass")
    print(f"# import: a new interpreter each time, best of {size.repeat}; reference: -c pass")
    report("import_litemlops", best("import litemlops"), "s", 0.3, reference=baseline)
    report(
        "import_tracking",
        best("from litemlops.store.tracking.tracker import Tracker"),
        "s",
        0.3,
        reference=baseline,
    )


def main() -> None:
    _, size = setup(
        "tracking: logging, models, search, import / raw sqlite3, joblib, python", SIZES, describe
    )
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with Tracker(tmp / "registry.db") as tracker:
            bench_logging(tmp, size, tracker)
            bench_models(tmp, size, tracker)
        bench_search(tmp, size)
    bench_import(size)


if __name__ == "__main__":
    main()
