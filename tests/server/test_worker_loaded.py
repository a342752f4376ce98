"""A platform with workers (what `litemlops run` serves) loads models in a worker process.

The serving process gets the numpy scorer back, verified there against the model's
own scores, so it never imports scikit-learn for a model that has one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from litemlops.config import Config
from litemlops.modeling import scores
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.testing import FixedClock

IDS = [1001, 1002, 1003]


def test_models_load_in_a_worker_and_score_as_the_model_does(
    home_factory: Callable[..., Config],
) -> None:
    config = home_factory()
    with Platform(config, workers=True, clock=FixedClock()) as platform:
        with TestClient(create_app(platform, start_scheduler=False)) as client:
            answer = client.post("/inference", json={"request_id": "w", "driver_ids": IDS})
            assert answer.status_code == 200, answer.text
            served = client.app.state.litemlops.models.get("driver_ranker@champion")  # type: ignore[attr-defined]
            rows = platform.features.get_online_features(
                [f"driver_stats:{n}" for n in served.inputs], [{"driver_id": i} for i in IDS]
            ).to_dict()
        own = platform.registry.load_model("driver_ranker@champion").model
    assert served.loaded is None and served.scorer == "numpy"
    matrix = np.array([[rows[n][k] for n in served.inputs] for k in range(len(IDS))])
    expected = scores(own, matrix)
    got = answer.json()["scores"]
    assert np.allclose([got[str(i)] for i in IDS], expected, rtol=1e-12, atol=1e-12)


SERVE = """
import json, sys
from starlette.testclient import TestClient
from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.testing import FixedClock

config = Config.load(sys.argv[1], env={}, overrides={"logging.console": False})
with Platform(config, workers=True, clock=FixedClock()) as platform:
    with TestClient(create_app(platform, start_scheduler=False)) as client:
        body = {"request_id": "s", "driver_ids": [1001]}
        status = client.post("/inference", json=body).status_code
print(json.dumps({"status": status, "sklearn": "sklearn" in sys.modules,
                  "scipy": "scipy" in sys.modules}))
"""


@pytest.mark.slow
def test_the_serving_process_never_imports_scikit_learn(
    home_factory: Callable[..., Config], tmp_path: Path
) -> None:
    config = home_factory()
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(config.home)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"status": 200, "sklearn": False, "scipy": False}
