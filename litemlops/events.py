"""The structured events litemlops emits: their names and required keys are API.

Monitoring, alerts and users' own queries read `logs/events.jsonl` back by these
names, so a name or a required key changes only as a breaking change. Emit with
`litemlops.logger.get_logger("litemlops.<part>").info(FEATURES_INGESTED, view=..., ...)`.

The context of a pipeline run or a prediction (`run_id`, `pipeline`, `task`,
`model`, `version`; see `CONTEXT_KEYS`) is not passed per event: it is bound
once with `structlog.contextvars.bind_contextvars` and merged into every event
emitted while it is bound, so it is not listed in `REQUIRED_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litemlops.errors import NotFoundError

FEATURES_APPLIED = "features_applied"
"""Definitions were applied. objects: names applied; changed: names that were new or changed."""

FEATURES_INGESTED = "features_ingested"
"""Rows were written to the offline store. source: the file path, or the kind of
in-memory data ("DataFrame", "table", "rows", "columns")."""

FEATURES_MATERIALIZED = "features_materialized"
"""The online store caught up with the offline store up to `watermark`
(ISO-8601 event time, or None when the view has no rows yet)."""

FEATURES_PUSHED = "features_pushed"
"""Rows arrived by push. to: "online", "offline" or "both"; late_rows: event time
further behind the clock than `features.push_lateness_seconds` (still written);
stale_rows: older than the online value already held, so not applied online."""

OFFLINE_PUSHES_TAKEN = "offline_pushes_taken"
"""Offline pushes spooled in the online file by a process without the history (the
`run` server) were written into it: pushes, rows."""

OFFLINE_PUSH_DROPPED = "offline_push_dropped"
"""A spooled offline push was not written into the history: its view was removed or
re-created (`force=True`) after the push. view, rows, why."""

RUN_BOOTSTRAPPED = "run_bootstrapped"
"""`litemlops run` prepared a home. steps: what it did, in order."""

RUN_ALREADY_ENDED = "run_already_ended"
"""A tracking run's `with` block ended, but the run had been ended elsewhere meanwhile
(e.g. marked killed). wanted: the status the block would have set."""

ARTIFACT_SKIPPED = "artifact_skipped"
"""A file under a folder given to log_artifact was not stored. why: the reason."""

PIPELINE_RUN_STARTED = "pipeline_run_started"
"""A pipeline run began (run_id and pipeline are bound). trigger: manual, schedule, event."""

PIPELINE_RUN_FINISHED = "pipeline_run_finished"
"""A pipeline run ended. state: success or failed; duration in seconds."""

PIPELINE_RUN_QUEUED = "pipeline_run_queued"
"""A trigger waits: the pipeline already runs max_active_runs runs."""

PIPELINE_RUN_SKIPPED = "pipeline_run_skipped"
"""A trigger was recorded and dropped: the pipeline was busy and its policy is skip."""

TASK_STARTED = "task_started"
"""A task attempt began (run_id, pipeline, task bound). attempt: 1 for the first try."""

TASK_SUCCEEDED = "task_succeeded"
"""A task attempt succeeded; duration in seconds."""

TASK_FAILED = "task_failed"
"""A task attempt failed. error: type and message; will_retry: whether another attempt follows."""

TASK_RETRYING = "task_retrying"
"""A task is about to be tried again after `delay` seconds."""

TASK_SKIPPED = "task_skipped"
"""A task did not run because an upstream task did not succeed. reason: which."""

BUS_HANDLER_FAILED = "bus_handler_failed"
"""A subscriber of the in-process event bus raised. topic, pattern, error."""

SCHEDULE_FIRED = "schedule_fired"
"""A schedule's fire time came and its pipeline (bound) is being run. scheduled_at:
ISO-8601 UTC; coalesced: how many earlier missed fire times this one run stands for."""

SCHEDULE_MISFIRED = "schedule_misfired"
"""A schedule's fire time was not run: it was `late_by` seconds behind the clock,
more than the schedule's misfire `grace` (seconds)."""

TRIGGER_FIRED = "trigger_fired"
"""An event on the bus starts a run of the trigger's pipeline (bound). topic: the event's
topic; pattern: the trigger's topic pattern that matched it."""

TRIGGER_SUPPRESSED = "trigger_suppressed"
"""A matching event did not start a run: the trigger started one `since_last` seconds
ago, within its `cooldown` (seconds)."""

PIPELINE_TRIGGER_FAILED = "pipeline_trigger_failed"
"""A scheduled, event or manual trigger could not run its pipeline (bound): the runner
raised (unknown pipeline or params, database error). trigger: schedule, event, manual."""

SCHEDULER_STARTED = "scheduler_started"
"""The scheduler fires in real time now. schedules: their names; event_triggers:
"topic -> pipeline" strings; max_workers: threads that run pipelines."""

SCHEDULER_STOPPED = "scheduler_stopped"
"""The scheduler was shut down. wait: whether it waited for runs in progress."""

PREDICTION_SERVED = "prediction_served"
"""One answered prediction request (model and version bound): request_id, service,
entities (the entity keys or rows asked about; empty for `/predict` feature rows),
features and scores (lists, one item per scored row, in the order of entities),
output (what was returned: the chosen entity, or the list of predictions),
latency_ms. Under a deployment also deployment (its name) and arm (which answered:
"champion" or "v<version>"), and fallback when the routed arm raised and the champion
answered instead (the arm and its error). Monitoring reads these back."""

FEEDBACK_RECEIVED = "feedback_received"
"""A label for an earlier prediction: request_id, label. Joined to predictions by
request_id when performance is checked."""

MODEL_LOADED = "model_loaded"
"""A model version was loaded and warmed for serving (model, version bound): uri,
load_ms; scorer: "numpy" when it is scored by `litemlops.serving.scoring`'s numpy arithmetic
(verified equal to its own method at load), "model" when by its own method."""

MODEL_SWAPPED = "model_swapped"
"""An alias the server follows now serves another version: uri, from_version,
to_version."""

SERVER_STARTED = "server_started"
"""The HTTP server listens: url, host, port."""

SERVER_STOPPED = "server_stopped"
"""The server stopped: interrupted_runs, the pipeline runs it marked interrupted."""

REQUEST_FAILED = "request_failed"
"""The server failed to answer a request (a bug: bad input gets a 4xx): path, error."""

STORES_LEFT_OPEN = "stores_left_open"
"""A stopping app left the stores open because pipeline tasks were still in them
past the grace period (the process exits soon after): reason."""

ALERT_FIRED = "alert_fired"
"""An alert rule's condition held for its `for` duration: rule, metric, value (the
metric's value now), state ("firing"), severity, condition."""

ALERT_RESOLVED = "alert_resolved"
"""A firing alert's condition no longer holds: rule, metric, value, state ("resolved"),
severity, condition."""

ALERT_NOTIFY_FAILED = "alert_notify_failed"
"""A notifier could not deliver an alert (a webhook that is down or answers an error);
the alert's state is kept regardless: rule, notifier, error."""

PIPELINE_HISTORY_PRUNED = "pipeline_history_pruned"
"""Runs that ended before `before` (ISO time) were removed from the history with their
folders (`pipelines.keep_history_days`): runs (how many)."""

INGEST_FILE_REJECTED = "ingest_file_rejected"
"""A file waiting for the data pipeline failed its checks and was moved aside, so the
files after it still go in: file (where it was), moved_to, report (the JSON report
beside it: what was wrong, which columns and rows, when), problems (one line each)."""

MODEL_VERSION_REUSED = "model_version_reused"
"""A model was registered whose bytes a version of it already holds, so that version
was returned instead of a new one: registered_model, existing_version, sha256,
tracking_run (whose model was registered), registered_by (the version's own run)."""

TRAINING_SET_EXTRACTED = "training_set_extracted"
"""The training pipeline's data is gathered: rows (all of them), served_rows (served
predictions a `/feedback` label came for, with the values they were served with),
served_skipped (labelled ones without an entity to key them)."""

HISTORY_COMPACTED = "history_compacted"
"""Rotated event files went into the event history (`logs/history/`): files, lines,
merged (small history files combined), expired (history files past `[history]`
retention), bytes (the history's size now)."""

HISTORY_COMPACTION_FAILED = "history_compaction_failed"
"""The event history could not be written (the rotated files wait for the next try,
and readers parse them meanwhile): error."""

DEPLOYMENT_STARTED = "deployment_started"
"""A deployment put challengers beside a service's champion: deployment (its name),
service, strategy (canary, shadow, ab, bandit), champion (version), challengers
(versions)."""

DEPLOYMENT_STEPPED = "deployment_stepped"
"""A canary passed an interval's checks and its challenger takes a larger share now:
deployment, service, step (from 0), share (0-1)."""

DEPLOYMENT_ROLLED_BACK = "deployment_rolled_back"
"""A deployment's check failed and its challengers serve nothing any more (the champion
untouched): deployment, service, reason, failed_check, figures (every check's numbers)."""

DEPLOYMENT_PROMOTED = "deployment_promoted"
"""A deployment ended by moving the champion alias to a challenger's version (the reason
is in the alias history too): deployment, service, reason, promoted_version."""

DEPLOYMENT_ENDED = "deployment_ended"
"""A deployment ended without promoting (by hand, or an A/B test that decided for the
champion): deployment, service, reason."""

DEPLOYMENT_NOT_STARTED = "deployment_not_started"
"""A deployment of config.toml (`[deployments.<name>]`) was not started now: its service
has another active deployment; `run` tries again at its next start. deployment,
service, reason."""

DEPLOYMENT_TICK_FAILED = "deployment_tick_failed"
"""The deployment controller could not write served requests and labels or judge a
deployment; they wait for the next tick: error."""

PREDICTION_SHADOWED = "prediction_shadowed"
"""A shadow challenger scored a request the champion answered (never returned):
request_id (the served prediction's), service, deployment, arm, scores, output (what it
would have chosen), agrees (with the champion's output), latency_ms."""

PREDICTION_SHADOW_FAILED = "prediction_shadow_failed"
"""A shadow challenger raised scoring a request (the champion's answer was unaffected):
request_id, service, deployment, arm, error."""

REQUIRED_KEYS: dict[str, frozenset[str]] = {
    FEATURES_APPLIED: frozenset({"objects", "changed"}),
    FEATURES_INGESTED: frozenset({"view", "rows", "source"}),
    FEATURES_MATERIALIZED: frozenset({"view", "rows_read", "entities_written", "watermark"}),
    FEATURES_PUSHED: frozenset({"view", "rows", "to", "late_rows", "stale_rows"}),
    OFFLINE_PUSHES_TAKEN: frozenset({"pushes", "rows"}),
    OFFLINE_PUSH_DROPPED: frozenset({"view", "rows", "why"}),
    RUN_BOOTSTRAPPED: frozenset({"home", "steps"}),
    RUN_ALREADY_ENDED: frozenset({"tracking_run", "wanted"}),
    ARTIFACT_SKIPPED: frozenset({"path", "why"}),
    PIPELINE_RUN_STARTED: frozenset({"trigger"}),
    PIPELINE_RUN_FINISHED: frozenset({"state", "duration"}),
    PIPELINE_RUN_QUEUED: frozenset({"trigger"}),
    PIPELINE_RUN_SKIPPED: frozenset({"trigger"}),
    TASK_STARTED: frozenset({"attempt"}),
    TASK_SUCCEEDED: frozenset({"attempt", "duration"}),
    TASK_FAILED: frozenset({"attempt", "duration", "error"}),
    TASK_RETRYING: frozenset({"attempt", "delay"}),
    TASK_SKIPPED: frozenset({"reason"}),
    BUS_HANDLER_FAILED: frozenset({"topic", "pattern", "error"}),
    SCHEDULE_FIRED: frozenset({"schedule", "scheduled_at", "coalesced"}),
    SCHEDULE_MISFIRED: frozenset({"schedule", "scheduled_at", "late_by", "grace"}),
    TRIGGER_FIRED: frozenset({"topic", "pattern"}),
    TRIGGER_SUPPRESSED: frozenset({"topic", "pattern", "cooldown", "since_last"}),
    PIPELINE_TRIGGER_FAILED: frozenset({"trigger", "error"}),
    SCHEDULER_STARTED: frozenset({"schedules", "event_triggers", "max_workers"}),
    SCHEDULER_STOPPED: frozenset({"wait"}),
    PREDICTION_SERVED: frozenset(
        {"request_id", "service", "entities", "features", "scores", "output", "latency_ms"}
    ),
    FEEDBACK_RECEIVED: frozenset({"request_id", "label"}),
    MODEL_LOADED: frozenset({"uri", "load_ms"}),
    MODEL_SWAPPED: frozenset({"uri", "from_version", "to_version"}),
    SERVER_STARTED: frozenset({"url", "host", "port"}),
    SERVER_STOPPED: frozenset({"interrupted_runs"}),
    REQUEST_FAILED: frozenset({"path", "error"}),
    STORES_LEFT_OPEN: frozenset({"reason"}),
    ALERT_FIRED: frozenset({"rule", "metric", "value", "state"}),
    ALERT_RESOLVED: frozenset({"rule", "metric", "value", "state"}),
    ALERT_NOTIFY_FAILED: frozenset({"rule", "notifier", "error"}),
    INGEST_FILE_REJECTED: frozenset({"file", "moved_to", "report", "problems"}),
    MODEL_VERSION_REUSED: frozenset(
        {"registered_model", "existing_version", "sha256", "tracking_run", "registered_by"}
    ),
    TRAINING_SET_EXTRACTED: frozenset({"rows", "served_rows", "served_skipped"}),
    PIPELINE_HISTORY_PRUNED: frozenset({"runs", "before"}),
    HISTORY_COMPACTED: frozenset({"files", "lines", "merged", "expired", "bytes"}),
    HISTORY_COMPACTION_FAILED: frozenset({"error"}),
    DEPLOYMENT_STARTED: frozenset(
        {"deployment", "service", "strategy", "champion", "challengers"}
    ),
    DEPLOYMENT_STEPPED: frozenset({"deployment", "service", "step", "share"}),
    DEPLOYMENT_ROLLED_BACK: frozenset(
        {"deployment", "service", "reason", "failed_check", "figures"}
    ),
    DEPLOYMENT_PROMOTED: frozenset({"deployment", "service", "reason", "promoted_version"}),
    DEPLOYMENT_ENDED: frozenset({"deployment", "service", "reason"}),
    DEPLOYMENT_NOT_STARTED: frozenset({"deployment", "service", "reason"}),
    DEPLOYMENT_TICK_FAILED: frozenset({"error"}),
    PREDICTION_SHADOWED: frozenset(
        {"request_id", "service", "deployment", "arm", "scores", "output", "agrees",
         "latency_ms"}
    ),
    PREDICTION_SHADOW_FAILED: frozenset(
        {"request_id", "service", "deployment", "arm", "error"}
    ),
}

ANSWERED: frozenset[str] = frozenset({PREDICTION_SERVED, FEEDBACK_RECEIVED})
"""Events that record what an HTTP answer acknowledges: the log writes each to the
operating system before the emitting call returns, so the server answers only once
its event would survive the process being killed (labels live only in the log)."""

CONTEXT_KEYS: frozenset[str] = frozenset({"run_id", "pipeline", "task", "model", "version"})
"""Keys bound through structlog contextvars rather than passed with each event."""


def missing_keys(event: str, fields: Mapping[str, Any]) -> set[str]:
    """The required keys of `event` that `fields` lacks; empty when the event is complete.

    Raises NotFoundError when `event` is not a known event name.
    """
    try:
        required = REQUIRED_KEYS[event]
    except KeyError:
        raise NotFoundError(
            f"unknown event {event!r}; known events: {', '.join(sorted(REQUIRED_KEYS))}"
        ) from None
    return set(required.difference(fields))
