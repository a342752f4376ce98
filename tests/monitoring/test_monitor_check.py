"""`litemlops monitor check` without a running server: the check runs in the command."""

import json

import pytest
from click.testing import CliRunner

from litemlops.bootstrap import bootstrap
from litemlops.cli.main import cli
from litemlops.platform import Platform


@pytest.fixture
def litemlops_config_overrides():
    return {"demo.drivers": 6, "demo.hours": 48, "demo.labels": 400}


def test_a_check_on_a_home_without_traffic_says_so(litemlops_config):
    with Platform(litemlops_config) as platform:
        assert bootstrap(platform).no_champion is None
    home = str(litemlops_config.home)
    out = CliRunner().invoke(cli, ["monitor", "check", "--home", home])
    assert out.exit_code == 0, out.output
    assert "window: 0 scored entities in 0 requests, 0 labels" in out.output
    assert "alert dataset_drift: normal" in out.output
    out = CliRunner().invoke(cli, ["monitor", "check", "--home", home, "--json"])
    report = json.loads(out.output)
    assert report["window"]["predictions"] == 0 and report["run_id"]
    assert {a["rule"] for a in report["alerts"]} == {
        "dataset_drift", "accuracy_drop", "deployment_rolled_back"
    }  # fmt: skip
