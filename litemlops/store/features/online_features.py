"""The feature store's online half: lookups and pushes against the SQLite online store.

`OnlineFeatures` is what `FeatureStore` and `OnlineFeatureStore` share: the
definitions, `get_online_features`, `push`, `join_keys`, `columns`.
`OnlineFeatureStore` opens the online file alone, with the definitions the
`FeatureStore` mirrors into it, so a process can serve features without
opening the DuckDB history, which one process at a time may hold read-write
(the `run` server stays on SQLite while pipeline workers take turns with
DuckDB). It sees definitions applied elsewhere at its next call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from litemlops import events
from litemlops.clock import from_micros, to_micros, utc_now
from litemlops.errors import FeatureViewNotFoundError, ValidationError
from litemlops.logger import get_logger
from litemlops.store.features import lookup, offline
from litemlops.store.features.convert import DataLike, conform, read_table
from litemlops.store.features.definitions import Entity, FeatureView, ResolvedView
from litemlops.store.features.lookup import Plan, build_plan
from litemlops.store.features.online import OnlineStore
from litemlops.store.features.refs import Requests, parse_refs
from litemlops.store.features.results import OnlineResponse, PushResult

log = get_logger("litemlops.store")

Clock = Callable[[], datetime]
PushTarget = Literal["online", "offline", "both"]


def naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


class OnlineFeatures:
    """Definitions and the online store: what serving needs. Not made directly."""

    _defs: offline.Definitions
    _online: OnlineStore
    #: Batches numbered before the online store kept the count (see `next_batch`).
    _batch_floor: int

    def __init__(self, *, clock: Clock, push_lateness: timedelta, max_future: timedelta | None):
        if max_future is not None and max_future < timedelta(0):
            raise ValidationError(f"max_future must be >= 0 or None, got {max_future}")
        self._clock = clock
        self.push_lateness = push_lateness
        self.max_future = max_future
        self._lock = threading.RLock()
        self._plans: dict[tuple[Any, ...], Plan] = {}

    def close(self) -> None:
        with self._lock:
            self._online.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("clock must return an aware datetime")
        return now

    def _definitions(self) -> offline.Definitions:
        return self._defs

    # -- definitions ---------------------------------------------------------------

    def _view(self, name: str) -> ResolvedView:
        defs = self._definitions()
        view = defs.views.get(name)
        if view is None:
            known = ", ".join(sorted(defs.views)) or "none applied yet"
            raise FeatureViewNotFoundError(f"no feature view named {name!r} (known: {known})")
        return view

    def get_feature_view(self, name: str) -> FeatureView:
        return self._view(name).view

    def online_event_times(self) -> dict[str, datetime | None]:
        """The newest event time in the online store of each online view (None while
        it holds no row): how fresh what serving reads is."""
        views = [view.name for view in self.list_feature_views() if view.online]
        micros = self._online.newest_event_times(views)
        return {view: from_micros(micros[view]) for view in views}

    def list_feature_views(self) -> list[FeatureView]:
        return [v.view for _, v in sorted(self._definitions().views.items())]

    def list_entities(self) -> list[Entity]:
        return [e for _, (e, _) in sorted(self._definitions().entities.items())]

    def _requests(self, features: Sequence[str], full_feature_names: bool) -> Requests:
        with self._lock:
            self._definitions()
            return parse_refs(features, full_feature_names, self._view)

    def join_keys(
        self, features: Sequence[str], *, full_feature_names: bool = False
    ) -> dict[str, str]:
        """Join key name -> dtype for the views the features come from; refused as a lookup
        of them with the same `full_feature_names` is (short names that collide)."""
        requests = self._requests(features, full_feature_names)
        return {k.name: k.dtype for view, _ in requests for k in view.keys}

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
        self._definitions()  # plans are dropped when the definitions change
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
        return lookup.read(self._online, plan, entity_rows, to_micros(self._now()))

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
        cutoff = naive_utc(now - self.push_lateness)
        import pyarrow.compute as pc

        times = table.column(resolved.timestamp_field)
        late = int(pc.sum(pc.less(times, pa.scalar(cutoff, pa.timestamp("us")))).as_py() or 0)
        written = 0
        if to in ("offline", "both"):
            batch = self._append(resolved, table, "push", source)
        else:
            batch = self._online.next_batch(self._batch_floor)
        if to in ("online", "both"):
            written = self._online.upsert(
                resolved, lookup.online_rows(resolved, table, batch), to_micros(now)
            )
        stale = table.num_rows - written if to != "offline" else 0
        # Late rows are kept; the warning level makes them visible in the log.
        emit = log.warning if late else log.info
        emit(
            events.FEATURES_PUSHED,
            view=view,
            rows=table.num_rows,
            to=to,
            late_rows=late,
            stale_rows=stale,
            lateness_seconds=self.push_lateness.total_seconds(),
        )
        return PushResult(
            view=view,
            rows=table.num_rows,
            to=to,
            online_written=written,
            stale_rows=stale,
            late_rows=late,
        )

    def _append(self, view: ResolvedView, table: pa.Table, kind: str, source: str) -> int:
        raise NotImplementedError

    def _refuse_future(
        self, view: ResolvedView, table: pa.Table, source: str, now: datetime
    ) -> None:
        """Refuse the rows if any event time is more than `max_future` ahead of `now`."""
        import pyarrow.compute as pc

        if self.max_future is None or not table.num_rows:
            return
        field = view.timestamp_field
        times = table.column(field)
        limit = pa.scalar(naive_utc(now + self.max_future), pa.timestamp("us"))
        ahead = pc.greater(times, limit)  # conformed: no event time is null
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


class OnlineFeatureStore(OnlineFeatures):
    """The online half of a feature store, from its SQLite file alone.

    `path` is the online store a `FeatureStore` wrote (`<stem>.online.db`), which
    also holds the definitions it mirrors. Lookups, `push(to="online")`,
    `join_keys` and `columns` work as on the `FeatureStore`. Offline pushes are
    spooled in the same file, in one SQLite write with their batch number, and
    written into the history by the next `FeatureStore` that opens, reads or
    writes it. Definitions applied by another process are picked up at the next call.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utc_now,
        push_lateness: timedelta = timedelta(minutes=10),
        max_future: timedelta | None = timedelta(minutes=5),
    ):
        super().__init__(clock=clock, push_lateness=push_lateness, max_future=max_future)
        self._online = OnlineStore(path)
        self._stamp: str | None = None
        self._version: int | None = None
        self._defs = offline.Definitions({}, {})
        try:
            self._batch_floor = self._online.max_batch()
            self._definitions()
        except BaseException:
            self._online.close()
            raise

    def _definitions(self) -> offline.Definitions:
        changed, version = self._online.changed_since(self._version)
        if changed:
            with self._lock:
                stamp = self._online.definitions_stamp()
                if stamp != self._stamp:
                    self._defs = offline.definitions_from_rows(self._online.load_definitions())
                    self._plans.clear()
                    self._online.forget_statements()  # those of old definitions
                    self._stamp = stamp
                self._version = version
        return self._defs

    def _append(self, view: ResolvedView, table: pa.Table, kind: str, source: str) -> int:
        # DuckDB is another process's: the rows wait in the online file, and the next
        # `FeatureStore` to open the history (or to read or write it) takes them in.
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return self._online.spool(
            view,
            sink.getvalue().to_pybytes(),
            kind=kind,
            source=source,
            pushed_us=to_micros(self._now()),
            at_least=self._batch_floor,
        )
