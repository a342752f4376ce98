"""Online serving: `/inference` over HTTP against a hand-written endpoint and a constant.

Three servers, each a uvicorn process of its own on 127.0.0.1 (one worker, no
access log), take load from another process on loopback:

- ours: `create_app(config=...)` on a home with the demo bootstrapped, its
  scheduler started, and every answer written as a `prediction_served` event to
  the JSONL log on a background thread, as in production;
- reference: what the course's endpoint does, by hand: the drivers' features
  from a dict (read from the online store at start), the same model's
  `predict_proba`, the same JSON answer;
- ceiling: a bare Starlette app answering a constant.

Rounds alternate which server goes first, so load from other processes on a
shared machine hits all three alike. Then the cold start of `litemlops run` to
`/ready`, on the home just served and on a fresh one.
Run: `.venv/bin/python benchmarks/serving.py --size M`.
"""

from __future__ import annotations

# Only the standard library at module level: the servers and the load client
# import this file too, and pandas (which `_harness` brings in) would weigh on
# their start and their RSS.
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DRIVERS = [1001, 1002, 1003, 1004, 1005]
CONCURRENCY = (1, 8, 64)
SERVERS = ("ours", "reference", "ceiling")
MODEL = "driver_ranker@champion"
SCRIPT = Path(__file__).resolve()
READY_TIMEOUT = 60.0
COLD_TIMEOUT = 120.0
TARGET_RATIO = 0.7  # ours / reference req/s, at least
TARGET_P99_MS = 20.0
TARGET_RSS_MB = 300.0
TARGET_COLD_EXISTING_S = 5.0
TARGET_COLD_FRESH_S = 20.0
CLIENT_BOUND = 0.9  # share of a core the load process uses when it, not the server, limits


@dataclass(frozen=True)
class Size:
    seconds: float  # of load per server and concurrency, split into rounds
    rounds: int
    warmup: float  # of untimed load before each round (opens the connections)


SIZES = {
    "S": Size(seconds=1.0, rounds=1, warmup=0.5),
    "M": Size(seconds=15.0, rounds=3, warmup=1.0),
}


# -- the servers (each runs in a process of its own) -----------------------------------------


def ours_app(home: Path) -> Any:
    from litemlops.config import Config
    from litemlops.logsetup import configure_logging
    from litemlops.server import create_app

    # Rotation as in production (10 MB files), but every file kept: the benchmark
    # counts the events afterwards, and an M run writes more than 5 files' worth.
    # The scheduler runs, with the demo schedules off: a `data` run firing during
    # one load level would measure the pipeline, not the endpoint.
    env = {"LITEMLOPS_LOGGING_BACKUPS": "100"}
    env |= {f"LITEMLOPS_SCHEDULES_{name}": "" for name in ("DATA", "TRAINING", "BATCH_PREDICTIONS")}
    config = Config.load(home, env=env)
    configure_logging(config, background=True, console_level="warning")
    return create_app(config=config, freeze_gc=True)  # as `litemlops run` serves


def reference_app(home: Path) -> Any:
    import warnings

    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from litemlops.config import Config
    from litemlops.store.registry import ModelRegistry
    from litemlops.store.tracking import Tracker

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
            Route("/health", health, methods=["GET"]),
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
            Route("/health", constant, methods=["GET"]),
        ]
    )


def serve(kind: str, port: int, home: Path) -> None:
    import uvicorn

    options: dict[str, Any] = {"host": HOST, "port": port, "workers": 1}
    options.update(log_level="warning", access_log=False)
    # uvicorn raises SIGTERM again once it has shut down gracefully; the default
    # action would then kill the process before the event log is flushed.
    signal.signal(signal.SIGTERM, _exit_quietly)
    if kind == "ours":
        from litemlops.logsetup import shutdown_logging

        app = ours_app(home)
        try:
            # Logging is configured already; uvicorn's dictConfig would close its handlers.
            uvicorn.run(app, log_config=None, **options)
        finally:
            shutdown_logging()  # the application writes what is still queued
    elif kind == "reference":
        uvicorn.run(reference_app(home), **options)
    else:
        uvicorn.run(ceiling_app(), **options)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


# -- the load ---------------------------------------------------------------------------------

QUANTILES = 1000  # latency quantiles a round reports; rounds are pooled from them

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local tag, n = "", 0
function init(args) tag = args[1] or "" end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil,
    '{"request_id":"' .. tag .. '-' .. n .. '","driver_ids":__IDS__}')
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout))
  local q = {}
  for i = 0, __QUANTILES__ - 1 do
    q[#q + 1] = string.format("%d", latency:percentile((i + 0.5) * 100 / __QUANTILES__))
  end
  io.write("QUANTILES " .. table.concat(q, " ") .. "\\n")
end
"""


def load_client() -> None:
    """Run the jobs the benchmark sends on stdin (a JSON object a line), answer on stdout."""
    for line in sys.stdin:
        print(json.dumps(asyncio.run(drive(**json.loads(line)))), flush=True)


async def drive(
    url: str, concurrency: int, warmup: float, seconds: float, server_pid: int, tag: str
) -> dict[str, Any]:
    """`concurrency` clients sending `/inference` back to back: untimed, then timed."""
    import httpx

    ids = json.dumps(DRIVERS)
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    errors = [0]
    answered = [0]
    # A client (one keep-alive connection) per worker: with one shared pool,
    # httpcore's bookkeeping of waiting requests collapses past ~16 of them
    # (about 90 req/s at 64 against a constant, where these give 1,300).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # One TLS context for all (plain HTTP never uses it): each client would load the
    # CA bundle again, 17 ms apiece.
    tls = ssl.create_default_context()
    clients = [
        httpx.AsyncClient(limits=limits, timeout=30.0, verify=tls) for _ in range(concurrency)
    ]

    async def worker(n: int, until: float, timed: bool) -> None:
        client, i = clients[n], 0
        while time.perf_counter() < until:
            i += 1
            body = f'{{"request_id":"{tag}-{n}-{i}-{timed:d}","driver_ids":{ids}}}'
            start = time.perf_counter()
            try:
                response = await client.post(url, content=body.encode(), headers=headers)
                ok = 200 <= response.status_code < 300
            except httpx.HTTPError:
                ok = False  # no answer at all
            answered[0] += ok
            if timed:
                latencies.append(time.perf_counter() - start)
                errors[0] += not ok

    try:
        until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(n, until, False) for n in range(concurrency)))
        server_cpu, cpu = process_cpu_seconds(server_pid), time.process_time()
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(worker(n, until, True) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu, server_cpu = time.process_time() - cpu, process_cpu_seconds(server_pid) - server_cpu
    finally:
        for client in clients:
            await client.aclose()
    latencies.sort()
    quantiles = [
        latencies[int((i + 0.5) * len(latencies) / QUANTILES)] * 1e3 for i in range(QUANTILES)
    ]
    return {
        "seconds": elapsed,
        "requests": len(latencies),
        "errors": errors[0],
        "answered": answered[0],
        "quantiles_ms": quantiles if latencies else [],
        "client_cpu": cpu,
        "server_cpu": server_cpu,
        "abandoned": 0,
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HttpxLoad:
    """The load process: jobs in, results out, one at a time."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack):
        self.log = tmp / "client.log"
        with self.log.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "_load"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=clean_env(),
                cwd=tmp,
            )
        stack.callback(self.close)

    def run(self, **job: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(job).encode() + b"\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load client died:\n{tail(self.log)}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            stop(self.process)


class WrkLoad:
    """wrk, one thread, whole seconds (it takes no fractions); a new request id each time."""

    def __init__(self, wrk: str, tmp: Path):
        self.wrk = wrk
        self.script = tmp / "inference.lua"
        self.script.write_text(
            WRK_SCRIPT.replace("__IDS__", json.dumps(DRIVERS).replace(" ", "")).replace(
                "__QUANTILES__", str(QUANTILES)
            )
        )

    def _wrk(self, url: str, concurrency: int, seconds: float, tag: str) -> dict[str, Any]:
        command = [self.wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
        command += ["--timeout", "30s", "-s", str(self.script), url, "--", tag]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        lines = {line.split(" ", 1)[0]: line.split()[1:] for line in out.splitlines()}
        if "RESULT" not in lines:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        requests, micros, status, failed = map(int, lines["RESULT"])
        return {
            "seconds": micros / 1e6,
            "requests": requests,
            "errors": status + failed,
            "answered": requests - status,
            "quantiles_ms": [int(v) / 1e3 for v in lines["QUANTILES"]] if requests else [],
            # At the deadline wrk drops what is in flight; the server still answers it.
            "abandoned": concurrency,
        }

    def run(
        self, url: str, concurrency: int, warmup: float, seconds: float, server_pid: int, tag: str
    ) -> dict[str, Any]:
        import resource

        warm = self._wrk(url, concurrency, warmup, f"{tag}-warm")
        server_cpu = process_cpu_seconds(server_pid)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = self._wrk(url, concurrency, seconds, tag)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["server_cpu"] = process_cpu_seconds(server_pid) - server_cpu
        result["client_cpu"] = (after.ru_utime - before.ru_utime) + (
            after.ru_stime - before.ru_stime
        )
        result["answered"] += warm["answered"]
        result["abandoned"] += warm["abandoned"]
        return result


# -- the benchmark ---------------------------------------------------------------------------


@dataclass
class Totals:
    """One server at one concurrency, summed over the rounds."""

    seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    answered: int = 0  # 2xx, warm-up included: each one should be a logged event
    abandoned: int = 0  # requests the client dropped at a deadline (the server may answer)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    # (latency quantile in ms, how many requests it stands for) of every round
    quantiles: list[tuple[float, float]] = field(default_factory=list)

    def add(self, result: dict[str, Any]) -> None:
        for name in ("seconds", "requests", "errors", "answered", "abandoned"):
            setattr(self, name, getattr(self, name) + result[name])
        self.client_cpu += result["client_cpu"]
        self.server_cpu += result["server_cpu"]
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
        """The server's CPU (every thread) per timed request: what its req/s would be
        limited by with a core to itself, whoever limited it here."""
        return self.server_cpu / self.requests * 1e3

    @property
    def client_bound(self) -> bool:
        return self.client_cpu / self.seconds >= CLIENT_BOUND > self.server_cpu / self.seconds


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path


class NotReady(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without LITEMLOPS_* settings, which would change what is measured."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")}


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    """Poll `url` until it answers 200; NotReady if the process exits first or time runs out."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise NotReady(f"exited with {process.returncode} before {url} answered:\n{tail(log)}")
        connection = http.client.HTTPConnection(where.hostname or HOST, where.port, timeout=1.0)
        try:
            connection.request("GET", where.path)
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):  # refused until the server listens
            pass
        finally:
            connection.close()
        time.sleep(0.02)
    raise NotReady(f"{url} did not answer 200 within {timeout:g} s:\n{tail(log)}")


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM (a graceful shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def start_server(kind: str, home: Path, tmp: Path, stack: contextlib.ExitStack) -> Server:
    port = free_port()
    log = tmp / f"{kind}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "_serve", kind, str(port), str(home)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            cwd=tmp,
        )
    stack.callback(stop, process)
    return Server(kind, process, f"http://{HOST}:{port}", log)


def prepare(home: Path) -> None:
    """The demo bootstrapped as `litemlops run` does it on a fresh home, then closed."""
    from litemlops.bootstrap import bootstrap
    from litemlops.config import Config
    from litemlops.platform import Platform

    with Platform(Config.load(home, env={})) as opened:
        report = bootstrap(opened)
    if report.no_champion:
        raise RuntimeError(f"the demo has no champion to serve: {report.no_champion}")


def check_same_answer(ours: Server, reference: Server) -> None:
    """Ours and the reference must agree, or comparing their speed would mean nothing."""
    import httpx

    body = {"request_id": "check", "driver_ids": DRIVERS}
    got = [httpx.post(f"{s.url}/inference", json=body, timeout=10.0) for s in (ours, reference)]
    for server, response in zip((ours, reference), got, strict=True):
        if response.status_code != 200:
            raise AssertionError(f"{server.kind} answered {response.status_code}: {response.text}")
    a, b = (r.json() for r in got)
    same = (
        a["prediction"] == b["prediction"]
        and (a["model"], a["version"]) == (b["model"], b["version"])
        and a["scores"].keys() == b["scores"].keys()
        and all(abs(a["scores"][k] - b["scores"][k]) <= 1e-12 for k in a["scores"])
    )
    if not same:
        raise AssertionError(f"ours and the reference disagree:\n{a}\n{b}")


def load(
    servers: dict[str, Server], size: Size, client: HttpxLoad | WrkLoad
) -> dict[tuple[str, int], Totals]:
    """Every server at every concurrency, in rounds whose order rotates."""
    totals = {(kind, c): Totals() for kind in SERVERS for c in CONCURRENCY}
    for r in range(size.rounds):
        for i, c in enumerate(CONCURRENCY):
            shift = (r + i) % len(SERVERS)
            for kind in SERVERS[shift:] + SERVERS[:shift]:
                server = servers[kind]
                result = client.run(
                    url=f"{server.url}/inference",
                    concurrency=c,
                    warmup=size.warmup,
                    seconds=size.seconds / size.rounds,
                    server_pid=server.process.pid,
                    tag=f"{kind}-{r}-{c}",
                )
                totals[kind, c].add(result)
    return totals


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process in MB, from /proc (Linux)."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    current, peak = (int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return current, peak


def logged_predictions(home: Path) -> int:
    """`prediction_served` events in the JSONL log and its rotated files."""
    count = 0
    for path in sorted((home / "logs").glob("events.jsonl*")):
        with path.open(encoding="utf-8") as lines:
            count += sum('"prediction_served"' in line for line in lines)
    return count


def scheduled_runs(home: Path, since_ms: int) -> list[str]:
    """Pipeline runs the scheduler started during the load (they compete for the CPU)."""
    con = sqlite3.connect(f"file:{home / 'registry.db'}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT pipeline, trigger, state, (ended_at - started_at) / 1e3 FROM pipeline_runs "
            "WHERE trigger != 'bootstrap' AND queued_at >= ? ORDER BY queued_at",
            [since_ms],
        ).fetchall()
    finally:
        con.close()
    return [f"{name} ({trigger}, {state}, {took} s)" for name, trigger, state, took in rows]


def cold_start(home: Path, tmp: Path, label: str) -> tuple[float, str] | str:
    """`litemlops run` to `/ready` in seconds and how it stopped, or why it was not measured."""
    port = free_port()
    log = tmp / f"run-{label}.log"
    command = [sys.executable, "-m", "litemlops", "run", "--home", str(home)]
    command += ["--host", HOST, "--port", str(port)]
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=tmp
        )
    try:
        wait_ready(process, f"http://{HOST}:{port}/ready", log, COLD_TIMEOUT)
        ready = time.perf_counter() - started
    except NotReady as exc:
        return f"`litemlops run` {exc}"
    finally:
        stopping = time.perf_counter()
        code = stop(process)
        stopped = time.perf_counter() - stopping
    return ready, f"SIGTERM: exit {code} after {stopped:.2f} s"


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


def describe(label: str, size: Size) -> str:
    import httpx
    import starlette
    import uvicorn

    wrk = shutil.which("wrk")
    if wrk:
        version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
        client = f"{' '.join(version.split()[:2])}, one thread"
    else:
        client = f"httpx {httpx.__version__}, an AsyncClient per connection (wrk not installed)"
    return (
        f"# size {label}: {size.seconds:g} s per server and concurrency "
        f"({size.rounds} round(s), order rotating, {size.warmup:g} s warm-up each), "
        f"concurrency {', '.join(map(str, CONCURRENCY))}, {len(DRIVERS)} drivers a request\n"
        f"# python {platform.python_version()}, uvicorn {uvicorn.__version__} "
        f"(h11, asyncio; one worker), starlette {starlette.__version__} | load from a second "
        f"process: {client} | {os.cpu_count()} cores shared by the load and the server"
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
            print(
                f"# {c:4d}  {kind:9s} {t.rps:7.0f} {t.percentile_ms(50):8.2f} "
                f"{t.percentile_ms(99):8.2f} {t.errors:8d} {t.cpu_per_request_ms:11.3f} ms"
                f" {t.server_cpu / t.seconds:10.0%} {t.client_cpu / t.seconds:11.0%}"
                f"{'  client-bound' if t.client_bound else ''}"
            )
    bound = [f"{kind} c={c}" for (kind, c), t in totals.items() if t.client_bound]
    if bound:
        print(
            "# CLIENT-BOUND: the load process used a whole core while the server had time to "
            f"spare for {', '.join(bound)}: those req/s are the client's, not the server's"
        )
    else:
        print("# the load process never limited the rate (it never had a whole core busy)")
    print(
        f"# load average after the load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(above 2, other processes took CPU from the server or the client)"
    )
    ours, ref = (totals[kind, 8] for kind in ("ours", "reference"))
    cost = ours.cpu_per_request_ms / ref.cpu_per_request_ms
    print(
        f"# server CPU per request at c=8: ours {cost:.2f}x the reference's, so where both "
        f"had a core to themselves ours would serve {1 / cost:.2f}x its req/s"
    )


def check_events(home: Path, totals: dict[tuple[str, int], Totals]) -> None:
    answered = sum(totals["ours", c].answered for c in CONCURRENCY) + 1  # + the answer check
    abandoned = sum(totals["ours", c].abandoned for c in CONCURRENCY)
    events = logged_predictions(home)
    complete = answered <= events <= answered + abandoned
    dropped = f" (+ up to {abandoned:,} the client dropped in flight)" if abandoned else ""
    print(
        f"# events: {events:,} prediction_served in the JSONL log for {answered:,} answers "
        f"of ours{dropped}: {'none lost' if complete else 'MISMATCH'}"
    )


def measure(tmp: Path, home: Path, size: Size) -> None:
    from _harness import report

    with contextlib.ExitStack() as stack:
        servers = {kind: start_server(kind, home, tmp, stack) for kind in SERVERS}
        for server in servers.values():
            path = "/ready" if server.kind == "ours" else "/health"
            wait_ready(server.process, server.url + path, server.log, READY_TIMEOUT)
        check_same_answer(servers["ours"], servers["reference"])
        print("# ours and the reference agree on the prediction and every score")
        wrk = shutil.which("wrk")
        client = WrkLoad(wrk, tmp) if wrk else HttpxLoad(tmp, stack)
        since_ms = int(time.time() * 1000)
        totals = load(servers, size, client)
        rss = {kind: rss_mb(server.process.pid) for kind, server in servers.items()}
        code = stop(servers["ours"].process)  # its events are all written once it exits
    if code != 0:
        print(f"# ours exited with {code} on SIGTERM:\n{tail(servers['ours'].log)}")
    show(totals)
    check_events(home, totals)
    runs = scheduled_runs(home, since_ms)
    print(f"# scheduler: pipeline runs during the load: {', '.join(runs) or 'none'}")
    print(
        "# RSS after the load (MB, current/peak): "
        + ", ".join(f"{kind} {now:.0f}/{peak:.0f}" for kind, (now, peak) in rss.items())
    )
    for c in CONCURRENCY:
        ours, ref = totals["ours", c], totals["reference", c]
        report_at_least(f"inference_rps_c{c}", ours.rps, "req/s", TARGET_RATIO, ref.rps)
    ours, ref = totals["ours", 8], totals["reference", 8]
    p99 = ours.percentile_ms(99)
    report("inference_p99_c8", p99, "ms", TARGET_P99_MS, reference=ref.percentile_ms(99))
    errors = sum(totals["ours", c].errors for c in CONCURRENCY)
    ref_errors = sum(totals["reference", c].errors for c in CONCURRENCY)
    report("inference_non_2xx", errors, "responses", 0, reference=ref_errors)
    report("server_rss", rss["ours"][0], "MB", TARGET_RSS_MB, reference=rss["reference"][0])


def cold_starts(tmp: Path, home: Path) -> None:
    from _harness import report

    for label, target, where in (
        ("existing_home", TARGET_COLD_EXISTING_S, home),
        ("fresh_home", TARGET_COLD_FRESH_S, tmp / "fresh"),
    ):
        outcome = cold_start(where, tmp, label)
        if isinstance(outcome, str):
            reason = outcome.replace("\n", "\n#   ")
            print(f"# cold_start_{label}: not measured: {reason}")
            continue
        seconds, stopped = outcome
        print(f"# cold_start_{label}: `litemlops run` from its start to /ready 200; {stopped}")
        report(f"cold_start_{label}", seconds, "s", target)


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    from _harness import setup

    # Stopped by SIGTERM (a CI timeout), unwind as for Ctrl-C: the servers stop too.
    signal.signal(signal.SIGTERM, _unwind)

    _, size = setup(
        "serving: /inference over HTTP / a hand-written endpoint (dict + predict_proba)",
        SIZES,
        describe,
    )
    with tempfile.TemporaryDirectory(prefix="litemlops-serving-") as name:
        tmp = Path(name)
        home = tmp / "home"
        started = time.perf_counter()
        prepare(home)
        print(f"# demo bootstrapped in {time.perf_counter() - started:.1f} s")
        measure(tmp, home, size)
        cold_starts(tmp, home)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_serve"]:
        serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1:2] == ["_load"]:
        load_client()
    else:
        main()
