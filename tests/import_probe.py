"""What importing something loads, seen from a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str) -> dict[str, list[str]]:
    """What `code` adds to `sys.modules` in a fresh interpreter: litemlops modules, and
    the top-level names of other non-standard-library modules."""
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "new = set(sys.modules) - before\n"
        "print(json.dumps({\n"
        "  'litemlops': sorted(m for m in new if m.split('.')[0] == 'litemlops'),\n"
        "  'third_party': sorted({m.split('.')[0] for m in new} - set(sys.stdlib_module_names)"
        " - {'litemlops'}),\n"
        "}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded: dict[str, list[str]] = json.loads(result.stdout)
    return loaded
