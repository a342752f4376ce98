"""Every command works while `litemlops run` serves the home (the README's own pattern:
`run` going in another terminal): reads beside it, owner's writes through its API."""

import json
import os
import subprocess
import sys

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from terminal import on_a_terminal
from test_main_job import SMALL, wait_for_url, wait_ready

import litemlops
from litemlops.cli import cli

pytestmark = pytest.mark.slow

DEFINITIONS = os.path.join(os.path.dirname(litemlops.__file__), "demo", "definitions.py")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One `run` on a fresh home, port 0, shared by this module's tests."""
    home = tmp_path_factory.mktemp("served") / "home"
    env = {**os.environ, **SMALL}
    env.pop("LITEMLOPS_HOME", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url, _ = wait_for_url(process, timeout=180)
        wait_ready(url)
        yield home, url
    finally:
        process.terminate()
        process.communicate(timeout=60)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in list(os.environ):
        if key.startswith("LITEMLOPS_"):
            monkeypatch.delenv(key)


def cli_ok(home, *args):
    result = CliRunner().invoke(cli, [*args, "--home", str(home)])
    assert "HomeLockedError" not in result.output and "in use by" not in result.output
    assert result.exit_code == 0, result.output
    return result


def newest(home, pipeline, state="success"):
    out = cli_ok(home, "pipelines", "runs", "--pipeline", pipeline, "--state", state, "--json")
    return json.loads(out.stdout)[0]["run_id"]


def test_read_commands_answer_beside_the_server(served, tmp_path):
    home, _ = served
    assert "driver_ranker" in cli_ok(home, "models", "list").output
    shown = json.loads(cli_ok(home, "models", "show", "driver_ranker").output)
    assert shown["aliases"]["champion"] == 1
    assert "version" in cli_ok(home, "models", "versions", "driver_ranker").output
    assert "champion" in cli_ok(home, "models", "history", "driver_ranker").output
    runs = json.loads(cli_ok(home, "runs", "list", "--json").output)["runs"]
    first, *rest = [r["run_id"] for r in runs]
    assert first in cli_ok(home, "runs", "show", first[:8]).output
    cli_ok(home, "runs", "compare", first, *(rest[:1] or [first]))
    assert "training" in cli_ok(home, "pipelines", "list").output
    training = newest(home, "training")
    assert "register" in cli_ok(home, "pipelines", "show", training).output
    assert "pipeline_run_finished" in cli_ok(home, "pipelines", "logs", training).output
    assert cli_ok(home, "logs", "--event", "server_started").output.strip()
    assert "driver_stats" in cli_ok(home, "features", "list").output
    described = json.loads(cli_ok(home, "features", "describe", "driver_stats").output)
    assert described["offline_rows"] > 0
    online = json.loads(cli_ok(home, "features", "online", "--features",
                               "driver_stats:conv_rate", "--entity", "driver_id=1001").output)
    assert online["driver_id"] == [1001] and online["conv_rate"][0] is not None
    pd.DataFrame({"driver_id": [1001, 1002],
                  "event_timestamp": [pd.Timestamp.now(tz="UTC")] * 2}).to_csv(
        tmp_path / "entities.csv", index=False)
    out = tmp_path / "train.parquet"
    cli_ok(home, "features", "historical", "--entities", str(tmp_path / "entities.csv"),
           "--features", "driver_stats:conv_rate", "--out", str(out))
    assert len(pd.read_parquet(out)) == 2
    assert "window:" in cli_ok(home, "monitor", "check").output
    cli_ok(home, "monitor", "compact")
    assert "a litemlops home already" in cli_ok(home, "init").output


def test_feature_writes_beside_the_server(served, tmp_path):
    home, _ = served
    assert "unchanged: " in cli_ok(home, "features", "apply", DEFINITIONS).output
    now = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=10)
    rows = pd.DataFrame({"driver_id": [1001, 1002], "datetime": [now] * 2,
                         "created": [now] * 2, "conv_rate": [0.123, 0.5],
                         "acc_rate": [0.9, 0.8], "avg_daily_trips": [7, 8]})
    rows.to_csv(tmp_path / "push.csv", index=False)
    pushed = cli_ok(home, "features", "push", "driver_stats", str(tmp_path / "push.csv"))
    assert "pushed 2 rows to online: 2 applied online" in pushed.output
    before = json.loads(cli_ok(home, "features", "describe", "driver_stats").output)
    both = cli_ok(home, "features", "push", "driver_stats", str(tmp_path / "push.csv"),
                  "--to", "both")
    assert "pushed 2 rows to both" in both.output
    after = json.loads(cli_ok(home, "features", "describe", "driver_stats").output)
    assert after["offline_rows"] == before["offline_rows"] + 2
    online = json.loads(cli_ok(home, "features", "online", "--features",
                               "driver_stats:conv_rate", "--entity", "driver_id=1001").output)
    assert online["conv_rate"] == [0.123]
    later = rows.assign(datetime=now + pd.Timedelta(seconds=1),
                        created=now + pd.Timedelta(seconds=1), conv_rate=[0.25, 0.75])
    later.to_parquet(tmp_path / "later.parquet")
    assert "ingested 2 rows" in cli_ok(home, "features", "ingest", "driver_stats",
                                       str(tmp_path / "later.parquet")).output
    start = (now - pd.Timedelta(hours=1)).isoformat()
    assert "driver_stats:" in cli_ok(home, "features", "materialize", "--start", start).output
    online = json.loads(cli_ok(home, "features", "online", "--features",
                               "driver_stats:conv_rate", "--entity", "driver_id=1001").output)
    assert online["conv_rate"] == [0.25]


def test_pipeline_runs_and_alias_moves_go_through_the_server(served):
    home, url = served
    out = cli_ok(home, "pipelines", "run", "training", "--param", "seed=7", "--param",
                 "tolerance=1", "--param", "min_auc=0", "--json")
    run = json.loads(out.stdout)
    assert run["state"] == "success" and run["payload"]["via"] == "api"
    assert [t["task"] for t in run["tasks"]][-1] == "register"
    versions = json.loads(cli_ok(home, "models", "versions", "driver_ranker", "--json").output)
    latest = max(v["version"] for v in versions)
    assert latest >= 2
    moved = cli_ok(home, "models", "alias", "driver_ranker", "champion", str(latest))
    assert f"driver_ranker@champion -> version {latest}" in moved.output
    # The server answers with the new champion at once: the move went through it.
    assert httpx.get(f"{url}/ready").json()["version"] == latest
    back = cli_ok(home, "models", "rollback", "driver_ranker", "champion")
    assert "driver_ranker@champion -> version 1" in back.output
    assert httpx.get(f"{url}/ready").json()["version"] == 1


def test_a_step_and_a_resume_run_beside_the_server(served):
    home, _ = served
    data_run = newest(home, "data")
    stepped = cli_ok(home, "pipelines", "run-step", "data", "materialize", "--run-id", data_run)
    assert "success" in stepped.output
    failed = CliRunner().invoke(cli, ["pipelines", "run", "data", "--param", "view=nope",
                                      "--home", str(home)])
    assert failed.exit_code == 1 and "resume it with" in failed.output
    again = CliRunner().invoke(cli, ["pipelines", "run", "data", "--from-failed",
                                     "--home", str(home)])
    assert "HomeLockedError" not in again.output
    assert again.exit_code == 1 and "no feature view" in again.output.lower()


def test_demo_data_simulate_and_file_drift_beside_the_server(served, tmp_path):
    home, _ = served
    made = CliRunner().invoke(cli, ["demo", "generate", "--out", str(tmp_path / "demo")])
    assert made.exit_code == 0, made.output
    sent = cli_ok(home, "simulate", "-n", "5", "--seed", "1")
    assert "5 normal requests" in sent.output
    stats = tmp_path / "demo" / "driver_stats.csv"
    result = CliRunner().invoke(cli, ["monitor", "compare", str(stats), str(stats)])
    assert result.exit_code == 0 and "no drift" in result.output


def test_long_commands_show_progress_on_a_terminal_only(served):
    home, _ = served
    code, out, err = on_a_terminal("simulate", "-n", "8", "--seed", "2", "--home", str(home))
    assert code == 0 and "8 normal requests" in out
    assert "normal traffic:" in err and "0/8" in err and "request" in err
    code, out, err = on_a_terminal("simulate", "-n", "3", "--quiet", "--home", str(home))
    assert code == 0 and "3 normal requests" in out
    assert "normal traffic" not in err
    code, out, err = on_a_terminal("pipelines", "run", "monitoring", "--home", str(home))
    assert code == 0, out + err
    assert "monitoring:" in err and "task" in err
    piped = subprocess.run(
        [sys.executable, "-m", "litemlops", "simulate", "-n", "3", "--home", str(home)],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")},
    )
    assert piped.returncode == 0 and piped.stderr == ""
