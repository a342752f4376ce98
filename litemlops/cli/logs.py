"""`litemlops logs`: the home's event log, filtered in SQL by DuckDB (ELK's job on one machine).

It reads only the JSONL files (the live one and its rotated backups) and takes
no lock, so it works the same while `litemlops run` serves the home.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, home_option, load_config
from litemlops.cli.pipelines import _log_files, _value_text

LEVELS = ("debug", "info", "warning", "error", "critical")
_RANKS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40,
          "critical": 50, "fatal": 50}  # fmt: skip
_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RETRIES = 3
# The bound context shows right after the event name, in this order; `logger` is noise.
_CONTEXT = ("pipeline", "run_id", "task", "attempt", "model", "version")
_HIDDEN = frozenset({"timestamp", "level", "event", "logger", *_CONTEXT})


@click.command("logs")
@home_option
@click.option("--pipeline", default=None, help="Only events of this pipeline's runs.")
@click.option("--run", "run_id", default=None, help="Only events of this pipeline run.")
@click.option("--event", "names", multiple=True, help="Only events of this name (repeatable).")
@click.option("--since", default=None, help="Only newer events: 30m, 1h, 2d, or an ISO time.")
@click.option("--level", default=None, help="Only events at this level or worse (e.g. error).")
@click.option("--limit", default=100, show_default=True, help="At most the newest N events.")
@click.option("--json", "as_json", is_flag=True, help="The events as JSON lines.")
@click.pass_context
@cli_errors
def logs(
    ctx: click.Context,
    home: Path | None,
    pipeline: str | None,
    run_id: str | None,
    names: tuple[str, ...],
    since: str | None,
    level: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Events of the home's log and its rotated backups, oldest first (the newest N)."""
    after = _since(since, datetime.now(UTC))
    if level is not None and level.strip().lower() not in LEVELS:
        raise click.ClickException(f"--level {level!r}: one of {', '.join(LEVELS)}")
    if limit < 1:
        raise click.ClickException(f"--limit {limit}: a number of events >= 1")
    path = load_config(ctx, home).events_log_path
    found, total, unreadable = _query(
        path,
        pipeline=pipeline,
        run_id=run_id,
        names=list(names),
        after=after,
        level=None if level is None else level.strip().lower(),
        limit=limit,
    )
    for line in found:
        if as_json:
            click.echo(line)
        else:
            click.echo(_text(json.loads(line)))
    if unreadable:
        click.echo(f"skipped {unreadable} unreadable line(s)", err=True)
    if total > len(found):
        click.echo(
            f"showing the newest {len(found)} of {total} matching events (--limit)", err=True
        )
    if not found:
        click.echo(f"no matching events in {path}", err=True)


def _text(event: dict[str, Any]) -> str:
    parts = [str(event.get("timestamp", "-")), f"{event.get('level', '-')!s:<7}"]
    parts.append(f"{event.get('event', '-')!s:<21}")
    parts += [f"{k}={_value_text(event[k])}" for k in _CONTEXT if event.get(k) is not None]
    parts += [f"{k}={_value_text(v)}" for k, v in event.items() if k not in _HIDDEN]
    return " ".join(parts).rstrip()


def _since(text: str | None, now: datetime) -> datetime | None:
    """`30m` ago, or an ISO-8601 time (naive means UTC)."""
    if text is None:
        return None
    value = text.strip()
    ago = _AGO.fullmatch(value)
    if ago is not None:
        return now - timedelta(seconds=float(ago.group(1)) * _UNITS[ago.group(2)])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.ClickException(
            f"--since {text!r}: a duration like 30m, 1h, 2d or an ISO-8601 time like "
            "2026-01-01T00:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _query(
    path: Path,
    *,
    pipeline: str | None,
    run_id: str | None,
    names: list[str],
    after: datetime | None,
    level: str | None,
    limit: int,
) -> tuple[list[str], int, int]:
    """(the newest `limit` matching lines, oldest first; how many matched; unreadable lines).

    Each line is read as one JSON value (not columns), so events of any shape
    share the scan and come back exactly as written.
    """
    import duckdb

    where = ["event IS NOT NULL"]
    params: list[Any] = []
    for key, wanted in (("pipeline", pipeline), ("run_id", run_id)):
        if wanted is not None:
            where.append(f"json->>'$.{key}' = ?")
            params.append(wanted)
    if names:
        where.append(f"event IN ({', '.join('?' * len(names))})")
        params += names
    if after is not None:
        where.append("ts >= ?")
        params.append(after)
    if level is not None:
        ranks = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in _RANKS.items())
        where.append(f"(CASE lower(json->>'$.level') {ranks} ELSE 20 END) >= ?")
        params.append(_RANKS[level])
    sql = f"""
        WITH lines AS (
            SELECT json, list_position(?, filename) AS file, row_number() OVER () AS seq
            FROM read_json(?, format = 'newline_delimited', records = false,
                           maximum_depth = 0, union_by_name = true, ignore_errors = true,
                           filename = true)
        ), events AS (
            SELECT json, file, seq, json->>'$.event' AS event,
                   try_cast(json->>'$.timestamp' AS TIMESTAMPTZ) AS ts
            FROM lines
        ), marked AS (
            SELECT *, coalesce({" AND ".join(where)}, false) AS hit FROM events
        ), matching AS (
            SELECT json, file, seq, ts FROM marked WHERE hit
            ORDER BY ts DESC NULLS LAST, file DESC, seq DESC LIMIT ?
        ), summary AS (
            SELECT count(*) FILTER (WHERE hit) AS total,
                   count(*) FILTER (WHERE event IS NULL) AS unreadable
            FROM marked
        )
        SELECT m.json::VARCHAR, s.total, s.unreadable
        FROM summary s LEFT JOIN matching m ON true
        ORDER BY m.ts NULLS FIRST, m.file, m.seq
    """
    rows: list[tuple[Any, ...]] = []
    for attempt in range(_RETRIES):
        files = [str(f) for f in _log_files(path)]
        if not files:
            return [], 0, 0
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            rows = con.execute(sql, [files, files, *params, limit]).fetchall()
            break
        except duckdb.IOException:
            # A rotation renamed the files between listing and reading: list again.
            if attempt == _RETRIES - 1:
                raise
        finally:
            con.close()
    total, unreadable = (int(rows[0][1]), int(rows[0][2])) if rows else (0, 0)
    return [r[0] for r in rows if r[0] is not None], total, unreadable
