"""Rotated event files, parsed once: a Parquet segment of what a reader takes from each.

Monitoring reads the same window of the log every minute, and most of it sits in
rotated backups (`events.jsonl.N`) that never change again: rotation renames a
file, which keeps its inode, size and modification time. So the rows a reader
takes from a backup (its flattened predictions, its labels) are parsed from JSON
once and kept as a Parquet segment named by the file's identity, in
`<logs>/.segments/`; a read then scans those segments and parses only the live
file, in about a quarter of the time parsing everything takes (benchmarks/drift.py).

A segment is published only when the file's identity is the same after its build
as before it (a rotation in between renamed another file to that path), by an
atomic rename, so a reader sees a whole segment or none. Segments of files that
rotation has deleted are removed by the next read. When the folder cannot be
written (a read-only copy of a home's logs) or a write fails, files are parsed
as before: the cache only ever saves time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

SEGMENTS_DIR = ".segments"
FORMAT = 1
"""Part of every segment's name: a reader of another format rebuilds, and prunes the rest."""
_STALE_TMP_SECONDS = 3600


def identity(path: Path) -> str:
    """What names a file's content for as long as it is not written to: device, inode,
    size and modification time (FileNotFoundError when rotation has removed it)."""
    st = path.stat()
    return f"{st.st_dev:x}-{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


def cached(
    logs_dir: Path,
    files: list[str],
    kind: str,
    build: Callable[[str, str], None],
    *,
    live: str,
) -> tuple[list[str], list[str], list[str]]:
    """(segments, files to parse, what is read for each file), all in the order of `files`.

    Every file but the one named `live` gets a segment of `kind`, made by
    `build(file, destination)` when it has none yet. A file whose segment could
    not be written is left to parse. Raises FileNotFoundError, or what `build`
    raises, when a file vanished under it: the caller lists the files again.
    """
    folder = logs_dir / SEGMENTS_DIR
    if not _writable(folder):
        return [], list(files), list(files)
    segments: list[str] = []
    left: list[str] = []
    read: list[str] = []
    kept: set[str] = set()
    for file in files:
        path = Path(file)
        if path.name == live:
            left.append(file)
            read.append(file)
            continue
        before = identity(path)
        name = f"{kind}-v{FORMAT}-{before}.parquet"
        kept.add(name)
        if (folder / name).is_file() or _build(folder / name, path, before, build):
            segments.append(str(folder / name))
            read.append(segments[-1])
        else:
            left.append(file)
            read.append(file)
    _prune(folder, kind, kept)
    return segments, left, read


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _build(dest: Path, source: Path, before: str, build: Callable[[str, str], None]) -> bool:
    """Whether `dest` now holds the segment of `source` as it was when `before` was taken."""
    import duckdb

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        try:
            build(str(source), str(tmp))
        except (OSError, duckdb.IOException):
            if identity(source) != before:
                raise  # rotated under the build: the caller reads the folder again
            return False  # the segment could not be written (a full disk): parse instead
        if identity(source) != before:
            return False
        os.replace(tmp, dest)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _prune(folder: Path, kind: str, kept: set[str]) -> None:
    """Remove this kind's segments of files that are gone (or of another format), and
    temporary files a crashed build left."""
    now = time.time()
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        orphan = name.startswith(f"{kind}-v") and name.endswith(".parquet") and name not in kept
        try:
            if orphan or (
                name.endswith(".tmp") and now - entry.stat().st_mtime > _STALE_TMP_SECONDS
            ):
                entry.unlink(missing_ok=True)
        except OSError:
            continue
