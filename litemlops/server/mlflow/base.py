"""How an MLflow endpoint is served: its arguments, the token rule, the answer.

A handler is a plain function `(platform, args) -> dict` run on a worker thread;
`endpoint` wraps it into a Starlette endpoint that reads the arguments (the query
of a GET, the JSON body of a POST, PATCH or DELETE, as MLflow's client sends
them), asks for the admin token when the handler writes (reads follow the
server's read rule: no token), and answers errors in MLflow's shape.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from litemlops.server.http import JSON
from litemlops.server.mlflow.errors import MlflowError, answer_error, invalid
from litemlops.server.state import require_token, state_of

if TYPE_CHECKING:
    from litemlops.platform import Platform

Args = dict[str, Any]
Handler = Callable[["Platform", Args], dict[str, Any]]

#: Where MLflow's client and its web pages send requests.
PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
#: Query parameters a GET may repeat (MLflow sends lists as repeated parameters).
_LISTS = {"experiment_ids", "order_by", "run_ids", "model_ids"}


async def read_args(request: Request, path_args: Args | None = None) -> Args:
    """The request's arguments: its query (GET) or JSON body, plus path parameters."""
    args: Args = {}
    if request.method in ("GET", "HEAD"):
        query = request.query_params
        for key in query:
            values = query.getlist(key)
            args[key] = values if key in _LISTS else values[-1]
    else:
        headers = request.headers
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            body = await state_of(request).read_body(request)
            if not isinstance(body, dict):
                raise invalid("the request body must be a JSON object")
            args.update(body)
    args.update(path_args or request.path_params)
    return args


def endpoint(handler: Handler, *, write: bool) -> Callable[[Request], Any]:
    async def serve(request: Request) -> Response:
        try:
            if write:
                require_token(request)
            args = await read_args(request)
            platform = state_of(request).platform
            return JSON(await run_in_threadpool(handler, platform, args))
        except Exception as exc:  # every failure answers in MLflow's shape
            return answer_error(request, exc)

    serve.__name__ = f"mlflow_{handler.__name__}"
    return serve


Table = list[tuple[str, str, Handler, bool]]


def routes(table: Table) -> list[Route]:
    """(method, path under a prefix, handler, writes) as routes under both of MLflow's
    prefixes; a handler that writes needs the admin token."""
    made: list[Route] = []
    for prefix in PREFIXES:
        for method, path, handler, write in table:
            made.append(
                Route(
                    prefix + path,
                    endpoint(handler, write=write),
                    methods=[method],
                    include_in_schema=False,  # MLflow's API is documented by MLflow
                )
            )
    return made


# -- arguments ------------------------------------------------------------------------------


def text(args: Args, name: str, *, required: bool = True, default: str | None = None) -> str:
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"Missing value for required parameter '{name}'")
        return default if default is not None else ""
    if not isinstance(value, str):
        raise invalid(f"parameter '{name}' must be a string, got {value!r}")
    return value


def optional_text(args: Args, name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    return text(args, name)


def integer(args: Args, name: str, default: int | None = None) -> int | None:
    """An int64 argument: MLflow's client sends them as JSON numbers or strings."""
    value = args.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(f"parameter '{name}' must be an integer, got {value!r}")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or not -(2**63) <= number < 2**63:
        raise invalid(f"parameter '{name}' must be a 64-bit integer, got {value!r}")
    return number


def items(args: Args, name: str) -> list[Any]:
    value = args.get(name) or []
    if not isinstance(value, list):
        raise invalid(f"parameter '{name}' must be a list, got {value!r}")
    return value


def key_values(args: Args, name: str) -> list[tuple[str, str]]:
    """A list of {key, value} objects (tags, params) as pairs."""
    pairs = []
    for item in items(args, name):
        if not isinstance(item, dict):
            raise invalid(f"each of '{name}' must be an object with key and value, got {item!r}")
        pairs.append((text(item, "key"), text(item, "value", required=False)))
    return pairs


def offset_token(token: str | None) -> int:
    """The position an offset page token stands for (0: no token)."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = data["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid(f"invalid page_token {token!r}; start again without one") from None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise invalid(f"invalid page_token {token!r}; start again without one")
    return offset


def next_offset_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def not_found(kind: str, name: object) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"{kind} {name!r} does not exist")
