"""Freezing a builder: an immutable manifest with per-entry size, SHA-256, MIME, text/binary and one digest."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import blake3
import pytest

from tracelet_artifacts import Manifest, TraceletArtifact
from tracelet_artifacts import digest as digest_module
from tracelet_artifacts.errors import ArtifactFileError, SerializationError

pytestmark = pytest.mark.usefixtures("isolated")


def _art(tmp_path: Path, name: str = "bundle") -> TraceletArtifact:
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "notes.txt").write_text("hello")
    art = TraceletArtifact(name, "custom", description="d", labels=["baseline"])
    art.add_file(tmp_path / "weights.bin", "w/weights.bin").add_file(tmp_path / "notes.txt")
    art.add_object({"lr": 0.1}, "hparams").add_reference("s3://bucket/raw", size_bytes=7)
    art.metadata["acc"] = 0.9
    return art


def test_entries_record_path_size_content_key_mime_and_text(tmp_path: Path) -> None:
    manifest = _art(tmp_path).freeze()
    entry = manifest.entry("w/weights.bin")
    assert entry.size == 300
    assert entry.digest == "blake3:" + blake3.blake3(b"\x00\x01\x02" * 100).hexdigest()
    assert entry.algorithm == "blake3"
    assert (entry.mime, entry.is_text) == ("application/octet-stream", False)
    notes = manifest.entry("notes.txt")
    assert (notes.mime, notes.is_text, notes.kind) == ("text/plain", True, "file")
    hparams = manifest.entry("hparams.json")
    assert (hparams.mime, hparams.is_text, hparams.kind) == ("application/json", True, "object")


def test_entries_are_sorted_by_path(tmp_path: Path) -> None:
    manifest = _art(tmp_path).freeze()
    assert [e.path for e in manifest.entries] == ["hparams.json", "notes.txt", "w/weights.bin"]


def test_unknown_suffix_is_sniffed_from_content(tmp_path: Path) -> None:
    (tmp_path / "text.dat").write_text("plain words")
    (tmp_path / "blob.dat").write_bytes(b"\x00\xff\x00")
    manifest = TraceletArtifact("x", "custom").add_file(tmp_path / "text.dat").add_file(tmp_path / "blob.dat").freeze()
    assert manifest.entry("text.dat").is_text is True
    assert manifest.entry("blob.dat").is_text is False


def test_manifest_is_immutable(tmp_path: Path) -> None:
    manifest = _art(tmp_path).freeze()
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        manifest.metadata["acc"] = 1.0  # type: ignore[index]


def test_manifest_does_not_follow_later_builder_changes(tmp_path: Path) -> None:
    art = _art(tmp_path)
    manifest = art.freeze()
    art.metadata["acc"] = 0.1
    art.add_object({"x": 1}, "late")
    assert manifest.metadata["acc"] == 0.9
    assert "late.json" not in [e.path for e in manifest.entries]


def test_same_content_gives_the_same_digest(tmp_path: Path) -> None:
    first = _art(tmp_path).freeze()
    second = _art(tmp_path).freeze()
    assert first.digest == second.digest


def test_digest_does_not_depend_on_the_order_entries_were_added(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    one = TraceletArtifact("x", "custom").add_file(tmp_path / "a.txt").add_file(tmp_path / "b.txt").freeze()
    two = TraceletArtifact("x", "custom").add_file(tmp_path / "b.txt").add_file(tmp_path / "a.txt").freeze()
    assert one.digest == two.digest


def test_changing_a_file_changes_the_digest(tmp_path: Path) -> None:
    art = _art(tmp_path)
    before = art.freeze().digest
    (tmp_path / "notes.txt").write_text("hellO")
    assert art.freeze().digest != before


def test_renaming_an_entry_changes_the_digest(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    one = TraceletArtifact("x", "custom").add_file(tmp_path / "a.txt", "a.txt").freeze()
    two = TraceletArtifact("x", "custom").add_file(tmp_path / "a.txt", "b.txt").freeze()
    assert one.digest != two.digest


def test_references_are_part_of_the_digest(tmp_path: Path) -> None:
    base = TraceletArtifact("x", "dataset").add_reference("s3://b/one").freeze()
    other = TraceletArtifact("x", "dataset").add_reference("s3://b/two").freeze()
    sized = TraceletArtifact("x", "dataset").add_reference("s3://b/one", size_bytes=3).freeze()
    assert len({base.digest, other.digest, sized.digest}) == 3


def test_size_bytes_counts_entries_not_references(tmp_path: Path) -> None:
    manifest = _art(tmp_path).freeze()
    assert manifest.size_bytes == sum(e.size for e in manifest.entries)
    assert manifest.size_bytes == 300 + 5 + manifest.entry("hparams.json").size


def test_round_trip_through_dict_is_lossless(tmp_path: Path) -> None:
    manifest = _art(tmp_path).freeze()
    again = Manifest.from_dict(manifest.to_dict())
    assert again.to_dict() == manifest.to_dict()
    assert again.digest == manifest.digest and again.labels == ("baseline",)


def test_file_removed_before_freezing_is_reported(tmp_path: Path) -> None:
    art = _art(tmp_path)
    (tmp_path / "notes.txt").unlink()
    with pytest.raises(ArtifactFileError, match="removed after add_file"):
        art.freeze()


def test_metadata_that_is_not_json_is_refused_at_freeze(tmp_path: Path) -> None:
    art = TraceletArtifact("x", "custom")
    art.metadata["bad"] = object()
    with pytest.raises(SerializationError, match="JSON"):
        art.freeze()


def test_large_file_is_hashed_a_window_at_a_time_not_read_whole(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * (2 * digest_module.MAP_WINDOW + 7))
    expected = "blake3:" + blake3.blake3(big.read_bytes()).hexdigest()
    windows: list[int] = []
    reads: list[int] = []
    real_mmap, real_preadv = digest_module.mmap.mmap, digest_module.os.preadv

    def spy_mmap(fd: int, length: int, *args: Any, **kwargs: Any) -> Any:
        windows.append(length)
        return real_mmap(fd, length, *args, **kwargs)

    def spy_preadv(fd: int, buffers: Any, offset: int) -> int:
        reads.append(got := real_preadv(fd, buffers, offset))
        return got

    monkeypatch.setattr(digest_module.mmap, "mmap", spy_mmap)
    monkeypatch.setattr(digest_module.os, "preadv", spy_preadv)
    manifest = TraceletArtifact("x", "custom").add_file(big).freeze()  # one thread: read into one buffer
    assert manifest.entry("big.bin").digest == expected and windows == []
    assert max(reads) == digest_module.READ_WINDOW and sum(reads) == big.stat().st_size
    assert digest_module.file_key(big, threads=2) == expected  # several threads: mapped
    assert windows == [digest_module.MAP_WINDOW, digest_module.MAP_WINDOW, 7]


def test_model_info_survives_freezing() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    manifest = TraceletArtifact("m", "model").add_model(linear_model.LinearRegression()).freeze()
    assert manifest.model is not None
    assert manifest.model.framework == "sklearn" and manifest.model.path == "model/model.pkl"
    assert manifest.entry("model/model.pkl").kind == "model"
