"""`FeatureStore` at its edges: where its files go, which arguments must be named, what
reopening keeps of the watermarks, the log of spooled pushes, and what `batches` and
`describe` report when more than one view, batch or source is about."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from structlog.testing import capture_logs

from litemlops import events
from litemlops.errors import ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field, OnlineFeatureStore
from litemlops.store.features.online import online_table
from litemlops.testing import FixedClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
E = Entity("e")


def view(name: str, *, online: bool = True, **extra: Any) -> FeatureView:
    return FeatureView(name, entities=[E], schema=[Field("x", "float64")], online=online, **extra)


def row(e: int, at: datetime, x: float) -> dict[str, Any]:
    return {"e": e, "event_timestamp": at, "x": x}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# -- opening -------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_store_at_a_new_nested_path_makes_its_folders_and_its_online_file_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    """Folders that do not exist yet are made, parents included, and the online store
    is `<stem>.online.db` next to the DuckDB file, whether the path is absolute or
    relative to the working folder."""
    monkeypatch.chdir(tmp_path)
    where = Path("deep", "er", "f.duckdb")
    with FeatureStore(where if relative else tmp_path / where) as fs:
        fs.apply(view("v"))
    assert (tmp_path / "deep" / "er" / "f.duckdb").is_file()
    assert (tmp_path / "deep" / "er" / "f.online.db").is_file()


def test_a_store_in_memory_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with FeatureStore(":memory:") as fs:
        fs.apply(view("v"))
        fs.ingest("v", [row(1, T0, 1.0)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda fs: FeatureStore(":memory:", ":memory:"),
        lambda fs: fs.apply(view("v"), True),
        lambda fs: fs.get_historical_features(
            pd.DataFrame({"e": [1], "event_timestamp": [T0]}), ["v:x"], True
        ),
    ],
    ids=["online", "force", "full_feature_names"],
)
def test_options_must_be_named(call: Any) -> None:
    """`online=`, `force=` and `full_feature_names=` are keyword-only: a bare True or a
    second path in their place is refused rather than taken for something else."""
    with FeatureStore() as fs:
        fs.apply(view("v"))
        with pytest.raises(TypeError, match="positional argument"):
            call(fs)


# -- the online store's identity -------------------------------------------------------


def materialized_store(path: Path, clock: FixedClock, names: str = "v") -> None:
    """Views `names`, each with entity 1 ingested at T0 and materialized up to T0 + 1 h."""
    with FeatureStore(path, clock=clock) as fs:
        fs.apply([view(n) for n in names])
        for n in names:
            fs.ingest(n, [row(1, T0, 1.0)])
        fs.materialize(end=T0 + timedelta(hours=1))


def test_reopening_with_the_same_online_file_keeps_the_watermarks(tmp_path: Path) -> None:
    """A store opened again on its own online file goes on from its watermarks: the
    next materialize reads only the rows ingested since."""
    clock = FixedClock(T0 + timedelta(hours=2))
    materialized_store(tmp_path / "f.duckdb", clock)
    with FeatureStore(tmp_path / "f.duckdb", clock=clock) as fs:
        assert fs.describe("v")["materialized_until"] == iso(T0 + timedelta(hours=1))
        fs.ingest("v", [row(2, T0, 2.0)])
        (result,) = fs.materialize(end=T0 + timedelta(hours=1))
        assert result.entities_read == 1  # the new row only
        assert fs.get_online_features(["v:x"], [{"e": 1}, {"e": 2}])["x"] == [1.0, 2.0]


def test_another_stores_online_file_gets_every_view_rewritten(tmp_path: Path) -> None:
    """Handed an online file whose id it never recorded (here another store's, with the
    view's table already there but empty), the store drops its watermarks, so the next
    materialize writes the history in full instead of skipping what the file never saw."""
    clock = FixedClock(T0 + timedelta(hours=2))
    materialized_store(tmp_path / "a.duckdb", clock)
    with FeatureStore(tmp_path / "b.duckdb", clock=clock) as other:
        other.apply(view("v"))
    with FeatureStore(tmp_path / "a.duckdb", online=tmp_path / "b.online.db", clock=clock) as fs:
        assert fs.describe("v")["materialized_until"] is None
        (result,) = fs.materialize(end=T0 + timedelta(hours=1))
        assert result.entities_written == 1
        assert fs.get_online_features(["v:x"], [{"e": 1}])["x"] == [1.0]


def test_a_view_whose_online_table_went_missing_alone_is_rematerialized(tmp_path: Path) -> None:
    """Only the view that lost its online table loses its watermark; the others keep
    theirs and are not read again."""
    clock = FixedClock(T0 + timedelta(hours=2))
    materialized_store(tmp_path / "f.duckdb", clock, names="vw")
    con = sqlite3.connect(tmp_path / "f.online.db", isolation_level=None)
    con.execute(f'DROP TABLE "{online_table("v")}"')
    con.close()
    with FeatureStore(tmp_path / "f.duckdb", clock=clock) as fs:
        assert fs.describe("v")["materialized_until"] is None
        assert fs.describe("w")["materialized_until"] == iso(T0 + timedelta(hours=1))
        read = {r.view: r.entities_read for r in fs.materialize(end=T0 + timedelta(hours=1))}
        assert read == {"v": 1, "w": 0}
        assert fs.get_online_features(["v:x"], [{"e": 1}])["x"] == [1.0]


# -- apply ---------------------------------------------------------------------------


def test_apply_reports_which_names_changed_and_which_did_not() -> None:
    with FeatureStore() as fs:
        first = fs.apply([view("v"), view("w")])
        assert (first.changed, first.unchanged) == (["e", "v", "w"], [])
        wider = FeatureView("w", entities=[E], schema=[Field("x", "float64"), Field("y", "int64")])
        second = fs.apply([view("v"), wider])
        assert (second.changed, second.unchanged) == (["w"], ["e", "v"])
        again = fs.apply([view("v"), wider])
        assert (again.changed, again.unchanged) == ([], ["e", "v", "w"])


# -- pushes spooled by the online-only store --------------------------------------------


def test_taking_spooled_pushes_logs_how_many_pushes_and_rows_once(tmp_path: Path) -> None:
    """Opening the history takes in what the online-only store spooled and says so once,
    with the counts; an open with nothing spooled says nothing."""
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0) as fs:
        fs.apply(view("v"))
    with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: T0) as online:
        online.push("v", [row(1, T0, 1.0)], to="offline")
        online.push("v", [row(2, T0, 2.0), row(3, T0, 3.0)], to="offline")
    with capture_logs() as logs, FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0) as fs:
        assert fs.describe("v")["offline_rows"] == 3
    taken = [e for e in logs if e["event"] == events.OFFLINE_PUSHES_TAKEN]
    assert [(e["pushes"], e["rows"]) for e in taken] == [(2, 3)]
    with capture_logs() as logs, FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0):
        pass
    assert not [e for e in logs if e["event"] == events.OFFLINE_PUSHES_TAKEN]


def test_a_spooled_push_for_a_generation_the_view_never_had_is_dropped(tmp_path: Path) -> None:
    """Only a push made under the view's current generation goes in: one stamped with a
    later generation (an online file from elsewhere) is dropped as an older one is."""
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0) as fs:
        fs.apply(view("v"))
        resolved = fs._view("v")
    ahead = dataclasses.replace(resolved, generation=resolved.generation + 1)
    one = pa.table({"e": pa.array([1], pa.int64()),
                    "event_timestamp": pa.array([T0.replace(tzinfo=None)], pa.timestamp("us")),
                    "x": pa.array([1.0], pa.float64())})  # fmt: skip
    with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: T0) as online:
        online._append(ahead, one, "push", "rows")
        online.push("v", [row(2, T0, 2.0)], to="offline")
    with capture_logs() as logs, FeatureStore(tmp_path / "f.duckdb", clock=lambda: T0) as fs:
        assert fs.describe("v")["offline_rows"] == 1
        assert [b["rows"] for b in fs.batches("v")] == [1]
    (dropped,) = [e for e in logs if e["event"] == events.OFFLINE_PUSH_DROPPED]
    assert dropped["view"] == "v" and dropped["rows"] == 1


# -- materialize -----------------------------------------------------------------------


def test_materializing_offline_only_views_by_name_names_the_first_of_them() -> None:
    with FeatureStore() as fs:
        fs.apply([view("a", online=False), view("b", online=False), view("c")])
        with pytest.raises(ValidationError, match=r"feature view 'a' is not online"):
            fs.materialize(views=["c", "a", "b"])


def test_materialize_logs_the_watermark_it_reached() -> None:
    end = T0 + timedelta(hours=1)
    with FeatureStore(clock=lambda: T0 + timedelta(hours=2)) as fs:
        fs.apply(view("v"))
        fs.ingest("v", [row(1, T0, 1.0)])
        with capture_logs() as logs:
            (result,) = fs.materialize(end=end)
    (logged,) = [e for e in logs if e["event"] == events.FEATURES_MATERIALIZED]
    assert result.watermark is not None
    assert logged["watermark"] == result.watermark.isoformat()
    assert logged["watermark"].startswith(end.replace(tzinfo=None).isoformat())


# -- inspection ------------------------------------------------------------------------


def test_batches_lists_one_views_current_writes_oldest_first_by_source() -> None:
    """`batches(view)` keeps to that view and its current generation; `source` keeps the
    writes of one source."""
    table = pa.table({"e": [9], "event_timestamp": [T0], "x": [9.0]})
    with FeatureStore(clock=lambda: T0) as fs:
        fs.apply([view("v"), view("w")])
        fs.ingest("v", [row(1, T0, 1.0)])
        fs.ingest("w", [row(1, T0, 1.0), row(2, T0, 2.0)])
        fs.ingest("v", table)
        fs.ingest("v", [row(2, T0, 2.0), row(3, T0, 3.0), row(4, T0, 4.0)])
        listed = fs.batches("v")
        assert [(b["source"], b["rows"]) for b in listed] == [
            ("rows", 1),
            ("table", 1),
            ("rows", 3),
        ]
        assert [b["batch"] for b in listed] == sorted(b["batch"] for b in listed)
        assert [b["rows"] for b in fs.batches("v", source="rows")] == [1, 3]
        assert [b["rows"] for b in fs.batches("v", source="table")] == [1]
        assert [b["rows"] for b in fs.batches("w", source="rows")] == [2]
        retyped = FeatureView("v", entities=[E], schema=[Field("x", "int64")])
        fs.apply(retyped, force=True)  # a new generation starts with no writes
        assert fs.batches("v") == []
        assert [b["rows"] for b in fs.batches("w")] == [2]


def test_describe_reports_the_views_own_history_watermark_and_online_rows() -> None:
    clock = FixedClock(T0 + timedelta(hours=3))
    end = T0 + timedelta(hours=2)
    with FeatureStore(clock=clock) as fs:
        fs.apply([view("v", tags={"team": "risk"}), view("w")])
        fs.ingest("v", [row(1, T0 + timedelta(minutes=30), 1.0), row(2, T0, 2.0)])
        clock.advance(60)
        fs.ingest("v", [row(3, T0 + timedelta(hours=1), 3.0)])
        written = clock.now
        clock.advance(60)
        fs.ingest("w", [row(1, T0, 1.0)])
        clock.advance(60)
        fs.materialize(end=end, views=["v"])
        described = fs.describe("v")
        assert described["tags"] == {"team": "risk"}
        assert described["event_time_min"] == iso(T0)
        assert described["event_time_max"] == iso(T0 + timedelta(hours=1))
        assert described["batches"] == 2
        assert described["last_write"] == iso(written)
        assert described["materialized_until"] == iso(end)
        assert described["materialized_at"] == iso(clock.now)
        assert described["online_entities"] == 3
        assert described["online_oldest_event"] == iso(T0)
        assert described["online_newest_event"] == iso(T0 + timedelta(hours=1))
        other = fs.describe("w")
        assert other["batches"] == 1 and other["materialized_until"] is None
        assert other["online_entities"] == 0 and other["online_oldest_event"] is None


def test_describe_an_offline_only_view_has_no_online_rows() -> None:
    with FeatureStore(clock=lambda: T0) as fs:
        fs.apply(view("h", online=False))
        fs.ingest("h", [row(1, T0, 1.0)])
        described = fs.describe("h")
        assert described["online_entities"] == 0 and described["offline_rows"] == 1
