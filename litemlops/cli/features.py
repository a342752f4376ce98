"""`litemlops features ...`: the feature store from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from litemlops.cli.common import (
    cli_errors,
    echo_json,
    entity_row,
    home_option,
    load_config,
    open_platform,
    parse_time,
    split_refs,
    stages,
)
from litemlops.cli.remote import json_chunks, owner, path_part

if TYPE_CHECKING:
    from litemlops.cli.remote import Owner
    from litemlops.config import Config


@click.group()
def features() -> None:
    """Feature store: definitions, ingestion, training data, online values."""


@features.command("apply")
@home_option
@click.argument("definitions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Allow incompatible changes (old rows are archived).")
@click.pass_context
@cli_errors
def features_apply(ctx: click.Context, home: Path | None, definitions: Path, force: bool) -> None:
    """Apply the entities and feature views defined in a Python module."""
    from litemlops.store.features.repo import load_definitions

    objects = load_definitions(definitions)
    with open_platform(ctx, home) as platform:
        result = platform.history.apply(objects, force=force)
    click.echo(f"changed: {', '.join(result.changed) or '-'}")
    click.echo(f"unchanged: {', '.join(result.unchanged) or '-'}")


@features.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def features_list(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """List feature views."""
    with open_platform(ctx, home) as platform:
        store = platform.history
        rows = [store.describe(v.name) for v in store.list_feature_views()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no feature views; apply some with `litemlops features apply FILE`")
    for row in rows:
        click.echo(
            f"{row['name']} v{row['version']}  keys={','.join(row['join_keys'])}  "
            f"features={','.join(row['features'])}  rows={row['offline_rows']}  "
            f"online={row['online_entities']}  materialized_until={row['materialized_until']}"
        )


@features.command("describe")
@home_option
@click.argument("view")
@click.pass_context
@cli_errors
def features_describe(ctx: click.Context, home: Path | None, view: str) -> None:
    """Show a feature view: definition, row counts, time range, freshness."""
    with open_platform(ctx, home) as platform:
        echo_json(platform.history.describe(view))


@features.command("ingest")
@home_option
@click.argument("view")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@cli_errors
def features_ingest(ctx: click.Context, home: Path | None, view: str, data: Path) -> None:
    """Append rows from a Parquet, CSV or TSV file to a feature view (all or nothing)."""
    with open_platform(ctx, home) as platform, stages(["validate and write"]) as step:
        result = platform.history.ingest(view, data)
        step()
    click.echo(f"ingested {result.rows} rows into {view} (batch {result.batch})")


@features.command("materialize")
@home_option
@click.option("--start", help="ISO time; (re)write rows from here (default: incremental).")
@click.option("--end", help="ISO time; default now.")
@click.option("--view", "views", multiple=True, help="Only this view (repeatable).")
@click.pass_context
@cli_errors
def features_materialize(
    ctx: click.Context,
    home: Path | None,
    start: str | None,
    end: str | None,
    views: tuple[str, ...],
) -> None:
    """Copy the latest values per entity into the online store."""
    from tqdm import tqdm

    with open_platform(ctx, home) as platform:
        store = platform.history
        names = list(views) or [v.name for v in store.list_feature_views() if v.online]
        with tqdm(
            total=len(names), desc="materialize", unit="view", file=sys.stderr, disable=None
        ) as bar:
            results = platform.history.materialize(
                end=parse_time(end),
                start=parse_time(start),
                views=names,
                progress=lambda _: bar.update(),
            )
    for r in results:
        click.echo(f"{r.view}: {r.entities_written} entities written, watermark {r.watermark}")


@features.command("historical")
@home_option
@click.option(
    "--entities",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Parquet, CSV or TSV with join keys and a timestamp column.",
)
@click.option("--features", "refs", required=True, help="Comma-separated view:feature list.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output .parquet, .csv or .tsv.",
)
@click.option("--timestamp-column", default="event_timestamp", show_default=True)
@click.option("--full-feature-names", is_flag=True)
@click.pass_context
@cli_errors
def features_historical(
    ctx: click.Context,
    home: Path | None,
    entities: Path,
    refs: str,
    out: Path,
    timestamp_column: str,
    full_feature_names: bool,
) -> None:
    """Build point-in-time correct training data for entity rows in a file."""
    from litemlops.store.files import check_output, read_frame, write_frame

    check_output(out)
    refs_list = split_refs(refs)
    with open_platform(ctx, home) as platform, stages(["read", "join", "write"]) as step:
        keys = platform.features.join_keys(refs_list, full_feature_names=full_feature_names)
        frame = read_frame(entities, text_columns=[k for k, t in keys.items() if t == "string"])
        step()
        result = platform.history.get_historical_features(
            frame,
            refs_list,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
        )
        step()
        write_frame(result, out)
        step()
    click.echo(f"wrote {len(result)} rows x {len(result.columns)} columns to {out}")


@features.command("online")
@home_option
@click.option("--features", "refs", required=True, help="Comma-separated view:feature list.")
@click.option(
    "--entity",
    "entity_args",
    multiple=True,
    required=True,
    help="key=value (repeat for several rows; key1=v1,key2=v2 for composite keys).",
)
@click.option("--event-timestamps", is_flag=True, help="Also return each value's event time.")
@click.pass_context
@cli_errors
def features_online(
    ctx: click.Context,
    home: Path | None,
    refs: str,
    entity_args: tuple[str, ...],
    event_timestamps: bool,
) -> None:
    """Look up online feature values (JSON out)."""
    with open_platform(ctx, home) as platform:
        keys = platform.features.join_keys(split_refs(refs))
        rows = [entity_row(arg, keys) for arg in entity_args]
        result = platform.features.get_online_features(
            split_refs(refs), rows, include_event_timestamps=event_timestamps
        )
    echo_json(result.to_dict())


@features.command("push")
@home_option
@click.argument("view")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--to", type=click.Choice(["online", "offline", "both"]), default="online", show_default=True
)
@click.pass_context
@cli_errors
def features_push(ctx: click.Context, home: Path | None, view: str, data: Path, to: str) -> None:
    """Push fresh rows from a file to the online and/or offline store (through the
    server while `run` serves the home)."""
    config = load_config(ctx, home)
    served = owner(config)
    if served is not None:
        with served:
            done = _push_through(served, config, view, data, to)
        _say_pushed(done)
        return
    with open_platform(ctx, home) as platform:
        r = platform.push_features(view, data, to=to)  # type: ignore[arg-type]
    _say_pushed(
        {
            "rows": r.rows,
            "to": r.to,
            "online_written": r.online_written,
            "stale_rows": r.stale_rows,
            "late_rows": r.late_rows,
        }
    )


def _say_pushed(r: dict[str, Any]) -> None:
    click.echo(
        f"pushed {r['rows']} rows to {r['to']}: {r['online_written']} applied online, "
        f"{r['stale_rows']} older than the online value, {r['late_rows']} late"
    )


def _push_through(served: Owner, config: Config, view: str, data: Path, to: str) -> dict[str, Any]:
    """The file's rows to the server's `/push/VIEW`, in pieces it takes; the sums."""
    import json

    from litemlops.store.features.online_features import OnlineFeatureStore
    from litemlops.store.files import read_frame

    with OnlineFeatureStore(config.online_path) as store:
        columns = store.columns(view)
    frame = read_frame(data, text_columns=[c for c, t in columns.items() if t == "string"])
    rows = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"))
    total = {"rows": 0, "to": to, "online_written": 0, "stale_rows": 0, "late_rows": 0}
    for piece in json_chunks(rows, config.server.max_items, config.server.max_body_bytes):
        answer = served.call("POST", f"/push/{path_part(view)}", {"rows": piece, "to": to})
        for key in ("rows", "online_written", "stale_rows", "late_rows"):
            total[key] += answer[key]
    return total
