"""How many examples a property test draws in each kind of run (tests/depth.py)."""

import os

import pytest
from depth import DEEP, FULL, examples
from hypothesis import settings


@pytest.mark.parametrize(
    ("profile", "fifteen", "one"),
    [(None, 7, 1), ("ci", 7, 1), ("mutation", 15, 1), ("deep", 15 * DEEP, DEEP)],
)
def test_a_default_run_draws_half_mutation_testing_all_and_a_deep_run_ten_times(
    monkeypatch, profile, fifteen, one
):
    if profile is None:
        monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    else:
        monkeypatch.setenv("HYPOTHESIS_PROFILE", profile)
    assert (examples(15), examples(1)) == (fifteen, one)


def test_a_test_naming_no_count_draws_what_its_run_draws_by_the_same_rule():
    # The profile this run loaded: a missing or wrong one draws Hypothesis's own 100.
    assert (
        settings().max_examples
        == examples(FULL)
        == {"deep": 1000, "mutation": 100}.get(os.environ.get("HYPOTHESIS_PROFILE", ""), 50)
    )
