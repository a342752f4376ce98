"""What `litemlops run` does before it serves: prepare the demo project on a fresh home."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """On a fresh home: generate demo data, apply, ingest, materialize; else catch up.

    Either way the report carries a few point-in-time training rows and an
    online lookup, so the caller can show that the store answers.
    """
    from litemlops.demo import definitions as demo
    from litemlops.demo.generator import generate_driver_stats, generate_labels

    store = platform.features
    config = platform.config
    report = BootstrapReport(fresh=not store.list_feature_views())
    data_dir = config.runs_dir / "bootstrap"
    labels_path = data_dir / "labels.parquet"
    if report.fresh:
        stats = generate_driver_stats(
            config.demo.drivers, config.demo.hours, end=platform.clock().replace(microsecond=0),
            random_state=config.demo.seed,
        )
        labels = generate_labels(stats, config.demo.labels, random_state=config.demo.seed)
        data_dir.mkdir(parents=True, exist_ok=True)
        stats_path = data_dir / "driver_stats.parquet"
        _write_parquet(stats, stats_path)
        _write_parquet(labels, labels_path)
        report.steps.append(
            f"generated {len(stats)} driver_stats rows for {config.demo.drivers} drivers over "
            f"{config.demo.hours} h and {len(labels)} labels (seed {config.demo.seed})"
        )
        store.apply([demo.driver, demo.driver_stats])
        report.steps.append("applied entity 'driver' and feature view 'driver_stats'")
        ingested = store.ingest("driver_stats", stats_path)
        report.steps.append(f"ingested {ingested.rows} rows into driver_stats")
    materialized = store.materialize()
    for result in materialized:
        report.steps.append(
            f"materialized {result.view}: {result.entities_written} entities updated online, "
            f"watermark {result.watermark:%Y-%m-%d %H:%M:%S}Z"
            if result.watermark
            else f"materialized {result.view}"
        )
    if labels_path.exists():
        import pandas as pd

        labels = pd.read_parquet(labels_path).head(5)
        report.training_rows = store.get_historical_features(labels, demo.FEATURES)
    ids = [{"driver_id": 1001 + i} for i in range(min(3, config.demo.drivers))]
    report.online = store.get_online_features(demo.FEATURES, ids).to_dict()
    log.info(events.RUN_BOOTSTRAPPED, home=str(config.home), steps=report.steps)
    return report


def _write_parquet(frame: pd.DataFrame, path: object) -> None:
    import os
    from pathlib import Path

    target = Path(str(path))
    tmp = target.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)  # a crash never leaves half a file under the final name
