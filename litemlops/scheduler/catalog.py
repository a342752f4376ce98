"""The pipelines one home knows: the built-in ones, its applications' and those in the
user's modules (`litemlops.platform.pipeline_catalog` puts them together).

Every process that opens the home builds the same catalog from config, so a
run started here can be resumed or stepped (`run-step`) from another process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from litemlops.errors import NotFoundError
from litemlops.modules import run_module_file
from litemlops.scheduler.pipeline import Pipeline, PipelineDefinitionError


class PipelineNotFoundError(NotFoundError):
    """No pipeline with that name in the catalog."""


class PipelineCatalog:
    """Pipelines by name; a name is defined once unless replaced on purpose."""

    def __init__(self, pipelines: Iterable[Pipeline] = ()):
        self._pipelines: dict[str, Pipeline] = {}
        for pipeline in pipelines:
            self.add(pipeline)

    def add(self, pipeline: Pipeline, *, replace: bool = False) -> None:
        if not isinstance(pipeline, Pipeline):
            raise PipelineDefinitionError(f"expected a Pipeline, got {type(pipeline).__name__}")
        if pipeline.name in self._pipelines and not replace:
            raise PipelineDefinitionError(
                f"pipeline {pipeline.name!r} is defined twice; rename one, or pass "
                "replace=True to override the built-in one on purpose"
            )
        self._pipelines[pipeline.name] = pipeline

    def get(self, name: str) -> Pipeline:
        try:
            return self._pipelines[name]
        except (KeyError, TypeError):
            raise PipelineNotFoundError(
                f"no pipeline named {name!r}; known pipelines: {sorted(self._pipelines)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._pipelines)

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines

    def __iter__(self) -> Iterator[Pipeline]:
        return iter([self._pipelines[n] for n in self.names()])

    def __len__(self) -> int:
        return len(self._pipelines)

    def load(self, path: str | Path, *, replace: bool = False) -> list[Pipeline]:
        """Add every Pipeline defined at module level in the Python file `path`.

        replace: let the file's pipelines override ones already known (an
        application's, say) instead of refusing the name clash.
        """
        module = run_module_file(path, "pipelines", PipelineDefinitionError)
        found: dict[int, Pipeline] = {}
        for value in vars(module).values():
            if isinstance(value, Pipeline):
                found.setdefault(id(value), value)
        if not found:
            raise PipelineDefinitionError(f"{path}: defines no Pipeline at module level")
        pipelines = list(found.values())
        for pipeline in pipelines:
            self.add(pipeline, replace=replace)
        return pipelines
