"""A model's feature references: recorded as a structured artifact of its training run,
and still read from the comma-joined param of runs trained before that."""

from __future__ import annotations

import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litemlops.serving.lineage import FEATURE_REFS_ARTIFACT, feature_refs, log_feature_refs
from litemlops.store.tracking.tracker import Tracker

name = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z")
refs = st.lists(st.builds(lambda v, f: f"{v}:{f}", name, name), min_size=1, max_size=6)
EXAMPLES = settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def tracker(tmp_path):
    with Tracker(tmp_path / "registry.db", code_dir=tmp_path) as t:
        yield t


@EXAMPLES
@given(refs=refs)
def test_recorded_references_read_back_in_order(tracker, refs):
    with tracker.start_run("m") as run:
        log_feature_refs(run, refs)

    assert feature_refs(tracker, run.id) == tuple(refs)


@EXAMPLES
@given(refs=refs)
def test_a_run_with_only_the_old_param_still_tells_its_references(tracker, refs):
    with tracker.start_run("m") as run:
        run.log_params({"features": ", ".join(refs)})

    assert feature_refs(tracker, run.id) == tuple(refs)
    # A version's lineage froze the params: they are read from there, not the run.
    assert feature_refs(tracker, run.id, {"features": "v:a"}) == ("v:a",)


def test_the_record_wins_over_the_param(tracker):
    with tracker.start_run("m") as run:
        run.log_params({"features": "old:x"})
        log_feature_refs(run, ["new:y", "new:z"])

    assert feature_refs(tracker, run.id, {"features": "old:x"}) == ("new:y", "new:z")


def test_a_run_without_references_has_none(tracker):
    with tracker.start_run("m") as run:
        run.log_params({"features": ""})
    with tracker.start_run("m") as other:
        other.log_dict({"features": "not a list"}, FEATURE_REFS_ARTIFACT)

    assert feature_refs(tracker, run.id) is None
    assert feature_refs(tracker, other.id) is None
