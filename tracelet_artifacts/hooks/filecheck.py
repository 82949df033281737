"""Cheap checks on a file on disk, for the watcher: its stat signature, whether its format looks complete
(zip-based torch files, safetensors), and whether its folder is on a network filesystem.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile
from pathlib import Path

Signature = tuple[int, int, int, int]  # size, mtime_ns, inode, device

# Filesystems where inotify misses writes made by other machines (FUSE ones appear as "fuse.<name>").
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "9p", "ceph", "ceph-fuse", "glusterfs",
    "afs", "davfs", "sshfs", "panfs", "wekafs", "s3fs", "gcsfuse", "rclone", "juicefs", "blobfuse", "goofys",
})
ZIP_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".npz", ".zip")
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


def file_signature(path: str) -> Signature | None:
    """(size, mtime_ns, inode, device) of a regular file; None when it is missing or not a regular file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev


def format_problem(path: str | os.PathLike[str], size: int) -> str | None:
    """Why a settled file is not complete yet (a zip without its central directory, a safetensors file
    shorter than its header says), or None when the cheap checks pass or do not apply."""
    name = os.fspath(path).lower()
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if name.endswith(ZIP_SUFFIXES) and head.startswith(b"PK\x03\x04"):
                return None if zipfile.is_zipfile(handle) else "a zip archive with no central directory"
            if name.endswith(".safetensors"):
                if len(head) < 8:
                    return "shorter than a safetensors header"
                (header_len,) = struct.unpack("<Q", head)
                if header_len > _MAX_SAFETENSORS_HEADER or 8 + header_len > size:
                    return "shorter than its safetensors header says"
                header = json.loads(handle.read(header_len))
                ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
                expected = 8 + header_len + max(ends, default=0)
                return None if expected == size else f"{size} bytes where its header says {expected}"
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"unreadable ({exc})"
    return None


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem ``path`` is on, from /proc/mounts (None where that file does not exist)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    target = str(path.resolve())
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


def is_network_filesystem(kind: str | None) -> bool:
    """Whether a filesystem type (as /proc/mounts names it) is one inotify cannot fully see."""
    return kind is not None and (kind in NETWORK_FILESYSTEMS or kind.removeprefix("fuse.") in NETWORK_FILESYSTEMS)
