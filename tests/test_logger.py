"""Library events reach structlog once it is configured, and are quiet stdlib records before."""

import subprocess
import sys
import textwrap

from litemlops.logger import get_logger

EMBEDDED = textwrap.dedent(
    """
    import logging, sys
    if sys.argv[1] == "stdlib":
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    from litemlops.store import Entity, FeatureStore, FeatureView, Field
    driver = Entity("driver", join_keys=["driver_id"])
    view = FeatureView("stats", entities=[driver], schema=[Field("rate", "float64")],
                       timestamp_field="datetime")
    with FeatureStore(":memory:") as fs:
        fs.apply([driver, view])
    """
)


def embedded(mode):
    return subprocess.run(
        [sys.executable, "-c", EMBEDDED, mode], capture_output=True, text=True, timeout=120
    )


def test_an_embedding_app_that_configured_nothing_sees_no_events_on_stdout():
    result = embedded("nothing")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_an_embedding_app_with_stdlib_logging_gets_the_events_as_records():
    result = embedded("stdlib")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "litemlops.store features_applied objects=['driver', 'stats']" in result.stderr


def test_once_structlog_is_configured_events_go_through_it(restore_logging):
    import structlog
    from structlog.testing import capture_logs

    with capture_logs() as captured:
        log = get_logger("litemlops.test", run_id="r1").bind(task="t")
        log.warning("something", n=2)
        log.warn("spelt as structlog does")

    assert captured == [
        {"event": "something", "log_level": "warning", "run_id": "r1", "task": "t", "n": 2},
        {"event": "spelt as structlog does", "log_level": "warning", "run_id": "r1", "task": "t"},
    ]
    assert structlog.is_configured()


def test_a_logger_follows_structlog_when_it_is_configured_again(restore_logging):
    import logging

    import structlog
    from structlog.testing import LogCapture

    log = get_logger("litemlops.test", run_id="r1")
    first, second = LogCapture(), LogCapture()
    structlog.configure(processors=[first])
    log.info("one")
    log.info("two")
    structlog.configure(
        processors=[second], wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
    )
    log.info("filtered out now")
    log.warning("three")
    structlog.reset_defaults()

    assert [e["event"] for e in first.entries] == ["one", "two"]
    assert [(e["event"], e["run_id"]) for e in second.entries] == [("three", "r1")]
