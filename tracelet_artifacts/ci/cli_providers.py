"""The provider commands of ``tracelet-artifacts ci``: ``runs``, ``ls``, ``get`` and ``taskcluster-download``.

Which providers exist, which option names their repository/project/job and which run filters they take
is asked of the provider registry and the provider classes. Tokens come from the environment
(``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ``JENKINS_USER``/``JENKINS_TOKEN``) or a config file, never from flags.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from tracelet_artifacts.cli_errors import one_line
from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.terminal import console, writable_folder

if TYPE_CHECKING:
    from tracelet_artifacts.ci.providers.base import CIProvider

CONFIG_ENV = "TRACELET_CI_CONFIG"
CACHE_ENV = "TRACELET_CI_CACHE"
DEFAULT_CACHE = Path("~/.cache/tracelet-artifacts/ci")
LOCATION_OPTIONS = ("repo", "project", "job")


def _load_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """Named provider configs from a JSON or YAML file: ``{name: {"type": ..., ...}}``."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        path = Path(env) if env else None
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the CI config file {path}: {exc.strerror or exc}") from exc
    yaml_file = path.suffix in (".yaml", ".yml")
    try:
        data = (yaml.safe_load(text) or {}) if yaml_file else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "YAML" if yaml_file else "JSON"
        raise ConfigurationError(f"the CI config file {path} is not valid {kind}: {one_line(str(exc))}") from exc
    providers = data.get("providers", data) if isinstance(data, dict) else data
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ConfigurationError(
            f"{path}: expected a mapping of provider names to configs, e.g. "
            "{'providers': {'app': {'type': 'github', 'repo': 'octo/app'}}}"
        )
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
    """A provider from the config file entry ``name`` (or of type ``name``), overlaid with flags.

    A flag the provider cannot use (``--project`` for GitHub, ``--root-url`` for Jenkins) is refused.
    """
    from tracelet_artifacts.ci.providers import registry
    from tracelet_artifacts.ci.providers.factory import CIProviderFactory

    config = dict(_load_config(config_path).get(name, {"type": name}))
    config.setdefault("type", name)
    provider_cls = registry.provider_class(str(config["type"]))
    wanted = provider_cls.location_option
    for key, value in flags.items():
        if value is None:
            continue
        if (key in LOCATION_OPTIONS and key != wanted) or (key == "root_url" and "root_url" not in
                                                            provider_cls.env_options):
            takes = f"--{wanted}" if wanted else "no repository option"
            raise ConfigurationError(f"{config['type']} does not take --{key.replace('_', '-')} ({takes}).")
        if key == "base_url" and "root_url" in provider_cls.env_options:
            raise ConfigurationError(f"{config['type']} takes --root-url, not --base-url.")
        config[key] = value
    if wanted and wanted not in config:
        raise ConfigurationError(f"{config['type']} needs --{wanted} (or '{wanted}' in the config file).")
    return CIProviderFactory.create(config)


@click.command()
@click.argument("provider")
@provider_options
@click.option("--branch", help="Branch (GitHub branch, GitLab ref).")
@click.option("--status", help="Status/conclusion (GitHub status, GitLab status, Jenkins result).")
@click.option("--sha", help="Commit SHA.")
@click.option("--task-group-id", help="Taskcluster task group to list.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(provider: str, config_path: Path | None, branch: str | None, status: str | None, sha: str | None,
         task_group_id: str | None, limit: int, as_json: bool, **flags: Any) -> None:  # fmt: skip
    """List recent runs (pipelines, builds, tasks of a task group) of PROVIDER."""
    given = {"branch": branch, "status": status, "sha": sha, "task_group_id": task_group_id}
    with build_provider(provider, config_path, **flags) as p:
        unusable = [k for k, v in given.items() if v is not None and k not in p.cli_filters]
        if unusable:
            takes = ", ".join(f"--{k.replace('_', '-')}" for k in p.cli_filters) or "no filter"
            raise ConfigurationError(
                f"{p.name} runs cannot be filtered by {', '.join('--' + k.replace('_', '-') for k in unusable)}; "
                f"it takes {takes}."
            )
        filters = {p.cli_filters[k]: v for k, v in given.items() if v is not None}
        found = p.list_runs(limit=limit, **filters)
    if as_json:
        click.echo(json.dumps([_run_dict(r) for r in found], indent=2))
        return
    from rich.table import Table

    table = Table("run", "attempt", "status", "conclusion", "ref", "commit", "created", "name")
    for r in found:
        table.add_row(r.run_id, str(r.attempt), r.status or "", r.conclusion or "", r.ref or "",
                      (r.commit_sha or "")[:12], r.created_at or "", r.name or "")  # fmt: skip
    console().print(table)


def _run_dict(run: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(run)
    data["extra"] = dict(run.extra)
    return data


@click.command(name="ls")
@click.argument("provider")
@click.argument("run_id")
@provider_options
@click.option("--attempt", type=click.IntRange(min=0),
              help="Attempt (GitLab retry / Taskcluster runId); default latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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
    console().print(table)


def _writable_folder(path: Path, what: str) -> Path:
    return writable_folder(path, what, f"choose another with --{what}")


@click.command()
@click.argument("provider")
@click.argument("run_id")
@click.argument("names", nargs=-1, required=True)
@provider_options
@click.option("--attempt", type=click.IntRange(min=0), help="Attempt; default the latest.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to put the artifacts in.")  # fmt: skip
@click.option("--extract", is_flag=True, help="Unpack zip/tar artifacts (safely) into OUTPUT/<name>/.")
@click.option("--no-cache", is_flag=True, help="Fetch again even when the cache holds a sound copy.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help=f"Cache folder; default ${CACHE_ENV} or {DEFAULT_CACHE}.")  # fmt: skip
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1), help="Parallel downloads.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def get(provider: str, run_id: str, names: tuple[str, ...], config_path: Path | None, attempt: int | None,
        output: Path, extract: bool, no_cache: bool, cache_dir: Path | None, concurrency: int, quiet: bool,
        **flags: Any) -> None:  # fmt: skip
    """Download artifacts NAMES of RUN_ID through the verified cache into OUTPUT.

    A progress bar (bytes, rate, time left) is shown on stderr when it is a terminal, unless --quiet.
    """
    from tracelet_artifacts.ci.archive import is_archive, safe_extract
    from tracelet_artifacts.ci.progress import TransferTotals
    from tracelet_artifacts.ci.retriever import ArtifactRequest, ArtifactRetriever, ByteProgress
    from tracelet_artifacts.terminal import transfer_bar

    _writable_folder(output, "output")
    cache = _writable_folder(cache_dir or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser(), "cache-dir")
    retriever = ArtifactRetriever(cache, max_concurrency=concurrency)
    out = console()
    totals = TransferTotals()
    with build_provider(provider, config_path, **flags) as p, transfer_bar(quiet=quiet) as bar:
        retriever.register_provider(provider, p)
        task = bar.add_task(f"{len(names)} artifact(s) of run {run_id}", total=None, left=f"{len(names)} left")

        def show(now: TransferTotals) -> None:
            bar.update(task, completed=now.done, total=now.total or None)

        def one_done(result: Any) -> None:
            totals.finished(result.request)
            bar.update(task, left=f"{len(names) - totals.files_done} left")

        requests = [ArtifactRequest(run_id, name, provider, attempt) for name in names]
        watch = ByteProgress(size=totals.expect, file=lambda request: totals.file(request, show))
        results = asyncio.run(retriever.retrieve_artifacts_batch(
            requests, use_cache=not no_cache, progress=one_done, bytes_progress=watch))
    retriever.close()
    failed = 0
    for result in results:
        name = result.request.artifact_name
        if not result.ok or result.path is None or result.metadata is None:
            failed += 1
            out.print(f"[red]✗[/red] {name}: {result.error}")
            continue
        dest = output / result.path.name
        shutil.copyfile(result.path, dest)
        where = dest
        if extract and is_archive(dest):
            where = safe_extract(dest, output / dest.name.split(".", 1)[0])
        origin = "cache" if result.from_cache else "downloaded"
        out.print(f"[green]✓[/green] {name} → {where} ({result.metadata.size_bytes} bytes, "
                  f"{result.metadata.artifact_type}, sha256 {result.metadata.sha256[:12]}…, {origin})")  # fmt: skip
    if failed:
        raise click.ClickException(f"{failed} of {len(results)} artifacts could not be retrieved")


class _ManyValues(click.Command):
    """A command whose listed options take several values after one flag, as argparse's ``nargs="+"``
    does (``--test-suites-list a b c``); they are rewritten to repeated flags before click parses them."""

    many: tuple[str, ...] = ("--test-suites-list", "--artifact-to-get")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _spread(args, self.many))


def _spread(args: Sequence[str], many: Sequence[str]) -> list[str]:
    out: list[str] = []
    flag: str | None = None
    for arg in args:
        if arg == "--":
            flag = None
        elif arg.startswith("-"):
            name, eq, _ = arg.partition("=")
            flag = name if name in many and not eq else None
            out.append(arg)
            continue
        elif flag is not None and out[-1] != flag:
            out.append(flag)
        out.append(arg)
    return out


def _values(values: tuple[str, ...]) -> list[str]:
    return [v for value in values for v in value.replace(",", " ").split() if v]


@click.command(name="taskcluster-download", cls=_ManyValues)
@click.option("--task-group-id", required=True, help="The group of tasks to download from.")
@click.option("--test-suites-list", multiple=True, default=("all",), show_default=True, metavar="SUITE [SUITE ...]",
              help="Suites to download ('all' for every suite); several after one flag, repeated, or comma-separated.")
@click.option("--artifact-to-get", multiple=True, default=("grcov",), show_default=True,
              metavar="PATTERN [PATTERN ...]",
              help="Artifact name patterns (substrings); several after one flag, repeated, or comma-separated.")
@click.option("--unzip-artifact", is_flag=True, help="Unpack zip/tar artifacts into <artifact>_data/<chunk>/.")
@click.option("--platform", default="all", show_default=True, help="Substring of the task name, or 'all'.")
@click.option("--download-failures", is_flag=True, help="Also download from failed tasks.")
@click.option("--ingest-continue", is_flag=True, help="Resume the latest run folder instead of starting one.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Where the TASK_GROUP_ID/RUN_NUMBER folders go.")
@click.option("--root-url", default=None, help="Taskcluster root URL (default: Firefox CI).")
@click.option("--max-workers", default=5, show_default=True, type=click.IntRange(min=1),
              help="Tasks processed in parallel.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def taskcluster_download(task_group_id: str, test_suites_list: tuple[str, ...], artifact_to_get: tuple[str, ...],
                         unzip_artifact: bool, platform: str, download_failures: bool, ingest_continue: bool,
                         output: Path, root_url: str | None, max_workers: int, quiet: bool) -> None:  # fmt: skip
    """Download the artifacts of a Taskcluster task group (Mozilla's ArtifactDownloader, same options and layout).

    Progress (tasks done and left, bytes, rate) is shown on stderr when it is a terminal, unless --quiet.
    """
    from tracelet_artifacts.ci.providers.taskcluster import FIREFOX_CI, TaskclusterProvider
    from tracelet_artifacts.ci.taskcluster_download import DownloadOptions, Progress, TaskGroupDownloader
    from tracelet_artifacts.terminal import transfer_bar

    patterns = _values(artifact_to_get)
    if not patterns:
        raise click.BadParameter("give at least one artifact name pattern", param_hint="--artifact-to-get")
    options = DownloadOptions(
        task_group_id=task_group_id,
        test_suites_list=_values(test_suites_list) or ["all"],
        artifact_to_get=patterns,
        unzip_artifact=unzip_artifact,
        platform=platform,
        download_failures=download_failures,
        ingest_continue=ingest_continue,
        output=_writable_folder(output, "output"),
        max_workers=max_workers,
    )
    with transfer_bar(quiet=quiet) as bar:
        job = bar.add_task(f"task group {task_group_id}", total=None, left="listing tasks")

        def show(p: Progress) -> None:
            left = p.total_tasks - p.done_tasks
            bar.update(job, completed=p.bytes_downloaded,
                       left=f"{left} of {p.total_tasks} task(s) left, {p.failed} failed")  # fmt: skip

        with TaskclusterProvider(root_url or FIREFOX_CI) as provider:
            downloader = TaskGroupDownloader(provider, progress=show)
            run_dir = downloader.run(options)
    progress = downloader.last_progress
    click.echo(f"{run_dir}: {progress.downloaded} downloaded, {progress.skipped_existing} already present, "
               f"{progress.failed} failed")  # fmt: skip
    for error in progress.errors:
        click.echo(f"  failed: {error}", err=True)
    if progress.failed:
        raise click.ClickException(f"{progress.failed} file(s) of task group {task_group_id} failed; run again "
                                   "with --ingest-continue to retry them")
