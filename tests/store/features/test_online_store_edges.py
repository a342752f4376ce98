"""The SQLite online store on its own: the newer-wins order at its edges, lookups of
many entities, bool and timestamp features, the mirrored definitions, the spool,
batch numbers, per-view stats, and reading a file without waiting for its lookups."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from litemlops.clock import to_micros
from litemlops.store import Entity, FeatureView, Field
from litemlops.store.features.definitions import ResolvedView
from litemlops.store.features.offline import SEQ_BITS
from litemlops.store.features.online import OnlineStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = to_micros(T0)


def resolved(
    name: str, features: dict[str, str], keys: dict[str, str] | None = None
) -> ResolvedView:
    """A view as stored: typed key columns (one int64 `driver_id` unless given) and features."""
    keys = keys or {"driver_id": "int64"}
    entity = Entity("driver", join_keys=list(keys))
    fields = [Field(n, d) for n, d in features.items()]
    return ResolvedView(
        FeatureView(name, entities=[entity], schema=fields),
        keys=tuple(Field(n, d) for n, d in keys.items()),
        features=tuple(fields),
    )


RATES = resolved("rates", {"conv_rate": "float64"})


def seq(batch: int, row: int = 0) -> int:
    return (batch << SEQ_BITS) + row


@pytest.fixture
def store() -> Iterator[OnlineStore]:
    online = OnlineStore(":memory:")
    online.create(RATES)
    yield online
    online.close()


# -- newer wins: created times and equal rows ------------------------------------------


@pytest.mark.parametrize("created_first", [True, False])
def test_a_row_without_a_created_time_loses_to_one_created_before_1970(
    store: OnlineStore, created_first: bool
) -> None:
    """At equal event times a missing created time sorts below every real one, however
    old (1900 here), whichever row comes first and whatever its ingestion order."""
    created = to_micros(datetime(1900, 1, 1, tzinfo=UTC))
    dated = (1, 0.25, EVENT, created, seq(1))
    undated = (1, 0.75, EVENT, None, seq(2))
    first, second = (dated, undated) if created_first else (undated, dated)
    assert store.upsert(RATES, [first], written_at=1) == 1
    assert store.upsert(RATES, [second], written_at=2) == (0 if created_first else 1)
    assert store.lookup(RATES, [(1,)]) == {(1,): (0.25, EVENT)}


def test_a_row_exactly_as_new_as_the_stored_one_replaces_it(store: OnlineStore) -> None:
    """Written "if it is at least as new": the same event time, created time and
    ingestion order again takes the place of the stored row and counts as applied."""
    assert store.upsert(RATES, [(1, 0.25, EVENT, EVENT, seq(1))], written_at=1) == 1
    assert store.upsert(RATES, [(1, 0.5, EVENT, EVENT, seq(1))], written_at=2) == 1
    assert store.lookup(RATES, [(1,)]) == {(1,): (0.5, EVENT)}


# -- lookups ----------------------------------------------------------------------------


def test_a_lookup_of_5000_entities_keyed_by_8_columns_stays_within_sqlites_variable_limit(
    ) -> None:
    """A view keyed by 8 columns, on a connection with SQLite's default limit of 32766
    variables per statement: a lookup of 5000 entities (over 2048, so in several
    statements) answers every stored one exactly once, in the asked order, and leaves
    the unknown ones out."""
    names = [f"k{i}" for i in range(8)]
    view = resolved("trips", {"fare": "float64"}, dict.fromkeys(names, "int64"))
    con = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    online = OnlineStore(con)
    try:
        online.create(view)

        def key(i: int) -> tuple[int, ...]:
            return tuple(i * 10 + j for j in range(8))

        stored = [i for i in range(5000) if i % 3]
        rows = [(*key(i), i / 2, EVENT + i, None, seq(1, i)) for i in stored]
        assert online.upsert(view, rows, written_at=1) == len(stored)
        asked = list(range(5000))
        random.Random(7).shuffle(asked)
        found = online.lookup(view, [key(i) for i in [*asked, *asked[:10]]])
        expected = [key(i) for i in asked if i % 3]
        assert list(found) == expected
        assert all(found[key(i)] == (i / 2, EVENT + i) for i in stored)
    finally:
        con.close()
