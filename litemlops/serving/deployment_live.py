"""A deployment while it serves: which arm answers a request, and what each arm did.

Everything here runs on the request path, so it only counts and appends: the arm
choice (a hash or a posterior draw), counters, bounded samples of latencies and
scores, and the (arm, request id) pairs waiting to be written. The controller
(`Deployments.tick`, off the request path) writes those in one transaction,
joins labels, and judges the windows.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from litemlops.serving.deployment_spec import DeploymentSpec
from litemlops.serving.deployment_store import ArmOutcomes, DeploymentRecord
from litemlops.serving.routing import (
    EpsilonGreedyRouter,
    ShareRouter,
    StickyHash,
    ThompsonRouter,
)

T = TypeVar("T")

SAMPLE_CAP = 4096
"""Latencies and scores kept per arm and window (a uniform reservoir beyond it)."""


@dataclass(frozen=True)
class Arm:
    """One arm: its name in events and reports, the model URI it serves, its version."""

    name: str
    uri: str
    version: int | None


@dataclass
class Sample:
    """A uniform sample of at most `SAMPLE_CAP` values (reservoir sampling)."""

    values: list[float] = field(default_factory=list)
    seen: int = 0

    def add_many(self, values: list[float], rng: random.Random) -> None:
        room = SAMPLE_CAP - len(self.values)
        if len(values) <= room:  # the common case, in one step
            self.values.extend(values)
            self.seen += len(values)
            return
        for value in values:
            self.add(value, rng)

    def add(self, value: float, rng: random.Random) -> None:
        self.seen += 1
        if len(self.values) < SAMPLE_CAP:
            self.values.append(value)
        else:
            i = int(rng.random() * self.seen)
            if i < SAMPLE_CAP:
                self.values[i] = value


@dataclass
class Window:
    """What an arm did since its window began: requests answered, errors, latencies
    (ms) and scores (the chosen entity's score or each row's)."""

    requests: int = 0
    errors: int = 0
    latency_ms: Sample = field(default_factory=Sample)
    scores: Sample = field(default_factory=Sample)


class LiveDeployment:
    """An active deployment's routing and counts, for one service.

    rng: randomness of bandit draws and samples (tests pass a seeded one).
    """

    def __init__(
        self,
        record: DeploymentRecord,
        arms: Sequence[Arm],
        outcomes: Sequence[ArmOutcomes] = (),
        *,
        rng: random.Random | None = None,
    ):
        self.record = record
        self.spec = DeploymentSpec.restore(record.spec)
        self.arms = tuple(arms)
        self.rng = rng or random.Random()
        self.windows = [Window() for _ in self.arms]
        #: Requests and errors of each arm since the deployment began (this process).
        self.requests = [0] * len(self.arms)
        self.errors = [0] * len(self.arms)
        #: What the requests table holds per arm (seeded from it, then kept up to date
        #: by the controller): requests recorded, labels joined, successes, label sums.
        n = len(self.arms)
        self.recorded, self.labelled, self.successes = [0] * n, [0] * n, [0] * n
        self.label_sums = [0.0] * n
        for o in outcomes:
            if o.arm < n:
                self.recorded[o.arm], self.labelled[o.arm] = o.requests, o.labelled
                self.successes[o.arm], self.label_sums[o.arm] = o.successes, o.label_sum
        #: The champion's last window with enough requests, the canary's baseline once
        #: the challenger takes all traffic.
        self.baseline: Window | None = None
        #: (arm, request id) of each request answered, oldest first, until the controller
        #: takes them: a deque, so the request path appends without a lock and a take
        #: never loses a request appended while it drains.
        self._served: collections.deque[tuple[int, str]] = collections.deque()
        self._sample_hash = StickyHash(record.salt)
        spec = self.spec
        self.router: ShareRouter | ThompsonRouter | EpsilonGreedyRouter | None = None
        if spec.strategy == "bandit":
            if spec.algorithm == "thompson":
                self.router = ThompsonRouter(len(self.arms), min_share=spec.min_share, rng=self.rng)
            else:
                self.router = EpsilonGreedyRouter(
                    len(self.arms), epsilon=spec.epsilon, min_share=spec.min_share, rng=self.rng
                )
            self.router.load(_posterior_state(outcomes, len(self.arms)))
        elif spec.strategy == "ab":
            self.router = ShareRouter(spec.shares, record.salt)
        elif spec.strategy == "canary":
            self.router = ShareRouter(_canary_shares(self.share), record.salt)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def strategy(self) -> str:
        return self.spec.strategy

    @property
    def share(self) -> float:
        """A canary's challenger share now (its step's; 0 before it starts)."""
        step = int(self.record.status.get("step", 0))
        return self.spec.steps[step] if self.spec.strategy == "canary" else 0.0

    # -- the request path -------------------------------------------------------------

    def choose(self, request_id: str, ids: Sequence[Any]) -> int:
        """The arm that answers this request (0, the champion, for a shadow)."""
        router = self.router
        if router is None:
            return 0
        if isinstance(router, ShareRouter):
            key = request_id if self.spec.sticky == "request" else _entities_key(ids)
            return router.choose(key)
        return router.choose()

    def sampled(self, request_id: str) -> bool:
        """Whether a shadow challenger also scores this request (its `sample` share,
        sticky by request id)."""
        sample = self.spec.sample
        return sample >= 1.0 or self._sample_hash(request_id) < sample

    def served(self, arm: int, request_id: str, latency_ms: float, score: float) -> None:
        """An arm answered: count it, sample it, and queue (arm, request) for the join."""
        window = self.windows[arm]
        window.requests += 1
        window.latency_ms.add(latency_ms, self.rng)
        window.scores.add(score, self.rng)
        self.requests[arm] += 1
        if self.router is not None:  # a shadow's labels are the champion's: no row
            self._served.append((arm, request_id))

    def failed(self, arm: int, latency_ms: float) -> None:
        """An arm raised answering (the champion answered instead)."""
        window = self.windows[arm]
        window.requests += 1
        window.errors += 1
        window.latency_ms.add(latency_ms, self.rng)
        self.requests[arm] += 1
        self.errors[arm] += 1

    # -- the controller's side --------------------------------------------------------

    def take(self) -> list[tuple[int, str]]:
        """The (arm, request id) pairs queued since the last take, oldest first."""
        return drain(self._served)

    def put_back(self, served: list[tuple[int, str]]) -> None:
        """Requests a failed write took: they go first in the next one."""
        self._served.extendleft(reversed(served))

    def recorded_requests(self, served: list[tuple[int, str]]) -> None:
        for arm, _ in served:
            self.recorded[arm] += 1

    def rewarded(self, arm: int, label: float) -> None:
        """A label joined a request this deployment served: count it; a bandit learns."""
        if not 0 <= arm < len(self.arms):
            return
        self.labelled[arm] += 1
        self.successes[arm] += label > 0
        self.label_sums[arm] += label
        if isinstance(self.router, (ThompsonRouter, EpsilonGreedyRouter)):
            self.router.reward(arm, label > 0)

    def outcomes(self) -> list[ArmOutcomes]:
        return [
            ArmOutcomes(i, self.recorded[i], self.labelled[i], self.successes[i],
                        self.label_sums[i])
            for i in range(len(self.arms))
        ]  # fmt: skip

    def new_windows(self) -> list[Window]:
        """Start every arm's window afresh; return the ended ones."""
        ended, self.windows = self.windows, [Window() for _ in self.arms]
        return ended

    def set_status(self, status: dict[str, Any]) -> None:
        """The deployment's live status is `status` now (a copy is kept)."""
        self.record = replace(self.record, status=dict(status))

    def set_canary_step(self, status: dict[str, Any]) -> None:
        """Route by the canary step `status` names."""
        self.set_status(status)
        self.router = ShareRouter(_canary_shares(self.share), self.record.salt)


def drain(queue: collections.deque[T]) -> list[T]:
    """What `queue` holds, oldest first, taken out one by one: another thread may append
    meanwhile without a lock (what it appends stays for the next drain)."""
    return [queue.popleft() for _ in range(len(queue))]


def _canary_shares(share: float) -> list[float]:
    return [1.0 - share, share]


def _entities_key(ids: Sequence[Any]) -> str:
    return "\x1f".join(sorted(str(i) for i in ids))


def _posterior_state(outcomes: Sequence[ArmOutcomes], arms: int) -> dict[str, list[int]]:
    successes, failures = [0] * arms, [0] * arms
    for o in outcomes:
        if o.arm < arms:
            successes[o.arm] = o.successes
            failures[o.arm] = o.labelled - o.successes
    return {"successes": successes, "failures": failures}
