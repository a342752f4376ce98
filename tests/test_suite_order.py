"""The suite's own arrangement (tests/suite_order.py): deep tests skipped unless asked
for, and the files with the most slow tests handed out first, each in its own order."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent

CONFTEST = f"""
import os, sys
sys.path.insert(0, {str(HERE)!r})
from suite_order import arrange

def pytest_collection_modifyitems(config, items):
    arrange(items, run_deep=os.environ.get("RUN_DEEP") == "1")
"""

FILES = {
    "test_a": "def test_a1(): pass\ndef test_a2(): pass\n",
    "test_b": "import pytest\n\n@pytest.mark.slow\ndef test_b1(): pass\ndef test_b2(): pass\n",
    "test_c": (
        "import pytest\n\n"
        "def test_c1(): pass\n"
        "@pytest.mark.slow\ndef test_c2(): pass\n"
        "@pytest.mark.slow\ndef test_c3(): pass\n"
        "@pytest.mark.slow\n@pytest.mark.deep\ndef test_c4(): pass\n"
        "@pytest.mark.slow\n@pytest.mark.deep\ndef test_c5(): pass\n"
    ),
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n    deep: deep\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**FILES)
    return pytester


def order(result: pytest.RunResult) -> list[str]:
    return [line.split("::")[1] for line in result.outlines if "::" in line]


def test_files_with_more_slow_tests_run_first_and_each_keeps_its_order(suite, monkeypatch):
    monkeypatch.setenv("RUN_DEEP", "0")

    result = suite.runpytest("--collect-only", "-q")

    # c has 2 slow tests that run, b has 1, a none
    expected = ["test_c1", "test_c2", "test_c3", "test_c4", "test_c5", "test_b1", "test_b2"]
    assert order(result) == [*expected, "test_a1", "test_a2"]


def test_deep_tests_are_skipped_saying_how_to_run_them_unless_asked_for(suite, monkeypatch):
    monkeypatch.setenv("RUN_DEEP", "0")
    skipped = suite.runpytest("-rs")
    skipped.assert_outcomes(passed=7, skipped=2)
    assert "a deep test: runs under HYPOTHESIS_PROFILE=deep" in skipped.stdout.str()

    monkeypatch.setenv("RUN_DEEP", "1")
    suite.runpytest().assert_outcomes(passed=9)


def test_deep_slow_tests_weigh_nothing_when_skipped(pytester, monkeypatch):
    """A file whose slow tests are all deep and skipped takes no place before others."""
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n    deep: deep\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_a="import pytest\n\n@pytest.mark.slow\n@pytest.mark.deep\ndef test_a1(): pass\n",
        test_b="import pytest\n\n@pytest.mark.slow\ndef test_b1(): pass\n",
    )
    monkeypatch.setenv("RUN_DEEP", "0")

    result = pytester.runpytest("--collect-only", "-q")

    assert order(result) == ["test_b1", "test_a1"]


def test_every_pytest_plugin_the_test_extra_installs_is_loaded(pytestconfig):
    """The suite names its plugins in `addopts` (autoloading one makes pytest rewrite
    the asserts of its whole distribution): a plugin the test extra adds must be named
    there too, or its fixtures, markers and options are silently missing."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    test_extra = {  # importlib.metadata finds a distribution however its name is spelt
        req.name
        for spec in metadata.requires("litemlops") or []
        if (req := Requirement(spec)).marker is not None and req.marker.evaluate({"extra": "test"})
    }
    wanted = {
        entry.value
        for name in test_extra
        for entry in metadata.distribution(name).entry_points
        if entry.group == "pytest11" and entry.value != "xdist.looponfail"  # not used here
    }
    plugins = pytestconfig.pluginmanager.get_plugins()
    loaded = {getattr(plugin, "__name__", None) for plugin in plugins}

    assert wanted, test_extra  # the extra does install plugins (pytest-cov, hypothesis, ...)
    assert wanted <= loaded, sorted(wanted - loaded)
