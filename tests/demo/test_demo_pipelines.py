"""The course's pipelines end to end on small generated data."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from litemlops.config import Config
from litemlops.demo import definitions as demo
from litemlops.demo.generator import generate_driver_stats, generate_labels
from litemlops.testing import FixedClock

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DRIVERS = 8


@pytest.fixture
def litemlops_clock():
    return FixedClock(NOW)


@pytest.fixture
def platform(litemlops_platform):
    config = litemlops_platform.config
    stats = generate_driver_stats(DRIVERS, 24 * 5, end=NOW, random_state=3)
    labels = generate_labels(stats, 600, random_state=3)
    config.incoming_dir.mkdir(parents=True)
    stats.to_parquet(config.incoming_dir / "batch1.parquet")
    labels.to_parquet(config.data_dir / "labels.parquet")
    pd.DataFrame({"driver_id": [*range(1001, 1001 + DRIVERS), 999]}).to_csv(
        config.data_dir / "batch_requests.csv", index=False
    )
    litemlops_platform.features.apply([demo.driver, demo.driver_stats])
    litemlops_platform.stats = stats
    return litemlops_platform


@pytest.fixture
def run(platform, litemlops_run):
    """Run a catalog pipeline; return its run and its tasks' last attempts by name."""

    def go(name, **params):
        result = litemlops_run(platform.catalog.get(name), params)
        return result.run, {t.task: result.task(t.task) for t in result.task_runs}

    return go


def test_data_cleans_validates_writes_offline_materializes_and_archives(platform, run):
    config = platform.config
    result, tasks = run("data")
    assert result.state == "success", result.error
    assert list(tasks) == ["ingest", "clean", "validate", "write_offline", "materialize"]
    cleaned = tasks["clean"].output
    # The generator repeats some (driver, hour) rows as corrections: one of each is kept.
    expected = platform.stats.drop_duplicates(["driver_id", "datetime"])
    assert cleaned["rows"] == len(expected) and cleaned["duplicates"] > 0
    assert platform.features.describe("driver_stats")["offline_rows"] == len(expected)
    assert tasks["materialize"].output["driver_stats"]["entities_written"] == DRIVERS
    assert not list(config.incoming_dir.glob("*.parquet"))
    assert (config.incoming_dir / "done" / "batch1.parquet").exists()
    # The latest correction of each (driver, hour) is the row kept.
    stored = platform.features.get_online_features(demo.FEATURES, [{"driver_id": 1001}])
    latest = platform.stats[platform.stats.driver_id == 1001].sort_values(["datetime", "created"])
    assert stored.to_dict()["conv_rate"] == [latest.iloc[-1].conv_rate]
    # A second run finds nothing new and writes nothing twice.
    again, tasks = run("data")
    assert again.state == "success" and tasks["ingest"].output["rows"] == 0
    assert platform.features.describe("driver_stats")["offline_rows"] == len(expected)


def test_a_bad_file_is_moved_aside_with_a_report_and_the_good_ones_around_it_go_in(
    platform, litemlops_run
):
    import json

    config = platform.config
    incoming = config.incoming_dir
    (incoming / "batch1.parquet").unlink()
    stats = platform.stats.drop_duplicates(["driver_id", "datetime"]).reset_index(drop=True)
    stats.iloc[:10].to_parquet(incoming / "1_good.parquet")
    bad = stats.iloc[10:30].reset_index(drop=True)
    bad["driver_id"] = bad["driver_id"].astype("float64")
    bad.loc[0, "driver_id"] = None  # a row without a key is dropped, not a reason
    bad.loc[[2, 5, 7], "conv_rate"] = 1.5
    bad.to_parquet(incoming / "2_bad.parquet")
    stats.iloc[30:40].to_csv(incoming / "3_good.csv", index=False)
    (incoming / "4_broken.parquet").write_bytes(b"not parquet at all")
    # Passes the pipeline's checks, but the store cannot hold it: rejected too.
    stats.iloc[45:47].assign(avg_daily_trips=[1e20, 5.0]).to_parquet(incoming / "6_huge.parquet")

    result = litemlops_run(platform.catalog.get("data"))

    assert result.run.state == "success", result.run.error
    ingest = result.task("ingest").output
    assert ingest["rejected"] == 3 and result.task("write_offline").output["rejected"] == 3
    assert platform.features.describe("driver_stats")["offline_rows"] == 20
    assert sorted(p.name for p in (incoming / "done").iterdir()) == ["1_good.parquet",
                                                                     "3_good.csv"]
    rejected = incoming / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == [
        "2_bad.parquet", "2_bad.parquet.report.json",
        "4_broken.parquet", "4_broken.parquet.report.json",
        "6_huge.parquet", "6_huge.parquet.report.json",
    ]
    assert not [p for p in incoming.iterdir() if p.is_file()]
    report = json.loads((rejected / "2_bad.parquet.report.json").read_text())
    assert report["file"] == str(incoming / "2_bad.parquet")
    assert report["moved_to"] == str(rejected / "2_bad.parquet")
    assert report["rejected_at"] == NOW.isoformat() and report["run_id"] == result.run.run_id
    assert report["rows"] == 20 and not report["passed"]
    (problem,) = report["problems"]
    assert problem.startswith("column 'conv_rate' has 3 value(s) outside [0, 1]")
    assert report["bad_rows"] == {"conv_rate": [2, 5, 7]}
    broken = json.loads((rejected / "4_broken.parquet.report.json").read_text())
    assert "4_broken.parquet: cannot be read" in broken["problems"][0]
    huge = json.loads((rejected / "6_huge.parquet.report.json").read_text())
    assert "column 'avg_daily_trips' expects int64; row 0 has 1e+20" in huge["problems"][0]
    event = result.events_named("ingest_file_rejected")[0]
    assert event["report"] == str(rejected / "2_bad.parquet.report.json")
    assert event["problems"] == report["problems"]
    assert [e["file"] for e in result.events_named("ingest_file_rejected")] == [
        str(incoming / f) for f in ("2_bad.parquet", "4_broken.parquet", "6_huge.parquet")
    ]

    # The next run takes new good files; a bad file of a name already rejected does not
    # replace the first one.
    kept = (rejected / "2_bad.parquet").read_bytes()
    bad.to_csv(incoming / "2_bad.csv", index=False)
    bad.iloc[:5].to_parquet(incoming / "2_bad.parquet")
    stats.iloc[40:45].to_parquet(incoming / "5_good.parquet")
    again = litemlops_run(platform.catalog.get("data"))
    assert again.run.state == "success", again.run.error
    assert again.task("ingest").output["rejected"] == 2
    assert platform.features.describe("driver_stats")["offline_rows"] == 25
    assert (rejected / "2_bad.parquet").read_bytes() == kept
    tag = again.run.run_id[:8]
    assert (rejected / f"2_bad.{tag}.parquet").exists()
    assert (rejected / f"2_bad.{tag}.parquet.report.json").exists()
    assert (rejected / "2_bad.csv").exists()


def test_a_bad_file_named_as_the_source_fails_the_run_and_stays(platform, run):
    bad = platform.stats.drop_duplicates(["driver_id", "datetime"]).head(5).copy()
    bad["conv_rate"] = 2.0
    path = platform.config.data_dir / "single.parquet"
    bad.to_parquet(path)
    result, tasks = run("data", source=str(path))
    assert result.state == "failed"
    assert "'conv_rate' has 5 value(s) outside [0, 1]" in tasks["ingest"].error
    assert path.exists() and platform.features.describe("driver_stats")["offline_rows"] == 0


def test_training_registers_a_champion_then_a_challenger_that_is_not_worse(platform, run):
    run("data")
    first, tasks = run("training")
    assert first.state == "success", first.error
    assert list(tasks) == [
        "extract", "validate_data", "prepare", "train", "evaluate", "validate_model", "register",
    ]
    metrics = tasks["evaluate"].output["metrics"]
    assert set(metrics) == {"rmse", "mae", "auc", "log_loss", "accuracy"}
    assert metrics["auc"] > 0.6  # the labels depend on the features
    out = tasks["prepare"].output
    assert out["train_rows"] + out["test_rows"] == 600
    assert 90 <= out["test_rows"] <= 150  # test_size 0.2, by a hash of each row
    assert tasks["register"].output == {
        "name": "driver_ranker", "version": 1, "alias": "champion", "reused": False,
    }
    version = platform.registry.get_alias("driver_ranker", "champion")
    tracking = platform.tracker.get_run(version.run_id)
    assert tracking.status == "finished" and tracking.tags["gate"] == "passed"
    assert tracking.metrics["test_auc"] == pytest.approx(metrics["auc"])
    assert tracking.params["estimator"] == "logistic_regression"
    assert version.lineage["inputs"][0]["feature_views"] == {"driver_stats": 1}
    # Same data and seed: the very same model. It is version 1 again, and nothing moves.
    second, tasks = run("training")
    assert second.state == "success"
    assert tasks["validate_model"].output["champion"]["version"] == 1
    assert tasks["register"].output == {
        "name": "driver_ranker", "version": 1, "alias": None, "reused": True,
    }
    assert [v.version for v in platform.registry.list_versions("driver_ranker")] == [1]
    assert len(platform.registry.alias_history("driver_ranker")) == 1
    # Asked for, the same bytes are a new version, as good as the champion: a challenger.
    _, tasks = run("training", allow_duplicate=True)
    assert tasks["register"].output == {
        "name": "driver_ranker", "version": 2, "alias": "challenger", "reused": False,
    }
    assert platform.registry.get_alias("driver_ranker", "champion").version == 1
    # Another model as good as the champion, with promote=auto, becomes champion.
    _, tasks = run("training", promote="auto", hyperparams='{"C": 0.5}', tolerance=0.05)
    assert tasks["register"].output == {
        "name": "driver_ranker", "version": 3, "alias": "champion", "reused": False,
    }


def served_log(config, at):
    """Three /inference answers (two labelled, one of them twice), one /predict with
    feature rows (labelled, but without a driver), a label for no request, and another
    model's labelled answer, as the server logs them."""
    import orjson

    def served(request_id, seconds, rows, entities, output, model="driver_ranker"):
        return {"event": "prediction_served", "timestamp": stamp(seconds), "model": model,
                "request_id": request_id, "version": 1, "entities": entities,
                "service": "inference" if entities else "predict", "features": rows,
                "scores": [0.5] * len(rows), "output": output}

    def label(request_id, seconds, value):
        return {"event": "feedback_received", "timestamp": stamp(seconds),
                "request_id": request_id, "label": value}

    def stamp(seconds):
        return (at + pd.Timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    def row(i):
        return {"conv_rate": 0.1 * i, "acc_rate": 0.05 * i, "avg_daily_trips": 10.0 * i}

    lines = [
        served("a", 1, [row(1), row(2)], [1001, 1002], 1002),
        served("b", 2, [row(3)], [1003], 1003),
        served("c", 3, [row(4)], [1004], 1004),
        served("p", 4, [row(5)], [], [0.5]),
        served("other", 5, [row(6)], [1006], 1006, model="another"),
        label("a", 10, 1), label("b", 11, 1), label("b", 12, 0), label("p", 13, 1),
        label("nobody", 14, 1), label("other", 15, 1),
    ]
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    with config.events_log_path.open("ab") as f:
        f.writelines(orjson.dumps(line) + b"\n" for line in lines)


def test_training_also_learns_from_labelled_served_predictions(platform, run):
    run("data")
    served_log(platform.config, pd.Timestamp(NOW))

    result, tasks = run("training")

    assert result.state == "success", result.error
    out = tasks["extract"].output
    assert (out["rows"], out["served_rows"], out["served_skipped"]) == (602, 2, 1)
    frame = pd.read_parquet(out["path"])
    served = frame[frame["source"] == "served"].reset_index(drop=True)
    # The chosen driver's row, with the values served and the latest label.
    assert served["driver_id"].tolist() == [1002, 1003]
    assert served["conv_rate"].tolist() == pytest.approx([0.2, 0.3])
    assert served["avg_daily_trips"].tolist() == [20.0, 30.0]
    assert served["trip_completed"].tolist() == [1, 0]
    assert served["event_timestamp"].tolist() == [
        pd.Timestamp(NOW) + pd.Timedelta(seconds=s) for s in (1, 2)
    ]
    assert (frame["source"] == "labels").sum() == 600
    prepared = tasks["prepare"].output
    assert prepared["train_rows"] + prepared["test_rows"] == 602

    _, tasks = run("training", served_labels=False)
    assert tasks["extract"].output["served_rows"] == 0
    assert tasks["prepare"].output["train_rows"] + tasks["prepare"].output["test_rows"] == 600


def test_a_model_worse_than_the_champion_is_not_promoted_and_says_why(platform, run):
    run("data")
    run("training")
    worse, tasks = run("training", estimator="dummy", min_auc=0)
    assert worse.state == "failed"
    error = tasks["validate_model"].error
    assert error.startswith("ModelGateError: model not promoted: auc 0.5000 is worse than")
    assert tasks["register"].state == "skipped"
    assert [v.version for v in platform.registry.list_versions("driver_ranker")] == [1]
    tracking = platform.tracker.get_run(tasks["train"].output["tracking_run_id"])
    assert tracking.status == "finished" and tracking.tags["gate"] == "failed"
    assert "worse than the champion" in tracking.tags["gate_reasons"]


def test_a_threshold_failure_without_a_champion_registers_nothing(platform, run):
    run("data")
    result, tasks = run("training", min_auc=0.99, max_rmse=0.1)
    assert result.state == "failed"
    assert "below min_auc 0.99" in tasks["validate_model"].error
    assert "above max_rmse 0.1" in tasks["validate_model"].error
    assert platform.registry.list_registered_models() == []


def test_the_courses_elasticnet_is_selectable_and_scored_as_a_regressor(platform, run):
    run("data")
    result, tasks = run("training", estimator="elasticnet", min_r2=-1, max_rmse=1)
    assert result.state == "success", result.error
    assert tasks["train"].output["kind"] == "regressor"
    assert {"rmse", "mae", "auc", "r2"} <= set(tasks["evaluate"].output["metrics"])
    version = platform.registry.get_alias("driver_ranker", "champion")
    model = platform.registry.load_model(f"driver_ranker/{version.version}")
    assert type(model.model).__name__ == "ElasticNet"
    assert model.model.get_params()["alpha"] == 0.5 and model.model.l1_ratio == 0.1


def test_a_regressor_on_a_numeric_label_registers_through_its_own_gate(platform, run):
    """No AUC is asked of a regressor: it is held to R² and RMSE, lower RMSE winning."""
    import numpy as np

    run("data")
    labels = pd.read_parquet(platform.config.data_dir / "labels.parquet")
    features = platform.features.get_historical_features(labels, demo.FEATURES)
    rng = np.random.default_rng(0)
    # A share, not a 0/1 outcome: what part of a driver's trips got completed.
    share = 0.2 + 0.5 * features["acc_rate"].fillna(0.5) + rng.normal(0, 0.02, len(labels))
    labels["trip_completed"] = share.clip(0, 1).round(4)
    labels.to_parquet(platform.config.data_dir / "labels.parquet")

    first, tasks = run("training", estimator="elasticnet", hyperparams='{"alpha": 0.001}')

    assert first.state == "success", tasks["validate_model"].error or first.error
    metrics = tasks["evaluate"].output["metrics"]
    assert "auc" not in metrics and metrics["r2"] > 0.5 and metrics["rmse"] < 0.1
    assert tasks["register"].output["version"] == 1
    assert platform.registry.get_alias("driver_ranker", "champion").version == 1
    # A worse regressor (higher RMSE than the champion's) is refused, and says why.
    worse, tasks = run("training", estimator="elasticnet", hyperparams='{"alpha": 0.05}',
                       min_r2=-10)
    assert worse.state == "failed"
    assert "rmse" in tasks["validate_model"].error
    assert "worse than the champion's" in tasks["validate_model"].error
    # Its own thresholds apply: R² below min_r2 fails; min_auc is not asked.
    _, tasks = run("training", estimator="elasticnet", min_r2=0.99, min_auc=0.99)
    assert "r2 " in tasks["validate_model"].error and "below min_r2 0.99" in tasks[
        "validate_model"].error
    assert "min_auc" not in tasks["validate_model"].error


def test_the_courses_files_go_through_the_pipelines(platform, run):
    """driver_stats.parquet written by pandas with its index, orders tab-separated."""
    config = platform.config
    (config.incoming_dir / "batch1.parquet").unlink()
    stats = platform.stats.sort_values("datetime", kind="stable")  # index no longer 0..n
    half = len(stats) // 2
    stats.iloc[:half].to_parquet(config.incoming_dir / "driver_stats.parquet")
    stats.iloc[half:].set_index("driver_id").to_parquet(config.incoming_dir / "by_driver.parquet")
    result, tasks = run("data")
    assert result.state == "success", tasks["ingest"].error
    assert not (config.incoming_dir / "rejected").exists()
    expected = len(platform.stats.drop_duplicates(["driver_id", "datetime"]))
    assert platform.features.describe("driver_stats")["offline_rows"] == expected
    run("training")
    orders = config.data_dir / "orders.csv"
    pd.DataFrame({"event_timestamp": [NOW.isoformat()] * 2, "driver_id": [1001, 1002]}).to_csv(
        orders, sep="\t", index=False
    )
    result, tasks = run("batch_predictions", requests=str(orders))
    assert result.state == "success", result.error
    assert tasks["predict"].output["scored"] == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"estimator": "nope"}, "param estimator must be one of"),
        ({"min_r2": 2}, r"param min_r2 must be in \[-inf, 1\], got 2"),
        ({"hyperparams": "[1]"}, "hyperparams must be a JSON object"),
        ({"test_size": "abc"}, "param test_size must be a finite number, got 'abc'"),
        ({"test_size": 1.0}, r"param test_size must be in \(0, 1\), got 1.0"),
        ({"seed": 1.7}, "param seed must be an integer"),
        ({"min_auc": float("nan")}, "param min_auc must be a finite number"),
        ({"tolerance": -1}, r"param tolerance must be in \[0, inf\]"),
        ({"promote": "yes"}, "param promote must be one of"),
        ({"gate_metric": "f1"}, "param gate_metric must be one of"),
        ({"features": "driver_stats:conv_rate"}, "param features must be a list"),
        ({"model_name": "no spaces"}, "invalid model name"),
        ({"served_labels": "yes"}, "param served_labels must be true or false, got 'yes'"),
        ({"allow_duplicate": 1}, "param allow_duplicate must be true or false, got 1"),
    ],
)
def test_bad_training_params_are_refused_before_any_work(platform, litemlops_run, params,
                                                         message):
    from litemlops.errors import ValidationError

    with pytest.raises(ValidationError, match=message):
        litemlops_run(platform.catalog.get("training"), params)
    assert platform.pipelines.list_runs() == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ranges": [1, 2]}, "param ranges must map columns to"),
        ({"ranges": {"conv_rate": [1]}}, r"range of 'conv_rate' must be \[min, max\]"),
        ({"max_null_rate": 2}, r"param max_null_rate must be in \[0, 1\]"),
        ({"view": ""}, "param view must be a non-empty string"),
    ],
)
def test_bad_data_params_are_refused_before_any_work(platform, litemlops_run, params, message):
    from litemlops.errors import ValidationError

    with pytest.raises(ValidationError, match=message):
        litemlops_run(platform.catalog.get("data"), params)


def test_a_failed_train_task_leaves_no_tracking_run_open(platform, run):
    run("data")
    _, tasks = run("training", hyperparams='{"no_such_param": 1}')
    assert "no_such_param" in tasks["train"].error
    assert all(r.status != "running" for r in platform.tracker.list_runs())


def test_the_split_keeps_each_labelled_row_on_its_side_as_labels_grow():
    from litemlops.demo.training import split_by_identity

    stats = generate_driver_stats(DRIVERS, 24 * 5, end=NOW, random_state=3)
    labels = generate_labels(stats, 600, random_state=3)
    keys = ["driver_id", "event_timestamp"]
    _, test = split_by_identity(labels.head(400), keys, 0.2, seed=42)
    train_more, test_more = split_by_identity(labels, keys, 0.2, seed=42)
    # Rows tested before are still tested; none of them moved to training.
    assert set(test.index) <= set(test_more.index)
    assert not set(test.index) & set(train_more.index)
    _, other_seed = split_by_identity(labels, keys, 0.2, seed=7)
    assert set(other_seed.index) != set(test_more.index)


def test_batch_predictions_write_joinable_parquet_with_the_champion(platform, run):
    run("data")
    run("training")
    result, tasks = run("batch_predictions")
    assert result.state == "success", result.error
    out = pd.read_parquet(tasks["write_predictions"].output["path"])
    assert list(out.columns) == [
        "driver_id", "event_timestamp", "conv_rate", "acc_rate", "avg_daily_trips",
        "prediction", "model", "model_version",
    ]
    assert len(out) == DRIVERS + 1
    unknown = out[out.driver_id == 999]
    assert unknown.prediction.isna().all()  # no features: no prediction, counted
    assert tasks["predict"].output["missing_features"] == 1
    known = out[out.driver_id != 999]
    assert known.prediction.between(0, 1).all() and (known.model_version == 1).all()
    # The scores are the champion's on those rows.
    model = platform.registry.load_model("driver_ranker@champion")
    X = known[["conv_rate", "acc_rate", "avg_daily_trips"]].astype("float64")
    assert known.prediction.tolist() == pytest.approx(model.predict_proba(X)[:, 1].tolist())
    assert (out.event_timestamp == pd.Timestamp(NOW)).all()


def test_batch_predictions_without_a_champion_fail_clearly(platform, run):
    run("data")
    result, tasks = run("batch_predictions")
    assert result.state == "failed"
    assert "no registered model named 'driver_ranker'" in tasks["predict"].error


def test_evaluate_runs_alone_into_the_tracking_run_train_ended(platform, run):
    """run-step (another process, later) reopens the tracking run and ends it again."""
    run("data")
    result, tasks = run("training", min_auc=0.99)
    assert result.state == "failed"
    tracking_id = tasks["train"].output["tracking_run_id"]
    assert platform.tracker.get_run(tracking_id).status == "finished"
    step = platform.pipelines.run_step(platform.catalog.get("training"), "evaluate", result.run_id)
    assert (step.state, step.attempt) == ("success", 2)
    again = platform.tracker.get_run(tracking_id)
    assert again.status == "finished" and "test_auc" in again.metrics


def test_the_demo_schedules_come_from_config_and_fire_on_the_clock(platform, run):
    from datetime import timedelta

    from litemlops.errors import ConfigError

    scheduler = platform.scheduler
    assert {s.name: s.cron or s.interval for s, _ in scheduler.schedules()} == {
        "data": "*/10 * * * *", "training": "0 3 * * *", "batch_predictions": "0 * * * *",
        "monitoring": timedelta(seconds=60),
    }
    due = scheduler.run_pending(NOW + timedelta(minutes=9))
    assert [r.pipeline for r in due] == ["monitoring"]  # every minute, coalesced
    (run,) = [r for r in scheduler.run_pending(NOW + timedelta(minutes=10)) if r.pipeline == "data"]
    assert (run.pipeline, run.trigger, run.state) == ("data", "schedule", "success")
    assert run.payload == {"schedule": "data", "scheduled_at": "2026-03-01T12:10:00+00:00"}
    assert platform.features.describe("driver_stats")["offline_rows"] > 0
    off = Config.load(platform.config.home, env={"LITEMLOPS_SCHEDULES_TRAINING": ""})
    from litemlops.demo.pipelines import demo_pipelines

    assert {p.name: p.schedule for p in demo_pipelines(off)}["training"] is None
    bad = Config.load(platform.config.home, env={"LITEMLOPS_SCHEDULES_DATA": "every minute"})
    with pytest.raises(ConfigError, match=r"config key schedules\.data: schedule of 'data'"):
        demo_pipelines(bad)


def test_every_task_of_a_demo_run_emits_its_events_bound_to_the_run(platform, litemlops_run):
    result = litemlops_run(platform.catalog.get("data"))
    succeeded = result.events_named("task_succeeded")
    assert [e["task"] for e in succeeded] == list(platform.catalog.get("data").order)
    assert {(e["run_id"], e["pipeline"], e["attempt"]) for e in succeeded} == {
        (result.run.run_id, "data", 1)
    }
    assert all(e["duration"] >= 0 for e in succeeded)
    assert (result.work_dir("clean") / "clean.parquet").exists()


def test_parquet_and_csv_files_combine_and_a_null_created_never_wins(platform, run):
    config = platform.config
    (config.incoming_dir / "batch1.parquet").unlink()
    rows = platform.stats.head(6).copy()
    t = rows.iloc[0]
    dup = pd.DataFrame([{**t.to_dict(), "conv_rate": 0.111, "created": pd.NaT}])
    pd.concat([rows, dup]).to_parquet(config.incoming_dir / "a.parquet")
    csv = platform.stats.iloc[6:10].copy()
    csv.to_csv(config.incoming_dir / "b.csv", index=False)  # times as ISO text
    result, tasks = run("data")
    assert result.state == "success", tasks
    assert tasks["ingest"].output["rows"] == 11 and tasks["clean"].output["duplicates"] >= 1
    got = platform.features.get_historical_features(
        pd.DataFrame({"driver_id": [t.driver_id], "event_timestamp": [t.datetime]}),
        ["driver_stats:conv_rate"],
    )
    assert got.conv_rate[0] == t.conv_rate  # the dated row, not the undated 0.111
    # A row of its own without a created time cannot be stored: its file is rejected.
    lone = platform.stats.iloc[[20]].assign(created=pd.NaT)
    lone.to_parquet(config.incoming_dir / "c.parquet")
    result, tasks = run("data")
    assert result.state == "success" and tasks["ingest"].output["rejected"] == 1
    (why,) = tasks["ingest"].output["rejected_files"][0]["problems"]
    assert why == "column 'created' has 1 null(s); it may have none"


def test_write_offline_is_idempotent_and_leaves_a_file_rewritten_meanwhile(platform, run):
    config = platform.config
    pipeline = platform.catalog.get("data")
    result, tasks = run("data")
    rows = platform.features.describe("driver_stats")["offline_rows"]
    # Run write_offline's work again in the same run (a retry after archiving failed).
    with platform.pipelines.db.write() as con:
        con.execute("UPDATE task_runs SET state = 'failed' WHERE run_id = ? AND task IN "
                    "('write_offline', 'materialize')", [result.run_id])
        con.execute("UPDATE pipeline_runs SET state = 'failed' WHERE run_id = ?",
                    [result.run_id])
    again = platform.pipelines.resume(pipeline, result.run_id)
    assert again.state == "success"
    assert platform.features.describe("driver_stats")["offline_rows"] == rows
    # A producer rewrites its file while the run reads it: the new one waits, and a file
    # that looked bad (half written, say) is not rejected either.
    platform.stats.head(5).to_parquet(config.incoming_dir / "late.parquet")
    (config.incoming_dir / "half.csv").write_text("driver_id,datetime\n1001,")
    from litemlops.demo import pipelines as demo_pipelines

    original = demo_pipelines._identity
    calls = iter(range(100))
    demo_pipelines._identity = lambda path: [next(calls)]  # changed at every look
    try:
        result, tasks = run("data")
    finally:
        demo_pipelines._identity = original
    assert tasks["write_offline"].output["changed_since_read"] == [
        str(config.incoming_dir / "late.parquet")
    ]
    assert (config.incoming_dir / "late.parquet").exists()
    assert (config.incoming_dir / "half.csv").exists()
    assert tasks["ingest"].output["rejected"] == 0
    assert not (config.incoming_dir / "rejected").exists()


def test_blank_request_times_are_scored_now(platform, run):
    run("data")
    run("training")
    pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": ["", NOW.isoformat()]}).to_csv(
        platform.config.data_dir / "batch_requests.csv", index=False
    )
    result, tasks = run("batch_predictions")
    assert result.state == "success", tasks
    out = pd.read_parquet(tasks["write_predictions"].output["path"])
    assert (out.event_timestamp == pd.Timestamp(NOW)).all() and out.prediction.notna().all()
