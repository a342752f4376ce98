"""Read and write tables as Parquet, CSV or TSV; writes are atomic, moves never overwrite.

Text tables are comma- or tab-separated: a `.tsv` file always has tabs, a `.csv`
file has whichever its header line is split by (spreadsheets and pandas users
often save tab-separated text under `.csv`). A Parquet file that pandas wrote
with its index keeps the index as a column the pandas metadata names; readers
take that column for what it is (see `pandas_index_columns`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".tsv")
SUFFIXES = (*PARQUET_SUFFIXES, *TEXT_SUFFIXES)
_USE = "use .parquet, .csv or .tsv"
# How pandas names the column of an index that has no name of its own.
_UNNAMED_INDEX = re.compile(r"__index_level_\d+__")


def delimiter(path: Path) -> str:
    """The field separator of a text table: a tab for `.tsv`; for `.csv`, a tab when the
    header line splits into more fields at tabs than at commas, else a comma."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = fh.readline()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ValidationError(f"{path}: cannot be read: {exc}") from exc

    def fields(sep: str) -> int:
        return len(next(csv.reader([header], delimiter=sep), []))

    return "\t" if fields("\t") > fields(",") else ","


def pandas_index_columns(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """(unnamed, named): the columns of an Arrow schema that hold a pandas index, as the
    pandas metadata pandas writes into Parquet names them. An unnamed index
    (`__index_level_0__`) is row labels, never data; a named one
    (`set_index("driver_id")`) may be a column the reader wants back."""
    stored = [c for c in _pandas_metadata(schema).get("index_columns", []) if isinstance(c, str)]
    present = [c for c in stored if c in schema.names]
    unnamed = [c for c in present if _UNNAMED_INDEX.fullmatch(c)]
    return unnamed, [c for c in present if c not in unnamed]


def _pandas_metadata(schema: pa.Schema) -> dict[str, Any]:
    try:
        metadata = schema.pandas_metadata
    except ValueError:  # not JSON: nothing pandas could restore an index from either
        return {}
    return metadata if isinstance(metadata, dict) else {}


def read_parquet(path: Path) -> tuple[pa.Table, list[str]]:
    """A Parquet file's table with a pandas index saved in it taken for what it is, and
    the names of the columns a named index became.

    pandas saves an index with the rows: an unnamed one as `__index_level_0__` (row
    labels: dropped), a named one as a column of its name, or, a RangeIndex, only as
    start/stop/step in the metadata (made into that column here). Only the metadata
    says which columns these are; a column merely named like one is data.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = _pandas_metadata(table.schema)
    unnamed, named = pandas_index_columns(table.schema)
    for entry in metadata.get("index_columns", []):
        if not isinstance(entry, dict) or entry.get("kind") != "range":
            continue
        name = entry.get("name")
        if isinstance(name, str) and name not in table.column_names:
            try:
                values = range(int(entry["start"]), int(entry["stop"]), int(entry["step"]))
            except (KeyError, TypeError, ValueError):
                continue
            if len(values) == table.num_rows:
                table = table.append_column(name, pa.array(values, pa.int64()))
                named.append(name)
    table = table.drop_columns(unnamed)
    if metadata:
        # Without index entries pandas would make those columns its index again.
        kept = {**metadata, "index_columns": [], "columns": [
            c for c in metadata.get("columns", [])
            if isinstance(c, dict) and c.get("field_name") in table.column_names
        ]}
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"pandas": json.dumps(kept).encode()}
        )
    return table, named


def read_frame(path: Path, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a Parquet, CSV or TSV file; in a text file, `text_columns` stay text ("007" is
    not 7). A pandas index stored in a Parquet file is not the frame's index: an unnamed
    one is dropped, a named one comes back as a column, listed in
    `frame.attrs["pandas_index_columns"]` so a caller can drop those it has no use for."""
    import pandas as pd
    import pyarrow as pa

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(f"{path}: unsupported file type {suffix!r}; {_USE}")
    named: list[str] = []
    try:
        if suffix in TEXT_SUFFIXES:
            frame = pd.read_csv(
                path, sep=delimiter(path), dtype={c: str for c in text_columns},
                keep_default_na=False, na_values=[""], encoding="utf-8-sig",
            )
        else:
            table, named = read_parquet(path)
            frame = table.to_pandas()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: is not UTF-8 text ({exc.reason})") from exc
    except (OSError, ValueError, pa.ArrowException) as exc:
        # pandas' parser and empty-file errors are ValueErrors
        raise ValidationError(f"{path}: cannot be read: {exc}") from exc
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise ValidationError(f"{path}: repeats column(s) {sorted(set(repeated))}")
    frame.attrs["pandas_index_columns"] = named
    return frame


def check_output(path: Path) -> None:
    """Fail before any work when `path` cannot be written as a table."""
    if path.suffix.lower() not in SUFFIXES:
        raise ValidationError(f"{path}: unsupported output type; {_USE}")
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
        if path.suffix.lower() in TEXT_SUFFIXES:
            frame.to_csv(tmp, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise ValidationError(f"{path}: cannot be written: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def move_aside(path: Path, folder: Path, tag: str) -> Path:
    """Move `path` into `folder` and return where it went: under its own name, or
    `<stem>.<tag><suffix>` (then `<stem>.<tag>-2<suffix>`, ...) when that is taken.

    Never over another file: the new name is made as a hard link, which fails when
    the name exists, then the old name is removed, so a crash in between leaves the
    file under both names, not under neither. Where hard links are not supported,
    a checked rename stands in.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        suffix = "" if attempt == 2 else f"-{attempt - 1}"
        name = path.name if attempt == 1 else f"{path.stem}.{tag}{suffix}{path.suffix}"
        target = folder / name
        try:
            os.link(path, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if target.exists() or target.is_symlink():
                continue
            os.rename(path, target)
            return target
        path.unlink()
        return target
    raise FileExistsError(f"{folder}: no free name left for {path.name}")
