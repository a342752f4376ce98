import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from litemlops.cli import cli


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {
            "conv_rate": rng.random(500),
            "acc_rate": rng.random(500),
            "code": rng.choice(["007", "008"], 500),
        }
    )
    current = pd.DataFrame(
        {
            "conv_rate": rng.random(400) + 0.7,
            "acc_rate": rng.random(400),
            "code": rng.choice(["007", "009"], 400),
        }
    )
    reference.to_parquet(tmp_path / "reference.parquet")
    current.to_csv(tmp_path / "current.csv", index=False)
    return tmp_path / "reference.parquet", tmp_path / "current.csv"


def run(*args):
    return CliRunner().invoke(cli, ["monitor", "compare", *map(str, args)])


def test_compare_prints_a_table_and_the_verdict(files):
    result = run(*files)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "feature", "type", "test", "p-value", "statistic", "psi", "wasserstein", "js", "drifted",
    ]
    by_feature = {line.split()[0]: line.split() for line in lines[1:4]}
    assert by_feature["conv_rate"][-1] == "yes"
    assert by_feature["acc_rate"][-1] == "no"
    assert by_feature["code"][1:3] == ["categorical", "chi2"]
    assert "dataset: DRIFT - 2 of 3 features drifted" in result.output
    assert "rows: 500 reference, 400 current" in result.output


def test_compare_as_json(files):
    result = run(*files, "--json", "--columns", "acc_rate")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report["features"]) == ["acc_rate"]
    assert report["dataset_drift"] is False
    assert report["features"]["acc_rate"]["stats"]["ks_pvalue"] > 0.05


def test_categorical_codes_in_a_csv_stay_text(files, tmp_path):
    reference, current = files
    pd.read_parquet(reference).to_csv(tmp_path / "reference.csv", index=False)

    result = run(tmp_path / "reference.csv", current, "--categorical", "code", "--json")

    report = json.loads(result.output)
    assert report["features"]["code"]["kind"] == "categorical"
    assert report["features"]["code"]["quality"]["unseen"] == pytest.approx(
        (pd.read_csv(current, dtype={"code": str})["code"] == "009").mean()
    )


def test_no_drift_is_exit_zero_too(files):
    reference, _ = files

    result = run(reference, reference)

    assert result.exit_code == 0
    assert "dataset: no drift - 0 of 3 features drifted" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--columns", "conv_rate,nope"], "reference has no column(s) ['nope']"),
        (["--categorical", "nope"], "categorical column(s) ['nope']"),
        (["--columns", ","], "name at least one column"),
    ],
)
def test_bad_columns_are_one_line_errors(files, extra, message):
    result = run(*files, *extra)

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_bad_file_is_a_one_line_error(files, tmp_path):
    reference, _ = files
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")

    unsupported = run(reference, tmp_path / "notes.txt")
    broken = run(reference, tmp_path / "broken.parquet")
    missing = run(reference, tmp_path / "absent.csv")

    assert unsupported.exit_code == 1
    assert "unsupported file type '.txt'" in unsupported.output
    assert broken.exit_code == 1
    assert "cannot be read" in broken.output
    assert len(broken.output.strip().splitlines()) == 1
    assert missing.exit_code == 2
    assert "does not exist" in missing.output


def test_too_little_current_data_is_no_verdict(files, tmp_path):
    reference, current = files
    pd.read_csv(current).head(2).to_csv(tmp_path / "tiny.csv", index=False)

    result = run(reference, tmp_path / "tiny.csv")

    assert result.exit_code == 0
    assert "dataset: no verdict (not enough data)" in result.output
