"""What a ClearML task holds, read from its offline session files (``task.json`` in the session folder, or in
the ``.zip`` ClearML writes when the task closes) and, for the open task, through its live artifacts.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_artifacts.errors import DeliveryError

log = logging.getLogger(__name__)

SESSION_FILE = "task.json"


@dataclass(frozen=True)
class StoredFile:
    """One artifact (or offline output model) a ClearML session holds, as its ``task.json`` records it."""

    key: str
    uri: str | None
    sha256: str | None
    size: int | None
    meta: Mapping[str, str]
    session: Path | None


@dataclass
class SessionIndex:
    """What the known sessions hold: artifacts by key, model weights by digest, manifests by (name, version)."""

    files: dict[str, StoredFile] = field(default_factory=dict)
    models: dict[str, StoredFile] = field(default_factory=dict)
    manifests: dict[tuple[str, int], StoredFile] = field(default_factory=dict)

    def add(self, item: StoredFile) -> None:
        if item.key.startswith("model:"):
            self.models[item.sha256 or ""] = item
            return
        self.files[item.key] = item
        if item.meta.get("tracelet.kind") == "manifest":
            self.manifests[(item.meta["tracelet.name"], int(item.meta["tracelet.version"]))] = item


def version_key(name: str, version: int) -> str:
    """The manifest artifact's key; files of the version live under ``<key>/``."""
    return f"{name}:v{version}"


def read_session(folder: Path) -> dict[str, Any] | None:
    """The ``task.json`` of an offline session, from its folder or, once closed, its zip (None if neither)."""
    path = folder / SESSION_FILE
    try:
        if path.is_file():
            return dict(json.loads(path.read_text("utf-8")))
        archive = folder.with_name(folder.name + ".zip")
        if archive.is_file():
            with zipfile.ZipFile(archive) as zf:
                return dict(json.loads(zf.read(SESSION_FILE).decode("utf-8")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("Cannot read the ClearML offline session %s: %s", folder, exc)
    return None


def session_files(folder: Path) -> Iterator[StoredFile]:
    """Artifacts and output models recorded in an offline session's ``task.json``."""
    data = read_session(folder) or {}
    for item in (data.get("execution") or {}).get("artifacts") or []:
        meta = {str(k): str(v) for k, v in item.get("display_data") or []}
        yield StoredFile(item["key"], item.get("uri"), item.get("hash"), item.get("content_size"), meta, folder)
    for model in data.get("offline_output_models") or []:
        init, weights = model.get("init") or {}, model.get("weights") or {}
        meta = {str(k): str(v) for k, v in ((init.get("config_dict") or {}).get("tracelet") or {}).items()}
        blob = meta.get("blob") or meta.get("sha256")  # "sha256" in sessions written before BLAKE3 keys
        if blob:
            yield StoredFile(f"model:{init.get('name')}", weights.get("weights_filename"), blob,
                             None, meta, folder)


def open_stored(item: StoredFile, task: Any = None) -> Path:
    """A local path holding a stored file: in its session folder, else extracted from the session zip,
    else downloaded through the live task's artifact."""
    if item.uri and Path(item.uri).is_file():
        return Path(item.uri)
    if item.uri and item.session is not None:
        archive = item.session.with_name(item.session.name + ".zip")
        inner = Path(item.uri).relative_to(item.session).as_posix() if item.uri.startswith(str(item.session)) else ""
        if inner and archive.is_file():
            target = item.session.parent / "extracted" / item.session.name
            with zipfile.ZipFile(archive) as zf:
                return Path(zf.extract(inner, target))
    if task is not None and item.key in task.artifacts:
        local = task.artifacts[item.key].get_local_copy(extract_archive=False)
        if local:
            return Path(local)
    raise DeliveryError(f"ClearML no longer holds {item.key!r} (looked for {item.uri!r}).", retryable=False)
