"""The HTTP layer every CI provider shares: auth headers kept to the provider's own origin,
redirects followed by hand, rate limits waited out or reported, ETag reuse, and errors mapped to CIError.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tracelet_artifacts import redact
from tracelet_artifacts.ci.errors import (
    ArtifactExpiredError,
    ArtifactUnavailableError,
    CIAuthError,
    CINotFoundError,
    CIProviderError,
    RateLimitedError,
)
from tracelet_artifacts.ci.retry import HTTP_RETRY, RetryPolicy, call_with_retries
from tracelet_artifacts.redact import Secret

__all__ = ["Opened", "ProviderHTTP", "Secret", "build_client", "check_redirect", "redact_url"]

logger = logging.getLogger("tracelet_artifacts.ci")

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10


def redact_url(url: str | httpx.URL) -> str:
    """The URL without its password and query string, which may carry signatures or job tokens."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL:
        return redact.redact_url(url)
    bare = str(parsed.copy_with(query=None, fragment=None))
    return redact.redact_url(bare) + ("?…" if parsed.query else "")


def check_redirect(source: httpx.URL, target: httpx.URL, provider: str) -> None:
    """Refuse a redirect that must not be followed: to a scheme other than http(s), or from HTTPS down to
    plain HTTP (the request, and whatever it downloads, could then be read or changed on the way)."""
    if target.scheme not in ("http", "https"):
        raise CIProviderError(
            f"{provider}: {redact_url(source)} redirected to a {target.scheme or 'relative'!r} URL; "
            "only http(s) redirects are followed."
        )
    if source.scheme == "https" and target.scheme == "http":
        raise CIProviderError(
            f"{provider}: {redact_url(source)} redirected from HTTPS down to plain HTTP ({redact_url(target)}); "
            "refusing to follow it. Check the provider's base URL, or ask its admin to serve HTTPS throughout."
        )


def _split_userinfo(base_url: str) -> tuple[str, Secret | None]:
    """``https://user:token@host`` → (``https://host``, the Basic auth header), so no repr shows the token."""
    url = httpx.URL(base_url)
    if not url.userinfo:
        return base_url, None
    user, password = url.username, url.password
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return str(url.copy_with(username=None, password=None)), Secret(f"Basic {token}")


def build_client(
    client: httpx.Client | None, transport: httpx.BaseTransport | None, timeout: float = 60.0
) -> tuple[httpx.Client | Callable[[], httpx.Client], bool]:
    """The injected client, or a factory for one that is built on first use (and owned: True).

    Building an ``httpx.Client`` loads TLS certificates, so a provider that only serves cache hits
    never pays for it.
    """
    if client is not None:
        return client, False
    return (lambda: httpx.Client(transport=transport, timeout=httpx.Timeout(timeout, connect=15.0))), True


def parse_link_header(value: str | None) -> dict[str, str]:
    """``rel -> url`` from an RFC 8288 ``Link`` header (GitHub and GitLab pagination)."""
    links: dict[str, str] = {}
    for part in (value or "").split(","):
        url_part, _, params = part.strip().partition(";")
        url = url_part.strip().strip("<>")
        for param in params.split(";"):
            key, _, rel = param.strip().partition("=")
            if key.strip().lower() == "rel" and url:
                for name in rel.strip().strip('"').split():
                    links[name] = url
    return links


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """True when both URLs share scheme, host and port (the only place credentials may go)."""
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _float_header(headers: httpx.Headers, *names: str) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value)
        except ValueError:
            continue
    return None


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait before retrying, if ``response`` is a rate-limit answer; None otherwise.

    Understands ``Retry-After`` (seconds), GitHub's ``x-ratelimit-remaining``/``x-ratelimit-reset`` and
    GitLab's ``RateLimit-Remaining``/``RateLimit-Reset`` (both epoch seconds).
    """
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = _float_header(headers, "retry-after")
    if retry_after is not None:
        return max(retry_after, 0.0)
    remaining = _float_header(headers, "x-ratelimit-remaining", "ratelimit-remaining")
    reset = _float_header(headers, "x-ratelimit-reset", "ratelimit-reset")
    if remaining == 0 and reset is not None:
        return max(reset - now, 0.0)
    if response.status_code == 429:
        return 60.0  # rate limited with no hint: a minute is the usual window
    return None


def error_for_response(response: httpx.Response, provider: str, what: str) -> CIProviderError:
    """The CIProviderError that describes a failed response, without echoing any secret."""
    status = response.status_code
    where = f"{provider}: {what} ({redact_url(response.request.url)})"
    if status == 401:
        return CIAuthError(f"{where} was refused (401): set a valid token for {provider}.", status=status)
    if status == 403:
        return CIAuthError(
            f"{where} was forbidden (403): the token lacks the scope or access needed for this.",
            status=status,
        )
    if status == 404:
        return CINotFoundError(
            f"{where} was not found (404): check the id and that the token can see it.", status=status
        )
    if status == 410:
        return ArtifactExpiredError(
            f"{where} has expired (410): the provider deleted it after its retention period; "
            "re-run the job to produce it again.",
            status=status,
        )
    if status == 424:
        return ArtifactUnavailableError(
            f"{where} is an error artifact (424): the worker never uploaded it; it will not appear later.",
            status=status,
        )
    if status == 429:
        return RateLimitedError(f"{where} was rate limited (429); try again later.", status=status)
    retryable = status >= 500 or status == 408
    hint = "the provider is failing; try again later" if retryable else "the request was rejected"
    return CIProviderError(f"{where} failed with HTTP {status}: {hint}.", retryable=retryable, status=status)


@dataclass
class Opened:
    """A streaming response after redirects, with the responses of the hops that led to it."""

    response: httpx.Response
    hops: list[httpx.Response] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The header from the final response, or else from the latest hop that carried it."""
        for resp in [self.response, *reversed(self.hops)]:
            if name in resp.headers:
                return resp.headers[name]
        return None


class ProviderHTTP:
    """One provider's HTTP access: base URL, credentials for its own origin only, waits and retries.

    >>> http = ProviderHTTP(httpx.Client(), "https://api.github.com", provider="github",
    ...                     auth_headers={"Authorization": Secret("Bearer x")})
    """

    def __init__(
        self,
        client: httpx.Client | Callable[[], httpx.Client],
        base_url: str,
        *,
        provider: str,
        auth_headers: Mapping[str, Secret] | None = None,
        auth_origins: tuple[str, ...] = (),
        signer: Callable[[str, httpx.URL], Mapping[str, str]] | None = None,
        default_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        max_rate_limit_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client: httpx.Client | None = client if isinstance(client, httpx.Client) else None
        self._client_factory = None if isinstance(client, httpx.Client) else client
        self._client_lock = threading.Lock()
        base_url, from_url = _split_userinfo(base_url.rstrip("/"))
        self.base_url = base_url.rstrip("/")
        self.origin = httpx.URL(self.base_url)
        self._auth_origins = [self.origin, *(httpx.URL(o) for o in auth_origins)]
        self._signer = signer
        self.provider = provider
        self._auth_headers = dict(auth_headers or {})
        if from_url is not None:
            self._auth_headers.setdefault("Authorization", from_url)
        self._default_headers = dict(default_headers or {})
        self.retry = retry or dataclasses.replace(HTTP_RETRY, max_attempts=4)
        self.max_rate_limit_wait = max_rate_limit_wait
        self.sleep = sleep
        self.clock = clock
        self._etags: dict[str, tuple[str, Any, httpx.Headers]] = {}

    def __repr__(self) -> str:
        return f"ProviderHTTP(provider={self.provider!r}, base_url={redact_url(self.base_url)!r})"

    @property
    def client(self) -> httpx.Client:
        """The httpx client, built on first use when a factory was given."""
        if self._client is None:
            with self._client_lock:  # batch workers may all ask at once
                if self._client is None:
                    assert self._client_factory is not None
                    self._client = self._client_factory()
        return self._client

    def close(self) -> None:
        """Close the client if it was ever built."""
        if self._client is not None:
            self._client.close()

    def url(self, path_or_url: str) -> str:
        """An absolute URL: absolute input is kept, a path is joined to the base URL."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def headers_for(
        self, url: httpx.URL, extra: Mapping[str, str] | None = None, method: str = "GET"
    ) -> dict[str, str]:
        """Request headers; credentials (static or signed per request) only on the provider's origins."""
        headers = dict(self._default_headers)
        if any(same_origin(url, origin) for origin in self._auth_origins):
            headers.update({name: secret.reveal() for name, secret in self._auth_headers.items()})
            if self._signer is not None:
                headers.update(self._signer(method, url))
        headers.update(extra or {})
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> Opened:
        """Send once, following redirects by hand; the final response is not status-checked."""
        target = httpx.URL(self.url(url), params=params) if params else httpx.URL(self.url(url))
        hops: list[httpx.Response] = []
        seen: set[tuple[str, str]] = set()
        for _ in range(MAX_REDIRECTS + 1):
            if (method, str(target)) in seen:
                raise CIProviderError(
                    f"{self.provider}: redirects for {redact_url(url)} go round in a loop (back to "
                    f"{redact_url(target)}); check the URL, or report it to the provider."
                )
            seen.add((method, str(target)))
            request = self.client.build_request(
                method, target, headers=self.headers_for(target, headers, method), **kwargs
            )
            try:
                response = self.client.send(request, stream=True, follow_redirects=False)
            except httpx.TransportError as exc:
                raise CIProviderError(
                    f"{self.provider}: network error reaching {redact_url(target)} ({type(exc).__name__}); "
                    "check the base URL and your connection.",
                    retryable=True,
                ) from exc
            if response.status_code in REDIRECT_CODES and "location" in response.headers:
                response.read()
                response.close()
                hops.append(response)
                source, target = target, target.join(response.headers["location"])
                check_redirect(source, target, self.provider)
                if response.status_code == 303 or (response.status_code in (301, 302) and method != "GET"):
                    method, kwargs = "GET", {}
                continue
            if not stream:
                try:
                    response.read()
                finally:
                    response.close()
            return Opened(response, hops)
        raise CIProviderError(f"{self.provider}: more than {MAX_REDIRECTS} redirects for {redact_url(url)}.")

    def _check(self, opened: Opened, what: str, ok: frozenset[int]) -> Opened:
        response = opened.response
        if 200 <= response.status_code < 300 or response.status_code in ok:
            return opened  # a 3xx here had no Location to follow: an error, not a body to keep
        wait = rate_limit_wait(response, self.clock())
        response.close()
        if wait is not None:
            if wait > self.max_rate_limit_wait:
                reset_at = self.clock() + wait
                raise RateLimitedError(
                    f"{self.provider}: rate limit exhausted for {what}; it resets in {wait:.0f}s "
                    f"(at epoch {reset_at:.0f}). Wait, or use a token with a higher limit.",
                    reset_at=reset_at,
                    status=response.status_code,
                )
            logger.info("%s: rate limited on %s; waiting %.1fs for the reset", self.provider, what, wait)
            self.sleep(wait)
            raise _RetryNow()
        raise error_for_response(response, self.provider, what)

    def _attempt(self, fn: Callable[[], Opened]) -> Opened:
        """Run ``fn``; a rate-limit wait that fits the budget reruns it without using a retry."""
        for _ in range(5):
            try:
                return fn()
            except _RetryNow:
                continue
        raise RateLimitedError(f"{self.provider}: still rate limited after waiting five times.")

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with redirects, rate-limit waits and retries; the body is read."""

        def once() -> Opened:
            try:
                opened = self._send(method, url, params=params, headers=headers, **kwargs)
            except httpx.TransportError as exc:  # e.g. a JSON body cut short while it was read
                raise CIProviderError(
                    f"{self.provider}: {what} was interrupted ({type(exc).__name__}); try again.", retryable=True
                ) from exc
            return self._check(opened, what, ok)

        retry = self.retry if method in ("GET", "HEAD", "PUT", "DELETE") else RetryPolicy(max_attempts=1)
        opened = call_with_retries(lambda: self._attempt(once), retry, what=f"{self.provider} {what}", sleep=self.sleep)
        return opened.response

    def get_json(
        self,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        use_etag: bool = False,
    ) -> tuple[Any, httpx.Headers]:
        """GET a JSON document; with ``use_etag`` an unchanged list is served from memory (304)."""
        key = str(httpx.URL(self.url(url), params=params)) if params else self.url(url)
        headers: dict[str, str] = {}
        cached = self._etags.get(key) if use_etag else None
        if cached is not None:
            headers["If-None-Match"] = cached[0]
        response = self.request("GET", url, what=what, params=params, headers=headers, ok=frozenset({304}))
        if response.status_code == 304 and cached is not None:
            logger.debug("%s: %s not modified; reusing cached body", self.provider, what)
            return cached[1], cached[2]
        try:
            data = response.json()
        except ValueError as exc:
            raise CIProviderError(
                f"{self.provider}: {what} did not return JSON (HTTP {response.status_code}); "
                "check the base URL points at the API.",
                retryable=False,
                status=response.status_code,
            ) from exc
        etag = response.headers.get("etag")
        if use_etag and etag:
            self._etags[key] = (etag, data, response.headers)
        return data, response.headers

    @contextlib.contextmanager
    def open_stream(self, url: str, *, what: str, headers: Mapping[str, str] | None = None) -> Iterator[Opened]:
        """A streaming GET after redirects and a status check; the caller reads the body."""
        opened = self._attempt(
            lambda: self._check(self._send("GET", url, headers=headers, stream=True), what, frozenset())
        )
        try:
            yield opened
        finally:
            opened.response.close()


class _RetryNow(Exception):
    """Internal signal: the rate-limit wait is over, send the same request again."""
