from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from litemlops.errors import ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field

T0 = datetime(2026, 1, 1, tzinfo=UTC)
driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView(
    "driver_stats",
    entities=[driver],
    schema=[Field("conv_rate", "float64"), Field("trips", "int32"), Field("active", "bool"),
            Field("city", "string"), Field("last_trip", "timestamp")],
    timestamp_field="datetime",
    created_timestamp_field="created",
)


def good(n=4):
    return pd.DataFrame({
        "driver_id": [1001 + i for i in range(n)],
        "datetime": [T0 + timedelta(hours=i) for i in range(n)],
        "created": [T0 + timedelta(hours=i, minutes=1) for i in range(n)],
        "conv_rate": [0.5] * n,
        "trips": [3] * n,
        "active": [True] * n,
        "city": ["hanoi"] * n,
        "last_trip": [T0] * n,
    })


@pytest.fixture
def fs():
    with FeatureStore(":memory:", clock=lambda: T0) as store:
        store.apply([driver, stats])
        yield store


def stored(fs):
    return fs.describe("driver_stats")["offline_rows"]


def test_valid_frame_is_ingested(fs):
    assert fs.ingest("driver_stats", good()).rows == 4
    assert stored(fs) == 4


@pytest.mark.parametrize(
    "mutate, column, row, message",
    [
        (lambda d: d.drop(columns=["trips"]), "trips", None, "missing column"),
        (lambda d: d.assign(extra=1), "extra", None, "unexpected column"),
        (lambda d: d.assign(conv_rate=["a", "b", "c", "d"]), "conv_rate", 0, "expects float64"),
        (lambda d: d.assign(trips=[1.0, 2.0, 2.5, 3.0]), "trips", 2, "not a whole number"),
        (lambda d: d.assign(trips=[1, 2, 3, 2**40]), "trips", 3, "out of range"),
        (lambda d: d.assign(active=[1, 0, 1, 0]), "active", 0, "not booleans"),
        (lambda d: d.assign(city=[1, 2, 3, 4]), "city", 0, "not text"),
        (lambda d: d.assign(conv_rate=[0.1, np.inf, 0.2, 0.3]), "conv_rate", 1, "not finite"),
        (lambda d: d.assign(driver_id=[1001, None, 1003, None]), "driver_id", 1, "null"),
        (lambda d: d.assign(datetime=[T0, T0, pd.NaT, T0]), "datetime", 2, "null"),
        (lambda d: d.assign(created=[T0, T0, T0, pd.NaT]), "created", 3, "null"),
        (lambda d: d.assign(datetime=["2026-01-01", "x", "y", "z"]), "datetime", 1, "ISO-8601"),
        (lambda d: d.assign(driver_id=["a", "b", "c", "d"]), "driver_id", 0, "expects int64"),
    ],
)
def test_bad_frame_is_refused_naming_column_and_row_and_nothing_is_written(
    fs, mutate, column, row, message
):
    fs.ingest("driver_stats", good())
    with pytest.raises(ValidationError, match=message) as info:
        fs.ingest("driver_stats", mutate(good()))
    assert info.value.column == column
    assert info.value.row == row
    assert column in str(info.value)
    if row is not None:
        assert f"row {row}" in str(info.value)
    assert stored(fs) == 4


def test_nan_feature_is_stored_as_null_and_integral_floats_become_ints(fs):
    frame = good().assign(conv_rate=[0.1, np.nan, 0.3, 0.4], trips=[1.0, np.nan, 3.0, 4.0])
    fs.ingest("driver_stats", frame)
    entity = pd.DataFrame({"driver_id": [1002], "event_timestamp": [T0 + timedelta(hours=2)]})
    out = fs.get_historical_features(entity, ["driver_stats:conv_rate", "driver_stats:trips"])
    assert pd.isna(out["conv_rate"][0]) and pd.isna(out["trips"][0])


TEXT = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("column", "shown"),
    [
        ([TEXT, "0001-01-01T00:00:00+01:00", TEXT], "0001-01-01T00:00:00+01:00"),  # year 0 in UTC
        ([TEXT, "9999-12-31T23:30:00-01:00", TEXT], "9999-12-31T23:30:00-01:00"),  # year 10000
        (["2026-01-01", "0000-12-31", "2026-01-01"], "0000-12-31"),
        # the first and the last microsecond Python holds, then one beyond: that one is named
        (["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", TEXT], "0001-01-01T00:00:00+01:00"),
        (["9999-12-31T23:59:59.999999Z", "9999-12-31T23:30:00-01:00", TEXT],
         "9999-12-31T23:30:00-01:00"),
        # numpy holds these; Python cannot
        (np.array(["2026-01-01", "0000-06-01", "2026-01-01"], "datetime64[us]"), "0000-06-01"),
        (np.array(["2026-01-01", "10000-01-01", "2026-01-01"], "datetime64[us]"), "10000-01-01"),
    ],
)
def test_a_time_a_python_datetime_cannot_hold_is_refused_naming_its_row(fs, column, shown):
    """Arrow, numpy and pandas read such times; stored, one would make every lookup of
    its entity fail. The online store is checked too: nothing reached it."""
    frame = good(3).assign(last_trip=column)
    with pytest.raises(ValidationError, match=r"row 1 has .*\(outside the years 1 to 9999"
                                              r" in UTC\)") as info:  # fmt: skip
        fs.ingest("driver_stats", frame)
    assert (info.value.column, info.value.row) == ("last_trip", 1)
    assert shown in str(info.value)
    with pytest.raises(ValidationError, match="outside the years 1 to 9999"):
        fs.push("driver_stats", frame, to="online")
    assert stored(fs) == 0
    assert fs.get_online_features(["driver_stats:trips"], [{"driver_id": 1002}]).to_dict() == {
        "driver_id": [1002], "trips": [None]
    }  # fmt: skip


def test_the_first_and_last_microsecond_python_holds_are_stored_and_read_back(fs):
    first, last = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)
    hour_ago = [T0 - timedelta(hours=1)] * 2  # materialized up to the clock's now, T0
    frame = good(2).assign(datetime=hour_ago, created=hour_ago,
                           last_trip=["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999"])
    fs.ingest("driver_stats", frame)
    fs.materialize()
    entities = pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": [T0, T0]})
    history = fs.get_historical_features(entities, ["driver_stats:last_trip"])
    assert history["last_trip"].tolist() == [pd.Timestamp(first, tz="UTC"),
                                             pd.Timestamp(last, tz="UTC")]  # fmt: skip

    online = fs.get_online_features(["driver_stats:last_trip"], [{"driver_id": 1001},
                                                                 {"driver_id": 1002}])  # fmt: skip
    assert online.to_dict()["last_trip"] == [first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)]


def test_naive_timestamps_are_taken_as_utc_and_aware_ones_converted(fs):
    plus7 = timezone(timedelta(hours=7))
    naive = good(1).assign(datetime=[datetime(2026, 1, 1, 0, 0)], created=[datetime(2026, 1, 1)])
    aware = good(1).assign(driver_id=[1002], datetime=[datetime(2026, 1, 1, 7, tzinfo=plus7)],
                           created=[datetime(2026, 1, 1, 7, tzinfo=plus7)])
    fs.ingest("driver_stats", naive)
    fs.ingest("driver_stats", aware)
    d = fs.describe("driver_stats")
    assert d["event_time_min"] == d["event_time_max"] == "2026-01-01T00:00:00+00:00"


def test_csv_and_parquet_files_are_ingested_with_types_from_the_view(fs, tmp_path):
    frame = good()
    frame.to_parquet(tmp_path / "rows.parquet")
    csv = frame.assign(datetime=frame["datetime"].map(lambda t: t.isoformat()))
    csv.to_csv(tmp_path / "rows.csv", index=False)
    assert fs.ingest("driver_stats", tmp_path / "rows.parquet").rows == 4
    assert fs.ingest("driver_stats", str(tmp_path / "rows.csv")).rows == 4
    assert stored(fs) == 8


def test_bad_csv_names_column_and_row_and_writes_nothing(fs, tmp_path):
    path = tmp_path / "bad.csv"
    good().assign(trips=["1", "2", "lots", "4"]).to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"'trips'.*row 2.*'lots'"):
        fs.ingest("driver_stats", path)
    assert stored(fs) == 0


def test_unreadable_inputs_get_clear_errors(fs, tmp_path):
    with pytest.raises(ValidationError, match="no such file"):
        fs.ingest("driver_stats", tmp_path / "missing.parquet")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValidationError, match="unsupported file type"):
        fs.ingest("driver_stats", tmp_path / "x.json")
    with pytest.raises(ValidationError, match="expected a pandas DataFrame"):
        fs.ingest("driver_stats", 42)
    with pytest.raises(ValidationError, match="not a mapping"):
        fs.ingest("driver_stats", [1, 2])
    assert stored(fs) == 0


def test_rows_as_dicts_are_accepted(fs):
    fs.ingest("driver_stats", good(2).to_dict("records"))
    assert stored(fs) == 2


def test_empty_frame_writes_nothing(fs):
    assert fs.ingest("driver_stats", good(0)).rows == 0
    assert stored(fs) == 0


def test_float64_beyond_float32_range_is_refused(fs):
    fs.apply(FeatureView("small", entities=[driver], schema=[Field("f", "float32")],
                         timestamp_field="datetime"))
    frame = pd.DataFrame({"driver_id": [1, 2], "datetime": [T0, T0], "f": [1.5, 1e40]})
    with pytest.raises(ValidationError, match=r"'f'.*row 1.*out of range for float32"):
        fs.ingest("small", frame)
    assert fs.describe("small")["offline_rows"] == 0


@pytest.mark.parametrize("as_rows", [True, False])
def test_integers_beyond_64_bits_are_refused_naming_the_row(fs, as_rows):
    frame = good(2).assign(trips=pd.Series([1, 2**64], dtype=object))
    data = frame.to_dict("records") if as_rows else frame
    with pytest.raises(ValidationError, match=r"'trips' row 1 .*beyond 64-bit"):
        fs.ingest("driver_stats", data)
    assert stored(fs) == 0


def test_csv_strings_like_na_and_null_stay_strings_and_a_bom_is_ignored(fs, tmp_path):
    path = tmp_path / "rows.csv"
    frame = good(3).assign(city=["NA", "null", ""])
    text = frame.to_csv(index=False).replace(',,', ',"",')  # a quoted empty string
    path.write_bytes("\ufeff".encode() + text.encode())
    fs.ingest("driver_stats", path)
    out = fs._con.execute('SELECT city FROM "fv_driver_stats" ORDER BY driver_id').fetchall()
    assert [r[0] for r in out] == ["NA", "null", ""]


def test_csv_that_is_not_utf8_or_repeats_a_column_is_refused(fs, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes(good(1).assign(city=["Sài Gòn"]).to_csv(index=False).encode("latin-1"))
    with pytest.raises(ValidationError, match="not UTF-8"):
        fs.ingest("driver_stats", latin)
    twice = tmp_path / "twice.csv"
    twice.write_text("driver_id,driver_id\n1,2\n")
    with pytest.raises(ValidationError, match="repeats column"):
        fs.ingest("driver_stats", twice)
    assert stored(fs) == 0


def test_row_dicts_must_all_have_the_same_keys():
    """Arrow reads columns from the first row: later rows' extra or missing keys are refused."""
    from datetime import UTC, datetime

    from litemlops.errors import ValidationError
    from litemlops.store import Entity, FeatureStore, FeatureView, Field

    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with FeatureStore(":memory:") as fs:
        fs.apply(view)
        with pytest.raises(ValidationError, match=r"row 1 has \['y'\] that row 0 lacks"):
            fs.ingest("v", [{"e": 1, "event_timestamp": t, "x": 1.0},
                            {"e": 2, "event_timestamp": t, "x": 2.0, "y": 3}])
        with pytest.raises(ValidationError, match=r"row 2 lacks \['x'\] that row 0 has"):
            fs.ingest("v", [{"e": 1, "event_timestamp": t, "x": 1.0}] * 2
                      + [{"e": 2, "event_timestamp": t}])
        assert fs.describe("v")["offline_rows"] == 0


def test_validate_checks_as_ingest_does_and_writes_nothing(fs):
    assert fs.validate("driver_stats", good()) == 4
    with pytest.raises(ValidationError, match=r"column 'trips' expects int32; row 3 has"):
        fs.validate("driver_stats", good().assign(trips=[1, 2, 3, 2**40]))
    assert stored(fs) == 0 and fs.batches("driver_stats") == []


def rows_with(column, values):
    rows = good(len(values)).to_dict("records")
    for row, value in zip(rows, values, strict=True):
        row[column] = value
    return rows


@pytest.mark.parametrize(
    ("column", "values", "why"),
    [
        ("active", [None, 1, 0], "not booleans"),  # ints for a bool
        ("conv_rate", [None, True, False], "not numbers"),  # bools for a float
        ("last_trip", [None, 1.5, 2.5], "not times"),  # floats for a time
    ],
)
def test_a_column_of_the_wrong_kind_names_its_first_value_not_its_first_null(
    fs, column, values, why
):
    with pytest.raises(ValidationError, match=rf"'{column}' expects .*; row 1 has .*{why}"):
        fs.ingest("driver_stats", rows_with(column, values))
    assert stored(fs) == 0


def test_boolean_text_is_read_whatever_its_case_and_spaces(fs):
    fs.ingest("driver_stats", rows_with("active", ["TRUE", " false ", "True"]))
    entities = pd.DataFrame({"driver_id": [1001, 1002, 1003],
                             "event_timestamp": [T0 + timedelta(hours=5)] * 3})
    out = fs.get_historical_features(entities, ["driver_stats:active"])
    assert out["active"].tolist() == [True, False, True]


def test_the_64_bit_bounds_are_accepted_and_the_first_integer_beyond_them_named(fs):
    values = [-(2**63), 2**63 - 1, 2**62, 2**64]
    with pytest.raises(ValidationError, match=r"'trips' row 3 has 18446744073709551616"):
        fs.ingest("driver_stats", rows_with("trips", values))
    assert stored(fs) == 0


def test_mixed_types_after_missing_values_name_the_first_odd_one(fs):
    frame = good(4).assign(conv_rate=pd.Series([None, float("nan"), 0.5, "x"], dtype=object))
    with pytest.raises(ValidationError, match=r"'conv_rate' mixes types; row 3 has 'x'"):
        fs.ingest("driver_stats", frame)
    assert stored(fs) == 0
