"""The ``mlflow`` adapter: artifact versions as files of an MLflow run, models in the MLflow model registry.

One ``MlflowClient`` on an explicit tracking URI (never MLflow's global state). Version N of ``NAME`` goes to
``NAME/vN/<path>`` of the run, plus ``NAME/vN.references.json`` and ``NAME/vN.tracelet.json`` (the manifest)
and ``tracelet.*`` run tags, the digest tag ``tracelet.artifact/NAME/vN`` last (it makes re-delivery a
no-op); a version with a model is registered as a model version with its aliases. docs/backends/mlflow.md
has the details.

Options (``backend_options["mlflow"]``):

* ``tracking_uri`` — default ``sqlite:///<store_root>/mlflow.db``; ``registry_uri`` — default the same.
* ``experiment_name`` — default the tracelet experiment's name; ``run_name`` — default ``<experiment>-<id8>``.
* ``artifact_location`` — for a new experiment; default ``<store_root>/mlflow-artifacts`` for database
  tracking URIs, the server's default for ``http(s)://`` ones.
* ``client`` (an ``MlflowClient``) and ``run_id`` — use this client / this existing run instead.
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
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import MODEL_TYPES, ArtifactType, Manifest, thaw_json, validate_artifact_path
from tracelet_artifacts.backends.base import (
    BackendAdapter,
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
)
from tracelet_artifacts.errors import (
    ArtifactStoreNotFoundError,
    DeliveryError,
    IntegrityError,
    TraceletError,
)
from tracelet_artifacts.redact import redact_text, redact_url

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

ARTIFACT_TAG = "tracelet.artifact/"
RUN_TAG = "tracelet.run_id"
MAX_TAG_VALUE = 8000  # MLflow's run tag value limit
_HTTP_ENV = {"http_timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT", "http_max_retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
             "http_backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"}
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_KEY = re.compile(r"^[/\w.\- :]*$")
MAX_QUEUED_METRICS = 100_000
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "file", "")


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
    """Logs artifact versions into an MLflow run (and models into the registry); lists and fetches them.

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
        self._experiment_id: str | None = None
        self._run_id: str | None = self.options.get("run_id")
        self._owns_run = False
        self._artifact_uri: str | None = None
        self._sender: _BatchSender | None = None

    # -- client, experiment and run ---------------------------------------------------------------
    def _uri(self) -> str:
        uri = self.options.get("tracking_uri")
        if uri:
            return str(uri)
        if self._store_root is None:
            raise DeliveryError("The mlflow adapter has no tracking URI: call start_run() or pass "
                                "options={'tracking_uri': ...}.", retryable=False)
        return f"sqlite:///{(self._store_root / 'mlflow.db').absolute()}"

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient this adapter uses (created on first use from the options)."""
        if self._client_obj is None:
            for key, env in _HTTP_ENV.items():  # MLflow parses these as whole numbers
                if self.options.get(key) is not None:
                    os.environ[env] = str(max(int(key == "http_timeout_s"), round(float(self.options[key]))))
            from mlflow.tracking import MlflowClient

            uri = self._uri()
            with _backend_errors("client setup"):
                self._client_obj = MlflowClient(tracking_uri=uri, registry_uri=self.options.get("registry_uri") or uri)
        return self._client_obj

    def _experiment(self, name: str | None = None) -> str:
        if self._experiment_id is not None:
            return self._experiment_id
        name = str(self.options.get("experiment_name") or name or "")
        if not name:
            raise DeliveryError("The mlflow adapter needs start_run() or options['experiment_name'].", retryable=False)
        with _backend_errors(f"opening experiment {name!r}"):
            found = self.client.get_experiment_by_name(name)
            if found is not None and found.lifecycle_stage == "deleted":
                raise DeliveryError(f"MLflow experiment {name!r} is deleted: restore it (`mlflow experiments restore`) "
                                    "or set options['experiment_name'].", retryable=False)
            if found is not None:
                self._experiment_id = str(found.experiment_id)
            else:
                self._experiment_id = str(self.client.create_experiment(name, self._artifact_location()))
        return self._experiment_id

    def _artifact_location(self) -> str | None:
        if self.options.get("artifact_location"):
            return str(self.options["artifact_location"])
        scheme = str(self.client.tracking_uri).split(":", 1)[0].split("+", 1)[0]
        if self._store_root is None or scheme not in _DATABASE_SCHEMES:
            return None
        return (self._store_root / "mlflow-artifacts").absolute().as_uri()

    @property
    def run_id(self) -> str:
        """The MLflow run this adapter logs into."""
        if self._run_id is None:
            raise DeliveryError("The mlflow adapter has no run: call start_run() or pass options['run_id'].",
                                retryable=False)
        return self._run_id

    def start_run(self, run: RunContext) -> dict[str, str]:
        self._store_root, self._artifact_uri = Path(run.store_root), None
        state = dict(run.state)
        if state.get("tracking_uri") not in (None, redact_url(str(self.client.tracking_uri))):
            state = {}  # saved for another tracking server: start (or find) this run there instead
        run_id = self.options.get("run_id") or state.get("run_id")
        with _backend_errors("starting the run"):
            if run_id:
                existing = self.client.get_run(str(run_id))
                if existing.info.lifecycle_stage == "deleted":
                    raise DeliveryError(f"MLflow run {run_id} is deleted; restore it or start a new run.",
                                        retryable=False)
                self._experiment_id = str(existing.info.experiment_id)
                if existing.info.status != "RUNNING":
                    self.client.update_run(str(run_id), status="RUNNING")
                self._run_id, self._owns_run = str(run_id), not self.options.get("run_id")
            else:
                experiment_id = self._experiment(run.experiment)
                found = self.client.search_runs([experiment_id], f"tags.`{RUN_TAG}` = '{run.run_id}'", max_results=1)
                if found:  # a previous process created it but did not save its state
                    self._run_id = found[0].info.run_id
                else:
                    name = self.options.get("run_name") or f"{run.experiment}-{run.run_id[:8]}"
                    tags = {RUN_TAG: run.run_id, "tracelet.experiment": run.experiment}
                    self._run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
                self._owns_run = True
        return {"run_id": self.run_id, "experiment_id": self._experiment(),
                "tracking_uri": redact_url(str(self.client.tracking_uri))}  # stored in the catalog: no password

    def end_run(self) -> None:
        timeout = float(self.options.get("metrics_flush_timeout_s", 30))
        if self._sender is not None and not self._sender.close(timeout):
            log.warning("MLflow did not take every param/metric before end_run; the rest is dropped.")
        if self._run_id is not None and self._owns_run:
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
            self._sender = _BatchSender(self._send_batch)
        self._sender.add(params, metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Queue params for the run (sent in the background unless ``async_metrics`` is False)."""
        from mlflow.entities import Param

        items = [Param(key, value if isinstance(value, str) else json.dumps(value, default=str))
                 for key, value in _flatten(params).items()]
        self._queue([_checked_key(p) for p in items], [])

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Queue one metric value with the current time (sent in the background unless ``async_metrics`` is False)."""
        from mlflow.entities import Metric

        self._queue([], [_checked_key(Metric(name, float(value), int(time.time() * 1000), step or 0))])

    def flush_metrics(self, timeout: float | None = None) -> bool:
        """Wait until queued params and metrics are sent; False if some are still waiting after ``timeout``."""
        return self._sender is None or self._sender.flush(timeout)

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
            else:
                holder_id, artifact_uri = holder.info.run_id, holder.info.artifact_uri
                log.debug("%s is already in MLflow run %s; nothing uploaded", prefix, holder_id)
            model_name = model_version = None
            aliases = self._user_aliases(delivery)
            if manifest.model is not None and self.options.get("register_models", True):
                model_name = self.model_name(manifest.name)
                model_version = self._register(manifest, version, model_name, f"{artifact_uri}/{prefix}",
                                               holder_id, not_held, aliases)
            elif aliases:
                not_held["aliases"] = ("MLflow holds aliases only on registered models; "
                                       f"{sorted(aliases)} kept in the embedded store")
            if holder is None:
                self._finish(delivery, prefix, model_name, model_version, not_held)
            elif holder_id != self._run_id and self._run_id is not None:
                self.client.set_tag(self._run_id, f"tracelet.uses/{manifest.name}/v{version}",
                                    f"runs:/{holder_id}/{prefix}")
        uri = f"models:/{model_name}/{model_version}" if model_version else f"runs:/{holder_id}/{prefix}"
        return delivery.receipt(self.name, remote_id=holder_id, remote_version=model_version, uri=uri,
                                not_held=not_held)

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
        with tempfile.TemporaryDirectory(prefix="tracelet-mlflow-", dir=self._scratch()) as folder:
            staged = delivery.stage(Path(folder) / "files")
            if delivery.uploads():
                self.client.log_artifacts(self.run_id, str(staged), prefix)
        references = [asdict(r) for r in delivery.references()]
        if references:
            self.client.log_dict(self.run_id, {"artifact": delivery.manifest.name, "version": delivery.version,
                                               "references": references}, f"{prefix}.references.json")

    def _finish(self, delivery: Delivery, prefix: str, model_name: str | None, model_version: str | None,
                not_held: dict[str, str]) -> None:
        """Write the manifest file, then the tags; the digest tag last marks the version as held."""
        from mlflow.entities import RunTag

        manifest, name = delivery.manifest, delivery.manifest.name
        record = manifest.to_dict() | {
            "version": delivery.version, "uploaded": [e.path for e in delivery.uploads()],
            "held_references": [asdict(r) for r in delivery.references()],
            "registered_model": {"name": model_name, "version": model_version} if model_version else None}
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

    # -- model registry ---------------------------------------------------------------------------
    def model_name(self, artifact: str) -> str:
        """The registered model name of an artifact (``options['model_names']``, else ``/`` → ``.``)."""
        names = self.options.get("model_names") or {}
        return str(names.get(artifact) or artifact.replace("/", ".").replace(":", "."))

    @staticmethod
    def _user_aliases(delivery: Delivery) -> set[str]:
        """Aliases of this version: the embedded store's, ``metadata["aliases"]``, and ``best`` if asked."""
        manifest = delivery.manifest
        extra = manifest.metadata.get("aliases") or ()
        aliases = {extra} if isinstance(extra, str) else {str(a) for a in extra}
        if manifest.metadata.get("best") is True:
            aliases.add("best")
        aliases.update(delivery.aliases)
        aliases.discard("latest")
        return aliases

    def _register(self, manifest: Manifest, version: int, model_name: str, source: str, run_id: str,
                  not_held: dict[str, str], aliases: set[str]) -> str:
        """The registered model version holding this digest (created once), with its aliases set."""
        from mlflow.exceptions import MlflowException

        client = self.client
        try:
            client.get_registered_model(model_name)
        except MlflowException as exc:
            if exc.get_http_status_code() != 404:
                raise
            client.create_registered_model(model_name, description=manifest.description, tags={
                "tracelet.artifact": manifest.name, "tracelet.type": manifest.artifact_type.value})
        existing = [mv for mv in client.search_model_versions(f"name='{model_name}'")
                    if mv.tags.get("tracelet.digest") == manifest.digest]
        if existing:
            model_version = str(min(int(mv.version) for mv in existing))
        else:
            assert manifest.model is not None
            tags = {"tracelet.digest": manifest.digest, "tracelet.version": str(version),
                    "tracelet.artifact": manifest.name, "tracelet.framework": manifest.model.framework,
                    "tracelet.class_name": manifest.model.class_name, "tracelet.model_path": manifest.model.path}
            created = client.create_model_version(model_name, source, run_id=run_id, tags=tags,
                                                  description=manifest.description)
            model_version = str(created.version)
        for alias in sorted(aliases):
            if not _ALIAS.match(alias) or _VERSION_ALIAS.match(alias):
                not_held[f"alias:{alias}"] = "not a valid MLflow alias (letters, digits, _ and -; not vN)"
                continue
            client.set_registered_model_alias(model_name, alias, model_version)
        return model_version

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

    def _registry_aliases(self, name: str) -> dict[tuple[int, str], list[str]]:
        """(tracelet version, digest) → aliases on the registered model of ``name`` (empty when unregistered).

        The digest tells versions of this experiment from same-named ones another project registered.
        """
        from mlflow.exceptions import MlflowException

        model_name = self.model_name(name)
        try:
            model = self.client.get_registered_model(model_name)
        except MlflowException as exc:
            if exc.get_http_status_code() == 404:
                return {}
            raise
        out: dict[tuple[int, str], list[str]] = {}
        for alias, model_version in (model.aliases or {}).items():
            tags = self.client.get_model_version(model_name, str(model_version)).tags
            if tags.get("tracelet.version", "").isdigit():
                out.setdefault((int(tags["tracelet.version"]), tags.get("tracelet.digest", "")), []).append(alias)
        return out

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
                    aliases_by_name[name] = self._registry_aliases(name)
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
                for (number, artifact_digest), aliases in self._registry_aliases(name).items():
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
                if source is None or not source.is_file() or digest.sha256_file(source) != entries[path]["sha256"]:
                    raise IntegrityError(f"MLflow's copy of {prefix}/{path} is missing or does not match its digest.")
                out = target / validate_artifact_path(path)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), out)
        return target


def _checked_key(item: Any) -> Any:
    """Refuse at the call (not later in the background) a param or metric name MLflow would refuse."""
    if not _KEY.match(item.key) or len(item.key) > 250:
        raise DeliveryError(f"MLflow refuses the name {item.key!r}: use letters, digits, '_', '-', '.', ' ', ':' "
                            "and '/' (at most 250 characters).", retryable=False)
    return item


class _BatchSender:
    """Sends params and metrics from one background thread, so the training loop never waits on MLflow.

    Transient failures keep the items and retry with backoff; a params batch MLflow refuses is retried one
    param at a time (so one conflicting param does not drop the others); a refused metrics batch is dropped
    with a warning. Nothing is persisted: what is still queued when the process dies is lost.
    """

    def __init__(self, send: Callable[[list[Any], list[Any]], None], backoff_max_s: float = 30.0) -> None:
        self._send = send
        self._backoff_max_s = backoff_max_s
        self._params: list[Any] = []
        self._metrics: list[Any] = []
        self._busy = self.closed = self._flushing = False
        self._cond = threading.Condition()
        self._kick = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracelet-mlflow-metrics", daemon=True)
        self._thread.start()

    def add(self, params: list[Any], metrics: list[Any]) -> None:
        with self._cond:
            self._params.extend(params)
            self._metrics.extend(metrics)
            if len(self._metrics) > MAX_QUEUED_METRICS:
                log.warning("MLflow is not taking metrics; dropping the %d oldest queued values.",
                            len(self._metrics) - MAX_QUEUED_METRICS)
                del self._metrics[:len(self._metrics) - MAX_QUEUED_METRICS]
            self._cond.notify_all()

    def _take(self) -> tuple[list[Any], list[Any]] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._params or self._metrics or self.closed)
            if not (self._params or self._metrics):
                return None
            self._busy = True
            if self._params:
                params, self._params = self._params[:100], self._params[100:]
                return params, []
            metrics, self._metrics = self._metrics[:1000], self._metrics[1000:]
            return [], metrics

    def _run(self) -> None:
        failures = 0
        while (batch := self._take()) is not None:
            params, metrics = batch
            delay = 0.0
            try:
                self._send(params, metrics)
                failures = 0
            except DeliveryError as exc:
                if exc.retryable:
                    failures += 1
                    delay = min(0.5 if self._flushing else self._backoff_max_s, 0.5 * 2 ** (failures - 1))
                    log.warning("MLflow params/metrics not sent (retry in %.1fs): %s", delay, exc)
                    with self._cond:
                        self._params[:0], self._metrics[:0] = params, metrics
                else:
                    self._refused(params, metrics, exc)
            except Exception:
                log.exception("Sending params/metrics to MLflow failed; %d item(s) dropped", len(params + metrics))
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            if delay:
                self._kick.wait(delay)
                self._kick.clear()

    def _refused(self, params: list[Any], metrics: list[Any], exc: DeliveryError) -> None:
        if len(params) > 1:
            for param in params:
                try:
                    self._send([param], [])
                except DeliveryError as one:
                    log.warning("MLflow refused param %r: %s", param.key, one)
        else:
            log.warning("MLflow refused %d param(s) and %d metric value(s): %s", len(params), len(metrics), exc)

    def flush(self, timeout: float | None = None) -> bool:
        self._flushing = True  # retry every 0.5 s while someone waits
        self._kick.set()  # and cut the current backoff short
        try:
            with self._cond:
                return self._cond.wait_for(lambda: not (self._params or self._metrics or self._busy), timeout)
        finally:
            self._flushing = False

    def close(self, timeout: float | None = None) -> bool:
        done = self.flush(timeout)
        with self._cond:
            self.closed = True
            self._params.clear()
            self._metrics.clear()
            self._cond.notify_all()
        return done


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys (``{"opt": {"lr": 1}}`` → ``{"opt.lr": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat
