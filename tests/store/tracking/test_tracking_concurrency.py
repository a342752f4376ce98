"""Threads and processes logging to one tracking database at once: nothing is lost, none waits
long enough to fail ("database is locked" is what MLflow users see here)."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from litemlops.store.tracking.tracker import Tracker

THREADS = 8
PROCESSES = 2
STEPS = 200  # log_metric calls per worker; every 10th step also logs a batch and a tag
BATCH = ("acc", "f1", "auc")
WORK = 20_000  # loop iterations of "training" between log calls
HERE = Path(__file__).resolve().parent

# A process imports this module by name and runs `log_run` on its own Tracker.
CHILD = """
import sys
from test_tracking_concurrency import log_run
from litemlops.store.tracking.tracker import Tracker

with Tracker(sys.argv[1], code_dir=sys.argv[3]) as tracker:
    print("ready", flush=True)
    sys.stdin.readline()  # wait until every worker is ready
    log_run(tracker, sys.argv[2])
"""


def log_run(tracker: Tracker, worker: str) -> None:
    """What one worker logs: a run with params, STEPS metrics, batches and tags."""
    with tracker.start_run("concurrency", worker, tags={"worker": worker}) as run:
        run.log_params({"worker": worker, "steps": STEPS})
        for step in range(STEPS):
            train_a_little()
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 10 == 9:
                run.log_metrics(dict.fromkeys(BATCH, step / STEPS), step=step)
                run.set_tag("last_batch", str(step))


def train_a_little() -> float:
    """Work between two log calls, as a training loop does; the lock is free meanwhile."""
    return sum(i * 0.5 for i in range(WORK))


def metrics_per_run() -> int:
    return STEPS + len(BATCH) * (STEPS // 10)


@pytest.mark.slow
def test_threads_and_processes_log_at_once_without_errors_or_losses(tmp_path):
    path = tmp_path / "registry.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    with Tracker(path, code_dir=tmp_path) as tracker:  # creates the schema
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(path), f"process-{n}", str(tmp_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in range(PROCESSES)
        ]
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        errors: list[BaseException] = []
        start = threading.Barrier(THREADS + 1)

        def worker(name: str) -> None:
            start.wait()
            try:
                log_run(tracker, name)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"thread-{n}",)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        start.wait()
        outputs = [child.communicate(timeout=60) for child in children]
        for thread in threads:
            thread.join(timeout=60)

    assert errors == []
    for child, (_, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr
        assert "database is locked" not in stderr
    workers = THREADS + PROCESSES
    con = sqlite3.connect(path)
    try:
        per_run = dict(
            con.execute(
                "SELECT r.name, count(m.run_id) FROM runs r LEFT JOIN metrics m USING (run_id) "
                "GROUP BY r.run_id"
            ).fetchall()
        )
        assert per_run == {
            **{f"thread-{n}": metrics_per_run() for n in range(THREADS)},
            **{f"process-{n}": metrics_per_run() for n in range(PROCESSES)},
        }
        assert con.execute("SELECT count(*) FROM latest_metrics").fetchone()[0] == workers * (
            1 + len(BATCH)
        )
        latest = con.execute(
            "SELECT DISTINCT value FROM latest_metrics WHERE key = 'loss'"
        ).fetchall()
        assert latest == [(1.0 / STEPS,)]
        assert con.execute("SELECT count(*) FROM params").fetchone()[0] == workers * 2
        assert con.execute("SELECT count(*) FROM run_tags").fetchone()[0] == workers * 2
        statuses = con.execute("SELECT DISTINCT status FROM runs").fetchall()
        assert statuses == [("finished",)]
        # The workers really did overlap: no run had the database to itself ...
        spans = con.execute("SELECT start_time, end_time FROM runs").fetchall()
        for n, (start, end) in enumerate(spans):
            others = spans[:n] + spans[n + 1 :]
            assert any(s < end and start < e for s, e in others)
        # ... and their writes interleaved rather than queueing run after run.
        order = [r[0] for r in con.execute("SELECT run_id FROM metrics ORDER BY rowid")]
        switches = sum(a != b for a, b in itertools.pairwise(order))
        assert switches > 10 * workers
    finally:
        con.close()
