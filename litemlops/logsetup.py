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
import os
import sys
import threading
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, TextIO

import orjson
import structlog

from litemlops import events, logger
from litemlops.config import Config
from litemlops.errors import HistoryError
from litemlops.logfile import HeldLines, JsonLinesFile, SharedFile, dumps, stamp

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
    file = JsonLinesFile(
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
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamp,
        _add_logger_name,
        structlog.processors.format_exc_info,
        _render,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_Sink,
        cache_logger_on_first_use=False,
    )
    logger.direct = _Direct(processors, level)
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
                file = JsonLinesFile(path, maxBytes=config.logging.max_bytes, encoding="utf-8")
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
    line = dumps(entry)
    for writer in writers:
        writer.submit(level, line, entry)


_LIBRARY_STEPS: tuple[Callable[[Any, str, MutableMapping[str, Any]], Any], ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    stamp,
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


def event_file() -> SharedFile | None:
    """This process's event file (`configure_logging`), described for its worker
    processes to append to (`hold_forwarded`); None without one (library use, a worker)."""
    writer = _writer
    if not isinstance(writer, _Writer):
        return None
    shown = writer.console_level if writer.console is not None else logging.CRITICAL + 1
    return SharedFile(writer.file.baseFilename, writer.file.maxBytes, shown)


def hold_forwarded(file: SharedFile | None = None) -> HeldLines:
    """In a worker process (`configure_forwarding`): hold the lines rendered from now on
    instead of sending each; the worker sends `take()` together (each still goes
    through `forward_line` in the owner). file: the owner's `event_file()`, to append
    the lines its console does not show to that file from here instead: the owner's
    interpreter then spends nothing on them."""
    held = HeldLines(file)
    if isinstance(_writer, _Forwarder):
        _writer.send = held.hold
    return held


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


def forward_lines(lines: list[tuple[int, str]]) -> None:
    """`forward_line` for many lines at once: lines the console does not show are
    handed to the writer as one block (one entry to write, not one per line)."""
    writer = _writer
    block: list[str] = []
    for level, line in lines:
        if writer is not None and (writer.console is None or level < writer.console_level):
            block.append(line)
            continue
        if block and writer is not None:  # in order: what came before goes first
            writer.submit(logging.INFO, "\n".join(block), {})
            block = []
        forward_line(level, line)
    if block and writer is not None:
        writer.submit(logging.INFO, "\n".join(block), {})


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
    logger.direct = None
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
        self, file: JsonLinesFile, console: TextIO | None, console_level: int, background: bool
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


class _Direct:
    """A litemlops logger's events through the processors `_install` configured, without
    structlog's bound logger around them: the same line and event for a third less
    time (the server writes one per answer, a shadow worker one per request scored).

    Only while structlog's processors are still those (an application may configure
    structlog after us), and not for an event that carries an exception (structlog's
    `exception` adds `exc_info` itself).
    """

    def __init__(self, processors: list[Any], level: int):
        self.processors = processors
        self.level = level
        self._sinks: dict[str, _Sink] = {}

    def emit(
        self, name: str, method: str, event: str, context: dict[str, Any], fields: dict[str, Any]
    ) -> bool:
        """Log the event as structlog would have; False (nothing done) when it cannot."""
        if not self._usable(method, fields):
            return False
        if _LEVELS[method.upper()] < self.level:  # the filtering bound logger's no-op
            return True
        sink = self._sink(name)
        entry: Any = {**context, **fields, "event": event}
        for processor in self.processors:
            entry = processor(sink, method, entry)
        args, kwargs = entry
        getattr(sink, method)(*args, **kwargs)
        return True

    def emit_many(
        self, name: str, method: str, event: str, context: dict[str, Any],
        fields: dict[str, Any], rows: Sequence[dict[str, Any]],
    ) -> bool:  # fmt: skip
        """`emit` for each row with `{**fields, **row}`, the processors but the renderer run
        once on what the rows share (one timestamp for all); False when it cannot."""
        if not self._usable(method, fields) or any(map(_PROCESSED.intersection, rows)):
            return False
        writer = _writer
        if _LEVELS[method.upper()] < self.level or writer is None or not rows:
            return True
        shared: Any = {**context, **fields, "event": event}
        for processor in self.processors[:-1]:  # the last renders (`_render`)
            shared = processor(self._sink(name), method, shared)
        level = _LEVELS.get(shared.get("level", method).upper(), logging.INFO)  # as `_Sink`
        for row in rows:  # rendered as `_render` does, handed over as `_Sink` does
            entry = {**shared, **row}
            writer.submit(level, dumps(entry), entry)
        return True

    def _usable(self, method: str, fields: dict[str, Any]) -> bool:
        processors = structlog.get_config()["processors"]
        return method != "exception" and "exc_info" not in fields and processors is self.processors

    def _sink(self, name: str) -> _Sink:
        return self._sinks.get(name) or self._sinks.setdefault(name, _Sink(name))


#: What the processors set (or read: `exc_info`): never a row's own field in `emit_many`.
_PROCESSED = frozenset({"event", "level", "timestamp", "logger", "exc_info", "exception"})


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
    return (dumps(event), event), {}


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
            self.writer.submit(record.levelno, dumps(event), event)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
