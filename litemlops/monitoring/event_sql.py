"""The SQL that turns prediction and label events into rows, shared by the reader of the
JSONL log and by the compaction that writes the history.

Both must give the same rows for the same lines (a read through the history equals a
read that parses every line), so both take them from here: the reader applies the
typed columns to `read_json` on the files, compaction applies them to each line's
JSON with `json_transform`, which DuckDB's JSON reader is built on.
"""

from __future__ import annotations

# Columns are given, not inferred: events of other names carry the same keys with
# other types (a string `features`, a text `version`), and inference over a mixed
# log would fail or guess from the first lines only.
COLUMNS = {
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
FLAT_TYPES = {"scores": "DOUBLE[]", "entities": "JSON[]"}
"""How the prediction rows read `scores` and `entities` (`features` is typed per read)."""
SERVED = (
    "request_id, model, TRY_CAST(version AS BIGINT) AS version, service, entities, "
    "features, scores, output"
)
"""The columns of prediction events a read takes, `version` as a number."""
LABEL = "request_id, TRY_CAST(label AS DOUBLE) AS label"
"""The columns of label events a read takes."""
FEATURE = "feature:"


def read_json(**types: str) -> str:
    """SQL reading the JSON lines of the files `?` with `COLUMNS` (some replaced by
    `types`) and each row's `filename`; a line that is not JSON is skipped, a value
    that does not fit its column's type is NULL."""
    columns = {**COLUMNS, **types}
    spec = ", ".join(f"{name}: {literal(sql_type)}" for name, sql_type in columns.items())
    return (
        f"read_json(?, format='newline_delimited', ignore_errors=true, filename=true, "
        f"columns={{{spec}}})"
    )


def transform_spec(**types: str) -> str:
    """The `json_transform` structure equal to `read_json(**types)`'s columns."""
    import json

    return json.dumps({**COLUMNS, **types})


def source(event: str, select: str, where: str, **types: str) -> str:
    """SQL of the events named `event` in the JSON files `?`: ts, the file's name, and
    `select`; `types` replace the text or JSON type a column is read as (a line whose
    value does not fit gets NULL there)."""
    return (
        f"SELECT * FROM (SELECT TRY_CAST(timestamp AS TIMESTAMPTZ) AS ts, filename, {select} "
        f"FROM {read_json(**types)} WHERE event = {literal(event)}) WHERE {where}"
    )


def flat(rows: str, features: str, key: str = "filename", more: str = "") -> str:
    """SQL: one row per scored entity of the prediction events `rows` (SQL with ts, `key`,
    and `SERVED`'s columns; `features` a list of structs, `scores` DOUBLE[], `entities`
    JSON[]): ts, `key`, request_id, model, version, service, entity, position, score,
    output, and then `features` (SQL over the entity's struct `f`, and what `more`
    unnests alongside it; none when empty).

    Both services log features and scores as lists in the order of `entities`. `output`
    is the request's choice (/inference) or its list of predictions (/predict), whose
    item for the row is taken by the row's position; `entity` is the entity's key as
    text (the single value of an entity row).
    """
    return f"""
        SELECT ts, {key}, request_id, model, version, service,
            CASE
                WHEN json_type(e) = 'OBJECT' AND len(json_keys(e)) = 1
                    THEN map_values(TRY_CAST(e AS MAP(VARCHAR, VARCHAR)))[1]
                WHEN json_type(e) IN ('OBJECT', 'ARRAY') THEN CAST(e AS VARCHAR)
                ELSE e ->> '$'
            END AS entity,
            position, score,
            CASE
                WHEN json_type(output) = 'ARRAY' THEN output ->> CAST(position - 1 AS INTEGER)
                ELSE output ->> '$'
            END AS output
            {", " + features if features else ""}
        FROM (
            SELECT *,
                unnest(features) AS f,
                {more}
                unnest(entities) AS e,
                unnest(scores) AS score,
                unnest(range(1, len(features) + 1)) AS position
            FROM ({rows})
        )
        WHERE f IS NOT NULL
    """


def struct(types: dict[str, str]) -> str:
    """The SQL type of one entity's features: a struct of `types` (name -> SQL type)."""
    return "STRUCT(" + ", ".join(f"{ident(n)} {t}" for n, t in types.items()) + ")"


def column(name: str) -> str:
    """A feature's column in flattened rows: prefixed, so no feature name can take one
    of the other columns'."""
    return ident(FEATURE + name)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
