"""What every test module shares.

Hypothesis explores new examples on every developer run; in CI (`CI` set, as the CI
runner does) it draws the same examples each time, so a submission's result does not
depend on the luck of a seed. A failure found locally is pinned with `@example`.
"""

import logging
import os

import pytest
import structlog
from hypothesis import settings

from litemlops.logsetup import shutdown_logging

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def restore_logging():
    """Undo a test's `configure_logging` and context: the root level, our writer."""
    root = logging.getLogger()
    level = root.level
    yield
    shutdown_logging()
    structlog.contextvars.clear_contextvars()
    root.setLevel(level)
