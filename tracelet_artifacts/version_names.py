"""Version names: what registry users call a version (``1.0.0``, ``v1.2.0``, ``2024-06-01``, ``rc1``), kept
beside the store's immutable version numbers. A leading ``v`` before a digit is dropped, so ``v1.2.0`` and
``1.2.0`` are one name; a name holds a digit (``best``, ``prod`` stay aliases, which move) and is never a
plain number (``3`` and ``v3`` are version numbers).

    >>> split_version("v1.2.0"), split_version("v3"), split_version(None)
    ((None, '1.2.0'), (3, None), (None, None))
"""

from __future__ import annotations

import re

from tracelet_artifacts.errors import InvalidVersionError

__all__ = ["MAX_VERSION_NAME_LENGTH", "could_be_version_name", "is_version_number", "next_version_name",
           "normalize_version_name", "split_version"]

MAX_VERSION_NAME_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]*")


def is_version_number(text: str) -> bool:
    """``"3"`` and ``"v3"`` are version numbers (so is ``"v0"``, which names no version)."""
    digits = text[1:] if text[:1] in ("v", "V") else text
    return digits.isdigit()


def normalize_version_name(name: object) -> str:
    """``name`` as stored (a leading ``v`` before a digit dropped), or InvalidVersionError saying what a name may be."""
    text = name.strip() if isinstance(name, str) else ""
    if len(text) > 1 and text[0] in "vV" and text[1].isdigit():
        text = text[1:]
    if (not text or len(text) > MAX_VERSION_NAME_LENGTH or not _NAME.fullmatch(text)
            or not any(c.isdigit() for c in text) or is_version_number(text)):
        raise InvalidVersionError(
            f"Invalid version name {str(name)[:80]!r}: use letters, digits, '.', '_', '-', '+' with at least one "
            "digit and not a plain number (1.2.0, v1.2.0, 2024-06-01, rc1; 3 and v3 are version numbers; for a "
            "name that moves, such as 'best', set an alias)."
        )
    return text


def could_be_version_name(text: str) -> bool:
    """Whether ``text`` is spelt like a version name (``best`` is not: it can only be an alias)."""
    try:
        normalize_version_name(text)
    except InvalidVersionError:
        return False
    return True


def split_version(version: str | int | None) -> tuple[int | None, str | None]:
    """What ``version=`` asks for: (a version number, None), (None, a version name) or (None, None)."""
    if version is None:
        return None, None
    if isinstance(version, bool) or (isinstance(version, int) and version < 1):
        raise InvalidVersionError(f"{version!r} is not a version; use 1, 2, … or a version name such as '1.2.0'.")
    if isinstance(version, int):
        return version, None
    text = str(version).strip()
    if is_version_number(text):
        number = int(text.lstrip("vV"))
        if number < 1:
            raise InvalidVersionError(f"{version!r} is not a version; versions start at v1.")
        return number, None
    return None, normalize_version_name(text)


def next_version_name(name: str) -> str:
    """A name to suggest after ``name``: its last number raised by one (``1.2.0`` → ``1.2.1``, ``rc1`` → ``rc2``)."""
    found = list(re.finditer(r"\d+", name))
    if not found:
        return f"{name}.1"
    last = found[-1]
    raised = str(int(last.group()) + 1).zfill(len(last.group()))
    return f"{name[:last.start()]}{raised}{name[last.end():]}"
