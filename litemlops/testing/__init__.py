"""Helpers for testing your own litemlops pipelines and features.

The pytest fixtures (`litemlops_clock`, `litemlops_config`, `litemlops_platform`,
`litemlops_run`) are active wherever litemlops is installed; the names below
work without pytest too. They load on first use: the pytest plugin imports this
package in every test run, and hypothesis, pandas and DuckDB must not come with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litemlops.testing.clock import FixedClock
    from litemlops.testing.models import FaultyModel
    from litemlops.testing.pipelines import PipelineResult, capture_events, run_pipeline
    from litemlops.testing.strategies import (
        feature_frames,
        feature_rows,
        invalid_feature_rows,
        invalid_model_inputs,
        model_inputs,
    )

_LAZY = {
    "FixedClock": "litemlops.testing.clock",
    "FaultyModel": "litemlops.testing.models",
    "PipelineResult": "litemlops.testing.pipelines",
    "capture_events": "litemlops.testing.pipelines",
    "run_pipeline": "litemlops.testing.pipelines",
    "feature_rows": "litemlops.testing.strategies",
    "feature_frames": "litemlops.testing.strategies",
    "invalid_feature_rows": "litemlops.testing.strategies",
    "model_inputs": "litemlops.testing.strategies",
    "invalid_model_inputs": "litemlops.testing.strategies",
}

__all__ = [
    "FaultyModel",
    "FixedClock",
    "PipelineResult",
    "capture_events",
    "feature_frames",
    "feature_rows",
    "invalid_feature_rows",
    "invalid_model_inputs",
    "model_inputs",
    "run_pipeline",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'litemlops.testing' has no attribute {name!r}")
    return getattr(import_module(module), name)
