"""Materialization: the latest row per entity from DuckDB into the SQLite online store.

A watermark per view holds (end, last_seq): every row with event time <= end
and ingestion sequence <= last_seq is in the online store. An incremental run
reads rows with event time <= the new end that are either past the old end
or ingested since (late rows), so nothing that arrives late is skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from litemlops.clock import to_micros
from litemlops.store.features import offline
from litemlops.store.features.definitions import ResolvedView
from litemlops.store.features.online import OnlineStore
from litemlops.store.features.results import MaterializeResult

Mark = tuple[datetime | None, int]


def next_watermark(old: Mark, start: datetime | None, end: datetime, max_seq: int) -> Mark:
    """The watermark after materializing [start or the old mark, end] with rows up to max_seq."""
    old_end, old_seq = old
    if start is None:
        if old_end is None or end >= old_end:
            return end, max_seq
        # An end before the watermark left late rows between the two ends out;
        # keeping the old mark lets the next run pick them up.
        return old
    # An explicit window never vouches for rows before `start`, so the sequence
    # stays; the end moves only if the window leaves no gap after the old end.
    if old_end is None:
        return end, old_seq
    if start <= old_end:
        return max(end, old_end), old_seq
    return old


def materialize_view(
    con: duckdb.DuckDBPyConnection,
    online: OnlineStore,
    view: ResolvedView,
    start: datetime | None,
    end: datetime,
    now: datetime,
) -> MaterializeResult:
    """Write the latest rows to the online store and move the watermark, atomically enough.

    Times are naive UTC. The DuckDB transaction gives a consistent snapshot; if
    the process dies after the SQLite write but before the commit, the next run
    writes the same rows again, which the newer-wins upsert makes harmless.
    """
    table = offline.q(offline.table_name(view.name))
    con.execute("BEGIN TRANSACTION")
    try:
        marks = con.execute(
            "SELECT end_ts, last_seq FROM _lm_watermarks WHERE view = ?", [view.name]
        ).fetchall()
        old: Mark = (marks[0][0], int(marks[0][1])) if marks else (None, 0)
        top = con.execute(f"SELECT max(_lm_seq) FROM {table}").fetchall()[0][0]
        max_seq = int(top) if top is not None else 0
        params: dict[str, object] = {"end": end, "max_seq": max_seq}
        since = None
        if start is not None:
            since = "start"
            params["start"] = start
        elif old[0] is not None:
            since = "mark"
            params.update(old_end=old[0], old_seq=old[1])
        rows = con.execute(offline.latest_sql(view, since), params).fetchall()
        written = online.upsert(view, rows, to_micros(now))
        new_end, new_seq = next_watermark(old, start, end, max_seq)
        con.execute(
            "INSERT OR REPLACE INTO _lm_watermarks VALUES (?, ?, ?, ?, ?)",
            [view.name, view.generation, new_end, new_seq, now],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return MaterializeResult(
        view=view.name,
        entities_read=len(rows),
        entities_written=written,
        watermark=new_end.replace(tzinfo=UTC) if new_end else None,
    )

