"""Online reads: a request plan per feature list, key checks, and rows for the online store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from litemlops.clock import from_micros
from litemlops.errors import ValidationError
from litemlops.store.features import offline
from litemlops.store.features.definitions import Field, ResolvedView
from litemlops.store.features.online import OnlineStore
from litemlops.store.features.refs import Requests
from litemlops.store.features.results import OnlineResponse

MICROSECOND = timedelta(microseconds=1)  # exact integer division, unlike total_seconds()


@dataclass(frozen=True)
class Plan:
    """A parsed online request, cached per feature list: what to read and how to name it.

    views: per view, (index into the stored row, output column) pairs; the index
    one past the features is the event time. dtypes: each output column's declared type.
    """

    views: tuple[tuple[ResolvedView, tuple[tuple[int, str], ...]], ...]
    keys: tuple[Field, ...]
    dtypes: Mapping[str, str]


def build_plan(requests: Requests, with_event_timestamps: bool) -> Plan:
    keys: dict[str, Field] = {}
    views = []
    for view, pairs in requests:
        if not view.view.online:
            raise ValidationError(f"feature view {view.name!r} is not online")
        for key in view.keys:
            keys.setdefault(key.name, key)
        index = {name: i for i, name in enumerate(view.feature_names)}
        wanted = tuple((index[f], out) for f, out in pairs)
        if with_event_timestamps:
            wanted += ((len(view.features), f"{view.name}__event_timestamp"),)
        views.append((view, wanted))
    dtypes = {k.name: k.dtype for k in keys.values()}
    for view, wanted in views:
        for at, out in wanted:
            dtypes[out] = view.features[at].dtype if at < len(view.features) else "timestamp"
    return Plan(tuple(views), tuple(keys.values()), MappingProxyType(dtypes))


def read(
    online: OnlineStore, plan: Plan, entity_rows: Sequence[Mapping[str, Any]], now_us: int
) -> OnlineResponse:
    """Look every entity row up; unknown entities and values past ttl give None."""
    if isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence):
        raise ValidationError("entity_rows must be a list of dicts like [{'driver_id': 1001}]")
    columns: dict[str, list[Any]] = {k.name: [] for k in plan.keys}
    for i, row in enumerate(entity_rows):
        if type(row) is not dict and not isinstance(row, Mapping):
            raise ValidationError(f"entity row {i} is not a dict: {row!r}")
        for key in plan.keys:
            columns[key.name].append(key_value(row, key, i))
    response = OnlineResponse(columns)
    response.dtypes = plan.dtypes
    for view, wanted in plan.views:
        if len(view.keys) == 1:
            key_tuples = [(k,) for k in columns[view.keys[0].name]]
        else:
            key_tuples = list(zip(*(columns[k] for k in view.key_names), strict=True))
        found = online.lookup(view, key_tuples)
        ttl = view.view.ttl
        nfeat = len(view.features)
        # Per entity its stored row, or None (unknown, or older than the ttl); then
        # each column in one pass: a request asks for a few entities, so the cost is
        # the interpreter's per item, not the data.
        rows = [found.get(k) for k in key_tuples]
        if ttl is not None:
            oldest = now_us - ttl // MICROSECOND
            rows = [r if r is not None and r[nfeat] >= oldest else None for r in rows]
        for index, out in wanted:
            if index == nfeat:
                response[out] = [None if r is None else from_micros(r[index]) for r in rows]
            else:
                response[out] = [None if r is None else r[index] for r in rows]
    return response


def key_value(row: Mapping[str, Any], key: Field, index: int) -> Any:
    """The row's value for a join key, checked against the key's type."""
    try:
        value = row[key.name]
        if type(value) is int and key.dtype != "string" and -(2**63) <= value < 2**63:
            return value  # the common case, checked first
    except KeyError:
        raise ValidationError(
            f"entity row {index} lacks join key {key.name!r}: {dict(row)!r}", row=index
        ) from None
    if key.dtype == "string":
        if not isinstance(value, str):
            raise ValidationError(
                f"entity row {index}: {key.name!r} must be a string, got {value!r}", row=index
            )
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValidationError(
            f"entity row {index}: {key.name!r} must be an integer, got {value!r}", row=index
        )
    value = int(value)
    if not -(2**63) <= value < 2**63:
        raise ValidationError(
            f"entity row {index}: {key.name!r} is {value}, beyond 64-bit integers", row=index
        )
    return value


def online_rows(view: ResolvedView, table: pa.Table, batch: int) -> Iterable[list[Any]]:
    """A conformed Arrow table as online store rows (keys, features, event_us, created_us, seq)."""

    def column(name: str, dtype: str) -> list[Any]:
        col = table.column(name)
        if dtype == "timestamp":
            col = pc.cast(col, pa.int64())
        return col.to_pylist()

    cols = [column(k.name, k.dtype) for k in view.keys]
    cols += [column(f.name, f.dtype) for f in view.features]
    cols.append(column(view.timestamp_field, "timestamp"))
    if view.created_field:
        cols.append(column(view.created_field, "timestamp"))
    else:
        cols.append([None] * table.num_rows)
    base = batch << offline.SEQ_BITS
    cols.append(list(range(base, base + table.num_rows)))
    return (list(r) for r in zip(*cols, strict=True))
