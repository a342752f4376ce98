"""The event history: rotated event files compacted into typed Parquet, kept by days and size.

The live log rotates every `logging.max_bytes` (10 MB, a few minutes of traffic
at hundreds of requests a second), so a log of JSON files cannot hold the weeks
a late label or a retrain needs. Rotated files are therefore compacted into
Parquet under `<logs>/history/` and then deleted; rotation itself deletes
nothing (`litemlops.logfile`). The layout:

    history/manifest.json                  what the history holds (readers trust only it)
    history/date=YYYY-MM-DD/<kind>-<first line>-<last line>.parquet
    history/.lock                          held by the one compactor at work

Kinds are `predictions`, `feedback` and `events` (`litemlops.monitoring.event_tables`
says what each holds); lines are numbered through the whole log, so rows of one
time keep the log's order. A row goes to the partition of its event's UTC date.

Publishing is one atomic rename of the manifest, which names the Parquet files
and the event files (name and inode) they came from; only then are the event
files deleted. A crash before the rename leaves files no manifest names, removed
by the next compaction, and the event files still there to compact again; a
crash after it leaves event files the manifest names, which readers skip and the
next compaction deletes. Nothing is lost or read twice. Small files of a day are
merged; files past `[history]` keep_days or max_bytes leave the manifest, and all
replaced files are deleted a while later, so a reader holding an older manifest
can finish (`litemlops.monitoring.compactor` does each step). One process
compacts at a time (a lock file); the server keeps appending and rotating
meanwhile, and a rotated file is taken only once it has not changed for
`SETTLE_SECONDS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.clock import utc_now
from litemlops.errors import HistoryError, HomeLockedError
from litemlops.home_lock import HomeLock
from litemlops.logger import get_logger

if TYPE_CHECKING:
    from litemlops.config import Config
    from litemlops.monitoring.feature_kinds import Group, Kinds

HISTORY_DIR = "history"
MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = 1
EVENTS_FILE = "events.jsonl"
SETTLE_SECONDS = 5.0
"""A rotated file is compacted once it has not been written for this long: a process
that had it open when another rotated it checks within a second of its last write,
and then writes to the new file."""

_LEGACY = re.compile(rf"^{re.escape(EVENTS_FILE)}\.(\d+)$")
_ROTATED = re.compile(r"^events-(\d{8}T\d{12}Z)-(\d+)(?:\.(\d+))?\.jsonl$")
"""Rotated event files, as `litemlops.logfile.rotated_name` names them."""
_log = get_logger("litemlops.monitoring")


def event_files(logs_dir: Path | str) -> list[Path]:
    """The event log's JSONL files, oldest first: backups of the numbered kind older
    versions rotated (`events.jsonl.N` ... `.1`), rotated files (`events-<time>-<pid>.jsonl`),
    and the live `events.jsonl`."""
    folder = Path(logs_dir)
    if not folder.is_dir():
        return []
    found: list[tuple[tuple[Any, ...], Path]] = []
    for path in folder.iterdir():
        name = path.name
        legacy = _LEGACY.match(name)
        rotated = _ROTATED.match(name)
        if legacy:
            key: tuple[Any, ...] = (0, -int(legacy.group(1)))
        elif rotated:
            key = (1, rotated.group(1), int(rotated.group(3) or 0), int(rotated.group(2)))
        elif name == EVENTS_FILE:
            key = (2,)
        else:
            continue
        if path.is_file():
            found.append((key, path))
    return [path for _, path in sorted(found)]


# -- what the history holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One Parquet file of the history, as the manifest describes it.

    name: its path under `history/`. rows; requests: prediction rows at position 1
    (the events a `last` window counts). first, last: the oldest and newest event
    time in it. lines: the first and last line number (`seq`). features: each
    feature's typed columns in it ("int", "num", "text"). kinds: per (model,
    version, service), the features and JSON types its events showed.
    """

    name: str
    kind: str
    day: str
    rows: int
    bytes: int
    lines: tuple[int, int]
    first: datetime | None = None
    last: datetime | None = None
    requests: int = 0
    features: dict[str, list[str]] = field(default_factory=dict)
    kinds: list[tuple[Group, Kinds]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["first"] = to_iso(self.first)
        out["last"] = to_iso(self.last)
        out["lines"] = list(self.lines)
        out["kinds"] = [[*group, {n: sorted(k) for n, k in kinds.items()}]
                        for group, kinds in self.kinds]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Part:
        return cls(
            name=data["name"],
            kind=data["kind"],
            day=data["day"],
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
            lines=(int(data["lines"][0]), int(data["lines"][1])),
            first=from_iso(data.get("first")),
            last=from_iso(data.get("last")),
            requests=int(data.get("requests", 0)),
            features={n: list(c) for n, c in data.get("features", {}).items()},
            kinds=[(tuple(g[:3]), {n: set(k) for n, k in g[3].items()})
                   for g in data.get("kinds", [])],
        )


@dataclass
class Manifest:
    """The history's contents: parts; the event files compacted into them (name ->
    inode and size); files that left the history and when (deleted after the grace)."""

    next_line: int = 0
    parts: list[Part] = field(default_factory=list)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    garbage: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "next_line": self.next_line,
            "parts": [p.to_json() for p in self.parts],
            "sources": self.sources,
            "garbage": [list(g) for g in self.garbage],
        }

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The manifest in `folder`; None when there is none yet."""
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as exc:
            raise HistoryError(f"cannot read the event history's manifest {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise HistoryError(
                f"{path} is not a history manifest this version reads (format "
                f"{data.get('format') if isinstance(data, dict) else '?'}, expected {FORMAT})"
            )
        try:
            return cls(
                next_line=int(data["next_line"]),
                parts=[Part.from_json(p) for p in data["parts"]],
                sources={k: {"ino": int(v["ino"]), "size": int(v["size"])}
                         for k, v in data["sources"].items()},
                garbage=[(str(n), str(t)) for n, t in data["garbage"]],
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise HistoryError(f"the event history's manifest {path} is damaged: {exc}") from exc


@dataclass(frozen=True)
class Snapshot:
    """What a reader reads: the history's parts and the event files not in it yet.

    pending: the JSONL files to parse, oldest first (the live file last), with the
    inode each had when listed (`changed` says whether one was rotated since).
    """

    folder: Path
    parts: tuple[Part, ...]
    pending: tuple[Path, ...]
    inodes: tuple[int, ...]

    def of(self, kind: str) -> list[Part]:
        return [p for p in self.parts if p.kind == kind]

    def path(self, part: Part) -> str:
        return str(self.folder / part.name)

    @property
    def empty(self) -> bool:
        return not self.parts and not self.pending

    def changed(self) -> bool:
        """Whether a pending file's path now names another file (a rotation in between)."""
        for path, ino in zip(self.pending, self.inodes, strict=True):
            try:
                if path.stat().st_ino != ino:
                    return True
            except FileNotFoundError:
                return True
        return False

    def narrowed(self, needle: bytes, into: Path) -> Snapshot:
        """This snapshot with each pending file replaced by a copy in `into` of its lines
        that contain `needle`, in their order: a read of one request then parses a few
        lines rather than every line the log holds (the live file alone is up to
        `logging.max_bytes`). Reads through it give what reads through `self` give for
        any filter that only rows whose line holds `needle` pass."""
        copies = []
        for i, path in enumerate(self.pending):
            data = path.read_bytes()
            kept = bytearray()
            at = data.find(needle)
            while at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                end = len(data) if end < 0 else end + 1
                kept += data[start:end]
                at = data.find(needle, end)
            copy = into / f"{i:06d}-{path.name}"
            copy.write_bytes(bytes(kept))
            copies.append(copy)
        return Snapshot(self.folder, self.parts, tuple(copies),
                        tuple(c.stat().st_ino for c in copies))


def snapshot(logs_dir: Path | str) -> Snapshot:
    """The history and the event files it does not hold yet, as of now.

    The files are listed before the manifest is read: a file compacted in between is
    then either still listed and named by the manifest (skipped), or read as JSON
    (the reader retries when it vanished before being read).
    """
    logs = Path(logs_dir)
    listed = []
    for path in event_files(logs):
        try:
            listed.append((path, path.stat().st_ino))
        except FileNotFoundError:
            continue
    folder = logs / HISTORY_DIR
    manifest = Manifest.read(folder) or Manifest()
    pending = [(p, ino) for p, ino in listed if manifest.sources.get(p.name, {}).get("ino") != ino]
    return Snapshot(
        folder,
        tuple(manifest.parts),
        tuple(p for p, _ in pending),
        tuple(ino for _, ino in pending),
    )


# -- compaction ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compaction:
    """What one `compact` did. status: "ok", or "busy" when another process was compacting.
    files, lines: event files (and their lines) that went into the history; waiting:
    rotated files not settled yet; merged: history files combined into fewer; expired:
    files removed by retention; bytes, parts: the history's size and files now."""

    status: str = "ok"
    files: int = 0
    lines: int = 0
    waiting: int = 0
    merged: int = 0
    expired: int = 0
    bytes: int = 0
    parts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compact(
    config: Config,
    *,
    clock: Callable[[], datetime] | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> Compaction:
    """Move the rotated event files of `config`'s logs into the history, merge its small
    files and apply `config.history`'s retention.

    Safe while the server writes and rotates, and when another process compacts (this
    one then returns at once with status "busy"). clock: the time retention counts
    from (the current time by default). settle_seconds: how long a rotated file must
    be left alone before it is taken. Raises HistoryError when the history cannot be
    written; the event files are then kept, and readers parse them.
    """
    now = (clock or utc_now)()
    folder = config.logs_dir / HISTORY_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = HomeLock(folder / LOCK, message="{holder} is compacting the history in {home}")
        lock.acquire()
    except HomeLockedError:
        return Compaction(status="busy")
    except OSError as exc:
        raise HistoryError(_cannot(folder, exc)) from exc
    try:
        from litemlops.monitoring.compactor import Compactor

        done = Compactor(config, folder, now, settle_seconds).run()
    except OSError as exc:
        raise HistoryError(_cannot(folder, exc)) from exc
    finally:
        lock.release()
    if done.files or done.merged or done.expired:
        _log.info(
            events.HISTORY_COMPACTED,
            files=done.files,
            lines=done.lines,
            merged=done.merged,
            expired=done.expired,
            bytes=done.bytes,
        )
    return done


def _cannot(folder: Path, exc: BaseException) -> str:
    return (
        f"cannot write the event history in {folder}: {exc}; rotated event files are kept "
        "(and read) until it can be written"
    )


def to_iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def from_iso(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)
