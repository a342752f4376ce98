"""The online side's edges: default limits at their bounds, clocks in other zones, push
targets against views kept offline, the push log's level, signatures, and a reader that
keeps what it parsed until the definitions change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from shared_views import DRIVER, stat_row, stats_view
from structlog.testing import capture_logs

from litemlops.errors import ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field, OnlineFeatureStore

NOW = datetime(2024, 1, 2, tzinfo=UTC)
SECOND = timedelta(seconds=1)
US = timedelta(microseconds=1)


@pytest.fixture
def stats(tmp_path: Path) -> Iterator[FeatureStore]:
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: NOW) as fs:
        fs.apply([DRIVER, stats_view(None)])
        yield fs


@pytest.mark.parametrize("through", ["online-only", "history"])
def test_default_limits_hold_exactly_at_ten_minutes_late_and_five_ahead(
    stats: FeatureStore, tmp_path: Path, through: str
) -> None:
    """A row exactly 10 minutes behind the clock is not late, one a second more is; a
    row exactly 5 minutes ahead is taken online, one a second more is refused."""
    store: Any = stats
    if through == "online-only":
        store = OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: NOW)
    with store:
        late = store.push(
            "driver_stats",
            [
                stat_row(1001, NOW - timedelta(minutes=10), 0.1),
                stat_row(1002, NOW - timedelta(minutes=10) - SECOND, 0.2),
            ],
        )
        assert (late.late_rows, late.online_written) == (1, 2)
        ahead = store.push("driver_stats", [stat_row(1003, NOW + timedelta(minutes=5), 0.3)])
        assert ahead.online_written == 1
        with pytest.raises(ValidationError, match=r"1 row\(s\) .* 300 s ahead of the clock"):
            store.push("driver_stats", [stat_row(1003, NOW + timedelta(minutes=5) + SECOND, 0.4)])


def test_a_max_future_of_zero_takes_rows_up_to_the_clock_and_no_later() -> None:
    with FeatureStore(":memory:", clock=lambda: NOW, max_future=timedelta(0)) as fs:
        fs.apply([DRIVER, stats_view(None)])
        assert fs.push("driver_stats", [stat_row(1001, NOW, 0.1)]).online_written == 1
        with pytest.raises(ValidationError, match=r"more than 0 s ahead of the clock"):
            fs.push("driver_stats", [stat_row(1001, NOW + US, 0.2)])


def test_a_clock_in_another_zone_measures_lateness_and_the_future_in_utc() -> None:
    """The clock's zone is only how it writes the instant: 07:00 at +07:00 is midnight UTC."""
    local = NOW.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    lateness, ahead = timedelta(minutes=10), timedelta(minutes=5)
    with FeatureStore(
        ":memory:", clock=lambda: local, push_lateness=lateness, max_future=ahead
    ) as fs:
        fs.apply([DRIVER, stats_view(None)])
        result = fs.push(
            "driver_stats",
            [
                stat_row(1001, NOW - lateness, 0.1),
                stat_row(1002, NOW - lateness - US, 0.2),
                stat_row(1003, NOW + ahead, 0.3),
            ],
        )
        assert (result.late_rows, result.online_written) == (1, 3)
        with pytest.raises(ValidationError, match=r"first row 0: 2024-01-02T00:05:00.000001"):
            fs.push("driver_stats", [stat_row(1004, NOW + ahead + US, 0.4)])


def test_a_view_kept_offline_takes_offline_pushes_only() -> None:
    """Offline, a push is neither checked for the future nor counted stale; the target may
    be a string made at run time (as parsed from a request), not only the literal."""
    entity = Entity("e")
    view = FeatureView("v", entities=[entity], schema=[Field("x", "float64")], online=False)
    with FeatureStore(":memory:", clock=lambda: NOW) as fs:
        fs.apply([entity, view])
        row = {"e": 1, "event_timestamp": NOW, "x": 1.0}
        for to in ("online", "both"):
            with pytest.raises(ValidationError, match="'v' is not online; push with to='offline'"):
                fs.push("v", [row], to=to)
        offline: Any = "".join(["off", "line"])
        ahead = {"e": 2, "event_timestamp": NOW + timedelta(days=1), "x": 2.0}
        late = {"e": 3, "event_timestamp": NOW - timedelta(days=1), "x": 3.0}
        result = fs.push("v", [row, ahead, late], to=offline)
        counts = (result.rows, result.online_written, result.stale_rows, result.late_rows)
        assert counts == (3, 0, 0, 1)
        assert fs.describe("v")["offline_rows"] == 3


def test_a_push_with_late_rows_is_logged_as_a_warning_and_one_without_as_info() -> None:
    with FeatureStore(":memory:", clock=lambda: NOW, push_lateness=timedelta(minutes=10)) as fs:
        fs.apply([DRIVER, stats_view(None)])
        with capture_logs() as logs:
            fs.push("driver_stats", [stat_row(1001, NOW, 0.1)])
            fs.push("driver_stats", [stat_row(1001, NOW - timedelta(hours=1), 0.2)])
    pushed = [
        (e["log_level"], e["late_rows"], e["stale_rows"])
        for e in logs
        if e["event"] == "features_pushed"
    ]
    assert pushed == [("info", 0, 0), ("warning", 1, 1)]


def test_join_keys_of_features_named_alike_in_two_views_need_full_feature_names() -> None:
    """The keys of features a lookup takes: features whose short names collide are refused
    (a service reading them by short name cannot run), and given with full names."""
    driver, car = Entity("driver"), Entity("car", value_type="string")
    views = [
        FeatureView(name, entities=[entity], schema=[Field("rating", "float64")])
        for name, entity in (("drivers", driver), ("cars", car))
    ]
    with FeatureStore(":memory:", clock=lambda: NOW) as fs:
        fs.apply([driver, car, *views])
        refs = ["drivers:rating", "cars:rating"]
        with pytest.raises(ValidationError, match="would both be named 'rating'"):
            fs.join_keys(refs)
        keys = fs.join_keys(refs, full_feature_names=True)
        assert keys == {"driver": "int64", "car": "string"}
        got = fs.get_online_features(refs, [{"driver": 1, "car": "a"}], full_feature_names=True)
        assert got.to_dict() == {
            "driver": [1],
            "car": ["a"],
            "drivers__rating": [None],
            "cars__rating": [None],
        }
        with pytest.raises(TypeError, match=r"join_keys\(\) takes 2 positional arguments"):
            fs.join_keys(refs, True)


def test_an_unhashable_feature_reference_is_a_validation_error() -> None:
    with FeatureStore(":memory:", clock=lambda: NOW) as fs:
        fs.apply([DRIVER, stats_view(None)])
        unhashable: Any = [["driver_stats", "conv_rate"]]
        with pytest.raises(ValidationError, match=r"\['driver_stats', 'conv_rate'\] is not "):
            fs.get_online_features(unhashable, [{"driver_id": 1001}])


def test_leading_arguments_take_names_and_the_options_only_names(
    stats: FeatureStore, tmp_path: Path
) -> None:
    """As in Feast, `features=` and `entity_rows=` may be named; the options after them
    cannot be passed by position, where a misplaced flag would be silently taken."""
    stats.push("driver_stats", [stat_row(1001, NOW, 0.5)])
    path = tmp_path / "f.online.db"
    with pytest.raises(TypeError, match=r"__init__\(\) takes 2 positional arguments"):
        OnlineFeatureStore(path, lambda: NOW)  # type: ignore[call-arg]
    with OnlineFeatureStore(path=path, clock=lambda: NOW) as online:
        refs, rows = ["driver_stats:conv_rate"], [{"driver_id": 1001}]
        assert online.get_online_features(features=refs, entity_rows=rows)["conv_rate"] == [0.5]
        with pytest.raises(TypeError, match=r"get_online_features\(\) takes 3 positional"):
            online.get_online_features(refs, rows, True)


def test_a_reader_keeps_its_parsed_definitions_through_writes_that_change_none(
    stats: FeatureStore, tmp_path: Path
) -> None:
    """Another connection's push moves the file's data version; only a change of the
    definitions makes the reader parse them again and drop its lookup plans."""
    refs = ["driver_stats:conv_rate"]
    with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: NOW) as online:
        assert online.get_online_features(refs, [{"driver_id": 1001}])["conv_rate"] == [None]
        defs, plans = online._defs, dict(online._plans)
        stats.push("driver_stats", [stat_row(1001, NOW, 0.5)])
        assert online.get_online_features(refs, [{"driver_id": 1001}])["conv_rate"] == [0.5]
        assert online._defs is defs
        assert online._plans == plans and all(online._plans[k] is p for k, p in plans.items())
        stats.apply(FeatureView("other", entities=[DRIVER], schema=[Field("y", "int64")]))
        assert online.get_online_features(refs, [{"driver_id": 1001}])["conv_rate"] == [0.5]
        assert online._defs is not defs and "other" in online._defs.views


def test_a_reader_that_cannot_read_the_definitions_closes_its_file_and_reraises(
    stats: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from litemlops.store.features.online import OnlineStore

    path = tmp_path / "f.online.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("UPDATE _lm_definitions SET spec = '{' WHERE kind = 'view'")
    con.close()
    closed: list[OnlineStore] = []
    real_close = OnlineStore.close

    def close(self: OnlineStore) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(OnlineStore, "close", close)
    with pytest.raises(ValueError, match="Expecting property name"):
        OnlineFeatureStore(path, clock=lambda: NOW)
    assert len(closed) == 1
