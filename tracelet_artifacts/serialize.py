"""The one place that serialises: Python objects (json, yaml, pickle, torch) and models (by framework),
and reads objects back, never unpickling unless the caller says ``allow_pickle=True``.

Frameworks are recognised by the model's type, looked up only in modules the user already imported,
so detecting a framework never imports it.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_artifacts import digest
from tracelet_artifacts.errors import ModelFrameworkError, SerializationError, UnsafeLoadError

SERIALIZERS = ("json", "yaml", "pickle", "torch")
EXTENSIONS = {"json": "json", "yaml": "yaml", "pickle": "pkl", "torch": "pt"}
SERIALIZER_FOR_SUFFIX = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".pkl": "pickle", ".pickle": "pickle",
                         ".joblib": "pickle", ".pt": "torch", ".pth": "torch", ".ckpt": "torch"}
FRAMEWORKS = ("pytorch", "sklearn", "tensorflow", "xgboost", "lightgbm")


def _json_default(value: Any) -> Any:
    """Turn the common numeric containers (numpy arrays and scalars, tensors) into JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json_bytes(obj: Any) -> bytes:
    """Canonical JSON (sorted keys, no NaN) encoded as UTF-8."""
    return json.dumps(obj, sort_keys=True, indent=2, default=_json_default, allow_nan=False).encode()


def serialize_object(obj: Any, serializer: str) -> bytes:
    """Serialise ``obj`` with the named serializer, or raise SerializationError saying what to change."""
    if serializer not in SERIALIZERS:
        raise SerializationError(
            f"Unknown serializer {serializer!r}; use one of {', '.join(SERIALIZERS)}."
        )
    try:
        if serializer == "json":
            return to_json_bytes(obj)
        if serializer == "yaml":
            import yaml

            return yaml.safe_dump(json.loads(to_json_bytes(obj)), sort_keys=True).encode()
        if serializer == "pickle":
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        torch = sys.modules.get("torch")
        if torch is None:
            raise SerializationError("serializer='torch' needs torch: import torch before add_object.")
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return buffer.getvalue()
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError, pickle.PicklingError, AttributeError) as exc:
        hint = "use serializer='pickle'" if serializer in ("json", "yaml") else "make it picklable"
        raise SerializationError(
            f"Cannot serialise {type(obj).__name__} with {serializer}: {exc}; {hint} or convert it first."
        ) from exc


def _refuse_pickle(what: str) -> UnsafeLoadError:
    return UnsafeLoadError(
        f"{what} is pickled: loading it can run any code it carries. Pass allow_pickle=True only if you "
        "trust where it came from (e.g. you logged it yourself)."
    )


def deserialize_object(data: bytes, serializer: str, *, allow_pickle: bool = False, what: str = "The object") -> Any:
    """Read back what ``serialize_object`` wrote. Pickle is refused unless ``allow_pickle``; torch files
    load with ``weights_only=True`` (tensors, state dicts, plain containers) unless ``allow_pickle``."""
    try:
        if serializer == "json":
            return json.loads(data)
        if serializer == "yaml":
            import yaml

            return yaml.safe_load(data)
        if serializer == "pickle":
            if not allow_pickle:
                raise _refuse_pickle(what)
            return pickle.loads(data)
        if serializer == "torch":
            return _torch_load(data, allow_pickle, what)
    except SerializationError:
        raise
    except Exception as exc:  # any reader's own error becomes ours, with the cause attached
        raise SerializationError(f"{what} cannot be read as {serializer}: {exc}") from exc
    raise SerializationError(f"Unknown serializer {serializer!r}; use one of {', '.join(SERIALIZERS)}.")


def _torch_load(data: bytes | Path, allow_pickle: bool, what: str, map_location: str | None = None) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise SerializationError(f"{what} is a torch file; reading it needs torch (pip install torch).") from exc
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    if allow_pickle:
        return torch.load(source, weights_only=False, map_location=map_location)  # the caller opted in
    try:
        return torch.load(source, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as exc:  # holds objects beyond tensors: only a full unpickle reads it
        raise _refuse_pickle(what) from exc


def load_torch_file(path: Path, what: str = "The file") -> Any:
    """A torch file's tensors and plain containers, on the CPU, read with ``weights_only=True`` (never a full
    unpickle: UnsafeLoadError when the file needs one; SerializationError when torch cannot read it)."""
    try:
        return _torch_load(Path(path), False, what, map_location="cpu")
    except SerializationError:
        raise
    except Exception as exc:  # torch's own error for a file it cannot read
        raise SerializationError(f"{what} cannot be read as torch: {exc}") from exc


def check_json_value(value: Any, what: str) -> Any:
    """Return a plain-JSON copy of ``value`` (for metadata), or raise SerializationError."""
    try:
        plain = json.loads(to_json_bytes(value))
        json.dumps(plain, ensure_ascii=False).encode("utf-8")  # lone surrogates: no database can store them
        return plain
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise SerializationError(f"{what} must be JSON-serialisable (numbers, strings, lists, dicts): {exc}") from exc


def _isinstance_of(model: Any, module: str, *names: str) -> bool:
    """isinstance against classes of an already-imported module, without importing it."""
    root = sys.modules.get(module)
    if root is None:
        return False
    for dotted in names:
        target: Any = root
        for part in dotted.split("."):
            target = getattr(target, part, None)
            if target is None:
                break
        if isinstance(target, type) and isinstance(model, target):
            return True
    return False


def detect_framework(model: Any) -> str | None:
    """The framework a model object belongs to, decided by its type; None when unknown."""
    if _isinstance_of(model, "torch", "nn.Module"):
        return "pytorch"
    if _isinstance_of(model, "xgboost", "Booster", "XGBModel"):
        return "xgboost"
    if _isinstance_of(model, "lightgbm", "Booster", "LGBMModel"):
        return "lightgbm"
    if _isinstance_of(model, "sklearn", "base.BaseEstimator"):
        return "sklearn"
    if _isinstance_of(model, "tensorflow", "Module", "keras.Model"):
        return "tensorflow"
    return None


@dataclass(frozen=True)
class SavedModel:
    """A model written to bytes: the file name inside the artifact and its content."""

    filename: str
    data: bytes


def _via_tempdir(filename: str, write: Callable[[Path], None]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="tracelet-model-") as folder:
        target = Path(folder) / filename
        write(target)
        return target.read_bytes()


#: The content key (``digest.bytes_key``) of every model file this process wrote with ``save_model``: a
#: backend may load those back to re-save them in its own model format (they carry no one else's pickled code).
_SAVED_HERE: set[str] = set()


def saved_in_this_process(key: str) -> bool:
    """Whether this process wrote a model file with this content key (so loading it back runs no foreign code)."""
    return key in _SAVED_HERE


def save_model(model: Any, framework: str) -> SavedModel:
    """Write a model in its framework's native format; raise ModelFrameworkError if it cannot be saved."""
    saved = _save_model(model, framework)
    _SAVED_HERE.add(digest.bytes_key(saved.data))
    return saved


def _save_model(model: Any, framework: str) -> SavedModel:
    try:
        if framework == "pytorch":
            return SavedModel("model.pt", serialize_object(model, "torch"))
        if framework == "sklearn":
            return SavedModel("model.pkl", pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        if framework == "xgboost":
            return SavedModel("model.json", _via_tempdir("model.json", lambda p: model.save_model(str(p))))
        if framework == "lightgbm":
            booster = getattr(model, "booster_", model)
            return SavedModel("model.txt", _via_tempdir("model.txt", lambda p: booster.save_model(str(p))))
        if framework == "tensorflow":
            return SavedModel("model.keras", _via_tempdir("model.keras", lambda p: model.save(str(p))))
    except ModelFrameworkError:
        raise
    except Exception as exc:  # any framework's own save error becomes ours, with the cause attached
        raise ModelFrameworkError(f"Saving the {framework} model failed: {exc}") from exc
    raise ModelFrameworkError(f"Unknown framework {framework!r}; use one of {', '.join(FRAMEWORKS)}.")


def input_example_bytes(example: Any) -> bytes:
    """Serialise a model's input example as JSON (arrays and tensors become nested lists)."""
    try:
        return to_json_bytes(example)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"input_example must be JSON-serialisable (lists, dicts, numpy arrays, tensors): {exc}"
        ) from exc

