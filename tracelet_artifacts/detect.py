"""The one table that decides an artifact file's type, MIME type and whether it is text.

Every producer (the builder, the torch.save patch, the Lightning callback, the watcher, the CI bridge)
asks this module; nothing else guesses types from names.
"""

from __future__ import annotations

import functools
import mimetypes
import os
from dataclasses import dataclass
from pathlib import PurePath

from tracelet_artifacts.values import ArtifactType

SNIFF_BYTES = 8192


@dataclass(frozen=True)
class FileKind:
    """What one row of the detection table says about a file suffix."""

    artifact_type: str
    mime: str
    is_text: bool


# suffix -> (ArtifactType value, MIME, text?). Suffixes are matched longest first ("tar.gz" before "gz").
_TABLE: dict[str, FileKind] = {}


def _row(artifact_type: str, mime: str, is_text: bool, *suffixes: str) -> None:
    for suffix in suffixes:
        _TABLE[suffix] = FileKind(artifact_type, mime, is_text)


_row("checkpoint", "application/octet-stream", False, "ckpt")
_row("model", "application/octet-stream", False, "pt", "pth", "pkl", "joblib", "h5", "keras", "mar")
_row("model", "application/onnx", False, "onnx")
_row("model", "application/x-tflite", False, "tflite")
_row("weights", "application/octet-stream", False, "safetensors", "bin", "gguf")
_row("image", "image/png", False, "png")
_row("image", "image/jpeg", False, "jpg", "jpeg")
_row("image", "image/gif", False, "gif")
_row("image", "image/bmp", False, "bmp")
_row("image", "image/tiff", False, "tif", "tiff")
_row("image", "image/webp", False, "webp")
_row("image", "image/svg+xml", True, "svg")
_row("audio", "audio/wav", False, "wav")
_row("audio", "audio/mpeg", False, "mp3")
_row("audio", "audio/flac", False, "flac")
_row("audio", "audio/ogg", False, "ogg")
_row("audio", "audio/mp4", False, "m4a")
_row("video", "video/mp4", False, "mp4")
_row("video", "video/x-msvideo", False, "avi")
_row("video", "video/quicktime", False, "mov")
_row("video", "video/x-matroska", False, "mkv")
_row("video", "video/webm", False, "webm")
_row("visualization", "text/html", True, "html", "htm")
_row("visualization", "application/vnd.plotly.v1+json", True, "plotly.json")
_row("report", "application/pdf", False, "pdf")
_row("report", "text/markdown", True, "md")
_row("report", "application/xml", True, "xml")
_row("report", "text/plain", True, "log", "txt")
_row("config", "application/json", True, "json")
_row("config", "application/yaml", True, "yaml", "yml")
_row("config", "application/toml", True, "toml")
_row("config", "text/plain", True, "ini", "cfg", "conf", "env")
_row("code", "text/x-python", True, "py")
_row("code", "text/x-shellscript", True, "sh")
_row("code", "application/x-ipynb+json", True, "ipynb")
_row("dataset", "text/csv", True, "csv")
_row("dataset", "text/tab-separated-values", True, "tsv")
_row("dataset", "application/jsonl", True, "jsonl")
_row("dataset", "application/vnd.apache.parquet", False, "parquet")
_row("dataset", "application/vnd.apache.arrow.file", False, "arrow", "feather")
_row("dataset", "application/x-npy", False, "npy")
_row("dataset", "application/zip", False, "npz")
_row("dataset", "application/octet-stream", False, "tfrecord")
_row("custom", "application/zip", False, "zip")
_row("custom", "application/gzip", False, "gz", "tgz")
_row("custom", "application/gzip", False, "tar.gz")
_row("custom", "application/x-tar", False, "tar")

_CHECKPOINT_WORDS = ("checkpoint", "ckpt", "epoch", "step")
_TEXT_MIME_PREFIXES = ("text/",)
_TEXT_MIMES = {"application/json", "application/xml", "application/yaml", "application/toml"}


@functools.lru_cache(maxsize=4096)
def _suffix_key(name: str) -> str | None:
    parts = name.lower().split(".")
    for start in range(1, len(parts)):
        key = ".".join(parts[start:])
        if key in _TABLE:
            return key
    return None


def kind_for_name(name: str | PurePath) -> FileKind | None:
    """Return the table row for a file name, or None for a suffix the table does not know."""
    key = _suffix_key(os.path.basename(name) if isinstance(name, str) else name.name)
    return _TABLE[key] if key else None


def mime_type(name: str | PurePath) -> str:
    """MIME type of a file name, from the table first and the standard library second."""
    kind = kind_for_name(name)
    if kind:
        return kind.mime
    guessed, _ = mimetypes.guess_type(PurePath(name).name)
    return guessed or "application/octet-stream"


def looks_like_text(head: bytes) -> bool:
    """True when a file's first bytes hold no NUL and decode as UTF-8 (a truncated last char is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def is_text(name: str | PurePath, head: bytes | None = None) -> bool:
    """Whether content is text: the table decides known suffixes, the first bytes decide the rest."""
    kind = kind_for_name(name)
    if kind:
        return kind.is_text
    if _text_mime(mime_type(name)):
        return True
    return looks_like_text(head) if head is not None else False


def by_name(name: str | PurePath) -> tuple[str, bool | None]:
    """(MIME type, whether text) of a file from its name alone; None where only its first bytes can tell
    (``is_text(name, head)`` gives the same answers). Answered once per suffix: a dataset folder of
    thousands of files asks this for every one."""
    base = os.path.basename(name).lower()
    stem, dot, rest = base.partition(".")
    return _by_suffixes(bool(stem), dot + rest)


@functools.lru_cache(maxsize=1024)
def _by_suffixes(has_stem: bool, suffixes: str) -> tuple[str, bool | None]:
    name = ("x" if has_stem else "") + suffixes
    mime = mime_type(name)
    return mime, is_text(name) if kind_for_name(name) or _text_mime(mime) else None


def _text_mime(mime: str) -> bool:
    return mime.startswith(_TEXT_MIME_PREFIXES) or mime in _TEXT_MIMES


def read_head(path: str | os.PathLike[str], size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of a file (fewer for a short file)."""
    with open(path, "rb") as handle:
        return handle.read(size)


def artifact_type_for(name: str | PurePath) -> ArtifactType:
    """The ArtifactType a file would be logged as, from its name.

    ``*.pt``/``*.pth`` whose name mentions a checkpoint, epoch or step count as CHECKPOINT.
    """
    kind = kind_for_name(name)
    if kind is None:
        return ArtifactType.CUSTOM
    if kind.artifact_type == "model" and any(w in PurePath(name).name.lower() for w in _CHECKPOINT_WORDS):
        return ArtifactType.CHECKPOINT
    return ArtifactType.parse(kind.artifact_type)  # the table names VISUALIZATION in full
