"""ArtifactRetriever: cache hits need no request, corrupt entries are re-fetched, keys include the attempt,
LRU eviction by size and age, bounded batch concurrency, failures reported while the batch continues."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from ci_fakes import TOKEN, Sleeps, make_zip
from pytest_httpserver import HTTPServer

from tracelet_artifacts.ci.compat import get_artifact_handler, get_artifact_retriever, initialize_artifact_systems
from tracelet_artifacts.ci.download import Downloaded
from tracelet_artifacts.ci.errors import ArtifactExpiredError, CINotFoundError
from tracelet_artifacts.ci.http import Opened
from tracelet_artifacts.ci.providers.base import CIArtifact, CIProvider, CIRun
from tracelet_artifacts.ci.providers.github import GitHubActionsProvider
from tracelet_artifacts.ci.retriever import ArtifactRequest, ArtifactRetriever
from tracelet_artifacts.errors import ConfigurationError


class FakeProvider(CIProvider):
    """In-memory provider: ``files[(run, name, attempt)] = bytes``; counts downloads and concurrency."""

    name = "fake"

    def __init__(self, files: dict[tuple[str, str, int], bytes], delay: float = 0.0) -> None:
        self.files = files
        self.delay = delay
        self.downloads = 0
        self.active = 0
        self.peak = 0
        self.expired: set[str] = set()
        self._lock = threading.Lock()

    def list_runs(self, *, limit: int | None = 50, **filters: Any) -> list[CIRun]:
        return [CIRun(provider="fake", run_id=r) for r in sorted({k[0] for k in self.files})]

    def list_artifacts(self, run_id: str, *, attempt: int | None = None) -> list[CIArtifact]:
        return [
            CIArtifact(provider="fake", run_id=r, name=n, attempt=a, size=len(b), expired=n in self.expired)
            for (r, n, a), b in self.files.items()
            if r == run_id and (attempt is None or a == attempt)
        ]

    def _open_download(self, artifact: CIArtifact) -> AbstractContextManager[Opened]:  # pragma: no cover
        raise NotImplementedError

    def download_artifact(self, artifact: CIArtifact, dest: Path, *, progress: Any = None) -> Downloaded:
        if artifact.expired:
            raise ArtifactExpiredError(f"{artifact.name} expired")
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
            body = self.files[(artifact.run_id, artifact.name, artifact.attempt)]
            dest.write_bytes(body)
            with self._lock:
                self.downloads += 1
            return Downloaded(dest, len(body), hashlib.sha256(body).hexdigest())
        finally:
            with self._lock:
                self.active -= 1


def _retriever(tmp_path: Path, provider: CIProvider, **kw: Any) -> ArtifactRetriever:
    retriever = ArtifactRetriever(tmp_path / "cache", **kw)
    retriever.register_provider("fake", provider)
    return retriever


def test_second_retrieval_is_served_from_cache_with_metadata(tmp_path: Path) -> None:
    provider = FakeProvider({("1", "perf.json", 1): b'{"metrics": {"throughput": 120.5}}'})
    retriever = _retriever(tmp_path, provider)
    path, meta = asyncio.run(retriever.retrieve_artifact("1", "perf.json", "fake"))
    path2, meta2 = asyncio.run(retriever.retrieve_artifact("1", "perf.json", "fake"))
    assert provider.downloads == 1 and path == path2
    assert meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (meta.artifact_name, meta.test_run_id, meta.provider_name) == ("perf.json", "1", "fake")
    assert meta2.metadata["ci_cached"] is True and meta.metadata["ci_cached"] is False
    # a new retriever over the same folder reads the persisted index
    again = _retriever(tmp_path, provider)
    asyncio.run(again.retrieve_artifact("1", "perf.json", "fake"))
    assert provider.downloads == 1


def test_use_cache_false_fetches_again(tmp_path: Path) -> None:
    provider = FakeProvider({("1", "a.txt", 1): b"hello"})
    retriever = _retriever(tmp_path, provider)
    asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake", use_cache=False))
    assert provider.downloads == 2


def test_corrupt_cache_entry_is_detected_and_refetched(tmp_path: Path) -> None:
    provider = FakeProvider({("1", "a.txt", 1): b"original"})
    retriever = _retriever(tmp_path, provider)
    path, _ = asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    path.write_bytes(b"bit rot!")
    path2, meta = asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    assert provider.downloads == 2 and path2.read_bytes() == b"original"
    assert meta.sha256 == hashlib.sha256(b"original").hexdigest()
    path2.unlink()  # a missing file is re-fetched too
    path3, _ = asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    assert provider.downloads == 3 and path3.read_bytes() == b"original"


def test_a_corrupt_cache_entry_is_reported_with_its_name_and_digests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FakeProvider({("7", "perf.json", 2): b'{"fps": 60}'})
    retriever = _retriever(tmp_path, provider)
    path, _ = asyncio.run(retriever.retrieve_artifact("7", "perf.json", "fake"))
    path.write_bytes(b'{"fps": 6}')
    with caplog.at_level("WARNING", logger="tracelet_artifacts.ci"):
        results = retriever.retrieve_batch([("7", "perf.json", "fake")])
    assert results[0].ok and not results[0].from_cache and results[0].path.read_bytes() == b'{"fps": 60}'
    wanted = hashlib.sha256(b'{"fps": 60}').hexdigest()[:12]
    assert f"cached CI artifact 'perf.json' (fake run 7, attempt 2) at {path} is corrupt" in caplog.text
    assert f"not {wanted}" in caplog.text and "\x1f" not in caplog.text


def test_cache_key_includes_the_attempt(tmp_path: Path) -> None:
    provider = FakeProvider({("1", "a.txt", 1): b"first try", ("1", "a.txt", 2): b"second try"})
    retriever = _retriever(tmp_path, provider)
    p1, _ = asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake", attempt=1))
    p2, _ = asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake", attempt=2))
    assert (p1.read_bytes(), p2.read_bytes()) == (b"first try", b"second try") and p1 != p2
    newest, _ = asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    assert newest.read_bytes() == b"second try" and provider.downloads == 2


def test_lru_eviction_keeps_the_cache_under_its_size(tmp_path: Path) -> None:
    files = {("1", f"f{i}.bin", 1): bytes([i]) * 400_000 for i in range(5)}
    provider = FakeProvider(files)
    retriever = _retriever(tmp_path, provider, max_cache_size_mb=1.0)  # room for two files of 400 kB
    for i in range(3):
        asyncio.run(retriever.retrieve_artifact("1", f"f{i}.bin", "fake"))
    asyncio.run(retriever.retrieve_artifact("1", "f1.bin", "fake"))  # f1 now more recent than f2
    asyncio.run(retriever.retrieve_artifact("1", "f3.bin", "fake"))
    names = sorted(e.name for e in retriever.cache)
    assert names == ["f1.bin", "f3.bin"]
    assert retriever.cache.total_bytes <= 1024 * 1024
    assert sum(1 for p in (tmp_path / "cache" / "objects").rglob("*.bin")) == 2


def test_entries_older_than_the_age_limit_are_fetched_again(tmp_path: Path) -> None:
    now = [1_000_000.0]
    provider = FakeProvider({("1", "a.txt", 1): b"x", ("1", "b.txt", 1): b"y"})
    retriever = ArtifactRetriever(tmp_path / "c", max_cache_age_days=1, clock=lambda: now[0])
    retriever.register_provider("fake", provider)
    asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    now[0] += 2 * 86400
    asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    assert provider.downloads == 2
    now[0] += 3600
    asyncio.run(retriever.retrieve_artifact("1", "a.txt", "fake"))
    assert provider.downloads == 2


def test_batch_is_bounded_ordered_and_reports_failures(tmp_path: Path) -> None:
    files = {(str(r), "perf.json", 1): f'{{"run": {r}}}'.encode() for r in range(20)}
    provider = FakeProvider(files, delay=0.05)
    provider.expired.add("gone.json")
    provider.files[("3", "gone.json", 1)] = b"-"
    retriever = _retriever(tmp_path, provider, max_concurrency=4)
    requests: list[Any] = [(str(r), "perf.json", "fake") for r in range(20)]
    requests.insert(5, {"test_run_id": "3", "artifact_name": "gone.json", "provider_name": "fake"})
    requests.insert(9, ArtifactRequest("404", "perf.json", "fake"))
    requests.append(("1", "perf.json", "nope"))
    seen: list[str] = []
    results = retriever.retrieve_batch(requests, progress=lambda r: seen.append(r.request.artifact_name))
    assert [r.request.test_run_id for r in results] == [ArtifactRequest.of(q).test_run_id for q in requests]
    failed = {(r.request.test_run_id, r.error_type) for r in results if not r.ok}
    assert failed == {("3", "ArtifactExpiredError"), ("404", "CINotFoundError"), ("1", "ConfigurationError")}
    assert sum(r.ok for r in results) == 20 and len(seen) == len(requests)
    assert 2 <= provider.peak <= 4  # concurrent, but never more than the bound
    assert all(r.path is not None and r.path.read_bytes() == files[(r.request.test_run_id, "perf.json", 1)]
               for r in results if r.ok)  # fmt: skip
    slots = [d for d in (tmp_path / "cache" / "objects").glob("*/*") if d.is_dir()]
    assert len(slots) == 20 and all(any(d.iterdir()) for d in slots)  # the failed one left no folder
    again = retriever.retrieve_batch([(str(r), "perf.json", "fake") for r in range(20)])
    assert all(r.from_cache for r in again) and provider.downloads == 20


def test_unknown_provider_and_duplicate_registration_are_configuration_errors(tmp_path: Path) -> None:
    retriever = _retriever(tmp_path, FakeProvider({}))
    with pytest.raises(ConfigurationError, match="register_provider"):
        asyncio.run(retriever.retrieve_artifact("1", "x", "github"))
    with pytest.raises(ConfigurationError, match="already registered"):
        retriever.register_provider("fake", FakeProvider({}))
    with pytest.raises(CINotFoundError, match="no artifact named"):
        asyncio.run(retriever.retrieve_artifact("1", "x", "fake"))


def test_reference_artifacts_are_never_cached(tmp_path: Path) -> None:
    class RefProvider(FakeProvider):
        def list_artifacts(self, run_id: str, *, attempt: int | None = None) -> list[CIArtifact]:
            return [CIArtifact(provider="fake", run_id="1", name="live.log", extra={"cacheable": False})]

    provider = RefProvider({("1", "live.log", 1): b"streaming"})
    retriever = _retriever(tmp_path, provider)
    for _ in range(2):
        path, _meta = asyncio.run(retriever.retrieve_artifact("1", "live.log", "fake"))
        assert path.read_bytes() == b"streaming"
    assert provider.downloads == 2 and len(retriever.cache) == 0


def test_initialize_artifact_systems_end_to_end_against_github(
    api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    body = make_zip({"perf.json": b'{"metrics": {"fps": 60}}'})
    api.expect_request("/repos/o/r/actions/runs/9/artifacts").respond_with_json(
        {"total_count": 1, "artifacts": [{"id": 5, "name": "perf", "size_in_bytes": len(body), "expired": False,
                                          "archive_download_url": api.url_for("/repos/o/r/actions/artifacts/5/zip"),
                                          "created_at": "2024-01-01T00:00:00Z"}]}
    )  # fmt: skip
    api.expect_request("/repos/o/r/actions/artifacts/5/zip").respond_with_data(
        "", status=302, headers={"Location": cdn.url_for("/blob/5")}
    )
    cdn.expect_request("/blob/5").respond_with_data(body, content_type="application/zip")
    providers = initialize_artifact_systems(
        {"gh": {"type": "github", "repo": "o/r", "token": TOKEN, "base_url": api.url_for("/").rstrip("/")}},
        tmp_path / "store",
        tmp_path / "cache",
    )
    handler, retriever = providers.handler, providers.retriever
    assert isinstance(providers["gh"], GitHubActionsProvider) and list(providers) == ["gh"]
    assert get_artifact_handler() is handler and get_artifact_retriever() is retriever
    assert handler.providers["gh"] is retriever.providers["gh"] is providers["gh"]
    path, meta = asyncio.run(retriever.retrieve_artifact("9", "perf", "gh"))
    assert path.read_bytes() == body and meta.created_at.year == 2024
    assert "Authorization" not in cdn.log[0][0].headers  # werkzeug headers: case-insensitive
    kept = handler.store_artifact(path, "perf", "9", "gh", labels=["nightly"])
    assert kept.artifact_path.name == "perf.zip"
    assert handler.store_artifact(path, "perf.zip", "9", "gh-copy").artifact_path.name == "perf.zip"
    assert [m.artifact_name for m in handler.list_artifacts(provider_name="gh")] == ["perf"]
    assert handler.get_artifact("9", "perf", "gh") == kept and "nightly" in kept.labels
    asyncio.run(retriever.retrieve_artifact("9", "perf", "gh"))
    assert len([r for r, _ in api.log if r.path.endswith("/zip")]) == 1
    retriever.close()


def test_a_batch_larger_than_the_cache_keeps_every_returned_file(tmp_path: Path) -> None:
    files = {("1", f"f{i}.bin", 1): bytes([i]) * 400_000 for i in range(5)}
    retriever = _retriever(tmp_path, FakeProvider(files), max_cache_size_mb=1.0, max_concurrency=2)
    results = retriever.retrieve_batch([("1", f"f{i}.bin", "fake") for i in range(5)])
    assert all(r.ok and r.path is not None and r.path.read_bytes() == files[("1", r.request.artifact_name, 1)]
               for r in results)  # fmt: skip
    assert retriever.cache.total_bytes > 1024 * 1024  # over the limit until the next store
    files[("2", "late.bin", 1)] = b"x" * 1000
    asyncio.run(retriever.retrieve_artifact("2", "late.bin", "fake"))
    assert retriever.cache.total_bytes <= 1024 * 1024


def test_the_original_getters_create_at_a_folder_once_and_refuse_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracelet_artifacts.ci import compat

    monkeypatch.setattr(compat, "_CURRENT", {"handler": None, "retriever": None})
    with pytest.raises(ConfigurationError, match="not initialised"):
        get_artifact_retriever()
    retriever = get_artifact_retriever(tmp_path / "cache")
    assert get_artifact_retriever() is retriever is get_artifact_retriever(tmp_path / "cache")
    with pytest.raises(ConfigurationError, match="call initialize_artifact_systems"):
        get_artifact_retriever(tmp_path / "elsewhere")
    handler = get_artifact_handler(tmp_path / "kept")
    assert handler.storage_dir == tmp_path / "kept" and get_artifact_handler() is handler
    retriever.close()


def test_the_retriever_trends_and_compares_what_it_cached(tmp_path: Path) -> None:
    files = {("1", "perf.json", 1): b'{"metrics": {"fps": 50}}', ("2", "perf.json", 1): b'{"metrics": {"fps": 60}}'}
    retriever = _retriever(tmp_path, FakeProvider(files))

    async def use() -> tuple[Any, Any]:
        for run in ("1", "2"):
            await retriever.retrieve_artifact(run, "perf.json", "fake")
        trend = await retriever.analyze_metrics_trend("fake", "perf_report", "fps", days=3650)
        comparison = await retriever.compare_artifacts(("1", "perf.json", "fake"), ("2", "perf.json", "fake"))
        return trend, comparison

    trend, comparison = asyncio.run(use())
    assert [p.value for p in trend.points] == [50.0, 60.0] and trend.artifact_type == "performance_report"
    assert comparison.metric_deltas["metrics.fps"].percent == pytest.approx(20.0)
    assert len(retriever.cached_artifacts()) == 2
    retriever.close()
