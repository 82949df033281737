"""The ``wandb`` adapter: each version becomes a ``wandb.Artifact`` logged on the W&B run the user opened
(``wandb.run``, joined and never finished here) or on one the adapter starts, named after the experiment;
media types are also logged as ``wandb.Image``/``Audio``/``Video``/``Html`` panels, and models are linked
to a W&B registry collection where the mode allows.

Where the run goes is resolved the way W&B resolves it (``wandb_target``): explicit options, then W&B's own
variables and settings files, then the embedded default (offline, under the store folder). Files are added
to the artifact from the store's blobs as they are (W&B's ``immutable`` policy: no staged second copy).

Offline the SDK cannot read artifacts back, so ``list``/``fetch`` parse the run files (``wandb_runfiles``).
A run file is written out when its run finishes, so versions logged by this process are also kept in
memory. Offline, W&B assigns version numbers at ``wandb sync``; the receipt's ``vN`` is derived the same
way W&B does it: N is the index of the artifact's W&B digest among the distinct digests logged under that
name in this project, in order, across the run files under ``dir``.

Options (``options`` dict; each overrides W&B's own setting of the same value):

- ``project``: W&B project (else ``WANDB_PROJECT`` / W&B's settings files, else the experiment name).
- ``entity``: W&B entity (else ``WANDB_ENTITY`` / settings files, else the account's default online).
- ``mode``: ``"offline"``, ``"online"`` or ``"disabled"`` (else ``WANDB_MODE`` / settings files, else online
  when W&B is logged in, else offline).
- ``dir``: folder under which W&B writes ``wandb/`` (else ``WANDB_DIR``, else the embedded store's root).
- ``run``: an existing ``wandb.Run`` to log into (the adapter then never finishes it).
- ``registry``: where MODEL/CHECKPOINT/WEIGHTS versions are linked, ``<registry>/<artifact name>``
  (default ``wandb-registry-model``; ``""`` links nothing).
- ``settings``: extra ``wandb.Settings`` fields, e.g. ``{"init_timeout": 30, "x_disable_stats": True}``.
- ``media``: log media types as W&B media too (default ``True``).
- ``timeout``: seconds one ``log`` may take before it fails with a retryable error (default 600).
- ``wait_timeout``: seconds to wait for an online artifact commit / a run to finish (default 120).
- ``flush_interval``: offline, seconds between W&B's writes of its run file (W&B's
  ``x_transaction_log_flush_interval``; default 0.2 here, W&B's own is 15). An offline delivery is
  confirmed only once its record is in the run file on disk, so a process killed afterwards loses nothing
  the outbox calls done; a longer interval makes each offline delivery wait longer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import string
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from tracelet_artifacts.artifact import MEDIA_TYPES, MODEL_TYPES, ArtifactType, thaw_json
from tracelet_artifacts.backends import wandb_target, wandb_uses
from tracelet_artifacts.backends.base import (
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
    VersionUse,
)
from tracelet_artifacts.backends.plan import PlannedAdapter
from tracelet_artifacts.backends.wandb_runfiles import (
    META_KEY,
    RunFiles,
    Versions,
    WandbEntry,
    WandbRecord,
    artifact_records,
    copy_record,
    file_path,
    read_run_file,
    wait_for_exit_record,
)
from tracelet_artifacts.backends.wandb_target import WandbPlan, project_name
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, BackendError, DeliveryError

__all__ = ["WandbAdapter", "WandbEntry", "WandbRecord", "artifact_records", "project_name", "read_run_file",
           "wandb_name"]

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_START_S = 30.0
DEFAULT_REGISTRY = "wandb-registry-model"
_NAME_MAX = 128
_TAG = re.compile(r"^[-\w]+( +[-\w]+)*$")
_TRANSIENT_TEXT = re.compile(r"timed out|timeout|retry|retrying|refused|reset by peer|\b(5\d\d|429)\b", re.I)
_TRANSIENT = {"Timeout", "TimeoutError", "ConnectionError", "ConnectError", "HTTPError", "ServiceUnavailable"}
_PERMANENT = {"UsageError", "AuthenticationError", "ValueError", "TypeError", "PermissionError", "FileNotFoundError"}


def wandb_name(name: str) -> str:
    """The W&B artifact name for one of ours: ``/`` becomes ``__``; over 128 characters, a hash suffix."""
    safe = name.replace("/", "__")
    if len(safe) > _NAME_MAX:
        safe = f"{safe[:_NAME_MAX - 13]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return safe


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


def _reference_name(uri: str) -> str:
    """Where an external reference sits inside the W&B artifact: ``references/<scheme>/<host>/<path>``."""
    parsed = urlparse(uri)
    inner = "/".join(p for p in f"{parsed.netloc}/{parsed.path}".split("/") if p not in ("", ".", ".."))
    return f"references/{parsed.scheme}/{inner or 'root'}"


def _media_class(mime: str, suffix: str, kind: ArtifactType) -> str | None:
    """The W&B media class that shows a file in a panel (None: the file is only in the artifact)."""
    if suffix in (".mp4", ".webm", ".ogg", ".gif") and (kind is ArtifactType.VIDEO or mime.startswith("video/")):
        return "Video"
    if mime.startswith(("image/", "audio/")) and mime != "image/svg+xml":
        return "Image" if mime.startswith("image/") else "Audio"
    return "Html" if mime == "text/html" else None


class WandbAdapter(PlannedAdapter):
    """Logs versions as W&B artifacts on one run; lists and fetches them from the run files (offline).

    Example::

        adapter = WandbAdapter()                               # W&B's own settings, else offline in the store
        state = adapter.start_run(RunContext("run-1", "demo", Path(".tracelet")))
        receipt = adapter.log(delivery)                        # receipt.remote_version == "v0"
        adapter.fetch("classifier", "latest", Path("out/"))
    """

    name = "wandb"
    capabilities = Capabilities(model_registry=True, media=True, references=True, aliases=True, versioning=True)

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._run: Any = self.options.get("run")
        self._owns_run = self._run is None
        self._init_kwargs: dict[str, Any] | None = None
        self._context: RunContext | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._logged: list[WandbRecord] = []
        # Offline versions handed to W&B whose record is not in the run file yet:
        # (name, our digest, aliases) -> (record, not_held)
        self._unwritten: dict[tuple[str, Any, tuple[str, ...]], tuple[WandbRecord, dict[str, str]]] = {}
        self._files = RunFiles()
        self._failed_at = float("-inf")

    # -- configuration ----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``online``, ``offline`` or ``disabled``: the run's own mode once there is a run."""
        if self._run is not None and hasattr(self._run, "offline"):
            return "disabled" if getattr(self._run, "disabled", False) else "offline" if self._run.offline \
                else "online"
        if self._plan is not None:
            return self._plan.value("mode") or "offline"
        return str(self.options.get("mode", "offline"))

    def _planned(self, key: str) -> str | None:
        """A value of the run's saved state, else of the resolved plan (None before ``start_run``)."""
        saved = self._context.state.get(key) if self._context is not None else None
        return str(saved) if saved else self._plan.value(key) if self._plan is not None else None

    @property
    def project(self) -> str:
        if self._run is not None and getattr(self._run, "project", None):
            return str(self._run.project)
        if self.options.get("project"):
            return project_name(str(self.options["project"]))
        if planned := self._planned("project"):
            return planned
        raise BackendError("The wandb adapter has no project: call start_run() or pass options={'project': …}.")

    @property
    def wandb_dir(self) -> Path:
        """The folder holding the run folders (``<dir>/wandb``)."""
        if self._run is not None and getattr(self._run, "dir", None):
            return Path(self._run.dir).parent.parent  # <dir>/wandb/<run folder>/files
        base = self.options.get("dir") or self._planned("dir")
        if not base:
            raise BackendError("The wandb adapter has no folder: call start_run() or pass options={'dir': …}.")
        return Path(base) / "wandb"

    def plan(self, run: RunContext) -> WandbPlan:
        """Where this run's data goes (options > W&B's settings or open run > offline under the store)."""
        return wandb_target.resolve(self.option, run.experiment, run.store_root, self.options.get("run"))

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
        """Join the user's open run, or start (from ``run.state["run_id"]``: resume) one named after the
        experiment on the worker; returns at once."""
        self._context = run
        plan = self.start_plan(run)
        if plan.joined is not None:
            self._run, self._owns_run = plan.joined, False
            log.info("W&B: logging into your open run %s.", self._run.id)
            return {"run_id": str(self._run.id), "project": self.project, "dir": plan.value("dir"), "joined": True}
        run_id = str(run.state.get("run_id") or plan.value("run_id") or _new_run_id())
        base, project = str(self._planned("dir")), str(self._planned("project"))
        Path(base).mkdir(parents=True, exist_ok=True)
        self._init_kwargs = {"project": project, "entity": plan.value("entity"), "id": run_id, "dir": base,
                             "mode": plan.value("mode"),
                             "name": None if run.state.get("joined") else plan.value("name"),  # keep the user's
                             "resume": "allow" if run.state.get("run_id") or plan.value("run_id") else None,
                             "reinit": "create_new", "settings": self._wandb_settings()}
        self._background(self._ensure_run, "start the run")
        return {"run_id": run_id, "project": project, "dir": base}

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
        wandb_target.OWN_RUNS.add(str(kwargs["id"]))  # never mistaken for the user's run
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
                wait_for_exit_record(run_file, timeout)

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

    def use_version(self, use: VersionUse) -> None:
        """The run consumed ``use`` (lineage): W&B ``use_artifact`` online; in the run's config either way."""
        self._background(lambda: wandb_uses.record_use(self._ensure_run(retry=False), use,
                                                       artifact_name=wandb_name(use.name),
                                                       online=self.mode == "online"), f"record the use of {use.ref}")

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
        run = self._ensure_run()
        if getattr(run, "disabled", False):
            return self._not_sent(delivery)
        manifest = delivery.manifest
        name = wandb_name(manifest.name)
        versions = self._versions().get(name, Versions())
        aliases, alias_notes = self._aliases(delivery)
        held = versions.holding(manifest.digest)
        if held is not None:  # W&B holds this version: only aliases it lacks (moved in the store) are sent
            aliases = [a for a in aliases if a != "latest" and a not in versions.aliases_of(held.digest)]
            if not aliases:
                label = versions.label(held.digest)
                return self._receipt(delivery, held, label, {**alias_notes, **self._link(run, None, delivery, label)})
            log.info("W&B: moving %s to %s:%s (nothing uploaded).", ", ".join(aliases), name,
                     versions.label(held.digest))
        unwritten = self._unwritten.get((name, manifest.digest, tuple(aliases)))
        if unwritten is not None:  # logged by an earlier attempt that timed out waiting for the run file
            return self._confirmed(run, delivery, *unwritten, versions)
        art, not_held = self._artifact(delivery)
        not_held.update(alias_notes)
        tags = [label for label in manifest.labels if _TAG.match(label)]
        not_held.update({f"label:{label}": "not a valid W&B tag; kept in metadata['tracelet']['labels']"
                         for label in manifest.labels if label not in tags})
        logged = run.log_artifact(art, aliases=aliases, tags=tags)
        if held is None and self.options.get("media", True) and manifest.artifact_type in MEDIA_TYPES:
            not_held.update(self._log_media(run, delivery))
        record = WandbRecord(str(run.id), self.project, str(getattr(run, "entity", "") or ""), name, art.type,
                             art.digest, tuple(aliases), art.metadata,
                             tuple(WandbEntry(e.path, str(e.digest), str(e.ref or ""), int(e.size or 0),
                                              str(e.local_path or "")) for e in art.manifest.entries.values()),
                             manifest.description or "")
        if self.mode == "online":
            logged.wait(timeout=float(self.options.get("wait_timeout", 120)))
            not_held.update(self._link(run, logged, delivery, str(logged.version)))
            with self._lock:
                self._logged.append(record)
            return self._receipt(delivery, record, str(logged.version), not_held)
        label = versions.label(art.digest) if art.digest in versions.records else f"v{len(versions.digests)}"
        not_held.update(self._link(run, logged, delivery, label))
        self._unwritten[(name, manifest.digest, tuple(aliases))] = (record, not_held)
        return self._confirmed(run, delivery, record, not_held, versions)

    def _artifact(self, delivery: Delivery) -> tuple[Any, dict[str, str]]:
        """The ``wandb.Artifact`` of a version: uploads added from the store's blobs as they are (W&B's
        ``immutable`` policy, so nothing is staged twice; a team store's cached blob is staged, since the
        cache may drop it before ``wandb sync``), references as references."""
        import wandb
        from wandb.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry

        manifest = delivery.manifest
        art = wandb.Artifact(wandb_name(manifest.name), type=manifest.artifact_type.value,
                             description=manifest.description, metadata=self._metadata(delivery))
        staged = bool(delivery.blob_uri_prefix) and self.mode != "online"
        policy: Literal["mutable", "immutable"] = "mutable" if staged else "immutable"
        for entry in delivery.uploads():
            art.add_file(str(delivery.blob_path(entry)), name=entry.path, policy=policy, skip_cache=True)
        not_held: dict[str, str] = {}
        for ref in delivery.references():
            local = file_path(ref.uri)
            name = ref.path if ref.path != ref.uri else _reference_name(ref.uri)
            try:
                if local is not None and local.exists():  # W&B checksums a local file (reads it once)
                    art.add_reference(ref.uri, name=name, checksum=True)
                else:  # the entry W&B records unchecksummed, without its cloud client looking up credentials
                    art.manifest.add_entry(ArtifactManifestEntry(path=name, ref=ref.uri, digest=ref.uri))
            except Exception as exc:
                not_held[ref.path] = f"W&B cannot record this reference ({exc}); kept in metadata['tracelet']"
        return art, not_held

    def _link(self, run: Any, logged: Any, delivery: Delivery, label: str) -> dict[str, str]:
        """Online, link a MODEL/CHECKPOINT/WEIGHTS version (``logged``; None: it is linked already) to
        ``<registry>/<name>`` with the store's aliases. Offline W&B cannot link (wandb 0.31 raises
        NotImplementedError, after logging the artifact a second time), so the receipt says what to run after
        ``wandb sync`` instead."""
        registry = str(self.options.get("registry", DEFAULT_REGISTRY) or "")
        if delivery.manifest.artifact_type not in MODEL_TYPES or not registry:
            return {}
        target = f"{registry}/{wandb_name(delivery.manifest.name)}"
        if self.mode == "online":
            if logged is not None:
                run.link_artifact(logged, target, aliases=self._aliases(delivery)[0][2:] or None)
            return {}
        import wandb

        path = f"{self.project}/{wandb_name(delivery.manifest.name)}:{label}"
        folder = self._run_folder(str(run.id))
        return {"registry": f"not linked to {target}: wandb {wandb.__version__} cannot link offline; after "
                            f"`wandb sync {folder}`, link it with wandb.Api().artifact('{path}').link('{target}')"}

    def _not_sent(self, delivery: Delivery) -> Receipt:
        """The receipt when W&B is disabled: nothing uploaded, nothing referenced, every entry not held."""
        source = self._plan.settings["mode"].source if self._plan is not None and "mode" in self._plan.settings \
            else "the run given"
        why = f"W&B is disabled (mode 'disabled' from {source}); nothing was sent"
        paths = [e.path for e in delivery.uploads()] + [r.path for r in delivery.references()]
        return delivery.receipt(self.name, uploaded=(), referenced=(), reference_uris={}, unreachable=(),
                                not_held={**delivery.plan.not_held, **dict.fromkeys(paths, why)})

    def _confirmed(self, run: Any, delivery: Delivery, record: WandbRecord, not_held: dict[str, str],
                   versions: Versions) -> Receipt:
        """The receipt of an offline version once W&B has written its record to the run file (before that
        it is only in wandb-core's memory, and a killed process would lose it)."""
        self._wait_for_record(Path(run.dir).parent / f"run-{run.id}.wandb", record)
        del self._unwritten[(record.name, record.tracelet.get("digest"), record.aliases)]
        with self._lock:
            self._logged.append(record)
        versions.add(record)
        return self._receipt(delivery, record, versions.label(record.digest), not_held)

    def _receipt(self, delivery: Delivery, record: WandbRecord, label: str, not_held: dict[str, str]) -> Receipt:
        prefix = f"{record.entity}/" if record.entity else ""
        if self.mode == "online":  # the run's path on the server
            locator, view = f"{prefix}{record.project}/runs/{record.run_id}", ""
        else:  # the offline run folder that holds the record, and the command that uploads it
            folder = self._run_folder(record.run_id)
            locator, view = (str(folder), f"wandb sync {folder}") if folder is not None else ("", "")
        return delivery.receipt(self.name, remote_id=record.digest, remote_version=label,
                                uri=f"{prefix}{record.project}/{record.name}:{label}",
                                not_held={**delivery.plan.not_held, **not_held}, locator=locator or None,
                                view_command=view or None)

    def _run_folder(self, run_id: str) -> Path | None:
        """The offline folder of run ``run_id`` (the current run's, else the first found under ``dir``)."""
        run = self._run
        if run is not None and str(run.id) == run_id:
            return Path(run.dir).parent
        found = sorted(self.wandb_dir.glob(f"*run-*-{run_id}")) if self.wandb_dir.is_dir() else []
        return found[0] if found else None

    def _metadata(self, delivery: Delivery) -> dict[str, Any]:
        manifest = delivery.manifest
        ours = {"name": manifest.name, "version": delivery.version, "digest": manifest.digest,
                "type": manifest.artifact_type.value, "labels": list(manifest.labels),
                "entries": {e.path: e.digest for e in manifest.entries},
                "descriptions": {e.path: e.description for e in manifest.entries if e.description},
                "references": [r.to_dict() for r in manifest.references],
                "model": manifest.model.to_dict() if manifest.model else None}
        return {**thaw_json(manifest.metadata), META_KEY: ours}

    @staticmethod
    def _aliases(delivery: Delivery) -> tuple[list[str], dict[str, str]]:
        """``latest``, ``tracelet-v<N>`` and the store's aliases of this version, and the notes for those W&B
        cannot hold."""
        wanted = list(dict.fromkeys(["latest", f"tracelet-v{delivery.version}", *delivery.aliases]))
        bad = {f"alias:{a}": "W&B aliases cannot hold '/' or ':'" for a in wanted if set(a) & set("/:")}
        return [a for a in wanted if f"alias:{a}" not in bad], bad

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
        run = self._run
        found = self._files.scan(self.wandb_dir, Path(run.dir).parent if run is not None and self._owns_run else None)
        seen = {(r.run_id, r.name, r.digest, frozenset(r.aliases) - {"latest"}) for r in found}
        with self._lock:
            found += [r for r in self._logged
                      if (r.run_id, r.name, r.digest, frozenset(r.aliases) - {"latest"}) not in seen]
        return [r for r in found if r.project == self.project]

    def _wait_for_record(self, run_file: Path, record: WandbRecord) -> None:
        """Wait until ``record`` (same name, W&B digest and aliases) is written in ``run_file``; a retryable
        DeliveryError after ``wait_timeout`` seconds (the delivery stays in the outbox and waits again)."""
        timeout = float(self.options.get("wait_timeout", 120))
        deadline = time.monotonic() + timeout
        while not (run_file.is_file() and any(r.name == record.name and r.digest == record.digest
                                               and set(record.aliases) <= set(r.aliases)
                                               for r in self._files.parse(run_file))):
            if time.monotonic() >= deadline:
                raise DeliveryError(f"W&B has not written {record.name} to {run_file} within {timeout:.0f} s; "
                                    "the delivery stays in the outbox and is confirmed once it is there.",
                                    retryable=True)
            time.sleep(0.02)

    def _versions(self) -> dict[str, Versions]:
        grouped: dict[str, Versions] = {}
        for record in self.records():
            grouped.setdefault(record.name, Versions()).add(record)
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
        return copy_record(self.find(name, version), Path(dest), f"{name}:{version}")

