"""Served predictions and their labels, read back from the event history and log with DuckDB.

The log is the monitoring data: every answer of `/inference` and `/predict` is a
`prediction_served` event, every `/feedback` a `feedback_received` one. A read
takes the event history's Parquet files (`litemlops.monitoring.history`: rotated
files, compacted, typed) and parses the JSON files not compacted yet (the live
one, and any rotated one waiting) in one query. Lines DuckDB cannot parse are
skipped (the line being written when we read is often cut short), and the
per-entity features are flattened into one row per scored entity in SQL: a
million events take a fraction of a second, where a Python loop would take minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.errors import HistoryError, ValidationError
from litemlops.monitoring import event_sql, history
from litemlops.monitoring.duck import connection
from litemlops.monitoring.event_queries import (
    LIVE,
    enough,
    feedback_parts,
    find_edge,
    parsed_sql,
    stored_sql,
    typed_column,
    union_of,
    window_types,
)
from litemlops.monitoring.event_sql import column, ident

if TYPE_CHECKING:
    import pandas as pd

    from litemlops.monitoring.history import Part, Snapshot

EVENTS_FILE = history.EVENTS_FILE
PREDICTION_COLUMNS = ("request_id", "timestamp", "model", "version", "service", "entity")
"""The columns before the features; `score` and `output` come after them."""
FEEDBACK_COLUMNS = ("request_id", "timestamp", "label")

_KIND_TYPES = {"numeric": "DOUBLE", "categorical": "VARCHAR"}
_ATTEMPTS = 3


def read_predictions(
    logs_dir: Path | str,
    *,
    last: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    service: str | None = None,
    features: Mapping[str, str] | None = None,
    labelled: bool = False,
    request_id: str | None = None,
) -> pd.DataFrame:
    """One row per scored entity of the `prediction_served` events in a window, oldest first.

    Columns: request_id, timestamp (UTC), model, version, service, entity, one column
    per feature, score, output. entity is the key `/inference` scored (as text), or
    for `/predict` the entity row's key value (NULL for feature rows); output is
    what the request returned, as text (the chosen entity, or the row's prediction).
    last: only the newest `last` events (requests, not rows); since/until: events
    at or after `since` and before `until` (naive times are UTC); model, service:
    only those. features: feature name -> "numeric" or "categorical" (a profile's
    `kinds`): only these columns, and the pass over the log that finds the features'
    names and types is skipped. A feature whose name is taken by a column above
    is named `features.<name>`. labelled: only requests a `feedback_received`
    event names (whenever it came), which spares reading the rest of the history.
    request_id: only that request's rows (every answer given under that id).
    """
    window = _Window(since, until)
    where, params = window.filters({"model": model, "service": service, "request_id": request_id})
    types = None
    if features is not None:
        unknown = {k for k in features.values() if k not in _KIND_TYPES}
        if unknown:
            raise ValidationError(f"feature kinds must be numeric or categorical, got {unknown}")
        types = {name: _KIND_TYPES[kind] for name, kind in features.items()}
    if last is not None:
        _check_last(last)
    return _read(
        Path(logs_dir),
        lambda con, view: _predictions(
            con, view, window, where, params, last, types, labelled
        ),
        lambda: _empty((*PREDICTION_COLUMNS, "score", "output")),
        request_id,
    )


def read_feedback(
    logs_dir: Path | str,
    *,
    last: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    request_id: str | None = None,
) -> pd.DataFrame:
    """The `feedback_received` events in a window, oldest first: request_id, timestamp, label.

    Labels are kept as they came: duplicates and labels of unknown requests are for
    whoever joins them to predictions to count. request_id: only that request's labels.
    """
    window = _Window(since, until)
    where, params = window.filters({"request_id": request_id})
    if last is not None:
        _check_last(last)
    return _read(
        Path(logs_dir),
        lambda con, view: _feedback(con, view, window, where, params, last),
        lambda: _empty(FEEDBACK_COLUMNS),
        request_id,
    )


# -- reading ----------------------------------------------------------------------------------


def _read(
    logs_dir: Path,
    query: Callable[[Any, Snapshot], pd.DataFrame],
    empty: Callable[[], pd.DataFrame],
    request_id: str | None = None,
) -> pd.DataFrame:
    """Run `query(connection, snapshot)` over the history and the log; `empty()` when there
    is nothing. A compaction or rotation under the read makes it read again. request_id:
    the query keeps only that request's rows, so the JSON files are parsed only on the
    lines that name it (when every JSON writer spells it one way)."""
    import tempfile

    import duckdb

    needle = _needle(request_id)
    for attempt in range(_ATTEMPTS):
        try:
            view = history.snapshot(logs_dir)
        except HistoryError as exc:
            raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
        if view.empty:
            return empty()
        try:
            with connection() as con:
                if needle is not None and view.pending:
                    with tempfile.TemporaryDirectory(prefix="litemlops-lines-") as folder:
                        result = query(con, view.narrowed(needle, Path(folder)))
                else:
                    result = query(con, view)
        except (duckdb.IOException, FileNotFoundError) as exc:
            # A file was compacted, rotated or removed between listing and reading it.
            if attempt == _ATTEMPTS - 1:
                raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
            continue
        except duckdb.Error as exc:
            raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
        if attempt < _ATTEMPTS - 1 and view.changed():
            continue  # the live file was rotated under the read: some rows may be missing
        return result
    raise AssertionError("unreachable")


_VERBATIM = frozenset(chr(c) for c in range(32, 127)) - set("\"\\/<>&'")
"""Characters every JSON writer puts in a string as they are: no escape (`\\"`, `\\/`),
no HTML-safe `\\u003c`, nothing outside ASCII (`\\u00e9` where `ensure_ascii` is on)."""


def _needle(request_id: str | None) -> bytes | None:
    """What every line naming `request_id` holds, as JSON spells the string (quotes
    included); None when some writer could spell it otherwise."""
    if request_id is None or not set(request_id) <= _VERBATIM:
        return None
    return f'"{request_id}"'.encode()


class _Window:
    """A read's time bounds: SQL filters, and which history files can hold rows in them."""

    def __init__(self, since: datetime | None, until: datetime | None):
        self.since = _utc(since) if since is not None else None
        self.until = _utc(until) if until is not None else None

    def filters(self, equal: dict[str, str | None]) -> tuple[str, list[Any]]:
        clauses: list[str] = ["ts IS NOT NULL"]
        params: list[Any] = []
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(self.until)
        for name, value in equal.items():
            if value is not None:
                clauses.append(f"{name} = ?")
                params.append(value)
        return " AND ".join(clauses), params

    def parts(self, parts: list[Part]) -> list[Part]:
        """The files whose times overlap the window, newest first."""
        kept = [
            p for p in parts
            if p.last is not None and p.first is not None
            and (self.since is None or p.last >= self.since)
            and (self.until is None or p.first < self.until)
        ]
        return sorted(kept, key=lambda p: (p.last, p.lines), reverse=True)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_last(last: int) -> None:
    if last < 0:
        raise ValidationError(f"last must be >= 0, got {last}")


# -- labels ---------------------------------------------------------------------------------------


def _feedback(
    con: Any,
    view: Snapshot,
    window: _Window,
    where: str,
    params: list[Any],
    last: int | None,
) -> pd.DataFrame:
    parts = window.parts(view.of("feedback"))
    take = len(parts) if last is None else enough(parts, last, lambda p: p.rows)
    while True:
        union, args = union_of(feedback_parts(view, parts[:take]), where, params)
        frame = _frame(
            con, f"SELECT request_id, ts AS timestamp, label, rank, within FROM ({union})", args
        )
        if last is None:
            return frame
        if len(frame) < last and take < len(parts):
            take = min(len(parts), 2 * take + 1)
            continue
        if len(frame) >= last and last:
            # Files as new as the window's oldest label may hold labels newer than it.
            oldest = frame["timestamp"].iloc[len(frame) - last]
            newer = sum(1 for p in parts if p.last is not None and p.last >= oldest)
            if newer > take:
                take = newer
                continue
        # The newest in the log's order: labels are light, and a LIMIT in SQL would cut
        # between labels of one time as it pleased.
        return frame.iloc[len(frame) - min(last, len(frame)) :].reset_index(drop=True)


# -- predictions ----------------------------------------------------------------------------------

_FIXED = "ts, request_id, model, version, service, entity, position, score, output"
"""The columns of a flattened prediction row before its features."""


def _predictions(
    con: Any,
    view: Snapshot,
    window: _Window,
    where: str,
    params: list[Any],
    last: int | None,
    types: dict[str, str] | None,
    labelled: bool,
) -> pd.DataFrame:
    empty = _empty((*PREDICTION_COLUMNS, "score", "output"))
    left = [str(f) for f in view.pending]
    parts = window.parts(view.of("predictions"))
    stored_where, stored_params = where, params
    if labelled:
        labels, args = union_of(feedback_parts(view, view.of("feedback")), "true", [])
        stored_where = f"{where} AND request_id IN (SELECT request_id FROM ({labels}))"
        stored_params = [*params, *args]
    if last is not None:
        found = find_edge(con, view, parts, left, stored_where, stored_params, last)
        if found is None:
            return empty
        parts, edge = found
        if edge is not None:
            ts, key = edge
            clause = " AND (ts > ? OR (ts = ? AND coalesce(request_id, '') >= ?))"
            where, params = where + clause, [*params, ts, ts, key]
            stored_where, stored_params = stored_where + clause, [*stored_params, ts, ts, key]
    if not parts and not left:
        return empty
    if types is None:
        types = window_types(con, view, parts, left, stored_where, stored_params)
    union = []
    if parts:
        columns = "".join(f", {typed_column(parts, n, t)} AS {column(n)}" for n, t in types.items())
        sql, args = stored_sql(parts, view, f"{_FIXED}, seq AS rank, position AS within{columns}")
        union.append((f"SELECT * FROM ({sql}) WHERE {stored_where}", [*args, *stored_params]))
    if left:
        flat = event_sql.flat(
            event_sql.source(
                events.PREDICTION_SERVED,
                event_sql.SERVED,
                "features IS NOT NULL",
                features=f"{event_sql.struct(types)}[]" if types else "JSON[]",
                **event_sql.FLAT_TYPES,
            ),
            ", ".join(f"f.{ident(name)} AS {column(name)}" for name in types),
        )
        sql, args = parsed_sql(flat, left)
        # Labels are matched in pandas here: a join in SQL would not keep the file's order,
        # which is all that orders a JSON file's rows of one time.
        union.append((f"SELECT * FROM ({sql}) WHERE {where}", [*args, *params]))
    taken = set(PREDICTION_COLUMNS) | {"score", "output"}
    picked = "".join(
        f"{column(name)} AS {ident(f'features.{name}' if name in taken else name)}, "
        for name in types
    )
    sql = (
        f"SELECT request_id, ts AS timestamp, model, version, service, entity, {picked}"
        f"score, output, rank, within FROM ("
        + " UNION ALL BY NAME ".join(f"({sql})" for sql, _ in union)
        + ")"
    )
    args = [a for _, part_args in union for a in part_args]
    keep = None
    if labelled and left:
        labels, label_args = union_of(feedback_parts(view, view.of("feedback")), "true", [])
        ids = con.sql(f"SELECT DISTINCT request_id FROM ({labels})", params=label_args)
        known = ids.to_arrow_table()["request_id"]
        keep = lambda t: _labelled(t, known)  # noqa: E731
    return _frame(con, sql, args, keep)


def _labelled(table: Any, known: Any) -> Any:
    """Which rows of a read are history rows (already matched) or name a labelled request."""
    import pyarrow.compute as pc

    stored = pc.less(table["rank"], LIVE)
    return pc.or_kleene(stored, pc.fill_null(pc.is_in(table["request_id"], known), False))


def _frame(
    con: Any, sql: str, params: list[Any], keep: Callable[[Any], Any] | None = None
) -> pd.DataFrame:
    """The query's rows, oldest first; rows of one time in the log's order: by their
    `rank` (the line number in the history, the file's place for JSON files), then
    `within` (the row's place in its line, in the history; 0 for JSON files), then as
    DuckDB read them (it keeps the order of rows within a file). `rank` and `within`
    are columns of the query, dropped; keep: a mask of the rows to keep, from the table.

    Through Arrow: pandas takes Arrow strings without a Python object per value, a
    third faster than DuckDB's own DataFrame conversion here; and sorted there by a
    numpy sort of the keys, where DuckDB's ORDER BY moved every column through
    its sort and took a third of the time of the whole read.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    table = con.sql(sql, params=params).to_arrow_table()
    if keep is not None:
        table = table.filter(keep(table))
    times = table["timestamp"].to_numpy().view("int64")
    ranks = table["rank"].to_numpy()
    within = table["within"].to_numpy()
    table = table.drop_columns(["rank", "within"])
    if len(times) > 1:
        step, rank_step = np.diff(times), np.diff(ranks)
        ordered = (step > 0) | ((step == 0) & (
            (rank_step > 0) | ((rank_step == 0) & (np.diff(within) >= 0))
        ))
        if not ordered.all():
            table = table.take(np.lexsort((within, ranks, times)))  # stable: the last key first
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in columns})


def _dtype(column: str) -> str:
    return {
        "timestamp": "datetime64[us, UTC]",
        "version": "Int64",
        "score": "float64",
        "label": "float64",
    }.get(column, "object")

