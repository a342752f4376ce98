"""The shared DuckDB database reads run on: each read's connection is its own."""

import multiprocessing
import os
import threading

import pandas as pd
import pytest

from litemlops.monitoring import duck


def test_each_connection_has_its_own_settings_and_registered_frames():
    with duck.connection() as first:
        first.register("frame", pd.DataFrame({"x": [1, 2]}))
        first.execute("SET TimeZone = 'America/New_York'")
        with duck.connection() as second:
            assert second.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
            with pytest.raises(Exception, match="frame"):
                second.execute("SELECT * FROM frame").fetchall()
        assert first.execute("SELECT sum(x) FROM frame").fetchone() == (3,)
    with duck.connection() as later:
        assert later.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_threads_read_at_once_each_on_its_own_connection():
    errors, sums = [], []

    def read(n):
        try:
            with duck.connection() as con:
                con.register("frame", pd.DataFrame({"x": range(n)}))
                sums.append((n, con.execute("SELECT sum(x) FROM frame").fetchone()[0]))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(1, 17)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(sums) == [(n, n * (n - 1) // 2) for n in range(1, 17)]


def _in_child(queue):
    with duck.connection() as con:
        queue.put((os.getpid(), duck._shared[0], con.execute("SELECT 42").fetchone()[0]))


def test_a_forked_process_reads_with_a_database_of_its_own_and_so_does_its_parent():
    # DuckDB's threads do not survive a fork: a child opening a database while the
    # parent's was open would wait for them forever.
    with duck.connection():
        pass
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_in_child, args=(queue,))
    child.start()
    pid, owner, answer = queue.get(timeout=60)
    child.join(60)
    assert (owner, answer) == (pid, 42)
    assert pid != os.getpid()
    with duck.connection() as con:
        assert con.execute("SELECT 7").fetchone() == (7,)
    assert duck._shared[0] == os.getpid()


def test_reads_reuse_one_database_and_count_the_connections_open_on_it():
    with duck.connection():
        shared = duck._shared
        with duck.connection():
            assert duck._busy == 2
        assert duck._busy == 1
    with duck.connection():
        assert duck._shared is shared  # opened once per process, not per read
    assert duck._busy == 0
    assert shared[0] == os.getpid()


def test_before_a_fork_the_database_is_closed_only_when_no_read_uses_it():
    with duck.connection() as con:
        open_one = duck._shared
        duck._close_before_fork()
        assert duck._shared is open_one  # a read is under way: left to finish
        assert con.execute("SELECT 1").fetchone() == (1,)
    duck._close_before_fork()
    assert duck._shared is None  # idle: closed, so a child can open its own
    with duck.connection() as con:  # and the next read opens it again
        assert con.execute("SELECT 2").fetchone() == (2,)
    assert duck._shared is not None and duck._shared is not open_one


def test_a_child_keeps_what_it_inherited_and_counts_no_reads_of_its_parent():
    with duck.connection():
        inherited = duck._shared[1]
        before = len(duck._inherited)
        duck._forked()  # as in a child forked while this read was under way
        assert duck._busy == 0
        assert duck._inherited[before:] == [inherited]
        duck._busy = 1  # back to the parent's count for the read still open
    del duck._inherited[before:]


def test_a_child_forked_with_no_database_open_inherits_none_and_opens_its_own():
    with duck.connection():
        pass
    duck._close_before_fork()  # idle, as before every fork: closed
    assert duck._shared is None
    inherited, lock = list(duck._inherited), duck._lock

    duck._forked()  # as in a child of this process

    assert duck._inherited == inherited  # nothing open, so nothing kept
    assert duck._busy == 0 and duck._lock is not lock
    with duck.connection() as con:
        assert con.execute("SELECT 3").fetchone() == (3,)
    assert duck._shared[0] == os.getpid()


class Database:
    """Stands for a database another process opened: it records a close."""

    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


@pytest.mark.parametrize("other", [-1, 1])
def test_a_database_of_another_process_is_never_read_nor_closed_here(monkeypatch, other):
    # An inherited database carries its opener's pid, below or above ours (pids wrap):
    # a read opens a database of this process, and a fork leaves the inherited one.
    inherited = Database()
    monkeypatch.setattr(duck, "_shared", (os.getpid() + other, inherited))
    monkeypatch.setattr(duck, "_busy", 0)
    duck._close_before_fork()
    assert duck._shared == (os.getpid() + other, inherited) and not inherited.closed
    with duck.connection() as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
    assert duck._shared[0] == os.getpid() and duck._shared[1] is not inherited
    assert not inherited.closed
    duck._close_before_fork()  # this process's own, idle: closed
    assert duck._shared is None


def test_the_fork_hooks_are_registered_once_whatever_databases_follow(monkeypatch):
    registered = []
    monkeypatch.setattr(duck, "_watching", False)
    monkeypatch.setattr(duck, "_shared", None)
    monkeypatch.setattr(os, "register_at_fork", lambda **hooks: registered.append(hooks))
    for _ in range(3):
        with duck.connection():
            pass
        duck._close_before_fork()  # the next read opens a new database
    assert registered == [{"before": duck._close_before_fork, "after_in_child": duck._forked}]
