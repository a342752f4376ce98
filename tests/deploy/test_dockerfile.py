"""deploy/Dockerfile builds the image the Kubernetes manifests run: the project installed
from the repository on the oldest supported Python's slim image, run by a fixed non-root
user, the home on a volume, a health check on the port the command serves.

The instructions are read line by line here; building the image needs a Docker daemon
(the slow test does when one answers).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = (DOCKERFILE.read_text() if text is None else text).splitlines()
    found: list[tuple[str, str]] = []
    pending = ""
    for line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        name, _, rest = pending.strip().partition(" ")
        found.append((name.upper(), " ".join(rest.split())))
        pending = ""
    return found


def the(name: str) -> str:
    """The last such instruction (the one in force)."""
    return [value for found, value in instructions() if found == name][-1]


def command() -> list[str]:
    cmd = json.loads(the("CMD"))  # exec form: SIGTERM reaches python, not a shell
    assert isinstance(cmd, list)
    return cmd


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_the_base_is_the_slim_image_of_the_oldest_python_the_project_supports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    oldest = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])
    assert oldest is not None, project["requires-python"]
    (base,) = [value for name, value in instructions() if name == "FROM"]

    assert re.fullmatch(rf"python:{re.escape(oldest[1])}(\.\d+)?-slim(-\w+)?", base), base


def test_it_installs_the_project_from_the_repository_and_runs_as_a_fixed_non_root_user():
    found = instructions()
    names = [name for name, _ in found]
    user = the("USER")
    uid = user.partition(":")[0]
    install = [i for i, (name, value) in enumerate(found)
               if name == "RUN" and re.search(r"pip install \.(\s|$)", value)]

    assert uid.isdigit() and int(uid) != 0, "a numeric UID: runAsNonRoot can check it"
    assert any(f"--uid {uid}" in value for name, value in found if name == "RUN")
    assert install and install[-1] < names.index("USER"), "installed as root, run as the user"


def test_the_command_runs_litemlops_on_the_volume_reachable_from_outside():
    from litemlops.server.security import is_loopback

    cmd = command()
    value = the("VOLUME")
    volumes = [Path(v) for v in (json.loads(value) if value.startswith("[") else value.split())]

    assert cmd[:4] == ["python", "-m", "litemlops", "run"]
    assert any(Path(flag(cmd, "--home")).is_relative_to(v) for v in volumes)
    assert not is_loopback(flag(cmd, "--host"))
    assert the("EXPOSE").split("/")[0] == flag(cmd, "--port")


def test_the_health_check_asks_health_with_python_on_the_port_the_command_serves():
    check = the("HEALTHCHECK")
    probe = json.loads(check[check.index("CMD ") + 4:])
    port = flag(command(), "--port")

    assert probe[0] == "python", "the slim image has no curl"
    assert f"127.0.0.1:{port}/health'" in probe[-1]


def test_the_build_context_holds_what_the_image_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    copied = [src for name, value in instructions() if name == "COPY"
              for src in value.split()[:-1] if not src.startswith("--")]

    assert ignore[[line.strip() for line in ignore].index("**")] == "**"
    for src in copied:
        assert (ROOT / src).exists(), src
        assert f"!{src.rstrip('/')}" in [line.rstrip("/") for line in ignore], src


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _docker_works(), reason="no Docker daemon answers here")
def test_the_image_builds_and_its_health_check_passes(tmp_path):
    import time

    tag = "litemlops-test:latest"
    build = subprocess.run(
        ["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)],
        capture_output=True, text=True, timeout=1800,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    started = subprocess.run(
        ["docker", "run", "-d", "-e", "LITEMLOPS_SERVER_TOKEN=" + "t" * 32,
         "-e", "LITEMLOPS_DEMO_DRIVERS=5", "-e", "LITEMLOPS_DEMO_HOURS=48",
         "-e", "LITEMLOPS_DEMO_LABELS=400", tag],
        capture_output=True, text=True, timeout=120, check=True,
    )
    name = started.stdout.strip()
    try:
        deadline = time.monotonic() + 300
        status = ""
        while time.monotonic() < deadline and status not in ("healthy", "unhealthy"):
            time.sleep(2)
            status = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", name],
                capture_output=True, text=True, timeout=60,
            ).stdout.strip()
        user = subprocess.run(["docker", "exec", name, "id", "-u"],
                              capture_output=True, text=True, timeout=60).stdout.strip()
        assert status == "healthy", subprocess.run(
            ["docker", "logs", name], capture_output=True, text=True, timeout=60
        ).stdout[-3000:]
        assert user == the("USER").partition(":")[0]
        stopped = time.monotonic()
        subprocess.run(["docker", "stop", "-t", "30", name], check=True, timeout=120)
        assert time.monotonic() - stopped < 30, "stopped by SIGTERM, not killed"
        code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name],
                              capture_output=True, text=True, timeout=60).stdout.strip()
        assert code == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)
