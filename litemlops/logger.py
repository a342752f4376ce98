"""The library's loggers: structlog as the application configured it, else quiet stdlib.

Library code never configures logging (`litemlops.logsetup` is for entry points).
Until something has configured structlog, its default prints every event to
stdout, which an application embedding litemlops (a notebook, a web app using
only stdlib logging) did not ask for. So a litemlops logger hands its events to
structlog once structlog is configured (by `configure_logging`, or by the
application's own `structlog.configure`), and until then to the stdlib logger of
the same name, which shows nothing unless the application set up logging (and
warnings, through Python's last-resort handler).

Either way, while library use keeps a home open (`litemlops.logsetup.attach_event_log`,
which `Platform` calls), each event is also written to that home's event file, so
`litemlops logs` and monitoring see what a notebook or a host application did.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


#: Where events also go, whatever the application's logging: (logger name, method, event,
#: fields). Set by `litemlops.logsetup` while a home's event file is attached.
tap: Callable[[str, str, str, dict[str, Any]], None] | None = None

#: While `litemlops.logsetup`'s configuration is structlog's, what it installed: events
#: run its processors without structlog's bound-logger layers (`_Direct.emit`).
direct: Any = None

#: The event file (absolute path) of the home the current work belongs to: a pipeline
#: run, a request to an app. With two homes open in one process, each one's events go
#: to its own log; events of no known home go to every attached log.
home_log: ContextVar[str | None] = ContextVar("litemlops_home_log", default=None)


@contextlib.contextmanager
def logging_to(events_log: str | os.PathLike[str]) -> Iterator[None]:
    """Within the block, events belong to the home whose event file is `events_log`."""
    token = home_log.set(os.path.abspath(events_log))
    try:
        yield
    finally:
        home_log.reset(token)


def get_logger(name: str, **context: Any) -> Logger:
    """The logger for a part of litemlops (`litemlops.store`, ...), with bound context."""
    return Logger(name, context)


class Logger:
    """`info`, `warning`, ... (`event`, **fields) and `bind`, like a structlog logger."""

    __slots__ = ("_bound", "_context", "_name", "_structlog")

    def __init__(self, name: str, context: dict[str, Any]):
        self._name = name
        self._context = context
        # Not cached by structlog: it reads the configuration at every call.
        self._structlog = structlog.get_logger(name, **context)
        #: (structlog's configuration, the logger it bound) for the last event.
        self._bound: tuple[tuple[Any, ...], Any] | None = None

    def bind(self, **context: Any) -> Logger:
        return Logger(self._name, {**self._context, **context})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("exception", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._emit("critical", event, fields)

    def _logger(self) -> Any:
        """structlog's logger for this one, bound again only when structlog's
        configuration changed: binding builds a logger and its sink, which cost as
        much as the rest of an event (the server emits one per answer)."""
        settings = tuple(structlog.get_config().values())
        bound = self._bound
        if bound is None or bound[0] != settings:
            bound = self._bound = (settings, self._structlog.bind())
        return bound[1]

    def many(
        self, method: str, event: str, rows: Sequence[dict[str, Any]], **fields: Any
    ) -> None:
        """`method(event, **fields, **row)` for each of `rows`, in order. Where structlog
        runs `litemlops.logsetup`'s processors, they run once for what the rows share (one
        timestamp for all), and each row is only rendered: about a quarter of the time of
        one call a row (a shadow worker logs a batch of scored requests at once)."""
        fast = direct
        if tap is not None or not structlog.is_configured() or fast is None or not (
            fast.emit_many(self._name, method, event, self._context, fields, rows)
        ):
            for row in rows:
                self._emit(method, event, {**fields, **row})

    # structlog's own spellings, for tasks written against a structlog logger.
    msg = info
    warn = warning
    fatal = critical

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        if tap is not None:
            tap(self._name, method, event, {**self._context, **fields})
        if structlog.is_configured():
            fast = direct
            if fast is None or not fast.emit(self._name, method, event, self._context, fields):
                getattr(self._logger(), method)(event, **fields)
            return
        stdlib = logging.getLogger(self._name)
        level = _LEVELS[method]
        if stdlib.isEnabledFor(level):
            exc_info = fields.pop("exc_info", method == "exception")
            shown = {**self._context, **fields}
            text = " ".join([event, *(f"{k}={v!r}" for k, v in shown.items())])
            stdlib.log(level, "%s", text, exc_info=exc_info)
