"""GitHub Actions provider against a loopback server replaying the REST API's shapes: Link pagination,
ETag/304, rate limits, the 302 to a blob host (no token forwarded), 410 expired, Gist/release uploads."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from ci_fakes import TOKEN, Sleeps, headers_seen, make_zip
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracelet_artifacts.ci.errors import ArtifactExpiredError, CIAuthError, DownloadIntegrityError, RateLimitedError
from tracelet_artifacts.ci.providers.github import GitHubActionsProvider
from tracelet_artifacts.ci.retry import RetryPolicy

REPO = "octo/repo"
RUNS = f"/repos/{REPO}/actions/runs"


def _run(i: int) -> dict[str, Any]:
    return {
        "id": 30433642 + i,
        "name": "Build",
        "head_branch": "main",
        "head_sha": f"{i:040x}",
        "run_number": 562 + i,
        "run_attempt": 1,
        "event": "push",
        "status": "completed",
        "conclusion": "success",
        "workflow_id": 159038,
        "html_url": f"https://github.com/{REPO}/actions/runs/{30433642 + i}",
        "created_at": "2020-01-22T19:33:08Z",
    }


def _artifact(i: int, name: str, *, expired: bool = False, digest: str | None = None, base: str = "") -> dict:
    item = {
        "id": i,
        "node_id": "MDg6QXJ0aWZhY3QxMQ==",
        "name": name,
        "size_in_bytes": 556,
        "url": f"{base}/repos/{REPO}/actions/artifacts/{i}",
        "archive_download_url": f"{base}/repos/{REPO}/actions/artifacts/{i}/zip",
        "expired": expired,
        "created_at": "2020-01-10T14:59:22Z",
        "expires_at": "2020-03-21T14:59:22Z",
        "workflow_run": {"id": 2332938, "head_branch": "main"},
    }
    if digest:
        item["digest"] = digest
    return item


def _provider(api: HTTPServer, sleeps: Sleeps, **kw: Any) -> GitHubActionsProvider:
    return GitHubActionsProvider(
        REPO,
        token=TOKEN,
        base_url=api.url_for("/").rstrip("/"),
        retry=RetryPolicy(attempts=3, base_delay=0.01, jitter=0),
        sleep=sleeps,
        **kw,
    )


def test_runs_follow_link_pagination_over_three_pages_and_send_filters(api: HTTPServer, sleeps: Sleeps) -> None:
    runs = [_run(i) for i in range(7)]
    size = 3  # the server pages by 3, whatever per_page says

    def page(request: Request) -> Response:
        number = int(request.args.get("page", "1"))
        assert request.args["branch"] == "main" and request.args["status"] == "success"
        chunk = runs[(number - 1) * size : number * size]
        links = [f'<{api.url_for(RUNS)}?branch=main&status=success&page=3>; rel="last"']
        if number * size < len(runs):
            nxt = api.url_for(RUNS) + f"?branch=main&status=success&per_page=3&page={number + 1}"
            links.insert(0, f'<{nxt}>; rel="next"')
        return Response(
            json.dumps({"total_count": len(runs), "workflow_runs": chunk}),
            headers={"Link": ", ".join(links), "Content-Type": "application/json"},
        )

    api.expect_request(RUNS).respond_with_handler(page)
    with _provider(api, sleeps) as gh:
        got = gh.list_runs(branch="main", status="success", limit=None)
        assert [r.run_id for r in got] == [str(r["id"]) for r in runs]
        assert [r.args.get("page", "1") for r, _ in api.log] == ["1", "2", "3"]
        assert got[0].commit_sha == runs[0]["head_sha"] and got[0].conclusion == "success"
        api.clear()
        api.expect_request(RUNS).respond_with_handler(page)
        assert len(gh.list_runs(branch="main", status="success", limit=4)) == 4
        assert len(api.log) == 2  # stops as soon as the limit is reached


def test_artifacts_paginate_and_same_named_reruns_get_increasing_attempts(api: HTTPServer, sleeps: Sleeps) -> None:
    path = f"{RUNS}/42/artifacts"
    first = [_artifact(11, "perf"), _artifact(12, "logs")]
    second = [_artifact(15, "perf")]
    api.expect_ordered_request(path).respond_with_json(
        {"total_count": 3, "artifacts": first},
        headers={"Link": f'<{api.url_for(path)}?page=2&per_page=100>; rel="next"'},
    )
    api.expect_ordered_request(path).respond_with_json({"total_count": 3, "artifacts": second})
    with _provider(api, sleeps) as gh:
        arts = gh.list_artifacts("42")
    assert [(a.name, a.attempt, a.extra["artifact_id"]) for a in arts] == [
        ("perf", 1, 11),
        ("logs", 1, 12),
        ("perf", 2, 15),
    ]
    assert all(a.archive and a.provider == "github" and a.run_id == "42" for a in arts)


def test_download_follows_302_to_blob_host_without_the_token(
    api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    body = make_zip({"perf.json": b'{"metrics": {"throughput": 12.5}}'})
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    api.expect_request(f"{RUNS}/42/artifacts").respond_with_json(
        {"total_count": 1, "artifacts": [_artifact(11, "perf", digest=digest)]}
    )
    api.expect_request(f"/repos/{REPO}/actions/artifacts/11/zip").respond_with_data(
        "", status=302, headers={"Location": cdn.url_for("/blob/11.zip") + "?sig=abc&se=2099"}
    )
    cdn.expect_request("/blob/11.zip").respond_with_data(body, content_type="application/zip")
    with _provider(api, sleeps) as gh:
        art = gh.get_artifact("42", "perf")
        result = gh.download_artifact(art, tmp_path / "perf.zip")
    assert (tmp_path / "perf.zip").read_bytes() == body and result.size == len(body)
    assert api.log[0][0].args["name"] == "perf"  # GitHub filters by name: one listing request
    api_headers = headers_seen(api, f"/repos/{REPO}/actions/artifacts/11/zip")[0]
    assert api_headers["authorization"] == f"Bearer {TOKEN}"
    assert api_headers["x-github-api-version"] == "2022-11-28"
    assert "authorization" not in headers_seen(cdn, "/blob/11.zip")[0]


def test_digest_given_by_github_is_verified(api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request(f"{RUNS}/42/artifacts").respond_with_json(
        {"total_count": 1, "artifacts": [_artifact(11, "perf", digest="sha256:" + "a" * 64)]}
    )
    api.expect_request(f"/repos/{REPO}/actions/artifacts/11/zip").respond_with_data(
        "", status=302, headers={"Location": cdn.url_for("/blob/11.zip")}
    )
    cdn.expect_request("/blob/11.zip").respond_with_data(make_zip({"a": b"b"}), content_type="application/zip")
    with _provider(api, sleeps) as gh, pytest.raises(DownloadIntegrityError, match="SHA-256"):
        gh.download_artifact(gh.get_artifact("42", "perf"), tmp_path / "perf.zip")
    assert not (tmp_path / "perf.zip").exists()


def test_410_and_expired_flag_raise_artifact_expired(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request(f"{RUNS}/42/artifacts").respond_with_json(
        {"total_count": 2, "artifacts": [_artifact(11, "old", expired=True), _artifact(12, "gone")]}
    )
    api.expect_request(f"/repos/{REPO}/actions/artifacts/12/zip").respond_with_json(
        {"message": "Artifact has expired"}, status=410
    )
    with _provider(api, sleeps) as gh:
        with pytest.raises(ArtifactExpiredError):
            gh.download_artifact(gh.get_artifact("42", "old"), tmp_path / "old.zip")
        assert not any(r.path.endswith("/11/zip") for r, _ in api.log)  # no request for a known-expired one
        with pytest.raises(ArtifactExpiredError, match="410") as info:
            gh.download_artifact(gh.get_artifact("42", "gone"), tmp_path / "gone.zip")
    assert TOKEN not in str(info.value)
    assert sum(r.path.endswith("/12/zip") for r, _ in api.log) == 1  # 410 is not retried
    assert list(tmp_path.iterdir()) == []


def test_html_page_instead_of_zip_is_refused(api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request(f"{RUNS}/42/artifacts").respond_with_json({"total_count": 1, "artifacts": [_artifact(11, "p")]})
    api.expect_request(f"/repos/{REPO}/actions/artifacts/11/zip").respond_with_data(
        "", status=302, headers={"Location": cdn.url_for("/blob")}
    )
    cdn.expect_request("/blob").respond_with_data("<html>proxy says hi</html>", content_type="text/html")
    with _provider(api, sleeps) as gh, pytest.raises(DownloadIntegrityError, match="zip"):
        gh.download_artifact(gh.get_artifact("42", "p"), tmp_path / "p.zip")
    assert list(tmp_path.iterdir()) == []


def test_rate_limit_waits_for_a_near_reset_then_retries(api: HTTPServer, sleeps: Sleeps) -> None:
    reset = int(time.time()) + 5
    api.expect_ordered_request(RUNS).respond_with_json(
        {"message": "API rate limit exceeded"},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-limit": "60", "x-ratelimit-reset": str(reset)},
    )
    api.expect_ordered_request(RUNS).respond_with_json({"total_count": 1, "workflow_runs": [_run(0)]})
    with _provider(api, sleeps) as gh:
        assert len(gh.list_runs()) == 1
    assert len(sleeps) == 1 and 3 <= sleeps[0] <= 6


def test_rate_limit_with_a_far_reset_fails_clearly(api: HTTPServer, sleeps: Sleeps) -> None:
    reset = int(time.time()) + 3600
    api.expect_request(RUNS).respond_with_json(
        {"message": "API rate limit exceeded"},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core"},
    )
    with _provider(api, sleeps) as gh, pytest.raises(RateLimitedError, match="resets in") as info:
        gh.list_runs()
    assert info.value.reset_at is not None and abs(info.value.reset_at - reset) < 5
    assert sleeps == [] and TOKEN not in str(info.value)


def test_secondary_rate_limit_429_honours_retry_after(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_ordered_request(RUNS).respond_with_data("slow down", status=429, headers={"retry-after": "2"})
    api.expect_ordered_request(RUNS).respond_with_json({"total_count": 0, "workflow_runs": []})
    with _provider(api, sleeps) as gh:
        assert gh.list_runs() == []
    assert sleeps == [2.0]


def test_plain_403_is_an_auth_error_not_a_wait(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_request(RUNS).respond_with_json({"message": "Resource not accessible by integration"}, status=403)
    with _provider(api, sleeps) as gh, pytest.raises(CIAuthError, match="scope"):
        gh.list_runs()
    assert sleeps == []


def test_etag_is_sent_back_and_304_reuses_the_list(api: HTTPServer, sleeps: Sleeps) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(
            json.dumps({"total_count": 1, "workflow_runs": [_run(0)]}),
            headers={"ETag": '"v1"', "Content-Type": "application/json"},
        )

    api.expect_request(RUNS).respond_with_handler(handler)
    with _provider(api, sleeps) as gh:
        first, second = gh.list_runs(), gh.list_runs()
    assert first == second and len(first) == 1
    sent = headers_seen(api, RUNS)
    assert "if-none-match" not in sent[0] and sent[1]["if-none-match"] == '"v1"'


def test_text_uploads_as_gist_binary_as_release_asset(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text('{"ok": true}')
    model = tmp_path / "model.bin"
    model.write_bytes(bytes(range(256)) * 4)
    api.expect_request("/gists", method="POST").respond_with_json({"html_url": "https://gist.github.com/x"}, status=201)
    api.expect_request(f"/repos/{REPO}/releases/tags/ci-artifacts").respond_with_json(
        {"message": "Not Found"}, status=404
    )
    upload = api.url_for(f"/repos/{REPO}/releases/7/assets")
    api.expect_request(f"/repos/{REPO}/releases", method="POST").respond_with_json(
        {"id": 7, "upload_url": upload + "{?name,label}"}, status=201
    )
    api.expect_request(
        f"/repos/{REPO}/releases/7/assets", method="POST", query_string="name=model.bin"
    ).respond_with_json(
        {"browser_download_url": "https://github.com/octo/repo/releases/download/ci-artifacts/model.bin"}, status=201
    )
    with _provider(api, sleeps) as gh:
        assert gh.upload_artifact(report, "report.json") == "https://gist.github.com/x"
        assert gh.upload_artifact(model, "model.bin", release_tag="ci-artifacts").endswith("/model.bin")
    gist = json.loads(next(r for r, _ in api.log if r.path == "/gists").get_data())
    assert gist["files"] == {"report.json": {"content": '{"ok": true}'}} and gist["public"] is False
    asset = next(r for r, _ in api.log if r.path.endswith("/assets"))
    assert asset.get_data() == model.read_bytes()
    assert asset.headers["Authorization"] == f"Bearer {TOKEN}"


def test_repr_never_shows_the_token(api: HTTPServer, sleeps: Sleeps) -> None:
    with _provider(api, sleeps) as gh:
        assert TOKEN not in repr(gh) and TOKEN not in repr(gh.http) and TOKEN not in repr(vars(gh.http))
