"""Logging configuration: only entry points (the CLI, `litemlops run`) call it.

Library code never configures logging; it calls `structlog.get_logger("litemlops.store")`
and emits events named in `litemlops.events`. Once `configure_logging` ran, every
event, and every stdlib log record of third-party libraries, goes to
`<home>/logs/events.jsonl` as one JSON object per line (rotated by size) and,
if `logging.console` is on, to stderr in a readable form.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import math
import sys
from collections.abc import MutableMapping
from pathlib import PurePath
from typing import Any, TextIO

import structlog

from litemlops.config import Config

# Handlers are found again by name, so a second configure_logging (or a
# shutdown) touches only what an earlier call installed, not pytest's or the user's.
_FILE_HANDLER = "litemlops.events_file"
_CONSOLE_HANDLER = "litemlops.console"
_QUEUE_HANDLER = "litemlops.queue"
_OUR_HANDLERS = (_FILE_HANDLER, _CONSOLE_HANDLER, _QUEUE_HANDLER)
_listener: logging.handlers.QueueListener | None = None


class _PassThroughQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the listener as they are: structlog's event dict stays in
    `record.msg` for the file's formatter, which renders it on the listener's thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def configure_logging(
    config: Config,
    *,
    console_stream: TextIO | None = None,
    console_level: str | None = None,
    background: bool = False,
) -> None:
    """Route structlog and stdlib logging to the JSONL event file and the console.

    Creates `config.logs_dir` if needed. Calling it again replaces what the last call
    installed. console_stream: where console output goes (stderr when None).
    console_level: a stricter level for the console than the file's (commands that
    print their own results show only warnings).
    background: write on a thread of its own, so a caller (the server answering a
    request) never waits for the disk; `shutdown_logging` writes what is queued.
    """
    level = logging.getLevelNamesMapping()[config.logging.level.upper()]
    # Both structlog events and stdlib records of other libraries get these,
    # so every line of the file has the same core keys.
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
    ]
    structlog.configure(
        processors=[
            # Dropping below-level events first spares the per-event work of the chain.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    root = logging.getLogger()
    _remove_our_handlers(root)

    config.logs_dir.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        config.events_log_path,
        maxBytes=config.logging.max_bytes,
        backupCount=config.logging.backups,
        encoding="utf-8",
    )
    file_handler.set_name(_FILE_HANDLER)
    file_handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _finite_or_null,
                structlog.processors.JSONRenderer(default=_json_default),
            ],
        )
    )
    handlers: list[logging.Handler] = [file_handler]

    if config.logging.console:
        console = logging.StreamHandler(
            console_stream if console_stream is not None else sys.stderr
        )
        console.set_name(_CONSOLE_HANDLER)
        console.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.dev.ConsoleRenderer(colors=False),
                ],
            )
        )
        handlers.append(console)

    for handler in handlers:
        handler.setLevel(level)
    if console_level is not None and config.logging.console:
        handlers[-1].setLevel(max(level, logging.getLevelNamesMapping()[console_level.upper()]))
    if background:
        import queue

        global _listener
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        front = _PassThroughQueueHandler(records)
        front.set_name(_QUEUE_HANDLER)
        front.setLevel(level)
        _listener = logging.handlers.QueueListener(
            records, *handlers, respect_handler_level=True
        )
        _listener.start()
        root.addHandler(front)
    else:
        for handler in handlers:
            root.addHandler(handler)
    root.setLevel(level)


def shutdown_logging() -> None:
    """Flush and close what `configure_logging` installed and restore structlog's defaults."""
    _remove_our_handlers(logging.getLogger())
    structlog.reset_defaults()


def _remove_our_handlers(root: logging.Logger) -> None:
    global _listener
    for handler in [h for h in root.handlers if h.get_name() in _OUR_HANDLERS]:
        root.removeHandler(handler)
        handler.flush()
        handler.close()
    if _listener is not None:
        listener, _listener = _listener, None
        listener.stop()  # writes every queued record first
        for handler in listener.handlers:
            handler.flush()
            handler.close()


def _finite_or_null(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """NaN and infinity become null: `json` would write bare NaN, which is not JSON
    and which DuckDB's JSON reader (monitoring reads this file) rejects."""
    return {key: _clean(value) for key, value in event_dict.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


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
