"""Serving a home until told to stop: the second half of `litemlops run`.

The socket is bound here, before uvicorn starts, so a busy port is a clear
error and `--port 0` can print the port the system chose. uvicorn handles
SIGINT and SIGTERM: it stops accepting, finishes requests in flight and runs
the app's lifespan shutdown (scheduler stopped). Then pipeline runs this
process still had running are marked interrupted, events are flushed, and
the process exits 0 without waiting for those runs' threads.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.config import Config
from litemlops.errors import ConfigError
from litemlops.logger import get_logger
from litemlops.server.connections import guarded
from litemlops.server.security import admin_token, check_bind
from litemlops.store.files import write_text_atomic

if TYPE_CHECKING:
    import uvicorn

    from litemlops.platform import Platform

log = get_logger("litemlops.server")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off on accepted connections only then
    # (connections.guarded sets it too, whatever the socket).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "pick another with --port (0 lets the system choose)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    platform: Platform,
    host: str,
    port: int,
    *,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until SIGINT/SIGTERM; `announce(url)` runs once the socket listens."""
    from litemlops.server.app import create_app
    from litemlops.server.state import start_configured_deployments

    _, explicit = admin_token(platform.config)
    check_bind(host, explicit)
    start_configured_deployments(platform)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
    app = create_app(platform, start_scheduler=True, freeze_gc=True)
    server = uvicorn_server(app, platform.config)
    announce(url)
    log.info(events.SERVER_STARTED, url=url, host=host, port=bound)
    # Where this home is served, for commands refused by the home lock meanwhile.
    address = platform.config.home / "server.json"
    write_text_atomic(address, json.dumps({"url": url, "pid": os.getpid()}))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn raises the stop signal again once it has shut down gracefully;
        # with the caller's handlers that arrives here: the normal way to stop.
        pass
    finally:
        address.unlink(missing_ok=True)
        sock.close()
        interrupted = getattr(app.state, "interrupted_runs", [])
        log.info(events.SERVER_STOPPED, interrupted_runs=interrupted)
        if platform._scheduler is not None and not platform.scheduler.wait_idle(0):
            # A task is still inside the stores past the grace period: closing them
            # under it could crash; its run is marked interrupted, so leave now.
            from litemlops.logsetup import shutdown_logging

            shutdown_logging()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def uvicorn_server(
    app: Any, config: Config, *, http: str = "auto", loop: str = "auto"
) -> uvicorn.Server:
    """The uvicorn server `run` serves `app` with: its connections have Nagle off and
    the `[server]` timeouts for slow clients.

    http, loop: uvicorn's choices; "auto" takes httptools and uvloop (dependencies
    where they build) over h11 and asyncio, which cost about half as much CPU again
    per request.
    """
    import uvicorn

    settings = uvicorn.Config(
        app,
        http=http,
        loop=loop,
        lifespan="on",
        log_config=None,  # uvicorn's records go to our handlers (the JSONL log)
        access_log=False,  # every prediction is an event already
        timeout_graceful_shutdown=10,
        timeout_keep_alive=config.server.keep_alive_seconds,  # type: ignore[arg-type]
    )
    settings.load()
    settings.http_protocol_class = guarded(
        settings.http_protocol_class, config.server.header_timeout_seconds
    )
    return uvicorn.Server(settings)


def served_at(home: Path) -> str | None:
    """The URL a running `litemlops run` serves `home` at, if one does."""
    try:
        return str(json.loads((home / "server.json").read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def exit_now_if_threads_remain() -> None:
    """Exit without joining pipeline threads still running (their runs are marked
    interrupted): interpreter shutdown would otherwise wait for them."""
    others = [
        t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]
    if others:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
