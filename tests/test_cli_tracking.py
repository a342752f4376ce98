import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from litemlops.cli import cli
from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.store.tracking.signature import infer_signature


def run_cli(*args, home):
    return CliRunner().invoke(cli, [*args, "--home", str(home)])


@pytest.fixture
def home(tmp_path):
    """A home with two runs of experiment 'driver', both registered as driver_ranker."""
    config = Config.load(tmp_path / "home", env={})
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"conv_rate": rng.random(50), "acc_rate": rng.random(50)})
    y = (X["conv_rate"] > 0.5).astype(int)
    with Platform(config) as platform:
        ids = []
        for c, auc in ((1.0, 0.81), (0.1, 0.77)):
            with platform.tracker.start_run("driver", run_name=f"C={c}") as run:
                run.log_params({"C": c, "solver": "lbfgs"})
                run.log_metric("auc", auc)
                info = run.log_model(LogisticRegression(C=c).fit(X, y), "model",
                                     signature=infer_signature(X, y))
            platform.registry.register_model(info.uri, "driver_ranker")
            ids.append(run.id)
    return config.home, ids


def test_runs_list_filters_orders_and_pages(home):
    path, ids = home
    out = run_cli("runs", "list", "--order-by", "metrics.auc DESC", "--json", home=path)
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)["runs"]
    assert [r["run_id"] for r in listed] == ids
    out = run_cli("runs", "list", "--filter", "metrics.auc < 0.8", home=path)
    assert ids[1][:12] in out.output and ids[0][:12] not in out.output
    out = run_cli("runs", "list", "--max", "1", home=path)
    assert "--page-token" in out.output


def test_runs_show_and_compare(home):
    path, ids = home
    out = run_cli("runs", "show", ids[0][:8], home=path)
    assert out.exit_code == 0, out.output
    assert "C = 1.0" in out.output and f"runs:/{ids[0]}/model" in out.output
    out = run_cli("runs", "compare", ids[0], ids[1], home=path)
    assert "params.C *" in out.output and "params.solver *" not in out.output
    assert "metrics.auc" in out.output


def test_models_alias_rollback_history(home):
    path, _ = home
    assert "driver_ranker" in run_cli("models", "list", home=path).output
    assert run_cli("models", "alias", "driver_ranker", "champion", "1", "--reason", "first",
                   home=path).exit_code == 0
    run_cli("models", "alias", "driver_ranker", "champion", "2", home=path)
    out = run_cli("models", "rollback", "driver_ranker", "champion", "--reason", "worse",
                  home=path)
    assert out.output.strip() == "driver_ranker@champion -> version 1"
    history = json.loads(run_cli("models", "history", "driver_ranker", "--json",
                                 home=path).output)
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (None, 1, "first"), (1, 2, "set"), (2, 1, "worse")]
    versions = run_cli("models", "versions", "driver_ranker", home=path).output
    assert "champion" in versions
    shown = json.loads(run_cli("models", "show", "driver_ranker", "--version", "1",
                               home=path).output)
    assert shown["lineage"]["params"]["C"] == "1.0"


@pytest.mark.parametrize(
    "args, message",
    [
        (("runs", "show", "zzzzzz"), "not a run id"),
        (("runs", "show", "abcdef"), "no run id starts with"),
        (("models", "show", "nope"), "no registered model named 'nope'"),
        (("models", "alias", "driver_ranker", "champion", "9"), "no version 9"),
        (("models", "rollback", "driver_ranker", "champion"), "alias 'champion'"),
        (("runs", "list", "--filter", "metrics.auc >"), "filter"),
    ],
)
def test_bad_requests_are_one_line_errors(home, args, message):
    path, _ = home
    out = run_cli(*args, home=path)
    assert out.exit_code == 1, out.output
    assert message in out.output and "Traceback" not in out.output


def test_models_register_returns_the_version_with_the_same_bytes_unless_told(home):
    path, ids = home
    out = run_cli("models", "register", ids[0][:8], "driver_ranker", home=path)
    assert out.exit_code == 0, out.output
    assert out.output.startswith("driver_ranker version 1 already holds these model bytes")
    assert "--allow-duplicate" in out.output
    out = run_cli("models", "register", f"runs:/{ids[1]}/model", "driver_ranker",
                  "--allow-duplicate", "--json", home=path)
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    assert (answer["version"], answer["reused"], answer["run_id"]) == (3, False, ids[1])
    out = run_cli("models", "register", ids[1], "another", "--description", "copy", home=path)
    assert out.output == f"another version 1 registered from runs:/{ids[1]}/model\n"
    out = run_cli("models", "register", "runs:/nope/model", "another", home=path)
    assert out.exit_code != 0 and "is not 'runs:/<run_id>/<model name>'" in out.output
