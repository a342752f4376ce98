"""pytest fixtures for testing your own litemlops pipelines and features.

Active wherever litemlops is installed (entry point `pytest11`). This module is
imported by every pytest run on such a machine, so it imports only pytest and
light litemlops modules; the platform (DuckDB, pandas, pyarrow) loads when a
fixture that needs it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from litemlops.errors import ConfigError
from litemlops.testing.clock import FixedClock

if TYPE_CHECKING:
    from litemlops.config import Config
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import Pipeline
    from litemlops.testing.pipelines import PipelineResult

#: Small enough that `bootstrap` and demo pipelines finish in a test's time.
SMALL_DEMO: dict[str, Any] = {"demo.drivers": 3, "demo.hours": 12, "demo.labels": 20}


@pytest.fixture
def litemlops_clock(request: pytest.FixtureRequest) -> FixedClock:
    """A `FixedClock` at 2026-01-01T00:00:00Z; `.advance(seconds)` and `.set(dt)` move it.

    The platform fixtures use it, so every time they record is this clock's. Another
    start: `@pytest.mark.parametrize("litemlops_clock", [dt], indirect=True)`.
    """
    start = getattr(request, "param", None)
    return FixedClock() if start is None else FixedClock(start)


@pytest.fixture
def litemlops_config_overrides() -> dict[str, Any]:
    """Config values ("section.key" -> value) for `litemlops_config`; redefine it to change them.

    Empty here: the config has small demo sizes already.
    """
    return {}


@pytest.fixture
def litemlops_config(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    litemlops_config_overrides: Mapping[str, Any],
) -> Config:
    """A `Config` for a fresh home, `tmp_path / "litemlops-home"` (not created yet).

    `LITEMLOPS_*` variables of the environment are ignored, so a developer's shell
    cannot change a test. Overrides, lowest precedence first: the small demo sizes,
    `litemlops_config_overrides`, then a dict given by
    `@pytest.mark.parametrize("litemlops_config", [{"demo.drivers": 5}], indirect=True)`.
    """
    param = getattr(request, "param", None)
    if param is not None and not isinstance(param, Mapping):
        raise ConfigError(
            "indirect parametrization of litemlops_config takes a dict of "
            f"'section.key' -> value, got {param!r}"
        )
    if not isinstance(litemlops_config_overrides, Mapping):
        raise ConfigError(
            "litemlops_config_overrides must return a dict of 'section.key' -> value, "
            f"got {litemlops_config_overrides!r}"
        )
    overrides = {**litemlops_config_overrides, **(param or {})}
    # The small demo sizes apply where the demo runs (it does unless applications say not).
    if "demo" in overrides.get("applications", ["demo"]):
        overrides = {**SMALL_DEMO, **overrides}
    from litemlops.config import Config

    # A subfolder, so the test's own files in tmp_path never mix with the home's.
    return Config.load(tmp_path / "litemlops-home", env={}, overrides=overrides)


@pytest.fixture
def litemlops_platform(litemlops_config: Config, litemlops_clock: FixedClock) -> Iterator[Platform]:
    """An open `Platform` on `litemlops_config`'s home and `litemlops_clock`, closed after the test.

    Its pipeline runner waits (retry delays, a queued run's polling) by advancing
    `litemlops_clock` instead of sleeping, so a test of retries is instant and can
    check the clock moved by the delays.
    """
    from litemlops.platform import Platform

    platform = Platform(litemlops_config, clock=litemlops_clock)
    platform.pipelines.sleep = _clock_sleep(litemlops_clock)
    try:
        yield platform
    finally:
        platform.close()


def _clock_sleep(clock: FixedClock) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        time.sleep(0)  # let another thread holding the run's slot get on

    return sleep


@pytest.fixture
def litemlops_run(litemlops_platform: Platform) -> Callable[..., PipelineResult]:
    """`run(pipeline, params=None, *, trigger="manual", payload=None) -> PipelineResult`.

    Runs the pipeline now on `litemlops_platform`'s runner and returns its run,
    task attempts, outputs (`.outputs`, `.task(name)`), folders (`.work_dir(task)`)
    and the events it emitted with their run_id, pipeline and task
    (`.events`, `.events_named("task_failed")`).
    """
    from litemlops.testing.pipelines import run_pipeline

    def run(
        pipeline: Pipeline,
        params: Mapping[str, Any] | None = None,
        *,
        trigger: str = "manual",
        payload: Mapping[str, Any] | None = None,
    ) -> PipelineResult:
        return run_pipeline(
            litemlops_platform.pipelines, pipeline, params, trigger=trigger, payload=payload
        )

    return run
