"""Streaming download of one artifact body to disk: status checked, size and digest verified,
written to a temporary name and renamed into place, retried with backoff on transient failures only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tracelet_artifacts.ci.errors import CIProviderError, DownloadIntegrityError
from tracelet_artifacts.ci.http import Opened, redact_url
from tracelet_artifacts.ci.retry import HTTP_RETRY, RetryPolicy, call_with_retries

logger = logging.getLogger("tracelet_artifacts.ci")

CHUNK = 1 << 20
SNIFF_BYTES = 64
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<body")


@dataclass(frozen=True)
class Expectation:
    """What a body must be: its exact size and SHA-256 when known, and whether it must be a zip."""

    size: int | None = None
    sha256: str | None = None
    zip: bool = False


@dataclass(frozen=True)
class Downloaded:
    """A finished download: where it is, how big it is and its SHA-256."""

    path: Path
    size: int
    sha256: str


ProgressCallback = Callable[[int, int | None], None]


def _normalise_digest(digest: str | None) -> str | None:
    if not digest:
        return None
    algo, _, value = digest.partition(":")
    if value and algo.lower() != "sha256":
        return None  # a digest we do not compute; nothing to compare against
    return (value or algo).lower()


def _looks_like_html(first: bytes, content_type: str) -> bool:
    if "text/html" in content_type.lower():
        return True
    return first.lstrip()[:20].lower().startswith(HTML_PREFIXES)


def _check_head(first: bytes, response: httpx.Response, expect: Expectation, dest: Path) -> None:
    """Refuse a body that is plainly not the artifact: an empty or non-zip body where a zip is due,
    or an HTML page (login, proxy error) where a non-HTML file is due."""
    content_type = response.headers.get("content-type", "")
    wants_html = dest.suffix.lower() in (".html", ".htm")
    if expect.zip and not first:
        raise DownloadIntegrityError(
            f"{redact_url(response.request.url)} returned an empty body where a zip was expected; try again later."
        )
    if expect.zip and not first.startswith(ZIP_MAGIC):
        kind = "an HTML page" if _looks_like_html(first, content_type) else "something that is not a zip"
        raise DownloadIntegrityError(
            f"{redact_url(response.request.url)} returned {kind} with HTTP {response.status_code} "
            "where a zip was expected (often a login or proxy page); check the URL and the token."
        )
    if not wants_html and not expect.zip and _looks_like_html(first, content_type):
        raise DownloadIntegrityError(
            f"{redact_url(response.request.url)} returned an HTML page with HTTP {response.status_code} "
            f"instead of {dest.name} (often a login or proxy page); check the URL and the token."
        )


def _write_body(
    opened: Opened,
    dest: Path,
    expect: Expectation,
    chunk_size: int,
    progress: ProgressCallback | None,
) -> Downloaded:
    response = opened.response
    total = expect.size
    if total is None and "content-encoding" not in response.headers:
        length = response.headers.get("content-length")
        total = int(length) if length and length.isdigit() else None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    written = 0
    head: bytes | None = b""  # the first bytes, sniffed once there are enough (None: checked)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_bytes(chunk_size):
                if head is not None:
                    head += chunk[:SNIFF_BYTES]
                    if len(head) >= SNIFF_BYTES:
                        _check_head(head, response, expect, dest)
                        head = None
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written, total)
            if head is not None:
                _check_head(head, response, expect, dest)
            out.flush()
            os.fsync(out.fileno())
        _verify(response, expect, written, digest.hexdigest(), dest)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Downloaded(dest, written, digest.hexdigest())


def _verify(response: httpx.Response, expect: Expectation, written: int, sha256: str, dest: Path) -> None:
    where = redact_url(response.request.url)
    length = response.headers.get("content-length")
    if length and length.isdigit() and "content-encoding" not in response.headers and written != int(length):
        raise DownloadIntegrityError(f"{where}: body ended after {written} of {length} bytes (truncated).")
    if expect.size is not None and written != expect.size:
        raise DownloadIntegrityError(
            f"{where}: got {written} bytes for {dest.name}, the provider said {expect.size}; "
            "the download was cut short or the artifact changed."
        )
    wanted = _normalise_digest(expect.sha256)
    if wanted is not None and wanted != sha256:
        raise DownloadIntegrityError(
            f"{where}: SHA-256 of {dest.name} is {sha256}, the provider said {wanted}; "
            "the body was corrupted in transit."
        )


def download_to_path(
    open_stream: Callable[[], AbstractContextManager[Opened]],
    dest: Path,
    *,
    expect: Expectation | Callable[[Opened], Expectation] = Expectation(),
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    chunk_size: int = CHUNK,
    progress: ProgressCallback | None = None,
) -> Downloaded:
    """Stream a body to ``dest`` atomically; on failure nothing is left at ``dest`` or beside it.

    ``open_stream`` is called afresh for every attempt (short-lived redirect URLs are re-issued);
    ``expect`` may be computed from the opened response (e.g. Taskcluster's digest headers).

    >>> download_to_path(lambda: http.open_stream(url, what="artifact"), Path("out.zip"),
    ...                  expect=Expectation(zip=True))  # doctest: +SKIP
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def once() -> Downloaded:
        try:
            with open_stream() as opened:
                wanted = expect(opened) if callable(expect) else expect
                return _write_body(opened, dest, wanted, chunk_size, progress)
        except httpx.RemoteProtocolError as exc:
            raise DownloadIntegrityError(f"the body of {dest.name} was truncated ({exc}).") from exc
        except httpx.TransportError as exc:
            raise CIProviderError(
                f"network error while downloading {dest.name} ({type(exc).__name__}); check connectivity.",
                retryable=True,
            ) from exc

    result = call_with_retries(once, retry or HTTP_RETRY, what=f"download of {dest.name}", sleep=sleep)
    logger.debug("downloaded %s (%d bytes)", dest, result.size)
    return result
