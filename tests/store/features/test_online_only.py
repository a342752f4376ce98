"""`OnlineFeatureStore`: the online half from its SQLite file alone, beside a `FeatureStore`.

The `run` server serves from the online file while pipeline workers hold the
DuckDB history: pushes through either store share one ordering, and each sees
what the other wrote and applied.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_views import DRIVER, quality_view, stats_view
from test_online_properties import (
    LATENESS,
    STEP,
    T0,
    Oracle,
    Rows,
    ingest_ops,
    materialize_ops,
    materialized,
    push_ops,
    served,
    tick_ops,
    to_dict,
)

from litemlops.errors import FeatureViewNotFoundError, ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field, OnlineFeatureStore


@pytest.mark.slow
@settings(max_examples=examples(25), deadline=None)
@given(
    ops=st.lists(st.one_of(ingest_ops, materialize_ops, push_ops, tick_ops), max_size=14),
    sides=st.lists(st.booleans(), min_size=14, max_size=14),
)
def test_pushes_through_either_store_keep_one_latest_per_entity_order(
    manual_clock: Callable[..., Any], ops: list[tuple[Any, ...]], sides: list[bool]
) -> None:
    """Each online push goes through the history's store or the online-only one; both
    serve what the oracle says after every operation (equal times: the later write wins)."""
    view_list = [stats_view(timedelta(hours=3)), quality_view(None)]
    by_name = {v.name: v for v in view_list}
    oracle = Oracle(view_list)
    make_rows = Rows()
    clock = manual_clock(T0 + timedelta(hours=3))
    end = T0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.duckdb"
        with (
            FeatureStore(path, clock=clock, push_lateness=LATENESS) as fs,
            OnlineFeatureStore(
                path.with_suffix(".online.db"), clock=clock, push_lateness=LATENESS
            ) as online,
        ):
            fs.apply([DRIVER, *view_list])
            for i, op in enumerate(ops):
                if op[0] == "ingest":
                    view = by_name[op[1]]
                    rows = make_rows(view, op[2])
                    fs.ingest(view.name, pd.DataFrame([to_dict(view, r) for r in rows]))
                    oracle.ingest(view.name, rows)
                elif op[0] == "materialize":
                    wanted = max(T0, end + op[1] * STEP)
                    if materialized(fs, oracle, wanted, clock()):
                        end = wanted
                elif op[0] == "push":
                    view = by_name[op[1]]
                    rows = make_rows(view, op[2])
                    data = [to_dict(view, r) for r in rows]
                    store = online if sides[i] else fs  # offline: spooled, then taken in
                    want = oracle.push(view.name, rows, op[3], clock())
                    if want is None:
                        with pytest.raises(ValidationError, match="ahead of the clock"):
                            store.push(view.name, data, to=op[3])
                        continue
                    result = store.push(view.name, data, to=op[3])
                    assert {k: getattr(result, k) for k in want} == want, f"push {i}"
                else:
                    clock.advance(op[1] * STEP)
                expected = oracle.expected(clock())
                assert served(fs) == expected, f"history's store after op {i}: {op}"
                assert served(online) == expected, f"online-only store after op {i}: {op}"


def test_definitions_applied_elsewhere_are_seen_at_the_next_call(tmp_path: Path) -> None:
    entity = Entity("e")
    first = FeatureView("v", entities=[entity], schema=[Field("x", "float64")])
    with (
        FeatureStore(tmp_path / "f.duckdb") as fs,
        OnlineFeatureStore(tmp_path / "f.online.db") as online,
    ):
        with pytest.raises(FeatureViewNotFoundError, match="none applied yet"):
            online.columns("v")
        fs.apply([entity, first])
        assert online.columns("v") == {"e": "int64", "event_timestamp": "timestamp",
                                       "x": "float64"}
        assert online.join_keys(["v:x"]) == {"e": "int64"}
        second = FeatureView("v", entities=[entity],
                             schema=[Field("x", "float64"), Field("y", "int64")])
        fs.apply(second)
        assert "y" in online.columns("v")
        assert [v.name for v in online.list_feature_views()] == ["v"]
        assert [e.name for e in online.list_entities()] == ["e"]


def test_a_reader_lets_go_of_the_statements_of_definitions_changed_elsewhere(
    tmp_path: Path,
) -> None:
    entity = Entity("e")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with (
        FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs,
        OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: t) as online,
    ):
        for n, names in enumerate((["x"], ["x", "y"], ["x", "y", "z"]), 1):
            schema = [Field(name, "float64") for name in names]
            fs.apply([entity, FeatureView("v", entities=[entity], schema=schema)])
            fs.push("v", [{"e": 1, "event_timestamp": t, **dict.fromkeys(names, float(n))}])
            got = online.get_online_features([f"v:{name}" for name in names], [{"e": 1}])
            assert [got[name] for name in names] == [[float(n)]] * len(names)
            # Only the statements of the definition in force: none piles up per change.
            assert {key[:2] for key in online._online._select_cache} == {("v", n)}


def test_a_store_opened_later_reads_the_mirrored_definitions(tmp_path: Path) -> None:
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    with FeatureStore(tmp_path / "f.duckdb") as fs:
        fs.apply(view)
    with OnlineFeatureStore(tmp_path / "f.online.db") as online:
        assert online.get_feature_view("v").schema == view.schema


def _spool_rows(path: Path) -> int:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM _lm_spool").fetchone()[0])
    finally:
        con.close()


def test_offline_pushes_wait_in_the_online_file_until_the_history_takes_them(
    tmp_path: Path,
) -> None:
    """The server of `run` holds no DuckDB: its offline pushes are one SQLite write, and
    the next `FeatureStore` to open the history writes them there, in batch order."""
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        fs.apply(view)
        fs.ingest("v", [{"e": 1, "event_timestamp": t, "x": 1.0}])
    online_path = tmp_path / "f.online.db"
    with OnlineFeatureStore(online_path, clock=lambda: t) as online:
        online.push("v", [{"e": 1, "event_timestamp": t, "x": 2.0}], to="offline")
        both = online.push("v", [{"e": 2, "event_timestamp": t, "x": 3.0}], to="both")
        assert both.online_written == 1
        assert online.get_online_features(["v:x"], [{"e": 1}, {"e": 2}])["x"] == [None, 3.0]
        assert _spool_rows(online_path) == 2
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        assert _spool_rows(online_path) == 0
        assert fs.describe("v")["offline_rows"] == 3
        asked = pd.DataFrame({"e": [1, 2], "event_timestamp": [t, t]})
        got = fs.get_historical_features(asked, ["v:x"])
        assert got["x"].tolist() == [2.0, 3.0]  # equal times: the later batch wins
        fs.materialize(end=t)
        assert fs.get_online_features(["v:x"], [{"e": 1}])["x"] == [2.0]


def test_spooled_pushes_reach_an_open_history_before_its_next_read_or_write(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    asked = pd.DataFrame({"e": [1], "event_timestamp": [t]})
    with (
        FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs,
        OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: t) as online,
    ):
        fs.apply(view)
        online.push("v", [{"e": 1, "event_timestamp": t, "x": 2.0}], to="offline")
        assert fs.get_historical_features(asked, ["v:x"])["x"].tolist() == [2.0]
        online.push("v", [{"e": 1, "event_timestamp": t, "x": 4.0}], to="offline")
        fs.ingest("v", [{"e": 1, "event_timestamp": t, "x": 3.0}])  # numbered after the push
        assert fs.get_historical_features(asked, ["v:x"])["x"].tolist() == [3.0]
        online.push("v", [{"e": 1, "event_timestamp": t, "x": 5.0}], to="offline")
        fs.materialize(end=t)
        assert fs.get_online_features(["v:x"], [{"e": 1}])["x"] == [5.0]
        assert fs.describe("v")["offline_rows"] == 4


def test_a_crash_between_the_history_and_the_spool_writes_no_row_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from litemlops.store.features.online import OnlineStore

    t = datetime(2026, 1, 1, tzinfo=UTC)
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        fs.apply(view)
    with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: t) as online:
        for x in (1.0, 2.0):
            online.push("v", [{"e": 1, "event_timestamp": t, "x": x}], to="offline")

    def crash(self: OnlineStore, upto: int) -> None:
        raise OSError("killed before the spool was cleared")

    with monkeypatch.context() as patched:
        patched.setattr(OnlineStore, "unspool", crash)
        with pytest.raises(OSError, match="killed"):
            FeatureStore(tmp_path / "f.duckdb", clock=lambda: t)
    assert _spool_rows(tmp_path / "f.online.db") == 2
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        assert fs.describe("v")["offline_rows"] == 2
    assert _spool_rows(tmp_path / "f.online.db") == 0


def test_a_spooled_push_for_another_generation_of_its_view_is_dropped_with_a_warning(
    tmp_path: Path,
) -> None:
    """Applying takes spooled pushes in first, so only a push made with definitions the
    pusher had not yet reloaded can meet a re-created view: it is not written into the
    new one, it is logged, and later pushes still go in."""
    import dataclasses
    from datetime import UTC, datetime

    from structlog.testing import capture_logs

    t = datetime(2026, 1, 1, tzinfo=UTC)
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        fs.apply(view)
        resolved = fs._view("v")
    with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: t) as online:
        stale = dataclasses.replace(resolved, generation=resolved.generation - 1)
        online._append(stale, pa_table(x=1.0), "push", "rows")
        online.push("v", [{"e": 1, "event_timestamp": t, "x": 2.0}], to="offline")
    with capture_logs() as logs, FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        assert fs.describe("v")["offline_rows"] == 1
    (dropped,) = [e for e in logs if e["event"] == "offline_push_dropped"]
    assert dropped["view"] == "v" and dropped["rows"] == 1 and "re-created" in dropped["why"]
    assert _spool_rows(tmp_path / "f.online.db") == 0


def pa_table(**columns: float) -> Any:
    """One conformed row of entity 1 at 2026-01-01 (naive UTC, as stored)."""
    from datetime import datetime

    import pyarrow as pa

    t = datetime(2026, 1, 1)
    return pa.table({"e": pa.array([1], pa.int64()),
                     "event_timestamp": pa.array([t], pa.timestamp("us")),
                     **{k: pa.array([v], pa.float64()) for k, v in columns.items()}})


def test_batches_numbered_by_an_older_store_still_order_below_new_pushes(tmp_path: Path) -> None:
    """A file written before the online store kept the count: its rows' order stays below
    the online-only store's first push, so an equal-time push still wins."""
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        fs.apply(view)
        for x in (1.0, 2.0, 3.0):
            fs.push("v", [{"e": 1, "event_timestamp": t, "x": x}])
    import sqlite3

    con = sqlite3.connect(tmp_path / "f.online.db", isolation_level=None)
    con.execute("DELETE FROM _lm_meta WHERE key = 'last_batch'")  # as an older version left it
    con.close()
    with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: t) as online:
        assert online.push("v", [{"e": 1, "event_timestamp": t, "x": 4.0}]).online_written == 1
        assert online.get_online_features(["v:x"], [{"e": 1}])["x"] == [4.0]


@pytest.mark.parametrize("through", ["online-only", "history"])
def test_a_push_wins_over_an_earlier_ingested_row_with_the_same_times(
    tmp_path: Path, through: str
) -> None:
    """The ingested row sits late in its batch; the push is the first row of a later
    batch, wherever it is numbered, so its order is higher."""
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    view = FeatureView("v", entities=[Entity("e")], schema=[Field("x", "float64")])
    with FeatureStore(tmp_path / "f.duckdb", clock=lambda: t) as fs:
        fs.apply(view)
        fs.ingest("v", [{"e": e, "event_timestamp": t, "x": 0.0} for e in (2, 3, 4, 1)])
        fs.materialize(end=t)
        with OnlineFeatureStore(tmp_path / "f.online.db", clock=lambda: t) as online:
            store = online if through == "online-only" else fs
            assert store.push("v", [{"e": 1, "event_timestamp": t, "x": 5.0}]).online_written == 1
            assert online.get_online_features(["v:x"], [{"e": 1}])["x"] == [5.0]
            fs.ingest("v", [{"e": e, "event_timestamp": t, "x": 7.0} for e in (2, 3, 1)])
            fs.materialize(end=t)  # a later batch again wins over the push
            assert fs.get_online_features(["v:x"], [{"e": 1}])["x"] == [7.0]


@settings(max_examples=examples(12), deadline=None)
@given(
    pushes=st.lists(st.tuples(st.sampled_from("vw"), st.integers(1, 3)), min_size=1, max_size=9),
    chunk=st.integers(1, 4),
    crash=st.none() | st.tuples(st.sampled_from(["in", "after"]), st.integers(1, 4)),
)
def test_spooled_pushes_reach_the_history_once_each_by_chunks_whatever_crashes_between(
    pushes: list[tuple[str, int]], chunk: int, crash: tuple[str, int] | None
) -> None:
    """Pushes spooled to two views are taken by chunks of `chunk` entries; a crash in a
    chunk's transaction ("in") or after it, before the spool is cleared ("after"), on
    the n-th chunk, loses nothing and writes nothing twice once the store opens again:
    every pushed row once, one lineage row per push with its row count, spool empty."""
    from datetime import UTC, datetime

    from litemlops.store.features import feature_store, offline
    from litemlops.store.features.online import OnlineStore

    t = datetime(2026, 1, 1, tzinfo=UTC)
    views = [FeatureView(n, entities=[Entity("e")], schema=[Field("x", "int64")]) for n in "vw"]
    expected: dict[str, list[int]] = {"v": [], "w": []}
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patched:
        path = Path(folder)
        with FeatureStore(path / "f.duckdb", clock=lambda: t) as fs:
            fs.apply(views)
        with OnlineFeatureStore(path / "f.online.db", clock=lambda: t) as online:
            for i, (view, n) in enumerate(pushes):
                rows = [{"e": 1, "event_timestamp": t, "x": i * 10 + j} for j in range(n)]
                online.push(view, rows, to="offline")
                expected[view] += [r["x"] for r in rows]
        patched.setattr(feature_store, "SPOOL_CHUNK", chunk)
        if crash is not None:
            where, nth = crash
            owner, name = (offline, "append_batches") if where == "in" else (
                OnlineStore, "unspool")
            calls = []
            real = getattr(owner, name)

            def crashing(*args: Any, **kwargs: Any) -> Any:
                calls.append(1)
                if len(calls) == nth:
                    raise OSError("killed")
                return real(*args, **kwargs)

            patched.setattr(owner, name, crashing)
            try:
                FeatureStore(path / "f.duckdb", clock=lambda: t).close()
            except OSError as exc:
                assert str(exc) == "killed"
            patched.setattr(owner, name, real)
        with FeatureStore(path / "f.duckdb", clock=lambda: t) as fs:
            con = fs._con
            for view, xs in expected.items():
                table = offline.table_name(view)
                got = sorted(x for (x,) in con.execute(f"SELECT x FROM {table}").fetchall())
                assert got == sorted(xs), view
            lineage = con.execute(
                "SELECT view, rows FROM _lm_batches WHERE kind = 'push' ORDER BY batch"
            ).fetchall()
        assert lineage == [(view, n) for view, n in pushes]
        assert _spool_rows(path / "f.online.db") == 0
