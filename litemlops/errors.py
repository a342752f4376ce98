"""Every error litemlops raises derives from `LitemlopsError` and from the natural builtin.

This module imports nothing else from the package, so any module may import it.
"""

from __future__ import annotations


class LitemlopsError(Exception):
    """Base of all litemlops errors."""


class ConfigError(LitemlopsError, ValueError):
    """A configuration value, flag or environment variable is invalid."""


class HomeLockedError(LitemlopsError, RuntimeError):
    """Another process owns the home directory."""


class HomeNotFoundError(LitemlopsError, FileNotFoundError):
    """The home a command was pointed at does not exist or is not a litemlops home."""


class HistoryError(LitemlopsError, OSError):
    """The event history (`logs/history/`) cannot be read or written."""


class DefinitionError(LitemlopsError, ValueError):
    """An entity or feature view definition is invalid."""


class IncompatibleChangeError(DefinitionError):
    """`apply` would change a definition in a way stored data cannot follow."""


class NotFoundError(LitemlopsError, KeyError):
    """Something asked for by name does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FeatureViewNotFoundError(NotFoundError):
    """No feature view of that name has been applied."""


class EntityNotFoundError(NotFoundError):
    """No entity of that name has been applied."""


class FeatureNotFoundError(NotFoundError):
    """A feature reference names a feature its view does not have."""


class ValidationError(LitemlopsError, ValueError):
    """Data does not match the schema it is written against.

    `column` and `row` (0-based position) name the first problem when known.
    """

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None):
        super().__init__(message)
        self.column = column
        self.row = row


class ExperimentNotFoundError(NotFoundError):
    """No experiment of that name or id."""


class RunNotFoundError(NotFoundError):
    """No run with that id."""


class ModelNotFoundError(NotFoundError):
    """No registered model, or no logged model in a run, of that name."""


class ModelVersionNotFoundError(NotFoundError):
    """The registered model has no such version."""


class AliasNotFoundError(NotFoundError):
    """The registered model has no such alias."""


class ArtifactNotFoundError(NotFoundError):
    """No stored artifact with that path or digest."""


class ParamConflictError(LitemlopsError, ValueError):
    """A parameter was logged again with a different value."""


class RunStateError(LitemlopsError, RuntimeError):
    """The run is not in a state that allows this (e.g. logging to a finished run)."""


class TamperedArtifactError(LitemlopsError, ValueError):
    """A stored artifact's bytes no longer match its recorded sha256."""


class SignatureError(LitemlopsError, ValueError):
    """Model input does not match the model's signature."""


class RegistryStateError(LitemlopsError, RuntimeError):
    """The registry cannot do this now (e.g. nothing earlier to roll back to)."""


class AlreadyExistsError(LitemlopsError, ValueError):
    """Something of that name exists already (an experiment being created or renamed)."""
