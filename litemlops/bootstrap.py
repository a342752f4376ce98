"""What `litemlops run` does before it serves: prepare the demo project on a fresh home."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from litemlops import events
from litemlops.platform import Platform

if TYPE_CHECKING:
    import pandas as pd

log = structlog.get_logger("litemlops.bootstrap")


@dataclass
class BootstrapReport:
    fresh: bool
    steps: list[str] = field(default_factory=list)
    training_rows: pd.DataFrame | None = None
    online: dict[str, list[object]] | None = None


def bootstrap(platform: Platform) -> BootstrapReport:
    """Set the demo project up on a fresh home, finish an interrupted set-up, else catch up.

    Each step is idempotent and `runs/bootstrap/done` is written only after the
    last, so a run killed half-way is completed by the next one. A home that
    holds other views and no demo is the user's project: nothing is added.
    The report carries a few point-in-time training rows and an online lookup
    when the demo view is there, so the caller can show that the store answers.
    """
    from litemlops.demo import definitions as demo

    store = platform.features
    config = platform.config
    data_dir = config.runs_dir / "bootstrap"
    done = data_dir / "done"
    views = {v.name for v in store.list_feature_views()}
    demo_only_empty = views == {"driver_stats"} and not store.describe("driver_stats")[
        "offline_rows"
    ]
    wanted = not done.exists() and (not views or data_dir.exists() or demo_only_empty)
    report = BootstrapReport(fresh=wanted)
    if wanted:
        _set_up_demo(platform, data_dir, report)
    for result in store.materialize():
        report.steps.append(
            f"materialized {result.view}: {result.entities_written} entities updated online, "
            f"watermark {result.watermark:%Y-%m-%d %H:%M:%S}Z"
            if result.watermark
            else f"materialized {result.view}"
        )
    if wanted:
        done.write_text("demo project set up\n")
    if "driver_stats" in {v.name for v in store.list_feature_views()}:
        labels_path = data_dir / "labels.parquet"
        if labels_path.exists():
            import pandas as pd

            labels = pd.read_parquet(labels_path).head(5)
            report.training_rows = store.get_historical_features(labels, demo.FEATURES)
        ids = [{"driver_id": 1001 + i} for i in range(min(3, config.demo.drivers))]
        report.online = store.get_online_features(demo.FEATURES, ids).to_dict()
    log.info(events.RUN_BOOTSTRAPPED, home=str(config.home), steps=report.steps)
    return report


def _set_up_demo(platform: Platform, data_dir: Path, report: BootstrapReport) -> None:
    from litemlops.demo import definitions as demo
    from litemlops.demo.generator import generate_driver_stats, generate_labels

    store = platform.features
    config = platform.config
    stats_path = data_dir / "driver_stats.parquet"
    labels_path = data_dir / "labels.parquet"
    if not (stats_path.exists() and labels_path.exists()):
        stats = generate_driver_stats(
            config.demo.drivers,
            config.demo.hours,
            end=platform.clock().replace(microsecond=0),
            random_state=config.demo.seed,
        )
        labels = generate_labels(stats, config.demo.labels, random_state=config.demo.seed)
        data_dir.mkdir(parents=True, exist_ok=True)
        _write_parquet(stats, stats_path)
        _write_parquet(labels, labels_path)
        report.steps.append(
            f"generated {len(stats)} driver_stats rows for {config.demo.drivers} drivers over "
            f"{config.demo.hours} h and {len(labels)} labels (seed {config.demo.seed})"
        )
    if store.apply([demo.driver, demo.driver_stats]).changed:
        report.steps.append("applied entity 'driver' and feature view 'driver_stats'")
    if store.describe("driver_stats")["offline_rows"] == 0:
        ingested = store.ingest("driver_stats", stats_path)
        report.steps.append(f"ingested {ingested.rows} rows into driver_stats")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # a crash never leaves half a file under the final name
