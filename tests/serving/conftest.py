"""A small served world without HTTP: an in-memory feature store with three drivers'
current features, a tracker whose `driver_ranker@champion` was trained on them, and a
`Service` over both.

- `world` (function): a `World` with `store`, `tracker`, `registry`, `service`,
  `train(refs=..., structured=True)` to register another version as champion,
  `register(model)` to register one without an alias, and `served()` / `events(name)`.
Bad challengers are `litemlops.testing.FaultyModel`s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import structlog
from serving_world import DRIVER, DRIVERS, MODEL, NOW, REFS, VIEW, World

from litemlops.serving.models import ModelCache
from litemlops.serving.service import Service, ServiceSpec
from litemlops.store import FeatureStore
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.tracker import Tracker


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with (
        FeatureStore(":memory:", clock=lambda: NOW) as store,
        Tracker(tmp_path / "registry.db", code_dir=tmp_path) as tracker,
    ):
        store.apply([DRIVER, VIEW])
        rows = [
            {"driver_id": d, "datetime": NOW - timedelta(hours=1), "conv_rate": c, "acc_rate": a}
            for d, (c, a) in DRIVERS.items()
        ]
        store.ingest("driver_stats", pd.DataFrame(rows))
        store.materialize(end=NOW)
        registry = ModelRegistry(tracker)
        spec = ServiceSpec("inference", MODEL, "driver_id", list(REFS))
        world = World(store, tracker, registry, Service(spec, store, ModelCache(registry)))
        world.train()
        with structlog.testing.capture_logs() as captured:
            world.captured = captured
            yield world
