"""The DuckDB connection a read of the event log (or a profile) runs on.

Opening an in-memory DuckDB database costs about 20 ms (its catalog, buffer manager
and threads are built each time), which a dashboard page or a lineage lookup paid on
every read of the log. A read now takes a cursor on one in-memory database the
process shares: a connection of its own (its settings, registered frames and temp
objects stay its own, and threads may each hold one) that costs about 0.05 ms.

DuckDB's worker threads do not survive a fork, and a child that opens a database
while its parent's is open waits for them forever: the shared database is closed
before every fork when no read is using it (one under way is left to finish, which
was the case before too), and the next read, in either process, opens it again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_shared: tuple[int, Any] | None = None
_busy = 0  # connections open on the shared database
_inherited: list[Any] = []


@contextmanager
def connection() -> Iterator[Any]:
    """A DuckDB connection with times in UTC and large Arrow strings (what pandas keeps
    text in, taken without a copy), closed on leaving."""
    global _busy, _shared
    with _lock:
        if _shared is None or _shared[0] != os.getpid():
            import duckdb

            _watch_forks()
            _shared = (os.getpid(), duckdb.connect())
        con = _shared[1].cursor()
        _busy += 1
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET arrow_large_buffer_size = true")
        yield con
    finally:
        con.close()
        with _lock:
            _busy -= 1


def _close_before_fork() -> None:
    global _shared
    with _lock:
        if _shared is not None and _shared[0] == os.getpid() and not _busy:
            _shared[1].close()
            _shared = None


def _forked() -> None:
    """In a child: another thread may have held the lock at the fork, and the reads
    under way in the parent are not the child's. A database inherited open is kept
    referenced, never closed: closing it would wait for its threads."""
    global _lock, _busy
    _lock = threading.Lock()
    _busy = 0
    if _shared is not None:
        _inherited.append(_shared[1])


def _watch_forks() -> None:
    """Register the fork hooks once, with the first database (not at import)."""
    global _watching
    if not _watching:
        os.register_at_fork(before=_close_before_fork, after_in_child=_forked)
        _watching = True


_watching = False
