"""The demo as an application: what it adds to the platform through its entry point."""

from click.testing import CliRunner

from litemlops.applications import load_applications
from litemlops.cli import cli
from litemlops.config import Config


def test_the_demo_adds_its_commands_to_the_litemlops_command():
    runner = CliRunner()

    listed = runner.invoke(cli, ["--help"])
    simulate = runner.invoke(cli, ["simulate", "--help"])
    generate = runner.invoke(cli, ["demo", "generate", "--help"])

    assert listed.exit_code == 0
    assert "simulate" in listed.output and "demo" in listed.output
    assert simulate.exit_code == 0 and "--drift" in simulate.output
    assert generate.exit_code == 0 and "--drivers" in generate.output
    assert runner.invoke(cli, ["simulat"]).exit_code == 2  # still a usage error


def test_the_demo_suggests_an_inference_request_for_its_drivers(tmp_path):
    config = Config.load(tmp_path, env={}, overrides={"demo.drivers": 2})
    (demo,) = load_applications(config.applications)

    (line,) = demo.hints(config, "http://127.0.0.1:8000")

    assert "http://127.0.0.1:8000/inference" in line
    assert '"driver_ids": [1001, 1002]' in line
