"""The SQL of a read of the event history: which files, which rows, which feature columns.

`litemlops.monitoring.events` reads predictions and labels with these. A read
unions two kinds of parts: history files (typed Parquet, `stored_sql`) and JSON
files not compacted yet (`parsed_sql`, through `event_sql`). Each row carries a
`rank` and a `within` that order rows of one time as the log has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.monitoring import event_sql, feature_kinds
from litemlops.monitoring.event_sql import ident

if TYPE_CHECKING:
    from litemlops.monitoring.history import Part, Snapshot

LIVE = 1 << 62
"""Added to a JSON file's place in the read's list, its rows' `rank`: after every line of
the history (whose rank is its line number), as they are newer."""


def enough(parts: list[Part], count: int, size: Callable[[Part], int]) -> int:
    """How many of `parts` (newest first) hold at least `count` rows by `size`."""
    total = 0
    for i, part in enumerate(parts):
        if total >= count:
            return i
        total += size(part)
    return len(parts)


def union_of(parts: list[tuple[str, list[Any]]], where: str, params: list[Any]) -> tuple[str, list]:
    """The union of (SQL, parameters) parts, by column name, filtered by `where`."""
    union = " UNION ALL BY NAME ".join(f"({sql})" for sql, _ in parts)
    args = [a for _, part_args in parts for a in part_args]
    return f"SELECT * FROM ({union}) WHERE {where}", [*args, *params]


def stored_sql(parts: list[Part], view: Snapshot, select: str) -> tuple[str, list[Any]]:
    """SQL reading history files: `select` over their rows, whose `rank` is their line."""
    files = [view.path(p) for p in parts]
    return (
        f"SELECT {select} FROM read_parquet(?, union_by_name=true, filename=true)",
        [files],
    )


def parsed_sql(sql: str, files: list[str]) -> tuple[str, list[Any]]:
    """A JSON part: `sql` over the files `?`, with each row's rank after the history's."""
    return (
        f"SELECT *, list_position(?, filename) + {LIVE} AS rank, 0 AS within FROM ({sql})",
        [files, files],
    )


def feedback_parts(view: Snapshot, parts: list[Part]) -> list[tuple[str, list[Any]]]:
    """The parts of a read of labels: history files `parts` and the JSON files left."""
    out = []
    if parts:
        out.append(stored_sql(parts, view, "ts, seq AS rank, 0 AS within, request_id, label"))
    if view.pending:
        parsed = event_sql.source(events.FEEDBACK_RECEIVED, event_sql.LABEL, "true")
        out.append(parsed_sql(parsed, [str(f) for f in view.pending]))
    return out


def find_edge(
    con: Any,
    view: Snapshot,
    parts: list[Part],
    left: list[str],
    where: str,
    params: list[Any],
    last: int,
) -> tuple[list[Part], tuple[Any, str] | None] | None:
    """(the history files the newest `last` events are in, and the oldest of those events'
    time and request id), from the light columns of their first rows; the edge is None
    when the window holds fewer events; None when it holds none.

    Files are taken newest first until they hold `last` events, then every file with
    events as new as the edge (their times overlap).
    """
    take = enough(parts, last, lambda p: p.requests)
    keys = "ts, request_id, model, service"
    while True:
        light: list[tuple[str, list[Any]]] = []
        if parts[:take]:
            sql, args = stored_sql(parts[:take], view, f"{keys}, position")
            light.append((f"SELECT {keys} FROM ({sql}) WHERE position = 1", args))
        if left:
            first = "json_type(features, '$[0]') = 'OBJECT'"
            parsed = event_sql.source(
                events.PREDICTION_SERVED, "request_id, model, service, features", first
            )
            light.append((f"SELECT {keys} FROM ({parsed})", [left]))
        if not light:
            return None
        window, args = union_of(light, where, params)
        rows = con.execute(
            f"SELECT ts, coalesce(request_id, '') AS id, count(*) OVER () AS n FROM "
            f"({window} ORDER BY ts DESC, coalesce(request_id, '') DESC LIMIT {int(last)}) "
            "ORDER BY ts, id LIMIT 1",
            args,
        ).fetchall()  # fetchone() would leave DuckDB's result open for the next query
        count = rows[0][2] if rows else 0
        if count < last and take < len(parts):
            take = min(len(parts), 2 * take + 1)
            continue
        if not rows:
            return None
        ts, key, _ = rows[0]
        if count < last:
            return parts, None
        newer = sum(1 for p in parts if p.last is not None and p.last >= ts)
        if newer > take:
            take = newer
            continue
        return [p for p in parts[:take] if p.last is not None and p.last >= ts], (ts, key)


def typed_column(parts: list[Part], name: str, sql_type: str) -> str:
    """SQL of a feature's values as `sql_type`, from its typed columns in `parts`."""
    lowered = name.lower()
    present = {
        prefix
        for part in parts
        for feature, prefixes in part.features.items()
        if feature.lower() == lowered
        for prefix in prefixes
    }
    whole, number, text = (ident(f"{p}:{name}") for p in ("int", "num", "text"))
    if sql_type == "DOUBLE":
        found = [f"CAST({whole} AS DOUBLE)"] * ("int" in present) + [number] * ("num" in present)
    else:
        found = (
            [text] * ("text" in present)
            + [f"CAST({whole} AS VARCHAR)"] * ("int" in present)
            + [f"CAST({number} AS VARCHAR)"] * ("num" in present)
        )
    if not found:
        return f"NULL::{sql_type}"
    value = found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"
    return value if sql_type in ("DOUBLE", "VARCHAR") else f"TRY_CAST({value} AS {sql_type})"


def window_types(
    con: Any,
    view: Snapshot,
    parts: list[Part],
    left: list[str],
    where: str,
    params: list[Any],
) -> dict[str, str]:
    """The features the window's events name, and their types: in the history, those of
    the (model, version, service) whose rows are in the window; in the parsed files, those
    of the first and last event of each."""
    found: list[feature_kinds.Kinds] = []
    if parts:
        sql, args = stored_sql(parts, view, "ts, filename, request_id, model, version, service")
        groups = con.execute(
            f"SELECT DISTINCT filename, model, version, service FROM ({sql}) WHERE {where}",
            [*args, *params],
        ).fetchall()
        by_file = {view.path(p): p for p in parts}
        order = {view.path(p): p.lines for p in parts}
        groups.sort(key=lambda row: (order.get(row[0], (-1, -1)),
                                     feature_kinds.group_order(row[1:])))
        for file, *group in groups:
            kinds = dict(by_file[file].kinds) if file in by_file else {}
            found.append(kinds.get(tuple(group), {}))
    if left:
        window = event_sql.source(events.PREDICTION_SERVED, event_sql.SERVED, where)
        found.extend(kinds for _, kinds in feature_kinds.sampled(con, window, [left, *params]))
    return {
        name: feature_kinds.sql_type(kinds) for name, kinds in feature_kinds.merged(found).items()
    }
