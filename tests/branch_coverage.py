"""Branch coverage of the core modules, checked at the end of a run with `--cov`.

The core modules are the files `[tool.coverage.run] include` names in pyproject.toml:
the modules mutation testing covers (mutation/modules.toml; a test keeps the two lists
equal). pytest-cov prints its table; this adds each module's share of branches taken,
and a whole run (every test under `tests`, nothing selected away: the README's test
command) fails when a module takes fewer than TARGET percent of its branches. A run of
some tests only prints the shares, since it cannot take every branch. The shares are
what the core modules' own tests take (the files mutation/modules.toml lists for them):
coverage runs only while those do (`CoreOnly`).
"""

from __future__ import annotations

import importlib
import json
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TARGET = 95.0  # percent of a core module's branches the whole suite must take


@dataclass(frozen=True)
class Share:
    """One module's branches: how many there are and how many the tests took."""

    module: str
    branches: int
    taken: int

    @property
    def percent(self) -> float:
        return 100.0 if self.branches == 0 else 100.0 * self.taken / self.branches


def shares(report: dict[str, Any]) -> list[Share]:
    """Each measured file's branch share, from coverage's JSON report."""
    return [
        Share(module, f["summary"]["num_branches"], f["summary"]["covered_branches"])
        for module, f in sorted(report["files"].items())
    ]


def lines(found: list[Share], *, whole: bool) -> tuple[list[str], bool]:
    """The summary's lines, and whether the run fails for them (only a whole run can)."""
    below = [s for s in found if s.percent < TARGET]
    out = [f"branches taken in the core modules (target: {TARGET:g}% each in a whole run):"]
    width = max(len(s.module) for s in found)
    for s in found:
        mark = "  BELOW" if s.percent < TARGET else ""
        out.append(f"  {s.module:<{width}}  {s.taken:>4}/{s.branches:<4} {s.percent:5.1f}%{mark}")
    if not whole:
        out.append("  (some tests only: not checked against the target)")
    elif below:
        out.append(f"  {len(below)} below {TARGET:g}%: the run fails")
    return out, whole and bool(below)


def whole_run(config: pytest.Config) -> bool:
    """Every test under testpaths ran, unselected: no paths, -k, -m, --lf or -x given."""
    option = config.option
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not option.keyword
        and not option.markexpr
        and not getattr(option, "lf", False)
        and not getattr(option, "deselect", None)
        and not option.maxfail
    )


class CoreOnly:
    """Coverage measures the core modules while their own tests run (the test files
    mutation/modules.toml lists for any of them) and is paused otherwise: during
    collection, once the core modules are imported (their module-level lines measured),
    and before each test in another file (so from one file to the next, as a worker
    takes them). On Python 3.11 a tracer slows all code while it runs, measured or not.
    """

    def __init__(self, root: Path):
        with (root / "mutation" / "modules.toml").open("rb") as f:
            modules = tomllib.load(f)["modules"]
        self.modules = [name.removesuffix(".py").replace("/", ".") for name in modules]
        self.tests = frozenset(root / t for module in modules.values() for t in module["tests"])
        self.paused = False

    def collecting(self, config: pytest.Config) -> None:
        controller = _controller(config)
        if controller is None:
            return
        if not config.pluginmanager.has_plugin("dsession"):  # tests run here (not xdist's)
            for name in self.modules:
                importlib.import_module(name)
        self._measure(controller, False)

    def before(self, item: pytest.Item) -> None:
        controller = _controller(item.config)
        if controller is not None:
            self._measure(controller, item.path in self.tests)

    def _measure(self, controller: Any, wanted: bool) -> None:
        if wanted and self.paused:
            controller.resume()
        elif not wanted and not self.paused:
            controller.pause()
            # An xdist worker's pytest-cov also started a controller's coverage, before
            # the worker's own and paused under it: stopping the worker's resumed it.
            from coverage import Coverage

            while (other := Coverage.current()) is not None:
                other.stop()
        self.paused = not wanted


CORE_ONLY = pytest.StashKey[CoreOnly]()


def core_only(config: pytest.Config) -> CoreOnly:
    """The run's `CoreOnly`, for the project at pytest's root directory."""
    if CORE_ONLY not in config.stash:
        config.stash[CORE_ONLY] = CoreOnly(config.rootpath)
    return config.stash[CORE_ONLY]


def _controller(config: pytest.Config) -> Any:
    """pytest-cov's controller of this process, or None without `--cov`."""
    return getattr(config.pluginmanager.getplugin("_cov"), "cov_controller", None)


def check(session: pytest.Session) -> None:
    """After pytest-cov combined the data: print the shares, fail a whole run below TARGET."""
    config = session.config
    controller = _controller(config)
    if controller is None or hasattr(config, "workerinput"):
        return  # no --cov, or an xdist worker (the controller reports)
    from coverage.exceptions import NoDataError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coverage.json"
        try:
            controller.cov.json_report(outfile=str(path))
        except NoDataError:
            return  # none of the core modules ran
        found = shares(json.loads(path.read_text()))
    if not found:
        return
    text, fails = lines(found, whole=whole_run(config))
    reporter = config.pluginmanager.getplugin("terminalreporter")
    reporter.write("\n" + "\n".join(text) + "\n", red=fails)
    if fails:
        session.testsfailed += 1
