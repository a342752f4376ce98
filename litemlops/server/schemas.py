"""What the HTTP API takes and answers, declared once: the handlers validate bodies with
these models and build answers of these types, and `/openapi.json` is made from them.

Answers the handlers build per request are `TypedDict`s: plain dicts at run time (no
model to construct on the hot path), typed for mypy, and described by pydantic for
the document. Answers that are library dataclasses turned into JSON are described
from those dataclasses (`_like`), so the document follows them.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import fields
from types import GenericAlias
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)

# pydantic takes only typing_extensions' TypedDict on Python < 3.12.
from typing_extensions import TypedDict

from litemlops.scheduler.runner import PipelineRun, TaskRun
from litemlops.store.tracking.registry import ModelVersion, RegisteredModel
from litemlops.store.tracking.tracking_types import RunInfo

INT64 = (-(2**63), 2**63 - 1)
INT64_MAX = INT64[1]

# -- request bodies ---------------------------------------------------------------------------

# Strict: "0.5" and true are not numbers (an int still is).
FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _integral(value: Any) -> Any:
    """1001.0 as 1001: JSON Schema's "integer" is any number without a fraction, and
    the OpenAPI document promises that; "1001" and true stay refused (strict)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def integer(ge: int, le: int) -> Any:
    """An integer in [ge, le] as JSON Schema means one: 1001 or 1001.0, not "1001" nor
    true."""
    return Annotated[
        int,
        BeforeValidator(_integral),
        Field(strict=True, ge=ge, le=le),
        # pydantic would write the bounds as "ge"/"le" past the validator: say it plainly.
        WithJsonSchema({"type": "integer", "minimum": ge, "maximum": le}),
    ]


Int64: Any = integer(*INT64)
RequestId = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


def _integral_items(values: Any) -> Any:
    """`_integral` for a list, in one call: the hot path's ids are checked in Rust, and
    a Python call per id would cost more than the rest of their validation."""
    if isinstance(values, list) and float in map(type, values):
        return [_integral(v) for v in values]
    return values


def inference_body(entity: str, key_type: type, max_items: int) -> type[BaseModel]:
    item: Any = (
        Annotated[int, Field(strict=True, ge=INT64[0], le=INT64[1])]
        if key_type is int
        else RequestId  # a key's text: 1 to 200 characters
    )
    ids = Field(min_length=1, max_length=max_items, json_schema_extra={"uniqueItems": True})
    fields: dict[str, Any] = {
        "request_id": (RequestId, ...),
        f"{entity}s": (Annotated[list[item], BeforeValidator(_integral_items), ids], ...),
    }
    return create_model("InferenceRequest", __config__=ConfigDict(extra="forbid"), **fields)


class PredictBody(BaseModel):
    """Entity rows (features looked up online) or feature rows: one of them, not both."""

    model_config = ConfigDict(
        extra="forbid",
        # What `predict` checks, so the document says it: exactly one of the two is sent.
        json_schema_extra={
            "oneOf": [
                {"required": ["entities"], "properties": {"entities": {"type": "array"}}},
                {"required": ["features"], "properties": {"features": {"type": "array"}}},
            ]
        },
    )
    request_id: RequestId | None = None
    entities: list[dict[str, Int64 | str]] | None = None
    features: list[dict[str, FiniteNumber]] | None = None


def predict_body(
    max_items: int, keys: dict[str, str] | None = None, inputs: Sequence[str] = ()
) -> type[PredictBody]:
    """`PredictBody` with this server's bound on rows, so the document shows it.

    keys: the join keys (name -> dtype) every feature view of the home shares; an
    entity row then has exactly those, typed. None (views keyed differently, or none
    yet): a row maps key names to integers or text, and the model's views decide.
    inputs: the service's feature names, which the document says a feature row has
    (the served model's inputs; another model checks its own when asked).
    """
    rows = Field(min_length=1, max_length=max_items)
    feature_row: Any = dict[str, FiniteNumber]
    if inputs:
        shown = {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "required": list(inputs),
            "description": "Feature name -> value; the served model needs these; another "
            "model named in the path needs its own inputs",
        }
        feature_row = Annotated[dict[str, FiniteNumber], WithJsonSchema(shown)]
    row: Any = dict[str, Int64 | str]
    if keys:
        typed: dict[str, Any] = {
            k: (Int64 if d in ("int32", "int64") else RequestId, ...) for k, d in keys.items()
        }
        row = create_model("EntityRow", __config__=ConfigDict(extra="forbid"), **typed)
    return create_model(
        "PredictRequest",
        __base__=PredictBody,
        entities=(Annotated[list[row], rows] | None, None),
        features=(Annotated[list[feature_row], rows] | None, None),
    )


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(strict=True, min_length=1, max_length=200)]
    label: FiniteNumber


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]] = Field(min_length=1)
    to: Literal["online", "offline", "both"] = "online"


def push_body(max_items: int) -> type[PushBody]:
    """`PushBody` with this server's bound on rows, so the document shows it."""
    rows = Field(min_length=1, max_length=max_items)
    return create_model(
        "PushRequest", __base__=PushBody, rows=(Annotated[list[dict[str, Any]], rows], ...)
    )


Reason = Annotated[str, Field(strict=True, max_length=1000)]


class SetAliasBody(BaseModel):
    """Where the alias should point; the reason is kept in the alias history."""

    model_config = ConfigDict(extra="forbid")
    version: integer(1, INT64_MAX)  # type: ignore[valid-type]
    reason: Reason = ""


class RollbackBody(BaseModel):
    """Why the alias goes back (kept in the alias history); the body may be left out."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason = ""


Version = int | Annotated[str, Field(min_length=1, max_length=300)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class DeploymentBody(BaseModel):
    """A deployment to start (`litemlops.serving.deployment_spec`: which keys each
    strategy takes; percentages 0-100). Challengers are versions of the service's model:
    5, "name/5" or "name@alias"."""

    model_config = ConfigDict(extra="forbid")
    strategy: Literal["canary", "shadow", "ab", "bandit"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")] | None = None
    challenger: Version | None = None
    challengers: Annotated[list[Version], Field(min_length=1, max_length=16)] | None = None
    steps: Annotated[list[Percent], Field(min_length=1, max_length=100)] | None = None
    interval_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    checks: dict[str, Annotated[float, Field(allow_inf_nan=False)]] | None = None
    sample: Percent | None = None
    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    shares: Annotated[list[Percent], Field(min_length=2, max_length=17)] | None = None
    min_samples: Annotated[int, Field(ge=1)] | None = None
    alpha: Annotated[float, Field(gt=0, lt=1)] | None = None
    stop: bool | None = None
    promote: bool | None = None
    algorithm: Literal["thompson", "epsilon_greedy"] | None = None
    epsilon: Percent | None = None
    min_share: Percent | None = None
    sticky: Literal["request", "entities"] | None = None


class PromoteBody(BaseModel):
    """Which challenger arm to promote ("v5"; by default the only or best one) and why;
    the body may be left out."""

    model_config = ConfigDict(extra="forbid")
    arm: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    reason: Reason = ""


#: The longest a trigger may wait for its run to end.
MAX_TRIGGER_WAIT_SECONDS = 600


class TriggerBody(BaseModel):
    """Params over the pipeline's defaults; the body may be left out."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)
    wait: float = Field(
        0,
        ge=0,
        le=MAX_TRIGGER_WAIT_SECONDS,
        allow_inf_nan=False,
        strict=True,
        description="Seconds to wait for the run to end before answering (0: answer once "
        "it is admitted); the answer's state says whether it ended",
    )


# -- answers ----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs: e.g. not_found, invalid_request")
    message: str = Field(description="For people: what was wrong and what to do")


class ErrorBody(BaseModel):
    """Every answer other than success."""

    error: ErrorDetail


def _like(source: type, name: str, *, drop: tuple[str, ...] = (), **extra: Any) -> type[BaseModel]:
    """A response model with a dataclass's fields (less `drop`) and `extra` ones, so the
    document follows the dataclass the endpoint turns into JSON."""
    hints = typing.get_type_hints(source)
    kept: dict[str, Any] = {f.name: (hints[f.name], ...) for f in fields(source)}
    for key in drop:
        kept.pop(key)
    return create_model(name, __doc__=source.__doc__, **kept, **extra)


def many(model: type[BaseModel]) -> Any:
    """`list[model]` for a model made at run time (type checkers see only a variable)."""
    return GenericAlias(list, (model,))


class InferenceAnswer(TypedDict):
    request_id: str
    prediction: Annotated[int | str, Field(description="The best-scored candidate")]
    scores: Annotated[dict[str, float], Field(description="Every candidate's score, by its key")]
    model: str | None
    version: int | None


class PredictAnswer(TypedDict):
    model: str | None
    version: int | None
    predictions: list[float]


class FeedbackAnswer(TypedDict):
    accepted: bool
    request_id: str


class HealthAnswer(TypedDict):
    status: Literal["ok"]


class ReadyAnswer(TypedDict):
    ready: bool
    model: str | None
    version: int | None


class AliasState(TypedDict):
    """Where the alias points and which version the server answers `name@alias` with."""

    name: str
    alias: str
    version: Annotated[
        int | None, Field(description="The version the alias names (null: deleted)")
    ]
    served_version: Annotated[
        int | None,
        Field(
            description="What the server answers with now; null until it first serves "
            "name@alias"
        ),
    ]
    warning: NotRequired[
        Annotated[str | None, Field(None, description="Set when the two differ after a change")]
    ]


VersionSummary = _like(ModelVersion, "VersionSummary", drop=("lineage",), uri=(str, ...))
ModelDetail = _like(RegisteredModel, "ModelDetail", versions=(many(VersionSummary), ...))
VersionDetail = _like(ModelVersion, "VersionDetail", uri=(str, ...))


class ArtifactInfo(BaseModel):
    path: str
    sha256: str
    size: int


class LoggedModel(BaseModel):
    name: str
    sha256: str
    uri: str


RunDetail = _like(
    RunInfo,
    "RunDetail",
    artifacts=(list[ArtifactInfo], ...),
    models=(list[LoggedModel], ...),
    inputs=(list[dict[str, Any]], ...),
)


class TaskInfo(BaseModel):
    name: str
    upstream: list[str]
    retries: int
    timeout: float | None


class PipelineInfo(BaseModel):
    name: str
    description: str
    tasks: list[TaskInfo] = Field(description="In run order")
    params: dict[str, Any] = Field(description="Defaults; a trigger may override them")
    path_params: list[str] = Field(
        description="Params naming files: inside the home or [pipelines] allowed_dirs only"
    )
    schedule: str | float | None = Field(description="A cron line (UTC) or seconds; null: none")
    on: list[str] = Field(description="Event topics that start a run")
    max_active_runs: int
    on_busy: str


Seconds = (float | None, Field(description="Seconds from start to end; null until it ended"))
PipelineRunSummary = _like(PipelineRun, "PipelineRunSummary", duration=Seconds)
TaskAttempt = _like(TaskRun, "TaskAttempt", drop=("traceback",), duration=Seconds)
PipelineRunDetail = _like(
    PipelineRun, "PipelineRunDetail", duration=Seconds, tasks=(many(TaskAttempt), ...)
)


class ResumeBody(BaseModel):
    """Nothing to send: a resumed run keeps the params it started with. The body may be
    left out; when sent, it is JSON like every other body."""

    model_config = ConfigDict(extra="forbid")


class ResumeAnswer(TypedDict):
    accepted: bool
    pipeline: str
    run_id: str
    state: Annotated[str, Field(description="The run's state when answered")]


class TriggerAnswer(TypedDict):
    accepted: bool
    pipeline: str
    run_id: Annotated[str | None, Field(description="Null when the run was not recorded in time")]
    state: Annotated[str | None, Field(description="The run's state when answered")]
    request_id: Annotated[
        str,
        Field(
            description="Put in the run's payload as request_id: finds the run when run_id "
            "is null"
        ),
    ]


class FeatureViewInfo(BaseModel):
    """A feature view's definition, sizes and freshness."""

    model_config = ConfigDict(extra="allow")
    name: str
    version: int
    generation: int
    entities: list[str]
    join_keys: dict[str, str]
    features: dict[str, str]
    ttl_seconds: float | None
    timestamp_field: str
    created_timestamp_field: str | None
    online: bool
    description: str
    tags: dict[str, str]
    owner: str
    offline_rows: int
    event_time_min: str | None
    event_time_max: str | None
    batches: int
    last_write: str | None
    materialized_until: str | None
    materialized_at: str | None
    online_entities: int
    online_newest_event: str | None
    online_oldest_event: str | None
    online_staleness_seconds: float | None
    null_rates: dict[str, float | None] = Field(
        description="Share of the history's rows without a value, per feature (null: no rows)"
    )
