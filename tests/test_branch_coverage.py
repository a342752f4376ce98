"""The core modules' branch-coverage check (tests/branch_coverage.py)."""

import tomllib
from pathlib import Path

import pytest
from branch_coverage import TARGET, Share, lines, shares, whole_run

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


def test_coverage_measures_the_modules_mutation_testing_covers():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    modules = tomllib.loads((ROOT / "mutation" / "modules.toml").read_text())["modules"]
    include = pyproject["tool"]["coverage"]["run"]["include"]
    assert sorted(include) == sorted(modules)
    assert pyproject["tool"]["coverage"]["run"]["branch"] is True
    assert all((ROOT / module).is_file() for module in include)


def test_a_test_file_named_after_a_core_module_is_among_its_mutation_tests():
    # Else the mutants its tests would kill count as survivors (alert_rules' did).
    modules = tomllib.loads((ROOT / "mutation" / "modules.toml").read_text())["modules"]
    missing = {
        module: left
        for module, settings in modules.items()
        if (
            left := [
                str(path.relative_to(ROOT))
                for path in sorted((ROOT / "tests").rglob(f"test_{Path(module).stem}*.py"))
                if str(path.relative_to(ROOT)) not in settings["tests"]
            ]
        )
    }
    assert missing == {}


def report(**files: tuple[int, int]) -> dict:
    return {
        "files": {
            name.replace("_", "/") + ".py": {
                "summary": {"num_branches": branches, "covered_branches": taken}
            }
            for name, (branches, taken) in files.items()
        }
    }


def test_shares_read_branches_and_branches_taken_per_file_in_order():
    found = shares(report(b=(20, 19), a=(4, 4), c=(0, 0)))
    assert found == [Share("a.py", 4, 4), Share("b.py", 20, 19), Share("c.py", 0, 0)]
    assert [s.percent for s in found] == [100.0, 95.0, 100.0]


@pytest.mark.parametrize(
    ("taken", "fails"),
    [(95, False), (94, True), (100, False), (0, True)],
)
def test_a_whole_run_fails_when_a_module_is_below_the_target(taken, fails):
    assert TARGET == 95.0
    found = [Share("ok.py", 10, 10), Share("core.py", 100, taken)]
    text, failed = lines(found, whole=True)
    assert failed is fails
    row = next(line for line in text if "core.py" in line)
    assert row.endswith("BELOW") is fails
    assert f"{taken}/100" in row
    assert ("below 95%: the run fails" in text[-1]) is fails
    assert not any(line.endswith("BELOW") for line in text if "ok.py" in line)


def test_a_partial_run_prints_the_shares_and_never_fails():
    text, failed = lines([Share("core.py", 100, 10)], whole=False)
    assert failed is False
    assert "BELOW" in text[1]
    assert text[-1] == "  (some tests only: not checked against the target)"


@pytest.mark.parametrize(
    ("args", "whole"),
    [
        ([], True),
        (["tests/test_branch_coverage.py"], False),
        (["-k", "coverage"], False),
        (["-m", "slow"], False),
        (["--lf"], False),
        (["-x"], False),
        (["--deselect", "tests/test_cli.py::test_help"], False),
    ],
)
def test_only_an_unselected_run_of_the_testpaths_is_whole(pytester, args, whole):
    pytester.makeini("[pytest]\ntestpaths = .\n")
    config = pytester.parseconfigure(*args)
    assert whole_run(config) is whole


CORE = """
def sign(x):
    if x < 0:
        return -1
    return 1
"""


# Plugins the project below does not need: they take seconds to import on a busy machine.
LIGHT = ["-p", "no:randomly", "-p", "no:schemathesis", "-p", "no:hypothesispytest",
         "-p", "no:anyio", "-p", "no:litemlops"]  # fmt: skip


def conftest_hooks() -> str:
    """This suite's coverage hooks, as tests/conftest.py defines them."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    start = text.index("@pytest.hookimpl(tryfirst=True)\ndef pytest_collection(")
    end = text.index("\n\n\n", text.index("def pytest_runtestloop"))
    return "import branch_coverage\nimport pytest\n\n\n" + text[start:end]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_whole_run_below_the_target_fails_and_a_partial_one_only_prints(
    pytester, monkeypatch, workers
):
    # A project of one core module, with this suite's hooks: once in process, once over
    # xdist (its data combined first). Its own test (the one modules.toml lists) takes one
    # of its two branches; another file's test takes the other, and is not measured (it
    # runs first, untraced: measuring resumes for the core's test). So 50 %, and the
    # module's lines run at import are measured, though collection is not.
    pytester.makepyfile(
        core=CORE,
        test_core="from core import sign\n\ndef test_positive():\n    assert sign(2) == 1\n",
        test_a_other="import sys\n\nfrom core import sign\n\ndef test_negative():\n"
        "    assert sign(-2) == -1\n    assert sys.gettrace() is None\n",  # nothing traces it
    )
    pytester.mkdir("mutation")
    (pytester.path / "mutation" / "modules.toml").write_text(
        '[modules."core.py"]\ntests = ["test_core.py"]\n'
    )
    pytester.makeconftest(conftest_hooks())
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["."]\n'
        '[tool.coverage.run]\nbranch = true\ninclude = ["core.py"]\n'
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))
    whole = pytester.runpytest_subprocess(*LIGHT, "-n", workers, "--cov")
    assert whole.ret == pytest.ExitCode.TESTS_FAILED
    whole.stdout.fnmatch_lines(["*2 passed*"])
    whole.stdout.re_match_lines([r"core\.py\s+4\s+1\s+2\s+1\s+67%"])  # statements, missed, branches
    whole.stdout.fnmatch_lines(["  core.py  * 1/2 * 50.0%  BELOW", "  1 below 95%: the run fails"])
    if workers == "2":
        return
    part = pytester.runpytest_subprocess(*LIGHT, "--cov", "-k", "positive")
    assert part.ret == pytest.ExitCode.OK
    part.stdout.fnmatch_lines(["  core.py  * 50.0%  BELOW", "  (some tests only: *"])
    plain = pytester.runpytest_subprocess(*LIGHT)
    assert plain.ret == pytest.ExitCode.OK
    assert "branches taken" not in plain.stdout.str()
