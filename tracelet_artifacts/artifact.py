"""The artifact builder (``TraceletArtifact``) and what freezing it gives: an immutable, hashed ``Manifest``.

Bad input fails at the call that brought it, with a message that says what to do.

    art = TraceletArtifact("classifier", ArtifactType.MODEL, description="ResNet-18")
    art.add_file("model.pth", "model/classifier.pth").add_object({"lr": 1e-3}, "hparams")
    manifest = art.freeze()
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from tracelet_artifacts import detect, digest, serialize
from tracelet_artifacts.errors import (
    ArtifactError,
    ArtifactFileError,
    InvalidArtifactNameError,
    InvalidArtifactPathError,
    ModelFrameworkError,
    UnsupportedReferenceError,
)


class ArtifactType(str, Enum):
    """What an artifact holds; routing and backends decide by it."""

    MODEL = "model"
    CHECKPOINT = "checkpoint"
    WEIGHTS = "weights"
    DATASET = "dataset"
    SAMPLE = "sample"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    VISUALIZATION = "viz"
    REPORT = "report"
    CONFIG = "config"
    CODE = "code"
    CUSTOM = "custom"

    @classmethod
    def parse(cls, value: ArtifactType | str) -> ArtifactType:
        """Accept an ArtifactType, its value ("viz") or its name ("VISUALIZATION")."""
        if isinstance(value, cls):
            return value
        text = str(value).strip()
        for member in cls:
            if text.lower() in (member.value, member.name.lower()):
                return member
        names = ", ".join(m.name for m in cls)
        raise ArtifactError(f"Unknown artifact type {value!r}; use one of {names}.")


MODEL_TYPES = frozenset({ArtifactType.MODEL, ArtifactType.CHECKPOINT, ArtifactType.WEIGHTS})
MEDIA_TYPES = frozenset(
    {ArtifactType.IMAGE, ArtifactType.AUDIO, ArtifactType.VIDEO, ArtifactType.VISUALIZATION}
)
REFERENCE_SCHEMES = ("s3", "gs", "http", "https", "file")
MAX_NAME_LENGTH = 200
MAX_PATH_LENGTH = 1024
MAX_SEGMENT_BYTES = 255  # what common filesystems allow for one file or folder name
MAX_KEY_LENGTH = 200  # labels and metadata keys
_NAME_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
EntryKind = Literal["file", "object", "model"]


def validate_name(name: str) -> str:
    """Return ``name`` if it can name an artifact, else raise InvalidArtifactNameError.

    Names are segments of letters, digits, ``. _ -`` joined by ``/`` (``runs/a/model.pt``);
    ``:`` and ``@`` are reserved for ``NAME:VERSION`` and ``NAME@ALIAS``.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArtifactNameError("An artifact name must be a non-empty string.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArtifactNameError(
            f"Artifact name is {len(name)} characters long; use at most {MAX_NAME_LENGTH}."
        )
    segments = name.split("/")
    if any(s in ("", ".", "..") or not _NAME_SEGMENT.fullmatch(s) for s in segments):
        raise InvalidArtifactNameError(
            f"Invalid artifact name {name!r}: use letters, digits, '.', '_', '-' in segments joined by "
            "'/', with no empty, '.' or '..' segment (':' and '@' are reserved for versions and aliases)."
        )
    return name


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def name_segment(text: str) -> str:
    """``text`` made into one valid name segment: other characters become ``_`` (``lr=0.1`` → ``lr_0.1``)."""
    cleaned = _UNSAFE_NAME_CHARS.sub("_", text).strip("_") or "_"
    return cleaned if cleaned[0].isalnum() or cleaned[0] == "_" else f"_{cleaned}"


def validate_artifact_path(path: str) -> str:
    """Return the normalised POSIX path inside an artifact, or raise InvalidArtifactPathError."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidArtifactPathError("An artifact path must be a non-empty string such as 'model/weights.pt'.")
    if "\x00" in path:
        raise InvalidArtifactPathError(f"Artifact path {path!r} contains a NUL byte; remove it.")
    if not _is_utf8(path):
        raise InvalidArtifactPathError(
            f"Artifact path {path[:80]!r} is not valid UTF-8 text (a file name in another encoding?); rename it."
        )
    if _CONTROL.search(path):
        raise InvalidArtifactPathError(
            f"Artifact path {path[:80]!r} contains a control character (newline, tab, escape…); remove it."
        )
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidArtifactPathError(f"Artifact path is {len(path)} characters; use at most {MAX_PATH_LENGTH}.")
    posix = path.replace("\\", "/")
    parts = [p for p in PurePosixPath(posix).parts if p != "."]
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", "/".join(parts)):  # "./C:" is a drive too
        raise InvalidArtifactPathError(
            f"Artifact path {path!r} is absolute; give a path relative to the artifact, e.g. 'model/x.pt'."
        )
    if ".." in parts:
        raise InvalidArtifactPathError(
            f"Artifact path {path!r} escapes the artifact with '..'; give a path inside it."
        )
    if not "".join(parts).strip():  # " /" would otherwise become " ", refused when read back
        raise InvalidArtifactPathError(f"Artifact path {path!r} names no file; give e.g. 'data/train.csv'.")
    long = next((p for p in parts if len(p.encode()) > MAX_SEGMENT_BYTES), None)
    if long is not None:
        raise InvalidArtifactPathError(
            f"Artifact path {path[:80]!r}… has a segment of {len(long.encode())} bytes; "
            f"file systems allow at most {MAX_SEGMENT_BYTES} per file or folder name."
        )
    return "/".join(parts)


def _is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (undecodable file names), which no catalog can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_key(key: Any, what: str) -> str:
    """Return ``key`` if it can be a label or a metadata key, else raise ArtifactError."""
    if (not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH or _CONTROL.search(key)
            or not _is_utf8(key)):
        shown = key[:80] if isinstance(key, str) else key
        raise ArtifactError(
            f"Invalid {what} {shown!r}: use a non-empty string of at most {MAX_KEY_LENGTH} characters "
            "with no control characters (newline, tab, NUL…)."
        )
    return key


@dataclass(frozen=True)
class FileSpec:
    """A local file the builder will store under ``artifact_path``."""

    local_path: Path
    artifact_path: str
    description: str | None = None


@dataclass(frozen=True)
class ObjectSpec:
    """An object already serialised once, at the call; ``data`` is what will be stored."""

    name: str
    artifact_path: str
    serializer: str
    data: bytes
    description: str | None = None
    kind: EntryKind = "object"


@dataclass(frozen=True)
class Reference:
    """An external URI recorded in the artifact but not uploaded."""

    uri: str
    size_bytes: int | None = None
    sha256: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "size_bytes": self.size_bytes, "sha256": self.sha256,
                "description": self.description}


@dataclass(frozen=True)
class ModelInfo:
    """What add_model recorded: the framework, the model's class, and where its files are."""

    framework: str
    class_name: str
    path: str
    input_example_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "class_name": self.class_name, "path": self.path,
                "input_example_path": self.input_example_path}


@dataclass(frozen=True)
class ManifestEntry:
    """One stored file of a frozen artifact."""

    path: str
    size: int
    sha256: str
    mime: str
    is_text: bool
    kind: EntryKind = "file"
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "mime": self.mime,
                "is_text": self.is_text, "kind": self.kind, "description": self.description}


def _freeze_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze_json(v) for v in value)
    return value


def thaw_json(value: Any) -> Any:
    """A plain, mutable JSON copy of frozen metadata."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw_json(v) for v in value]
    return value


def compute_digest(entries: Iterable[ManifestEntry], references: Iterable[Reference]) -> str:
    """The artifact digest: a hash over the sorted entries (path, digest, size) and references."""
    lines = sorted(f"E\t{e.path}\t{e.sha256}\t{e.size}" for e in entries)
    lines += sorted(f"R\t{r.uri}\t{r.sha256 or ''}\t{r.size_bytes if r.size_bytes is not None else ''}"
                    for r in references)
    return digest.combine(lines)


@dataclass(frozen=True)
class Manifest:
    """An immutable, hashed description of an artifact: what ``log_artifact`` stores and routes."""

    name: str
    artifact_type: ArtifactType
    digest: str
    entries: tuple[ManifestEntry, ...]
    references: tuple[Reference, ...] = ()
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    labels: tuple[str, ...] = ()
    model: ModelInfo | None = None

    @property
    def size_bytes(self) -> int:
        """Bytes stored in the artifact's own entries (references excluded)."""
        return sum(e.size for e in self.entries)

    def entry(self, path: str) -> ManifestEntry:
        """The entry stored under ``path``."""
        for item in self.entries:
            if item.path == path:
                return item
        raise KeyError(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.artifact_type.value,
            "digest": self.digest,
            "description": self.description,
            "entries": [e.to_dict() for e in self.entries],
            "references": [r.to_dict() for r in self.references],
            "metadata": thaw_json(self.metadata),
            "labels": list(self.labels),
            "model": self.model.to_dict() if self.model else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(
            name=data["name"],
            artifact_type=ArtifactType.parse(data["type"]),
            digest=data["digest"],
            description=data.get("description"),
            entries=tuple(ManifestEntry(**e) for e in data["entries"]),
            references=tuple(Reference(**r) for r in data.get("references", ())),
            metadata=_freeze_json(data.get("metadata") or {}),
            labels=tuple(data.get("labels") or ()),
            model=ModelInfo(**data["model"]) if data.get("model") else None,
        )


class ContentSink(Protocol):
    """Where freezing puts content: each call returns (sha256, size) of what it took in."""

    def put_file(self, path: Path) -> tuple[str, int]: ...

    def put_bytes(self, data: bytes) -> tuple[str, int]: ...


class HashOnlySink:
    """A sink that only hashes: freezing without a store."""

    def put_file(self, path: Path) -> tuple[str, int]:
        return digest.sha256_file(path), path.stat().st_size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return digest.sha256_bytes(data), len(data)


class TraceletArtifact:
    """A builder for one artifact; every ``add_*`` validates at the call and returns self.

    Example::

        art = TraceletArtifact("eval-report", ArtifactType.REPORT)
        art.add_file("report.html").add_reference("s3://bucket/raw.parquet", size_bytes=10_000)
        art.metadata["accuracy"] = 0.93
    """

    def __init__(
        self,
        name: str,
        artifact_type: ArtifactType | str,
        description: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        labels: Iterable[str] = (),
    ) -> None:
        self._name = validate_name(name)
        self._type = ArtifactType.parse(artifact_type)
        if description is not None and (not isinstance(description, str) or not _is_utf8(description)):
            raise ArtifactError(f"The description of {name!r} must be UTF-8 text.")
        self._description = description
        self._files: list[FileSpec] = []
        self._objects: list[ObjectSpec] = []
        self._references: list[Reference] = []
        self._paths: set[str] = set()
        self._folders: set[str] = set()  # every folder that holds an entry: no file may take its path
        self._model: ModelInfo | None = None
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._labels: list[str] = []
        for label in labels:
            self.add_label(label)

    # -- properties -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> ArtifactType:
        return self._type

    @property
    def description(self) -> str | None:
        return self._description

    @property
    def files(self) -> tuple[FileSpec, ...]:
        return tuple(self._files)

    @property
    def objects(self) -> tuple[ObjectSpec, ...]:
        return tuple(self._objects)

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(self._references)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._labels)

    @property
    def model(self) -> ModelInfo | None:
        return self._model

    @property
    def size_bytes(self) -> int:
        """Bytes of files (as of when they were added), objects, and references of known size."""
        files = sum(_stat_size(f.local_path) for f in self._files)
        objects = sum(len(o.data) for o in self._objects)
        refs = sum(r.size_bytes or 0 for r in self._references)
        return files + objects + refs

    # -- adding content ---------------------------------------------------------------------------
    def _clash(self, path: str) -> str | None:
        """Why ``path`` cannot join the entries: taken, a folder of other entries, or under a file entry."""
        if path in self._paths:
            return f"already has an entry at {path!r}"
        if path in self._folders:
            return f"already has entries under the folder {path!r}"
        parents = path.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            folder = "/".join(parents[:depth])
            if folder in self._paths:
                return f"has a file at {folder!r}, so {path!r} cannot be stored under it"
        return None

    def _take(self, path: str) -> None:
        self._paths.add(path)
        parents = path.split("/")[:-1]
        self._folders.update("/".join(parents[:depth]) for depth in range(1, len(parents) + 1))

    def _claim(self, artifact_path: str) -> str:
        path = validate_artifact_path(artifact_path)
        clash = self._clash(path)
        if clash:
            raise InvalidArtifactPathError(
                f"Artifact {self._name!r} {clash}; give this one another artifact_path."
            )
        self._take(path)
        return path

    def add_file(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None, description: str | None = None
    ) -> TraceletArtifact:
        """Add one local file, stored under ``artifact_path`` (default: the file's name)."""
        source = Path(local_path)
        try:
            info = source.stat()
        except FileNotFoundError:
            raise ArtifactFileError(
                f"No file at {str(source)!r}; check the path (relative to {os.getcwd()})."
            ) from None
        except OSError as exc:
            raise ArtifactFileError(f"Cannot read {str(source)!r}: {exc.strerror}.") from exc
        if stat.S_ISDIR(info.st_mode):
            raise ArtifactFileError(f"{str(source)!r} is a directory; use add_dir() for folders.")
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactFileError(f"{str(source)!r} is not a regular file (a device, socket or pipe).")
        if not os.access(source, os.R_OK):
            raise ArtifactFileError(f"{str(source)!r} is not readable; check its permissions.")
        path = self._claim(artifact_path if artifact_path is not None else source.name)
        self._files.append(FileSpec(source.absolute(), path, description))
        return self

    def add_dir(
        self,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        description: str | None = None,
        *,
        allow_outside_symlinks: bool = False,
    ) -> TraceletArtifact:
        """Add every file under a folder, keeping relative paths under ``artifact_path`` (default: root).

        Symlinks that point outside the folder are refused unless ``allow_outside_symlinks=True``.
        """
        root = Path(local_dir)
        if not root.exists():
            raise ArtifactFileError(f"No folder at {str(root)!r}; check the path (relative to {os.getcwd()}).")
        if not root.is_dir():
            raise ArtifactFileError(f"{str(root)!r} is a file; use add_file() for single files.")
        real_root = root.resolve()
        found: list[tuple[Path, str]] = []
        # Allowed links to folders are followed; a link back into a folder being walked is a loop, skipped.
        chains: dict[str, tuple[Path, ...]] = {os.fspath(root): (real_root,)}
        for current, dirs, names in os.walk(root, followlinks=allow_outside_symlinks):
            dirs.sort()
            base = Path(current)
            for child in [base / d for d in dirs if (base / d).is_symlink()]:
                self._check_link(child, real_root, allow_outside_symlinks)
            chain = chains.pop(current, ())
            dirs[:] = [d for d in dirs if (base / d).resolve() not in chain]
            chains.update({os.path.join(current, d): (*chain, (base / d).resolve()) for d in dirs})
            for file_name in sorted(names):
                file_path = base / file_name
                if file_path.is_symlink():
                    self._check_link(file_path, real_root, allow_outside_symlinks)
                if not file_path.is_file():
                    continue
                relative = file_path.relative_to(root).as_posix()
                inner = f"{artifact_path.rstrip('/')}/{relative}" if artifact_path else relative
                found.append((file_path, inner))
        claimed = [validate_artifact_path(inner) for _, inner in found]
        clash = [reason for reason in map(self._clash, claimed) if reason]
        if clash:
            raise InvalidArtifactPathError(
                f"Artifact {self._name!r} {clash[0]} (and {len(clash) - 1} more); "
                "add the folder under another artifact_path."
            )
        for (file_path, _), inner in zip(found, claimed, strict=False):
            self._take(inner)
            self._files.append(FileSpec(file_path.absolute(), inner, description))
        return self

    @staticmethod
    def _check_link(link: Path, real_root: Path, allowed: bool) -> None:
        try:
            target = link.resolve()
        except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop, later ones OSError
            if allowed:
                return  # a link that leads nowhere holds nothing to add
            raise ArtifactFileError(
                f"{str(link)!r} is a symlink loop (it never reaches a file or folder); remove it, or pass "
                "allow_outside_symlinks=True to skip it."
            ) from None
        if not allowed and not target.is_relative_to(real_root):
            raise ArtifactFileError(
                f"{str(link)!r} is a symlink to {str(target)!r}, outside the folder being added; "
                "pass allow_outside_symlinks=True to include it."
            )

    def add_object(
        self, obj: Any, name: str, serializer: str = "json", description: str | None = None
    ) -> TraceletArtifact:
        """Serialise ``obj`` now (json, yaml, pickle or torch) and store it as ``<name>.<ext>``."""
        data = serialize.serialize_object(obj, serializer)
        path = self._claim(f"{name}.{serialize.EXTENSIONS[serializer]}")
        self._objects.append(ObjectSpec(name, path, serializer, data, description))
        return self

    def add_reference(
        self,
        uri: str,
        size_bytes: int | None = None,
        description: str | None = None,
        *,
        sha256: str | None = None,
    ) -> TraceletArtifact:
        """Record an external URI (s3, gs, http(s), file) without uploading it."""
        parsed = urlparse(uri)
        if parsed.scheme not in REFERENCE_SCHEMES:
            raise UnsupportedReferenceError(
                f"Reference {uri!r} has scheme {parsed.scheme or 'none'!r}; use one of "
                f"{', '.join(s + '://' for s in REFERENCE_SCHEMES)} (local files: add_file, or file:///abs/path)."
            )
        if parsed.scheme != "file" and not parsed.netloc:
            raise UnsupportedReferenceError(f"Reference {uri!r} names no bucket or host; e.g. s3://bucket/key.")
        if parsed.scheme == "file" and not parsed.path.startswith("/"):
            raise UnsupportedReferenceError(f"Reference {uri!r} must be an absolute file:///path.")
        if size_bytes is not None and (not isinstance(size_bytes, int) or size_bytes < 0):
            raise ArtifactError(f"size_bytes must be a non-negative integer, not {size_bytes!r}.")
        if any(r.uri == uri for r in self._references):
            raise InvalidArtifactPathError(f"Reference {uri!r} is already in artifact {self._name!r}.")
        self._references.append(Reference(uri, size_bytes, sha256, description))
        return self

    def add_model(
        self,
        model: Any,
        framework: str | None = None,
        input_example: Any = None,
        description: str | None = None,
    ) -> TraceletArtifact:
        """Save a model in its framework's format under ``model/`` (framework detected by type).

        Any artifact type can hold a model (a REPORT with the model it describes); backends with a model
        registry register it only when the artifact is a MODEL."""
        if self._model is not None:
            raise ModelFrameworkError(f"Artifact {self._name!r} already holds a model; create one artifact per model.")
        chosen = framework or serialize.detect_framework(model)
        if chosen is None:
            raise ModelFrameworkError(
                f"Cannot tell the framework of {type(model).__name__}; pass framework= one of "
                f"{', '.join(serialize.FRAMEWORKS)}, or use add_object(..., serializer='pickle')."
            )
        if chosen not in serialize.FRAMEWORKS:
            raise ModelFrameworkError(f"Unknown framework {chosen!r}; use one of {', '.join(serialize.FRAMEWORKS)}.")
        saved = serialize.save_model(model, chosen)
        example_path = None
        example = serialize.input_example_bytes(input_example) if input_example is not None else None
        path = self._claim(f"model/{saved.filename}")
        if example is not None:
            example_path = self._claim("model/input_example.json")
            self._objects.append(ObjectSpec("input_example", example_path, "json", example, None, "model"))
        self._objects.append(ObjectSpec("model", path, chosen, saved.data, description, "model"))
        self._model = ModelInfo(chosen, f"{type(model).__module__}.{type(model).__qualname__}", path, example_path)
        return self

    def add_label(self, label: str) -> TraceletArtifact:
        """Attach a label (a short tag such as ``"baseline"``) used by queries."""
        validate_key(label, "label")
        if label not in self._labels:
            self._labels.append(label)
        return self

    # -- freezing ---------------------------------------------------------------------------------
    def checked_metadata(self) -> Any:
        """A plain JSON copy of ``metadata``, or the error that would stop freezing (keys, values).

        Stores call it before copying any file, so refused metadata leaves nothing written.
        """
        for key in self.metadata:
            validate_key(key, f"metadata key of artifact {self._name!r}")
        return serialize.check_json_value(self.metadata, f"metadata of artifact {self._name!r}")

    def freeze(self, sink: ContentSink | None = None) -> Manifest:
        """Hash every entry (streaming files through ``sink``) into an immutable Manifest."""
        sink = sink or HashOnlySink()
        metadata = self.checked_metadata()
        entries: list[ManifestEntry] = []
        for spec in self._files:
            try:
                sha, size = sink.put_file(spec.local_path)
                head = detect.read_head(spec.local_path) if detect.kind_for_name(spec.artifact_path) is None else None
            except FileNotFoundError:
                raise ArtifactFileError(
                    f"{str(spec.local_path)!r} was removed after add_file(); keep it until log_artifact() returns."
                ) from None
            entries.append(self._entry(spec.artifact_path, sha, size, "file", spec.description, head))
        for obj in self._objects:
            sha, size = sink.put_bytes(obj.data)
            entries.append(self._entry(obj.artifact_path, sha, size, obj.kind, obj.description, obj.data[:8192]))
        entries.sort(key=lambda e: e.path)
        references = tuple(self._references)
        return Manifest(
            name=self._name,
            artifact_type=self._type,
            digest=compute_digest(entries, references),
            entries=tuple(entries),
            references=references,
            description=self._description,
            metadata=_freeze_json(metadata),
            labels=tuple(self._labels),
            model=self._model,
        )

    @staticmethod
    def _entry(
        path: str, sha: str, size: int, kind: EntryKind, description: str | None, head: bytes | None
    ) -> ManifestEntry:
        return ManifestEntry(path, size, sha, detect.mime_type(path), detect.is_text(path, head), kind, description)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary of what the builder holds (no content)."""
        return {
            "name": self._name,
            "type": self._type.value,
            "description": self._description,
            "size_bytes": self.size_bytes,
            "files": [{"local_path": str(f.local_path), "artifact_path": f.artifact_path,
                       "description": f.description} for f in self._files],
            "objects": [{"name": o.name, "artifact_path": o.artifact_path, "serializer": o.serializer,
                         "size": len(o.data), "description": o.description} for o in self._objects],
            "references": [r.to_dict() for r in self._references],
            "metadata": dict(self.metadata),
            "labels": list(self._labels),
            "model": self._model.to_dict() if self._model else None,
        }

    def __repr__(self) -> str:
        return (f"TraceletArtifact(name={self._name!r}, type={self._type.name}, files={len(self._files)}, "
                f"objects={len(self._objects)}, references={len(self._references)})")


def _stat_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# Tracelet's names for the item types of ``files``, ``objects`` and ``references`` (its API reference uses them).
ArtifactFile = FileSpec
ArtifactObject = ObjectSpec
ArtifactReference = Reference
