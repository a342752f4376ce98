"""The dashboard through the shipped command: each page's first render on a home with history,
and serving's req/s with a dashboard tab refreshing against without one.

The home is bootstrapped (`run --once`, a second version of its model registered),
then given what a home that has served a while holds: N `prediction_served` events
shaped as `/inference` writes them (five drivers each, spread over the last week)
in event files rotated every 10 MB, compacted into the history (`litemlops monitor
compact`) but for the live file's last part; R tracking runs with params and
stepped metrics (the library's `Tracker` on the home's registry, nothing serving
it); and a monitoring check (`litemlops pipelines run monitoring`).

Then `python -m litemlops run --home H --port 0` serves it, as users start it:

- first render: every page under `/ui` (and `/docs`) fetched once right after the
  server is ready, then a few times more (warm), ids from the API. The time is the
  client's on loopback (httpx, to the whole body) and, beside it, the server's own
  (the `litemlops_request_latency_seconds` histogram's sum at `/metrics`, per route);
  target: 300 ms each, no reference;
- a dashboard open: ours at c=8 `/inference` load from another process, with a tab
  fetching the overview and the monitoring page every 2 s (the pages' own refresh is
  5 and 10 s) against without, in rounds rotating which goes first; the ratio is the
  median of each round's with / without req/s (target >= 0.97).

Run: `.venv/bin/python benchmarks/dashboard.py --size M`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _load import LoadProcess
from _shipped import DRIVERS, HOST, Served, bootstrap, clean_env, copy_home, run_interval, tail
from serving import Totals, litemlops_cli, register_challenger, report_paired

MODEL = "driver_ranker"
TARGET_RENDER_MS = 300.0
TARGET_OPEN_RATIO = 0.97
REFRESH_SECONDS = 2.0
REFRESHED = ("/ui", "/ui/monitoring")  # what the open tab fetches every REFRESH_SECONDS
FILE_BYTES = 10_000_000  # logging.max_bytes' default: the size event files rotate at
SPAN = timedelta(days=7)  # the written events' times, ending just before the bootstrap
KINDS = ("without", "with")

# (line name, the route's path as `/metrics` labels it, the path fetched with its ids)
PAGES = (
    ("overview", "/ui", "/ui"),
    ("models", "/ui/models", "/ui/models"),
    ("model", "/ui/models/{name}", "/ui/models/{model}"),
    ("compare", "/ui/models/{name}/compare", "/ui/models/{model}/compare?left=1&right={right}"),
    ("experiments", "/ui/experiments", "/ui/experiments"),
    ("metric_charts", "/ui/experiments/charts", "/ui/experiments/charts?run={run}"),
    ("pipelines", "/ui/pipelines", "/ui/pipelines"),
    ("pipeline_run", "/ui/pipelines/runs/{run_id}", "/ui/pipelines/runs/{pipeline_run}"),
    ("features", "/ui/features", "/ui/features"),
    ("monitoring", "/ui/monitoring", "/ui/monitoring"),
    ("monitoring_report", "/ui/monitoring/report.html", "/ui/monitoring/report.html"),
    ("lineage", "/ui/lineage", "/ui/lineage?request_id={request_id}"),
    ("docs", "/docs", "/docs"),
)
SUM = re.compile(r'^litemlops_request_latency_seconds_sum\{[^}]*endpoint="([^"]*)"[^}]*\} (\S+)$',
                 re.MULTILINE)  # fmt: skip


@dataclass(frozen=True)
class Size:
    events: int  # prediction_served events written before serving
    runs: int  # tracking runs added
    steps: int  # steps of each run's three metrics
    warm: int  # renders of each page after its first
    seconds: float  # timed /inference load per window (with, without) and round
    rounds: int
    warmup: float  # untimed load before each window


SIZES = {
    "XS": Size(events=15_000, runs=5, steps=3, warm=1, seconds=0.3, rounds=1, warmup=0.1),
    "S": Size(events=50_000, runs=100, steps=10, warm=3, seconds=4.0, rounds=3, warmup=0.5),
    "M": Size(events=1_000_000, runs=1_000, steps=10, warm=5, seconds=10.0, rounds=6,
              warmup=1.0),
}  # fmt: skip


# -- the home ---------------------------------------------------------------------------------


def write_events(home: Path, count: int, end: datetime) -> int:
    """`count` `/inference` events ending at `end`, in files rotated at FILE_BYTES (named
    as rotation names them, settled an hour ago), the last part before the live file's
    own lines. Files written."""
    import orjson

    from litemlops.logfile import rotated_name

    live = home / "logs" / "events.jsonl"
    kept = live.read_bytes() if live.exists() else b""
    rows = online_rows(home)
    step = SPAN / max(count, 1)
    start = end - step * count
    files, out = 0, bytearray()
    for i in range(count):
        # the scores vary a little, so no two answers are alike
        scores = [round(0.5 + 0.1 * k + 0.001 * (i % 97), 6) for k in range(len(DRIVERS))]
        last = start + step * (i + 1)
        line = orjson.dumps({
            "request_id": f"bench-{i}", "service": "inference", "model": MODEL, "version": 1,
            "entities": DRIVERS, "features": rows, "scores": scores, "output": DRIVERS[-1],
            "latency_ms": 0.9, "event": "prediction_served", "level": "info",
            "timestamp": last.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "logger": "litemlops.serving",
        }) + b"\n"  # fmt: skip
        if len(out) + len(line) > FILE_BYTES:
            _rotated(rotated_name(live, last, 1), out)
            files += 1
            out = bytearray()
        out += line
    live.write_bytes(bytes(out) + kept)
    return files


def online_rows(home: Path) -> list[dict[str, Any]]:
    """The drivers' features as the server reads them for `/inference` (the online store),
    so the written events are what serving those drivers logs."""
    import sqlite3

    from litemlops.config import Config

    path = Config.load(home, env={}).online_path
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    query = "SELECT driver_id, conv_rate, acc_rate, avg_daily_trips FROM online_driver_stats"
    found = {r[0]: {"conv_rate": r[1], "acc_rate": r[2], "avg_daily_trips": r[3]}
             for r in con.execute(query)}  # fmt: skip
    con.close()
    return [found[d] for d in DRIVERS]


def _rotated(path: Path, data: bytearray) -> None:
    path.write_bytes(data)
    settled = time.time() - 3600  # compaction takes files left alone for a while
    os.utime(path, (settled, settled))


def add_runs(home: Path, size: Size) -> None:
    """Tracking runs with five params and three metrics logged at each step, through the
    library's Tracker on the home's registry (nothing serves the home meanwhile)."""
    from litemlops.config import Config
    from litemlops.store.tracking.tracker import Tracker

    config = Config.load(home, env={})
    with Tracker(config.registry_path, artifacts=config.artifacts_dir, code_dir=home) as tracker:
        for r in range(size.runs):
            with tracker.start_run("sweep", f"sweep-{r}") as run:
                run.log_params(
                    {
                        "C": 0.1 * (r % 10 + 1),
                        "penalty": "l2",
                        "max_iter": 100 + r,
                        "seed": r,
                        "features": "conv_rate,acc_rate,avg_daily_trips",
                    }
                )
                for s in range(size.steps):
                    decay = 1.0 / (1 + s + r % 7)
                    run.log_metrics({"loss": decay, "auc": 1 - decay / 2, "rmse": decay / 3},
                                    step=s)  # fmt: skip


@dataclass
class Built:
    home: Path
    seconds: dict[str, float] = field(default_factory=dict)
    files: int = 0


def build(tmp: Path, size: Size, given: Path | None) -> Built:
    """The home to serve (`given`, a bootstrapped home, copied; else bootstrapped here),
    each step timed."""
    built = Built(tmp / "template")
    steps = built.seconds
    began = datetime.now(UTC)
    if given is not None:
        copy_home(given, built.home)
    else:
        steps["bootstrap (run --once)"] = bootstrap(built.home, tmp / "bootstrap.log")
    t = time.perf_counter()
    register_challenger(built.home)
    steps["a second model version"] = time.perf_counter() - t
    t = time.perf_counter()
    built.files = write_events(built.home, size.events, began - timedelta(seconds=1))
    steps[f"{size.events:,} events written"] = time.perf_counter() - t
    t = time.perf_counter()
    litemlops_cli(built.home, "monitor", "compact")
    steps[f"{built.files} files compacted (monitor compact)"] = time.perf_counter() - t
    t = time.perf_counter()
    add_runs(built.home, size)
    steps[f"{size.runs:,} runs x {size.steps} steps tracked"] = time.perf_counter() - t
    t = time.perf_counter()
    litemlops_cli(built.home, "pipelines", "run", "monitoring")
    steps["a monitoring check (pipelines run monitoring)"] = time.perf_counter() - t
    return built


# -- first render -----------------------------------------------------------------------------


def server_sums(client: Any) -> dict[str, float]:
    """Seconds the server spent answering each route so far, by its `/metrics`."""
    found: dict[str, float] = defaultdict(float)
    for endpoint, value in SUM.findall(client.get("/metrics").text):
        found[endpoint] += float(value)
    return found


def ids(ours: Served, events: int) -> dict[str, Any]:
    """Real ids for the pages that need one."""
    status, runs = ours.call("GET", "/api/runs?experiment=sweep&limit=1")
    if status != 200:
        raise RuntimeError(f"/api/runs answered {status}: {runs}")
    status, models = ours.call("GET", "/api/models")
    model = next(m for m in models if m["name"] == MODEL)
    return {
        "model": MODEL,
        "right": model["latest_version"],
        "run": runs["runs"][0]["run_id"],
        "pipeline_run": ours.runs(1)[0]["run_id"],
        "request_id": f"bench-{events // 2}",  # in the history: half the events are older
    }


@dataclass
class Render:
    first_ms: float = 0.0
    first_server_ms: float = 0.0
    warm_ms: list[float] = field(default_factory=list)
    warm_server_ms: list[float] = field(default_factory=list)
    bytes: int = 0


def renders(ours: Served, found: dict[str, Any], warm: int) -> dict[str, Render]:
    """Each page once (its first render since the server started), then `warm` times."""
    import httpx

    out = {name: Render() for name, _, _ in PAGES}
    with httpx.Client(base_url=ours.url, headers={"accept": "text/html"}, timeout=120) as client:
        for attempt in range(1 + warm):
            for name, route, path in PAGES:
                before = server_sums(client)
                t = time.perf_counter()
                answer = client.get(path.format(**found))
                took = (time.perf_counter() - t) * 1e3
                if answer.status_code != 200:
                    raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:500]}")
                server = (server_sums(client)[route] - before.get(route, 0.0)) * 1e3
                render = out[name]
                render.bytes = len(answer.content)
                if attempt == 0:
                    render.first_ms, render.first_server_ms = took, server
                else:
                    render.warm_ms.append(took)
                    render.warm_server_ms.append(server)
    return out


# -- a dashboard open while serving -----------------------------------------------------------


class Tab(threading.Thread):
    """An open dashboard tab: REFRESHED fetched every REFRESH_SECONDS from its start, on
    one keep-alive connection, as the page's script fetches itself."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.done = threading.Event()
        self.latencies: list[float] = []  # ms
        self.errors = 0

    def run(self) -> None:
        import httpx

        start = time.perf_counter()
        with httpx.Client(base_url=self.url, headers={"accept": "text/html"}, timeout=60) as c:
            ticks = 0
            while not self.done.is_set():
                for path in REFRESHED:
                    t = time.perf_counter()
                    try:
                        ok = c.get(path).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    self.latencies.append((time.perf_counter() - t) * 1e3)
                    self.errors += not ok
                ticks += 1
                self.done.wait(max(0.0, start + ticks * REFRESH_SECONDS - time.perf_counter()))

    def finish(self) -> None:
        self.done.set()
        self.join()


@dataclass
class Open:
    totals: dict[str, Totals]
    rounds: list[dict[str, float]] = field(default_factory=list)  # req/s of each kind
    tab_ms: list[float] = field(default_factory=list)
    tab_errors: int = 0
    redone: int = 0
    overlapped: list[str] = field(default_factory=list)

    def paired(self) -> list[float]:
        return [r["with"] / r["without"] for r in self.rounds if r["without"]]


def with_tab(load: LoadProcess, ours: Served, size: Size) -> Open:
    """Ours at c=8 with a tab open and without, in rounds alternating which goes first. A
    round some pipeline run overlapped (the scheduler's monitoring check every minute)
    is measured again, up to as many times as there are rounds."""
    found = Open({kind: Totals() for kind in KINDS})
    r = 0
    while r < size.rounds:
        began = time.time()
        results: dict[str, dict[str, Any]] = {}
        tabs: list[Tab] = []
        for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
            tab = Tab(ours.url) if kind == "with" else None
            if tab is not None:
                tab.start()
                tabs.append(tab)
            try:
                results[kind] = load.run(
                    "closed_loop", host=HOST, port=ours.port, ids=DRIVERS, concurrency=8,
                    warmup=size.warmup, seconds=size.seconds, server_pid=ours.pid,
                    tag=f"dashboard-{kind}-{r}-{found.redone}",
                )  # fmt: skip
            finally:
                if tab is not None:
                    tab.finish()
        ended = time.time()
        overlapped = sorted(
            run["pipeline"]
            for run in ours.runs(20)
            if (span := run_interval(run)) is not None and span[1] > began and span[0] < ended
        )
        if overlapped and found.redone < size.rounds:
            found.redone += 1
            found.overlapped += overlapped
            continue
        for kind, result in results.items():
            found.totals[kind].add(result)
        found.rounds.append({k: got["requests"] / got["seconds"] for k, got in results.items()})
        for tab in tabs:
            found.tab_ms += tab.latencies
            found.tab_errors += tab.errors
        r += 1
    return found


# -- the report -------------------------------------------------------------------------------


def show_build(built: Built) -> None:
    total = sum(built.seconds.values())
    print(f"# building the home took {total:.1f} s: " + "; ".join(
        f"{what} {seconds:.1f} s" for what, seconds in built.seconds.items()))  # fmt: skip
    history = built.home / "logs" / "history"
    on_disk = sum(p.stat().st_size for p in history.rglob("*") if p.is_file())
    live = (built.home / "logs" / "events.jsonl").stat().st_size
    print(f"# history {on_disk / 1e6:.1f} MB, live events.jsonl {live / 1e6:.1f} MB")


def show_renders(found: dict[str, Render]) -> None:
    print("# page                first ms  (server)   warm p50 ms  (server)      KB")
    for name, r in found.items():
        warm = statistics.median(r.warm_ms) if r.warm_ms else float("nan")
        warm_server = statistics.median(r.warm_server_ms) if r.warm_server_ms else float("nan")
        print(f"# {name:18s} {r.first_ms:9.1f} {r.first_server_ms:9.1f} {warm:13.1f} "
              f"{warm_server:9.1f} {r.bytes / 1e3:7.0f}")  # fmt: skip


def show_open(found: Open) -> None:
    print(f"# ours at c=8 without / with a tab fetching {', '.join(REFRESHED)} every "
          f"{REFRESH_SECONDS:g} s; rounds measured again because a pipeline run overlapped "
          f"them: {found.redone}" + (f" ({', '.join(found.overlapped)})" if found.overlapped
                                     else ""))  # fmt: skip
    for kind, t in found.totals.items():
        print(f"#   {kind:8s} {t.rps:7.0f} req/s  p50 {t.percentile_ms(50):.2f} ms  p99 "
              f"{t.percentile_ms(99):.2f} ms  server CPU {t.cpu_per_request_ms:.3f} ms/req "
              f"({t.server_cpu / t.seconds:.0%} of a core), client CPU "
              f"{t.client_cpu / t.seconds:.0%}, non-2xx {t.errors}")  # fmt: skip
    tab = found.tab_ms
    if tab:
        print(f"# the tab's fetches: {len(tab)}, p50 {statistics.median(tab):.0f} ms, max "
              f"{max(tab):.0f} ms, {found.tab_errors} failed")  # fmt: skip
    paired = found.paired()
    print(
        "# with / without req/s within each round: "
        + ", ".join(f"{x:.2f}" for x in paired)
        + (
            f" (median {statistics.median(paired):.2f}); pooled over the rounds "
            f"{found.totals['with'].rps / found.totals['without'].rps:.2f}"
            if paired
            else ""
        )
    )
    print(f"# load average after the load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def measure(tmp: Path, size: Size, given: Path | None) -> None:
    from _harness import report

    built = build(tmp, size, given)
    show_build(built)
    sys.stdout.flush()
    with contextlib.ExitStack() as stack:
        home = copy_home(built.home, tmp / "ours")
        ours = Served.start(home, tmp / "ours.log")
        stack.callback(ours.stop)
        print(f"# `run --port 0` ready in {ours.ready_seconds:.1f} s on that home")
        since = time.time()
        found = renders(ours, ids(ours, size.events), size.warm)
        during = [r["pipeline"] for r in ours.runs(20)
                  if (span := run_interval(r)) is not None and span[1] > since]  # fmt: skip
        print(f"# pipeline runs during the renders: {', '.join(during) or 'none'}")
        load = LoadProcess(tmp / "client.log", clean_env())
        stack.callback(load.close)
        opened = with_tab(load, ours, size)
        code = ours.stop()
    if code != 0:
        print(f"# ours exited with {code} on SIGTERM:\n{tail(ours.log)}")
    show_renders(found)
    show_open(opened)
    for name, r in found.items():
        report(f"dashboard_first_render_{name}", r.first_ms, "ms", TARGET_RENDER_MS)
    report_paired("dashboard_open_serving_rps_c8", opened.totals["with"].rps,
                  opened.totals["without"].rps, "req/s", opened.paired(), TARGET_OPEN_RATIO,
                  at_least=True)  # fmt: skip


def describe(label: str, size: Size) -> str:
    return (
        f"# size {label}: {size.events:,} prediction_served events (5 drivers each) over "
        f"{SPAN.days} days, {size.runs:,} tracking runs x {size.steps} steps of 3 metrics; "
        f"{len(PAGES)} pages rendered once then {size.warm} times; {size.rounds} round(s) of "
        f"{size.seconds:g} s at c=8 with and without a tab\n"
        f"# python {platform.python_version()} | ours: `python -m litemlops run --port 0`, as "
        f"shipped | load from a second process | {os.cpu_count()} cores shared"
    )


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
        help="XS: the test suite's deep run's; S: a quick check; M: the issue's (default S)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="a home `run --once` bootstrapped, copied instead of bootstrapping one",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    signal.signal(signal.SIGTERM, _unwind)  # a CI timeout unwinds: the server stops too
    size = SIZES[args.size]
    print("# dashboard: first render of each page; /inference req/s with a tab open / without")
    print(describe(args.size, size))
    sys.stdout.flush()
    with tempfile.TemporaryDirectory(prefix="litemlops-dashboard-") as name:
        measure(Path(name), size, args.home)


if __name__ == "__main__":
    main()
