"""`litemlops deploy`: on the home directly without a server, through its API beside `run`."""

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner
from test_main_job import SMALL, wait_for_url, wait_ready

from litemlops.cli import cli


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in list(os.environ):
        if key.startswith("LITEMLOPS_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A bootstrapped demo home whose driver_ranker has versions 2 and 3 besides its
    champion (the champion's own model registered again), on the real clock so its
    features are current."""
    from litemlops.bootstrap import bootstrap
    from litemlops.config import Config
    from litemlops.platform import Platform

    sizes = {f"demo.{k.rsplit('_', 1)[1].lower()}": int(v) for k, v in SMALL.items()}
    config = Config.load(tmp_path_factory.mktemp("deploy") / "home", env={}, overrides=sizes)
    with Platform(config) as platform:
        assert bootstrap(platform).no_champion is None
        champion = platform.registry.get_alias("driver_ranker", "champion")
        uri = f"runs:/{champion.run_id}/{champion.model_name}"
        added = [platform.registry.register_model(uri, "driver_ranker", allow_duplicate=True)
                 for _ in range(2)]
    assert [champion.version, *(v.version for v in added)] == [1, 2, 3]
    return config.home


@pytest.fixture
def home(template, tmp_path):
    shutil.copytree(template, tmp_path / "home")
    return tmp_path / "home"


def run_cli(home, *args):
    return CliRunner().invoke(cli, [*args, "--home", str(home)])


def cli_ok(home, *args):
    result = run_cli(home, *args)
    assert result.exit_code == 0, result.output
    return result


def cli_json(home, *args):
    return json.loads(cli_ok(home, *args, "--json").output)


def refused(home, *args):
    """The command's one-line error (exit code 1, no traceback)."""
    result = run_cli(home, *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
    return result.output


def champion_of(home):
    return json.loads(cli_ok(home, "models", "show", "driver_ranker").output)["aliases"]["champion"]


def arm_rows(output):
    """The arms table's rows, as lists of their cells."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("arm "))
    return [line.split() for line in lines[start + 1:] if line.startswith(("champion", "v"))]


# -- starting each strategy ----------------------------------------------------------------

@pytest.mark.parametrize(
    "args, head, step, shares",
    [
        (("canary", "2", "--steps", "10,50,100"), "canary on inference, active (champion v1)",
         "step 1 of 3: challenger at 10%", ["90%", "10%"]),
        (("shadow", "2"), "shadow on inference, active (champion v1)", None, ["100%", "0%"]),
        (("ab", "2", "--shares", "70,30"), "ab on inference, active (champion v1)", None,
         ["70%", "30%"]),
        (("bandit", "2"), "bandit on inference, active (champion v1)", None, None),
    ],
    ids=["canary", "shadow", "ab", "bandit"],
)
def test_each_strategy_starts_and_prints_its_status(home, args, head, step, shares):
    out = cli_ok(home, "deploy", *args, "--name", "d1").output
    lines = out.splitlines()
    assert lines[0] == f"d1: {head}"
    assert (lines[1] == step) if step else not lines[1].startswith("step")
    rows = arm_rows(out)
    assert [r[0] for r in rows] == ["champion", "v2"]
    if shares:
        assert [r[1] for r in rows] == shares
    else:  # a bandit's shares move with its labels: no fixed share to print
        assert rows[0] == ["champion", "0"]
    status = cli_ok(home, "deploy", "status").output
    assert status.splitlines()[0] == f"d1: {head}" and arm_rows(status) == rows
    assert status.rstrip().endswith("started")
    listed = cli_ok(home, "deploy", "list").output.splitlines()
    assert len(listed) == 1
    assert listed[0].startswith(f"d1  {args[0]}  active  v1 vs v2  ")


@pytest.mark.parametrize(
    "args, spec",
    [
        (("canary", "2", "--steps", "10,50,100", "--interval", "30",
          "--max-error-increase", "2", "--max-latency-ratio", "1.5",
          "--max-score-drift", "0.2", "--min-requests", "7"),
         {"steps": [0.1, 0.5, 1.0], "interval_seconds": 30.0,
          "checks": {"max_error_increase": 0.02, "max_latency_ratio": 1.5,
                     "latency_floor_ms": 2.0, "max_score_drift": 0.2, "min_requests": 7,
                     "alpha": 0.05}}),
        (("shadow", "2", "--sample", "25", "--queue-size", "9"),
         {"sample": 0.25, "queue_size": 9}),
        (("ab", "2", "--shares", "70,30", "--min-samples", "40", "--alpha", "0.01",
          "--no-stop", "--promote"),
         {"shares": [0.7, 0.3], "min_samples": 40, "alpha": 0.01, "stop": False,
          "promote": True}),
        (("bandit", "2", "--algorithm", "epsilon_greedy", "--epsilon", "20",
          "--min-share", "10"),
         {"algorithm": "epsilon_greedy", "epsilon": 0.2, "min_share": 0.1}),
    ],
    ids=["canary", "shadow", "ab", "bandit"],
)
def test_json_answer_carries_the_spec_the_flags_ask_for(home, args, spec):
    answer = cli_json(home, "deploy", *args, "--name", "d1")
    assert {k: answer[k] for k in ("name", "service", "strategy", "state", "model",
                                   "champion", "champion_version", "challengers", "reason")} == {
        "name": "d1", "service": "inference", "strategy": args[0], "state": "active",
        "model": "driver_ranker", "champion": "driver_ranker@champion",
        "champion_version": 1, "challengers": [2], "reason": ""}
    assert answer["spec"]["challengers"] == ["2"]
    assert {k: answer["spec"][k] for k in spec} == spec
    assert [a["arm"] for a in answer["arms"]] == ["champion", "v2"]
    assert [d["id"] for d in cli_json(home, "deploy", "list")] == [answer["id"]]


def test_flags_left_out_keep_the_strategys_defaults(home):
    answer = cli_json(home, "deploy", "canary", "2")
    assert answer["name"].startswith("inference-canary-")
    assert (answer["spec"]["steps"], answer["spec"]["interval_seconds"]) == (
        [0.05, 0.25, 0.5, 1.0], 60.0)
    assert answer["status"]["step"] == 0
    cli_ok(home, "deploy", "abort")
    answer = cli_json(home, "deploy", "ab", "2")
    assert answer["spec"]["shares"] == [0.5, 0.5]
    assert (answer["spec"]["stop"], answer["spec"]["promote"]) == (True, False)


# -- one deployment at a time; abort and promote ---------------------------------------------

def test_a_second_deployment_on_a_busy_service_is_refused_naming_the_active_one(home):
    cli_ok(home, "deploy", "canary", "2", "--name", "first")
    message = refused(home, "deploy", "ab", "2", "--name", "second")
    assert "service 'inference' already has an active deployment ('first', canary)" in message
    assert "end it first" in message
    assert [d["name"] for d in cli_json(home, "deploy", "list")] == ["first"]
    # Once ended, a canary has no current step to show.
    cli_ok(home, "deploy", "abort")
    status = cli_ok(home, "deploy", "status").output.splitlines()
    assert status[0].startswith("first: canary on inference, ended") and status[1].startswith("arm")


def test_abort_ends_the_deployment_with_its_reason_and_leaves_the_champion(home):
    cli_ok(home, "deploy", "ab", "2", "--name", "ab1")
    ended = cli_json(home, "deploy", "abort", "--reason", "x")
    assert (ended["name"], ended["state"], ended["reason"]) == ("ab1", "ended", "x")
    assert ended["ended_at"] is not None
    assert champion_of(home) == 1
    status = cli_ok(home, "deploy", "status").output
    assert status.splitlines()[0] == "ab1: ab on inference, ended (champion v1): x"
    assert [line.split()[-1] for line in status.splitlines()[-2:]] == ["started", "ended"]
    listed = cli_json(home, "deploy", "list")
    assert [(d["name"], d["state"], d["reason"]) for d in listed] == [("ab1", "ended", "x")]
    # Nothing is active any more: a second abort is refused and changes nothing.
    assert "service 'inference' has no active deployment" in refused(home, "deploy", "abort")
    assert cli_json(home, "deploy", "list") == listed
    # The service is free again.
    assert cli_json(home, "deploy", "shadow", "2")["state"] == "active"


def test_promote_on_a_shadow_moves_the_champion_to_the_challenger(home):
    cli_ok(home, "deploy", "shadow", "2", "--name", "sh1")
    promoted = cli_json(home, "deploy", "promote", "--reason", "looks good")
    assert (promoted["state"], promoted["reason"]) == ("promoted", "looks good")
    assert promoted["status"]["promoted_version"] == 2
    versions = cli_json(home, "models", "versions", "driver_ranker")
    assert {v["version"]: v["aliases"] for v in versions} == {1: [], 2: ["champion"], 3: []}
    history = cli_json(home, "models", "history", "driver_ranker")
    assert (history[-1]["from_version"], history[-1]["to_version"], history[-1]["reason"]) == (
        1, 2, "deployment sh1 (shadow): looks good")
    assert "has no active deployment" in refused(home, "deploy", "promote")


def test_promote_among_several_challengers_takes_the_arm_named(home):
    cli_ok(home, "deploy", "bandit", "2", "3", "--name", "b1")
    assert refused(home, "deploy", "promote").endswith(
        "no labels yet to choose among ['v2', 'v3']: name the arm to promote\n")
    assert refused(home, "deploy", "promote", "--arm", "v1").endswith(
        "promote names a challenger arm: one of ['v2', 'v3'], got 'v1'\n")
    assert champion_of(home) == 1
    assert cli_json(home, "deploy", "list")[0]["state"] == "active"
    promoted = cli_json(home, "deploy", "promote", "--arm", "v2")
    assert (promoted["state"], promoted["status"]["promoted_version"]) == ("promoted", 2)
    assert champion_of(home) == 2


# -- bad input: a clear error, nothing stored ---------------------------------------------------

BAD_REQUESTS = [
        (("canary", "99"), "InvalidDeploymentError: challenger '99': model 'driver_ranker' "
                           "has no version 99"),
        (("ab", "2", "--shares", "70,20"), "shares must sum to 100, got [70.0, 20.0] (sum 90)"),
        (("ab", "2", "--shares", "100"), "shares needs one percentage per arm, the champion's "
                                         "first: 2 arms, got 1"),
        (("canary", "2", "--steps", "50,10"), "steps must increase, got [50.0, 10.0]"),
        (("canary", "2", "--steps", "10,150"), "each step must be a percentage in (0, 100]"),
        (("shadow", "1"), "version 1 is the champion already; a challenger must differ"),
        (("canary", "2", "--service", "nope"), "no service 'nope'; services: ['inference']"),
        (("bandit", "2", "--min-share", "60"), "min_share 60% for 2 arms is over 100% in all"),
        (("status",), "service 'inference' has had no deployment"),
        (("status", "ghost"), "no deployment 'ghost'"),
        (("abort",), "service 'inference' has no active deployment"),
        (("promote",), "service 'inference' has no active deployment"),
        (("list", "--service", "nope"), "no service 'nope'"),
]


@pytest.mark.parametrize(
    "args, message", BAD_REQUESTS, ids=[" ".join(args) for args, _ in BAD_REQUESTS]
)
def test_bad_requests_are_one_line_errors_that_store_nothing(home, args, message):
    assert message in refused(home, "deploy", *args)
    assert cli_json(home, "deploy", "list") == []
    assert champion_of(home) == 1


def test_a_percentage_list_that_is_not_numbers_is_a_usage_error(home):
    result = run_cli(home, "deploy", "canary", "2", "--steps", "10,half")
    assert result.exit_code == 2
    assert "a comma-separated list of percentages, got '10,half'" in result.output
    assert cli_json(home, "deploy", "list") == []


# -- beside a running server ----------------------------------------------------------------------

@pytest.mark.slow
def test_deploy_goes_through_the_server_that_serves_the_home(home):
    env = {**os.environ, **SMALL}
    env.pop("LITEMLOPS_HOME", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url, _ = wait_for_url(process, timeout=180)
        wait_ready(url)
        started = cli_json(home, "deploy", "ab", "2", "--name", "live")
        assert (started["state"], started["spec"]["shares"]) == ("active", [0.5, 0.5])
        with httpx.Client(base_url=url, timeout=10) as client:
            # The server routes now: only a start made through it reaches its arms.
            answers = [client.post("/inference", json={"request_id": f"r{i}",
                                                       "driver_ids": [1001, 1002, 1003]})
                       for i in range(40)]
            assert all(a.status_code == 200 for a in answers), answers[0].text
            assert {a.json()["version"] for a in answers} == {1, 2}
            status = cli_json(home, "deploy", "status")
            served = {a["arm"]: a["served"] for a in status["arms"]}
            by_version = [a.json()["version"] for a in answers]
            assert served == {"champion": by_version.count(1), "v2": by_version.count(2)}
            text = cli_ok(home, "deploy", "status").output
            assert [r[:3] for r in arm_rows(text)] == [
                ["champion", "50%", str(served["champion"])], ["v2", "50%", str(served["v2"])]]
            named = cli_json(home, "deploy", "status", "live")
            assert {a["arm"]: a["served"] for a in named["arms"]} == served
            assert [h["action"] for h in named["history"]] == ["started"]
            missing = refused(home, "deploy", "status", "nope")
            assert "refused (404)" in missing and "'nope'" in missing
            ended = cli_json(home, "deploy", "abort", "--reason", "done")
            assert (ended["state"], ended["reason"]) == ("ended", "done")
            past = cli_json(home, "deploy", "status", "live")  # a past one by name
            assert (past["state"], past["arms"][1]["requests"]) == ("ended", served["v2"])
            after = [client.post("/inference", json={"request_id": f"s{i}",
                                                     "driver_ids": [1001, 1002]}).json()
                     for i in range(10)]
            assert {a["version"] for a in after} == {1}
            shown = client.get("/api/services/inference/deployment").json()
            assert (shown["name"], shown["state"]) == ("live", "ended")
            busy = refused(home, "deploy", "abort")
            assert "refused (409)" in busy and "has no active deployment" in busy
            # A shadow under `run` scores in a worker process; its events reach the log.
            cli_json(home, "deploy", "shadow", "3", "--name", "sh")
            for i in range(20):
                client.post("/inference", json={"request_id": f"sh{i}",
                                                "driver_ids": [1001, 1002]})  # fmt: skip
            deadline = time.monotonic() + 60
            while (report := cli_json(home, "deploy", "status")["shadow"])["scored"] < 20:
                assert time.monotonic() < deadline, report
                time.sleep(0.2)
            assert (report["in"], report["errors"], report["agreement"]) == ("worker", 0, 1.0)

            def shadowed() -> list[str]:
                # Till the first arrives, stderr says none matched (output holds both).
                out = cli_ok(home, "logs", "--event", "prediction_shadowed", "--json").stdout
                return sorted(json.loads(line)["request_id"] for line in out.splitlines())

            while len(shadowed()) < 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert shadowed() == sorted(f"sh{i}" for i in range(20))
            cli_json(home, "deploy", "abort")
    finally:
        process.terminate()
        process.communicate(timeout=60)
    assert process.returncode == 0


@pytest.mark.parametrize(
    "report, line",
    [
        ({"scored": 1911, "dropped": 0, "errors": 2, "agreement": 0.5, "p99_ms": 0.1007436363},
         "shadow: 1911 scored, 0 dropped, 2 errors, agreement 0.500, p99 0.101 ms"),
        ({"scored": 0, "dropped": 3, "errors": 0, "agreement": None, "p99_ms": None},
         "shadow: 0 scored, 3 dropped, 0 errors"),
    ],
    ids=["scored", "nothing-scored"],
)
def test_a_shadows_line_rounds_its_latency_and_leaves_out_what_it_has_not_got(
    report, line, capsys
):
    from litemlops.cli.deploy import _show

    _show({"name": "d1", "strategy": "shadow", "service": "inference", "state": "active",
           "champion_version": 1, "reason": "", "status": {}, "arms": [],
           "shadow": report}, as_json=False)  # fmt: skip

    assert line in capsys.readouterr().out.splitlines()
