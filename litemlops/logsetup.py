"""Logging configuration: only entry points (the CLI, `litemlops run`) call it.

Library use (`Platform(config)` in a notebook or in another application) calls
`attach_event_log` instead, which writes litemlops's own events to the home's event
file in the same format and leaves the application's logging as it was.

Library code never configures logging; it calls
`litemlops.logger.get_logger("litemlops.store")` and emits events named in
`litemlops.events`. Once `configure_logging` ran, every
event, and every stdlib log record of third-party libraries, goes to
`<home>/logs/events.jsonl` as one JSON object per line (rotated by size) and,
if `logging.console` is on, to stderr in a readable form.

Events take structlog's own fast path, not the stdlib logging machinery: each
is rendered to its JSON line where it is emitted (the values as they were then)
and handed to one writer, which owns the file and the console. In background
mode most events are written by a thread, in batches; `shutdown_logging` writes
whatever is queued. The events an HTTP answer acknowledges (`events.ANSWERED`:
predictions, labels) are written to the operating system before the call that
emits them returns, with whatever was queued before them, so a server killed
after answering has lost nothing it answered. That is one `write` into the page
cache per answer (microseconds), not an fsync: a machine that loses power may
still lose the last moments.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path, PurePath
from typing import Any, TextIO

import orjson
import structlog

from litemlops import events, logger
from litemlops.config import Config
from litemlops.errors import HistoryError

# The stdlib handler is found again by name, so a second configure_logging (or a
# shutdown) touches only what an earlier call installed, not pytest's or the user's.
_STDLIB_HANDLER = "litemlops.events"
_writer: _Writer | _Forwarder | None = None
_LEVELS = logging.getLevelNamesMapping()


def configure_logging(
    config: Config,
    *,
    console_stream: TextIO | None = None,
    console_level: str | None = None,
    background: bool = False,
) -> None:
    """Route structlog events and stdlib records to the JSONL event file and the console.

    Creates `config.logs_dir` if needed. Calling it again replaces what the last call
    installed. console_stream: where console output goes (stderr when None).
    console_level: a stricter level for the console than the file's (commands that
    print their own results show only warnings).
    background: write on a thread of its own, so a caller (the server answering a
    request) never waits for the disk; `shutdown_logging` writes what is queued.
    """
    global _writer
    shutdown_logging()
    level = _LEVELS[config.logging.level.upper()]
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    file = _JsonLinesFile(
        config.events_log_path,
        maxBytes=config.logging.max_bytes,
        backupCount=config.logging.backups,
        encoding="utf-8",
    )
    console = None
    shown = level
    if config.logging.console:
        console = console_stream if console_stream is not None else sys.stderr
        if console_level is not None:
            shown = max(level, _LEVELS[console_level.upper()])
    _writer = _Writer(file, console, shown, background)
    _install(level, _writer)
    _retap()


def _install(level: int, writer: _Writer | _Forwarder) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_logger_name,
            structlog.processors.format_exc_info,
            _render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_Sink,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    handler = _StdlibRecords(writer)
    handler.set_name(_STDLIB_HANDLER)
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)


class _Attached:
    """An event file that library use writes: its writer, level and number of users."""

    def __init__(self, writer: _Writer, level: int):
        self.writer = writer
        self.level = level
        self.users = 0


#: The event files library use writes, by absolute path.
_attached: dict[str, _Attached] = {}
_attached_lock = threading.Lock()


def attach_event_log(config: Config) -> Callable[[], None]:
    """Write litemlops's events to the home's event file while the caller holds it.

    For library use, where no entry point ran `configure_logging`: events go to
    `<home>/logs/events.jsonl` as `litemlops run` writes them (one JSON line each,
    rotated at `logging.max_bytes`), in this process, and to the application's
    structlog or stdlib logging as before; nothing of the application's logging
    configuration changes, and records of other libraries are not taken. An event
    file that `configure_logging` writes already is not written twice. Returns the
    function that detaches it (the file is closed once its last user detached).
    """
    path = os.path.abspath(config.events_log_path)
    with _attached_lock:
        entry = _attached.get(path)
        if entry is None:
            try:
                config.logs_dir.mkdir(parents=True, exist_ok=True)
                file = _JsonLinesFile(path, maxBytes=config.logging.max_bytes, encoding="utf-8")
            except OSError as exc:
                raise HistoryError(
                    f"the home's event log {path} cannot be written ({exc.strerror or exc}); "
                    "it must be a file this user may append to"
                ) from exc
            level = _LEVELS[config.logging.level.upper()]
            entry = _attached[path] = _Attached(_Writer(file, None, level, False), level)
        entry.users += 1
        _retap()
    done = threading.Event()

    def detach() -> None:
        if done.is_set():
            return
        done.set()
        with _attached_lock:
            entry.users -= 1
            if entry.users == 0:
                _attached.pop(path, None)
                entry.writer.close()
            _retap()

    return detach


def _retap() -> None:
    """Hand events to `_tap` only while some attached file is not written otherwise:
    under `litemlops run` (its own file configured) events pay nothing for it."""
    logger.tap = _tap if _attached_writers(logging.CRITICAL) else None


def _attached_writers(level: int, home: str | None = None) -> list[_Writer]:
    """The attached files an event of `level` goes to: not the one `configure_logging`
    writes, and none in a worker process (the owner of the file writes its events).
    home: the event file of the home the event belongs to (`logger.home_log`); only
    that one, when given."""
    own = _writer
    if isinstance(own, _Forwarder):
        return []
    taken = own.file.baseFilename if own is not None else None
    return [
        entry.writer
        for path, entry in list(_attached.items())
        if path != taken and level >= entry.level and (home is None or path == home)
    ]


def _tap(name: str, method: str, event: str, fields: dict[str, Any]) -> None:
    """A litemlops event, rendered as `configure_logging` renders it, to attached files."""
    level = _LEVELS.get("ERROR" if method == "exception" else method.upper(), logging.INFO)
    writers = _attached_writers(level, logger.home_log.get())
    if not writers:
        return
    entry: MutableMapping[str, Any] = {**fields, "event": event}
    if method == "exception":
        entry.setdefault("exc_info", True)
    for step in _LIBRARY_STEPS:
        entry = step(None, method, entry)
    if name:
        entry["logger"] = name
    line = _dumps(entry)
    for writer in writers:
        writer.submit(level, line, entry)


_LIBRARY_STEPS: tuple[Callable[[Any, str, MutableMapping[str, Any]], Any], ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
)


def configure_forwarding(level: str, send: Callable[[int, str], None]) -> None:
    """Hand every event and stdlib record, rendered, to `send(level, line)`: a worker
    process's events go to the process that owns the event file (`forward_line`)."""
    global _writer
    shutdown_logging()
    _writer = _Forwarder(send)
    _install(_LEVELS[level.upper()], _writer)
    _retap()


def forward_line(level: int, line: str) -> None:
    """Write a line rendered in another process (`configure_forwarding`), in its turn."""
    writer = _writer
    if writer is None:  # library use with worker processes: the attached files
        for attached in _attached_writers(level, logger.home_log.get()):
            attached.submit(level, line, {})
        return
    shown: dict[str, Any] = {}
    if writer.console is not None and level >= writer.console_level:
        with contextlib.suppress(ValueError):
            shown = orjson.loads(line)
    writer.submit(level, line, shown)


class _Forwarder:
    """A worker process's writer: lines go to the owner of the file, not to a file."""

    console: TextIO | None = None
    console_level = logging.CRITICAL

    def __init__(self, send: Callable[[int, str], None]):
        self.send = send

    def submit(self, level: int, line: str, event: MutableMapping[str, Any]) -> None:
        self.send(level, line)

    def close(self) -> None:
        pass


def shutdown_logging() -> None:
    """Write what is queued, close the file, and restore structlog's defaults."""
    global _writer
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _STDLIB_HANDLER]:
        root.removeHandler(handler)
        handler.close()
    writer, _writer = _writer, None
    _retap()
    if writer is not None:
        writer.close()
        structlog.reset_defaults()


class _Writer:
    """The one owner of the event file and the console: lines are written in order.

    In background mode events are appended to a deque and a thread writes them
    every `BATCH_SECONDS`: waking a thread per event (a queue) cost the server
    more than rendering the event, in thread switches and lock hand-offs.
    """

    BATCH_SECONDS = 0.1

    def __init__(
        self, file: _JsonLinesFile, console: TextIO | None, console_level: int, background: bool
    ):
        self.file = file
        self.console = console
        self.console_level = console_level
        self.lock = threading.Lock()
        self.renderer = structlog.dev.ConsoleRenderer(colors=False)
        self.pending: collections.deque[Any] | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        if background:
            self.pending = collections.deque()
            self.thread = threading.Thread(target=self._run, name="litemlops-events", daemon=True)
            self.thread.start()

    def submit(self, level: int, line: str, event: MutableMapping[str, Any]) -> None:
        if self.pending is not None and event.get("event") not in events.ANSWERED:
            # Only what the console shows keeps its dict: queued dicts would outlive
            # the young garbage collections and make the full ones (slow in a
            # process holding pandas and DuckDB) frequent; strings are not tracked.
            shown = event if self.console is not None and level >= self.console_level else None
            self.pending.append((level, line, shown))  # atomic; no lock, no wake-up
            return
        with self.lock:
            if self.pending:
                self._write_pending()  # what was emitted earlier goes first
            self._write(level, line, event)
            self.file.flush()

    def _write(self, level: int, line: str, event: MutableMapping[str, Any] | None) -> None:
        self.file.write_line(line)
        if event is not None and self.console is not None and level >= self.console_level:
            try:
                text = self.renderer(None, "", dict(event))
                self.console.write(f"{text}\n")
                self.console.flush()
            except (OSError, ValueError):
                pass  # a closed console (a test's stream, a gone terminal) loses nothing

    def _run(self) -> None:
        while not self.stop.wait(self.BATCH_SECONDS):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        with self.lock:
            self._write_pending()
            with contextlib.suppress(Exception):
                self.file.flush()

    def _write_pending(self) -> None:
        pending = self.pending
        assert pending is not None
        while pending:
            with contextlib.suppress(Exception):  # one bad line must not stop the writer
                self._write(*pending.popleft())

    def close(self) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join()
        with self.lock:
            self.file.close()


class _Sink:
    """What structlog hands the rendered event to: the writer, at the event's level."""

    def __init__(self, *args: Any):
        self.name = str(args[0]) if args else ""

    def _emit(self, line: str, event: MutableMapping[str, Any], level: str = "info") -> None:
        writer = _writer
        if writer is not None:
            writer.submit(_LEVELS.get(level.upper(), logging.INFO), line, event)

    def __getattr__(self, method: str) -> Any:
        def emit(line: str, event: MutableMapping[str, Any]) -> None:
            self._emit(line, event, event.get("level", method))

        return emit


def _add_logger_name(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    name = getattr(logger, "name", "")
    if name:
        event["logger"] = name
    return event


def _render(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """The JSON line, rendered now with the values as they are now, and the event."""
    return (_dumps(event), event), {}


class _StdlibRecords(logging.Handler):
    """Records of other libraries (uvicorn, APScheduler) as events in the same file."""

    def __init__(self, writer: _Writer | _Forwarder):
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event: dict[str, Any] = {
                "event": record.getMessage(),
                "level": record.levelname.lower(),
                "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                "logger": record.name,
            }
            if record.exc_info:
                event["exception"] = logging.Formatter().formatException(record.exc_info)
            self.writer.submit(record.levelno, _dumps(event), event)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class _JsonLinesFile(logging.handlers.RotatingFileHandler):
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


def rotated_name(live: Path, when: dt.datetime, pid: int, attempt: int = 0) -> Path:
    """Where `live` (`events.jsonl`) goes when it is rotated at `when` by process `pid`:
    `events-20260101T120000123456Z-4242.jsonl`; names sort in the order files were
    rotated, and `attempt` > 0 makes another name for the same instant."""
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    extra = f".{attempt}" if attempt else ""
    return live.with_name(f"{live.stem}-{stamp}-{pid}{extra}{live.suffix}")


def _dumps(value: Any, **_: Any) -> str:
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
