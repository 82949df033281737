"""Secrets never leave in text we print: URLs lose their password before they reach a message or a repr.

    redact_url("postgresql://team:hunter2@db:5432/tracelet")  # 'postgresql://team:***@db:5432/tracelet'
"""

from __future__ import annotations

import re

# scheme://user:password@host → the password is replaced; also inside longer text (driver error messages).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?P<tail>@)")
# password=… in libpq keyword strings and query strings.
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?P<secret>'[^']*'|[^\s&;]+)")


def redact_url(text: str) -> str:
    """``text`` with the password of every URL (and ``password=…``) replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}***", text)
