"""Inputs at the edges of the feature store: clocks and times without a zone, feature
references that cannot be hashed, an online file whose mirrored definitions cannot be
read, and the caches of the online store (rows past their limit, statements of a view's
old definition)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from shared_views import DRIVER, stat_row, stats_view

from litemlops.store import FeatureStore, FeatureView, Field, OnlineFeatureStore
from litemlops.store.features import online as online_module

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFS = ["driver_stats:conv_rate"]


def now() -> datetime:
    return T0 + timedelta(hours=6)


@pytest.fixture
def local_time_ahead_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is UTC+7, so a naive time read as local is off."""
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_clock_without_a_time_zone_is_refused_before_anything_is_written():
    with FeatureStore(":memory:", clock=lambda: datetime(2026, 1, 1)) as fs:
        with pytest.raises(ValueError, match=r"^clock must return an aware datetime$"):
            fs.apply([DRIVER, stats_view(None)])
        assert fs.list_feature_views() == []
        assert fs.list_entities() == []


def test_a_naive_materialize_end_is_utc_whatever_the_local_zone(local_time_ahead_of_utc):
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.ingest(
            "driver_stats",
            [stat_row(1, T0, 0.1), stat_row(1, T0 + timedelta(hours=3), 0.3)],
        )
        end = (T0 + timedelta(hours=1)).replace(tzinfo=None)  # 01:00 UTC, not 01:00 at UTC+7
        [result] = fs.materialize(end=end)
        assert result.watermark == end.replace(tzinfo=UTC)
        assert fs.get_online_features(REFS, [{"driver_id": 1}])["conv_rate"] == [0.1]


class UnhashableRef(str):
    """A feature reference that is a valid string but cannot key a cache."""

    __hash__ = None  # type: ignore[assignment]


def test_a_valid_reference_that_cannot_be_hashed_raises_the_type_error():
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.push("driver_stats", [stat_row(1, T0, 0.1)])
        with pytest.raises(TypeError, match="unhashable type: 'UnhashableRef'"):
            fs.get_online_features([UnhashableRef("driver_stats:conv_rate")], [{"driver_id": 1}])
        assert fs.get_online_features(REFS, [{"driver_id": 1}])["conv_rate"] == [0.1]


def test_an_online_file_whose_definitions_cannot_be_read_is_closed_again(tmp_path):
    path = tmp_path / "features.duckdb"
    online_path = path.with_suffix(".online.db")
    with FeatureStore(path, clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.push("driver_stats", [stat_row(1, T0, 0.1)])
    con = sqlite3.connect(online_path)
    with con:
        con.execute("UPDATE _lm_definitions SET spec = 'not json' WHERE kind = 'view'")
    con.close()
    with pytest.raises(ValueError, match="Expecting value"):
        OnlineFeatureStore(online_path, clock=now)
    # The last connection to a WAL database removes its -wal file as it closes.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "features.duckdb",
        "features.online.db",
    ]


def traced_selects(con: sqlite3.Connection) -> list[str]:
    selects: list[str] = []
    con.set_trace_callback(
        lambda sql: selects.append(sql) if '"online_driver_stats"' in sql else None
    )
    return selects


def test_past_its_row_limit_a_views_cache_starts_afresh(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(online_module, "ROW_CACHE_LIMIT", 2)
    con = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    with FeatureStore(":memory:", online=con, clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.push("driver_stats", [stat_row(i, T0, i / 10) for i in (1, 2, 3)])
        selects = traced_selects(con)
        two = fs.get_online_features(REFS, [{"driver_id": 1}, {"driver_id": 2}])
        assert two["conv_rate"] == [0.1, 0.2]
        assert fs.get_online_features(REFS, [{"driver_id": 1}])["conv_rate"] == [0.1]
        assert len(selects) == 1  # two rows are within the limit: the second read is cached
        assert fs.get_online_features(REFS, [{"driver_id": 3}])["conv_rate"] == [0.3]
        assert len(selects) == 2  # 3 was read; the cache now holds three keys, one too many
        assert fs.get_online_features(REFS, [{"driver_id": 1}])["conv_rate"] == [0.1]
        assert len(selects) == 3  # past the limit the cache was dropped: 1 is read again
        assert fs.get_online_features(REFS, [{"driver_id": 1}])["conv_rate"] == [0.1]
        assert len(selects) == 3
    con.close()


def test_the_statements_of_a_views_old_definition_are_let_go():
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.push("driver_stats", [stat_row(1, T0, 0.1)])
        assert fs.get_online_features(REFS, [{"driver_id": 1}])["conv_rate"] == [0.1]
        statements = fs._online._select_cache
        assert [key[:3] for key in statements] == [("driver_stats", 1, 1)]
        wider = FeatureView(
            "driver_stats",
            entities=[DRIVER],
            schema=[*stats_view(None).schema, Field("rating", "float64")],
            timestamp_field="datetime",
            created_timestamp_field="created",
        )
        assert fs.apply(wider).changed == ["driver_stats"]
        assert statements == {}
        served = fs.get_online_features([*REFS, "driver_stats:rating"], [{"driver_id": 1}])
        assert (served["conv_rate"], served["rating"]) == ([0.1], [None])
        assert [key[:3] for key in statements] == [("driver_stats", 2, 1)]
