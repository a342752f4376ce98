"""The pipeline history store on its own: its tables need no other owner's, and its
counts are what the runs say."""

from __future__ import annotations

import uuid
from collections import Counter

from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops.scheduler.history import PipelineHistory
from litemlops.store.sqlite import SQLiteDB

OUTCOMES = ("running", "queued", "skipped", "success", "failed")


def record(history: PipelineHistory, pipeline: str, outcome: str, now: int) -> str:
    """A run of `pipeline` left in `outcome`, through the calls the runner makes."""
    run_id = uuid.uuid4().hex
    busy = outcome in ("queued", "skipped")
    state = history.admit(
        run_id,
        pipeline,
        trigger="manual",
        payload="{}",
        params="{}",
        clock=lambda: now,
        max_active_runs=0 if busy else 10**6,
        on_busy="skip" if outcome == "skipped" else "queue",
    )
    if outcome in ("success", "failed"):
        history.close(run_id, outcome, None if outcome == "success" else "boom", now=now + 1)
    assert history.state(run_id) == outcome, state
    return run_id


@settings(max_examples=examples(40), deadline=None)
@given(runs=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(OUTCOMES)), max_size=25))
def test_counts_are_the_runs_of_each_pipeline_in_each_state(runs):
    db = SQLiteDB(":memory:")
    try:
        history = PipelineHistory(db)
        # Queued last: a run admitted behind a queued one waits too.
        for n, (pipeline, outcome) in enumerate(sorted(runs, key=lambda r: r[1] == "queued")):
            record(history, pipeline, outcome, now=1000 * n)
        expected = sorted((p, s, k) for (p, s), k in Counter(runs).items())
        assert history.counts() == expected
        listed = Counter((r.pipeline, r.state) for r in history.list_runs(limit=100))
        assert listed == Counter(runs)
    finally:
        db.close()


def test_the_history_opens_in_a_file_without_the_trackers_tables(tmp_path):
    db = SQLiteDB(tmp_path / "registry.db")
    try:
        history = PipelineHistory(db)
        run_id = record(history, "nightly", "success", now=5)
        tables = {r["name"] for r in db.read("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"pipeline_runs", "task_runs", "schema_versions"}
        assert history.get_run(run_id).state == "success"
        assert history.counts() == [("nightly", "success", 1)]
    finally:
        db.close()


def test_deleting_runs_removes_their_task_attempts_and_nothing_else():
    db = SQLiteDB(":memory:")
    try:
        history = PipelineHistory(db)
        gone, kept = (record(history, "p", "failed", now=n) for n in (1, 2))
        for run_id in (gone, kept):
            history.start_attempt(run_id, "t", 1, now=3)
            history.fail_attempt(run_id, "t", 1, state="failed", error="e", traceback="tb", now=4)
        assert history.ended_before(3) == [gone]  # they ended at 2 and 3
        history.delete([gone])
        assert [r.run_id for r in history.list_runs()] == [kept]
        assert [(t.task, t.state) for t in history.task_runs(kept)] == [("t", "failed")]
        assert history.last_attempt(gone, "t") == 0 and history.last_attempt(kept, "t") == 1
    finally:
        db.close()
