"""The content-addressed blob store: one file per BLAKE3 key, atomic writes, verification, temp clean-up."""

from __future__ import annotations

import errno
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import blake3
import pytest

from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError, IntegrityError
from tracelet_artifacts.store import blobs as blobs_module
from tracelet_artifacts.store.blobs import BlobStore

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", fsync=False)


def test_put_bytes_stores_content_under_its_digest(blobs: BlobStore) -> None:
    sha, size = blobs.put_bytes(b"hello")
    hexdigest = blake3.blake3(b"hello").hexdigest()
    assert sha == f"blake3:{hexdigest}" and size == 5
    assert blobs.path(sha) == blobs.root / "blake3" / hexdigest[:2] / hexdigest[2:]
    assert blobs.path(sha).read_bytes() == b"hello"


def test_put_file_and_put_stream_agree_with_put_bytes(blobs: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    (tmp_path / "f.bin").write_bytes(data)
    assert blobs.put_file(tmp_path / "f.bin") == blobs.put_bytes(data) == blobs.put_stream(io.BytesIO(data))


def test_identical_content_is_stored_once(blobs: BlobStore) -> None:
    first, _ = blobs.put_bytes(b"same")
    second, _ = blobs.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert list(blobs.digests()) == [first]


def test_no_temp_files_are_left_after_writes(blobs: BlobStore) -> None:
    blobs.put_bytes(b"one")
    blobs.put_bytes(b"one")
    blobs.put_stream(io.BytesIO(b"two"))
    assert list(blobs.tmp.iterdir()) == []


@pytest.mark.parametrize("durability", ["group", "per-blob", "none"])
def test_a_filesystem_without_unnamed_files_stores_small_blobs_through_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    tries = []

    def refused(folder: str) -> int:
        tries.append(folder)
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(blobs_module, "_O_TMPFILE", 1)  # as on Linux; the filesystem then refuses it
    monkeypatch.setattr(blobs_module, "_open_unnamed", refused)
    store = BlobStore(tmp_path / "blobs", durability=durability)  # type: ignore[arg-type]
    first, _ = store.put_bytes(b"small one")
    second, _ = store.put_bytes(b"small two")
    assert store.path(first).read_bytes() == b"small one" and store.path(second).read_bytes() == b"small two"
    assert len(tries) == 1 and blobs_module._O_TMPFILE == 0  # asked once, then temp files
    assert list(store.tmp.iterdir()) == []


@pytest.mark.skipif(not blobs_module._O_TMPFILE, reason="no O_TMPFILE here")
def test_no_proc_to_name_an_unnamed_file_through_falls_back_to_temp_files(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_proc(fd: int, final: str) -> bool:
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), f"/proc/self/fd/{fd}")

    monkeypatch.setattr(blobs_module, "_O_TMPFILE", blobs_module._O_TMPFILE)  # restored after the test
    monkeypatch.setattr(blobs_module, "_link_fd", no_proc)
    key, _ = blobs.put_bytes(b"named through a temp file")
    assert blobs.path(key).read_bytes() == b"named through a temp file" and blobs_module._O_TMPFILE == 0
    assert list(blobs.tmp.iterdir()) == []


@pytest.mark.skipif(not blobs_module._O_TMPFILE, reason="no O_TMPFILE here")
def test_a_small_blob_is_named_only_once_whole(blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = blobs_module._link_fd

    def link(fd: int, final: str) -> bool:
        seen.append(os.path.exists(final))  # nothing under the name while the bytes are written
        return real(fd, final)

    monkeypatch.setattr(blobs_module, "_link_fd", link)
    key, _ = blobs.put_bytes(b"x" * 5000)
    again, _ = blobs.put_bytes(b"x" * 5000)
    assert key == again and seen == [False]  # the second finds it stored and writes nothing
    assert blobs.path(key).read_bytes() == b"x" * 5000 and list(blobs.tmp.iterdir()) == []


def test_failed_write_leaves_no_blob_and_no_temp_file(blobs: BlobStore) -> None:
    class Broken(io.RawIOBase):
        def readinto(self, buffer: bytearray) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(ArtifactStoreError, match=r"is full.*free space there"):
        blobs.put_stream(Broken())  # type: ignore[arg-type]
    assert list(blobs.tmp.iterdir()) == []
    assert list(blobs.digests()) == []


def test_verify_detects_a_corrupted_blob(blobs: BlobStore) -> None:
    sha, _ = blobs.put_bytes(b"original")
    assert blobs.verify(sha)
    blobs.path(sha).write_bytes(b"tampered")
    assert not blobs.verify(sha)


def test_copy_to_refuses_corrupt_content_and_leaves_no_partial_file(blobs: BlobStore, tmp_path: Path) -> None:
    sha, _ = blobs.put_bytes(b"original")
    blobs.path(sha).write_bytes(b"tampered")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(IntegrityError, match="corrupt"):
        blobs.copy_to(sha, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_copy_to_missing_blob_is_not_found(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreNotFoundError, match="missing"):
        blobs.copy_to("a" * 64, tmp_path / "x")


def test_path_refuses_a_non_digest(blobs: BlobStore) -> None:
    for bad in ("../../etc/passwd", "blake3:../../etc/passwd", "md5:" + "0" * 64, "A" * 64):
        with pytest.raises(ArtifactStoreError, match="not a blob key"):
            blobs.path(bad)


def test_delete_removes_the_blob(blobs: BlobStore) -> None:
    sha, _ = blobs.put_bytes(b"x")
    blobs.delete(sha)
    assert not blobs.exists(sha)


def test_clean_temp_removes_files_of_dead_writers_only(blobs: BlobStore) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    host = socket.gethostname()
    orphan = blobs.tmp / f"{host}-{dead.stdout.strip()}-abc.tmp"
    mine = blobs.tmp / f"{host}-{os.getpid()}-def.tmp"
    other_host = blobs.tmp / f"elsewhere-{dead.stdout.strip()}-ghi.tmp"
    for path in (orphan, mine, other_host):
        path.write_bytes(b"partial")
    assert blobs.clean_temp() == 1
    assert not orphan.exists() and mine.exists() and other_host.exists()
