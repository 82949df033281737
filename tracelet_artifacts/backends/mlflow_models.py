"""Models for the MLflow adapter: every MODEL artifact becomes a registered model version with the store's
aliases, and a model added with ``add_model`` (PyTorch, scikit-learn) is logged as a real MLflow model first.

PyTorch models are saved with MLflow's own ``mlflow.pytorch.save_model`` (``MLmodel``, the ``pytorch`` and
``python_function`` flavours; the safe ``pt2`` format and a signature when the artifact has an input
example), scikit-learn ones with ``mlflow.sklearn.save_model`` (the safe ``skops`` format), into an MLflow 3
*logged model* linked to the run, so ``mlflow.pyfunc.load_model("models:/NAME@best")`` loads it and
``mlflow.search_logged_models`` lists it. Anything else (``add_file("model.pth")``, another framework) is
registered from the run's files. Everything is found again by the ``tracelet.digest`` tag, so a
re-delivery creates nothing new and only sets or moves the aliases.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tracelet_artifacts import serialize
from tracelet_artifacts.artifact import ArtifactType, Manifest
from tracelet_artifacts.backends.base import Delivery

log = logging.getLogger("tracelet_artifacts.backends.mlflow")

#: The artifact types registered in the model registry (issue 15: a model inside a REPORT stays a file).
REGISTERED_TYPES = frozenset({ArtifactType.MODEL})
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
DIGEST_TAG = "tracelet.digest"


def model_name(options: Mapping[str, Any], artifact: str) -> str:
    """The registered model name of an artifact (``options['model_names']``, else ``/`` and ``:`` → ``.``)."""
    names = options.get("model_names") or {}
    return str(names.get(artifact) or artifact.replace("/", ".").replace(":", "."))


def user_aliases(delivery: Delivery) -> set[str]:
    """Aliases of this version: the embedded store's, ``metadata["aliases"]``, and ``best`` if asked."""
    manifest = delivery.manifest
    extra = manifest.metadata.get("aliases") or ()
    aliases = {extra} if isinstance(extra, str) else {str(a) for a in extra}
    if manifest.metadata.get("best") is True:
        aliases.add("best")
    aliases.update(delivery.aliases)
    aliases.discard("latest")
    return aliases


def _is_missing(exc: Exception) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.get_http_status_code() == 404


class ModelRegistry:
    """Registers MODEL versions (logging PyTorch models as MLflow models first) and reads their aliases.

    Example::

        models = ModelRegistry(client, options, scratch=lambda: None)
        name, version = models.register(delivery, experiment_id, holder_run, files_uri, this_run, not_held)
    """

    def __init__(self, client: Any, options: Mapping[str, Any], scratch: Callable[[], str | None],
                 model_uri_sources: bool = False) -> None:
        self.client = client
        self.options = options
        self._scratch = scratch
        #: Register logged models from ``models:/<model_id>`` (as MLflow does) rather than their artifact folder.
        #: Only a tracking server can: a database registry resolves that URI through MLflow's *global*
        #: tracking URI, which need not be this client's.
        self.model_uri_sources = model_uri_sources

    def wants(self, manifest: Manifest) -> bool:
        """Whether this version goes to the registry (a MODEL, unless ``register_models`` is off)."""
        return manifest.artifact_type in REGISTERED_TYPES and bool(self.options.get("register_models", True))

    def register(self, delivery: Delivery, experiment_id: str, holder_id: str, files_uri: str, run_id: str,
                 not_held: dict[str, str]) -> tuple[str, str]:
        """(registered model name, version) holding this digest, created once, with its aliases set."""
        manifest = delivery.manifest
        name = model_name(self.options, manifest.name)
        self._ensure_registered_model(name, manifest)
        existing = [mv for mv in self.client.search_model_versions(f"name='{name}'")
                    if mv.tags.get(DIGEST_TAG) == manifest.digest]
        if existing:
            version = str(min(int(mv.version) for mv in existing))
        else:
            source, model_id = files_uri, None
            logged = self._logged_model(delivery, experiment_id, holder_id, run_id, name, not_held)
            if logged is not None:
                model_id = logged.model_id
                source = f"models:/{model_id}" if self.model_uri_sources else logged.artifact_location
            created = self.client.create_model_version(name, source, run_id=holder_id, tags=_version_tags(delivery),
                                                       description=manifest.description, model_id=model_id)
            version = str(created.version)
        self.set_aliases(name, version, user_aliases(delivery), not_held)
        return name, version

    def set_aliases(self, name: str, version: str, aliases: set[str], not_held: dict[str, str]) -> None:
        """Point each alias at ``version`` (moving it from another version); list the ones MLflow refuses."""
        for alias in sorted(aliases):
            if not _ALIAS.match(alias) or _VERSION_ALIAS.match(alias):
                not_held[f"alias:{alias}"] = "not a valid MLflow alias (letters, digits, _ and -; not vN)"
                continue
            self.client.set_registered_model_alias(name, alias, version)

    def _ensure_registered_model(self, name: str, manifest: Manifest) -> None:
        try:
            self.client.get_registered_model(name)
        except Exception as exc:
            if not _is_missing(exc):
                raise
            self.client.create_registered_model(name, description=manifest.description, tags={
                "tracelet.artifact": manifest.name, "tracelet.type": manifest.artifact_type.value})

    # -- logged models ----------------------------------------------------------------------------
    def _logged_model(self, delivery: Delivery, experiment_id: str, holder_id: str, run_id: str, name: str,
                      not_held: dict[str, str]) -> Any | None:
        """The READY logged model of this digest (logged now if needed); None: register the files instead."""
        manifest = delivery.manifest
        if manifest.model is None:
            return None
        flavour = _FLAVOURS.get(manifest.model.framework)
        if flavour is None:
            not_held["mlflow_model"] = (f"no MLflow flavour is written for {manifest.model.framework} models here; "
                                        "registered as files (load them with the framework)")
            return None
        found = self.client.search_logged_models(
            [experiment_id], filter_string=f"tags.`{DIGEST_TAG}` = '{manifest.digest}'", max_results=50)
        ready = [m for m in found if str(getattr(m.status, "name", m.status)) == "READY"]
        if ready:
            return ready[0]
        module, why = _load_model(delivery)
        if module is None:
            not_held["mlflow_model"] = why
            return None
        # Not named like the run's NAME/ folder: MLflow shows a logged model's files under its name in the run,
        # and reading that merged view goes through MLflow's global tracking URI, not this client's.
        logged_name = re.sub(r"[/:.%\"']", "-", f"{manifest.name}-v{delivery.version}")
        logged = self.client.create_logged_model(experiment_id, name=logged_name, source_run_id=holder_id, tags={
            DIGEST_TAG: manifest.digest, "tracelet.artifact": manifest.name,
            "tracelet.version": str(delivery.version)})
        with tempfile.TemporaryDirectory(prefix="tracelet-mlflow-model-", dir=self._scratch()) as folder:
            try:
                flavour(module, _input_example(delivery), Path(folder) / "model", logged, holder_id)
            except Exception as exc:  # the model cannot be saved as an MLflow model: its files still are
                self.client.finalize_logged_model(logged.model_id, "FAILED")
                not_held["mlflow_model"] = (f"mlflow.{manifest.model.framework}.save_model failed "
                                            f"({type(exc).__name__}: {exc}); registered as files")
                log.warning("MLflow model for %s not logged: %s", manifest.name, not_held["mlflow_model"])
                return None
            self.client.log_model_artifacts(logged.model_id, str(Path(folder) / "model"))
        from mlflow.entities import LoggedModelOutput

        self.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return self.client.finalize_logged_model(logged.model_id, "READY")

    # -- reading back -----------------------------------------------------------------------------
    def registry_aliases(self, artifact: str) -> dict[tuple[int, str], list[str]]:
        """(tracelet version, digest) → aliases on the registered model of ``artifact`` (empty when unregistered).

        The digest tells versions of this experiment from same-named ones another project registered.
        """
        name = model_name(self.options, artifact)
        try:
            model = self.client.get_registered_model(name)
        except Exception as exc:
            if _is_missing(exc):
                return {}
            raise
        out: dict[tuple[int, str], list[str]] = {}
        for alias, model_version in (model.aliases or {}).items():
            tags = self.client.get_model_version(name, str(model_version)).tags
            if tags.get("tracelet.version", "").isdigit():
                out.setdefault((int(tags["tracelet.version"]), tags.get(DIGEST_TAG, "")), []).append(alias)
        return out


def _version_tags(delivery: Delivery) -> dict[str, str]:
    manifest = delivery.manifest
    tags = {DIGEST_TAG: manifest.digest, "tracelet.version": str(delivery.version), "tracelet.artifact": manifest.name}
    if manifest.model is not None:
        tags |= {"tracelet.framework": manifest.model.framework, "tracelet.class_name": manifest.model.class_name,
                 "tracelet.model_path": manifest.model.path}
    return tags


def _load_model(delivery: Delivery) -> tuple[Any, str]:
    """(the model read back from its stored file, or None and why not).

    The stored file is a pickle (``torch.save`` / ``pickle``): it is read back only when this process wrote
    it (``add_model`` here), or when the user allowed MLflow to unpickle models
    (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``), so a delivery never runs code someone else put in a
    shared store.
    """
    from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION

    model = delivery.manifest.model
    assert model is not None
    entry = delivery.manifest.entry(model.path)
    if not (serialize.saved_in_this_process(entry.digest) or MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get()):
        return None, ("the MLflow model is written by the process that called add_model (or with "
                      "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true); registered as files")
    data = delivery.blob_path(entry).read_bytes()
    return serialize.deserialize_object(data, "torch" if model.framework == "pytorch" else "pickle",
                                        allow_pickle=True, what=f"The stored {model.framework} model"), ""


def _input_example(delivery: Delivery) -> Any | None:
    """The stored input example as a numeric array, or None (no example, or not a plain array)."""
    import numpy as np

    model = delivery.manifest.model
    if model is None or not model.input_example_path:
        return None
    data = json.loads(delivery.blob_path(delivery.manifest.entry(model.input_example_path)).read_bytes())
    try:
        array = np.asarray(data)
    except ValueError:  # ragged lists
        return None
    return None if array.ndim == 0 or array.dtype.kind not in "fiub" else array


def _mlflow_model(logged: Any, run_id: str) -> Any:
    from mlflow.models import Model

    return Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=run_id,
                 model_id=logged.model_id)


def _save_pytorch(module: Any, example: Any | None, path: Path, logged: Any, run_id: str) -> None:
    """``mlflow.pytorch.save_model``: the safe ``pt2`` format with a signature when there is an input example
    (float32 / int64, as torch wants it), else MLflow's pickle format.

    A one-row example is repeated to two rows: ``torch.export`` fixes a dimension of size 1, and the saved
    model would then only take batches of one.
    """
    import mlflow.pytorch
    import numpy as np

    if example is not None:
        example = example.astype(np.float32 if example.dtype.kind == "f" else np.int64)
        example = np.concatenate([example, example]) if example.shape[0] == 1 else example
    mlflow.pytorch.save_model(module, str(path), mlflow_model=_mlflow_model(logged, run_id), input_example=example,
                              serialization_format="pt2" if example is not None else "pickle",
                              pip_requirements=mlflow.pytorch.get_default_pip_requirements())


def _save_sklearn(model: Any, example: Any | None, path: Path, logged: Any, run_id: str) -> None:
    """``mlflow.sklearn.save_model`` in the safe ``skops`` format (with a signature when there is an example)."""
    import mlflow.sklearn

    mlflow.sklearn.save_model(model, str(path), mlflow_model=_mlflow_model(logged, run_id), input_example=example,
                              serialization_format="skops",
                              pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True))


#: framework (as ``add_model`` records it) → how to save it as an MLflow model.
_FLAVOURS: dict[str, Callable[[Any, Any, Path, Any, str], None]] = {"pytorch": _save_pytorch,
                                                                    "sklearn": _save_sklearn}
