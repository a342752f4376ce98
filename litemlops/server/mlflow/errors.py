"""MLflow's error answers: `{"error_code", "message"}` with the status MLflow gives each code.

The MLflow client turns such an answer into a `RestException` (an `MlflowException`)
carrying the code, so a script written against MLflow handles litemlops' refusals as
it handles MLflow's. Library errors map by class; the server's own `ApiError`s (no
token, a body too large or not JSON) keep their status and get MLflow's code.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from litemlops import events
from litemlops.errors import (
    AlreadyExistsError,
    LitemlopsError,
    NotFoundError,
    RegistryStateError,
    RunStateError,
    TamperedArtifactError,
)
from litemlops.logger import get_logger
from litemlops.server.http import JSON, ApiError

log = get_logger("litemlops.server")

#: MLflow's HTTP status for each error code it answers with.
STATUS = {
    "BAD_REQUEST": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "INVALID_STATE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "NOT_IMPLEMENTED": 501,
    "INTERNAL_ERROR": 500,
}
_API_CODES = {401: "UNAUTHENTICATED", 404: "RESOURCE_DOES_NOT_EXIST", 405: "ENDPOINT_NOT_FOUND"}


class MlflowError(Exception):
    """An MLflow-shaped refusal raised by the MLflow layer itself."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def mlflow_error(code: str, message: str, status: int | None = None) -> Response:
    return JSON(
        {"error_code": code, "message": message},
        status_code=status if status is not None else STATUS[code],
    )


def answer_error(request: Request, exc: Exception) -> Response:
    """The MLflow answer for an exception raised while serving an MLflow request."""
    if isinstance(exc, MlflowError):
        return mlflow_error(exc.code, exc.message)
    if isinstance(exc, ApiError):
        headers = exc.headers or {}
        code = _API_CODES.get(
            exc.status, "INVALID_PARAMETER_VALUE" if exc.status < 500 else "INTERNAL_ERROR"
        )
        answer = mlflow_error(code, exc.message, exc.status)
        answer.headers.update(headers)
        return answer
    if isinstance(exc, HTTPException):
        return mlflow_error(
            _API_CODES.get(exc.status_code, "BAD_REQUEST"), str(exc.detail), exc.status_code
        )
    if isinstance(exc, LitemlopsError) and not isinstance(exc, TamperedArtifactError):
        if isinstance(exc, NotFoundError):
            return mlflow_error("RESOURCE_DOES_NOT_EXIST", str(exc))
        if isinstance(exc, AlreadyExistsError):
            return mlflow_error("RESOURCE_ALREADY_EXISTS", str(exc))
        if isinstance(exc, RunStateError | RegistryStateError):
            return mlflow_error("INVALID_STATE", str(exc))
        return mlflow_error("INVALID_PARAMETER_VALUE", str(exc))
    log.error(
        events.REQUEST_FAILED,
        path=request.url.path,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=exc,
    )
    return mlflow_error("INTERNAL_ERROR", "the server failed to answer; see its log")
