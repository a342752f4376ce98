"""The one schema registry.db had before each table group got its owner, frozen.

Homes made by litemlops of that time hold this schema at `PRAGMA user_version`
1-5; these are its migrations as they were, so the tests can build such a home at
any of its versions and check that today's owners upgrade it in place.
"""

LEGACY_MIGRATIONS: list[str] = [
    """
    CREATE TABLE experiments (
        experiment_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments (experiment_id),
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'killed')),
        start_time INTEGER NOT NULL,
        end_time INTEGER,
        parent_run_id TEXT REFERENCES runs (run_id),
        git_commit TEXT,
        error TEXT
    );
    CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, run_id);
    CREATE INDEX runs_by_parent ON runs (parent_run_id);
    CREATE TABLE run_tags (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE params (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        step INTEGER NOT NULL,
        timestamp INTEGER NOT NULL
    );
    CREATE INDEX metrics_by_run ON metrics (run_id, key, step);
    CREATE TABLE latest_metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        step INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        experiment_id INTEGER NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX latest_by_key ON latest_metrics (experiment_id, key, value, run_id);
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, path)
    ) WITHOUT ROWID;
    CREATE TABLE logged_models (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        python_version TEXT NOT NULL,
        libraries TEXT NOT NULL,
        signature TEXT,
        input_example TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE run_inputs (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        details TEXT NOT NULL,
        PRIMARY KEY (run_id, kind, name)
    ) WITHOUT ROWID;
    CREATE TABLE registered_models (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE model_versions (
        name TEXT NOT NULL REFERENCES registered_models (name),
        version INTEGER NOT NULL,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        model_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        lineage TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE aliases (
        name TEXT NOT NULL REFERENCES registered_models (name),
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (name, alias)
    );
    CREATE TABLE alias_history (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        from_version INTEGER,
        to_version INTEGER,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX alias_history_by_alias ON alias_history (name, alias, id);
    """,
    # 2: who runs a run (so only runs of dead processes are marked interrupted),
    # and what each alias move was (rollbacks pop the alias's stack of versions).
    """
    ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE alias_history ADD COLUMN action TEXT NOT NULL DEFAULT 'set';
    """,
    # 3: pipeline run history.
    """
    CREATE TABLE pipeline_runs (
        run_id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed',
                                             'skipped')),
        trigger TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        params TEXT NOT NULL DEFAULT '{}',
        queued_at INTEGER NOT NULL,
        started_at INTEGER,
        ended_at INTEGER,
        error TEXT,
        host TEXT,
        pid INTEGER
    );
    CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, queued_at DESC);
    CREATE TABLE task_runs (
        run_id TEXT NOT NULL REFERENCES pipeline_runs (run_id),
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed',
                                             'skipped', 'up_for_retry')),
        started_at INTEGER,
        ended_at INTEGER,
        error TEXT,
        traceback TEXT,
        output TEXT,
        PRIMARY KEY (run_id, task, attempt)
    );
    """,
    # 4: when the process started, so a pid the kernel gave to a new process (a
    # container's pid 1 after a restart) is not taken for the one that died.
    """
    ALTER TABLE runs ADD COLUMN proc_start INTEGER;
    ALTER TABLE pipeline_runs ADD COLUMN proc_start INTEGER;
    """,
    # 5: alert rules' states and transitions, so a restart keeps a pending alert's
    # timer and a firing one's cooldown (times in ms since the epoch).
    """
    CREATE TABLE alert_states (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('normal', 'pending', 'firing', 'resolved')),
        metric TEXT NOT NULL,
        value REAL,
        since INTEGER NOT NULL,
        pending_since INTEGER,
        fired_at INTEGER,
        resolved_at INTEGER,
        last_notified_at INTEGER,
        episode_notified INTEGER NOT NULL DEFAULT 0,
        evaluated_at INTEGER,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL,
        at INTEGER NOT NULL,
        fired_at INTEGER,
        notified TEXT NOT NULL DEFAULT '[]',
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alert_history_by_name ON alert_history (name, id);
    """,
]
