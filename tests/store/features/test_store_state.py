"""The feature store against a plain model of what it should hold: hypothesis drives
ingests (late rows, repeated keys and times, exact copies), pushes (fresh, late, from the
future), materializations (incremental and windowed), clock moves and reopening the
files; after each step the online values and the row counts must be the model's, and
each point-in-time read drawn must be the model's, dtypes included.

The model is the README's contract ("The feature store in Python"). A row ranks by
(event time, created time, order written). A point-in-time read at ts takes the
best-ranked row with ts - ttl <= event time <= ts. Online, an entity holds the
best-ranked row materialized (event time <= end, and >= start for a window) or pushed,
served while it is no older than the ttl by the clock. A push online with a row more than
max_future ahead of the clock is refused whole; rows more than push_lateness behind it
are written and counted late. A frame out of the store has each declared type's dtype.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from depth import examples
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from litemlops.errors import ValidationError
from litemlops.store import Entity, FeatureStore, FeatureView, Field
from litemlops.testing.clock import FixedClock

pytestmark = pytest.mark.slow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
#: Event times of ingested rows, in minutes from the clock: mostly past, some ahead.
INGEST_STEPS = st.integers(-8, 3)
#: Of pushed rows: -11 is late (-10 is not), 6 from the future (5 is not).
PUSH_STEPS = st.sampled_from((-11, -10, -4, -1, 0, 0, 5, 6))
KEYS = (1001, 1002, 1003)
UNKNOWN = 1009  # never written
LATENESS = timedelta(minutes=10)
MAX_FUTURE = timedelta(minutes=5)
TTLS = (5 * MINUTE, 10 * MINUTE, 20 * MINUTE)
#: How far after an event time a point-in-time read is: at it, between rows, at a ttl.
OFFSETS = (timedelta(0), -MINUTE / 2, MINUTE / 2, *TTLS, TTLS[0] + timedelta(microseconds=1))
NO_CREATED = datetime.min.replace(tzinfo=UTC)  # a view without created times ranks by order
#: The dtype of each declared type in a frame out of the store, as the README lists them.
DTYPES = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "float32",
    "float64": "float64",
    "bool": "boolean",
    "string": "string",
    "timestamp": "datetime64[us, UTC]",
}
DRIVER = Entity("driver", join_keys=["driver_id"])


def feature_views(ttl_stats: timedelta | None, ttl_quality: timedelta | None) -> list[FeatureView]:
    """`stats` breaks event-time ties by created time; `quality` has none (the row written
    last wins) and holds every other feature type."""
    stats = FeatureView(
        "stats",
        entities=[DRIVER],
        schema=[Field("rate", "float64"), Field("trips", "int64")],
        ttl=ttl_stats,
        timestamp_field="datetime",
        created_timestamp_field="created",
    )
    quality = FeatureView(
        "quality",
        entities=[DRIVER],
        schema=[Field("acc", "float32"), Field("active", "bool"), Field("grade", "string"),
                Field("rank", "int32"), Field("seen", "timestamp")],
        ttl=ttl_quality,
    )  # fmt: skip
    return [stats, quality]


VIEWS = ("stats", "quality")
REFS = [f"{v.name}:{f.name}" for v in feature_views(None, None) for f in v.schema]
LOOKUP = [{"driver_id": key} for key in (*KEYS, UNKNOWN, KEYS[0])]


@dataclass(frozen=True)
class Row:
    key: int
    event: datetime
    created: datetime | None  # None when the view has no created time
    values: dict[str, Any]  # None for a missing value


def values_of(view: FeatureView, uid: int, null: bool) -> dict[str, Any]:
    """Feature values that name row `uid`, so a mismatch says which row was served."""
    made = {
        "float64": uid + 0.5,
        "float32": uid + 0.5,
        "int64": uid,
        "int32": uid,
        "bool": uid % 2 == 0,
        "string": f"r{uid}",
        "timestamp": T0 + timedelta(seconds=uid, microseconds=1),
    }
    return {f.name: None if null else made[f.dtype] for f in view.schema}


def data_of(view: FeatureView, rows: list[Row], as_frame: bool) -> Any:
    """The rows as the store takes them: row dicts, or a frame of the declared dtypes."""
    records = []
    for row in rows:
        record = {"driver_id": row.key, view.timestamp_field: row.event}
        if view.created_timestamp_field:
            record[view.created_timestamp_field] = row.created
        records.append(record | row.values)
    if not as_frame:
        return records
    dtypes = {f.name: DTYPES[f.dtype] for f in view.schema} | {"driver_id": "int64"}
    return pd.DataFrame({  # the columns left are the event and created times
        name: pd.Series([r[name] for r in records], dtype=dtypes.get(name, DTYPES["timestamp"]))
        for name in records[0]
    })  # fmt: skip


def column(view: FeatureView, feature: str, rows: list[Row | None]) -> Any:
    """The values `feature` takes in `rows` (None: no row) as a column of its dtype."""
    dtype = next(f.dtype for f in view.schema if f.name == feature)
    values = [None if row is None else row.values[feature] for row in rows]
    return pd.Series(values, dtype=DTYPES[dtype]).array


class Model:
    """The contract in plain Python: each view's history and its online row per entity."""

    def __init__(self, views: list[FeatureView]):
        self.views = {view.name: view for view in views}
        self.history: dict[str, list[tuple[tuple[Any, ...], Row]]] = {v: [] for v in VIEWS}
        self.online: dict[str, dict[int, tuple[tuple[Any, ...], Row]]] = {v: {} for v in VIEWS}
        self.written = 0

    def rank(self, row: Row) -> tuple[Any, ...]:
        self.written += 1
        return (row.event, row.created or NO_CREATED, self.written)

    def offer(self, view: str, rank: tuple[Any, ...], row: Row) -> bool:
        """Online, the row replaces its entity's unless that one ranks higher."""
        held = self.online[view].get(row.key)
        if held is not None and held[0] > rank:
            return False
        self.online[view][row.key] = (rank, row)
        return True

    def ingest(self, view: str, rows: list[Row]) -> None:
        self.history[view].extend((self.rank(row), row) for row in rows)

    def push(self, view: str, rows: list[Row], to: str, now: datetime) -> tuple[int, ...]:
        """What the push reports: rows, online_written, stale_rows, late_rows."""
        written = 0
        for row in rows:
            rank = self.rank(row)
            if to != "online":
                self.history[view].append((rank, row))
            if to != "offline":
                written += self.offer(view, rank, row)
        stale = len(rows) - written if to != "offline" else 0
        return len(rows), written, stale, sum(row.event < now - LATENESS for row in rows)

    def materialize(self, view: str, start: datetime | None, end: datetime) -> None:
        for rank, row in self.history[view]:
            if row.event <= end and (start is None or row.event >= start):
                self.offer(view, rank, row)

    def as_of(self, view: str, key: int, ts: datetime) -> Row | None:
        ttl = self.views[view].ttl
        seen = [
            (rank, row)
            for rank, row in self.history[view]
            if row.key == key and row.event <= ts and (ttl is None or row.event >= ts - ttl)
        ]
        return max(seen, key=lambda found: found[0])[1] if seen else None

    def served(self, view: str, key: int, now: datetime) -> Row | None:
        held = self.online[view].get(key)
        ttl = self.views[view].ttl
        if held is None or (ttl is not None and held[1].event < now - ttl):
            return None
        return held[1]

    def online_frame(self, now: datetime) -> pd.DataFrame:
        """What `get_online_features(REFS, LOOKUP, include_event_timestamps=True).to_df()`
        should give: the keys, then per view its features and its rows' event times."""
        keys = [request["driver_id"] for request in LOOKUP]
        out: dict[str, Any] = {"driver_id": pd.Series(keys, dtype="Int64")}
        for name, view in self.views.items():
            rows = [self.served(name, key, now) for key in keys]
            for item in view.schema:
                out[item.name] = column(view, item.name, rows)
            events = [None if row is None else row.event for row in rows]
            out[f"{name}__event_timestamp"] = pd.Series(events, dtype=DTYPES["timestamp"])
        return pd.DataFrame(out)


def row_specs(steps: st.SearchStrategy[int]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """(key, time step, created step, null, repeat) per row; repeat "time" takes the
    previous row's key and event time, "copy" repeats the previous row exactly."""
    return st.lists(
        st.tuples(
            st.sampled_from(KEYS),
            steps,
            st.integers(0, 3),  # few created times, so they tie too
            st.integers(0, 4).map(lambda x: x == 0),
            st.sampled_from(("new", "new", "time", "time", "copy")),
        ),
        min_size=1,
        max_size=6,
    )


class FeatureStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="feature-state-"))
        self.clock = FixedClock(T0 + 10 * MINUTE)
        self.fs = self.open()
        self.uid = 0
        self.model = Model(feature_views(None, None))
        self.written_at_open = 0

    def open(self) -> FeatureStore:
        return FeatureStore(
            self.home / "features.duckdb",
            clock=self.clock,
            push_lateness=LATENESS,
            max_future=MAX_FUTURE,
        )

    def teardown(self) -> None:
        self.fs.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def rows(self, view: FeatureView, specs: list[tuple[Any, ...]], base: datetime) -> list[Row]:
        rows: list[Row] = []
        for key, step, created, null, repeat in specs:
            if repeat == "copy" and rows:
                rows.append(rows[-1])
                continue
            self.uid += 1
            event = base + step * MINUTE
            if repeat == "time" and rows:
                key, event = rows[-1].key, rows[-1].event
            when = T0 + created * MINUTE if view.created_timestamp_field else None
            rows.append(Row(key, event, when, values_of(view, self.uid, null)))
        return rows

    @initialize(ttl_stats=st.sampled_from((None, TTLS[0], TTLS[2])),
                ttl_quality=st.sampled_from((None, TTLS[1])))  # fmt: skip
    def apply(self, ttl_stats: timedelta | None, ttl_quality: timedelta | None) -> None:
        views = feature_views(ttl_stats, ttl_quality)
        self.fs.apply([DRIVER, *views])
        self.model = Model(views)

    @rule(view=st.sampled_from(VIEWS), specs=row_specs(INGEST_STEPS), as_frame=st.booleans())
    def ingest(self, view: str, specs: list[tuple[Any, ...]], as_frame: bool) -> None:
        rows = self.rows(self.model.views[view], specs, self.clock())
        result = self.fs.ingest(view, data_of(self.model.views[view], rows, as_frame))
        assert result.rows == len(rows)
        self.model.ingest(view, rows)

    @rule(view=st.sampled_from(VIEWS), specs=row_specs(PUSH_STEPS), as_frame=st.booleans(),
          to=st.sampled_from(("online", "online", "both", "offline")))  # fmt: skip
    def push(self, view: str, specs: list[tuple[Any, ...]], to: str, as_frame: bool) -> None:
        now = self.clock()
        definition = self.model.views[view]
        rows = self.rows(definition, specs, now)
        data = data_of(definition, rows, as_frame)
        ahead = sum(row.event > now + MAX_FUTURE for row in rows)
        if to != "offline" and ahead:
            field = definition.timestamp_field
            refused = rf"{ahead} row\(s\) have {field} more than 300 s ahead of the clock"
            with pytest.raises(ValidationError, match=refused):
                self.fs.push(view, data, to=to)
            return
        result = self.fs.push(view, data, to=to)
        got = (result.rows, result.online_written, result.stale_rows, result.late_rows)
        assert got == self.model.push(view, rows, to, now)

    @rule(view=st.sampled_from((None, *VIEWS)), end=st.one_of(st.none(), st.integers(-6, 3)),
          start=st.one_of(st.none(), st.integers(0, 99)))  # fmt: skip
    def materialize(self, view: str | None, end: int | None, start: int | None) -> None:
        """Up to the clock (end None) or a time around it; given `start`, a window from one
        of the event times written, the newest first (a window's bounds are taken)."""
        until = self.clock() + (end or 0) * MINUTE
        names = VIEWS if view is None else (view,)
        since = None
        if start is not None:
            written = {row.event for name in names for _, row in self.model.history[name]}
            starts = sorted((event for event in written if event <= until), reverse=True)
            starts = starts or [until]
            since = starts[start % len(starts)]
        self.fs.materialize(
            None if end is None else until, since, views=None if view is None else [view]
        )
        for name in names:
            self.model.materialize(name, since, until)

    @rule(minutes=st.integers(1, 6))
    def tick(self, minutes: int) -> None:
        self.clock.advance(minutes * MINUTE)

    @rule(view=st.sampled_from(VIEWS), pick=st.integers(0, 9), past=st.booleans())
    def expire(self, view: str, pick: int, past: bool) -> None:
        """Move the clock to when a served value reaches its ttl, or a microsecond past it."""
        ttl = self.model.views[view].ttl
        now = self.clock()
        ends = [row.event + ttl for _, row in self.model.online[view].values()] if ttl else []
        ends = sorted(end for end in ends if end > now)
        if ends:
            self.clock.set(ends[pick % len(ends)] + timedelta(microseconds=past))

    @precondition(lambda self: self.model.written > self.written_at_open)
    @rule()
    def reopen(self) -> None:
        """Close the files and open them again (after a write: opening takes a while)."""
        self.fs.close()
        self.fs = self.open()
        self.written_at_open = self.model.written

    @rule(points=st.lists(st.tuples(st.sampled_from((*KEYS, UNKNOWN)), st.integers(0, 99),
                                    st.sampled_from(OFFSETS)), min_size=1, max_size=12),
          naive=st.booleans())  # fmt: skip
    def historical(self, points: list[tuple[int, int, timedelta]], naive: bool) -> None:
        """Read as of times at, between and a ttl after the event times of each entity."""
        events: dict[int, set[datetime]] = {key: {self.clock()} for key, _, _ in points}
        for rows in self.model.history.values():
            for _, row in rows:
                events.setdefault(row.key, set()).add(row.event)
        keys = [key for key, _, _ in points]
        times = [sorted(events[key])[pick % len(events[key])] + offset
                 for key, pick, offset in points]  # fmt: skip
        stamps = pd.Series(times, dtype="datetime64[us, UTC]")
        entity_df = pd.DataFrame(
            {
                "driver_id": pd.array(keys, dtype="int64"),
                "event_timestamp": (stamps.dt.tz_localize(None) if naive else stamps).array,
                "label": range(len(points)),
            },
            index=[f"e{len(points) - i}" for i in range(len(points))],
        )
        out = self.fs.get_historical_features(entity_df, REFS)
        expected = entity_df.copy()
        for name, view in self.model.views.items():
            rows = [self.model.as_of(name, key, ts) for key, ts in zip(keys, times, strict=True)]
            for item in view.schema:
                expected[item.name] = column(view, item.name, rows)
        pd.testing.assert_frame_equal(out, expected)

    @invariant()
    def online_is_the_latest_row_per_entity(self) -> None:
        out = self.fs.get_online_features(REFS, LOOKUP, include_event_timestamps=True).to_df()
        pd.testing.assert_frame_equal(out, self.model.online_frame(self.clock()))

    @invariant()
    def counts_agree(self) -> None:
        for name in VIEWS:
            described = self.fs.describe(name)
            assert described["offline_rows"] == len(self.model.history[name])
            assert described["online_entities"] == len(self.model.online[name])


TestFeatureStore = FeatureStoreMachine.TestCase
TestFeatureStore.settings = settings(max_examples=examples(20), stateful_step_count=20,
                                     deadline=None)  # fmt: skip
