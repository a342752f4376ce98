"""Turn user data (DataFrame, Parquet, CSV, rows) into an Arrow table that matches a view.

Every check names the column and the first bad row (0-based position in the
input). Naive timestamps are taken as UTC; aware ones are converted to UTC; a time
outside the years 1 to 9999 in UTC, which no Python datetime holds, is refused.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from litemlops.clock import to_micros
from litemlops.errors import ValidationError
from litemlops.store.features.definitions import Field, ResolvedView

if TYPE_CHECKING:
    import pandas as pd

ARROW_TYPES: dict[str, pa.DataType] = {
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
}

#: The pandas dtype a column of each declared type has in every frame the store returns,
#: whether or not it holds a missing value: the nullable extension types (missing is
#: `pd.NA`) for integers, booleans and strings, so an int64 beyond 2**53 keeps its exact
#: value; NaN for floats; NaT in aware UTC times.
PANDAS_DTYPES: dict[str, str] = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "float32",
    "float64": "float64",
    "bool": "boolean",
    "string": "string",
    "timestamp": "datetime64[us, UTC]",
}

# The Arrow type each declared type leaves the store as; pandas reads it as PANDAS_DTYPES.
_OUT_TYPES = {**ARROW_TYPES, "timestamp": pa.timestamp("us", tz="UTC")}

# Schema metadata key under which `_read_file` lists the columns a pandas index became.
_INDEX_KEY = b"litemlops.pandas_index_columns"

DataLike = Any  # pandas.DataFrame | pyarrow.Table | str | Path | list[dict] | dict[str, list]


def read_table(data: DataLike, what: str = "data") -> tuple[pa.Table, str]:
    """Read any accepted input into an Arrow table; return it and a name for messages."""
    if isinstance(data, pa.Table):
        return data, "table"
    if isinstance(data, str | Path):
        return _read_file(Path(data)), str(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        rows = list(data)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ValidationError(f"{what}: row {i} is not a mapping: {row!r}", row=i)
        # Arrow takes the columns from the first row: a key only a later row has would
        # be dropped, and one it lacks would become null, both without a word.
        first = set(rows[0]) if rows else set()
        for i, row in enumerate(rows[1:], start=1):
            if set(row) != first:
                extra, missing = sorted(set(row) - first), sorted(first - set(row))
                detail = "; ".join(
                    part
                    for part in (
                        f"has {extra} that row 0 lacks" if extra else "",
                        f"lacks {missing} that row 0 has" if missing else "",
                    )
                    if part
                )
                raise ValidationError(
                    f"{what}: row {i} {detail}; give every row the same keys", row=i
                )
        try:
            return pa.Table.from_pylist(rows), "rows"
        except OverflowError:
            names = dict.fromkeys(k for row in rows for k in row)
            _huge_ints({n: [row.get(n) for row in rows] for n in names}, what)
            # Not a top-level value: one inside a list or an object.
            raise ValidationError(
                f"{what}: a value holds an integer too large for 64 bits"
            ) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValidationError(f"{what}: rows mix incompatible value types: {exc}") from exc
    if isinstance(data, Mapping):
        try:
            return pa.table(dict(data)), "columns"
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ValidationError(f"{what}: columns cannot be read: {exc}") from exc
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if not all(isinstance(c, str) for c in data.columns):
            raise ValidationError(f"{what}: column names must be strings, got {list(data.columns)}")
        if data.columns.duplicated().any():
            dup = list(data.columns[data.columns.duplicated()])
            raise ValidationError(f"{what}: duplicate column names {dup}")
        try:
            return pa.Table.from_pandas(data, preserve_index=False), "DataFrame"
        except OverflowError:
            _huge_ints({n: data[n].tolist() for n in data.columns}, what)
            raise
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            for name in data.columns:
                mixed_types(data[name], what)
            raise ValidationError(f"{what}: DataFrame cannot be read: {exc}") from exc
    raise ValidationError(
        f"{what}: expected a pandas DataFrame, a pyarrow Table, a .parquet/.csv path or a "
        f"list of row dicts, got {type(data).__name__}"
    )


def to_frame(table: pa.Table, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """The columns of `table` named in `dtypes` (name -> declared dtype) as a DataFrame,
    each of its type's PANDAS_DTYPES: a column's dtype follows its declaration, never
    whether this answer happens to hold a missing value. Arrow converts the columns."""
    import pandas as pd

    nullable = {
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(),
    }
    arrays = [table.column(name).cast(_OUT_TYPES[dtype]) for name, dtype in dtypes.items()]
    out = pa.table(arrays, names=list(dtypes))
    return out.to_pandas(types_mapper=nullable.get)


def out_array(values: Sequence[Any], dtype: str) -> pa.Array:
    """Python values of a declared type (None: missing) as the Arrow array `to_frame` reads."""
    return pa.array(values, type=_OUT_TYPES[dtype])


def _huge_ints(columns: Mapping[str, list[Any]], what: str) -> None:
    """Raise naming the first integer that does not fit in 64 bits."""
    for name, values in columns.items():
        for row, value in enumerate(values):
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ValidationError(
                    f"{what}: column {name!r} row {row} has {value}, beyond 64-bit integers",
                    column=name,
                    row=row,
                )


def mixed_types(series: Any, what: str) -> None:
    """Raise naming the first value whose type differs from the column's first value."""
    first: type | None = None
    for row, value in enumerate(series.tolist()):
        if value is None or value != value:  # None or NaN: a missing value, any column
            continue
        if first is None:
            first = type(value)
        elif not any(
            isinstance(value, family) and issubclass(first, family)
            for family in (first, int | float, datetime, str)
        ):
            raise ValidationError(
                f"{what}: column {series.name!r} mixes types; row {row} has {value!r} "
                f"({type(value).__name__}) where earlier rows hold {first.__name__}",
                column=str(series.name),
                row=row,
            )


def _read_file(path: Path) -> pa.Table:
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    from litemlops.store.files import PARQUET_SUFFIXES, TEXT_SUFFIXES, delimiter, read_parquet

    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            table, named = read_parquet(path)
            # A named index the view has no column for is dropped by `conform`.
            return table.replace_schema_metadata(
                {**(table.schema.metadata or {}), _INDEX_KEY: json.dumps(named).encode()}
            )
        if suffix in TEXT_SUFFIXES:
            import pyarrow.csv as pacsv

            sep = delimiter(path)
            with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's BOM
                header = next(csv.reader(fh, delimiter=sep), [])
            repeated = sorted({n for n in header if header.count(n) > 1})
            if repeated:
                raise ValidationError(f"{path}: header repeats column(s) {repeated}")
            # Every column is read as text so typing follows the view, not a guess.
            # Only an empty unquoted field is missing: "NA" and "null" are strings.
            return pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter=sep),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: is not UTF-8 text ({exc.reason})") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{path}: cannot be read: {exc}") from exc
    raise ValidationError(
        f"{path}: unsupported file type {suffix!r}; use .parquet, .csv or .tsv"
    )


def conform(table: pa.Table, view: ResolvedView, source: str) -> pa.Table:
    """Check `table` against the view's stored columns and cast it to their types."""
    expected = view.columns
    # A named pandas index the view has no column for is row labels pandas saved.
    named = json.loads((table.schema.metadata or {}).get(_INDEX_KEY, b"[]"))
    table = table.drop_columns([n for n in named if n not in {f.name for f in expected}])
    names = set(table.column_names)
    wanted = [f.name for f in expected]
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ValidationError(
            f"{source}: missing column(s) {missing} for feature view {view.name!r} "
            f"(expects {wanted})",
            column=missing[0],
        )
    extra = [n for n in table.column_names if n not in set(wanted)]
    if extra:
        raise ValidationError(
            f"{source}: unexpected column(s) {extra}; feature view {view.name!r} has {wanted}",
            column=extra[0],
        )
    required = {*view.key_names, view.timestamp_field}
    if view.created_field:
        required.add(view.created_field)
    arrays = []
    for item in expected:
        column = table.column(item.name).combine_chunks()
        arr = cast_column(column, item, source)
        if item.name in required and arr.null_count:
            row = _first(pc.is_null(arr))
            raise ValidationError(
                f"{source}: column {item.name!r} is a key or timestamp and has a null at row {row}",
                column=item.name,
                row=row,
            )
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=wanted)


def _first(mask: pa.Array) -> int:
    return int(pc.index(mask.fill_null(False), True).as_py())


def _bad(source: str, item: Field, row: int, value: object, why: str = "") -> ValidationError:
    detail = f" ({why})" if why else ""
    return ValidationError(
        f"{source}: column {item.name!r} expects {item.dtype}; row {row} has {value!r}{detail}",
        column=item.name,
        row=row,
    )


def _first_failing(arr: pa.Array, convert: Any) -> int:
    """Smallest prefix length whose conversion fails, minus one: the first bad row."""
    lo, hi = 0, len(arr)  # conversion of arr[:lo] succeeds, arr[:hi] fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(arr.slice(0, mid))
            lo = mid
        except (pa.ArrowInvalid, ValueError, OverflowError):
            hi = mid
    return hi - 1


def cast_column(arr: pa.Array, item: Field, source: str) -> pa.Array:
    """Cast one column to the field's type or raise naming the first bad row."""
    target = ARROW_TYPES[item.dtype]
    kind = arr.type
    if pa.types.is_null(kind) or len(arr) == 0:
        return pa.nulls(len(arr), target)
    if pa.types.is_dictionary(kind):
        arr = arr.dictionary_decode()
        kind = arr.type
    if pa.types.is_large_string(kind):
        arr = arr.cast(pa.string())
        kind = arr.type
    dtype = item.dtype
    if dtype == "timestamp":
        return _readable(_to_timestamp(arr, item, source), arr, item, source)
    if pa.types.is_string(kind):
        if dtype == "string":
            return arr
        return _parse_text(arr, item, source, target)
    if dtype == "string":
        row = _first(pc.is_valid(arr))
        raise _bad(source, item, row, arr[row].as_py(), f"a {kind} column, not text")
    if dtype == "bool":
        if pa.types.is_boolean(kind):
            return arr
        row = _first(pc.is_valid(arr)) if arr.null_count < len(arr) else 0
        raise _bad(source, item, row, arr[row].as_py(), f"a {kind} column, not booleans")
    if pa.types.is_boolean(kind) or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        row = _first(pc.is_valid(arr)) if arr.null_count < len(arr) else 0
        raise _bad(source, item, row, arr[row].as_py(), f"a {kind} column, not numbers")
    if pa.types.is_floating(kind):
        # NaN is a missing value; infinity is never a valid feature value.
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, kind), arr)
        inf = pc.is_inf(arr)
        if pc.any(inf).as_py():
            row = _first(inf)
            raise _bad(source, item, row, arr[row].as_py(), "not finite")
    try:
        out = arr.cast(target, safe=True)
    except (pa.ArrowInvalid, OverflowError):
        row = _first_failing(arr, lambda a: a.cast(target, safe=True))
        why = "not a whole number" if pa.types.is_floating(kind) else "out of range"
        raise _bad(source, item, row, arr[row].as_py(), why) from None
    if pa.types.is_floating(target):
        _check_finite(out, arr, item, source, "out of range for " + item.dtype)
    return out


def _check_finite(out: pa.Array, original: pa.Array, item: Field, source: str, why: str) -> None:
    # After the cast: a float64 beyond float32's range becomes infinity there.
    inf = pc.is_inf(out)
    if pc.any(inf).as_py():
        row = _first(inf)
        raise _bad(source, item, row, original[row].as_py(), why)


def _parse_text(arr: pa.Array, item: Field, source: str, target: pa.DataType) -> pa.Array:
    stripped = pc.utf8_trim_whitespace(arr)  # Arrow reads "true" in any case itself

    def convert(a: pa.Array) -> pa.Array:
        return a.cast(target, safe=True)

    try:
        out = convert(stripped)
    except (pa.ArrowInvalid, OverflowError):
        row = _first_failing(stripped, convert)
        raise _bad(source, item, row, arr[row].as_py()) from None
    if pa.types.is_floating(target):
        out = pc.if_else(pc.is_nan(out), pa.scalar(None, target), out)
        _check_finite(out, arr, item, source, "not finite")
    return out


# The instants a Python datetime can hold, in microseconds since 1970: Arrow, numpy and
# pandas hold times beyond them, which the store could keep but never give back.
_FIRST_US, _LAST_US = to_micros(datetime.min), to_micros(datetime.max)


def _readable(times: pa.Array, given: pa.Array, item: Field, source: str) -> pa.Array:
    """`times` when every one lies in the years 1 to 9999 (UTC), else the first that
    does not, named with the value as given."""
    micros = times.cast(pa.int64())
    bounds = pc.min_max(micros)  # one pass over a column that is nearly always fine
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None or (low >= _FIRST_US and high <= _LAST_US):  # None: every one is null
        return times
    row = _first(pc.or_(pc.less(micros, _FIRST_US), pc.greater(micros, _LAST_US)))
    try:
        shown = given[row].as_py()
    except OverflowError:  # a time beyond Python's own: Arrow's text of it
        shown = given.slice(row, 1).cast(pa.string())[0].as_py()
    raise _bad(source, item, row, shown, "outside the years 1 to 9999 in UTC")


def _to_timestamp(arr: pa.Array, item: Field, source: str) -> pa.Array:
    kind = arr.type
    target = ARROW_TYPES["timestamp"]
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            arr = arr.cast(pa.timestamp(kind.unit, tz="UTC")).cast(pa.timestamp(kind.unit))
        try:
            return arr.cast(target, safe=True)
        except pa.ArrowInvalid:
            row = _first_failing(arr, lambda a: a.cast(target, safe=True))
            raise _bad(source, item, row, arr[row].as_py(), "sub-microsecond") from None
    if pa.types.is_date(kind):
        return arr.cast(target)
    if pa.types.is_string(kind):
        parsed_here = _iso_times(arr)
        if parsed_here is not None:
            return parsed_here
        import pandas as pd

        text = arr.to_pandas()
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        bad = parsed.isna() & text.notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise _bad(source, item, row, text.iloc[row], "not an ISO-8601 time")
        values = parsed.dt.tz_convert(None).astype("datetime64[us]")
        return pa.array(values, type=target, from_pandas=True)
    row = _first(pc.is_valid(arr)) if arr.null_count < len(arr) else 0
    raise _bad(source, item, row, arr[row].as_py(), f"a {kind} column, not times")


def _iso_times(arr: pa.Array) -> pa.Array | None:
    """Arrow's own ISO-8601 parse, when it reads every value (all with a zone or all
    without): some 30 times quicker than pandas on a push's few rows. It reads a subset
    of what pandas does, to the same instants (a property test holds it to that); for
    anything else, None, and pandas parses or names the first bad row."""
    try:
        return arr.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        pass
    try:
        return arr.cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        return None
