"""The layering DESIGN.md states, checked: imports flow one way.

errors/config/events -> store -> scheduler, serving, monitoring -> server, cli
-> demo (an application). Rules on what an import loads run in a fresh
interpreter and read `sys.modules`; rules between packages read every
`import` and `from` statement of every module (function-level ones too) with
`ast`, plus module names written as strings (`import_module("...")`, preload
lists), which import a module as surely.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from import_probe import loaded_after

PACKAGE = Path(__file__).resolve().parents[1] / "litemlops"

WEB_AND_SCHEDULING = ("starlette", "uvicorn", "apscheduler")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_by(module: str) -> set[str]:
    """The litemlops modules (or packages) one module imports, anywhere in its body."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                # `from litemlops.demo import definitions` imports a module.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        elif isinstance(node, ast.Constant) and node.value in MODULES:
            found.add(node.value)
    return {name for name in found if name == "litemlops" or name.startswith("litemlops.")}


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def imports_of(importers: list[str], *targets: str) -> set[tuple[str, str]]:
    return {
        (module, name)
        for module in importers
        for name in imported_by(module)
        if within(name, *targets) and not within(module, *targets)
    }


def test_import_litemlops_loads_no_third_party_library_and_no_subpackage():
    loaded = loaded_after("import litemlops")

    assert loaded["third_party"] == []
    assert loaded["litemlops"] == ["litemlops", "litemlops.errors", "litemlops.lazy"]


def test_the_stores_load_no_web_or_scheduling_library_and_nothing_above_them():
    store_modules = sorted(m for m in MODULES if within(m, "litemlops.store"))
    code = "import importlib\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in store_modules)
    code += "from litemlops import FeatureStore, ModelRegistry, Tracker\n"

    loaded = loaded_after(code)

    assert set(loaded["third_party"]).isdisjoint(WEB_AND_SCHEDULING), loaded["third_party"]
    above = [m for m in loaded["litemlops"] if not within(m, "litemlops.store")]
    assert set(above) <= {
        "litemlops", "litemlops.clock", "litemlops.errors", "litemlops.events",
        "litemlops.logger", "litemlops.modules", "litemlops.config", "litemlops.home",
        "litemlops.lazy",
    }, above


def test_defining_a_pipeline_loads_neither_the_stores_nor_the_scheduling_library():
    loaded = loaded_after("from litemlops import Pipeline, TaskContext, task")

    assert set(loaded["third_party"]).isdisjoint(WEB_AND_SCHEDULING), loaded["third_party"]
    assert not [m for m in loaded["litemlops"] if within(m, "litemlops.store")]


def test_the_store_imports_nothing_above_it():
    store = [m for m in MODULES if within(m, "litemlops.store")]

    assert imports_of(
        store,
        "litemlops.scheduler", "litemlops.serving", "litemlops.monitoring",
        "litemlops.server", "litemlops.cli", "litemlops.demo", "litemlops.testing",
        "litemlops.platform", "litemlops.bootstrap",
    ) == set()


def test_the_feature_store_and_tracking_halves_never_import_each_other():
    features = [m for m in MODULES if within(m, "litemlops.store.features")]
    tracking = [m for m in MODULES if within(m, "litemlops.store.tracking")]

    assert imports_of(features, "litemlops.store.tracking") == set()
    assert imports_of(tracking, "litemlops.store.features") == set()


def test_scheduler_and_monitoring_import_no_edge():
    middle = [
        m for m in MODULES
        if within(m, "litemlops.scheduler", "litemlops.serving", "litemlops.monitoring")
    ]

    assert imports_of(middle, "litemlops.server", "litemlops.cli") == set()


def test_only_the_cli_and_the_demo_import_the_server():
    outside = [m for m in MODULES if not within(m, "litemlops.cli", "litemlops.demo")]

    assert imports_of(outside, "litemlops.server") == set()


def test_only_the_package_entry_point_and_the_demo_import_the_cli():
    outside = [m for m in MODULES if not within(m, "litemlops.__main__", "litemlops.demo")]

    assert imports_of(outside, "litemlops.cli") == set()


def test_errors_import_nothing_else_from_the_package():
    assert imported_by("litemlops.errors") == set()


def test_the_platforms_config_imports_only_root_modules_below_it():
    # No `modeling`, no demo: applications' settings come in through `applications`.
    assert imported_by("litemlops.config") <= {
        "litemlops.errors", "litemlops.home", "litemlops.config_parse",
        "litemlops.config_layers", "litemlops.alert_rules", "litemlops.applications",
    }
    assert imported_by("litemlops.config_layers") <= {
        "litemlops.errors", "litemlops.config_parse", "litemlops.alert_rules",
        "litemlops.applications", "litemlops.config",
    }
    assert imported_by("litemlops.config_parse") == {"litemlops.errors"}
    assert imported_by("litemlops.alert_rules") == {"litemlops.errors"}


def test_nothing_outside_the_demo_imports_it():
    # The platform reaches the demo as an application: through the
    # `litemlops.applications` entry point that config names, never by import.
    assert imports_of(list(MODULES), "litemlops.demo") == set()


def test_the_demo_is_registered_as_an_application_entry_point():
    from importlib.metadata import entry_points

    points = {p.name: p.value for p in entry_points(group="litemlops.applications")}

    assert points.get("demo") == "litemlops.demo.application:application"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from litemlops.server import app\n", {"litemlops.server.app"}),
        ("from .. import demo\n", {"litemlops.demo"}),
        ("from ..demo import generator as g\n", {"litemlops.demo.generator"}),
        ("import litemlops.cli.main\n", {"litemlops.cli.main"}),
        ("PRELOAD = ('litemlops.demo.pipelines', 'pandas')\n", {"litemlops.demo.pipelines"}),
        ("import json\nfrom litemlops.errors import ValidationError\n", {"litemlops.errors"}),
    ],
)
def test_the_import_reader_sees_every_kind_of_import(source, expected, monkeypatch, tmp_path):
    # Read as if it were litemlops/store/probe.py.
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, "litemlops.store.probe", path)

    assert imported_by("litemlops.store.probe") == expected


#: The tree as DESIGN.md's layout states it: each subpackage is one part of the
#: architecture. A new subpackage is a design decision, made there first.
PACKAGES = {
    "litemlops.store": "the stores, and the table files and SQLite plumbing they share",
    "litemlops.store.features": "the DuckDB feature store",
    "litemlops.store.tracking": "tracking, search, the registry, artifacts, model I/O",
    "litemlops.scheduler": "pipelines, their run history, triggers, workers",
    "litemlops.serving": "the library's serving layer",
    "litemlops.monitoring": "profiles, drift, performance, alerts, the event history",
    "litemlops.server": "HTTP only",
    "litemlops.server.dashboard": "the web dashboard's pages, templates and charts",
    "litemlops.server.mlflow": "MLflow's REST API, answered from the tracker and registry",
    "litemlops.cli": "click commands",
    "litemlops.demo": "the ride-hailing demo, an application on the platform",
    "litemlops.testing": "the pytest plugin and strategies for users' tests",
}

#: Root modules: settings, errors, the event schema, logging, the composition root,
#: and the few helpers every layer shares.
ROOT_MODULES = {
    "__main__", "alert_rules", "applications", "bootstrap", "clock", "config",
    "config_layers", "config_parse", "errors", "events", "home", "home_lock", "lazy", "logfile",
    "logger", "logsetup", "modeling", "modules", "platform", "quality",
}

#: About 500 lines: a module longer than this is two concepts.
MAX_LINES = 510


def test_the_tree_has_the_packages_and_root_modules_the_layout_names():
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    roots = {name.split(".")[1] for name in MODULES if name.count(".") == 1} - {
        name.split(".")[1] for name in packages if name.count(".") == 1
    }

    assert packages - {"litemlops"} == set(PACKAGES)
    assert roots == ROOT_MODULES


def test_no_module_is_longer_than_about_500_lines():
    long = {
        name: lines for name, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }

    assert long == {}
