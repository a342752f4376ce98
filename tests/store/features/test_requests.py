"""Requests to the store: bad inputs get clear errors; composite and string keys work."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from litemlops.errors import (
    DefinitionError,
    FeatureNotFoundError,
    FeatureViewNotFoundError,
    ValidationError,
)
from litemlops.store import Entity, FeatureStore, FeatureView, Field

T0 = datetime(2026, 1, 1, tzinfo=UTC)
driver = Entity("driver", join_keys=["driver_id"])
city = Entity("city", join_keys=["city"], value_type="string")
stats = FeatureView("driver_stats", entities=[driver], schema=[Field("conv_rate", "float64")],
                    timestamp_field="datetime")
driver_city = FeatureView(
    "driver_city", entities=[driver, city], schema=[Field("trips", "int64"),
                                                    Field("rush", "bool"),
                                                    Field("seen", "timestamp")],
    timestamp_field="datetime", ttl=timedelta(hours=2),
)


@pytest.fixture
def fs():
    with FeatureStore(":memory:", clock=lambda: T0 + timedelta(hours=1)) as store:
        store.apply([driver, city, stats, driver_city])
        store.ingest("driver_stats", pd.DataFrame({
            "driver_id": [1001, 1002], "datetime": [T0, T0], "conv_rate": [0.5, 0.7]}))
        store.ingest("driver_city", pd.DataFrame({
            "driver_id": [1001, 1001, 1002], "city": ["hanoi", "hcmc", "hanoi"],
            "datetime": [T0, T0, T0], "trips": [1, 2, 3], "rush": [True, False, True],
            "seen": [T0 - timedelta(days=1)] * 3}))
        store.materialize()
        yield store


def entities(**extra):
    data = {"driver_id": [1001, 1002], "event_timestamp": [T0, T0]}
    data.update(extra)
    return pd.DataFrame(data)


@pytest.mark.parametrize(
    "frame, features, error, message",
    [
        (entities(), [], ValidationError, "non-empty list"),
        (entities(), "driver_stats:conv_rate", ValidationError, "non-empty list"),
        (entities(), ["conv_rate"], ValidationError, "not 'view:feature'"),
        (entities(), ["nope:conv_rate"], FeatureViewNotFoundError, "no feature view named"),
        (entities(), ["driver_stats:nope"], FeatureNotFoundError, "has no feature 'nope'"),
        (entities(), ["driver_stats:conv_rate"] * 2, ValidationError, "requested twice"),
        (entities().drop(columns=["event_timestamp"]), ["driver_stats:conv_rate"],
         ValidationError, "no timestamp column"),
        (entities().drop(columns=["driver_id"]), ["driver_stats:conv_rate"],
         ValidationError, "lacks join key 'driver_id'"),
        (entities(driver_id=[1001, None]), ["driver_stats:conv_rate"], ValidationError,
         "null at row 1"),
        (entities(event_timestamp=[T0, "soon"]), ["driver_stats:conv_rate"], ValidationError,
         "row 1"),
        (entities(driver_id=["a", "b"]), ["driver_stats:conv_rate"], ValidationError,
         "expects int64"),
        (entities(conv_rate=[1, 2]), ["driver_stats:conv_rate"], ValidationError,
         "already has column"),
        (entities(), ["driver_city:trips"], ValidationError, "lacks join key 'city'"),
    ],
)
def test_bad_historical_requests_get_clear_errors(fs, frame, features, error, message):
    with pytest.raises(error, match=message):
        fs.get_historical_features(frame, features)


def test_entity_df_must_be_a_dataframe(fs):
    with pytest.raises(ValidationError, match="must be a pandas DataFrame"):
        fs.get_historical_features([{"driver_id": 1}], ["driver_stats:conv_rate"])


def test_composite_and_string_keys_join_point_in_time(fs):
    frame = pd.DataFrame({
        "driver_id": [1001, 1001, 1002, 1002],
        "city": ["hcmc", "hanoi", "hanoi", "hcmc"],
        "event_timestamp": [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=3), T0],
    }, index=[10, 20, 30, 40])
    out = fs.get_historical_features(
        frame, ["driver_city:trips", "driver_city:rush", "driver_stats:conv_rate"])
    assert list(out.index) == [10, 20, 30, 40]
    assert out["trips"].tolist()[:2] == [2, 1]
    assert pd.isna(out["trips"].tolist()[2])  # three hours later: outside the 2 h ttl
    assert pd.isna(out["trips"].tolist()[3])  # no (1002, hcmc) row at all
    assert out["conv_rate"].tolist() == [0.5, 0.5, 0.7, 0.7]
    seen = fs.get_historical_features(frame.head(1), ["driver_city:seen"])["seen"]
    assert seen.iloc[0] == pd.Timestamp(T0 - timedelta(days=1))


def test_composite_keys_online_with_typed_values(fs):
    out = fs.get_online_features(
        ["driver_city:trips", "driver_city:rush", "driver_city:seen"],
        [{"driver_id": 1001, "city": "hcmc"}, {"driver_id": 1002, "city": "hanoi"},
         {"driver_id": 1002, "city": "paris"}],
    )
    assert out["trips"] == [2, 3, None]
    assert out["rush"] == [False, True, None]
    assert out["seen"][0] == T0 - timedelta(days=1)
    assert out.to_df().shape == (3, 5)


@pytest.mark.parametrize(
    "rows, message",
    [
        ({"driver_id": 1001}, "list of dicts"),
        ([1001], "not a dict"),
        ([{"id": 1001}], "lacks join key 'driver_id'"),
        ([{"driver_id": "1001"}], "must be an integer"),
        ([{"driver_id": True}], "must be an integer"),
        ([{"driver_id": 1.5}], "must be an integer"),
    ],
)
def test_bad_online_requests_get_clear_errors(fs, rows, message):
    with pytest.raises(ValidationError, match=message):
        fs.get_online_features(["driver_stats:conv_rate"], rows)


def test_string_key_must_be_a_string_online(fs):
    with pytest.raises(ValidationError, match="must be a string"):
        fs.get_online_features(["driver_city:trips"], [{"driver_id": 1001, "city": 7}])


def test_duplicate_entity_rows_are_answered_each(fs):
    out = fs.get_online_features(["driver_stats:conv_rate"],
                                 [{"driver_id": 1001}, {"driver_id": 1001}])
    assert out["conv_rate"] == [0.5, 0.5]


def test_bad_push_writes_nothing_anywhere(fs):
    before = fs.describe("driver_stats")
    with pytest.raises(ValidationError, match="conv_rate"):
        fs.push("driver_stats", [{"driver_id": 1001, "datetime": T0 + timedelta(minutes=5),
                                  "conv_rate": "high"}], to="both")
    with pytest.raises(ValidationError, match="push to must be"):
        fs.push("driver_stats", [], to="kafka")  # type: ignore[arg-type]
    after = fs.describe("driver_stats")
    assert after["offline_rows"] == before["offline_rows"]
    assert fs.get_online_features(["driver_stats:conv_rate"],
                                  [{"driver_id": 1001}])["conv_rate"] == [0.5]


def test_push_to_offline_only_view_must_say_offline(fs):
    fs.apply(FeatureView("batch_only", entities=["driver"], schema=[Field("x", "float64")],
                         timestamp_field="datetime", online=False))
    row = [{"driver_id": 1, "datetime": T0, "x": 1.0}]
    with pytest.raises(ValidationError, match="not online"):
        fs.push("batch_only", row)
    assert fs.push("batch_only", row, to="offline").rows == 1
    with pytest.raises(ValidationError, match="not online"):
        fs.get_online_features(["batch_only:x"], [{"driver_id": 1}])
    assert [r.view for r in fs.materialize()] == ["driver_city", "driver_stats"]


def test_materializing_an_offline_view_by_name_is_refused_and_writes_nothing(fs):
    fs.apply(FeatureView("batch_only", entities=["driver"], schema=[Field("x", "float64")],
                         timestamp_field="datetime", online=False))
    fs.push("driver_stats", [{"driver_id": 1001, "datetime": T0 + timedelta(minutes=5),
                              "conv_rate": 0.9}], to="offline")
    with pytest.raises(ValidationError, match=r"^feature view 'batch_only' is not online$"):
        fs.materialize(views=["driver_stats", "batch_only"])
    # driver_stats, named first, was not materialized either: its pushed row is not served
    assert fs.get_online_features(["driver_stats:conv_rate"],
                                  [{"driver_id": 1001}])["conv_rate"] == [0.5]


def test_materialize_start_after_end_is_refused(fs):
    with pytest.raises(ValidationError, match="after end"):
        fs.materialize(start=T0 + timedelta(hours=1), end=T0)


def test_more_edge_inputs_get_clear_errors(fs, tmp_path):
    with pytest.raises(ValidationError, match="not 'view:feature'"):
        fs.get_online_features([["driver_stats:conv_rate"]], [{"driver_id": 1001}])
    with pytest.raises(ValidationError, match="beyond 64-bit"):
        fs.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 2**70}])
    frame = pd.DataFrame([[1001, T0, T0]], columns=["driver_id", "event_timestamp", "driver_id"])
    with pytest.raises(ValidationError, match="repeats column"):
        fs.get_historical_features(frame, ["driver_stats:conv_rate"])
    assert [r.view for r in fs.materialize(views="driver_stats")] == ["driver_stats"]
    with pytest.raises(DefinitionError, match="use None for no limit"):
        FeatureView("x", entities=[driver], schema=[Field("a", "int64")],
                    ttl=timedelta(days=10**6))
    from litemlops.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot be opened"):
        FeatureStore(":memory:", online=tmp_path / "missing" / "online.db")


def test_batches_of_any_size_are_answered_in_order(fs):
    for n in (1, 3, 4, 5, 2047, 2048, 2049, 5000):
        rows = [{"driver_id": 1001 + (i % 3)} for i in range(n)]
        out = fs.get_online_features(["driver_stats:conv_rate"], rows)
        assert out["conv_rate"] == [[0.5, 0.7, None][i % 3] for i in range(n)]
    assert len(fs._online._select_cache) <= 14  # powers of two, not one statement per size
