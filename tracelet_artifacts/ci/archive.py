"""Safe extraction of zip and tar archives downloaded from CI providers.

Refuses entries that escape the target (``../``, absolute paths, drive letters), links that point
outside it, device files, and archives that would expand past a total-size or entry-count limit.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from tracelet_artifacts.ci.errors import UnsafeArchiveError

DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_RATIO = 200.0
_COPY_CHUNK = 1 << 20
_RATIO_FLOOR = 1024**2  # below this many expanded bytes the ratio is not checked (tiny files compress well)
# What a damaged archive raises while it is read: zlib/bz2/lzma errors, gzip's BadGzipFile (an OSError), …
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, UnicodeDecodeError, ValueError)


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


class _Budget:
    """Counts expanded bytes against the total and ratio limits (ratio over the archive's size on disk,
    which, unlike sizes declared in headers, an archive cannot lie about)."""

    def __init__(self, archive: Path, limits: ExtractionLimits) -> None:
        self.archive, self.limits, self.total = archive, limits, 0
        self.packed = max(archive.stat().st_size, 1)

    def add(self, size: int) -> None:
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{self.archive.name} expands past {self.limits.max_total_bytes} bytes (a decompression bomb or "
                "simply too big); raise max_total_bytes if you trust it."
            )
        if self.total > _RATIO_FLOOR and self.total / self.packed > self.limits.max_ratio:
            raise UnsafeArchiveError(
                f"{self.archive.name} expands more than {self.limits.max_ratio:.0f}x its {self.packed} bytes: "
                "treated as a decompression bomb; refusing to extract (raise max_ratio if you trust it)."
            )


class _Writer:
    """Writes entries under ``root``, checking on disk (through any link already written) that each one
    lands inside it: a link chain that only escapes once resolved is caught here, not just by name."""

    def __init__(self, root: Path, archive: Path, budget: _Budget) -> None:
        self.root, self.archive, self.budget = root, archive, budget
        self.real_root = Path(os.path.realpath(root))

    def _inside(self, path: Path, entry: PurePosixPath, what: str) -> Path:
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.real_root):
            raise UnsafeArchiveError(
                f"{self.archive.name}: entry {str(entry)!r} {what} outside the target (through a link written "
                "earlier); refusing to extract."
            )
        return real

    def _place(self, entry: PurePosixPath) -> Path:
        dest = self.root / entry
        self._inside(dest.parent, entry, "would be written")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(dest) or dest.is_file():  # a later entry of the same name replaces, never writes through
            dest.unlink()
        return dest

    def folder(self, entry: PurePosixPath) -> None:
        dest = self.root / entry
        self._inside(dest, entry, "would be a folder")
        dest.mkdir(parents=True, exist_ok=True)

    def file(self, entry: PurePosixPath, source: IO[bytes]) -> None:
        with open(self._place(entry), "xb") as out:
            while chunk := source.read(_COPY_CHUNK):
                self.budget.add(len(chunk))
                out.write(chunk)

    def symlink(self, entry: PurePosixPath, target: str) -> None:
        dest = self._place(entry)
        self._inside(dest.parent / target, entry, "is a link that resolves")
        os.symlink(target, dest)

    def hardlink(self, entry: PurePosixPath, target: PurePosixPath) -> None:
        source = self._inside(self.root / target, entry, "is a hard link to a file")
        if not source.is_file():
            raise UnsafeArchiveError(
                f"{self.archive.name}: hard link {str(entry)!r} points to {str(target)!r}, which is not a file "
                "extracted before it; refusing to extract."
            )
        with source.open("rb") as reader:
            self.file(entry, reader)


# Zip general-purpose flags Python cannot extract: bit 0 encrypted, 5 compressed patched data, 6 strong encryption.
_ZIP_UNSUPPORTED_FLAGS = 0x1 | 0x20 | 0x40


def _extract_zip(archive: Path, root: Path, limits: ExtractionLimits) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchiveError(f"{archive.name} has {len(infos)} entries (limit {limits.max_entries}).")
        declared = sum(info.file_size for info in infos)
        compressed = sum(info.compress_size for info in infos) or 1
        budget = _Budget(archive, limits)
        if declared > limits.max_total_bytes:
            budget.add(declared)  # raises: the headers alone announce too much
        if declared > _RATIO_FLOOR and declared / compressed > limits.max_ratio:
            raise UnsafeArchiveError(
                f"{archive.name} expands {declared / compressed:.0f}x (limit {limits.max_ratio:.0f}x): "
                "treated as a decompression bomb; refusing to extract."
            )
        plan = []
        for info in infos:
            rel = _safe_relative(info.filename, archive)
            if info.flag_bits & _ZIP_UNSUPPORTED_FLAGS:  # encrypted, patched or strongly encrypted data
                raise UnsafeArchiveError(
                    f"{archive.name}: entry {info.filename!r} is encrypted or uses a zip feature Python cannot "
                    "read; re-create the archive without a password."
                )
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
                raise UnsafeArchiveError(
                    f"{archive.name}: entry {info.filename!r} is a device, fifo or socket; refusing to extract."
                )
            if kind == stat.S_IFLNK:
                _check_link(rel, zf.read(info).decode("utf-8", "replace"), archive)
            plan.append((info, rel, kind))
        writer = _Writer(root, archive, budget)
        for info, rel, kind in plan:
            if info.is_dir() or str(rel) == ".":
                writer.folder(rel)
            elif kind == stat.S_IFLNK:
                writer.symlink(rel, zf.read(info).decode("utf-8"))
            else:
                with zf.open(info) as src:
                    writer.file(rel, src)


def _extract_tar(archive: Path, root: Path, limits: ExtractionLimits) -> None:
    with tarfile.open(archive) as tf:
        members = []
        budget = _Budget(archive, limits)
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
            budget.add(member.size if member.isfile() else 0)  # declared sizes: refused before writing
            members.append((member, rel))
        writer = _Writer(root, archive, _Budget(archive, limits))  # counts again what is really written
        for member, rel in members:
            if member.isdir() or str(rel) == ".":
                writer.folder(rel)
            elif member.issym():
                writer.symlink(rel, member.linkname)
            elif member.islnk():
                writer.hardlink(rel, _safe_relative(member.linkname, archive))
            else:
                src = tf.extractfile(member)
                if src is None:  # pragma: no cover - regular files always have a body
                    continue
                with src:
                    writer.file(rel, src)


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
    except _CORRUPT as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchiveError(
            f"{archive.name} is corrupt ({type(exc).__name__}: {exc}); download it again, it may have been cut short."
        ) from exc
    except OSError as exc:  # a damaged gzip/bz2 stream, or an entry that cannot be written (disk full, …)
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchiveError(
            f"{archive.name} could not be extracted ({type(exc).__name__}: {exc}); download it again, "
            "and check free space in the target folder."
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
