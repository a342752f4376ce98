import dataclasses
import stat
from pathlib import Path

import pytest

from litemlops.config import (
    DEFAULT_ALERTS,
    AlertRule,
    Config,
    FeaturesConfig,
    HistoryConfig,
    LoggingConfig,
    MonitoringConfig,
)
from litemlops.errors import ConfigError, LitemlopsError


def write_toml(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_apply_when_nothing_is_configured(tmp_path):
    config = Config.load(tmp_path / "home", env={})

    assert config.logging == LoggingConfig(level="info", max_bytes=10_000_000, backups=5)
    assert config.history == HistoryConfig(keep_days=90.0, max_bytes=5_000_000_000)
    assert config.history_dir == config.logs_dir / "history"
    assert config.features == FeaturesConfig(push_lateness_seconds=600.0)
    assert config.applications == ("demo",)


def test_loading_does_not_create_the_home(tmp_path):
    Config.load(tmp_path / "home", env={})

    assert not (tmp_path / "home").exists()


def test_home_argument_wins_over_environment(tmp_path):
    config = Config.load(tmp_path / "flag", env={"LITEMLOPS_HOME": str(tmp_path / "env")})

    assert config.home == tmp_path / "flag"


def test_home_comes_from_environment_without_argument(tmp_path):
    config = Config.load(env={"LITEMLOPS_HOME": str(tmp_path / "env")})

    assert config.home == tmp_path / "env"


def test_home_defaults_to_dot_litemlops_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    config = Config.load(env={})

    assert config.home == tmp_path / ".litemlops"
    assert config.home.is_absolute()


def test_relative_home_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    config = Config.load("rel/home", env={})

    assert config.home == tmp_path / "rel" / "home"


def test_environment_values_are_parsed_to_the_field_types(tmp_path):
    env = {
        "LITEMLOPS_LOGGING_LEVEL": "DEBUG",
        "LITEMLOPS_LOGGING_MAX_BYTES": " 1000 ",
        "LITEMLOPS_LOGGING_CONSOLE": "off",
        "LITEMLOPS_FEATURES_PUSH_LATENESS_SECONDS": "2.5",
        "LITEMLOPS_PIPELINES_KEEP_RUN_FOLDERS": "5",
    }

    config = Config.load(tmp_path, env=env)

    assert config.logging.level == "debug"
    assert config.logging.max_bytes == 1000
    assert config.logging.console is False
    assert config.features.push_lateness_seconds == 2.5
    assert config.pipelines.keep_run_folders == 5


def test_unknown_section_in_file_names_the_section_and_the_file(tmp_path):
    path = write_toml(tmp_path, "[alerting]\nx = 1\n")

    with pytest.raises(ConfigError, match=r"unknown section \[alerting\]") as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


def test_invalid_toml_names_the_file(tmp_path):
    path = write_toml(tmp_path, "[demo\n")

    with pytest.raises(ConfigError, match="not valid TOML") as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("logging.backups", -1),
        ("logging.max_bytes", -1),
        ("history.keep_days", -1.0),
        ("history.keep_days", float("inf")),
        ("history.max_bytes", -1),
        ("features.push_lateness_seconds", -0.5),
        ("features.push_lateness_seconds", float("nan")),
    ],
)
def test_negative_counts_are_rejected(tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"{key}.*overrides.*{value!r}"):
        Config.load(tmp_path, env={}, overrides={key: value})


def test_history_retention_comes_from_its_section(tmp_path):
    write_toml(tmp_path, "[history]\nkeep_days = 7\nmax_bytes = 1_000_000\n")

    config = Config.load(tmp_path, env={"LITEMLOPS_HISTORY_KEEP_DAYS": "3.5"})

    assert config.history == HistoryConfig(keep_days=3.5, max_bytes=1_000_000)
    with pytest.raises(ConfigError, match=r"history\.max_bytes.*an integer.*'5 GB'"):
        Config.load(tmp_path, env={"LITEMLOPS_HISTORY_MAX_BYTES": "5 GB"})


def test_unknown_log_level_is_rejected_naming_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"logging\.level.*LITEMLOPS_LOGGING_LEVEL.*'loud'"):
        Config.load(tmp_path, env={"LITEMLOPS_LOGGING_LEVEL": "loud"})


@pytest.mark.parametrize("key", ["logging.nope", "nope.level", "level"])
def test_unknown_override_key_is_rejected(tmp_path, key):
    with pytest.raises(ConfigError, match=key):
        Config.load(tmp_path, env={}, overrides={key: 1})


def test_config_is_frozen(tmp_path):
    config = Config.load(tmp_path, env={})

    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'home'"):
        config.home = tmp_path / "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'level'"):
        config.logging.level = "debug"  # type: ignore[misc]


def test_paths_live_in_the_home(tmp_path):
    config = Config.load(tmp_path, env={})

    assert config.features_path == tmp_path / "features.duckdb"
    assert config.online_path == tmp_path / "features.online.db"
    assert config.registry_path == tmp_path / "registry.db"
    assert config.artifacts_dir == tmp_path / "artifacts"
    assert config.logs_dir == tmp_path / "logs"
    assert config.events_log_path == tmp_path / "logs" / "events.jsonl"
    assert config.runs_dir == tmp_path / "runs"
    assert config.token_path == tmp_path / "token"
    assert config.lock_path == tmp_path / "lock"
    assert config.config_path == tmp_path / "config.toml"


def test_ensure_home_creates_a_private_home_and_its_directories(tmp_path):
    config = Config.load(tmp_path / "a" / "home", env={})

    config.ensure_home()
    config.ensure_home()  # twice is fine

    assert stat.S_IMODE(config.home.stat().st_mode) == 0o700
    for directory in (config.logs_dir, config.artifacts_dir, config.runs_dir):
        assert directory.is_dir()


def test_ensure_home_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "home").write_text("not a directory")
    config = Config.load(tmp_path / "home", env={})

    with pytest.raises(ConfigError, match="not a directory"):
        config.ensure_home()


def test_pipeline_modules_are_relative_to_the_home(tmp_path):
    config = Config.load(tmp_path, env={"LITEMLOPS_PIPELINES_MODULES": "a.py, sub/b.py,"})
    assert config.pipelines.module_paths(config.home) == [tmp_path / "a.py", tmp_path / "sub/b.py"]


def test_monitoring_defaults_and_the_default_alert_rules(tmp_path):
    config = Config.load(tmp_path, env={})

    assert config.monitoring == MonitoringConfig(
        window_events=1000, window_seconds=0.0, interval_seconds=60.0, ks_pvalue=0.05,
        psi=0.2, wasserstein=0.1, chi2_pvalue=0.05, js=0.1, dataset_share=0.5,
        sample_cap=5000, webhook_url="", webhook_timeout=2.0,
    )
    assert config.alerts == DEFAULT_ALERTS
    drift, accuracy, rolled_back = config.alerts
    assert (drift.name, drift.metric, drift.condition) == ("dataset_drift", "drift.dataset", "> 0")
    assert (drift.every, drift.for_seconds, drift.cooldown_seconds) == (10, 11, 3600)
    assert (drift.notify, drift.trigger, drift.topic) == (
        ("log", "bus"), "training", "alert:dataset_drift")
    assert (accuracy.name, accuracy.metric, accuracy.condition) == (
        "accuracy_drop", "performance.accuracy", "< 0.6")
    assert (rolled_back.metric, rolled_back.condition, rolled_back.for_seconds) == (
        "deployment.rolled_back", "> 0", 0.0)
    assert (accuracy.every, accuracy.for_seconds, accuracy.notify) == (60, 300, ("log",))
    assert accuracy.trigger is None


def test_monitoring_settings_come_from_the_file_and_the_environment(tmp_path):
    write_toml(tmp_path, "[monitoring]\nwindow_events = 50\npsi = 0.3\n")
    env = {"LITEMLOPS_MONITORING_WINDOW_SECONDS": "3600",
           "LITEMLOPS_MONITORING_WEBHOOK_URL": "http://127.0.0.1:9093/api/v2/alerts"}

    config = Config.load(tmp_path, env=env)

    assert config.monitoring.window_events == 50
    assert config.monitoring.psi == 0.3
    assert config.monitoring.window_seconds == 3600.0
    assert config.monitoring.webhook_url.startswith("http://127.0.0.1:9093")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("monitoring.window_events", "0", "an integer >= 1"),
        ("monitoring.window_seconds", "-1", "a number >= 0"),
        ("monitoring.interval_seconds", "0", "a number > 0"),
        ("monitoring.ks_pvalue", "1.5", "a number between 0 and 1"),
        ("monitoring.chi2_pvalue", "0", "a number between 0 and 1"),
        ("monitoring.psi", "-0.2", "a number >= 0"),
        ("monitoring.js", "2", "a number between 0 and 1"),
        ("monitoring.dataset_share", "0", "a number > 0 and <= 1"),
        ("monitoring.sample_cap", "0", "an integer >= 1"),
        ("monitoring.webhook_url", "file:///etc/passwd", "empty or an http:// or https:// URL"),
        ("monitoring.webhook_timeout", "0", "a number > 0"),
    ],
)
def test_monitoring_settings_are_checked_when_loaded(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=f"config key {key} from overrides must be {message}"):
        Config.load(tmp_path, env={}, overrides={key: value})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("server.header_timeout_seconds", "0", "a number > 0"),
        ("server.body_timeout_seconds", "-1", "a number > 0"),
        ("server.keep_alive_seconds", "nan", "a finite number"),
    ],
)
def test_server_timeouts_must_be_positive(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=f"config key {key} from overrides must be {message}"):
        Config.load(tmp_path, env={}, overrides={key: value})


ALERTS = """
[[alerts]]
name = "drift"
metric = "drift.dataset"
condition = "> 0"
every = 10
for = 11
severity = "critical"
notify = ["log", "bus", "webhook"]
trigger = "training"
cooldown = 3600

[[alerts]]
name = "auc_drop"
metric = "performance.auc"
condition = "<= 0.7"

[monitoring]
webhook_url = "https://alerts.example.com/api/v2/alerts"
"""


def test_alert_rules_are_read_from_an_array_of_tables(tmp_path):
    write_toml(tmp_path, ALERTS)

    *defaults, drift, auc = Config.load(tmp_path, env={}).alerts

    assert tuple(defaults) == DEFAULT_ALERTS

    assert drift == AlertRule(
        name="drift", metric="drift.dataset", condition="> 0", every=10.0, for_seconds=11.0,
        severity="critical", notify=("log", "bus", "webhook"), trigger="training",
        cooldown_seconds=3600.0,
    )
    assert (auc.operator, auc.threshold) == ("<=", 0.7)
    assert (auc.every, auc.for_seconds, auc.severity, auc.notify, auc.trigger) == (
        60.0, 0.0, "warning", ("log",), None)
    assert auc.holds(0.7) and not auc.holds(0.71) and not auc.holds(float("nan"))


def test_an_extra_alert_rule_adds_to_the_defaults_and_keeps_the_drift_rule(tmp_path):
    write_toml(tmp_path, '[[alerts]]\nname = "latency"\nmetric = "m"\ncondition = "> 1"\n')

    rules = Config.load(tmp_path, env={}).alerts

    assert [r.name for r in rules] == [
        "dataset_drift", "accuracy_drop", "deployment_rolled_back", "latency"
    ]  # fmt: skip
    assert rules[:3] == DEFAULT_ALERTS and rules[0].trigger == "training"


def test_a_rule_named_like_a_default_replaces_that_default_in_its_place(tmp_path):
    write_toml(
        tmp_path,
        '[[alerts]]\nname = "extra"\nmetric = "m"\ncondition = "> 1"\n'
        '[[alerts]]\nname = "accuracy_drop"\nmetric = "performance.accuracy"\n'
        'condition = "< 0.8"\n',
    )

    rules = Config.load(tmp_path, env={}).alerts

    assert [r.name for r in rules] == [
        "dataset_drift", "accuracy_drop", "deployment_rolled_back", "extra"
    ]  # fmt: skip
    assert rules[0] == DEFAULT_ALERTS[0]
    assert (rules[1].threshold, rules[1].for_seconds) == (0.8, 0.0)


@pytest.mark.parametrize("where", ["file", "env"])
def test_replace_default_alerts_makes_the_files_rules_the_only_ones(tmp_path, where):
    rule = '[[alerts]]\nname = "only"\nmetric = "m"\ncondition = "> 1"\n'
    if where == "file":
        write_toml(tmp_path, "[monitoring]\nreplace_default_alerts = true\n" + rule)
        env = {}
    else:
        write_toml(tmp_path, rule)
        env = {"LITEMLOPS_MONITORING_REPLACE_DEFAULT_ALERTS": "true"}

    assert [r.name for r in Config.load(tmp_path, env=env).alerts] == ["only"]
    write_toml(tmp_path, "[monitoring]\nreplace_default_alerts = true\n")
    assert Config.load(tmp_path, env={}).alerts == ()
    write_toml(tmp_path, "")
    assert Config.load(tmp_path, env={}).alerts == DEFAULT_ALERTS


def test_enabled_false_turns_one_default_rule_off_and_keeps_the_others(tmp_path):
    off = '[[alerts]]\nname = "accuracy_drop"\nenabled = false\n'
    extra = '[[alerts]]\nname = "x"\nmetric = "m"\ncondition = "> 1"\nenabled = true\n'
    write_toml(tmp_path, off + extra)
    assert [r.name for r in Config.load(tmp_path, env={}).alerts] == [
        "dataset_drift", "deployment_rolled_back", "x"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[alerts]]\nname = "nope"\nenabled = false\n',
         r"there is none named \['nope'\]; the defaults are \['accuracy_drop', 'dataset_drift', "
         r"'deployment_rolled_back'\]"),
        ('[[alerts]]\nname = "accuracy_drop"\nenabled = false\nmetric = "m"\n',
         "has enabled = false, which turns off the default rule it names: give it only a name"),
        ('[[alerts]]\nname = "accuracy_drop"\nenabled = "no"\n',
         "key 'enabled' of .* must be true or false, got 'no'"),
        ('[monitoring]\nreplace_default_alerts = true\n'
         '[[alerts]]\nname = "accuracy_drop"\nenabled = false\n',
         "there are none with replace_default_alerts"),
        ('[[alerts]]\nname = "accuracy_drop"\nenabled = false\n'
         '[[alerts]]\nname = "accuracy_drop"\nmetric = "m"\ncondition = "> 1"\n',
         r"rule 2 \('accuracy_drop'\) .* same name as rule 1"),
        ('[[alerts]]\nname = "accuracy_drop"\nmetric = "m"\ncondition = "> 1"\n'
         '[[alerts]]\nname = "accuracy_drop"\nenabled = false\n',
         r"rule 2 \('accuracy_drop'\) .* same name as another rule"),
        ('[[alerts]]\nname = "accuracy_drop"\nenabled = false\n' * 2,
         r"rule 2 \('accuracy_drop'\) in .* has the same name as rule 1; names must be unique"),
    ],
)
def test_turning_a_rule_off_is_checked(tmp_path, text, message):
    write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        Config.load(tmp_path, env={})


def test_a_misspelt_replace_key_or_an_empty_alerts_array_is_refused(tmp_path):
    write_toml(tmp_path, "[monitoring]\nreplace_default_alert = true\n")
    with pytest.raises(ConfigError, match=r"unknown config key monitoring\.replace_default_alert "):
        Config.load(tmp_path, env={})
    write_toml(tmp_path, "[monitoring]\nreplace_default_alerts = 1\n")
    with pytest.raises(ConfigError, match=r"replace_default_alerts .* must be true or false"):
        Config.load(tmp_path, env={})
    write_toml(tmp_path, "alerts = []\n")
    with pytest.raises(ConfigError, match="set replace_default_alerts = true in \\[monitoring\\]"):
        Config.load(tmp_path, env={})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("nmae", '"x"', r"unknown key 'nmae' in \[\[alerts\]\] rule 2 \('b'\)"),
        ("condition", '"above 0"', r"key 'condition' of \[\[alerts\]\] rule 2 \('b'\).*"
         r"must be an operator .* got 'above 0'"),
        ("condition", '">> 1"', r"key 'condition' of \[\[alerts\]\] rule 2"),
        ("condition", "0", r"key 'condition' .* must be an operator"),
        ("for", "-1", r"key 'for' of \[\[alerts\]\] rule 2 \('b'\).*seconds >= 0, got -1"),
        ("cooldown", "-5", r"key 'cooldown' of \[\[alerts\]\] rule 2.*seconds >= 0, got -5"),
        ("every", "0", r"key 'every' of \[\[alerts\]\] rule 2.*seconds > 0, got 0"),
        ("every", "true", r"key 'every' of \[\[alerts\]\] rule 2.*got True"),
        ("for", "'long'", r"key 'for' .* got 'long'"),
        ("notify", '["log", "email"]', r"key 'notify' of \[\[alerts\]\] rule 2.*"
         r"notifiers among log, webhook, bus \(unknown: \['email'\]\)"),
        ("notify", "[1]", r"key 'notify' .* a list of notifier names"),
        ("severity", '""', r"key 'severity' .* a non-empty string"),
        ("trigger", '"training"', r"rule 2 \('b'\).*trigger 'training'.*add \"bus\" to notify"),
    ],
)
def test_bad_alert_rules_name_the_rule_and_the_key(tmp_path, key, value, message):
    second = {"name": '"b"', "metric": '"m"', "condition": '"> 0"', key: value}
    path = write_toml(
        tmp_path,
        '[[alerts]]\nname = "a"\nmetric = "m"\ncondition = "> 0"\n[[alerts]]\n'
        + "".join(f"{k} = {v}\n" for k, v in second.items()),
    )

    with pytest.raises(ConfigError, match=message) as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[alerts]]\nname = "a"\nmetric = "m"\n', r"rule 1 \('a'\) .* lacks condition"),
        ('[[alerts]]\nmetric = "m"\ncondition = "> 1"\n', r"rule 1 of .* lacks name"),
        ('[[alerts]]\nname = "a b"\nmetric = "m"\ncondition = "> 1"\n',
         r"key 'name' .* letters, digits"),
        ('[[alerts]]\nname = "a"\nmetric = ""\ncondition = "> 1"\n',
         r"key 'metric' .* a non-empty string"),
        ('[[alerts]]\nname = "a"\nmetric = "m"\ncondition = "> 1"\n' * 2,
         r"rule 2 \('a'\) in .* same name as rule 1"),
        ('[alerts]\nname = "a"\n', r"alerts in .* must be an array of tables"),
        ('alerts = "drift > 0"\n', r"alerts in .* must be an array of tables"),
    ],
)
def test_incomplete_or_misshapen_alert_rules_are_refused(tmp_path, text, message):
    write_toml(tmp_path, text)

    with pytest.raises(ConfigError, match=message):
        Config.load(tmp_path, env={})


def test_a_webhook_rule_needs_a_webhook_url_from_any_source(tmp_path):
    write_toml(
        tmp_path,
        '[[alerts]]\nname = "a"\nmetric = "m"\ncondition = "> 1"\nnotify = "log,webhook"\n',
    )

    with pytest.raises(ConfigError, match=r"'a' notifies 'webhook' but monitoring\.webhook_url"):
        Config.load(tmp_path, env={})
    env = {"LITEMLOPS_MONITORING_WEBHOOK_URL": "http://127.0.0.1:9093/api/v2/alerts"}
    assert Config.load(tmp_path, env=env).alerts[-1].notify == ("log", "webhook")


def test_alert_rules_made_in_python_are_checked_too():
    with pytest.raises(ConfigError, match="alert rule 'x': for must be seconds >= 0, got -1"):
        AlertRule("x", "m", "> 1", for_seconds=-1)
    with pytest.raises(ConfigError, match="alert rule 'x': condition must be an operator"):
        AlertRule("x", "m", "1 <")
    assert AlertRule("x", "m", " >=2 ").condition == ">=2"



def test_platform_file_then_environment_then_overrides_take_precedence(tmp_path):
    home = tmp_path / "home"
    write_toml(
        home,
        "[history]\nkeep_days = 7\n[logging]\nmax_bytes = 10\nbackups = 3\nconsole = false\n",
    )
    env = {"LITEMLOPS_LOGGING_MAX_BYTES": "11", "LITEMLOPS_LOGGING_BACKUPS": "4"}

    config = Config.load(home, env=env, overrides={"logging.backups": 5})

    assert config.history.keep_days == 7.0  # file
    assert config.logging.max_bytes == 11  # env over file
    assert config.logging.backups == 5  # overrides over env
    assert config.logging.console is False


def test_platform_string_overrides_are_parsed_and_none_means_not_given(tmp_path):
    config = Config.load(
        tmp_path, env={}, overrides={"logging.backups": "7", "logging.max_bytes": None}
    )

    assert config.logging.backups == 7
    assert config.logging.max_bytes == 10_000_000


def test_unknown_platform_key_in_file_names_the_key_and_the_file(tmp_path):
    path = write_toml(tmp_path, "[logging]\nlevle = 'info'\n")

    with pytest.raises(ConfigError, match=r"logging\.levle") as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text", ["[logging]\nbackups = true\n", "[logging]\nbackups = 2.0\n",
             "[logging]\nbackups = 'many'\n"],
)
def test_platform_values_of_the_wrong_type_are_refused(tmp_path, text):
    path = write_toml(tmp_path, text)

    with pytest.raises(ConfigError, match=r"logging\.backups .* must be an integer") as info:
        Config.load(tmp_path, env={})

    assert str(path) in str(info.value)


def test_unparseable_platform_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"logging\.backups.*LITEMLOPS_LOGGING_BACKUPS.*'x'"):
        Config.load(tmp_path, env={"LITEMLOPS_LOGGING_BACKUPS": "x"})


def test_platform_config_error_is_a_value_error_and_a_litemlops_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"server\.port from LITEMLOPS_SERVER_PORT must be an integer"
    ) as info:
        Config.load(tmp_path, env={"LITEMLOPS_SERVER_PORT": "x"})

    assert isinstance(info.value, LitemlopsError)


def test_unknown_litemlops_environment_variables_are_ignored(tmp_path):
    config = Config.load(tmp_path, env={"LITEMLOPS_TOKEN": "x", "LITEMLOPS_LOGGING_NOPE": "1"})

    assert config.logging == LoggingConfig()


def test_deployment_tables_are_kept_by_name_for_run_to_start(tmp_path):
    import json

    write_toml(
        tmp_path,
        '[deployments.first-canary]\nstrategy = "canary"\nchallenger = 2\nsteps = [10, 100]\n'
        "[deployments.first-canary.checks]\nmin_requests = 20\n",
    )

    [(name, text)] = Config.load(tmp_path, env={}).deployments

    assert name == "first-canary"
    assert json.loads(text) == {
        "strategy": "canary", "challenger": 2, "steps": [10, 100], "checks": {"min_requests": 20}
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[deployments]\nstrategy = "canary"\n', r"\[deployments.strategy\] needs a table"),
        ('[deployments."bad name"]\nstrategy = "ab"\n', "deployment name 'bad name'"),
        ('[deployments.x]\nchallenger = 2\n', r"\[deployments.x\] needs a table with a strategy"),
        ('[deployments.x]\nstrategy = "ab"\nname = "y"\n', "named by its table"),
    ],
)
def test_malformed_deployment_tables_are_config_errors(tmp_path, text, message):
    write_toml(tmp_path, text)

    with pytest.raises(ConfigError, match=message):
        Config.load(tmp_path, env={})
