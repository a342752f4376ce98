"""The fork server: pytest's status and output, a fresh import per run, a killed client."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent / "forkserver.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("server") / "fork.sock"
    process = subprocess.Popen([sys.executable, str(SERVER), "serve", str(path)])
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield path
    process.kill()
    process.wait()


def run(server, project, *args, **popen):
    command = [sys.executable, str(SERVER), "run", str(server), "--", "-q", "-p",
               "no:cacheprovider", "-p", "no:randomly", "-n", "0", *args]  # fmt: skip
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True,
                            **popen)  # fmt: skip


@pytest.fixture
def project(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    (tmp_path / "test_m.py").write_text("import m\n\n\ndef test_f():\n    assert m.f() == 1\n")
    return tmp_path


def test_the_client_exits_as_pytest_did_and_prints_its_output(server, project):
    passed = run(server, project, "test_m.py")
    assert passed.wait(60) == 0
    assert "1 passed" in passed.stdout.read()

    (project / "m.py").write_text("def f():\n    return 2\n")  # the same size, the same second
    failed = run(server, project, "test_m.py")
    assert failed.wait(60) == 1
    assert "assert 2 == 1" in failed.stdout.read()

    missing = run(server, project, "test_none.py")
    assert missing.wait(60) == 4  # pytest's "usage error": no such file


def test_a_killed_client_takes_its_tests_with_it_and_the_server_goes_on(server, project):
    (project / "test_slow.py").write_text(
        "import os, time\n\n\ndef test_slow():\n"
        f"    open({str(project / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
    )
    client = run(server, project, "test_slow.py", start_new_session=True)
    deadline = time.monotonic() + 60
    while not (project / "pid").exists() or not (project / "pid").read_text():
        assert time.monotonic() < deadline, "the test did not start"
        time.sleep(0.05)
    child = int((project / "pid").read_text())

    os.killpg(client.pid, signal.SIGKILL)  # as Cosmic Ray does at its timeout
    client.wait(10)
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the tests of a killed client still run"
        time.sleep(0.05)

    assert run(server, project, "test_m.py").wait(60) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_tests_past_their_time_are_stopped_and_the_run_counts_as_failed(server, project):
    hang = "import time\n\n\ndef test_hang():\n    time.sleep(600)\n"
    (project / "test_hang.py").write_text(hang)
    client = subprocess.run(
        [sys.executable, "-c", "import sys, forkserver; sys.exit(forkserver.run("
         f"{str(server)!r}, ['-q', '-p', 'no:randomly', '-n', '0', 'test_hang.py'], 2.0))"],
        cwd=project, env={**os.environ, "PYTHONPATH": str(SERVER.parent)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert client.returncode == 1
    assert "timed out: the tests were stopped after 2 s" in client.stdout
    assert run(server, project, "test_m.py").wait(60) == 0


def test_tests_that_take_more_memory_than_a_child_may_fail_with_memory_error(server, project):
    hog = "def test_hog():\n    assert bytearray(7 * 2**30)\n"
    (project / "test_hog.py").write_text(hog)
    client = run(server, project, "test_hog.py")
    assert client.wait(60) == 1
    assert "MemoryError" in client.stdout.read()


def test_without_a_server_the_tests_run_in_a_process_of_their_own(tmp_path, project):
    command = [sys.executable, "-c", "import sys, forkserver; sys.exit(forkserver.run("
               f"{str(tmp_path / 'none.sock')!r}, ['-q', '-p', 'no:randomly', '-n', '0', "
               "'test_m.py'], 60.0))"]  # fmt: skip
    # No bytecode: m.py is rewritten below within the same second at the same size, which
    # a cached .pyc of the first version would pass for.
    env = {**os.environ, "PYTHONPATH": str(SERVER.parent), "PYTHONDONTWRITEBYTECODE": "1"}
    passed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert passed.returncode == 0
    assert "fork server unavailable" in passed.stdout and "1 passed" in passed.stdout

    (project / "m.py").write_text("def f():\n    return 2\n")
    failed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert failed.returncode == 1
