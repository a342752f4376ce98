"""Run pytest for each mutant in a fresh child of one process that imported the libraries.

Starting Python and importing pytest, its plugins, pandas, DuckDB, scikit-learn and the
rest takes about four seconds here; the tests of one mutant often take less. The
server imports those libraries once (never litemlops or the tests: each child imports
them anew, so it sees the mutated file) and forks a child per request, which runs
`pytest.main` in the client's directory and environment and exits with its status.

    python mutation/forkserver.py serve SOCKET        # run.py starts and stops it
    python mutation/forkserver.py run SOCKET -- ARGS  # exits as `pytest ARGS` would

The client imports nothing heavy. When it dies (Cosmic Ray kills it at the timeout),
the server kills the child's whole process group. Children never write bytecode: two
mutants of one size written within a second could otherwise share a stale .pyc.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# Imported once by the server; each is optional (a missing one is imported by the child).
PRELOAD = (
    "pytest", "_pytest.python", "_pytest.assertion.rewrite", "hypothesis",
    "hypothesis.stateful", "hypothesis.extra.pandas", "xdist", "pytest_cov",
    "numpy", "pandas", "pyarrow", "pyarrow.parquet", "duckdb", "scipy.stats", "sklearn",
    "sklearn.linear_model", "sklearn.ensemble", "joblib", "sqlite_utils", "structlog",
    "starlette.applications", "httpx", "apscheduler.schedulers.background", "click",
    "pydantic", "prometheus_client", "uvicorn", "pdb", "xdist.looponfail", "xdist.dsession",
    "_pytest.pytester", "_pytest.junitxml", "_pytest.pastebin", "_pytest.debugging",
)  # fmt: skip


MEMORY = 6 * 2**30  # bytes of data a child may hold


def serve(path: str) -> None:
    """Accepts one request at a time until killed."""
    # A thread started at import would not exist in a child, and a lock it held would stay
    # held there: BLAS on one thread, and no background thread for Arrow's jemalloc.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
    sys.dont_write_bytecode = True
    for name in (*PRELOAD, *plugins()):
        with contextlib.suppress(ImportError):
            __import__(name)
    # A child that hangs on such a lock would count as a mutant killed (at its timeout).
    tasks = Path("/proc/self/task")
    threads = (
        sorted((t / "comm").read_text().strip() for t in tasks.iterdir()) if tasks.exists() else []
    )
    if len(threads) > 1:
        sys.exit(f"forkserver: the imports started threads ({', '.join(threads)}); "
                 "forked children could hang on their locks")  # fmt: skip
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    while True:
        conn, _ = server.accept()
        # An OSError: the client went away mid-answer, with nothing left to tell it.
        with conn, contextlib.suppress(OSError):
            handle(conn)


def plugins() -> list[str]:
    """The modules of pytest's installed plugins, but litemlops's own (the child's to import)."""
    from importlib.metadata import entry_points

    found = [e.module for e in entry_points(group="pytest11")]
    return [m for m in found if m.split(".")[0] != "litemlops"]


def handle(conn: socket.socket) -> None:
    request = json.loads(receive(conn))
    pid = os.fork()
    if pid == 0:  # the child: becomes `pytest ARGS` in the client's place
        conn.close()
        os.setsid()
        code = 3
        try:
            code = child(request)
        finally:
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
            return
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable and not conn.recv(1):  # the client is gone: so is what it ran
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return


def child(request: dict) -> int:
    out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    # A mutant can make a query explode (a join condition made always true): past this
    # much memory its tests fail with MemoryError instead of the machine running out.
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY, MEMORY))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]
    sys.argv = ["pytest", *request["args"]]
    import pytest

    try:
        code = int(pytest.main(request["args"]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


TIMED_OUT = "timed out: the tests were stopped"


def run(path: str, args: list[str], timeout: float | None = None) -> int:
    """Runs `pytest ARGS` through the server; prints its output; returns its status. After
    `timeout` seconds the tests are stopped (the server kills them when this connection
    closes) and it prints TIMED_OUT and returns 1: a mutant that hangs is caught. Without
    a server to answer (none listening, or it died meanwhile), pytest runs in a process of
    its own instead: a failure of the server must not count as a failing test."""
    try:
        return through_server(path, args, timeout)
    except (OSError, ServerGone) as error:
        print(f"fork server unavailable ({error}): running pytest in a process of its own")
    try:
        return subprocess.run([sys.executable, "-m", "pytest", *args], timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"{TIMED_OUT} after {timeout:.0f} s")
        return 1


class ServerGone(Exception):
    """The fork server closed the connection before it answered."""


def through_server(path: str, args: list[str], timeout: float | None) -> int:
    with tempfile.NamedTemporaryFile(prefix="mutant-", suffix=".out", delete=False) as f:
        output = f.name
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ),
                       "output": output}  # fmt: skip
            send(conn, json.dumps(request).encode())
            conn.settimeout(timeout)
            answer = b""
            while len(answer) < 4:
                try:
                    chunk = conn.recv(4 - len(answer))
                except TimeoutError:
                    print(f"{TIMED_OUT} after {timeout:.0f} s")
                    return 1
                if not chunk:
                    raise ServerGone("it closed the connection before answering")
                answer += chunk
        with open(output, encoding="utf-8", errors="replace") as f:
            sys.stdout.write(f.read())
        return struct.unpack("!i", answer)[0]
    finally:
        os.unlink(output)


def send(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(struct.pack("!I", len(payload)) + payload)


def receive(conn: socket.socket) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("connection closed mid-request")
        data += chunk
    return data[4:]


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "serve":
        serve(argv[1])
        return 0
    if len(argv) >= 3 and argv[0] == "run" and argv[2] == "--":
        return run(argv[1], argv[3:])
    sys.exit("usage: forkserver.py serve SOCKET | run SOCKET -- PYTEST_ARGS")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
