"""Schemathesis against the app, in process: what `/openapi.json` allows is accepted,
what it forbids is refused, and every answer is one the document describes.

Bounded: a few examples per operation with a fixed seed (deterministic), the
stateful phase off; well under a minute for every operation of the API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.server.openapi import OPERATIONS
from litemlops.server.security import admin_token
from litemlops.testing import FixedClock

EXAMPLES_PER_OPERATION = 5


def describe(event: Any) -> list[str]:
    """One line per failed check of a finished scenario: check, request, answer."""
    lines = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            case = event.recorder.cases[case_id].value
            interaction = event.recorder.interactions.get(case_id)
            answer = interaction.response if interaction is not None else None
            said = f"{answer.status_code} {answer.content[:200]!r}" if answer is not None else ""
            title = str(check.failure_info.failure).splitlines()[0]
            lines.append(
                f"{event.label} [{check.name}] {title}\n    {case.as_curl_command()[:400]}"
                f"\n    -> {said}"
            )
    return lines


@pytest.fixture(scope="module")
def api(served_home: Config) -> Iterator[Any]:
    """The document loaded from the app, the app served with its own lifespan."""
    from schemathesis.config import SchemathesisConfig
    from schemathesis.python.asgi import shutdown_lifespans

    with Platform(served_home, clock=FixedClock()) as platform:
        app = create_app(platform, start_scheduler=False)
        token, _ = admin_token(served_home)  # the one the app will use
        config = SchemathesisConfig.from_dict(
            {
                "seed": 12,
                "headers": {"Authorization": f"Bearer {token}"},
                "cache": {"enabled": False},
                "generation": {
                    "max-examples": EXAMPLES_PER_OPERATION,
                    "deterministic": True,
                    "database": "none",
                    "mode": "all",
                },
                "phases": {"stateful": {"enabled": False}},
                "checks": {"enabled": True},
                "operations": [
                    {
                        # A grammar (MLflow's filter and order_by) and an opaque cursor:
                        # the document states them in words, not as schemas, so the run
                        # sends valid ones and varies everything else.
                        "include-path": "/api/runs",
                        "parameters": {
                            "query.filter": "metrics.auc > 0.5 and params.estimator != 'x'",
                            "query.order_by": ["metrics.auc DESC"],
                            "query.page_token": "",
                        },
                    },
                    {
                        # A trigger's params are checked by the named pipeline's own code,
                        # which the document cannot state (and a valid one starts a real
                        # training run): only bodies the document forbids are sent, and
                        # must be refused.
                        "include-path": "/api/pipelines/{name}/trigger",
                        "generation": {"mode": "negative"},
                    },
                    {
                        # Which versions a deployment may name depends on the registry,
                        # and a valid one starts routing every later request: only bodies
                        # the document forbids are sent, and must be refused.
                        "include-path": "/api/services/{service}/deployment",
                        "include-method": "PUT",
                        "generation": {"mode": "negative"},
                    },
                ],
            }
        )
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
        try:
            yield schema
        finally:
            shutdown_lifespans()


@pytest.mark.slow
def test_the_server_answers_as_its_openapi_document_says(api):
    from schemathesis.engine import Status, events

    failures: list[str] = []
    errors: list[str] = []
    tested: set[str] = set()
    statuses: Counter[str] = Counter()  # of the finished scenarios, for a run that tests none
    for event in schemathesis.engine.from_schema(api).execute():
        if isinstance(event, events.ScenarioFinished):
            statuses[event.status.name] += 1
            if event.label and event.status is not Status.SKIP:
                tested.add(event.label)
            if event.status in (Status.FAILURE, Status.ERROR):
                failures += describe(event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(str(getattr(event, "info", None) or getattr(event, "exception", "")))

    assert not errors, errors
    assert not failures, "\n".join(dict.fromkeys(failures))
    # Every operation but the document itself, which schemathesis loads rather than tests.
    expected = {f"{method} {path}" for method, path in OPERATIONS} - {"GET /openapi.json"}
    assert tested == expected, f"finished scenarios by status: {dict(statuses)}"
