"""Point-in-time joins of an entity DataFrame against feature views."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from litemlops.errors import ValidationError
from litemlops.store.features import offline
from litemlops.store.features.convert import cast_column, mixed_types, to_frame
from litemlops.store.features.definitions import Field
from litemlops.store.features.refs import Requests

if TYPE_CHECKING:
    import pandas as pd


def historical_features(
    con: duckdb.DuckDBPyConnection,
    lock: threading.RLock,
    requests: Requests,
    entity_df: pd.DataFrame,
    timestamp_column: str,
) -> pd.DataFrame:
    """`entity_df` with the requested features added, rows and index unchanged."""
    import pandas as pd

    if not isinstance(entity_df, pd.DataFrame):
        raise ValidationError(
            f"entity_df must be a pandas DataFrame, got {type(entity_df).__name__}"
        )
    if entity_df.columns.duplicated().any():
        repeated = sorted({str(c) for c in entity_df.columns[entity_df.columns.duplicated()]})
        raise ValidationError(f"entity_df repeats column(s) {repeated}")
    clash = [o for _, pairs in requests for _, o in pairs if o in entity_df.columns]
    if clash:
        raise ValidationError(
            f"entity_df already has column(s) {clash}; rename them or pass "
            "full_feature_names=True"
        )
    if timestamp_column not in entity_df.columns:
        raise ValidationError(
            f"entity_df has no timestamp column {timestamp_column!r} (columns: "
            f"{list(entity_df.columns)}); pass timestamp_column="
        )
    key_types: dict[str, Field] = {}
    for view, _ in requests:
        for key in view.keys:
            seen = key_types.setdefault(key.name, key)
            if seen.dtype != key.dtype and {seen.dtype, key.dtype} != {"int32", "int64"}:
                raise ValidationError(
                    f"join key {key.name!r} is {seen.dtype} in one view and {key.dtype} in "
                    f"view {view.name!r}"
                )
            if key.name not in entity_df.columns:
                raise ValidationError(
                    f"entity_df lacks join key {key.name!r} needed by view {view.name!r}"
                )
    # Only keys and times go to DuckDB; labels and other columns stay in pandas
    # untouched, whatever their types.
    arrays = {
        "_lm_row": pa.array(range(len(entity_df)), pa.int64()),
        "_lm_ts": _entity_column(entity_df, Field(timestamp_column, "timestamp")),
    }
    for name, key in key_types.items():
        wide = Field(name, "int64") if key.dtype.startswith("int") else key
        arrays[name] = _entity_column(entity_df, wide)
    sql_types = {
        name: "BIGINT" if key.dtype.startswith("int") else "VARCHAR"
        for name, key in key_types.items()
    }
    reqs = [offline.Request(view, tuple(pairs)) for view, pairs in requests]
    sql = offline.historical_sql(reqs, sql_types)
    bounds = pc.min_max(arrays["_lm_ts"])
    params = {"lo": bounds["min"].as_py(), "hi": bounds["max"].as_py()}
    if "$lo" not in sql:
        del params["lo"]
    with lock:
        con.register("_lm_entity", pa.table(arrays))
        try:
            result = con.sql(sql, params=params).to_arrow_table()
        finally:
            con.unregister("_lm_entity")
    dtypes: dict[str, str] = {}
    for view, pairs in requests:
        for feature, name in pairs:
            item = view.feature(feature)
            assert item is not None
            dtypes[name] = item.dtype
    # Each column's dtype follows its declaration (PANDAS_DTYPES), with or without nulls.
    frame = to_frame(result, dtypes)
    out = entity_df.copy()
    for name in dtypes:
        out[name] = frame[name].array  # by position: `out` keeps the entity rows' index
    return out


def _entity_column(entity_df: pd.DataFrame, item: Field) -> pa.Array:
    series = entity_df[item.name]
    try:
        arr = pa.Array.from_pandas(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        mixed_types(series, "entity_df")
        raise ValidationError(f"entity_df column {item.name!r} cannot be read: {exc}") from exc
    arr = cast_column(arr, item, "entity_df")
    if arr.null_count:
        row = int(pc.index(pc.is_null(arr), True).as_py())
        raise ValidationError(
            f"entity_df column {item.name!r} has a null at row {row}", column=item.name, row=row
        )
    return arr
