"""A prediction service: look features up, score, choose, and log `prediction_served`.

`/inference` (the best of N candidate entities) and `/predict` (scores of given
entity or feature rows) are one call each here; the HTTP server only parses and
renders, and maps the errors of `litemlops.serving.errors` to statuses. Which
model answers a request is decided in one place: the service's own model
(`Service.choose_model`), or the arm a live deployment's router chooses
(`litemlops.serving.deployments`: canary, shadow, A/B, bandit).

Batch scoring (`score_frame`) uses the model's own method on a whole frame.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.errors import LitemlopsError, NotFoundError, ValidationError
from litemlops.logger import get_logger
from litemlops.serving.errors import (
    FeaturesMismatchError,
    InvalidModelError,
    InvalidRequestError,
    ModelUnavailableError,
    ServedModelUnavailableError,
    ServiceNotReadyError,
    UnknownEntitiesError,
)
from litemlops.serving.models import model_uri

if TYPE_CHECKING:
    import pandas as pd

    from litemlops.config import Config
    from litemlops.serving.deployment_live import LiveDeployment
    from litemlops.serving.deployments import Deployments
    from litemlops.serving.models import ModelCache, ServingModel
    from litemlops.store.features.online_features import OnlineFeatures
    from litemlops.store.tracking.model_io import LoadedModel

log = get_logger("litemlops.serving")


@dataclass(frozen=True)
class ServiceSpec:
    """What a service runs: score candidate `entity` ids with `model` on `features`.

    model: a model URI (`name` means `name@champion`); features: feature references
    ("view:feature") giving the model's inputs, keyed by `entity`.
    """

    name: str
    model: str
    entity: str
    features: list[str]

    @classmethod
    def from_config(cls, config: Config, name: str = "inference") -> ServiceSpec:
        """The service `[server]` names (model, entity, features)."""
        server = config.server
        return cls(name, server.model, server.entity, server.feature_refs())


@dataclass(frozen=True, slots=True)
class Choice:
    """The best of the candidates, and every candidate's score (keyed by its id's text)."""

    request_id: str
    prediction: Any
    scores: dict[str, float]
    model: str | None
    version: int | None


@dataclass(frozen=True, slots=True)
class Predictions:
    """One score per row sent, in their order."""

    model: str | None
    version: int | None
    predictions: list[float]


class Service:
    """A `ServiceSpec` served from a feature store's online tables and a model cache."""

    def __init__(
        self,
        spec: ServiceSpec,
        store: OnlineFeatures,
        models: ModelCache,
        deployments: Deployments | None = None,
    ):
        self.spec = spec
        self.store = store
        self.models = models
        #: The deployments that route this service's requests, when any may.
        self.deployments = deployments

    def key_type(self) -> type:
        """The type of the entity's key (int or str); `ServiceNotReadyError` while the
        store lacks the service's features or keys them otherwise."""
        spec = self.spec
        try:
            keys = self.store.join_keys(spec.features)
            if spec.entity not in keys:
                raise ValidationError(
                    f"features {spec.features} are keyed by {sorted(keys)}, not {spec.entity!r}"
                )
        except LitemlopsError as exc:
            raise ServiceNotReadyError(
                f"service {spec.name!r} cannot run: {exc.args[0]}"
            ) from None
        return int if keys[spec.entity] in ("int32", "int64") else str

    def choose_model(self, request_id: str, ids: Sequence[Any]) -> ServingModel:
        """The model that answers a request no deployment routes: the service's own."""
        return self.model(self.spec.model)

    def model(self, uri: str) -> ServingModel:
        """The loaded model `uri` names now."""
        try:
            return self.models.get(uri)
        except NotFoundError as exc:
            asked = model_uri(uri)  # it parsed, or the error would not be NotFoundError
            served = asked == model_uri(self.spec.model)
            error = ServedModelUnavailableError if served else ModelUnavailableError
            raise error(f"no model to serve for {str(asked)!r}: {exc.args[0]}") from None
        except ValidationError as exc:
            raise InvalidModelError(str(exc)) from None

    def infer(self, request_id: str, ids: Sequence[Any], *, started: float | None = None) -> Choice:
        """Score the candidate ids on their online features; the best one wins.

        started: when the request arrived (`time.perf_counter()`), so the event's
        latency counts what happened before this call too. Under a deployment, its
        router chooses the arm that answers; an arm that raises is counted against it
        and the champion answers instead.
        """
        start = time.perf_counter() if started is None else started
        spec = self.spec
        if len(set(ids)) != len(ids):
            seen: set[Any] = set()
            repeated = sorted({i for i in ids if i in seen or seen.add(i)}, key=str)  # type: ignore[func-returns-value]
            raise InvalidRequestError(f"{spec.entity}s repeats {repeated}")
        live = self.deployments.routing(spec.name) if self.deployments is not None else None
        if live is not None:
            return self._routed(live, request_id, ids, start)
        model = self.choose_model(request_id, ids)
        scores, rows, _ = self._score(model, ids)
        best = ids[max(range(len(ids)), key=scores.__getitem__)]
        self._served(model, request_id, ids, rows, scores, best, start, {})
        by_id = {str(i): s for i, s in zip(ids, scores, strict=True)}
        return Choice(request_id, best, by_id, model.name, model.version)

    def _routed(
        self, live: LiveDeployment, request_id: str, ids: Sequence[Any], start: float
    ) -> Choice:
        arm = live.choose(request_id, ids)
        extra: dict[str, Any] = {"deployment": live.name}
        answered = start
        if arm:
            try:
                model = self.model(live.arms[arm].uri)
                scores, rows, columns = self._score(model, ids)
            except (InvalidRequestError, UnknownEntitiesError):
                raise  # the request's fault, whichever arm answered
            except Exception as exc:
                live.failed(arm, (time.perf_counter() - start) * 1e3)
                extra["fallback"] = {
                    "arm": live.arms[arm].name, "error": f"{type(exc).__name__}: {exc}"
                }
                arm, answered = 0, time.perf_counter()
        if not arm:
            model = self.model(live.arms[0].uri)
            scores, rows, columns = self._score(model, ids)
        top = max(range(len(ids)), key=scores.__getitem__)
        best = ids[top]
        latency = (time.perf_counter() - answered) * 1e3
        live.served(arm, request_id, latency, scores[top])
        extra["arm"] = live.arms[arm].name
        self._served(model, request_id, ids, rows, scores, best, start, extra)
        if live.strategy == "shadow":
            shadow = self.deployments.shadow(self.spec.name) if self.deployments else None
            if shadow is not None and live.sampled(request_id):
                shadow.offer(request_id, ids, columns, scores, best)
        by_id = {str(i): s for i, s in zip(ids, scores, strict=True)}
        return Choice(request_id, best, by_id, model.name, model.version)

    def _score(
        self, model: ServingModel, ids: Sequence[Any]
    ) -> tuple[list[float], Sequence[Sequence[Any]], dict[str, list[Any]]]:
        """The model's scores of the candidates, their feature rows and the columns."""
        entity = self.spec.entity
        columns = self._lookup(model, self.spec.features, [{entity: i} for i in ids])
        rows, incomplete = self._rows(model, self.spec.features, columns)
        if incomplete:
            unknown = [ids[i] for i in incomplete]
            raise UnknownEntitiesError(
                f"no current features for {entity} {unknown}: unknown, or their "
                "features are older than the view's ttl",
                unknown,
            ).chosen(model.name, model.version)
        return model.score_list(rows), rows, columns

    def _served(
        self,
        model: ServingModel,
        request_id: str,
        ids: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        scores: list[float],
        best: Any,
        start: float,
        extra: dict[str, Any],
    ) -> None:
        log.info(
            events.PREDICTION_SERVED,
            request_id=request_id,
            service=self.spec.name,
            model=model.name,
            version=model.version,
            entities=ids,
            # The same shape as /predict's (lists in the order of `entities`), so the
            # monitoring reader parses the log's features with one type, in one pass.
            features=model.feature_dicts(rows),
            scores=scores,
            output=best,
            latency_ms=round((time.perf_counter() - start) * 1e3, 3),
            **extra,
        )

    def predict(
        self,
        uri: str,
        *,
        entities: list[dict[str, Any]] | None = None,
        features: list[dict[str, float]] | None = None,
        request_id: str | None = None,
        started: float | None = None,
    ) -> Predictions:
        """Scores of model `uri` for entity rows (features looked up online by the
        references the model was trained on) or for feature rows: one of them."""
        start = time.perf_counter() if started is None else started
        if entities is None and features is None:
            raise InvalidRequestError(
                "send 'entities' (rows of entity keys, features looked up online) or "
                "'features' (rows of feature values)"
            )
        if entities is not None and features is not None:
            raise InvalidRequestError("send either 'entities' or 'features', not both")
        model = self.model(uri)
        if entities is not None:
            if not model.feature_refs:
                raise InvalidRequestError(
                    f"model {model.uri} does not record which features it was trained on; "
                    "send 'features' rows instead"
                ).chosen(model.name, model.version)
            rows, incomplete = self._online_rows(model, list(model.feature_refs), entities)
            if incomplete:
                unknown = [entities[i] for i in incomplete]
                raise UnknownEntitiesError(
                    f"no current features for entities {unknown}", unknown
                ).chosen(model.name, model.version)
        else:
            assert features is not None
            inputs = model.inputs
            absent = sorted({n for row in features for n in inputs if n not in row})
            if absent:
                raise InvalidRequestError(
                    f"feature rows lack {absent}; model {model.uri} takes {list(inputs)}"
                ).chosen(model.name, model.version)
            rows = [[row[n] for n in inputs] for row in features]
        predictions = model.score_list(rows)
        log.info(
            events.PREDICTION_SERVED,
            request_id=request_id,
            service="predict",
            model=model.name,
            version=model.version,
            entities=entities or [],
            features=model.feature_dicts(rows),
            scores=predictions,
            output=predictions,
            latency_ms=round((time.perf_counter() - start) * 1e3, 3),
        )
        return Predictions(model.name, model.version, predictions)

    def _online_rows(
        self, model: ServingModel, refs: list[str], entity_rows: list[dict[str, Any]]
    ) -> tuple[Sequence[Sequence[Any]], list[int]]:
        """Feature rows in the model's input order; indexes of rows lacking a value."""
        return self._rows(model, refs, self._lookup(model, refs, entity_rows))

    def _lookup(
        self, model: ServingModel, refs: list[str], entity_rows: list[dict[str, Any]]
    ) -> dict[str, list[Any]]:
        try:
            return self.store.get_online_features(refs, entity_rows)
        except LitemlopsError as exc:
            raise InvalidRequestError(str(exc)).chosen(model.name, model.version) from None

    @staticmethod
    def _rows(
        model: ServingModel, refs: list[str], columns: dict[str, list[Any]]
    ) -> tuple[Sequence[Sequence[Any]], list[int]]:
        names = [ref.split(":", 1)[1] for ref in refs]
        missing = [n for n in model.inputs if n not in names]
        if missing:
            raise FeaturesMismatchError(
                f"model {model.uri} needs {missing}, which features {refs} do not provide"
            ).chosen(model.name, model.version)
        rows = list(zip(*[columns[n] for n in model.inputs], strict=True))
        incomplete = [i for i, row in enumerate(rows) if None in row]
        return rows, incomplete


def score_frame(model: LoadedModel, frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Batch scores of `frame`'s rows through the loaded model (its signature checked;
    the positive class's probability for classifiers, else the prediction), as float64;
    NaN for a row that lacks one of `columns` (its features were unknown at its time)."""
    import pandas as pd

    from litemlops.modeling import scores

    complete = frame[columns].notna().all(axis=1)
    out = pd.Series(float("nan"), index=frame.index, dtype="float64")
    if complete.any():
        out[complete] = scores(model, frame.loc[complete, columns].astype("float64"))
    return out
