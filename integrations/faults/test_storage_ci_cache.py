"""A byte flipped in a cached CI artifact: the next retrieval (single or batch, small or large) detects it by
digest, logs what it found, downloads the artifact again from the provider -- GitHub's wire format served on
loopback -- and serves the right bytes. Corrupt bytes are never returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from storage_support import ci_fakes, flip_byte

from tracelet_artifacts.ci.providers.factory import CIProviderFactory
from tracelet_artifacts.ci.retriever import INLINE_HIT_BYTES, ArtifactRetriever

pytestmark = pytest.mark.integration
# The CI tests' loopback servers: an API host and a CDN host the zip downloads redirect to.
_api_server, _cdn_server, api, cdn = ci_fakes._api_server, ci_fakes._cdn_server, ci_fakes.api, ci_fakes.cdn
TOKEN, make_zip = ci_fakes.TOKEN, ci_fakes.make_zip

SMALL = make_zip({"perf.json": b'{"metrics": {"fps": 60}}'})
LARGE = make_zip({"trace.bin": os.urandom(INLINE_HIT_BYTES + (1 << 20))})  # verified off the event loop


def _serve(api: HTTPServer, cdn: HTTPServer) -> None:
    """Run 9 with two artifacts; each zip download redirects to the CDN host, as GitHub does."""
    listing = {"total_count": 2, "artifacts": []}
    for artifact_id, name, body in ((5, "perf", SMALL), (6, "trace", LARGE)):
        listing["artifacts"].append({  # type: ignore[attr-defined]
            "id": artifact_id, "name": name, "size_in_bytes": len(body), "expired": False,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "archive_download_url": api.url_for(f"/repos/o/r/actions/artifacts/{artifact_id}/zip"),
            "created_at": "2024-01-01T00:00:00Z"})
        api.expect_request(f"/repos/o/r/actions/artifacts/{artifact_id}/zip").respond_with_data(
            "", status=302, headers={"Location": cdn.url_for(f"/blob/{artifact_id}")})
        cdn.expect_request(f"/blob/{artifact_id}").respond_with_data(body, content_type="application/zip")
    api.expect_request("/repos/o/r/actions/runs/9/artifacts").respond_with_json(listing)


def _downloads(cdn: HTTPServer, artifact_id: int) -> int:
    return sum(1 for request, _ in cdn.log if request.path == f"/blob/{artifact_id}")


@pytest.fixture
def retriever(api: HTTPServer, cdn: HTTPServer, tmp_path: Path) -> ArtifactRetriever:
    _serve(api, cdn)
    retriever = ArtifactRetriever(tmp_path / "cache")
    retriever.register_provider("gh", CIProviderFactory.create(
        {"type": "github", "repo": "o/r", "token": TOKEN, "base_url": api.url_for("/").rstrip("/")}))
    return retriever


def test_a_corrupt_cached_artifact_is_reported_and_downloaded_again(
    retriever: ArtifactRetriever, cdn: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = asyncio.run(retriever.retrieve_artifact("9", "perf", "gh"))
    assert path.read_bytes() == SMALL and _downloads(cdn, 5) == 1
    flip_byte(path, offset=len(SMALL) // 2)
    with caplog.at_level(logging.WARNING, logger="tracelet_artifacts.ci"):
        again, meta = asyncio.run(retriever.retrieve_artifact("9", "perf", "gh"))
    assert again.read_bytes() == SMALL and meta.sha256 == hashlib.sha256(SMALL).hexdigest()
    assert meta.metadata["ci_cached"] is False and _downloads(cdn, 5) == 2
    assert "cached CI artifact 'perf' (gh run 9, attempt 1)" in caplog.text and "is corrupt" in caplog.text
    asyncio.run(retriever.retrieve_artifact("9", "perf", "gh"))  # sound again: a plain hit
    assert _downloads(cdn, 5) == 2
    retriever.close()


def test_a_batch_redownloads_corrupt_small_and_large_entries_and_serves_sound_ones(
    retriever: ArtifactRetriever, cdn: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    requests = [("9", "perf", "gh"), ("9", "trace", "gh")]
    first = retriever.retrieve_batch(requests)
    assert all(r.ok for r in first)
    for result in first:
        assert result.path is not None
        flip_byte(result.path, offset=100)
    with caplog.at_level(logging.WARNING, logger="tracelet_artifacts.ci"):
        second = retriever.retrieve_batch(requests)
    assert [r.ok and not r.from_cache for r in second] == [True, True]
    assert [r.path.read_bytes() for r in second if r.path] == [SMALL, LARGE]
    assert (_downloads(cdn, 5), _downloads(cdn, 6)) == (2, 2)
    assert caplog.text.count("is corrupt") == 2
    third = retriever.retrieve_batch(requests)
    assert [r.from_cache for r in third] == [True, True] and (_downloads(cdn, 5), _downloads(cdn, 6)) == (2, 2)
    retriever.close()
