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
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from litemlops.store.features.definitions import DTYPES, Entity, Field, ResolvedView

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
    stored = con.execute("SELECT value FROM _lm_meta WHERE key = 'schema_version'").fetchone()
    if stored is None:
        con.execute("INSERT INTO _lm_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        return
    (version,) = stored
    if int(version) > SCHEMA_VERSION:
        from litemlops.errors import ConfigError

        raise ConfigError(
            f"the feature store was written by a newer litemlops (schema {version}, this one "
            f"knows {SCHEMA_VERSION}); upgrade litemlops"
        )


@dataclass(frozen=True)
class Definitions:
    entities: dict[str, tuple[Entity, int]]
    views: dict[str, ResolvedView]


def definition_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int, int, str]]:
    """The latest version of each definition: (kind, name, version, generation, spec JSON)."""
    return con.execute(
        """
        SELECT kind, name, version, generation, spec FROM _lm_definitions
        QUALIFY row_number() OVER (PARTITION BY kind, name ORDER BY version DESC) = 1
        ORDER BY kind, name
        """
    ).fetchall()


def load_definitions(con: duckdb.DuckDBPyConnection) -> Definitions:
    return definitions_from_rows(definition_rows(con))


def definitions_from_rows(rows: Sequence[tuple[str, str, int, int, str]]) -> Definitions:
    """Definitions from (kind, name, version, generation, spec JSON) rows, latest each."""
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


def last_batch(con: duckdb.DuckDBPyConnection) -> int:
    """The highest batch number this file's own sequence handed out (0 if none)."""
    taken = con.execute(
        "SELECT coalesce(last_value, 0) FROM duckdb_sequences() "
        "WHERE sequence_name = '_lm_batch_seq'"
    ).fetchall()
    written = con.execute("SELECT coalesce(max(batch), 0) FROM _lm_batches").fetchall()
    return max(int(value) for (value,) in [*taken, *written])


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
    append_batches(con, view, [Batch(table, batch, kind, source, now)])


@dataclass(frozen=True)
class Batch:
    """A conformed table going into a view's history as batch number `batch`."""

    table: pa.Table
    batch: int
    kind: str
    source: str
    written_at: datetime


def _numbered(b: Batch) -> pa.Table:
    """The batch's rows with their `_lm_seq`: its number in the high bits, the row's below."""
    first = b.batch << SEQ_BITS
    return b.table.append_column(
        "_lm_seq", pa.array(range(first, first + b.table.num_rows), pa.int64())
    )


def append_batches(
    con: duckdb.DuckDBPyConnection, view: ResolvedView, batches: Sequence[Batch]
) -> None:
    """Append conformed tables of one view (at least one), each as its batch, in one insert
    of rows and one of lineage (caller holds the transaction): many small pushes cost about
    what one of their size does, where a statement pair each cost milliseconds."""
    staged = pa.concat_tables([_numbered(b) for b in batches])
    lineage = pa.table(
        {
            "batch": [b.batch for b in batches],
            "view": [view.name] * len(batches),
            "generation": [view.generation] * len(batches),
            "kind": [b.kind for b in batches],
            "source": [b.source for b in batches],
            "rows": [b.table.num_rows for b in batches],
            "written_at": pa.array([b.written_at for b in batches], pa.timestamp("us")),
        }
    )
    con.register("_lm_staged", staged)
    con.register("_lm_staged_batches", lineage)
    try:
        cols = ", ".join(q(c) for c in staged.column_names)
        con.execute(
            f"INSERT INTO {q(table_name(view.name))} ({cols}) SELECT {cols} FROM _lm_staged"
        )
        con.execute("INSERT INTO _lm_batches SELECT * FROM _lm_staged_batches")
    finally:
        con.unregister("_lm_staged")
        con.unregister("_lm_staged_batches")


def _ttl_micros(view: ResolvedView) -> int | None:
    ttl = view.view.ttl
    # Integer division is exact; total_seconds() is a float and loses microseconds.
    return None if ttl is None else ttl // timedelta(microseconds=1)


@dataclass(frozen=True)
class Request:
    """Features asked of one view in a PIT join: `(feature, output column)` pairs."""

    view: ResolvedView
    features: tuple[tuple[str, str], ...]


def historical_sql(requests: Sequence[Request], entity_cols: dict[str, str]) -> str:
    """SQL joining `_lm_entity(_lm_row, _lm_ts, keys...)` to each view as of `_lm_ts`.

    `entity_cols` maps each join key to the DuckDB type the views store it as.
    Parameters `$lo` and `$hi` are the entity times' min and max: feature rows
    outside [lo - ttl, hi] cannot match and are not read.

    Per view, in two steps: an ASOF join on (key, event time) finds the event
    time each entity row matches, then a join back on (key, that time) picks,
    among rows sharing it, the latest created and then the latest ingested.
    Deduplicating the whole table before the ASOF join gives the same rows but
    sorts every feature row; this sorts only the matched ones. The ttl is
    checked on the matched time: if the latest row is too old, so is every
    earlier one.
    """
    ctes = []
    casts = ", ".join(f"CAST({q(k)} AS {t}) AS {q(k)}" for k, t in entity_cols.items())
    ctes.append(f"e AS (SELECT _lm_row, _lm_ts, {casts} FROM _lm_entity)")
    selects = ["e._lm_row"]
    joins = []
    for i, req in enumerate(requests):
        view = req.view
        ts = q(view.timestamp_field)
        table = q(table_name(view.name))
        keys = [q(k) for k in view.key_names]
        ttl = _ttl_micros(view)
        # Casts type the bounds when they are NULL (no entity rows).
        lower = (
            f" AND {ts} >= CAST($lo AS TIMESTAMP) - to_microseconds({ttl})"
            if ttl is not None
            else ""
        )
        ctes.append(
            f"a{i} AS (SELECT e._lm_row, e._lm_ts, {', '.join(f'e.{k}' for k in keys)}, "
            f"f._lm_t FROM e ASOF JOIN (SELECT {', '.join(keys)}, {ts} AS _lm_t FROM {table} "
            f"WHERE {ts} <= CAST($hi AS TIMESTAMP){lower}) f "
            f"ON {' AND '.join(f'e.{k} = f.{k}' for k in keys)} AND e._lm_ts >= f._lm_t)"
        )
        within = (
            f" AND a._lm_t >= a._lm_ts - to_microseconds({ttl})" if ttl is not None else ""
        )
        order = [f"t.{q(view.created_field)} DESC NULLS LAST"] if view.created_field else []
        order.append("t._lm_seq DESC")
        feats = ", ".join(f"t.{q(f)} AS {q(out)}" for f, out in req.features)
        ctes.append(
            f"m{i} AS (SELECT a._lm_row, {feats} FROM a{i} a JOIN {table} t "
            f"ON {' AND '.join(f't.{k} = a.{k}' for k in keys)} AND t.{ts} = a._lm_t{within} "
            f"QUALIFY row_number() OVER (PARTITION BY a._lm_row ORDER BY {', '.join(order)}) = 1)"
        )
        joins.append(f"LEFT JOIN m{i} ON m{i}._lm_row = e._lm_row")
        selects.extend(f"m{i}.{q(out)}" for _, out in req.features)
    return (
        f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM e {' '.join(joins)} "
        "ORDER BY e._lm_row"
    )


def window_sql(view: ResolvedView, alias: str, since: str | None) -> str:
    """Which rows a materialization reads, for table alias `alias`.

    Always: event time <= $end and ingested up to $max_seq. since="start": from
    $start on; since="mark": past the watermark's $old_end or ingested after its
    $old_seq (late rows); None: everything.
    """
    ts = f"{alias}.{q(view.timestamp_field)}"
    where = f"{ts} <= $end AND {alias}._lm_seq <= $max_seq"
    if since == "start":
        where += f" AND {ts} >= $start"
    elif since == "mark":
        where += f" AND ({ts} > $old_end OR {alias}._lm_seq > $old_seq)"
    return where


def latest_sql(view: ResolvedView, since: str | None) -> str:
    """Latest row per entity among the rows `window_sql` selects, encoded for the online store.

    The newest event time per entity comes from a GROUP BY; only rows at that
    time are ranked by (created, ingestion order), so the sort covers ties, not
    the whole table. The window is written out twice rather than shared through
    a CTE, which DuckDB would materialize with every column.
    """
    created = f"epoch_us(c.{q(view.created_field)})" if view.created_field else "NULL"
    order = [f"c.{q(view.created_field)} DESC NULLS LAST"] if view.created_field else []
    order.append("c._lm_seq DESC")
    keys = [q(k) for k in view.key_names]
    ts = q(view.timestamp_field)
    table = q(table_name(view.name))
    cols = [f"c.{k}" for k in keys]
    cols += [
        f"epoch_us(c.{q(f.name)})" if f.dtype == "timestamp" else f"c.{q(f.name)}"
        for f in view.features
    ]
    cols += [f"epoch_us(c.{ts})", created, "c._lm_seq"]
    return (
        f"SELECT {', '.join(cols)} FROM {table} c JOIN ("
        f"SELECT {', '.join(f'w.{k}' for k in keys)}, max(w.{ts}) AS _lm_t FROM {table} w "
        f"WHERE {window_sql(view, 'w', since)} GROUP BY {', '.join(f'w.{k}' for k in keys)}) n "
        f"ON {' AND '.join(f'c.{k} = n.{k}' for k in keys)} AND c.{ts} = n._lm_t "
        f"WHERE {window_sql(view, 'c', since)} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(f'c.{k}' for k in keys)} "
        f"ORDER BY {', '.join(order)}) = 1"
    )
