"""An in-process event bus: monitoring publishes `alert:drift`, the scheduler listens.

Topics are strings like `alert:drift` or `pipeline:training:success`;
subscriptions take exact topics or `fnmatch` patterns (`alert:*`). Delivery is
synchronous, in subscription order; a failing subscriber is logged and does not
stop the others or the publisher.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from litemlops import events
from litemlops.errors import ValidationError
from litemlops.logger import get_logger

log = get_logger("litemlops.bus")

Handler = Callable[[str, Mapping[str, Any]], None]


class Publisher(Protocol):
    """What a pipeline task may do with the bus (`ctx.bus`): publish."""

    def publish(self, topic: str, payload: Mapping[str, Any] | None = None) -> int: ...


@dataclass(frozen=True)
class Subscription:
    pattern: str
    handler: Handler
    id: int


class EventBus:
    """Publish/subscribe within one process; safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._next = 0

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValidationError(f"a subscription needs a topic or pattern, got {pattern!r}")
        if not callable(handler):
            raise ValidationError(f"subscriber for {pattern!r} is not callable")
        with self._lock:
            self._next += 1
            sub = Subscription(pattern, handler, self._next)
            self._subs.append(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s.id != subscription.id]

    def publish(self, topic: str, payload: Mapping[str, Any] | None = None) -> int:
        """Deliver to every matching subscriber; return how many handled it without error."""
        if not isinstance(topic, str) or not topic.strip() or any(c in topic for c in "*?["):
            raise ValidationError(f"invalid topic {topic!r}: a plain name like 'alert:drift'")
        if payload is not None and not isinstance(payload, Mapping):
            raise ValidationError(f"payload of {topic!r} must be a mapping, got {payload!r}")
        data = dict(payload or {})
        with self._lock:
            matching = [s for s in self._subs if fnmatch.fnmatchcase(topic, s.pattern)]
        delivered = 0
        for sub in matching:
            try:
                sub.handler(topic, data)
                delivered += 1
            except Exception as exc:  # one subscriber's bug must not silence the others
                log.error(
                    events.BUS_HANDLER_FAILED,
                    topic=topic,
                    pattern=sub.pattern,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return delivered
