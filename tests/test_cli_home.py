"""Every command resolves the home one way and refuses one that is not there."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from litemlops.cli import cli
from litemlops.cli.remote import json_chunks
from litemlops.home import resolve_home

# One command of each family that reads or writes a home, with its other arguments.
COMMANDS = [
    ["features", "list"],
    ["features", "describe", "driver_stats"],
    ["features", "online", "--features", "driver_stats:conv_rate", "--entity", "driver_id=1"],
    ["runs", "list"],
    ["runs", "show", "abcdef"],
    ["models", "list"],
    ["models", "versions", "driver_ranker"],
    ["models", "alias", "driver_ranker", "champion", "1"],
    ["pipelines", "list"],
    ["pipelines", "runs"],
    ["pipelines", "run", "training"],
    ["logs"],
    ["monitor", "compact"],
    ["monitor", "check"],
    ["simulate", "-n", "1"],
]


@pytest.fixture(autouse=True)
def no_home_in_environment(monkeypatch):
    monkeypatch.delenv("LITEMLOPS_HOME", raising=False)


def invoke(args, env=None):
    return CliRunner().invoke(cli, args, env=env)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_home_from_the_flag_is_refused_naming_path_and_source(tmp_path, command):
    typo = tmp_path / "hmoe"
    result = invoke([*command, "--home", str(typo)])
    assert result.exit_code == 1, result.output
    assert f"no litemlops home at {typo} (from --home)" in result.output
    assert f"litemlops init --home {typo}" in result.output
    assert "Traceback" not in result.output
    assert not typo.exists()


@pytest.mark.parametrize("command", COMMANDS[:6], ids=" ".join)
def test_a_missing_home_from_the_environment_is_refused_naming_it(tmp_path, command):
    missing = tmp_path / "elsewhere"
    result = invoke(command, env={"LITEMLOPS_HOME": str(missing)})
    assert result.exit_code == 1
    assert f"no litemlops home at {missing} (from LITEMLOPS_HOME)" in result.output
    assert not missing.exists()


def test_the_default_home_is_refused_when_missing_and_says_how_to_choose(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["models", "list"])
    assert result.exit_code == 1
    assert f"no litemlops home at {tmp_path / '.litemlops'} (the default" in result.output
    assert "--home" in result.output and "LITEMLOPS_HOME" in result.output
    assert not (tmp_path / ".litemlops").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_directory_that_is_not_a_home_is_refused_and_left_as_it_was(tmp_path, command):
    source = tmp_path / "package"
    source.mkdir()
    (source / "module.py").write_text("x = 1\n")
    result = invoke([*command, "--home", str(source)])
    assert result.exit_code == 1
    assert f"{source} (from --home) is not a litemlops home" in result.output
    assert sorted(p.name for p in source.iterdir()) == ["module.py"]


def test_the_flag_wins_over_the_environment_and_the_group_flag_counts(tmp_path):
    home = tmp_path / "home"
    assert invoke(["init", "--home", str(home)]).exit_code == 0
    env = {"LITEMLOPS_HOME": str(tmp_path / "missing")}
    assert invoke(["models", "list", "--home", str(home)], env=env).exit_code == 0
    assert invoke(["--home", str(home), "models", "list"], env=env).exit_code == 0
    assert invoke(["models", "list"], env={"LITEMLOPS_HOME": str(home)}).exit_code == 0


def test_init_makes_an_empty_home_that_every_command_then_opens(tmp_path):
    home = tmp_path / "new" / "home"
    made = invoke(["init", "--home", str(home)])
    assert made.exit_code == 0, made.output
    assert f"made an empty litemlops home at {home}" in made.output
    assert (home / "registry.db").is_file() and (home / "features.duckdb").is_file()
    assert (home / "token").stat().st_mode & 0o077 == 0
    assert home.stat().st_mode & 0o077 == 0
    listed = invoke(["models", "list", "--home", str(home)])
    assert listed.exit_code == 0 and "no registered models" in listed.output
    again = invoke(["init", "--home", str(home)])
    assert again.exit_code == 0 and "a litemlops home already" in again.output


def test_init_takes_an_empty_directory_and_the_default_path(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke(["init", "--home", str(empty)]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert invoke(["init"]).exit_code == 0
    assert (tmp_path / ".litemlops" / "registry.db").is_file()


@pytest.mark.parametrize("command", [["init"], ["run", "--once"]], ids=" ".join)
def test_init_and_run_refuse_to_fill_a_directory_that_holds_other_files(tmp_path, command):
    source = tmp_path / "litemlops"
    source.mkdir()
    (source / "__init__.py").write_text("")
    result = invoke([*command, "--home", str(source)])
    assert result.exit_code == 1
    assert "is not a litemlops home and is not empty" in result.output
    assert sorted(p.name for p in source.iterdir()) == ["__init__.py"]


def test_a_home_prepared_with_only_its_config_file_is_a_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[demo]\ndrivers = 5\n")
    result = invoke(["models", "list", "--home", str(home)])
    assert result.exit_code == 0, result.output


names = st.text(alphabet="abcdefgh_-.0123456789", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..")
)


@given(flag=st.none() | st.just("") | names, env=st.none() | st.just("") | names)
def test_the_home_is_the_flag_then_the_environment_then_the_default(flag, env):
    environment = {} if env is None else {"LITEMLOPS_HOME": env}
    choice = resolve_home(flag, environment)
    if flag:
        assert (choice.source, choice.path) == ("flag", Path(flag).absolute())
    elif env:
        assert (choice.source, choice.path) == ("env", Path(env).absolute())
    else:
        assert (choice.source, choice.path) == ("default", Path(".litemlops").absolute())
    assert choice.path.is_absolute()


@given(
    rows=st.lists(st.dictionaries(names, st.integers() | names, max_size=4), max_size=60),
    max_items=st.integers(1, 25),
    max_bytes=st.integers(50, 2000),
)
def test_pushed_rows_go_in_order_in_pieces_the_server_takes(rows, max_items, max_bytes):
    pieces = list(json_chunks(rows, max_items, max_bytes))
    assert [row for piece in pieces for row in piece] == rows
    for piece in pieces:
        assert 1 <= len(piece) <= max_items
        assert len(piece) == 1 or len(json.dumps(piece)) <= max_bytes


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_servers_client_verifies_tls_and_loads_no_ca_bundle_for_plain_http(scheme, monkeypatch):
    import ssl

    import httpx

    from litemlops.cli.remote import Owner

    made: list[dict] = []
    monkeypatch.setattr(httpx, "Client", lambda **kwargs: made.append(kwargs) or kwargs)

    client = Owner(f"{scheme}://127.0.0.1:8000", "t").client

    assert made == [client]
    verify = client["verify"]
    if scheme == "https":
        assert verify is True  # the CA bundle, as httpx loads it by default
    else:  # no TLS to check: a context trusting no one, which could never skip a check
        assert isinstance(verify, ssl.SSLContext)
        assert verify.verify_mode == ssl.CERT_REQUIRED and verify.check_hostname
        assert verify.cert_store_stats()["x509_ca"] == 0


@pytest.mark.parametrize("command", [["run", "--once"], ["init"]])
def test_a_home_under_a_file_is_refused_with_why_and_nothing_made(tmp_path, command):
    (tmp_path / "notes.txt").write_text("kept\n")
    home = tmp_path / "notes.txt" / "home"
    result = invoke([*command, "--home", str(home)])
    assert result.exit_code != 0
    assert f"home {home} cannot be made: Not a directory" in result.output, result.output
    assert "use another --home" in result.output and "Traceback" not in result.output
    assert (tmp_path / "notes.txt").read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
