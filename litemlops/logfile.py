"""The home's event file: one JSON object per line, rotated by size, shared by processes.

`configure_logging` (`litemlops.logsetup`) writes to it; `rotated_name` is how
the history (`litemlops.monitoring.history`) recognises the files it compacts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging.handlers
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import orjson


class JsonLinesFile(logging.handlers.RotatingFileHandler):
    """The rotating event file: a line is written whole, and rotation happens between
    lines once the file would pass `maxBytes` (the standard handler would render
    each record a second time to decide that).

    Other processes may append to the same file (a CLI command, pipeline workers, an
    application using the library while `run` serves), so lines are kept here and
    written by `flush` in one `write` of whole lines to a file opened for appending:
    the kernel puts each such write at the end of the file in one piece, where a
    buffered text file would split a long line between two writes and let another
    process's line land in the middle of it.

    A full file is renamed to a name of its own, `events-<UTC time>-<pid>.jsonl`
    (`rotated_name`), and never deleted here: the history's compaction
    (`litemlops.monitoring.history`) turns rotated files into Parquet and removes
    them, so nothing leaves the log before it is in the history. `backupCount` is
    ignored. At most every `CHECK_SECONDS` a writer checks that its path still
    names the file it has open, and reopens it after another process rotated it.
    """

    CHECK_SECONDS = 1.0
    _size: int | None = None  # bytes in the current file, the pending lines included
    _checked = 0.0  # time.monotonic() of the last check that the path is still ours

    def __init__(self, filename: str | os.PathLike[str], **options: Any):
        self._pending: list[bytes] = []
        super().__init__(filename, **options)

    def _open(self) -> Any:
        # Unbuffered: `flush` hands the kernel whole lines in one write.
        return open(self.baseFilename, "ab", buffering=0)

    def write_line(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        now = time.monotonic()
        if self.stream is not None and now - self._checked >= self.CHECK_SECONDS:
            self._checked = now
            self._write_pending()
            self._follow()
        if self.stream is None:
            self.stream = self._open()
        if self._size is None:
            self._size = os.fstat(self.stream.fileno()).st_size
        if self.maxBytes > 0 and self._size + len(data) >= self.maxBytes and self._size > 0:
            self.doRollover()
            self._size = 0
        self._pending.append(data)
        self._size += len(data)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
        finally:
            self.release()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self.stream is None:
            self.stream = self._open()
        fd = self.stream.fileno()
        view = memoryview(data)
        while view:  # a regular file takes it all at once; a full disk may not
            view = view[os.write(fd, view) :]

    def close(self) -> None:
        self.acquire()
        try:
            with contextlib.suppress(OSError, ValueError):
                self._write_pending()
        finally:
            self.release()
        super().close()

    def _follow(self) -> None:
        """Reopen the path when another process has rotated the file this one holds."""
        assert self.stream is not None
        try:
            named = os.stat(self.baseFilename)
            held = os.fstat(self.stream.fileno())
            ours = (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
        except (OSError, ValueError):
            ours = False
        if ours:
            self._size = max(self._size or 0, named.st_size)  # others may append too
            return
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        self.stream = None
        self._size = None

    def doRollover(self) -> None:
        """Rename the full file to a name no other file has, and start a new one."""
        with contextlib.suppress(OSError, ValueError):
            self._write_pending()  # the lines before the rotation stay in the full file
        if self.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                self.stream.close()
            self.stream = None
        base = Path(self.baseFilename)
        now = dt.datetime.now(dt.UTC)
        for attempt in range(100):
            target = rotated_name(base, now, os.getpid(), attempt)
            if not target.exists():
                break
        with contextlib.suppress(FileNotFoundError):  # another process rotated it first
            os.rename(base, target)
        self._checked = time.monotonic()
        self.stream = self._open()


@dataclass(frozen=True)
class SharedFile:
    """The event file a process writes, described for a worker process of its to append
    its own lines to instead of sending each to it: the file's path, the size it
    rotates at, and the level from which the owner's console shows events (lines from
    that level on still go to the owner, which alone writes the console)."""

    path: str
    max_bytes: int
    shown: int


class HeldLines:
    """A worker's rendered lines, held to go together: to the owner as one message
    (`take`), or, those the owner's console does not show, appended by this process to
    the owner's event file (`SharedFile`) when it is given and can be opened. The file
    is written by `take` in one write; another process rotating it is followed as
    every writer of the file follows it (`JsonLinesFile`)."""

    def __init__(self, file: SharedFile | None = None):
        self.lines: list[tuple[int, str]] = []
        self._file: JsonLinesFile | None = None
        self._shown = 0
        if file is not None:
            try:
                self._file = JsonLinesFile(file.path, maxBytes=file.max_bytes, encoding="utf-8")
                self._shown = file.shown
            except OSError:  # not ours to write: the owner writes every line, as before
                self._file = None

    def hold(self, level: int, line: str) -> None:
        if self._file is not None and level < self._shown:
            self._file.write_line(line)
        else:
            self.lines.append((level, line))

    def take(self) -> list[tuple[int, str]]:
        """Write the lines meant for the file, and hand over (and forget) the others."""
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):  # as the owner's writer: a
                self._file.flush()  # full disk loses lines, never the worker
        lines, self.lines = self.lines, []
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def rotated_name(live: Path, when: dt.datetime, pid: int, attempt: int = 0) -> Path:
    """Where `live` (`events.jsonl`) goes when it is rotated at `when` by process `pid`:
    `events-20260101T120000123456Z-4242.jsonl`; names sort in the order files were
    rotated, and `attempt` > 0 makes another name for the same instant."""
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    extra = f".{attempt}" if attempt else ""
    return live.with_name(f"{live.stem}-{stamp}-{pid}{extra}{live.suffix}")


def dumps(value: Any, **_: Any) -> str:
    """One event as a JSON line, with orjson: NaN and infinity become null (bare NaN
    is not JSON, and DuckDB's reader, which monitoring uses, rejects it), numpy
    values and datetimes are written as numbers and ISO text, and it is several
    times faster than the json module, which matters at one event per prediction."""
    return orjson.dumps(
        value,
        default=_json_default,
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z,
    ).decode()


def _json_default(value: Any) -> Any:
    # Events carry paths, timestamps and numpy scalars; repr() of those (the
    # renderer's fallback) is unreadable for DuckDB and people alike.
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


_SECOND: tuple[int, str] = (-1, "")  # (a UTC second, its ISO text): swapped whole


def iso_utc(ns: int) -> str:
    """`ns` nanoseconds after the epoch as structlog's `TimeStamper(fmt="iso", utc=True)`
    writes the time it reads: `2026-01-02T03:04:05.123456Z`, microseconds truncated and
    left out when 0. The second's text is kept, so an event costs a format of its
    microseconds, not a datetime (about half the time)."""
    global _SECOND
    second, micros = divmod(ns // 1000, 1_000_000)
    seen, text = _SECOND
    if seen != second:
        text = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND = (second, text)
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


def stamp(logger: Any, method: str, event: Any) -> Any:
    """The structlog processor: the event's `timestamp`, now, in UTC (`iso_utc`)."""
    event["timestamp"] = iso_utc(time.time_ns())
    return event
