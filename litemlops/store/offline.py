"""The DuckDB offline store: catalog tables, one table per feature view, the PIT join.

Catalog tables start with `_lm_`; a view's rows live in `fv_<view>`. Every row
gets `_lm_seq`, a number that grows with ingestion order: it breaks the last
ties (same key, event time and created time) and drives incremental
materialization, so rows that arrive late are still materialized.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from litemlops.store.definitions import DTYPES, Entity, Field, ResolvedView

SCHEMA_VERSION = 1
SEQ_BITS = 32  # rows per batch stay below 2**32; batch numbers fill the high bits


def q(name: str) -> str:
    """Quote an identifier (names are validated; quoting guards reserved words)."""
    return '"' + name.replace('"', '""') + '"'


def table_name(view: str) -> str:
    return f"fv_{view}"


def archive_name(view: str, generation: int) -> str:
    return f"_lm_archive_{view}_g{generation}"


def ensure_catalog(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS _lm_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        CREATE TABLE IF NOT EXISTS _lm_definitions (
            kind VARCHAR NOT NULL, name VARCHAR NOT NULL, version INTEGER NOT NULL,
            generation INTEGER NOT NULL, spec VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
            applied_at TIMESTAMP NOT NULL, PRIMARY KEY (kind, name, version));
        CREATE TABLE IF NOT EXISTS _lm_watermarks (
            view VARCHAR PRIMARY KEY, generation INTEGER NOT NULL, end_ts TIMESTAMP,
            last_seq BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL);
        CREATE TABLE IF NOT EXISTS _lm_batches (
            batch BIGINT NOT NULL, view VARCHAR NOT NULL, generation INTEGER NOT NULL,
            kind VARCHAR NOT NULL, source VARCHAR NOT NULL, rows BIGINT NOT NULL,
            written_at TIMESTAMP NOT NULL);
        CREATE SEQUENCE IF NOT EXISTS _lm_batch_seq START 1;
        """
    )
    rows = con.execute("SELECT value FROM _lm_meta WHERE key = 'schema_version'").fetchall()
    row = rows[0] if rows else None
    if row is None:
        con.execute("INSERT INTO _lm_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    elif int(row[0]) > SCHEMA_VERSION:
        from litemlops.errors import ConfigError

        raise ConfigError(
            f"the feature store was written by a newer litemlops (schema {row[0]}, this one "
            f"knows {SCHEMA_VERSION}); upgrade litemlops"
        )


@dataclass(frozen=True)
class Definitions:
    entities: dict[str, tuple[Entity, int]]
    views: dict[str, ResolvedView]


def load_definitions(con: duckdb.DuckDBPyConnection) -> Definitions:
    rows = con.execute(
        """
        SELECT kind, name, version, generation, spec FROM _lm_definitions
        QUALIFY row_number() OVER (PARTITION BY kind, name ORDER BY version DESC) = 1
        ORDER BY kind, name
        """
    ).fetchall()
    entities: dict[str, tuple[Entity, int]] = {}
    view_rows = []
    for kind, name, version, generation, spec in rows:
        if kind == "entity":
            entities[name] = (Entity.from_spec(json.loads(spec)), version)
        else:
            view_rows.append((name, version, generation, json.loads(spec)))
    views = {}
    for name, version, generation, spec in view_rows:
        ents = [entities[e][0] for e in spec["entities"] if e in entities]
        views[name] = ResolvedView.from_spec(spec, version, generation, ents)
    return Definitions(entities, views)


def save_definition(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    name: str,
    version: int,
    generation: int,
    spec: dict[str, Any],
    fp: str,
    now: datetime,
) -> None:
    con.execute(
        "INSERT INTO _lm_definitions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [kind, name, version, generation, json.dumps(spec, sort_keys=True), fp, now],
    )


def create_table(con: duckdb.DuckDBPyConnection, view: ResolvedView) -> None:
    cols = ", ".join(f"{q(c.name)} {DTYPES[c.dtype][0]}" for c in view.columns)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {q(table_name(view.name))} ({cols}, _lm_seq BIGINT NOT NULL)"
    )


def add_columns(con: duckdb.DuckDBPyConnection, view: str, fields: Sequence[Field]) -> None:
    for item in fields:
        con.execute(
            f"ALTER TABLE {q(table_name(view))} ADD COLUMN {q(item.name)} {DTYPES[item.dtype][0]}"
        )


def archive_table(con: duckdb.DuckDBPyConnection, view: str, generation: int) -> str:
    target = archive_name(view, generation)
    con.execute(f"ALTER TABLE {q(table_name(view))} RENAME TO {q(target)}")
    con.execute("DELETE FROM _lm_watermarks WHERE view = ?", [view])
    return target


def next_batch(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT nextval('_lm_batch_seq')").fetchall()[0][0])


def append(
    con: duckdb.DuckDBPyConnection,
    view: ResolvedView,
    table: pa.Table,
    batch: int,
    kind: str,
    source: str,
    now: datetime,
) -> None:
    """Append a conformed table as one batch (caller holds the transaction)."""
    seq = pa.array(range(batch << SEQ_BITS, (batch << SEQ_BITS) + table.num_rows), pa.int64())
    staged = table.append_column("_lm_seq", seq)
    con.register("_lm_staged", staged)
    try:
        cols = ", ".join(q(c) for c in staged.column_names)
        con.execute(
            f"INSERT INTO {q(table_name(view.name))} ({cols}) SELECT {cols} FROM _lm_staged"
        )
    finally:
        con.unregister("_lm_staged")
    con.execute(
        "INSERT INTO _lm_batches VALUES (?, ?, ?, ?, ?, ?, ?)",
        [batch, view.name, view.generation, kind, source, table.num_rows, now],
    )


def _ttl_micros(view: ResolvedView) -> int | None:
    ttl = view.view.ttl
    return None if ttl is None else int(ttl.total_seconds() * 1_000_000)


def dedup_sql(view: ResolvedView, columns: Sequence[str], where: str = "") -> str:
    """One row per (key, event time): the latest created, then the latest ingested."""
    order = []
    if view.created_field:
        order.append(f"{q(view.created_field)} DESC NULLS LAST")
    order.append("_lm_seq DESC")
    part = ", ".join(q(k) for k in (*view.key_names, view.timestamp_field))
    cols = ", ".join(q(c) for c in columns)
    return (
        f"SELECT {cols} FROM {q(table_name(view.name))} {where} "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {', '.join(order)}) = 1"
    )


@dataclass(frozen=True)
class Request:
    """Features asked of one view in a PIT join: `(feature, output column)` pairs."""

    view: ResolvedView
    features: tuple[tuple[str, str], ...]


def historical_sql(requests: Sequence[Request], entity_cols: dict[str, str]) -> str:
    """SQL joining `_lm_entity(_lm_row, _lm_ts, keys...)` to each view as of `_lm_ts`.

    `entity_cols` maps each join key to the DuckDB type the views store it as. The
    ASOF join takes the latest row at or before the entity time; rows older than
    the view's ttl are masked afterwards (the latest row being too old means every
    earlier one is too).
    """
    ctes = []
    selects = ["e._lm_row"]
    joins = []
    casts = ", ".join(f"CAST({q(k)} AS {t}) AS {q(k)}" for k, t in entity_cols.items())
    ctes.append(f"e AS (SELECT _lm_row, _lm_ts, {casts} FROM _lm_entity)")
    for i, req in enumerate(requests):
        view = req.view
        alias = f"f{i}"
        ts = view.timestamp_field
        cols = [*view.key_names, ts, *(f for f, _ in req.features)]
        ttl = _ttl_micros(view)
        # Prune feature rows no entity row can reach.
        lower = (
            f" AND {q(ts)} >= (SELECT min(_lm_ts) FROM _lm_entity) - to_microseconds({ttl})"
            if ttl is not None
            else ""
        )
        where = f"WHERE {q(ts)} <= (SELECT max(_lm_ts) FROM _lm_entity){lower}"
        ctes.append(f"{alias} AS ({dedup_sql(view, cols, where)})")
        on = " AND ".join(f"e.{q(k)} = {alias}.{q(k)}" for k in view.key_names)
        joins.append(f"ASOF LEFT JOIN {alias} ON {on} AND e._lm_ts >= {alias}.{q(ts)}")
        for feature, out in req.features:
            value = f"{alias}.{q(feature)}"
            if ttl is not None:
                value = (
                    f"CASE WHEN {alias}.{q(ts)} >= e._lm_ts - to_microseconds({ttl}) "
                    f"THEN {value} END"
                )
            selects.append(f"{value} AS {q(out)}")
    return (
        f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM e {' '.join(joins)} "
        "ORDER BY e._lm_row"
    )


def encoded(column: str, dtype: str) -> str:
    """SQL turning a stored column into what the SQLite online store keeps."""
    if dtype == "timestamp":
        return f"epoch_us({q(column)})"
    return q(column)


def latest_sql(view: ResolvedView, where: str) -> str:
    """Latest row per entity among the rows `where` selects, encoded for the online store."""
    order = [f"{q(view.timestamp_field)} DESC"]
    if view.created_field:
        order.append(f"{q(view.created_field)} DESC NULLS LAST")
    order.append("_lm_seq DESC")
    created = f"epoch_us({q(view.created_field)})" if view.created_field else "NULL"
    cols = [q(k) for k in view.key_names]
    cols += [encoded(f.name, f.dtype) for f in view.features]
    cols += [f"epoch_us({q(view.timestamp_field)})", created, "_lm_seq"]
    part = ", ".join(q(k) for k in view.key_names)
    return (
        f"SELECT {', '.join(cols)} FROM {q(table_name(view.name))} WHERE {where} "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {', '.join(order)}) = 1"
    )
