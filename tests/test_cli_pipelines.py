import json
import os
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from litemlops.cli import cli

MODULE = '''
from pathlib import Path

from litemlops.scheduler.pipeline import Pipeline, task


@task
def extract(ctx):
    return {"rows": ctx.params["rows"], "label": ctx.params["label"]}


@task(upstream="extract", retries=1)
def fragile(ctx):
    if Path(ctx.config.home, "broken").exists():
        raise RuntimeError("the disk is on fire")
    return ctx.upstream["extract"]["rows"] * 2


@task(upstream="fragile")
def report(ctx):
    return {"double": ctx.upstream["fragile"]}


toy = Pipeline(
    "toy",
    [extract, fragile, report],
    params={"rows": 1, "label": "x", "opts": {}},
    description="A toy.",
    schedule=60,
    on=("alert:*",),
)
'''


@pytest.fixture
def home(tmp_path):
    (tmp_path / "pipes.py").write_text(MODULE)
    made = CliRunner().invoke(cli, ["init", "--home", str(tmp_path / "home")])
    assert made.exit_code == 0, made.output
    return tmp_path / "home"


def run_cli(*args, home, env=None):
    # The developer's LITEMLOPS_* variables must not change what a test sees.
    clean = {k: None for k in os.environ if k.startswith("LITEMLOPS_")}
    modules = str(home.parent / "pipes.py")
    env = {**clean, "LITEMLOPS_PIPELINES_MODULES": modules, **(env or {})}
    return CliRunner().invoke(cli, [*args, "--home", str(home)], env=env)


def run_toy(home, *args, broken=False):
    """A toy run from the CLI (so its events reach the home's log); returns (result, run id)."""
    home.mkdir(exist_ok=True)
    flag = home / "broken"
    if broken:
        flag.touch()
    try:
        out = run_cli("pipelines", "run", "toy", *args, "--json", home=home)
    finally:
        flag.unlink(missing_ok=True)
    return out, json.loads(out.stdout)["run_id"]


def one_line_error(out, message):
    assert out.exit_code == 1, out.output
    assert message in out.output, out.output
    assert len(out.output.strip().splitlines()) == 1, out.output
    assert "Traceback" not in out.output


def test_list_shows_tasks_params_and_triggers(home):
    out = run_cli("pipelines", "list", home=home)
    assert out.exit_code == 0, out.output
    text = out.output
    assert "toy - A toy." in text and "fragile <- extract  (retries 1)" in text
    assert "schedule: every 60 s" in text and "on: alert:*" in text
    assert "label = x" in text and "opts = {}" in text
    assert "data - " in text and "write_offline <- ingest, validate" in text
    assert 'hyperparams = "{}"' in text  # text that reads as JSON is shown quoted

    listed = json.loads(run_cli("pipelines", "list", "--json", home=home).output)
    assert [p["name"] for p in listed] == [
        "batch_predictions", "data", "model_check", "monitoring", "toy", "training"
    ]
    toy = listed[4]
    assert toy["tasks"] == [
        {"name": "extract", "upstream": [], "retries": 0, "timeout": None},
        {"name": "fragile", "upstream": ["extract"], "retries": 1, "timeout": None},
        {"name": "report", "upstream": ["fragile"], "retries": 0, "timeout": None},
    ]
    assert toy["params"] == {"rows": 1, "label": "x", "opts": {}}
    assert (toy["schedule"], toy["on"], toy["description"]) == (60.0, ["alert:*"], "A toy.")


def test_run_parses_params_as_json_else_text(home):
    out, run_id = run_toy(
        home,
        "--param", "rows=3",
        "--param", "label=007",
        "--param", 'opts={"a": [1, true]}',
    )
    assert out.exit_code == 0, out.output
    run = json.loads(out.stdout)
    assert run["state"] == "success" and run["trigger"] == "manual"
    assert run["params"] == {"rows": 3, "label": "007", "opts": {"a": [1, True]}}
    assert [(t["task"], t["state"], t["attempts"]) for t in run["tasks"]] == [
        ("extract", "success", 1), ("fragile", "success", 1), ("report", "success", 1)]
    assert run["tasks"][2]["output"] == {"double": 6}

    _, run_id = run_toy(home, "--param", 'label="7"', "--param", "rows=NaN")
    shown = json.loads(run_cli("pipelines", "show", run_id, "--json", home=home).output)
    assert shown["params"]["label"] == "7" and shown["params"]["rows"] == "NaN"

    out = run_cli("pipelines", "run", "toy", "--param", "rows=2", home=home)
    assert out.exit_code == 0, out.output
    assert "of toy: success" in out.output and "report   success  1" in out.output


@pytest.mark.parametrize(
    "param, message",
    [
        ("rows", "--param 'rows': expected KEY=VALUE; pipeline 'toy' takes: rows=1, label=x"),
        ("=3", "expected KEY=VALUE"),
        ("nope=1", "pipeline 'toy' has no params ['nope'] (it takes ['label', 'opts', 'rows'])"),
    ],
)
def test_bad_params_are_one_line_errors_naming_the_params(home, param, message):
    one_line_error(run_cli("pipelines", "run", "toy", "--param", param, home=home), message)


def test_failed_run_exits_1_and_says_how_to_resume(home):
    home.mkdir(exist_ok=True)
    (home / "broken").touch()
    out = run_cli("pipelines", "run", "toy", home=home)
    assert out.exit_code == 1, out.output
    assert "fragile  failed   2" in out.stdout and "report   skipped" in out.stdout
    run_id = out.stdout.split()[1]
    assert f"pipeline 'toy' run {run_id} failed: task 'fragile' failed: " \
           "RuntimeError: the disk is on fire" in out.stderr
    assert f"litemlops pipelines run toy --from-failed --run-id {run_id} --home" in out.stderr
    assert "Traceback" not in out.output

    out, _ = run_toy(home, broken=True)
    assert out.exit_code == 1 and json.loads(out.stdout)["state"] == "failed"


def test_from_failed_resumes_the_newest_failed_run_or_the_one_named(home):
    _, older = run_toy(home, "--param", "rows=2", broken=True)
    _, newer = run_toy(home, "--param", "rows=5", broken=True)

    out = run_cli("pipelines", "run", "toy", "--from-failed", "--run-id", older, "--json",
                  home=home)
    assert out.exit_code == 0, out.output
    resumed = json.loads(out.stdout)
    assert (resumed["run_id"], resumed["state"]) == (older, "success")
    # The task that succeeded kept its one attempt; the failed one got a third.
    assert [(t["task"], t["attempts"]) for t in resumed["tasks"]] == [
        ("extract", 1), ("fragile", 3), ("report", 1)]
    assert resumed["tasks"][2]["output"] == {"double": 4}

    out = run_cli("pipelines", "run", "toy", "--from-failed", home=home)
    assert out.exit_code == 0, out.output
    assert f"run {newer} of toy: success" in out.output

    one_line_error(run_cli("pipelines", "run", "toy", "--from-failed", home=home),
                   "pipeline 'toy' has no failed run to resume")
    one_line_error(run_cli("pipelines", "run", "toy", "--from-failed", "--run-id", older,
                           home=home), "only a failed run resumes")
    one_line_error(run_cli("pipelines", "run", "toy", "--run-id", older, home=home),
                   "add --from-failed")
    one_line_error(run_cli("pipelines", "run", "toy", "--from-failed", "--param", "rows=1",
                           home=home), "keeps the params")


def test_runs_newest_first_with_filters(home):
    _, first = run_toy(home)
    _, failed = run_toy(home, broken=True)
    _, last = run_toy(home)

    def listed(*args):
        out = run_cli("pipelines", "runs", *args, "--json", home=home)
        assert out.exit_code == 0, out.output
        return [r["run_id"] for r in json.loads(out.output)]

    assert listed() == [last, failed, first]
    assert listed("--state", "failed") == [failed]
    assert listed("--limit", "1") == [last]
    assert listed("--pipeline", "data") == []
    text = run_cli("pipelines", "runs", "--state", "failed", home=home).output
    assert failed in text and "task(s) failed or skipped: ['fragile', 'report']" in text
    assert "no pipeline runs match" in run_cli("pipelines", "runs", "--pipeline", "data",
                                               home=home).output
    one_line_error(run_cli("pipelines", "runs", "--state", "bogus", home=home),
                   "state must be one of")
    one_line_error(run_cli("pipelines", "runs", "--limit", "0", home=home), "limit")


def test_show_lists_attempts_outputs_and_tracebacks_on_request(home):
    _, run_id = run_toy(home, broken=True)
    out = run_cli("pipelines", "show", run_id, home=home)
    assert out.exit_code == 0, out.output
    assert f"run_id: {run_id}" in out.output and "state: failed" in out.output
    assert "extract (attempt 1): " in out.output and "Traceback" not in out.output
    out = run_cli("pipelines", "show", run_id, "--traceback", home=home)
    assert "traceback of fragile (attempt 2):" in out.output
    assert "Traceback (most recent call last)" in out.output

    shown = json.loads(run_cli("pipelines", "show", run_id, "--json", home=home).output)
    assert [(t["task"], t["attempt"], t["state"]) for t in shown["tasks"]] == [
        ("extract", 1, "success"), ("fragile", 1, "up_for_retry"), ("fragile", 2, "failed"),
        ("report", 0, "skipped")]
    assert "traceback" not in shown["tasks"][1] and shown["tasks"][0]["output"]["rows"] == 1
    shown = json.loads(run_cli("pipelines", "show", run_id, "--json", "--traceback",
                               home=home).output)
    assert "RuntimeError: the disk is on fire" in shown["tasks"][2]["traceback"]


def test_logs_reads_the_runs_events_from_the_home_log(home):
    _, run_id = run_toy(home)
    _, other = run_toy(home)
    assert run_id in (home / "logs" / "events.jsonl").read_text()

    out = run_cli("pipelines", "logs", run_id, home=home)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert [line.split()[2] for line in lines] == [
        "pipeline_run_started",
        *["task_started", "task_succeeded"] * 3,
        "pipeline_run_finished",
    ]
    assert "task=fragile attempt=1" in lines[3] and "trigger=manual" in lines[0]
    assert other not in out.output

    out = run_cli("pipelines", "logs", run_id, "--task", "fragile", "--json", home=home)
    events = [json.loads(line) for line in out.output.splitlines()]
    assert [(e["event"], e["task"], e["run_id"]) for e in events] == [
        ("task_started", "fragile", run_id), ("task_succeeded", "fragile", run_id)]


def test_logs_follow_the_event_log_through_its_rotations_and_into_the_history(home):
    from litemlops.config import Config
    from litemlops.monitoring import history

    small = {"LITEMLOPS_LOGGING_MAX_BYTES": "300", "LITEMLOPS_LOGGING_BACKUPS": "50"}
    home.mkdir(exist_ok=True)
    out = run_cli("pipelines", "run", "toy", "--json", home=home, env=small)
    run_id = json.loads(out.stdout)["run_id"]
    assert len(history.event_files(home / "logs")) > 6  # about one event a file
    expected = [
        "pipeline_run_started",
        *["task_started", "task_succeeded"] * 3,
        "pipeline_run_finished",
    ]

    for compacted in (False, True):
        if compacted:
            history.compact(Config.load(home, env={}), settle_seconds=0)
            assert len(history.event_files(home / "logs")) == 1
        out = run_cli("pipelines", "logs", run_id, "--json", home=home)
        events = [json.loads(line) for line in out.output.splitlines()]
        assert [e["event"] for e in events] == expected
        assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


def test_logs_read_backups_oldest_first_and_skip_a_truncated_last_line(home):
    _, run_id = run_toy(home)
    logs = home / "logs"

    def line(event, **keys):
        return json.dumps({"run_id": run_id, "event": event, **keys}) + "\n"

    # The logging module numbers backups from the newest: .10 is the oldest here.
    (logs / "events.jsonl.10").write_text(line("first"))
    other_run = line("elsewhere", run_id="x" * 32, about=run_id)
    (logs / "events.jsonl.2").write_text(line("second") + other_run)
    (logs / "events.jsonl.1").write_text(
        line("third", task="fragile")
        + json.dumps({"event": "run_bootstrapped", "steps": [f"run {run_id}"]})
        + "\n"
    )
    (logs / "events.jsonl").write_text(line("fourth", rows=3) + line("fifth")[:50])
    (logs / "events.jsonl.old").write_text(line("not a backup"))

    out = run_cli("pipelines", "logs", run_id, home=home)
    assert out.exit_code == 0, out.output
    assert [row.split()[2] for row in out.stdout.splitlines()] == [
        "first", "second", "third", "fourth"]
    assert "task=fragile" in out.stdout and "rows=3" in out.stdout
    assert "skipped 1 unreadable line(s)" in out.stderr

    out = run_cli("pipelines", "logs", run_id, "--task", "report", home=home)
    assert out.exit_code == 0 and "no events of task 'report' for run" in out.output


def test_logs_of_a_run_without_events_says_so(home):
    _, run_id = run_toy(home)
    (home / "logs" / "events.jsonl").unlink()
    out = run_cli("pipelines", "logs", run_id, home=home)
    assert out.exit_code == 0, out.output
    assert f"no events for run {run_id} yet" in out.output


def test_run_step_runs_one_task_again_from_stored_outputs(home):
    _, run_id = run_toy(home, "--param", "rows=4")
    out = run_cli("pipelines", "run-step", "toy", "report", "--run-id", run_id, home=home)
    assert out.exit_code == 0, out.output
    assert f"task report of run {run_id}, attempt 2: success" in out.output
    assert 'output: {"double": 8}' in out.output

    _, failed = run_toy(home, broken=True)  # fragile fails twice (one retry), report skipped
    (home / "broken").touch()
    out = run_cli("pipelines", "run-step", "toy", "fragile", "--run-id", failed, "--json",
                  home=home)
    assert out.exit_code == 1, out.output
    attempt = json.loads(out.stdout)
    assert (attempt["attempt"], attempt["state"]) == (4, "failed")  # and its retry
    assert "Traceback" in attempt["traceback"]
    assert "task 'fragile' attempt 4 failed: RuntimeError: the disk is on fire" in out.stderr
    assert f"litemlops pipelines show {failed} --traceback" in out.stderr
    (home / "broken").unlink()
    one_line_error(
        run_cli("pipelines", "run-step", "toy", "report", "--run-id", failed, home=home),
        "needs upstream task(s) ['fragile'] to have succeeded",
    )
    one_line_error(
        run_cli("pipelines", "run-step", "toy", "extract", "--run-id", run_id, home=home),
        "downstream task(s) ['fragile', 'report'] already used its output",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "nope"), "no pipeline named 'nope'; known pipelines: ['batch_predictions'"),
        (("show", "nope"), "no pipeline run with id 'nope'"),
        (("logs", "nope"), "no pipeline run with id 'nope'"),
        (("logs", "RUN", "--task", "nope"), "pipeline 'toy' has no task 'nope'"),
        (("run-step", "toy", "nope", "--run-id", "RUN"), "pipeline 'toy' has no task 'nope'"),
        (("run-step", "nope", "report", "--run-id", "RUN"), "no pipeline named 'nope'"),
        (("run-step", "toy", "report", "--run-id", "nope"), "no pipeline run with id 'nope'"),
        (("run-step", "data", "clean", "--run-id", "RUN"), "belongs to pipeline 'toy'"),
    ],
)
def test_unknown_names_are_one_line_errors(home, args, message):
    _, run_id = run_toy(home)
    args = tuple(run_id if a == "RUN" else a for a in args)
    one_line_error(run_cli("pipelines", *args, home=home), message)


def test_the_demo_data_pipeline_runs_from_the_cli(tmp_path):
    from litemlops.bootstrap import bootstrap
    from litemlops.config import Config
    from litemlops.demo.generator import generate_driver_stats
    from litemlops.platform import Platform
    from litemlops.store.files import write_frame

    small = {"LITEMLOPS_DEMO_DRIVERS": "3", "LITEMLOPS_DEMO_HOURS": "24",
             "LITEMLOPS_DEMO_LABELS": "200"}
    config = Config.load(tmp_path / "home", env=small)
    with Platform(config) as platform:
        bootstrap(platform)
    fresh = generate_driver_stats(3, 6, end=datetime.now(UTC), random_state=7)
    write_frame(fresh, config.incoming_dir / "late.parquet")

    out = CliRunner().invoke(
        cli, ["pipelines", "run", "data", "--json", "--home", str(config.home)], env=small
    )
    assert out.exit_code == 0, out.output
    run = json.loads(out.stdout)
    assert [(t["task"], t["state"]) for t in run["tasks"]] == [
        (name, "success")
        for name in ("ingest", "clean", "validate", "write_offline", "materialize")
    ]
    outputs = {t["task"]: t["output"] for t in run["tasks"]}
    assert outputs["ingest"]["rows"] == len(fresh) and outputs["write_offline"]["rows"] > 0
    assert (config.incoming_dir / "done" / "late.parquet").exists()


def test_runs_and_resumes_beside_another_owner_of_the_home(home):
    from litemlops.config import Config
    from litemlops.home_lock import HomeLock

    # Another process owns the home without serving it (a set-up, another command).
    with HomeLock(Config.load(home, env={}).lock_path):
        failed, run_id = run_toy(home, broken=True)
        assert failed.exit_code == 1
        resumed = run_cli("pipelines", "run", "toy", "--from-failed", "--json", home=home)
        listed = run_cli("pipelines", "runs", "--pipeline", "toy", "--json", home=home)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["run_id"] == run_id
    assert json.loads(resumed.stdout)["state"] == "success"
    assert [r["state"] for r in json.loads(listed.stdout)] == ["success"]


def test_a_server_address_left_by_a_dead_server_is_ignored(home):
    # A server killed with -9 leaves server.json behind; nobody holds the home.
    (home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 1}))
    out, _ = run_toy(home)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["payload"] == {}
    simulated = run_cli("simulate", "-n", "1", home=home)
    assert simulated.exit_code == 1 and "no server for home" in simulated.output


def test_a_run_in_this_process_shows_its_tasks_progress_on_a_terminal_only(home):
    from terminal import on_a_terminal

    env = {"LITEMLOPS_PIPELINES_MODULES": str(home.parent / "pipes.py")}
    code, out, err = on_a_terminal("pipelines", "run", "toy", "--home", str(home), env=env)
    assert code == 0, out + err
    assert "run " in out and "success" in out
    assert "0/3" in err and "extract:" in err and "task/s" in err
    code, out, err = on_a_terminal("pipelines", "run", "toy", "-q", "--home", str(home), env=env)
    assert code == 0 and "/3" not in err
    out = run_cli("pipelines", "run", "toy", home=home)
    assert out.exit_code == 0 and out.stderr == ""


class ServingOwner:
    """A `run` serving the home, as the CLI sees it: it answers the calls it is made."""

    def __init__(self, failed):
        self.failed = failed
        self.calls = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def call(self, method, path, body=None, **params):
        self.calls.append((method, path, params))
        if path == "/api/pipelines/runs":
            return [{"run_id": r, "pipeline": "toy"} for r in self.failed][: params["limit"]]
        run_id = path.split("/")[-2]
        return {"accepted": True, "pipeline": "toy", "run_id": run_id, "state": "running"}

    def follow_run(self, started, progress=lambda run: None, **kwargs):
        task = {"task": "fragile", "attempt": 2, "state": "success", "duration": 0.1,
                "error": None, "output": 2}  # fmt: skip
        progress({"tasks": [task]})
        return {**started, "state": "success", "duration": 0.2, "tasks": [task]}


@pytest.mark.parametrize(("given", "resumed"), [((), "newest"), (("--run-id", "older"), "older")])
def test_resuming_while_run_serves_asks_the_server_to_resume_the_run(
    home, monkeypatch, given, resumed
):
    from litemlops.cli import pipelines

    served = ServingOwner(["newest", "older"])
    monkeypatch.setattr(pipelines, "owner", lambda config: served)

    out = run_cli("pipelines", "run", "toy", "--from-failed", *given, "--json", home=home)

    assert out.exit_code == 0, out.output
    assert (json.loads(out.stdout)["run_id"], json.loads(out.stdout)["state"]) == (
        resumed, "success"
    )
    asked = [path for _, path, _ in served.calls]
    assert asked == (["/api/pipelines/runs"] if not given else []) + [
        f"/api/pipelines/runs/{resumed}/resume"
    ]  # the server is asked for the newest failed run only when none is named


def test_resuming_while_run_serves_with_no_failed_run_says_so(home, monkeypatch):
    from litemlops.cli import pipelines

    monkeypatch.setattr(pipelines, "owner", lambda config: ServingOwner([]))

    out = run_cli("pipelines", "run", "toy", "--from-failed", home=home)

    one_line_error(out, "pipeline 'toy' has no failed run to resume")
