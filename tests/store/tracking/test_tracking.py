import json
import math
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from litemlops.errors import (
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    LitemlopsError,
    ParamConflictError,
    RunNotFoundError,
    RunStateError,
    TamperedArtifactError,
    ValidationError,
)
from litemlops.store.tracking.tracker import (
    Tracker,
    fingerprint,
    git_commit,
    process_alive,
    process_start,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)



def test_run_records_params_metrics_tags_and_ends_finished(tracker):
    with tracker.start_run("driver", "lr", tags={"team": "ranking"}) as run:
        run.log_params({"alpha": 0.5, "layers": [1, 2]})
        run.log_metric("auc", 0.7, step=1)
        run.log_metrics({"auc": 0.8, "rmse": 0.3}, step=2)
    info = tracker.get_run(run.id)
    assert info.status == "finished" and info.end_time is not None
    assert info.experiment == "driver" and info.name == "lr"
    assert info.params == {"alpha": "0.5", "layers": "[1, 2]"}
    assert info.metrics == {"auc": 0.8, "rmse": 0.3}
    assert info.tags == {"team": "ranking"}


def test_latest_metric_is_the_highest_step_not_the_last_logged(tracker):
    with tracker.start_run() as run:
        run.log_metric("loss", 0.5, step=3)
        run.log_metric("loss", 0.9, step=1)  # a late, older step
    assert tracker.get_run(run.id).metrics["loss"] == 0.5
    history = tracker.metric_history(run.id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.9), (3, 0.5)]


def test_an_exception_ends_the_run_failed_with_the_error(tracker):
    with pytest.raises(ZeroDivisionError, match="division by zero"), tracker.start_run() as run:
        run.log_metric("x", 1)
        1 / 0  # noqa: B018
    info = tracker.get_run(run.id)
    assert info.status == "failed" and "ZeroDivisionError" in info.error


def test_relogging_a_param_with_another_value_is_refused_and_keeps_the_first(tracker):
    with tracker.start_run() as run:
        run.log_param("alpha", 0.5)
        run.log_param("alpha", "0.5")  # the same value again is fine
        with pytest.raises(ParamConflictError, match="alpha"):
            run.log_params({"alpha": 0.7, "beta": 1})
    assert tracker.get_run(run.id).params == {"alpha": "0.5"}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.5", None, True])
def test_non_finite_or_non_numeric_metrics_are_refused(tracker, value):
    with tracker.start_run() as run, pytest.raises(ValidationError, match="metric 'm'"):
        run.log_metric("m", value)
    assert tracker.get_run(run.id).metrics == {}


@pytest.mark.parametrize("key", ["", "../x", "/abs", "a" * 251, "semi;colon", 3])
def test_bad_keys_are_refused(tracker, key):
    with tracker.start_run() as run, pytest.raises(ValidationError, match="invalid"):
        run.log_param(key, 1)


def test_logging_to_an_ended_run_is_refused(tracker):
    with tracker.start_run() as run:
        pass
    with pytest.raises(RunStateError, match="has ended"):
        run.log_metric("x", 1)
    with pytest.raises(RunStateError, match="already ended as finished"):
        tracker.end_run(run.id)


def test_unknown_names_raise_key_errors_naming_them(tracker):
    with pytest.raises(RunNotFoundError, match="nope"):
        tracker.get_run("nope")
    with pytest.raises(KeyError, match="no experiment 'missing'"):
        tracker.get_experiment("missing")
    with pytest.raises(ExperimentNotFoundError, match="missing"):
        tracker.list_runs("missing")
    with pytest.raises(RunNotFoundError, match=r"no run with id '0{32}'"):
        tracker.start_run(parent_run_id="0" * 32)


def test_artifacts_are_content_addressed_and_downloaded_verified(tracker, tmp_path):
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.txt").write_text("auc 0.8")
    (folder / "plots" / "roc.txt").write_text("curve")
    (tmp_path / "same.txt").write_text("auc 0.8")
    with tracker.start_run() as run:
        assert run.log_artifact(folder) == ["report/plots/roc.txt", "report/summary.txt"]
        assert run.log_artifact(tmp_path / "same.txt", "copies") == ["copies/same.txt"]
        run.log_dict({"k": 1}, "config/params.json")
    listed = {a["path"]: a["sha256"] for a in tracker.artifact_list(run.id)}
    assert listed["report/summary.txt"] == listed["copies/same.txt"]  # stored once
    out = tracker.download_artifact(run.id, "report/plots/roc.txt", tmp_path / "roc.txt")
    assert out.read_text() == "curve"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../escape.txt", "contains a '..' component"),
        ("/etc/passwd", "is absolute"),
        ("a/../../b", "contains a '..' component"),
        ("~/x", "starts with ~"),
        ("c:/x", "contains a drive letter"),
    ],
)
def test_artifact_paths_that_escape_are_refused(tracker, tmp_path, path, reason):
    (tmp_path / "f.txt").write_text("x")
    expected = re.escape(f"artifact path '{path}/f.txt' {reason};")
    with tracker.start_run() as run, pytest.raises(ValidationError, match=expected):
        run.log_artifact(tmp_path / "f.txt", path)
    assert tracker.artifact_list(run.id) == []


def test_runs_of_dead_processes_are_marked_interrupted_live_ones_are_not(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "registry.db"
    code = (
        "import sys; from litemlops.store.tracking.tracker import Tracker\n"
        "tracker = Tracker(sys.argv[1])\n"
        "print(tracker.start_run().id, tracker.start_run(local=False).id)\n"  # neither ended
    )
    dead, remote = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                                  text=True, check=True).stdout.split()  # fmt: skip
    with Tracker(path) as t:
        live = t.start_run()  # this process is alive: e.g. a script logging right now
        assert t.mark_interrupted() == [dead]
        assert t.get_run(live.id).status == "running"
        # A client elsewhere logs to the run its server started (MLflow's API): the
        # server's end is not the run's.
        assert t.get_run(remote).status == "running"
        info = t.get_run(dead)
        live.end()
    assert info.status == "killed" and "interrupted" in info.error


def test_a_run_keeps_a_given_start_time_and_a_remote_one_only_a_commit_it_is_told(tmp_path):
    repo = tmp_path / "code"  # the server's own checkout: not the remote client's code
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("b" * 40 + "\n")
    at = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    with Tracker(tmp_path / "r.db", code_dir=repo, clock=lambda: T0) as tracker:
        remote = tracker.get_run(tracker.start_run("e", start_time=at, local=False).id)
        here = tracker.get_run(tracker.start_run("e").id)
        told = tracker.get_run(tracker.start_run("e", local=False, commit="c" * 40).id)
    assert (remote.start_time, remote.status, remote.git_commit) == (at, "running", None)
    assert (here.start_time, here.status, here.git_commit) == (T0, "running", "b" * 40)
    assert told.git_commit == "c" * 40
    assert here.name == f"run-{here.run_id[:8]}"  # a run not named: its id's first 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_time": "2026-01-01"}, "times must be timezone-aware datetimes, got '2026-01-01'"),
        ({"start_time": datetime(2026, 1, 1)}, "times must be timezone-aware datetimes"),
        ({"commit": 5}, "a run's commit is a non-empty string, got 5"),
        ({"commit": " "}, "a run's commit is a non-empty string, got ' '"),
        ({"parent_run_id": "nope"}, "no run with id 'nope'"),
    ],
)
def test_a_run_refused_at_its_start_leaves_no_trace(tracker, options, message):
    with pytest.raises(LitemlopsError, match=re.escape(message)):
        tracker.start_run("never-made", local=False, **options)
    assert tracker.list_runs() == []
    assert "never-made" not in [e.name for e in tracker.list_experiments()]


def test_a_worktree_and_packed_refs_and_a_detached_head_give_their_commit(tmp_path):
    store = tmp_path / "main.git" / "worktrees" / "wt"
    store.mkdir(parents=True)
    (store / "HEAD").write_text("ref: refs/heads/topic\n")
    (store / "packed-refs").write_text(f"# pack-refs\n{'c' * 40} refs/heads/other\n"
                                       f"{'b' * 40} refs/heads/topic\n")  # fmt: skip
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: ../main.git/worktrees/wt\n")  # relative to it
    assert git_commit(worktree / "src") == "b" * 40
    (store / "packed-refs").write_text(f"{'c' * 40} refs/heads/other\n")
    assert git_commit(worktree) is None  # the branch has no commit yet
    (store / "HEAD").write_text("d" * 40 + "\n")
    assert git_commit(worktree) == "d" * 40


def test_a_pid_given_to_a_newer_process_is_not_the_one_recorded():
    import os

    started = process_start(os.getpid())
    assert started is not None
    assert process_alive(os.getpid(), started) and process_alive(os.getpid())
    assert not process_alive(os.getpid(), started + 1)
    assert not process_alive(None)


def test_nested_runs_and_git_commit(tmp_path):
    repo = tmp_path / "code"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    assert git_commit(repo / "sub") == "a" * 40
    with Tracker(tmp_path / "r.db", code_dir=repo) as t:
        with t.start_run("e") as parent, t.start_run("e", parent_run_id=parent.id) as child:
            pass
        assert t.get_run(child.id).parent_run_id == parent.id
        assert t.get_run(parent.id).git_commit == "a" * 40
    assert git_commit(tmp_path / "elsewhere") is None


def test_training_data_fingerprint_and_inputs(tracker):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) != fingerprint(frame.assign(a=[1, 3]))
    with tracker.start_run() as run:
        run.log_input("training", data=frame, feature_views={"driver_stats": 2})
    (inp,) = tracker.run_inputs(run.id)
    assert inp["rows"] == 2 and inp["feature_views"] == {"driver_stats": 2}
    assert inp["sha256"] == fingerprint(frame)[1]


def test_training_data_may_be_an_array_and_anything_else_is_refused_by_name(tracker):
    import numpy as np

    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with tracker.start_run() as run:
        run.log_input("training", data=X)
        run.log_input("labels", data=np.array([0, 1, 1]))
        with pytest.raises(ValidationError, match="not list"):
            run.log_input("other", data=[[1, 2]])
        with pytest.raises(ValidationError, match=r"shape \(1, 1, 1\)"):
            run.log_input("other", data=np.zeros((1, 1, 1)))
    inputs = {i["name"]: i for i in tracker.run_inputs(run.id)}
    assert inputs["training"]["sha256"] == fingerprint(pd.DataFrame(X))[1]
    assert inputs["training"]["rows"] == 3 and inputs["training"]["columns"] == ["0", "1"]
    assert inputs["labels"]["rows"] == 3 and "other" not in inputs


def test_schema_version_is_recorded_and_a_newer_one_refused(tmp_path):
    import sqlite3

    from litemlops.errors import ConfigError
    from litemlops.store.tracking.tracking_db import MIGRATIONS

    path = tmp_path / "registry.db"
    Tracker(path).close()
    con = sqlite3.connect(path, isolation_level=None)
    version = "SELECT version FROM schema_versions WHERE owner = 'tracking'"
    assert con.execute(version).fetchone()[0] == len(MIGRATIONS)
    con.execute(
        "UPDATE schema_versions SET version = ? WHERE owner = 'tracking'", [len(MIGRATIONS) + 1]
    )
    con.close()
    with pytest.raises(ConfigError, match="newer"):
        Tracker(path)


def test_numpy_integer_steps_are_accepted_and_list_runs_is_newest_first(tracker):
    import numpy as np

    with tracker.start_run("e", "first") as first:
        first.log_metric("loss", 0.5, step=np.int64(4))
    with tracker.start_run("e", "second"):
        pass
    assert [m.step for m in tracker.metric_history(first.id, "loss")] == [4]
    assert [r.name for r in tracker.list_runs("e")] == ["second", "first"]
    assert tracker.list_runs("e")[1].metrics == {"loss": 0.5}


def test_processes_racing_to_create_a_new_database_all_succeed(tmp_path):
    import subprocess
    import sys
    import time

    path = tmp_path / "new" / "registry.db"
    path.parent.mkdir()
    start = time.time() + 1.0
    code = (
        "import sys, time\n"
        "from litemlops.store.tracking.tracking_db import TrackingDB\n"
        "start = float(sys.argv[2])\n"
        "while time.time() < start: pass\n"
        "TrackingDB(sys.argv[1]).close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(start)],
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors


def test_an_open_sqlite_connection_is_used_with_artifacts_beside_its_file(tmp_path):
    import sqlite3

    con = sqlite3.connect(tmp_path / "registry.db", isolation_level=None,
                          check_same_thread=False)
    with Tracker(con) as t, t.start_run() as run:
        run.log_dict({"a": 1}, "a.json")
    assert (tmp_path / "artifacts").is_dir()
    con.execute("SELECT 1")  # still open: it is the caller's
    with Tracker(tmp_path / "registry.db") as t:
        out = t.download_artifact(run.id, "a.json", tmp_path / "a.json")
    assert out.read_text().strip().startswith("{")


def test_short_lived_threads_do_not_leave_connections_open(tracker):
    import threading

    with tracker.start_run() as run:
        for i in range(40):
            thread = threading.Thread(target=run.log_metric, args=("m", i), kwargs={"step": i})
            thread.start()
            thread.join()
    assert len(tracker.db._all) <= 2
    assert len(tracker.metric_history(run.id, "m")) == 40


def test_forked_children_open_their_own_connections(tmp_path):
    """multiprocessing's fork start method: children must not share the parent's
    SQLite connections or locks. (Forking while another thread is inside SQLite
    is unsafe for any SQLite user; use the spawn or forkserver start method then.)"""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    with Tracker(tmp_path / "r.db") as t, t.start_run() as run:
        run.log_metric("parent", 1)  # the parent has a connection and has used the locks
        with t.db._writer:  # held by the parent while forking: the child must not wait on it
            pids = []
            for n in range(3):
                pid = os.fork()
                if pid == 0:  # the child: log, then leave without running atexit handlers
                    code = 0
                    try:
                        for i in range(20):
                            run.log_metric(f"child{n}", i, step=i)
                    except BaseException:
                        code = 1
                    os._exit(code)
                pids.append(pid)
        codes = [_wait(pid, timeout=30) for pid in pids]
        assert codes == [0, 0, 0]
        assert len(t.metric_history(run.id, "child2")) == 20


def _wait(pid, timeout):
    """The child's exit code; a child still alive after `timeout` is killed (a deadlock)."""
    import os
    import signal
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "deadlocked"


def test_artifact_path_is_a_folder_links_out_are_skipped_and_dot_works(tracker, tmp_path):
    import os

    (tmp_path / "roc.png").write_bytes(b"roc")
    (tmp_path / "pr.png").write_bytes(b"pr")
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.txt").write_text("m")
    (folder / "inside.txt").symlink_to(folder / "model.txt")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    with tracker.start_run() as run:
        run.log_artifact(tmp_path / "roc.png", "plots")
        run.log_artifact(tmp_path / "pr.png", "plots")
        assert run.log_artifact(folder) == ["out/inside.txt", "out/model.txt"]
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            assert run.log_artifact(".", "here") == ["here/inside.txt", "here/model.txt"]
        finally:
            os.chdir(cwd)
    paths = [a["path"] for a in tracker.artifact_list(run.id)]
    assert "plots/roc.png" in paths and "plots/pr.png" in paths
    assert not any("link" in p for p in paths)


def test_download_into_a_folder_and_from_an_unknown_run(tracker, tmp_path):
    with tracker.start_run() as run:
        run.log_dict({"a": 1}, "cfg/a.json")
        run.log_dict({"b": 2}, "top.json")  # at the run's top: a path without a folder
    assert tracker.download_artifact(run.id, "cfg/a.json", tmp_path) == tmp_path / "a.json"
    assert tracker.download_artifact(run.id, "top.json", tmp_path) == tmp_path / "top.json"
    assert json.loads((tmp_path / "top.json").read_text()) == {"b": 2}
    with pytest.raises(RunNotFoundError, match=r"no run with id 'f{32}'"):
        tracker.download_artifact("f" * 32, "cfg/a.json", tmp_path)


def test_read_artifact_gives_the_verified_bytes_and_refuses_changed_ones(tracker):
    with tracker.start_run() as run:
        run.log_dict({"a": 1}, "cfg/a.json")
    assert json.loads(tracker.read_artifact(run.id, "cfg/a.json")) == {"a": 1}
    with pytest.raises(ArtifactNotFoundError, match=f"run {run.id} has no artifact 'cfg/missing"):
        tracker.read_artifact(run.id, "cfg/missing.json")
    with pytest.raises(RunNotFoundError, match=r"no run with id 'f{32}'"):
        tracker.read_artifact("f" * 32, "cfg/a.json")
    sha256 = tracker.artifact_list(run.id)[0]["sha256"]
    tracker.artifacts.path(sha256).write_text('{"a": 2}')
    with pytest.raises(TamperedArtifactError, match=f"artifact {sha256} changed since"):
        tracker.read_artifact(run.id, "cfg/a.json")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.log_metric("m", 10**400), "finite number"),
        (lambda r: r.log_metric("m", [1, 2]), "must be a number"),
        (lambda r: r.log_metric("m", 1, step=2**70), "64-bit integer"),
        (lambda r: r.log_metric("m", 1, timestamp=datetime(2026, 1, 1)), "timezone-aware"),
        (lambda r: r.set_tag("note", "x" * 9000), "at most 8000"),
    ],
)
def test_out_of_range_values_get_validation_errors(tracker, call, message):
    with tracker.start_run() as run, pytest.raises(ValidationError, match=message):
        call(run)


def test_unicode_keys_are_accepted(tracker):
    with tracker.start_run() as run:
        run.log_metric("độ_chính_xác", 0.9)
    assert tracker.get_run(run.id).metrics == {"độ_chính_xác": 0.9}


def test_a_key_ending_in_a_line_break_is_refused():
    from litemlops.store.tracking.tracking_types import check_key

    assert check_key("loss", "metric") == "loss"
    with pytest.raises(ValidationError, match="invalid metric key"):
        check_key("loss\n", "metric")


def test_a_runs_logged_models_are_listed_by_name_with_their_digests(tracker):
    with tracker.start_run() as run:
        second = run.log_model({"w": 2}, "second")
        first = run.log_model({"w": 1}, "first")
    with tracker.start_run() as other:
        other.log_model({"w": 3}, "elsewhere")
    models = tracker.logged_models(run.id)
    assert [(m.name, m.sha256, m.run_id) for m in models] == [
        ("first", first.sha256, run.id),
        ("second", second.sha256, run.id),
    ]
    assert models[0] == tracker.logged_model(run.id, "first")
    with tracker.start_run() as empty:
        pass
    assert tracker.logged_models(empty.id) == []


@pytest.fixture(scope="module")
def many_runs():
    """A tracker with runs whose ids share prefixes (hex, so 40 ids share first characters)."""
    with Tracker(":memory:") as t:
        for _ in range(40):
            with t.start_run("prefixes"):
                pass
        yield t, sorted(r.run_id for r in t.list_runs("prefixes"))


@settings(max_examples=examples(150), deadline=None)
@given(data=st.data(), limit=st.integers(1, 50))
def test_run_ids_with_a_prefix_are_exactly_the_ids_that_start_with_it(many_runs, data, limit):
    tracker, ids = many_runs
    prefix = data.draw(
        st.one_of(
            st.sampled_from(ids).flatmap(lambda i: st.integers(0, 32).map(lambda n: i[:n])),
            st.text(alphabet="0123456789abcdef%_g\u00e9", max_size=4),
        )
    )
    expected = [i for i in ids if i.startswith(prefix)][:limit]
    assert tracker.run_ids_with_prefix(prefix, limit) == expected


def test_a_run_id_resolves_from_a_unique_prefix_and_refuses_a_bad_one(many_runs):
    tracker, ids = many_runs
    unique = next(
        i[:n] for n in range(6, 33) for i in ids if sum(j.startswith(i[:n]) for j in ids) == 1
    )
    (full,) = [i for i in ids if i.startswith(unique)]
    assert tracker.resolve_run_id(unique) == full
    assert tracker.resolve_run_id(full) == full
    with pytest.raises(ValidationError, match="not a run id"):
        tracker.resolve_run_id("abc")
    with pytest.raises(ValidationError, match="not a run id"):
        tracker.resolve_run_id("ABCDEF12")
    with pytest.raises(RunNotFoundError, match="no run id starts with"):
        tracker.resolve_run_id(next(p for p in ("000000", "ffffff", "7777777")
                                    if not any(i.startswith(p) for i in ids)))


def test_a_prefix_two_run_ids_share_is_ambiguous(tracker):
    with tracker.start_run("twins") as run:
        pass
    twin = run.id[:20] + ("0" if run.id[20] != "0" else "1") * 12
    with tracker.db.write() as con:  # uuid4 ids never collide on 20 characters by chance
        con.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time) "
            "SELECT ?, experiment_id, 'twin', 'finished', start_time FROM runs WHERE run_id = ?",
            [twin, run.id],
        )
    with pytest.raises(ValidationError, match="ambiguous"):
        tracker.resolve_run_id(run.id[:20])
    assert tracker.resolve_run_id(twin[:21]) == twin


def test_a_run_to_log_to_is_the_run_with_its_lifecycle_stage(tracker):
    with tracker.start_run("driver", "lr") as run:
        pass
    other = tracker.start_run("other", "second")
    other.end()

    found, stage = tracker.run_to_log(run.id)
    assert (found.id, found.experiment_id, found.name, stage) == (
        run.id, run.experiment_id, "lr", "active"
    )  # fmt: skip
    tracker.delete_run(run.id)
    assert tracker.run_to_log(run.id)[1] == "deleted"
    assert tracker.run_to_log(other.id)[0].name == "second"
    for missing in ("0" * 32, 7, [run.id]):  # not an id at all: refused alike
        with pytest.raises(RunNotFoundError, match="no run with id"):
            tracker.run_to_log(missing)


def test_resuming_an_ended_run_makes_it_running_again_owned_here(tracker):
    import os

    with tracker.start_run("e", local=False) as run:
        run.log_metric("loss", 1.0)
    ended = tracker.get_run(run.id)
    assert (ended.status, ended.end_time is not None) == ("finished", True)
    again = tracker.resume_run(run.id)
    again.log_metric("loss", 0.5, step=1)
    info = tracker.get_run(run.id)
    assert (info.status, info.end_time, info.error, info.metrics) == ("running", None, None,
                                                                      {"loss": 0.5})  # fmt: skip
    row = tracker.db.read("SELECT host, pid FROM runs WHERE run_id = ?", [run.id])[0]
    assert row["pid"] == os.getpid() and row["host"] is not None  # now this process's
