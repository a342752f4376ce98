"""What a user installs: the wheel carries the type hints marker and the license."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_ships_py_typed_and_the_license(tmp_path):
    # Built from a copy: setuptools leaves a build/ folder beside the project it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "litemlops", source / "litemlops",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("litemlops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "litemlops/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names[-10:]


def test_tox_and_the_classifiers_name_the_supported_pythons():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    versions = {c.rsplit(" ", 1)[-1] for c in project["classifiers"] if "Python :: 3." in c}
    assert versions == {"3.11", "3.12", "3.13"}
    tox = (ROOT / "tox.ini").read_text()
    assert all(f"py{v.replace('.', '')}" in tox for v in versions)
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
