"""The demo's config sections ([demo], [training], [schedules]): read from the file, the
environment and overrides like the platform's own, and checked by the demo application."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops.config import Config
from litemlops.demo.settings import DemoConfig, SchedulesConfig, TrainingConfig
from litemlops.errors import ConfigError, LitemlopsError


def write_toml(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_sections_have_their_defaults_when_nothing_is_configured(tmp_path):
    config = Config.load(tmp_path / "home", env={})

    assert config.section("demo") == DemoConfig(drivers=20, hours=336, labels=2000, seed=42)
    assert config.section("training") == TrainingConfig()
    assert config.section("training").model_name == "driver_ranker"
    assert config.section("schedules") == SchedulesConfig(
        data="*/10 * * * *", training="0 3 * * *", batch_predictions="0 * * * *"
    )


def test_the_demo_gives_the_server_its_service_and_the_file_can_change_it(tmp_path):
    config = Config.load(tmp_path, env={})

    assert config.server.model == "driver_ranker@champion"
    assert config.server.entity == "driver_id"
    assert config.server.feature_refs() == [
        "driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:avg_daily_trips"
    ]
    write_toml(tmp_path, "[server]\nmodel = 'other@champion'\n")
    changed = Config.load(tmp_path, env={"LITEMLOPS_SERVER_ENTITY": "rider_id"})
    assert (changed.server.model, changed.server.entity) == ("other@champion", "rider_id")


def test_file_then_environment_then_overrides_take_precedence(tmp_path):
    home = tmp_path / "home"
    write_toml(
        home,
        "[demo]\ndrivers = 7\nhours = 10\nlabels = 30\n"
        "[logging]\nlevel = 'warning'\nconsole = false\n"
        "[features]\npush_lateness_seconds = 5\n",
    )
    env = {"LITEMLOPS_DEMO_HOURS": "11", "LITEMLOPS_DEMO_LABELS": "31"}

    config = Config.load(home, env=env, overrides={"demo.labels": 32})

    assert config.section("demo").drivers == 7  # file
    assert config.section("demo").hours == 11  # env over file
    assert config.section("demo").labels == 32  # overrides over env
    assert config.logging.level == "warning"
    assert config.logging.console is False
    assert config.features.push_lateness_seconds == 5.0
    assert isinstance(config.features.push_lateness_seconds, float)


def test_string_overrides_are_parsed_and_none_means_not_given(tmp_path):
    config = Config.load(tmp_path, env={}, overrides={"demo.seed": "7", "demo.drivers": None})

    assert config.section("demo").seed == 7
    assert config.section("demo").drivers == 20


def test_unknown_key_in_file_names_the_key_and_the_file(tmp_path):
    path = write_toml(tmp_path, "[demo]\ndriverz = 3\n")

    with pytest.raises(ConfigError, match=r"demo\.driverz") as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


def test_wrong_type_in_file_names_key_file_and_value(tmp_path):
    path = write_toml(tmp_path, "[demo]\ndrivers = 'many'\n")

    with pytest.raises(ConfigError, match=r"demo\.drivers.*'many'") as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["[demo]\ndrivers = true\n", "[demo]\ndrivers = 2.0\n"])
def test_booleans_and_floats_are_not_integers(tmp_path, text):
    write_toml(tmp_path, text)

    with pytest.raises(ConfigError, match=r"demo\.drivers"):
        Config.load(tmp_path, env={})


def test_unparseable_environment_value_names_the_variable_and_value(tmp_path):
    with pytest.raises(ConfigError, match=r"demo\.drivers.*LITEMLOPS_DEMO_DRIVERS.*'five'"):
        Config.load(tmp_path, env={"LITEMLOPS_DEMO_DRIVERS": "five"})


def test_other_litemlops_environment_variables_are_ignored(tmp_path):
    config = Config.load(tmp_path, env={"LITEMLOPS_TOKEN": "x", "LITEMLOPS_DEMO_NOPE": "1"})

    assert config.section("demo") == DemoConfig()


def test_config_error_is_a_value_error_and_a_litemlops_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"demo\.drivers from LITEMLOPS_DEMO_DRIVERS must be an integer"
    ) as info:
        Config.load(tmp_path, env={"LITEMLOPS_DEMO_DRIVERS": "x"})

    assert isinstance(info.value, LitemlopsError)


def test_the_gate_follows_the_estimator_kind_by_default_with_thresholds_for_each(tmp_path):
    training = Config.load(tmp_path, env={}).section("training")
    assert (training.gate_metric, training.min_auc, training.max_rmse, training.min_r2) == (
        "auto", 0.55, 0.5, 0.0)
    env = {"LITEMLOPS_TRAINING_MIN_R2": "-0.5", "LITEMLOPS_TRAINING_GATE_METRIC": "r2"}
    changed = Config.load(tmp_path, env=env).section("training")
    assert (changed.min_r2, changed.gate_metric) == (-0.5, "r2")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("training.test_size", "1.5", "a number between 0 and 1"),
        ("training.promote", "always", "one of challenger, auto"),
        ("training.gate_metric", "f1", "one of auto, auc, accuracy, log_loss, rmse, mae, r2"),
        ("training.min_r2", "1.5", "a number <= 1"),
        ("training.estimator", "svm", "one of logistic_regression, random_forest"),
        ("training.max_rmse", "-1", "a number >= 0"),
        ("training.min_auc", "1.5", "a number between 0 and 1"),
        ("training.hyperparams", "{nope", "a JSON object"),
        ("training.hyperparams", "[1, 2]", "a JSON object"),
        ("training.tolerance", "-0.1", "a number >= 0"),
    ],
)
def test_training_settings_are_checked_when_loaded(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=f"config key {key} from overrides must be {message}"):
        Config.load(tmp_path, env={}, overrides={key: value})



@pytest.mark.parametrize(
    ("key", "value"),
    [("demo.drivers", -1), ("demo.hours", 0), ("demo.labels", -5), ("demo.seed", -1)],
)
def test_negative_demo_counts_are_rejected(tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"{key}.*overrides.*{value!r}"):
        Config.load(tmp_path, env={}, overrides={key: value})


def test_an_unknown_demo_override_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"demo\.nope"):
        Config.load(tmp_path, env={}, overrides={"demo.nope": 1})


def test_the_demo_sections_are_frozen(tmp_path):
    config = Config.load(tmp_path, env={})

    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'drivers'"):
        config.section("demo").drivers = 3


def test_a_demo_section_without_the_demo_application_is_an_unknown_section(tmp_path):
    write_toml(tmp_path, "applications = []\n[demo]\ndrivers = 3\n")

    with pytest.raises(ConfigError, match=r"unknown section \[demo\].*named in `applications`"):
        Config.load(tmp_path, env={})
    with pytest.raises(ConfigError, match=r"unknown config key 'training\.seed'"):
        Config.load(tmp_path / "b", env={}, overrides={"applications": "", "training.seed": 1})


@given(drivers=st.integers(min_value=-10**6, max_value=10**6))
def test_demo_drivers_from_the_environment_are_taken_exactly_when_positive(drivers):
    env = {"LITEMLOPS_DEMO_DRIVERS": f" {drivers} "}
    if drivers >= 1:
        assert Config.load("/nonexistent/home", env=env).section("demo").drivers == drivers
    else:
        with pytest.raises(ConfigError, match=r"demo\.drivers .* must be an integer >= 1"):
            Config.load("/nonexistent/home", env=env)
