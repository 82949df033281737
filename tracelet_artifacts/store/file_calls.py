"""The file system calls the blob store is built from, where Python has none of its own: ``renameat2`` and
``linkat`` of the C library (to name a file without replacing another), and reading a small file whole into
a buffer reused by each thread.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import Any

_RENAME_NOREPLACE = 1
AT_FDCWD = -100


def _libc(name: str, last_arg: Any) -> Any:
    """``renameat2`` / ``linkat`` of the C library (dirfd, path, dirfd, path, flags), or None without it."""
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, last_arg]
    return function


RENAMEAT2 = _libc("renameat2", ctypes.c_uint)
LINKAT = _libc("linkat", ctypes.c_int)


def publish(temp: str, final: str) -> bool:
    """Name a finished temp file ``final`` unless something is there already; True when it was named.

    Never replaces: a blob another writer named meanwhile (maybe already synced) stays as it is, and the temp
    file is dropped. ``renameat2(RENAME_NOREPLACE)`` where the C library has it, else a hard link.
    """
    if RENAMEAT2 is not None:
        if RENAMEAT2(AT_FDCWD, os.fsencode(temp), AT_FDCWD, os.fsencode(final), _RENAME_NOREPLACE) == 0:
            return True
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            os.unlink(temp)
            return False
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), final)
    try:
        os.link(temp, final)
    except FileExistsError:
        os.unlink(temp)
        return False
    except OSError:  # no hard links here (some network filesystems): replace, as before
        os.replace(temp, final)
        return True
    os.unlink(temp)
    return True


_THREAD = threading.local()


def read_small(fd: int, size: int, capacity: int) -> bytes | memoryview:
    """The whole content of a small open file (``size`` from its fstat, at most ``capacity``), read into this
    thread's buffer (valid until its next call): one buffer reused, not a new allocation per file (thousands of
    those make the allocator grow and shrink its heap, a system call each time)."""
    buffer = getattr(_THREAD, "buffer", None)
    if buffer is None or len(buffer) <= capacity:
        buffer = _THREAD.buffer = bytearray(capacity + 1)
    return read_into(fd, size, memoryview(buffer))


def read_into(fd: int, size: int, room: memoryview) -> bytes | memoryview:
    """The whole content of an open file (``size`` from its fstat) read in one call into ``room`` when it fits
    there (a ``room`` slice is returned); a file that grew since its stat, or does not fit, is read to its end
    into new bytes."""
    if size < len(room):
        got = os.readv(fd, [room])
        if got <= size:
            return room[:got]
        os.lseek(fd, 0, os.SEEK_SET)  # it grew since its stat: read it to its end
    return read_all(fd, size)


def read_all(fd: int, size: int) -> bytes:
    """The whole content of a small open file (``size`` from its fstat; a file that grew is read to its end)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


