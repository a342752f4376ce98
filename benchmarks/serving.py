"""Online serving through the shipped command against a hand-written endpoint and a constant.

Three servers, each a process of its own on 127.0.0.1, take `/inference` load
from another process on loopback:

- ours: `python -m litemlops run --home H --port 0` on a bootstrapped home, as
  users start it: schedules, event log and all (its URL from `H/server.json`);
- reference: what the course's endpoint does, by hand, in uvicorn: the drivers'
  features from a dict (read from the online store at start), the same model's
  `predict_proba`, the same JSON answer;
- ceiling: a bare Starlette app answering a constant.

At concurrency 1, 8 and 64: req/s, latency, the server's CPU per request
(its descendants' apart), then a keep-alive connection's later requests, and
ours' p99 while a training run and a monitoring check run, against its idle
p99 in the same run. Rounds rotate which server goes first, so load from
other processes on a shared machine hits all three alike.

With `--deployments`, ours again at c=8 with no deployment, with an A/B test
(50/50, the champion against a second version of its model) and with a shadow
(100% sampled), in rounds rotating the three, started and ended through the
admin API, then with no deployment beside a process that only burns the CPU the
round's shadow worker used (the floor a shadow's worker sets on this machine); and
the routers' arm choice timed in this process.
Run: `.venv/bin/python benchmarks/serving.py --size M [--deployments]`.
"""

from __future__ import annotations

# Only the standard library at module level: the servers import this file too,
# and pandas (which `_harness` brings in) would weigh on their start and RSS.
import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _load import LoadProcess
from _proc import tree_rss
from _shipped import (
    DRIVERS,
    HOST,
    Served,
    clean_env,
    copy_home,
    events,
    history_request_ids,
    run_interval,
    tail,
)

CONCURRENCY = (1, 8, 64)
SERVERS = ("ours", "reference", "ceiling")
MODEL = "driver_ranker@champion"
SCRIPT = Path(__file__).resolve()
READY_TIMEOUT = 60.0
TARGET_RATIO = 1.0  # ours / reference req/s, at least (the goal: 1.5)
GOAL_RATIO = 1.5
TARGET_P99_MS = 10.0
TARGET_KEEPALIVE_MS = 2.0
TARGET_BUSY_RATIO = 1.3  # p99 during a pipeline run / idle p99
TARGET_RSS_MB = 200.0
TARGET_COLD_EXISTING_S = 5.0
TARGET_COLD_FRESH_S = 20.0
CLIENT_BOUND = 0.9  # share of a core the load process uses when it, not the server, limits
DEPLOYMENTS = ("none", "ab", "shadow")  # ours at c=8 with no deployment, an A/B test, a shadow
DEPLOYMENT_PATH = "/api/services/inference/deployment"
DEPLOYMENT_WARMUP = 0.3  # s of untimed load after a deployment starts, at most
TARGET_AB_RATIO = 0.95  # ours+ab / ours req/s at c=8, at least
TARGET_SHADOW_P99_RATIO = 1.1  # ours+shadow / ours p99 at c=8
# After each round's three windows, a fourth with no deployment beside a process doing
# no serving at all, at the shadow worker's priority, that keeps busy the share of a
# core the round's shadow worker used: what that much CPU elsewhere costs the server
# on this machine (two vCPUs of a VM need not be independent cores), whatever the
# shadow itself does. It is the floor no shadow scored off the request path can beat.
FLOOR = "floor"
BURN_PERIOD = 0.05  # s: the busy share of each period spins, the rest sleeps
TARGET_CHOICE_US = 20.0  # one arm choice of a router
CHOICE_CALLS = 20_000  # choices a timed batch makes
CHOICE_BATCHES = 5  # the best batch is the least disturbed


@dataclass(frozen=True)
class Size:
    seconds: float  # of load per server and concurrency, split into rounds
    rounds: int
    warmup: float  # of untimed load before each (opens the connections)
    probes: int  # new keep-alive connections per server and round
    probe_requests: int  # requests one after another on each
    pipelines: float  # seconds of load while pipelines run, and as many idle, per round
    pipeline_rounds: int  # rounds of those windows, the order rotating
    deployments: float  # seconds of load at c=8 per deployment kind (--deployments)
    deployment_rounds: int  # the rounds those seconds are split into, the order rotating


SIZES = {
    "XS": Size(
        seconds=0.15, rounds=1, warmup=0.1, probes=2, probe_requests=5, pipelines=0.3,
        pipeline_rounds=1, deployments=0.15, deployment_rounds=1,
    ),
    "S": Size(
        seconds=1.0, rounds=1, warmup=0.5, probes=3, probe_requests=20, pipelines=3.0,
        pipeline_rounds=1, deployments=3.0, deployment_rounds=3,
    ),
    "M": Size(
        seconds=15.0, rounds=3, warmup=1.0, probes=5, probe_requests=40, pipelines=10.0,
        pipeline_rounds=3, deployments=15.0, deployment_rounds=6,
    ),
}  # fmt: skip


# -- the hand-written servers (each runs in a process of its own) -----------------------------


def reference_app(home: Path) -> Any:
    import warnings

    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from litemlops.config import Config
    from litemlops.store.tracking.registry import ModelRegistry
    from litemlops.store.tracking.tracker import Tracker

    # The array's columns are in the model's order; sklearn would warn on every call.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    config = Config.load(home, env={})
    with Tracker(config.registry_path, artifacts=config.artifacts_dir) as tracker:
        loaded = ModelRegistry(tracker).load_model(MODEL)
    model, name, version = loaded.model, loaded.metadata["name"], loaded.metadata["version"]
    assert loaded.signature is not None
    columns = ", ".join(f'"{c}"' for c in loaded.signature.input_names)
    con = sqlite3.connect(f"file:{config.online_path}?mode=ro", uri=True)
    query = f"SELECT driver_id, {columns} FROM online_driver_stats"
    features = {row[0]: row[1:] for row in con.execute(query)}
    con.close()

    async def inference(request: Request) -> JSONResponse:
        body = await request.json()
        ids = body["driver_ids"]
        rows = np.array([features[i] for i in ids], dtype="float64")
        scores = model.predict_proba(rows)[:, 1].tolist()
        best = max(range(len(ids)), key=scores.__getitem__)
        return JSONResponse(
            {
                "request_id": body["request_id"],
                "prediction": ids[best],
                "scores": {str(i): s for i, s in zip(ids, scores, strict=True)},
                "model": name,
                "version": version,
            }
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/inference", inference, methods=["POST"]),
            Route("/ready", health, methods=["GET"]),
        ]
    )


def ceiling_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    answer = {
        "request_id": "constant",
        "prediction": DRIVERS[0],
        "scores": {str(i): 0.5 for i in DRIVERS},
        "model": "constant",
        "version": 1,
    }

    async def constant(request: Request) -> JSONResponse:
        return JSONResponse(answer)

    return Starlette(
        routes=[
            Route("/inference", constant, methods=["POST"]),
            Route("/ready", constant, methods=["GET"]),
        ]
    )


def serve(kind: str, port: int, home: Path) -> None:
    """uvicorn as the course runs it: one worker, no access log, and uvicorn's own choice
    of parser and loop (httptools and uvloop where installed, as they are beside ours)."""
    import uvicorn

    app = reference_app(home) if kind == "reference" else ceiling_app()
    uvicorn.run(app, host=HOST, port=port, workers=1, log_level="warning", access_log=False)


@dataclass
class Handmade:
    """A hand-written server in a process of its own (the reference or the ceiling)."""

    kind: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, kind: str, home: Path, tmp: Path) -> Handmade:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        log = tmp / f"{kind}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "_serve", kind, str(port), str(home)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                cwd=tmp,
            )
        return cls(kind, process, port, log)

    def wait_ready(self) -> None:
        import http.client

        deadline = time.perf_counter() + READY_TIMEOUT
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.kind} server exited:\n{tail(self.log)}")
            connection = http.client.HTTPConnection(HOST, self.port, timeout=1.0)
            try:
                connection.request("GET", "/ready")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):  # refused until it listens
                pass
            finally:
                connection.close()
            time.sleep(0.02)
        raise RuntimeError(f"the {self.kind} server did not start:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- what is measured -------------------------------------------------------------------------


@dataclass
class Totals:
    """One server at one concurrency, summed over the rounds."""

    seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    answered: int = 0  # 2xx, warm-up included: each one of ours should be a logged event
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    children_cpu: float = 0.0
    children: int = 0  # the most descendants the server had at the end of a round
    # (latency quantile in ms, how many requests it stands for) of every round
    quantiles: list[tuple[float, float]] = field(default_factory=list)

    def add(self, result: dict[str, Any]) -> None:
        for name in ("seconds", "requests", "errors", "answered"):
            setattr(self, name, getattr(self, name) + result[name])
        self.client_cpu += result["client_cpu"]
        self.server_cpu += result["server_cpu"]
        self.children_cpu += result["children_cpu"]
        self.children = max(self.children, result["children"])
        values = result["quantiles_ms"]
        self.quantiles += [(v, result["requests"] / len(values)) for v in values]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile of latency over every round (rounds weighted by requests)."""
        pooled = sorted(self.quantiles)
        total = sum(w for _, w in pooled)
        seen = 0.0
        for value, weight in pooled:
            seen += weight
            if seen >= q / 100 * total:
                return value
        return float("nan")

    @property
    def cpu_per_request_ms(self) -> float:
        """The server's CPU (every thread) per timed request: what its req/s is limited
        by with a core to itself, whoever limited it here."""
        return self.server_cpu / self.requests * 1e3

    @property
    def client_bound(self) -> bool:
        return self.client_cpu / self.seconds >= CLIENT_BOUND > self.server_cpu / self.seconds


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class Pipelines(threading.Thread):
    """One pipeline triggered through the admin API, again as soon as its run ends,
    until `until`: so it runs all along a window. Each trigger asks the server to
    answer once its run ended (`wait`), so the window holds the runs and nothing else:
    no client polling the run's state meanwhile, which at the CLI's pace (5 a second)
    or faster adds milliseconds of server CPU a look."""

    WAIT = 120.0  # s, at most, for one run

    def __init__(self, ours: Served, name: str, until: float):
        super().__init__(daemon=True)
        self.ours, self.name, self.until = ours, name, until
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while time.perf_counter() < self.until:
                answer = self.ours.trigger(self.name, wait=self.WAIT)
                if answer["state"] in ("queued", "running"):
                    raise RuntimeError(f"a {self.name} run did not end in {self.WAIT:g} s")
        except BaseException as exc:  # reported by the caller
            self.error = exc


WINDOWS = ("idle", "training", "monitoring")


@dataclass
class Window:
    """Ours at c=8 in the windows of one kind: idle, or one pipeline run back to back."""

    seconds: float = 0.0
    requests: int = 0
    answered: int = 0  # 2xx
    server_cpu: float = 0.0
    covered: float = 0.0  # seconds of the windows some run of the pipeline covered
    runs: int = 0
    # ms: requests overlapping no pipeline run (idle), or a run of the window's pipeline
    latencies: list[float] = field(default_factory=list)


# -- the benchmark ----------------------------------------------------------------------------


def check_same_answer(ours: Served, reference: Handmade) -> None:
    """Ours and the reference must agree, or comparing their speed would mean nothing."""
    import http.client
    import json

    body = json.dumps({"request_id": "check", "driver_ids": DRIVERS})
    answers = []
    for port in (ours.port, reference.port):
        connection = http.client.HTTPConnection(HOST, port, timeout=10.0)
        connection.request("POST", "/inference", body, {"content-type": "application/json"})
        response = connection.getresponse()
        text = response.read()
        connection.close()
        if response.status != 200:
            raise AssertionError(f"port {port} answered {response.status}: {text!r}")
        answers.append(json.loads(text))
    a, b = answers
    same = (
        a["prediction"] == b["prediction"]
        and (a["model"], a["version"]) == (b["model"], b["version"])
        and a["scores"].keys() == b["scores"].keys()
        and all(abs(a["scores"][k] - b["scores"][k]) <= 1e-12 for k in a["scores"])
    )
    if not same:
        raise AssertionError(f"ours and the reference disagree:\n{a}\n{b}")


def throughput(
    load: LoadProcess, pids: dict[str, tuple[int, int]], size: Size
) -> dict[tuple[str, int], Totals]:
    """Every server at every concurrency, in rounds whose order rotates."""
    totals = {(kind, c): Totals() for kind in SERVERS for c in CONCURRENCY}
    for r in range(size.rounds):
        for i, c in enumerate(CONCURRENCY):
            shift = (r + i) % len(SERVERS)
            for kind in SERVERS[shift:] + SERVERS[:shift]:
                port, pid = pids[kind]
                result = load.run(
                    "closed_loop",
                    host=HOST,
                    port=port,
                    ids=DRIVERS,
                    concurrency=c,
                    warmup=size.warmup,
                    seconds=size.seconds / size.rounds,
                    server_pid=pid,
                    tag=f"{kind}-{r}-{c}",
                )
                totals[kind, c].add(result)
    return totals


def keepalive(
    load: LoadProcess, pids: dict[str, tuple[int, int]], size: Size
) -> dict[str, dict[str, list[float]]]:
    """Latencies (ms) of first and later requests on new keep-alive connections."""
    found = {kind: {"first": [], "later": [], "errors": []} for kind in SERVERS}
    for r in range(size.rounds):
        for kind in SERVERS[r % 3 :] + SERVERS[: r % 3]:
            result = load.run(
                "keepalive_probe",
                host=HOST,
                port=pids[kind][0],
                ids=DRIVERS,
                connections=size.probes,
                requests=size.probe_requests,
                tag=f"keepalive-{kind}-{r}",
            )
            found[kind]["first"] += [s * 1e3 for s in result["first"]]
            found[kind]["later"] += [s * 1e3 for s in result["later"]]
            found[kind]["errors"].append(result["errors"])
    return found


def during_pipelines(load: LoadProcess, ours: Served, size: Size) -> dict[str, Window]:
    """Ours at c=8 idle, while training runs and while monitoring checks run (each
    pipeline triggered again as soon as its run ends), windows in rotating order.

    Requests are told apart by the runs the home recorded: a request counts as
    during training (monitoring) if it overlapped a run of it, wherever it was
    sent, and as idle if it was sent in an idle window and overlapped no run at all
    (the scheduler starts monitoring checks of its own).
    """
    found = {kind: Window() for kind in WINDOWS}
    spans: list[tuple[str, float, float]] = []  # (kind, wall start, wall end) of the load
    samples: list[list[float]] = []
    kinds: list[str] = []
    for r in range(size.pipeline_rounds):
        for kind in WINDOWS[r % 3 :] + WINDOWS[: r % 3]:
            start = time.time()
            load.send(
                "closed_loop",
                host=HOST,
                port=ours.port,
                ids=DRIVERS,
                concurrency=8,
                warmup=0.0,
                seconds=size.pipelines,
                server_pid=ours.pid,
                tag=f"pipelines-{kind}-{r}",
                samples=True,
            )
            trigger = None
            if kind != "idle":
                trigger = Pipelines(ours, kind, time.perf_counter() + size.pipelines)
                trigger.start()
            result = load.result()
            if trigger is not None:
                trigger.join()  # its last run ends before the next window starts
                if trigger.error is not None:
                    raise trigger.error
            spans.append((kind, start, start + result["seconds"]))
            samples += result["samples"]
            kinds += [kind] * len(result["samples"])
            window = found[kind]
            window.seconds += result["seconds"]
            window.requests += result["requests"]
            window.answered += result["answered"]
            window.server_cpu += result["server_cpu"]
    runs = []
    for run in ours.runs():
        interval = run_interval(run)
        if interval is not None and interval[1] >= spans[0][1]:
            runs.append((run["pipeline"], *interval))
    for kind, w0, w1 in spans:
        if kind != "idle":
            mine = [(s, e) for name, s, e in runs if name == kind and e > w0 and s < w1]
            found[kind].runs += len(mine)
            found[kind].covered += sum(min(e, w1) - max(s, w0) for s, e in mine)
    for (wall, latency), kind in zip(samples, kinds, strict=True):
        during = {name for name, s, e in runs if wall < e and wall + latency > s}
        for name in during & {"training", "monitoring"}:
            found[name].latencies.append(latency * 1e3)
        if not during and kind == "idle":
            found["idle"].latencies.append(latency * 1e3)
    return found


def litemlops_cli(home: Path, *args: str) -> str:
    """What `python -m litemlops ARGS --home H` printed; an error if it failed."""
    command = [sys.executable, "-m", "litemlops", *args, "--home", str(home)]
    done = subprocess.run(command, capture_output=True, text=True, env=clean_env())
    if done.returncode != 0:
        raise RuntimeError(
            f"`litemlops {' '.join(args)}` exited with {done.returncode}:\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


def register_challenger(home: Path) -> int:
    """The champion's own model registered again as the next version of its name, on a
    home not being served: a challenger that scores alike, so what a deployment costs
    is its routing and bookkeeping, not another model. Its version."""
    name = MODEL.split("@", 1)[0]
    versions = json.loads(litemlops_cli(home, "models", "versions", name, "--json"))
    champion = next(v for v in versions if "champion" in v["aliases"])
    source = f"runs:/{champion['run_id']}/{champion['model_name']}"
    # The same bytes again: without --allow-duplicate the registry answers the champion.
    answer = litemlops_cli(home, "models", "register", source, name, "--allow-duplicate", "--json")
    return int(json.loads(answer)["version"])


@dataclass
class Deployed:
    """Ours at c=8 with no deployment, an A/B test and a shadow, summed over the rounds."""

    totals: dict[str, Totals]
    # the shadow's report of each round (offered, scored, dropped...), read before it ended
    shadows: list[dict[str, Any]] = field(default_factory=list)
    redone: int = 0  # rounds measured again because a pipeline run overlapped them
    overlapped: list[str] = field(default_factory=list)  # the pipelines of those runs
    disturbed: int = 0  # rounds kept although a run overlapped them (no retries left)
    answered_redone: int = 0  # 2xx answers in the rounds measured again (each one logged)
    warming: int = 0  # requests sent until each shadow scored, before its window
    rounds: list[dict[str, float]] = field(default_factory=list)  # req/s of each kind, per round
    round_p99s: list[dict[str, float]] = field(default_factory=list)  # p99 ms, likewise
    burned: list[float] = field(default_factory=list)  # share of a core beside each floor

    def paired(self, kind: str, of: str = "rps") -> list[float]:
        """`kind` / no deployment within each round, of req/s or p99: a round measures the
        three back to back, so its ratio is free of the machine's drift between rounds."""
        rows = self.rounds if of == "rps" else self.round_p99s
        return [r[kind] / r["none"] for r in rows if r["none"]]


def with_deployments(load: LoadProcess, ours: Served, challenger: int, size: Size) -> Deployed:
    """Ours at c=8 without a deployment, under a 50/50 A/B test and under a shadow
    sampling every request, each started through the admin API before its window and
    ended after it, in rounds rotating the three (noise hits each alike).

    A round that some pipeline run overlapped (the scheduler's monitoring check every
    minute takes most of a core for seconds) is measured again, up to as many times as
    there are rounds: the windows are seconds long, so one run in one of them would
    decide the comparison. `during_pipelines` measures what a run costs serving.
    """
    bodies = {
        "ab": {"strategy": "ab", "challenger": str(challenger), "shares": [50, 50], "stop": False},
        "shadow": {"strategy": "shadow", "challenger": str(challenger), "sample": 100},
    }
    found = Deployed({kind: Totals() for kind in (*DEPLOYMENTS, FLOOR)})
    r = 0
    while r < size.deployment_rounds:
        shift = r % len(DEPLOYMENTS)
        began = time.time()
        results: dict[str, dict[str, Any]] = {}
        shadow: dict[str, Any] = {}
        for kind in DEPLOYMENTS[shift:] + DEPLOYMENTS[:shift]:
            if kind != "none":
                admin(ours, "PUT", bodies[kind], 201)
            try:
                if kind == "shadow":
                    found.warming += shadow_scoring(ours, f"shadow-ready-{r}-{found.redone}")
                results[kind] = load.run(
                    "closed_loop",
                    host=HOST,
                    port=ours.port,
                    ids=DRIVERS,
                    concurrency=8,
                    warmup=min(size.warmup, DEPLOYMENT_WARMUP),
                    seconds=size.deployments / size.deployment_rounds,
                    server_pid=ours.pid,
                    tag=f"deployment-{kind}-{r}-{found.redone}",
                )
                if kind == "shadow":
                    status, answer = ours.call("GET", DEPLOYMENT_PATH)
                    if status != 200:
                        raise RuntimeError(f"GET {DEPLOYMENT_PATH} answered {status}: {answer}")
                    shadow = answer.get("shadow") or {}
            finally:
                if kind != "none":
                    admin(ours, "DELETE", None, 200)
        got = results["shadow"]
        share = got["children_cpu"] / got["seconds"]
        tag = f"deployment-{FLOOR}-{r}-{found.redone}"  # request ids unique in a redone round too
        results[FLOOR] = beside_a_burner(load, ours, size, share, tag)
        ended = time.time()
        overlapped = sorted(
            run["pipeline"]
            for run in ours.runs(20)
            if (span := run_interval(run)) is not None and span[1] > began and span[0] < ended
        )
        if overlapped and found.redone < size.deployment_rounds:
            found.redone += 1
            found.overlapped += overlapped
            found.answered_redone += sum(result["answered"] for result in results.values())
            continue
        found.disturbed += bool(overlapped)
        for kind, result in results.items():
            found.totals[kind].add(result)
        found.rounds.append(
            {kind: got["requests"] / got["seconds"] for kind, got in results.items()}
        )
        found.round_p99s.append({kind: p99_of(got) for kind, got in results.items()})
        found.shadows.append(shadow)
        found.burned.append(share)
        r += 1
    return found


def shadow_scoring(ours: Served, tag: str, timeout: float = 60.0) -> int:
    """Wait until the shadow just started scores: its worker process has started and
    loaded the challenger (a second or so of a core), which a window seconds long
    would otherwise count as what scoring alongside costs. The requests it sent."""
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        sent += 1
        body = {"request_id": f"{tag}-{sent}", "driver_ids": DRIVERS}
        status, answer = ours.call("POST", "/inference", body)
        if status != 200:
            raise RuntimeError(f"POST /inference answered {status}: {answer}")
        status, answer = ours.call("GET", DEPLOYMENT_PATH)
        if status == 200 and ((answer.get("shadow") or {}).get("scored") or 0) > 0:
            return sent
        time.sleep(0.05)
    raise RuntimeError(f"the shadow scored nothing within {timeout:g} s")


def beside_a_burner(
    load: LoadProcess, ours: Served, size: Size, share: float, tag: str
) -> dict[str, Any]:
    """Ours at c=8 with no deployment while a process of this script at the shadow
    worker's niceness keeps `share` of a core busy (`burn`)."""
    from litemlops.serving.shadow import NICENESS

    seconds = size.deployments / size.deployment_rounds
    warmup = min(size.warmup, DEPLOYMENT_WARMUP)
    burner = subprocess.Popen([
        sys.executable, str(SCRIPT), "_burn", f"{min(share, 1.0):.4f}",
        f"{warmup + seconds + 1}", str(NICENESS),
    ])  # fmt: skip
    try:
        return load.run("closed_loop", host=HOST, port=ours.port, ids=DRIVERS, concurrency=8,
                        warmup=warmup, seconds=seconds, server_pid=ours.pid, tag=tag)  # fmt: skip
    finally:
        burner.kill()
        burner.wait()


def burn(share: float, seconds: float, niceness: int) -> None:
    """At `niceness`, spin `share` of each `BURN_PERIOD` and sleep the rest, for `seconds`."""
    os.nice(niceness)
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        while time.monotonic() - now < BURN_PERIOD * share:
            pass
        time.sleep(BURN_PERIOD * (1 - share))


def p99_of(result: dict[str, Any]) -> float:
    """One load window's p99 latency (ms)."""
    one = Totals()
    one.add(result)
    return one.percentile_ms(99)


def admin(ours: Served, method: str, body: Any, expected: int) -> None:
    """Start (PUT) or end (DELETE) the inference service's deployment."""
    status, answer = ours.call(method, DEPLOYMENT_PATH, body, admin=True)
    if status != expected:
        raise RuntimeError(f"{method} {DEPLOYMENT_PATH} answered {status}: {answer}")


def choice_costs() -> dict[str, float]:
    """Microseconds one arm choice takes, in this process (the best of CHOICE_BATCHES
    batches of CHOICE_CALLS): the routers alone, and a live A/B deployment's choice
    plus its bookkeeping of the answer (`LiveDeployment.choose` + `served`)."""
    import random

    from litemlops.serving.deployment_live import Arm, LiveDeployment
    from litemlops.serving.deployment_spec import DeploymentSpec
    from litemlops.serving.deployment_store import DeploymentRecord
    from litemlops.serving.routing import ShareRouter, ThompsonRouter

    salt = "5e1f0c2a9b7d3e64"
    keys = [f"deployment-ab-0-{i}-1" for i in range(CHOICE_CALLS)]  # request ids as sent
    share = ShareRouter([0.5, 0.5], salt)
    # A bandit some way into its run: labels in, the posteriors apart.
    thompson = ThompsonRouter(2, min_share=0.05, rng=random.Random(0))
    thompson.load({"successes": [620, 540], "failures": [380, 460]})
    spec = DeploymentSpec.parse({"strategy": "ab", "challenger": "2", "shares": [50, 50]})
    record = DeploymentRecord(
        id="0" * 12, name="bench", service="inference", strategy="ab", model="m",
        champion="models:/m@champion", champion_version=1, versions=(2,), spec=spec.as_dict(),
        state="active", status={}, salt=salt, started_at=0, ended_at=None, reason="",
    )  # fmt: skip
    live = LiveDeployment(record, [Arm("champion", "m@champion", 1), Arm("v2", "m/2", 2)],
                          rng=random.Random(0))  # fmt: skip
    ids = DRIVERS

    def shares() -> None:
        choose = share.choose
        for key in keys:
            choose(key)

    def bandit() -> None:
        choose = thompson.choose
        for _ in keys:
            choose()

    def deployment() -> None:
        for key in keys:
            arm = live.choose(key, ids)
            live.served(arm, key, 1.0, 0.5)
        live.take()  # what the controller's tick does with them
        live.new_windows()

    found = {}
    for name, batch in (("share", shares), ("thompson", bandit), ("live_ab", deployment)):
        best = float("inf")
        for _ in range(CHOICE_BATCHES):
            start = time.perf_counter_ns()
            batch()
            best = min(best, (time.perf_counter_ns() - start) / CHOICE_CALLS / 1e3)
        found[name] = best
    return found


def count_events(home: Path) -> int:
    """Answered predictions the home kept: request ids of `prediction_served` events in its
    JSONL files and in its compacted history (a file being compacted may be in both)."""
    found = {
        e["request_id"]
        for e in events(home)
        if e.get("event") == "prediction_served" and isinstance(e.get("request_id"), str)
    }
    return len(found | history_request_ids(home / "logs"))


# -- the report -------------------------------------------------------------------------------


def report_at_least(name: str, value: float, unit: str, target: float, reference: float) -> None:
    """`report`'s line for a lower bound on the ratio: `... ratio=R  target>=T  PASS|MISS`."""
    ratio = value / reference if reference else None
    verdict = "PASS" if ratio is not None and ratio >= target else "MISS"
    shown = f"{ratio:.2f}" if ratio is not None else "-"
    print(
        f"{name}: {value:.0f} {unit}  (reference: {reference:.0f} {unit})  ratio={shown}  "
        f"target>={target:g}  {verdict}"
    )
    sys.stdout.flush()


def report_paired(
    name: str, value: float, reference: float, unit: str, paired: list[float], target: float,
    *, at_least: bool,
) -> None:
    """A ratio line whose ratio is the median of paired per-round ratios (values pooled
    over the rounds shown beside it): `... ratio=R  target>=T|<=T  PASS|MISS`."""
    ratio = statistics.median(paired) if paired else None
    met = ratio is not None and (ratio >= target if at_least else ratio <= target)
    shown = f"{ratio:.2f}" if ratio is not None else "-"
    digits = 0 if unit == "req/s" else 2
    print(
        f"{name}: {value:.{digits}f} {unit}  (reference: {reference:.{digits}f} {unit})  "
        f"ratio={shown}  target{'>=' if at_least else '<='}{target:g}  "
        f"{'PASS' if met else 'MISS'}"
    )
    sys.stdout.flush()


def describe(label: str, size: Size) -> str:
    import starlette
    import uvicorn

    return (
        f"# size {label}: {size.seconds:g} s per server and concurrency "
        f"({size.rounds} round(s), order rotating, {size.warmup:g} s warm-up each), "
        f"concurrency {', '.join(map(str, CONCURRENCY))}, {len(DRIVERS)} drivers a request; "
        f"keep-alive: {size.probes} connections x {size.probe_requests} requests a round; "
        f"pipelines: {size.pipelines:g} s busy and {size.pipelines:g} s idle a round at c=8 "
        f"({size.pipeline_rounds} round(s)); "
        f"with --deployments: {size.deployments:g} s each of none, A/B and shadow at c=8 "
        f"({size.deployment_rounds} round(s), order rotating)\n"
        f"# python {platform.python_version()}, uvicorn {uvicorn.__version__}, starlette "
        f"{starlette.__version__} | ours: `python -m litemlops run --port 0`, as shipped | "
        f"load from a second process (plain sockets on a selector) | {os.cpu_count()} cores "
        "shared by the load and the servers"
    )


def show(totals: dict[tuple[str, int], Totals]) -> None:
    """The `#` table: every server at every concurrency, and who limited the rate."""
    print(
        "# conc  server      req/s   p50 ms   p99 ms  non-2xx  server CPU/req  "
        "server CPU  client CPU"
    )
    for c in CONCURRENCY:
        for kind in SERVERS:
            t = totals[kind, c]
            children = (
                f"  + {t.children_cpu / t.requests * 1e3:.3f} ms/req in {t.children} descendant(s)"
                if t.children or t.children_cpu
                else ""
            )
            print(
                f"# {c:4d}  {kind:9s} {t.rps:7.0f} {t.percentile_ms(50):8.2f} "
                f"{t.percentile_ms(99):8.2f} {t.errors:8d} {t.cpu_per_request_ms:11.3f} ms"
                f" {t.server_cpu / t.seconds:10.0%} {t.client_cpu / t.seconds:11.0%}"
                f"{'  client-bound' if t.client_bound else ''}{children}"
            )
    bound = [f"{kind} c={c}" for (kind, c), t in totals.items() if t.client_bound]
    if bound:
        print(
            "# CLIENT-BOUND: the load process used a whole core while the server had time to "
            f"spare for {', '.join(bound)}: those req/s are the client's, not the server's"
        )
    else:
        print("# the load process never limited the rate (it never had a whole core busy)")
    ceiling = totals["ceiling", 64]
    client_ms = ceiling.client_cpu / ceiling.requests * 1e3
    print(
        f"# the load costs {client_ms:.3f} ms of client CPU a request at c=64: one core of it "
        f"sends {1 / client_ms * 1e3:.0f} req/s, {ceiling.cpu_per_request_ms / client_ms:.1f}x "
        "what the ceiling's CPU per request lets it answer"
    )
    print(
        f"# load average after the load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(above 2, other processes took CPU from the servers or the client)"
    )
    ours, ref = (totals[kind, 8] for kind in ("ours", "reference"))
    cost = ours.cpu_per_request_ms / ref.cpu_per_request_ms
    print(
        f"# server CPU per request at c=8: ours {cost:.2f}x the reference's, so where both "
        f"had a core to themselves ours would serve {1 / cost:.2f}x its req/s "
        f"(goal: {GOAL_RATIO:g}x; measured: {ours.rps / ref.rps:.2f}x)"
    )


def report_lines(
    totals: dict[tuple[str, int], Totals],
    probes: dict[str, dict[str, list[float]]],
    windows: dict[str, Window],
    rss: dict[str, tuple[float, float, int]],
) -> None:
    from _harness import report

    for c in CONCURRENCY:
        ours, ref = totals["ours", c], totals["reference", c]
        report_at_least(f"inference_rps_c{c}", ours.rps, "req/s", TARGET_RATIO, ref.rps)
    for c in (1, 8):
        ours, ref = totals["ours", c], totals["reference", c]
        p99 = ours.percentile_ms(99)
        report(f"inference_p99_c{c}", p99, "ms", TARGET_P99_MS, reference=ref.percentile_ms(99))
    for c in CONCURRENCY:
        ours, ref = totals["ours", c], totals["reference", c]
        report(
            f"server_cpu_per_request_c{c}",
            ours.cpu_per_request_ms,
            "ms",
            TARGET_RATIO,
            reference=ref.cpu_per_request_ms,
            on_ratio=True,
        )
    ours_later, ref_later = (percentile(probes[k]["later"], 50) for k in ("ours", "reference"))
    report(
        "keepalive_second_request_p50", ours_later, "ms", TARGET_KEEPALIVE_MS, reference=ref_later
    )
    idle = percentile(windows["idle"].latencies, 99)
    for name in ("training", "monitoring"):
        report(
            f"inference_p99_during_{name}_c8",
            percentile(windows[name].latencies, 99),
            "ms",
            TARGET_BUSY_RATIO,
            reference=idle,
            on_ratio=True,
        )
    errors = sum(totals["ours", c].errors for c in CONCURRENCY)
    ref_errors = sum(totals["reference", c].errors for c in CONCURRENCY)
    report("inference_non_2xx", errors, "responses", 0, reference=ref_errors)
    report("server_rss", rss["ours"][0], "MB", TARGET_RSS_MB, reference=rss["reference"][0])


def show_deployments(deployed: Deployed) -> None:
    print("# ours at c=8 with no deployment, a 50/50 A/B test, a shadow sampling 100%")
    print(
        f"# rounds measured again because a pipeline run overlapped them: {deployed.redone}"
        + (f" ({', '.join(deployed.overlapped)})" if deployed.overlapped else "")
        + f"; rounds kept with a run in them: {deployed.disturbed}"
    )
    print(
        "#   kind      req/s   p50 ms   p99 ms  non-2xx  server CPU/req  server CPU  client CPU"
        "  workers CPU"
    )
    for kind, t in deployed.totals.items():
        print(
            f"#   {kind:7s} {t.rps:7.0f} {t.percentile_ms(50):8.2f} {t.percentile_ms(99):8.2f} "
            f"{t.errors:8d} {t.cpu_per_request_ms:11.3f} ms {t.server_cpu / t.seconds:10.0%} "
            f"{t.client_cpu / t.seconds:11.0%} {t.children_cpu / t.seconds:12.0%}"
            f"{'  client-bound' if t.client_bound else ''}"
        )
    print(
        "# req/s of each round (none / ab / shadow): "
        + ", ".join(" / ".join(f"{r[kind]:.0f}" for kind in DEPLOYMENTS) for r in deployed.rounds)
    )
    # The A/B ratio line below is the median of these: a round measures the kinds back to
    # back, so its ratio is free of the machine's drift between rounds, and the median
    # of one disturbed round (another process taking the cores for seconds).
    for what, kind, of in (
        ("req/s", "ab", "rps"), ("p99", "shadow", "p99"), ("p99", FLOOR, "p99"),
        ("req/s", "shadow", "rps"), ("req/s", FLOOR, "rps"),
    ):  # fmt: skip
        paired = deployed.paired(kind, of)
        if paired:
            print(
                f"# {kind} / none {what} within each round: "
                + ", ".join(f"{x:.2f}" for x in paired)
                + f" (median {statistics.median(paired):.2f})"
            )
    none = deployed.totals["none"]
    why = {
        "ab": "the choice, the arm's counts, its row written by the controller, the event's "
        "extra fields",
        "shadow": "handing it to the challenger's worker process, and writing the event that "
        "process rendered",
    }
    for kind, what in why.items():
        added = deployed.totals[kind].cpu_per_request_ms - none.cpu_per_request_ms
        print(
            f"# {kind} adds {added * 1e3:.0f} us of server CPU per request ({what}); at c=8 "
            "the server is the bottleneck, so latency grows with it"
        )
    sums = {k: sum(s.get(k) or 0 for s in deployed.shadows) for k in ("offered", "scored")}
    dropped = sum(s.get("dropped") or 0 for s in deployed.shadows)
    shadow = deployed.totals["shadow"]
    print(
        f"# {FLOOR}: no deployment, beside a process at the shadow worker's niceness keeping "
        "busy the share of a core that round's worker used ("
        + ", ".join(f"{b:.0%}" for b in deployed.burned)
        + "): what that much CPU elsewhere takes from the server here, not the shadow's code"
    )
    print(
        f"# shadow: {sums['offered']:,} requests offered to the challenger, {sums['scored']:,} "
        f"scored before each window's end, {dropped:,} dropped (queue full); its worker "
        f"process (lowest CPU priority) used {shadow.children_cpu / shadow.seconds:.0%} of a "
        f"core, {shadow.children_cpu / max(sums['scored'], 1) * 1e6:.0f} us per request scored"
    )


def report_deployments(deployed: Deployed, costs: dict[str, float]) -> None:
    from _harness import report

    none, ab, shadow = (deployed.totals[kind] for kind in DEPLOYMENTS)
    # req/s: the median of each round's paired ratio, free of the drift between rounds.
    # p99: over all rounds pooled (they rotate the order), since one round's p99 rests on
    # its slowest 1% of a few thousand requests, too few to pair on.
    print(
        f"# A/B req/s over all rounds pooled: {ab.rps / none.rps:.2f}; shadow p99 paired "
        f"by round, median: {statistics.median(deployed.paired('shadow', 'p99') or [0]):.2f}"
    )
    report_paired("deployment_ab_rps_c8", ab.rps, none.rps, "req/s",
                  deployed.paired("ab"), TARGET_AB_RATIO, at_least=True)  # fmt: skip
    report(
        "deployment_shadow_p99_c8",
        shadow.percentile_ms(99),
        "ms",
        TARGET_SHADOW_P99_RATIO,
        reference=none.percentile_ms(99),
        on_ratio=True,
    )
    floor = deployed.totals[FLOOR]
    floor_p99 = floor.percentile_ms(99)
    print(
        f"# the floor, no deployment beside that much CPU elsewhere: p99 "
        f"{floor_p99:.2f} ms, ratio {floor_p99 / none.percentile_ms(99):.2f}"
        f" pooled, {statistics.median(deployed.paired(FLOOR, 'p99') or [0]):.2f} paired by round"
        f"; req/s ratio {statistics.median(deployed.paired(FLOOR) or [0]):.2f} paired (shadow: "
        f"{statistics.median(deployed.paired('shadow') or [0]):.2f})"
    )
    request_us = none.cpu_per_request_ms * 1e3
    print(
        f"# arm choice in this process (best of {CHOICE_BATCHES} batches of {CHOICE_CALLS:,}), "
        f"against the {TARGET_CHOICE_US:g} us budget and ours' server CPU per request at c=8 "
        f"with no deployment ({request_us:.0f} us):"
    )
    what = {
        "share": "ShareRouter.choose, 2 arms (blake2b of the request id)",
        "thompson": "ThompsonRouter.choose, 2 arms, 2,000 rewards loaded",
        "live_ab": "LiveDeployment.choose + served, A/B (the request path's whole share)",
    }
    for name, us in costs.items():
        print(
            f"#   {what[name]}: {us:.2f} us, {us / TARGET_CHOICE_US:.2f}x the budget, "
            f"{us / request_us:.2%} of a request's server CPU"
        )
    for name in ("share", "thompson"):
        report(f"deployment_{name}_choice", costs[name], "us", TARGET_CHOICE_US)


def show_probes(probes: dict[str, dict[str, list[float]]]) -> None:
    print(
        "# keep-alive (ms): p50 of a new connection's first request | of the later ones | p99 later"
    )
    for kind, found in probes.items():
        print(
            f"#   {kind:9s} {percentile(found['first'], 50):8.2f} | "
            f"{percentile(found['later'], 50):8.2f} | {percentile(found['later'], 99):8.2f}"
            f"  ({len(found['later'])} later requests, {sum(found['errors'])} non-2xx)"
        )


def show_windows(windows: dict[str, Window]) -> None:
    print("# c=8 windows of ours: idle, and with a pipeline triggered again as each run ends")
    for kind, w in windows.items():
        runs = f"{w.runs} runs covering {w.covered / w.seconds:.0%}, " if kind != "idle" else ""
        print(
            f"#   {kind:10s} {runs}{w.requests / w.seconds:6.0f} req/s, server CPU "
            f"{w.server_cpu / w.requests * 1e3:.3f} ms/req; {len(w.latencies)} requests "
            f"overlapping {'no run' if kind == 'idle' else 'a run'}: p50 "
            f"{percentile(w.latencies, 50):.2f} ms, p99 {percentile(w.latencies, 99):.2f} ms"
        )


def measure(tmp: Path, template: Path, size: Size, deployments: bool) -> None:
    """Start the three servers, load them, report."""
    from _harness import report

    deployed = None
    with contextlib.ExitStack() as stack:
        load = LoadProcess(tmp / "client.log", clean_env())
        stack.callback(load.close)
        home = copy_home(template, tmp / "ours")
        challenger = register_challenger(home) if deployments else 0
        ours = Served.start(home, tmp / "ours.log")
        stack.callback(ours.stop)
        cold = ours.ready_seconds
        handmade = {kind: Handmade.start(kind, template, tmp) for kind in SERVERS[1:]}
        for server in handmade.values():
            stack.callback(server.stop)
            server.wait_ready()
        check_same_answer(ours, handmade["reference"])
        print("# ours and the reference agree on the prediction and every score")
        pids = {"ours": (ours.port, ours.pid)}
        pids |= {kind: (s.port, s.pid) for kind, s in handmade.items()}
        since = time.time()
        totals = throughput(load, pids, size)
        after_load = tree_rss(ours.pid)
        probes = keepalive(load, pids, size)
        windows = during_pipelines(load, ours, size)
        rss = {kind: tree_rss(pid) for kind, (_, pid) in pids.items()}
        if deployments:  # after the RSS: a deployment loads its challenger too
            deployed = with_deployments(load, ours, challenger, size)
        scheduled = [
            f"{r['pipeline']} ({r['trigger']}, {r['state']}, {r.get('duration')} s)"
            for r in ours.runs()
            if r["trigger"] not in ("manual", "bootstrap")
            and (run_interval(r) or (0.0, 0.0))[1] >= since
        ]
        code = ours.stop()  # its events are all written once it exits
    if code != 0:
        print(f"# ours exited with {code} on SIGTERM:\n{tail(ours.log)}")
    show(totals)
    show_probes(probes)
    show_windows(windows)
    print(f"# scheduler: runs it started during the load: {', '.join(scheduled) or 'none'}")
    print(
        f"# RSS at the end (MB; ours {after_load[0]:.0f} before the pipeline windows): "
        + ", ".join(
            f"{kind} {own:.0f}" + (f" + {kids:.0f} in {n} descendant(s)" if n else "")
            for kind, (own, kids, n) in rss.items()
        )
    )
    answered = 1 + sum(totals["ours", c].answered for c in CONCURRENCY)  # 1: the answer check
    answered += len(probes["ours"]["first"]) + len(probes["ours"]["later"])
    answered += sum(w.answered for w in windows.values()) - sum(probes["ours"]["errors"])
    if deployed is not None:
        answered += sum(t.answered for t in deployed.totals.values()) + deployed.answered_redone
        answered += deployed.warming
        show_deployments(deployed)
    logged = count_events(ours.home)
    print(
        f"# events: {logged:,} predictions in the log and its history for {answered:,} "
        f"2xx answers of ours: {'one each' if logged == answered else 'MISMATCH'}"
    )
    report_lines(totals, probes, windows, rss)
    report("cold_start_existing_home", cold, "s", TARGET_COLD_EXISTING_S)
    if deployed is not None:  # timed now that no server takes CPU from this process
        report_deployments(deployed, choice_costs())


def fresh_start(tmp: Path) -> Path:
    """`run` on an empty home to /ready (the demo set up first), stopped: the template."""
    from _harness import report

    home = tmp / "template"
    served = Served.start(home, tmp / "fresh.log")
    code = served.stop()
    print(f"# cold_start_fresh_home: `run --port 0` from its start to /ready 200; exit {code}")
    report("cold_start_fresh_home", served.ready_seconds, "s", TARGET_COLD_FRESH_S)
    return home


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    import logging

    import structlog

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="S",
        help="XS: the test suite's; S: a quick check; M: the targets' (default S)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="a home `run --once` bootstrapped, copied "
        "instead of making one (the fresh-home cold start is then not measured)",
    )
    parser.add_argument(
        "--deployments",
        action="store_true",
        help="also ours at c=8 under an A/B test and a shadow (a second version of the "
        "champion registered on its home), and the routers' arm choice timed",
    )
    parser.add_argument(
        "--pipeline-rounds",
        type=int,
        metavar="N",
        help="N rounds of the idle, training and monitoring windows instead of the size's "
        "count (each window as long as the size says)",
    )
    parser.add_argument(
        "--deployment-rounds",
        type=int,
        metavar="N",
        help="with --deployments: N rounds of the size's window length instead of its "
        "count (more rounds, a tighter comparison: one window's p99 moves by 10-20 %% "
        "on a shared machine)",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # Stopped by SIGTERM (a CI timeout), unwind as for Ctrl-C: the servers stop too.
    signal.signal(signal.SIGTERM, _unwind)
    size = SIZES[args.size]
    if args.pipeline_rounds is not None:
        if args.pipeline_rounds < 1:
            parser.error(f"--pipeline-rounds is {args.pipeline_rounds}: at least 1")
        size = replace(size, pipeline_rounds=args.pipeline_rounds)
    if args.deployment_rounds is not None:
        if not args.deployments:
            parser.error("--deployment-rounds measures the deployments: add --deployments")
        if args.deployment_rounds < 1:
            parser.error(f"--deployment-rounds is {args.deployment_rounds}: at least 1")
        window = size.deployments / size.deployment_rounds
        size = replace(size, deployments=window * args.deployment_rounds,
                       deployment_rounds=args.deployment_rounds)  # fmt: skip
    print("# serving: /inference through `litemlops run` / by hand (dict + predict_proba)")
    print(describe(args.size, size))
    sys.stdout.flush()
    with tempfile.TemporaryDirectory(prefix="litemlops-serving-") as name:
        tmp = Path(name)
        template = args.home if args.home is not None else fresh_start(tmp)
        measure(tmp, template, size, args.deployments)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_serve"]:
        serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1:2] == ["_burn"]:
        burn(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
