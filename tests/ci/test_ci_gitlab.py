"""GitLab provider against a loopback server replaying REST v4 shapes: offset pagination with x-* headers,
keyset pagination whose last page has no Link, job artifacts, CDN redirects, 404, Repository Files upload."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from ci_fakes import TOKEN, Sleeps, headers_seen, make_zip
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracelet_artifacts.ci.errors import CINotFoundError, DownloadIntegrityError, RateLimitedError
from tracelet_artifacts.ci.providers.gitlab import GitLabProvider
from tracelet_artifacts.ci.retry import RetryPolicy

PID = "grp/proj"  # the server sees the decoded path; the raw URI carries grp%2Fproj


def _pipeline(i: int) -> dict[str, Any]:
    return {
        "id": 100 - i,
        "iid": 12,
        "project_id": 1,
        "status": "success",
        "source": "push",
        "ref": "main",
        "sha": f"{i:040x}",
        "name": "Build pipeline",
        "web_url": f"https://example.com/grp/proj/pipelines/{100 - i}",
        "created_at": "2016-08-11T11:28:34.085Z",
        "updated_at": "2016-08-11T11:32:35.169Z",
    }


def _job(
    job_id: int, name: str, *, archive: bool = True, expire: str = "2999-01-23T17:54:27.895Z", size: int = 1000
) -> dict:
    artifacts = [
        {"file_type": "metadata", "size": 186, "filename": "metadata.gz", "file_format": "gzip"},
        {"file_type": "trace", "size": 1500, "filename": "job.log", "file_format": "raw"},
    ]
    if archive:
        artifacts.insert(0, {"file_type": "archive", "size": size, "filename": "artifacts.zip", "file_format": "zip"})
    job = {
        "id": job_id,
        "name": name,
        "stage": "test",
        "status": "success",
        "ref": "main",
        "created_at": "2015-12-24T15:51:21.802Z",
        "finished_at": "2015-12-24T17:54:27.895Z",
        "artifacts": artifacts,
        "artifacts_expire_at": expire,
        "pipeline": {"id": 47, "project_id": 1, "ref": "main", "status": "success"},
        "web_url": f"https://example.com/grp/proj/-/jobs/{job_id}",
    }
    if archive:
        job["artifacts_file"] = {"filename": "artifacts.zip", "size": size}
    return job


def _provider(api: HTTPServer, sleeps: Sleeps, **kw: Any) -> GitLabProvider:
    return GitLabProvider(
        "grp/proj",
        token=TOKEN,
        base_url=api.url_for("/").rstrip("/"),
        retry=RetryPolicy(attempts=3, base_delay=0.01, jitter=0),
        sleep=sleeps,
        **kw,
    )


def test_pipelines_walk_offset_pages_with_x_next_page(api: HTTPServer, sleeps: Sleeps) -> None:
    pipelines = [_pipeline(i) for i in range(5)]

    def handler(request: Request) -> Response:
        page = int(request.args.get("page", "1"))
        assert request.args["ref"] == "main" and request.args["order_by"] == "id"
        chunk = pipelines[(page - 1) * 2 : page * 2]
        headers = {"x-page": str(page), "x-per-page": "2", "x-total": "5", "x-total-pages": "3"}
        headers["x-next-page"] = str(page + 1) if page < 3 else ""
        return Response(json.dumps(chunk), headers={**headers, "Content-Type": "application/json"})

    api.expect_request(f"/projects/{PID}/pipelines").respond_with_handler(handler)
    with _provider(api, sleeps) as gl:
        runs = gl.list_runs(ref="main", limit=None)
    assert [r.run_id for r in runs] == ["100", "99", "98", "97", "96"]
    assert [r.args.get("page", "1") for r, _ in api.log] == ["1", "2", "3"]
    assert headers_seen(api, f"/projects/{PID}/pipelines")[0]["private-token"] == TOKEN
    assert api.log[0][0].environ["REQUEST_URI"].startswith("/projects/grp%2Fproj/pipelines?")


def test_keyset_pagination_stops_when_link_is_absent(api: HTTPServer, sleeps: Sleeps) -> None:
    path = f"/projects/{PID}/jobs"
    nxt = api.url_for(path) + "?pagination=keyset&order_by=id&sort=desc&per_page=2&id_after=8"
    nxt2 = api.url_for(path) + "?pagination=keyset&order_by=id&sort=desc&per_page=2&id_after=6"
    api.expect_ordered_request(path).respond_with_json(
        [_job(10, "a"), _job(9, "b")], headers={"Link": f'<{nxt}>; rel="next"'}
    )
    api.expect_ordered_request(path).respond_with_json(
        [_job(8, "c"), _job(7, "d")], headers={"Link": f'<{nxt2}>; rel="next"'}
    )
    api.expect_ordered_request(path).respond_with_json([_job(6, "e")])  # last page: no Link header
    with _provider(api, sleeps) as gl:
        jobs = gl.list_project_jobs(limit=None)
    assert [j["id"] for j in jobs] == [10, 9, 8, 7, 6]
    assert api.log[0][0].args["pagination"] == "keyset" and api.log[2][0].args["id_after"] == "6"


def test_pipeline_artifacts_are_job_archives_with_retries_as_attempts(api: HTTPServer, sleeps: Sleeps) -> None:
    jobs = [
        _job(7, "teaspoon"),
        _job(9, "teaspoon"),  # the retried job: attempt 2
        _job(8, "rspec", archive=False),  # only reports/trace: nothing downloadable
        _job(6, "old", expire="2001-01-01T00:00:00.000Z"),
    ]
    api.expect_request(f"/projects/{PID}/pipelines/47/jobs").respond_with_json(jobs)
    with _provider(api, sleeps) as gl:
        latest = {a.name: a for a in gl.list_artifacts("47")}
        first = gl.list_artifacts("47", attempt=1)
    assert sorted(latest) == ["old", "teaspoon"]
    assert latest["teaspoon"].attempt == 2 and latest["teaspoon"].extra["job_id"] == 9
    assert latest["teaspoon"].size == 1000 and latest["teaspoon"].archive
    assert latest["old"].expired
    assert {a.name: a.extra["job_id"] for a in first}["teaspoon"] == 7
    assert api.log[0][0].args["include_retried"] == "true"


def test_archive_download_follows_cdn_redirect_without_private_token(
    api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    body = make_zip({"coverage.xml": b"<coverage/>"})
    api.expect_request(f"/projects/{PID}/pipelines/47/jobs").respond_with_json(
        [_job(9, "teaspoon", size=len(body)), _job(10, "lying", size=len(body) + 1)]
    )
    for job_id in (9, 10):
        api.expect_request(f"/projects/{PID}/jobs/{job_id}/artifacts").respond_with_data(
            "", status=302, headers={"Location": cdn.url_for("/cdn/artifacts.zip") + "?token=signed"}
        )
    cdn.expect_request("/cdn/artifacts.zip").respond_with_data(body, content_type="application/zip")
    with _provider(api, sleeps) as gl:
        gl.download_artifact(gl.get_artifact("47", "teaspoon"), tmp_path / "a.zip")
        assert (tmp_path / "a.zip").read_bytes() == body
        with pytest.raises(DownloadIntegrityError, match="provider said"):
            gl.download_artifact(gl.get_artifact("47", "lying"), tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()
    assert "private-token" not in headers_seen(cdn, "/cdn/artifacts.zip")[0]


def test_single_file_and_latest_successful_by_ref(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request(f"/projects/{PID}/jobs/9/artifacts/out/perf data.json").respond_with_json({"fps": 60})
    api.expect_request(
        f"/projects/{PID}/jobs/artifacts/main/raw/out/perf.json", query_string="job=bench"
    ).respond_with_json({"fps": 61})
    zipped = make_zip({"x": b"y"})
    api.expect_request(f"/projects/{PID}/jobs/artifacts/main/download", query_string="job=bench").respond_with_data(
        zipped, content_type="application/zip"
    )
    with _provider(api, sleeps) as gl:
        one = gl.download_file(9, "out/perf data.json", tmp_path / "perf.json")
        latest = gl.download_latest("main", "bench", tmp_path / "latest.json", artifact_path="out/perf.json")
        archive = gl.download_latest("main", "bench", tmp_path / "latest.zip")
    assert json.loads(one.read_text()) == {"fps": 60}
    assert json.loads(latest.read_text()) == {"fps": 61}
    assert archive.read_bytes() == zipped


def test_404_when_a_job_has_only_reports_is_not_found(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request(f"/projects/{PID}/jobs/8/artifacts/report.xml").respond_with_json(
        {"message": "404 Not Found"}, status=404
    )
    with _provider(api, sleeps) as gl, pytest.raises(CINotFoundError) as info:
        gl.download_file(8, "report.xml", tmp_path / "report.xml")
    assert TOKEN not in str(info.value) and len(api.log) == 1
    assert list(tmp_path.iterdir()) == []


def test_ratelimit_reset_header_is_honoured(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_request(f"/projects/{PID}/pipelines").respond_with_data(
        "Retry later", status=429, headers={"RateLimit-Remaining": "0", "Retry-After": "3600"}
    )
    with _provider(api, sleeps) as gl, pytest.raises(RateLimitedError):
        gl.list_runs()
    assert sleeps == []


def test_job_token_uses_the_job_token_header(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_request(f"/projects/{PID}/pipelines").respond_with_json([])
    with _provider(api, sleeps, token_type="job") as gl:
        gl.list_runs()
    sent = headers_seen(api, f"/projects/{PID}/pipelines")[0]
    assert sent["job-token"] == TOKEN and "private-token" not in sent


def test_upload_commits_to_a_dedicated_branch_text_and_base64(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    text = tmp_path / "summary.md"
    text.write_text("# ok\n")
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\x00\x01\x02\xff" * 10)
    branch = f"/projects/{PID}/repository/branches"
    api.expect_ordered_request(f"{branch}/tracelet-artifacts").respond_with_json({"message": "404"}, status=404)
    api.expect_ordered_request(branch, method="POST").respond_with_json({"name": "tracelet-artifacts"}, status=201)
    text_path = f"/projects/{PID}/repository/files/tracelet-artifacts/run-7/summary.md"
    api.expect_ordered_request(text_path, method="GET").respond_with_json({"message": "404"}, status=404)
    api.expect_ordered_request(text_path, method="POST").respond_with_json({"file_path": "x"}, status=201)
    api.expect_ordered_request(f"{branch}/tracelet-artifacts").respond_with_json({"name": "tracelet-artifacts"})
    bin_path = f"/projects/{PID}/repository/files/tracelet-artifacts/run-7/weights.bin"
    api.expect_ordered_request(bin_path, method="GET").respond_with_json({"file_name": "weights.bin"})
    api.expect_ordered_request(bin_path, method="PUT").respond_with_json({"file_path": "x"})
    with _provider(api, sleeps) as gl:
        url = gl.upload_artifact(text, "summary.md", test_run_id="run-7")
        gl.upload_artifact(binary, "weights.bin", test_run_id="run-7")
    api.check_assertions()
    assert url.endswith("/raw?ref=tracelet-artifacts")
    create_branch = api.log[1][0]
    assert create_branch.args["branch"] == "tracelet-artifacts" and create_branch.args["ref"] == "main"
    text_body = json.loads(api.log[3][0].get_data())
    assert text_body["encoding"] == "text" and text_body["content"] == "# ok\n"
    assert text_body["branch"] == "tracelet-artifacts"
    assert "/files/tracelet-artifacts%2Frun-7%2Fsummary.md" in api.log[3][0].environ["REQUEST_URI"]
    bin_body = json.loads(api.log[6][0].get_data())
    assert bin_body["encoding"] == "base64" and base64.b64decode(bin_body["content"]) == binary.read_bytes()
