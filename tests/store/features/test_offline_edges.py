"""The offline history's edges: how rows, batches and definitions are stored, histories
an older litemlops wrote, columns added later, watermarks a forced change leaves alone,
and the rows incremental runs and windows read."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from shared_views import DRIVER, quality_view, stat_row, stats_view

from litemlops.store import FeatureStore, FeatureView, Field
from litemlops.store.features.offline import Batch, Definitions, Request

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def now() -> datetime:
    return T0 + timedelta(hours=1)


def test_rows_are_numbered_by_batch_from_1_in_the_high_32_bits_then_in_batch_order():
    # These numbers are the history's format (schema 1): a file written before holds
    # them, and rows ingested later must number above them to win ties and be read.
    con = duckdb.connect()
    try:
        with FeatureStore(con, clock=now) as fs:
            fs.apply([DRIVER, stats_view(None)])
            first = fs.ingest("driver_stats", [stat_row(1, T0, 0.5), stat_row(2, T0, 0.7)])
            second = fs.ingest("driver_stats", [stat_row(3, T0, 0.1)])
        assert (first.batch, second.batch) == (1, 2)
        seqs = con.execute('SELECT driver_id, _lm_seq FROM "fv_driver_stats" ORDER BY 2')
        assert seqs.fetchall() == [(1, 2**32), (2, 2**32 + 1), (3, 2 * 2**32)]
    finally:
        con.close()


def test_each_stored_definition_is_the_canonical_json_its_fingerprint_hashes():
    con = duckdb.connect()
    try:
        with FeatureStore(con, clock=now) as fs:
            fs.apply([DRIVER, stats_view(None)])
        stored = con.execute("SELECT name, spec, fingerprint FROM _lm_definitions ORDER BY 1")
        rows = stored.fetchall()
    finally:
        con.close()
    assert [name for name, _, _ in rows] == ["driver", "driver_stats"]
    for _, spec, fingerprint in rows:
        assert hashlib.sha256(spec.encode()).hexdigest() == fingerprint


def test_the_offline_records_are_values_that_cannot_be_changed_in_place():
    # A store swaps its definitions whole: a reader holding the old ones sees no change.
    records = [
        (Definitions({}, {}), "views"),
        (Request(None, ()), "features"),
        (Batch(pa.table({"a": [1]}), 1, "ingest", "test", T0), "batch"),
    ]
    for record, name in records:
        with pytest.raises(FrozenInstanceError, match=f"cannot assign to field '{name}'"):
            setattr(record, name, None)


def test_a_history_an_older_litemlops_wrote_opens_with_its_rows(tmp_path):
    path = tmp_path / "features.duckdb"
    with FeatureStore(path, clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.ingest("driver_stats", [stat_row(1, T0, 0.5)])
    con = duckdb.connect(str(path))
    try:  # only a newer schema than this litemlops knows is refused
        con.execute("UPDATE _lm_meta SET value = '0' WHERE key = 'schema_version'")
    finally:
        con.close()
    with FeatureStore(path, clock=now) as fs:
        assert fs.describe("driver_stats")["offline_rows"] == 1


def test_a_forced_change_of_one_view_drops_its_watermark_and_keeps_the_others():
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None), quality_view(None)])
        fs.ingest("driver_stats", [stat_row(1, T0, 0.5)])
        fs.ingest(
            "driver_quality",
            [{"driver_id": 1, "event_timestamp": T0, "acc_rate": 0.9, "trips_today": 4}],
        )
        fs.materialize(end=T0)
        changed = FeatureView(
            "driver_quality", entities=[DRIVER], schema=[Field("acc_rate", "string")]
        )
        assert fs.apply(changed, force=True).changed == ["driver_quality"]
        assert fs.describe("driver_quality")["materialized_until"] is None
        assert fs.describe("driver_stats")["materialized_until"] == T0.isoformat()
        # The untouched view's next run reads nothing again.
        assert [r.entities_read for r in fs.materialize(views=["driver_stats"])] == [0]


def test_an_incremental_run_reads_only_rows_ingested_or_stamped_after_the_last():
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.ingest("driver_stats", [stat_row(1, T0, 0.5), stat_row(2, T0, 0.7)])
        assert [r.entities_read for r in fs.materialize()] == [2]
        # The last row read (driver 2's) is not read again, nor is anything else.
        assert [r.entities_read for r in fs.materialize()] == [0]
        # A late row (stamped before the watermark) is read, and only its entity.
        fs.ingest("driver_stats", [stat_row(1, T0 - timedelta(hours=1), 0.1)])
        assert [(r.entities_read, r.entities_written) for r in fs.materialize()] == [(1, 0)]
        assert [r.entities_read for r in fs.materialize()] == [0]
        served = fs.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1}])
        assert served["conv_rate"] == [0.5]


def test_a_new_online_store_numbers_batches_above_all_the_history_holds_or_handed_out(tmp_path):
    path = tmp_path / "features.duckdb"
    with FeatureStore(path, online=":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        assert [fs.ingest("driver_stats", [stat_row(k, T0, 0.5)]).batch for k in (1, 2)] == [1, 2]
    with FeatureStore(path, online=":memory:", clock=now) as fs:
        assert fs.ingest("driver_stats", [stat_row(3, T0, 0.5)]).batch == 3
    con = duckdb.connect(str(path))
    try:  # earlier versions took batch numbers from the file's own sequence
        for _ in range(5):
            con.execute("SELECT nextval('_lm_batch_seq')")
    finally:
        con.close()
    with FeatureStore(path, online=":memory:", clock=now) as fs:
        assert fs.ingest("driver_stats", [stat_row(4, T0, 0.5)]).batch == 6


def test_features_added_to_a_view_keep_their_dtype_offline():
    more = [Field("trips", "int64"), Field("rate", "float64"), Field("seen", "timestamp")]
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        grown = stats_view(None)
        fs.apply(
            FeatureView(
                grown.name,
                entities=[DRIVER],
                schema=[*grown.schema, *more],
                timestamp_field="datetime",
                created_timestamp_field="created",
            )
        )
        row = {**stat_row(1, T0, 0.5), "trips": 2**40, "rate": 0.1, "seen": T0}
        fs.ingest("driver_stats", [row])
        entity = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0]})
        got = fs.get_historical_features(
            entity, ["driver_stats:trips", "driver_stats:rate", "driver_stats:seen"]
        )
        assert got[["trips", "rate", "seen"]].to_dict("records") == [
            {"trips": 2**40, "rate": 0.1, "seen": T0}
        ]


def test_a_window_takes_the_rows_stamped_at_its_start_and_end_and_none_outside():
    times = [T0 - timedelta(hours=1), T0, T0 + timedelta(minutes=30), T0 + timedelta(minutes=45)]
    with FeatureStore(":memory:", clock=now) as fs:
        fs.apply([DRIVER, stats_view(None)])
        fs.ingest("driver_stats", [stat_row(k, t, k / 10) for k, t in enumerate(times, 1)])
        done = fs.materialize(start=T0, end=T0 + timedelta(minutes=30))
        assert [r.entities_read for r in done] == [2]
        keys = [{"driver_id": k} for k in range(1, 5)]
        served = fs.get_online_features(["driver_stats:conv_rate"], keys)
        assert served["conv_rate"] == [None, 0.2, 0.3, None]
