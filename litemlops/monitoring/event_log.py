"""Every event of the log as its JSON line, from the history and the JSON files alike.

What `litemlops logs` and `litemlops pipelines logs` show. The history keeps each
line's JSON text with the keys people filter on (event, level, pipeline, run_id,
task) in columns; the keys of a prediction kept as its typed rows (its features,
scores, request id and time) are put back into its line, where they were
(`litemlops.monitoring.event_tables`), so a line read from the history has the
keys and values it was written with, in their order (JSON's spacing aside).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from litemlops.errors import HistoryError, ValidationError
from litemlops.monitoring import event_tables, history
from litemlops.monitoring.duck import connection
from litemlops.monitoring.event_sql import ident

if TYPE_CHECKING:
    from litemlops.monitoring.history import Part, Snapshot

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40,
          "critical": 50, "fatal": 50}  # fmt: skip
"""Level names as events spell them -> their rank; an unknown level counts as info."""
_LIVE = 1 << 62
_ATTEMPTS = 3


@dataclass(frozen=True)
class Found:
    """The newest matching lines (oldest first), how many matched, how many lines are
    not events (not JSON, or without an `event`)."""

    lines: list[str]
    total: int
    unreadable: int


def query_events(
    logs_dir: Path | str,
    *,
    pipeline: str | None = None,
    run_id: str | None = None,
    names: tuple[str, ...] | list[str] = (),
    since: datetime | None = None,
    level: str | None = None,
    limit: int = 100,
) -> Found:
    """The newest `limit` events matching every filter given, oldest first.

    names: event names (any of them); since: events at or after it; level: events at
    this level or worse (a name of `LEVELS`).
    """
    if level is not None and level not in LEVELS:
        raise ValidationError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    where = ["event IS NOT NULL"]
    params: list[Any] = []
    for key, wanted in (("pipeline", pipeline), ("run_id", run_id)):
        if wanted is not None:
            where.append(f"{key} = ?")
            params.append(wanted)
    if names:
        where.append(f"event IN ({', '.join('?' * len(names))})")
        params += list(names)
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if level is not None:
        ranks = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in LEVELS.items())
        where.append(f"(CASE lower(level) {ranks} ELSE 20 END) >= ?")
        params.append(LEVELS[level])

    def query(con: Any, view: Snapshot) -> Found:
        parts = [p for p in view.of("events")
                 if since is None or (p.last is not None and p.last >= since)]
        union, args = _lines(view, parts)
        rows = con.execute(
            f"""
            WITH lines AS ({union}), marked AS (
                SELECT *, coalesce({" AND ".join(where)}, false) AS hit FROM lines
            ), matching AS (
                SELECT line, rank, within, ts, taken FROM marked WHERE hit
                ORDER BY ts DESC NULLS LAST, rank DESC, within DESC LIMIT ?
            ), summary AS (
                SELECT count(*) FILTER (WHERE hit) AS total,
                       count(*) FILTER (WHERE event IS NULL) AS unreadable
                FROM marked
            )
            SELECT m.line, m.rank, m.taken, s.total, s.unreadable
            FROM summary s LEFT JOIN matching m ON true
            ORDER BY m.ts NULLS FIRST, m.rank, m.within
            """,
            [*args, *params, limit],
        ).fetchall()
        found = [(line, rank, at) for line, rank, at, _, _ in rows if line is not None]
        total, unreadable = (int(rows[0][3]), int(rows[0][4])) if rows else (0, 0)
        return Found(_whole(con, view, found), total, unreadable)

    return _read(Path(logs_dir), query)


def run_events(logs_dir: Path | str, run_id: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(line, event) for each line of a pipeline run, in the log's order; event is None for
    a line of a JSON file that mentions the run but is not JSON (the history keeps no
    such lines' text).

    The JSON files can be large: they are streamed, and only lines holding the run id
    are parsed. Another process may be writing the last line, or died writing it.
    """

    def stored(con: Any, view: Snapshot) -> tuple[list[str], list[Path]]:
        parts = view.of("events")
        if not parts:
            return [], list(view.pending)
        files = [view.path(p) for p in parts]
        rows = con.execute(
            "SELECT line, seq, taken FROM read_parquet(?, union_by_name=true) "
            "WHERE run_id = ? AND line IS NOT NULL ORDER BY seq",
            [files, run_id],
        ).fetchall()
        return _whole(con, view, rows), list(view.pending)

    lines, pending = _read(Path(logs_dir), stored)
    for line in lines:
        yield line, orjson.loads(line)
    for file in pending:
        try:
            fh = file.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # compacted between listing and opening: the history has it
            continue
        with fh:
            for line in fh:
                if run_id not in line:
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield line, None
                    continue
                # The id may appear inside another event's text (bootstrap's steps).
                if isinstance(event, dict) and event.get("run_id") == run_id:
                    yield line.rstrip("\n"), event


def _read(logs_dir: Path, query: Any) -> Any:
    import duckdb

    for attempt in range(_ATTEMPTS):
        try:
            view = history.snapshot(logs_dir)
        except HistoryError as exc:
            raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
        try:
            with connection() as con:
                return query(con, view)
        except (duckdb.IOException, FileNotFoundError) as exc:
            # A file was compacted or rotated between listing and reading it: list again.
            if attempt == _ATTEMPTS - 1:
                raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
        except duckdb.Error as exc:
            raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
    raise AssertionError("unreachable")


def _lines(view: Snapshot, parts: list[Part]) -> tuple[str, list[Any]]:
    """SQL of every line: ts, event, level, pipeline, run_id, line, taken, and the
    order of lines of one time (`rank`, then `within`)."""
    union: list[str] = []
    args: list[Any] = []
    if parts:
        union.append(
            "SELECT ts, event, level, pipeline, run_id, line, taken, seq AS rank, "
            "0 AS within FROM read_parquet(?, union_by_name=true)"
        )
        args.append([view.path(p) for p in parts])
    if view.pending:
        files = [str(f) for f in view.pending]
        union.append(
            f"""
            SELECT try_cast(json->>'$.timestamp' AS TIMESTAMPTZ) AS ts, json->>'$.event' AS event,
                json->>'$.level' AS level, json->>'$.pipeline' AS pipeline,
                json->>'$.run_id' AS run_id, CAST(json AS VARCHAR) AS line,
                NULL::VARCHAR AS taken, list_position(?, filename) + {_LIVE} AS rank,
                row_number() OVER () AS within
            FROM read_json(?, format='newline_delimited', records=false, maximum_depth=0,
                           union_by_name=true, ignore_errors=true, filename=true)
            """
        )
        args += [files, files]
    if not union:
        return (
            "SELECT NULL::TIMESTAMPTZ AS ts, NULL AS event, NULL AS level, NULL AS pipeline, "
            "NULL AS run_id, NULL AS line, NULL::VARCHAR AS taken, 0 AS rank, "
            "0 AS within LIMIT 0",
            [],
        )
    return " UNION ALL BY NAME ".join(f"({sql})" for sql in union), args


def _whole(con: Any, view: Snapshot, rows: list[tuple[str, int, str | None]]) -> list[str]:
    """The lines of (line, line number, taken) rows, with the keys taken out of a
    prediction's line put back where `taken` says they were (`key@place,...`)."""
    wanted = sorted({seq for _, seq, taken in rows if taken})
    values = _rebuilt(con, view, wanted) if wanted else {}
    out = []
    for line, seq, taken in rows:
        if not taken:
            out.append(line)
            continue
        items = list(orjson.loads(line).items())
        places = (key.partition("@") for key in taken.split(","))
        for at, key in sorted((int(at), key) for key, _, at in places):
            text = values.get(seq, {}).get(key)
            if text is not None:
                items.insert(at - 1, (key, orjson.loads(text)))
        out.append(orjson.dumps(dict(items)).decode())
    return out


def _rebuilt(con: Any, view: Snapshot, seqs: list[int]) -> dict[int, dict[str, str]]:
    """Line number -> the keys `event_tables.TAKEN` of its prediction as JSON text, rebuilt
    from the history."""
    lo, hi = seqs[0], seqs[-1]
    parts = [p for p in view.of("predictions") if p.lines[0] <= hi and p.lines[1] >= lo]
    if not parts:
        return {}
    names: list[str] = []
    for part in parts:
        names.extend(n for n in part.features if n not in names)
    kinds = dict(zip(event_tables.PREFIXES, ("BIGINT", "DOUBLE", "VARCHAR"), strict=True))
    columns = "".join(
        f", {ident(prefix + n)}"
        if any(prefix[:-1] in p.features.get(n, []) for p in parts)
        else f", NULL::{kind} AS {ident(prefix + n)}"
        for n in names
        for prefix, kind in kinds.items()
    )
    rows = (
        f"(SELECT seq, ts, request_id, position, score{columns} "
        "FROM read_parquet(?, union_by_name=true) WHERE seq IN (SELECT unnest(?)))"
    )
    keys = ", ".join(event_tables.TAKEN)
    found = con.execute(
        f"SELECT seq, {keys} FROM ({event_tables.rebuilt(rows, names)})",
        [[view.path(p) for p in parts], seqs],
    ).fetchall()
    return {
        int(seq): dict(zip(event_tables.TAKEN, texts, strict=True)) for seq, *texts in found
    }
