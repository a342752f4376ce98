"""The feature references a model was trained on, recorded with its training run.

Training records them as a JSON artifact of the run (`log_feature_refs`), so
serving looks a model's inputs up online by the references it was trained on.
Runs logged before that kept them only as a comma-joined `features` param, which
`feature_refs` still reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from litemlops.errors import ArtifactNotFoundError

if TYPE_CHECKING:
    from litemlops.store.tracking.run import Run
    from litemlops.store.tracking.tracker import Tracker

#: The run artifact that holds them: `{"features": ["view:feature", ...]}`.
FEATURE_REFS_ARTIFACT = "feature_refs.json"


def log_feature_refs(run: Run, refs: Iterable[str]) -> None:
    """Record on `run` the feature references ("view:feature") its model takes, in order."""
    run.log_dict({"features": list(refs)}, FEATURE_REFS_ARTIFACT)


def feature_refs(
    tracker: Tracker, run_id: str, params: Mapping[str, Any] | None = None
) -> tuple[str, ...] | None:
    """The feature references the models of run `run_id` were trained on; None if unknown.

    params: the run's params as a model version's lineage froze them (read from the
    run when None), for runs that recorded the references only as a param.
    """
    try:
        data = json.loads(tracker.read_artifact(run_id, FEATURE_REFS_ARTIFACT))
    except ArtifactNotFoundError:
        if params is None:
            params = tracker.get_run(run_id).params
        return _from_param(params.get("features"))
    refs = data.get("features") if isinstance(data, dict) else None
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        return None
    return tuple(refs) or None


def _from_param(text: Any) -> tuple[str, ...] | None:
    """The references of a comma-joined `features` param, as training logged them once."""
    if not isinstance(text, str) or not text:
        return None
    return tuple(r.strip() for r in text.split(",") if r.strip())
