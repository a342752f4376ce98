"""Rotated event files are read from Parquet segments, and give what parsing them gives."""

import itertools
import os
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litemlops.monitoring import read_feedback, read_predictions, segments
from litemlops.monitoring.events import EVENTS_FILE

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = {"x": "numeric", "code": "categorical"}


def at(seconds):
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def served(request_id, seconds, rows, *, version=1, entities=None, output=None):
    """A prediction event: /inference's shape when `entities` are given, else /predict's."""
    scores = [round(0.1 * (i + 1), 3) for i in range(len(rows))]
    return {
        "event": "prediction_served",
        "timestamp": at(seconds),
        "request_id": request_id,
        "model": "m",
        "version": version,
        "service": "inference" if entities else "predict",
        "entities": entities or [],
        "features": rows,
        "scores": scores,
        "output": output if output is not None else scores,
    }


def label(request_id, seconds, value):
    return {"event": "feedback_received", "timestamp": at(seconds), "request_id": request_id,
            "label": value}


def write_log(folder, files):
    """`files` oldest first, as rotation leaves them: the last is the live file."""
    folder.mkdir(parents=True, exist_ok=True)
    for age, lines in enumerate(reversed(files)):
        name = EVENTS_FILE if age == 0 else f"{EVENTS_FILE}.{age}"
        (folder / name).write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return folder


def sample_log(folder):
    return write_log(
        folder,
        [
            [served("a", 1, [{"x": 1.5, "code": 7}], entities=[1001], output=1001),
             label("a", 2, 1.0)],
            [served("b", 3, [{"x": 2.5, "code": 8}, {"x": None, "code": 9}]),
             label("b", 4, 0.0)],
            [served("c", 5, [{"x": 3.5, "code": 7}], entities=[1002], output=1002)],
        ],
    )


def segment_files(folder, kind="predictions"):
    found = folder / segments.SEGMENTS_DIR
    if not found.is_dir():
        return []
    return sorted(p.name for p in found.iterdir() if p.name.startswith(kind))


def inodes(folder):
    return {n: (folder / segments.SEGMENTS_DIR / n).stat().st_ino for n in segment_files(folder)}


def name_of(path, kind="predictions"):
    return f"{kind}-v{segments.FORMAT}-{segments.identity(path)}.parquet"


def test_rotated_files_get_a_segment_the_live_file_does_not(tmp_path):
    logs = sample_log(tmp_path / "logs")

    cached = read_predictions(logs, features=KINDS)

    assert len(segment_files(logs)) == 2
    assert cached.equals(read_predictions(logs, features=KINDS, cache=False))
    assert cached["request_id"].tolist() == ["a", "b", "b", "c"]
    assert cached["code"].tolist() == ["7", "8", "9", "7"]  # ints stay "7", not "7.0"
    assert read_feedback(logs).equals(read_feedback(logs, cache=False))
    assert len(segment_files(logs, "feedback")) == 2


def test_a_second_read_takes_the_segment_not_the_file(tmp_path):
    logs = sample_log(tmp_path / "logs")
    read_predictions(logs, features=KINDS)
    built = inodes(logs)
    # Same size and time, other values: only a segment can still give the old ones.
    oldest = logs / f"{EVENTS_FILE}.2"
    before = oldest.stat()
    oldest.write_bytes(oldest.read_bytes().replace(b'"x":1.5', b'"x":9.5'))
    os.utime(oldest, ns=(before.st_atime_ns, before.st_mtime_ns))

    again = read_predictions(logs, features=KINDS)

    assert again["x"].tolist()[0] == 1.5
    assert read_predictions(logs, features=KINDS, cache=False)["x"].tolist()[0] == 9.5
    assert inodes(logs) == built


def test_rotation_keeps_renamed_files_segments_and_prunes_deleted_ones(tmp_path):
    logs = sample_log(tmp_path / "logs")
    read_predictions(logs)
    read_feedback(logs)
    deleted, renamed = (name_of(logs / f"{EVENTS_FILE}.{n}") for n in (2, 1))
    kept_inode = (logs / segments.SEGMENTS_DIR / renamed).stat().st_ino
    # Rotate with two backups kept: .2 is deleted, .1 -> .2, live -> .1, a new live file.
    os.replace(logs / f"{EVENTS_FILE}.1", logs / f"{EVENTS_FILE}.2")
    os.replace(logs / EVENTS_FILE, logs / f"{EVENTS_FILE}.1")
    write_log(logs, [[served("d", 7, [{"x": 4.5, "code": 1}])]])

    frame = read_predictions(logs)

    assert frame["request_id"].tolist() == ["b", "b", "c", "d"]
    assert segment_files(logs) == sorted([renamed, name_of(logs / f"{EVENTS_FILE}.1")])
    assert (logs / segments.SEGMENTS_DIR / renamed).stat().st_ino == kept_inode  # not rebuilt
    assert deleted not in segment_files(logs)
    read_feedback(logs)
    assert len(segment_files(logs, "feedback")) == 2
    assert frame.equals(read_predictions(logs, cache=False))


def test_a_folder_that_cannot_hold_segments_is_parsed(tmp_path):
    logs = sample_log(tmp_path / "logs")
    (logs / segments.SEGMENTS_DIR).write_text("not a folder")

    frame = read_predictions(logs, features=KINDS)

    assert frame.equals(read_predictions(logs, features=KINDS, cache=False))
    assert len(frame) == 4


def rotated(tmp_path):
    path = write_log(tmp_path / "logs", [[served("a", 1, [{"x": 1.0}])], []]) / f"{EVENTS_FILE}.1"
    return path


def test_a_file_that_changed_during_its_build_gets_no_segment(tmp_path):
    source = rotated(tmp_path)

    def build(file, dest):
        with open(dest, "wb") as out:
            out.write(b"segment")
        with open(file, "ab") as f:  # another file renamed into this path meanwhile
            f.write(b"{}\n")

    found = segments.cached(source.parent, [str(source)], "x", build, live=EVENTS_FILE)

    assert found == ([], [str(source)], [str(source)])
    assert list((source.parent / segments.SEGMENTS_DIR).iterdir()) == []


def test_a_segment_that_cannot_be_written_leaves_the_file_to_parse(tmp_path):
    source = rotated(tmp_path)

    def build(file, dest):
        raise OSError(28, "No space left on device")

    assert segments.cached(source.parent, [str(source)], "x", build, live=EVENTS_FILE) == (
        [], [str(source)], [str(source)]
    )


def test_a_file_gone_during_its_build_is_raised_for_the_reader_to_list_again(tmp_path):
    source = rotated(tmp_path)

    def build(file, dest):
        os.unlink(file)
        raise duckdb.IOException(f"No files found that match the pattern {file}")

    with pytest.raises(FileNotFoundError):
        segments.cached(source.parent, [str(source)], "x", build, live=EVENTS_FILE)


def test_stale_temporary_files_and_other_formats_are_removed(tmp_path):
    logs = sample_log(tmp_path / "logs")
    folder = logs / segments.SEGMENTS_DIR
    folder.mkdir()
    stale, fresh, old_format = (folder / ".a.tmp", folder / ".b.tmp",
                                folder / "predictions-v0-1-2-3-4.parquet")
    for path in (stale, fresh, old_format):
        path.write_bytes(b"x")
    os.utime(stale, (0, 0))

    read_predictions(logs)

    assert not stale.exists() and fresh.exists() and not old_format.exists()


# -- the same rows, cached or parsed -----------------------------------------------------------

codes = st.integers(0, 5)
rows = st.lists(
    st.fixed_dictionaries({"x": st.one_of(st.none(), st.floats(-1e6, 1e6)), "code": codes}),
    min_size=1, max_size=3,
)


@st.composite
def logs(draw):
    """Events a second apart or at the same time, cut into files at random."""
    events, second = [], 0
    for i in range(draw(st.integers(1, 25))):
        second += draw(st.sampled_from([0, 1, 1, 2]))
        version = draw(st.sampled_from([1, 2]))
        batch = draw(rows)
        if version == 2:  # version 2 takes one more feature
            batch = [{**row, "extra": float(j)} for j, row in enumerate(batch)]
        if draw(st.booleans()):
            drivers = list(range(1000, 1000 + len(batch)))
            events.append(served(f"r{i}", second, batch, version=version, entities=drivers,
                                 output=drivers[0]))
        else:
            events.append(served(f"r{i}", second, batch, version=version))
        if draw(st.booleans()):
            events.append(label(f"r{draw(st.integers(0, i))}", second, float(draw(st.booleans()))))
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=4)))
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in itertools.pairwise(bounds)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=logs(), last=st.one_of(st.none(), st.integers(0, 30)),
       since=st.one_of(st.none(), st.integers(0, 30)), named=st.booleans())
def test_a_window_read_through_segments_is_the_window_parsed(tmp_path_factory, files, last,
                                                             since, named):
    folder = write_log(tmp_path_factory.mktemp("logs"), files)
    window = {"last": last, "since": None if since is None else T0 + timedelta(seconds=since)}
    features = {**KINDS, "extra": "numeric"} if named else None

    cached = read_predictions(folder, features=features, **window)
    again = read_predictions(folder, features=features, **window)  # from the segments
    parsed = read_predictions(folder, features=features, cache=False, **window)

    assert len(segment_files(folder)) == len(files) - 1
    # Feature columns come in the order their events are found, which may differ.
    pd.testing.assert_frame_equal(cached, parsed, check_like=True)
    pd.testing.assert_frame_equal(again, parsed, check_like=True)
    pd.testing.assert_frame_equal(read_feedback(folder, **window),
                                  read_feedback(folder, cache=False, **window))


def test_odd_lines_in_a_rotated_file_read_as_they_parse(tmp_path):
    odd = [
        served("a", 1, [{"x": 1.5, "city": "hanoi"}]),
        served("b", 2, [{"x": "oops", "city": None}, {"x": 2.5, "city": 7}]),
        {"event": "prediction_served", "timestamp": "not a time", "request_id": "c",
         "features": [{"x": 1.0}]},
        served("d", 3, "nonsense"),
        {"event": "prediction_served", "request_id": "cut", "features": [{"x": 1.0}]},
        served("e", 4, [{"x": 1e300, "city": {"nested": [1]}}, 5, {"x": -0.0, "city": 1e20}]),
    ]
    logs = write_log(tmp_path / "logs", [odd, [served("f", 5, [{"x": 3.5, "city": "hue"}])]])
    (logs / f"{EVENTS_FILE}.1").open("ab").write(b'{"event": "prediction_served", "featu\n')
    kinds = {"x": "numeric", "city": "categorical"}

    cached = read_predictions(logs, features=kinds)

    assert len(segment_files(logs)) == 1
    pd.testing.assert_frame_equal(cached, read_predictions(logs, features=kinds, cache=False))
    assert cached["request_id"].tolist() == ["a", "b", "b", "e", "e", "e", "f"]
    assert cached["city"].fillna("-").tolist()[2:6] == ["7", '{"nested":[1]}', "-", "1e+20"]
    assert cached["x"].tolist()[3] == 1e300


def test_readers_building_the_same_segments_at_once_all_read_the_same(tmp_path):
    import threading

    files = [[served(f"r{i}-{j}", i * 10 + j, [{"x": float(j), "code": j}]) for j in range(50)]
             for i in range(6)]
    logs = write_log(tmp_path / "logs", files)
    results, errors = [], []

    def read():
        try:
            results.append(read_predictions(logs, features=KINDS))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    expected = read_predictions(logs, features=KINDS, cache=False)
    assert len(expected) == 300
    for frame in results:
        pd.testing.assert_frame_equal(frame, expected)
    assert len(segment_files(logs)) == 5
    assert not [p for p in (logs / segments.SEGMENTS_DIR).iterdir() if p.name.endswith(".tmp")]
