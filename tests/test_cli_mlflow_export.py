"""`models export --format mlflow` writes a folder MLflow's own loader loads."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from litemlops.cli import cli
from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.store.tracking.signature import infer_signature

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def home(tmp_path):
    config = Config.load(tmp_path / "home", env={})
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"conv_rate": rng.random(50), "acc_rate": rng.random(50)})
    y = (x["conv_rate"] > 0.5).astype(int)
    model = LogisticRegression().fit(x, y)
    with Platform(config) as platform:
        with platform.tracker.start_run("driver") as run:
            info = run.log_model(model, "model", signature=infer_signature(x, y))
        platform.registry.register_model(info.uri, "driver_ranker")
        platform.registry.set_alias("driver_ranker", "champion", 1)
    return config.home, model, x


def test_an_exported_version_loads_with_mlflow_and_predicts_the_same(home, tmp_path):
    path, model, x = home
    out = tmp_path / "mlflow-model"
    result = CliRunner().invoke(
        cli, ["models", "export", "driver_ranker@champion", "--format", "mlflow", str(out),
              "--home", str(path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {"MLmodel", "model.pkl", "requirements.txt", "python_env.yaml"} <= {
        p.name for p in out.iterdir()
    }
    loaded = mlflow.pyfunc.load_model(str(out))
    assert np.array_equal(np.asarray(loaded.predict(x)), model.predict(x))
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == ["conv_rate", "acc_rate"]
    assert np.array_equal(mlflow.sklearn.load_model(str(out)).predict(x), model.predict(x))


def test_the_bundle_stays_the_default_and_a_folder_is_given_once(home, tmp_path):
    path, _, _ = home
    runner = CliRunner()
    bundle = runner.invoke(
        cli, ["models", "export", "driver_ranker/1", "-o", str(tmp_path / "b"), "--home", str(path)]
    )
    assert bundle.exit_code == 0 and "bundle" in bundle.output, bundle.output
    twice = runner.invoke(
        cli, ["models", "export", "driver_ranker/1", str(tmp_path / "c"), "-o", str(tmp_path / "d"),
              "--home", str(path)],
    )  # fmt: skip
    assert twice.exit_code != 0 and "once" in twice.output
    used = runner.invoke(
        cli, ["models", "export", "driver_ranker/1", "--format", "mlflow", str(tmp_path / "b"),
              "--home", str(path)],
    )  # fmt: skip
    assert used.exit_code != 0 and "not an empty folder" in used.output
