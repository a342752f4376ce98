"""`litemlops check`: a home's checks, for CI and before a release: exit 1 when one fails.

- pipelines: every pipeline's default params pass its own checks, with its path
  params inside the allowed folders (what a scheduled run would be refused for);
- data and model: the home's `model_check` pipeline runs on the home's own data:
  its data tests (columns, dtypes, labels a model can learn) and its model tests
  (the thresholds, and no worse than the champion) on a version (default: the
  champion). It runs like any run, by the server when one serves the home, and
  stays in the pipeline history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, config_platform, echo_json, home_option, load_config
from litemlops.cli.promote import GATE, run_pipeline
from litemlops.cli.tracking import _table

_DATA = ("extract", "validate_data", "prepare")
"""The model check's tasks that read and test the data (the others test the model)."""


@click.command("check")
@home_option
@click.option("--model", default="",
              help="The version to check, NAME/N or NAME@ALIAS (default: champion).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@cli_errors
def check(ctx: click.Context, home: Path | None, model: str, as_json: bool) -> None:
    """Run the home's pipeline, data and model checks; exit 1 when one fails."""
    from litemlops.errors import LitemlopsError

    config = load_config(ctx, home)
    found: list[dict[str, Any]] = []
    with config_platform(config) as platform:
        names = platform.catalog.names()
        for name in names:
            try:
                platform.pipelines.run_params(platform.catalog.get(name))
                found.append(_line("pipeline", name, True, "params and paths check out"))
            except LitemlopsError as exc:
                found.append(_line("pipeline", name, False, str(exc)))
    if GATE not in names:
        why = f"this home has no {GATE} pipeline: its applications define the data and model checks"
        found.append(_line("model", GATE, False, why))
    else:
        run = run_pipeline(config, GATE, {"model": model}, trigger="check")
        tasks = run["tasks"]
        for kind, steps in (("data", _DATA), ("model", tuple(t for t in tasks if t not in _DATA))):
            for step in steps:
                task = tasks.get(step)
                if task is None:
                    found.append(_line(kind, step, False, f"not run: an earlier task failed "
                                                          f"(run {run['run_id']})"))  # fmt: skip
                    continue
                ok = task["state"] == "success"
                found.append(_line(kind, step, ok, _said(task) if ok else str(task["error"])))
    failed = [c for c in found if not c["passed"]]
    if as_json:
        echo_json({"passed": not failed, "checks": found})
    else:
        _table([{**c, "passed": "ok" if c["passed"] else "FAILED"} for c in found],
               ["kind", "check", "passed", "detail"])  # fmt: skip
        click.echo(f"\n{len(found) - len(failed)} of {len(found)} checks passed")
    if failed:
        ctx.exit(1)


def _line(kind: str, name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"kind": kind, "check": name, "passed": passed, "detail": detail}


def _said(task: dict[str, Any]) -> str:
    """A task's output in a few words: its rows, or the version and metrics it checked."""
    out = task.get("output") or {}
    if "metrics" in out:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(out["metrics"].items()))
        return f"{out.get('model')}/{out.get('version')}: {shown}"
    if "rows" in out:
        return f"{out['rows']} rows"
    if "test_rows" in out:
        return f"{out['train_rows']} train / {out['test_rows']} test rows"
    return "ok"
