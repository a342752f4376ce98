"""A load generator in plain Python: keep-alive HTTP/1.1 connections on one selector.

Non-blocking sockets, one write a request, a minimal response parser (status
line, Content-Length): about 0.1 ms of CPU a request, a fifth of what httpx
needs and half of what an asyncio protocol does, so one core of load keeps
well over twice the requests in flight that the fastest server here answers
(the benchmarks print the client's CPU share, and say so when it, not the
server, limited the rate). Standard library only, so the load process
starts fast and stays small.

`LoadProcess` runs the load in a process of its own and hands it jobs (a JSON
object a line): `closed_loop`, `keepalive_probe` and `open_loop`.
"""

from __future__ import annotations

import contextlib
import json
import select
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _proc import TreeCPU

QUANTILES = 1000  # latency quantiles a result reports; rounds are pooled from them
LOAD_SCRIPT = Path(__file__).resolve()


def post(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """A whole POST request with a JSON body."""
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", "content-type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class InferenceRequests:
    """Whole `/inference` requests for `ids`, with only the request id left to format."""

    def __init__(self, host: str, port: int, ids: list[int]):
        self.head = post(host, port, "/inference", b"")[: -len(b"0\r\n\r\n")]
        self.ids = f'","driver_ids":{json.dumps(ids)}}}'.encode()

    def __call__(self, request_id: str) -> bytes:
        body = b'{"request_id":"' + request_id.encode() + self.ids
        return self.head + str(len(body)).encode() + b"\r\n\r\n" + body


class Conn:
    """One keep-alive connection with at most one request in flight."""

    __slots__ = ("buffer", "closed", "key", "sent", "sock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.sent = 0.0  # perf_counter when the request in flight was sent
        self.key: Any = None  # the caller's name for the request in flight
        self.closed = False


class Pool:
    """Connections to one server, and the responses that completed on them.

    poll() returns (conn, status, body, latency in s) for each completed
    request; status is None when the connection closed or broke first.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.selector = selectors.DefaultSelector()
        self.busy = 0  # requests sent and not yet returned by poll()
        self._failed: list[tuple[Conn, int | None, bytes, float]] = []

    def open(self) -> Conn:
        sock = socket.create_connection((self.host, self.port), timeout=10.0)
        # The client never delays a request; a delay would be the server's.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn = Conn(sock)
        self.selector.register(sock, selectors.EVENT_READ, conn)
        return conn

    def send(self, conn: Conn, raw: bytes, key: Any = None) -> None:
        conn.key, conn.sent = key, time.perf_counter()
        self.busy += 1
        try:
            conn.sock.sendall(raw)  # a request fits the empty socket buffer at once
        except OSError:
            self._close(conn)
            self._failed.append((conn, None, b"", 0.0))

    def poll(self, timeout: float | None) -> list[tuple[Conn, int | None, bytes, float]]:
        done: list[tuple[Conn, int | None, bytes, float]] = []
        if self._failed:
            done, self._failed = self._failed, []
            self.busy -= len(done)
            return done
        if not self.selector.get_map():
            if timeout:
                time.sleep(timeout)
            return done
        for key, _ in self.selector.select(timeout):
            conn: Conn = key.data
            try:
                data = conn.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                self._close(conn)
                if conn.sent:
                    self.busy -= 1
                    done.append((conn, None, b"", time.perf_counter() - conn.sent))
                    conn.sent = 0.0
                continue
            conn.buffer += data
            parsed = self._response(conn)
            if parsed is not None:
                self.busy -= 1
                latency = time.perf_counter() - conn.sent
                conn.sent = 0.0
                done.append((conn, parsed[0], parsed[1], latency))
        return done

    @staticmethod
    def _response(conn: Conn) -> tuple[int, bytes] | None:
        buffer = conn.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"a response without content-length: {head[:200]!r}")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else len(head)])
        if len(buffer) < end + 4 + length:
            return None
        body = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        return int(head[9:12]), body

    def _close(self, conn: Conn) -> None:
        if not conn.closed:
            conn.closed = True
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn.sock)
            conn.sock.close()

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self._close(key.data)
        self.selector.close()


def quantiles(latencies: list[float]) -> list[float]:
    """QUANTILES evenly spaced latency quantiles in ms (empty without latencies)."""
    if not latencies:
        return []
    ordered = sorted(latencies)
    return [ordered[int((i + 0.5) * len(ordered) / QUANTILES)] * 1e3 for i in range(QUANTILES)]


# -- the jobs ---------------------------------------------------------------------------------


def closed_loop(
    host: str,
    port: int,
    ids: list[int],
    concurrency: int,
    warmup: float,
    seconds: float,
    server_pid: int,
    tag: str,
    samples: bool = False,
) -> dict[str, Any]:
    """`concurrency` clients sending `/inference` back to back: untimed, then timed.

    samples: also return every timed request's (wall-clock start, latency in s),
    to split them by what the server was doing meanwhile.
    """
    build = InferenceRequests(host, port, ids)
    pool = Pool(host, port)
    latencies: list[float] = []
    started: list[float] = []
    counts = {"errors": 0, "answered": 0, "sent": 0}

    def phase(until: float, timed: bool) -> None:
        def send(conn: Conn | None) -> None:
            if conn is None or conn.closed:
                conn = pool.open()
            counts["sent"] += 1
            wall = time.time() if samples else 0.0
            pool.send(conn, build(f"{tag}-{counts['sent']}-{timed:d}"), wall)

        for conn in connections:
            send(conn)
        connections.clear()
        while pool.busy:
            for conn, status, _, latency in pool.poll(1.0):
                ok = status is not None and 200 <= status < 300
                counts["answered"] += ok
                if timed:
                    latencies.append(latency)
                    started.append(conn.key)
                    counts["errors"] += not ok
                if time.perf_counter() < until:
                    send(conn)
                else:
                    connections.append(conn)

    connections: list[Conn | None] = [None] * concurrency
    try:
        phase(time.perf_counter() + warmup, False)
        before, cpu = TreeCPU.read(server_pid), time.process_time()
        start = time.perf_counter()
        phase(start + seconds, True)
        elapsed = time.perf_counter() - start
        cpu, after = time.process_time() - cpu, TreeCPU.read(server_pid)
    finally:
        pool.close()
    result = {
        "seconds": elapsed,
        "requests": len(latencies),
        "errors": counts["errors"],
        "answered": counts["answered"],
        "quantiles_ms": quantiles(latencies),
        "client_cpu": cpu,
        "server_cpu": after.own - before.own,
        "children_cpu": after.children_since(before),
        "children": len(after.live),
    }
    if samples:
        result["samples"] = [[w, lat] for w, lat in zip(started, latencies, strict=True)]
    return result


def keepalive_probe(
    host: str, port: int, ids: list[int], connections: int, requests: int, tag: str
) -> dict[str, Any]:
    """Requests one after another on each of `connections` new keep-alive connections:
    latencies (s) of each connection's first request and of every later one."""
    build = InferenceRequests(host, port, ids)
    pool = Pool(host, port)
    first: list[float] = []
    later: list[float] = []
    errors = 0
    try:
        for n in range(connections):
            conn = pool.open()
            for i in range(requests):
                pool.send(conn, build(f"{tag}-{n}-{i}"))
                (_, status, _, latency), *_ = _wait(pool)
                (later if i else first).append(latency)
                errors += status is None or not 200 <= status < 300
                if status is None:
                    break
            pool._close(conn)
    finally:
        pool.close()
    return {"first": first, "later": later, "errors": errors}


def _wait(pool: Pool) -> list[tuple[Conn, int | None, bytes, float]]:
    while True:
        done = pool.poll(10.0)
        if done:
            return done


def open_loop(
    host: str, port: int, ids: list[int], rate: float, seconds: float, tag: str, most: int = 256
) -> dict[str, Any]:
    """`/inference` at a fixed rate, whatever the answers' speed (up to `most` in flight).

    A request's latency runs from when it was due, so a server falling behind
    shows in it. Request ids are `<tag>-<i>`; returns the indexes of those not
    answered 200 (failed, or never sent because `most` were in flight: `skipped`).
    """
    build = InferenceRequests(host, port, ids)
    pool = Pool(host, port)
    idle: list[Conn] = []
    latencies: list[float] = []
    failed: list[int] = []
    failed_by: dict[str, int] = {}  # status (or "closed": no answer) -> requests
    total = int(rate * seconds)
    skipped = 0
    cpu = time.process_time()
    start = time.perf_counter()
    i = 0
    try:
        while i < total or pool.busy:
            now = time.perf_counter()
            while i < total and start + i / rate <= now:
                if pool.busy >= most:
                    failed.append(i)  # the server is that far behind: count it unanswered
                    skipped += 1
                else:
                    while idle and idle[-1].closed:  # the server closed it while idle, as
                        idle.pop()  # it may after keep_alive_seconds; a client reconnects
                    conn = idle.pop() if idle else pool.open()
                    pool.send(conn, build(f"{tag}-{i}"), (i, start + i / rate))
                i += 1
            wait = max(0.0, start + i / rate - time.perf_counter()) if i < total else 1.0
            for conn, status, _, _ in pool.poll(wait):
                index, due = conn.key
                latencies.append(time.perf_counter() - due)
                if status != 200:
                    failed.append(index)
                    why = "closed" if status is None else str(status)
                    failed_by[why] = failed_by.get(why, 0) + 1
                if not conn.closed:
                    idle.append(conn)
    finally:
        pool.close()
    return {
        "seconds": time.perf_counter() - start,
        "requests": total,
        "skipped": skipped,
        "failed": sorted(failed),
        "failed_by": failed_by,
        "quantiles_ms": quantiles(latencies),
        "client_cpu": time.process_time() - cpu,
    }


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "closed_loop": closed_loop,
    "keepalive_probe": keepalive_probe,
    "open_loop": open_loop,
}


def serve_jobs() -> None:
    """The load process: a job (a JSON object) a line on stdin, its result a line on stdout."""
    for line in sys.stdin:
        job = json.loads(line)
        print(json.dumps(JOBS[job.pop("job")](**job)), flush=True)


class LoadProcess:
    """The load in a process of its own: jobs in, results out, one at a time."""

    def __init__(self, log: Path, env: dict[str, str]):
        self.log = log
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(LOAD_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                cwd=log.parent,
            )

    def send(self, job: str, **args: Any) -> None:
        """Start a job; `result()` waits for it."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"job": job, **args}).encode() + b"\n")
        self.process.stdin.flush()

    def ready(self, timeout: float) -> bool:
        """Whether the job's result is there to read, waiting up to `timeout` seconds."""
        assert self.process.stdout is not None
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"the load process died:\n{text[-3000:]}")
        return json.loads(line)

    def run(self, job: str, **args: Any) -> dict[str, Any]:
        self.send(job, **args)
        return self.result()

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    serve_jobs()
