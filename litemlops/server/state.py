"""What an app serving a home holds while its lifespan runs, and who may change things.

The lifespan builds one `ServerState` (`build_state`) and puts it on the app's
state; handlers reach it with `state_of(request)`, never through a module global.
`require_token` is the admin check of the endpoints that change state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request

from litemlops.config import Config
from litemlops.errors import LitemlopsError
from litemlops.server.http import ApiError, read_json
from litemlops.server.metrics import ServerMetrics
from litemlops.server.schemas import (
    PredictBody,
    PushBody,
    inference_body,
    predict_body,
    push_body,
)
from litemlops.server.security import ALT_HEADER, HEADER, admin_token, token_matches
from litemlops.serving.deployments import Deployments
from litemlops.serving.errors import ServiceNotReadyError
from litemlops.serving.models import ModelCache, prepare_model
from litemlops.serving.service import Service, ServiceSpec
from litemlops.serving.shadow import shadow_worker

if TYPE_CHECKING:
    from litemlops.platform import Platform

#: How long loading a model version in a worker process may take.
MODEL_LOAD_TIMEOUT = 300.0


@dataclass
class ServerState:
    platform: Platform
    token: str
    service: Service
    models: ModelCache
    #: The deployments that route the service's requests (canary, shadow, A/B, bandit).
    deployments: Deployments
    metrics: ServerMetrics
    max_body_bytes: int
    max_items: int
    #: Seconds a client may take to send a request body (408 after).
    body_timeout: float
    inference_body: type[BaseModel] = field(init=False)
    #: The inference body's field of candidate ids (`<entity>s`).
    ids_field: str = field(init=False)
    predict_body: type[PredictBody] = field(init=False)
    push_body: type[PushBody] = field(init=False)
    #: Why the service cannot answer (its features are missing), None when it can.
    service_error: str | None = field(init=False, default=None)

    @property
    def config(self) -> Config:
        return self.platform.config

    async def read_body(self, request: Request) -> Any:
        """The request's JSON body, within this server's size and time limits."""
        return await read_json(request, self.max_body_bytes, self.body_timeout)


def state_of(request: Request) -> ServerState:
    """The state the app's lifespan put on it."""
    return request.app.state.litemlops


def require_token(request: Request) -> None:
    """401 unless the request carries the admin token."""
    state = state_of(request)
    presented = request.headers.get(HEADER) or request.headers.get(ALT_HEADER)
    if not token_matches(presented, state.token):
        # RFC 6750: a 401 names the scheme, and says when a token was sent but is wrong.
        challenge = 'Bearer realm="litemlops"' + (', error="invalid_token"' if presented else "")
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint changes state: send the admin token as 'Authorization: Bearer "
            "<token>' (it is in <home>/token)",
            {"WWW-Authenticate": challenge},
        )


def _shared_keys(platform: Platform) -> dict[str, str] | None:
    """The join keys every feature view of the home has, if they all have the same."""
    store = platform.features
    found: set[tuple[tuple[str, str], ...]] = set()
    try:
        for view in store.list_feature_views():
            times = (view.timestamp_field, view.created_timestamp_field)
            feature = next((f.name for f in view.schema if f.name not in times), None)
            if feature is not None:
                found.add(tuple(sorted(store.join_keys([f"{view.name}:{feature}"]).items())))
    except LitemlopsError:
        return None
    return dict(found.pop()) if len(found) == 1 else None


def build_state(
    platform: Platform, spec: ServiceSpec | None, metrics: ServerMetrics
) -> ServerState:
    """The state of an app serving `platform`: its service (`[server]` in config unless
    `spec`), model cache, token, limits and the bodies typed by its config."""
    config = platform.config
    server = config.server
    token, _ = admin_token(config)
    if spec is None:
        spec = ServiceSpec.from_config(config)
    models = ModelCache(
        platform.registry,
        refresh_seconds=server.alias_refresh_seconds,
        # Loaded in a worker, so this process needs no scikit-learn for a model
        # that scores with numpy (most of a serving process's memory otherwise).
        prepare=(
            functools.partial(
                platform.workers.call, prepare_model, config, name="model-load",
                timeout=MODEL_LOAD_TIMEOUT,
            )
            if platform.workers is not None
            else None
        ),
    )
    deployments = Deployments(
        platform.tracker.db,
        platform.registry,
        models,
        [spec],
        serving=True,
        clock=platform.clock,
        on_rollback=rollback_alert(platform),
        # A shadow challenger scores in a worker process at the lowest CPU priority:
        # neither its scoring nor its events take this process's interpreter.
        shadow_worker=(
            functools.partial(
                platform.workers.start, shadow_worker, config.registry_path,
                config.artifacts_dir, name="shadow",
            )
            if platform.workers is not None
            else None
        ),
    )
    deployments.start_configured(config.deployments)
    state = ServerState(
        platform=platform,
        token=token,
        service=Service(spec, platform.features, models, deployments),
        models=models,
        deployments=deployments,
        metrics=metrics,
        max_body_bytes=server.max_body_bytes,
        body_timeout=server.body_timeout_seconds,
        max_items=server.max_items,
    )
    inputs = [ref.split(":", 1)[1] for ref in spec.features]
    state.predict_body = predict_body(state.max_items, _shared_keys(platform), inputs)
    state.push_body = push_body(state.max_items)
    resolve_service(state)
    return state


ROLLBACK_METRIC = "deployment.rolled_back"


def rollback_alert(platform: Platform) -> Callable[[dict[str, Any]], None]:
    """What a rollback calls: the alert rules on `deployment.rolled_back` see 1 (they
    fire, notify, and may start a pipeline through the bus), then 0 (they resolve)."""

    def alert(info: dict[str, Any]) -> None:
        from litemlops.monitoring.alerts import AlertManager
        from litemlops.monitoring.notify import BusNotifier, LogNotifier

        rules = [r for r in platform.config.alerts if r.metric == ROLLBACK_METRIC]
        if not rules:
            return
        manager = AlertManager(
            platform.tracker.db,
            rules,
            clock=platform.clock,
            notifiers={"log": LogNotifier(), "bus": BusNotifier(platform.bus)},
        )
        manager.evaluate({ROLLBACK_METRIC: 1.0})
        manager.evaluate({ROLLBACK_METRIC: 0.0})

    return alert


def start_configured_deployments(platform: Platform, spec: ServiceSpec | None = None) -> None:
    """Start the config's `[deployments.<name>]` that never ran, before serving: a bad
    one is a `ConfigError` `run` reports before it listens, not a failed start-up."""
    if not platform.config.deployments:
        return
    models = ModelCache(platform.registry)
    try:
        Deployments(
            platform.tracker.db,
            platform.registry,
            models,
            [spec or ServiceSpec.from_config(platform.config)],
            clock=platform.clock,
        ).start_configured(platform.config.deployments)
    finally:
        models.close()


def resolve_service(state: ServerState) -> None:
    """Type the service's request body by its entity key; on a home that lacks its
    features yet, remember why, so /ready and /inference answer 503 saying so."""
    key_type: type = int
    try:
        key_type = state.service.key_type()
        state.service_error = None
    except ServiceNotReadyError as exc:
        state.service_error = str(exc)
    entity = state.service.spec.entity
    state.inference_body = inference_body(entity, key_type, state.max_items)
    state.ids_field = f"{entity}s"
