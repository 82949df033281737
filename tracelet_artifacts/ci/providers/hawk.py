"""Hawk request signing (the ``Authorization: Hawk …`` header Taskcluster expects), written from the
Hawk 1 specification: an HMAC-SHA256 over a normalised description of each request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

import httpx

from tracelet_artifacts.ci.http import Secret

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _quoted(value: str) -> str:
    if '"' in value or "\\" in value:
        raise ValueError("Hawk header values cannot contain quotes or backslashes")
    return value


def hawk_header(
    client_id: str,
    key: str,
    method: str,
    url: httpx.URL | str,
    *,
    ts: int,
    nonce: str,
    ext: str = "",
) -> str:
    """The ``Authorization`` value for one request (no payload hash; Taskcluster does not require one).

    >>> header = hawk_header("dh37fgj492je", "werxhqb98rpaxn39848xrunpaw3489ruxnpa98w4rxn", "GET",
    ...                      "http://example.com:8000/resource/1?b=1&a=2", ts=1353832234, nonce="j4h3g2",
    ...                      ext="some-app-ext-data")
    >>> header.rsplit(", ", 1)[1]  # the specification's worked example
    'mac="6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE="'
    """
    url = httpx.URL(str(url))
    port = url.port or _DEFAULT_PORTS.get(url.scheme, 80)
    resource = url.raw_path.decode("ascii")
    normalized = f"hawk.1.header\n{ts}\n{nonce}\n{method.upper()}\n{resource}\n{url.host.lower()}\n{port}\n\n{ext}\n"
    mac = base64.b64encode(hmac.new(key.encode(), normalized.encode(), hashlib.sha256).digest()).decode()
    parts = [f'id="{_quoted(client_id)}"', f'ts="{ts}"', f'nonce="{_quoted(nonce)}"']
    if ext:
        parts.append(f'ext="{_quoted(ext)}"')
    parts.append(f'mac="{mac}"')
    return "Hawk " + ", ".join(parts)


class HawkSigner:
    """Signs each request with Taskcluster credentials (permanent, or temporary with a certificate).

    >>> signer = HawkSigner("project/me", "secret-token")
    >>> signer
    HawkSigner(client_id='project/me', access_token=Secret('***'))
    """

    def __init__(
        self,
        client_id: str,
        access_token: str,
        *,
        certificate: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._access_token = Secret(access_token)
        self._ext = ""
        if certificate:
            cert = json.loads(certificate) if isinstance(certificate, str) else certificate
            self._ext = base64.b64encode(json.dumps({"certificate": cert}).encode()).decode()
        self.clock = clock

    def __repr__(self) -> str:
        return f"HawkSigner(client_id={self.client_id!r}, access_token={self._access_token!r})"

    def __call__(self, method: str, url: httpx.URL) -> dict[str, str]:
        header = hawk_header(
            self.client_id,
            self._access_token.reveal(),
            method,
            url,
            ts=int(self.clock()),
            nonce=secrets.token_urlsafe(8),
            ext=self._ext,
        )
        return {"Authorization": header}
