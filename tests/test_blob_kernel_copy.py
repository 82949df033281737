"""BlobStore.put_file: the kernel-copy path, its fall-backs and the small-file path store the same bytes under
the same BLAKE3 key."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tracelet_artifacts import digest
from tracelet_artifacts.errors import ArtifactStoreError
from tracelet_artifacts.store import blobs as blobs_module
from tracelet_artifacts.store.blobs import BlobStore


def _write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("size", [0, 1, blobs_module.SMALL_FILE_BYTES, blobs_module.SMALL_FILE_BYTES + 1,
                                  5 * 1024 * 1024 + 3])
@pytest.mark.parametrize("fsync", [True, False])
def test_put_file_stores_exact_bytes_under_their_digest(tmp_path: Path, size: int, fsync: bool) -> None:
    store = BlobStore(tmp_path / "blobs", fsync=fsync)
    data = _write(tmp_path / "file.bin", size)
    sha, stored = store.put_file(tmp_path / "file.bin")
    assert (sha, stored) == (digest.bytes_key(data), size)
    assert store.path(sha).read_bytes() == data
    assert store.put_file(tmp_path / "file.bin") == (sha, size)  # identical content stored once
    assert list(store.tmp.iterdir()) == []


def test_put_file_falls_back_when_the_kernel_cannot_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(*_args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", cross_device, raising=False)
    monkeypatch.setattr(blobs_module, "_COPY_FILE_RANGE", True)
    store = BlobStore(tmp_path / "blobs")
    data = _write(tmp_path / "file.bin", 3 * 1024 * 1024)
    assert store.put_file(tmp_path / "file.bin") == (digest.bytes_key(data), len(data))
    assert list(store.tmp.iterdir()) == []


def test_put_file_without_copy_file_range_uses_the_python_copy(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs_module, "_COPY_FILE_RANGE", False)
    monkeypatch.delattr(os, "sendfile", raising=False)
    store = BlobStore(tmp_path / "blobs")
    data = _write(tmp_path / "file.bin", 3 * 1024 * 1024)
    assert store.put_file(tmp_path / "file.bin") == (digest.bytes_key(data), len(data))


def test_a_failing_copy_raises_a_store_error_and_leaves_no_temp_file(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", disk_full, raising=False)
    monkeypatch.setattr(blobs_module, "_COPY_FILE_RANGE", True)
    store = BlobStore(tmp_path / "blobs")
    _write(tmp_path / "file.bin", blobs_module.SMALL_FILE_BYTES + 1)  # a small file is not copied by the kernel
    with pytest.raises(ArtifactStoreError, match="No space left"):
        store.put_file(tmp_path / "file.bin")
    assert list(store.tmp.iterdir()) == []


def test_logging_many_files_at_once_gives_the_manifest_a_plain_freeze_gives(tmp_path: Path) -> None:
    from tracelet_artifacts.artifact import TraceletArtifact
    from tracelet_artifacts.store.embedded import EmbeddedStore

    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(6):  # small ones stored as they are asked for, large ones ahead on the threads
        _write(folder / f"part-{index}.bin", (200_000 if index % 2 else blobs_module.SMALL_FILE_BYTES + 1000) + index)
    (folder / "same-as-0.bin").write_bytes((folder / "part-0.bin").read_bytes())
    (folder / "same-as-1.bin").write_bytes((folder / "part-1.bin").read_bytes())
    store = EmbeddedStore(tmp_path / "store")
    record = store.log(TraceletArtifact("parts", "dataset").add_dir(folder))
    assert record.manifest == TraceletArtifact("parts", "dataset").add_dir(folder).freeze()
    assert store.verify("parts") == []
    again = store.log(TraceletArtifact("parts", "dataset").add_dir(folder))
    assert (again.version, again.created) == (record.version, False)


def test_a_file_removed_before_logging_is_reported_by_name(tmp_path: Path) -> None:
    from tracelet_artifacts.artifact import TraceletArtifact
    from tracelet_artifacts.errors import ArtifactFileError
    from tracelet_artifacts.store.embedded import EmbeddedStore

    for index in range(4):
        _write(tmp_path / f"f{index}.bin", 1000)
    builder = TraceletArtifact("files", "dataset")
    for index in range(4):
        builder.add_file(tmp_path / f"f{index}.bin")
    (tmp_path / "f2.bin").unlink()
    with pytest.raises(ArtifactFileError, match=r"f2\.bin"):
        EmbeddedStore(tmp_path / "store").log(builder)
