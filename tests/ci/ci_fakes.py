"""Shared fakes for the CI-provider tests: two loopback HTTP servers (an API host and a separate
"blob/CDN" host on another port) and small builders for zips and recorded sleeps.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from helpers_archives import make_zip
from pytest_httpserver import HTTPServer

__all__ = ["TOKEN", "RawServer", "Sleeps", "headers_seen", "make_zip"]

TOKEN = "tok-SUPERSECRET-123"


def _server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture(scope="session")
def _api_server() -> Iterator[HTTPServer]:
    yield from _server()


@pytest.fixture(scope="session")
def _cdn_server() -> Iterator[HTTPServer]:
    yield from _server()


@pytest.fixture
def api(_api_server: HTTPServer) -> Iterator[HTTPServer]:
    """The provider's API host (one server for the session, cleared for every test)."""
    _api_server.clear()
    yield _api_server
    _api_server.clear()


@pytest.fixture
def cdn(_cdn_server: HTTPServer) -> Iterator[HTTPServer]:
    """A second origin (another port) standing in for the blob store / CDN a download redirects to."""
    _cdn_server.clear()
    yield _cdn_server
    _cdn_server.clear()


class Sleeps(list[float]):
    """A ``sleep`` stand-in that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def headers_seen(server: HTTPServer, path: str) -> list[dict[str, str]]:
    """Lower-cased headers of every request the server got for ``path``."""
    return [{k.lower(): v for k, v in request.headers.items()} for request, _ in server.log if request.path == path]


class RawServer:
    """A loopback server that answers every request with the same raw bytes and closes the connection:
    responses no well-behaved server sends (a body shorter or longer than its Content-Length)."""

    def __init__(self, response: bytes) -> None:
        self.response, self.hits = response, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.hits += 1
                conn.sendall(self.response)

    def close(self) -> None:
        self.sock.close()
