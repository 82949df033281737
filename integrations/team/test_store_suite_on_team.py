"""The embedded store's own suite (tests/test_catalog.py), run again on the team store: the catalog on
PostgreSQL and the blobs in an S3-compatible bucket. Same behaviour is the contract, so same tests.

Tests that take the ``store`` fixture are collected from the fast suite; this module's ``store`` fixture
overrides theirs. One fast test is replaced here because the team store behaves better: a corrupt cached
blob is fetched again from the bucket instead of being reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from team_support import Team, adopt_suite

from tracelet_artifacts import TraceletArtifact
from tracelet_artifacts.errors import IntegrityError
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("isolated")]

adopt_suite("test_catalog.py", globals(), replaced=["test_corrupted_blob_is_detected_on_fetch_and_verify"])


@pytest.fixture
def store(team: Team, tmp_path: Path) -> EmbeddedStore:
    opened = team.open(tmp_path / "store")
    yield opened
    opened.close()


def test_a_corrupt_cached_blob_is_fetched_again_from_the_bucket(store: EmbeddedStore, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "w.bin").write_bytes(b"good weights")
    record = store.log(TraceletArtifact("w", "weights").add_file(tmp_path / "w.bin"))
    sha = record.manifest.entry("w.bin").digest
    cached = store.blobs.path(sha)
    cached.unlink()  # break the hard link first: only the cache's copy goes bad
    cached.write_bytes(b"bad weights!")
    store.fetch("w", "latest", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == b"good weights"
    assert cached.read_bytes() == b"good weights"
    assert "corrupt" in caplog.text and "fetching it again" in caplog.text


def test_a_corrupt_object_in_the_bucket_is_never_served(store: EmbeddedStore, team: Team, tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"good weights")
    record = store.log(TraceletArtifact("w", "weights").add_file(tmp_path / "w.bin"))
    sha = record.manifest.entry("w.bin").digest
    blobs = store.blobs
    blobs.client.put_object(Bucket=blobs.bucket, Key=blobs.key(sha), Body=b"bad weights!")  # type: ignore[attr-defined]
    other = team.open(tmp_path / "other-machine")  # an empty cache: it must read the bucket
    assert other.verify("w") == ["w.bin"]
    with pytest.raises(IntegrityError, match="corrupt"):
        other.fetch("w", "latest", tmp_path / "out")
    assert not (tmp_path / "out" / "w.bin").exists()
    assert not other.blobs.path(sha).exists()
