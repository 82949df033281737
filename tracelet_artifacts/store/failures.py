"""What a failed blob write tells the user: an OS error becomes an ArtifactStoreError that says whether the
disk is full (and what to do about it) or what else failed. (The catalog's driver errors: ``store/sql.py``.)
"""

from __future__ import annotations

import errno
from pathlib import Path

from tracelet_artifacts.errors import ArtifactStoreError

# errno values meaning "the filesystem has no room for this write".
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FREE_SPACE = ("free space there (remove files, or run `tracelet-artifacts gc` to drop unreferenced blobs) "
               "or point TRACELET_STORE_PATH at a bigger disk, then log again")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` is an OS error saying the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


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

