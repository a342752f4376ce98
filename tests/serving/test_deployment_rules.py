"""The deployment modules' rules on hand-built numbers, without a service: quantiles
against a sorted-list definition, each canary check at its threshold, the A/B stopping
rule, every bound a deployment request can cross, the tables' joins and dedupe, and the
reservoir that keeps a window's samples."""

from __future__ import annotations

import math
import random
import sys
import threading
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops.errors import ValidationError
from litemlops.serving.deployment_live import SAMPLE_CAP, Arm, LiveDeployment, Sample, Window
from litemlops.serving.deployment_report import (
    MIN_LABELS,
    Verdict,
    ab_decision,
    arm_outcomes,
    canary_verdict,
    quantile,
    to_score_precision,
    window_figures,
)
from litemlops.serving.deployment_spec import CanaryChecks, DeploymentSpec
from litemlops.serving.deployment_store import (
    MIGRATIONS,
    ArmOutcomes,
    DeploymentRecord,
    DeploymentStore,
)
from litemlops.serving.errors import DeploymentConflictError, DeploymentNotFoundError
from litemlops.serving.routing import ThompsonRouter, sticky_fraction
from litemlops.serving.stats import compare_rates, wilson_interval
from litemlops.store.sqlite import Schema, SQLiteDB, migrate

# -- quantile and a window's figures ------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float:
    """The least value with at least a fraction q of the values at or below it."""
    ordered = sorted(values)
    return next((v for i, v in enumerate(ordered) if i + 1 >= q * len(ordered)), ordered[-1])


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60), st.floats(0.0, 2.0))
def test_quantile_is_the_nearest_rank_of_the_sorted_values(values: list[float], q: float):
    assert quantile(values, q) == nearest_rank(values, q)


def test_quantile_ends_are_the_least_and_greatest_value():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert quantile(values, 0.0) == 1.0
    assert quantile(values, 1.0) == 5.0
    assert quantile(values, 1.5) == 5.0
    assert quantile(values, 0.5) == 3.0


def test_quantile_of_nothing_is_none():
    assert quantile([], 0.5) is None


def window(requests: int = 0, errors: int = 0, latency: Any = (), scores: Any = ()) -> Window:
    return Window(requests, errors, Sample(list(latency)), Sample(list(scores)))


def test_window_figures_give_rates_and_quantiles_and_none_without_data():
    figures = window_figures(window(4, 1, [1.0, 2.0, 3.0, 10.0], [0.25, 0.75]))
    assert figures == {
        "requests": 4, "errors": 1, "error_rate": 0.25, "p50_ms": 2.0, "p99_ms": 10.0,
        "mean_score": 0.5,
    }  # fmt: skip
    empty = window_figures(window())
    assert empty["error_rate"] is None and empty["p50_ms"] is None
    assert empty["mean_score"] is None


# -- the canary's checks ------------------------------------------------------------------

CHECKS = CanaryChecks(max_error_increase=0.1, max_latency_ratio=2.0, latency_floor_ms=2.0,
                      max_score_drift=0.5, min_requests=50, alpha=0.05)  # fmt: skip
N = CHECKS.min_requests


def verdict(champion: Window, challenger: Window, outcomes: Any = (), **kw: Any) -> Any:
    return canary_verdict(kw.pop("checks", CHECKS), champion, challenger, outcomes, **kw)


def test_a_challenger_like_the_champion_passes_a_final_interval():
    v = verdict(window(N, 0, [5.0] * N, range(N)), window(N, 0, [5.0] * N, range(N)))
    assert (v.passed, v.failed) == (True, None)
    assert v.figures["score_drift"] == 0.0


def test_an_interval_that_has_not_ended_never_passes():
    v = verdict(window(N, 0, [5.0] * N), window(N, 0, [5.0] * N), final=False)
    assert (v.passed, v.failed) == (None, None)


@pytest.mark.parametrize(
    ("champion", "challenger", "passed"),
    [((N, N), (N, N), True), ((N - 1, N), (N, N), None), ((N, N), (N - 1, N), None)],
)
def test_an_interval_is_judged_only_when_both_arms_have_min_requests(
    champion: tuple[int, int], challenger: tuple[int, int], passed: bool | None
):
    v = verdict(window(champion[0], 0, [1.0] * champion[1]),
                window(challenger[0], 0, [1.0] * challenger[1]))  # fmt: skip
    assert (v.passed, v.failed) == (passed, None)


@pytest.mark.parametrize(
    ("champion_errors", "challenger_errors", "failed"),
    [(0, 10, None), (0, 11, "error_rate"), (5, 15, None), (2, 20, "error_rate"),
     # 11 % against 5 %: over the allowed increase, but not beyond chance yet
     (5, 16, None), (5, 5, None), (5, 6, None), (50, 0, None)],
)  # fmt: skip
def test_the_error_rate_check_fails_above_the_allowed_increase_beyond_chance(
    champion_errors: int, challenger_errors: int, failed: str | None
):
    v = verdict(window(100, champion_errors, [1.0] * 100), window(100, challenger_errors))
    assert v.failed == failed
    assert v.passed is (not failed)


def test_the_error_rate_check_takes_an_always_valid_p_below_alpha():
    from litemlops.serving.stats import compare_rates

    p = compare_rates(0, 100, 11, 100).always_valid_p
    champion, challenger = window(100, 0, [1.0] * 100), window(100, 11)
    assert verdict(champion, challenger, checks=replace(CHECKS, alpha=p)).failed is None
    at = replace(CHECKS, alpha=p * (1 + 1e-9))
    assert verdict(champion, challenger, checks=at).failed == "error_rate"


def test_the_error_rate_check_needs_min_requests_of_the_challenger_only():
    # The champion has too few requests to judge a pass, but a failure rolls back at once.
    v = verdict(window(N - 1, 0), window(N, N), final=False)
    assert (v.passed, v.failed) == (False, "error_rate")
    short = verdict(window(N - 1, 0), window(N - 1, N - 1))
    assert (short.passed, short.failed) == (None, None)


def test_the_error_rate_check_waits_while_the_champion_has_no_requests():
    v = verdict(window(0, 0), window(N, N))
    assert (v.passed, v.failed) == (None, None)
    assert "errors" not in v.figures


def test_the_error_rate_check_judges_a_champion_of_one_request():
    lenient = replace(CHECKS, alpha=0.1)
    assert compare_rates(0, 1, N, N).always_valid_p < lenient.alpha
    v = verdict(window(1, 0), window(N, N), checks=lenient, final=False)
    assert (v.passed, v.failed) == (False, "error_rate")


@pytest.mark.parametrize(
    ("champion_ms", "challenger_ms", "failed"),
    [(10.0, 20.0, None), (10.0, 20.5, "latency_p99"), (10.0, 15.0, None),
     (1.0, 3.0, None), (1.0, 3.5, "latency_p99"), (0.5, 2.5, None), (10.0, 11.0, None)],
)  # fmt: skip
def test_the_latency_check_needs_both_the_ratio_and_the_floor_exceeded(
    champion_ms: float, challenger_ms: float, failed: str | None
):
    v = verdict(window(N, 0, [champion_ms] * N), window(N, 0, [challenger_ms] * N))
    assert (v.passed, v.failed) == (not failed, failed)


def test_the_latency_check_counts_requests_over_the_champions_p99_limit_beyond_chance():
    # At most 1 % of requests are above a p99: 5 of 100 over it may be a loaded
    # machine's luck (p 0.0034), 6 of 100 are not (p 0.00053 < 0.001).
    champion = window(100, 0, [1.0] * 98 + [2.0] * 2)  # p99 2.0 ms: limit max(4.0, 4.0)
    assert verdict(champion, window(100, 0, [1.0] * 95 + [50.0] * 5)).failed is None
    assert verdict(champion, window(100, 0, [1.0] * 94 + [50.0] * 6)).failed == "latency_p99"
    assert verdict(champion, window(100, 0, [1.0] * 94 + [4.0] * 6)).failed is None  # at it
    assert verdict(champion, window(100, 0, [1.0] * 94 + [4.01] * 6)).failed == "latency_p99"


def test_arms_without_latencies_pass_the_latency_check():
    assert verdict(window(N), window(N, 0, [100.0] * N)).failed == "latency_p99"
    assert verdict(window(N), window(N)).passed is True


def shifted(k: int) -> tuple[Window, Window]:
    """Two arms whose scores are 0..99 and k..99+k: a KS distance of k/100."""
    return window(N, 0, [], range(100)), window(N, 0, [], range(k, 100 + k))


def test_score_drift_fails_only_above_the_allowed_distance():
    champion, challenger = shifted(30)
    drift = verdict(champion, challenger).figures["score_drift"]
    assert drift == pytest.approx(0.3)
    at = replace(CHECKS, max_score_drift=drift)
    assert verdict(champion, challenger, checks=at).passed is True
    below = replace(CHECKS, max_score_drift=drift - 1e-9)
    v = verdict(champion, challenger, checks=below)
    assert (v.passed, v.failed) == (False, "score_drift")


def test_a_repeated_score_a_few_bits_apart_is_one_score_to_the_drift_check():
    # What the champion's plain-Python scorer and the same model through numpy answered
    # for one request asked again and again: the same score but for its last bits.
    score = 0.9999912904674266
    nudged = [score, score]
    for _ in range(16):  # summation orders differ by a few units in the last place
        nudged = [math.nextafter(nudged[0], 2.0), math.nextafter(nudged[1], 0.0)]
    for other in [math.nextafter(score, 2.0), *nudged]:
        v = verdict(window(N, 0, [], [score] * N), window(N, 0, [], [other] * N))
        assert (v.passed, v.failed, v.figures["score_drift"]) == (True, None, 0.0)
    # Scores apart in their 22nd significant bit are still apart.
    v = verdict(window(N, 0, [], [score] * N), window(N, 0, [], [score * (1 - 2**-22)] * N))
    assert (v.passed, v.failed, v.figures["score_drift"]) == (False, "score_drift", 1.0)


def test_score_drift_needs_both_a_distance_above_the_allowed_and_significance():
    # KS 0.36 between 50 scores a side is not significant (p 0.0028): noise, however far.
    far_but_few = window(N, 0, [], range(50)), window(N, 0, [], range(18, 68))
    v = verdict(*far_but_few, checks=replace(CHECKS, max_score_drift=0.3))
    assert (v.passed, v.failed) == (True, None) and v.figures["score_drift"] == 0.36
    # KS 0.3 between 100 a side is significant (p 0.0002), but within the 0.5 allowed.
    near_but_sure = window(N, 0, [], range(100)), window(N, 0, [], range(30, 130))
    v = verdict(*near_but_sure)
    assert (v.passed, v.failed) == (True, None)
    assert v.figures["score_drift_p_value"] < 0.001


def test_scores_a_24th_significant_bit_apart_are_one_score_and_a_23rd_two():
    [one, half] = to_score_precision([1.0, 1.0 + 2.0**-24])  # half a step: rounds to even
    [_, step] = to_score_precision([1.0, 1.0 + 2.0**-23])
    assert (one, half, step) == (1.0, 1.0, 1.0 + 2.0**-23)


@given(st.floats(allow_nan=False, allow_infinity=False, max_value=1e300, min_value=-1e300))
def test_scores_are_compared_to_24_significant_bits(x):
    [rounded] = to_score_precision([x])
    assert abs(rounded - x) <= abs(x) * 2.0**-24
    assert to_score_precision([rounded])[0] == rounded  # already on the grid
    if abs(x) > 1e-290:  # 22 bits apart (two steps of the grid or more) is two scores
        assert to_score_precision([x * (1 + 2.0**-22)])[0] != rounded


def test_score_drift_is_judged_only_with_min_requests_scores_on_both_arms():
    far = range(1000, 1000 + N)
    checks = replace(CHECKS, max_score_drift=0.1)
    assert verdict(window(N, 0, [], range(N)), window(N, 0, [], far),
                   checks=checks).failed == "score_drift"  # fmt: skip
    for a, b in [(range(N - 1), far), (range(N), range(1000, 1000 + N - 1))]:
        v = verdict(window(N, 0, [], a), window(N, 0, [], b), checks=checks)
        assert (v.passed, "score_drift" in v.figures) == (True, False)


def labels(control: tuple[int, int], arm: tuple[int, int]) -> list[ArmOutcomes]:
    """(successes, labelled) of the champion and the challenger."""
    return [ArmOutcomes(0, 100, control[1], control[0], float(control[0])),
            ArmOutcomes(1, 100, arm[1], arm[0], float(arm[0]))]  # fmt: skip


def test_a_worse_labelled_success_rate_fails_at_once_with_min_labels_on_both_arms():
    m = MIN_LABELS
    assert m == 30
    v = verdict(window(), window(), labels((m, m), (0, m)), final=False)
    assert (v.passed, v.failed) == (False, "success_rate")
    cmp = compare_rates(m, m, 0, m)
    assert v.always_valid_p == cmp.always_valid_p
    assert v.figures["labels"]["champion_labelled"] == m
    assert v.figures["labels"]["challenger_labelled"] == m


@pytest.mark.parametrize(("control", "arm"), [((29, 29), (0, 30)), ((30, 30), (0, 29))])
def test_the_success_rate_is_not_compared_below_min_labels_on_either_arm(
    control: tuple[int, int], arm: tuple[int, int]
):
    v = verdict(window(), window(), labels(control, arm), previous_p=0.5)
    assert (v.passed, v.failed, v.always_valid_p) == (None, None, 0.5)
    assert "labels" not in v.figures


def test_the_success_rate_is_not_compared_without_either_arms_outcomes():
    for outcomes in (labels((30, 30), (0, 30))[:1], labels((30, 30), (0, 30))[1:]):
        v = verdict(window(), window(), outcomes)
        assert "labels" not in v.figures and v.failed is None


def test_a_better_labelled_success_rate_never_fails():
    v = verdict(window(N, 0, [1.0] * N), window(N, 0, [1.0] * N), labels((0, 30), (30, 30)))
    assert (v.passed, v.failed) == (True, None)
    assert compare_rates(0, 30, 30, 30).always_valid_p < CHECKS.alpha
    assert v.always_valid_p is None  # no peek where the challenger trailed


def test_a_challenger_that_led_significantly_and_trails_by_noise_later_does_not_fail():
    # A lead short of the whole range (rates 0.125 and 1.0), so the test tells "trails"
    # (a negative difference) from "any difference below 1".
    led = verdict(window(), window(), labels((5, 40), (40, 40)), final=False)
    assert compare_rates(5, 40, 40, 40).always_valid_p < CHECKS.alpha
    assert led.always_valid_p is None  # a lead is no evidence of "worse"
    # Slightly worse later (p about 0.77 alone); a single running minimum would carry
    # the lead's tiny p-value over to this side and roll back.
    later = verdict(window(), window(), labels((29, 30), (25, 30)), previous_p=led.always_valid_p)
    assert later.failed is None
    assert later.always_valid_p == compare_rates(29, 30, 25, 30).always_valid_p


@pytest.mark.parametrize("arm", [(20, 40), (30, 40), (40, 40)])
def test_an_equal_or_better_success_rate_never_fails_after_a_low_earlier_p(
    arm: tuple[int, int],
):
    v = verdict(window(), window(), labels((20, 40), arm), previous_p=0.001, final=False)
    assert (v.failed, v.always_valid_p) == (None, 0.001)


def test_the_success_rate_fails_on_the_running_minimum_strictly_below_alpha():
    # Slightly worse (p about 0.77 alone): the running minimum carries an earlier peek.
    outcomes = labels((29, 30), (25, 30))
    assert compare_rates(29, 30, 25, 30).always_valid_p > 0.5
    v = verdict(window(), window(), outcomes, previous_p=0.01)
    assert (v.failed, v.always_valid_p) == ("success_rate", 0.01)
    at = verdict(window(), window(), outcomes, previous_p=CHECKS.alpha)
    assert (at.failed, at.always_valid_p) == (None, CHECKS.alpha)


# -- A/B: arms' outcomes and the stopping rule --------------------------------------------


def test_arm_outcomes_compare_each_challenger_with_the_control():
    outcomes = [ArmOutcomes(0, 10, 8, 4, 4.0), ArmOutcomes(1, 12, 10, 9, 9.0)]
    rows, mins = arm_outcomes(outcomes, ["v1", "v2", "v3"], {})
    assert [r["arm"] for r in rows] == ["v1", "v2", "v3"]
    assert [(r["requests"], r["labelled"], r["successes"]) for r in rows] == [
        (10, 8, 4), (12, 10, 9), (0, 0, 0)]  # fmt: skip
    assert [r["rate"] for r in rows] == [0.5, 0.9, None]
    assert (rows[1]["rate_low"], rows[1]["rate_high"]) == wilson_interval(9, 10)
    assert "vs_control" not in rows[0]
    expected = compare_rates(4, 8, 9, 10)
    assert rows[1]["vs_control"] == {
        **expected.as_dict(), "p_better": expected.always_valid_p, "p_worse": 1.0}  # fmt: skip
    assert rows[2]["vs_control"] is None  # no labels: nothing to compare
    assert mins == {"v2": {"better": expected.always_valid_p, "worse": 1.0}}


def test_arm_outcomes_without_a_control_compare_with_nothing():
    rows, mins = arm_outcomes([ArmOutcomes(1, 5, 5, 5, 5.0)], ["v1", "v2"], {})
    assert rows[1]["vs_control"] is None and mins == {}
    unlabelled = [ArmOutcomes(0, 5, 0, 0, 0.0), ArmOutcomes(1, 5, 5, 5, 5.0)]
    assert arm_outcomes(unlabelled, ["v1", "v2"], {})[0][1]["vs_control"] is None


def test_arm_outcomes_keep_the_running_minimum_p_per_arm():
    outcomes = [ArmOutcomes(0, 40, 40, 40, 40.0), ArmOutcomes(1, 40, 40, 0, 0.0),
                ArmOutcomes(2, 40, 40, 40, 40.0)]  # fmt: skip
    current = compare_rates(40, 40, 0, 40).always_valid_p  # v2 trails: its "worse" side
    previous = {"v2": {"better": 0.3, "worse": current / 2},
                "v3": {"better": 0.9, "worse": 0.8}, "gone": {"better": 0.2}}  # fmt: skip
    rows, mins = arm_outcomes(outcomes, ["v1", "v2", "v3"], previous)
    assert mins == {"v2": {"better": 0.3, "worse": current / 2},
                    "v3": {"better": 0.9, "worse": 0.8}, "gone": {"better": 0.2}}  # fmt: skip
    assert rows[1]["vs_control"]["always_valid_p"] == current / 2
    assert rows[2]["vs_control"]["always_valid_p"] == 0.8
    lower = {"v2": {"better": 0.3, "worse": current * 2}}
    assert arm_outcomes(outcomes, ["v1", "v2"], lower)[1]["v2"] == {"better": 0.3, "worse": current}
    # An older record's single float starts afresh.
    assert arm_outcomes(outcomes, ["v1", "v2"], {"v2": 0.001})[1]["v2"]["better"] == 1.0


def row(
    arm: str, labelled: int, rate: float, diff: float, p: float, other_side: float = 1.0
) -> dict[str, Any]:
    """An A/B row whose p-value `p` is on the side `diff` is on (the other: `other_side`)."""
    better, worse = (p, other_side) if diff > 0 else (other_side, p)
    return {"arm": arm, "labelled": labelled, "rate": rate,
            "vs_control": {"diff": diff, "always_valid_p": min(p, other_side),
                           "p_better": better, "p_worse": worse}}  # fmt: skip


CONTROL = {"arm": "v1", "labelled": 100, "rate": 0.5}


def test_ab_waits_until_every_arm_has_min_samples_labels():
    rows = [CONTROL, row("v2", 99, 0.9, 0.4, 0.001)]
    winner, why = ab_decision(rows, min_samples=100, alpha=0.05)
    assert winner is None and "['v2']" in why
    assert ab_decision(rows, min_samples=99, alpha=0.05)[0] == "v2"


def test_ab_waits_until_some_arm_differs_strictly_below_alpha():
    rows = [CONTROL, row("v2", 100, 0.9, 0.4, 0.05)]
    assert ab_decision(rows, min_samples=1, alpha=0.05) == (
        None, "no arm differs from the control at always-valid p < 0.05 yet")  # fmt: skip
    assert ab_decision(rows, min_samples=1, alpha=0.0501)[0] == "v2"


def test_ab_picks_the_best_significant_better_arm():
    rows = [CONTROL, row("v2", 100, 0.7, 0.2, 0.01), row("v3", 100, 0.9, 0.4, 0.04),
            row("v4", 100, 0.95, 0.45, 0.2), row("v5", 100, 0.6, 0.1, 0.001)]  # fmt: skip
    winner, why = ab_decision(rows, min_samples=100, alpha=0.05)
    assert winner == "v3" and why.startswith("v3 beats the control by +0.4000")


def test_ab_picks_the_only_significant_arm_even_when_it_is_the_first():
    rows = [CONTROL, row("v2", 100, 0.7, 0.2, 0.01), row("v3", 100, 0.2, -0.3, 0.5)]
    assert ab_decision(rows, min_samples=100, alpha=0.05)[0] == "v2"


def test_ab_judges_an_arm_by_the_evidence_of_the_side_it_is_on_now():
    # v2 led significantly once and trails now; v3 trailed significantly once and leads.
    rows = [CONTROL, row("v2", 100, 0.45, -0.05, 0.6, other_side=0.001),
            row("v3", 100, 0.55, 0.05, 0.5, other_side=0.001)]  # fmt: skip
    assert ab_decision(rows, min_samples=100, alpha=0.05)[0] is None


def test_the_control_wins_when_every_significant_arm_is_worse():
    rows = [CONTROL, row("v2", 100, 0.3, -0.2, 0.01), row("v3", 100, 0.5, 0.0, 0.01),
            row("v4", 100, 0.9, 0.4, 0.3)]  # fmt: skip
    assert ab_decision(rows, min_samples=100, alpha=0.05) == (
        "v1", "every significant challenger is worse than the control")  # fmt: skip


# -- parsing a deployment request ---------------------------------------------------------


def parse(**body: Any) -> DeploymentSpec:
    return DeploymentSpec.parse(body)


def test_a_canary_takes_defaults_and_converts_percentages_to_fractions():
    spec = parse(strategy="canary", challenger=5)
    assert spec == DeploymentSpec("canary", ("5",))
    spec = parse(strategy="canary", challenger="m/5", steps=[10, 50.5, 100],
                 interval_seconds=0.5, name="c-1", sticky="entities",
                 checks={"max_error_increase": 2, "max_latency_ratio": 1.5,
                         "latency_floor_ms": 0, "max_score_drift": 1, "min_requests": 1,
                         "alpha": 0.01})  # fmt: skip
    assert spec.steps == (0.1, 0.505, 1.0)
    assert (spec.interval_seconds, spec.name, spec.sticky) == (0.5, "c-1", "entities")
    assert spec.checks == CanaryChecks(0.02, 1.5, 0.0, 1.0, 1, 0.01)
    assert DeploymentSpec.restore(spec.as_dict()) == spec


def test_a_deployment_not_asking_otherwise_gets_the_documented_defaults():
    spec = parse(strategy="ab", challenger=2)
    assert spec.as_dict() == {
        "strategy": "ab", "challengers": ["2"], "name": None, "shares": [0.5, 0.5],
        "steps": [0.05, 0.25, 0.5, 1.0], "interval_seconds": 60.0,
        "checks": {"max_error_increase": 0.01, "max_latency_ratio": 2.0,
                   "latency_floor_ms": 2.0, "max_score_drift": 0.3, "min_requests": 50,
                   "alpha": 0.05},
        "sample": 1.0, "queue_size": 1000, "algorithm": "thompson", "epsilon": 0.1,
        "min_share": 0.05, "min_samples": 200, "alpha": 0.05, "stop": True,
        "promote": False, "sticky": "request",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "field"),
    [(DeploymentSpec("canary", ("2",)), "strategy"), (CanaryChecks(), "alpha"),
     (ArmOutcomes(0, 1, 1, 1, 1.0), "requests"), (Arm("v1", "models:/m/1", 1), "name"),
     (Verdict(None), "passed")],
)  # fmt: skip
def test_specs_checks_outcomes_arms_and_verdicts_cannot_be_changed(value: Any, field: str):
    with pytest.raises(FrozenInstanceError, match=f"cannot assign to field '{field}'"):
        setattr(value, field, None)


def test_shadow_ab_and_bandit_convert_their_percentages():
    assert parse(strategy="shadow", challenger="m@a", sample=25, queue_size=1).sample == 0.25
    ab = parse(strategy="ab", challengers=[2, "3"], shares=[50, 30, 20], min_samples=1,
               alpha=0.5, stop=False, promote=True, sticky="request")  # fmt: skip
    assert ab.shares == (0.5, 0.3, 0.2) and ab.challengers == ("2", "3")
    assert (ab.min_samples, ab.alpha, ab.stop, ab.promote) == (1, 0.5, False, True)
    assert parse(strategy="ab", challengers=[2, 3]).shares == (1 / 3,) * 3
    bandit = parse(strategy="bandit", challengers=[2, 3], algorithm="epsilon_greedy",
                   epsilon=20, min_share=10)  # fmt: skip
    assert (bandit.algorithm, bandit.epsilon, bandit.min_share) == ("epsilon_greedy", 0.2, 0.1)
    assert DeploymentSpec.restore(ab.as_dict()) == ab


def accepts(value: Any) -> bool:
    """Whether parsing does not refuse the body (a ValidationError otherwise)."""
    try:
        DeploymentSpec.parse(value)
    except ValidationError:
        return False
    return True


CANARY = {"strategy": "canary", "challenger": 2}
SHADOW = {"strategy": "shadow", "challenger": 2}
AB = {"strategy": "ab", "challengers": [2]}
BANDIT = {"strategy": "bandit", "challengers": [2]}


@pytest.mark.parametrize(
    ("base", "key", "ok", "refused"),
    [
        (CANARY, "interval_seconds", [1e-9, 1, 1e9], [0, -1, True, "1", math.inf, math.nan]),
        (SHADOW, "sample", [1e-9, 50, 100], [0, -1, 100.01, False]),
        (SHADOW, "queue_size", [1, 10], [0, -1, 1.0, True]),
        (AB, "min_samples", [1, 500], [0, 2.5, True]),
        (AB, "alpha", [1e-9, 0.5, 0.999], [0, 1, -0.1, 1.1]),
        (AB, "stop", [True, False], [1, 0, "yes", None]),
        (AB, "promote", [True, False], [1, "no"]),
        (BANDIT, "epsilon", [0, 50, 100], [-0.01, 100.01, "5"]),
        (BANDIT, "min_share", [0, 50], [-0.01, 50.01, 100]),
        (BANDIT, "algorithm", ["thompson", "epsilon_greedy"], ["ucb", None]),
        (CANARY, "name", ["a", "A.b-c_9", "x" * 64], ["", "-a", "a b", "x" * 65, 5]),
        (CANARY, "sticky", ["request", "entities"], ["user", None]),
        (AB, "sticky", ["request", "entities"], ["user"]),
    ],
)  # fmt: skip
def test_each_key_takes_values_up_to_its_bounds_and_refuses_beyond(
    base: dict[str, Any], key: str, ok: list[Any], refused: list[Any]
):
    assert [accepts({**base, key: v}) for v in ok] == [True] * len(ok)
    assert [accepts({**base, key: v}) for v in refused] == [False] * len(refused)


@pytest.mark.parametrize(
    ("key", "ok", "refused"),
    [
        ("max_error_increase", [0, 100], [-0.01, 100.01, True]),
        ("max_latency_ratio", [1, 1e6], [0.99, 0]),
        ("latency_floor_ms", [0, 1e6], [-0.01]),
        ("max_score_drift", [1e-9, 1], [0, 1.01]),
        ("min_requests", [1, 1000], [0, 1.5, True]),
        ("alpha", [1e-9, 1], [0, 1.01]),
    ],
)
def test_each_canary_check_takes_values_up_to_its_bounds_and_refuses_beyond(
    key: str, ok: list[Any], refused: list[Any]
):
    assert [accepts({**CANARY, "checks": {key: v}}) for v in ok] == [True] * len(ok)
    assert [accepts({**CANARY, "checks": {key: v}}) for v in refused] == [False] * len(refused)


def test_canary_checks_keep_the_given_value_and_the_defaults_of_the_rest():
    checks = parse(**CANARY, checks={"latency_floor_ms": 7}).checks
    assert checks == CanaryChecks(latency_floor_ms=7.0)
    assert parse(**CANARY, checks={"max_error_increase": 100}).checks.max_error_increase == 1.0


@pytest.mark.parametrize(
    ("checks", "match"),
    [([], "checks must be an object"), ({"colour": 1}, r"unknown key\(s\) \['colour'\]")],
)
def test_canary_checks_refuse_other_shapes_and_keys(checks: Any, match: str):
    with pytest.raises(ValidationError, match=match):
        parse(**CANARY, checks=checks)


@pytest.mark.parametrize(
    ("steps", "ok"),
    [([100], True), ([1e-9, 100], True), ([5, 25, 50], True), ([0, 50], False),
     ([50, 100.01], False), ([50, 50], False), ([50, 25], False), ([], False), ("50", False),
     ([True], False), ([math.nan], False), (50, False)],
)  # fmt: skip
def test_canary_steps_are_increasing_percentages_in_0_exclusive_to_100(steps: Any, ok: bool):
    assert accepts({**CANARY, "steps": steps}) is ok


@pytest.mark.parametrize(
    ("shares", "ok"),
    [([0, 100], True), ([100, 0], True), ([33.3333333, 66.6666667], True),
     ([-1, 101], False), ([50, 49], False), ([50, 51], False), ([50, 50, 0], False),
     ([100], False), ("50,50", False), ([50, "50"], False)],
)  # fmt: skip
def test_ab_shares_are_one_nonnegative_percentage_per_arm_summing_to_100(shares: Any, ok: bool):
    assert accepts({**AB, "shares": shares}) is ok


@pytest.mark.parametrize("shares", ["50,50", 50, {"a": 50}])
def test_ab_shares_that_are_not_a_list_are_refused_as_such(shares: Any):
    with pytest.raises(ValidationError, match="shares must be a list of percentages"):
        parse(**AB, shares=shares)


def test_bandit_min_share_times_arms_may_reach_but_not_pass_100():
    assert parse(**BANDIT, min_share=50).min_share == 0.5
    assert parse(strategy="bandit", challengers=list(range(2, 4)), min_share=100 / 3)
    assert accepts({"strategy": "bandit", "challengers": list(range(2, 21))})  # 20 arms x 5 %
    with pytest.raises(ValidationError, match=r"min_share 5% for 21 arms .* at most 4\.7619%"):
        parse(strategy="bandit", challengers=list(range(2, 22)))


@pytest.mark.parametrize(
    ("body", "challengers"),
    [({"challenger": 5}, ("5",)), ({"challenger": "5"}, ("5",)),
     ({"challenger": "name/5"}, ("name/5",)), ({"challengers": ["name@alias"]}, ("name@alias",)),
     ({"challenger": 0}, ("0",)), ({"challengers": (7,)}, ("7",))],
)  # fmt: skip
def test_a_challenger_is_a_version_number_or_reference(
    body: dict[str, Any], challengers: tuple[str, ...]
):
    assert parse(strategy="canary", **body).challengers == challengers


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"strategy": "canary"}, "name the challenger"),
        ({"strategy": "canary", "challenger": 2, "challengers": [3]}, "not both"),
        ({"strategy": "ab", "challengers": []}, "non-empty list"),
        ({"strategy": "ab", "challengers": "2"}, "non-empty list"),
        ({"strategy": "ab", "challengers": {"a": 1}}, "non-empty list"),
        ({"strategy": "canary", "challengers": [2, 3]}, "one challenger, got 2"),
        ({"strategy": "shadow", "challengers": [2, 3]}, "one challenger, got 2"),
        ({"strategy": "ab", "challengers": [2, True]}, "got True"),
        ({"strategy": "ab", "challengers": [2, 2.5]}, "got 2.5"),
        ({"strategy": "ab", "challengers": [2, ""]}, "got ''"),
        ({"strategy": "ab", "challengers": [2, "2"]}, "repeat"),
        ({"strategy": None}, "strategy must be one of"),
        ({"challenger": 2}, "strategy must be one of"),
    ],
)
def test_challengers_are_refused_with_what_was_wrong(body: dict[str, Any], match: str):
    with pytest.raises(ValidationError, match=match):
        DeploymentSpec.parse(body)


def test_ab_and_bandit_take_several_challengers():
    assert parse(strategy="ab", challengers=[2, 3, 4]).challengers == ("2", "3", "4")
    assert parse(strategy="bandit", challengers=[2, 3]).challengers == ("2", "3")


@pytest.mark.parametrize(
    ("base", "key"),
    [(CANARY, "shares"), (CANARY, "sample"), (SHADOW, "steps"), (SHADOW, "sticky"),
     (AB, "steps"), (AB, "epsilon"), (BANDIT, "sticky"), (BANDIT, "alpha"),
     (BANDIT, "checks"), (SHADOW, "min_share")],
)  # fmt: skip
def test_a_key_of_another_strategy_is_unknown(base: dict[str, Any], key: str):
    with pytest.raises(ValidationError, match=rf"unknown key\(s\) \['{key}'\]"):
        DeploymentSpec.parse({**base, key: 1})


def test_a_deployment_must_be_a_mapping():
    with pytest.raises(ValidationError, match="JSON object"):
        DeploymentSpec.parse([("strategy", "canary")])  # type: ignore[arg-type]


# -- the tables ---------------------------------------------------------------------------


@pytest.fixture
def store() -> Any:
    db = SQLiteDB(":memory:")
    yield DeploymentStore(db)
    db.close()


def record(id: str, service: str = "svc", started_at: int = 1, **kw: Any) -> DeploymentRecord:
    spec = DeploymentSpec.parse({"strategy": "ab", "challengers": [2]})
    fields: dict[str, Any] = {
        "id": id, "name": f"n-{id}", "service": service, "strategy": "ab", "model": "m",
        "champion": "m@champion", "champion_version": 1, "versions": (2,),
        "spec": spec.as_dict(), "state": "active", "status": {}, "salt": "s" + id,
        "started_at": started_at, "ended_at": None, "reason": "",
    }  # fmt: skip
    return DeploymentRecord(**{**fields, **kw})


def test_a_stored_deployment_is_got_by_id_or_name_as_it_was(store: DeploymentStore):
    rec = record("d1", status={"step": 1})
    store.insert(rec)
    assert store.get("d1") == rec and store.get("n-d1") == rec
    assert store.active("svc") == rec and store.active("other") is None
    with pytest.raises(DeploymentNotFoundError, match="'d9'"):
        store.get("d9")
    assert store.get("n-d1", service="svc") == rec
    with pytest.raises(DeploymentNotFoundError, match="service 'other' has no deployment 'd1'"):
        store.get("d1", service="other")
    store.save_status("d1", {"step": 2})
    assert store.get("d1").status == {"step": 2}
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'state'"):
        rec.state = "ended"  # type: ignore[misc]


def test_a_service_has_one_active_deployment_and_a_name_is_taken_once(store: DeploymentStore):
    store.insert(record("d1"))
    with pytest.raises(DeploymentConflictError, match="already has an active deployment"):
        store.insert(record("d2"))
    store.insert(record("d3", service="other"))
    with pytest.raises(DeploymentConflictError, match="exists already"):
        store.insert(record("d4", service="third", name="n-d1"))
    assert store.close("d1", "ended", "done", {}, now=5) is True
    store.insert(record("d2"))
    assert store.active("svc") == record("d2")


def test_a_deployment_closes_once_and_only_into_an_end_state(store: DeploymentStore):
    store.insert(record("d1"))
    for state in ("active", "paused"):
        with pytest.raises(ValueError, match="not an end state"):
            store.close("d1", state, "", {}, now=2)
    assert store.close("d1", "rolled_back", "slow", {"x": 1}, now=7) is True
    assert store.close("d1", "promoted", "late", {}, now=8) is False
    got = store.get("d1")
    assert (got.state, got.reason, got.status, got.ended_at) == ("rolled_back", "slow", {"x": 1}, 7)
    assert store.active("svc") is None
    assert [h["action"] for h in store.history("d1")] == ["started", "rolled_back"]


def test_history_is_oldest_first_and_keeps_the_last_entries(store: DeploymentStore):
    store.insert(record("d1"))
    for i in range(3):
        store.log("d1", f"step{i}", {"i": i}, now=10 + i)
    assert [h["action"] for h in store.history("d1")] == ["started", "step0", "step1", "step2"]
    assert store.history("d1", limit=2) == [
        {"at": 11, "action": "step1", "detail": {"i": 1}},
        {"at": 12, "action": "step2", "detail": {"i": 2}}]  # fmt: skip
    assert store.history("d1", limit=0) == [] and store.history("d1", limit=-1) == []


def test_recent_is_newest_first_by_start_then_insertion_and_limited(store: DeploymentStore):
    for id, service, started in [("a", "s1", 5), ("b", "s2", 9), ("c", "s3", 5), ("d", "s1", 1)]:
        store.insert(record(id, service, started))
        if service == "s1":
            store.close(id, "ended", "", {}, now=started)
    assert [r.id for r in store.recent()] == ["b", "c", "a", "d"]
    assert [r.id for r in store.recent(limit=2)] == ["b", "c"]
    assert [r.id for r in store.recent("s1")] == ["a", "d"]
    assert store.recent(limit=0) == [] and store.recent(limit=-3) == []


def test_recent_shows_50_and_history_200_entries_unless_asked_otherwise(
    store: DeploymentStore,
):
    for i in range(51):
        store.insert(record(f"d{i:02}", f"s{i}", started_at=i))
    assert [r.id for r in store.recent()] == [f"d{i:02}" for i in range(50, 0, -1)]
    for i in range(200):
        store.log("d00", "tick", {}, now=i)
    history = store.history("d00")
    assert len(history) == 200 and history[0]["action"] == "tick" and history[-1]["at"] == 199


def test_write_keeps_a_request_ids_first_arm_and_first_label(store: DeploymentStore):
    store.insert(record("d1"))
    assert store.write({"d1": [(1, "r1"), (0, "r1"), (0, "r2")]}, [], now=10) == []
    assert store.write({}, [("r1", 1.0, 20), ("r9", 1.0, 20)], ["d1"], now=20) == [("d1", 1, 1.0)]
    assert store.write({"d1": [(0, "r1")]}, [("r1", 0.0, 30)], ["d1"], now=30) == []
    assert store.outcomes("d1") == [ArmOutcomes(0, 1, 0, 0, 0.0), ArmOutcomes(1, 1, 1, 1, 1.0)]


def test_a_file_whose_requests_have_a_served_at_column_keeps_them_when_it_migrates(tmp_path):
    db = SQLiteDB(tmp_path / "registry.db")
    try:
        migrate(db, Schema("deployments", MIGRATIONS[:2]))  # before the column's rename
        with db.write() as con:
            con.execute(
                "INSERT INTO deployment_requests (deployment, request_id, arm, served_at) "
                "VALUES ('d1', 'r1', 1, 5)"
            )
        store = DeploymentStore(db)
        rows = db.read("SELECT request_id, arm, recorded_at FROM deployment_requests")
        assert [tuple(r) for r in rows] == [("r1", 1, 5)]
        assert store.write({"d1": [(0, "r2")]}, [("r1", 1.0, 9)], ["d1"], now=9) == [("d1", 1, 1.0)]
    finally:
        db.close()


def test_a_label_joins_each_deployment_named_that_served_its_request(store: DeploymentStore):
    store.insert(record("d1"))
    store.insert(record("d2", service="other"))
    store.insert(record("d3", service="third"))
    served = {"d1": [(1, "r1")], "d2": [(0, "r1")], "d3": [(1, "r1")]}
    joined = store.write(served, [("r1", 0.5, 2)], ["d1", "d2"], now=1)
    assert sorted(joined) == [("d1", 1, 0.5), ("d2", 0, 0.5)]
    assert store.outcomes("d3")[0].labelled == 0  # not named: not joined


def test_outcomes_count_requests_labels_successes_and_label_sums_per_arm(
    store: DeploymentStore,
):
    store.insert(record("d1"))
    served = {"d1": [(i % 3, f"r{i}") for i in range(9)]}
    marks = [("r0", 1.0, 9), ("r3", 0.0, 9), ("r1", 2.5, 9), ("r4", -1.0, 9), ("r7", 0.25, 9)]
    store.write(served, marks, ["d1"], now=9)
    assert store.outcomes("d1") == [
        ArmOutcomes(0, 3, 2, 1, 1.0), ArmOutcomes(1, 3, 3, 2, 1.75),
        ArmOutcomes(2, 3, 0, 0, 0.0)]  # fmt: skip
    assert store.outcomes("nothing") == []


def rows_of(store: DeploymentStore, deployment: str) -> int:
    found = store.db.read(
        "SELECT count(*) AS n FROM deployment_requests WHERE deployment = ?", [deployment]
    )
    return int(found[0]["n"])


def test_an_ended_deployments_outcomes_are_kept_and_its_rows_purged_in_steps(
    store: DeploymentStore,
):
    store.insert(record("d1"))
    store.insert(record("d2", service="other"))
    store.write({"d1": [(i % 2, f"r{i}") for i in range(7)]}, [("r1", 1.0, 9)], ["d1"], now=9)
    store.write({"d2": [(0, f"r{i}") for i in range(3)]}, [], [], now=9)
    before = store.outcomes("d1")
    assert store.purge() == 0  # nothing has ended

    assert store.close("d1", "ended", "done", {}, now=10)
    assert store.purge(limit=3) == 3 and rows_of(store, "d1") == 4
    assert store.purge(limit=3) == 3 and store.purge(limit=3) == 1
    assert store.purge() == 0 and rows_of(store, "d1") == 0

    assert store.outcomes("d1") == before  # as saved when it ended
    assert store.write({}, [("r3", 1.0, 11)], ["d1"], now=11) == []  # a late label joins nothing
    assert store.outcomes("d1") == before
    assert rows_of(store, "d2") == 3  # the active one keeps its rows


def test_an_ended_deployment_without_requests_has_no_outcomes(store: DeploymentStore):
    store.insert(record("d1"))
    assert store.close("d1", "ended", "done", {}, now=10)
    assert store.outcomes("d1") == [] and store.purge() == 0


# -- a deployment while it serves ---------------------------------------------------------


class Scripted(random.Random):
    """A generator whose `random()` returns the given value each time."""

    def __init__(self, value: float):
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_a_sample_keeps_every_value_up_to_its_cap_in_order():
    sample = Sample()
    for i in range(SAMPLE_CAP):
        sample.add(float(i), Scripted(0.0))
    assert sample.values == [float(i) for i in range(SAMPLE_CAP)]
    assert sample.seen == SAMPLE_CAP


def test_a_window_keeps_at_most_4096_latencies():
    sample = Sample()
    for i in range(4097):
        sample.add(float(i), Scripted(0.9999))
    assert len(sample.values) == 4096 and sample.seen == 4097


def test_a_full_sample_replaces_the_slot_its_draw_names_or_none():
    sample = Sample([0.0] * SAMPLE_CAP, SAMPLE_CAP)
    # The 4097th value: a draw of 0.5 names slot 2048; one of CAP / seen names no slot.
    sample.add(1.0, Scripted(0.5))
    assert sample.values.index(1.0) == (SAMPLE_CAP + 1) // 2 and sample.seen == SAMPLE_CAP + 1
    sample.add(2.0, Scripted(SAMPLE_CAP / (SAMPLE_CAP + 2)))
    assert 2.0 not in sample.values and len(sample.values) == SAMPLE_CAP
    sample.add(3.0, Scripted((SAMPLE_CAP - 1) / (SAMPLE_CAP + 3)))
    assert sample.values[SAMPLE_CAP - 1] == 3.0


def test_a_sample_stays_a_uniform_sample_of_its_capped_size():
    sample, n = Sample(), 4 * SAMPLE_CAP
    rng = random.Random(11)
    for i in range(n):
        sample.add(float(i), rng)
    assert len(sample.values) == SAMPLE_CAP and sample.seen == n
    assert len(set(sample.values)) == SAMPLE_CAP
    # Each quarter of the stream keeps about a quarter of the slots (sd about 28).
    quarters = [sum(1 for v in sample.values if q * SAMPLE_CAP <= v < (q + 1) * SAMPLE_CAP)
                for q in range(4)]  # fmt: skip
    assert all(abs(k - SAMPLE_CAP / 4) < 150 for k in quarters), quarters


ARMS = [Arm("v1", "models:/m/1", 1), Arm("v2", "models:/m/2", 2)]


def live(body: dict[str, Any], outcomes: Any = (), rng: Any = None) -> LiveDeployment:
    spec = DeploymentSpec.parse(body).as_dict()
    rec = record("d1", strategy=body["strategy"], spec=spec)
    return LiveDeployment(rec, ARMS, outcomes, rng=rng or random.Random(5))


def test_a_shadow_always_answers_with_the_champion_and_samples_by_request_id():
    everyone = live({**SHADOW})
    assert everyone.choose("r1", [1]) == 0 and everyone.sampled("r1")
    half = live({**SHADOW, "sample": 50})
    ids = [f"r{i}" for i in range(200)]
    expected = [sticky_fraction(r, "sd1") < 0.5 for r in ids]
    assert [half.sampled(r) for r in ids] == expected
    assert 60 < sum(expected) < 140
    assert half.router is None and half.share == 0.0


def test_an_ab_arm_is_sticky_by_request_or_by_the_set_of_entities():
    by_request = live({**AB, "shares": [50, 50]})
    arms = [by_request.choose(f"r{i}", [i]) for i in range(100)]
    assert arms == [by_request.choose(f"r{i}", [0]) for i in range(100)]
    assert 20 < sum(arms) < 80
    by_entities = live({**AB, "shares": [50, 50], "sticky": "entities"})
    keys = [[i, i + 1000] for i in range(100)]
    arms = [by_entities.choose(f"x{i}", ids) for i, ids in enumerate(keys)]
    assert arms == [by_entities.choose("other", ids[::-1]) for ids in keys]
    assert 20 < sum(arms) < 80


def test_a_canary_routes_its_steps_share_to_the_challenger():
    canary = live({**CANARY, "steps": [10, 100]})
    assert canary.share == 0.1
    arms = [canary.choose(f"r{i}", [i]) for i in range(1000)]
    assert 50 < sum(arms) < 150
    canary.set_canary_step({"step": 1})
    assert canary.share == 1.0 and canary.record.status == {"step": 1}
    assert {canary.choose(f"r{i}", [i]) for i in range(100)} == {1}


def test_counts_windows_and_the_queue_of_served_requests():
    d = live({**AB})
    d.served(1, "r1", 3.0, 0.5)
    d.served(0, "r2", 4.0, 0.25)
    d.failed(1, 9.0)
    assert (d.requests, d.errors) == ([1, 2], [0, 1])
    assert [(w.requests, w.errors) for w in d.windows] == [(1, 0), (2, 1)]
    assert [window_figures(w)["requests"] for w in d.windows] == [1, 2]
    assert d.windows[1].latency_ms.values == [3.0, 9.0] and d.windows[1].scores.values == [0.5]
    served = d.take()
    assert served == [(1, "r1"), (0, "r2")]
    assert d.take() == []
    d.served(0, "r3", 1.0, 0.0)
    d.put_back(served)  # a failed write's requests go first in the next one
    assert d.take() == [*served, (0, "r3")]
    ended = d.new_windows()
    assert [w.requests for w in ended] == [2, 2]
    assert [w.requests for w in d.windows] == [0, 0]


def test_a_take_loses_no_request_served_while_it_drains():
    d = live({**AB})
    n = 20_000
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes, nearly
    try:
        server = threading.Thread(
            target=lambda: [d.served(i % 2, f"r{i}", 1.0, 0.5) for i in range(n)]
        )
        server.start()
        taken: list[tuple[int, str]] = []
        while server.is_alive():
            taken.extend(d.take())
        server.join()
        taken.extend(d.take())
    finally:
        sys.setswitchinterval(switch)
    assert taken == [(i % 2, f"r{i}") for i in range(n)]


def test_outcomes_start_from_the_table_and_count_what_joins_later():
    d = live({**AB}, outcomes=[ArmOutcomes(0, 4, 2, 1, 1.5), ArmOutcomes(2, 9, 9, 9, 9.0)])
    assert d.outcomes() == [ArmOutcomes(0, 4, 2, 1, 1.5), ArmOutcomes(1, 0, 0, 0, 0.0)]
    d.recorded_requests([(1, "a"), (1, "b"), (0, "c")])
    d.rewarded(1, 1.0)
    d.rewarded(1, 0.0)
    d.rewarded(1, -2.0)
    d.rewarded(2, 1.0)
    d.rewarded(-1, 1.0)
    assert d.outcomes() == [ArmOutcomes(0, 5, 2, 1, 1.5), ArmOutcomes(1, 2, 3, 1, -1.0)]


def test_a_bandit_starts_from_the_tables_posteriors_and_learns_from_labels():
    outcomes = [ArmOutcomes(0, 10, 8, 6, 6.0), ArmOutcomes(1, 5, 4, 1, 1.0),
                ArmOutcomes(2, 1, 1, 1, 1.0)]  # fmt: skip
    rng = random.Random(5)
    d = live({**BANDIT, "min_share": 10}, outcomes, rng)
    assert isinstance(d.router, ThompsonRouter) and d.router.min_share == 0.1
    assert d.rng is rng and d.router.rng is rng
    assert d.router.state() == {"successes": [6, 1], "failures": [2, 3]}
    d.rewarded(1, 1.0)
    d.rewarded(0, 0.0)
    assert d.router.state() == {"successes": [6, 2], "failures": [3, 3]}
    assert d.choose("r", []) in (0, 1) and d.share == 0.0
    greedy = live({**BANDIT, "algorithm": "epsilon_greedy", "epsilon": 30})
    assert type(greedy.router).__name__ == "EpsilonGreedyRouter"
    assert greedy.router.epsilon == 0.3  # type: ignore[union-attr]
    assert greedy.router.state() == {"successes": [0, 0], "failures": [0, 0]}  # type: ignore[union-attr]
