"""The dashboard's pages, read as a browser would get them: each shows the figures the
admin API answers, escapes what it shows, loads nothing from elsewhere, and changes
nothing without the token (changes go through the API the page calls)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from conftest import MODEL

PAGES = ["/ui", "/ui/models", f"/ui/models/{MODEL}", f"/ui/models/{MODEL}/compare?left=1&right=1"]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Texts(HTMLParser):
    """Every element's text by its id, and every src/href the page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, list[str]] = {}
        self.stack: list[tuple[str, str | None]] = []  # open elements: (tag, id)
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "link", "img") and (found.get("src") or found.get("href")):
            self.loads.append(found.get("src") or found.get("href") or "")
        if found.get("id"):
            self.ids.setdefault(found["id"] or "", [])
        if tag not in VOID:
            self.stack.append((tag, found.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, name in self.stack:
            if name is not None:
                self.ids[name].append(data)

    def text(self, name: str) -> str:
        return " ".join(" ".join(self.ids[name]).split())


def page(client, url: str) -> Texts:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    parsed = Texts()
    parsed.feed(response.text)
    return parsed


@pytest.mark.parametrize("url", PAGES)
def test_each_page_loads_only_this_servers_files_under_a_strict_policy(client, url):
    response = client.get(url)
    parsed = page(client, url)

    assert parsed.loads and all(u.startswith("/ui/static/") for u in parsed.loads), parsed.loads
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "<script>" not in response.text  # scripts come from files only
    assert not re.search(r"<[^>]+\son\w+=", response.text)  # no inline event handlers
    for asset in parsed.loads:
        assert client.get(asset).status_code == 200, asset


def test_the_root_sends_a_browser_to_the_dashboard(client):
    response = client.get("/", follow_redirects=False)

    assert response.status_code == 307 and response.headers["location"] == "/ui"


def test_the_overview_shows_what_the_api_says(client):
    answered = client.post("/inference", json={"request_id": "ov-1", "driver_ids": [1001, 1002]})
    assert answered.status_code == 200
    hour = client.app.state.litemlops.metrics.traffic.last_hour()  # type: ignore[attr-defined]
    ready = client.get("/ready").json()
    runs = client.get("/api/pipelines/runs", params={"limit": 10}).json()
    monitoring = client.get("/api/monitoring").json()

    parsed = page(client, "/ui")

    assert "ready" in parsed.text("readiness") and "not ready" not in parsed.text("readiness")
    assert f"v{ready['version']}" in parsed.text("service")
    assert f"{MODEL}@champion" in parsed.text("service")
    shown = parsed.text("runs")
    for run in runs:
        assert run["run_id"][:12] in shown and run["pipeline"] in shown
    assert hour["requests"] >= 1
    assert "req/s" in parsed.text("traffic") and "p99" in parsed.text("traffic")
    firing = [a for a in monitoring["alerts"] if a["state"] in ("firing", "pending")]
    assert ("none firing" in parsed.text("alerts")) == (not firing)


def test_the_models_pages_show_the_registry_as_the_api_does(client):
    listed = client.get("/api/models").json()
    model = client.get(f"/api/models/{MODEL}").json()
    history = client.get(f"/api/models/{MODEL}/aliases/champion/history").json()

    models = page(client, "/ui/models")
    one = page(client, f"/ui/models/{MODEL}")

    for m in listed:
        assert m["name"] in models.text("models")
    for alias, version in model["aliases"].items():
        assert f"{alias} v{version}" in one.text("aliases")
    moves = one.text("moves")
    for move in history:
        assert (move.get("reason") or "") in moves
    for v in model["versions"]:
        assert one.text(f"v{v['version']}").startswith(f"v{v['version']}")
        assert v["run_id"][:12] in one.text(f"v{v['version']}")


def test_an_unknown_model_is_a_404_page_naming_it(client):
    response = client.get("/ui/models/nobody")

    assert response.status_code == 404
    assert "nobody" in response.text and response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("query", ["", "?left=1", "?left=x&right=1"])
def test_a_comparison_without_two_version_numbers_says_what_it_needs(client, query):
    response = client.get(f"/ui/models/{MODEL}/compare{query}")

    assert response.status_code == 404
    assert "?left=N&amp;right=M" in response.text


def test_text_from_the_registry_is_escaped_not_markup(client, auth):
    reason = '<img src=x onerror="alert(1)">'
    moved = client.put(
        f"/api/models/{MODEL}/aliases/escaped", json={"version": 1, "reason": reason},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text

    text = client.get(f"/ui/models/{MODEL}").text

    assert reason not in text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in text


def test_the_alias_form_names_the_api_route_the_page_script_calls(client):
    text = client.get(f"/ui/models/{MODEL}").text
    routes = set(re.findall(r'data-method="(\w+)" data-url="([^"]+)"', text))

    assert routes == {("PUT", f"/api/models/{MODEL}/aliases/{{alias}}")}
    # The API refuses it without the token: the page cannot change anything by itself.
    assert client.put(f"/api/models/{MODEL}/aliases/x", json={"version": 1}).status_code == 401


def test_pages_are_not_part_of_the_api_document(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


# -- the alias timeline ------------------------------------------------------------------------


def move(alias, to, minute, reason=""):
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    return {"alias": alias, "to_version": to, "at": at, "reason": reason}


def bars(svg: str) -> list[tuple[str, float, float]]:
    """(version, x, width) of each bar, left to right as drawn."""
    found = re.findall(
        r'data-version="(\d+)">.*?<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg
    )
    return [(v, float(x), float(w)) for v, x, w in found]


def test_the_timeline_draws_a_bar_per_stretch_an_alias_named_a_version():
    from datetime import UTC, datetime

    from litemlops.server.dashboard.svg import LABEL, alias_timeline

    moves = [move("champion", 1, 0), move("challenger", 2, 10), move("champion", 2, 20),
             move("challenger", None, 30), move("challenger", 3, 40)]
    now = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    svg = str(alias_timeline(moves, now, width=LABEL + 8 + 600))  # 10 px a minute

    assert bars(svg) == [
        ("2", LABEL + 100, 200.0), ("3", LABEL + 400, 200.0),  # challenger: a gap while deleted
        ("1", LABEL + 0, 200.0), ("2", LABEL + 200, 400.0),  # champion until now
    ]
    assert svg.count('class="row"') == 2


def test_the_timeline_escapes_names_and_reasons_and_is_empty_without_moves():
    from datetime import UTC, datetime

    from litemlops.server.dashboard.svg import alias_timeline

    now = datetime(2026, 1, 1, 13, tzinfo=UTC)
    svg = str(alias_timeline([move("a<b", 1, 0, reason='"x" & <y>')], now))

    assert "a&lt;b" in svg and "&quot;x&quot; &amp; &lt;y&gt;" in svg and "<y>" not in svg
    assert str(alias_timeline([], now)) == ""


# -- pipelines ---------------------------------------------------------------------------------


def test_the_pipelines_page_lists_the_catalog_and_the_runs_the_api_lists(client):
    described = client.get("/api/pipelines").json()
    runs = client.get("/api/pipelines/runs", params={"limit": 50}).json()

    parsed = page(client, "/ui/pipelines")

    for p in described:
        assert p["name"] in parsed.text("pipelines")
        assert " → ".join(t["name"] for t in p["tasks"]) in parsed.text("pipelines")
    for run in runs:
        assert run["run_id"][:12] in parsed.text("runs")
    text = client.get("/ui/pipelines").text
    for p in described:
        assert f'data-url="/api/pipelines/{p["name"]}/trigger"' in text


def test_a_pipeline_runs_page_shows_each_attempt_and_the_runs_events(client):
    run = client.get("/api/pipelines/runs", params={"limit": 1}).json()[0]
    detail = client.get(f"/api/pipelines/runs/{run['run_id']}").json()

    parsed = page(client, f"/ui/pipelines/runs/{run['run_id']}")
    text = client.get(f"/ui/pipelines/runs/{run['run_id']}").text

    attempts = parsed.text("attempts")
    for task in detail["tasks"]:
        assert task["task"] in attempts
    assert text.count('class="bar" data-state=') == len(detail["tasks"])
    assert "task_succeeded" in parsed.text("events")
    assert "/resume" not in text  # only a failed run offers to resume


def test_an_unknown_run_or_pipeline_is_a_404_page(client):
    assert client.get("/ui/pipelines/runs/nope").status_code == 404
    missing = client.get("/ui/pipelines", params={"pipeline": "nope"})
    assert missing.status_code == 404 and "nope" in missing.text


def test_the_features_page_shows_each_view_as_the_api_describes_it(client):
    views = client.get("/api/features").json()

    parsed = page(client, "/ui/features")

    for v in views:
        shown = parsed.text(f"view-{v['name']}")
        assert f"{v['offline_rows']} rows" in shown and f"{v['online_entities']} entities" in shown
        for name, rate in v["null_rates"].items():
            assert name in shown and f"{rate * 100:.1f} %" in shown


# -- experiments -------------------------------------------------------------------------------


def test_the_experiments_page_lists_the_runs_the_api_finds_with_the_same_filter(client):
    for query in ({}, {"filter": "metrics.test_auc > 0"}, {"filter": "params.seed = 'nope'"}):
        found = client.get("/api/runs", params=query).json()["runs"]

        shown = page(client, "/ui/experiments?" + "&".join(f"{k}={v}" for k, v in query.items()))

        assert [r["run_id"][:12] in shown.text("runs") for r in found] == [True] * len(found)
        assert ("no run matches" in shown.text("runs")) == (not found)


def test_a_bad_filter_is_a_400_page_saying_what_is_wrong(client):
    api = client.get("/api/runs", params={"filter": "metrics.x >"})
    response = client.get("/ui/experiments", params={"filter": "metrics.x >"})

    assert response.status_code == 400
    parsed = Texts()
    parsed.feed(response.text)
    assert parsed.text("search-error") == api.json()["error"]["message"]


def test_the_charts_page_draws_each_metric_of_the_checked_runs_by_step(client, served_platform):
    tracker = served_platform.tracker
    with tracker.start_run(experiment="charts") as run:
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=step)
        run.log_metric("auc", 0.8)

    text = client.get(f"/ui/experiments/charts?run={run.id}").text
    only = client.get(f"/ui/experiments/charts?run={run.id}&metric=loss").text

    assert 'id="chart-loss"' in text and 'id="chart-auc"' in text
    assert text.count("<circle") == 4  # every logged value is a point
    assert 'id="chart-auc"' not in only
    assert "0.9 at 0" in only and "0.3 at 2" in only


def test_charting_no_run_or_an_unknown_one_is_a_404_page(client):
    assert "choose runs" in client.get("/ui/experiments/charts").text
    assert client.get("/ui/experiments/charts?run=nope").status_code == 404


def test_a_line_chart_puts_the_extremes_at_the_axes_ends_and_skips_non_numbers():
    from litemlops.server.dashboard.svg import line_chart

    svg = str(line_chart({"a": [(0, 1.0), (10, 3.0), (5, float("nan"))]}, "step", "loss",
                         width=276, height=252))  # fmt: skip

    # plot area: x 64..264, y 12..212
    assert '<polyline points="64.0,212.0 264.0,12.0"' in svg
    assert svg.count("<circle") == 2
    assert str(line_chart({"a": [(0, float("nan"))]}, "step", "loss")) == ""


# -- monitoring --------------------------------------------------------------------------------


def test_the_monitoring_page_shows_the_latest_check_as_the_api_does(home_factory, serve):
    with serve(home_factory()) as (_, own):
        empty = page(own, "/ui/monitoring")
        for i in range(40):
            own.post("/inference", json={"request_id": f"m{i}", "driver_ids": [1001, 1002]})
        token = own.app.state.litemlops.token  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):  # two checks: the trend has two points
            ran = own.post("/api/pipelines/monitoring/trigger", headers=headers)
            assert ran.status_code == 202 and ran.json()["state"] == "success", ran.text
        api = own.get("/api/monitoring").json()

        text = own.get("/ui/monitoring").text
        parsed = page(own, "/ui/monitoring")

    assert "no monitoring check yet" in empty.text("main")
    assert api["drift"]["message"] in parsed.text("verdict")
    for name, feature in api["drift"]["features"].items():
        shown = parsed.text(f"feature-{name}")
        method = feature["method"]
        statistic = {"ks": "ks_pvalue", "chi2": "chi2_pvalue"}.get(method, method)
        assert f"{statistic} = {feature['stats'][statistic]:.4g}" in shown
        bins = len(feature["distribution"].get("categories") or []) or (
            len(feature["distribution"]["edges"]) + 1
        )
        section = text.split(f'id="feature-{name}"', 1)[1].split("</section>", 1)[0]
        assert section.count('<g class="bin">') == bins
        line = section.split(f'data-name="{statistic}"', 1)[1].split("</g>", 1)[0]
        assert line.count("<circle") == 2  # the deciding statistic of each check
    for alert in api["alerts"]:
        assert alert["rule"] in parsed.text("alert-states")


# -- lineage -----------------------------------------------------------------------------------


def test_a_requests_lineage_names_its_answer_label_version_run_and_alias_move(client, auth):
    answer = client.post("/inference", json={"request_id": "lin-1", "driver_ids": [1001, 1002]})
    assert answer.status_code == 200, answer.text
    labelled = client.post("/feedback", json={"request_id": "lin-1", "label": 1}, headers=auth)
    assert labelled.status_code == 202, labelled.text
    version = client.get(f"/api/models/{MODEL}/versions/{answer.json()['version']}").json()
    move = [m for m in client.get(f"/api/models/{MODEL}/aliases/champion/history").json()
            if m["to_version"] == version["version"]][-1]  # fmt: skip

    parsed = page(client, "/ui/lineage?request_id=lin-1")

    served = parsed.text("served")
    assert f"{MODEL} v{version['version']}" in served
    assert f"output {answer.json()['prediction']}" in served
    for entity, score in answer.json()["scores"].items():
        assert entity in served and f"{score:.4g}" in served
    assert "1.0 at" in parsed.text("labels")
    assert version["run_id"][:12] in parsed.text("trained")
    assert (move["reason"] or "") in parsed.text("alias")


def test_an_unknown_request_id_is_a_404_page_and_none_is_the_form(client):
    missing = client.get("/ui/lineage?request_id=never-served")
    blank = client.get("/ui/lineage")

    assert missing.status_code == 404 and "never-served" in missing.text
    assert blank.status_code == 200 and 'name="request_id"' in blank.text


def test_a_models_page_links_each_version_to_the_lineage_of_requests_it_answered(client):
    answer = client.post("/inference", json={"request_id": "back-1", "driver_ids": [1001, 1002]})
    version = answer.json()["version"]

    text = client.get(f"/ui/models/{MODEL}").text

    section = text.split(f'id="v{version}"', 1)[1].split("</details>", 1)[0]
    assert 'href="/ui/lineage?request_id=back-1"' in section


# -- the API page ------------------------------------------------------------------------------


def test_the_api_page_lists_every_operation_of_the_document_with_a_form(client):
    document = client.get("/openapi.json").json()

    text = client.get("/docs").text

    for path, item in document["paths"].items():
        for method, op in item.items():
            assert f'id="op-{op["operationId"]}"' in text, (method, path)
            assert f'data-method="{method.upper()}" data-path="{path}"' in text
            for param in op.get("parameters", []):
                assert f'name="{param["in"]}:{param["name"]}"' in text


# -- deployments -------------------------------------------------------------------------------


def test_the_deployments_page_shows_the_live_report_the_api_gives(home_factory, serve):
    with serve(home_factory()) as (platform, own):
        none_yet = page(own, "/ui/deployments")
        champion = platform.registry.get_model_version(MODEL, 1)
        platform.registry.register_model(
            f"runs:/{champion.run_id}/{champion.model_name}", MODEL, allow_duplicate=True
        )
        token = own.app.state.litemlops.token  # type: ignore[attr-defined]
        auth = {"Authorization": f"Bearer {token}"}
        body = {"strategy": "ab", "challenger": "2", "shares": [50, 50], "stop": False}
        started = own.put("/api/services/inference/deployment", json=body, headers=auth)
        assert started.status_code == 201, started.text
        for i in range(30):
            own.post("/inference", json={"request_id": f"d{i}", "driver_ids": [1001, 1002]})
            own.post("/feedback", json={"request_id": f"d{i}", "label": i % 2}, headers=auth)
        own.app.state.litemlops.deployments.tick()  # type: ignore[attr-defined]
        api = own.get("/api/services/inference/deployment").json()

        shown = page(own, "/ui/deployments")
        named = page(own, f"/ui/deployments/{api['name']}")
        missing = own.get("/ui/deployments/nope")

    assert "no deployment yet" in none_yet.text("main")
    for parsed in (shown, named):
        arms = parsed.text("arms")
        for arm in api["arms"]:
            assert f"{arm['arm']} {arm['share'] * 100:.0f} % {arm['served']} {arm['errors']} " \
                   f"{arm['labelled']}" in arms  # fmt: skip
        assert api["decision"]["why"] in parsed.text("decision")
        assert api["name"] in parsed.text("deployments")
    assert missing.status_code == 404


def test_the_deployments_page_draws_every_strategy_live_and_ended(home_factory, serve):
    bodies = [
        {"strategy": "canary", "challenger": "2", "steps": [20, 100], "interval_seconds": 60},
        {"strategy": "shadow", "challenger": "2", "sample": 100},
        {"strategy": "bandit", "challenger": "2", "min_share": 5},
        {"strategy": "ab", "challenger": "2", "shares": [50, 50], "stop": False},
    ]
    with serve(home_factory()) as (platform, own):
        champion = platform.registry.get_model_version(MODEL, 1)
        platform.registry.register_model(
            f"runs:/{champion.run_id}/{champion.model_name}", MODEL, allow_duplicate=True
        )
        token = own.app.state.litemlops.token  # type: ignore[attr-defined]
        auth = {"Authorization": f"Bearer {token}"}
        for n, body in enumerate(bodies):
            started = own.put("/api/services/inference/deployment", json=body, headers=auth)
            assert started.status_code == 201, started.text
            for i in range(5):
                own.post("/inference", json={"request_id": f"s{n}-{i}", "driver_ids": [1001]})
            own.app.state.litemlops.deployments.tick()  # type: ignore[attr-defined]
            live = own.get("/ui/deployments")
            ended = own.delete("/api/services/inference/deployment", headers=auth)
            after = own.get(f"/ui/deployments/{started.json()['name']}")

            assert live.status_code == 200 and body["strategy"] in live.text, live.text[-2000:]
            assert ended.status_code == 200 and after.status_code == 200
            assert "Promote" not in after.text  # an ended deployment offers no action
