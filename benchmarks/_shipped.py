"""The shipped command, `python -m litemlops run`, started on homes made for a benchmark.

A benchmark of something users start drives what they start: a copy of its
set-up once hid a 20x slowdown. So the server here is `python -m litemlops run
--home H --port 0`, schedules and all, found at the URL it writes to
`H/server.json`; a home is bootstrapped once (`run --once`) and copied for each
start. The event log is read here with plain JSON parsing, not the project's
reader, so a benchmark checks the product rather than itself.

Standard library only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"
DRIVERS = [1001, 1002, 1003, 1004, 1005]
READY_TIMEOUT = 120.0


class NotReady(RuntimeError):
    pass


def clean_env() -> dict[str, str]:
    """This environment without LITEMLOPS_* settings: the home's defaults are measured."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")}


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def bootstrap(home: Path, log: Path) -> float:
    """`run --once` on a new home: the demo set up, nothing served. Seconds it took."""
    command = [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--once"]
    started = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env=clean_env()
        ).returncode
    if code != 0:
        raise RuntimeError(f"`litemlops run --once` exited with {code}:\n{tail(log)}")
    return time.perf_counter() - started


def copy_home(template: Path, home: Path) -> Path:
    """A copy of a home that is not being served (the copy owns its own state)."""
    shutil.copytree(template, home, symlinks=True)
    (home / "server.json").unlink(missing_ok=True)
    return home


@dataclass
class Served:
    """A running `python -m litemlops run` (the leader of a process group of its own)."""

    home: Path
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    pid: int = 0
    ready_seconds: float = 0.0  # from its start to /ready 200

    @classmethod
    def start(cls, home: Path, log: Path, timeout: float = READY_TIMEOUT) -> Served:
        """Start `run --port 0` on `home`, wait for its URL and for /ready to answer 200."""
        command = [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--port", "0"]
        (home / "server.json").unlink(missing_ok=True)
        with log.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                cwd=home.parent,
                start_new_session=True,  # kill -9 of its group leaves nothing behind
            )
        served = cls(home, process, log)
        try:
            served._wait_ready(started + timeout)
        except BaseException:
            served.kill()
            raise
        served.ready_seconds = time.perf_counter() - started
        return served

    def _wait_ready(self, deadline: float) -> None:
        address = self.home / "server.json"
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise NotReady(f"`run` exited with {self.process.returncode}:\n{tail(self.log)}")
            if not self.url:
                try:
                    found = json.loads(address.read_text())
                    self.url, self.pid = found["url"], int(found["pid"])
                except (OSError, ValueError, KeyError):  # not written yet, or half
                    time.sleep(0.02)
                    continue
            try:
                if self.call("GET", "/ready", timeout=2.0)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        raise NotReady(f"`run` was not ready in time:\n{tail(self.log)}")

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        admin: bool = False,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body) of one request on a connection of its own."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        headers = {"content-type": "application/json"}
        if admin:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def trigger(self, pipeline: str, wait: float = 0.0) -> dict[str, Any]:
        """Trigger a pipeline run through the admin API; its answer, given once the run
        ended when `wait` > 0 (or that many seconds passed): its `run_id` (None if not
        yet known) and `state`."""
        status, answer = self.call(
            "POST", f"/api/pipelines/{pipeline}/trigger", {"wait": wait} if wait else {},
            admin=True, timeout=30.0 + wait,
        )  # fmt: skip
        if status != 202:
            raise RuntimeError(f"triggering {pipeline} answered {status}: {answer}")
        return dict(answer)

    def runs(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Pipeline runs the home recorded, newest first."""
        status, answer = self.call("GET", f"/api/pipelines/runs?limit={limit}")
        if status != 200:
            raise RuntimeError(f"listing pipeline runs answered {status}: {answer}")
        return list(answer)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL of the group if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9 of `run` and every process of its group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def run_interval(run: dict[str, Any]) -> tuple[float, float] | None:
    """(started, ended) of a pipeline run in epoch seconds; ended is now while it runs."""
    if not run.get("started_at"):
        return None
    started = dt.datetime.fromisoformat(run["started_at"]).timestamp()
    ended = (
        dt.datetime.fromisoformat(run["ended_at"]).timestamp()
        if run.get("ended_at")
        else time.time()
    )
    return started, ended


# -- the event log, read plainly --------------------------------------------------------------


@dataclass
class LogRead:
    lines: int = 0
    torn: int = 0  # lines that are not a whole JSON object (a write cut short)


def event_files(logs: Path) -> list[Path]:
    """The JSON event files in `logs`, oldest first: rotated ones (`events-<UTC time>-<pid>
    .jsonl`, or `events.jsonl.N` of older versions), then the live `events.jsonl`."""

    def age(path: Path) -> tuple[int, int, str]:
        if path.name.startswith("events-"):
            return (1, 0, path.name)  # the name starts with its rotation time
        suffix = path.name.removeprefix("events.jsonl").lstrip(".")
        return (0, -int(suffix), "") if suffix.isdigit() else (2, 0, "")

    found = [*logs.glob("events.jsonl*"), *logs.glob("events-*.jsonl")]
    return sorted(found, key=age)


def events(home: Path, read: LogRead | None = None) -> Iterator[dict[str, Any]]:
    """Every JSON event in the home's event files (`event_files`), oldest file first."""
    read = read if read is not None else LogRead()
    for path in event_files(home / "logs"):
        with path.open("rb") as lines:
            for line in lines:
                read.lines += 1
                try:
                    event = json.loads(line)
                except ValueError:
                    read.torn += 1
                    continue
                if isinstance(event, dict):
                    yield event
                else:
                    read.torn += 1


def history_request_ids(logs: Path) -> set[str]:
    """Request ids of predictions in any Parquet file under the logs (a compacted history)."""
    files = sorted(logs.rglob("*.parquet"))
    if not files:
        return set()
    import pyarrow.parquet as pq

    found: set[str] = set()
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as exc:  # a file being written, or not Parquet after all
            print(f"# could not read {path.relative_to(logs)}: {exc}")
            continue
        if "request_id" not in table.column_names:
            continue
        ids = table.column("request_id").to_pylist()
        if "event" in table.column_names:
            kinds = table.column("event").to_pylist()
            ids = [i for i, k in zip(ids, kinds, strict=True) if k == "prediction_served"]
        found.update(i for i in ids if isinstance(i, str))
    return found
