"""Connections of the `run` server: no Nagle delay, and no client holding one forever.

uvicorn sets TCP_NODELAY on accepted connections only when the listening
socket was made with `IPPROTO_TCP` (asyncio checks `sock.proto`); a socket
made with protocol 0 left Nagle's algorithm on, and with the client's delayed
ACKs every answer after the first on a keep-alive connection waited ~40 ms.
So the option is set here on every accepted connection, whatever the socket.

uvicorn closes idle keep-alive connections, but a client that sends a request's
headers a byte at a time (slowloris) is never timed out: a request's headers
must arrive whole within `header_timeout` of its first byte (or of the
connection, for the first request). The body's own deadline is the app's
(`read_json`), which answers 408.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any


def tcp_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP connection (a no-op for other transports)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # closed already: nothing to speed up
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def guarded(protocol: type[Any], header_timeout: float) -> type[Any]:
    """A subclass of uvicorn's HTTP protocol class `protocol` with both guards."""

    class Guarded(protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _timed_cycle: object | None = None

        def connection_made(self, transport: Any) -> None:
            tcp_nodelay(transport)
            super().connection_made(transport)
            self._start_header_timer()

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and self._between_requests():
                self._start_header_timer()  # the first byte of the next request
            super().data_received(data)
            if self._header_timer is not None and self.cycle is not self._timed_cycle:
                self._stop_header_timer()  # a new request's headers are in

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            cycle = self.cycle
            return cycle is None or bool(getattr(cycle, "response_complete", True))

        def _start_header_timer(self) -> None:
            self._timed_cycle = self.cycle
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _stop_header_timer(self) -> None:
            timer, self._header_timer = self._header_timer, None
            if timer is not None:
                timer.cancel()

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{protocol.__name__}"
    return Guarded
