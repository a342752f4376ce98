"""The dashboard's routes: `/` redirects to `/ui`; pages under `/ui`, their files under
`/ui/static`. Pages are HTML laid out by Jinja2 templates (autoescaped) from the data
functions in `pages`; they load no script or style from anywhere but this server, and
say so in their Content-Security-Policy. Changes go through the admin API with the
token the page asks for once and keeps for the tab (a Bearer header, never a cookie).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from litemlops.errors import NotFoundError, ValidationError
from litemlops.server.dashboard import pages
from litemlops.server.state import state_of

if TYPE_CHECKING:
    import jinja2

PACKAGE = "litemlops.server.dashboard"

#: Only this server's own files, no inline script, no framing by another site.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not a blank
    )
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    env.filters["value"] = _value
    return env


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _value(value: Any) -> str:
    """A lineage value as JSON shows it (lists and objects compact), "-" for none."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} s" if value < 60 else f"{value / 60:.1f} min"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page; `root` is where the app is mounted ("" at the top), which every link
    and API call of the page starts with."""
    root = request.scope.get("root_path", "")
    text = environment().get_template(template).render(root=root, **context)
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "not_found.html", 404, title="Not found", page="", message=message)


async def _read(request: Request, read: Any, *args: Any) -> dict[str, Any] | HTMLResponse:
    """`read(state, *args)` on a worker thread; a 404 page when it finds nothing."""
    try:
        found: dict[str, Any] = await run_in_threadpool(read, state_of(request), *args)
    except NotFoundError as exc:
        return not_found(request, exc.args[0])
    return found


async def home(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ui", status_code=307)


async def overview(request: Request) -> Response:
    from litemlops.server.dashboard.svg import line_chart

    data = await run_in_threadpool(pages.overview, state_of(request))
    minutes = [(float(m), float(n)) for m, n in enumerate(data["traffic"]["minutes"])]
    chart = line_chart({"requests a minute": minutes}, "minute", "requests", width=250,
                       height=120) if len(minutes) > 1 else ""  # fmt: skip
    return render(request, "overview.html", title="Overview", page="overview",
                  traffic_chart=chart, **data)  # fmt: skip


async def models(request: Request) -> Response:
    found = await run_in_threadpool(pages.models, state_of(request))
    return render(request, "models.html", title="Models", page="models", models=found)


async def model(request: Request) -> Response:
    from litemlops.server.dashboard.svg import alias_timeline

    name = request.path_params["name"]
    data = await _read(request, pages.model, name)
    if isinstance(data, Response):
        return data
    timeline = alias_timeline(data["moves"], datetime.now(UTC))
    return render(request, "model.html", title=name, page="models", timeline=timeline, **data)


async def compare(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        left, right = (int(request.query_params.get(k, "")) for k in ("left", "right"))
    except ValueError:
        return not_found(request, "compare two versions: ?left=N&right=M, both version numbers")
    data = await _read(request, pages.compare, name, left, right)
    if isinstance(data, Response):
        return data
    title = f"{name}: v{left} / v{right}"
    return render(request, "compare.html", title=title, page="models", **data)


async def experiments(request: Request) -> Response:
    query = request.query_params
    wanted = {k: query.get(k, "") for k in ("filter", "order_by")}
    try:
        data = await run_in_threadpool(
            pages.experiments, state_of(request), wanted["filter"], wanted["order_by"],
            query.get("page_token") or None,
        )  # fmt: skip
    except ValidationError as exc:
        data = {"runs": [], "next_page_token": None, "metric_keys": [],
                "error": str(exc)}  # fmt: skip
    return render(request, "experiments.html", 200 if "error" not in data else 400,
                  title="Experiments", page="experiments", query=wanted, **data)  # fmt: skip


async def metric_charts(request: Request) -> Response:
    from litemlops.server.dashboard.svg import line_chart

    query = request.query_params
    run_ids = [r for r in query.getlist("run") if r]
    if not run_ids:
        return not_found(request, "choose runs to chart: ?run=ID (repeated), and ?metric=KEY")
    data = await _read(request, pages.metric_histories, run_ids, query.getlist("metric") or None)
    if isinstance(data, Response):
        return data
    charts = {key: line_chart(series, "step", key) for key, series in data["charts"].items()}
    return render(request, "charts.html", title="Metrics", page="experiments",
                  runs=data["runs"], charts=charts)  # fmt: skip


async def monitoring(request: Request) -> Response:
    from litemlops.server.dashboard.report import pictures

    data = await run_in_threadpool(pages.monitoring, state_of(request).platform)
    return render(request, "monitoring.html", title="Monitoring", page="monitoring",
                  pictures=pictures(data), **data)  # fmt: skip


async def monitoring_report(request: Request) -> Response:
    """The latest check as one self-contained HTML file, to keep or send."""
    from litemlops.server.dashboard.report import html_report

    data = await run_in_threadpool(pages.monitoring, state_of(request).platform)
    text = html_report(data, datetime.now(UTC))
    name = f"litemlops-monitoring-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return HTMLResponse(text, headers={**HEADERS, **disposition})


async def lineage(request: Request) -> Response:
    request_id = request.query_params.get("request_id", "").strip()
    if not request_id:
        return render(request, "lineage.html", title="Lineage", page="lineage", found=None)
    data = await _read(request, pages.lineage, request_id)
    if isinstance(data, Response):
        return data
    return render(request, "lineage.html", title=f"Request {request_id}", page="lineage",
                  found=data)  # fmt: skip


async def docs(request: Request) -> Response:
    from litemlops.server.openapi import document_of

    document = await run_in_threadpool(document_of, request)
    return render(request, "docs.html", title="API", page="docs",
                  info=document["info"], operations=pages.operations(document))  # fmt: skip


async def deployments(request: Request) -> Response:
    which = request.path_params.get("deployment")
    data = await _read(request, pages.deployments, which)
    if isinstance(data, Response):
        return data
    return render(request, "deployments.html", title="Deployments", page="deployments", **data)


async def features(request: Request) -> Response:
    views = await run_in_threadpool(pages.features, state_of(request))
    return render(request, "features.html", title="Features", page="features", views=views)


async def pipelines(request: Request) -> Response:
    chosen = request.query_params.get("pipeline") or None
    data = await _read(request, pages.pipelines, chosen)
    if isinstance(data, Response):
        return data
    return render(request, "pipelines.html", title="Pipelines", page="pipelines", **data)


async def pipeline_run(request: Request) -> Response:
    from litemlops.server.dashboard.svg import task_strip

    run_id = request.path_params["run_id"]
    data = await _read(request, pages.pipeline_run, run_id)
    if isinstance(data, Response):
        return data
    strip = task_strip(data["attempts"], datetime.now(UTC))
    title = f"{data['pipeline']} run {run_id[:12]}"
    return render(request, "run.html", title=title, page="pipelines", strip=strip, **data)


def _page(path: str, endpoint: Any) -> Route:
    return Route(path, endpoint, methods=["GET"], include_in_schema=False)


def dashboard_routes() -> list[BaseRoute]:
    return [
        _page("/", home),
        _page("/ui", overview),
        _page("/ui/models", models),
        _page("/ui/models/{name}", model),
        _page("/ui/models/{name}/compare", compare),
        _page("/ui/pipelines", pipelines),
        _page("/ui/features", features),
        _page("/ui/monitoring", monitoring),
        _page("/ui/monitoring/report.html", monitoring_report),
        _page("/ui/lineage", lineage),
        _page("/ui/deployments", deployments),
        _page("/ui/deployments/{deployment}", deployments),
        _page("/docs", docs),
        _page("/ui/experiments", experiments),
        _page("/ui/experiments/charts", metric_charts),
        _page("/ui/pipelines/runs/{run_id}", pipeline_run),
        Mount("/ui/static", StaticFiles(packages=[(PACKAGE, "static")]), name="static"),
    ]
