"""Taskcluster provider against a loopback queue: continuationToken pages (one with a token and no tasks),
latest-run artifacts, 303 redirects with digest headers, 424 error artifacts (terminal), 5xx retries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from ci_fakes import TOKEN, Sleeps
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracelet_artifacts.ci.errors import ArtifactUnavailableError, DownloadIntegrityError
from tracelet_artifacts.ci.providers.hawk import HawkSigner, hawk_header
from tracelet_artifacts.ci.providers.taskcluster import QUEUE_PATH, TaskclusterProvider
from tracelet_artifacts.ci.retry import RetryPolicy

Q = QUEUE_PATH
GROUP = "Fo1npr9eTFqsAj4"


def task_entry(task_id: str, name: str, state: str = "completed", runs: int = 1) -> dict[str, Any]:
    """One ``{task, status}`` entry of a task-group listing, as the queue returns it."""
    run_list = [
        {"runId": i, "state": "exception" if i < runs - 1 else state, "reasonCreated": "retry" if i else "scheduled",
         "reasonResolved": "worker-shutdown" if i < runs - 1 else state}
        for i in range(runs)
    ]  # fmt: skip
    return {
        "task": {
            "provisionerId": "gecko-t",
            "workerType": "t-linux",
            "taskGroupId": GROUP,
            "payload": {"env": {"GECKO_HEAD_REV": "abc123"}},
            "metadata": {"name": name, "description": "", "owner": "", "source": ""},
            "tags": {"kind": "browsertime"},
            "created": "2024-09-19T20:13:45.402Z",
        },
        "status": {"taskId": task_id, "taskGroupId": GROUP, "state": state, "retriesLeft": 5, "runs": run_list},
    }


def serve_task_group(api: HTTPServer, pages: list[list[dict[str, Any]]]) -> None:
    """The group listing split over ``pages``, chained by continuation tokens."""

    def handler(request: Request) -> Response:
        token = request.args.get("continuationToken")
        index = int(token) if token else 0
        body: dict[str, Any] = {"taskGroupId": GROUP, "schedulerId": "gecko-level-3", "tasks": pages[index]}
        if index + 1 < len(pages):
            body["continuationToken"] = str(index + 1)
        return Response(json.dumps(body), headers={"Content-Type": "application/json"})

    api.expect_request(f"{Q}/task-group/{GROUP}/list").respond_with_handler(handler)


def _provider(api: HTTPServer, sleeps: Sleeps, token: str | None = None) -> TaskclusterProvider:
    return TaskclusterProvider(
        api.url_for("/").rstrip("/"),
        client_id="project/perf" if token else None,
        access_token=token,
        retry=RetryPolicy(attempts=5, base_delay=0.01, jitter=0),
        sleep=sleeps,
    )


def test_task_group_pages_include_a_token_with_no_tasks(api: HTTPServer, sleeps: Sleeps) -> None:
    a = task_entry("A", "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-amazon")
    b = task_entry("B", "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-google", runs=2)
    c = task_entry("C", "build-linux64/opt", state="failed")
    serve_task_group(api, [[a], [], [b, c]])
    with _provider(api, sleeps) as tc:
        runs = tc.list_runs(task_group_id=GROUP)
    assert [(r.run_id, r.attempt, r.status) for r in runs] == [
        ("A", 0, "completed"),
        ("B", 1, "completed"),
        ("C", 0, "failed"),
    ]
    assert runs[0].commit_sha == "abc123"
    assert [r.args.get("continuationToken") for r, _ in api.log] == [None, "1", "2"]


def _artifacts_listing(api: HTTPServer, task: str, run: int) -> None:
    items = [
        {"storageType": "s3", "name": "public/logs/live_backing.log", "expires": "2999-09-20T00:00:00.000Z",
         "contentType": "text/plain; charset=utf-8"},
        {"storageType": "reference", "name": "public/logs/live.log", "expires": "2999-09-20T00:00:00.000Z",
         "contentType": "text/plain; charset=utf-8"},
        {"storageType": "error", "name": "public/test_info/perfherder-data.json",
         "expires": "2999-09-20T00:00:00.000Z", "contentType": "application/json"},
    ]  # fmt: skip
    api.expect_ordered_request(f"{Q}/task/{task}/runs/{run}/artifacts").respond_with_json(
        {"artifacts": items[:2], "continuationToken": "next"}
    )
    api.expect_ordered_request(f"{Q}/task/{task}/runs/{run}/artifacts").respond_with_json({"artifacts": items[2:]})


def test_artifacts_of_the_latest_run_carry_run_id_and_storage_type(api: HTTPServer, sleeps: Sleeps) -> None:
    api.expect_ordered_request(f"{Q}/task/B/status").respond_with_json(
        {"status": task_entry("B", "x", runs=2)["status"]}
    )
    _artifacts_listing(api, "B", 1)
    with _provider(api, sleeps) as tc:
        arts = tc.list_artifacts("B")
    assert [(a.name, a.attempt, a.extra["storage_type"], a.extra["cacheable"]) for a in arts] == [
        ("public/logs/live_backing.log", 1, "s3", True),
        ("public/logs/live.log", 1, "reference", False),
        ("public/test_info/perfherder-data.json", 1, "error", True),
    ]


def test_download_follows_303_and_verifies_taskcluster_digest_headers(
    api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    body = b'{"suites": [{"name": "tp6", "value": 812.5}]}'
    digest = hashlib.sha256(body).hexdigest()
    name = "public/test_info/perfherder-data.json"
    for path, sha in (("/good", digest), ("/bad", "0" * 64)):
        api.expect_ordered_request(f"{Q}/task/A/runs/0/artifacts/{name}").respond_with_json(
            {"storageType": "s3", "url": cdn.url_for(path)},
            status=303,
            headers={
                "Location": cdn.url_for(path),
                "x-taskcluster-artifact-storage-type": "s3",
                "x-taskcluster-location-content-sha256": sha,
                "x-taskcluster-location-content-length": str(len(body)),
            },
        )
        cdn.expect_request(path).respond_with_data(body, content_type="application/json")
    with _provider(api, sleeps, token=TOKEN) as tc:
        from tracelet_artifacts.ci.providers.base import CIArtifact

        art = CIArtifact(provider="taskcluster", run_id="A", name=name, attempt=0)
        tc.download_artifact(art, tmp_path / "perf.json")
        assert (tmp_path / "perf.json").read_bytes() == body
        tc.http.retry = RetryPolicy(attempts=1)
        with pytest.raises(DownloadIntegrityError, match="SHA-256"):
            tc.download_artifact(art, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
    signed = api.log[0][0].headers["Authorization"]
    assert signed.startswith('Hawk id="project/perf", ts="') and TOKEN not in signed
    assert all("Authorization" not in request.headers for request, _ in cdn.log)  # not sent to S3


def test_error_artifact_424_is_terminal_and_not_retried(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    name = "public/test_info/perfherder-data.json"
    api.expect_request(f"{Q}/task/A/artifacts/{name}").respond_with_json(
        {"storageType": "error", "reason": "file-missing-on-worker", "message": "not there"}, status=424
    )
    with _provider(api, sleeps) as tc, pytest.raises(ArtifactUnavailableError, match="424"):
        tc.download_latest("A", name, tmp_path / "perf.json")
    assert len(api.log) == 1 and sleeps == []
    assert list(tmp_path.iterdir()) == []


def test_listed_error_artifact_fails_without_a_request(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    from tracelet_artifacts.ci.providers.base import CIArtifact

    art = CIArtifact(provider="taskcluster", run_id="A", name="x", extra={"storage_type": "error"})
    with _provider(api, sleeps) as tc, pytest.raises(ArtifactUnavailableError):
        tc.download_artifact(art, tmp_path / "x")
    assert api.log == []


def test_server_errors_are_retried_with_backoff(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    for status in (500, 502, 503):
        api.expect_ordered_request(f"{Q}/task/A/artifacts/public/a.txt").respond_with_data("x", status=status)
    api.expect_ordered_request(f"{Q}/task/A/artifacts/public/a.txt").respond_with_data(
        "hello", content_type="text/plain"
    )
    with _provider(api, sleeps) as tc:
        assert tc.download_latest("A", "public/a.txt", tmp_path / "a.txt").read_text() == "hello"
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)


def test_upload_creates_an_s3_artifact_and_puts_the_bytes(
    api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    src = tmp_path / "perf.json"
    src.write_text('{"a": 1}')
    name = "public/perf.json"
    api.expect_request(f"{Q}/task/T/runs/0/artifacts/{name}", method="POST").respond_with_json(
        {"storageType": "s3", "putUrl": cdn.url_for("/put"), "contentType": "application/json", "expires": "x"}
    )
    cdn.expect_request("/put", method="PUT").respond_with_data("")
    with _provider(api, sleeps) as tc:
        tc.upload_artifact(src, name, task_id="T", run_id=0, content_type="application/json")
    created = json.loads(api.log[0][0].get_data())
    assert created["storageType"] == "s3" and created["contentType"] == "application/json"
    put = cdn.log[0][0]
    assert put.get_data() == b'{"a": 1}' and put.headers["Content-Type"] == "application/json"


def test_hawk_header_matches_the_specification_example() -> None:
    header = hawk_header(
        "dh37fgj492je",
        "werxhqb98rpaxn39848xrunpaw3489ruxnpa98w4rxn",
        "GET",
        "http://example.com:8000/resource/1?b=1&a=2",
        ts=1353832234,
        nonce="j4h3g2",
        ext="some-app-ext-data",
    )
    assert header == (
        'Hawk id="dh37fgj492je", ts="1353832234", nonce="j4h3g2", ext="some-app-ext-data", '
        'mac="6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE="'
    )


def test_hawk_signer_signs_each_request_freshly_and_hides_its_key() -> None:
    import httpx

    signer = HawkSigner("project/perf", TOKEN, certificate='{"version": 1, "scopes": []}', clock=lambda: 1700000000)
    url = httpx.URL("https://tc.example/api/queue/v1/task/A/status")
    first, second = signer("GET", url)["Authorization"], signer("GET", url)["Authorization"]
    assert first != second  # a new nonce per request
    assert 'ts="1700000000"' in first and 'ext="' in first and TOKEN not in first
    assert TOKEN not in repr(signer)
