"""Every ``tracelet-artifacts ci`` command given a user's mistake answers with one ``error:`` line on stderr,
a non-zero exit and no traceback (``--debug`` adds the traceback); the same handler serves both CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracelet_artifacts.ci.cli import ci
from tracelet_artifacts.cli import main


def run(*args: str, group: object = main) -> Result:
    return CliRunner().invoke(group, list(args), env={"GITHUB_TOKEN": "tok", "TRACELET_CI_CONFIG": None})  # type: ignore[arg-type]


def assert_one_line_error(result: Result, *fragments: str, code: int | None = None) -> None:
    assert result.exit_code != 0 and (code is None or result.exit_code == code), result.output
    assert "Traceback" not in result.output and "Error:" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def perf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    for i, value in enumerate([100.0, 101.0, 99.0, 140.0], start=1):
        (folder / f"run{i}.json").write_text(json.dumps({"metrics": {"throughput": value, "latency": 5.0}}))
    return folder


def test_an_unknown_provider_lists_the_known_ones() -> None:
    assert_one_line_error(run("ci", "runs", "circleci"), "'circleci'", "known types: github, gitlab", code=1)


def test_a_provider_without_its_repository_says_which_option() -> None:
    assert_one_line_error(run("ci", "runs", "gitlab"), "gitlab needs --project")


def test_a_flag_the_provider_cannot_use_is_refused_not_ignored() -> None:
    assert_one_line_error(run("ci", "runs", "github", "--repo", "o/r", "--task-group-id", "G"),
                          "--task-group-id", "--branch, --status, --sha")
    assert_one_line_error(run("ci", "ls", "github", "1", "--project", "g/p"), "does not take --project", "--repo")
    assert_one_line_error(run("ci", "ls", "taskcluster", "T", "--base-url", "http://x"), "--root-url")


def test_a_malformed_repository_name_is_one_line() -> None:
    assert_one_line_error(run("ci", "ls", "github", "1", "--repo", "just-a-name"), "'owner/name'", "'just-a-name'")


@pytest.mark.parametrize(("name", "text", "says"), [
    ("ci.json", '{"providers": {"app": ', "not valid JSON"),
    ("ci.yaml", "providers: [app: {type: github", "not valid YAML"),
    ("ci.json", '["github"]', "expected a mapping of provider names"),
])  # fmt: skip
def test_a_broken_config_file_names_the_file(tmp_path: Path, name: str, text: str, says: str) -> None:
    config = tmp_path / name
    config.write_text(text)
    assert_one_line_error(run("ci", "runs", "app", "--config", str(config)), str(config), says)


def test_out_of_range_numbers_are_usage_errors() -> None:
    assert_one_line_error(run("ci", "get", "github", "1", "a", "--repo", "o/r", "--concurrency", "0"),
                          "--concurrency", code=2)
    assert_one_line_error(run("ci", "runs", "github", "--repo", "o/r", "--limit", "0"), "--limit", code=2)
    assert_one_line_error(run("ci", "taskcluster-download", "--task-group-id", "G", "--max-workers", "0"),
                          "--max-workers", code=2)


def test_an_output_folder_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(run("ci", "get", "github", "1", "perf", "--repo", "o/r", "--output", str(blocker / "out")),
                          "cannot create the output folder", str(blocker / "out"))
    assert_one_line_error(run("ci", "taskcluster-download", "--task-group-id", "G", "--output", str(blocker / "o")),
                          "cannot create the output folder")


def test_no_artifact_pattern_is_refused() -> None:
    assert_one_line_error(run("ci", "taskcluster-download", "--task-group-id", "G", "--artifact-to-get", ","),
                          "--artifact-to-get", code=2)


def test_a_trend_metric_no_file_holds_lists_the_ones_they_do(perf_folder: Path) -> None:
    assert_one_line_error(run("ci", "trend", str(perf_folder), "--metric", "fps"),
                          "no metric 'fps'", "metrics.latency, metrics.throughput")


def test_a_bare_leaf_metric_name_resolves_to_its_dotted_path(perf_folder: Path) -> None:
    result = run("ci", "trend", str(perf_folder), "--metric", "throughput", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["values"] == [100.0, 101.0, 99.0, 140.0]


def test_comparing_a_missing_file_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("ci", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")), "a.json", code=2)


def test_the_ci_group_alone_uses_the_same_handler() -> None:
    assert_one_line_error(run("runs", "circleci", group=ci), "known types")


def test_debug_shows_the_traceback_then_the_same_line() -> None:
    result = run("--debug", "ci", "runs", "circleci")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown CI provider type 'circleci'")
