"""A shadow challenger: it scores requests the champion answered, off the request path.

The request path only offers a job to a bounded queue (`offer`, never blocking,
waking no thread): when the queue is full the job is dropped and counted, so a slow
or failing challenger can never slow down or fail the champion's answer. One thread
scores what was offered every `BATCH_SECONDS`, in one model call per batch, and logs
`prediction_shadowed` with each request's id; its figures are the shadow's report
(agreement of the chosen output, score divergence, the challenger's latency per
request, its share of its batch's scoring time, and errors).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.logger import get_logger
from litemlops.serving.deployment_live import Sample
from litemlops.serving.deployment_report import quantile

if TYPE_CHECKING:
    from litemlops.serving.models import ServingModel

log = get_logger("litemlops.serving")

BATCH_SECONDS = 0.01
"""How often the shadow thread scores what was offered since (one model call a batch)."""


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """What the champion answered and the features it scored, for the challenger."""

    request_id: str
    ids: Sequence[Any]
    columns: dict[str, list[Any]]
    scores: list[float]
    output: Any


class ShadowScorer:
    """Scores `ShadowJob`s with `score` on a thread of its own, in batches.

    score: (jobs) -> (each job's scores by the challenger, its model name, its
    version); it scores a batch in one call where it can (one matrix for the model).
    fields: what every `prediction_shadowed` event carries (service, deployment, arm).
    queue_size: jobs waiting at most; more are dropped. every: seconds between batches.
    """

    def __init__(
        self,
        score: Callable[[list[ShadowJob]], tuple[list[list[float]], str | None, int | None]],
        *,
        queue_size: int,
        fields: dict[str, Any],
        every: float = BATCH_SECONDS,
        rng: random.Random | None = None,
    ):
        self.score = score
        self.fields = dict(fields)
        self.queue_size = queue_size
        self.every = every
        self.rng = rng or random.Random()
        # Offering appends to a deque and wakes nobody: a thread woken per request would
        # take the interpreter from the request path each time (the log writer batches
        # for the same reason).
        self._pending: deque[ShadowJob] = deque()
        self._stop = threading.Event()
        self.offered = self.dropped = self.scored = self.errors = 0
        self.agreed = 0
        self.divergence_sum = 0.0
        self.latency_ms = Sample()
        self._thread = threading.Thread(target=self._work, name="shadow", daemon=True)
        self._thread.start()

    def offer(self, job: ShadowJob) -> bool:
        """Queue a job for the challenger; False (and counted) when the queue is full."""
        self.offered += 1
        if len(self._pending) >= self.queue_size:
            self.dropped += 1
            return False
        self._pending.append(job)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the jobs queued; a challenger stuck longer than `timeout` is left
        to its daemon thread."""
        self._stop.set()
        self._thread.join(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every job offered so far was scored or dropped (tests, an end)."""
        deadline = time.monotonic() + timeout
        while (
            self.scored + self.errors + self.dropped < self.offered
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)

    def _work(self) -> None:
        while True:
            stopping = self._stop.wait(self.every)
            batch = []
            while self._pending:
                batch.append(self._pending.popleft())
            if batch:
                self._batch(batch)
            if stopping:
                return

    def _batch(self, jobs: list[ShadowJob]) -> None:
        start = time.perf_counter()
        try:
            results, model, version = self.score(jobs)
        except Exception:  # one bad job must not lose the others: one at a time
            for job in jobs:
                one = time.perf_counter()
                try:
                    [scores], model, version = self.score([job])
                except Exception as exc:  # the challenger's failure is a figure
                    self.errors += 1
                    log.warning(
                        events.PREDICTION_SHADOW_FAILED,
                        request_id=job.request_id,
                        error=f"{type(exc).__name__}: {exc}",
                        **self.fields,
                    )
                    continue
                self._scored(job, scores, model, version, (time.perf_counter() - one) * 1e3)
            return
        each = (time.perf_counter() - start) * 1e3 / len(jobs)
        for job, scores in zip(jobs, results, strict=True):
            self._scored(job, scores, model, version, each)

    def _scored(
        self, job: ShadowJob, scores: list[float], model: str | None, version: int | None,
        latency: float,
    ) -> None:  # fmt: skip
        output = job.ids[max(range(len(job.ids)), key=scores.__getitem__)] if job.ids else None
        agrees = output == job.output
        diffs = [abs(a - b) for a, b in zip(scores, job.scores, strict=True)]
        self.agreed += agrees
        self.divergence_sum += sum(diffs) / max(len(diffs), 1)
        self.latency_ms.add(latency, self.rng)
        self.scored += 1
        log.info(
            events.PREDICTION_SHADOWED,
            request_id=job.request_id,
            model=model,
            version=version,
            scores=scores,
            output=output,
            agrees=agrees,
            latency_ms=round(latency, 3),
            **self.fields,
        )

    def report(self) -> dict[str, Any]:
        lat = self.latency_ms.values
        return {
            "offered": self.offered,
            "scored": self.scored,
            "dropped": self.dropped,
            "errors": self.errors,
            "agreement": self.agreed / self.scored if self.scored else None,
            "mean_abs_score_diff": self.divergence_sum / self.scored if self.scored else None,
            "p50_ms": quantile(lat, 0.5),
            "p99_ms": quantile(lat, 0.99),
        }


def score_batch(
    model: ServingModel, jobs: list[ShadowJob]
) -> tuple[list[list[float]], str | None, int | None]:
    """`model`'s scores of a batch of jobs, in one call on all their rows; with its
    name and version."""
    rows: list[Any] = []
    sizes = []
    for job in jobs:
        part = list(zip(*[job.columns[n] for n in model.inputs], strict=True))
        rows.extend(part)
        sizes.append(len(part))
    scores = model.score_list(rows)
    found, at = [], 0
    for size in sizes:
        found.append(scores[at : at + size])
        at += size
    return found, model.name, model.version
