"""Which process owns what: this host and process, and whether another process on this host still runs.

Runs, in-flight deliveries, temp blobs and staged files carry their owner, so what a dead process left
behind can be cleaned up or taken over.
"""

from __future__ import annotations

import os
import socket

HOST = socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one owned by another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def process_owner() -> str:
    """``host:pid``: who owns runs and in-flight deliveries."""
    return f"{HOST}:{os.getpid()}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` (``host:pid[:…]``) is a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    return host == HOST and pid_text.isdigit() and not pid_alive(int(pid_text))


def writer_is_dead(stem: str) -> bool:
    """True when a file named ``<host>-<pid>-<token>`` (temp blobs, packs) was left by a process on this host
    that no longer runs."""
    host, pid, _ = ([*stem.rsplit("-", 2), "", ""])[:3]
    return host == HOST and pid.isdigit() and not pid_alive(int(pid))
