"""A shadow challenger scoring in a worker process, as the server runs it: its events
reach the owner's log, a slow or raising challenger leaves the champion's answers alone,
and a worker that dies or cannot load its model is counted, never waited for."""

from __future__ import annotations

import functools
import io
import itertools
import os
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_world import DRIVERS, World
from structlog.testing import capture_logs

from litemlops import logsetup
from litemlops.config import Config
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.scheduler.workers import Workers
from litemlops.serving import shadow as shadow_module
from litemlops.serving.deployments import Deployments
from litemlops.serving.shadow import ShadowJob, ShadowScorer, shadow_worker
from litemlops.testing import FaultyModel, FixedClock

IDS = sorted(DRIVERS)


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    workers = Workers()
    yield workers
    workers.stop()


@pytest.fixture
def forwarded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The events worker processes hand to this process's log writer."""
    lines: list[dict[str, Any]] = []
    monkeypatch.setattr(
        logsetup, "forward_line", lambda level, line: lines.append(orjson.loads(line))
    )
    return lines


@pytest.fixture
def deployments(world: World, workers: Workers) -> Iterator[Deployments]:
    tracker = world.tracker
    found = Deployments(
        tracker.db,
        world.registry,
        world.service.models,
        [world.service.spec],
        serving=True,
        clock=FixedClock(),
        rng=random.Random(5),
        shadow_worker=functools.partial(
            workers.start, shadow_worker, tracker.db.path, tracker.artifacts.root,
            name="shadow",
        ),
    )  # fmt: skip
    world.service.deployments = found
    yield found
    found.close()


def shadowing(deployments: Deployments, world: World, model: Any, **spec: Any) -> ShadowScorer:
    version = world.register(model)
    deployments.start("inference", {"strategy": "shadow", "challenger": version, **spec})
    scorer = deployments.shadow("inference")
    assert scorer is not None
    return scorer


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def test_a_shadow_worker_logs_what_it_would_have_answered_through_this_process(
    world: World, deployments: Deployments, forwarded: list[dict[str, Any]]
):
    scorer = shadowing(deployments, world, world.champion_model())
    for i in range(30):
        world.service.infer(f"r{i}", IDS)
    scorer.drain(20.0)

    def shadowed_events() -> list[dict[str, Any]]:
        return [e for e in forwarded if e["event"] == "prediction_shadowed"]

    # Events come on the worker's log channel, its figures on their own: wait for both.
    shadowed = wait_until(lambda: len(shadowed_events()) >= 30 and shadowed_events())
    assert sorted(e["request_id"] for e in shadowed) == sorted(f"r{i}" for i in range(30))
    assert all(e["agrees"] and e["service"] == "inference" for e in shadowed)
    assert world.events("prediction_shadowed") == []  # not scored in this process
    report = deployments.status("inference")["shadow"]
    assert report["in"] == "worker" and report["scored"] == 30
    assert report["agreement"] == 1.0 and report["mean_abs_score_diff"] == 0.0
    worker = scorer._remote.worker if scorer._remote else None
    assert worker is not None and worker.pid != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, worker.pid) >= shadow_module.NICENESS


def test_a_slow_raising_shadow_worker_leaves_the_champions_answers_alone(
    world: World, deployments: Deployments, forwarded: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    # At the shadow's priority a loaded machine may starve it: here it must score.
    monkeypatch.setattr(shadow_module, "NICENESS", 0)
    baseline = [world.service.infer(f"b{i}", IDS) for i in range(60)]
    # Every third call raises: a full batch's call, then one of its jobs scored alone.
    faulty = FaultyModel(world.champion_model(), sleep=0.05, fail_every=3)
    scorer = shadowing(deployments, world, faulty, queue_size=6)
    world.service.infer("warm", IDS)  # the worker has loaded the challenger after this
    scorer.drain(20.0)

    answers, elapsed = [], 0.0
    for i in range(60):  # spread out, so the challenger gets several batches
        start = time.perf_counter()
        answers.append(world.service.infer(f"b{i}", IDS))
        elapsed += time.perf_counter() - start
        time.sleep(0.005)

    assert [(a.prediction, a.scores, a.version) for a in answers] == [
        (b.prediction, b.scores, b.version) for b in baseline
    ]
    assert elapsed < 60 * 0.05 / 2  # the challenger's sleep is never waited for
    scorer.drain(20.0)
    report = deployments.status("inference")["shadow"]
    assert report["offered"] == 61 and report["dropped"] >= 10
    assert report["scored"] + report["errors"] + report["dropped"] == 61
    assert report["errors"] >= 1, report
    def failures() -> list[dict[str, Any]]:
        return [e for e in forwarded if e["event"] == "prediction_shadow_failed"]

    wait_until(lambda: len(failures()) >= report["errors"])
    assert len(failures()) == report["errors"]
    assert all("FaultyModel failed" in e["error"] for e in failures())


def test_a_killed_shadow_worker_costs_its_batch_and_is_started_again(
    world: World, deployments: Deployments, forwarded: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setattr(shadow_module, "RESTART_SECONDS", (0.05, 0.2))
    scorer = shadowing(deployments, world, world.champion_model())
    world.service.infer("first", IDS)
    scorer.drain(20.0)
    remote = scorer._remote
    assert remote is not None and remote.worker is not None
    killed = remote.worker.pid
    os.kill(killed, signal.SIGKILL)
    time.sleep(0.2)

    def back() -> bool:
        return remote.worker is not None and remote.worker.pid != killed and scorer.scored >= 2

    # The first batch after the kill finds the worker gone; requests go on until a new
    # worker scores one (however long a loaded machine takes to start it).
    sent, deadline = 0, time.monotonic() + 30
    while sent < 5 or (not back() and time.monotonic() < deadline):
        world.service.infer(f"after{sent}", IDS)
        sent += 1
        time.sleep(0.05)
    assert wait_until(back), deployments.status("inference")["shadow"]
    scorer.drain(20.0)

    report = deployments.status("inference")["shadow"]
    assert report["errors"] >= 1 and report["scored"] + report["errors"] == 1 + sent
    lost = world.events("prediction_shadow_failed")
    assert len(lost) == report["errors"]
    assert all("ended" in e["error"] or "killed" in e["error"] for e in lost)
    answers = [world.service.infer(f"later{i}", IDS) for i in range(3)]
    assert all(a.version == 1 for a in answers)


def test_a_challenger_the_worker_cannot_load_is_counted_as_errors(
    world: World, deployments: Deployments, forwarded: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setattr(shadow_module, "RESTART_SECONDS", (0.05, 0.2))
    scorer = shadowing(deployments, world, FaultyModel(world.champion_model()))
    version = world.registry.get_model_version("driver_ranker", int(scorer.uri.split("/")[1]))
    world.tracker.artifacts.path(version.sha256).write_bytes(b"not the model")

    answers = [world.service.infer(f"c{i}", IDS) for i in range(10)]
    scorer.drain(20.0)

    assert all(a.version == 1 for a in answers)
    report = deployments.status("inference")["shadow"]
    assert report["scored"] == 0 and report["errors"] + report["dropped"] == 10
    assert "TamperedArtifactError" in report["worker_error"]


def test_a_shadow_worker_appends_its_events_to_the_owners_file_itself(
    world: World, deployments: Deployments, tmp_path: Path, restore_logging: None,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    # As under `run`: the owner writes an event file and its console shows warnings.
    config = Config.load(tmp_path / "home", env={})
    configure_logging(config, console_stream=io.StringIO(), console_level="warning")
    relayed: list[dict[str, Any]] = []
    relay = logsetup.forward_lines

    def recording(lines: list[tuple[int, str]]) -> None:
        relayed.extend(orjson.loads(line) for _, line in lines)
        relay(lines)

    monkeypatch.setattr(logsetup, "forward_lines", recording)
    monkeypatch.setattr(shadow_module, "NICENESS", 0)  # it must score on a loaded machine
    scorer = shadowing(deployments, world, FaultyModel(world.champion_model(), fail_every=3))
    for i in range(30):  # batches of five: some calls raise, for a batch or one job
        world.service.infer(f"f{i}", IDS)
        if i % 5 == 4:
            scorer.drain(20.0)
    report = deployments.status("inference")["shadow"]
    assert report["scored"] + report["errors"] == 30 and report["errors"] >= 1, report

    def logged(event: str) -> list[dict[str, Any]]:
        lines = config.events_log_path.read_text().splitlines()
        return [e for e in map(orjson.loads, lines) if e["event"] == event]

    # The worker wrote each request it scored before sending the batch's figures; the
    # owner relayed only the failures, which its console shows.
    assert sorted(e["request_id"] for e in logged("prediction_shadowed")) == sorted(
        f"f{i}" for i in range(30) if f"f{i}" not in {e["request_id"] for e in relayed}
    )
    assert len(logged("prediction_shadowed")) == report["scored"]
    assert {e["event"] for e in relayed} == {"prediction_shadow_failed"}
    assert len(relayed) == report["errors"]
    shutdown_logging()  # the owner's queued lines written
    assert len(logged("prediction_shadow_failed")) == report["errors"]


def test_half_a_queue_waiting_hands_over_a_batch_before_the_period_ends(world: World):
    model = world.service.model(f"{world.registry.get_model_version('driver_ranker', 1).name}/1")
    scorer = ShadowScorer("driver_ranker/1", queue_size=10, fields={},
                          model=lambda uri: model, every=3600.0)  # fmt: skip
    columns = {"conv_rate": [0.9, 0.1, 0.5], "acc_rate": [0.8, 0.2, 0.5]}

    def offer(n: int) -> None:
        for _ in range(n):
            assert scorer.offer(f"q{scorer.offered}", IDS, columns, [0.5, 0.1, 0.3], IDS[0])

    try:
        offer(4)  # fewer than half the queue: they wait for the period (an hour)
        time.sleep(0.3)
        assert scorer.scored == 0
        offer(1)  # half the queue: handed over now
        assert wait_until(lambda: scorer.scored == 5, timeout=10.0), scorer.report()
        offer(3)  # a batch went: again they wait for the period
        time.sleep(0.3)
        assert scorer.scored == 5
        offer(2)  # half the queue again
        assert wait_until(lambda: scorer.scored == 10, timeout=10.0), scorer.report()
        offer(1)
    finally:
        scorer.close()
    assert scorer.scored == 11  # closing scores what waits


class Gated:
    """A challenger (a `ServingModel`'s face) whose calls wait for `gate`, each call
    releasing `started` first; every row scores 0.5."""

    inputs = ("conv_rate", "acc_rate")
    name, version = "gated", 2

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)

    def score_list(self, rows: list[Any]) -> list[float]:
        self.started.release()
        assert self.gate.acquire(timeout=30)
        return [0.5] * len(rows)


def test_jobs_being_scored_fill_the_queue_and_later_ones_wait_for_the_period():
    model = Gated()
    scorer = ShadowScorer("driver_ranker/2", queue_size=8, fields={},
                          model=lambda uri: model, every=3600.0)  # fmt: skip
    columns = {"conv_rate": [0.9, 0.1, 0.5], "acc_rate": [0.8, 0.2, 0.5]}

    def offer(n: int) -> list[bool]:
        return [scorer.offer(f"g{scorer.offered}", IDS, columns, [0.5, 0.1, 0.3], IDS[0])
                for _ in range(n)]  # fmt: skip

    try:
        assert offer(4) == [True] * 4  # half the queue: a batch of 4, held at the gate
        assert model.started.acquire(timeout=10)
        # 4 being scored and 4 waiting fill the queue of 8: the next is dropped.
        assert offer(4) == [True] * 4 and offer(1) == [False]
        time.sleep(0.2)  # each job of the first batch takes at least 50 ms of its 0.2 s
        model.gate.release()  # the first batch ends; the 4 waiting are half the queue
        assert model.started.acquire(timeout=10)
        assert offer(1) == [True]  # offered while the second batch is scored
        time.sleep(0.2)
        model.gate.release(2)  # the second batch ends, and a third could go at once
        assert wait_until(lambda: scorer.scored == 8, timeout=10.0), scorer.report()
        time.sleep(0.3)  # but the one left waits for the period: a batch went just now
        assert scorer.scored == 8
    finally:
        scorer.close()
    started = time.monotonic()
    scorer.drain(10.0)
    assert time.monotonic() - started < 5  # what was dropped counts as done too
    report = scorer.report()
    assert (report["offered"], report["scored"], report["dropped"]) == (10, 9, 1)
    # Each request's latency is its batch's time shared out: 0.2 s over 4 jobs or more.
    assert 50.0 <= report["p50_ms"] < 60_000.0
    # The challenger scores 0.5 for each row against 0.5, 0.1 and 0.3: 0.2 apart on average.
    assert report["mean_abs_score_diff"] == pytest.approx(0.2)
    assert report["agreement"] == 1.0


class SlowAlone:
    """Raises on a call for several jobs' rows; scores one job's rows after 20 ms."""

    inputs, name, version = ("conv_rate", "acc_rate"), "slow", 2

    def score_list(self, rows: list[Any]) -> list[float]:
        if len(rows) > len(IDS):
            raise RuntimeError("a batch is too much")
        time.sleep(0.02)
        return [0.5] * len(rows)


def test_jobs_scored_one_by_one_after_a_batch_raised_keep_their_own_latency():
    columns = {"conv_rate": [0.9, 0.1, 0.5], "acc_rate": [0.8, 0.2, 0.5]}
    jobs = [ShadowJob(f"s{i}", IDS, columns, [0.5, 0.5, 0.5], IDS[0]) for i in range(3)]
    figures = shadow_module.shadow_batch(SlowAlone(), jobs, {})  # type: ignore[arg-type]
    assert (figures.scored, figures.errors, figures.agreed) == (3, 0, 3)
    assert len(figures.latencies) == 3
    assert all(20.0 <= ms < 1_000.0 for ms in figures.latencies), figures.latencies


class ByFirst:
    """A challenger scoring each row its first input; with `alone`, it raises on more
    than one job's rows, so a batch is scored one job at a time."""

    inputs, name, version = ("conv_rate", "acc_rate"), "by_first", 3

    def __init__(self, alone: bool):
        self.alone = alone

    def score_list(self, rows: list[Any]) -> list[float]:
        if self.alone and len(rows) > len(IDS):
            raise RuntimeError("one job at a time")
        return [float(row[0]) for row in rows]


@settings(max_examples=25, deadline=None)
@given(
    jobs=st.lists(
        st.tuples(st.lists(st.floats(0, 1), min_size=3, max_size=3), st.sampled_from(IDS)),
        min_size=1, max_size=6,
    ),
    alone=st.booleans(),
)  # fmt: skip
def test_each_scored_job_is_logged_with_the_challengers_pick_and_whether_it_agrees(jobs, alone):
    batch = [  # ids and answer equal to IDS's, not the same objects: as after a pipe
        ShadowJob(f"j{i}", [int(str(x)) for x in IDS],
                  {"conv_rate": firsts, "acc_rate": [0.5] * 3}, [0.5] * 3, int(str(output)))
        for i, (firsts, output) in enumerate(jobs)
    ]  # fmt: skip
    sent: list[str] = []
    logsetup.configure_forwarding("info", lambda level, line: sent.append(line))
    try:
        held = logsetup.hold_forwarded()  # as a worker without the owner's file
        figures = shadow_module.shadow_batch(ByFirst(alone), batch, {"arm": "v3"})
        lines = [orjson.loads(line) for _, line in held.take()]
    finally:
        shutdown_logging()

    picks = [IDS[firsts.index(max(firsts))] for firsts, _ in jobs]
    assert [
        (e["event"], e["request_id"], e["scores"], e["output"], e["agrees"]) for e in lines
    ] == [
        ("prediction_shadowed", f"j{i}", firsts, pick, pick == output)
        for i, ((firsts, output), pick) in enumerate(zip(jobs, picks, strict=True))
    ]
    assert all((e["model"], e["version"], e["arm"]) == ("by_first", 3, "v3") for e in lines)
    assert figures.agreed == sum(e["agrees"] for e in lines)
    assert figures.scored == len(jobs) and sent == []


COLUMNS = {"conv_rate": [0.9, 0.1, 0.5], "acc_rate": [0.8, 0.2, 0.5]}


def on_thread(model: Any, *, queue_size: int = 8, every: float = 3600.0) -> ShadowScorer:
    """A shadow scoring with `model` on its feeder thread."""
    return ShadowScorer("driver_ranker/2", queue_size=queue_size, fields={},
                        model=lambda uri: model, every=every)  # fmt: skip


def offer_one(scorer: ShadowScorer, request_id: str) -> bool:
    """A job of `COLUMNS`' three rows, each scored 0.5 by the champion, which chose IDS[0]."""
    return scorer.offer(request_id, IDS, COLUMNS, [0.5] * 3, IDS[0])


def test_a_new_shadow_takes_as_many_jobs_as_its_queue_holds():
    model = Gated()
    scorer = on_thread(model, queue_size=1)
    try:
        assert offer_one(scorer, "q0") is True
        assert model.started.acquire(timeout=10)
        assert offer_one(scorer, "q1") is False  # being scored
        model.gate.release()
        assert wait_until(lambda: scorer.scored == 1, timeout=10.0), scorer.report()
    finally:
        scorer.close()


class SlowFirst:
    """A challenger whose first call takes 0.3 s and the others none."""

    inputs, name, version = ("conv_rate", "acc_rate"), "slow_first", 2

    def __init__(self) -> None:
        self.calls = 0

    def score_list(self, rows: list[Any]) -> list[float]:
        self.calls += 1
        if self.calls == 1:
            time.sleep(0.3)
        return [0.5] * len(rows)


def test_the_report_gives_the_slowest_latency_as_p99_of_few_requests():
    model = SlowFirst()
    scorer = on_thread(model, every=0.01)
    try:
        for i in range(3):
            offer_one(scorer, f"p{i}")
            scorer.drain(10.0)
    finally:
        scorer.close()
    report = scorer.report()
    assert report["scored"] == 3
    assert report["p99_ms"] >= 300.0 > report["p50_ms"]


def test_the_p99_of_many_requests_leaves_out_the_slowest_and_drain_counts_them_all():
    model = SlowFirst()
    scorer = on_thread(model, every=0.001)
    try:
        for i in range(300):  # past 256, where ints stop being shared objects
            offer_one(scorer, f"m{i}")
            started = time.monotonic()
            scorer.drain(5.0)
            assert time.monotonic() - started < 4.0, i  # done, not timed out
    finally:
        scorer.close()
    report = scorer.report()
    assert report["scored"] == 300
    assert report["p99_ms"] < 300.0  # the 297th of 300: the one slow call is the 300th


def test_a_worker_that_did_not_start_is_not_started_again_before_its_wait(
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setattr(shadow_module, "RESTART_SECONDS", (30.0, 60.0))
    calls = []

    def start(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise OSError("no processes left")

    scorer = ShadowScorer("driver_ranker/2", queue_size=8, fields={}, start=start, every=0.01)
    try:
        with capture_logs() as captured:
            for i in range(5):
                offer_one(scorer, f"n{i}")
                scorer.drain(10.0)
    finally:
        scorer.close()
    report = scorer.report()
    assert report["errors"] == 5 and len(calls) == 1, report  # the next start waits 30 s
    assert "no processes left" in report["worker_error"]
    failures = [e for e in captured if e["event"] == "prediction_shadow_failed"]
    assert sorted(e["request_id"] for e in failures) == [f"n{i}" for i in range(5)]
    assert all("no processes left" in e["error"] for e in failures), failures


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_closing_kills_a_worker_stuck_in_a_batch(
    world: World, workers: Workers, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(shadow_module, "NICENESS", 0)  # it must start its batch here
    version = world.register(FaultyModel(world.champion_model(), sleep=60.0))
    start = functools.partial(workers.start, shadow_worker, world.tracker.db.path,
                              world.tracker.artifacts.root, name="shadow")  # fmt: skip
    scorer = ShadowScorer(f"driver_ranker/{version}", queue_size=8, fields={}, start=start)
    offer_one(scorer, "stuck")
    remote = scorer._remote
    assert remote is not None
    assert wait_until(lambda: remote.worker is not None and scorer._busy == 1), scorer.report()
    pid = remote.worker.pid
    time.sleep(0.5)  # the worker has the batch: its challenger sleeps for a minute

    started = time.monotonic()
    scorer.close(timeout=0.5)
    assert time.monotonic() - started < 10
    assert wait_until(lambda: _gone(pid), timeout=10.0)


def test_a_worker_that_keeps_failing_to_start_waits_twice_as_long_each_time(
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setattr(shadow_module, "RESTART_SECONDS", (0.05, 10.0))
    calls = []

    def start(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        raise OSError("no processes left")

    scorer = ShadowScorer("driver_ranker/2", queue_size=8, fields={}, start=start, every=0.005)
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            offer_one(scorer, "w")
            time.sleep(0.005)
    finally:
        scorer.close()
    # Waits of 0.05, 0.1, 0.2, 0.4 s: five starts in a second (a fixed 0.05 s: twenty;
    # a wait growing by 2 s: two).
    assert 3 <= len(calls) <= 6, calls
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(gap >= 0.05 * 2**i for i, gap in enumerate(gaps)), gaps


def test_a_job_without_rows_is_scored_as_agreeing_on_no_answer():
    job = ShadowJob("empty", [], {"conv_rate": [], "acc_rate": []}, [], None)
    figures = shadow_module.shadow_batch(ByFirst(alone=False), [job], {})
    assert (figures.scored, figures.errors, figures.agreed) == (1, 0, 1)
    assert figures.divergence_sum == 0.0


class Counting:
    """A challenger that records how many jobs (of `IDS`' rows each) each call scored."""

    inputs, name, version = ("conv_rate", "acc_rate"), "counting", 2

    def __init__(self) -> None:
        self.batches: list[int] = []

    def score_list(self, rows: list[Any]) -> list[float]:
        self.batches.append(len(rows) // len(IDS))
        return [0.5] * len(rows)


def test_on_the_feeder_thread_a_batch_holds_at_most_max_batch_jobs():
    model = Counting()
    scorer = on_thread(model, queue_size=2000)
    try:
        for i in range(600):
            offer_one(scorer, f"b{i}")
        # 256 waiting hand a batch over at once, not after the hour's period.
        assert wait_until(lambda: scorer.scored >= shadow_module.MAX_BATCH, timeout=10.0)
    finally:
        scorer.close()
    assert sum(model.batches) == 600 == scorer.scored
    assert max(model.batches) == shadow_module.MAX_BATCH, model.batches


class Meddling(deque):
    """A queue that, as the feeder takes its first job, has two more offered: the moment
    between a job leaving the queue and being counted as scored."""

    def __init__(self, scorer: ShadowScorer) -> None:
        super().__init__()
        self.scorer, self.answers = scorer, list[bool]()

    def popleft(self) -> Any:
        job = super().popleft()
        if not self.answers:
            self.answers += [offer_one(self.scorer, f"m{i}") for i in range(2)]
        return job


def test_a_job_the_feeder_just_took_still_holds_its_place_in_the_queue():
    model = Counting()
    scorer = on_thread(model, queue_size=2)
    meddling = scorer._pending = Meddling(scorer)
    try:
        assert offer_one(scorer, "q0") is True
        assert wait_until(lambda: scorer.scored + scorer.dropped == 3, timeout=10.0)
    finally:
        scorer.close()
    # q0 taken and one more waiting fill the queue of 2: the second is dropped.
    assert meddling.answers == [True, False]
    report = scorer.report()
    assert (report["offered"], report["scored"], report["dropped"]) == (3, 2, 1)


def test_on_the_feeder_thread_a_challenger_that_will_not_load_counts_its_jobs_as_errors():
    def load(uri: str) -> Any:
        raise FileNotFoundError(f"no model {uri}")

    scorer = ShadowScorer("driver_ranker/9", queue_size=8, fields={}, model=load, every=0.01)
    try:
        for i in range(3):
            assert offer_one(scorer, f"l{i}")
            scorer.drain(10.0)
        assert offer_one(scorer, "after")  # the feeder goes on
        scorer.drain(10.0)
    finally:
        scorer.close()
    report = scorer.report()
    assert (report["scored"], report["errors"]) == (0, 4), report


def test_a_job_whose_columns_differ_in_length_is_a_failure_not_a_shorter_job():
    ragged = ShadowJob("ragged", IDS, {"conv_rate": [0.9, 0.1], "acc_rate": [0.8, 0.2, 0.5]},
                       [0.5] * 3, IDS[0])  # fmt: skip
    whole = ShadowJob("whole", IDS, COLUMNS, [0.5] * 3, IDS[0])
    figures = shadow_module.shadow_batch(ByFirst(alone=False), [ragged, whole], {})
    assert (figures.scored, figures.errors) == (1, 1)
