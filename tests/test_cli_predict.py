"""`litemlops predict`: the serving layer's scores from the command line."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from litemlops.cli import cli
from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.serving.lineage import log_feature_refs
from litemlops.store import Entity, FeatureView, Field
from litemlops.store.tracking.signature import infer_signature

REFS = ["driver_stats:conv_rate", "driver_stats:acc_rate"]
#: Each driver's current features: conv_rate, acc_rate.
DRIVERS = {1001: (0.9, 0.8), 1002: (0.1, 0.2), 1003: (0.5, 0.5)}


def run_cli(*args, home, stdin=None):
    return CliRunner().invoke(cli, [*args, "--home", str(home)], input=stdin)


@pytest.fixture
def home(tmp_path):
    """A home (no application) whose driver_ranker@champion was trained on REFS, with
    each driver's current features online."""
    config = Config.load(tmp_path / "home", env={}, overrides={"applications": []})
    driver = Entity("driver", join_keys=["driver_id"])
    view = FeatureView(
        "driver_stats", entities=[driver],
        schema=[Field("conv_rate", "float64"), Field("acc_rate", "float64")],
        ttl=timedelta(days=1), timestamp_field="datetime",
    )
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((200, 2)), columns=["conv_rate", "acc_rate"])
    model = LogisticRegression().fit(X, (X["conv_rate"] > 0.5).astype(int))
    with Platform(config) as platform:
        platform.features.apply([driver, view])
        platform.features.ingest("driver_stats", pd.DataFrame([
            {"driver_id": d, "datetime": now - timedelta(hours=1), "conv_rate": c, "acc_rate": a}
            for d, (c, a) in DRIVERS.items()
        ]))
        platform.features.materialize(end=now)
        with platform.tracker.start_run("driver_ranker") as run:
            log_feature_refs(run, REFS)
            run.log_model(model, "model", signature=infer_signature(X))
        platform.registry.register_model(f"runs:/{run.id}/model", "driver_ranker")
        platform.registry.set_alias("driver_ranker", "champion", 1)
    return config.home, model


def served_events(home):
    lines = (home / "logs" / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "prediction_served"]


def test_entities_are_scored_on_their_online_features_and_logged(home):
    path, model = home

    out = run_cli("predict", "driver_ranker", "--entity", "driver_id=1002",
                  "--entity", "driver_id=1001", "--request-id", "r-1", home=path)

    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    rows = pd.DataFrame([DRIVERS[1002], DRIVERS[1001]], columns=["conv_rate", "acc_rate"])
    assert (answer["model"], answer["version"]) == ("driver_ranker", 1)
    assert answer["predictions"] == pytest.approx(model.predict_proba(rows)[:, 1], abs=1e-12)
    [event] = served_events(path)
    assert event["request_id"] == "r-1"
    assert event["entities"] == [{"driver_id": 1002}, {"driver_id": 1001}]
    assert event["scores"] == answer["predictions"]


def test_feature_rows_are_scored_as_sent_from_an_argument_or_stdin(home):
    path, model = home
    rows = [{"conv_rate": 0.3, "acc_rate": 0.7}, {"acc_rate": 0.1, "conv_rate": 0.95}]

    given = run_cli("predict", "driver_ranker/1", "--features", json.dumps(rows), home=path)
    piped = run_cli("predict", "models:/driver_ranker@champion", "--features", "-",
                    home=path, stdin=json.dumps(rows[1]))

    assert given.exit_code == 0, given.output
    expected = model.predict_proba(pd.DataFrame(rows)[["conv_rate", "acc_rate"]])[:, 1]
    assert json.loads(given.output)["predictions"] == pytest.approx(expected, abs=1e-12)
    assert json.loads(piped.output)["predictions"] == pytest.approx(expected[1:], abs=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["driver_ranker"], "give either --entity (one or more) or --features"),
        (["driver_ranker", "--entity", "driver_id=1001", "--features", "[]"],
         "give either --entity"),
        (["driver_ranker", "--features", "{oops"], "--features: not JSON"),
        (["driver_ranker", "--features", "[1, 2]"], "a non-empty list of objects"),
        (["driver_ranker", "--features", '{"conv_rate": 0.5}'], "feature rows lack ['acc_rate']"),
        (["driver_ranker", "--entity", "driver_id=abc"], "driver_id is an integer key"),
        (["driver_ranker", "--entity", "driver_id=9999"], "no current features for entities"),
        (["nosuch", "--entity", "driver_id=1001"], "no registered model named 'nosuch'"),
        (["driver ranker", "--features", "{}"], "InvalidModelError"),
        (["driver_ranker", "--entity", "driver_id=1001", "--request-id", ""],
         "--request-id: must be 1 to 200 characters"),
    ],
)
def test_a_wrong_request_is_refused_saying_why_and_logs_nothing(home, args, message):
    path, _ = home

    out = run_cli("predict", *args, home=path)

    assert out.exit_code != 0
    assert message in out.output
    log = path / "logs" / "events.jsonl"
    assert not log.exists() or served_events(path) == []
