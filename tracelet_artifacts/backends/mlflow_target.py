"""Where the MLflow adapter's data goes: the tracking and registry URIs, the experiment and the run to join,
resolved the way MLflow resolves them, with where each value came from.

Precedence, per value: an explicit adapter option (``backend_options["mlflow"]`` or
``TRACELET_BACKEND_OPTIONS``) > MLflow's own configuration, asked of MLflow (``mlflow.get_tracking_uri()``
covers ``mlflow.set_tracking_uri()`` and ``MLFLOW_TRACKING_URI``; ``mlflow.get_registry_uri()`` covers
``mlflow.set_registry_uri()`` and ``MLFLOW_REGISTRY_URI``; ``mlflow.set_experiment()``,
``MLFLOW_EXPERIMENT_NAME`` / ``_ID``; ``mlflow.active_run()`` on the calling thread; ``MLFLOW_RUN_ID``) >
the embedded default (``sqlite:///<store>/mlflow.db``, artifacts under the store), used only when no
tracking URI is set anywhere. Nothing here opens a run or a connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tracelet_artifacts.backends.base import EMBEDDED_DEFAULT, BackendTarget, Setting
from tracelet_artifacts.redact import redact_url

EXPERIMENT_NAME = "the Experiment's name"
CHANGE = ("set MLFLOW_TRACKING_URI (or call mlflow.set_tracking_uri()), or backend_options['mlflow']"
          "['tracking_uri']")

OptionFn = Callable[[str], "Setting | None"]


def scheme_of(uri: str) -> str:
    """``sqlite`` for ``sqlite:///…``, ``postgresql`` for ``postgresql+psycopg://…``, ``""`` for a bare path."""
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri and "://" in uri else ""


def is_server(uri: str) -> bool:
    """Whether a tracking URI names a tracking server (``http(s)://``, ``databricks``), not a database."""
    return scheme_of(uri) in ("http", "https") or uri.startswith("databricks")


def is_local_uri(uri: str | None) -> bool:
    """Whether an artifact (or tracking) URI is a path on this machine's filesystem."""
    if not uri:
        return False
    return (urlparse(uri).scheme or "file") == "file" or scheme_of(uri) == "sqlite"


@dataclass(frozen=True)
class MlflowResolution:
    """The resolved MLflow target of one run: what ``start_run`` opens and ``doctor`` prints."""

    tracking: Setting
    registry: Setting
    #: The experiment: by ``name`` or by ``id`` (one of the two), with its source.
    experiment: Setting
    experiment_is_id: bool
    run_name: Setting
    #: A run to log into instead of opening one: ``options['run_id']``, ``mlflow.active_run()``, ``MLFLOW_RUN_ID``.
    join: Setting | None
    #: Artifact root for a *new* experiment (None: MLflow's own default, or the server's).
    artifact_location: Setting | None
    embedded: bool

    @property
    def settings(self) -> dict[str, Setting]:
        out = {"tracking_uri": self.tracking, "registry_uri": self.registry,
               "experiment_id" if self.experiment_is_id else "experiment_name": self.experiment,
               "run_name": self.run_name}
        if self.join is not None:
            out["run_id"] = self.join
        if self.artifact_location is not None:
            out["artifact_location"] = self.artifact_location
        return out

    def view_command(self) -> str | None:
        """``mlflow ui --backend-store-uri …`` for a database; None for a server (its URL opens it)."""
        if is_server(self.tracking.value):
            return None
        command = f"mlflow ui --backend-store-uri {redact_url(self.tracking.value)}"
        if self.registry.value != self.tracking.value and not is_server(self.registry.value):
            command += f" --registry-store-uri {redact_url(self.registry.value)}"
        return command

    def target(self) -> BackendTarget:
        experiment = (f"experiment id {self.experiment.value}" if self.experiment_is_id
                      else f"experiment {self.experiment.value!r}")
        where = f"{redact_url(self.tracking.value)} ({experiment})"
        if self.artifact_location is not None and self.embedded:
            where += f", artifacts in {self.artifact_location.value}"
        joined = None
        if self.join is not None:
            joined = f"{self.join.source} {self.join.value}"
        return BackendTarget("mlflow", where=where, settings=self.settings, active_run=joined,
                             embedded_default=self.embedded, change=CHANGE, view=self.view_command())


def _mlflow_private(module: str, name: str) -> Any:
    """A module-level value MLflow keeps privately (who set a URI in code); None when it moved."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:  # pragma: no cover - an MLflow release that reorganised its modules
        return None


def _tracking(option: OptionFn, client: Any, store_root: Path | None, user_run: Any) -> tuple[Setting, bool]:
    """(tracking URI, whether it is the embedded default)."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_TRACKING_URI

    explicit = option("tracking_uri")
    if explicit is not None:
        return explicit, False
    if client is not None:
        return Setting(str(client.tracking_uri), "backend_options (client)"), False
    if MLFLOW_TRACKING_URI.is_set():  # mlflow.set_tracking_uri() sets the variable too
        uri = mlflow.get_tracking_uri()
        in_code = _mlflow_private("mlflow.tracking._tracking_service.utils", "_tracking_uri")
        return Setting(uri, "mlflow.set_tracking_uri()" if in_code == uri else "MLFLOW_TRACKING_URI"), False
    if user_run is not None:  # a run the user opened with nothing set lives in MLflow's own default store
        return Setting(mlflow.get_tracking_uri(), f"MLflow's default (where {user_run.source} lives)"), False
    if store_root is None:
        return Setting("", EMBEDDED_DEFAULT), True
    return Setting(f"sqlite:///{(Path(store_root) / 'mlflow.db').absolute()}", EMBEDDED_DEFAULT), True


def _registry(option: OptionFn, client: Any, tracking: Setting) -> Setting:
    import mlflow
    from mlflow.environment_variables import MLFLOW_REGISTRY_URI

    explicit = option("registry_uri")
    if explicit is not None:
        return explicit
    if client is not None and getattr(client, "_registry_uri", None):
        return Setting(str(client._registry_uri), "backend_options (client)")
    # MLflow's own answer: a URI set in code, else MLFLOW_REGISTRY_URI, else the tracking URI. (A URI set to ""
    # in code hides the variable from MLflow too, so the variable is named only when it is what MLflow uses.)
    uri = mlflow.get_registry_uri()
    in_code = _mlflow_private("mlflow.tracking._model_registry.utils", "_registry_uri")
    if in_code and uri == in_code:
        return Setting(uri, "mlflow.set_registry_uri()")
    if MLFLOW_REGISTRY_URI.is_set() and uri == MLFLOW_REGISTRY_URI.get():
        return Setting(uri, "MLFLOW_REGISTRY_URI")
    return Setting(tracking.value, f"the tracking URI ({tracking.source})")


def _experiment(option: OptionFn, experiment: str, user_run: Any) -> tuple[Setting, bool]:
    """(name or id, is it an id). The order is MLflow's: set_experiment(), then the name, then the id."""
    from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID, MLFLOW_EXPERIMENT_NAME

    if user_run is not None and getattr(user_run, "experiment_id", None):
        return Setting(str(user_run.experiment_id), user_run.source), True
    explicit = option("experiment_name")
    if explicit is not None:
        return explicit, False
    in_code = _mlflow_private("mlflow.tracking.fluent", "_active_experiment_id")
    if in_code:
        return Setting(str(in_code), "mlflow.set_experiment()"), True
    if MLFLOW_EXPERIMENT_NAME.get():
        return Setting(str(MLFLOW_EXPERIMENT_NAME.get()), "MLFLOW_EXPERIMENT_NAME"), False
    if MLFLOW_EXPERIMENT_ID.get():
        return Setting(str(MLFLOW_EXPERIMENT_ID.get()), "MLFLOW_EXPERIMENT_ID"), True
    return Setting(experiment, EXPERIMENT_NAME), False


@dataclass(frozen=True)
class _UserRun:
    value: str
    source: str
    experiment_id: str | None = None


def _run_to_join(option: OptionFn, state: Mapping[str, Any]) -> _UserRun | None:
    """The run artifacts go into instead of one the adapter opens (None: the adapter opens or resumes its own).

    Order: ``options['run_id']``; the run this tracelet run already saved (resumed as it was); the
    user's ``mlflow.active_run()`` on this thread; ``MLFLOW_RUN_ID``.
    """
    import mlflow
    from mlflow.environment_variables import MLFLOW_RUN_ID

    explicit = option("run_id")
    if explicit is not None:
        return _UserRun(explicit.value, explicit.source)
    if state.get("run_id"):
        return None
    active = mlflow.active_run()
    if active is not None:
        return _UserRun(active.info.run_id, "mlflow.active_run()", str(active.info.experiment_id))
    if MLFLOW_RUN_ID.get():
        return _UserRun(str(MLFLOW_RUN_ID.get()), "MLFLOW_RUN_ID")
    return None


def resolve(options: Mapping[str, Any], option: OptionFn, experiment: str, store_root: Path | None,
            state: Mapping[str, Any] | None = None) -> MlflowResolution:
    """Resolve every value of the MLflow target for a run of ``experiment`` (side-effect free)."""
    state = dict(state or {})
    user_run = _run_to_join(option, state)
    tracking, embedded = _tracking(option, options.get("client"), store_root, user_run)
    registry = _registry(option, options.get("client"), tracking)
    experiment_setting, is_id = _experiment(option, experiment, user_run)
    run_name = option("run_name") or Setting(experiment, EXPERIMENT_NAME)
    location = option("artifact_location")
    given = option("tracking_uri") is not None or options.get("client") is not None
    if location is None and store_root is not None and not is_server(tracking.value) and (embedded or given):
        # the embedded default (and, as documented before, a database URI given as an adapter option)
        # keeps artifacts beside the store; a URI the user gave MLflow keeps MLflow's own default
        location = Setting((Path(store_root) / "mlflow-artifacts").absolute().as_uri(),
                           EMBEDDED_DEFAULT if embedded else "beside the store (tracking_uri option)")
    join = Setting(user_run.value, user_run.source) if user_run is not None else None
    return MlflowResolution(tracking, registry, experiment_setting, is_id, run_name, join, location, embedded)


def run_locator(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page under a tracking server, or the run id for a database URI."""
    if scheme_of(tracking_uri) in ("http", "https"):
        return f"{redact_url(tracking_uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return run_id
