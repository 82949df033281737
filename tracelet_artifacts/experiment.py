"""Experiment: the user-facing run. Creates, logs, gets and lists artifacts; passes params and metrics on.

``log_artifact`` is the write path, top to bottom, with plain data between the steps: ``freeze`` the
builder, ``store.ingest`` its content (blobs in place, nothing visible), ``router.plan`` where it goes,
``store.commit`` the version with its outbox rows (one transaction), ``delivery.submit`` to the background
workers. It returns at once; backends receive the artifact in the background.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tracelet_artifacts import repair
from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact, freeze
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import BackendAdapter, RemoteArtifact, VersionUse
from tracelet_artifacts.delivery import (
    DeliveryQueue,
    FlushResult,
    ProgressFn,
    RetryPolicy,
    open_adapters,
    start_adapter,
    sync_outbox,
)
from tracelet_artifacts.errors import (
    ArtifactStoreNotFoundError,
    BackendNotInstalledError,
    BlobsCollectedError,
    ConfigurationError,
    TraceletError,
)
from tracelet_artifacts.frameworks import framework_available
from tracelet_artifacts.hooks.rank import global_rank
from tracelet_artifacts.procs import owner_is_dead, process_owner
from tracelet_artifacts.routing import LOCAL, RoutePlan, RoutingPolicy
from tracelet_artifacts.settings import ExperimentConfig, TraceletSettings, option_sources
from tracelet_artifacts.stats import ArtifactManagerView, ArtifactStats, collect_stats
from tracelet_artifacts.status import await_deliveries
from tracelet_artifacts.store import objects
from tracelet_artifacts.store.catalog import LATEST
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.lineage import USE_ARTIFACT
from tracelet_artifacts.store.version_names import label_of_name
from tracelet_artifacts.values import ArtifactVersion, Receipt

log = logging.getLogger(__name__)


def _backend_list(backend: str | Sequence[str] | None, settings: TraceletSettings) -> list[str]:
    names = [backend] if isinstance(backend, str) else list(backend or settings.backends)
    out: list[str] = []
    for name in names:
        if name not in out and name != LOCAL:
            out.append(name)
    for name in out:
        if not registry.is_installed(name):  # raises UnknownBackendError for unknown names
            spec = registry.known()[name]
            raise BackendNotInstalledError(
                f"The {name} backend needs the {spec.sdk} package: {spec.install or f'pip install {spec.sdk}'}"
            )
    return out


class Experiment:
    """One tracked run whose artifacts are versioned locally and delivered to its backends.

    Example::

        with Experiment("run-1", backend=["mlflow"]) as exp:
            art = exp.create_artifact("classifier", ArtifactType.MODEL)
            art.add_file("model.pth", "model/classifier.pth")
            exp.log_artifact(art)           # {"mlflow": Receipt(status="pending"), "local": Receipt(status="done")}
    """

    def __init__(
        self,
        name: str,
        backend: str | Sequence[str] | None = None,
        artifacts: bool | None = None,
        automagic_artifacts: bool | None = None,
        config: ExperimentConfig | Mapping[str, Any] | None = None,
        *,
        settings: TraceletSettings | None = None,
    ) -> None:
        settings = settings or TraceletSettings()
        if config is not None:
            config = config if isinstance(config, ExperimentConfig) else ExperimentConfig(**dict(config))
            settings = config.apply(settings)
        explicit = {"enable_artifacts": artifacts, "automagic_artifacts": automagic_artifacts}
        self.settings = settings.model_copy(update={k: v for k, v in explicit.items() if v is not None})
        self.name = name
        self.backends = _backend_list(backend, self.settings)
        self.run_id = uuid.uuid4().hex
        self._store: EmbeddedStore | None = None
        self._queue: DeliveryQueue | None = None
        self._policy: RoutingPolicy | None = None
        self._adapters: dict[str, BackendAdapter] = {}
        self._ingest: ThreadPoolExecutor | None = None
        # Back-pressure for submit_artifact: at most submit_queue_max artifacts handed over and not yet stored.
        self._ingest_slots = threading.BoundedSemaphore(self.settings.submit_queue_max)
        self._automagic: Any = None  # hooks.automagic.AutomagicHandle while automagic capture is on
        self._reader_warned = False
        self._primary: bool | None = None  # this process's role, fixed by start()
        self._read_store: EmbeddedStore | None = None  # what reads open before start() and after stop()

    def __repr__(self) -> str:
        state = "running" if self._store else "stopped"
        return f"Experiment({self.name!r}, backends={self.backends}, run_id={self.run_id[:8]}, {state})"

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def store(self) -> EmbeddedStore:
        """The embedded store of this experiment (opened by ``start``)."""
        if self._store is None:
            raise TraceletError(
                f"Experiment {self.name!r} is not started; call start() or use it as a context manager."
            )
        return self._store

    @property
    def started(self) -> bool:
        return self._store is not None

    def start(self) -> Experiment:
        """Open the store, start each backend's run and the delivery workers."""
        if self._store is not None:
            return self
        self._close_read_store()
        self._primary = self._writes_here()
        if not self._primary:
            return self._start_reader()
        store = EmbeddedStore.from_settings(self.settings)
        store.outbox.add_run(self.run_id, self.name, process_owner())
        sources = option_sources(self.settings.backend_options)
        self._adapters, errors = open_adapters(store, self.run_id, self.name, self.backends,
                                               self.settings.backend_options, sources)
        available = {LOCAL: registry.adapter_class(LOCAL).capabilities}
        available.update({n: a.run_capabilities for n, a in self._adapters.items()})
        for name in errors:  # keep routing to a backend that failed to start: its deliveries wait in the outbox
            available[name] = registry.adapter_class(name).capabilities
        self._policy = RoutingPolicy(available, threshold_bytes=self.settings.reference_threshold_bytes,
                                     overrides=self.settings.routing, blob_scheme=store.blobs.scheme)
        retry = RetryPolicy(self.settings.delivery_max_attempts, self.settings.delivery_backoff_s,
                            self.settings.delivery_backoff_max_s)
        late = {name: functools.partial(start_adapter, store, self.run_id, self.name, name,
                                        self.settings.backend_options.get(name), sources.get(name))
                for name in errors}
        self._queue = DeliveryQueue(store, self._adapters, run_id=self.run_id, retry=retry, late=late)
        self._adapters = self._queue.adapters  # one view: a backend that starts late joins it
        self._queue.start()
        self._ingest = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracelet-ingest")
        self._store = store
        self._recover_earlier_runs(store)
        if self.settings.automagic_artifacts or self.settings.watch_filesystem:  # a named folder is watched alone
            from tracelet_artifacts.hooks import automagic

            self._automagic = automagic.enable(self, frameworks=self.settings.automagic_artifacts)
        return self

    def _reads(self) -> EmbeddedStore | None:
        """The store reads go to: the running one, else the settings' store opened for reading (before
        ``start()``, after ``stop()``); None when no store exists there yet (reading creates none)."""
        if self._store is not None:
            return self._store
        if self._read_store is None:
            local = self.settings.catalog_url is None
            if local and not (Path(self.settings.store_path) / "catalog.db").is_file():
                return None
            self._read_store = EmbeddedStore.from_settings(self.settings)
        return self._read_store

    def _get(self, name: str, version: str | int) -> tuple[EmbeddedStore, ArtifactVersion]:
        store = self._reads()
        if store is None:
            raise ArtifactStoreNotFoundError(f"No artifact named {name!r}: nothing has been logged into "
                                             f"{Path(self.settings.store_path).absolute()} yet.")
        return store, store.get(name, version)

    def _close_read_store(self) -> None:
        if self._read_store is not None:
            self._read_store.close()
            self._read_store = None

    def _recover_earlier_runs(self, store: EmbeddedStore) -> None:
        """Deliver, in the background, what runs of stopped or killed processes left in the outbox."""
        leftovers = [r for r, owner, _ in store.outbox.runs_with_outstanding()
                     if r != self.run_id and (owner is None or owner_is_dead(owner))]
        if not leftovers:
            return
        log.info("Delivering %d earlier run(s)' pending artifacts in the background.", len(leftovers))
        options = self.settings.backend_options
        threading.Thread(target=self._sync_quietly, args=(store, options), name="tracelet-recover",
                         daemon=True).start()

    @staticmethod
    def _sync_quietly(store: EmbeddedStore, options: Mapping[str, Mapping[str, Any]]) -> None:
        # Its own store handle: stop() closing the experiment's store must not pull it from under this thread.
        own = store.reopen()
        try:
            sync_outbox(own, options, timeout=600)
        except Exception:
            log.exception("Delivering earlier runs' artifacts failed; `tracelet-artifacts sync` retries.")
        finally:
            own.close()

    def flush(self, timeout: float | None = None, progress: ProgressFn | None = None) -> FlushResult:
        """Wait until the run's versions are durable and its deliveries done (or failed for good), or ``timeout``
        passes; keep running."""
        if self._queue is None and self._store is not None:  # a reader rank delivers nothing
            return FlushResult(0, 0, 0)
        if self._queue is None:
            raise TraceletError(f"Experiment {self.name!r} is not started; call start() first.")
        if self._ingest is not None:  # artifacts handed over with submit_artifact come first
            self._ingest.submit(lambda: None).result()
        limit = self.settings.flush_timeout_s if timeout is None else timeout
        result = self._queue.flush(limit, progress)
        if not self.store.wait_durable(limit):
            log.warning("flush(): versions of %s are committed but not yet durable after %.0f s (their blobs are "
                        "still being synced).", self.name, limit)
        return result

    def stop(self, timeout: float | None = None, progress: ProgressFn | None = None) -> FlushResult | None:
        """Flush deliveries (up to ``timeout``, default from settings), close backend runs and the store.

        When the wait lasts more than about a second, a bar on stderr shows the bytes delivered, the rate and
        what is left (not when stderr is not a terminal, or with the ``progress`` setting off)."""
        if self._store is not None and self._queue is None:  # a reader rank: only the store is open
            self._store.close()
            self._store = None
            return None
        if self._store is None or self._queue is None:
            return None
        if self._automagic is not None:  # producers first: the watcher's last sweep still reaches the ingest pool
            self._automagic.disable()
            self._automagic = None
        if self._ingest is not None:
            self._ingest.shutdown(wait=True)
            self._ingest = None
        from tracelet_artifacts.terminal import DeliveryBar

        with DeliveryBar(quiet=not self.settings.progress) as bar:
            result = self._queue.close(self.settings.flush_timeout_s if timeout is None else timeout, progress,
                                       lambda counts: bar.update(counts, f"{self.name}: delivering"))
        for adapter in self._adapters.values():
            try:
                adapter.end_run()
            except Exception:
                log.exception("Closing the %s run failed", adapter.name)
        self._store.outbox.end_run(self.run_id)
        self._store.close()
        self._store, self._queue = None, None
        return result

    def __enter__(self) -> Experiment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- artifacts --------------------------------------------------------------------------------
    def create_artifact(
        self, name: str, artifact_type: ArtifactType | str, description: str | None = None
    ) -> TraceletArtifact:
        """A new artifact builder (log it with ``log_artifact``)."""
        return TraceletArtifact(name, artifact_type, description)

    def plan(self, artifact: TraceletArtifact) -> RoutePlan:
        """Where ``artifact`` would go, without logging it."""
        if self._policy is None:
            raise TraceletError("Call start() before planning artifacts.")
        return self._policy.plan(artifact.freeze())

    def log_artifact(
        self, artifact: TraceletArtifact, *, version: int | str | None = None, aliases: Iterable[str] = ()
    ) -> dict[str, Receipt]:
        """Store the artifact and queue it for its backends; returns a receipt per backend.

        ``version``: None for the next number, a number, or a version name such as ``"1.2.0"`` (immutable,
        like the number; other content under an existing name is a VersionConflictError); a builder's own
        ``version`` is used when none is given here. The ``local`` receipt is done at once; remote ones are
        ``pending`` (or ``done`` when this run already delivered identical content). Backend trouble never
        raises here.
        """
        if not self.settings.enable_artifacts:
            log.info("Artifacts are disabled (enable_artifacts=False); %s not logged.", artifact.name)
            return {}
        if not self.primary:
            self._refuse_on_reader(artifact.name)
            return {}
        store, router, delivery = self.store, self._policy, self._queue
        assert router is not None and delivery is not None
        frozen = freeze(artifact)                                                   # 1. builder → frozen content
        wanted = artifact.version if version is None else version
        staged = store.ingest(frozen, version=wanted, aliases=aliases)              # 2. blobs in place, unseen
        plan = router.plan(staged.manifest)                                         # 3. where it goes, as data
        try:
            record = store.commit(staged, run_id=self.run_id, deliveries=plan.deliveries())  # 4. version + outbox
        except BlobsCollectedError:  # a concurrent gc took a blob between 2 and 4: store them again, pinned
            with store.pinned(staged.manifest):
                staged = store.ingest(frozen, version=version, aliases=aliases)
                record = store.commit(staged, run_id=self.run_id, deliveries=plan.deliveries())
        return delivery.submit(record, plan)                                        # 5. workers take it from there

    def submit_artifact(
        self, artifact: TraceletArtifact, *, aliases: Iterable[str] = ()
    ) -> Future[dict[str, Receipt]]:
        """Log ``artifact`` on a background thread (hashing and copying included); returns a Future.

        Producers that must not slow the caller (hooks, the watcher) use this; ``stop()`` waits for it.
        A failure is logged and kept in the Future, never raised into the caller. At most
        ``submit_queue_max`` artifacts wait to be stored: past that, the caller blocks until one is
        stored (back-pressure, so a burst cannot grow memory without bound).
        """
        ingest = self._ingest
        if ingest is None and self._store is not None and not self.primary:
            self._refuse_on_reader(artifact.name)
            done: Future[dict[str, Receipt]] = Future()
            done.set_result({})
            return done
        if ingest is None:
            raise TraceletError(f"Experiment {self.name!r} is not started; call start() first.")
        wanted = tuple(aliases)

        def run() -> dict[str, Receipt]:
            try:
                return self.log_artifact(artifact, aliases=wanted)
            except Exception:
                log.exception("Background logging of %s failed", artifact.name)
                raise

        if not self._ingest_slots.acquire(blocking=False):
            log.info("%d artifacts are waiting to be stored; %s waits for room (submit_queue_max).",
                     self.settings.submit_queue_max, artifact.name)
            self._ingest_slots.acquire()
        try:
            future = ingest.submit(run)
        except RuntimeError as exc:  # stop() shut the ingest thread down while this caller waited
            self._ingest_slots.release()
            raise TraceletError(f"Experiment {self.name!r} stopped before {artifact.name} could be stored; "
                                "submit artifacts before stop().") from exc
        future.add_done_callback(lambda _: self._ingest_slots.release())
        return future

    def _await_deliveries(self, backend: str, name: str | None, wait: float | None) -> None:
        """Before a read through ``backend``: wait (up to ``wait``, default ``read_wait_s``) until this run's
        deliveries of ``name`` (or of everything) to it are done; say so when one is pending or failed."""
        self._adapter(backend)  # raises when the backend is not running here
        assert self._queue is not None
        await_deliveries(self.store.outbox, backend, name, self.run_id,
                         self.settings.read_wait_s if wait is None else wait, wake=self._queue.wake)

    def get_artifact(
        self, name: str, version: str | int = LATEST, backend: str | None = None, *, wait: float | None = None,
        use: bool = False,
    ) -> ArtifactVersion | RemoteArtifact:
        """A version from the embedded store (default) or as a backend lists it.

        Through a backend, this run's pending deliveries of ``name`` to it are waited for first (up to
        ``wait`` seconds, default the ``read_wait_s`` setting): DeliveryPendingError if one is still
        pending, DeliveryError if it failed. ``use=True`` also records that this run consumed the version
        (as ``use_artifact`` does).
        """
        self._settle_submitted()
        if use:
            self.use_artifact(name, version)
        if backend in (None, LOCAL):
            return self._get(name, version)[1]
        self._await_deliveries(backend, name, wait)
        wanted = f"v{version}" if str(version).isdigit() else str(version)  # adapters list versions as "v3"
        store = self._reads()
        if store is not None:  # a version name ("1.2.0"): backends list the version by its number
            wanted = label_of_name(store.db, name, wanted) or wanted
        items = [item for item in self._adapter(backend).list() if item.name == name]
        for item in items:
            if wanted == item.version or wanted in item.aliases:
                return item
        numbered = [item for item in items if item.version[1:].isdigit()]
        if wanted == LATEST and numbered:  # no "latest" alias on this backend: the highest version
            return max(numbered, key=lambda item: int(item.version[1:]))
        raise ArtifactStoreNotFoundError(f"{backend} holds no {name!r} at {wanted!r}.")

    def fetch_artifact(
        self, name: str, version: str | int = LATEST, dest: str | Path = ".", backend: str | None = None,
        *, wait: float | None = None,
    ) -> Path:
        """Download a version's files under ``dest`` (from the embedded store, or through a backend).

        From the embedded store every digest is checked; a missing or corrupt blob is re-fetched from a
        backend that received the version, checked and repaired (with a warning in the log) before it is
        served. IntegrityError when no backend holds a sound copy: bad bytes are never written.
        """
        self._settle_submitted()
        if backend in (None, LOCAL):
            repair.fetch_verified(self._get(name, version)[0], name, version, dest, self._adapters,
                                  options=self.settings.backend_options)
            return Path(dest)
        self._await_deliveries(backend, name, wait)
        return self._adapter(backend).fetch(name, str(version), Path(dest))

    def load_object(
        self, name: str, object_name: str, version: str | int = LATEST, *, allow_pickle: bool = False
    ) -> Any:
        """An object logged with ``add_object``, read back from the embedded store (``"hparams"`` or
        ``"hparams.json"``). Pickled objects, and torch files holding more than tensors, are refused with
        UnsafeLoadError unless ``allow_pickle=True``: unpickling runs whatever code the file carries."""
        self._settle_submitted()
        store, record = self._get(name, version)
        return objects.load_object(record, object_name, lambda key: store.blob_path(key).read_bytes(),
                                   allow_pickle=allow_pickle)

    def list_artifacts(
        self, type_filter: ArtifactType | str | None = None, backend: str | None = None, *,
        wait: float | None = None,
    ) -> list[ArtifactVersion] | list[RemoteArtifact]:
        """The latest version of each artifact (embedded store), or what a backend lists (after this run's
        deliveries to it, waited for as ``get_artifact`` does)."""
        wanted = ArtifactType.parse(type_filter) if type_filter is not None else None
        self._settle_submitted()
        if backend in (None, LOCAL):
            store = self._reads()
            return [] if store is None else store.catalog.search(artifact_type=wanted, latest_only=True)
        self._await_deliveries(backend, None, wait)
        return self._adapter(backend).list(wanted)

    def search_artifacts(
        self, *, type_filter: ArtifactType | str | None = None, labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None, prefix: str | None = None, contains: str | None = None,
        all_versions: bool = False,
    ) -> list[ArtifactVersion]:
        """Versions in the embedded store matching every filter given: type, all ``labels``, ``metadata``
        key=value, a name ``prefix`` or a part it ``contains``; the latest of each name unless ``all_versions``."""
        self._settle_submitted()
        store = self._reads()
        if store is None:
            return []
        return store.catalog.search(artifact_type=type_filter, labels=labels, metadata=metadata, prefix=prefix,
                                    contains=contains, latest_only=not all_versions)

    def artifact_stats(self) -> ArtifactStats:
        """Versions this run logged, and per backend how many were delivered, are pending or failed (with
        the last error), plus the store's outbox depth. ``print(exp.artifact_stats())`` reads as one line."""
        return collect_stats(self._reads(), self.run_id, self.backends, enabled=self.settings.enable_artifacts,
                             reference_threshold_mb=self.settings.reference_threshold_mb)

    @property
    def _artifact_manager(self) -> ArtifactManagerView:
        """Tracelet's name, kept so its troubleshooting snippet runs: ``exp._artifact_manager.get_stats()``."""
        return ArtifactManagerView(self.artifact_stats)

    _is_framework_available = staticmethod(framework_available)  # Tracelet's name for framework_available

    def _adapter(self, backend: str) -> BackendAdapter:
        self.store  # noqa: B018 - raises when not started
        if backend not in self._adapters:
            raise ConfigurationError(
                f"Backend {backend!r} is not running in this experiment "
                f"(running: {', '.join(self._adapters) or 'none'})."
            )
        return self._adapters[backend]

    # -- lineage ----------------------------------------------------------------------------------
    def use_artifact(self, name: str, version: str | int = LATEST, *, how: str = USE_ARTIFACT) -> ArtifactVersion:
        """Record that this run consumed ``name`` at ``version`` (a number or an alias) and return that version.

        Every version this run logs afterwards lists it among its inputs (``tracelet-artifacts lineage``);
        backends that keep lineage get it too (W&B ``use_artifact``, MLflow dataset inputs), in the background.
        """
        self._settle_submitted()
        record = self.store.get(name, version)
        self._record_use(record, how, time.time())
        return record

    def use_file(self, path: str | Path, *, how: str) -> Future[ArtifactVersion | None]:
        """(``CapturePort``) Record that this run read a file, if the store holds its content: found by the
        file's identity (a file it stored, or a hard link to one) or its digest, on the ingest thread (in
        order with what is being logged). The Future holds the version, or None when the store does not
        know the file; it never raises into the caller."""
        when, target = time.time(), Path(path)
        ingest = self._ingest
        if ingest is None:  # not started, or a reader rank: nothing is recorded
            done: Future[ArtifactVersion | None] = Future()
            done.set_result(None)
            return done

        def find() -> ArtifactVersion | None:
            try:
                record = self.store.lineage.version_of_file(target)
                if record is not None:
                    self._record_use(record, how, when)
                return record
            except Exception:
                log.exception("Recording that this run read %s failed", target)
                return None

        return ingest.submit(find)

    def _record_use(self, record: ArtifactVersion, how: str, when: float) -> None:
        if not self.primary:
            return
        if not self.store.lineage.record_use(self.run_id, record, how=how, when=when):
            return  # this run had recorded it already
        receipts = {str(r.get("backend")): r for r in self.store.outbox.receipts(record.name, record.version)}
        use = VersionUse(record.name, record.version, record.digest, record.artifact_type, how, record.aliases,
                         receipts)
        for backend in self.backends:
            self._background(backend, f"use {record.ref}", functools.partial(self._send, backend, "use_version", use))

    # -- params and metrics -----------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Send hyper-parameters to every backend, in the background (never blocks, never raises).

        A backend whose run has not started yet receives them once it starts.
        """
        values = dict(params)
        for backend in self.backends:
            self._background(backend, "log_params", functools.partial(self._send, backend, "log_params", values))

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Send one metric value to every backend, in the background (never blocks, never raises)."""
        for backend in self.backends:
            self._background(backend, f"log_metric({name})",
                             functools.partial(self._send, backend, "log_metric", name, value, step))

    def _send(self, backend: str, method: str, *args: Any) -> None:
        """Call an adapter method (on its worker thread); the adapter is looked up then, so a late start counts."""
        getattr(self._adapters[backend], method)(*args)

    def _background(self, backend: str, what: str, func: Callable[[], None]) -> None:
        if self._queue is None and self._store is not None:  # a reader rank sends nothing
            return
        if self._queue is None:
            raise TraceletError(f"Experiment {self.name!r} is not started; call start() first.")
        self._queue.call(backend, what, func)

    # -- ranks, and the port automatic producers use (hooks.port.CapturePort) -----------------------
    @property
    def primary(self) -> bool:
        """Whether this process writes: global rank 0 of a distributed job, or every rank with ``capture_all_ranks``.

        Any other rank is a reader, as Lightning's loggers are off rank 0: ``start()`` opens the store for
        reads but no backend run and no capture; ``log_artifact``, ``log_params`` and ``log_metric`` do
        nothing there (said once in the log). The role is fixed when the experiment starts.
        """
        return self._primary if self._primary is not None else self._writes_here()

    def _writes_here(self) -> bool:
        return self.settings.capture_all_ranks or global_rank() == 0

    @property
    def capturing(self) -> bool:
        """True while started on a process that creates versions."""
        return self._queue is not None

    @property
    def capture_root(self) -> Path:
        """The store's folder (producers stage files under it)."""
        return self.store.root

    def tag_version(
        self, name: str, version: int, *, alias: str | None = None, labels: Iterable[str] = ()
    ) -> None:
        """Point ``alias`` at ``name``'s ``version`` and add ``labels`` to it."""
        catalog = self.store.catalog
        if alias is not None:
            catalog.set_alias(name, alias, version)
        wanted = list(labels)
        if wanted:
            catalog.add_labels(name, version, wanted)

    def _start_reader(self) -> Experiment:
        self._store = EmbeddedStore.from_settings(self.settings)
        log.info("Experiment %s on global rank %d reads the store only: rank 0 opens the backend runs and "
                 "logs (set capture_all_ranks=True to log from every rank).", self.name, global_rank())
        return self

    def _refuse_on_reader(self, what: str) -> None:
        level = logging.DEBUG if self._reader_warned else logging.WARNING
        self._reader_warned = True
        log.log(level, "%s is not logged on global rank %d: only rank 0 logs (capture_all_ranks=True logs from "
                       "every rank).", what, global_rank())

    def _settle_submitted(self) -> None:
        """Read your writes: wait until what was handed to ``submit_artifact`` before this read is stored."""
        ingest = self._ingest
        if ingest is None or threading.current_thread().name.startswith("tracelet-ingest"):
            return  # on the ingest thread itself (a done-callback), waiting would wait for ourselves
        with contextlib.suppress(RuntimeError):  # stop() shut it down meanwhile, after waiting for it
            ingest.submit(lambda: None).result()
