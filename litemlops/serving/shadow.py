"""A shadow challenger: it scores requests the champion answered, off the request path.

The request path only offers a job to a bounded queue (`offer`, never blocking,
waking no thread): when the jobs waiting and being scored fill the queue, the job is
dropped and counted, so a slow or failing challenger can never slow down or fail the
champion's answer. A feeder thread hands what was offered to the challenger in
batches (one model call a batch), one batch at a time, and adds up the figures that
come back: the shadow's report (agreement of the chosen output, score divergence, the
challenger's latency per request, errors). Each scored request is logged as
`prediction_shadowed` with its id, a failure as `prediction_shadow_failed`.

Where the challenger scores: in a worker process of its own when the owner can start
one (`ShadowScorer(start=...)`, as the server does), at the lowest CPU priority, so
its scoring and its events take neither the serving process's interpreter nor the
cores the server uses; a worker that dies loses its batch (counted as errors) and is
started again. Without one (the library embedded, tests), on the feeder thread.

A worker appends its events to the owner's event file itself (those the owner's
console does not show; the others go to the owner, which alone writes the console),
and the feeder hands it a batch at most every `BATCH_SECONDS`: each time the feeder
needs the interpreter back (after a wait, or a pipe's read or write) while a request
holds it, both threads pay a hand-off, so the fewer and smaller its steps, the less
a shadow takes from the requests (`benchmarks/serving.py --deployments`).
"""

from __future__ import annotations

import math
import multiprocessing
import pickle
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litemlops import events, logsetup
from litemlops.logger import get_logger
from litemlops.serving.deployment_live import Sample
from litemlops.serving.deployment_report import quantile

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from pathlib import Path

    from litemlops.logfile import SharedFile
    from litemlops.scheduler.workers import Worker
    from litemlops.serving.models import ServingModel

log = get_logger("litemlops.serving")

BATCH_SECONDS = 0.2
"""How often at most the feeder hands the challenger the jobs offered since (sooner once
half the queue waits): each batch costs the serving process a round trip (a wake-up,
sending, its figures back), each step of which takes the interpreter from requests."""

NICENESS = 19
"""A shadow worker's CPU priority: the lowest, so it scores with the cores serving
leaves idle, and a loaded machine drops shadow jobs rather than slowing answers (not
the idle scheduling class: beside a training run it would never score at all)."""

MAX_BATCH = 256
"""Jobs scored at once at most on the feeder thread (no worker): scoring them and
rendering their events holds the interpreter, so a backlog must not become one long
pause for requests."""

WORKER_BATCH = 4096
"""Jobs handed to a worker at once at most: packing them holds the interpreter, about
0.06 us a job."""

RESTART_SECONDS = (1.0, 60.0)
"""A dead shadow worker is started again after the first figure, doubling up to the
second while it keeps dying (a challenger that cannot load)."""


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """What the champion answered and the features it scored, for the challenger."""

    request_id: str
    ids: Sequence[Any]
    columns: dict[str, list[Any]]
    scores: list[float]
    output: Any


@dataclass(slots=True)
class Figures:
    """What the challenger did with some jobs: scored, raised, agreed with the champion's
    output, the sum of mean absolute score differences, the latency (ms) of each."""

    scored: int = 0
    errors: int = 0
    agreed: int = 0
    divergence_sum: float = 0.0
    latencies: list[float] = field(default_factory=list)


def shadow_batch(model: ServingModel, jobs: list[ShadowJob], fields: dict[str, Any]) -> Figures:
    """Score `jobs` with `model` (one call on all their rows; one job at a time when
    that raises, so one bad job does not lose the others), log each, and count."""
    figures = Figures()
    start = time.perf_counter()
    try:
        results = _score_rows(model, jobs)
    except Exception:
        shadowed = []
        for job in jobs:
            one = time.perf_counter()
            try:
                [scores] = _score_rows(model, [job])
            except Exception as exc:  # the challenger's failure is a figure
                failed(figures, [job], f"{type(exc).__name__}: {exc}", fields)
                continue
            shadowed.append(_scored(figures, job, scores, (time.perf_counter() - one) * 1e3))
    else:
        each = (time.perf_counter() - start) * 1e3 / len(jobs)
        shadowed = [
            _scored(figures, job, scores, each)
            for job, scores in zip(jobs, results, strict=True)
        ]
    log.many(
        "info", events.PREDICTION_SHADOWED, shadowed,
        model=model.name, version=model.version, **fields,
    )  # fmt: skip
    return figures


def failed(figures: Figures, jobs: list[ShadowJob], error: str, fields: dict[str, Any]) -> None:
    """Count and log `jobs` the challenger failed to score."""
    figures.errors += len(jobs)
    rows = [{"request_id": job.request_id} for job in jobs]
    log.many("warning", events.PREDICTION_SHADOW_FAILED, rows, error=error, **fields)


def _score_rows(model: ServingModel, jobs: list[ShadowJob]) -> list[list[float]]:
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
    return found


def _scored(
    figures: Figures, job: ShadowJob, scores: list[float], latency: float
) -> dict[str, Any]:
    """Count a job the challenger scored; its event's own fields."""
    output = job.ids[max(range(len(job.ids)), key=scores.__getitem__)] if job.ids else None
    agrees = output == job.output
    diffs = [abs(a - b) for a, b in zip(scores, job.scores, strict=True)]
    figures.scored += 1
    figures.agreed += agrees
    figures.divergence_sum += sum(diffs) / max(len(diffs), 1)
    figures.latencies.append(latency)
    return {
        "request_id": job.request_id,
        "scores": scores,
        "output": output,
        "agrees": agrees,
        "latency_ms": round(latency, 3),
    }


def shadow_worker(
    registry: Path, artifacts: Path, uri: str, fields: dict[str, Any], conn: Connection,
    events: SharedFile | None = None,
) -> None:  # fmt: skip
    """In a worker process: load `uri` from the home's registry database and artifacts
    as the server would (its sha256 checked), then score each batch of jobs `conn`
    brings and send back its `Figures`, until the owner closes its end.

    events: the owner's event file (`logsetup.event_file()`), to which the batch's
    events are appended from here, but for those the owner's console shows, which are
    sent with the figures, rendered (one message a batch, not one a line); without
    it, all are sent."""
    from litemlops.logsetup import hold_forwarded
    from litemlops.serving.models import build_model
    from litemlops.store.tracking.registry import ModelRegistry
    from litemlops.store.tracking.tracker import Tracker

    with Tracker(registry, artifacts=artifacts) as tracker:
        model = build_model(ModelRegistry(tracker), uri, None)
    held = hold_forwarded(events)
    conn.send_bytes(pickle.dumps(None))  # loaded
    while True:
        try:
            batch = [unpacked(job) for job in pickle.loads(conn.recv_bytes())]
        except EOFError:
            held.close()
            return
        figures = shadow_batch(model, batch, fields)
        conn.send_bytes(pickle.dumps((figures, held.take()), _PROTOCOL))


_PROTOCOL = pickle.HIGHEST_PROTOCOL


def unpacked(packed: bytes) -> ShadowJob:
    """A job `ShadowScorer.offer` packed for the worker."""
    return ShadowJob(*pickle.loads(packed))


class _Remote:
    """The challenger in a worker process: one batch sent, its figures awaited."""

    def __init__(self, start: Callable[..., Worker], uri: str, fields: dict[str, Any]):
        self.start, self.uri, self.fields = start, uri, fields
        self.conn: Connection | None = None
        self.worker: Worker | None = None
        self.error: str | None = None
        self._waiter: threading.Thread | None = None
        self._delay = RESTART_SECONDS[0]
        self._next_start = 0.0
        self.closed = False

    def ready(self) -> bool:
        """Whether a worker runs, starting one if it is time."""
        if self.conn is not None:
            return True
        if self.closed or time.monotonic() < self._next_start:
            return False
        ours, theirs = multiprocessing.Pipe()
        try:
            worker = self.start(
                self.uri, self.fields, theirs, logsetup.event_file(), niceness=NICENESS
            )
        except Exception as exc:
            ours.close()
            self._died(f"the shadow worker did not start: {type(exc).__name__}: {exc}")
            return False
        finally:
            theirs.close()
        self.conn, self.worker, self.error = ours, worker, None
        self._waiter = threading.Thread(target=self._wait, args=(worker,), daemon=True,
                                        name="shadow-worker")  # fmt: skip
        self._waiter.start()
        return True

    def _wait(self, worker: Worker) -> None:  # writes the worker's events as they come
        try:
            worker.result()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def score(self, batch: list[bytes], timeout: float) -> Figures | None:
        """Send `batch` (packed jobs) and wait for its figures at most `timeout` s; None
        if still busy (`collect` later)."""
        assert self.conn is not None
        try:
            self.conn.send_bytes(pickle.dumps(batch, _PROTOCOL))
        except (OSError, ValueError):
            return self._lost(batch)
        return self.collect(batch, timeout)

    def collect(self, batch: list[bytes], timeout: float) -> Figures | None:
        conn = self.conn
        assert conn is not None
        try:
            while conn.poll(timeout):
                answer = pickle.loads(conn.recv_bytes())
                if answer is not None:  # None: the worker has loaded its model
                    self._delay = RESTART_SECONDS[0]
                    figures, lines = answer
                    logsetup.forward_lines(lines)
                    return figures
        except (EOFError, OSError):
            return self._lost(batch)
        return None

    def _lost(self, batch: list[bytes]) -> Figures:
        waiter = self._waiter
        if waiter is not None:
            waiter.join(5.0)  # the worker's own error, when it raised one
        error = self.error or "the shadow worker ended without an answer"
        self._died(error)
        figures = Figures()
        failed(figures, [unpacked(job) for job in batch], error, self.fields)
        return figures

    def _died(self, error: str) -> None:
        self.close(0.0)
        self.error = error
        self._next_start = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, RESTART_SECONDS[1])

    def close(self, timeout: float, *, last: bool = False) -> None:
        self.closed = self.closed or last
        conn, worker, waiter = self.conn, self.worker, self._waiter
        self.conn = self.worker = self._waiter = None
        if conn is not None:
            conn.close()  # the worker's end of the loop
        if waiter is not None:
            waiter.join(timeout)
            if waiter.is_alive() and worker is not None:
                worker.kill()  # a challenger stuck in a batch


class ShadowScorer:
    """Scores `ShadowJob`s with the challenger `uri` off the request path, in batches.

    model: the loaded challenger (`ModelCache.get`), when it scores on the feeder thread.
    start: `(uri, fields, connection, event file, niceness=)` -> a started
    `shadow_worker`, to score in a worker process instead (`Workers.start` with the
    home's paths bound).
    fields: what every `prediction_shadowed` event carries (service, deployment, arm).
    queue_size: jobs waiting or being scored at most; more are dropped.
    """

    def __init__(
        self,
        uri: str,
        *,
        queue_size: int,
        fields: dict[str, Any],
        model: Callable[[str], ServingModel] | None = None,
        start: Callable[..., Worker] | None = None,
        every: float = BATCH_SECONDS,
        rng: random.Random | None = None,
    ):
        if (model is None) == (start is None):
            raise ValueError("a shadow scores with a loaded model or in a worker: one of them")
        self.uri = uri
        self.model = model
        self.fields = dict(fields)
        self.queue_size = queue_size
        self.every = every
        self.rng = rng or random.Random()
        self._remote = _Remote(start, uri, self.fields) if start is not None else None
        # Offering appends to a deque and wakes nobody: a thread woken per request would
        # take the interpreter from the request path each time (the log writer batches
        # for the same reason).
        self._pending: deque[Any] = deque()  # ShadowJob, or packed for the worker
        self._busy = 0  # jobs handed to the challenger and not yet counted
        self._stop = threading.Event()
        # Set by `offer` once half the queue waits (and by `close`): the feeder's wait
        # ends early, so a fast server fills batches, not the queue.
        self._nudge = threading.Event()
        self._most = WORKER_BATCH if start is not None else MAX_BATCH  # jobs a batch
        self._enough = max(1, min(queue_size // 2, self._most))
        self.offered = self.dropped = self.scored = self.errors = 0
        self.agreed = 0
        self.divergence_sum = 0.0
        self.latency_ms = Sample()
        self._thread = threading.Thread(target=self._work, name="shadow", daemon=True)
        self._thread.start()

    def offer(
        self, request_id: str, ids: Sequence[Any], columns: dict[str, list[Any]],
        scores: list[float], output: Any,
    ) -> bool:  # fmt: skip
        """Queue what the champion answered (a `ShadowJob`) for the challenger; False (and
        counted) when the queue is full. For a worker the job is packed here, where its
        objects were just made: packed later on the feeder thread it cost several times
        more (pickle's type lookups and cold caches)."""
        self.offered += 1
        if len(self._pending) + self._busy >= self.queue_size:
            self.dropped += 1
            return False
        if self._remote is not None:  # the columns as a plain dict: a subclass pickles slowly
            job: Any = pickle.dumps((request_id, ids, dict(columns), scores, output), _PROTOCOL)
        else:
            job = ShadowJob(request_id, ids, columns, scores, output)
        self._pending.append(job)
        if len(self._pending) == self._enough:
            self._nudge.set()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the jobs queued; a challenger stuck longer than `timeout` is left
        to its daemon thread (in a worker process: killed)."""
        self._stop.set()
        self._nudge.set()
        self._thread.join(timeout)
        if self._remote is not None:
            self._remote.close(timeout, last=True)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every job offered so far was scored or dropped (tests, an end)."""
        deadline = time.monotonic() + timeout
        while (
            self.scored + self.errors + self.dropped < self.offered
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)

    def _work(self) -> None:
        busy: list[Any] = []  # the batch the worker scores
        sent = -math.inf  # when the last batch went: none yet
        while True:
            stopping = self._stop.is_set()
            if busy:
                assert self._remote is not None
                figures = self._remote.collect(busy, self.every)
                if figures is not None:
                    self._add(figures)
                    busy = []
                continue
            # A batch every `every` seconds at most: a challenger that answers fast
            # would otherwise get a job at a time, each costing this process a round
            # trip (packing, a wake-up, its figures) instead of a share of one.
            wait = sent + self.every - time.monotonic()
            if wait > 0 and not stopping and len(self._pending) < self._enough:
                self._nudge.wait(wait)
                self._nudge.clear()
                continue
            batch: list[Any] = []
            while self._pending and len(batch) < self._most:
                self._busy += 1  # held before it leaves the queue: an offer in between
                batch.append(self._pending.popleft())  # must not see its place free
            if batch:
                sent = time.monotonic()
                busy = self._score(batch)
            elif stopping:
                return
            else:
                self._nudge.wait(self.every)
                self._nudge.clear()

    def _score(self, batch: list[Any]) -> list[Any]:
        """Score `batch`, here or in the worker; the batch when the worker still has it."""
        remote = self._remote
        if remote is None:
            assert self.model is not None
            try:
                figures = shadow_batch(self.model(self.uri), batch, self.fields)
            except Exception as exc:  # the challenger would not load
                figures = Figures()
                failed(figures, batch, f"{type(exc).__name__}: {exc}", self.fields)
            self._add(figures)
            return []
        if not remote.ready():
            figures = Figures()
            failed(figures, [unpacked(job) for job in batch],
                   remote.error or "the shadow worker is restarting", self.fields)  # fmt: skip
            self._add(figures)
            return []
        answer = remote.score(batch, self.every)
        if answer is None:
            return batch
        self._add(answer)
        return []

    def _add(self, figures: Figures) -> None:
        self.scored += figures.scored
        self.errors += figures.errors
        self.agreed += figures.agreed
        self.divergence_sum += figures.divergence_sum
        self.latency_ms.add_many(figures.latencies, self.rng)
        self._busy = 0

    def report(self) -> dict[str, Any]:
        lat = self.latency_ms.values
        report = {
            "offered": self.offered,
            "scored": self.scored,
            "dropped": self.dropped,
            "errors": self.errors,
            "agreement": self.agreed / self.scored if self.scored else None,
            "mean_abs_score_diff": self.divergence_sum / self.scored if self.scored else None,
            "p50_ms": quantile(lat, 0.5),
            "p99_ms": quantile(lat, 0.99),
            "in": "worker" if self._remote is not None else "thread",
        }
        if self._remote is not None and self._remote.error is not None:
            report["worker_error"] = self._remote.error
        return report
