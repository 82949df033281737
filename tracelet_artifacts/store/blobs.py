"""Content-addressed blobs on local disk: one file per content key, identical content stored once.
(``store/s3.py`` adds an S3-compatible bucket behind the same contract, with this folder as its cache.)

Layout: ``root/blake3/<aa>/<rest>`` for BLAKE3 keys (every new blob), ``root/<aa>/<rest>`` for the SHA-256
keys of blobs stored before (``digest.key_path``); temp files under ``root/tmp``; corrupt blobs set aside
under ``root/corrupt``.

Each file is read once. A large one is copied by the kernel into a temp file (``copy_file_range``, as
``cp`` does; ``sendfile`` where that is refused) and the temp file's pages, still in the page cache, are
hashed memory-mapped; a small one is read into a buffer, hashed and written in one go, as a file with no
name in its blob folder (``O_TMPFILE``; a temp file where the filesystem has none). So the name is always
the digest of exactly the bytes stored. The file is then named by its key without replacing anything there,
so no reader ever sees half a blob and a blob once named is never swapped. How a blob reaches the disk is the
store's *durability*:

* ``group`` (the default): nothing is synced on the writer's path; the write is recorded in the store's
  ``WriteJournal`` and synced with the rest of its version, off the caller's thread (``store/durability.py``);
* ``per-blob``: each blob is fsynced before it is named, and its folder after (the behaviour before group sync);
* ``none``: never synced (scratch stores and tests: ``fsync=False``).

Temp files left by a killed process are removed at the next start.
"""

from __future__ import annotations

import ctypes
import errno
import io
import itertools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracelet_artifacts import digest
from tracelet_artifacts.detect import SNIFF_BYTES
from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError, IntegrityError
from tracelet_artifacts.procs import HOST, writer_is_dead
from tracelet_artifacts.store import packs as packing
from tracelet_artifacts.store.failures import blob_write_error
from tracelet_artifacts.store.file_calls import AT_FDCWD, LINKAT, publish, read_small
from tracelet_artifacts.store.packs import FOLDER as PACKS
from tracelet_artifacts.store.packs import PackIndex, PackWriter
from tracelet_artifacts.store.write_journal import WriteJournal, current_pid, fsync_path

log = logging.getLogger(__name__)
Durability = Literal["group", "per-blob", "none"]
DURABILITY_MODES: tuple[Durability, ...] = ("group", "per-blob", "none")
#: Files up to this size are read, hashed and written in one go (for them the per-file cost is what counts).
SMALL_FILE_BYTES = 256 * 1024
#: A blob used again is marked used (its mtime, for ``gc``'s grace) when its mark is older than this.
KEEP_FRESH_S = 600.0
CORRUPT = "corrupt"  # blobs/corrupt/<key>: bad bytes kept for inspection, never served
_COPY_FILE_RANGE = hasattr(os, "copy_file_range")
_KERNEL_COPY_BYTES = 1 << 30
# errno values meaning "this pair of files cannot be copied by the kernel": fall back to a Python copy.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.EPERM,
                   errno.ETXTBSY}


def is_digest(text: str) -> bool:
    """Whether ``text`` is a blob key (``blake3:<hex>``, or a SHA-256 hex digest as older blobs are named)."""
    return digest.is_key(text)


_AT_SYMLINK_FOLLOW = 0x400
#: ``O_TMPFILE`` where the kernel, the C library and /proc allow naming an open file later (Linux); 0 elsewhere,
#: and from the first filesystem that refuses it.
_O_TMPFILE = getattr(os, "O_TMPFILE", 0) if LINKAT is not None and os.path.isdir("/proc/self/fd") else 0
# errno values meaning "no O_TMPFILE here" (an old kernel reads the flag as O_DIRECTORY: EISDIR)
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS}
# errno values of a linkat through /proc/self/fd meaning "cannot name it that way here"
_NO_LINK = {errno.ENOENT, errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass(frozen=True)
class StoredFile:
    """What storing one file found: its key and size, its first bytes when it was read whole (to tell text
    from binary without opening it again), and its (size, change time, inode, device) before and after."""

    key: str
    size: int
    head: bytes | None
    before: tuple[int, int, int, int]
    after: tuple[int, int, int, int]

    @property
    def unchanged(self) -> bool:
        """True when the file did not change while it was read (so its digest may be remembered)."""
        return self.before == self.after and self.size == self.before[0]


class BlobStore:
    """Blobs under ``root/blake3/<aa>/<rest>`` (and older ``root/<aa>/<rest>``); temp files under ``root/tmp``.

    Example::

        blobs = BlobStore(Path(".tracelet/blobs"))
        key, size = blobs.put_file(Path("model.pt"))      # key: "blake3:<hex>"
        blobs.path(key).read_bytes()
    """

    def __init__(self, root: Path, *, fsync: bool = True, durability: Durability | None = None) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.durability: Durability = durability or ("per-blob" if fsync else "none")
        if self.durability not in DURABILITY_MODES:
            raise ArtifactStoreError(f"Unknown durability {self.durability!r}; "
                                     f"use one of {', '.join(DURABILITY_MODES)}.")
        #: Unsynced writes and the crash marker (group durability only).
        self.journal: WriteJournal | None = WriteJournal(self.root) if self.durability == "group" else None
        self._folders: set[str] = set()  # blob folders known to exist
        self._root, self._tmp = str(self.root), str(self.tmp)
        #: Where packed small blobs are (``store/packs.py``); None for a store that keeps one file per blob.
        self.packs = PackIndex(self.root / PACKS, synced=self.durability == "per-blob") if self.packable else None
        self._token, self._counter = uuid.uuid4().hex[:8], itertools.count()
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactStoreError(f"Cannot create the blob folder {str(self.root)!r}: {exc.strerror}.") from exc

    #: Whether the small files of a large ingest go into a pack (a bucket keeps one object per blob).
    packable = True
    #: Where other readers find the blobs (``s3://bucket/prefix`` for a bucket); None: this folder only.
    uri_prefix: str | None = None

    @property
    def fsync(self) -> bool:
        """Whether blobs are ever synced (per blob, or in groups)."""
        return self.durability != "none"

    @property
    def scheme(self) -> str:
        """The scheme of a reference to one of these blobs (``file`` here, ``s3`` for a bucket)."""
        return self.uri_prefix.split("://", 1)[0] if self.uri_prefix else "file"

    def path(self, key: str) -> Path:
        """Where the blob with this key lives as a file (whether or not it exists): a packed blob is written out
        as a file the first time it is asked for."""
        path = self.where(key)
        if self.packs is not None and not os.path.isfile(path):
            data = self._packed_sound(key)
            if data is not None:
                self._store_bytes(key, data)
        return Path(path)

    def _packed_sound(self, key: str) -> bytes | None:
        """A packed blob's bytes when they hash to its key (None: not packed, or corrupt)."""
        data = self.packs.read(key) if self.packs is not None else None
        return data if data is not None and digest.bytes_key(data, digest.algorithm_of(key)) == key else None

    def where(self, key: str) -> str:
        """``path`` as a string (the write path handles thousands of these a second)."""
        try:
            return f"{self._root}/{digest.key_path(key)}"
        except ValueError:
            raise ArtifactStoreError(f"{key!r} is not a blob key (blake3:<64 hex>, or a SHA-256 hex digest).") from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.where(key)) or (self.packs is not None and self.packs.find(key) is not None)

    def forget(self, key: str) -> None:
        """Drop what this process remembers about a blob, so the next ``exists`` asks the store itself
        (gc on another machine may have deleted it). Nothing is remembered here."""

    def touch(self, key: str) -> bool:
        """Refresh a blob's mtime (so ``gc`` grace counts from its last use); False if it is absent."""
        try:
            os.utime(self.path(key))
        except FileNotFoundError:
            return False
        return True

    def keep(self, key: str) -> bool:
        """A blob is about to be used again: True when it is there (its use mark refreshed when older than
        ``KEEP_FRESH_S``, so a re-log of many files writes no inode that was just written)."""
        return self._keep(self.where(key)) or (self.packs is not None and self.packs.find(key) is not None)

    def keep_many(self, keys: Iterable[str]) -> set[str]:
        """``keep`` for many keys at once (packed ones looked up together); the keys that are there."""
        keys = list(dict.fromkeys(keys))
        there = {key for key in keys if self._keep(self.where(key))}
        if self.packs is not None:
            there |= self.packs.present([key for key in keys if key not in there])
        return there

    def pack_writer(self) -> PackWriter | None:
        """A new pack for the small files of one ingest (None: this store writes a file per blob)."""
        return PackWriter(self, self.packs) if self.packs is not None else None

    @staticmethod
    def _keep(path: str) -> bool:
        try:
            modified = os.stat(path).st_mtime
        except FileNotFoundError:
            return False
        if modified < time.time() - KEEP_FRESH_S:
            with suppress(FileNotFoundError):
                os.utime(path)
        return True

    # -- writing ----------------------------------------------------------------------------------
    def _temp_name(self) -> str:
        """A temp file name no other writer uses: ``<host>-<pid>-<this store's token><n>.tmp``."""
        return f"{self._tmp}/{HOST}-{current_pid()}-{self._token}{next(self._counter)}.tmp"

    def _write_failed(self, exc: OSError) -> ArtifactStoreError:
        return blob_write_error(self.root, exc)

    def _begin(self) -> tuple[str, int | None]:
        return self._temp_name(), (self.journal.begin() if self.journal else None)

    def _finish(self, temp: str, key: str, token: int | None, fd: int, final: str | None = None) -> None:
        """Close a finished temp blob and name it by its key (syncing it first under per-blob durability)."""
        try:
            if self.durability == "per-blob":
                os.fsync(fd)
        finally:
            os.close(fd)
        final = final or self.where(key)
        folder = final.rpartition("/")[0]
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        named = publish(temp, final)
        if not named:  # stored already (by another writer meanwhile): that one is kept, and marked used
            self._keep(final)
        elif self.durability == "per-blob":
            fsync_path(Path(folder), folder=True)
        if self.journal and token is not None:
            self.journal.written(token, final if named else None)

    def _abandon(self, temp: str, token: int | None, fd: int | None) -> None:
        if fd is not None:
            with suppress(OSError):
                os.close(fd)
        with suppress(FileNotFoundError):
            os.unlink(temp)
        if self.journal and token is not None:
            self.journal.written(token, None)

    def put_stream(self, source: io.BufferedIOBase | io.RawIOBase) -> tuple[str, int]:
        """Store everything read from ``source``; return (key, size). One pass: hash while copying."""
        key, size = self._store_stream(source, digest.DEFAULT_ALGORITHM, None)
        return key, size

    def put_named(self, key: str, source: io.BufferedIOBase | io.RawIOBase) -> bool:
        """Store a stream under ``key`` if it hashes to it with the key's algorithm (a blob named by SHA-256 put
        back from a backend's copy); False, and nothing stored, when it does not."""
        return self._store_stream(source, digest.algorithm_of(key), key)[0] == key

    def _store_stream(self, source: io.BufferedIOBase | io.RawIOBase, algorithm: str, expected: str | None
                      ) -> tuple[str, int]:
        copied: list[tuple[str, int]] = []

        def write(fd: int) -> str | None:
            with open(fd, "wb", closefd=False) as target:
                copied.append(digest.copy_and_key(source, target, algorithm))  # type: ignore[arg-type]
            key = copied[0][0]
            return key if expected is None or key == expected else None

        self._write_blob(write)
        return copied[0]

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes; return (key, size). Skips the write when the blob already exists."""
        key = digest.bytes_key(data)
        self._store_bytes(key, data)
        return key, len(data)

    def _store_bytes(self, key: str, data: bytes | memoryview) -> None:
        final = self.where(key)
        if len(data) <= SMALL_FILE_BYTES and _O_TMPFILE and self._store_unnamed(final, data):
            return
        if self._keep(final):
            return

        def write(fd: int) -> str:
            _write_all(fd, data)
            return key

        self._write_blob(write, final=final)

    def _store_unnamed(self, final: str, data: bytes | memoryview) -> bool:
        """Write a small blob as a file with no name in its own folder (``O_TMPFILE``), then give it its name
        (``linkat``, which never replaces): no temp file in another folder to rename across (for thousands of
        small files that costs more than the writes), nothing left behind if the process dies, and still no
        reader ever sees half a blob. False, and nothing written, where the filesystem cannot do it."""
        global _O_TMPFILE
        if self._keep(final):
            return True
        folder = final.rpartition("/")[0]
        token = self.journal.begin() if self.journal else None
        named = False
        try:
            try:
                fd = _open_unnamed(folder)
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
                _O_TMPFILE = 0  # this filesystem (or kernel) has none: temp files from now on
                return False
            try:
                _write_all(fd, data)
                if self.durability == "per-blob":
                    os.fsync(fd)
                named = _link_fd(fd, final)
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    raise
                _O_TMPFILE = 0  # no /proc to name it through (a sandbox): temp files from now on
                return False
            finally:
                os.close(fd)
            if not named:
                self._keep(final)  # stored already: that one is kept, and marked used
            elif self.durability == "per-blob":
                fsync_path(folder, folder=True)
            return True
        except OSError as exc:
            raise self._write_failed(exc) from exc
        finally:
            if self.journal and token is not None:
                self.journal.written(token, final if named else None)

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a local file's content; return (key, size)."""
        stored = self.store_file(path)
        return stored.key, stored.size

    def store_file(self, path: str | os.PathLike[str], threads: int = 1, *, head: bool = True,
                   known: os.stat_result | None = None) -> StoredFile:
        """Store a local file's content, read once; ``threads``: how many threads BLAKE3 may use on a large one.

        A small file is read whole (into this thread's buffer), hashed and written; a large one is copied by
        the kernel and the copy's pages hashed (``threads`` > 1 lets BLAKE3 hash one large file on several
        cores). ``head``: keep a small file's first bytes in the result (to tell text from binary); ``known``:
        the file's stat, taken just before (the caller planned with it), so it is not asked again. (Many small
        files go into a pack instead: ``pack_writer``.)
        """
        fd = os.open(path, os.O_RDONLY)
        try:
            before = digest.stat_signature(known if known is not None else os.fstat(fd))
            if before[0] <= SMALL_FILE_BYTES:
                data = read_small(fd, before[0], SMALL_FILE_BYTES)
                key = digest.bytes_key(data)
                self._store_bytes(key, data)
                # Read in one call: a write meanwhile shows in its size or, later, in its change time, which
                # then no longer matches ``before`` (so no second fstat to compare with).
                return StoredFile(key, len(data), bytes(data[:SNIFF_BYTES]) if head else None, before, before)
            key, size = self._store_large(fd, threads)
            return StoredFile(key, size, None, before, digest.stat_signature(os.fstat(fd)))
        finally:
            os.close(fd)

    def _store_large(self, source: int, threads: int) -> tuple[str, int]:
        sizes: list[int] = []

        def write(fd: int) -> str:
            sizes.append(_copy_fd(source, fd))
            return digest.to_key(digest.BLAKE3, digest.fd_hexdigest(fd, digest.BLAKE3, threads, sizes[0]))

        return self._write_blob(write, readable=True), sizes[0]

    def _write_blob(self, write: Callable[[int], str | None], *, readable: bool = False,
                    final: str | None = None) -> str:
        """Let ``write(fd)`` fill a new temp blob and return its key, then name the blob by it (``final``: its
        path, when known). ``write`` returning None abandons it (the key it computed was not the one expected).
        Whatever fails, the temp file is removed and the write journal told; OSError becomes a TraceletError."""
        temp, token = self._begin()
        fd = None
        try:
            fd = os.open(temp, (os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | os.O_EXCL, 0o644)
            key = write(fd)
            if key is None:
                self._abandon(temp, token, fd)
                return ""
            self._finish(temp, key, token, fd, final)
        except OSError as exc:
            self._abandon(temp, token, fd)
            raise self._write_failed(exc) from exc
        except BaseException:
            self._abandon(temp, token, fd)
            raise
        return key

    # -- reading ----------------------------------------------------------------------------------
    def verify(self, key: str) -> bool:
        """True when the blob exists and its content still hashes to its key (a packed one is not written out)."""
        path = self.where(key)
        if os.path.isfile(path):
            return digest.file_key(path, digest.algorithm_of(key)) == key
        return self._packed_sound(key) is not None

    def trim_cache(self, *, unused_for_s: float, dry_run: bool = False) -> tuple[int, int]:
        """Remove local copies that another copy backs, unused for ``unused_for_s``; return (count, bytes).
        Here the local folder is the only copy, so nothing is removed."""
        return 0, 0

    def settle(self, keys: Iterable[str]) -> None:
        """Return once every blob in ``keys`` can be read by every reader of the store (here: at once)."""

    #: True when a blob settled for every reader is also safe from a crash (a bucket's); here a blob is safe
    #: once it is synced.
    durable_when_settled = False

    def local_path(self, key: str) -> Path:
        """The blob as a local file (read only!); raises ArtifactStoreNotFoundError when it is absent."""
        path = self.path(key)
        if not path.is_file():
            raise ArtifactStoreNotFoundError(
                f"Blob {key[:19]}… is missing from {str(self.root)!r}; fetch it again from a backend that holds it."
            )
        return path

    def copy_to(self, key: str, dest: Path, what: str = "", on_bytes: Callable[[int], None] | None = None) -> None:
        """Write the blob to ``dest`` (temp + rename), checking its digest while it streams; ``on_bytes(copied)``
        follows the copy chunk by chunk. A packed blob is read from its pack (not written out first)."""
        path = self.where(key)
        packed = None if self.packs is None or os.path.isfile(path) else self.packs.read(key)
        if packed is None:
            path = str(self.local_path(key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with (io.BytesIO(packed) if packed is not None else open(path, "rb")) as reader, temp.open("wb") as writer:
                actual, _ = digest.copy_and_key(reader, writer, digest.algorithm_of(key), on_bytes)
            if actual != key:
                raise IntegrityError(
                    f"{what or 'Blob ' + key[:19] + '…'} is corrupt (its content hashes to {actual[:19]}…); "
                    "log the artifact again from its source files, or fetch it from a backend that holds it."
                )
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)

    # -- maintenance ------------------------------------------------------------------------------
    def delete(self, key: str) -> None:
        Path(self.where(key)).unlink(missing_ok=True)
        if self.packs is not None:
            self.packs.forget([key])

    def delete_many(self, keys: Iterable[str]) -> None:
        """``delete`` for many blobs: packed ones are forgotten in one transaction."""
        keys = list(keys)
        if self.packs is None:  # (a bucket's store deletes each object there too)
            for key in keys:
                self.delete(key)
            return
        for key in keys:
            Path(self.where(key)).unlink(missing_ok=True)
        self.packs.forget(keys)

    def written_out(self) -> list[str]:
        """Packed blobs also written out as files (for a backend, the web view)."""
        if self.packs is None:
            return []
        return [key for key, _, _, _ in self.packs.entries() if os.path.isfile(self.where(key))]

    def compact(self, kept_as_files: Iterable[str] = ()) -> int:
        """gc's last step: forget the packed copies of ``kept_as_files`` (written out, and synced by the caller),
        then remove packs no blob uses and rewrite those less than half used; return the bytes freed."""
        if self.packs is None:
            return 0
        self.packs.forget(kept_as_files)
        return packing.compact(self, self.packs)

    def copy_within(self, key: str, new_key: str) -> None:
        """Where blobs have another home (a bucket), give blob ``key`` the name ``new_key`` there too (the local
        folder is handled by the caller); here nothing to do."""

    def set_aside(self, key: str) -> Path | None:
        """Move a (corrupt) blob to ``root/corrupt/`` so it is never served and storing its content again
        writes it anew; return where it went (None: it was not there)."""
        target = self.root / CORRUPT / key.replace(":", "-")
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(self.where(key), target)
        except FileNotFoundError:
            packed = self.packs.read(key) if self.packs is not None else None
            if packed is None:
                return None
            target.write_bytes(packed)
        if self.packs is not None:
            self.packs.forget([key])
        return target

    def drop_torn(self, key: str) -> str:
        """A blob found torn after a crash: set it aside; return what was done (for the report)."""
        where = self.set_aside(key)
        return f"moved to {where}" if where else "already gone"

    def _layouts(self) -> Iterator[tuple[str, Path]]:
        """(key prefix, folder) of each blob layout: SHA-256 keys directly under root, BLAKE3 under blake3/."""
        yield "", self.root
        yield "blake3:", self.root / digest.BLAKE3

    def files(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """(key, directory entry) of every stored blob file."""
        for prefix, folder in self._layouts():
            with suppress(FileNotFoundError):
                for shard in sorted(os.scandir(folder), key=lambda e: e.name):
                    if len(shard.name) != 2 or not shard.is_dir():
                        continue
                    for blob in os.scandir(shard.path):
                        key = prefix + shard.name + blob.name
                        if digest.is_key(key):
                            yield key, blob

    def digests(self) -> Iterator[str]:
        """Every stored key."""
        return (key for key, _ in self.files())

    def inventory(self) -> Iterator[tuple[str, int, float]]:
        """(key, size, last modified) of every stored blob (a packed one's: its pack's); a blob both packed and
        written out as a file is listed twice."""
        for key, entry in self.files():
            with suppress(FileNotFoundError):  # removed meanwhile
                info = entry.stat()
                yield key, info.st_size, info.st_mtime
        modified: dict[str, float] = {}
        for key, pack, _, size in self.packs.entries() if self.packs is not None else ():
            if pack not in modified:
                with suppress(FileNotFoundError):
                    modified[pack] = (self.root / PACKS / pack).stat().st_mtime
            yield key, size, modified.get(pack, 0.0)

    def clean_temp(self) -> int:
        """Remove temp files whose writer is gone (a dead process on this host); return how many."""
        removed = 0
        for temp in self.tmp.glob("*.tmp"):
            if writer_is_dead(temp.stem):
                temp.unlink(missing_ok=True)
                removed += 1
        if self.packs is not None:
            removed += packing.clean(self.packs)
        if removed:
            log.info("Removed %d temp blob file(s) left by a stopped process in %s", removed, self.root)
        return removed


def _open_unnamed(folder: str) -> int:
    """A new file with no name in ``folder`` (made if missing), open for writing."""
    try:
        return os.open(folder, _O_TMPFILE | os.O_WRONLY, 0o644)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        return os.open(folder, _O_TMPFILE | os.O_WRONLY, 0o644)


def _link_fd(fd: int, final: str) -> bool:
    """Give the unnamed file open as ``fd`` the name ``final``; False when something has that name already."""
    if LINKAT(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, os.fsencode(final), _AT_SYMLINK_FOLLOW) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        return False
    raise OSError(code, os.strerror(code), final)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_fd(source: int, target: int) -> int:
    """Copy an open file into another by the kernel (``copy_file_range``, else ``sendfile``), else through a
    buffer; return the bytes copied."""
    size = 0
    if _COPY_FILE_RANGE:
        try:
            while copied := os.copy_file_range(source, target, _KERNEL_COPY_BYTES):
                size += copied
            return size
        except OSError as exc:
            if size or exc.errno not in _NO_KERNEL_COPY:
                raise
    if hasattr(os, "sendfile"):
        try:
            while copied := os.sendfile(target, source, None, _KERNEL_COPY_BYTES):
                size += copied
            return size
        except OSError as exc:
            if size or exc.errno not in _NO_KERNEL_COPY:
                raise
    while chunk := os.read(source, digest.CHUNK_SIZE):
        _write_all(target, chunk)
        size += len(chunk)
    return size
