"""Why the serving layer could not answer: library errors the HTTP server maps to statuses.

Each derives from the nearest `litemlops.errors` class, so a caller that catches
`NotFoundError` or `ValidationError` still catches these. An error raised once a
model was chosen names it (`model`, `version`), so an edge can say which one failed.
"""

from __future__ import annotations

from typing import Any

from litemlops.errors import LitemlopsError, NotFoundError, ValidationError


class ServingError(LitemlopsError):
    """Base of the serving layer's errors; `model` and `version` once one was chosen."""

    model: str | None = None
    version: int | None = None

    def chosen(self, model: str | None, version: int | None) -> ServingError:
        self.model, self.version = model, version
        return self


class ServiceNotReadyError(ServingError, RuntimeError):
    """The service cannot answer yet (its features are not in the store)."""


class InvalidRequestError(ServingError, ValidationError):
    """The request cannot be served as sent (repeated ids, rows lacking features...)."""


class ModelUnavailableError(ServingError, NotFoundError):
    """No model to serve for the URI asked for."""


class ServedModelUnavailableError(ModelUnavailableError):
    """The service's own model cannot be loaded: the service is down, not the request wrong."""


class InvalidModelError(ServingError, ValidationError):
    """The URI does not parse, or what it names cannot be served (no signature...)."""


class UnknownEntitiesError(ServingError, NotFoundError):
    """Entities with no current features: unknown, or older than their view's ttl."""

    def __init__(self, message: str, entities: list[Any]):
        super().__init__(message)
        self.entities = entities


class FeaturesMismatchError(ServingError, RuntimeError):
    """The model needs inputs its recorded features do not provide (a broken deployment)."""


class DeploymentNotFoundError(ServingError, NotFoundError):
    """No deployment by that id or name, or no active one on the service."""


class DeploymentConflictError(ServingError, RuntimeError):
    """The deployment cannot start or change now: its service has another active one,
    its name is taken, or it has ended."""


class InvalidDeploymentError(ServingError, ValidationError):
    """A deployment asked for what cannot be served: unknown versions, a challenger
    whose inputs the service's features do not give, another model's versions."""
