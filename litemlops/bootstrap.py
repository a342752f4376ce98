"""What `litemlops run` does before it serves: prepare the demo project on a fresh home."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litemlops import events
from litemlops.logger import get_logger
from litemlops.platform import Platform

if TYPE_CHECKING:
    import pandas as pd

    from litemlops.scheduler.runner import PipelineRun

log = get_logger("litemlops.bootstrap")


@dataclass
class BootstrapReport:
    fresh: bool
    steps: list[str] = field(default_factory=list)
    training_rows: pd.DataFrame | None = None
    online: dict[str, list[object]] | None = None
    pipeline_runs: list[PipelineRun] = field(default_factory=list)
    #: Why no champion model exists after the set-up (None when one does).
    no_champion: str | None = None


def bootstrap(platform: Platform) -> BootstrapReport:
    """Set the demo project up on a fresh home, finish an interrupted set-up, else catch up.

    A fresh home gets seeded demo files in `data/`, the demo definitions, then a
    run of the `data` pipeline and of `training`, so a champion model exists.
    Each step is idempotent and `runs/bootstrap/done` is written only after the
    last, so a run killed half-way is completed by the next one. A home that
    holds other views and no demo is the user's project: nothing is added.
    The report carries a few point-in-time training rows and an online lookup
    when the demo view is there, so the caller can show that the store answers.
    """
    from litemlops.demo import definitions as demo

    store = platform.history
    config = platform.config
    marker_dir = config.runs_dir / "bootstrap"
    done = marker_dir / "done"
    views = {v.name for v in store.list_feature_views()}
    demo_only_empty = views == {"driver_stats"} and not store.describe("driver_stats")[
        "offline_rows"
    ]
    wanted = not done.exists() and (not views or marker_dir.exists() or demo_only_empty)
    report = BootstrapReport(fresh=wanted)
    if wanted:
        marker_dir.mkdir(parents=True, exist_ok=True)
        _set_up_demo(platform, report)
        _run_demo_pipelines(platform, report)
    else:
        for result in store.materialize():
            report.steps.append(
                f"materialized {result.view}: {result.entities_written} entities updated "
                f"online, watermark {result.watermark:%Y-%m-%d %H:%M:%S}Z"
                if result.watermark
                else f"materialized {result.view}"
            )
    if wanted and report.no_champion is None:
        # Without a champion the set-up is not finished: the next start tries again.
        done.write_text("demo project set up\n")
    if "driver_stats" in {v.name for v in store.list_feature_views()}:
        labels_path = config.data_dir / "labels.parquet"
        if labels_path.exists():
            import pandas as pd

            labels = pd.read_parquet(labels_path).head(5)
            report.training_rows = store.get_historical_features(labels, demo.FEATURES)
        ids = [{"driver_id": 1001 + i} for i in range(min(3, config.demo.drivers))]
        report.online = store.get_online_features(demo.FEATURES, ids).to_dict()
    log.info(events.RUN_BOOTSTRAPPED, home=str(config.home), steps=report.steps)
    return report


def _set_up_demo(platform: Platform, report: BootstrapReport) -> None:
    """Seeded demo files where the pipelines look for them, and the demo definitions."""
    from litemlops.demo import definitions as demo
    from litemlops.demo.common import write_table
    from litemlops.demo.generator import generate_driver_stats, generate_labels

    store = platform.history
    config = platform.config
    labels_path = config.data_dir / "labels.parquet"
    requests_path = config.data_dir / "batch_requests.csv"
    if not labels_path.exists():
        stats = generate_driver_stats(
            config.demo.drivers,
            config.demo.hours,
            end=platform.clock().replace(microsecond=0),
            random_state=config.demo.seed,
        )
        labels = generate_labels(stats, config.demo.labels, random_state=config.demo.seed)
        config.incoming_dir.mkdir(parents=True, exist_ok=True)
        write_table(stats, config.incoming_dir / "driver_stats.parquet")
        write_table(labels, labels_path)
        report.steps.append(
            f"generated {len(stats)} driver_stats rows for {config.demo.drivers} drivers over "
            f"{config.demo.hours} h into data/incoming/, and {len(labels)} labels "
            f"(seed {config.demo.seed})"
        )
    if not requests_path.exists():
        import pandas as pd

        ids = pd.DataFrame({"driver_id": range(1001, 1001 + config.demo.drivers)})
        write_table(ids, requests_path)
    if store.apply([demo.driver, demo.driver_stats]).changed:
        report.steps.append("applied entity 'driver' and feature view 'driver_stats'")


def _run_demo_pipelines(platform: Platform, report: BootstrapReport) -> None:
    """`data`, then `training` unless a champion exists (a set-up finished before a crash)."""
    from litemlops.errors import AliasNotFoundError, ModelNotFoundError

    model = platform.config.training.model_name
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
