"""`FeatureStore`: definitions, ingestion, point-in-time joins, materialization, serving, push."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pyarrow as pa
import structlog

from litemlops import events
from litemlops.errors import (
    DefinitionError,
    FeatureNotFoundError,
    FeatureViewNotFoundError,
    HomeLockedError,
    ValidationError,
)
from litemlops.store import offline
from litemlops.store.convert import DataLike, cast_column, conform, mixed_types, read_table
from litemlops.store.definitions import (
    Entity,
    FeatureView,
    Field,
    ResolvedView,
    entity_incompatibilities,
    fingerprint,
    incompatibilities,
    refuse,
    resolve,
)
from litemlops.store.online import OnlineStore, to_datetime
from litemlops.store.results import (
    ApplyResult,
    IngestResult,
    MaterializeResult,
    OnlineResponse,
    PushResult,
)

if TYPE_CHECKING:
    import pandas as pd

log = structlog.get_logger("litemlops.store")

Clock = Callable[[], datetime]
PushTarget = Literal["online", "offline", "both"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def _micros(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class _Plan:
    """A parsed online request: per view, the features wanted and their output names."""

    views: tuple[tuple[ResolvedView, tuple[tuple[int, str], ...]], ...]
    keys: tuple[Field, ...]
    outputs: tuple[str, ...]


class FeatureStore:
    """The feature store: a DuckDB file (or connection) for history, SQLite for serving.

    `target` is a path, ":memory:" or an open `duckdb` connection (not closed by
    us). `online` is the SQLite path or connection of the online store; by default
    it sits beside the DuckDB file as `<stem>.online.db` (in memory for ":memory:"
    and for a connection). `clock` returns the current aware time; `push_lateness`
    is how far behind the clock a pushed row may be before it is counted late.
    """

    def __init__(
        self,
        target: str | Path | duckdb.DuckDBPyConnection = ":memory:",
        *,
        online: str | Path | Any = None,
        clock: Clock = utc_now,
        push_lateness: timedelta = timedelta(minutes=10),
    ):
        self._clock = clock
        self.push_lateness = push_lateness
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
        self._con.execute("SET TimeZone = 'UTC'")
        self._online = OnlineStore(online if online is not None else default_online)
        offline.ensure_catalog(self._con)
        self._defs = offline.load_definitions(self._con)
        self._plans: dict[tuple[Any, ...], _Plan] = {}

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
        items = [objects] if isinstance(objects, Entity | FeatureView) else list(objects)
        entities: dict[str, Entity] = {}
        views: dict[str, FeatureView] = {}
        for obj in items:
            if isinstance(obj, Entity):
                target: dict[str, Any] = entities
            elif isinstance(obj, FeatureView):
                target = views
            else:
                raise DefinitionError(f"apply() takes Entity and FeatureView objects, got {obj!r}")
            if obj.name in target and target[obj.name] != obj:
                raise DefinitionError(
                    f"two different definitions named {obj.name!r} in one apply()"
                )
            target[obj.name] = obj
        for view in views.values():
            for ent in view.entities:
                if isinstance(ent, Entity) and ent.name not in entities:
                    entities[ent.name] = ent
        now = _naive_utc(self._now())
        with self._lock:
            known = {name: ent for name, (ent, _) in self._defs.entities.items()}
            plan_entities = []
            for name, ent in entities.items():
                stored = self._defs.entities.get(name)
                if stored is not None and stored[0] == ent:
                    continue
                if stored is not None and not force:
                    problems = entity_incompatibilities(stored[0].spec(), ent.spec())
                    if problems:
                        raise refuse("entity", name, problems)
                plan_entities.append((ent, (stored[1] + 1) if stored else 1))
            merged = {**known, **entities}
            plan_views = []
            for name, view in views.items():
                resolved = resolve(view, merged)
                spec = resolved.spec()
                current = self._defs.views.get(name)
                if current is not None and current.spec() == spec:
                    continue
                problems = incompatibilities(current.spec(), spec) if current else []
                if problems and not force:
                    raise refuse("feature view", name, problems)
                plan_views.append((resolved, current, problems))
            changed = self._apply_plans(plan_entities, plan_views, now)
            self._defs = offline.load_definitions(self._con)
            self._plans.clear()
        unchanged = sorted((set(entities) | set(views)) - set(changed))
        log.info(events.FEATURES_APPLIED, objects=sorted({*entities, *views}), changed=changed)
        return ApplyResult(changed=changed, unchanged=unchanged)

    def _apply_plans(
        self,
        plan_entities: list[tuple[Entity, int]],
        plan_views: list[tuple[ResolvedView, ResolvedView | None, list[str]]],
        now: datetime,
    ) -> list[str]:
        con = self._con
        changed = []
        online_work: list[Callable[[], None]] = []
        con.execute("BEGIN TRANSACTION")
        try:
            for ent, version in plan_entities:
                spec = ent.spec()
                offline.save_definition(
                    con, "entity", ent.name, version, 0, spec, fingerprint(spec), now
                )
                changed.append(ent.name)
            for resolved, current, problems in plan_views:
                name = resolved.name
                generation = current.generation if current else 1
                version = current.version + 1 if current else 1
                if current is None:
                    offline.create_table(con, resolved)

                    def create(r: ResolvedView = resolved) -> None:
                        self._online.create(r)

                    online_work.append(create)
                elif problems:  # forced incompatible change: keep the old rows aside
                    offline.archive_table(con, name, generation)
                    generation += 1
                    offline.create_table(con, resolved)

                    def recreate(r: ResolvedView = resolved) -> None:
                        self._online.drop(r.name)
                        self._online.create(r)

                    online_work.append(recreate)
                else:
                    added = [f for f in resolved.features if current.feature(f.name) is None]
                    offline.add_columns(con, name, added)

                    def extend(r: ResolvedView = resolved, a: list[Field] = added) -> None:
                        if not self._online.create(r):
                            self._online.add_columns(r.name, a)

                    online_work.append(extend)
                spec = resolved.spec()
                offline.save_definition(
                    con, "view", name, version, generation, spec, fingerprint(spec), now
                )
                changed.append(name)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        for work in online_work:
            work()
        return changed

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

    def _parse_refs(
        self, features: Sequence[str], full_feature_names: bool
    ) -> list[tuple[ResolvedView, list[tuple[str, str]]]]:
        if isinstance(features, str) or not features:
            raise ValidationError(
                "features must be a non-empty list of 'view:feature' strings, "
                f"got {features!r}"
            )
        grouped: dict[str, list[tuple[str, str]]] = {}
        outputs: dict[str, str] = {}
        for ref in features:
            if not isinstance(ref, str) or ref.count(":") != 1:
                raise ValidationError(f"feature reference {ref!r} is not 'view:feature'")
            view_name, feature = ref.split(":")
            view = self._view(view_name)
            if view.feature(feature) is None:
                raise FeatureNotFoundError(
                    f"feature view {view_name!r} has no feature {feature!r} "
                    f"(it has {list(view.feature_names)})"
                )
            out = f"{view_name}__{feature}" if full_feature_names else feature
            if out in outputs:
                if outputs[out] == ref:
                    raise ValidationError(f"feature {ref!r} is requested twice")
                raise ValidationError(
                    f"features {outputs[out]!r} and {ref!r} would both be named {out!r}; "
                    "pass full_feature_names=True"
                )
            outputs[out] = ref
            grouped.setdefault(view_name, []).append((feature, out))
        return [(self._view(name), pairs) for name, pairs in grouped.items()]

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
        ingested. No match gives nulls. All columns of `entity_df` are kept.
        """
        import pandas as pd

        if not isinstance(entity_df, pd.DataFrame):
            raise ValidationError(
                f"entity_df must be a pandas DataFrame, got {type(entity_df).__name__}"
            )
        with self._lock:
            requests = self._parse_refs(features, full_feature_names)
        clash = [o for _, pairs in requests for _, o in pairs if o in entity_df.columns]
        if clash:
            raise ValidationError(
                f"entity_df already has column(s) {clash}; rename them or pass "
                "full_feature_names=True"
            )
        if timestamp_column not in entity_df.columns:
            raise ValidationError(
                f"entity_df has no timestamp column {timestamp_column!r} (columns: "
                f"{list(entity_df.columns)}); pass timestamp_column="
            )
        key_types: dict[str, Field] = {}
        for view, _ in requests:
            for key in view.keys:
                seen = key_types.setdefault(key.name, key)
                if seen.dtype != key.dtype and {seen.dtype, key.dtype} != {"int32", "int64"}:
                    raise ValidationError(
                        f"join key {key.name!r} is {seen.dtype} in one view and {key.dtype} in "
                        f"view {view.name!r}"
                    )
                if key.name not in entity_df.columns:
                    raise ValidationError(
                        f"entity_df lacks join key {key.name!r} needed by view {view.name!r}"
                    )
        arrays = {
            "_lm_row": pa.array(range(len(entity_df)), pa.int64()),
            "_lm_ts": self._entity_column(entity_df, Field(timestamp_column, "timestamp")),
        }
        for name, key in key_types.items():
            wide = Field(name, "int64") if key.dtype.startswith("int") else key
            arrays[name] = self._entity_column(entity_df, wide)
        entity = pa.table(arrays)
        sql_types = {
            name: "BIGINT" if key.dtype.startswith("int") else "VARCHAR"
            for name, key in key_types.items()
        }
        reqs = [offline.Request(view, tuple(pairs)) for view, pairs in requests]
        sql = offline.historical_sql(reqs, sql_types)
        with self._lock:
            self._con.register("_lm_entity", entity)
            try:
                result = self._con.sql(sql).to_arrow_table()
            finally:
                self._con.unregister("_lm_entity")
        frame = result.drop(["_lm_row"]).to_pandas()
        out = entity_df.copy()
        for view, pairs in requests:
            for feature, name in pairs:
                column = frame[name]
                item = view.feature(feature)
                assert item is not None
                if item.dtype == "timestamp":
                    column = column.dt.tz_localize("UTC")
                out[name] = column.array if item.dtype == "timestamp" else column.to_numpy()
        return out

    @staticmethod
    def _entity_column(entity_df: pd.DataFrame, item: Field) -> pa.Array:
        series = entity_df[item.name]
        try:
            arr = pa.Array.from_pandas(series)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            mixed_types(series, "entity_df")
            raise ValidationError(f"entity_df column {item.name!r} cannot be read: {exc}") from exc
        arr = cast_column(arr, item, "entity_df")
        if arr.null_count:
            import pyarrow.compute as pc

            row = int(pc.index(pc.is_null(arr), True).as_py())
            raise ValidationError(
                f"entity_df column {item.name!r} has a null at row {row}",
                column=item.name,
                row=row,
            )
        return arr

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
        ts = offline.q(view.timestamp_field)
        now = _naive_utc(self._now())
        with self._lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                marks = con.execute(
                    "SELECT end_ts, last_seq FROM _lm_watermarks WHERE view = ?", [view.name]
                ).fetchall()
                mark = marks[0] if marks else None
                table = offline.q(offline.table_name(view.name))
                max_row = con.execute(f"SELECT max(_lm_seq) FROM {table}").fetchall()[0]
                max_seq = int(max_row[0]) if max_row[0] is not None else 0
                params: list[Any]
                if start is not None:
                    where = f"{ts} >= ? AND {ts} <= ? AND _lm_seq <= ?"
                    params = [start, end, max_seq]
                elif mark is not None:
                    where = f"{ts} <= ? AND _lm_seq <= ? AND ({ts} > ? OR _lm_seq > ?)"
                    params = [end, max_seq, mark[0], mark[1]]
                else:
                    where = f"{ts} <= ? AND _lm_seq <= ?"
                    params = [end, max_seq]
                cursor = con.execute(offline.latest_sql(view, where), params)
                rows = cursor.fetchall()
                read = len(rows)
                written = self._online.upsert(view, rows, _micros(now))
                old_end, old_seq = (mark[0], int(mark[1])) if mark else (None, 0)
                if start is None:
                    new_end, new_seq = max(end, old_end) if old_end else end, max_seq
                elif old_end is None or start <= old_end:
                    new_end, new_seq = max(end, old_end) if old_end else end, old_seq
                else:
                    new_end, new_seq = old_end, old_seq
                con.execute(
                    "INSERT OR REPLACE INTO _lm_watermarks VALUES (?, ?, ?, ?, ?)",
                    [view.name, view.generation, new_end, new_seq, now],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        watermark = new_end.replace(tzinfo=UTC) if new_end else None
        log.info(
            events.FEATURES_MATERIALIZED,
            view=view.name,
            rows_read=read,
            entities_written=written,
            watermark=watermark.isoformat() if watermark else None,
        )
        return MaterializeResult(
            view=view.name, entities_read=read, entities_written=written, watermark=watermark
        )

    # -- online ----------------------------------------------------------------------

    def _plan(
        self, features: Sequence[str], full_feature_names: bool, with_ts: bool
    ) -> _Plan:
        cache_key = (tuple(features) if not isinstance(features, str) else features,
                     full_feature_names, with_ts)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        requests = self._parse_refs(features, full_feature_names)
        keys: dict[str, Field] = {}
        views = []
        outputs: list[str] = []
        for view, pairs in requests:
            if not view.view.online:
                raise ValidationError(f"feature view {view.name!r} is not online")
            for key in view.keys:
                keys.setdefault(key.name, key)
            index = {name: i for i, name in enumerate(view.feature_names)}
            wanted = tuple((index[f], out) for f, out in pairs)
            if with_ts:
                wanted += ((len(view.features), f"{view.name}__event_timestamp"),)
            views.append((view, wanted))
            outputs.extend(out for _, out in wanted)
        plan = _Plan(tuple(views), tuple(keys.values()), tuple(outputs))
        self._plans[cache_key] = plan
        return plan

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
        plan = self._plan(features, full_feature_names, include_event_timestamps)
        if isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence):
            raise ValidationError("entity_rows must be a list of dicts like [{'driver_id': 1001}]")
        columns: dict[str, list[Any]] = {k.name: [] for k in plan.keys}
        for i, row in enumerate(entity_rows):
            if not isinstance(row, Mapping):
                raise ValidationError(f"entity row {i} is not a dict: {row!r}")
            for key in plan.keys:
                columns[key.name].append(_key_value(row, key, i))
        now_us = _micros(self._now())
        response = OnlineResponse(columns)
        for view, wanted in plan.views:
            key_tuples = list(zip(*(columns[k] for k in view.key_names), strict=True))
            found = self._online.lookup(view, key_tuples)
            ttl = view.view.ttl
            oldest = now_us - int(ttl.total_seconds() * 1_000_000) if ttl is not None else None
            nfeat = len(view.features)
            outs = [[] for _ in wanted]  # type: list[list[Any]]
            for key_tuple in key_tuples:
                values = found.get(key_tuple)
                if values is not None and oldest is not None and values[nfeat] < oldest:
                    values = None
                for j, (index, _) in enumerate(wanted):
                    if values is None:
                        outs[j].append(None)
                    elif index == nfeat:
                        outs[j].append(to_datetime(values[index]))
                    else:
                        outs[j].append(values[index])
            for (_, out), values_ in zip(wanted, outs, strict=True):
                response[out] = values_
        return response

    def push(self, view: str, rows: DataLike, to: PushTarget = "online") -> PushResult:
        """Write fresh rows now: to the online store, the offline store, or both.

        Online, a row older than the stored value for its entity is not applied
        (counted as stale). Rows whose event time is more than `push_lateness`
        behind the clock are still written and counted as late.
        """
        if to not in ("online", "offline", "both"):
            raise ValidationError(f"push to must be 'online', 'offline' or 'both', got {to!r}")
        resolved = self._view(view)
        if to != "offline" and not resolved.view.online:
            raise ValidationError(f"feature view {view!r} is not online; push with to='offline'")
        table, source = read_table(rows, f"push to {view!r}")
        table = conform(table, resolved, f"push to {view!r}")
        now = self._now()
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
            written = self._online.upsert(resolved, _online_rows(resolved, table, batch),
                                          _micros(now))
        stale = table.num_rows - written if to != "offline" else 0
        # Late rows are kept; the warning level makes them visible in the log.
        emit = log.warning if late else log.info
        emit(events.FEATURES_PUSHED, view=view, rows=table.num_rows, to=to, late_rows=late,
             stale_rows=stale, lateness_seconds=self.push_lateness.total_seconds())
        return PushResult(view=view, rows=table.num_rows, to=to, online_written=written,
                          stale_rows=stale, late_rows=late)

    # -- inspection ------------------------------------------------------------------

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

        newest_dt = to_datetime(newest)
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
            "online_oldest_event": (to_datetime(oldest) or now).isoformat() if oldest else None,
            "online_staleness_seconds": (now - newest_dt).total_seconds() if newest_dt else None,
        }


def _key_value(row: Mapping[str, Any], key: Field, index: int) -> Any:
    try:
        value = row[key.name]
    except KeyError:
        raise ValidationError(
            f"entity row {index} lacks join key {key.name!r}: {dict(row)!r}", row=index
        ) from None
    if key.dtype == "string":
        if not isinstance(value, str):
            raise ValidationError(
                f"entity row {index}: {key.name!r} must be a string, got {value!r}", row=index
            )
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValidationError(
            f"entity row {index}: {key.name!r} must be an integer, got {value!r}", row=index
        )
    return int(value)


def _online_rows(view: ResolvedView, table: pa.Table, batch: int) -> Iterable[list[Any]]:
    """Arrow rows -> online store rows (keys, features, event_us, created_us, seq)."""
    import pyarrow.compute as pc

    def encode(name: str, dtype: str) -> list[Any]:
        col = table.column(name)
        if dtype == "timestamp":
            col = pc.cast(col, pa.int64())
        return col.to_pylist()

    cols = [encode(k, "key") for k in view.key_names]
    cols += [encode(f.name, f.dtype) for f in view.features]
    cols.append(encode(view.timestamp_field, "timestamp"))
    if view.created_field:
        cols.append(encode(view.created_field, "timestamp"))
    else:
        cols.append([None] * table.num_rows)
    base = batch << offline.SEQ_BITS
    cols.append(list(range(base, base + table.num_rows)))
    return (list(r) for r in zip(*cols, strict=True))
