"""A task's context: typed resources, read when a task touches them.

This module is type-checked by mypy (tests/test_lint.py): its `assert_type`
lines fail the check if an attribute loses its type.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, assert_type

import pytest

from litemlops import TaskContext
from litemlops.config import Config
from litemlops.scheduler.bus import Publisher
from litemlops.store import FeatureStore
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.tracker import Tracker

PLATFORM_RESOURCES = {
    "features": FeatureStore,
    "tracker": Tracker,
    "registry": ModelRegistry,
    "config": Config,
    "clock": Callable[[], datetime],
    "bus": Publisher,
}


class Recording(Mapping[str, Any]):
    """Resources that note which ones were read (a worker opens a store on read)."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def context(resources: Mapping[str, Any], tmp_path: Path) -> TaskContext:
    return TaskContext(
        run_id="r1",
        pipeline="p",
        task="t",
        attempt=1,
        params={},
        upstream={},
        work_dir=tmp_path,
        resources=resources,
        log=None,
    )


def uses_every_resource(ctx: TaskContext) -> list[object]:
    # Checked by mypy, not at run time: each attribute has its store's type.
    return [
        assert_type(ctx.features, FeatureStore),
        assert_type(ctx.tracker, Tracker),
        assert_type(ctx.registry, ModelRegistry),
        assert_type(ctx.config, Config),
        assert_type(ctx.clock, Callable[[], datetime]),
        assert_type(ctx.bus, Publisher),
    ]


def test_the_platforms_resources_are_attributes_typed_with_their_classes():
    namespace: dict[str, Any] = {
        cls.__name__: cls for cls in (FeatureStore, Tracker, ModelRegistry, Config)
    }
    namespace |= {"Publisher": Publisher, "Callable": Callable, "datetime": datetime}
    hints = {
        name: typing.get_type_hints(getattr(TaskContext, name).fget, localns=namespace)["return"]
        for name in PLATFORM_RESOURCES
    }

    assert hints == PLATFORM_RESOURCES


def test_each_attribute_reads_its_own_resource_only_when_touched(tmp_path):
    values = {name: object() for name in PLATFORM_RESOURCES}
    resources = Recording(values)
    ctx = context(resources, tmp_path)
    assert resources.read == []

    assert ctx.tracker is values["tracker"]
    assert resources.read == ["tracker"]

    assert uses_every_resource(ctx) == [values[name] for name in PLATFORM_RESOURCES]
    assert resources.read == ["tracker", *PLATFORM_RESOURCES]


def test_a_resource_the_runner_was_not_given_is_an_attribute_error_naming_the_given(tmp_path):
    ctx = context({"tracker": object(), "answer": 42}, tmp_path)

    given = r"resources given to the runner: \['answer', 'tracker'\]"
    with pytest.raises(AttributeError, match=rf"no 'features'; {given}"):
        ctx.features  # noqa: B018
    with pytest.raises(AttributeError, match=rf"no 'featurs'; {given}"):
        # A misspelt resource is a type error too: were it not, this ignore would be unused.
        ctx.featurs  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(ctx, "registry")


def test_other_resources_are_read_by_name(tmp_path):
    ctx = context({"answer": 42}, tmp_path)

    assert ctx.resources["answer"] == 42
    assert getattr(ctx, "answer") == 42  # noqa: B009  # pipelines written before keep working
