"""`litemlops logs`: the home's event log, filtered in SQL by DuckDB (ELK's job on one machine).

It reads the event history (rotated files, compacted) and the JSONL files not
compacted yet, and takes no lock, so it works the same while `litemlops run`
serves the home.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, home_option, load_config
from litemlops.cli.pipelines import _value_text

LEVELS = ("debug", "info", "warning", "error", "critical")
_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
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
    """Events of the home's log and its history, oldest first (the newest N)."""
    from litemlops.monitoring.event_log import query_events

    after = _since(since, datetime.now(UTC))
    if level is not None and level.strip().lower() not in LEVELS:
        raise click.ClickException(f"--level {level!r}: one of {', '.join(LEVELS)}")
    if limit < 1:
        raise click.ClickException(f"--limit {limit}: a number of events >= 1")
    path = load_config(ctx, home).events_log_path
    found = query_events(
        path.parent,
        pipeline=pipeline,
        run_id=run_id,
        names=names,
        since=after,
        level=None if level is None else level.strip().lower(),
        limit=limit,
    )
    total, unreadable = found.total, found.unreadable
    for line in found.lines:
        if as_json:
            click.echo(line)
        else:
            click.echo(_text(json.loads(line)))
    if unreadable:
        click.echo(f"skipped {unreadable} unreadable line(s)", err=True)
    if total > len(found.lines):
        click.echo(
            f"showing the newest {len(found.lines)} of {total} matching events (--limit)",
            err=True,
        )
    if not found.lines:
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
