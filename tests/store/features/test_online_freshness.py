"""The newest event time in the online store per view: what `/metrics` reports as
each feature view's freshness."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_views import DRIVER, quality_view, stat_row, stats_view

from litemlops.clock import to_micros
from litemlops.store import FeatureStore, OnlineFeatureStore

T0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    pushes=st.lists(
        st.tuples(st.integers(1, 4), st.integers(0, 3_600)), min_size=1, max_size=12
    ),
    in_memory=st.booleans(),
)
def test_the_newest_event_time_is_the_latest_pushed_whatever_the_order(
    tmp_path_factory, pushes, in_memory
):
    now = T0 + timedelta(hours=1)
    path = ":memory:" if in_memory else tmp_path_factory.mktemp("fs") / "features.duckdb"
    with FeatureStore(path, clock=lambda: now, push_lateness=timedelta(days=1)) as store:
        store.apply([DRIVER, stats_view(None), quality_view(None)])
        for key, seconds in pushes:  # older rows than a driver's current lose, but count not
            store.push("driver_stats", [stat_row(key, T0 + timedelta(seconds=seconds), 0.5)])

        newest = store.online_event_times()

    latest = max(seconds for _, seconds in pushes)
    assert newest == {
        "driver_quality": None,  # online, but nothing written yet
        "driver_stats": T0 + timedelta(seconds=latest),
    }


def test_the_online_half_alone_reads_the_same_times(tmp_path: Path):
    now = T0 + timedelta(hours=1)
    path = tmp_path / "features.duckdb"
    with FeatureStore(path, clock=lambda: now) as store:
        store.apply([DRIVER, stats_view(None)])
        store.push("driver_stats", [stat_row(1, T0 + timedelta(minutes=30), 0.2)])
        with OnlineFeatureStore(path.with_suffix(".online.db"), clock=lambda: now) as online:
            assert online.online_event_times() == {"driver_stats": T0 + timedelta(minutes=30)}


def test_an_offline_only_view_has_no_online_time(tmp_path: Path):
    from litemlops.store import FeatureView, Field

    offline = FeatureView(
        "history_only", entities=[DRIVER], schema=[Field("x", "float64")], online=False
    )
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0) as store:
        store.apply([DRIVER, offline])
        assert store.online_event_times() == {}


def test_a_view_without_an_online_table_has_no_newest_time(tmp_path: Path):
    from litemlops.store.features.online import OnlineStore

    view = stats_view(None)
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0) as store:
        store.apply([DRIVER, view])
        store.push("driver_stats", [stat_row(1, T0, 0.5)])
    for target in (":memory:", tmp_path / "f.online.db"):  # its own connection or a reader
        online = OnlineStore(target)
        try:
            newest = online.newest_event_times(["no_table", "driver_stats"])
            expected = None if target == ":memory:" else to_micros(T0)
            assert newest == {"no_table": None, "driver_stats": expected}
        finally:
            online.close()
