"""Read and write tables as Parquet or CSV for the CLI; writes are atomic."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from litemlops.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".parquet", ".pq", ".csv")


def read_frame(path: Path, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a Parquet or CSV file; in a CSV, `text_columns` stay text ("007" is not 7)."""
    import pandas as pd
    import pyarrow as pa

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(f"{path}: unsupported file type {suffix!r}; use .parquet or .csv")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(
                path, dtype={c: str for c in text_columns}, keep_default_na=False,
                na_values=[""], encoding="utf-8-sig",
            )
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: is not UTF-8 text ({exc.reason})") from exc
    except (OSError, ValueError, pa.ArrowException) as exc:
        # pandas' parser and empty-file errors are ValueErrors
        raise ValidationError(f"{path}: cannot be read: {exc}") from exc
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise ValidationError(f"{path}: repeats column(s) {sorted(set(repeated))}")
    return frame


def check_output(path: Path) -> None:
    """Fail before any work when `path` cannot be written as a table."""
    if path.suffix.lower() not in SUFFIXES:
        raise ValidationError(f"{path}: unsupported output type; use .parquet or .csv")
    if not path.parent.is_dir():
        raise ValidationError(f"{path}: folder {path.parent} does not exist")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` through a temporary file and rename: a reader, or a crash, never
    leaves half of it under the final name."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    check_output(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise ValidationError(f"{path}: cannot be written: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
