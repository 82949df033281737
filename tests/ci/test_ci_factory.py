"""CIProviderFactory, the lazy package import, JSON retries in the HTTP layer, and the cache's persisted
LRU order: configuration and plumbing a user relies on without seeing it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from ci_fakes import TOKEN, Sleeps
from pytest_httpserver import HTTPServer
from test_ci_retriever import FakeProvider

from tracelet_artifacts.ci.cache import ArtifactCache
from tracelet_artifacts.ci.errors import CIProviderError, CIUsageError
from tracelet_artifacts.ci.providers import registry
from tracelet_artifacts.ci.providers.factory import CIProviderFactory
from tracelet_artifacts.ci.providers.github import GitHubActionsProvider
from tracelet_artifacts.ci.providers.jenkins import JenkinsProvider
from tracelet_artifacts.ci.retriever import ArtifactRetriever
from tracelet_artifacts.ci.retry import RetryPolicy
from tracelet_artifacts.errors import ConfigurationError


def test_factory_builds_each_builtin_type_and_reads_tokens_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("JENKINS_USER", "alice")
    monkeypatch.setenv("JENKINS_TOKEN", TOKEN)
    gh = CIProviderFactory.create({"type": "github", "repo": "o/r"})
    assert isinstance(gh, GitHubActionsProvider)
    assert gh.http.headers_for(gh.http.origin)["Authorization"] == f"Bearer {TOKEN}"
    jk = CIProviderFactory.create({"type": "jenkins", "job": "a/b", "base_url": "http://127.0.0.1:9"})
    assert isinstance(jk, JenkinsProvider) and jk.http.headers_for(jk.http.origin)["Authorization"].startswith("Basic ")
    gl = CIProviderFactory.create({"type": "gitlab", "project": 5, "token_env": "JENKINS_TOKEN"})
    assert gl.http.headers_for(gl.http.origin)["PRIVATE-TOKEN"] == TOKEN
    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", "project/perf")
    monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", TOKEN)
    tc = CIProviderFactory.create({"type": "taskcluster"})
    assert tc.http.base_url == "http://127.0.0.1:9/api/queue/v1"
    assert tc.http.headers_for(tc.http.origin)["Authorization"].startswith('Hawk id="project/perf"')
    assert all(TOKEN not in repr(p) for p in (gh, jk, gl, tc))


def test_factory_errors_are_configuration_errors_without_secrets() -> None:
    with pytest.raises(ConfigurationError, match="known types"):
        CIProviderFactory.create({"type": "circleci"})
    with pytest.raises(ConfigurationError, match="needs 'type'"):
        CIProviderFactory.create({"repo": "o/r"})
    with pytest.raises(ConfigurationError) as info:
        CIProviderFactory.create({"type": "github", "repo": "o/r", "token": TOKEN, "colour": "blue"})
    assert "colour" in str(info.value) and TOKEN not in str(info.value)


def test_register_refuses_to_replace_a_builtin_silently() -> None:
    with pytest.raises(ConfigurationError, match="clobber"):
        CIProviderFactory.register("github", FakeProvider)
    CIProviderFactory.register("fake-ci", FakeProvider)
    try:
        assert CIProviderFactory.provider_class("fake-ci") is FakeProvider
        assert CIProviderFactory.registry()["fake-ci"].endswith(":FakeProvider")
        with pytest.raises(TypeError):
            CIProviderFactory.registry()["x"] = "y"  # type: ignore[index]
    finally:
        registry.unregister("fake-ci")


def test_importing_the_ci_package_does_not_import_httpx() -> None:
    code = "import sys, tracelet_artifacts.ci, tracelet_artifacts.ci.providers; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_json_lists_retry_server_errors_with_backoff(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_ordered_request("/repos/o/r/actions/runs").respond_with_data("bad gateway", status=502)
    api.expect_ordered_request("/repos/o/r/actions/runs").respond_with_json({"total_count": 0, "workflow_runs": []})
    gh = GitHubActionsProvider(
        "o/r", base_url=api.url_for("/").rstrip("/"), retry=RetryPolicy(3, 0.5, jitter=0), sleep=sleeps
    )
    assert gh.list_runs() == [] and sleeps == [0.5]
    api.expect_request("/repos/o/r/actions/runs").respond_with_data("<html>oops</html>", status=200)
    gh.http._etags.clear()
    with pytest.raises(CIProviderError, match="did not return JSON"):
        gh.list_runs()


def test_access_order_survives_close_and_reopen(tmp_path: Path) -> None:
    files = {("1", f"f{i}.bin", 1): bytes([i]) * 400_000 for i in range(3)}
    now = [1000.0]
    retriever = ArtifactRetriever(tmp_path / "c", max_cache_size_mb=1.0, clock=lambda: now[0])
    retriever.register_provider("fake", FakeProvider(files))
    for name in ("f0.bin", "f1.bin"):
        now[0] += 1
        asyncio.run(retriever.retrieve_artifact("1", name, "fake"))
    now[0] += 1
    asyncio.run(retriever.retrieve_artifact("1", "f0.bin", "fake"))  # f0 is now the most recent
    retriever.close()
    cache = ArtifactCache(tmp_path / "c", max_bytes=1024 * 1024, max_age_seconds=86400, clock=lambda: now[0])
    entries = {e.name: e for e in cache}
    assert cache.last_access(entries["f0.bin"]) > cache.last_access(entries["f1.bin"])
    reopened = ArtifactRetriever(tmp_path / "c", max_cache_size_mb=1.0, clock=lambda: now[0])
    reopened.register_provider("fake", FakeProvider(files))
    now[0] += 1
    asyncio.run(reopened.retrieve_artifact("1", "f2.bin", "fake"))
    assert sorted(e.name for e in reopened.cache) == ["f0.bin", "f2.bin"]  # f1 was least recently used


def test_unreachable_api_is_a_retryable_ci_error_after_retries(sleeps: Sleeps) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    gh = GitHubActionsProvider(
        "o/r", token=TOKEN, base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(3, 0.1, jitter=0), sleep=sleeps
    )
    with pytest.raises(CIProviderError, match="network error") as info:
        gh.list_runs()
    assert info.value.retryable and sleeps == [0.1, 0.2] and TOKEN not in str(info.value)


def test_the_registry_is_the_one_read_only_list_of_providers() -> None:
    known = registry.known()
    assert {"github", "gitlab", "jenkins", "taskcluster"} <= set(known)
    with pytest.raises(TypeError):
        known["circle"] = registry.ProviderSpec("x:Y")  # type: ignore[index]
    with pytest.raises(ConfigurationError, match="built-in"):
        registry.unregister("github")
    with pytest.raises(ConfigurationError, match="known types: github, gitlab, jenkins, taskcluster"):
        registry.provider_class("circle")


def test_a_provider_whose_module_is_missing_names_what_to_install() -> None:
    registry.register("ghost", "no_such_package.ci:GhostProvider", install="pip install ghost-ci")
    try:
        with pytest.raises(ConfigurationError, match="pip install ghost-ci"):
            CIProviderFactory.create({"type": "ghost"})
    finally:
        registry.unregister("ghost")


def test_the_factory_builds_from_the_original_designs_configuration_shape(api: HTTPServer) -> None:
    api.expect_request("/repos/owner/repo/actions/runs").respond_with_json({"total_count": 0, "workflow_runs": []})
    provider = asyncio.run(CIProviderFactory.create_provider(
        "github", {"token": TOKEN, "repository": "owner/repo", "commit_sha": "abcdef123456",
                   "base_url": api.url_for("/").rstrip("/")}))  # fmt: skip
    assert isinstance(provider, GitHubActionsProvider) and provider.repo == "owner/repo"
    assert provider.list_runs() == [] and api.log[0][0].args["head_sha"] == "abcdef123456"
    assert CIProviderFactory.get_available_providers()[:4] == ["github", "gitlab", "jenkins", "taskcluster"]
    with pytest.raises(CIUsageError, match="disagree"):
        CIProviderFactory.create({"type": "github", "repo": "a/b", "repository": "c/d"})
