from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from litemlops.errors import (
    DefinitionError,
    FeatureViewNotFoundError,
    IncompatibleChangeError,
    LitemlopsError,
)
from litemlops.store import Entity, FeatureStore, FeatureView, Field

T0 = datetime(2026, 1, 1, tzinfo=UTC)
driver = Entity("driver", join_keys=["driver_id"])


def view(**changes):
    spec = dict(
        name="driver_stats",
        entities=[driver],
        schema=[Field("conv_rate", "float64"), Field("trips", "int64")],
        ttl=timedelta(days=1),
        timestamp_field="datetime",
    )
    spec.update(changes)
    return FeatureView(**spec)


def rows(n=3, **extra):
    data = {
        "driver_id": [1001 + i for i in range(n)],
        "datetime": [T0 + timedelta(hours=i) for i in range(n)],
        "conv_rate": [0.1 * i for i in range(n)],
        "trips": list(range(n)),
    }
    data.update(extra)
    return pd.DataFrame(data)


@pytest.fixture
def fs():
    with FeatureStore(":memory:", clock=lambda: T0 + timedelta(days=1)) as store:
        yield store


def offline_rows(fs):
    return fs.describe("driver_stats")["offline_rows"]


def test_reapplying_the_same_definition_is_a_no_op(fs):
    first = fs.apply([driver, view()])
    second = fs.apply([driver, view()])
    assert first.changed == ["driver", "driver_stats"]
    assert second.changed == []
    assert fs.describe("driver_stats")["version"] == 1


def test_compatible_change_makes_a_new_version_and_keeps_rows_and_watermark(fs):
    fs.apply([driver, view()])
    fs.ingest("driver_stats", rows())
    fs.materialize()
    before = fs.describe("driver_stats")
    fs.apply(view(description="now documented", ttl=timedelta(days=3),
                  schema=[Field("conv_rate", "float64"), Field("trips", "int64"),
                          Field("rating", "float32")]))
    after = fs.describe("driver_stats")
    assert after["version"] == 2
    assert after["offline_rows"] == before["offline_rows"] == 3
    assert after["materialized_until"] == before["materialized_until"]
    assert after["features"]["rating"] == "float32"
    online = fs.get_online_features(["driver_stats:trips", "driver_stats:rating"],
                                    [{"driver_id": 1002}])
    assert online["trips"] == [1] and online["rating"] == [None]


def test_each_applied_version_of_a_definition_is_kept_and_no_other(fs):
    fs.apply([driver, view()])
    fs.apply(view(description="now documented"))
    assert fs.definition("driver_stats", 1)["description"] == ""
    current = fs.definition("driver_stats")
    assert (current["version"], current["description"]) == (2, "now documented")
    for never in (0, 3):
        with pytest.raises(
            FeatureViewNotFoundError,
            match=rf"^feature view 'driver_stats' has no version {never} \(its current is 2\)$",
        ):
            fs.definition("driver_stats", never)
    assert fs.definition("driver_stats", 2) == current


@pytest.mark.parametrize(
    "change",
    [
        {"schema": [Field("conv_rate", "float32"), Field("trips", "int64")]},
        {"schema": [Field("conv_rate", "float64")]},
        {"timestamp_field": "event_time"},
        {"entities": [Entity("rider", join_keys=["rider_id"])]},
    ],
    ids=["dtype", "removed feature", "timestamp field", "join key"],
)
def test_incompatible_change_is_refused_without_force_and_nothing_changes(fs, change):
    fs.apply([driver, view()])
    fs.ingest("driver_stats", rows())
    with pytest.raises(IncompatibleChangeError, match="force=True"):
        fs.apply(view(**change))
    assert fs.describe("driver_stats")["version"] == 1
    assert offline_rows(fs) == 3


def test_forced_incompatible_change_archives_old_rows(fs):
    fs.apply([driver, view()])
    fs.ingest("driver_stats", rows())
    fs.apply(view(schema=[Field("conv_rate", "float32"), Field("trips", "int64")]), force=True)
    described = fs.describe("driver_stats")
    assert described["version"] == 2 and described["generation"] == 2
    assert described["offline_rows"] == 0
    con = fs._con  # the archive is a plain table users can query
    assert con.execute('SELECT count(*) FROM "_lm_archive_driver_stats_g1"').fetchall() == [(3,)]


def test_entity_key_change_is_refused_without_force(fs):
    fs.apply([driver, view()])
    with pytest.raises(
        IncompatibleChangeError,
        match=r"entity 'driver' cannot change incompatibly \(join_keys \['driver_id'\] -> \['id'\]",
    ):
        fs.apply(Entity("driver", join_keys=["id"]))


def test_definitions_persist_across_reopen(tmp_path):
    path = tmp_path / "features.duckdb"
    with FeatureStore(path) as fs:
        fs.apply([driver, view()])
        fs.ingest("driver_stats", rows())
    with FeatureStore(path) as fs:
        assert [v.name for v in fs.list_feature_views()] == ["driver_stats"]
        assert [e.name for e in fs.list_entities()] == ["driver"]
        assert offline_rows(fs) == 3
        assert fs.apply([driver, view()]).changed == []
    assert (tmp_path / "features.online.db").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Field("conv rate", "float64"), "invalid field name"),
        (lambda: Field("x", "decimal"), "unknown dtype"),
        (lambda: Entity("driver", join_keys=["a;drop"]), "invalid join key name"),
        (lambda: Entity("driver", value_type="float64"), "cannot be a key"),
        (lambda: view(name="1bad"), "invalid feature view name"),
        (lambda: view(name="_lm_x"), "invalid feature view name"),
        (lambda: view(ttl=timedelta(seconds=-1)), "ttl must not be negative"),
        (lambda: view(ttl=5), "ttl must be a timedelta"),
        (lambda: view(schema=[Field("a", "int64"), Field("a", "int64")]), "repeats fields"),
        (lambda: view(entities=[]), "at least one entity"),
        (lambda: view(created_timestamp_field="datetime"), "must differ"),
        (lambda: view(schema=[Field("datetime", "int64"), Field("a", "int64")]),
         "timestamp field"),
    ],
)
def test_invalid_definitions_are_refused_with_a_clear_error(make, message):
    with pytest.raises(DefinitionError, match=message):
        make()


def test_view_with_unknown_entity_name_is_refused(fs):
    with pytest.raises(DefinitionError, match="neither applied"):
        fs.apply(view(entities=["nobody"]))
    assert fs.list_feature_views() == []


def test_view_without_features_is_refused(fs):
    with pytest.raises(DefinitionError, match="no feature fields"):
        fs.apply(view(schema=[Field("driver_id", "int64")]))


def test_apply_refuses_other_objects_and_two_definitions_of_one_name(fs):
    with pytest.raises(DefinitionError, match="takes Entity and FeatureView"):
        fs.apply(["driver"])
    with pytest.raises(DefinitionError, match="two different definitions"):
        fs.apply([view(), view(ttl=None)])


def test_unknown_view_raises_a_key_error_naming_it(fs):
    with pytest.raises(KeyError, match="no feature view named 'nope'"):
        fs.ingest("nope", rows())
    with pytest.raises(LitemlopsError, match="no feature view named 'nope'"):
        fs.describe("nope")


def test_a_lost_online_store_is_rebuilt_by_the_next_materialize(tmp_path):
    path = tmp_path / "features.duckdb"
    clock = lambda: T0 + timedelta(hours=6)  # noqa: E731
    with FeatureStore(path, clock=clock) as fs:
        fs.apply([driver, view()])
        fs.ingest("driver_stats", rows())
        fs.materialize()
    (tmp_path / "features.online.db").unlink()
    for extra in tmp_path.glob("features.online.db-*"):
        extra.unlink()
    with FeatureStore(path, clock=clock) as fs:
        assert fs.get_online_features(["driver_stats:trips"], [{"driver_id": 1003}])["trips"] == [
            None
        ]
        fs.materialize()
        assert fs.get_online_features(["driver_stats:trips"], [{"driver_id": 1003}])["trips"] == [2]


def test_a_store_open_in_another_process_is_refused_with_a_clear_error(tmp_path):
    import subprocess
    import sys

    from litemlops.errors import HomeLockedError

    path = tmp_path / "features.duckdb"
    FeatureStore(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from litemlops.store import FeatureStore; fs = FeatureStore(sys.argv[1]); "
         "print('open', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(HomeLockedError, match="open in another process"):
            FeatureStore(path)
    finally:
        holder.communicate("", timeout=30)
    with FeatureStore(path) as fs:  # usable again once the holder is gone
        assert fs.list_feature_views() == []


def test_switching_online_stores_never_leaves_one_stale(tmp_path):
    path = tmp_path / "features.duckdb"
    clock = lambda: T0 + timedelta(days=1)  # noqa: E731

    def step(online, trips, hour):
        with FeatureStore(path, online=tmp_path / online, clock=clock) as fs:
            fs.apply([driver, view()])
            frame = rows(1).assign(trips=[trips], datetime=[T0 + timedelta(hours=hour)])
            fs.ingest("driver_stats", frame)
            fs.materialize()
            return fs.get_online_features(["driver_stats:trips"], [{"driver_id": 1001}])

    assert step("a.db", 1, hour=1)["trips"] == [1]
    assert step("b.db", 2, hour=2)["trips"] == [2]
    assert step("b.db", 3, hour=3)["trips"] == [3]
    # a.db never saw rows 2 and 3; an older row now must not hide them.
    assert step("a.db", 0, hour=0)["trips"] == [3]


def test_forced_entity_key_change_must_bring_its_views_along(fs):
    fs.apply([driver, view()])
    fs.ingest("driver_stats", rows())
    renamed = Entity("driver", join_keys=["id"])
    with pytest.raises(DefinitionError, match=r"\['driver_stats'\].*not in this apply"):
        fs.apply(renamed, force=True)
    assert fs.list_entities() == [driver]
    fs.apply([renamed, view(entities=[renamed])], force=True)
    described = fs.describe("driver_stats")
    assert described["join_keys"] == {"id": "int64"} and described["offline_rows"] == 0


def test_columns_lists_every_column_of_a_view_with_its_dtype():
    from litemlops.store import Entity, FeatureStore, FeatureView, Field

    view = FeatureView(
        "v", entities=[Entity("e", value_type="string")],
        schema=[Field("x", "float64"), Field("n", "int32")],
        timestamp_field="t", created_timestamp_field="c",
    )
    with FeatureStore(":memory:") as fs:
        fs.apply(view)
        assert fs.columns("v") == {
            "e": "string", "t": "timestamp", "c": "timestamp", "x": "float64", "n": "int32",
        }
        with pytest.raises(KeyError, match="no feature view named 'w'"):
            fs.columns("w")


def test_describe_gives_each_features_share_of_missing_values_in_the_history(fs):
    fs.apply([driver, view()])
    assert fs.describe("driver_stats")["null_rates"] == {"conv_rate": None, "trips": None}

    fs.ingest("driver_stats", rows(4, conv_rate=[0.1, None, None, 0.4], trips=[1, 2, 3, None]))

    assert fs.describe("driver_stats")["null_rates"] == {"conv_rate": 0.5, "trips": 0.25}
