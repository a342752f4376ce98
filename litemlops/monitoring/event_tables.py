"""One rotated event file as the history's tables: predictions, labels and every line.

Lines are numbered through the whole log (`seq`, the first line of the file given)
and become three Arrow tables:

- `predictions`: one row per scored entity, as the reader flattens them
  (`event_sql.flat`), each feature in typed columns: `int:<name>` (BIGINT) for
  values whose text is an integer, `num:<name>` (DOUBLE) for other numbers, and
  `text:<name>` only where the value's text is not the number's own (a string, a
  boolean, a mix of kinds). A numeric read is `int` or `num`, a text read is
  `text`, else the number as text; both give what parsing the JSON gives, so a
  feature whose JSON type varies loses nothing.
- `feedback`: the labels, as the reader takes them.
- `events`: every line (for `litemlops logs`), as its JSON text, with the keys
  people filter on. The keys of a prediction's line that `rebuilt` gives back
  exactly from the typed rows (`TAKEN`: request_id, timestamp, features, scores;
  almost always) are taken out of its line, so nothing is kept twice; `taken`
  says which, and where they were (`features@8,scores@9`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.monitoring import event_sql, feature_kinds
from litemlops.monitoring.event_sql import ident, literal

if TYPE_CHECKING:
    import pyarrow as pa

KINDS = ("predictions", "feedback", "events")
PREFIXES = ("int:", "num:", "text:")
"""A feature's columns in the history, by how its values are kept."""
TAKEN = ("request_id", "timestamp", "features", "scores")
"""The keys of a prediction's line that its typed rows give back (`rebuilt`): the events
table keeps the line without those that come back exactly, and says where they were."""
FIXED = (
    "ts", "seq", "request_id", "model", "version", "service", "entity", "position", "score",
    "output",
)  # fmt: skip
"""The columns of a prediction row before its features."""


@dataclass
class Split:
    """What one event file holds: `tables` by kind (rows sorted by `seq`; `day`, the
    row's UTC date, is a column of each), how many `lines` it has, and per
    (model, version, service) the features and JSON types its first and last events
    show (`feature_kinds.sampled`)."""

    tables: dict[str, pa.Table]
    lines: int
    kinds: list[tuple[feature_kinds.Group, feature_kinds.Kinds]]


def split(con: Any, file: str, seq: int, fallback_day: str) -> Split:
    """The tables of the JSON lines of `file`, its first line numbered `seq`. Lines
    without a time go to `fallback_day` (the events table keeps them)."""
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")  # one reader numbers the lines in the file's order
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE lines AS SELECT (row_number() OVER () + ? - 1)::BIGINT "
            "AS seq, json FROM read_json(?, format='newline_delimited', records=false, "
            "maximum_depth=0, ignore_errors=true)",
            [seq, file],
        )
    finally:
        con.execute(f"SET threads = {int(threads)}")
    # One parse of each line gives every column of every table (`->>` parses it again).
    shown = dict.fromkeys(("level", "pipeline", "run_id", "task"), "VARCHAR")
    spec = literal(event_sql.transform_spec(**shown))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE parsed AS SELECT seq, "
        "TRY_CAST(t.timestamp AS TIMESTAMPTZ) AS ts, unnest(t) "
        f"FROM (SELECT seq, json_transform(json, {spec}) AS t FROM lines)"
    )
    lines = con.execute("SELECT count(*) FROM lines").fetchall()[0][0]
    served = literal(events.PREDICTION_SERVED)
    kinds = feature_kinds.sampled(
        con, f"SELECT ts, {event_sql.SERVED} FROM parsed WHERE event = {served}", []
    )
    every: feature_kinds.Kinds = {name: set() for name in _names(con)}
    names = list(feature_kinds.merged([every, *(k for _, k in kinds)]))
    con.execute(f"CREATE OR REPLACE TEMP TABLE flat AS {_predictions(names)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE rebuilt AS {rebuilt('flat', names)}")
    day = f"coalesce(CAST(ts AS DATE), DATE {literal(fallback_day)}) AS day"
    label = literal(events.FEEDBACK_RECEIVED)
    # Each key of TAKEN the typed rows give back exactly, and only once in its line.
    own = {
        "request_id": "CAST(json_extract(p.json, '$.request_id') AS VARCHAR)",
        "timestamp": "CAST(json_extract(p.json, '$.timestamp') AS VARCHAR)",
        "features": "CAST(p.features AS VARCHAR)",
        "scores": "CAST(p.scores AS VARCHAR)",
    }
    exact = ", ".join(
        f"coalesce({own[k]} = r.{k} AND len(list_filter(p.keys, lambda x: x = '{k}')) = 1, false) "
        f"AS {k}_ok"
        for k in TAKEN
    )
    taken = ", ".join(
        f"CASE WHEN {k}_ok THEN '{k}@' || list_position(keys, '{k}') END" for k in TAKEN
    )
    patch = ", ".join(f"""CASE WHEN {k}_ok THEN '"{k}":null' END""" for k in TAKEN)
    tables = {
        "predictions": f"SELECT *, {day} FROM flat ORDER BY seq, position",
        "feedback": f"SELECT ts, seq, {event_sql.LABEL}, {day} FROM parsed "
        f"WHERE event = {label} AND ts IS NOT NULL ORDER BY seq",
        "events": f"""
            WITH checked AS (
                SELECT seq, p.keys, {exact}
                FROM (SELECT *, json_keys(json) AS keys FROM lines JOIN parsed USING (seq)) p
                JOIN rebuilt r USING (seq)
            ), marked AS (
                SELECT seq, NULLIF(concat_ws(',', {taken}), '') AS taken,
                    '{{' || concat_ws(',', {patch}) || '}}' AS patch
                FROM checked
            )
            SELECT ts, seq, event, level, pipeline, run_id, task,
                CAST(CASE WHEN taken IS NOT NULL THEN json_merge_patch(json, patch) ELSE json
                    END AS VARCHAR) AS line,
                taken, {day}
            FROM lines LEFT JOIN parsed USING (seq) LEFT JOIN marked USING (seq)
            ORDER BY seq
        """,
    }
    return Split({k: con.sql(sql).to_arrow_table() for k, sql in tables.items()}, int(lines), kinds)


def _names(con: Any) -> list[str]:
    """Every key of the objects in prediction events' feature lists, in the order first seen."""
    served = literal(events.PREDICTION_SERVED)
    rows = con.execute(
        f"""
        SELECT k FROM (
            SELECT seq, i, unnest(json_keys(e)) AS k, generate_subscripts(json_keys(e), 1) AS j
            FROM (
                SELECT seq, unnest(CAST(features AS JSON[])) AS e,
                    generate_subscripts(CAST(features AS JSON[]), 1) AS i
                FROM parsed
                WHERE event = {served} AND ts IS NOT NULL AND json_type(features) = 'ARRAY'
            )
            WHERE json_type(e) = 'OBJECT'
        )
        GROUP BY k ORDER BY min([seq, i, j])
        """
    ).fetchall()
    return [k for (k,) in rows]


def _predictions(names: list[str]) -> str:
    """SQL: the flattened prediction rows of `parsed`, each feature in its typed columns.

    Each value is read from the JSON twice, as text and as a number (as the reader
    reads a categorical and a numeric feature), and kept as `int:` when its text is
    that of an integer, else as `num:`, with `text:` where the text is not the kept
    number's.
    """
    # Feature lists whose objects have no key at all still have rows; a struct needs a
    # field, and no key can take this one's place (there are none).
    fields = names or ["_"]
    as_text = literal(json.dumps([dict.fromkeys(fields, "VARCHAR")]))
    as_number = literal(json.dumps([dict.fromkeys(fields, "DOUBLE")]))
    scores, entities = (literal(json.dumps([t])) for t in ("DOUBLE", "JSON"))
    rows = (
        f"SELECT ts, seq, request_id, model, TRY_CAST(version AS BIGINT) AS version, service, "
        f"json_transform(entities, {entities}) AS entities, "
        f"json_transform(features, {as_text}) AS features, "
        f"json_transform(features, {as_number}) AS numbers, "
        f"json_transform(scores, {scores}) AS scores, output FROM parsed "
        f"WHERE event = {literal(events.PREDICTION_SERVED)} AND ts IS NOT NULL"
    )
    read = ", ".join(
        f"f.{ident(n)} AS {ident('v:' + n)}, d.{ident(n)} AS {ident('d:' + n)}" for n in fields
    )
    flat = event_sql.flat(rows, read, key="seq", more="unnest(numbers) AS d,")
    fixed = ", ".join(FIXED)
    if not names:
        return f"SELECT {fixed} FROM ({flat})"
    whole = ", ".join(
        f"CASE WHEN CAST(TRY_CAST({v} AS BIGINT) AS VARCHAR) = {v} "
        f"AND CAST(TRY_CAST({v} AS BIGINT) AS DOUBLE) IS NOT DISTINCT FROM {d} "
        f"THEN TRY_CAST({v} AS BIGINT) END AS {i}"
        for n in names
        for v, d, i in [(ident("v:" + n), ident("d:" + n), ident("int:" + n))]
    )
    numbers = ", ".join(
        f"{i}, CASE WHEN {i} IS NULL THEN {d} END AS {x}, {v}"
        for n in names
        for v, d, i, x in [(ident("v:" + n), ident("d:" + n), ident("int:" + n),
                            ident("num:" + n))]
    )
    texts = ", ".join(
        f"{i}, {x}, CASE WHEN {v} IS DISTINCT FROM coalesce(CAST({i} AS VARCHAR), "
        f"CAST({x} AS VARCHAR)) THEN {v} END AS {t}"
        for n in names
        for v, i, x, t in [(ident("v:" + n), *(ident(p + n) for p in PREFIXES))]
    )
    return (
        f"SELECT {fixed}, {texts} FROM (SELECT {fixed}, {numbers} FROM ("
        f"SELECT *, {whole} FROM ({flat})))"
    )


def rebuilt(rows: str, names: list[str]) -> str:
    """SQL: per `seq`, the keys of `TAKEN` of a prediction's line as JSON text, rebuilt
    from its typed rows in `rows` (a feature missing or null is left out; a line whose
    rebuild of a key differs from its own keeps that key)."""
    members = []
    for n in names:
        i, x, t = (ident(p + n) for p in PREFIXES)
        value = (
            f"CASE WHEN {i} IS NOT NULL THEN CAST({i} AS VARCHAR) "
            f"WHEN {t} IS NOT NULL THEN CAST(to_json({t}) AS VARCHAR) "
            f"WHEN {x} IS NOT NULL THEN CAST(to_json({x}) AS VARCHAR) END"
        )
        key = literal(json_text(n) + ":")
        members.append(f"{key} || ({value})")
    obj = "'{' || concat_ws(',', " + ", ".join(members) + ") || '}'" if members else "'{}'"
    # As structlog writes it: the microseconds only when there are some.
    stamp = (
        "strftime(any_value(ts), '%Y-%m-%dT%H:%M:%S') || CASE WHEN "
        "microsecond(any_value(ts)) % 1000000 = 0 THEN '' ELSE strftime(any_value(ts), '.%f') "
        "END || 'Z'"
    )
    return f"""
        SELECT seq,
            CAST(to_json(any_value(request_id)) AS VARCHAR) AS request_id,
            CAST(to_json({stamp}) AS VARCHAR) AS timestamp,
            '[' || string_agg({obj}, ',' ORDER BY position) || ']' AS features,
            '[' || string_agg(CAST(to_json(score) AS VARCHAR), ',' ORDER BY position) || ']'
                AS scores
        FROM {rows} GROUP BY seq
    """


def json_text(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)
