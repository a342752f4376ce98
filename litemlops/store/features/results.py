"""What the feature store's operations return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ApplyResult:
    changed: list[str]
    unchanged: list[str]


@dataclass(frozen=True)
class IngestResult:
    view: str
    rows: int
    batch: int


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    entities_read: int
    entities_written: int
    watermark: datetime | None


@dataclass(frozen=True)
class PushResult:
    view: str
    rows: int
    to: str
    online_written: int
    stale_rows: int
    late_rows: int


class OnlineResponse(dict[str, list[Any]]):
    """Online features as columns: `{"driver_id": [...], "conv_rate": [...]}`.

    `dtypes` names each column's declared type, which `to_df` keeps; the store sets it
    to its cached plan's (shared, read-only) after building the response, since a
    constructor of our own would cost every online lookup a Python call.
    """

    dtypes: Mapping[str, str] = MappingProxyType({})

    def to_dict(self) -> dict[str, list[Any]]:
        return dict(self)

    def to_df(self) -> pd.DataFrame:
        """The columns as a DataFrame, each of its declared type's dtype (as
        `get_historical_features` gives it), whether or not a value is missing."""
        import pandas as pd

        if set(self) - set(self.dtypes):  # not typed by the store: pandas infers
            return pd.DataFrame(dict(self))
        import pyarrow as pa

        from litemlops.store.features.convert import out_array, to_frame

        dtypes = {name: self.dtypes[name] for name in self}
        table = pa.table(
            [out_array(values, dtypes[name]) for name, values in self.items()], names=list(self)
        )
        return to_frame(table, dtypes)
