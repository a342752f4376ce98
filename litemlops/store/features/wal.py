"""Whether another connection may have committed to a WAL database, without asking SQLite.

`PRAGMA data_version` answers that exactly, but each call is a read transaction
(locks on the `-shm` file): under load, more than the lookup it guards when the
rows are cached. Every commit in WAL mode rewrites the header of the WAL index
(https://www.sqlite.org/walformat.html, "the wal-index header": its change
counter, last frame, salts and checksums) in `<database>-shm`, which SQLite
keeps mapped in every connection. So while that header reads the same as when
data_version was last asked, its answer still holds.

The header is written twice (second copy, then first); a read is trusted only
when both copies agree and the index is initialised. Anything else (no `-shm`
file, a platform without read-only mmap, a copy being written) means "ask
SQLite". The mapping must not outlive the connection: SQLite truncates the
file only once no connection holds it, and reading a truncated mapping faults.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

HEADER = 48  # bytes of one copy of the wal-index header
IS_INIT = 12  # offset of its "initialised" flag


class WalIndex:
    """The wal-index header of one WAL database, read from its `-shm` file."""

    def __init__(self, database: str | Path):
        self._map: mmap.mmap | None = None
        if not hasattr(mmap, "PROT_READ"):
            return  # no read-only shared mapping here (Windows): always ask SQLite
        with contextlib.suppress(OSError, ValueError):
            fd = os.open(f"{database}-shm", os.O_RDONLY)
            try:
                self._map = mmap.mmap(fd, 2 * HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
            finally:
                os.close(fd)

    def header(self) -> bytes | None:
        """The header as it reads now, or None when it cannot be trusted."""
        if self._map is None:
            return None
        both = self._map[: 2 * HEADER]
        first = both[:HEADER]
        if first != both[HEADER:] or not first[IS_INIT]:
            return None
        return first

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
