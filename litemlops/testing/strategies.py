"""Hypothesis strategies for feature rows and model inputs, valid and invalid.

Valid data is what the store and `signature.enforce` must accept; each invalid
example is valid data with exactly one defect they must refuse, drawn only from
the defects they actually check (see `litemlops.store.features.convert` and
`litemlops.store.tracking.signature`). Invalid examples come as `(data, reason)` so a
failing test says which defect got through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from litemlops.store.features.convert import PANDAS_DTYPES
from litemlops.store.features.definitions import Entity, FeatureView, ResolvedView, resolve
from litemlops.store.tracking.signature import DTYPES as SIGNATURE_DTYPES
from litemlops.store.tracking.signature import (
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    ColSpec,
    Signature,
    dtype_name,
)

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
DEFAULT_END = datetime(2026, 1, 1, tzinfo=UTC)
#: Features are bounded so users' arithmetic on them (sums, products) stays finite.
FLOAT_BOUND = 1e9
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
FLOAT_WIDTHS: dict[str, Literal[16, 32, 64]] = {"float16": 16, "float32": 32, "float64": 64}
#: How many distinct entities and event times a batch draws from: repeats make
#: point-in-time ties and several rows per entity common, not a rare accident.
KEY_POOL = 8
TIME_POOL = 4

Row = dict[str, Any]
Defect = Callable[["DrawFn", ResolvedView, list[Row]], tuple[list[Any], str]]


# -- feature rows ---------------------------------------------------------------------


def _resolved(view: FeatureView, entity: Entity | Iterable[Entity] | None) -> ResolvedView:
    given = [entity] if isinstance(entity, Entity) else list(entity or ())
    known = {e.name: e for e in view.entities if isinstance(e, Entity)}
    known.update({e.name: e for e in given})
    unknown = [n for n in view.entity_names if n not in known]
    if unknown:
        raise ValueError(
            f"feature view {view.name!r} names entity(ies) {unknown} without their definition; "
            "pass them as entity=... so the key columns and dtypes are known"
        )
    return resolve(view, known)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    lo, hi = (v.astimezone(UTC).replace(tzinfo=None) for v in (start, end))
    if lo > hi:
        raise ValueError(f"start {start} is after end {end}")
    return lo, hi


def _values(dtype: str, window: tuple[datetime, datetime]) -> SearchStrategy[Any]:
    """Valid non-null values of a feature store dtype."""
    if dtype in INT_RANGES:
        lo, hi = INT_RANGES[dtype]
        return st.integers(lo, hi)
    if dtype in FLOAT_WIDTHS:
        return st.floats(-FLOAT_BOUND, FLOAT_BOUND, width=FLOAT_WIDTHS[dtype])
    if dtype == "bool":
        return st.booleans()
    if dtype == "string":
        return st.text(max_size=20)
    if dtype == "timestamp":
        return st.datetimes(window[0], window[1], timezones=st.just(UTC))
    raise ValueError(f"no strategy for dtype {dtype!r}")


@st.composite
def _rows(
    draw: DrawFn,
    view: ResolvedView,
    window: tuple[datetime, datetime],
    min_size: int,
    max_size: int,
    nulls: bool,
) -> list[Row]:
    keys = view.key_names
    pool = draw(
        st.lists(
            st.tuples(*(_values(k.dtype, window) for k in view.keys)),
            min_size=1,
            max_size=KEY_POOL,
            unique=True,
        )
    )
    moments = draw(st.lists(_values("timestamp", window), min_size=1, max_size=TIME_POOL))
    moment = st.one_of(st.sampled_from(moments), _values("timestamp", window))
    features = {
        f.name: st.one_of(_values(f.dtype, window), st.none()) if nulls
        else _values(f.dtype, window)
        for f in view.features
    }
    times = {view.timestamp_field: moment}
    if view.created_field:
        times[view.created_field] = moment
    row = st.tuples(st.sampled_from(pool), st.fixed_dictionaries({**times, **features}))
    rows = []
    for key, rest in draw(st.lists(row, min_size=min_size, max_size=max_size)):
        values = {**dict(zip(keys, key, strict=True)), **rest}
        rows.append({c.name: values[c.name] for c in view.columns})  # the view's order
    return rows


def feature_rows(
    view: FeatureView,
    *,
    entity: Entity | Iterable[Entity] | None = None,
    start: datetime = DEFAULT_START,
    end: datetime = DEFAULT_END,
    min_size: int = 1,
    max_size: int = 50,
    nulls: bool = True,
) -> SearchStrategy[list[Row]]:
    """Lists of row dicts that `FeatureStore.ingest(view.name, rows)` must accept.

    Keys come from a small pool (so entities repeat), event and created times are
    aware UTC datetimes in [start, end] (often equal, so ties happen), features
    follow their dtype with finite values within +-FLOAT_BOUND for floats.
    entity: the Entity objects of entities the view names only by name.
    nulls: whether features may be None (keys and times never are).
    min_size is at least 1: an empty list has no columns, and ingest refuses it.
    """
    if min_size < 1:
        raise ValueError(
            "feature_rows needs min_size >= 1: an empty list of rows has no columns and "
            "ingest refuses it; use feature_frames for empty batches"
        )
    resolved = _resolved(view, entity)
    return _rows(resolved, _window(start, end), min_size, max_size, nulls)


def _frame(view: ResolvedView, rows: list[Row]) -> pd.DataFrame:
    # The dtypes the store's own frames have: nullable ones, so an int64 column holding
    # a null does not turn into floats, which would round values beyond 2**53.
    return pd.DataFrame(
        {
            c.name: pd.Series([r[c.name] for r in rows], dtype=PANDAS_DTYPES[c.dtype])
            for c in view.columns
        }
    )


def feature_frames(
    view: FeatureView,
    *,
    entity: Entity | Iterable[Entity] | None = None,
    start: datetime = DEFAULT_START,
    end: datetime = DEFAULT_END,
    min_size: int = 1,
    max_size: int = 50,
    nulls: bool = True,
) -> SearchStrategy[pd.DataFrame]:
    """`feature_rows` as pandas DataFrames with nullable dtypes (Int64, boolean, string)."""
    resolved = _resolved(view, entity)
    rows = _rows(resolved, _window(start, end), min_size, max_size, nulls)
    return rows.map(lambda batch: _frame(resolved, batch))


# -- invalid feature rows ---------------------------------------------------------------


def _required(view: ResolvedView) -> list[str]:
    return [*view.key_names, view.timestamp_field, *filter(None, [view.created_field])]


def _missing_column(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    name = draw(st.sampled_from([c.name for c in view.columns]))
    return [{k: v for k, v in r.items() if k != name} for r in rows], f"missing column {name!r}"


def _extra_column(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    taken = {c.name for c in view.columns}
    # The store's own row-order column, and a key's name in other letter case
    # (DuckDB's names ignore case), must not slip in either.
    candidates = ["extra", "_lm_seq", view.key_names[0].upper(), "comment"]
    name = draw(st.sampled_from([n for n in candidates if n not in taken] or ["extra_1"]))
    value = draw(st.one_of(st.integers(), st.text(max_size=5), st.none()))
    # In every row: ingest reads a list of dicts with the first row's columns.
    return [{**r, name: value} for r in rows], f"extra column {name!r}"


def _null_required(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    name = draw(st.sampled_from(_required(view)))
    at = draw(st.integers(0, len(rows) - 1))
    kind = "null key" if name in view.key_names else "null timestamp"
    return _replace(rows, at, name, None), f"{kind}: {name!r} is None in row {at}"


def _bad_value(draw: DrawFn, dtype: str) -> Any:
    """A value of the wrong type for `dtype`, whatever the column's other values are."""
    nested = st.just([1])  # a list is no column type's value
    if dtype in ("int32", "int64"):
        return draw(
            st.one_of(
                nested,
                st.sampled_from(["abc", "1.2.3", "twelve"]),
                st.integers(-1000, 1000).map(lambda n: n + 0.5),
            )
        )
    if dtype in ("float32", "float64"):
        return draw(st.one_of(nested, st.sampled_from(["abc", "1.2.3", "twelve"])))
    if dtype == "bool":
        return draw(st.one_of(nested, st.sampled_from([1, 0, "maybe", "yes"])))
    if dtype == "string":
        return draw(st.one_of(nested, st.integers(), st.floats(allow_nan=False)))
    return draw(st.one_of(nested, st.sampled_from(["not a time", "2026-13-01", "yesterday"])))


def _wrong_type(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    column = draw(st.sampled_from(view.columns))
    at = draw(st.integers(0, len(rows) - 1))
    value = _bad_value(draw, column.dtype)
    reason = f"wrong type: {column.name!r} ({column.dtype}) is {value!r} in row {at}"
    return _replace(rows, at, column.name, value), reason


def _not_finite(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    name = draw(st.sampled_from([f.name for f in view.features if f.dtype.startswith("float")]))
    at = draw(st.integers(0, len(rows) - 1))
    value = draw(st.sampled_from([float("inf"), float("-inf")]))
    return _replace(rows, at, name, value), f"not finite: {name!r} is {value} in row {at}"


_BEYOND = {
    "int32": st.one_of(st.integers(min_value=2**31), st.integers(max_value=-(2**31) - 1)),
    "int64": st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1)),
    "float32": st.one_of(st.floats(min_value=1e39, max_value=1e300), st.just(-1e39)),
}


def _out_of_range(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    column = draw(st.sampled_from([c for c in view.columns if c.dtype in _BEYOND]))
    at = draw(st.integers(0, len(rows) - 1))
    value = draw(_BEYOND[column.dtype])
    reason = f"out of range: {column.name!r} ({column.dtype}) is {value!r} in row {at}"
    return _replace(rows, at, column.name, value), reason


def _not_a_mapping(draw: DrawFn, view: ResolvedView, rows: list[Row]) -> tuple[list[Any], str]:
    at = draw(st.integers(0, len(rows) - 1))
    value = draw(st.sampled_from([None, 42, "row", [1, 2]]))
    out: list[Any] = list(rows)
    out[at] = value
    return out, f"not a mapping: row {at} is {value!r}"


def _replace(rows: list[Row], at: int, name: str, value: Any) -> list[Any]:
    out = [dict(r) for r in rows]
    out[at][name] = value
    return out


def _defects(view: ResolvedView) -> list[Defect]:
    # The subtle defects first: hypothesis draws early entries more often.
    defects: list[Defect] = [_wrong_type]
    if any(c.dtype in _BEYOND for c in view.columns):
        defects.append(_out_of_range)
    if any(f.dtype.startswith("float") for f in view.features):
        defects.append(_not_finite)
    return [*defects, _null_required, _missing_column, _extra_column, _not_a_mapping]


@st.composite
def _invalid_rows(
    draw: DrawFn,
    view: ResolvedView,
    window: tuple[datetime, datetime],
    min_size: int,
    max_size: int,
) -> tuple[list[Any], str]:
    rows = draw(_rows(view, window, min_size, max_size, nulls=True))
    defect = draw(st.sampled_from(_defects(view)))
    return defect(draw, view, rows)


def invalid_feature_rows(
    view: FeatureView,
    *,
    entity: Entity | Iterable[Entity] | None = None,
    start: datetime = DEFAULT_START,
    end: datetime = DEFAULT_END,
    min_size: int = 1,
    max_size: int = 20,
) -> SearchStrategy[tuple[list[Any], str]]:
    """`(rows, reason)`: a `feature_rows` batch with one defect ingest must refuse.

    Defects: a missing or an extra column, a null key or event/created time, a value
    of the wrong type (text in a number column, a fraction in an int column, a number
    in a bool or text column, text that is no ISO-8601 time, a list anywhere),
    infinity in a float feature, an int beyond its dtype or a float beyond float32,
    a row that is not a dict. `reason` starts with the defect's name.
    """
    resolved = _resolved(view, entity)
    return _invalid_rows(resolved, _window(start, end), max(min_size, 1), max_size)


# -- model inputs -----------------------------------------------------------------------


_TEXT = st.text(max_size=10)
_MODEL_TIMES = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1))


def _column(draw: DrawFn, spec: ColSpec, n: int) -> Any:
    """A column of `n` values that `enforce` takes as they are for `spec`."""
    dtype = spec.dtype
    if dtype in INTEGER_DTYPES:
        info = np.iinfo(dtype)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
        return np.array(values, dtype=dtype)
    if dtype in FLOAT_DTYPES:
        bound = min(FLOAT_BOUND, float(np.finfo(dtype).max))
        elements = st.floats(-bound, bound, width=FLOAT_WIDTHS[dtype])
        return np.array(draw(st.lists(elements, min_size=n, max_size=n)), dtype=dtype)
    if dtype == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if dtype == "string":
        return pd.Series(draw(st.lists(_TEXT, min_size=n, max_size=n)), dtype=object)
    if dtype == "datetime":
        times = draw(st.lists(_MODEL_TIMES, min_size=n, max_size=n))
        return pd.Series(times, dtype="datetime64[us]")
    if dtype == "category":
        labels = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
        return pd.Categorical(labels)
    from hypothesis.extra import numpy as hnp

    return draw(hnp.arrays(np.dtype(dtype), n))


def _check_signature(signature: Signature) -> None:
    if not isinstance(signature, Signature):
        raise ValueError(f"expected a Signature, got {signature!r}")
    for spec in signature.inputs:
        known = spec.dtype in SIGNATURE_DTYPES
        if not known:
            # Other numpy dtypes (timedelta64[ns], complex128) keep numpy's name.
            try:
                known = dtype_name(np.dtype(spec.dtype)) == spec.dtype
            except TypeError:
                known = False
        if not known:
            raise ValueError(f"no strategy for column {spec.name!r} of dtype {spec.dtype!r}")


@st.composite
def _model_frame(draw: DrawFn, signature: Signature, min_rows: int, max_rows: int) -> pd.DataFrame:
    n = draw(st.integers(min_rows, max_rows))
    return pd.DataFrame({s.name: _column(draw, s, n) for s in signature.inputs})


def model_inputs(
    signature: Signature, min_rows: int = 1, max_rows: int = 20
) -> SearchStrategy[pd.DataFrame]:
    """DataFrames `enforce(signature, frame)` accepts as they are, one column per input.

    Floats are finite (and within +-FLOAT_BOUND), so a fitted model can score them.
    """
    _check_signature(signature)
    if not 0 <= min_rows <= max_rows:
        raise ValueError(f"need 0 <= min_rows <= max_rows, got {min_rows}, {max_rows}")
    return _model_frame(signature, min_rows, max_rows)


def _wrong_kind(draw: DrawFn, spec: ColSpec, n: int) -> tuple[Any, str]:
    """A column `enforce` cannot cast to `spec` without changing values, and why."""
    numeric = spec.dtype in INTEGER_DTYPES | FLOAT_DTYPES
    if not numeric:
        values = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
        return np.array(values, dtype="int64"), "wrong type: numbers"
    at = draw(st.integers(0, n - 1))
    whole = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    if spec.dtype in INTEGER_DTYPES:
        choices = ["missing value", "fraction", "out of range"]
    elif spec.dtype != "float64":
        choices = ["not representable"]
    else:
        choices = ["integer beyond 2**53"]
    choice = draw(st.sampled_from([*choices, "text", "booleans"]))
    if choice == "text":
        return pd.Series([str(v) for v in whole], dtype=object), "wrong type: text"
    if choice == "booleans":
        return np.array([v % 2 == 0 for v in whole]), "wrong type: booleans"
    if choice == "integer beyond 2**53":
        return _one_off(whole, at, 2**53 + 1, "int64"), choice
    floats = np.array(whole, dtype="float64")
    if choice == "missing value":
        floats[at] = np.nan
    elif choice == "fraction":
        floats[at] += 0.5
    elif choice == "not representable":
        floats[at] = 0.1  # exact in float64, not in float32 or float16
    else:
        info = np.iinfo(spec.dtype)
        if info.max >= 2**63:  # uint64: below its range instead
            return _one_off(whole, at, -1, "int64"), choice
        wide = "uint64" if info.max == 2**63 - 1 else "int64"
        return _one_off(whole, at, int(info.max) + 1, wide), choice
    return floats, choice


def _one_off(values: list[int], at: int, value: int, dtype: str) -> Any:
    return np.array([*values[:at], value, *values[at + 1 :]], dtype=dtype)


@st.composite
def _invalid_model_frame(draw: DrawFn, signature: Signature) -> tuple[pd.DataFrame, str]:
    frame = draw(_model_frame(signature, 1, 10))
    spec = draw(st.sampled_from(signature.inputs))
    kind = draw(st.sampled_from(["bad column", "missing column", "repeated column"]))
    if kind == "missing column":
        return frame.drop(columns=[spec.name]), f"missing column {spec.name!r}"
    if kind == "repeated column":
        twice = pd.concat([frame, frame[[spec.name]]], axis=1)
        return twice, f"repeated column {spec.name!r}"
    column, why = _wrong_kind(draw, spec, len(frame))
    frame[spec.name] = column
    return frame, f"{why}: column {spec.name!r} ({spec.dtype})"


def invalid_model_inputs(signature: Signature) -> SearchStrategy[tuple[pd.DataFrame, str]]:
    """`(frame, reason)`: a `model_inputs` frame with one defect `enforce` must refuse.

    Defects: a missing or repeated input column; text or booleans where numbers are
    expected and numbers where text, booleans, times or categories are; a missing
    value, a fraction or an out-of-range value in an integer column; a value a
    float32/float16 column cannot hold exactly; an int64 beyond 2**53 for float64.
    """
    _check_signature(signature)
    return _invalid_model_frame(signature)
