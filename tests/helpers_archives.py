"""Small in-memory archives for tests: a zip and a gzipped tar of the given files."""

from __future__ import annotations

import io
import tarfile
import zipfile


def make_zip(files: dict[str, bytes]) -> bytes:
    """A deflated zip holding ``files`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def make_tgz(files: dict[str, bytes]) -> bytes:
    """A gzipped tar holding ``files`` (name -> content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
