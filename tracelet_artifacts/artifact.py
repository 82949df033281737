"""The artifact builder (``TraceletArtifact``) and step 1 of the write path, ``freeze``.

Bad input fails at the call that brought it, with a message that says what to do. ``freeze(art)`` takes a
``FrozenArtifact`` of what the builder holds (``frozen.py``); ``art.freeze()`` goes on to hash it into an
immutable ``Manifest`` without a store.

    art = TraceletArtifact("classifier", ArtifactType.MODEL, description="ResNet-18")
    art.add_file("model.pth", "model/classifier.pth").add_object({"lr": 1e-3}, "hparams")
    manifest = art.freeze()

The shared values (``ArtifactType``, ``Manifest``, ``ManifestEntry``, ``Reference``, ``ModelInfo``) live on the
ground floor, ``tracelet_artifacts.values``; the name and path checks in ``names.py``. Both stay importable
from here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tracelet_artifacts import serialize
from tracelet_artifacts.errors import (
    ArtifactError,
    ArtifactFileError,
    InvalidArtifactPathError,
    ModelFrameworkError,
    UnsupportedReferenceError,
)
from tracelet_artifacts.frozen import (
    ContentSink,
    FileSpec,
    FrozenArtifact,
    HashOnlySink,
    ObjectSpec,
    compute_digest,
)
from tracelet_artifacts.names import (
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PATH_LENGTH,
    MAX_SEGMENT_BYTES,
    is_utf8,
    name_segment,
    validate_artifact_path,
    validate_key,
    validate_name,
)
from tracelet_artifacts.values import (
    MEDIA_TYPES,
    MODEL_TYPES,
    ArtifactType,
    EntryKind,
    Manifest,
    ManifestEntry,
    ModelInfo,
    Reference,
    thaw_json,
)
from tracelet_artifacts.values.manifest import freeze_json
from tracelet_artifacts.version_names import split_version

# Names this module has always offered (the values, checks and freezing moved out; these are re-exports).
__all__ = ["MAX_KEY_LENGTH", "MAX_NAME_LENGTH", "MAX_PATH_LENGTH", "MAX_SEGMENT_BYTES", "MEDIA_TYPES", "MODEL_TYPES",
           "REFERENCE_SCHEMES", "ArtifactType", "ContentSink", "EntryKind", "FileSpec", "FrozenArtifact",
           "HashOnlySink", "Manifest", "ManifestEntry", "ModelInfo", "ObjectSpec", "Reference", "TraceletArtifact",
           "compute_digest", "freeze", "name_segment", "thaw_json", "validate_artifact_path", "validate_key",
           "validate_name"]

REFERENCE_SCHEMES = ("s3", "gs", "http", "https", "file")


def freeze(artifact: TraceletArtifact) -> FrozenArtifact:
    """Step 1 of the write path: what ``artifact`` holds now, immutable, its metadata checked.

    Nothing is read or written yet, so refused metadata fails here with no blob stored; later changes to
    the builder do not reach the frozen copy.
    """
    return FrozenArtifact(
        name=artifact.name,
        artifact_type=artifact.type,
        description=artifact.description,
        files=artifact.files,
        objects=artifact.objects,
        references=artifact.references,
        metadata=freeze_json(artifact.checked_metadata()),
        labels=artifact.labels,
        model=artifact.model,
    )


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
        version: int | str | None = None,
    ) -> None:
        self._name = validate_name(name)
        self.version = version
        self._type = ArtifactType.parse(artifact_type)
        if description is not None and (not isinstance(description, str) or not is_utf8(description)):
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
    def version(self) -> int | str | None:
        """The version to log this as: None (the next number), a number, or a version name (``"1.2.0"``)."""
        return self._version

    @version.setter
    def version(self, value: int | str | None) -> None:
        split_version(value)  # a malformed version fails here, at the assignment
        self._version = value

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
        files = sum(_stat_size(f.source) for f in self._files)
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
        folder = path.rpartition("/")[0]
        while folder and folder not in self._folders:  # a known folder has no file at it or above it
            if folder in self._paths:
                return f"has a file at {folder!r}, so {path!r} cannot be stored under it"
            folder = folder.rpartition("/")[0]
        return None

    def _take(self, path: str) -> None:
        self._paths.add(path)
        folder = path.rpartition("/")[0]
        while folder and folder not in self._folders:  # a known folder's own folders are known already
            self._folders.add(folder)
            folder = folder.rpartition("/")[0]

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
        self._files.append(FileSpec(str(source.absolute()), path, description))
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
        prefix = artifact_path.rstrip("/") + "/" if artifact_path else ""
        found = [(file_path, prefix + inner)
                 for file_path, inner in _walk(root, root.resolve(), allow_outside_symlinks, self._check_link)]
        claimed = [validate_artifact_path(inner) for _, inner in found]
        clash = [reason for reason in map(self._clash, claimed) if reason]
        if clash:
            raise InvalidArtifactPathError(
                f"Artifact {self._name!r} {clash[0]} (and {len(clash) - 1} more); "
                "add the folder under another artifact_path."
            )
        for (file_path, _), inner in zip(found, claimed, strict=False):
            self._take(inner)
            self._files.append(FileSpec(file_path, inner, description))
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
        """Hash every entry (streaming files through ``sink``, default: hash only) into an immutable Manifest."""
        return freeze(self).to_manifest(sink or HashOnlySink())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary of what the builder holds (no content)."""
        return {
            "name": self._name,
            "type": self._type.value,
            "description": self._description,
            "size_bytes": self.size_bytes,
            "files": [{"local_path": f.source, "artifact_path": f.artifact_path,
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


def _stat_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _walk(root: Path, real_root: Path, allow_outside_symlinks: bool, check_link: Any) -> Iterator[tuple[str, str]]:
    """(absolute path, path under ``root`` joined by '/') of every regular file under ``root``: each folder's
    files in name order, then its folders in name order, one directory listing per folder and no further
    system call for a plain file. Links to folders are checked, and followed only when
    ``allow_outside_symlinks``; a link back into a folder being walked (a loop) is skipped."""
    stack: list[tuple[str, str, tuple[Path, ...]]] = [(os.path.abspath(root), "", (real_root,))]
    while stack:
        folder, prefix, chain = stack.pop()
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        folders = []
        for entry in entries:
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            if is_folder:
                folders.append(entry)
            elif entry.is_file(follow_symlinks=False) or (
                    entry.is_symlink() and _regular_file(entry.path, real_root, allow_outside_symlinks, check_link)):
                yield entry.path, prefix + entry.name
        below = []
        for entry in folders:
            linked = entry.is_symlink()
            if linked:
                check_link(Path(entry.path), real_root, allow_outside_symlinks)
            real = Path(entry.path).resolve()
            if real not in chain and (allow_outside_symlinks or not linked):
                below.append((entry.path, f"{prefix}{entry.name}/", (*chain, real)))
        stack.extend(reversed(below))


def _regular_file(path: str, real_root: Path, allow_outside_symlinks: bool,
                  check_link: Any) -> bool:
    """Whether ``path`` (found walking a folder) is a regular file to add; a symlink is checked first."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            check_link(Path(path), real_root, allow_outside_symlinks)
            info = os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EBADF):
            return False  # gone meanwhile, a link to nothing, or a loop (as Path.is_file says)
        raise
    return stat.S_ISREG(info.st_mode)


# Tracelet's names for the item types of ``files``, ``objects`` and ``references`` (its API reference uses them).
ArtifactFile = FileSpec
ArtifactObject = ObjectSpec
ArtifactReference = Reference
