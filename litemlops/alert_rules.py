"""Alert rules: when a monitoring metric is alarming, for how long, who hears of it.

`AlertRule` and the `DEFAULT_ALERTS` (the course's drift rule that retrains, an
accuracy drop that is logged), and how config.toml's `[[alerts]]` tables become
rules (`alert_rules`, `with_default_alerts`). `litemlops.config` re-exports them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from litemlops.errors import ConfigError

NOTIFIERS = ("log", "webhook", "bus")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
    "!=": lambda v, t: v != t,
    ">": lambda v, t: v > t,
    "<": lambda v, t: v < t,
}
_CONDITION = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_condition(text: str) -> tuple[str, float]:
    """`"> 0"` -> (">", 0.0); raises ValueError saying what a condition looks like."""
    match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
    number = match.group(2) if match is not None else ""
    threshold = float(number) if _FLOAT.fullmatch(number) else math.nan
    if match is None or not math.isfinite(threshold):
        raise ValueError('an operator (>, >=, <, <=, ==, !=) and a finite number, like "> 0"')
    return match.group(1), threshold


@dataclass(frozen=True)
class AlertRule:
    """When a monitoring metric is alarming, for how long, and who hears of it.

    metric: a key of the flat metrics a monitoring check produces (`drift.dataset`,
    `performance.auc`). condition: an operator and a number (`"> 0"`). every: seconds
    between evaluations (the scheduler's business). for_seconds: how long the condition
    must hold before the alert fires. notify: names in `NOTIFIERS`. trigger: the pipeline
    that a firing starts through the bus topic `alert:<name>` (needs "bus" in notify).
    cooldown_seconds: a firing within this time of the last notified one notifies no
    one, so a flapping alert cannot start retraining in a loop.
    In config.toml the keys `for` and `cooldown` stand for for_seconds, cooldown_seconds.
    """

    name: str
    metric: str
    condition: str
    every: float = 60.0
    for_seconds: float = 0.0
    severity: str = "warning"
    notify: tuple[str, ...] = ("log",)
    trigger: str | None = None
    cooldown_seconds: float = 0.0

    def __post_init__(self) -> None:
        for key, attr in _RULE_KEYS.items():
            raw = getattr(self, attr)
            try:
                object.__setattr__(self, attr, _rule_value(key, raw))
            except ValueError as exc:
                raise ConfigError(
                    f"alert rule {self.name!r}: {key} must be {exc}, got {raw!r}"
                ) from None
        if self.trigger and "bus" not in self.notify:
            raise ConfigError(
                f"alert rule {self.name!r}: trigger {self.trigger!r} starts its pipeline "
                'through the bus; add "bus" to notify'
            )

    @property
    def operator(self) -> str:
        return parse_condition(self.condition)[0]

    @property
    def threshold(self) -> float:
        return parse_condition(self.condition)[1]

    @property
    def topic(self) -> str:
        """The bus topic a firing publishes; a pipeline's `on` subscribes to it."""
        return f"alert:{self.name}"

    def holds(self, value: float) -> bool:
        """Whether `value` meets the condition (NaN never does)."""
        if math.isnan(value):  # NaN != 0 is true, yet "no value" must not fire an alert
            return False
        operator, threshold = parse_condition(self.condition)
        return _OPERATORS[operator](value, threshold)


# config.toml key -> AlertRule field.
_RULE_KEYS = {
    "name": "name",
    "metric": "metric",
    "condition": "condition",
    "every": "every",
    "for": "for_seconds",
    "severity": "severity",
    "notify": "notify",
    "trigger": "trigger",
    "cooldown": "cooldown_seconds",
}
_RULE_REQUIRED = ("name", "metric", "condition")


def _rule_value(key: str, raw: Any) -> Any:
    """The checked, normalised value of one rule key; ValueError says what it must be."""
    if key in ("every", "for", "cooldown"):
        ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
        if not ok or raw < 0 or (key == "every" and raw == 0):
            raise ValueError("a number of seconds > 0" if key == "every" else "seconds >= 0")
        return float(raw)
    if key == "notify":
        names = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"a list of notifier names ({', '.join(NOTIFIERS)})")
        cleaned = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
        unknown = [n for n in cleaned if n not in NOTIFIERS]
        if unknown:
            raise ValueError(f"notifiers among {', '.join(NOTIFIERS)} (unknown: {unknown})")
        return cleaned
    if key == "trigger" and raw in (None, ""):
        return None
    if key == "condition":
        parse_condition(raw)
        return raw.strip()
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("a non-empty string")
    text = raw.strip()
    if key == "name" and not _RULE_NAME.fullmatch(text):
        # The name becomes the bus topic `alert:<name>`, where * ? [ are patterns.
        raise ValueError("letters, digits, '_', '.' and '-'")
    return text


DEFAULT_ALERTS: tuple[AlertRule, ...] = (
    AlertRule(
        "dataset_drift",
        metric="drift.dataset",
        condition="> 0",
        every=10,
        for_seconds=11,
        severity="critical",
        notify=("log", "bus"),
        trigger="training",
        cooldown_seconds=3600,
    ),
    AlertRule(
        "accuracy_drop",
        metric="performance.accuracy",
        condition="< 0.6",
        every=60,
        for_seconds=300,
        notify=("log",),
    ),
    AlertRule(
        "deployment_rolled_back",
        metric="deployment.rolled_back",
        condition="> 0",
        severity="critical",
        notify=("log",),
    ),
)
"""The course's drift rule (dataset drift > 0, every 10 s, for 11 s) retrains; an
accuracy drop is logged; a deployment's automatic rollback fires at once (the
deployment controller sets `deployment.rolled_back`; add "bus" and a `trigger` to
start a pipeline on it). `[[alerts]]` rules add to these (see `with_default_alerts`)."""


def with_default_alerts(
    rules: tuple[AlertRule, ...], *, replace: bool = False, off: Collection[str] = ()
) -> tuple[AlertRule, ...]:
    """The rules in force: the defaults but those named in `off`, each replaced by a
    rule of its name, then the other rules in their order; only `rules` with `replace`.
    """
    named = {rule.name for rule in DEFAULT_ALERTS}
    unknown = sorted(set(off) - named)
    if unknown or (off and replace):
        why = "there are none with replace_default_alerts" if replace else (
            f"there is none named {unknown}; the defaults are {sorted(named)}"
        )
        raise ConfigError(f"enabled = false turns a default alert rule off, but {why}")
    if replace:
        return rules
    mine = {rule.name: rule for rule in rules}
    defaults = tuple(mine.get(r.name, r) for r in DEFAULT_ALERTS if r.name not in off)
    return defaults + tuple(rule for rule in rules if rule.name not in named)




def alert_rules(raw: Any, *, source: str) -> tuple[tuple[AlertRule, ...], frozenset[str]]:
    """The `[[alerts]]` tables as rules, and the names `enabled = false` turns off;
    errors name the rule's position and the key."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(
            f"alerts in {source} must be an array of tables: one [[alerts]] header per "
            f"rule, got {raw!r}"
        )
    if not raw:
        # It used to turn the default rules off; now it would silently keep them.
        raise ConfigError(
            f"alerts = [] in {source} adds no rule and does not turn the default rules off; "
            "to run without them, set replace_default_alerts = true in [monitoring]"
        )
    rules: list[AlertRule] = []
    off: dict[str, int] = {}
    for index, given in enumerate(raw, 1):
        table = dict(given)  # the caller's table is left as it was
        where = f"[[alerts]] rule {index}" + (
            f" ({table['name']!r})" if isinstance(table.get("name"), str) else ""
        )
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(
                f"key 'enabled' of {where} in {source} must be true or false, got {enabled!r}"
            )
        if not enabled:
            if set(table) != {"name"} or not isinstance(table["name"], str):
                raise ConfigError(
                    f"{where} in {source} has enabled = false, which turns off the default "
                    "rule it names: give it only a name"
                )
            if table["name"] in off:
                raise ConfigError(
                    f"{where} in {source} has the same name as rule {off[table['name']]}; "
                    "names must be unique"
                )
            off[table["name"]] = index
            continue
        unknown = [k for k in table if k not in _RULE_KEYS]
        if unknown:
            raise ConfigError(
                f"unknown key {unknown[0]!r} in {where} of {source}; "
                f"known keys: {', '.join([*_RULE_KEYS, 'enabled'])}"
            )
        missing = [k for k in _RULE_REQUIRED if k not in table]
        if missing:
            raise ConfigError(f"{where} of {source} lacks {', '.join(missing)}")
        checked: dict[str, Any] = {}
        for key, value in table.items():
            try:
                checked[_RULE_KEYS[key]] = _rule_value(key, value)
            except ValueError as exc:
                raise ConfigError(
                    f"key {key!r} of {where} in {source} must be {exc}, got {value!r}"
                ) from None
        try:
            rule = AlertRule(**checked)
        except ConfigError as exc:
            raise ConfigError(f"{where} in {source}: {exc}") from None
        twin = next((i for i, r in enumerate(rules, 1) if r.name == rule.name), None)
        twin = off.get(rule.name, twin)
        if twin is not None:
            raise ConfigError(
                f"{where} in {source} has the same name as rule {twin}; names must be unique"
            )
        rules.append(rule)
    clash = next((name for name in off if any(r.name == name for r in rules)), None)
    if clash is not None:
        raise ConfigError(
            f"[[alerts]] rule {off[clash]} ({clash!r}) in {source} has the same name as "
            "another rule; names must be unique"
        )
    return tuple(rules), frozenset(off)


def check_webhook(rules: tuple[AlertRule, ...], monitoring: Any) -> None:
    # Checked once every source is merged: the URL may come from the environment.
    for rule in rules:
        if "webhook" in rule.notify and not monitoring.webhook_url:
            raise ConfigError(
                f"alert rule {rule.name!r} notifies 'webhook' but monitoring.webhook_url "
                "is empty; set it in [monitoring] or LITEMLOPS_MONITORING_WEBHOOK_URL"
            )
