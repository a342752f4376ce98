"""The README runs as written: each of its code blocks is executed here, except the two
set-up commands, which are checked to be what CI (`.ci/run`) runs.

- `python` blocks run as a script in an empty folder holding a copy of the repository's
  `data/` (a block with a `test_` function runs under pytest instead);
- `sh` blocks marked "with `run` going in another terminal" run in bash beside a live
  `litemlops run` started in their folder (its free port in place of 8000), with curl
  failing on an HTTP error;
- `text` blocks are the command synopsis: each command in it must exist, with each
  option it shows;
- `sh` blocks marked "not run by the tests" need what no test machine has (a container
  engine, a cluster): the files they use are checked instead (tests/deploy).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
INSTALL = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
    ".venv/bin/python -m litemlops run"
)
TESTS = ".venv/bin/python -m pytest -q --cov"
BESIDE_RUN = "with `run` going in another terminal"
NOT_RUN = "not run by the tests"


def blocks() -> list[tuple[str, str, str]]:
    """(language, code, the paragraph before it) of each fenced block, in order."""
    text = README.read_text()
    found = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
        found.append((match.group(1), match.group(2), before))
    return found


def of(language: str, *, beside_run: bool | None = None) -> list[str]:
    return [
        code
        for lang, code, before in blocks()
        if lang == language
        and NOT_RUN not in before
        and (beside_run is None or (BESIDE_RUN in before) == beside_run)
    ]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def test_every_block_has_a_language_and_is_run_or_checked_here():
    languages = [lang for lang, _, _ in blocks()]
    assert set(languages) <= {"sh", "python", "text", "toml"}, languages
    setup = [code for code in of("sh", beside_run=False)]
    assert [code.strip() for code in setup] == [INSTALL, TESTS], (
        "the README has exactly two set-up commands; every other sh block runs beside `run`"
    )


def test_blocks_not_run_here_are_shell_and_name_files_that_exist():
    not_run = [(lang, code) for lang, code, before in blocks() if NOT_RUN in before]
    assert not_run, "the container and Kubernetes blocks are marked"
    for lang, code in not_run:
        assert lang == "sh"
        for path in re.findall(r"(?<![\w/.-])((?:deploy|litemlops)/[\w./-]+)", code):
            assert (ROOT / path).exists(), path


def test_the_set_up_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in ci
    assert ".venv/bin/python -m pip install -e '.[test]'" in ci
    assert f"{TESTS} ||" in ci or ci.rstrip().endswith(TESTS)


def _folder(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "data", tmp_path / "data")
    return tmp_path


@pytest.mark.parametrize(
    "code",
    [c for c in of("python") if "def test_" not in c],
    ids=lambda code: code.split("\n", 1)[0][:40],
)
def test_python_example_runs_as_written(code, tmp_path):
    folder = _folder(tmp_path)
    (folder / "example.py").write_text(code)

    done = subprocess.run(
        [sys.executable, "example.py"],
        cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=180,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_testing_example_passes_under_pytest(tmp_path):
    (code,) = [c for c in of("python") if "def test_" in c]
    (tmp_path / "test_example.py").write_text(code)

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=180,
    )

    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("code", of("toml"))
def test_config_example_loads_in_every_environment_it_names(code, tmp_path):
    import tomllib

    from litemlops.config import Config

    (tmp_path / "config.toml").write_text(code)
    names = [None, *tomllib.loads(code).get("env", {})]
    for name in names:
        config = Config.load(tmp_path, env={}, environment=name)
        assert config.environment == name
    assert len(names) > 1


def test_command_synopsis_names_commands_and_options_that_exist():
    import click
    from click.testing import CliRunner

    from litemlops.cli import cli as main

    (synopsis,) = of("text")
    # A line is `litemlops COMMAND ...` or `litemlops GROUP SUB ... | SUB ... | ...`; a
    # line ending in a backslash goes on below.
    lines = synopsis.replace("\\\n", " ").strip().splitlines()
    checked = 0
    for line in lines:
        first, _, rest = line.removeprefix("litemlops ").partition(" ")
        command = main.get_command(click.Context(main), first)
        assert command is not None, f"`litemlops {first}` is no command"
        if isinstance(command, click.Group):
            alternatives = [[*alt.strip().split(" ", 1), ""] for alt in rest.split(" | ")]
            invocations = [([first, alt[0]], alt[1]) for alt in alternatives]
        else:
            invocations = [([first], rest)]
        for path, shown in invocations:
            result = CliRunner().invoke(main, [*path, "--help"])
            assert result.exit_code == 0, f"`litemlops {' '.join(path)}`: {result.output}"
            for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", shown):
                exists = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.output)
                assert exists, f"`litemlops {' '.join(path)}` has no {option}"
            checked += 1
    assert checked >= 25, checked


# Few drivers and hours keep the bootstrap quick; the labels stay the default's 2,000, on
# which the tour's random forest clears the default gate (max_rmse 0.5) by a margin: on
# 400, the rows the time-keyed split drew decided it (0.39-0.52 across splits).
SMALL = {"LITEMLOPS_DEMO_DRIVERS": "10", "LITEMLOPS_DEMO_HOURS": "72",
         "LITEMLOPS_DEMO_LABELS": "2000"}


@pytest.fixture(scope="module")
def beside_run(tmp_path_factory: pytest.TempPathFactory):
    """A folder where `python -m litemlops run` serves its default home (`.litemlops`), as
    a newcomer's first command left it, and the URL it serves at. `.venv` in the folder
    is the Python running these tests."""
    import json
    import time

    import httpx

    folder = _folder(tmp_path_factory.mktemp("readme"))
    if sys.prefix != sys.base_prefix:
        (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    else:
        (folder / ".venv" / "bin").mkdir(parents=True)
        shim = folder / ".venv" / "bin" / "python"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        shim.chmod(0o755)
    log = (folder / "run.out").open("w")
    process = subprocess.Popen(
        [".venv/bin/python", "-m", "litemlops", "run", "--port", "0"],
        cwd=folder, env={**clean_env(), **SMALL}, stdout=log, stderr=subprocess.STDOUT,
    )
    address = folder / ".litemlops" / "server.json"
    deadline = time.monotonic() + 180
    url = None
    while time.monotonic() < deadline and process.poll() is None:
        if address.exists():
            url = json.loads(address.read_text())["url"]
            if httpx.get(f"{url}/ready").status_code == 200:
                break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"`run` did not get ready: {(folder / 'run.out').read_text()[-3000:]}")
    yield folder, url
    process.terminate()
    process.wait(timeout=60)
    log.close()


def run_beside(code: str, folder: Path, url: str) -> subprocess.CompletedProcess[str]:
    """A README sh block as written, but at `url` and with curl failing on HTTP errors."""
    script = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; echo; }\n"
    script += code.replace("http://127.0.0.1:8000", url)
    return subprocess.run(
        ["bash", "-c", script], cwd=folder, env=clean_env(), capture_output=True, text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's tour uses curl")
@pytest.mark.parametrize(
    "code", of("sh", beside_run=True), ids=lambda code: code.split("\n", 1)[0][:40]
)
def test_shell_walk_through_runs_beside_run(code, beside_run):
    folder, url = beside_run

    done = run_beside(code, folder, url)

    # `run`'s own output too: a block can fail because the server died under it
    ran = (folder / "run.out").read_text(errors="replace")[-4000:]
    assert done.returncode == 0, f"{done.stdout}{done.stderr}\n--- run:\n{ran}"
