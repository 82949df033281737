"""The Taskcluster task-group downloader: every matching artifact of a task group into a local layout
(``OUTPUT/GROUP/RUN/<suite>/downloads`` and ``<artifact>_data/<n>``), resumable, bounded and verified.

Layout (compatible with Mozilla's ArtifactDownloader)::

    OUTPUT/TASK_GROUP_ID/task-group-information.json     the group listing, reused by later runs
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/config.json          the options of this run
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/taskid_to_file_map.json
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/<suite>/downloads/<taskId>+-+<basename>
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/<suite>/<artifact>_data/<n>/...   (with --unzip-artifact)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tracelet_artifacts.ci.archive import safe_extract
from tracelet_artifacts.ci.errors import ArtifactUnavailableError, CIError
from tracelet_artifacts.ci.providers.taskcluster import TaskclusterProvider

logger = logging.getLogger("tracelet_artifacts.ci")

GROUP_CACHE = "task-group-information.json"
FILE_MAP = "taskid_to_file_map.json"
SEPARATOR = "+-+"
ARCHIVE_SUFFIXES = (".zip", ".tgz", ".tar.gz", ".tar", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True)
class DownloadOptions:
    """The options of the original tool, by the same names."""

    task_group_id: str
    test_suites_list: Sequence[str] = ("all",)
    artifact_to_get: Sequence[str] = ("perfherder-data",)
    unzip_artifact: bool = False
    platform: str = "all"
    download_failures: bool = False
    ingest_continue: bool = False
    output: Path = Path(".")
    max_workers: int = 5


@dataclass
class Progress:
    """Counts reported after every task (``done`` of ``total``) and file."""

    total_tasks: int = 0
    done_tasks: int = 0
    downloaded: int = 0
    skipped_existing: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskSelection:
    """A task picked for download, with its suite and its index ``n`` within the suite."""

    task_id: str
    run_id: int
    name: str
    suite: str
    index: int


def suite_of(task_name: str) -> str:
    """``"test-linux64/opt-browsertime-tp6-amazon"`` -> ``"browsertime-tp6-amazon"``."""
    last = task_name.rsplit("/", 1)[-1]
    return "-".join(last.split("-")[1:]) or last


def _atomic_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_numbers(group_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in group_dir.iterdir() if p.is_dir() and p.name.isdigit())


class TaskGroupDownloader:
    """Download a task group's artifacts as the ArtifactDownloader tool did, but safely.

    Unlike the original: statuses are checked (an error body is never saved), 424 error artifacts are
    skipped, transient failures are retried with backoff, files appear only when complete, the run
    number is reused by ``ingest_continue`` (so a resumed run fills the same folder), each task's
    ``runId`` is recorded, and concurrency is a bounded pool.

    >>> opts = DownloadOptions("Fo1npr9eTFqsAj4", test_suites_list=["all"], output=Path("out"))
    >>> TaskGroupDownloader(TaskclusterProvider()).run(opts)  # doctest: +SKIP
    """

    def __init__(self, provider: TaskclusterProvider, *, progress: Callable[[Progress], None] | None = None) -> None:
        self.provider = provider
        self.progress_callback = progress
        self._lock = threading.Lock()
        self._progress = Progress()

    # -- selection ----------------------------------------------------------------------------------

    def group_tasks(self, options: DownloadOptions, group_dir: Path) -> list[dict[str, Any]]:
        """The group listing, from ``task-group-information.json`` when an earlier run saved it."""
        cache = group_dir / GROUP_CACHE
        if cache.exists():
            try:
                return list(json.loads(cache.read_text(encoding="utf-8")))
            except ValueError:
                logger.warning("%s is unreadable; listing the task group again", cache)
        tasks = self.provider.list_task_group(options.task_group_id)
        _atomic_json(cache, tasks)
        return tasks

    def select(self, tasks: Iterable[dict[str, Any]], options: DownloadOptions) -> list[TaskSelection]:
        """Tasks matching platform and suites, without failed ones unless ``download_failures``."""
        wanted = set(options.test_suites_list)
        picked: dict[str, list[tuple[str, int, str]]] = {}
        for entry in tasks:
            status, task = entry.get("status", {}), entry.get("task", {})
            name = task.get("metadata", {}).get("name", "")
            if options.platform != "all" and options.platform not in name:
                continue
            suite = suite_of(name)
            if "all" not in wanted and suite not in wanted and not any(w in name for w in wanted):
                continue
            if status.get("state") == "failed" and not options.download_failures:
                continue
            runs = status.get("runs") or []
            if not runs:
                continue
            picked.setdefault(suite, []).append((status["taskId"], int(runs[-1]["runId"]), name))
        selections = []
        for suite, items in sorted(picked.items()):
            for index, (task_id, run_id, name) in enumerate(sorted(items)):
                selections.append(TaskSelection(task_id, run_id, name, suite, index))
        return selections

    # -- one task -----------------------------------------------------------------------------------

    def _has_error_log(self, sel: TaskSelection, artifacts: list[Any], downloads: Path) -> bool:
        """True when a non-empty ``log_error`` artifact says the task failed (the original's check)."""
        for art in artifacts:
            if "log_error" in art.name and art.extra.get("storage_type") != "error":
                dest = downloads / f"{sel.task_id}{SEPARATOR}{PurePosixPath(art.name).name}"
                if not dest.exists():
                    self.provider.download_artifact(art, dest)
                if dest.stat().st_size > 0:
                    return True
        return False

    def _task(self, sel: TaskSelection, options: DownloadOptions, run_dir: Path) -> dict[str, Any]:
        downloads = run_dir / sel.suite / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"name": sel.name, "suite": sel.suite, "run_id": sel.run_id, "files": []}
        artifacts = self.provider.list_artifacts(sel.task_id, attempt=sel.run_id)
        if not options.download_failures and self._has_error_log(sel, artifacts, downloads):
            record["skipped"] = "log_error artifact is not empty"
            return record
        for art in artifacts:
            matched = [p for p in options.artifact_to_get if p in art.name]
            if not matched:
                continue
            dest = downloads / f"{sel.task_id}{SEPARATOR}{PurePosixPath(art.name).name}"
            entry: dict[str, Any] = {"artifact": art.name, "file": str(dest.relative_to(run_dir))}
            try:
                if dest.exists():
                    self._count("skipped_existing")
                else:
                    self.provider.download_artifact(art, dest)
                    self._count("downloaded")
                if options.unzip_artifact and dest.name.endswith(ARCHIVE_SUFFIXES):
                    data_dir = run_dir / sel.suite / f"{_artifact_label(matched[0])}_data" / str(sel.index)
                    target = data_dir / dest.name.split(".", 1)[0]
                    if not target.exists():
                        safe_extract(dest, target)
                    entry["extracted"] = str(target.relative_to(run_dir))
            except ArtifactUnavailableError as exc:
                entry["error"] = str(exc)
                logger.info("skipping error artifact %s of %s", art.name, sel.task_id)
            except CIError as exc:
                entry["error"] = str(exc)
                self._count("failed", f"{sel.task_id} {art.name}: {exc}")
            record["files"].append(entry)
        return record

    def _count(self, what: str, error: str | None = None) -> None:
        with self._lock:
            setattr(self._progress, what, getattr(self._progress, what) + 1)
            if error:
                self._progress.errors.append(error)

    # -- the whole group ----------------------------------------------------------------------------

    def run_dir_for(self, options: DownloadOptions) -> Path:
        """``OUTPUT/GROUP/<n>``: a new number, or with ``ingest_continue`` the latest one (resume)."""
        group_dir = Path(options.output) / options.task_group_id
        group_dir.mkdir(parents=True, exist_ok=True)
        numbers = _run_numbers(group_dir)
        latest = numbers[-1] if numbers else 0
        number = (latest or 1) if options.ingest_continue else latest + 1
        run_dir = group_dir / str(number)
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def run(self, options: DownloadOptions) -> Path:
        """Download everything selected; returns the run folder. Failed files are listed in the map."""
        run_dir = self.run_dir_for(options)
        _atomic_json(run_dir / "config.json", {**asdict(options), "output": str(options.output)})
        selections = self.select(self.group_tasks(options, run_dir.parent), options)
        self._progress = Progress(total_tasks=len(selections))
        self._report()
        map_path = run_dir / FILE_MAP
        file_map: dict[str, Any] = {}
        if options.ingest_continue and map_path.exists():
            file_map = json.loads(map_path.read_text(encoding="utf-8"))
        with ThreadPoolExecutor(max(1, options.max_workers), thread_name_prefix="tc-download") as pool:
            futures = {sel.task_id: pool.submit(self._task, sel, options, run_dir) for sel in selections}
            for task_id, future in futures.items():
                try:
                    file_map[task_id] = future.result()
                except (CIError, OSError) as exc:  # one task failing never stops the others
                    file_map[task_id] = {"error": str(exc)}
                    self._count("failed", f"{task_id}: {exc}")
                with self._lock:
                    self._progress.done_tasks += 1
                self._report()
        _atomic_json(map_path, file_map)
        logger.info(
            "task group %s: %d files downloaded, %d already present, %d failed, in %s",
            options.task_group_id,
            self._progress.downloaded,
            self._progress.skipped_existing,
            self._progress.failed,
            run_dir,
        )
        return run_dir

    @property
    def last_progress(self) -> Progress:
        """Counts of the latest ``run``."""
        return self._progress

    def _report(self) -> None:
        if self.progress_callback is not None:
            self.progress_callback(self._progress)


def _artifact_label(pattern: str) -> str:
    return PurePosixPath(pattern).name.split(".", 1)[0] or "artifact"


def _run_folder(path: Path, task_group_id: str, run_number: int | None) -> Path:
    group_dir = Path(path) / task_group_id
    numbers = _run_numbers(group_dir) if group_dir.exists() else []
    if not numbers:
        raise CIError(f"no downloads for task group {task_group_id} under {path}; run the downloader first.")
    return group_dir / str(run_number if run_number is not None else numbers[-1])


def get_task_data_paths(
    task_group_id: str,
    path: Path,
    run_number: int | None = None,
    artifact: Sequence[str] | str | None = None,
    suite_matcher: str | None = None,
) -> dict[str, list[Path]]:
    """``{suite: [files]}`` of one run (the latest by default), from ``<artifact>_data`` folders when
    extracted, else from ``downloads``; ``artifact`` and ``suite_matcher`` filter by substring."""
    run_dir = _run_folder(path, task_group_id, run_number)
    patterns = [artifact] if isinstance(artifact, str) else list(artifact or [])
    found: dict[str, list[Path]] = {}
    for suite_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        if suite_matcher and suite_matcher not in suite_dir.name:
            continue
        data_dirs = [d for d in suite_dir.iterdir() if d.is_dir() and d.name.endswith("_data")]
        roots = data_dirs or [suite_dir / "downloads"]
        files = sorted(f for root in roots for f in root.rglob("*") if f.is_file())
        if patterns:
            files = [f for f in files if any(p in f.name for p in patterns)]
        if files:
            found[suite_dir.name] = files
    return found


def get_task_data(
    task_group_id: str,
    path: Path,
    run_number: int | None = None,
    artifact: Sequence[str] | str | None = None,
    suite_matcher: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``{suite: [{"data": <parsed JSON>, "file": path}]}`` for the JSON files of one run."""
    result: dict[str, list[dict[str, Any]]] = {}
    for suite, files in get_task_data_paths(task_group_id, path, run_number, artifact, suite_matcher).items():
        for file in files:
            if file.suffix != ".json":
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except ValueError:
                logger.warning("%s is not valid JSON; skipped", file)
                continue
            result.setdefault(suite, []).append({"data": data, "file": str(file)})
    return result
