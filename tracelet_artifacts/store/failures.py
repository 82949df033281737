"""What a failed write to the store tells the user: OS, SQLite and PostgreSQL errors become ArtifactStoreError
messages that say which disk is full (or what else failed) and what to do about it.
"""

from __future__ import annotations

import errno
from pathlib import Path

from tracelet_artifacts.errors import ArtifactStoreError

# errno values meaning "the filesystem has no room for this write".
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL (the typeshed stubs lack it)
_POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full
_FREE_SPACE = ("free space there (remove files, or run `tracelet-artifacts gc` to drop unreferenced blobs) "
               "or point TRACELET_STORE_PATH at a bigger disk, then log again")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk (or the user's quota) is full: an OS error, SQLite or PostgreSQL."""
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE
    return (getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
            or getattr(exc, "sqlstate", None) == _POSTGRES_DISK_FULL)


def blob_write_error(root: Path, exc: OSError) -> ArtifactStoreError:
    """The error for a blob that could not be written under ``root`` (the temp file is already removed)."""
    if is_disk_full(exc):
        return ArtifactStoreError(
            f"The disk holding the blob store {str(root)!r} is full ({exc.strerror or exc}); nothing was stored. "
            f"To fix: {_FREE_SPACE}."
        )
    return ArtifactStoreError(
        f"Writing a blob into {str(root)!r} failed: {exc.strerror or exc}; check the folder's permissions and disk."
    )


def catalog_write_error(location: str, exc: BaseException) -> ArtifactStoreError:
    """The error for a catalog transaction that failed (and was rolled back: nothing of it was written)."""
    if is_disk_full(exc):
        return ArtifactStoreError(
            f"The catalog {location!r} cannot grow: the database or its disk is full ({exc}); the change was "
            f"rolled back and nothing was recorded. To fix: {_FREE_SPACE}."
        )
    return ArtifactStoreError(f"Writing to the catalog {location!r} failed ({exc}); the change was rolled back. "
                              "Check the disk and the file's permissions, then try again.")
