"""Which arm of a deployment answers a request: fixed shares by a sticky hash, or a bandit.

Everything here is on the request path, so a choice is pure CPython (blake2b, bisect,
`random.Random`): a few microseconds, no numpy.

- `ShareRouter` splits keys (a user id, a request id) by fixed shares; a key keeps its
  arm for as long as the shares and the salt stay the same (canary, A/B test).
- `ThompsonRouter` and `EpsilonGreedyRouter` learn from binary rewards which arm is
  best and send it more traffic; `min_share` keeps every arm measured.
"""

from __future__ import annotations

import math
import random
import struct
import threading
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from hashlib import blake2b
from itertools import accumulate
from operator import index
from typing import Any

from litemlops.errors import ValidationError

# UTF-8 never produces the byte 0xFF, so (salt, key) pairs cannot collide by moving
# characters across the boundary: ("ab", "c") and ("a", "bc") hash differently.
_SEPARATOR = b"\xff"
_TWO_TO_MINUS_53 = 2.0**-53
_unpack_u64 = struct.Struct(">Q").unpack

SHARE_TOLERANCE = 1e-9
"""How far from 1 the shares of a `ShareRouter` may sum (float rounding)."""


def sticky_fraction(key: str, salt: str) -> float:
    """A number in [0, 1) fixed by (key, salt) and uniform over keys.

    The 64-bit blake2b digest of salt, 0xFF and key, divided by 2**64 and rounded down
    to a double: only its top 53 bits are kept, since a float cannot hold more and
    rounding to nearest would turn the largest digests into 1.0.
    """
    return StickyHash(salt)(key)


class StickyHash:
    """`sticky_fraction(key, salt)` for one salt, at less than half its cost per key: the
    salt's part of the hash is computed once and copied, and the digest read by `struct`
    (keys are hashed on the request path, once per request)."""

    def __init__(self, salt: str) -> None:
        self._salted = blake2b(salt.encode() + _SEPARATOR, digest_size=8)

    def __call__(self, key: str) -> float:
        h = self._salted.copy()
        h.update(key.encode())
        return (_unpack_u64(h.digest())[0] >> 11) * _TWO_TO_MINUS_53


class ShareRouter:
    """Sends each key to an arm by fixed shares; the same key and salt, the same arm.

    shares: the fraction of keys per arm, each finite and >= 0, summing to 1.
    salt: a new salt reshuffles which keys go where (a new experiment); keeping it
    while moving shares only moves the keys between the arms whose intervals moved.
    """

    def __init__(self, shares: Sequence[float], salt: str) -> None:
        self.shares = _checked_shares(shares)
        self.salt = salt
        bounds = list(accumulate(self.shares))
        # A key's fraction is < 1, so the last arm with a share must end at exactly 1
        # (the sum may be a rounding short); arms after it (share 0) end there too and
        # bisect_right never lands on an empty interval.
        last = max(i for i, share in enumerate(self.shares) if share > 0)
        for i in range(last, len(bounds)):
            bounds[i] = 1.0
        self._bounds = bounds
        self._fraction = StickyHash(salt)

    def choose(self, key: str) -> int:
        """The arm whose cumulative interval holds `sticky_fraction(key, salt)`."""
        return bisect_right(self._bounds, self._fraction(key))

    def __repr__(self) -> str:
        return f"ShareRouter(shares={list(self.shares)!r}, salt={self.salt!r})"


def _checked_shares(shares: Sequence[float]) -> tuple[float, ...]:
    checked = tuple(float(share) for share in shares)
    if not checked:
        raise ValidationError("shares is empty: give one share per arm (at least one arm)")
    for arm, share in enumerate(checked):
        if not math.isfinite(share) or share < 0:
            raise ValidationError(
                f"share of arm {arm} is {share!r}: each share must be a finite number >= 0"
            )
    total = math.fsum(checked)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ValidationError(
            f"shares sum to {total!r}: they are fractions of traffic and must sum to 1"
        )
    return checked


class _BinaryBandit:
    """Counts of successes and failures per arm, shared by the learning routers.

    The counts are guarded by a lock taken only to read or bump them, so rewards may
    arrive on other threads than the choices.
    """

    def __init__(self, n_arms: int, min_share: float, rng: random.Random | None) -> None:
        n_arms = _count("n_arms", n_arms)
        if n_arms < 1:
            raise ValidationError(f"n_arms is {n_arms}: a router needs at least one arm")
        min_share = float(min_share)
        if not 0.0 <= min_share <= 1.0 / n_arms:
            raise ValidationError(
                f"min_share is {min_share!r}: it must lie in [0, 1/n_arms] = [0, {1 / n_arms!r}]"
                " (each of the arms cannot get more than an equal split)"
            )
        self.n_arms = n_arms
        self.min_share = min_share
        self.rng = rng if rng is not None else random.Random()
        self._successes = [0] * n_arms
        self._failures = [0] * n_arms
        self._lock = threading.Lock()

    @property
    def successes(self) -> list[int]:
        """Successes per arm (a copy)."""
        with self._lock:
            return list(self._successes)

    @property
    def failures(self) -> list[int]:
        """Failures per arm (a copy)."""
        with self._lock:
            return list(self._failures)

    def reward(self, arm: int, success: bool) -> None:
        """Record the outcome of a request an arm answered (in any order, any delay)."""
        arm = _count("arm", arm)
        if not 0 <= arm < self.n_arms:
            raise ValidationError(
                f"arm is {arm!r}: it must be an arm index in [0, {self.n_arms - 1}]"
            )
        with self._lock:
            if success:
                self._successes[arm] += 1
            else:
                self._failures[arm] += 1

    def state(self) -> dict[str, list[int]]:
        """The counts, JSON-able, for `load` after a restart."""
        with self._lock:
            return {"successes": list(self._successes), "failures": list(self._failures)}

    def load(self, state: Mapping[str, Any]) -> None:
        """Replace the counts with those `state()` returned (the same number of arms)."""
        if not isinstance(state, Mapping):
            raise ValidationError(
                f"state is a {type(state).__name__}: pass the dict `state()` returned"
            )
        counts = {}
        for name in ("successes", "failures"):
            if name not in state:
                raise ValidationError(f"state has no {name!r}: pass the dict `state()` returned")
            values = state[name]
            if isinstance(values, str | bytes) or not isinstance(values, Sequence):
                raise ValidationError(f"state[{name!r}] must be a list of counts, one per arm")
            if len(values) != self.n_arms:
                raise ValidationError(
                    f"state[{name!r}] has {len(values)} counts but the router has "
                    f"{self.n_arms} arms: load a state saved by a router with as many arms"
                )
            counts[name] = [_count(f"state[{name!r}][{i}]", v) for i, v in enumerate(values)]
            for i, value in enumerate(counts[name]):
                if value < 0:
                    raise ValidationError(
                        f"state[{name!r}][{i}] is {value}: counts cannot be negative"
                    )
        with self._lock:
            self._successes = counts["successes"]
            self._failures = counts["failures"]

    def _counts(self) -> tuple[list[int], list[int]]:
        with self._lock:
            return list(self._successes), list(self._failures)


class ThompsonRouter(_BinaryBandit):
    """Thompson sampling over Beta-Bernoulli posteriors: each arm in proportion to the
    chance that it is the best.

    min_share: with probability n_arms * min_share a choice is a uniformly random arm,
    so every arm gets at least min_share of traffic and keeps being measured.
    rng: where the randomness comes from (a seeded `random.Random` in tests).
    prior: (alpha, beta) of the Beta prior of every arm's success rate.
    """

    def __init__(
        self,
        n_arms: int,
        *,
        min_share: float = 0.0,
        rng: random.Random | None = None,
        prior: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        super().__init__(n_arms, min_share, rng)
        checked = tuple(float(p) for p in prior)
        if len(checked) != 2 or not all(math.isfinite(p) and p > 0 for p in checked):
            raise ValidationError(
                f"prior is {prior!r}: it must be (alpha, beta), both finite and > 0"
            )
        self.prior = (checked[0], checked[1])

    def choose(self) -> int:
        """The arm to answer the next request."""
        if self.rng.random() < self.n_arms * self.min_share:
            return self.rng.randrange(self.n_arms)
        successes, failures = self._counts()
        alpha, beta = self.prior
        betavariate = self.rng.betavariate
        best, best_draw = 0, -1.0
        for arm in range(self.n_arms):
            draw = betavariate(alpha + successes[arm], beta + failures[arm])
            if draw > best_draw:
                best, best_draw = arm, draw
        return best

    def __repr__(self) -> str:
        return (
            f"ThompsonRouter(n_arms={self.n_arms}, min_share={self.min_share!r}, "
            f"prior={self.prior!r})"
        )


class EpsilonGreedyRouter(_BinaryBandit):
    """Epsilon-greedy: a uniformly random arm with probability epsilon, else the arm
    with the best observed success rate (ties go to the lowest index).

    Arms with no reward yet are chosen first, lowest index first, so every arm has a
    rate before any is preferred. Rewards that arrive late leave such an arm taking the
    traffic until its first reward lands; `min_share` or epsilon keep the others served.
    min_share: the floor of each arm's traffic; exploration happens with probability
    max(epsilon, n_arms * min_share).
    """

    def __init__(
        self,
        n_arms: int,
        *,
        epsilon: float = 0.1,
        min_share: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(n_arms, min_share, rng)
        epsilon = float(epsilon)
        if not 0.0 <= epsilon <= 1.0:
            raise ValidationError(f"epsilon is {epsilon!r}: it must be a probability in [0, 1]")
        self.epsilon = epsilon

    def choose(self) -> int:
        """The arm to answer the next request."""
        if self.rng.random() < max(self.epsilon, self.n_arms * self.min_share):
            return self.rng.randrange(self.n_arms)
        successes, failures = self._counts()
        best, best_rate = 0, -1.0
        for arm in range(self.n_arms):
            trials = successes[arm] + failures[arm]
            if trials == 0:
                return arm
            rate = successes[arm] / trials
            if rate > best_rate:
                best, best_rate = arm, rate
        return best

    def __repr__(self) -> str:
        return (
            f"EpsilonGreedyRouter(n_arms={self.n_arms}, epsilon={self.epsilon!r}, "
            f"min_share={self.min_share!r})"
        )


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"{name} is {value!r}: it must be a whole number")
    try:
        return index(value)
    except TypeError:
        raise ValidationError(f"{name} is {value!r}: it must be a whole number") from None
