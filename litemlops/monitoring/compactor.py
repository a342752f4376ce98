"""How a compaction goes, step by step, under the history's lock (`history.compact`).

Each rotated event file, oldest first, is split into the history's tables
(`litemlops.monitoring.event_tables`), written as Parquet per kind and day
through a temporary file, published in the manifest, and then deleted. Then a
day's small files are merged, and files past the retention leave the manifest;
what leaves it is deleted `GRACE_SECONDS` later, and what a crashed compaction
left (temporary files, files no manifest names) at the start of the next.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.errors import HistoryError
from litemlops.logger import get_logger
from litemlops.monitoring.history import (
    EVENTS_FILE,
    MANIFEST,
    Compaction,
    Manifest,
    Part,
    event_files,
    from_iso,
    to_iso,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from litemlops.config import Config
    from litemlops.monitoring.feature_kinds import Group, Kinds

GRACE_SECONDS = 900.0
"""How long a file that left the manifest stays on disk for readers of an older one."""
MERGE_FILES = 8
"""A day's files of one kind smaller than `SMALL_BYTES` are merged once there are this many."""
SMALL_BYTES = 16_000_000
TARGET_BYTES = 64_000_000
ROW_GROUP = 131_072
BLOOM_FPP = 0.01
"""The request-id Bloom filters' false-positive rate: about 10 bits a request (1-2 % of
a file), and one row group in a hundred read for nothing."""
_PART = re.compile(r"^(predictions|feedback|events)-(\d+)-(\d+)\.parquet$")
_log = get_logger("litemlops.monitoring")


class Compactor:
    """One compaction, under the lock: what `compact` does, step by step."""

    def __init__(self, config: Config, folder: Path, now: datetime, settle: float):
        self.logs = config.logs_dir
        self.retention = config.history
        self.folder = folder
        self.now = now
        self.settle = settle
        self.done = Compaction()
        self.con: Any = None

    def run(self) -> Compaction:
        try:
            return self.steps()
        finally:
            if self.con is not None:
                self.con.close()

    def steps(self) -> Compaction:
        import time

        manifest = Manifest.read(self.folder)
        if manifest is None:
            if any(p.name.startswith("date=") for p in self.folder.iterdir()):
                raise HistoryError(
                    f"{self.folder / MANIFEST} is missing but the history holds files; "
                    "restore it, or move the folder away to start a new history"
                )
            manifest = Manifest()
            self.publish(manifest)
        self.sweep(manifest)
        wall = time.time()
        files = [f for f in event_files(self.logs) if f.name != EVENTS_FILE]
        for index, path in enumerate(files):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            known = manifest.sources.get(path.name)
            settled = wall - st.st_mtime >= self.settle
            if known is not None and known["ino"] == st.st_ino:
                if st.st_size > known["size"] and settled:
                    self.add(manifest, path, st, offset=known["size"])
                elif st.st_size == known["size"]:
                    self.remove_source(path)
                continue
            # Later files wait with one that is not ready: lines are numbered in log order.
            if not settled or not self.add(manifest, path, st):
                self.done = replace(self.done, waiting=len(files) - index)
                break
        names = {p.name for p in files if p.exists()}
        if set(manifest.sources) - names:
            manifest.sources = {k: v for k, v in manifest.sources.items() if k in names}
            self.publish(manifest)
        self.merge(manifest)
        self.expire(manifest)
        return replace(
            self.done,
            bytes=sum(p.bytes for p in manifest.parts),
            parts=len(manifest.parts),
        )

    # -- steps --

    def add(self, manifest: Manifest, path: Path, st: os.stat_result, offset: int = 0) -> bool:
        """Compact one event file as `st` describes it (from byte `offset`: lines appended
        after it was compacted), publish, and delete the file. False when it changed or
        vanished meanwhile (it is left for the next compaction)."""
        import duckdb

        from litemlops.monitoring import event_tables

        source = path
        tmp = self.folder / f".tail-{os.getpid()}.jsonl"
        if offset:
            with path.open("rb") as src, tmp.open("wb") as out:
                src.seek(offset)
                out.write(src.read(st.st_size - offset))
            source = tmp
        day = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%d")
        if self.con is None:
            self.con = duckdb.connect()
            self.con.execute("SET TimeZone = 'UTC'")
        try:
            split = event_tables.split(self.con, str(source), manifest.next_line, day)
        except duckdb.IOException as exc:
            if not path.exists():
                return False
            raise OSError(f"cannot read {path}: {exc}") from exc
        except duckdb.Error as exc:
            raise HistoryError(f"cannot compact {path}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        if not offset:
            try:
                again = path.stat()
            except FileNotFoundError:
                return False
            if _identity(again) != _identity(st):
                return False  # a late writer added lines while it was read
        parts = []
        for kind, table in split.tables.items():
            for day_value, rows in _by_day(table):
                parts.append(self.write(kind, day_value, rows, split.kinds))
        manifest.parts.extend(parts)
        manifest.next_line += split.lines
        manifest.sources[path.name] = {"ino": st.st_ino, "size": st.st_size}
        self.publish(manifest)
        self.remove_source(path)
        self.done = replace(self.done, files=self.done.files + 1,
                            lines=self.done.lines + split.lines)
        return True

    def remove_source(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # the manifest names it: readers skip it, the next run retries
            _log.warning(
                events.HISTORY_COMPACTION_FAILED,
                error=f"cannot delete {path}, which is in the history now: {exc}",
            )

    def write(
        self, kind: str, day: str, table: pa.Table, kinds: list[tuple[Group, Kinds]]
    ) -> Part:
        """Write rows of one kind and day as a Parquet file (not yet in the manifest)."""
        import pyarrow.compute as pc

        from litemlops.monitoring.event_tables import PREFIXES

        keep = [c for c in table.column_names
                if not c.startswith(PREFIXES) or table[c].null_count < table.num_rows]
        table = table.select(keep)
        lines = pc.min_max(table["seq"]).as_py()
        name = f"date={day}/{kind}-{lines['min']:012d}-{lines['max']:012d}.parquet"
        size = _write_parquet(table, self.folder / name, rows=table.num_rows)
        times = pc.min_max(table["ts"]).as_py()
        features: dict[str, list[str]] = {}
        for column in table.column_names:
            prefix, _, feature = column.partition(":")
            if feature and column.startswith(PREFIXES):
                features.setdefault(feature, []).append(prefix)
        requests = 0
        if kind == "predictions":
            requests = int(pc.sum(pc.equal(table["position"], 1)).as_py() or 0)
        groups = {tuple(g[:3]) for g in _groups(table)} if kind == "predictions" else set()
        return Part(
            name=name,
            kind=kind,
            day=day,
            rows=table.num_rows,
            bytes=size,
            lines=(int(lines["min"]), int(lines["max"])),
            first=times["min"],
            last=times["max"],
            requests=requests,
            features=features,
            kinds=[(g, k) for g, k in kinds if g in groups],
        )

    def merge(self, manifest: Manifest) -> None:
        """Combine runs of `MERGE_FILES` or more small files of one kind and day."""
        groups: dict[tuple[str, str], list[Part]] = {}
        for part in manifest.parts:
            groups.setdefault((part.kind, part.day), []).append(part)
        merged: list[tuple[list[Part], Part]] = []
        for (kind, day), parts in sorted(groups.items()):
            parts.sort(key=lambda p: p.lines)
            for run in _runs(parts):
                if len(run) >= MERGE_FILES:
                    merged.extend((chunk, self.combine(kind, day, chunk)) for chunk in _chunks(run))
        if not merged:
            return
        gone = {p.name for chunk, _ in merged for p in chunk}
        manifest.parts = [p for p in manifest.parts if p.name not in gone]
        manifest.parts.extend(new for _, new in merged)
        manifest.garbage.extend((name, to_iso(self.now) or "") for name in sorted(gone))
        self.publish(manifest)
        self.done = replace(self.done, merged=self.done.merged + len(gone))

    def combine(self, kind: str, day: str, parts: list[Part]) -> Part:
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = [pq.ParquetFile(self.folder / p.name) for p in parts]
        schema = pa.unify_schemas([f.schema_arrow for f in files])
        lo, hi = parts[0].lines[0], max(p.lines[1] for p in parts)
        name = f"date={day}/{kind}-{lo:012d}-{hi:012d}.parquet"

        def batches() -> Iterable[pa.Table]:
            for file in files:
                for i in range(file.num_row_groups):
                    group = file.read_row_group(i)
                    columns = [group[f.name] if f.name in group.column_names
                               else pa.nulls(group.num_rows, f.type) for f in schema]
                    yield pa.Table.from_arrays(columns, schema=schema)

        rows = sum(p.rows for p in parts)
        size = _write_parquet(batches(), self.folder / name, schema=schema, rows=rows)
        kinds: dict[Group, Kinds] = {}
        for p in parts:
            for group, found in p.kinds:
                into = kinds.setdefault(group, {})
                for feature, seen in found.items():
                    into.setdefault(feature, set()).update(seen)
        features: dict[str, list[str]] = {}
        for p in parts:
            for feature, prefixes in p.features.items():
                have = features.setdefault(feature, [])
                have.extend(x for x in prefixes if x not in have)
        firsts = [p.first for p in parts if p.first is not None]
        lasts = [p.last for p in parts if p.last is not None]
        return Part(
            name=name,
            kind=kind,
            day=day,
            rows=rows,
            bytes=size,
            lines=(lo, hi),
            first=min(firsts) if firsts else None,
            last=max(lasts) if lasts else None,
            requests=sum(p.requests for p in parts),
            features=features,
            kinds=list(kinds.items()),
        )

    def expire(self, manifest: Manifest) -> None:
        """Drop files past the retention: older than keep_days, then the oldest while the
        history is larger than max_bytes."""
        keep_days, max_bytes = self.retention.keep_days, self.retention.max_bytes
        expired: set[str] = set()
        if keep_days > 0:
            cutoff = self.now - timedelta(days=keep_days)
            expired |= {p.name for p in manifest.parts if _newest(p) < cutoff}
        if max_bytes > 0:
            left = sorted((p for p in manifest.parts if p.name not in expired),
                          key=lambda p: (_newest(p), p.lines))
            total = sum(p.bytes for p in left)
            for part in left:
                if total <= max_bytes:
                    break
                expired.add(part.name)
                total -= part.bytes
        if not expired:
            return
        manifest.parts = [p for p in manifest.parts if p.name not in expired]
        manifest.garbage.extend((name, to_iso(self.now) or "") for name in sorted(expired))
        self.publish(manifest)
        self.done = replace(self.done, expired=self.done.expired + len(expired))

    def sweep(self, manifest: Manifest) -> None:
        """Delete files that left the manifest more than `GRACE_SECONDS` ago, and what a
        crashed compaction left (temporary files, files no manifest named)."""
        due = [(n, t) for n, t in manifest.garbage
               if (from_iso(t) or self.now) <= self.now - timedelta(seconds=GRACE_SECONDS)]
        for name, _ in due:
            (self.folder / name).unlink(missing_ok=True)
        if due:
            manifest.garbage = [g for g in manifest.garbage if g not in due]
            self.publish(manifest)
        known = {p.name for p in manifest.parts} | {n for n, _ in manifest.garbage}
        for entry in self.folder.iterdir():
            if entry.name.endswith(".tmp") or entry.name.startswith(".tail-"):
                entry.unlink(missing_ok=True)
            elif entry.name.startswith("date=") and entry.is_dir():
                for file in entry.iterdir():
                    name = f"{entry.name}/{file.name}"
                    if file.name.endswith(".tmp") or (_PART.match(file.name) and name not in known):
                        file.unlink(missing_ok=True)
                if not any(entry.iterdir()):
                    entry.rmdir()

    def publish(self, manifest: Manifest) -> None:
        """Replace the manifest atomically (and durably: the event files go next)."""
        tmp = self.folder / f".{MANIFEST}.{os.getpid()}.tmp"
        with tmp.open("wb") as out:
            out.write(json.dumps(manifest.to_json(), separators=(",", ":")).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.folder / MANIFEST)
        _fsync_dir(self.folder)


# -- helpers -------------------------------------------------------------------------------------


def _by_day(table: pa.Table) -> Iterable[tuple[str, pa.Table]]:
    """(day, rows of that day without the `day` column) of a table `event_tables.split` made."""
    import pyarrow.compute as pc

    if not table.num_rows:
        return
    days = table["day"]
    rest = table.drop_columns(["day"])
    for day in pc.unique(days).to_pylist():
        yield day.isoformat(), rest.filter(pc.equal(days, day))


def _groups(table: pa.Table) -> list[tuple[Any, ...]]:
    """The (model, version, service) of a predictions table's rows."""
    keys = ["model", "version", "service"]
    found = table.select(keys).group_by(keys, use_threads=False).aggregate([])
    return [tuple(row[k] for k in keys) for row in found.to_pylist()]


def _runs(parts: list[Part]) -> Iterable[list[Part]]:
    """Consecutive small files."""
    run: list[Part] = []
    for part in parts:
        if part.bytes < SMALL_BYTES:
            run.append(part)
            continue
        if run:
            yield run
        run = []
    if run:
        yield run


def _chunks(run: list[Part]) -> Iterable[list[Part]]:
    """The run in consecutive pieces of at most `TARGET_BYTES` (at least two files each)."""
    chunk: list[Part] = []
    size = 0
    for part in run:
        if chunk and size + part.bytes > TARGET_BYTES:
            if len(chunk) > 1:
                yield chunk
            chunk, size = [], 0
        chunk.append(part)
        size += part.bytes
    if len(chunk) > 1:
        yield chunk


def _write_parquet(
    data: pa.Table | Iterable[pa.Table], path: Path, *, rows: int, schema: pa.Schema | None = None
) -> int:
    """Write `data` (`rows` rows) to `path` through a temporary file, durably; its size in bytes.

    zstd, with the encodings that suit the columns: times and line numbers as deltas,
    numbers split by byte (their exponents compress), the rest by dictionary. Each row
    group carries a Bloom filter of its request ids, so a read of one request (the
    lineage of an answer, its labels) skips every row group that cannot hold it rather
    than scanning the history: a file's min/max cannot, as ids are random.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [data] if isinstance(data, pa.Table) else data
    if schema is None:
        assert isinstance(data, pa.Table)
        schema = data.schema
    encodings = {}
    for f in schema:
        if f.name in ("ts", "seq"):
            encodings[f.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_floating(f.type):
            encodings[f.name] = "BYTE_STREAM_SPLIT"
    bloom = None
    if "request_id" in schema.names:
        distinct = max(1, min(rows, ROW_GROUP))  # a filter per row group: at most its rows
        bloom = {"request_id": {"ndv": distinct, "fpp": BLOOM_FPP}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetWriter(
            tmp,
            schema,
            compression="zstd",
            use_dictionary=[f.name for f in schema if f.name not in encodings],
            column_encoding=encodings,
            bloom_filter_options=bloom,
        ) as writer:
            for table in tables:
                writer.write_table(table, row_group_size=ROW_GROUP)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _newest(part: Part) -> datetime:
    """When a part's newest event happened (its day's end for rows without a time)."""
    if part.last is not None:
        return part.last
    return datetime.fromisoformat(part.day).replace(tzinfo=UTC) + timedelta(days=1)
