import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import litemlops
from litemlops.cli import cli
from litemlops.config import Config
from litemlops.home_lock import HomeLock

DEFINITIONS = Path(litemlops.__file__).parent / "demo" / "definitions.py"


def run_cli(*args, home=None):
    result = CliRunner().invoke(cli, [*args, *(["--home", str(home)] if home else [])])
    return result


def test_help_and_version():
    assert "feature store" in run_cli("--help").output.lower()
    assert litemlops.__version__ in run_cli("--version").output
    assert "historical" in run_cli("features", "--help").output


@pytest.mark.slow
def test_run_once_bootstraps_a_fresh_home_then_just_starts(tmp_path):
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "litemlops", "run", "--once", "--home", str(home)]
    env = {"LITEMLOPS_DEMO_DRIVERS": "10", "LITEMLOPS_DEMO_HOURS": "72",
           "LITEMLOPS_DEMO_LABELS": "400", "PATH": ""}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "fresh home" in first.stdout
    assert "registered driver_ranker v1 as champion" in first.stdout
    assert f"events: {home / 'logs' / 'events.jsonl'}" in first.stdout
    # A short summary: no tables, and the events only in the log.
    assert "point-in-time training rows" not in first.stdout
    assert first.stderr.splitlines() == [
        f"preparing the home (events: {home / 'logs' / 'events.jsonl'})..."
    ]
    assert (home / "features.duckdb").exists() and (home / "features.online.db").exists()
    lines = (home / "logs" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert {"run_bootstrapped", "pipeline_run_started", "task_succeeded"} <= {
        e["event"] for e in events
    }
    second = subprocess.run([*cmd, "--verbose"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert second.returncode == 0, second.stderr
    assert "existing home" in second.stdout
    assert "point-in-time training rows" in second.stdout
    assert "online lookup" in second.stdout
    assert "features_materialized" in second.stderr and "run_bootstrapped" in second.stderr


def test_second_owner_of_a_home_is_refused_clearly(tmp_path):
    config = Config.load(tmp_path / "home", env={})
    config.ensure_home()
    with HomeLock(config.lock_path).acquire():
        result = run_cli("run", "--once", home=config.home)
    assert result.exit_code != 0
    assert "in use by process" in result.output
    assert "Traceback" not in result.output


def home_with(tmp_path, definitions):
    """A new home in tmp_path with the definitions file applied."""
    home = tmp_path / "home"
    assert run_cli("init", home=home).exit_code == 0
    assert run_cli("features", "apply", str(definitions), home=home).exit_code == 0
    return home


@pytest.fixture
def home(tmp_path):
    return home_with(tmp_path, DEFINITIONS)


def stats(n=3, hours_ago=1):
    t = datetime.now(UTC) - timedelta(hours=hours_ago)
    return pd.DataFrame({
        "driver_id": [1001 + i for i in range(n)],
        "datetime": [t] * n,
        "created": [t] * n,
        "conv_rate": [0.5] * n,
        "acc_rate": [0.9] * n,
        "avg_daily_trips": [10 + i for i in range(n)],
    })


def test_feature_commands_round_trip(home, tmp_path):
    stats().to_parquet(tmp_path / "stats.parquet")
    out = run_cli("features", "ingest", "driver_stats", str(tmp_path / "stats.parquet"), home=home)
    assert out.exit_code == 0, out.output
    assert "ingested 3 rows" in out.output
    out = run_cli("features", "materialize", home=home)
    assert out.exit_code == 0 and "3 entities written" in out.output
    listing = run_cli("features", "list", home=home)
    assert "driver_stats v1" in listing.output and "rows=3" in listing.output
    described = json.loads(run_cli("features", "describe", "driver_stats", home=home).output)
    assert described["online_entities"] == 3
    online = run_cli("features", "online", "--features", "driver_stats:avg_daily_trips",
                     "--entity", "driver_id=1002", "--entity", "driver_id=5", home=home)
    assert json.loads(online.output) == {"driver_id": [1002, 5], "avg_daily_trips": [11, None]}

    entities = pd.DataFrame({"driver_id": [1001, 1003], "event_timestamp": [datetime.now(UTC)] * 2})
    entities.to_csv(tmp_path / "orders.csv", index=False)
    out = run_cli("features", "historical", "--entities", str(tmp_path / "orders.csv"),
                  "--features", "driver_stats:conv_rate,driver_stats:avg_daily_trips",
                  "--out", str(tmp_path / "train.parquet"), home=home)
    assert out.exit_code == 0, out.output
    train = pd.read_parquet(tmp_path / "train.parquet")
    assert train["avg_daily_trips"].tolist() == [10, 12]

    fresh = stats(1, hours_ago=0).assign(avg_daily_trips=[99])
    fresh.to_csv(tmp_path / "push.csv", index=False)
    out = run_cli("features", "push", "driver_stats", str(tmp_path / "push.csv"), "--to", "both",
                  home=home)
    assert out.exit_code == 0, out.output
    assert "1 applied online" in out.output
    online = run_cli("features", "online", "--features", "driver_stats:avg_daily_trips",
                     "--entity", "driver_id=1001", home=home)
    assert json.loads(online.output)["avg_daily_trips"] == [99]


def test_cli_errors_are_one_line_messages(home, tmp_path):
    bad = stats().assign(conv_rate=["x", "y", "z"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = run_cli("features", "ingest", "driver_stats", str(tmp_path / "bad.csv"), home=home)
    assert out.exit_code == 1
    assert "conv_rate" in out.output and "row 0" in out.output
    out = run_cli("features", "describe", "nope", home=home)
    assert out.exit_code == 1 and "no feature view named 'nope'" in out.output
    out = run_cli("features", "online", "--features", "driver_stats:nope",
                  "--entity", "driver_id=1", home=home)
    assert out.exit_code == 1 and "has no feature 'nope'" in out.output
    (tmp_path / "defs.py").write_text("raise RuntimeError('boom')\n")
    out = run_cli("features", "apply", str(tmp_path / "defs.py"), home=home)
    assert out.exit_code == 1 and "boom" in out.output


def test_demo_generate_writes_the_sample(tmp_path):
    out = run_cli("demo", "generate", "--out", str(tmp_path / "d"))
    assert out.exit_code == 0, out.output
    assert (tmp_path / "d" / "driver_stats.csv").exists()
    assert (tmp_path / "d" / "labels.csv").exists()


STRING_KEYED = """
from litemlops.store import Entity, FeatureView, Field
user = Entity("user", join_keys=["uid"], value_type="string")
scores = FeatureView("scores", entities=[user], schema=[Field("score", "float64")])
"""


def test_string_keys_that_look_numeric_stay_text_in_the_cli(tmp_path):
    (tmp_path / "defs.py").write_text(STRING_KEYED)
    home = home_with(tmp_path, tmp_path / "defs.py")
    (tmp_path / "u.csv").write_text("uid,event_timestamp,score\n007,2025-01-01T00:00:00Z,0.5\n")
    ingested = run_cli("features", "ingest", "scores", str(tmp_path / "u.csv"), home=home)
    assert ingested.exit_code == 0
    (tmp_path / "e.csv").write_text("uid,event_timestamp,label\n007,2025-01-02T00:00:00Z,1\n")
    out = run_cli("features", "historical", "--entities", str(tmp_path / "e.csv"),
                  "--features", "scores:score", "--out", str(tmp_path / "o.csv"), home=home)
    assert out.exit_code == 0, out.output
    assert pd.read_csv(tmp_path / "o.csv", dtype={"uid": str})["score"].tolist() == [0.5]
    assert run_cli("features", "materialize", "--end", "2025-01-02T00:00:00+00:00",
                   home=home).exit_code == 0
    online = run_cli("features", "online", "--features", "scores:score", "--entity", "uid=007",
                     home=home)
    assert json.loads(online.output) == {"uid": ["007"], "score": [0.5]}


ALIKE = """
from litemlops.store import Entity, FeatureView, Field
driver, car = Entity("driver"), Entity("car")
drivers = FeatureView("drivers", entities=[driver], schema=[Field("rating", "float64")])
cars = FeatureView("cars", entities=[car], schema=[Field("rating", "float64")])
"""


def test_historical_with_full_feature_names_takes_features_named_alike(tmp_path):
    (tmp_path / "defs.py").write_text(ALIKE)
    home = home_with(tmp_path, tmp_path / "defs.py")
    for view, key, rating in (("drivers", "driver", 0.5), ("cars", "car", 0.7)):
        (tmp_path / "v.csv").write_text(f"{key},event_timestamp,rating\n1,2025-01-01,{rating}\n")
        ingested = run_cli("features", "ingest", view, str(tmp_path / "v.csv"), home=home)
        assert ingested.exit_code == 0, ingested.output
    (tmp_path / "e.csv").write_text("driver,car,event_timestamp\n1,1,2025-01-02\n")
    refs = ["--features", "drivers:rating,cars:rating", "--entities", str(tmp_path / "e.csv")]
    out = run_cli("features", "historical", *refs, "--out", str(tmp_path / "o.csv"), home=home)
    assert out.exit_code == 1 and "pass full_feature_names=True" in out.output
    out = run_cli("features", "historical", *refs, "--out", str(tmp_path / "o.csv"),
                  "--full-feature-names", home=home)
    assert out.exit_code == 0, out.output
    got = pd.read_csv(tmp_path / "o.csv")
    assert (got["drivers__rating"].tolist(), got["cars__rating"].tolist()) == ([0.5], [0.7])


@pytest.mark.parametrize(
    "entities, out_name, message",
    [
        ("ok.csv", "missing/train.parquet", "does not exist"),
        ("ok.csv", "train.json", "unsupported output type"),
        ("empty.csv", "train.parquet", "cannot be read"),
        ("junk.parquet", "train.parquet", "cannot be read"),
        ("quote.csv", "train.parquet", "cannot be read"),
    ],
)
def test_historical_file_problems_are_one_line_errors(home, tmp_path, entities, out_name, message):
    (tmp_path / "ok.csv").write_text("driver_id,event_timestamp\n1001,2025-01-01T00:00:00Z\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "quote.csv").write_text('driver_id,event_timestamp\n"1001,2025\n')
    out = run_cli("features", "historical", "--entities", str(tmp_path / entities),
                  "--features", "driver_stats:conv_rate", "--out", str(tmp_path / out_name),
                  home=home)
    assert out.exit_code == 1, out.output
    assert message in out.output
    assert "Traceback" not in out.output
    assert not list(tmp_path.glob(".*.tmp"))


def test_online_entity_for_an_integer_key_must_be_an_integer(home):
    out = run_cli("features", "online", "--features", "driver_stats:conv_rate",
                  "--entity", "driver_id=abc", home=home)
    assert out.exit_code == 2 and "integer key" in out.output


def test_a_command_beside_the_owner_waits_for_the_feature_history_and_says_so(home):
    import threading

    config = Config.load(home, env={})
    turn = HomeLock(config.features_lock_path).acquire()
    # The home's owner holds the home; one of its workers has the history for a moment.
    with HomeLock(config.lock_path):
        threading.Timer(0.5, turn.release).start()
        result = CliRunner().invoke(cli, ["features", "list", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "waiting for the feature history" in result.stderr
    assert "driver_stats v1" in result.stdout
