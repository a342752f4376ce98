"""Event logs written by hand, as rotation leaves them, for the history's tests."""

import os
import shutil
import time
from datetime import UTC, datetime, timedelta

import orjson

from litemlops.config import Config
from litemlops.logfile import rotated_name
from litemlops.monitoring import history
from litemlops.monitoring.history import EVENTS_FILE

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
"""The clock compactions run at: within any retention of the events at T0."""


def at(seconds):
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def served(request_id, seconds, rows, *, version=1, entities=None, output=None, model="m"):
    """A prediction event: /inference's shape when `entities` are given, else /predict's."""
    scores = [round(0.1 * (i + 1), 3) for i in range(len(rows))]
    return {
        "event": "prediction_served",
        "timestamp": at(seconds),
        "request_id": request_id,
        "model": model,
        "version": version,
        "service": "inference" if entities else "predict",
        "entities": entities or [],
        "features": rows,
        "scores": scores,
        "output": output if output is not None else scores,
        "latency_ms": 1.5,
        "level": "info",
    }


def label(request_id, seconds, value):
    return {"event": "feedback_received", "timestamp": at(seconds), "request_id": request_id,
            "label": value, "level": "info"}


def lines_of(events):
    return b"".join(e if isinstance(e, bytes) else orjson.dumps(e) + b"\n" for e in events)


def write_log(folder, files):
    """`files` (lists of events or raw lines) oldest first, as rotation leaves them: each
    but the last under a rotated name, last written an hour ago, the last as the live file."""
    folder.mkdir(parents=True, exist_ok=True)
    live = folder / EVENTS_FILE
    settled = time.time() - 3600
    for age, events in enumerate(files):
        path = live if age == len(files) - 1 else rotated_name(live, T0 + timedelta(hours=age), 7)
        path.write_bytes(lines_of(events))
        if path != live:
            os.utime(path, (settled, settled))
    return folder


def copy_log(folder, dest):
    """The event files of `folder` copied to `dest` (no history): a log to parse."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in history.event_files(folder):
        shutil.copy(path, dest / path.name)
    return dest


def config_of(logs, **history_settings):
    """A config whose logs folder is `logs` (its home is the folder above)."""
    overrides = {f"history.{k}": v for k, v in history_settings.items()}
    config = Config.load(logs.parent, env={}, overrides=overrides)
    assert config.logs_dir == logs
    return config


def compact(logs, *, now=NOW, **history_settings):
    return history.compact(config_of(logs, **history_settings), clock=lambda: now,
                           settle_seconds=0)
