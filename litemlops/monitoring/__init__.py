"""Monitoring: reference profiles, drift and data quality, read back from the event log.

The server and the pipelines already write every prediction to the JSONL event
log, so monitoring needs no store of its own: it reads the log with DuckDB (and
the event history its rotated files are compacted into, `monitoring.history`)
and compares a window of it with the profile saved at training time. Names load
on first use, so importing this package pulls in neither DuckDB nor scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litemlops.lazy import lazy_names

if TYPE_CHECKING:
    from litemlops.monitoring.drift import (
        DriftReport,
        DriftThresholds,
        FeatureDrift,
        compare,
        drift_report,
    )
    from litemlops.monitoring.events import read_feedback, read_predictions
    from litemlops.monitoring.profile import FeatureProfile, Profile, build_profile

_LAZY = {
    "DriftReport": "litemlops.monitoring.drift",
    "DriftThresholds": "litemlops.monitoring.drift",
    "FeatureDrift": "litemlops.monitoring.drift",
    "compare": "litemlops.monitoring.drift",
    "drift_report": "litemlops.monitoring.drift",
    "read_feedback": "litemlops.monitoring.events",
    "read_predictions": "litemlops.monitoring.events",
    "FeatureProfile": "litemlops.monitoring.profile",
    "Profile": "litemlops.monitoring.profile",
    "build_profile": "litemlops.monitoring.profile",
}

__all__ = [
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureProfile",
    "Profile",
    "build_profile",
    "compare",
    "drift_report",
    "read_feedback",
    "read_predictions",
]


__getattr__ = lazy_names(__name__, _LAZY)
