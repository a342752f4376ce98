"""What every test module shares.

Hypothesis explores new examples on every developer run; in CI (`CI` set, as the CI
runner does) it draws the same examples each time, so a submission's result does not
depend on the luck of a seed. A failure found locally is pinned with `@example`. Both
draw half of a test's examples (`depth.examples`).
`HYPOTHESIS_PROFILE=deep` draws ten times the full count, afresh, and runs the tests
marked `deep`.
`HYPOTHESIS_PROFILE=mutation` (mutation/run.py) draws the full count, the same each time,
and does not shrink a failure: a mutant run only asks whether a test fails.
"""

import logging
import os

import branch_coverage
import pytest
import structlog
import suite_order
from depth import FULL, deep, examples, mutation
from hypothesis import Phase, settings

from litemlops.logsetup import shutdown_logging

# A test naming no count draws as one naming Hypothesis's own default would (`examples`).
settings.register_profile("dev", max_examples=examples(FULL))
settings.register_profile("ci", derandomize=True, max_examples=examples(FULL))
settings.register_profile("deep", max_examples=examples(FULL), deadline=None)
NO_SHRINK = [phase for phase in Phase if phase not in (Phase.shrink, Phase.explain)]
settings.register_profile(
    "mutation", derandomize=True, max_examples=examples(FULL), phases=NO_SHRINK
)
if deep():
    settings.load_profile("deep")
elif mutation():
    settings.load_profile("mutation")
elif os.environ.get("CI"):
    settings.load_profile("ci")
else:
    settings.load_profile("dev")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suite_order.arrange(items, run_deep=deep())


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: a process per core this one may run on and one more, at most four;
    none on a single core. Many tests wait (on a server they started, a subprocess, a
    timer), so on two cores a third process fills the gaps: 294-333 s against 344-368 s
    for two, measured in alternation. Four were slower than two (each collects every
    test, and the files' servers need cores of their own)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores + 1, 4)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    branch_coverage.core_only(session.config).collecting(session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> None:
    branch_coverage.core_only(item.config).before(item)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    """Around pytest-cov's own wrapper (tryfirst: outermost), so its data is combined
    when the core modules' branch shares are checked."""
    result = yield
    branch_coverage.check(session)
    return result


@pytest.fixture
def restore_logging():
    """Undo a test's `configure_logging` and context: the root level, our writer."""
    root = logging.getLogger()
    level = root.level
    yield
    shutdown_logging()
    structlog.contextvars.clear_contextvars()
    root.setLevel(level)
