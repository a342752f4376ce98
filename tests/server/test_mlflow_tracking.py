"""MLflow's own client logs experiments and runs into a live litemlops server."""

from __future__ import annotations

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402


def test_a_training_script_logs_params_stepped_metrics_and_tags_that_read_back_equal(
    mlflow_client, mlflow_server
):
    _, _, platform = mlflow_server
    mlflow.set_experiment("mlflow-script")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_params({"alpha": 0.5, "layers": "3"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.75, "f1": 0.5})
        mlflow.set_tags({"team": "rides", "stage": "dev"})
        mlflow.set_tag("temp", "x")
        mlflow.delete_tag("temp")
    got = mlflow_client.get_run(run.info.run_id)
    assert got.info.run_name == "first" and got.info.status == "FINISHED"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.data.params == {"alpha": "0.5", "layers": "3"}
    assert got.data.metrics == {"loss": 0.2, "acc": 0.75, "f1": 0.5}
    assert {"team": "rides", "stage": "dev"}.items() <= got.data.tags.items()
    assert "temp" not in got.data.tags
    history = mlflow_client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    # The same run, seen by litemlops itself.
    info = platform.tracker.get_run(run.info.run_id)
    assert (info.experiment, info.name, info.status) == ("mlflow-script", "first", "finished")
    assert info.params == got.data.params and info.metrics == got.data.metrics


def test_a_run_a_client_logs_to_is_left_running_when_its_server_restarts(
    mlflow_client, mlflow_server, monkeypatch
):
    from litemlops.store.tracking import tracker as tracker_module

    _, _, platform = mlflow_server
    exp_id = mlflow_client.create_experiment("mlflow-restart")
    commit = {"mlflow.source.git.commit": "c" * 40}  # the script's, as MLflow's client sends
    remote = mlflow_client.create_run(exp_id, start_time=1_767_225_600_123, tags=commit).info.run_id
    local = platform.tracker.start_run("mlflow-restart").id
    # The server stopped and started again: no process that started a run is alive.
    monkeypatch.setattr(tracker_module, "process_alive", lambda pid, start: False)
    assert platform.tracker.mark_interrupted() == [local]
    got = mlflow_client.get_run(remote)
    assert (got.info.status, got.info.start_time) == ("RUNNING", 1_767_225_600_123)
    mlflow_client.log_metric(remote, "loss", 0.5)
    mlflow_client.set_terminated(remote)
    info = platform.tracker.get_run(remote)
    assert (info.error, info.git_commit) == (None, "c" * 40)  # the lineage's commit too


def test_experiments_are_created_found_renamed_deleted_and_restored(mlflow_client):
    exp_id = mlflow_client.create_experiment("mlflow-exp", tags={"owner": "me"})
    assert mlflow_client.get_experiment(exp_id).name == "mlflow-exp"
    assert mlflow_client.get_experiment_by_name("mlflow-exp").tags == {"owner": "me"}
    assert mlflow_client.get_experiment_by_name("nope-nope") is None
    with pytest.raises(MlflowException) as exists:
        mlflow_client.create_experiment("mlflow-exp")
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"
    mlflow_client.rename_experiment(exp_id, "mlflow-exp-2")
    mlflow_client.set_experiment_tag(exp_id, "goal", "speed")
    exp = mlflow_client.get_experiment(exp_id)
    assert exp.name == "mlflow-exp-2" and exp.tags == {"owner": "me", "goal": "speed"}
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    mlflow_client.delete_experiment(exp_id)
    assert mlflow_client.get_experiment(exp_id).lifecycle_stage == "deleted"
    names = [e.name for e in mlflow_client.search_experiments()]
    assert "mlflow-exp-2" not in names
    mlflow_client.restore_experiment(exp_id)
    found = mlflow_client.search_experiments(filter_string="name LIKE 'mlflow-exp%'")
    assert [e.name for e in found] == ["mlflow-exp-2"]


def test_search_runs_filters_orders_and_pages_like_mlflow(mlflow_client):
    exp_id = mlflow_client.create_experiment("mlflow-search")
    ids = []
    for i in range(7):
        run = mlflow_client.create_run(exp_id, run_name=f"r{i}")
        mlflow_client.log_metric(run.info.run_id, "score", float(i % 4), step=0)
        mlflow_client.log_param(run.info.run_id, "parity", "even" if i % 2 == 0 else "odd")
        mlflow_client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    mlflow_client.delete_run(ids[0])
    runs = mlflow_client.search_runs(
        [exp_id],
        filter_string="metrics.score >= 1 and params.parity = 'even'",
        order_by=["metrics.score DESC", "attributes.run_name ASC"],
    )
    assert [r.info.run_name for r in runs] == ["r2", "r6"]  # r0 has score 0 and is deleted
    pages, token = [], None
    while True:
        page = mlflow_client.search_runs(
            [exp_id], order_by=["metrics.score ASC"], max_results=2, page_token=token
        )
        pages.append([r.info.run_name for r in page])
        token = page.token
        if not token:
            break
    flat = [name for page in pages for name in page]
    by_id = dict(zip([f"r{i}" for i in range(7)], ids, strict=True))
    tied = [sorted(pair, key=by_id.__getitem__) for pair in (["r1", "r5"], ["r2", "r6"])]
    assert flat == ["r4", *tied[0], *tied[1], "r3"]  # ties go to run id, r0 deleted
    assert all(len(p) <= 2 for p in pages) and len(pages) == 3
    deleted = mlflow_client.search_runs(
        [exp_id], run_view_type=mlflow.entities.ViewType.DELETED_ONLY
    )
    assert [r.info.run_id for r in deleted] == [ids[0]]
    mlflow_client.restore_run(ids[0])
    assert len(mlflow_client.search_runs([exp_id])) == 7


def test_log_batch_keeps_each_points_step_and_time(mlflow_client):
    from mlflow.entities import Metric, Param, RunTag

    run = mlflow_client.create_run("0")
    points = [Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(1000)]
    mlflow_client.log_batch(
        run.info.run_id,
        metrics=points,
        params=[Param(f"p{i}", str(i)) for i in range(50)],
        tags=[RunTag("kind", "batch")],
    )
    history = mlflow_client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (p.step, p.value, p.timestamp) for p in points
    ]
    got = mlflow_client.get_run(run.info.run_id)
    assert len(got.data.params) == 50 and got.data.tags["kind"] == "batch"


def test_bad_input_answers_mlflow_errors_and_changes_nothing(mlflow_client, mlflow_server):
    _, _, platform = mlflow_server
    run = mlflow_client.create_run("0")
    run_id = run.info.run_id
    mlflow_client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as missing:
        mlflow_client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as changed:
        mlflow_client.log_param(run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as nan:
        mlflow_client.log_metric(run_id, "loss", float("nan"))
    assert nan.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_filter:
        mlflow_client.search_runs(["0"], filter_string="metrics.loss >>> 1")
    assert bad_filter.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_key:
        mlflow_client.log_metric(run_id, "../escape", 1.0)
    assert bad_key.value.error_code == "INVALID_PARAMETER_VALUE"
    info = platform.tracker.get_run(run_id)
    assert info.params == {"lr": "0.1"} and info.metrics == {}


def test_writes_need_the_token_and_reads_do_not(mlflow_client, monkeypatch):
    run = mlflow_client.create_run("0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    assert mlflow_client.get_run(run.info.run_id).info.run_id == run.info.run_id
    with pytest.raises(MlflowException) as refused:
        mlflow_client.log_param(run.info.run_id, "k", "v")
    assert refused.value.error_code == "UNAUTHENTICATED"


def test_an_endpoint_litemlops_does_not_serve_answers_endpoint_not_found(mlflow_server):
    import httpx

    url, _, _ = mlflow_server
    answer = httpx.get(f"{url}/api/2.0/mlflow/no/such/thing")
    assert answer.status_code == 404
    assert answer.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    ajax = httpx.get(f"{url}/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert ajax.status_code == 200 and ajax.json()["experiment"]["name"] == "default"


def test_runs_logged_through_mlflow_are_listed_by_the_cli(mlflow_client, served_home):
    import json

    from click.testing import CliRunner

    from litemlops.cli import cli

    exp_id = mlflow_client.create_experiment("mlflow-cli")
    run = mlflow_client.create_run(exp_id, run_name="seen-by-cli")
    mlflow_client.log_metric(run.info.run_id, "auc", 0.9)
    result = CliRunner().invoke(
        cli,
        ["runs", "list", "--home", str(served_home.home), "--experiment", "mlflow-cli", "--json"],
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["runs"]
    assert [(r["run_id"], r["name"], r["metrics"]) for r in listed] == [
        (run.info.run_id, "seen-by-cli", {"auc": 0.9})
    ]


def _mlflow_routes():
    from starlette.routing import Route

    from litemlops.server.mlflow import MLFLOW_PREFIXES, mlflow_routes

    return [
        (method, route.path)
        for api in mlflow_routes()
        for route in api.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith(MLFLOW_PREFIXES)
        and "{rest:path}" not in route.path
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]  # fmt: skip


def _writes() -> set[tuple[str, str]]:
    from litemlops.server.mlflow import experiments, models, registry, runs
    from litemlops.server.mlflow.base import PREFIXES

    table = [*experiments.ROUTES, *runs.ROUTES, *models.ROUTES, *registry.ROUTES]
    found = {(m, prefix + p) for prefix in PREFIXES for m, p, _, write in table if write}
    artifacts = "/api/2.0/mlflow-artifacts/artifacts/{path:path}"
    return found | {("PUT", artifacts), ("DELETE", artifacts)}


def _fill(path: str) -> str:
    import re

    return re.sub(r"\{(\w+)(:\w+)?\}", "x", path)


def test_every_mlflow_write_refuses_without_the_token_in_mlflows_shape(mlflow_server):
    import httpx

    url, token, _ = mlflow_server
    writes = _writes()
    assert {m for m, _ in writes} == {"POST", "PUT", "PATCH", "DELETE"}
    with httpx.Client(base_url=url) as http:  # one client: each new one loads the CA bundle
        for method, path in sorted(writes):
            for headers in ({}, {"Authorization": "Bearer not-the-token"}):
                answer = http.request(method, _fill(path), json={}, headers=headers)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.json()["error_code"] == "UNAUTHENTICATED"
            with_token = http.request(
                method, _fill(path), json={}, headers={"Authorization": f"Bearer {token}"}
            )
            status = with_token.status_code  # 501: NOT_IMPLEMENTED, said plainly
            assert status not in (401, 403) and (status < 500 or status == 501), (
                method, path, with_token.text,
            )  # fmt: skip


def test_every_mlflow_route_with_a_json_body_refuses_a_body_not_sent_as_json(mlflow_server):
    import httpx

    url, token, _ = mlflow_server
    auth = {"Authorization": f"Bearer {token}"}
    routes = [(m, p) for m, p in _mlflow_routes() if m in ("POST", "PATCH", "DELETE")]
    assert len(routes) > 20
    with httpx.Client(base_url=url) as http:
        for method, path in routes:
            for content_type in ("text/plain", "application/x-www-form-urlencoded"):
                answer = http.request(
                    method, _fill(path), content=b"{}",
                    headers={**auth, "content-type": content_type},
                )  # fmt: skip
                if path.startswith("/api/2.0/mlflow-artifacts"):
                    continue  # artifacts are bytes, sent as any type
                assert answer.status_code == 415, (method, path, answer.text)
                assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_search_experiments_orders_and_pages_through_every_match(mlflow_client):
    names = [f"mlflow-page-{i}" for i in range(5)]
    for name in reversed(names):
        mlflow_client.create_experiment(name)
    seen, token = [], None
    while True:
        page = mlflow_client.search_experiments(
            filter_string="name LIKE 'mlflow-page-%'", order_by=["name ASC"], max_results=2,
            page_token=token,
        )  # fmt: skip
        assert len(page) <= 2
        seen += [e.name for e in page]
        token = page.token
        if not token:
            break
    assert seen == names
    newest = mlflow_client.search_experiments(
        filter_string="name LIKE 'mlflow-page-%'", order_by=["name DESC"], max_results=1
    )
    assert [e.name for e in newest] == [names[-1]]


def test_logging_to_a_deleted_or_unknown_run_is_refused_and_a_restored_run_takes_it(
    mlflow_client,
):
    run_id = mlflow_client.create_run("0").info.run_id
    mlflow_client.log_metric(run_id, "loss", 0.5)
    mlflow_client.delete_run(run_id)
    for log in (lambda: mlflow_client.log_metric(run_id, "loss", 0.25),
                lambda: mlflow_client.log_param(run_id, "alpha", "1"),
                lambda: mlflow_client.set_tag(run_id, "team", "rides")):  # fmt: skip
        with pytest.raises(MlflowException, match=f"run {run_id} is deleted") as refused:
            log()
        assert refused.value.error_code == "INVALID_STATE"
    with pytest.raises(MlflowException, match=r"no run with id 'f+'") as unknown:
        mlflow_client.log_metric("f" * 32, "loss", 0.25)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    mlflow_client.restore_run(run_id)
    mlflow_client.log_metric(run_id, "loss", 0.25, step=1)

    got = mlflow_client.get_run(run_id)
    assert got.data.metrics == {"loss": 0.25} and got.data.params == {}
    assert "team" not in got.data.tags
