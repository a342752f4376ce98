"""Soak: the shipped `run` at a fixed request rate for minutes: memory, history, disk.

`python -m litemlops run --port 0` on a copy of a bootstrapped home, schedules
as shipped, takes `/inference` at a fixed rate (the load does not wait for
answers, so a server falling behind shows in the latency). Every 10 s the
serving process's RSS is read (its descendants' apart). At the end, after a
graceful stop: is every answered request's `prediction_served` event still in
the history (the JSONL files and any Parquet file under `H/logs`, read here
plainly), and how many bytes does the history take on disk per prediction?
Run: `.venv/bin/python benchmarks/soak.py` (600 s at 500 req/s; `--seconds 5` checks it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _harness import report
from _load import LoadProcess
from _proc import TreeCPU, tree_rss
from _shipped import (
    DRIVERS,
    HOST,
    LogRead,
    Served,
    bootstrap,
    clean_env,
    copy_home,
    event_files,
    events,
    history_request_ids,
    tail,
)

TARGET_RSS_RATIO = 1.1  # last minute's RSS / first minute's: flat, within 10%
TARGET_P99_MS = 10.0
TAG = "soak"


def history_ids(home: Path) -> tuple[set[str], float, LogRead, dict[str, int]]:
    """(request ids of prediction_served events in the history, the mean size of their
    JSONL lines, what the JSONL read met, bytes on disk by kind of file)."""
    read = LogRead()
    found: set[str] = set()
    for event in events(home, read):
        if event.get("event") == "prediction_served" and isinstance(event.get("request_id"), str):
            found.add(event["request_id"])
    lines = size = 0
    jsonl = event_files(home / "logs")
    for path in jsonl:
        with path.open("rb") as file:
            for line in file:
                if b'"prediction_served"' in line:
                    lines, size = lines + 1, size + len(line)
    per_line = size / lines if lines else float("nan")
    sizes: dict[str, int] = {}
    for path in (home / "logs").rglob("*"):
        if path.is_file():
            kind = (
                "parquet"
                if path.suffix == ".parquet"
                else ("jsonl" if path in jsonl else "other")
            )
            sizes[kind] = sizes.get(kind, 0) + path.stat().st_size
    found |= history_request_ids(home / "logs")
    return found, per_line, read, sizes


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="req/s (default 500)")
    parser.add_argument("--seconds", type=float, default=600.0, help="of load (default 600)")
    parser.add_argument(
        "--home", type=Path, help="a home `run --once` bootstrapped, copied instead of making one"
    )
    args = parser.parse_args()
    interval = min(10.0, args.seconds / 10)  # RSS samples
    window = min(60.0, args.seconds / 4)  # the "first minute" and the "last minute"
    print("# soak: `litemlops run` at a fixed rate of /inference: RSS, event history, disk")
    print(
        f"# {args.rate:g} req/s for {args.seconds:g} s, RSS every {interval:g} s, first and last "
        f"{window:g} s compared | {os.cpu_count()} cores shared by the load and the server"
    )
    sys.stdout.flush()
    with tempfile.TemporaryDirectory(prefix="litemlops-soak-") as name:
        tmp = Path(name)
        template = args.home
        if template is None:
            template = tmp / "template"
            print(f"# bootstrapped a home in {bootstrap(template, tmp / 'bootstrap.log'):.1f} s")
        served = Served.start(copy_home(template, tmp / "home"), tmp / "run.log")
        load = LoadProcess(tmp / "client.log", clean_env())
        try:
            samples: list[tuple[float, float, float]] = []  # (seconds in, own MB, children MB)
            before = TreeCPU.read(served.pid)
            load.send(
                "open_loop",
                host=HOST,
                port=served.port,
                ids=DRIVERS,
                rate=args.rate,
                seconds=args.seconds,
                tag=TAG,
            )
            start = time.perf_counter()
            while not load.ready(max(0.0, start + len(samples) * interval - time.perf_counter())):
                samples.append((time.perf_counter() - start, *tree_rss(served.pid)[:2]))
            result = load.result()
            after = TreeCPU.read(served.pid)
            runs = served.runs()
        finally:
            load.close()
            code = served.stop()
        if code != 0:
            print(f"# `run` exited with {code} on SIGTERM:\n{tail(served.log)}")
        found, per_line, read, sizes = history_ids(served.home)
    failed = set(result["failed"])
    answered = {f"{TAG}-{i}" for i in range(result["requests"]) if i not in failed}
    lost = len(answered - found)
    logs_bytes = sum(sizes.values())
    first = [own for t, own, _ in samples if t <= window]
    last = [own for t, own, _ in samples if t >= result["seconds"] - window]
    q = result["quantiles_ms"] or [float("nan")] * 1000
    why = ", ".join(f"{n:,} {k}" for k, n in sorted(result["failed_by"].items()))
    print("# RSS (MB) every sample: " + " ".join(f"{own:.0f}" for _, own, _ in samples))
    if any(children for _, _, children in samples):
        print("# descendants' RSS (MB): " + " ".join(f"{c:.0f}" for _, _, c in samples))
    sent = result["requests"] - result["skipped"]
    print(
        f"# {result['requests']:,} requests due in {result['seconds']:.1f} s, "
        f"{result['skipped']:,} of them not sent (256 were in flight), {len(failed):,} not "
        f"answered 200{f' ({why})' if why else ''}; latency from when due: "
        f"p50 {q[500]:.2f} ms, p99 {q[990]:.2f} ms, max {q[-1]:.2f} ms; server CPU "
        f"{(after.own - before.own) / max(sent, 1) * 1e3:.3f} ms a request sent "
        f"({(after.own - before.own) / result['seconds']:.0%} of a core), descendants "
        f"{after.children_since(before):.1f} s in all; client CPU "
        f"{result['client_cpu'] / result['seconds']:.0%} of a core"
    )
    scheduled = Counter(
        f"{r['pipeline']} ({r['trigger']})" for r in runs if r["trigger"] != "bootstrap"
    )
    shown = ", ".join(f"{n} {name}" for name, n in sorted(scheduled.items()))
    print(f"# pipeline runs meanwhile: {shown or 'none'}")
    kept = len(found & answered)
    print(
        f"# history: {kept:,} of {len(answered):,} answered predictions found "
        f"({read.lines:,} JSONL lines, {read.torn} torn); under logs/: "
        + ", ".join(f"{kind} {size / 1e6:.1f} MB" for kind, size in sorted(sizes.items()))
        + f"; {logs_bytes / max(kept, 1):.0f} B per prediction kept"
    )
    report(
        "soak_rss_last_vs_first",
        mean(last),
        "MB",
        TARGET_RSS_RATIO,
        reference=mean(first),
        on_ratio=True,
    )
    report("soak_predictions_lost_from_history", lost, "events", 0, reference=0)
    report(
        "soak_history_bytes_per_prediction",
        logs_bytes / max(len(answered), 1),
        "B",
        1.0,
        reference=per_line,
        on_ratio=True,
    )
    report("soak_p99", q[990], "ms", TARGET_P99_MS)
    report("soak_not_answered", len(failed), "requests", 0, reference=0)


if __name__ == "__main__":
    main()
