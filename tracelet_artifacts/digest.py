"""The one place that hashes: content keys for blobs, and SHA-256 / MD5 where a backend or a user needs them.

A blob's *key* names its content and says how it was hashed:

* ``blake3:<64 hex>`` — BLAKE3, what every new blob is named (3 to 10 GB/s here, against SHA-256's 1.5);
* ``<64 hex>`` — SHA-256, what blobs stored before BLAKE3 are named; they keep their names and keep working.

``key_path`` says where a key lives under a blob folder or a bucket prefix; ``file_key``/``bytes_key`` name
content; ``matches`` checks a file against a key with the key's own algorithm. Files are hashed a window at a
time (read into one buffer, or memory-mapped for several threads), never read whole, so a 10 GB checkpoint costs
no more memory than a small one.
``VerifyingReader`` checks a stream against a key while it is read (what ``get`` serves through).
"""

from __future__ import annotations

import functools
import hashlib
import mmap
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from tracelet_artifacts.errors import IntegrityError

CHUNK_SIZE = 4 * 1024 * 1024
BLAKE3, SHA256, MD5 = "blake3", "sha256", "md5"
#: The algorithm new blobs are named with.
DEFAULT_ALGORITHM = BLAKE3
#: Algorithms a key can name content with (the first is the default).
KEY_ALGORITHMS = (BLAKE3, SHA256)
#: Algorithms a hex digest can be computed in (keys, plus MD5 for W&B-style checks).
ALGORITHMS = (BLAKE3, SHA256, MD5)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PREFIX = BLAKE3 + ":"


# -- keys -----------------------------------------------------------------------------------------------
def is_key(text: object) -> bool:
    """Whether ``text`` is a blob key: ``blake3:<64 hex>`` or a bare SHA-256 hex digest (lowercase)."""
    if not isinstance(text, str):
        return False
    return bool(_HEX64.match(text[len(_PREFIX):] if text.startswith(_PREFIX) else text))


def algorithm_of(key: str) -> str:
    """The algorithm a key was hashed with (``blake3`` or ``sha256``); ValueError for anything else."""
    if not is_key(key):
        raise ValueError(f"{str(key)[:80]!r} is not a blob key (blake3:<64 hex> or a SHA-256 hex digest).")
    return BLAKE3 if key.startswith(_PREFIX) else SHA256


def hex_of(key: str) -> str:
    """The hex digest inside a key."""
    return key[len(_PREFIX):] if key.startswith(_PREFIX) else key


def to_key(algorithm: str, hexdigest: str) -> str:
    """The key of content whose ``algorithm`` digest is ``hexdigest``."""
    if algorithm == BLAKE3:
        return _PREFIX + hexdigest
    if algorithm == SHA256:
        return hexdigest
    raise ValueError(f"Blobs are not named by {algorithm!r} digests; use one of {', '.join(KEY_ALGORITHMS)}.")


def key_path(key: str) -> str:
    """Where a key's blob lives below a blob folder or bucket prefix: ``aa/<rest>`` for a SHA-256 key (the
    layout stores have always had), ``blake3/aa/<rest>`` for a BLAKE3 one."""
    hexdigest = hex_of(key)
    if algorithm_of(key) == SHA256:
        return f"{hexdigest[:2]}/{hexdigest[2:]}"
    return f"{BLAKE3}/{hexdigest[:2]}/{hexdigest[2:]}"


# -- hashing --------------------------------------------------------------------------------------------
def new_hasher(algorithm: str = DEFAULT_ALGORITHM, threads: int = 1) -> Any:
    """An incremental hasher (``update``, ``hexdigest``); BLAKE3 may use ``threads`` threads on large input."""
    if algorithm == BLAKE3:
        return _blake3()(max_threads=threads)
    if algorithm in (SHA256, MD5):
        return hashlib.new(algorithm)
    raise ValueError(f"Unknown digest algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}.")


@functools.cache
def _blake3() -> Any:
    """The BLAKE3 hasher class, imported on first use."""
    import blake3

    return blake3.blake3


def file_hexdigest(path: str | os.PathLike[str], algorithm: str = DEFAULT_ALGORITHM, threads: int = 1) -> str:
    """Hex digest of a file, read a window at a time (see ``fd_hexdigest``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return fd_hexdigest(fd, algorithm, threads)
    finally:
        os.close(fd)


#: How much of a file is mapped at once while several threads hash it (bounds the memory a hash can hold).
MAP_WINDOW = 16 * 1024 * 1024
#: How much of a file is read at once while one thread hashes it (the chunk stays in the CPU's cache).
READ_WINDOW = 1024 * 1024


def fd_hexdigest(fd: int, algorithm: str = DEFAULT_ALGORITHM, threads: int = 1, size: int | None = None) -> str:
    """Hex digest of the first ``size`` bytes (default: all) of an open file, never read whole. On one thread it
    is read ``READ_WINDOW`` at a time into one buffer (measured: 1 GiB of fresh blobs hashed ~8% faster than
    through a mapping, which pays a page fault per few pages); for several threads (BLAKE3 on large input) it is
    memory-mapped ``MAP_WINDOW`` at a time, the GIL released, the pages hashed where they lie in the page cache.
    A file that cannot be mapped (a pipe, some network filesystems) is read instead."""
    hasher = new_hasher(algorithm, threads)
    size = os.fstat(fd).st_size if size is None else size
    if threads == 1:
        return _read_hexdigest(fd, hasher, size)
    offset = 0
    try:
        while offset < size:
            length = min(MAP_WINDOW, size - offset)
            with mmap.mmap(fd, length, offset=offset, access=mmap.ACCESS_READ) as window:
                hasher.update(window)
            offset += length
    except (OSError, ValueError):
        return _read_hexdigest(fd, new_hasher(algorithm, threads), size)
    return str(hasher.hexdigest())


def _read_hexdigest(fd: int, hasher: Any, size: int) -> str:
    buffer = bytearray(min(READ_WINDOW, max(size, 1)))
    offset = 0
    with memoryview(buffer) as view:
        while offset < size:
            got = os.preadv(fd, [view[:min(len(buffer), size - offset)]], offset)
            if not got:
                break
            hasher.update(view[:got])
            offset += got
    return str(hasher.hexdigest())


def file_key(path: str | os.PathLike[str], algorithm: str = DEFAULT_ALGORITHM, threads: int = 1) -> str:
    """The key a file's content is stored under."""
    return to_key(algorithm, file_hexdigest(path, algorithm, threads))


def bytes_key(data: bytes | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The key of a byte string."""
    if algorithm == BLAKE3:  # thousands of small files a second come this way: one call, no hasher set up
        return to_key(BLAKE3, _blake3()(data).hexdigest())
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return to_key(algorithm, str(hasher.hexdigest()))


def matches(path: str | os.PathLike[str], key: str) -> bool:
    """True when the file at ``path`` hashes to ``key`` (with the key's own algorithm)."""
    return Path(path).is_file() and file_key(path, algorithm_of(key)) == key


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


def copy_and_hash(source: BinaryIO, target: BinaryIO, chunk_size: int = CHUNK_SIZE, algorithm: str = SHA256,
                  on_bytes: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Copy ``source`` into ``target`` in chunks; return (hex digest, bytes copied) of what was copied.

    ``on_bytes(copied so far)`` is called after each chunk (progress of a long copy)."""
    digest = new_hasher(algorithm)
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
    return str(digest.hexdigest()), size


def copy_and_key(source: BinaryIO, target: BinaryIO, algorithm: str = DEFAULT_ALGORITHM,
                 on_bytes: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Copy ``source`` into ``target``; return (key, bytes copied) of what was copied (one pass)."""
    hexdigest, size = copy_and_hash(source, target, algorithm=algorithm, on_bytes=on_bytes)
    return to_key(algorithm, hexdigest), size


class VerifyingReader:
    """A binary stream that hashes what is read through it and raises ``IntegrityError`` at the end when the
    content does not hash to ``key`` (so a reader never finishes reading bad bytes as if they were good).

        with open(blob, "rb") as raw:
            reader = VerifyingReader(raw, key, size, what="model:v3/weights.pt")
            while chunk := reader.read(1 << 20): out.write(chunk)
    """

    def __init__(self, raw: BinaryIO, key: str, size: int | None = None, what: str = "") -> None:
        self.raw, self.key, self.size, self.what = raw, key, size, what
        self._hasher = new_hasher(algorithm_of(key))
        self._read = 0
        self._checked = False

    def read(self, n: int = CHUNK_SIZE) -> bytes:
        chunk = self.raw.read(n if n is not None and n >= 0 else CHUNK_SIZE)
        if chunk:
            self._hasher.update(chunk)
            self._read += len(chunk)
        elif not self._checked:
            self.check()
        return chunk

    def check(self) -> None:
        """Raise IntegrityError unless everything read so far is the whole content named by the key."""
        self._checked = True
        actual = to_key(algorithm_of(self.key), str(self._hasher.hexdigest()))
        if actual != self.key or (self.size is not None and self._read != self.size):
            raise IntegrityError(
                f"{self.what or 'Blob ' + self.key[:19]} is corrupt (its content hashes to {actual[:19]}…, "
                f"not {self.key[:19]}…); fetch it again from a backend that holds it, or log it again."
            )


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
    return stat_signature(path.stat())


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    """``file_signature`` of a stat result already at hand (an ``fstat`` of an open file)."""
    return st.st_size, max(st.st_mtime_ns, st.st_ctime_ns), st.st_ino, st.st_dev
