"""Compaction of rotated event files into the history: layout, types, crashes, retention, locks."""

import io
import json
import multiprocessing
import os
import threading
from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
import structlog
from history_logs import (
    NOW,
    T0,
    compact,
    config_of,
    copy_log,
    label,
    lines_of,
    served,
    write_log,
)

from litemlops import events
from litemlops.config import Config
from litemlops.errors import HistoryError
from litemlops.home_lock import HomeLock
from litemlops.logsetup import configure_logging, shutdown_logging
from litemlops.monitoring import compactor, history, read_feedback, read_predictions
from litemlops.monitoring.history import EVENTS_FILE, HISTORY_DIR, MANIFEST, Manifest

KINDS = {"x": "numeric", "code": "categorical"}


def sample_files():
    return [
        [served("a", 1, [{"x": 1.5, "code": 7}], entities=[1001], output=1001),
         label("a", 2, 1.0)],
        [served("b", 3, [{"x": 2.5, "code": 8}, {"x": None, "code": 9}]),
         label("b", 4, 0.0)],
        [served("c", 5, [{"x": 3.5, "code": 7}], entities=[1002], output=1002)],
    ]


def manifest(logs):
    return Manifest.read(logs / HISTORY_DIR)


def parquet_files(logs):
    return sorted(p.relative_to(logs / HISTORY_DIR).as_posix()
                  for p in (logs / HISTORY_DIR).rglob("*.parquet"))


def same_reads(logs, parsed, **window):
    pd.testing.assert_frame_equal(read_predictions(logs, features=KINDS, **window),
                                  read_predictions(parsed, features=KINDS, **window))
    pd.testing.assert_frame_equal(read_feedback(logs, **window), read_feedback(parsed, **window))


@pytest.fixture
def logs(tmp_path):
    return write_log(tmp_path / "home" / "logs", sample_files())


@pytest.fixture
def parsed(logs, tmp_path):
    """The same log, never compacted: what a read must give."""
    return copy_log(logs, tmp_path / "parsed")


# -- layout and types --------------------------------------------------------------------------


def test_rotated_files_move_into_date_partitions_and_the_live_file_stays(logs, parsed):
    done = compact(logs)

    assert (done.status, done.files, done.lines) == ("ok", 2, 4)
    assert history.event_files(logs) == [logs / EVENTS_FILE]
    assert parquet_files(logs) == [
        "date=2026-01-01/events-000000000000-000000000001.parquet",
        "date=2026-01-01/events-000000000002-000000000003.parquet",
        "date=2026-01-01/feedback-000000000001-000000000001.parquet",
        "date=2026-01-01/feedback-000000000003-000000000003.parquet",
        "date=2026-01-01/predictions-000000000000-000000000000.parquet",
        "date=2026-01-01/predictions-000000000002-000000000002.parquet",
    ]
    same_reads(logs, parsed)
    assert read_predictions(logs, features=KINDS)["request_id"].tolist() == ["a", "b", "b", "c"]
    assert compact(logs).files == 0  # nothing left to do


def test_rows_go_to_the_partition_of_their_own_day(tmp_path):
    late = T0 + timedelta(days=1, hours=2)
    events_ = [served("a", 1, [{"x": 1.0}]),
               {**served("b", 0, [{"x": 2.0}]), "timestamp": late.isoformat()}]
    logs = write_log(tmp_path / "home" / "logs", [events_, []])

    compact(logs, now=late)

    assert {p.day for p in manifest(logs).parts if p.kind == "predictions"} == {
        "2026-01-01", "2026-01-02"}
    assert read_predictions(logs)["request_id"].tolist() == ["a", "b"]


def test_features_are_stored_as_numbers_with_text_only_where_a_value_is_not_one(tmp_path):
    rows = [served("a", 1, [{"x": 1.5, "n": 7, "mixed": 2.5, "city": "hue"}]),
            served("b", 2, [{"x": 2.5, "n": 8, "mixed": "high", "city": "hanoi"}])]
    logs = write_log(tmp_path / "home" / "logs", [rows, []])

    compact(logs)

    (part,) = [p for p in manifest(logs).parts if p.kind == "predictions"]
    schema = pq.read_schema(logs / HISTORY_DIR / part.name)
    assert str(schema.field("num:x").type) == "double"
    assert str(schema.field("int:n").type) == "int64"
    assert "text:x" not in schema.names and "text:n" not in schema.names
    assert part.features == {"x": ["num"], "n": ["int"], "mixed": ["num", "text"],
                             "city": ["text"]}
    frame = read_predictions(logs, features={"n": "numeric", "mixed": "categorical"})
    assert frame["n"].tolist() == [7.0, 8.0]
    assert frame["mixed"].tolist() == ["2.5", "high"]
    assert read_predictions(logs, features={"n": "categorical"})["n"].tolist() == ["7", "8"]


def test_a_truncated_or_corrupted_line_is_skipped_as_a_parse_skips_it(tmp_path):
    good = [served("a", 1, [{"x": 1.5, "code": 1}]), label("a", 2, 1.0)]
    broken = [*good, b'{"event": "prediction_served", "featu\n', b"\xff\xfe not json\n",
              served("b", 3, [{"x": 2.5, "code": 2}])]
    logs = write_log(tmp_path / "home" / "logs", [broken, []])
    parsed = copy_log(logs, tmp_path / "parsed")

    assert compact(logs).files == 1

    same_reads(logs, parsed)
    assert read_predictions(logs)["request_id"].tolist() == ["a", "b"]


def test_numbered_backups_of_older_versions_are_compacted_too(tmp_path):
    logs = tmp_path / "home" / "logs"
    logs.mkdir(parents=True)
    for n, rows in ((2, [served("a", 1, [{"x": 1.0}])]), (1, [served("b", 2, [{"x": 2.0}])])):
        (logs / f"{EVENTS_FILE}.{n}").write_bytes(lines_of(rows))
    (logs / EVENTS_FILE).write_bytes(lines_of([served("c", 3, [{"x": 3.0}])]))

    assert compact(logs).files == 2

    assert history.event_files(logs) == [logs / EVENTS_FILE]
    assert read_predictions(logs)["request_id"].tolist() == ["a", "b", "c"]


def test_a_file_written_moments_ago_waits_and_so_do_the_files_after_it(logs):
    history.event_files(logs)[0].touch()  # a writer that missed the rotation may add more

    done = history.compact(config_of(logs), clock=lambda: NOW)

    assert (done.files, done.waiting) == (0, 2)
    assert len(history.event_files(logs)) == 3


# -- crashes -----------------------------------------------------------------------------------


class Crash(BaseException):
    """A process killed in the middle (nothing may catch it)."""


def test_a_crash_after_publishing_neither_loses_nor_doubles_rows(logs, parsed, monkeypatch):
    def killed(self, path):
        raise Crash("killed before removing the source")

    with monkeypatch.context() as patched:
        patched.setattr(compactor.Compactor, "remove_source", killed)
        with pytest.raises(Crash, match="killed before removing the source"):
            compact(logs)

    assert len(history.event_files(logs)) == 3  # the first file is in the history and here
    assert len(manifest(logs).sources) == 1
    same_reads(logs, parsed)
    compact(logs)
    assert history.event_files(logs) == [logs / EVENTS_FILE]
    assert manifest(logs).sources == {}
    same_reads(logs, parsed)


def test_a_crash_before_publishing_leaves_files_that_are_ignored_then_removed(
    logs, parsed, monkeypatch
):
    publish = compactor.Compactor.publish

    def killed(self, manifest_):
        if manifest_.parts:
            raise Crash("killed before publishing")
        publish(self, manifest_)

    with monkeypatch.context() as patched:
        patched.setattr(compactor.Compactor, "publish", killed)
        with pytest.raises(Crash, match="killed before publishing"):
            compact(logs)

    assert parquet_files(logs)  # written, but no manifest names them
    assert manifest(logs).parts == []
    same_reads(logs, parsed)
    compact(logs)
    assert parquet_files(logs) == sorted(p.name for p in manifest(logs).parts)
    same_reads(logs, parsed)


def test_a_partially_written_parquet_file_is_removed(logs, parsed):
    compact(logs)
    day = logs / HISTORY_DIR / "date=2026-01-01"
    # Cut short mid-write, under its temporary name and under the name it was to take.
    (day / ".predictions-000000000005-000000000009.parquet.77.tmp").write_bytes(b"PAR1\x00")
    (day / "predictions-000000000005-000000000009.parquet").write_bytes(b"PAR1\x00\x01")
    same_reads(logs, parsed)

    compact(logs)

    assert not list(day.glob("*.tmp"))
    assert not (day / "predictions-000000000005-000000000009.parquet").exists()
    same_reads(logs, parsed)


def test_an_unwritable_history_folder_is_a_clear_error_and_the_files_stay(logs, parsed):
    (logs / HISTORY_DIR).write_text("not a folder")

    with pytest.raises(HistoryError, match=r"cannot write the event history in .*history"):
        compact(logs)

    assert len(history.event_files(logs)) == 3
    same_reads(logs, parsed)


def test_a_missing_manifest_beside_history_files_is_refused(logs):
    compact(logs)
    (logs / HISTORY_DIR / MANIFEST).unlink()

    with pytest.raises(HistoryError, match=r"manifest\.json is missing"):
        compact(logs)
    assert parquet_files(logs)  # nothing was deleted


def test_lines_appended_after_compaction_are_compacted_too(logs, parsed, monkeypatch):
    monkeypatch.setattr(compactor.Compactor, "remove_source", lambda self, path: None)
    compact(logs)
    first = history.event_files(logs)[0]
    more = [served("late", 6, [{"x": 9.5, "code": 1}])]
    with first.open("ab") as f:  # a writer that had not noticed the rotation
        f.write(lines_of(more))
    with (parsed / first.name).open("ab") as f:
        f.write(lines_of(more))
    monkeypatch.undo()

    compact(logs)

    assert history.event_files(logs) == [logs / EVENTS_FILE]
    same_reads(logs, parsed)
    assert "late" in set(read_predictions(logs)["request_id"])


# -- retention and merging ---------------------------------------------------------------------


def daily_log(tmp_path, days):
    """A file of predictions for each of `days` days (one a day), then the live file."""
    files = [[served(f"d{d}", d * 86_400, [{"x": float(d)}])] for d in range(days)]
    return write_log(tmp_path / "home" / "logs", [*files, []])


def test_retention_by_days_counts_from_the_clock(tmp_path):
    logs = daily_log(tmp_path, 5)
    now = T0 + timedelta(days=4, hours=12)

    done = compact(logs, now=now, keep_days=2)

    assert read_predictions(logs)["request_id"].tolist() == ["d3", "d4"]
    assert done.expired == 6  # predictions and events of days 0 to 2
    assert len(parquet_files(logs)) == 10  # kept a while for readers of the old manifest
    compact(logs, now=now + timedelta(seconds=compactor.GRACE_SECONDS), keep_days=2)
    assert len(parquet_files(logs)) == 4
    assert {p.day for p in manifest(logs).parts} == {"2026-01-04", "2026-01-05"}


def test_retention_by_size_removes_the_oldest_first(tmp_path):
    logs = daily_log(tmp_path, 5)
    compact(logs)
    sizes = sorted(((p.last, p.bytes) for p in manifest(logs).parts), reverse=True)
    limit = sum(size for _, size in sizes[:4])  # room for the newest two days

    compact(logs, max_bytes=limit)

    assert read_predictions(logs)["request_id"].tolist() == ["d3", "d4"]
    assert sum(p.bytes for p in manifest(logs).parts) <= limit


def test_small_files_of_a_day_are_merged_in_order(tmp_path, monkeypatch):
    files = [[served(f"r{i}", i, [{"x": float(i), "code": i}]), label(f"r{i}", i, 1.0)]
             for i in range(10)]
    logs = write_log(tmp_path / "home" / "logs", [*files, []])
    parsed = copy_log(logs, tmp_path / "parsed")

    done = compact(logs)

    assert done.merged == 30
    kinds = sorted(p.kind for p in manifest(logs).parts)
    assert kinds == ["events", "feedback", "predictions"]
    same_reads(logs, parsed)
    same_reads(logs, parsed, last=3)
    assert read_predictions(logs)["request_id"].tolist() == [f"r{i}" for i in range(10)]


# -- concurrency -------------------------------------------------------------------------------


def test_a_second_compactor_finds_the_history_busy(logs):
    (logs / HISTORY_DIR).mkdir()
    with HomeLock(logs / HISTORY_DIR / history.LOCK):
        assert compact(logs).status == "busy"
    assert compact(logs).files == 2


def _compact_in_a_process(logs_dir, start):
    start.wait()
    return compact(logs_dir).files


def test_two_processes_compacting_at_once_take_each_file_once(tmp_path):
    files = [[served(f"r{i}-{j}", i * 10 + j, [{"x": float(j), "code": j}]) for j in range(20)]
             for i in range(12)]
    logs = write_log(tmp_path / "home" / "logs", files)
    parsed = copy_log(logs, tmp_path / "parsed")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(2) as pool:
            results = [pool.apply_async(_compact_in_a_process, (logs, start)) for _ in range(2)]
            start.set()
            done = [r.get(timeout=120) for r in results]

    compact(logs)  # finishes what a "busy" one left
    assert sum(done) <= 11 and history.event_files(logs) == [logs / EVENTS_FILE]
    assert manifest(logs).next_line == 11 * 20  # every line of the rotated files, once
    same_reads(logs, parsed)


def test_compacting_while_the_server_writes_and_rotates_loses_nothing(tmp_path, restore_logging):
    config = Config.load(tmp_path / "home", env={}, overrides={
        "logging.max_bytes": 4000, "logging.console": False})
    configure_logging(config, console_stream=io.StringIO(), background=True)
    log = structlog.get_logger("litemlops.server")
    written = 600
    errors = []

    def serve():
        for i in range(written):
            log.info(events.PREDICTION_SERVED, request_id=f"r{i}", service="predict",
                     model="m", version=1, entities=[], features=[{"x": float(i)}],
                     scores=[0.5], output=[0.5], latency_ms=1.0)

    def compact_often():
        try:
            for _ in range(20):
                history.compact(config, clock=lambda: NOW + timedelta(days=400),
                                settle_seconds=0)
        except Exception as exc:  # reported below
            errors.append(exc)

    server = threading.Thread(target=serve)
    compactor = threading.Thread(target=compact_often)
    server.start()
    compactor.start()
    server.join()
    compactor.join()
    shutdown_logging()
    history.compact(config, clock=lambda: NOW + timedelta(days=400), settle_seconds=0)

    assert errors == []
    frame = read_predictions(config.logs_dir, features={"x": "numeric"})
    assert frame["request_id"].tolist() == [f"r{i}" for i in range(written)]
    assert frame["x"].tolist() == [float(i) for i in range(written)]
    assert len(history.event_files(config.logs_dir)) == 1


# -- late labels -------------------------------------------------------------------------------


def test_a_label_that_arrives_days_later_still_joins_its_prediction(tmp_path):
    from litemlops.monitoring.performance import labelled_rows

    prediction = served("old", 0, [{"x": 0.25}], entities=[1001], output=1001)
    logs = write_log(tmp_path / "home" / "logs", [
        [prediction],
        *[[served(f"busy{d}-{i}", d * 86_400 + i, [{"x": 1.0}]) for i in range(50)]
          for d in range(1, 4)],
        [label("old", 3 * 86_400 + 600, 1.0)],  # three days later, in the live file
    ])
    compact(logs, now=T0 + timedelta(days=3))

    predictions = read_predictions(logs, features={"x": "numeric"}, labelled=True)
    rows = labelled_rows(predictions, read_feedback(logs))

    assert predictions["request_id"].tolist() == ["old"]
    assert rows[["request_id", "entity", "x", "label"]].to_dict("records") == [
        {"request_id": "old", "entity": "1001", "x": 0.25, "label": 1.0}]
    lag = (rows["label_ts"] - rows["timestamp"]).iloc[0]
    assert lag == timedelta(days=3, seconds=600)


def test_the_manifest_is_json_a_person_can_read(logs):
    compact(logs)

    data = json.loads((logs / HISTORY_DIR / MANIFEST).read_text())

    assert data["format"] == history.FORMAT
    assert {p["kind"] for p in data["parts"]} == {"events", "feedback", "predictions"}
    assert os.path.exists(logs / HISTORY_DIR / data["parts"][0]["name"])


def test_predictions_whose_feature_objects_have_no_keys_keep_their_rows(tmp_path):
    logs = write_log(tmp_path / "home" / "logs",
                     [[served("a", 1, [{}]), served("b", 2, [{}, {}])], []])
    parsed = copy_log(logs, tmp_path / "parsed")

    compact(logs)

    frame = read_predictions(logs, features={"x": "numeric"})
    pd.testing.assert_frame_equal(frame, read_predictions(parsed, features={"x": "numeric"}))
    assert frame["request_id"].tolist() == ["a", "b", "b"]


def test_the_cli_compacts_and_says_what_it_did(logs):
    from click.testing import CliRunner

    from litemlops.cli.main import cli

    home = str(logs.parent)
    (logs.parent / "config.toml").write_text("")  # a home, though only its log is here
    env = {k: None for k in os.environ if k.startswith("LITEMLOPS_")}
    # The events are of 2026-01-01: a retention of ten years keeps them, whatever today is.
    env["LITEMLOPS_HISTORY_KEEP_DAYS"] = "3650"
    out = CliRunner().invoke(cli, ["monitor", "compact", "--home", home], env=env)
    again = CliRunner().invoke(cli, ["monitor", "compact", "--home", home, "--json"], env=env)
    nowhere = CliRunner().invoke(cli, ["monitor", "compact", "--home", str(logs / "x")], env=env)

    assert out.exit_code == 0, out.output
    assert out.output.startswith("2 event file(s), 4 lines, into the history;")
    assert "0 expired" in out.output
    assert json.loads(again.output)["files"] == 0
    assert read_predictions(logs)["request_id"].tolist() == ["a", "b", "b", "c"]
    assert nowhere.exit_code == 1 and "no litemlops home at" in nowhere.output


def test_odd_lines_read_from_the_history_as_they_parse_and_come_back_whole(tmp_path):
    from litemlops.monitoring import event_log

    odd = [
        served("a", 1, [{"x": 1.5, "city": "hanoi"}]),
        served("b", 2, [{"x": "oops", "city": None}, {"x": 2.5, "city": 7}]),
        {"event": "prediction_served", "timestamp": "not a time", "request_id": "c",
         "features": [{"x": 1.0}]},
        served("d", 3, "nonsense"),
        {**served("e", 4, [{"x": 1e300, "city": {"nested": [1]}}, 5, {"x": -0.0, "city": 1e20}]),
         "scores": "abc", "request_id": 5, "timestamp": "2026-01-01T00:00:04+00:00"},
        {**served("f", 5, [{"x": 3.5, "city": "hue"}]), "scores": [1, "x"]},
        {**served("g", 6, [{"x": 4.5, "city": "hue"}]), "version": "v7", "entities": {"a": 1}},
    ]
    logs = write_log(tmp_path / "home" / "logs", [
        [*odd, b'{"event": "prediction_served", "featu\n'], [served("h", 7, [{"x": 3.5}])]])
    parsed = copy_log(logs, tmp_path / "parsed")
    kinds = {"x": "numeric", "city": "categorical"}

    compact(logs)

    for features in (kinds, None):
        pd.testing.assert_frame_equal(read_predictions(logs, features=features),
                                      read_predictions(parsed, features=features))
    found = event_log.query_events(logs, limit=100)
    assert found.unreadable == 1
    came = [json.loads(line) for line in found.lines]
    timed = [e for e in odd if e["timestamp"] != "not a time"]
    assert [list(e.items()) for e in came[1:7]] == [list(e.items()) for e in timed]


def test_every_row_group_written_or_merged_carries_a_bloom_filter_of_request_ids(
    tmp_path, monkeypatch
):
    # A lookup of one request (the lineage page, its labels) skips the row groups whose
    # filter rules it out; without a filter it would read every one.
    monkeypatch.setattr(compactor, "ROW_GROUP", 2)
    files = [[served(f"r{i}", i, [{"x": float(i), "code": i}] * 3), label(f"r{i}", i, 1.0)]
             for i in range(10)]
    logs = write_log(tmp_path / "home" / "logs", [*files, []])
    parsed = copy_log(logs, tmp_path / "parsed")

    assert compact(logs).merged == 30
    filtered = set()
    for part in manifest(logs).parts:
        meta = pq.ParquetFile(logs / HISTORY_DIR / part.name).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if "request_id" not in names:
            continue
        index = names.index("request_id")
        assert meta.num_row_groups > 1
        for group in range(meta.num_row_groups):
            assert meta.row_group(group).column(index).to_dict()["bloom_filter_length"] > 0
        filtered.add(part.kind)
    assert {"predictions", "feedback"} <= filtered
    for request in ("r0", "r7", "nobody"):
        pd.testing.assert_frame_equal(
            read_predictions(logs, features=KINDS, request_id=request),
            read_predictions(parsed, features=KINDS, request_id=request),
        )
        pd.testing.assert_frame_equal(read_feedback(logs, request_id=request),
                                      read_feedback(parsed, request_id=request))


@pytest.mark.parametrize("compacted", [False, True])
def test_no_features_asked_or_none_logged_still_gives_every_answer(tmp_path, compacted):
    logs = write_log(tmp_path / "home" / "logs",
                     [[served("a", 1, [{"x": 1.5}], entities=[1], output=1)],
                      [served("b", 2, [{}, {}])], []])
    if compacted:
        compact(logs)
    fixed = ["request_id", "timestamp", "model", "version", "service", "entity", "score",
             "output"]  # fmt: skip

    bare = read_predictions(logs, features={})
    assert bare.columns.tolist() == fixed
    assert bare["request_id"].tolist() == ["a", "b", "b"]
    assert bare["score"].tolist() == [0.1, 0.1, 0.2]
    # A request whose feature objects have no keys is found by its id, with its rows.
    only = read_predictions(logs, request_id="b")
    assert only.columns.tolist() == fixed
    assert only["score"].tolist() == [0.1, 0.2]
    assert read_predictions(logs, request_id="nobody").columns.tolist() == fixed
