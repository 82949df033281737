"""CI HTTP responses that lie or lead astray: bodies longer or shorter than their Content-Length, an HTML
page served with 200 where JSON or a zip is due, redirects from HTTPS down to plain HTTP (on a real TLS
loopback server), to other schemes, or round in a loop, and credentials kept to their own origin."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ci_fakes import RawServer, Sleeps, headers_seen, make_zip
from pytest_httpserver import HTTPServer

from tracelet_artifacts.ci.download import Expectation, download_to_path
from tracelet_artifacts.ci.errors import CIProviderError, DownloadIntegrityError
from tracelet_artifacts.ci.http import ProviderHTTP, Secret, check_redirect
from tracelet_artifacts.ci.providers.github import GitHubActionsProvider
from tracelet_artifacts.ci.retry import RetryPolicy

SECRET = "SeCrEt-123"
FAST = RetryPolicy(attempts=2, base_delay=0.0, jitter=0)


def _http(base_url: str, sleeps: Sleeps, client: httpx.Client | None = None) -> ProviderHTTP:
    return ProviderHTTP(client or httpx.Client(), base_url, provider="test",
                        auth_headers={"Authorization": Secret(f"Bearer {SECRET}")}, retry=FAST, sleep=sleeps)


def _download(http: ProviderHTTP, path: str, dest: Path, sleeps: Sleeps, **kw: object) -> object:
    return download_to_path(lambda: http.open_stream(path, what="artifact"), dest, retry=FAST, sleep=sleeps,
                            **kw)  # type: ignore[arg-type]


@pytest.fixture
def longer_than_declared() -> Iterator[RawServer]:
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: application/octet-stream\r\n"
                        b"Connection: close\r\n\r\n0123456789-and-twenty-more-bytes")
    yield server
    server.close()


def test_body_longer_than_its_content_length_fails_a_digest_check(
    longer_than_declared: RawServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    whole = b"0123456789-and-twenty-more-bytes"
    with pytest.raises(DownloadIntegrityError, match="SHA-256"):
        _download(_http(longer_than_declared.url, sleeps), "/f.bin", tmp_path / "f.bin", sleeps,
                  expect=Expectation(sha256=hashlib.sha256(whole).hexdigest()))
    with pytest.raises(DownloadIntegrityError, match="cut short"):
        _download(_http(longer_than_declared.url, sleeps), "/f.bin", tmp_path / "f.bin", sleeps,
                  expect=Expectation(size=len(whole)))
    assert list(tmp_path.iterdir()) == []


def test_body_longer_than_its_content_length_keeps_only_the_declared_bytes(
    longer_than_declared: RawServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    result = _download(_http(longer_than_declared.url, sleeps), "/f.bin", tmp_path / "f.bin", sleeps)
    assert (tmp_path / "f.bin").read_bytes() == b"0123456789" and result.size == 10  # type: ignore[attr-defined]


def test_body_shorter_than_its_content_length_leaves_nothing(sleeps: Sleeps, tmp_path: Path) -> None:
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nContent-Type: application/zip\r\n\r\n"
                        + make_zip({"a": b"x"})[:40])
    try:
        with pytest.raises(DownloadIntegrityError):
            _download(_http(server.url, sleeps), "/a.zip", tmp_path / "a.zip", sleeps, expect=Expectation(zip=True))
    finally:
        server.close()
    assert list(tmp_path.iterdir()) == []


def test_html_login_page_with_status_200_where_json_is_due_is_a_provider_error(api: HTTPServer, sleeps: Sleeps) -> None:
    page = "<!doctype html><html><body>Sign in to continue</body></html>"
    api.expect_request("/repos/o/r/actions/runs").respond_with_data(page, content_type="text/html")
    gh = GitHubActionsProvider("o/r", token=SECRET, base_url=api.url_for("/"), retry=FAST, sleep=sleeps)
    with gh, pytest.raises(CIProviderError, match="did not return JSON") as info:
        gh.list_runs(limit=5)
    assert SECRET not in str(info.value)


def test_html_page_with_status_200_where_a_zip_is_due_is_never_saved(
    api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    api.expect_request("/a.zip").respond_with_data("<html><body>Proxy error</body></html>", content_type="text/html")
    with pytest.raises(DownloadIntegrityError, match="HTML page"):
        _download(_http(api.url_for("/"), sleeps), "/a.zip", tmp_path / "a.zip", sleeps, expect=Expectation(zip=True))
    assert list(tmp_path.iterdir()) == []


# -- redirects ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("source", "target", "refused"),
    [
        ("https://api.example/a", "http://api.example/a", "plain HTTP"),
        ("https://api.example/a", "http://cdn.example/b", "plain HTTP"),
        ("https://api.example/a", "file:///etc/passwd", "only http"),
        ("http://api.example/a", "ftp://cdn.example/b", "only http"),
        ("https://api.example/a", "https://cdn.example/b", None),
        ("http://127.0.0.1:1/a", "http://127.0.0.1:2/b", None),
        ("http://api.example/a", "https://api.example/a", None),
    ],
)
def test_redirect_policy_refuses_downgrades_and_other_schemes(source: str, target: str, refused: str | None) -> None:
    if refused is None:
        check_redirect(httpx.URL(source), httpx.URL(target), "test")
        return
    with pytest.raises(CIProviderError, match=refused):
        check_redirect(httpx.URL(source), httpx.URL(target), "test")


def _tls_context(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client context trusting it."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


@pytest.fixture
def tls_api(tmp_path: Path) -> Iterator[tuple[HTTPServer, ssl.SSLContext]]:
    server_ctx, client_ctx = _tls_context(tmp_path)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_ctx)
    server.start()
    yield server, client_ctx
    server.clear()
    server.stop()


def test_https_origin_redirecting_to_plain_http_is_refused_end_to_end(
    tls_api: tuple[HTTPServer, ssl.SSLContext], api: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    secure, client_ctx = tls_api
    plain = api.url_for("/blob.zip")
    assert secure.url_for("/").startswith("https://") and plain.startswith("http://")
    secure.expect_request("/a.zip").respond_with_data("", status=302, headers={"Location": plain})
    api.expect_request("/blob.zip").respond_with_data(make_zip({"a": b"x"}), content_type="application/zip")
    http = _http(secure.url_for("/"), sleeps, httpx.Client(verify=client_ctx))
    with pytest.raises(CIProviderError, match="plain HTTP") as info:
        _download(http, "/a.zip", tmp_path / "a.zip", sleeps, expect=Expectation(zip=True))
    assert SECRET not in str(info.value)
    assert api.log == [], "the plain-HTTP host was contacted"
    assert [h.get("authorization") for h in headers_seen(secure, "/a.zip")] == [f"Bearer {SECRET}"]
    assert list(tmp_path.glob("a.zip*")) == []


def test_https_to_https_redirect_still_works_over_tls(
    tls_api: tuple[HTTPServer, ssl.SSLContext], sleeps: Sleeps, tmp_path: Path
) -> None:
    secure, client_ctx = tls_api
    body = make_zip({"perf.json": b"{}"})
    secure.expect_request("/a.zip").respond_with_data("", status=302, headers={"Location": "/blob/a.zip"})
    secure.expect_request("/blob/a.zip").respond_with_data(body, content_type="application/zip")
    http = _http(secure.url_for("/"), sleeps, httpx.Client(verify=client_ctx))
    _download(http, "/a.zip", tmp_path / "a.zip", sleeps, expect=Expectation(zip=True))
    assert (tmp_path / "a.zip").read_bytes() == body


def test_redirect_loop_is_reported_as_a_loop_after_one_round(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    api.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    api.expect_request("/b").respond_with_data("", status=307, headers={"Location": "/a"})
    with pytest.raises(CIProviderError, match="loop"):
        _download(_http(api.url_for("/"), sleeps), "/a", tmp_path / "a.bin", sleeps)
    assert len(api.log) == 2
    assert list(tmp_path.iterdir()) == []


def test_endless_redirects_to_new_urls_stop_at_the_limit(api: HTTPServer, sleeps: Sleeps, tmp_path: Path) -> None:
    from werkzeug import Request, Response

    def bounce(request: Request) -> Response:
        n = int(request.args.get("n", "0"))
        return Response("", status=302, headers={"Location": f"/r?n={n + 1}"})

    api.expect_request("/r").respond_with_handler(bounce)
    with pytest.raises(CIProviderError, match="more than 10 redirects"):
        _download(_http(api.url_for("/"), sleeps), "/r", tmp_path / "r.bin", sleeps)
    assert len(api.log) == 11


def test_credentials_from_a_base_url_go_to_its_own_origin_only(
    api: HTTPServer, cdn: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    base = api.url_for("/").replace("http://", f"http://builder:{SECRET}@")
    http = ProviderHTTP(httpx.Client(), base, provider="jenkins", retry=FAST, sleep=sleeps)
    assert SECRET not in repr(http) and SECRET not in http.base_url
    api.expect_request("/x.bin").respond_with_data("", status=302, headers={"Location": cdn.url_for("/x.bin")})
    cdn.expect_request("/x.bin").respond_with_data(b"payload", content_type="application/octet-stream")
    download_to_path(lambda: http.open_stream("/x.bin", what="x"), tmp_path / "x.bin", retry=FAST, sleep=sleeps)
    assert headers_seen(api, "/x.bin")[0]["authorization"].startswith("Basic ")
    assert "authorization" not in headers_seen(cdn, "/x.bin")[0]
