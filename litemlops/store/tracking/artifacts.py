"""Content-addressed artifact store: every object lives at `root/<2 hex>/<sha256 hex>`.

An object's name is the hash of its bytes, so identical artifacts are stored
once and a changed byte is detected on read. Writes go to `root/tmp/` (a name
that is never two hex digits, so a temp file can never be taken for an
object), are flushed to disk, then renamed into place: a crash leaves at most
a stray temp file, never a partial object under a final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

from litemlops.errors import ArtifactNotFoundError, TamperedArtifactError, ValidationError

CHUNK = 1 << 20  # 1 MiB
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArtifactStore:
    """Objects addressed by the sha256 of their bytes under `root`.

    `fsync=False` skips flushing to disk before the rename (faster; a power
    cut may then lose an object whose digest the registry already recorded).
    """

    def __init__(self, root: str | Path, *, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where the object with this digest lives (whether or not it exists)."""
        digest = _check_digest(sha256)
        return self.root / digest[:2] / digest

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store `data`; return its sha256 hex digest and size."""
        digest = hashlib.sha256(data).hexdigest()
        # Hashing first lets a duplicate skip the write entirely.
        if not self._intact(digest):

            def write(out: BinaryIO) -> str:
                out.write(data)
                return digest

            self._store(write)
        return digest, len(data)

    def put_file(self, path: str | Path) -> tuple[str, int]:
        """Store a file's bytes, hashing while copying; return its sha256 and size."""
        with open(path, "rb") as src:
            return self.put_stream(src)

    def put_stream(self, src: IO[bytes]) -> tuple[str, int]:
        """Store everything read from a binary stream; return its sha256 and size."""
        hasher = hashlib.sha256()
        size = 0

        def copy(out: BinaryIO) -> str:
            nonlocal size
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
            return hasher.hexdigest()

        return self._store(copy), size

    def _intact(self, sha256: str) -> bool:
        """Whether a good copy is stored: a damaged one is replaced by the next upload."""
        path = self.path(sha256)
        if not path.is_file():
            return False
        hasher = hashlib.sha256()
        with open(path, "rb") as src:
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
        return hasher.hexdigest() == sha256

    def read_verified(self, sha256: str) -> bytes:
        """The object's bytes, after checking they still hash to `sha256`."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self._not_found(sha256) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise _tampered(sha256, actual, path)
        return data

    def copy_verified(self, sha256: str, dest: str | Path) -> Path:
        """Copy the object to `dest` (parents created), checking its hash on the way.

        `dest` appears whole or not at all: on a mismatch nothing is left there.
        """
        source = self.path(sha256)
        dest = Path(dest)
        with self._open(sha256) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            tmp = Path(name)
            try:
                hasher = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
                    if hasher.hexdigest() != sha256:
                        raise _tampered(sha256, hasher.hexdigest(), source)
                    if self.fsync:
                        out.flush()
                        os.fsync(out.fileno())
                os.replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return dest

    def _store(self, write: Callable[[BinaryIO], str]) -> str:
        """Run `write` into a temp file under `root/tmp/`, then rename it to the digest it returns.

        The rename happens after the file is closed: Windows cannot rename an open file.
        """
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = write(out)
                final = self.path(digest)
                if self._intact(digest):
                    return digest  # deduplicated: the temp file is dropped below
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            final.parent.mkdir(exist_ok=True, mode=0o700)
            os.replace(tmp, final)
            if self.fsync:
                _fsync_dir(final.parent)
            return digest
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _open(self, sha256: str) -> BinaryIO:
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError:
            raise self._not_found(sha256) from None

    def _not_found(self, sha256: str) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(f"no artifact with sha256 {sha256} in {self.root}")


def check_artifact_path(path: str) -> str:
    """Normalise an artifact path inside a run to a relative POSIX path, or refuse it.

    Refused: empty paths, absolute paths, `..`, backslashes, NUL and other control
    characters, a leading `~`, and drive letters (`C:`) in any component.
    """
    if not isinstance(path, str):
        raise ValidationError(f"artifact path must be a string, got {type(path).__name__}")
    problem = _path_problem(path)
    if problem is None:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if not parts:
            problem = "names no file"
        else:
            return "/".join(parts)
    raise ValidationError(f"artifact path {path!r} {problem}; give a relative path inside the run")


def _path_problem(path: str) -> str | None:
    if not path:
        return "is empty"
    if _CONTROL.search(path):
        return "contains a NUL or control character"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    if path.startswith("~"):
        return "starts with ~"
    parts = path.split("/")
    if ".." in parts:
        return "contains a '..' component"
    # A drive anywhere matters: Windows' joinpath restarts at "C:x" even mid-path.
    if any(_DRIVE.match(p) for p in parts):
        return "contains a drive letter"
    return None


def _check_digest(sha256: str) -> str:
    # The digest becomes part of a filesystem path, so nothing else may pass.
    if not isinstance(sha256, str) or not _DIGEST.fullmatch(sha256):
        raise ValidationError(f"not a sha256 digest (64 lowercase hex characters): {sha256!r}")
    return sha256


def _tampered(sha256: str, actual: str, path: Path) -> TamperedArtifactError:
    return TamperedArtifactError(
        f"artifact {sha256} changed since it was stored (its bytes now hash to {actual}); "
        f"it will not be loaded. Restore {path} from a backup or log the artifact again."
    )


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; Windows cannot open a directory, and needs nothing.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
