"""The command line: each command parses, makes one library call, renders.

Library errors (`LitemlopsError`) become one-line CLI errors here and only here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

import litemlops
from litemlops.errors import LitemlopsError

if TYPE_CHECKING:
    from litemlops.config import Config
    from litemlops.platform import Platform

F = TypeVar("F", bound=Callable[..., Any])


def _home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Home directory (default: $LITEMLOPS_HOME, then ./.litemlops).",
    )(func)


def _config(ctx: click.Context, home: Path | None) -> Config:
    from litemlops.config import Config

    root = ctx.find_root()
    chosen = home if home is not None else (root.params.get("home") if root else None)
    return Config.load(chosen)


@contextmanager
def _platform(
    ctx: click.Context, home: Path | None, *, quiet: bool = True
) -> Iterator[Platform]:
    from litemlops.logsetup import configure_logging, shutdown_logging
    from litemlops.platform import Platform

    config = _config(ctx, home)
    config.ensure_home()
    # Commands print their own results; the console gets only warnings and worse.
    configure_logging(config, console_level="warning" if quiet else None)
    try:
        with Platform(config) as platform:
            yield platform
    finally:
        shutdown_logging()


def _errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LitemlopsError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper  # type: ignore[return-value]


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(litemlops.__version__, prog_name="litemlops")
@_home_option
def cli(home: Path | None) -> None:
    """litemlops: feature store, pipelines, tracking, serving and monitoring in one process."""


@cli.command()
@_home_option
@click.option("--once", is_flag=True, help="Bootstrap, report, and exit (for scripts and tests).")
@click.pass_context
@_errors
def run(ctx: click.Context, home: Path | None, once: bool) -> None:
    """The main job: prepare the home (demo project on a fresh one) and run the platform."""
    from litemlops.bootstrap import bootstrap

    with _platform(ctx, home) as platform:
        click.echo(f"litemlops {litemlops.__version__} - home {platform.config.home}")
        report = bootstrap(platform)
        click.echo("fresh home: set up the demo project" if report.fresh else "existing home")
        for step in report.steps:
            click.echo(f"  - {step}")
        if report.training_rows is not None:
            click.echo("\npoint-in-time training rows (labels x driver_stats):")
            click.echo(report.training_rows.to_string(index=False))
        if report.online is not None:
            import pandas as pd

            click.echo("\nonline lookup:")
            click.echo(pd.DataFrame(report.online).to_string(index=False))
        click.echo(f"\nevents: {platform.config.logs_dir / 'events.jsonl'}")
    if not once:
        click.echo("nothing runs in the background yet (scheduler and server come later); done.")


@cli.group()
def features() -> None:
    """Feature store: definitions, ingestion, training data, online values."""


@features.command("apply")
@_home_option
@click.argument("definitions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Allow incompatible changes (old rows are archived).")
@click.pass_context
@_errors
def features_apply(ctx: click.Context, home: Path | None, definitions: Path, force: bool) -> None:
    """Apply the entities and feature views defined in a Python module."""
    from litemlops.store.repo import load_definitions

    objects = load_definitions(definitions)
    with _platform(ctx, home) as platform:
        result = platform.features.apply(objects, force=force)
    click.echo(f"changed: {', '.join(result.changed) or '-'}")
    click.echo(f"unchanged: {', '.join(result.unchanged) or '-'}")


@features.command("list")
@_home_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def features_list(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """List feature views."""
    with _platform(ctx, home) as platform:
        store = platform.features
        rows = [store.describe(v.name) for v in store.list_feature_views()]
    if as_json:
        _echo_json(rows)
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
@_home_option
@click.argument("view")
@click.pass_context
@_errors
def features_describe(ctx: click.Context, home: Path | None, view: str) -> None:
    """Show a feature view: definition, row counts, time range, freshness."""
    with _platform(ctx, home) as platform:
        _echo_json(platform.features.describe(view))


@features.command("ingest")
@_home_option
@click.argument("view")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@_errors
def features_ingest(ctx: click.Context, home: Path | None, view: str, data: Path) -> None:
    """Append rows from a Parquet or CSV file to a feature view (all or nothing)."""
    with _platform(ctx, home) as platform, _stages(["validate and write"]) as step:
        result = platform.features.ingest(view, data)
        step()
    click.echo(f"ingested {result.rows} rows into {view} (batch {result.batch})")


@features.command("materialize")
@_home_option
@click.option("--start", help="ISO time; (re)write rows from here (default: incremental).")
@click.option("--end", help="ISO time; default now.")
@click.option("--view", "views", multiple=True, help="Only this view (repeatable).")
@click.pass_context
@_errors
def features_materialize(
    ctx: click.Context,
    home: Path | None,
    start: str | None,
    end: str | None,
    views: tuple[str, ...],
) -> None:
    """Copy the latest values per entity into the online store."""
    from tqdm import tqdm

    with _platform(ctx, home) as platform:
        store = platform.features
        names = list(views) or [v.name for v in store.list_feature_views() if v.online]
        with tqdm(
            total=len(names), desc="materialize", unit="view", file=sys.stderr, disable=None
        ) as bar:
            results = platform.features.materialize(
                end=_parse_time(end), start=_parse_time(start), views=names,
                progress=lambda _: bar.update(),
            )
    for r in results:
        click.echo(f"{r.view}: {r.entities_written} entities written, watermark {r.watermark}")


@features.command("historical")
@_home_option
@click.option("--entities", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Parquet or CSV with join keys and a timestamp column.")
@click.option("--features", "refs", required=True, help="Comma-separated view:feature list.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .parquet or .csv.")
@click.option("--timestamp-column", default="event_timestamp", show_default=True)
@click.option("--full-feature-names", is_flag=True)
@click.pass_context
@_errors
def features_historical(
    ctx: click.Context, home: Path | None, entities: Path, refs: str, out: Path,
    timestamp_column: str, full_feature_names: bool,
) -> None:
    """Build point-in-time correct training data for entity rows in a file."""
    from litemlops.store.files import check_output, read_frame, write_frame

    check_output(out)
    refs_list = _split(refs)
    with _platform(ctx, home) as platform, _stages(["read", "join", "write"]) as step:
        keys = platform.features.join_keys(refs_list)
        frame = read_frame(entities, text_columns=[k for k, t in keys.items() if t == "string"])
        step()
        result = platform.features.get_historical_features(
            frame, refs_list, full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
        )
        step()
        write_frame(result, out)
        step()
    click.echo(f"wrote {len(result)} rows x {len(result.columns)} columns to {out}")


@features.command("online")
@_home_option
@click.option("--features", "refs", required=True, help="Comma-separated view:feature list.")
@click.option("--entity", "entity_args", multiple=True, required=True,
              help="key=value (repeat for several rows; key1=v1,key2=v2 for composite keys).")
@click.option("--event-timestamps", is_flag=True, help="Also return each value's event time.")
@click.pass_context
@_errors
def features_online(
    ctx: click.Context, home: Path | None, refs: str, entity_args: tuple[str, ...],
    event_timestamps: bool,
) -> None:
    """Look up online feature values (JSON out)."""
    with _platform(ctx, home) as platform:
        keys = platform.features.join_keys(_split(refs))
        rows = [_entity_row(arg, keys) for arg in entity_args]
        result = platform.features.get_online_features(
            _split(refs), rows, include_event_timestamps=event_timestamps
        )
    _echo_json(result.to_dict())


@features.command("push")
@_home_option
@click.argument("view")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", type=click.Choice(["online", "offline", "both"]), default="online",
              show_default=True)
@click.pass_context
@_errors
def features_push(ctx: click.Context, home: Path | None, view: str, data: Path, to: str) -> None:
    """Push fresh rows from a file to the online and/or offline store."""
    with _platform(ctx, home) as platform:
        r = platform.features.push(view, data, to=to)  # type: ignore[arg-type]
    click.echo(
        f"pushed {r.rows} rows to {r.to}: {r.online_written} applied online, "
        f"{r.stale_rows} older than the online value, {r.late_rows} late"
    )


@cli.group()
def demo() -> None:
    """The demo project's data."""


@demo.command("generate")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--drivers", default=5, show_default=True)
@click.option("--hours", default=48, show_default=True)
@click.option("--labels", default=40, show_default=True)
@click.option("--seed", default=42, show_default=True)
@_errors
def demo_generate(out: Path, drivers: int, hours: int, labels: int, seed: int) -> None:
    """Write seeded demo CSVs (driver_stats.csv, labels.csv)."""
    from litemlops.demo.generator import write_sample

    paths = write_sample(out, n_drivers=drivers, hours=hours, n_labels=labels, random_state=seed)
    for path in paths.values():
        click.echo(str(path))


def _split(refs: str) -> list[str]:
    return [r.strip() for r in refs.split(",") if r.strip()]


def _entity_row(arg: str, keys: dict[str, str]) -> dict[str, Any]:
    """`k1=v1,k2=v2` typed by the join keys' dtypes (a string key "007" stays text)."""
    row: dict[str, Any] = {}
    for part in arg.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{arg!r}: expected key=value", param_hint="--entity")
        if keys.get(key, "string") == "string":
            row[key] = value
            continue
        try:
            row[key] = int(value)
        except ValueError:
            raise click.BadParameter(
                f"{key}={value!r}: {key} is an integer key", param_hint="--entity"
            ) from None
    return row


@contextmanager
def _stages(names: list[str]) -> Iterator[Callable[[], None]]:
    from tqdm import tqdm

    # disable=None: bars only on a terminal, never in logs or pipes.
    with tqdm(total=len(names), unit="step", file=sys.stderr, leave=False, disable=None) as bar:
        bar.set_description(names[0])

        def step() -> None:
            bar.update()
            if bar.n < len(names):
                bar.set_description(names[bar.n])

        yield step


def main() -> None:
    cli(prog_name="litemlops")
