"""What `litemlops run` does before it serves: each application of the home sets
itself up on a fresh home (the demo project, by default), else the home catches up."""

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
    """Let the home's applications set themselves up, else materialize what is due.

    Each application's `bootstrap` sets it up on a fresh home or finishes an
    interrupted set-up (and marks the report fresh); when none did, every feature
    view is materialized, so the online store catches up with what arrived while
    nothing served. Then each application's `describe` adds what the report shows
    of its data (the demo: a few point-in-time training rows and an online lookup).
    """
    report = BootstrapReport(fresh=False)
    for application in platform.applications:
        application.bootstrap(platform, report)
    if not report.fresh:
        for result in platform.history.materialize():
            report.steps.append(
                f"materialized {result.view}: {result.entities_written} entities updated "
                f"online, watermark {result.watermark:%Y-%m-%d %H:%M:%S}Z"
                if result.watermark
                else f"materialized {result.view}"
            )
    for application in platform.applications:
        application.describe(platform, report)
    log.info(events.RUN_BOOTSTRAPPED, home=str(platform.config.home), steps=report.steps)
    return report
