"""The exported training DAG run by a real Airflow (`airflow dags test`) against a demo home.

Airflow is installed into a venv of its own, pinned by the constraints file beside
this test (Airflow's own constraints URL is on GitHub, which CI cannot reach), and
kept under the system temp dir keyed by that file's hash, so a rerun skips the
install. A deep test (`HYPOTHESIS_PROFILE=deep`); skipped there only when PyPI cannot be
reached to install Airflow.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

# Deep: installing Airflow takes 80 s on a new machine, and running the DAG 30 s more.
pytestmark = [pytest.mark.slow, pytest.mark.deep]

AIRFLOW_VERSION = "2.10.5"
CONSTRAINTS = Path(__file__).with_name(
    f"constraints-{AIRFLOW_VERSION}-py{sys.version_info.major}.{sys.version_info.minor}.txt"
)
PROJECT_BIN = Path(sys.executable).parent  # where this venv's `litemlops` command is
INSTALL_TIMEOUT = 600


def pypi_unreachable() -> str | None:
    """Why Airflow cannot be downloaded here, or None when PyPI answers."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/")
    try:
        with urllib.request.urlopen(f"{index}/apache-airflow/", timeout=15) as answer:
            answer.read(1)
    except OSError as exc:
        return f"cannot reach {index} to install Airflow ({exc})"
    return None


@pytest.fixture(scope="module")
def airflow_bin() -> Path:
    """The bin folder of a venv with Airflow installed: cached, else made now."""
    if not CONSTRAINTS.exists():
        pytest.skip(f"no pinned Airflow constraints for Python {sys.version.split()[0]}")
    digest = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:16]
    venv = Path(tempfile.gettempdir()) / f"litemlops-airflow-{digest}"
    ready = venv / "installed"
    if ready.exists():
        return venv / "bin"
    why = pypi_unreachable()
    if why is not None:
        pytest.skip(why)
    # The marker is written last: an interrupted install is made again, never used.
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", f"apache-airflow=={AIRFLOW_VERSION}",
         "-c", str(CONSTRAINTS)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    assert pip.returncode == 0, f"installing Airflow failed:\n{pip.stderr[-3000:]}"
    took = time.monotonic() - started
    ready.write_text(f"installed in {took:.0f} s\n")
    print(f"installed Airflow {AIRFLOW_VERSION} into {venv} in {took:.0f} s")
    return venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITEMLOPS_", "AIRFLOW"))}
    return {**env, **extra}


def test_airflow_runs_the_exported_training_dag_into_the_litemlops_history(
    airflow_bin, tmp_path
):
    home = tmp_path / "home"
    env = clean_env(
        LITEMLOPS_DEMO_DRIVERS="10", LITEMLOPS_DEMO_HOURS="72", LITEMLOPS_DEMO_LABELS="400"
    )
    made = subprocess.run(
        [sys.executable, "-m", "litemlops", "run", "--once", "--home", str(home)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    dags = tmp_path / "airflow" / "dags"
    exported = subprocess.run(
        [str(PROJECT_BIN / "litemlops"), "pipelines", "export", "airflow", "--out", str(dags),
         "--pipeline", "training", "--home", str(home)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr

    airflow_env = clean_env(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # The DAG's tasks find `litemlops` on PATH, as on a worker where it is installed.
        PATH=f"{PROJECT_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    airflow = [str(airflow_bin / "airflow")]
    migrated = subprocess.run(
        [*airflow, "db", "migrate"], capture_output=True, text=True, env=airflow_env, timeout=300
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    tested = subprocess.run(
        [*airflow, "dags", "test", "litemlops_training"],
        capture_output=True, text=True, env=airflow_env, timeout=600,
    )  # fmt: skip
    log = tested.stdout + tested.stderr
    assert tested.returncode == 0, log[-5000:]
    assert "state=success" in log, log[-5000:]

    runs = subprocess.run(
        [str(PROJECT_BIN / "litemlops"), "pipelines", "runs", "--pipeline", "training",
         "--json", "--home", str(home)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert runs.returncode == 0, runs.stderr
    newest = json.loads(runs.stdout)[0]
    assert (newest["trigger"], newest["state"]) == ("airflow", "success"), newest
    assert newest["payload"]["run_key"] in log  # Airflow's run id
    shown = subprocess.run(
        [str(PROJECT_BIN / "litemlops"), "pipelines", "show", newest["run_id"], "--json",
         "--home", str(home)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    tasks = json.loads(shown.stdout)["tasks"]
    assert [(t["task"], t["attempt"], t["state"]) for t in tasks] == [
        (name, 1, "success")
        for name in ("extract", "validate_data", "prepare", "train", "evaluate",
                     "validate_model", "register")
    ]  # fmt: skip
