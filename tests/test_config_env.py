"""Config environments: `[env.<name>]` overlays chosen by --env / LITEMLOPS_ENV."""

import json
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops.cli.main import cli
from litemlops.config import DEFAULT_ALERTS, Config
from litemlops.errors import ConfigError

PROJECT = """
[server]
port = 8100

[monitoring]
psi = 0.3

[env.dev]
home = "homes/dev"

[env.prod]
home = "homes/prod"

[env.prod.server]
port = 9000
token = "prod-secret"

[env.prod.monitoring]
webhook_url = "https://user:pass@hooks.example.com/secret-path?key=1"

[[env.prod.alerts]]
name = "accuracy_drop"
metric = "accuracy"
condition = "< 0.8"

[[env.prod.alerts]]
name = "dataset_drift"
enabled = false

[env.prod.deployments.try-forest]
strategy = "shadow"
challenger = "driver_ranker@challenger"
"""


def project(tmp_path, text=PROJECT):
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return folder


def test_an_environment_overlays_the_file_and_names_its_own_home(tmp_path):
    folder = project(tmp_path)

    base = Config.load(folder, env={})
    prod = Config.load(folder, env={}, environment="prod")
    dev = Config.load(folder, env={"LITEMLOPS_ENV": "dev"})

    assert (base.home, base.environment, base.server.port) == (folder, None, 8100)
    assert (prod.home, prod.environment, prod.server.port) == (folder / "homes/prod", "prod", 9000)
    assert (dev.home, dev.server.port) == (folder / "homes/dev", 8100)
    assert prod.config_path == dev.config_path == folder / "config.toml"
    assert prod.monitoring.psi == 0.3  # the file's value where the environment sets none
    assert prod.registry_path == folder / "homes/prod/registry.db"
    # Rules: the environment's replaces the default of its name, and turns one off.
    names = [rule.name for rule in prod.alerts]
    assert "dataset_drift" not in names and "dataset_drift" in [r.name for r in base.alerts]
    accuracy = next(rule for rule in prod.alerts if rule.name == "accuracy_drop")
    assert accuracy.threshold == 0.8
    assert base.alerts == DEFAULT_ALERTS
    assert [name for name, _ in prod.deployments] == ["try-forest"]
    assert base.deployments == ()
    assert pickle.loads(pickle.dumps(prod)) == prod  # crosses to worker processes


def test_an_absolute_home_is_kept_as_given(tmp_path):
    elsewhere = tmp_path / "srv" / "prod"
    folder = project(tmp_path, f'[env.prod]\nhome = "{elsewhere}"\n')

    assert Config.load(folder, env={}, environment="prod").home == elsewhere


def test_an_unknown_environment_is_refused_naming_where_it_was_chosen(tmp_path):
    folder = project(tmp_path)

    with pytest.raises(ConfigError, match=r"unknown environment 'prdo' \(from --env\); "
                       r"environments: dev, prod"):  # fmt: skip
        Config.load(folder, env={}, environment="prdo")
    with pytest.raises(ConfigError, match=r"'staging' \(from LITEMLOPS_ENV\)"):
        Config.load(folder, env={"LITEMLOPS_ENV": "staging"})
    with pytest.raises(ConfigError, match=r"has no \[env.<name>\] table"):
        Config.load(project(tmp_path, "[server]\nport = 1\n"), env={}, environment="dev")
    with pytest.raises(ConfigError, match="one table per environment"):
        Config.load(project(tmp_path, "env = 3\n"), env={})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[env.prod.server]\nprot = 1\n", r"unknown config key server.prot in .*\[env.prod\]"),
        ("[env.prod.sever]\nport = 1\n", r"unknown section \[sever\] in .*\[env.prod\]"),
        ("[env.prod.server]\nport = 'x'\n", r"server.port .*\[env.prod\]"),
        ("[env.prod]\napplications = []\n", r"cannot set 'applications'"),
        ("[env.prod]\nhome = 3\n", r"home of \[env.prod\] .* must be a path"),
        ("[env.'9x']\nhome = 'a'\n", r"environment name '9x'"),
    ],
)
def test_a_mistake_in_any_environment_fails_every_load_naming_it(tmp_path, table, message):
    # Checked even when another environment (or none) is chosen: a typo in prod's
    # table fails in dev, before it reaches prod.
    folder = project(tmp_path, "[env.dev]\nhome = 'd'\n" + table)

    with pytest.raises(ConfigError, match=message):
        Config.load(folder, env={})
    with pytest.raises(ConfigError, match=message):
        Config.load(folder, env={}, environment="dev")


_LAYERS = ("file", "environment", "variable", "flag")


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.sampled_from(_LAYERS), unique=True))
def test_each_value_comes_from_the_highest_layer_that_sets_it_and_says_so(tmp_path_factory, set_by):
    folder = tmp_path_factory.mktemp("layers")
    ports = {layer: 1000 + i for i, layer in enumerate(_LAYERS)}
    text = "".join([
        f"[server]\nport = {ports['file']}\n" if "file" in set_by else "",
        "[env.qa.server]\n" + (f"port = {ports['environment']}\n" if "environment" in set_by
                               else "host = '127.0.0.1'\n"),
    ])  # fmt: skip
    (folder / "config.toml").write_text(text)
    env = {"LITEMLOPS_SERVER_PORT": str(ports["variable"])} if "variable" in set_by else {}
    flags = {"server.port": ports["flag"] if "flag" in set_by else None}

    config = Config.load(folder, env=env, overrides=flags, environment="qa")

    top = max(set_by, key=_LAYERS.index, default=None)
    assert config.server.port == (ports[top] if top else 8000)
    origin = dict(config.origins).get("server.port", "default")
    assert origin == {
        None: "default",
        "file": str(folder / "config.toml"),
        "environment": f"{folder / 'config.toml'} [env.qa]",
        "variable": "LITEMLOPS_SERVER_PORT",
        "flag": "a flag",
    }[top]


def invoke(args, env=None):
    return CliRunner().invoke(cli, args, env={"LITEMLOPS_ENV": "", **(env or {})})


def test_config_show_prints_each_value_with_its_layer_and_hides_secrets(tmp_path):
    folder = project(tmp_path)

    shown = invoke(["config", "show", "--home", str(folder), "--env", "prod"])
    as_json = invoke(["config", "show", "--home", str(folder), "--json"],
                     env={"LITEMLOPS_ENV": "prod", "LITEMLOPS_SERVER_HOST": "0.0.0.0"})

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert f"# home: {folder / 'homes/prod'}" in lines
    assert "# environment: prod" in lines
    port = next(line for line in lines if line.startswith("port = "))
    assert port.startswith("port = 9000")
    assert port.endswith(f"# {folder / 'config.toml'} [env.prod]")
    assert any(line.startswith("psi = 0.3") and line.endswith(str(folder / "config.toml"))
               for line in lines)  # fmt: skip
    assert "prod-secret" not in shown.output and "pass" not in shown.output
    assert "secret-path" not in shown.output and "key=1" not in shown.output
    assert 'token = "(set, hidden)"' in shown.output
    assert "hooks.example.com" in shown.output
    data = json.loads(as_json.output)
    assert data["environment"] == "prod"
    assert data["sections"]["server"]["host"] == {"value": "0.0.0.0",
                                                  "from": "LITEMLOPS_SERVER_HOST"}
    assert data["sections"]["server"]["max_items"]["from"] == "default"


def test_commands_use_the_environments_home_and_say_how_to_make_a_missing_one(tmp_path):
    folder = project(tmp_path)

    missing = invoke(["pipelines", "list", "--home", str(folder), "--env", "dev"])
    made = invoke(["init", "--home", str(folder), "--env", "dev"])
    listed = invoke(["pipelines", "list", "--home", str(folder)], env={"LITEMLOPS_ENV": "dev"})
    wrong = invoke(["--env", "qa", "pipelines", "list", "--home", str(folder)])

    assert missing.exit_code == 1
    assert f"no litemlops home at {folder / 'homes/dev'}" in missing.output
    assert f"[env.dev] in {folder / 'config.toml'}" in missing.output
    assert f"litemlops init --home {folder} --env dev" in missing.output
    assert made.exit_code == 0, made.output
    assert (folder / "homes/dev/registry.db").is_file()
    assert not (folder / "registry.db").exists()  # the config's folder holds no state
    assert f"litemlops run --home {folder} --env dev" in made.output
    assert listed.exit_code == 0 and "training" in listed.output
    assert wrong.exit_code == 1 and "unknown environment 'qa'" in wrong.output


def test_an_environment_home_is_made_only_where_a_home_may_be(tmp_path):
    folder = project(tmp_path)
    occupied = folder / "homes" / "dev"
    occupied.mkdir(parents=True)
    (occupied / "notes.txt").write_text("mine")

    result = invoke(["init", "--home", str(folder), "--env", "dev"])

    assert result.exit_code == 1
    assert "is not a litemlops home and is not empty" in result.output
    assert sorted(p.name for p in occupied.iterdir()) == ["notes.txt"]


def test_the_home_of_no_environment_is_the_config_folder(tmp_path):
    folder = project(tmp_path)

    assert Path(Config.load(folder, env={"LITEMLOPS_ENV": ""}).home) == folder


def test_config_show_refuses_a_folder_that_is_no_home_but_shows_an_environment_not_made_yet(
    tmp_path,
):
    folder = project(tmp_path)

    typo = invoke(["config", "show", "--home", str(tmp_path / "projcet")])
    unmade = invoke(["config", "show", "--home", str(folder), "--env", "dev"])

    assert typo.exit_code == 1 and "no litemlops home at" in typo.output
    assert unmade.exit_code == 0 and not (folder / "homes" / "dev").exists()
