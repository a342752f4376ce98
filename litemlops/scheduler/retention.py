"""How much of the pipelines' past a home keeps: run folders by count, history by age.

The monitoring pipeline runs every minute under `litemlops run`, and each run
leaves a folder of working files (its window as Parquet, the reference profile:
about 200 KB) and a few history rows: without a bound a home grows by hundreds
of megabytes a day. So after each run, the working folders of a pipeline's ended
runs beyond its newest `keep_folders` are removed (their history stays, so
`pipelines runs` and `show` still list them), and, at most once an hour, runs
that ended more than `keep_history` ago are removed from the history with their
task runs and folders. Queued and running runs are never touched. A run whose
folder was removed can no longer be resumed or stepped: its tasks' files are gone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from litemlops import events
from litemlops.clock import to_ms
from litemlops.errors import ValidationError
from litemlops.logger import get_logger
from litemlops.scheduler.history import PipelineHistory

log = get_logger("litemlops.pipelines")

_HISTORY_EVERY = timedelta(hours=1)


class Retention:
    """keep_folders: working folders kept per pipeline (0: all). keep_history: how long
    ended runs stay in the history (None: forever)."""

    def __init__(
        self,
        history: PipelineHistory,
        runs_dir: Path,
        *,
        keep_folders: int = 0,
        keep_history: timedelta | None = None,
        clock: Callable[[], datetime],
    ):
        if keep_folders < 0:
            raise ValidationError(f"keep_folders must be >= 0, got {keep_folders}")
        if keep_history is not None and keep_history <= timedelta(0):
            raise ValidationError(f"keep_history must be positive or None, got {keep_history}")
        self.history = history
        self.runs_dir = runs_dir
        self.keep_folders = keep_folders
        self.keep_history = keep_history
        self.clock = clock
        self._history_pruned: datetime | None = None

    def after_run(self, pipeline: str) -> None:
        """Apply the bounds after a run of `pipeline` ended."""
        if self.keep_folders:
            self._prune_folders(pipeline)
        now = self.clock()
        if self.keep_history is not None and (
            self._history_pruned is None or now - self._history_pruned >= _HISTORY_EVERY
        ):
            self._history_pruned = now
            self._prune_history(now - self.keep_history)

    def _prune_folders(self, pipeline: str) -> None:
        # The folders on disk are few (they are kept pruned); the history may be long.
        try:
            present = [p.name for p in self.runs_dir.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return
        if len(present) <= self.keep_folders:
            return
        kept = self.history.newest_ended(pipeline, self.keep_folders)
        for run_id in self.history.ended_among(present, pipeline):
            if run_id not in kept:
                shutil.rmtree(self.runs_dir / run_id, ignore_errors=True)

    def _prune_history(self, before: datetime) -> None:
        old = self.history.ended_before(to_ms(before))
        if not old:
            return
        self.history.delete(old)
        for run_id in old:
            shutil.rmtree(self.runs_dir / run_id, ignore_errors=True)
        log.info(events.PIPELINE_HISTORY_PRUNED, runs=len(old), before=before.isoformat())
