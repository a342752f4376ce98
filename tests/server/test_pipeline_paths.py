"""With the admin token, a trigger still cannot point a pipeline's files outside the home
or the directories of `[pipelines] allowed_dirs`: 400, naming the param, the path and the
allowed directories, and no run is recorded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

JSON = {"content-type": "application/json"}


def trigger(client, token: str, pipeline: str, params: dict[str, str]):
    return client.post(
        f"/api/pipelines/{pipeline}/trigger",
        json={"params": params},
        headers={"Authorization": f"Bearer {token}", **JSON},
    )


@pytest.mark.parametrize(
    ("pipeline", "param", "value"),
    [
        ("batch_predictions", "output_dir", "/tmp/litemlops-elsewhere"),
        ("batch_predictions", "requests", "/etc/passwd"),
        ("training", "labels", "/etc/passwd"),
        ("training", "labels", "data/../../../etc/passwd"),
        ("data", "source", "/"),
    ],
)
def test_a_trigger_naming_a_path_outside_is_400(
    home_factory, serve, error_of, pipeline, param, value
):
    config = home_factory()
    with serve(config) as (platform, client):
        before = len(platform.pipelines.list_runs(limit=1000))

        response = trigger(client, config.token_path.read_text().strip(), pipeline, {param: value})

        assert response.status_code == 400, response.text
        error = error_of(response)
        assert error["code"] == "path_not_allowed"
        assert repr(param) in error["message"] and repr(value) in error["message"]
        assert str(config.home.resolve()) in error["message"]
        assert len(platform.pipelines.list_runs(limit=1000)) == before


def test_a_symlink_out_of_the_home_is_followed_and_refused(home_factory, serve, error_of, tmp_path):
    config = home_factory()
    outside = tmp_path / "outside"
    outside.mkdir()
    (config.data_dir / "out").symlink_to(outside)
    with serve(config) as (_, client):
        response = trigger(
            client,
            config.token_path.read_text().strip(),
            "batch_predictions",
            {"output_dir": str(config.data_dir / "out")},
        )

    assert response.status_code == 400
    assert str(outside.resolve()) in error_of(response)["message"]
    assert list(outside.iterdir()) == []


def test_a_directory_named_in_config_is_allowed(home_factory, serve, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    config = home_factory({"pipelines.allowed_dirs": str(shared)})
    with serve(config) as (platform, client):
        response = trigger(
            client, config.token_path.read_text().strip(), "batch_predictions",
            {"output_dir": str(shared)},
        )
        assert response.status_code == 202, response.text
        run = platform.pipelines.get_run(response.json()["run_id"])
        for _ in range(500):  # the run may still be going after the answer
            if run.state not in ("queued", "running"):
                break
            time.sleep(0.02)
            run = platform.pipelines.get_run(run.run_id)

    assert run.state == "success", run.error
    assert run.params["output_dir"] == str(shared.resolve())
    written = list(Path(shared).glob("predictions_*.parquet"))
    assert len(written) == 1
