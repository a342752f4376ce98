"""`FeatureStore`: definitions, ingestion, point-in-time joins, materialization, serving, push."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from litemlops import events
from litemlops.clock import from_micros, utc_now
from litemlops.errors import (
    FeatureViewNotFoundError,
    HomeLockedError,
    ValidationError,
)
from litemlops.logger import get_logger
from litemlops.store.features import catalog, offline
from litemlops.store.features.convert import DataLike, conform, read_table
from litemlops.store.features.definitions import (
    Entity,
    FeatureView,
    ResolvedView,
)
from litemlops.store.features.historical import historical_features
from litemlops.store.features.materialize import materialize_view
from litemlops.store.features.online import OnlineStore
from litemlops.store.features.online_features import Clock, OnlineFeatures, naive_utc
from litemlops.store.features.results import (
    ApplyResult,
    IngestResult,
    MaterializeResult,
)

if TYPE_CHECKING:
    import pandas as pd

log = get_logger("litemlops.store")

SPOOL_CHUNK = 1000
"""Spooled pushes taken into the history per transaction at most (their blobs are read
a chunk at a time, so a long backlog does not fill memory)."""



class FeatureStore(OnlineFeatures):
    """The feature store: a DuckDB file (or connection) for history, SQLite for serving.

    `target` is a path, ":memory:" or an open `duckdb` connection (not closed by
    us). `online` is the SQLite path or connection of the online store; by default
    it sits beside the DuckDB file as `<stem>.online.db` (in memory for ":memory:"
    and for a connection). `clock` returns the current aware time; `push_lateness`
    is how far behind the clock a pushed row may be before it is counted late;
    `max_future` how far ahead of it the event time of a row pushed online may be
    (None: any). Online, a row stamped in the future would win over every real
    update of its entity until that time came, so by default such a push is
    refused. (Ingested rows may be ahead: `materialize` takes a row once its time
    has come, and refuses an `end` further ahead than `max_future`.)
    """

    def __init__(
        self,
        target: str | Path | duckdb.DuckDBPyConnection = ":memory:",
        *,
        online: str | Path | Any = None,
        clock: Clock = utc_now,
        push_lateness: timedelta = timedelta(minutes=10),
        max_future: timedelta | None = timedelta(minutes=5),
    ):
        super().__init__(clock=clock, push_lateness=push_lateness, max_future=max_future)
        if isinstance(target, duckdb.DuckDBPyConnection):
            self._con = target
            self._owns_con = False
            default_online: str | Path = ":memory:"
        else:
            path = str(target)
            if path != ":memory:":  # as DuckDB makes the file, its folder is made
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._con = duckdb.connect(path)
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():
                    raise HomeLockedError(
                        f"feature store {path} is open in another process; stop that process "
                        "or use its HTTP API"
                    ) from exc
                raise
            self._owns_con = True
            default_online = ":memory:" if path == ":memory:" else Path(path).with_suffix(
                ".online.db"
            )
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._online = OnlineStore(online if online is not None else default_online)
        except BaseException:
            if self._owns_con:
                self._con.close()
            raise
        try:
            offline.ensure_catalog(self._con)
            self._defs = offline.load_definitions(self._con)
            self._repair_online()
            self._batch_floor = offline.last_batch(self._con)
            # For processes that open the online store alone (the server of `run`).
            self._online.save_definitions(offline.definition_rows(self._con))
            self._take_spooled()
        except BaseException:
            self.close()
            raise

    def _repair_online(self) -> None:
        """Give every view an online table; one that was missing is rebuilt from scratch.

        The online store is derived data: if its file was deleted, or another one
        was handed in (each carries an id), the watermarks no longer describe it,
        so they are dropped and the next materialize rewrites it in full instead
        of skipping rows it never saw.
        """
        known = self._con.execute(
            "SELECT value FROM _lm_meta WHERE key = 'online_store_id'"
        ).fetchall()
        if not known or known[0][0] != self._online.store_id:
            # Another online store than the one the watermarks describe.
            self._con.execute("DELETE FROM _lm_watermarks")
            self._con.execute(
                "INSERT OR REPLACE INTO _lm_meta VALUES ('online_store_id', ?)",
                [self._online.store_id],
            )
        for view in self._defs.views.values():
            if self._online.create(view):
                self._con.execute("DELETE FROM _lm_watermarks WHERE view = ?", [view.name])

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._online.close()
            if self._owns_con:
                self._con.close()

    # -- definitions ---------------------------------------------------------------

    def apply(
        self, objects: Entity | FeatureView | Iterable[Entity | FeatureView], *, force: bool = False
    ) -> ApplyResult:
        """Validate and persist definitions; unchanged ones are no-ops.

        An incompatible change (keys, timestamp fields, a feature's dtype or its
        removal) is refused unless `force`, which archives the view's rows in
        `_lm_archive_<view>_g<N>` and starts it afresh. Rows and watermarks are
        otherwise never touched.
        """
        now = naive_utc(self._now())
        with self._lock:
            self._take_spooled()  # pushed under the definitions before these
            plan = catalog.plan_apply(self._defs, objects, force)
            changed = catalog.write_apply(self._con, self._online, plan, now)
            self._defs = offline.load_definitions(self._con)
            self._online.save_definitions(offline.definition_rows(self._con))
            self._plans.clear()
        unchanged = sorted(set(plan.names) - set(changed))
        log.info(events.FEATURES_APPLIED, objects=sorted(plan.names), changed=changed)
        return ApplyResult(changed=changed, unchanged=unchanged)

    # -- offline -------------------------------------------------------------------

    def ingest(self, view: str, data: DataLike) -> IngestResult:
        """Append rows to a view's offline table after validating all of them.

        `data` is a pandas DataFrame, a pyarrow Table, a `.parquet`/`.csv` path or a
        list of row dicts. Nothing is written if any row is invalid.
        """
        resolved = self._view(view)
        table, source = read_table(data, f"ingest into {view!r}")
        table = conform(table, resolved, source)
        batch = self._append(resolved, table, "ingest", source)
        log.info(events.FEATURES_INGESTED, view=view, rows=table.num_rows, source=source)
        return IngestResult(view=view, rows=table.num_rows, batch=batch)

    def validate(self, view: str, data: DataLike) -> int:
        """Check `data` as `ingest` would, writing nothing; the number of rows it holds.

        Raises the ValidationError `ingest` would raise (naming the column and row),
        so a pipeline can set a bad file aside before a batch of good ones is written.
        """
        resolved = self._view(view)
        table, source = read_table(data, f"ingest into {view!r}")
        return conform(table, resolved, source).num_rows

    def _append(self, view: ResolvedView, table: pa.Table, kind: str, source: str) -> int:
        now = naive_utc(self._now())
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                batch = self._online.next_batch(self._batch_floor)
                offline.append(self._con, view, table, batch, kind, source, now)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return batch

    def _take_spooled(self) -> None:
        """Write into the history the offline pushes another process spooled in the online
        file (`OnlineFeatureStore`, which cannot open DuckDB while this process holds
        it), in the order their batches were handed out. They go in by chunks, each in
        one DuckDB transaction with the number of its last entry, so a crash before the
        spool is cleared never writes one twice; a chunk's pushes of one view go in as
        one insert, so a stream of small pushes is taken faster than it comes."""
        pushes = rows = 0
        with self._lock:
            chunk = self._online.spooled(after=0, limit=SPOOL_CHUNK)  # usually none
            if not chunk:
                return
            mark_key = f"spool_seq:{self._online.store_id}"
            found = self._con.execute(
                "SELECT value FROM _lm_meta WHERE key = ?", [mark_key]
            ).fetchall()
            done = int(found[0][0]) if found else 0
            while chunk:
                # Entries up to the mark are in the history already (a crash came
                # before they were cleared): only cleared.
                pending = [entry for entry in chunk if entry[0] > done]
                if pending:
                    rows += self._take_chunk(pending, mark_key)
                    pushes += len(pending)
                done = max(done, chunk[-1][0])
                self._online.unspool(upto=done)
                chunk = self._online.spooled(after=done, limit=SPOOL_CHUNK)
        if pushes:
            log.info(events.OFFLINE_PUSHES_TAKEN, pushes=pushes, rows=rows)

    def _take_chunk(self, chunk: list[tuple[Any, ...]], mark_key: str) -> int:
        """Spooled entries into the history in one transaction, with the mark of the last."""
        by_view: dict[str, list[offline.Batch]] = {}
        for _, name, generation, batch, kind, source, pushed_us, blob in chunk:
            table = pa.ipc.open_stream(blob).read_all()
            view = self._defs.views.get(name)
            if view is None or view.generation != generation:
                log.warning(
                    events.OFFLINE_PUSH_DROPPED,
                    view=name,
                    rows=table.num_rows,
                    why="the view was removed" if view is None else "the view was "
                    "re-created with force=True after the push",
                )
                continue
            pushed = from_micros(pushed_us)
            assert pushed is not None  # the column is NOT NULL
            by_view.setdefault(name, []).append(
                offline.Batch(table, batch, kind, source, naive_utc(pushed))
            )
        self._con.execute("BEGIN TRANSACTION")
        try:
            for name, batches in by_view.items():
                offline.append_batches(self._con, self._defs.views[name], batches)
            self._con.execute(
                "INSERT OR REPLACE INTO _lm_meta VALUES (?, ?)", [mark_key, str(chunk[-1][0])]
            )
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        return sum(b.table.num_rows for batches in by_view.values() for b in batches)

    def get_historical_features(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
    ) -> pd.DataFrame:
        """Point-in-time correct features for each entity row, in the rows' order.

        For each row: the latest feature row with event time <= the row's time and
        >= time - ttl, ties broken by the latest created time, then the latest
        ingested. No match gives nulls. All columns and the index of `entity_df`
        are kept; `timestamp_column` names its time column.

        Each feature column has its declared type's dtype whether or not a value
        is missing (`convert.PANDAS_DTYPES`): Int32/Int64, boolean and string with
        pd.NA for missing (exact int64 values, never rounded through float64),
        float32/float64 with NaN, datetime64[us, UTC] with NaT. A model that wants
        floats takes `.astype("float64")`, which turns pd.NA into NaN.
        """
        requests = self._requests(features, full_feature_names)
        self._take_spooled()
        return historical_features(self._con, self._lock, requests, entity_df, timestamp_column)

    # -- materialization -------------------------------------------------------------

    def materialize(
        self,
        end: datetime | None = None,
        start: datetime | None = None,
        *,
        views: Sequence[str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[MaterializeResult]:
        """Copy the latest row per entity with event time <= `end` to the online store.

        Incremental by default: each view's watermark remembers the end and the last
        ingested row, so later runs read only new rows, late ones included. With
        `start`, rows in [start, end] are (re)written; the watermark's end then moves
        forward only if the window leaves no gap. Newer online values always win.
        An `end` more than `max_future` ahead of the clock is refused, as a push of
        such rows is: the rows until then would be served before their time.
        """
        end_ts = naive_utc(end if end is not None else self._now())
        start_ts = naive_utc(start) if start is not None else None
        if end is not None and self.max_future is not None:
            now = self._now()
            if end_ts > naive_utc(now + self.max_future):
                raise ValidationError(
                    f"materialize end {end_ts.isoformat()} is more than "
                    f"{self.max_future.total_seconds():g} s ahead of the clock "
                    f"({now.isoformat()}): rows stamped until then would be served online "
                    "before their time; leave out the end to materialize up to now (or raise "
                    "features.max_future_seconds if such times are meant)"
                )
        if start_ts is not None and start_ts > end_ts:
            raise ValidationError(f"materialize start {start} is after end {end_ts}")
        if isinstance(views, str):
            views = [views]
        names = list(views) if views is not None else sorted(self._defs.views)
        targets = [self._view(n) for n in names]
        offline_only = [view.name for view in targets if not view.view.online]
        if views is not None and offline_only:  # refused before any view is written
            raise ValidationError(f"feature view {offline_only[0]!r} is not online")
        results = []
        for view in targets:
            if not view.view.online:
                continue
            results.append(self._materialize_view(view, start_ts, end_ts))
            if progress is not None:
                progress(view.name)
        return results

    def _materialize_view(
        self, view: ResolvedView, start: datetime | None, end: datetime
    ) -> MaterializeResult:
        with self._lock:
            # Under the same lock: every batch below the newest in the history is in it.
            self._take_spooled()
            result = materialize_view(
                self._con, self._online, view, start, end, naive_utc(self._now())
            )
        log.info(
            events.FEATURES_MATERIALIZED,
            view=view.name,
            rows_read=result.entities_read,
            entities_written=result.entities_written,
            watermark=result.watermark.isoformat() if result.watermark else None,
        )
        return result

    # -- inspection ------------------------------------------------------------------

    def batches(self, view: str, source: str | None = None) -> list[dict[str, Any]]:
        """The writes into a view's offline table, oldest first: batch id, kind
        (ingest/push), source, rows and when. `source` keeps those of one source,
        so a pipeline can tell whether it already wrote a file (a retried task)."""
        resolved = self._view(view)
        sql = (
            "SELECT batch, kind, source, rows, written_at FROM _lm_batches "
            "WHERE view = ? AND generation = ?"
        )
        args: list[Any] = [view, resolved.generation]
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY batch", args).fetchall()
        return [
            {
                "batch": int(b),
                "kind": kind,
                "source": src,
                "rows": int(n),
                "written_at": at.replace(tzinfo=UTC),
            }
            for b, kind, src, n, at in rows
        ]

    def definition(self, view: str, version: int | None = None) -> dict[str, Any]:
        """A view's definition as `apply` stored it at `version` (default: its current
        one): name, entities, keys and features as [name, dtype], ttl_seconds, ... and
        `version`. `FeatureViewNotFoundError` for a view or version never applied."""
        current = self._view(view)
        wanted = current.version if version is None else version
        with self._lock:
            rows = self._con.execute(
                "SELECT spec FROM _lm_definitions WHERE kind = 'view' AND name = ? "
                "AND version = ?",
                [view, wanted],
            ).fetchall()
        if not rows:
            raise FeatureViewNotFoundError(
                f"feature view {view!r} has no version {wanted!r} (its current is "
                f"{current.version})"
            )
        return {**json.loads(rows[0][0]), "version": wanted}

    def describe(self, view: str) -> dict[str, Any]:
        """Definition, row counts, event-time range, watermark, online freshness and the
        share of missing values of each feature in the history."""
        resolved = self._view(view)
        self._take_spooled()
        ts = offline.q(resolved.timestamp_field)
        table = offline.q(offline.table_name(view))
        nulls = "".join(f", count(*) - count({offline.q(f.name)})" for f in resolved.features)
        with self._lock:
            count, first, last, *missing = self._con.execute(
                f"SELECT count(*), min({ts}), max({ts}){nulls} FROM {table}"
            ).fetchall()[0]
            marks = self._con.execute(
                "SELECT end_ts, updated_at FROM _lm_watermarks WHERE view = ?", [view]
            ).fetchall()
            mark = marks[0] if marks else None
            batches = self._con.execute(
                "SELECT count(*), max(written_at) FROM _lm_batches "
                "WHERE view = ? AND generation = ?",
                [view, resolved.generation],
            ).fetchall()[0]
        online_rows, oldest, newest = (
            self._online.stats(view) if resolved.view.online else (0, None, None)
        )
        now = self._now()

        def aware(value: datetime | None) -> str | None:
            return value.replace(tzinfo=UTC).isoformat() if value else None

        newest_dt = from_micros(newest)
        return {
            "name": view,
            "version": resolved.version,
            "generation": resolved.generation,
            "entities": list(resolved.view.entity_names),
            "join_keys": {k.name: k.dtype for k in resolved.keys},
            "features": {f.name: f.dtype for f in resolved.features},
            "ttl_seconds": resolved.view.ttl.total_seconds() if resolved.view.ttl else None,
            "timestamp_field": resolved.timestamp_field,
            "created_timestamp_field": resolved.created_field,
            "online": resolved.view.online,
            "description": resolved.view.description,
            "tags": dict(resolved.view.tags or {}),
            "owner": resolved.view.owner,
            "offline_rows": int(count),
            "event_time_min": aware(first),
            "event_time_max": aware(last),
            "batches": int(batches[0]),
            "last_write": aware(batches[1]),
            "materialized_until": aware(mark[0]) if mark else None,
            "materialized_at": aware(mark[1]) if mark else None,
            "online_entities": online_rows,
            "online_newest_event": newest_dt.isoformat() if newest_dt else None,
            "online_oldest_event": (from_micros(oldest) or now).isoformat() if oldest else None,
            "online_staleness_seconds": (now - newest_dt).total_seconds() if newest_dt else None,
            # Share of the history's rows without a value, per feature (None: no rows).
            "null_rates": {
                f.name: (int(n) / count if count else None)
                for f, n in zip(resolved.features, missing, strict=True)
            },
        }


