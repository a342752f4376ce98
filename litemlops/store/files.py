"""Read and write tables as Parquet or CSV for the CLI; writes are atomic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from litemlops.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd


def read_frame(path: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise ValidationError(f"{path}: unsupported file type {suffix!r}; use .parquet or .csv")


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise ValidationError(f"{path}: unsupported output type {suffix!r}; use .parquet or .csv")
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
