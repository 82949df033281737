"""The ``wandb`` adapter: each version becomes a ``wandb.Artifact`` logged on a W&B run the adapter owns
(or is given); media types are also logged as ``wandb.Image``/``Audio``/``Video``/``Html`` panels.

Offline (the default) the SDK cannot read artifacts back, and wandb 0.31 ships no Python reader of its run
files (the old ``wandb.sdk.internal.datastore`` moved into the Go core), so ``list``/``fetch`` parse them here
(``<dir>/wandb/*-run-*/run-<id>.wandb``): LevelDB-log framed ``wandb_internal_pb2.Record`` messages whose
``artifact`` records hold name, type, aliases, digest, metadata and manifest entries (``local_path`` is
the staged copy under ``$WANDB_DATA_DIR/artifacts/staging``). A run file is written out when its run
finishes, so versions logged by this process are also kept in memory. Offline, W&B assigns version
numbers at ``wandb sync``; the receipt's ``vN`` is derived the same way W&B does it: N is the index of
the artifact's W&B digest among the distinct digests logged under that name in this project, in order,
across the run files under ``dir`` (it matches the server when the project has no earlier versions).

Options (``options`` dict):

- ``project``: W&B project (default: the experiment name, made W&B-safe).
- ``entity``: W&B entity (team or user; default: none, the account's default when online).
- ``mode``: ``"offline"`` (default), ``"online"`` or ``"disabled"``.
- ``dir``: folder under which W&B writes ``wandb/`` (default: the embedded store's root).
- ``run``: an existing ``wandb.Run`` to log into (the adapter then never finishes it).
- ``settings``: extra ``wandb.Settings`` fields, e.g. ``{"init_timeout": 30, "x_disable_stats": True}``.
- ``media``: log media types as W&B media too (default ``True``).
- ``timeout``: seconds one ``log`` may take before it fails with a retryable error (default 600).
- ``wait_timeout``: seconds to wait for an online artifact commit / a run to finish (default 120).
- ``flush_interval``: offline, seconds between W&B's writes of its run file (W&B's
  ``x_transaction_log_flush_interval``; default 0.2 here, W&B's own is 15). An offline delivery is
  confirmed only once its record is in the run file on disk, so a process killed afterwards loses nothing
  the outbox calls done; a longer interval makes each offline delivery wait longer.

W&B reads its own folders from the environment: set ``WANDB_DATA_DIR`` (staged artifact copies),
``WANDB_CACHE_DIR`` and ``WANDB_CONFIG_DIR`` to keep everything out of the home folder.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import shutil
import string
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from tracelet_artifacts.artifact import MEDIA_TYPES, ArtifactType, thaw_json, validate_artifact_path
from tracelet_artifacts.backends.base import (
    BackendAdapter,
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
)
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, BackendError, DeliveryError

log = logging.getLogger(__name__)
T = TypeVar("T")

META_KEY = "tracelet"
RETRY_START_S = 30.0
_NAME_MAX = 128
_TAG = re.compile(r"^[-\w]+( +[-\w]+)*$")
_BLOCK = 32 * 1024
_HEADER = 7  # ":W&B" + 2-byte magic + 1-byte version
_FULL, _FIRST, _LAST = 1, 2, 4  # 3 is a middle chunk
_TRANSIENT_TEXT = re.compile(r"timed out|timeout|retry|retrying|refused|reset by peer|\b(5\d\d|429)\b", re.I)
_TRANSIENT = {"Timeout", "TimeoutError", "ConnectionError", "ConnectError", "HTTPError", "ServiceUnavailable"}
_PERMANENT = {"UsageError", "AuthenticationError", "ValueError", "TypeError", "PermissionError", "FileNotFoundError"}


def wandb_name(name: str) -> str:
    """The W&B artifact name for one of ours: ``/`` becomes ``__``; over 128 characters, a hash suffix."""
    safe = name.replace("/", "__")
    if len(safe) > _NAME_MAX:
        safe = f"{safe[:_NAME_MAX - 13]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return safe


def project_name(text: str) -> str:
    """A W&B-safe project name (no ``/ \\ # ? % :``, at most 128 characters)."""
    return re.sub(r"[/\\#?%:\s]+", "-", text).strip("-")[:_NAME_MAX] or "tracelet"


# -- the offline run files ----------------------------------------------------------------------------
def read_run_file(path: Path) -> Iterator[bytes]:
    """Yield each serialised ``Record`` of a ``run-<id>.wandb`` file.

    The file is a 7-byte header (``:W&B``, magic, version) then the LevelDB log format: 32 KiB blocks of
    chunks, each with a 7-byte header (little-endian zlib CRC32 of type byte + data, length, type: 1 full,
    2 first, 3 middle, 4 last). Reading stops at a truncated or corrupt tail (a run killed mid-write).
    """
    data = path.read_bytes()
    if data[:4] != b":W&B":
        return
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # block trailer too small for a chunk header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero fill: nothing more in this block
            pos += _BLOCK - pos % _BLOCK
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) != crc:
            return
        pos += 7 + length
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            yield pending


@dataclass(frozen=True)
class WandbEntry:
    """One manifest entry of a logged W&B artifact."""

    path: str
    digest: str
    ref: str = ""
    size: int = 0
    local_path: str = ""


@dataclass(frozen=True)
class WandbRecord:
    """One ``artifact`` record: a W&B artifact as a run logged it."""

    run_id: str
    project: str
    entity: str
    name: str
    type: str
    digest: str
    aliases: tuple[str, ...]
    metadata: Mapping[str, Any]
    entries: tuple[WandbEntry, ...]
    description: str = ""

    @property
    def tracelet(self) -> Mapping[str, Any]:
        value = self.metadata.get(META_KEY)
        return value if isinstance(value, Mapping) else {}


def artifact_records(run_file: Path) -> list[WandbRecord]:
    """The ``artifact`` records of one run file, in the order they were logged."""
    import json

    from wandb.proto import wandb_internal_pb2 as pb

    found: list[WandbRecord] = []
    for raw in read_run_file(run_file):
        record = pb.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(raw)
        except Exception:  # a damaged record: the rest of the file is not trustworthy either
            log.warning("Stopped reading %s at a record that does not parse.", run_file)
            break
        if record.WhichOneof("record_type") != "artifact":
            continue
        art = record.artifact
        entries = tuple(WandbEntry(c.path, c.digest, c.ref, c.size, c.local_path) for c in art.manifest.contents)
        metadata = json.loads(art.metadata) if art.metadata else {}
        found.append(WandbRecord(art.run_id, art.project, art.entity, art.name, art.type, art.digest,
                                 tuple(art.aliases), metadata, entries, art.description))
    return found


@dataclass
class _Versions:
    """Every version of one W&B artifact name: distinct digests in order, their records and aliases."""

    digests: list[str] = field(default_factory=list)
    records: dict[str, WandbRecord] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> digest (aliases move, like W&B's)

    def add(self, record: WandbRecord) -> None:
        if record.digest not in self.records:
            self.digests.append(record.digest)
        self.records[record.digest] = record
        for alias in record.aliases:
            self.aliases[alias] = record.digest

    def label(self, digest: str) -> str:
        return f"v{self.digests.index(digest)}"

    def aliases_of(self, digest: str) -> tuple[str, ...]:
        return tuple(sorted(a for a, d in self.aliases.items() if d == digest))

    def find(self, version: str) -> WandbRecord | None:
        """``vN`` is W&B's version; bare ``N`` is ours (alias ``tracelet-vN``); else an alias or a digest."""
        text = str(version)
        if text.isdigit():
            text = f"tracelet-v{text}"
        if text in self.aliases:
            return self.records[self.aliases[text]]
        if text[:1] in "vV" and text[1:].isdigit() and int(text[1:]) < len(self.digests):
            return self.records[self.digests[int(text[1:])]]
        return next((r for r in self.records.values() if text in (r.digest, r.tracelet.get("digest"))), None)


def _classify(exc: BaseException, doing: str) -> DeliveryError:
    """Transient trouble (timeouts, refused connections, 5xx, 429) is retryable; the rest is permanent.

    W&B's core retries transient HTTP failures itself until its timeout, so a ``CommError`` that does not
    say it timed out or retried is an answer such as 401/403/404: permanent.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(getattr(exc, "response", None), "status_code", None)
    message = f"W&B failed while {doing}: {type(exc).__name__}: {exc}"
    if isinstance(status, int):
        return DeliveryError(message, retryable=status >= 500 or status in (408, 429))
    if "CommError" in names and "AuthenticationError" not in names:
        return DeliveryError(message, retryable=bool(_TRANSIENT_TEXT.search(str(exc))))
    if names & _TRANSIENT or isinstance(exc, (TimeoutError, ConnectionError)):
        return DeliveryError(message, retryable=True)
    if names & _PERMANENT:
        return DeliveryError(message, retryable=False)
    return DeliveryError(message, retryable=True)


def _new_run_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _wait_for_exit_record(run_file: Path, timeout: float) -> None:
    """Wait until a finished run's file holds its ``exit`` record (everything before it is then written)."""
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_file.is_file():
            for raw in list(read_run_file(run_file))[-3:]:
                record = pb.Record()  # type: ignore[attr-defined]
                record.ParseFromString(raw)
                if record.WhichOneof("record_type") == "exit":
                    return
        time.sleep(0.05)
    log.warning("W&B run file %s has no exit record after %.0f s.", run_file, timeout)


def _md5_b64(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _reference_name(uri: str) -> str:
    """Where an external reference sits inside the W&B artifact: ``references/<scheme>/<host>/<path>``."""
    parsed = urlparse(uri)
    inner = "/".join(p for p in f"{parsed.netloc}/{parsed.path}".split("/") if p not in ("", ".", ".."))
    return f"references/{parsed.scheme}/{inner or 'root'}"


def _file_path(uri: str) -> Path | None:
    """The local path of a ``file://`` URI (None for any other scheme)."""
    parsed = urlparse(uri)
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None


def _media_class(mime: str, suffix: str, kind: ArtifactType) -> str | None:
    """The W&B media class that shows a file in a panel (None: the file is only in the artifact)."""
    if suffix in (".mp4", ".webm", ".ogg", ".gif") and (kind is ArtifactType.VIDEO or mime.startswith("video/")):
        return "Video"
    if mime.startswith(("image/", "audio/")) and mime != "image/svg+xml":
        return "Image" if mime.startswith("image/") else "Audio"
    return "Html" if mime == "text/html" else None


class WandbAdapter(BackendAdapter):
    """Logs versions as W&B artifacts on one run; lists and fetches them from the run files (offline).

    Example::

        adapter = WandbAdapter({"project": "demo"})           # offline by default
        state = adapter.start_run(RunContext("run-1", "demo", Path(".tracelet")))
        receipt = adapter.log(delivery)                        # receipt.remote_version == "v0"
        adapter.fetch("classifier", "latest", Path("out/"))
    """

    name = "wandb"
    capabilities = Capabilities(model_registry=False, media=True, references=True, aliases=True, versioning=True)

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._run: Any = self.options.get("run")
        self._owns_run = self._run is None
        self._init_kwargs: dict[str, Any] | None = None
        self._context: RunContext | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._logged: list[WandbRecord] = []
        # Offline versions handed to W&B whose record is not in the run file yet: (name, digest) -> (record, not_held)
        self._unwritten: dict[tuple[str, Any], tuple[WandbRecord, dict[str, str]]] = {}
        self._parsed: dict[Path, tuple[tuple[int, int], list[WandbRecord]]] = {}
        self._failed_at = float("-inf")

    # -- configuration ----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return str(self.options.get("mode", "offline"))

    @property
    def project(self) -> str:
        if self._run is not None and getattr(self._run, "project", None):
            return str(self._run.project)
        if self.options.get("project"):
            return project_name(str(self.options["project"]))
        if self._context is not None:
            return project_name(str(self._context.state.get("project") or self._context.experiment))
        raise BackendError("The wandb adapter has no project: call start_run() or pass options={'project': …}.")

    @property
    def wandb_dir(self) -> Path:
        """The folder holding the run folders (``<dir>/wandb``)."""
        if self._run is not None and getattr(self._run, "dir", None):
            return Path(self._run.dir).parent.parent  # <dir>/wandb/<run folder>/files
        base = self.options.get("dir") or (self._context.state.get("dir") if self._context else None)
        if not base and self._context is not None:
            base = self._context.store_root
        if not base:
            raise BackendError("The wandb adapter has no folder: call start_run() or pass options={'dir': …}.")
        return Path(base) / "wandb"

    # -- the worker thread: every SDK call runs there, in order ------------------------------------
    def _submit(self, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="tracelet-wandb")
            return self._worker.submit(fn)

    def _background(self, fn: Callable[[], Any], what: str) -> None:
        def call() -> None:
            try:
                fn()
            except Exception as exc:  # never breaks the training loop; said in the log instead
                log.warning("W&B could not %s: %s", what, exc)

        self._submit(call)

    # -- run lifecycle ----------------------------------------------------------------------------
    def start_run(self, run: RunContext) -> dict[str, Any]:
        """Start (or, from ``run.state["run_id"]``, resume) the W&B run on the worker; returns at once."""
        self._context = run
        if self._run is not None:
            return {"run_id": str(self._run.id), "project": self.project}
        run_id = str(run.state.get("run_id") or _new_run_id())
        base = self.options.get("dir") or run.state.get("dir") or run.store_root
        Path(base).mkdir(parents=True, exist_ok=True)
        self._init_kwargs = {"project": self.project, "entity": self.options.get("entity"), "id": run_id,
                             "dir": str(base), "mode": self.mode, "name": run.run_id,
                             "resume": "allow" if run.state.get("run_id") else None, "reinit": "create_new",
                             "settings": self._wandb_settings()}
        self._background(self._ensure_run, "start the run")
        return {"run_id": run_id, "project": self.project, "dir": str(base)}

    def _wandb_settings(self) -> dict[str, Any]:
        settings = dict(self.options.get("settings") or {})
        if self.mode == "offline":  # W&B writes its run file every 15 s by default: records wait in memory till then
            settings.setdefault("x_transaction_log_flush_interval", float(self.options.get("flush_interval", 0.2)))
        return settings

    def _ensure_run(self, *, retry: bool = True) -> Any:
        """The run (worker thread only). A failed start is tried again by deliveries (``retry``); params
        and metrics are dropped, with a warning, for ``RETRY_START_S`` after a failure instead of each
        waiting out another ``init_timeout``."""
        if self._run is not None:
            return self._run
        if self._init_kwargs is None:
            raise DeliveryError("The wandb adapter has no run: call start_run() first.", retryable=False)
        if not retry and time.monotonic() - self._failed_at < RETRY_START_S:
            raise DeliveryError("the W&B run failed to start a moment ago", retryable=True)
        import wandb

        kwargs = dict(self._init_kwargs)
        settings = wandb.Settings(**kwargs.pop("settings"))
        try:
            self._run = wandb.init(settings=settings, **kwargs)
        except Exception as exc:
            # wandb-core keeps a failed run's id busy for the rest of the process: retry under a new id
            self._init_kwargs["id"] = _new_run_id()
            self._failed_at = time.monotonic()
            raise _classify(exc, "starting the run") from exc
        return self._run

    def end_run(self) -> None:
        """Finish the run if the adapter started it, waiting up to ``wait_timeout`` seconds until its
        run file is written out (W&B's ``finish()`` can return a moment before that)."""
        timeout = float(self.options.get("wait_timeout", 120))

        def finish() -> None:
            if self._run is not None and self._owns_run:
                run_file = Path(self._run.dir).parent / f"run-{self._run.id}.wandb"
                self._run.finish()
                self._run = None
                _wait_for_exit_record(run_file, timeout)

        with self._lock:
            worker = self._worker
        if worker is None:
            return
        try:
            self._submit(finish).result(timeout=timeout)
        except Exception as exc:
            log.warning("W&B run did not finish cleanly: %s", exc)
        finally:
            with self._lock:
                self._worker = None
            worker.shutdown(wait=False)

    def log_params(self, params: Mapping[str, Any]) -> None:
        values = dict(params)
        self._background(lambda: self._ensure_run(retry=False).config.update(values, allow_val_change=True),
                         "log params")

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        def send() -> None:
            run = self._ensure_run(retry=False)
            if step is None:
                run.log({name: value})
            else:
                run.log({name: value}, step=step)

        self._background(send, f"log metric {name!r}")

    # -- log --------------------------------------------------------------------------------------
    def log(self, delivery: Delivery) -> Receipt:
        """Log one version (on the worker thread); a version W&B already holds is not logged again."""
        future = self._submit(lambda: self._log(delivery))
        timeout = float(self.options.get("timeout", 600))
        try:
            return future.result(timeout=timeout)
        except DeliveryError:
            raise
        except FutureTimeout:
            raise DeliveryError(f"W&B did not log {delivery.manifest.name} within {timeout:.0f} s (hung or slow); "
                                "it stays in the outbox", retryable=True) from None
        except Exception as exc:
            raise _classify(exc, f"logging {delivery.manifest.name}") from exc

    def _log(self, delivery: Delivery) -> Receipt:
        import wandb

        run = self._ensure_run()
        manifest = delivery.manifest
        name = wandb_name(manifest.name)
        versions = self._versions().get(name, _Versions())
        for record in versions.records.values():
            if record.tracelet.get("digest") == manifest.digest:
                return self._receipt(delivery, record, versions.label(record.digest), {})
        unwritten = self._unwritten.get((name, manifest.digest))
        if unwritten is not None:  # logged by an earlier attempt that timed out waiting for the run file
            return self._confirmed(run, delivery, *unwritten, versions)
        art = wandb.Artifact(name, type=manifest.artifact_type.value, description=manifest.description,
                             metadata=self._metadata(delivery))
        for entry in delivery.uploads():  # W&B copies each into its staging folder right here
            art.add_file(str(delivery.blob_path(entry)), name=entry.path)
        not_held: dict[str, str] = {}
        for ref in delivery.references():
            local = _file_path(ref.uri)
            try:
                art.add_reference(ref.uri, name=ref.path if ref.path != ref.uri else _reference_name(ref.uri),
                                  checksum=bool(local and local.exists()))
            except Exception as exc:
                not_held[ref.path] = f"W&B cannot record this reference ({exc}); kept in metadata['tracelet']"
        aliases = self._aliases(delivery)
        not_held.update({f"alias:{a}": "W&B aliases cannot hold '/' or ':'" for a in aliases if set(a) & set("/:")})
        tags = [label for label in manifest.labels if _TAG.match(label)]
        not_held.update({f"label:{label}": "not a valid W&B tag; kept in metadata['tracelet']['labels']"
                         for label in manifest.labels if label not in tags})
        logged = run.log_artifact(art, aliases=[a for a in aliases if not set(a) & set("/:")], tags=tags)
        if self.options.get("media", True) and manifest.artifact_type in MEDIA_TYPES:
            not_held.update(self._log_media(run, delivery))
        record = WandbRecord(str(run.id), self.project, str(getattr(run, "entity", "") or ""), name, art.type,
                             art.digest, tuple(aliases), art.metadata,
                             tuple(WandbEntry(e.path, str(e.digest), str(e.ref or ""), int(e.size or 0),
                                              str(e.local_path or "")) for e in art.manifest.entries.values()),
                             manifest.description or "")
        if self.mode == "online":
            logged.wait(timeout=float(self.options.get("wait_timeout", 120)))
            with self._lock:
                self._logged.append(record)
            return self._receipt(delivery, record, str(logged.version), not_held)
        self._unwritten[(name, manifest.digest)] = (record, not_held)
        return self._confirmed(run, delivery, record, not_held, versions)

    def _confirmed(self, run: Any, delivery: Delivery, record: WandbRecord, not_held: dict[str, str],
                   versions: _Versions) -> Receipt:
        """The receipt of an offline version once W&B has written its record to the run file (before that
        it is only in wandb-core's memory, and a killed process would lose it)."""
        self._wait_for_record(Path(run.dir).parent / f"run-{run.id}.wandb", record)
        del self._unwritten[(record.name, record.tracelet.get("digest"))]
        with self._lock:
            self._logged.append(record)
        versions.add(record)
        return self._receipt(delivery, record, versions.label(record.digest), not_held)

    def _receipt(self, delivery: Delivery, record: WandbRecord, label: str, not_held: dict[str, str]) -> Receipt:
        prefix = f"{record.entity}/" if record.entity else ""
        return delivery.receipt(self.name, remote_id=record.digest, remote_version=label,
                                uri=f"{prefix}{record.project}/{record.name}:{label}",
                                not_held={**delivery.plan.not_held, **not_held})

    def _metadata(self, delivery: Delivery) -> dict[str, Any]:
        manifest = delivery.manifest
        ours = {"name": manifest.name, "version": delivery.version, "digest": manifest.digest,
                "type": manifest.artifact_type.value, "labels": list(manifest.labels),
                "entries": {e.path: e.sha256 for e in manifest.entries},
                "descriptions": {e.path: e.description for e in manifest.entries if e.description},
                "references": [r.to_dict() for r in manifest.references],
                "model": manifest.model.to_dict() if manifest.model else None}
        return {**thaw_json(manifest.metadata), META_KEY: ours}

    def _aliases(self, delivery: Delivery) -> list[str]:
        """``latest``, ``tracelet-v<N>`` and the store's aliases of this version."""
        return list(dict.fromkeys(["latest", f"tracelet-v{delivery.version}", *delivery.aliases]))

    def _log_media(self, run: Any, delivery: Delivery) -> dict[str, str]:
        """Media entries as W&B media in the current step (copied under their own names, which W&B needs)."""
        import wandb

        manifest, panels, skipped = delivery.manifest, dict[str, Any](), dict[str, str]()
        with tempfile.TemporaryDirectory(prefix=".tracelet-media-", dir=self.wandb_dir.parent) as tmp:
            for entry in delivery.uploads():
                path = Path(tmp) / entry.path
                kind = _media_class(entry.mime, path.suffix.lower(), manifest.artifact_type)
                if kind is None:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(delivery.blob_path(entry), path)
                try:
                    options: dict[str, dict[str, Any]] = {"Video": {"format": path.suffix[1:].lower()},
                                                          "Html": {"inject": False}}  # the page as is
                    extra = options.get(kind, {})
                    panels[f"{manifest.name}/{entry.path}"] = getattr(wandb, kind)(str(path), **extra)
                except Exception as exc:
                    skipped[f"media:{entry.path}"] = f"not shown as W&B {kind} ({exc}); still in the artifact"
            if panels:
                run.log(panels, commit=False)  # joins the current step: never moves the user's metric steps
        return skipped

    # -- reading back -----------------------------------------------------------------------------
    def records(self) -> list[WandbRecord]:
        """Every artifact record of this project: the run files under ``dir`` (oldest run first), then
        what this process logged that its run file does not hold yet. The file of the run the adapter is
        still writing is skipped (it grows with every metric; what the adapter logged there is in memory)."""
        folder, run = self.wandb_dir, self._run
        active = Path(run.dir).parent if run is not None and self._owns_run else None
        found: list[WandbRecord] = []
        runs = [p for p in folder.glob("*run-*") if p.is_dir() and not p.is_symlink()] if folder.is_dir() else []
        for run_dir in sorted(runs, key=lambda p: p.name.split("run-", 1)[1]):
            for run_file in run_dir.glob("run-*.wandb") if run_dir != active else ():
                found += self._parse(run_file)
        seen = {(r.run_id, r.name, r.digest) for r in found}
        with self._lock:
            found += [r for r in self._logged if (r.run_id, r.name, r.digest) not in seen]
        return [r for r in found if r.project == self.project]

    def _wait_for_record(self, run_file: Path, record: WandbRecord) -> None:
        """Wait until ``record`` (same name and W&B digest) is written in ``run_file``; a retryable
        DeliveryError after ``wait_timeout`` seconds (the delivery stays in the outbox and waits again)."""
        timeout = float(self.options.get("wait_timeout", 120))
        deadline = time.monotonic() + timeout
        while not (run_file.is_file() and any(r.name == record.name and r.digest == record.digest
                                               for r in self._parse(run_file))):
            if time.monotonic() >= deadline:
                raise DeliveryError(f"W&B has not written {record.name} to {run_file} within {timeout:.0f} s; "
                                    "the delivery stays in the outbox and is confirmed once it is there.",
                                    retryable=True)
            time.sleep(0.02)

    def _parse(self, run_file: Path) -> list[WandbRecord]:
        info = run_file.stat()
        key = (info.st_size, info.st_mtime_ns)
        cached = self._parsed.get(run_file)
        if cached is None or cached[0] != key:
            cached = (key, artifact_records(run_file))
            self._parsed[run_file] = cached
        return cached[1]

    def _versions(self) -> dict[str, _Versions]:
        grouped: dict[str, _Versions] = {}
        for record in self.records():
            grouped.setdefault(record.name, _Versions()).add(record)
        return grouped

    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        """Every version in the project's run files, newest first per name (``type_filter`` by W&B type)."""
        out: list[RemoteArtifact] = []
        for versions in self._versions().values():
            for digest in reversed(versions.digests):
                record = versions.records[digest]
                try:
                    kind: ArtifactType | None = ArtifactType.parse(record.type)
                except Exception:
                    kind = None
                if type_filter is not None and kind != ArtifactType.parse(type_filter):
                    continue
                label = versions.label(digest)
                prefix = f"{record.entity}/" if record.entity else ""
                out.append(RemoteArtifact(self.name, str(record.tracelet.get("name", record.name)), label, kind,
                                          record.tracelet.get("digest"), f"{prefix}{record.project}/{record.name}:"
                                          f"{label}", versions.aliases_of(digest)))
        return out

    def find(self, name: str, version: str) -> WandbRecord:
        """The record of ``name`` at ``version``: W&B's ``vN``, our version number ``N``, an alias such as
        ``latest``, or a digest."""
        versions = self._versions().get(wandb_name(name))
        record = versions.find(str(version)) if versions else None
        if record is None:
            raise ArtifactStoreNotFoundError(
                f"W&B project {self.project!r} holds no {name}:{version} in the run files under {self.wandb_dir}.")
        return record

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        """Copy a version's files (staged copies and file:// references) under ``dest``, checking each
        W&B digest; references to remote URIs are not downloaded (listed in the log)."""
        record = self.find(name, version)
        target = Path(dest)
        for entry in record.entries:
            source = self._entry_source(entry)
            if source is None:
                log.info("Not fetching %s of %s: it refers to %s.", entry.path, name, entry.ref)
                continue
            path = target / validate_artifact_path(entry.path)  # never outside dest
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
            if entry.digest != entry.ref and _md5_b64(path) != entry.digest:
                raise BackendError(f"{name}:{version} entry {entry.path} does not match its W&B digest.")
        return target

    @staticmethod
    def _entry_source(entry: WandbEntry) -> Path | None:
        if entry.local_path and Path(entry.local_path).is_file():
            return Path(entry.local_path)
        if not entry.ref:
            raise BackendError(f"W&B entry {entry.path} has no staged copy at {entry.local_path!r} "
                               "(staged copies are removed once a run is synced).")
        source = _file_path(entry.ref)
        if source is not None and not source.is_file():
            raise BackendError(f"W&B entry {entry.path} refers to {entry.ref}, which no longer exists.")
        return source

