"""The dashboard in a real browser: headless Chromium (Debian's `chromium-headless-shell`,
else its full `chromium`) driven by playwright against the shipped `python -m litemlops
run`. Each page loads with no console error and draws something; the token flow moves an
alias through the admin API; a page refreshes in place. Where no browser is installed the
tests skip, except in CI (`CI` set), where `.ci/run` installs one and a missing browser is
a failure."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import MODEL

pytestmark = pytest.mark.slow

#: The headless shell first: Chromium's old headless mode, what Playwright runs headless tests
#: on, at a third of the CPU of the full browser's headless mode for the same pages.
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def browser_path() -> str | None:
    return next((p for name in BROWSERS if (p := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = browser_path()
    if path is None:
        message = (
            f"no browser ({', '.join(BROWSERS)}) on PATH; "
            ".ci/run installs chromium-headless-shell"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        # No sandbox: CI runs as root, where Chromium refuses to start with one.
        launched = driver.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def served(
    served_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """`python -m litemlops run` on a copy of the template home: its URL and token."""
    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(served_template, home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEMLOPS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "litemlops", "run", "--home", str(home), "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            address = home / "server.json"
            if address.exists():
                url = json.loads(address.read_text())["url"]
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            time.sleep(0.2)
        else:
            process.kill()
            pytest.fail(f"run did not get ready: {process.communicate()[1][-3000:]}")
        yield url, (home / "token").read_text().strip()
    finally:
        process.terminate()
        process.communicate(timeout=60)


def visible_colours(png: bytes) -> int:
    """How many byte values the decoded image data holds: a blank page has a few."""
    chunks, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(png[at + 8 : at + 8 + length])
        at += 12 + length
    return len(set(zlib.decompress(b"".join(chunks))))


PAGES = [
    "/ui", "/ui/models", f"/ui/models/{MODEL}", f"/ui/models/{MODEL}/compare?left=1&right=1",
    "/ui/pipelines", "/ui/pipelines/runs/newest", "/ui/features", "/ui/experiments",
    "/ui/experiments/charts?run=newest", "/ui/monitoring", "/ui/lineage", "/docs",
    "/ui/deployments",
]


@pytest.mark.parametrize("path", PAGES)
def test_each_page_loads_without_console_errors_and_is_not_blank(browser, served, path):
    url, _ = served
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    if path.endswith("/newest"):
        newest = httpx.get(f"{url}/api/pipelines/runs", params={"limit": 1}).json()[0]
        path = path.replace("newest", newest["run_id"])
    elif path.endswith("=newest"):
        newest = httpx.get(f"{url}/api/runs", params={"limit": 1}).json()["runs"][0]
        path = path.replace("newest", newest["run_id"])
    # The pages are drawn by the server and their script fetches only on a refresh tick
    # or a form, so the load event (goto waits for it) ends what a visit asks for.
    response = page.goto(url + path)

    assert response is not None and response.status == 200
    assert errors == []
    assert page.locator("h1").inner_text().strip()
    assert visible_colours(page.screenshot(full_page=True)) > 20
    page.close()


def run_to_end(url: str, auth: dict[str, str], pipeline: str, params: Any = None) -> str:
    """Trigger `pipeline` through the API and wait for its run to end; its state. A run
    skipped because the scheduler's own run of the pipeline was active (on a slow
    machine the minutely monitoring check can still be going) is triggered again."""
    body = {"params": params} if params else None
    deadline = time.monotonic() + 120
    while True:
        run = httpx.post(f"{url}/api/pipelines/{pipeline}/trigger", json=body, headers=auth)
        state = run.json()["state"]
        while time.monotonic() < deadline and state in ("queued", "running"):
            time.sleep(0.2)
            answer = httpx.get(f"{url}/api/pipelines/runs/{run.json()['run_id']}")
            state = answer.json()["state"]
        if state != "skipped" or time.monotonic() > deadline:
            return str(state)
        time.sleep(0.5)


def keep_token(page: Any, token: str) -> None:
    """Enter the admin token in the page's token form (the tab keeps it)."""
    page.locator("#token input[name=token]").fill(token)
    page.locator("#token button").click()


def move_alias(page: Any, alias: str, version: int, reason: str) -> str:
    """Fill the model page's alias form and submit it; the notice it shows."""
    form = page.locator("form.change")
    form.locator("input[name=alias]").fill(alias)
    form.locator("select[name=version]").select_option(str(version))
    form.locator("input[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()
    from playwright.sync_api import expect

    expect(page.locator("#notice")).not_to_have_text("", timeout=15_000)
    return str(page.locator("#notice").inner_text())


def test_the_token_entered_once_moves_an_alias_through_the_api(browser, served):
    url, token = served
    page = browser.new_page()
    page.goto(f"{url}/ui/models/{MODEL}")

    keep_token(page, token)
    shown = move_alias(page, "browser", 1, "moved from the dashboard")

    assert shown.startswith("moved:"), shown
    model = httpx.get(f"{url}/api/models/{MODEL}").json()
    assert model["aliases"]["browser"] == 1
    history = httpx.get(f"{url}/api/models/{MODEL}/aliases/browser/history").json()
    assert history[-1]["reason"] == "moved from the dashboard"
    page.locator("#aliases").filter(has_text="browser").wait_for(timeout=15_000)
    page.reload()  # the token is kept for the tab
    assert page.locator("#token .token-state").inner_text() == "token kept"
    page.close()


def test_without_the_token_or_with_a_wrong_one_nothing_moves(browser, served):
    url, _ = served
    page = browser.new_page()
    page.goto(f"{url}/ui/models/{MODEL}")

    first = move_alias(page, "refused", 1, "no token")
    keep_token(page, "not-the-token-at-all")
    page.locator("#notice").evaluate("box => { box.textContent = ''; }")  # for the next one
    second = move_alias(page, "refused", 1, "wrong token")

    assert "enter the admin token first" in first
    assert second.startswith("401:"), second
    assert "refused" not in httpx.get(f"{url}/api/models/{MODEL}").json()["aliases"]
    page.close()


def test_a_page_shows_a_change_made_elsewhere_without_a_reload(browser, served):
    url, token = served
    page = browser.new_page()
    page.clock.install()  # the page's timers run when the test moves this clock
    page.goto(f"{url}/ui/models")
    page.evaluate("window.loadedOnce = true")  # gone if the page were loaded again

    moved = httpx.put(
        f"{url}/api/models/{MODEL}/aliases/elsewhere", json={"version": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert moved.status_code == 200, moved.text
    shown = page.locator("#models").filter(has_text="elsewhere")
    page.clock.run_for(9_000)
    assert shown.count() == 0  # not before the page's 10 s refresh

    page.clock.run_for(1_000)

    shown.wait_for(timeout=20_000)
    assert page.evaluate("window.loadedOnce") is True
    page.close()


def test_run_now_starts_a_pipeline_with_the_tabs_token(browser, served):
    url, token = served
    before = httpx.get(f"{url}/api/pipelines/runs", params={"pipeline": "monitoring"}).json()
    page = browser.new_page()
    page.goto(f"{url}/ui/pipelines")
    keep_token(page, token)

    row = page.locator("#pipelines tr").filter(has_text="monitoring")
    row.locator("button", has_text="Run now").click()
    from playwright.sync_api import expect

    expect(page.locator("#notice")).to_contain_text("started:", timeout=15_000)
    after = httpx.get(f"{url}/api/pipelines/runs", params={"pipeline": "monitoring"}).json()
    new = [r for r in after if r["run_id"] not in {b["run_id"] for b in before}]
    assert [r["trigger"] for r in new] == ["manual"]
    page.close()


def test_the_api_page_sends_an_operation_and_shows_its_answer(browser, served):
    from playwright.sync_api import expect

    url, _ = served
    page = browser.new_page()
    page.goto(f"{url}/docs")
    document = httpx.get(f"{url}/openapi.json").json()
    op_id = document["paths"]["/api/models/{name}"]["get"]["operationId"]
    operation = page.locator(f"#op-{op_id}")
    operation.locator("summary").click()
    operation.locator("input[name='path:name']").fill(MODEL)
    operation.locator("button", has_text="Send").click()

    expect(operation.locator("pre.answer")).to_contain_text("200", timeout=15_000)
    assert '"champion"' in operation.locator("pre.answer").inner_text()
    page.close()


def test_a_deployment_is_ended_from_its_page_with_the_tabs_token(browser, served):
    from playwright.sync_api import expect

    url, token = served
    auth = {"Authorization": f"Bearer {token}"}
    # a second version to deploy beside the champion: a training run that registers it
    params = {"seed": 7, "tolerance": 1, "promote": "challenger"}
    assert run_to_end(url, auth, "training", params) == "success"
    challenger = httpx.get(f"{url}/api/models/{MODEL}").json()["aliases"]["challenger"]
    body = {"strategy": "ab", "challenger": str(challenger), "shares": [50, 50], "stop": False}
    started = httpx.put(f"{url}/api/services/inference/deployment", json=body, headers=auth)
    assert started.status_code == 201, started.text
    page = browser.new_page()
    page.goto(f"{url}/ui/deployments")
    keep_token(page, token)

    page.locator("button", has_text="End it").click()

    expect(page.locator("#notice")).to_contain_text("ended:", timeout=15_000)
    now = httpx.get(f"{url}/api/services/inference/deployment").json()
    assert now["state"] == "ended"
    page.close()


def test_the_html_report_opens_offline_with_nothing_to_fetch(browser, served, tmp_path):
    url, token = served
    auth = {"Authorization": f"Bearer {token}"}
    assert run_to_end(url, auth, "monitoring") == "success"
    report = tmp_path / "report.html"
    report.write_bytes(httpx.get(f"{url}/ui/monitoring/report.html").content)
    page = browser.new_page()
    asked: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(report.as_uri())
    page.wait_for_load_state("networkidle")

    assert asked == [report.as_uri()]  # the file itself, nothing else
    assert errors == []
    assert "Monitoring report" in page.locator("h1").inner_text()
    assert visible_colours(page.screenshot(full_page=True)) > 20
    page.close()
