"""Jenkins provider against a loopback server replaying api/json shapes: tree-range paging, nested folders,
build artifacts, single-file and *zip* downloads with basic auth, a login page served with status 200."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ci_fakes import TOKEN, Sleeps, headers_seen, make_zip
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracelet_artifacts.ci.errors import CIAuthError, DownloadIntegrityError, UnsupportedOperationError
from tracelet_artifacts.ci.providers.jenkins import JenkinsProvider, job_path
from tracelet_artifacts.ci.retry import RetryPolicy

JOB = "/job/perf/job/nightly"


def _build(number: int, result: str | None = "SUCCESS") -> dict[str, Any]:
    return {
        "_class": "hudson.model.FreeStyleBuild",
        "number": number,
        "result": result,
        "timestamp": 1580322600911,
        "url": f"http://jenkins/job/perf/job/nightly/{number}/",
        "building": result is None,
        "duration": 671915,
        "displayName": f"#{number}",
    }


def _provider(api: HTTPServer, sleeps: Sleeps) -> JenkinsProvider:
    return JenkinsProvider(
        "perf/nightly",
        base_url=api.url_for("/").rstrip("/"),
        user="alice",
        token=TOKEN,
        retry=RetryPolicy(attempts=2, base_delay=0.01, jitter=0),
        sleep=sleeps,
    )


def test_job_paths_nest_folders() -> None:
    assert job_path("a/b/my job") == "/job/a/job/b/job/my%20job"
    assert job_path("/job/a/job/b/") == "/job/a/job/b"


def test_builds_page_through_tree_ranges_and_filter_on_result(api: HTTPServer, sleeps: Sleeps) -> None:
    builds = [_build(n, "FAILURE" if n % 10 == 0 else "SUCCESS") for n in range(250, 100, -1)]  # 150 builds

    def handler(request: Request) -> Response:
        tree = request.args["tree"]
        match = re.fullmatch(r"(builds|allBuilds)\[[a-zA-Z,]+\]\{(\d+),(\d+)\}", tree)
        assert match, tree
        field, lo, hi = match.group(1), int(match.group(2)), int(match.group(3))
        return Response(json.dumps({field: builds[lo:hi]}), headers={"Content-Type": "application/json"})

    api.expect_request(f"{JOB}/api/json").respond_with_handler(handler)
    with _provider(api, sleeps) as jk:
        runs = jk.list_runs(limit=None)
        failures = jk.list_runs(limit=3, result="failure")
    assert [r.run_id for r in runs] == [str(n) for n in range(250, 100, -1)]
    assert runs[1].conclusion == "SUCCESS" and runs[1].created_at == "2020-01-29T18:30:00.911000+00:00"
    trees = [r.args["tree"] for r, _ in api.log]
    assert trees[0].startswith("builds[") and trees[0].endswith("{0,100}")
    assert trees[1].startswith("allBuilds[") and trees[1].endswith("{100,200}")
    assert [r.run_id for r in failures] == ["250", "240", "230"]
    api.clear()
    api.expect_request(f"{JOB}/api/json").respond_with_handler(handler)
    with _provider(api, sleeps) as jk:
        assert [r.run_id for r in jk.list_runs(limit=5)] == ["250", "249", "248", "247", "246"]
    assert [r.args["tree"][-5:] for r, _ in api.log] == ["{0,5}"]  # asks for no more than needed
    sent = headers_seen(api, f"{JOB}/api/json")[0]
    assert sent["authorization"] == "Basic " + base64.b64encode(f"alice:{TOKEN}".encode()).decode()


def test_symbolic_build_resolves_to_its_number_and_files_download(
    api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    build = {
        **_build(422),
        "artifacts": [
            {"displayPath": "report.txt", "fileName": "report.txt", "relativePath": "out/report.txt"},
            {"displayPath": "perf.json", "fileName": "perf.json", "relativePath": "out/perf.json"},
        ],
    }
    api.expect_request(f"{JOB}/lastSuccessfulBuild/api/json").respond_with_json(build)
    api.expect_request(f"{JOB}/422/api/json").respond_with_json(build)
    api.expect_request(f"{JOB}/422/artifact/out/perf.json").respond_with_data(
        '{"fps": 60}', content_type="application/json"
    )
    zipped = make_zip({"out/report.txt": b"ok", "out/perf.json": b"{}"})
    api.expect_request(f"{JOB}/422/artifact/*zip*/archive.zip").respond_with_data(
        zipped, content_type="application/zip"
    )
    with _provider(api, sleeps) as jk:
        arts = jk.list_artifacts("lastSuccessfulBuild")
        assert [(a.run_id, a.name) for a in arts] == [("422", "out/report.txt"), ("422", "out/perf.json")]
        jk.download_artifact(arts[1], tmp_path / "perf.json")
        archive = jk.download_archive("422", tmp_path / "archive.zip")
    assert json.loads((tmp_path / "perf.json").read_text()) == {"fps": 60}
    assert archive.read_bytes() == zipped


def test_login_page_with_status_200_is_not_saved(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    build = {**_build(5), "artifacts": [{"fileName": "r.json", "relativePath": "r.json", "displayPath": "r.json"}]}
    api.expect_request(f"{JOB}/5/api/json").respond_with_json(build)
    api.expect_request(f"{JOB}/5/artifact/r.json").respond_with_data(
        "<!DOCTYPE html><html><head><title>Sign in [Jenkins]</title></head></html>", content_type="text/html"
    )
    with _provider(api, sleeps) as jk, pytest.raises(DownloadIntegrityError, match="HTML"):
        jk.download_artifact(jk.get_artifact("5", "r.json"), tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_bad_credentials_are_an_auth_error_without_the_token(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_request(f"{JOB}/api/json").respond_with_data("Unauthorized", status=401)
    with _provider(api, sleeps) as jk, pytest.raises(CIAuthError, match="401") as info:
        jk.list_runs()
    assert TOKEN not in str(info.value) and "alice" not in str(info.value)


def test_upload_is_not_supported(tmp_path: Path) -> None:
    jk = JenkinsProvider("x", base_url="http://127.0.0.1:9")
    with pytest.raises(UnsupportedOperationError, match="archive"):
        jk.upload_artifact(tmp_path / "f", "f")
