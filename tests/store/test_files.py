"""Table files as users bring them: tab-separated text, Parquet with a pandas index,
and moves that never overwrite."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops.errors import ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field
from litemlops.store.files import delimiter, move_aside, read_frame

T0 = datetime(2026, 1, 1, tzinfo=UTC)
driver = Entity("driver", join_keys=["driver_id"])
view = FeatureView(
    "driver_stats",
    entities=[driver],
    schema=[Field("conv_rate", "float64"), Field("avg_daily_trips", "int64")],
    timestamp_field="datetime",
)


def rows(n=4):
    return pd.DataFrame({
        "driver_id": [1001 + i for i in range(n)],
        "datetime": [T0 + timedelta(hours=i) for i in range(n)],
        "conv_rate": [0.1 * (i + 1) for i in range(n)],
        "avg_daily_trips": [10 + i for i in range(n)],
    })


@pytest.fixture
def fs():
    with FeatureStore(":memory:", clock=lambda: T0) as store:
        store.apply([driver, view])
        yield store


def written(fs):
    return fs.get_historical_features(
        pd.DataFrame({"driver_id": [1001, 1004], "event_timestamp": [T0 + timedelta(hours=9)] * 2}),
        ["driver_stats:conv_rate", "driver_stats:avg_daily_trips"],
    )


@pytest.mark.parametrize("name", ["stats.tsv", "stats.csv", "STATS.TSV"])
def test_tab_separated_files_are_read_by_extension_and_by_their_header(tmp_path, fs, name):
    path = tmp_path / name
    rows().to_csv(path, sep="\t", index=False)
    assert delimiter(path) == "\t"
    frame = read_frame(path)
    assert list(frame.columns) == list(rows().columns)
    assert frame["avg_daily_trips"].tolist() == [10, 11, 12, 13]
    assert fs.ingest("driver_stats", path).rows == 4
    assert written(fs)["avg_daily_trips"].tolist() == [10, 13]


def test_a_comma_file_stays_comma_separated_even_with_tabs_in_a_quoted_value(tmp_path):
    path = tmp_path / "notes.csv"
    pd.DataFrame({"a": ["x\ty"], "b": [1], "c": [2]}).to_csv(path, index=False)
    assert delimiter(path) == ","
    assert read_frame(path).to_dict("list") == {"a": ["x\ty"], "b": [1], "c": [2]}
    one = tmp_path / "one.csv"
    one.write_text("only\n1\n")
    assert delimiter(one) == ","


def test_write_frame_writes_tsv_with_tabs(tmp_path):
    from litemlops.store.files import write_frame

    path = tmp_path / "out.tsv"
    write_frame(rows(2), path)
    assert path.read_text().splitlines()[0] == "driver_id\tdatetime\tconv_rate\tavg_daily_trips"


def test_an_unnamed_pandas_index_saved_in_parquet_is_dropped_by_both_readers(tmp_path, fs):
    path = tmp_path / "driver_stats.parquet"
    kept = rows(6).iloc[[0, 2, 3, 5]]  # filtered: pandas saves the index as a column
    kept.to_parquet(path)
    import pyarrow.parquet as pq

    assert "__index_level_0__" in pq.read_table(path).column_names
    frame = read_frame(path)
    assert list(frame.columns) == list(rows().columns)
    assert list(frame.index) == [0, 1, 2, 3]
    assert fs.ingest("driver_stats", path).rows == 4


def test_a_named_pandas_index_is_a_column_when_the_view_has_it_and_dropped_when_not(
    tmp_path, fs
):
    by_driver = tmp_path / "by_driver.parquet"
    rows().set_index("driver_id").to_parquet(by_driver)
    frame = read_frame(by_driver)
    assert sorted(frame.columns) == sorted(rows().columns)
    assert frame.attrs["pandas_index_columns"] == ["driver_id"]
    assert fs.ingest("driver_stats", by_driver).rows == 4
    assert written(fs)["conv_rate"].tolist() == pytest.approx([0.1, 0.4])
    labelled = tmp_path / "labelled.parquet"
    rows().set_index(pd.Index([7, 3, 9, 1], name="row")).to_parquet(labelled)
    assert read_frame(labelled).attrs["pandas_index_columns"] == ["row"]
    assert fs.ingest("driver_stats", labelled).rows == 4


def test_a_column_only_named_like_an_index_is_still_refused(tmp_path, fs):
    path = tmp_path / "odd.csv"
    rows().assign(__index_level_0__=1).to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"unexpected column\(s\) \['__index_level_0__'\]"):
        fs.ingest("driver_stats", path)
    parquet = tmp_path / "odd.parquet"
    rows().assign(__index_level_0__=1).to_parquet(parquet, index=False)
    with pytest.raises(ValidationError, match="unexpected column"):
        fs.ingest("driver_stats", parquet)
    assert "__index_level_0__" in read_frame(parquet).columns


@settings(max_examples=examples(25), deadline=None)
@given(contents=st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=6))
def test_moving_files_of_one_name_aside_keeps_every_one(tmp_path_factory, contents):
    base = tmp_path_factory.mktemp("moves")
    folder = base / "rejected"
    for i, data in enumerate(contents):
        source = base / "batch.parquet"
        source.write_bytes(data)
        moved = move_aside(source, folder, f"run{i % 2}")
        assert moved.parent == folder and moved.read_bytes() == data
        assert not source.exists()
    stored = sorted(p.read_bytes() for p in folder.iterdir())
    assert stored == sorted(contents)
    assert (folder / "batch.parquet").read_bytes() == contents[0]
