"""The values tracking deals in: what runs, metrics and models look like, and key checks."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from litemlops.errors import ValidationError

Clock = Callable[[], datetime]
STATUSES = ("running", "finished", "failed", "killed")
MAX_PARAM_LENGTH = 6000
_KEY = re.compile(r"^[\w\-. /]{1,250}$")  # \w: letters and digits of any script
MAX_TAG_LENGTH = 8000  # MLflow's limit; longer text belongs in an artifact
INT64 = 2**63


def check_key(key: object, what: str) -> str:
    """Param, metric and tag keys: letters and digits (any script), `_-. /`, at most 250."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key or key.startswith("/"):
        raise ValidationError(
            f"invalid {what} key {key!r}: use letters, digits, '_', '-', '.', ' ' or '/' "
            "(at most 250 characters, no '..', not starting with '/')"
        )
    return key


def check_metric(key: str, value: object) -> float:
    """Metrics are finite numbers: NaN and infinity are refused so ordering is well defined."""
    if isinstance(value, bool) or (
        not isinstance(value, int | float) and not hasattr(value, "__float__")
    ):
        raise ValidationError(f"metric {key!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"metric {key!r} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValidationError(
            f"metric {key!r} is {number}; metrics must be finite (log a NaN loss as a tag "
            "or fail the run instead)"
        )
    return number


@dataclass(frozen=True)
class Experiment:
    experiment_id: int
    name: str
    created_at: datetime
    tags: dict[str, str]
    lifecycle_stage: str = "active"
    updated_at: datetime | None = None


@dataclass(frozen=True)
class RunInfo:
    """A run as stored: its attributes and its data (latest metric values)."""

    run_id: str
    experiment_id: int
    experiment: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    parent_run_id: str | None
    git_commit: str | None
    error: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: "active", or "deleted" (restorable) after `Tracker.delete_run`.
    lifecycle_stage: str = "active"


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class ModelInfo:
    """A model logged in a run; `uri` loads it (`runs:/<run_id>/<name>`)."""

    run_id: str
    name: str
    sha256: str
    size: int
    signature: dict[str, Any] | None
    environment: dict[str, str]
    input_example: Any = None

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.name}"

