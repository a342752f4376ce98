"""Judging a deployment: a canary interval's checks, an A/B test's comparison, and the
figures a report shows per arm.

Pure functions of counts and samples (no I/O), so each rule is tested on numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litemlops.serving.stats import (
    compare_rates,
    directional_min,
    running_min,
    wilson_interval,
)

if TYPE_CHECKING:
    from litemlops.serving.deployment_live import Window
    from litemlops.serving.deployment_spec import CanaryChecks
    from litemlops.serving.deployment_store import ArmOutcomes

MIN_LABELS = 30
"""Labels per arm before the labelled success rate is compared at all."""

SIGNIFICANCE = 0.001
"""How unlikely, were the challenger as good as the champion, its slow requests or its
score distribution must be before a canary check fails. The checks look again at
every tick of a growing window, so a threshold alone would roll back a sound
challenger on noise (one scheduling hiccup in the p99 of 100 requests); this keeps
each look's false alarms rare, while a challenger 10x slower is caught within tens
of requests. Error and success rates use an always-valid p-value (below `alpha`),
made for looking again and again."""

TAIL = 0.01
"""The share of requests above a p99: what a challenger's slow requests are tested
against."""


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile of `values` (nearest rank), None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def window_figures(window: Window) -> dict[str, Any]:
    lat = window.latency_ms.values
    scores = window.scores.values
    return {
        "requests": window.requests,
        "errors": window.errors,
        "error_rate": window.errors / window.requests if window.requests else None,
        "p50_ms": quantile(lat, 0.5),
        "p99_ms": quantile(lat, 0.99),
        "mean_score": sum(scores) / len(scores) if scores else None,
    }


@dataclass(frozen=True)
class Verdict:
    """A canary interval judged: `passed` True/False, or None when an arm had too few
    requests to judge; `failed` names the first check that failed; `figures` holds
    every check's numbers (for the event, the alert and the report)."""

    passed: bool | None
    failed: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    always_valid_p: float | None = None


def canary_verdict(
    checks: CanaryChecks,
    champion: Window,
    challenger: Window,
    outcomes: Sequence[ArmOutcomes],
    *,
    previous_p: float | None = None,
    final: bool = True,
) -> Verdict:
    """The checks of a canary interval, the challenger against the champion.

    champion: the champion's window, or the last one that had enough requests when
    the challenger takes all traffic. outcomes: the labels joined so far (labels
    come late, so the whole deployment's). final: the interval has ended; before
    that only a failure is a verdict (a failed check rolls back at once).
    """
    figures: dict[str, Any] = {
        "champion": window_figures(champion),
        "challenger": window_figures(challenger),
    }
    p = previous_p
    by_arm = {o.arm: o for o in outcomes}
    control, arm = by_arm.get(0), by_arm.get(1)
    if control and arm and control.labelled >= MIN_LABELS and arm.labelled >= MIN_LABELS:
        cmp = compare_rates(control.successes, control.labelled, arm.successes, arm.labelled)
        # Only peeks where the challenger trails count towards "worse" (`directional_min`).
        p = running_min(previous_p, cmp.always_valid_p) if cmp.diff < 0 else previous_p
        figures["labels"] = {**cmp.as_dict(), "always_valid_p": p,
                             "champion_labelled": control.labelled,
                             "challenger_labelled": arm.labelled}  # fmt: skip
        if cmp.diff < 0 and p is not None and p < checks.alpha:
            return Verdict(False, "success_rate", figures, p)
    enough = min(champion.requests, challenger.requests) >= checks.min_requests
    if challenger.requests >= checks.min_requests and champion.requests > 0:
        errors = compare_rates(
            champion.errors, champion.requests, challenger.errors, challenger.requests
        )
        figures["errors"] = {"diff": errors.diff, "always_valid_p": errors.always_valid_p}
        if errors.diff > checks.max_error_increase and errors.always_valid_p < checks.alpha:
            return Verdict(False, "error_rate", figures, p)
    if not enough:
        return Verdict(None, None, figures, p)
    slow = slow_requests(checks, champion.latency_ms.values, challenger.latency_ms.values)
    figures["latency"] = slow
    if slow["p_value"] < SIGNIFICANCE:
        return Verdict(False, "latency_p99", figures, p)
    a, b = champion.scores.values, challenger.scores.values
    if len(a) >= checks.min_requests and len(b) >= checks.min_requests:
        from scipy.stats import ks_2samp

        test = ks_2samp(to_score_precision(a), to_score_precision(b))
        drift = float(test.statistic)
        figures["score_drift"] = drift
        figures["score_drift_p_value"] = float(test.pvalue)
        if drift > checks.max_score_drift and test.pvalue < SIGNIFICANCE:
            return Verdict(False, "score_drift", figures, p)
    return Verdict(True if final else None, None, figures, p)


SCORE_BITS = 24
"""Significant bits two arms' scores are compared at (float32's, about 7 decimal
digits): arms that score alike by other arithmetic (the plain-Python scorer against
BLAS, a sum in another order) differ in the last bits of a float64, and a score that
repeats (the same entities asked again) would otherwise be two values a whole
distance apart."""


def to_score_precision(scores: Sequence[float]) -> Any:
    """`scores` rounded to `SCORE_BITS` significant bits, at any magnitude."""
    import numpy as np

    mantissa, exponent = np.frexp(np.asarray(scores, dtype=np.float64))
    return np.ldexp(np.round(np.ldexp(mantissa, SCORE_BITS)), exponent - SCORE_BITS)


def slow_requests(
    checks: CanaryChecks, champion_ms: Sequence[float], challenger_ms: Sequence[float]
) -> dict[str, Any]:
    """The latency check: how many of the challenger's requests took longer than the
    champion's p99 allows (`max_latency_ratio` times it, and `latency_floor_ms` more),
    and how unlikely that many are if at most `TAIL` of its requests were that slow,
    as at most 1 % of the champion's are (a binomial tail). A challenger whose p99 is
    over the limit has more than 1 % of its requests above it; a few late requests
    of a loaded machine are not enough to say so."""
    from scipy.stats import binom

    p99 = quantile(champion_ms, 0.99) or 0.0
    limit = max(checks.max_latency_ratio * p99, p99 + checks.latency_floor_ms)
    over = sum(1 for ms in challenger_ms if ms > limit)
    n = len(challenger_ms)
    p_value = float(binom.sf(over - 1, n, TAIL)) if over else 1.0
    return {"limit_ms": limit, "over": over, "of": n, "p_value": p_value}


def arm_outcomes(
    outcomes: Sequence[ArmOutcomes], names: Sequence[str], previous: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per arm: requests recorded, labels, success rate with a 95 % interval, and for
    each arm but the control (arm 0) the comparison to it (None until both have labels);
    with each arm's running minima of the always-valid p-value (`directional_min`;
    `previous` holds the last ones)."""
    by_arm = {o.arm: o for o in outcomes}
    control = by_arm.get(0)
    rows: list[dict[str, Any]] = []
    mins: dict[str, Any] = dict(previous)
    for i, name in enumerate(names):
        o = by_arm.get(i)
        requests, labelled, successes = (o.requests, o.labelled, o.successes) if o else (0, 0, 0)
        low, high = wilson_interval(successes, labelled)
        row: dict[str, Any] = {
            "arm": name,
            "requests": requests,
            "labelled": labelled,
            "successes": successes,
            "rate": successes / labelled if labelled else None,
            "rate_low": low,
            "rate_high": high,
        }
        if i > 0 and not (labelled and control and control.labelled):
            row["vs_control"] = None  # nothing to compare yet
        elif i > 0:
            assert control is not None
            cmp = compare_rates(control.successes, control.labelled, successes, labelled)
            found = mins[name] = directional_min(previous.get(name), cmp)
            row["vs_control"] = {
                **cmp.as_dict(), "always_valid_p": min(found.values()),
                "p_better": found["better"], "p_worse": found["worse"],
            }  # fmt: skip
        rows.append(row)
    return rows, mins


def ab_decision(
    rows: Sequence[dict[str, Any]], *, min_samples: int, alpha: float
) -> tuple[str | None, str]:
    """An A/B test's stopping rule: every arm has `min_samples` labels and some
    challenger differs from the control with an always-valid p below `alpha`. Returns
    (winner, why): the best significant challenger, or the control when the
    significant ones are all worse; (None, why) while the test goes on."""
    short = [r["arm"] for r in rows if r["labelled"] < min_samples]
    if short:
        return None, f"arms {short} have fewer than {min_samples} labels"
    # Significant on the side it is on now (the evidence of each side is kept apart).
    compared = [r for r in rows[1:] if r["vs_control"] is not None]
    ahead = [r for r in compared if r["vs_control"]["diff"] > 0]
    better = [r for r in ahead if r["vs_control"]["p_better"] < alpha]
    if better:
        best = max(better, key=lambda r: r["rate"])
        return best["arm"], (
            f"{best['arm']} beats the control by {best['vs_control']['diff']:+.4f} "
            f"(always-valid p {best['vs_control']['p_better']:.4g})"
        )
    behind = [r for r in compared if r["vs_control"]["diff"] < 0]
    if any(r["vs_control"]["p_worse"] < alpha for r in behind):
        return rows[0]["arm"], "every significant challenger is worse than the control"
    return None, f"no arm differs from the control at always-valid p < {alpha:g} yet"


def best_challenger(outcomes: Sequence[ArmOutcomes], names: Sequence[str]) -> str:
    """The challenger to promote when none is named: the only one, else the best by its
    labels so far (posterior mean of a uniform prior); `InvalidDeploymentError` when
    several have none."""
    from litemlops.serving.errors import InvalidDeploymentError

    if len(names) == 2:
        return names[1]
    rates = {
        o.arm: (o.successes + 1) / (o.labelled + 2)
        for o in outcomes
        if 0 < o.arm < len(names) and o.labelled
    }
    if not rates:
        raise InvalidDeploymentError(
            f"no labels yet to choose among {list(names[1:])}: name the arm to promote"
        )
    return names[max(rates, key=rates.__getitem__)]
