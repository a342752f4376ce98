"""`FeatureStore`: definitions, ingestion, point-in-time joins, materialization, serving, push."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pyarrow as pa

from litemlops import events
from litemlops.clock import from_micros, to_micros, utc_now
from litemlops.errors import (
    FeatureViewNotFoundError,
    HomeLockedError,
    ValidationError,
)
from litemlops.logger import get_logger
from litemlops.store import catalog, offline, serving
from litemlops.store.convert import DataLike, conform, read_table
from litemlops.store.definitions import (
    Entity,
    FeatureView,
    ResolvedView,
)
from litemlops.store.historical import historical_features
from litemlops.store.materialize import materialize_view
from litemlops.store.online import OnlineStore
from litemlops.store.refs import Requests, parse_refs
from litemlops.store.results import (
    ApplyResult,
    IngestResult,
    MaterializeResult,
    OnlineResponse,
    PushResult,
)
from litemlops.store.serving import Plan, build_plan

if TYPE_CHECKING:
    import pandas as pd

log = get_logger("litemlops.store")

Clock = Callable[[], datetime]
PushTarget = Literal["online", "offline", "both"]


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


class FeatureStore:
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
    has come.)
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
        if max_future is not None and max_future < timedelta(0):
            raise ValidationError(f"max_future must be >= 0 or None, got {max_future}")
        self._clock = clock
        self.push_lateness = push_lateness
        self.max_future = max_future
        self._lock = threading.RLock()
        if isinstance(target, duckdb.DuckDBPyConnection):
            self._con = target
            self._owns_con = False
            default_online: str | Path = ":memory:"
        else:
            path = str(target)
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
        self._plans: dict[tuple[Any, ...], Plan] = {}
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

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("clock must return an aware datetime")
        return now

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
        now = _naive_utc(self._now())
        with self._lock:
            plan = catalog.plan_apply(self._defs, objects, force)
            changed = catalog.write_apply(self._con, self._online, plan, now)
            self._defs = offline.load_definitions(self._con)
            self._plans.clear()
        unchanged = sorted(set(plan.names) - set(changed))
        log.info(events.FEATURES_APPLIED, objects=sorted(plan.names), changed=changed)
        return ApplyResult(changed=changed, unchanged=unchanged)

    def _view(self, name: str) -> ResolvedView:
        view = self._defs.views.get(name)
        if view is None:
            known = ", ".join(sorted(self._defs.views)) or "none applied yet"
            raise FeatureViewNotFoundError(f"no feature view named {name!r} (known: {known})")
        return view

    def get_feature_view(self, name: str) -> FeatureView:
        return self._view(name).view

    def list_feature_views(self) -> list[FeatureView]:
        return [v.view for _, v in sorted(self._defs.views.items())]

    def list_entities(self) -> list[Entity]:
        return [e for _, (e, _) in sorted(self._defs.entities.items())]

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

    def _refuse_future(
        self, view: ResolvedView, table: pa.Table, source: str, now: datetime
    ) -> None:
        """Refuse the rows if any event time is more than `max_future` ahead of `now`."""
        import pyarrow.compute as pc

        if self.max_future is None or not table.num_rows:
            return
        field = view.timestamp_field
        times = table.column(field)
        limit = pa.scalar(_naive_utc(now + self.max_future), pa.timestamp("us"))
        ahead = pc.fill_null(pc.greater(times, limit), False)
        count = int(pc.sum(ahead).as_py() or 0)
        if count:
            first = int(pc.index(ahead, True).as_py())
            when = times[first].as_py().replace(tzinfo=UTC).isoformat()
            raise ValidationError(
                f"{source}: {count} row(s) have {field} more than "
                f"{self.max_future.total_seconds():g} s ahead of the clock ({now.isoformat()}), "
                f"first row {first}: {when}; a row from the future would hide every real "
                "update of its entity until then (raise features.max_future_seconds if such "
                "times are meant)"
            )

    def _append(self, view: ResolvedView, table: pa.Table, kind: str, source: str) -> int:
        now = _naive_utc(self._now())
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                batch = offline.next_batch(self._con)
                offline.append(self._con, view, table, batch, kind, source, now)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return batch

    def _requests(self, features: Sequence[str], full_feature_names: bool) -> Requests:
        with self._lock:
            return parse_refs(features, full_feature_names, self._view)

    def join_keys(self, features: Sequence[str]) -> dict[str, str]:
        """Join key name -> dtype for the views the features come from."""
        return {k.name: k.dtype for view, _ in self._requests(features, False) for k in view.keys}

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
        """
        requests = self._requests(features, full_feature_names)
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
        """
        end_ts = _naive_utc(end if end is not None else self._now())
        start_ts = _naive_utc(start) if start is not None else None
        if start_ts is not None and start_ts > end_ts:
            raise ValidationError(f"materialize start {start} is after end {end_ts}")
        if isinstance(views, str):
            views = [views]
        names = list(views) if views is not None else sorted(self._defs.views)
        targets = [self._view(n) for n in names]
        results = []
        for view in targets:
            if not view.view.online:
                if views is not None:
                    raise ValidationError(f"feature view {view.name!r} is not online")
                continue
            results.append(self._materialize_view(view, start_ts, end_ts))
            if progress is not None:
                progress(view.name)
        return results

    def _materialize_view(
        self, view: ResolvedView, start: datetime | None, end: datetime
    ) -> MaterializeResult:
        with self._lock:
            result = materialize_view(
                self._con, self._online, view, start, end, _naive_utc(self._now())
            )
        log.info(
            events.FEATURES_MATERIALIZED,
            view=view.name,
            rows_read=result.entities_read,
            entities_written=result.entities_written,
            watermark=result.watermark.isoformat() if result.watermark else None,
        )
        return result

    # -- online ----------------------------------------------------------------------

    def get_online_features(
        self,
        features: Sequence[str],
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        full_feature_names: bool = False,
        include_event_timestamps: bool = False,
    ) -> OnlineResponse:
        """Latest online values for each entity row, as columns (`.to_df()` for a DataFrame).

        Unknown entities and values older than the view's ttl come back as None.
        """
        try:
            cache_key = (
                features if isinstance(features, str) else tuple(features),
                full_feature_names,
                include_event_timestamps,
            )
            plan = self._plans.get(cache_key)
        except TypeError:  # unhashable items: let parsing say what is wrong
            self._requests(features, full_feature_names)
            raise
        if plan is None:
            requests = self._requests(features, full_feature_names)
            plan = self._plans[cache_key] = build_plan(requests, include_event_timestamps)
        return serving.read(self._online, plan, entity_rows, to_micros(self._now()))

    def push(self, view: str, rows: DataLike, to: PushTarget = "online") -> PushResult:
        """Write fresh rows now: to the online store, the offline store, or both.

        Online, a row older than the stored value for its entity is not applied
        (counted as stale). Rows whose event time is more than `push_lateness`
        behind the clock are still written and counted as late. A push online with a
        row more than `max_future` ahead of the clock is refused whole.
        """
        if to not in ("online", "offline", "both"):
            raise ValidationError(f"push to must be 'online', 'offline' or 'both', got {to!r}")
        resolved = self._view(view)
        if to != "offline" and not resolved.view.online:
            raise ValidationError(f"feature view {view!r} is not online; push with to='offline'")
        table, source = read_table(rows, f"push to {view!r}")
        table = conform(table, resolved, f"push to {view!r}")
        now = self._now()
        if to != "offline":
            self._refuse_future(resolved, table, f"push to {view!r}", now)
        cutoff = _naive_utc(now - self.push_lateness)
        import pyarrow.compute as pc

        late = int(pc.sum(pc.less(table.column(resolved.timestamp_field), pa.scalar(
            cutoff, pa.timestamp("us")))).as_py() or 0)
        written = 0
        if to in ("offline", "both"):
            batch = self._append(resolved, table, "push", source)
        else:
            with self._lock:
                batch = offline.next_batch(self._con)
        if to in ("online", "both"):
            written = self._online.upsert(resolved, serving.online_rows(resolved, table, batch),
                                          to_micros(now))
        stale = table.num_rows - written if to != "offline" else 0
        # Late rows are kept; the warning level makes them visible in the log.
        emit = log.warning if late else log.info
        emit(events.FEATURES_PUSHED, view=view, rows=table.num_rows, to=to, late_rows=late,
             stale_rows=stale, lateness_seconds=self.push_lateness.total_seconds())
        return PushResult(view=view, rows=table.num_rows, to=to, online_written=written,
                          stale_rows=stale, late_rows=late)

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

    def columns(self, view: str) -> dict[str, str]:
        """Every column a row of `view` has, with its dtype: keys, the event (and
        created) time, features. From the cached definition, so it is cheap enough for
        a request's path, where `describe` counts rows."""
        resolved = self._view(view)
        out = {k.name: k.dtype for k in resolved.keys}
        out[resolved.timestamp_field] = "timestamp"
        if resolved.created_field:
            out[resolved.created_field] = "timestamp"
        out.update((f.name, f.dtype) for f in resolved.features)
        return out

    def describe(self, view: str) -> dict[str, Any]:
        """Definition, row counts, event-time range, watermark and online freshness."""
        resolved = self._view(view)
        ts = offline.q(resolved.timestamp_field)
        table = offline.q(offline.table_name(view))
        with self._lock:
            count, first, last = self._con.execute(
                f"SELECT count(*), min({ts}), max({ts}) FROM {table}"
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
        }


