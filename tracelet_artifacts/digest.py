"""The one place that hashes: SHA-256 of bytes, of files (streamed), and of a stream being copied.

Files are always read in chunks, never whole, so a 10 GB checkpoint costs one chunk of memory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 4 * 1024 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def copy_and_hash(
    source: BinaryIO, target: BinaryIO, chunk_size: int = CHUNK_SIZE, on_bytes: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Copy ``source`` into ``target`` in chunks; return (hex SHA-256, bytes copied) of what was copied.

    ``on_bytes(copied so far)`` is called after each chunk (progress of a long copy)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        read = source.readinto(view)  # type: ignore[attr-defined]
        if not read:
            break
        digest.update(view[:read])
        target.write(view[:read])
        size += read
        if on_bytes is not None:
            on_bytes(size)
    return digest.hexdigest(), size


def combine(parts: Iterable[str]) -> str:
    """Hex SHA-256 over already-canonical lines (used for an artifact's digest over its sorted entries)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def file_signature(path: Path) -> tuple[int, int, int, int]:
    """(size, change time, inode, device) of a file: what the stat cache compares to skip re-hashing.

    The change time is the later of mtime and ctime: a rewrite that restores the old mtime (``cp -p``,
    ``rsync -t``, ``touch -r``) still moves ctime, which no user can set back.
    """
    st = path.stat()
    return st.st_size, max(st.st_mtime_ns, st.st_ctime_ns), st.st_ino, st.st_dev
