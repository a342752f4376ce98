"""Load feature definitions from a Python module, like a Feast feature repo."""

from __future__ import annotations

from pathlib import Path

from litemlops.errors import DefinitionError
from litemlops.modules import run_module_file
from litemlops.store.features.definitions import Entity, FeatureView


def load_definitions(path: str | Path) -> list[Entity | FeatureView]:
    """Run the module at `path` and return the Entity and FeatureView objects it defines."""
    module = run_module_file(path, "feature definitions", DefinitionError)
    found: dict[int, Entity | FeatureView] = {}
    for value in vars(module).values():
        if isinstance(value, Entity | FeatureView):
            found.setdefault(id(value), value)
    if not found:
        raise DefinitionError(f"{path}: defines no Entity or FeatureView at module level")
    return list(found.values())
