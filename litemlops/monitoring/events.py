"""Served predictions and their labels, read back from the JSONL event log with DuckDB.

The log is the monitoring data: every answer of `/inference` and `/predict` is a
`prediction_served` event, every `/feedback` a `feedback_received` one. DuckDB
reads the current file and its rotated backups in one scan, skips lines it
cannot parse (the line being written when we read is often cut short), and
flattens the per-entity features into one row per scored entity in SQL: a
million events take seconds, where a Python loop over them would take minutes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

EVENTS_FILE = "events.jsonl"
PREDICTION_COLUMNS = ("request_id", "timestamp", "model", "version", "service", "entity")
"""The columns before the features; `score` and `output` come after them."""
FEEDBACK_COLUMNS = ("request_id", "timestamp", "label")

# Columns are given, not inferred: events of other names carry the same keys with
# other types (a string `features`, a text `version`), and inference over a mixed
# log would fail or guess from the first lines only.
_COLUMNS = {
    "event": "VARCHAR",
    "timestamp": "VARCHAR",
    "request_id": "VARCHAR",
    "service": "VARCHAR",
    "model": "VARCHAR",
    "version": "VARCHAR",
    "entities": "JSON",
    "features": "JSON",
    "scores": "JSON",
    "output": "JSON",
    "label": "VARCHAR",
}
_KIND_TYPES = {"numeric": "DOUBLE", "categorical": "VARCHAR"}
_ROTATED = re.compile(rf"^{re.escape(EVENTS_FILE)}(?:\.(\d+))?$")
_ATTEMPTS = 3


def event_files(logs_dir: Path | str) -> list[Path]:
    """The event log and its rotated backups, oldest first (`events.jsonl.N` ... `.1`, then
    `events.jsonl`)."""
    folder = Path(logs_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _ROTATED.match(path.name)
        if match and path.is_file():
            found.append((-int(match.group(1) or 0), path))
    return [path for _, path in sorted(found)]


def read_predictions(
    logs_dir: Path | str,
    *,
    last: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    service: str | None = None,
    features: Mapping[str, str] | None = None,
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
    is named `features.<name>`.
    """
    where, params = _filters(since, until, {"model": model, "service": service})
    types = None
    if features is not None:
        unknown = {k for k in features.values() if k not in _KIND_TYPES}
        if unknown:
            raise ValidationError(f"feature kinds must be numeric or categorical, got {unknown}")
        types = {name: _KIND_TYPES[kind] for name, kind in features.items()}
    return _read(
        logs_dir,
        lambda con, files: _predictions(con, files, where, params, last, types),
        lambda: _empty((*PREDICTION_COLUMNS, "score", "output")),
    )


def read_feedback(
    logs_dir: Path | str,
    *,
    last: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """The `feedback_received` events in a window, oldest first: request_id, timestamp, label.

    Labels are kept as they came: duplicates and labels of unknown requests are for
    whoever joins them to predictions to count.
    """
    where, params = _filters(since, until, {})
    return _read(
        logs_dir,
        lambda con, files: _feedback(con, files, where, params, last),
        lambda: _empty(FEEDBACK_COLUMNS),
    )


# -- reading ----------------------------------------------------------------------------------


def _read(
    logs_dir: Path | str,
    query: Callable[[Any, list[str]], pd.DataFrame],
    empty: Callable[[], pd.DataFrame],
) -> pd.DataFrame:
    """Run `query(connection, files)` over the log's files; `empty()` when there are none."""
    import duckdb

    for attempt in range(_ATTEMPTS):
        files = [str(f) for f in event_files(logs_dir)]
        if not files:
            return empty()
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            return query(con, files)
        except duckdb.IOException as exc:
            # A rotation renamed or removed a file between listing and reading it.
            if attempt == _ATTEMPTS - 1:
                raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
        except duckdb.Error as exc:
            raise ValidationError(f"cannot read the event log in {logs_dir}: {exc}") from exc
        finally:
            con.close()
    raise AssertionError("unreachable")


def _filters(
    since: datetime | None, until: datetime | None, equal: dict[str, str | None]
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["ts IS NOT NULL"]
    params: list[Any] = []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(_utc(since))
    if until is not None:
        clauses.append("ts < ?")
        params.append(_utc(until))
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _source(event: str, select: str, where: str, **types: str) -> str:
    """SQL of the events named `event` in the window; `types` replace the text or JSON type
    a column is read as (a line whose value does not fit gets NULL there)."""
    columns = {**_COLUMNS, **types}
    spec = ", ".join(f"{name}: {_literal(sql_type)}" for name, sql_type in columns.items())
    return (
        f"SELECT * FROM (SELECT TRY_CAST(timestamp AS TIMESTAMPTZ) AS ts, {select} "
        f"FROM read_json(?, format='newline_delimited', ignore_errors=true, "
        f"columns={{{spec}}}) WHERE event = {_literal(event)}) WHERE {where}"
    )


def _newest(last: int) -> str:
    if last < 0:
        raise ValidationError(f"last must be >= 0, got {last}")
    return f"ORDER BY ts DESC, coalesce(request_id, '') DESC LIMIT {int(last)}"


def _feedback(
    con: Any, files: list[str], where: str, params: list[Any], last: int | None
) -> pd.DataFrame:
    window = _source(
        events.FEEDBACK_RECEIVED, "request_id, TRY_CAST(label AS DOUBLE) AS label", where
    )
    if last is not None:
        window += " " + _newest(last)
    sql = f"SELECT request_id, ts AS timestamp, label FROM ({window})"
    return _frame(con, sql, [files, *params])


def _predictions(
    con: Any,
    files: list[str],
    where: str,
    params: list[Any],
    last: int | None,
    types: dict[str, str] | None,
) -> pd.DataFrame:
    empty = _empty((*PREDICTION_COLUMNS, "score", "output"))
    served = events.PREDICTION_SERVED
    if last is not None:
        # The window's oldest event, found by a read of the light columns only; the
        # reads below then keep what is not older than it (ties go by request id).
        newest = _source(served, "request_id, model, service", where) + " " + _newest(last)
        edge = con.execute(
            f"SELECT ts, coalesce(request_id, '') AS id, count(*) OVER () AS n FROM ({newest}) "
            "ORDER BY ts, id LIMIT 1",
            [files, *params],
        ).fetchall()  # fetchone() would leave DuckDB's result open for the next query
        if not edge:
            return empty
        edge = edge[0]
        if edge[2] >= last:
            where += " AND (ts > ? OR (ts = ? AND coalesce(request_id, '') >= ?))"
            params = [*params, edge[0], edge[0], edge[1]]
    if types is None:
        types = _feature_types(con, _source(served, _SERVED, where), [files, *params])
    if not types:
        return empty
    struct = "STRUCT(" + ", ".join(f"{_ident(n)} {t}" for n, t in types.items()) + ")"
    taken = set(PREDICTION_COLUMNS) | {"score", "output"}
    picked = ", ".join(
        f"f.{_ident(name)} AS {_ident(f'features.{name}' if name in taken else name)}"
        for name in types
    )
    # Each shape is read with its own types, so DuckDB parses the features straight
    # into structs: reading them as JSON text to cast it afterwards parsed every
    # line twice and took twice as long. /inference keys features and scores by
    # entity; /predict lists them in row order, zipped with its entity rows by unnest.
    by_key = _source(
        served, _SERVED, where + " AND features IS NOT NULL",
        features=f"MAP(VARCHAR, {struct})", scores="MAP(VARCHAR, DOUBLE)",
    )
    by_position = _source(
        served, _SERVED, where + " AND features IS NOT NULL",
        features=f"{struct}[]", scores="DOUBLE[]", entities="JSON[]", output="JSON[]",
    )
    sql = f"""
        WITH by_key AS (
            SELECT ts, request_id, model, version, service, entity, f,
                scores[entity] AS score, output ->> '$' AS output
            FROM (
                SELECT *, unnest(map_keys(features)) AS entity,
                    unnest(map_values(features)) AS f
                FROM ({by_key})
            )
        ),
        by_position AS (
            SELECT ts, request_id, model, version, service,
                CASE
                    WHEN json_type(e) = 'OBJECT' AND len(json_keys(e)) = 1
                        THEN map_values(TRY_CAST(e AS MAP(VARCHAR, VARCHAR)))[1]
                    WHEN json_type(e) IN ('OBJECT', 'ARRAY') THEN CAST(e AS VARCHAR)
                    ELSE e ->> '$'
                END AS entity,
                f, score, o ->> '$' AS output
            FROM (
                SELECT *,
                    unnest(features) AS f,
                    unnest(entities) AS e,
                    unnest(scores) AS score,
                    unnest(output) AS o
                FROM ({by_position})
            )
        )
        SELECT request_id, ts AS timestamp, model, version, service, entity, {picked},
            score, output
        FROM (SELECT * FROM by_key UNION ALL SELECT * FROM by_position)
        WHERE f IS NOT NULL
    """
    return _frame(con, sql, [files, *params, files, *params])


_SERVED = (
    "request_id, model, TRY_CAST(version AS BIGINT) AS version, service, entities, "
    "features, scores, output"
)


def _frame(con: Any, sql: str, params: list[Any]) -> pd.DataFrame:
    """The query's rows, oldest first, ties in the order DuckDB read them (the log's:
    it keeps the order of insertion).

    Through Arrow: pandas takes Arrow strings without a Python object per value, a
    third faster than DuckDB's own DataFrame conversion here; and sorted there by a
    numpy argsort of the times, where DuckDB's ORDER BY moved every column through
    its sort and took a third of the time of the whole read.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    table = con.sql(sql, params=params).to_arrow_table()
    times = table["timestamp"].to_numpy().view("int64")
    if len(times) > 1 and not (np.diff(times) >= 0).all():
        table = table.take(np.argsort(times, kind="stable"))
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _feature_types(con: Any, window: str, params: list[Any]) -> dict[str, str]:
    """Feature names and SQL types, from the first and the last event of each model version
    and service: their features are that model's inputs, so a few samples name them all,
    and only those are parsed here (as text; the window is still read once for them)."""
    rows = con.execute(
        f"""
        SELECT arg_min(features, ts), arg_max(features, ts)
        FROM ({window})
        GROUP BY model, version, service
        """,
        params,
    ).fetchall()
    seen: dict[str, set[str]] = {}
    lowered: set[str] = set()
    for samples in rows:
        for sample in samples:
            parsed = json.loads(sample) if sample is not None else None
            objects = parsed.values() if isinstance(parsed, dict) else parsed
            for obj in objects if isinstance(objects, Iterable) else ():
                if not isinstance(obj, dict):
                    continue
                for name, value in obj.items():
                    # DuckDB's struct fields ignore case; the first spelling wins.
                    if name not in seen and name.lower() in lowered:
                        continue
                    lowered.add(name.lower())
                    seen.setdefault(name, set()).add(_json_kind(value))
    return {name: _sql_type(kinds) for name, kinds in seen.items()}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "DOUBLE"
    return "VARCHAR"


def _sql_type(kinds: set[str]) -> str:
    kinds = kinds - {"null"}
    return kinds.pop() if len(kinds) == 1 else "DOUBLE" if not kinds else "VARCHAR"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
