"""The provider commands of ``tracelet-artifacts ci``: ``runs``, ``ls``, ``get`` and ``taskcluster-download``.

They register on the ``ci`` group of ``tracelet_artifacts.ci.cli``; tokens come from the environment
(``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ``JENKINS_USER``/``JENKINS_TOKEN``) or a config file, never from flags.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tracelet_artifacts.ci.cli import _fail_clearly, ci
from tracelet_artifacts.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_artifacts.ci.providers.base import CIProvider

CONFIG_ENV = "TRACELET_CI_CONFIG"
CACHE_ENV = "TRACELET_CI_CACHE"
DEFAULT_CACHE = Path("~/.cache/tracelet-artifacts/ci")


def _load_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """Named provider configs from a JSON or YAML file: ``{name: {"type": ..., ...}}``."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        path = Path(env) if env else None
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    providers = data.get("providers", data)
    if not isinstance(providers, dict):
        raise ConfigurationError(f"{path}: expected a mapping of provider names to configs")
    return {str(k): dict(v) for k, v in providers.items()}


def provider_options(func: Any) -> Any:
    """The options that say which provider, repository, project or job to talk to."""
    options = [
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help=f"Provider config file (JSON/YAML); default ${CONFIG_ENV}."),
        click.option("--repo", help="GitHub repository, owner/name."),
        click.option("--project", help="GitLab project id or path (group/project)."),
        click.option("--job", help="Jenkins job, folders separated by '/'."),
        click.option("--base-url", help="API base URL (GitHub Enterprise, self-managed GitLab, Jenkins)."),
        click.option("--root-url", help="Taskcluster root URL."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def build_provider(name: str, config_path: Path | None, **flags: Any) -> CIProvider:
    """A provider from the config file entry ``name`` (or of type ``name``), overlaid with flags."""
    from tracelet_artifacts.ci.providers.factory import CIProviderFactory

    config = dict(_load_config(config_path).get(name, {"type": name}))
    config.setdefault("type", name)
    for key, value in flags.items():
        if value is not None:
            config[key] = value
    kind = config["type"]
    wanted = {"github": "repo", "gitlab": "project", "jenkins": "job"}.get(kind)
    if wanted and wanted not in config:
        raise ConfigurationError(f"{kind} needs --{wanted} (or '{wanted}' in the config file).")
    if kind != "taskcluster":
        config.pop("root_url", None)
    if kind in ("taskcluster",):
        config.pop("base_url", None)
    for key in ("repo", "project", "job"):
        if key != wanted:
            config.pop(key, None)
    return CIProviderFactory.create(config)


def _console() -> Any:
    from rich.console import Console

    return Console()


@ci.command()
@click.argument("provider")
@provider_options
@click.option("--branch", help="Branch (GitHub branch, GitLab ref).")
@click.option("--status", help="Status/conclusion (GitHub status, GitLab status, Jenkins result).")
@click.option("--sha", help="Commit SHA.")
@click.option("--task-group-id", help="Taskcluster task group to list.")
@click.option("--limit", default=20, show_default=True, help="How many runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_fail_clearly
def runs(provider: str, config_path: Path | None, branch: str | None, status: str | None, sha: str | None,
         task_group_id: str | None, limit: int, as_json: bool, **flags: Any) -> None:  # fmt: skip
    """List recent runs (pipelines, builds, tasks of a task group) of PROVIDER."""
    with build_provider(provider, config_path, **flags) as p:
        filters: dict[str, Any] = {}
        if p.name == "github":
            filters = {"branch": branch, "status": status, "head_sha": sha}
        elif p.name == "gitlab":
            filters = {"ref": branch, "status": status, "sha": sha}
        elif p.name == "jenkins":
            filters = {"result": status}
        elif p.name == "taskcluster":
            filters = {"task_group_id": task_group_id}
        found = p.list_runs(limit=limit, **{k: v for k, v in filters.items() if v is not None})
    if as_json:
        click.echo(json.dumps([_run_dict(r) for r in found], indent=2))
        return
    from rich.table import Table

    table = Table("run", "attempt", "status", "conclusion", "ref", "commit", "created", "name")
    for r in found:
        table.add_row(r.run_id, str(r.attempt), r.status or "", r.conclusion or "", r.ref or "",
                      (r.commit_sha or "")[:12], r.created_at or "", r.name or "")  # fmt: skip
    _console().print(table)


def _run_dict(run: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(run)
    data["extra"] = dict(run.extra)
    return data


@ci.command(name="ls")
@click.argument("provider")
@click.argument("run_id")
@provider_options
@click.option("--attempt", type=int, help="Attempt (GitLab retry / Taskcluster runId); default latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_fail_clearly
def ls_command(provider: str, run_id: str, config_path: Path | None, attempt: int | None, as_json: bool,
               **flags: Any) -> None:  # fmt: skip
    """List the artifacts of RUN_ID on PROVIDER."""
    with build_provider(provider, config_path, **flags) as p:
        artifacts = p.list_artifacts(run_id, attempt=attempt)
    if as_json:
        keys = ("name", "attempt", "size", "digest", "expired", "archive", "created_at", "expires_at")
        rows = [{key: getattr(a, key) for key in keys} for a in artifacts]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("name", "attempt", "size", "expired", "kind", "created")
    for a in artifacts:
        kind = "zip" if a.archive else str(a.extra.get("storage_type", "file"))
        table.add_row(a.name, str(a.attempt), "" if a.size is None else str(a.size), "yes" if a.expired else "",
                      kind, a.created_at or "")  # fmt: skip
    _console().print(table)


@ci.command()
@click.argument("provider")
@click.argument("run_id")
@click.argument("names", nargs=-1, required=True)
@provider_options
@click.option("--attempt", type=int, help="Attempt; default the latest.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to put the artifacts in.")  # fmt: skip
@click.option("--extract", is_flag=True, help="Unpack zip/tar artifacts (safely) into OUTPUT/<name>/.")
@click.option("--no-cache", is_flag=True, help="Fetch again even when the cache holds a sound copy.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help=f"Cache folder; default ${CACHE_ENV} or {DEFAULT_CACHE}.")  # fmt: skip
@click.option("--concurrency", default=8, show_default=True, help="Parallel downloads.")
@_fail_clearly
def get(provider: str, run_id: str, names: tuple[str, ...], config_path: Path | None, attempt: int | None,
        output: Path, extract: bool, no_cache: bool, cache_dir: Path | None, concurrency: int,
        **flags: Any) -> None:  # fmt: skip
    """Download artifacts NAMES of RUN_ID through the verified cache into OUTPUT."""
    from tracelet_artifacts.ci.archive import is_archive, safe_extract
    from tracelet_artifacts.ci.retriever import ArtifactRequest, ArtifactRetriever

    cache = cache_dir or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    retriever = ArtifactRetriever(cache, max_concurrency=max(1, concurrency))
    console = _console()
    with build_provider(provider, config_path, **flags) as p:
        retriever.register_provider(provider, p)
        requests = [ArtifactRequest(run_id, name, provider, attempt) for name in names]
        results = asyncio.run(retriever.retrieve_artifacts_batch(requests, use_cache=not no_cache))
    retriever.close()
    output.mkdir(parents=True, exist_ok=True)
    failed = 0
    for result in results:
        name = result.request.artifact_name
        if not result.ok or result.path is None or result.metadata is None:
            failed += 1
            console.print(f"[red]✗[/red] {name}: {result.error}")
            continue
        dest = output / result.path.name
        shutil.copyfile(result.path, dest)
        where = dest
        if extract and is_archive(dest):
            where = safe_extract(dest, output / dest.name.split(".", 1)[0])
        origin = "cache" if result.from_cache else "downloaded"
        console.print(f"[green]✓[/green] {name} → {where} ({result.metadata.size_bytes} bytes, "
                      f"{result.metadata.artifact_type}, sha256 {result.metadata.sha256[:12]}…, {origin})")  # fmt: skip
    if failed:
        raise click.ClickException(f"{failed} of {len(results)} artifacts could not be retrieved")


@ci.command(name="taskcluster-download")
@click.option("--task-group-id", required=True, help="The task group to download from.")
@click.option("--test-suites-list", multiple=True, default=("all",), show_default=True,
              help="Suites to download ('all' for every suite); repeat or separate with commas.")  # fmt: skip
@click.option("--artifact-to-get", multiple=True, default=("perfherder-data",), show_default=True,
              help="Artifact name patterns (substring); repeat or separate with commas.")  # fmt: skip
@click.option("--unzip-artifact", is_flag=True, help="Unpack zip/tar artifacts into <artifact>_data/<n>/.")
@click.option("--platform", default="all", show_default=True, help="Substring of the task name, or 'all'.")
@click.option("--download-failures", is_flag=True, help="Also download from failed tasks.")
@click.option("--ingest-continue", is_flag=True, help="Resume the latest run folder instead of starting one.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
@click.option("--root-url", default=None, help="Taskcluster root URL (default: Firefox CI).")
@click.option("--max-workers", default=5, show_default=True, help="Tasks processed in parallel.")
@_fail_clearly
def taskcluster_download(task_group_id: str, test_suites_list: tuple[str, ...], artifact_to_get: tuple[str, ...],
                         unzip_artifact: bool, platform: str, download_failures: bool, ingest_continue: bool,
                         output: Path, root_url: str | None, max_workers: int) -> None:  # fmt: skip
    """Download the artifacts of a Taskcluster task group (the ArtifactDownloader tool)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tracelet_artifacts.ci.providers.taskcluster import FIREFOX_CI, TaskclusterProvider
    from tracelet_artifacts.ci.taskcluster_download import DownloadOptions, TaskGroupDownloader

    def split(values: tuple[str, ...]) -> list[str]:
        return [v for value in values for v in value.replace(",", " ").split() if v]

    options = DownloadOptions(
        task_group_id=task_group_id,
        test_suites_list=split(test_suites_list) or ["all"],
        artifact_to_get=split(artifact_to_get),
        unzip_artifact=unzip_artifact,
        platform=platform,
        download_failures=download_failures,
        ingest_continue=ingest_continue,
        output=output,
        max_workers=max_workers,
    )
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=False) as bar:
        job = bar.add_task("tasks", total=None)

        def show(p: Any) -> None:
            bar.update(job, total=p.total_tasks or None, completed=p.done_tasks,
                       description=f"tasks ({p.downloaded} files, {p.failed} failed)")  # fmt: skip

        with TaskclusterProvider(root_url or FIREFOX_CI) as provider:
            downloader = TaskGroupDownloader(provider, progress=show)
            run_dir = downloader.run(options)
    progress = downloader.last_progress
    click.echo(f"{run_dir}: {progress.downloaded} downloaded, {progress.skipped_existing} already present, "
               f"{progress.failed} failed")  # fmt: skip
    for error in progress.errors:
        click.echo(f"  failed: {error}", err=True)
    if progress.failed:
        raise SystemExit(1)
