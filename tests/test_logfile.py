"""The event file: whole lines in order, rotation by size to names that never repeat."""

import datetime as dt
import json
from pathlib import Path

from depth import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from litemlops.logfile import JsonLinesFile, rotated_name
from litemlops.monitoring.history import event_files


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_writer_reopens_the_file_another_process_rotated(tmp_path):
    path = tmp_path / "events.jsonl"
    rotating = JsonLinesFile(path, maxBytes=100, encoding="utf-8")
    other = JsonLinesFile(path, maxBytes=100, encoding="utf-8")
    other.CHECK_SECONDS = 0.0  # checks before every line, where a real writer waits a second
    try:
        other.write_line('{"n": 1}')
        other.flush()
        rotating.write_line('{"n": 2, "pad": "' + "x" * 60 + '"}')
        rotating.write_line('{"n": 3, "pad": "' + "x" * 20 + '"}')  # rotates the file `other` holds
        other.write_line('{"n": 4}')
        for handler in (rotating, other):
            handler.flush()
    finally:
        rotating.close()
        other.close()

    rotated, live = event_files(tmp_path)
    assert [e["n"] for e in read_events(rotated)] == [1, 2]
    assert [e["n"] for e in read_events(live)] == [3, 4]


def test_rotated_names_sort_in_the_order_of_rotation_and_never_repeat():
    live = Path("/logs/events.jsonl")
    first = rotated_name(live, dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC), 42)
    again = rotated_name(live, dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC), 42, attempt=1)
    later = rotated_name(live, dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC), 7)

    assert first.name == "events-20260101T090000000000Z-42.jsonl"
    assert len({first, again, later}) == 3
    assert sorted([later.name, first.name]) == [first.name, later.name]


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lines=st.lists(st.text(min_size=0, max_size=120), min_size=1, max_size=40),
    max_bytes=st.integers(min_value=0, max_value=600),
    flush_every=st.integers(min_value=1, max_value=7),
)
def test_rotated_and_live_files_hold_every_line_whole_and_in_order(
    tmp_path_factory, lines, max_bytes, flush_every
):
    folder = tmp_path_factory.mktemp("log")
    file = JsonLinesFile(folder / "events.jsonl", maxBytes=max_bytes, encoding="utf-8")
    sent = [json.dumps({"n": n, "text": text}, ensure_ascii=False) for n, text in enumerate(lines)]
    try:
        for n, line in enumerate(sent):
            file.write_line(line)
            if n % flush_every == 0:
                file.flush()
    finally:
        file.close()

    def lines_of(path):  # by "\n" only: JSON text may hold other line breaks (U+0085)
        text = path.read_text("utf-8")
        assert text == "" or text.endswith("\n")
        return text.split("\n")[:-1]

    files = event_files(folder)
    written = [line for path in files for line in lines_of(path)]
    assert written == sent
    for path in files:
        size, count = path.stat().st_size, len(lines_of(path))
        # A file passes max_bytes only when one line alone does.
        assert max_bytes == 0 or size < max_bytes or count == 1, (path.name, size, count)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@given(st.lists(st.integers(0, 253402300799 * 10**9 + 999_999_999), min_size=1, max_size=5),
       st.integers(0, 3))  # fmt: skip
@example([0, 1_700_000_000_123_456_789], 2)
def test_event_times_read_as_structlogs_iso_utc_stamp_writes_them(instants, neighbours):
    from litemlops.logfile import iso_utc

    # Some in the same second as the one before, as events mostly are (the kept text).
    instants = [*instants, *(instants[-1] + k * 1_000 for k in range(1, neighbours + 1))]
    for ns in instants:
        ns = min(ns, 253402300799 * 10**9 + 999_999_999)
        moment = _EPOCH + dt.timedelta(microseconds=ns // 1000)
        assert iso_utc(ns) == moment.isoformat().replace("+00:00", "Z")


def test_an_event_is_stamped_with_the_time_it_is_logged():
    from litemlops.logfile import stamp

    before = dt.datetime.now(dt.UTC)
    stamped = stamp(None, "info", {"event": "x"})["timestamp"]
    after = dt.datetime.now(dt.UTC)

    assert stamped.endswith("Z")
    assert before <= dt.datetime.fromisoformat(stamped) <= after
