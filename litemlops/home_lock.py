"""One process owns a home: an exclusive, non-blocking `flock` on `<home>/lock`.

The kernel drops the lock when its holder exits, however it exits, so a crashed
owner never leaves a stale lock behind; the pid in the file is only for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from litemlops.errors import HomeLockedError

_IN_USE = "home {home} is in use by {holder}; stop it or use another --home"


class HomeLock:
    """Exclusive ownership of a home directory, as a context manager.

    path: the lock file (`Config.lock_path`); its directory must exist.
    message: what a refused second owner is told, with `{home}` (the lock's
    directory) and `{holder}` ("process N") filled in; other exclusive roles in
    a home, such as its one scheduler, lock their own file with their own words.
    """

    def __init__(self, path: str | os.PathLike[str], *, message: str = _IN_USE):
        self.path = Path(path)
        self.message = message
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self, *, wait: bool = False) -> HomeLock:
        """Take the lock or raise `HomeLockedError` naming the process that has it.

        wait: block until the holder lets go instead (for turns at a shared resource).
        """
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder is not None else "another process"
            raise HomeLockedError(self.message.format(home=self.path.parent, holder=who)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Cleared while still locked, so the next owner's pid is never erased.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.release()

    def __enter__(self) -> HomeLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"HomeLock({str(self.path)!r}, held={self.held})"


def _read_pid(fd: int) -> int | None:
    # The holder may be between truncating and writing: an empty file is normal.
    try:
        return int(os.pread(fd, 32, 0).decode("ascii", "replace").strip())
    except ValueError:
        return None
