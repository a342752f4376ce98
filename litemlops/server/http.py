"""Request bodies in, JSON out, and every bad input as a 4xx with a JSON error body.

Errors look like `{"error": {"code": "...", "message": "..."}}`. Bodies are
read with a size limit before parsing; NaN and Infinity (which Python's json
would accept) are refused; pydantic checks shapes and types strictly, and its
first complaint becomes a readable message naming the field.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from starlette.requests import Request
from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An answer other than success: status, a stable code, a message for people."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def error_response(status: int, code: str, message: str) -> JSON:
    return JSON({"error": {"code": code, "message": message}}, status_code=status)


async def read_json(request: Request, limit: int, timeout: float = math.inf) -> Any:
    """The parsed body, refusing bodies over `limit` bytes before reading them whole,
    and answering 408 to a client that takes longer than `timeout` seconds to send it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout if math.isfinite(timeout) else None):
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408, "request_timeout", f"the request body took longer than {timeout:g} s to arrive"
        ) from None
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body:
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        # orjson refuses NaN and Infinity, which are not JSON (the json module takes them).
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        detail = str(exc)
        for word in (b"-Infinity", b"Infinity", b"NaN"):
            if word in body:
                detail += f"; {word.decode()} is not a JSON number: send finite numbers"
                break
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {detail}") from None


def parse(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 422 naming the first field that is wrong and why."""
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}{more}") from None
