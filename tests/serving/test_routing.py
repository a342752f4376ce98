"""Routing: sticky shares by hash, and the bandits that learn which arm is best.

Simulations draw from fixed seeds, so each runs the same way every time; their bounds
are several binomial standard deviations wide, not tuned to the seed.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import threading
from fractions import Fraction
from hashlib import blake2b
from itertools import accumulate

import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import beta as beta_distribution

from litemlops.errors import ValidationError
from litemlops.serving import routing
from litemlops.serving.routing import (
    EpsilonGreedyRouter,
    ShareRouter,
    ThompsonRouter,
    sticky_fraction,
)

KEYS = [f"user-{i}" for i in range(20_000)]


def binomial_slack(n: int, p: float, sigmas: float = 5.0) -> float:
    """How far a count of n Bernoulli(p) draws may stray from n * p."""
    return sigmas * math.sqrt(n * p * (1 - p)) + 1


# -- sticky_fraction and ShareRouter ------------------------------------------------


@given(st.text(), st.text())
def test_sticky_fraction_is_blake2b_of_salt_separator_key_over_2_to_the_64(key, salt):
    digest = blake2b(salt.encode() + b"\xff" + key.encode(), digest_size=8).digest()
    exact = Fraction(int.from_bytes(digest, "big"), 2**64)
    value = sticky_fraction(key, salt)
    assert 0.0 <= value < 1.0
    # Rounded down to the 53 bits a float holds, never up to 1.0.
    assert value <= exact < Fraction(value) + Fraction(1, 2**53)
    assert sticky_fraction(key, salt) == value


def test_sticky_fraction_does_not_confuse_where_the_salt_ends():
    assert sticky_fraction("c", "ab") != sticky_fraction("bc", "a")
    assert sticky_fraction("", "ab") != sticky_fraction("b", "a")


def test_sticky_fraction_is_uniform_over_keys():
    values = [sticky_fraction(key, "salt") for key in KEYS]
    n = len(values)
    for decile in range(10):
        inside = sum(decile / 10 <= v < (decile + 1) / 10 for v in values)
        assert abs(inside - n / 10) <= binomial_slack(n, 0.1)


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
    st.text(max_size=10),
    st.text(max_size=20),
)
def test_share_router_sends_a_key_to_the_arm_whose_interval_holds_its_fraction(weights, salt, key):
    shares = normalised(weights)
    router = ShareRouter(shares, salt)
    arm = router.choose(key)
    fraction = sticky_fraction(key, salt)
    bounds = [0.0, *accumulate(shares)]
    assert shares[arm] > 0
    assert bounds[arm] <= fraction
    # The last arm with a share ends at 1 whatever the rounding of the sum.
    assert fraction < bounds[arm + 1] or not any(shares[arm + 1 :])
    assert router.choose(key) == arm
    assert ShareRouter(list(shares), salt).choose(key) == arm


def normalised(weights: list[float]) -> list[float]:
    total = math.fsum(weights)
    return [w / total for w in weights]


@settings(max_examples=examples(15), deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5).filter(lambda w: sum(w) > 0.01),
    st.text(max_size=8),
)
def test_share_router_observed_shares_stay_within_binomial_bounds(weights, salt):
    shares = normalised(weights)
    router = ShareRouter(shares, salt)
    counts = [0] * len(shares)
    for key in KEYS:
        counts[router.choose(key)] += 1
    for arm, share in enumerate(shares):
        assert abs(counts[arm] - share * len(KEYS)) <= binomial_slack(len(KEYS), share)
        if share == 0:
            assert counts[arm] == 0


@pytest.mark.parametrize(
    "shares", [[0.0, 1.0], [1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.3, 0.0, 0.7, 0.0]]
)
def test_share_router_never_chooses_an_arm_of_share_zero(shares):
    router = ShareRouter(shares, "experiment-1")
    chosen = {router.choose(key) for key in KEYS[:5000]}
    assert chosen == {arm for arm, share in enumerate(shares) if share > 0}


def test_share_router_a_new_salt_reassigns_about_half_the_keys_of_a_50_50_split():
    before, after = ShareRouter([0.5, 0.5], "run-1"), ShareRouter([0.5, 0.5], "run-2")
    moved = sum(before.choose(key) != after.choose(key) for key in KEYS)
    assert abs(moved - len(KEYS) / 2) <= binomial_slack(len(KEYS), 0.5)


def test_share_router_growing_a_canary_only_moves_keys_onto_it():
    small, large = ShareRouter([0.9, 0.1], "canary"), ShareRouter([0.7, 0.3], "canary")
    for key in KEYS[:5000]:
        if small.choose(key) == 1:
            assert large.choose(key) == 1


LARGEST_FRACTION = 1 - 2**-53


@pytest.mark.parametrize(
    ("shares", "fraction", "arm"),
    [
        ([0.5, 0.5], 0.0, 0),
        ([0.5, 0.5], 0.5, 1),  # intervals are [low, high): a bound starts the next arm
        ([0.5, 0.5], math.nextafter(0.5, 0), 0),
        ([0.0, 1.0], 0.0, 1),
        ([0.25, 0.0, 0.75], 0.25, 2),
        ([0.5, 0.5], LARGEST_FRACTION, 1),
        # Shares a rounding short of 1: the largest fraction still lands on the last
        # arm with a share, never on a share-0 arm after it.
        ([0.5, 0.5 - 5e-10, 0.0], LARGEST_FRACTION, 1),
        ([0.5 - 5e-10, 0.5, 0.0, 0.0], LARGEST_FRACTION, 1),
    ],
)
def test_share_router_interval_bounds(monkeypatch, shares, fraction, arm):
    monkeypatch.setattr(routing, "StickyHash", lambda salt: lambda key: fraction)
    assert ShareRouter(shares, "salt").choose("any key") == arm


def test_share_router_accepts_shares_summing_to_one_up_to_rounding():
    assert ShareRouter([0.1] * 10, "s").choose("k") in range(10)
    assert ShareRouter([0.5, 0.5 - 5e-10], "s").choose("k") in (0, 1)


@pytest.mark.parametrize(
    ("shares", "match"),
    [
        ([], r"shares is empty"),
        ([0.5, -0.1, 0.6], r"share of arm 1 is -0\.1.*finite number >= 0"),
        ([math.nan, 1.0], r"share of arm 0 is nan.*finite"),
        ([math.inf, 0.0], r"share of arm 0 is inf.*finite"),
        ([0.5, 0.4], r"shares sum to 0\.9.*must sum to 1"),
        ([0.5, 0.5 + 2e-9], r"shares sum to .*must sum to 1"),
        ([0.0, 0.0], r"shares sum to 0\.0.*must sum to 1"),
    ],
)
def test_share_router_rejects_bad_shares_saying_what_is_wrong(shares, match):
    with pytest.raises(ValidationError, match=match):
        ShareRouter(shares, "salt")


# -- Bandits: a simulated world ----------------------------------------------------


def simulate(router, rates, steps, *, seed, max_delay=0):
    """Choose `steps` times; each reward lands up to `max_delay` choices later, in
    whatever order its delay gives. Returns the arm chosen at each step."""
    world = random.Random(seed)
    pending: list[tuple[int, int, int, bool]] = []  # (due, tiebreak, arm, success)
    chosen = []
    for step in range(steps):
        while pending and pending[0][0] <= step:
            _, _, arm, success = heapq.heappop(pending)
            router.reward(arm, success)
        arm = router.choose()
        chosen.append(arm)
        success = world.random() < rates[arm]
        heapq.heappush(pending, (step + world.randint(0, max_delay), step, arm, success))
    return chosen


def regret(chosen, rates):
    """Expected successes lost by not always choosing the best arm."""
    best = max(rates)
    return sum(best - rates[arm] for arm in chosen)


# -- ThompsonRouter ----------------------------------------------------------------


def test_thompson_sends_most_traffic_to_the_better_arm_despite_late_rewards():
    rates, steps = [0.30, 0.45], 8000
    router = ThompsonRouter(2, rng=random.Random(7))
    chosen = simulate(router, rates, steps, seed=11, max_delay=300)
    second_half = chosen[steps // 2 :]
    assert second_half.count(1) / len(second_half) >= 0.70
    # Every reward not yet due when the run ends is the only one missing.
    assert sum(router.successes) + sum(router.failures) >= steps - 301


def test_thompson_regret_grows_sublinearly():
    rates, horizon = [0.30, 0.45], 6000
    router = ThompsonRouter(2, rng=random.Random(3))
    chosen = simulate(router, rates, 2 * horizon, seed=5, max_delay=300)
    first, both = regret(chosen[:horizon], rates), regret(chosen, rates)
    assert first > 0
    assert both < 1.6 * first


def test_thompson_chooses_by_posterior_draws():
    router = ThompsonRouter(3, rng=random.Random(1))
    router.load({"successes": [5, 90, 40], "failures": [95, 10, 60]})
    counts = [0, 0, 0]
    for _ in range(2000):
        counts[router.choose()] += 1
    # Beta(91, 11) beats Beta(41, 61) and Beta(6, 96) almost surely.
    assert counts[1] >= 1990


def probability_first_beta_is_larger(a1, b1, a2, b2):
    """P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2), by quadrature."""
    x, y = beta_distribution(a1, b1), beta_distribution(a2, b2)
    return integrate.quad(lambda t: x.pdf(t) * y.cdf(t), 0, 1)[0]


@pytest.mark.parametrize("prior", [(1.0, 1.0), (50.0, 50.0), (0.5, 3.0)])
def test_thompson_chooses_an_arm_as_often_as_its_posterior_draw_wins(prior):
    # One failure on arm 0, one success on arm 1, over the prior: a strong prior
    # leaves the two arms nearly even, a weak one favours arm 1.
    router = ThompsonRouter(2, rng=random.Random(2), prior=prior)
    router.reward(0, False)
    router.reward(1, True)
    steps = 6000
    share = sum(router.choose() for _ in range(steps)) / steps
    alpha, beta = prior
    expected = probability_first_beta_is_larger(alpha + 1, beta, alpha, beta + 1)
    assert abs(share - expected) * steps <= binomial_slack(steps, expected)


@pytest.mark.parametrize(("n_arms", "min_share"), [(2, 0.1), (3, 0.05), (3, 1 / 3)])
def test_thompson_gives_every_arm_at_least_min_share(n_arms, min_share):
    rates = [0.1] * (n_arms - 1) + [0.8]
    steps = 6000
    router = ThompsonRouter(n_arms, min_share=min_share, rng=random.Random(4))
    chosen = simulate(router, rates, steps, seed=9)
    for arm in range(n_arms - 1):
        count = chosen.count(arm)
        assert count >= min_share * steps - binomial_slack(steps, min_share)
        # And not much more: exploration is n_arms * min_share, split evenly.
        assert count <= (min_share + 0.02) * steps + binomial_slack(steps, min_share)


def test_thompson_state_round_trips_through_json_and_a_restored_router_carries_on():
    original = ThompsonRouter(3, min_share=0.05, rng=random.Random(8))
    simulate(original, [0.2, 0.5, 0.4], 500, seed=3)
    state = json.loads(json.dumps(original.state()))
    assert state == {"successes": original.successes, "failures": original.failures}
    # The last choice's reward is due after the run ends.
    assert sum(state["successes"]) + sum(state["failures"]) == 499

    restored = ThompsonRouter(3, min_share=0.05, rng=random.Random(99))
    restored.load(state)
    assert restored.successes == original.successes
    assert restored.failures == original.failures
    original.rng, restored.rng = random.Random(21), random.Random(21)
    assert simulate(original, [0.2, 0.5, 0.4], 300, seed=6) == simulate(
        restored, [0.2, 0.5, 0.4], 300, seed=6
    )


def test_thompson_counts_are_copies():
    router = ThompsonRouter(2, rng=random.Random(0))
    router.successes.append(5)
    router.failures[0] = 7
    router.state()["successes"][1] = 3
    assert router.successes == [0, 0]
    assert router.failures == [0, 0]


def test_thompson_rewards_from_many_threads_are_all_counted():
    router = ThompsonRouter(2, rng=random.Random(0))

    def deliver(arm: int) -> None:
        for i in range(5000):
            router.reward(arm, i % 2 == 0)
            router.choose()

    threads = [threading.Thread(target=deliver, args=(i % 2,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert router.successes == [5000, 5000]
    assert router.failures == [5000, 5000]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_arms": 0}, r"n_arms is 0.*at least one arm"),
        ({"n_arms": 2.5}, r"n_arms is 2\.5.*whole number"),
        ({"n_arms": 2, "min_share": 0.6}, r"min_share is 0\.6.*\[0, 0\.5\]"),
        ({"n_arms": 2, "min_share": -0.1}, r"min_share is -0\.1"),
        ({"n_arms": 2, "min_share": math.nan}, r"min_share is nan"),
        ({"n_arms": 2, "prior": (0.0, 1.0)}, r"prior is \(0\.0, 1\.0\).*> 0"),
        ({"n_arms": 2, "prior": (1.0, math.inf)}, r"prior is .*finite"),
        ({"n_arms": 2, "prior": (1.0,)}, r"prior is .*\(alpha, beta\)"),
        ({"n_arms": 2, "prior": (1.0, 1.0, 1.0)}, r"prior is \(1\.0, 1\.0, 1\.0\): .*beta"),
        ({"n_arms": 2, "prior": (-1.0, 1.0)}, r"prior is \(-1\.0, 1\.0\): .*> 0"),
    ],
)
def test_thompson_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        ThompsonRouter(**kwargs)


@pytest.mark.parametrize("router_type", [ThompsonRouter, EpsilonGreedyRouter])
@pytest.mark.parametrize(
    ("arm", "match"),
    [(2, r"arm is 2.*\[0, 1\]"), (-1, r"arm is -1.*\[0, 1\]"), (True, r"arm is True")],
)
def test_routers_reject_a_reward_for_an_arm_they_do_not_have(router_type, arm, match):
    router = router_type(2, rng=random.Random(0))
    with pytest.raises(ValidationError, match=match):
        router.reward(arm, True)
    assert router.successes == [0, 0]


@pytest.mark.parametrize("router_type", [ThompsonRouter, EpsilonGreedyRouter])
@pytest.mark.parametrize("arm", [3, 4, 1000])
def test_any_arm_past_the_last_is_refused_naming_the_last(router_type, arm):
    router = router_type(3, rng=random.Random(0))
    with pytest.raises(ValidationError, match=rf"arm is {arm}: .* in \[0, 2\]$"):
        router.reward(arm, True)
    router.reward(2, True)  # the last arm is one
    assert router.successes == [0, 0, 1]


def test_thompson_starts_from_a_uniform_prior_on_every_arm():
    # Beta(1, 1): before any reward every success rate is as likely as another, so the
    # first rewards weigh as much as the data says (a Beta(2, 1) would lean to success).
    assert ThompsonRouter(2).prior == (1.0, 1.0)
    assert ThompsonRouter(2, prior=(2, 3)).prior == (2.0, 3.0)


@pytest.mark.parametrize("router_type", [ThompsonRouter, EpsilonGreedyRouter])
def test_a_state_of_many_arms_loads_into_a_router_of_as_many(router_type):
    # Past 256 arms, two equal lengths are different int objects: compared by value.
    state = {"successes": list(range(300)), "failures": [1] * 300}
    router = router_type(300, rng=random.Random(0))
    router.load(state)
    assert router.state() == state


@pytest.mark.parametrize("router_type", [ThompsonRouter, EpsilonGreedyRouter])
def test_a_state_with_any_negative_count_is_refused(router_type):
    router = router_type(2, rng=random.Random(0))
    with pytest.raises(ValidationError, match=r"state\['failures'\]\[0\] is -1: .*negative"):
        router.load({"successes": [0, 0], "failures": [-1, 0]})
    router.load({"successes": [0, 0], "failures": [0, 0]})  # zero is a count
    assert router.state() == {"successes": [0, 0], "failures": [0, 0]}


@pytest.mark.parametrize("router_type", [ThompsonRouter, EpsilonGreedyRouter])
@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"successes": [1, 2]}, r"no 'failures'"),
        ({"failures": [1, 2, 3]}, r"no 'successes'"),
        ({"successes": [1, 2], "failures": [1]}, r"'failures'\] has 1 counts.*2 arms"),
        ({"successes": [1, 2, 3], "failures": [1, 2]}, r"'successes'\] has 3 counts"),
        ({"successes": [1, -2], "failures": [0, 0]}, r"\[1\] is -2.*negative"),
        ({"successes": [1, 0.5], "failures": [0, 0]}, r"\[1\] is 0\.5.*whole number"),
        ({"successes": "12", "failures": [0, 0]}, r"list of counts"),
        ([[1, 2], [3, 4]], r"state is a list"),
    ],
)
def test_routers_reject_a_state_of_the_wrong_shape(router_type, state, match):
    router = router_type(2, rng=random.Random(0))
    router.load({"successes": [4, 5], "failures": [6, 7]})
    with pytest.raises(ValidationError, match=match):
        router.load(state)
    assert router.state() == {"successes": [4, 5], "failures": [6, 7]}


# -- EpsilonGreedyRouter -----------------------------------------------------------


def test_epsilon_greedy_tries_arms_without_rewards_first_in_order():
    router = EpsilonGreedyRouter(3, epsilon=0.0, rng=random.Random(0))
    assert router.choose() == 0
    router.reward(0, True)
    assert router.choose() == 1
    router.reward(1, False)
    assert router.choose() == 2
    router.reward(2, False)
    assert router.choose() == 0


def test_epsilon_greedy_exploits_the_best_observed_rate_ties_to_the_lowest_index():
    router = EpsilonGreedyRouter(3, epsilon=0.0, rng=random.Random(0))
    router.load({"successes": [3, 6, 6], "failures": [7, 4, 4]})
    assert router.choose() == 1
    router.reward(2, True)  # 7/11 > 6/10
    assert router.choose() == 2
    router.load({"successes": [1, 2, 0], "failures": [1, 2, 1]})
    assert router.choose() == 0


def test_epsilon_greedy_converges_to_the_better_arm():
    rates, steps = [0.30, 0.45], 6000
    router = EpsilonGreedyRouter(2, epsilon=0.1, rng=random.Random(12))
    chosen = simulate(router, rates, steps, seed=13, max_delay=50)
    second_half = chosen[steps // 2 :]
    # Exploitation picks arm 1; exploration picks it half the time: 0.95 expected.
    assert second_half.count(1) >= (0.95 - 0.02) * len(second_half)


@pytest.mark.parametrize(
    ("epsilon", "min_share", "explore"), [(0.3, 0.0, 0.3), (0.1, 0.0, 0.1), (0.0, 0.1, 0.3)]
)
def test_epsilon_greedy_explores_about_epsilon_or_n_arms_times_min_share(
    epsilon, min_share, explore
):
    router = EpsilonGreedyRouter(3, epsilon=epsilon, min_share=min_share, rng=random.Random(5))
    router.load({"successes": [1000, 0, 0], "failures": [0, 1000, 1000]})
    steps = 20_000
    counts = [0, 0, 0]
    for _ in range(steps):
        counts[router.choose()] += 1
    # Exploration spreads evenly, so each losing arm gets explore / 3.
    for arm in (1, 2):
        assert abs(counts[arm] - explore / 3 * steps) <= binomial_slack(steps, explore / 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_arms": 0}, r"n_arms is 0"),
        ({"n_arms": 2, "epsilon": 1.5}, r"epsilon is 1\.5.*\[0, 1\]"),
        ({"n_arms": 2, "epsilon": -0.01}, r"epsilon is -0\.01"),
        ({"n_arms": 2, "epsilon": math.nan}, r"epsilon is nan"),
        ({"n_arms": 4, "min_share": 0.3}, r"min_share is 0\.3.*\[0, 0\.25\]"),
    ],
)
def test_epsilon_greedy_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        EpsilonGreedyRouter(**kwargs)


def test_routers_accept_the_boundaries_of_their_arguments():
    assert ThompsonRouter(1, rng=random.Random(0)).choose() == 0
    assert ThompsonRouter(4, min_share=0.25, rng=random.Random(0)).choose() in range(4)
    assert EpsilonGreedyRouter(2, epsilon=1.0, min_share=0.5).choose() in (0, 1)
