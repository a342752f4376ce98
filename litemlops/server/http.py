"""Request bodies in, JSON out, and every bad input as a 4xx with a JSON error body.

Errors look like `{"error": {"code": "...", "message": "..."}}`. A body must be
sent as JSON (`Content-Type: application/json` or `application/<x>+json`), else
415: a web page can post `text/plain` or a form to a local server without asking
the browser's leave (no CORS preflight), but not JSON. Bodies are read with a
size limit before parsing; NaN and Infinity (which Python's json
would accept) are refused; pydantic checks shapes and types strictly, and its
first complaint becomes a readable message naming the field.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from starlette.requests import Request
from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)

JSON_MEDIA_TYPE = "application/json"
#: An RFC 9110 token: what a media subtype and a parameter name are made of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class ApiError(Exception):
    """An answer other than success: status, a stable code, a message for people."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSON:
    return JSON({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


@functools.lru_cache(maxsize=256)
def json_media_problem(content_type: str | None) -> str | None:
    """Why a body sent with this Content-Type is not taken as JSON; None when it is.

    JSON is `application/json` or `application/<x>+json` (any case), with no
    charset or `charset=utf-8` (JSON is UTF-8: RFC 8259). Clients send the same
    header each time, so the answer is cached by the header's text.
    """
    if content_type is None or not content_type.strip():
        return "the request has a body but no Content-Type"
    media, *params = content_type.split(";")
    kind, _, subtype = media.strip().lower().partition("/")
    json_subtype = subtype == "json" or (subtype.endswith("+json") and len(subtype) > 5)
    if kind != "application" or not json_subtype or not _TOKEN.fullmatch(subtype):
        return f"the body is sent as {content_type.strip()!r}"
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return f"the body is sent as {content_type.strip()!r}, but JSON is UTF-8"
    return None


def require_json_body(content_type: str | None) -> None:
    """415 unless `content_type` says JSON."""
    if content_type == JSON_MEDIA_TYPE:
        return  # what nearly every client sends: no parsing, no cache lookup
    problem = json_media_problem(content_type)
    if problem is not None:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{problem}; this endpoint takes JSON: send the body with "
            "'Content-Type: application/json'",
        )


async def read_json(request: Request, limit: int, timeout: float = math.inf) -> Any:
    """The parsed body, refusing bodies over `limit` bytes before reading them whole,
    bodies not sent as JSON (415), and answering 408 to a client that takes longer
    than `timeout` seconds to send it."""
    headers = request.headers
    declared = headers.get("content-length")
    size: int | None = None
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
    if size or (size is None and "transfer-encoding" in headers):
        require_json_body(headers.get("content-type"))
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
