"""Changing experiments and runs after the fact: rename, tag, delete and restore, end times.

Deleting is MLflow's soft delete: an experiment or run is marked "deleted" and keeps
everything it logged until it is restored; nothing here removes rows. Deleting an
experiment deletes its active runs with it, and restoring it restores those runs.
`Tracker` takes these methods from `Lifecycle`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from litemlops.clock import to_ms
from litemlops.errors import AlreadyExistsError, NotFoundError, ValidationError
from litemlops.store.tracking.tracking_types import (
    MAX_TAG_LENGTH,
    STATUSES,
    Experiment,
    RunInfo,
    check_key,
)

if TYPE_CHECKING:
    from litemlops.store.tracking.tracking_db import TrackingDB

ACTIVE, DELETED = "active", "deleted"
MAX_EXPERIMENT_NAME = 250


def check_experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_EXPERIMENT_NAME:
        raise ValidationError(
            f"invalid experiment name {name!r}: give 1 to {MAX_EXPERIMENT_NAME} characters, "
            "not only spaces"
        )
    return name


class Lifecycle:
    """The tracker's methods that change experiments and runs once they exist."""

    db: TrackingDB

    def now_ms(self) -> int:
        raise NotImplementedError

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        raise NotImplementedError

    def get_run(self, run_id: str) -> RunInfo:
        raise NotImplementedError

    # -- experiments ---------------------------------------------------------------------

    def rename_experiment(self, experiment: str | int, new_name: str) -> Experiment:
        """Give an experiment another name; its runs stay with it."""
        check_experiment_name(new_name)
        found = self.get_experiment(experiment)
        if new_name == found.name:
            return found
        with self.db.write() as con:
            if con.execute("SELECT 1 FROM experiments WHERE name = ?", [new_name]).fetchone():
                raise AlreadyExistsError(
                    f"an experiment named {new_name!r} exists already; choose another name"
                )
            con.execute(
                "UPDATE experiments SET name = ?, updated_at = ? WHERE experiment_id = ?",
                [new_name, self.now_ms(), found.experiment_id],
            )
        return self.get_experiment(found.experiment_id)

    def set_experiment_tag(self, experiment: str | int, key: str, value: str) -> Experiment:
        check_key(key, "tag")
        text = str(value)
        if len(text) > MAX_TAG_LENGTH:
            raise ValidationError(f"tag {key!r} is over {MAX_TAG_LENGTH} characters")
        found = self.get_experiment(experiment)
        with self.db.write() as con:
            row = con.execute(
                "SELECT tags FROM experiments WHERE experiment_id = ?", [found.experiment_id]
            ).fetchone()
            tags = {**json.loads(row["tags"]), key: text}
            con.execute(
                "UPDATE experiments SET tags = ?, updated_at = ? WHERE experiment_id = ?",
                [json.dumps(tags), self.now_ms(), found.experiment_id],
            )
        return self.get_experiment(found.experiment_id)

    def delete_experiment(self, experiment: str | int) -> Experiment:
        """Mark an experiment and its active runs deleted (restorable)."""
        return self._experiment_stage(experiment, ACTIVE, DELETED)

    def restore_experiment(self, experiment: str | int) -> Experiment:
        """Undo `delete_experiment`: the experiment and the runs deleted with it."""
        return self._experiment_stage(experiment, DELETED, ACTIVE)

    def _experiment_stage(self, experiment: str | int, old: str, new: str) -> Experiment:
        found = self.get_experiment(experiment)
        if found.lifecycle_stage == new:
            return found
        now = self.now_ms()
        with self.db.write() as con:
            con.execute(
                "UPDATE experiments SET lifecycle_stage = ?, updated_at = ? "
                "WHERE experiment_id = ?",
                [new, now, found.experiment_id],
            )
            con.execute(
                "UPDATE runs SET lifecycle_stage = ? WHERE experiment_id = ? "
                "AND lifecycle_stage = ?",
                [new, found.experiment_id, old],
            )
        return self.get_experiment(found.experiment_id)

    # -- runs --------------------------------------------------------------------------

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted: searches that ask for active runs leave it out."""
        self._run_stage(run_id, DELETED)

    def restore_run(self, run_id: str) -> None:
        self._run_stage(run_id, ACTIVE)

    def _run_stage(self, run_id: str, stage: str) -> None:
        self.get_run(run_id)
        with self.db.write() as con:
            con.execute("UPDATE runs SET lifecycle_stage = ? WHERE run_id = ?", [stage, run_id])

    def delete_run_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run; NotFoundError when the run has no such tag."""
        self.get_run(run_id)
        with self.db.write() as con:
            gone = con.execute(
                "DELETE FROM run_tags WHERE run_id = ? AND key = ?", [run_id, key]
            ).rowcount
        if not gone:
            raise NotFoundError(f"run {run_id} has no tag {key!r}; nothing to delete")

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: datetime | None = None,
        name: str | None = None,
        start_time: datetime | None = None,
    ) -> RunInfo:
        """Set a run's status, start or end time or name as given (None: leave it).

        Unlike `end_run`, any status may follow any other, as MLflow's update_run
        allows: a client that ends a run twice, or reopens it, is obeyed. A run set
        back to running loses its end time unless one is given.
        """
        if status is not None and status not in STATUSES:
            raise ValidationError(f"a run's status is one of {STATUSES}, not {status!r}")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_EXPERIMENT_NAME):
            raise ValidationError(f"a run name has at most {MAX_EXPERIMENT_NAME} characters")
        self.get_run(run_id)
        sets: list[str] = []
        values: list[object] = []
        if status is not None:
            sets.append("status = ?")
            values.append(status)
            if status == "running" and end_time is None:
                sets.append("end_time = NULL")
        if end_time is not None:
            sets.append("end_time = ?")
            values.append(to_ms(end_time))
        if start_time is not None:
            sets.append("start_time = ?")
            values.append(to_ms(start_time))
        if name:
            sets.append("name = ?")
            values.append(name)
        if sets:
            with self.db.write() as con:
                con.execute(
                    f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*values, run_id]
                )
        return self.get_run(run_id)
