"""The one frozen `Config` of an installation, built at the edge and passed explicitly.

Values come, lowest precedence first, from the defaults below, `<home>/config.toml`
(sections `[logging]`, `[history]`, `[features]`, `[demo]`, `[pipelines]`, `[training]`,
`[schedules]`, `[server]`, `[monitoring]`), environment variables
`LITEMLOPS_<SECTION>_<KEY>` and explicit overrides (`{"demo.drivers": 5}`). Alert
rules are `[[alerts]]` tables in the file only (see `AlertRule`); they add to the
`DEFAULT_ALERTS`, a rule named like a default replaces that default, a table with
only `name` and `enabled = false` turns that default off, and
`[monitoring] replace_default_alerts = true` makes the file's rules the only ones.
Only `Config.load` looks at the environment; everything below it takes a `Config`.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from litemlops.errors import ConfigError
from litemlops.home import resolve_home
from litemlops.modeling import ESTIMATORS, GATE_METRICS

ENV_PREFIX = "LITEMLOPS_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class LoggingConfig:
    """Where and how much the structured event log writes.

    max_bytes: the live `events.jsonl` is rotated at this size (0: never; then nothing
    goes into the history and every monitoring check parses the whole file). A rotated
    file keeps a name of its own until the history has it (see `HistoryConfig`).
    backups: no longer used. It was how many rotated files were kept, the oldest
    deleted; now no event leaves the log before it is in the history, which `[history]`
    keeps by days and size. Still accepted, so older config files load.
    """

    level: str = "info"
    max_bytes: int = 10_000_000
    backups: int = 5
    console: bool = True


@dataclass(frozen=True)
class HistoryConfig:
    """How long the event history keeps served predictions, labels and other events.

    Rotated event files are compacted into typed Parquet under `logs/history/` (at the
    start of each monitoring check); monitoring windows, the served labels training
    learns from and `litemlops logs` read the history and the files not yet compacted.
    keep_days: history files whose newest event is older than this are removed (0: no
    limit). max_bytes: past this size the oldest history files are removed (0: no
    limit). Whichever limit is reached first applies.
    """

    keep_days: float = 90.0
    max_bytes: int = 5_000_000_000


@dataclass(frozen=True)
class FeaturesConfig:
    """Feature store behaviour.

    push_lateness_seconds: how far behind the clock a pushed row's event time may be
    before it is counted (and logged) as late; late rows are still written.
    max_future_seconds: how far ahead of the clock the event time of a row pushed online
    may be; a push with a row further ahead is refused (`inf`: any time is taken).
    """

    push_lateness_seconds: float = 600.0
    max_future_seconds: float = 300.0


@dataclass(frozen=True)
class DemoConfig:
    """Size and seed of the demo data the ride-hailing demo generates."""

    drivers: int = 20
    hours: int = 24 * 14
    labels: int = 2000
    seed: int = 42


@dataclass(frozen=True)
class PipelinesConfig:
    """Where the home's own pipelines are defined, and how much of their past is kept.

    modules: comma-separated Python files whose module-level `Pipeline` objects
    join the built-in ones; relative paths are relative to the home.
    keep_run_folders: the working folders (`runs/<run_id>/`) kept per pipeline, the
    newest ended runs' (0: all); older runs stay in the history but can no longer
    be resumed or stepped. keep_history_days: how long ended runs stay in the
    history (0: forever). allowed_dirs: comma-separated directories, besides the
    home, that a pipeline's path params (files it reads or writes, such as
    `labels` or `output_dir`) may point into; relative paths are relative to the
    home. A path outside them is refused before the run starts.
    """

    modules: str = ""
    keep_run_folders: int = 50
    keep_history_days: float = 90.0
    allowed_dirs: str = ""

    def module_paths(self, home: Path) -> list[Path]:
        return [home / p.strip() for p in self.modules.split(",") if p.strip()]

    def allowed_paths(self, home: Path) -> list[Path]:
        """The directories of `allowed_dirs` (the home is always allowed too)."""
        return [home / p.strip() for p in self.allowed_dirs.split(",") if p.strip()]


@dataclass(frozen=True)
class TrainingConfig:
    """The `training` pipeline's defaults (each is also a run param: `--param key=value`).

    estimator: one of `litemlops.modeling.ESTIMATORS` (a classifier by default;
    "elasticnet" is the course's ElasticNet(alpha=0.5, l1_ratio=0.1)).
    hyperparams: a JSON object of estimator parameters over the estimator's defaults.
    gate_metric: the test-set metric a new model must not be worse on than the
    champion, by more than `tolerance`; "auto" follows the estimator's kind: "auc" for
    a classifier, "rmse" for a regressor (or one of `litemlops.modeling.HIGHER_IS_BETTER`).
    Absolute thresholds, by kind: min_auc for a classifier, min_r2 for a regressor (0:
    no worse than always predicting the mean), max_rmse for both.
    promote: "challenger" (a new version waits for a person to promote it when a
    champion exists) or "auto" (a version that passes the gate becomes champion).
    served_labels: also train on the served predictions that `/feedback` labelled, with
    the feature values they were served with (the event log's), so a retrain started
    by drift learns from the drifted traffic.
    """

    model_name: str = "driver_ranker"
    estimator: str = "logistic_regression"
    hyperparams: str = "{}"
    test_size: float = 0.2
    seed: int = 42
    gate_metric: str = "auto"
    min_auc: float = 0.55
    max_rmse: float = 0.5
    min_r2: float = 0.0
    tolerance: float = 0.0
    promote: str = "challenger"
    served_labels: bool = True


@dataclass(frozen=True)
class SchedulesConfig:
    """When the demo pipelines run once the scheduler starts: a 5-field cron line (UTC),
    or "" for never (they still run on demand)."""

    data: str = "*/10 * * * *"
    training: str = "0 3 * * *"
    batch_predictions: str = "0 * * * *"


@dataclass(frozen=True)
class ServerConfig:
    """The HTTP server and its prediction service (the course's `/inference`).

    token: the admin token for mutating endpoints; empty means "made at first start
    in <home>/token". Binding an interface other than loopback needs it set here
    (or in LITEMLOPS_SERVER_TOKEN), so nobody exposes the server by accident.
    model, entity, features: the service `/inference` runs: the model URI, the
    entity key its requests list, and the feature references (comma-separated)
    it looks up online for each; the best-scored entity is the prediction.
    header_timeout_seconds: how long a client may take to send a request's headers,
    from its first byte (or from connecting); body_timeout_seconds: to send its body;
    keep_alive_seconds: how long an idle keep-alive connection stays open. A slow or
    stalled client is disconnected (headers) or answered 408 (body), so it cannot
    hold the server's connection slots forever.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str = ""
    max_body_bytes: int = 1_000_000
    max_items: int = 1000
    model: str = "driver_ranker@champion"
    entity: str = "driver_id"
    features: str = "driver_stats:conv_rate,driver_stats:acc_rate,driver_stats:avg_daily_trips"
    alias_refresh_seconds: float = 1.0
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 5.0

    def feature_refs(self) -> list[str]:
        return [f.strip() for f in self.features.split(",") if f.strip()]


@dataclass(frozen=True)
class MonitoringConfig:
    """Drift and performance checks, and where alerts are sent.

    window_events: the last N `prediction_served` events a check reads;
    window_seconds: the last period instead, when > 0. interval_seconds: how often the
    `monitoring` pipeline runs. ks_pvalue, chi2_pvalue: a feature drifts below these
    p-values; psi, wasserstein, js: at or above these scores. dataset_share: the dataset
    drifts when this share of its features drift. sample_cap: the most rows a KS test
    compares (with more, tiny differences always look significant).
    webhook_url, webhook_timeout: the Alertmanager-compatible receiver of `webhook` alerts.
    replace_default_alerts: false (the default): the `[[alerts]]` rules of config.toml add
    to the `DEFAULT_ALERTS` (one named like a default replaces it; `name` with
    `enabled = false` turns that one off); true: they are the only rules (none at all
    without `[[alerts]]`), the drift rule that retrains included.
    """

    window_events: int = 1000
    window_seconds: float = 0.0
    interval_seconds: float = 60.0
    ks_pvalue: float = 0.05
    psi: float = 0.2
    wasserstein: float = 0.1
    chi2_pvalue: float = 0.05
    js: float = 0.1
    dataset_share: float = 0.5
    sample_cap: int = 5000
    webhook_url: str = ""
    webhook_timeout: float = 2.0
    replace_default_alerts: bool = False


NOTIFIERS = ("log", "webhook", "bus")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
    "!=": lambda v, t: v != t,
    ">": lambda v, t: v > t,
    "<": lambda v, t: v < t,
}
_CONDITION = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_condition(text: str) -> tuple[str, float]:
    """`"> 0"` -> (">", 0.0); raises ValueError saying what a condition looks like."""
    match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
    number = match.group(2) if match is not None else ""
    threshold = float(number) if _FLOAT.fullmatch(number) else math.nan
    if match is None or not math.isfinite(threshold):
        raise ValueError('an operator (>, >=, <, <=, ==, !=) and a finite number, like "> 0"')
    return match.group(1), threshold


@dataclass(frozen=True)
class AlertRule:
    """When a monitoring metric is alarming, for how long, and who hears of it.

    metric: a key of the flat metrics a monitoring check produces (`drift.dataset`,
    `performance.auc`). condition: an operator and a number (`"> 0"`). every: seconds
    between evaluations (the scheduler's business). for_seconds: how long the condition
    must hold before the alert fires. notify: names in `NOTIFIERS`. trigger: the pipeline
    that a firing starts through the bus topic `alert:<name>` (needs "bus" in notify).
    cooldown_seconds: a firing within this time of the last notified one notifies no
    one, so a flapping alert cannot start retraining in a loop.
    In config.toml the keys `for` and `cooldown` stand for for_seconds, cooldown_seconds.
    """

    name: str
    metric: str
    condition: str
    every: float = 60.0
    for_seconds: float = 0.0
    severity: str = "warning"
    notify: tuple[str, ...] = ("log",)
    trigger: str | None = None
    cooldown_seconds: float = 0.0

    def __post_init__(self) -> None:
        for key, attr in _RULE_KEYS.items():
            raw = getattr(self, attr)
            try:
                object.__setattr__(self, attr, _rule_value(key, raw))
            except ValueError as exc:
                raise ConfigError(
                    f"alert rule {self.name!r}: {key} must be {exc}, got {raw!r}"
                ) from None
        if self.trigger and "bus" not in self.notify:
            raise ConfigError(
                f"alert rule {self.name!r}: trigger {self.trigger!r} starts its pipeline "
                'through the bus; add "bus" to notify'
            )

    @property
    def operator(self) -> str:
        return parse_condition(self.condition)[0]

    @property
    def threshold(self) -> float:
        return parse_condition(self.condition)[1]

    @property
    def topic(self) -> str:
        """The bus topic a firing publishes; a pipeline's `on` subscribes to it."""
        return f"alert:{self.name}"

    def holds(self, value: float) -> bool:
        """Whether `value` meets the condition (NaN never does)."""
        if math.isnan(value):  # NaN != 0 is true, yet "no value" must not fire an alert
            return False
        operator, threshold = parse_condition(self.condition)
        return _OPERATORS[operator](value, threshold)


# config.toml key -> AlertRule field.
_RULE_KEYS = {
    "name": "name",
    "metric": "metric",
    "condition": "condition",
    "every": "every",
    "for": "for_seconds",
    "severity": "severity",
    "notify": "notify",
    "trigger": "trigger",
    "cooldown": "cooldown_seconds",
}
_RULE_REQUIRED = ("name", "metric", "condition")


def _rule_value(key: str, raw: Any) -> Any:
    """The checked, normalised value of one rule key; ValueError says what it must be."""
    if key in ("every", "for", "cooldown"):
        ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
        if not ok or raw < 0 or (key == "every" and raw == 0):
            raise ValueError("a number of seconds > 0" if key == "every" else "seconds >= 0")
        return float(raw)
    if key == "notify":
        names = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"a list of notifier names ({', '.join(NOTIFIERS)})")
        cleaned = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
        unknown = [n for n in cleaned if n not in NOTIFIERS]
        if unknown:
            raise ValueError(f"notifiers among {', '.join(NOTIFIERS)} (unknown: {unknown})")
        return cleaned
    if key == "trigger" and raw in (None, ""):
        return None
    if key == "condition":
        parse_condition(raw)
        return raw.strip()
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("a non-empty string")
    text = raw.strip()
    if key == "name" and not _RULE_NAME.fullmatch(text):
        # The name becomes the bus topic `alert:<name>`, where * ? [ are patterns.
        raise ValueError("letters, digits, '_', '.' and '-'")
    return text


DEFAULT_ALERTS: tuple[AlertRule, ...] = (
    AlertRule(
        "dataset_drift",
        metric="drift.dataset",
        condition="> 0",
        every=10,
        for_seconds=11,
        severity="critical",
        notify=("log", "bus"),
        trigger="training",
        cooldown_seconds=3600,
    ),
    AlertRule(
        "accuracy_drop",
        metric="performance.accuracy",
        condition="< 0.6",
        every=60,
        for_seconds=300,
        notify=("log",),
    ),
)
"""The course's drift rule (dataset drift > 0, every 10 s, for 11 s) retrains; an
accuracy drop is logged. `[[alerts]]` rules add to these (see `with_default_alerts`)."""


def with_default_alerts(
    rules: tuple[AlertRule, ...], *, replace: bool = False, off: Collection[str] = ()
) -> tuple[AlertRule, ...]:
    """The rules in force: the defaults but those named in `off`, each replaced by a
    rule of its name, then the other rules in their order; only `rules` with `replace`.
    """
    named = {rule.name for rule in DEFAULT_ALERTS}
    unknown = sorted(set(off) - named)
    if unknown or (off and replace):
        why = "there are none with replace_default_alerts" if replace else (
            f"there is none named {unknown}; the defaults are {sorted(named)}"
        )
        raise ConfigError(f"enabled = false turns a default alert rule off, but {why}")
    if replace:
        return rules
    mine = {rule.name: rule for rule in rules}
    defaults = tuple(mine.get(r.name, r) for r in DEFAULT_ALERTS if r.name not in off)
    return defaults + tuple(rule for rule in rules if rule.name not in named)


_SECTIONS: dict[str, type] = {
    "logging": LoggingConfig,
    "history": HistoryConfig,
    "features": FeaturesConfig,
    "demo": DemoConfig,
    "pipelines": PipelinesConfig,
    "training": TrainingConfig,
    "schedules": SchedulesConfig,
    "server": ServerConfig,
    "monitoring": MonitoringConfig,
}


def _check_level(value: Any) -> str | None:
    return None if value in LOG_LEVELS else f"one of {', '.join(LOG_LEVELS)}"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "a number >= 0"


def _positive(value: Any) -> str | None:
    return None if value >= 1 else "an integer >= 1"


def _fraction(value: Any) -> str | None:
    return None if 0 < value < 1 else "a number between 0 and 1 (exclusive)"


def _unit(value: Any) -> str | None:
    return None if 0 <= value <= 1 else "a number between 0 and 1"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"one of {', '.join(choices)}"

    return check


def _positive_number(value: Any) -> str | None:
    return None if value > 0 else "a number > 0"


def _share(value: Any) -> str | None:
    return None if 0 < value <= 1 else "a number > 0 and <= 1"


def _web_url(value: Any) -> str | None:
    # Anything else (file://, ftp://) would let urllib read or write where no
    # alert should go.
    ok = value == "" or value.startswith(("http://", "https://"))
    return None if ok else "empty or an http:// or https:// URL"


def _json_object(value: Any) -> str | None:
    try:
        return None if isinstance(json.loads(value), dict) else "a JSON object"
    except ValueError:
        return "a JSON object, like '{\"C\": 0.5}'"


# Rules beyond the type: a negative count or an unknown level would otherwise
# surface far from the config file, as a confusing error deep in a library.
_RULES: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("logging", "level"): _check_level,
    ("logging", "max_bytes"): _non_negative,
    ("logging", "backups"): _non_negative,
    ("history", "keep_days"): _non_negative,
    ("history", "max_bytes"): _non_negative,
    ("features", "push_lateness_seconds"): _non_negative,
    ("features", "max_future_seconds"): _non_negative,
    ("pipelines", "keep_run_folders"): _non_negative,
    ("pipelines", "keep_history_days"): _non_negative,
    ("demo", "drivers"): _positive,
    ("demo", "hours"): _positive,
    ("demo", "labels"): _positive,
    ("demo", "seed"): _non_negative,
    ("training", "test_size"): _fraction,
    ("training", "seed"): _non_negative,
    ("training", "tolerance"): _non_negative,
    ("training", "promote"): _one_of("challenger", "auto"),
    ("training", "gate_metric"): _one_of(*GATE_METRICS),
    ("training", "estimator"): _one_of(*ESTIMATORS),
    ("training", "max_rmse"): _non_negative,
    ("training", "min_auc"): _unit,
    ("training", "min_r2"): lambda v: None if v <= 1 else "a number <= 1",
    ("server", "port"): lambda v: None if 0 <= v < 65536 else "a port number (0-65535)",
    ("server", "max_body_bytes"): _positive,
    ("server", "max_items"): _positive,
    ("server", "alias_refresh_seconds"): _non_negative,
    ("server", "header_timeout_seconds"): _positive_number,
    ("server", "body_timeout_seconds"): _positive_number,
    ("server", "keep_alive_seconds"): _positive_number,
    ("training", "hyperparams"): _json_object,
    ("monitoring", "window_events"): _positive,
    ("monitoring", "window_seconds"): _non_negative,
    ("monitoring", "interval_seconds"): _positive_number,
    ("monitoring", "ks_pvalue"): _fraction,
    ("monitoring", "chi2_pvalue"): _fraction,
    ("monitoring", "psi"): _non_negative,
    ("monitoring", "wasserstein"): _non_negative,
    ("monitoring", "js"): _unit,
    ("monitoring", "dataset_share"): _share,
    ("monitoring", "sample_cap"): _positive,
    ("monitoring", "webhook_url"): _web_url,
    ("monitoring", "webhook_timeout"): _positive_number,
}


@dataclass(frozen=True)
class Config:
    """All settings of one installation; `home` holds all of its state."""

    home: Path
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    pipelines: PipelinesConfig = field(default_factory=PipelinesConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    schedules: SchedulesConfig = field(default_factory=SchedulesConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    alerts: tuple[AlertRule, ...] = DEFAULT_ALERTS

    @classmethod
    def load(
        cls,
        home: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """Build the config; never creates the home directory.

        home: the `--home` flag; else `LITEMLOPS_HOME`, else `./.litemlops`.
        env: the environment to read (`os.environ` when None).
        overrides: `"section.key"` -> value, highest precedence (CLI flags); a string
        value is parsed like an environment variable, None means "not given".
        """
        if env is None:
            env = os.environ
        home_path = resolve_home(home, env).path

        values: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        alerts = _merge_toml(values, home_path / "config.toml")
        _merge_env(values, env)
        _merge_overrides(values, overrides or {})

        sections = {name: kind(**values[name]) for name, kind in _SECTIONS.items()}
        rules = with_default_alerts(
            alerts[0] if alerts else (),
            replace=sections["monitoring"].replace_default_alerts,
            off=alerts[1] if alerts else (),
        )
        _check_webhook(rules, sections["monitoring"])
        return cls(home=home_path, alerts=rules, **sections)

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def features_path(self) -> Path:
        return self.home / "features.duckdb"

    @property
    def online_path(self) -> Path:
        return self.home / "features.online.db"  # where FeatureStore puts it by default

    @property
    def registry_path(self) -> Path:
        return self.home / "registry.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def events_log_path(self) -> Path:
        """The JSONL event log that monitoring reads back."""
        return self.logs_dir / "events.jsonl"

    @property
    def history_dir(self) -> Path:
        """The event history: rotated event files compacted into Parquet."""
        return self.logs_dir / "history"

    @property
    def data_dir(self) -> Path:
        """The demo's data: `incoming/` files wait for the data pipeline, labels, batches."""
        return self.home / "data"

    @property
    def incoming_dir(self) -> Path:
        return self.data_dir / "incoming"

    @property
    def scheduler_lock_path(self) -> Path:
        return self.home / "scheduler.lock"

    @property
    def features_lock_path(self) -> Path:
        """Held by the process whose turn it is with `features.duckdb` (`run`'s workers)."""
        return self.home / "features.lock"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def token_path(self) -> Path:
        return self.home / "token"

    @property
    def lock_path(self) -> Path:
        return self.home / "lock"

    def ensure_home(self) -> None:
        """Create the home (mode 0700 when new) and its logs/, artifacts/, runs/."""
        if self.home.exists() and not self.home.is_dir():
            raise ConfigError(f"home {self.home} exists and is not a directory; use another --home")
        if not self.home.exists():
            self.home.mkdir(parents=True, mode=0o700)
            # mkdir's mode is filtered by the umask; the home may later hold the admin token.
            self.home.chmod(0o700)
        for directory in (self.logs_dir, self.artifacts_dir, self.runs_dir):
            directory.mkdir(exist_ok=True)


def _merge_toml(
    values: dict[str, dict[str, Any]], path: Path
) -> tuple[tuple[AlertRule, ...], frozenset[str]] | None:
    """Merge the file's sections into `values`; return its alert rules and the default
    rules it turns off (None: no `[[alerts]]`)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    alerts = None
    for section, table in document.items():
        if section == "alerts":
            alerts = _alert_rules(table, source=str(path))
            continue
        if section not in _SECTIONS:
            raise ConfigError(
                f"unknown section [{section}] in {path}; known sections: {', '.join(_SECTIONS)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{section} in {path} must be a table [{section}], got {table!r}")
        for key, raw in table.items():
            _check_key(section, key, source=str(path))
            values[section][key] = _coerce(section, key, raw, source=str(path), parse=False)
    return alerts


def _alert_rules(raw: Any, *, source: str) -> tuple[tuple[AlertRule, ...], frozenset[str]]:
    """The `[[alerts]]` tables as rules, and the names `enabled = false` turns off;
    errors name the rule's position and the key."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(
            f"alerts in {source} must be an array of tables: one [[alerts]] header per "
            f"rule, got {raw!r}"
        )
    if not raw:
        # It used to turn the default rules off; now it would silently keep them.
        raise ConfigError(
            f"alerts = [] in {source} adds no rule and does not turn the default rules off; "
            "to run without them, set replace_default_alerts = true in [monitoring]"
        )
    rules: list[AlertRule] = []
    off: dict[str, int] = {}
    for index, table in enumerate(raw, 1):
        where = f"[[alerts]] rule {index}" + (
            f" ({table['name']!r})" if isinstance(table.get("name"), str) else ""
        )
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(
                f"key 'enabled' of {where} in {source} must be true or false, got {enabled!r}"
            )
        if not enabled:
            if set(table) != {"name"} or not isinstance(table["name"], str):
                raise ConfigError(
                    f"{where} in {source} has enabled = false, which turns off the default "
                    "rule it names: give it only a name"
                )
            if table["name"] in off:
                raise ConfigError(
                    f"{where} in {source} has the same name as rule {off[table['name']]}; "
                    "names must be unique"
                )
            off[table["name"]] = index
            continue
        unknown = [k for k in table if k not in _RULE_KEYS]
        if unknown:
            raise ConfigError(
                f"unknown key {unknown[0]!r} in {where} of {source}; "
                f"known keys: {', '.join([*_RULE_KEYS, 'enabled'])}"
            )
        missing = [k for k in _RULE_REQUIRED if k not in table]
        if missing:
            raise ConfigError(f"{where} of {source} lacks {', '.join(missing)}")
        checked: dict[str, Any] = {}
        for key, value in table.items():
            try:
                checked[_RULE_KEYS[key]] = _rule_value(key, value)
            except ValueError as exc:
                raise ConfigError(
                    f"key {key!r} of {where} in {source} must be {exc}, got {value!r}"
                ) from None
        try:
            rule = AlertRule(**checked)
        except ConfigError as exc:
            raise ConfigError(f"{where} in {source}: {exc}") from None
        twin = next((i for i, r in enumerate(rules, 1) if r.name == rule.name), None)
        twin = off.get(rule.name, twin)
        if twin is not None:
            raise ConfigError(
                f"{where} in {source} has the same name as rule {twin}; names must be unique"
            )
        rules.append(rule)
    clash = next((name for name in off if any(r.name == name for r in rules)), None)
    if clash is not None:
        raise ConfigError(
            f"[[alerts]] rule {off[clash]} ({clash!r}) in {source} has the same name as "
            "another rule; names must be unique"
        )
    return tuple(rules), frozenset(off)


def _check_webhook(rules: tuple[AlertRule, ...], monitoring: Any) -> None:
    # Checked once every source is merged: the URL may come from the environment.
    for rule in rules:
        if "webhook" in rule.notify and not monitoring.webhook_url:
            raise ConfigError(
                f"alert rule {rule.name!r} notifies 'webhook' but monitoring.webhook_url "
                "is empty; set it in [monitoring] or LITEMLOPS_MONITORING_WEBHOOK_URL"
            )


def _merge_env(values: dict[str, dict[str, Any]], env: Mapping[str, str]) -> None:
    # Only the known names are looked up: other LITEMLOPS_* variables (HOME,
    # ones a newer version reads) must not make an older one refuse to start.
    for section, kind in _SECTIONS.items():
        for f in fields(kind):
            name = f"{ENV_PREFIX}{section}_{f.name}".upper()
            if name in env:
                values[section][f.name] = _coerce(
                    section, f.name, env[name], source=name, parse=True
                )


def _merge_overrides(values: dict[str, dict[str, Any]], overrides: Mapping[str, Any]) -> None:
    for dotted, raw in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in _SECTIONS or not key:
            raise ConfigError(
                f"unknown config key {dotted!r} in overrides; keys look like "
                f"'section.key' with section one of {', '.join(_SECTIONS)}"
            )
        _check_key(section, key, source="overrides")
        if raw is None:
            continue
        values[section][key] = _coerce(
            section, key, raw, source="overrides", parse=isinstance(raw, str)
        )


def _check_key(section: str, key: str, *, source: str) -> None:
    known = [f.name for f in fields(_SECTIONS[section])]
    if key not in known:
        raise ConfigError(
            f"unknown config key {section}.{key} in {source}; "
            f"known keys of [{section}]: {', '.join(known)}"
        )


def _field_type(section: str, key: str) -> str:
    # Annotations are strings under `from __future__ import annotations`.
    return next(str(f.type) for f in fields(_SECTIONS[section]) if f.name == key)


_EXPECTED = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}


def _coerce(section: str, key: str, raw: Any, *, source: str, parse: bool) -> Any:
    """Turn `raw` into the field's type, or raise a ConfigError naming key, source and value."""
    kind = _field_type(section, key)
    value: Any = None
    if parse:
        value = _parse(kind, str(raw))
    elif _accepts(kind, raw):
        value = float(raw) if kind == "float" else raw
    if (section, key) == ("logging", "level") and value is not None:
        value = value.strip().lower()
    problem = _EXPECTED[kind] if value is None else None
    if problem is None and kind == "float" and not math.isfinite(value):
        problem = "a finite number"
    if problem is None and (section, key) in _RULES:
        problem = _RULES[(section, key)](value)
    if problem is not None:
        raise ConfigError(
            f"config key {section}.{key} from {source} must be {problem}, got {raw!r}"
        )
    return value


def _accepts(kind: str, raw: Any) -> bool:
    # bool is an int subclass, and `drivers = true` is surely a mistake.
    if isinstance(raw, bool):
        return kind == "bool"
    if kind == "int":
        return isinstance(raw, int)
    if kind == "float":
        return isinstance(raw, int | float)
    return kind == "str" and isinstance(raw, str)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(kind: str, text: str) -> Any:
    """Parse an environment string; None when it does not parse."""
    text = text.strip()
    if kind == "str":
        return text
    if kind == "bool":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return None
