"""A shadow challenger: it scores requests the champion answered, off the request path.

The request path only offers a job to a bounded queue (`offer`, never blocking):
when the queue is full the job is dropped and counted, so a slow or failing
challenger can never slow down or fail the champion's answer. One thread scores
the jobs and logs `prediction_shadowed` with the request's id; its figures are the
shadow's report (agreement of the chosen output, score divergence, the
challenger's latency and errors).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from litemlops import events
from litemlops.logger import get_logger
from litemlops.serving.deployment_live import Sample
from litemlops.serving.deployment_report import quantile

log = get_logger("litemlops.serving")


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """What the champion answered and the features it scored, for the challenger."""

    request_id: str
    ids: Sequence[Any]
    columns: dict[str, list[Any]]
    scores: list[float]
    output: Any


class ShadowScorer:
    """Scores `ShadowJob`s with `score` on a thread of its own.

    score: (job) -> (the challenger's scores per id, its model name, its version).
    fields: what every `prediction_shadowed` event carries (service, deployment, arm).
    """

    def __init__(
        self,
        score: Callable[[ShadowJob], tuple[list[float], str | None, int | None]],
        *,
        queue_size: int,
        fields: dict[str, Any],
        rng: random.Random | None = None,
    ):
        self.score = score
        self.fields = dict(fields)
        self.rng = rng or random.Random()
        self.jobs: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=queue_size)
        self.offered = self.dropped = self.scored = self.errors = 0
        self.agreed = 0
        self.divergence_sum = 0.0
        self.latency_ms = Sample()
        self._thread = threading.Thread(target=self._work, name="shadow", daemon=True)
        self._thread.start()

    def offer(self, job: ShadowJob) -> bool:
        """Queue a job for the challenger; False (and counted) when the queue is full."""
        self.offered += 1
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the jobs queued; a challenger stuck longer than `timeout` is left
        to its daemon thread."""
        try:
            self.jobs.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every job queued so far was scored (tests, a graceful end)."""
        deadline = time.monotonic() + timeout
        while self.jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                self._one(job)
            finally:
                self.jobs.task_done()

    def _one(self, job: ShadowJob) -> None:
        start = time.perf_counter()
        try:
            scores, model, version = self.score(job)
        except Exception as exc:  # the challenger's failure is a figure, not an outage
            self.errors += 1
            log.warning(
                events.PREDICTION_SHADOW_FAILED,
                request_id=job.request_id,
                error=f"{type(exc).__name__}: {exc}",
                **self.fields,
            )
            return
        latency = (time.perf_counter() - start) * 1e3
        output = job.ids[max(range(len(job.ids)), key=scores.__getitem__)] if job.ids else None
        agrees = output == job.output
        self.scored += 1
        self.agreed += agrees
        diffs = [abs(a - b) for a, b in zip(scores, job.scores, strict=True)]
        self.divergence_sum += sum(diffs) / max(len(diffs), 1)
        self.latency_ms.add(latency, self.rng)
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
