"""Streaming downloads: status checked, HTML-instead-of-zip refused, size/digest verified, truncated
bodies retried, and never a partial or error file left on disk."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import httpx
import pytest
from ci_fakes import TOKEN, RawServer, Sleeps, make_zip
from pytest_httpserver import HTTPServer

from tracelet_artifacts.ci.download import Expectation, download_to_path
from tracelet_artifacts.ci.errors import CINotFoundError, CIProviderError, DownloadIntegrityError
from tracelet_artifacts.ci.http import ProviderHTTP, Secret, redact_url
from tracelet_artifacts.ci.retry import RetryPolicy


def _http(server_url: str, sleeps: Sleeps) -> ProviderHTTP:
    return ProviderHTTP(
        httpx.Client(),
        server_url,
        provider="test",
        auth_headers={"Authorization": Secret(f"Bearer {TOKEN}")},
        retry=RetryPolicy(attempts=3, base_delay=0.01, jitter=0),
        sleep=sleeps,
    )


def _download(http: ProviderHTTP, path: str, dest: Path, sleeps: Sleeps, **kw: object) -> object:
    return download_to_path(
        lambda: http.open_stream(path, what="artifact"),
        dest,
        retry=RetryPolicy(attempts=3, base_delay=0.01, jitter=0),
        sleep=sleeps,
        **kw,  # type: ignore[arg-type]
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_secret_and_signed_urls_never_show_in_reprs() -> None:
    assert TOKEN not in repr(Secret(TOKEN)) and TOKEN not in str(Secret(TOKEN))
    assert redact_url(f"https://blob.example/x.zip?sig={TOKEN}&se=1") == "https://blob.example/x.zip?…"


def test_download_verifies_digest_and_renames_into_place(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    body = make_zip({"perf.json": b'{"metrics": {"throughput": 1}}'})
    api.expect_request("/a.zip").respond_with_data(body, content_type="application/zip")
    result = _download(
        _http(api.url_for("/"), sleeps),
        "/a.zip",
        tmp_path / "a.zip",
        sleeps,
        expect=Expectation(size=len(body), sha256="sha256:" + hashlib.sha256(body).hexdigest(), zip=True),
    )
    assert (tmp_path / "a.zip").read_bytes() == body
    assert result.sha256 == hashlib.sha256(body).hexdigest()  # type: ignore[attr-defined]
    assert _leftovers(tmp_path) == ["a.zip"]


def test_html_page_with_status_200_is_not_saved_as_a_zip(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/a.zip").respond_with_data(
        "<!DOCTYPE html><html><body>Sign in</body></html>", content_type="text/html"
    )
    with pytest.raises(DownloadIntegrityError, match="HTML page"):
        _download(_http(api.url_for("/"), sleeps), "/a.zip", tmp_path / "a.zip", sleeps, expect=Expectation(zip=True))
    assert _leftovers(tmp_path) == []


def test_html_login_page_is_refused_for_a_plain_file_too(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/report.json").respond_with_data("<html><title>Login</title></html>", content_type="text/html")
    with pytest.raises(DownloadIntegrityError):
        _download(_http(api.url_for("/"), sleeps), "/report.json", tmp_path / "report.json", sleeps)
    assert _leftovers(tmp_path) == []


def test_digest_mismatch_is_retried_then_fails_leaving_nothing(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/f.bin").respond_with_data(b"tampered", content_type="application/octet-stream")
    with pytest.raises(DownloadIntegrityError, match="SHA-256"):
        _download(
            _http(api.url_for("/"), sleeps), "/f.bin", tmp_path / "f.bin", sleeps, expect=Expectation(sha256="0" * 64)
        )
    assert len(api.log) == 3 and len(sleeps) == 2
    assert _leftovers(tmp_path) == []


def test_size_mismatch_is_an_integrity_error(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/f.bin").respond_with_data(b"12345", content_type="application/octet-stream")
    with pytest.raises(DownloadIntegrityError, match="provider said 6"):
        _download(_http(api.url_for("/"), sleeps), "/f.bin", tmp_path / "f.bin", sleeps, expect=Expectation(size=6))


def test_error_status_is_never_saved_and_404_is_not_retried(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/gone.bin").respond_with_data("Not Found", status=404)
    with pytest.raises(CINotFoundError) as info:
        _download(_http(api.url_for("/"), sleeps), "/gone.bin", tmp_path / "gone.bin", sleeps)
    assert TOKEN not in str(info.value)
    assert len(api.log) == 1 and sleeps == []
    assert _leftovers(tmp_path) == []


def test_server_errors_are_retried_until_success(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_ordered_request("/f.txt").respond_with_data("boom", status=502)
    api.expect_ordered_request("/f.txt").respond_with_data("boom", status=503)
    api.expect_ordered_request("/f.txt").respond_with_data("hello", content_type="text/plain")
    _download(_http(api.url_for("/"), sleeps), "/f.txt", tmp_path / "f.txt", sleeps)
    assert (tmp_path / "f.txt").read_text() == "hello"
    assert len(sleeps) == 2


def _truncating_server() -> RawServer:
    """Answers every request with Content-Length 1000 but only 10 bytes, then closes the socket."""
    return RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n"
                     b"0123456789")


def test_truncated_body_is_retried_and_never_kept(sleeps: Sleeps, tmp_path: Path) -> None:
    server = _truncating_server()
    try:
        with pytest.raises(DownloadIntegrityError, match="truncated"):
            _download(_http(server.url, sleeps), "/big.bin", tmp_path / "big.bin", sleeps)
    finally:
        server.close()
    assert server.hits == 3
    assert _leftovers(tmp_path) == []


def test_network_errors_become_retryable_provider_errors(sleeps: Sleeps, tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(CIProviderError) as info:
        _download(_http(f"http://127.0.0.1:{port}", sleeps), "/x", tmp_path / "x", sleeps)
    assert info.value.retryable and len(sleeps) == 2


def test_html_split_over_tiny_chunks_is_still_recognised(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    from werkzeug import Response

    def handler(request: object) -> Response:
        parts = iter([b" ", b"<", b"!DOC", b"TYPE html><html><body>", b"Session expired</body></html>"])
        return Response(parts, content_type="application/octet-stream")  # a lying content type, chunked

    api.expect_request("/r.json").respond_with_handler(handler)
    with pytest.raises(DownloadIntegrityError, match="HTML"):
        _download(_http(api.url_for("/"), sleeps), "/r.json", tmp_path / "r.json", sleeps)
    assert _leftovers(tmp_path) == []


def test_empty_body_where_a_zip_is_due_is_refused(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/a.zip").respond_with_data(b"", content_type="application/zip")
    with pytest.raises(DownloadIntegrityError, match="empty"):
        _download(_http(api.url_for("/"), sleeps), "/a.zip", tmp_path / "a.zip", sleeps, expect=Expectation(zip=True))
    assert _leftovers(tmp_path) == []


def test_progress_reports_bytes_against_the_known_total(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    body = bytes(range(256)) * 64
    api.expect_request("/f.bin").respond_with_data(body, content_type="application/octet-stream")
    seen: list[tuple[int, int | None]] = []
    download_to_path(
        lambda: _http(api.url_for("/"), sleeps).open_stream("/f.bin", what="f"),
        tmp_path / "f.bin",
        chunk_size=4096,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 2


def test_redirect_without_location_is_an_error_not_a_body(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/moved").respond_with_data("moved somewhere", status=302)
    with pytest.raises(CIProviderError, match="HTTP 302"):
        _download(_http(api.url_for("/"), sleeps), "/moved", tmp_path / "moved.bin", sleeps)
    assert _leftovers(tmp_path) == []
