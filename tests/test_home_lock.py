import os
import subprocess
import sys
from pathlib import Path

import pytest

from litemlops.errors import HomeLockedError, LitemlopsError
from litemlops.home_lock import HomeLock

REPO_ROOT = Path(__file__).resolve().parents[1]

# Holds the lock until its stdin closes; says "locked" once it holds it, so the
# test waits on a line instead of sleeping.
HOLDER = """
import sys
from litemlops.home_lock import HomeLock
with HomeLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_acquire_writes_the_holders_pid(tmp_path):
    with HomeLock(tmp_path / "lock") as lock:
        assert lock.held
        assert (tmp_path / "lock").read_text().strip() == str(os.getpid())


def test_second_lock_on_the_same_home_is_refused_with_a_clear_message(tmp_path):
    with HomeLock(tmp_path / "lock"):
        other = HomeLock(tmp_path / "lock")
        with pytest.raises(HomeLockedError, match=r"is in use by process \d+") as info:
            other.acquire()

    message = str(info.value)
    assert message == (
        f"home {tmp_path} is in use by process {os.getpid()}; stop it or use another --home"
    )
    assert isinstance(info.value, LitemlopsError)
    assert isinstance(info.value, RuntimeError)
    assert not other.held


def test_released_lock_can_be_taken_again(tmp_path):
    first = HomeLock(tmp_path / "lock").acquire()
    first.release()
    first.release()  # a second release is a no-op

    with HomeLock(tmp_path / "lock") as second:
        assert second.held
    assert not second.held


def test_close_releases(tmp_path):
    lock = HomeLock(tmp_path / "lock").acquire()
    lock.close()

    HomeLock(tmp_path / "lock").acquire().close()


def test_acquire_twice_on_the_same_object_keeps_the_lock(tmp_path):
    lock = HomeLock(tmp_path / "lock")
    assert lock.acquire() is lock.acquire()

    lock.release()
    assert not lock.held


def test_lock_held_by_another_process_is_refused_until_that_process_exits(tmp_path):
    path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"

        with pytest.raises(HomeLockedError, match=rf"in use by process {holder.pid};"):
            HomeLock(path).acquire()
    finally:
        holder.communicate(timeout=30)  # closes stdin: the holder exits

    assert holder.returncode == 0
    with HomeLock(path) as lock:
        assert lock.held


def test_lock_of_a_killed_process_is_free(tmp_path):
    path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.communicate(timeout=30)

    with HomeLock(path) as lock:
        assert lock.held
