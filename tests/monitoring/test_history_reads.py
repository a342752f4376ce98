"""A read through the compacted history gives what parsing every original line gives."""

import itertools
import json
from datetime import timedelta

import pandas as pd
import pytest
from depth import examples
from history_logs import T0, compact, copy_log, label, served, write_log
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from litemlops.monitoring import event_log, history, read_feedback, read_predictions

KINDS = {"x": "numeric", "code": "categorical"}

codes = st.integers(0, 5)
rows = st.lists(
    st.fixed_dictionaries({"x": st.one_of(st.none(), st.floats(-1e6, 1e6)), "code": codes}),
    min_size=1, max_size=3,
)


@st.composite
def logs(draw):
    """Events a second apart or at the same time, cut into files at random; how many of
    the rotated files are compacted."""
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
    files = [events[a:b] for a, b in itertools.pairwise(bounds)]
    return files, draw(st.integers(0, len(files) - 1))


def compact_first(folder, count):
    """Compact only the oldest `count` rotated files (the others wait, as if not settled)."""
    rotated = [p for p in history.event_files(folder) if p.name != history.EVENTS_FILE]
    aside = folder.parent / f"{folder.name}-aside"
    aside.mkdir()
    for path in rotated[count:]:
        path.rename(aside / path.name)
    compact(folder)
    for path in aside.iterdir():
        path.rename(folder / path.name)
    aside.rmdir()


@pytest.mark.slow
@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(log=logs(), last=st.one_of(st.none(), st.integers(0, 30)),
       since=st.one_of(st.none(), st.integers(0, 30)), named=st.booleans())
def test_a_window_read_through_the_history_is_the_window_parsed(tmp_path_factory, log, last,
                                                                 since, named):
    files, compacted = log
    root = tmp_path_factory.mktemp("log")
    folder = write_log(root / "logs", files)
    parsed_log = copy_log(folder, root / "parsed")
    compact_first(folder, compacted)
    window = {"last": last, "since": None if since is None else T0 + timedelta(seconds=since)}
    features = {**KINDS, "extra": "numeric"} if named else None

    through = read_predictions(folder, features=features, **window)
    parsed = read_predictions(parsed_log, features=features, **window)

    assert len(history.event_files(folder)) == len(files) - compacted
    # Feature columns come in the order their events are found, which may differ.
    pd.testing.assert_frame_equal(through, parsed, check_like=True)
    pd.testing.assert_frame_equal(read_feedback(folder, **window),
                                  read_feedback(parsed_log, **window))
    every = read_predictions(parsed_log, features=features)
    labels = read_feedback(parsed_log)
    for request_id in ("r0", "r3", "nobody"):  # one request's answers and labels
        one = read_predictions(folder, features=features, request_id=request_id)
        expected = every[every["request_id"] == request_id]
        for column in ("request_id", "timestamp", "entity", "score", "output"):
            assert one[column].tolist() == expected[column].tolist(), column
        pd.testing.assert_frame_equal(
            read_feedback(folder, request_id=request_id),
            labels[labels["request_id"] == request_id].reset_index(drop=True),
        )
    labelled = read_predictions(folder, features=features, labelled=True)
    expected = read_predictions(parsed_log, features=features)
    expected = expected[expected["request_id"].isin(set(read_feedback(parsed_log)["request_id"]))]
    if expected.empty:  # with no rows, the features' columns are not known either
        assert labelled.empty
    else:  # the features found are those of the labelled requests' events
        expected = expected[list(labelled.columns)].reset_index(drop=True)
        pd.testing.assert_frame_equal(labelled, expected)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["7", "007", "1.50", "high", "nan", "Infinity", "", "true", "1e5"]),
    st.just({"nested": [1]}),
    st.just([1, 2]),
)


@pytest.mark.slow
@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(st.fixed_dictionaries({"v": values}), min_size=1, max_size=3),
                        min_size=1, max_size=8))
@example(batches=[[{"v": 7}], [{"v": 7.0}], [{"v": "7"}], [{"v": True}], [{"v": 2**53 + 1}]])
def test_a_feature_whose_json_type_varies_reads_as_it_parses(tmp_path_factory, batches):
    root = tmp_path_factory.mktemp("log")
    events = [served(f"r{i}", i, rows) for i, rows in enumerate(batches)]
    folder = write_log(root / "logs", [events, []])
    parsed_log = copy_log(folder, root / "parsed")
    compact(folder)

    for kind in ("numeric", "categorical"):
        pd.testing.assert_frame_equal(read_predictions(folder, features={"v": kind}),
                                      read_predictions(parsed_log, features={"v": kind}))


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), values,
                                                 max_size=3), max_size=3),
                        min_size=1, max_size=6),
       cut=st.integers(0, 6))
def test_every_line_comes_back_from_the_history_with_its_keys_in_order(tmp_path_factory,
                                                                       batches, cut):
    root = tmp_path_factory.mktemp("log")
    written = [served(f"r{i}", i, rows) for i, rows in enumerate(batches)]
    written.insert(min(cut, len(written)), {"event": "task_started", "timestamp": "x", "n": 1})
    folder = write_log(root / "logs", [written, []])
    compact(folder)

    found = event_log.query_events(folder, limit=100)

    assert (found.total, found.unreadable) == (len(written), 0)
    lines = [json.loads(line) for line in found.lines]
    timed = [e for e in written if e["timestamp"] != "x"]
    assert [list(e.items()) for e in lines[1:]] == [list(e.items()) for e in timed]
    assert lines[0]["event"] == "task_started"  # a line without a time sorts as the oldest
