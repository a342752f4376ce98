"""`litemlops runs ...` and `litemlops models ...`: tracking and the registry."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, open_platform
from litemlops.cli.remote import owner, path_part
from litemlops.store.tracking.model_uri import ModelURI


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Render rows as aligned text columns."""
    if not rows:
        return
    text = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in text)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")
    return str(value)


@click.group()
def runs() -> None:
    """Experiment runs: list, show, compare."""


@runs.command("list")
@home_option
@click.option("--experiment", "experiments", multiple=True, help="Only these experiments.")
@click.option(
    "--filter",
    "filter_string",
    default="",
    help="e.g. \"metrics.auc > 0.8 and params.model = 'lr'\"",
)
@click.option("--order-by", multiple=True, help="e.g. 'metrics.auc DESC' (repeatable).")
@click.option("--max", "max_results", default=20, show_default=True)
@click.option("--page-token", default=None, help="Continue a listing (printed after a page).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def runs_list(
    ctx: click.Context,
    home: Path | None,
    experiments: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """Search runs, newest first unless ordered otherwise."""
    from litemlops.store.tracking.search import search_runs

    with open_platform(ctx, home) as platform:
        page = search_runs(
            platform.tracker,
            list(experiments) or None,
            filter_string,
            list(order_by) or None,
            max_results,
            page_token,
        )
    if as_json:
        echo_json({"runs": [asdict(r) for r in page.runs], "next_page_token": page.next_page_token})
        return
    metric_keys = sorted({k for r in page.runs for k in r.metrics})[:6]
    rows = [
        {
            "run_id": r.run_id[:12],
            "experiment": r.experiment,
            "name": r.name,
            "status": r.status,
            "start": r.start_time,
            **{k: r.metrics.get(k) for k in metric_keys},
        }
        for r in page.runs
    ]
    if not rows:
        click.echo("no runs match")
    _table(rows, ["run_id", "experiment", "name", "status", "start", *metric_keys])
    if page.next_page_token:
        click.echo(f"more: --page-token {page.next_page_token}")


@runs.command("show")
@home_option
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def runs_show(ctx: click.Context, home: Path | None, run_id: str, as_json: bool) -> None:
    """A run: attributes, params, latest metrics, tags, artifacts, models, inputs."""
    with open_platform(ctx, home) as platform:
        tracker = platform.tracker
        info = tracker.get_run(tracker.resolve_run_id(run_id))
        detail = {
            **asdict(info),
            "artifacts": tracker.artifact_list(info.run_id),
            "models": [
                {
                    "name": m.name,
                    "sha256": m.sha256,
                    "uri": str(ModelURI(m.name, run_id=info.run_id)),
                }
                for m in tracker.logged_models(info.run_id)
            ],
            "inputs": tracker.run_inputs(info.run_id),
        }
    if as_json:
        echo_json(detail)
        return
    for key in (
        "run_id",
        "experiment",
        "name",
        "status",
        "start_time",
        "end_time",
        "parent_run_id",
        "git_commit",
        "error",
    ):
        if detail[key] is not None:
            click.echo(f"{key}: {_cell(detail[key])}")
    for section in ("params", "metrics", "tags"):
        if detail[section]:
            click.echo(f"{section}:")
            for k, v in detail[section].items():
                click.echo(f"  {k} = {_cell(v)}")
    for section in ("artifacts", "models", "inputs"):
        if detail[section]:
            click.echo(f"{section}:")
            for item in detail[section]:
                click.echo("  " + ", ".join(f"{k}={_cell(v)}" for k, v in item.items()))


@runs.command("compare")
@home_option
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def runs_compare(
    ctx: click.Context, home: Path | None, run_ids: tuple[str, ...], as_json: bool
) -> None:
    """Params and metrics of several runs side by side; differing params are marked."""
    with open_platform(ctx, home) as platform:
        infos = [platform.tracker.get_run(platform.tracker.resolve_run_id(r)) for r in run_ids]
    columns = [i.run_id[:12] for i in infos]
    rows = []
    for kind in ("params", "metrics"):
        keys = sorted({k for i in infos for k in getattr(i, kind)})
        for key in keys:
            values = [getattr(i, kind).get(key) for i in infos]
            differs = kind == "params" and len({str(v) for v in values}) > 1
            rows.append(
                {
                    "key": f"{kind}.{key}{' *' if differs else ''}",
                    **dict(zip(columns, values, strict=True)),
                }
            )
    if as_json:
        echo_json({"runs": [i.run_id for i in infos], "rows": rows})
        return
    _table(rows, ["key", *columns])


@click.group()
def models() -> None:
    """The model registry: versions, aliases, rollback, history."""


@models.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def models_list(ctx: click.Context, home: Path | None, as_json: bool) -> None:
    """Registered models with their latest version and aliases."""
    with open_platform(ctx, home) as platform:
        found = platform.registry.list_registered_models()
    if as_json:
        echo_json([asdict(m) for m in found])
        return
    if not found:
        click.echo("no registered models")
    _table(
        [
            {
                "name": m.name,
                "latest": m.latest_version,
                "aliases": ", ".join(f"{a}=v{v}" for a, v in m.aliases.items()),
                "updated": m.updated_at,
            }
            for m in found
        ],
        ["name", "latest", "aliases", "updated"],
    )


@models.command("show")
@home_option
@click.argument("name")
@click.option(
    "--version",
    type=click.IntRange(1, 2**63 - 1),
    default=None,
    help="One version with its lineage.",
)
@click.pass_context
@cli_errors
def models_show(ctx: click.Context, home: Path | None, name: str, version: int | None) -> None:
    """A registered model (JSON), or one version with its lineage."""
    with open_platform(ctx, home) as platform:
        registry = platform.registry
        shown = (
            asdict(registry.get_model_version(name, version))
            if version is not None
            else asdict(registry.get_registered_model(name))
        )
    echo_json(shown)


@models.command("versions")
@home_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def models_versions(ctx: click.Context, home: Path | None, name: str, as_json: bool) -> None:
    """Versions of a model, newest first."""
    with open_platform(ctx, home) as platform:
        versions = platform.registry.list_versions(name)
    if as_json:
        echo_json([asdict(v) for v in versions])
        return
    _table(
        [
            {
                "version": v.version,
                "aliases": ", ".join(v.aliases),
                "run_id": v.run_id[:12],
                "created": v.created_at,
                "sha256": v.sha256[:12],
            }
            for v in versions
        ],
        ["version", "aliases", "run_id", "created", "sha256"],
    )


@models.command("register")
@home_option
@click.argument("source")
@click.argument("name")
@click.option("--description", default="", help="Kept with the version.")
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="A new version even when a version of NAME holds the very same model bytes.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def models_register(
    ctx: click.Context,
    home: Path | None,
    source: str,
    name: str,
    description: str,
    allow_duplicate: bool,
    as_json: bool,
) -> None:
    """Register SOURCE (`runs:/<run_id>/<model>`, or a run id or 6+ character prefix for
    its model "model") as the next version of NAME.

    When a version of NAME already holds the same bytes (sha256), that version is
    the answer and nothing is added, unless --allow-duplicate.
    """
    from litemlops.errors import ModelNotFoundError

    with open_platform(ctx, home) as platform:
        uri = source  # the registry reads the URI and says what is wrong with it
        if all(c in "0123456789abcdef" for c in source):  # a run id or a prefix of one
            uri = str(ModelURI("model", run_id=platform.tracker.resolve_run_id(source)))
        try:
            before = {v.version for v in platform.registry.list_versions(name)}
        except ModelNotFoundError:
            before = set()
        version = platform.registry.register_model(
            uri, name, description=description, allow_duplicate=allow_duplicate
        )
    reused = version.version in before
    if as_json:
        echo_json({**asdict(version), "reused": reused})
    elif reused:
        click.echo(
            f"{name} version {version.version} already holds these model bytes (sha256 "
            f"{version.sha256[:12]}); nothing registered (--allow-duplicate for a new version)"
        )
    else:
        click.echo(f"{name} version {version.version} registered from {uri}")


@models.command("alias")
@home_option
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=click.IntRange(1, 2**63 - 1))
@click.option("--reason", default="", help="Why (kept in the alias history).")
@click.pass_context
@cli_errors
def models_alias(
    ctx: click.Context, home: Path | None, name: str, alias: str, version: int, reason: str
) -> None:
    """Point ALIAS of model NAME at VERSION (through the server while `run` serves the
    home, which then answers NAME@ALIAS with it at once)."""
    served = owner(load_config(ctx, home))
    if served is not None:
        with served:
            moved = served.call(
                "PUT",
                f"/api/models/{path_part(name)}/aliases/{path_part(alias)}",
                {"version": version, "reason": reason},
            )
        _say_moved(moved)
        return
    with open_platform(ctx, home) as platform:
        done = platform.registry.set_alias(name, alias, version, reason=reason)
    click.echo(f"{name}@{alias} -> version {done.version}")


def _say_moved(answer: dict[str, Any]) -> None:
    click.echo(f"{answer['name']}@{answer['alias']} -> version {answer['version']}")
    if answer.get("warning"):
        click.echo(f"warning: {answer['warning']}", err=True)


@models.command("rollback")
@home_option
@click.argument("name")
@click.argument("alias")
@click.option("--reason", default="", help="Why (kept in the alias history).")
@click.pass_context
@cli_errors
def models_rollback(
    ctx: click.Context, home: Path | None, name: str, alias: str, reason: str
) -> None:
    """Point ALIAS back at the version it held before (through the server while `run`
    serves the home)."""
    served = owner(load_config(ctx, home))
    if served is not None:
        with served:
            moved = served.call(
                "POST",
                f"/api/models/{path_part(name)}/aliases/{path_part(alias)}/rollback",
                {"reason": reason},
            )
        _say_moved(moved)
        return
    with open_platform(ctx, home) as platform:
        back = platform.registry.rollback(name, alias, reason=reason)
    click.echo(f"{name}@{alias} -> version {back.version}")


@models.command("history")
@home_option
@click.argument("name")
@click.option("--alias", default=None, help="Only this alias.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def models_history(
    ctx: click.Context, home: Path | None, name: str, alias: str | None, as_json: bool
) -> None:
    """Every move of the model's aliases, oldest first."""
    with open_platform(ctx, home) as platform:
        changes = platform.registry.alias_history(name, alias)
    if as_json:
        echo_json([asdict(c) for c in changes])
        return
    _table(
        [
            {
                "at": c.at,
                "alias": c.alias,
                "from": c.from_version,
                "to": c.to_version,
                "reason": c.reason,
            }
            for c in changes
        ],
        ["at", "alias", "from", "to", "reason"],
    )
