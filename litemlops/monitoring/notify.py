"""Who hears of an alert: the event log, a webhook (Alertmanager's body), the event bus.

A notifier is called by `AlertManager` only for transitions it decided to notify
(firing outside the rule's cooldown, and the resolution of such a firing), so the
cooldown, persisted in registry.db, holds for every notifier alike. The webhook is
also sent again at each check while such a firing lasts (`resends_firing`).
Notifiers never raise: an alert that cannot be delivered is logged, and its state
is kept.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.config import AlertRule
from litemlops.errors import ConfigError
from litemlops.logger import get_logger
from litemlops.monitoring.alerts import FIRING, RESOLVED, AlertTransition

if TYPE_CHECKING:
    from litemlops.scheduler.bus import EventBus

log = get_logger("litemlops.alerts")

#: How many check intervals ahead of each sending a firing alert's `endsAt` lies (as
#: Prometheus does): Alertmanager resolves it by itself that long after the checks
#: stop (a stopped server), and a late check or two does not make it flap.
ENDS_AFTER_CHECKS = 4


class LogNotifier:
    """A structured event per firing (level warning) and resolution (level info)."""

    def __init__(self, logger: Any = None):
        self._log = logger if logger is not None else log

    def __call__(self, rule: AlertRule, transition: AlertTransition) -> None:
        if transition.to_state not in (FIRING, RESOLVED):
            return
        emit = self._log.warning if transition.to_state == FIRING else self._log.info
        emit(
            events.ALERT_FIRED if transition.to_state == FIRING else events.ALERT_RESOLVED,
            rule=rule.name,
            metric=rule.metric,
            value=transition.value,
            state=transition.to_state,
            severity=rule.severity,
            condition=rule.condition,
            fired_at=_iso(transition.fired_at),
        )


class WebhookNotifier:
    """POSTs Alertmanager's `/api/v2/alerts` body: a list with one alert.

    Alertmanager itself, or any receiver that reads that shape, can take it. A firing
    alert is sent when it fires and again at each check while it lasts, each time
    with `endsAt` `ENDS_AFTER_CHECKS` check intervals ahead (Alertmanager would
    otherwise expire it after its `resolve_timeout` while it still fires); its
    resolution is sent with `endsAt` at the time it resolved.
    timeout: seconds for the whole request; a monitoring check waits at most that long.
    generator_url: where a person sees the alert (the server's `/api/monitoring`).
    check_interval: seconds between monitoring checks (`[monitoring] interval_seconds`).
    """

    resends_firing = True

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        *,
        generator_url: str = "",
        check_interval: float = 60.0,
    ):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook URL must be http:// or https://, got {url!r}")
        if not (math.isfinite(check_interval) and check_interval > 0):
            raise ConfigError(
                f"check_interval must be a positive number of seconds, got {check_interval!r}"
            )
        self.url = url
        self.timeout = timeout
        self.generator_url = generator_url
        self.ends_after = timedelta(seconds=ENDS_AFTER_CHECKS * check_interval)

    def body(self, rule: AlertRule, transition: AlertTransition) -> list[dict[str, Any]]:
        """The JSON body for `transition`: a firing alert ends `ends_after` from now
        unless sent again, a resolved one at the time it resolved."""
        value = "none" if transition.value is None else f"{transition.value:g}"
        state = transition.to_state
        return [
            {
                "labels": {
                    "alertname": rule.name,
                    "severity": rule.severity,
                    "metric": rule.metric,
                    "service": "litemlops",
                },
                "annotations": {
                    "summary": f"{rule.name} {state}: {rule.metric} = {value} "
                    f"({'' if state == FIRING else 'not '}{rule.condition})",
                    "description": transition.detail or f"{rule.metric} {rule.condition}",
                    "value": value,
                },
                "startsAt": _iso(transition.fired_at or transition.at),
                "endsAt": _iso(
                    transition.at if state == RESOLVED else transition.at + self.ends_after
                ),
                "generatorURL": self.generator_url,
            }
        ]

    def __call__(self, rule: AlertRule, transition: AlertTransition) -> None:
        if transition.to_state not in (FIRING, RESOLVED):
            return
        import httpx

        try:
            response = httpx.post(self.url, json=self.body(rule, transition), timeout=self.timeout)
            response.raise_for_status()
        except Exception as exc:  # a receiver being down must not stop monitoring
            log.warning(
                events.ALERT_NOTIFY_FAILED,
                rule=rule.name,
                notifier="webhook",
                url=self.url,
                error=f"{type(exc).__name__}: {exc}",
            )


class BusNotifier:
    """Publishes `alert:<rule>` on firing, where a pipeline's event trigger (the rule's
    `trigger`, like "training") starts a run; a resolution publishes nothing."""

    def __init__(self, bus: EventBus):
        self.bus = bus

    def __call__(self, rule: AlertRule, transition: AlertTransition) -> None:
        if transition.to_state != FIRING:
            return
        self.bus.publish(
            rule.topic,
            {
                "rule": rule.name,
                "metric": rule.metric,
                "value": transition.value,
                "state": transition.to_state,
                "severity": rule.severity,
                "fired_at": _iso(transition.fired_at or transition.at),
                "trigger": rule.trigger,
            },
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
