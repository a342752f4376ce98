"""Load feature definitions from a Python module, like a Feast feature repo."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from litemlops.errors import DefinitionError
from litemlops.store.definitions import Entity, FeatureView


def load_definitions(path: str | Path) -> list[Entity | FeatureView]:
    """Run the module at `path` and return the Entity and FeatureView objects it defines."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise DefinitionError(f"{path}: not a Python file with feature definitions")
    name = f"_litemlops_repo_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path}: cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Like running the file: modules beside it (shared entities) are importable.
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except DefinitionError:
        raise
    except Exception as exc:
        raise DefinitionError(f"{path}: failed while loading: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
        if folder in sys.path:
            sys.path.remove(folder)
    found: dict[int, Entity | FeatureView] = {}
    for value in vars(module).values():
        if isinstance(value, Entity | FeatureView):
            found.setdefault(id(value), value)
    if not found:
        raise DefinitionError(f"{path}: defines no Entity or FeatureView at module level")
    return list(found.values())
