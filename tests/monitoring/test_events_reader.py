import io
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
import structlog
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops import events
from litemlops.config import Config
from litemlops.errors import ValidationError
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.monitoring import read_feedback, read_predictions
from litemlops.monitoring.history import event_files

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _logging_restored(restore_logging):
    """Every test here configures logging; each leaves it as it found it."""


def serve_inference(log, request_id, drivers):
    """A `/inference` answer as the server logs it: features and scores in driver order."""
    features = [
        {"conv_rate": d / 10_000, "acc_rate": 0.5, "avg_daily_trips": d % 100} for d in drivers
    ]
    scores = [d / 2000 for d in drivers]
    log.info(
        events.PREDICTION_SERVED,
        request_id=request_id,
        service="inference",
        model="driver_ranker",
        version=2,
        entities=drivers,
        features=features,
        scores=scores,
        output=max(drivers),
        latency_ms=1.5,
    )


def serve_predict(log, request_id, rows, entities=()):
    """A `/predict` answer: feature rows (with their entity rows, if sent) in order."""
    scores = [row["conv_rate"] * 2 for row in rows]
    log.info(
        events.PREDICTION_SERVED,
        request_id=request_id,
        service="predict",
        model="driver_ranker",
        version=3,
        entities=list(entities),
        features=rows,
        scores=scores,
        output=scores,
        latency_ms=0.7,
    )


@pytest.fixture
def log_dir(tmp_path):
    """A real event log: both services' predictions among other events, rotated over
    several files, with a last line cut short as if read while being written."""
    config = Config.load(
        tmp_path / "home",
        env={},
        overrides={"logging.max_bytes": 3000, "logging.backups": 20, "logging.console": False},
    )
    configure_logging(config, console_stream=io.StringIO())
    log = structlog.get_logger("litemlops.server")
    for i in range(30):
        if i % 3 == 2:
            serve_predict(
                log,
                f"p{i}",
                [{"conv_rate": 0.1, "acc_rate": 0.2, "avg_daily_trips": 3.0},
                 {"conv_rate": 0.3, "acc_rate": 0.4, "avg_daily_trips": 5.0}],
                entities=[{"driver_id": 1001}, {"driver_id": 1002}] if i % 2 else [],
            )
        else:
            serve_inference(log, f"r{i}", [1001 + i, 1002 + i, 1003 + i])
        log.info(events.FEATURES_APPLIED, objects=["driver_stats"], changed=[])
        structlog.get_logger("litemlops.pipeline").info(
            "odd_event", features="a string", version="v1", scores=None
        )
        if i % 5 == 0:
            log.info(events.FEEDBACK_RECEIVED, request_id=f"r{i}", label=1.0)
    shutdown_logging()
    with config.events_log_path.open("a") as f:
        f.write('{"event": "prediction_served", "request_id": "cut", "features": {"1"')
    return config.logs_dir


def test_the_log_is_rotated_and_every_file_is_read(log_dir):
    files = event_files(log_dir)

    assert len(files) > 3
    assert files[-1].name == "events.jsonl"
    rotated = [f.name for f in files[:-1]]
    assert all(name.startswith("events-") for name in rotated)
    assert rotated == sorted(rotated)  # oldest first: names hold the time of rotation


def test_predictions_of_both_services_come_back_one_row_per_scored_entity(log_dir):
    frame = read_predictions(log_dir)

    assert list(frame.columns) == [
        "request_id", "timestamp", "model", "version", "service", "entity",
        "conv_rate", "acc_rate", "avg_daily_trips", "score", "output",
    ]
    assert frame["request_id"].nunique() == 30  # the cut-short line is skipped
    assert len(frame) == 20 * 3 + 10 * 2
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["timestamp"].is_monotonic_increasing

    r0 = frame[frame["request_id"] == "r0"]
    assert r0["entity"].tolist() == ["1001", "1002", "1003"]
    assert r0["conv_rate"].tolist() == pytest.approx([0.1001, 0.1002, 0.1003])
    assert r0["avg_daily_trips"].tolist() == [1.0, 2.0, 3.0]
    assert r0["score"].tolist() == pytest.approx([1001 / 2000, 1002 / 2000, 1003 / 2000])
    assert set(r0["output"]) == {"1003"}
    assert set(r0["service"]) == {"inference"} and set(r0["version"]) == {2}

    p2 = frame[frame["request_id"] == "p2"]  # feature rows, no entity rows
    assert p2["entity"].isna().all()
    assert p2["conv_rate"].tolist() == [0.1, 0.3]
    assert p2["score"].tolist() == pytest.approx([0.2, 0.6])
    assert p2["output"].astype(float).tolist() == pytest.approx([0.2, 0.6])
    p5 = frame[frame["request_id"] == "p5"]  # entity rows: their key is the entity
    assert p5["entity"].tolist() == ["1001", "1002"]
    assert set(p5["version"]) == {3}


def test_last_keeps_the_newest_events(log_dir):
    everything = read_predictions(log_dir)
    newest = list(dict.fromkeys(everything["request_id"]))[-4:]

    frame = read_predictions(log_dir, last=4)

    assert list(dict.fromkeys(frame["request_id"])) == newest
    assert len(read_predictions(log_dir, last=0)) == 0


def test_since_and_until_bound_the_window(log_dir):
    everything = read_predictions(log_dir)
    times = everything.drop_duplicates("request_id")["timestamp"].tolist()
    since, until = times[10].to_pydatetime(), times[20].to_pydatetime()

    frame = read_predictions(log_dir, since=since, until=until)

    assert frame["timestamp"].min() == since
    assert frame["timestamp"].max() < until
    assert frame["request_id"].nunique() == 10
    naive = read_predictions(log_dir, since=since.replace(tzinfo=None))
    assert naive["request_id"].nunique() == 20


def test_model_and_service_filter(log_dir):
    assert set(read_predictions(log_dir, service="predict")["service"]) == {"predict"}
    assert len(read_predictions(log_dir, model="another")) == 0
    newest = read_predictions(log_dir, last=3, model="driver_ranker", service="predict")
    assert newest["request_id"].unique().tolist() == ["p23", "p26", "p29"]


def test_feedback_is_read_with_its_labels(log_dir):
    frame = read_feedback(log_dir)

    assert list(frame.columns) == ["request_id", "timestamp", "label"]
    assert frame["request_id"].tolist() == ["r0", "r5", "r10", "r15", "r20", "r25"]
    assert frame["label"].tolist() == [1.0] * 6
    assert read_feedback(log_dir, last=2)["request_id"].tolist() == ["r20", "r25"]


def test_no_log_yet_is_an_empty_frame_with_the_columns(tmp_path):
    frame = read_predictions(tmp_path / "nowhere")

    assert len(frame) == 0
    assert list(frame.columns) == [
        "request_id", "timestamp", "model", "version", "service", "entity", "score", "output",
    ]
    assert list(read_feedback(tmp_path)) == ["request_id", "timestamp", "label"]


def write_lines(path, lines):
    with path.open("wb") as f:
        for line in lines:
            f.write(orjson.dumps(line) + b"\n")


def at(seconds):
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def predict_line(request_id, seconds, rows, **extra):
    scores = [0.5] * len(rows)
    return {"event": "prediction_served", "timestamp": at(seconds), "request_id": request_id,
            "model": "m", "version": 1, "service": "predict", "entities": [],
            "features": rows, "scores": scores, "output": scores, **extra}


def test_odd_values_become_nulls_rather_than_errors(tmp_path):
    write_lines(
        tmp_path / "events.jsonl",
        [
            predict_line("a", 1, [{"x": 1.5, "city": "hanoi"}]),
            predict_line("b", 2, [{"x": "oops", "city": None}, {"x": 2.5, "city": 7}]),
            {"event": "prediction_served", "timestamp": "not a time", "request_id": "c",
             "features": [{"x": 1.0}]},
            predict_line("d", 3, "nonsense", version="v7"),
            predict_line("e", 4, [{"x": 3.5, "city": "hue"}]),
        ],
    )

    frame = read_predictions(tmp_path)

    assert frame["request_id"].tolist() == ["a", "b", "b", "e"]
    assert frame["x"].tolist()[:1] + frame["x"].tolist()[2:] == [1.5, 2.5, 3.5]
    assert pd.isna(frame["x"].tolist()[1])
    assert frame["city"].fillna("-").tolist() == ["hanoi", "-", "7", "hue"]


def test_a_feature_of_mixed_types_is_read_as_text(tmp_path):
    write_lines(
        tmp_path / "events.jsonl",
        [predict_line("a", 1, [{"x": 1.5}]), predict_line("b", 2, [{"x": "high"}])],
    )

    assert read_predictions(tmp_path)["x"].tolist() == ["1.5", "high"]


def test_a_feature_named_like_a_column_keeps_its_values(tmp_path):
    write_lines(
        tmp_path / "events.jsonl",
        [{"event": "prediction_served", "timestamp": at(1), "request_id": "a", "model": "m",
          "version": 1, "service": "predict", "entities": [],
          "features": [{"score": 3.0, "x": 1.0}], "scores": [0.5], "output": [0.5]}],
    )

    frame = read_predictions(tmp_path)

    assert frame["features.score"].tolist() == [3.0]
    assert frame["score"].tolist() == [0.5]


def test_a_window_read_from_the_log_feeds_the_drift_report(log_dir):
    from litemlops.monitoring import build_profile, drift_report

    reference = pd.DataFrame(
        {"conv_rate": [0.1, 0.2, 0.3] * 10, "acc_rate": [0.5] * 30, "avg_daily_trips": [3.0] * 30}
    )

    report = drift_report(build_profile(reference), read_predictions(log_dir, last=10))

    assert report.status == "ok"
    assert report.window["rows"] == len(read_predictions(log_dir, last=10))
    assert report.window["start"] < report.window["end"]
    assert set(report.features) == {"conv_rate", "acc_rate", "avg_daily_trips"}


def test_named_features_are_read_with_their_kinds_and_nothing_else(tmp_path):
    write_lines(
        tmp_path / "events.jsonl",
        [predict_line("a", 1, [{"x": 1.5, "code": 7, "flag": True, "extra": 9.0}]),
         predict_line("b", 2, [{"x": 2.5, "code": "008", "flag": False, "extra": 9.0}])],
    )

    frame = read_predictions(
        tmp_path, features={"x": "numeric", "code": "categorical", "flag": "categorical"}
    )

    assert list(frame.columns[6:9]) == ["x", "code", "flag"]
    assert "extra" not in frame.columns
    assert frame["x"].tolist() == [1.5, 2.5]
    assert frame["code"].tolist() == ["7", "008"]
    assert frame["flag"].tolist() == ["true", "false"]


def test_a_profiles_kinds_name_the_features_to_read(log_dir):
    from litemlops.monitoring import build_profile

    profile = build_profile(pd.DataFrame({"conv_rate": [0.1], "avg_daily_trips": [3]}))

    frame = read_predictions(log_dir, features=profile.kinds)

    assert profile.kinds == {"conv_rate": "numeric", "avg_daily_trips": "numeric"}
    assert frame.columns.tolist()[6:8] == ["conv_rate", "avg_daily_trips"]
    assert frame["conv_rate"].equals(read_predictions(log_dir)["conv_rate"])


def test_an_unknown_feature_kind_is_an_error(tmp_path):
    with pytest.raises(ValidationError, match="numeric or categorical"):
        read_predictions(tmp_path, features={"x": "float"})


# Ids that JSON may spell several ways (quotes, backslashes, slashes, HTML-unsafe and
# non-ASCII characters) beside plain ones; a value of another field may equal an id.
_IDS = st.text(alphabet=st.sampled_from(list('ab-/"\\<é')), max_size=3)


@settings(max_examples=examples(60), deadline=None)
@given(
    answers=st.lists(st.tuples(_IDS, _IDS, st.booleans()), min_size=1, max_size=6),
    wanted=_IDS,
)
def test_a_read_of_one_request_gives_exactly_its_rows_however_its_id_is_spelled(
    answers, wanted
):
    # A read of one request parses only the lines that name it: a line that names it in
    # another field is still not its row, and one whose writer escaped the id (ASCII-only
    # JSON) is still found.
    with tempfile.TemporaryDirectory() as folder:
        logs = Path(folder)
        with (logs / "events.jsonl").open("wb") as f:
            for i, (request, tag, escaped) in enumerate(answers):
                lines = [predict_line(request, i, [{"x": float(i), "tag": tag}]),
                         {"event": "feedback_received", "timestamp": at(i),
                          "request_id": request, "label": float(i)}]  # fmt: skip
                for line in lines:
                    text = json.dumps(line, ensure_ascii=True) if escaped else json.dumps(
                        line, ensure_ascii=False)
                    f.write(text.encode() + b"\n")

        every = read_predictions(logs)
        mine = every[every["request_id"] == wanted].reset_index(drop=True)
        got = read_predictions(logs, request_id=wanted)
        if mine.empty:  # the features' columns are those of the rows found: none
            assert got.empty
        else:
            pd.testing.assert_frame_equal(got, mine)
        labels = read_feedback(logs)
        pd.testing.assert_frame_equal(
            read_feedback(logs, request_id=wanted),
            labels[labels["request_id"] == wanted].reset_index(drop=True),
        )
        assert len(mine) == sum(request == wanted for request, _, _ in answers)
