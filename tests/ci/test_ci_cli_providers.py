"""``tracelet-artifacts ci runs|ls|get|taskcluster-download`` against loopback providers: output, files
written, the cache reused, the token never printed, and clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci_fakes import TOKEN, make_zip
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from test_ci_taskcluster import GROUP, serve_task_group, task_entry

from tracelet_artifacts.ci.cli import ci
from tracelet_artifacts.ci.providers.taskcluster import QUEUE_PATH as Q


def _github(api: HTTPServer, cdn: HTTPServer) -> bytes:
    body = make_zip({"perf.json": b'{"metrics": {"throughput": 99.5}}'})
    api.expect_request("/repos/o/r/actions/runs").respond_with_json(
        {"total_count": 1, "workflow_runs": [{"id": 77, "run_attempt": 1, "status": "completed",
                                              "conclusion": "success", "head_branch": "main", "head_sha": "f" * 40,
                                              "name": "Build", "created_at": "2024-01-01T00:00:00Z"}]}
    )  # fmt: skip
    api.expect_request("/repos/o/r/actions/runs/77/artifacts").respond_with_json(
        {"total_count": 2, "artifacts": [
            {"id": 1, "name": "perf", "size_in_bytes": len(body), "expired": False,
             "archive_download_url": api.url_for("/repos/o/r/actions/artifacts/1/zip")},
            {"id": 2, "name": "old", "size_in_bytes": 3, "expired": True,
             "archive_download_url": api.url_for("/repos/o/r/actions/artifacts/2/zip")}]}
    )  # fmt: skip
    api.expect_request("/repos/o/r/actions/artifacts/1/zip").respond_with_data(
        "", status=302, headers={"Location": cdn.url_for("/blob/1")}
    )
    cdn.expect_request("/blob/1").respond_with_data(body, content_type="application/zip")
    return body


def _invoke(args: list[str]) -> object:
    return CliRunner().invoke(ci, args, env={"GITHUB_TOKEN": TOKEN}, catch_exceptions=False)


def test_runs_and_ls_print_tables_and_json(api: HTTPServer, cdn: HTTPServer) -> None:
    _github(api, cdn)
    base = ["--repo", "o/r", "--base-url", api.url_for("/").rstrip("/")]
    result = _invoke(["runs", "github", *base, "--branch", "main"])
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "77" in result.output and "success" in result.output  # type: ignore[attr-defined]
    assert api.log[0][0].args["branch"] == "main"
    assert api.log[0][0].headers["Authorization"] == f"Bearer {TOKEN}"
    listed = _invoke(["ls", "github", "77", *base, "--json"])
    rows = json.loads(listed.output)  # type: ignore[attr-defined]
    assert [(r["name"], r["expired"]) for r in rows] == [("perf", False), ("old", True)]
    assert TOKEN not in result.output + listed.output  # type: ignore[attr-defined]


def test_get_downloads_extracts_and_reuses_the_cache(api: HTTPServer, cdn: HTTPServer, tmp_path: Path) -> None:
    body = _github(api, cdn)
    args = ["get", "github", "77", "perf", "--repo", "o/r", "--base-url", api.url_for("/").rstrip("/"),
            "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--extract"]  # fmt: skip
    first = _invoke(args)
    assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    assert (tmp_path / "out" / "perf").exists() and (tmp_path / "out" / "perf" / "perf.json").exists()
    assert next((tmp_path / "out").glob("*.zip")).read_bytes() == body
    second = _invoke(args)
    assert "cache" in second.output  # type: ignore[attr-defined]
    assert len([r for r, _ in api.log if r.path.endswith("/zip")]) == 1
    assert TOKEN not in first.output + second.output  # type: ignore[attr-defined]


def test_get_reports_an_expired_artifact_and_fails(api: HTTPServer, cdn: HTTPServer, tmp_path: Path) -> None:
    _github(api, cdn)
    result = _invoke(["get", "github", "77", "old", "--repo", "o/r", "--base-url", api.url_for("/").rstrip("/"),
                      "--output", str(tmp_path), "--cache-dir", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "expired" in result.output and "1 of 1 artifacts" in result.output  # type: ignore[attr-defined]


def test_missing_repo_is_a_clear_error() -> None:
    result = _invoke(["runs", "github"])
    assert result.exit_code == 1 and "--repo" in result.output  # type: ignore[attr-defined]


def test_config_file_names_a_provider(api: HTTPServer, cdn: HTTPServer, tmp_path: Path) -> None:
    _github(api, cdn)
    config = tmp_path / "ci.json"
    config.write_text(json.dumps({"providers": {"main": {"type": "github", "repo": "o/r",
                                                         "base_url": api.url_for("/").rstrip("/")}}}))  # fmt: skip
    result = _invoke(["runs", "main", "--config", str(config), "--json"])
    assert json.loads(result.output)[0]["run_id"] == "77"  # type: ignore[attr-defined]


def test_taskcluster_download_command(api: HTTPServer, tmp_path: Path) -> None:
    serve_task_group(api, [[task_entry("T1", "test-linux64/opt-browsertime-tp6-amazon")]])
    api.expect_request(f"{Q}/task/T1/runs/0/artifacts").respond_with_json(
        {"artifacts": [{"storageType": "s3", "name": "public/perfherder-data.json", "expires": "2999-01-01T00:00:00Z",
                        "contentType": "application/json"}]}
    )  # fmt: skip
    api.expect_request(f"{Q}/task/T1/runs/0/artifacts/public/perfherder-data.json").respond_with_json({"suites": []})
    result = CliRunner().invoke(
        ci,
        ["taskcluster-download", "--task-group-id", GROUP, "--root-url", api.url_for("/").rstrip("/"),
         "--artifact-to-get", "perfherder-data", "--test-suites-list", "all", "--output", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 downloaded" in result.output
    saved = tmp_path / GROUP / "1" / "browsertime-tp6-amazon" / "downloads" / "T1_perfherder-data.json"
    assert json.loads(saved.read_text()) == {"suites": []}


def _get(api: HTTPServer, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["get", "github", "77", "perf", "--repo", "o/r", "--base-url", api.url_for("/").rstrip("/"),
            "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--no-cache", *extra]
    return CliRunner().invoke(ci, args, env={"GITHUB_TOKEN": TOKEN, **(env or {})})


def test_get_shows_byte_progress_on_a_terminal_and_not_with_quiet(
    api: HTTPServer, cdn: HTTPServer, tmp_path: Path
) -> None:
    _github(api, cdn)
    shown = _get(api, tmp_path, env={"FORCE_COLOR": "1"})  # rich treats stderr as a terminal
    assert shown.exit_code == 0, shown.output
    assert "1 artifact(s) of run 77" in shown.stderr and "bytes" in shown.stderr and "0 left" in shown.stderr
    assert "artifact(s) of run" not in shown.stdout
    quiet = _get(api, tmp_path, "--quiet", env={"FORCE_COLOR": "1"})
    assert quiet.exit_code == 0 and "artifact(s) of run" not in quiet.stderr
    piped = _get(api, tmp_path)  # not a terminal: no bar
    assert piped.exit_code == 0 and "artifact(s) of run" not in piped.stderr


def test_transfer_totals_count_a_retried_file_once() -> None:
    from tracelet_artifacts.ci.progress import TransferTotals

    totals = TransferTotals()
    totals.expect("a", 100)
    first = totals.file("a")
    first(60, 100)
    first(0, 100)  # the download was retried from the start
    first(100, 100)
    totals.file("b")(50, None)  # a file whose size nobody said
    assert (totals.done, totals.total) == (150, 100)


def test_taskcluster_download_shows_tasks_left_and_bytes(api: HTTPServer, tmp_path: Path) -> None:
    serve_task_group(api, [[task_entry("T1", "test-linux64/opt-browsertime-tp6-amazon")]])
    api.expect_request(f"{Q}/task/T1/runs/0/artifacts").respond_with_json(
        {"artifacts": [{"storageType": "s3", "name": "public/perfherder-data.json"}]})
    api.expect_request(f"{Q}/task/T1/runs/0/artifacts/public/perfherder-data.json").respond_with_json({"suites": []})
    args = ["taskcluster-download", "--task-group-id", GROUP, "--root-url", api.url_for("/").rstrip("/"),
            "--artifact-to-get", "perfherder-data", "--output", str(tmp_path)]  # fmt: skip
    shown = CliRunner().invoke(ci, args, env={"FORCE_COLOR": "1"})
    assert shown.exit_code == 0, shown.output
    assert f"task group {GROUP}" in shown.stderr and "0 of 1 task(s) left" in shown.stderr
    quiet = CliRunner().invoke(ci, [*args, "--quiet", "--ingest-continue"], env={"FORCE_COLOR": "1"})
    assert quiet.exit_code == 0 and "task(s) left" not in quiet.stderr
