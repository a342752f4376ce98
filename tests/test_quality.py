import math

import pandas as pd
import pytest

from litemlops.errors import ValidationError
from litemlops.quality import DataValidationError, check_frame

SCHEMA = {"id": "int64", "ts": "timestamp", "rate": "float64", "name": "string", "ok": "bool"}


def frame(**changes):
    data = {
        "id": [1, 2, 3, 4],
        "ts": pd.to_datetime(["2026-01-01"] * 4, utc=True),
        "rate": [0.1, 0.2, 0.3, 0.4],
        "name": ["a", "b", "c", "d"],
        "ok": [True, False, True, True],
    }
    data.update(changes)
    return pd.DataFrame(data)


def test_a_good_batch_passes_with_column_stats():
    report = check_frame(frame(), SCHEMA, required=["id", "ts"], ranges={"rate": [0, 1]})
    assert report.passed, report.text()
    assert report.columns["rate"] == {
        "dtype": "float64", "nulls": 0, "null_rate": 0.0, "min": 0.1, "max": 0.4,
    }
    assert report.text() == "4 rows passed every check"


def test_every_problem_is_reported_at_once():
    bad = frame(
        id=[1, None, 3, 4],
        rate=[0.1, None, 7.0, -1.0],
        name=["a", "b", 3, "d"],
    ).drop(columns=["ok"])
    bad["extra"] = 1
    report = check_frame(
        bad, SCHEMA, required=["id", "ts"], ranges={"rate": [0, 1]}, max_null_rate=0.1
    )
    assert not report.passed
    assert report.problems == [
        "missing column(s) ['ok']",
        "unexpected column(s) ['extra']",
        "column 'id' has 1 null(s); it may have none",
        "column 'rate' is 25.0% null, above max_null_rate 10.0%",
        "column 'rate' has 2 value(s) outside [0, 1] (min -1, max 7)",
        "column 'name' should be string, but row 2 holds 3",
    ]
    text = str(DataValidationError(report))
    assert text.startswith("4 rows failed 6 check(s):\n  - missing column(s) ['ok']")


@pytest.mark.parametrize(
    ("column", "values", "dtype"),
    [
        ("id", [1.5, 2, 3, 4], "int64"),
        ("rate", ["x", "y", "z", "w"], "float64"),
        ("ts", ["yesterday"] * 4, "timestamp"),
        ("ok", ["yes", "no", "yes", "no"], "bool"),
    ],
)
def test_wrong_dtypes_name_the_column(column, values, dtype):
    report = check_frame(frame(**{column: values}), SCHEMA)
    assert [p for p in report.problems if column in p] == [
        f"column {column!r} should be {dtype}, but row 0 holds {values[0]!r}"
    ]


def test_whole_floats_pass_as_ints_and_iso_text_as_timestamps():
    ok = frame(id=[1.0, 2.0, 3.0, 4.0], ts=["2026-01-01T00:00:00Z"] * 4)
    assert check_frame(ok, SCHEMA).passed


def test_infinity_and_open_ranges():
    report = check_frame(frame(rate=[0.1, math.inf, 0.3, 0.4]), SCHEMA, ranges={"rate": [0, None]})
    assert report.problems == ["column 'rate' has 1 infinite value(s)"]


def test_empty_batches_and_bad_options():
    assert check_frame(frame().head(0), SCHEMA).problems == ["the batch has no rows"]
    with pytest.raises(ValidationError, match="max_null_rate"):
        check_frame(frame(), SCHEMA, max_null_rate=2)
    with pytest.raises(ValidationError, match=r"range of 'rate' must be \[min, max\]"):
        check_frame(frame(), SCHEMA, ranges={"rate": [0]})
    with pytest.raises(ValidationError, match="min <= max"):
        check_frame(frame(), SCHEMA, ranges={"rate": [1, 0]})
    report = check_frame(frame(), SCHEMA, ranges={"nope": [0, 1]})
    assert report.problems == ["ranges name column(s) not in the schema: ['nope']"]


def test_the_report_names_the_rows_by_the_frames_index_and_keeps_a_few():
    bad = frame(rate=[0.1, 7.0, None, -1.0], id=[1, None, 3, 4]).set_axis([10, 11, 12, 13])
    report = check_frame(bad, SCHEMA, required=["id"], ranges={"rate": [0, 1]},
                         max_null_rate=0.5)
    assert report.bad_rows == {"id": [11], "rate": [11, 13]}
    assert report.to_dict()["bad_rows"] == report.bad_rows
    many = pd.DataFrame({"rate": [5.0] * 50})
    flagged = check_frame(many, {"rate": "float64"}, ranges={"rate": [0, 1]}).bad_rows["rate"]
    assert flagged == list(range(20))
    assert check_frame(frame(name=["a", "b", 3, "d"]).set_axis([5, 6, 7, 8]), SCHEMA).problems == [
        "column 'name' should be string, but row 7 holds 3"
    ]


def test_an_empty_frame_passes_only_when_allowed():
    assert check_frame(frame().head(0), SCHEMA, allow_empty=True).passed
    missing = check_frame(frame().head(0).drop(columns=["ok"]), SCHEMA, allow_empty=True)
    assert missing.problems == ["missing column(s) ['ok']"]
