"""Content-addressed blobs on local disk: one file per SHA-256, identical content stored once.
(``store/s3.py`` adds an S3-compatible bucket behind the same contract, with this folder as its cache.)

A blob is written to a temp file on the same filesystem, fsynced and renamed into place, so no
reader ever sees half a blob; temp files left by a killed process are removed at the next start.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tracelet_artifacts import digest
from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError, IntegrityError
from tracelet_artifacts.procs import HOST, pid_alive
from tracelet_artifacts.store.failures import blob_write_error

log = logging.getLogger(__name__)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_COPY_FILE_RANGE = hasattr(os, "copy_file_range")
_KERNEL_COPY_BYTES = 1 << 30
# errno values meaning "this pair of files cannot be copied by the kernel": fall back to a Python copy.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.EPERM,
                   errno.ETXTBSY}



def is_digest(text: str) -> bool:
    """Whether ``text`` is a lowercase SHA-256 hex digest (a blob's name)."""
    return bool(_DIGEST.match(text))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BlobStore:
    """Blobs under ``root/<aa>/<rest-of-digest>``; temp files under ``root/tmp``.

    Example::

        blobs = BlobStore(Path(".tracelet/blobs"))
        sha, size = blobs.put_file(Path("model.pt"))
        blobs.path(sha).read_bytes()
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.fsync = fsync
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactStoreError(f"Cannot create the blob folder {str(self.root)!r}: {exc.strerror}.") from exc

    #: Where other readers find the blobs (``s3://bucket/prefix`` for a bucket); None: this folder only.
    uri_prefix: str | None = None

    @property
    def scheme(self) -> str:
        """The scheme of a reference to one of these blobs (``file`` here, ``s3`` for a bucket)."""
        return self.uri_prefix.split("://", 1)[0] if self.uri_prefix else "file"

    def path(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        if not _DIGEST.match(sha256):
            raise ArtifactStoreError(f"{sha256!r} is not a SHA-256 hex digest.")
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def forget(self, sha256: str) -> None:
        """Drop what this process remembers about a blob, so the next ``exists`` asks the store itself
        (gc on another machine may have deleted it). Nothing is remembered here."""

    def touch(self, sha256: str) -> bool:
        """Refresh a blob's mtime (so ``gc`` grace counts from its last use); False if it is absent."""
        try:
            os.utime(self.path(sha256))
        except FileNotFoundError:
            return False
        return True

    def _temp_name(self) -> Path:
        return self.tmp / f"{HOST}-{os.getpid()}-{uuid.uuid4().hex}.tmp"

    def _commit(self, temp: Path, sha256: str) -> None:
        """Rename a finished temp file to its digest name (or drop it if the blob is already there)."""
        final = self.path(sha256)
        if self.touch(sha256):
            temp.unlink(missing_ok=True)
            return
        final.parent.mkdir(exist_ok=True)
        os.replace(temp, final)
        if self.fsync:
            _fsync_dir(final.parent)

    def _write_failed(self, exc: OSError) -> ArtifactStoreError:
        return blob_write_error(self.root, exc)

    @contextmanager
    def _temp_blob(self) -> Iterator[Path]:
        """A temp file for one blob write: removed if the write fails; an OS error becomes ArtifactStoreError."""
        temp = self._temp_name()
        try:
            yield temp
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._write_failed(exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def put_stream(self, source: io.BufferedIOBase | io.RawIOBase) -> tuple[str, int]:
        """Store everything read from ``source``; return (sha256, size). One pass: hash while copying."""
        with self._temp_blob() as temp:
            with temp.open("wb") as target:
                sha, size = digest.copy_and_hash(source, target)  # type: ignore[arg-type]
                if self.fsync:
                    target.flush()
                    os.fsync(target.fileno())
            self._commit(temp, sha)
        return sha, size

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a local file's content; return (sha256, size).

        Where the OS can, the kernel copies the file into the temp blob (``copy_file_range``, as ``cp``
        does: no trip through Python's buffers) and the temp blob is then hashed, so the name is always
        the digest of exactly the bytes stored. Elsewhere the file is read, hashed and written in one pass.
        """
        with open(path, "rb", buffering=0) as source:
            if _COPY_FILE_RANGE:
                stored = self._put_by_kernel_copy(source)
                if stored is not None:
                    return stored
                source.seek(0)
            return self.put_stream(source)

    def _put_by_kernel_copy(self, source: io.RawIOBase) -> tuple[str, int] | None:
        """put_file through ``os.copy_file_range``; None when this filesystem pair cannot do it."""
        with self._temp_blob() as temp:
            with temp.open("wb") as target:
                size = 0
                while True:
                    try:
                        copied = os.copy_file_range(source.fileno(), target.fileno(), _KERNEL_COPY_BYTES)
                    except OSError as exc:
                        if size == 0 and exc.errno in _NO_KERNEL_COPY:
                            temp.unlink(missing_ok=True)
                            return None
                        raise
                    if not copied:
                        break
                    size += copied
                if self.fsync:
                    os.fsync(target.fileno())
            sha = digest.sha256_file(temp)  # what was stored, whatever the source did meanwhile
            self._commit(temp, sha)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes; return (sha256, size). Skips the write when the blob already exists."""
        sha = digest.sha256_bytes(data)
        if self.touch(sha):
            return sha, len(data)
        return self.put_stream(io.BytesIO(data))

    def verify(self, sha256: str) -> bool:
        """True when the blob exists and its content still hashes to its name."""
        path = self.path(sha256)
        return path.is_file() and digest.sha256_file(path) == sha256

    def trim_cache(self, *, unused_for_s: float, dry_run: bool = False) -> tuple[int, int]:
        """Remove local copies that another copy backs, unused for ``unused_for_s``; return (count, bytes).
        Here the local folder is the only copy, so nothing is removed."""
        return 0, 0

    def settle(self, digests: Iterable[str]) -> None:
        """Return once every blob in ``digests`` can be read by every reader of the store (here: at once)."""

    def local_path(self, sha256: str) -> Path:
        """The blob as a local file (read only!); raises ArtifactStoreNotFoundError when it is absent."""
        path = self.path(sha256)
        if not path.is_file():
            raise ArtifactStoreNotFoundError(
                f"Blob {sha256[:12]}… is missing from {str(self.root)!r}; fetch it again from a backend that holds it."
            )
        return path

    def copy_to(self, sha256: str, dest: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        """Write the blob to ``dest`` (temp + rename), checking its digest on the way; ``on_bytes(copied)``
        follows the copy chunk by chunk."""
        source = self.local_path(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with source.open("rb") as reader, temp.open("wb") as writer:
                actual, _ = digest.copy_and_hash(reader, writer, on_bytes=on_bytes)
            if actual != sha256:
                raise IntegrityError(
                    f"Blob {sha256[:12]}… is corrupt (its content hashes to {actual[:12]}…); "
                    "log the artifact again from its source files, or fetch it from a backend that holds it."
                )
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        """Every stored digest."""
        for shard in sorted(self.root.iterdir()):
            if shard.is_dir() and len(shard.name) == 2:
                for blob in shard.iterdir():
                    name = shard.name + blob.name
                    if _DIGEST.match(name):
                        yield name

    def inventory(self) -> Iterator[tuple[str, int, float]]:
        """(digest, size, last modified) of every stored blob."""
        for sha in self.digests():
            with suppress(FileNotFoundError):  # removed meanwhile
                info = self.path(sha).stat()
                yield sha, info.st_size, info.st_mtime

    def clean_temp(self) -> int:
        """Remove temp files whose writer is gone (a dead process on this host); return how many."""
        removed = 0
        for temp in self.tmp.glob("*.tmp"):
            host, pid, _ = ([*temp.stem.rsplit("-", 2), "", ""])[:3]
            if host == HOST and pid.isdigit() and not pid_alive(int(pid)):
                temp.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("Removed %d temp blob file(s) left by a stopped process in %s", removed, self.tmp)
        return removed
