"""Applying definitions: what changes, whether stored rows can follow, and writing it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from litemlops.errors import DefinitionError
from litemlops.store.features import offline
from litemlops.store.features.definitions import (
    Entity,
    FeatureView,
    Field,
    ResolvedView,
    entity_incompatibilities,
    fingerprint,
    incompatibilities,
    refuse,
    resolve,
)
from litemlops.store.features.online import OnlineStore


@dataclass
class ApplyPlan:
    """What one apply() writes: new entity versions and view changes.

    views: (new definition, current one or None, incompatibilities being forced).
    """

    names: list[str]
    entities: list[tuple[Entity, int]] = field(default_factory=list)
    views: list[tuple[ResolvedView, ResolvedView | None, list[str]]] = field(default_factory=list)


def plan_apply(
    defs: offline.Definitions,
    objects: Entity | FeatureView | Iterable[Entity | FeatureView],
    force: bool,
) -> ApplyPlan:
    """Validate `objects` against what is stored; raise before anything is written."""
    items = [objects] if isinstance(objects, Entity | FeatureView) else list(objects)
    entities: dict[str, Entity] = {}
    views: dict[str, FeatureView] = {}
    for obj in items:
        target: dict[str, Entity] | dict[str, FeatureView]
        if isinstance(obj, Entity):
            target = entities
        elif isinstance(obj, FeatureView):
            target = views
        else:
            raise DefinitionError(f"apply() takes Entity and FeatureView objects, got {obj!r}")
        if obj.name in target and target[obj.name] != obj:
            raise DefinitionError(f"two different definitions named {obj.name!r} in one apply()")
        target[obj.name] = obj  # type: ignore[assignment]
    for view in views.values():
        for ent in view.entities:
            if isinstance(ent, Entity) and ent.name not in entities:
                entities[ent.name] = ent
    plan = ApplyPlan(names=sorted({*entities, *views}))
    for name, ent in entities.items():
        stored = defs.entities.get(name)
        if stored is not None and stored[0] == ent:
            continue
        problems = entity_incompatibilities(stored[0].spec(), ent.spec()) if stored else []
        if problems and not force:
            raise refuse("entity", name, problems)
        users = sorted(
            v.name
            for v in defs.views.values()
            if name in v.view.entity_names and v.name not in views
        )
        if problems and users:
            raise DefinitionError(
                f"entity {name!r} changes its keys ({'; '.join(problems)}) but feature "
                f"view(s) {users} that use it are not in this apply(); include them so "
                "their stored rows are archived with the change"
            )
        plan.entities.append((ent, (stored[1] + 1) if stored else 1))
    merged = {**{name: ent for name, (ent, _) in defs.entities.items()}, **entities}
    for name, view in views.items():
        resolved = resolve(view, merged)
        current = defs.views.get(name)
        if current is not None and current.spec() == resolved.spec():
            continue
        problems = incompatibilities(current.spec(), resolved.spec()) if current else []
        if problems and not force:
            raise refuse("feature view", name, problems)
        plan.views.append((resolved, current, problems))
    return plan


def write_apply(
    con: duckdb.DuckDBPyConnection, online: OnlineStore, plan: ApplyPlan, now: datetime
) -> list[str]:
    """Write the plan in one DuckDB transaction, then shape the online tables to match."""
    changed = []
    online_work: list[Callable[[], None]] = []
    con.execute("BEGIN TRANSACTION")
    try:
        for ent, version in plan.entities:
            spec = ent.spec()
            offline.save_definition(
                con, "entity", ent.name, version, 0, spec, fingerprint(spec), now
            )
            changed.append(ent.name)
        for resolved, current, problems in plan.views:
            name = resolved.name
            generation = current.generation if current else 1
            version = current.version + 1 if current else 1
            if current is None:
                offline.create_table(con, resolved)

                def create(r: ResolvedView = resolved) -> None:
                    online.create(r)

                online_work.append(create)
            elif problems:  # forced incompatible change: keep the old rows aside
                offline.archive_table(con, name, generation)
                generation += 1
                offline.create_table(con, resolved)

                def recreate(r: ResolvedView = resolved) -> None:
                    online.drop(r.name)
                    online.create(r)

                online_work.append(recreate)
            else:
                added = [f for f in resolved.features if current.feature(f.name) is None]
                offline.add_columns(con, name, added)

                def extend(r: ResolvedView = resolved, a: list[Field] = added) -> None:
                    if not online.create(r):
                        online.add_columns(r.name, a)

                online_work.append(extend)
            spec = resolved.spec()
            offline.save_definition(
                con, "view", name, version, generation, spec, fingerprint(spec), now
            )
            changed.append(name)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for work in online_work:
        work()
    return changed
