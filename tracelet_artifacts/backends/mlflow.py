"""The ``mlflow`` adapter: artifact versions as files of an MLflow run, models in the MLflow model registry.

The target is resolved the way MLflow resolves it (``mlflow_target``): explicit options > MLflow's own
configuration (``MLFLOW_TRACKING_URI`` / ``mlflow.set_tracking_uri``, the registry URI, the experiment,
the run the user already opened) > the embedded default ``sqlite:///<store>/mlflow.db``. One
``MlflowClient`` on that URI does every call (never the fluent API's global state). Version N of ``NAME``
goes to ``NAME/vN/<path>`` of the run, plus ``NAME/vN.references.json`` and ``NAME/vN.tracelet.json`` (the
manifest) and ``tracelet.*`` run tags, the digest tag ``tracelet.artifact/NAME/vN`` last (it makes
re-delivery a no-op); a MODEL version is registered (``mlflow_models``). docs/backends/mlflow.md has the
details.

Options (``backend_options["mlflow"]``), each overriding MLflow's own setting:

* ``tracking_uri``, ``registry_uri`` — default: MLflow's (``mlflow.get_tracking_uri()`` when one is set),
  else ``sqlite:///<store_root>/mlflow.db``.
* ``experiment_name`` — default: ``mlflow.set_experiment()``, ``MLFLOW_EXPERIMENT_NAME`` / ``_ID``, else the
  tracelet experiment's name; ``run_name`` — default the tracelet experiment's name.
* ``artifact_location`` — for a new experiment; default ``<store_root>/mlflow-artifacts`` with the embedded
  default (or a database ``tracking_uri`` option), MLflow's (or the server's) default otherwise.
* ``client`` (an ``MlflowClient``) and ``run_id`` — use this client / log into this existing run (never ended).
* ``register_models`` — default True; ``model_names`` — ``{artifact name: registered model name}``.
* ``http_timeout_s``, ``http_max_retries``, ``http_backoff_factor`` — when given, set MLflow's
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``_MAX_RETRIES`` / ``_BACKOFF_FACTOR`` (process-wide: MLflow reads
  only these environment variables) so a down server fails fast with a retryable DeliveryError.
* ``async_metrics`` — default True: ``log_params``/``log_metric`` queue and return at once, a background
  thread sends them (retrying while MLflow is down); False sends at the call and raises DeliveryError.
* ``metrics_flush_timeout_s`` — default 30: how long ``end_run`` waits for queued params/metrics.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import MODEL_TYPES, ArtifactType, thaw_json, validate_artifact_path
from tracelet_artifacts.backends import mlflow_inputs
from tracelet_artifacts.backends.base import (
    BackendAdapter,
    BackendTarget,
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
    VersionUse,
)
from tracelet_artifacts.backends.mlflow_metrics import BatchSender, checked_key, flatten
from tracelet_artifacts.backends.mlflow_models import ModelRegistry, model_name, user_aliases
from tracelet_artifacts.backends.mlflow_target import (
    MlflowResolution,
    is_local_uri,
    is_server,
    resolve,
    run_locator,
    scheme_of,
)
from tracelet_artifacts.errors import (
    ArtifactStoreNotFoundError,
    DeliveryError,
    IntegrityError,
    TraceletError,
)
from tracelet_artifacts.redact import redact_text, redact_url
from tracelet_artifacts.values.manifest import entry_digest

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

ARTIFACT_TAG = "tracelet.artifact/"
RUN_TAG = "tracelet.run_id"
MAX_TAG_VALUE = 8000  # MLflow's run tag value limit
#: Files of one version uploaded at once (MLflow's own log_artifacts sends them one after another).
UPLOAD_THREADS = 4
_HTTP_ENV = {"http_timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT", "http_max_retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
             "http_backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"}
#: Tracking stores MLflow keeps on this machine's filesystem (its artifacts may be too).
_LOCAL_TRACKING = ("sqlite", "file", "")


def _version_number(text: str | int) -> int | None:
    """``3``, ``"3"`` or ``"v3"`` → 3; anything else (an alias) → None."""
    value = str(text).strip()
    value = value[1:] if value[:1] in ("v", "V") else value
    return int(value) if value.isdigit() else None


def _is_transient(exc: BaseException) -> bool:
    """Connection trouble, timeouts and 5xx are transient; MLflow's 4xx answers are permanent."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        status = exc.get_http_status_code()
        return not (400 <= status < 500) or status in (408, 429)
    return isinstance(exc, (OSError, TimeoutError, ConnectionError)) or type(exc).__module__.startswith(
        ("requests", "urllib3"))


@contextmanager
def _backend_errors(action: str) -> Iterator[None]:
    """Translate MLflow / HTTP / OS errors into DeliveryError, retryable when transient."""
    try:
        yield
    except TraceletError:
        raise
    except Exception as exc:
        retryable = _is_transient(exc)
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        error = DeliveryError(f"MLflow {action} failed ({'will retry' if retryable else 'permanent'}): {detail}",
                              retryable=retryable)
        if detail != f"{type(exc).__name__}: {exc}":  # the SDK's own message quotes a password: do not chain it
            raise error from None
        raise error from exc


class MlflowAdapter(BackendAdapter):
    """Logs artifact versions into an MLflow run (and MODEL versions into the registry); lists and fetches them.

    Example::

        adapter = MlflowAdapter({"tracking_uri": "sqlite:///runs/mlflow.db"})
        state = adapter.start_run(RunContext("run-1", "demo", Path("runs")))   # {"run_id": ..., ...}
        receipt = adapter.log(delivery)                                          # files under NAME/vN/
        adapter.fetch("classifier", "latest", Path("out"))
    """

    name = "mlflow"
    capabilities = Capabilities(model_registry=True, media=False, references=True, aliases=True, versioning=True)

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._client_obj: MlflowClient | None = self.options.get("client")
        self._store_root: Path | None = None
        self._resolved: MlflowResolution | None = None
        self._experiment_id: str | None = None
        self._run_id: str | None = None
        self._owns_run = False
        self._artifact_uri: str | None = None
        self._sender: BatchSender | None = None
        self._models: ModelRegistry | None = None

    # -- where the data goes ----------------------------------------------------------------------
    def resolve_target(self, run: RunContext) -> BackendTarget:
        """The tracking/registry URIs, experiment and run to join, each with its source (no run is opened)."""
        return self._resolution_for(run.experiment, Path(run.store_root), run.state).target()

    def _resolution_for(self, experiment: str, store_root: Path | None,
                        state: Mapping[str, Any] | None) -> MlflowResolution:
        return resolve(self.options, self.option, experiment, store_root, state)

    @property
    def resolution(self) -> MlflowResolution:
        """The target this adapter uses (resolved at ``start_run``; from the options and MLflow's settings before)."""
        if self._resolved is None:
            self._resolved = self._resolution_for(str(self.options.get("experiment_name") or ""), self._store_root, {})
        return self._resolved

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient this adapter uses (created on first use, on the resolved URIs)."""
        if self._client_obj is None:
            for key, env in _HTTP_ENV.items():  # MLflow parses these as whole numbers
                if self.options.get(key) is not None:
                    os.environ[env] = str(max(int(key == "http_timeout_s"), round(float(self.options[key]))))
            from mlflow.tracking import MlflowClient

            resolved = self.resolution
            if not resolved.tracking.value:
                raise DeliveryError("The mlflow adapter has no tracking URI: call start_run(), set MLFLOW_TRACKING_URI "
                                    "or pass options={'tracking_uri': ...}.", retryable=False)
            with _backend_errors("client setup"):
                self._client_obj = MlflowClient(tracking_uri=resolved.tracking.value,
                                                registry_uri=resolved.registry.value)
        return self._client_obj

    @property
    def models(self) -> ModelRegistry:
        """The model registry side of this adapter (registered versions, logged models, aliases)."""
        if self._models is None:
            resolved = self.resolution
            same_server = is_server(resolved.tracking.value) and resolved.registry.value == resolved.tracking.value
            self._models = ModelRegistry(self.client, self.options, self._scratch, model_uri_sources=same_server)
        return self._models

    @property
    def run_capabilities(self) -> Capabilities:
        """``file`` references count as readable only when MLflow itself lives on this filesystem (a sqlite or
        file tracking store and a local artifact root): a server's other readers could not open them."""
        if self._run_id is None:
            return self.capabilities
        tracking = str(self.client.tracking_uri)
        if scheme_of(tracking) not in _LOCAL_TRACKING or not is_local_uri(self._own_artifact_uri()):
            return self.capabilities
        return replace(self.capabilities, readable_schemes=self.capabilities.readable_schemes | {"file"})

    # -- experiment and run -----------------------------------------------------------------------
    def _experiment(self, name: str | None = None) -> str:
        if self._experiment_id is not None:
            return self._experiment_id
        resolved = self.resolution
        found: Any
        with _backend_errors(f"opening experiment {resolved.experiment.value!r}"):
            experiment = ""
            if resolved.experiment_is_id:  # MLflow answers 404 for an id it does not know: a permanent error
                found = self.client.get_experiment(resolved.experiment.value)
                label = f"id {resolved.experiment.value} (from {resolved.experiment.source})"
            else:
                experiment = resolved.experiment.value or name or ""
                if not experiment:
                    raise DeliveryError("The mlflow adapter needs start_run() or options['experiment_name'].",
                                        retryable=False)
                found = self.client.get_experiment_by_name(experiment)
                label = f"{experiment!r} (from {resolved.experiment.source})"
            if found is not None and found.lifecycle_stage == "deleted":
                raise DeliveryError(f"MLflow experiment {label} is deleted: restore it (`mlflow experiments restore`) "
                                    "or name another experiment.", retryable=False)
            if found is not None:
                self._experiment_id = str(found.experiment_id)
            else:
                location = resolved.artifact_location.value if resolved.artifact_location else None
                self._experiment_id = str(self.client.create_experiment(experiment, location))
        return self._experiment_id

    @property
    def run_id(self) -> str:
        """The MLflow run this adapter logs into."""
        run_id = self._run_id or self.options.get("run_id")
        if run_id is None:
            raise DeliveryError("The mlflow adapter has no run: call start_run() or pass options['run_id'].",
                                retryable=False)
        return str(run_id)

    def start_run(self, run: RunContext) -> dict[str, Any]:
        """Join the user's run (``options['run_id']``, ``mlflow.active_run()``, ``MLFLOW_RUN_ID``), resume this
        run's own MLflow run, or open one named after the experiment. Called on the user's thread, where
        ``mlflow.active_run()`` is visible."""
        self._store_root, self._artifact_uri = Path(run.store_root), None
        state = dict(run.state)
        resolved = self._resolution_for(run.experiment, self._store_root, state)
        if state.get("tracking_uri") not in (None, redact_url(resolved.tracking.value)):
            state = {}  # saved for another tracking server: start (or find) this run there instead
            resolved = self._resolution_for(run.experiment, self._store_root, state)
        self._resolved, self._models = resolved, None
        if self.options.get("client") is None:
            self._client_obj = None
        joined = resolved.join is not None or bool(state.get("joined"))
        with _backend_errors("starting the run"):
            run_id = resolved.join.value if resolved.join is not None else state.get("run_id")
            if run_id:
                existing = self.client.get_run(str(run_id))
                if existing.info.lifecycle_stage == "deleted":
                    raise DeliveryError(f"MLflow run {run_id} is deleted; restore it or start a new run.",
                                        retryable=False)
                self._experiment_id = str(existing.info.experiment_id)
                self._artifact_uri = getattr(existing.info, "artifact_uri", None)
                if not joined and existing.info.status != "RUNNING":
                    self.client.update_run(str(run_id), status="RUNNING")
                self._run_id = str(run_id)
            else:
                self._run_id = self._open_run(run)
            self._owns_run = not joined
        if joined:
            log.info("mlflow: artifacts join the run %s (%s)", self._run_id,
                     resolved.join.source if resolved.join is not None else "saved state")
        return {"run_id": self.run_id, "experiment_id": self._experiment(), "joined": joined,
                "tracking_uri": redact_url(str(self.client.tracking_uri))}  # stored in the catalog: no password

    def _open_run(self, run: RunContext) -> str:
        """This tracelet run's own MLflow run: found by its tag (a previous process made it), else created."""
        experiment_id = self._experiment(run.experiment)
        found = self.client.search_runs([experiment_id], f"tags.`{RUN_TAG}` = '{run.run_id}'", max_results=1)
        if found:
            return str(found[0].info.run_id)
        tags = {RUN_TAG: run.run_id, "tracelet.experiment": run.experiment}
        created = self.client.create_run(experiment_id, run_name=self.resolution.run_name.value, tags=tags)
        self._artifact_uri = getattr(created.info, "artifact_uri", None)
        return str(created.info.run_id)

    def end_run(self) -> None:
        timeout = float(self.options.get("metrics_flush_timeout_s", 30))
        if self._sender is not None and not self._sender.close(timeout):
            log.warning("MLflow did not take every param/metric before end_run; the rest is dropped.")
        if self._run_id is not None and self._owns_run:  # a run the user opened is theirs to end
            with _backend_errors("ending the run"):
                self.client.set_terminated(self._run_id, "FINISHED")

    # -- params and metrics -----------------------------------------------------------------------
    def _send_batch(self, params: list[Any], metrics: list[Any]) -> None:
        with _backend_errors("log_batch"):
            self.client.log_batch(self.run_id, metrics=metrics, params=params)

    def _queue(self, params: list[Any], metrics: list[Any]) -> None:
        if not self.options.get("async_metrics", True):
            for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self._send_batch(params[start:start + 100], [])
            if metrics:
                self._send_batch([], metrics)
            return
        self.run_id  # noqa: B018 - fail now (not in the background) when there is no run
        if self._sender is None or self._sender.closed:
            self._sender = BatchSender(self._send_batch)
        self._sender.add(params, metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Queue params for the run (sent in the background unless ``async_metrics`` is False)."""
        from mlflow.entities import Param

        items = [Param(key, value if isinstance(value, str) else json.dumps(value, default=str))
                 for key, value in flatten(params).items()]
        self._queue([checked_key(p) for p in items], [])

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Queue one metric value with the current time (sent in the background unless ``async_metrics`` is False)."""
        from mlflow.entities import Metric

        self._queue([], [checked_key(Metric(name, float(value), int(time.time() * 1000), step or 0))])

    def flush_metrics(self, timeout: float | None = None) -> bool:
        """Wait until queued params and metrics are sent; False if some are still waiting after ``timeout``."""
        return self._sender is None or self._sender.flush(timeout)

    def use_version(self, use: VersionUse) -> None:
        """The run consumed ``use`` (lineage): a dataset input of the run and a ``tracelet.input/…`` tag."""
        with _backend_errors(f"recording the use of {use.ref}"):
            mlflow_inputs.record_use(self.client, self.run_id, use)

    # -- logging artifacts ------------------------------------------------------------------------
    def _holder(self, name: str, version: int, artifact_digest: str | None = None) -> Run | None:
        """The run that fully holds ``name`` vN (this run first), optionally with that digest."""
        key = f"{ARTIFACT_TAG}{name}/v{version}"
        query = f"tags.`{key}` = '{artifact_digest}'" if artifact_digest else f"tags.`{key}` LIKE '%'"
        found = self.client.search_runs([self._experiment()], query, max_results=50)
        runs = sorted(found, key=lambda r: (r.info.run_id != self._run_id, r.info.start_time or 0))
        return runs[0] if runs else None

    def log(self, delivery: Delivery) -> Receipt:
        manifest, version = delivery.manifest, delivery.version
        prefix = f"{manifest.name}/v{version}"
        not_held: dict[str, str] = dict(delivery.plan.not_held)
        with _backend_errors(f"logging {manifest.name}:v{version}"):
            holder = self._holder(manifest.name, version, manifest.digest)
            if holder is None:
                self._upload(delivery, prefix)
                holder_id, artifact_uri = self.run_id, self._own_artifact_uri()
            else:  # MLflow holds this content already (a retry, or an alias that moved): upload nothing
                holder_id, artifact_uri = holder.info.run_id, holder.info.artifact_uri
                log.debug("%s is already in MLflow run %s; nothing uploaded", prefix, holder_id)
            registered = None
            if self.models.wants(manifest):
                registered = self.models.register(delivery, self._experiment(), holder_id, f"{artifact_uri}/{prefix}",
                                                  self.run_id, not_held)
            elif aliases := user_aliases(delivery):
                not_held["aliases"] = ("MLflow holds aliases only on registered models (MODEL artifacts); "
                                       f"{sorted(aliases)} kept in the embedded store")
            if holder is None:
                self._finish(delivery, prefix, registered, not_held)
            elif holder_id != self._run_id and self._run_id is not None:
                self.client.set_tag(self._run_id, f"tracelet.uses/{manifest.name}/v{version}",
                                    f"runs:/{holder_id}/{prefix}")
        uri = f"models:/{registered[0]}/{registered[1]}" if registered else f"runs:/{holder_id}/{prefix}"
        return delivery.receipt(self.name, remote_id=holder_id, remote_version=registered[1] if registered else None,
                                uri=uri, not_held=not_held, view_command=self.resolution.view_command(),
                                locator=run_locator(str(self.client.tracking_uri), self._experiment(), holder_id))

    def _own_artifact_uri(self) -> str:
        self._artifact_uri = self._artifact_uri or str(self.client.get_run(self.run_id).info.artifact_uri)
        return self._artifact_uri

    def _scratch(self) -> str | None:
        """A folder for staging and downloads next to the store (the system temp folder without one)."""
        if self._store_root is None:
            return None
        (self._store_root / "mlflow-tmp").mkdir(parents=True, exist_ok=True)
        return str(self._store_root / "mlflow-tmp")

    def _upload(self, delivery: Delivery, prefix: str) -> None:
        """The uploads, streamed from hard links to the stored blobs (no second copy on disk, no whole-file
        reads: MLflow sends each file from its open handle), ``UPLOAD_THREADS`` files at a time, then the
        references file."""
        with tempfile.TemporaryDirectory(prefix="tracelet-mlflow-", dir=self._scratch()) as folder:
            staged = delivery.stage(Path(folder) / "files")
            files = [path for path in sorted(staged.rglob("*")) if path.is_file()]
            if len(files) == 1 or UPLOAD_THREADS == 1:
                for path in files:
                    self._upload_file(staged, path, prefix)
            elif files:
                with ThreadPoolExecutor(min(UPLOAD_THREADS, len(files)), thread_name_prefix="tracelet-up") as pool:
                    for done in [pool.submit(self._upload_file, staged, path, prefix) for path in files]:
                        done.result()  # the first failure fails the delivery (retried whole; uploads overwrite)
        references = [asdict(r) for r in delivery.references()]
        if references:
            self.client.log_dict(self.run_id, {"artifact": delivery.manifest.name, "version": delivery.version,
                                               "references": references}, f"{prefix}.references.json")

    def _upload_file(self, staged: Path, path: Path, prefix: str) -> None:
        folder = path.parent.relative_to(staged).as_posix()
        self.client.log_artifact(self.run_id, str(path), prefix if folder == "." else f"{prefix}/{folder}")

    def _finish(self, delivery: Delivery, prefix: str, registered: tuple[str, str] | None,
                not_held: dict[str, str]) -> None:
        """Write the manifest file, then the tags; the digest tag last marks the version as held."""
        from mlflow.entities import RunTag

        manifest, name = delivery.manifest, delivery.manifest.name
        record = manifest.to_dict() | {
            "version": delivery.version, "uploaded": [e.path for e in delivery.uploads()],
            "held_references": [asdict(r) for r in delivery.references()],
            "registered_model": {"name": registered[0], "version": registered[1]} if registered else None}
        self.client.log_dict(self.run_id, record, f"{prefix}.tracelet.json")
        values = {"type": manifest.artifact_type.value, "description": manifest.description or "",
                  "labels": ",".join(manifest.labels), "metadata": json.dumps(thaw_json(manifest.metadata)),
                  "references": json.dumps([r.uri for r in delivery.references()])}
        tags = []
        for key, value in values.items():
            if len(value) > MAX_TAG_VALUE:
                not_held[f"tag:{key}"] = (f"longer than MLflow's {MAX_TAG_VALUE}-character tag limit; "
                                          f"in full in {prefix}.tracelet.json")
                value = value[:MAX_TAG_VALUE]
            tags.append(RunTag(f"tracelet.{key}/{name}", value))
        tags.append(RunTag(f"{ARTIFACT_TAG}{name}/v{delivery.version}", manifest.digest))
        self.client.log_batch(self.run_id, tags=tags)

    def model_name(self, artifact: str) -> str:
        """The registered model name of an artifact (``options['model_names']``, else ``/`` → ``.``)."""
        return model_name(self.options, artifact)

    # -- reading back -----------------------------------------------------------------------------
    def _tagged_versions(self) -> dict[tuple[str, int], Run]:
        """(name, N) → the run holding it, from the digest tags of the experiment's active runs."""
        found: dict[tuple[str, int], Run] = {}
        token = None
        with _backend_errors("searching runs"):
            while True:
                page = self.client.search_runs([self._experiment()], "", max_results=1000, page_token=token)
                for run in page:
                    for key in run.data.tags:
                        if key.startswith(ARTIFACT_TAG) and "/v" in key:
                            name, _, number = key[len(ARTIFACT_TAG):].rpartition("/v")
                            if number.isdigit():
                                found.setdefault((name, int(number)), run)
                token = page.token
                if not token:
                    return found

    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        versions = self._tagged_versions()
        latest: dict[str, int] = {}
        for name, number in versions:
            latest[name] = max(number, latest.get(name, 0))
        out: list[RemoteArtifact] = []
        aliases_by_name: dict[str, dict[tuple[int, str], list[str]]] = {}
        for (name, number), run in sorted(versions.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
            tags = run.data.tags
            kind = ArtifactType.parse(tags[f"tracelet.type/{name}"]) if f"tracelet.type/{name}" in tags else None
            if type_filter is not None and kind != type_filter:
                continue
            if kind in MODEL_TYPES and name not in aliases_by_name:
                with _backend_errors("reading registered model aliases"):
                    aliases_by_name[name] = self.models.registry_aliases(name)
            artifact_digest = tags[f"{ARTIFACT_TAG}{name}/v{number}"]
            aliases = set(aliases_by_name.get(name, {}).get((number, artifact_digest), ()))
            if number == latest[name]:
                aliases.add("latest")
            out.append(RemoteArtifact(self.name, name, f"v{number}", kind, artifact_digest,
                                      f"runs:/{run.info.run_id}/{name}/v{number}", tuple(sorted(aliases))))
        return out

    def _resolve(self, name: str, version: str) -> tuple[int, str | None]:
        """(N, digest when known) for ``vN``, ``N``, ``latest`` or a registered-model alias."""
        number = _version_number(version)
        if number is not None:
            return number, None
        if version == "latest":
            numbers = [n for (item, n) in self._tagged_versions() if item == name]
            if numbers:
                return max(numbers), None
        else:
            with _backend_errors(f"resolving alias {version!r}"):
                for (number, artifact_digest), aliases in self.models.registry_aliases(name).items():
                    if version in aliases:
                        return number, artifact_digest
        raise ArtifactStoreNotFoundError(f"MLflow holds no {name!r} at {version!r}.")

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        number, artifact_digest = self._resolve(name, version)
        prefix = f"{name}/v{number}"
        with _backend_errors(f"finding {prefix}"):
            holder = self._holder(name, number, artifact_digest)
        if holder is None:
            raise ArtifactStoreNotFoundError(f"MLflow holds no {name!r} at v{number}.")
        target = Path(dest)
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="tracelet-mlflow-", dir=self._scratch()) as folder:
            with _backend_errors(f"downloading {prefix}"):
                record_path = self.client.download_artifacts(holder.info.run_id, f"{prefix}.tracelet.json", folder)
                record = json.loads(Path(record_path).read_text(encoding="utf-8"))
                uploaded = record.get("uploaded", [])
                files = Path(self.client.download_artifacts(holder.info.run_id, prefix, folder)) if uploaded else None
            entries = {e["path"]: e for e in record["entries"]}
            for path in uploaded:
                source = files / path if files else None
                if source is None or not digest.matches(source, entry_digest(entries[path])):
                    raise IntegrityError(f"MLflow's copy of {prefix}/{path} is missing or does not match its digest.")
                out = target / validate_artifact_path(path)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), out)
        return target
