"""Mozilla's ArtifactDownloader README (mozperftest-tools), run as written against a loopback Taskcluster queue.

The command line is ``tracelet-artifacts ci taskcluster-download`` with the tool's own options; the Python
examples are verbatim except for the package (``import task_processor as tp`` ->
``from tracelet_artifacts.ci import task_processor as tp``) and the README's placeholder output folder
(``/home/sparky/…/perfunct-testing-data``), which is a temporary folder here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers_archives import make_tgz
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracelet_artifacts.ci.providers.taskcluster import QUEUE_PATH as Q
from tracelet_artifacts.cli import main

GROUP = "SssyewAFQiKm40PIouxo_g"
SUITES = {  # task id -> task name (the suite is the name after its last '/', first '-' token dropped)
    "TaskA0": "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-amazon",
    "TaskA1": "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-amazon",  # a retrigger: chunk 1
    "TaskG0": "test-linux64-shippable-qr/opt-browsertime-tp6-firefox-google",
    "TaskC0": "test-linux64-ccov/opt-mochitest-browser-chrome-e10s-2",
}


def _files(task_id: str) -> dict[str, bytes]:
    if "C" in task_id:
        coverage = make_tgz({"grcov_lcov_output.info": b"SF:a.c\nend_of_record\n"})
        return {"public/build/code-coverage-grcov.tgz": coverage}
    value = {"TaskA0": 812.5, "TaskA1": 790.0, "TaskG0": 640.0}[task_id]
    perf = {"framework": {"name": "browsertime"}, "suites": [{"name": "tp6", "value": value}]}
    return {"public/test_info/perfherder-data.json": json.dumps(perf).encode(), "public/logs/live_backing.log": b"ok"}


@pytest.fixture
def queue(httpserver: HTTPServer) -> HTTPServer:
    """A Taskcluster queue holding one task group: three browsertime tasks and a code-coverage task."""
    tasks = [{"task": {"metadata": {"name": name}, "payload": {"env": {"GECKO_HEAD_REV": "abc123"}}},
              "status": {"taskId": task_id, "state": "completed", "runs": [{"runId": 0, "state": "completed"}]}}
             for task_id, name in SUITES.items()]  # fmt: skip
    httpserver.expect_request(f"{Q}/task-group/{GROUP}/list").respond_with_json({"taskGroupId": GROUP, "tasks": tasks})

    def listing(request: Request) -> Response:
        task_id = request.path.split("/task/")[1].split("/")[0]
        items = [{"storageType": "s3", "name": name, "expires": "2999-01-01T00:00:00.000Z",
                  "contentType": "application/octet-stream"} for name in _files(task_id)]  # fmt: skip
        return Response(json.dumps({"artifacts": items}), content_type="application/json")

    def artifact(request: Request) -> Response:
        task_id, rest = request.path.split("/task/")[1].split("/runs/0/artifacts/")
        return Response(_files(task_id)[rest], content_type="application/octet-stream")

    httpserver.expect_request(re.compile(rf"{Q}/task/\w+/runs/0/artifacts$")).respond_with_handler(listing)
    httpserver.expect_request(re.compile(rf"{Q}/task/\w+/runs/0/artifacts/.+")).respond_with_handler(artifact)
    return httpserver


def _download(queue: HTTPServer, output: Path, *options: str) -> Result:
    args = ["ci", "taskcluster-download", "--root-url", queue.url_for("/").rstrip("/"), "--task-group-id", GROUP,
            *options, "--output", str(output)]  # fmt: skip
    return CliRunner().invoke(main, args)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_usage_lists_the_tools_options_and_several_suites_follow_one_flag(queue: HTTPServer, tmp_path: Path) -> None:
    usage = CliRunner().invoke(main, ["ci", "taskcluster-download", "--help"]).output
    for option in ("--task-group-id", "--test-suites-list", "--artifact-to-get", "--unzip-artifact", "--platform",
                   "--download-failures", "--ingest-continue", "--output"):
        assert option in usage
    assert "grcov" in usage  # the default artifact, as in the original's help
    result = _download(queue, tmp_path, "--test-suites-list", "browsertime-tp6-firefox-amazon",
                       "browsertime-tp6-firefox-google", "--artifact-to-get", "perfherder-data")
    assert result.exit_code == 0, result.output
    suites = sorted(p.name for p in (tmp_path / GROUP / "1").iterdir() if p.is_dir())
    assert suites == ["browsertime-tp6-firefox-amazon", "browsertime-tp6-firefox-google"]


def test_artifact_to_get_defaults_to_grcov(queue: HTTPServer, tmp_path: Path) -> None:
    result = _download(queue, tmp_path, "--test-suites-list", "all")
    assert result.exit_code == 0, result.output
    run = tmp_path / GROUP / "1"
    assert _tree(run / "mochitest-browser-chrome-e10s-2") == [
        "downloads/TaskC0_code-coverage-grcov.tgz", "grcov_data/0/grcov_lcov_output.info"]  # grcov is unzipped
    assert not (run / "browsertime-tp6-firefox-amazon" / "grcov_data").exists()


def test_output_layout_is_the_one_the_readme_draws(queue: HTTPServer, tmp_path: Path) -> None:
    result = _download(queue, tmp_path, "--test-suites-list", "all", "--artifact-to-get", "perfherder-data")
    assert result.exit_code == 0, result.output
    run = tmp_path / GROUP / "1"
    assert _tree(run) == [
        "browsertime-tp6-firefox-amazon/downloads/TaskA0_perfherder-data.json",
        "browsertime-tp6-firefox-amazon/downloads/TaskA1_perfherder-data.json",
        "browsertime-tp6-firefox-amazon/perfherder-data_data/0/TaskA0_perfherder-data.json",
        "browsertime-tp6-firefox-amazon/perfherder-data_data/1/TaskA1_perfherder-data.json",
        "browsertime-tp6-firefox-google/downloads/TaskG0_perfherder-data.json",
        "browsertime-tp6-firefox-google/perfherder-data_data/0/TaskG0_perfherder-data.json",
        "config.json",
        "task-group-information.json",
        "taskid_to_file_map.json",
        "tracelet-download.json",
    ]
    assert len(json.loads((run / "task-group-information.json").read_text())) == len(SUITES)
    file_map = json.loads((run / "taskid_to_file_map.json").read_text())
    assert file_map["TaskA1"] == str(run / "browsertime-tp6-firefox-amazon" / "perfherder-data_data" / "1")
    # The higher the number, the later it was created; --ingest-continue goes on with the latest one.
    assert _download(queue, tmp_path, "--artifact-to-get", "perfherder-data").exit_code == 0
    assert _download(queue, tmp_path, "--artifact-to-get", "perfherder-data", "--ingest-continue").exit_code == 0
    assert sorted(p.name for p in (tmp_path / GROUP).iterdir()) == ["1", "2"]
    listings = [r for r, _ in queue.log if r.path.endswith(f"/task-group/{GROUP}/list")]
    assert len(listings) == 1  # the group listing is reused from the earlier run's folder


def test_task_processor_reads_a_run_back_as_the_readme_shows(queue: HTTPServer, tmp_path: Path) -> None:
    output = tmp_path / "perfunct-testing-data"
    for _ in range(4):  # four runs: 1, 2, 3 and 4
        result = _download(queue, output, "--artifact-to-get", "perfherder-data", "--test-suites-list", "all")
        assert result.exit_code == 0, result.output
    from tracelet_artifacts.ci import task_processor as tp

    # Get the data
    data = tp.get_task_data(
        'SssyewAFQiKm40PIouxo_g', # Task group ID
        str(output), # Output directory (cannot contain the task group ID)
        artifact='perfherder-data', run_number='4' # Name of the artifact to get, and the run number to use for the data
    )

    # Get the paths to the data
    data_paths = tp.get_task_data_paths(
        'SssyewAFQiKm40PIouxo_g',
        str(output),
        artifact='perfherder-data', run_number='4'
    )

    amazon = "browsertime-tp6-firefox-amazon"
    assert sorted(data) == [amazon, "browsertime-tp6-firefox-google"]
    assert [d["data"]["suites"][0]["value"] for d in data[amazon]] == [812.5, 790.0]  # chunk 0, then chunk 1
    assert all(set(entry) == {"file", "data"} for entry in data[amazon])
    run4 = output / GROUP / "4" / amazon / "perfherder-data_data"
    assert data_paths[amazon] == [str(run4 / "0" / "TaskA0_perfherder-data.json"),
                                  str(run4 / "1" / "TaskA1_perfherder-data.json")]  # fmt: skip
    assert [d["file"] for d in data[amazon]] == data_paths[amazon]


def test_a_failing_artifact_is_never_saved_and_the_command_says_so(queue: HTTPServer, tmp_path: Path) -> None:
    """Beyond the original: it saved a 404 body as the artifact and went on; here nothing partial is kept."""
    queue.clear()
    tasks: list[dict[str, Any]] = [{"task": {"metadata": {"name": SUITES["TaskG0"]}},
                                    "status": {"taskId": "TaskG0", "state": "completed", "runs": [{"runId": 0}]}}]
    queue.expect_request(f"{Q}/task-group/{GROUP}/list").respond_with_json({"tasks": tasks})
    queue.expect_request(f"{Q}/task/TaskG0/runs/0/artifacts").respond_with_json(
        {"artifacts": [{"storageType": "s3", "name": "public/test_info/perfherder-data.json"}]})
    queue.expect_request(f"{Q}/task/TaskG0/runs/0/artifacts/public/test_info/perfherder-data.json").respond_with_data(
        "not here", status=404)
    result = _download(queue, tmp_path, "--artifact-to-get", "perfherder-data")
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith("error: 1 file(s)")
    assert not list((tmp_path / GROUP / "1").rglob("*perfherder-data.json"))
