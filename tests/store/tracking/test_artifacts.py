import hashlib
import io
import posixpath
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops.errors import (
    ArtifactNotFoundError,
    LitemlopsError,
    TamperedArtifactError,
    ValidationError,
)
from litemlops.store.tracking.artifacts import ArtifactStore, check_artifact_path

OBJECT_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}")


def stored_objects(root):
    """Every file under `root` outside `tmp/`, as a relative POSIX path."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "tmp"
    )


def leftover_temp_files(root):
    return sorted(p.name for p in (root / "tmp").glob("*")) if (root / "tmp").exists() else []


def flip_one_byte(path, position=0):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


class FailingStream(io.RawIOBase):
    """A binary stream that yields one chunk, then fails like a dying disk or network."""

    def __init__(self, first_chunk: bytes):
        self.first_chunk = first_chunk
        self.calls = 0

    def readable(self):
        return True

    def read(self, size=-1):
        self.calls += 1
        if self.calls == 1:
            return self.first_chunk
        raise OSError("connection lost mid-copy")


def test_put_bytes_returns_digest_and_size_and_stores_under_two_hex_prefix(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"model bytes"

    digest, size = store.put_bytes(data)

    assert digest == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert store.path(digest) == tmp_path / "artifacts" / digest[:2] / digest
    assert store.path(digest).read_bytes() == data
    assert store.exists(digest)


def test_root_is_created_on_first_write_not_on_construction(tmp_path):
    root = tmp_path / "home" / "artifacts"
    store = ArtifactStore(root)

    assert not root.exists()
    assert not store.exists("0" * 64)
    assert not root.exists()

    store.put_bytes(b"x")
    assert root.is_dir()


def test_identical_content_is_stored_once(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    source = tmp_path / "weights.bin"
    source.write_bytes(b"same content")

    first = store.put_bytes(b"same content")
    second = store.put_bytes(b"same content")
    third = store.put_file(source)

    assert first == second == third
    assert stored_objects(store.root) == [f"{first[0][:2]}/{first[0]}"]
    assert leftover_temp_files(store.root) == []


def test_put_file_streams_a_file_larger_than_one_chunk(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = bytes(range(256)) * (10 * 1024 + 3)  # about 2.5 MiB, not a multiple of the chunk
    source = tmp_path / "big.bin"
    source.write_bytes(data)

    digest, size = store.put_file(source)

    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.read_verified(digest) == data


def test_empty_content_is_a_valid_object(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")

    digest, size = store.put_bytes(b"")

    assert size == 0
    assert store.read_verified(digest) == b""


def test_stream_failing_midway_leaves_no_object_and_no_temp_file(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    stream = FailingStream(b"partial" * 1000)

    with pytest.raises(OSError, match="connection lost"):
        store.put_stream(stream)

    assert stream.calls == 2
    assert stored_objects(store.root) == []
    assert leftover_temp_files(store.root) == []
    assert not store.exists(hashlib.sha256(b"partial" * 1000).hexdigest())


def test_file_that_disappeared_before_put_leaves_nothing_behind(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    source = tmp_path / "model.pkl"
    source.write_bytes(b"soon gone")
    source.unlink()

    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*model\.pkl'"):
        store.put_file(source)

    assert not store.root.exists() or stored_objects(store.root) == []


def test_stray_temp_file_from_a_crash_is_never_an_object(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    store.put_bytes(b"creates the layout")
    # What a crash between writing and renaming leaves behind.
    (store.root / "tmp" / "abc.part").write_bytes(b"half a mod")

    assert not store.exists(hashlib.sha256(b"half a mod").hexdigest())
    assert all(OBJECT_NAME.fullmatch(name) for name in stored_objects(store.root))


def test_read_verified_returns_the_stored_bytes(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put_bytes(b"\x00\x01binary\xff")

    assert store.read_verified(digest) == b"\x00\x01binary\xff"


@pytest.mark.parametrize("position", [0, 500, -1])
def test_one_changed_byte_makes_read_verified_refuse(tmp_path, position):
    store = ArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put_bytes(bytes(1000))
    flip_one_byte(store.path(digest), position)

    with pytest.raises(TamperedArtifactError, match=f"artifact {digest} changed since") as caught:
        store.read_verified(digest)

    message = str(caught.value)
    assert digest in message
    assert "changed since it was stored" in message
    assert "will not be loaded" in message
    assert isinstance(caught.value, LitemlopsError)


def test_missing_object_raises_artifact_not_found(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    digest = hashlib.sha256(b"never stored").hexdigest()

    with pytest.raises(ArtifactNotFoundError, match=digest) as caught:
        store.read_verified(digest)
    assert isinstance(caught.value, KeyError)


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "A" * 64,
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "0" * 64 + "\n",
        "../" + "0" * 61,
        "/" + "0" * 63,
        None,
    ],
)
def test_malformed_digest_is_refused_before_touching_the_filesystem(tmp_path, digest):
    store = ArtifactStore(tmp_path / "artifacts")

    for call in (store.path, store.exists, store.read_verified):
        with pytest.raises(ValidationError, match="sha256"):
            call(digest)
    with pytest.raises(ValidationError, match=r"not a sha256 digest \(64 lowercase hex"):
        store.copy_verified(digest, tmp_path / "out")
    assert not (tmp_path / "artifacts").exists()


def test_copy_verified_writes_the_object_to_dest_creating_parents(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put_bytes(b"artifact")
    dest = tmp_path / "download" / "sub" / "model.pkl"

    assert store.copy_verified(digest, dest) == dest

    assert dest.read_bytes() == b"artifact"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.pkl"]


def test_copy_verified_of_a_tampered_object_leaves_no_dest_file(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put_bytes(b"x" * 5000)
    flip_one_byte(store.path(digest), 4000)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(TamperedArtifactError, match=digest):
        store.copy_verified(digest, out / "model.pkl")

    assert list(out.iterdir()) == []


def test_copy_verified_of_a_missing_object_raises_not_found(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    dest = tmp_path / "model.pkl"

    with pytest.raises(ArtifactNotFoundError, match=r"no artifact with sha256 (ab){32} in "):
        store.copy_verified("ab" * 32, dest)
    assert not dest.exists()


@pytest.mark.parametrize(
    "given_path, normalised",
    [
        ("model.pkl", "model.pkl"),
        ("plots/roc.png", "plots/roc.png"),
        ("./a/./b//c/", "a/b/c"),
        ("a..b/.hidden", "a..b/.hidden"),
        ("x/~y", "x/~y"),
        ("report:v2.txt", "report:v2.txt"),
    ],
)
def test_artifact_paths_are_normalised_to_relative_posix(given_path, normalised):
    assert check_artifact_path(given_path) == normalised


@pytest.mark.parametrize(
    ("bad_path", "reason"),
    [
        ("", "is empty"),
        (".", "names no file"),
        ("./", "names no file"),
        ("/etc/passwd", "is absolute"),
        ("//server/share", "is absolute"),
        ("..", "contains a '..' component"),
        ("../secrets", "contains a '..' component"),
        ("a/../../escape", "contains a '..' component"),
        ("a/..", "contains a '..' component"),
        ("a\\b", "contains a backslash"),
        ("..\\escape", "contains a backslash"),
        ("~/x", "starts with ~"),
        ("~root/x", "starts with ~"),
        ("C:/Windows", "contains a drive letter"),
        ("c:relative", "contains a drive letter"),
        ("a/D:/x", "contains a drive letter"),
        ("a\x00b", "contains a NUL or control character"),
        ("line\nbreak", "contains a NUL or control character"),
    ],
)
def test_artifact_paths_that_could_escape_or_mislead_are_refused(bad_path, reason):
    with pytest.raises(ValidationError, match=re.escape(f"{bad_path!r} {reason};")) as caught:
        check_artifact_path(bad_path)
    assert repr(bad_path) in str(caught.value)


def test_artifact_path_must_be_a_string(tmp_path):
    with pytest.raises(ValidationError, match="string"):
        check_artifact_path(tmp_path)  # type: ignore[arg-type]


@given(st.text(alphabet=st.sampled_from("ab./\\~:C\x00"), max_size=12))
def test_any_accepted_artifact_path_stays_inside_its_root(path):
    try:
        checked = check_artifact_path(path)
    except ValidationError:
        return
    root = "/root/run"
    joined = posixpath.normpath(posixpath.join(root, checked))
    assert joined.startswith(root + "/")
    assert checked == posixpath.normpath(checked)


def test_a_damaged_object_is_repaired_by_storing_the_same_bytes_again(tmp_path):
    from litemlops.errors import TamperedArtifactError
    from litemlops.store.tracking.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path / "a")
    digest, _ = store.put_bytes(b"model bytes")
    path = store.path(digest)
    path.chmod(0o600)
    path.write_bytes(b"model bytez")
    with pytest.raises(TamperedArtifactError, match=f"artifact {digest} changed since"):
        store.read_verified(digest)
    store.put_bytes(b"model bytes")
    assert store.read_verified(digest) == b"model bytes"
    path.write_bytes(b"garbage")
    (tmp_path / "f.bin").write_bytes(b"model bytes")
    store.put_file(tmp_path / "f.bin")
    assert store.read_verified(digest) == b"model bytes"
