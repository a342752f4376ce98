"""The demo project's set-up on a fresh home: seeded data, its definitions, then a run
of the `data` and `training` pipelines, so a champion model exists when `run` serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litemlops.bootstrap import BootstrapReport
    from litemlops.platform import Platform
    from litemlops.scheduler.runner import PipelineRun


def set_up(platform: Platform, report: BootstrapReport) -> None:
    """Set the demo project up on a fresh home, or finish an interrupted set-up.

    A fresh home gets seeded demo files in `data/`, the demo definitions, then a
    run of the `data` pipeline and of `training`, so a champion model exists.
    Each step is idempotent and `runs/bootstrap/done` is written only after the
    last, so a run killed half-way is completed by the next one. A home that
    holds other views and no demo is the user's project: nothing is added.
    """
    store = platform.history
    config = platform.config
    marker_dir = config.runs_dir / "bootstrap"
    done = marker_dir / "done"
    views = {v.name for v in store.list_feature_views()}
    demo_only_empty = views == {"driver_stats"} and not store.describe("driver_stats")[
        "offline_rows"
    ]
    if done.exists() or not (not views or marker_dir.exists() or demo_only_empty):
        return
    report.fresh = True
    marker_dir.mkdir(parents=True, exist_ok=True)
    _set_up_demo(platform, report)
    _run_demo_pipelines(platform, report)
    if report.no_champion is None:
        # Without a champion the set-up is not finished: the next start tries again.
        done.write_text("demo project set up\n")


def describe(platform: Platform, report: BootstrapReport) -> None:
    """A few point-in-time training rows and an online lookup, when the demo view is
    there, so the caller can show that the store answers."""
    from litemlops.demo import definitions as demo

    store = platform.history
    config = platform.config
    if "driver_stats" not in {v.name for v in store.list_feature_views()}:
        return
    labels_path = config.data_dir / "labels.parquet"
    if labels_path.exists():
        import pandas as pd

        labels = pd.read_parquet(labels_path).head(5)
        report.training_rows = store.get_historical_features(labels, demo.FEATURES)
    ids = [{"driver_id": 1001 + i} for i in range(min(3, config.section("demo").drivers))]
    report.online = store.get_online_features(demo.FEATURES, ids).to_dict()


def _set_up_demo(platform: Platform, report: BootstrapReport) -> None:
    """Seeded demo files where the pipelines look for them, and the demo definitions."""
    from litemlops.demo import definitions as demo
    from litemlops.demo.common import write_table
    from litemlops.demo.generator import generate_driver_stats, generate_labels

    store = platform.history
    config = platform.config
    sizes = config.section("demo")
    labels_path = config.data_dir / "labels.parquet"
    requests_path = config.data_dir / "batch_requests.csv"
    if not labels_path.exists():
        stats = generate_driver_stats(
            sizes.drivers,
            sizes.hours,
            end=platform.clock().replace(microsecond=0),
            random_state=sizes.seed,
        )
        labels = generate_labels(stats, sizes.labels, random_state=sizes.seed)
        config.incoming_dir.mkdir(parents=True, exist_ok=True)
        write_table(stats, config.incoming_dir / "driver_stats.parquet")
        write_table(labels, labels_path)
        report.steps.append(
            f"generated {len(stats)} driver_stats rows for {sizes.drivers} drivers over "
            f"{sizes.hours} h into data/incoming/, and {len(labels)} labels "
            f"(seed {sizes.seed})"
        )
    if not requests_path.exists():
        import pandas as pd

        ids = pd.DataFrame({"driver_id": range(1001, 1001 + sizes.drivers)})
        write_table(ids, requests_path)
    if store.apply([demo.driver, demo.driver_stats]).changed:
        report.steps.append("applied entity 'driver' and feature view 'driver_stats'")


def _run_demo_pipelines(platform: Platform, report: BootstrapReport) -> None:
    """`data`, then `training` unless a champion exists (a set-up finished before a crash)."""
    from litemlops.errors import AliasNotFoundError, ModelNotFoundError

    model = platform.config.section("training").model_name
    for name in ("data", "training"):
        if name == "training":
            try:
                champion = platform.registry.get_alias(model, "champion")
            except (ModelNotFoundError, AliasNotFoundError):
                pass
            else:
                report.steps.append(f"champion {model} v{champion.version} exists already")
                return
        run = platform.pipelines.run(platform.catalog.get(name), trigger="bootstrap")
        report.pipeline_runs.append(run)
        report.steps.append(f"pipeline {name}: {run.state} (run {run.run_id})")
        if run.state != "success":
            report.no_champion = (
                f"pipeline {name} {run.state}: {_first_error(platform, run)}; "
                f"see `litemlops pipelines show {run.run_id}`"
            )
            return
    output = platform.pipelines.task_runs(report.pipeline_runs[-1].run_id)[-1].output
    report.steps.append(f"registered {output['name']} v{output['version']} as {output['alias']}")


def _first_error(platform: Platform, run: PipelineRun) -> str:
    for attempt in platform.pipelines.task_runs(run.run_id):
        if attempt.state == "failed":
            return f"task {attempt.task}: {attempt.error}"
    return run.error or "unknown error"
