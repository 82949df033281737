"""What keeps the web view safe: where it may listen, who may read it, and the headers on every response.

Without a token it listens on loopback only and answers only requests addressed to a loopback host name
(a web page elsewhere cannot rebind a name to 127.0.0.1 and read the store). With ``--token`` every
request must carry it: ``Authorization: Bearer …``, the cookie set after a first ``?token=…`` visit, or
``?token=…`` itself. Every response forbids scripts and content from anywhere but the view itself.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tracelet_artifacts.errors import ConfigurationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "tracelet_ui_token"
MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
HEADERS = [
    (b"content-security-policy", b"default-src 'none'; img-src 'self' data:; style-src 'self'; "
                                 b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token, and tokens too short to guess-proof."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"--token must be at least {MIN_TOKEN_LENGTH} characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe())'`).")
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"--host {host} serves the store beyond this machine: pass --token TOKEN (or set TRACELET_UI_TOKEN), "
            "or keep the default --host 127.0.0.1.")


def _host_name(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            text = value.decode("latin-1")
            return text[1:text.find("]")] if text.startswith("[") else text.split(":")[0]  # "[::1]:8700", "a:8700"
    return ""


class Guard:
    """ASGI middleware: the token or loopback-host check, then the safety headers on every response."""

    def __init__(self, app: App, *, token: str | None = None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is None:
            if not is_loopback(_host_name(scope)):
                await _plain(send, 421, "This view answers only requests to localhost; start it with --token "
                                        "to read it under another name.")
                return
        else:
            verdict = self._check_token(scope)
            if verdict == "query":
                await self._keep_token(scope, send)
                return
            if verdict != "ok":
                await _plain(send, 401, "A token is required: open this address with ?token=YOUR_TOKEN once, "
                                        "or send 'Authorization: Bearer YOUR_TOKEN'.", bearer=True)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _matches(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(str(offered).encode(), str(self.token).encode())

    def _check_token(self, scope: Scope) -> str:
        headers = dict(scope.get("headers", ()))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer " and self._matches(auth[7:].strip()):
            return "ok"
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        if COOKIE in cookie and self._matches(cookie[COOKIE].value):
            return "ok"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return "query" if self._matches(query.get("token")) else "no"

    async def _keep_token(self, scope: Scope, send: Send) -> None:
        """A valid ``?token=``: set the cookie and redirect to the same address without the token."""
        query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k != "token"]
        path = "/" + str(scope["path"]).lstrip("/")  # never "//host": the redirect stays on this site
        location = scope.get("root_path", "") + path + (f"?{urlencode(query)}" if query else "")
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1", "replace")),
                                (b"set-cookie", cookie.encode("latin-1")), *HEADERS]})
        await send({"type": "http.response.body", "body": b""})


async def _plain(send: Send, status: int, text: str, *, bearer: bool = False) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="tracelet-artifacts"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})
