"""Whether another connection may have committed to a WAL database, without asking SQLite.

`PRAGMA data_version` answers that exactly, but each call is a read transaction
(locks on the `-shm` file): under load, more than the lookup it guards when the
rows are cached. In WAL mode every commit writes frames to `<database>-wal`,
which moves its modification time (and usually its size; a WAL that starts over
is written from its beginning, so only the time). So while the file's inode,
size and modification time read as they did before data_version was last asked,
no commit came since and that answer still holds.

A file time has a granularity (a kernel tick; a second or two on some file
systems): a second commit within the same tick as the one before would leave the
stamp as it was. So a stamp is trusted only when the file was last written
`SETTLED_NS` before it was read: any later commit then moves the time. A WAL
written just now, or no WAL file, means "ask SQLite".

Nothing here opens the `-shm` file (an earlier version mapped it): closing any
descriptor of a file drops every POSIX lock the process holds on it, SQLite's
included, and another process opening the database then takes it for unused and
truncates the index under this process's connections (a bus error here).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SETTLED_NS = 2_000_000_000
"""How long before a stamp is read the WAL must have been written last for the stamp to
be trusted: above the coarsest file-time granularity SQLite's WAL meets in practice."""


class WalStamp:
    """Stamps of one WAL database's `-wal` file: (inode, size, modification time)."""

    def __init__(self, database: str | Path):
        self._path = f"{database}-wal"

    def stamp(self) -> tuple[int, int, int] | None:
        """The stamp as it reads now, or None when it cannot be trusted (no WAL file, or
        one written less than `SETTLED_NS` ago)."""
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        if time.time_ns() - st.st_mtime_ns < SETTLED_NS:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)
