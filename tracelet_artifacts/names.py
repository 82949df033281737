"""What may name an artifact, a path inside it, a label or a metadata key; every check fails with a message
that says what is allowed. The builder, the store and the hooks all check here.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from tracelet_artifacts.errors import ArtifactError, InvalidArtifactNameError, InvalidArtifactPathError

MAX_NAME_LENGTH = 200
MAX_PATH_LENGTH = 1024
MAX_SEGMENT_BYTES = 255  # what common filesystems allow for one file or folder name
MAX_KEY_LENGTH = 200  # labels and metadata keys
_NAME_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
#: A path already in normal form (plain segments, none empty or starting with '.'): accepted as it is.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}(?:/[A-Za-z0-9_-][A-Za-z0-9._-]{0,254})*")


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


def name_segment(text: str) -> str:
    """``text`` made into one valid name segment: other characters become ``_`` (``lr=0.1`` → ``lr_0.1``)."""
    cleaned = _UNSAFE_NAME_CHARS.sub("_", text).strip("_") or "_"
    return cleaned if cleaned[0].isalnum() or cleaned[0] == "_" else f"_{cleaned}"


def validate_artifact_path(path: str) -> str:
    """Return the normalised POSIX path inside an artifact, or raise InvalidArtifactPathError."""
    if isinstance(path, str) and len(path) <= MAX_PATH_LENGTH and _PLAIN_PATH.fullmatch(path):
        return path  # what a folder of ordinary file names gives, thousands at a time
    if not isinstance(path, str) or not path.strip():
        raise InvalidArtifactPathError("An artifact path must be a non-empty string such as 'model/weights.pt'.")
    if "\x00" in path:
        raise InvalidArtifactPathError(f"Artifact path {path!r} contains a NUL byte; remove it.")
    if not is_utf8(path):
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


def is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (undecodable file names), which no catalog can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_key(key: Any, what: str) -> str:
    """Return ``key`` if it can be a label or a metadata key, else raise ArtifactError."""
    if (not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH or _CONTROL.search(key)
            or not is_utf8(key)):
        shown = key[:80] if isinstance(key, str) else key
        raise ArtifactError(
            f"Invalid {what} {shown!r}: use a non-empty string of at most {MAX_KEY_LENGTH} characters "
            "with no control characters (newline, tab, NUL…)."
        )
    return key
