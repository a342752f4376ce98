"""The model registry: registered models, numbered versions, aliases with history, loading.

Aliases (`champion`, `challenger`, ...) replace MLflow's stages; every move of an
alias is appended to `alias_history` (when, from which version to which, why),
so "what served on Tuesday" has an answer and `rollback` has somewhere to go.
Loading checks the model file's sha256 before unpickling it. Registering bytes that
a version of the model already holds returns that version (`allow_duplicate` for a
new one), so a retrain that reproduces its model adds no version and moves no alias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.clock import from_ms
from litemlops.errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryStateError,
    ValidationError,
)
from litemlops.logger import get_logger
from litemlops.store.tracking.model_uri import ModelURI, check_alias, check_model_name
from litemlops.store.tracking.tracker import Tracker

if TYPE_CHECKING:
    import sqlite3

    from litemlops.store.tracking.model_io import LoadedModel

log = get_logger("litemlops.registry")
# Rows with their latest version and aliases attached: one query per listing.
_MODELS = (
    "SELECT m.*, (SELECT max(version) FROM model_versions v WHERE v.name = m.name) AS latest, "
    "(SELECT json_group_object(alias, version) FROM aliases a WHERE a.name = m.name) "
    "AS alias_map FROM registered_models m"
)
_VERSIONS = (
    "SELECT v.*, (SELECT json_group_array(alias) FROM aliases a WHERE a.name = v.name "
    "AND a.version = v.version) AS alias_list FROM model_versions v"
)


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    aliases: dict[str, int]


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str
    model_name: str
    sha256: str
    description: str
    created_at: datetime
    aliases: tuple[str, ...]
    lineage: dict[str, Any]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class AliasChange:
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str
    at: datetime
    action: str = "set"  # "set", "delete" or "rollback"


class ModelRegistry:
    """Registry operations on a `Tracker`'s database and artifact store."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self.db = tracker.db

    # -- registered models ------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create a registered model, or return it if it exists (description kept)."""
        check_model_name(name)
        now = self.tracker.now_ms()
        with self.db.write() as con:
            con.execute(
                "INSERT OR IGNORE INTO registered_models (name, description, tags, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                [name, description, json.dumps(dict(tags or {})), now, now],
            )
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        rows = self.db.read(f"{_MODELS} WHERE m.name = ?", [name])
        if not rows:
            raise ModelNotFoundError(f"no registered model named {name!r}")
        return self._registered(rows[0])

    def list_registered_models(self) -> list[RegisteredModel]:
        rows = self.db.read(f"{_MODELS} ORDER BY m.name")
        return [self._registered(r) for r in rows]

    def _registered(self, row: sqlite3.Row) -> RegisteredModel:
        name = row["name"]
        aliases = dict(sorted(json.loads(row["alias_map"]).items()))
        created, updated = from_ms(row["created_at"]), from_ms(row["updated_at"])
        assert created is not None and updated is not None
        return RegisteredModel(
            name=name,
            description=row["description"],
            tags=json.loads(row["tags"]),
            created_at=created,
            updated_at=updated,
            latest_version=row["latest"],
            aliases=aliases,
        )

    # -- versions -----------------------------------------------------------------------

    def register_model(
        self,
        model_uri: str,
        name: str,
        description: str = "",
        *,
        allow_unfinished: bool = False,
        allow_duplicate: bool = False,
    ) -> ModelVersion:
        """Register the model at `runs:/<run_id>/<model>` as the next version of `name`.

        When a version of `name` already holds the very same bytes (sha256), that
        version is returned, its description and lineage unchanged, and a
        `model_version_reused` event says so; `allow_duplicate=True` makes a new
        version anyway.

        The version's lineage records the run, its params and metrics, its git
        commit, and its inputs (feature views with their definition versions,
        training data fingerprint), frozen at registration. Models of failed or
        killed runs are refused; of a running run only with `allow_unfinished`
        (its lineage then lacks what the run logs later).
        """
        source = _logged_model_uri(model_uri)
        run_id, model_name = source.run_id, source.name
        assert run_id is not None  # _logged_model_uri refuses the others
        check_model_name(name)
        logged = self.tracker.logged_model(run_id, model_name)
        run = self.tracker.get_run(run_id)
        if run.status in ("failed", "killed"):
            raise RegistryStateError(
                f"run {run_id} {run.status} ({run.error}); its model is not registered"
            )
        if run.status == "running" and not allow_unfinished:
            raise RegistryStateError(
                f"run {run_id} is still running: end it first so the version's lineage is "
                "complete, or pass allow_unfinished=True"
            )
        lineage = {
            "run_id": run.run_id,
            "experiment": run.experiment,
            "run_name": run.name,
            "run_status": run.status,
            "git_commit": run.git_commit,
            "params": run.params,
            "metrics": run.metrics,
            "inputs": self.tracker.run_inputs(run_id),
            "model": {
                "name": model_name,
                "sha256": logged.sha256,
                "size": logged.size,
                "environment": logged.environment,
                "signature": logged.signature,
            },
        }
        self.create_registered_model(name)
        now = self.tracker.now_ms()
        with self.db.write() as con:
            # Looked up in the transaction that would insert: two registrations of the
            # same bytes at once still give one version.
            same = None if allow_duplicate else con.execute(
                "SELECT max(version) FROM model_versions WHERE name = ? AND sha256 = ?",
                [name, logged.sha256],
            ).fetchone()[0]
            if same is None:
                version = 1 + con.execute(
                    "SELECT coalesce(max(version), 0) FROM model_versions WHERE name = ?", [name]
                ).fetchone()[0]
                con.execute(
                    "INSERT INTO model_versions (name, version, run_id, model_name, sha256, "
                    "description, lineage, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        name,
                        version,
                        run_id,
                        model_name,
                        logged.sha256,
                        description,
                        json.dumps(lineage, sort_keys=True, default=str),
                        now,
                    ],
                )
                con.execute(
                    "UPDATE registered_models SET updated_at = ? WHERE name = ?", [now, name]
                )
        if same is not None:
            existing = self.get_model_version(name, same)
            log.info(
                events.MODEL_VERSION_REUSED,
                registered_model=name,
                existing_version=same,
                sha256=logged.sha256,
                tracking_run=run_id,
                registered_by=existing.run_id,
            )
            return existing
        return self.get_model_version(name, version)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**63:
            raise ModelVersionNotFoundError(f"model {name!r} has no version {version!r}")
        rows = self.db.read(f"{_VERSIONS} WHERE v.name = ? AND v.version = ?", [name, version])
        if not rows:
            self.get_registered_model(name)
            raise ModelVersionNotFoundError(f"model {name!r} has no version {version}")
        return self._version(rows[0])

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.get_registered_model(name)
        rows = self.db.read(f"{_VERSIONS} WHERE v.name = ? ORDER BY v.version DESC", [name])
        return [self._version(r) for r in rows]

    def _version(self, row: sqlite3.Row) -> ModelVersion:
        aliases = tuple(sorted(json.loads(row["alias_list"])))
        created = from_ms(row["created_at"])
        assert created is not None
        return ModelVersion(
            name=row["name"],
            version=row["version"],
            run_id=row["run_id"],
            model_name=row["model_name"],
            sha256=row["sha256"],
            description=row["description"],
            created_at=created,
            aliases=aliases,
            lineage=json.loads(row["lineage"]),
        )

    def set_description(self, name: str, description: str, version: int | None = None) -> None:
        """Describe a registered model, or one of its versions."""
        if not isinstance(description, str) or len(description) > 5000:
            raise ValidationError("a description is text of at most 5000 characters")
        if version is None:
            self.get_registered_model(name)
            table, where = "registered_models", "name = ?"
            params: list[object] = [name]
        else:
            self.get_model_version(name, version)
            table, where = "model_versions", "name = ? AND version = ?"
            params = [name, version]
        with self.db.write() as con:
            con.execute(f"UPDATE {table} SET description = ? WHERE {where}", [description, *params])
            con.execute(
                "UPDATE registered_models SET updated_at = ? WHERE name = ?",
                [self.tracker.now_ms(), name],
            )

    # -- aliases ------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
        """Point `alias` at `version`; the move is appended to the alias history."""
        check_alias(alias)
        target = self.get_model_version(name, version)
        self._move(name, alias, target.version, reason or "set")
        return self.get_model_version(name, target.version)

    def delete_alias(self, name: str, alias: str, reason: str = "") -> None:
        self.get_alias(name, alias)
        self._move(name, alias, None, reason or "deleted", action="delete")

    def _move(
        self, name: str, alias: str, version: int | None, reason: str, action: str = "set"
    ) -> None:
        now = self.tracker.now_ms()
        with self.db.write() as con:
            _record_move(con, name, alias, version, reason, action, now)

    def get_alias(self, name: str, alias: str) -> ModelVersion:
        rows = self.db.read(
            "SELECT version FROM aliases WHERE name = ? AND alias = ?", [name, alias]
        )
        if not rows:
            self.get_registered_model(name)
            raise AliasNotFoundError(f"model {name!r} has no alias {alias!r}")
        return self.get_model_version(name, rows[0]["version"])

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every move of the model's aliases (or one alias), oldest first."""
        self.get_registered_model(name)
        where, params = "name = ?", [name]
        if alias is not None:
            where += " AND alias = ?"
            params.append(alias)
        rows = self.db.read(f"SELECT * FROM alias_history WHERE {where} ORDER BY id", params)
        if alias is not None and not rows:
            raise AliasNotFoundError(f"model {name!r} has never had an alias {alias!r}")
        return [
            AliasChange(
                r["name"],
                r["alias"],
                r["from_version"],
                r["to_version"],
                r["reason"],
                _at(r["at"]),
                r["action"],
            )
            for r in rows
        ]

    def rollback(self, name: str, alias: str, reason: str = "") -> ModelVersion:
        """Point `alias` back at the version it held before the last move that set it.

        Moves form a stack: a set (or delete) pushes, a rollback pops. Rolling
        back twice after setting 1, 2, 3 gives 2 then 1, never the version just
        rolled back from. A deleted alias can be rolled back into place.
        """
        self.alias_history(name, alias)  # the model, and an alias it has had
        now = self.tracker.now_ms()
        with self.db.write() as con:
            # Read in the transaction that moves the alias, so a rollback made meanwhile
            # is seen: read before, it could be undone (moving back to the version it left).
            moves = con.execute(
                "SELECT action, to_version FROM alias_history WHERE name = ? AND alias = ? "
                "ORDER BY id",
                [name, alias],
            ).fetchall()
            stack: list[int | None] = []
            for action, to_version in moves:
                if action == "rollback":
                    # Each was recorded with at least two versions on the stack: the
                    # first move is a set, and the stack never empties after it.
                    del stack[-1:]
                else:
                    stack.append(to_version)
            if len(stack) < 2 or stack[-2] is None:
                raise RegistryStateError(
                    f"alias {alias!r} of model {name!r} has no earlier version to roll back to"
                )
            target, current = stack[-2], stack[-1]
            why = reason or f"rollback from version {current}"
            _record_move(con, name, alias, target, why, "rollback", now)
        return self.get_model_version(name, target)

    # -- loading ------------------------------------------------------------------------

    def resolve(self, uri: str | ModelURI) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
        """(sha256, signature, metadata) of the model file any model URI names.

        A registry version loads the file recorded when it was registered, with
        the signature frozen then, whatever happens to its run afterwards.
        """
        ref = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
        meta: dict[str, Any] = {"uri": str(uri)}
        if ref.run_id is not None:
            logged = self.tracker.logged_model(ref.run_id, ref.name)
            meta.update(run_id=ref.run_id, environment=logged.environment)
            return logged.sha256, logged.signature, meta
        if ref.alias is not None:
            version = self.get_alias(ref.name, ref.alias)
            meta["alias"] = ref.alias
        else:
            assert ref.version is not None  # a registered model's URI names one or the other
            version = self.get_model_version(ref.name, ref.version)
        model = version.lineage.get("model", {})
        meta.update(
            name=version.name,
            version=version.version,
            run_id=version.run_id,
            environment=model.get("environment", {}),
        )
        return version.sha256, model.get("signature"), meta

    def load_model(self, uri: str | ModelURI) -> LoadedModel:
        """Load a model by URI after checking its sha256; refuses a file that changed."""
        from litemlops.errors import ArtifactNotFoundError
        from litemlops.store.tracking.model_io import load_verified_model
        from litemlops.store.tracking.signature import Signature

        sha256, signature, meta = self.resolve(uri)
        sig = Signature.from_dict(signature) if signature else None
        try:
            return load_verified_model(self.tracker.artifacts, sha256, sig, meta)
        except ArtifactNotFoundError:
            raise ArtifactNotFoundError(
                f"the file of model {uri!r} (sha256 {sha256}) is missing from the artifact "
                "store; it was deleted or the home was copied without artifacts/"
            ) from None


def _record_move(
    con: sqlite3.Connection,
    name: str,
    alias: str,
    version: int | None,
    reason: str,
    action: str,
    now: int,
) -> None:
    """Point the alias at `version` (None: delete it) and append the move to its history,
    in the caller's write transaction; a move to where it already is records nothing."""
    row = con.execute(
        "SELECT version FROM aliases WHERE name = ? AND alias = ?", [name, alias]
    ).fetchone()
    current = row[0] if row else None
    if current == version:
        return  # nothing moves, nothing to record
    if version is None:
        con.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", [name, alias])
    else:
        con.execute(
            "INSERT INTO aliases (name, alias, version, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, "
            "updated_at = excluded.updated_at",
            [name, alias, version, now],
        )
    con.execute(
        "INSERT INTO alias_history (name, alias, from_version, to_version, reason, at, "
        "action) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [name, alias, current, version, reason, now, action],
    )


def _at(ms: int) -> datetime:
    value = from_ms(ms)
    assert value is not None  # the column is NOT NULL
    return value


def _logged_model_uri(uri: object) -> ModelURI:
    """The `runs:/<run_id>/<model>` URI a version is registered from."""
    runs_form = f"model URI {uri!r} is not 'runs:/<run_id>/<model name>'"
    try:
        source = ModelURI.parse(uri)
    except ValidationError as exc:
        raise ValidationError(f"{runs_form}: {exc}") from None
    if source.run_id is None:
        raise ValidationError(f"{runs_form}: versions are registered from models logged in runs")
    return source
