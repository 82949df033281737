"""The ``aim`` adapter: artifact versions as files of an Aim run, their manifest as run params.

The run is the one handed in (option ``run``, never closed here), else one the adapter opens, named after the
experiment, in the repo Aim would use (``aim_target``): the one named, else the nearest ``.aim`` from the
working folder upwards, else the embedded default under the store folder.

Every entry is stored with ``run.log_artifact`` under ``<artifact>/v<N>/<path>``; images, audio and small
text files are also tracked as Aim ``Image`` / ``Audio`` / ``Text`` sequences (named after the artifact,
context ``{"path": …}``, step = version) so they show in Aim's explorers. Description, metadata, labels,
references, the model's framework and the digest go to ``run["tracelet_artifacts"][name]["v<N>"]``.
Read back through ``aim.Repo``. Every SDK call runs on one worker thread with a timeout, so a stopped
``aim server`` gives a retryable DeliveryError instead of a hang.

Options (``options`` dict):

- ``repo``: Aim repo folder or ``aim://HOST:PORT`` URL (default: the nearest ``.aim`` upwards from the working
  folder, else ``<store_root>/aim``; a folder is initialised when missing).
- ``artifacts_uri``: where Aim copies the files, ``file://…`` or ``s3://…`` (default ``<repo>/aim_artifacts``,
  or ``<store_root>/aim_artifacts`` for the embedded repo and ``aim://``). With ``aim://`` the copy is still
  made by this process.
- ``experiment``: Aim experiment name (default: the experiment's name).
- ``run``: an ``aim.Run`` to log into instead of creating one (it is not closed by ``end_run``).
- ``timeout``: seconds one SDK call may take before the delivery fails as retryable (default 30).
- ``media``: also track images/audio/text as Aim sequences (default True).
- ``max_text_bytes``: larger text files are not tracked as ``Text`` (default 262144).
- ``run_kwargs``: extra keyword arguments for ``aim.Run`` (defaults turn system tracking, terminal
  capture and system params off).
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import MODEL_TYPES, ArtifactType, ManifestEntry, thaw_json, validate_artifact_path
from tracelet_artifacts.backends import aim_target
from tracelet_artifacts.backends.aim_target import AimPlan
from tracelet_artifacts.backends.base import (
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
)
from tracelet_artifacts.backends.plan import PlannedAdapter
from tracelet_artifacts.backends.sdk_worker import SdkWorker
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, DeliveryError, IntegrityError, TraceletError
from tracelet_artifacts.values.manifest import entry_digest

log = logging.getLogger(__name__)

T = TypeVar("T")
PARAMS_KEY = "tracelet_artifacts"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_TEXT_BYTES = 256 * 1024
RASTER_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp", "image/tiff", "image/webp"})
AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/flac": "flac",
                 "audio/x-flac": "flac"}
NO_REGISTRY = ("Aim has no model registry: the model's files are run artifacts and its framework and class "
               "are run params")
_TRANSIENT_WORDS = ("failed to connect", "connection", "timed out", "timeout", "unavailable", "lock")



def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    if isinstance(exc, OSError):  # connection refused/reset, timeouts, a full disk
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
    names = {cls.__name__ for cls in type(exc).__mro__}
    # UnauthorizedRequestError: a restarted server forgot this client; reopening the run fixes it
    if names & {"RequestException", "ConnectionClosed", "RunLockingError", "Timeout", "InvalidStatus",
                "UnauthorizedRequestError", "RocksIOError"}:
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _TRANSIENT_WORDS)


def _translate(exc: BaseException, what: str) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    retryable = _is_transient(exc)
    hint = "it will be retried" if retryable else "fix the cause and run `tracelet-artifacts sync`"
    return DeliveryError(f"Aim failed while {what}: {type(exc).__name__}: {exc} ({hint}).", retryable=retryable)


def _plain(value: Any) -> Any:
    """A value Aim can hold as a param: JSON types as they are, anything else as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _parse_version(version: str | int) -> int | None:
    """``3``, ``"3"`` or ``"v3"`` → 3; ``"latest"`` → None."""
    text = str(version).strip().lower()
    if text == "latest":
        return None
    digits = text[1:] if text.startswith("v") else text
    if not digits.isdigit():
        raise ArtifactStoreNotFoundError(f"Aim holds versions as v1, v2, … or 'latest', not {version!r}.")
    return int(digits)


class AimAdapter(PlannedAdapter):
    """Logs artifact versions into an Aim run (local repo or ``aim://`` server) and reads them back.

    Example::

        adapter = AimAdapter({"repo": "aim://127.0.0.1:53800"})
        state = adapter.start_run(RunContext("run-1", "demo", Path(".tracelet")))   # {"run_hash": …}
        receipt = adapter.log(delivery)
        adapter.fetch("classifier", "v1", Path("out"))
    """

    name = "aim"
    capabilities = Capabilities(model_registry=False, media=True, references=True, aliases=False, versioning=False)

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._worker: SdkWorker | None = None
        self._repo: Any = None
        self._run: Any = None
        self._owns_run = False
        self._store_root: Path | None = None
        self._context: RunContext | None = None
        self._session_lost = False
        self._elsewhere: dict[tuple[str, int], dict[str, Any]] | None = None

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout", DEFAULT_TIMEOUT_S))

    def _call(self, fn: Callable[[], T], what: str, timeout: float | None = None) -> T:
        if self._worker is None:
            self._worker = SdkWorker("Aim")
        try:
            return self._worker.call(fn, self.timeout if timeout is None else timeout, what)
        except TraceletError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "UnauthorizedRequestError" and self._owns_run:
                self._session_lost = True  # the next call reopens the run through a new client
            raise _translate(exc, what) from exc

    def _planned(self, key: str) -> str:
        """A resolved value (the option when there is no plan yet: an adapter used only to read)."""
        value = self._plan.value(key) if self._plan is not None else self.options.get(key)
        if not value:
            raise DeliveryError(f"The aim adapter has no {key}: call start_run() or pass options={{'{key}': …}}.",
                                retryable=False)
        return str(value)

    def _repo_location(self) -> str:
        return self._planned("repo")

    def _artifacts_uri(self) -> str:
        return self._planned("artifacts_uri")

    def plan(self, run: RunContext) -> AimPlan:
        """Where this run's data goes (the run handed in > the repo named > the nearest .aim > the store)."""
        return aim_target.resolve(self.option, run.experiment, run.store_root, self.options.get("run"))

    def _open_repo(self) -> Any:
        """This adapter's own ``aim.Repo`` (never aim's shared pool, so closing it touches no one else)."""
        if self._repo is None:
            from aim import Repo

            location = self._repo_location()
            if Repo.is_remote_path(location):
                self._repo = Repo(location)
            else:
                Path(location).mkdir(parents=True, exist_ok=True)
                self._repo = Repo(str(Path(location).absolute()), init=not Repo.exists(location))
        return self._repo

    def _require_run(self) -> Any:
        if self._run is None:
            raise DeliveryError("The aim adapter has no run: call start_run() first.", retryable=False)
        if self._session_lost:
            self._call(self._reopen, "reconnecting to the Aim server")
        return self._run

    def _reopen(self) -> None:
        """The server forgot this client (it restarted): open the same run again through a new client."""
        old_run, old_repo, context = self._run, self._repo, self._context
        assert old_run is not None and context is not None
        for close in (old_run.close, old_repo.close if old_repo is not None else None):
            try:
                if close is not None:
                    close()
            except Exception as exc:  # the old session is gone on the server; nothing left to release
                log.debug("Closing the stale Aim client: %s", str(exc))  # text only: a traceback holds the run
        self._run = self._repo = None
        self._run = self._create_run(replace(context, state={"run_hash": str(old_run.hash)}))
        self._run.set_artifacts_uri(self._artifacts_uri())
        self._session_lost = False
        log.info("Reconnected to the Aim server; resumed run %s.", self._run.hash)

    # -- run lifecycle -----------------------------------------------------------------------------
    def start_run(self, run: RunContext) -> dict[str, str]:
        """Join the run handed in, else open (or, from ``run.state``, resume) one named after the experiment."""
        self._store_root = Path(run.store_root)
        self._context = run
        plan = self._call(lambda: self.start_plan(run), "finding the Aim repo")
        if plan.joined is not None:
            self._run, self._owns_run = plan.joined, False
            log.info("Aim: logging into the run %s you handed in.", self._run.hash)
        else:
            self._run = self._call(lambda: self._create_run(run), "opening the Aim run")
            self._owns_run = True
        if plan.joined is None or plan.settings["artifacts_uri"].source != "the run handed in":
            uri = self._artifacts_uri()
            self._call(lambda: self._run.set_artifacts_uri(uri), "setting the run's artifacts URI")
        return {"run_hash": str(self._run.hash)}

    def _create_run(self, ctx: RunContext) -> Any:
        from aim import Run

        kwargs: dict[str, Any] = {"system_tracking_interval": None, "capture_terminal_logs": False,
                                  "log_system_params": False, **dict(self.options.get("run_kwargs") or {})}
        repo = self._open_repo()
        resume = ctx.state.get("run_hash")
        if resume:
            log.info("Resuming Aim run %s", resume)
            return Run(run_hash=str(resume), repo=repo, **kwargs)
        created = Run(repo=repo, experiment=self._planned("experiment"), **kwargs)
        created.name = self._planned("name")
        return created

    def end_run(self) -> None:
        """Close the run (and this adapter's repo); bounded by the timeout, so a dead server cannot hang."""
        run, repo = self._run, self._repo
        self._run = self._repo = None
        if run is None and repo is None:
            return

        def close() -> None:
            if run is not None and self._owns_run:
                run.close()
            if repo is not None:
                if not repo.is_remote_repo and run is not None:
                    self._index(repo, [str(run.hash)])
                repo.close()
                if repo.is_remote_repo:
                    gc.collect()  # release every remote object while the server can still answer

        try:
            self._call(close, "closing the Aim run")
        except DeliveryError as exc:
            log.warning("Could not close the Aim run cleanly: %s", str(exc))

    # -- params and metrics ------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        run = self._require_run()
        values = {str(k): _plain(v) for k, v in params.items()}

        def write() -> None:
            for key, value in values.items():
                run.set(("hparams", key), value, strict=False)

        self._call(write, "logging params")

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        run = self._require_run()
        self._call(lambda: run.track(float(value), name=name, step=step), f"logging metric {name!r}")

    # -- logging -----------------------------------------------------------------------------------
    def log(self, delivery: Delivery) -> Receipt:
        run = self._require_run()
        manifest = delivery.manifest
        label = f"v{delivery.version}"
        what = f"logging {manifest.name}:{label}"
        held = self._call(lambda: run.get((PARAMS_KEY, manifest.name, label)), f"reading {manifest.name}:{label}")
        if held:
            if held.get("digest") != manifest.digest:
                raise DeliveryError(
                    f"Aim run {run.hash} already holds {manifest.name}:{label} with digest {held.get('digest')}, "
                    f"not {manifest.digest}; the two stores disagree. Log to a new Aim run.", retryable=False)
            log.info("Aim already holds %s:%s (digest %s); nothing uploaded.", manifest.name, label, manifest.digest)
            return self._receipt(delivery, str(run.hash))
        linked = self._held_elsewhere(manifest.name, delivery.version, manifest.digest)
        if linked is not None:  # another run of this repo holds the same files: point to them, copy nothing
            record = {**linked, "linked_from": linked["run_hash"], "logged_at": time.time()}
            self._call(lambda: run.set((PARAMS_KEY, manifest.name, label), record, strict=False), what)
            log.info("Aim run %s holds %s:%s already; run %s links to it.", linked["run_hash"], manifest.name,
                     label, run.hash)
            return self._receipt(delivery, str(linked["run_hash"]))
        existing = set(self._call(lambda: dict(run.artifacts), "listing the run's artifacts"))
        uploaded: list[str] = []
        for entry in delivery.uploads():
            aim_name = f"{manifest.name}/{label}/{entry.path}"
            if aim_name in existing:
                continue  # copied by an attempt that crashed before its record was written
            source = delivery.blob_path(entry)
            if not source.is_file():
                raise DeliveryError(f"The embedded store lacks {entry.path} of {manifest.name}:{label} "
                                    f"({source}); run `tracelet-artifacts verify`.", retryable=False)
            self._call(partial(run.log_artifact, str(source), name=aim_name, block=True), f"{what} ({entry.path})")
            uploaded.append(entry.path)
        media = self._track_media(run, delivery, what) if self.options.get("media", True) else []
        record = self._record(delivery, str(run.hash), media)
        self._call(lambda: run.set((PARAMS_KEY, manifest.name, label), record, strict=False), what)
        log.info("Aim run %s: %s:%s, %d file(s) copied, %d media.", run.hash, manifest.name, label,
                 len(uploaded), len(media))
        return self._receipt(delivery, str(run.hash))

    def _held_elsewhere(self, name: str, version: int, digest: str) -> dict[str, Any] | None:
        """The record of another run of the repo holding this exact version (read once per adapter)."""
        if self._elsewhere is None:
            own = str(self._require_run().hash)
            self._elsewhere = {(rec["name"], int(rec["version"])): rec for holder, _, rec in self._records()
                               if holder != own and rec.get("run_hash") == holder}
        found = self._elsewhere.get((name, version))
        return found if found is not None and found.get("digest") == digest else None

    def _version_uri(self, delivery: Delivery, run_hash: str) -> str:
        """Where the version's files are: ``<artifacts_uri>/<run hash>/<name>/v<N>``."""
        return f"{self._artifacts_uri().rstrip('/')}/{run_hash}/{delivery.manifest.name}/v{delivery.version}"

    def _receipt(self, delivery: Delivery, run_hash: str) -> Receipt:
        not_held = dict(delivery.plan.not_held)
        if delivery.manifest.artifact_type in MODEL_TYPES:
            not_held["model registry"] = NO_REGISTRY
        named = [a for a in delivery.aliases if a != "latest"]  # every backend has its own "latest"
        if named:
            not_held["aliases"] = f"Aim has no aliases; the embedded store keeps {', '.join(named)}"
        return delivery.receipt(self.name, remote_id=run_hash, remote_version=f"v{delivery.version}",
                                uri=self._version_uri(delivery, run_hash), not_held=not_held, locator=run_hash,
                                view_command=self._plan.view if isinstance(self._plan, AimPlan) else None)

    def _record(self, delivery: Delivery, run_hash: str, media: list[str]) -> dict[str, Any]:
        manifest = delivery.manifest
        planned = set(delivery.plan.uploads)
        refs = {r.path: r for r in delivery.references()}
        entries = []
        for entry in manifest.entries:
            item = entry.to_dict()
            if entry.path in planned:
                item["aim_artifact"] = f"{manifest.name}/v{delivery.version}/{entry.path}"
            elif entry.path in refs:
                item["reference"] = refs[entry.path].uri
            entries.append(item)
        return _plain({
            "name": manifest.name,
            "version": delivery.version,
            "digest": manifest.digest,
            "type": manifest.artifact_type.value,
            "description": manifest.description,
            "metadata": thaw_json(manifest.metadata),
            "labels": list(manifest.labels),
            "entries": entries,
            "references": [r.to_dict() for r in manifest.references
                           if r.uri in set(delivery.plan.external_references)],
            "model": manifest.model.to_dict() if manifest.model else None,
            "media": media,
            "run_hash": run_hash,
            "uri": self._version_uri(delivery, run_hash),
            "logged_at": time.time(),
        })

    def _track_media(self, run: Any, delivery: Delivery, what: str) -> list[str]:
        """Track viewable entries as Aim sequences (step = version); returns the tracked paths."""
        tracked: list[str] = []
        limit = int(self.options.get("max_text_bytes", DEFAULT_MAX_TEXT_BYTES))
        for entry in delivery.uploads():
            maker = self._media_maker(entry, delivery, limit)
            if maker is None:
                continue

            def track(make: Callable[[], Any] = maker, path: str = entry.path) -> None:
                run.track(make(), name=delivery.manifest.name, step=delivery.version, context={"path": path})

            try:
                self._call(track, f"{what} (media {entry.path})")
            except DeliveryError as exc:
                if exc.retryable:
                    raise
                log.warning("Aim could not show %s as media (%s); the file is still a run artifact.",
                            entry.path, str(exc))
                continue
            tracked.append(entry.path)
        return tracked

    @staticmethod
    def _media_maker(entry: ManifestEntry, delivery: Delivery, limit: int) -> Callable[[], Any] | None:
        source = str(delivery.blob_path(entry))
        if entry.mime in RASTER_IMAGES:
            def image() -> Any:
                from aim import Image
                from PIL import Image as PILImage

                with PILImage.open(source) as picture:
                    picture.load()
                    return Image(picture.copy(), caption=entry.path)
            return image
        if entry.mime in AUDIO_FORMATS:
            def audio() -> Any:
                from aim import Audio

                return Audio(source, format=AUDIO_FORMATS[entry.mime], caption=entry.path)
            return audio
        if entry.is_text and entry.kind != "model" and not entry.mime.startswith("image/") and entry.size <= limit:
            def text() -> Any:
                from aim import Text

                return Text(Path(source).read_text(encoding="utf-8", errors="replace"))
            return text
        return None

    # -- reading back ------------------------------------------------------------------------------
    @staticmethod
    def _index(repo: Any, hashes: list[str]) -> None:
        """Refresh Aim's run index for a local repo, so ``Repo`` readers see runs closed since.

        A manager of our own (not aim's shared pool, which would keep this repo alive), stopped after
        use so its file watcher thread ends.
        """
        from aim.sdk.index_manager import RepoIndexManager

        manager = RepoIndexManager(repo)
        try:
            for run_hash in hashes:
                manager.index(run_hash)
        finally:
            manager.stop()

    def _read_run(self, run_hash: str) -> Any:
        """A read-only view of another run of the repo (indexed first when the repo is local)."""
        from aim import Run

        repo = self._open_repo()
        if not repo.is_remote_repo:
            self._index(repo, [run_hash])
        return Run(run_hash, repo=repo, read_only=True)

    def _runs(self) -> Iterator[tuple[str, Any]]:
        """(run hash, run) for this adapter's run first, then every other readable run of the repo."""
        from aim import Run

        own = self._run
        if own is not None:
            yield str(own.hash), own
        repo = self._open_repo()
        hashes = [h for h in repo.list_all_runs() if own is None or h != str(own.hash)]
        if not repo.is_remote_repo:
            self._index(repo, hashes)
        for run_hash in sorted(hashes):
            yield run_hash, Run(run_hash, repo=repo, read_only=True)

    def _records(self) -> list[tuple[str, Any, dict[str, Any]]]:
        """Every (run hash, run, record) held, one per name and version (this adapter's run wins)."""
        if self._run is not None:
            self._require_run()

        def collect() -> list[tuple[str, Any, dict[str, Any]]]:
            found: dict[tuple[str, int], tuple[str, Any, dict[str, Any]]] = {}
            for run_hash, run in self._runs():
                for name, versions in (run.get(PARAMS_KEY) or {}).items():
                    for record in (versions or {}).values():
                        found.setdefault((name, int(record["version"])), (run_hash, run, record))
            return [found[key] for key in sorted(found)]

        return self._call(collect, "reading the Aim repo")

    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        wanted = ArtifactType.parse(type_filter) if type_filter is not None else None
        out = []
        for _, _, record in self._records():
            kind = ArtifactType.parse(record["type"])
            if wanted in (None, kind):
                out.append(RemoteArtifact(self.name, str(record["name"]), f"v{record['version']}", kind,
                                          record["digest"], record.get("uri")))
        return out

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        wanted = _parse_version(version)
        matches = [(h, r, rec) for h, r, rec in self._records()
                   if rec["name"] == name and (wanted is None or int(rec["version"]) == wanted)]
        if not matches:
            raise ArtifactStoreNotFoundError(f"Aim holds no {name}:{version} in repo {self._repo_location()}.")
        holder, run, record = max(matches, key=lambda m: int(m[2]["version"]))
        run_hash = str(record.get("run_hash") or holder)
        target = Path(dest)

        def download() -> None:
            source = run if run_hash == holder else self._read_run(run_hash)  # a linked record: files elsewhere
            artifacts = source.artifacts
            for entry in record["entries"]:
                path = target / validate_artifact_path(entry["path"])
                path.parent.mkdir(parents=True, exist_ok=True)
                if entry.get("aim_artifact"):
                    artifacts[entry["aim_artifact"]].download(str(path.parent))
                elif str(entry.get("reference", "")).startswith("file://"):
                    shutil.copyfile(unquote(urlparse(entry["reference"]).path), path)
                else:
                    log.warning("Aim holds only the reference of %s; not fetched.", entry["path"])
                    continue
                if not digest.matches(path, entry_digest(entry)):
                    raise IntegrityError(f"{name}:v{record['version']} {entry['path']} from Aim run {run_hash} "
                                         "does not match its digest.")

        self._call(download, f"fetching {name}:v{record['version']}", timeout=max(self.timeout, 300.0))
        return target
