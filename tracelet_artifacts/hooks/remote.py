"""Checkpoints written to a remote filesystem (``ModelCheckpoint(dirpath="s3://bucket/ckpts")``, through
fsspec): read back in chunks into a staging file, so a large checkpoint is never held whole in memory,
on a thread of its own so the training loop never waits for the download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tracelet_artifacts.hooks.staging import remove, staged_name

CHUNK = 4 * 1024 * 1024


def is_remote(path: str) -> bool:
    """True for a URL with a scheme other than ``file://`` (``s3://``, ``gs://``, ``memory://``, ...)."""
    return "://" in path and not path.startswith("file://")


def local_name(url: str) -> str:
    """The path to name an artifact by: ``s3://bucket/ckpts`` becomes ``s3/bucket/ckpts``."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}/{rest.lstrip('/')}"


def read_back(url: str, folder: Path, *, storage_options: dict[str, Any] | None = None) -> tuple[Path, int]:
    """Copy ``url`` into a new file under ``folder``, one ``CHUNK``-sized byte range at a time; return (that
    file, bytes). Ranged reads keep memory at about one chunk whatever the file's size (a buffered remote
    file may read ahead far more); a failure leaves no partial file.
    """
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    total = fs.size(path)
    target = folder / staged_name(os.path.basename(path))
    size = 0
    try:
        with open(target, "wb") as sink:
            while size < total:
                chunk = fs.cat_file(path, start=size, end=min(size + CHUNK, total))
                if not chunk:
                    raise OSError(f"{url} ended at {size} of {total} bytes while it was read back")
                sink.write(chunk)
                size += len(chunk)
    except BaseException:
        remove(target)
        raise
    return target, size
