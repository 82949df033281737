"""The one place that hides secrets before text is shown, logged, raised or stored: passwords in URLs
(``postgresql://team:***@db/tracelet``, also inside driver error messages), ``password=…`` keywords,
credential query parameters, token headers quoted in messages, and values wrapped in ``Secret``.

    >>> redact_url("postgresql://team:hunter2@db:5432/tracelet")
    'postgresql://team:***@db:5432/tracelet'
    >>> redact_text("GET https://me:hunter2@ci.example/api?sig=abc failed")
    'GET https://me:***@ci.example/api?sig=*** failed'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# scheme://user:password@host → the password is replaced; also inside longer text (driver error messages).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?P<tail>@)")
# password=… in libpq keyword strings and query strings.
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?P<secret>'[^']*'|[^\s&;]+)")
# ?sig=…, &token=…, X-Amz-Signature=…: query parameters that carry credentials or signatures
_QUERY = re.compile(
    r"(?i)(?P<head>[?&;](?:[\w.\-]*(?:sig|signature|token|secret|password|passwd|credential|key|code|auth)"
    r"[\w.\-]*)=)[^&\s'\"#]+"
)
# Authorization: Bearer …, PRIVATE-TOKEN: …, 'JOB-TOKEN': '…' quoted in an error or a header dump
_HEADER = re.compile(
    r"(?i)(?P<head>\b[\w\-]*(?:authorization|private-token|job-token|api[-_]?key|access[-_]?key|access[-_]?token|"
    r"password|passwd|secret)[\w\-]*['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic|token|hawk)\s+)?)"
    r"[^\s'\",}]+"
)
# Option names whose values are secrets in their own right.
SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|api[-_]?key|access[-_]?key|credential|certificate)")


class Secret:
    """A value (token, password) that never shows itself in a repr, a log line or an error message.

    >>> Secret("ghp_abc")
    Secret('***')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for building a request header or a connection and nothing else."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__


def redact_url(text: object) -> str:
    """``text`` (a URL, or text holding URLs) with every URL password, ``password=…`` value and
    credential query parameter (``sig=``, ``token=``, ``X-Amz-Signature=``…) replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", str(text))
    text = _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}", text)


def redact_text(text: str, secrets: Iterable[str | Secret | None] = ()) -> str:
    """``text`` with URL passwords, credential query parameters, token headers and the given secret
    values masked; what is left reads the same."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= 4:  # masking "a" would shred the text and hide nothing
            text = text.replace(value, MASK)
    return _HEADER.sub(lambda m: f"{m['head']}{MASK}", redact_url(text))


def redact_value(value: Any, key: str = "") -> Any:
    """A copy of a settings value fit to show: secret-named keys masked, text redacted, recursively."""
    if isinstance(value, Secret):
        return value
    if key and SECRET_KEYS.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value
