"""The ClearML adapter: logs artifact versions into the ClearML task the user started (``Task.current_task()``,
joined and never closed here) or into one it starts, named after the experiment.

Where the task goes is resolved the way ClearML resolves it (``clearml_target``): explicit options, then
ClearML's own variables and config file (offline when asked, online when a server's credentials are
configured), then the embedded default: an offline session under the store folder, with a ``clearml.conf``
of its own (no reporting subprocess, no update check). Only that default changes ClearML's process-wide
settings (``Task.set_offline(True)``, ``CLEARML_CACHE_DIR``, ``CLEARML_CONFIG_FILE``).

Each version becomes task artifacts keyed ``<name>:v<version>/<path>`` (one per uploaded file, paths kept),
link artifacts ``<name>:v<version>/ref:<uri>`` for remote references, and a manifest artifact
``<name>:v<version>`` (a JSON dict: entries, digests, description, metadata, labels, where each file lives)
whose ``metadata`` holds the name, version, type and artifact digest. MODEL/WEIGHTS/CHECKPOINT weights are
registered as an ``OutputModel`` named after the artifact, tagged with the store's aliases. The manifest
artifact is written last: it marks the version complete. ``list``/``fetch`` and the idempotency check read
the offline sessions' ``task.json`` (folder, or the ``.zip`` ClearML writes on close).

Options (``ClearmlAdapter({...})``; each overrides ClearML's own setting of the same value):

- ``project`` / ``task_name``: ClearML project and task name (default: the experiment's name, both).
- ``offline``: ``True``/``False`` (default: ClearML's own choice, see above).
- ``root``: folder for the written ``clearml.conf``, the offline sessions (``root/cache``) and staging
  (default: ``<store root>/clearml``).
- ``config_file``: a ``clearml.conf`` to use (default: ``$CLEARML_CONFIG_FILE`` / ``~/clearml.conf``, else one
  written under ``root``).
- ``task``: an already created ``clearml.Task`` to log into (online or offline); the adapter never closes it.
- ``tags``: tags added to the task it creates.
- ``timeout_s``: seconds one ``log``/``fetch`` may take before a retryable DeliveryError (default 300).
- ``close_wait_s``: seconds ``end_run`` waits for the background close (default 0: return at once).

A ``CLEARML_PROC_MASTER_ID`` / ``TRAINS_PROC_MASTER_ID`` inherited from a parent process is dropped; ClearML
itself writes ``~/.clearml/.session.json``. Only one ``Task.init`` task may be open per process.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import MODEL_TYPES, ArtifactType, ManifestEntry, thaw_json, validate_artifact_path
from tracelet_artifacts.backends import clearml_target
from tracelet_artifacts.backends.base import (
    EMBEDDED_DEFAULT,
    FROM_OPTIONS,
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
)
from tracelet_artifacts.backends.clearml_sessions import (
    SESSION_FILE,
    SessionIndex,
    StoredFile,
    open_stored,
    session_files,
    version_key,
)
from tracelet_artifacts.backends.clearml_target import CONFIG_TEXT, OWN_TASKS, ClearmlPlan
from tracelet_artifacts.backends.plan import PlannedAdapter
from tracelet_artifacts.backends.sdk_worker import SdkWorker
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, DeliveryError, TraceletError
from tracelet_artifacts.values.manifest import entry_digest

log = logging.getLogger(__name__)

T = TypeVar("T")
LINK_SCHEMES = ("s3", "gs", "azure", "http", "https")
FRAMEWORKS = {"pytorch": "PyTorch", "sklearn": "ScikitLearn", "tensorflow": "TensorFlow",
              "xgboost": "XGBoost", "lightgbm": "LightGBM"}
EXTENSION_FRAMEWORKS = {".pt": "PyTorch", ".pth": "PyTorch", ".ckpt": "PyTorch", ".onnx": "ONNX",
                        ".h5": "Keras", ".keras": "Keras", ".pkl": "ScikitLearn", ".joblib": "ScikitLearn"}
NO_FRAMEWORKS = {"detect_repository": False, "pytorch": False, "tensorflow": False, "tensorboard": False,
                 "tensorboardx": False, "scikit": False, "matplotlib": False, "joblib": False, "xgboost": False,
                 "lightgbm": False, "hydra": False, "fastai": False, "catboost": False, "jsonargparse": False,
                 "megengine": False}


def classify(exc: BaseException, action: str) -> BaseException:
    """Translate an SDK/OS error into a DeliveryError: transient trouble is retryable, the rest is not.
    Our own errors pass unchanged."""
    if isinstance(exc, TraceletError):
        return exc
    status = getattr(getattr(exc, "response", None), "status_code", None)
    retryable = status >= 500 or status in (408, 429) if isinstance(status, int) else isinstance(exc, OSError)
    kind = "transient" if retryable else "permanent"
    return DeliveryError(f"ClearML {action} failed ({kind}): {type(exc).__name__}: {exc}", retryable=retryable)


def safe_filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "file"


class ClearmlAdapter(PlannedAdapter):
    """Logs, lists and fetches artifact versions through a ClearML Task (offline by default).

    Example::

        adapter = ClearmlAdapter({"project": "demo"})
        state = adapter.start_run(RunContext("run-1", "demo", Path(".tracelet")))
        receipt = adapter.log(delivery)           # artifacts + OutputModel in the offline session
        adapter.fetch("classifier", "v1", Path("out"))
        adapter.end_run()                         # closes the task on a background thread
    """

    name = "clearml"
    capabilities = Capabilities(model_registry=True, media=False, references=True, aliases=False, versioning=False)
    _open_tasks: ClassVar[set[str]] = OWN_TASKS  # ids of tasks our adapters created and have not closed yet
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._task: Any = None
        self._owns_task = False
        self._sessions: list[Path] = []
        self._lock = threading.RLock()
        self._closer: threading.Thread | None = None
        self._sdk: SdkWorker | None = None
        self._parsed: dict[Path, tuple[list[int], list[StoredFile]]] = {}
        self._registered: dict[str, StoredFile] = {}
        self.root: Path | None = None

    # -- run lifecycle ----------------------------------------------------------------------------
    def plan(self, run: RunContext) -> ClearmlPlan:
        """Where this run's data goes (options > ClearML's configuration or task > offline under the store)."""
        return clearml_target.resolve(self.option, run.experiment, run.store_root, self.options.get("task"))

    def start_run(self, run: RunContext) -> dict[str, Any]:
        """Join the user's task (``Task.current_task()`` or ``options["task"]``), else create one named after the
        experiment; resume the sessions listed in ``run.state``.

        ClearML cannot continue an offline task in a new process (its ``task.json`` would be rewritten empty),
        so a resumed run opens a new offline session and keeps the earlier ones readable: ``list``, ``fetch``
        and the idempotency check look at every session in the state. The first task id stays the run's id;
        pass it as ``previous_task_id`` to ``Task.import_offline_session`` when syncing to a server.
        """
        self.wait_closed(timeout=float(self.options.get("close_wait_s") or 30.0))
        self.root = Path(self.options.get("root") or Path(run.store_root) / "clearml").absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        state = dict(run.state or {})
        self._sessions = [Path(p) for p in state.get("sessions", []) if Path(p).exists()
                          or Path(p).with_name(Path(p).name + ".zip").exists()]
        plan = self.start_plan(run)
        assert isinstance(plan, ClearmlPlan)
        if plan.joined is not None:
            self._task, self._owns_task = plan.joined, False
            log.info("ClearML: logging into your task %s.", self._task.id)
        else:
            self._task, self._owns_task = self._init_task(run, plan), True
        folder = self._session_folder()
        if folder is not None and folder not in self._sessions:
            self._sessions.append(folder)
        return {"task_id": state.get("task_id") or self._task.id, "current_task_id": self._task.id,
                "project": plan.value("project"), "sessions": [str(p) for p in self._sessions]}

    @staticmethod
    def _prepare_environment(plan: ClearmlPlan) -> None:
        """Point ClearML at the cache folder and config file the plan chose, where ClearML's own settings do
        not already say them (the embedded default, or an explicit option)."""
        cache, config = plan.settings["cache_dir"], plan.settings["config_file"]
        if cache.source in (EMBEDDED_DEFAULT, FROM_OPTIONS, "TRACELET_BACKEND_OPTIONS"):
            Path(cache.value).mkdir(parents=True, exist_ok=True)
            clearml_target.set_default("CLEARML_CACHE_DIR", cache.value)
        if config.source == EMBEDDED_DEFAULT:
            Path(config.value).parent.mkdir(parents=True, exist_ok=True)
            Path(config.value).write_text(CONFIG_TEXT.format(cache=Path(cache.value).as_posix()), "utf-8")
        if config.source in (EMBEDDED_DEFAULT, FROM_OPTIONS, "TRACELET_BACKEND_OPTIONS"):
            clearml_target.set_default("CLEARML_CONFIG_FILE", str(Path(config.value).absolute()))

    def _init_task(self, run: RunContext, plan: ClearmlPlan) -> Any:
        self._prepare_environment(plan)
        # ClearML reads the master id under its current and its legacy (TRAINS_) name.
        master = os.environ.get("CLEARML_PROC_MASTER_ID") or os.environ.get("TRAINS_PROC_MASTER_ID") or ""
        if master and master.split(":")[0] != str(os.getpid()):
            # Inherited from a parent process that ran a ClearML task: ClearML would treat this process as that
            # task's subprocess (a stub task, or writing into the parent's session). Start a separate run.
            log.info("Ignoring the ClearML master id %s inherited from another process.", master)
            os.environ.pop("CLEARML_PROC_MASTER_ID", None)
            os.environ.pop("TRAINS_PROC_MASTER_ID", None)
        from clearml import Task

        if plan.offline and not Task.is_offline():
            Task.set_offline(True)
            clearml_target.set_default("CLEARML_OFFLINE_MODE", os.environ.get("CLEARML_OFFLINE_MODE", "1"))
        kind = "offline task" if plan.offline else f"task on {plan.value('server')}"
        try:
            task: Any = Task.init(
                project_name=plan.value("project"), task_name=plan.value("task_name"),
                tags=list(self.options.get("tags") or []) or None, reuse_last_task_id=False,
                continue_last_task=False, auto_connect_frameworks=dict(NO_FRAMEWORKS),
                auto_resource_monitoring=False, auto_connect_arg_parser=False, auto_connect_streams=False,
            )
        except Exception as exc:
            raise DeliveryError(
                f"Cannot start a ClearML {kind}: {exc}. ClearML allows one Task.init task per process: end "
                "the other run first, or pass your own task as options={'task': task}.", retryable=True) from exc
        folder = task.get_offline_mode_folder() if plan.offline else ""  # pin the session folder now
        if plan.offline and not isinstance(folder, (str, os.PathLike)):  # a stub: we look like a child process
            raise DeliveryError(
                "ClearML treats this process as a subprocess of another task (CLEARML_PROC_MASTER_ID is inherited "
                "from a parent process); unset CLEARML_PROC_MASTER_ID to start a separate run.", retryable=False)
        with self._open_lock:
            if task.id in self._open_tasks:  # Task.init handed back the task another adapter here has open
                raise DeliveryError(f"ClearML task {task.id} is already open by another ClearmlAdapter in this "
                                    "process; end that run first.", retryable=True)
            self._open_tasks.add(task.id)
        log.info("ClearML %s for run %s: %s", kind, run.run_id, folder or task.id)
        return task

    def _session_folder(self) -> Path | None:
        if self._task is None or not self._task.is_offline():
            return None
        folder = self._task.get_offline_mode_folder()
        return Path(folder) if folder else None

    @property
    def task(self) -> Any:
        """The ClearML task this adapter logs into."""
        if self._task is None:
            raise DeliveryError("The ClearML adapter has no task: call start_run() first.", retryable=False)
        return self._task

    def end_run(self) -> None:
        """Close the task the adapter created on a background thread (ClearML may block ~10 s closing it).

        ``options["close_wait_s"]`` seconds are waited for it here; an ``atexit`` hook waits up to 30 s more
        at interpreter exit so the session zip is written. A task given through options is left open.
        """
        with self._lock:
            task, self._task = self._task, None
        if task is None or not self._owns_task:
            return
        self._closer = threading.Thread(target=self._close, args=(task,), name="tracelet-clearml-close", daemon=True)
        self._closer.start()
        atexit.register(self.wait_closed, 30.0)
        wait = float(self.options.get("close_wait_s") or 0)
        if wait > 0:
            self.wait_closed(wait)

    @classmethod
    def _close(cls, task: Any) -> None:
        started = time.monotonic()
        try:
            task.close()
        except Exception:
            log.exception("Closing the ClearML task %s failed", getattr(task, "id", "?"))
        finally:
            with cls._open_lock:
                cls._open_tasks.discard(task.id)
        log.debug("ClearML task closed in %.2f s", time.monotonic() - started)

    def wait_closed(self, timeout: float = 30.0) -> bool:
        """Wait for a background close started by ``end_run``; True when no close is pending."""
        closer = self._closer
        if closer is not None:
            closer.join(timeout)
            if closer.is_alive():
                return False
            self._closer = None
        return True

    @property
    def sessions(self) -> list[Path]:
        """Offline session folders of this run, oldest first (each may be closed into ``<folder>.zip``)."""
        return list(self._sessions)

    # -- params and metrics -----------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Hyper-parameters under the task's ``Tracelet`` section (nested keys joined with ``/``)."""
        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, Mapping) and value:
                for key, inner in value.items():
                    walk(f"{prefix}/{key}" if prefix else str(key), inner)
            else:
                flat[f"Tracelet/{prefix}"] = value if isinstance(value, (int, float, str, bool)) else json.dumps(
                    value, default=str)

        walk("", params)
        with self._lock:
            self.task.update_parameters(flat)

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """A scalar: ``"train/loss"`` is plotted as title ``train``, series ``loss``; ``"loss"`` as ``loss/loss``."""
        title, _, series = name.rpartition("/")
        with self._lock:
            self.task.get_logger().report_scalar(title or series, series, float(value), iteration=step or 0)

    # -- logging ----------------------------------------------------------------------------------
    def _guarded(self, action: str, work: Callable[[], T]) -> T:
        """Run ``work`` on the adapter's SDK thread; past ``timeout_s`` raise a retryable DeliveryError."""
        if self._sdk is None:
            self._sdk = SdkWorker("ClearML")
        try:
            return self._sdk.call(work, float(self.options.get("timeout_s") or 300.0), action)
        except Exception as exc:
            translated = classify(exc, action)
            if translated is exc:
                raise
            raise translated from exc

    def log(self, delivery: Delivery) -> Receipt:
        """Upload a version's files, register its model and write its manifest artifact (skipping what is held)."""
        task = self.task
        return self._guarded("log", lambda: self._log(task, delivery))

    def _session_items(self, folder: Path) -> list[StoredFile]:
        """What a session's ``task.json`` (or zip) records, parsed once per change of the file."""
        stamps = [p.stat().st_mtime_ns for p in (folder / SESSION_FILE, folder.with_name(folder.name + ".zip"))
                  if p.is_file()]
        cached = self._parsed.get(folder)
        if cached is not None and cached[0] == stamps:
            return cached[1]
        items = list(session_files(folder))
        self._parsed[folder] = (stamps, items)
        return items

    def _index(self, task: Any) -> SessionIndex:
        """Everything this run's sessions hold; the open task is read through its live ``artifacts``."""
        index = SessionIndex()
        current = self._session_folder() if task is not None else None
        for folder in self._sessions:
            for item in self._session_items(folder):
                if folder != current or item.key.startswith("model:"):
                    index.add(item)
        if task is not None:
            for key, art in task.artifacts.items():
                meta = {str(k): str(v) for k, v in (art.metadata or {}).items()}
                index.add(StoredFile(key, art.url, art.hash, art.size, meta, current))
        for item in self._registered.values():  # models registered here, maybe not yet in task.json
            index.add(item)
        return index

    def _log(self, task: Any, delivery: Delivery) -> Receipt:
        manifest, version = delivery.manifest, delivery.version
        with self._lock:
            index = self._index(task)
            held = index.manifests.get((manifest.name, version))
            if held is not None:
                if held.meta.get("tracelet.digest") != manifest.digest:
                    raise DeliveryError(
                        f"ClearML already holds {manifest.name}:v{version} with another digest "
                        f"({held.meta.get('tracelet.digest')}); versions are immutable.", retryable=False)
                return self._receipt(task, delivery, held, index, skipped=True)
            base = version_key(manifest.name, version)
            common = {"tracelet.name": manifest.name, "tracelet.version": str(version),
                      "tracelet.digest": manifest.digest, "tracelet.type": manifest.artifact_type.value}
            weights = self._weights_entry(delivery)
            staging = self._staging_dir(base)
            locations: dict[str, str] = {}
            try:
                for entry in delivery.uploads():
                    if weights is not None and entry.path == weights.path:
                        locations[entry.path] = self._register_model(task, delivery, entry, index, staging)
                        continue
                    key = f"{base}/{entry.path}"
                    stored = index.files.get(key)
                    if stored is not None and stored.uri and entry.digest in (
                            stored.meta.get("tracelet.blob"), stored.sha256):
                        locations[entry.path] = stored.uri
                        continue
                    source = self._stage(delivery, entry, staging / "files" / entry.path)
                    meta = {**common, "tracelet.kind": "file", "tracelet.path": entry.path,
                            "tracelet.blob": entry.digest}
                    # ClearML records the SHA-256 of what it stored: computed once per blob here, cached.
                    locations[entry.path] = self._upload(task, key, source, meta,
                                                         delivery.entry_hexdigest(entry, "sha256"))
                references = self._register_references(task, delivery, base, common, index)
                record = {"manifest": manifest.to_dict(), "version": version, "locations": locations,
                          "references": references, "output_model": weights.path if weights else None}
                meta = {**common, "tracelet.kind": "manifest", "description": manifest.description or "",
                        "labels": json.dumps(list(manifest.labels)),
                        "metadata": json.dumps(thaw_json(manifest.metadata), sort_keys=True)}
                if not task.upload_artifact(base, artifact_object=record, metadata=meta, wait_on_upload=True,
                                            sort_keys=True):
                    raise DeliveryError(f"ClearML refused the manifest artifact {base!r}.", retryable=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            art = task.artifacts[base]
            stored_manifest = StoredFile(base, art.url, art.hash, art.size, meta, self._session_folder())
            return self._receipt(task, delivery, stored_manifest, self._index(task), skipped=False)

    def _receipt(self, task: Any, delivery: Delivery, manifest: StoredFile, index: SessionIndex, *,
                 skipped: bool) -> Receipt:
        not_held = {**delivery.plan.not_held, **self._alias_gaps(delivery, index)}
        if delivery.manifest.artifact_type in MODEL_TYPES and self._weights_entry(delivery) is None:
            not_held["model"] = "no weights file among the uploads; nothing registered as an OutputModel"
        if skipped:
            log.info("ClearML already holds %s:v%s; nothing uploaded", delivery.manifest.name, delivery.version)
        holder = manifest.session.name if manifest.session is not None else str(task.id)  # folder = task id
        view = None
        if manifest.session is not None:  # an offline session: imported into a server by ClearML itself
            view = (f"python -c \"from clearml import Task; Task.import_offline_session("
                    f"'{manifest.session.with_name(manifest.session.name + '.zip')}')\"")
        return delivery.receipt(self.name, remote_id=holder, remote_version=None,
                                uri=f"clearml://{holder}/{manifest.key}", not_held=not_held, locator=holder,
                                view_command=view)

    def _alias_gaps(self, delivery: Delivery, index: SessionIndex) -> dict[str, str]:
        """The store's aliases of this version that ClearML does not hold: a model's tags are set when it is
        registered, and task artifacts have no aliases at all."""
        named = self._named_aliases(delivery)
        if not named:
            return {}
        weights = self._weights_entry(delivery)
        model = index.models.get(weights.digest) if weights is not None else None
        if model is None:
            return {"aliases": "ClearML task artifacts have no aliases; the embedded store keeps "
                               f"{', '.join(named)}"}
        tagged = set(model.meta.get("aliases", "").split(",")) - {""}
        why = (f"the OutputModel's tags were set when it was registered ({', '.join(sorted(tagged)) or 'no alias'}); "
               "ClearML cannot move a registered model's tag here, so the embedded store keeps this alias")
        return {f"alias:{alias}": why for alias in named if alias not in tagged}

    @staticmethod
    def _named_aliases(delivery: Delivery) -> list[str]:
        """The store's aliases of the version but ``latest`` (ClearML keeps its own order of models)."""
        return [a for a in delivery.aliases if a != "latest"]

    def _staging_dir(self, base: str) -> Path:
        root = self.root or Path(".")
        folder = root / "staging" / f"{safe_filename(base)}-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    @staticmethod
    def _stage(delivery: Delivery, entry: ManifestEntry, target: Path) -> Path:
        blob = delivery.blob_path(entry)
        if not blob.is_file():
            raise DeliveryError(f"The embedded store lacks the content of {entry.path!r} ({blob}).", retryable=False)
        return delivery.link_entry(entry, target)

    @staticmethod
    def _upload(task: Any, key: str, source: Path, meta: Mapping[str, str], sha256: str) -> str:
        if not task.upload_artifact(key, artifact_object=source, metadata=dict(meta), wait_on_upload=True):
            raise DeliveryError(f"ClearML refused the artifact {key!r}.", retryable=True)
        art = task.artifacts[key]
        if art.hash and art.hash != sha256:
            raise DeliveryError(f"ClearML recorded digest {art.hash} for {key!r}, expected {sha256}.", retryable=True)
        url = str(art.url)
        if task.is_offline() and not Path(url).is_file():
            raise DeliveryError(f"ClearML did not write {key!r} to its offline session ({url}).", retryable=True)
        return url

    @staticmethod
    def _weights_entry(delivery: Delivery) -> ManifestEntry | None:
        """The file registered as the OutputModel's weights: the saved model, else the largest upload."""
        manifest = delivery.manifest
        if manifest.artifact_type not in MODEL_TYPES:
            return None
        uploads = delivery.uploads()
        if manifest.model is not None:
            return next((e for e in uploads if e.path == manifest.model.path), None)
        return max(uploads, key=lambda e: e.size, default=None)

    def _register_model(self, task: Any, delivery: Delivery, entry: ManifestEntry, index: SessionIndex,
                        staging: Path) -> str:
        """Register the weights as an OutputModel (offline: copied to the session's ``models/``)."""
        manifest, version = delivery.manifest, delivery.version
        stored = index.models.get(entry.digest)
        if stored is not None and stored.meta.get("name") == manifest.name and stored.uri:
            return stored.uri
        from clearml import OutputModel

        class OfflineOutputModel(OutputModel):
            """ClearML 2.1 reads ``published`` from a placeholder model offline and fails; offline models are
            never published, so say so."""

            @property
            def published(self) -> bool:
                return False

        framework = (FRAMEWORKS.get(manifest.model.framework) if manifest.model
                     else EXTENSION_FRAMEWORKS.get(Path(entry.path).suffix.lower()))
        model_cls = OfflineOutputModel if task.is_offline() else OutputModel
        info = {"name": manifest.name, "version": str(version), "path": entry.path, "blob": entry.digest,
                "digest": manifest.digest, "type": manifest.artifact_type.value,
                "aliases": ",".join(self._named_aliases(delivery))}
        tags = list(dict.fromkeys([*self._named_aliases(delivery), f"tracelet-v{version}", *manifest.labels,
                                   f"tracelet-digest:{manifest.digest}"]))
        model = model_cls(task=task, name=manifest.name, framework=framework, tags=tags,
                          comment=manifest.description or "", config_dict={"tracelet": info})
        source = self._stage(delivery, entry, staging / "model" / f"{safe_filename(manifest.name)}.v{version}."
                             f"{Path(entry.path).name}")
        uri = str(model.update_weights(weights_filename=str(source), auto_delete_file=False, update_comment=False))
        self._registered[entry.digest] = StoredFile(f"model:{manifest.name}:v{version}", uri, entry.digest, entry.size,
                                                    info, self._session_folder())
        return uri

    def _register_references(self, task: Any, delivery: Delivery, base: str, common: Mapping[str, str],
                             index: SessionIndex) -> list[dict[str, Any]]:
        """Remote URIs become ClearML link artifacts (nothing uploaded); every reference is kept in the manifest."""
        out: list[dict[str, Any]] = []
        for ref in delivery.references():
            linked = ref.uri.split("://", 1)[0].lower() in LINK_SCHEMES
            if linked:
                key = f"{base}/ref:{ref.uri}"
                if key not in index.files:
                    meta = {**common, "tracelet.kind": "reference", "tracelet.path": ref.path,
                            "tracelet.sha256": ref.digest or "", "tracelet.size": str(ref.size_bytes or "")}
                    if not task.upload_artifact(key, artifact_object=ref.uri, metadata=meta, wait_on_upload=True):
                        raise DeliveryError(f"ClearML refused the link artifact {key!r}.", retryable=True)
            out.append({"path": ref.path, "uri": ref.uri, "size_bytes": ref.size_bytes, "sha256": ref.digest,
                        "link_artifact": linked})
        return out

    # -- reading back -----------------------------------------------------------------------------
    def _reader_index(self) -> SessionIndex:
        with self._lock:
            return self._index(self._task)

    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        """Every version whose manifest artifact a session of this run holds."""
        found = []
        for (name, version), item in sorted(self._reader_index().manifests.items()):
            kind = ArtifactType.parse(item.meta.get("tracelet.type", "custom"))
            if type_filter is not None and kind != ArtifactType.parse(type_filter):
                continue
            holder = item.session.name if item.session is not None else getattr(self._task, "id", "")
            found.append(RemoteArtifact(self.name, name, f"v{version}", kind, item.meta.get("tracelet.digest"),
                                        f"clearml://{holder}/{item.key}", ()))
        return found

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        """Copy a version's files from the ClearML session(s) under ``dest``, verifying every digest."""
        return self._guarded("fetch", lambda: self._fetch(name, version, Path(dest)))

    def _fetch(self, name: str, version: str, dest: Path) -> Path:
        index = self._reader_index()
        numbers = sorted(v for (n, v) in index.manifests if n == name)
        text = str(version).lower().lstrip("v")
        number = numbers[-1] if numbers and text in ("latest", "") else int(text) if text.isdigit() else -1
        if number not in numbers:
            raise ArtifactStoreNotFoundError(f"ClearML holds {name!r} versions {numbers}, not {version!r}.")
        record = json.loads(open_stored(index.manifests[(name, number)], self._task).read_text("utf-8"))
        entries = {e["path"]: e for e in record["manifest"]["entries"]}
        sources: dict[str, StoredFile] = {}
        for path, uri in record["locations"].items():
            owner = next((s for s in self._sessions if uri.startswith(str(s))), None)
            sources[path] = index.files.get(f"{version_key(name, number)}/{path}") or StoredFile(
                path, uri, None, None, {}, owner)
        for ref in record["references"]:  # entries sent as file:// references (large files): copy if reachable
            local = Path(url2pathname(urlparse(ref["uri"]).path)) if ref["uri"].startswith("file://") else None
            if ref["path"] in entries and local is not None and local.is_file():
                sources[ref["path"]] = StoredFile(ref["path"], str(local), None, None, {}, None)
            elif ref["path"] in entries:
                log.warning("%s:v%s/%s is a reference to %s, which is not reachable; not fetched.", name, number,
                            ref["path"], ref["uri"])
        for path, item in sources.items():
            target = dest / validate_artifact_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(open_stored(item, self._task), target)
            if not digest.matches(target, entry_digest(entries[path])):
                target.unlink()
                raise DeliveryError(f"ClearML's copy of {name}:v{number}/{path} does not match its digest.",
                                    retryable=False)
        return dest
