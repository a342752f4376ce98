"""The connections `litemlops run` accepts: Nagle off, and slow clients timed out.

The server here is the one `run` builds (`bind` + `uvicorn_server` around the
app), on 127.0.0.1, in a thread of the test process, so a test can look at the
sockets it accepted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.server.main import bind, uvicorn_server
from litemlops.testing import FixedClock

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def served_overrides() -> dict[str, Any]:
    return {
        "server.header_timeout_seconds": HEADER_TIMEOUT,
        "server.body_timeout_seconds": BODY_TIMEOUT,
    }


@pytest.fixture(
    scope="module",
    # What `run` picks (httptools and uvloop, dependencies), and the pure-Python
    # protocol and loop uvicorn falls back to where those are not installed.
    params=[("auto", "auto"), ("h11", "asyncio")],
    ids=["auto", "h11-asyncio"],
)
def running(served_home: Config, request: pytest.FixtureRequest) -> Iterator[tuple[Any, int]]:
    """The shipped server's set-up serving the module's home: (uvicorn server, port)."""
    http, loop = request.param
    with Platform(served_home, clock=FixedClock()) as platform:
        app = create_app(platform, start_scheduler=False)
        sock = bind("127.0.0.1", 0)
        server = uvicorn_server(app, served_home, http=http, loop=loop)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        try:
            yield server, sock.getsockname()[1]
        finally:
            server.should_exit = True
            thread.join(15)
            sock.close()


def connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    return conn


def request(method: str, path: str, body: bytes = b"", *, close: bool = False) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body or method == "POST":
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def read_response(conn: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    return int(lines[0].split()[1]), rest[:length]


def closed_by_server(conn: socket.socket, within: float) -> bool:
    """Whether the server closes `conn` (EOF or reset) before `within` seconds pass."""
    conn.settimeout(within)
    try:
        while True:
            if not conn.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def accepted_sockets(server: Any) -> list[socket.socket]:
    return [p.transport.get_extra_info("socket") for p in list(server.server_state.connections)]


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_accepted_connections_have_nagle_off(running: tuple[Any, int]) -> None:
    server, port = running
    with connect(port) as conn:
        conn.sendall(request("GET", "/health"))
        assert read_response(conn)[0] == 200
        wait_for(lambda: bool(accepted_sockets(server)))
        for sock in accepted_sockets(server):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_listening_socket_is_tcp_so_asyncio_sets_nodelay_too() -> None:
    with bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_run_serves_with_httptools_and_uvloop_and_can_fall_back_to_h11_and_asyncio(
    served_home: Config,
) -> None:
    import asyncio

    uvloop = pytest.importorskip("uvloop")
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    for options, protocol, on_uvloop in [
        ({}, HttpToolsProtocol, True),
        ({"http": "h11", "loop": "asyncio"}, H11Protocol, False),
    ]:
        server = uvicorn_server(object(), served_home, **options)
        assert issubclass(server.config.http_protocol_class, protocol)
        factory = server.config.get_loop_factory()
        assert factory is not None
        loop = factory()
        try:
            assert isinstance(loop, asyncio.AbstractEventLoop)
            assert isinstance(loop, uvloop.Loop) == on_uvloop
        finally:
            loop.close()


def test_keep_alive_connections_answer_every_request(running: tuple[Any, int]) -> None:
    _, port = running
    with connect(port) as conn:
        for _ in range(3):
            conn.sendall(request("GET", "/health"))
            status, body = read_response(conn)
            assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_a_client_that_never_finishes_its_headers_is_disconnected(
    running: tuple[Any, int],
) -> None:
    _, port = running
    with connect(port) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
        assert closed_by_server(conn, HEADER_TIMEOUT + 5)


def test_a_silent_connection_is_disconnected(running: tuple[Any, int]) -> None:
    _, port = running
    with connect(port) as conn:
        assert closed_by_server(conn, HEADER_TIMEOUT + 5)


def test_dripping_headers_on_a_kept_alive_connection_are_cut_off(
    running: tuple[Any, int],
) -> None:
    """Each byte arrives before any idle timeout would fire; the headers' deadline
    counts from the request's first byte."""
    _, port = running
    with connect(port) as conn:
        conn.sendall(request("GET", "/health"))
        assert read_response(conn)[0] == 200
        started = time.monotonic()
        closed = False
        for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            try:
                conn.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_by_server(conn, HEADER_TIMEOUT / 4):
                closed = True
                break
        assert closed
        assert time.monotonic() - started < HEADER_TIMEOUT + 2


def test_headers_that_arrive_in_time_are_not_cut_off(running: tuple[Any, int]) -> None:
    _, port = running
    with connect(port) as conn:
        raw = request("GET", "/health")
        conn.sendall(raw[:10])
        time.sleep(HEADER_TIMEOUT / 4)
        conn.sendall(raw[10:])
        assert read_response(conn)[0] == 200


def test_a_body_slower_than_its_timeout_is_answered_408(
    running: tuple[Any, int], error_of: Callable[[Any], dict[str, str]]
) -> None:
    _, port = running
    body = json.dumps({"request_id": "slow", "driver_ids": [1001]}).encode()
    with connect(port) as conn:
        conn.sendall(request("POST", "/inference", body)[: -len(body) + 5])
        status, answer = read_response(conn)
    assert status == 408
    assert json.loads(answer)["error"]["code"] == "request_timeout"


def test_a_body_within_its_timeout_is_served(running: tuple[Any, int]) -> None:
    _, port = running
    body = json.dumps({"request_id": "ok", "driver_ids": [1001, 1002]}).encode()
    with connect(port) as conn:
        raw = request("POST", "/inference", body, close=True)
        conn.sendall(raw[:-10])
        time.sleep(BODY_TIMEOUT / 4)
        conn.sendall(raw[-10:])
        status, answer = read_response(conn)
    assert status == 200, answer
    assert json.loads(answer)["prediction"] in (1001, 1002)
