"""Read a downloaded task group back (the layout ``taskcluster_download`` writes): the files of each suite,
or their contents, by the ArtifactDownloader's ``task_processor`` names and call shapes.

    from tracelet_artifacts.ci import task_processor as tp
    data = tp.get_task_data("SssyewAFQiKm40PIouxo_g", "data", artifact="perfherder-data", run_number="4")
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.errors import CIError
from tracelet_artifacts.ci.taskcluster_download import run_numbers
from tracelet_artifacts.detect import is_text, read_head

logger = logging.getLogger("tracelet_artifacts.ci")

__all__ = ["get_task_data", "get_task_data_paths"]


def _natural(path: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def _run_folder(task_group_id: str, path: str | Path, run_number: int | str | None) -> Path:
    group_dir = Path(path) / task_group_id
    numbers = run_numbers(group_dir)
    if not numbers:
        raise CIError(f"no downloads for task group {task_group_id} under {path}; run the downloader first.")
    if run_number is None:
        return group_dir / str(numbers[-1])
    if str(run_number).isdigit() and int(run_number) in numbers:
        return group_dir / str(int(run_number))
    raise CIError(f"task group {task_group_id} has no run {run_number!r} under {path}; runs: {numbers}.")


def _patterns(artifact: Sequence[str] | str | None) -> list[str]:
    return [artifact] if isinstance(artifact, str) else [a for a in (artifact or []) if a]


def get_task_data_paths(
    task_group_id: str,
    path: str | Path,
    run_number: int | str | None = None,
    artifact: Sequence[str] | str | None = None,
    artifact_dir: str = "",
    suite_matcher: str = "",
    silent: bool = False,
) -> dict[str, list[str]]:
    """``{suite: [file paths]}`` of one run (the latest by default), in natural order.

    Files come from each suite's ``<artifact>_data`` folders (``artifact_dir`` names one), else from its
    ``downloads``; ``artifact`` patterns (substrings) and ``suite_matcher`` filter them. ``silent`` is
    accepted for the original's sake (this module only logs).
    """
    run_dir = _run_folder(task_group_id, path, run_number)
    patterns = _patterns(artifact)
    found: dict[str, list[str]] = {}
    for suite_dir in sorted(p for p in run_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if suite_matcher and suite_matcher not in suite_dir.name:
            continue
        data_dirs = [d for d in suite_dir.iterdir() if d.is_dir() and d.name.endswith("_data")
                     and (not artifact_dir or d.name == artifact_dir)]
        roots = data_dirs or [suite_dir / "downloads"]
        files = [f for root in roots if root.is_dir() for f in root.rglob("*")
                 if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)]
        if patterns:
            files = [f for f in files if any(p in f.name for p in patterns)]
        if files:
            found[suite_dir.name] = sorted((str(f) for f in files), key=_natural)
    if not found and not silent:
        logger.info("no files under %s match artifact=%s suite_matcher=%r", run_dir, patterns, suite_matcher)
    return found


def get_task_data(
    task_group_id: str,
    path: str | Path,
    run_number: int | str | None = None,
    artifact: Sequence[str] | str | None = None,
    suite_matcher: str = "",
    silent: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """``{suite: [{"data": …, "file": path}]}``: JSON files parsed, other text files as their lines;
    binary files and JSON that does not parse are skipped with a warning."""
    result: dict[str, list[dict[str, Any]]] = {}
    for suite, files in get_task_data_paths(task_group_id, path, run_number, artifact,
                                            suite_matcher=suite_matcher, silent=silent).items():
        for file in files:
            data = _read(Path(file))
            if data is not None:
                result.setdefault(suite, []).append({"data": data, "file": file})
    return result


def _read(file: Path) -> Any:
    try:
        if file.suffix.lower() == ".json":
            return json.loads(file.read_text(encoding="utf-8"))
        if is_text(file.name, read_head(file)):
            return file.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except ValueError:
        logger.warning("%s is not valid JSON; skipped", file)
        return None
    logger.warning("%s is a binary file; skipped", file)
    return None
