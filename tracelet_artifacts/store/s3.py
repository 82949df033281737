"""Content-addressed blobs on an S3-compatible object store, with this machine's blob folder as their cache.

A blob is first stored in the local folder exactly as ``BlobStore`` does (one read: copy, and the BLAKE3 of
what was stored), then uploaded from there under ``<prefix>/<digest.key_path(key)>`` (``blake3/aa/<rest>``;
blobs stored before BLAKE3 keep ``aa/<rest>``): files from ``MULTIPART_BYTES`` up in parts sent in parallel,
and S3 only makes an object visible once its upload completes, so no reader ever sees a partial blob. The upload
happens before the catalog records the version, so every machine that sees a version can read its blobs.
Reading a blob this machine lacks downloads it into the cache, checks its digest, then serves it.

    blobs = S3BlobStore("s3://team-artifacts/tracelet", cache_root=Path(".tracelet/blobs"))
    key, size = blobs.put_file(Path("model.pt"))     # stored locally and in the bucket
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tracelet_artifacts import digest
from tracelet_artifacts.errors import (
    ArtifactStoreError,
    ArtifactStoreNotFoundError,
    ConfigurationError,
    IntegrityError,
    TraceletError,
)
from tracelet_artifacts.redact import redact_text
from tracelet_artifacts.store.blobs import BlobStore, Durability, StoredFile, is_digest

log = logging.getLogger(__name__)
_INSTALL_HINT = "pip install 'tracelet-artifacts[s3]'"
MULTIPART_BYTES = 16 * 1024 * 1024  # files from this size go up in parts of this size, PART_WORKERS at once
PART_WORKERS = 4
LOOKUP_FIRST_BYTES = 4 * 1024 * 1024  # blobs from this size are looked up in the bucket before being sent
UPLOAD_WORKERS = 8  # blobs sent at once (each large one also in up to 4 parts at once)


def _code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ("" for other errors)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


_NOT_FOUND = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ("bucket", "some/prefix")."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigurationError(f"Blob URL {url!r} is not s3://bucket[/prefix]; set TRACELET_BLOB_URL to one.")
    return parsed.netloc, parsed.path.strip("/")


class S3BlobStore(BlobStore):
    """Blobs in ``s3://bucket/prefix``, cached under ``cache_root`` (which is also where uploads start).

    ``endpoint_url`` points at any S3-compatible server (MinIO, Ceph, moto); credentials come from the
    usual AWS variables or profile, as for every boto3 program.
    """

    #: A version's blobs are in the bucket before the catalog names them: durable at commit.
    durable_when_settled = True
    #: One object per blob in the bucket: no packs (``pack_writer`` gives None).
    packable = False

    def __init__(self, url: str, *, cache_root: Path, endpoint_url: str | None = None, fsync: bool = True,
                 durability: Durability | None = None) -> None:
        super().__init__(cache_root, fsync=fsync, durability=durability)
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.uri_prefix = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint_url = endpoint_url
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError as exc:
            raise ConfigurationError(f"Blobs on S3 need boto3: {_INSTALL_HINT}.") from exc
        self._client = boto3.client("s3", endpoint_url=endpoint_url,
                                    config=Config(retries={"max_attempts": 5, "mode": "standard"}))
        self._transfer = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES,
                                        max_concurrency=PART_WORKERS)
        self._uploaded: set[str] = set()  # digests known to be in the bucket (it never loses a blob we wrote)
        self._uploading: dict[str, Future[None]] = {}  # digest → its upload, until settle() collects it
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="tracelet-s3-upload")
        self._check_bucket()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, cache_root={str(self.root)!r})"

    # -- S3 calls ---------------------------------------------------------------------------------
    def key(self, sha256: str) -> str:
        """The object key of a blob key (the same layout as the local folder's)."""
        if not is_digest(sha256):
            raise ArtifactStoreError(f"{sha256!r} is not a blob key (blake3:<64 hex>, or a SHA-256 hex digest).")
        return f"{self.prefix}/{digest.key_path(sha256)}" if self.prefix else digest.key_path(sha256)

    def _failed(self, action: str, exc: Exception) -> TraceletError:
        if _code(exc) == "NoSuchBucket":
            return self._no_bucket()
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            return ConfigurationError(
                f"No credentials for {self.url} at {self.endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE)."
            )
        return ArtifactStoreError(f"{action} {self.url} at {self.endpoint} failed: {type(exc).__name__}: "
                                  f"{redact_text(str(exc))}; check the object store and the network, then retry.")

    @property
    def endpoint(self) -> str:
        """The server boto3 really talks to: TRACELET_S3_ENDPOINT_URL, else AWS_ENDPOINT_URL(_S3) or the
        profile's endpoint, else the AWS region's (an S3-compatible store is not "AWS")."""
        return redact_text(str(self._client.meta.endpoint_url))

    def _no_bucket(self) -> ConfigurationError:
        return ConfigurationError(f"The bucket {self.bucket!r} does not exist at {self.endpoint}; "
                                  "create it or fix TRACELET_BLOB_URL.")

    def _check_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise (self._no_bucket() if _code(exc) in _NOT_FOUND else self._failed("Reaching", exc)) from None

    def in_bucket(self, sha256: str) -> bool:
        """Whether the bucket holds this blob."""
        if sha256 in self._uploaded:
            return True
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise self._failed("Reading", exc) from None
        with self._lock:
            self._uploaded.add(sha256)
        return True

    def _upload(self, sha256: str) -> None:
        """Send a cached blob to the bucket unless it is known to be there.

        A large blob is looked up first (a HEAD is cheaper than sending it again); a small one is simply
        sent: writing the same content under its own digest again changes nothing, and saves a round trip.
        """
        if sha256 in self._uploaded:
            return
        if self.path(sha256).stat().st_size >= LOOKUP_FIRST_BYTES and self.in_bucket(sha256):
            return
        try:
            self._client.upload_file(str(self.path(sha256)), self.bucket, self.key(sha256), Config=self._transfer)
        except Exception as exc:
            raise self._failed("Uploading a blob to", exc) from None
        with self._lock:
            self._uploaded.add(sha256)

    def _download(self, sha256: str) -> None:
        """Fetch a blob into the cache, keeping it only if it hashes to its name."""
        temp, token = self._begin()
        try:
            try:
                self._client.download_file(self.bucket, self.key(sha256), str(temp), Config=self._transfer)
            except Exception as exc:
                if _code(exc) in _NOT_FOUND:
                    raise ArtifactStoreNotFoundError(
                        f"Blob {sha256[:19]}… is missing from {self.url}; fetch it again from a backend that holds it."
                    ) from None
                raise self._failed("Downloading a blob from", exc) from None
            actual = digest.file_key(temp, digest.algorithm_of(sha256))
            if actual != sha256:
                raise IntegrityError(
                    f"Blob {sha256[:19]}… in {self.url} is corrupt (its content hashes to {actual[:19]}…); "
                    "log the artifact again from its source files, or fetch it from a backend that holds it."
                )
            fd = os.open(temp, os.O_RDONLY)
        except BaseException:
            self._abandon(temp, token, None)
            raise
        self._finish(temp, sha256, token, fd)

    def _upload_soon(self, sha256: str) -> None:
        """Start sending a blob in the background; ``settle`` waits for it before the catalog names it."""
        with self._lock:
            if sha256 in self._uploaded or sha256 in self._uploading:
                return
            upload = self._uploading[sha256] = self._pool.submit(self._upload, sha256)
        upload.add_done_callback(lambda done: self._forget(sha256, done))

    def _forget(self, sha256: str, upload: Future[None]) -> None:
        """A finished upload needs no collecting (``_uploaded`` knows it); a failed one waits for settle()."""
        if upload.exception() is None:
            with self._lock:
                self._uploading.pop(sha256, None)

    # -- the BlobStore contract -------------------------------------------------------------------
    def put_stream(self, source: io.BufferedIOBase | io.RawIOBase) -> tuple[str, int]:
        sha, size = super().put_stream(source)
        self._upload_soon(sha)
        return sha, size

    def store_file(self, path: str | os.PathLike[str], threads: int = 1, *, head: bool = True,
                   known: os.stat_result | None = None) -> StoredFile:
        stored = super().store_file(path, threads, head=head, known=known)
        self._upload_soon(stored.key)
        return stored

    def put_named(self, key: str, source: io.BufferedIOBase | io.RawIOBase) -> bool:
        named = super().put_named(key, source)
        if named:
            self._upload_soon(key)
        return named

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha, size = super().put_bytes(data)
        self._upload_soon(sha)
        return sha, size

    def settle(self, digests: Iterable[str]) -> None:
        """Return once every blob in ``digests`` is in the bucket (uploads run while the next files are
        hashed); the first failed upload raises, so the version is not recorded."""
        for sha in dict.fromkeys(digests):
            with self._lock:
                upload = self._uploading.get(sha)
            try:
                if upload is not None:
                    upload.result()
                elif not self.in_bucket(sha):
                    self._upload(sha)
            finally:
                if upload is not None:
                    with self._lock:
                        self._uploading.pop(sha, None)

    def exists(self, sha256: str) -> bool:
        return self.in_bucket(sha256)

    def forget(self, sha256: str) -> None:
        with self._lock:
            self._uploaded.discard(sha256)

    def touch(self, sha256: str) -> bool:
        return super().touch(sha256) and self.in_bucket(sha256)

    def keep(self, key: str) -> bool:
        return super().keep(key) and self.in_bucket(key)

    def local_path(self, sha256: str) -> Path:
        """The blob as a local file: the cached copy (marked used, for ``trim_cache``), else downloaded."""
        if not super().touch(sha256):
            self._download(sha256)
        return self.path(sha256)

    def _heal(self, sha256: str) -> None:
        """Replace a corrupt cached copy with the bucket's (checked) one."""
        log.warning("The cached copy of blob %s… is corrupt; fetching it again from %s", sha256[:12], self.url)
        super().delete(sha256)
        self._download(sha256)

    def verify(self, sha256: str) -> bool:
        """True when the blob is in the bucket and hashes to its name (a corrupt cached copy is replaced)."""
        try:
            self.local_path(sha256)
            if super().verify(sha256):
                return True
            self._heal(sha256)
        except (ArtifactStoreNotFoundError, IntegrityError):
            return False
        return super().verify(sha256)

    def copy_to(self, sha256: str, dest: Path, what: str = "", on_bytes: Callable[[int], None] | None = None) -> None:
        self.local_path(sha256)
        try:
            super().copy_to(sha256, dest, what, on_bytes)
        except IntegrityError:
            self._heal(sha256)
            super().copy_to(sha256, dest, what, on_bytes)

    def delete(self, sha256: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            raise self._failed("Deleting a blob from", exc) from None
        with self._lock:
            self._uploaded.discard(sha256)
        super().delete(sha256)

    def copy_within(self, key: str, new_key: str) -> None:
        """A server-side copy in the bucket (``migrate``: the same bytes under their BLAKE3 key)."""
        if self.in_bucket(new_key):
            return
        try:
            self._client.copy({"Bucket": self.bucket, "Key": self.key(key)}, self.bucket, self.key(new_key),
                              Config=self._transfer)
        except Exception as exc:
            raise self._failed("Copying a blob within", exc) from None
        with self._lock:
            self._uploaded.add(new_key)

    def drop_torn(self, sha256: str) -> str:
        """A cached copy found torn after a crash: removed (the bucket holds the blob; read again on demand)."""
        super().delete(sha256)
        return "removed the cached copy (the bucket holds the blob)"

    def trim_cache(self, *, unused_for_s: float, dry_run: bool = False) -> tuple[int, int]:
        """Remove this machine's cached copies that are in the bucket and unused for ``unused_for_s``
        (reading or logging a blob marks it used); return (count, bytes). They come back on demand."""
        cutoff = time.time() - unused_for_s
        count = size = 0
        for sha, blob_size, used in list(super().inventory()):
            if used > cutoff or not self.in_bucket(sha):
                continue
            count, size = count + 1, size + blob_size
            if not dry_run:
                super().delete(sha)
        return count, size

    def inventory(self) -> Iterator[tuple[str, int, float]]:
        """(digest, size, last modified) of every blob in the bucket."""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""):
                for item in page.get("Contents", []):
                    parts = item["Key"][len(self.prefix):].strip("/").split("/")
                    name = ("blake3:" if parts[0] == digest.BLAKE3 else "") + "".join(parts[-2:])
                    if is_digest(name):
                        yield name, int(item["Size"]), item["LastModified"].timestamp()
        except Exception as exc:
            raise self._failed("Listing", exc) from None

    def digests(self) -> Iterator[str]:
        return (sha for sha, _, _ in self.inventory())

    @property
    def client(self) -> Any:
        """The boto3 client (for tests and tools)."""
        return self._client
