"""The Taskcluster task-group downloader: Mozilla's ArtifactDownloader, with its options and its output
layout, made safe (statuses checked, atomic files, retries, resume, digests recorded).

Layout, as the ArtifactDownloader README draws it (``<artifact>`` is the ``--artifact-to-get`` pattern)::

    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/task-group-information.json   the group listing (reused by later runs)
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/taskid_to_file_map.json       task id -> its <artifact>_data/<chunk> folder
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/SUITE/downloads/TASKID_<file>
    OUTPUT/TASK_GROUP_ID/RUN_NUMBER/SUITE/<artifact>_data/<chunk>/TASKID_<file>   (archives: their contents)

plus ``config.json`` (this run's options) and ``tracelet-download.json`` (per task: its runId, every file
with size and SHA-256, errors, skips) in the run folder. Run numbers grow from 1 with each run;
``ingest_continue`` resumes the latest one. ``task_processor`` reads the layout back.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tracelet_artifacts.ci.archive import is_archive, safe_extract
from tracelet_artifacts.ci.errors import ArtifactUnavailableError, CIError
from tracelet_artifacts.ci.progress import TransferTotals
from tracelet_artifacts.ci.providers.base import CIArtifact
from tracelet_artifacts.ci.providers.taskcluster import TaskclusterProvider
from tracelet_artifacts.digest import sha256_file

logger = logging.getLogger("tracelet_artifacts.ci")

GROUP_CACHE = "task-group-information.json"
FILE_MAP = "taskid_to_file_map.json"
RECORDS = "tracelet-download.json"
SEPARATOR = "_"


@dataclass(frozen=True)
class DownloadOptions:
    """The options of the original tool, by the same names and defaults (``artifact_to_get`` is ``grcov``)."""

    task_group_id: str
    test_suites_list: Sequence[str] = ("all",)
    artifact_to_get: Sequence[str] = ("grcov",)
    unzip_artifact: bool = False
    platform: str = "all"
    download_failures: bool = False
    ingest_continue: bool = False
    output: Path = Path(".")
    max_workers: int = 5


@dataclass
class Progress:
    """Counts reported after every task (``done`` of ``total``) and, while files arrive, their bytes."""

    total_tasks: int = 0
    done_tasks: int = 0
    downloaded: int = 0
    skipped_existing: int = 0
    failed: int = 0
    bytes_downloaded: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskSelection:
    """A task picked for download, with its suite and its chunk number within the suite."""

    task_id: str
    run_id: int
    name: str
    suite: str
    index: int


def suite_of(task_name: str) -> str:
    """``"test-linux64/opt-browsertime-tp6-amazon"`` -> ``"browsertime-tp6-amazon"``."""
    last = task_name.rsplit("/", 1)[-1]
    return "-".join(last.split("-")[1:]) or last


def data_folder_name(pattern: str) -> str:
    """``<artifact>_data`` for an ``--artifact-to-get`` pattern (dots dropped, as the original does)."""
    return (PurePosixPath(pattern).name.replace(".", "") or "artifact") + "_data"


def _atomic_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_numbers(group_dir: Path) -> list[int]:
    """The run folders of a task group's output, oldest first."""
    if not group_dir.is_dir():
        return []
    return sorted(int(p.name) for p in group_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _place(source: Path, folder: Path, unpack: bool) -> Path:
    """Put a downloaded file into its ``<artifact>_data/<chunk>`` folder: an archive's contents when
    ``unpack``, else the file itself (hard-linked when the filesystem allows, copied otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    if unpack and is_archive(source):
        staged = safe_extract(source, folder.parent / f".{folder.name}.{source.name}.unpacked")
        try:
            for item in staged.iterdir():
                target = folder / item.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
                os.replace(item, target)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return folder
    target = folder / source.name
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


class TaskGroupDownloader:
    """Download a task group's artifacts as the ArtifactDownloader tool did, but safely.

    Unlike the original: statuses are checked (an error body is never saved), 424 error artifacts are
    skipped, transient failures are retried with backoff, files appear only when complete, the run
    number is reused by ``ingest_continue`` (so a resumed run fills the same folder), each task's
    ``runId`` is recorded with every file's SHA-256, and concurrency is a bounded pool.

    >>> opts = DownloadOptions("Fo1npr9eTFqsAj4", artifact_to_get=["perfherder-data"], output=Path("out"))
    >>> TaskGroupDownloader(TaskclusterProvider()).run(opts)  # doctest: +SKIP
    """

    def __init__(self, provider: TaskclusterProvider, *, progress: Callable[[Progress], None] | None = None) -> None:
        self.provider = provider
        self.progress_callback = progress
        self._lock = threading.Lock()
        self._progress = Progress()
        self._bytes = TransferTotals()
        self.head_rev = ""

    # -- selection ----------------------------------------------------------------------------------

    def group_tasks(self, options: DownloadOptions, run_dir: Path) -> list[dict[str, Any]]:
        """The group listing: this run's ``task-group-information.json``, else the latest earlier run's,
        else the queue's (saved in this run's folder)."""
        cache = run_dir / GROUP_CACHE
        earlier = [run_dir.parent / str(n) / GROUP_CACHE for n in reversed(run_numbers(run_dir.parent))]
        for candidate in [cache, *earlier]:
            if not candidate.exists():
                continue
            try:
                tasks = list(json.loads(candidate.read_text(encoding="utf-8")))
            except ValueError:
                logger.warning("%s is unreadable; not reusing it", candidate)
                continue
            if candidate != cache:
                _atomic_json(cache, tasks)
            return tasks
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
            self.head_rev = (task.get("payload") or {}).get("env", {}).get("GECKO_HEAD_REV") or self.head_rev
            picked.setdefault(suite, []).append((status["taskId"], int(runs[-1]["runId"]), name))
        selections = []
        for suite, items in sorted(picked.items()):
            for index, (task_id, run_id, name) in enumerate(sorted(items)):
                selections.append(TaskSelection(task_id, run_id, name, suite, index))
        return selections

    # -- one task -----------------------------------------------------------------------------------

    def _download(self, art: CIArtifact, dest: Path) -> dict[str, Any]:
        """``dest`` complete on disk (downloaded now, or already there); its size and SHA-256."""
        if dest.exists():
            self._count("skipped_existing")
            return {"size": dest.stat().st_size, "sha256": sha256_file(dest), "already_present": True}
        got = self.provider.download_artifact(art, dest, progress=self._bytes.file(dest, self._on_bytes))
        self._count("downloaded")
        return {"size": got.size, "sha256": got.sha256}

    def _has_error_log(self, sel: TaskSelection, artifacts: list[CIArtifact], downloads: Path) -> bool:
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
        suite_dir = run_dir / sel.suite
        downloads = suite_dir / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"name": sel.name, "suite": sel.suite, "run_id": sel.run_id, "chunk": sel.index,
                                  "files": []}
        artifacts = self.provider.list_artifacts(sel.task_id, attempt=sel.run_id)
        if not options.download_failures and self._has_error_log(sel, artifacts, downloads):
            record["skipped"] = "log_error artifact is not empty"
            return record
        for art in artifacts:
            pattern = next((p for p in options.artifact_to_get if p in art.name), None)
            if pattern is None:
                continue
            dest = downloads / f"{sel.task_id}{SEPARATOR}{PurePosixPath(art.name).name}"
            entry: dict[str, Any] = {"artifact": art.name, "file": str(dest.relative_to(run_dir))}
            try:
                entry.update(self._download(art, dest))
                unpack = options.unzip_artifact or "grcov" in pattern
                chunk = suite_dir / data_folder_name(pattern) / str(sel.index)
                entry["data"] = str(_place(dest, chunk, unpack).relative_to(run_dir))
                record.setdefault("data_dir", str(chunk))
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

    def _on_bytes(self, totals: TransferTotals) -> None:
        self._progress.bytes_downloaded = totals.done
        self._report()

    # -- the whole group ----------------------------------------------------------------------------

    def run_dir_for(self, options: DownloadOptions) -> Path:
        """``OUTPUT/GROUP/<n>``: the next number (1 for the first run), or with ``ingest_continue`` the latest."""
        group_dir = Path(options.output) / options.task_group_id
        group_dir.mkdir(parents=True, exist_ok=True)
        numbers = run_numbers(group_dir)
        latest = numbers[-1] if numbers else 0
        number = (latest or 1) if options.ingest_continue else latest + 1
        run_dir = group_dir / str(number)
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def run(self, options: DownloadOptions) -> Path:
        """Download everything selected; returns the run folder. Failed files are listed in its records."""
        run_dir = self.run_dir_for(options)
        _atomic_json(run_dir / "config.json", {**asdict(options), "output": str(options.output)})
        selections = self.select(self.group_tasks(options, run_dir), options)
        self._progress, self._bytes = Progress(total_tasks=len(selections)), TransferTotals()
        self._report()
        records_path = run_dir / RECORDS
        records: dict[str, Any] = {}
        if options.ingest_continue and records_path.exists():
            records = json.loads(records_path.read_text(encoding="utf-8"))
        with ThreadPoolExecutor(max(1, options.max_workers), thread_name_prefix="tc-download") as pool:
            futures = {sel.task_id: pool.submit(self._task, sel, options, run_dir) for sel in selections}
            for task_id, future in futures.items():
                try:
                    records[task_id] = future.result()
                except (CIError, OSError) as exc:  # one task failing never stops the others
                    records[task_id] = {"error": str(exc)}
                    self._count("failed", f"{task_id}: {exc}")
                with self._lock:
                    self._progress.done_tasks += 1
                self._report()
        _atomic_json(records_path, records)
        _atomic_json(run_dir / FILE_MAP, {t: r["data_dir"] for t, r in records.items() if "data_dir" in r})
        logger.info(
            "task group %s: %d files downloaded, %d already present, %d failed, in %s",
            options.task_group_id, self._progress.downloaded, self._progress.skipped_existing,
            self._progress.failed, run_dir,
        )  # fmt: skip
        return run_dir

    @property
    def last_progress(self) -> Progress:
        """Counts of the latest ``run``."""
        return self._progress

    def _report(self) -> None:
        if self.progress_callback is not None:
            self.progress_callback(self._progress)


def artifact_downloader(
    task_group_id: str,
    output_dir: str | Path = ".",
    test_suites: Sequence[str] = ("all",),
    download_failures: bool = False,
    artifact_to_get: str | Sequence[str] = "grcov",
    unzip_artifact: bool = True,
    platform: str = "all",
    ingest_continue: bool = False,
    *,
    provider: TaskclusterProvider | None = None,
) -> tuple[str, str]:
    """The original tool's function: download, return ``(run folder, GECKO_HEAD_REV of the tasks)``."""
    options = DownloadOptions(
        task_group_id,
        test_suites_list=list(test_suites) or ["all"],
        artifact_to_get=[artifact_to_get] if isinstance(artifact_to_get, str) else list(artifact_to_get),
        unzip_artifact=unzip_artifact,
        platform=platform,
        download_failures=download_failures,
        ingest_continue=ingest_continue,
        output=Path(output_dir),
    )
    queue = provider or TaskclusterProvider()
    try:
        downloader = TaskGroupDownloader(queue)
        run_dir = downloader.run(options)
    finally:
        if provider is None:
            queue.close()
    return str(run_dir), downloader.head_rev
