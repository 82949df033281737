"""The task-group downloader against a loopback queue: selection by platform/suite/failure, output layout,
unzip, error artifacts skipped, no partial files, correct resume with ingest_continue, progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ci_fakes import Sleeps, make_zip
from helpers_archives import make_tgz
from pytest_httpserver import HTTPServer
from test_ci_taskcluster import GROUP, serve_task_group, task_entry
from werkzeug import Request, Response

from tracelet_artifacts.ci.errors import CIError
from tracelet_artifacts.ci.providers.taskcluster import QUEUE_PATH as Q
from tracelet_artifacts.ci.providers.taskcluster import TaskclusterProvider
from tracelet_artifacts.ci.retry import RetryPolicy
from tracelet_artifacts.ci.task_processor import get_task_data, get_task_data_paths
from tracelet_artifacts.ci.taskcluster_download import DownloadOptions, Progress, TaskGroupDownloader, suite_of

AMAZON = "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-amazon"
GOOGLE = "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-google"
WINDOWS = "test-windows11-64/opt-browsertime-tp6-firefox-amazon"
FAILED = "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-bing"


def _perf(value: float) -> bytes:
    return json.dumps({"framework": {"name": "browsertime"}, "suites": [{"name": "tp6", "value": value}]}).encode()


class Queue:
    """Serves artifacts per task; counts artifact downloads; can fail one artifact with 500s."""

    def __init__(self, api: HTTPServer) -> None:
        self.api = api
        self.downloads: list[str] = []
        self.broken: set[str] = set()
        self.files: dict[tuple[str, str], bytes] = {}
        self.errors: set[tuple[str, str]] = set()

    def add(self, task: str, run: int, name: str, body: bytes | None) -> None:
        if body is None:
            self.errors.add((task, name))
        else:
            self.files[(task, name)] = body
        self.runs = getattr(self, "runs", {})
        self.runs[task] = run

    def listing(self, request: Request) -> Response:
        task = request.path.split("/task/")[1].split("/")[0]
        items = [{"storageType": "error" if (t, n) in self.errors else "s3", "name": n,
                  "expires": "2999-01-01T00:00:00.000Z", "contentType": "application/octet-stream"}
                 for (t, n) in [*self.files, *self.errors] if t == task]  # fmt: skip
        return Response(json.dumps({"artifacts": items}), headers={"Content-Type": "application/json"})

    def artifact(self, request: Request) -> Response:
        rest = request.path.split("/task/")[1]
        task, _, _, name = rest.split("/", 3)
        name = name.split("/", 1)[1]  # drop "artifacts/"
        if (task, name) in self.errors:
            return Response(json.dumps({"reason": "file-missing-on-worker"}), status=424)
        if name in self.broken:
            return Response("upstream down", status=500)
        self.downloads.append(f"{task}:{name}")
        return Response(self.files[(task, name)], headers={"Content-Type": "application/octet-stream"})

    def serve(self) -> None:
        for task, run in self.runs.items():
            self.api.expect_request(f"{Q}/task/{task}/runs/{run}/artifacts").respond_with_handler(self.listing)
        import re

        self.api.expect_request(re.compile(rf"{Q}/task/[^/]+/runs/\d+/artifacts/.+")).respond_with_handler(
            self.artifact
        )


@pytest.fixture
def queue(api: HTTPServer) -> Queue:
    serve_task_group(
        api,
        [
            [task_entry("T1", AMAZON), task_entry("T2", GOOGLE, runs=2)],
            [],
            [task_entry("T3", WINDOWS), task_entry("T4", FAILED, state="failed")],
        ],
    )
    q = Queue(api)
    perf = "public/test_info/perfherder-data.json"
    q.add("T1", 0, perf, _perf(812.5))
    q.add("T1", 0, "public/test_info/browsertime-results.tgz", make_tgz({"browsertime-results/a.json": b"{}"}))
    q.add("T1", 0, "public/logs/log_error.log", b"")
    q.add("T2", 1, perf, _perf(640.0))
    q.add("T2", 1, "public/test_info/browsertime-results.zip", make_zip({"browsertime.json": b"[1, 2]"}))
    q.add("T2", 1, "public/test_info/perfherder-data-extra.json", None)  # an error artifact (424)
    q.add("T3", 0, perf, _perf(1.0))
    q.add("T4", 0, perf, _perf(9.0))
    q.serve()
    return q


def _downloader(api: HTTPServer, sleeps: Sleeps, seen: list[Progress] | None = None) -> TaskGroupDownloader:
    provider = TaskclusterProvider(
        api.url_for("/").rstrip("/"), retry=RetryPolicy(attempts=3, base_delay=0.01, jitter=0), sleep=sleeps
    )

    def record(p: Progress) -> None:
        if seen is not None:
            seen.append(Progress(**{**p.__dict__, "errors": list(p.errors)}))

    return TaskGroupDownloader(provider, progress=record)


def _options(tmp_path: Path, **kw: Any) -> DownloadOptions:
    base: dict[str, Any] = {
        "task_group_id": GROUP,
        "test_suites_list": ["all"],
        "artifact_to_get": ["perfherder-data", "browsertime-results"],
        "platform": "linux64",
        "output": tmp_path / "out",
    }
    return DownloadOptions(**{**base, **kw})


def test_suite_is_the_last_name_part_without_its_first_token() -> None:
    assert suite_of(AMAZON) == "browsertime-tp6-firefox-amazon"


def test_layout_selection_unzip_and_error_artifacts(
    queue: Queue, api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    run_dir = _downloader(api, sleeps, seen).run(_options(tmp_path, unzip_artifact=True))
    assert run_dir == tmp_path / "out" / GROUP / "1"
    assert (run_dir / "task-group-information.json").exists() and (run_dir / "config.json").exists()
    amazon = run_dir / "browsertime-tp6-firefox-amazon"
    assert json.loads((amazon / "downloads" / "T1_perfherder-data.json").read_bytes())["suites"][0]["value"] == 812.5
    assert (amazon / "perfherder-data_data" / "0" / "T1_perfherder-data.json").exists()
    assert (amazon / "browsertime-results_data" / "0" / "browsertime-results" / "a.json").exists()
    google = run_dir / "browsertime-tp6-firefox-google"
    assert (google / "browsertime-results_data" / "0" / "browsertime.json").read_bytes() == b"[1, 2]"
    # windows is another platform, bing failed: neither is downloaded
    assert not (run_dir / "browsertime-tp6-firefox-bing").exists()
    assert not any("T3" in d for d in queue.downloads)
    file_map = json.loads((run_dir / "taskid_to_file_map.json").read_text())
    assert sorted(file_map) == ["T1", "T2"]
    assert file_map["T2"] == str(google / "perfherder-data_data" / "0")
    records = json.loads((run_dir / "tracelet-download.json").read_text())
    assert records["T2"]["run_id"] == 1
    errors = [f for f in records["T2"]["files"] if "error" in f]
    assert len(errors) == 1 and "error artifact" in errors[0]["error"]
    assert not any(r.path.endswith("perfherder-data-extra.json") for r, _ in api.log)  # listed as error: no GET
    assert seen[-1].done_tasks == seen[-1].total_tasks == 2 and seen[-1].failed == 0
    assert not list(run_dir.rglob("*.part"))


def test_download_failures_includes_failed_tasks(queue: Queue, api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    run_dir = _downloader(api, sleeps).run(
        _options(tmp_path, download_failures=True, test_suites_list=["browsertime-tp6-firefox-bing"])
    )
    assert (run_dir / "browsertime-tp6-firefox-bing" / "downloads" / "T4_perfherder-data.json").exists()
    assert not (run_dir / "browsertime-tp6-firefox-amazon").exists()


def test_failing_artifact_leaves_no_file_and_resume_fills_the_same_run(
    queue: Queue, api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    queue.broken.add("public/test_info/perfherder-data.json")
    downloader = _downloader(api, sleeps)
    run_dir = downloader.run(_options(tmp_path))
    assert downloader.last_progress.failed == 2 and len(downloader.last_progress.errors) == 2
    assert not list(run_dir.rglob("*perfherder-data.json")) and not list(run_dir.rglob("*.part"))
    before = list(queue.downloads)
    queue.broken.clear()
    resumed = downloader.run(_options(tmp_path, ingest_continue=True))
    assert resumed == run_dir  # the same run folder, not "0" and not a new number
    new = queue.downloads[len(before) :]
    assert sorted(new) == ["T1:public/test_info/perfherder-data.json", "T2:public/test_info/perfherder-data.json"]
    assert downloader.last_progress.skipped_existing == 2  # the archives were already complete
    fresh = downloader.run(_options(tmp_path))
    assert fresh.name == "2"


def test_task_data_helpers_read_back_the_latest_run(
    queue: Queue, api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    _downloader(api, sleeps).run(_options(tmp_path, artifact_to_get=["perfherder-data"]))
    paths = get_task_data_paths(GROUP, tmp_path / "out", artifact="perfherder")
    assert sorted(paths) == ["browsertime-tp6-firefox-amazon", "browsertime-tp6-firefox-google"]
    data = get_task_data(GROUP, tmp_path / "out", suite_matcher="google")
    assert [d["data"]["suites"][0]["value"] for d in data["browsertime-tp6-firefox-google"]] == [640.0]
    with pytest.raises(CIError, match="run the downloader"):
        get_task_data_paths("nope", tmp_path / "out")


def test_group_listing_is_cached_between_runs(queue: Queue, api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    downloader = _downloader(api, sleeps)
    downloader.run(_options(tmp_path, artifact_to_get=["nothing-matches"]))
    downloader.run(_options(tmp_path, artifact_to_get=["nothing-matches"]))
    listings = [r for r, _ in api.log if r.path.endswith(f"/task-group/{GROUP}/list")]
    assert len(listings) == 3  # three pages, once


def test_non_empty_log_error_skips_the_task_unless_failures_wanted(
    queue: Queue, api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    queue.files[("T1", "public/logs/log_error.log")] = b"TEST-UNEXPECTED-FAIL"
    run_dir = _downloader(api, sleeps).run(_options(tmp_path))
    records = json.loads((run_dir / "tracelet-download.json").read_text())
    assert records["T1"]["skipped"] == "log_error artifact is not empty" and records["T1"]["files"] == []
    assert not list((run_dir / "browsertime-tp6-firefox-amazon" / "downloads").glob("*perfherder*"))
    run_dir = _downloader(api, sleeps).run(_options(tmp_path, download_failures=True))
    assert (run_dir / "browsertime-tp6-firefox-amazon" / "downloads" / "T1_perfherder-data.json").exists()
