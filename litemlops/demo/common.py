"""What the demo's pipelines share: the label, table files in the run folder, param checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

    from litemlops.scheduler.pipeline import TaskContext

LABEL = "trip_completed"


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet, CSV or TSV file of the run folder (or the user's) as a DataFrame."""
    from litemlops.store.files import read_frame

    return read_frame(path)


def write_table(frame: pd.DataFrame, path: Path) -> str:
    """Write atomically (a crash never leaves half a file), creating the folder; the path."""
    from litemlops.store.files import write_frame

    path.parent.mkdir(parents=True, exist_ok=True)
    write_frame(frame, path)
    return str(path)


def upstream_path(ctx: TaskContext, name: str) -> Path:
    """The table an upstream task wrote (its output's `path`)."""
    return Path(ctx.upstream[name]["path"])


def param_text(p: dict[str, Any], key: str) -> str:
    value = p[key]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"param {key} must be a non-empty string, got {value!r}")
    return value


def param_number(
    p: dict[str, Any],
    key: str,
    low: float,
    high: float,
    *,
    optional: bool = False,
    open_ends: bool = False,
) -> float | None:
    import math

    value = p[key]
    if optional and (value is None or value == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"param {key} must be a finite number, got {value!r}")
    inside = low < value < high if open_ends else low <= value <= high
    if not inside:
        brackets = "()" if open_ends else "[]"
        raise ValidationError(
            f"param {key} must be in {brackets[0]}{low:g}, {high:g}{brackets[1]}, got {value!r}"
        )
    return float(value)


def param_choice(p: dict[str, Any], key: str, choices: Any) -> str:
    if p[key] not in choices:
        raise ValidationError(f"param {key} must be one of {sorted(choices)}, got {p[key]!r}")
    return str(p[key])


def param_refs(p: dict[str, Any]) -> list[str]:
    refs = p["features"]
    if (
        not isinstance(refs, list)
        or not refs
        or not all(isinstance(r, str) and r.count(":") == 1 for r in refs)
    ):
        raise ValidationError(
            f"param features must be a list of 'view:feature' references, got {refs!r}"
        )
    return refs


def feature_columns(refs: list[str]) -> list[str]:
    return [ref.split(":", 1)[1] for ref in refs]
