"""What the feature store's operations return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
    """Online features as columns: `{"driver_id": [...], "conv_rate": [...]}`."""

    def to_dict(self) -> dict[str, list[Any]]:
        return dict(self)

    def to_df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(dict(self))
