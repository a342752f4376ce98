"""Deployment statistics against independent computations: the Wilson interval as the
root of its quadratic, Newcombe's published examples, the z-test through scipy, the
mSPRT statistic by quadrature of its definition; and the reason the always-valid
p-value exists, simulated: peeking at it does not inflate false positives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from depth import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import binom, norm

from litemlops.errors import ValidationError
from litemlops.serving.stats import (
    Comparison,
    compare_rates,
    directional_min,
    running_min,
    wilson_interval,
)


@st.composite
def counts(draw, max_trials=2000):
    """(successes, trials), with trials possibly 0 and rates of exactly 0 or 1."""
    trials = draw(st.integers(0, max_trials))
    successes = draw(st.one_of(st.just(0), st.just(trials), st.integers(0, trials)))
    return successes, trials


confidences = st.floats(0.5, 0.999)


# -- wilson_interval -----------------------------------------------------------------


def test_wilson_interval_of_8_in_10_matches_the_textbook_value():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=5e-5)
    assert high == pytest.approx(0.9433, abs=5e-5)


@given(counts(), confidences)
def test_wilson_interval_bounds_are_the_roots_of_the_score_equation(count, confidence):
    # The interval is every p with |rate - p| <= z * sqrt(p (1 - p) / n): the roots of
    # (1 + z^2/n) p^2 - (2 rate + z^2/n) p + rate^2 = 0.
    successes, trials = count
    assume(trials > 0)
    z = norm.ppf((1 + confidence) / 2)
    rate = successes / trials
    a, b, c = 1 + z * z / trials, -(2 * rate + z * z / trials), rate * rate
    root = math.sqrt(max(0.0, b * b - 4 * a * c))
    low, high = wilson_interval(successes, trials, confidence)
    assert low == pytest.approx(max(0.0, (-b - root) / (2 * a)), abs=1e-9)
    assert high == pytest.approx(min(1.0, (-b + root) / (2 * a)), abs=1e-9)


@given(counts(), confidences)
def test_wilson_interval_lies_in_0_1_and_holds_the_observed_rate(count, confidence):
    successes, trials = count
    low, high = wilson_interval(successes, trials, confidence)
    assert 0.0 <= low <= high <= 1.0
    if trials:
        assert low <= successes / trials <= high
        assert (low == 0.0) == (successes == 0)
        assert (high == 1.0) == (successes == trials)


@given(counts(max_trials=500))
def test_wilson_interval_widens_with_confidence(count):
    narrow, wide = wilson_interval(*count, 0.9), wilson_interval(*count, 0.99)
    assert wide[0] <= narrow[0] and narrow[1] <= wide[1]
    if 0 < count[0] < count[1]:
        assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_wilson_interval_of_no_trials_is_all_of_0_1():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 0, 0.5) == (0.0, 1.0)


@pytest.mark.parametrize("trials", [30, 100, 400])
def test_wilson_interval_covers_the_true_rate_about_as_often_as_its_confidence(trials):
    # The coverage a simulation would estimate, computed exactly: the binomial
    # probability of the counts whose interval holds the true rate.
    k = np.arange(trials + 1)
    intervals = np.array([wilson_interval(int(s), trials) for s in k])
    coverages = []
    for rate in np.linspace(0.05, 0.95, 91):
        holds = (intervals[:, 0] <= rate) & (rate <= intervals[:, 1])
        coverages.append(binom.pmf(k, trials, rate)[holds].sum())
    assert abs(np.mean(coverages) - 0.95) <= 0.005
    assert min(coverages) >= 0.92


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 10), r"successes is -1 and trials is 10.*0 <= successes <= trials"),
        ((11, 10), r"successes is 11 and trials is 10"),
        ((1.5, 10), r"successes is 1\.5.*whole number"),
        ((1, True), r"trials is True.*whole number"),
        ((1, 10, 1.0), r"confidence is 1\.0.*strictly between 0 and 1"),
        ((1, 10, 0.0), r"confidence is 0\.0"),
        ((1, 10, math.nan), r"confidence is nan"),
        ((0, 0, 1.2), r"confidence is 1\.2"),
    ],
)
def test_wilson_interval_rejects_bad_arguments(args, match):
    with pytest.raises(ValidationError, match=match):
        wilson_interval(*args)


# -- compare_rates: fixed horizon ------------------------------------------------------


@given(counts(), counts())
def test_compare_rates_p_value_is_the_pooled_two_proportion_z_test(control, arm):
    (s_control, n_control), (s_arm, n_arm) = control, arm
    result = compare_rates(s_control, n_control, s_arm, n_arm)
    pooled = (s_control + s_arm) / max(1, n_control + n_arm)
    if n_control == 0 or n_arm == 0 or pooled in (0.0, 1.0):
        assert result.p_value == 1.0
        return
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_arm))
    z = (s_arm / n_arm - s_control / n_control) / se
    assert result.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9, abs=1e-300)


@given(counts(), counts(), confidences)
def test_compare_rates_diff_is_arm_minus_control_inside_its_interval(control, arm, confidence):
    (s_control, n_control), (s_arm, n_arm) = control, arm
    result = compare_rates(s_control, n_control, s_arm, n_arm, confidence=confidence)
    values = [result.diff, result.low, result.high, result.p_value, result.always_valid_p]
    assert not any(math.isnan(v) for v in values)
    assert -1.0 <= result.low <= result.diff <= result.high <= 1.0
    assert 0.0 <= result.p_value <= 1.0 and 0.0 <= result.always_valid_p <= 1.0
    if n_control and n_arm:
        assert result.diff == pytest.approx(s_arm / n_arm - s_control / n_control, abs=1e-15)
        mirrored = compare_rates(s_arm, n_arm, s_control, n_control, confidence=confidence)
        assert mirrored.diff == pytest.approx(-result.diff, abs=1e-15)
        assert (mirrored.low, mirrored.high) == pytest.approx((-result.high, -result.low))
    else:
        assert result == Comparison(0.0, -1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("arm", "control", "interval"),
    [
        # Newcombe (Stat. Med. 1998) Table II, method 10, examples (a) to (e).
        ((56, 70), (48, 80), (0.0524, 0.3339)),
        ((9, 10), (3, 10), (0.1705, 0.8090)),
        ((6, 7), (2, 7), (0.0582, 0.8062)),
        ((5, 56), (0, 29), (-0.0381, 0.1926)),
        ((0, 10), (0, 20), (-0.1611, 0.2775)),
    ],
)
def test_compare_rates_interval_is_newcombes_hybrid_score_interval(arm, control, interval):
    result = compare_rates(*control, *arm)
    assert (result.low, result.high) == pytest.approx(interval, abs=5e-5)


def test_compare_rates_says_nothing_is_known_where_data_are_missing_or_all_alike():
    assert compare_rates(0, 0, 5, 10) == Comparison(0.0, -1.0, 1.0, 1.0, 1.0)
    assert compare_rates(5, 10, 0, 0) == Comparison(0.0, -1.0, 1.0, 1.0, 1.0)
    for s in (0, 1):
        alike = compare_rates(s * 50, 50, s * 80, 80)
        assert alike.diff == 0.0 and alike.p_value == 1.0 and alike.always_valid_p == 1.0
        assert alike.low < 0.0 < alike.high


def test_compare_rates_finds_a_difference_of_all_against_nothing():
    result = compare_rates(0, 200, 200, 200)
    assert result.diff == 1.0 and result.high == 1.0
    assert result.p_value < 1e-50 and result.always_valid_p < 1e-6
    assert compare_rates(200, 200, 0, 200).low == -1.0


def test_comparison_as_dict_names_every_field():
    result = compare_rates(30, 100, 45, 100)
    assert result.as_dict() == {
        "diff": result.diff,
        "low": result.low,
        "high": result.high,
        "p_value": result.p_value,
        "always_valid_p": result.always_valid_p,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mixture_variance": 0.0}, r"mixture_variance is 0\.0.*> 0"),
        ({"mixture_variance": -1.0}, r"mixture_variance is -1\.0"),
        ({"mixture_variance": math.inf}, r"mixture_variance is inf.*finite"),
        ({"confidence": 1.5}, r"confidence is 1\.5"),
    ],
)
def test_compare_rates_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        compare_rates(0, 0, 0, 0, **kwargs)


def test_compare_rates_rejects_impossible_counts_naming_them():
    with pytest.raises(ValidationError, match=r"s_arm is 12 and n_arm is 10"):
        compare_rates(3, 10, 12, 10)
    with pytest.raises(ValidationError, match=r"s_control is -3 and n_control is 10"):
        compare_rates(-3, 10, 1, 10)


# -- compare_rates: the always-valid p-value -----------------------------------------


def null_variance(s_control, n_control, s_arm, n_arm):
    pooled = (s_control + s_arm) / (n_control + n_arm)
    return pooled * (1 - pooled) * (1 / n_control + 1 / n_arm)


@settings(max_examples=examples(50), deadline=None)
@given(
    counts(max_trials=3000),
    counts(max_trials=3000),
    st.sampled_from([0.0001, 0.0025, 0.01]),
)
def test_always_valid_p_is_one_over_the_mixture_likelihood_ratio(control, arm, tau2):
    # Lambda is the likelihood ratio of the observed difference under theta against
    # theta = 0, averaged over theta ~ N(0, tau2): integrated here numerically.
    (s_control, n_control), (s_arm, n_arm) = control, arm
    assume(n_control and n_arm and 0 < s_control + s_arm < n_control + n_arm)
    variance = null_variance(s_control, n_control, s_arm, n_arm)
    diff = s_arm / n_arm - s_control / n_control
    peak = diff * tau2 / (variance + tau2)
    assume(diff * diff / variance < 400)  # keep the integral within float range

    def averaged_ratio(theta):
        log_ratio = (2 * diff * theta - theta * theta) / (2 * variance)
        return math.exp(log_ratio) * norm.pdf(theta, scale=math.sqrt(tau2))

    lam = integrate.quad(averaged_ratio, -1.5, 1.5, points=[peak], limit=200)[0]
    result = compare_rates(s_control, n_control, s_arm, n_arm, mixture_variance=tau2)
    assert result.always_valid_p == pytest.approx(min(1.0, 1 / lam), rel=1e-6, abs=1e-12)


@given(st.integers(1, 5000), st.data())
def test_always_valid_p_with_equal_arms_is_the_papers_lambda_n(n, data):
    # Johari et al.: Lambda_n = sqrt(V / (V + n tau^2)) exp(n^2 tau^2 d^2 / (2V (V + n tau^2)))
    # for n observations per arm, V the variance of one pair's difference.
    s_control, s_arm = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
    assume(0 < s_control + s_arm < 2 * n)
    tau2 = 0.0025
    pooled = (s_control + s_arm) / (2 * n)
    v = 2 * pooled * (1 - pooled)
    d = (s_arm - s_control) / n
    log_lambda = 0.5 * math.log(v / (v + n * tau2)) + n * n * tau2 * d * d / (
        2 * v * (v + n * tau2)
    )
    expected = min(1.0, math.exp(-log_lambda))
    result = compare_rates(s_control, n, s_arm, n, mixture_variance=tau2)
    assert result.always_valid_p == pytest.approx(expected, rel=1e-9, abs=1e-300)


@given(counts(), counts(), st.sampled_from([0.0001, 0.0025, 0.04]))
def test_always_valid_p_is_never_below_the_fixed_horizon_p(control, arm, tau2):
    # A mixture of likelihood ratios is at most the largest, exp(z^2 / 2), and
    # 2 (1 - Phi(z)) <= exp(-z^2 / 2): evidence valid at every peek costs some power.
    result = compare_rates(*control, *arm, mixture_variance=tau2)
    assert result.always_valid_p >= result.p_value


def test_running_min_keeps_the_least_p_value_seen():
    assert running_min(None, 0.4) == 0.4
    assert running_min(0.4, 0.7) == 0.4
    assert running_min(0.4, 0.1) == 0.1
    seen = None
    for p in [1.0, 0.5, 0.8, 0.2, 0.9]:
        seen = running_min(seen, p)
    assert seen == 0.2


@given(st.lists(st.tuples(st.sampled_from([-0.1, 0.0, 0.2]), st.floats(0.0, 1.0)), max_size=20))
def test_directional_minima_keep_each_sides_least_p_value_apart(peeks):
    found: dict[str, float] | None = None
    overall = None
    for diff, p in peeks:
        comparison = Comparison(diff=diff, low=-1.0, high=1.0, p_value=p, always_valid_p=p)
        found = directional_min(found, comparison)
        overall = running_min(overall, p)
    found = found or directional_min(None, Comparison(0.0, -1.0, 1.0, 1.0, 1.0))
    assert found["better"] == min([p for d, p in peeks if d > 0], default=1.0)
    assert found["worse"] == min([p for d, p in peeks if d < 0], default=1.0)
    # Each side's minimum is over fewer peeks: never below the single running minimum.
    assert overall is None or min(found.values()) >= overall


PEEK_EVERY, MAX_PER_ARM = 50, 5000


def peeked(rate_control, rate_arm, replications, seed):
    """Per replication: the least always-valid and the least naive p-value seen when
    peeking after every PEEK_EVERY observations per arm, up to MAX_PER_ARM."""
    rng = np.random.default_rng(seed)
    peeks = np.arange(PEEK_EVERY, MAX_PER_ARM + 1, PEEK_EVERY)
    # Successes per block of PEEK_EVERY observations, summed: the counts at each peek.
    blocks = (replications, len(peeks))
    control = np.cumsum(rng.binomial(PEEK_EVERY, rate_control, blocks), axis=1)
    arm = np.cumsum(rng.binomial(PEEK_EVERY, rate_arm, blocks), axis=1)
    least_valid, least_naive = np.ones(replications), np.ones(replications)
    for r in range(replications):
        valid = naive = None
        for j, n in enumerate(peeks):
            result = compare_rates(int(control[r, j]), int(n), int(arm[r, j]), int(n))
            valid = running_min(valid, result.always_valid_p)
            naive = running_min(naive, result.p_value)
        least_valid[r], least_naive[r] = valid, naive
    return least_valid, least_naive


def test_always_valid_p_keeps_false_positives_under_alpha_however_often_one_peeks():
    # Equal arms at 0.3, peeked 100 times: the naive z-test's running minimum dips
    # under 0.05 far more often than 5% of the time; the always-valid one does not.
    least_valid, least_naive = peeked(0.30, 0.30, replications=400, seed=20260)
    assert np.mean(least_valid < 0.05) <= 0.065
    assert np.mean(least_naive < 0.05) > 0.12


def test_always_valid_p_detects_a_six_point_lift_within_5000_per_arm():
    # 0.30 against 0.36: a difference of 0.06 (a 20% relative lift).
    least_valid, _ = peeked(0.30, 0.36, replications=200, seed=7)
    assert np.mean(least_valid < 0.05) >= 0.80
