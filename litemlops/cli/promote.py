"""Moving a model between homes: `models export`, `models import`, `promote`.

`promote NAME/VERSION --from staging --to prod` exports the version from the
`--from` environment's home, imports it into the `--to` one (every hash and the
feature views checked first), runs the target's `model_check` pipeline on it (the
target's thresholds, its champion, its data) and only then moves the alias. The
version is registered in the target before its checks run, so they load it by its
checked sha256 like any version; one that fails them gets no alias. Both homes
keep a run of the `promotions` experiment saying what moved, where and why.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from litemlops.cli.common import (
    cli_errors,
    config_platform,
    echo_json,
    home_option,
    load_config,
    open_platform,
)
from litemlops.cli.tracking import models

if TYPE_CHECKING:
    from litemlops.config import Config

GATE = "model_check"
"""The pipeline a target home checks a candidate with (the demo defines one)."""
_VERSION = re.compile(r"(?P<name>[^/@\s]+)(/(?P<version>[1-9][0-9]*)|@(?P<alias>[^/@\s]+))")


def _version(text: str) -> tuple[str, int | str]:
    """NAME/VERSION -> (name, version number); NAME@ALIAS -> (name, alias)."""
    found = _VERSION.fullmatch(text)
    if found is None:
        raise click.BadParameter(
            f"{text!r}: give the model as NAME/VERSION or NAME@ALIAS, e.g. driver_ranker/3"
        )
    return found["name"], int(found["version"]) if found["version"] else found["alias"]


def _number(platform: Any, name: str, version: int | str) -> int:
    """The version number `version` names in the platform's registry (an alias's now)."""
    if isinstance(version, int):
        return version
    return int(platform.registry.get_alias(name, version).version)


def _where(config: Config) -> dict[str, Any]:
    return {"home": str(config.home), "environment": config.environment}


@models.command("export")
@home_option
@click.argument("model", metavar="NAME/VERSION|NAME@ALIAS")
@click.argument("folder", metavar="[DIR]", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path),
              help="A new (or empty) folder to write into (or give it as DIR).")  # fmt: skip
@click.option("--format", "form", type=click.Choice(["bundle", "mlflow"]), default="bundle",
              show_default=True,
              help="bundle: litemlops' bundle; mlflow: an MLflow model folder.")  # fmt: skip
@click.pass_context
@cli_errors
def models_export(
    ctx: click.Context, home: Path | None, model: str, folder: Path | None, out: Path | None,
    form: str,
) -> None:  # fmt: skip
    """Write a model version as a bundle (its bytes, and a manifest with every file's
    sha256, its lineage, signature, environment and feature view definitions) or as an
    MLflow model folder that `mlflow.pyfunc.load_model(DIR)` loads."""
    from litemlops.store.bundle import export_bundle

    if (folder is None) == (out is None):
        raise click.UsageError("give the folder to write once: as DIR or with -o/--out")
    target = folder if folder is not None else out
    assert target is not None
    name, chosen = _version(model)
    with open_platform(ctx, home) as platform:
        version = _number(platform, name, chosen)
        if form == "mlflow":
            from litemlops.store.tracking.mlflow_export import export_mlflow_model

            export_mlflow_model(platform.registry, name, version, target)
            click.echo(f"exported {name}/{version} to {target} as an MLflow model")
            return
        bundle = export_bundle(platform.registry, platform.history, name, version, target,
                               source=_where(platform.config))  # fmt: skip
    click.echo(f"exported {name}/{version} to {bundle.folder} (bundle {bundle.digest[:12]})")


@models.command("import")
@home_option
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Register it under this name (default: its own).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def models_import(
    ctx: click.Context, home: Path | None, bundle: Path, name: str | None, as_json: bool
) -> None:
    """Register a bundle's model in this home once every hash and this home's feature
    views check out (it gets no alias; `promote` runs the checks and moves one)."""
    from litemlops.store.bundle import import_bundle, read_bundle

    found = read_bundle(bundle)
    with open_platform(ctx, home) as platform:
        version = import_bundle(platform.registry, platform.history, found, name=name,
                                target=_where(platform.config))  # fmt: skip
    if as_json:
        echo_json({"name": version.name, "version": version.version, "sha256": version.sha256})
        return
    click.echo(f"registered {found.name}/{found.version} as {version.name}/{version.version}")


@click.command("promote")
@home_option
@click.argument("model", metavar="NAME/VERSION|NAME@ALIAS")
@click.option("--from", "source", required=True, help="The environment the version is in.")
@click.option("--to", "target", required=True, help="The environment to promote it to.")
@click.option("--alias", default="champion", show_default=True, help="The alias it gets there.")
@click.option("--reason", default="", help="Why, for the alias history.")
@click.option("--skip-gate", is_flag=True,
              help=f"Do not run the target's {GATE} pipeline (recorded as ungated).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def promote(
    ctx: click.Context,
    home: Path | None,
    model: str,
    source: str,
    target: str,
    alias: str,
    reason: str,
    skip_gate: bool,
    as_json: bool,
) -> None:
    """Move MODEL from one environment's home to another's, through the target's checks."""
    from litemlops.store.bundle import export_bundle, import_bundle, record_export
    from litemlops.store.tracking.model_uri import check_alias

    name, chosen = _version(model)
    check_alias(alias)
    src = load_config(ctx, home, environment=source)
    dst = load_config(ctx, home, environment=target)
    if src.home == dst.home:
        raise click.ClickException(
            f"environments {source!r} and {target!r} share the home {src.home}: a promotion "
            "moves a model between homes; set a different home in each [env.<name>]"
        )
    with tempfile.TemporaryDirectory(prefix="litemlops-bundle-") as folder:
        with config_platform(src) as platform:
            version = _number(platform, name, chosen)
            bundle = export_bundle(platform.registry, platform.history, name, version,
                                   Path(folder) / "bundle", source=_where(src))  # fmt: skip
        with config_platform(dst) as platform:
            if not skip_gate and GATE not in platform.catalog.names():
                raise click.ClickException(
                    f"the {target} home has no {GATE} pipeline to check the model with; "
                    "define one (the demo application has it) or pass --skip-gate"
                )
            landed = import_bundle(platform.registry, platform.history, bundle,
                                   target=_where(dst))  # fmt: skip
    there = f"{landed.name}/{landed.version}"
    gate: dict[str, Any] = {"state": "skipped"}
    if not skip_gate:
        gate = run_pipeline(dst, GATE, {"model": there}, trigger="promotion")
    moved = gate["state"] in ("success", "skipped")
    already = False
    with config_platform(dst) as platform:
        if moved:
            why = reason or f"promoted from {source} ({name}/{version})"
            if skip_gate:
                why += " without the model checks"
            # The target may hold these bytes as its `alias` already: nothing moves.
            already = alias in platform.registry.get_model_version(
                landed.name, landed.version
            ).aliases
            if not already:
                platform.registry.set_alias(landed.name, alias, landed.version, reason=why)
    with config_platform(src) as platform:
        record_export(platform.registry, bundle,
                      {**_where(dst), "gate": gate["state"], "landed": there})  # fmt: skip
    outcome = {"source": f"{name}/{version}", "target": there, "environment": target,
               "alias": alias if moved else None, "moved": moved and not already,
               "gate": gate, "bundle": bundle.digest}  # fmt: skip
    if as_json:
        echo_json(outcome)
    elif already:
        click.echo(f"{name}/{version} ({source}) is {there} in {target}, which is {alias} "
                   f"there already: nothing moved; checks: {gate['state']}")  # fmt: skip
    elif moved:
        click.echo(f"promoted {name}/{version} ({source}) to {there} ({target}) as {alias}; "
                   f"checks: {gate['state']}")  # fmt: skip
    if not moved:
        click.echo(
            f"{there} is registered in {target} but not promoted: its checks failed "
            f"(run {gate.get('run_id')}: {gate.get('error')})",
            err=True,
        )
        ctx.exit(1)


def run_pipeline(
    config: Config, name: str, params: dict[str, Any], *, trigger: str
) -> dict[str, Any]:
    """Run pipeline `name` of the home (by its server when one serves it): its state,
    run id, first error, and each task's state and output (by task name)."""
    from litemlops.cli.remote import owner, path_part

    served = owner(config)
    if served is not None:
        with served:
            started = served.call("POST", f"/api/pipelines/{path_part(name)}/trigger",
                                  {"params": params})  # fmt: skip
            run = served.follow_run(started)
        tasks = {t["task"]: t for t in run.get("tasks", [])}
    else:
        with config_platform(config) as platform:
            runner = platform.pipelines
            done = runner.run(platform.catalog.get(name), params, trigger=trigger)
            run = {"state": done.state, "run_id": done.run_id, "error": done.error}
            tasks = {a.task: {"task": a.task, "state": a.state, "error": a.error,
                              "output": a.output}
                     for a in runner.task_runs(done.run_id)}  # fmt: skip
    errors = [t["error"] for t in tasks.values() if t.get("error")]
    return {"state": run["state"], "run_id": run["run_id"],
            "error": errors[-1] if errors else run.get("error"), "tasks": tasks}  # fmt: skip
