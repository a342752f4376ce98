"""The Starlette app: online predictions from the in-process stores, push, feedback,
health, readiness, metrics, and the admin API.

`create_app(platform)` serves an already open platform (the main job, tests);
`create_app(config=...)` opens the home in the app's lifespan and closes it after,
so an embedding application can mount the app and let it manage its own state.
Starlette runs the lifespan of the top application only, so a mounted app runs its
own from its first request (see `LitemlopsApp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from litemlops import events
from litemlops.config import Config
from litemlops.errors import LitemlopsError
from litemlops.logger import get_logger, home_log
from litemlops.server.admin import admin_routes
from litemlops.server.dashboard.routes import dashboard_routes
from litemlops.server.deployments import deployment_routes
from litemlops.server.errors import HANDLED, handle_error
from litemlops.server.http import error_response
from litemlops.server.ingest import ingest_routes
from litemlops.server.metrics import MetricsMiddleware, ServerMetrics
from litemlops.server.mlflow import mlflow_routes
from litemlops.server.openapi import openapi_route
from litemlops.server.predictions import prediction_routes
from litemlops.server.probes import probe_routes
from litemlops.server.state import build_state
from litemlops.serving.service import ServiceSpec

if TYPE_CHECKING:
    from litemlops.platform import Platform

log = get_logger("litemlops.server")

#: How long a stopping app waits for pipeline tasks in progress before leaving them.
SHUTDOWN_GRACE_SECONDS = 10.0


#: What `/inference` runs (kept under its old name: `create_app(service=Service(...))`).
Service = ServiceSpec


def _pipeline_counts(holder: dict[str, Platform]) -> Callable[[], Iterable[tuple[str, str, int]]]:
    def counts() -> list[tuple[str, str, int]]:
        platform = holder.get("platform")
        if platform is None:
            return []
        return platform.pipelines.history.counts()

    return counts


def create_app(
    platform: Platform | None = None,
    *,
    config: Config | None = None,
    start_scheduler: bool = True,
    service: Service | None = None,
    freeze_gc: bool = False,
) -> LitemlopsApp:
    """The app serving `platform`, or a platform it opens on `config` in its lifespan.

    start_scheduler: start the home's scheduler with the app (one per home).
    service: what `/inference` runs (default: `[server]` in config).
    freeze_gc: once started, move every object alive to the collector's permanent
    generation (`gc.freeze`); for a process that only serves (`litemlops run` does),
    not for an application that embeds the app, whose objects it would freeze too.
    """
    if (platform is None) == (config is None):
        raise ValueError("create_app takes a platform or a config, not both")
    holder: dict[str, Any] = {}
    # Made now: the middleware needs them before the lifespan opens the platform.
    server_metrics = ServerMetrics(
        _pipeline_counts(holder), _monitoring(holder), _freshness(holder), _arms(holder)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(app, LitemlopsApp):
            if app.serving:
                raise RuntimeError("this litemlops app is already running its lifespan")
            app.serving = True
        try:
            async with _serve(app):
                yield
        finally:
            if isinstance(app, LitemlopsApp):
                app.serving = False

    @contextlib.asynccontextmanager
    async def _serve(app: Starlette) -> AsyncIterator[None]:
        owned = platform is None
        opened = platform
        if opened is None:
            from litemlops.platform import Platform

            assert config is not None
            opened = Platform(config)
        try:
            holder["platform"] = opened
            if isinstance(app, LitemlopsApp):
                app.event_log = os.path.abspath(opened.config.events_log_path)
            state = build_state(opened, service, server_metrics)
            app.state.litemlops = state
            state.deployments.run_in_background()
            server_metrics.traffic.start()
            holder["deployments"] = state.deployments
            if start_scheduler:
                opened.scheduler.start()
            with contextlib.suppress(LitemlopsError):  # /ready says why, until it loads
                state.models.get(state.service.spec.model)  # loaded and warmed before traffic
            if freeze_gc:
                # What exists now (libraries, stores, the model) lives as long as the
                # process: out of the collector's sight, full collections no longer
                # walk it all, which cut the tail latency under load.
                gc.collect()
                gc.freeze()
            yield
        finally:
            idle = True
            app.state.interrupted_runs = []
            if start_scheduler and opened._scheduler is not None:
                # Stop firing, stop runs at their next task, give the current task a
                # grace period: a run writing to closed stores could crash the process.
                opened.scheduler.shutdown(wait=False)
                app.state.interrupted_runs = opened.pipelines.interrupt_running(
                    "interrupted: the server stopped while it ran"
                )
                if opened.workers is not None:
                    opened.workers.stop()  # their runs are closed: stop the work now
                idle = opened.scheduler.wait_idle(SHUTDOWN_GRACE_SECONDS)
            server_metrics.traffic.close()
            holder.pop("platform", None)
            holder.pop("deployments", None)
            state_obj = getattr(app.state, "litemlops", None)
            if state_obj is not None:
                state_obj.deployments.close()
                state_obj.models.close()
            if owned and idle:
                opened.close()
            elif owned:
                log.warning(
                    events.STORES_LEFT_OPEN,
                    reason=f"pipeline runs still inside a task after {SHUTDOWN_GRACE_SECONDS} s",
                )

    routes = [
        *prediction_routes(),
        *mlflow_routes(),  # one route that looks at the path's start, then in a table
        *ingest_routes(),
        *probe_routes(),
        *admin_routes(),
        *deployment_routes(),
        openapi_route(),
        *dashboard_routes(),
    ]
    middleware = [Middleware(MetricsMiddleware, metrics=server_metrics)]
    return LitemlopsApp(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(HANDLED, handle_error),
    )


class LitemlopsApp(Starlette):
    """The litemlops app: a Starlette app that also works mounted in another one.

    Starlette (and FastAPI) run the lifespan of the top application only, so under a
    `Mount` this app's would never open the home. When a request arrives while its
    lifespan is not running, the app runs the lifespan itself, in a task of the
    event loop serving it: the first request waits for the home to open (a failure
    answers 503 and the next request tries again), and the home is closed when that
    loop ends, right after the host's own lifespan (servers cancel what is left on
    their loop when they stop). A host that wants the order in its own hands enters
    `app.router.lifespan_context(app)` in its lifespan instead.
    """

    #: True while the lifespan runs, whoever entered it.
    serving = False
    #: The served home's event file: a request's events belong to it.
    event_log: str | None = None
    #: The self-started lifespan: its event loop, its "started" future, its task.
    _started: tuple[asyncio.AbstractEventLoop, asyncio.Future[None], asyncio.Task[None]] | None = (
        None
    )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and not self.serving:
            try:
                await self._start_itself()
            except Exception as exc:
                log.error(events.REQUEST_FAILED, path=scope.get("path"), error=repr(exc))
                answer = error_response(
                    503, "not_ready", f"litemlops could not start: {type(exc).__name__}: {exc}"
                )
                await answer(scope, receive, send)
                return
        if self.event_log is None:
            await super().__call__(scope, receive, send)
            return
        token = home_log.set(self.event_log)  # another home open in this process
        try:
            await super().__call__(scope, receive, send)
        finally:
            home_log.reset(token)

    async def _start_itself(self) -> None:
        loop = asyncio.get_running_loop()
        started = self._started
        failed = started is not None and started[1].done() and (
            started[1].cancelled() or started[1].exception() is not None
        )
        if started is None or started[0] is not loop or started[2].done() or failed:
            ready: asyncio.Future[None] = loop.create_future()
            task = loop.create_task(self._run_lifespan(ready), name="litemlops-lifespan")
            started = self._started = (loop, ready, task)
        await asyncio.shield(started[1])

    async def _run_lifespan(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self.router.lifespan_context(self):
                ready.set_result(None)
                await asyncio.Event().wait()  # until the loop ends and cancels this
        except BaseException as exc:
            if not ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    ready.cancel()
                else:
                    ready.set_exception(exc)  # the waiting requests answer 503 with it
            elif isinstance(exc, Exception):  # no request to tell: closing failed
                log.error(
                    events.STORES_LEFT_OPEN,
                    reason=f"closing the home failed: {type(exc).__name__}: {exc}",
                    exc_info=exc,
                )
            if not isinstance(exc, Exception):
                raise


def _freshness(holder: dict[str, Platform]) -> Callable[[], Iterable[tuple[str, float]]]:
    def seconds() -> list[tuple[str, float]]:
        platform = holder.get("platform")
        if platform is None:
            return []
        now = platform.clock()
        newest = platform.features.online_event_times()
        return [(view, (now - at).total_seconds()) for view, at in newest.items() if at]

    return seconds


def _arms(holder: dict[str, Any]) -> Callable[[], Iterable[tuple[str, str, dict[str, Any]]]]:
    def arms() -> list[tuple[str, str, dict[str, Any]]]:
        deployments = holder.get("deployments")
        return deployments.arm_figures() if deployments is not None else []

    return arms


def _monitoring(holder: dict[str, Platform]) -> Callable[[], dict[str, Any] | None]:
    def latest() -> dict[str, Any] | None:
        platform = holder.get("platform")
        if platform is None:
            return None
        from litemlops.monitoring.pipeline import latest_report

        return latest_report(platform)

    return latest
