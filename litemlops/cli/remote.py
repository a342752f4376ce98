"""Writes that belong to the home's owner, sent to it while `litemlops run` serves.

A pipeline run, a feature push and an alias move made beside a running server go
through its HTTP API (`/api/...`, `/push/...`) with the admin token the home keeps,
so the server runs them with its workers and swaps models in at once. Without a
server the commands open the home themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from litemlops.cli.common import running_server

if TYPE_CHECKING:
    import httpx

    from litemlops.config import Config

#: States a pipeline run does not leave.
ENDED = ("success", "failed", "skipped")


class Owner:
    """The HTTP API of the `litemlops run` that serves a home."""

    def __init__(self, url: str, token: str, timeout: float = 120.0):
        self.url = url
        self.token = token
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import ssl

            import httpx

            verify: ssl.SSLContext | bool = True
            if self.url.startswith("http://"):
                # Loading the CA bundle costs a command 40 ms; a plain-HTTP URL needs none.
                # A context trusting no one would refuse any TLS, never skip its checks.
                verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._client = httpx.Client(
                base_url=self.url,
                timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.token}"},
                verify=verify,
            )
        return self._client

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """The answer's JSON; the server's error message as a CLI error."""
        import httpx

        try:
            answer = self.client.request(
                method, path, json=body, params={k: v for k, v in params.items() if v is not None}
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the server at {self.url}: {exc}") from None
        if answer.status_code >= 400:
            try:
                message = answer.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = answer.text[:300]
            raise click.ClickException(
                f"the server at {self.url} refused ({answer.status_code}): {message}"
            )
        return answer.json()

    def follow_run(
        self,
        started: dict[str, Any],
        progress: Callable[[dict[str, Any]], None] = lambda run: None,
        poll: float = 0.2,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """The run a trigger started, once it ended; `progress(run)` after each look.

        deadline: seconds to wait before giving up (the run goes on in the server).
        """
        give_up = None if deadline is None else time.monotonic() + deadline

        def wait() -> None:
            if give_up is not None and time.monotonic() > give_up:
                raise click.ClickException(
                    f"the {started['pipeline']} run did not end within {deadline:g} s; it goes "
                    f"on in the server (see `litemlops pipelines runs --pipeline "
                    f"{started['pipeline']}`)"
                )
            time.sleep(poll)

        run_id = started.get("run_id")
        while run_id is None:  # not recorded when the trigger answered: find it by its marker
            for found in self.call("GET", "/api/pipelines/runs", pipeline=started["pipeline"]):
                if found.get("payload", {}).get("request_id") == started["request_id"]:
                    run_id = found["run_id"]
                    break
            else:
                wait()
        while True:
            run: dict[str, Any] = self.call("GET", f"/api/pipelines/runs/{quote(run_id)}")
            progress(run)
            if run["state"] in ENDED:
                return run
            wait()


def owner(config: Config) -> Owner | None:
    """The home's serving owner, when `litemlops run` serves it now."""
    from litemlops.server.security import read_admin_token

    url = running_server(config)
    if url is None:
        return None
    return Owner(url, read_admin_token(config))


def path_part(text: str) -> str:
    return quote(text, safe="")


def json_chunks(rows: list[dict[str, Any]], max_items: int, max_bytes: int) -> Iterator[list[Any]]:
    """`rows` in pieces the server takes: at most `max_items` rows and, encoded,
    comfortably under `max_bytes`."""
    import json

    size = max(1, max_items)
    start = 0
    while start < len(rows):
        piece = rows[start : start + size]
        while len(piece) > 1 and len(json.dumps(piece)) > max_bytes * 0.9:
            piece = piece[: len(piece) // 2]
        yield piece
        start += len(piece)
