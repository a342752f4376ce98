"""Renaming, tagging, deleting and restoring experiments and runs; updating a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from litemlops.errors import AlreadyExistsError, NotFoundError, ValidationError
from litemlops.store.tracking.search import search_runs
from litemlops.store.tracking.tracker import Tracker


@pytest.fixture
def tracker():
    with Tracker() as t:
        yield t


def test_an_experiment_is_renamed_and_keeps_its_runs(tracker):
    with tracker.start_run("old") as run:
        pass
    renamed = tracker.rename_experiment("old", "new")
    assert renamed.name == "new" and renamed.updated_at is not None
    assert tracker.get_run(run.id).experiment == "new"
    with pytest.raises(NotFoundError, match="no experiment 'old'"):
        tracker.get_experiment("old")


def test_renaming_onto_an_existing_name_or_to_nothing_is_refused(tracker):
    tracker.create_experiment("a")
    tracker.create_experiment("b")
    with pytest.raises(AlreadyExistsError, match="exists already"):
        tracker.rename_experiment("a", "b")
    with pytest.raises(ValidationError, match="invalid experiment name '  '"):
        tracker.rename_experiment("a", "  ")
    assert tracker.get_experiment("a").name == "a"


def test_an_experiment_tag_is_set_and_replaced(tracker):
    tracker.create_experiment("e", tags={"team": "x"})
    tracker.set_experiment_tag("e", "team", "y")
    assert tracker.set_experiment_tag("e", "goal", "speed").tags == {"team": "y", "goal": "speed"}


def test_deleting_an_experiment_deletes_its_runs_and_restoring_brings_both_back(tracker):
    with tracker.start_run("e") as deleted_before:
        pass
    with tracker.start_run("e") as run:
        pass
    tracker.delete_run(deleted_before.id)
    assert tracker.delete_experiment("e").lifecycle_stage == "deleted"
    assert tracker.get_run(run.id).lifecycle_stage == "deleted"
    assert tracker.restore_experiment("e").lifecycle_stage == "active"
    assert tracker.get_run(run.id).lifecycle_stage == "active"
    # As in MLflow, restoring an experiment restores every deleted run in it.
    assert tracker.get_run(deleted_before.id).lifecycle_stage == "active"


def test_a_deleted_run_is_left_out_of_a_search_for_active_runs_and_comes_back(tracker):
    with tracker.start_run("e") as gone:
        pass
    with tracker.start_run("e") as kept:
        pass
    tracker.delete_run(gone.id)
    active = "attributes.lifecycle_stage = 'active'"
    assert [r.run_id for r in search_runs(tracker, "e", active).runs] == [kept.id]
    tracker.restore_run(gone.id)
    assert {r.run_id for r in search_runs(tracker, "e", active).runs} == {gone.id, kept.id}


def test_a_tag_is_deleted_and_deleting_a_missing_one_says_so(tracker):
    with tracker.start_run("e", tags={"a": "1", "b": "2"}) as run:
        pass
    tracker.delete_run_tag(run.id, "a")
    assert tracker.get_run(run.id).tags == {"b": "2"}
    with pytest.raises(NotFoundError, match="no tag 'a'"):
        tracker.delete_run_tag(run.id, "a")


def test_update_run_sets_status_end_time_and_name_in_any_order(tracker):
    with tracker.start_run("e") as run:
        pass
    end = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    info = tracker.update_run(run.id, status="failed", end_time=end, name="renamed")
    assert (info.status, info.end_time, info.name) == ("failed", end, "renamed")
    reopened = tracker.update_run(run.id, status="running")
    assert reopened.status == "running" and reopened.end_time is None
    with pytest.raises(ValidationError, match="not 'paused'"):
        tracker.update_run(run.id, status="paused")
    with pytest.raises(NotFoundError, match=r"no run with id '0{32}'"):
        tracker.update_run("0" * 32, status="failed")


def test_metric_points_keep_their_own_steps_and_times(tracker):
    with tracker.start_run("e") as run:
        run.log_metric_points(
            [("loss", 0.5, 2, 2000), ("loss", 0.9, 1, 1000), ("acc", 1.0, None, None)]
        )
        with pytest.raises(ValidationError, match="timestamp"):
            run.log_metric_points([("loss", 0.1, 3, "soon")])  # type: ignore[list-item]
    history = tracker.metric_history(run.id, "loss")
    assert [(m.value, m.step) for m in history] == [(0.9, 1), (0.5, 2)]
    assert tracker.get_run(run.id).metrics == {"loss": 0.5, "acc": 1.0}
