"""Feature definitions: `Entity`, `Field`, `FeatureView`, named as in Feast."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from litemlops.errors import DefinitionError, IncompatibleChangeError

#: dtype name -> (DuckDB type, SQLite affinity)
DTYPES: dict[str, tuple[str, str]] = {
    "int32": ("INTEGER", "INTEGER"),
    "int64": ("BIGINT", "INTEGER"),
    "float32": ("FLOAT", "REAL"),
    "float64": ("DOUBLE", "REAL"),
    "bool": ("BOOLEAN", "INTEGER"),
    "string": ("VARCHAR", "TEXT"),
    "timestamp": ("TIMESTAMP", "INTEGER"),
}
KEY_DTYPES = frozenset({"int32", "int64", "string"})
MAX_TTL = timedelta(days=365_250)  # a thousand years; beyond it, say None (no limit)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


def check_name(name: object, what: str) -> str:
    """Return `name` if it is a safe identifier, else raise `DefinitionError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(
            f"invalid {what} name {name!r}: use a letter followed by letters, digits or "
            "underscores, at most 63 characters"
        )
    return name


def _check_tags(tags: Mapping[str, str] | None, owner: str) -> dict[str, str]:
    tags = dict(tags or {})
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise DefinitionError(f"tags must map strings to strings, got {key!r}: {value!r}")
    return tags


@dataclass(frozen=True)
class Field:
    """A named, typed column: `Field("conv_rate", "float64")`."""

    name: str
    dtype: str

    def __post_init__(self) -> None:
        check_name(self.name, "field")
        if self.dtype not in DTYPES:
            raise DefinitionError(
                f"field {self.name!r} has unknown dtype {self.dtype!r}; "
                f"use one of {', '.join(DTYPES)}"
            )


@dataclass(frozen=True)
class Entity:
    """What features describe (a driver); `join_keys` are its key columns."""

    name: str
    join_keys: Sequence[str] | None = None
    value_type: str = "int64"
    description: str = ""
    tags: Mapping[str, str] | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "entity")
        keys = tuple(self.join_keys) if self.join_keys is not None else (self.name,)
        if isinstance(self.join_keys, str):
            keys = (self.join_keys,)
        if not keys:
            raise DefinitionError(f"entity {self.name!r} needs at least one join key")
        for key in keys:
            check_name(key, "join key")
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"entity {self.name!r} repeats a join key: {list(keys)}")
        if self.value_type not in KEY_DTYPES:
            raise DefinitionError(
                f"entity {self.name!r} value_type {self.value_type!r} cannot be a key; "
                f"use one of {', '.join(sorted(KEY_DTYPES))}"
            )
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "tags", _check_tags(self.tags, self.owner))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.join_keys or ())

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "join_keys": list(self.keys),
            "value_type": self.value_type,
            "description": self.description,
            "tags": dict(self.tags or {}),
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Entity:
        return cls(**spec)


@dataclass(frozen=True)
class FeatureView:
    """A table of feature values per entity over event time.

    `ttl` bounds how old a value may be when joined or served (None: no limit);
    `timestamp_field` is the event time, `created_timestamp_field` breaks ties
    between rows with equal event times (the latest created wins).
    """

    name: str
    entities: Sequence[Entity | str]
    schema: Sequence[Field]
    ttl: timedelta | None = None
    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    online: bool = True
    description: str = ""
    tags: Mapping[str, str] | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "feature view")
        if isinstance(self.entities, Entity | str):
            object.__setattr__(self, "entities", (self.entities,))
        entities = tuple(self.entities)
        if not entities:
            raise DefinitionError(f"feature view {self.name!r} needs at least one entity")
        for entity in entities:
            if not isinstance(entity, Entity | str):
                raise DefinitionError(
                    f"feature view {self.name!r}: entities must be Entity objects or names, "
                    f"got {entity!r}"
                )
            if isinstance(entity, str):
                check_name(entity, "entity")
        object.__setattr__(self, "entities", entities)
        schema = tuple(self.schema)
        for item in schema:
            if not isinstance(item, Field):
                raise DefinitionError(
                    f"feature view {self.name!r}: schema must hold Field objects, got {item!r}"
                )
        names = [f.name for f in schema]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise DefinitionError(f"feature view {self.name!r} repeats fields {duplicated}")
        object.__setattr__(self, "schema", schema)
        if self.ttl is not None:
            if not isinstance(self.ttl, timedelta):
                raise DefinitionError(
                    f"feature view {self.name!r}: ttl must be a timedelta or None, got {self.ttl!r}"
                )
            if self.ttl < timedelta(0):
                raise DefinitionError(f"feature view {self.name!r}: ttl must not be negative")
            if self.ttl > MAX_TTL:
                raise DefinitionError(
                    f"feature view {self.name!r}: ttl {self.ttl} is over {MAX_TTL.days} days; "
                    "use None for no limit"
                )
            if self.ttl == timedelta(0):  # Feast's convention: 0 means no limit
                object.__setattr__(self, "ttl", None)
        check_name(self.timestamp_field, "timestamp field")
        if self.created_timestamp_field is not None:
            check_name(self.created_timestamp_field, "created timestamp field")
            if self.created_timestamp_field == self.timestamp_field:
                raise DefinitionError(
                    f"feature view {self.name!r}: created_timestamp_field must differ from "
                    "timestamp_field"
                )
        for ts_field in (self.timestamp_field, self.created_timestamp_field):
            for item in schema:
                if item.name == ts_field and item.dtype != "timestamp":
                    raise DefinitionError(
                        f"feature view {self.name!r}: {ts_field!r} is a timestamp field but "
                        f"the schema declares it {item.dtype!r}"
                    )
        if not isinstance(self.online, bool):
            raise DefinitionError(f"feature view {self.name!r}: online must be True or False")
        object.__setattr__(self, "tags", _check_tags(self.tags, self.owner))

    @property
    def entity_names(self) -> tuple[str, ...]:
        return tuple(e if isinstance(e, str) else e.name for e in self.entities)


@dataclass(frozen=True)
class ResolvedView:
    """A feature view with its entities resolved to typed key columns: what is stored."""

    view: FeatureView
    keys: tuple[Field, ...]
    features: tuple[Field, ...]
    version: int = 0
    generation: int = 1
    entity_specs: tuple[dict[str, Any], ...] = field(default=())

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def timestamp_field(self) -> str:
        return self.view.timestamp_field

    @property
    def created_field(self) -> str | None:
        return self.view.created_timestamp_field

    @property
    def columns(self) -> tuple[Field, ...]:
        """Stored columns in order: keys, event time, created time, features."""
        cols = [*self.keys, Field(self.timestamp_field, "timestamp")]
        if self.created_field:
            cols.append(Field(self.created_field, "timestamp"))
        return (*cols, *self.features)

    def feature(self, name: str) -> Field | None:
        for item in self.features:
            if item.name == name:
                return item
        return None

    def spec(self) -> dict[str, Any]:
        v = self.view
        return {
            "name": v.name,
            "entities": list(v.entity_names),
            "keys": [[k.name, k.dtype] for k in self.keys],
            "features": [[f.name, f.dtype] for f in self.features],
            "ttl_seconds": v.ttl.total_seconds() if v.ttl is not None else None,
            "timestamp_field": v.timestamp_field,
            "created_timestamp_field": v.created_timestamp_field,
            "online": v.online,
            "description": v.description,
            "tags": dict(v.tags or {}),
            "owner": v.owner,
        }

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], version: int, generation: int, entities: Iterable[Entity]
    ) -> ResolvedView:
        ttl = spec["ttl_seconds"]
        view = FeatureView(
            name=spec["name"],
            entities=list(entities),
            schema=[Field(n, d) for n, d in spec["features"]],
            ttl=timedelta(seconds=ttl) if ttl is not None else None,
            timestamp_field=spec["timestamp_field"],
            created_timestamp_field=spec["created_timestamp_field"],
            online=spec["online"],
            description=spec["description"],
            tags=spec["tags"],
            owner=spec["owner"],
        )
        return cls(
            view=view,
            keys=tuple(Field(n, d) for n, d in spec["keys"]),
            features=tuple(Field(n, d) for n, d in spec["features"]),
            version=version,
            generation=generation,
        )


def resolve(view: FeatureView, entities: Mapping[str, Entity]) -> ResolvedView:
    """Resolve a view's entities to key columns and split its schema into keys and features."""
    keys: list[Field] = []
    by_name = {f.name: f for f in view.schema}
    for entity_ref in view.entities:
        entity = entities.get(entity_ref if isinstance(entity_ref, str) else entity_ref.name)
        if entity is None:
            raise DefinitionError(
                f"feature view {view.name!r} uses entity {entity_ref!r}, which is neither applied "
                "nor in this apply() call"
            )
        if isinstance(entity_ref, Entity) and entity_ref != entity:
            raise DefinitionError(
                f"feature view {view.name!r} carries a different definition of entity "
                f"{entity.name!r} than the one being applied"
            )
        for key in entity.keys:
            declared = by_name.get(key)
            dtype = declared.dtype if declared is not None else entity.value_type
            if dtype not in KEY_DTYPES:
                raise DefinitionError(
                    f"feature view {view.name!r}: join key {key!r} has dtype {dtype!r}; keys "
                    f"must be one of {', '.join(sorted(KEY_DTYPES))}"
                )
            if any(k.name == key for k in keys):
                raise DefinitionError(f"feature view {view.name!r}: join key {key!r} repeats")
            keys.append(Field(key, dtype))
    reserved = {k.name for k in keys} | {view.timestamp_field}
    if view.created_timestamp_field:
        reserved.add(view.created_timestamp_field)
    features = tuple(f for f in view.schema if f.name not in reserved)
    if not features:
        raise DefinitionError(f"feature view {view.name!r} has no feature fields in its schema")
    return ResolvedView(view=view, keys=tuple(keys), features=features)


def fingerprint(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def incompatibilities(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Changes from `old` to `new` view spec that stored rows cannot follow."""
    problems = []
    if old["keys"] != new["keys"]:
        problems.append(f"join keys {old['keys']} -> {new['keys']}")
    for name in ("timestamp_field", "created_timestamp_field"):
        if old[name] != new[name]:
            problems.append(f"{name} {old[name]!r} -> {new[name]!r}")
    new_features = dict(map(tuple, new["features"]))
    for fname, dtype in old["features"]:
        if fname not in new_features:
            problems.append(f"feature {fname!r} removed")
        elif new_features[fname] != dtype:
            problems.append(f"feature {fname!r} dtype {dtype} -> {new_features[fname]}")
    return problems


def entity_incompatibilities(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in ("join_keys", "value_type"):
        if old[name] != new[name]:
            problems.append(f"{name} {old[name]!r} -> {new[name]!r}")
    return problems


def refuse(kind: str, name: str, problems: list[str]) -> IncompatibleChangeError:
    return IncompatibleChangeError(
        f"{kind} {name!r} cannot change incompatibly ({'; '.join(problems)}): stored rows "
        "follow the old definition. Pass force=True (CLI: --force) to archive the old rows "
        "and start the view afresh, or apply it under a new name"
    )
