"""Run a user's Python file as a module, the way `python file.py` would see its siblings."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from litemlops.errors import LitemlopsError


def run_module_file(path: str | Path, what: str, error: type[LitemlopsError]) -> ModuleType:
    """Execute the `.py` file at `path` and return its module.

    what: what the file should hold, for messages ("feature definitions").
    error: the exception to raise, with the path and the cause, when the file is
    missing or fails while running. Modules beside the file are importable while
    it runs, so a repo can share entities or helpers between files.
    """
    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise error(f"{path}: not a Python file with {what}")
    resolved = path.resolve()
    name = f"_litemlops_user_{hashlib.sha256(str(resolved).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise error(f"{path}: cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(resolved.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{path}: failed while loading: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
        if folder in sys.path:
            sys.path.remove(folder)
    return module
