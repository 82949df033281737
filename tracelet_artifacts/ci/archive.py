"""Safe extraction of zip and tar archives downloaded from CI providers.

Refuses entries that escape the target (``../``, absolute paths, drive letters), links that point
outside it, device files, and archives that would expand past a total-size or entry-count limit.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tracelet_artifacts.ci.errors import UnsafeArchiveError

DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_RATIO = 200.0
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExtractionLimits:
    """Limits that stop decompression bombs: total expanded bytes, entry count, expansion ratio."""

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_ratio: float = DEFAULT_MAX_RATIO


def _safe_relative(name: str, archive: Path) -> PurePosixPath:
    """The entry name as a relative path that stays inside the target, or UnsafeArchiveError."""
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise UnsafeArchiveError(
            f"{archive.name}: entry {name!r} has an absolute path; refusing to extract this archive."
        )
    if ".." in path.parts:
        raise UnsafeArchiveError(
            f"{archive.name}: entry {name!r} escapes the target folder with '..'; refusing to extract."
        )
    if "\x00" in normalised:
        raise UnsafeArchiveError(f"{archive.name}: entry name contains a NUL byte; refusing to extract.")
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _check_link(entry: PurePosixPath, target: str, archive: Path) -> None:
    """A link target must resolve, relative to the link's folder, to a place inside the root."""
    if target.startswith("/") or "\\" in target or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchiveError(
            f"{archive.name}: link {str(entry)!r} points to absolute path {target!r}; refusing to extract."
        )
    depth = len(entry.parent.parts)
    for part in PurePosixPath(target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise UnsafeArchiveError(
                f"{archive.name}: link {str(entry)!r} points outside the target ({target!r}); refusing."
            )


def _budget_error(archive: Path, limits: ExtractionLimits) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{archive.name} expands past {limits.max_total_bytes} bytes (a decompression bomb or simply too "
        "big); raise max_total_bytes if you trust it."
    )


def _extract_zip(archive: Path, root: Path, limits: ExtractionLimits) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchiveError(f"{archive.name} has {len(infos)} entries (limit {limits.max_entries}).")
        declared = sum(info.file_size for info in infos)
        compressed = sum(info.compress_size for info in infos) or 1
        if declared > limits.max_total_bytes:
            raise _budget_error(archive, limits)
        if declared > 1024**2 and declared / compressed > limits.max_ratio:
            raise UnsafeArchiveError(
                f"{archive.name} expands {declared / compressed:.0f}x (limit {limits.max_ratio:.0f}x): "
                "treated as a decompression bomb; refusing to extract."
            )
        plan = []
        for info in infos:
            rel = _safe_relative(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                _check_link(rel, zf.read(info).decode("utf-8", "replace"), archive)
            plan.append((info, rel, mode))
        written = 0
        for info, rel, mode in plan:
            dest = root / rel
            if info.is_dir() or str(rel) == ".":
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(info).decode("utf-8"), dest)
                continue
            with zf.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(_COPY_CHUNK):
                    written += len(chunk)
                    if written > limits.max_total_bytes:
                        raise _budget_error(archive, limits)
                    out.write(chunk)


def _extract_tar(archive: Path, root: Path, limits: ExtractionLimits) -> None:
    with tarfile.open(archive) as tf:
        members = []
        total = 0
        for count, member in enumerate(tf, start=1):
            if count > limits.max_entries:
                raise UnsafeArchiveError(f"{archive.name} has more than {limits.max_entries} entries.")
            rel = _safe_relative(member.name, archive)
            if member.issym():
                _check_link(rel, member.linkname, archive)
            elif member.islnk():
                _safe_relative(member.linkname, archive)
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"{archive.name}: entry {member.name!r} is a device or fifo; refusing to extract."
                )
            total += member.size if member.isfile() else 0
            if total > limits.max_total_bytes:
                raise _budget_error(archive, limits)
            members.append((member, rel))
        for member, rel in members:
            dest = root / rel
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
            elif member.issym():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(member.linkname, dest)
            elif member.islnk():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / _safe_relative(member.linkname, archive), dest)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                if src is None:  # pragma: no cover - regular files always have a body
                    continue
                with src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)


def is_archive(path: Path) -> bool:
    """True for files that ``safe_extract`` can unpack (zip or a tar, compressed or not)."""
    path = Path(path)
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def safe_extract(archive: Path, target: Path, limits: ExtractionLimits | None = None) -> Path:
    """Extract ``archive`` into ``target`` (created); all checks pass before ``target`` appears.

    The archive is unpacked into a temporary sibling folder and renamed into place, so a refused or
    failed extraction leaves nothing behind.

    >>> safe_extract(Path("report.zip"), Path("report"))  # doctest: +SKIP
    PosixPath('report')
    """
    archive, target = Path(archive), Path(target)
    limits = limits or ExtractionLimits()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging, limits)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging, limits)
        else:
            raise UnsafeArchiveError(f"{archive.name} is neither a zip nor a tar archive.")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchiveError(
            f"{archive.name} is corrupt ({exc}); download it again, it may have been cut short."
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
