"""Data checks with a readable report: schema, dtypes, null rates and value ranges.

The feature store refuses a batch at its first bad row; a data pipeline wants
the whole picture instead (every column that is wrong, how often), so an
operator can fix the source in one go. Monitoring reuses the same checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litemlops.errors import LitemlopsError, ValidationError

if TYPE_CHECKING:
    import pandas as pd


class DataValidationError(LitemlopsError, ValueError):
    """A batch failed its checks; the message is the full report."""

    def __init__(self, report: QualityReport):
        super().__init__(report.text())
        self.report = report


#: The most row labels a report keeps per column (the count says how many there are).
MAX_BAD_ROWS = 20


@dataclass
class QualityReport:
    """rows: how many were checked; problems: one sentence each; columns: statistics per
    column; bad_rows: per column, the labels (the frame's index) of the first rows that
    broke a check, at most `MAX_BAD_ROWS`."""

    rows: int
    problems: list[str] = field(default_factory=list)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_rows: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.passed:
            return f"{self.rows} rows passed every check"
        lines = [f"{self.rows} rows failed {len(self.problems)} check(s):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "passed": self.passed,
            "problems": list(self.problems),
            "columns": self.columns,
            "bad_rows": self.bad_rows,
        }

    def _flag(self, column: str, labels: Any) -> None:
        kept = self.bad_rows.setdefault(column, [])
        for label in labels:
            if len(kept) >= MAX_BAD_ROWS:
                break
            if label not in kept:
                kept.append(label.item() if hasattr(label, "item") else label)


def _fits(value: Any, dtype: str) -> bool:
    """Whether one non-null value can be stored as `dtype`."""
    import numbers

    import pandas as pd

    if dtype in ("int32", "int64"):
        return (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and float(value) % 1 == 0
        )
    if dtype in ("float32", "float64"):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if dtype == "bool":
        return isinstance(value, bool) or type(value).__name__ == "bool_"
    if dtype == "string":
        return isinstance(value, str)
    if dtype == "timestamp":
        if isinstance(value, pd.Timestamp | datetime):
            return True
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            return False
        return isinstance(value, str)
    return True


def _first_misfit(series: pd.Series, dtype: str) -> tuple[int, Any] | None:
    """(row, value) of the first value that does not fit `dtype`, None when all fit."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if dtype in ("float32", "float64") and numeric:
        return None
    if dtype == "timestamp" and pd.api.types.is_datetime64_any_dtype(series):
        return None
    for row, value in enumerate(series.tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if value is pd.NaT or not _fits(value, dtype):
            return row, value
    return None


def check_frame(
    frame: pd.DataFrame,
    schema: Mapping[str, str],
    *,
    required: Sequence[str] = (),
    ranges: Mapping[str, Sequence[float | None]] | None = None,
    max_null_rate: float = 0.0,
    allow_extra: bool = False,
    allow_empty: bool = False,
) -> QualityReport:
    """Check `frame` against `schema` (column -> dtype name as in `Field`).

    required: columns that may hold no null at all (keys, event times).
    ranges: column -> [min, max], either end None for open; nulls are not counted.
    max_null_rate: the largest share of nulls any other schema column may have.
    allow_empty: a frame without rows passes (its columns are still checked).
    Rows are named by the frame's index labels (positions, for a default index).
    """
    import numpy as np

    if not 0 <= max_null_rate <= 1:
        raise ValidationError(f"max_null_rate must be in [0, 1], got {max_null_rate!r}")
    report = QualityReport(rows=len(frame))
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        report.problems.append(f"missing column(s) {missing}")
    extra = [str(c) for c in frame.columns if c not in schema]
    if extra and not allow_extra:
        report.problems.append(f"unexpected column(s) {extra}")
    if len(frame) == 0 and not allow_empty:
        report.problems.append("the batch has no rows")
    for column, dtype in schema.items():
        if column not in frame.columns:
            continue
        series = frame[column]
        nulls = int(series.isna().sum())
        rate = nulls / len(frame) if len(frame) else 0.0
        stats: dict[str, Any] = {"dtype": dtype, "nulls": nulls, "null_rate": round(rate, 6)}
        report.columns[column] = stats
        misfit = _first_misfit(series, dtype)
        if misfit is not None:
            label = series.index[misfit[0]]
            report.problems.append(
                f"column {column!r} should be {dtype}, but row {label} holds {misfit[1]!r}"
            )
            report._flag(column, [label])
            continue
        if column in required and nulls:
            report.problems.append(f"column {column!r} has {nulls} null(s); it may have none")
            report._flag(column, series.index[series.isna().to_numpy()])
        elif column not in required and rate > max_null_rate:
            report.problems.append(
                f"column {column!r} is {rate:.1%} null, above max_null_rate {max_null_rate:.1%}"
            )
        if dtype in ("int32", "int64", "float32", "float64") and len(series.dropna()):
            present = series.dropna()
            values = present.to_numpy(dtype="float64")
            stats["min"], stats["max"] = float(values.min()), float(values.max())
            infinite = ~np.isfinite(values)
            if infinite.any():
                report.problems.append(
                    f"column {column!r} has {int(infinite.sum())} infinite value(s)"
                )
                report._flag(column, present.index[infinite])
            low, high = check_range(column, (ranges or {}).get(column))
            below = int((values < low).sum())
            above = int((values > high).sum())
            if below or above:
                report._flag(column, present.index[(values < low) | (values > high)])
                report.problems.append(
                    f"column {column!r} has {below + above} value(s) outside "
                    f"[{_show(low)}, {_show(high)}] (min {stats['min']:g}, max {stats['max']:g})"
                )
    unknown = sorted(set(ranges or {}) - set(schema))
    if unknown:
        report.problems.append(f"ranges name column(s) not in the schema: {unknown}")
    return report


def check_range(column: str, pair: Sequence[float | None] | None) -> tuple[float, float]:
    """`[min, max]` (either end None for open) as numbers, or a ValidationError naming
    `column`; pipelines call it on their params before a run starts."""
    if pair is None:
        return -math.inf, math.inf
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        raise ValidationError(f"range of {column!r} must be [min, max], got {pair!r}")
    low, high = (-math.inf if pair[0] is None else pair[0]), (
        math.inf if pair[1] is None else pair[1]
    )
    if not isinstance(low, int | float) or not isinstance(high, int | float) or low > high:
        raise ValidationError(f"range of {column!r} must be numbers with min <= max: {pair!r}")
    return float(low), float(high)


def _show(value: float) -> str:
    return "-inf" if value == -math.inf else "inf" if value == math.inf else f"{value:g}"
