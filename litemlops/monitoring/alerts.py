"""Alert rules evaluated against monitoring metrics: states, timers, cooldowns, history.

Each rule moves normal -> pending (its condition holds) -> firing (it held for the
rule's `for_seconds`) -> resolved (it stopped holding) -> normal, like a Prometheus
alerting rule. States and every transition live in registry.db, so a restarted
process keeps a pending alert's timer and a firing one's cooldown: a crash loop
must not reset the cooldown that keeps a flapping alert from retraining in a loop.
Notifiers are called after the transaction commits: a slow webhook never holds the
database, and a crash in between loses a notification rather than repeating one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from litemlops import events
from litemlops.clock import from_ms, to_ms, utc_now
from litemlops.config import AlertRule
from litemlops.errors import ConfigError, NotFoundError
from litemlops.logger import get_logger
from litemlops.monitoring.alert_store import AlertStore, StoredState, StoredTransition
from litemlops.store.sqlite import SQLiteDB

log = get_logger("litemlops.alerts")

NORMAL, PENDING, FIRING, RESOLVED = "normal", "pending", "firing", "resolved"
STATE_VALUES = {NORMAL: 0, PENDING: 1, FIRING: 2, RESOLVED: 3}
"""A number per state, for gauges (`/metrics`) that cannot hold text."""

__all__ = [
    "FIRING",
    "NORMAL",
    "PENDING",
    "RESOLVED",
    "STATE_VALUES",
    "AlertManager",
    "AlertRule",
    "AlertStatus",
    "AlertTransition",
    "Notifier",
]


@dataclass(frozen=True)
class AlertTransition:
    """One change of a rule's state.

    notified: the notifiers called for it (empty for pending and normal, within the
    cooldown, or when the firing it resolves notified no one). fired_at: when the
    firing this transition belongs to began (firing and resolved only).
    """

    rule: str
    from_state: str
    to_state: str
    metric: str
    value: float | None
    at: datetime
    fired_at: datetime | None = None
    severity: str = "warning"
    condition: str = ""
    notified: tuple[str, ...] = ()
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 text."""
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class AlertStatus:
    """Where a rule stands now. detail: why it is there (or that its metric was missing)."""

    rule: str
    state: str
    metric: str
    condition: str
    severity: str
    value: float | None = None
    since: datetime | None = None
    pending_since: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    evaluated_at: datetime | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


class Notifier(Protocol):
    """Tells someone of a transition; must not raise (a failure is logged and dropped).

    A notifier whose `resends_firing` attribute is true (Alertmanager's webhook) is
    also called at each evaluation while a firing it was told of lasts, with a
    transition from firing to firing: Alertmanager forgets an alert that is not sent
    again before its end time, like Prometheus re-sends its firing alerts.
    """

    def __call__(self, rule: AlertRule, transition: AlertTransition) -> None: ...


@dataclass
class _State(StoredState):
    """A rule's persisted row, in ms since the epoch, and the moves one evaluation made."""

    moves: list[_Move] = field(default_factory=list)


@dataclass(frozen=True)
class _Move:
    from_state: str
    to_state: str
    fired_at: int | None
    notified: tuple[str, ...]
    detail: str


class AlertManager:
    """Evaluates rules against metrics, keeps their states, calls their notifiers.

    db: the registry database (`alert_store` owns the alerts' tables in it).
    rules: the rules to evaluate, usually `Config.alerts`; names must be unique.
    clock: returns an aware datetime (tests move it instead of sleeping).
    notifiers: name -> notifier for the names rules list in `notify`; a name without
    a notifier here is skipped (a CLI check has no bus to retrain through).
    """

    def __init__(
        self,
        db: SQLiteDB,
        rules: Sequence[AlertRule],
        *,
        clock: Callable[[], datetime] = utc_now,
        notifiers: Mapping[str, Notifier] | None = None,
    ):
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"alert rule names must be unique; repeated: {repeated}")
        self.db = db
        self.store = AlertStore(db)
        self.rules = tuple(rules)
        self.clock = clock
        if notifiers is None:
            from litemlops.monitoring.notify import LogNotifier

            notifiers = {"log": LogNotifier()}
        self.notifiers = dict(notifiers)

    def evaluate(self, metrics: Mapping[str, Any]) -> list[AlertTransition]:
        """Move every rule on by `metrics` (flat name -> number) at the clock's time.

        A rule whose metric is absent, None or NaN keeps its state and timers, and
        its status says so. Returns the transitions, in rule order.
        """
        now = to_ms(self.clock())
        transitions: list[AlertTransition] = []
        reminders: list[AlertTransition] = []
        with self.store.transaction() as tx:
            stored = {n: _State(**asdict(s)) for n, s in tx.states(self._names()).items()}
            for rule in self.rules:
                current = stored.get(rule.name) or _State(NORMAL, since=now)
                value = _number(metrics.get(rule.metric))
                if value is None:
                    current.detail = f"metric {rule.metric} missing: state kept"
                else:
                    self._step(rule, current, value, now)
                current.evaluated_at = now
                tx.save(rule.name, rule.metric, current)
                for move in current.moves:
                    t = AlertTransition(
                        rule=rule.name,
                        from_state=move.from_state,
                        to_state=move.to_state,
                        metric=rule.metric,
                        value=value,
                        at=_time(now),
                        fired_at=from_ms(move.fired_at),
                        severity=rule.severity,
                        condition=rule.condition,
                        notified=move.notified,
                        detail=move.detail,
                    )
                    tx.record(_stored(t))
                    transitions.append(t)
                if not current.moves and current.state == FIRING and current.episode_notified:
                    reminder = self._reminder(rule, current, now)
                    if reminder is not None:
                        reminders.append(reminder)
        by_name = {r.name: r for r in self.rules}
        for t in [*transitions, *reminders]:
            self._notify(by_name[t.rule], t)
        return transitions

    def _reminder(self, rule: AlertRule, s: _State, now: int) -> AlertTransition | None:
        """A firing that lasts, for the notifiers that re-send it (not a transition:
        neither recorded nor returned)."""
        resend = tuple(
            n for n in self._notified(rule) if getattr(self.notifiers[n], "resends_firing", False)
        )
        if not resend:
            return None
        return AlertTransition(
            rule=rule.name,
            from_state=FIRING,
            to_state=FIRING,
            metric=rule.metric,
            value=s.value,
            at=_time(now),
            fired_at=from_ms(s.fired_at),
            severity=rule.severity,
            condition=rule.condition,
            notified=resend,
            detail=s.detail,
        )

    def _step(self, rule: AlertRule, s: _State, value: float, now: int) -> None:
        s.value = value
        shown = f"{rule.metric} = {value:g}"
        if not rule.holds(value):
            if s.state == PENDING:
                self._move(s, NORMAL, now, f"{shown}, not {rule.condition} before `for` passed")
            elif s.state == FIRING:
                s.resolved_at = now
                notified = self._notified(rule) if s.episode_notified else ()
                self._move(s, RESOLVED, now, f"{shown}, not {rule.condition}", notified)
            elif s.state == RESOLVED:
                self._move(s, NORMAL, now, f"{shown}, not {rule.condition}")
            else:
                s.detail = f"{shown}, not {rule.condition}"
            s.pending_since = None
            return
        if s.state == FIRING:
            s.detail = f"{shown} {rule.condition}: firing since {_time(s.since).isoformat()}"
            return
        if s.state != PENDING:
            s.pending_since = now
            self._move(s, PENDING, now, f"{shown} {rule.condition}")
        assert s.pending_since is not None
        held = (now - s.pending_since) / 1000
        if held < rule.for_seconds:
            s.detail = f"{shown} {rule.condition} for {held:g} s of {rule.for_seconds:g} s"
            return
        s.fired_at, s.resolved_at = now, None
        detail = f"{shown} {rule.condition} for {held:g} s"
        last = s.last_notified_at
        since_last = None if last is None else (now - last) / 1000
        if since_last is not None and since_last < rule.cooldown_seconds:
            s.episode_notified = False
            self._move(
                s,
                FIRING,
                now,
                f"{detail}; notified no one: the last notified firing "
                f"was {since_last:g} s ago, within the {rule.cooldown_seconds:g} s cooldown",
            )
            return
        s.episode_notified = True
        s.last_notified_at = now
        self._move(s, FIRING, now, detail, self._notified(rule))

    @staticmethod
    def _move(s: _State, to: str, now: int, detail: str, notified: tuple[str, ...] = ()) -> None:
        fired_at = s.fired_at if to in (FIRING, RESOLVED) else None
        s.moves.append(_Move(s.state, to, fired_at, notified, detail))
        s.state, s.since, s.detail = to, now, detail

    def _notified(self, rule: AlertRule) -> tuple[str, ...]:
        return tuple(n for n in rule.notify if n in self.notifiers)

    def _notify(self, rule: AlertRule, t: AlertTransition) -> None:
        for name in t.notified:
            try:
                self.notifiers[name](rule, t)
            except Exception as exc:  # a notifier's bug must not lose the others' news
                log.error(
                    events.ALERT_NOTIFY_FAILED,
                    rule=rule.name,
                    notifier=name,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def states(self) -> list[AlertStatus]:
        """The status of every rule, in rule order (normal for a rule never evaluated)."""
        stored = self.store.states(self._names())
        out = []
        for rule in self.rules:
            s = stored.get(rule.name)
            if s is None:
                out.append(
                    AlertStatus(
                        rule.name,
                        NORMAL,
                        rule.metric,
                        rule.condition,
                        rule.severity,
                        detail="not evaluated yet",
                    )
                )
                continue
            out.append(
                AlertStatus(
                    rule=rule.name,
                    state=s.state,
                    metric=rule.metric,
                    condition=rule.condition,
                    severity=rule.severity,
                    value=s.value,
                    since=from_ms(s.since),
                    pending_since=from_ms(s.pending_since),
                    fired_at=from_ms(s.fired_at),
                    resolved_at=from_ms(s.resolved_at),
                    last_notified_at=from_ms(s.last_notified_at),
                    evaluated_at=from_ms(s.evaluated_at),
                    detail=s.detail,
                )
            )
        return out

    def state(self, name: str) -> AlertStatus:
        """The status of rule `name`; NotFoundError names the known rules."""
        for status in self.states():
            if status.rule == name:
                return status
        raise NotFoundError(
            f"no alert rule {name!r}; rules: {', '.join(r.name for r in self.rules) or 'none'}"
        )

    def history(self, name: str | None = None, limit: int = 100) -> list[AlertTransition]:
        """Transitions, newest first; of one rule when `name` is given (also a removed rule)."""
        rows = self.store.history(name, limit)
        severity = {r.name: r.severity for r in self.rules}
        condition = {r.name: r.condition for r in self.rules}
        return [
            AlertTransition(
                rule=r.name,
                from_state=r.from_state,
                to_state=r.to_state,
                metric=r.metric,
                value=r.value,
                at=_time(r.at),
                fired_at=from_ms(r.fired_at),
                severity=severity.get(r.name, ""),
                condition=condition.get(r.name, ""),
                notified=r.notified,
                detail=r.detail,
            )
            for r in rows
        ]

    def _names(self) -> list[str]:
        return [r.name for r in self.rules]


def _stored(t: AlertTransition) -> StoredTransition:
    return StoredTransition(
        name=t.rule,
        from_state=t.from_state,
        to_state=t.to_state,
        metric=t.metric,
        value=t.value,
        at=to_ms(t.at),
        fired_at=None if t.fired_at is None else to_ms(t.fired_at),
        notified=t.notified,
        detail=t.detail,
    )


def _number(value: Any) -> float | None:
    """A metric's value as a float; None when it is absent or not a number (or NaN)."""
    if value is None or isinstance(value, str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _time(ms: int) -> datetime:
    moment = from_ms(ms)
    assert moment is not None
    return moment


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat().replace("+00:00", "Z")
        if isinstance(v, datetime)
        else list(v)
        if isinstance(v, tuple)
        else v
        for k, v in values.items()
    }
