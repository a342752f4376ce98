"""Alert rules as config.toml's `[[alerts]]` tables give them: conditions, checks of each
key, defaults turned off or replaced, and the errors that name what was wrong."""

from __future__ import annotations

import dataclasses
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops.alert_rules import (
    DEFAULT_ALERTS,
    AlertRule,
    alert_rules,
    parse_condition,
    with_default_alerts,
)
from litemlops.errors import ConfigError

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
             "==": operator.eq, "!=": operator.ne}  # fmt: skip
numbers = st.sampled_from([-1.5, 0.0, 0.5, 1.0, 2.0])


@given(op=st.sampled_from(sorted(OPERATORS)), threshold=numbers, value=numbers)
def test_a_condition_holds_exactly_when_its_operator_says(op, threshold, value):
    rule = AlertRule("r", "m", f"{op} {threshold}")

    assert rule.holds(value) is OPERATORS[op](value, threshold)


@pytest.mark.parametrize("text", ["> inf", "> nan", "< 1e999", "> -inf", "~ 1", "> ", "1"])
def test_a_condition_needs_an_operator_and_a_finite_number(text):
    with pytest.raises(ValueError, match="a finite number"):
        parse_condition(text)


def test_a_rule_cannot_be_changed_once_made_and_has_no_cooldown_by_default():
    rule = AlertRule("r", "m", "> 0")

    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'condition'"):
        rule.condition = "< 0"  # type: ignore[misc]
    assert rule.cooldown_seconds == 0.0


def test_metric_and_severity_may_hold_any_text_and_only_names_are_restricted():
    rule = AlertRule("r", "quality.my feature.null_rate", "> 0", severity="page me now")

    assert (rule.metric, rule.severity) == ("quality.my feature.null_rate", "page me now")
    with pytest.raises(ConfigError, match="name"):
        AlertRule("my rule", "m", "> 0")


def test_the_defaults_stay_unless_replaced():
    mine = (AlertRule("mine", "m", "> 0"),)

    assert with_default_alerts(mine) == (*DEFAULT_ALERTS, *mine)
    assert with_default_alerts(mine, replace=True) == mine


def test_alerts_must_be_an_array_of_tables():
    with pytest.raises(ConfigError, match="must be an array of tables"):
        alert_rules([1, 2], source="config.toml")


def test_turning_a_default_off_takes_only_its_name():
    with pytest.raises(ConfigError, match="give it only a name"):
        alert_rules([{"enabled": False}], source="config.toml")


def test_the_first_unknown_key_is_named():
    table = {"name": "r", "metric": "m", "condition": "> 0", "colour": "red", "size": 3}

    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        alert_rules([table], source="config.toml")


def test_rule_names_are_unique_and_told_apart_by_value():
    def table(name):  # each call a new string: names are compared by value, not identity
        return {"name": name[:1] + name[1:], "metric": "m", "condition": "> 0"}

    rules, off = alert_rules([table("a"), table("b")], source="config.toml")
    assert [r.name for r in rules] == ["a", "b"] and off == frozenset()
    with pytest.raises(ConfigError, match="same name as rule 1"):
        alert_rules([table("twin"), table("twin")], source="config.toml")
    turned_off = [table("a"), {"name": "accuracy_drop", "enabled": False}]
    assert alert_rules(turned_off, source="config.toml")[1] == {"accuracy_drop"}
    with pytest.raises(ConfigError, match="same name as rule 1"):
        alert_rules([{"name": "b", "enabled": False}, table("b")], source="config.toml")
    with pytest.raises(ConfigError, match="same name as another rule"):
        alert_rules([table("b"), {"name": "b", "enabled": False}], source="config.toml")


def test_an_empty_trigger_is_no_trigger_whatever_string_object_names_the_key():
    key = "trig" + "ger"[:3]  # as a parser makes it: a new string, not the literal
    table = {"name": "r", "metric": "m", "condition": "> 0", key: ""}

    rules, _ = alert_rules([table], source="config.toml")

    assert rules[0].trigger is None
