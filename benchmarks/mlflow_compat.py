"""One MLflow client workload against `python -m litemlops run` and against `mlflow server`.

Both servers run on loopback in this run: the shipped litemlops command on a
bootstrapped temporary home, and MLflow's own server with its SQLite backend
and proxied artifacts in a temporary folder. The same MLflow client code drives
each (only the tracking URI differs): a run with 50 params, 1,000 metric points
through log_batch and 100 single log_metric calls, one sklearn model logged,
registered, aliased and loaded by alias, and a search over the runs of an
experiment seeded with `runs` runs (seeding is not timed). Each step's best of
`repeat` rounds counts (rounds alternate which server goes first); the ratio is
litemlops' time over MLflow's, and the target is 5x faster end to end.

The client's own CPU time in each step is printed too (this process's, in the
round that counted): no server, however fast, makes a step take less than that,
so `client floor` is the best ratio a server that answered in no time could reach.

Needs MLflow's server: `.venv/bin/python -m pip install 'mlflow>=3,<4'`.
Run: `.venv/bin/python benchmarks/mlflow_compat.py --size S`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import report, setup
from _shipped import Served, bootstrap, copy_home


@dataclass(frozen=True)
class Size:
    runs: int  # runs in the searched experiment
    repeat: int  # rounds of the workload (best one counts per step)


SIZES = {
    "XS": Size(runs=200, repeat=1),
    "S": Size(runs=2_000, repeat=2),
    "M": Size(runs=10_000, repeat=3),
}
TARGET = 0.2  # litemlops at least 5x faster end to end
STEPS = ("params_50", "log_batch_1000", "log_metric_100", "model_log_register_alias_load", "search")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    port = free_port()
    log = (folder / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "mlartifacts"), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: see {folder / 'mlflow-server.log'}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server was not ready in time")
            time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


def use(url: str, token: str) -> Any:
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = url
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    os.environ["MLFLOW_TRACKING_TOKEN"] = token  # MLflow's server has no auth: ignored there
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    return mlflow.MlflowClient(url, url)


def seed(client: Any, runs: int) -> str:
    from mlflow.entities import Metric, Param

    exp = client.create_experiment(f"search-{time.time_ns()}")
    for i in range(runs):
        run = client.create_run(exp)
        score = (i * 7919 % runs) / runs
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("score", score, 0, 0)],
            params=[Param("parity", str(i % 2))],
        )
    return exp


def workload(
    client: Any, search_exp: str, round_: int
) -> tuple[dict[str, float], dict[str, float]]:
    import mlflow
    import numpy as np
    import sklearn
    from mlflow.entities import Metric
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).random((200, 4))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}  # the client's own CPU time (this process) in each step

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        times[step] = time.perf_counter() - start
        cpu[step] = time.process_time() - start_cpu
        return out

    mlflow.set_experiment(f"bench-{round_}")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        timed("params_50", lambda: mlflow.log_params({f"p{i}": i for i in range(50)}))
        points = [Metric("loss", 1.0 / (i + 1), 1_767_225_600_000 + i, i) for i in range(1000)]
        timed("log_batch_1000", lambda: client.log_batch(run_id, metrics=points))

        def singles() -> None:
            for i in range(100):
                mlflow.log_metric("acc", i / 100, step=i)

        timed("log_metric_100", singles)
        name = f"bench_model_{round_}_{time.time_ns()}"

        def model_cycle() -> None:
            # Requirements given: inferring them runs the client's own subprocess for
            # seconds, the same whichever server it talks to.
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format="cloudpickle",
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )  # fmt: skip
            version = mlflow.register_model(info.model_uri, name)
            client.set_registered_model_alias(name, "champion", version.version)
            loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
            assert (np.asarray(loaded.predict(x)) == model.predict(x)).all()

        timed("model_log_register_alias_load", model_cycle)
    found = timed(
        "search",
        lambda: client.search_runs(
            [search_exp], "metrics.score > 0.5 and params.parity = '1'",
            order_by=["metrics.score DESC"], max_results=100,
        ),
    )  # fmt: skip
    assert 0 < len(found) <= 100, len(found)
    return times, cpu


def main() -> None:
    import warnings

    import mlflow

    warnings.filterwarnings("ignore")
    _label, size = setup(
        "MLflow's client against litemlops and against mlflow server (SQLite backend)",
        SIZES,
        lambda label, s: (
            f"# size {label}: searched experiment of {s.runs:,} runs, {s.repeat} rounds | "
            f"mlflow {mlflow.__version__}"
        ),
    )
    folder = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    try:
        template = folder / "template"
        bootstrap(template, folder / "bootstrap.log")
        served = Served.start(copy_home(template, folder / "home"), folder / "run.log")
        try:
            with mlflow_server(folder) as reference_url:
                targets = {"litemlops": (served.url, served.token), "mlflow": (reference_url, "")}
                searched = {}
                for which, (url, token) in targets.items():
                    searched[which] = seed(use(url, token), size.runs)
                best: dict[str, dict[str, float]] = {t: {} for t in targets}
                client_cpu: dict[str, dict[str, float]] = {t: {} for t in targets}
                for round_ in range(size.repeat):
                    order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
                    for which in order:
                        url, token = targets[which]
                        times, cpu = workload(use(url, token), searched[which], round_)
                        for step, seconds in times.items():
                            if seconds < best[which].get(step, float("inf")):
                                best[which][step] = seconds
                                client_cpu[which][step] = cpu[step]
        finally:
            served.stop()
        ours, theirs, floor = best["litemlops"], best["mlflow"], client_cpu["litemlops"]
        print("# the client's own CPU in each step against litemlops (and against MLflow's")
        print("# server, for comparison), and the ratio a server answering in no time would")
        print("# reach (the CPU against litemlops over MLflow's time):")
        for step in (*STEPS, "end_to_end"):
            spent, spent_there, reference = (
                (sum(floor.values()), sum(client_cpu["mlflow"].values()), sum(theirs.values()))
                if step == "end_to_end"
                else (floor[step], client_cpu["mlflow"][step], theirs[step])
            )
            print(
                f"#   {step}: client {spent:.3g} s ({spent_there:.3g} s against MLflow), "
                f"client floor ratio={spent / reference:.2f}"
            )
        for step in STEPS:
            report(f"mlflow_client_{step}", ours[step], "s", TARGET, theirs[step], on_ratio=True)
        report(
            "mlflow_client_end_to_end",
            sum(ours.values()), "s", TARGET, sum(theirs.values()), on_ratio=True,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
