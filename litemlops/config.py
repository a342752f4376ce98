"""The one frozen `Config` of an installation, built at the edge and passed explicitly.

These are the platform's own settings. Values come, lowest precedence first, from
the defaults below, the defaults the home's applications give the platform's sections
(the demo's `[server]` model), `<home>/config.toml` (sections `[logging]`, `[history]`,
`[features]`, `[pipelines]`, `[server]`, `[monitoring]`, and the applications' own,
like the demo's `[demo]`, `[training]`, `[schedules]`), the file's `[env.<name>]`
table of the environment chosen (`--env`, `LITEMLOPS_ENV`; see
`litemlops.config_layers`), environment variables `LITEMLOPS_<SECTION>_<KEY>` and
explicit overrides (`{"demo.drivers": 5}`). The
applications are named by a top-level `applications = ["demo"]` in the file,
`LITEMLOPS_APPLICATIONS` or the override `"applications"` (default: the demo; see
`litemlops.applications`); each validates its sections through the same machinery
(`litemlops.config_parse`), and a section nobody owns is an error. Alert
rules are `[[alerts]]` tables in the file only (see `AlertRule`); they add to the
`DEFAULT_ALERTS`, a rule named like a default replaces that default, a table with
only `name` and `enabled = false` turns that default off, and
`[monitoring] replace_default_alerts = true` makes the file's rules the only ones.
`[deployments.<name>]` tables (file only) are deployments `run` starts once each.
Only `Config.load` looks at the environment; everything below it takes a `Config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.alert_rules import (
    DEFAULT_ALERTS,
    NOTIFIERS,
    AlertRule,
    check_webhook,
    parse_condition,
    with_default_alerts,
)
from litemlops.config_layers import chosen_environment, layered
from litemlops.config_parse import (
    ENV_PREFIX,
    Check,
    Schema,
    fraction,
    non_negative,
    positive,
    positive_number,
    read_toml,
    share,
    unit,
    web_url,
)
from litemlops.errors import ConfigError
from litemlops.home import resolve_home

if TYPE_CHECKING:
    from litemlops.applications import Application

#: The applications a home runs when its config names none: the ride-hailing demo.
DEFAULT_APPLICATIONS: tuple[str, ...] = ("demo",)

__all__ = [
    "DEFAULT_ALERTS",
    "DEFAULT_APPLICATIONS",
    "NOTIFIERS",
    "AlertRule",
    "Config",
    "parse_condition",
    "with_default_alerts",
]
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
class ServerConfig:
    """The HTTP server and its prediction service (the course's `/inference`).

    token: the admin token for mutating endpoints; empty means "made at first start
    in <home>/token". Binding an interface other than loopback needs it set here
    (or in LITEMLOPS_SERVER_TOKEN), so nobody exposes the server by accident.
    model, entity, features: the service `/inference` runs: the model URI, the
    entity key its requests list, and the feature references (comma-separated)
    it looks up online for each; the best-scored entity is the prediction. The
    platform has no default for them: an application gives its own (the demo's
    `driver_ranker@champion` over `driver_stats`), and config.toml may set them.
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
    model: str = ""
    entity: str = ""
    features: str = ""
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


_SECTIONS: dict[str, type] = {
    "logging": LoggingConfig,
    "history": HistoryConfig,
    "features": FeaturesConfig,
    "pipelines": PipelinesConfig,
    "server": ServerConfig,
    "monitoring": MonitoringConfig,
}


def _check_level(value: Any) -> str | None:
    return None if value in LOG_LEVELS else f"one of {', '.join(LOG_LEVELS)}"


# Rules beyond the type: a negative count or an unknown level would otherwise
# surface far from the config file, as a confusing error deep in a library.
_RULES: dict[tuple[str, str], Check] = {
    ("logging", "level"): _check_level,
    ("logging", "max_bytes"): non_negative,
    ("logging", "backups"): non_negative,
    ("history", "keep_days"): non_negative,
    ("history", "max_bytes"): non_negative,
    ("features", "push_lateness_seconds"): non_negative,
    ("features", "max_future_seconds"): non_negative,
    ("pipelines", "keep_run_folders"): non_negative,
    ("pipelines", "keep_history_days"): non_negative,
    ("server", "port"): lambda v: None if 0 <= v < 65536 else "a port number (0-65535)",
    ("server", "max_body_bytes"): positive,
    ("server", "max_items"): positive,
    ("server", "alias_refresh_seconds"): non_negative,
    ("server", "header_timeout_seconds"): positive_number,
    ("server", "body_timeout_seconds"): positive_number,
    ("server", "keep_alive_seconds"): positive_number,
    ("monitoring", "window_events"): positive,
    ("monitoring", "window_seconds"): non_negative,
    ("monitoring", "interval_seconds"): positive_number,
    ("monitoring", "ks_pvalue"): fraction,
    ("monitoring", "chi2_pvalue"): fraction,
    ("monitoring", "psi"): non_negative,
    ("monitoring", "wasserstein"): non_negative,
    ("monitoring", "js"): unit,
    ("monitoring", "dataset_share"): share,
    ("monitoring", "sample_cap"): positive,
    ("monitoring", "webhook_url"): web_url,
    ("monitoring", "webhook_timeout"): positive_number,
}


@dataclass(frozen=True)
class Config:
    """All settings of one installation; `home` holds all of its state.

    applications: the names of the applications the home runs (see
    `litemlops.applications`); the default is the ride-hailing demo. sections: their
    config sections, read with `section(name)`.
    """

    home: Path
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    pipelines: PipelinesConfig = field(default_factory=PipelinesConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    alerts: tuple[AlertRule, ...] = DEFAULT_ALERTS
    #: `[deployments.<name>]`: (name, JSON of its table), started by `run` once each.
    deployments: tuple[tuple[str, str], ...] = ()
    applications: tuple[str, ...] = DEFAULT_APPLICATIONS
    # Pairs, not a dict: the config is hashable and crosses to worker processes.
    sections: tuple[tuple[str, Any], ...] = ()
    #: The `[env.<name>]` applied, if any; the file read; ("section.key", the layer that
    #: set it) for each value not left at the platform's default.
    environment: str | None = None
    config_file: Path | None = None
    origins: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(
        cls,
        home: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        environment: str | None = None,
    ) -> Config:
        """Build the config; never creates the home directory.

        home: the `--home` flag; else `LITEMLOPS_HOME`, else `./.litemlops`: the folder
        of `config.toml`, and of the state unless the environment names its own home.
        env: the environment variables to read (`os.environ` when None).
        environment: the `[env.<name>]` to apply (`--env`); else `LITEMLOPS_ENV`.
        overrides: `"section.key"` -> value, highest precedence (CLI flags); a string
        value is parsed like an environment variable, None means "not given";
        `"applications"` -> the application names.
        """
        from litemlops.applications import check_names, load_applications

        if env is None:
            env = os.environ
        home_path = resolve_home(home, env).path
        path = home_path / "config.toml"
        document = read_toml(path)
        overrides = dict(overrides or {})
        names = DEFAULT_APPLICATIONS
        for raw, source in (
            (document.pop("applications", None), str(path)),
            (env.get(f"{ENV_PREFIX}APPLICATIONS"), f"{ENV_PREFIX}APPLICATIONS"),
            (overrides.pop("applications", None), "overrides"),
        ):
            if raw is not None:
                names = check_names(raw, source=source)
        applications = load_applications(names)
        schema = _schema(applications)
        layers = layered(
            schema, applications, document, path, env, overrides,
            chosen_environment(environment, env), _SECTIONS,
        )  # fmt: skip
        values, alerts = layers.values, layers.alerts
        built = {name: kind(**values[name]) for name, kind in schema.sections.items()}
        rules = with_default_alerts(
            alerts[0] if alerts else (),
            replace=built["monitoring"].replace_default_alerts,
            off=alerts[1] if alerts else (),
        )
        check_webhook(rules, built["monitoring"])
        return cls(
            home=layers.home or home_path,
            alerts=rules,
            deployments=tuple(layers.deployments.items()),
            applications=names,
            environment=chosen_environment(environment, env)[0],
            config_file=path,
            origins=tuple(sorted(layers.origins.items())),
            sections=tuple((n, v) for n, v in built.items() if n not in _SECTIONS),
            **{n: v for n, v in built.items() if n in _SECTIONS},
        )

    def section(self, name: str) -> Any:
        """An application's config section (`config.section("demo").drivers`)."""
        for known, value in self.sections:
            if known == name:
                return value
        from litemlops.applications import load_applications

        # A Config made directly, not loaded, has its applications' defaults.
        for application in load_applications(self.applications):
            if name in application.sections:
                return application.sections[name]()
        raise ConfigError(
            f"no config section [{name}]: it belongs to an application this home does "
            f"not run (its applications: {list(self.applications)})"
        )

    def replace_section(self, name: str, **changes: Any) -> Config:
        """This config with some keys of an application's section changed."""
        changed = dataclasses.replace(self.section(name), **changes)
        sections = tuple((n, changed if n == name else v) for n, v in self.sections)
        return dataclasses.replace(self, sections=sections)

    if not TYPE_CHECKING:
        # `config.demo.drivers` as before the demo became an application, for pipelines
        # and tests written then. Hidden from type checkers: typed code says `section`.
        def __getattr__(self, name: str) -> Any:
            # Not before the fields are set (unpickling asks for __setstate__ first).
            if not name.startswith("_") and "sections" in self.__dict__:
                with contextlib.suppress(ConfigError):
                    return self.section(name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def config_path(self) -> Path:
        return self.config_file or self.home / "config.toml"

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
        """The applications' data (the demo's `incoming/` files, labels, batches)."""
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
        try:
            if not self.home.exists():
                self.home.mkdir(parents=True, mode=0o700)
                # mkdir's mode is filtered by the umask; the home may later hold the token.
                self.home.chmod(0o700)
            for directory in (self.logs_dir, self.artifacts_dir, self.runs_dir):
                directory.mkdir(exist_ok=True)
        except OSError as exc:  # a parent that is a file, or that cannot be written
            raise ConfigError(
                f"home {self.home} cannot be made: {exc.strerror or exc} ({exc.filename}); "
                "use another --home"
            ) from None


def _schema(applications: tuple[Application, ...]) -> Schema:
    """The platform's sections and checks, and those of `applications`."""
    sections: dict[str, type] = dict(_SECTIONS)
    checks = dict(_RULES)
    owners = dict.fromkeys(_SECTIONS, "the platform")
    for application in applications:
        for name, kind in application.sections.items():
            if name in owners or name in ("alerts", "applications", "deployments"):
                raise ConfigError(
                    f"application {application.name!r} declares config section [{name}], "
                    f"which {owners.get(name, 'the platform')} has"
                )
            owners[name] = f"application {application.name!r}"
            sections[name] = kind
        checks.update(application.checks)
    hint = (
        "; an application's section needs the application named in `applications` at "
        "the top of config.toml"
    )
    return Schema(sections, checks, unknown_hint=hint)
