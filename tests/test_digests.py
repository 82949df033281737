"""Content keys: BLAKE3 for new blobs, SHA-256 blobs of older stores still served and recognised, SHA-256 or MD5
computed only when asked (once, cached), ``migrate`` renaming old blobs, and reads checked while they stream.

An "older" version here is recorded the way the previous release wrote one: its blobs under their SHA-256
names, its manifest naming them (``tests/test_store_fixture.py`` reads a store the previous release built).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import IntegrityError
from tracelet_artifacts.frozen import compute_digest
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.rekey import rekey
from tracelet_artifacts.values import Manifest, ManifestEntry

pytestmark = pytest.mark.usefixtures("isolated")
CONTENT = {"weights.bin": b"\x00weights" * 4000, "config.yaml": b"lr: 0.1\n"}


def _source(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for name, data in CONTENT.items():
        (folder / name).write_bytes(data)
    return folder


def _log_as_before_blake3(store: EmbeddedStore, name: str = "model") -> Manifest:
    """A version as the previous release recorded it: SHA-256 blobs and a manifest naming them."""
    entries = []
    for path, data in sorted(CONTENT.items()):
        key = hashlib.sha256(data).hexdigest()
        assert store.blobs.put_named(key, io.BytesIO(data))
        entries.append(ManifestEntry(path, len(data), key, "application/octet-stream", False))
    manifest = Manifest(name, TraceletArtifact(name, "model").freeze().artifact_type,
                        compute_digest(entries, ()), tuple(entries))
    assert store.log(manifest).ref == f"{name}:v1"
    return manifest


def test_new_blobs_are_named_by_blake3_and_laid_out_under_blake3(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    record = store.log(TraceletArtifact("model", "model").add_dir(_source(tmp_path / "src")))
    entry = record.manifest.entry("weights.bin")
    assert entry.algorithm == "blake3" and record.manifest.digest_algorithm == "blake3"
    assert entry.digest == digest.bytes_key(CONTENT["weights.bin"]) == digest.file_key(tmp_path / "src" / "weights.bin")
    hexdigest = digest.hex_of(entry.digest)
    assert store.blob_path(entry.digest) == store.blobs.root / "blake3" / hexdigest[:2] / hexdigest[2:]
    store.close()


def test_a_version_named_by_sha256_reads_back_and_logging_it_again_finds_it(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    old = _log_as_before_blake3(store)
    assert store.get("model").manifest.digest_algorithm == "sha256"
    store.fetch("model", "v1", tmp_path / "out")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == CONTENT["weights.bin"]
    assert store.verify("model", "v1") == []
    again = store.log(TraceletArtifact("model", "model").add_dir(_source(tmp_path / "src")).add_label("seen"))
    assert (again.version, again.created, again.digest) == (1, False, old.digest)  # the same version, as before
    assert "seen" in store.catalog.labels("model", 1)
    changed = store.log(TraceletArtifact("model", "model").add_dir(_source(tmp_path / "src"))
                        .add_object({"extra": True}, "more"))
    assert changed.version == 2 and changed.manifest.digest_algorithm == "blake3"  # a mixed store, both served
    assert store.verify("model", "v2") == [] and store.verify("model", "v1") == []
    store.close()


def test_sha256_and_md5_are_computed_once_when_asked_and_cached(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddedStore(tmp_path / "store")
    key = store.log(TraceletArtifact("model", "model").add_dir(_source(tmp_path / "src"))).manifest.entry(
        "weights.bin").digest
    assert store.db.read("SELECT COUNT(*) FROM blob_digests")[0][0] == 0  # nothing computed while logging
    assert store.digests.hexdigest(key, "sha256") == hashlib.sha256(CONTENT["weights.bin"]).hexdigest()
    assert store.digests.hexdigest(key, "md5") == hashlib.md5(CONTENT["weights.bin"]).hexdigest()
    monkeypatch.setattr(store.digests, "_compute", lambda *_: pytest.fail("computed twice"))
    assert store.digests.hexdigest(key, "sha256") == hashlib.sha256(CONTENT["weights.bin"]).hexdigest()
    assert store.digests.hexdigest(key, "blake3") == digest.hex_of(key)  # its own: read from the key
    store.close()


def test_a_corrupt_blob_gets_no_digest_computed(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    key = store.blobs.put_bytes(b"original bytes")[0]
    store.blobs.path(key).write_bytes(b"tampered bytes")
    with pytest.raises(IntegrityError, match="corrupt"):
        store.digests.hexdigest(key, "sha256")
    store.close()


def test_migrate_renames_sha256_blobs_and_keeps_each_versions_identity(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    old = _log_as_before_blake3(store)
    counted = rekey(store, dry_run=True)
    assert (counted.blobs, counted.versions, counted.removed) == (2, 1, 0)
    assert all(store.blobs.exists(e.digest) for e in old.entries)  # a dry run changes nothing
    store.close()
    result = CliRunner().invoke(main, ["migrate", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "Renamed 2 blob(s)" in result.output and "removed 2 old name(s)" in result.output
    store = EmbeddedStore(tmp_path / "store")
    record = store.get("model", "v1")
    assert record.digest == old.digest and record.manifest.digest == old.digest  # identity kept
    assert record.manifest.digest_algorithm == "blake3"
    assert not any(store.blobs.exists(e.digest) for e in old.entries)  # the SHA-256 names are gone
    assert store.verify("model", "v1") == []
    store.fetch("model", "v1", tmp_path / "out")
    assert (tmp_path / "out" / "config.yaml").read_bytes() == CONTENT["config.yaml"]
    weights = record.manifest.entry("weights.bin").digest
    assert store.digests.hexdigest(weights, "sha256") == old.entry("weights.bin").digest  # remembered, not hashed
    again = store.log(TraceletArtifact("model", "model").add_dir(_source(tmp_path / "src")))
    assert (again.version, again.created) == (1, False)
    store.close()


def test_verifying_reader_raises_at_the_end_of_bad_content() -> None:
    key = digest.bytes_key(b"good content")
    reader = digest.VerifyingReader(io.BytesIO(b"good content"), key, 12)
    assert b"".join(iter(lambda: reader.read(5), b"")) == b"good content"
    bad = digest.VerifyingReader(io.BytesIO(b"bad  content"), key, 12, what="model:v1/w.bin")
    with pytest.raises(IntegrityError, match=r"model:v1/w\.bin is corrupt"):
        while bad.read(5):
            pass
    short = digest.VerifyingReader(io.BytesIO(b"good"), digest.bytes_key(b"good"), 12)
    with pytest.raises(IntegrityError):
        short.read()
        short.read()


def test_keys_say_their_algorithm_and_anything_else_is_refused() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert digest.algorithm_of(sha) == "sha256" and digest.key_path(sha) == f"{sha[:2]}/{sha[2:]}"
    blake = digest.bytes_key(b"x")
    assert digest.algorithm_of(blake) == "blake3" and digest.key_path(blake).startswith("blake3/")
    for bad in ("md5:" + "0" * 32, "blake3:xyz", "../../etc", sha.upper()):
        assert not digest.is_key(bad)
        with pytest.raises(ValueError, match="not a blob key"):
            digest.algorithm_of(bad)


def test_old_names_still_read_the_content_key() -> None:
    entry = ManifestEntry.from_dict({"path": "a.txt", "size": 1, "sha256": "ab" * 32, "mime": "text/plain",
                                     "is_text": True})  # a manifest written before BLAKE3
    assert entry.digest == "ab" * 32 and entry.algorithm == "sha256"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert entry.sha256 == entry.digest
    assert caught and issubclass(caught[0].category, DeprecationWarning)
    assert ManifestEntry.from_dict(entry.to_dict()) == entry and "sha256" not in entry.to_dict()


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024 - 1, 1024 * 1024, 3 * 1024 * 1024 + 7])
def test_a_file_hashes_the_same_read_on_one_thread_and_mapped_for_several(tmp_path: Path, size: int,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(size)
    (tmp_path / "f.bin").write_bytes(data)
    monkeypatch.setattr(digest, "MAP_WINDOW", 1024 * 1024)  # several windows
    expected = {algorithm: digest.bytes_key(data, algorithm) for algorithm in digest.KEY_ALGORITHMS}
    for algorithm in digest.KEY_ALGORITHMS:
        for threads in (1, 3):
            assert digest.file_key(tmp_path / "f.bin", algorithm, threads) == expected[algorithm]
    fd = os.open(tmp_path / "f.bin", os.O_RDONLY)
    try:  # only the first ``size`` bytes, as a blob copied from a file that grew since is hashed
        assert digest.fd_hexdigest(fd, digest.BLAKE3, 1, size // 2) == digest.hex_of(digest.bytes_key(data[:size // 2]))
    finally:
        os.close(fd)
